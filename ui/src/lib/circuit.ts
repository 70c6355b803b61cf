// What a target's circuit breaker means for the next request, in words.
// "open" waits out a cooldown; "half_open" means the cooldown is over and the
// next request is let through as a probe. A wait is never shown as "0 ms".

import type { TargetHealth } from '../api';

export type Circuit = TargetHealth['circuit'];

/** A cooldown, rounded up to whole seconds: 12_000 → "12 s", 90_500 → "1 min 31 s". */
export function formatWait(ms: number): string {
  const s = Math.max(1, Math.ceil(ms / 1000));
  if (s < 60) return `${s} s`;
  const m = Math.floor(s / 60);
  const rest = s % 60;
  return rest ? `${m} min ${rest} s` : `${m} min`;
}

export interface CircuitBadge {
  tone: 'fail' | 'warn';
  text: string;
  title: string;
}

/** The badge for a circuit, or null when it is closed (healthy: nothing to say). */
export function circuitBadge(c: Circuit): CircuitBadge | null {
  if (c.state === 'open') {
    const wait = c.retry_in_ms !== null && c.retry_in_ms > 0 ? formatWait(c.retry_in_ms) : null;
    return {
      tone: 'fail',
      text: wait ? `circuit open · retry in ${wait}` : 'circuit open · retrying soon',
      title: 'This target failed repeatedly and is skipped until its cooldown ends; then one request probes it.',
    };
  }
  if (c.state === 'half_open') {
    return {
      tone: 'warn',
      text: 'probing on next request',
      title: 'The cooldown is over: the next request tries this target again. Success closes the circuit; failure opens it again.',
    };
  }
  return null;
}
