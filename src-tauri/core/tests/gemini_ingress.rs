//! The Gemini ingress end to end: what Gemini CLI 0.61.0 sends
//! (`tests/agents/fixtures/gemini`), posted to the real gateway in front
//! of mock OpenAI, Anthropic and Gemini upstreams. Assertions are on what
//! a Gemini client sees (events, parts, finish reasons, usage, errors in
//! Gemini's format), on what each upstream received, and on the receipts.

use serde_json::{json, Value};
use switchyard::config::Bucket;
use switchyard::record::RequestStatus;

use crate::gemini::{Gem, GeminiMock};
use crate::helpers::*;
use crate::mock::{status, MockUpstream, Reply, ANSWER};
use crate::mock_anthropic::MockAnthropic;

const CHANNEL_KEY: &str = "AIzaSyTEST-channel-0123456789";

/// The body of one captured Gemini CLI request.
fn cli_request(name: &str) -> Value {
    let path = format!(
        "{}/../../tests/agents/fixtures/gemini/{name}",
        env!("CARGO_MANIFEST_DIR")
    );
    let text = std::fs::read_to_string(&path).expect("fixture");
    let v: Value = serde_json::from_str(&text).expect("fixture JSON");
    v["request"]["body"].clone()
}

const PLAIN: &str = "01-plain-streamGenerateContent.json";
const TOOL_FIRST: &str = "02-tool-streamGenerateContent.json";
const TOOL_RESULT: &str = "03-tool-streamGenerateContent.json";
const ROUTING: &str = "05-default-model-generateContent.json";

fn stream_path(model: &str) -> String {
    format!("/v1beta/models/{model}:streamGenerateContent?alt=sse")
}

fn whole_path(model: &str) -> String {
    format!("/v1beta/models/{model}:generateContent")
}

/// A POST as Gemini CLI makes it: the key in `x-goog-api-key`.
async fn post(app: &TestApp, path: &str, body: &Value) -> reqwest::Response {
    app.http
        .post(app.url(path))
        .header("x-goog-api-key", &app.key)
        .header(
            "x-goog-api-client",
            "google-genai-sdk/1.30.0 gl-node/v20.20.2",
        )
        .json(body)
        .send()
        .await
        .expect("gateway reachable")
}

/// The JSON of each `data:` event of a Gemini stream, and of an error
/// sent bare after them, as Gemini does (its SDK throws it).
async fn gemini_events(resp: reqwest::Response) -> Vec<Value> {
    let text = tokio::time::timeout(std::time::Duration::from_secs(30), resp.text())
        .await
        .expect("stream ends")
        .expect("body");
    text.split("\n\n")
        .map(str::trim)
        .filter(|b| !b.is_empty())
        .map(|b| {
            let json = b.strip_prefix("data: ").unwrap_or_else(|| {
                assert!(
                    b.starts_with("{\"error\""),
                    "only an error is sent bare: {b}"
                );
                b
            });
            serde_json::from_str(json).expect("every event is JSON")
        })
        .collect()
}

fn parts(events: &[Value]) -> Vec<Value> {
    events
        .iter()
        .filter_map(|e| e.pointer("/candidates/0/content/parts"))
        .filter_map(Value::as_array)
        .flatten()
        .cloned()
        .collect()
}

/// The answer's text (thoughts left out).
fn text(events: &[Value]) -> String {
    parts(events)
        .iter()
        .filter(|p| p.get("thought").is_none())
        .filter_map(|p| p["text"].as_str())
        .collect()
}

/// Routes for the models Gemini CLI asks for, on one OpenAI-style channel.
fn openai_config(mock: &MockUpstream) -> String {
    format!(
        r#"
[[channels]]
id = "oa"
type = "openai-compatible"
base_url = "{}"
bucket = "credit"
secret = "none"

[[routes]]
model = "gemini-2.5-flash"
targets = [{{ channel = "oa", model = "up-a" }}]

[[routes]]
model = "gemini-3.5-flash-lite"
targets = [{{ channel = "oa", model = "up-lite" }}]
"#,
        mock.url()
    )
}

#[tokio::test]
async fn gemini_cli_stream_over_an_openai_upstream_ends_with_finish_reason_and_usage() {
    let mock = MockUpstream::start().await;
    let app = spawn_app(&openai_config(&mock)).await;
    let resp = post(&app, &stream_path("gemini-2.5-flash"), &cli_request(PLAIN)).await;
    assert_eq!(resp.status(), 200);
    assert!(header(&resp, "content-type").starts_with("text/event-stream"));
    assert_eq!(header(&resp, "x-switchyard-route"), "gemini-2.5-flash");
    assert_eq!(header(&resp, "x-switchyard-channel"), "oa");
    assert_eq!(header(&resp, "x-switchyard-bucket"), "credit");
    assert_eq!(header(&resp, "x-switchyard-attempts"), "1");
    let request_id = header(&resp, "x-switchyard-request-id").to_string();
    let events = gemini_events(resp).await;
    assert_eq!(text(&events), ANSWER);
    let last = events.last().expect("events");
    assert_eq!(last["candidates"][0]["finishReason"], "STOP");
    assert!(
        events[..events.len() - 1]
            .iter()
            .all(|e| e["candidates"][0].get("finishReason").is_none()),
        "only the last event finishes"
    );
    assert_eq!(last["usageMetadata"]["promptTokenCount"], 12);
    assert_eq!(last["usageMetadata"]["candidatesTokenCount"], 3);
    assert_eq!(last["usageMetadata"]["totalTokenCount"], 15);
    assert_eq!(last["modelVersion"], "up-a");
    assert!(events
        .iter()
        .all(|e| e["candidates"][0]["content"]["role"] == "model"));

    // What the OpenAI upstream got: the canonical translation.
    let sent = &mock.bodies()[0];
    assert_eq!(sent["model"], "up-a");
    assert_eq!(sent["stream"], true);
    assert_eq!(sent["messages"][0]["role"], "system");
    let roles: Vec<&str> = sent["messages"]
        .as_array()
        .expect("messages")
        .iter()
        .filter_map(|m| m["role"].as_str())
        .collect();
    assert_eq!(roles[0], "system");
    assert!(roles[1..].iter().all(|r| *r == "user"), "{roles:?}");
    assert_eq!(sent["tools"].as_array().map(Vec::len), Some(8));
    assert_eq!(sent["reasoning_effort"], "medium", "thinkingBudget 8192");
    assert!(sent.get("generationConfig").is_none() && sent.get("contents").is_none());

    let rec = app.only_record().await;
    assert_eq!(rec.request_id, request_id);
    assert_eq!(rec.status, RequestStatus::Ok);
    assert_eq!(rec.route, "gemini-2.5-flash");
    assert!(rec.stream);
    assert!(!rec.usage_estimated);
    let usage = rec.usage.expect("usage");
    assert_eq!((usage.input, usage.output), (12, 3));
}

#[tokio::test]
async fn the_routing_call_gets_its_json_schema_and_a_whole_gemini_answer() {
    let mock = MockUpstream::start().await;
    let app = spawn_app(&openai_config(&mock)).await;
    let resp = post(
        &app,
        &whole_path("gemini-3.5-flash-lite"),
        &cli_request(ROUTING),
    )
    .await;
    assert_eq!(resp.status(), 200);
    assert_eq!(header(&resp, "x-switchyard-route"), "gemini-3.5-flash-lite");
    let b: Value = resp.json().await.expect("json");
    let c = &b["candidates"][0];
    assert_eq!(c["content"]["role"], "model");
    assert_eq!(c["content"]["parts"][0]["text"], ANSWER);
    assert_eq!(c["finishReason"], "STOP");
    assert_eq!(b["modelVersion"], "up-lite");
    assert!(b["responseId"].as_str().is_some_and(|s| !s.is_empty()));
    let u = &b["usageMetadata"];
    assert_eq!(u["promptTokenCount"], 12);
    assert_eq!(u["cachedContentTokenCount"], 4);
    assert_eq!(u["candidatesTokenCount"], 3, "reasoning is reported apart");
    assert_eq!(u["thoughtsTokenCount"], 2);
    assert_eq!(u["totalTokenCount"], 17);

    let sent = &mock.bodies()[0];
    assert_eq!(sent["model"], "up-lite");
    assert_eq!(sent["stream"], false);
    let format = &sent["response_format"];
    assert_eq!(format["type"], "json_schema");
    assert_eq!(format["json_schema"]["schema"]["type"], "object");
    assert_eq!(
        format["json_schema"]["schema"]["properties"]["complexity_score"]["type"],
        "integer"
    );
    assert_eq!(sent["reasoning_effort"], "high", "thinkingLevel HIGH");

    let rec = app.only_record().await;
    let usage = rec.usage.expect("usage");
    assert_eq!(
        (
            usage.input,
            usage.cached_input,
            usage.output,
            usage.reasoning
        ),
        (8, 4, 3, 2)
    );
}

#[tokio::test]
async fn the_key_may_come_as_query_or_bearer_and_a_missing_key_is_unauthenticated() {
    let mock = MockUpstream::start().await;
    let app = spawn_app(&openai_config(&mock)).await;
    let body = cli_request(ROUTING);

    let by_query = app
        .http
        .post(app.url(&format!(
            "{}?key={}",
            whole_path("gemini-3.5-flash-lite"),
            app.key
        )))
        .json(&body)
        .send()
        .await
        .expect("reachable");
    assert_eq!(by_query.status(), 200);

    let by_bearer = app
        .http
        .post(app.url(&whole_path("gemini-3.5-flash-lite")))
        .bearer_auth(&app.key)
        .json(&body)
        .send()
        .await
        .expect("reachable");
    assert_eq!(by_bearer.status(), 200);

    let none = app
        .http
        .post(app.url(&whole_path("gemini-3.5-flash-lite")))
        .json(&body)
        .send()
        .await
        .expect("reachable");
    assert_eq!(none.status(), 401);
    let e: Value = none.json().await.expect("json");
    assert_eq!(e["error"]["code"], 401);
    assert_eq!(e["error"]["status"], "UNAUTHENTICATED");
    assert!(e["error"]["message"]
        .as_str()
        .is_some_and(|m| m.contains("x-goog-api-key")));

    let wrong = app
        .http
        .post(app.url(&format!(
            "{}?key=sy-wrong",
            whole_path("gemini-3.5-flash-lite")
        )))
        .json(&body)
        .send()
        .await
        .expect("reachable");
    assert_eq!(wrong.status(), 401);
    assert_eq!(mock.hits(), 2, "refused requests reach no upstream");

    // The refusals are receipts, and none holds the key that was sent.
    app.records(4).await;
    app.flush().await;
    let db = app.db();
    let mut stmt = db.prepare("SELECT * FROM receipts").expect("receipts");
    let cols = stmt.column_count();
    let rows: Vec<String> = stmt
        .query_map([], |r| {
            Ok((0..cols)
                .map(|i| format!("{:?}", r.get::<_, rusqlite::types::Value>(i).ok()))
                .collect::<Vec<_>>()
                .join("|"))
        })
        .expect("rows")
        .map(|r| r.expect("row"))
        .collect();
    assert!(rows.len() >= 4);
    assert!(rows
        .iter()
        .all(|r| !r.contains(&app.key) && !r.contains("sy-wrong")));
}

#[tokio::test]
async fn tool_calls_round_trip_over_anthropic_with_thoughts_and_cache_usage() {
    let claude = MockAnthropic::start().await;
    let config = format!(
        r#"
[[channels]]
id = "claude"
type = "anthropic"
base_url = "{}"
bucket = "credit"
secret = "none"

[[routes]]
model = "gemini-2.5-flash"
targets = [{{ channel = "claude", model = "claude-sonnet-4-5" }}]
"#,
        claude.url()
    );
    let app = spawn_app(&config).await;
    app.topup(Bucket::Credit, 10_000_000).await;

    // The first turn: the model thinks, says a little and calls tools.
    let resp = post(
        &app,
        &stream_path("gemini-2.5-flash"),
        &cli_request(TOOL_FIRST),
    )
    .await;
    assert_eq!(resp.status(), 200);
    assert_eq!(header(&resp, "x-switchyard-channel"), "claude");
    let events = gemini_events(resp).await;
    let all = parts(&events);
    let thoughts: String = all
        .iter()
        .filter(|p| p["thought"] == true)
        .filter_map(|p| p["text"].as_str())
        .collect();
    assert!(
        thoughts.starts_with("The user wants the weather"),
        "{thoughts}"
    );
    assert_eq!(text(&events), "Let me check both cities.");
    let calls: Vec<&Value> = all.iter().filter_map(|p| p.get("functionCall")).collect();
    assert!(!calls.is_empty());
    assert_eq!(calls[0]["name"], "get_weather");
    assert!(calls[0]["id"]
        .as_str()
        .is_some_and(|i| i.starts_with("toolu_")));
    assert!(
        calls[0]["args"].is_object() && calls[0]["args"].as_object().is_some_and(|a| !a.is_empty())
    );
    let last = events.last().expect("events");
    assert_eq!(last["candidates"][0]["finishReason"], "STOP");
    assert!(last["candidates"][0]["content"]["parts"]
        .as_array()
        .is_some_and(|p| p.iter().any(|p| p.get("functionCall").is_some())));
    let u = &last["usageMetadata"];
    assert_eq!(u["cachedContentTokenCount"], 3000);
    assert_eq!(u["promptTokenCount"], 25 + 3000 + 1200);

    let rec = app.only_record().await;
    let usage = rec.usage.expect("usage");
    assert_eq!(usage.cached_input, 3000);
    assert_eq!(usage.cache_write, 1200);
    assert_eq!(usage.input, 25);

    // The second turn sends the call and its result back.
    let resp = post(
        &app,
        &stream_path("gemini-2.5-flash"),
        &cli_request(TOOL_RESULT),
    )
    .await;
    assert_eq!(resp.status(), 200);
    let _ = gemini_events(resp).await;
    let got = &claude.received()[1].body;
    let msgs = got["messages"].as_array().expect("messages");
    let tool_use = msgs
        .iter()
        .flat_map(|m| m["content"].as_array().cloned().unwrap_or_default())
        .find(|b| b["type"] == "tool_use")
        .expect("the call goes back as tool_use");
    assert_eq!(tool_use["id"], "read_file_1796299340666_0");
    assert_eq!(tool_use["name"], "read_file");
    assert_eq!(tool_use["input"]["file_path"], "<WORKDIR>/notes.txt");
    let result = msgs
        .iter()
        .flat_map(|m| m["content"].as_array().cloned().unwrap_or_default())
        .find(|b| b["type"] == "tool_result")
        .expect("the result goes back as tool_result");
    assert_eq!(result["tool_use_id"], "read_file_1796299340666_0");
    let content = result["content"].to_string();
    assert!(content.contains("pineapple-42"), "{content}");
    assert!(got["system"].to_string().contains("CLI"));
}

/// Route `switchyard-route` → `gemini-2.5-flash` on a Gemini channel.
fn native_config(gem: &GeminiMock) -> String {
    format!(
        r#"[server]
listen = "127.0.0.1:0"

[[channels]]
id = "gem"
type = "gemini"
base_url = "{}"
bucket = "credit"

[[routes]]
model = "switchyard-route"
targets = [{{ channel = "gem", model = "gemini-2.5-flash" }}]
"#,
        gem.url()
    )
}

async fn native_app(gem: &GeminiMock) -> TestApp {
    let app = spawn_app_with(&native_config(gem), &[("gem", CHANNEL_KEY)]).await;
    app.topup(Bucket::Credit, 10_000_000).await;
    app
}

#[tokio::test]
async fn a_gemini_channel_gets_the_clients_request_as_sent_and_relays_its_stream() {
    let gem = GeminiMock::start().await;
    let app = native_app(&gem).await;
    let body = cli_request(TOOL_RESULT);
    let resp = post(&app, &stream_path("switchyard-route"), &body).await;
    assert_eq!(resp.status(), 200);
    assert_eq!(header(&resp, "x-switchyard-channel"), "gem");
    let events = gemini_events(resp).await;

    let seen = gem.seen();
    assert_eq!(seen.len(), 1);
    assert_eq!(
        seen[0].uri, "/v1beta/models/gemini-2.5-flash:streamGenerateContent?alt=sse",
        "the route's target model, in the URL"
    );
    assert_eq!(seen[0].api_key.as_deref(), Some(CHANNEL_KEY));
    assert_eq!(seen[0].body, body, "the body exactly as the client sent it");
    assert_eq!(
        seen[0].body["contents"][1]["parts"][0]["thoughtSignature"],
        "skip_thought_signature_validator"
    );

    // Gemini's own events, unchanged: thought, text, a call with its
    // signature, and the finish.
    assert_eq!(events.len(), 4);
    assert_eq!(
        events[0]["candidates"][0]["content"]["parts"][0]["thought"],
        true
    );
    assert_eq!(events[0]["responseId"], "strmaLmkHPPlz7IPvtfUqQ4");
    let call = &events[3]["candidates"][0]["content"]["parts"][0];
    assert_eq!(call["functionCall"]["name"], "get_weather");
    assert_eq!(call["thoughtSignature"], "CiQB0e2Kc2lnLTI=");
    assert_eq!(events[3]["candidates"][0]["finishReason"], "STOP");

    let rec = app.only_record().await;
    assert_eq!(rec.status, RequestStatus::Ok);
    assert_eq!(rec.answered_model.as_deref(), Some("gemini-2.5-flash"));
    let usage = rec.usage.expect("usage");
    assert_eq!(usage.cached_input, 1000);
    assert_eq!(usage.input, 200);
    assert_eq!(usage.output, 20);
    assert_eq!(usage.reasoning, 30);
}

#[tokio::test]
async fn a_gemini_channel_answers_generate_content_as_gemini_did_and_its_errors_keep_their_meaning()
{
    let gem = GeminiMock::start().await;
    let app = native_app(&gem).await;
    let body = cli_request(ROUTING);
    let resp = post(&app, &whole_path("switchyard-route"), &body).await;
    assert_eq!(resp.status(), 200);
    let b: Value = resp.json().await.expect("json");
    let fixture: Value = serde_json::from_str(include_str!(
        "fixtures/gemini/generate_content_response.json"
    ))
    .expect("fixture");
    assert_eq!(b, fixture, "Gemini's answer unchanged");
    assert_eq!(
        gem.seen()[0].uri,
        "/v1beta/models/gemini-2.5-flash:generateContent"
    );
    assert_eq!(gem.seen()[0].body, body);

    // An ordinary 400 from Gemini: relayed in Gemini's format, no retry.
    gem.push([Gem::Status(
        400,
        include_str!("fixtures/gemini/error_400_invalid_argument.json"),
    )]);
    let resp = post(&app, &whole_path("switchyard-route"), &body).await;
    assert_eq!(resp.status(), 400);
    let e: Value = resp.json().await.expect("json");
    assert_eq!(e["error"]["code"], 400);
    assert_eq!(e["error"]["status"], "INVALID_ARGUMENT");
    let fixture: Value = serde_json::from_str(include_str!(
        "fixtures/gemini/error_400_invalid_argument.json"
    ))
    .expect("fixture");
    assert_eq!(
        e["error"]["message"].as_str().map(str::trim_end),
        fixture["error"]["message"].as_str().map(str::trim_end)
    );
    assert_eq!(gem.hits(), 2);
}

#[tokio::test]
async fn failover_before_the_first_token_reaches_the_backup() {
    let primary = MockUpstream::start().await;
    let backup = MockUpstream::start().await;
    primary.set_default(status(500));
    let config = format!(
        r#"
[[channels]]
id = "primary"
type = "openai-compatible"
base_url = "{}"
bucket = "credit"
secret = "none"

[[channels]]
id = "backup"
type = "openai-compatible"
base_url = "{}"
bucket = "credit"
secret = "none"

[[routes]]
model = "gemini-2.5-flash"
targets = [{{ channel = "primary", model = "up-a" }}, {{ channel = "backup", model = "up-b" }}]
"#,
        primary.url(),
        backup.url()
    );
    let app = spawn_app(&config).await;
    let resp = post(&app, &stream_path("gemini-2.5-flash"), &cli_request(PLAIN)).await;
    assert_eq!(resp.status(), 200);
    assert_eq!(header(&resp, "x-switchyard-channel"), "backup");
    let attempts: u32 = header(&resp, "x-switchyard-attempts").parse().expect("n");
    assert!(attempts >= 2, "{attempts}");
    let events = gemini_events(resp).await;
    assert_eq!(text(&events), ANSWER);
    assert_eq!(
        events.last().expect("events")["candidates"][0]["finishReason"],
        "STOP"
    );
    assert!(primary.hits() >= 1);
    let rec = app.only_record().await;
    assert_eq!(rec.served_by.expect("served").channel, "backup");
}

#[tokio::test]
async fn a_stream_cut_after_the_first_token_ends_with_an_error_event_not_a_finish() {
    let mock = MockUpstream::start().await;
    mock.set_default(Reply::CutAfter(1));
    let app = spawn_app(&openai_config(&mock)).await;
    let resp = post(&app, &stream_path("gemini-2.5-flash"), &cli_request(PLAIN)).await;
    assert_eq!(resp.status(), 200);
    let events = gemini_events(resp).await;
    assert_eq!(text(&events), "Hello");
    let last = events.last().expect("events");
    assert!(last["error"]["message"].is_string(), "{last}");
    assert_eq!(last["error"]["status"], "INTERNAL");
    assert!(
        events
            .iter()
            .all(|e| e["candidates"][0].get("finishReason").is_none()),
        "a cut answer is never presented as whole"
    );
    let rec = app.only_record().await;
    assert_ne!(rec.status, RequestStatus::Ok);
}

#[tokio::test]
async fn refusals_are_in_geminis_format_with_a_receipt() {
    let mock = MockUpstream::start().await;
    let app = spawn_app(&openai_config(&mock)).await;
    let body = cli_request(PLAIN);

    let resp = post(&app, &stream_path("no-such-route"), &body).await;
    assert_eq!(resp.status(), 404);
    assert!(!header(&resp, "x-switchyard-request-id").is_empty());
    let e: Value = resp.json().await.expect("json");
    assert_eq!(e["error"]["code"], 404);
    assert_eq!(e["error"]["status"], "NOT_FOUND");
    assert!(e["error"]["message"]
        .as_str()
        .is_some_and(|m| m.contains("no-such-route")));

    let resp = app
        .http
        .post(app.url("/v1beta/models/gemini-2.5-flash:streamGenerateContent"))
        .header("x-goog-api-key", &app.key)
        .json(&body)
        .send()
        .await
        .expect("reachable");
    assert_eq!(resp.status(), 400, "a stream needs alt=sse");
    let e: Value = resp.json().await.expect("json");
    assert_eq!(e["error"]["status"], "INVALID_ARGUMENT");
    assert!(e["error"]["message"]
        .as_str()
        .is_some_and(|m| m.contains("alt=sse")));

    let resp = post(
        &app,
        &whole_path("gemini-2.5-flash"),
        &json!({"contents": []}),
    )
    .await;
    assert_eq!(resp.status(), 400);
    let e: Value = resp.json().await.expect("json");
    assert_eq!(e["error"]["status"], "INVALID_ARGUMENT");

    let resp = post(&app, "/v1beta/models/gemini-2.5-flash:embedText", &body).await;
    assert_eq!(resp.status(), 404);
    let e: Value = resp.json().await.expect("json");
    assert_eq!(e["error"]["status"], "NOT_FOUND");
    assert!(e["error"]["message"]
        .as_str()
        .is_some_and(|m| m.contains("/v1beta/models/{model}:generateContent")));

    app.state().set_paused(true);
    let resp = post(&app, &stream_path("gemini-2.5-flash"), &body).await;
    assert_eq!(resp.status(), 503);
    let e: Value = resp.json().await.expect("json");
    assert_eq!(e["error"]["status"], "UNAVAILABLE");
    app.state().set_paused(false);

    assert_eq!(mock.hits(), 0);
    let recs = app.records(4).await;
    assert!(recs.iter().all(|r| r.status == RequestStatus::Refused));
    assert!(recs.iter().any(|r| r.requested_model == "no-such-route"));
}

#[tokio::test]
async fn an_empty_balance_is_refused_in_geminis_format_before_any_upstream_call() {
    let claude = MockAnthropic::start().await;
    let config = format!(
        r#"
[[channels]]
id = "claude"
type = "anthropic"
base_url = "{}"
bucket = "credit"
secret = "none"

[[routes]]
model = "gemini-2.5-flash"
targets = [{{ channel = "claude", model = "claude-sonnet-4-5" }}]
"#,
        claude.url()
    );
    // Credit is never topped up.
    let app = spawn_app(&config).await;
    let resp = post(&app, &stream_path("gemini-2.5-flash"), &cli_request(PLAIN)).await;
    assert_eq!(resp.status(), 402);
    assert_eq!(header(&resp, "x-switchyard-bucket"), "credit");
    let e: Value = resp.json().await.expect("json");
    assert_eq!(e["error"]["code"], 402);
    assert_eq!(e["error"]["status"], "FAILED_PRECONDITION");
    assert!(e["error"]["message"]
        .as_str()
        .is_some_and(|m| !m.is_empty()));
    assert_eq!(claude.hits(), 0);
}

#[tokio::test]
async fn count_tokens_and_the_model_list_answer_in_geminis_shapes() {
    let mock = MockUpstream::start().await;
    let app = spawn_app(&openai_config(&mock)).await;
    let body = cli_request(PLAIN);
    let contents = json!({"contents": body["contents"]});
    let resp = post(
        &app,
        "/v1beta/models/gemini-2.5-flash:countTokens",
        &contents,
    )
    .await;
    assert_eq!(resp.status(), 200);
    let n: Value = resp.json().await.expect("json");
    assert!(n["totalTokens"].as_u64().is_some_and(|t| t > 100), "{n}");
    let wrapped = json!({"generateContentRequest": body});
    let resp = post(
        &app,
        "/v1beta/models/gemini-2.5-flash:countTokens",
        &wrapped,
    )
    .await;
    let m: Value = resp.json().await.expect("json");
    assert!(
        m["totalTokens"].as_u64() > n["totalTokens"].as_u64(),
        "tools and system count"
    );
    let resp = post(&app, "/v1beta/models/nope:countTokens", &contents).await;
    assert_eq!(resp.status(), 404);

    let list: Value = app
        .http
        .get(app.url("/v1beta/models"))
        .header("x-goog-api-key", &app.key)
        .send()
        .await
        .expect("reachable")
        .json()
        .await
        .expect("json");
    let names: Vec<&str> = list["models"]
        .as_array()
        .expect("models")
        .iter()
        .filter_map(|m| m["name"].as_str())
        .collect();
    assert!(names.contains(&"models/gemini-2.5-flash"), "{names:?}");
    assert!(names.contains(&"models/gemini-3.5-flash-lite"));
    assert!(list["models"][0]["supportedGenerationMethods"]
        .as_array()
        .is_some_and(|m| m.contains(&json!("streamGenerateContent"))));

    let one = app
        .http
        .get(app.url("/v1beta/models/gemini-2.5-flash"))
        .header("x-goog-api-key", &app.key)
        .send()
        .await
        .expect("reachable");
    assert_eq!(one.status(), 200);
    let one: Value = one.json().await.expect("json");
    assert_eq!(one["name"], "models/gemini-2.5-flash");

    let unauth = app
        .http
        .get(app.url("/v1beta/models"))
        .send()
        .await
        .expect("reachable");
    assert_eq!(unauth.status(), 401);
    let e: Value = unauth.json().await.expect("json");
    assert_eq!(e["error"]["status"], "UNAUTHENTICATED");
    assert_eq!(mock.hits(), 0);
}
