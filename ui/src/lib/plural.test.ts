import { describe, expect, it } from 'vitest';
import { nounFor, plural } from './plural';

describe('plural', () => {
  it('uses the singular for exactly one', () => {
    expect(plural(1, 'request', undefined, 'en-US')).toBe('1 request');
    expect(plural(1, 'error', undefined, 'en-US')).toBe('1 error');
    expect(plural(1, 'failover', undefined, 'en-US')).toBe('1 failover');
    expect(plural(1, 'retry', undefined, 'en-US')).toBe('1 retry');
  });
  it('uses the plural for zero and many, with grouped digits', () => {
    expect(plural(0, 'request', undefined, 'en-US')).toBe('0 requests');
    expect(plural(2, 'retry', undefined, 'en-US')).toBe('2 retries');
    expect(plural(3, 'model mismatch', undefined, 'en-US')).toBe('3 model mismatches');
    expect(plural(1200, 'fallback', undefined, 'en-US')).toBe('1,200 fallbacks');
  });
  it('takes an explicit plural form', () => {
    expect(nounFor(2, 'person', 'people')).toBe('people');
    expect(nounFor(1, 'person', 'people')).toBe('person');
  });
});
