//! OpenAI chat request → Gemini `GenerateContentRequest`.
//!
//! Owns the mapping of messages to `contents`/`systemInstruction` (turns of
//! one role merged, as Gemini wants user and model turns to alternate),
//! parts (text, inline and file data, function calls and responses), tools,
//! tool choice and generation settings. Fields Gemini has no use for are
//! dropped, never forwarded under OpenAI names that Gemini would refuse.

use std::collections::HashMap;

use serde_json::{json, Map, Value};

/// The client's request as Gemini's `generateContent` body.
pub(super) fn generate_content(body: &Map<String, Value>) -> Value {
    let mut out = Map::new();
    let (system, contents) = messages(body.get("messages"));
    out.insert("contents".into(), Value::Array(contents));
    if !system.is_empty() {
        out.insert("systemInstruction".into(), json!({ "parts": system }));
    }
    if let Some(tools) = tools(body.get("tools")) {
        out.insert("tools".into(), tools);
    }
    if let Some(config) = body.get("tool_choice").and_then(tool_config) {
        out.insert("toolConfig".into(), config);
    }
    // Gemini-only settings, where Google's own OpenAI-compatible endpoint
    // takes them: `extra_body.google.{safety_settings, thinking_config,
    // cached_content}` (the SDKs' `extra_body` lands in the body as is).
    let google = body.get("extra_body").and_then(|e| e.get("google"));
    if let Some(safety) = google.and_then(|g| g.get("safety_settings")) {
        out.insert("safetySettings".into(), camel_keys(safety));
    }
    let config = generation_config(body, google.and_then(|g| g.get("thinking_config")));
    if !config.is_empty() {
        out.insert("generationConfig".into(), Value::Object(config));
    }
    if let Some(cached) = google.and_then(|g| g.get("cached_content")) {
        out.insert("cachedContent".into(), cached.clone());
    }
    Value::Object(out)
}

/// `(systemInstruction parts, contents)`.
fn messages(messages: Option<&Value>) -> (Vec<Value>, Vec<Value>) {
    let mut system = Vec::new();
    let mut contents: Vec<Value> = Vec::new();
    // Tool call id → function name: a `tool` message names only the id,
    // Gemini's `functionResponse` needs the name. Later calls win, so ids
    // reused across turns (`call_0` again) still find their own call.
    let mut call_names: HashMap<String, String> = HashMap::new();
    for msg in messages.and_then(Value::as_array).into_iter().flatten() {
        let role = msg.get("role").and_then(Value::as_str).unwrap_or("user");
        match role {
            "system" | "developer" => system.extend(content_parts(msg.get("content"))),
            "assistant" => {
                let mut parts = content_parts(msg.get("content"));
                for call in msg
                    .get("tool_calls")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                {
                    let Some(function) = call.get("function") else {
                        continue;
                    };
                    let name = str_of(function.get("name"));
                    if let Some(id) = call.get("id").and_then(Value::as_str) {
                        call_names.insert(id.to_string(), name.to_string());
                    }
                    let signature = call.pointer("/extra_content/google/thought_signature");
                    parts.push(function_call(name, function.get("arguments"), signature));
                }
                // The legacy single `function_call`.
                if let Some(function) = msg.get("function_call") {
                    let name = str_of(function.get("name"));
                    parts.push(function_call(name, function.get("arguments"), None));
                }
                push_turn(&mut contents, "model", parts);
            }
            "tool" | "function" => {
                let by_id = msg
                    .get("tool_call_id")
                    .and_then(Value::as_str)
                    .and_then(|id| call_names.get(id).map(String::as_str));
                let name = by_id
                    .or_else(|| msg.get("name").and_then(Value::as_str))
                    .or_else(|| msg.get("tool_call_id").and_then(Value::as_str))
                    .unwrap_or_default();
                let part = json!({"functionResponse": {
                    "name": name,
                    "response": function_response(msg.get("content")),
                }});
                push_turn(&mut contents, "user", vec![part]);
            }
            _ => push_turn(&mut contents, "user", content_parts(msg.get("content"))),
        }
    }
    (system, contents)
}

fn str_of(v: Option<&Value>) -> &str {
    v.and_then(Value::as_str).unwrap_or_default()
}

/// Appends a turn, merging it into the previous one of the same role.
/// A turn without parts is dropped: Gemini refuses empty turns.
fn push_turn(contents: &mut Vec<Value>, role: &str, parts: Vec<Value>) {
    if parts.is_empty() {
        return;
    }
    if let Some(last) = contents.last_mut() {
        if last.get("role").and_then(Value::as_str) == Some(role) {
            if let Some(Value::Array(existing)) = last.get_mut("parts") {
                existing.extend(parts);
                return;
            }
        }
    }
    contents.push(json!({"role": role, "parts": parts}));
}

/// A message's `content` (a string or an array of typed parts) as parts.
fn content_parts(content: Option<&Value>) -> Vec<Value> {
    match content {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::String(s)) if s.is_empty() => Vec::new(),
        Some(Value::String(s)) => vec![json!({"text": s})],
        Some(Value::Array(items)) => items.iter().filter_map(content_part).collect(),
        Some(other) => vec![json!({"text": other.to_string()})],
    }
}

fn content_part(item: &Value) -> Option<Value> {
    if let Value::String(s) = item {
        return Some(json!({"text": s}));
    }
    match item.get("type").and_then(Value::as_str)? {
        "text" => Some(json!({"text": str_of(item.get("text"))})),
        "refusal" => Some(json!({"text": str_of(item.get("refusal"))})),
        "image_url" => {
            let image = item.get("image_url")?;
            let url = image
                .as_str()
                .or_else(|| image.get("url").and_then(Value::as_str))?;
            Some(media_part(url))
        }
        "input_audio" => {
            let audio = item.get("input_audio")?;
            let format = audio.get("format").and_then(Value::as_str).unwrap_or("wav");
            Some(json!({"inlineData": {
                "mimeType": format!("audio/{format}"),
                "data": str_of(audio.get("data")),
            }}))
        }
        "file" => {
            let file = item.get("file")?;
            let data = file.get("file_data").and_then(Value::as_str)?;
            let name = file.get("filename").and_then(Value::as_str);
            Some(match data_url(data) {
                Some((mime, data)) => json!({"inlineData": {"mimeType": mime, "data": data}}),
                None => json!({"inlineData": {
                    "mimeType": name.map_or("application/pdf", guess_mime),
                    "data": data,
                }}),
            })
        }
        other => {
            tracing::debug!(part = other, "dropped a message part Gemini cannot take");
            None
        }
    }
}

/// An image (or other media) by URL: `data:` URLs inline, anything else
/// as a file reference Gemini fetches itself.
fn media_part(url: &str) -> Value {
    match data_url(url) {
        Some((mime, data)) => json!({"inlineData": {"mimeType": mime, "data": data}}),
        None => json!({"fileData": {"mimeType": guess_mime(url), "fileUri": url}}),
    }
}

/// `data:<mime>;base64,<data>` → `(mime, data)`.
fn data_url(url: &str) -> Option<(&str, &str)> {
    let rest = url.strip_prefix("data:")?;
    let (meta, data) = rest.split_once(',')?;
    let mime = meta.strip_suffix(";base64")?;
    Some((if mime.is_empty() { "image/jpeg" } else { mime }, data))
}

/// A media type from a URL's or file name's extension; JPEG when unsure,
/// the commonest image type on the web.
fn guess_mime(url: &str) -> &'static str {
    let path = url.split(['?', '#']).next().unwrap_or(url);
    let ext = path
        .rsplit_once('.')
        .map(|(_, e)| e.to_ascii_lowercase())
        .unwrap_or_default();
    match ext.as_str() {
        "png" => "image/png",
        "gif" => "image/gif",
        "webp" => "image/webp",
        "heic" => "image/heic",
        "heif" => "image/heif",
        "pdf" => "application/pdf",
        "mp3" => "audio/mp3",
        "wav" => "audio/wav",
        "mp4" => "video/mp4",
        _ => "image/jpeg",
    }
}

/// An assistant's tool call as a `functionCall` part. Gemini wants `args`
/// as an object; anything else the client sent is kept under `arguments`
/// rather than dropped.
fn function_call(name: &str, arguments: Option<&Value>, signature: Option<&Value>) -> Value {
    let args = match arguments {
        Some(Value::String(s)) if s.trim().is_empty() => json!({}),
        Some(Value::String(s)) => match serde_json::from_str::<Value>(s) {
            Ok(obj @ Value::Object(_)) => obj,
            _ => json!({"arguments": s}),
        },
        Some(obj @ Value::Object(_)) => obj.clone(),
        None | Some(Value::Null) => json!({}),
        Some(other) => json!({"arguments": other}),
    };
    let mut part = json!({"functionCall": {"name": name, "args": args}});
    // Gemini 3 refuses a replayed function call without the signature it
    // was given; the answer carried it in `extra_content` for this.
    if let Some(sig) = signature.filter(|s| s.is_string()) {
        part["thoughtSignature"] = sig.clone();
    }
    part
}

/// A tool result as a `functionResponse.response`, which must be an
/// object: a JSON object is used as is, anything else is `{"result": …}`.
fn function_response(content: Option<&Value>) -> Value {
    let text = match content {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Array(items)) => items
            .iter()
            .filter_map(|i| i.get("text").and_then(Value::as_str).or(i.as_str()))
            .collect::<Vec<_>>()
            .join(""),
        Some(obj @ Value::Object(_)) => return obj.clone(),
        None | Some(Value::Null) => String::new(),
        Some(other) => return json!({"result": other}),
    };
    match serde_json::from_str::<Value>(&text) {
        Ok(obj @ Value::Object(_)) => obj,
        Ok(other) => json!({"result": other}),
        Err(_) => json!({"result": text}),
    }
}

/// OpenAI function tools → one Gemini tool of function declarations.
///
/// Parameters go in `parametersJsonSchema`, not `parameters`: clients send
/// JSON Schema, and `parameters` takes only an OpenAPI subset that refuses
/// keywords OpenAI's strict schemas carry (`additionalProperties`,
/// `$schema`, …).
fn tools(tools: Option<&Value>) -> Option<Value> {
    let declarations: Vec<Value> = tools?
        .as_array()?
        .iter()
        .filter(|t| t.get("type").and_then(Value::as_str).unwrap_or("function") == "function")
        .filter_map(|t| t.get("function"))
        .map(|f| {
            let mut d = Map::new();
            d.insert("name".into(), json!(str_of(f.get("name"))));
            if let Some(desc) = f.get("description").filter(|d| d.is_string()) {
                d.insert("description".into(), desc.clone());
            }
            if let Some(params) = f.get("parameters").filter(|p| p.is_object()) {
                d.insert("parametersJsonSchema".into(), params.clone());
            }
            Value::Object(d)
        })
        .collect();
    (!declarations.is_empty()).then(|| json!([{ "functionDeclarations": declarations }]))
}

/// `tool_choice` → `toolConfig.functionCallingConfig`.
fn tool_config(choice: &Value) -> Option<Value> {
    let (mode, allowed) = match choice {
        Value::String(s) => match s.as_str() {
            "auto" => ("AUTO", None),
            "none" => ("NONE", None),
            "required" => ("ANY", None),
            _ => return None,
        },
        Value::Object(_) => {
            let name = choice.pointer("/function/name").and_then(Value::as_str)?;
            ("ANY", Some(name))
        }
        _ => return None,
    };
    let mut config = json!({"mode": mode});
    if let Some(name) = allowed {
        config["allowedFunctionNames"] = json!([name]);
    }
    Some(json!({ "functionCallingConfig": config }))
}

fn generation_config(body: &Map<String, Value>, thinking: Option<&Value>) -> Map<String, Value> {
    let mut c = Map::new();
    let mut copy = |from: &str, to: &str| {
        if let Some(v) = body.get(from).filter(|v| v.is_number()) {
            c.insert(to.into(), v.clone());
        }
    };
    copy("temperature", "temperature");
    copy("top_p", "topP");
    copy("presence_penalty", "presencePenalty");
    copy("frequency_penalty", "frequencyPenalty");
    copy("seed", "seed");
    // Gemini can answer with several candidates; each becomes a choice.
    copy("n", "candidateCount");
    // `max_completion_tokens` replaced `max_tokens`; the newer one wins.
    copy("max_tokens", "maxOutputTokens");
    copy("max_completion_tokens", "maxOutputTokens");
    match body.get("stop") {
        Some(Value::String(s)) => {
            c.insert("stopSequences".into(), json!([s]));
        }
        Some(Value::Array(list)) if !list.is_empty() => {
            c.insert("stopSequences".into(), Value::Array(list.clone()));
        }
        _ => {}
    }
    if let Some(format) = body.get("response_format") {
        match format.get("type").and_then(Value::as_str) {
            Some("json_object") => {
                c.insert("responseMimeType".into(), json!("application/json"));
            }
            Some("json_schema") => {
                c.insert("responseMimeType".into(), json!("application/json"));
                // JSON Schema as the client wrote it (see `tools` on why
                // not the OpenAPI-subset `responseSchema`).
                if let Some(schema) = format.pointer("/json_schema/schema") {
                    c.insert("responseJsonSchema".into(), schema.clone());
                }
            }
            _ => {}
        }
    }
    if let Some(thinking) = thinking.filter(|t| t.is_object()) {
        c.insert("thinkingConfig".into(), camel_keys(thinking));
    }
    c
}

/// Object keys in `snake_case` → `camelCase`, recursively (Google's
/// OpenAI-compatible extras are snake_case; the native API is camelCase).
fn camel_keys(v: &Value) -> Value {
    match v {
        Value::Object(map) => {
            Value::Object(map.iter().map(|(k, v)| (camel(k), camel_keys(v))).collect())
        }
        Value::Array(items) => Value::Array(items.iter().map(camel_keys).collect()),
        other => other.clone(),
    }
}

fn camel(key: &str) -> String {
    let mut out = String::with_capacity(key.len());
    let mut upper = false;
    for ch in key.chars() {
        if ch == '_' {
            upper = true;
        } else if upper {
            out.extend(ch.to_uppercase());
            upper = false;
        } else {
            out.push(ch);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn translate(body: Value) -> Value {
        generate_content(body.as_object().expect("object"))
    }

    #[test]
    fn system_and_developer_messages_become_the_system_instruction() {
        let g = translate(json!({"messages": [
            {"role": "system", "content": "Be brief."},
            {"role": "developer", "content": [{"type": "text", "text": "Answer in French."}]},
            {"role": "user", "content": "Hi"}
        ]}));
        assert_eq!(
            g["systemInstruction"],
            json!({"parts": [{"text": "Be brief."}, {"text": "Answer in French."}]})
        );
        assert_eq!(
            g["contents"],
            json!([{"role": "user", "parts": [{"text": "Hi"}]}])
        );
        let none = translate(json!({"messages": [{"role": "user", "content": "Hi"}]}));
        assert!(none.get("systemInstruction").is_none());
    }

    #[test]
    fn roles_map_to_user_and_model_and_consecutive_turns_merge() {
        let g = translate(json!({"messages": [
            {"role": "user", "content": "one"},
            {"role": "user", "content": "two"},
            {"role": "assistant", "content": "three"},
            {"role": "assistant", "content": null},
            {"role": "user", "content": ""},
            {"role": "user", "content": "four"}
        ]}));
        assert_eq!(
            g["contents"],
            json!([
                {"role": "user", "parts": [{"text": "one"}, {"text": "two"}]},
                {"role": "model", "parts": [{"text": "three"}]},
                {"role": "user", "parts": [{"text": "four"}]}
            ])
        );
    }

    #[test]
    fn images_become_inline_data_or_file_data() {
        let g = translate(json!({"messages": [{"role": "user", "content": [
            {"type": "text", "text": "What is this?"},
            {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="}},
            {"type": "image_url", "image_url": {"url": "https://example.com/cat.webp?size=large", "detail": "high"}},
            {"type": "image_url", "image_url": {"url": "https://example.com/photo"}},
            {"type": "input_audio", "input_audio": {"data": "UklGRg==", "format": "wav"}},
            {"type": "file", "file": {"file_data": "data:application/pdf;base64,JVBERi0=", "filename": "a.pdf"}}
        ]}]}));
        assert_eq!(
            g["contents"][0]["parts"],
            json!([
                {"text": "What is this?"},
                {"inlineData": {"mimeType": "image/png", "data": "iVBORw0KGgo="}},
                {"fileData": {"mimeType": "image/webp", "fileUri": "https://example.com/cat.webp?size=large"}},
                {"fileData": {"mimeType": "image/jpeg", "fileUri": "https://example.com/photo"}},
                {"inlineData": {"mimeType": "audio/wav", "data": "UklGRg=="}},
                {"inlineData": {"mimeType": "application/pdf", "data": "JVBERi0="}}
            ])
        );
    }

    #[test]
    fn tool_calls_and_tool_results_become_function_parts_by_name() {
        let g = translate(json!({"messages": [
            {"role": "user", "content": "Weather in Paris and Rome?"},
            {"role": "assistant", "content": null, "tool_calls": [
                {"id": "call_0", "type": "function", "function": {"name": "get_weather", "arguments": "{\"city\":\"Paris\"}"},
                 "extra_content": {"google": {"thought_signature": "c2lnLTE="}}},
                {"id": "call_1", "type": "function", "function": {"name": "get_time", "arguments": ""}}
            ]},
            {"role": "tool", "tool_call_id": "call_0", "content": "{\"temp_c\": 21}"},
            {"role": "tool", "tool_call_id": "call_1", "content": "12:00"},
            {"role": "tool", "tool_call_id": "call_9", "name": "lookup", "content": [{"type": "text", "text": "[1,2]"}]}
        ]}));
        assert_eq!(
            g["contents"][1],
            json!({"role": "model", "parts": [
                {"functionCall": {"name": "get_weather", "args": {"city": "Paris"}}, "thoughtSignature": "c2lnLTE="},
                {"functionCall": {"name": "get_time", "args": {}}}
            ]})
        );
        assert_eq!(
            g["contents"][2],
            json!({"role": "user", "parts": [
                {"functionResponse": {"name": "get_weather", "response": {"temp_c": 21}}},
                {"functionResponse": {"name": "get_time", "response": {"result": "12:00"}}},
                {"functionResponse": {"name": "lookup", "response": {"result": [1, 2]}}}
            ]})
        );
        assert_eq!(g["contents"].as_array().map(Vec::len), Some(3));
    }

    #[test]
    fn a_reused_tool_call_id_finds_the_latest_call() {
        let g = translate(json!({"messages": [
            {"role": "assistant", "tool_calls": [{"id": "call_0", "type": "function", "function": {"name": "first", "arguments": "{}"}}]},
            {"role": "tool", "tool_call_id": "call_0", "content": "a"},
            {"role": "assistant", "tool_calls": [{"id": "call_0", "type": "function", "function": {"name": "second", "arguments": "not json"}}]},
            {"role": "tool", "tool_call_id": "call_0", "content": "b"}
        ]}));
        assert_eq!(
            g["contents"][1]["parts"][0]["functionResponse"]["name"],
            "first"
        );
        assert_eq!(
            g["contents"][2]["parts"][0]["functionCall"],
            json!({"name": "second", "args": {"arguments": "not json"}})
        );
        assert_eq!(
            g["contents"][3]["parts"][0]["functionResponse"]["name"],
            "second"
        );
    }

    #[test]
    fn tools_and_tool_choice_translate() {
        let params = json!({"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"], "additionalProperties": false});
        let body = json!({
            "messages": [{"role": "user", "content": "hi"}],
            "tools": [
                {"type": "function", "function": {"name": "get_weather", "description": "Weather now", "parameters": params}},
                {"type": "function", "function": {"name": "ping"}}
            ],
            "tool_choice": "required"
        });
        let g = translate(body.clone());
        assert_eq!(
            g["tools"],
            json!([{"functionDeclarations": [
                {"name": "get_weather", "description": "Weather now", "parametersJsonSchema": params},
                {"name": "ping"}
            ]}])
        );
        assert_eq!(
            g["toolConfig"],
            json!({"functionCallingConfig": {"mode": "ANY"}})
        );
        let mode = |choice: Value| {
            let mut b = body.clone();
            b["tool_choice"] = choice;
            translate(b)["toolConfig"].clone()
        };
        assert_eq!(
            mode(json!("auto")),
            json!({"functionCallingConfig": {"mode": "AUTO"}})
        );
        assert_eq!(
            mode(json!("none")),
            json!({"functionCallingConfig": {"mode": "NONE"}})
        );
        assert_eq!(
            mode(json!({"type": "function", "function": {"name": "ping"}})),
            json!({"functionCallingConfig": {"mode": "ANY", "allowedFunctionNames": ["ping"]}})
        );
        let no_tools = translate(json!({"messages": [], "tools": []}));
        assert!(no_tools.get("tools").is_none() && no_tools.get("toolConfig").is_none());
    }

    #[test]
    fn generation_settings_translate() {
        let g = translate(json!({
            "messages": [{"role": "user", "content": "hi"}],
            "temperature": 0.2, "top_p": 0.9, "max_tokens": 100, "max_completion_tokens": 300,
            "stop": "END", "n": 2, "seed": 42, "presence_penalty": 0.5, "frequency_penalty": 0.1,
            "response_format": {"type": "json_schema", "json_schema": {"name": "x", "strict": true, "schema": {"type": "object"}}},
            "user": "ignored", "stream": true, "stream_options": {"include_usage": true},
            "extra_body": {"google": {
                "thinking_config": {"thinking_budget": 1024, "include_thoughts": true},
                "safety_settings": [{"category": "HARM_CATEGORY_HARASSMENT", "threshold": "BLOCK_ONLY_HIGH"}],
                "cached_content": "cachedContents/abc"
            }}
        }));
        assert_eq!(
            g["generationConfig"],
            json!({
                "temperature": 0.2, "topP": 0.9, "presencePenalty": 0.5, "frequencyPenalty": 0.1,
                "seed": 42, "candidateCount": 2, "maxOutputTokens": 300, "stopSequences": ["END"],
                "responseMimeType": "application/json", "responseJsonSchema": {"type": "object"},
                "thinkingConfig": {"thinkingBudget": 1024, "includeThoughts": true}
            })
        );
        assert_eq!(
            g["safetySettings"],
            json!([{"category": "HARM_CATEGORY_HARASSMENT", "threshold": "BLOCK_ONLY_HIGH"}])
        );
        assert_eq!(g["cachedContent"], "cachedContents/abc");
        for k in ["user", "stream", "stream_options", "extra_body", "model"] {
            assert!(g.get(k).is_none(), "{k} is not a Gemini field");
        }
        let json_mode = translate(
            json!({"messages": [], "response_format": {"type": "json_object"}, "stop": ["a", "b"], "max_tokens": 5}),
        );
        assert_eq!(
            json_mode["generationConfig"],
            json!({"maxOutputTokens": 5, "stopSequences": ["a", "b"], "responseMimeType": "application/json"})
        );
        let plain = translate(json!({"messages": []}));
        assert!(plain.get("generationConfig").is_none());
    }
}
