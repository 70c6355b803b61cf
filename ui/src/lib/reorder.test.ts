import { describe, expect, it } from 'vitest';
import { moveItem } from './reorder';

describe('moveItem', () => {
  const ts = ['primary', 'backup1', 'backup2', 'backup3'];
  it('drags a backup onto the primary: it becomes primary, the rest shift down', () => {
    expect(moveItem(ts, 2, 0)).toEqual(['backup2', 'primary', 'backup1', 'backup3']);
  });
  it('drags the primary to the end', () => {
    expect(moveItem(ts, 0, 3)).toEqual(['backup1', 'backup2', 'backup3', 'primary']);
  });
  it('swaps neighbours like the up/down buttons', () => {
    expect(moveItem(ts, 1, 2)).toEqual(['primary', 'backup2', 'backup1', 'backup3']);
    expect(moveItem(ts, 2, 1)).toEqual(['primary', 'backup2', 'backup1', 'backup3']);
  });
  it('leaves the list alone for a drop in place or out of range', () => {
    expect(moveItem(ts, 1, 1)).toBe(ts);
    expect(moveItem(ts, -1, 2)).toBe(ts);
    expect(moveItem(ts, 1, 9)).toBe(ts);
  });
});
