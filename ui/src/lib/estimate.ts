// The composer's pre-send estimate, one line per model: what the request is
// likely to cost (prompt tokens × price, output as a range) and which bucket pays.

import type { ChatModel, Estimate } from '../api';
import { bucketLabel, formatAmount, formatInt, formatMicroRange } from './money';

/** "≈ $0.002–0.010 from Credit"; "unpriced · Wallet" when no price is known. */
export function formatEstimate(e: Estimate, locale?: string): string {
  const from = bucketLabel(e.bucket);
  if (!e.priced) return `no price known · ${from} would pay`;
  return `≈ ${formatMicroRange(e.cost_min_micros, e.cost_max_micros, e.currency, locale)} from ${from}`;
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
