//! The request path every chat ingress shares, whatever API format the
//! client speaks: check the key's scope, resolve the route, open the
//! request's record (its `pending` receipt), run the attempts, and hand
//! back the answer with the `x-switchyard-*` headers to set.

use std::convert::Infallible;
use std::sync::Arc;

use axum::body::Body;
use axum::extract::rejection::BytesRejection;
use axum::http::{header, HeaderMap, HeaderName, HeaderValue};
use axum::response::Response;
use bytes::Bytes;
use futures_util::StreamExt;
use serde_json::{Map, Value};
use tokio_stream::wrappers::ReceiverStream;

use super::{AppState, GatewayError};
use crate::keys::GatewayKey;
use crate::providers::{prompt_chars, NativeRequest};
use crate::routing::{
    self, Answer, AttemptOutcome, Call, CallKind, Encoder, RecordGuard, RequestRecord,
    RequestStatus, ServedBy, StreamStart,
};

/// Chunks buffered between the upstream reader and the client socket.
const STREAM_BUFFER: usize = 32;

/// A refusal, with the request's record when it got that far.
pub(super) type Refusal = (GatewayError, Option<RequestRecord>);

/// A chat request in the canonical (OpenAI chat) shape, authenticated.
pub(super) struct Prepared {
    pub kind: CallKind,
    pub key: Arc<GatewayKey>,
    pub body: Map<String, Value>,
    /// The client's own Anthropic Messages request, if that is what it sent.
    pub native_body: Option<Map<String, Value>>,
    /// Its `anthropic-beta` header.
    pub anthropic_beta: Option<String>,
    pub stream: bool,
    /// The usage chunk reaches the encoder (the client asked for it, or the
    /// client's format reports usage itself).
    pub client_wants_usage: bool,
}

/// A request body read as a JSON object, or the error that says why not
/// (413 over the size limit, 400 for bad JSON or another JSON value).
pub(super) fn json_object(
    body: Result<Bytes, BytesRejection>,
    limit: usize,
) -> Result<Map<String, Value>, GatewayError> {
    let body = body.map_err(|e| match e {
        BytesRejection::FailedToBufferBody(_) => GatewayError::BodyTooLarge { limit },
        other => GatewayError::BadRequest(other.body_text()),
    })?;
    match serde_json::from_slice::<Value>(&body) {
        Ok(Value::Object(map)) => Ok(map),
        Ok(_) => Err(GatewayError::BadRequest(
            "The request body must be a JSON object.".into(),
        )),
        Err(e) => Err(GatewayError::BadJson(e.to_string())),
    }
}

pub fn new_request_id() -> String {
    format!("req_{}", uuid::Uuid::now_v7().simple())
}

fn set(headers: &mut HeaderMap, name: &'static str, value: &str) {
    if let Ok(v) = HeaderValue::from_str(value) {
        headers.insert(HeaderName::from_static(name), v);
    }
}

/// The `x-switchyard-*` headers: which route, channel and bucket, how many
/// attempts.
pub(super) fn annotate(resp: &mut Response, rec: &RequestRecord) {
    let h = resp.headers_mut();
    set(h, "x-switchyard-request-id", &rec.request_id);
    set(h, "x-switchyard-route", &rec.route);
    set(h, "x-switchyard-attempts", &rec.attempts_made().to_string());
    if let Some(s) = &rec.served_by {
        set(h, "x-switchyard-channel", &s.channel);
        set(h, "x-switchyard-bucket", s.bucket.as_str());
    } else if let Some(a) = rec.attempts.iter().find(|a| {
        matches!(
            a.outcome,
            AttemptOutcome::Skipped {
                reason: "bucket_empty" | "budget_exhausted"
            }
        )
    }) {
        // Refused before any upstream call: the bucket that would have paid
        // first (the primary's, when it was the one refused).
        set(h, "x-switchyard-bucket", a.bucket.as_str());
    }
    if !rec.warnings.is_empty() {
        set(h, "x-switchyard-warning", &rec.warnings.join("; "));
    }
}

/// Routes and runs a chat request. On success returns the answer, the
/// guard that will finish its record, and a snapshot of the record for the
/// response headers.
pub(super) async fn run(
    state: &AppState,
    request_id: String,
    p: Prepared,
) -> Result<(Answer, RecordGuard, RequestRecord), Refusal> {
    let model = p
        .body
        .get("model")
        .and_then(|m| m.as_str())
        .unwrap_or_default()
        .to_string();
    let key = &p.key;
    if !key.allows_model(&model) {
        return Err((
            GatewayError::ModelNotAllowed {
                key: key.name.clone(),
                model,
                allowed: key.models_display(),
            },
            None,
        ));
    }
    let gateway = state.gateway();
    let route = gateway
        .resolve(&model)
        .ok_or_else(|| (GatewayError::UnknownModel(model.clone()), None))?;

    let mut rec = RequestRecord::new(request_id, model, p.stream);
    rec.key_id = Some(key.id);
    rec.key = Some(key.name.clone());
    rec.project = key.project.clone();
    rec.route = route.model.clone();
    rec.prompt_chars = prompt_chars(&p.body);
    rec.provisional = route.targets.first().map(|t| ServedBy {
        channel: t.channel.id.clone(),
        brand: t.channel.brand.clone(),
        upstream_model: t.model.clone(),
        bucket: t.channel.bucket,
        target_index: 0,
        cross_bucket: false,
        price: t.price.clone(),
    });
    let mut guard = RecordGuard::new(rec, Arc::clone(&state.recorder));

    let call = Call {
        kind: p.kind,
        route: &route,
        body: &p.body,
        native: p.native_body.as_ref().map(|body| NativeRequest {
            body,
            beta: p.anthropic_beta.as_deref(),
        }),
        stream: p.stream,
        client_wants_usage: p.client_wants_usage,
        key,
        ledger: &state.ledger,
    };
    match routing::execute(&gateway, &call, &mut guard).await {
        Ok(answer) => {
            let snapshot = guard.rec().clone();
            Ok((answer, guard, snapshot))
        }
        Err(e) => {
            let rec = guard.rec().clone();
            guard.finish(RequestStatus::Error, Some(e.to_string()));
            Err((e, Some(rec)))
        }
    }
}

/// A whole JSON answer with its headers; the request's record is finished.
pub(super) fn whole_response(body: Bytes, guard: RecordGuard, rec: &RequestRecord) -> Response {
    let mut resp = Response::new(Body::from(body));
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    annotate(&mut resp, rec);
    guard.finish(RequestStatus::Ok, None);
    resp
}

/// An SSE response relaying `start` through `encoder`, as it arrives.
pub(super) fn stream_response(
    start: StreamStart,
    guard: RecordGuard,
    rec: &RequestRecord,
    encoder: impl Encoder,
) -> Response {
    let (tx, rx) = tokio::sync::mpsc::channel::<Bytes>(STREAM_BUFFER);
    tokio::spawn(routing::pump(start, guard, tx, encoder));
    let body = Body::from_stream(ReceiverStream::new(rx).map(Ok::<_, Infallible>));
    let mut resp = Response::new(body);
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/event-stream"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    annotate(&mut resp, rec);
    resp
}
