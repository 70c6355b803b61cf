//! Google Gemini channels (`type = "gemini"`): the Generative Language API.
//!
//! Owns everything Gemini-specific: the calls to
//! `models/{model}:generateContent`, `:streamGenerateContent?alt=sse` and
//! `:batchEmbedContents`, the translation of OpenAI requests in
//! ([`request`]) and of answers and streams out ([`response`]), Gemini's
//! error bodies, and its usage accounting. Invariants: the API key travels
//! only in the `x-goog-api-key` header, never in a URL (URLs reach logs and
//! error messages); everything the client sees is OpenAI-shaped, errors
//! included; and a safety block is the request's own fault — relayed as a
//! 400 `content_policy_violation`, never retried or failed over.

mod request;
mod response;

use std::time::Duration;

use bytes::Bytes;
use reqwest::header::{ACCEPT, CONTENT_TYPE};
use secrecy::SecretString;
use serde_json::{json, Map, Value};

use super::{
    ChatCall, ChatReply, ErrorMeaning, NativeFormat, NativeRequest, Provider, ReplyError,
    StreamDecoder,
};

pub struct Gemini;

const API_KEY_HEADER: &str = "x-goog-api-key";

/// The model's resource name: `models/{id}`, or the id itself when it
/// already is one (`models/…`, `tunedModels/…`).
fn resource(model: &str) -> String {
    if model.contains('/') {
        model.to_string()
    } else {
        format!("models/{model}")
    }
}

/// A JSON POST with the key in its header.
fn post(
    http: &reqwest::Client,
    url: String,
    secret: Option<&SecretString>,
    body: &Value,
) -> reqwest::RequestBuilder {
    // Serialising a JSON value cannot fail.
    let body = serde_json::to_vec(body).unwrap_or_default();
    let req = http
        .post(url)
        .header(CONTENT_TYPE, "application/json")
        .body(body);
    super::with_key(req, API_KEY_HEADER, secret)
}

/// Gemini's error object, `{"code", "message", "status", "details"}`, from
/// an error body (`{"error": …}`, or that in a one-element array).
fn error_object(body: &[u8]) -> Option<Value> {
    let v: Value = serde_json::from_slice(body).ok()?;
    let v = match v {
        Value::Array(mut items) if !items.is_empty() => items.swap_remove(0),
        other => other,
    };
    v.get("error").filter(|e| e.is_object()).cloned()
}

/// The wait a `google.rpc.RetryInfo` detail asks for: a protobuf
/// duration in JSON, seconds with an `s` ("23s", "0.5s").
fn retry_info_delay(err: &Value) -> Option<Duration> {
    err.get("details")?
        .as_array()?
        .iter()
        .filter(|d| {
            d.get("@type")
                .and_then(Value::as_str)
                .is_some_and(|t| t.ends_with("google.rpc.RetryInfo"))
        })
        .find_map(|d| {
            d.get("retryDelay")?
                .as_str()?
                .strip_suffix('s')?
                .parse()
                .ok()
        })
        .and_then(|secs: f64| Duration::try_from_secs_f64(secs).ok())
}

/// An error object as one line: its message and status.
fn error_text(err: &Value) -> String {
    let message = err.get("message").and_then(Value::as_str);
    let status = err.get("status").and_then(Value::as_str);
    match (message, status) {
        (Some(m), Some(s)) => format!("{m} ({s})"),
        (Some(m), None) => m.to_string(),
        _ => err.to_string(),
    }
}

/// Gemini's ways of saying the prompt does not fit the model
/// ("The input token count (1200293) exceeds the maximum number of tokens
/// allowed (1048576).").
fn is_too_long(message: &str) -> bool {
    let m = message.to_ascii_lowercase();
    [
        "exceeds the maximum number of tokens",
        "input token count",
        "too long",
        "token limit",
        "context length",
        "context window",
    ]
    .iter()
    .any(|p| m.contains(p))
}

/// An invalid or expired API key, which Gemini answers with 400.
fn is_bad_key(err: &Value) -> bool {
    let reason = err
        .get("details")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|d| d.get("reason").and_then(Value::as_str))
        .any(|r| matches!(r, "API_KEY_INVALID" | "API_KEY_EXPIRED"));
    let message = err
        .get("message")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_ascii_lowercase();
    reason || message.contains("api key not valid") || message.contains("api key expired")
}

/// The texts of an OpenAI embeddings `input`: a string or a list of
/// strings. Token-id arrays have no Gemini equivalent.
fn embedding_texts(body: &Map<String, Value>) -> Option<Vec<&str>> {
    match body.get("input")? {
        Value::String(s) => Some(vec![s.as_str()]),
        Value::Array(items) => items.iter().map(Value::as_str).collect(),
        _ => None,
    }
}

impl Provider for Gemini {
    fn models_request(
        &self,
        http: &reqwest::Client,
        base_url: &str,
        secret: Option<&SecretString>,
    ) -> reqwest::RequestBuilder {
        let req = http.get(format!(
            "{}/models?pageSize=1000",
            base_url.trim_end_matches('/')
        ));
        super::with_key(req, API_KEY_HEADER, secret)
    }

    /// Gemini lists `models[].name` as `models/<id>`.
    fn model_ids(&self, list: &Value) -> Vec<String> {
        list.get("models")
            .and_then(|m| m.as_array())
            .into_iter()
            .flatten()
            .filter_map(|m| m.get("name").and_then(|n| n.as_str()))
            .map(|n| n.trim_start_matches("models/").to_string())
            .collect()
    }

    fn chat_request(
        &self,
        http: &reqwest::Client,
        base_url: &str,
        secret: Option<&SecretString>,
        call: &ChatCall<'_>,
    ) -> reqwest::RequestBuilder {
        let model = resource(call.upstream_model);
        let body = request::generate_content(call.body);
        if call.stream {
            post(
                http,
                format!("{base_url}/{model}:streamGenerateContent?alt=sse"),
                secret,
                &body,
            )
            .header(ACCEPT, "text/event-stream")
        } else {
            post(
                http,
                format!("{base_url}/{model}:generateContent"),
                secret,
                &body,
            )
        }
    }

    fn chat_reply(&self, body: Bytes) -> Result<ChatReply, ReplyError> {
        response::chat_reply(body)
    }

    fn native_format(&self) -> Option<NativeFormat> {
        Some(NativeFormat::Gemini)
    }

    /// A Gemini client's own `generateContent` body, sent as it is to the
    /// target's model (the model is in the URL, never in the body).
    fn native_request(
        &self,
        http: &reqwest::Client,
        base_url: &str,
        secret: Option<&SecretString>,
        native: &NativeRequest<'_>,
        upstream_model: &str,
        stream: bool,
    ) -> Option<reqwest::RequestBuilder> {
        if native.format != NativeFormat::Gemini {
            return None;
        }
        let model = resource(upstream_model);
        let body = Value::Object(native.body.clone());
        Some(if stream {
            post(
                http,
                format!("{base_url}/{model}:streamGenerateContent?alt=sse"),
                secret,
                &body,
            )
            .header(ACCEPT, "text/event-stream")
        } else {
            post(
                http,
                format!("{base_url}/{model}:generateContent"),
                secret,
                &body,
            )
        })
    }

    /// Read as for a translated answer (usage, model, safety blocks), and
    /// kept as Gemini sent it.
    fn native_reply(&self, body: Bytes) -> Result<ChatReply, ReplyError> {
        let read = response::chat_reply(body.clone())?;
        Ok(ChatReply {
            body,
            usage: read.usage,
            model: read.model,
        })
    }

    fn native_stream_decoder(&self) -> Option<Box<dyn StreamDecoder>> {
        Some(Box::new(response::NativeGeminiStream(
            response::GeminiStream::new(false),
        )))
    }

    fn error_meaning(&self, status: u16, body: &[u8]) -> ErrorMeaning {
        let Some(err) = error_object(body) else {
            return ErrorMeaning::ClientError;
        };
        let message = err
            .get("message")
            .and_then(Value::as_str)
            .unwrap_or_default();
        match status {
            400 | 413 if is_too_long(message) => ErrorMeaning::ContextLength,
            400 if is_bad_key(&err) => ErrorMeaning::KeyRejected,
            _ => ErrorMeaning::ClientError,
        }
    }

    /// Gemini says how long to wait in the body of a 429
    /// (`RESOURCE_EXHAUSTED`), not in `Retry-After`.
    fn retry_delay(&self, body: &[u8]) -> Option<Duration> {
        retry_info_delay(&error_object(body)?)
    }

    /// Gemini's `{"error": {"code", "message", "status"}}` as OpenAI's
    /// `{"error": {"message", "type", "param", "code"}}`, keeping Gemini's
    /// message; anything else is left for the gateway to wrap.
    fn client_error_body(&self, body: Bytes) -> Bytes {
        let Some(err) = error_object(&body) else {
            return body;
        };
        let Some(message) = err.get("message").and_then(Value::as_str) else {
            return body;
        };
        let kind = match err.get("code").and_then(Value::as_u64) {
            Some(401) => "authentication_error",
            Some(403) => "permission_error",
            Some(429) => "rate_limit_error",
            Some(500..) => "api_error",
            _ => "invalid_request_error",
        };
        let code = if is_too_long(message) {
            Some("context_length_exceeded".to_string())
        } else {
            err.get("status")
                .and_then(Value::as_str)
                .map(str::to_ascii_lowercase)
        };
        let openai = json!({"error": {
            "message": message.trim_end(),
            "type": kind,
            "param": null,
            "code": code,
        }});
        Bytes::from(openai.to_string())
    }

    fn stream_decoder(&self, client_wants_usage: bool) -> Box<dyn StreamDecoder> {
        Box::new(response::GeminiStream::new(client_wants_usage))
    }

    /// `batchEmbedContents`, one request per input text. `None` for
    /// token-id inputs, which Gemini cannot embed.
    fn embeddings_request(
        &self,
        http: &reqwest::Client,
        base_url: &str,
        secret: Option<&SecretString>,
        body: &Map<String, Value>,
        upstream_model: &str,
    ) -> Option<reqwest::RequestBuilder> {
        let texts = embedding_texts(body)?;
        let model = resource(upstream_model);
        let dimensions = body.get("dimensions").and_then(Value::as_u64);
        let requests: Vec<Value> = texts
            .iter()
            .map(|text| {
                let mut r = json!({"model": model, "content": {"parts": [{"text": text}]}});
                if let Some(d) = dimensions {
                    r["outputDimensionality"] = json!(d);
                }
                r
            })
            .collect();
        Some(post(
            http,
            format!("{base_url}/{model}:batchEmbedContents"),
            secret,
            &json!({ "requests": requests }),
        ))
    }

    /// Gemini's embeddings as OpenAI's list, in input order.
    ///
    /// Gemini counts no tokens for embeddings, and this method does not see
    /// the input, so `usage` is `None`: the gateway then estimates it from
    /// the request's characters (`Usage::estimate`, ~4 characters a token)
    /// and marks the receipt `usage_estimated`, as for any answer without
    /// usage. The body's `usage` says 0 rather than leaving out a field
    /// OpenAI clients expect.
    fn embeddings_reply(&self, body: Bytes, upstream_model: &str) -> Result<ChatReply, String> {
        let v: Value = serde_json::from_slice(&body)
            .map_err(|e| format!("upstream answered 200 with invalid JSON: {e}"))?;
        let embeddings = v
            .get("embeddings")
            .and_then(Value::as_array)
            .ok_or("upstream answered 200 without `embeddings`")?;
        let data: Vec<Value> = embeddings
            .iter()
            .enumerate()
            .map(|(index, e)| {
                json!({
                    "object": "embedding",
                    "index": index,
                    "embedding": e.get("values").cloned().unwrap_or_else(|| json!([])),
                })
            })
            .collect();
        let out = json!({
            "object": "list",
            "data": data,
            "model": upstream_model,
            "usage": {"prompt_tokens": 0, "total_tokens": 0},
        });
        Ok(ChatReply {
            body: Bytes::from(out.to_string()),
            usage: None,
            model: Some(upstream_model.to_string()),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TOO_LONG: &str = include_str!("../../tests/fixtures/gemini/error_400_too_long.json");
    const INVALID: &str =
        include_str!("../../tests/fixtures/gemini/error_400_invalid_argument.json");
    const BAD_KEY: &str =
        include_str!("../../tests/fixtures/gemini/error_400_api_key_invalid.json");
    const DENIED: &str =
        include_str!("../../tests/fixtures/gemini/error_403_permission_denied.json");
    const EXHAUSTED: &str =
        include_str!("../../tests/fixtures/gemini/error_429_resource_exhausted.json");
    const EMBEDDINGS: &str =
        include_str!("../../tests/fixtures/gemini/batch_embed_contents_response.json");

    const KEY: &str = "AIzaSy-test-key-0123456789";
    const BASE: &str = "https://generativelanguage.googleapis.com/v1beta";

    fn built(stream: bool, model: &str) -> reqwest::Request {
        let body = json!({"model": "public", "messages": [{"role": "user", "content": "Hi"}], "stream": stream});
        let http = reqwest::Client::new();
        Gemini
            .chat_request(
                &http,
                BASE,
                Some(&SecretString::from(KEY)),
                &ChatCall {
                    body: body.as_object().expect("object"),
                    upstream_model: model,
                    stream,
                },
            )
            .build()
            .expect("request builds")
    }

    fn sent_json(req: &reqwest::Request) -> Value {
        serde_json::from_slice(req.body().and_then(|b| b.as_bytes()).expect("bytes")).expect("json")
    }

    #[test]
    fn key_goes_in_its_header_and_never_in_the_url() {
        for stream in [false, true] {
            let req = built(stream, "gemini-2.5-flash");
            assert!(!req.url().as_str().contains(KEY), "{}", req.url());
            assert!(req.url().query_pairs().all(|(k, _)| k != "key"));
            let key = &req.headers()[API_KEY_HEADER];
            assert_eq!(key.to_str().expect("ascii"), KEY);
            assert!(key.is_sensitive(), "kept out of Debug output");
            assert!(req.headers().get("authorization").is_none());
        }
    }

    #[test]
    fn urls_name_the_model_and_the_method() {
        assert_eq!(
            built(false, "gemini-2.5-flash").url().as_str(),
            format!("{BASE}/models/gemini-2.5-flash:generateContent")
        );
        let s = built(true, "gemini-2.5-flash");
        assert_eq!(
            s.url().as_str(),
            format!("{BASE}/models/gemini-2.5-flash:streamGenerateContent?alt=sse")
        );
        assert_eq!(s.headers()["accept"], "text/event-stream");
        assert_eq!(
            built(false, "tunedModels/my-tune").url().as_str(),
            format!("{BASE}/tunedModels/my-tune:generateContent")
        );
        let body = sent_json(&built(false, "gemini-2.5-flash"));
        assert_eq!(
            body,
            json!({"contents": [{"role": "user", "parts": [{"text": "Hi"}]}]})
        );
    }

    #[test]
    fn without_a_secret_no_key_header_is_sent() {
        let body = json!({"messages": []});
        let req = Gemini
            .chat_request(
                &reqwest::Client::new(),
                BASE,
                None,
                &ChatCall {
                    body: body.as_object().expect("object"),
                    upstream_model: "m",
                    stream: false,
                },
            )
            .build()
            .expect("builds");
        assert!(req.headers().get(API_KEY_HEADER).is_none());
    }

    #[test]
    fn retry_info_gives_the_wait_a_429_asks_for() {
        let exhausted =
            include_str!("../../tests/fixtures/gemini/error_429_resource_exhausted.json");
        assert_eq!(
            Gemini.retry_delay(exhausted.as_bytes()),
            Some(Duration::from_secs(23))
        );
        let with = |delay: &str| {
            json!({"error": {"code": 429, "details": [
                {"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": delay}
            ]}})
            .to_string()
        };
        assert_eq!(
            Gemini.retry_delay(with("0.250s").as_bytes()),
            Some(Duration::from_millis(250))
        );
        for bad in ["23", "-1s", "soon", "NaNs"] {
            assert_eq!(Gemini.retry_delay(with(bad).as_bytes()), None, "{bad}");
        }
        assert_eq!(Gemini.retry_delay(b"{\"error\": {\"code\": 429}}"), None);
        assert_eq!(Gemini.retry_delay(b"not json"), None);
    }

    #[test]
    fn error_meanings() {
        assert_eq!(
            Gemini.error_meaning(400, TOO_LONG.as_bytes()),
            ErrorMeaning::ContextLength
        );
        assert_eq!(
            Gemini.error_meaning(400, INVALID.as_bytes()),
            ErrorMeaning::ClientError
        );
        assert_eq!(
            Gemini.error_meaning(400, BAD_KEY.as_bytes()),
            ErrorMeaning::KeyRejected
        );
        assert_eq!(
            Gemini.error_meaning(403, DENIED.as_bytes()),
            ErrorMeaning::ClientError,
            "403 is handled by its status before the body is asked"
        );
        assert_eq!(
            Gemini.error_meaning(400, b"<html>Bad Request</html>"),
            ErrorMeaning::ClientError
        );
        // The streaming endpoint without alt=sse wraps errors in an array.
        let wrapped = format!("[{TOO_LONG}]");
        assert_eq!(
            Gemini.error_meaning(400, wrapped.as_bytes()),
            ErrorMeaning::ContextLength
        );
    }

    fn client_body(raw: &str) -> Value {
        let out = Gemini.client_error_body(Bytes::copy_from_slice(raw.as_bytes()));
        serde_json::from_slice(&out).expect("json")
    }

    #[test]
    fn gemini_errors_become_openai_errors_with_gemini_message() {
        assert_eq!(
            client_body(TOO_LONG),
            json!({"error": {
                "message": "The input token count (1200293) exceeds the maximum number of tokens allowed (1048576).",
                "type": "invalid_request_error", "param": null, "code": "context_length_exceeded"}})
        );
        let invalid = client_body(INVALID);
        assert_eq!(invalid["error"]["code"], "invalid_argument");
        assert_eq!(
            invalid["error"]["message"],
            "* GenerateContentRequest.contents: contents is not specified"
        );
        let denied = client_body(DENIED);
        assert_eq!(denied["error"]["type"], "permission_error");
        assert_eq!(denied["error"]["code"], "permission_denied");
        assert!(denied["error"]["message"]
            .as_str()
            .is_some_and(|m| m.starts_with("Method doesn't allow unregistered callers")));
        let exhausted = client_body(EXHAUSTED);
        assert_eq!(exhausted["error"]["type"], "rate_limit_error");
        assert_eq!(exhausted["error"]["code"], "resource_exhausted");
        // Not Gemini's shape: left alone for the gateway to wrap.
        let raw = Bytes::from_static(b"upstream exploded");
        assert_eq!(Gemini.client_error_body(raw.clone()), raw);
    }

    #[test]
    fn embeddings_request_batches_every_input_with_dimensions() {
        let body = json!({"model": "public", "input": ["first text", "second"], "dimensions": 768});
        let req = Gemini
            .embeddings_request(
                &reqwest::Client::new(),
                BASE,
                Some(&SecretString::from(KEY)),
                body.as_object().expect("object"),
                "gemini-embedding-001",
            )
            .expect("supported")
            .build()
            .expect("builds");
        assert_eq!(
            req.url().as_str(),
            format!("{BASE}/models/gemini-embedding-001:batchEmbedContents")
        );
        assert!(!req.url().as_str().contains(KEY));
        assert_eq!(req.headers()[API_KEY_HEADER], KEY);
        assert_eq!(
            sent_json(&req),
            json!({"requests": [
                {"model": "models/gemini-embedding-001", "content": {"parts": [{"text": "first text"}]}, "outputDimensionality": 768},
                {"model": "models/gemini-embedding-001", "content": {"parts": [{"text": "second"}]}, "outputDimensionality": 768}
            ]})
        );
        let one = json!({"input": "just one"});
        let req = Gemini
            .embeddings_request(
                &reqwest::Client::new(),
                BASE,
                None,
                one.as_object().expect("obj"),
                "gemini-embedding-001",
            )
            .expect("supported")
            .build()
            .expect("builds");
        assert_eq!(
            sent_json(&req),
            json!({"requests": [{"model": "models/gemini-embedding-001", "content": {"parts": [{"text": "just one"}]}}]})
        );
        let tokens = json!({"input": [[1, 2, 3]]});
        assert!(Gemini
            .embeddings_request(
                &reqwest::Client::new(),
                BASE,
                None,
                tokens.as_object().expect("obj"),
                "m"
            )
            .is_none());
    }

    #[test]
    fn embeddings_reply_is_an_openai_list_with_usage_left_to_estimate() {
        let r = Gemini
            .embeddings_reply(
                Bytes::from_static(EMBEDDINGS.as_bytes()),
                "gemini-embedding-001",
            )
            .expect("reply");
        assert_eq!(
            r.usage, None,
            "no counts from Gemini: the gateway estimates"
        );
        assert_eq!(r.model.as_deref(), Some("gemini-embedding-001"));
        let b: Value = serde_json::from_slice(&r.body).expect("json");
        assert_eq!(
            b,
            json!({"object": "list", "data": [
                {"object": "embedding", "index": 0, "embedding": [0.013168523, -0.008711934, -0.046782676]},
                {"object": "embedding", "index": 1, "embedding": [-0.021532, 0.0049521, 0.03301876]}
            ], "model": "gemini-embedding-001", "usage": {"prompt_tokens": 0, "total_tokens": 0}})
        );
        assert!(Gemini
            .embeddings_reply(Bytes::from_static(b"{}"), "m")
            .is_err());
        assert!(Gemini
            .embeddings_reply(Bytes::from_static(b"nope"), "m")
            .is_err());
    }

    #[test]
    fn models_are_listed_with_the_key_in_its_header_and_their_prefix_dropped() {
        let http = reqwest::Client::new();
        let req = Gemini
            .models_request(
                &http,
                "https://generativelanguage.googleapis.com/v1beta",
                Some(&SecretString::from(KEY)),
            )
            .build()
            .expect("builds");
        assert_eq!(req.url().path(), "/v1beta/models");
        assert!(!req.url().as_str().contains(KEY));
        assert_eq!(req.headers()[API_KEY_HEADER], KEY);
        let ids = Gemini.model_ids(&json!({"models": [{"name": "models/gemini-2.5-flash"}, {"name": "models/gemini-2.5-pro"}]}));
        assert_eq!(ids, vec!["gemini-2.5-flash", "gemini-2.5-pro"]);
    }
}
