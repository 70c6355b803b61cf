// A server-sent events parser over text chunks, as they come off a fetch
// body. Chunks split anywhere: inside a line, between "\r" and "\n", or in
// the middle of an event. Lines end with LF, CRLF or CR; an event ends at a
// blank line; `data:` lines join with "\n"; lines starting with ":" are
// comments (keep-alives). Follows the WHATWG event-stream rules that matter
// here; `id:` and `retry:` are read and ignored.

export interface SseEvent {
  /** "message" when the event had no `event:` line. */
  event: string;
  data: string;
}

export interface SseParser {
  /** Feeds one chunk; returns the events it completed, in order. */
  push(chunk: string): SseEvent[];
  /** The stream ended: an event still open (no blank line after it) is dropped, as the spec says. */
  end(): SseEvent[];
}

export function createSseParser(): SseParser {
  let buf = '';
  // The last chunk ended in "\r": a "\n" starting the next one belongs to it.
  let skipLf = false;
  let event = '';
  let data: string[] = [];
  let hasData = false;

  const line = (l: string, out: SseEvent[]) => {
    if (l === '') {
      if (hasData) out.push({ event: event || 'message', data: data.join('\n') });
      event = '';
      data = [];
      hasData = false;
      return;
    }
    if (l.startsWith(':')) return;
    const colon = l.indexOf(':');
    const field = colon < 0 ? l : l.slice(0, colon);
    let value = colon < 0 ? '' : l.slice(colon + 1);
    if (value.startsWith(' ')) value = value.slice(1);
    if (field === 'event') event = value;
    else if (field === 'data') {
      data.push(value);
      hasData = true;
    }
  };

  return {
    push(chunk: string): SseEvent[] {
      const out: SseEvent[] = [];
      if (chunk === '') return out;
      let s = chunk;
      if (skipLf && s.startsWith('\n')) s = s.slice(1);
      skipLf = false;
      buf += s;
      let start = 0;
      for (let i = 0; i < buf.length; i++) {
        const c = buf.charCodeAt(i);
        if (c !== 10 && c !== 13) continue;
        line(buf.slice(start, i), out);
        if (c === 13) {
          if (i + 1 < buf.length) {
            if (buf.charCodeAt(i + 1) === 10) i++;
          } else {
            skipLf = true;
          }
        }
        start = i + 1;
      }
      buf = buf.slice(start);
      return out;
    },
    end(): SseEvent[] {
      buf = '';
      event = '';
      data = [];
      hasData = false;
      return [];
    },
  };
}
