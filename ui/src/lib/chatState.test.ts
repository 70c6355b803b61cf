import { describe, expect, it } from 'vitest';
import type { ChatMessage, Conversation } from '../api';
import { applyEvent, mergeSummary, reconcile, reconcileStale, streamingMessages, upsertMessage, withSettings } from './chatState';

function msg(id: string, over: Partial<ChatMessage> = {}): ChatMessage {
  return {
    id,
    parent_id: null,
    role: 'assistant',
    content: '',
    reasoning: '',
    model: 'm',
    status: 'complete',
    error: null,
    compare_group: null,
    attachments: [],
    created_at: 1,
    receipt: null,
    ...over,
  };
}

function conv(messages: ChatMessage[], current_leaf: string | null = null): Conversation {
  return {
    id: 'conv_1',
    title: '',
    pinned: false,
    folder: null,
    models: [],
    created_at: 0,
    updated_at: 0,
    message_count: messages.length,
    totals: [],
    system: '',
    params: {},
    model: null,
    compare_models: [],
    current_leaf,
    messages,
  };
}

describe('upsertMessage', () => {
  it('replaces by id and keeps the other messages as the same objects', () => {
    const a = msg('a');
    const b = msg('b', { status: 'streaming' });
    const c = conv([a, b]);
    const next = upsertMessage(c, msg('b', { content: 'done' }));
    expect(next.messages[0]).toBe(a);
    expect(next.messages[1]!.content).toBe('done');
    expect(c.messages[1]).toBe(b);
    expect(upsertMessage(c, msg('z')).messages.map((m) => m.id)).toEqual(['a', 'b', 'z']);
  });
});

describe('applyEvent', () => {
  it('brings the user message and the first started answer into view, and keeps a compare together', () => {
    let c = conv([msg('a0')], 'a0');
    c = applyEvent(c, { event: 'user', data: { message: msg('u1', { role: 'user', parent_id: 'a0' }) } });
    expect(c.current_leaf).toBe('u1');
    c = applyEvent(c, { event: 'start', data: { message: msg('x', { parent_id: 'u1', status: 'streaming', compare_group: 'g' }) } }, { moveLeaf: true });
    c = applyEvent(c, { event: 'start', data: { message: msg('y', { parent_id: 'u1', status: 'streaming', compare_group: 'g' }) } }, { moveLeaf: false });
    expect(c.current_leaf).toBe('x');
    expect(streamingMessages(c).map((m) => m.id)).toEqual(['x', 'y']);
    c = applyEvent(c, { event: 'done', data: { message: msg('y', { parent_id: 'u1', status: 'incomplete', content: 'par' }) } });
    expect(streamingMessages(c).map((m) => m.id)).toEqual(['x']);
    expect(c.messages.find((m) => m.id === 'y')!.content).toBe('par');
  });

  it('takes the totals and title from a conversation event for this conversation only', () => {
    const c = conv([msg('a')]);
    const summary = { ...c, title: 'Titled', totals: [{ bucket: 'credit' as const, currency: 'USD', cost_micros: 5, cost: '0.000005' }] };
    const next = applyEvent(c, { event: 'conversation', data: { conversation: summary } });
    expect(next.title).toBe('Titled');
    expect(next.totals).toHaveLength(1);
    expect(next.messages).toBe(c.messages);
    expect(mergeSummary(c, { ...summary, id: 'other' })).toBe(c);
  });
});

describe('reconcile and withSettings', () => {
  it('keeps unchanged messages as the same objects and takes changed ones from the server', () => {
    const a = msg('a', { content: 'same' });
    const b = msg('b', { content: 'part', status: 'streaming' });
    const local = conv([a, b]);
    const server = conv([msg('a', { content: 'same' }), msg('b', { content: 'partial, then all', status: 'complete' }), msg('c')], 'c');
    const next = reconcile(local, server);
    expect(next.messages[0]).toBe(a);
    expect(next.messages[1]!.status).toBe('complete');
    expect(next.messages.map((m) => m.id)).toEqual(['a', 'b', 'c']);
    expect(next.current_leaf).toBe('c');
    const same = reconcile(local, conv([msg('a', { content: 'same' }), msg('b', { content: 'part', status: 'streaming' })]));
    expect(same.messages).toBe(local.messages);
  });

  it('takes messages from a stale re-read but keeps the leaf and settings chosen since it was sent', () => {
    const a = msg('a', { content: 'same' });
    const local = { ...conv([a, msg('b'), msg('c', { status: 'streaming' })], 'c'), model: 'mini', compare_models: ['x', 'y'] };
    const server = { ...conv([msg('a', { content: 'same' }), msg('b'), msg('c', { content: 'done' })], 'b'), model: 'fast' };
    const next = reconcileStale(local, server);
    expect(next.current_leaf).toBe('c');
    expect(next.model).toBe('mini');
    expect(next.compare_models).toEqual(['x', 'y']);
    expect(next.messages[0]).toBe(a);
    expect(next.messages[2]!.content).toBe('done');
    // Another conversation is taken whole.
    expect(reconcileStale(local, { ...server, id: 'conv_2' }).current_leaf).toBe('b');
  });

  it('takes settings from a PATCH answer but keeps the local messages', () => {
    const local = conv([msg('a', { content: 'newer here' })]);
    const server = { ...conv([msg('a', { content: 'older' })], 'a'), system: 'be brief' };
    const next = withSettings(local, server);
    expect(next.system).toBe('be brief');
    expect(next.current_leaf).toBe('a');
    expect(next.messages).toBe(local.messages);
  });
});
