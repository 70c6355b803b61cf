import { describe, expect, it } from 'vitest';
import { circuitBadge, formatWait } from './circuit';

describe('circuitBadge', () => {
  it('says nothing for a closed circuit', () => {
    expect(circuitBadge({ state: 'closed', retry_in_ms: null })).toBeNull();
  });
  it('gives the wait of an open circuit in whole seconds', () => {
    expect(circuitBadge({ state: 'open', retry_in_ms: 12_000 })?.text).toBe('circuit open · retry in 12 s');
    expect(circuitBadge({ state: 'open', retry_in_ms: 11_200 })?.text).toBe('circuit open · retry in 12 s');
    expect(circuitBadge({ state: 'open', retry_in_ms: 90_000 })?.text).toBe('circuit open · retry in 1 min 30 s');
  });
  it('never shows a zero wait', () => {
    for (const retry_in_ms of [0, 1, 400, null]) {
      const text = circuitBadge({ state: 'open', retry_in_ms })?.text ?? '';
      expect(text).not.toMatch(/\b0 (ms|s)\b/);
    }
    expect(circuitBadge({ state: 'open', retry_in_ms: 400 })?.text).toBe('circuit open · retry in 1 s');
    expect(circuitBadge({ state: 'open', retry_in_ms: 0 })?.text).toBe('circuit open · retrying soon');
  });
  it('says a half-open circuit is probed by the next request', () => {
    const b = circuitBadge({ state: 'half_open', retry_in_ms: null });
    expect(b?.text).toBe('probing on next request');
    expect(b?.tone).toBe('warn');
  });
  it('formats waits', () => {
    expect(formatWait(60_000)).toBe('1 min');
    expect(formatWait(59_001)).toBe('1 min');
  });
});
