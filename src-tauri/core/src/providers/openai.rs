//! OpenAI chat completions (`openai` and `openai-compatible` channels).
//!
//! The client already speaks this format, so requests pass through with
//! every field intact — only `model` is replaced by the target's upstream
//! id, and streams ask for usage (`stream_options.include_usage`). Answers
//! pass through byte for byte, except that the usage chunk and the
//! `"usage": null` fields it implies are removed again when the client did
//! not ask for them.

use bytes::Bytes;
use secrecy::{ExposeSecret, SecretString};
use serde::ser::{Serialize, SerializeMap, Serializer};
use serde_json::{Map, Value};

use super::{
    CachedUrl, ChatCall, ChatReply, Decoded, ErrorMeaning, NativeFormat, NativeRequest, Provider,
    ReplyError, SseEvent, StreamDecoder,
};
use crate::record::Usage;

/// One channel's OpenAI endpoint.
#[derive(Default)]
pub struct OpenAi {
    chat_url: CachedUrl,
    /// The upstream serves `/responses` too (OpenAI itself): a Responses
    /// client's request goes there as it was sent.
    responses: bool,
}

impl OpenAi {
    pub fn with_responses() -> OpenAi {
        OpenAi {
            responses: true,
            ..OpenAi::default()
        }
    }
}

/// The client's request with a few top-level fields replaced, serialised
/// without copying the (possibly image-heavy) original.
struct Patched<'a> {
    base: &'a Map<String, Value>,
    patches: &'a [(&'static str, Value)],
}

impl Serialize for Patched<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut map = s.serialize_map(None)?;
        for (k, v) in self.base {
            match self.patches.iter().find(|(pk, _)| pk == k) {
                Some((_, pv)) => map.serialize_entry(k, pv)?,
                None => map.serialize_entry(k, v)?,
            }
        }
        for (pk, pv) in self.patches {
            if !self.base.contains_key(*pk) {
                map.serialize_entry(pk, pv)?;
            }
        }
        map.end()
    }
}

impl Provider for OpenAi {
    fn chat_request(
        &self,
        http: &reqwest::Client,
        base_url: &str,
        secret: Option<&SecretString>,
        call: &ChatCall<'_>,
    ) -> reqwest::RequestBuilder {
        let mut patches: Vec<(&'static str, Value)> =
            vec![("model", Value::String(call.upstream_model.to_string()))];
        if call.stream {
            let mut opts = call
                .body
                .get("stream_options")
                .and_then(|o| o.as_object())
                .cloned()
                .unwrap_or_default();
            opts.insert("include_usage".into(), Value::Bool(true));
            patches.push(("stream_options", Value::Object(opts)));
        }
        let body = serde_json::to_vec(&Patched {
            base: call.body,
            patches: &patches,
        })
        // Serialising a map of JSON values cannot fail.
        .unwrap_or_default();
        let mut req = self
            .chat_url
            .post(http, base_url, |base| format!("{base}/chat/completions"))
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body(body);
        if call.stream {
            req = req.header(reqwest::header::ACCEPT, "text/event-stream");
        }
        if let Some(secret) = secret {
            req = req.bearer_auth(secret.expose_secret());
        }
        req
    }

    fn chat_reply(&self, body: Bytes) -> Result<ChatReply, ReplyError> {
        /// Only what the gateway reads; the rest is skipped, not built.
        #[derive(serde::Deserialize)]
        struct View<'a> {
            #[serde(borrow)]
            model: Option<std::borrow::Cow<'a, str>>,
            choices: Option<Vec<serde::de::IgnoredAny>>,
            usage: Option<Value>,
        }
        let v: View<'_> = serde_json::from_slice(&body)
            .map_err(|e| format!("upstream answered 200 with invalid JSON: {e}"))?;
        if v.choices.is_none() {
            return Err("upstream answered 200 without `choices`".into());
        }
        Ok(ChatReply {
            usage: v.usage.as_ref().and_then(Usage::from_openai),
            model: v.model.map(|m| m.into_owned()),
            body,
        })
    }

    fn native_format(&self) -> Option<NativeFormat> {
        self.responses.then_some(NativeFormat::Responses)
    }

    /// A Responses client's own request, with only `model` replaced.
    fn native_request(
        &self,
        http: &reqwest::Client,
        base_url: &str,
        secret: Option<&SecretString>,
        native: &NativeRequest<'_>,
        upstream_model: &str,
        stream: bool,
    ) -> Option<reqwest::RequestBuilder> {
        if !self.responses || native.format != NativeFormat::Responses {
            return None;
        }
        let patches = [("model", Value::String(upstream_model.to_string()))];
        let body = serde_json::to_vec(&Patched {
            base: native.body,
            patches: &patches,
        })
        // Serialising a map of JSON values cannot fail.
        .unwrap_or_default();
        let mut req = http
            .post(format!("{}/responses", base_url.trim_end_matches('/')))
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body(body);
        if stream {
            req = req.header(reqwest::header::ACCEPT, "text/event-stream");
        }
        if let Some(secret) = secret {
            req = req.bearer_auth(secret.expose_secret());
        }
        Some(req)
    }

    /// A `response` object, read for its usage and model and kept as sent.
    fn native_reply(&self, body: Bytes) -> Result<ChatReply, ReplyError> {
        let v: Value = serde_json::from_slice(&body)
            .map_err(|e| format!("upstream answered 200 with invalid JSON: {e}"))?;
        if v.get("object").and_then(Value::as_str) != Some("response") {
            return Err("upstream answered 200 without a `response` object".into());
        }
        Ok(ChatReply {
            usage: v.get("usage").and_then(responses_usage),
            model: v.get("model").and_then(Value::as_str).map(str::to_string),
            body,
        })
    }

    fn native_stream_decoder(&self) -> Option<Box<dyn StreamDecoder>> {
        self.responses
            .then(|| Box::new(ResponsesStream::default()) as Box<dyn StreamDecoder>)
    }

    fn error_meaning(&self, status: u16, body: &[u8]) -> ErrorMeaning {
        if status == 400 || status == 413 {
            let v: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
            let code = v.pointer("/error/code").and_then(|c| c.as_str());
            let message = v
                .pointer("/error/message")
                .and_then(|m| m.as_str())
                .unwrap_or_default();
            if code == Some("context_length_exceeded")
                || message.contains("maximum context length")
                || message.contains("context_length_exceeded")
            {
                return ErrorMeaning::ContextLength;
            }
        }
        ErrorMeaning::ClientError
    }

    fn stream_decoder(&self, client_wants_usage: bool) -> Box<dyn StreamDecoder> {
        Box::new(OpenAiStream {
            client_wants_usage,
            ..Default::default()
        })
    }

    fn embeddings_request(
        &self,
        http: &reqwest::Client,
        base_url: &str,
        secret: Option<&SecretString>,
        body: &Map<String, Value>,
        upstream_model: &str,
    ) -> Option<reqwest::RequestBuilder> {
        let patches = [("model", Value::String(upstream_model.to_string()))];
        let body = serde_json::to_vec(&Patched {
            base: body,
            patches: &patches,
        })
        // Serialising a map of JSON values cannot fail.
        .unwrap_or_default();
        let mut req = http
            .post(format!("{base_url}/embeddings"))
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body(body);
        if let Some(secret) = secret {
            req = req.bearer_auth(secret.expose_secret());
        }
        Some(req)
    }

    fn embeddings_reply(&self, body: Bytes, _upstream_model: &str) -> Result<ChatReply, String> {
        let v: Value = serde_json::from_slice(&body)
            .map_err(|e| format!("upstream answered 200 with invalid JSON: {e}"))?;
        if v.get("data").is_none_or(|d| !d.is_array()) {
            return Err("upstream answered 200 without `data`".into());
        }
        // Embeddings bill prompt tokens only.
        let usage = v
            .pointer("/usage/prompt_tokens")
            .and_then(|p| p.as_u64())
            .map(|input| Usage {
                input,
                ..Usage::default()
            });
        Ok(ChatReply {
            usage,
            model: v.get("model").and_then(|m| m.as_str()).map(str::to_string),
            body,
        })
    }
}

/// A Responses `usage` object: `input_tokens` includes cached ones and
/// `output_tokens` reasoning ones, as in chat completions.
fn responses_usage(u: &Value) -> Option<Usage> {
    let n = |p: &str| u.pointer(p).and_then(Value::as_u64).unwrap_or(0);
    if u.get("input_tokens").is_none() && u.get("output_tokens").is_none() {
        return None;
    }
    let cached = n("/input_tokens_details/cached_tokens");
    let reasoning = n("/output_tokens_details/reasoning_tokens");
    Some(Usage {
        input: n("/input_tokens").saturating_sub(cached),
        cached_input: cached,
        cache_write: 0,
        output: n("/output_tokens").saturating_sub(reasoning),
        reasoning,
    })
}

/// Accounts for a Responses event stream and forwards its events as they
/// came: the usage is in `response.completed` (or `.incomplete`), the
/// answer is whole once one of those arrived.
#[derive(Default)]
struct ResponsesStream {
    usage: Option<Usage>,
    model: Option<String>,
    finished: bool,
    output_chars: usize,
}

impl StreamDecoder for ResponsesStream {
    fn decode(&mut self, event: &SseEvent) -> Decoded {
        let mut out = Decoded::default();
        let Ok(v) = serde_json::from_str::<Value>(&event.data) else {
            out.malformed = true;
            return out;
        };
        let kind = v
            .get("type")
            .and_then(Value::as_str)
            .or(event.event.as_deref())
            .unwrap_or("");
        if let Some(m) = v.pointer("/response/model").and_then(Value::as_str) {
            self.model = Some(m.to_string());
        }
        match kind {
            "response.completed" | "response.incomplete" => {
                self.finished = true;
                self.usage = v.pointer("/response/usage").and_then(responses_usage);
                out.progress = true;
            }
            "response.failed" | "error" => {
                let message = v
                    .pointer("/response/error/message")
                    .or_else(|| v.get("message"))
                    .or_else(|| v.pointer("/error/message"))
                    .and_then(Value::as_str)
                    .unwrap_or("the upstream reported an error");
                out.error = Some(message.to_string());
                return out;
            }
            k if k.ends_with(".delta") => {
                out.progress = true;
                self.output_chars += v
                    .get("delta")
                    .and_then(Value::as_str)
                    .map_or(0, |d| d.chars().count());
            }
            "response.output_item.added" | "response.output_item.done" => out.progress = true,
            _ => {}
        }
        let name = event.event.as_deref().unwrap_or(kind);
        out.forward = vec![format!("event: {name}\ndata: {}\n\n", event.data.trim())];
        out
    }

    fn usage(&self) -> Option<Usage> {
        self.usage
    }

    fn model(&self) -> Option<&str> {
        self.model.as_deref()
    }

    fn finished(&self) -> bool {
        self.finished
    }

    fn output_chars(&self) -> usize {
        self.output_chars
    }
}

#[derive(Default)]
struct OpenAiStream {
    client_wants_usage: bool,
    usage: Option<Usage>,
    model: Option<String>,
    finished: bool,
    output_chars: usize,
}

fn text_chars(v: Option<&Value>) -> usize {
    match v {
        Some(Value::String(s)) => s.chars().count(),
        Some(Value::Null) | None => 0,
        Some(other) => other.to_string().len(),
    }
}

impl StreamDecoder for OpenAiStream {
    fn decode(&mut self, event: &SseEvent) -> Decoded {
        let data = event.data.trim();
        if data == "[DONE]" {
            return Decoded {
                done: true,
                ..Default::default()
            };
        }
        let Ok(Value::Object(mut chunk)) = serde_json::from_str::<Value>(data) else {
            return Decoded {
                malformed: true,
                ..Default::default()
            };
        };
        if let Some(err) = chunk.get("error") {
            let message = err
                .get("message")
                .and_then(|m| m.as_str())
                .map_or_else(|| err.to_string(), str::to_string);
            return Decoded {
                error: Some(message),
                ..Default::default()
            };
        }
        if self.model.is_none() {
            if let Some(m) = chunk.get("model").and_then(|m| m.as_str()) {
                self.model = Some(m.to_string());
            }
        }
        let usage = chunk.get("usage").and_then(Usage::from_openai);
        if usage.is_some() {
            self.usage = usage;
        }
        let mut progress = false;
        let choices = chunk.get("choices").and_then(|c| c.as_array());
        for choice in choices.into_iter().flatten() {
            if choice.get("finish_reason").is_some_and(|f| !f.is_null()) {
                self.finished = true;
                progress = true;
            }
            let Some(delta) = choice.get("delta") else {
                continue;
            };
            for field in ["content", "reasoning_content", "reasoning", "refusal"] {
                let n = text_chars(delta.get(field));
                if n > 0 {
                    self.output_chars += n;
                    progress = true;
                }
            }
            for field in ["tool_calls", "function_call"] {
                let n = text_chars(delta.get(field));
                if n > 0 {
                    self.output_chars += n;
                    progress = true;
                }
            }
        }

        let forward: Option<String> = if self.client_wants_usage || !chunk.contains_key("usage") {
            Some(data.to_string())
        } else if usage.is_some() && choices.is_none_or(|c| c.is_empty()) {
            // The usage-only chunk the client did not ask for.
            None
        } else {
            chunk.remove("usage");
            Some(Value::Object(chunk).to_string())
        };
        Decoded {
            forward: forward.into_iter().collect(),
            progress,
            ..Default::default()
        }
    }

    fn usage(&self) -> Option<Usage> {
        self.usage
    }

    fn model(&self) -> Option<&str> {
        self.model.as_deref()
    }

    fn finished(&self) -> bool {
        self.finished
    }

    fn output_chars(&self) -> usize {
        self.output_chars
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn ev(data: &str) -> SseEvent {
        SseEvent {
            event: None,
            data: data.to_string(),
        }
    }

    #[test]
    fn request_keeps_unknown_fields_and_order_and_asks_for_usage() {
        let body = json!({
            "model": "public-name",
            "messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA"}}]}],
            "tools": [{"type": "function", "function": {"name": "f", "parameters": {}}}],
            "response_format": {"type": "json_object"},
            "seed": 7,
            "stream": true,
            "stream_options": {"include_obfuscation": false}
        });
        let map = body.as_object().expect("object");
        let http = reqwest::Client::new();
        let req = OpenAi::default()
            .chat_request(
                &http,
                "http://127.0.0.1:9/v1",
                Some(&SecretString::from("sk-x")),
                &ChatCall {
                    body: map,
                    upstream_model: "gpt-5.5-2026",
                    stream: true,
                },
            )
            .build()
            .expect("request builds");
        assert_eq!(req.url().as_str(), "http://127.0.0.1:9/v1/chat/completions");
        assert_eq!(
            req.headers()["authorization"].to_str().expect("ascii"),
            "Bearer sk-x"
        );
        let sent: Value =
            serde_json::from_slice(req.body().and_then(|b| b.as_bytes()).expect("bytes"))
                .expect("json");
        assert_eq!(sent["model"], "gpt-5.5-2026");
        assert_eq!(sent["tools"], body["tools"]);
        assert_eq!(sent["response_format"], body["response_format"]);
        assert_eq!(sent["seed"], 7);
        assert_eq!(sent["messages"], body["messages"]);
        assert_eq!(
            sent["stream_options"],
            json!({"include_obfuscation": false, "include_usage": true})
        );
        let keys: Vec<&String> = sent.as_object().expect("obj").keys().collect();
        assert_eq!(keys[0], "model");
    }

    #[test]
    fn usage_chunk_is_stripped_when_the_client_did_not_ask() {
        let mut d = OpenAi::default().stream_decoder(false);
        let first = d.decode(&ev(
            r#"{"id":"c","object":"chat.completion.chunk","model":"m","choices":[{"index":0,"delta":{"content":"Hi"},"finish_reason":null}],"usage":null}"#,
        ));
        assert!(first.progress);
        let fwd: Value = serde_json::from_str(&first.forward[0]).expect("json");
        assert!(fwd.get("usage").is_none());
        assert_eq!(fwd["choices"][0]["delta"]["content"], "Hi");

        let usage = d.decode(&ev(
            r#"{"id":"c","object":"chat.completion.chunk","model":"m","choices":[],"usage":{"prompt_tokens":5,"completion_tokens":1,"total_tokens":6}}"#,
        ));
        assert!(usage.forward.is_empty());
        assert_eq!(d.usage().map(|u| u.total()), Some(6));
        assert!(d.decode(&ev("[DONE]")).done);
    }

    #[test]
    fn usage_chunk_is_kept_verbatim_when_the_client_asked() {
        let mut d = OpenAi::default().stream_decoder(true);
        let raw = r#"{"id":"c","choices":[],"usage":{"prompt_tokens":5,"completion_tokens":1}}"#;
        assert_eq!(d.decode(&ev(raw)).forward, vec![raw.to_string()]);
    }

    #[test]
    fn role_only_chunk_is_not_progress_and_malformed_is_flagged() {
        let mut d = OpenAi::default().stream_decoder(true);
        let role = d.decode(&ev(
            r#"{"choices":[{"index":0,"delta":{"role":"assistant","content":""},"finish_reason":null}]}"#,
        ));
        assert!(!role.progress && role.forward.len() == 1);
        assert!(d.decode(&ev("{not json")).malformed);
        let err = d.decode(&ev(r#"{"error":{"message":"overloaded"}}"#));
        assert_eq!(err.error.as_deref(), Some("overloaded"));
    }

    #[test]
    fn embeddings_pass_through_with_the_upstream_model_and_count_prompt_tokens() {
        let body = json!({"model": "public", "input": ["a", "b"], "dimensions": 256});
        let http = reqwest::Client::new();
        let req = OpenAi::default()
            .embeddings_request(
                &http,
                "http://127.0.0.1:9/v1",
                None,
                body.as_object().expect("obj"),
                "text-embedding-3-small",
            )
            .expect("supported")
            .build()
            .expect("builds");
        assert_eq!(req.url().as_str(), "http://127.0.0.1:9/v1/embeddings");
        let sent: Value =
            serde_json::from_slice(req.body().and_then(|b| b.as_bytes()).expect("bytes"))
                .expect("json");
        assert_eq!(
            sent,
            json!({"model": "text-embedding-3-small", "input": ["a", "b"], "dimensions": 256})
        );
        let reply = OpenAi::default()
            .embeddings_reply(
                Bytes::from_static(br#"{"object":"list","data":[{"object":"embedding","index":0,"embedding":[0.1]}],"model":"text-embedding-3-small","usage":{"prompt_tokens":7,"total_tokens":7}}"#),
                "text-embedding-3-small",
            )
            .expect("reply");
        assert_eq!(
            reply.usage,
            Some(Usage {
                input: 7,
                ..Usage::default()
            })
        );
        assert!(OpenAi::default()
            .embeddings_reply(Bytes::from_static(b"{}"), "m")
            .is_err());
    }

    #[test]
    fn context_length_is_recognised() {
        let body = br#"{"error":{"message":"This model's maximum context length is 8192 tokens.","type":"invalid_request_error","param":"messages","code":"context_length_exceeded"}}"#;
        assert_eq!(
            OpenAi::default().error_meaning(400, body),
            ErrorMeaning::ContextLength
        );
        let policy = br#"{"error":{"message":"Your request was rejected as a result of our safety system.","type":"invalid_request_error","code":"content_policy_violation"}}"#;
        assert_eq!(
            OpenAi::default().error_meaning(400, policy),
            ErrorMeaning::ClientError
        );
    }
}
