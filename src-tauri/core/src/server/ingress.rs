//! What every ingress format shares around the one request path
//! ([`crate::request`]): reading a body as a JSON object, the
//! `x-switchyard-*` headers, and turning an accepted answer into a whole
//! JSON response or an SSE stream.

use axum::body::Body;
use axum::extract::rejection::BytesRejection;
use axum::http::{header, HeaderMap, HeaderName, HeaderValue};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use futures_util::StreamExt;
use serde_json::{Map, Value};
use std::convert::Infallible;
use tokio_stream::wrappers::ReceiverStream;

use super::refusals::Recorded;
use super::GatewayError;
use crate::record::{AttemptOutcome, RecordGuard, RequestRecord, RequestStatus};
use crate::request::{Accepted, Refused};
use crate::routing::{self, Answer, Encoder, StreamStart};

/// Chunks buffered between the upstream reader and the client socket.
const STREAM_BUFFER: usize = 32;

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

/// A whole JSON answer with its headers; the request's record is finished.
pub(super) fn whole_response(body: Bytes, guard: RecordGuard, rec: &RequestRecord) -> Response {
    let mut resp = Response::new(Body::from(body));
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    annotate(&mut resp, rec);
    let _ = guard.finish(RequestStatus::Ok, None);
    resp
}

/// An SSE response relaying `start` through `encoder`, as it arrives.
pub(super) fn stream_response(
    start: StreamStart,
    guard: RecordGuard,
    rec: &RequestRecord,
    encoder: impl Encoder<Out = Bytes>,
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

/// A refusal as a response in OpenAI's format, with the headers of the
/// request's record when it got that far.
pub(super) fn refusal_response(refused: Refused, request_id: &str) -> Response {
    let (error, rec, recorded) = refused_parts(refused, request_id);
    let mut resp = error.into_response();
    annotate(&mut resp, &rec);
    if recorded {
        resp.extensions_mut().insert(Recorded);
    }
    resp
}

/// A refusal's error and record (a stand-in with just the request id when
/// it was refused before it had one), and whether that record is on its
/// way to the ledger already.
pub(super) fn refused_parts(
    refused: Refused,
    request_id: &str,
) -> (GatewayError, RequestRecord, bool) {
    match refused.record {
        Some(rec) => (refused.error, rec, true),
        None => (
            refused.error,
            RequestRecord::new(request_id.to_string(), String::new(), false),
            false,
        ),
    }
}

/// Whether the channel that answered took the client's request in its own
/// `format` (so the answer is already in the client's format).
pub(super) fn answered_natively(
    state: &super::AppState,
    rec: &RequestRecord,
    format: crate::request::NativeFormat,
) -> bool {
    rec.served_by.as_ref().is_some_and(|s| {
        state
            .gateway()
            .channel(&s.channel)
            .is_some_and(|c| c.provider_speaks(format))
    })
}

/// An upstream's whole answer that could not be put in the client's
/// format: the request ends as an error, with `error` for the client.
pub(super) fn untranslatable(
    guard: RecordGuard,
    rec: RequestRecord,
    error: GatewayError,
) -> Refused {
    guard.finish(
        RequestStatus::Error,
        Some("could not translate the answer".into()),
    );
    Refused {
        error,
        record: Some(rec),
    }
}

/// An accepted OpenAI-format answer as the client's response: the JSON as
/// it is, or the stream framed by `encoder`.
pub(super) fn answer_response(accepted: Accepted, encoder: impl Encoder<Out = Bytes>) -> Response {
    let Accepted {
        answer,
        guard,
        record,
    } = accepted;
    match answer {
        Answer::Whole(reply) => whole_response(reply.body, guard, &record),
        Answer::Stream(start) => stream_response(start, guard, &record, encoder),
    }
}
