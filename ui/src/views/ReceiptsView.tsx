import { memo, useCallback, useEffect, useMemo, useRef, useState } from 'react';
import { useVirtualizer } from '@tanstack/react-virtual';
import {
  api,
  errorMessage,
  RECEIPT_STATUSES,
  type BucketName,
  type Receipt,
  type ReceiptFilter,
  type ReceiptStatus,
} from '../api';
import type { ViewProps } from '../views';
import { Badge, Empty, ErrorBox } from '../components/ui';
import { bucketLabel, formatMicro, formatMs, formatTime, formatTimeShort, formatTokens } from '../lib/money';
import { ReceiptDrawer, StatusBadge } from './ReceiptDrawer';
import { plural } from '../lib/plural';

const ROW_HEIGHT = 36;
/** More slots than rows ever rendered at once (visible + overscan). */
const ROW_SLOTS = 256;
const FIRST_PAGE = 200;
const NEXT_PAGE = 500;

type TimeKind = '24h' | '7d' | '30d' | 'all' | 'custom';

interface Filters {
  time: TimeKind;
  from: string; // datetime-local
  to: string;
  model: string;
  channel: string;
  key: string;
  project: string;
  bucket: BucketName | '';
  status: ReceiptStatus | '';
}

const EMPTY_FILTERS: Filters = {
  time: 'all',
  from: '',
  to: '',
  model: '',
  channel: '',
  key: '',
  project: '',
  bucket: '',
  status: '',
};

function toQuery(f: Filters): ReceiptFilter {
  const q: ReceiptFilter = {
    model: f.model.trim() || undefined,
    channel: f.channel.trim() || undefined,
    key: f.key.trim() || undefined,
    project: f.project.trim() || undefined,
    bucket: f.bucket || undefined,
    status: f.status || undefined,
  };
  if (f.time === '24h' || f.time === '7d' || f.time === '30d') q.since = f.time;
  if (f.time === 'custom') {
    const from = f.from ? new Date(f.from).getTime() : NaN;
    const to = f.to ? new Date(f.to).getTime() : NaN;
    if (Number.isFinite(from)) q.since = String(from);
    if (Number.isFinite(to)) q.until = String(to);
  }
  return q;
}

/** Text filters are applied after a short pause in typing. */
function useDebounced<T>(value: T, ms: number): T {
  const [v, setV] = useState(value);
  useEffect(() => {
    const t = setTimeout(() => setV(value), ms);
    return () => clearTimeout(t);
  }, [value, ms]);
  return v;
}

export function ReceiptsView({ refreshStatus }: ViewProps) {
  const [filters, setFilters] = useState<Filters>(EMPTY_FILTERS);
  const query = useDebounced(useMemo(() => toQuery(filters), [filters]), 250);
  const queryKey = JSON.stringify(query);

  const [rows, setRows] = useState<RowData[]>([]);
  const [next, setNext] = useState<string | null>(null);
  const [loading, setLoading] = useState(false);
  const [error, setError] = useState<string | null>(null);
  const [loadedOnce, setLoadedOnce] = useState(false);
  const [openId, setOpenId] = useState<string | null>(null);
  const generation = useRef(0);
  const inflight = useRef(false);

  const keys = useKeyNames();

  const loadPage = useCallback(
    (reset: boolean, cursor: string | null) => {
      if (inflight.current && !reset) return;
      const gen = reset ? ++generation.current : generation.current;
      inflight.current = true;
      setLoading(true);
      api
        .receipts(JSON.parse(queryKey) as ReceiptFilter, reset ? FIRST_PAGE : NEXT_PAGE, reset ? null : cursor)
        .then((page) => {
          if (gen !== generation.current) return;
          const slimmed = page.receipts.map(slim);
          setRows((prev) => (reset ? slimmed : prev.concat(slimmed)));
          setNext(page.next);
          setError(null);
          setLoadedOnce(true);
        })
        .catch((e: unknown) => {
          if (gen === generation.current) setError(errorMessage(e));
        })
        .finally(() => {
          if (gen === generation.current) {
            inflight.current = false;
            setLoading(false);
          }
        });
    },
    [queryKey],
  );

  useEffect(() => {
    loadPage(true, null);
  }, [loadPage]);

  const scrollRef = useRef<HTMLDivElement>(null);
  const virtualizer = useVirtualizer({
    count: rows.length + (next ? 1 : 0),
    getScrollElement: () => scrollRef.current,
    estimateSize: () => ROW_HEIGHT,
    overscan: 8,
  });
  const items = virtualizer.getVirtualItems();
  const lastIndex = items.length ? items[items.length - 1]!.index : 0;

  useEffect(() => {
    if (next && !loading && !error && lastIndex >= rows.length - 60) loadPage(false, next);
  }, [lastIndex, rows.length, next, loading, error, loadPage]);

  const rowCount = useRef(0);
  rowCount.current = rows.length;
  const virtualizerRef = useRef(virtualizer);
  virtualizerRef.current = virtualizer;
  // Keys pressed faster than a frame build on the row about to be focused.
  const pendingFocus = useRef<number | null>(null);
  const moveFocus = useCallback((from: number, delta: number) => {
    const i = (pendingFocus.current ?? from) + delta;
    if (i < 0 || i >= rowCount.current) return;
    pendingFocus.current = i;
    virtualizerRef.current.scrollToIndex(i, { align: 'auto' });
    requestAnimationFrame(() => {
      const el = scrollRef.current?.querySelector<HTMLElement>(`[data-index="${i}"]`);
      el?.focus();
      if (pendingFocus.current === i) pendingFocus.current = null;
    });
  }, []);

  const set = <K extends keyof Filters>(k: K, v: Filters[K]) => setFilters((f) => ({ ...f, [k]: v }));
  const filtered = JSON.stringify(filters) !== JSON.stringify(EMPTY_FILTERS);

  return (
    <div className="view view-fill" data-testid="view-receipts">
      <div className="toolbar">
        <h1>Receipts</h1>
        <span className="muted small" data-testid="receipts-count" aria-live="polite">
          {plural(rows.length, 'receipt')} loaded{next ? ', more as you scroll' : ''}
        </span>
        <span className="spacer" />
        <button type="button" className="btn" onClick={() => {
            loadPage(true, null);
            refreshStatus();
          }}
          data-testid="receipts-refresh">
          Refresh
        </button>
      </div>

      <form className="filters" data-testid="receipts-filters" onSubmit={(e) => e.preventDefault()} aria-label="Filters">
        <label>
          Time
          <select value={filters.time} onChange={(e) => set('time', e.target.value as TimeKind)} data-testid="filter-time">
            <option value="all">All time</option>
            <option value="24h">Last 24 hours</option>
            <option value="7d">Last 7 days</option>
            <option value="30d">Last 30 days</option>
            <option value="custom">Custom…</option>
          </select>
        </label>
        {filters.time === 'custom' ? (
          <>
            <label>
              From
              <input type="datetime-local" value={filters.from} onChange={(e) => set('from', e.target.value)} data-testid="filter-from" />
            </label>
            <label>
              To
              <input type="datetime-local" value={filters.to} onChange={(e) => set('to', e.target.value)} data-testid="filter-to" />
            </label>
          </>
        ) : null}
        <label>
          Model
          <input value={filters.model} onChange={(e) => set('model', e.target.value)} placeholder="any" data-testid="filter-model" />
        </label>
        <label>
          Channel
          <input value={filters.channel} onChange={(e) => set('channel', e.target.value)} placeholder="any" data-testid="filter-channel" />
        </label>
        <label>
          Key
          <input value={filters.key} onChange={(e) => set('key', e.target.value)} placeholder="any" list="receipt-key-names" data-testid="filter-key" />
          <datalist id="receipt-key-names">
            {keys.map((k) => (
              <option key={k} value={k} />
            ))}
          </datalist>
        </label>
        <label>
          Project
          <input value={filters.project} onChange={(e) => set('project', e.target.value)} placeholder="any" data-testid="filter-project" />
        </label>
        <label>
          Bucket
          <select value={filters.bucket} onChange={(e) => set('bucket', e.target.value as BucketName | '')} data-testid="filter-bucket">
            <option value="">any</option>
            <option value="credit">Credit</option>
            <option value="wallet">Wallet</option>
          </select>
        </label>
        <label>
          Status
          <select value={filters.status} onChange={(e) => set('status', e.target.value as ReceiptStatus | '')} data-testid="filter-status">
            <option value="">any</option>
            {RECEIPT_STATUSES.map((s) => (
              <option key={s} value={s}>
                {s.replace(/_/g, ' ')}
              </option>
            ))}
          </select>
        </label>
        {filtered ? (
          <button type="button" className="btn btn-small" onClick={() => setFilters(EMPTY_FILTERS)} data-testid="filter-clear">
            Clear filters
          </button>
        ) : null}
      </form>

      <ErrorBox error={error} testId="receipts-error" />

      {loadedOnce && rows.length === 0 && !error ? (
        filtered ? (
          <Empty title="No receipts match these filters." testId="receipts-empty">
            Widen the time range or clear a filter.
          </Empty>
        ) : (
          <Empty title="No requests yet." testId="receipts-empty">
            Every request through the gateway leaves a receipt here. Create a key under <strong>Keys</strong> and send a request with it.
          </Empty>
        )
      ) : (
        <div className="rtable" role="table" aria-label="Receipts" aria-rowcount={rows.length + 1} data-testid="receipts-table">
          <div className="rtable-head" role="rowgroup">
            <div className="rtable-row rtable-header" role="row">
              <span role="columnheader">Time</span>
              <span role="columnheader">Model</span>
              <span role="columnheader">Channel</span>
              <span role="columnheader">Key</span>
              <span role="columnheader">Bucket</span>
              <span role="columnheader" className="num col-tokens">Tokens in/out</span>
              <span role="columnheader" className="num">Cost</span>
              <span role="columnheader" className="num">Latency</span>
              <span role="columnheader">Status</span>
            </div>
          </div>
          <div className="rtable-scroll" ref={scrollRef} data-testid="receipts-scroll">
            <div role="rowgroup" style={{ height: virtualizer.getTotalSize(), position: 'relative' }}>
              {items.map((vi) => {
                const r = rows[vi.index];
                if (!r) {
                  return (
                    <div
                      key="loader"
                      className="rtable-row rtable-loader"
                      role="row"
                      style={{ transform: `translateY(${vi.start}px)`, height: ROW_HEIGHT }}
                    >
                      <span role="cell">{loading ? 'Loading more…' : ''}</span>
                    </div>
                  );
                }
                return (
                  <ReceiptRow
                    // Keyed by slot, not by receipt: a fast scroll or a
                    // scrollbar drag then updates rows in place instead of
                    // unmounting and mounting every one of them.
                    key={vi.index % ROW_SLOTS}
                    r={r}
                    index={vi.index}
                    top={vi.start}
                    selected={openId === r.id}
                    onOpen={setOpenId}
                    onMove={moveFocus}
                  />
                );
              })}
            </div>
          </div>
        </div>
      )}

      <ReceiptDrawer id={openId} onClose={() => setOpenId(null)} />
    </div>
  );
}

function useKeyNames(): string[] {
  const [names, setNames] = useState<string[]>([]);
  useEffect(() => {
    api
      .keys()
      .then((k) => setNames(k.keys.map((x) => x.name)))
      .catch(() => setNames([]));
  }, []);
  return names;
}

/** What a table row shows; the full receipt is fetched when the row is opened,
 * so 100k loaded rows stay light. */
interface RowData {
  id: string;
  started_at: number;
  requested_model: string;
  upstream_model: string | null;
  channel: string | null;
  fallback_count: number;
  key_name: string | null;
  bucket: BucketName | null;
  tokensIn: number;
  tokensOut: number;
  usage_estimated: boolean;
  unpriced: boolean;
  cost: number;
  currency: string | null;
  latency_ms: number | null;
  status: ReceiptStatus;
}

function slim(r: Receipt): RowData {
  const u = r.usage;
  return {
    id: r.id,
    started_at: r.started_at,
    requested_model: r.requested_model,
    upstream_model: r.upstream_model,
    channel: r.channel,
    fallback_count: r.fallback_count,
    key_name: r.key_name,
    bucket: r.bucket,
    tokensIn: u.input + u.cached_input + u.cache_write,
    tokensOut: u.output + u.reasoning,
    usage_estimated: r.usage_estimated,
    unpriced: r.price === null && (r.status === 'ok' || u.input + u.output + u.cached_input + u.reasoning > 0),
    cost: r.cost,
    currency: r.currency,
    latency_ms: r.latency_ms,
    status: r.status,
  };
}

const ReceiptRow = memo(function ReceiptRow({
  r,
  index,
  top,
  selected,
  onOpen,
  onMove,
}: {
  r: RowData;
  index: number;
  top: number;
  selected: boolean;
  onOpen: (id: string) => void;
  onMove: (from: number, delta: number) => void;
}) {
  return (
    <div
      className={`rtable-row${selected ? ' selected' : ''}`}
      role="row"
      tabIndex={0}
      data-index={index}
      data-testid="receipt-row"
      data-receipt-id={r.id}
      aria-rowindex={index + 2}
      style={{ transform: `translateY(${top}px)`, height: ROW_HEIGHT }}
      onClick={() => onOpen(r.id)}
      onKeyDown={(e) => {
        if (e.key === 'Enter' || e.key === ' ') {
          e.preventDefault();
          onOpen(r.id);
        } else if (e.key === 'ArrowDown') {
          e.preventDefault();
          onMove(index, 1);
        } else if (e.key === 'ArrowUp') {
          e.preventDefault();
          onMove(index, -1);
        }
      }}
    >
      <span role="cell" className="ellipsis" title={formatTime(r.started_at)}>
        {formatTimeShort(r.started_at)}
      </span>
      <span role="cell" className="ellipsis" title={r.upstream_model && r.upstream_model !== r.requested_model ? `${r.requested_model} → ${r.upstream_model}` : r.requested_model}>
        {r.requested_model || <span className="muted">—</span>}
        {r.upstream_model && r.upstream_model !== r.requested_model ? <span className="muted"> → {r.upstream_model}</span> : null}
      </span>
      <span role="cell" className="cell-stack" title={r.channel ?? undefined}>
        <span className="ellipsis">{r.channel ?? <span className="muted">—</span>}</span>
        {r.fallback_count > 0 ? (
          <Badge tone="warn" title="Served by a backup">
            backup
          </Badge>
        ) : null}
      </span>
      <span role="cell" className="ellipsis" title={r.key_name ?? undefined}>
        {r.key_name ?? <span className="muted">—</span>}
      </span>
      <span role="cell" className="nowrap">
        <span className={`bucket-dot bucket-${r.bucket ?? 'none'}`} aria-hidden="true" />
        {r.bucket ? bucketLabel(r.bucket) : <span className="muted">—</span>}
      </span>
      <span role="cell" className="num nowrap col-tokens">
        {formatTokens(r.tokensIn)} / {formatTokens(r.tokensOut)}
        {r.usage_estimated ? <span title="Estimated usage"> ~</span> : null}
      </span>
      <span role="cell" className="num nowrap">
        {r.unpriced ? (
          <Badge tone="warn" title="No known price for this target">
            UNPRICED
          </Badge>
        ) : r.currency ? (
          formatMicro(r.cost, r.currency)
        ) : (
          <span className="muted">—</span>
        )}
      </span>
      <span role="cell" className="num nowrap">{formatMs(r.latency_ms)}</span>
      <span role="cell" className="nowrap">
        <StatusBadge status={r.status} />
      </span>
    </div>
  );
});
