import type { TargetHealth } from '../api';
import { formatInt, formatMs, formatPercent } from '../lib/money';
import { plural } from '../lib/plural';
import { circuitBadge } from '../lib/circuit';
import { Badge } from './ui';
import { SecretBadge } from './SecretBadge';

/** A target's last hour: success rate, latency, circuit and key state. */
export function HealthBadges({ h }: { h: TargetHealth | null }) {
  if (!h) return null;
  const circuit = circuitBadge(h.circuit);
  const rateTone = h.success_rate === null ? 'info' : h.success_rate >= 0.95 ? 'ok' : h.success_rate >= 0.7 ? 'warn' : 'fail';
  return (
    <span className="health" data-testid="target-health">
      {h.requests > 0 ? (
        <Badge tone={rateTone} title={`${formatInt(h.ok)} of ${plural(h.requests, 'request')} succeeded in the last hour`}>
          {formatPercent(h.success_rate)} ok
        </Badge>
      ) : (
        <Badge tone="info" title="No requests in the last hour">
          idle
        </Badge>
      )}
      {h.p50_ms !== null ? (
        <span className="muted small" title="Latency, median / 95th percentile">
          p50 {formatMs(h.p50_ms)} · p95 {formatMs(h.p95_ms)}
        </span>
      ) : null}
      {circuit ? (
        <Badge tone={circuit.tone} testId="target-circuit" title={circuit.title}>
          {circuit.text}
        </Badge>
      ) : null}
      {h.secret !== 'set' && h.secret !== 'not_needed' ? <SecretBadge state={h.secret} /> : null}
      {h.mismatches > 0 ? (
        <Badge tone="warn" title="Answers whose upstream model differed from the one asked for">
          {plural(h.mismatches, 'model mismatch')}
        </Badge>
      ) : null}
      {h.last_error ? (
        <span className="muted small wrap-anywhere" title="Last error">
          last error: {h.last_error.summary}
        </span>
      ) : null}
    </span>
  );
}
