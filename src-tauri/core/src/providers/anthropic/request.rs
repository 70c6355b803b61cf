//! OpenAI chat request → Anthropic Messages request.
//!
//! The translation is total: whatever the client sent becomes some Messages
//! body, and what Anthropic cannot take is left for Anthropic to refuse
//! with its own message (relayed to the client), rather than silently
//! changed here. Parts and tools that are already in Anthropic's shape
//! (a `document` block, a server tool, a part carrying `cache_control`)
//! pass through, so a client that knows Claude can use what it offers.
//! A `json_schema` response format becomes Anthropic's structured output
//! (`output_config.format`). OpenAI fields with no Messages counterpart
//! (`n`, `seed`, `logprobs`, the penalties, a `json_object` response
//! format, `stream_options`) are not sent.

use serde_json::{json, Map, Value};

/// `max_tokens` when the client set none: Anthropic requires one, and
/// OpenAI clients that leave it out expect the model's ordinary answer
/// length, not a short default.
fn default_max_tokens(model: &str) -> u64 {
    let id = model.rsplit('/').next().unwrap_or(model);
    if id.starts_with("claude-3-5") {
        8192
    } else if id.starts_with("claude-3-7")
        || ["claude-sonnet-4", "claude-opus-4", "claude-haiku-4"]
            .iter()
            .any(|p| id.starts_with(p))
    {
        16384
    } else {
        // Claude 3 and models behind Anthropic-compatible endpoints: the
        // smallest output limit any of them has.
        4096
    }
}

/// Anthropic's smallest thinking budget.
const MIN_THINKING_BUDGET: u64 = 1024;

/// The thinking budget for an OpenAI `reasoning_effort`, or `None` for no
/// thinking.
fn thinking_budget(effort: &str) -> Option<u64> {
    match effort {
        "none" => None,
        "minimal" => Some(MIN_THINKING_BUDGET),
        "low" => Some(2048),
        "high" => Some(16384),
        "xhigh" | "max" => Some(32768),
        // "medium" is OpenAI's default effort; an unknown word still asks
        // for reasoning.
        _ => Some(8192),
    }
}

/// The Messages request body for the client's OpenAI chat request.
pub(super) fn translate(body: &Map<String, Value>, model: &str, stream: bool) -> Value {
    let (system, messages) = conversation(body.get("messages"));
    let tools = tools(body.get("tools"));
    let tool_choice = if tools.is_empty() {
        None
    } else {
        tool_choice(body.get("tool_choice"), body.get("parallel_tool_calls"))
    };

    let client_max = ["max_completion_tokens", "max_tokens"]
        .iter()
        .find_map(|k| body.get(*k).and_then(Value::as_u64));
    let forced_tool = tool_choice
        .as_ref()
        .and_then(|c| c.get("type"))
        .and_then(Value::as_str)
        .is_some_and(|t| t == "any" || t == "tool");
    let budget = body
        .get("reasoning_effort")
        .and_then(Value::as_str)
        .and_then(thinking_budget)
        // Anthropic refuses thinking with a forced tool, and in a tool loop
        // unless the last assistant turn carries its thinking block back —
        // which OpenAI's format has no place for. The client's tool
        // contract wins over the effort hint.
        .filter(|_| !forced_tool && !mid_tool_loop(&messages));
    let max_tokens = match (client_max, budget) {
        // OpenAI counts reasoning inside the limit, like Anthropic does;
        // when the limit leaves no room for the budget, the answer keeps
        // the client's allowance and thinking gets its own on top.
        (Some(max), Some(b)) if max <= b => max + b,
        (Some(max), _) => max,
        (None, Some(b)) => default_max_tokens(model) + b,
        (None, None) => default_max_tokens(model),
    };

    let mut out = Map::new();
    out.insert("model".into(), Value::String(model.to_string()));
    out.insert("max_tokens".into(), max_tokens.into());
    if let Some(system) = system {
        out.insert("system".into(), system);
    }
    out.insert("messages".into(), Value::Array(messages));
    if !tools.is_empty() {
        out.insert("tools".into(), Value::Array(tools));
    }
    if let Some(choice) = tool_choice {
        out.insert("tool_choice".into(), choice);
    }
    if let Some(stops) = stop_sequences(body.get("stop")) {
        out.insert("stop_sequences".into(), stops);
    }
    if let Some(b) = budget {
        out.insert(
            "thinking".into(),
            json!({"type": "enabled", "budget_tokens": b}),
        );
    } else {
        // Thinking is incompatible with changed sampling, so these go only
        // without it.
        if let Some(t) = body.get("temperature").and_then(Value::as_f64) {
            // OpenAI's range is 0–2, Anthropic's 0–1.
            out.insert("temperature".into(), json!(t.clamp(0.0, 1.0)));
        }
        for key in ["top_p", "top_k"] {
            if let Some(v) = body.get(key).filter(|v| v.is_number()) {
                out.insert(key.into(), v.clone());
            }
        }
    }
    if let Some(user) = body.get("user").and_then(Value::as_str) {
        out.insert("metadata".into(), json!({"user_id": user}));
    }
    // A JSON schema the answer must follow: Anthropic's structured output.
    if let Some(schema) = body
        .get("response_format")
        .filter(|f| f.get("type").and_then(Value::as_str) == Some("json_schema"))
        .and_then(|f| f.pointer("/json_schema/schema"))
    {
        out.insert(
            "output_config".into(),
            json!({"format": {"type": "json_schema", "schema": schema}}),
        );
    }
    if stream {
        out.insert("stream".into(), Value::Bool(true));
    }
    Value::Object(out)
}

/// The request continues a tool loop: its last turn carries tool results.
fn mid_tool_loop(messages: &[Value]) -> bool {
    messages
        .last()
        .and_then(|m| m.get("content"))
        .and_then(Value::as_array)
        .is_some_and(|blocks| blocks.iter().any(|b| block_type(b) == Some("tool_result")))
}

fn block_type(block: &Value) -> Option<&str> {
    block.get("type").and_then(Value::as_str)
}

/// The top-level `system` and the alternating user/assistant `messages`.
fn conversation(messages: Option<&Value>) -> (Option<Value>, Vec<Value>) {
    let mut system: Vec<Value> = Vec::new();
    let mut turns: Vec<(&'static str, Vec<Value>)> = Vec::new();
    for msg in messages.and_then(Value::as_array).into_iter().flatten() {
        let role = msg.get("role").and_then(Value::as_str).unwrap_or("user");
        match role {
            "system" | "developer" => system.extend(content_blocks(msg.get("content"))),
            "assistant" => {
                let mut blocks = content_blocks(msg.get("content"));
                let calls = msg.get("tool_calls").and_then(Value::as_array);
                blocks.extend(calls.into_iter().flatten().map(tool_use));
                push(&mut turns, "assistant", blocks);
            }
            "tool" => push(&mut turns, "user", vec![tool_result(msg)]),
            _ => push(&mut turns, "user", content_blocks(msg.get("content"))),
        }
    }
    let messages = turns
        .into_iter()
        .map(|(role, mut content)| {
            if role == "user" {
                // Tool results must open the user turn that answers a tool
                // call; any text the client put among them follows. The
                // sort is stable, so each group keeps its order.
                content.sort_by_key(|b| block_type(b) != Some("tool_result"));
            }
            json!({"role": role, "content": content})
        })
        .collect();
    (system_value(system), messages)
}

/// Anthropic wants user and assistant turns to alternate: consecutive
/// messages of one role become one turn.
fn push(turns: &mut Vec<(&'static str, Vec<Value>)>, role: &'static str, blocks: Vec<Value>) {
    if blocks.is_empty() {
        return;
    }
    match turns.last_mut() {
        Some((last, content)) if *last == role => content.extend(blocks),
        _ => turns.push((role, blocks)),
    }
}

/// System text joined into one string, or kept as blocks when the client
/// marked a part for prompt caching.
fn system_value(blocks: Vec<Value>) -> Option<Value> {
    if blocks.is_empty() {
        return None;
    }
    if blocks.iter().any(|b| b.get("cache_control").is_some()) {
        return Some(Value::Array(blocks));
    }
    let text: Vec<&str> = blocks
        .iter()
        .filter_map(|b| b.get("text").and_then(Value::as_str))
        .collect();
    Some(Value::String(text.join("\n\n")))
}

fn text_block(text: &str) -> Option<Value> {
    // Anthropic refuses empty text blocks.
    (!text.is_empty()).then(|| json!({"type": "text", "text": text}))
}

/// A message's `content` (a string or a list of parts) as content blocks.
fn content_blocks(content: Option<&Value>) -> Vec<Value> {
    match content {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::String(s)) => text_block(s).into_iter().collect(),
        Some(Value::Array(parts)) => parts.iter().filter_map(part_block).collect(),
        Some(other) => text_block(&other.to_string()).into_iter().collect(),
    }
}

/// One OpenAI content part as an Anthropic block; parts already in
/// Anthropic's shape (or unknown to both) pass through.
fn part_block(part: &Value) -> Option<Value> {
    let mut block = match block_type(part) {
        Some("text") => text_block(part.get("text").and_then(Value::as_str)?)?,
        Some("refusal") => text_block(part.get("refusal").and_then(Value::as_str)?)?,
        Some("image_url") => {
            let url = part.get("image_url").and_then(|u| match u {
                Value::String(s) => Some(s.as_str()),
                other => other.get("url").and_then(Value::as_str),
            })?;
            json!({"type": "image", "source": source(url)})
        }
        Some("file") => {
            let data = part.pointer("/file/file_data").and_then(Value::as_str)?;
            json!({"type": "document", "source": source(data)})
        }
        _ => return Some(part.clone()),
    };
    if let (Some(cc), Value::Object(b)) = (part.get("cache_control"), &mut block) {
        b.insert("cache_control".into(), cc.clone());
    }
    Some(block)
}

/// An image or document source: inline base64 for a `data:` URL, else a
/// URL Anthropic fetches itself.
fn source(url: &str) -> Value {
    match url.strip_prefix("data:").and_then(|r| r.split_once(',')) {
        Some((meta, data)) => {
            let media_type = meta.split(';').next().unwrap_or_default();
            json!({"type": "base64", "media_type": media_type, "data": data})
        }
        None => json!({"type": "url", "url": url}),
    }
}

/// An assistant `tool_calls` entry as a `tool_use` block.
fn tool_use(call: &Value) -> Value {
    let input = match call.pointer("/function/arguments") {
        Some(Value::String(s)) if s.trim().is_empty() => json!({}),
        Some(Value::String(s)) => match serde_json::from_str::<Value>(s) {
            Ok(v @ Value::Object(_)) => v,
            // `input` must be an object; keep what the model produced
            // rather than drop it.
            Ok(other) => json!({"arguments": other}),
            Err(_) => json!({"arguments": s}),
        },
        Some(v @ Value::Object(_)) => v.clone(),
        _ => json!({}),
    };
    json!({
        "type": "tool_use",
        "id": call.get("id").cloned().unwrap_or(Value::Null),
        "name": call.pointer("/function/name").cloned().unwrap_or(Value::Null),
        "input": input,
    })
}

/// A `tool` message as a `tool_result` block.
fn tool_result(msg: &Value) -> Value {
    let mut block = json!({
        "type": "tool_result",
        "tool_use_id": msg.get("tool_call_id").cloned().unwrap_or(Value::Null),
    });
    let content = match msg.get("content") {
        Some(Value::String(s)) if !s.is_empty() => Some(Value::String(s.clone())),
        Some(Value::Array(_)) => {
            let blocks = content_blocks(msg.get("content"));
            (!blocks.is_empty()).then_some(Value::Array(blocks))
        }
        _ => None,
    };
    if let (Some(c), Value::Object(b)) = (content, &mut block) {
        b.insert("content".into(), c);
    }
    block
}

/// OpenAI function tools as Anthropic tools; other tool types (Anthropic
/// server tools) pass through.
fn tools(tools: Option<&Value>) -> Vec<Value> {
    let Some(list) = tools.and_then(Value::as_array) else {
        return Vec::new();
    };
    list.iter()
        .map(|t| {
            let Some(f) = t
                .get("function")
                .filter(|_| block_type(t) == Some("function"))
            else {
                return t.clone();
            };
            let mut tool = Map::new();
            tool.insert("name".into(), f.get("name").cloned().unwrap_or(Value::Null));
            if let Some(d) = f.get("description").filter(|d| d.is_string()) {
                tool.insert("description".into(), d.clone());
            }
            let schema = f
                .get("parameters")
                .filter(|p| p.is_object())
                .cloned()
                // A function without parameters takes none.
                .unwrap_or_else(|| json!({"type": "object", "properties": {}}));
            tool.insert("input_schema".into(), schema);
            if let Some(cc) = t.get("cache_control") {
                tool.insert("cache_control".into(), cc.clone());
            }
            Value::Object(tool)
        })
        .collect()
}

fn tool_choice(choice: Option<&Value>, parallel: Option<&Value>) -> Option<Value> {
    let mut out = match choice {
        Some(Value::String(s)) => match s.as_str() {
            "none" => json!({"type": "none"}),
            "required" => json!({"type": "any"}),
            _ => json!({"type": "auto"}),
        },
        Some(v @ Value::Object(_)) => match v.pointer("/function/name") {
            Some(name) => json!({"type": "tool", "name": name}),
            // Already Anthropic's shape.
            None => v.clone(),
        },
        _ if parallel.is_some() => json!({"type": "auto"}),
        _ => return None,
    };
    if parallel == Some(&Value::Bool(false)) {
        if let Value::Object(o) = &mut out {
            if o.get("type").and_then(Value::as_str) != Some("none") {
                o.insert("disable_parallel_tool_use".into(), Value::Bool(true));
            }
        }
    }
    Some(out)
}

fn stop_sequences(stop: Option<&Value>) -> Option<Value> {
    let list: Vec<Value> = match stop? {
        Value::String(s) => vec![Value::String(s.clone())],
        Value::Array(items) => items.iter().filter(|s| s.is_string()).cloned().collect(),
        _ => Vec::new(),
    };
    // Anthropic refuses stop sequences that are only whitespace.
    let list: Vec<Value> = list
        .into_iter()
        .filter(|s| s.as_str().is_some_and(|s| !s.trim().is_empty()))
        .collect();
    (!list.is_empty()).then_some(Value::Array(list))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn translated(body: Value) -> Value {
        translate(
            body.as_object().expect("object"),
            "claude-sonnet-4-5",
            false,
        )
    }

    #[test]
    fn a_json_schema_response_format_becomes_structured_output() {
        let schema = json!({"type": "object", "properties": {"a": {"type": "string"}}});
        let body = json!({"messages": [{"role": "user", "content": "x"}],
            "response_format": {"type": "json_schema", "json_schema": {"name": "n", "schema": schema}}});
        let got = translate(
            body.as_object().expect("object"),
            "claude-sonnet-4-5",
            false,
        );
        assert_eq!(
            got["output_config"],
            json!({"format": {"type": "json_schema", "schema": schema}})
        );
        let body = json!({"messages": [{"role": "user", "content": "x"}],
            "response_format": {"type": "json_object"}});
        let got = translate(
            body.as_object().expect("object"),
            "claude-sonnet-4-5",
            false,
        );
        assert!(got.get("output_config").is_none());
    }

    #[test]
    fn whole_request_matches_the_golden_translation() {
        let client: Value = serde_json::from_str(include_str!(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/fixtures/anthropic/openai_chat_request.json"
        )))
        .expect("fixture");
        let want: Value = serde_json::from_str(include_str!(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/fixtures/anthropic/expected_messages_request.json"
        )))
        .expect("fixture");
        let got = translate(
            client.as_object().expect("object"),
            "claude-sonnet-4-5-20250929",
            true,
        );
        assert_eq!(got, want, "{got:#}");
    }

    #[test]
    fn system_and_developer_messages_join_into_top_level_system() {
        let got = translated(json!({"messages": [
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": "Hi"},
            {"role": "developer", "content": [{"type": "text", "text": "Answer in French."}]}
        ]}));
        assert_eq!(got["system"], "Be brief.\n\nAnswer in French.");
        assert_eq!(
            got["messages"],
            json!([{"role": "user", "content": [{"type": "text", "text": "Hi"}]}])
        );
    }

    #[test]
    fn system_part_marked_for_caching_keeps_its_block_shape() {
        let got = translated(json!({"messages": [
            {"role": "system", "content": [
                {"type": "text", "text": "Long contract…", "cache_control": {"type": "ephemeral"}}
            ]},
            {"role": "user", "content": "Clause 4?"}
        ]}));
        assert_eq!(
            got["system"],
            json!([{"type": "text", "text": "Long contract…", "cache_control": {"type": "ephemeral"}}])
        );
    }

    #[test]
    fn consecutive_messages_of_one_role_merge_and_tool_results_lead_their_turn() {
        let got = translated(json!({"messages": [
            {"role": "user", "content": "One"},
            {"role": "user", "content": "Two"},
            {"role": "assistant", "content": null, "tool_calls": [
                {"id": "call_a", "type": "function", "function": {"name": "f", "arguments": "{\"x\":1}"}},
                {"id": "call_b", "type": "function", "function": {"name": "g", "arguments": ""}}
            ]},
            {"role": "user", "content": "Also this"},
            {"role": "tool", "tool_call_id": "call_a", "content": "A"},
            {"role": "tool", "tool_call_id": "call_b", "content": [{"type": "text", "text": "B"}]}
        ]}));
        assert_eq!(
            got["messages"],
            json!([
                {"role": "user", "content": [
                    {"type": "text", "text": "One"}, {"type": "text", "text": "Two"}
                ]},
                {"role": "assistant", "content": [
                    {"type": "tool_use", "id": "call_a", "name": "f", "input": {"x": 1}},
                    {"type": "tool_use", "id": "call_b", "name": "g", "input": {}}
                ]},
                {"role": "user", "content": [
                    {"type": "tool_result", "tool_use_id": "call_a", "content": "A"},
                    {"type": "tool_result", "tool_use_id": "call_b", "content": [{"type": "text", "text": "B"}]},
                    {"type": "text", "text": "Also this"}
                ]}
            ])
        );
    }

    #[test]
    fn tool_arguments_that_are_not_an_object_are_kept_not_dropped() {
        let call = |args: &str| {
            tool_use(&json!({"id": "c", "function": {"name": "f", "arguments": args}}))["input"]
                .clone()
        };
        assert_eq!(call("{\"a\": [1]}"), json!({"a": [1]}));
        assert_eq!(call("[1, 2]"), json!({"arguments": [1, 2]}));
        assert_eq!(call("{broken"), json!({"arguments": "{broken"}));
        assert_eq!(call("  "), json!({}));
    }

    #[test]
    fn images_become_base64_or_url_sources() {
        let got = translated(json!({"messages": [{"role": "user", "content": [
            {"type": "text", "text": "Compare"},
            {"type": "image_url", "image_url": {"url": "data:image/webp;base64,UklGRg==", "detail": "low"}},
            {"type": "image_url", "image_url": {"url": "https://example.com/cat.png"}},
            {"type": "image_url", "image_url": "https://example.com/dog.jpg"},
            {"type": "text", "text": ""}
        ]}]}));
        assert_eq!(
            got["messages"][0]["content"],
            json!([
                {"type": "text", "text": "Compare"},
                {"type": "image", "source": {"type": "base64", "media_type": "image/webp", "data": "UklGRg=="}},
                {"type": "image", "source": {"type": "url", "url": "https://example.com/cat.png"}},
                {"type": "image", "source": {"type": "url", "url": "https://example.com/dog.jpg"}}
            ])
        );
    }

    #[test]
    fn pdf_file_parts_become_documents_and_native_blocks_pass_through() {
        let native = json!({"type": "document", "source": {"type": "text", "media_type": "text/plain", "data": "notes"}});
        let got = translated(json!({"messages": [{"role": "user", "content": [
            {"type": "file", "file": {"filename": "a.pdf", "file_data": "data:application/pdf;base64,JVBERi0="}},
            native.clone()
        ]}]}));
        assert_eq!(
            got["messages"][0]["content"],
            json!([
                {"type": "document", "source": {"type": "base64", "media_type": "application/pdf", "data": "JVBERi0="}},
                native
            ])
        );
    }

    #[test]
    fn tools_and_every_tool_choice_translate() {
        let tools = json!([
            {"type": "function", "function": {"name": "get_weather", "description": "Weather", "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}, "strict": true}},
            {"type": "function", "function": {"name": "now"}},
            {"type": "web_search_20250305", "name": "web_search", "max_uses": 2}
        ]);
        let with = |choice: Value| {
            let mut body = json!({"messages": [{"role": "user", "content": "x"}], "tools": tools});
            if !choice.is_null() {
                body["tool_choice"] = choice;
            }
            translated(body)
        };
        let got = with(Value::Null);
        assert_eq!(
            got["tools"],
            json!([
                {"name": "get_weather", "description": "Weather", "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}},
                {"name": "now", "input_schema": {"type": "object", "properties": {}}},
                {"type": "web_search_20250305", "name": "web_search", "max_uses": 2}
            ])
        );
        assert!(got.get("tool_choice").is_none());
        assert_eq!(with(json!("auto"))["tool_choice"], json!({"type": "auto"}));
        assert_eq!(with(json!("none"))["tool_choice"], json!({"type": "none"}));
        assert_eq!(
            with(json!("required"))["tool_choice"],
            json!({"type": "any"})
        );
        assert_eq!(
            with(json!({"type": "function", "function": {"name": "now"}}))["tool_choice"],
            json!({"type": "tool", "name": "now"})
        );
    }

    #[test]
    fn parallel_tool_calls_false_disables_parallel_use() {
        let got = translated(json!({
            "messages": [{"role": "user", "content": "x"}],
            "tools": [{"type": "function", "function": {"name": "f"}}],
            "parallel_tool_calls": false
        }));
        assert_eq!(
            got["tool_choice"],
            json!({"type": "auto", "disable_parallel_tool_use": true})
        );
    }

    #[test]
    fn tool_choice_without_tools_is_not_sent() {
        let got = translated(
            json!({"messages": [{"role": "user", "content": "x"}], "tool_choice": "none"}),
        );
        assert!(got.get("tool_choice").is_none() && got.get("tools").is_none());
    }

    #[test]
    fn max_tokens_comes_from_either_field_or_a_per_model_default() {
        let base = || json!({"messages": [{"role": "user", "content": "x"}]});
        let mut b = base();
        b["max_tokens"] = json!(300);
        assert_eq!(translated(b)["max_tokens"], 300);
        let mut b = base();
        b["max_completion_tokens"] = json!(500);
        b["max_tokens"] = json!(300);
        assert_eq!(translated(b)["max_tokens"], 500);
        assert_eq!(translated(base())["max_tokens"], 16384);
        let haiku3 = translate(
            base().as_object().expect("object"),
            "claude-3-haiku-20240307",
            false,
        );
        assert_eq!(haiku3["max_tokens"], 4096);
        let sonnet35 = translate(
            base().as_object().expect("object"),
            "claude-3-5-sonnet-latest",
            false,
        );
        assert_eq!(sonnet35["max_tokens"], 8192);
    }

    #[test]
    fn stop_temperature_top_p_user_and_stream_translate() {
        let got = translate(
            json!({
                "messages": [{"role": "user", "content": "x"}],
                "stop": "END", "temperature": 1.6, "top_p": 0.9, "user": "u-42"
            })
            .as_object()
            .expect("object"),
            "claude-sonnet-4-5",
            true,
        );
        assert_eq!(got["stop_sequences"], json!(["END"]));
        assert_eq!(got["temperature"], json!(1.0));
        assert_eq!(got["top_p"], json!(0.9));
        assert_eq!(got["metadata"], json!({"user_id": "u-42"}));
        assert_eq!(got["stream"], true);
        assert!(got.get("thinking").is_none());
        let list = translated(json!({"messages": [], "stop": ["a", " ", "b"]}));
        assert_eq!(list["stop_sequences"], json!(["a", "b"]));
        assert!(translated(json!({"messages": []})).get("stream").is_none());
    }

    #[test]
    fn reasoning_effort_enables_thinking_with_room_to_answer() {
        let ask = |extra: Value| {
            let mut b = json!({"messages": [{"role": "user", "content": "x"}], "temperature": 0.2});
            for (k, v) in extra.as_object().expect("object") {
                b[k] = v.clone();
            }
            translated(b)
        };
        let got = ask(json!({"reasoning_effort": "low"}));
        assert_eq!(
            got["thinking"],
            json!({"type": "enabled", "budget_tokens": 2048})
        );
        assert_eq!(got["max_tokens"], 16384 + 2048);
        assert!(
            got.get("temperature").is_none(),
            "thinking refuses sampling changes"
        );

        let roomy = ask(json!({"reasoning_effort": "high", "max_tokens": 32000}));
        assert_eq!(roomy["thinking"]["budget_tokens"], 16384);
        assert_eq!(roomy["max_tokens"], 32000);

        let tight = ask(json!({"reasoning_effort": "medium", "max_completion_tokens": 1000}));
        assert_eq!(tight["thinking"]["budget_tokens"], 8192);
        assert_eq!(tight["max_tokens"], 9192);
        assert!(tight["max_tokens"].as_u64() > tight["thinking"]["budget_tokens"].as_u64());

        let none = ask(json!({"reasoning_effort": "none"}));
        assert!(none.get("thinking").is_none());
        assert_eq!(none["temperature"], json!(0.2));
    }

    #[test]
    fn no_thinking_with_a_forced_tool_or_in_a_tool_loop() {
        let tools = json!([{"type": "function", "function": {"name": "f"}}]);
        let forced = translated(json!({
            "messages": [{"role": "user", "content": "x"}],
            "tools": tools, "tool_choice": "required", "reasoning_effort": "high"
        }));
        assert!(forced.get("thinking").is_none());
        let looping = translated(json!({
            "messages": [
                {"role": "user", "content": "x"},
                {"role": "assistant", "tool_calls": [{"id": "c1", "type": "function", "function": {"name": "f", "arguments": "{}"}}]},
                {"role": "tool", "tool_call_id": "c1", "content": "ok"}
            ],
            "tools": tools, "reasoning_effort": "high"
        }));
        assert!(looping.get("thinking").is_none());
    }
}
