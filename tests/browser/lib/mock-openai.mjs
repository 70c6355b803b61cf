// A mock OpenAI upstream on 127.0.0.1 (port 0), close enough to the real API
// that the gateway cannot tell the difference:
//
//   GET  /v1/models            the upstream's model list
//   POST /v1/chat/completions  a `chat.completion` with `usage`, or with
//                              `stream: true` an SSE stream of
//                              `chat.completion.chunk` events ending in
//                              `data: [DONE]` (the usage chunk only when
//                              `stream_options.include_usage` is set)
//
// It records every request (method, path, headers, body) and misbehaves on
// demand per upstream model (`fail(model, {status, message})`), answering
// OpenAI's error JSON, so one upstream can serve several tests at once.
// `pace(model, ms)` streams that model's answer one word every `ms` ms (a
// slow model, to be stopped mid-answer); a request whose client hangs up
// before the end is marked `aborted`.
//
// `content(model, body, n)` makes the answer text: `n` counts the chat
// requests for that model so far (1 for the first), so a regenerated answer
// can differ from the first.

import http from 'node:http';

/** `fail(MODELS, …)` makes `GET /v1/models` fail. */
export const MODELS = Symbol('GET /v1/models');

export const PROMPT_TOKENS = 1000;
export const COMPLETION_TOKENS = 1000;

export async function startMockOpenAI({ name, models = [], content = (model) => `Hello from ${name} (${model}).` } = {}) {
  const requests = [];
  const faults = new Map();
  const paces = new Map();

  const server = http.createServer((req, res) => {
    const chunks = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', () => {
      const raw = Buffer.concat(chunks).toString('utf8');
      let body = null;
      try {
        body = raw ? JSON.parse(raw) : null;
      } catch {
        body = null;
      }
      const record = { method: req.method, path: req.url, headers: { ...req.headers }, body, aborted: false };
      requests.push(record);
      handle(req, res, body, record);
    });
  });

  function sendJson(res, status, value) {
    const text = JSON.stringify(value);
    res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
    res.end(text);
  }

  function sendError(res, status, message, type, code) {
    sendJson(res, status, { error: { message, type, param: null, code } });
  }

  function handle(req, res, body, record) {
    const path = (req.url ?? '').split('?')[0];
    if (req.method === 'GET' && path === '/v1/models') {
      const fault = faults.get(MODELS);
      if (fault) return sendError(res, fault.status ?? 503, fault.message ?? 'The server is overloaded.', fault.type ?? 'server_error', fault.code ?? null);
      return sendJson(res, 200, {
        object: 'list',
        data: models.map((id) => ({ id, object: 'model', created: 1_700_000_000, owned_by: name })),
      });
    }
    if (req.method === 'POST' && path === '/v1/chat/completions') {
      if (!body || typeof body.model !== 'string' || !Array.isArray(body.messages)) {
        return sendError(res, 400, 'model and messages are required', 'invalid_request_error', null);
      }
      const fault = faults.get(body.model);
      if (fault) {
        const status = fault.status ?? 503;
        const type = fault.type ?? (status >= 500 ? 'server_error' : 'invalid_request_error');
        return sendError(res, status, fault.message ?? 'The server is overloaded. Please try again later.', type, fault.code ?? null);
      }
      const n = requests.filter((r) => r.path?.startsWith('/v1/chat/completions') && r.body?.model === body.model).length;
      const text = content(body.model, body, n);
      const id = `chatcmpl-${name}-${requests.length}`;
      const created = Math.floor(Date.now() / 1000);
      const usage = {
        prompt_tokens: PROMPT_TOKENS,
        completion_tokens: COMPLETION_TOKENS,
        total_tokens: PROMPT_TOKENS + COMPLETION_TOKENS,
      };
      if (body.stream) {
        const includeUsage = body.stream_options?.include_usage === true;
        res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' });
        const chunk = (delta, finish) => ({
          id,
          object: 'chat.completion.chunk',
          created,
          model: body.model,
          choices: [{ index: 0, delta, finish_reason: finish, logprobs: null }],
          ...(includeUsage ? { usage: null } : {}),
        });
        const events = [chunk({ role: 'assistant', content: '' }, null)];
        for (const word of text.match(/\S+\s*/g) ?? [text]) events.push(chunk({ content: word }, null));
        events.push(chunk({}, 'stop'));
        if (includeUsage) events.push({ id, object: 'chat.completion.chunk', created, model: body.model, choices: [], usage });
        const pace = paces.get(body.model);
        if (!pace) {
          for (const e of events) res.write(`data: ${JSON.stringify(e)}\n\n`);
          res.end('data: [DONE]\n\n');
          return;
        }
        // One event every `pace` ms, until the end or the client hangs up.
        let i = 0;
        const timer = setInterval(() => {
          if (i < events.length) {
            res.write(`data: ${JSON.stringify(events[i++])}\n\n`);
          } else {
            clearInterval(timer);
            res.end('data: [DONE]\n\n');
          }
        }, pace);
        res.once('close', () => {
          clearInterval(timer);
          if (!res.writableFinished) record.aborted = true;
        });
        return;
      }
      return sendJson(res, 200, {
        id,
        object: 'chat.completion',
        created,
        model: body.model,
        choices: [{ index: 0, message: { role: 'assistant', content: text, refusal: null }, finish_reason: 'stop', logprobs: null }],
        usage,
      });
    }
    return sendError(res, 404, `Unknown path ${path}`, 'invalid_request_error', 'unknown_url');
  }

  await new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', resolve);
  });
  const { port } = server.address();

  return {
    name,
    port,
    baseUrl: `http://127.0.0.1:${port}/v1`,
    requests,
    /** Chat requests received, optionally for one upstream model. */
    chats(model) {
      return requests.filter((r) => r.path?.startsWith('/v1/chat/completions') && (!model || r.body?.model === model));
    },
    /** Answer every request for `model` with an OpenAI error (503 by default). */
    fail(model, fault = {}) {
      faults.set(model, fault);
    },
    heal(model) {
      faults.delete(model);
    },
    /** Stream `model`'s answers one word every `ms` ms (`0`: all at once again). */
    pace(model, ms) {
      if (ms > 0) paces.set(model, ms);
      else paces.delete(model);
    },
    close() {
      return new Promise((resolve) => {
        server.closeAllConnections?.();
        server.close(() => resolve());
      });
    },
  };
}
