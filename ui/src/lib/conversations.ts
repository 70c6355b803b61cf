// The conversation list: pinned first, then one group per folder, then the
// rest; search snippets split into plain text and hits.

import type { ConversationSummary } from '../api';

export interface ConversationGroup {
  key: string;
  kind: 'pinned' | 'folder' | 'chats';
  label: string;
  items: ConversationSummary[];
}

/** Keeps the server's order (most recently updated first) inside each group. */
export function groupConversations(items: readonly ConversationSummary[]): ConversationGroup[] {
  const pinned: ConversationSummary[] = [];
  const folders = new Map<string, ConversationSummary[]>();
  const rest: ConversationSummary[] = [];
  for (const c of items) {
    if (c.pinned) pinned.push(c);
    else if (c.folder) folders.set(c.folder, [...(folders.get(c.folder) ?? []), c]);
    else rest.push(c);
  }
  const groups: ConversationGroup[] = [];
  if (pinned.length) groups.push({ key: 'pinned', kind: 'pinned', label: 'Pinned', items: pinned });
  for (const name of [...folders.keys()].sort((a, b) => a.localeCompare(b))) {
    groups.push({ key: `folder:${name}`, kind: 'folder', label: name, items: folders.get(name)! });
  }
  if (rest.length) groups.push({ key: 'chats', kind: 'chats', label: folders.size || pinned.length ? 'Chats' : '', items: rest });
  return groups;
}

export interface SnippetPart {
  text: string;
  hit: boolean;
}

const HIT_START = '\u0001';
const HIT_END = '\u0002';

/** Splits a search snippet on its \u0001 … \u0002 hit markers. An unclosed
 * hit runs to the end; stray markers are dropped. The parts are text, to be
 * rendered as text (a <mark> per hit), never as HTML. */
export function splitSnippet(snippet: string): SnippetPart[] {
  const parts: SnippetPart[] = [];
  let hit = false;
  let cur = '';
  const push = () => {
    if (!cur) return;
    const last = parts[parts.length - 1];
    if (last && last.hit === hit) last.text += cur;
    else parts.push({ text: cur, hit });
    cur = '';
  };
  for (const ch of snippet) {
    if (ch === HIT_START || ch === HIT_END) {
      const next = ch === HIT_START;
      if (next !== hit) {
        push();
        hit = next;
      }
      continue;
    }
    cur += ch;
  }
  push();
  return parts;
}

/** The name a conversation is shown under. */
export function conversationTitle(c: Pick<ConversationSummary, 'title'> | null | undefined): string {
  const t = c?.title.trim();
  return t ? t : 'New chat';
}

/** The conversation a Chat path opens: `/chat/conv_…` → "conv_…"; `/chat` (a new chat) → null. */
export function conversationIdFromPath(path: string): string | null {
  const m = /^\/chat\/([^/]+)/.exec(path);
  if (!m?.[1]) return null;
  try {
    return decodeURIComponent(m[1]);
  } catch {
    return null;
  }
}
