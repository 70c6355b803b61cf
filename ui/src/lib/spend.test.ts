import { describe, expect, it } from 'vitest';
import type { SpendRow } from '../api';
import { dailyCharts, daysBetween } from './spend';

const r = (group: string, bucket: 'credit' | 'wallet' | '', currency: string, cost: number, unpriced = 0): SpendRow => ({
  group, bucket, currency, requests: 1, errors: 0, fallbacks: 0, unpriced, input_tokens: 0, output_tokens: 0, cost, cost_formatted: '',
});

const from = Date.UTC(2026, 10, 19, 12);
const to = Date.UTC(2026, 10, 21, 12);

describe('dailyCharts', () => {
  it('never stacks buckets of different currencies', () => {
    const charts = dailyCharts([r('2026-11-20', 'credit', 'USD', 1_000_000), r('2026-11-21', 'wallet', 'CNY', 7_000_000)], { credit: 'USD', wallet: 'CNY' }, from, to);
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
      [r('2026-11-20', 'credit', 'USD', 1_000_000), r('2026-11-20', 'credit', '', 0, 3), r('2026-11-20', 'wallet', 'USD', 500_000), r('2026-11-20', '', '', 0)],
      { credit: 'USD', wallet: 'USD' },
      from,
      to,
    );
    expect(charts).toHaveLength(1);
    expect(charts[0]!.buckets).toEqual(['credit', 'wallet']);
    const day = charts[0]!.data.find((p) => p.day === '2026-11-20')!;
    expect(day.credit_micro).toBe(1_000_000);
    expect(day.credit_unpriced).toBe(3);
    expect(day.wallet_micro).toBe(500_000);
  });
  it('lists the days of a range', () => {
    expect(daysBetween(from, to)).toEqual(['2026-11-19', '2026-11-20', '2026-11-21']);
  });
});
