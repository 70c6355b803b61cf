// Runs each agent in its interactive terminal UI (in a private tmux server),
// types one prompt, waits for the answer on screen, lets it idle a little and
// quits, recording every request it sent on the way. Interactive sessions
// make side requests that one-shot runs do not (titles, summaries, model
// lists), and a user meets the gateway this way first.
//
//   fixtures/<client>/<scenario>/NN-<endpoint>.json
//   fixtures/<client>/<scenario>/screen.txt      the last screen, redacted
//
// Scenarios: "interactive" for each client, set up as lib/clients.mjs sets
// it up; for Claude Code also "interactive-all-traffic", the same without
// CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC (telemetry, error reporting and
// the updater stay off one by one), which is how most users run it and
// which adds a connectivity check and a session-title request.
//
//   timeout 600 node capture-interactive.mjs [claude|codex|gemini ...]
//
// Needs tmux. Every tmux server it starts has its own socket and is killed
// at the end, whatever happens.

import { execFile } from "node:child_process";
import { mkdir, rm, writeFile } from "node:fs/promises";
import path from "node:path";
import { promisify } from "node:util";
import { fileURLToPath } from "node:url";
import { startCaptureServer } from "./lib/capture.mjs";
import { AGENTS_DIR, clientBin, makeHome, setupClaude, setupCodex, setupGemini } from "./lib/clients.mjs";
import { makeRedactor, requestKind } from "./lib/redact.mjs";

const run = promisify(execFile);
const HERE = path.dirname(fileURLToPath(import.meta.url));
const API_KEY = "sk-capture-interactive-0123456789";
const PROMPT = "Say hello in one short sentence.";
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

const CLIENTS = {
  claude: {
    model: "claude-sonnet-4-6",
    async setup(opts, home, cwd, scenario) {
      const { env } = await setupClaude(opts, home);
      if (scenario === "interactive-all-traffic") delete env.CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC;
      // What the first-run screens would store: onboarding done, this key
      // approved, this folder trusted. Without it the UI stops at those
      // screens and no model request is made.
      await writeFile(
        path.join(home, ".claude.json"),
        JSON.stringify({
          hasCompletedOnboarding: true,
          theme: "dark",
          customApiKeyResponses: { approved: [API_KEY.slice(-20)], rejected: [] },
          projects: { [cwd]: { hasTrustDialogAccepted: true, hasCompletedProjectOnboarding: true } },
        }),
      );
      return { env, args: ["--model", opts.model] };
    },
    quit: [["Escape"], ["/exit", "Enter"]],
    scenarios: ["interactive", "interactive-all-traffic"],
  },
  codex: {
    // Its own default model: for an older one the UI first offers an
    // upgrade and waits for a choice.
    model: undefined,
    async setup(opts, home, cwd) {
      const extraConfig = `\n[projects.${JSON.stringify(cwd)}]\ntrust_level = "trusted"\n`;
      const { env } = await setupCodex({ ...opts, extraConfig }, home);
      return { env, args: ["-C", cwd, "--sandbox", "read-only", "--ask-for-approval", "never"] };
    },
    quit: [["C-c"], ["C-c"]],
  },
  gemini: {
    model: "gemini-2.5-flash",
    async setup(opts, home) {
      const { env } = await setupGemini(opts, home);
      return { env, args: ["-m", opts.model] };
    },
    quit: [["/quit", "Enter"]],
  },
};

async function tmux(socket, ...args) {
  const { stdout } = await run("tmux", ["-L", socket, ...args], { timeout: 10_000 });
  return stdout;
}

async function captureClient(name, scenario) {
  const spec = CLIENTS[name];
  const tmp = await makeHome(`interactive-${name}-`);
  const home = path.join(tmp.home, "home");
  const cwd = path.join(tmp.home, "work");
  await mkdir(cwd, { recursive: true });
  const srv = await startCaptureServer({ lifetimeMs: 240_000 });
  const socket = `switchyard-capture-${process.pid}-${name}`;
  let screen = "";
  let answered = false;
  try {
    const opts = { baseUrl: srv.url, apiKey: API_KEY, model: spec.model, cwd };
    const { env, args } = await spec.setup(opts, home, cwd, scenario);
    // env -i: the client sees exactly this environment, not the tmux
    // server's.
    const envArgs = Object.entries({ ...env, TERM: "xterm-256color" }).map(([k, v]) => `${k}=${v}`);
    await tmux(socket, "new-session", "-d", "-s", "c", "-x", "200", "-y", "50", "-c", cwd,
      "env", "-i", ...envArgs, clientBin(name), ...args);
    const screenNow = async () => (screen = await tmux(socket, "capture-pane", "-p", "-t", "c").catch(() => screen));

    await sleep(10000); // the UI draws its first screen
    await screenNow();
    await tmux(socket, "send-keys", "-t", "c", "-l", PROMPT);
    await sleep(500);
    await tmux(socket, "send-keys", "-t", "c", "Enter");
    for (let i = 0; i < 60 && !answered; i++) {
      await sleep(1000);
      answered = (await screenNow()).includes(srv.options.answer);
      // A UI still starting can drop the first Enter; press it once more.
      if (i === 20 && srv.requests.length === 0) await tmux(socket, "send-keys", "-t", "c", "Enter");
    }
    await sleep(15000); // side requests that follow an answer (titles, summaries)
    await screenNow();
    for (const keys of spec.quit) {
      await tmux(socket, "send-keys", "-t", "c", ...keys).catch(() => {});
      await sleep(1500);
    }
  } finally {
    await tmux(socket, "kill-server").catch(() => {});
    // Codex's UI starts an app-server daemon that detaches from the
    // terminal, and Gemini CLI's UI outlives the tmux server; both run from
    // this run's own HOME or working dir, which names them.
    await killProcessesUnder(tmp.home);
    await srv.close();
  }

  const redact = makeRedactor({
    secrets: [API_KEY],
    paths: [[cwd, "<WORKDIR>"], [home, "<HOME>"], [tmp.home, "<TMPROOT>"], [AGENTS_DIR, "<AGENTS_DIR>"]],
    port: srv.port,
  });
  const dir = path.join(HERE, "fixtures", name, scenario);
  await rm(dir, { recursive: true, force: true });
  await mkdir(dir, { recursive: true });
  const { version } = await import(path.join(AGENTS_DIR, "node_modules", pkgOf(name), "package.json"), {
    with: { type: "json" },
  }).then((m) => m.default);
  for (const [i, r] of srv.requests.entries()) {
    const request = redact(r);
    const file = `${String(i + 1).padStart(2, "0")}-${requestKind(request)}.json`;
    await writeFile(
      path.join(dir, file),
      JSON.stringify(
        {
          client: `${pkgOf(name)}@${version}`,
          scenario,
          about:
            scenario === "interactive"
              ? "interactive UI, one typed prompt, idle, quit"
              : "interactive UI without CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC, one typed prompt, idle, quit",
          request_in_scenario: i + 1,
          requests_in_scenario: srv.requests.length,
          request,
          capture_server_answer: r.answer ? redact({ url: "/", body: r.answer }).body : null,
        },
        null,
        2,
      ) + "\n",
    );
  }
  await writeFile(path.join(dir, "screen.txt"), redact({ url: "/", body: screen }).body);
  await tmp.cleanup();
  console.log(`${name} ${scenario}: answered=${answered} requests=${srv.requests.map((r) => `${r.method} ${r.url}`).join(", ")}`);
  return answered;
}

/** Kills, by pid, every process whose command line or cwd lies under `dir`. */
async function killProcessesUnder(dir) {
  const { readdir, readFile, readlink } = await import("node:fs/promises");
  for (let round = 0; round < 2; round++) {
    for (const pid of (await readdir("/proc")).filter((d) => /^\d+$/.test(d))) {
      if (Number(pid) === process.pid) continue;
      const cmd = await readFile(`/proc/${pid}/cmdline`, "utf8").catch(() => "");
      const cwd = await readlink(`/proc/${pid}/cwd`).catch(() => "");
      if (cmd.includes(dir) || cwd.startsWith(dir)) {
        try {
          process.kill(Number(pid), round === 0 ? "SIGTERM" : "SIGKILL");
        } catch {
          // gone already
        }
      }
    }
    await sleep(1500);
  }
}

function pkgOf(name) {
  return { claude: "@anthropic-ai/claude-code", codex: "@openai/codex", gemini: "@google/gemini-cli" }[name];
}

const names = process.argv.slice(2).length ? process.argv.slice(2) : Object.keys(CLIENTS);
let ok = true;
for (const n of names) {
  for (const scenario of CLIENTS[n].scenarios ?? ["interactive"]) ok = (await captureClient(n, scenario)) && ok;
}
process.exit(ok ? 0 : 1);
