// The one client for Switchyard's management API (/api) and the gateway (/v1).
// Every call in the UI goes through here; the shapes mirror the API contract.
// Money is integer micro-units of a bucket's currency; it is never summed
// across buckets.

import { getToken } from './auth';

export type BucketName = 'credit' | 'wallet';
export const BUCKETS: readonly BucketName[] = ['credit', 'wallet'];

export interface Bucket {
  bucket: BucketName;
  currency: string;
  balance: string;
  balance_micro: number;
}

export interface Status {
  version: string;
  listen: string;
  channels: number;
  routes: number;
  paused?: boolean;
  balances: Bucket[];
}

export interface TopupResult {
  bucket: BucketName;
  currency: string;
  amount: string;
  amount_micro: number;
  balance: string;
  balance_micro: number;
}

export interface Entry {
  id: number;
  at: number;
  bucket: BucketName;
  kind: 'topup' | 'charge' | 'refund' | 'adjustment';
  amount: number;
  balance_after: number;
  currency: string;
  receipt_id: string | null;
  note: string | null;
  amount_formatted: string;
  balance_after_formatted: string;
}

export interface EntriesPage {
  bucket: BucketName;
  currency: string;
  entries: Entry[];
  next: string | null;
}

export type ReceiptStatus =
  | 'pending'
  | 'ok'
  | 'error'
  | 'client_cancelled'
  | 'upstream_cut'
  | 'interrupted';
export const RECEIPT_STATUSES: readonly ReceiptStatus[] = [
  'ok',
  'error',
  'pending',
  'client_cancelled',
  'upstream_cut',
  'interrupted',
];

export type AttemptOutcome =
  | { kind: 'ok'; status: number }
  | { kind: 'http'; status: number; class: string }
  | { kind: 'failed'; class: string }
  | { kind: 'skipped'; reason: string };

export interface Attempt {
  channel: string;
  upstream_model: string;
  bucket: BucketName | null;
  target_index: number;
  outcome: AttemptOutcome;
  started: number;
  duration: number;
}

export interface Usage {
  input: number;
  cached_input: number;
  cache_write: number;
  output: number;
  reasoning: number;
}

/** Micro-units of the receipt's currency per 1M tokens. */
export type UnitPrices = Usage;

export interface Receipt {
  id: string;
  started_at: number;
  ended_at: number | null;
  key_id: number | null;
  key_name: string | null;
  project: string | null;
  source: string;
  run_id: string | null;
  requested_model: string;
  route: string;
  channel: string | null;
  brand: string | null;
  upstream_model: string | null;
  bucket: BucketName | null;
  cross_bucket_fallback: boolean;
  attempts: Attempt[];
  walk: string;
  retry_count: number;
  fallback_count: number;
  stream: boolean;
  usage: Usage;
  usage_estimated: boolean;
  price: UnitPrices | null;
  price_source: string | null;
  currency: string | null;
  cost: number;
  ttft_ms: number | null;
  latency_ms: number | null;
  status: ReceiptStatus;
  error: string | null;
}

export interface Money {
  micro: number;
  amount: string;
  currency: string;
}

export interface ReceiptDetail extends Receipt {
  cost_formatted?: Money | null;
}

export interface ReceiptsPage {
  receipts: Receipt[];
  next: string | null;
}

export interface ReceiptFilter {
  since?: string;
  until?: string;
  model?: string;
  channel?: string;
  key?: string;
  project?: string;
  bucket?: BucketName | '';
  status?: ReceiptStatus | '';
}

export type SpendDimension =
  | 'model'
  | 'channel'
  | 'brand'
  | 'key'
  | 'project'
  | 'bucket'
  | 'day'
  | 'source';

export interface SpendRow {
  group: string;
  bucket: BucketName | '';
  currency: string;
  requests: number;
  errors: number;
  fallbacks: number;
  unpriced: number;
  input_tokens: number;
  output_tokens: number;
  cost: number;
  cost_formatted: string;
}

export interface SpendReport {
  from: number;
  to: number;
  by: SpendDimension;
  rows: SpendRow[];
  totals: SpendRow[];
}

/** `since` is "24h" | "7d" | "30d"; or `from`/`to` are YYYY-MM-DD. */
export type SpendRange = { since: string } | { from: string; to: string };

export interface KeySpend {
  today: Money;
  month: Money;
}

export interface GatewayKey {
  name: string;
  prefix: string;
  models: string[];
  buckets: BucketName[];
  project: string | null;
  daily_budget: Partial<Record<BucketName, string>>;
  monthly_budget: Partial<Record<BucketName, string>>;
  /** Unix milliseconds, as every time under /api. */
  created_at: number;
  /** Unix milliseconds; null while the key is active. */
  revoked_at: number | null;
  active: boolean;
  spend: Partial<Record<BucketName, KeySpend>>;
}

export interface CreatedKey extends GatewayKey {
  key: string;
}

export interface NewKey {
  name: string;
  models?: string[];
  buckets?: BucketName[];
  project?: string;
  daily_budget?: string | Partial<Record<BucketName, string>>;
  monthly_budget?: string | Partial<Record<BucketName, string>>;
}

export type ChannelType = 'openai' | 'anthropic' | 'gemini' | 'openai-compatible';
export const CHANNEL_TYPES: readonly ChannelType[] = [
  'openai',
  'anthropic',
  'gemini',
  'openai-compatible',
];
/** `unavailable`: the OS keyring cannot be read right now (see `detail`). */
export type SecretState = 'set' | 'missing' | 'rejected' | 'not_needed' | 'unavailable';

export interface Channel {
  id: string;
  type: ChannelType;
  brand: string;
  base_url: string;
  bucket: BucketName;
  /** `detail`: a short reason for the state (e.g. why the keyring could not be read). */
  secret: { source: 'keyring' | 'env' | 'none'; env: string | null; state: SecretState; detail?: string | null };
  models: string[];
  price_multiplier: number | null;
  routes: string[];
}

export interface NewChannel {
  id: string;
  type: ChannelType;
  brand?: string;
  base_url?: string;
  bucket: BucketName;
  secret?: string;
  models?: string[];
  price_multiplier?: number;
}

export interface ChannelPatch {
  brand?: string;
  base_url?: string;
  bucket?: BucketName;
  secret?: string;
  models?: string[];
  price_multiplier?: number | null;
}

export interface ChannelTest {
  ok: boolean;
  status: number | null;
  latency_ms: number;
  models: number | null;
  sample: string[];
  error: string | null;
}

export interface Preset {
  id: string;
  label: string;
  type: ChannelType;
  brand: string;
  base_url: string | null;
  bucket: BucketName;
  secret: 'keyring' | 'none';
  models: string[];
  local: boolean;
}

export interface LocalServer {
  preset: string;
  base_url: string;
  reachable: boolean;
  models: string[];
}

export interface TargetHealth {
  route: string;
  channel: string;
  model: string;
  position: number;
  requests: number;
  ok: number;
  success_rate: number | null;
  p50_ms: number | null;
  p95_ms: number | null;
  circuit: { state: 'closed' | 'open' | 'half_open'; retry_in_ms: number | null };
  last_error: { at: number; summary: string } | null;
  secret: SecretState;
  mismatches: number;
}

export interface TargetPrice {
  source: string;
  currency: string;
  input: string;
  cached_input: string;
  cache_write: string;
  output: string;
  reasoning: string;
}

export interface Target {
  position: number;
  role: 'primary' | 'backup';
  channel: string;
  model: string;
  bucket: BucketName;
  brand: string;
  type: ChannelType;
  price: TargetPrice | null;
  health: TargetHealth | null;
}

export interface Route {
  model: string;
  cross_bucket: boolean;
  /** Served by a channel's `models` globs rather than a written route (read-only here). */
  passthrough?: boolean;
  targets: Target[];
}

export interface RouteTreeModel {
  route: string;
  upstream_model: string;
  position: number;
  of: number;
}
export interface RouteTreeChannel {
  id: string;
  bucket: BucketName;
  /** The channel's `models` globs: upstream models exposed under their own names. */
  globs?: string[];
  models: RouteTreeModel[];
}
export interface RouteTreeBrand {
  brand: string;
  channels: RouteTreeChannel[];
}
export interface RouteTreeType {
  type: ChannelType;
  brands: RouteTreeBrand[];
}

export interface RoutesReport {
  routes: Route[];
  tree: RouteTreeType[];
}

export interface RouteTargetInput {
  channel: string;
  model: string;
}

export interface DryRun {
  model: string;
  route: string | null;
  passthrough: boolean;
  target: Target | null;
  skipped: { channel: string; model: string; reason: string }[];
  reason: string;
}

export interface HealthReport {
  window_ms: number;
  targets: TargetHealth[];
}

/** An error from the API, carrying the server's own message. */
export class ApiError extends Error {
  readonly status: number;
  readonly code: string | null;
  /** From /v1: the bucket named in `x-switchyard-bucket`. On a 402 it is the
   * empty bucket that refused the request, the one to top up. */
  readonly bucket: BucketName | null;
  constructor(status: number, message: string, code: string | null, bucket: BucketName | null = null) {
    super(message);
    this.name = 'ApiError';
    this.status = status;
    this.code = code;
    this.bucket = bucket;
  }
}

function bucketHeader(res: Response): BucketName | null {
  const b = res.headers.get('x-switchyard-bucket');
  return b === 'credit' || b === 'wallet' ? b : null;
}

/** Called when the admin token is refused, so the app can ask for a new one. */
let onUnauthorized: (() => void) | null = null;
export function setUnauthorizedHandler(fn: (() => void) | null): void {
  onUnauthorized = fn;
}

async function readError(res: Response): Promise<ApiError> {
  let message = `${res.status} ${res.statusText}`.trim();
  let code: string | null = null;
  try {
    const body: unknown = await res.json();
    if (body && typeof body === 'object' && 'error' in body) {
      const err = (body as { error: unknown }).error;
      if (err && typeof err === 'object') {
        const e = err as { message?: unknown; code?: unknown };
        if (typeof e.message === 'string' && e.message) message = e.message;
        if (typeof e.code === 'string') code = e.code;
      } else if (typeof err === 'string') {
        message = err;
      }
    }
  } catch {
    // Not JSON: keep the HTTP status line.
  }
  return new ApiError(res.status, message, code, bucketHeader(res));
}

type Query = Record<string, string | number | undefined | null>;

function withQuery(path: string, query?: Query): string {
  if (!query) return path;
  const params = new URLSearchParams();
  for (const [k, v] of Object.entries(query)) {
    if (v !== undefined && v !== null && v !== '') params.set(k, String(v));
  }
  const s = params.toString();
  return s ? `${path}?${s}` : path;
}

async function request<T>(
  method: string,
  path: string,
  opts: { query?: Query; body?: unknown; signal?: AbortSignal } = {},
): Promise<T> {
  const headers: Record<string, string> = { Accept: 'application/json' };
  const token = getToken();
  if (token) headers.Authorization = `Bearer ${token}`;
  if (opts.body !== undefined) headers['Content-Type'] = 'application/json';
  let res: Response;
  try {
    res = await fetch(withQuery(path, opts.query), {
      method,
      headers,
      body: opts.body === undefined ? undefined : JSON.stringify(opts.body),
      signal: opts.signal,
      credentials: 'same-origin',
    });
  } catch (e) {
    if (e instanceof DOMException && e.name === 'AbortError') throw e;
    throw new ApiError(0, 'Switchyard is not answering. Is `switchyard serve` still running?', null);
  }
  if (!res.ok) {
    const err = await readError(res);
    if (res.status === 401 && path.startsWith('/api/')) onUnauthorized?.();
    throw err;
  }
  if (res.status === 204) return undefined as T;
  return (await res.json()) as T;
}

const enc = encodeURIComponent;

export const api = {
  status: (signal?: AbortSignal) => request<Status>('GET', '/api/status', { signal }),
  buckets: () => request<{ buckets: Bucket[] }>('GET', '/api/buckets'),
  topup: (bucket: BucketName, amount: string, note?: string) =>
    request<TopupResult>('POST', `/api/buckets/${bucket}/topup`, {
      body: note ? { amount, note } : { amount },
    }),
  entries: (bucket: BucketName, limit = 50, before?: string) =>
    request<EntriesPage>('GET', `/api/buckets/${bucket}/entries`, { query: { limit, before } }),

  receipts: (filter: ReceiptFilter, limit: number, before?: string | null, signal?: AbortSignal) =>
    request<ReceiptsPage>('GET', '/api/receipts', {
      query: { ...filter, limit, before: before ?? undefined },
      signal,
    }),
  receipt: (id: string, signal?: AbortSignal) =>
    request<ReceiptDetail>('GET', `/api/receipts/${enc(id)}`, { signal }),

  spend: (range: SpendRange, by: SpendDimension, signal?: AbortSignal) =>
    request<SpendReport>('GET', '/api/spend', { query: { ...range, by }, signal }),

  keys: () => request<{ keys: GatewayKey[] }>('GET', '/api/keys'),
  createKey: (k: NewKey) => request<CreatedKey>('POST', '/api/keys', { body: k }),
  revokeKey: (name: string) =>
    request<{ name: string; revoked: boolean }>('DELETE', `/api/keys/${enc(name)}`),

  channels: () => request<{ channels: Channel[] }>('GET', '/api/channels'),
  createChannel: (c: NewChannel) => request<Channel>('POST', '/api/channels', { body: c }),
  updateChannel: (id: string, patch: ChannelPatch) =>
    request<Channel>('PATCH', `/api/channels/${enc(id)}`, { body: patch }),
  deleteChannel: (id: string) =>
    request<{ id: string; removed: boolean }>('DELETE', `/api/channels/${enc(id)}`),
  setSecret: (id: string, secret: string) =>
    request<{ id: string; state: SecretState }>('PUT', `/api/channels/${enc(id)}/secret`, {
      body: { secret },
    }),
  deleteSecret: (id: string) =>
    request<{ id: string; state: SecretState }>('DELETE', `/api/channels/${enc(id)}/secret`),
  testChannel: (id: string) => request<ChannelTest>('POST', `/api/channels/${enc(id)}/test`),
  presets: () => request<{ presets: Preset[] }>('GET', '/api/presets'),
  localServers: () => request<{ servers: LocalServer[] }>('GET', '/api/local-servers'),

  routes: () => request<RoutesReport>('GET', '/api/routes'),
  createRoute: (model: string, targets: RouteTargetInput[], cross_bucket: boolean) =>
    request<Route>('POST', '/api/routes', { body: { model, targets, cross_bucket } }),
  updateRoute: (model: string, targets: RouteTargetInput[], cross_bucket: boolean) =>
    request<Route>('PUT', `/api/routes/${enc(model)}`, { body: { targets, cross_bucket } }),
  deleteRoute: (model: string) =>
    request<{ model: string; removed: boolean }>('DELETE', `/api/routes/${enc(model)}`),
  dryRun: (model: string) => request<DryRun>('GET', '/api/dry-run', { query: { model } }),
  health: () => request<HealthReport>('GET', '/api/health'),

  pause: () => request<{ paused: boolean }>('POST', '/api/pause'),
  resume: () => request<{ paused: boolean }>('POST', '/api/resume'),
};

// ---- /v1: the gateway itself, called with a gateway key (never the admin token)

export interface ChatAnswer {
  model: string;
  content: string;
  requestId: string | null;
  route: string | null;
  channel: string | null;
  bucket: string | null;
}

export async function sendTestChat(gatewayKey: string, model: string, prompt: string): Promise<ChatAnswer> {
  let res: Response;
  try {
    res = await fetch('/v1/chat/completions', {
      method: 'POST',
      headers: { Authorization: `Bearer ${gatewayKey}`, 'Content-Type': 'application/json' },
      body: JSON.stringify({ model, messages: [{ role: 'user', content: prompt }] }),
    });
  } catch {
    throw new ApiError(0, 'Switchyard is not answering. Is `switchyard serve` still running?', null);
  }
  if (!res.ok) throw await readError(res);
  const body = (await res.json()) as {
    model?: unknown;
    choices?: { message?: { content?: unknown } }[];
  };
  const content = body.choices?.[0]?.message?.content;
  return {
    model: typeof body.model === 'string' ? body.model : model,
    content: typeof content === 'string' ? content : JSON.stringify(content ?? ''),
    requestId: res.headers.get('x-switchyard-request-id'),
    route: res.headers.get('x-switchyard-route'),
    channel: res.headers.get('x-switchyard-channel'),
    bucket: res.headers.get('x-switchyard-bucket'),
  };
}

/** The models a gateway key may call (GET /v1/models). */
export async function listModels(gatewayKey: string): Promise<string[]> {
  const res = await fetch('/v1/models', { headers: { Authorization: `Bearer ${gatewayKey}` } });
  if (!res.ok) throw await readError(res);
  const body = (await res.json()) as { data?: { id?: unknown }[] };
  return (body.data ?? []).map((m) => m.id).filter((id): id is string => typeof id === 'string');
}

export function errorMessage(e: unknown): string {
  if (e instanceof Error) return e.message;
  return String(e);
}
