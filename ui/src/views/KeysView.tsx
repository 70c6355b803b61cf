import { useState, type FormEvent } from 'react';
import { api, BUCKETS, errorMessage, type BucketName, type CreatedKey, type GatewayKey, type NewKey } from '../api';
import type { ViewProps } from '../views';
import { Badge, CodeBlock, Confirm, CopyButton, Dialog, Empty, ErrorBox, Segmented, useLoad } from '../components/ui';
import { bucketLabel, decimalToMicro, formatAmount, formatMicro, formatTime } from '../lib/money';
import { snippets } from '../lib/snippets';

export function KeysView({ status }: ViewProps) {
  const keys = useLoad(() => api.keys(), []);
  // Snippets name a model the gateway really routes, when there is one.
  const routes = useLoad(() => api.routes().catch(() => null), []);
  const sampleModel = routes.data?.routes[0]?.model;
  const [created, setCreated] = useState<CreatedKey | null>(null);
  const [revoking, setRevoking] = useState<GatewayKey | null>(null);
  const [showRevoked, setShowRevoked] = useState(false);
  const currencies = Object.fromEntries((status?.balances ?? []).map((b) => [b.bucket, b.currency])) as Partial<Record<BucketName, string>>;

  const list = (keys.data?.keys ?? []).filter((k) => showRevoked || k.active);
  const revokedCount = (keys.data?.keys ?? []).filter((k) => !k.active).length;

  return (
    <div className="view" data-testid="view-keys">
      <h1>Keys</h1>
      <p className="muted">
        One key per local tool. A tool presents its key on <code>{window.location.origin}/v1</code>; the key decides which models and
        buckets it may use and how much it may spend.
      </p>

      <CreateKeyForm
        currencies={currencies}
        onCreated={(k) => {
          setCreated(k);
          keys.reload();
        }}
      />

      <section aria-label="Keys">
        <div className="toolbar">
          <h2>Your keys</h2>
          <span className="spacer" />
          {revokedCount > 0 ? (
            <label className="check">
              <input type="checkbox" checked={showRevoked} onChange={(e) => setShowRevoked(e.target.checked)} data-testid="keys-show-revoked" />
              Show {revokedCount} revoked
            </label>
          ) : null}
        </div>
        <ErrorBox error={keys.error} />
        {keys.data && list.length === 0 ? (
          <Empty title="No keys yet." testId="keys-empty">
            Create one above for each tool that should use the gateway (an IDE plugin, your scripts).
          </Empty>
        ) : (
          <div className="table-wrap">
            <table className="table" data-testid="keys-table">
              <thead>
                <tr>
                  <th scope="col">Name</th>
                  <th scope="col">Scope</th>
                  <th scope="col">Budget</th>
                  <th scope="col">Spend today / month</th>
                  <th scope="col">
                    <span className="sr-only">Actions</span>
                  </th>
                </tr>
              </thead>
              <tbody>
                {list.map((k) => (
                  <KeyRow key={k.name} k={k} currencies={currencies} onRevoke={() => setRevoking(k)} />
                ))}
              </tbody>
            </table>
          </div>
        )}
      </section>

      <SnippetsPanel keyText="sy-…" title="Point a tool at the gateway" model={sampleModel} />

      <Dialog open={created !== null} onClose={() => setCreated(null)} title={`Key “${created?.name ?? ''}” created`} testId="key-created">
        {created ? <CreatedKeyBody k={created} model={sampleModel} /> : null}
      </Dialog>

      <Confirm
        open={revoking !== null}
        title={`Revoke “${revoking?.name ?? ''}”?`}
        body={<p>Every tool using this key is refused from now on. This cannot be undone; create a new key instead.</p>}
        confirmLabel="Revoke key"
        testId="revoke-confirm"
        onClose={() => setRevoking(null)}
        onConfirm={async () => {
          if (!revoking) return;
          await api.revokeKey(revoking.name);
          keys.reload();
        }}
      />
    </div>
  );
}

function KeyRow({ k, currencies, onRevoke }: { k: GatewayKey; currencies: Partial<Record<BucketName, string>>; onRevoke: () => void }) {
  const buckets = k.buckets.length ? k.buckets : BUCKETS;
  const models = k.models.length ? k.models : ['*'];
  return (
    <tr data-testid="key-row" data-key-name={k.name} className={k.active ? '' : 'revoked'}>
      <td>
        <strong className="wrap-anywhere">{k.name}</strong>
        <div className="mono small muted">{k.prefix}…</div>
        {!k.active ? (
          <Badge tone="fail">revoked {k.revoked_at ? formatTime(k.revoked_at) : ''}</Badge>
        ) : (
          <div className="muted small">since {formatTime(k.created_at)}</div>
        )}
      </td>
      <td>
        <div className="wrap-anywhere">
          <span className="muted small">models </span>
          {models.map((m) => (
            <code key={m} className="chip">
              {m === '*' ? 'all' : m}
            </code>
          ))}
        </div>
        <div>
          <span className="muted small">buckets </span>
          {buckets.map(bucketLabel).join(', ')}
        </div>
        {k.project ? (
          <div>
            <span className="muted small">project </span>
            {k.project}
          </div>
        ) : null}
      </td>
      <td className="small">
        {BUCKETS.map((b) => {
          const d = k.daily_budget[b];
          const m = k.monthly_budget[b];
          if (!d && !m) return null;
          const cur = currencies[b] ?? '';
          return (
            <div key={b}>
              {bucketLabel(b)}: {d ? `${formatAmount(d, cur)}/day` : ''}
              {d && m ? ', ' : ''}
              {m ? `${formatAmount(m, cur)}/month` : ''}
            </div>
          );
        })}
        {BUCKETS.every((b) => !k.daily_budget[b] && !k.monthly_budget[b]) ? <span className="muted">no limit</span> : null}
      </td>
      <td className="small num-left">
        {BUCKETS.map((b) => {
          const s = k.spend[b];
          if (!s) return null;
          return (
            <div key={b} data-testid={`key-spend-${b}`}>
              {bucketLabel(b)}: {formatMicro(s.today.micro, s.today.currency)} / {formatMicro(s.month.micro, s.month.currency)}
            </div>
          );
        })}
      </td>
      <td>
        {k.active ? (
          <button type="button" className="btn btn-small btn-danger" onClick={onRevoke} data-testid="key-revoke">
            Revoke
          </button>
        ) : null}
      </td>
    </tr>
  );
}

function CreatedKeyBody({ k, model }: { k: CreatedKey; model?: string }) {
  return (
    <div className="stack">
      <p className="warn" role="note">
        Copy this key now. It is shown only this once; Switchyard keeps only its hash.
      </p>
      <div className="secret-once">
        <code className="mono wrap-anywhere" data-testid="key-secret">
          {k.key}
        </code>
        <CopyButton text={k.key} label="Copy key" testId="key-secret-copy" />
      </div>
      <SnippetsPanel keyText={k.key} title="Use it" model={model} />
    </div>
  );
}

type SnippetKind = 'python' | 'curl' | 'ide' | 'env';

export function SnippetsPanel({ keyText, title, model }: { keyText: string; title: string; model?: string }) {
  const [kind, setKind] = useState<SnippetKind>('python');
  const s = snippets(window.location.origin, keyText, model);
  return (
    <section aria-label={title} className="snippets" data-testid="snippets">
      <div className="toolbar">
        <h2>{title}</h2>
        <Segmented<SnippetKind>
          label="Snippet"
          value={kind}
          onChange={setKind}
          testId="snippet-kind"
          options={[
            { value: 'python', label: 'OpenAI Python' },
            { value: 'curl', label: 'curl' },
            { value: 'ide', label: 'IDE plugin' },
            { value: 'env', label: 'Environment' },
          ]}
        />
      </div>
      <CodeBlock code={s[kind]} testId={`snippet-${kind}`} />
    </section>
  );
}

function splitList(s: string): string[] {
  return s
    .split(/[\s,]+/)
    .map((x) => x.trim())
    .filter(Boolean);
}

function budgetValue(values: Partial<Record<BucketName, string>>): Partial<Record<BucketName, string>> | undefined {
  const out: Partial<Record<BucketName, string>> = {};
  for (const b of BUCKETS) {
    const v = values[b]?.trim();
    if (v) out[b] = v;
  }
  return Object.keys(out).length ? out : undefined;
}

export function CreateKeyForm({
  currencies,
  onCreated,
  defaultName = '',
  compact = false,
}: {
  currencies: Partial<Record<BucketName, string>>;
  onCreated: (k: CreatedKey) => void;
  defaultName?: string;
  compact?: boolean;
}) {
  const [name, setName] = useState(defaultName);
  const [models, setModels] = useState('*');
  const [buckets, setBuckets] = useState<Record<BucketName, boolean>>({ credit: true, wallet: true });
  const [project, setProject] = useState('');
  const [daily, setDaily] = useState<Partial<Record<BucketName, string>>>({});
  const [monthly, setMonthly] = useState<Partial<Record<BucketName, string>>>({});
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<string | null>(null);
  const [more, setMore] = useState(!compact);

  const submit = (e: FormEvent) => {
    e.preventDefault();
    setError(null);
    const chosen = BUCKETS.filter((b) => buckets[b]);
    if (!name.trim()) return setError('Give the key a name, such as the tool that will use it ("vscode-continue").');
    if (chosen.length === 0) return setError('Pick at least one bucket the key may spend from.');
    for (const [label, vals] of [
      ['daily', daily],
      ['monthly', monthly],
    ] as const) {
      for (const b of BUCKETS) {
        const v = vals[b]?.trim();
        if (v && (decimalToMicro(v) ?? -1) <= 0) return setError(`The ${label} ${bucketLabel(b)} budget must be a positive amount, like 5 or 2.50.`);
      }
    }
    const body: NewKey = { name: name.trim() };
    const globs = splitList(models);
    if (globs.length && !(globs.length === 1 && globs[0] === '*')) body.models = globs;
    if (chosen.length < BUCKETS.length) body.buckets = chosen;
    if (project.trim()) body.project = project.trim();
    const d = budgetValue(daily);
    const m = budgetValue(monthly);
    if (d) body.daily_budget = d;
    if (m) body.monthly_budget = m;
    setBusy(true);
    api
      .createKey(body)
      .then((k) => {
        onCreated(k);
        setName('');
        setProject('');
        setDaily({});
        setMonthly({});
      })
      .catch((err: unknown) => setError(errorMessage(err)))
      .finally(() => setBusy(false));
  };

  return (
    <form className="card form" onSubmit={submit} data-testid="key-form" aria-label="Create a key">
      <h2>Create a key</h2>
      <div className="form-grid">
        <label>
          Name
          <input value={name} onChange={(e) => setName(e.target.value)} placeholder="vscode-continue" required data-testid="key-name" autoComplete="off" />
        </label>
        {more ? (
          <>
            <label>
              Models <span className="muted small">(globs; * = all)</span>
              <input value={models} onChange={(e) => setModels(e.target.value)} placeholder="gpt-*, claude-*" data-testid="key-models" />
            </label>
            <label>
              Project <span className="muted small">(optional label)</span>
              <input value={project} onChange={(e) => setProject(e.target.value)} placeholder="work" data-testid="key-project" />
            </label>
            <fieldset className="buckets-field">
              <legend>May spend from</legend>
              {BUCKETS.map((b) => (
                <label key={b} className="check">
                  <input
                    type="checkbox"
                    checked={buckets[b]}
                    onChange={(e) => setBuckets((x) => ({ ...x, [b]: e.target.checked }))}
                    data-testid={`key-bucket-${b}`}
                  />
                  {bucketLabel(b)}
                </label>
              ))}
            </fieldset>
            {BUCKETS.map((b) => (
              <fieldset key={b} className="budget-field">
                <legend>
                  {bucketLabel(b)} budget <span className="muted small">({currencies[b] ?? ''}, optional)</span>
                </legend>
                <input
                  inputMode="decimal"
                  aria-label={`${bucketLabel(b)} daily budget`}
                  placeholder="per day"
                  value={daily[b] ?? ''}
                  onChange={(e) => setDaily((x) => ({ ...x, [b]: e.target.value }))}
                  data-testid={`key-daily-${b}`}
                  disabled={!buckets[b]}
                />
                <input
                  inputMode="decimal"
                  aria-label={`${bucketLabel(b)} monthly budget`}
                  placeholder="per month"
                  value={monthly[b] ?? ''}
                  onChange={(e) => setMonthly((x) => ({ ...x, [b]: e.target.value }))}
                  data-testid={`key-monthly-${b}`}
                  disabled={!buckets[b]}
                />
              </fieldset>
            ))}
          </>
        ) : null}
      </div>
      <ErrorBox error={error} />
      <div className="row-actions">
        {!more ? (
          <button type="button" className="btn btn-link" onClick={() => setMore(true)}>
            Scope and budgets…
          </button>
        ) : null}
        <button type="submit" className="btn btn-primary" disabled={busy} data-testid="key-create">
          {busy ? 'Creating…' : 'Create key'}
        </button>
      </div>
    </form>
  );
}
