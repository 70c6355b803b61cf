// Money and number formatting. Amounts arrive as integer micro-units
// (1 unit = 1_000_000) of one bucket's currency; they are turned into decimal
// strings without floating-point arithmetic and formatted in that currency.
// Nothing here adds amounts of different currencies.

const MICRO = 1_000_000;

/** Integer micro-units to an exact decimal string: -3848 → "-0.003848". */
export function microToDecimal(micro: number): string {
  if (!Number.isFinite(micro)) return '0';
  const n = Math.trunc(micro);
  const neg = n < 0;
  const abs = Math.abs(n);
  const whole = Math.floor(abs / MICRO);
  const frac = String(abs % MICRO).padStart(6, '0').replace(/0+$/, '');
  return `${neg ? '-' : ''}${whole}${frac ? `.${frac}` : ''}`;
}

/** How many fraction digits a sum of this size deserves: cents for whole
 * units, more for the fractions of a cent that single requests cost. */
function fractionDigits(micro: number): { min: number; max: number } {
  const abs = Math.abs(micro);
  if (abs === 0 || abs >= MICRO) return { min: 2, max: 2 };
  if (abs >= 10_000) return { min: 2, max: 4 };
  return { min: 2, max: 6 };
}

const formatters = new Map<string, Intl.NumberFormat | null>();

function currencyFormatter(currency: string, min: number, max: number, locale?: string): Intl.NumberFormat | null {
  const key = `${locale ?? ''}|${currency}|${min}|${max}`;
  if (formatters.has(key)) return formatters.get(key) ?? null;
  let f: Intl.NumberFormat | null = null;
  try {
    f = new Intl.NumberFormat(locale, {
      style: 'currency',
      currency,
      currencyDisplay: 'narrowSymbol',
      minimumFractionDigits: min,
      maximumFractionDigits: max,
    });
  } catch {
    f = null; // not an ISO 4217 code: shown as "1.23 CODE" below
  }
  formatters.set(key, f);
  return f;
}

/** Rounds an exact decimal string to `max` fraction digits (half away from zero),
 * keeping at least `min`. Works on the string, so no binary rounding creeps in. */
export function roundDecimal(dec: string, min: number, max: number): string {
  const neg = dec.startsWith('-');
  const body = neg ? dec.slice(1) : dec;
  const [wholeRaw, fracRaw = ''] = body.split('.');
  let whole = wholeRaw ?? '0';
  let frac = fracRaw;
  if (frac.length > max) {
    const roundUp = (frac.charCodeAt(max) - 48) >= 5;
    frac = frac.slice(0, max);
    if (roundUp) {
      const digits = (whole + frac).split('').map(Number);
      let i = digits.length - 1;
      while (i >= 0) {
        const d = (digits[i] ?? 0) + 1;
        if (d < 10) {
          digits[i] = d;
          break;
        }
        digits[i] = 0;
        i--;
      }
      let joined = digits.join('');
      if (i < 0) joined = `1${joined}`;
      whole = joined.slice(0, joined.length - frac.length);
      frac = joined.slice(joined.length - frac.length);
    }
  }
  frac = frac.replace(/0+$/, '');
  while (frac.length < min) frac += '0';
  const isZero = /^0*$/.test(whole + frac);
  return `${neg && !isZero ? '-' : ''}${whole || '0'}${frac ? `.${frac}` : ''}`;
}

/** Formats micro-units in a currency: formatMicro(3848, 'USD') → "$0.003848". */
export function formatMicro(micro: number, currency: string | null | undefined, locale?: string): string {
  const { min, max } = fractionDigits(micro);
  const dec = roundDecimal(microToDecimal(micro), min, max);
  const code = (currency ?? '').trim();
  const f = code ? currencyFormatter(code, min, max, locale) : null;
  if (f) {
    // Intl.NumberFormat formats decimal strings exactly (no float round-trip).
    return f.format(dec as unknown as number);
  }
  return code ? `${dec} ${code}` : dec;
}

/** A range in one currency, the symbol once and both ends with the same
 * decimals: formatMicroRange(2000, 10000, 'USD') → "$0.002–0.010". */
export function formatMicroRange(min: number, max: number, currency: string | null | undefined, locale?: string): string {
  const lo = Math.min(min, max);
  const hi = Math.max(min, max);
  const a = fractionDigits(lo);
  const loDec = roundDecimal(microToDecimal(lo), a.min, a.max);
  const digits = (loDec.split('.')[1] ?? '').length;
  const hiDec = roundDecimal(microToDecimal(hi), digits, Math.max(digits, fractionDigits(hi).max));
  if (loDec === hiDec) return formatMicro(lo, currency, locale);
  const code = (currency ?? '').trim();
  const hiDigits = (hiDec.split('.')[1] ?? '').length;
  const f1 = code ? currencyFormatter(code, digits, digits, locale) : null;
  const f2 = code ? currencyFormatter(code, hiDigits, hiDigits, locale) : null;
  if (f1 && f2) {
    const hiText = f2
      .formatToParts(hiDec as unknown as number)
      .filter((p) => p.type !== 'currency')
      .map((p) => p.value)
      .join('')
      .trim();
    return `${f1.format(loDec as unknown as number)}–${hiText}`;
  }
  return code ? `${loDec}–${hiDec} ${code}` : `${loDec}–${hiDec}`;
}

/** Every micro-unit shown (2 to 6 decimals): for ledgers, where cents hide movement. */
export function formatMicroExact(micro: number, currency: string | null | undefined, locale?: string): string {
  const dec = roundDecimal(microToDecimal(micro), 2, 6);
  const code = (currency ?? '').trim();
  const f = code ? currencyFormatter(code, 2, 6, locale) : null;
  if (f) return f.format(dec as unknown as number);
  return code ? `${dec} ${code}` : dec;
}

/** A decimal amount string from the API ("12.500000") in its currency. */
export function formatAmount(amount: string, currency: string, locale?: string): string {
  const micro = decimalToMicro(amount);
  return micro === null ? `${amount} ${currency}` : formatMicro(micro, currency, locale);
}

/** Parses "12.5" → 12500000; null if not an amount with at most 6 decimals. */
export function decimalToMicro(s: string): number | null {
  const m = /^\s*(-)?(\d+)(?:\.(\d{0,6}))?\s*$/.exec(s);
  if (!m) return null;
  const whole = Number(m[2]);
  const frac = Number((m[3] ?? '').padEnd(6, '0') || '0');
  const v = whole * MICRO + frac;
  if (!Number.isSafeInteger(v)) return null;
  return m[1] ? -v : v;
}

/** Token counts: 950 → "950", 12_345 → "12.3k", 4_200_000 → "4.2M". */
export function formatTokens(n: number): string {
  const abs = Math.abs(n);
  if (abs < 1000) return String(n);
  if (abs < 1_000_000) return `${trim1(n / 1000)}k`;
  if (abs < 1_000_000_000) return `${trim1(n / 1_000_000)}M`;
  return `${trim1(n / 1_000_000_000)}B`;
}

function trim1(x: number): string {
  return x.toFixed(1).replace(/\.0$/, '');
}

export function formatInt(n: number, locale?: string): string {
  return new Intl.NumberFormat(locale).format(n);
}

/** 0.1234 → "12.3%"; null/NaN → "—". */
export function formatPercent(ratio: number | null | undefined): string {
  if (ratio === null || ratio === undefined || !Number.isFinite(ratio)) return '—';
  const p = ratio * 100;
  if (p === 0 || p === 100) return `${p}%`;
  return `${p < 10 ? p.toFixed(1) : p.toFixed(0)}%`;
}

export function formatMs(ms: number | null | undefined): string {
  if (ms === null || ms === undefined) return '—';
  if (ms < 1000) return `${Math.round(ms)} ms`;
  if (ms < 60_000) return `${(ms / 1000).toFixed(ms < 10_000 ? 2 : 1)} s`;
  return `${Math.floor(ms / 60_000)} min ${Math.round((ms % 60_000) / 1000)} s`;
}

const dateFormats = new Map<string, Intl.DateTimeFormat>();

/** Intl formatters are costly to build; tables format thousands of times. */
function dateFormat(locale: string | undefined, opts: Intl.DateTimeFormatOptions): Intl.DateTimeFormat {
  const key = `${locale ?? ''}|${JSON.stringify(opts)}`;
  let f = dateFormats.get(key);
  if (!f) {
    f = new Intl.DateTimeFormat(locale, opts);
    dateFormats.set(key, f);
  }
  return f;
}

/** Unix milliseconds (every time the API sends, key times included) to local date-time text. */
export function formatTime(t: number | null | undefined, locale?: string): string {
  if (t === null || t === undefined) return '—';
  return dateFormat(locale, {
    year: 'numeric',
    month: 'short',
    day: 'numeric',
    hour: '2-digit',
    minute: '2-digit',
    second: '2-digit',
  }).format(t);
}

export function bucketLabel(b: string | null | undefined): string {
  if (b === 'credit') return 'Credit';
  if (b === 'wallet') return 'Wallet';
  return 'Not charged';
}

/** Compact time for table rows: "15:40:23" today, "Nov 21 15:40" this year, else with the year. */
export function formatTimeShort(t: number, now: number = Date.now(), locale?: string): string {
  const d = new Date(t);
  const n = new Date(now);
  if (d.toDateString() === n.toDateString()) {
    return dateFormat(locale, { hour: '2-digit', minute: '2-digit', second: '2-digit', hour12: false }).format(d);
  }
  const opts: Intl.DateTimeFormatOptions = { month: 'short', day: 'numeric', hour: '2-digit', minute: '2-digit', hour12: false };
  if (d.getFullYear() !== n.getFullYear()) opts.year = 'numeric';
  return dateFormat(locale, opts).format(d);
}
