import { useState } from 'react';
import { chatApi, errorMessage, type Conversation } from '../../api';
import { totalParts } from '../../lib/answerFooter';
import { conversationTitle } from '../../lib/conversations';
import { downloadText } from '../../lib/csv';

/** Above the messages: the title and what each bucket paid in this conversation (never blended). */
export function ConversationHeader({ conv, loading, onError }: { conv: Conversation | null; loading: boolean; onError: (message: string) => void }) {
  const [busy, setBusy] = useState(false);
  const parts = conv ? totalParts(conv.totals) : [];
  const title = loading ? '…' : conversationTitle(conv);
  const download = (format: 'markdown' | 'json') => {
    if (!conv) return;
    setBusy(true);
    chatApi
      .exportFile(conv.id, format)
      .then((f) => downloadText(f.filename, f.text, f.type))
      .catch((e: unknown) => onError(errorMessage(e)))
      .finally(() => setBusy(false));
  };
  return (
    <header className="chat-head">
      <h1 className="chat-title ellipsis" data-testid="conversation-title" title={title}>
        {title}
      </h1>
      <span className="conversation-totals small" data-testid="conversation-totals" aria-label="Spent in this conversation">
        {parts.length === 0 ? (
          <span className="muted">{conv ? 'Nothing spent yet' : ''}</span>
        ) : (
          parts.map((p) => (
            <span key={p.bucket} className={`total-part bucket-${p.bucket}`} data-testid={`conversation-total-${p.bucket}`}>
              <span className={`bucket-dot bucket-${p.bucket}`} aria-hidden="true" />
              {p.text}
            </span>
          ))
        )}
      </span>
      <span className="spacer" />
      {conv ? (
        <span className="chat-head-actions">
          <button type="button" className="btn btn-small" onClick={() => download('markdown')} disabled={busy} data-testid="export-markdown">
            Export .md
          </button>
          <button type="button" className="btn btn-small" onClick={() => download('json')} disabled={busy} data-testid="export-json">
            .json
          </button>
        </span>
      ) : null}
    </header>
  );
}
