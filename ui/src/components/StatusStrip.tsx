import { useState } from 'react';
import { api, errorMessage, type Status } from '../api';
import { bucketLabel, formatMicro } from '../lib/money';

/** The strip at the top: version, address, paused state, both balances. */
export function StatusStrip({ status, error, onChange }: { status: Status | null; error: string | null; onChange: () => void }) {
  const [busy, setBusy] = useState(false);
  const [actionError, setActionError] = useState<string | null>(null);
  const paused = status?.paused === true;

  const toggle = () => {
    setBusy(true);
    setActionError(null);
    (paused ? api.resume() : api.pause())
      .then(onChange)
      .catch((e: unknown) => setActionError(errorMessage(e)))
      .finally(() => setBusy(false));
  };

  return (
    <header className="status-strip" data-testid="status-strip">
      <span className="brand">Switchyard</span>
      {status ? (
        <>
          <span className="muted" data-testid="status-version">
            v{status.version}
          </span>
          <span className="status-listen" data-testid="status-listen" title="The gateway's address">
            {status.listen}
          </span>
          {status.paused !== undefined ? (
            <span className="status-pause">
              <span className={`badge ${paused ? 'badge-warn' : 'badge-ok'}`} data-testid="status-paused" data-paused={paused ? 'true' : 'false'}>
                {paused ? 'Paused' : 'Serving'}
              </span>
              <button type="button" className="btn btn-small" onClick={toggle} disabled={busy} data-testid="pause-toggle">
                {paused ? 'Resume' : 'Pause'}
              </button>
            </span>
          ) : null}
          <span className="spacer" />
          {status.balances.map((b) => (
            <span
              key={b.bucket}
              className={`strip-balance bucket-${b.bucket} ${b.balance_micro < 0 ? 'negative' : ''}`}
              data-testid={`strip-balance-${b.bucket}`}
              title={`${bucketLabel(b.bucket)} balance, in ${b.currency}`}
            >
              <span className="strip-balance-label">{bucketLabel(b.bucket)}</span>
              <span className="num">{formatMicro(b.balance_micro, b.currency)}</span>
            </span>
          ))}
        </>
      ) : (
        <span className="spacer" />
      )}
      {error || actionError ? (
        <span className="strip-error" role="alert" data-testid="status-error">
          {actionError ?? error}
        </span>
      ) : null}
    </header>
  );
}
