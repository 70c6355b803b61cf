import { useState, type FormEvent } from 'react';
import { api, errorMessage, type Channel, type DryRun, type Route, type RouteTargetInput, type RouteTreeType, type Target } from '../api';
import type { ViewProps } from '../views';
import { Badge, Confirm, Empty, ErrorBox, useLoad } from '../components/ui';
import { HealthBadges } from '../components/HealthBadges';
import { bucketLabel } from '../lib/money';
import { moveItem } from '../lib/reorder';

export function RoutesView({ refreshStatus }: ViewProps) {
  const routes = useLoad(() => api.routes(), []);
  const channels = useLoad(() => api.channels(), []);
  const [editing, setEditing] = useState<string | null>(null); // route model, or '' for a new one
  const edit = (model: string) => {
    setEditing(model);
    // Bring the editor into view (it may be below the tree).
    requestAnimationFrame(() => document.querySelector('[data-testid=route-editor]')?.scrollIntoView({ block: 'nearest' }));
  };

  const changed = () => {
    setEditing(null);
    routes.reload();
    refreshStatus();
  };
  const list = routes.data?.routes ?? [];
  const channelList = channels.data?.channels ?? [];

  return (
    <div className="view" data-testid="view-routes">
      <div className="toolbar">
        <h1>Routes</h1>
        <span className="spacer" />
        <button type="button" className="btn" onClick={() => routes.reload()} data-testid="routes-refresh">
          Refresh
        </button>
        <button type="button" className="btn btn-primary" onClick={() => edit('')} data-testid="route-new" disabled={editing === ''}>
          New route
        </button>
      </div>
      <p className="muted">
        A route is the model name a tool asks for, and the targets that serve it: the first is primary, the rest are backups, tried in order.
      </p>

      <DryRunBox />

      <ErrorBox error={routes.error} />

      {editing === '' ? <RouteEditor channels={channelList} onSaved={changed} onCancel={() => setEditing(null)} /> : null}

      {routes.data && list.length === 0 && editing !== '' ? (
        <Empty title="No routes yet." testId="routes-empty">
          {channelList.length === 0
            ? 'Add a channel first (Channels), then create a route that sends a model name to it.'
            : 'Create a route to send a model name to a primary channel with backups. Channels that expose models (models = ["*"]) also serve them without a route.'}
        </Empty>
      ) : null}

      {routes.data && routes.data.tree.length > 0 ? <RouteTree tree={routes.data.tree} routes={list} onEdit={edit} /> : null}

      {list.length > 0 ? (
        <section aria-label="Routes" data-testid="routes-list">
          <h2>Routes</h2>
          {list.map((r) =>
            editing === r.model ? (
              <RouteEditor key={r.model} route={r} channels={channelList} onSaved={changed} onCancel={() => setEditing(null)} />
            ) : (
              <RouteCard key={r.model} route={r} onEdit={() => edit(r.model)} />
            ),
          )}
        </section>
      ) : null}
    </div>
  );
}

function RouteCard({ route, onEdit }: { route: Route; onEdit: () => void }) {
  return (
    <article className="card route-card" data-testid="route-card" data-route={route.model}>
      <header className="toolbar">
        <h3 className="mono">{route.model}</h3>
        {route.passthrough ? (
          <Badge tone="info" title="Exposed by a channel's models globs; change it on the channel">
            exposed by channel
          </Badge>
        ) : null}
        {route.cross_bucket ? (
          <Badge tone="info" title="A backup in the other bucket may serve this route">
            cross-bucket
          </Badge>
        ) : null}
        <span className="spacer" />
        {route.passthrough ? null : (
          <button type="button" className="btn btn-small" onClick={onEdit} data-testid="route-edit">
            Edit
          </button>
        )}
      </header>
      <ol className="targets">
        {route.targets.map((t) => (
          <TargetLine key={`${t.position}-${t.channel}-${t.model}`} t={t} />
        ))}
      </ol>
    </article>
  );
}

function TargetLine({ t }: { t: Target }) {
  return (
    <li className="target" data-testid="route-target">
      <span className={`role role-${t.role}`}>{t.role}</span>
      <span className="wrap-anywhere">
        <strong>{t.channel}</strong>/{t.model} <span className="muted small">({t.brand})</span>
      </span>
      <span className="nowrap small">
        <span className={`bucket-dot bucket-${t.bucket}`} aria-hidden="true" />
        {bucketLabel(t.bucket)}
      </span>
      <PriceText price={t.price} />
      <HealthBadges h={t.health} />
    </li>
  );
}

function PriceText({ price }: { price: Target['price'] }) {
  if (!price) {
    return (
      <Badge tone="warn" testId="target-unpriced" title="No price is known: requests work but their cost is not counted">
        UNPRICED
      </Badge>
    );
  }
  return (
    <span className="small nowrap" title={`Per 1M tokens, from ${price.source}`}>
      {price.input} in / {price.output} out {price.currency} per 1M
    </span>
  );
}

/** channel type → brand → channel → routed models (with their primary/backup place). */
function RouteTree({ tree, routes, onEdit }: { tree: RouteTreeType[]; routes: Route[]; onEdit: (model: string) => void }) {
  const editable = (route: string) => routes.some((r) => r.model === route && !r.passthrough);
  const healthOf = (route: string, position: number) => routes.find((r) => r.model === route)?.targets.find((t) => t.position === position)?.health ?? null;
  return (
    <section aria-label="Route tree" data-testid="route-tree">
      <h2>By provider</h2>
      <ul className="tree">
        {tree.map((t) => (
          <li key={t.type}>
            <span className="tree-type">{t.type}</span>
            <ul>
              {t.brands.map((b) => (
                <li key={b.brand}>
                  <span className="tree-brand">{b.brand}</span>
                  <ul>
                    {b.channels.map((c) => (
                      <li key={c.id} data-testid="tree-channel">
                        <span className="tree-line">
                          <span className="mono">{c.id}</span>
                          <span className="muted small">
                            <span className={`bucket-dot bucket-${c.bucket}`} aria-hidden="true" />
                            {bucketLabel(c.bucket)}
                          </span>
                          {c.globs && c.globs.length ? <span className="muted small">exposes {c.globs.join(', ')}</span> : null}
                          {c.models.length === 0 && !(c.globs && c.globs.length) ? <span className="muted small">no routes</span> : null}
                        </span>
                        {c.models.length ? (
                          <ul>
                            {c.models.map((m) => (
                              <li key={`${m.route}-${m.position}`} className="tree-model">
                                <span className="mono">{m.route}</span>
                                {m.upstream_model !== m.route ? <span className="muted"> as {m.upstream_model}</span> : null}{' '}
                                <span className={`role role-${m.position === 0 ? 'primary' : 'backup'}`}>
                                  {m.position === 0 ? 'primary' : `backup ${m.position}`} of {m.of}
                                </span>{' '}
                                <HealthBadges h={healthOf(m.route, m.position)} />
                                {editable(m.route) ? (
                                  <button type="button" className="btn btn-link small" onClick={() => onEdit(m.route)} aria-label={`Edit route ${m.route}`}>
                                    edit route
                                  </button>
                                ) : null}
                              </li>
                            ))}
                          </ul>
                        ) : null}
                      </li>
                    ))}
                  </ul>
                </li>
              ))}
            </ul>
          </li>
        ))}
      </ul>
    </section>
  );
}

function RouteEditor({
  route,
  channels,
  onSaved,
  onCancel,
}: {
  route?: Route;
  channels: Channel[];
  onSaved: () => void;
  onCancel: () => void;
}) {
  const isNew = route === undefined;
  const [model, setModel] = useState(route?.model ?? '');
  const [targets, setTargets] = useState<RouteTargetInput[]>(route?.targets.map((t) => ({ channel: t.channel, model: t.model })) ?? []);
  const [crossBucket, setCrossBucket] = useState(route?.cross_bucket ?? false);
  const [addChannel, setAddChannel] = useState(channels[0]?.id ?? '');
  const [addModel, setAddModel] = useState('');
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<string | null>(null);
  const [deleting, setDeleting] = useState(false);

  const move = (i: number, d: number) => setTargets((ts) => moveItem(ts, i, i + d));
  // Drag and drop is a shortcut for the mouse; the ↑/↓ buttons stay for keyboards.
  const [dragFrom, setDragFrom] = useState<number | null>(null);
  const [dragOver, setDragOver] = useState<number | null>(null);
  const endDrag = () => {
    setDragFrom(null);
    setDragOver(null);
  };

  const bucketOf = (id: string) => channels.find((c) => c.id === id)?.bucket;
  const primaryBucket = targets[0] ? bucketOf(targets[0].channel) : undefined;

  const submit = (e: FormEvent) => {
    e.preventDefault();
    setError(null);
    if (!model.trim()) return setError('Name the model that tools will ask for, e.g. gpt-5.5.');
    if (targets.length === 0) return setError('Add at least one target (a channel and the model name it knows).');
    setBusy(true);
    (isNew ? api.createRoute(model.trim(), targets, crossBucket) : api.updateRoute(route.model, targets, crossBucket))
      .then(onSaved)
      .catch((err: unknown) => setError(errorMessage(err)))
      .finally(() => setBusy(false));
  };

  return (
    <form className="card form route-editor" onSubmit={submit} data-testid="route-editor">
      <h3>{isNew ? 'New route' : `Edit ${route.model}`}</h3>
      <label>
        Model name tools ask for
        <input value={model} onChange={(e) => setModel(e.target.value)} disabled={!isNew} placeholder="gpt-5.5" data-testid="route-model" />
      </label>
      <p className="muted small">Drag a target, or use its ↑ ↓ buttons, to change the order. Nothing is saved until Save route.</p>
      <ol className="edit-targets" aria-label="Targets, primary first">
        {targets.map((t, i) => {
          const b = bucketOf(t.channel);
          const other = primaryBucket && b && b !== primaryBucket;
          return (
            <li
              key={`${i}-${t.channel}-${t.model}`}
              className={`edit-target${dragFrom === i ? ' dragging' : ''}${dragOver === i && dragFrom !== null && dragFrom !== i ? (dragFrom > i ? ' drop-before' : ' drop-after') : ''}`}
              data-testid="route-editor-target"
              draggable
              onDragStart={(e) => {
                e.dataTransfer.effectAllowed = 'move';
                e.dataTransfer.setData('text/plain', `${t.channel}/${t.model}`);
                setDragFrom(i);
              }}
              onDragOver={(e) => {
                if (dragFrom === null) return;
                e.preventDefault();
                e.dataTransfer.dropEffect = 'move';
                if (dragOver !== i) setDragOver(i);
              }}
              onDrop={(e) => {
                if (dragFrom === null) return;
                e.preventDefault();
                setTargets((ts) => moveItem(ts, dragFrom, i));
                endDrag();
              }}
              onDragEnd={endDrag}
            >
              <span className="drag-handle" aria-hidden="true" title="Drag to reorder">
                ⠿
              </span>
              <span className={`role role-${i === 0 ? 'primary' : 'backup'}`}>{i === 0 ? 'primary' : `backup ${i}`}</span>
              <span className="wrap-anywhere">
                <strong>{t.channel}</strong>/{t.model}
              </span>
              {b ? <span className="muted small">{bucketLabel(b)}</span> : <Badge tone="fail">unknown channel</Badge>}
              {other && !crossBucket ? (
                <Badge tone="warn" title="Skipped unless cross-bucket fallback is on">
                  other bucket: skipped
                </Badge>
              ) : null}
              <span className="spacer" />
              <button type="button" className="btn btn-small" onClick={() => move(i, -1)} disabled={i === 0} aria-label={`Move ${t.channel}/${t.model} up`} data-testid="target-up">
                ↑
              </button>
              <button
                type="button"
                className="btn btn-small"
                onClick={() => move(i, 1)}
                disabled={i === targets.length - 1}
                aria-label={`Move ${t.channel}/${t.model} down`}
                data-testid="target-down"
              >
                ↓
              </button>
              <button
                type="button"
                className="btn btn-small btn-danger"
                onClick={() => setTargets((ts) => ts.filter((_, j) => j !== i))}
                aria-label={`Remove ${t.channel}/${t.model}`}
                data-testid="target-remove"
              >
                Remove
              </button>
            </li>
          );
        })}
      </ol>
      <fieldset className="add-target">
        <legend>Add a target</legend>
        <label>
          Channel
          <select value={addChannel} onChange={(e) => setAddChannel(e.target.value)} data-testid="target-add-channel">
            {channels.length === 0 ? <option value="">no channels</option> : null}
            {channels.map((c) => (
              <option key={c.id} value={c.id}>
                {c.id} ({c.brand}, {bucketLabel(c.bucket)})
              </option>
            ))}
          </select>
        </label>
        <label>
          Upstream model
          <input value={addModel} onChange={(e) => setAddModel(e.target.value)} placeholder={model || 'model id at that channel'} data-testid="target-add-model" />
        </label>
        <button
          type="button"
          className="btn"
          data-testid="target-add"
          disabled={!addChannel || !(addModel.trim() || model.trim())}
          onClick={() => {
            setTargets((ts) => [...ts, { channel: addChannel, model: addModel.trim() || model.trim() }]);
            setAddModel('');
          }}
        >
          Add
        </button>
      </fieldset>
      <label className="check">
        <input type="checkbox" checked={crossBucket} onChange={(e) => setCrossBucket(e.target.checked)} data-testid="route-cross-bucket" />
        Allow a backup in the other bucket to serve this route (cross-bucket fallback)
      </label>
      <ErrorBox error={error} />
      <div className="row-actions">
        {!isNew ? (
          <button type="button" className="btn btn-danger" onClick={() => setDeleting(true)} data-testid="route-delete">
            Delete route
          </button>
        ) : null}
        <span className="spacer" />
        <button type="button" className="btn" onClick={onCancel}>
          Cancel
        </button>
        <button type="submit" className="btn btn-primary" disabled={busy} data-testid="route-save">
          {busy ? 'Saving…' : 'Save route'}
        </button>
      </div>
      {!isNew ? (
        <Confirm
          open={deleting}
          title={`Delete route ${route.model}?`}
          body={<p>Tools asking for {route.model} get “unknown model” unless a channel exposes it under that name.</p>}
          confirmLabel="Delete route"
          testId="route-delete-confirm"
          onClose={() => setDeleting(false)}
          onConfirm={async () => {
            await api.deleteRoute(route.model);
            onSaved();
          }}
        />
      ) : null}
    </form>
  );
}

function DryRunBox() {
  const [model, setModel] = useState('');
  const [result, setResult] = useState<DryRun | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  return (
    <section className="card" aria-label="Dry run" data-testid="dry-run">
      <form
        className="inline-form"
        onSubmit={(e) => {
          e.preventDefault();
          if (!model.trim()) return;
          setBusy(true);
          setError(null);
          api
            .dryRun(model.trim())
            .then(setResult)
            .catch((err: unknown) => {
              setResult(null);
              setError(errorMessage(err));
            })
            .finally(() => setBusy(false));
        }}
      >
        <label>
          Which target would serve
          <input value={model} onChange={(e) => setModel(e.target.value)} placeholder="model name" data-testid="dry-run-model" />
        </label>
        <button type="submit" className="btn" disabled={busy || !model.trim()} data-testid="dry-run-submit">
          {busy ? 'Checking…' : 'Check now'}
        </button>
      </form>
      <ErrorBox error={error} />
      {result ? (
        <div className="dry-run-result" data-testid="dry-run-result">
          {result.target ? (
            <ol className="targets">
              <TargetLine t={result.target} />
            </ol>
          ) : (
            <p>
              <Badge tone="fail">no target</Badge>
            </p>
          )}
          <p className="wrap-anywhere">
            {result.reason}
            {result.passthrough ? <span className="muted"> (served by a channel that exposes this model, no route)</span> : null}
          </p>
          {result.skipped.length ? (
            <ul className="small">
              {result.skipped.map((s, i) => (
                <li key={i}>
                  skipped <strong>{s.channel}</strong>/{s.model}: {s.reason}
                </li>
              ))}
            </ul>
          ) : null}
        </div>
      ) : null}
    </section>
  );
}
