//! The OpenAI-compatible endpoints: `POST /v1/chat/completions` and
//! `GET /v1/models`.

use std::sync::Arc;

use axum::extract::rejection::BytesRejection;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use serde_json::{json, Map, Value};

use super::ingress::{self, answer_response, refusal_response};
use super::{authenticate, AppState, GatewayError};
use crate::providers::prompt_chars;
use crate::record::{RequestStatus, Usage};
use crate::request::{new_request_id, Accepted, Call, CallKind, Caller, Refused};
use crate::routing::{Answer, StreamOut};

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
    let map = ingress::json_object(body, limit)?;
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
    match chat(&state, &headers, body, request_id.clone()).await {
        Ok(accepted) => answer_response(accepted, encode_openai),
        Err(refused) => refusal_response(refused, &request_id),
    }
}

async fn chat(
    state: &AppState,
    headers: &HeaderMap,
    body: Result<Bytes, BytesRejection>,
    request_id: String,
) -> Result<Accepted, Refused> {
    let key = authenticate(state, headers).await?;
    let limit = state.gateway().config.server.max_body_bytes;
    let body = parse_body(body, limit)?;
    let stream = body
        .get("stream")
        .and_then(|s| s.as_bool())
        .unwrap_or(false);
    let wants_usage = body
        .get("stream_options")
        .and_then(|o| o.get("include_usage"))
        .and_then(|v| v.as_bool())
        .unwrap_or(false);
    state
        .core
        .call(Call {
            request_id,
            kind: CallKind::Chat,
            caller: Caller::api(key),
            body,
            native: None,
            stream,
            wants_usage,
            progress: None,
            pin: None,
        })
        .await
}

/// Checks an embeddings request: a `model`, and an `input` that is a
/// string, or a non-empty list of strings or of token ids.
fn check_embeddings(body: &Map<String, Value>) -> Result<(), GatewayError> {
    match body.get("model") {
        Some(Value::String(m)) if !m.trim().is_empty() => {}
        _ => {
            return Err(GatewayError::BadRequest(
                "You must provide a model parameter (`model`).".into(),
            ))
        }
    }
    let ok = match body.get("input") {
        Some(Value::String(_)) => true,
        Some(Value::Array(items)) if !items.is_empty() => items.iter().all(|i| {
            i.is_string()
                || i.is_u64()
                || i.as_array()
                    .is_some_and(|t| !t.is_empty() && t.iter().all(Value::is_u64))
        }),
        _ => false,
    };
    if !ok {
        return Err(GatewayError::BadRequest(
            "`input` must be a string, or a non-empty array of strings or of token ids.".into(),
        ));
    }
    if body
        .get("encoding_format")
        .is_some_and(|f| !matches!(f.as_str(), Some("float" | "base64")))
    {
        return Err(GatewayError::BadRequest(
            "`encoding_format` must be \"float\" or \"base64\".".into(),
        ));
    }
    Ok(())
}

/// The answer as the client asked for it: vectors as base64 of
/// little-endian f32s when `encoding_format` is base64 and the upstream sent
/// floats, and the usage filled in with the estimate when it sent none.
fn finish_embeddings(body: &[u8], base64: bool, estimated: Option<Usage>) -> Option<Bytes> {
    use base64::Engine as _;
    let mut v: Value = serde_json::from_slice(body).ok()?;
    if base64 {
        for item in v.get_mut("data")?.as_array_mut()? {
            if let Some(floats) = item.get("embedding").and_then(|e| e.as_array()) {
                let mut raw = Vec::with_capacity(floats.len() * 4);
                for f in floats {
                    raw.extend_from_slice(&(f.as_f64().unwrap_or(0.0) as f32).to_le_bytes());
                }
                item["embedding"] = json!(base64::engine::general_purpose::STANDARD.encode(raw));
            }
        }
    }
    if let Some(u) = estimated {
        let tokens = u.input + u.cached_input;
        v["usage"] = json!({"prompt_tokens": tokens, "total_tokens": tokens});
    }
    Some(Bytes::from(v.to_string()))
}

/// `POST /v1/embeddings`, for `openai`, `openai-compatible` and `gemini`
/// channels; routed, metered and priced like chat.
pub async fn embeddings(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let request_id = new_request_id();
    let result = async {
        let key = authenticate(&state, &headers).await?;
        let limit = state.gateway().config.server.max_body_bytes;
        let body = ingress::json_object(body, limit)?;
        check_embeddings(&body)?;
        let base64 = body.get("encoding_format").and_then(|f| f.as_str()) == Some("base64");
        let chars = prompt_chars(&body);
        let Accepted {
            answer,
            guard,
            record,
        } = state
            .core
            .call(Call {
                request_id: request_id.clone(),
                kind: CallKind::Embeddings,
                caller: Caller::api(key),
                body,
                native: None,
                stream: false,
                wants_usage: false,
                progress: None,
                pin: None,
            })
            .await?;
        let Answer::Whole(reply) = answer else {
            guard.finish(
                RequestStatus::Error,
                Some("an embeddings answer cannot stream".into()),
            );
            return Err(Refused {
                error: GatewayError::Internal(request_id.clone()),
                record: Some(record),
            });
        };
        let estimated = reply.usage.is_none().then(|| Usage::estimate(chars, 0));
        let body = finish_embeddings(&reply.body, base64, estimated).unwrap_or(reply.body);
        Ok::<Response, Refused>(ingress::whole_response(body, guard, &record))
    }
    .await;
    result.unwrap_or_else(|refused| refusal_response(refused, &request_id))
}

/// `GET /v1/models/{model}`: one model the key may call, in OpenAI's
/// format or Anthropic's (`anthropic-version`); 404 otherwise.
pub async fn retrieve_model(
    State(state): State<Arc<AppState>>,
    axum::extract::Path(model): axum::extract::Path<String>,
    headers: HeaderMap,
) -> Response {
    let anthropic_client = headers.contains_key("anthropic-version");
    let found = async {
        let key = authenticate(&state, &headers).await?;
        let route = state
            .gateway()
            .resolve(&model)
            .filter(|_| key.allows_model(&model))
            .filter(|r| {
                r.targets
                    .iter()
                    .any(|t| key.allows_bucket(t.channel.bucket))
            })
            .ok_or_else(|| GatewayError::UnknownModel(model.clone()))?;
        Ok::<_, GatewayError>(route)
    }
    .await;
    match (found, anthropic_client) {
        (Ok(_), true) => axum::Json(json!({
            "type": "model", "id": model, "display_name": model, "created_at": "1970-01-01T00:00:00Z"
        }))
        .into_response(),
        (Ok(route), false) => {
            let owner = route
                .targets
                .first()
                .map_or_else(|| "switchyard".into(), |t| t.channel.brand.clone());
            axum::Json(json!({"id": model, "object": "model", "created": 0, "owned_by": owner}))
                .into_response()
        }
        (Err(e), true) => super::anthropic::error_response(e),
        (Err(e), false) => e.into_response(),
    }
}

/// The models the presented key may call: in OpenAI's list format, or in
/// Anthropic's when the request carries `anthropic-version`.
/// The models `key` may use, with their routes: what every format's model
/// list shows.
pub(super) async fn listed_models(
    state: &AppState,
    key: &crate::keys::GatewayKey,
) -> Vec<(String, Arc<crate::routing::Route>)> {
    let gateway = state.gateway();
    gateway
        .model_names()
        .await
        .into_iter()
        .filter(|m| key.allows_model(m))
        .filter_map(|m| gateway.resolve(&m).map(|r| (m, r)))
        .filter(|(_, r)| {
            r.targets
                .iter()
                .any(|t| key.allows_bucket(t.channel.bucket))
        })
        .collect()
}

pub async fn list_models(State(state): State<Arc<AppState>>, headers: HeaderMap) -> Response {
    let anthropic_client = headers.contains_key("anthropic-version");
    let key = match authenticate(&state, &headers).await {
        Ok(k) => k,
        Err(e) if anthropic_client => return super::anthropic::error_response(e),
        Err(e) => return e.into_response(),
    };
    let routes = listed_models(&state, &key).await;
    if anthropic_client {
        let ids: Vec<String> = routes.into_iter().map(|(m, _)| m).collect();
        return super::anthropic::models_list(&ids);
    }
    let data: Vec<Value> = routes
        .into_iter()
        .map(|(m, r)| {
            let owner = r
                .targets
                .first()
                .map_or_else(|| "switchyard".into(), |t| t.channel.brand.clone());
            json!({"id": m, "object": "model", "created": 0, "owned_by": owner})
        })
        .collect();
    axum::Json(json!({"object": "list", "data": data})).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const LIMIT: usize = 1 << 20;

    fn parse(bytes: &[u8]) -> Result<Map<String, Value>, GatewayError> {
        parse_body(Ok(Bytes::copy_from_slice(bytes)), LIMIT)
    }

    /// A refusal the client can act on: a 4xx with a message.
    fn assert_clear_refusal(e: &GatewayError) {
        assert!(e.status().is_client_error(), "{e:?} is {}", e.status());
        assert!(!e.to_string().trim().is_empty(), "{e:?} has no message");
        let body: Value = serde_json::from_slice(&e.openai_body()).expect("OpenAI error JSON");
        assert!(body["error"]["message"].is_string());
    }

    fn json_value() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::from),
            any::<i64>().prop_map(Value::from),
            any::<f64>()
                .prop_filter("JSON has no NaN or infinity", |f| f.is_finite())
                .prop_map(Value::from),
            ".{0,10}".prop_map(Value::from),
            Just(Value::from("gpt-test")),
            Just(Value::from(" ")),
        ];
        leaf.prop_recursive(4, 48, 6, |inner| {
            let key = prop_oneof![
                Just("model".to_string()),
                Just("messages".to_string()),
                Just("stream".to_string()),
                Just("stream_options".to_string()),
                ".{0,6}",
            ];
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
                prop::collection::vec((key, inner), 0..6)
                    .prop_map(|kv| Value::Object(kv.into_iter().collect())),
            ]
        })
    }

    /// What the body must satisfy, said once more independently.
    fn acceptable(v: &Value) -> bool {
        let Some(o) = v.as_object() else {
            return false;
        };
        let model_ok = o
            .get("model")
            .and_then(Value::as_str)
            .is_some_and(|m| !m.trim().is_empty());
        let messages_ok = o
            .get("messages")
            .and_then(Value::as_array)
            .is_some_and(|m| !m.is_empty());
        let stream_ok = o
            .get("stream")
            .is_none_or(|s| s.is_boolean() || s.is_null());
        model_ok && messages_ok && stream_ok
    }

    proptest! {
        #[test]
        fn arbitrary_bytes_are_parsed_or_refused_with_a_4xx(
            bytes in prop::collection::vec(any::<u8>(), 0..300),
        ) {
            if let Err(e) = parse(&bytes) {
                assert_clear_refusal(&e);
            }
        }

        #[test]
        fn arbitrary_json_is_accepted_exactly_when_it_is_a_chat_request(v in json_value()) {
            let text = serde_json::to_vec(&v).expect("serialise");
            match parse(&text) {
                Ok(map) => {
                    prop_assert!(acceptable(&v), "accepted {v}");
                    // Every field kept (values compared loosely: floats
                    // need not round-trip to the last bit).
                    let sent: Vec<&String> = v.as_object().map(|o| o.keys().collect()).unwrap_or_default();
                    prop_assert_eq!(map.keys().collect::<Vec<_>>(), sent);
                }
                Err(e) => {
                    prop_assert!(!acceptable(&v), "refused {v}: {e}");
                    assert_clear_refusal(&e);
                }
            }
        }

        #[test]
        fn chat_requests_with_any_extra_fields_are_accepted(
            extra in prop::collection::vec(("[a-z_]{1,8}", json_value()), 0..5),
            stream in prop::option::of(any::<bool>()),
        ) {
            let mut body = serde_json::json!({
                "model": "gpt-test",
                "messages": [{"role": "user", "content": "hi"}],
            });
            for (k, v) in extra {
                if !matches!(k.as_str(), "model" | "messages" | "stream") {
                    body[k] = v;
                }
            }
            if let Some(s) = stream {
                body["stream"] = Value::Bool(s);
            }
            prop_assert!(parse(body.to_string().as_bytes()).is_ok());
        }
    }

    #[test]
    fn deeply_nested_json_is_refused_not_a_stack_overflow() {
        let depth = 100_000;
        let text = format!(
            "{{\"model\":\"m\",\"messages\":{}{}}}",
            "[".repeat(depth),
            "]".repeat(depth)
        );
        let e = parse(text.as_bytes()).expect_err("too deep");
        assert_clear_refusal(&e);
    }

    #[test]
    fn body_the_extractor_could_not_buffer_is_413() {
        use axum::extract::FromRequest;
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .expect("runtime");
        // Over the extractor's own 2 MiB default.
        let rejection = rt.block_on(async {
            let big = axum::http::Request::builder()
                .body(axum::body::Body::from(vec![b'x'; 3 * 1024 * 1024]))
                .expect("request");
            Bytes::from_request(big, &()).await
        });
        let e = parse_body(rejection, LIMIT).expect_err("refused");
        assert_eq!(e.status(), axum::http::StatusCode::PAYLOAD_TOO_LARGE);
        assert_clear_refusal(&e);
    }
}
