import { memo, useId, useState } from 'react';
import type { AttemptInfo, ChatMessage } from '../../api';
import type { AnswerProblem } from '../../lib/chatState';
import { compareSummary } from '../../lib/compareSummary';
import { AssistantMessage } from './AssistantMessage';
import { BranchNav } from './BranchNav';

/** Answers sent together in one compare: columns side by side (tabs when
 * narrow), each streaming on its own, and a summary of cheapest and fastest. */
export const CompareSet = memo(function CompareSet({
  members,
  inPath,
  branchIndex,
  branchCount,
  problems,
  attempts,
  narrow,
}: {
  members: ChatMessage[];
  inPath: string;
  branchIndex: number;
  branchCount: number;
  problems: ReadonlyMap<string, AnswerProblem>;
  attempts: ReadonlyMap<string, AttemptInfo>;
  narrow: boolean;
}) {
  const [tab, setTab] = useState<string | null>(null);
  const base = useId();
  const shown = members.find((m) => m.id === tab) ?? members.find((m) => m.id === inPath) ?? members[0]!;
  const column = (m: ChatMessage) => (
    <div className={`compare-column${m.id === inPath ? ' in-context' : ''}`} data-testid="compare-column" data-message-id={m.id} key={m.id}>
      <AssistantMessage message={m} problem={problems.get(m.id)} attempt={attempts.get(m.id)} column inContext={m.id === inPath} />
    </div>
  );
  return (
    <section className="compare-set" aria-label={`Compare of ${members.length} answers`}>
      <header className="compare-head">
        <span className="small muted">Compare · {members.length} answers</span>
        <span className="spacer" />
        <BranchNav messageId={inPath} index={branchIndex} count={branchCount} />
      </header>
      {narrow ? (
        <div className="compare-tabs" data-testid="compare-columns" data-layout="tabs">
          <div role="tablist" aria-label="Answers" className="segmented">
            {members.map((m, i) => (
              <button
                key={m.id}
                type="button"
                role="tab"
                id={`${base}-tab-${i}`}
                aria-selected={m.id === shown.id}
                aria-controls={`${base}-panel`}
                className={m.id === shown.id ? 'on' : ''}
                tabIndex={m.id === shown.id ? 0 : -1}
                onClick={() => setTab(m.id)}
                onKeyDown={(e) => {
                  const d = e.key === 'ArrowRight' ? 1 : e.key === 'ArrowLeft' ? -1 : 0;
                  if (!d) return;
                  e.preventDefault();
                  const next = members[(i + d + members.length) % members.length]!;
                  setTab(next.id);
                  document.getElementById(`${base}-tab-${(i + d + members.length) % members.length}`)?.focus();
                }}
              >
                {m.model ?? `answer ${i + 1}`}
                {m.status === 'streaming' ? ' ●' : ''}
              </button>
            ))}
          </div>
          <div role="tabpanel" id={`${base}-panel`} aria-labelledby={`${base}-tab-${members.indexOf(shown)}`}>
            {column(shown)}
          </div>
        </div>
      ) : (
        <div className="compare-columns" data-testid="compare-columns" data-layout="columns" style={{ gridTemplateColumns: `repeat(${members.length}, minmax(0, 1fr))` }}>
          {members.map(column)}
        </div>
      )}
      <CompareSummaryRow members={members} />
    </section>
  );
});

function CompareSummaryRow({ members }: { members: ChatMessage[] }) {
  const s = compareSummary(members);
  const name = (id: string, fallback: string) => members.find((m) => m.id === id)?.model ?? fallback;
  return (
    <div className="compare-summary" data-testid="compare-summary" aria-live="polite">
      {s.pending ? <span className="muted">{s.pending} still answering…</span> : null}
      {s.cheapest.map((c) => (
        <span key={c.currency} data-testid="summary-cheapest">
          Cheapest{s.cheapest.length > 1 || s.currencies ? ` in ${c.currency}` : ''}: <strong>{name(c.id, c.model)}</strong> {c.text}
        </span>
      ))}
      {s.currencies ? (
        <span className="muted" data-testid="summary-currencies">
          Costs are in {s.currencies}; different currencies are not compared.
        </span>
      ) : null}
      {s.fastestFirstToken ? (
        <span data-testid="summary-fastest-first">
          Fastest first token: <strong>{name(s.fastestFirstToken.id, s.fastestFirstToken.model)}</strong> {s.fastestFirstToken.text}
        </span>
      ) : null}
      {s.fastestTotal ? (
        <span data-testid="summary-fastest-total">
          Fastest total: <strong>{name(s.fastestTotal.id, s.fastestTotal.model)}</strong> {s.fastestTotal.text}
        </span>
      ) : null}
      {s.unpriced.length ? <span className="muted">Unpriced: {s.unpriced.join(', ')}</span> : null}
      {s.totals.length ? (
        <span data-testid="summary-totals">
          Paid: {s.totals.map((t) => t.text).join(' · ')}
        </span>
      ) : null}
    </div>
  );
}
