// Chat: conversations on the left, the path in view in the middle, the
// composer below. Every answer carries its receipt: who answered, by which
// route, which bucket paid and how much. `/chat/<id>` opens a conversation;
// `/chat` is a new one, created when its first message is sent.

import { useCallback, useEffect, useMemo, useRef, useState } from 'react';
import { chatApi, errorMessage, type ChatModel, type ChatParams } from '../api';
import type { ViewProps } from '../views';
import { ErrorBox } from '../components/ui';
import { compareModelsFor } from '../lib/compareChoice';
import { conversationIdFromPath } from '../lib/conversations';
import { ConversationList } from './chat/ConversationList';
import { ConversationHeader } from './chat/ConversationHeader';
import { MessageList } from './chat/MessageList';
import { Composer } from './chat/Composer';
import { MAX_COMPARE } from './chat/ModelPicker';
import { TopUpOffer } from './chat/TopUpOffer';
import { BalancesContext, ChatActionsContext, type ChatActions } from './chat/context';
import { useChat, type Draft } from './chat/useChat';
import { useMediaQuery } from './chat/useMediaQuery';
import { ReceiptDrawer } from './ReceiptDrawer';

const PREFS = {
  model: 'switchyard.chat.model',
  compare: 'switchyard.chat.compare',
  compareModels: 'switchyard.chat.compareModels',
};

function readPref<T>(key: string, fallback: T): T {
  try {
    const v = window.localStorage.getItem(key);
    return v === null ? fallback : (JSON.parse(v) as T);
  } catch {
    return fallback;
  }
}

function writePref(key: string, value: unknown): void {
  try {
    window.localStorage.setItem(key, JSON.stringify(value));
  } catch {
    // storage off: the choice lasts for this page only
  }
}

const sameList = (a: string[], b: string[]) => a.length === b.length && a.every((x, i) => x === b[i]);

export function ChatView({ status, refreshStatus, navigate }: ViewProps) {
  const convId = conversationIdFromPath(window.location.pathname);
  const [listVersion, setListVersion] = useState(0);
  const bumpList = useCallback(() => setListVersion((v) => v + 1), []);
  const [openReceipt, setOpenReceipt] = useState<string | null>(null);
  const [sidebarOpen, setSidebarOpen] = useState(false);
  const sidebarOpenRef = useRef(sidebarOpen);
  sidebarOpenRef.current = sidebarOpen;
  const [followSignal, setFollowSignal] = useState(0);
  const [notice, setNotice] = useState<string | null>(null);
  const narrow = useMediaQuery('(max-width: 899px)');

  const searchRef = useRef<HTMLInputElement>(null);
  const inputRef = useRef<HTMLTextAreaElement>(null);

  const chat = useChat(convId, {
    onCreated: (id) => navigate(`/chat/${encodeURIComponent(id)}`),
    onListChanged: bumpList,
  });
  const { conv } = chat;

  // Models the app may call, with who pays and the price per 1M tokens.
  const [models, setModels] = useState<ChatModel[]>([]);
  const [modelsError, setModelsError] = useState<string | null>(null);
  useEffect(() => {
    const ctl = new AbortController();
    chatApi
      .models(ctl.signal)
      .then((r) => {
        setModels(r.models);
        setModelsError(null);
      })
      .catch((e: unknown) => {
        if (!ctl.signal.aborted) setModelsError(`Models could not be read: ${errorMessage(e)}`);
      });
    return () => ctl.abort();
  }, []);

  // The composer's choice: the conversation's own, else the last one used anywhere.
  const [model, setModel] = useState<string>(() => readPref(PREFS.model, ''));
  const [compare, setCompare] = useState<boolean>(() => readPref(PREFS.compare, false));
  const [compareModels, setCompareModels] = useState<string[]>(() => readPref<string[]>(PREFS.compareModels, []));
  const [draft, setDraft] = useState<Draft>({ system: '', params: {} });

  // A new chat starts from no system prompt and default parameters.
  useEffect(() => {
    if (convId === null) setDraft({ system: '', params: {} });
  }, [convId]);

  const loadedId = conv?.id ?? null;
  useEffect(() => {
    if (!conv) return;
    if (conv.model) setModel(conv.model);
    if (conv.compare_models.length) setCompareModels(conv.compare_models.slice(0, MAX_COMPARE));
    // Only when another conversation opens, not on every change to this one.
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [loadedId]);

  useEffect(() => {
    if (!model && models[0]) setModel(models[0].model);
  }, [model, models]);

  const pickModel = (m: string) => {
    setModel(m);
    writePref(PREFS.model, m);
    if (conv && conv.model !== m) void chat.patch({ model: m });
  };
  const pickCompareModels = (ms: string[]) => {
    const unique = [...new Set(ms)].slice(0, MAX_COMPARE);
    setCompareModels(unique);
    writePref(PREFS.compareModels, unique);
  };
  const toggleCompare = useCallback(() => {
    setCompare((c) => {
      writePref(PREFS.compare, !c);
      return !c;
    });
  }, []);
  // Turning compare on starts from the single model when nothing was
  // remembered (decided once a model is known); unchecking every model
  // afterwards leaves none checked.
  const wasCompare = useRef(false);
  useEffect(() => {
    if (compare && !model) return;
    const turnedOn = compare && !wasCompare.current;
    wasCompare.current = compare;
    const next = compareModelsFor(compareModels, model, turnedOn);
    if (next !== compareModels) setCompareModels([...next]);
  }, [compare, compareModels, model]);

  const chosenModels = compare ? compareModels : model ? [model] : [];
  const chosenRef = useRef(chosenModels);
  chosenRef.current = chosenModels;

  const send = async (content: string, attachments: string[]): Promise<boolean> => {
    const models = chosenRef.current;
    setFollowSignal((n) => n + 1);
    const ok = await chat.send({ content, models, attachments }, draft);
    if (ok && models.length > 1) {
      const c = chat.current();
      if (!c || !sameList(c.compare_models, models)) void chat.patch({ compare_models: models });
    }
    return ok;
  };

  const settings = (p: { system?: string; params?: ChatParams }) => {
    if (conv) void chat.patch(p);
    else setDraft((d) => ({ system: p.system ?? d.system, params: p.params ?? d.params }));
  };

  const newChat = useCallback(() => {
    navigate('/chat');
    setSidebarOpen(false);
    requestAnimationFrame(() => inputRef.current?.focus());
  }, [navigate]);

  // Stable for the memoised rows: they read the newest chat through a ref.
  const chatRef = useRef(chat);
  chatRef.current = chat;
  const actions: ChatActions = useMemo(
    () => ({
      openReceipt: (id) => setOpenReceipt(id),
      regenerate: (id, m) => {
        setFollowSignal((n) => n + 1);
        void chatRef.current.regenerate(id, m);
      },
      stop: (id) => chatRef.current.stopOne(id),
      selectBranch: (id, to) => chatRef.current.selectBranch(id, to),
      continueWith: (id) => chatRef.current.continueWith(id),
      edit: (id, content) => {
        setFollowSignal((n) => n + 1);
        void chatRef.current.edit(id, content, chosenRef.current.length ? chosenRef.current : undefined);
      },
    }),
    [],
  );
  const balances = useMemo(
    () => ({ balances: status?.balances ?? [], refreshStatus, navigate }),
    [status?.balances, refreshStatus, navigate],
  );

  // Keyboard: Ctrl/Cmd+Shift+O new chat, Ctrl/Cmd+K search, Ctrl/Cmd+Shift+M compare, Esc stop.
  const streaming = chat.streaming;
  useEffect(() => {
    const onKey = (e: KeyboardEvent) => {
      const mod = e.ctrlKey || e.metaKey;
      const key = e.key.toLowerCase();
      if (mod && e.shiftKey && (e.code === 'KeyO' || key === 'o')) {
        e.preventDefault();
        newChat();
      } else if (mod && !e.shiftKey && (e.code === 'KeyK' || key === 'k')) {
        e.preventDefault();
        setSidebarOpen(true);
        requestAnimationFrame(() => searchRef.current?.focus());
      } else if (mod && e.shiftKey && (e.code === 'KeyM' || key === 'm')) {
        e.preventDefault();
        toggleCompare();
      } else if (e.key === 'Escape' && !e.defaultPrevented && !document.querySelector('dialog[open]')) {
        if (streaming) {
          e.preventDefault();
          chatRef.current.stop();
        } else if (sidebarOpenRef.current) {
          e.preventDefault();
          setSidebarOpen(false);
        }
      }
    };
    window.addEventListener('keydown', onKey);
    return () => window.removeEventListener('keydown', onKey);
  }, [newChat, toggleCompare, streaming]);

  const sendError = chat.sendError;
  const refusedBucket = sendError && (sendError.status === 402 || sendError.code === 'balance_empty') ? sendError.bucket : null;

  return (
    <ChatActionsContext.Provider value={actions}>
      <BalancesContext.Provider value={balances}>
        <div className={`chat-view${sidebarOpen ? ' sidebar-open' : ''}`} data-testid="chat-view">
          <ConversationList
            ref={searchRef}
            openId={convId}
            models={models}
            version={listVersion}
            onOpen={(id) => {
              setSidebarOpen(false);
              navigate(`/chat/${encodeURIComponent(id)}`);
            }}
            onNew={newChat}
            onDeleted={(id) => {
              if (id === convId) navigate('/chat');
            }}
            onChanged={() => chatRef.current.reload()}
          />
          <section
            className="chat-main"
            aria-label="Conversation"
            onMouseDown={() => {
              // Narrow windows show the list over the conversation: a click beside it closes it.
              if (sidebarOpen) setSidebarOpen(false);
            }}
          >
            <div className="chat-main-top">
              <button
                type="button"
                className="btn btn-small chat-sidebar-toggle"
                aria-expanded={sidebarOpen}
                onClick={() => setSidebarOpen((o) => !o)}
                data-testid="sidebar-toggle"
              >
                Chats
              </button>
              <ConversationHeader conv={conv} loading={convId !== null && !conv && chat.loading} onError={setNotice} />
            </div>
            <ErrorBox error={chat.loadError} testId="chat-load-error" />
            <ErrorBox error={notice} />
            {conv ? (
              <MessageList
                key={conv.id}
                conv={conv}
                problems={chat.problems}
                attempts={chat.attempts}
                narrow={narrow}
                busy={streaming}
                followSignal={followSignal}
              />
            ) : chat.loading ? (
              <div className="chat-scroll-wrap">
                <p className="muted chat-empty-hint" data-testid="message-list" data-count={0}>
                  Loading the conversation…
                </p>
              </div>
            ) : (
              <div className="chat-scroll-wrap">
                <div className="chat-welcome" data-testid="message-list" data-count={0}>
                  <h2>{convId ? 'This conversation could not be opened.' : 'New chat'}</h2>
                  {!convId ? (
                    <p className="muted">
                      Pick a model below (or <strong>Compare</strong> several), write, and press Enter. Each answer shows which model answered, the
                      route it took, which balance paid and what it cost.
                    </p>
                  ) : null}
                  <p className="muted small">
                    <kbd>Ctrl/⌘</kbd>+<kbd>Shift</kbd>+<kbd>O</kbd> new chat · <kbd>Ctrl/⌘</kbd>+<kbd>K</kbd> search · <kbd>Ctrl/⌘</kbd>+<kbd>Shift</kbd>+<kbd>M</kbd>{' '}
                    compare · <kbd>Esc</kbd> stop
                  </p>
                </div>
              </div>
            )}
            {sendError ? (
              <div className="stack send-error">
                <ErrorBox error={sendError.message} testId="send-error" />
                {refusedBucket || sendError.status === 402 ? <TopUpOffer bucket={refusedBucket} /> : null}
              </div>
            ) : null}
            <Composer
              ref={inputRef}
              conversationId={conv?.id ?? null}
              parentId={conv?.current_leaf ?? null}
              models={models}
              modelsError={modelsError}
              compare={compare}
              onToggleCompare={toggleCompare}
              model={model}
              compareModels={compareModels}
              onModel={pickModel}
              onCompareModels={pickCompareModels}
              system={conv ? conv.system : draft.system}
              params={conv ? conv.params : draft.params}
              onSettings={settings}
              streaming={streaming}
              onSend={send}
              onStop={chat.stop}
            />
          </section>
          <ReceiptDrawer id={openReceipt} onClose={() => setOpenReceipt(null)} />
        </div>
      </BalancesContext.Provider>
    </ChatActionsContext.Provider>
  );
}
