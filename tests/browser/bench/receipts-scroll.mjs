// Receipts scroll benchmark: does the Receipts table stay smooth with
// 100,000 rows loaded?
//
// 1. A ledger of RECEIPTS (100,000) receipts made by `switchyard-bench-ledger`
//    (tests/bench/ledger-gen), cached in ~/.cache/switchyard-bench-ledger-N
//    (the layout tests/bench/spend.sh uses) and COPIED to a temporary data
//    dir, so the cached one is never written.
// 2. `switchyard serve` (the debug binary: it serves the current ui/dist
//    from disk) on that data dir, a temporary config and a free loopback
//    port; headless Chromium at 1280×800 opens the admin link at /receipts.
// 3. Measured, after waiting for a quiet machine (1-min load < QUIET_LOAD):
//    - time to first rows (page load → first row; and a view switch → first row);
//    - time until every receipt is loaded, scrolling the real scroll
//      container to its end on every frame, so keyset paging fetches page
//      after page as a user holding the scrollbar at the bottom would;
//    - JS heap and DOM size with all rows loaded;
//    - smoothness of a fixed ~10 s scripted scroll over the loaded rows:
//      wheel scrolling down and up at the top, middle and end, scrollbar
//      drags across the whole range, and jumps (middle, end, top, …).
//      Frame times are the gaps between requestAnimationFrame timestamps.
// 4. Targets (exit 1 when one is missed, 2 when the run itself failed):
//    p95 frame time ≤ 33 ms, no frame > 200 ms during the steady scroll,
//    fewer than 200 row elements in the DOM.
//    On a miss (or with PROFILE=1) the steady scroll is run once more under
//    the V8 CPU profiler and the report says where the time went.
//
// Environment: RECEIPTS (100000), BENCH_LEDGER (a data dir holding
// switchyard.db to copy instead), SWITCHYARD_BIN, CHROMIUM, QUIET_LOAD (1.0),
// QUIET_WAIT (seconds, 150), PROFILE=1, NO_FAIL=1 (report only),
// SWITCHYARD_ARTIFACTS (where receipts-scroll.txt goes).

import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { chromium } from 'playwright-core';
import { REPO_ROOT, redact, startGateway } from '../lib/gateway.mjs';

const RECEIPTS = Number(process.env.RECEIPTS || 100_000);
const QUIET_LOAD = Number(process.env.QUIET_LOAD || 1.0);
const QUIET_WAIT = Number(process.env.QUIET_WAIT ?? 150);
const PROFILE = process.env.PROFILE === '1';
const NO_FAIL = process.env.NO_FAIL === '1';
const ARTIFACTS = process.env.SWITCHYARD_ARTIFACTS || path.join(REPO_ROOT, 'tests', 'artifacts');
const TARGET_DIR = process.env.CARGO_TARGET_DIR || path.join(os.homedir(), '.cache', 'switchyard-target');
const LOAD_TIMEOUT_MS = 90_000;
const DEADLINE_MS = 285_000; // the whole run, including the quiet wait

const TARGETS = { p95: 33, max: 200, rows: 200 };
// Frame gaps are whole vsync intervals (16.7 ms at 60 Hz) give or take timer
// jitter: a frame that took two intervals (33.3–33.5 ms measured) is 30 fps and
// counts as meeting the 33 ms target.
const P95_LIMIT = 34;

const ROW_HEIGHT = 36;

const started = Date.now();
const cleanups = [];
// The gateway child is killed on exit or signal by lib/gateway.mjs.

const log = (...a) => console.error('#', ...a);
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const loadavg = () => readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).map(Number);
const fmt = (n, d = 1) => (Number.isFinite(n) ? n.toFixed(d) : '—');
const mb = (b) => `${(b / 1048576).toFixed(1)} MB`;

function git(...args) {
  const r = spawnSync('git', args, { cwd: REPO_ROOT, encoding: 'utf8' });
  return r.status === 0 ? r.stdout.trim() : '?';
}

/** The cached ledger, generated once with switchyard-bench-ledger if missing. */
function ledgerDir() {
  if (process.env.BENCH_LEDGER) {
    if (!existsSync(path.join(process.env.BENCH_LEDGER, 'switchyard.db'))) throw new Error(`BENCH_LEDGER=${process.env.BENCH_LEDGER} has no switchyard.db`);
    return process.env.BENCH_LEDGER;
  }
  const dir = path.join(os.homedir(), '.cache', `switchyard-bench-ledger-${RECEIPTS}`);
  if (existsSync(path.join(dir, 'switchyard.db'))) return dir;
  const gen = path.join(TARGET_DIR, 'release', 'switchyard-bench-ledger');
  if (!existsSync(gen)) {
    log(`building ${gen}`);
    const b = spawnSync('cargo', ['build', '--release', '-p', 'switchyard-bench-ledger'], {
      cwd: REPO_ROOT,
      stdio: 'inherit',
      env: { ...process.env, CARGO_TARGET_DIR: TARGET_DIR, PATH: `${process.env.PATH}:${path.join(os.homedir(), '.cargo', 'bin')}` },
    });
    if (b.status !== 0) throw new Error('cargo build --release -p switchyard-bench-ledger failed');
  }
  log(`generating ${RECEIPTS} receipts in ${dir}`);
  const tmp = `${dir}.tmp-${process.pid}`;
  const g = spawnSync(gen, [tmp, String(RECEIPTS), '30'], { stdio: 'inherit', timeout: 600_000 });
  if (g.status !== 0) {
    rmSync(tmp, { recursive: true, force: true });
    throw new Error('switchyard-bench-ledger failed');
  }
  rmSync(dir, { recursive: true, force: true });
  spawnSync('mv', [tmp, dir]);
  return dir;
}

/** A gateway on a copy of the bench ledger, stopped at clean-up. */
async function startBenchGateway(sourceLedger) {
  const gw = await startGateway({ seedLedger: sourceLedger, startTimeoutMs: 30_000 });
  cleanups.unshift(() => gw.stop());
  return { url: gw.url, token: gw.adminToken, bin: gw.bin };
}

async function waitQuiet() {
  const end = Date.now() + QUIET_WAIT * 1000;
  let [l1] = loadavg();
  let announced = false;
  while (l1 >= QUIET_LOAD && Date.now() < end) {
    if (!announced) log(`waiting up to ${QUIET_WAIT} s for the 1-min load (${l1}) to drop below ${QUIET_LOAD}`);
    announced = true;
    await sleep(2_000);
    [l1] = loadavg();
  }
  return { load: loadavg(), quiet: l1 < QUIET_LOAD, waited: QUIET_WAIT * 1000 - Math.max(0, end - Date.now()) };
}

// ---------------------------------------------------------------- in the page

/** Installed before the app: frame recorder and long-animation-frame log. */
function pageInit() {
  performance.setResourceTimingBufferSize(5_000);
  try {
    localStorage.setItem('switchyard.onboarding.dismissed', '1');
  } catch {
    // no storage: the view is opened through the navigation instead
  }
  const rec = { on: false, frames: [], loaf: [] };
  window.__bench = rec;
  // The moment the first receipt row is in the DOM (from the time `watch` was called).
  window.__firstRow = (since) =>
    new Promise((resolve) => {
      const found = () => document.querySelector('[data-testid="receipt-row"]');
      if (found()) return resolve(performance.now() - since);
      const mo = new MutationObserver(() => {
        if (found()) {
          mo.disconnect();
          resolve(performance.now() - since);
        }
      });
      mo.observe(document, { childList: true, subtree: true });
    });
  window.__firstRowAtLoad = window.__firstRow(0);
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
          blocking: e.blockingDuration,
          render: e.renderStart ? e.startTime + e.duration - e.renderStart : 0,
          styleLayout: e.styleAndLayoutStart ? e.startTime + e.duration - e.styleAndLayoutStart : 0,
          scripts: (e.scripts ?? []).map((s) => ({
            invoker: s.invoker,
            duration: s.duration,
            forcedStyleAndLayout: s.forcedStyleAndLayoutDuration,
            fn: s.sourceFunctionName,
            src: `${(s.sourceURL || '').split('/').pop()}:${s.sourceCharPosition}`,
          })),
        });
      }
    }).observe({ type: 'long-animation-frame', buffered: false });
  } catch {
    // older Chromium: frame gaps only
  }
}

/** Scrolls the table to its end on every frame until `target` rows are loaded. */
function pageLoadAll({ target, timeoutMs }) {
  const sc = document.querySelector('[data-testid="receipts-scroll"]');
  const table = document.querySelector('[data-testid="receipts-table"]');
  const loaded = () => Number(table.getAttribute('aria-rowcount')) - 1;
  const t0 = performance.now();
  const rec = window.__bench;
  rec.frames = [];
  rec.loaf = [];
  rec.on = true;
  const marks = [];
  let nextMark = 10_000;
  return new Promise((resolve) => {
    const step = () => {
      const n = loaded();
      const now = performance.now();
      while (n >= nextMark && nextMark <= target) {
        marks.push([nextMark, now - t0]);
        nextMark += 10_000;
      }
      if (n >= target || now - t0 > timeoutMs) {
        rec.on = false;
        const fetches = performance
          .getEntriesByType('resource')
          .filter((e) => e.name.includes('/api/receipts?') && e.startTime >= t0)
          .map((e) => ({ ms: e.duration, ttfb: e.responseStart - e.requestStart, bytes: e.encodedBodySize || e.transferSize }));
        resolve({ loaded: n, ms: now - t0, marks, fetches, frames: rec.frames.slice(), loaf: rec.loaf.slice(), more: /more as you scroll/.test(document.querySelector('[data-testid="receipts-count"]').textContent) });
        return;
      }
      sc.scrollTop = sc.scrollHeight;
      requestAnimationFrame(step);
    };
    requestAnimationFrame(step);
  });
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
  const sc = document.querySelector('[data-testid="receipts-scroll"]');
  window.__bench.segments.push([name, performance.now(), sc.scrollTop]);
  performance.mark(`bench:${name}`);
}

/** Drags the scroll position linearly from `from` to `to` (fractions of the range) over `ms`, one step per frame. */
function pageDrag({ from, to, ms }) {
  const sc = document.querySelector('[data-testid="receipts-scroll"]');
  const max = sc.scrollHeight - sc.clientHeight;
  return new Promise((resolve) => {
    const t0 = performance.now();
    const step = (t) => {
      const k = Math.min(1, (t - t0) / ms);
      sc.scrollTop = Math.round(max * (from + (to - from) * k));
      if (k < 1) requestAnimationFrame(step);
      else resolve(sc.scrollTop);
    };
    requestAnimationFrame(step);
  });
}

/** Jumps to a fraction of the range and waits `frames` frames. */
function pageJump({ to, frames }) {
  const sc = document.querySelector('[data-testid="receipts-scroll"]');
  sc.scrollTop = Math.round((sc.scrollHeight - sc.clientHeight) * to);
  return new Promise((resolve) => {
    let n = 0;
    const step = () => (++n >= frames ? resolve(sc.scrollTop) : requestAnimationFrame(step));
    requestAnimationFrame(step);
  });
}

/** Which rows are rendered, and do they cover the viewport at the current scroll position? */
function pageCheck() {
  const sc = document.querySelector('[data-testid="receipts-scroll"]');
  const rows = [...sc.querySelectorAll('[data-testid="receipt-row"]')].map((r) => Number(r.dataset.index));
  const first = Math.floor(sc.scrollTop / 36);
  const last = Math.min(Math.floor((sc.scrollTop + sc.clientHeight - 1) / 36), Number(sc.closest('[data-testid="receipts-table"]').getAttribute('aria-rowcount')) - 2);
  const have = new Set(rows);
  let missing = 0;
  for (let i = first; i <= last; i++) if (!have.has(i)) missing++;
  return {
    rowElements: rows.length,
    elements: document.getElementsByTagName('*').length,
    first,
    last,
    missing,
    scrollTop: sc.scrollTop,
    scrollHeight: sc.scrollHeight,
  };
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
    over33: d.filter((x) => x > 33.4).length,
    over200: d.filter((x) => x > 200).length,
  };
}

function statsLine(s) {
  if (!s) return 'no frames';
  return `${fmt(s.fps)} fps over ${fmt(s.seconds)} s (${s.frames} frames); frame time p50 ${fmt(s.p50)} ms, p95 ${fmt(s.p95)} ms, p99 ${fmt(s.p99)} ms, max ${fmt(s.max)} ms; ${s.over50} frames > 50 ms, ${s.over200} > 200 ms`;
}

function loafSummary(loaf) {
  if (!loaf.length) return [];
  const by = new Map();
  let total = 0;
  let render = 0;
  let styleLayout = 0;
  for (const f of loaf) {
    total += f.duration;
    render += f.render;
    styleLayout += f.styleLayout;
    for (const s of f.scripts) {
      const k = `${s.invoker}${s.fn ? ` → ${s.fn}` : ''} (${s.src})`;
      const e = by.get(k) ?? { ms: 0, n: 0, forced: 0 };
      e.ms += s.duration;
      e.n += 1;
      e.forced += s.forcedStyleAndLayout || 0;
      by.set(k, e);
    }
  }
  const lines = [`${loaf.length} long animation frames (≥ 50 ms), ${fmt(total, 0)} ms in all: ${fmt(render, 0)} ms from render start (rAF, style, layout, paint), ${fmt(styleLayout, 0)} ms in style and layout at the end of frames`];
  for (const [k, e] of [...by].sort((a, b) => b[1].ms - a[1].ms).slice(0, 6)) {
    lines.push(`  ${fmt(e.ms, 0)} ms in ${e.n}× ${k}${e.forced ? `, ${fmt(e.forced, 0)} ms forced style/layout` : ''}`);
  }
  return lines;
}

/** Main-thread time by kind (from a Chromium trace): self time per event name on the page's renderer main thread. */
function traceSummary(trace, frames, window = null) {
  const events = JSON.parse(trace).traceEvents ?? [];
  let from = -Infinity;
  let to = Infinity;
  if (window) {
    const at = (name) => events.find((e) => e.name === `bench:${name}`)?.ts;
    from = at(window.from) ?? Infinity;
    to = at(window.to) ?? -Infinity;
  }
  const mains = new Set(events.filter((e) => e.ph === 'M' && e.name === 'thread_name' && e.args?.name === 'CrRendererMain').map((e) => `${e.pid}:${e.tid}`));
  const byThread = new Map();
  for (const e of events) {
    const k = `${e.pid}:${e.tid}`;
    if (!mains.has(k) || e.ph !== 'X' || typeof e.dur !== 'number' || e.ts < from || e.ts > to) continue;
    if (!byThread.has(k)) byThread.set(k, []);
    byThread.get(k).push(e);
  }
  // The page's main thread is the busiest one.
  let main = [];
  for (const list of byThread.values()) if (list.reduce((a, e) => a + e.dur, 0) > main.reduce((a, e) => a + e.dur, 0)) main = list;
  main.sort((a, b) => a.ts - b.ts || b.dur - a.dur);
  // Self time = duration minus the direct children's durations.
  const selfTime = new Map();
  const stack = [];
  const pop = () => {
    const n = stack.pop();
    selfTime.set(n.e.name, (selfTime.get(n.e.name) ?? 0) + Math.max(0, n.e.dur - n.child));
  };
  let top = 0;
  const layout = { n: 0, dirty: 0, total: 0 };
  const style = { n: 0, elements: 0 };
  for (const e of main) {
    while (stack.length && stack[stack.length - 1].end <= e.ts) pop();
    if (stack.length) stack[stack.length - 1].child += e.dur;
    else top += e.dur;
    stack.push({ e, end: e.ts + e.dur, child: 0 });
    if (e.name === 'Layout') {
      layout.n++;
      layout.dirty += e.args?.beginData?.dirtyObjects ?? 0;
      layout.total += e.args?.beginData?.totalObjects ?? 0;
    }
    if (e.name === 'UpdateLayoutTree') {
      style.n++;
      style.elements += e.args?.elementCount ?? 0;
    }
  }
  while (stack.length) pop();
  const KIND = [
    ['script', /^(FunctionCall|EventDispatch|FireAnimationFrame|TimerFire|RunMicrotasks|EvaluateScript|v8\.|V8\.(?!GC)|FireIdleCallback|XHR|ResourceReceive)/],
    ['garbage collection', /GC|Sweep|Scavenge|MajorGC|MinorGC/],
    ['style', /^(UpdateLayoutTree|RecalculateStyles|ParseAuthorStyleSheet|ScheduleStyleRecalculation|InvalidateLayout)/],
    ['layout', /^(Layout|UpdateLayout|LocalFrameView::)/],
    ['paint, layerize, commit', /^(Paint|PrePaint|Layerize|UpdateLayer|UpdateLayerTree|CompositeLayers|Commit|PaintImage|Decode|HitTest|IntersectionObserverController)/],
  ];
  const kinds = new Map();
  for (const [name, us] of selfTime) {
    const kind = KIND.find(([, re]) => re.test(name))?.[0] ?? 'other';
    kinds.set(kind, (kinds.get(kind) ?? 0) + us);
  }
  const n = Math.max(1, frames);
  const lines = [
    `${window ? window.label : 'Chromium trace of the same repeat'}, renderer main thread: ${fmt(top / 1000, 0)} ms busy in ${n} frames (${fmt(top / 1000 / n)} ms per frame):`,
    '  ' + [...kinds].sort((a, b) => b[1] - a[1]).map(([k, us]) => `${k} ${fmt(us / 1000, 0)} ms (${fmt(us / 1000 / n)} ms/frame)`).join(', '),
    `  ${layout.n} layouts, ${fmt(layout.dirty / Math.max(1, layout.n), 0)} of ${fmt(layout.total / Math.max(1, layout.n), 0)} layout objects dirty on average; ${style.n} style recalcs, ${fmt(style.elements / Math.max(1, style.n), 0)} elements on average`,
    '  self time by trace event, top 10:',
  ];
  for (const [name, us] of [...selfTime].sort((a, b) => b[1] - a[1]).slice(0, 10)) lines.push(`    ${fmt(us / 1000, 0).padStart(6)} ms  ${name}`);
  return lines;
}

/** Self time per function from a V8 CPU profile, plus GC / idle / program. */
function profileSummary(profile, top = 15) {
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const self = new Map();
  const dt = profile.timeDeltas;
  const counts = new Map();
  for (let i = 0; i < profile.samples.length; i++) counts.set(profile.samples[i], (counts.get(profile.samples[i]) ?? 0) + (dt[i] ?? 0));
  let total = 0;
  for (const [id, us] of counts) {
    const n = byId.get(id);
    const cf = n.callFrame;
    const file = cf.url ? cf.url.split('/').pop() : '';
    const k = cf.url ? `${cf.functionName || '(anonymous)'} ${file}:${cf.lineNumber + 1}:${cf.columnNumber + 1}` : cf.functionName || '(native)';
    self.set(k, (self.get(k) ?? 0) + us);
    total += us;
  }
  const idle = self.get('(idle)') ?? 0;
  const busy = total - idle;
  const lines = [`CPU profile of the steady scroll: ${fmt(total / 1000, 0)} ms sampled, main thread busy ${fmt(busy / 1000, 0)} ms (${fmt((busy / total) * 100, 0)} %); self time, top ${top}:`];
  for (const [k, us] of [...self].filter(([k]) => k !== '(idle)').sort((a, b) => b[1] - a[1]).slice(0, top)) {
    lines.push(`  ${fmt(us / 1000, 0).padStart(6)} ms ${fmt((us / busy) * 100, 1).padStart(5)} %  ${k}`);
  }
  return lines;
}

// ----------------------------------------------------------------------- main

async function metrics(cdp) {
  await cdp.send('HeapProfiler.collectGarbage');
  const { metrics: m } = await cdp.send('Performance.getMetrics');
  return Object.fromEntries(m.map((x) => [x.name, x.value]));
}

/** The fixed steady scroll: ~10 s of wheel, drags and jumps over the loaded rows. */
async function steadyScroll(page, box) {
  const cx = box.x + box.width / 2;
  const cy = box.y + box.height / 2;
  await page.mouse.move(cx, cy);
  const wheel = async (dy, ms, label) => {
    await page.evaluate(pageMark, label);
    const end = Date.now() + ms;
    while (Date.now() < end) await page.mouse.wheel(0, dy);
  };
  // Wheel at the top, in the middle and at the end of the range.
  await page.evaluate(pageJump, { to: 0, frames: 2 });
  await wheel(240, 1500, 'wheel down from the top');
  await page.evaluate(pageMark, 'jump to the middle');
  await page.evaluate(pageJump, { to: 0.5, frames: 10 });
  await wheel(240, 1000, 'wheel down in the middle');
  await wheel(-240, 1000, 'wheel up in the middle');
  await page.evaluate(pageMark, 'jump to the end');
  await page.evaluate(pageJump, { to: 1, frames: 10 });
  await wheel(-240, 1500, 'wheel up from the end');
  // Scrollbar drags across the whole range, down and up.
  await page.evaluate(pageMark, 'jump to the top');
  await page.evaluate(pageJump, { to: 0, frames: 10 });
  await page.evaluate(pageMark, 'drag the whole range down');
  await page.evaluate(pageDrag, { from: 0, to: 1, ms: 2000 });
  await page.evaluate(pageMark, 'drag the whole range up');
  await page.evaluate(pageDrag, { from: 1, to: 0, ms: 2000 });
  // Jumps.
  await page.evaluate(pageMark, 'jumps: middle, end, top, 25 %, 75 %, end');
  for (const to of [0.5, 1, 0, 0.25, 0.75, 1]) await page.evaluate(pageJump, { to, frames: 12 });
  await page.evaluate(pageMark, 'end');
}

async function main() {
  const head = git('rev-parse', '--short', 'HEAD');
  const dirty = git('status', '--porcelain', '--', 'ui') ? ' (ui/ has local changes)' : '';
  const ledger = ledgerDir();
  const gw = await startBenchGateway(ledger);
  log(`gateway ${gw.url} (${gw.bin}), ledger copied from ${ledger}`);

  const browser = await chromium.launch({
    executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
    headless: true,
    args: ['--no-sandbox', '--disable-background-networking', '--disable-gpu', '--disable-dev-shm-usage'],
    timeout: 30_000,
  });
  cleanups.unshift(() => browser.close());
  const context = await browser.newContext({ viewport: { width: 1280, height: 800 }, locale: 'en-US', timezoneId: 'UTC', colorScheme: 'light' });
  context.setDefaultTimeout(30_000);
  await context.addInitScript(pageInit);
  const page = await context.newPage();
  const pageErrors = [];
  page.on('pageerror', (e) => pageErrors.push(String(e)));
  const cdp = await context.newCDPSession(page);
  await cdp.send('Performance.enable');

  // Warm the page once (HTTP cache, V8 code cache), so the timing below is a normal open.
  await page.goto(`${gw.url}/spend#token=${gw.token}`);
  await page.getByTestId('view-spend').waitFor();

  const quiet = await waitQuiet();
  log(`load ${quiet.load.join(' ')}${quiet.quiet ? '' : ' (not quiet: measuring anyway)'}`);
  const loadAtStart = loadavg();

  // (1) First rows: a fresh page load at /receipts, and a switch from Spend.
  await page.goto(`${gw.url}/receipts#token=${gw.token}`);
  const firstRowsLoad = await page.evaluate(() => window.__firstRowAtLoad);
  await page.getByTestId('nav-spend').click();
  await page.getByTestId('view-spend').waitFor();
  const firstRowsSwitch = await page.evaluate(() => {
    const t = performance.now();
    const p = window.__firstRow(t);
    document.querySelector('[data-testid="nav-receipts"]').click();
    return p;
  });
  const atFirst = await metrics(cdp);

  // (2) Scroll until every receipt is loaded.
  const load = await page.evaluate(pageLoadAll, { target: RECEIPTS, timeoutMs: LOAD_TIMEOUT_MS });
  if (load.loaded < RECEIPTS) throw new Error(`only ${load.loaded} of ${RECEIPTS} receipts loaded in ${LOAD_TIMEOUT_MS / 1000} s`);
  await page.waitForTimeout(300);
  // (4) Heap and DOM with all rows loaded.
  const atAll = await metrics(cdp);
  const domAll = await page.evaluate(pageCheck);

  // (3) The steady scroll.
  const box = await page.getByTestId('receipts-scroll').boundingBox();
  await page.evaluate(pageRecord, true);
  await steadyScroll(page, box);
  const steady = await page.evaluate(pageRecord, false);
  const domAfter = await page.evaluate(pageCheck);
  const atEnd = await metrics(cdp);
  const loadAtEnd = loadavg();

  const all = frameStats(steady.frames);
  const segs = steady.segments.slice(0, -1).map(([name, t, top], i) => [name, frameStats(steady.frames, t, steady.segments[i + 1][1]), [top / ROW_HEIGHT, steady.segments[i + 1][2] / ROW_HEIGHT]]);
  const rowsMax = Math.max(domAll.rowElements, domAfter.rowElements);
  const missed = [];
  if (!all || all.p95 > P95_LIMIT) missed.push(`p95 frame time ${fmt(all?.p95)} ms > ${TARGETS.p95} ms`);
  if (!all || all.max > TARGETS.max) missed.push(`longest frame ${fmt(all?.max)} ms > ${TARGETS.max} ms`);
  if (rowsMax >= TARGETS.rows) missed.push(`${rowsMax} row elements ≥ ${TARGETS.rows}`);
  if (domAfter.missing) missed.push(`${domAfter.missing} rows of the viewport not rendered after the scroll`);

  let profileLines = [];
  if (PROFILE || missed.length) {
    await cdp.send('Profiler.enable');
    await cdp.send('Profiler.setSamplingInterval', { interval: 200 });
    await browser.startTracing(page, {
      categories: ['devtools.timeline', 'disabled-by-default-devtools.timeline', 'v8.execute', 'blink.user_timing', 'loading', 'latencyInfo'],
    });
    await cdp.send('Profiler.start');
    await page.evaluate(pageRecord, true);
    await steadyScroll(page, box);
    const again = await page.evaluate(pageRecord, false);
    const { profile } = await cdp.send('Profiler.stop');
    const trace = await browser.stopTracing();
    mkdirSync(ARTIFACTS, { recursive: true });
    writeFileSync(path.join(ARTIFACTS, 'receipts-scroll-trace.json'), trace);
    writeFileSync(path.join(ARTIFACTS, 'receipts-scroll.cpuprofile'), JSON.stringify(profile));
    const againStats = frameStats(again.frames);
    const seg = (name) => again.segments.find(([n]) => n === name)?.[1];
    const dragFrames = frameStats(again.frames, seg('drag the whole range down'), seg('jumps: middle, end, top, 25 %, 75 %, end'))?.frames ?? 0;
    profileLines = [
      `Profiled and traced repeat of the steady scroll (both add overhead): ${statsLine(againStats)}`,
      ...traceSummary(trace.toString('utf8'), againStats?.frames ?? 0),
      ...traceSummary(trace.toString('utf8'), dragFrames, { from: 'drag the whole range down', to: 'jumps: middle, end, top, 25 %, 75 %, end', label: 'The scrollbar drags alone' }),
      ...profileSummary(profile),
      `(trace: ${path.join(ARTIFACTS, 'receipts-scroll-trace.json')}, profile: receipts-scroll.cpuprofile; open them in Chromium DevTools → Performance)`,
    ];
  }

  const fetchMs = load.fetches.map((f) => f.ms).sort((a, b) => a - b);
  const ttfb = load.fetches.map((f) => f.ttfb).sort((a, b) => a - b);
  const med = (a) => a[Math.floor(a.length / 2)];
  const loadFrames = frameStats(load.frames);
  const mark = (n) => load.marks.find(([k]) => k === n)?.[1];
  const lines = [
    `Receipts scroll benchmark — ${new Date().toISOString().replace(/\.\d+Z$/, 'Z')}, commit ${head}${dirty}`,
    `Chromium ${browser.version()} headless, 1280×800, --disable-gpu; ${os.cpus().length} CPUs; gateway ${path.relative(REPO_ROOT, gw.bin).startsWith('..') ? gw.bin : path.relative(REPO_ROOT, gw.bin)}`,
    `Ledger: ${RECEIPTS.toLocaleString('en-US')} receipts (copy of ${ledger})`,
    `Load average (1/5/15 min): ${quiet.load.join(' ')} before the measured part${quiet.waited > 1000 ? ` (waited ${fmt(quiet.waited / 1000, 0)} s)` : ''}${quiet.quiet ? '' : ` — NOT QUIET (≥ ${QUIET_LOAD})`}, ${loadAtEnd.join(' ')} after`,
    '',
    `1. First rows: ${fmt(firstRowsLoad, 0)} ms from page load (navigation start → first row), ${fmt(firstRowsSwitch, 0)} ms after switching from Spend`,
    `2. All ${load.loaded.toLocaleString('en-US')} receipts loaded in ${fmt(load.ms / 1000, 2)} s (${fmt(load.loaded / (load.ms / 1000), 0)} rows/s; 10k: ${fmt(mark(10_000) / 1000, 2)} s, 50k: ${fmt(mark(50_000) / 1000, 2)} s, 100k: ${fmt(mark(100_000) / 1000, 2)} s), ${load.more ? 'more pages remain' : 'no more pages'}`,
    `   ${load.fetches.length} page requests: median ${fmt(med(fetchMs), 0)} ms (server ${fmt(med(ttfb), 0)} ms to first byte), max ${fmt(fetchMs[fetchMs.length - 1], 0)} ms, ${fmt(med(load.fetches.map((f) => f.bytes)) / 1024, 0)} KB each`,
    `   frames while loading: ${statsLine(loadFrames)}`,
    ...loafSummary(load.loaf).map((l) => `   ${l}`),
    `3. Steady scroll over the ${load.loaded.toLocaleString('en-US')} loaded rows: ${statsLine(all)}`,
    ...segs.map(([name, s, rows]) => `   ${name.padEnd(42)} ${s ? `${fmt(s.fps, 0).padStart(3)} fps, p50 ${fmt(s.p50)}, p95 ${fmt(s.p95)}, max ${fmt(s.max)} ms, ${s.over50} > 50 ms` : 'no frames'}; row ${rows.map((r) => Math.round(r).toLocaleString('en-US')).join(' → ')}`),
    ...loafSummary(steady.loaf).map((l) => `   ${l}`),
    `4. With all rows loaded: JS heap ${mb(atAll.JSHeapUsedSize)} used (${mb(atFirst.JSHeapUsedSize)} at the first page; ${mb(atEnd.JSHeapUsedSize)} after the scroll), ${atAll.Nodes} DOM nodes (CDP), ${domAll.elements} elements, ${domAll.rowElements} row elements (${domAfter.rowElements} after the scroll); scroll height ${domAll.scrollHeight.toLocaleString('en-US')} px`,
    '',
    `Targets: p95 frame ≤ ${TARGETS.p95} ms (two 60 Hz frames, 33.3 ms + jitter, pass), no frame > ${TARGETS.max} ms in the steady scroll, < ${TARGETS.rows} row elements: ${missed.length ? `MISSED — ${missed.join('; ')}` : 'met'}`,
    ...(pageErrors.length ? ['', `Page errors: ${pageErrors.join(' | ')}`] : []),
    ...(profileLines.length ? ['', ...profileLines] : []),
  ];
  const report = lines.join('\n');
  console.log(report);
  mkdirSync(ARTIFACTS, { recursive: true });
  writeFileSync(path.join(ARTIFACTS, 'receipts-scroll.txt'), `${report}\n`);
  void loadAtStart;
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
  console.error(`receipts-scroll: gave up after ${DEADLINE_MS / 1000} s`);
  await Promise.race([cleanup(), sleep(5_000)]);
  process.exit(2);
}, DEADLINE_MS);

let code = 2;
try {
  code = await main();
} catch (e) {
  console.error(`receipts-scroll failed: ${redact(e?.stack ?? e)}`);
  code = 2;
} finally {
  clearTimeout(deadline);
  await cleanup();
}
log(`done in ${fmt((Date.now() - started) / 1000, 0)} s`);
process.exit(code);
