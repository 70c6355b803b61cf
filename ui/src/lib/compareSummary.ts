// The summary row of a compare: cheapest, fastest first token, fastest total,
// and what each bucket paid. Costs are compared only within one currency;
// answers paid in different currencies are never ranked against each other.

import type { BucketName, ChatMessage } from '../api';
import { bucketLabel, formatMicro, formatMs } from './money';

export interface Winner {
  id: string;
  model: string;
  text: string;
}

export interface CompareSummary {
  /** One per currency in which two or more finished answers have a price. */
  cheapest: (Winner & { currency: string })[];
  /** Set when the priced answers are in more than one currency: "USD (Credit), CNY (Wallet)". */
  currencies: string | null;
  fastestFirstToken: Winner | null;
  fastestTotal: Winner | null;
  /** What each bucket paid for this set, in its own currency. */
  totals: { bucket: BucketName; text: string }[];
  /** Models whose answers have no price (left out of "cheapest"). */
  unpriced: string[];
  /** How many answers are still streaming (the summary is partial until 0). */
  pending: number;
}

type Answer = Pick<ChatMessage, 'id' | 'model' | 'status' | 'receipt'>;

function modelOf(a: Answer): string {
  return a.receipt?.answered_model ?? a.model ?? '?';
}

function fastest(answers: Answer[], key: 'ttft_ms' | 'latency_ms'): Winner | null {
  let best: { a: Answer; ms: number } | null = null;
  for (const a of answers) {
    const ms = a.receipt?.[key];
    if (ms === null || ms === undefined) continue;
    if (!best || ms < best.ms) best = { a, ms };
  }
  return best ? { id: best.a.id, model: modelOf(best.a), text: formatMs(best.ms) } : null;
}

export function compareSummary(answers: readonly Answer[], locale?: string): CompareSummary {
  const finished = answers.filter((a) => a.status === 'complete' && a.receipt);
  const priced = finished.filter((a) => a.receipt!.priced && a.receipt!.currency);
  const unpriced = finished.filter((a) => !a.receipt!.priced).map(modelOf);

  const byCurrency = new Map<string, Answer[]>();
  const bucketsOf = new Map<string, Set<string>>();
  for (const a of priced) {
    const c = a.receipt!.currency!;
    byCurrency.set(c, [...(byCurrency.get(c) ?? []), a]);
    const s = bucketsOf.get(c) ?? new Set<string>();
    s.add(bucketLabel(a.receipt!.bucket));
    bucketsOf.set(c, s);
  }
  const cheapest: CompareSummary['cheapest'] = [];
  for (const [currency, group] of byCurrency) {
    if (group.length < 2) continue;
    const best = group.reduce((x, y) => (y.receipt!.cost_micros < x.receipt!.cost_micros ? y : x));
    cheapest.push({ id: best.id, model: modelOf(best), currency, text: formatMicro(best.receipt!.cost_micros, currency, locale) });
  }
  const currencies =
    byCurrency.size > 1
      ? [...byCurrency.keys()].map((c) => `${c} (${[...(bucketsOf.get(c) ?? [])].join(', ')})`).join(', ')
      : null;

  // Every answer that left a receipt was charged (stopped and failed ones included).
  const paid = new Map<string, { bucket: BucketName; currency: string; micros: number }>();
  for (const a of answers) {
    const r = a.receipt;
    if (!r || !r.bucket || !r.currency) continue;
    const key = `${r.bucket}|${r.currency}`;
    const t = paid.get(key) ?? { bucket: r.bucket, currency: r.currency, micros: 0 };
    t.micros += r.cost_micros;
    paid.set(key, t);
  }
  const totals = [...paid.values()]
    .sort((a, b) => (a.bucket === b.bucket ? a.currency.localeCompare(b.currency) : a.bucket === 'credit' ? -1 : 1))
    .map((t) => ({ bucket: t.bucket, text: `${bucketLabel(t.bucket)} ${formatMicro(t.micros, t.currency, locale)}` }));

  return {
    cheapest,
    currencies,
    fastestFirstToken: fastest(finished, 'ttft_ms'),
    fastestTotal: fastest(finished, 'latency_ms'),
    totals,
    unpriced,
    pending: answers.filter((a) => a.status === 'streaming').length,
  };
}
