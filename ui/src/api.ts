// The one client for Switchyard's management API (/api) and the gateway (/v1).
// Every call in the UI goes through here; the shapes mirror the API contract.
// Money is integer micro-units of a bucket's currency; it is never summed
// across buckets.

import { getToken } from './auth';
import { createSseParser, type SseEvent } from './lib/sse';

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
  | 'interrupted'
  | 'refused';
export const RECEIPT_STATUSES: readonly ReceiptStatus[] = [
  'ok',
  'error',
  'pending',
  'client_cancelled',
  'upstream_cut',
  'interrupted',
  'refused',
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
  /** What the request was for within its run: `answer`, `title`, … */
  step: string | null;
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

// ---- /api/chat: conversations, messages (a tree), streaming answers

export type ChatRole = 'user' | 'assistant';
export type MessageStatus = 'complete' | 'streaming' | 'incomplete' | 'error';
export type ReasoningEffort = 'low' | 'medium' | 'high';
export const REASONING_EFFORTS: readonly ReasoningEffort[] = ['low', 'medium', 'high'];

export interface ChatParams {
  temperature?: number;
  max_tokens?: number;
  reasoning_effort?: ReasoningEffort;
}

/** What one bucket paid in a conversation, in that bucket's currency. */
export interface BucketTotal {
  bucket: BucketName;
  currency: string;
  cost_micros: number;
  cost: string;
}

export interface ConversationSummary {
  id: string;
  title: string;
  pinned: boolean;
  folder: string | null;
  models: string[];
  created_at: number;
  updated_at: number;
  message_count: number;
  totals: BucketTotal[];
  /** Search results only: text around the hit, hits wrapped in \u0001 … \u0002. */
  snippet?: string;
}

export interface Conversation extends ConversationSummary {
  system: string;
  params: ChatParams;
  model: string | null;
  compare_models: string[];
  current_leaf: string | null;
  /** Every node of the tree, in creation order. */
  messages: ChatMessage[];
}

export interface Attachment {
  id: string;
  name: string;
  mime: string;
  size: number;
}

/** The receipt of one answer, as the chat shows it under the answer. */
export interface ReceiptFacts {
  request_id: string;
  status: ReceiptStatus;
  answered_model: string | null;
  route: string;
  channel: string | null;
  brand: string | null;
  bucket: BucketName | null;
  currency: string | null;
  cost_micros: number;
  cost: string;
  input_tokens: number;
  cached_input_tokens: number;
  cache_write_tokens: number;
  output_tokens: number;
  reasoning_tokens: number;
  usage_estimated: boolean;
  priced: boolean;
  ttft_ms: number | null;
  latency_ms: number | null;
  tokens_per_s: number | null;
  walk: string;
  fallback_count: number;
  retry_count: number;
}

export interface ChatMessage {
  id: string;
  parent_id: string | null;
  role: ChatRole;
  content: string;
  reasoning: string;
  model: string | null;
  status: MessageStatus;
  error: string | null;
  compare_group: string | null;
  attachments: Attachment[];
  created_at: number;
  receipt: ReceiptFacts | null;
}

export interface ConversationFilter {
  q?: string;
  model?: string;
  bucket?: BucketName | '';
  folder?: string;
}

export interface ConversationsPage {
  items: ConversationSummary[];
  next: string | null;
}

export interface NewConversation {
  title?: string;
  system?: string;
  params?: ChatParams;
  model?: string;
  folder?: string;
}

export interface ConversationPatch {
  title?: string;
  pinned?: boolean;
  /** null takes the conversation out of its folder. */
  folder?: string | null;
  system?: string;
  params?: ChatParams;
  model?: string;
  compare_models?: string[];
  current_leaf?: string;
}

export interface ChatModel {
  model: string;
  bucket: BucketName;
  currency: string;
  priced: boolean;
  /** Decimal amounts in `currency` per 1M tokens. */
  input_per_m: string | null;
  output_per_m: string | null;
  reasoning: boolean;
  route_targets: number;
}

export interface EstimateRequest {
  conversation_id?: string;
  parent_id?: string | null;
  content: string;
  models: string[];
  max_tokens?: number;
}

export interface Estimate {
  model: string;
  bucket: BucketName;
  currency: string;
  priced: boolean;
  prompt_tokens: number;
  input_cost_micros: number;
  output_tokens_min: number;
  output_tokens_max: number;
  cost_min_micros: number;
  cost_max_micros: number;
  cost_min: string;
  cost_max: string;
}

export interface SendMessage {
  content: string;
  /** Default: the conversation's current leaf. */
  parent_id?: string | null;
  /** 1..6; two or more is a compare. */
  models: string[];
  attachments?: string[];
}

export interface AttemptInfo {
  message_id: string;
  channel: string;
  upstream_model: string;
  target_index: number;
  attempt: number;
}

/** One event of a chat stream (send, regenerate, edit). */
export type ChatEvent =
  | { event: 'user'; data: { message: ChatMessage } }
  | { event: 'start'; data: { message: ChatMessage } }
  | { event: 'attempt'; data: AttemptInfo }
  | { event: 'delta'; data: { message_id: string; text: string } }
  | { event: 'reasoning'; data: { message_id: string; text: string } }
  | {
      event: 'done';
      data: { message: ChatMessage; error_code?: string; error_bucket?: BucketName };
    }
  | { event: 'conversation'; data: { conversation: ConversationSummary } }
  | { event: 'end'; data: Record<string, never> };

const CHAT_EVENTS = new Set(['user', 'start', 'attempt', 'delta', 'reasoning', 'done', 'conversation', 'end']);

/** Reads an SSE response body to its end, handing each known event to `onEvent`. */
async function readChatStream(res: Response, onEvent: (e: ChatEvent) => void): Promise<void> {
  if (!res.body) throw new ApiError(res.status, 'The answer stream had no body.', null);
  const reader = res.body.getReader();
  const decoder = new TextDecoder();
  const parser = createSseParser();
  const emit = (evs: SseEvent[]) => {
    for (const ev of evs) {
      if (!CHAT_EVENTS.has(ev.event)) continue;
      let data: unknown;
      try {
        data = JSON.parse(ev.data);
      } catch {
        continue; // a malformed event is skipped; the final `done` carries the whole message anyway
      }
      onEvent({ event: ev.event, data } as ChatEvent);
    }
  };
  for (;;) {
    let chunk: ReadableStreamReadResult<Uint8Array>;
    try {
      chunk = await reader.read();
    } catch (e) {
      if (e instanceof DOMException && e.name === 'AbortError') throw e;
      throw new ApiError(0, 'The connection to Switchyard dropped during the answer; what had arrived is kept.', null);
    }
    if (chunk.done) break;
    emit(parser.push(decoder.decode(chunk.value, { stream: true })));
  }
  emit(parser.push(decoder.decode()));
  emit(parser.end());
}

/** POSTs `body` and reads the SSE answer. A refusal before the stream starts is an ApiError. */
async function chatStream(
  path: string,
  body: unknown,
  onEvent: (e: ChatEvent) => void,
  signal?: AbortSignal,
): Promise<void> {
  const headers: Record<string, string> = { Accept: 'text/event-stream', 'Content-Type': 'application/json' };
  const token = getToken();
  if (token) headers.Authorization = `Bearer ${token}`;
  let res: Response;
  try {
    res = await fetch(path, { method: 'POST', headers, body: JSON.stringify(body), signal, credentials: 'same-origin' });
  } catch (e) {
    if (e instanceof DOMException && e.name === 'AbortError') throw e;
    throw new ApiError(0, 'Switchyard is not answering. Is `switchyard serve` still running?', null);
  }
  if (!res.ok) {
    const err = await readError(res);
    if (res.status === 401) onUnauthorized?.();
    throw err;
  }
  await readChatStream(res, onEvent);
}

/** A call whose body (or answer) is not JSON: a file up, a download back. */
async function rawFetch(method: string, path: string, headers: Record<string, string>, body?: BodyInit): Promise<Response> {
  const token = getToken();
  const h: Record<string, string> = { ...headers };
  if (token) h.Authorization = `Bearer ${token}`;
  let res: Response;
  try {
    res = await fetch(path, { method, headers: h, body, credentials: 'same-origin' });
  } catch {
    throw new ApiError(0, 'Switchyard is not answering. Is `switchyard serve` still running?', null);
  }
  if (!res.ok) {
    const err = await readError(res);
    if (res.status === 401) onUnauthorized?.();
    throw err;
  }
  return res;
}

async function uploadAttachment(file: File): Promise<Attachment> {
  const res = await rawFetch(
    'POST',
    '/api/chat/attachments',
    {
      Accept: 'application/json',
      'Content-Type': file.type || 'application/octet-stream',
      // Header values must be Latin-1: a non-ASCII file name travels percent-encoded.
      'X-Filename': /^[\x20-\x7e]*$/.test(file.name) ? file.name : encodeURIComponent(file.name),
    },
    file,
  );
  return (await res.json()) as Attachment;
}

/** The export file: its text and the name the server suggests. */
async function exportConversation(id: string, format: 'markdown' | 'json'): Promise<{ filename: string; text: string; type: string }> {
  const res = await rawFetch('GET', withQuery(`/api/chat/conversations/${enc(id)}/export`, { format }), {});
  const cd = res.headers.get('content-disposition') ?? '';
  const m = /filename\*?=(?:UTF-8'')?"?([^";]+)"?/i.exec(cd);
  let filename = m?.[1] ? m[1] : `${id}.${format === 'markdown' ? 'md' : 'json'}`;
  try {
    filename = decodeURIComponent(filename);
  } catch {
    // keep it as sent
  }
  return { filename, text: await res.text(), type: res.headers.get('content-type') ?? 'text/plain' };
}

async function importChatGpt(file: File): Promise<{ imported: number; conversations: string[] }> {
  const res = await rawFetch('POST', '/api/chat/import', { Accept: 'application/json', 'Content-Type': 'application/json' }, file);
  return (await res.json()) as { imported: number; conversations: string[] };
}

export const chatApi = {
  conversations: (filter: ConversationFilter, limit = 50, cursor?: string | null, signal?: AbortSignal) =>
    request<ConversationsPage>('GET', '/api/chat/conversations', {
      query: { ...filter, limit, cursor: cursor ?? undefined },
      signal,
    }),
  create: (c: NewConversation) => request<Conversation>('POST', '/api/chat/conversations', { body: c }),
  conversation: (id: string, signal?: AbortSignal) =>
    request<Conversation>('GET', `/api/chat/conversations/${enc(id)}`, { signal }),
  update: (id: string, patch: ConversationPatch) =>
    request<Conversation>('PATCH', `/api/chat/conversations/${enc(id)}`, { body: patch }),
  remove: (id: string) => request<void>('DELETE', `/api/chat/conversations/${enc(id)}`),
  exportFile: exportConversation,
  importChatGpt,
  folders: () => request<{ folders: string[] }>('GET', '/api/chat/folders'),
  models: (signal?: AbortSignal) => request<{ models: ChatModel[] }>('GET', '/api/chat/models', { signal }),
  estimate: (e: EstimateRequest, signal?: AbortSignal) =>
    request<{ estimates: Estimate[] }>('POST', '/api/chat/estimate', { body: e, signal }),
  upload: uploadAttachment,

  send: (conversationId: string, m: SendMessage, onEvent: (e: ChatEvent) => void, signal?: AbortSignal) =>
    chatStream(`/api/chat/conversations/${enc(conversationId)}/messages`, m, onEvent, signal),
  regenerate: (messageId: string, model: string | undefined, onEvent: (e: ChatEvent) => void, signal?: AbortSignal) =>
    chatStream(`/api/chat/messages/${enc(messageId)}/regenerate`, model ? { model } : {}, onEvent, signal),
  edit: (messageId: string, content: string, models: string[] | undefined, onEvent: (e: ChatEvent) => void, signal?: AbortSignal) =>
    chatStream(`/api/chat/messages/${enc(messageId)}/edit`, models ? { content, models } : { content }, onEvent, signal),
  stop: (messageId: string) => request<void>('POST', `/api/chat/messages/${enc(messageId)}/stop`),
  settings: () => request<ChatAppSettings>('GET', '/api/chat/settings'),
  saveSettings: (s: ChatAppSettings) => request<ChatAppSettings>('PUT', '/api/chat/settings', { body: s }),
};

/** Chat settings of the whole app (not of one conversation). */
export interface ChatAppSettings {
  /** The model that titles new conversations; null: the first words of the prompt. */
  title_model: string | null;
}

export function errorMessage(e: unknown): string {
  if (e instanceof Error) return e.message;
  return String(e);
}
