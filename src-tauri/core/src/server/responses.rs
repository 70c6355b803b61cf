//! `POST /v1/responses`: OpenAI's Responses API (what Codex CLI and newer
//! SDKs speak), over any upstream type.
//!
//! A Responses request is translated into the canonical chat shape and
//! routed like any other: `instructions` and `developer`/`system` messages
//! become the system prompt, `function_call` and `function_call_output`
//! items tool calls and their results, free-form `custom` tools (Codex's
//! `apply_patch`) functions that take one string, `namespace` tools their
//! members. The answer comes back as a `response` object, a stream as the
//! Responses event sequence (`response.created` … `response.completed`,
//! with usage). Hosted tools only OpenAI can run (`web_search`,
//! `file_search`, …) are left out of what the model is offered, with a
//! warning; a request that forces one is refused with an error naming it.
//!
//! An `openai` channel (OpenAI itself) gets the client's request as it was
//! sent, hosted tools included, and its answer or event stream is relayed
//! as it came; usage is read from its `response.completed`.
//!
//! Translated answers are kept (`store`, on unless the client sends
//! `store: false`) in the `responses` table with the turns they answer, so
//! `previous_response_id` continues them and `GET`/`DELETE
//! /v1/responses/{id}` fetch and delete them, for the key that made them
//! only. Like chat texts they stay until deleted.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;

use axum::extract::rejection::BytesRejection;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use serde_json::{json, Map, Value};

use super::ingress::{self, refusal_response};
use super::{authenticate, AppState, GatewayError};
use crate::ledger::db;
use crate::record::{RequestRecord, Usage};
use crate::request::{
    new_request_id, Accepted, Call, CallKind, Caller, NativeCall, NativeFormat, Refused,
};
use crate::routing::{Answer, Encoder, StreamOut};

fn bad(message: impl Into<String>) -> GatewayError {
    GatewayError::BadRequest(message.into())
}

/// Tools only OpenAI can run.
const HOSTED: &[&str] = &[
    "web_search",
    "web_search_preview",
    "web_search_preview_2025_03_11",
    "file_search",
    "code_interpreter",
    "image_generation",
    "computer_use_preview",
    "computer_use",
    "mcp",
    "local_shell",
    "shell",
    "tool_search",
];

/// What the translation learned that the answer needs.
#[derive(Default, Debug)]
struct Shape {
    /// Free-form tools: their calls carry `input`, not JSON arguments.
    custom: HashSet<String>,
    /// Tools offered inside a namespace, and the namespace.
    namespaced: HashMap<String, String>,
    /// Hosted tools left out.
    dropped: Vec<String>,
}

/// The text of a content list (or string).
fn text_of(content: Option<&Value>) -> String {
    match content {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Array(parts)) => parts
            .iter()
            .filter_map(|p| p.get("text").and_then(Value::as_str))
            .collect::<Vec<_>>()
            .join("\n"),
        Some(v) if !v.is_null() => v.to_string(),
        _ => String::new(),
    }
}

/// A user message's content as chat parts.
fn user_content(content: &Value, at: &str) -> Result<Value, GatewayError> {
    let parts = match content {
        Value::String(s) => return Ok(Value::String(s.clone())),
        Value::Array(p) => p,
        _ => {
            return Err(bad(format!(
                "{at}.content: must be a string or an array of content parts"
            )))
        }
    };
    let mut out = Vec::new();
    for (j, part) in parts.iter().enumerate() {
        match part.get("type").and_then(Value::as_str) {
            Some("input_text" | "output_text" | "text") => out.push(
                json!({"type": "text", "text": part.get("text").and_then(Value::as_str).unwrap_or("")}),
            ),
            Some("input_image") => {
                let Some(url) = part.get("image_url").and_then(Value::as_str) else {
                    return Err(bad(format!(
                        "{at}.content.{j}: an input_image needs an `image_url` here (file ids are OpenAI's own)"
                    )));
                };
                let mut image = json!({"url": url});
                if let Some(d) = part.get("detail") {
                    image["detail"] = d.clone();
                }
                out.push(json!({"type": "image_url", "image_url": image}));
            }
            Some("input_file") => {
                let Some(data) = part.get("file_data").and_then(Value::as_str) else {
                    return Err(bad(format!(
                        "{at}.content.{j}: an input_file needs `file_data` here (file ids are OpenAI's own)"
                    )));
                };
                let name = part
                    .get("filename")
                    .and_then(Value::as_str)
                    .unwrap_or("file");
                out.push(json!({"type": "file", "file": {"filename": name, "file_data": data}}));
            }
            _ => {}
        }
    }
    if out.iter().all(|p| p["type"] == "text") {
        let text: Vec<&str> = out.iter().filter_map(|p| p["text"].as_str()).collect();
        return Ok(Value::String(text.join("\n")));
    }
    Ok(Value::Array(out))
}

/// Adds `tool` to the chat tools (or notes it as hosted and left out).
fn add_tool(tool: &Value, tools: &mut Vec<Value>, shape: &mut Shape) {
    let kind = tool
        .get("type")
        .and_then(Value::as_str)
        .unwrap_or("function");
    let name = tool.get("name").and_then(Value::as_str);
    match (kind, name) {
        ("function", Some(name)) => {
            let mut f = json!({
                "name": name,
                "parameters": tool.get("parameters").cloned().filter(|p| !p.is_null())
                    .unwrap_or_else(|| json!({"type": "object", "properties": {}})),
            });
            if let Some(d) = tool.get("description") {
                f["description"] = d.clone();
            }
            tools.push(json!({"type": "function", "function": f}));
        }
        ("custom", Some(name)) => {
            let mut description = tool
                .get("description")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_string();
            if let Some(def) = tool.pointer("/format/definition").and_then(Value::as_str) {
                description.push_str("\n\nThe input must follow this grammar:\n");
                description.push_str(def);
            }
            tools.push(json!({"type": "function", "function": {
                "name": name,
                "description": description,
                "parameters": {"type": "object", "properties": {"input": {
                    "type": "string", "description": "The tool's whole input, as free text."
                }}, "required": ["input"]},
            }}));
            shape.custom.insert(name.to_string());
        }
        ("namespace", Some(ns)) => {
            for inner in tool
                .get("tools")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                add_tool(inner, tools, shape);
                if let Some(n) = inner.get("name").and_then(Value::as_str) {
                    shape.namespaced.insert(n.to_string(), ns.to_string());
                }
            }
        }
        _ => shape
            .dropped
            .push(name.map_or_else(|| kind.to_string(), str::to_string)),
    }
}

/// The call id and arguments of a tool call item as a chat tool call.
fn tool_call(item: &Value, custom: bool) -> Value {
    let arguments = if custom {
        json!({"input": item.get("input").and_then(Value::as_str).unwrap_or("")}).to_string()
    } else {
        item.get("arguments")
            .and_then(Value::as_str)
            .unwrap_or("{}")
            .to_string()
    };
    json!({
        "id": item.get("call_id").cloned().unwrap_or(Value::Null),
        "type": "function",
        "function": {"name": item.get("name").cloned().unwrap_or(Value::Null), "arguments": arguments},
    })
}

/// Translates a Responses request into the canonical chat request.
///
/// `previous` is the conversation a kept response continues (its turns,
/// without the system prompt: instructions are not carried over). With
/// `hosted_ok` (every target runs the request natively) a forced hosted
/// tool is the upstream's business.
fn to_chat(
    req: &Map<String, Value>,
    previous: &[Value],
    hosted_ok: bool,
) -> Result<(Map<String, Value>, Shape), GatewayError> {
    let model = match req.get("model") {
        Some(Value::String(m)) if !m.trim().is_empty() => m.clone(),
        _ => return Err(bad("Missing required parameter: 'model'.")),
    };
    let mut shape = Shape::default();
    let mut system: Vec<String> = Vec::new();
    if let Some(i) = req.get("instructions").filter(|v| !v.is_null()) {
        let text = text_of(Some(i));
        if !text.is_empty() {
            system.push(text);
        }
    }
    let mut tools = Vec::new();
    for t in req
        .get("tools")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        add_tool(t, &mut tools, &mut shape);
    }

    let mut messages: Vec<Value> = Vec::new();
    match req.get("input") {
        Some(Value::String(s)) => messages.push(json!({"role": "user", "content": s})),
        Some(Value::Array(items)) => {
            for (i, item) in items.iter().enumerate() {
                let at = format!("input.{i}");
                let kind = item
                    .get("type")
                    .and_then(Value::as_str)
                    .unwrap_or("message");
                match kind {
                    "message" => {
                        let role = item.get("role").and_then(Value::as_str).unwrap_or("");
                        let content = item.get("content").unwrap_or(&Value::Null);
                        match role {
                            "developer" | "system" => {
                                let text = text_of(Some(content));
                                if !text.is_empty() {
                                    system.push(text);
                                }
                            }
                            "user" => messages
                                .push(json!({"role": "user", "content": user_content(content, &at)?})),
                            "assistant" => messages
                                .push(json!({"role": "assistant", "content": text_of(Some(content))})),
                            _ => {
                                return Err(bad(format!(
                                "{at}.role: must be one of 'user', 'assistant', 'system' or 'developer'"
                            )))
                            }
                        }
                    }
                    "function_call" | "custom_tool_call" => {
                        let call = tool_call(item, kind == "custom_tool_call");
                        // Calls made together share one assistant turn.
                        match messages.last_mut() {
                            Some(last) if last["role"] == "assistant" => {
                                match last.get_mut("tool_calls").and_then(Value::as_array_mut) {
                                    Some(calls) => calls.push(call),
                                    None => last["tool_calls"] = json!([call]),
                                }
                            }
                            _ => messages.push(
                                json!({"role": "assistant", "content": null, "tool_calls": [call]}),
                            ),
                        }
                    }
                    "function_call_output" | "custom_tool_call_output" => {
                        messages.push(json!({
                            "role": "tool",
                            "tool_call_id": item.get("call_id").cloned().unwrap_or(Value::Null),
                            "content": text_of(item.get("output")),
                        }));
                    }
                    "additional_tools" => {
                        for t in item
                            .get("tools")
                            .and_then(Value::as_array)
                            .into_iter()
                            .flatten()
                        {
                            add_tool(t, &mut tools, &mut shape);
                        }
                    }
                    // Earlier reasoning (encrypted for OpenAI), hosted tools'
                    // calls and references to stored items: the upstream
                    // cannot use them.
                    _ => {}
                }
            }
        }
        _ => {
            return Err(bad(
                "Missing required parameter: 'input' (a string or an array of input items).",
            ))
        }
    }
    messages.splice(0..0, previous.iter().cloned());
    if !system.is_empty() {
        messages.insert(0, json!({"role": "system", "content": system.join("\n\n")}));
    }
    if !messages.iter().any(|m| m["role"] != "system") {
        return Err(bad("'input' has no user message to answer."));
    }

    let mut out = Map::new();
    out.insert("model".into(), Value::String(model));
    out.insert("messages".into(), Value::Array(messages));
    if !tools.is_empty() {
        out.insert("tools".into(), Value::Array(tools));
        if let Some(p) = req.get("parallel_tool_calls").filter(|p| p.is_boolean()) {
            out.insert("parallel_tool_calls".into(), p.clone());
        }
    }
    match req.get("tool_choice") {
        Some(Value::String(c)) if out.contains_key("tools") || c == "none" => {
            out.insert("tool_choice".into(), json!(c));
        }
        Some(Value::Object(c)) => {
            let kind = c.get("type").and_then(Value::as_str).unwrap_or("");
            match kind {
                "function" | "custom" => {
                    out.insert(
                        "tool_choice".into(),
                        json!({"type": "function", "function": {"name": c.get("name").cloned().unwrap_or(Value::Null)}}),
                    );
                }
                "allowed_tools" => {
                    let mode = c.get("mode").and_then(Value::as_str).unwrap_or("auto");
                    out.insert("tool_choice".into(), json!(mode));
                }
                hosted if HOSTED.contains(&hosted) && hosted_ok => {
                    out.insert("tool_choice".into(), json!("auto"));
                }
                hosted if HOSTED.contains(&hosted) => {
                    return Err(bad(format!(
                        "tool_choice: the hosted tool `{hosted}` runs only at OpenAI; route this model to an OpenAI channel, or offer it as a function."
                    )))
                }
                _ => {}
            }
        }
        _ => {}
    }
    if let Some(effort) = req
        .get("reasoning")
        .and_then(|r| r.get("effort"))
        .and_then(Value::as_str)
        .filter(|e| *e != "none")
    {
        out.insert("reasoning_effort".into(), json!(effort));
    }
    match req.get("text").and_then(|t| t.get("format")) {
        Some(f) if f.get("type").and_then(Value::as_str) == Some("json_schema") => {
            let mut schema = json!({
                "name": f.get("name").and_then(Value::as_str).unwrap_or("output"),
                "schema": f.get("schema").cloned().unwrap_or_else(|| json!({})),
            });
            if let Some(s) = f.get("strict").filter(|s| s.is_boolean()) {
                schema["strict"] = s.clone();
            }
            out.insert(
                "response_format".into(),
                json!({"type": "json_schema", "json_schema": schema}),
            );
        }
        Some(f) if f.get("type").and_then(Value::as_str) == Some("json_object") => {
            out.insert("response_format".into(), json!({"type": "json_object"}));
        }
        _ => {}
    }
    for (from, to) in [
        ("max_output_tokens", "max_completion_tokens"),
        ("temperature", "temperature"),
        ("top_p", "top_p"),
        ("user", "user"),
    ] {
        if let Some(v) = req.get(from).filter(|v| !v.is_null()) {
            out.insert(to.into(), v.clone());
        }
    }
    if let Some(stream) = req.get("stream").and_then(Value::as_bool) {
        out.insert("stream".into(), Value::Bool(stream));
    }
    Ok((out, shape))
}

fn usage_json(u: &Usage) -> Value {
    let input = u.input + u.cached_input + u.cache_write;
    let output = u.output + u.reasoning;
    json!({
        "input_tokens": input,
        "input_tokens_details": {"cached_tokens": u.cached_input},
        "output_tokens": output,
        "output_tokens_details": {"reasoning_tokens": u.reasoning},
        "total_tokens": input + output,
    })
}

fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

/// What the `response` object repeats of the request.
fn echo(req: &Map<String, Value>, kept: bool) -> Map<String, Value> {
    let mut e = Map::new();
    for (field, default) in [
        ("instructions", Value::Null),
        ("max_output_tokens", Value::Null),
        ("parallel_tool_calls", Value::Bool(true)),
        ("previous_response_id", Value::Null),
        ("reasoning", json!({"effort": null, "summary": null})),
        ("temperature", Value::Null),
        ("text", json!({"format": {"type": "text"}})),
        ("tool_choice", json!("auto")),
        ("tools", json!([])),
        ("top_p", Value::Null),
        ("metadata", json!({})),
    ] {
        e.insert(
            field.into(),
            req.get(field)
                .cloned()
                .filter(|v| !v.is_null())
                .unwrap_or(default),
        );
    }
    e.insert("store".into(), Value::Bool(kept));
    e.insert("truncation".into(), json!("disabled"));
    e
}

/// How a response stands: its status, usage, and why it is incomplete or
/// failed.
struct Ending<'a> {
    status: &'a str,
    usage: Option<&'a Usage>,
    incomplete: Option<&'a str>,
    error: Option<Value>,
}

/// The `response` object around `output`.
fn response_object(
    id: &str,
    created_at: i64,
    model: &str,
    output: Vec<Value>,
    echo: &Map<String, Value>,
    end: Ending<'_>,
) -> Value {
    let mut r = json!({
        "id": id,
        "object": "response",
        "created_at": created_at,
        "status": end.status,
        "error": end.error,
        "incomplete_details": end.incomplete.map(|reason| json!({"reason": reason})),
        "model": model,
        "output": output,
        "usage": end.usage.map(usage_json),
    });
    if let Some(obj) = r.as_object_mut() {
        for (k, v) in echo {
            obj.insert(k.clone(), v.clone());
        }
    }
    r
}

fn response_id(request_id: &str) -> String {
    format!("resp_{}", request_id.trim_start_matches("req_"))
}

/// A finished tool call as its output item.
fn call_item(id: &str, call_id: &str, name: &str, arguments: &str, shape: &Shape) -> Value {
    let mut item = if shape.custom.contains(name) {
        let input = serde_json::from_str::<Value>(arguments)
            .ok()
            .and_then(|v| v.get("input").and_then(Value::as_str).map(str::to_string))
            .unwrap_or_else(|| arguments.to_string());
        json!({"type": "custom_tool_call", "id": id, "call_id": call_id, "name": name,
               "input": input, "status": "completed"})
    } else {
        json!({"type": "function_call", "id": id, "call_id": call_id, "name": name,
               "arguments": arguments, "status": "completed"})
    };
    if let Some(ns) = shape.namespaced.get(name) {
        item["namespace"] = json!(ns);
    }
    item
}

fn message_item(id: &str, text: &str, status: &str) -> Value {
    json!({"type": "message", "id": id, "status": status, "role": "assistant",
           "content": [{"type": "output_text", "text": text, "annotations": [], "logprobs": []}]})
}

fn reasoning_item(id: &str, text: &str) -> Value {
    json!({"type": "reasoning", "id": id, "summary": [{"type": "summary_text", "text": text}]})
}

/// Status and `incomplete_details.reason` for a chat `finish_reason`.
fn status_of(finish: Option<&str>) -> (&'static str, Option<&'static str>) {
    match finish {
        Some("length") => ("incomplete", Some("max_output_tokens")),
        Some("content_filter") => ("incomplete", Some("content_filter")),
        _ => ("completed", None),
    }
}

/// A whole chat completion as a `response`.
fn to_response(
    body: &[u8],
    rec: &RequestRecord,
    shape: &Shape,
    echo: &Map<String, Value>,
) -> Result<Value, GatewayError> {
    let v: Value =
        serde_json::from_slice(body).map_err(|_| GatewayError::Internal(rec.request_id.clone()))?;
    let choice = v.pointer("/choices/0").cloned().unwrap_or(Value::Null);
    let message = choice.get("message").cloned().unwrap_or(Value::Null);
    let base = rec.request_id.trim_start_matches("req_");
    let mut output = Vec::new();
    let reasoning = ["reasoning_content", "reasoning"]
        .iter()
        .find_map(|f| message.get(*f).and_then(Value::as_str))
        .filter(|t| !t.is_empty());
    if let Some(r) = reasoning {
        output.push(reasoning_item(&format!("rs_{base}"), r));
    }
    let text = text_of(message.get("content"));
    if !text.is_empty() {
        output.push(message_item(&format!("msg_{base}"), &text, "completed"));
    }
    for (i, call) in message
        .get("tool_calls")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .enumerate()
    {
        output.push(call_item(
            &format!("fc_{base}_{i}"),
            call.get("id").and_then(Value::as_str).unwrap_or(""),
            call.pointer("/function/name")
                .and_then(Value::as_str)
                .unwrap_or(""),
            call.pointer("/function/arguments")
                .and_then(Value::as_str)
                .unwrap_or("{}"),
            shape,
        ));
    }
    let (status, incomplete) = status_of(choice.get("finish_reason").and_then(Value::as_str));
    let model = v
        .get("model")
        .and_then(Value::as_str)
        .or(rec.answered_model.as_deref())
        .unwrap_or(&rec.requested_model)
        .to_string();
    let created = v
        .get("created")
        .and_then(Value::as_i64)
        .unwrap_or_else(unix_now);
    Ok(response_object(
        &response_id(&rec.request_id),
        created,
        &model,
        output,
        echo,
        Ending {
            status,
            usage: rec.usage.as_ref(),
            incomplete,
            error: None,
        },
    ))
}

/// An item being streamed.
enum Open {
    Reasoning { id: String, text: String },
    Message { id: String, text: String },
}

/// A tool call being streamed: its output index and what has arrived.
struct OpenCall {
    output_index: usize,
    id: String,
    call_id: String,
    name: String,
    arguments: String,
}

/// Turns the canonical chunk stream into the Responses event sequence.
struct ResponsesEncoder {
    /// The chunks are the upstream's own Responses events, already framed.
    native: bool,
    /// Where the finished response is kept, if it is.
    keep: Option<Keep>,
    id: String,
    base: String,
    created_at: i64,
    model: String,
    echo: Map<String, Value>,
    shape: Shape,
    seq: u64,
    started: bool,
    output: Vec<Value>,
    open: Option<(usize, Open)>,
    /// Chat tool-call index → the call.
    calls: BTreeMap<u64, OpenCall>,
    finish: Option<String>,
    usage: Option<Usage>,
    fallback_usage: Usage,
}

impl ResponsesEncoder {
    fn event(&mut self, out: &mut String, name: &str, mut data: Value) {
        data["type"] = json!(name);
        data["sequence_number"] = json!(self.seq);
        self.seq += 1;
        out.push_str("event: ");
        out.push_str(name);
        out.push_str("\ndata: ");
        out.push_str(&data.to_string());
        out.push_str("\n\n");
    }

    fn snapshot(&self, end: Ending<'_>) -> Value {
        response_object(
            &self.id,
            self.created_at,
            &self.model,
            self.output.clone(),
            &self.echo,
            end,
        )
    }

    fn start(&mut self, out: &mut String, model: Option<&str>) {
        if self.started {
            return;
        }
        self.started = true;
        if let Some(m) = model.filter(|m| !m.is_empty()) {
            self.model = m.to_string();
        }
        let r = self.snapshot(Ending {
            status: "in_progress",
            usage: None,
            incomplete: None,
            error: None,
        });
        self.event(out, "response.created", json!({"response": r}));
        let r = self.snapshot(Ending {
            status: "in_progress",
            usage: None,
            incomplete: None,
            error: None,
        });
        self.event(out, "response.in_progress", json!({"response": r}));
    }

    /// Closes the open text or reasoning item.
    fn close(&mut self, out: &mut String) {
        let Some((index, open)) = self.open.take() else {
            return;
        };
        match open {
            Open::Reasoning { id, text } => {
                let part = json!({"type": "summary_text", "text": text});
                self.event(
                    out,
                    "response.reasoning_summary_text.done",
                    json!({
                    "item_id": id, "output_index": index, "summary_index": 0, "text": text}),
                );
                self.event(
                    out,
                    "response.reasoning_summary_part.done",
                    json!({
                    "item_id": id, "output_index": index, "summary_index": 0, "part": part}),
                );
                let item = reasoning_item(&id, &text);
                self.event(
                    out,
                    "response.output_item.done",
                    json!({"output_index": index, "item": item}),
                );
                self.output[index] = item;
            }
            Open::Message { id, text } => {
                let part =
                    json!({"type": "output_text", "text": text, "annotations": [], "logprobs": []});
                self.event(out, "response.output_text.done", json!({
                    "item_id": id, "output_index": index, "content_index": 0, "text": text, "logprobs": []}));
                self.event(
                    out,
                    "response.content_part.done",
                    json!({
                    "item_id": id, "output_index": index, "content_index": 0, "part": part}),
                );
                let item = message_item(&id, &text, "completed");
                self.event(
                    out,
                    "response.output_item.done",
                    json!({"output_index": index, "item": item}),
                );
                self.output[index] = item;
            }
        }
    }

    fn reasoning(&mut self, out: &mut String, delta: &str) {
        if !matches!(self.open, Some((_, Open::Reasoning { .. }))) {
            self.close(out);
            let index = self.output.len();
            let id = format!("rs_{}_{index}", self.base);
            let item = json!({"type": "reasoning", "id": id, "summary": []});
            self.output.push(item.clone());
            self.event(
                out,
                "response.output_item.added",
                json!({"output_index": index, "item": item}),
            );
            self.event(
                out,
                "response.reasoning_summary_part.added",
                json!({
                "item_id": id, "output_index": index, "summary_index": 0,
                "part": {"type": "summary_text", "text": ""}}),
            );
            self.open = Some((
                index,
                Open::Reasoning {
                    id,
                    text: String::new(),
                },
            ));
        }
        if let Some((index, Open::Reasoning { id, text })) = &mut self.open {
            text.push_str(delta);
            let (index, id) = (*index, id.clone());
            self.event(
                out,
                "response.reasoning_summary_text.delta",
                json!({
                "item_id": id, "output_index": index, "summary_index": 0, "delta": delta}),
            );
        }
    }

    fn text(&mut self, out: &mut String, delta: &str) {
        if !matches!(self.open, Some((_, Open::Message { .. }))) {
            self.close(out);
            let index = self.output.len();
            let id = format!("msg_{}_{index}", self.base);
            let item = json!({"type": "message", "id": id, "status": "in_progress", "role": "assistant", "content": []});
            self.output.push(item.clone());
            self.event(
                out,
                "response.output_item.added",
                json!({"output_index": index, "item": item}),
            );
            self.event(
                out,
                "response.content_part.added",
                json!({
                "item_id": id, "output_index": index, "content_index": 0,
                "part": {"type": "output_text", "text": "", "annotations": [], "logprobs": []}}),
            );
            self.open = Some((
                index,
                Open::Message {
                    id,
                    text: String::new(),
                },
            ));
        }
        if let Some((index, Open::Message { id, text })) = &mut self.open {
            text.push_str(delta);
            let (index, id) = (*index, id.clone());
            self.event(out, "response.output_text.delta", json!({
                "item_id": id, "output_index": index, "content_index": 0, "delta": delta, "logprobs": []}));
        }
    }

    fn tool_delta(&mut self, out: &mut String, call: &Value) {
        let key = call.get("index").and_then(Value::as_u64).unwrap_or(0);
        let fresh =
            !self.calls.contains_key(&key) || call.get("id").is_some_and(|id| id.is_string());
        if fresh {
            self.close(out);
            let index = self.output.len();
            let name = call
                .pointer("/function/name")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_string();
            let c = OpenCall {
                output_index: index,
                id: format!("fc_{}_{index}", self.base),
                call_id: call
                    .get("id")
                    .and_then(Value::as_str)
                    .unwrap_or("")
                    .to_string(),
                name,
                arguments: String::new(),
            };
            let mut item = call_item(&c.id, &c.call_id, &c.name, "", &self.shape);
            item["status"] = json!("in_progress");
            self.output.push(item.clone());
            self.event(
                out,
                "response.output_item.added",
                json!({"output_index": index, "item": item}),
            );
            self.calls.insert(key, c);
        }
        let args = call
            .pointer("/function/arguments")
            .and_then(Value::as_str)
            .unwrap_or("");
        if args.is_empty() {
            return;
        }
        let (index, id, custom) = {
            let Some(c) = self.calls.get_mut(&key) else {
                return;
            };
            c.arguments.push_str(args);
            (
                c.output_index,
                c.id.clone(),
                self.shape.custom.contains(&c.name),
            )
        };
        // A free-form tool's input arrives whole at the end (its JSON
        // wrapper cannot be unwrapped piece by piece).
        if !custom {
            self.event(
                out,
                "response.function_call_arguments.delta",
                json!({
                "item_id": id, "output_index": index, "delta": args}),
            );
        }
    }

    fn finish_calls(&mut self, out: &mut String) {
        let calls = std::mem::take(&mut self.calls);
        for c in calls.into_values() {
            let item = call_item(&c.id, &c.call_id, &c.name, &c.arguments, &self.shape);
            if item["type"] == "custom_tool_call" {
                let input = item["input"].clone();
                self.event(
                    out,
                    "response.custom_tool_call_input.delta",
                    json!({
                    "item_id": c.id, "output_index": c.output_index, "delta": input}),
                );
                self.event(
                    out,
                    "response.custom_tool_call_input.done",
                    json!({
                    "item_id": c.id, "output_index": c.output_index, "input": input}),
                );
            } else {
                self.event(out, "response.function_call_arguments.done", json!({
                    "item_id": c.id, "output_index": c.output_index, "name": c.name, "arguments": c.arguments}));
            }
            self.event(
                out,
                "response.output_item.done",
                json!({"output_index": c.output_index, "item": item}),
            );
            self.output[c.output_index] = item;
        }
    }

    fn chunk(&mut self, json: &str, out: &mut String) {
        let Ok(v) = serde_json::from_str::<Value>(json) else {
            return;
        };
        self.start(out, v.get("model").and_then(Value::as_str));
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
                .and_then(Value::as_str)
                .filter(|t| !t.is_empty())
            {
                self.reasoning(out, t);
            }
        }
        if let Some(t) = delta
            .get("content")
            .and_then(Value::as_str)
            .filter(|t| !t.is_empty())
        {
            self.text(out, t);
        }
        for call in delta
            .get("tool_calls")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            self.tool_delta(out, call);
        }
        if let Some(f) = choice.get("finish_reason").and_then(Value::as_str) {
            self.finish = Some(f.to_string());
        }
    }
}

impl Encoder for ResponsesEncoder {
    type Out = Bytes;
    fn encode(&mut self, item: &StreamOut<'_>) -> Bytes {
        let mut out = String::new();
        match item {
            StreamOut::Chunk(framed) if self.native => {
                return Bytes::copy_from_slice(framed.as_bytes());
            }
            // The upstream's own `response.completed` was relayed.
            StreamOut::Done if self.native => {}
            StreamOut::Chunk(json) => self.chunk(json, &mut out),
            StreamOut::Done => {
                self.start(&mut out, None);
                self.close(&mut out);
                self.finish_calls(&mut out);
                let usage = self.usage.unwrap_or(self.fallback_usage);
                let (status, incomplete) = status_of(self.finish.as_deref());
                let r = self.snapshot(Ending {
                    status,
                    usage: Some(&usage),
                    incomplete,
                    error: None,
                });
                if let Some(k) = self.keep.take() {
                    k.save(r.clone());
                }
                let name = if status == "completed" {
                    "response.completed"
                } else {
                    "response.incomplete"
                };
                self.event(&mut out, name, json!({"response": r}));
            }
            StreamOut::Error { message, code } => {
                self.start(&mut out, None);
                self.close(&mut out);
                let usage = self.usage.unwrap_or(self.fallback_usage);
                let error = json!({"code": if *code == "upstream_stalled" { "timeout" } else { "server_error" }, "message": message});
                let r = self.snapshot(Ending {
                    status: "failed",
                    usage: Some(&usage),
                    incomplete: None,
                    error: Some(error),
                });
                self.event(&mut out, "response.failed", json!({"response": r}));
            }
        }
        Bytes::from(out)
    }
}

/// Responses being written: a request continuing one of them waits for
/// the write (the client may ask as soon as it has read the answer).
static SAVING: std::sync::LazyLock<std::sync::Mutex<HashSet<String>>> =
    std::sync::LazyLock::new(Default::default);

fn saving(id: &str) -> bool {
    SAVING
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .contains(id)
}

/// Where and for whom a finished response is kept.
struct Keep {
    path: std::path::PathBuf,
    key_id: i64,
    /// The turns it answers (previous ones included), without the system
    /// prompt.
    history: Vec<Value>,
}

impl Keep {
    /// Keeps `response` with its turns and the answer, off the request
    /// path. A failure is logged: the answer itself already reached the
    /// client.
    fn save(self, response: Value) {
        let Some(id) = response["id"].as_str().map(str::to_string) else {
            return;
        };
        let mut history = self.history;
        history.extend(answer_turns(&response));
        SAVING
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(id.clone());
        tokio::task::spawn_blocking(move || {
            let saved = db::open(&self.path)
                .map_err(|e| e.to_string())
                .and_then(|conn| {
                    kept::save(&conn, &id, self.key_id, &history, &response)
                        .map_err(|e| e.to_string())
                });
            if let Err(e) = saved {
                tracing::error!(response = %id, error = %e, "could not keep a response");
            }
            SAVING.lock().unwrap_or_else(|p| p.into_inner()).remove(&id);
        });
    }
}

/// A response's output as chat turns: the assistant's text and tool calls.
fn answer_turns(response: &Value) -> Vec<Value> {
    let mut text = String::new();
    let mut calls = Vec::new();
    for item in response["output"].as_array().into_iter().flatten() {
        match item["type"].as_str() {
            Some("message") => text.push_str(&text_of(item.get("content"))),
            Some("function_call") => calls.push(tool_call(item, false)),
            Some("custom_tool_call") => calls.push(tool_call(item, true)),
            _ => {}
        }
    }
    if text.is_empty() && calls.is_empty() {
        return Vec::new();
    }
    let mut turn = json!({"role": "assistant", "content": if text.is_empty() { Value::Null } else { Value::String(text) }});
    if !calls.is_empty() {
        turn["tool_calls"] = Value::Array(calls);
    }
    vec![turn]
}

/// Kept responses: the `responses` table, each row visible to its key only.
mod kept {
    use rusqlite::{params, Connection, OptionalExtension};
    use serde_json::Value;

    pub(super) fn save(
        conn: &Connection,
        id: &str,
        key_id: i64,
        history: &[Value],
        response: &Value,
    ) -> rusqlite::Result<()> {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as i64);
        conn.execute(
            "INSERT OR REPLACE INTO responses (id, created_at, key_id, history, response)
             VALUES (?1, ?2, ?3, ?4, ?5)",
            params![
                id,
                now,
                key_id,
                Value::Array(history.to_vec()).to_string(),
                response.to_string()
            ],
        )?;
        Ok(())
    }

    /// The turns and the response kept as `id` for `key_id`.
    pub(super) fn load(
        conn: &Connection,
        id: &str,
        key_id: i64,
    ) -> rusqlite::Result<Option<(Vec<Value>, Value)>> {
        let row: Option<(String, String)> = conn
            .query_row(
                "SELECT history, response FROM responses WHERE id = ?1 AND key_id = ?2",
                params![id, key_id],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()?;
        Ok(row.map(|(h, r)| {
            let history = serde_json::from_str::<Vec<Value>>(&h).unwrap_or_default();
            (history, serde_json::from_str(&r).unwrap_or(Value::Null))
        }))
    }

    pub(super) fn delete(conn: &Connection, id: &str, key_id: i64) -> rusqlite::Result<bool> {
        Ok(conn.execute(
            "DELETE FROM responses WHERE id = ?1 AND key_id = ?2",
            params![id, key_id],
        )? > 0)
    }
}

/// `GET /v1/responses/{id}` and `DELETE /v1/responses/{id}`: a kept
/// response, for the key that made it.
pub async fn kept_response(
    State(state): State<Arc<AppState>>,
    method: axum::http::Method,
    axum::extract::Path(id): axum::extract::Path<String>,
    headers: HeaderMap,
) -> Response {
    let request_id = new_request_id();
    let result = async {
        let key = authenticate(&state, &headers).await?;
        let path = crate::app::db_path(&state.data_dir);
        let delete = method == axum::http::Method::DELETE;
        let (key_id, lookup) = (key.id, id.clone());
        let found = tokio::task::spawn_blocking(move || -> rusqlite::Result<Option<Value>> {
            let conn = db::open(&path).map_err(|_| rusqlite::Error::InvalidQuery)?;
            if delete {
                let gone = kept::delete(&conn, &lookup, key_id)?;
                return Ok(
                    gone.then(|| json!({"id": lookup, "object": "response", "deleted": true}))
                );
            }
            Ok(kept::load(&conn, &lookup, key_id)?.map(|(_, r)| r))
        })
        .await
        .map_err(|_| GatewayError::Internal(request_id.clone()))?
        .map_err(|_| GatewayError::Internal(request_id.clone()))?;
        found.ok_or_else(|| GatewayError::NotFound(format!("Response with id '{id}' not found.")))
    }
    .await;
    match result {
        Ok(v) => axum::Json(v).into_response(),
        Err(e) => refusal_response(e.into(), &request_id),
    }
}

/// `POST /v1/responses`.
pub async fn create(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let request_id = new_request_id();
    match run(&state, &headers, body, request_id.clone()).await {
        Ok(resp) => resp,
        Err(refused) => refusal_response(refused, &request_id),
    }
}

async fn run(
    state: &AppState,
    headers: &HeaderMap,
    body: Result<Bytes, BytesRejection>,
    request_id: String,
) -> Result<Response, Refused> {
    let key = authenticate(state, headers).await?;
    let limit = state.gateway().config.server.max_body_bytes;
    let mut req = ingress::json_object(body, limit)?;
    // Every target of the route is OpenAI itself: the request goes as sent,
    // and what only OpenAI can do (hosted tools, its own stored responses)
    // is its business.
    let native_only = req
        .get("model")
        .and_then(Value::as_str)
        .and_then(|m| state.gateway().resolve(m))
        .is_some_and(|route| {
            route
                .targets
                .iter()
                .all(|t| t.channel.provider_speaks(NativeFormat::Responses))
        });
    let mut previous = Vec::new();
    let mut continues_kept = false;
    if let Some(id) = req.get("previous_response_id").filter(|p| !p.is_null()) {
        let Some(id) = id.as_str().map(str::to_string) else {
            return Err(bad("previous_response_id: must be a string").into());
        };
        let key_id = key.id;
        let path = crate::app::db_path(&state.data_dir);
        let found = tokio::task::spawn_blocking(move || {
            let conn = db::open(&path).ok()?;
            // Up to a second for a response still being written.
            for _ in 0..200 {
                match kept::load(&conn, &id, key_id).ok().flatten() {
                    Some(found) => return Some(found),
                    None if saving(&id) => std::thread::sleep(std::time::Duration::from_millis(5)),
                    None => return None,
                }
            }
            None
        })
        .await
        .ok()
        .flatten();
        match found {
            Some((history, _)) => {
                previous = history;
                continues_kept = true;
            }
            None if native_only => {}
            None => {
                let id = req["previous_response_id"].as_str().unwrap_or("");
                return Err(GatewayError::NotFound(format!(
                    "Previous response with id '{id}' not found."
                ))
                .into());
            }
        }
    }
    let (body, shape) = to_chat(&req, &previous, native_only)?;
    let stream = body.get("stream").and_then(Value::as_bool).unwrap_or(false);
    let prompt_tokens = Usage::estimate(crate::providers::prompt_chars(&body), 0);
    // Kept (OpenAI's default) unless the client says `store: false`; the
    // upstream's own answers are kept by the upstream.
    let keep = req.get("store").and_then(Value::as_bool) != Some(false);
    let echo = echo(&req, keep);
    let history: Vec<Value> = body["messages"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|m| m["role"] != "system")
        .cloned()
        .collect();
    let kept_to = keep.then(|| Keep {
        path: crate::app::db_path(&state.data_dir),
        key_id: key.id,
        history,
    });
    // An id only this gateway knows means nothing to an upstream: such a
    // request is translated.
    if continues_kept {
        req.remove("previous_response_id");
    }
    let native_call = (!continues_kept).then_some(NativeCall {
        format: NativeFormat::Responses,
        body: req,
        beta: None,
    });
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
            native: native_call,
            stream,
            // The usage goes into `response.completed`.
            wants_usage: true,
            progress: None,
            pin: None,
        })
        .await?;
    // An OpenAI channel answered the client's own request: its answer is
    // already a response.
    let native = ingress::answered_natively(state, &rec, NativeFormat::Responses);
    let mut resp = match answer {
        Answer::Whole(reply) if native => ingress::whole_response(reply.body, guard, &rec),
        Answer::Whole(reply) => match to_response(&reply.body, &rec, &shape, &echo) {
            Ok(r) => {
                if let Some(k) = kept_to {
                    k.save(r.clone());
                }
                ingress::whole_response(Bytes::from(r.to_string()), guard, &rec)
            }
            Err(e) => return Err(ingress::untranslatable(guard, rec, e)),
        },
        Answer::Stream(start) => {
            let encoder = ResponsesEncoder {
                native,
                keep: kept_to,
                id: response_id(&rec.request_id),
                base: rec.request_id.trim_start_matches("req_").to_string(),
                created_at: unix_now(),
                model: rec
                    .answered_model
                    .clone()
                    .unwrap_or_else(|| rec.requested_model.clone()),
                echo,
                shape: Shape {
                    custom: shape.custom.clone(),
                    namespaced: shape.namespaced.clone(),
                    dropped: Vec::new(),
                },
                seq: 0,
                started: false,
                output: Vec::new(),
                open: None,
                calls: BTreeMap::new(),
                finish: None,
                usage: None,
                fallback_usage: prompt_tokens,
            };
            ingress::stream_response(start, guard, &rec, encoder)
        }
    };
    if !native && !shape.dropped.is_empty() {
        let mut warning = format!(
            "hosted tools left out (they run only at OpenAI): {}",
            shape.dropped.join(", ")
        );
        if let Some(w) = resp
            .headers()
            .get("x-switchyard-warning")
            .and_then(|v| v.to_str().ok())
        {
            warning = format!("{w}; {warning}");
        }
        if let Ok(v) = HeaderValue::from_str(&warning) {
            resp.headers_mut().insert("x-switchyard-warning", v);
        }
    }
    Ok(resp)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn obj(v: Value) -> Map<String, Value> {
        v.as_object().cloned().expect("object")
    }

    /// Codex CLI 0.171.0's request (tests/agents/fixtures/codex), trimmed.
    fn codex_request() -> Value {
        json!({
            "model": "gpt-5.5",
            "stream": true,
            "tool_choice": "auto",
            "parallel_tool_calls": true,
            "reasoning": {"effort": "medium", "summary": "auto"},
            "store": false,
            "include": ["reasoning.encrypted_content"],
            "prompt_cache_key": "k",
            "text": {"verbosity": "low"},
            "client_metadata": {"turn_id": "t"},
            "input": [
                {"type": "message", "id": "msg_1", "role": "developer", "content": [{"type": "input_text", "text": "You are Codex."}]},
                {"type": "message", "id": "msg_2", "role": "user", "content": [{"type": "input_text", "text": "<environment_context/>"}]},
                {"type": "message", "id": "msg_3", "role": "user", "content": [{"type": "input_text", "text": "Read notes.txt"}]},
                {"type": "reasoning", "id": "rs_1", "summary": [], "encrypted_content": "gAAA"},
                {"type": "function_call", "id": "fc_1", "name": "exec_command", "arguments": "{\"cmd\":\"cat notes.txt\"}", "call_id": "call_1", "status": "completed"},
                {"type": "function_call_output", "id": "fco_1", "call_id": "call_1", "output": "pineapple"},
                {"type": "custom_tool_call", "id": "ctc_1", "name": "apply_patch", "input": "*** Begin Patch", "call_id": "call_2"},
                {"type": "custom_tool_call_output", "call_id": "call_2", "output": "Done"}
            ],
            "tools": [
                {"type": "function", "name": "exec_command", "description": "Runs a command", "strict": false,
                 "parameters": {"type": "object", "properties": {"cmd": {"type": "string"}}, "required": ["cmd"]}},
                {"type": "custom", "name": "apply_patch", "description": "Edits files.",
                 "format": {"type": "grammar", "syntax": "lark", "definition": "start: begin_patch"}},
                {"type": "namespace", "name": "multi_agent_v1", "description": "Agents",
                 "tools": [{"type": "function", "name": "close_agent", "parameters": {"type": "object"}}]},
                {"type": "tool_search", "execution": "client", "description": "Tool discovery"},
                {"type": "web_search", "external_web_access": false}
            ]
        })
    }

    #[test]
    fn what_codex_sends_becomes_a_chat_request() {
        let (out, shape) = to_chat(&obj(codex_request()), &[], false).expect("translates");
        let msgs = out["messages"].as_array().expect("messages");
        assert_eq!(
            msgs[0],
            json!({"role": "system", "content": "You are Codex."})
        );
        assert_eq!(
            msgs[1],
            json!({"role": "user", "content": "<environment_context/>"})
        );
        assert_eq!(msgs[2]["content"], "Read notes.txt");
        assert_eq!(msgs[3]["role"], "assistant");
        assert_eq!(msgs[3]["tool_calls"][0]["id"], "call_1");
        assert_eq!(
            msgs[3]["tool_calls"][0]["function"]["arguments"],
            "{\"cmd\":\"cat notes.txt\"}"
        );
        assert_eq!(
            msgs[4],
            json!({"role": "tool", "tool_call_id": "call_1", "content": "pineapple"})
        );
        assert_eq!(
            msgs[5]["tool_calls"][0]["function"]["arguments"],
            json!({"input": "*** Begin Patch"}).to_string()
        );
        assert_eq!(msgs[6]["role"], "tool");
        let names: Vec<&str> = out["tools"]
            .as_array()
            .expect("tools")
            .iter()
            .filter_map(|t| t["function"]["name"].as_str())
            .collect();
        assert_eq!(names, ["exec_command", "apply_patch", "close_agent"]);
        assert!(out["tools"][1]["function"]["description"]
            .as_str()
            .is_some_and(|d| d.contains("start: begin_patch")));
        assert_eq!(shape.dropped, ["tool_search", "web_search"]);
        assert!(shape.custom.contains("apply_patch"));
        assert_eq!(shape.namespaced["close_agent"], "multi_agent_v1");
        assert_eq!(out["reasoning_effort"], "medium");
        assert_eq!(out["tool_choice"], "auto");
        assert_eq!(out["parallel_tool_calls"], true);
        assert_eq!(out["stream"], true);
        for dropped in [
            "store",
            "include",
            "prompt_cache_key",
            "client_metadata",
            "text",
        ] {
            assert!(!out.contains_key(dropped), "{dropped}");
        }
    }

    #[test]
    fn strings_images_schemas_and_limits_translate() {
        let (out, _) = to_chat(
            &obj(json!({
                "model": "m", "input": "Hi", "instructions": "Be brief.",
                "max_output_tokens": 50, "temperature": 0.2,
                "text": {"format": {"type": "json_schema", "name": "answer", "strict": true,
                                    "schema": {"type": "object"}}}
            })),
            &[],
            false,
        )
        .expect("translates");
        assert_eq!(out["messages"][0]["content"], "Be brief.");
        assert_eq!(out["messages"][1], json!({"role": "user", "content": "Hi"}));
        assert_eq!(out["max_completion_tokens"], 50);
        assert_eq!(out["response_format"]["json_schema"]["name"], "answer");
        assert_eq!(out["response_format"]["json_schema"]["strict"], true);
        let (out, _) = to_chat(
            &obj(json!({"model": "m", "input": [{"role": "user", "content": [
                {"type": "input_text", "text": "What is this?"},
                {"type": "input_image", "image_url": "data:image/png;base64,iVBOR", "detail": "low"}
            ]}]})),
            &[],
            false,
        )
        .expect("translates");
        assert_eq!(
            out["messages"][0]["content"][1]["image_url"],
            json!({"url": "data:image/png;base64,iVBOR", "detail": "low"})
        );
    }

    #[test]
    fn bad_requests_are_clear_errors() {
        for (req, needle) in [
            (json!({"input": "x"}), "model"),
            (json!({"model": "m"}), "input"),
            (
                json!({"model": "m", "input": [{"role": "tool", "content": "x"}]}),
                "role",
            ),
            (
                json!({"model": "m", "input": [{"role": "developer", "content": "x"}]}),
                "no user message",
            ),
            (
                json!({"model": "m", "input": "x", "tools": [{"type": "web_search"}], "tool_choice": {"type": "web_search"}}),
                "web_search",
            ),
            (
                json!({"model": "m", "input": [{"role": "user", "content": [{"type": "input_image", "file_id": "f"}]}]}),
                "image_url",
            ),
        ] {
            let err = to_chat(&obj(req), &[], false)
                .expect_err("refused")
                .to_string();
            assert!(err.contains(needle), "{needle}: {err}");
        }
    }

    fn encoder(shape: Shape) -> ResponsesEncoder {
        ResponsesEncoder {
            native: false,
            keep: None,
            id: "resp_1".into(),
            base: "1".into(),
            created_at: 1,
            model: "m".into(),
            echo: echo(&Map::new(), false),
            shape,
            seq: 0,
            started: false,
            output: Vec::new(),
            open: None,
            calls: BTreeMap::new(),
            finish: None,
            usage: None,
            fallback_usage: Usage::default(),
        }
    }

    fn events(enc: &mut ResponsesEncoder, chunks: &[Value], end: StreamOut<'_>) -> Vec<Value> {
        let mut text = String::new();
        for c in chunks {
            text.push_str(&String::from_utf8_lossy(
                &enc.encode(&StreamOut::Chunk(&c.to_string())),
            ));
        }
        text.push_str(&String::from_utf8_lossy(&enc.encode(&end)));
        text.split("\n\n")
            .filter(|e| !e.is_empty())
            .map(|e| {
                let (name, data) = e.split_once('\n').expect("two lines");
                let v: Value =
                    serde_json::from_str(data.trim_start_matches("data: ")).expect("json");
                assert_eq!(name.trim_start_matches("event: "), v["type"]);
                v
            })
            .collect()
    }

    #[test]
    fn a_streamed_answer_is_the_responses_event_sequence() {
        let mut enc = encoder(Shape::default());
        let evs = events(
            &mut enc,
            &[
                json!({"model": "gpt-up", "choices": [{"index": 0, "delta": {"reasoning_content": "Think"}}]}),
                json!({"choices": [{"index": 0, "delta": {"content": "Hel"}}]}),
                json!({"choices": [{"index": 0, "delta": {"content": "lo"}, "finish_reason": "stop"}]}),
                json!({"choices": [], "usage": {"prompt_tokens": 10, "completion_tokens": 5,
                       "prompt_tokens_details": {"cached_tokens": 4},
                       "completion_tokens_details": {"reasoning_tokens": 2}}}),
            ],
            StreamOut::Done,
        );
        let names: Vec<&str> = evs.iter().filter_map(|e| e["type"].as_str()).collect();
        assert_eq!(
            names,
            [
                "response.created",
                "response.in_progress",
                "response.output_item.added",
                "response.reasoning_summary_part.added",
                "response.reasoning_summary_text.delta",
                "response.reasoning_summary_text.done",
                "response.reasoning_summary_part.done",
                "response.output_item.done",
                "response.output_item.added",
                "response.content_part.added",
                "response.output_text.delta",
                "response.output_text.delta",
                "response.output_text.done",
                "response.content_part.done",
                "response.output_item.done",
                "response.completed",
            ]
        );
        let seq: Vec<u64> = evs
            .iter()
            .filter_map(|e| e["sequence_number"].as_u64())
            .collect();
        assert_eq!(seq, (0..16).collect::<Vec<_>>());
        let done = &evs[15]["response"];
        assert_eq!(done["status"], "completed");
        assert_eq!(done["model"], "gpt-up");
        assert_eq!(done["output"][1]["content"][0]["text"], "Hello");
        assert_eq!(done["output"][0]["summary"][0]["text"], "Think");
        assert_eq!(
            done["usage"],
            json!({"input_tokens": 10, "input_tokens_details": {"cached_tokens": 4},
                   "output_tokens": 5, "output_tokens_details": {"reasoning_tokens": 2},
                   "total_tokens": 15})
        );
        assert_eq!(evs[14]["item"]["status"], "completed");
    }

    #[test]
    fn streamed_tool_calls_become_function_and_custom_calls() {
        let mut shape = Shape::default();
        shape.custom.insert("apply_patch".into());
        let mut enc = encoder(shape);
        let evs = events(
            &mut enc,
            &[
                json!({"choices": [{"index": 0, "delta": {"tool_calls": [{"index": 0, "id": "call_a", "type": "function", "function": {"name": "exec_command", "arguments": ""}}]}}]}),
                json!({"choices": [{"index": 0, "delta": {"tool_calls": [{"index": 0, "function": {"arguments": "{\"cmd\":"}}]}}]}),
                json!({"choices": [{"index": 0, "delta": {"tool_calls": [{"index": 0, "function": {"arguments": "\"ls\"}"}}]}}]}),
                json!({"choices": [{"index": 0, "delta": {"tool_calls": [{"index": 1, "id": "call_b", "type": "function", "function": {"name": "apply_patch", "arguments": "{\"input\":\"*** Begin Patch\"}"}}]}, "finish_reason": "tool_calls"}]}),
            ],
            StreamOut::Done,
        );
        let done = &evs.last().expect("events")["response"];
        assert_eq!(
            done["output"][0],
            json!({"type": "function_call", "id": "fc_1_0", "call_id": "call_a", "name": "exec_command",
                   "arguments": "{\"cmd\":\"ls\"}", "status": "completed"})
        );
        assert_eq!(done["output"][1]["type"], "custom_tool_call");
        assert_eq!(done["output"][1]["input"], "*** Begin Patch");
        let deltas: String = evs
            .iter()
            .filter(|e| e["type"] == "response.function_call_arguments.delta")
            .filter_map(|e| e["delta"].as_str())
            .collect();
        assert_eq!(deltas, "{\"cmd\":\"ls\"}");
        assert!(evs
            .iter()
            .any(|e| e["type"] == "response.custom_tool_call_input.done"
                && e["input"] == "*** Begin Patch"));
    }

    #[test]
    fn a_cut_stream_ends_failed_and_a_length_stop_incomplete() {
        let mut enc = encoder(Shape::default());
        let evs = events(
            &mut enc,
            &[json!({"choices": [{"index": 0, "delta": {"content": "Part"}}]})],
            StreamOut::Error {
                message: "upstream went away",
                code: "upstream_cut",
            },
        );
        let last = evs.last().expect("events");
        assert_eq!(last["type"], "response.failed");
        assert_eq!(last["response"]["status"], "failed");
        assert_eq!(last["response"]["error"]["message"], "upstream went away");
        assert_eq!(last["response"]["output"][0]["content"][0]["text"], "Part");

        let mut enc = encoder(Shape::default());
        let evs = events(
            &mut enc,
            &[
                json!({"choices": [{"index": 0, "delta": {"content": "Par"}, "finish_reason": "length"}]}),
            ],
            StreamOut::Done,
        );
        let last = evs.last().expect("events");
        assert_eq!(last["type"], "response.incomplete");
        assert_eq!(
            last["response"]["incomplete_details"]["reason"],
            "max_output_tokens"
        );
    }
}
