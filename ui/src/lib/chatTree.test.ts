import { describe, expect, it } from 'vitest';
import { branchesOf, buildTree, latestLeaf, leafForBranch, pathTo, siblingsOf, viewRows, type TreeNode } from './chatTree';

let clock = 0;
function node(id: string, parent_id: string | null, role: 'user' | 'assistant', compare_group: string | null = null, created_at = ++clock): TreeNode {
  return { id, parent_id, role, created_at, compare_group };
}

// u1 ─ a1 ─ u2 ─ a2
//    ├ a1b          (regenerated)
//    └ a1c ─ u3     (regenerated, then continued)
// u1b ─ a4          (an edited first message)
// u2 ─ [c1 c2 c3]   (a compare set under u2, besides a2)
function sample(): TreeNode[] {
  clock = 0;
  return [
    node('u1', null, 'user'),
    node('a1', 'u1', 'assistant'),
    node('u2', 'a1', 'user'),
    node('a2', 'u2', 'assistant'),
    node('a1b', 'u1', 'assistant'),
    node('a1c', 'u1', 'assistant'),
    node('u3', 'a1c', 'user'),
    node('u1b', null, 'user'),
    node('a4', 'u1b', 'assistant'),
    node('c1', 'u2', 'assistant', 'g1'),
    node('c2', 'u2', 'assistant', 'g1'),
    node('c3', 'u2', 'assistant', 'g1'),
  ];
}

const ids = (ms: TreeNode[]) => ms.map((m) => m.id);

describe('pathTo', () => {
  it('walks from the leaf up to the root and returns root first', () => {
    const t = buildTree(sample());
    expect(ids(pathTo(t, 'a2'))).toEqual(['u1', 'a1', 'u2', 'a2']);
    expect(ids(pathTo(t, 'u3'))).toEqual(['u1', 'a1c', 'u3']);
    expect(ids(pathTo(t, 'u1'))).toEqual(['u1']);
  });

  it('falls back to the most recent leaf when the leaf is missing or unknown', () => {
    const t = buildTree(sample());
    expect(ids(pathTo(t, null))).toEqual(['u1', 'a1', 'u2', 'c3']);
    expect(ids(pathTo(t, 'msg_gone'))).toEqual(['u1', 'a1', 'u2', 'c3']);
    expect(pathTo(buildTree([]), null)).toEqual([]);
  });

  it('survives a parent cycle without looping', () => {
    const t = buildTree([node('x', 'y', 'user'), node('y', 'x', 'assistant')]);
    expect(ids(pathTo(t, 'x'))).toEqual(['y', 'x']);
  });

  it('is fast for a 2,000-message conversation', () => {
    const ms: TreeNode[] = [];
    for (let i = 0; i < 2000; i++) ms.push(node(`m${i}`, i ? `m${i - 1}` : null, i % 2 ? 'assistant' : 'user'));
    const t = buildTree(ms);
    expect(pathTo(t, 'm1999')).toHaveLength(2000);
  });
});

describe('siblingsOf', () => {
  it('is the children of the same parent with the same role, in creation order', () => {
    const t = buildTree(sample());
    expect(ids(siblingsOf(t, t.byId.get('a1')!))).toEqual(['a1', 'a1b', 'a1c']);
    expect(ids(siblingsOf(t, t.byId.get('u1')!))).toEqual(['u1', 'u1b']);
    expect(ids(siblingsOf(t, t.byId.get('u2')!))).toEqual(['u2']);
  });
});

describe('branchesOf', () => {
  it('counts a compare set as one branch', () => {
    const t = buildTree(sample());
    const b = branchesOf(t, t.byId.get('c2')!);
    expect(b.branches.map(ids)).toEqual([['a2'], ['c1', 'c2', 'c3']]);
    expect(b.index).toBe(1);
    expect(branchesOf(t, t.byId.get('a1b')!).index).toBe(1);
  });
});

describe('latestLeaf and leafForBranch', () => {
  it('switching to a sibling shows its most recent descendant leaf', () => {
    const t = buildTree(sample());
    const a1 = t.byId.get('a1')!;
    expect(leafForBranch(t, a1, 0)).toBe('c3'); // under a1: a2 and the compare set; c3 is newest
    expect(leafForBranch(t, a1, 1)).toBe('a1b'); // no children: itself
    expect(leafForBranch(t, a1, 2)).toBe('u3');
    expect(leafForBranch(t, a1, 3)).toBeNull();
    expect(leafForBranch(t, t.byId.get('u1')!, 1)).toBe('a4');
  });

  it('breaks equal timestamps by creation order', () => {
    const t = buildTree([node('r', null, 'user', null, 1), node('x', 'r', 'assistant', null, 5), node('y', 'r', 'assistant', null, 5)]);
    expect(latestLeaf(t, [t.byId.get('r')!])?.id).toBe('y');
  });
});

describe('viewRows', () => {
  it('shows a compare set as one row, remembering which member is in the path', () => {
    const t = buildTree(sample());
    const rows = viewRows(t, pathTo(t, 'c2'));
    expect(rows.map((r) => r.kind)).toEqual(['message', 'message', 'message', 'compare']);
    const last = rows[3]!;
    expect(last.kind === 'compare' && ids(last.members)).toEqual(['c1', 'c2', 'c3']);
    expect(last.kind === 'compare' && last.inPath.id).toBe('c2');
    // The key stays when another member is picked, so the row is not remounted.
    const again = viewRows(t, pathTo(t, 'c3'))[3]!;
    expect(again.key).toBe(last.key);
  });

  it('shows a lone member of a compare group as a plain message', () => {
    const t = buildTree([node('u', null, 'user'), node('a', 'u', 'assistant', 'g')]);
    expect(viewRows(t, pathTo(t, 'a')).map((r) => r.kind)).toEqual(['message', 'message']);
  });
});
