// Shapes spend rows for the screen. A row belongs to one bucket and is kept in
// that bucket's currency; nothing here adds Credit to Wallet.

import type { BucketName, SpendRow } from '../api';
import { microToDecimal } from './money';
import type { Cell } from './csv';

export type BucketCurrencies = Partial<Record<BucketName, string>>;

/** A breakdown row as the server sends it (a SpendRow is one): one per
 * (group, bucket, currency). Requests served by unpriced targets are counted
 * in their bucket's row, in its currency, with `unpriced` saying how many;
 * only rows no bucket paid have no currency. Rows of one bucket in different
 * currencies (a currency changed over time) stay apart: nothing is merged. */
export interface BreakdownRow {
  group: string;
  bucket: BucketName | '';
  currency: string;
  requests: number;
  errors: number;
  fallbacks: number;
  unpriced: number;
  input_tokens: number;
  output_tokens: number;
  cost: number;
}

export function rate(part: number, whole: number): number | null {
  return whole > 0 ? part / whole : null;
}

/** Breakdown rows sorted for reading: by group, then Credit before Wallet
 * before "not charged". */
export function sortBreakdown(rows: BreakdownRow[]): BreakdownRow[] {
  const order = (b: string) => (b === 'credit' ? 0 : b === 'wallet' ? 1 : 2);
  return [...rows].sort((a, b) => a.group.localeCompare(b.group) || order(a.bucket) - order(b.bucket));
}

export const BREAKDOWN_CSV_HEADER = [
  'group',
  'bucket',
  'currency',
  'requests',
  'input_tokens',
  'output_tokens',
  'cost',
  'unpriced',
  'fallbacks',
  'fallback_rate',
  'errors',
  'error_rate',
];

export function breakdownCsvRows(rows: BreakdownRow[]): Cell[][] {
  return rows.map((r) => [
    r.group,
    r.bucket || 'none',
    r.currency,
    r.requests,
    r.input_tokens,
    r.output_tokens,
    microToDecimal(r.cost),
    r.unpriced,
    r.fallbacks,
    ratio4(rate(r.fallbacks, r.requests)),
    r.errors,
    ratio4(rate(r.errors, r.requests)),
  ]);
}

function ratio4(x: number | null): string {
  return x === null ? '' : x.toFixed(4);
}

/** One chart: the buckets that share a currency, stacked per day. */
export interface DailyChart {
  currency: string;
  buckets: BucketName[];
  /** One entry per day; bucket values in whole currency units (for drawing
   * only), plus the exact micro amounts and unpriced counts for tooltips. */
  data: DailyPoint[];
}

export interface DailyPoint {
  day: string;
  credit?: number;
  wallet?: number;
  credit_micro?: number;
  wallet_micro?: number;
  credit_unpriced?: number;
  wallet_unpriced?: number;
}

/** Minutes east of UTC at instant `t`. The server groups `by=day` by the
 * machine's local calendar day, so the chart does too; tests inject a zone. */
export type UtcOffset = (t: number) => number;
export const localOffset: UtcOffset = (t) => -new Date(t).getTimezoneOffset();

const DAY_MS = 86_400_000;

/** The calendar day (YYYY-MM-DD) of instant `t` in the zone of `offset`. */
export function dayOf(t: number, offset: UtcOffset = localOffset): string {
  return new Date(t + offset(t) * 60_000).toISOString().slice(0, 10);
}

/** The calendar day `n` days after `day` (YYYY-MM-DD; calendar arithmetic, so
 * a daylight-saving change in between does not matter). */
export function addDays(day: string, n: number): string {
  return new Date(Date.parse(`${day}T00:00:00Z`) + n * DAY_MS).toISOString().slice(0, 10);
}

/** The local calendar days that the report range [`from`, `to`) (Unix ms)
 * touches, oldest first: the same keys the server gives its by-day rows. */
export function daysBetween(from: number, to: number, offset: UtcOffset = localOffset, max = 400): string[] {
  const out: string[] = [];
  const last = dayOf(Math.max(from, to - 1), offset);
  for (let day = dayOf(from, offset); day <= last && out.length < max; day = addDays(day, 1)) out.push(day);
  return out;
}

/** Splits by-day rows into charts: one chart if Credit and Wallet share a
 * currency (stacked), otherwise one chart per bucket. */
export function dailyCharts(
  rows: SpendRow[],
  currencies: BucketCurrencies,
  from: number,
  to: number,
  offset: UtcOffset = localOffset,
): DailyChart[] {
  const merged = rows.filter((r) => r.bucket !== '');
  const days = new Set(daysBetween(from, to, offset));
  for (const r of merged) days.add(r.group);
  const sortedDays = [...days].sort();

  const groups = new Map<string, BucketName[]>();
  const present = new Set<string>();
  for (const b of ['credit', 'wallet'] as const) {
    const cur = currencies[b];
    if (cur) present.add(`${b}\u0000${cur}`);
  }
  for (const r of merged) present.add(`${r.bucket}\u0000${r.currency}`);
  for (const p of present) {
    const [b, cur] = p.split('\u0000') as [BucketName, string];
    const list = groups.get(cur) ?? [];
    if (!list.includes(b)) list.push(b);
    groups.set(cur, list);
  }

  const charts: DailyChart[] = [];
  for (const [currency, buckets] of groups) {
    buckets.sort((a, b) => (a === b ? 0 : a === 'credit' ? -1 : 1));
    const byDay = new Map<string, DailyPoint>(sortedDays.map((day) => [day, { day }]));
    for (const b of buckets) {
      for (const p of byDay.values()) {
        p[b] = 0;
        p[`${b}_micro`] = 0;
        p[`${b}_unpriced`] = 0;
      }
    }
    for (const r of merged) {
      if (r.currency !== currency || !buckets.includes(r.bucket as BucketName)) continue;
      const p = byDay.get(r.group);
      if (!p) continue;
      const b = r.bucket as BucketName;
      p[`${b}_micro`] = (p[`${b}_micro`] ?? 0) + r.cost;
      p[`${b}_unpriced`] = (p[`${b}_unpriced`] ?? 0) + r.unpriced;
      p[b] = (p[`${b}_micro`] ?? 0) / 1_000_000;
    }
    charts.push({ currency, buckets, data: [...byDay.values()] });
  }
  charts.sort((a, b) => (a.buckets[0] === 'credit' ? -1 : 0) - (b.buckets[0] === 'credit' ? -1 : 0));
  return charts;
}
