// The money movements of one bucket (top-ups, charges, refunds), newest first.

import { useEffect, useState } from 'react';
import { api, errorMessage, type BucketName, type Entry } from '../api';
import { Empty, ErrorBox, Segmented } from '../components/ui';
import { bucketLabel, formatMicroExact, formatTime } from '../lib/money';
import { ReceiptDrawer } from './ReceiptDrawer';

const PAGE = 25;

export function LedgerEntries({ version }: { version: number }) {
  const [bucket, setBucket] = useState<BucketName>('credit');
  const [entries, setEntries] = useState<Entry[]>([]);
  const [next, setNext] = useState<string | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [loaded, setLoaded] = useState(false);
  const [busy, setBusy] = useState(false);
  const [receipt, setReceipt] = useState<string | null>(null);

  useEffect(() => {
    let live = true;
    setLoaded(false);
    api
      .entries(bucket, PAGE)
      .then((p) => {
        if (!live) return;
        setEntries(p.entries);
        setNext(p.next);
        setError(null);
        setLoaded(true);
      })
      .catch((e: unknown) => live && setError(errorMessage(e)));
    return () => {
      live = false;
    };
  }, [bucket, version]);

  const more = () => {
    if (!next) return;
    setBusy(true);
    api
      .entries(bucket, PAGE, next)
      .then((p) => {
        setEntries((e) => e.concat(p.entries));
        setNext(p.next);
      })
      .catch((e: unknown) => setError(errorMessage(e)))
      .finally(() => setBusy(false));
  };

  return (
    <section aria-label="Ledger" className="ledger">
      <div className="toolbar">
        <h2>Ledger</h2>
        <Segmented<BucketName>
          label="Bucket"
          testId="ledger-bucket"
          value={bucket}
          onChange={setBucket}
          options={[
            { value: 'credit', label: 'Credit' },
            { value: 'wallet', label: 'Wallet' },
          ]}
        />
      </div>
      <ErrorBox error={error} />
      {loaded && entries.length === 0 ? (
        <Empty title={`Nothing on the ${bucketLabel(bucket)} books yet.`} testId="ledger-empty">
          Record what you paid your provider with Top up above; each charge then shows here with the balance after it.
        </Empty>
      ) : (
        <div className="table-wrap">
          <table className="table compact" data-testid="ledger-table">
            <thead>
              <tr>
                <th scope="col">When</th>
                <th scope="col">Kind</th>
                <th scope="col" className="num">Amount</th>
                <th scope="col" className="num">Balance after</th>
                <th scope="col">Note / receipt</th>
              </tr>
            </thead>
            <tbody>
              {entries.map((e) => (
                <tr key={e.id} data-testid="ledger-row">
                  <td className="nowrap">{formatTime(e.at)}</td>
                  <td>{e.kind}</td>
                  <td className={`num ${e.amount < 0 ? '' : 'ok-text'}`}>{formatMicroExact(e.amount, e.currency)}</td>
                  <td className={`num ${e.balance_after < 0 ? 'negative' : ''}`}>{formatMicroExact(e.balance_after, e.currency)}</td>
                  <td className="wrap-anywhere">
                    {e.note ? <span>{e.note} </span> : null}
                    {e.receipt_id ? (
                      <button
                        type="button"
                        className="btn btn-link mono small"
                        onClick={() => setReceipt(e.receipt_id)}
                        title={e.receipt_id}
                        aria-label={`Open receipt ${e.receipt_id}`}
                      >
                        receipt …{e.receipt_id.slice(-8)}
                      </button>
                    ) : null}
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
      {next ? (
        <button type="button" className="btn" onClick={more} disabled={busy} data-testid="ledger-more">
          {busy ? 'Loading…' : 'Older entries'}
        </button>
      ) : null}
      <ReceiptDrawer id={receipt} onClose={() => setReceipt(null)} />
    </section>
  );
}
