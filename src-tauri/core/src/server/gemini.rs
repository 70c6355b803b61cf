//! The Gemini-compatible endpoints: `POST /v1beta/models/{model}:generateContent`,
//! `:streamGenerateContent?alt=sse` and `:countTokens`, and
//! `GET /v1beta/models[/{model}]`, so tools built on Google's Gen AI SDKs
//! (Gemini CLI among them) can use the loopback port.
//!
//! The model is the route named in the URL. A `gemini` channel gets the
//! client's own request as it was sent; any other upstream gets it
//! translated into the canonical OpenAI chat shape, and its answer comes
//! back as Gemini's `GenerateContentResponse` — one whole, or one per SSE
//! `data:` event, the last with its `finishReason` and `usageMetadata`.
//! Errors use Gemini's `{"error":{"code","message","status"}}`. The gateway
//! key may come as `x-goog-api-key`, `?key=` or a Bearer token.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, Uri};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use serde_json::{json, Map, Value};

use super::ingress;
use super::{authenticate_presented, presented_key, AppState, GatewayError};
use crate::keys::GatewayKey;
use crate::providers::prompt_chars;
use crate::record::{RequestRecord, Usage};
use crate::request::{
    new_request_id, Accepted, Call, CallKind, Caller, NativeCall, NativeFormat, Refused,
};
use crate::routing::{Answer, Encoder, StreamOut};

/// Is `path` under Gemini's API prefix (its refusals are in Gemini's format)?
pub(super) fn is_gemini_path(path: &str) -> bool {
    path == "/v1beta" || path.starts_with("/v1beta/")
}

fn bad(message: impl Into<String>) -> GatewayError {
    GatewayError::BadRequest(message.into())
}

/// Gemini's schema types are upper case (`OBJECT`, `STRING`), which JSON
/// Schema and OpenAI do not accept; Gemini CLI sends them even in
/// `responseJsonSchema`. Every `type` is made lower case.
fn lower_types(v: &Value) -> Value {
    match v {
        Value::Object(o) => Value::Object(
            o.iter()
                .map(|(k, v)| {
                    let v = match (k.as_str(), v) {
                        ("type", Value::String(t)) => Value::String(t.to_ascii_lowercase()),
                        ("type", Value::Array(ts)) => Value::Array(
                            ts.iter()
                                .map(|t| match t {
                                    Value::String(t) => Value::String(t.to_ascii_lowercase()),
                                    other => other.clone(),
                                })
                                .collect(),
                        ),
                        _ => lower_types(v),
                    };
                    (k.clone(), v)
                })
                .collect(),
        ),
        Value::Array(items) => Value::Array(items.iter().map(lower_types).collect()),
        other => other.clone(),
    }
}

/// The text of a `Content` (`{parts: [{text}]}`), or of a plain string.
fn content_text(content: &Value) -> String {
    match content {
        Value::String(s) => s.clone(),
        other => other
            .get("parts")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter(|p| p.get("thought").and_then(Value::as_bool) != Some(true))
            .filter_map(|p| p.get("text").and_then(Value::as_str))
            .collect::<Vec<_>>()
            .join("\n"),
    }
}

/// An `inlineData` or `fileData` part as an OpenAI content part.
fn media_part(part: &Value) -> Option<Value> {
    if let Some(blob) = part.get("inlineData").or_else(|| part.get("inline_data")) {
        let mime = blob
            .get("mimeType")
            .or_else(|| blob.get("mime_type"))
            .and_then(Value::as_str)
            .unwrap_or("application/octet-stream");
        let data = blob.get("data").and_then(Value::as_str)?;
        let url = format!("data:{mime};base64,{data}");
        return Some(if mime.starts_with("image/") {
            json!({"type": "image_url", "image_url": {"url": url}})
        } else {
            json!({"type": "file", "file": {"filename": "file", "file_data": url}})
        });
    }
    let file = part.get("fileData").or_else(|| part.get("file_data"))?;
    let uri = file
        .get("fileUri")
        .or_else(|| file.get("file_uri"))
        .and_then(Value::as_str)?;
    let mime = file
        .get("mimeType")
        .or_else(|| file.get("mime_type"))
        .and_then(Value::as_str)
        .unwrap_or("");
    Some(if mime.starts_with("image/") || mime.is_empty() {
        json!({"type": "image_url", "image_url": {"url": uri}})
    } else {
        json!({"type": "text", "text": format!("(file at {uri})")})
    })
}

/// A `functionResponse.response` as the tool message's text: its `output`
/// when that is all it holds (Gemini CLI's shape), its `error` marked as
/// one, otherwise the JSON.
fn function_output(response: Option<&Value>) -> String {
    let Some(Value::Object(r)) = response else {
        return response.map(Value::to_string).unwrap_or_default();
    };
    let as_text = |v: &Value| match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    match (r.len(), r.get("output"), r.get("error")) {
        (1, Some(out), _) => as_text(out),
        (1, _, Some(err)) => format!("Error: {}", as_text(err)),
        _ => Value::Object(r.clone()).to_string(),
    }
}

/// The route named in the URL: `gemini-2.5-flash`, or `models/…` spelt out.
fn route_name(model: &str) -> &str {
    model.strip_prefix("models/").unwrap_or(model)
}

/// Translates a Gemini `generateContent` request into the canonical OpenAI
/// chat request for route `model`. What only Gemini can act on — its own
/// tools (search, code execution), cached contents, safety settings,
/// earlier thoughts and their signatures — is left out rather than refused.
pub(super) fn to_openai(
    model: &str,
    req: &Map<String, Value>,
    stream: bool,
) -> Result<Map<String, Value>, GatewayError> {
    let contents = match req.get("contents") {
        Some(Value::Array(c)) if !c.is_empty() => c,
        Some(Value::Array(_)) => return Err(bad("contents: at least one content is required")),
        _ => return Err(bad("contents: Field required (an array of contents)")),
    };
    let mut messages: Vec<Value> = Vec::new();
    if let Some(system) = req
        .get("systemInstruction")
        .or_else(|| req.get("system_instruction"))
    {
        let text = content_text(system);
        if !text.is_empty() {
            messages.push(json!({"role": "system", "content": text}));
        }
    }
    // Calls not yet answered, by name: a response without an id answers
    // the earliest of them.
    let mut open_calls: HashMap<String, Vec<String>> = HashMap::new();
    let mut next_id = 0usize;
    for (i, content) in contents.iter().enumerate() {
        let role = content
            .get("role")
            .and_then(Value::as_str)
            .unwrap_or("user");
        let parts = content
            .get("parts")
            .and_then(Value::as_array)
            .ok_or_else(|| bad(format!("contents[{i}].parts: Field required")))?;
        match role {
            "model" => {
                let mut text = String::new();
                let mut calls = Vec::new();
                for part in parts {
                    if let Some(call) = part
                        .get("functionCall")
                        .or_else(|| part.get("function_call"))
                    {
                        let name = call.get("name").and_then(Value::as_str).unwrap_or_default();
                        let id = match call.get("id").and_then(Value::as_str) {
                            Some(id) if !id.is_empty() => id.to_string(),
                            _ => {
                                next_id += 1;
                                format!("call_{}", next_id - 1)
                            }
                        };
                        open_calls
                            .entry(name.to_string())
                            .or_default()
                            .push(id.clone());
                        let args = call.get("args").cloned().unwrap_or_else(|| json!({}));
                        calls.push(json!({
                            "id": id,
                            "type": "function",
                            "function": {"name": name, "arguments": args.to_string()},
                        }));
                    } else if part.get("thought").and_then(Value::as_bool) == Some(true) {
                        // The model's earlier thinking is its own business.
                    } else if let Some(t) = part.get("text").and_then(Value::as_str) {
                        text.push_str(t);
                    }
                }
                if text.is_empty() && calls.is_empty() {
                    continue;
                }
                let mut m = json!({
                    "role": "assistant",
                    "content": if text.is_empty() { Value::Null } else { Value::String(text) },
                });
                if !calls.is_empty() {
                    m["tool_calls"] = Value::Array(calls);
                }
                messages.push(m);
            }
            "user" | "function" | "tool" => {
                let mut user = Vec::new();
                for part in parts {
                    if let Some(resp) = part
                        .get("functionResponse")
                        .or_else(|| part.get("function_response"))
                    {
                        let name = resp.get("name").and_then(Value::as_str).unwrap_or_default();
                        let open = open_calls.entry(name.to_string()).or_default();
                        let id = match resp.get("id").and_then(Value::as_str) {
                            Some(id) if !id.is_empty() => {
                                open.retain(|o| o != id);
                                id.to_string()
                            }
                            _ if !open.is_empty() => open.remove(0),
                            _ => {
                                next_id += 1;
                                format!("call_{}", next_id - 1)
                            }
                        };
                        messages.push(json!({
                            "role": "tool",
                            "tool_call_id": id,
                            "content": function_output(resp.get("response")),
                        }));
                    } else if let Some(t) = part.get("text").and_then(Value::as_str) {
                        user.push(json!({"type": "text", "text": t}));
                    } else if let Some(media) = media_part(part) {
                        user.push(media);
                    }
                }
                if !user.is_empty() {
                    messages.push(json!({"role": "user", "content": user}));
                }
            }
            other => {
                return Err(bad(format!(
                    "contents[{i}].role: must be \"user\" or \"model\", not {other:?}"
                )))
            }
        }
    }

    let mut out = Map::new();
    out.insert("model".into(), json!(route_name(model)));
    out.insert("messages".into(), Value::Array(messages));
    out.insert("stream".into(), json!(stream));

    let tools: Vec<Value> = req
        .get("tools")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|t| {
            t.get("functionDeclarations")
                .or_else(|| t.get("function_declarations"))
                .and_then(Value::as_array)
        })
        .flatten()
        .filter_map(|f| {
            let name = f.get("name").and_then(Value::as_str)?;
            let schema = f
                .get("parametersJsonSchema")
                .or_else(|| f.get("parameters_json_schema"))
                .or_else(|| f.get("parameters"))
                .map(lower_types)
                .unwrap_or_else(|| json!({"type": "object", "properties": {}}));
            let mut function = json!({"name": name, "parameters": schema});
            if let Some(d) = f.get("description") {
                function["description"] = d.clone();
            }
            Some(json!({"type": "function", "function": function}))
        })
        .collect();
    if !tools.is_empty() {
        out.insert("tools".into(), Value::Array(tools));
        let config = req
            .get("toolConfig")
            .and_then(|c| c.get("functionCallingConfig"));
        let allowed: Vec<&Value> = config
            .and_then(|c| c.get("allowedFunctionNames"))
            .and_then(Value::as_array)
            .map(|a| a.iter().collect())
            .unwrap_or_default();
        let choice = match config.and_then(|c| c.get("mode")).and_then(Value::as_str) {
            Some("NONE") => Some(json!("none")),
            Some("ANY") if allowed.len() == 1 => {
                Some(json!({"type": "function", "function": {"name": allowed[0]}}))
            }
            Some("ANY") => Some(json!("required")),
            Some("AUTO") | Some("VALIDATED") => Some(json!("auto")),
            _ => None,
        };
        if let Some(choice) = choice {
            out.insert("tool_choice".into(), choice);
        }
    }

    let config = req
        .get("generationConfig")
        .or_else(|| req.get("generation_config"))
        .and_then(Value::as_object);
    if let Some(config) = config {
        for (from, to) in [
            ("temperature", "temperature"),
            ("topP", "top_p"),
            ("maxOutputTokens", "max_tokens"),
            ("stopSequences", "stop"),
            ("candidateCount", "n"),
            ("presencePenalty", "presence_penalty"),
            ("frequencyPenalty", "frequency_penalty"),
            ("seed", "seed"),
        ] {
            if let Some(v) = config.get(from).filter(|v| !v.is_null()) {
                out.insert(to.into(), v.clone());
            }
        }
        let schema = config
            .get("responseJsonSchema")
            .or_else(|| config.get("responseSchema"))
            .or_else(|| config.get("response_json_schema"))
            .map(lower_types);
        let json_mime =
            config.get("responseMimeType").and_then(Value::as_str) == Some("application/json");
        match schema {
            Some(schema) if json_mime || config.contains_key("responseJsonSchema") => {
                out.insert(
                    "response_format".into(),
                    json!({"type": "json_schema", "json_schema": {"name": "output", "schema": schema}}),
                );
            }
            _ if json_mime => {
                out.insert("response_format".into(), json!({"type": "json_object"}));
            }
            _ => {}
        }
        // Reasoning is asked for only when the client named an amount:
        // `includeThoughts` alone, or a dynamic budget (-1), leaves it to
        // the model, as any other model does by default.
        let thinking = config.get("thinkingConfig");
        let level = thinking
            .and_then(|t| t.get("thinkingLevel"))
            .and_then(Value::as_str)
            .map(str::to_ascii_lowercase)
            .filter(|l| matches!(l.as_str(), "minimal" | "low" | "medium" | "high"));
        let budget = thinking
            .and_then(|t| t.get("thinkingBudget"))
            .and_then(Value::as_i64);
        let effort = match (level, budget) {
            (Some(level), _) => Some(level),
            (None, Some(0)) => Some("none".to_string()),
            (None, Some(b)) if b > 0 => Some(
                match b {
                    1..4096 => "low",
                    4096..16384 => "medium",
                    _ => "high",
                }
                .to_string(),
            ),
            _ => None,
        };
        if let Some(effort) = effort {
            out.insert("reasoning_effort".into(), json!(effort));
        }
    }
    Ok(out)
}

/// OpenAI's `finish_reason` → Gemini's `finishReason`.
fn finish_reason(finish: Option<&str>) -> &'static str {
    match finish {
        Some("length") => "MAX_TOKENS",
        Some("content_filter") => "SAFETY",
        // A tool call ends Gemini's turn with STOP too.
        _ => "STOP",
    }
}

/// Normalised usage as Gemini's `usageMetadata`: the prompt count includes
/// cached tokens (and cache writes, which Gemini has no word for), and
/// thoughts are reported beside the answer's tokens.
fn usage_metadata(u: &Usage) -> Value {
    let prompt = u.input + u.cached_input + u.cache_write;
    let mut meta = json!({
        "promptTokenCount": prompt,
        "candidatesTokenCount": u.output,
        "totalTokenCount": prompt + u.output + u.reasoning,
    });
    if u.cached_input > 0 {
        meta["cachedContentTokenCount"] = json!(u.cached_input);
    }
    if u.reasoning > 0 {
        meta["thoughtsTokenCount"] = json!(u.reasoning);
    }
    meta
}

fn response_id(request_id: &str) -> String {
    request_id.trim_start_matches("req_").to_string()
}

/// An OpenAI tool call as a `functionCall` part, its id kept so the
/// client's `functionResponse` finds it again.
fn function_call_part(id: &Value, name: &Value, arguments: &str) -> Value {
    let args = serde_json::from_str::<Value>(arguments)
        .ok()
        .filter(Value::is_object)
        .unwrap_or_else(|| json!({}));
    let mut call = json!({"name": name, "args": args});
    if id.is_string() {
        call["id"] = id.clone();
    }
    json!({"functionCall": call})
}

/// A whole OpenAI chat completion as a `GenerateContentResponse`.
fn to_gemini_response(body: &[u8], rec: &RequestRecord) -> Result<Value, GatewayError> {
    let v: Value =
        serde_json::from_slice(body).map_err(|_| GatewayError::Internal(rec.request_id.clone()))?;
    let choices = v.get("choices").and_then(Value::as_array);
    let candidates: Vec<Value> = choices
        .into_iter()
        .flatten()
        .enumerate()
        .map(|(position, choice)| {
            let message = choice.get("message").cloned().unwrap_or(Value::Null);
            let mut parts = Vec::new();
            for field in ["reasoning_content", "reasoning"] {
                if let Some(t) = message
                    .get(field)
                    .and_then(Value::as_str)
                    .filter(|t| !t.is_empty())
                {
                    parts.push(json!({"text": t, "thought": true}));
                }
            }
            let text = match message.get("content") {
                Some(Value::String(s)) => s.clone(),
                Some(Value::Array(items)) => items
                    .iter()
                    .filter_map(|p| p.get("text").and_then(Value::as_str))
                    .collect(),
                _ => String::new(),
            };
            if !text.is_empty() {
                parts.push(json!({"text": text}));
            }
            for call in message
                .get("tool_calls")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                parts.push(function_call_part(
                    call.get("id").unwrap_or(&Value::Null),
                    call.pointer("/function/name").unwrap_or(&Value::Null),
                    call.pointer("/function/arguments")
                        .and_then(Value::as_str)
                        .unwrap_or("{}"),
                ));
            }
            if parts.is_empty() {
                parts.push(json!({"text": ""}));
            }
            json!({
                "content": {"role": "model", "parts": parts},
                "finishReason": finish_reason(choice.get("finish_reason").and_then(Value::as_str)),
                "index": choice.get("index").and_then(Value::as_u64).unwrap_or(position as u64),
            })
        })
        .collect();
    let mut out = json!({
        "candidates": candidates,
        "modelVersion": v.get("model").cloned().unwrap_or_else(|| json!(rec.answered_model)),
        "responseId": response_id(&rec.request_id),
    });
    if let Some(u) = &rec.usage {
        out["usageMetadata"] = usage_metadata(u);
    }
    Ok(out)
}

/// A tool call being streamed: its arguments arrive in pieces, and Gemini
/// sends a call whole, so it waits for the end of the answer.
struct PendingCall {
    id: Value,
    name: Value,
    arguments: String,
}

/// Turns the canonical OpenAI chunk stream into Gemini's SSE events — or,
/// for a native stream, relays the upstream's own events.
struct GeminiEncoder {
    /// The chunks are the upstream's Gemini events, already framed.
    native: bool,
    response_id: String,
    model: String,
    calls: BTreeMap<u64, PendingCall>,
    finish: Option<String>,
    usage: Option<Usage>,
    /// Final usage if none arrives in the stream.
    fallback_usage: Usage,
}

fn data(out: &mut String, v: &Value) {
    out.push_str("data: ");
    out.push_str(&v.to_string());
    out.push_str("\n\n");
}

impl GeminiEncoder {
    fn response(&self, candidate: Value) -> Value {
        json!({
            "candidates": [candidate],
            "modelVersion": self.model,
            "responseId": self.response_id,
        })
    }

    fn chunk(&mut self, json: &str, out: &mut String) {
        let Ok(v) = serde_json::from_str::<Value>(json) else {
            return;
        };
        if let Some(m) = v.get("model").and_then(Value::as_str) {
            self.model = m.to_string();
        }
        if let Some(u) = v.get("usage").and_then(Usage::from_openai) {
            self.usage = Some(u);
        }
        let Some(choice) = v.pointer("/choices/0") else {
            return;
        };
        let delta = choice.get("delta").cloned().unwrap_or(Value::Null);
        let mut parts = Vec::new();
        for field in ["reasoning_content", "reasoning"] {
            if let Some(t) = delta
                .get(field)
                .and_then(Value::as_str)
                .filter(|t| !t.is_empty())
            {
                parts.push(json!({"text": t, "thought": true}));
            }
        }
        if let Some(t) = delta
            .get("content")
            .and_then(Value::as_str)
            .filter(|t| !t.is_empty())
        {
            parts.push(json!({"text": t}));
        }
        for call in delta
            .get("tool_calls")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let index = call.get("index").and_then(Value::as_u64).unwrap_or(0);
            let pending = self.calls.entry(index).or_insert_with(|| PendingCall {
                id: Value::Null,
                name: Value::Null,
                arguments: String::new(),
            });
            if let Some(id) = call.get("id").filter(|id| id.is_string()) {
                pending.id = id.clone();
            }
            if let Some(name) = call.pointer("/function/name").filter(|n| n.is_string()) {
                pending.name = name.clone();
            }
            if let Some(args) = call.pointer("/function/arguments").and_then(Value::as_str) {
                pending.arguments.push_str(args);
            }
        }
        if let Some(f) = choice.get("finish_reason").and_then(Value::as_str) {
            self.finish = Some(f.to_string());
        }
        if !parts.is_empty() {
            let r = self.response(json!({
                "content": {"role": "model", "parts": parts},
                "index": 0,
            }));
            data(out, &r);
        }
    }

    /// The last event: the tool calls, the finish reason and the usage.
    fn finish(&mut self, out: &mut String) {
        let mut parts: Vec<Value> = self
            .calls
            .values()
            .map(|c| function_call_part(&c.id, &c.name, &c.arguments))
            .collect();
        if parts.is_empty() {
            parts.push(json!({"text": ""}));
        }
        let mut r = self.response(json!({
            "content": {"role": "model", "parts": parts},
            "finishReason": finish_reason(self.finish.as_deref()),
            "index": 0,
        }));
        r["usageMetadata"] = usage_metadata(&self.usage.unwrap_or(self.fallback_usage));
        data(out, &r);
    }
}

impl Encoder for GeminiEncoder {
    type Out = Bytes;
    fn encode(&mut self, item: &StreamOut<'_>) -> Bytes {
        let mut out = String::new();
        match item {
            StreamOut::Chunk(framed) if self.native => {
                return Bytes::copy_from_slice(framed.as_bytes());
            }
            // Gemini streams have no terminator.
            StreamOut::Done if self.native => {}
            StreamOut::Chunk(json) => self.chunk(json, &mut out),
            StreamOut::Done => self.finish(&mut out),
            // The error as Gemini sends one in a stream: bare JSON, not a
            // `data:` event. Google's SDKs throw it as an API error when it
            // arrives as a read of its own, and report it as an incomplete
            // segment when it arrives with other data (it has no event
            // delimiter); either way the client sees a failure, never a
            // truncated answer presented as whole.
            StreamOut::Error { message, code } => {
                let (code, status) = if *code == "upstream_stalled" {
                    (504, "DEADLINE_EXCEEDED")
                } else {
                    (500, "INTERNAL")
                };
                out.push_str(
                    &json!({"error": {"code": code, "message": message, "status": status}})
                        .to_string(),
                );
                out.push('\n');
            }
        }
        Bytes::from(out)
    }
}

fn gemini_refusal(refused: Refused, request_id: &str) -> Response {
    let (error, rec, recorded) = ingress::refused_parts(refused, request_id);
    let mut resp = error.into_gemini_response();
    ingress::annotate(&mut resp, &rec);
    if recorded {
        resp.extensions_mut().insert(super::refusals::Recorded);
    }
    resp
}

/// `POST /v1beta/models/{model}:{method}`.
pub async fn model_method(
    State(state): State<Arc<AppState>>,
    Path(model_method): Path<String>,
    uri: Uri,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let request_id = new_request_id();
    let (model, method) = model_method
        .rsplit_once(':')
        .unwrap_or((model_method.as_str(), ""));
    let query = uri.query();
    let result = match method {
        "generateContent" => {
            generate(
                &state,
                &headers,
                query,
                model,
                body,
                false,
                request_id.clone(),
            )
            .await
        }
        "streamGenerateContent" => {
            let sse =
                query.is_some_and(|q| q.split('&').any(|p| p.eq_ignore_ascii_case("alt=sse")));
            if sse {
                generate(
                    &state,
                    &headers,
                    query,
                    model,
                    body,
                    true,
                    request_id.clone(),
                )
                .await
            } else {
                Err(bad(
                    "streamGenerateContent is served as server-sent events only: add `?alt=sse` \
                     to the URL.",
                )
                .into())
            }
        }
        "countTokens" => count_tokens(&state, &headers, query, model, body)
            .await
            .map(|v| axum::Json(v).into_response())
            .map_err(Refused::from),
        _ => Err(GatewayError::UnknownEndpoint(format!("POST {}", uri.path())).into()),
    };
    match result {
        Ok(resp) => resp,
        Err(refused) => gemini_refusal(refused, &request_id),
    }
}

async fn generate(
    state: &AppState,
    headers: &HeaderMap,
    query: Option<&str>,
    model: &str,
    body: Result<Bytes, BytesRejection>,
    stream: bool,
    request_id: String,
) -> Result<Response, Refused> {
    let key = authenticate_presented(state, presented_key(headers, query)).await?;
    let limit = state.gateway().config.server.max_body_bytes;
    let req = ingress::json_object(body, limit)?;
    let body = to_openai(model, &req, stream)?;
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
                format: NativeFormat::Gemini,
                body: req,
                beta: None,
            }),
            stream,
            // Gemini reports usage on the last event: the encoder needs it.
            wants_usage: true,
            progress: None,
            pin: None,
        })
        .await?;
    // A Gemini channel answered the client's own request: its answer is
    // already in the client's format.
    let native = ingress::answered_natively(state, &rec, NativeFormat::Gemini);
    match answer {
        Answer::Whole(reply) if native => Ok(ingress::whole_response(reply.body, guard, &rec)),
        Answer::Whole(reply) => match to_gemini_response(&reply.body, &rec) {
            Ok(r) => Ok(ingress::whole_response(
                Bytes::from(r.to_string()),
                guard,
                &rec,
            )),
            Err(e) => Err(ingress::untranslatable(guard, rec, e)),
        },
        Answer::Stream(start) => {
            let encoder = GeminiEncoder {
                native,
                response_id: response_id(&rec.request_id),
                model: rec.answered_model.clone().unwrap_or_default(),
                calls: BTreeMap::new(),
                finish: None,
                usage: None,
                fallback_usage: prompt_tokens,
            };
            Ok(ingress::stream_response(start, guard, &rec, encoder))
        }
    }
}

/// The key may use route `model`, and it exists.
fn check_model(state: &AppState, key: &GatewayKey, model: &str) -> Result<(), GatewayError> {
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
    Ok(())
}

/// `:countTokens`: an estimate (about four characters a token over the
/// contents, system instruction and tools), since the route's upstream may
/// have no counting endpoint of its own.
async fn count_tokens(
    state: &AppState,
    headers: &HeaderMap,
    query: Option<&str>,
    model: &str,
    body: Result<Bytes, BytesRejection>,
) -> Result<Value, GatewayError> {
    let key = authenticate_presented(state, presented_key(headers, query)).await?;
    let mut req = ingress::json_object(body, state.gateway().config.server.max_body_bytes)?;
    // `{contents}`, or a whole request under `generateContentRequest`.
    if let Some(Value::Object(inner)) = req.remove("generateContentRequest") {
        req = inner;
    }
    let body = to_openai(model, &req, false)?;
    check_model(state, &key, route_name(model))?;
    let tool_chars = body
        .get("tools")
        .map_or(0, |t| t.to_string().chars().count());
    let tokens = Usage::estimate(prompt_chars(&body) + tool_chars, 0).input;
    Ok(json!({"totalTokens": tokens}))
}

fn model_entry(id: &str) -> Value {
    json!({
        "name": format!("models/{id}"),
        "version": "switchyard",
        "displayName": id,
        "description": "A Switchyard route.",
        "supportedGenerationMethods": ["generateContent", "streamGenerateContent", "countTokens"],
    })
}

/// `GET /v1beta/models`: the routes the key may use, in Gemini's list shape.
pub async fn list_models(
    State(state): State<Arc<AppState>>,
    uri: Uri,
    headers: HeaderMap,
) -> Response {
    let key = match authenticate_presented(&state, presented_key(&headers, uri.query())).await {
        Ok(k) => k,
        Err(e) => return e.into_gemini_response(),
    };
    let models: Vec<Value> = super::openai::listed_models(&state, &key)
        .await
        .iter()
        .map(|(id, _)| model_entry(id))
        .collect();
    axum::Json(json!({ "models": models })).into_response()
}

/// `GET /v1beta/models/{model}`.
pub async fn get_model(
    State(state): State<Arc<AppState>>,
    Path(model): Path<String>,
    uri: Uri,
    headers: HeaderMap,
) -> Response {
    let result = async {
        let key = authenticate_presented(&state, presented_key(&headers, uri.query())).await?;
        let model = route_name(&model);
        check_model(&state, &key, model)?;
        Ok::<_, GatewayError>(model_entry(model))
    }
    .await;
    match result {
        Ok(v) => axum::Json(v).into_response(),
        Err(e) => e.into_gemini_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn obj(v: Value) -> Map<String, Value> {
        v.as_object().cloned().expect("object")
    }

    fn fixture(name: &str) -> Value {
        let path = format!(
            "{}/../../tests/agents/fixtures/gemini/{name}",
            env!("CARGO_MANIFEST_DIR")
        );
        let text = std::fs::read_to_string(path).expect("fixture");
        serde_json::from_str(&text).expect("fixture JSON")
    }

    #[test]
    fn gemini_cli_tool_turn_translates_to_chat_with_matching_tool_ids() {
        let f = fixture("03-tool-streamGenerateContent.json");
        let req = obj(f["request"]["body"].clone());
        let out = to_openai("gemini-2.5-flash", &req, true).expect("translates");
        assert_eq!(out["model"], "gemini-2.5-flash");
        assert_eq!(out["stream"], true);
        let msgs = out["messages"].as_array().expect("messages");
        assert_eq!(msgs[0]["role"], "system");
        assert!(msgs[0]["content"]
            .as_str()
            .is_some_and(|s| s.contains("Gemini CLI") || s.contains("CLI agent")));
        let call = msgs
            .iter()
            .find(|m| m["role"] == "assistant")
            .expect("the model turn");
        assert_eq!(call["content"], Value::Null);
        let tc = &call["tool_calls"][0];
        assert_eq!(tc["id"], "read_file_1796299340666_0");
        assert_eq!(tc["function"]["name"], "read_file");
        let args: Value =
            serde_json::from_str(tc["function"]["arguments"].as_str().expect("string"))
                .expect("JSON arguments");
        assert_eq!(args["file_path"], "<WORKDIR>/notes.txt");
        let tool = msgs.last().expect("last");
        assert_eq!(
            tool,
            &json!({"role": "tool", "tool_call_id": "read_file_1796299340666_0", "content": "pineapple-42\n"})
        );
        let tools = out["tools"].as_array().expect("tools");
        assert_eq!(tools.len(), 16, "--approval-mode yolo offers 16");
        assert!(tools
            .iter()
            .all(|t| t["function"]["parameters"].is_object()));
        assert_eq!(out["temperature"], 1);
        assert_eq!(out["top_p"], 0.95);
        assert_eq!(out["reasoning_effort"], "medium", "thinkingBudget 8192");
        assert!(!out.contains_key("topK") && !out.contains_key("top_k"));
    }

    #[test]
    fn the_routing_call_asks_for_its_json_schema_in_lower_case_types() {
        let f = fixture("05-default-model-generateContent.json");
        let req = obj(f["request"]["body"].clone());
        let out = to_openai("gemini-3.5-flash-lite", &req, false).expect("translates");
        let format = &out["response_format"];
        assert_eq!(format["type"], "json_schema");
        let schema = &format["json_schema"]["schema"];
        assert_eq!(schema["type"], "object");
        assert_eq!(schema["properties"]["complexity_score"]["type"], "integer");
        assert_eq!(out["reasoning_effort"], "high", "thinkingLevel HIGH");
        let users = out["messages"]
            .as_array()
            .expect("messages")
            .iter()
            .filter(|m| m["role"] == "user")
            .count();
        assert_eq!(users, 2, "two consecutive user contents stay two");
    }

    #[test]
    fn thinking_without_an_amount_asks_for_no_effort() {
        for (config, effort) in [
            (json!({"thinkingConfig": {"includeThoughts": true}}), None),
            (json!({"thinkingConfig": {"thinkingBudget": -1}}), None),
            (
                json!({"thinkingConfig": {"thinkingBudget": 0}}),
                Some("none"),
            ),
            (
                json!({"thinkingConfig": {"thinkingBudget": 1024}}),
                Some("low"),
            ),
            (
                json!({"thinkingConfig": {"thinkingBudget": 24576}}),
                Some("high"),
            ),
            (
                json!({"thinkingConfig": {"thinkingLevel": "LOW"}}),
                Some("low"),
            ),
        ] {
            let req = obj(
                json!({"contents": [{"role": "user", "parts": [{"text": "x"}]}], "generationConfig": config}),
            );
            let out = to_openai("m", &req, false).expect("translates");
            assert_eq!(
                out.get("reasoning_effort").and_then(Value::as_str),
                effort,
                "{config}"
            );
        }
    }

    #[test]
    fn images_settings_tool_choice_and_responses_without_ids() {
        let req = obj(json!({
            "systemInstruction": {"parts": [{"text": "Be brief."}, {"text": "Really."}]},
            "contents": [
                {"role": "user", "parts": [
                    {"text": "What is this?"},
                    {"inlineData": {"mimeType": "image/png", "data": "iVBOR"}},
                    {"fileData": {"mimeType": "image/jpeg", "fileUri": "https://example.com/a.jpg"}}
                ]},
                {"role": "model", "parts": [
                    {"text": "hmm", "thought": true},
                    {"text": "Checking."},
                    {"functionCall": {"name": "weather", "args": {"city": "Paris"}}}
                ]},
                {"role": "user", "parts": [
                    {"functionResponse": {"name": "weather", "response": {"temp": 21}}}
                ]}
            ],
            "tools": [
                {"functionDeclarations": [{"name": "weather", "description": "d", "parameters": {"type": "OBJECT", "properties": {"city": {"type": "STRING"}}}}]},
                {"googleSearch": {}}
            ],
            "toolConfig": {"functionCallingConfig": {"mode": "ANY", "allowedFunctionNames": ["weather"]}},
            "generationConfig": {"maxOutputTokens": 100, "stopSequences": ["END"], "responseMimeType": "application/json"}
        }));
        let out = to_openai("models/m", &req, false).expect("translates");
        assert_eq!(out["model"], "m");
        let msgs = out["messages"].as_array().expect("messages");
        assert_eq!(
            msgs[0],
            json!({"role": "system", "content": "Be brief.\nReally."})
        );
        assert_eq!(
            msgs[1]["content"][1]["image_url"]["url"],
            "data:image/png;base64,iVBOR"
        );
        assert_eq!(
            msgs[1]["content"][2]["image_url"]["url"],
            "https://example.com/a.jpg"
        );
        assert_eq!(msgs[2]["content"], "Checking.", "thoughts are left out");
        assert_eq!(msgs[2]["tool_calls"][0]["id"], "call_0");
        assert_eq!(
            msgs[3],
            json!({"role": "tool", "tool_call_id": "call_0", "content": "{\"temp\":21}"})
        );
        assert_eq!(out["tools"].as_array().map(Vec::len), Some(1));
        assert_eq!(
            out["tools"][0]["function"]["parameters"]["properties"]["city"]["type"],
            "string"
        );
        assert_eq!(out["tool_choice"]["function"]["name"], "weather");
        assert_eq!(out["max_tokens"], 100);
        assert_eq!(out["stop"], json!(["END"]));
        assert_eq!(out["response_format"], json!({"type": "json_object"}));
    }

    #[test]
    fn bad_contents_are_clear_errors() {
        for (req, needle) in [
            (json!({}), "contents"),
            (json!({"contents": []}), "contents"),
            (json!({"contents": [{"role": "user"}]}), "parts"),
            (
                json!({"contents": [{"role": "system", "parts": []}]}),
                "role",
            ),
        ] {
            let err = to_openai("m", &obj(req), false)
                .expect_err("refused")
                .to_string();
            assert!(err.contains(needle), "{err}");
        }
    }

    fn encode_all(chunks: &[Value]) -> Vec<Value> {
        let mut enc = GeminiEncoder {
            native: false,
            response_id: "r1".into(),
            model: "m".into(),
            calls: BTreeMap::new(),
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
                let data = b.strip_prefix("data: ").expect("data line");
                serde_json::from_str(data).expect("json")
            })
            .collect()
    }

    #[test]
    fn stream_becomes_gemini_events_ending_with_finish_and_usage() {
        let events = encode_all(&[
            json!({"model": "up-model", "choices": [{"index": 0, "delta": {"role": "assistant", "content": ""}, "finish_reason": null}]}),
            json!({"choices": [{"index": 0, "delta": {"reasoning_content": "Thinking."}, "finish_reason": null}]}),
            json!({"choices": [{"index": 0, "delta": {"content": "Hi"}, "finish_reason": null}]}),
            json!({"choices": [{"index": 0, "delta": {"tool_calls": [{"index": 0, "id": "call_1", "type": "function", "function": {"name": "f", "arguments": ""}}]}, "finish_reason": null}]}),
            json!({"choices": [{"index": 0, "delta": {"tool_calls": [{"index": 0, "function": {"arguments": "{\"a\":"}}]}, "finish_reason": null}]}),
            json!({"choices": [{"index": 0, "delta": {"tool_calls": [{"index": 0, "function": {"arguments": "1}"}}]}, "finish_reason": null}]}),
            json!({"choices": [{"index": 0, "delta": {}, "finish_reason": "tool_calls"}]}),
            json!({"choices": [], "usage": {"prompt_tokens": 30, "completion_tokens": 9, "prompt_tokens_details": {"cached_tokens": 10}, "completion_tokens_details": {"reasoning_tokens": 4}}}),
        ]);
        assert_eq!(events.len(), 3, "{events:?}");
        assert_eq!(
            events[0]["candidates"][0]["content"]["parts"][0],
            json!({"text": "Thinking.", "thought": true})
        );
        assert_eq!(events[0]["modelVersion"], "up-model");
        assert_eq!(
            events[1]["candidates"][0]["content"]["parts"][0],
            json!({"text": "Hi"})
        );
        assert!(events[1]["candidates"][0].get("finishReason").is_none());
        let last = &events[2];
        assert_eq!(last["candidates"][0]["finishReason"], "STOP");
        assert_eq!(
            last["candidates"][0]["content"]["parts"][0],
            json!({"functionCall": {"id": "call_1", "name": "f", "args": {"a": 1}}})
        );
        assert_eq!(
            last["usageMetadata"],
            json!({"promptTokenCount": 30, "candidatesTokenCount": 5, "cachedContentTokenCount": 10, "thoughtsTokenCount": 4, "totalTokenCount": 39})
        );
        assert_eq!(last["responseId"], "r1");
    }

    #[test]
    fn a_stream_error_is_bare_json_without_an_event_delimiter() {
        let mut enc = GeminiEncoder {
            native: false,
            response_id: "r1".into(),
            model: "m".into(),
            calls: BTreeMap::new(),
            finish: None,
            usage: None,
            fallback_usage: Usage::default(),
        };
        let out = enc.encode(&StreamOut::Error {
            message: "cut",
            code: "upstream_stalled",
        });
        let text = String::from_utf8_lossy(&out);
        assert!(
            !text.starts_with("data:") && !text.contains("\n\n"),
            "{text}"
        );
        let v: Value = serde_json::from_str(&text).expect("bare JSON");
        assert_eq!(
            v,
            json!({"error": {"code": 504, "message": "cut", "status": "DEADLINE_EXCEEDED"}})
        );
    }

    #[test]
    fn whole_answer_becomes_a_generate_content_response() {
        let mut rec = RequestRecord::new("req_abc".into(), "m".into(), false);
        rec.usage = Some(Usage {
            input: 5,
            cached_input: 2,
            cache_write: 1,
            output: 7,
            reasoning: 3,
        });
        let body = json!({"model": "up", "choices": [{"index": 0, "finish_reason": "length", "message": {
            "role": "assistant", "content": "Hello", "reasoning_content": "Why",
            "tool_calls": [{"id": "call_9", "type": "function", "function": {"name": "f", "arguments": "{\"x\":2}"}}]
        }}]});
        let r = to_gemini_response(body.to_string().as_bytes(), &rec).expect("response");
        let c = &r["candidates"][0];
        assert_eq!(c["finishReason"], "MAX_TOKENS");
        assert_eq!(c["content"]["role"], "model");
        assert_eq!(
            c["content"]["parts"],
            json!([{"text": "Why", "thought": true}, {"text": "Hello"},
                   {"functionCall": {"id": "call_9", "name": "f", "args": {"x": 2}}}])
        );
        assert_eq!(
            r["usageMetadata"],
            json!({"promptTokenCount": 8, "candidatesTokenCount": 7, "cachedContentTokenCount": 2, "thoughtsTokenCount": 3, "totalTokenCount": 18})
        );
        assert_eq!(r["modelVersion"], "up");
        assert_eq!(r["responseId"], "abc");
    }
}
