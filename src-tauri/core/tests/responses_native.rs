//! `POST /v1/responses` to an `openai` channel: the client's request goes
//! to the upstream's own `/responses` as it was sent (hosted tools and
//! all, only the model replaced), its answer and events come back as they
//! were, and the receipt has the usage of `response.completed`. An
//! `openai-compatible` channel gets the chat translation instead.

use std::sync::{Arc, Mutex};

use serde_json::{json, Value};
use switchyard::ledger::receipts;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpListener;

use crate::helpers::*;
use crate::mock::{read_request, MockUpstream};

const RESPONSE: &str = r#"{"id":"resp_up","object":"response","created_at":1,"status":"completed","model":"gpt-up-2026","output":[{"type":"message","id":"msg_up","status":"completed","role":"assistant","content":[{"type":"output_text","text":"Native hello","annotations":[]}]}],"usage":{"input_tokens":30,"input_tokens_details":{"cached_tokens":10},"output_tokens":8,"output_tokens_details":{"reasoning_tokens":3},"total_tokens":38}}"#;

fn events() -> String {
    let response: Value = serde_json::from_str(RESPONSE).expect("json");
    let mut created = response.clone();
    created["status"] = json!("in_progress");
    created["output"] = json!([]);
    created["usage"] = Value::Null;
    let evs = [
        json!({"type": "response.created", "sequence_number": 0, "response": created}),
        json!({"type": "response.output_item.added", "sequence_number": 1, "output_index": 0,
               "item": {"type": "message", "id": "msg_up", "status": "in_progress", "role": "assistant", "content": []}}),
        json!({"type": "response.output_text.delta", "sequence_number": 2, "item_id": "msg_up",
               "output_index": 0, "content_index": 0, "delta": "Native hello"}),
        json!({"type": "response.output_item.done", "sequence_number": 3, "output_index": 0,
               "item": response["output"][0]}),
        json!({"type": "response.completed", "sequence_number": 4, "response": response}),
    ];
    evs.iter()
        .map(|e| format!("event: {}\ndata: {e}\n\n", e["type"].as_str().unwrap_or("")))
        .collect()
}

/// An OpenAI upstream serving `/v1/responses`; records paths and bodies.
async fn responses_upstream() -> (String, Arc<Mutex<Vec<(String, Value)>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let url = format!("http://{}/v1", listener.local_addr().expect("addr"));
    let seen = Arc::new(Mutex::new(Vec::new()));
    let log = Arc::clone(&seen);
    tokio::spawn(async move {
        while let Ok((mut sock, _)) = listener.accept().await {
            let log = Arc::clone(&log);
            tokio::spawn(async move {
                let Some((path, _, body)) = read_request(&mut sock).await else {
                    return;
                };
                let body: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
                let stream = body["stream"] == true;
                log.lock().expect("lock").push((path, body));
                let (kind, payload) = if stream {
                    ("text/event-stream", events())
                } else {
                    ("application/json", RESPONSE.to_string())
                };
                let head = format!(
                    "HTTP/1.1 200 OK\r\ncontent-type: {kind}\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
                    payload.len()
                );
                let _ = sock.write_all(head.as_bytes()).await;
                let _ = sock.write_all(payload.as_bytes()).await;
                let _ = sock.shutdown().await;
            });
        }
    });
    (url, seen)
}

async fn app_with(native_url: &str, compatible: &MockUpstream) -> TestApp {
    spawn_app(&format!(
        r#"
[[channels]]
id = "openai"
type = "openai"
base_url = "{native_url}"
bucket = "credit"
secret = "none"

[[channels]]
id = "compat"
type = "openai-compatible"
base_url = "{}"
bucket = "wallet"
secret = "none"

[[routes]]
model = "native"
targets = [{{ channel = "openai", model = "gpt-up" }}]

[[routes]]
model = "compat"
targets = [{{ channel = "compat", model = "gpt-compat" }}]
"#,
        compatible.url()
    ))
    .await
}

fn request(model: &str, stream: bool) -> Value {
    json!({
        "model": model, "stream": stream, "store": false,
        "input": [{"type": "message", "role": "developer", "content": [{"type": "input_text", "text": "Be brief."}]},
                  {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "Hi"}]}],
        "tools": [{"type": "web_search"}, {"type": "function", "name": "f", "parameters": {"type": "object"}}],
        "include": ["reasoning.encrypted_content"],
        "reasoning": {"effort": "medium", "summary": "auto"},
    })
}

#[tokio::test]
async fn an_openai_channel_gets_the_clients_request_and_relays_its_answer() {
    let (url, seen) = responses_upstream().await;
    let compat = MockUpstream::start().await;
    let app = app_with(&url, &compat).await;

    for stream in [false, true] {
        let resp = app
            .http
            .post(app.url("/v1/responses"))
            .bearer_auth(&app.key)
            .json(&request("native", stream))
            .send()
            .await
            .expect("sent");
        assert_eq!(resp.status(), 200);
        assert_eq!(resp.headers()["x-switchyard-channel"], "openai");
        assert!(
            resp.headers().get("x-switchyard-warning").is_none(),
            "nothing was left out"
        );
        let text = resp.text().await.expect("body");
        if stream {
            assert_eq!(text, events(), "the events are relayed as they came");
        } else {
            let got: Value = serde_json::from_str(&text).expect("json");
            let want: Value = serde_json::from_str(RESPONSE).expect("json");
            assert_eq!(got, want);
        }
    }

    let seen = seen.lock().expect("lock").clone();
    assert_eq!(seen.len(), 2);
    for (path, body) in &seen {
        assert_eq!(path, "/v1/responses");
        let mut want = request("native", body["stream"] == true);
        want["model"] = json!("gpt-up");
        assert_eq!(body, &want, "the client's request, only the model replaced");
    }
    assert_eq!(compat.hits(), 0);

    app.flush().await;
    let all = receipts::recent(&app.db(), 10).expect("receipts");
    assert_eq!(all.len(), 2);
    for r in &all {
        assert_eq!(r.status, "ok");
        assert_eq!(r.channel.as_deref(), Some("openai"));
        assert_eq!(r.upstream_model.as_deref(), Some("gpt-up-2026"));
        assert_eq!(
            (
                r.usage.input,
                r.usage.cached_input,
                r.usage.output,
                r.usage.reasoning
            ),
            (20, 10, 5, 3)
        );
        assert!(!r.usage_estimated);
    }
}

#[tokio::test]
async fn an_openai_compatible_channel_gets_the_chat_translation() {
    let (url, seen) = responses_upstream().await;
    let compat = MockUpstream::start().await;
    let app = app_with(&url, &compat).await;
    let resp = app
        .http
        .post(app.url("/v1/responses"))
        .bearer_auth(&app.key)
        .json(&request("compat", false))
        .send()
        .await
        .expect("sent");
    assert_eq!(resp.status(), 200);
    assert!(resp.headers()["x-switchyard-warning"]
        .to_str()
        .is_ok_and(|w| w.contains("web_search")));
    let body: Value = resp.json().await.expect("json");
    assert_eq!(body["object"], "response");
    assert_eq!(body["output"][0]["content"][0]["text"], crate::mock::ANSWER);
    assert!(seen.lock().expect("lock").is_empty());
    let sent = compat.bodies();
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0]["messages"][0]["content"], "Be brief.");
    assert!(sent[0].get("input").is_none());
}
