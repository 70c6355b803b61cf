import { api, type ReceiptDetail, type ReceiptStatus, type Usage } from '../api';
import { Badge, Dialog, ErrorBox, CopyButton, useLoad } from '../components/ui';
import { bucketLabel, formatInt, formatMicro, formatMs, formatTime } from '../lib/money';
import { deriveWalk, timeline } from '../lib/walk';
import { plural } from '../lib/plural';

const STATUS_TONE: Record<ReceiptStatus, string> = {
  ok: 'ok',
  error: 'fail',
  pending: 'info',
  client_cancelled: 'warn',
  upstream_cut: 'fail',
  interrupted: 'warn',
  refused: 'fail',
};

export function StatusBadge({ status }: { status: ReceiptStatus }) {
  return <Badge tone={STATUS_TONE[status] ?? 'info'}>{status.replace(/_/g, ' ')}</Badge>;
}

const USAGE_KINDS: { key: keyof Usage; label: string }[] = [
  { key: 'input', label: 'Input (uncached)' },
  { key: 'cached_input', label: 'Cached input' },
  { key: 'cache_write', label: 'Cache write' },
  { key: 'output', label: 'Output' },
  { key: 'reasoning', label: 'Reasoning' },
];

/** One receipt, in a drawer: the route walked, the attempts, tokens, prices, who paid. */
export function ReceiptDrawer({ id, onClose }: { id: string | null; onClose: () => void }) {
  const { data, error, loading } = useLoad((s) => (id ? api.receipt(id, s) : Promise.resolve(null)), [id]);
  const r = data && data.id === id ? data : null;
  return (
    <Dialog open={id !== null} onClose={onClose} title="Receipt" testId="receipt-drawer" variant="drawer">
      <ErrorBox error={error} />
      {!r && loading ? <p className="muted">Loading…</p> : null}
      {r ? <ReceiptBody r={r} /> : null}
    </Dialog>
  );
}

function ReceiptBody({ r }: { r: ReceiptDetail }) {
  const tl = timeline(r.attempts, r.latency_ms);
  const walk = r.walk || deriveWalk(r.attempts);
  const currency = r.currency ?? r.cost_formatted?.currency ?? null;
  const unpriced = r.price === null;
  return (
    <div className="stack receipt" data-testid="receipt-detail">
      <div className="receipt-head">
        <StatusBadge status={r.status} />
        <span className="mono small wrap-anywhere" data-testid="receipt-id">
          {r.id}
        </span>
        <CopyButton text={r.id} label="Copy id" />
      </div>

      <dl className="kv">
        <dt>Asked for</dt>
        <dd data-testid="receipt-asked">
          {r.requested_model}
          {r.route && r.route !== r.requested_model ? <span className="muted"> (route {r.route})</span> : null}
        </dd>
        <dt>Answered by</dt>
        <dd data-testid="receipt-answered">
          {r.upstream_model ?? '—'}
          {r.channel ? (
            <span className="muted">
              {' '}
              via {r.channel}
              {r.brand ? ` (${r.brand})` : ''}
            </span>
          ) : null}
        </dd>
        <dt>When</dt>
        <dd>
          {formatTime(r.started_at)} · {formatMs(r.latency_ms)}
          {r.ttft_ms !== null ? ` · first token ${formatMs(r.ttft_ms)}` : ''}
          {r.stream ? ' · streamed' : ''}
        </dd>
        <dt>Key</dt>
        <dd>
          {r.key_name ?? '—'}
          {r.project ? <span className="muted"> · project {r.project}</span> : null}
          <span className="muted" data-testid="receipt-source">
            {' · '}
            {r.source}
            {r.step ? ` (${r.step})` : ''}
          </span>
        </dd>
      </dl>

      <section aria-label="Route walked">
        <h3>Route walked</h3>
        <p className="walk" data-testid="receipt-walk">
          {walk}
        </p>
        <div className="flags">
          {r.cross_bucket_fallback ? (
            <Badge tone="warn" testId="receipt-cross-bucket">
              cross-bucket fallback
            </Badge>
          ) : null}
          {r.retry_count > 0 ? <Badge tone="info">{plural(r.retry_count, 'retry')}</Badge> : null}
          {r.fallback_count > 0 ? <Badge tone="info">{plural(r.fallback_count, 'failover')}</Badge> : null}
        </div>
      </section>

      <section aria-label="Attempts">
        <h3>Attempts</h3>
        {tl.bars.length === 0 ? (
          <p className="muted">No upstream call was made.</p>
        ) : (
          <ol className="timeline" data-testid="receipt-timeline">
            {tl.bars.map((b) => (
              <li key={b.index} className="timeline-row" data-testid="receipt-attempt">
                <span className="timeline-label">
                  <strong>{b.label}</strong> <span className="wrap-anywhere">{b.target}</span>
                </span>
                <span className="timeline-track" aria-hidden="true">
                  <span className={`timeline-bar tone-${b.tone}`} style={{ left: `${b.left}%`, width: `${b.width}%` }} />
                </span>
                <span className={`timeline-outcome tone-${b.tone}`}>
                  {b.outcome} <span className="muted">· {formatMs(b.duration)} at +{formatMs(b.started)}</span>
                </span>
              </li>
            ))}
          </ol>
        )}
      </section>

      <section aria-label="Tokens and price">
        <h3>
          Tokens{r.usage_estimated ? (
            <>
              {' '}
              <Badge tone="warn" testId="receipt-usage-estimated" title="The provider sent no usage; counted from the text seen">
                estimated
              </Badge>
            </>
          ) : null}
        </h3>
        <table className="table compact" data-testid="receipt-tokens">
          <thead>
            <tr>
              <th scope="col">Kind</th>
              <th scope="col" className="num">Tokens</th>
              <th scope="col" className="num">Price per 1M</th>
            </tr>
          </thead>
          <tbody>
            {USAGE_KINDS.map((k) => (
              <tr key={k.key}>
                <td>{k.label}</td>
                <td className="num">{formatInt(r.usage[k.key])}</td>
                <td className="num">{r.price && currency ? formatMicro(r.price[k.key], currency) : <span className="muted">—</span>}</td>
              </tr>
            ))}
          </tbody>
        </table>
        {unpriced ? (
          <p>
            <Badge tone="warn" testId="receipt-unpriced" title="No price is known for this target; no cost was charged for it">
              UNPRICED
            </Badge>{' '}
            <span className="muted small">No price is known for this target. Add a price override to its route or a catalog entry.</span>
          </p>
        ) : r.price_source ? (
          <p className="muted small">Prices from {r.price_source.replace(/_/g, ' ')}, in {currency}.</p>
        ) : null}
      </section>

      <section aria-label="Cost">
        <h3>Cost</h3>
        <dl className="kv">
          <dt>Cost</dt>
          <dd className="num" data-testid="receipt-cost">
            {currency ? formatMicro(r.cost, currency) : '—'}
          </dd>
          <dt>Paid from</dt>
          <dd data-testid="receipt-bucket">
            <span className={`bucket-dot bucket-${r.bucket ?? 'none'}`} aria-hidden="true" />
            {bucketLabel(r.bucket)}
          </dd>
        </dl>
      </section>

      {r.error ? (
        <section aria-label="Error">
          <h3>Error</h3>
          <pre className="error-text" data-testid="receipt-error">
            {r.error}
          </pre>
        </section>
      ) : null}
    </div>
  );
}
