import { describe, expect, it } from 'vitest';
import { formatBytes } from './bytes';

describe('formatBytes', () => {
  it('uses the largest unit that keeps the number readable', () => {
    expect(formatBytes(999)).toBe('999 B');
    expect(formatBytes(2_500)).toBe('2.4 KB');
    expect(formatBytes(3_200_000)).toBe('3.1 MB');
    expect(formatBytes(50 * 1024 * 1024)).toBe('50 MB');
    expect(formatBytes(-1)).toBe('');
  });
});
