import { describe, expect, it } from 'vitest';
import type { Attempt } from '../api';
import { deriveWalk, outcomeText, timeline } from './walk';

const attempts: Attempt[] = [
  { channel: 'relay', upstream_model: 'gpt-5.5', bucket: 'wallet', target_index: 0, outcome: { kind: 'http', status: 503, class: 'server_error' }, started: 0, duration: 100 },
  { channel: 'relay', upstream_model: 'gpt-5.5', bucket: 'wallet', target_index: 0, outcome: { kind: 'http', status: 503, class: 'server_error' }, started: 300, duration: 100 },
  { channel: 'relay', upstream_model: 'gpt-5.5', bucket: 'wallet', target_index: 0, outcome: { kind: 'http', status: 503, class: 'server_error' }, started: 700, duration: 100 },
  { channel: 'openai', upstream_model: 'gpt-5.5', bucket: 'credit', target_index: 1, outcome: { kind: 'ok', status: 200 }, started: 800, duration: 1200 },
];

describe('walk', () => {
  it('collapses retries of one target', () => {
    expect(deriveWalk(attempts)).toBe('primary relay/gpt-5.5 → 503 ×3 → backup openai/gpt-5.5 → ok');
  });
  it('names every outcome kind', () => {
    expect(outcomeText({ kind: 'ok', status: 200 })).toBe('ok (200)');
    expect(outcomeText({ kind: 'http', status: 429, class: 'rate_limited' })).toBe('HTTP 429 · rate limited');
    expect(outcomeText({ kind: 'failed', class: 'first_byte_timeout' })).toBe('first byte timeout');
    expect(outcomeText({ kind: 'skipped', reason: 'circuit_open' })).toBe('skipped: circuit open');
  });
});

describe('timeline', () => {
  it('places bars on one axis from 0 to the request latency', () => {
    const t = timeline(attempts, 2100);
    expect(t.total).toBe(2100);
    expect(t.bars.map((b) => b.label)).toEqual(['primary', 'primary', 'primary', 'backup 1']);
    const last = t.bars[3]!;
    expect(last.left).toBeCloseTo((800 / 2100) * 100);
    expect(last.width).toBeCloseTo((1200 / 2100) * 100);
    expect(last.tone).toBe('ok');
    expect(t.bars[0]!.tone).toBe('fail');
  });
  it('uses the end of the last attempt when latency is missing, and shows zero-length skips', () => {
    const t = timeline(
      [
        { channel: 'a', upstream_model: 'm', bucket: 'credit', target_index: 0, outcome: { kind: 'skipped', reason: 'circuit_open' }, started: 0, duration: 0 },
        { channel: 'b', upstream_model: 'm', bucket: 'credit', target_index: 1, outcome: { kind: 'ok', status: 200 }, started: 0, duration: 50 },
      ],
      null,
    );
    expect(t.total).toBe(50);
    expect(t.bars[0]!.width).toBeGreaterThan(0);
    expect(t.bars[1]!.width).toBe(100);
  });
});
