//! The loopback API's contract with clients: authentication, key scopes,
//! `/v1/models`, `/health`, and a clear OpenAI-format error for every bad
//! input.

use serde_json::{json, Value};
use switchyard::config::Bucket;

use crate::helpers::*;
use crate::mock::*;

async fn error_of(resp: reqwest::Response) -> (u16, Value) {
    let status = resp.status().as_u16();
    assert_eq!(header(&resp, "content-type"), "application/json");
    let body: Value = resp.json().await.expect("error body is JSON");
    let err = &body["error"];
    assert!(
        err["message"].as_str().is_some_and(|m| !m.is_empty()),
        "{body}"
    );
    assert!(err["type"].is_string(), "{body}");
    assert!(
        err.get("param").is_some() && err.get("code").is_some(),
        "{body}"
    );
    (status, body)
}

#[tokio::test]
async fn health_needs_no_key() {
    let mock = MockUpstream::start().await;
    let app = spawn_app(&one_target(&mock, "")).await;
    let resp = app.http.get(app.url("/health")).send().await.expect("up");
    assert_eq!(resp.status(), 200);
    let body: Value = resp.json().await.expect("json");
    assert_eq!(body["status"], "ok");
}

#[tokio::test]
async fn missing_and_wrong_keys_get_401_and_nothing_reaches_upstream() {
    let mock = MockUpstream::start().await;
    let app = spawn_app(&one_target(&mock, "")).await;
    let resp = app
        .http
        .post(app.url("/v1/chat/completions"))
        .json(&chat_body(false))
        .send()
        .await
        .expect("sent");
    let (status, body) = error_of(resp).await;
    assert_eq!(status, 401);
    assert_eq!(body["error"]["code"], "missing_api_key");

    let (status, body) = error_of(app.chat_as("sy-not-a-real-key", chat_body(false)).await).await;
    assert_eq!(status, 401);
    assert_eq!(body["error"]["code"], "invalid_api_key");
    assert_eq!(mock.hits(), 0);
}

#[tokio::test]
async fn x_api_key_header_is_accepted_like_bearer() {
    let mock = MockUpstream::start().await;
    let app = spawn_app(&one_target(&mock, "")).await;
    let resp = app
        .http
        .post(app.url("/v1/chat/completions"))
        .header("x-api-key", &app.key)
        .json(&chat_body(false))
        .send()
        .await
        .expect("sent");
    assert_eq!(resp.status(), 200);
}

#[tokio::test]
async fn revoked_key_is_refused_on_a_running_server() {
    let mock = MockUpstream::start().await;
    let app = spawn_app(&one_target(&mock, "")).await;
    let key = app.create_key("short-lived", &[], &[]);
    assert_eq!(app.chat_as(&key, chat_body(false)).await.status(), 200);
    let conn = switchyard::ledger::db::open(&app.db_path()).expect("db");
    switchyard::keys::revoke(&conn, "short-lived").expect("revoke");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    loop {
        let status = app.chat_as(&key, chat_body(false)).await.status();
        if status == 401 {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "revocation applied within seconds"
        );
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
}

#[tokio::test]
async fn model_outside_the_keys_scope_is_403() {
    let mock = MockUpstream::start().await;
    let app = spawn_app(&one_target(&mock, "")).await;
    let key = app.create_key("claude-only", &["claude-*"], &[]);
    let (status, body) = error_of(app.chat_as(&key, chat_body(false)).await).await;
    assert_eq!(status, 403);
    assert_eq!(body["error"]["code"], "model_not_allowed");
    assert!(body["error"]["message"]
        .as_str()
        .is_some_and(|m| m.contains("claude-*")));
    assert_eq!(mock.hits(), 0);
}

#[tokio::test]
async fn key_limited_to_the_wallet_cannot_spend_credit() {
    let mock = MockUpstream::start().await;
    let app = spawn_app(&one_target(&mock, "")).await;
    let key = app.create_key("cheap", &[], &[Bucket::Wallet]);
    let (status, body) = error_of(app.chat_as(&key, chat_body(false)).await).await;
    assert_eq!(status, 403);
    assert_eq!(body["error"]["code"], "bucket_not_allowed");
    assert_eq!(mock.hits(), 0);
}

#[tokio::test]
async fn unknown_model_is_404_and_says_where_to_look() {
    let mock = MockUpstream::start().await;
    let app = spawn_app(&one_target(&mock, "")).await;
    let mut body = chat_body(false);
    body["model"] = json!("gpt-nonexistent");
    let (status, body) = error_of(app.chat(body).await).await;
    assert_eq!(status, 404);
    assert_eq!(body["error"]["code"], "model_not_found");
    assert!(body["error"]["message"]
        .as_str()
        .is_some_and(|m| m.contains("/v1/models")));
}

#[tokio::test]
async fn bad_json_and_missing_fields_are_400() {
    let mock = MockUpstream::start().await;
    let app = spawn_app(&one_target(&mock, "")).await;
    let resp = app
        .http
        .post(app.url("/v1/chat/completions"))
        .bearer_auth(&app.key)
        .header("content-type", "application/json")
        .body("{\"model\": \"gpt-test\", ")
        .send()
        .await
        .expect("sent");
    let (status, body) = error_of(resp).await;
    assert_eq!(status, 400);
    assert_eq!(body["error"]["code"], "invalid_json");

    for (bad, needle) in [
        (
            json!({"messages": [{"role": "user", "content": "hi"}]}),
            "model",
        ),
        (json!({"model": "gpt-test"}), "messages"),
        (json!({"model": "gpt-test", "messages": []}), "messages"),
        (
            json!({"model": 5, "messages": [{"role": "user", "content": "hi"}]}),
            "model",
        ),
        (
            json!({"model": "gpt-test", "messages": [{"role": "user", "content": "hi"}], "stream": "yes"}),
            "stream",
        ),
        (json!([1, 2]), "JSON object"),
    ] {
        let (status, body) = error_of(app.chat(bad.clone()).await).await;
        assert_eq!(status, 400, "{bad}");
        let msg = body["error"]["message"].as_str().unwrap_or_default();
        assert!(msg.contains(needle), "{bad} → {msg}");
    }
    assert_eq!(mock.hits(), 0);
}

#[tokio::test]
async fn body_over_the_limit_is_413() {
    let mock = MockUpstream::start().await;
    let config = format!(
        "[server]\nlisten = \"127.0.0.1:0\"\nmax_body_bytes = 4096\n{}",
        one_target(&mock, "")
    );
    let app = spawn_app_with(&config, &[]).await;
    let mut body = chat_body(false);
    body["messages"][0]["content"] = json!("x".repeat(10_000));
    let (status, body) = error_of(app.chat(body).await).await;
    assert_eq!(status, 413);
    assert_eq!(body["error"]["code"], "request_too_large");
    assert_eq!(mock.hits(), 0);
}

#[tokio::test]
async fn unknown_endpoint_is_an_openai_format_error() {
    let mock = MockUpstream::start().await;
    let app = spawn_app(&one_target(&mock, "")).await;
    let resp = app
        .http
        .post(app.url("/v1/completions-typo"))
        .bearer_auth(&app.key)
        .send()
        .await
        .expect("sent");
    let (status, body) = error_of(resp).await;
    assert_eq!(status, 404);
    assert_eq!(body["error"]["code"], "unknown_url");
}

#[tokio::test]
async fn models_retrieve_answers_in_the_clients_format_and_404s_what_the_key_cannot_use() {
    let mock = MockUpstream::start().await;
    let app = spawn_app(&one_target(&mock, "")).await;
    let get = |path: &'static str, key: String, anthropic: bool| {
        let mut req = app.http.get(app.url(path)).bearer_auth(key);
        if anthropic {
            req = req.header("anthropic-version", "2023-06-01");
        }
        req.send()
    };
    let one: Value = get("/v1/models/gpt-test", app.key.clone(), false)
        .await
        .expect("sent")
        .json()
        .await
        .expect("json");
    assert_eq!(
        (one["id"].as_str(), one["object"].as_str()),
        (Some("gpt-test"), Some("model"))
    );
    let claude: Value = get("/v1/models/gpt-test", app.key.clone(), true)
        .await
        .expect("sent")
        .json()
        .await
        .expect("json");
    assert_eq!(claude["type"], "model");
    let scoped = app.create_key("other", &["other-*"], &[]);
    let resp = get("/v1/models/gpt-test", scoped, false)
        .await
        .expect("sent");
    let (status, body) = error_of(resp).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (404, Some("model_not_found"))
    );
    let resp = get("/v1/models/nope", app.key.clone(), true)
        .await
        .expect("sent");
    assert_eq!(resp.status(), 404);
    let body: Value = resp.json().await.expect("json");
    assert_eq!(body["error"]["type"], "not_found_error");
}

fn models_config(mock: &MockUpstream) -> String {
    format!(
        r#"
[[channels]]
id = "local"
type = "openai-compatible"
base_url = "{url}"
bucket = "wallet"
secret = "none"
models = ["pass-*"]

[[channels]]
id = "official"
type = "openai"
base_url = "{url}"
bucket = "credit"
secret = "none"

[[routes]]
model = "gpt-test"
targets = [{{ channel = "official", model = "up-a" }}]

[[routes]]
model = "cheap-model"
targets = [{{ channel = "local", model = "up-cheap" }}]
"#,
        url = mock.url()
    )
}

async fn model_ids(app: &TestApp, key: &str) -> Vec<String> {
    let resp = app
        .http
        .get(app.url("/v1/models"))
        .bearer_auth(key)
        .send()
        .await
        .expect("sent");
    assert_eq!(resp.status(), 200);
    let body: Value = resp.json().await.expect("json");
    assert_eq!(body["object"], "list");
    body["data"]
        .as_array()
        .expect("data")
        .iter()
        .map(|m| {
            assert_eq!(m["object"], "model");
            m["id"].as_str().expect("id").to_string()
        })
        .collect()
}

#[tokio::test]
async fn models_list_shows_routes_and_passthrough_models_the_key_may_call() {
    let mock = MockUpstream::start().await;
    let app = spawn_app(&models_config(&mock)).await;
    assert_eq!(
        model_ids(&app, &app.key).await,
        vec!["cheap-model", "gpt-test", "pass-a", "pass-b"],
        "other-c does not match the channel's globs"
    );
    let gpt_only = app.create_key("gpt-only", &["gpt-*"], &[]);
    assert_eq!(model_ids(&app, &gpt_only).await, vec!["gpt-test"]);
    let wallet = app.create_key("wallet-only", &[], &[Bucket::Wallet]);
    assert_eq!(
        model_ids(&app, &wallet).await,
        vec!["cheap-model", "pass-a", "pass-b"]
    );
    let resp = app
        .http
        .get(app.url("/v1/models"))
        .send()
        .await
        .expect("sent");
    assert_eq!(resp.status(), 401);
}

#[tokio::test]
async fn passthrough_model_is_served_under_its_own_name() {
    let mock = MockUpstream::start().await;
    let app = spawn_app(&models_config(&mock)).await;
    let mut body = chat_body(false);
    body["model"] = json!("pass-b");
    let resp = app.chat(body).await;
    assert_eq!(resp.status(), 200);
    assert_eq!(header(&resp, "x-switchyard-channel"), "local");
    assert_eq!(header(&resp, "x-switchyard-bucket"), "wallet");
    let got: Value = resp.json().await.expect("json");
    assert_eq!(got["model"], "pass-b");
    assert_eq!(mock.bodies()[0]["model"], "pass-b");
}

#[tokio::test]
async fn channel_without_a_secret_is_skipped_with_a_clear_hint() {
    let mock = MockUpstream::start().await;
    let config = format!(
        r#"
[[channels]]
id = "openai"
type = "openai"
base_url = "{}"
bucket = "credit"

[[routes]]
model = "gpt-test"
targets = [{{ channel = "openai", model = "up-a" }}]
"#,
        mock.url()
    );
    let app = spawn_app(&config).await;
    let (status, body) = error_of(app.chat(chat_body(false)).await).await;
    assert_eq!(status, 503);
    let msg = body["error"]["message"].as_str().unwrap_or_default();
    assert!(msg.contains("switchyard secret set openai"), "{msg}");
    assert_eq!(mock.hits(), 0);
}

#[tokio::test]
async fn graceful_shutdown_completes() {
    let mock = MockUpstream::start().await;
    let app = spawn_app(&one_target(&mock, "")).await;
    assert_eq!(app.chat(chat_body(false)).await.status(), 200);
    app.stop().await;
}
