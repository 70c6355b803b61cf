import { describe, expect, it } from 'vitest';
import type { ConversationSummary } from '../api';
import { conversationIdFromPath, conversationTitle, groupConversations, splitSnippet } from './conversations';

function conv(id: string, over: Partial<ConversationSummary> = {}): ConversationSummary {
  return { id, title: id, pinned: false, folder: null, models: [], created_at: 0, updated_at: 0, message_count: 0, totals: [], ...over };
}

describe('groupConversations', () => {
  it('puts pinned first, then folders by name, then the rest, keeping the order inside each', () => {
    const groups = groupConversations([
      conv('a'),
      conv('b', { folder: 'work' }),
      conv('c', { pinned: true, folder: 'work' }),
      conv('d', { folder: 'Home' }),
      conv('e'),
      conv('f', { pinned: true }),
    ]);
    expect(groups.map((g) => [g.label, g.items.map((c) => c.id)])).toEqual([
      ['Pinned', ['c', 'f']],
      ['Home', ['d']],
      ['work', ['b']],
      ['Chats', ['a', 'e']],
    ]);
  });

  it('needs no group heading when nothing is pinned or filed', () => {
    const groups = groupConversations([conv('a'), conv('b')]);
    expect(groups).toHaveLength(1);
    expect(groups[0]!.label).toBe('');
    expect(groupConversations([])).toEqual([]);
  });
});

describe('splitSnippet', () => {
  it('splits text around the hit markers', () => {
    expect(splitSnippet('the \u0001quick\u0002 brown \u0001fox\u0002')).toEqual([
      { text: 'the ', hit: false },
      { text: 'quick', hit: true },
      { text: ' brown ', hit: false },
      { text: 'fox', hit: true },
    ]);
  });

  it('keeps markup as plain text and copes with CJK and unbalanced markers', () => {
    expect(splitSnippet('<b>\u0001東京\u0002</b>')).toEqual([
      { text: '<b>', hit: false },
      { text: '東京', hit: true },
      { text: '</b>', hit: false },
    ]);
    expect(splitSnippet('a\u0001b')).toEqual([
      { text: 'a', hit: false },
      { text: 'b', hit: true },
    ]);
    expect(splitSnippet('a\u0002b\u0001\u0001c')).toEqual([
      { text: 'ab', hit: false },
      { text: 'c', hit: true },
    ]);
    expect(splitSnippet('')).toEqual([]);
  });
});

describe('conversationTitle', () => {
  it('names an untitled conversation "New chat"', () => {
    expect(conversationTitle({ title: '  ' })).toBe('New chat');
    expect(conversationTitle({ title: 'Trip plan' })).toBe('Trip plan');
  });
});

describe('conversationIdFromPath', () => {
  it('reads the id after /chat/ and nothing for a new chat', () => {
    expect(conversationIdFromPath('/chat/conv_1a')).toBe('conv_1a');
    expect(conversationIdFromPath('/chat/conv%20x/extra')).toBe('conv x');
    expect(conversationIdFromPath('/chat')).toBeNull();
    expect(conversationIdFromPath('/chat/')).toBeNull();
    expect(conversationIdFromPath('/chat/%E0%A4%A')).toBeNull();
    expect(conversationIdFromPath('/spend')).toBeNull();
  });
});
