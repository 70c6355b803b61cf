// Answer text arrives in many small deltas (a fast model sends hundreds a
// second). They are collected here and applied at most once per frame, so
// the view renders once per frame however fast the stream is, and each
// message that did not change keeps its identity (its row does not re-render).

import type { ChatMessage } from '../api';

export interface PendingDelta {
  text: string;
  reasoning: string;
}

export type DeltaBatch = ReadonlyMap<string, PendingDelta>;

export class DeltaBuffer {
  private pending = new Map<string, PendingDelta>();
  private scheduled = false;

  /** `schedule` is requestAnimationFrame in the app; `apply` receives each batch. */
  constructor(
    private readonly schedule: (run: () => void) => void,
    private readonly apply: (batch: DeltaBatch) => void,
  ) {}

  push(messageId: string, kind: 'text' | 'reasoning', text: string): void {
    if (!text) return;
    let p = this.pending.get(messageId);
    if (!p) this.pending.set(messageId, (p = { text: '', reasoning: '' }));
    if (kind === 'text') p.text += text;
    else p.reasoning += text;
    if (!this.scheduled) {
      this.scheduled = true;
      this.schedule(() => {
        this.scheduled = false;
        this.flush();
      });
    }
  }

  /** Forgets what is pending for a message: its `done` event carries the whole text. */
  drop(messageId: string): void {
    this.pending.delete(messageId);
  }

  /** Applies everything pending now (a no-op when nothing is). */
  flush(): void {
    if (this.pending.size === 0) return;
    const batch = this.pending;
    this.pending = new Map();
    this.apply(batch);
  }
}

/** Appends a batch to the messages it names; untouched messages (and an untouched list) keep their identity. */
export function applyDeltas(messages: ChatMessage[], batch: DeltaBatch): ChatMessage[] {
  if (batch.size === 0) return messages;
  let out: ChatMessage[] | null = null;
  for (let i = 0; i < messages.length; i++) {
    const m = messages[i]!;
    const d = batch.get(m.id);
    if (!d) continue;
    out ??= messages.slice();
    out[i] = { ...m, content: m.content + d.text, reasoning: m.reasoning + d.reasoning };
  }
  return out ?? messages;
}
