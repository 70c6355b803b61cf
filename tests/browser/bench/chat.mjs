// Chat view benchmark: does a long conversation open fast, scroll smoothly,
// and stay smooth while a fast model streams into it?
//
// 1. Seeding: one POST /api/chat/import of a ChatGPT `conversations.json`
//    made here (seeded, the same every run): a 2,000-message and a
//    500-message conversation (short prompts; Markdown answers of 1–8
//    blocks: paragraphs, lists, headings, code blocks in ts/rust/python/sql/
//    bash) and a 4-message one to switch from.
// 2. `switchyard serve` (the debug binary: it serves the current ui/dist from
//    disk) with one route to a mock upstream written here, which streams an
//    OpenAI chat-completions answer at STREAM_RATE (300) tokens/s: one token
//    (one word with the whitespace before it) per SSE chunk; every ~2 ms it
//    writes the tokens due by the clock (1–2 chunks a write). Headless
//    Chromium at 1280×800.
// 3. Measured after waiting for a quiet machine (1-min load < QUIET_LOAD),
//    each side by side with a reference in the same run (see README.md):
//    - open: a click on the 2,000-message conversation in the list → the
//      paint after its newest message is rendered (Markdown, at the bottom,
//      every row in view rendered), OPENS times, alternating with the
//      reference: the same request for the conversation, its JSON parsed,
//      and the same rows the view shows set as static HTML. Also a page load
//      of /chat/<id> (reported, not a target).
//    - scroll: real wheel input (WHEEL_PX a tick) from the newest message up
//      to the first, then the scroll position dragged back down over the
//      whole list in 4.5 s (set every frame); frame times are gaps between
//      requestAnimationFrame timestamps. Reference: the same scroll over a
//      static copy of all 2,000 rows as the app renders them (no script, no
//      virtualisation).
//    - stream: a message sent through the composer in the 500-message
//      conversation; the answer (STREAM_TOKENS tokens) streams at 300/s;
//      frame times from the first word on screen to the last, and the words
//      on screen every 100 ms. Reference: the same tokens at the same rate
//      appended as text to a static snapshot of the same view, following
//      the bottom once per frame.
// 4. Targets (exit 1 when one is missed, 2 when the run itself failed):
//    open by click, median < 500 ms; ≥ 50 fps over the whole scroll in every
//    round; frame p95 < 50 ms while streaming in every round.
//    PROFILE=1 adds V8 CPU profiles of the page load, scroll and stream.
//
// Environment: OPENS (5), ROUNDS (2), STREAM_TOKENS (2400), STREAM_RATE
// (300), WHEEL_PX (600), SWITCHYARD_BIN, CHROMIUM, QUIET_LOAD (1.0),
// QUIET_WAIT (seconds, 60), PROFILE=1, UI_DIR (another UI build to serve
// instead of ui/dist, e.g. an unminified one for profiles), NO_FAIL=1
// (report only), SWITCHYARD_ARTIFACTS (where chat.txt goes).

import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { chromium } from 'playwright-core';
import { REPO_ROOT, redact, startGateway } from '../lib/gateway.mjs';

const OPENS = Number(process.env.OPENS || 5);
const ROUNDS = Number(process.env.ROUNDS || 2);
const STREAM_TOKENS = Number(process.env.STREAM_TOKENS || 2400);
const STREAM_RATE = Number(process.env.STREAM_RATE || 300);
const QUIET_LOAD = Number(process.env.QUIET_LOAD || 1.0);
const QUIET_WAIT = Number(process.env.QUIET_WAIT ?? 60);
const NO_FAIL = process.env.NO_FAIL === '1';
const PROFILE = process.env.PROFILE === '1';
const UI_DIR = process.env.UI_DIR || null;
const ARTIFACTS = process.env.SWITCHYARD_ARTIFACTS || path.join(REPO_ROOT, 'tests', 'artifacts');
const DEADLINE_MS = 285_000; // the whole run, including the quiet wait
const MEASURE_MS = 200_000; // the measured part with the defaults, on a busy machine
const CACHE_DIR = path.join(os.homedir(), '.cache', 'switchyard-bench-chat');

const TARGETS = { openMs: 500, fps: 50, streamP95: 50 };
const BIG = 2000;
const MID = 500;
const MODEL = 'bench-chat';
const UPSTREAM_MODEL = 'bench-upstream';
const WHEEL_PX = Number(process.env.WHEEL_PX || 600);
const WHEEL_MAX_MS = 30_000;
const DRAG_MS = 4500;

const started = Date.now();
const cleanups = [];

const log = (...a) => console.error('#', ...a);
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const loadavg = () => readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).map(Number);
const fmt = (n, d = 1) => (Number.isFinite(n) ? n.toFixed(d) : '—');
const median = (a) => {
  const s = [...a].sort((x, y) => x - y);
  return s.length ? (s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2) : NaN;
};

function git(...args) {
  const r = spawnSync('git', args, { cwd: REPO_ROOT, encoding: 'utf8' });
  return r.status === 0 ? r.stdout.trim() : '?';
}

// ------------------------------------------------------------ seeded content

/** mulberry32: the same conversations every run. */
function rng(seed) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const SENTENCES = [
  'The gateway keeps one connection pool per channel, so a slow upstream never holds up the others.',
  'A route lists its targets in order; the first one that answers is the one you pay for.',
  'When the primary returns a 429 with Retry-After, the attempt loop waits at most that long before it tries the backup.',
  'Receipts are written in one transaction per request, after the response has been sent.',
  'Money is stored as integer micro-units, which keeps sums exact however many receipts there are.',
  'If the upstream cuts the stream, the partial answer is kept and marked incomplete.',
  'The cheapest option is usually to keep the long context on a cached prompt and send only the delta.',
  'You can check the effect by comparing the p95 latency before and after the change.',
  'Start with the simplest version that works, measure it, and only then decide what to optimise.',
  'Most of the time goes into parsing the response, not into the network round trip.',
  'A virtualised list renders only the rows in view, so its cost does not grow with the length of the conversation.',
  'Batching the writes into one transaction per second turned thousands of fsyncs into a handful.',
  'The error message should say what to do next, not only what went wrong.',
  'In practice the difference is small for short prompts and large for long ones.',
  'Keep the secret in the OS keyring; the config file only names where it lives.',
  'This is a trade-off between latency and cost, and the right answer depends on how often you call it.',
  'The test fails when the budget is exceeded, which is exactly the behaviour we want to pin down.',
  'With streaming on, the first token usually arrives in under a second even when the whole answer takes ten.',
  'Each channel belongs to one bucket, and a route may only cross buckets when you allow it.',
  'A circuit breaker opens after five consecutive failures and tries again after thirty seconds.',
  'Note that the tokenizer counts whitespace differently for code than for prose.',
  'For a desktop app, memory matters more than throughput: it sits in the tray all day.',
  'The migration adds the column with a default, so existing rows need no rewrite.',
  'If you only need the totals, the hourly rollup answers without touching the receipts table.',
];

const USER_PROMPTS = [
  'Why does my request fall back to the backup channel even though the primary is up?',
  'Can you explain how the ledger computes the monthly spend per key?',
  'Write a function that retries a fetch with exponential backoff and a maximum delay.',
  'What is the difference between the Credit and the Wallet bucket?',
  'How do I point Cursor at the local gateway?',
  'Summarise the trade-offs of caching prompts for a long conversation.',
  'Here is the error I get when I run the migration: `no such column: step`. What happened?',
  'Rewrite this in Rust, please, and keep the error handling explicit.',
  'Is it safe to store the admin token in sessionStorage?',
  'Give me a SQL query that sums the cost per model for the last seven days.',
  'Thanks. Now make it handle the case where the upstream cuts the stream halfway.',
  'How would you test that the circuit breaker opens after five failures?',
  'Shorter, please.',
  'What does p95 mean here, and why not the average?',
  'Can you add a unit test for the empty input?',
];

const CODE = {
  ts: [
    'export async function withRetry<T>(fn: () => Promise<T>, attempts = 4): Promise<T> {',
    '  let delay = 250;',
    '  for (let i = 1; ; i++) {',
    '    try {',
    '      return await fn();',
    '    } catch (e) {',
    '      if (i >= attempts) throw e;',
    '      await new Promise((r) => setTimeout(r, delay));',
    '      delay = Math.min(delay * 2, 8_000);',
    '    }',
    '  }',
    '}',
    '',
    'const total = receipts.reduce((sum, r) => sum + r.costMicro, 0);',
    'console.log(`spent ${formatMoney(total, "USD")} over ${receipts.length} requests`);',
  ],
  rust: [
    'pub async fn call(&self, req: Call) -> Result<Answer, GatewayError> {',
    '    let route = self.resolve(&req.model).ok_or(GatewayError::UnknownModel)?;',
    '    for (i, target) in route.targets.iter().enumerate() {',
    '        match target.channel.send(&req).await {',
    '            Ok(answer) => return Ok(answer),',
    '            Err(e) if e.is_retryable() => {',
    '                tracing::warn!(target = i, error = %e, "falling back");',
    '                continue;',
    '            }',
    '            Err(e) => return Err(e),',
    '        }',
    '    }',
    '    Err(GatewayError::AllTargetsFailed)',
    '}',
  ],
  python: [
    'from openai import OpenAI',
    '',
    'client = OpenAI(base_url="http://127.0.0.1:4141/v1", api_key="sy-...")',
    'stream = client.chat.completions.create(',
    '    model="gpt-4o",',
    '    messages=[{"role": "user", "content": "Hello"}],',
    '    stream=True,',
    ')',
    'for chunk in stream:',
    '    delta = chunk.choices[0].delta.content or ""',
    '    print(delta, end="", flush=True)',
  ],
  sql: [
    'SELECT model, SUM(cost_micro) / 1e6 AS cost, COUNT(*) AS requests',
    'FROM receipts',
    "WHERE created_at >= strftime('%s', 'now', '-7 days') * 1000",
    'GROUP BY model',
    'ORDER BY cost DESC;',
  ],
  bash: [
    'switchyard serve --listen 127.0.0.1:4141 &',
    'export OPENAI_BASE_URL=http://127.0.0.1:4141/v1',
    'export OPENAI_API_KEY=$(switchyard key create laptop --models "gpt-*")',
    'curl -s $OPENAI_BASE_URL/models | jq ".data[].id"',
  ],
};
const LANGS = Object.keys(CODE);
const HEADINGS = ['Why this happens', 'What to change', 'Steps', 'Example', 'Trade-offs', 'Summary', 'How to test it'];
const MODELS = ['gpt-4o', 'gpt-4o-mini', 'o3', 'gpt-4.1'];

function pick(r, a) {
  return a[Math.floor(r() * a.length)];
}

function paragraph(r, n) {
  const out = [];
  for (let i = 0; i < n; i++) out.push(pick(r, SENTENCES));
  return out.join(' ');
}

function codeBlock(r) {
  const lang = pick(r, LANGS);
  const lines = CODE[lang];
  const from = Math.floor(r() * Math.max(1, lines.length - 4));
  const len = 4 + Math.floor(r() * (lines.length - from - 3));
  return `\`\`\`${lang}\n${lines.slice(from, from + len).join('\n')}\n\`\`\``;
}

/** One answer: 1–7 blocks of prose, lists, a heading, code in about a third of them. */
function answer(r) {
  const size = r();
  const blocks = [];
  const n = size < 0.25 ? 1 : size < 0.6 ? 2 + Math.floor(r() * 2) : 3 + Math.floor(r() * 5);
  for (let i = 0; i < n; i++) {
    const k = r();
    if (i === 0 || k < 0.45) blocks.push(paragraph(r, 1 + Math.floor(r() * 4)));
    else if (k < 0.62) blocks.push(Array.from({ length: 2 + Math.floor(r() * 4) }, () => `- ${pick(r, SENTENCES)}`).join('\n'));
    else if (k < 0.72) blocks.push(`### ${pick(r, HEADINGS)}`);
    else if (k < 0.8) blocks.push(`1. ${pick(r, SENTENCES)}\n2. ${pick(r, SENTENCES)}\n3. ${pick(r, SENTENCES)}`);
    else blocks.push(codeBlock(r));
  }
  if (n > 2 && r() < 0.35 && !blocks.some((b) => b.startsWith('```'))) blocks.splice(1, 0, codeBlock(r));
  return blocks.join('\n\n');
}

function prompt(r) {
  const p = pick(r, USER_PROMPTS);
  return r() < 0.2 ? `${p}\n\n${paragraph(r, 1 + Math.floor(r() * 2))}` : p;
}

/** A linear ChatGPT conversation (`mapping` tree) of `n` messages, user first. */
function chatgptConversation(title, n, seed, t0) {
  const r = rng(seed);
  const mapping = { root: { id: 'root', parent: null, children: [], message: null } };
  let parent = 'root';
  for (let i = 0; i < n; i++) {
    const id = `n${i}`;
    const user = i % 2 === 0;
    mapping[id] = {
      id,
      parent,
      children: [],
      message: {
        id,
        author: { role: user ? 'user' : 'assistant' },
        content: { content_type: 'text', parts: [user ? prompt(r) : answer(r)] },
        create_time: t0 + i * 30,
        metadata: user ? {} : { model_slug: pick(r, MODELS) },
      },
    };
    mapping[parent].children.push(id);
    parent = id;
  }
  return { title, create_time: t0, update_time: t0 + n * 30, mapping, current_node: parent };
}

/** The streamed answer: tokens of one word each, with the whitespace before it. */
function streamTokens(count) {
  const r = rng(7);
  const answers = [];
  let words = 0;
  while (words < count) {
    answers.push(answer(r));
    words += answers.at(-1).split(/\s+/).length;
  }
  return answers.join('\n\n').split(/(?<=\S)(?=\s)/).slice(0, count);
}

// ---------------------------------------------------------------- mock model

/** An OpenAI-compatible upstream whose chat completions stream at `rate` tokens/s. */
async function startStreamingMock({ tokens, rate }) {
  const streams = [];
  const server = http.createServer((req, res) => {
    const chunks = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', () => {
      const url = (req.url ?? '').split('?')[0];
      if (req.method === 'GET' && url === '/v1/models') {
        res.writeHead(200, { 'Content-Type': 'application/json' });
        res.end(JSON.stringify({ object: 'list', data: [{ id: UPSTREAM_MODEL, object: 'model', owned_by: 'bench' }] }));
        return;
      }
      if (req.method !== 'POST' || url !== '/v1/chat/completions') {
        res.writeHead(404, { 'Content-Type': 'application/json' });
        res.end(JSON.stringify({ error: { message: 'not found', type: 'invalid_request_error' } }));
        return;
      }
      const raw = Buffer.concat(chunks);
      let body = {};
      try {
        body = JSON.parse(raw.toString('utf8'));
      } catch {
        // answered anyway
      }
      const id = `chatcmpl-bench-${streams.length + 1}`;
      const created = Math.floor(Date.now() / 1000);
      const chunk = (delta, extra = {}) =>
        `data: ${JSON.stringify({ id, object: 'chat.completion.chunk', created, model: body.model ?? UPSTREAM_MODEL, choices: [{ index: 0, delta, finish_reason: null }], ...extra })}\n\n`;
      const record = { startedAt: Date.now(), firstTokenAt: 0, lastTokenAt: 0, sent: 0, writes: 0, promptBytes: raw.length, aborted: false };
      streams.push(record);
      if (!body.stream) {
        const text = tokens.join('');
        res.writeHead(200, { 'Content-Type': 'application/json' });
        res.end(JSON.stringify({ id, object: 'chat.completion', created, model: body.model, choices: [{ index: 0, message: { role: 'assistant', content: text }, finish_reason: 'stop' }], usage: { prompt_tokens: Math.ceil(raw.length / 4), completion_tokens: tokens.length, total_tokens: Math.ceil(raw.length / 4) + tokens.length } }));
        return;
      }
      res.writeHead(200, { 'Content-Type': 'text/event-stream', 'Cache-Control': 'no-cache', Connection: 'keep-alive' });
      res.write(chunk({ role: 'assistant', content: '' }));
      res.on('close', () => {
        if (record.sent < tokens.length) record.aborted = true;
      });
      const t0 = performance.now();
      record.firstTokenAt = Date.now();
      const tick = () => {
        if (record.aborted) return;
        const due = Math.min(tokens.length, 1 + Math.floor(((performance.now() - t0) / 1000) * rate));
        if (due > record.sent) {
          let out = '';
          for (; record.sent < due; record.sent++) out += chunk({ content: tokens[record.sent] });
          res.write(out);
          record.writes++;
          record.lastTokenAt = Date.now();
        }
        if (record.sent < tokens.length) {
          setTimeout(tick, 2);
          return;
        }
        const promptTokens = Math.ceil(raw.length / 4);
        res.write(
          `data: ${JSON.stringify({ id, object: 'chat.completion.chunk', created, model: body.model ?? UPSTREAM_MODEL, choices: [{ index: 0, delta: {}, finish_reason: 'stop' }], usage: { prompt_tokens: promptTokens, completion_tokens: tokens.length, total_tokens: promptTokens + tokens.length } })}\n\n`,
        );
        res.end('data: [DONE]\n\n');
      };
      tick();
    });
  });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address();
  return {
    baseUrl: `http://127.0.0.1:${port}/v1`,
    streams,
    close: () => new Promise((resolve) => server.close(() => resolve())),
  };
}

async function waitQuiet() {
  // Never so long that the measurements (~150 s) would not fit in the run's deadline.
  const wait = Math.max(0, Math.min(QUIET_WAIT * 1000, DEADLINE_MS - MEASURE_MS - (Date.now() - started)));
  const end = Date.now() + wait;
  let [l1] = loadavg();
  let announced = false;
  while (l1 >= QUIET_LOAD && Date.now() < end) {
    if (!announced) log(`waiting up to ${fmt(wait / 1000, 0)} s for the 1-min load (${l1}) to drop below ${QUIET_LOAD}`);
    announced = true;
    await sleep(2_000);
    [l1] = loadavg();
  }
  return { load: loadavg(), quiet: l1 < QUIET_LOAD, waited: wait - Math.max(0, end - Date.now()) };
}

// ---------------------------------------------------------------- in the page

/** Installed before every page (the app and the reference): frame recorder, long-animation-frame log, open detector. */
function pageInit({ model }) {
  try {
    localStorage.setItem('switchyard.onboarding.dismissed', '1');
    localStorage.setItem('switchyard.chat.model', JSON.stringify(model));
    localStorage.setItem('switchyard.chat.compare', 'false');
  } catch {
    // no storage
  }
  const rec = { on: false, frames: [], loaf: [], segments: [] };
  window.__bench = rec;
  const tick = (t) => {
    if (rec.on) rec.frames.push(t);
    requestAnimationFrame(tick);
  };
  requestAnimationFrame(tick);
  try {
    new PerformanceObserver((list) => {
      if (!rec.on) return;
      for (const e of list.getEntries()) {
        if (e.duration < 50) continue;
        rec.loaf.push({
          start: e.startTime,
          duration: e.duration,
          render: e.renderStart ? e.startTime + e.duration - e.renderStart : 0,
          scripts: (e.scripts ?? []).map((s) => ({ invoker: s.invoker, duration: s.duration, fn: s.sourceFunctionName, src: `${(s.sourceURL || '').split('/').pop()}:${s.sourceCharPosition}` })),
        });
      }
    }).observe({ type: 'long-animation-frame', buffered: false });
  } catch {
    // older Chromium: frame gaps only
  }

  /** The list is open at its newest message: the last row is rendered (its
   * Markdown, not the plain-text stand-in), the list is scrolled to the
   * bottom, and every row in view has its content. */
  const opened = (wantCount) => {
    const list = document.querySelector('[data-testid="message-list"]');
    if (!list) return false;
    const count = Number(list.getAttribute('data-count'));
    if (!count || (wantCount && count !== wantCount)) return false;
    const last = list.querySelector(`[data-index="${count - 1}"]`);
    if (!last || !last.querySelector('[data-testid="message"]')) return false;
    const lb = list.getBoundingClientRect();
    if (list.scrollHeight - list.scrollTop - list.clientHeight > 2) return false;
    const r = last.getBoundingClientRect();
    if (r.bottom > lb.bottom + 1 || r.height === 0) return false;
    for (const row of list.querySelectorAll('[data-index]')) {
      const b = row.getBoundingClientRect();
      if (b.bottom < lb.top || b.top > lb.bottom) continue;
      const m = row.querySelector('[data-testid="message"]');
      if (!m) return false;
      if (m.dataset.role === 'assistant' && (!m.querySelector('.md') || m.querySelector('.plain-text'))) return false;
    }
    return true;
  };
  /** Resolves with the time (since `since`) of the paint after the conversation is open. */
  const state = () => {
    const list = document.querySelector('[data-testid="message-list"]');
    if (!list) return 'no message list';
    const count = Number(list.getAttribute('data-count'));
    const rows = [...list.querySelectorAll('[data-index]')].map((r) => r.dataset.index);
    return `data-count ${count}, rows ${rows.join(',')}, scrollTop ${list.scrollTop}, scrollHeight ${list.scrollHeight}, clientHeight ${list.clientHeight}, plain-text ${list.querySelectorAll('.plain-text').length}`;
  };
  window.__opened = (since, wantCount = 0, timeoutMs = 20_000) =>
    new Promise((resolve, reject) => {
      const check = () => {
        if (performance.now() - since > timeoutMs && since > 0) return reject(new Error(`the conversation did not open within ${timeoutMs} ms: ${state()}`));
        if (!opened(wantCount)) return requestAnimationFrame(check);
        // This frame paints the open list; the message posted now runs after that paint.
        const ch = new MessageChannel();
        ch.port1.onmessage = () => resolve(performance.now() - since);
        ch.port2.postMessage(0);
      };
      requestAnimationFrame(check);
    });
  if (location.pathname.startsWith('/chat/')) window.__openedAtLoad = window.__opened(0);
}

function pageRecord(on) {
  const rec = window.__bench;
  if (on) {
    rec.frames = [];
    rec.loaf = [];
    rec.segments = [];
    rec.on = true;
    return null;
  }
  rec.on = false;
  return { frames: rec.frames.slice(), loaf: rec.loaf.slice(), segments: rec.segments.slice() };
}

function pageMark(name) {
  window.__bench.segments.push([name, performance.now(), document.querySelector('[data-testid="message-list"]').scrollTop]);
}

/** Moves the scroll position linearly from `from` to `to` (fractions of the range) over `ms`, one step per frame. */
function pageDrag({ from, to, ms }) {
  const sc = document.querySelector('[data-testid="message-list"]');
  return new Promise((resolve) => {
    const t0 = performance.now();
    const step = (t) => {
      const k = Math.min(1, Math.max(0, (t - t0) / ms));
      // The range grows as rows are measured: a fraction of the range as it is now.
      sc.scrollTop = Math.round((sc.scrollHeight - sc.clientHeight) * (from + (to - from) * k));
      if (k < 1) requestAnimationFrame(step);
      else resolve(sc.scrollTop);
    };
    requestAnimationFrame(step);
  });
}

function pageJump({ to, frames }) {
  const sc = document.querySelector('[data-testid="message-list"]');
  sc.scrollTop = Math.round((sc.scrollHeight - sc.clientHeight) * to);
  return new Promise((resolve) => {
    let n = 0;
    const step = () => (++n >= frames ? resolve(sc.scrollTop) : requestAnimationFrame(step));
    requestAnimationFrame(step);
  });
}

function pageDom() {
  const sc = document.querySelector('[data-testid="message-list"]');
  return {
    rows: sc.querySelectorAll('[data-index]').length,
    messages: sc.querySelectorAll('[data-testid="message"]').length,
    listElements: sc.getElementsByTagName('*').length,
    elements: document.getElementsByTagName('*').length,
    scrollHeight: sc.scrollHeight,
    clientHeight: sc.clientHeight,
  };
}

/** The view as static HTML: no scripts, the rows in flow, the styles as they are now. */
function pageSnapshot() {
  const doc = document.documentElement.cloneNode(true);
  for (const s of doc.querySelectorAll('script, link[rel="modulepreload"]')) s.remove();
  const rows = doc.querySelector('.chat-rows');
  const html = [...rows.children].map((r) => r.outerHTML);
  rows.replaceChildren();
  return { html: `<!doctype html>\n${doc.outerHTML}`, rows: html };
}

/** Every row of the conversation, rendered by the app: the list is scrolled in
 * steps of its own height (in a tall window) until every index has been seen. */
async function pageCaptureAll({ count }) {
  const sc = document.querySelector('[data-testid="message-list"]');
  const got = new Array(count);
  let seen = 0;
  const frame = () => new Promise((r) => requestAnimationFrame(() => r()));
  sc.scrollTop = 0;
  for (let guard = 0; guard < 10_000 && seen < count; guard++) {
    await frame();
    await frame();
    for (const row of sc.querySelectorAll('[data-index]')) {
      const i = Number(row.dataset.index);
      const m = row.querySelector('[data-testid="message"]');
      if (got[i] || !m || m.querySelector('.plain-text')) continue;
      const b = row.getBoundingClientRect();
      const lb = sc.getBoundingClientRect();
      if (b.bottom < lb.top || b.top > lb.bottom) continue;
      got[i] = row.outerHTML;
      seen++;
    }
    if (sc.scrollTop + sc.clientHeight >= sc.scrollHeight - 1 && seen < count) {
      // At the end with rows missing: go back to the first one missing.
      const first = got.findIndex((x) => !x);
      const el = sc.querySelector(`[data-index="${first}"]`);
      if (!el) sc.scrollTop = Math.max(0, sc.scrollTop - sc.clientHeight);
    } else {
      sc.scrollTop += Math.floor(sc.clientHeight * 0.9);
    }
  }
  return { rows: got, seen };
}

// The reference page's own script (inlined into its HTML): the same open,
// scroll and stream work on static HTML, with no framework.
function referenceScript() {
  const data = JSON.parse(document.getElementById('bench-data').textContent);
  const sc = document.querySelector('[data-testid="message-list"]');
  const rows = sc.querySelector('.chat-rows');
  // Open: the same request for the conversation as the app makes, its JSON
  // parsed, then the rows the app shows set as static HTML.
  window.__refOpen = async () => {
    const t = performance.now();
    const res = await fetch(`/api/chat/conversations/${encodeURIComponent(data.id)}`, { headers: { Authorization: `Bearer ${data.token}` }, cache: 'no-store' });
    const conv = await res.json();
    if (!conv.messages?.length) throw new Error('the reference read no messages');
    rows.innerHTML = data.open.join('');
    sc.scrollTop = sc.scrollHeight;
    return new Promise((resolve) =>
      requestAnimationFrame(() => {
        const ch = new MessageChannel();
        ch.port1.onmessage = () => resolve(performance.now() - t);
        ch.port2.postMessage(0);
      }),
    );
  };
  window.__refClear = () => rows.replaceChildren();
  window.__refAll = () => {
    rows.innerHTML = data.all.join('');
    sc.scrollTop = sc.scrollHeight;
  };
  window.__refSetOpen = () => {
    rows.innerHTML = data.open.join('');
    sc.scrollTop = sc.scrollHeight;
  };
  // Streaming: tokens appended as text at `rate`/s by the clock (all due
  // tokens at each ~2 ms timer), the bottom followed once per frame.
  window.__refStream = ({ tokens, rate }) =>
    new Promise((resolve) => {
      const row = document.createElement('div');
      row.className = 'chat-row chat-row-message';
      row.innerHTML = '<article class="message message-assistant status-streaming" data-testid="message" data-role="assistant" data-status="streaming"><header class="message-head"><span class="message-model">bench-chat</span></header><div class="md"><p class="stream-text"></p></div></article>';
      rows.append(row);
      const p = row.querySelector('.stream-text');
      let sent = 0;
      let follow = true;
      const t0 = performance.now();
      const onFrame = () => {
        sc.scrollTop = sc.scrollHeight;
        if (follow) requestAnimationFrame(onFrame);
      };
      requestAnimationFrame(onFrame);
      const tick = () => {
        const due = Math.min(tokens.length, 1 + Math.floor(((performance.now() - t0) / 1000) * rate));
        for (; sent < due; sent++) p.append(tokens[sent]);
        if (sent < tokens.length) setTimeout(tick, 2);
        else {
          follow = false;
          row.querySelector('article').dataset.status = 'complete';
          resolve(performance.now() - t0);
        }
      };
      tick();
    });
}

/** Words on screen in the newest answer, every 100 ms, while `on`. */
function pageWordSampler(on) {
  if (!on) {
    clearInterval(window.__wordTimer);
    return window.__words;
  }
  window.__words = [];
  const count = () => {
    const list = document.querySelector('[data-testid="message-list"]');
    const answers = list.querySelectorAll('[data-testid="message"][data-role="assistant"]');
    const a = answers[answers.length - 1];
    if (!a) return 0;
    let words = 0;
    for (const md of a.querySelectorAll('.md')) {
      if (md.parentElement.closest('.md')) continue;
      words += (md.textContent.match(/\S+/g) ?? []).length;
      for (const head of md.querySelectorAll('.md-code-head')) words -= (head.textContent.match(/\S+/g) ?? []).length;
    }
    return words;
  };
  window.__wordTimer = setInterval(() => window.__words.push([performance.now(), count(), Date.now()]), 100);
  return null;
}

// ------------------------------------------------------------------- analysis

function frameStats(ts, from = -Infinity, to = Infinity) {
  const t = ts.filter((x) => x >= from && x <= to);
  const d = [];
  for (let i = 1; i < t.length; i++) d.push(t[i] - t[i - 1]);
  if (!d.length) return null;
  const s = [...d].sort((a, b) => a - b);
  const q = (p) => s[Math.min(s.length - 1, Math.ceil(p * s.length) - 1)];
  const span = t[t.length - 1] - t[0];
  return {
    frames: d.length,
    seconds: span / 1000,
    fps: (d.length / span) * 1000,
    p50: q(0.5),
    p95: q(0.95),
    p99: q(0.99),
    max: s[s.length - 1],
    over50: d.filter((x) => x > 50).length,
  };
}

function statsLine(s) {
  if (!s) return 'no frames';
  return `${fmt(s.fps)} fps over ${fmt(s.seconds)} s (${s.frames} frames); frame p50 ${fmt(s.p50)} ms, p95 ${fmt(s.p95)} ms, p99 ${fmt(s.p99)} ms, max ${fmt(s.max)} ms; ${s.over50} frames > 50 ms`;
}

function loafSummary(loaf) {
  if (!loaf.length) return [];
  const by = new Map();
  let total = 0;
  for (const f of loaf) {
    total += f.duration;
    for (const s of f.scripts) {
      const k = `${s.invoker}${s.fn ? ` → ${s.fn}` : ''} (${s.src})`;
      const e = by.get(k) ?? { ms: 0, n: 0 };
      e.ms += s.duration;
      e.n += 1;
      by.set(k, e);
    }
  }
  const lines = [`${loaf.length} long animation frames (≥ 50 ms), ${fmt(total, 0)} ms in all; scripts in them:`];
  for (const [k, e] of [...by].sort((a, b) => b[1].ms - a[1].ms).slice(0, 4)) lines.push(`  ${fmt(e.ms, 0)} ms in ${e.n}× ${k}`);
  return lines;
}

/** Self time per function from a V8 CPU profile. */
function profileSummary(profile, label, top = 15) {
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const self = new Map();
  const dt = profile.timeDeltas;
  let total = 0;
  for (let i = 0; i < profile.samples.length; i++) {
    const cf = byId.get(profile.samples[i]).callFrame;
    const file = cf.url ? cf.url.split('/').pop() : '';
    const k = cf.url ? `${cf.functionName || '(anonymous)'} ${file}:${cf.lineNumber + 1}:${cf.columnNumber + 1}` : cf.functionName || '(native)';
    self.set(k, (self.get(k) ?? 0) + (dt[i] ?? 0));
    total += dt[i] ?? 0;
  }
  const busy = total - (self.get('(idle)') ?? 0);
  const lines = [`CPU profile, ${label}: ${fmt(total / 1000, 0)} ms sampled, main thread busy ${fmt(busy / 1000, 0)} ms (${fmt((busy / total) * 100, 0)} %); self time, top ${top}:`];
  for (const [k, us] of [...self].filter(([k]) => k !== '(idle)').sort((a, b) => b[1] - a[1]).slice(0, top)) {
    lines.push(`  ${fmt(us / 1000, 0).padStart(6)} ms ${fmt((us / busy) * 100, 1).padStart(5)} %  ${k}`);
  }
  return lines;
}

async function profiled(page, label, fn) {
  if (!PROFILE) return fn();
  const cdp = await page.context().newCDPSession(page);
  await cdp.send('Profiler.enable');
  await cdp.send('Profiler.setSamplingInterval', { interval: 200 });
  await cdp.send('Profiler.start');
  const out = await fn();
  const { profile } = await cdp.send('Profiler.stop');
  mkdirSync(ARTIFACTS, { recursive: true });
  writeFileSync(path.join(ARTIFACTS, `chat-${label.replace(/\W+/g, '-')}.cpuprofile`), JSON.stringify(profile));
  profileLines.push(...profileSummary(profile, label));
  await cdp.detach();
  return out;
}
const profileLines = [];

// ----------------------------------------------------------------------- main

/** The fixed scroll: real wheel input from the newest message up to the first
 * one, then the scroll position dragged back down over the whole list. */
async function scrollScript(page, box) {
  await page.mouse.move(box.x + box.width / 2, box.y + box.height / 2);
  await page.evaluate(pageJump, { to: 1, frames: 10 });
  await page.evaluate(pageRecord, true);
  await page.evaluate(pageMark, 'wheel up through the whole list');
  const end = Date.now() + WHEEL_MAX_MS;
  let ticks = 0;
  let top = Infinity;
  while (Date.now() < end && top > 0) {
    await page.mouse.wheel(0, -WHEEL_PX);
    if (++ticks % 10 === 0) top = await page.evaluate(() => document.querySelector('[data-testid="message-list"]').scrollTop);
  }
  await page.evaluate(pageJump, { to: 0, frames: 2 });
  await page.evaluate(pageMark, 'drag the whole list down');
  await page.evaluate(pageDrag, { from: 0, to: 1, ms: DRAG_MS });
  await page.evaluate(pageMark, 'end');
  const rec = await page.evaluate(pageRecord, false);
  const dom = await page.evaluate(pageDom);
  const all = frameStats(rec.frames);
  const segs = rec.segments.slice(0, -1).map(([name, t, y], i) => {
    const [, t1, y1] = rec.segments[i + 1];
    return [name, frameStats(rec.frames, t, t1), Math.abs(y1 - y) / ((t1 - t) / 1000)];
  });
  return { all, segs, loaf: rec.loaf, dom, ticks, reachedTop: top <= 0 };
}

async function streamFrames(page, fromMs, toMs) {
  const rec = await page.evaluate(pageRecord, false);
  return { stats: frameStats(rec.frames, fromMs, toMs), loaf: rec.loaf.filter((l) => l.start >= fromMs && l.start <= toMs) };
}

/** Words on screen over time → tokens/s on screen while the answer grows. */
function screenRate(samples, total) {
  const grew = samples.filter(([, w]) => w > 0);
  if (grew.length < 2) return { rate: NaN, first: NaN, last: NaN, final: 0 };
  const final = grew[grew.length - 1][1];
  const lastIdx = grew.findIndex(([, w]) => w >= final);
  const [t0, w0] = grew[0];
  const [t1, w1] = grew[lastIdx];
  // Words on screen stand for tokens: each token is one word; code fences add none.
  const scale = total / Math.max(1, final);
  return { rate: (((w1 - w0) * scale) / (t1 - t0)) * 1000, first: t0, last: t1, final, lastWall: grew[lastIdx][2] };
}

/** Every row of the big conversation as the app renders it, cached per UI build and seed (the capture takes ~30 s). */
async function allRows(page, seed) {
  const index = readFileSync(path.join(UI_DIR ?? path.join(REPO_ROOT, 'ui', 'dist'), 'index.html'), 'utf8');
  const key = createHash('sha256').update(index).update(seed).update(pageCaptureAll.toString()).digest('hex').slice(0, 16);
  const file = path.join(CACHE_DIR, `rows-${key}.json`);
  if (existsSync(file)) {
    const rows = JSON.parse(readFileSync(file, 'utf8'));
    log(`static reference rows from ${file}`);
    return { rows, seen: rows.length };
  }
  log('capturing every row of the big conversation for the static reference (cached for this UI build)');
  const capStart = Date.now();
  await page.setViewportSize({ width: 1280, height: 8000 });
  const cap = await page.evaluate(pageCaptureAll, { count: BIG });
  await page.setViewportSize({ width: 1280, height: 800 });
  if (cap.seen < BIG) throw new Error(`captured ${cap.seen} of ${BIG} rows for the reference`);
  log(`captured ${cap.seen} rows in ${fmt((Date.now() - capStart) / 1000)} s`);
  mkdirSync(CACHE_DIR, { recursive: true });
  writeFileSync(`${file}.tmp`, JSON.stringify(cap.rows));
  renameSync(`${file}.tmp`, file);
  return cap;
}

async function main() {
  const head = git('rev-parse', '--short', 'HEAD');
  const dirty = git('status', '--porcelain', '--', 'ui') ? ' (ui/ has local changes)' : '';
  const tokens = streamTokens(STREAM_TOKENS);
  const mock = await startStreamingMock({ tokens, rate: STREAM_RATE });
  cleanups.unshift(() => mock.close());
  const gw = await startGateway({
    startTimeoutMs: 30_000,
    config: `[buckets.credit]
currency = "USD"

[[channels]]
id = "bench"
type = "openai-compatible"
brand = "Bench"
base_url = "${mock.baseUrl}"
bucket = "credit"
secret = "none"

[[routes]]
model = "${MODEL}"
targets = [{ channel = "bench", model = "${UPSTREAM_MODEL}", price = { input = 0.15, output = 0.60 } }]
`,
  });
  cleanups.unshift(() => gw.stop());
  log(`gateway ${gw.url} (${gw.bin}), mock ${mock.baseUrl}`);
  await gw.api('POST', '/api/buckets/credit/topup', { amount: '20', note: 'chat bench' });

  // Seed: one import of three conversations.
  const t0 = 1_780_000_000;
  const exportJson = [chatgptConversation('Bench: warm-up', 4, 1, t0), chatgptConversation(`Bench: ${MID} messages`, MID, 500, t0 + 100_000), chatgptConversation(`Bench: ${BIG} messages`, BIG, 2000, t0 + 200_000)];
  const body = JSON.stringify(exportJson);
  const seedStart = Date.now();
  const res = await fetch(`${gw.url}/api/chat/import`, { method: 'POST', headers: { Authorization: `Bearer ${gw.adminToken}`, 'Content-Type': 'application/json' }, body });
  if (res.status !== 201) throw new Error(`import → ${res.status}: ${await res.text()}`);
  const [warmId, midId, bigId] = (await res.json()).conversations;
  const seedMs = Date.now() - seedStart;
  const bigConv = await gw.api('GET', `/api/chat/conversations/${bigId}`);
  if (bigConv.messages.length !== BIG) throw new Error(`the big conversation has ${bigConv.messages.length} messages, not ${BIG}`);
  const bigChars = bigConv.messages.reduce((a, m) => a + m.content.length, 0);
  const codeBlocks = bigConv.messages.reduce((a, m) => a + (m.content.match(/^```\w/gm) ?? []).length, 0);
  log(`imported ${BIG} + ${MID} + 4 messages (${(body.length / 1048576).toFixed(1)} MB) in ${seedMs} ms`);

  const browser = await chromium.launch({
    executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
    headless: true,
    args: ['--no-sandbox', '--disable-background-networking', '--disable-gpu', '--disable-dev-shm-usage'],
    timeout: 30_000,
  });
  cleanups.unshift(() => browser.close());
  const context = await browser.newContext({ viewport: { width: 1280, height: 800 }, locale: 'en-US', timezoneId: 'UTC', colorScheme: 'light' });
  context.setDefaultTimeout(30_000);
  await context.addInitScript(pageInit, { model: MODEL });
  const references = new Map();
  await context.route(`${gw.url}/__bench/**`, (route) => {
    const name = new URL(route.request().url()).pathname.split('/').pop();
    const html = references.get(name);
    if (!html) return route.fulfill({ status: 404, body: 'no such reference' });
    return route.fulfill({ status: 200, contentType: 'text/html; charset=utf-8', body: html });
  });
  if (UI_DIR) {
    // Another build of the UI (an unminified one, to read a profile): its files instead of ui/dist.
    await context.route((url) => url.origin === gw.url && !/^\/(api|v1|__bench|health)\b/.test(url.pathname), (route) => {
      const p = new URL(route.request().url()).pathname;
      const file = path.join(UI_DIR, p);
      const isFile = p.startsWith('/assets/') && existsSync(file);
      const type = { js: 'text/javascript', css: 'text/css', woff2: 'font/woff2' }[file.split('.').pop()] ?? 'application/octet-stream';
      return route.fulfill({ status: 200, contentType: isFile ? type : 'text/html', body: readFileSync(isFile ? file : path.join(UI_DIR, 'index.html')) });
    });
  }
  const page = await context.newPage();
  const pageErrors = [];
  page.on('pageerror', (e) => pageErrors.push(String(e)));

  const item = (id) => `[data-testid="conversation-item"][data-conversation-id="${id}"] a.conversation-link`;
  const openByClick = (id, count) =>
    page.evaluate(
      ({ sel, count }) => {
        const t = performance.now();
        const p = window.__opened(t, count);
        document.querySelector(sel).click();
        return p;
      },
      { sel: item(id), count },
    );
  /** The last request for conversation `id` in `p`: duration and time to first byte. */
  const lastFetch = (p, id) =>
    p.evaluate((id) => {
      const e = performance.getEntriesByType('resource').filter((r) => r.name.includes(`/api/chat/conversations/${id}`) && !r.name.includes('/export')).pop();
      return e ? { ms: e.duration, ttfb: e.responseStart - e.requestStart, kb: (e.encodedBodySize || e.transferSize) / 1024 } : null;
    }, id);

  // Warm the app (HTTP and code caches, the Markdown chunk) with the small conversation.
  await page.goto(`${gw.url}/chat/${warmId}#token=${gw.adminToken}`);
  await page.evaluate(() => window.__openedAtLoad);
  await page.locator(item(bigId)).waitFor();
  await openByClick(bigId, BIG);
  await openByClick(warmId, 4);

  // The reference pages: a snapshot of the view with the big conversation open
  // (its rows as the view shows them), and every row of it, rendered by the app.
  await openByClick(bigId, BIG);
  const snapBig = await page.evaluate(pageSnapshot);
  const domOpen = await page.evaluate(pageDom);
  const cap = await allRows(page, body);
  await openByClick(midId, MID);
  await page.evaluate(pageJump, { to: 1, frames: 5 });
  const snapMid = await page.evaluate(pageSnapshot);
  await openByClick(warmId, 4);

  const refHtml = (snap, data) => {
    const extra = `<style>.chat-rows{height:auto!important}.chat-row{position:relative!important;transform:none!important}</style>`;
    const script = `<script type="application/json" id="bench-data">${JSON.stringify(data).replace(/</g, '\\u003c')}</script><script>(${referenceScript.toString()})()</script>`;
    return snap.html.replace('</head>', `${extra}</head>`).replace('</body>', `${script}</body>`);
  };
  const strip = (rows) => rows.map((r) => r.replace(/ style="[^"]*"/, ''));
  references.set('big.html', refHtml(snapBig, { id: bigId, token: gw.adminToken, open: strip(snapBig.rows), all: strip(cap.rows) }));
  references.set('mid.html', refHtml(snapMid, { id: midId, token: gw.adminToken, open: strip(snapMid.rows), all: [] }));
  const refPage = await context.newPage();
  refPage.on('pageerror', (e) => pageErrors.push(`reference: ${e}`));
  await refPage.goto(`${gw.url}/__bench/big.html`);
  await refPage.evaluate(() => window.__refOpen());

  const quiet = await waitQuiet();
  log(`load ${quiet.load.join(' ')}${quiet.quiet ? '' : ' (not quiet: measuring anyway)'}`);

  // (1) Open, by click, alternating with the reference.
  const opens = [];
  const refOpens = [];
  const fetches = [];
  const refFetches = [];
  for (let i = 0; i < OPENS; i++) {
    await page.bringToFront();
    opens.push(await openByClick(bigId, BIG));
    fetches.push(await lastFetch(page, bigId));
    await openByClick(warmId, 4);
    await refPage.bringToFront();
    await refPage.evaluate(() => window.__refClear());
    await refPage.waitForTimeout(100);
    refOpens.push(await refPage.evaluate(() => window.__refOpen()));
    refFetches.push(await lastFetch(refPage, bigId));
  }
  // ... and by a page load of /chat/<id>.
  await page.bringToFront();
  const loads = [];
  for (let i = 0; i < Math.min(3, OPENS); i++) {
    const once = async () => {
      await page.goto(`${gw.url}/chat/${bigId}`);
      loads.push(await page.evaluate(() => window.__openedAtLoad));
    };
    await (i === 0 ? profiled(page, 'page load', once) : once());
  }
  // Where a page load's time goes: when each script, the conversation and the Markdown chunk arrived.
  const loadTimeline = await page.evaluate((id) => {
    const nav = performance.getEntriesByType('navigation')[0];
    const out = [['document', nav.responseEnd]];
    for (const e of performance.getEntriesByType('resource')) {
      const name = e.name.includes(`/api/chat/conversations/${id}`) ? 'conversation' : /\/assets\/(index|Markdown)-[^/]*\.js$/.test(e.name) ? e.name.split('/').pop().replace(/-[^-]*$/, '.js') : null;
      if (name) out.push([name, e.startTime, e.responseEnd]);
    }
    return out;
  }, bigId);
  const domAfterOpen = await page.evaluate(pageDom);
  log(`open: ${opens.map((x) => fmt(x, 0)).join(', ')} ms; reference ${refOpens.map((x) => fmt(x, 0)).join(', ')} ms; page load ${loads.map((x) => fmt(x, 0)).join(', ')} ms`);

  // (2) Scroll, alternating with the reference (all rows, static).
  await refPage.evaluate(() => window.__refAll());
  const refDomAll = await refPage.evaluate(pageDom);
  const box = await page.getByTestId('message-list').boundingBox();
  const scrolls = [];
  const refScrolls = [];
  for (let i = 0; i < ROUNDS; i++) {
    await page.bringToFront();
    scrolls.push(await profiled(page, `scroll round ${i + 1}`, () => scrollScript(page, box)));
    await refPage.bringToFront();
    refScrolls.push(await scrollScript(refPage, box));
    log(`scroll round ${i + 1}: ${fmt(scrolls.at(-1).all?.fps)} fps (reference ${fmt(refScrolls.at(-1).all?.fps)} fps)`);
  }

  // (3) Streaming into the 500-message conversation, alternating with the reference.
  await page.bringToFront();
  await page.goto(`${gw.url}/chat/${midId}`);
  await page.evaluate(() => window.__openedAtLoad);
  await refPage.goto(`${gw.url}/__bench/mid.html`);
  await refPage.evaluate(() => window.__refSetOpen());
  const streams = [];
  const refStreams = [];
  for (let i = 0; i < ROUNDS; i++) {
    await page.bringToFront();
    await page.getByTestId('composer-input').fill(`Round ${i + 1}: explain it once more, with an example.`);
    await page.evaluate(pageRecord, true);
    await page.evaluate(pageWordSampler, true);
    const sentAt = await page.evaluate(() => performance.now());
    const mockBefore = mock.streams.length;
    await profiled(page, `stream round ${i + 1}`, async () => {
      await page.getByTestId('composer-input').press('Enter');
      await page.locator('[data-testid="message"][data-role="assistant"][data-status="streaming"]').waitFor({ timeout: 15_000 });
      await page.locator('[data-testid="message"][data-role="assistant"][data-status="streaming"]').waitFor({ state: 'detached', timeout: 60_000 });
    });
    await page.waitForTimeout(300);
    const words = await page.evaluate(pageWordSampler, false);
    const m = mock.streams[mockBefore];
    const rate = screenRate(words, tokens.length);
    const { stats, loaf } = await streamFrames(page, rate.first, rate.last);
    const status = await page.evaluate(() => {
      const a = [...document.querySelectorAll('[data-testid="message"][data-role="assistant"]')].pop();
      return a?.dataset.status;
    });
    const count = await page.evaluate(() => Number(document.querySelector('[data-testid="message-list"]').getAttribute('data-count')));
    streams.push({
      stats,
      loaf,
      rate,
      sentRate: m ? (m.sent / Math.max(1, m.lastTokenAt - m.firstTokenAt)) * 1000 : NaN,
      sent: m?.sent ?? 0,
      firstTokenMs: m ? rate.first - sentAt : NaN,
      lagMs: m && rate.lastWall ? rate.lastWall - m.lastTokenAt : NaN,
      status,
      count,
      promptKB: m ? m.promptBytes / 1024 : NaN,
    });
    log(`stream round ${i + 1}: ${statsLine(stats)}; ${fmt(streams.at(-1).rate.rate, 0)} tokens/s on screen`);

    await refPage.bringToFront();
    await refPage.evaluate(() => window.__refSetOpen());
    await refPage.evaluate(pageRecord, true);
    const r0 = await refPage.evaluate(() => performance.now());
    const refMs = await refPage.evaluate((a) => window.__refStream(a), { tokens, rate: STREAM_RATE });
    const r1 = await refPage.evaluate(() => performance.now());
    const rs = await streamFrames(refPage, r0, r1);
    refStreams.push({ ...rs, ms: refMs, rate: (tokens.length / refMs) * 1000 });
    log(`reference stream round ${i + 1}: ${statsLine(rs.stats)}`);
  }

  const loadAtEnd = loadavg();
  const openMedian = median(opens);
  const scrollFps = median(scrolls.map((s) => s.all?.fps ?? 0));
  const streamP95 = median(streams.map((s) => s.stats?.p95 ?? Infinity));
  const missed = [];
  if (!(openMedian < TARGETS.openMs)) missed.push(`open median ${fmt(openMedian, 0)} ms ≥ ${TARGETS.openMs} ms`);
  for (const [i, s] of scrolls.entries()) if (!(s.all?.fps >= TARGETS.fps)) missed.push(`scroll round ${i + 1}: ${fmt(s.all?.fps)} fps < ${TARGETS.fps}`);
  for (const [i, s] of streams.entries()) {
    if (!(s.stats?.p95 < TARGETS.streamP95)) missed.push(`stream round ${i + 1}: frame p95 ${fmt(s.stats?.p95)} ms ≥ ${TARGETS.streamP95} ms`);
    if (s.status !== 'complete') missed.push(`stream round ${i + 1}: the answer ended ${s.status}`);
  }

  const range = (a, d = 0) => `${fmt(Math.min(...a), d)}–${fmt(Math.max(...a), d)}`;
  const lines = [
    `Chat view benchmark — ${new Date().toISOString().replace(/\.\d+Z$/, 'Z')}, commit ${head}${dirty}`,
    `Chromium ${browser.version()} headless, 1280×800, --disable-gpu; ${os.cpus().length} CPUs; gateway ${path.relative(REPO_ROOT, gw.bin).startsWith('..') ? gw.bin : path.relative(REPO_ROOT, gw.bin)}`,
    `Seed: ${BIG}, ${MID} and 4 messages imported in one POST /api/chat/import (${fmt(body.length / 1048576)} MB) in ${fmt(seedMs / 1000)} s; the ${BIG}-message conversation has ${fmt(bigChars / 1024, 0)} KB of text and ${codeBlocks} code blocks`,
    `Load average (1/5/15 min): ${quiet.load.join(' ')} before the measured part${quiet.waited > 1000 ? ` (waited ${fmt(quiet.waited / 1000, 0)} s)` : ''}${quiet.quiet ? '' : ` — NOT QUIET (≥ ${QUIET_LOAD})`}, ${loadAtEnd.join(' ')} after`,
    '',
    `1. Open the ${BIG}-message conversation (click in the list → the frame showing the newest message): median ${fmt(openMedian, 0)} ms (${range(opens)} ms over ${opens.length})`,
    `   of which the request for the conversation (${fmt(fetches[0]?.kb, 0)} KB of JSON): median ${fmt(median(fetches.map((f) => f?.ms)), 0)} ms, ${fmt(median(fetches.map((f) => f?.ttfb)), 0)} ms of it to the first byte`,
    `   reference, the same request, its JSON parsed and the same ${snapBig.rows.length} rows set as static HTML: median ${fmt(median(refOpens), 0)} ms (${range(refOpens)} ms; the request ${fmt(median(refFetches.map((f) => f?.ms)), 0)} ms); ratio ${fmt(openMedian / median(refOpens), 2)}`,
    `   page load of /chat/<id> → the same frame: median ${fmt(median(loads), 0)} ms (${range(loads)} ms over ${loads.length})`,
    `   page load timeline (ms from navigation start): ${loadTimeline.map(([n, a, b]) => (b === undefined ? `${n} ${fmt(a, 0)}` : `${n} ${fmt(a, 0)}→${fmt(b, 0)}`)).join(', ')}; open ${fmt(loads.at(-1), 0)}`,
    `   DOM once open: ${domOpen.rows} rows (${domOpen.listElements} elements in the list, ${domOpen.elements} in the page); list height ${domOpen.scrollHeight.toLocaleString('en-US')} px (estimated until rows are measured); ${domAfterOpen.rows} rows after a page load`,
    `2. Scroll (wheel ticks of ${WHEEL_PX} px from the newest message to the first, then dragged down over the whole list in ${DRAG_MS / 1000} s):`,
    ...scrolls.flatMap((s, i) => [
      `   round ${i + 1}: ${statsLine(s.all)}; ${s.ticks} wheel ticks${s.reachedTop ? '' : ' (the top NOT reached)'}; ${s.dom.rows} rows in the DOM after, list ${s.dom.scrollHeight.toLocaleString('en-US')} px`,
      ...s.segs.map(([name, st, pxs]) => `     ${name.padEnd(34)} ${st ? `${fmt(st.fps, 0).padStart(3)} fps, p50 ${fmt(st.p50)}, p95 ${fmt(st.p95)}, max ${fmt(st.max)} ms, ${st.over50} > 50 ms; ${fmt(pxs / 1000, 1)}k px/s` : 'no frames'}`),
      ...loafSummary(s.loaf).map((l) => `     ${l}`),
      `   reference round ${i + 1} (all ${BIG} rows static, ${refDomAll.listElements.toLocaleString('en-US')} elements, ${refDomAll.scrollHeight.toLocaleString('en-US')} px): ${statsLine(refScrolls[i].all)}`,
      ...refScrolls[i].segs.map(([name, st, pxs]) => `     ${name.padEnd(34)} ${st ? `${fmt(st.fps, 0).padStart(3)} fps, p50 ${fmt(st.p50)}, p95 ${fmt(st.p95)}, max ${fmt(st.max)} ms; ${fmt(pxs / 1000, 1)}k px/s` : 'no frames'}`),
    ]),
    `   median ${fmt(scrollFps)} fps; reference median ${fmt(median(refScrolls.map((s) => s.all?.fps ?? 0)))} fps; ratio ${fmt(scrollFps / median(refScrolls.map((s) => s.all?.fps ?? 0)), 2)}`,
    `3. Stream ${tokens.length} tokens at ${STREAM_RATE}/s into the ${MID}-message conversation (sent through the composer):`,
    ...streams.flatMap((s, i) => [
      `   round ${i + 1}: ${statsLine(s.stats)}`,
      `     mock sent ${s.sent} tokens at ${fmt(s.sentRate, 0)}/s; on screen ${fmt(s.rate.rate, 0)} tokens/s (${s.rate.final} words at the end); first token on screen ${fmt(s.firstTokenMs, 0)} ms after Enter; last ${fmt(s.lagMs, 0)} ms after the mock sent it; prompt ${fmt(s.promptKB, 0)} KB; answer ${s.status}; ${s.count} messages in the path after`,
      ...loafSummary(s.loaf).map((l) => `     ${l}`),
      `   reference round ${i + 1} (plain text appended to a static snapshot): ${statsLine(refStreams[i].stats)}; ${fmt(refStreams[i].rate, 0)} tokens/s`,
    ]),
    `   median p95 ${fmt(streamP95)} ms; reference median p95 ${fmt(median(refStreams.map((s) => s.stats?.p95 ?? Infinity)))} ms`,
    '',
    `Targets: open (click) median < ${TARGETS.openMs} ms, scroll ≥ ${TARGETS.fps} fps in every round, frame p95 < ${TARGETS.streamP95} ms while streaming in every round: ${missed.length ? `MISSED — ${missed.join('; ')}` : 'met'}`,
    ...(pageErrors.length ? ['', `Page errors: ${pageErrors.join(' | ')}`] : []),
    ...(profileLines.length ? ['', 'Profiled run (PROFILE=1): the numbers above include the profiler\'s overhead.', ...profileLines] : []),
  ];
  const report = lines.join('\n');
  console.log(report);
  mkdirSync(ARTIFACTS, { recursive: true });
  writeFileSync(path.join(ARTIFACTS, 'chat.txt'), `${report}\n`);
  return missed.length && !NO_FAIL ? 1 : 0;
}

async function cleanup() {
  for (const c of cleanups.splice(0)) {
    try {
      await c();
    } catch {
      // best effort
    }
  }
}

const deadline = setTimeout(async () => {
  console.error(`chat bench: gave up after ${DEADLINE_MS / 1000} s`);
  await Promise.race([cleanup(), sleep(5_000)]);
  process.exit(2);
}, DEADLINE_MS);

let code = 2;
try {
  code = await main();
} catch (e) {
  console.error(`chat bench failed: ${redact(e?.stack ?? e)}`);
  code = 2;
} finally {
  clearTimeout(deadline);
  await cleanup();
}
log(`done in ${fmt((Date.now() - started) / 1000, 0)} s`);
process.exit(code);
