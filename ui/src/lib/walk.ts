// What a receipt's attempts mean, in words and as timeline bars.

import type { Attempt, AttemptOutcome } from '../api';

export type Tone = 'ok' | 'fail' | 'skip';

export function roleLabel(targetIndex: number): string {
  return targetIndex === 0 ? 'primary' : `backup ${targetIndex}`;
}

export function outcomeText(o: AttemptOutcome): string {
  switch (o.kind) {
    case 'ok':
      return `ok (${o.status})`;
    case 'http':
      return `HTTP ${o.status}${o.class ? ` · ${humanize(o.class)}` : ''}`;
    case 'failed':
      return humanize(o.class);
    case 'skipped':
      return `skipped: ${humanize(o.reason)}`;
  }
}

export function outcomeTone(o: AttemptOutcome): Tone {
  if (o.kind === 'ok') return 'ok';
  if (o.kind === 'skipped') return 'skip';
  return 'fail';
}

function humanize(s: string): string {
  return s.replace(/_/g, ' ');
}

export interface TimelineBar {
  index: number;
  label: string;
  target: string;
  outcome: string;
  tone: Tone;
  started: number;
  duration: number;
  /** Position and width in percent of the whole request. */
  left: number;
  width: number;
}

export interface Timeline {
  total: number;
  bars: TimelineBar[];
}

/** Lays attempts out on one time axis from 0 to the request's latency (or the
 * end of the last attempt, whichever is later). Zero-length attempts (skips)
 * still get a sliver so they can be seen. */
export function timeline(attempts: Attempt[], latencyMs: number | null): Timeline {
  const end = attempts.reduce((m, a) => Math.max(m, a.started + Math.max(0, a.duration)), 0);
  const total = Math.max(end, latencyMs ?? 0, 1);
  const bars = attempts.map((a, i) => {
    const left = clamp((a.started / total) * 100, 0, 100);
    const width = clamp((Math.max(0, a.duration) / total) * 100, 0.8, 100 - left);
    return {
      index: i,
      label: roleLabel(a.target_index),
      target: `${a.channel}/${a.upstream_model}`,
      outcome: outcomeText(a.outcome),
      tone: outcomeTone(a.outcome),
      started: a.started,
      duration: a.duration,
      left,
      width: Math.max(width, 0),
    };
  });
  return { total, bars };
}

function clamp(x: number, lo: number, hi: number): number {
  return Math.min(hi, Math.max(lo, x));
}

/** A short walk derived from attempts, for receipts that lack one:
 * "primary relay/gpt-5.5 → 503 ×3 → backup openai/gpt-5.5 → ok". */
export function deriveWalk(attempts: Attempt[]): string {
  const parts: string[] = [];
  let i = 0;
  while (i < attempts.length) {
    const a = attempts[i]!;
    const target = `${a.channel}/${a.upstream_model}`;
    const outcomes: string[] = [];
    while (i < attempts.length && attempts[i]!.target_index === a.target_index && `${attempts[i]!.channel}/${attempts[i]!.upstream_model}` === target) {
      outcomes.push(shortOutcome(attempts[i]!.outcome));
      i++;
    }
    parts.push(`${a.target_index === 0 ? 'primary' : 'backup'} ${target}`);
    parts.push(...collapse(outcomes));
  }
  return parts.join(' → ');
}

function shortOutcome(o: AttemptOutcome): string {
  switch (o.kind) {
    case 'ok':
      return 'ok';
    case 'http':
      return String(o.status);
    case 'failed':
      return humanize(o.class);
    case 'skipped':
      return `skipped (${humanize(o.reason)})`;
  }
}

function collapse(xs: string[]): string[] {
  const out: string[] = [];
  let i = 0;
  while (i < xs.length) {
    let j = i;
    while (j < xs.length && xs[j] === xs[i]) j++;
    out.push(j - i > 1 ? `${xs[i]} ×${j - i}` : xs[i]!);
    i = j;
  }
  return out;
}
