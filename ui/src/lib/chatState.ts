// How a stream's events change the open conversation. Each function returns
// a new conversation and leaves untouched messages as they were (same
// objects), so only the rows that changed re-render.

import type { BucketName, ChatEvent, ChatMessage, Conversation, ConversationSummary } from '../api';

/** Adds a message, or replaces the stored one with the same id. */
export function upsertMessage(conv: Conversation, m: ChatMessage): Conversation {
  const i = conv.messages.findIndex((x) => x.id === m.id);
  const messages = conv.messages.slice();
  if (i < 0) messages.push(m);
  else messages[i] = m;
  return { ...conv, messages };
}

/** Takes a summary's fields (title, totals, models, counts) and keeps the tree. */
export function mergeSummary(conv: Conversation, s: ConversationSummary): Conversation {
  if (s.id !== conv.id) return conv;
  return {
    ...conv,
    title: s.title,
    pinned: s.pinned,
    folder: s.folder,
    models: s.models,
    updated_at: s.updated_at,
    message_count: s.message_count,
    totals: s.totals,
  };
}

export function streamingMessages(conv: Conversation | null): ChatMessage[] {
  return conv ? conv.messages.filter((m) => m.status === 'streaming') : [];
}

/** Why an answer failed when the gateway refused it for an empty bucket. */
export interface AnswerProblem {
  code: string;
  bucket: BucketName | null;
}

/** What one event does besides delta text (which goes through the frame
 * batcher). `moveLeaf`: this `start` is the stream's first new answer, which
 * comes into view (the server moves `current_leaf` to it too). */
export function applyEvent(conv: Conversation, ev: ChatEvent, opts: { moveLeaf: boolean } = { moveLeaf: false }): Conversation {
  switch (ev.event) {
    case 'user':
      return { ...upsertMessage(conv, ev.data.message), current_leaf: ev.data.message.id };
    case 'start': {
      const next = upsertMessage(conv, ev.data.message);
      return opts.moveLeaf ? { ...next, current_leaf: ev.data.message.id } : next;
    }
    case 'done':
      return upsertMessage(conv, ev.data.message);
    case 'conversation':
      return mergeSummary(conv, ev.data.conversation);
    default:
      return conv;
  }
}

function sameMessage(a: ChatMessage, b: ChatMessage): boolean {
  return (
    a.id === b.id &&
    a.parent_id === b.parent_id &&
    a.content === b.content &&
    a.reasoning === b.reasoning &&
    a.status === b.status &&
    a.error === b.error &&
    a.model === b.model &&
    a.compare_group === b.compare_group &&
    a.attachments.length === b.attachments.length &&
    (a.receipt === b.receipt || JSON.stringify(a.receipt) === JSON.stringify(b.receipt))
  );
}

/** Takes the server's copy of a conversation, keeping the local objects of
 * messages that did not change, so a re-read re-renders only what moved. */
export function reconcile(local: Conversation | null, server: Conversation): Conversation {
  if (!local || local.id !== server.id) return server;
  const mine = new Map(local.messages.map((m) => [m.id, m]));
  let changed = local.messages.length !== server.messages.length;
  const messages = server.messages.map((m, i) => {
    const old = mine.get(m.id);
    if (old && sameMessage(old, m)) {
      if (local.messages[i] !== old) changed = true;
      return old;
    }
    changed = true;
    return m;
  });
  return { ...server, messages: changed ? messages : local.messages };
}

/** A re-read sent before a local choice (a branch shown, an answer continued
 * with, settings saved) and answered after it: its messages are taken, but
 * not the leaf and settings it predates — they would undo the choice. */
export function reconcileStale(local: Conversation | null, server: Conversation): Conversation {
  const next = reconcile(local, server);
  if (!local || local.id !== server.id) return next;
  return {
    ...next,
    current_leaf: local.current_leaf,
    system: local.system,
    params: local.params,
    model: local.model,
    compare_models: local.compare_models,
  };
}

/** A PATCH answer: its settings and leaf, but the messages as they are here
 * (a stream may have moved them on since the server answered). */
export function withSettings(local: Conversation | null, server: Conversation): Conversation {
  if (!local || local.id !== server.id) return server;
  return { ...server, messages: local.messages };
}
