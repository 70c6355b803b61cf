//! Gemini answers → OpenAI chat completions and chunks.
//!
//! Owns reading `GenerateContentResponse`s — one whole, or one per SSE
//! `data:` event — into OpenAI's shapes: text and thought parts, function
//! calls (ids `call_<n>`, arguments as a JSON string), finish reasons, and
//! usage normalised into disjoint counts. A prompt or an answer that
//! Gemini's safety filters block before any content is a
//! [`ClientRefusal`], never an empty success. Gemini streams end without
//! `[DONE]`: a finish reason on every candidate is what makes one whole.

use std::collections::BTreeMap;
use std::time::{SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use serde_json::{json, Map, Value};

use crate::providers::{ChatReply, ClientRefusal, Decoded, ReplyError, SseEvent, StreamDecoder};
use crate::record::Usage;

/// The `model` named to the client when Gemini leaves out `modelVersion`
/// (it sends one with every response; the target's id is not known here).
const UNNAMED_MODEL: &str = "gemini";

/// Gemini's `usageMetadata` → disjoint counts.
///
/// `promptTokenCount` includes `cachedContentTokenCount`, so the cached
/// part is taken out of `input`. Thinking is reported beside the answer:
/// `candidatesTokenCount` does not include `thoughtsTokenCount`
/// (`totalTokenCount` = prompt + candidates + thoughts + tool-use prompt),
/// so candidates are `output` as they are and thoughts are `reasoning`.
/// `toolUsePromptTokenCount` (results of Gemini's own tools fed back to the
/// model) is billed as input.
pub(super) fn usage(meta: &Value) -> Option<Usage> {
    let n = |k: &str| meta.get(k).and_then(Value::as_u64);
    let prompt = n("promptTokenCount");
    let candidates = n("candidatesTokenCount");
    let thoughts = n("thoughtsTokenCount");
    if prompt.is_none() && candidates.is_none() && thoughts.is_none() {
        return None;
    }
    let prompt = prompt.unwrap_or(0);
    // More cached than prompt tokens would be Gemini's error; clamp so
    // the counts still add up to what was billed.
    let cached = n("cachedContentTokenCount").unwrap_or(0).min(prompt);
    Some(Usage {
        input: prompt - cached + n("toolUsePromptTokenCount").unwrap_or(0),
        cached_input: cached,
        cache_write: 0,
        output: candidates.unwrap_or(0),
        reasoning: thoughts.unwrap_or(0),
    })
}

/// Normalised usage as OpenAI's `usage` object, where the prompt includes
/// cached tokens and the completion includes reasoning tokens.
pub(super) fn openai_usage(u: &Usage) -> Value {
    let prompt = u.input + u.cached_input + u.cache_write;
    let completion = u.output + u.reasoning;
    json!({
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
        "prompt_tokens_details": {"cached_tokens": u.cached_input},
        "completion_tokens_details": {"reasoning_tokens": u.reasoning},
    })
}

/// Finish reasons Gemini uses when a filter stopped the answer.
fn is_content_filter(reason: &str) -> bool {
    matches!(
        reason,
        "SAFETY" | "RECITATION" | "BLOCKLIST" | "PROHIBITED_CONTENT" | "SPII" | "IMAGE_SAFETY"
    )
}

/// Gemini's `finishReason` → OpenAI's `finish_reason`; `None` while the
/// candidate is still going.
fn finish_reason(reason: &str) -> Option<&'static str> {
    match reason {
        "" | "FINISH_REASON_UNSPECIFIED" => None,
        "STOP" => Some("stop"),
        "MAX_TOKENS" => Some("length"),
        r if is_content_filter(r) => Some("content_filter"),
        // OTHER, LANGUAGE, MALFORMED_FUNCTION_CALL, …: it ended, with
        // nothing OpenAI has a word for.
        _ => Some("stop"),
    }
}

/// One function call from the answer.
struct Call<'a> {
    name: &'a str,
    args: String,
    signature: Option<&'a Value>,
}

/// A candidate's parts, sorted by what the client sees them as.
#[derive(Default)]
struct Parts<'a> {
    text: String,
    reasoning: String,
    calls: Vec<Call<'a>>,
}

impl Parts<'_> {
    fn is_empty(&self) -> bool {
        self.text.is_empty() && self.reasoning.is_empty() && self.calls.is_empty()
    }

    fn chars(&self) -> usize {
        self.text.chars().count()
            + self.reasoning.chars().count()
            + self
                .calls
                .iter()
                .map(|c| c.name.len() + c.args.len())
                .sum::<usize>()
    }
}

fn read_parts(candidate: &Value) -> Parts<'_> {
    let mut out = Parts::default();
    let parts = candidate
        .pointer("/content/parts")
        .and_then(Value::as_array);
    for part in parts.into_iter().flatten() {
        if let Some(call) = part.get("functionCall") {
            out.calls.push(Call {
                name: call.get("name").and_then(Value::as_str).unwrap_or_default(),
                args: call
                    .get("args")
                    .filter(|a| !a.is_null())
                    .map_or_else(|| "{}".to_string(), Value::to_string),
                signature: part.get("thoughtSignature").filter(|s| s.is_string()),
            });
        } else if let Some(text) = part.get("text").and_then(Value::as_str) {
            if part.get("thought").and_then(Value::as_bool) == Some(true) {
                out.reasoning.push_str(text);
            } else {
                out.text.push_str(text);
            }
        }
        // Other parts (executable code, inline media) have no place in a
        // chat completion message.
    }
    out
}

/// A function call as an OpenAI tool call; `index` only in stream deltas.
/// Gemini 3 wants the call's thought signature back with the call, so it
/// travels in `extra_content` the way Google's own OpenAI endpoint does it.
fn tool_call(index: Option<usize>, id: usize, call: &Call<'_>) -> Value {
    let mut v = Map::new();
    if let Some(i) = index {
        v.insert("index".into(), json!(i));
    }
    v.insert("id".into(), json!(format!("call_{id}")));
    v.insert("type".into(), json!("function"));
    v.insert(
        "function".into(),
        json!({"name": call.name, "arguments": call.args}),
    );
    if let Some(sig) = call.signature {
        v.insert(
            "extra_content".into(),
            json!({"google": {"thought_signature": sig}}),
        );
    }
    Value::Object(v)
}

/// Safety categories a rating list says were the cause.
fn flagged(ratings: Option<&Value>) -> Vec<&str> {
    let all = ratings.and_then(Value::as_array);
    let pick = |blocked_only: bool| -> Vec<&str> {
        all.into_iter()
            .flatten()
            .filter(|r| {
                if blocked_only {
                    r.get("blocked").and_then(Value::as_bool) == Some(true)
                } else {
                    r.get("probability").and_then(Value::as_str) == Some("HIGH")
                }
            })
            .filter_map(|r| r.get("category").and_then(Value::as_str))
            .collect()
    };
    let blocked = pick(true);
    if blocked.is_empty() {
        pick(false)
    } else {
        blocked
    }
}

fn describe(
    what: &str,
    field: &str,
    reason: &str,
    ratings: Option<&Value>,
    note: Option<&str>,
) -> String {
    let mut m = format!("Gemini {what} under its content policy ({field} {reason}");
    let categories = flagged(ratings);
    if !categories.is_empty() {
        m.push_str(": ");
        m.push_str(&categories.join(", "));
    }
    m.push(')');
    if let Some(note) = note.filter(|n| !n.is_empty()) {
        m.push_str(": ");
        m.push_str(note);
    }
    m.push('.');
    m
}

/// A prompt blocked by `promptFeedback.blockReason`, described.
fn prompt_blocked(resp: &Map<String, Value>) -> Option<String> {
    let feedback = resp.get("promptFeedback")?;
    let reason = feedback
        .get("blockReason")
        .and_then(Value::as_str)
        .filter(|r| !r.is_empty() && *r != "BLOCK_REASON_UNSPECIFIED")?;
    Some(describe(
        "blocked the prompt",
        "blockReason",
        reason,
        feedback.get("safetyRatings"),
        feedback.get("blockReasonMessage").and_then(Value::as_str),
    ))
}

/// A candidate a filter stopped, described.
fn answer_blocked(candidate: &Value) -> Option<String> {
    let reason = candidate
        .get("finishReason")
        .and_then(Value::as_str)
        .filter(|r| is_content_filter(r))?;
    Some(describe(
        "withheld the answer",
        "finishReason",
        reason,
        candidate.get("safetyRatings"),
        candidate.get("finishMessage").and_then(Value::as_str),
    ))
}

/// The client's answer to a blocked request: OpenAI's content-policy error.
fn content_policy(message: String) -> ClientRefusal {
    let body = json!({"error": {
        "message": message,
        "type": "invalid_request_error",
        "param": null,
        "code": "content_policy_violation",
    }});
    ClientRefusal {
        status: 400,
        body: Bytes::from(body.to_string()),
    }
}

/// Nothing at all to show from any candidate, and one was filtered.
fn withheld(candidates: &[Value]) -> Option<String> {
    if candidates.iter().all(|c| read_parts(c).is_empty()) {
        candidates.iter().find_map(answer_blocked)
    } else {
        None
    }
}

fn completion_id(resp: &Map<String, Value>) -> String {
    match resp.get("responseId").and_then(Value::as_str) {
        Some(id) => format!("chatcmpl-{id}"),
        None => format!("chatcmpl-{}", uuid::Uuid::now_v7().simple()),
    }
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

fn candidates(resp: &Map<String, Value>) -> &[Value] {
    resp.get("candidates")
        .and_then(Value::as_array)
        .map_or(&[], Vec::as_slice)
}

fn index_of(candidate: &Value, position: usize) -> u64 {
    candidate
        .get("index")
        .and_then(Value::as_u64)
        .unwrap_or(position as u64)
}

/// A whole `generateContent` answer as an OpenAI `chat.completion`.
pub(super) fn chat_reply(body: Bytes) -> Result<ChatReply, ReplyError> {
    let v: Value = serde_json::from_slice(&body)
        .map_err(|e| format!("upstream answered 200 with invalid JSON: {e}"))?;
    let Value::Object(resp) = v else {
        return Err("upstream answered 200 with JSON that is not an object".into());
    };
    let usage = resp.get("usageMetadata").and_then(usage);
    let model = resp
        .get("modelVersion")
        .and_then(Value::as_str)
        .map(str::to_string);
    let candidates = candidates(&resp);
    if candidates.is_empty() {
        return Err(match prompt_blocked(&resp) {
            Some(why) => ReplyError::Refused(content_policy(why)),
            None => "upstream answered 200 without candidates".into(),
        });
    }
    if let Some(why) = withheld(candidates) {
        return Err(ReplyError::Refused(content_policy(why)));
    }
    let mut next_call = 0;
    let choices: Vec<Value> = candidates
        .iter()
        .enumerate()
        .map(|(position, candidate)| {
            let parts = read_parts(candidate);
            let calls: Vec<Value> = parts
                .calls
                .iter()
                .map(|c| {
                    next_call += 1;
                    tool_call(None, next_call - 1, c)
                })
                .collect();
            let mut message = Map::new();
            message.insert("role".into(), json!("assistant"));
            let content = if !parts.text.is_empty() {
                json!(parts.text)
            } else if !calls.is_empty() {
                Value::Null
            } else {
                json!("")
            };
            message.insert("content".into(), content);
            if !parts.reasoning.is_empty() {
                message.insert("reasoning_content".into(), json!(parts.reasoning));
            }
            let mut finish = candidate
                .get("finishReason")
                .and_then(Value::as_str)
                .and_then(finish_reason)
                .unwrap_or("stop");
            if !calls.is_empty() {
                message.insert("tool_calls".into(), Value::Array(calls));
                if finish == "stop" {
                    finish = "tool_calls";
                }
            }
            json!({
                "index": index_of(candidate, position),
                "message": message,
                "logprobs": null,
                "finish_reason": finish,
            })
        })
        .collect();
    let mut out = json!({
        "id": completion_id(&resp),
        "object": "chat.completion",
        "created": unix_now(),
        "model": model.as_deref().unwrap_or(UNNAMED_MODEL),
        "choices": choices,
    });
    if let Some(u) = &usage {
        out["usage"] = openai_usage(u);
    }
    Ok(ChatReply {
        body: Bytes::from(out.to_string()),
        usage,
        model,
    })
}

#[derive(Default)]
struct CandidateState {
    role_sent: bool,
    /// Tool calls sent so far: the next one's `index`.
    calls: usize,
    finished: bool,
}

/// Decodes one `streamGenerateContent?alt=sse` answer.
pub(super) struct GeminiStream {
    client_wants_usage: bool,
    id: Option<String>,
    created: u64,
    model: Option<String>,
    /// The latest `usageMetadata`: every chunk carries the running totals.
    usage: Option<Usage>,
    usage_sent: bool,
    candidates: BTreeMap<u64, CandidateState>,
    /// Tool calls sent so far across candidates: the next one's id.
    next_call: usize,
    /// Something that shows the model answering has been forwarded.
    progressed: bool,
    output_chars: usize,
}

impl GeminiStream {
    pub(super) fn new(client_wants_usage: bool) -> Self {
        GeminiStream {
            client_wants_usage,
            id: None,
            created: unix_now(),
            model: None,
            usage: None,
            usage_sent: false,
            candidates: BTreeMap::new(),
            next_call: 0,
            progressed: false,
            output_chars: 0,
        }
    }

    fn chunk(&self, choices: Value, usage: Option<Value>) -> String {
        let mut c = json!({
            "id": self.id.as_deref().unwrap_or("chatcmpl-gemini"),
            "object": "chat.completion.chunk",
            "created": self.created,
            "model": self.model.as_deref().unwrap_or(UNNAMED_MODEL),
            "choices": choices,
        });
        // As OpenAI does: with `include_usage`, every chunk has a `usage`
        // field, null until the last.
        if self.client_wants_usage {
            c["usage"] = usage.unwrap_or(Value::Null);
        }
        c.to_string()
    }

    /// The usage chunk the client asked for, once every candidate finished.
    fn usage_chunk(&mut self) -> Option<String> {
        if !self.client_wants_usage || self.usage_sent || !self.finished() {
            return None;
        }
        let usage = openai_usage(&self.usage?);
        self.usage_sent = true;
        Some(self.chunk(json!([]), Some(usage)))
    }

    fn refused(&self, why: String) -> Decoded {
        if self.progressed {
            // Too late to refuse: the client has part of an answer.
            Decoded {
                error: Some(why),
                ..Default::default()
            }
        } else {
            Decoded {
                refused: Some(content_policy(why)),
                ..Default::default()
            }
        }
    }
}

impl StreamDecoder for GeminiStream {
    fn decode(&mut self, event: &SseEvent) -> Decoded {
        let data = event.data.trim();
        // Gemini sends no terminator; one from a proxy in front is honoured.
        if data == "[DONE]" {
            return Decoded {
                done: true,
                ..Default::default()
            };
        }
        let Ok(Value::Object(resp)) = serde_json::from_str::<Value>(data) else {
            return Decoded {
                malformed: true,
                ..Default::default()
            };
        };
        if let Some(err) = resp.get("error") {
            return Decoded {
                error: Some(super::error_text(err)),
                ..Default::default()
            };
        }
        if self.id.is_none() {
            self.id = Some(completion_id(&resp));
        }
        if self.model.is_none() {
            self.model = resp
                .get("modelVersion")
                .and_then(Value::as_str)
                .map(str::to_string);
        }
        if let Some(u) = resp.get("usageMetadata").and_then(usage) {
            self.usage = Some(u);
        }
        let candidates = candidates(&resp);
        if candidates.is_empty() {
            if let Some(why) = prompt_blocked(&resp) {
                return self.refused(why);
            }
            return Decoded {
                forward: self.usage_chunk().into_iter().collect(),
                ..Default::default()
            };
        }
        if !self.progressed {
            if let Some(why) = withheld(candidates) {
                return self.refused(why);
            }
        }

        let mut choices = Vec::new();
        for (position, candidate) in candidates.iter().enumerate() {
            let index = index_of(candidate, position);
            let parts = read_parts(candidate);
            self.output_chars += parts.chars();
            let state = self.candidates.entry(index).or_default();
            let mut delta = Map::new();
            if !parts.is_empty() {
                if !state.role_sent {
                    delta.insert("role".into(), json!("assistant"));
                    state.role_sent = true;
                }
                if !parts.text.is_empty() {
                    delta.insert("content".into(), json!(parts.text));
                }
                if !parts.reasoning.is_empty() {
                    delta.insert("reasoning_content".into(), json!(parts.reasoning));
                }
                if !parts.calls.is_empty() {
                    let calls: Vec<Value> = parts
                        .calls
                        .iter()
                        .map(|c| {
                            let v = tool_call(Some(state.calls), self.next_call, c);
                            state.calls += 1;
                            self.next_call += 1;
                            v
                        })
                        .collect();
                    delta.insert("tool_calls".into(), Value::Array(calls));
                }
                choices.push(json!({"index": index, "delta": delta, "logprobs": null, "finish_reason": null}));
            }
            let reason = candidate
                .get("finishReason")
                .and_then(Value::as_str)
                .and_then(finish_reason);
            if let Some(mut finish) = reason.filter(|_| !state.finished) {
                if state.calls > 0 && finish == "stop" {
                    finish = "tool_calls";
                }
                let mut delta = Map::new();
                if !state.role_sent {
                    delta.insert("role".into(), json!("assistant"));
                    state.role_sent = true;
                }
                choices.push(json!({"index": index, "delta": delta, "logprobs": null, "finish_reason": finish}));
                state.finished = true;
            }
        }
        let progress = !choices.is_empty();
        self.progressed |= progress;
        let mut forward: Vec<String> = choices
            .into_iter()
            .map(|c| self.chunk(json!([c]), None))
            .collect();
        forward.extend(self.usage_chunk());
        Decoded {
            forward,
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

    /// Every candidate seen has a finish reason.
    fn finished(&self) -> bool {
        !self.candidates.is_empty() && self.candidates.values().all(|c| c.finished)
    }

    fn output_chars(&self) -> usize {
        self.output_chars
    }
}

/// A Gemini client's stream from a Gemini upstream: accounted for as any
/// other, but each event is forwarded as Gemini sent it (`data: …`).
pub(super) struct NativeGeminiStream(pub(super) GeminiStream);

impl StreamDecoder for NativeGeminiStream {
    fn decode(&mut self, event: &SseEvent) -> Decoded {
        let mut out = self.0.decode(event);
        if !out.malformed && out.error.is_none() && !out.done {
            out.forward = vec![format!("data: {}\n\n", event.data.trim())];
        }
        out
    }

    fn usage(&self) -> Option<Usage> {
        self.0.usage()
    }

    fn model(&self) -> Option<&str> {
        self.0.model()
    }

    fn finished(&self) -> bool {
        self.0.finished()
    }

    fn output_chars(&self) -> usize {
        self.0.output_chars()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ANSWER: &str =
        include_str!("../../../tests/fixtures/gemini/generate_content_response.json");
    const STREAM: &str = include_str!("../../../tests/fixtures/gemini/stream.sse");
    const PROMPT_BLOCKED: &str = include_str!("../../../tests/fixtures/gemini/prompt_blocked.json");
    const ANSWER_SAFETY: &str = include_str!("../../../tests/fixtures/gemini/answer_safety.json");

    fn reply(body: &str) -> Result<ChatReply, ReplyError> {
        chat_reply(Bytes::copy_from_slice(body.as_bytes()))
    }

    fn json_of(b: &Bytes) -> Value {
        serde_json::from_slice(b).expect("json")
    }

    /// The `data:` payloads of an SSE text.
    fn events(sse: &str) -> Vec<SseEvent> {
        let mut p = crate::providers::SseParser::new();
        let mut out = Vec::new();
        p.push(sse.as_bytes(), &mut out).expect("parses");
        p.finish(&mut out).expect("parses");
        out
    }

    fn ev(data: &str) -> SseEvent {
        SseEvent {
            event: None,
            data: data.to_string(),
        }
    }

    fn refusal_of(e: ReplyError) -> ClientRefusal {
        match e {
            ReplyError::Refused(r) => r,
            ReplyError::Malformed(why) => panic!("expected a refusal, got malformed: {why}"),
        }
    }

    #[test]
    fn usage_counts_are_disjoint_and_add_up_to_the_total() {
        let v: Value = serde_json::from_str(ANSWER).expect("json");
        let meta = &v["usageMetadata"];
        let u = usage(meta).expect("counts");
        assert_eq!(
            u,
            Usage {
                input: 200,
                cached_input: 1000,
                cache_write: 0,
                output: 40,
                reasoning: 150
            }
        );
        assert_eq!(Some(u.total()), meta["totalTokenCount"].as_u64());
        // OpenAI's shape of the same counts reads back to the same usage.
        let o = openai_usage(&u);
        assert_eq!(
            o,
            json!({"prompt_tokens": 1200, "completion_tokens": 190, "total_tokens": 1390,
                   "prompt_tokens_details": {"cached_tokens": 1000},
                   "completion_tokens_details": {"reasoning_tokens": 150}})
        );
        assert_eq!(Usage::from_openai(&o), Some(u));
    }

    #[test]
    fn usage_edge_cases_keep_the_total() {
        assert_eq!(usage(&json!({})), None);
        // Tool-use prompt tokens are input.
        let t = json!({"promptTokenCount": 10, "candidatesTokenCount": 5, "toolUsePromptTokenCount": 7, "totalTokenCount": 22});
        let u = usage(&t).expect("counts");
        assert_eq!((u.input, u.output, u.total()), (17, 5, 22));
        // More cached than prompt is clamped, never negative.
        let c =
            usage(&json!({"promptTokenCount": 10, "cachedContentTokenCount": 50})).expect("counts");
        assert_eq!((c.input, c.cached_input, c.total()), (0, 10, 10));
    }

    #[test]
    fn whole_answer_has_text_reasoning_tool_calls_and_usage() {
        let r = reply(ANSWER).expect("an answer");
        assert_eq!(r.model.as_deref(), Some("gemini-2.5-flash"));
        assert_eq!(r.usage.map(|u| u.total()), Some(1390));
        let b = json_of(&r.body);
        assert_eq!(b["object"], "chat.completion");
        assert_eq!(b["id"], "chatcmpl-mAitaLmkHPPlz7IPvtfUqQ4");
        assert_eq!(b["model"], "gemini-2.5-flash");
        assert!(b["created"].as_u64().is_some_and(|t| t > 1_700_000_000));
        let choice = &b["choices"][0];
        assert_eq!(choice["index"], 0);
        assert_eq!(choice["finish_reason"], "tool_calls");
        let m = &choice["message"];
        assert_eq!(m["role"], "assistant");
        assert_eq!(m["content"], "Let me check the weather in Paris.");
        assert!(m["reasoning_content"]
            .as_str()
            .is_some_and(|t| t.starts_with("**Checking the weather**")));
        assert_eq!(
            m["tool_calls"],
            json!([{"id": "call_0", "type": "function",
                    "function": {"name": "get_weather", "arguments": "{\"city\":\"Paris\",\"unit\":\"celsius\"}"},
                    "extra_content": {"google": {"thought_signature": "CiQB0e2Kb3VudGVyLXNpZ25hdHVyZQ=="}}}])
        );
        assert_eq!(b["usage"]["prompt_tokens"], 1200);
        assert_eq!(b["usage"]["completion_tokens"], 190);
        assert_eq!(b["usage"]["total_tokens"], 1390);
    }

    #[test]
    fn finish_reasons_map_to_openai() {
        for (gemini, openai) in [
            ("STOP", "stop"),
            ("MAX_TOKENS", "length"),
            ("SAFETY", "content_filter"),
            ("RECITATION", "content_filter"),
            ("BLOCKLIST", "content_filter"),
            ("PROHIBITED_CONTENT", "content_filter"),
            ("SPII", "content_filter"),
            ("OTHER", "stop"),
        ] {
            let body = json!({"candidates": [{"content": {"parts": [{"text": "partial"}], "role": "model"}, "finishReason": gemini, "index": 0}]});
            let r = reply(&body.to_string()).expect("an answer");
            let b = json_of(&r.body);
            assert_eq!(b["choices"][0]["finish_reason"], openai, "{gemini}");
            assert_eq!(b["choices"][0]["message"]["content"], "partial");
            // Without modelVersion and usage: a neutral name, no usage.
            assert_eq!(b["model"], UNNAMED_MODEL);
            assert!(b.get("usage").is_none() && r.usage.is_none());
        }
    }

    #[test]
    fn several_candidates_become_several_choices() {
        let body = json!({"candidates": [
            {"content": {"parts": [{"text": "A"}]}, "finishReason": "STOP", "index": 0},
            {"content": {"parts": [{"functionCall": {"name": "f"}}]}, "finishReason": "STOP", "index": 1}
        ], "modelVersion": "gemini-2.5-flash"});
        let b = json_of(&reply(&body.to_string()).expect("answer").body);
        assert_eq!(b["choices"][0]["message"]["content"], "A");
        assert_eq!(b["choices"][1]["index"], 1);
        assert_eq!(b["choices"][1]["message"]["content"], Value::Null);
        assert_eq!(b["choices"][1]["finish_reason"], "tool_calls");
        assert_eq!(
            b["choices"][1]["message"]["tool_calls"][0]["function"],
            json!({"name": "f", "arguments": "{}"})
        );
    }

    #[test]
    fn blocked_prompt_is_a_content_policy_refusal() {
        let r = refusal_of(reply(PROMPT_BLOCKED).expect_err("refused"));
        assert_eq!(r.status, 400);
        let b = json_of(&r.body);
        assert_eq!(b["error"]["code"], "content_policy_violation");
        assert_eq!(b["error"]["type"], "invalid_request_error");
        let m = b["error"]["message"].as_str().expect("message");
        assert!(m.contains("blockReason SAFETY"), "{m}");
        assert!(m.contains("HARM_CATEGORY_DANGEROUS_CONTENT"), "{m}");
        assert!(!m.contains("HARASSMENT"), "only the blocking category: {m}");
    }

    #[test]
    fn answer_withheld_for_safety_is_a_content_policy_refusal() {
        let r = refusal_of(reply(ANSWER_SAFETY).expect_err("refused"));
        let b = json_of(&r.body);
        assert_eq!(
            (r.status, &b["error"]["code"]),
            (400, &json!("content_policy_violation"))
        );
        let m = b["error"]["message"].as_str().expect("message");
        assert!(
            m.contains("finishReason SAFETY") && m.contains("HARM_CATEGORY_SEXUALLY_EXPLICIT"),
            "{m}"
        );
    }

    #[test]
    fn answer_without_candidates_or_json_is_malformed() {
        for body in ["{}", "not json", "[1]", r#"{"candidates": []}"#] {
            assert!(
                matches!(reply(body), Err(ReplyError::Malformed(_))),
                "{body}"
            );
        }
    }

    #[test]
    fn stream_becomes_openai_chunks_and_finishes_without_done() {
        let mut d = GeminiStream::new(false);
        let mut chunks: Vec<Value> = Vec::new();
        let mut progress = Vec::new();
        for e in events(STREAM) {
            let out = d.decode(&e);
            assert!(!out.malformed && out.error.is_none() && out.refused.is_none() && !out.done);
            progress.push(out.progress);
            chunks.extend(
                out.forward
                    .iter()
                    .map(|c| serde_json::from_str::<Value>(c).expect("json")),
            );
        }
        assert_eq!(progress, vec![true; 4], "thoughts count as progress");
        assert!(d.finished());
        assert_eq!(d.model(), Some("gemini-2.5-flash"));
        assert_eq!(
            d.usage(),
            Some(Usage {
                input: 200,
                cached_input: 1000,
                cache_write: 0,
                output: 20,
                reasoning: 30
            })
        );
        assert!(d.output_chars() > "Hello from Gemini.".len());
        for c in &chunks {
            assert_eq!(c["object"], "chat.completion.chunk");
            assert_eq!(c["id"], "chatcmpl-strmaLmkHPPlz7IPvtfUqQ4");
            assert_eq!(c["model"], "gemini-2.5-flash");
            assert!(
                c.get("usage").is_none(),
                "no usage the client did not ask for"
            );
        }
        let deltas: Vec<&Value> = chunks.iter().map(|c| &c["choices"][0]["delta"]).collect();
        assert_eq!(deltas[0]["role"], "assistant");
        assert!(deltas[0]["reasoning_content"]
            .as_str()
            .is_some_and(|t| t.contains("Greeting")));
        assert!(deltas[1].get("role").is_none(), "the role comes once");
        let text: String = deltas
            .iter()
            .filter_map(|d| d["content"].as_str())
            .collect();
        assert_eq!(text, "Hello from Gemini.");
        assert_eq!(
            deltas[3]["tool_calls"],
            json!([{"index": 0, "id": "call_0", "type": "function",
                    "function": {"name": "get_weather", "arguments": "{\"city\":\"Paris\"}"},
                    "extra_content": {"google": {"thought_signature": "CiQB0e2Kc2lnLTI="}}}])
        );
        let last = chunks.last().expect("chunks");
        assert_eq!(last["choices"][0]["finish_reason"], "tool_calls");
        assert_eq!(last["choices"][0]["delta"], json!({}));
        assert_eq!(chunks.len(), 5);
    }

    #[test]
    fn stream_usage_chunk_follows_the_finish_when_the_client_asked() {
        let mut d = GeminiStream::new(true);
        let mut chunks: Vec<Value> = Vec::new();
        for e in events(STREAM) {
            chunks.extend(
                d.decode(&e)
                    .forward
                    .iter()
                    .map(|c| serde_json::from_str::<Value>(c).expect("json")),
            );
        }
        let (usage, rest) = chunks.split_last().expect("chunks");
        assert_eq!(usage["choices"], json!([]));
        assert_eq!(usage["usage"]["prompt_tokens"], 1200);
        assert_eq!(usage["usage"]["completion_tokens"], 50);
        assert_eq!(usage["usage"]["total_tokens"], 1250);
        assert_eq!(
            usage["usage"]["prompt_tokens_details"]["cached_tokens"],
            1000
        );
        assert_eq!(
            rest.last().expect("finish")["choices"][0]["finish_reason"],
            "tool_calls"
        );
        assert!(rest
            .iter()
            .all(|c| c["usage"].is_null() && c.get("usage").is_some()));
        // A later usage-only event does not repeat it.
        let again = d.decode(&ev(r#"{"usageMetadata": {"promptTokenCount": 1}}"#));
        assert!(again.forward.is_empty());
    }

    #[test]
    fn stream_text_and_finish_in_one_event_are_two_chunks() {
        let mut d = GeminiStream::new(false);
        assert!(!d.finished());
        let out = d.decode(&ev(r#"{"candidates":[{"content":{"parts":[{"text":"Hi"}],"role":"model"},"finishReason":"MAX_TOKENS","index":0}],"modelVersion":"m"}"#));
        assert!(out.progress && d.finished());
        let c: Vec<Value> = out
            .forward
            .iter()
            .map(|c| serde_json::from_str(c).expect("json"))
            .collect();
        assert_eq!(c.len(), 2);
        assert_eq!(
            c[0]["choices"][0]["delta"],
            json!({"role": "assistant", "content": "Hi"})
        );
        assert_eq!(c[0]["choices"][0]["finish_reason"], Value::Null);
        assert_eq!(c[1]["choices"][0]["finish_reason"], "length");
    }

    #[test]
    fn stream_blocked_before_any_token_is_a_refusal() {
        for fixture in [PROMPT_BLOCKED, ANSWER_SAFETY] {
            let mut d = GeminiStream::new(false);
            let one_line: Value = serde_json::from_str(fixture).expect("json");
            let out = d.decode(&ev(&one_line.to_string()));
            let r = out.refused.expect("refused");
            assert_eq!(r.status, 400);
            assert_eq!(
                json_of(&r.body)["error"]["code"],
                "content_policy_violation"
            );
            assert!(out.forward.is_empty() && !out.progress);
        }
    }

    #[test]
    fn stream_blocked_after_content_is_a_content_filter_finish_not_a_refusal() {
        let mut d = GeminiStream::new(false);
        assert!(
            d.decode(&ev(
                r#"{"candidates":[{"content":{"parts":[{"text":"Once"}]},"index":0}]}"#
            ))
            .progress
        );
        let out = d.decode(&ev(
            r#"{"candidates":[{"finishReason":"SAFETY","index":0}]}"#,
        ));
        assert!(out.refused.is_none());
        let c: Value = serde_json::from_str(&out.forward[0]).expect("json");
        assert_eq!(c["choices"][0]["finish_reason"], "content_filter");
        assert!(d.finished());
        // A prompt block after content can only end the stream as an error.
        let mut late = GeminiStream::new(false);
        late.decode(&ev(
            r#"{"candidates":[{"content":{"parts":[{"text":"x"}]}}]}"#,
        ));
        let blocked: Value = serde_json::from_str(PROMPT_BLOCKED).expect("json");
        let out = late.decode(&ev(&blocked.to_string()));
        assert!(out.refused.is_none() && out.error.is_some());
    }

    #[test]
    fn stream_malformed_error_and_empty_events() {
        let mut d = GeminiStream::new(false);
        assert!(d.decode(&ev("{not json")).malformed);
        let err = d.decode(&ev(r#"{"error":{"code":503,"message":"The model is overloaded. Please try again later.","status":"UNAVAILABLE"}}"#));
        assert_eq!(
            err.error.as_deref(),
            Some("The model is overloaded. Please try again later. (UNAVAILABLE)")
        );
        // A metadata-only event is neither progress nor malformed.
        let meta = d.decode(&ev(
            r#"{"usageMetadata":{"promptTokenCount":3},"modelVersion":"m"}"#,
        ));
        assert!(!meta.progress && !meta.malformed && meta.forward.is_empty());
        assert!(!d.finished());
        assert!(d.decode(&ev("[DONE]")).done);
    }
}
