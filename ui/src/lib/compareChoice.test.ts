import { describe, expect, it } from 'vitest';
import { compareModelsFor } from './compareChoice';

describe('compareModelsFor', () => {
  it('starts a compare from the single model when nothing was remembered', () => {
    expect(compareModelsFor([], 'fast', true)).toEqual(['fast']);
    expect(compareModelsFor([], '', true)).toEqual([]);
  });

  it('keeps what was remembered or chosen, the same list when nothing changes', () => {
    const chosen = ['mini', 'cheap'];
    expect(compareModelsFor(chosen, 'fast', true)).toBe(chosen);
    expect(compareModelsFor(chosen, 'fast', false)).toBe(chosen);
  });

  it('leaves an emptied list empty: the last box unchecked stays unchecked', () => {
    expect(compareModelsFor([], 'fast', false)).toEqual([]);
  });
});
