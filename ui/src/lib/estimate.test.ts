import { describe, expect, it } from 'vitest';
import type { ChatModel, Estimate } from '../api';
import { estimateTokens, formatEstimate, modelLabel, modelPrice, roughMicro } from './estimate';
import { formatMicroRange } from './money';

function est(over: Partial<Estimate> = {}): Estimate {
  return {
    model: 'gpt-5.5',
    bucket: 'credit',
    currency: 'USD',
    priced: true,
    prompt_tokens: 1234,
    input_cost_micros: 1500,
    output_tokens_min: 200,
    output_tokens_max: 4000,
    cost_min_micros: 2000,
    cost_max_micros: 10_000,
    cost_min: '0.002',
    cost_max: '0.01',
    ...over,
  };
}

describe('formatMicroRange', () => {
  it('shows the symbol once and both ends with the same decimals', () => {
    expect(formatMicroRange(2000, 10_000, 'USD', 'en-US')).toBe('$0.002–0.010');
    expect(formatMicroRange(14_000, 70_000, 'CNY', 'en-US')).toBe('¥0.014–0.070');
    expect(formatMicroRange(1_500_000, 12_000_000, 'USD', 'en-US')).toBe('$1.50–12.00');
  });
  it('collapses an empty range and keeps unknown currency codes readable', () => {
    expect(formatMicroRange(5000, 5000, 'USD', 'en-US')).toBe('$0.005');
    expect(formatMicroRange(2000, 10_000, 'POINTS', 'en-US')).toBe('0.002–0.010 POINTS');
  });
});

describe('formatEstimate', () => {
  it('says the likely cost and the bucket that pays', () => {
    expect(formatEstimate(est(), 'en-US')).toBe('≈ $0.002–0.010 from Credit');
    expect(formatEstimate(est({ bucket: 'wallet', currency: 'CNY', cost_min_micros: 14_000, cost_max_micros: 70_000 }), 'en-US')).toBe(
      '≈ ¥0.014–0.070 from Wallet',
    );
  });
  it('rounds the range outwards to two significant digits', () => {
    expect(formatEstimate(est({ cost_min_micros: 1068, cost_max_micros: 15_318 }), 'en-US')).toBe('≈ $0.001–0.016 from Credit');
    expect(roughMicro(1068, 'down')).toBe(1000);
    expect(roughMicro(15_318, 'up')).toBe(16_000);
    expect(roughMicro(7, 'up')).toBe(7);
    expect(roughMicro(0, 'down')).toBe(0);
  });
  it('does not invent a cost for an unpriced model', () => {
    expect(formatEstimate(est({ priced: false, bucket: 'wallet' }))).toBe('no price known · Wallet would pay');
  });
  it('counts the tokens behind it', () => {
    expect(estimateTokens(est(), 'en-US')).toBe('1,234 prompt tokens, 200–4,000 out');
    expect(estimateTokens(est({ output_tokens_min: 50, output_tokens_max: 50 }), 'en-US')).toBe('1,234 prompt tokens, 50 out');
  });
});

describe('modelPrice and modelLabel', () => {
  const m: ChatModel = {
    model: 'gpt-5.5',
    bucket: 'credit',
    currency: 'USD',
    priced: true,
    input_per_m: '1.25',
    output_per_m: '10',
    reasoning: true,
    route_targets: 2,
  };
  it('shows the price per 1M tokens in the bucket currency', () => {
    expect(modelPrice(m, 'en-US')).toBe('$1.25 in · $10.00 out /1M');
    expect(modelLabel(m, 'en-US')).toBe('gpt-5.5 — Credit · $1.25 in · $10.00 out /1M');
    expect(modelPrice({ ...m, priced: false, input_per_m: null, output_per_m: null })).toBe('unpriced');
  });
});
