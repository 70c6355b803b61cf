import { describe, expect, it } from 'vitest';
import type { ChatMessage, ReceiptFacts } from '../api';
import { compareSummary } from './compareSummary';

function receipt(over: Partial<ReceiptFacts>): ReceiptFacts {
  return {
    request_id: 'r',
    status: 'ok',
    answered_model: null,
    route: 'x',
    channel: 'c',
    brand: null,
    bucket: 'credit',
    currency: 'USD',
    cost_micros: 0,
    cost: '0',
    input_tokens: 0,
    cached_input_tokens: 0,
    cache_write_tokens: 0,
    output_tokens: 0,
    reasoning_tokens: 0,
    usage_estimated: false,
    priced: true,
    ttft_ms: null,
    latency_ms: null,
    tokens_per_s: null,
    walk: '',
    fallback_count: 0,
    retry_count: 0,
    ...over,
  };
}

type A = Pick<ChatMessage, 'id' | 'model' | 'status' | 'receipt'>;
const ans = (id: string, model: string, r: Partial<ReceiptFacts> | null, status: ChatMessage['status'] = 'complete'): A => ({
  id,
  model,
  status,
  receipt: r ? receipt(r) : null,
});

describe('compareSummary', () => {
  it('names the cheapest, the fastest first token and the fastest total', () => {
    const s = compareSummary(
      [
        ans('a', 'gpt', { cost_micros: 3000, ttft_ms: 300, latency_ms: 2000 }),
        ans('b', 'claude', { cost_micros: 1200, ttft_ms: 500, latency_ms: 1500 }),
        ans('c', 'gemini', { cost_micros: 5000, ttft_ms: 200, latency_ms: 4000 }),
      ],
      'en-US',
    );
    expect(s.cheapest).toEqual([{ id: 'b', model: 'claude', currency: 'USD', text: '$0.0012' }]);
    expect(s.currencies).toBeNull();
    expect(s.fastestFirstToken).toEqual({ id: 'c', model: 'gemini', text: '200 ms' });
    expect(s.fastestTotal).toEqual({ id: 'b', model: 'claude', text: '1.50 s' });
    expect(s.totals).toEqual([{ bucket: 'credit', text: 'Credit $0.0092' }]);
  });

  it('never ranks costs in different currencies against each other', () => {
    const s = compareSummary(
      [
        ans('a', 'gpt', { cost_micros: 3000 }),
        ans('b', 'gpt-relay', { bucket: 'wallet', currency: 'CNY', cost_micros: 1000 }),
      ],
      'en-US',
    );
    expect(s.cheapest).toEqual([]);
    expect(s.currencies).toBe('USD (Credit), CNY (Wallet)');
    expect(s.totals).toEqual([
      { bucket: 'credit', text: 'Credit $0.003' },
      { bucket: 'wallet', text: 'Wallet ¥0.001' },
    ]);
  });

  it('ranks within each currency that has two answers', () => {
    const s = compareSummary(
      [
        ans('a', 'x', { cost_micros: 3000 }),
        ans('b', 'y', { cost_micros: 2000 }),
        ans('c', 'z', { bucket: 'wallet', currency: 'CNY', cost_micros: 1000 }),
      ],
      'en-US',
    );
    expect(s.cheapest.map((c) => c.id)).toEqual(['b']);
    expect(s.currencies).toBe('USD (Credit), CNY (Wallet)');
  });

  it('leaves out unfinished, failed and unpriced answers from the rankings but counts what they paid', () => {
    const s = compareSummary(
      [
        ans('a', 'x', { cost_micros: 3000, ttft_ms: 900, latency_ms: 1000 }),
        ans('b', 'y', { cost_micros: 500, ttft_ms: 100, latency_ms: 200 }, 'incomplete'),
        ans('c', 'z', { priced: false, cost_micros: 0, ttft_ms: 50 }),
        ans('d', 'w', null, 'streaming'),
      ],
      'en-US',
    );
    expect(s.cheapest).toEqual([]);
    expect(s.fastestFirstToken?.id).toBe('c');
    expect(s.fastestTotal?.id).toBe('a');
    expect(s.unpriced).toEqual(['z']);
    expect(s.pending).toBe(1);
    expect(s.totals).toEqual([{ bucket: 'credit', text: 'Credit $0.0035' }]);
  });
});
