import { memo } from 'react';
import type { AttemptInfo, ChatMessage } from '../../api';
import { Badge, CopyButton } from '../../components/ui';
import type { AnswerProblem } from '../../lib/chatState';
import { incompleteReason } from '../../lib/answerFooter';
import { AnswerFooter } from './AnswerFooter';
import { AnswerText } from './AnswerText';
import { BranchNav } from './BranchNav';
import { useChatActions } from './context';
import { TopUpOffer } from './TopUpOffer';

function attemptText(a: AttemptInfo | undefined): string {
  if (!a) return 'waiting for the first token';
  const role = a.target_index === 0 ? 'primary' : `backup ${a.target_index}`;
  return `trying ${role} ${a.channel}/${a.upstream_model}${a.attempt > 1 ? `, attempt ${a.attempt}` : ''}`;
}

/** One answer: its text (Markdown), reasoning, state, and the receipt footer. */
export const AssistantMessage = memo(function AssistantMessage({
  message: m,
  branchIndex = 0,
  branchCount = 1,
  problem,
  attempt,
  column = false,
  inContext = false,
}: {
  message: ChatMessage;
  branchIndex?: number;
  branchCount?: number;
  problem?: AnswerProblem;
  attempt?: AttemptInfo;
  /** Shown as a compare column: "Continue with this answer" instead of branch arrows. */
  column?: boolean;
  inContext?: boolean;
}) {
  const actions = useChatActions();
  const streaming = m.status === 'streaming';
  return (
    <article
      className={`message message-assistant status-${m.status}`}
      data-testid="message"
      data-role="assistant"
      data-status={m.status}
      data-message-id={m.id}
      aria-busy={streaming}
      aria-label={`Answer from ${m.model ?? 'a model'}`}
    >
      <header className="message-head">
        <span className="message-model">{m.model ?? 'assistant'}</span>
        {streaming ? (
          <span className="live" data-testid="streaming" role="status">
            <span className="live-dot" aria-hidden="true" /> answering <span className="muted small">· {attemptText(attempt)}</span>
          </span>
        ) : null}
        {m.status === 'incomplete' ? (
          <Badge tone="warn" testId="incomplete-badge">
            incomplete
          </Badge>
        ) : null}
        {m.status === 'error' ? <Badge tone="fail">failed</Badge> : null}
        <span className="spacer" />
        {!column ? <BranchNav messageId={m.id} index={branchIndex} count={branchCount} /> : null}
      </header>

      {m.reasoning ? (
        <details className="reasoning" data-testid="reasoning">
          <summary>{streaming && !m.content ? 'Reasoning…' : 'Reasoning'}</summary>
          <div className="reasoning-text">{m.reasoning}</div>
        </details>
      ) : null}

      {m.content ? <AnswerText text={m.content} /> : streaming ? <p className="muted typing">…</p> : null}

      {m.status === 'incomplete' ? (
        <p className="incomplete-note" data-testid="incomplete">
          <strong>Incomplete — {incompleteReason(m.receipt?.status)}.</strong> This is the partial text that arrived.
          {m.error ? <span className="muted"> {m.error}</span> : null}
        </p>
      ) : null}
      {m.status === 'error' ? (
        <div className="stack">
          <pre className="error-text" data-testid="answer-error">
            {m.error ?? 'The answer failed.'}
          </pre>
          {problem?.code === 'balance_empty' ? <TopUpOffer bucket={problem.bucket} /> : null}
        </div>
      ) : null}

      {m.receipt ? <AnswerFooter receipt={m.receipt} asked={m.model} /> : null}

      <div className="message-actions">
        {streaming ? (
          <button type="button" className="btn btn-small" onClick={() => actions.stop(m.id)} data-testid="answer-stop">
            Stop
          </button>
        ) : (
          <button
            type="button"
            className="btn btn-small"
            onClick={() => actions.regenerate(m.id, m.model ?? undefined)}
            data-testid="retry"
            title="Ask the same model again; the new answer is kept beside this one"
          >
            {m.status === 'complete' ? 'Regenerate' : 'Retry'}
          </button>
        )}
        {m.content && !streaming ? <CopyButton text={m.content} label="Copy" testId="copy-answer" /> : null}
        {column ? (
          inContext ? (
            <Badge tone="ok" testId="in-context" title="The next message follows this answer">
              in context
            </Badge>
          ) : (
            <button
              type="button"
              className="btn btn-small btn-primary"
              onClick={() => actions.continueWith(m.id)}
              disabled={streaming}
              data-testid="continue-with"
            >
              Continue with this answer
            </button>
          )
        ) : null}
      </div>
    </article>
  );
});
