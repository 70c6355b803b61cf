// First run: connect a model, make a key, send a first request.
// Shown while the gateway has no channels, until dismissed.

import { useEffect, useState } from 'react';
import {
  api,
  ApiError,
  errorMessage,
  type Bucket,
  type BucketName,
  listModels,
  sendTestChat,
  type Channel,
  type ChatAnswer,
  type CreatedKey,
  type LocalServer,
  type Preset,
  type ReceiptDetail,
  type Status,
} from '../api';
import { Badge, CodeBlock, CopyButton, ErrorBox, useLoad } from '../components/ui';
import { AddChannel } from './ChannelsView';
import { CreateKeyForm } from './KeysView';
import { BalanceCard } from './SpendView';
import { bucketLabel, formatMicro, formatMs } from '../lib/money';
import { snippets } from '../lib/snippets';
import { plural } from '../lib/plural';

const DISMISSED = 'switchyard.onboarding.dismissed';

export function onboardingDismissed(): boolean {
  try {
    return window.localStorage.getItem(DISMISSED) === '1';
  } catch {
    return false;
  }
}

export function Onboarding({ status, refreshStatus, onClose }: { status: Status | null; refreshStatus: () => void; onClose: () => void }) {
  const [channel, setChannel] = useState<Channel | null>(null);
  const [modelHint, setModelHint] = useState<string>('');
  const [key, setKey] = useState<CreatedKey | null>(null);
  const currencies = Object.fromEntries((status?.balances ?? []).map((b) => [b.bucket, b.currency]));

  const dismiss = () => {
    try {
      window.localStorage.setItem(DISMISSED, '1');
    } catch {
      // storage unavailable: it is hidden for this session only
    }
    onClose();
  };

  const step = !channel ? 1 : !key ? 2 : 3;

  return (
    <div className="view onboarding" data-testid="onboarding">
      <div className="toolbar">
        <h1>Welcome to Switchyard</h1>
        <span className="spacer" />
        <button type="button" className="btn" onClick={dismiss} data-testid="onboarding-dismiss">
          {step === 3 ? 'Done' : 'Skip setup'}
        </button>
      </div>
      <p className="muted">Three steps: connect a model, make a key for your tools, send a first request.</p>

      <ol className="steps">
        <li className={`step ${step === 1 ? 'current' : 'done'}`} data-testid="onboarding-step-channel">
          <h2>1. Connect a model</h2>
          {channel ? (
            <p>
              <Badge tone="ok">added</Badge> {channel.brand || channel.id} <span className="muted">({bucketLabel(channel.bucket)})</span>
            </p>
          ) : (
            <ConnectStep
              onAdded={(c, hint) => {
                setChannel(c);
                setModelHint(hint);
                refreshStatus();
              }}
            />
          )}
        </li>
        <li className={`step ${step === 2 ? 'current' : step > 2 ? 'done' : ''}`} data-testid="onboarding-step-key">
          <h2>2. Create a key for your tools</h2>
          {key ? (
            <div className="stack">
              <p className="warn">Copy this key now; it is shown only once.</p>
              <div className="secret-once">
                <code className="mono wrap-anywhere" data-testid="onboarding-key">
                  {key.key}
                </code>
                <CopyButton text={key.key} label="Copy key" />
              </div>
            </div>
          ) : step === 2 ? (
            <CreateKeyForm currencies={currencies} onCreated={setKey} defaultName="scripts" compact />
          ) : (
            <p className="muted">After a model is connected.</p>
          )}
        </li>
        <li className={`step ${step === 3 ? 'current' : ''}`} data-testid="onboarding-step-request">
          <h2>3. Make a first request</h2>
          {key && channel ? (
            <FirstRequest gatewayKey={key.key} hint={modelHint} channel={channel} balances={status?.balances ?? []} refreshStatus={refreshStatus} />
          ) : (
            <p className="muted">After the key is made.</p>
          )}
        </li>
      </ol>
    </div>
  );
}

function ConnectStep({ onAdded }: { onAdded: (c: Channel, modelHint: string) => void }) {
  const local = useLoad(() => api.localServers(), []);
  const presets = useLoad(() => api.presets(), []);
  const [busy, setBusy] = useState<string | null>(null);
  const [error, setError] = useState<string | null>(null);
  const reachable = (local.data?.servers ?? []).filter((s) => s.reachable);

  const addLocal = (s: LocalServer) => {
    const p: Preset | undefined = presets.data?.presets.find((x) => x.id === s.preset);
    setBusy(s.preset);
    setError(null);
    api
      .createChannel({
        id: s.preset,
        type: p?.type ?? 'openai-compatible',
        brand: p?.brand ?? s.preset,
        base_url: s.base_url,
        bucket: p?.bucket ?? 'wallet',
        secret: 'none',
        models: p?.models.length ? p.models : ['*'],
      })
      .then((c) => onAdded(c, s.models[0] ?? ''))
      .catch((e: unknown) => setError(errorMessage(e)))
      .finally(() => setBusy(null));
  };

  return (
    <div className="stack">
      {local.loading ? <p className="muted">Looking for Ollama and LM Studio on this machine…</p> : null}
      {reachable.length ? (
        <div className="stack" data-testid="onboarding-local">
          <p>Found on this machine:</p>
          {reachable.map((s) => {
            const label = presets.data?.presets.find((p) => p.id === s.preset)?.label ?? s.preset;
            return (
              <div key={s.preset} className="local-server">
                <span>
                  <strong>{label}</strong> <span className="mono small">{s.base_url}</span>{' '}
                  <span className="muted small">
                    {plural(s.models.length, 'model')}
                    {s.models.length ? `: ${s.models.slice(0, 4).join(', ')}${s.models.length > 4 ? '…' : ''}` : ''}
                  </span>
                </span>
                <button type="button" className="btn btn-primary" disabled={busy !== null} onClick={() => addLocal(s)} data-testid={`onboarding-add-${s.preset}`}>
                  {busy === s.preset ? 'Adding…' : `Add ${label}`}
                </button>
              </div>
            );
          })}
          <ErrorBox error={error} />
          <p className="muted small">Or add a provider with its key:</p>
        </div>
      ) : !local.loading ? (
        <p className="muted small">
          {local.error ? `Local servers could not be checked: ${local.error}` : 'No local server (Ollama on 11434, LM Studio on 1234) is running.'} Add a
          provider with its key:
        </p>
      ) : null}
      <AddChannel presetFilter={(p) => !p.local} onDone={(c) => onAdded(c, '')} />
    </div>
  );
}

function FirstRequest({
  gatewayKey,
  hint,
  channel,
  balances,
  refreshStatus,
}: {
  gatewayKey: string;
  hint: string;
  channel: Channel;
  balances: Bucket[];
  refreshStatus: () => void;
}) {
  const [model, setModel] = useState(hint);
  const [models, setModels] = useState<string[]>([]);
  const [busy, setBusy] = useState(false);
  const [answer, setAnswer] = useState<ChatAnswer | null>(null);
  const [receipt, setReceipt] = useState<ReceiptDetail | null>(null);
  const [error, setError] = useState<string | null>(null);
  // The bucket a 402 named: the route may pay from another bucket than the new channel's.
  const [refusedBy, setRefusedBy] = useState<BucketName | null>(null);

  // Offer a top-up for the bucket that refused, or, before any refusal, for
  // the new channel's bucket when it is already empty.
  const topup =
    (refusedBy ? balances.find((b) => b.bucket === refusedBy) : undefined) ??
    balances.find((b) => b.bucket === channel.bucket && b.balance_micro <= 0);

  useEffect(() => {
    listModels(gatewayKey)
      .then((ms) => {
        setModels(ms);
        setModel((m) => m || ms[0] || '');
      })
      .catch(() => setModels([]));
  }, [gatewayKey]);

  const send = () => {
    setBusy(true);
    setError(null);
    setAnswer(null);
    setReceipt(null);
    setRefusedBy(null);
    sendTestChat(gatewayKey, model.trim(), 'Say hello in five words.')
      .then(async (a) => {
        setAnswer(a);
        if (a.requestId) {
          // The final receipt is written just after the answer; give the writer a moment.
          for (let i = 0; i < 10; i++) {
            try {
              const r = await api.receipt(a.requestId);
              setReceipt(r);
              if (r.status !== 'pending') return;
            } catch {
              // not written yet
            }
            await new Promise((res) => setTimeout(res, 300));
          }
        }
      })
      .catch((e: unknown) => {
        setError(errorMessage(e));
        if (e instanceof ApiError && e.status === 402) setRefusedBy(e.bucket ?? channel.bucket);
      })
      .finally(() => {
        setBusy(false);
        // The request was charged (or refused): the balances in the strip move now.
        refreshStatus();
      });
  };

  return (
    <div className="stack">
      {topup ? (
        <div className="stack" data-testid="onboarding-topup" data-bucket={topup.bucket}>
          <p className="muted small">
            {refusedBy === topup.bucket
              ? `${bucketLabel(topup.bucket)} pays for this request was empty, so the gateway refused it before anything was sent.`
              : `${bucketLabel(topup.bucket)} pays for this channel and is empty, so priced requests are refused before anything is sent.`}{' '}
            Put money on the books first (this only records what you paid your provider), then send again:
          </p>
          <BalanceCard bucket={topup} onTopup={refreshStatus} />
        </div>
      ) : null}
      <CodeBlock code={snippets(window.location.origin, gatewayKey, model || 'MODEL').curl} testId="onboarding-curl" />
      <div className="inline-form">
        <label>
          Model
          <input value={model} onChange={(e) => setModel(e.target.value)} list="onboarding-models" data-testid="onboarding-model" />
          <datalist id="onboarding-models">
            {models.map((m) => (
              <option key={m} value={m} />
            ))}
          </datalist>
        </label>
        <button type="button" className="btn btn-primary" onClick={send} disabled={busy || !model.trim()} data-testid="onboarding-send">
          {busy ? 'Sending…' : 'Send test request'}
        </button>
      </div>
      <ErrorBox error={error} testId="onboarding-error" />
      {answer ? (
        <div className="card" data-testid="onboarding-answer">
          <p className="muted small">
            {answer.model} answered{answer.channel ? ` via ${answer.channel}` : ''}
            {answer.bucket ? `, paid from ${bucketLabel(answer.bucket)}` : ''}:
          </p>
          <p className="answer-text">{answer.content}</p>
          {receipt ? (
            <div className="small" data-testid="onboarding-receipt">
              <strong>Receipt</strong> <span className="mono">{receipt.id}</span>
              <p className="walk">{receipt.walk}</p>
              <p>
                {receipt.usage.input + receipt.usage.cached_input + receipt.usage.cache_write} tokens in, {receipt.usage.output + receipt.usage.reasoning} out ·{' '}
                {formatMs(receipt.latency_ms)} ·{' '}
                {receipt.price === null ? <Badge tone="warn">UNPRICED</Badge> : receipt.currency ? formatMicro(receipt.cost, receipt.currency) : '—'}
              </p>
            </div>
          ) : null}
        </div>
      ) : null}
    </div>
  );
}
