// The open conversation and its streams. Events change it as they arrive;
// delta text is batched to one update per frame; when a stream ends, the
// conversation is read again and reconciled (unchanged messages keep their
// objects, so their rows do not re-render). Streams of a conversation that
// is no longer open run on (the server stores them) but no longer touch the view.

import { useCallback, useEffect, useMemo, useRef, useState } from 'react';
import {
  ApiError,
  chatApi,
  errorMessage,
  type AttemptInfo,
  type BucketName,
  type ChatEvent,
  type ChatParams,
  type Conversation,
  type ConversationPatch,
} from '../../api';
import { applyEvent, reconcile, reconcileStale, streamingMessages, withSettings, type AnswerProblem } from '../../lib/chatState';
import { applyDeltas, DeltaBuffer } from '../../lib/deltas';
import { buildTree, latestLeaf, leafForBranch } from '../../lib/chatTree';

export interface SendError {
  message: string;
  status: number;
  code: string | null;
  bucket: BucketName | null;
}

/** What a conversation not yet created starts with. */
export interface Draft {
  system: string;
  params: ChatParams;
}

type Starter = (onEvent: (e: ChatEvent) => void, signal: AbortSignal) => Promise<void>;

interface Stream {
  convId: string;
  /** Answers this stream started (to stop them), minus those that finished. */
  live: Set<string>;
  started: boolean;
}

/** How often a conversation streaming elsewhere (another tab, a stream from before a reload) is re-read. */
const FOREIGN_POLL_MS = 1500;

export function useChat(convId: string | null, hooks: { onCreated: (id: string) => void; onListChanged: () => void }) {
  const [conv, setConv] = useState<Conversation | null>(null);
  const [loadError, setLoadError] = useState<string | null>(null);
  const [loading, setLoading] = useState(false);
  const [sendError, setSendError] = useState<SendError | null>(null);
  const [problems, setProblems] = useState<ReadonlyMap<string, AnswerProblem>>(() => new Map());
  const [attempts, setAttempts] = useState<ReadonlyMap<string, AttemptInfo>>(() => new Map());
  const [opening, setOpening] = useState(0);

  const convRef = useRef(conv);
  convRef.current = conv;
  const openId = useRef(convId);
  const hooksRef = useRef(hooks);
  hooksRef.current = hooks;
  const streams = useRef(new Map<AbortController, Stream>());
  /** Local choices (leaf, settings) made, and those not yet saved: a re-read
   * sent before one is saved must not undo it. */
  const choices = useRef(0);
  const saving = useRef(0);

  const buffer = useMemo(
    () =>
      new DeltaBuffer(
        (run) => {
          requestAnimationFrame(run);
        },
        (batch) =>
          setConv((c) => {
            if (!c) return c;
            const messages = applyDeltas(c.messages, batch);
            return messages === c.messages ? c : { ...c, messages };
          }),
      ),
    [],
  );

  const streamingHere = (id: string) => [...streams.current.values()].some((s) => s.convId === id);

  const refresh = useCallback((id: string) => {
    const sentAt = choices.current;
    const unsaved = saving.current > 0;
    chatApi
      .conversation(id)
      .then((server) => {
        // A stream that started meanwhile owns the state until it ends.
        if (openId.current !== id || streamingHere(id)) return;
        const stale = unsaved || choices.current !== sentAt;
        setConv((c) => (c && c.id === id ? (stale ? reconcileStale(c, server) : reconcile(c, server)) : c));
      })
      .catch(() => undefined);
  }, []);

  useEffect(() => {
    openId.current = convId;
    setSendError(null);
    if (!convId) {
      setConv(null);
      setLoadError(null);
      setLoading(false);
      return undefined;
    }
    // Created here a moment ago: already in hand.
    if (convRef.current?.id === convId) return undefined;
    const ctl = new AbortController();
    setConv(null);
    setLoading(true);
    setLoadError(null);
    chatApi
      .conversation(convId, ctl.signal)
      .then((c) => {
        if (!ctl.signal.aborted) setConv(c);
      })
      .catch((e: unknown) => {
        if (!ctl.signal.aborted) setLoadError(errorMessage(e));
      })
      .finally(() => {
        if (!ctl.signal.aborted) setLoading(false);
      });
    return () => ctl.abort();
  }, [convId]);

  // Streaming somewhere else: follow it by reading again until it is done.
  const foreign = conv !== null && opening === 0 && conv.messages.some((m) => m.status === 'streaming') && !streamingHere(conv.id);
  useEffect(() => {
    if (!foreign || !conv) return undefined;
    const id = conv.id;
    const t = setInterval(() => refresh(id), FOREIGN_POLL_MS);
    return () => clearInterval(t);
  }, [foreign, conv?.id, refresh]); // eslint-disable-line react-hooks/exhaustive-deps

  const handle = useCallback(
    (s: Stream, ev: ChatEvent, leaf: { moved: boolean }) => {
      if (ev.event === 'start') s.live.add(ev.data.message.id);
      if (ev.event === 'done') s.live.delete(ev.data.message.id);
      if (openId.current !== s.convId) return;
      switch (ev.event) {
        case 'delta':
          buffer.push(ev.data.message_id, 'text', ev.data.text);
          return;
        case 'reasoning':
          buffer.push(ev.data.message_id, 'reasoning', ev.data.text);
          return;
        case 'attempt': {
          const a = ev.data;
          setAttempts((m) => new Map(m).set(a.message_id, a));
          return;
        }
        case 'done': {
          const { message, error_code, error_bucket } = ev.data;
          buffer.drop(message.id);
          if (error_code) setProblems((m) => new Map(m).set(message.id, { code: error_code, bucket: error_bucket ?? null }));
          break;
        }
        case 'end':
          return;
        default:
          break;
      }
      // Decided here, not inside the updater (StrictMode runs updaters twice).
      const moveLeaf = ev.event === 'start' && !leaf.moved;
      if (ev.event === 'start') leaf.moved = true;
      setConv((c) => (c && c.id === s.convId ? applyEvent(c, ev, { moveLeaf }) : c));
    },
    [buffer],
  );

  /** Runs one stream; resolves true once it has started, false if it was refused. */
  const run = useCallback(
    (id: string, starter: Starter): Promise<boolean> => {
      const ctl = new AbortController();
      const s: Stream = { convId: id, live: new Set(), started: false };
      streams.current.set(ctl, s);
      setOpening((n) => n + 1);
      setSendError(null);
      const leaf = { moved: false };
      let resolveStarted: (ok: boolean) => void = () => undefined;
      const started = new Promise<boolean>((r) => (resolveStarted = r));
      const onEvent = (ev: ChatEvent) => {
        if (!s.started) {
          s.started = true;
          resolveStarted(true);
        }
        handle(s, ev, leaf);
      };
      starter(onEvent, ctl.signal)
        .catch((e: unknown) => {
          if (e instanceof DOMException && e.name === 'AbortError') return;
          if (openId.current !== id) return;
          setSendError({
            message: errorMessage(e),
            status: e instanceof ApiError ? e.status : 0,
            code: e instanceof ApiError ? e.code : null,
            bucket: e instanceof ApiError ? e.bucket : null,
          });
        })
        .finally(() => {
          buffer.flush();
          streams.current.delete(ctl);
          setOpening((n) => n - 1);
          resolveStarted(s.started);
          hooksRef.current.onListChanged();
          if (openId.current === id && !streamingHere(id)) refresh(id);
        });
      return started;
    },
    [buffer, handle, refresh],
  );

  const ensureConversation = useCallback(async (draft: Draft, model: string | undefined): Promise<Conversation | null> => {
    const c = convRef.current;
    if (c) return c;
    try {
      const created = await chatApi.create({
        system: draft.system || undefined,
        params: draft.params,
        model,
      });
      convRef.current = created;
      openId.current = created.id;
      setConv(created);
      hooksRef.current.onCreated(created.id);
      hooksRef.current.onListChanged();
      return created;
    } catch (e) {
      setSendError({ message: errorMessage(e), status: e instanceof ApiError ? e.status : 0, code: null, bucket: null });
      return null;
    }
  }, []);

  const send = useCallback(
    async (input: { content: string; models: string[]; attachments: string[] }, draft: Draft): Promise<boolean> => {
      const c = await ensureConversation(draft, input.models[0]);
      if (!c) return false;
      return run(c.id, (on, signal) =>
        chatApi.send(
          c.id,
          {
            content: input.content,
            models: input.models,
            attachments: input.attachments.length ? input.attachments : undefined,
          },
          on,
          signal,
        ),
      );
    },
    [ensureConversation, run],
  );

  const regenerate = useCallback(
    (messageId: string, model?: string) => {
      const c = convRef.current;
      if (!c) return Promise.resolve(false);
      return run(c.id, (on, signal) => chatApi.regenerate(messageId, model, on, signal));
    },
    [run],
  );

  const edit = useCallback(
    (messageId: string, content: string, models?: string[]) => {
      const c = convRef.current;
      if (!c) return Promise.resolve(false);
      return run(c.id, (on, signal) => chatApi.edit(messageId, content, models, on, signal));
    },
    [run],
  );

  const reportError = useCallback((e: unknown) => {
    setSendError({ message: errorMessage(e), status: e instanceof ApiError ? e.status : 0, code: e instanceof ApiError ? e.code : null, bucket: null });
  }, []);

  const stopOne = useCallback(
    (messageId: string) => {
      chatApi.stop(messageId).catch(reportError);
    },
    [reportError],
  );

  /** Stops every answer streaming in the open conversation; a send not yet answered is cancelled. */
  const stop = useCallback(() => {
    const c = convRef.current;
    if (!c) return;
    const ids = new Set(streamingMessages(c).map((m) => m.id));
    for (const [ctl, s] of streams.current) {
      if (s.convId !== c.id) continue;
      for (const id of s.live) ids.add(id);
      if (!s.started || s.live.size === 0) ctl.abort();
    }
    for (const id of ids) stopOne(id);
  }, [stopOne]);

  const patch = useCallback(
    async (p: ConversationPatch): Promise<void> => {
      const c = convRef.current;
      if (!c) return;
      choices.current++;
      saving.current++;
      try {
        const server = await chatApi.update(c.id, p);
        setConv((cur) => withSettings(cur, server));
        if (p.title !== undefined || p.pinned !== undefined || p.folder !== undefined) hooksRef.current.onListChanged();
      } catch (e) {
        reportError(e);
      } finally {
        saving.current--;
      }
    },
    [reportError],
  );

  /** Shows another branch: the sibling, then its most recent leaf. */
  const selectBranch = useCallback(
    (messageId: string, to: number) => {
      const c = convRef.current;
      if (!c) return;
      const tree = buildTree(c.messages);
      const m = tree.byId.get(messageId);
      const leaf = m ? leafForBranch(tree, m, to) : null;
      if (!leaf || leaf === c.current_leaf) return;
      setConv((cur) => (cur && cur.id === c.id ? { ...cur, current_leaf: leaf } : cur));
      void patch({ current_leaf: leaf });
    },
    [patch],
  );

  /** Puts an answer of a compare in context: the next message follows it. */
  const continueWith = useCallback(
    (messageId: string) => {
      const c = convRef.current;
      if (!c) return;
      const tree = buildTree(c.messages);
      const m = tree.byId.get(messageId);
      if (!m) return;
      // An answer already continued elsewhere shows that continuation.
      const leaf = latestLeaf(tree, [m])?.id ?? messageId;
      setConv((cur) => (cur && cur.id === c.id ? { ...cur, current_leaf: leaf } : cur));
      void patch({ current_leaf: leaf });
    },
    [patch],
  );

  const streaming = (conv ? streamingMessages(conv).length > 0 : false) || (conv !== null && streamingHere(conv.id)) || (opening > 0 && !conv);

  return {
    conv,
    /** The newest conversation, also between renders (after an await). */
    current: () => convRef.current,
    /** Reads the open conversation again (after a rename in the list, say). */
    reload: () => {
      if (convRef.current) refresh(convRef.current.id);
    },
    loading,
    loadError,
    sendError,
    clearSendError: () => setSendError(null),
    problems,
    attempts,
    streaming,
    send,
    regenerate,
    edit,
    stop,
    stopOne,
    patch,
    selectBranch,
    continueWith,
  };
}

export type ChatState = ReturnType<typeof useChat>;
