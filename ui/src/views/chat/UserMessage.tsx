import { memo, useState } from 'react';
import type { ChatMessage } from '../../api';
import { BranchNav } from './BranchNav';
import { useChatActions } from './context';
import { formatBytes } from '../../lib/bytes';

/** What the user wrote, as plain text (whitespace kept), with its attachments; editable into a new version. */
export const UserMessage = memo(function UserMessage({
  message: m,
  branchIndex,
  branchCount,
  busy,
}: {
  message: ChatMessage;
  branchIndex: number;
  branchCount: number;
  /** An answer is streaming: editing waits. */
  busy: boolean;
}) {
  const actions = useChatActions();
  const [editing, setEditing] = useState<string | null>(null);
  const save = () => {
    if (editing === null || !editing.trim()) return;
    actions.edit(m.id, editing);
    setEditing(null);
  };
  return (
    <article className="message message-user" data-testid="message" data-role="user" data-status={m.status} data-message-id={m.id} aria-label="Your message">
      <header className="message-head">
        <span className="message-model">You</span>
        <span className="spacer" />
        <BranchNav messageId={m.id} index={branchIndex} count={branchCount} />
      </header>
      {editing === null ? (
        <div className="user-text">{m.content}</div>
      ) : (
        <div className="stack">
          <label className="sr-only" htmlFor={`edit-${m.id}`}>
            Edit message
          </label>
          <textarea
            id={`edit-${m.id}`}
            className="edit-input"
            value={editing}
            rows={Math.min(12, Math.max(3, editing.split('\n').length))}
            onChange={(e) => setEditing(e.target.value)}
            onKeyDown={(e) => {
              if (e.key === 'Enter' && !e.shiftKey && !e.nativeEvent.isComposing) {
                e.preventDefault();
                save();
              } else if (e.key === 'Escape') {
                e.preventDefault();
                setEditing(null);
              }
            }}
            autoFocus
            data-testid="edit-input"
          />
          <div className="row-actions wrap">
            <button type="button" className="btn btn-small btn-primary" onClick={save} disabled={!editing.trim() || busy} data-testid="edit-send">
              Send as a new version
            </button>
            <button type="button" className="btn btn-small" onClick={() => setEditing(null)}>
              Cancel
            </button>
          </div>
        </div>
      )}
      {m.attachments.length ? (
        <ul className="attachment-list" aria-label="Attachments">
          {m.attachments.map((a) => (
            <li key={a.id} className="chip" title={a.mime}>
              {a.name} <span className="muted">{formatBytes(a.size)}</span>
            </li>
          ))}
        </ul>
      ) : null}
      {editing === null ? (
        <div className="message-actions">
          <button type="button" className="btn btn-small" onClick={() => setEditing(m.content)} disabled={busy} data-testid="edit">
            Edit
          </button>
        </div>
      ) : null}
    </article>
  );
});
