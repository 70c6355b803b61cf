import { useState, type FormEvent } from 'react';
import {
  api,
  BUCKETS,
  CHANNEL_TYPES,
  errorMessage,
  type BucketName,
  type Channel,
  type ChannelPatch,
  type ChannelTest,
  type ChannelType,
  type NewChannel,
  type Preset,
} from '../api';
import type { ViewProps } from '../views';
import { Badge, Confirm, Dialog, Empty, ErrorBox, useLoad } from '../components/ui';
import { SecretBadge } from '../components/SecretBadge';
import { bucketLabel, formatMs } from '../lib/money';
import { plural } from '../lib/plural';

export function ChannelsView({ refreshStatus }: ViewProps) {
  const channels = useLoad(() => api.channels(), []);
  const [adding, setAdding] = useState(false);
  const [editing, setEditing] = useState<Channel | null>(null);
  const [secretFor, setSecretFor] = useState<Channel | null>(null);
  const [removing, setRemoving] = useState<Channel | null>(null);
  const [forgetting, setForgetting] = useState<Channel | null>(null);
  const [tests, setTests] = useState<Record<string, ChannelTest | { error: string } | 'running'>>({});

  const changed = () => {
    channels.reload();
    refreshStatus();
  };

  const test = (id: string) => {
    setTests((t) => ({ ...t, [id]: 'running' }));
    api
      .testChannel(id)
      .then((r) => setTests((t) => ({ ...t, [id]: r })))
      .catch((e: unknown) => setTests((t) => ({ ...t, [id]: { error: errorMessage(e) } })));
  };

  const list = channels.data?.channels ?? [];

  return (
    <div className="view" data-testid="view-channels">
      <div className="toolbar">
        <h1>Channels</h1>
        <span className="spacer" />
        <button type="button" className="btn btn-primary" onClick={() => setAdding(true)} data-testid="channel-add">
          Add channel
        </button>
      </div>
      <p className="muted">
        A channel is one upstream account: a provider, its address, its key (kept in the OS keyring) and the bucket that pays for it.
      </p>
      <ErrorBox error={channels.error} />
      {channels.data && list.length === 0 ? (
        <Empty title="No channels yet." testId="channels-empty">
          Add a provider (OpenAI, Anthropic, Gemini, DeepSeek, OpenRouter) with its key, or a local server such as Ollama or LM Studio.
          <div>
            <button type="button" className="btn btn-primary" onClick={() => setAdding(true)}>
              Add your first channel
            </button>
          </div>
        </Empty>
      ) : (
        <div className="table-wrap">
          <table className="table" data-testid="channels-table">
            <thead>
              <tr>
                <th scope="col">Channel</th>
                <th scope="col">Bucket</th>
                <th scope="col">Key</th>
                <th scope="col">Base URL</th>
                <th scope="col">Used by</th>
                <th scope="col">
                  <span className="sr-only">Actions</span>
                </th>
              </tr>
            </thead>
            <tbody>
              {list.map((c) => (
                <ChannelRow
                  key={c.id}
                  c={c}
                  test={tests[c.id]}
                  onTest={() => test(c.id)}
                  onEdit={() => setEditing(c)}
                  onSecret={() => setSecretFor(c)}
                  onForget={() => setForgetting(c)}
                  onRemove={() => setRemoving(c)}
                />
              ))}
            </tbody>
          </table>
        </div>
      )}

      <Dialog open={adding} onClose={() => setAdding(false)} title="Add a channel" testId="channel-add-dialog">
        <AddChannel
          onChanged={changed}
          onDone={() => {
            setAdding(false);
            changed();
          }}
        />
      </Dialog>

      <Dialog open={editing !== null} onClose={() => setEditing(null)} title={`Edit ${editing?.id ?? ''}`} testId="channel-edit-dialog">
        {editing ? (
          <ChannelForm
            initial={editing}
            onSaved={() => {
              setEditing(null);
              changed();
            }}
          />
        ) : null}
      </Dialog>

      <Dialog open={secretFor !== null} onClose={() => setSecretFor(null)} title={`Key for ${secretFor?.id ?? ''}`} testId="channel-secret-dialog">
        {secretFor ? (
          <SecretForm
            channel={secretFor}
            onSaved={() => {
              setSecretFor(null);
              changed();
            }}
          />
        ) : null}
      </Dialog>

      <Confirm
        open={forgetting !== null}
        title={`Delete the key of ${forgetting?.id ?? ''}?`}
        body={<p>The key is removed from the OS keyring. Requests to this channel fail until you store a new one.</p>}
        confirmLabel="Delete key"
        testId="secret-delete-confirm"
        onClose={() => setForgetting(null)}
        onConfirm={async () => {
          if (forgetting) await api.deleteSecret(forgetting.id);
          changed();
        }}
      />

      <Confirm
        open={removing !== null}
        title={`Remove channel ${removing?.id ?? ''}?`}
        body={
          <p>
            The channel is removed from the config file. Its receipts stay in the ledger.
            {removing && removing.routes.length > 0 ? ` Routes still using it: ${removing.routes.join(', ')}. Remove it from them first.` : ''}
          </p>
        }
        confirmLabel="Remove channel"
        testId="channel-remove-confirm"
        onClose={() => setRemoving(null)}
        onConfirm={async () => {
          if (removing) await api.deleteChannel(removing.id);
          changed();
        }}
      />
    </div>
  );
}

function ChannelRow({
  c,
  test,
  onTest,
  onEdit,
  onSecret,
  onForget,
  onRemove,
}: {
  c: Channel;
  test: ChannelTest | { error: string } | 'running' | undefined;
  onTest: () => void;
  onEdit: () => void;
  onSecret: () => void;
  onForget: () => void;
  onRemove: () => void;
}) {
  return (
    <>
      <tr data-testid="channel-row" data-channel-id={c.id}>
        <td>
          <strong className="wrap-anywhere">{c.brand || c.id}</strong>
          <div className="muted small">
            <span className="mono">{c.id}</span> · {c.type}
          </div>
        </td>
        <td className="nowrap">
          <span className={`bucket-dot bucket-${c.bucket}`} aria-hidden="true" />
          {bucketLabel(c.bucket)}
          {c.price_multiplier !== null && c.price_multiplier !== 1 ? <div className="muted small">×{c.price_multiplier} price</div> : null}
        </td>
        <td>
          <SecretBadge state={c.secret.state} env={c.secret.source === 'env' ? c.secret.env : null} detail={c.secret.detail} testId="channel-secret-state" />
          {c.secret.detail ? <div className="muted small wrap-anywhere">{c.secret.detail}</div> : null}
        </td>
        <td className="wrap-anywhere small mono">{c.base_url}</td>
        <td className="small">
          {c.routes.length ? c.routes.join(', ') : <span className="muted">no routes</span>}
          {c.models.length ? <div className="muted">exposes {c.models.join(', ')}</div> : null}
        </td>
        <td>
          <div className="row-actions wrap">
            <button type="button" className="btn btn-small" onClick={onTest} disabled={test === 'running'} data-testid="channel-test">
              {test === 'running' ? 'Testing…' : 'Test connection'}
            </button>
            {c.secret.source === 'keyring' ? (
              <button type="button" className="btn btn-small" onClick={onSecret} data-testid="channel-set-secret">
                {c.secret.state === 'set' ? 'Replace key' : 'Set key'}
              </button>
            ) : null}
            {c.secret.source === 'keyring' && (c.secret.state === 'set' || c.secret.state === 'rejected') ? (
              <button type="button" className="btn btn-small" onClick={onForget} data-testid="channel-delete-secret">
                Delete key
              </button>
            ) : null}
            <button type="button" className="btn btn-small" onClick={onEdit} data-testid="channel-edit">
              Edit
            </button>
            <button type="button" className="btn btn-small btn-danger" onClick={onRemove} data-testid="channel-remove">
              Remove
            </button>
          </div>
        </td>
      </tr>
      {test && test !== 'running' ? (
        <tr className="subrow">
          <td colSpan={6}>
            <TestResult result={test} />
          </td>
        </tr>
      ) : null}
    </>
  );
}

export function TestResult({ result }: { result: ChannelTest | { error: string } }) {
  if (!('ok' in result)) {
    return (
      <div className="test-result" data-testid="channel-test-result" data-ok="false">
        <Badge tone="fail">failed</Badge> <span className="wrap-anywhere">{result.error}</span>
      </div>
    );
  }
  return (
    <div className="test-result" data-testid="channel-test-result" data-ok={result.ok ? 'true' : 'false'}>
      <Badge tone={result.ok ? 'ok' : 'fail'}>{result.ok ? 'connected' : 'failed'}</Badge>{' '}
      {result.status !== null ? <span>HTTP {result.status} · </span> : null}
      <span>{formatMs(result.latency_ms)}</span>
      {result.models !== null ? <span> · {plural(result.models, 'model')}</span> : null}
      {result.sample.length ? <div className="muted small wrap-anywhere">e.g. {result.sample.join(', ')}</div> : null}
      {result.error ? <div className="wrap-anywhere">{result.error}</div> : null}
    </div>
  );
}

/** Pick a preset, then fill in the form it prefills. */
export function AddChannel({
  onDone,
  onChanged,
  presetFilter,
}: {
  onDone: (c: Channel) => void;
  onChanged?: () => void;
  presetFilter?: (p: Preset) => boolean;
}) {
  const presets = useLoad(() => api.presets(), []);
  const [preset, setPreset] = useState<Preset | null>(null);
  const [custom, setCustom] = useState(false);
  const shown = (presets.data?.presets ?? []).filter(presetFilter ?? (() => true));

  if (preset || custom) {
    return (
      <div className="stack">
        <button type="button" className="btn btn-link" onClick={() => (setPreset(null), setCustom(false))}>
          ← Other provider
        </button>
        <ChannelForm preset={preset} onSaved={onDone} onChanged={onChanged} />
      </div>
    );
  }
  return (
    <div className="stack" data-testid="channel-presets">
      <ErrorBox error={presets.error} />
      {presets.error ? (
        <button type="button" className="btn" onClick={() => setCustom(true)}>
          Fill in a channel by hand
        </button>
      ) : null}
      <div className="preset-grid">
        {shown.map((p) => (
          <button key={p.id} type="button" className="preset" onClick={() => setPreset(p)} data-testid={`preset-${p.id}`}>
            <strong>{p.label}</strong>
            <span className="muted small">
              {p.local ? 'local server' : p.type} · {bucketLabel(p.bucket)}
            </span>
          </button>
        ))}
      </div>
    </div>
  );
}

function suggestId(p: Preset | null): string {
  return p ? p.id.replace(/[^A-Za-z0-9._-]/g, '-') : '';
}

type SecretSource = 'keyring' | 'none' | 'env';

/** Create (from a preset) or edit a channel. A key typed here goes straight to
 * the keyring and is never shown again. */
export function ChannelForm({
  preset = null,
  initial,
  onSaved,
  onChanged,
}: {
  preset?: Preset | null;
  initial?: Channel;
  onSaved: (c: Channel) => void;
  /** Called as soon as the config changed, even if a later step fails. */
  onChanged?: () => void;
}) {
  const editing = initial !== undefined;
  const [id, setId] = useState(initial?.id ?? (preset?.id === 'custom' ? '' : suggestId(preset)));
  const [type, setType] = useState<ChannelType>(initial?.type ?? preset?.type ?? 'openai-compatible');
  const [brand, setBrand] = useState(initial?.brand ?? (preset?.id === 'custom' ? '' : preset?.brand ?? ''));
  const [baseUrl, setBaseUrl] = useState(initial?.base_url ?? preset?.base_url ?? '');
  const [bucket, setBucket] = useState<BucketName>(initial?.bucket ?? preset?.bucket ?? 'wallet');
  const [secretSource, setSecretSource] = useState<SecretSource>(initial?.secret.source ?? preset?.secret ?? 'keyring');
  const [envVar, setEnvVar] = useState(initial?.secret.env ?? '');
  const [models, setModels] = useState((initial?.models ?? preset?.models ?? []).join(', '));
  const [multiplier, setMultiplier] = useState(initial?.price_multiplier != null ? String(initial.price_multiplier) : '');
  const [secret, setSecret] = useState('');
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<string | null>(null);
  // A new channel that was saved while its key was not: a retry only stores the key.
  const [created, setCreated] = useState<Channel | null>(null);

  const needsBaseUrl = type === 'openai-compatible';

  const submit = (e: FormEvent) => {
    e.preventDefault();
    setError(null);
    if (!editing && !/^[A-Za-z0-9._-]+$/.test(id)) return setError('The id may use letters, digits, "-", "_" and "." only (for example "openai" or "my-relay").');
    if (needsBaseUrl && !baseUrl.trim()) return setError('An OpenAI-compatible channel needs a base URL, such as http://127.0.0.1:11434/v1.');
    if (secretSource === 'env' && !/^[A-Za-z_][A-Za-z0-9_]*$/.test(envVar)) return setError('Name the environment variable that holds the key, such as OPENAI_API_KEY.');
    let mult: number | undefined;
    if (multiplier.trim()) {
      mult = Number(multiplier);
      if (!Number.isFinite(mult) || mult < 0) return setError('The price multiplier must be a number such as 0.3.');
    }
    const secretValue = secretSource === 'env' ? `env:${envVar}` : secretSource;
    const modelList = models
      .split(/[\s,]+/)
      .map((m) => m.trim())
      .filter(Boolean);

    setBusy(true);
    const save = async (): Promise<Channel> => {
      let ch: Channel;
      if (editing && initial) {
        const patch: ChannelPatch = {};
        if (brand !== initial.brand) patch.brand = brand;
        if (baseUrl.trim() !== initial.base_url) patch.base_url = baseUrl.trim();
        if (bucket !== initial.bucket) patch.bucket = bucket;
        const oldSecret = initial.secret.source === 'env' ? `env:${initial.secret.env ?? ''}` : initial.secret.source;
        if (secretValue !== oldSecret) patch.secret = secretValue;
        if (modelList.join(',') !== initial.models.join(',')) patch.models = modelList;
        const oldMult = initial.price_multiplier;
        if ((mult ?? null) !== oldMult) patch.price_multiplier = mult ?? null;
        ch = Object.keys(patch).length ? await api.updateChannel(initial.id, patch) : initial;
      } else if (created) {
        ch = created;
      } else {
        const body: NewChannel = { id, type, bucket, secret: secretValue };
        if (brand.trim()) body.brand = brand.trim();
        if (baseUrl.trim()) body.base_url = baseUrl.trim();
        if (modelList.length) body.models = modelList;
        if (mult !== undefined) body.price_multiplier = mult;
        ch = await api.createChannel(body);
        setCreated(ch);
        onChanged?.();
      }
      if (secretSource === 'keyring' && secret) {
        try {
          await api.setSecret(ch.id, secret);
        } catch (err) {
          throw new Error(`The channel is saved, but its key was not stored: ${errorMessage(err)}`);
        }
      }
      return ch;
    };
    save()
      .then((ch) => {
        setSecret('');
        onSaved(ch);
      })
      .catch((err: unknown) => setError(errorMessage(err)))
      .finally(() => setBusy(false));
  };

  return (
    <form className="form" onSubmit={submit} data-testid="channel-form" autoComplete="off">
      <div className="form-grid">
        <label>
          Id <span className="muted small">(also names its keyring entry)</span>
          <input value={id} onChange={(e) => setId(e.target.value)} disabled={editing || created !== null} required data-testid="channel-id" />
        </label>
        <label>
          Type
          <select value={type} onChange={(e) => setType(e.target.value as ChannelType)} disabled={editing} data-testid="channel-type">
            {CHANNEL_TYPES.map((t) => (
              <option key={t} value={t}>
                {t}
              </option>
            ))}
          </select>
        </label>
        <label>
          Brand <span className="muted small">(display name)</span>
          <input value={brand} onChange={(e) => setBrand(e.target.value)} data-testid="channel-brand" />
        </label>
        <label>
          Bucket <span className="muted small">(who pays)</span>
          <select value={bucket} onChange={(e) => setBucket(e.target.value as BucketName)} data-testid="channel-bucket">
            {BUCKETS.map((b) => (
              <option key={b} value={b}>
                {bucketLabel(b)}
              </option>
            ))}
          </select>
        </label>
        <label className="span-2">
          Base URL {needsBaseUrl ? null : <span className="muted small">(empty = the provider's)</span>}
          <input value={baseUrl} onChange={(e) => setBaseUrl(e.target.value)} placeholder="https://…/v1" required={needsBaseUrl} data-testid="channel-base-url" />
        </label>
        <label>
          Key source
          <select value={secretSource} onChange={(e) => setSecretSource(e.target.value as SecretSource)} data-testid="channel-secret-source">
            <option value="keyring">OS keyring</option>
            <option value="env">Environment variable</option>
            <option value="none">None (local server)</option>
          </select>
        </label>
        {secretSource === 'env' ? (
          <label>
            Variable
            <input value={envVar} onChange={(e) => setEnvVar(e.target.value)} placeholder="OPENAI_API_KEY" data-testid="channel-secret-env" />
          </label>
        ) : null}
        {secretSource === 'keyring' ? (
          <label>
            {editing && initial?.secret.state === 'set' ? 'Replace key (optional)' : 'API key'}
            <input
              type="password"
              value={secret}
              onChange={(e) => setSecret(e.target.value)}
              autoComplete="new-password"
              spellCheck={false}
              placeholder="paste the provider's key"
              data-testid="channel-secret"
            />
          </label>
        ) : null}
        <label>
          Exposed models <span className="muted small">(globs, optional)</span>
          <input value={models} onChange={(e) => setModels(e.target.value)} placeholder="* or deepseek-*" data-testid="channel-models" />
        </label>
        <label>
          Price multiplier <span className="muted small">(optional)</span>
          <input inputMode="decimal" value={multiplier} onChange={(e) => setMultiplier(e.target.value)} placeholder="1" data-testid="channel-multiplier" />
        </label>
      </div>
      {secretSource === 'keyring' ? <p className="muted small">The key goes straight into the OS keyring. Switchyard never shows it again.</p> : null}
      <ErrorBox error={error} />
      <div className="row-actions">
        {created && error ? (
          <button type="button" className="btn" onClick={() => onSaved(created)} data-testid="channel-continue-without-key">
            Continue without the key
          </button>
        ) : null}
        <button type="submit" className="btn btn-primary" disabled={busy} data-testid="channel-save">
          {busy ? 'Saving…' : editing ? 'Save' : created ? 'Store key' : 'Add channel'}
        </button>
      </div>
    </form>
  );
}

function SecretForm({ channel, onSaved }: { channel: Channel; onSaved: () => void }) {
  const [secret, setSecret] = useState('');
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<string | null>(null);
  return (
    <form
      className="form"
      data-testid="secret-form"
      autoComplete="off"
      onSubmit={(e) => {
        e.preventDefault();
        if (!secret.trim()) return setError('Paste the key first.');
        setBusy(true);
        setError(null);
        api
          .setSecret(channel.id, secret.trim())
          .then(() => {
            setSecret('');
            onSaved();
          })
          .catch((err: unknown) => setError(errorMessage(err)))
          .finally(() => setBusy(false));
      }}
    >
      <label>
        API key for {channel.brand || channel.id}
        <input
          type="password"
          value={secret}
          onChange={(e) => setSecret(e.target.value)}
          autoComplete="new-password"
          spellCheck={false}
          autoFocus
          data-testid="secret-input"
        />
      </label>
      <p className="muted small">Stored in the OS keyring; it is never shown again, here or anywhere.</p>
      <ErrorBox error={error} />
      <div className="row-actions">
        <button type="submit" className="btn btn-primary" disabled={busy} data-testid="secret-save">
          {busy ? 'Storing…' : 'Store key'}
        </button>
      </div>
    </form>
  );
}
