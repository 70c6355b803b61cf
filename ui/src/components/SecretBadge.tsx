import type { SecretState } from '../api';
import { Badge } from './ui';

const LABEL: Record<SecretState, [string, string, string]> = {
  set: ['ok', 'key set', 'A key is stored for this channel'],
  missing: ['warn', 'key missing', 'No key stored yet: requests to this channel will fail'],
  rejected: ['fail', 'key rejected', 'The provider refused this key (401/403): store a new one'],
  not_needed: ['info', 'no key needed', 'This channel needs no key (a local server)'],
  unavailable: ['warn', 'keyring unavailable', 'The OS keyring cannot be read, so the key state is unknown'],
};

export function SecretBadge({ state, env, detail, testId }: { state: SecretState; env?: string | null; detail?: string | null; testId?: string }) {
  const [tone, label, title] = LABEL[state] ?? ['info', state, state];
  const full = [title, env ? `read from $${env}` : '', detail ?? ''].filter(Boolean).join('. ');
  return (
    <Badge tone={tone} title={full} testId={testId}>
      {label}
      {env ? ` ($${env})` : ''}
    </Badge>
  );
}
