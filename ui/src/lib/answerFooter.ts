// What the footer under an answer says, from its receipt: who answered, how
// it got there, who paid and how much (in that bucket's currency), and how
// fast. Also the per-bucket totals of a conversation (never blended).

import type { BucketName, BucketTotal, ReceiptFacts, ReceiptStatus } from '../api';
import { bucketLabel, formatInt, formatMicro, formatMs } from './money';

export interface FooterFacts {
  /** The upstream model that answered (from the response), or what was asked for. */
  model: string;
  /** The route asked for, when it is not the same name as the model that answered. */
  route: string | null;
  /** "relay (OpenRouter)"; null when no channel was reached. */
  channel: string | null;
  bucket: BucketName | null;
  bucketLabel: string;
  tokens: string;
  /** The cost in the bucket's currency; null when unpriced or nothing was charged. */
  cost: string | null;
  unpriced: boolean;
  estimated: boolean;
  timing: string;
  /** The route walked, in words, when a retry or a fallback happened. */
  walk: string | null;
}

export function formatTokensPerSecond(tps: number | null | undefined): string | null {
  if (tps === null || tps === undefined || !Number.isFinite(tps) || tps <= 0) return null;
  return `${tps < 10 ? tps.toFixed(1) : Math.round(tps)} tok/s`;
}

export function tokenParts(r: ReceiptFacts, locale?: string): string {
  const parts = [`${formatInt(r.input_tokens, locale)} in`, `${formatInt(r.cached_input_tokens, locale)} cached`];
  if (r.cache_write_tokens > 0) parts.push(`${formatInt(r.cache_write_tokens, locale)} cache write`);
  parts.push(`${formatInt(r.output_tokens, locale)} out`, `${formatInt(r.reasoning_tokens, locale)} reasoning`);
  return parts.join(' · ');
}

export function timingParts(r: ReceiptFacts): string {
  const parts: string[] = [];
  if (r.ttft_ms !== null) parts.push(`first token ${formatMs(r.ttft_ms)}`);
  if (r.latency_ms !== null) parts.push(`total ${formatMs(r.latency_ms)}`);
  const tps = formatTokensPerSecond(r.tokens_per_s);
  if (tps) parts.push(tps);
  return parts.join(' · ');
}

export function footerFacts(r: ReceiptFacts, asked: string | null, locale?: string): FooterFacts {
  const model = r.answered_model ?? asked ?? r.route;
  const route = r.route && r.route !== model ? r.route : null;
  const channel = r.channel ? `${r.channel}${r.brand && r.brand !== r.channel ? ` (${r.brand})` : ''}` : null;
  // Like the Receipts table: a request that failed before any usage has no
  // price to miss (nothing was charged because nothing was served).
  const used = r.input_tokens + r.cached_input_tokens + r.cache_write_tokens + r.output_tokens + r.reasoning_tokens;
  const unpriced = !r.priced && (r.status === 'ok' || used > 0);
  return {
    model,
    route,
    channel,
    bucket: r.bucket,
    bucketLabel: bucketLabel(r.bucket),
    tokens: tokenParts(r, locale),
    cost: !unpriced && r.currency ? formatMicro(r.cost_micros, r.currency, locale) : null,
    unpriced,
    estimated: r.usage_estimated,
    timing: timingParts(r),
    walk: r.fallback_count > 0 || r.retry_count > 0 ? r.walk || null : null,
  };
}

/** Why a partial answer ended, in words. */
export function incompleteReason(status: ReceiptStatus | null | undefined): string {
  switch (status) {
    case 'upstream_cut':
      return 'cut off by the provider';
    case 'interrupted':
      return 'interrupted (the app stopped)';
    case 'error':
      return 'cut by an error';
    default:
      return 'stopped';
  }
}

export interface TotalPart {
  bucket: BucketName;
  text: string;
}

/** One part per bucket, Credit first: "Credit $0.0123", "Wallet ¥0.40". */
export function totalParts(totals: readonly BucketTotal[], locale?: string): TotalPart[] {
  const order: Record<BucketName, number> = { credit: 0, wallet: 1 };
  return [...totals]
    .sort((a, b) => order[a.bucket] - order[b.bucket])
    .map((t) => ({ bucket: t.bucket, text: `${bucketLabel(t.bucket)} ${formatMicro(t.cost_micros, t.currency, locale)}` }));
}

export function formatTotals(totals: readonly BucketTotal[], locale?: string): string {
  return totalParts(totals, locale)
    .map((p) => p.text)
    .join(' · ');
}
