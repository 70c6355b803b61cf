import { forwardRef, memo, useCallback, useEffect, useRef, useState } from 'react';
import { chatApi, errorMessage, type BucketName, type ChatModel, type ConversationSummary } from '../../api';
import { Confirm, Dialog, ErrorBox } from '../../components/ui';
import { conversationTitle, groupConversations, splitSnippet } from '../../lib/conversations';
import { formatTotals } from '../../lib/answerFooter';
import { formatTimeShort } from '../../lib/money';

const PAGE = 50;
const SEARCH_DELAY_MS = 250;

function useDebounced<T>(value: T, ms: number): T {
  const [v, setV] = useState(value);
  useEffect(() => {
    const t = setTimeout(() => setV(value), ms);
    return () => clearTimeout(t);
  }, [value, ms]);
  return v;
}

/** The left column: search, filters, New chat, and the conversations
 * (pinned first, folders as groups), each with rename / pin / move / delete. */
export const ConversationList = forwardRef<
  HTMLInputElement,
  {
    openId: string | null;
    models: ChatModel[];
    version: number;
    onOpen: (id: string) => void;
    onNew: () => void;
    onDeleted: (id: string) => void;
    onChanged: () => void;
  }
>(function ConversationList({ openId, models, version, onOpen, onNew, onDeleted, onChanged }, searchRef) {
  const [q, setQ] = useState('');
  const [model, setModel] = useState('');
  const [bucket, setBucket] = useState<BucketName | ''>('');
  const query = useDebounced(q.trim(), SEARCH_DELAY_MS);
  const [items, setItems] = useState<ConversationSummary[]>([]);
  const [next, setNext] = useState<string | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [loading, setLoading] = useState(false);
  const [loaded, setLoaded] = useState(false);
  const [renaming, setRenaming] = useState<string | null>(null);
  const [moving, setMoving] = useState<ConversationSummary | null>(null);
  const [deleting, setDeleting] = useState<ConversationSummary | null>(null);
  const [importing, setImporting] = useState<string | null>(null);
  const generation = useRef(0);
  const importRef = useRef<HTMLInputElement>(null);

  const filter = { q: query || undefined, model: model || undefined, bucket: bucket || undefined };
  const filterKey = JSON.stringify(filter);

  const load = useCallback(
    (cursor: string | null) => {
      const gen = cursor ? generation.current : ++generation.current;
      setLoading(true);
      chatApi
        .conversations(JSON.parse(filterKey) as typeof filter, PAGE, cursor)
        .then((page) => {
          if (gen !== generation.current) return;
          setItems((prev) => (cursor ? prev.concat(page.items) : page.items));
          setNext(page.next);
          setError(null);
          setLoaded(true);
        })
        .catch((e: unknown) => {
          if (gen === generation.current) setError(errorMessage(e));
        })
        .finally(() => {
          if (gen === generation.current) setLoading(false);
        });
    },
    // eslint-disable-next-line react-hooks/exhaustive-deps
    [filterKey],
  );

  useEffect(() => {
    load(null);
  }, [load, version]);

  const act = (p: Promise<unknown>) =>
    p
      .then(() => {
        load(null);
        onChanged();
      })
      .catch((e: unknown) => setError(errorMessage(e)));

  const searching = Boolean(query);
  const groups = searching ? [{ key: 'results', kind: 'chats' as const, label: '', items }] : groupConversations(items);
  const filtered = Boolean(query || model || bucket);

  return (
    <aside className="chat-sidebar" aria-label="Conversations">
      <div className="chat-sidebar-head">
        <button type="button" className="btn btn-primary" onClick={onNew} data-testid="new-chat" title="New chat (Ctrl/Cmd+Shift+O)">
          New chat
        </button>
        <button
          type="button"
          className="btn btn-small"
          onClick={() => importRef.current?.click()}
          data-testid="chat-import"
          title="Import a ChatGPT export (conversations.json)"
        >
          Import
        </button>
        <input
          ref={importRef}
          type="file"
          accept="application/json,.json"
          hidden
          onChange={(e) => {
            const f = e.target.files?.[0];
            e.target.value = '';
            if (!f) return;
            setImporting('Importing…');
            chatApi
              .importChatGpt(f)
              .then((r) => {
                setImporting(`Imported ${r.imported} conversation${r.imported === 1 ? '' : 's'}.`);
                load(null);
              })
              .catch((err: unknown) => {
                setImporting(null);
                setError(errorMessage(err));
              });
          }}
        />
      </div>
      <label className="sr-only" htmlFor="chat-search">
        Search conversations
      </label>
      <input
        id="chat-search"
        ref={searchRef}
        type="search"
        value={q}
        onChange={(e) => setQ(e.target.value)}
        placeholder="Search (Ctrl/Cmd+K)"
        data-testid="chat-search"
        autoComplete="off"
      />
      <div className="chat-filters">
        <label className="sr-only" htmlFor="chat-filter-model">
          Filter by model
        </label>
        <select id="chat-filter-model" value={model} onChange={(e) => setModel(e.target.value)} data-testid="chat-filter-model">
          <option value="">Any model</option>
          {models.map((m) => (
            <option key={m.model} value={m.model}>
              {m.model}
            </option>
          ))}
        </select>
        <label className="sr-only" htmlFor="chat-filter-bucket">
          Filter by bucket
        </label>
        <select id="chat-filter-bucket" value={bucket} onChange={(e) => setBucket(e.target.value as BucketName | '')} data-testid="chat-filter-bucket">
          <option value="">Any bucket</option>
          <option value="credit">Credit</option>
          <option value="wallet">Wallet</option>
        </select>
      </div>
      {importing ? (
        <p className="small muted" role="status">
          {importing}
        </p>
      ) : null}
      <ErrorBox error={error} testId="chat-list-error" />

      <nav className="conversation-list" data-testid="conversation-list" aria-label="Conversation list" aria-busy={loading}>
        {loaded && items.length === 0 ? (
          <p className="muted small conversation-empty" data-testid="conversation-empty">
            {filtered ? 'Nothing matches.' : 'No conversations yet.'}
          </p>
        ) : null}
        {groups.map((g) => {
          const list = (
            <ul>
              {g.items.map((c) => (
                <ConversationItem
                  key={c.id}
                  c={c}
                  open={c.id === openId}
                  renaming={renaming === c.id}
                  onOpen={onOpen}
                  onRename={(title) => {
                    setRenaming(null);
                    if (title !== null && title !== c.title) void act(chatApi.update(c.id, { title }));
                  }}
                  onStartRename={() => setRenaming(c.id)}
                  onPin={() => void act(chatApi.update(c.id, { pinned: !c.pinned }))}
                  onMove={() => setMoving(c)}
                  onDelete={() => setDeleting(c)}
                />
              ))}
            </ul>
          );
          if (g.kind === 'folder') {
            return (
              <details key={g.key} className="conversation-group" open data-testid="conversation-folder" data-folder={g.label}>
                <summary>{g.label}</summary>
                {list}
              </details>
            );
          }
          return (
            <div key={g.key} className="conversation-group" data-group={g.kind}>
              {g.label ? <h2 className="conversation-group-label">{g.label}</h2> : null}
              {list}
            </div>
          );
        })}
        {next ? (
          <button type="button" className="btn btn-small conversation-more" onClick={() => load(next)} disabled={loading} data-testid="conversation-more">
            {loading ? 'Loading…' : 'More'}
          </button>
        ) : null}
      </nav>

      <MoveDialog
        c={moving}
        onClose={() => setMoving(null)}
        onMove={(folder) => {
          if (!moving) return Promise.resolve();
          return chatApi.update(moving.id, { folder }).then(() => {
            load(null);
            onChanged();
          });
        }}
      />
      <Confirm
        open={deleting !== null}
        title="Delete this conversation?"
        body={
          <p>
            <strong>{conversationTitle(deleting)}</strong> and its attachments are deleted. Its receipts and charges stay in the ledger.
          </p>
        }
        confirmLabel="Delete"
        testId="conversation-delete-confirm"
        onClose={() => setDeleting(null)}
        onConfirm={async () => {
          if (!deleting) return;
          const id = deleting.id;
          await chatApi.remove(id);
          onDeleted(id);
          load(null);
        }}
      />
    </aside>
  );
});

const ConversationItem = memo(function ConversationItem({
  c,
  open,
  renaming,
  onOpen,
  onRename,
  onStartRename,
  onPin,
  onMove,
  onDelete,
}: {
  c: ConversationSummary;
  open: boolean;
  renaming: boolean;
  onOpen: (id: string) => void;
  onRename: (title: string | null) => void;
  onStartRename: () => void;
  onPin: () => void;
  onMove: () => void;
  onDelete: () => void;
}) {
  const [menu, setMenu] = useState(false);
  const [title, setTitle] = useState(c.title);
  const menuRef = useRef<HTMLDivElement>(null);
  const toggleRef = useRef<HTMLButtonElement>(null);
  // Enter then the blur that follows must not rename twice.
  const renamed = useRef(false);
  useEffect(() => {
    setTitle(c.title);
    renamed.current = false;
  }, [c.title, renaming]);
  const finish = (t: string | null) => {
    if (renamed.current) return;
    renamed.current = true;
    onRename(t);
  };
  useEffect(() => {
    if (!menu) return undefined;
    const close = (e: MouseEvent) => {
      if (!menuRef.current?.contains(e.target as Node)) setMenu(false);
    };
    document.addEventListener('mousedown', close);
    return () => document.removeEventListener('mousedown', close);
  }, [menu]);
  const pick = (f: () => void) => () => {
    setMenu(false);
    f();
  };
  return (
    <li className={`conversation-item${open ? ' open' : ''}`} data-testid="conversation-item" data-conversation-id={c.id} data-pinned={c.pinned}>
      {renaming ? (
        <input
          className="conversation-rename"
          value={title}
          autoFocus
          aria-label="New title"
          onChange={(e) => setTitle(e.target.value)}
          onBlur={() => finish(title.trim())}
          onKeyDown={(e) => {
            if (e.key === 'Enter') {
              e.preventDefault();
              finish(title.trim());
            } else if (e.key === 'Escape') {
              e.preventDefault();
              finish(null);
            }
          }}
          data-testid="conversation-rename-input"
        />
      ) : (
        <a
          href={`/chat/${encodeURIComponent(c.id)}`}
          className="conversation-link"
          aria-current={open ? 'page' : undefined}
          onClick={(e) => {
            if (e.metaKey || e.ctrlKey || e.shiftKey || e.button !== 0) return;
            e.preventDefault();
            onOpen(c.id);
          }}
        >
          <span className="conversation-title ellipsis">
            {conversationTitle(c)}
          </span>
          {c.snippet ? (
            <span className="conversation-snippet small" data-testid="conversation-snippet">
              {splitSnippet(c.snippet).map((p, i) => (p.hit ? <mark key={i}>{p.text}</mark> : <span key={i}>{p.text}</span>))}
            </span>
          ) : null}
          <span className="conversation-meta small muted ellipsis">
            {formatTimeShort(c.updated_at)}
            {c.models[0] ? ` · ${c.models[0]}` : ''}
            {c.totals.length ? ` · ${formatTotals(c.totals)}` : ''}
          </span>
        </a>
      )}
      <div className="conversation-actions" ref={menuRef}>
        <button
          ref={toggleRef}
          type="button"
          className="icon-btn"
          aria-haspopup="menu"
          aria-expanded={menu}
          aria-label={`Actions for ${conversationTitle(c)}`}
          onClick={() => setMenu((m) => !m)}
          onKeyDown={(e) => {
            if (e.key === 'Escape' && menu) {
              e.preventDefault();
              setMenu(false);
            }
          }}
          data-testid="conversation-actions"
        >
          ⋯
        </button>
        {menu ? (
          <div
            className="menu"
            role="menu"
            onKeyDown={(e) => {
              if (e.key === 'Escape') {
                e.preventDefault();
                setMenu(false);
                toggleRef.current?.focus();
              } else if (e.key === 'ArrowDown' || e.key === 'ArrowUp') {
                e.preventDefault();
                const items = [...e.currentTarget.querySelectorAll<HTMLElement>('[role=menuitem]')];
                const at = items.indexOf(document.activeElement as HTMLElement);
                items[(at + (e.key === 'ArrowDown' ? 1 : -1) + items.length) % items.length]?.focus();
              }
            }}
          >
            <button type="button" role="menuitem" onClick={pick(onStartRename)} data-testid="conversation-rename" autoFocus>
              Rename
            </button>
            <button type="button" role="menuitem" onClick={pick(onPin)} data-testid="conversation-pin">
              {c.pinned ? 'Unpin' : 'Pin'}
            </button>
            <button type="button" role="menuitem" onClick={pick(onMove)} data-testid="conversation-move">
              Move to folder…
            </button>
            <button type="button" role="menuitem" className="danger" onClick={pick(onDelete)} data-testid="conversation-delete">
              Delete…
            </button>
          </div>
        ) : null}
      </div>
    </li>
  );
});

function MoveDialog({ c, onClose, onMove }: { c: ConversationSummary | null; onClose: () => void; onMove: (folder: string | null) => Promise<void> }) {
  const [folder, setFolder] = useState('');
  const [folders, setFolders] = useState<string[]>([]);
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  useEffect(() => {
    if (!c) return;
    setFolder(c.folder ?? '');
    setError(null);
    chatApi
      .folders()
      .then((r) => setFolders(r.folders))
      .catch(() => setFolders([]));
  }, [c]);
  const submit = (value: string | null) => {
    setBusy(true);
    onMove(value)
      .then(onClose)
      .catch((e: unknown) => setError(errorMessage(e)))
      .finally(() => setBusy(false));
  };
  return (
    <Dialog open={c !== null} onClose={onClose} title="Move to folder" testId="move-dialog">
      <form
        className="stack"
        onSubmit={(e) => {
          e.preventDefault();
          submit(folder.trim() || null);
        }}
      >
        <label>
          Folder
          <input value={folder} onChange={(e) => setFolder(e.target.value)} list="chat-folders" autoFocus placeholder="New or existing folder" data-testid="move-folder-input" />
          <datalist id="chat-folders">
            {folders.map((f) => (
              <option key={f} value={f} />
            ))}
          </datalist>
        </label>
        <ErrorBox error={error} />
        <div className="row-actions">
          {c?.folder ? (
            <button type="button" className="btn" onClick={() => submit(null)} disabled={busy} data-testid="move-clear">
              Take out of “{c.folder}”
            </button>
          ) : null}
          <button type="submit" className="btn btn-primary" disabled={busy || !folder.trim()} data-testid="move-save">
            Move
          </button>
        </div>
      </form>
    </Dialog>
  );
}
