//! The Anthropic-compatible endpoints: `POST /v1/messages`,
//! `POST /v1/messages/count_tokens`, and the Anthropic list format of
//! `GET /v1/models`, so tools built on Anthropic's SDK (Claude Code among
//! them) can use the loopback port.
//!
//! A Messages request is translated into the canonical OpenAI chat shape
//! and routed like any other, whatever the upstream type; the answer comes
//! back as an Anthropic `message`, and a stream as Anthropic's exact event
//! sequence (`message_start`, content blocks, `message_delta`,
//! `message_stop`). Errors use Anthropic's error JSON.

use std::collections::HashMap;
use std::sync::Arc;

use axum::extract::rejection::BytesRejection;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use serde_json::{json, Map, Value};

use super::ingress::{self, annotate};
use super::{authenticate, AppState, GatewayError};
use crate::providers::prompt_chars;
use crate::record::{RequestRecord, Usage};
use crate::request::{
    new_request_id, Accepted, Call, CallKind, Caller, NativeCall, NativeFormat, Refused,
};
use crate::routing::{Answer, Encoder, StreamOut};

fn bad(message: impl Into<String>) -> GatewayError {
    GatewayError::BadRequest(message.into())
}

/// The text of a `system` field: a string, or an array of text blocks.
fn system_text(system: &Value) -> Result<String, GatewayError> {
    match system {
        Value::String(s) => Ok(s.clone()),
        Value::Array(blocks) => Ok(blocks
            .iter()
            .filter_map(|b| b.get("text").and_then(|t| t.as_str()))
            .collect::<Vec<_>>()
            .join("\n\n")),
        Value::Null => Ok(String::new()),
        _ => Err(bad("system: must be a string or an array of text blocks")),
    }
}

/// An Anthropic image block as an OpenAI `image_url` part.
fn image_part(block: &Value) -> Result<Value, GatewayError> {
    let source = block
        .get("source")
        .ok_or_else(|| bad("image block: missing `source`"))?;
    let url = match source.get("type").and_then(|t| t.as_str()) {
        Some("base64") => {
            let media = source
                .get("media_type")
                .and_then(|m| m.as_str())
                .ok_or_else(|| bad("image source: missing `media_type`"))?;
            let data = source
                .get("data")
                .and_then(|d| d.as_str())
                .ok_or_else(|| bad("image source: missing `data`"))?;
            format!("data:{media};base64,{data}")
        }
        Some("url") => source
            .get("url")
            .and_then(|u| u.as_str())
            .ok_or_else(|| bad("image source: missing `url`"))?
            .to_string(),
        other => {
            return Err(bad(format!(
                "image source type {} is not supported here (use base64 or url)",
                other.unwrap_or("(none)")
            )))
        }
    };
    Ok(json!({"type": "image_url", "image_url": {"url": url}}))
}

/// The text of a list of blocks (or a plain string): what a model that
/// cannot see the blocks themselves should read.
fn blocks_text(content: Option<&Value>) -> String {
    match content {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Array(blocks)) => blocks
            .iter()
            .filter_map(block_text)
            .collect::<Vec<_>>()
            .join("\n\n"),
        _ => String::new(),
    }
}

/// A block's readable text: text, a search result's or a document's
/// content; `None` for blocks with nothing to read (images, markers).
fn block_text(block: &Value) -> Option<String> {
    match block.get("type").and_then(Value::as_str) {
        Some("text") => block
            .get("text")
            .and_then(Value::as_str)
            .map(str::to_string),
        Some("search_result") => {
            let title = block.get("title").and_then(Value::as_str).unwrap_or("");
            let source = block.get("source").and_then(Value::as_str).unwrap_or("");
            let body = blocks_text(block.get("content"));
            Some(format!("[{title}]({source})\n{body}"))
        }
        Some("document") => {
            let source = block.get("source")?;
            let body = match source.get("type").and_then(Value::as_str) {
                Some("text") => source.get("data").and_then(Value::as_str)?.to_string(),
                Some("content") => blocks_text(source.get("content")),
                Some("url") => format!("(document at {})", source.get("url")?.as_str()?),
                _ => return None,
            };
            let title = block.get("title").and_then(Value::as_str);
            Some(match title {
                Some(t) => format!("{t}\n\n{body}"),
                None => body,
            })
        }
        Some("tool_reference") => block
            .get("tool_name")
            .and_then(Value::as_str)
            .map(|n| format!("(tool `{n}` is available)")),
        _ => None,
    }
}

/// A user block as OpenAI content parts (several for a document or a tool
/// result's images; none for blocks only Anthropic can act on).
fn user_parts(block: &Value, out: &mut Vec<Value>) -> Result<(), GatewayError> {
    match block.get("type").and_then(Value::as_str) {
        Some("image") => out.push(image_part(block)?),
        Some("document")
            if block.pointer("/source/type").and_then(Value::as_str) == Some("base64") =>
        {
            let media = block
                .pointer("/source/media_type")
                .and_then(Value::as_str)
                .unwrap_or("application/pdf");
            let data = block
                .pointer("/source/data")
                .and_then(Value::as_str)
                .ok_or_else(|| bad("document source: missing `data`"))?;
            let name = block
                .get("title")
                .and_then(Value::as_str)
                .unwrap_or("document.pdf");
            out.push(json!({"type": "file", "file": {
                "filename": name,
                "file_data": format!("data:{media};base64,{data}"),
            }}));
        }
        _ => {
            if let Some(text) = block_text(block) {
                out.push(json!({"type": "text", "text": text}));
            }
        }
    }
    Ok(())
}

/// A `tool_result` block's content as the tool message's text; its images
/// (a tool message carries text only) go to `images`.
fn tool_result(block: &Value, images: &mut Vec<Value>) -> Result<String, GatewayError> {
    let mut text = match block.get("content") {
        Some(Value::Array(blocks)) => {
            let mut texts = Vec::new();
            for b in blocks {
                match b.get("type").and_then(Value::as_str) {
                    Some("image") => images.push(image_part(b)?),
                    _ => texts.extend(block_text(b)),
                }
            }
            texts.join("\n")
        }
        Some(Value::String(s)) => s.clone(),
        Some(other) if !other.is_null() => other.to_string(),
        _ => String::new(),
    };
    if block.get("is_error").and_then(|e| e.as_bool()) == Some(true) {
        text = format!("Error: {text}");
    }
    Ok(text)
}

/// Translates an Anthropic Messages request into the canonical OpenAI chat
/// request. Whatever only Anthropic can act on — server tools and their
/// results, earlier thinking, context management, cache control — is left
/// out rather than refused, so a client written for Anthropic (Claude Code)
/// works over any upstream; a native Anthropic channel gets the client's
/// own request instead of this one.
pub(super) fn to_openai(req: &Map<String, Value>) -> Result<Map<String, Value>, GatewayError> {
    let model = match req.get("model") {
        Some(Value::String(m)) if !m.trim().is_empty() => m.clone(),
        _ => return Err(bad("model: Field required (a non-empty string)")),
    };
    let max_tokens = req
        .get("max_tokens")
        .and_then(|v| v.as_u64())
        .ok_or_else(|| bad("max_tokens: Field required (a positive integer)"))?;
    let messages = match req.get("messages") {
        Some(Value::Array(m)) if !m.is_empty() => m,
        Some(Value::Array(_)) => return Err(bad("messages: at least one message is required")),
        _ => return Err(bad("messages: Field required (an array of messages)")),
    };

    // The system prompt: the `system` field, then every `system` message in
    // the order it came (Claude Code puts some among the turns).
    let mut system = Vec::new();
    if let Some(s) = req.get("system") {
        let text = system_text(s)?;
        if !text.is_empty() {
            system.push(text);
        }
    }
    let mut out_msgs: Vec<Value> = Vec::new();
    for (i, msg) in messages.iter().enumerate() {
        let role = msg.get("role").and_then(|r| r.as_str()).unwrap_or_default();
        if !matches!(role, "user" | "assistant" | "system") {
            return Err(bad(format!(
                "messages.{i}.role: must be \"user\", \"assistant\" or \"system\""
            )));
        }
        let content = msg
            .get("content")
            .ok_or_else(|| bad(format!("messages.{i}.content: Field required")))?;
        if !(content.is_string() || content.is_array()) {
            return Err(bad(format!(
                "messages.{i}.content: must be a string or an array of content blocks"
            )));
        }
        if role == "system" {
            let text = blocks_text(Some(content));
            if !text.is_empty() {
                system.push(text);
            }
            continue;
        }
        let blocks = match content {
            Value::String(s) => {
                out_msgs.push(json!({"role": role, "content": s}));
                continue;
            }
            Value::Array(b) => b,
            _ => unreachable!("checked above"),
        };
        if role == "assistant" {
            let mut text = String::new();
            let mut tool_calls: Vec<Value> = Vec::new();
            for block in blocks {
                match block.get("type").and_then(|t| t.as_str()) {
                    Some("tool_use") => {
                        let input = block.get("input").cloned().unwrap_or_else(|| json!({}));
                        tool_calls.push(json!({
                            "id": block.get("id").cloned().unwrap_or(Value::Null),
                            "type": "function",
                            "function": {
                                "name": block.get("name").cloned().unwrap_or(Value::Null),
                                "arguments": input.to_string(),
                            }
                        }));
                    }
                    // Earlier thinking, server tools and their results are
                    // the Anthropic model's own business.
                    Some("text") => {
                        text.push_str(block.get("text").and_then(|t| t.as_str()).unwrap_or(""));
                    }
                    _ => {}
                }
            }
            let mut m = json!({"role": "assistant", "content": if text.is_empty() { Value::Null } else { Value::String(text) }});
            if !tool_calls.is_empty() {
                m["tool_calls"] = Value::Array(tool_calls);
            }
            out_msgs.push(m);
            continue;
        }
        let mut parts: Vec<Value> = Vec::new();
        let mut images: Vec<Value> = Vec::new();
        for block in blocks {
            if block.get("type").and_then(Value::as_str) == Some("tool_result") {
                let content = tool_result(block, &mut images)?;
                // Tool results answer the assistant's calls: they come
                // before whatever else this user turn says.
                out_msgs.push(json!({
                    "role": "tool",
                    "tool_call_id": block.get("tool_use_id").cloned().unwrap_or(Value::Null),
                    "content": content,
                }));
            } else {
                user_parts(block, &mut parts)?;
            }
        }
        parts.extend(images);
        if !parts.is_empty() {
            out_msgs.push(json!({"role": "user", "content": parts}));
        }
    }
    if !system.is_empty() {
        out_msgs.insert(0, json!({"role": "system", "content": system.join("\n\n")}));
    }

    let mut out = Map::new();
    out.insert("model".into(), Value::String(model));
    out.insert("messages".into(), Value::Array(out_msgs));
    out.insert("max_tokens".into(), json!(max_tokens));
    for (from, to) in [
        ("temperature", "temperature"),
        ("top_p", "top_p"),
        ("stop_sequences", "stop"),
    ] {
        if let Some(v) = req.get(from).filter(|v| !v.is_null()) {
            out.insert(to.into(), v.clone());
        }
    }
    if let Some(stream) = req.get("stream").and_then(|s| s.as_bool()) {
        out.insert("stream".into(), Value::Bool(stream));
    }
    if let Some(user) = req
        .get("metadata")
        .and_then(|m| m.get("user_id"))
        .filter(|v| v.is_string())
    {
        out.insert("user".into(), user.clone());
    }
    if let Some(tools) = req.get("tools").and_then(|t| t.as_array()) {
        let mut out_tools = Vec::new();
        for (i, t) in tools.iter().enumerate() {
            let Some(name) = t.get("name").and_then(|n| n.as_str()) else {
                return Err(bad(format!("tools.{i}.name: Field required")));
            };
            // Server tools (web search, code execution, tool search, …) run
            // at Anthropic: another upstream cannot, so they are left out.
            if t.get("type")
                .and_then(|ty| ty.as_str())
                .is_some_and(|ty| ty != "custom")
            {
                continue;
            }
            let mut function = json!({
                "name": name,
                "parameters": t.get("input_schema").cloned().unwrap_or_else(|| json!({"type": "object"})),
            });
            if let Some(d) = t.get("description") {
                function["description"] = d.clone();
            }
            out_tools.push(json!({"type": "function", "function": function}));
        }
        if !out_tools.is_empty() {
            out.insert("tools".into(), Value::Array(out_tools));
        }
    }
    if let Some(choice) = req.get("tool_choice").filter(|_| out.contains_key("tools")) {
        let mapped = match choice.get("type").and_then(|t| t.as_str()) {
            Some("auto") => Some(json!("auto")),
            Some("any") => Some(json!("required")),
            Some("none") => Some(json!("none")),
            Some("tool") => Some(
                json!({"type": "function", "function": {"name": choice.get("name").cloned().unwrap_or(Value::Null)}}),
            ),
            _ => None,
        };
        if let Some(mapped) = mapped {
            out.insert("tool_choice".into(), mapped);
        }
        if choice
            .get("disable_parallel_tool_use")
            .and_then(|d| d.as_bool())
            == Some(true)
        {
            out.insert("parallel_tool_calls".into(), Value::Bool(false));
        }
    }
    // Budgeted thinking asks for reasoning; adaptive thinking leaves the
    // amount to the model, which is what any other model does by default.
    let thinking = req.get("thinking");
    if thinking
        .and_then(|t| t.get("type"))
        .and_then(|t| t.as_str())
        == Some("enabled")
    {
        let budget = thinking
            .and_then(|t| t.get("budget_tokens"))
            .and_then(|b| b.as_u64())
            .unwrap_or(0);
        let effort = match budget {
            0..4096 => "low",
            4096..16384 => "medium",
            _ => "high",
        };
        out.insert("reasoning_effort".into(), json!(effort));
    }
    // Structured output: a JSON schema the answer must follow.
    let format = req
        .get("output_config")
        .and_then(|c| c.get("format"))
        .or_else(|| req.get("output_format"));
    if let Some(schema) = format
        .filter(|f| f.get("type").and_then(Value::as_str) == Some("json_schema"))
        .and_then(|f| f.get("schema"))
    {
        out.insert(
            "response_format".into(),
            json!({"type": "json_schema", "json_schema": {"name": "output", "schema": schema}}),
        );
    }
    Ok(out)
}

fn stop_reason(finish: Option<&str>) -> &'static str {
    match finish {
        Some("length") => "max_tokens",
        Some("tool_calls") | Some("function_call") => "tool_use",
        Some("content_filter") => "refusal",
        _ => "end_turn",
    }
}

fn usage_json(u: &Usage) -> Value {
    json!({
        "input_tokens": u.input,
        "output_tokens": u.output + u.reasoning,
        "cache_read_input_tokens": u.cached_input,
        "cache_creation_input_tokens": u.cache_write,
    })
}

fn message_id(request_id: &str) -> String {
    format!("msg_{}", request_id.trim_start_matches("req_"))
}

/// A whole OpenAI chat completion as an Anthropic `message`.
fn to_anthropic_message(body: &[u8], rec: &RequestRecord) -> Result<Value, GatewayError> {
    let v: Value =
        serde_json::from_slice(body).map_err(|_| GatewayError::Internal(rec.request_id.clone()))?;
    let choice = v.pointer("/choices/0").cloned().unwrap_or(Value::Null);
    let message = choice.get("message").cloned().unwrap_or(Value::Null);
    let mut content = Vec::new();
    let text = match message.get("content") {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Array(parts)) => parts
            .iter()
            .filter_map(|p| p.get("text").and_then(|t| t.as_str()))
            .collect(),
        _ => String::new(),
    };
    if !text.is_empty() {
        content.push(json!({"type": "text", "text": text}));
    }
    for call in message
        .get("tool_calls")
        .and_then(|t| t.as_array())
        .into_iter()
        .flatten()
    {
        let args = call
            .pointer("/function/arguments")
            .and_then(|a| a.as_str())
            .unwrap_or("{}");
        content.push(json!({
            "type": "tool_use",
            "id": call.get("id").cloned().unwrap_or(Value::Null),
            "name": call.pointer("/function/name").cloned().unwrap_or(Value::Null),
            "input": serde_json::from_str::<Value>(args).unwrap_or_else(|_| json!({})),
        }));
    }
    let usage = rec.usage.unwrap_or_default();
    Ok(json!({
        "id": message_id(&rec.request_id),
        "type": "message",
        "role": "assistant",
        "model": v.get("model").cloned().unwrap_or_else(|| json!(rec.answered_model)),
        "content": content,
        "stop_reason": stop_reason(choice.get("finish_reason").and_then(|f| f.as_str())),
        "stop_sequence": null,
        "usage": usage_json(&usage),
    }))
}

/// The kind of content block open in the client's stream.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Block {
    Text,
    Thinking,
    Tool,
}

/// Turns the canonical OpenAI chunk stream into Anthropic's event sequence
/// — or, for a native stream, relays the upstream's own events.
struct AnthropicEncoder {
    /// The chunks are the upstream's Anthropic events, already framed.
    native: bool,
    saw_stop: bool,
    id: String,
    model: String,
    started: bool,
    open: Option<(usize, Block)>,
    next_index: usize,
    /// OpenAI tool-call index → the content block carrying it.
    tools: HashMap<u64, usize>,
    finish: Option<String>,
    usage: Option<Usage>,
    /// Final usage if none arrives in the stream.
    fallback_usage: Usage,
}

fn event(out: &mut String, name: &str, data: Value) {
    out.push_str("event: ");
    out.push_str(name);
    out.push_str("\ndata: ");
    out.push_str(&data.to_string());
    out.push_str("\n\n");
}

impl AnthropicEncoder {
    fn start(&mut self, out: &mut String, model: Option<&str>) {
        if self.started {
            return;
        }
        self.started = true;
        if let Some(m) = model {
            self.model = m.to_string();
        }
        event(
            out,
            "message_start",
            json!({"type": "message_start", "message": {
                "id": self.id, "type": "message", "role": "assistant", "model": self.model,
                "content": [], "stop_reason": null, "stop_sequence": null,
                "usage": {"input_tokens": self.fallback_usage.input, "output_tokens": 0},
            }}),
        );
    }

    fn close(&mut self, out: &mut String) {
        if let Some((index, _)) = self.open.take() {
            event(
                out,
                "content_block_stop",
                json!({"type": "content_block_stop", "index": index}),
            );
        }
    }

    /// The index of an open block of `kind`, opening one (with `start`) if needed.
    fn ensure(&mut self, out: &mut String, kind: Block, start: Value) -> usize {
        if let Some((index, open)) = self.open {
            if open == kind && kind != Block::Tool {
                return index;
            }
        }
        self.close(out);
        let index = self.next_index;
        self.next_index += 1;
        self.open = Some((index, kind));
        event(
            out,
            "content_block_start",
            json!({"type": "content_block_start", "index": index, "content_block": start}),
        );
        index
    }

    fn delta(out: &mut String, index: usize, delta: Value) {
        event(
            out,
            "content_block_delta",
            json!({"type": "content_block_delta", "index": index, "delta": delta}),
        );
    }

    fn chunk(&mut self, json: &str, out: &mut String) {
        let Ok(v) = serde_json::from_str::<Value>(json) else {
            return;
        };
        self.start(out, v.get("model").and_then(|m| m.as_str()));
        if let Some(u) = v.get("usage").and_then(Usage::from_openai) {
            self.usage = Some(u);
        }
        let Some(choice) = v.pointer("/choices/0") else {
            return;
        };
        let delta = choice.get("delta").cloned().unwrap_or(Value::Null);
        for field in ["reasoning_content", "reasoning"] {
            if let Some(t) = delta
                .get(field)
                .and_then(|t| t.as_str())
                .filter(|t| !t.is_empty())
            {
                let i = self.ensure(
                    out,
                    Block::Thinking,
                    json!({"type": "thinking", "thinking": "", "signature": ""}),
                );
                Self::delta(out, i, json!({"type": "thinking_delta", "thinking": t}));
            }
        }
        if let Some(t) = delta
            .get("content")
            .and_then(|t| t.as_str())
            .filter(|t| !t.is_empty())
        {
            let i = self.ensure(out, Block::Text, json!({"type": "text", "text": ""}));
            Self::delta(out, i, json!({"type": "text_delta", "text": t}));
        }
        for call in delta
            .get("tool_calls")
            .and_then(|t| t.as_array())
            .into_iter()
            .flatten()
        {
            let tool_index = call.get("index").and_then(|i| i.as_u64()).unwrap_or(0);
            let block = match self.tools.get(&tool_index) {
                Some(&b) if call.get("id").is_none_or(|id| id.is_null()) => b,
                _ => {
                    let b = self.ensure(
                        out,
                        Block::Tool,
                        json!({
                            "type": "tool_use",
                            "id": call.get("id").cloned().unwrap_or(Value::Null),
                            "name": call.pointer("/function/name").cloned().unwrap_or(Value::Null),
                            "input": {},
                        }),
                    );
                    self.tools.insert(tool_index, b);
                    b
                }
            };
            if let Some(args) = call
                .pointer("/function/arguments")
                .and_then(|a| a.as_str())
                .filter(|a| !a.is_empty())
            {
                Self::delta(
                    out,
                    block,
                    json!({"type": "input_json_delta", "partial_json": args}),
                );
            }
        }
        if let Some(f) = choice.get("finish_reason").and_then(|f| f.as_str()) {
            self.finish = Some(f.to_string());
        }
    }
}

impl Encoder for AnthropicEncoder {
    type Out = Bytes;
    fn encode(&mut self, item: &StreamOut<'_>) -> Bytes {
        let mut out = String::new();
        match item {
            StreamOut::Chunk(framed) if self.native => {
                self.saw_stop |= framed.starts_with("event: message_stop");
                return Bytes::copy_from_slice(framed.as_bytes());
            }
            // The upstream finished without its closing event: close it.
            StreamOut::Done if self.native => {
                if !self.saw_stop {
                    event(&mut out, "message_stop", json!({"type": "message_stop"}));
                }
            }
            StreamOut::Chunk(json) => self.chunk(json, &mut out),
            StreamOut::Done => {
                self.start(&mut out, None);
                self.close(&mut out);
                let usage = self.usage.unwrap_or(self.fallback_usage);
                event(
                    &mut out,
                    "message_delta",
                    json!({"type": "message_delta",
                        "delta": {"stop_reason": stop_reason(self.finish.as_deref()), "stop_sequence": null},
                        "usage": usage_json(&usage)}),
                );
                event(&mut out, "message_stop", json!({"type": "message_stop"}));
            }
            StreamOut::Error { message, code } => {
                let kind = if *code == "upstream_stalled" {
                    "timeout_error"
                } else {
                    "api_error"
                };
                event(
                    &mut out,
                    "error",
                    json!({"type": "error", "error": {"type": kind, "message": message}}),
                );
            }
        }
        Bytes::from(out)
    }
}

fn anthropic_refusal(refused: Refused, request_id: &str) -> Response {
    let (error, rec, recorded) = ingress::refused_parts(refused, request_id);
    let mut resp = error.into_anthropic_response();
    annotate(&mut resp, &rec);
    if recorded {
        resp.extensions_mut().insert(super::refusals::Recorded);
    }
    resp
}

/// `POST /v1/messages`.
pub async fn messages(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let request_id = new_request_id();
    match run_messages(&state, &headers, body, request_id.clone()).await {
        Ok(resp) => resp,
        Err(refused) => anthropic_refusal(refused, &request_id),
    }
}

async fn run_messages(
    state: &AppState,
    headers: &HeaderMap,
    body: Result<Bytes, BytesRejection>,
    request_id: String,
) -> Result<Response, Refused> {
    let key = authenticate(state, headers).await?;
    let limit = state.gateway().config.server.max_body_bytes;
    let req = ingress::json_object(body, limit)?;
    let body = to_openai(&req)?;
    let stream = body
        .get("stream")
        .and_then(|s| s.as_bool())
        .unwrap_or(false);
    let prompt_tokens = Usage::estimate(prompt_chars(&body), 0);
    let Accepted {
        answer,
        guard,
        record: rec,
    } = state
        .core
        .call(Call {
            request_id,
            kind: CallKind::Chat,
            caller: Caller::api(key),
            body,
            native: Some(NativeCall {
                format: NativeFormat::Anthropic,
                body: req,
                beta: headers
                    .get("anthropic-beta")
                    .and_then(|v| v.to_str().ok())
                    .map(str::to_string),
            }),
            stream,
            // Anthropic reports usage in `message_delta`: the encoder needs it.
            wants_usage: true,
            progress: None,
            pin: None,
        })
        .await?;
    // An Anthropic channel answered the client's own request: its answer is
    // already in the client's format.
    let native = ingress::answered_natively(state, &rec, NativeFormat::Anthropic);
    match answer {
        Answer::Whole(reply) if native => Ok(ingress::whole_response(reply.body, guard, &rec)),
        Answer::Whole(reply) => {
            let message = match to_anthropic_message(&reply.body, &rec) {
                Ok(m) => m,
                Err(e) => return Err(ingress::untranslatable(guard, rec, e)),
            };
            Ok(ingress::whole_response(
                Bytes::from(message.to_string()),
                guard,
                &rec,
            ))
        }
        Answer::Stream(start) => {
            let encoder = AnthropicEncoder {
                native,
                saw_stop: false,
                id: message_id(&rec.request_id),
                model: rec.answered_model.clone().unwrap_or_default(),
                started: false,
                open: None,
                next_index: 0,
                tools: HashMap::new(),
                finish: None,
                usage: None,
                fallback_usage: prompt_tokens,
            };
            Ok(ingress::stream_response(start, guard, &rec, encoder))
        }
    }
}

/// `POST /v1/messages/count_tokens`: an estimate (about four characters a
/// token over the messages, system prompt and tool definitions), since the
/// route's upstream may have no counting endpoint of its own.
pub async fn count_tokens(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let request_id = new_request_id();
    let result = async {
        let key = authenticate(&state, &headers).await?;
        let mut req = ingress::json_object(body, state.gateway().config.server.max_body_bytes)?;
        // Counting needs no max_tokens.
        req.entry("max_tokens").or_insert(json!(1));
        let body = to_openai(&req)?;
        let model = body
            .get("model")
            .and_then(|m| m.as_str())
            .unwrap_or_default();
        if !key.allows_model(model) {
            return Err(GatewayError::ModelNotAllowed {
                key: key.name.clone(),
                model: model.to_string(),
                allowed: key.models_display(),
            });
        }
        if state.gateway().resolve(model).is_none() {
            return Err(GatewayError::UnknownModel(model.to_string()));
        }
        let tool_chars = body
            .get("tools")
            .map_or(0, |t| t.to_string().chars().count());
        let tokens = Usage::estimate(prompt_chars(&body) + tool_chars, 0).input;
        Ok(json!({"input_tokens": tokens}))
    }
    .await;
    match result {
        Ok(v) => axum::Json(v).into_response(),
        Err(e) => anthropic_refusal(e.into(), &request_id),
    }
}

/// Models in Anthropic's list format.
pub(super) fn models_list(ids: &[String]) -> Response {
    let data: Vec<Value> = ids
        .iter()
        .map(|id| json!({"type": "model", "id": id, "display_name": id, "created_at": "1970-01-01T00:00:00Z"}))
        .collect();
    axum::Json(json!({
        "data": data,
        "has_more": false,
        "first_id": ids.first(),
        "last_id": ids.last(),
    }))
    .into_response()
}

/// An error in Anthropic's format (for `GET /v1/models` asked by an
/// Anthropic client).
pub(super) fn error_response(err: GatewayError) -> Response {
    err.into_anthropic_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn obj(v: Value) -> Map<String, Value> {
        v.as_object().cloned().expect("object")
    }

    #[test]
    fn request_translation_covers_system_images_tools_and_results() {
        let req = obj(json!({
            "model": "claude-test",
            "max_tokens": 512,
            "system": [{"type": "text", "text": "Be brief."}],
            "stop_sequences": ["END"],
            "temperature": 0.3,
            "tools": [{"name": "weather", "description": "d", "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}}}],
            "tool_choice": {"type": "any", "disable_parallel_tool_use": true},
            "messages": [
                {"role": "user", "content": [
                    {"type": "text", "text": "What is this?"},
                    {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "iVBOR"}},
                    {"type": "image", "source": {"type": "url", "url": "https://example.com/a.jpg"}}
                ]},
                {"role": "assistant", "content": [
                    {"type": "thinking", "thinking": "hmm", "signature": "s"},
                    {"type": "text", "text": "Let me check."},
                    {"type": "tool_use", "id": "toolu_1", "name": "weather", "input": {"city": "Paris"}}
                ]},
                {"role": "user", "content": [
                    {"type": "tool_result", "tool_use_id": "toolu_1", "content": [{"type": "text", "text": "Sunny"}]},
                    {"type": "text", "text": "Thanks"}
                ]}
            ]
        }));
        let out = to_openai(&req).expect("translates");
        let msgs = out["messages"].as_array().expect("messages");
        assert_eq!(msgs[0], json!({"role": "system", "content": "Be brief."}));
        assert_eq!(
            msgs[1]["content"][1]["image_url"]["url"],
            "data:image/png;base64,iVBOR"
        );
        assert_eq!(
            msgs[1]["content"][2]["image_url"]["url"],
            "https://example.com/a.jpg"
        );
        assert_eq!(msgs[2]["content"], "Let me check.");
        assert_eq!(
            msgs[2]["tool_calls"][0]["function"]["arguments"],
            "{\"city\":\"Paris\"}"
        );
        assert_eq!(
            msgs[3],
            json!({"role": "tool", "tool_call_id": "toolu_1", "content": "Sunny"})
        );
        assert_eq!(msgs[4]["content"][0]["text"], "Thanks");
        assert_eq!(out["max_tokens"], 512);
        assert_eq!(out["stop"], json!(["END"]));
        assert_eq!(out["tool_choice"], "required");
        assert_eq!(out["parallel_tool_calls"], false);
        assert_eq!(
            out["tools"][0]["function"]["parameters"]["properties"]["city"]["type"],
            "string"
        );
    }

    /// What Claude Code sends (tests/agents/fixtures/claude): system
    /// messages among the turns, adaptive thinking, context management,
    /// effort, deferred and server tools, every kind of block.
    #[test]
    fn what_claude_code_sends_translates_without_a_refusal() {
        let req = obj(json!({
            "model": "claude-sonnet-4-6",
            "max_tokens": 32000,
            "stream": true,
            "system": [
                {"type": "text", "text": "x-anthropic-billing-header: cc_version=2"},
                {"type": "text", "text": "You are an agent.", "cache_control": {"type": "ephemeral"}}
            ],
            "thinking": {"type": "adaptive", "display": "omitted"},
            "context_management": {"edits": [{"type": "clear_thinking_20251015", "keep": "all"}]},
            "output_config": {"effort": "high"},
            "metadata": {"user_id": "{\"device_id\":\"d\"}"},
            "tools": [
                {"name": "Read", "description": "Reads a file", "input_schema": {"type": "object"}},
                {"name": "Later", "defer_loading": true, "input_schema": {"type": "object"}},
                {"type": "web_search_20250305", "name": "web_search", "max_uses": 5},
                {"type": "tool_search_tool_regex_20251119", "name": "tool_search"}
            ],
            "tool_choice": {"type": "auto"},
            "messages": [
                {"role": "user", "content": [
                    {"type": "text", "text": "<system-reminder>env</system-reminder>", "cache_control": {"type": "ephemeral"}},
                    {"type": "document", "source": {"type": "text", "media_type": "text/plain", "data": "notes"}, "title": "n.txt"},
                    {"type": "document", "source": {"type": "base64", "media_type": "application/pdf", "data": "JVBERi0="}},
                    {"type": "search_result", "source": "https://a.example", "title": "A", "content": [{"type": "text", "text": "found"}]},
                    {"type": "container_upload", "file_id": "f1"}
                ]},
                {"role": "system", "content": [{"type": "text", "text": "# Environment\nlinux"}]},
                {"role": "assistant", "content": [
                    {"type": "thinking", "thinking": "hmm", "signature": "s"},
                    {"type": "redacted_thinking", "data": "xx"},
                    {"type": "server_tool_use", "id": "srvtoolu_1", "name": "web_search", "input": {"query": "q"}},
                    {"type": "web_search_tool_result", "tool_use_id": "srvtoolu_1", "content": []},
                    {"type": "text", "text": "Reading."},
                    {"type": "tool_use", "id": "toolu_1", "name": "Read", "input": {"path": "a"}}
                ]},
                {"role": "user", "content": [
                    {"type": "tool_result", "tool_use_id": "toolu_1", "content": [
                        {"type": "text", "text": "file body"},
                        {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "iVBOR"}},
                        {"type": "tool_reference", "tool_name": "Later"}
                    ]}
                ]},
                {"role": "system", "content": "Be brief."}
            ]
        }));
        let out = to_openai(&req).expect("nothing Claude Code sends is refused");
        let msgs = out["messages"].as_array().expect("messages");
        assert_eq!(
            msgs[0],
            json!({"role": "system", "content": "x-anthropic-billing-header: cc_version=2\n\nYou are an agent.\n\n# Environment\nlinux\n\nBe brief."}),
            "system text in order, one system message first"
        );
        assert!(msgs[1..].iter().all(|m| m["role"] != "system"));
        let user = msgs[1]["content"].as_array().expect("parts");
        assert_eq!(user[0]["text"], "<system-reminder>env</system-reminder>");
        assert_eq!(user[1]["text"], "n.txt\n\nnotes");
        assert_eq!(
            user[2]["file"]["file_data"],
            "data:application/pdf;base64,JVBERi0="
        );
        assert_eq!(user[3]["text"], "[A](https://a.example)\nfound");
        assert_eq!(user.len(), 4, "the container upload is left out");
        assert_eq!(msgs[2]["content"], "Reading.");
        assert_eq!(msgs[2]["tool_calls"].as_array().map(Vec::len), Some(1));
        assert_eq!(msgs[3]["role"], "tool");
        assert_eq!(msgs[3]["content"], "file body\n(tool `Later` is available)");
        assert_eq!(
            msgs[4]["role"], "user",
            "the tool result's image follows it"
        );
        assert_eq!(
            msgs[4]["content"][0]["image_url"]["url"],
            "data:image/png;base64,iVBOR"
        );
        let tools: Vec<&str> = out["tools"]
            .as_array()
            .expect("tools")
            .iter()
            .filter_map(|t| t["function"]["name"].as_str())
            .collect();
        assert_eq!(tools, ["Read", "Later"], "server tools are left out");
        assert_eq!(out["tool_choice"], "auto");
        for dropped in [
            "reasoning_effort",
            "context_management",
            "output_config",
            "thinking",
        ] {
            assert!(!out.contains_key(dropped), "{dropped} is not sent on");
        }
        assert_eq!(out["max_tokens"], 32000);
        assert_eq!(out["stream"], true);
    }

    #[test]
    fn a_json_schema_output_format_becomes_a_response_format() {
        for req in [
            json!({"model": "m", "max_tokens": 5, "messages": [{"role": "user", "content": "x"}],
                   "output_config": {"format": {"type": "json_schema", "schema": {"type": "object"}}}}),
            json!({"model": "m", "max_tokens": 5, "messages": [{"role": "user", "content": "x"}],
                   "output_format": {"type": "json_schema", "schema": {"type": "object"}}}),
        ] {
            let out = to_openai(&obj(req)).expect("translates");
            assert_eq!(out["response_format"]["type"], "json_schema");
            assert_eq!(
                out["response_format"]["json_schema"]["schema"],
                json!({"type": "object"})
            );
        }
    }

    #[test]
    fn missing_fields_are_clear_errors() {
        for (req, needle) in [
            (
                json!({"max_tokens": 5, "messages": [{"role": "user", "content": "x"}]}),
                "model",
            ),
            (
                json!({"model": "m", "messages": [{"role": "user", "content": "x"}]}),
                "max_tokens",
            ),
            (
                json!({"model": "m", "max_tokens": 5, "messages": []}),
                "messages",
            ),
            (
                json!({"model": "m", "max_tokens": 5, "messages": [{"role": "tool", "content": "x"}]}),
                "role",
            ),
        ] {
            let err = to_openai(&obj(req)).expect_err("refused").to_string();
            assert!(err.contains(needle), "{err}");
        }
    }

    fn encode_all(chunks: &[Value]) -> Vec<(String, Value)> {
        let mut enc = AnthropicEncoder {
            native: false,
            saw_stop: false,
            id: "msg_1".into(),
            model: "m".into(),
            started: false,
            open: None,
            next_index: 0,
            tools: HashMap::new(),
            finish: None,
            usage: None,
            fallback_usage: Usage::default(),
        };
        let mut text = String::new();
        for c in chunks {
            text.push_str(&String::from_utf8_lossy(
                &enc.encode(&StreamOut::Chunk(&c.to_string())),
            ));
        }
        text.push_str(&String::from_utf8_lossy(&enc.encode(&StreamOut::Done)));
        text.split("\n\n")
            .filter(|b| !b.trim().is_empty())
            .map(|b| {
                let mut lines = b.lines();
                let name = lines
                    .next()
                    .and_then(|l| l.strip_prefix("event: "))
                    .expect("event")
                    .to_string();
                let data = lines
                    .next()
                    .and_then(|l| l.strip_prefix("data: "))
                    .expect("data");
                (name, serde_json::from_str(data).expect("json"))
            })
            .collect()
    }

    #[test]
    fn stream_becomes_anthropics_exact_event_sequence() {
        let events = encode_all(&[
            json!({"model": "up-model", "choices": [{"index": 0, "delta": {"role": "assistant", "content": ""}, "finish_reason": null}]}),
            json!({"choices": [{"index": 0, "delta": {"reasoning_content": "Thinking."}, "finish_reason": null}]}),
            json!({"choices": [{"index": 0, "delta": {"content": "Hi"}, "finish_reason": null}]}),
            json!({"choices": [{"index": 0, "delta": {"content": " there"}, "finish_reason": null}]}),
            json!({"choices": [{"index": 0, "delta": {"tool_calls": [{"index": 0, "id": "call_1", "type": "function", "function": {"name": "f", "arguments": ""}}]}, "finish_reason": null}]}),
            json!({"choices": [{"index": 0, "delta": {"tool_calls": [{"index": 0, "function": {"arguments": "{\"a\":"}}]}, "finish_reason": null}]}),
            json!({"choices": [{"index": 0, "delta": {"tool_calls": [{"index": 0, "function": {"arguments": "1}"}}]}, "finish_reason": null}]}),
            json!({"choices": [{"index": 0, "delta": {}, "finish_reason": "tool_calls"}]}),
            json!({"choices": [], "usage": {"prompt_tokens": 30, "completion_tokens": 9, "prompt_tokens_details": {"cached_tokens": 10}}}),
        ]);
        let names: Vec<&str> = events.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(
            names,
            vec![
                "message_start",
                "content_block_start",
                "content_block_delta",
                "content_block_stop",
                "content_block_start",
                "content_block_delta",
                "content_block_delta",
                "content_block_stop",
                "content_block_start",
                "content_block_delta",
                "content_block_delta",
                "content_block_stop",
                "message_delta",
                "message_stop",
            ]
        );
        assert_eq!(events[0].1["message"]["model"], "up-model");
        assert_eq!(events[1].1["content_block"]["type"], "thinking");
        assert_eq!(events[4].1["content_block"]["type"], "text");
        assert_eq!(events[4].1["index"], 1);
        assert_eq!(events[6].1["delta"]["text"], " there");
        assert_eq!(
            events[8].1["content_block"],
            json!({"type": "tool_use", "id": "call_1", "name": "f", "input": {}})
        );
        assert_eq!(
            events[10].1["delta"],
            json!({"type": "input_json_delta", "partial_json": "1}"})
        );
        assert_eq!(events[12].1["delta"]["stop_reason"], "tool_use");
        assert_eq!(
            events[12].1["usage"],
            json!({"input_tokens": 20, "output_tokens": 9, "cache_read_input_tokens": 10, "cache_creation_input_tokens": 0})
        );
    }

    #[test]
    fn whole_answer_becomes_a_message() {
        let mut rec = RequestRecord::new("req_abc".into(), "m".into(), false);
        rec.usage = Some(Usage {
            input: 5,
            cached_input: 2,
            cache_write: 1,
            output: 7,
            reasoning: 3,
        });
        let body = json!({"model": "up", "choices": [{"index": 0, "finish_reason": "length", "message": {
            "role": "assistant", "content": "Hello",
            "tool_calls": [{"id": "call_9", "type": "function", "function": {"name": "f", "arguments": "{\"x\":2}"}}]
        }}]});
        let m = to_anthropic_message(body.to_string().as_bytes(), &rec).expect("message");
        assert_eq!(m["id"], "msg_abc");
        assert_eq!(m["stop_reason"], "max_tokens");
        assert_eq!(m["content"][0], json!({"type": "text", "text": "Hello"}));
        assert_eq!(
            m["content"][1],
            json!({"type": "tool_use", "id": "call_9", "name": "f", "input": {"x": 2}})
        );
        assert_eq!(
            m["usage"],
            json!({"input_tokens": 5, "output_tokens": 10, "cache_read_input_tokens": 2, "cache_creation_input_tokens": 1})
        );
    }
}
