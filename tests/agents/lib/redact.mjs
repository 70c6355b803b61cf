//! Turns a captured request into a fixture that is safe to commit and stable
//! to diff: credentials become "REDACTED", the run's temp paths become
//! placeholders, and the random port becomes <PORT>.
//
// Invariant: no value given in `secrets` survives anywhere in the output,
// whether in a header, the query string or deep inside the body.

const SECRET_HEADERS = new Set(["authorization", "x-api-key", "x-goog-api-key", "api-key", "proxy-authorization"]);
const SECRET_QUERY = new Set(["key", "api_key", "api-key", "access_token"]);

/**
 * paths: [[absolutePath, placeholder], ...]; longer paths are replaced
 * first, so a working dir inside HOME keeps its own placeholder.
 */
export function makeRedactor({ secrets = [], paths = [], port }) {
  const ordered = [...paths].sort((a, b) => b[0].length - a[0].length);
  const scrubString = (s) => {
    let out = s;
    for (const secret of secrets) if (secret) out = out.split(secret).join("REDACTED");
    for (const [p, placeholder] of ordered) if (p) out = out.split(p).join(placeholder);
    if (port) out = out.split(`127.0.0.1:${port}`).join("127.0.0.1:<PORT>");
    return out;
  };
  const scrub = (v) => {
    if (typeof v === "string") return scrubString(v);
    if (Array.isArray(v)) return v.map(scrub);
    if (v && typeof v === "object") {
      const out = {};
      for (const [k, val] of Object.entries(v)) out[scrubString(k)] = scrub(val);
      return out;
    }
    return v;
  };

  return function redactRequest(req) {
    const headers = {};
    for (const [k, v] of Object.entries(req.headers ?? {})) {
      if (SECRET_HEADERS.has(k.toLowerCase())) {
        headers[k] = /^bearer\s/i.test(String(v)) ? "Bearer REDACTED" : "REDACTED";
      } else {
        headers[k] = scrub(v);
      }
    }
    const url = new URL(req.url, "http://127.0.0.1");
    for (const k of [...url.searchParams.keys()]) {
      if (SECRET_QUERY.has(k.toLowerCase())) url.searchParams.set(k, "REDACTED");
    }
    return {
      method: req.method,
      url: scrub(url.pathname + url.search),
      headers,
      body: scrub(req.body),
      ...(req.body_note ? { body_note: req.body_note } : {}),
      ...(req.upgrade ? { upgrade: req.upgrade } : {}),
    };
  };
}

/** A short name for what a request was, for fixture file names. */
export function requestKind(req) {
  const u = new URL(req.url, "http://127.0.0.1");
  const p = u.pathname;
  if (/\/v1\/messages\/count_tokens$/.test(p)) return "count_tokens";
  if (/\/v1\/messages$/.test(p)) return "messages";
  if (/\/v1\/responses$/.test(p)) return req.upgrade ? "responses-websocket" : "responses";
  if (/\/v1\/chat\/completions$/.test(p)) return "chat-completions";
  const gem = p.match(/\/models\/[^/:]+:([A-Za-z]+)$/);
  if (gem) return gem[1];
  if (/\/models$/.test(p)) return "models";
  return p.replace(/^\/+/, "").replace(/[^A-Za-z0-9]+/g, "_") || "root";
}
