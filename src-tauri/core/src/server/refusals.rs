//! No silent refusals: a request to `/v1` or `/v1beta` that is turned away
//! before any route is tried — bad JSON, a shape the endpoint cannot take,
//! an unknown endpoint, a missing or wrong key, the guard's refusals —
//! leaves a `refused` receipt that says why, and the log line every
//! finished request gets. A tool that fails against the port can then be
//! diagnosed from the Receipts view or `switchyard receipts --status
//! refused`.
//!
//! Refusals inside the request path (a model out of the key's scope, an
//! unknown model) are recorded there, for in-process callers too; their
//! responses carry [`Recorded`] and are left alone here.
//!
//! A refusal that names no valid key costs the sender nothing, so those are
//! recorded at most [`UNKNOWN_CALLER_RECEIPTS`] a minute; the rest are
//! counted in one log line. The key that was presented is never stored.

use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, Method};
use axum::middleware::Next;
use axum::response::Response;
use bytes::Bytes;
use serde_json::Value;

use super::{presented_key, AppState};
use crate::record::{RequestRecord, RequestStatus};
use crate::request::new_request_id;

/// Receipts a minute for refusals that name no valid key.
const UNKNOWN_CALLER_RECEIPTS: u32 = 30;
const WINDOW: Duration = Duration::from_secs(60);
/// An error body longer than this is not read for its message.
const MAX_ERROR_BODY: usize = 64 * 1024;
/// The headers a key may come in (`presented_key`).
const CREDENTIALS: [&str; 3] = ["authorization", "x-api-key", "x-goog-api-key"];
/// The summary keeps this many characters of the error's message.
const MAX_MESSAGE: usize = 500;

/// On a response: its request already has a receipt.
#[derive(Clone, Copy)]
pub(super) struct Recorded;

/// The request body as the guard read it, for naming the model a refused
/// request asked for.
#[derive(Clone, Default)]
pub(super) struct SeenBody(Arc<OnceLock<Bytes>>);

impl SeenBody {
    pub(super) fn set(&self, body: &Bytes) {
        let _ = self.0.set(body.clone());
    }
}

pub(super) struct Refusals {
    state: Arc<AppState>,
    window: Mutex<Window>,
}

struct Window {
    started: Instant,
    recorded: u32,
    suppressed: u32,
}

impl Refusals {
    pub(super) fn new(state: Arc<AppState>) -> Refusals {
        Refusals {
            state,
            window: Mutex::new(Window {
                started: Instant::now(),
                recorded: 0,
                suppressed: 0,
            }),
        }
    }

    /// May a refusal from an unknown caller be recorded now?
    fn admit_unknown(&self, now: Instant) -> bool {
        let mut w = self.window.lock().unwrap_or_else(|p| p.into_inner());
        if now.duration_since(w.started) >= WINDOW {
            if w.suppressed > 0 {
                tracing::warn!(
                    not_recorded = w.suppressed,
                    "more requests without a valid key were refused than are recorded (at most {UNKNOWN_CALLER_RECEIPTS} a minute)"
                );
            }
            *w = Window {
                started: now,
                recorded: 0,
                suppressed: 0,
            };
        }
        if w.recorded < UNKNOWN_CALLER_RECEIPTS {
            w.recorded += 1;
            true
        } else {
            w.suppressed += 1;
            false
        }
    }
}

/// Is `path` one of the model endpoints (OpenAI, Anthropic, Gemini)?
pub(super) fn is_model_api(path: &str) -> bool {
    ["/v1", "/v1beta"]
        .iter()
        .any(|p| path == *p || path.strip_prefix(p).is_some_and(|r| r.starts_with('/')))
}

/// The middleware: see the module documentation.
pub(super) async fn record(
    State(refusals): State<Arc<Refusals>>,
    mut req: Request,
    next: Next,
) -> Response {
    if !is_model_api(req.uri().path()) {
        return next.run(req).await;
    }
    // What a refusal's receipt needs, kept without copying anything on the
    // way in (the URI and header values share the request's buffers); it
    // is only read when the answer is a refusal.
    let started = Instant::now();
    let method = req.method().clone();
    let uri = req.uri().clone();
    let credentials = CREDENTIALS.map(|name| req.headers().get(name).cloned());
    let seen = SeenBody::default();
    req.extensions_mut().insert(seen.clone());

    let resp = next.run(req).await;
    if resp.status().as_u16() < 400 || resp.extensions().get::<Recorded>().is_some() {
        return resp;
    }
    // The path only: a query may carry a key (`?key=`).
    let path = uri.path();
    let state = &refusals.state;
    let mut headers = HeaderMap::new();
    for (name, value) in CREDENTIALS.into_iter().zip(credentials) {
        if let Some(v) = value {
            headers.insert(name, v);
        }
    }
    let key = match presented_key(&headers, uri.query()) {
        Some(p) => state.core.keys.authenticate(&p).await,
        None => None,
    };
    if key.is_none() && !refusals.admit_unknown(Instant::now()) {
        return resp;
    }

    let (mut parts, body) = resp.into_parts();
    let body = axum::body::to_bytes(body, MAX_ERROR_BODY)
        .await
        .unwrap_or_default();
    let request_id = parts
        .headers
        .get("x-switchyard-request-id")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
        .unwrap_or_else(|| {
            let id = new_request_id();
            if let Ok(v) = HeaderValue::from_str(&id) {
                parts.headers.insert("x-switchyard-request-id", v);
            }
            id
        });
    let model = requested_model(path, seen.0.get()).unwrap_or_default();
    let mut rec = RequestRecord::new(request_id, model, false);
    if let Some(key) = &key {
        rec.key_id = Some(key.id);
        rec.key = Some(key.name.clone());
        rec.project = key.project.clone();
    }
    rec.status = RequestStatus::Refused;
    rec.error = Some(summary(&method, path, parts.status.as_u16(), &body));
    rec.latency = started.elapsed();
    state.core.recorder.record(&Arc::new(rec));
    Response::from_parts(parts, Body::from(body))
}

/// The model a request named: Gemini's is in the path
/// (`/v1beta/models/{model}:generateContent`), the others' in the body.
fn requested_model(path: &str, body: Option<&Bytes>) -> Option<String> {
    if let Some(rest) = path
        .strip_prefix("/v1beta/models/")
        .or_else(|| path.strip_prefix("/v1/models/"))
    {
        let model = rest.split(':').next().unwrap_or(rest);
        if !model.is_empty() {
            return Some(model.chars().take(200).collect());
        }
    }
    #[derive(serde::Deserialize)]
    struct Named {
        model: Option<Value>,
    }
    let named: Named = serde_json::from_slice(body?).ok()?;
    match named.model? {
        Value::String(m) => Some(m.chars().take(200).collect()),
        _ => None,
    }
}

/// `POST /v1/messages → 400: messages.1.role: must be …`: the endpoint,
/// the status and the error's message in any of the three formats.
fn summary(method: &Method, path: &str, status: u16, body: &[u8]) -> String {
    let message = serde_json::from_slice::<Value>(body)
        .ok()
        .and_then(|v| {
            let e = v.get("error")?;
            e.get("message")
                .and_then(Value::as_str)
                .map(str::to_string)
                .or_else(|| e.as_str().map(str::to_string))
        })
        .unwrap_or_else(|| String::from_utf8_lossy(body).trim().to_string());
    let mut message: String = message.chars().take(MAX_MESSAGE).collect();
    if message.is_empty() {
        message = "(no message)".into();
    }
    format!("{method} {path} → {status}: {message}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_model_comes_from_the_path_or_the_body() {
        let body = Bytes::from_static(br#"{"model": "gpt-x", "messages": 3}"#);
        assert_eq!(
            requested_model("/v1/chat/completions", Some(&body)).as_deref(),
            Some("gpt-x")
        );
        assert_eq!(
            requested_model("/v1beta/models/gemini-pro:streamGenerateContent", None).as_deref(),
            Some("gemini-pro")
        );
        let bad = Bytes::from_static(b"{not json");
        assert_eq!(requested_model("/v1/messages", Some(&bad)), None);
        assert_eq!(requested_model("/v1/messages", None), None);
    }

    #[test]
    fn the_summary_reads_every_format() {
        let openai = br#"{"error": {"message": "Unknown model", "type": "x"}}"#;
        assert_eq!(
            summary(&Method::POST, "/v1/chat/completions", 404, openai),
            "POST /v1/chat/completions → 404: Unknown model"
        );
        let anthropic = br#"{"type": "error", "error": {"type": "invalid_request_error", "message": "messages.1.role: bad"}}"#;
        assert!(summary(&Method::POST, "/v1/messages", 400, anthropic)
            .ends_with("messages.1.role: bad"));
        let gemini = br#"{"error": {"code": 400, "message": "API key not valid", "status": "INVALID_ARGUMENT"}}"#;
        assert!(summary(
            &Method::POST,
            "/v1beta/models/m:generateContent",
            400,
            gemini
        )
        .ends_with("API key not valid"));
        assert!(summary(&Method::GET, "/v1/x", 405, b"").ends_with("(no message)"));
        let long = "x".repeat(5000);
        assert!(
            summary(&Method::GET, "/v1/x", 400, long.as_bytes())
                .chars()
                .count()
                < 600
        );
    }

    #[test]
    fn only_the_model_endpoints_are_watched() {
        assert!(is_model_api("/v1/chat/completions"));
        assert!(is_model_api("/v1beta/models"));
        assert!(is_model_api("/v1"));
        assert!(!is_model_api("/v1x"));
        assert!(!is_model_api("/api/receipts"));
        assert!(!is_model_api("/"));
    }
}
