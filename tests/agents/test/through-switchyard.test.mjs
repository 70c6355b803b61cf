// Each pinned agent, set up as a user would (README.md), talks to a real
// `switchyard serve` that routes it to an upstream of each provider type: an
// OpenAI-compatible one (chat completions), an Anthropic one (Messages) and a
// Gemini one (streamGenerateContent), each played by the capture server. For
// every client × upstream pair, a plain prompt and a prompt that makes the
// client call a file-reading tool and answer from its result must end with
// exit 0 and the upstream's answer on stdout, and every request the upstream
// saw must have an `ok` receipt on the route's channel, with no refusals.
//
// Every case has its own upstream, gateway, data dir and client HOME, so
// cases can run side by side and a receipt count belongs to one case.

import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { mkdir, writeFile } from "node:fs/promises";
import path from "node:path";
import { startCaptureServer } from "../lib/capture.mjs";
import { makeHome } from "../lib/clients.mjs";
import { redact, startSwitchyard } from "../lib/switchyard.mjs";
import { runClient } from "../run-client.mjs";

/** The model each client asks for; each is a route on the gateway. */
const CLIENT_MODEL = { claude: "claude-sonnet-4-6", codex: "gpt-5.5", gemini: "gemini-2.5-flash" };
/**
 * Gemini CLI sends a routing call to this model first when it chooses the
 * model itself; with `-m` it does not, but the route is there for it.
 */
const GEMINI_ROUTER_MODEL = "gemini-3.5-flash-lite";
/**
 * A route name Claude Code does not know as a model: for it, Claude Code
 * sends its environment block as a `role: "system"` message inside
 * `messages` (fixtures/README.md), which no provider's API takes as is.
 */
const CLAUDE_ROUTE_NAME = "switchyard-route";
/** What each route's target asks the upstream for. */
const UPSTREAM_MODEL = { openai: "gpt-5.5", anthropic: "claude-sonnet-4-6", gemini: "gemini-2.5-flash" };
const UPSTREAMS = ["openai", "anthropic", "gemini"];
const UPSTREAM_LABEL = { openai: "an OpenAI chat-completions", anthropic: "an Anthropic Messages", gemini: "a Gemini" };
const CLIENTS = ["claude", "codex", "gemini"];

const GATEWAY_KEY_NAME = "agents-test";
const UPSTREAM_SECRET = "upstream-secret-agents-0123456789";
const FILE_CONTENT = "pineapple-42";
const CLIENT_TIMEOUT_MS = 90_000;

/** The endpoint the gateway must call on each upstream type. */
const UPSTREAM_ENDPOINT = {
  openai: /^POST \/v1\/chat\/completions$/,
  anthropic: /^POST \/v1\/messages$/,
  gemini: /^POST \/v1beta\/models\/[^/:]+:(streamGenerateContent\?alt=sse|generateContent)$/,
};

/** The header each upstream type takes its key in. */
const UPSTREAM_KEY = {
  openai: (h) => h.authorization === `Bearer ${UPSTREAM_SECRET}`,
  anthropic: (h) => h["x-api-key"] === UPSTREAM_SECRET,
  gemini: (h) => h["x-goog-api-key"] === UPSTREAM_SECRET,
};

/** The model named in an upstream request. */
const UPSTREAM_REQUEST_MODEL = {
  openai: (q) => q.body?.model,
  anthropic: (q) => q.body?.model,
  gemini: (q) => /\/models\/([^/:]+):/.exec(q.url)?.[1],
};

/** Where a tool result sits in a request of each upstream type. */
const HAS_TOOL_RESULT = {
  openai: (b) => b?.messages?.some((m) => m.role === "tool"),
  anthropic: (b) => b?.messages?.some((m) => Array.isArray(m.content) && m.content.some((c) => c.type === "tool_result")),
  gemini: (b) => b?.contents?.some((c) => c.parts?.some((p) => p.functionResponse)),
};

function routes(kind) {
  const upstream = UPSTREAM_MODEL[kind];
  return Object.fromEntries([...Object.values(CLIENT_MODEL), GEMINI_ROUTER_MODEL, CLAUDE_ROUTE_NAME].map((m) => [m, upstream]));
}

/** Upstream, gateway and a work dir with notes.txt for one case; all gone afterwards. */
async function withGateway(kind, fn) {
  const tmp = await makeHome(`agents-through-${kind}-`);
  const cwd = path.join(tmp.home, "work");
  await mkdir(cwd, { recursive: true });
  const toolFile = path.join(cwd, "notes.txt");
  await writeFile(toolFile, `${FILE_CONTENT}\n`);
  const upstream = await startCaptureServer({
    answer: `Hello from the ${kind} upstream behind Switchyard.`,
    toolFile,
    toolFileContent: FILE_CONTENT,
    lifetimeMs: 200_000,
  });
  let gw = null;
  try {
    gw = await startSwitchyard({
      kind,
      upstreamUrl: upstream.url,
      routes: routes(kind),
      upstreamSecret: UPSTREAM_SECRET,
      keyName: GATEWAY_KEY_NAME,
      lifetimeMs: 200_000,
    });
    return await fn({ upstream, gw, cwd, home: path.join(tmp.home, "home") });
  } finally {
    await gw?.stop();
    await upstream.close();
    await tmp.cleanup();
  }
}

/** Everything needed to see why a case failed, secrets hidden. */
async function explain(r, upstream, gw) {
  let refused = "";
  try {
    const rows = await gw.receipts({ status: "refused", timeoutMs: 0 });
    refused = rows.map((x) => `${x.requested_model} ${x.status}: ${x.error}`).join("\n  ");
  } catch (e) {
    refused = `(could not read: ${e.message})`;
  }
  const seen = upstream.requests.map((q) => `${q.method} ${q.url} → ${q.answer?.plan?.kind ?? q.answer?.kind}`);
  return redact(
    [
      `exit=${r.exitCode} signal=${r.signal} timedOut=${r.timedOut} in ${r.durationMs} ms`,
      `stdout: ${r.stdout.slice(-2000)}`,
      `stderr: ${r.stderr.slice(-3000)}`,
      `upstream saw: ${seen.join(", ") || "nothing"}`,
      `refused receipts:\n  ${refused || "none"}`,
      `gateway log (tail):\n${gw.log().slice(-3000)}`,
    ].join("\n"),
  );
}

/**
 * The checks every case shares: the client exited 0 with `expected` on
 * stdout; the upstream got the route's model with the channel's key, never
 * the gateway key; and each upstream request has one `ok` receipt for this
 * key on this channel, with nothing refused.
 */
async function assertThrough({ client, kind, r, upstream, gw, expected, model = CLIENT_MODEL[client] }) {
  const why = await explain(r, upstream, gw);
  assert.equal(r.timedOut, false, `the client timed out\n${why}`);
  assert.equal(r.exitCode, 0, why);
  assert.ok(r.stdout.includes(expected), `stdout lacks ${JSON.stringify(expected)}\n${why}`);

  assert.ok(upstream.requests.length > 0, `the upstream saw nothing\n${why}`);
  for (const q of upstream.requests) {
    const line = `${q.method} ${q.url}`;
    assert.match(line, UPSTREAM_ENDPOINT[kind], why);
    assert.equal(UPSTREAM_REQUEST_MODEL[kind](q), UPSTREAM_MODEL[kind], `${line} asked for another model\n${why}`);
    assert.ok(UPSTREAM_KEY[kind](q.headers), `${line} did not carry the channel's key\n${why}`);
    assert.ok(!JSON.stringify(q.headers).includes(gw.key), `${line} carried the gateway key upstream\n${why}`);
  }

  const rows = await gw.receipts({ atLeast: upstream.requests.length });
  const summary = rows.map((x) => `${x.requested_model}@${x.channel} ${x.status}${x.error ? `: ${x.error}` : ""}`).join("\n  ");
  const refused = rows.filter((x) => x.status === "refused");
  assert.deepEqual(refused, [], `refused receipts:\n  ${summary}\n${why}`);
  assert.equal(rows.length, upstream.requests.length, `receipts vs upstream requests:\n  ${summary}\n${why}`);
  for (const x of rows) {
    assert.equal(x.status, "ok", `receipt ${x.id}: ${x.status} ${x.error ?? ""}\n${why}`);
    assert.equal(x.channel, gw.channelId, `receipt ${x.id} channel\n${why}`);
    assert.equal(x.upstream_model, UPSTREAM_MODEL[kind], `receipt ${x.id} upstream model\n${why}`);
    assert.equal(x.key_name, GATEWAY_KEY_NAME, `receipt ${x.id} key\n${why}`);
    assert.ok([model, GEMINI_ROUTER_MODEL].includes(x.requested_model), `receipt ${x.id} model ${x.requested_model}\n${why}`);
  }
  return why;
}

// Claude Code is a 400 MB native binary and Gemini CLI a large Node program;
// three at a time is what two cores carry without starving each other.
describe("the three agents through switchyard serve", { concurrency: 3 }, () => {
  for (const client of CLIENTS) {
    for (const kind of UPSTREAMS) {
      it(`${client} answers a plain prompt through Switchyard from ${UPSTREAM_LABEL[kind]} upstream`, { timeout: 120_000 }, async () => {
        await withGateway(kind, async ({ upstream, gw, cwd, home }) => {
          const r = await runClient(client, {
            baseUrl: gw.url,
            apiKey: gw.key,
            model: CLIENT_MODEL[client],
            cwd,
            home,
            prompt: "Say hello in one short sentence.",
            timeoutMs: CLIENT_TIMEOUT_MS,
          });
          await assertThrough({ client, kind, r, upstream, gw, expected: upstream.options.answer });
        });
      });

      it(`${client} reads a file with a tool through Switchyard from ${UPSTREAM_LABEL[kind]} upstream and answers from it`, { timeout: 120_000 }, async () => {
        await withGateway(kind, async ({ upstream, gw, cwd, home }) => {
          const r = await runClient(client, {
            baseUrl: gw.url,
            apiKey: gw.key,
            model: CLIENT_MODEL[client],
            cwd,
            home,
            prompt: `${upstream.options.toolMarker}: read the file notes.txt in the current directory and tell me what it says.`,
            allowTools: true,
            timeoutMs: CLIENT_TIMEOUT_MS,
          });
          const why = await assertThrough({
            client,
            kind,
            r,
            upstream,
            gw,
            expected: `${upstream.options.toolAnswerPrefix}${FILE_CONTENT}`,
          });
          const calls = upstream.requests.filter((q) => q.answer?.plan?.kind === "tool");
          assert.ok(calls.length >= 1, `the upstream never asked for a tool call\n${why}`);
          const followUp = upstream.requests.find((q) => HAS_TOOL_RESULT[kind](q.body));
          assert.ok(followUp, `no upstream request carried the tool result\n${why}`);
          assert.ok(JSON.stringify(followUp.body).includes(FILE_CONTENT), `the tool result lacks the file's content\n${why}`);
        });
      });
    }
  }

  for (const kind of UPSTREAMS) {
    it(`claude asking for a route name it does not know answers through Switchyard from ${UPSTREAM_LABEL[kind]} upstream`, { timeout: 120_000 }, async () => {
      await withGateway(kind, async ({ upstream, gw, cwd, home }) => {
        const r = await runClient("claude", {
          baseUrl: gw.url,
          apiKey: gw.key,
          model: CLAUDE_ROUTE_NAME,
          cwd,
          home,
          prompt: "Say hello in one short sentence.",
          timeoutMs: CLIENT_TIMEOUT_MS,
        });
        await assertThrough({ client: "claude", kind, r, upstream, gw, expected: upstream.options.answer, model: CLAUDE_ROUTE_NAME });
        // The environment block reached the upstream, in whatever form it takes there.
        assert.ok(
          upstream.requests.some((q) => JSON.stringify(q.body).includes("Primary working directory")),
          "the upstream never saw Claude Code's environment block",
        );
      });
    });
  }
});
