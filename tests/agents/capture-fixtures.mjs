// Runs each pinned agent against the capture server, scenario by scenario,
// and writes every request it sent as a redacted fixture:
//
//   fixtures/<client>/NN-<scenario>-<endpoint>.json   one request each
//   fixtures/<client>/runs.json                       exit code and output per scenario
//
//   timeout 900 node capture-fixtures.mjs [claude|codex|gemini ...]
//
// A scenario whose client does not exit 0 with the expected answer is
// reported and makes the script exit 1, but its requests are still written,
// since what a failing client sent is what one needs to see.

import { mkdir, readFile, readdir, rm, writeFile } from "node:fs/promises";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { startCaptureServer } from "./lib/capture.mjs";
import { AGENTS_DIR, RUNNERS, makeHome } from "./lib/clients.mjs";
import { makeRedactor, requestKind } from "./lib/redact.mjs";

const HERE = path.dirname(fileURLToPath(import.meta.url));
const FIXTURES = path.join(HERE, "fixtures");
const API_KEY = "sk-capture-0123456789abcdef";
export const TOOL_FILE = "notes.txt";
export const TOOL_FILE_CONTENT = "pineapple-42";
export const TOOL_PROMPT = `CAPTURE_TOOL_TEST: read the file ${TOOL_FILE} in the current directory and tell me what it says.`;
export const PLAIN_PROMPT = "Say hello in one short sentence.";

const PACKAGES = {
  claude: "@anthropic-ai/claude-code",
  codex: "@openai/codex",
  gemini: "@google/gemini-cli",
};

/** What each client is asked to do; `expect` is what its stdout must hold. */
export const SCENARIOS = {
  claude: [
    { name: "plain", model: "claude-sonnet-4-6", prompt: PLAIN_PROMPT, expect: "answer",
      about: "one-shot prompt, ANTHROPIC_API_KEY" },
    { name: "auth-token", model: "claude-sonnet-4-6", prompt: PLAIN_PROMPT, expect: "answer", authToken: true,
      about: "one-shot prompt, ANTHROPIC_AUTH_TOKEN instead of ANTHROPIC_API_KEY" },
    { name: "tool", model: "claude-sonnet-4-6", prompt: TOOL_PROMPT, expect: "tool", tools: ["Read"],
      about: "the server answers with a Read tool_use, then with text once the tool_result comes back" },
    { name: "route-model", model: "switchyard-route", prompt: PLAIN_PROMPT, expect: "answer",
      about: "a model name Claude Code does not know, as a gateway route would be" },
    { name: "default-model", model: null, prompt: PLAIN_PROMPT, expect: "answer",
      about: "no --model: the model Claude Code picks by itself" },
    { name: "no-experimental-betas", model: null, prompt: PLAIN_PROMPT, expect: "answer",
      extraEnv: { CLAUDE_CODE_DISABLE_EXPERIMENTAL_BETAS: "1" },
      about: "default model with CLAUDE_CODE_DISABLE_EXPERIMENTAL_BETAS=1, the documented switch for gateways that reject betas" },
    { name: "model-discovery", model: "claude-sonnet-4-6", prompt: PLAIN_PROMPT, expect: "answer",
      extraEnv: { CLAUDE_CODE_ENABLE_GATEWAY_MODEL_DISCOVERY: "1" },
      about: "CLAUDE_CODE_ENABLE_GATEWAY_MODEL_DISCOVERY=1: Claude Code lists the gateway's models at start" },
  ],
  codex: [
    { name: "plain", model: "gpt-5.5", prompt: PLAIN_PROMPT, expect: "answer",
      about: "one-shot prompt, custom provider with wire_api = responses" },
    { name: "tool", model: "gpt-5.5", prompt: TOOL_PROMPT, expect: "tool",
      about: "the server answers with an exec_command function_call, then with text once the function_call_output comes back" },
    { name: "route-model", model: "switchyard-route", prompt: PLAIN_PROMPT, expect: "answer",
      about: "a model name Codex has no metadata for, as a gateway route would be" },
    { name: "default-model", model: null, prompt: PLAIN_PROMPT, expect: "answer",
      about: "no model in config.toml: the model Codex picks by itself" },
  ],
  gemini: [
    { name: "plain", model: "gemini-2.5-flash", prompt: PLAIN_PROMPT, expect: "answer",
      about: "one-shot prompt, GEMINI_API_KEY" },
    { name: "tool", model: "gemini-2.5-flash", prompt: TOOL_PROMPT, expect: "tool", yolo: true,
      about: "the server answers with a read_file functionCall, then with text once the functionResponse comes back" },
    { name: "route-model", model: "switchyard-route", prompt: PLAIN_PROMPT, expect: "answer",
      about: "a model name Gemini CLI does not know, as a gateway route would be" },
    { name: "default-model", model: null, prompt: PLAIN_PROMPT, expect: "answer",
      about: "no -m: the model (and any routing call) Gemini CLI picks by itself" },
  ],
};

async function clientVersion(client) {
  const pkg = JSON.parse(await readFile(path.join(AGENTS_DIR, "node_modules", PACKAGES[client], "package.json"), "utf8"));
  return `${PACKAGES[client]}@${pkg.version}`;
}

/** Runs one scenario; returns the run and its redacted requests. */
export async function runScenario(client, sc, { timeoutMs = 150_000 } = {}) {
  const tmp = await makeHome(`capture-${client}-`);
  const home = path.join(tmp.home, "home");
  const cwd = path.join(tmp.home, "work");
  await mkdir(cwd, { recursive: true });
  const toolFile = path.join(cwd, TOOL_FILE);
  await writeFile(toolFile, `${TOOL_FILE_CONTENT}\n`);
  const srv = await startCaptureServer({ toolFile, toolFileContent: TOOL_FILE_CONTENT, lifetimeMs: timeoutMs + 30_000 });
  try {
    const run = await RUNNERS[client]({
      baseUrl: srv.url,
      apiKey: API_KEY,
      model: sc.model,
      cwd,
      prompt: sc.prompt,
      home,
      timeoutMs,
      authToken: sc.authToken,
      tools: sc.tools,
      yolo: sc.yolo,
      extraEnv: sc.extraEnv,
    });
    const redact = makeRedactor({
      secrets: [API_KEY],
      paths: [
        [cwd, "<WORKDIR>"],
        [home, "<HOME>"],
        [tmp.home, "<TMPROOT>"],
        [AGENTS_DIR, "<AGENTS_DIR>"],
      ],
      port: srv.port,
    });
    const expected =
      sc.expect === "tool" ? `${srv.options.toolAnswerPrefix}${TOOL_FILE_CONTENT}` : srv.options.answer;
    return {
      ok: run.exitCode === 0 && run.stdout.includes(expected),
      expected,
      run: { ...run, stdout: redact({ url: "/", body: run.stdout }).body, stderr: redact({ url: "/", body: run.stderr }).body },
      requests: srv.requests.map((r) => ({ request: redact(r), answer: r.answer ? redact({ url: "/", body: r.answer }).body : null })),
    };
  } finally {
    await srv.close();
    await tmp.cleanup();
  }
}

async function captureClient(client) {
  const version = await clientVersion(client);
  const dir = path.join(FIXTURES, client);
  await rm(dir, { recursive: true, force: true });
  await mkdir(dir, { recursive: true });
  let n = 0;
  const runs = [];
  let failed = 0;
  for (const sc of SCENARIOS[client]) {
    const res = await runScenario(client, sc);
    const files = [];
    for (const [i, { request, answer }] of res.requests.entries()) {
      n += 1;
      const file = `${String(n).padStart(2, "0")}-${sc.name}-${requestKind(request)}.json`;
      files.push(file);
      const fixture = {
        client: version,
        scenario: sc.name,
        about: sc.about,
        model_asked: sc.model,
        ...(sc.extraEnv ? { extra_env: sc.extraEnv } : {}),
        request_in_scenario: i + 1,
        requests_in_scenario: res.requests.length,
        request,
        capture_server_answer: answer,
      };
      await writeFile(path.join(dir, file), JSON.stringify(fixture, null, 2) + "\n");
    }
    runs.push({
      scenario: sc.name,
      about: sc.about,
      model_asked: sc.model,
      ok: res.ok,
      expected_in_stdout: res.expected,
      exitCode: res.run.exitCode,
      timedOut: res.run.timedOut,
      seconds: Math.round(res.run.durationMs / 100) / 10,
      stdout: res.run.stdout,
      stderr: res.run.stderr,
      fixtures: files,
    });
    if (!res.ok) failed += 1;
    console.log(`${client} ${sc.name}: ${res.ok ? "ok" : "FAILED"} exit=${res.run.exitCode} requests=${files.length}`);
  }
  await writeFile(path.join(dir, "runs.json"), JSON.stringify({ client: version, runs }, null, 2) + "\n");
  return failed;
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const clients = process.argv.slice(2).length ? process.argv.slice(2) : Object.keys(SCENARIOS);
  let failed = 0;
  for (const c of clients) failed += await captureClient(c);
  const left = await readdir(FIXTURES).catch(() => []);
  console.log(`fixtures in ${FIXTURES}: ${left.join(", ")}`);
  process.exit(failed ? 1 : 0);
}
