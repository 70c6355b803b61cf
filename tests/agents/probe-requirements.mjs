// Finds out which parts of a streamed answer each agent cannot do without:
// for each client it runs the plain prompt once per variant, with the
// capture server leaving one part out, and prints whether the client still
// exited 0 with the answer, how many model requests it made (retries show
// here), and the tail of its stderr.
//
//   timeout 900 node probe-requirements.mjs [claude|codex|gemini ...]

import { mkdir, writeFile } from "node:fs/promises";
import path from "node:path";
import { startCaptureServer } from "./lib/capture.mjs";
import { RUNNERS, makeHome } from "./lib/clients.mjs";

const MODELS = { claude: "claude-sonnet-4-6", codex: "gpt-5.5", gemini: "gemini-2.5-flash" };

export const VARIANTS = {
  claude: [
    [],
    ["ping"],
    ["message_stop"],
    ["message_delta"],
    ["usage"],
    ["content_block_stop"],
    ["content_block_start"],
  ],
  codex: [
    [],
    ["response.created"],
    ["response.in_progress"],
    ["response.output_item.added"],
    ["response.content_part.added", "response.content_part.done"],
    ["response.output_text.delta"],
    ["response.output_text.done"],
    ["response.output_item.done"],
    ["usage"],
    ["response.completed"],
  ],
  gemini: [[], ["usageMetadata"], ["finishReason"]],
};

async function probe(client, omit) {
  const h = await makeHome(`probe-${client}-`);
  const cwd = path.join(h.home, "work");
  await mkdir(cwd, { recursive: true });
  const srv = await startCaptureServer({ omit, lifetimeMs: 200_000 });
  try {
    const r = await RUNNERS[client]({
      baseUrl: srv.url,
      apiKey: "sk-probe",
      model: MODELS[client],
      cwd,
      prompt: "Say hello.",
      home: path.join(h.home, "home"),
      timeoutMs: 90_000,
    });
    const answered = r.stdout.includes(srv.options.answer);
    return {
      client,
      omit: omit.join("+") || "(nothing)",
      exitCode: r.exitCode,
      timedOut: r.timedOut,
      answered,
      requests: srv.requests.length,
      calls: srv.requests.map((q) => `${q.method} ${q.url}${q.body?.stream === false ? " (stream:false)" : q.body?.stream ? " (stream)" : ""}`),
      seconds: Math.round(r.durationMs / 100) / 10,
      stderrTail: r.stderr.trim().split("\n").slice(-3).join(" | ").slice(0, 300),
    };
  } finally {
    await srv.close();
    await h.cleanup();
  }
}

const clients = process.argv.slice(2).length ? process.argv.slice(2) : Object.keys(VARIANTS);
const rows = [];
for (const c of clients) {
  for (const omit of VARIANTS[c]) {
    const row = await probe(c, omit);
    rows.push(row);
    console.log(JSON.stringify(row));
  }
}
const out = path.join(path.dirname(new URL(import.meta.url).pathname), "fixtures", "requirements.json");
await mkdir(path.dirname(out), { recursive: true });
let previous = {};
try {
  previous = JSON.parse(await (await import("node:fs/promises")).readFile(out, "utf8"));
} catch {
  // first run
}
for (const c of clients) previous[c] = rows.filter((r) => r.client === c);
await writeFile(out, JSON.stringify(previous, null, 2) + "\n");
