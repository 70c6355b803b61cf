import { useCallback, useEffect, useLayoutEffect, useMemo, useRef, useState } from 'react';
import { useVirtualizer } from '@tanstack/react-virtual';
import type { AttemptInfo, Conversation } from '../../api';
import type { AnswerProblem } from '../../lib/chatState';
import { branchesOf, buildTree, pathTo, viewRows, type ViewRow } from '../../lib/chatTree';
import { nextStick } from '../../lib/stickToBottom';
import { AssistantMessage } from './AssistantMessage';
import { CompareSet } from './CompareSet';
import { UserMessage } from './UserMessage';

function estimate(row: ViewRow | undefined): number {
  if (!row) return 160;
  if (row.kind === 'compare') return 380;
  return row.message.role === 'user' ? 90 : 240;
}

/** The path in view, virtualised (a 2,000-message conversation renders only
 * what is on screen). Follows the newest text while the reader is at the
 * bottom; scrolling up stops that, scrolling back down resumes it. */
export function MessageList({
  conv,
  problems,
  attempts,
  narrow,
  busy,
  followSignal,
}: {
  conv: Conversation;
  problems: ReadonlyMap<string, AnswerProblem>;
  attempts: ReadonlyMap<string, AttemptInfo>;
  narrow: boolean;
  busy: boolean;
  /** Changes when the user sends: the list follows again. */
  followSignal: number;
}) {
  const tree = useMemo(() => buildTree(conv.messages), [conv.messages]);
  const path = useMemo(() => pathTo(tree, conv.current_leaf), [tree, conv.current_leaf]);
  const rows = useMemo(() => viewRows(tree, path), [tree, path]);

  const scrollRef = useRef<HTMLDivElement>(null);
  const virtualizer = useVirtualizer({
    count: rows.length,
    getScrollElement: () => scrollRef.current,
    estimateSize: (i) => estimate(rows[i]),
    getItemKey: (i) => rows[i]?.key ?? i,
    overscan: 4,
  });

  const follow = useRef(true);
  const lastTop = useRef(0);
  const [following, setFollowing] = useState(true);
  const setFollow = (f: boolean) => {
    if (f === follow.current) return;
    follow.current = f;
    setFollowing(f);
  };
  const onScroll = useCallback(() => {
    const el = scrollRef.current;
    if (!el) return;
    const f = nextStick(follow.current, lastTop.current, el);
    lastTop.current = el.scrollTop;
    if (f !== follow.current) {
      follow.current = f;
      setFollowing(f);
    }
  }, []);

  const toBottom = useCallback(() => {
    const el = scrollRef.current;
    if (!el) return;
    el.scrollTop = el.scrollHeight;
    lastTop.current = el.scrollTop;
  }, []);

  const total = virtualizer.getTotalSize();
  useLayoutEffect(() => {
    if (follow.current) toBottom();
  }, [total, rows.length, toBottom]);

  useEffect(() => {
    if (followSignal === 0) return;
    setFollow(true);
    toBottom();
  }, [followSignal, toBottom]); // eslint-disable-line react-hooks/exhaustive-deps

  const items = virtualizer.getVirtualItems();

  return (
    <div className="chat-scroll-wrap">
      <div
        ref={scrollRef}
        className="chat-scroll"
        onScroll={onScroll}
        data-testid="message-list"
        data-count={rows.length}
        tabIndex={0}
        role="region"
        aria-label="Messages"
      >
        {rows.length === 0 ? <p className="muted chat-empty-hint">No messages yet. Write below to start.</p> : null}
        <div className="chat-rows" style={{ height: total }}>
          {items.map((vi) => {
            const row = rows[vi.index]!;
            return (
              <div key={vi.key} data-index={vi.index} ref={virtualizer.measureElement} className={`chat-row chat-row-${row.kind}`} style={{ transform: `translateY(${vi.start}px)` }}>
                <Row row={row} tree={tree} problems={problems} attempts={attempts} narrow={narrow} busy={busy} />
              </div>
            );
          })}
        </div>
      </div>
      {!following ? (
        <button type="button" className="btn btn-small jump-latest" onClick={() => { setFollow(true); toBottom(); }} data-testid="jump-latest">
          ↓ Latest
        </button>
      ) : null}
    </div>
  );
}

function Row({
  row,
  tree,
  problems,
  attempts,
  narrow,
  busy,
}: {
  row: ViewRow;
  tree: ReturnType<typeof buildTree>;
  problems: ReadonlyMap<string, AnswerProblem>;
  attempts: ReadonlyMap<string, AttemptInfo>;
  narrow: boolean;
  busy: boolean;
}) {
  if (row.kind === 'compare') {
    const b = branchesOf(tree, row.inPath);
    return (
      <CompareSet
        members={row.members}
        inPath={row.inPath.id}
        branchIndex={b.index}
        branchCount={b.branches.length}
        problems={problems}
        attempts={attempts}
        narrow={narrow}
      />
    );
  }
  const m = row.message;
  const b = branchesOf(tree, m);
  if (m.role === 'user') return <UserMessage message={m} branchIndex={b.index} branchCount={b.branches.length} busy={busy} />;
  return (
    <AssistantMessage
      message={m}
      branchIndex={b.index}
      branchCount={b.branches.length}
      problem={problems.get(m.id)}
      attempt={attempts.get(m.id)}
    />
  );
}
