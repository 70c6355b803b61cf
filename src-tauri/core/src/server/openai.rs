//! The OpenAI-compatible endpoints: `POST /v1/chat/completions` and
//! `GET /v1/models`.

use std::convert::Infallible;
use std::sync::Arc;

use axum::body::Body;
use axum::extract::rejection::BytesRejection;
use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderName, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use futures_util::StreamExt;
use serde_json::{json, Map, Value};
use tokio_stream::wrappers::ReceiverStream;

use super::{authenticate, AppState, GatewayError};
use crate::providers::prompt_chars;
use crate::routing::{
    self, Answer, Call, RecordGuard, RequestRecord, RequestStatus, ServedBy, StreamOut,
};

/// Chunks buffered between the upstream reader and the client socket.
const STREAM_BUFFER: usize = 32;

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
fn annotate(resp: &mut Response, rec: &RequestRecord) {
    let h = resp.headers_mut();
    set(h, "x-switchyard-request-id", &rec.request_id);
    set(h, "x-switchyard-route", &rec.route);
    set(h, "x-switchyard-attempts", &rec.attempts_made().to_string());
    if let Some(s) = &rec.served_by {
        set(h, "x-switchyard-channel", &s.channel);
        set(h, "x-switchyard-bucket", s.bucket.as_str());
    }
    if !rec.warnings.is_empty() {
        set(h, "x-switchyard-warning", &rec.warnings.join("; "));
    }
}

/// Frames a stream item as OpenAI server-sent events.
fn encode_openai(item: &StreamOut<'_>) -> Bytes {
    match item {
        StreamOut::Chunk(json) => Bytes::from(format!("data: {json}\n\n")),
        StreamOut::Done => Bytes::from_static(b"data: [DONE]\n\n"),
        StreamOut::Error { message, code } => {
            let body = json!({"error": {"message": message, "type": "upstream_error", "param": null, "code": code}});
            Bytes::from(format!("data: {body}\n\n"))
        }
    }
}

/// Reads and checks the request body: a JSON object with a `model` and
/// `messages`.
fn parse_body(
    body: Result<Bytes, BytesRejection>,
    limit: usize,
) -> Result<Map<String, Value>, GatewayError> {
    let body = body.map_err(|e| match e {
        BytesRejection::FailedToBufferBody(_) => GatewayError::BodyTooLarge { limit },
        other => GatewayError::BadRequest(other.body_text()),
    })?;
    let value: Value =
        serde_json::from_slice(&body).map_err(|e| GatewayError::BadJson(e.to_string()))?;
    let Value::Object(map) = value else {
        return Err(GatewayError::BadRequest(
            "The request body must be a JSON object.".into(),
        ));
    };
    match map.get("model") {
        Some(Value::String(m)) if !m.trim().is_empty() => {}
        Some(_) => {
            return Err(GatewayError::BadRequest(
                "`model` must be a non-empty string naming the model to use.".into(),
            ))
        }
        None => {
            return Err(GatewayError::BadRequest(
                "You must provide a model parameter (`model`).".into(),
            ))
        }
    }
    match map.get("messages") {
        Some(Value::Array(m)) if !m.is_empty() => {}
        Some(Value::Array(_)) => {
            return Err(GatewayError::BadRequest(
                "`messages` must contain at least one message.".into(),
            ))
        }
        Some(_) => {
            return Err(GatewayError::BadRequest(
                "`messages` must be an array of message objects.".into(),
            ))
        }
        None => {
            return Err(GatewayError::BadRequest(
                "Missing required parameter: `messages`.".into(),
            ))
        }
    }
    if map
        .get("stream")
        .is_some_and(|s| !(s.is_boolean() || s.is_null()))
    {
        return Err(GatewayError::BadRequest(
            "`stream` must be true or false.".into(),
        ));
    }
    Ok(map)
}

pub async fn chat_completions(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let request_id = new_request_id();
    let mut failed_rec = RequestRecord::new(request_id.clone(), String::new(), false);
    match chat(&state, &headers, body, request_id).await {
        Ok(resp) => resp,
        Err((err, rec)) => {
            if let Some(rec) = rec {
                failed_rec = rec;
            }
            let mut resp = err.into_response();
            annotate(&mut resp, &failed_rec);
            resp
        }
    }
}

type Refusal = (GatewayError, Option<RequestRecord>);

async fn chat(
    state: &AppState,
    headers: &HeaderMap,
    body: Result<Bytes, BytesRejection>,
    request_id: String,
) -> Result<Response, Refusal> {
    let key = authenticate(state, headers).await.map_err(|e| (e, None))?;
    let limit = state.gateway.config.server.max_body_bytes;
    let body = parse_body(body, limit).map_err(|e| (e, None))?;
    let model = body
        .get("model")
        .and_then(|m| m.as_str())
        .unwrap_or_default()
        .to_string();
    let stream = body
        .get("stream")
        .and_then(|s| s.as_bool())
        .unwrap_or(false);
    let client_wants_usage = body
        .get("stream_options")
        .and_then(|o| o.get("include_usage"))
        .and_then(|v| v.as_bool())
        .unwrap_or(false);

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
    let route = state
        .gateway
        .resolve(&model)
        .ok_or_else(|| (GatewayError::UnknownModel(model.clone()), None))?;

    let mut rec = RequestRecord::new(request_id, model, stream);
    rec.key_id = Some(key.id);
    rec.key = Some(key.name.clone());
    rec.project = key.project.clone();
    rec.route = route.model.clone();
    rec.prompt_chars = prompt_chars(&body);
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
        route: &route,
        body: &body,
        stream,
        client_wants_usage,
        key: &key,
        ledger: &state.ledger,
    };
    let answer = match routing::execute(&state.gateway, &call, &mut guard).await {
        Ok(a) => a,
        Err(e) => {
            let rec = guard.rec().clone();
            guard.finish(RequestStatus::Error, Some(e.to_string()));
            return Err((e, Some(rec)));
        }
    };
    let rec_snapshot = guard.rec().clone();
    match answer {
        Answer::Whole(reply) => {
            let mut resp = (StatusCode::OK, reply.body).into_response();
            resp.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            );
            annotate(&mut resp, &rec_snapshot);
            guard.finish(RequestStatus::Ok, None);
            Ok(resp)
        }
        Answer::Stream(start) => {
            let (tx, rx) = tokio::sync::mpsc::channel::<Bytes>(STREAM_BUFFER);
            tokio::spawn(routing::pump(start, guard, tx, encode_openai));
            let body = Body::from_stream(ReceiverStream::new(rx).map(Ok::<_, Infallible>));
            let mut resp = Response::new(body);
            let h = resp.headers_mut();
            h.insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/event-stream"),
            );
            h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
            annotate(&mut resp, &rec_snapshot);
            Ok(resp)
        }
    }
}

/// The models the presented key may call, in OpenAI's list format.
pub async fn list_models(State(state): State<Arc<AppState>>, headers: HeaderMap) -> Response {
    let key = match authenticate(&state, &headers).await {
        Ok(k) => k,
        Err(e) => return e.into_response(),
    };
    let names = state.gateway.model_names().await;
    let data: Vec<Value> = names
        .into_iter()
        .filter(|m| key.allows_model(m))
        .filter(|m| {
            state.gateway.resolve(m).is_some_and(|r| {
                r.targets
                    .iter()
                    .any(|t| key.allows_bucket(t.channel.bucket))
            })
        })
        .map(|m| {
            let owner = state
                .gateway
                .resolve(&m)
                .and_then(|r| r.targets.first().map(|t| t.channel.brand.clone()))
                .unwrap_or_else(|| "switchyard".into());
            json!({"id": m, "object": "model", "created": 0, "owned_by": owner})
        })
        .collect();
    axum::Json(json!({"object": "list", "data": data})).into_response()
}
