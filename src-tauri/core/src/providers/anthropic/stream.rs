//! Anthropic's streamed Messages events → OpenAI `chat.completion.chunk`s.
//!
//! Anthropic streams typed events around numbered content blocks
//! (`message_start`, `content_block_start/delta/stop`, `message_delta`,
//! `message_stop`); OpenAI clients expect one choice whose deltas carry
//! text, reasoning and tool calls numbered among tool calls only. This
//! decoder keeps that mapping, and the usage Anthropic reports in two
//! halves: the prompt counts at the start, the output count at the end.

use std::collections::HashMap;

use serde_json::{json, Value};

use super::{finish_reason, openai_usage, usage_from, AnthropicUsage};
use crate::providers::{Decoded, SseEvent, StreamDecoder};
use crate::record::Usage;

pub(super) struct AnthropicStream {
    client_wants_usage: bool,
    id: String,
    model: Option<String>,
    created: i64,
    role_sent: bool,
    counts: AnthropicUsage,
    /// `message_delta` brought the final output count: only then is the
    /// usage whole. A stream cut before it reports none, and the gateway
    /// estimates (and says so) instead of billing a partial count as exact.
    usage_final: bool,
    /// Anthropic block index → OpenAI tool call index.
    tool_calls: HashMap<u64, usize>,
    finished: bool,
    output_chars: usize,
    /// Forward each event as it came (framed SSE) instead of as OpenAI
    /// chunks: an Anthropic client of an Anthropic upstream.
    native: bool,
}

impl AnthropicStream {
    pub(super) fn new(client_wants_usage: bool) -> Self {
        AnthropicStream {
            client_wants_usage,
            id: String::new(),
            model: None,
            created: super::unix_now(),
            role_sent: false,
            counts: AnthropicUsage::default(),
            usage_final: false,
            tool_calls: HashMap::new(),
            finished: false,
            output_chars: 0,
            native: false,
        }
    }

    /// A decoder that keeps account as usual but forwards the upstream's
    /// own events, framed, for an Anthropic client.
    pub(super) fn native() -> Self {
        AnthropicStream {
            native: true,
            ..AnthropicStream::new(false)
        }
    }

    /// One chunk with one choice. The first chunk of the answer names the
    /// assistant role, whatever it carries.
    fn chunk(&mut self, mut delta: Value, finish: Option<&str>) -> String {
        if !self.role_sent {
            self.role_sent = true;
            if let Value::Object(d) = &mut delta {
                d.insert("role".into(), json!("assistant"));
            }
        }
        json!({
            "id": self.id,
            "object": "chat.completion.chunk",
            "created": self.created,
            "model": self.model,
            "choices": [{"index": 0, "delta": delta, "logprobs": null, "finish_reason": finish}],
        })
        .to_string()
    }

    fn usage_chunk(&self) -> String {
        json!({
            "id": self.id,
            "object": "chat.completion.chunk",
            "created": self.created,
            "model": self.model,
            "choices": [],
            "usage": openai_usage(&usage_from(&self.counts)),
        })
        .to_string()
    }

    fn take_counts(&mut self, usage: Option<&Value>) {
        if let Some(u) = usage {
            self.counts.update(u);
        }
    }
}

fn text_of<'a>(v: &'a Value, key: &str) -> &'a str {
    v.get(key).and_then(Value::as_str).unwrap_or_default()
}

impl AnthropicStream {
    /// One event as OpenAI chunks, keeping account of usage and progress.
    fn translate(&mut self, event: &SseEvent) -> Decoded {
        let Ok(data @ Value::Object(_)) = serde_json::from_str::<Value>(&event.data) else {
            return Decoded {
                malformed: true,
                ..Default::default()
            };
        };
        // The data names its own type; the `event:` line says the same.
        let kind = data
            .get("type")
            .and_then(Value::as_str)
            .or(event.event.as_deref())
            .unwrap_or_default();
        let mut out = Decoded::default();
        match kind {
            "message_start" => {
                let msg = data.get("message").unwrap_or(&Value::Null);
                self.id = text_of(msg, "id").to_string();
                if let Some(m) = msg.get("model").and_then(Value::as_str) {
                    self.model = Some(m.to_string());
                }
                self.take_counts(msg.get("usage"));
                out.forward
                    .push(self.chunk(json!({"role": "assistant", "content": ""}), None));
            }
            "content_block_start" => {
                let block = data.get("content_block").unwrap_or(&Value::Null);
                match text_of(block, "type") {
                    "tool_use" => {
                        let index = self.tool_calls.len();
                        if let Some(b) = data.get("index").and_then(Value::as_u64) {
                            self.tool_calls.insert(b, index);
                        }
                        let name = text_of(block, "name");
                        self.output_chars += name.chars().count();
                        out.forward.push(self.chunk(
                            json!({"tool_calls": [{
                                "index": index,
                                "id": block.get("id"),
                                "type": "function",
                                "function": {"name": name, "arguments": ""},
                            }]}),
                            None,
                        ));
                        out.progress = true;
                    }
                    "text" if !text_of(block, "text").is_empty() => {
                        let text = text_of(block, "text");
                        self.output_chars += text.chars().count();
                        out.forward.push(self.chunk(json!({"content": text}), None));
                        out.progress = true;
                    }
                    // Thinking arrives in its deltas; redacted thinking has
                    // nothing to show but proves the model is at work.
                    "redacted_thinking" => out.progress = true,
                    _ => {}
                }
            }
            "content_block_delta" => {
                let d = data.get("delta").unwrap_or(&Value::Null);
                let (text, delta) = match text_of(d, "type") {
                    "text_delta" => {
                        let t = text_of(d, "text");
                        (t, json!({"content": t}))
                    }
                    "thinking_delta" => {
                        let t = text_of(d, "thinking");
                        (t, json!({"reasoning_content": t}))
                    }
                    "input_json_delta" => {
                        // Arguments of a tool call whose start was never
                        // seen cannot be placed; they are dropped.
                        let block = data.get("index").and_then(Value::as_u64);
                        let Some(&index) = block.and_then(|b| self.tool_calls.get(&b)) else {
                            return out;
                        };
                        let t = text_of(d, "partial_json");
                        let delta =
                            json!({"tool_calls": [{"index": index, "function": {"arguments": t}}]});
                        (t, delta)
                    }
                    // signature_delta, citations_delta: nothing for the client.
                    _ => return out,
                };
                if text.is_empty() {
                    return out;
                }
                self.output_chars += text.chars().count();
                out.progress = true;
                out.forward.push(self.chunk(delta, None));
            }
            "message_delta" => {
                self.take_counts(data.get("usage"));
                self.usage_final |= data.pointer("/usage/output_tokens").is_some();
                if let Some(reason) = data.pointer("/delta/stop_reason").and_then(Value::as_str) {
                    self.finished = true;
                    out.progress = true;
                    let finish = finish_reason(reason);
                    out.forward.push(self.chunk(json!({}), Some(finish)));
                }
            }
            "message_stop" => {
                if self.client_wants_usage && self.usage_final {
                    out.forward.push(self.usage_chunk());
                }
                out.done = true;
            }
            "error" => {
                let err = data.get("error").unwrap_or(&Value::Null);
                let message = match (
                    err.get("type").and_then(Value::as_str),
                    err.get("message").and_then(Value::as_str),
                ) {
                    (Some(t), Some(m)) => format!("{m} ({t})"),
                    (None, Some(m)) => m.to_string(),
                    _ => err.to_string(),
                };
                out.error = Some(message);
            }
            // ping, content_block_stop, and event types Anthropic may add.
            _ => {}
        }
        out
    }
}

impl StreamDecoder for AnthropicStream {
    fn decode(&mut self, event: &SseEvent) -> Decoded {
        let mut out = self.translate(event);
        if self.native && !out.malformed && out.error.is_none() {
            // The event itself, as the upstream framed it.
            let kind = event.event.clone().unwrap_or_else(|| {
                serde_json::from_str::<Value>(&event.data)
                    .ok()
                    .and_then(|d| d.get("type").and_then(Value::as_str).map(str::to_string))
                    .unwrap_or_default()
            });
            out.forward = vec![format!("event: {kind}\ndata: {}\n\n", event.data)];
        }
        out
    }

    fn usage(&self) -> Option<Usage> {
        self.usage_final.then(|| usage_from(&self.counts))
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
    use crate::providers::SseParser;

    const STREAM: &str = include_str!(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/anthropic/stream_thinking_text_tool_use.sse"
    ));

    fn events(sse: &str) -> Vec<SseEvent> {
        let mut p = SseParser::new();
        let mut out = Vec::new();
        p.push(sse.as_bytes(), &mut out).expect("parses");
        p.finish(&mut out).expect("parses");
        out
    }

    /// Every event decoded, with the chunks parsed back into JSON.
    fn run(d: &mut AnthropicStream, sse: &str) -> Vec<(Decoded, Vec<Value>)> {
        events(sse)
            .iter()
            .map(|e| {
                let dec = d.decode(e);
                let chunks = dec
                    .forward
                    .iter()
                    .map(|c| serde_json::from_str(c).expect("chunk is JSON"))
                    .collect();
                (dec, chunks)
            })
            .collect()
    }

    fn deltas(all: &[(Decoded, Vec<Value>)]) -> Vec<Value> {
        all.iter()
            .flat_map(|(_, c)| c.iter())
            .filter_map(|c| {
                let choice = c.pointer("/choices/0")?;
                let mut d = choice["delta"].clone();
                if let Some(f) = choice["finish_reason"].as_str() {
                    d["finish_reason"] = json!(f);
                }
                Some(d)
            })
            .collect()
    }

    #[test]
    fn thinking_text_and_tool_calls_become_openai_deltas_in_order() {
        let mut d = AnthropicStream::new(false);
        let all = run(&mut d, STREAM);
        assert_eq!(
            deltas(&all),
            vec![
                json!({"role": "assistant", "content": ""}),
                json!({"reasoning_content": "The user wants the weather in Paris and London."}),
                json!({"reasoning_content": " I should call get_weather twice."}),
                json!({"content": "Let me check"}),
                json!({"content": " both cities."}),
                json!({"tool_calls": [{"index": 0, "id": "toolu_01T1x1fJ34qAmk2tNTrN7Up6", "type": "function", "function": {"name": "get_weather", "arguments": ""}}]}),
                json!({"tool_calls": [{"index": 0, "function": {"arguments": "{\"location\": \"Par"}}]}),
                json!({"tool_calls": [{"index": 0, "function": {"arguments": "is, France\"}"}}]}),
                json!({"tool_calls": [{"index": 1, "id": "toolu_01ABmPq4r1Yx8y1nKqjqJ7Lz", "type": "function", "function": {"name": "get_weather", "arguments": ""}}]}),
                json!({"tool_calls": [{"index": 1, "function": {"arguments": "{\"location\": \"London, UK\"}"}}]}),
                json!({"finish_reason": "tool_calls"}),
            ]
        );
        // Every chunk is a well-formed OpenAI chunk naming the answering model.
        for (_, chunks) in &all {
            for c in chunks {
                assert_eq!(c["object"], "chat.completion.chunk");
                assert_eq!(c["id"], "msg_01XFDUDYJgAACzvnptvVoYEL");
                assert_eq!(c["model"], "claude-sonnet-4-5-20250929");
                assert!(c["created"].as_i64().is_some_and(|t| t > 1_600_000_000));
            }
        }
        let last = &all.last().expect("events").0;
        assert!(
            last.done && last.forward.is_empty(),
            "no usage chunk unasked"
        );
        assert!(d.finished());
        assert_eq!(d.model(), Some("claude-sonnet-4-5-20250929"));
        assert_eq!(
            d.usage(),
            Some(Usage {
                input: 25,
                cached_input: 3000,
                cache_write: 1200,
                output: 89,
                reasoning: 0
            })
        );
        let chars = "The user wants the weather in Paris and London. I should call get_weather twice.Let me check both cities.get_weather{\"location\": \"Paris, France\"}get_weather{\"location\": \"London, UK\"}";
        assert_eq!(d.output_chars(), chars.chars().count());
    }

    #[test]
    fn progress_starts_with_thinking_and_ping_or_stop_events_forward_nothing() {
        let mut d = AnthropicStream::new(false);
        let all = run(&mut d, STREAM);
        let kinds: Vec<String> = events(STREAM)
            .iter()
            .map(|e| e.event.clone().unwrap_or_default())
            .collect();
        for ((dec, _), kind) in all.iter().zip(&kinds) {
            match kind.as_str() {
                "message_start" => assert!(!dec.progress && dec.forward.len() == 1),
                "ping" | "content_block_stop" => {
                    assert!(!dec.progress && dec.forward.is_empty(), "{kind}")
                }
                _ => {}
            }
        }
        // The first event that shows progress is the first thinking delta.
        let first = all.iter().position(|(d, _)| d.progress).expect("progress");
        assert_eq!(
            all[first].1[0]["choices"][0]["delta"]["reasoning_content"],
            "The user wants the weather in Paris and London."
        );
        // A signature delta is neither forwarded nor progress.
        let sig = events(STREAM)
            .iter()
            .position(|e| e.data.contains("signature_delta"))
            .expect("signature event");
        assert!(all[sig].1.is_empty() && !all[sig].0.progress);
    }

    #[test]
    fn usage_chunk_precedes_done_only_when_the_client_asked() {
        let mut d = AnthropicStream::new(true);
        let all = run(&mut d, STREAM);
        let (stop, chunks) = all.last().expect("events");
        assert!(stop.done);
        assert_eq!(chunks.len(), 1);
        assert_eq!(chunks[0]["choices"], json!([]));
        assert_eq!(
            chunks[0]["usage"],
            json!({
                "prompt_tokens": 4225, "completion_tokens": 89, "total_tokens": 4314,
                "prompt_tokens_details": {"cached_tokens": 3000}
            })
        );
    }

    #[test]
    fn error_event_is_reported_with_its_message() {
        let mut d = AnthropicStream::new(false);
        let all = run(
            &mut d,
            include_str!(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/tests/fixtures/anthropic/stream_error_overloaded.sse"
            )),
        );
        let err = &all.last().expect("events").0;
        assert_eq!(err.error.as_deref(), Some("Overloaded (overloaded_error)"));
        assert!(!d.finished());
        assert_eq!(
            d.usage(),
            None,
            "a stream cut before message_delta has no final usage"
        );
    }

    #[test]
    fn malformed_and_unknown_events() {
        let mut d = AnthropicStream::new(false);
        let bad = d.decode(&SseEvent {
            event: Some("content_block_delta".into()),
            data: "{\"type\":\"content_block_delta\",".into(),
        });
        assert!(bad.malformed);
        let unknown = d.decode(&SseEvent {
            event: Some("future_event".into()),
            data: "{\"type\":\"future_event\",\"x\":1}".into(),
        });
        assert!(!unknown.malformed && unknown.forward.is_empty() && !unknown.progress);
    }

    #[test]
    fn first_chunk_names_the_role_even_without_message_start() {
        let mut d = AnthropicStream::new(false);
        let dec = d.decode(&SseEvent {
            event: None,
            data: r#"{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"Hi"}}"#.into(),
        });
        let c: Value = serde_json::from_str(&dec.forward[0]).expect("json");
        assert_eq!(
            c["choices"][0]["delta"],
            json!({"content": "Hi", "role": "assistant"})
        );
    }

    #[test]
    fn every_stop_reason_maps_to_an_openai_finish_reason() {
        for (reason, want) in [
            ("end_turn", "stop"),
            ("stop_sequence", "stop"),
            ("max_tokens", "length"),
            ("tool_use", "tool_calls"),
            ("refusal", "content_filter"),
            ("pause_turn", "stop"),
        ] {
            let mut d = AnthropicStream::new(false);
            let dec = d.decode(&SseEvent {
                event: Some("message_delta".into()),
                data: json!({"type": "message_delta", "delta": {"stop_reason": reason, "stop_sequence": null}, "usage": {"output_tokens": 3}}).to_string(),
            });
            let c: Value = serde_json::from_str(&dec.forward[0]).expect("json");
            assert_eq!(c["choices"][0]["finish_reason"], want, "{reason}");
            assert!(d.finished() && dec.progress);
        }
    }

    #[test]
    fn cumulative_message_delta_usage_replaces_the_start_counts() {
        let mut d = AnthropicStream::new(false);
        d.decode(&SseEvent {
            event: None,
            data: r#"{"type":"message_start","message":{"id":"m","model":"claude-haiku-4-5","usage":{"input_tokens":849,"cache_creation_input_tokens":0,"cache_read_input_tokens":0,"output_tokens":10}}}"#.into(),
        });
        assert_eq!(d.usage(), None);
        d.decode(&SseEvent {
            event: None,
            data: r#"{"type":"message_delta","delta":{"stop_reason":"end_turn","stop_sequence":null},"usage":{"input_tokens":849,"cache_creation_input_tokens":0,"cache_read_input_tokens":0,"output_tokens":47}}"#.into(),
        });
        assert_eq!(
            d.usage(),
            Some(Usage {
                input: 849,
                output: 47,
                ..Usage::default()
            })
        );
    }
}
