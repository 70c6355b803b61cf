// Starts a real `switchyard serve` for the agents to talk to: a temp config
// and data dir, one channel in front of one upstream, a route per model name
// the agents ask for, a gateway key made with `switchyard key create`, and
// the admin token read from the admin link serve prints on stderr.
//
// The binary is $SWITCHYARD_BIN, or $CARGO_TARGET_DIR/debug/switchyard
// (CARGO_TARGET_DIR defaults to ~/.cache/switchyard-target); build it with
// `cargo build -p switchyard`.
//
// Invariant: serve runs in its own process group, is stopped by `stop()`, by
// its `lifetimeMs`, and when this process exits, whichever comes first.

import { spawn, spawnSync } from "node:child_process";
import { existsSync } from "node:fs";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";

export function switchyardBin() {
  if (process.env.SWITCHYARD_BIN) return process.env.SWITCHYARD_BIN;
  const target = process.env.CARGO_TARGET_DIR || path.join(os.homedir(), ".cache", "switchyard-target");
  return path.join(target, "debug", "switchyard");
}

/** Hides admin tokens and gateway keys in text that may be printed. */
export function redact(text) {
  return String(text).replace(/\b(sya?-)[A-Za-z0-9_-]{8,}/g, "$1…");
}

/** The channel type and base_url for an upstream of each provider kind. */
const CHANNEL = {
  openai: (url) => ({ type: "openai-compatible", base_url: `${url}/v1` }),
  anthropic: (url) => ({ type: "anthropic", base_url: url }),
  gemini: (url) => ({ type: "gemini", base_url: `${url}/v1beta` }),
};

/**
 * The TOML config: one channel `channelId` of `kind` at `upstreamUrl`,
 * whose secret comes from the variable `secretEnv`, and one route per entry
 * of `routes` ({ requested model name: upstream model name }).
 */
export function gatewayConfig({ kind, upstreamUrl, channelId, secretEnv, routes }) {
  const ch = CHANNEL[kind](upstreamUrl);
  const lines = [
    `[buckets.credit]`,
    `currency = "USD"`,
    ``,
    `[[channels]]`,
    `id = ${JSON.stringify(channelId)}`,
    `type = ${JSON.stringify(ch.type)}`,
    `base_url = ${JSON.stringify(ch.base_url)}`,
    `bucket = "credit"`,
    `secret = ${JSON.stringify(`env:${secretEnv}`)}`,
    ``,
  ];
  for (const [model, upstream] of Object.entries(routes)) {
    lines.push(
      `[[routes]]`,
      `model = ${JSON.stringify(model)}`,
      `targets = [{ channel = ${JSON.stringify(channelId)}, model = ${JSON.stringify(upstream)}, price = { input = 1, output = 2 } }]`,
      ``,
    );
  }
  return lines.join("\n");
}

function cli(bin, args, env) {
  const r = spawnSync(bin, args, { env, encoding: "utf8", timeout: 20_000 });
  if (r.status !== 0) {
    throw new Error(`switchyard ${args.join(" ")} failed (${r.status ?? r.signal ?? r.error}):\n${redact(r.stderr)}`);
  }
  return r.stdout;
}

/**
 * Starts serve for one upstream. opts: kind (openai | anthropic | gemini),
 * upstreamUrl, routes, upstreamSecret, [keyName], [startTimeoutMs],
 * [lifetimeMs].
 * Returns { url, adminToken, key, keyName, channelId, api(), receipts(), log(), stop() }.
 */
export async function startSwitchyard(opts) {
  const bin = switchyardBin();
  if (!existsSync(bin)) throw new Error(`${bin} does not exist: run \`cargo build -p switchyard\``);
  const dir = await mkdtemp(path.join(os.tmpdir(), "switchyard-agents-gw-"));
  const configPath = path.join(dir, "switchyard.toml");
  const dataDir = path.join(dir, "data");
  const channelId = `up-${opts.kind}`;
  const secretEnv = "SWITCHYARD_AGENTS_UPSTREAM_KEY";
  await writeFile(
    configPath,
    gatewayConfig({ kind: opts.kind, upstreamUrl: opts.upstreamUrl, channelId, secretEnv, routes: opts.routes }),
  );
  const env = { ...process.env, [secretEnv]: opts.upstreamSecret, SWITCHYARD_LOG: process.env.SWITCHYARD_LOG ?? "info", NO_COLOR: "1" };
  delete env.SWITCHYARD_CONFIG;
  delete env.SWITCHYARD_DATA_DIR;
  const base = ["--config", configPath, "--data-dir", dataDir];

  let child = null;
  try {
    const keyName = opts.keyName ?? "agents-test";
    // The key is printed alone on the last line of stdout.
    const key = cli(bin, [...base, "key", "create", keyName], env).trim().split("\n").pop().trim();
    if (!/^sy-/.test(key)) throw new Error(`switchyard key create printed no key: ${redact(key)}`);
    cli(bin, [...base, "topup", "credit", "100", "--note", "agents test"], env);

    child = spawn(bin, [...base, "serve", "--listen", "127.0.0.1:0"], {
      env,
      stdio: ["ignore", "pipe", "pipe"],
      detached: true,
    });
    let log = "";
    child.stdout.on("data", (d) => (log += d));
    child.stderr.on("data", (d) => (log += d));
    const exited = new Promise((resolve) => child.once("exit", (code, signal) => resolve({ code, signal })));
    const killGroup = (sig) => {
      try {
        process.kill(-child.pid, sig);
      } catch {
        // already gone
      }
    };
    const onParentExit = () => killGroup("SIGKILL");
    process.once("exit", onParentExit);
    const lifetime = setTimeout(() => killGroup("SIGKILL"), opts.lifetimeMs ?? 5 * 60_000);
    lifetime.unref();
    exited.then(() => {
      clearTimeout(lifetime);
      process.removeListener("exit", onParentExit);
    });

    const startTimeoutMs = opts.startTimeoutMs ?? 20_000;
    const adminLink = await new Promise((resolve, reject) => {
      const timer = setTimeout(
        () => reject(new Error(`switchyard serve printed no admin link within ${startTimeoutMs} ms:\n${redact(log)}`)),
        startTimeoutMs,
      );
      const check = () => {
        const m = /Admin link[^\n]*?(http:\/\/127\.0\.0\.1:\d+\/#token=(sya-[A-Za-z0-9_-]+))/.exec(log);
        if (m) {
          clearTimeout(timer);
          resolve(m[1]);
        }
      };
      child.stderr.on("data", check);
      child.stdout.on("data", check);
      exited.then(({ code, signal }) => {
        clearTimeout(timer);
        reject(new Error(`switchyard serve exited (${code ?? signal}) before printing the admin link:\n${redact(log)}`));
      });
    });
    const url = new URL(adminLink).origin;
    const adminToken = /#token=(sya-[A-Za-z0-9_-]+)/.exec(adminLink)[1];

    async function api(method, p) {
      const res = await fetch(url + p, { method, headers: { Authorization: `Bearer ${adminToken}` } });
      const text = await res.text();
      if (!res.ok) throw new Error(`${method} ${p} → ${res.status}: ${text}`);
      return JSON.parse(text);
    }

    /**
     * Every receipt, newest first, once none is pending and at least `atLeast`
     * exist (the ledger writer batches for a moment), or whatever there is
     * after `timeoutMs`.
     */
    async function receipts({ atLeast = 0, timeoutMs = 10_000, status } = {}) {
      const end = Date.now() + timeoutMs;
      const q = `/api/receipts?limit=500${status ? `&status=${status}` : ""}`;
      for (;;) {
        const rows = (await api("GET", q)).receipts;
        const settled = rows.length >= atLeast && !rows.some((r) => r.status === "pending");
        if (settled || Date.now() > end) return rows;
        await new Promise((r) => setTimeout(r, 150));
      }
    }

    async function stop() {
      if (child.exitCode === null && child.signalCode === null) {
        killGroup("SIGTERM");
        const t = setTimeout(() => killGroup("SIGKILL"), 5_000);
        await exited;
        clearTimeout(t);
      }
      killGroup("SIGKILL");
      await rm(dir, { recursive: true, force: true });
    }

    return { url, adminToken, key, keyName, channelId, api, receipts, log: () => redact(log), stop };
  } catch (err) {
    if (child) {
      try {
        process.kill(-child.pid, "SIGKILL");
      } catch {
        // already gone
      }
    }
    await rm(dir, { recursive: true, force: true });
    throw err;
  }
}
