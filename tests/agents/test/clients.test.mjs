// Each pinned agent, run through run-client.mjs against the capture server,
// exits 0 and prints the answer: for a plain prompt, and for a prompt that
// makes it call a file-reading tool and answer from the tool's result.

import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdir, writeFile } from "node:fs/promises";
import path from "node:path";
import { startCaptureServer } from "../lib/capture.mjs";
import { makeHome } from "../lib/clients.mjs";
import { runClient } from "../run-client.mjs";

const MODELS = { claude: "claude-sonnet-4-6", codex: "gpt-5.5", gemini: "gemini-2.5-flash" };
const FILE_CONTENT = "pineapple-42";

/** The endpoint each client must have called for its answer. */
const ENDPOINT = {
  claude: /^POST \/v1\/messages(\?|$)/,
  codex: /^POST \/v1\/responses$/,
  gemini: /^POST \/v1beta\/models\/[^/:]+:streamGenerateContent\?alt=sse$/,
};

/** Where each client puts a tool result in the follow-up request. */
const HAS_TOOL_RESULT = {
  claude: (b) => b.messages?.some((m) => Array.isArray(m.content) && m.content.some((c) => c.type === "tool_result")),
  codex: (b) => b.input?.some((i) => i.type === "function_call_output"),
  gemini: (b) => b.contents?.some((c) => c.parts?.some((p) => p.functionResponse)),
};

async function withCapture(fn) {
  const tmp = await makeHome("agents-test-");
  const cwd = path.join(tmp.home, "work");
  await mkdir(cwd, { recursive: true });
  const toolFile = path.join(cwd, "notes.txt");
  await writeFile(toolFile, `${FILE_CONTENT}\n`);
  const srv = await startCaptureServer({ toolFile, toolFileContent: FILE_CONTENT, lifetimeMs: 200_000 });
  try {
    return await fn({ srv, cwd, home: path.join(tmp.home, "home") });
  } finally {
    await srv.close();
    await tmp.cleanup();
  }
}

function explain(r, srv) {
  return `exit=${r.exitCode} timedOut=${r.timedOut}\nstdout: ${r.stdout}\nstderr: ${r.stderr.slice(-2000)}\nrequests: ${srv.requests
    .map((q) => `${q.method} ${q.url}`)
    .join(", ")}`;
}

for (const client of ["claude", "codex", "gemini"]) {
  test(`${client} answers a plain prompt through the capture server and exits 0`, async () => {
    await withCapture(async ({ srv, cwd, home }) => {
      const r = await runClient(client, {
        baseUrl: srv.url,
        apiKey: "sk-test-agents",
        model: MODELS[client],
        cwd,
        home,
        prompt: "Say hello in one short sentence.",
        timeoutMs: 90_000,
      });
      assert.equal(r.exitCode, 0, explain(r, srv));
      assert.ok(r.stdout.includes(srv.options.answer), explain(r, srv));
      const calls = srv.requests.map((q) => `${q.method} ${q.url}`);
      assert.ok(calls.some((c) => ENDPOINT[client].test(c)), explain(r, srv));
      // The key reached the server in the client's own header.
      const keyed = srv.requests.filter((q) =>
        [q.headers["x-api-key"], q.headers["x-goog-api-key"], q.headers.authorization].some((v) =>
          String(v ?? "").endsWith("sk-test-agents"),
        ),
      );
      assert.equal(keyed.length, srv.requests.length, explain(r, srv));
    });
  });

  test(`${client} calls a tool to read a file, sends the result back, and prints the answer built from it`, async () => {
    await withCapture(async ({ srv, cwd, home }) => {
      const r = await runClient(client, {
        baseUrl: srv.url,
        apiKey: "sk-test-agents",
        model: MODELS[client],
        cwd,
        home,
        prompt: `${srv.options.toolMarker}: read the file notes.txt in the current directory and tell me what it says.`,
        allowTools: true,
        timeoutMs: 90_000,
      });
      assert.equal(r.exitCode, 0, explain(r, srv));
      assert.ok(r.stdout.includes(`${srv.options.toolAnswerPrefix}${FILE_CONTENT}`), explain(r, srv));
      const followUp = srv.requests.find((q) => q.body && HAS_TOOL_RESULT[client](q.body));
      assert.ok(followUp, `no request carried the tool result\n${explain(r, srv)}`);
      assert.ok(JSON.stringify(followUp.body).includes(FILE_CONTENT), explain(r, srv));
    });
  });
}
