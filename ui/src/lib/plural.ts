// Counts in words: "1 request", "2 requests". Every count the UI shows next
// to a noun goes through here, so no view says "1 requests".

import { formatInt } from './money';

/** Irregular plurals; everything else takes an "s". */
const IRREGULAR: Record<string, string> = {
  retry: 'retries',
  mismatch: 'mismatches',
  'model mismatch': 'model mismatches',
  entry: 'entries',
};

/** The noun for `n` of it: nounFor(1, 'retry') → "retry", nounFor(2, 'retry') → "retries". */
export function nounFor(n: number, singular: string, pluralForm?: string): string {
  if (n === 1) return singular;
  return pluralForm ?? IRREGULAR[singular] ?? `${singular}s`;
}

/** A count with its noun: plural(1, 'request') → "1 request", plural(1200, 'error') → "1,200 errors". */
export function plural(n: number, singular: string, pluralForm?: string, locale?: string): string {
  return `${formatInt(n, locale)} ${nounFor(n, singular, pluralForm)}`;
}
