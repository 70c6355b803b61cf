// Runs the three coding agents (Claude Code, Codex CLI, Gemini CLI) the way
// a user would point them at a gateway: the documented environment
// variables and config files only, each in a fresh HOME so nothing of the
// machine's own login, settings or history leaks in, with telemetry, update
// checks and auto-updates off, non-interactive, one prompt, bounded in time.
//
// Invariant: every process started here is in its own process group and is
// killed (group-wide) when it exits, times out, or the caller's run ends; a
// run never leaves a client behind.

import { spawn } from "node:child_process";
import { mkdtemp, mkdir, rm, writeFile } from "node:fs/promises";
import { existsSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";

const HERE = path.dirname(fileURLToPath(import.meta.url));
export const AGENTS_DIR = path.resolve(HERE, "..");
const BIN = path.join(AGENTS_DIR, "node_modules", ".bin");

export const CLIENTS = ["claude", "codex", "gemini"];

/** The bins of the pinned clients; `npm ci` in tests/agents installs them. */
export function clientBin(name) {
  const bin = path.join(BIN, name);
  if (!existsSync(bin)) {
    throw new Error(`${bin} is missing: run \`npm ci\` in ${AGENTS_DIR}`);
  }
  return bin;
}

/**
 * A fresh HOME for one run. The caller removes it with `cleanup()` (or keeps
 * it for a look when `keep` is set).
 */
export async function makeHome(prefix = "switchyard-agent-") {
  const home = await mkdtemp(path.join(os.tmpdir(), prefix));
  return {
    home,
    async cleanup() {
      await rm(home, { recursive: true, force: true });
    },
  };
}

/**
 * The environment every client starts from: the machine's PATH and locale,
 * nothing else of the caller's (no stray OPENAI_/ANTHROPIC_/GEMINI_ keys,
 * proxies or CI flags that change a client's behaviour).
 */
function baseEnv(home) {
  const keep = ["PATH", "LANG", "LC_ALL", "TERM", "TZ", "SHELL", "USER", "LOGNAME"];
  const env = {};
  for (const k of keep) if (process.env[k]) env[k] = process.env[k];
  env.HOME = home;
  env.XDG_CONFIG_HOME = path.join(home, ".config");
  env.XDG_CACHE_HOME = path.join(home, ".cache");
  env.XDG_DATA_HOME = path.join(home, ".local", "share");
  env.XDG_STATE_HOME = path.join(home, ".local", "state");
  env.TMPDIR = path.join(home, "tmp");
  env.NO_COLOR = "1";
  // Loopback must never go through a proxy, even if one is configured.
  env.NO_PROXY = "127.0.0.1,localhost,::1";
  return env;
}

async function prepareHome(home) {
  for (const d of [".config", ".cache", ".local/share", ".local/state", "tmp"]) {
    await mkdir(path.join(home, d), { recursive: true });
  }
}

/**
 * Spawns `cmd args` with `env` in `cwd`, stdin closed, and collects output.
 * Kills the whole process group after `timeoutMs`.
 * Resolves { exitCode, signal, timedOut, stdout, stderr, durationMs }.
 */
export function runProcess(cmd, args, { cwd, env, timeoutMs }) {
  return new Promise((resolve) => {
    const started = Date.now();
    const child = spawn(cmd, args, {
      cwd,
      env,
      stdio: ["ignore", "pipe", "pipe"],
      detached: true,
    });
    let stdout = "";
    let stderr = "";
    let timedOut = false;
    child.stdout.on("data", (c) => (stdout += c));
    child.stderr.on("data", (c) => (stderr += c));

    const killGroup = (sig) => {
      try {
        process.kill(-child.pid, sig);
      } catch {
        // already gone
      }
    };
    const timer = setTimeout(() => {
      timedOut = true;
      killGroup("SIGTERM");
      setTimeout(() => killGroup("SIGKILL"), 3000).unref();
    }, timeoutMs);
    const onParentExit = () => killGroup("SIGKILL");
    process.once("exit", onParentExit);

    child.on("error", (err) => {
      clearTimeout(timer);
      process.removeListener("exit", onParentExit);
      resolve({ exitCode: null, signal: null, timedOut, stdout, stderr: stderr + String(err), durationMs: Date.now() - started });
    });
    child.on("close", (code, signal) => {
      clearTimeout(timer);
      process.removeListener("exit", onParentExit);
      // Helpers a client left running (language servers, MCP children) go too.
      killGroup("SIGKILL");
      resolve({ exitCode: code, signal, timedOut, stdout, stderr, durationMs: Date.now() - started });
    });
  });
}

// ---------------------------------------------------------------------------
// Claude Code

/**
 * Claude Code: `ANTHROPIC_BASE_URL` (no /v1, the client adds it) plus
 * `ANTHROPIC_API_KEY` (sent as x-api-key) or `ANTHROPIC_AUTH_TOKEN` (sent as
 * Authorization: Bearer); `claude -p` prints the answer and exits.
 *
 * A missing `model` leaves the client on its own default.
 *
 * opts: baseUrl, apiKey, model, cwd, prompt, [authToken: true to use
 * ANTHROPIC_AUTH_TOKEN], [smallModel], [tools: list for --allowedTools],
 * [home], [timeoutMs], [extraArgs], [extraEnv]
 */
export async function runClaude(opts) {
  return withHome(opts, "switchyard-claude-", async (home) => {
    const { env } = await setupClaude(opts, home);
    const args = ["-p", opts.prompt, "--output-format", "text"];
    if (opts.model) args.push("--model", opts.model);
    if (opts.tools?.length) args.push("--allowedTools", opts.tools.join(","));
    args.push(...(opts.extraArgs ?? []));
    return runProcess(clientBin("claude"), args, { cwd: opts.cwd, env, timeoutMs: opts.timeoutMs ?? 120_000 });
  });
}

/** The environment Claude Code runs with; Claude Code needs no config file. */
export async function setupClaude(opts, home) {
  await prepareHome(home);
  const env = {
    ...baseEnv(home),
    ANTHROPIC_BASE_URL: opts.baseUrl,
    // Telemetry (Statsig), error reporting (Sentry), the auto-updater and
    // the feedback command, each off; the last one is the umbrella switch.
    DISABLE_TELEMETRY: "1",
    DISABLE_ERROR_REPORTING: "1",
    DISABLE_AUTOUPDATER: "1",
    DISABLE_BUG_COMMAND: "1",
    CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC: "1",
    ...(opts.extraEnv ?? {}),
  };
  if (opts.authToken) env.ANTHROPIC_AUTH_TOKEN = opts.apiKey;
  else env.ANTHROPIC_API_KEY = opts.apiKey;
  if (opts.smallModel) env.ANTHROPIC_DEFAULT_HAIKU_MODEL = opts.smallModel;
  return { env };
}

/** Runs `fn(home)` in opts.home, or in a fresh temp HOME removed afterwards. */
async function withHome(opts, prefix, fn) {
  const own = opts.home ? null : await makeHome(prefix);
  try {
    return await fn(opts.home ?? own.home);
  } finally {
    if (own && !opts.keepHome) await own.cleanup();
  }
}

// ---------------------------------------------------------------------------
// Codex CLI

/** The config.toml that points Codex at a Responses API at `baseUrl`. */
export function codexConfig({ baseUrl, model, envKey = "SWITCHYARD_API_KEY", providerId = "switchyard" }) {
  const v1 = baseUrl.replace(/\/+$/, "").replace(/\/v1$/, "") + "/v1";
  return [
    ...(model ? [`model = ${JSON.stringify(model)}`] : []),
    `model_provider = ${JSON.stringify(providerId)}`,
    // No update check against the release feed at start.
    `check_for_update_on_startup = false`,
    ``,
    `[model_providers.${providerId}]`,
    `name = "Switchyard"`,
    `base_url = ${JSON.stringify(v1)}`,
    `env_key = ${JSON.stringify(envKey)}`,
    `wire_api = "responses"`,
    ``,
    // Usage analytics and the feedback uploader, off.
    `[analytics]`,
    `enabled = false`,
    ``,
    `[feedback]`,
    `enabled = false`,
    ``,
  ].join("\n");
}

/**
 * Codex CLI: a custom model provider in `$CODEX_HOME/config.toml` whose
 * base_url ends in /v1 (Codex appends /responses), the key in the variable
 * named by env_key; `codex exec` runs one prompt and prints the last answer
 * on stdout.
 *
 * opts: baseUrl, apiKey, model, cwd, prompt, [sandbox: read-only |
 * workspace-write | danger-full-access], [home], [timeoutMs], [extraArgs],
 * [extraConfig: TOML appended to config.toml]
 */
export async function runCodex(opts) {
  return withHome(opts, "switchyard-codex-", async (home) => {
    const { env } = await setupCodex(opts, home);
    const args = [
      "exec",
      "--skip-git-repo-check",
      "--color",
      "never",
      "-C",
      opts.cwd,
      "--sandbox",
      opts.sandbox ?? "read-only",
      ...(opts.extraArgs ?? []),
      opts.prompt,
    ];
    return runProcess(clientBin("codex"), args, { cwd: opts.cwd, env, timeoutMs: opts.timeoutMs ?? 120_000 });
  });
}

/** Writes $CODEX_HOME/config.toml and returns the environment Codex runs with. */
export async function setupCodex(opts, home) {
  await prepareHome(home);
  const codexHome = path.join(home, ".codex");
  await mkdir(codexHome, { recursive: true });
  await writeFile(
    path.join(codexHome, "config.toml"),
    codexConfig({ baseUrl: opts.baseUrl, model: opts.model }) + (opts.extraConfig ?? ""),
  );
  const env = {
    ...baseEnv(home),
    CODEX_HOME: codexHome,
    SWITCHYARD_API_KEY: opts.apiKey,
    ...(opts.extraEnv ?? {}),
  };
  return { env, codexHome };
}

// ---------------------------------------------------------------------------
// Gemini CLI

/** ~/.gemini/settings.json: API-key auth chosen, telemetry and updates off. */
export function geminiSettings() {
  return {
    security: { auth: { selectedType: "gemini-api-key" } },
    privacy: { usageStatisticsEnabled: false },
    telemetry: { enabled: false },
    general: { enableAutoUpdate: false, enableAutoUpdateNotification: false },
  };
}

/**
 * Gemini CLI: `GOOGLE_GEMINI_BASE_URL` (no /v1beta, the client adds it) and
 * `GEMINI_API_KEY` (sent as x-goog-api-key); `gemini -p` prints the answer.
 *
 * opts: baseUrl, apiKey, model, cwd, prompt, [yolo: auto-approve tools],
 * [home], [timeoutMs], [extraArgs], [extraEnv]
 */
export async function runGemini(opts) {
  return withHome(opts, "switchyard-gemini-", async (home) => {
    const { env } = await setupGemini(opts, home);
    const args = ["-p", opts.prompt, "--output-format", "text"];
    if (opts.model) args.push("-m", opts.model);
    if (opts.yolo) args.push("--approval-mode", "yolo");
    args.push(...(opts.extraArgs ?? []));
    return runProcess(clientBin("gemini"), args, { cwd: opts.cwd, env, timeoutMs: opts.timeoutMs ?? 120_000 });
  });
}

/** Writes ~/.gemini/settings.json and returns the environment Gemini CLI runs with. */
export async function setupGemini(opts, home) {
  await prepareHome(home);
  const dir = path.join(home, ".gemini");
  await mkdir(dir, { recursive: true });
  await writeFile(path.join(dir, "settings.json"), JSON.stringify(geminiSettings(), null, 2) + "\n");
  const env = {
    ...baseEnv(home),
    GOOGLE_GEMINI_BASE_URL: opts.baseUrl,
    GEMINI_API_KEY: opts.apiKey,
    // Headless runs in a fresh dir would otherwise be an untrusted folder.
    GEMINI_CLI_TRUST_WORKSPACE: "true",
    ...(opts.extraEnv ?? {}),
  };
  return { env };
}

export const RUNNERS = { claude: runClaude, codex: runCodex, gemini: runGemini };
