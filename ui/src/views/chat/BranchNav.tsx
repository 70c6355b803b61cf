import { useChatActions } from './context';

/** ‹ 2/3 › between siblings (edits of a message, or answers to it). */
export function BranchNav({ messageId, index, count }: { messageId: string; index: number; count: number }) {
  const { selectBranch } = useChatActions();
  if (count < 2) return null;
  return (
    <span className="branch-nav" role="group" aria-label="Versions">
      <button
        type="button"
        className="icon-btn"
        disabled={index === 0}
        onClick={() => selectBranch(messageId, index - 1)}
        aria-label="Previous version"
        data-testid="branch-prev"
      >
        ‹
      </button>
      <span className="branch-pos small" data-testid="branch-pos" aria-live="polite">
        {index + 1}/{count}
      </span>
      <button
        type="button"
        className="icon-btn"
        disabled={index >= count - 1}
        onClick={() => selectBranch(messageId, index + 1)}
        aria-label="Next version"
        data-testid="branch-next"
      >
        ›
      </button>
    </span>
  );
}
