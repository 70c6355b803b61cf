// Runs one pinned coding agent against a base URL, the way a user would set
// it up (see README.md), and reports { exitCode, stdout, stderr }.
//
// As a library:
//   import { runClient } from "./run-client.mjs";
//   const r = await runClient("codex", { baseUrl, apiKey, model, cwd, prompt });
//
// From the shell (prints the result as JSON; exits with the client's code,
// or 1 when --expect is given and stdout lacks it):
//   node run-client.mjs claude --base-url http://127.0.0.1:8080 --api-key sk-... \
//     --model claude-sonnet-4-6 --cwd /tmp/work --prompt "Say hello." [--allow-tools] \
//     [--expect hello] [--timeout-ms 120000]
//
// The base URL is the server's root (http://127.0.0.1:PORT): each client adds
// its own API prefix (/v1/messages, /v1/responses, /v1beta/models/...).

import { mkdir } from "node:fs/promises";
import { parseArgs } from "node:util";
import { CLIENTS, RUNNERS, runClaude, runCodex, runGemini } from "./lib/clients.mjs";

export { runClaude, runCodex, runGemini, CLIENTS };

/**
 * Runs `client` ("claude" | "codex" | "gemini") once.
 * opts: baseUrl, apiKey, model, cwd, prompt,
 *   [allowTools]  let the client use its read/shell tools without asking
 *                 (Claude Code --allowedTools Read,Bash; Codex read-only
 *                 sandbox, which already runs commands without asking;
 *                 Gemini CLI --approval-mode yolo),
 *   [timeoutMs]   default 120 s; the client's process group is killed then,
 *   [home]        a HOME to reuse (default: a fresh temp dir, removed after).
 * Resolves { exitCode, signal, timedOut, stdout, stderr, durationMs }.
 */
export async function runClient(client, opts) {
  const run = RUNNERS[client];
  if (!run) throw new Error(`unknown client ${client}; one of ${CLIENTS.join(", ")}`);
  for (const k of ["baseUrl", "apiKey", "cwd", "prompt"]) {
    if (!opts[k]) throw new Error(`runClient(${client}): ${k} is required`);
  }
  const extra = {};
  if (opts.allowTools) {
    if (client === "claude") extra.tools = ["Read", "Bash"];
    if (client === "gemini") extra.yolo = true;
  }
  return run({ ...opts, ...extra });
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const { values, positionals } = parseArgs({
    allowPositionals: true,
    options: {
      "base-url": { type: "string" },
      "api-key": { type: "string", default: process.env.SWITCHYARD_API_KEY ?? "" },
      model: { type: "string" },
      cwd: { type: "string", default: process.cwd() },
      prompt: { type: "string", default: "Say hello in one short sentence." },
      "allow-tools": { type: "boolean", default: false },
      expect: { type: "string" },
      "timeout-ms": { type: "string", default: "120000" },
    },
  });
  const client = positionals[0];
  if (!client || !values["base-url"] || !values["api-key"]) {
    console.error(
      "usage: node run-client.mjs <claude|codex|gemini> --base-url URL --api-key KEY [--model M] [--cwd DIR] [--prompt TEXT] [--allow-tools] [--expect TEXT] [--timeout-ms N]",
    );
    process.exit(2);
  }
  await mkdir(values.cwd, { recursive: true });
  const result = await runClient(client, {
    baseUrl: values["base-url"],
    apiKey: values["api-key"],
    model: values.model,
    cwd: values.cwd,
    prompt: values.prompt,
    allowTools: values["allow-tools"],
    timeoutMs: Number(values["timeout-ms"]),
  });
  console.log(JSON.stringify(result, null, 2));
  if (values.expect !== undefined && !result.stdout.includes(values.expect)) process.exit(1);
  process.exit(result.exitCode ?? 1);
}
