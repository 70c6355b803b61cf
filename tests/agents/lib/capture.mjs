// A loopback stand-in for the Anthropic, OpenAI and Gemini APIs that records
// every request a coding agent sends and answers the way the real provider
// would, well enough for the agent to finish a one-shot prompt.
//
// It owns one invariant: every request that reaches the socket is recorded
// (method, path with query, headers, parsed body) before it is answered, so a
// fixture shows what the client sent even when the answer was a 404.
//
// Answers are scripted by content, not by order, so side requests (titles,
// token counts, model lists) cannot shift them:
//   - a request that offers a file-reading tool, whose conversation mentions
//     the `toolMarker`, and that holds no tool result yet, is answered with a
//     call to that tool on `toolFile`;
//   - a request that holds a tool result is answered with
//     "<toolAnswerPrefix><first line of the result>", which proves the result
//     came back to the model;
//   - everything else is answered with `answer`.
//
// `omit` (a list of SSE event names, or "usage", "finishReason",
// "usageMetadata") drops parts of an answer, to find out which parts a
// client cannot do without.

import http from "node:http";
import zlib from "node:zlib";
import { randomUUID } from "node:crypto";

const DEFAULTS = {
  answer: "Switchyard capture server says hello.",
  toolMarker: "CAPTURE_TOOL_TEST",
  toolAnswerPrefix: "The file says: ",
  toolFile: null,
  // Each SSE stream is cut into this many text deltas, so a client that
  // only shows the last delta would fail the answer check.
  deltas: 3,
  // A server that nobody stops still goes away.
  lifetimeMs: 10 * 60 * 1000,
  omit: [],
};

/**
 * Starts the capture server on 127.0.0.1 (port 0 unless given).
 * Returns { url, port, requests, reset(), close() }.
 */
export async function startCaptureServer(options = {}) {
  const opts = { ...DEFAULTS, ...options };
  opts.omit = new Set(opts.omit ?? []);
  const requests = [];
  const sockets = new Set();

  const server = http.createServer((req, res) => {
    handle(req, res, opts, requests).catch((err) => {
      if (!res.headersSent) {
        sendJson(res, 500, { error: { message: String(err?.message ?? err) } });
      } else {
        res.destroy();
      }
    });
  });
  server.on("connection", (s) => {
    sockets.add(s);
    s.on("close", () => sockets.delete(s));
  });
  // Codex can try a WebSocket for the Responses API; record it and refuse,
  // so it falls back to HTTP streaming.
  server.on("upgrade", (req, socket) => {
    requests.push(record(req, null, { upgrade: req.headers.upgrade ?? true }));
    socket.end("HTTP/1.1 426 Upgrade Required\r\nConnection: close\r\nContent-Length: 0\r\n\r\n");
  });

  await new Promise((resolve, reject) => {
    server.once("error", reject);
    server.listen(opts.port ?? 0, "127.0.0.1", resolve);
  });
  const { port } = server.address();
  const lifetime = setTimeout(() => close(), opts.lifetimeMs);
  lifetime.unref();

  let closed = false;
  async function close() {
    if (closed) return;
    closed = true;
    clearTimeout(lifetime);
    for (const s of sockets) s.destroy();
    await new Promise((resolve) => server.close(() => resolve()));
  }

  return {
    url: `http://127.0.0.1:${port}`,
    port,
    requests,
    options: opts,
    reset() {
      requests.length = 0;
    },
    close,
  };
}

// ---------------------------------------------------------------------------
// Request plumbing

async function handle(req, res, opts, requests) {
  const raw = await readBody(req);
  const { body, bodyNote } = parseBody(raw, req.headers);
  const entry = record(req, body, bodyNote ? { body_note: bodyNote } : undefined);
  requests.push(entry);

  const url = new URL(req.url, "http://127.0.0.1");
  const path = url.pathname.replace(/\/+$/, "");
  const answered = (summary) => {
    entry.answer = summary;
  };

  // Anthropic Messages API
  if (req.method === "POST" && /\/v1\/messages$/.test(path)) {
    return anthropicMessages(res, body, opts, answered);
  }
  if (req.method === "POST" && /\/v1\/messages\/count_tokens$/.test(path)) {
    answered({ kind: "count_tokens" });
    return sendJson(res, 200, { input_tokens: estimateTokens(body) });
  }

  // OpenAI Responses and Chat Completions
  if (req.method === "POST" && /\/v1\/responses$/.test(path)) {
    return openaiResponses(res, body, opts, answered);
  }
  if (req.method === "POST" && /\/v1\/chat\/completions$/.test(path)) {
    return openaiChat(res, body, opts, answered);
  }

  // Gemini generateContent family: /v1beta/models/{model}:{method}
  const gem = path.match(/\/(v1beta|v1alpha|v1)\/models\/([^/:]+):([A-Za-z]+)$/);
  if (req.method === "POST" && gem) {
    const [, , model, method] = gem;
    if (method === "streamGenerateContent") {
      return geminiGenerate(res, body, model, opts, answered, true);
    }
    if (method === "generateContent") {
      return geminiGenerate(res, body, model, opts, answered, false);
    }
    if (method === "countTokens") {
      answered({ kind: "countTokens" });
      return sendJson(res, 200, { totalTokens: estimateTokens(body) });
    }
    if (method === "embedContent") {
      answered({ kind: "embedContent" });
      return sendJson(res, 200, { embedding: { values: [0.1, 0.2, 0.3] } });
    }
  }

  // Model listings, in each provider's shape
  if (req.method === "GET" && /\/(v1beta|v1alpha)\/models$/.test(path)) {
    answered({ kind: "gemini_models" });
    return sendJson(res, 200, {
      models: [
        {
          name: "models/gemini-2.5-flash",
          displayName: "Gemini 2.5 Flash",
          supportedGenerationMethods: ["generateContent", "countTokens"],
          inputTokenLimit: 1048576,
          outputTokenLimit: 65536,
        },
      ],
    });
  }
  if (req.method === "GET" && /\/v1\/models$/.test(path)) {
    if (req.headers["anthropic-version"] || req.headers["x-api-key"]) {
      answered({ kind: "anthropic_models" });
      return sendJson(res, 200, {
        data: [
          {
            type: "model",
            id: "claude-sonnet-4-5",
            display_name: "Claude Sonnet 4.5",
            created_at: "2025-09-29T00:00:00Z",
          },
        ],
        has_more: false,
        first_id: "claude-sonnet-4-5",
        last_id: "claude-sonnet-4-5",
      });
    }
    answered({ kind: "openai_models" });
    return sendJson(res, 200, {
      object: "list",
      data: [{ id: "gpt-5", object: "model", created: 1754000000, owned_by: "capture" }],
    });
  }

  answered({ kind: "not_found" });
  return sendJson(res, 404, {
    error: { type: "not_found_error", message: `capture server has no route for ${req.method} ${path}` },
  });
}

function record(req, body, extra) {
  return {
    at: new Date().toISOString(),
    method: req.method,
    url: req.url,
    headers: { ...req.headers },
    body,
    ...(extra ?? {}),
  };
}

function readBody(req) {
  return new Promise((resolve, reject) => {
    const chunks = [];
    req.on("data", (c) => chunks.push(c));
    req.on("end", () => resolve(Buffer.concat(chunks)));
    req.on("error", reject);
  });
}

function parseBody(raw, headers) {
  if (raw.length === 0) return { body: null };
  let buf = raw;
  const enc = String(headers["content-encoding"] ?? "").toLowerCase();
  try {
    if (enc === "gzip") buf = zlib.gunzipSync(raw);
    else if (enc === "deflate") buf = zlib.inflateSync(raw);
    else if (enc === "br") buf = zlib.brotliDecompressSync(raw);
    else if (enc === "zstd") {
      if (typeof zlib.zstdDecompressSync !== "function") {
        return { body: { base64: raw.toString("base64") }, bodyNote: "zstd body; this Node cannot decode it" };
      }
      buf = zlib.zstdDecompressSync(raw);
    }
  } catch (err) {
    return { body: { base64: raw.toString("base64") }, bodyNote: `could not decode ${enc}: ${err.message}` };
  }
  const text = buf.toString("utf8");
  try {
    return { body: JSON.parse(text) };
  } catch {
    return { body: text, bodyNote: "not JSON" };
  }
}

function sendJson(res, status, value) {
  const text = JSON.stringify(value);
  res.writeHead(status, {
    "content-type": "application/json",
    "content-length": Buffer.byteLength(text),
  });
  res.end(text);
}

function startSse(res) {
  res.writeHead(200, {
    "content-type": "text/event-stream",
    "cache-control": "no-cache",
    connection: "keep-alive",
  });
}

function sseEvent(res, name, data) {
  const line = name ? `event: ${name}\ndata: ${JSON.stringify(data)}\n\n` : `data: ${JSON.stringify(data)}\n\n`;
  res.write(line);
}

function estimateTokens(body) {
  return Math.max(1, Math.ceil(JSON.stringify(body ?? "").length / 4));
}

function splitText(text, n) {
  const size = Math.max(1, Math.ceil(text.length / n));
  const parts = [];
  for (let i = 0; i < text.length; i += size) parts.push(text.slice(i, i + size));
  return parts;
}

function id(prefix) {
  return `${prefix}${randomUUID().replace(/-/g, "").slice(0, 24)}`;
}

// ---------------------------------------------------------------------------
// Deciding what to answer

/** Everything the conversation says, as one string, to look for the marker. */
function conversationText(value) {
  return JSON.stringify(value ?? "");
}

/**
 * Picks a tool that can read a file from the offered tools and builds its
 * arguments for `file` by looking at the tool's own parameter schema.
 * `tools` is a list of { name, schema }.
 */
export function pickReadTool(tools, file) {
  const byName = new Map(tools.map((t) => [t.name, t]));
  const props = (t) => t.schema?.properties ?? {};
  const pathKey = (t) =>
    ["file_path", "absolute_path", "path", "filePath", "filename"].find((k) => k in props(t));

  for (const name of ["Read", "read_file", "ReadFile", "view", "read"]) {
    const t = byName.get(name);
    if (t && pathKey(t)) return { name, args: { [pathKey(t)]: file } };
  }
  // Shell-style tools: Codex offers one of these, depending on its version
  // and model family.
  for (const name of ["exec_command", "shell_command", "shell", "Bash", "run_shell_command", "local_shell"]) {
    const t = byName.get(name);
    if (!t) continue;
    const p = props(t);
    if ("cmd" in p) return { name, args: { cmd: `cat ${shellQuote(file)}` } };
    if ("command" in p) {
      const command = p.command.type === "array" ? ["cat", file] : `cat ${shellQuote(file)}`;
      return { name, args: { command } };
    }
  }
  return null;
}

function shellQuote(s) {
  return `'${String(s).replace(/'/g, `'\\''`)}'`;
}

function firstLine(text) {
  const s = String(text ?? "");
  // Claude Code's Read result is numbered like "     1\u2192text"; Codex's
  // shell output may be wrapped in JSON or carry an "Output:" header. Take
  // the first line that looks like the file's own content.
  for (const line of s.split(/\r?\n/)) {
    const clean = line.replace(/^\s*\d+[\u2192\t|]/, "").trim();
    if (!clean) continue;
    if (/^(exit code|wall time|output|chunk id|process exited|original token count|total output lines)\b/i.test(clean)) continue;
    return clean;
  }
  return s.trim();
}

/** Finds the file's content in a tool result, whatever the wrapping. */
function extractFileLine(result, opts) {
  const text = typeof result === "string" ? result : JSON.stringify(result);
  if (opts.toolFileContent && text.includes(opts.toolFileContent)) return opts.toolFileContent;
  try {
    const parsed = typeof result === "string" ? JSON.parse(result) : result;
    if (parsed && typeof parsed.output === "string") return firstLine(parsed.output);
  } catch {
    // not JSON: plain text result
  }
  return firstLine(text);
}

function toolAnswer(result, opts) {
  return `${opts.toolAnswerPrefix}${extractFileLine(result, opts)}`;
}

// ---------------------------------------------------------------------------
// Anthropic Messages

function anthropicPlan(body, opts) {
  const messages = Array.isArray(body?.messages) ? body.messages : [];
  const last = messages[messages.length - 1];
  const results = Array.isArray(last?.content) ? last.content.filter((b) => b?.type === "tool_result") : [];
  if (results.length > 0) {
    const content = results[0].content;
    const text = Array.isArray(content) ? content.map((c) => c?.text ?? "").join("\n") : content;
    return { kind: "text", text: toolAnswer(text, opts), after_tool: true };
  }
  const tools = (body?.tools ?? [])
    .filter((t) => t?.name)
    .map((t) => ({ name: t.name, schema: t.input_schema }));
  if (opts.toolFile && tools.length > 0 && conversationText(messages).includes(opts.toolMarker)) {
    const pick = pickReadTool(tools, opts.toolFile);
    if (pick) return { kind: "tool", ...pick };
  }
  // Claude Code asks for a JSON session title (output_config.format
  // json_schema); answer with JSON the schema accepts.
  const format = body?.output_config?.format;
  if (format?.type === "json_schema" && format.schema) {
    return { kind: "text", text: JSON.stringify(sampleForSchema(format.schema)), json: true };
  }
  return { kind: "text", text: opts.answer };
}

function anthropicMessages(res, body, opts, answered) {
  const plan = anthropicPlan(body, opts);
  const model = body?.model ?? "claude-capture";
  const msgId = id("msg_");
  const inputTokens = estimateTokens(body?.messages);
  answered({ kind: "anthropic_messages", stream: !!body?.stream, plan });

  const block =
    plan.kind === "tool"
      ? { type: "tool_use", id: id("toolu_"), name: plan.name, input: plan.args }
      : { type: "text", text: plan.text };
  const stopReason = plan.kind === "tool" ? "tool_use" : "end_turn";
  const outputTokens = estimateTokens(block);

  if (!body?.stream) {
    return sendJson(res, 200, {
      id: msgId,
      type: "message",
      role: "assistant",
      model,
      content: [block],
      stop_reason: stopReason,
      stop_sequence: null,
      usage: {
        input_tokens: inputTokens,
        cache_creation_input_tokens: 0,
        cache_read_input_tokens: 0,
        output_tokens: outputTokens,
      },
    });
  }

  const emit = (name, data) => {
    if (!opts.omit.has(name)) sseEvent(res, name, data);
  };
  startSse(res);
  emit("message_start", {
    type: "message_start",
    message: {
      id: msgId,
      type: "message",
      role: "assistant",
      model,
      content: [],
      stop_reason: null,
      stop_sequence: null,
      usage: {
        input_tokens: inputTokens,
        cache_creation_input_tokens: 0,
        cache_read_input_tokens: 0,
        output_tokens: 1,
      },
    },
  });
  if (plan.kind === "tool") {
    emit("content_block_start", {
      type: "content_block_start",
      index: 0,
      content_block: { type: "tool_use", id: block.id, name: block.name, input: {} },
    });
    emit("ping", { type: "ping" });
    for (const part of splitText(JSON.stringify(plan.args), opts.deltas)) {
      emit("content_block_delta", {
        type: "content_block_delta",
        index: 0,
        delta: { type: "input_json_delta", partial_json: part },
      });
    }
  } else {
    emit("content_block_start", {
      type: "content_block_start",
      index: 0,
      content_block: { type: "text", text: "" },
    });
    emit("ping", { type: "ping" });
    for (const part of splitText(plan.text, opts.deltas)) {
      emit("content_block_delta", {
        type: "content_block_delta",
        index: 0,
        delta: { type: "text_delta", text: part },
      });
    }
  }
  emit("content_block_stop", { type: "content_block_stop", index: 0 });
  emit("message_delta", {
    type: "message_delta",
    delta: { stop_reason: stopReason, stop_sequence: null },
    ...(opts.omit.has("usage") ? {} : { usage: { input_tokens: inputTokens, output_tokens: outputTokens } }),
  });
  emit("message_stop", { type: "message_stop" });
  res.end();
}

// ---------------------------------------------------------------------------
// OpenAI Responses

function responsesPlan(body, opts) {
  const input = Array.isArray(body?.input) ? body.input : [];
  const outputs = input.filter((i) => i?.type === "function_call_output" || i?.type === "custom_tool_call_output");
  if (outputs.length > 0) {
    return { kind: "text", text: toolAnswer(outputs[outputs.length - 1].output, opts), after_tool: true };
  }
  const tools = (body?.tools ?? [])
    .filter((t) => t?.type === "function" && t.name)
    .map((t) => ({ name: t.name, schema: t.parameters }));
  if (opts.toolFile && tools.length > 0 && conversationText(input).includes(opts.toolMarker)) {
    const pick = pickReadTool(tools, opts.toolFile);
    if (pick) return { kind: "tool", ...pick };
  }
  // Codex asks for a JSON title (text.format json_schema) in its UI; answer
  // with JSON the schema accepts.
  const format = body?.text?.format;
  if (format?.type === "json_schema" && format.schema) {
    return { kind: "text", text: JSON.stringify(sampleForSchema(format.schema)), json: true };
  }
  return { kind: "text", text: opts.answer };
}

function openaiResponses(res, body, opts, answered) {
  const plan = responsesPlan(body, opts);
  answered({ kind: "openai_responses", stream: !!body?.stream, plan });
  const respId = id("resp_");
  const created = Math.floor(Date.now() / 1000);
  const model = body?.model ?? "gpt-capture";
  const inputTokens = estimateTokens(body?.input);

  let item;
  if (plan.kind === "tool") {
    item = {
      id: id("fc_"),
      type: "function_call",
      status: "completed",
      arguments: JSON.stringify(plan.args),
      call_id: id("call_"),
      name: plan.name,
    };
  } else {
    item = {
      id: id("msg_"),
      type: "message",
      status: "completed",
      role: "assistant",
      content: [{ type: "output_text", text: plan.text, annotations: [], logprobs: [] }],
    };
  }
  const outputTokens = estimateTokens(item);
  const usage = {
    input_tokens: inputTokens,
    input_tokens_details: { cached_tokens: 0 },
    output_tokens: outputTokens,
    output_tokens_details: { reasoning_tokens: 0 },
    total_tokens: inputTokens + outputTokens,
  };
  const response = (status, output, u) => ({
    id: respId,
    object: "response",
    created_at: created,
    status,
    background: false,
    error: null,
    incomplete_details: null,
    instructions: body?.instructions ?? null,
    max_output_tokens: body?.max_output_tokens ?? null,
    model,
    output,
    parallel_tool_calls: body?.parallel_tool_calls ?? true,
    previous_response_id: body?.previous_response_id ?? null,
    reasoning: body?.reasoning ?? { effort: null, summary: null },
    store: body?.store ?? false,
    temperature: 1,
    text: { format: { type: "text" } },
    tool_choice: body?.tool_choice ?? "auto",
    tools: body?.tools ?? [],
    top_p: 1,
    truncation: "disabled",
    usage: u,
    metadata: {},
  });

  if (!body?.stream) {
    return sendJson(res, 200, response("completed", [item], usage));
  }

  let seq = 0;
  const emit = (type, data) => {
    if (!opts.omit.has(type)) sseEvent(res, type, { type, sequence_number: seq++, ...data });
  };
  startSse(res);
  emit("response.created", { response: response("in_progress", [], null) });
  emit("response.in_progress", { response: response("in_progress", [], null) });
  if (plan.kind === "tool") {
    emit("response.output_item.added", {
      output_index: 0,
      item: { ...item, status: "in_progress", arguments: "" },
    });
    for (const part of splitText(item.arguments, opts.deltas)) {
      emit("response.function_call_arguments.delta", { item_id: item.id, output_index: 0, delta: part });
    }
    emit("response.function_call_arguments.done", { item_id: item.id, output_index: 0, arguments: item.arguments });
    emit("response.output_item.done", { output_index: 0, item });
  } else {
    const text = plan.text;
    emit("response.output_item.added", {
      output_index: 0,
      item: { ...item, status: "in_progress", content: [] },
    });
    emit("response.content_part.added", {
      item_id: item.id,
      output_index: 0,
      content_index: 0,
      part: { type: "output_text", text: "", annotations: [], logprobs: [] },
    });
    for (const part of splitText(text, opts.deltas)) {
      emit("response.output_text.delta", {
        item_id: item.id,
        output_index: 0,
        content_index: 0,
        delta: part,
        logprobs: [],
      });
    }
    emit("response.output_text.done", { item_id: item.id, output_index: 0, content_index: 0, text, logprobs: [] });
    emit("response.content_part.done", {
      item_id: item.id,
      output_index: 0,
      content_index: 0,
      part: { type: "output_text", text, annotations: [], logprobs: [] },
    });
    emit("response.output_item.done", { output_index: 0, item });
  }
  emit("response.completed", { response: response("completed", [item], opts.omit.has("usage") ? null : usage) });
  res.end();
}

// ---------------------------------------------------------------------------
// OpenAI Chat Completions (none of the three agents speaks it; a gateway in
// front of an OpenAI-compatible upstream does)

function chatPlan(body, opts) {
  const messages = Array.isArray(body?.messages) ? body.messages : [];
  const last = messages[messages.length - 1];
  if (last?.role === "tool") {
    const content = Array.isArray(last.content) ? last.content.map((c) => c?.text ?? "").join("\n") : last.content;
    return { kind: "text", text: toolAnswer(content, opts), after_tool: true };
  }
  const tools = (body?.tools ?? [])
    .filter((t) => t?.type === "function" && t.function?.name)
    .map((t) => ({ name: t.function.name, schema: t.function.parameters }));
  if (opts.toolFile && tools.length > 0 && conversationText(messages).includes(opts.toolMarker)) {
    const pick = pickReadTool(tools, opts.toolFile);
    if (pick) return { kind: "tool", ...pick };
  }
  const format = body?.response_format;
  if (format?.type === "json_schema" && format.json_schema?.schema) {
    return { kind: "text", text: JSON.stringify(sampleForSchema(format.json_schema.schema)), json: true };
  }
  return { kind: "text", text: opts.answer };
}

function openaiChat(res, body, opts, answered) {
  const plan = chatPlan(body, opts);
  answered({ kind: "openai_chat", stream: !!body?.stream, plan });
  const base = { id: id("chatcmpl-"), created: Math.floor(Date.now() / 1000), model: body?.model ?? "gpt-capture" };
  const promptTokens = estimateTokens(body?.messages);
  const call =
    plan.kind === "tool"
      ? { id: id("call_"), type: "function", function: { name: plan.name, arguments: JSON.stringify(plan.args) } }
      : null;
  const completionTokens = estimateTokens(call ?? plan.text);
  const usage = {
    prompt_tokens: promptTokens,
    completion_tokens: completionTokens,
    total_tokens: promptTokens + completionTokens,
  };
  const finish = call ? "tool_calls" : "stop";

  if (!body?.stream) {
    const message = call
      ? { role: "assistant", content: null, tool_calls: [call] }
      : { role: "assistant", content: plan.text };
    return sendJson(res, 200, {
      ...base,
      object: "chat.completion",
      choices: [{ index: 0, message, finish_reason: finish, logprobs: null }],
      ...(opts.omit.has("usage") ? {} : { usage }),
    });
  }

  const chunk = (choices, extra) => sseEvent(res, null, { ...base, object: "chat.completion.chunk", choices, ...extra });
  startSse(res);
  chunk([{ index: 0, delta: { role: "assistant", content: call ? null : "" }, finish_reason: null }]);
  if (call) {
    // Like OpenAI: the first delta names the call, the rest carry arguments.
    chunk([
      {
        index: 0,
        delta: { tool_calls: [{ index: 0, id: call.id, type: "function", function: { name: call.function.name, arguments: "" } }] },
        finish_reason: null,
      },
    ]);
    for (const part of splitText(call.function.arguments, opts.deltas)) {
      chunk([{ index: 0, delta: { tool_calls: [{ index: 0, function: { arguments: part } }] }, finish_reason: null }]);
    }
  } else {
    for (const part of splitText(plan.text, opts.deltas)) {
      chunk([{ index: 0, delta: { content: part }, finish_reason: null }]);
    }
  }
  chunk([{ index: 0, delta: {}, finish_reason: finish }]);
  // With stream_options.include_usage, usage comes alone in a last chunk
  // with no choices, as OpenAI sends it.
  if (body?.stream_options?.include_usage && !opts.omit.has("usage")) chunk([], { usage });
  res.write("data: [DONE]\n\n");
  res.end();
}

// ---------------------------------------------------------------------------
// Gemini generateContent

function geminiPlan(body, opts) {
  const contents = Array.isArray(body?.contents) ? body.contents : [];
  const last = contents[contents.length - 1];
  const responses = (last?.parts ?? []).filter((p) => p?.functionResponse);
  if (responses.length > 0) {
    const r = responses[0].functionResponse.response;
    const text = typeof r?.output === "string" ? r.output : r?.content ?? r;
    return { kind: "text", text: toolAnswer(text, opts), after_tool: true };
  }
  const tools = (body?.tools ?? [])
    .flatMap((t) => t?.functionDeclarations ?? [])
    .map((f) => ({ name: f.name, schema: f.parametersJsonSchema ?? f.parameters }));
  if (opts.toolFile && tools.length > 0 && conversationText(contents).includes(opts.toolMarker)) {
    const pick = pickReadTool(tools, opts.toolFile);
    if (pick) return { kind: "tool", ...pick };
  }
  // Gemini CLI asks for JSON in some side calls (routing, next-speaker
  // checks); answer those with JSON the schema accepts.
  const schema = body?.generationConfig?.responseJsonSchema ?? body?.generationConfig?.responseSchema;
  if (body?.generationConfig?.responseMimeType === "application/json" && schema) {
    return { kind: "text", text: JSON.stringify(sampleForSchema(schema)), json: true };
  }
  return { kind: "text", text: opts.answer };
}

/** A minimal value that satisfies a JSON schema: enough for side calls. */
function sampleForSchema(schema) {
  if (!schema || typeof schema !== "object") return null;
  if (Array.isArray(schema.enum) && schema.enum.length) return schema.enum[0];
  const type = String(schema.type ?? "").toLowerCase();
  if (type === "object" || schema.properties) {
    const out = {};
    for (const [k, v] of Object.entries(schema.properties ?? {})) out[k] = sampleForSchema(v);
    return out;
  }
  if (type === "array") return [];
  if (type === "boolean") return false;
  if (type === "integer" || type === "number") return schema.minimum ?? 1;
  return "capture";
}

function geminiGenerate(res, body, model, opts, answered, stream) {
  const plan = geminiPlan(body, opts);
  answered({ kind: stream ? "gemini_stream" : "gemini_generate", plan });
  const prompt = estimateTokens(body?.contents);
  const usageFor = (out) => ({ promptTokenCount: prompt, candidatesTokenCount: out, totalTokenCount: prompt + out });
  const responseId = id("");

  if (plan.kind === "tool") {
    const chunk = {
      candidates: [
        {
          content: { parts: [{ functionCall: { name: plan.name, args: plan.args } }], role: "model" },
          finishReason: "STOP",
          index: 0,
        },
      ],
      usageMetadata: usageFor(8),
      modelVersion: model,
      responseId,
    };
    if (!stream) return sendJson(res, 200, chunk);
    startSse(res);
    sseEvent(res, null, chunk);
    return res.end();
  }

  const parts = splitText(plan.text, stream ? opts.deltas : 1);
  const out = estimateTokens(plan.text);
  if (!stream) {
    return sendJson(res, 200, {
      candidates: [{ content: { parts: [{ text: plan.text }], role: "model" }, finishReason: "STOP", index: 0 }],
      usageMetadata: usageFor(out),
      modelVersion: model,
      responseId,
    });
  }
  startSse(res);
  parts.forEach((text, i) => {
    const lastChunk = i === parts.length - 1;
    const candidate = { content: { parts: [{ text }], role: "model" }, index: 0 };
    if (lastChunk && !opts.omit.has("finishReason")) candidate.finishReason = "STOP";
    const chunk = { candidates: [candidate], modelVersion: model, responseId };
    if (!opts.omit.has("usageMetadata")) {
      chunk.usageMetadata = lastChunk ? usageFor(out) : { promptTokenCount: prompt, totalTokenCount: prompt };
    }
    sseEvent(res, null, chunk);
  });
  res.end();
}

// ---------------------------------------------------------------------------
// Run as a script: a capture server for poking at by hand.

if (import.meta.url === `file://${process.argv[1]}`) {
  const port = Number(process.env.PORT ?? 0);
  const lifetimeMs = Number(process.env.LIFETIME_MS ?? 5 * 60 * 1000);
  const srv = await startCaptureServer({ port, lifetimeMs, toolFile: process.env.TOOL_FILE ?? null });
  console.log(`capture server on ${srv.url} for ${Math.round(lifetimeMs / 1000)} s`);
  const timer = setInterval(() => {
    while (srv.requests.length) {
      const r = srv.requests.shift();
      console.log(JSON.stringify({ method: r.method, url: r.url, answer: r.answer }));
    }
  }, 500);
  const stop = () => {
    clearInterval(timer);
    srv.close().then(() => process.exit(0));
  };
  setTimeout(stop, lifetimeMs).unref();
  process.on("SIGINT", stop);
  process.on("SIGTERM", stop);
}
