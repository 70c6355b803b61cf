import { describe, expect, it } from 'vitest';
import { createSseParser, type SseEvent } from './sse';

function parseAll(chunks: string[]): SseEvent[] {
  const p = createSseParser();
  const out: SseEvent[] = [];
  for (const c of chunks) out.push(...p.push(c));
  out.push(...p.end());
  return out;
}

const STREAM =
  'event: start\ndata: {"message":{"id":"msg_1"}}\n\n' +
  'event: delta\ndata: {"message_id":"msg_1","text":"Hel"}\n\n' +
  'event: delta\ndata: {"message_id":"msg_1","text":"lo"}\n\n' +
  'event: end\ndata: {}\n\n';

describe('createSseParser', () => {
  it('reads named events with their JSON data', () => {
    const evs = parseAll([STREAM]);
    expect(evs.map((e) => e.event)).toEqual(['start', 'delta', 'delta', 'end']);
    expect(JSON.parse(evs[1]!.data)).toEqual({ message_id: 'msg_1', text: 'Hel' });
  });

  it('gives the same events however the stream is split, one character at a time included', () => {
    const whole = parseAll([STREAM]);
    expect(parseAll(STREAM.split(''))).toEqual(whole);
    for (let cut = 1; cut < STREAM.length; cut += 7) {
      expect(parseAll([STREAM.slice(0, cut), STREAM.slice(cut)])).toEqual(whole);
    }
  });

  it('accepts CRLF and lone CR line ends, a CRLF split across chunks included', () => {
    const crlf = STREAM.replace(/\n/g, '\r\n');
    expect(parseAll([crlf])).toEqual(parseAll([STREAM]));
    expect(parseAll(crlf.split(''))).toEqual(parseAll([STREAM]));
    expect(parseAll([STREAM.replace(/\n/g, '\r')])).toEqual(parseAll([STREAM]));
    // "\r" at the end of one chunk, "\n" at the start of the next: one line end, not two.
    expect(parseAll(['event: a\r', '\ndata: 1\r', '\n\r', '\n'])).toEqual([{ event: 'a', data: '1' }]);
  });

  it('joins several data lines with a newline and defaults the event name', () => {
    expect(parseAll(['data: one\ndata: two\n\n'])).toEqual([{ event: 'message', data: 'one\ntwo' }]);
  });

  it('skips comments, ids and retries; strips only one space after the colon', () => {
    expect(parseAll([': keep-alive\n\nid: 7\nretry: 100\nevent: x\ndata:  two spaces\n\n'])).toEqual([
      { event: 'x', data: ' two spaces' },
    ]);
    expect(parseAll(['data:no-space\n\n'])).toEqual([{ event: 'message', data: 'no-space' }]);
  });

  it('does not emit an event without data, nor one the stream cut before its blank line', () => {
    expect(parseAll(['event: ping\n\n'])).toEqual([]);
    expect(parseAll(['event: delta\ndata: {"text":"x"}\n'])).toEqual([]);
  });

  it('keeps the event name from leaking into the next event', () => {
    expect(parseAll(['event: a\ndata: 1\n\ndata: 2\n\n'])).toEqual([
      { event: 'a', data: '1' },
      { event: 'message', data: '2' },
    ]);
  });
});
