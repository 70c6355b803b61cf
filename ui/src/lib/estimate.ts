// The composer's pre-send estimate, one line per model: what the request is
// likely to cost (prompt tokens × price, output as a range) and which bucket pays.

import type { ChatModel, Estimate } from '../api';
import { bucketLabel, formatAmount, formatInt, formatMicroRange } from './money';

/** Rounds to two significant digits, down for a lower bound and up for an
 * upper one, so the range still holds what the server estimated: an estimate
 * has no business showing six decimals. */
export function roughMicro(micro: number, dir: 'down' | 'up'): number {
  if (!Number.isFinite(micro) || micro <= 0) return 0;
  const step = 10 ** Math.max(0, Math.floor(Math.log10(micro)) - 1);
  return (dir === 'down' ? Math.floor(micro / step) : Math.ceil(micro / step)) * step;
}

/** "≈ $0.001–0.016 from Credit"; "no price known · Wallet would pay" when no price is known. */
export function formatEstimate(e: Estimate, locale?: string): string {
  const from = bucketLabel(e.bucket);
  if (!e.priced) return `no price known · ${from} would pay`;
  const lo = roughMicro(e.cost_min_micros, 'down');
  const hi = roughMicro(e.cost_max_micros, 'up');
  return `≈ ${formatMicroRange(lo, hi, e.currency, locale)} from ${from}`;
}

/** "1,234 prompt tokens, 200–4,000 out" */
export function estimateTokens(e: Estimate, locale?: string): string {
  const out =
    e.output_tokens_min === e.output_tokens_max
      ? formatInt(e.output_tokens_max, locale)
      : `${formatInt(e.output_tokens_min, locale)}–${formatInt(e.output_tokens_max, locale)}`;
  return `${formatInt(e.prompt_tokens, locale)} prompt tokens, ${out} out`;
}

/** A model's price per 1M tokens, in its bucket's currency: "$1.25 in · $10.00 out /1M". */
export function modelPrice(m: ChatModel, locale?: string): string {
  if (!m.priced || (m.input_per_m === null && m.output_per_m === null)) return 'unpriced';
  const input = m.input_per_m !== null ? formatAmount(m.input_per_m, m.currency, locale) : '—';
  const output = m.output_per_m !== null ? formatAmount(m.output_per_m, m.currency, locale) : '—';
  return `${input} in · ${output} out /1M`;
}

/** The text of a model in a picker: its name, who pays and its price. */
export function modelLabel(m: ChatModel, locale?: string): string {
  return `${m.model} — ${bucketLabel(m.bucket)} · ${modelPrice(m, locale)}`;
}
