import { describe, expect, it } from 'vitest';
import { decimalToMicro, formatMicro, formatMicroExact, formatPercent, formatTime, formatTimeShort, formatTokens, microToDecimal, roundDecimal } from './money';

describe('microToDecimal', () => {
  it('is exact for integers of micro-units', () => {
    expect(microToDecimal(12_500_000)).toBe('12.5');
    expect(microToDecimal(-3848)).toBe('-0.003848');
    expect(microToDecimal(0)).toBe('0');
    expect(microToDecimal(9_007_199_254_740_991)).toBe('9007199254.740991');
  });
});

describe('roundDecimal', () => {
  it('rounds half away from zero on the digits, carrying', () => {
    expect(roundDecimal('0.995', 2, 2)).toBe('1.00');
    expect(roundDecimal('19.999999', 2, 2)).toBe('20.00');
    expect(roundDecimal('-0.004', 2, 2)).toBe('0.00');
    expect(roundDecimal('1.2', 2, 4)).toBe('1.20');
  });
});

describe('formatMicro', () => {
  it('formats in the bucket currency', () => {
    expect(formatMicro(12_500_000, 'USD', 'en-US')).toBe('$12.50');
    expect(formatMicro(100_000_000, 'CNY', 'en-US')).toBe('¥100.00');
  });
  it('keeps fractions of a cent visible instead of rounding to zero', () => {
    expect(formatMicro(3848, 'USD', 'en-US')).toBe('$0.003848');
    expect(formatMicro(322_079, 'USD', 'en-US')).toBe('$0.3221');
  });
  it('can show every micro-unit for ledgers', () => {
    expect(formatMicroExact(19_559_921, 'USD', 'en-US')).toBe('$19.559921');
    expect(formatMicroExact(20_000_000, 'USD', 'en-US')).toBe('$20.00');
  });
  it('shows negative balances', () => {
    expect(formatMicro(-1_230_000, 'USD', 'en-US')).toBe('-$1.23');
  });
  it('falls back to the code for non-ISO currencies', () => {
    expect(formatMicro(1_500_000, 'credits', 'en-US')).toBe('1.50 credits');
    expect(formatMicro(1_500_000, '', 'en-US')).toBe('1.50');
  });
});

describe('decimalToMicro', () => {
  it('parses amounts with at most 6 decimals', () => {
    expect(decimalToMicro('12.5')).toBe(12_500_000);
    expect(decimalToMicro(' 20 ')).toBe(20_000_000);
    expect(decimalToMicro('0.000001')).toBe(1);
    expect(decimalToMicro('1.0000001')).toBeNull();
    expect(decimalToMicro('abc')).toBeNull();
    expect(decimalToMicro('1e3')).toBeNull();
  });
});

describe('small formatters', () => {
  it('formats tokens and rates', () => {
    expect(formatTokens(950)).toBe('950');
    expect(formatTokens(12_345)).toBe('12.3k');
    expect(formatTokens(4_200_000)).toBe('4.2M');
    expect(formatPercent(null)).toBe('—');
    expect(formatPercent(0.0523)).toBe('5.2%');
    expect(formatPercent(1)).toBe('100%');
  });
});

describe('times', () => {
  // A key made at noon UTC on 2026-11-21, as /api/keys sends it (Unix ms).
  const createdAt = Date.UTC(2026, 10, 21, 12, 0, 0);
  it('reads key times as Unix milliseconds', () => {
    const text = formatTime(createdAt, 'en-US');
    expect(text).toMatch(/2026/);
    expect(text).toMatch(/Nov (20|21|22)/);
    expect(formatTime(null)).toBe('—');
  });
  it('does not scale small values as if they were seconds', () => {
    // 1_795_000_000 ms is in January 1970, not in 2026.
    expect(formatTime(1_795_000_000, 'en-US')).toMatch(/1970/);
  });
  it('shows only the clock for today', () => {
    expect(formatTimeShort(createdAt, createdAt + 1000, 'en-US')).toMatch(/^\d\d:\d\d:\d\d$/);
  });
});
