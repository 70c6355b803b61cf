//! The Anthropic-compatible ingress: `/v1/messages` (whole and streamed),
//! `count_tokens`, the Anthropic model list and error format, over any
//! upstream type (here an OpenAI-format one).

use serde_json::{json, Value};

use crate::helpers::*;
use crate::mock::*;

fn ask(stream: bool) -> Value {
    json!({
        "model": "gpt-test",
        "max_tokens": 256,
        "system": "Be brief.",
        "messages": [{"role": "user", "content": "Say hello"}],
        "stream": stream
    })
}

async fn post(app: &TestApp, path: &str, body: Value, key: &str) -> reqwest::Response {
    app.http
        .post(app.url(path))
        .header("x-api-key", key)
        .header("anthropic-version", "2023-06-01")
        .json(&body)
        .send()
        .await
        .expect("sent")
}

/// `(event name, data)` pairs of an Anthropic SSE stream.
async fn events(resp: reqwest::Response) -> Vec<(String, Value)> {
    let text = resp.text().await.expect("body");
    text.split("\n\n")
        .filter(|b| !b.trim().is_empty())
        .map(|block| {
            let mut name = String::new();
            let mut data = Value::Null;
            for line in block.lines() {
                if let Some(n) = line.strip_prefix("event: ") {
                    name = n.to_string();
                } else if let Some(d) = line.strip_prefix("data: ") {
                    data = serde_json::from_str(d).expect("event data is JSON");
                }
            }
            assert_eq!(
                data["type"],
                name.as_str(),
                "data.type matches the event name"
            );
            (name, data)
        })
        .collect()
}

#[tokio::test]
async fn messages_answer_is_an_anthropic_message_with_exact_usage() {
    let mock = MockUpstream::start().await;
    let app = spawn_app(&one_target(&mock, "")).await;
    let resp = post(&app, "/v1/messages", ask(false), &app.key).await;
    assert_eq!(resp.status(), 200);
    assert_eq!(header(&resp, "x-switchyard-channel"), "only");
    let m: Value = resp.json().await.expect("json");
    assert_eq!(m["type"], "message");
    assert_eq!(m["role"], "assistant");
    assert_eq!(m["model"], "up-a");
    assert!(m["id"].as_str().is_some_and(|id| id.starts_with("msg_")));
    assert_eq!(m["content"], json!([{"type": "text", "text": ANSWER}]));
    assert_eq!(m["stop_reason"], "end_turn");
    // Upstream: 12 prompt (4 cached), 5 completion (2 reasoning).
    assert_eq!(
        m["usage"],
        json!({"input_tokens": 8, "output_tokens": 5, "cache_read_input_tokens": 4, "cache_creation_input_tokens": 0})
    );
    // The upstream got the canonical chat request.
    let sent = &mock.bodies()[0];
    assert_eq!(
        sent["messages"][0],
        json!({"role": "system", "content": "Be brief."})
    );
    assert_eq!(sent["max_tokens"], 256);
    assert_eq!(sent["model"], "up-a");
}

#[tokio::test]
async fn messages_stream_is_anthropics_exact_event_sequence() {
    let mock = MockUpstream::start().await;
    let app = spawn_app(&one_target(&mock, "")).await;
    let resp = post(&app, "/v1/messages", ask(true), &app.key).await;
    assert_eq!(resp.status(), 200);
    assert_eq!(header(&resp, "content-type"), "text/event-stream");
    let ev = events(resp).await;
    let names: Vec<&str> = ev.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(
        names,
        vec![
            "message_start",
            "content_block_start",
            "content_block_delta",
            "content_block_delta",
            "content_block_delta",
            "content_block_stop",
            "message_delta",
            "message_stop"
        ]
    );
    assert_eq!(ev[0].1["message"]["model"], "up-a");
    let text: String = ev
        .iter()
        .filter_map(|(_, d)| d.pointer("/delta/text").and_then(|t| t.as_str()))
        .collect();
    assert_eq!(text, ANSWER);
    assert_eq!(ev[6].1["delta"]["stop_reason"], "end_turn");
    assert_eq!(ev[6].1["usage"]["output_tokens"], 3);
    assert_eq!(ev[6].1["usage"]["input_tokens"], 12);
    let rec = app.only_record().await;
    assert_eq!(rec.usage.map(|u| u.total()), Some(15));
}

#[tokio::test]
async fn messages_stream_cut_ends_with_an_anthropic_error_event() {
    let mock = MockUpstream::start().await;
    mock.set_default(Reply::CutAfter(2));
    let app = spawn_app(&one_target(&mock, "")).await;
    let ev = events(post(&app, "/v1/messages", ask(true), &app.key).await).await;
    let last = ev.last().expect("events");
    assert_eq!(last.0, "error");
    assert_eq!(last.1["error"]["type"], "api_error");
    assert!(
        ev.iter().all(|(n, _)| n != "message_stop"),
        "never a normal finish"
    );
}

#[tokio::test]
async fn messages_errors_use_anthropics_error_format() {
    let mock = MockUpstream::start().await;
    let app = spawn_app(&one_target(&mock, "")).await;
    let mut no_max = ask(false);
    no_max.as_object_mut().expect("obj").remove("max_tokens");
    let mut unknown = ask(false);
    unknown["model"] = json!("claude-nope");
    for (body, key, status, kind) in [
        (no_max, app.key.clone(), 400, "invalid_request_error"),
        (
            ask(false),
            "sy-wrong".to_string(),
            401,
            "authentication_error",
        ),
        (unknown, app.key.clone(), 404, "not_found_error"),
    ] {
        let resp = post(&app, "/v1/messages", body, &key).await;
        assert_eq!(resp.status(), status);
        let e: Value = resp.json().await.expect("json");
        assert_eq!(e["type"], "error");
        assert_eq!(e["error"]["type"], kind, "{e}");
        assert!(e["error"]["message"]
            .as_str()
            .is_some_and(|m| !m.is_empty()));
    }
    mock.set_default(Reply::Status {
        status: 400,
        body: openai_error(
            "Your request was rejected by the safety system.",
            "invalid_request_error",
            Some("content_policy_violation"),
        ),
        headers: Vec::new(),
    });
    let resp = post(&app, "/v1/messages", ask(false), &app.key).await;
    assert_eq!(resp.status(), 400);
    let e: Value = resp.json().await.expect("json");
    assert_eq!(
        e["error"]["message"],
        "Your request was rejected by the safety system."
    );
}

#[tokio::test]
async fn tool_use_round_trips_through_messages() {
    let mock = MockUpstream::start().await;
    let app = spawn_app(&one_target(&mock, "")).await;
    let body = json!({
        "model": "gpt-test",
        "max_tokens": 100,
        "tools": [{"name": "weather", "description": "Weather", "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}}}],
        "tool_choice": {"type": "tool", "name": "weather"},
        "messages": [
            {"role": "user", "content": "Weather in Paris?"},
            {"role": "assistant", "content": [{"type": "tool_use", "id": "toolu_1", "name": "weather", "input": {"city": "Paris"}}]},
            {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "toolu_1", "content": "Sunny"}]}
        ]
    });
    assert_eq!(
        post(&app, "/v1/messages", body, &app.key).await.status(),
        200
    );
    let sent = &mock.bodies()[0];
    assert_eq!(sent["tools"][0]["function"]["name"], "weather");
    assert_eq!(
        sent["tool_choice"],
        json!({"type": "function", "function": {"name": "weather"}})
    );
    assert_eq!(sent["messages"][1]["tool_calls"][0]["id"], "toolu_1");
    assert_eq!(
        sent["messages"][2],
        json!({"role": "tool", "tool_call_id": "toolu_1", "content": "Sunny"})
    );
}

#[tokio::test]
async fn count_tokens_estimates_and_models_list_speaks_anthropic() {
    let mock = MockUpstream::start().await;
    let app = spawn_app(&one_target(&mock, "")).await;
    let resp = post(
        &app,
        "/v1/messages/count_tokens",
        json!({"model": "gpt-test", "messages": [{"role": "user", "content": "x".repeat(400)}]}),
        &app.key,
    )
    .await;
    assert_eq!(resp.status(), 200);
    let v: Value = resp.json().await.expect("json");
    assert_eq!(v, json!({"input_tokens": 100}));
    assert_eq!(mock.hits(), 0, "counting calls no upstream");

    let list: Value = app
        .http
        .get(app.url("/v1/models"))
        .header("x-api-key", &app.key)
        .header("anthropic-version", "2023-06-01")
        .send()
        .await
        .expect("sent")
        .json()
        .await
        .expect("json");
    assert_eq!(list["data"][0]["type"], "model");
    assert_eq!(list["data"][0]["id"], "gpt-test");
    assert_eq!(list["has_more"], false);
    assert_eq!(list["first_id"], "gpt-test");
}

fn anthropic_config(mock: &crate::mock_anthropic::MockAnthropic) -> String {
    format!(
        r#"
[[channels]]
id = "claude"
type = "anthropic"
base_url = "{}"
bucket = "credit"
secret = "none"

[[routes]]
model = "claude-test"
targets = [{{ channel = "claude", model = "claude-sonnet-4-5" }}]
"#,
        mock.url()
    )
}

#[tokio::test]
async fn anthropic_client_to_anthropic_upstream_passes_through_unchanged() {
    use crate::mock_anthropic::{MockAnthropic, Reply as AReply, MESSAGE};
    let mock = MockAnthropic::start().await;
    mock.set_default(AReply::Json(MESSAGE));
    let app = spawn_app(&anthropic_config(&mock)).await;
    app.topup(switchyard::config::Bucket::Credit, 10_000_000)
        .await;
    let request = json!({
        "model": "claude-test",
        "max_tokens": 300,
        "system": [{"type": "text", "text": "Long, cached instructions.", "cache_control": {"type": "ephemeral"}}],
        "messages": [{"role": "user", "content": [{"type": "text", "text": "Hi"}]}],
        "top_k": 5,
        "metadata": {"user_id": "u-1"}
    });
    let resp = app
        .http
        .post(app.url("/v1/messages"))
        .header("x-api-key", &app.key)
        .header("anthropic-version", "2023-06-01")
        .header("anthropic-beta", "context-1m-2025-08-07")
        .json(&request)
        .send()
        .await
        .expect("sent");
    assert_eq!(resp.status(), 200);
    assert_eq!(
        mock.received()[0].header("anthropic-beta"),
        Some("context-1m-2025-08-07"),
        "beta features the client turned on stay on"
    );
    let got: Value = resp.json().await.expect("json");
    let upstream: Value = serde_json::from_str(MESSAGE).expect("fixture");
    assert_eq!(got, upstream, "the upstream's message, as it sent it");
    let mut expected = request;
    expected["model"] = json!("claude-sonnet-4-5");
    assert_eq!(
        mock.received()[0].body,
        expected,
        "the client's request, only the model replaced"
    );
    let rec = app.only_record().await;
    assert!(rec.usage.is_some_and(|u| u.total() > 0) && !rec.usage_estimated);
}

#[tokio::test]
async fn anthropic_stream_to_anthropic_upstream_relays_the_upstream_events() {
    use crate::mock_anthropic::{MockAnthropic, Reply as AReply, STREAM};
    let mock = MockAnthropic::start().await;
    mock.set_default(AReply::Sse(STREAM));
    let app = spawn_app(&anthropic_config(&mock)).await;
    app.topup(switchyard::config::Bucket::Credit, 10_000_000)
        .await;
    let mut body = ask(true);
    body["model"] = json!("claude-test");
    let got = events(post(&app, "/v1/messages", body, &app.key).await).await;
    let sent: Vec<(String, Value)> = STREAM
        .split("\n\n")
        .filter(|b| !b.trim().is_empty())
        .map(|block| {
            let mut name = String::new();
            let mut data = Value::Null;
            for line in block.lines() {
                if let Some(n) = line.strip_prefix("event: ") {
                    name = n.trim().to_string();
                } else if let Some(d) = line.strip_prefix("data: ") {
                    data = serde_json::from_str(d).expect("fixture JSON");
                }
            }
            (name, data)
        })
        .collect();
    assert_eq!(got, sent, "every upstream event, in order, unchanged");
    let rec = app.only_record().await;
    assert_eq!(rec.status, switchyard::record::RequestStatus::Ok);
    assert!(rec.usage.is_some_and(|u| u.output > 0) && !rec.usage_estimated);
}
