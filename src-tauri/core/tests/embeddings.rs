//! `POST /v1/embeddings`: routed with failover, metered and priced like
//! chat, in the format the client asked for.

use base64::Engine as _;
use serde_json::{json, Value};
use switchyard::config::Bucket;
use switchyard::ledger::receipts;

use crate::helpers::*;
use crate::mock::*;

fn config(openai: &MockUpstream, anthropic_url: &str) -> String {
    format!(
        r#"
[[channels]]
id = "oa"
type = "openai-compatible"
base_url = "{}"
bucket = "credit"
secret = "none"

[[channels]]
id = "claude"
type = "anthropic"
base_url = "{anthropic_url}"
bucket = "credit"
secret = "none"

[[routes]]
model = "embed"
targets = [{{ channel = "oa", model = "text-embedding-3-small" }}]

[[routes]]
model = "embed-fallback"
targets = [{{ channel = "claude", model = "claude-haiku-4-5" }}, {{ channel = "oa", model = "text-embedding-3-small" }}]

[[routes]]
model = "embed-nowhere"
targets = [{{ channel = "claude", model = "claude-haiku-4-5" }}]
"#,
        openai.url()
    )
}

async fn embed(app: &TestApp, body: Value) -> reqwest::Response {
    app.http
        .post(app.url("/v1/embeddings"))
        .bearer_auth(&app.key)
        .json(&body)
        .send()
        .await
        .expect("sent")
}

#[tokio::test]
async fn embeddings_are_routed_metered_and_priced() {
    let mock = MockUpstream::start().await;
    let app = spawn_app(&config(&mock, "http://127.0.0.1:9")).await;
    app.topup(Bucket::Credit, 10_000_000).await;
    let resp = embed(
        &app,
        json!({"model": "embed", "input": ["a", "b"], "dimensions": 3}),
    )
    .await;
    assert_eq!(resp.status(), 200);
    assert_eq!(header(&resp, "x-switchyard-channel"), "oa");
    let v: Value = resp.json().await.expect("json");
    assert_eq!(v["data"].as_array().map(Vec::len), Some(2));
    assert_eq!(v["data"][1]["embedding"], json!([0.5, -1.0, 1.0]));
    assert_eq!(v["usage"]["prompt_tokens"], 5000);
    let sent = &mock.bodies()[0];
    assert_eq!(
        sent,
        &json!({"model": "text-embedding-3-small", "input": ["a", "b"], "dimensions": 3})
    );
    app.flush().await;
    let r = &receipts::recent(&app.db(), 5).expect("receipts")[0];
    // 5000 input tokens at 0.02 USD per 1M = 100 micro-USD.
    assert_eq!(
        (r.usage.input, r.cost, r.status.as_str()),
        (5000, 100, "ok")
    );
    assert!(!r.usage_estimated);
}

#[tokio::test]
async fn base64_encoding_is_honoured_even_when_the_upstream_sent_floats() {
    let mock = MockUpstream::start().await;
    let app = spawn_app(&config(&mock, "http://127.0.0.1:9")).await;
    app.topup(Bucket::Credit, 10_000_000).await;
    let resp = embed(
        &app,
        json!({"model": "embed", "input": "hello", "encoding_format": "base64"}),
    )
    .await;
    let v: Value = resp.json().await.expect("json");
    let b64 = v["data"][0]["embedding"].as_str().expect("base64 string");
    let raw = base64::engine::general_purpose::STANDARD
        .decode(b64)
        .expect("valid base64");
    let floats: Vec<f32> = raw
        .chunks_exact(4)
        .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect();
    assert_eq!(floats, vec![0.5, -1.0, 0.0]);
}

#[tokio::test]
async fn a_channel_type_without_embeddings_is_skipped_for_the_backup() {
    let mock = MockUpstream::start().await;
    let app = spawn_app(&config(&mock, "http://127.0.0.1:9")).await;
    app.topup(Bucket::Credit, 10_000_000).await;
    let resp = embed(&app, json!({"model": "embed-fallback", "input": "x"})).await;
    assert_eq!(resp.status(), 200);
    assert_eq!(header(&resp, "x-switchyard-channel"), "oa");
    assert_eq!(
        header(&resp, "x-switchyard-attempts"),
        "1",
        "nothing was sent to the anthropic channel"
    );

    let resp = embed(&app, json!({"model": "embed-nowhere", "input": "x"})).await;
    assert_eq!(resp.status(), 400);
    let v: Value = resp.json().await.expect("json");
    assert!(
        v["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("unsupported by channel type")),
        "{v}"
    );
}

#[tokio::test]
async fn bad_embeddings_input_is_a_clear_400() {
    let mock = MockUpstream::start().await;
    let app = spawn_app(&config(&mock, "http://127.0.0.1:9")).await;
    for bad in [
        json!({"model": "embed"}),
        json!({"model": "embed", "input": []}),
        json!({"model": "embed", "input": [{"x": 1}]}),
        json!({"input": "x"}),
        json!({"model": "embed", "input": "x", "encoding_format": "hex"}),
    ] {
        let resp = embed(&app, bad.clone()).await;
        assert_eq!(resp.status(), 400, "{bad}");
        let v: Value = resp.json().await.expect("json");
        assert!(v["error"]["message"].is_string());
    }
    assert_eq!(mock.hits(), 0);
}
