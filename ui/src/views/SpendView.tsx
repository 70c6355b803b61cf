import { lazy, Suspense, useEffect, useMemo, useRef, useState, type FormEvent } from 'react';
import { api, errorMessage, type Bucket, type SpendDimension, type SpendRange } from '../api';
import type { ViewProps } from '../views';
import { Badge, Empty, ErrorBox, Segmented, useLoad } from '../components/ui';
import { bucketLabel, decimalToMicro, formatInt, formatMicro, formatPercent, formatTokens } from '../lib/money';
import {
  BREAKDOWN_CSV_HEADER,
  breakdownCsvRows,
  addDays,
  dailyCharts,
  dayOf,
  rate,
  sortBreakdown,
  type BucketCurrencies,
} from '../lib/spend';
import { downloadText, toCsv } from '../lib/csv';
import { plural } from '../lib/plural';
import { LedgerEntries } from './LedgerEntries';

const SpendChart = lazy(() => import('./SpendChart'));

type RangeKind = '24h' | '7d' | '30d' | 'custom';
const DIMENSIONS: { value: SpendDimension; label: string }[] = [
  { value: 'model', label: 'Model' },
  { value: 'channel', label: 'Channel' },
  { value: 'brand', label: 'Brand' },
  { value: 'key', label: 'Key' },
  { value: 'project', label: 'Project' },
  { value: 'source', label: 'Source' },
];

export function SpendView({ status, refreshStatus }: ViewProps) {
  const [kind, setKind] = useState<RangeKind>('7d');
  // Local calendar days, as the server reads from/to and groups by day.
  const [to, setTo] = useState(() => dayOf(Date.now()));
  const [from, setFrom] = useState(() => addDays(to, -6));
  const [by, setBy] = useState<SpendDimension>('model');
  const [ledgerVersion, setLedgerVersion] = useState(0);

  const customInvalid = kind === 'custom' && (!from || !to || from > to);
  const range: SpendRange = kind === 'custom' ? { from, to } : { since: kind };
  const rangeKey = JSON.stringify(range);

  const currencies: BucketCurrencies = useMemo(() => {
    const m: BucketCurrencies = {};
    for (const b of status?.balances ?? []) m[b.bucket] = b.currency;
    return m;
  }, [status]);

  const daily = useLoad((s) => (customInvalid ? Promise.resolve(null) : api.spend(range, 'day', s)), [rangeKey, customInvalid]);
  const breakdown = useLoad((s) => (customInvalid ? Promise.resolve(null) : api.spend(range, by, s)), [rangeKey, by, customInvalid]);

  // The status strip is read often; when a balance moves (a request was
  // charged, a top-up landed elsewhere), the reports and ledger follow.
  const moneyKey = status ? status.balances.map((b) => `${b.bucket}:${b.balance_micro}`).join() : null;
  const lastMoneyKey = useRef(moneyKey);
  const { reload: reloadDaily } = daily;
  const { reload: reloadBreakdown } = breakdown;
  useEffect(() => {
    const prev = lastMoneyKey.current;
    lastMoneyKey.current = moneyKey;
    if (prev === null || moneyKey === null || prev === moneyKey) return;
    reloadDaily();
    reloadBreakdown();
    setLedgerVersion((v) => v + 1);
  }, [moneyKey, reloadDaily, reloadBreakdown]);

  const charts = useMemo(
    () => (daily.data ? dailyCharts(daily.data.rows, currencies, daily.data.from, daily.data.to) : []),
    [daily.data, currencies],
  );
  const rows = useMemo(
    () => (breakdown.data ? sortBreakdown(breakdown.data.rows) : []),
    [breakdown.data],
  );
  const totals = useMemo(
    () => (breakdown.data ? sortBreakdown(breakdown.data.totals) : []),
    [breakdown.data],
  );

  const exportCsv = () => {
    const name = kind === 'custom' ? `${from}_${to}` : kind;
    downloadText(`switchyard-spend-by-${by}-${name}.csv`, toCsv(BREAKDOWN_CSV_HEADER, breakdownCsvRows(rows)));
  };

  return (
    <div className="view" data-testid="view-spend">
      <h1>Spend</h1>
      <section className="balances" aria-label="Balances" data-testid="balances">
        {(status?.balances ?? []).map((b) => (
          <BalanceCard
            key={b.bucket}
            bucket={b}
            onTopup={refreshStatus}
          />
        ))}
        {!status ? <p className="muted">Loading balances…</p> : null}
      </section>

      <div className="toolbar">
        <Segmented<RangeKind>
          label="Time range"
          testId="spend-range"
          value={kind}
          onChange={setKind}
          options={[
            { value: '24h', label: '24 hours' },
            { value: '7d', label: '7 days' },
            { value: '30d', label: '30 days' },
            { value: 'custom', label: 'Custom' },
          ]}
        />
        {kind === 'custom' ? (
          <span className="inline-fields" data-testid="spend-custom">
            <label>
              From <input type="date" value={from} max={to} onChange={(e) => setFrom(e.target.value)} data-testid="spend-from" />
            </label>
            <label>
              To <input type="date" value={to} min={from} onChange={(e) => setTo(e.target.value)} data-testid="spend-to" />
            </label>
          </span>
        ) : null}
      </div>
      {customInvalid ? <ErrorBox error="Pick a start date on or before the end date." /> : null}

      <section aria-label="Totals" className="totals" data-testid="spend-totals">
        {totals.map((t) => (
          <div key={`${t.bucket}-${t.currency}`} className={`total-card bucket-${t.bucket || 'none'}`} data-testid={`spend-total-${t.bucket || 'none'}`}>
            <div className="total-label">{bucketLabel(t.bucket)}</div>
            {t.bucket ? (
              <div className="total-cost num" data-testid={`spend-total-${t.bucket}-amount`}>
                {formatMicro(t.cost, t.currency)}
              </div>
            ) : null}
            <div className="muted small">
              {plural(t.requests, 'request')}
              {t.errors ? ` · ${plural(t.errors, 'error')}` : ''}
              {t.fallbacks ? ` · ${plural(t.fallbacks, 'fallback')}` : ''}
            </div>
            {t.unpriced > 0 ? (
              <Badge tone="warn" testId={`spend-unpriced-${t.bucket || 'none'}`} title="Requests whose target has no known price; their cost is not counted">
                {formatInt(t.unpriced)} unpriced
              </Badge>
            ) : null}
          </div>
        ))}
      </section>

      <section aria-label="Spend over time" className="charts" data-testid="spend-charts">
        <ErrorBox error={daily.error} />
        {daily.data && daily.data.rows.length === 0 ? (
          <Empty title="No requests in this range.">
            Point a tool at the gateway with a key from <strong>Keys</strong>; every request shows up here and in Receipts.
          </Empty>
        ) : (
          <Suspense fallback={<p className="muted">Loading chart…</p>}>
            {charts.map((c) => (
              <SpendChart key={c.currency + c.buckets.join()} chart={c} />
            ))}
          </Suspense>
        )}
      </section>

      <section aria-label="Breakdown" className="breakdown">
        <div className="toolbar">
          <h2>Breakdown</h2>
          <Segmented<SpendDimension> label="Group by" testId="spend-by" value={by} onChange={setBy} options={DIMENSIONS} />
          <span className="spacer" />
          <button type="button" className="btn" onClick={exportCsv} disabled={rows.length === 0} data-testid="spend-export-csv">
            Export CSV
          </button>
        </div>
        <ErrorBox error={breakdown.error} />
        {breakdown.data && rows.length === 0 ? (
          <Empty title="Nothing to break down in this range." />
        ) : (
          <div className="table-wrap">
            <table className="table" data-testid="spend-breakdown">
              <thead>
                <tr>
                  <th scope="col">{DIMENSIONS.find((d) => d.value === by)?.label ?? by}</th>
                  <th scope="col">Bucket</th>
                  <th scope="col" className="num">Requests</th>
                  <th scope="col" className="num">Input tok</th>
                  <th scope="col" className="num">Output tok</th>
                  <th scope="col" className="num">Cost</th>
                  <th scope="col" className="num">Fallback</th>
                  <th scope="col" className="num">Errors</th>
                </tr>
              </thead>
              <tbody>
                {rows.map((r) => (
                  <tr key={`${r.group}|${r.bucket}|${r.currency}`} data-testid="spend-row">
                    <td className="wrap-anywhere">{r.group || <span className="muted">(none)</span>}</td>
                    <td>
                      <span className={`bucket-dot bucket-${r.bucket || 'none'}`} aria-hidden="true" />
                      {bucketLabel(r.bucket)}
                    </td>
                    <td className="num">{formatInt(r.requests)}</td>
                    <td className="num">{formatTokens(r.input_tokens)}</td>
                    <td className="num">{formatTokens(r.output_tokens)}</td>
                    <td className="num">
                      {r.bucket ? formatMicro(r.cost, r.currency) : <span className="muted">—</span>}
                      {r.unpriced > 0 ? (
                        <>
                          {' '}
                          <Badge tone="warn" title="Requests with no known price; their cost is not in this sum">
                            +{formatInt(r.unpriced)} unpriced
                          </Badge>
                        </>
                      ) : null}
                    </td>
                    <td className="num">{formatPercent(rate(r.fallbacks, r.requests))}</td>
                    <td className="num">{formatPercent(rate(r.errors, r.requests))}</td>
                  </tr>
                ))}
              </tbody>
            </table>
          </div>
        )}
      </section>

      <LedgerEntries version={ledgerVersion} />
    </div>
  );
}

export function BalanceCard({ bucket, onTopup }: { bucket: Bucket; onTopup: () => void }) {
  const [amount, setAmount] = useState('');
  const [note, setNote] = useState('');
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<string | null>(null);
  const [done, setDone] = useState<string | null>(null);

  const submit = (e: FormEvent) => {
    e.preventDefault();
    const micro = decimalToMicro(amount);
    if (micro === null || micro <= 0) {
      setError(`Enter a positive amount in ${bucket.currency}, like 20 or 12.50.`);
      return;
    }
    setBusy(true);
    setError(null);
    setDone(null);
    api
      .topup(bucket.bucket, amount.trim(), note.trim() || undefined)
      .then((r) => {
        setDone(`Added ${formatMicro(r.amount_micro, r.currency)}; balance now ${formatMicro(r.balance_micro, r.currency)}.`);
        setAmount('');
        setNote('');
        onTopup();
      })
      .catch((err: unknown) => setError(errorMessage(err)))
      .finally(() => setBusy(false));
  };

  return (
    <div className={`balance-card bucket-${bucket.bucket}`} data-testid={`balance-${bucket.bucket}`}>
      <div className="balance-head">
        <span className="balance-label">{bucketLabel(bucket.bucket)}</span>
        <span className="muted small">
          {bucket.bucket === 'credit' ? 'official / direct routes' : 'routed / discounted channels'} · {bucket.currency}
        </span>
      </div>
      <div className={`balance-amount num ${bucket.balance_micro < 0 ? 'negative' : ''}`} data-testid={`balance-${bucket.bucket}-amount`}>
        {formatMicro(bucket.balance_micro, bucket.currency)}
      </div>
      <form className="topup" onSubmit={submit} data-testid={`topup-${bucket.bucket}`}>
        <label className="sr-only" htmlFor={`topup-${bucket.bucket}-amount`}>
          Top-up amount in {bucket.currency}
        </label>
        <input
          id={`topup-${bucket.bucket}-amount`}
          inputMode="decimal"
          placeholder={`Amount (${bucket.currency})`}
          value={amount}
          onChange={(e) => setAmount(e.target.value)}
          data-testid={`topup-${bucket.bucket}-amount`}
        />
        <label className="sr-only" htmlFor={`topup-${bucket.bucket}-note`}>
          Note
        </label>
        <input
          id={`topup-${bucket.bucket}-note`}
          placeholder="Note (optional)"
          value={note}
          onChange={(e) => setNote(e.target.value)}
          data-testid={`topup-${bucket.bucket}-note`}
        />
        <button type="submit" className="btn" disabled={busy || !amount.trim()} data-testid={`topup-${bucket.bucket}-submit`}>
          {busy ? 'Adding…' : 'Top up'}
        </button>
      </form>
      <ErrorBox error={error} />
      {done ? (
        <p className="ok-text small" role="status">
          {done}
        </p>
      ) : null}
    </div>
  );
}
