import { describe, expect, it } from 'vitest';
import type { SpendRow } from '../api';
import { addDays, dailyCharts, dayOf, daysBetween, type UtcOffset } from './spend';

const r = (group: string, bucket: 'credit' | 'wallet' | '', currency: string, cost: number, unpriced = 0): SpendRow => ({
  group, bucket, currency, requests: 1, errors: 0, fallbacks: 0, unpriced, input_tokens: 0, output_tokens: 0, cost, cost_formatted: '',
});

const utc: UtcOffset = () => 0;
const tokyo: UtcOffset = () => 9 * 60;
const newYork: UtcOffset = () => -5 * 60;
const from = Date.UTC(2026, 10, 19, 12);
const to = Date.UTC(2026, 10, 21, 12);

describe('dailyCharts', () => {
  it('never stacks buckets of different currencies', () => {
    const charts = dailyCharts([r('2026-11-20', 'credit', 'USD', 1_000_000), r('2026-11-21', 'wallet', 'CNY', 7_000_000)], { credit: 'USD', wallet: 'CNY' }, from, to, utc);
    expect(charts.map((c) => [c.currency, c.buckets])).toEqual([
      ['USD', ['credit']],
      ['CNY', ['wallet']],
    ]);
    expect(charts[0]!.data.map((p) => p.day)).toEqual(['2026-11-19', '2026-11-20', '2026-11-21']);
    expect(charts[0]!.data[1]!.credit_micro).toBe(1_000_000);
    expect(charts[1]!.data[2]!.wallet).toBe(7);
  });
  it('stacks both buckets in one chart when they share a currency, and counts unpriced', () => {
    const charts = dailyCharts(
      // Unpriced requests come in their bucket's row, in its currency.
      [r('2026-11-20', 'credit', 'USD', 1_000_000, 3), r('2026-11-20', 'wallet', 'USD', 500_000), r('2026-11-20', '', '', 0)],
      { credit: 'USD', wallet: 'USD' },
      from,
      to,
      utc,
    );
    expect(charts).toHaveLength(1);
    expect(charts[0]!.buckets).toEqual(['credit', 'wallet']);
    const day = charts[0]!.data.find((p) => p.day === '2026-11-20')!;
    expect(day.credit_micro).toBe(1_000_000);
    expect(day.credit_unpriced).toBe(3);
    expect(day.wallet_micro).toBe(500_000);
  });
  it('puts the server\'s local-day rows on bars of the same local days', () => {
    // The last 7 days at 2026-11-21 20:00 UTC, which is 11-22 05:00 in Tokyo:
    // the server's groups are Tokyo days 11-15 … 11-22; a UTC axis would run
    // 11-14 … 11-21 and leave the 11-22 row off the end.
    const now = Date.UTC(2026, 10, 21, 20);
    const charts = dailyCharts([r('2026-11-22', 'credit', 'USD', 2_000_000)], { credit: 'USD' }, now - 7 * 86_400_000, now + 1, tokyo);
    const days = charts[0]!.data.map((p) => p.day);
    expect(days).toEqual(['2026-11-15', '2026-11-16', '2026-11-17', '2026-11-18', '2026-11-19', '2026-11-20', '2026-11-21', '2026-11-22']);
    expect(charts[0]!.data.find((p) => p.day === '2026-11-22')!.credit_micro).toBe(2_000_000);
  });
});

describe('local days', () => {
  it('lists the days of a range', () => {
    expect(daysBetween(from, to, utc)).toEqual(['2026-11-19', '2026-11-20', '2026-11-21']);
  });
  it('uses the local calendar day east of UTC', () => {
    // 2026-11-19 20:00 UTC is already 11-20 05:00 in Tokyo.
    const f = Date.UTC(2026, 10, 19, 20);
    const t = Date.UTC(2026, 10, 21, 12); // 11-21 21:00 in Tokyo
    expect(daysBetween(f, t, utc)).toEqual(['2026-11-19', '2026-11-20', '2026-11-21']);
    expect(daysBetween(f, t, tokyo)).toEqual(['2026-11-20', '2026-11-21']);
  });
  it('uses the local calendar day west of UTC', () => {
    // 2026-11-19 03:00 UTC is still 11-18 22:00 in New York.
    const f = Date.UTC(2026, 10, 19, 3);
    const t = Date.UTC(2026, 10, 20, 3); // 11-19 22:00
    expect(dayOf(f, newYork)).toBe('2026-11-18');
    expect(daysBetween(f, t, newYork)).toEqual(['2026-11-18', '2026-11-19']);
  });
  it('treats the end as exclusive: whole local days from/to end at the next local midnight', () => {
    // from=2026-11-20&to=2026-11-21 in Tokyo is [11-20 00:00, 11-22 00:00) JST.
    const f = Date.UTC(2026, 10, 19, 15);
    const t = Date.UTC(2026, 10, 21, 15);
    expect(daysBetween(f, t, tokyo)).toEqual(['2026-11-20', '2026-11-21']);
  });
  it('keeps one bar per day across a daylight-saving change', () => {
    // A zone at UTC-4 until 2026-11-01 06:00 UTC, then UTC-5 (US Eastern).
    const eastern: UtcOffset = (t) => (t < Date.UTC(2026, 10, 1, 6) ? -4 * 60 : -5 * 60);
    const f = Date.UTC(2026, 9, 31, 4); // 10-31 00:00 EDT
    const t = Date.UTC(2026, 10, 3, 5); // 11-03 00:00 EST (exclusive)
    expect(daysBetween(f, t, eastern)).toEqual(['2026-10-31', '2026-11-01', '2026-11-02']);
  });
  it('does calendar arithmetic on days', () => {
    expect(addDays('2026-11-21', -6)).toBe('2026-11-15');
    expect(addDays('2026-02-28', 1)).toBe('2026-03-01');
    expect(addDays('2026-12-31', 1)).toBe('2027-01-01');
  });
});
