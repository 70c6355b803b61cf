// A conversation is a tree of messages (`parent_id`). What is "in view" is
// the path from the root to `current_leaf`. Siblings are children of the same
// parent with the same role: edits add user siblings, regenerates and
// compares add assistant siblings. Answers sent together in one compare share
// a `compare_group` and count as one branch (they are shown side by side).

import type { ChatMessage } from '../api';

/** The subset of a message the tree needs; tests build these by hand. */
export type TreeNode = Pick<ChatMessage, 'id' | 'parent_id' | 'role' | 'created_at' | 'compare_group'>;

export interface Tree<M extends TreeNode = ChatMessage> {
  byId: Map<string, M>;
  /** Children per parent id ("" for roots), in creation order. */
  children: Map<string, M[]>;
  /** Creation order index, the tie-break between equal timestamps. */
  order: Map<string, number>;
  roots: M[];
}

const ROOT = '';

export function buildTree<M extends TreeNode>(messages: readonly M[]): Tree<M> {
  const byId = new Map<string, M>();
  const children = new Map<string, M[]>();
  const order = new Map<string, number>();
  messages.forEach((m, i) => {
    byId.set(m.id, m);
    order.set(m.id, i);
  });
  for (const m of messages) {
    // A parent that is not in the list (should not happen) makes the message a root.
    const key = m.parent_id && byId.has(m.parent_id) ? m.parent_id : ROOT;
    let list = children.get(key);
    if (!list) children.set(key, (list = []));
    list.push(m);
  }
  return { byId, children, order, roots: children.get(ROOT) ?? [] };
}

function newer<M extends TreeNode>(tree: Tree<M>, a: M, b: M): boolean {
  if (a.created_at !== b.created_at) return a.created_at > b.created_at;
  return (tree.order.get(a.id) ?? 0) > (tree.order.get(b.id) ?? 0);
}

/** The most recent leaf under any of `from` (itself when it has no children). */
export function latestLeaf<M extends TreeNode>(tree: Tree<M>, from: readonly M[]): M | null {
  let best: M | null = null;
  const stack = [...from];
  const seen = new Set<string>();
  while (stack.length) {
    const m = stack.pop()!;
    if (seen.has(m.id)) continue;
    seen.add(m.id);
    const kids = tree.children.get(m.id);
    if (kids && kids.length) stack.push(...kids);
    else if (!best || newer(tree, m, best)) best = m;
  }
  return best;
}

/** Root → leaf. An unknown or missing leaf falls back to the most recent leaf of the whole tree. */
export function pathTo<M extends TreeNode>(tree: Tree<M>, leafId: string | null): M[] {
  let leaf = leafId ? tree.byId.get(leafId) : undefined;
  if (!leaf) leaf = latestLeaf(tree, tree.roots) ?? undefined;
  const path: M[] = [];
  const seen = new Set<string>();
  let m: M | undefined = leaf;
  while (m && !seen.has(m.id)) {
    seen.add(m.id);
    path.push(m);
    m = m.parent_id ? tree.byId.get(m.parent_id) : undefined;
  }
  return path.reverse();
}

/** Children of the same parent with the same role, in creation order (the message itself included). */
export function siblingsOf<M extends TreeNode>(tree: Tree<M>, msg: M): M[] {
  const key = msg.parent_id && tree.byId.has(msg.parent_id) ? msg.parent_id : ROOT;
  return (tree.children.get(key) ?? []).filter((s) => s.role === msg.role);
}

/** Siblings as branches: one compare group is one branch. */
export interface Branches<M extends TreeNode = ChatMessage> {
  branches: M[][];
  /** The branch holding the message. */
  index: number;
}

export function branchesOf<M extends TreeNode>(tree: Tree<M>, msg: M): Branches<M> {
  const branches: M[][] = [];
  const groupAt = new Map<string, number>();
  for (const s of siblingsOf(tree, msg)) {
    if (s.compare_group) {
      const at = groupAt.get(s.compare_group);
      if (at !== undefined) {
        branches[at]!.push(s);
        continue;
      }
      groupAt.set(s.compare_group, branches.length);
    }
    branches.push([s]);
  }
  const index = branches.findIndex((b) => b.some((s) => s.id === msg.id));
  return { branches, index: Math.max(0, index) };
}

/** The leaf to show after switching to branch `to`: its most recent descendant leaf. */
export function leafForBranch<M extends TreeNode>(tree: Tree<M>, msg: M, to: number): string | null {
  const { branches } = branchesOf(tree, msg);
  const b = branches[to];
  if (!b) return null;
  return latestLeaf(tree, b)?.id ?? null;
}

/** One row of the message list: a message, or a compare set shown side by side. */
export type ViewRow<M extends TreeNode = ChatMessage> =
  | { kind: 'message'; key: string; message: M }
  | { kind: 'compare'; key: string; group: string; members: M[]; inPath: M };

export function viewRows<M extends TreeNode>(tree: Tree<M>, path: readonly M[]): ViewRow<M>[] {
  return path.map((m) => {
    if (m.role === 'assistant' && m.compare_group) {
      const members = siblingsOf(tree, m).filter((s) => s.compare_group === m.compare_group);
      if (members.length > 1) return { kind: 'compare', key: `g:${m.compare_group}`, group: m.compare_group, members, inPath: m };
    }
    return { kind: 'message', key: m.id, message: m };
  });
}
