//! Anthropic Messages API channels (`anthropic`).
//!
//! Clients speak OpenAI chat completions; this module owns the translation
//! to and from Anthropic's Messages API (`POST {base_url}/v1/messages`,
//! `x-api-key`, `anthropic-version`): the request (`request`), the whole
//! answer, the streamed answer (`stream`) and Anthropic's error bodies,
//! so that nothing outside it knows Anthropic's wire format. Usage is read
//! straight from Anthropic's fields, which are already disjoint
//! (`input_tokens` excludes cache reads and writes): no count is derived
//! by subtraction, so none can be billed twice.

mod request;
mod stream;

use bytes::Bytes;
use reqwest::header::{ACCEPT, CONTENT_TYPE};
use secrecy::SecretString;
use serde_json::{json, Value};

use super::{
    CachedUrl, ChatCall, ChatReply, ErrorMeaning, NativeFormat, NativeRequest, Provider,
    ReplyError, StreamDecoder,
};
use crate::record::Usage;

/// The Messages API version this module speaks.
const API_VERSION: &str = "2023-06-01";

/// One channel's Anthropic endpoint.
#[derive(Default)]
pub struct Anthropic {
    messages_url: CachedUrl,
}

/// `{base}/v1/messages`; a base URL that already ends in `/v1` (as people
/// often copy it) is not given a second one.
fn messages_url(base_url: &str) -> String {
    let base = base_url.trim_end_matches('/');
    if base.ends_with("/v1") {
        format!("{base}/messages")
    } else {
        format!("{base}/v1/messages")
    }
}

fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

/// Anthropic's token counts as it reports them.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
struct AnthropicUsage {
    input_tokens: u64,
    cache_read_input_tokens: u64,
    cache_creation_input_tokens: u64,
    output_tokens: u64,
}

impl AnthropicUsage {
    /// Takes the counts a `usage` object carries, keeping the others (a
    /// stream reports the prompt at its start and the output at its end;
    /// later counts are cumulative, so they replace, never add).
    fn update(&mut self, usage: &Value) {
        let set = |field: &mut u64, key: &str| {
            if let Some(n) = usage.get(key).and_then(Value::as_u64) {
                *field = n;
            }
        };
        set(&mut self.input_tokens, "input_tokens");
        set(&mut self.cache_read_input_tokens, "cache_read_input_tokens");
        set(
            &mut self.cache_creation_input_tokens,
            "cache_creation_input_tokens",
        );
        set(&mut self.output_tokens, "output_tokens");
    }
}

/// The normalised usage: Anthropic's four counts are disjoint already, so
/// each maps to one field. Anthropic bills thinking as output and does not
/// report it separately, so `reasoning` stays 0 and `output` holds both.
fn usage_from(u: &AnthropicUsage) -> Usage {
    Usage {
        input: u.input_tokens,
        cached_input: u.cache_read_input_tokens,
        cache_write: u.cache_creation_input_tokens,
        output: u.output_tokens,
        reasoning: 0,
    }
}

/// OpenAI's `usage` object: `prompt_tokens` includes cached (and here
/// cache-written) tokens, as OpenAI clients expect.
fn openai_usage(u: &Usage) -> Value {
    let prompt = u.input + u.cached_input + u.cache_write;
    let completion = u.output + u.reasoning;
    json!({
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
        "prompt_tokens_details": {"cached_tokens": u.cached_input},
    })
}

/// OpenAI's `finish_reason` for an Anthropic `stop_reason`.
fn finish_reason(stop_reason: &str) -> &'static str {
    match stop_reason {
        "max_tokens" | "model_context_window_exceeded" => "length",
        "tool_use" => "tool_calls",
        "refusal" => "content_filter",
        // end_turn, stop_sequence, pause_turn and any reason added later.
        _ => "stop",
    }
}

/// Anthropic's whole `message` as an OpenAI `chat.completion`, with its
/// usage (`None` when the message reports none, so that the gateway
/// estimates it and says so rather than recording zero tokens).
fn completion(msg: &Value) -> Result<(Value, Option<Usage>, Option<String>), String> {
    let blocks = msg
        .get("content")
        .and_then(Value::as_array)
        .filter(|_| msg.get("type").and_then(Value::as_str) == Some("message"))
        .ok_or("upstream answered 200 without a message's `content`")?;
    let mut text = String::new();
    let mut reasoning = String::new();
    let mut tool_calls = Vec::new();
    for block in blocks {
        match block.get("type").and_then(Value::as_str) {
            Some("text") => text.push_str(block["text"].as_str().unwrap_or_default()),
            Some("thinking") => {
                reasoning.push_str(block["thinking"].as_str().unwrap_or_default());
            }
            Some("tool_use") => tool_calls.push(json!({
                "id": block["id"],
                "type": "function",
                "function": {
                    "name": block["name"],
                    "arguments": block.get("input").map_or_else(|| "{}".to_string(), Value::to_string),
                },
            })),
            // redacted_thinking, server tool blocks: nothing OpenAI can show.
            _ => {}
        }
    }
    let mut message = serde_json::Map::new();
    message.insert("role".into(), json!("assistant"));
    // OpenAI leaves `content` null on a tool-call-only answer.
    let content = if text.is_empty() && !tool_calls.is_empty() {
        Value::Null
    } else {
        Value::String(text)
    };
    message.insert("content".into(), content);
    if !reasoning.is_empty() {
        message.insert("reasoning_content".into(), Value::String(reasoning));
    }
    if !tool_calls.is_empty() {
        message.insert("tool_calls".into(), Value::Array(tool_calls));
    }
    let usage = msg.get("usage").filter(|u| u.is_object()).map(|u| {
        let mut counts = AnthropicUsage::default();
        counts.update(u);
        usage_from(&counts)
    });
    let model = msg.get("model").and_then(Value::as_str).map(str::to_string);
    let stop = msg
        .get("stop_reason")
        .and_then(Value::as_str)
        .unwrap_or("end_turn");
    let mut body = json!({
        "id": msg.get("id").cloned().unwrap_or(Value::Null),
        "object": "chat.completion",
        "created": unix_now(),
        "model": model,
        "choices": [{
            "index": 0,
            "message": message,
            "logprobs": null,
            "finish_reason": finish_reason(stop),
        }],
    });
    if let (Some(u), Value::Object(b)) = (&usage, &mut body) {
        b.insert("usage".into(), openai_usage(u));
    }
    Ok((body, usage, model))
}

/// Anthropic's error object: `{"type":"error","error":{"type","message"}}`.
fn error_parts(body: &[u8]) -> Option<(String, String)> {
    let v: Value = serde_json::from_slice(body).ok()?;
    let err = v.get("error")?;
    let kind = err.get("type")?.as_str()?.to_string();
    let message = err.get("message")?.as_str()?.to_string();
    Some((kind, message))
}

/// Whether an Anthropic error message says the prompt does not fit the
/// model's context window.
fn is_context_length(message: &str) -> bool {
    let m = message.to_ascii_lowercase();
    [
        "prompt is too long",
        "exceed context limit",
        "exceeds the context window",
        "context window",
        "context length",
    ]
    .iter()
    .any(|p| m.contains(p))
}

impl Anthropic {
    /// A Messages API call carrying `body`.
    fn messages_post(
        &self,
        http: &reqwest::Client,
        base_url: &str,
        secret: Option<&SecretString>,
        body: &impl serde::Serialize,
        stream: bool,
    ) -> reqwest::RequestBuilder {
        let mut req = self
            .messages_url
            .post(http, base_url, messages_url)
            .header(CONTENT_TYPE, "application/json")
            .header("anthropic-version", API_VERSION)
            // Serialising a JSON value cannot fail.
            .body(serde_json::to_vec(body).unwrap_or_default());
        if stream {
            req = req.header(ACCEPT, "text/event-stream");
        }
        super::with_key(req, "x-api-key", secret)
    }
}

impl Provider for Anthropic {
    fn chat_request(
        &self,
        http: &reqwest::Client,
        base_url: &str,
        secret: Option<&SecretString>,
        call: &ChatCall<'_>,
    ) -> reqwest::RequestBuilder {
        let body = request::translate(call.body, call.upstream_model, call.stream);
        self.messages_post(http, base_url, secret, &body, call.stream)
    }

    fn models_request(
        &self,
        http: &reqwest::Client,
        base_url: &str,
        secret: Option<&SecretString>,
    ) -> reqwest::RequestBuilder {
        // `{base}/v1/models`, authenticated like a Messages call.
        let url = messages_url(base_url).replace("/v1/messages", "/v1/models");
        let req = http.get(url).header("anthropic-version", API_VERSION);
        super::with_key(req, "x-api-key", secret)
    }

    fn native_format(&self) -> Option<NativeFormat> {
        Some(NativeFormat::Anthropic)
    }

    fn native_request(
        &self,
        http: &reqwest::Client,
        base_url: &str,
        secret: Option<&SecretString>,
        native: &NativeRequest<'_>,
        upstream_model: &str,
        stream: bool,
    ) -> Option<reqwest::RequestBuilder> {
        if native.format != NativeFormat::Anthropic {
            return None;
        }
        let mut body = native.body.clone();
        body.insert("model".into(), Value::String(upstream_model.to_string()));
        let mut req = self.messages_post(http, base_url, secret, &body, stream);
        if let Some(beta) = native.beta {
            req = req.header("anthropic-beta", beta);
        }
        Some(req)
    }

    fn native_reply(&self, body: Bytes) -> Result<ChatReply, ReplyError> {
        let msg: Value = serde_json::from_slice(&body)
            .map_err(|e| format!("upstream answered 200 with invalid JSON: {e}"))?;
        let (_, usage, model) = completion(&msg)?;
        Ok(ChatReply { body, usage, model })
    }

    fn native_stream_decoder(&self) -> Option<Box<dyn StreamDecoder>> {
        Some(Box::new(stream::AnthropicStream::native()))
    }

    fn chat_reply(&self, body: Bytes) -> Result<ChatReply, ReplyError> {
        let msg: Value = serde_json::from_slice(&body)
            .map_err(|e| format!("upstream answered 200 with invalid JSON: {e}"))?;
        let (openai, usage, model) = completion(&msg)?;
        Ok(ChatReply {
            body: Bytes::from(openai.to_string()),
            usage,
            model,
        })
    }

    fn error_meaning(&self, status: u16, body: &[u8]) -> ErrorMeaning {
        match error_parts(body) {
            Some((kind, message))
                if status == 400
                    && kind == "invalid_request_error"
                    && is_context_length(&message) =>
            {
                ErrorMeaning::ContextLength
            }
            _ => ErrorMeaning::ClientError,
        }
    }

    fn client_error_body(&self, body: Bytes) -> Bytes {
        let Some((kind, message)) = error_parts(&body) else {
            return body;
        };
        let code = is_context_length(&message).then_some("context_length_exceeded");
        Bytes::from(
            json!({"error": {"message": message, "type": kind, "param": null, "code": code}})
                .to_string(),
        )
    }

    fn stream_decoder(&self, client_wants_usage: bool) -> Box<dyn StreamDecoder> {
        Box::new(stream::AnthropicStream::new(client_wants_usage))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Map;

    macro_rules! fixture {
        ($name:literal) => {
            include_str!(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/tests/fixtures/anthropic/",
                $name
            ))
        };
    }

    fn reply(fixture: &str) -> (Value, ChatReply) {
        let r = Anthropic::default()
            .chat_reply(Bytes::copy_from_slice(fixture.as_bytes()))
            .expect("valid answer");
        (serde_json::from_slice(&r.body).expect("json"), r)
    }

    #[test]
    fn request_goes_to_v1_messages_with_key_version_and_translated_body() {
        let body: Map<String, Value> = serde_json::from_value(json!({
            "model": "claude", "messages": [{"role": "user", "content": "Hi"}], "stream": true
        }))
        .expect("map");
        let http = reqwest::Client::new();
        for base in ["https://api.anthropic.com", "https://api.anthropic.com/v1/"] {
            let req = Anthropic::default()
                .chat_request(
                    &http,
                    base,
                    Some(&SecretString::from("sk-ant-test")),
                    &ChatCall {
                        body: &body,
                        upstream_model: "claude-sonnet-4-5",
                        stream: true,
                    },
                )
                .build()
                .expect("request builds");
            assert_eq!(req.url().as_str(), "https://api.anthropic.com/v1/messages");
            let h = req.headers();
            assert_eq!(h["x-api-key"], "sk-ant-test");
            assert!(h["x-api-key"].is_sensitive());
            assert_eq!(h["anthropic-version"], "2023-06-01");
            assert_eq!(h["content-type"], "application/json");
            assert_eq!(h["accept"], "text/event-stream");
            assert!(h.get("authorization").is_none());
            let sent: Value =
                serde_json::from_slice(req.body().and_then(|b| b.as_bytes()).expect("bytes"))
                    .expect("json");
            assert_eq!(sent["model"], "claude-sonnet-4-5");
            assert_eq!(sent["stream"], true);
            assert_eq!(
                sent["messages"],
                json!([{"role": "user", "content": [{"type": "text", "text": "Hi"}]}])
            );
        }
    }

    #[test]
    fn text_and_tool_use_answer_becomes_a_chat_completion() {
        let (body, r) = reply(fixture!("message_text_tool_use.json"));
        assert_eq!(body["id"], "msg_01Aq9w938a90dw8q3Fz5dGkw");
        assert_eq!(body["object"], "chat.completion");
        assert!(body["created"].as_i64().is_some_and(|t| t > 1_600_000_000));
        assert_eq!(body["model"], "claude-sonnet-4-5-20250929");
        assert_eq!(r.model.as_deref(), Some("claude-sonnet-4-5-20250929"));
        let choice = &body["choices"][0];
        assert_eq!(choice["index"], 0);
        assert_eq!(choice["finish_reason"], "tool_calls");
        assert_eq!(
            choice["message"],
            json!({
                "role": "assistant",
                "content": "I'll check the current weather in Paris for you.",
                "tool_calls": [{
                    "id": "toolu_01A09q90qw90lq917835lq9",
                    "type": "function",
                    "function": {"name": "get_weather", "arguments": "{\"location\":\"Paris, France\",\"unit\":\"celsius\"}"}
                }]
            })
        );
        let args: Value = serde_json::from_str(
            choice["message"]["tool_calls"][0]["function"]["arguments"]
                .as_str()
                .expect("string"),
        )
        .expect("arguments are a JSON string");
        assert_eq!(
            args,
            json!({"location": "Paris, France", "unit": "celsius"})
        );
        assert_eq!(
            body["usage"],
            json!({"prompt_tokens": 472, "completion_tokens": 89, "total_tokens": 561, "prompt_tokens_details": {"cached_tokens": 0}})
        );
        assert_eq!(
            r.usage,
            Some(Usage {
                input: 472,
                output: 89,
                ..Usage::default()
            })
        );
    }

    #[test]
    fn cache_counts_are_disjoint_and_totals_match_what_anthropic_billed() {
        let raw: Value =
            serde_json::from_str(fixture!("message_thinking_cache.json")).expect("fixture");
        let billed: u64 = [
            "input_tokens",
            "cache_read_input_tokens",
            "cache_creation_input_tokens",
            "output_tokens",
        ]
        .iter()
        .map(|k| raw["usage"][k].as_u64().expect("count"))
        .sum();
        let (body, r) = reply(fixture!("message_thinking_cache.json"));
        let u = r.usage.expect("usage");
        assert_eq!(
            u,
            Usage {
                input: 21,
                cached_input: 2000,
                cache_write: 1000,
                output: 503,
                reasoning: 0
            }
        );
        // No double counting: the disjoint counts sum to what was billed,
        // and so does the OpenAI view the client gets.
        assert_eq!(u.total(), billed);
        assert_eq!(body["usage"]["total_tokens"].as_u64(), Some(billed));
        assert_eq!(body["usage"]["prompt_tokens"], 3021);
        assert_eq!(body["usage"]["completion_tokens"], 503);
        assert_eq!(
            body["usage"]["prompt_tokens_details"]["cached_tokens"],
            2000
        );
        // The OpenAI view read back the OpenAI way loses no token either.
        assert_eq!(
            Usage::from_openai(&body["usage"]).map(|u| u.total()),
            Some(billed)
        );
        // Thinking is shown as reasoning; redacted thinking is not shown.
        let msg = &body["choices"][0]["message"];
        assert_eq!(
            msg["reasoning_content"],
            "The contract text is cached; the question is about clause 4."
        );
        assert_eq!(
            msg["content"],
            "Clause 4 lets either party end the contract with 30 days' notice."
        );
        assert!(msg.get("tool_calls").is_none());
        assert_eq!(body["choices"][0]["finish_reason"], "stop");
    }

    #[test]
    fn stop_reasons_map_to_finish_reasons() {
        for (reason, want) in [
            ("end_turn", "stop"),
            ("stop_sequence", "stop"),
            ("max_tokens", "length"),
            ("tool_use", "tool_calls"),
            ("refusal", "content_filter"),
        ] {
            let msg = json!({"id": "m", "type": "message", "role": "assistant", "model": "claude-haiku-4-5",
                "content": [{"type": "text", "text": "x"}], "stop_reason": reason,
                "usage": {"input_tokens": 1, "output_tokens": 1}});
            let (body, _) = reply(&msg.to_string());
            assert_eq!(body["choices"][0]["finish_reason"], want, "{reason}");
        }
    }

    #[test]
    fn tool_only_answer_has_null_content_and_no_invented_usage() {
        let msg = json!({"id": "m", "type": "message", "role": "assistant", "model": "claude-haiku-4-5",
            "content": [{"type": "tool_use", "id": "t", "name": "now", "input": {}}],
            "stop_reason": "tool_use"});
        let (body, r) = reply(&msg.to_string());
        // No usage reported: none claimed, so the gateway estimates it.
        assert_eq!(r.usage, None);
        assert!(body.get("usage").is_none());
        assert_eq!(body["choices"][0]["message"]["content"], Value::Null);
        assert_eq!(
            body["choices"][0]["message"]["tool_calls"][0]["function"]["arguments"],
            "{}"
        );
    }

    #[test]
    fn a_200_that_is_not_a_message_is_malformed() {
        for bad in [
            &b"not json"[..],
            fixture!("error_overloaded_529.json").as_bytes(),
        ] {
            let r = Anthropic::default().chat_reply(Bytes::copy_from_slice(bad));
            assert!(matches!(r, Err(ReplyError::Malformed(_))), "{r:?}");
        }
    }

    #[test]
    fn prompt_too_long_is_context_length_and_other_4xx_are_client_errors() {
        let meaning =
            |status, body: &str| Anthropic::default().error_meaning(status, body.as_bytes());
        assert_eq!(
            meaning(400, fixture!("error_prompt_too_long_400.json")),
            ErrorMeaning::ContextLength
        );
        assert_eq!(
            meaning(400, fixture!("error_context_limit_400.json")),
            ErrorMeaning::ContextLength
        );
        assert_eq!(
            meaning(400, fixture!("error_invalid_request_400.json")),
            ErrorMeaning::ClientError
        );
        assert_eq!(
            meaning(400, fixture!("error_output_blocked_400.json")),
            ErrorMeaning::ClientError
        );
        assert_eq!(
            meaning(429, fixture!("error_rate_limit_429.json")),
            ErrorMeaning::ClientError
        );
        assert_eq!(meaning(400, "<html>bad</html>"), ErrorMeaning::ClientError);
    }

    #[test]
    fn error_bodies_become_openai_errors_with_anthropics_message() {
        let convert = |raw: &str| -> Value {
            let out =
                Anthropic::default().client_error_body(Bytes::copy_from_slice(raw.as_bytes()));
            serde_json::from_slice(&out).expect("json")
        };
        assert_eq!(
            convert(fixture!("error_invalid_request_400.json")),
            json!({"error": {
                "message": "messages.0.content.1.image.source.base64.media_type: Input should be 'image/jpeg', 'image/png', 'image/gif' or 'image/webp'",
                "type": "invalid_request_error", "param": null, "code": null
            }})
        );
        assert_eq!(
            convert(fixture!("error_prompt_too_long_400.json")),
            json!({"error": {
                "message": "prompt is too long: 207791 tokens > 200000 maximum",
                "type": "invalid_request_error", "param": null, "code": "context_length_exceeded"
            }})
        );
        for (fixture, kind) in [
            (fixture!("error_overloaded_529.json"), "overloaded_error"),
            (fixture!("error_rate_limit_429.json"), "rate_limit_error"),
        ] {
            let v = convert(fixture);
            assert_eq!(v["error"]["type"], kind);
            assert!(v.get("type").is_none() && v.get("request_id").is_none());
        }
        // Not Anthropic's shape: left for the gateway to wrap.
        let plain = Bytes::from_static(b"upstream went away");
        assert_eq!(Anthropic::default().client_error_body(plain.clone()), plain);
    }

    #[test]
    fn models_are_listed_from_v1_models_with_the_key_header() {
        let http = reqwest::Client::new();
        let req = Anthropic::default()
            .models_request(
                &http,
                "https://api.anthropic.com",
                Some(&SecretString::from("sk-ant")),
            )
            .build()
            .expect("builds");
        assert_eq!(req.url().as_str(), "https://api.anthropic.com/v1/models");
        assert_eq!(req.headers()["x-api-key"], "sk-ant");
        assert!(req.headers().get("authorization").is_none());
        let ids = Anthropic::default().model_ids(
            &json!({"data": [{"type": "model", "id": "claude-sonnet-4-5"}], "has_more": false}),
        );
        assert_eq!(ids, vec!["claude-sonnet-4-5"]);
    }
}
