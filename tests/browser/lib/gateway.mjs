// Starts a real `switchyard serve` on a free loopback port with a temporary
// config and data directory, and reads the admin link from its stderr.
//
// The binary is $SWITCHYARD_BIN, or $CARGO_TARGET_DIR/debug/switchyard
// (CARGO_TARGET_DIR defaults to ~/.cache/switchyard-target); it is built with
// `cargo build -p switchyard` only when missing.
//
// Every child is killed when the test process exits, however it exits.

import { spawn, spawnSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const REPO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');

const children = new Set();
function killAll() {
  for (const c of children) {
    try {
      c.kill('SIGKILL');
    } catch {
      // already gone
    }
  }
  children.clear();
}
process.on('exit', killAll);
for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP']) {
  process.on(sig, () => {
    killAll();
    process.exit(128 + (os.constants.signals[sig] ?? 0));
  });
}

/** Hides admin tokens and gateway keys in text that may be printed. */
export function redact(text) {
  return String(text).replace(/\b(sya?-)[A-Za-z0-9_-]{8,}/g, '$1…');
}

export function switchyardBin() {
  if (process.env.SWITCHYARD_BIN) return process.env.SWITCHYARD_BIN;
  const target = process.env.CARGO_TARGET_DIR || path.join(os.homedir(), '.cache', 'switchyard-target');
  return path.join(target, 'debug', 'switchyard');
}

/** The binary's path; with `build`, runs `cargo build -p switchyard` if it is missing. */
export function ensureBinary({ build = false } = {}) {
  const bin = switchyardBin();
  if (existsSync(bin)) return bin;
  if (process.env.SWITCHYARD_BIN) throw new Error(`SWITCHYARD_BIN=${bin} does not exist`);
  if (!build) throw new Error(`${bin} does not exist: run \`cargo build -p switchyard\` (npm test does it first)`);
  console.error(`# ${bin} is missing: cargo build -p switchyard`);
  const r = spawnSync('cargo', ['build', '-p', 'switchyard'], {
    cwd: REPO_ROOT,
    stdio: 'inherit',
    timeout: 30 * 60_000,
    env: {
      ...process.env,
      PATH: `${process.env.PATH}:${path.join(os.homedir(), '.cargo', 'bin')}`,
      CARGO_TARGET_DIR: path.dirname(path.dirname(bin)),
    },
  });
  if (r.status !== 0 || !existsSync(bin)) throw new Error(`cargo build -p switchyard failed (exit ${r.status})`);
  return bin;
}

export function freePort() {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

/**
 * Starts `switchyard serve`. `config` is the TOML text of the config file;
 * `seedLedger`, a data dir whose ledger (switchyard.db and its WAL) is
 * copied in first, so the original is never written to.
 * Returns { url, port, bin, adminLink, adminToken, configPath, dataDir, api(), receipt(), stop(), restart() }.
 */
export async function startGateway({ config = '', seedLedger = null, startTimeoutMs = 20_000 } = {}) {
  const bin = ensureBinary();
  const dir = mkdtempSync(path.join(os.tmpdir(), 'switchyard-browser-'));
  const configPath = path.join(dir, 'switchyard.toml');
  const dataDir = path.join(dir, 'data');
  writeFileSync(configPath, config);
  if (seedLedger) {
    mkdirSync(dataDir);
    for (const f of ['switchyard.db', 'switchyard.db-wal', 'switchyard.db-shm']) {
      if (existsSync(path.join(seedLedger, f))) copyFileSync(path.join(seedLedger, f), path.join(dataDir, f));
    }
  }

  try {
    return await launchOnFreePort({ bin, dir, configPath, dataDir, startTimeoutMs });
  } catch (e) {
    rmSync(dir, { recursive: true, force: true });
    throw e;
  }
}

const IN_USE = /address already in use|Address in use|os error 98/i;

async function launchOnFreePort(opts, port = null) {
  let lastError = null;
  for (let attempt = 0; attempt < 3; attempt++) {
    try {
      return await launch({ ...opts, port: attempt === 0 && port ? port : await freePort() });
    } catch (e) {
      lastError = e;
      // Another process took the port between probe and bind: try another one.
      if (!IN_USE.test(String(e.message))) break;
    }
  }
  throw lastError;
}

async function launch({ bin, dir, configPath, dataDir, port, startTimeoutMs }) {
  const env = { ...process.env, SWITCHYARD_LOG: process.env.SWITCHYARD_LOG ?? 'info', NO_COLOR: '1' };
  delete env.SWITCHYARD_CONFIG;
  delete env.SWITCHYARD_DATA_DIR;
  const child = spawn(bin, ['serve', '--config', configPath, '--data-dir', dataDir, '--listen', `127.0.0.1:${port}`], {
    env,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  children.add(child);
  let log = '';
  child.stdout.on('data', (d) => (log += d));
  child.stderr.on('data', (d) => (log += d));
  const exited = new Promise((resolve) => child.once('exit', (code, signal) => resolve({ code, signal })));
  exited.then(() => children.delete(child));

  const adminLink = await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`switchyard serve printed no admin link within ${startTimeoutMs} ms:\n${redact(log)}`)), startTimeoutMs);
    const check = () => {
      const m = /Admin link[^\n]*?(http:\/\/127\.0\.0\.1:\d+\/#token=(sya-[A-Za-z0-9_-]+))/.exec(log);
      if (m) {
        clearTimeout(timer);
        resolve(m[1]);
      }
    };
    child.stderr.on('data', check);
    child.stdout.on('data', check);
    exited.then(({ code, signal }) => {
      clearTimeout(timer);
      reject(new Error(`switchyard serve exited (${code ?? signal}) before printing the admin link:\n${redact(log)}`));
    });
  });
  const adminToken = /#token=(sya-[A-Za-z0-9_-]+)/.exec(adminLink)[1];
  const url = `http://127.0.0.1:${port}`;

  // A debug binary serves ui/dist from disk: it must have been built.
  const index = await fetch(`${url}/`).then((r) => r.text(), () => '');
  if (!/<script[^>]+src=/.test(index)) {
    child.kill('SIGKILL');
    throw new Error('switchyard serve has no web UI to serve at /: build it first (npm --prefix ui ci && npm --prefix ui run build)');
  }

  async function api(method, p, body) {
    const res = await fetch(url + p, {
      method,
      headers: { Authorization: `Bearer ${adminToken}`, ...(body !== undefined ? { 'Content-Type': 'application/json' } : {}) },
      body: body !== undefined ? JSON.stringify(body) : undefined,
    });
    const text = await res.text();
    let json = null;
    try {
      json = text ? JSON.parse(text) : null;
    } catch {
      json = null;
    }
    if (!res.ok) throw new Error(`${method} ${p} → ${res.status}: ${text}`);
    return json;
  }

  /** Waits until /api/receipts/{id} is final (the ledger writer batches for a moment). */
  async function receipt(id, timeoutMs = 5_000) {
    const end = Date.now() + timeoutMs;
    for (;;) {
      try {
        const r = await api('GET', `/api/receipts/${encodeURIComponent(id)}`);
        if (r.status !== 'pending') return r;
      } catch (e) {
        if (Date.now() > end) throw e;
      }
      if (Date.now() > end) throw new Error(`receipt ${id} is still pending`);
      await new Promise((r) => setTimeout(r, 100));
    }
  }

  /** SIGTERM (a normal stop: the ledger commits everything), SIGKILL after 5 s. */
  async function halt() {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGTERM');
      const t = setTimeout(() => child.kill('SIGKILL'), 5_000);
      await exited;
      clearTimeout(t);
    }
    children.delete(child);
  }

  let handedOver = false;
  async function stop() {
    await halt();
    if (!handedOver) rmSync(dir, { recursive: true, force: true });
  }

  /**
   * Stops this serve and starts another on the same config and data dir (the
   * app closed and opened again), on the same port when it is still free.
   * Returns the new gateway; from then on, this one's stop() leaves the
   * directory to it.
   */
  async function restart() {
    await halt();
    handedOver = true;
    try {
      return await launchOnFreePort({ bin, dir, configPath, dataDir, startTimeoutMs }, port);
    } catch (e) {
      rmSync(dir, { recursive: true, force: true });
      throw e;
    }
  }

  return {
    url,
    port,
    bin,
    adminLink,
    adminToken,
    configPath,
    dataDir,
    api,
    receipt,
    stop,
    restart,
    log: () => redact(log),
    configText: () => readFileSync(configPath, 'utf8'),
  };
}
