import { describe, expect, it } from 'vitest';
import { isAtBottom, nextStick } from './stickToBottom';

describe('nextStick', () => {
  const at = (scrollTop: number, scrollHeight = 2000, clientHeight = 500) => ({ scrollTop, scrollHeight, clientHeight });

  it('counts the last few pixels as the bottom', () => {
    expect(isAtBottom(at(1500))).toBe(true);
    expect(isAtBottom(at(1480))).toBe(true);
    expect(isAtBottom(at(1400))).toBe(false);
  });

  it('stops following when the reader scrolls up, and follows again at the bottom', () => {
    let follow = true;
    follow = nextStick(follow, 1500, at(1300));
    expect(follow).toBe(false);
    // Content grows below while the reader reads: still not following.
    follow = nextStick(follow, 1300, at(1300, 2600));
    expect(follow).toBe(false);
    follow = nextStick(follow, 1300, at(1700, 2600));
    expect(follow).toBe(false);
    follow = nextStick(follow, 1700, at(2100, 2600));
    expect(follow).toBe(true);
  });

  it('keeps following when the view scrolls itself down after the content grew', () => {
    expect(nextStick(true, 1500, at(1500, 2400))).toBe(true);
    expect(nextStick(true, 1500, at(1900, 2400))).toBe(true);
  });
});
