import { describe, expect, it } from 'vitest';
import type { ReceiptFacts } from '../api';
import { footerFacts, formatTokensPerSecond, formatTotals, incompleteReason } from './answerFooter';

function receipt(over: Partial<ReceiptFacts> = {}): ReceiptFacts {
  return {
    request_id: 'req_1',
    status: 'ok',
    answered_model: 'gpt-5.5-2026-01-01',
    route: 'gpt-5.5',
    channel: 'relay',
    brand: 'OpenRouter',
    bucket: 'wallet',
    currency: 'CNY',
    cost_micros: 400_000,
    cost: '0.40',
    input_tokens: 1200,
    cached_input_tokens: 800,
    cache_write_tokens: 0,
    output_tokens: 350,
    reasoning_tokens: 120,
    usage_estimated: false,
    priced: true,
    ttft_ms: 420,
    latency_ms: 3100,
    tokens_per_s: 175.4,
    walk: 'primary relay/gpt-5.5 → ok (200); paid from Wallet',
    fallback_count: 0,
    retry_count: 0,
    ...over,
  };
}

describe('footerFacts', () => {
  it('says who answered, by which route and channel, who paid, and how fast', () => {
    const f = footerFacts(receipt(), 'gpt-5.5', 'en-US');
    expect(f.model).toBe('gpt-5.5-2026-01-01');
    expect(f.route).toBe('gpt-5.5');
    expect(f.channel).toBe('relay (OpenRouter)');
    expect(f.bucketLabel).toBe('Wallet');
    expect(f.cost).toBe('¥0.40');
    expect(f.tokens).toBe('1,200 in · 800 cached · 350 out · 120 reasoning');
    expect(f.timing).toBe('first token 420 ms · total 3.10 s · 175 tok/s');
    expect(f.walk).toBeNull();
    expect(f.unpriced).toBe(false);
    expect(f.estimated).toBe(false);
  });

  it('tells the walk in words only when a retry or a fallback happened', () => {
    const walk = 'primary relay/gpt-5.5 → 503 ×3 → backup openai/gpt-5.5 → ok (200); paid from Credit';
    expect(footerFacts(receipt({ fallback_count: 1, walk }), null).walk).toBe(walk);
    expect(footerFacts(receipt({ retry_count: 2, walk }), null).walk).toBe(walk);
  });

  it('marks unpriced and estimated usage instead of showing a cost it does not know', () => {
    const f = footerFacts(receipt({ priced: false, cost_micros: 0, usage_estimated: true }), null);
    expect(f.unpriced).toBe(true);
    expect(f.cost).toBeNull();
    expect(f.estimated).toBe(true);
  });

  it('does not call a failed answer unpriced: it was not charged because nothing was served', () => {
    const failed = receipt({
      status: 'error',
      priced: false,
      channel: null,
      brand: null,
      bucket: null,
      currency: null,
      cost_micros: 0,
      input_tokens: 0,
      cached_input_tokens: 0,
      output_tokens: 0,
      reasoning_tokens: 0,
    });
    const f = footerFacts(failed, 'gpt-5.5');
    expect(f.unpriced).toBe(false);
    expect(f.cost).toBeNull();
    expect(f.bucketLabel).toBe('Not charged');
    // Cut short after some output, an unpriced target still says so.
    expect(footerFacts(receipt({ status: 'upstream_cut', priced: false, output_tokens: 12 }), null).unpriced).toBe(true);
  });

  it('falls back to the model asked for and hides a route of the same name', () => {
    const f = footerFacts(receipt({ answered_model: null, channel: null, brand: null, bucket: null, currency: null, ttft_ms: null, latency_ms: 12, tokens_per_s: null }), 'gpt-5.5');
    expect(f.model).toBe('gpt-5.5');
    expect(f.route).toBeNull();
    expect(f.channel).toBeNull();
    expect(f.bucketLabel).toBe('Not charged');
    expect(f.cost).toBeNull();
    expect(f.timing).toBe('total 12 ms');
  });

  it('names the cache writes only when there were any', () => {
    expect(footerFacts(receipt({ cache_write_tokens: 64 }), null, 'en-US').tokens).toContain('64 cache write');
  });
});

describe('formatTokensPerSecond', () => {
  it('keeps one decimal under 10 and nothing for unknown speeds', () => {
    expect(formatTokensPerSecond(7.25)).toBe('7.3 tok/s');
    expect(formatTokensPerSecond(0)).toBeNull();
    expect(formatTokensPerSecond(null)).toBeNull();
  });
});

describe('incompleteReason', () => {
  it('says why a partial answer ended', () => {
    expect(incompleteReason('client_cancelled')).toBe('stopped');
    expect(incompleteReason('upstream_cut')).toBe('cut off by the provider');
    expect(incompleteReason(null)).toBe('stopped');
  });
});

describe('formatTotals', () => {
  it('shows each bucket in its own currency, Credit first, never added together', () => {
    expect(
      formatTotals(
        [
          { bucket: 'wallet', currency: 'CNY', cost_micros: 400_000, cost: '0.40' },
          { bucket: 'credit', currency: 'USD', cost_micros: 12_300, cost: '0.0123' },
        ],
        'en-US',
      ),
    ).toBe('Credit $0.0123 · Wallet ¥0.40');
    expect(formatTotals([])).toBe('');
  });
});
