// Auto-scroll while an answer streams: the list follows the newest text
// while the reader is at the bottom, stops following as soon as they scroll
// up, and follows again once they are back at the bottom. Growing content
// never moves scrollTop up, so only the reader can turn following off.

export interface ScrollMetrics {
  scrollTop: number;
  scrollHeight: number;
  clientHeight: number;
}

/** Within `slack` pixels of the end counts as at the bottom. */
export function isAtBottom(m: ScrollMetrics, slack = 32): boolean {
  return m.scrollHeight - m.scrollTop - m.clientHeight <= slack;
}

/** Whether to keep following after a scroll event, given the scrollTop before it. */
export function nextStick(following: boolean, previousTop: number, m: ScrollMetrics): boolean {
  if (isAtBottom(m)) return true;
  if (m.scrollTop < previousTop - 1) return false;
  return following;
}
