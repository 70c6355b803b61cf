import { describe, expect, it } from 'vitest';
import type { ChatMessage } from '../api';
import { applyDeltas, DeltaBuffer, type DeltaBatch } from './deltas';

function msg(id: string, content = '', reasoning = ''): ChatMessage {
  return {
    id,
    parent_id: null,
    role: 'assistant',
    content,
    reasoning,
    model: 'm',
    status: 'streaming',
    error: null,
    compare_group: null,
    attachments: [],
    created_at: 1,
    receipt: null,
  };
}

/** A fake frame clock: callbacks run when `frame()` is called. */
function frames() {
  let queue: (() => void)[] = [];
  return {
    schedule: (run: () => void) => {
      queue.push(run);
    },
    frame: () => {
      const q = queue;
      queue = [];
      q.forEach((f) => f());
    },
    get waiting() {
      return queue.length;
    },
  };
}

describe('DeltaBuffer', () => {
  it('applies any number of deltas in one batch per frame, in order', () => {
    const f = frames();
    const batches: DeltaBatch[] = [];
    const buf = new DeltaBuffer(f.schedule, (b) => batches.push(b));
    for (let i = 0; i < 300; i++) buf.push('a', 'text', `${i % 10}`);
    buf.push('a', 'reasoning', 'think');
    buf.push('b', 'text', 'other');
    expect(f.waiting).toBe(1);
    expect(batches).toHaveLength(0);
    f.frame();
    expect(batches).toHaveLength(1);
    expect(batches[0]!.get('a')!.text).toBe('0123456789'.repeat(30));
    expect(batches[0]!.get('a')!.reasoning).toBe('think');
    expect(batches[0]!.get('b')!.text).toBe('other');
    f.frame();
    expect(batches).toHaveLength(1);
    buf.push('a', 'text', 'x');
    f.frame();
    expect(batches).toHaveLength(2);
  });

  it('drops what is pending for a finished message and flushes on demand', () => {
    const f = frames();
    const batches: DeltaBatch[] = [];
    const buf = new DeltaBuffer(f.schedule, (b) => batches.push(b));
    buf.push('a', 'text', 'late');
    buf.push('b', 'text', 'kept');
    buf.drop('a');
    buf.flush();
    expect(batches).toHaveLength(1);
    expect([...batches[0]!.keys()]).toEqual(['b']);
    f.frame(); // the scheduled frame finds nothing left
    expect(batches).toHaveLength(1);
  });

  it('ignores empty deltas', () => {
    const f = frames();
    const buf = new DeltaBuffer(f.schedule, () => undefined);
    buf.push('a', 'text', '');
    expect(f.waiting).toBe(0);
  });
});

describe('applyDeltas', () => {
  it('appends to the named messages and keeps the others (and an unchanged list) as they were', () => {
    const a = msg('a', 'Hel', '');
    const b = msg('b', 'x');
    const list = [a, b];
    const out = applyDeltas(list, new Map([['a', { text: 'lo', reasoning: 'hm' }]]));
    expect(out[0]).toEqual({ ...a, content: 'Hello', reasoning: 'hm' });
    expect(out[1]).toBe(b);
    expect(list[0]!.content).toBe('Hel');
    expect(applyDeltas(list, new Map([['gone', { text: 'x', reasoning: '' }]]))).toBe(list);
  });
});
