//! The management API's config side: channels, secrets, routes, dry runs,
//! health, presets and pausing. Edits land in the config file with its
//! comments kept, are checked like `config check`, and are live for the
//! very next request.

use std::sync::Arc;

use serde_json::{json, Value};

use crate::helpers::*;
use crate::mock::*;

const COMMENT: &str = "# my own notes: keep me\n";

async fn new_app() -> (TestApp, [Arc<MockUpstream>; 2]) {
    let (o, r) = (MockUpstream::start().await, MockUpstream::start().await);
    let config = format!(
        "[server]\nlisten = \"127.0.0.1:0\"\n\n{COMMENT}{}",
        priced_config(&o, &r, "")
    );
    (spawn_app_with(&config, &[]).await, [o, r])
}

fn ask(model: &str) -> Value {
    json!({"model": model, "messages": [{"role": "user", "content": "Say hello"}]})
}

async fn call(app: &TestApp, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
    let m: reqwest::Method = method.parse().expect("method");
    let mut req = app
        .http
        .request(m, app.url(path))
        .bearer_auth(&app.admin_token);
    if let Some(b) = body {
        req = req.json(&b);
    }
    let resp = req.send().await.expect("gateway reachable");
    let status = resp.status().as_u16();
    let text = resp.text().await.expect("body");
    let body = serde_json::from_str(&text).unwrap_or_else(|_| panic!("JSON body: {text}"));
    (status, body)
}

fn config_text(app: &TestApp) -> String {
    std::fs::read_to_string(app.dir.path().join("switchyard.toml")).expect("config file")
}

fn message(body: &Value) -> &str {
    body["error"]["message"].as_str().unwrap_or_default()
}

#[tokio::test]
async fn reordering_a_route_is_written_to_the_file_and_the_next_request_follows_it() {
    let (app, [official, relay]) = new_app().await;
    app.topup(switchyard::config::Bucket::Credit, 10_000_000)
        .await;
    app.topup(switchyard::config::Bucket::Wallet, 10_000_000)
        .await;

    let (s, routes) = call(&app, "GET", "/api/routes", None).await;
    assert_eq!(s, 200, "{routes}");
    let fallback = routes["routes"]
        .as_array()
        .expect("routes")
        .iter()
        .find(|r| r["model"] == "fallback")
        .expect("fallback route")
        .clone();
    assert_eq!(fallback["targets"][0]["channel"], "official");
    assert_eq!(fallback["targets"][0]["role"], "primary");
    assert_eq!(fallback["targets"][1]["role"], "backup");
    assert_eq!(fallback["targets"][1]["price"]["currency"], "CNY");
    assert_eq!(fallback["cross_bucket"], true);
    // The tree: type → brand → channel → routed models.
    let tree = routes["tree"].to_string();
    assert!(
        tree.contains("\"openai-compatible\"") && tree.contains("\"Relay\""),
        "{tree}"
    );

    let r = app.chat(ask("fallback")).await;
    assert_eq!(r.status(), 200);
    assert_eq!((official.hits(), relay.hits()), (1, 0));

    let (s, body) = call(
        &app,
        "PUT",
        "/api/routes/fallback",
        Some(json!({"targets": [
            {"channel": "relay", "model": "gpt-4o"},
            {"channel": "official", "model": "gpt-4o"}
        ]})),
    )
    .await;
    assert_eq!(s, 200, "{body}");
    assert_eq!(body["targets"][0]["channel"], "relay");

    let text = config_text(&app);
    assert!(text.contains(COMMENT), "comments kept:\n{text}");
    let relay_at = text
        .rfind("{ channel = \"relay\", model = \"gpt-4o\" }")
        .expect("relay target");
    let official_at = text
        .rfind("{ channel = \"official\", model = \"gpt-4o\" }")
        .expect("official");
    assert!(relay_at < official_at, "relay first in the file:\n{text}");
    switchyard::config::Config::parse(&text, std::path::Path::new("x.toml"))
        .expect("file still valid");

    let r = app.chat(ask("fallback")).await;
    assert_eq!(r.status(), 200);
    assert_eq!(
        r.headers()["x-switchyard-channel"],
        "relay",
        "the very next request follows the new order"
    );
    assert_eq!((official.hits(), relay.hits()), (1, 1));
    app.stop().await;
}

#[tokio::test]
async fn invalid_edits_are_refused_with_config_check_messages_and_change_nothing() {
    let (app, _mocks) = new_app().await;
    let before = config_text(&app);

    let (s, body) = call(
        &app,
        "PUT",
        "/api/routes/fallback",
        Some(json!({"targets": [{"channel": "nope", "model": "gpt-4o"}]})),
    )
    .await;
    assert_eq!(s, 400, "{body}");
    assert!(message(&body).contains("switchyard.toml:"), "{body}");
    assert!(message(&body).contains("nope"), "{body}");

    let (s, body) = call(&app, "DELETE", "/api/channels/relay", None).await;
    assert_eq!(s, 400, "{body}");
    assert!(
        message(&body).contains("`cheap`"),
        "names the routes using it: {body}"
    );

    let (s, body) = call(
        &app,
        "POST",
        "/api/channels",
        Some(json!({"id": "relay", "type": "openai", "bucket": "credit"})),
    )
    .await;
    assert_eq!(
        (s, body["error"]["code"].as_str()),
        (409, Some("conflict")),
        "{body}"
    );

    let (s, body) = call(
        &app,
        "POST",
        "/api/channels",
        Some(
            json!({"id": "odd", "type": "openai", "bucket": "savings", "key": "sk-odd-0123456789"}),
        ),
    )
    .await;
    assert_eq!(s, 400, "{body}");
    assert!(message(&body).contains("bucket"), "{body}");
    let orphan = app.state().secrets.get("odd").expect("store readable");
    assert!(orphan.is_none(), "a refused channel leaves no key behind");

    let (s, body) = call(
        &app,
        "POST",
        "/api/routes",
        Some(json!({"model": "x", "targets": [], "surprise": 1})),
    )
    .await;
    assert_eq!(s, 400, "{body}");

    let (s, body) = call(
        &app,
        "PUT",
        "/api/routes/ghost",
        Some(json!({"targets": []})),
    )
    .await;
    assert_eq!(s, 404, "{body}");
    let (s, _) = call(&app, "PATCH", "/api/channels/ghost", Some(json!({}))).await;
    assert_eq!(s, 404);

    assert_eq!(
        config_text(&app),
        before,
        "no refused edit touched the file"
    );
    app.stop().await;
}

#[tokio::test]
async fn a_channel_added_with_its_key_serves_at_once_and_the_key_never_comes_back() {
    let (app, _mocks) = new_app().await;
    let fresh = MockUpstream::start().await;
    let secret = "sk-live-abcdef0123456789";

    let (s, body) = call(
        &app,
        "POST",
        "/api/channels",
        Some(json!({
            "id": "deep", "type": "openai-compatible", "brand": "DeepSeek",
            "base_url": fresh.url(), "bucket": "wallet", "key": secret,
            "models": ["pass-*"]
        })),
    )
    .await;
    assert_eq!(s, 201, "{body}");
    assert_eq!(body["secret"]["state"], "set");
    assert_eq!(body["secret"]["source"], "keyring");

    // Routed by its glob, without a restart, with the stored key.
    let r = app.chat(ask("pass-a")).await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["x-switchyard-channel"], "deep");
    let auth = fresh
        .last_headers()
        .into_iter()
        .find(|(k, _)| k == "authorization")
        .map(|(_, v)| v);
    assert_eq!(auth.as_deref(), Some(format!("Bearer {secret}").as_str()));

    let (s, test) = call(&app, "POST", "/api/channels/deep/test", None).await;
    assert_eq!(s, 200, "{test}");
    assert_eq!(test["ok"], true, "{test}");
    assert_eq!(test["models"], 3);
    assert_eq!(test["sample"][0], "pass-a");

    // A new key, then none.
    let (s, body) = call(
        &app,
        "PUT",
        "/api/channels/deep/secret",
        Some(json!({"secret": "sk-second-key-987654321"})),
    )
    .await;
    assert_eq!((s, body["state"].as_str()), (200, Some("set")), "{body}");
    app.chat(ask("pass-a")).await;
    assert!(fresh.last_headers().contains(&(
        "authorization".into(),
        "Bearer sk-second-key-987654321".into()
    )));
    let (s, body) = call(&app, "DELETE", "/api/channels/deep/secret", None).await;
    assert_eq!(
        (s, body["state"].as_str()),
        (200, Some("missing")),
        "{body}"
    );

    let (_, list) = call(&app, "GET", "/api/channels", None).await;
    let everything = format!("{list}{}", config_text(&app));
    assert!(
        !everything.contains(secret),
        "the key is in no answer and no file"
    );
    assert!(!everything.contains("sk-second"), "nor the second one");
    assert!(config_text(&app).contains("id = \"deep\""));

    let (s, body) = call(
        &app,
        "PATCH",
        "/api/channels/deep",
        Some(json!({"brand": "DeepSeek CN", "price_multiplier": 0.5})),
    )
    .await;
    assert_eq!(s, 200, "{body}");
    assert_eq!(
        (body["brand"].as_str(), body["price_multiplier"].as_f64()),
        (Some("DeepSeek CN"), Some(0.5))
    );
    let (s, body) = call(&app, "DELETE", "/api/channels/deep", None).await;
    assert_eq!(s, 200, "{body}");
    assert!(!config_text(&app).contains("id = \"deep\""));
    app.stop().await;
}

#[tokio::test]
async fn test_connection_reports_an_unreachable_provider_in_words() {
    let (app, _mocks) = new_app().await;
    let closed = std::net::TcpListener::bind("127.0.0.1:0").expect("port");
    let port = closed.local_addr().expect("addr").port();
    drop(closed);
    let (s, _) = call(
        &app,
        "POST",
        "/api/channels",
        Some(json!({"id": "gone", "type": "openai-compatible",
                    "base_url": format!("http://127.0.0.1:{port}/v1"),
                    "bucket": "wallet", "secret": "none"})),
    )
    .await;
    assert_eq!(s, 201);
    let (s, test) = call(&app, "POST", "/api/channels/gone/test", None).await;
    assert_eq!(s, 200);
    assert_eq!(test["ok"], false, "{test}");
    assert!(test["status"].is_null());
    assert!(
        !test["error"].as_str().unwrap_or_default().is_empty(),
        "{test}"
    );
    app.stop().await;
}

#[tokio::test]
async fn dry_run_says_which_target_would_serve_and_why_others_are_passed_over() {
    let (app, _mocks) = new_app().await;
    // Both buckets empty and blocking: nothing priced can serve.
    let (s, dry) = call(&app, "GET", "/api/dry-run?model=fallback", None).await;
    assert_eq!(s, 200, "{dry}");
    assert!(dry["target"].is_null(), "{dry}");
    assert_eq!(dry["skipped"].as_array().map(Vec::len), Some(2), "{dry}");
    assert!(dry["skipped"][0]["reason"]
        .as_str()
        .unwrap_or_default()
        .contains("Credit is empty"));

    app.topup(switchyard::config::Bucket::Wallet, 10_000_000)
        .await;
    let (_, dry) = call(&app, "GET", "/api/dry-run?model=fallback", None).await;
    assert_eq!(dry["target"]["channel"], "relay", "{dry}");
    assert_eq!(dry["target"]["role"], "backup");
    assert_eq!(dry["target"]["price"]["currency"], "CNY");
    assert!(
        dry["reason"]
            .as_str()
            .unwrap_or_default()
            .contains("Wallet"),
        "{dry}"
    );

    let (_, dry) = call(&app, "GET", "/api/dry-run?model=no-such-model", None).await;
    assert!(dry["route"].is_null());
    assert!(dry["reason"].as_str().unwrap_or_default().contains("404"));
    let (s, _) = call(&app, "GET", "/api/dry-run", None).await;
    assert_eq!(s, 400);
    app.stop().await;
}

#[tokio::test]
async fn health_shows_each_targets_last_hour_and_circuit() {
    let (app, [official, _relay]) = new_app().await;
    app.topup(switchyard::config::Bucket::Credit, 10_000_000)
        .await;
    app.topup(switchyard::config::Bucket::Wallet, 10_000_000)
        .await;
    official.push([status(503), status(503), status(503)]);
    let r = app.chat(ask("fallback")).await;
    assert_eq!(r.status(), 200, "served by the backup");
    for _ in 0..3 {
        assert_eq!(app.chat(ask("cheap")).await.status(), 200);
    }
    let (s, h) = call(&app, "GET", "/api/health", None).await;
    assert_eq!(s, 200, "{h}");
    assert_eq!(h["window_ms"], 3_600_000);
    let find = |route: &str, channel: &str| {
        h["targets"]
            .as_array()
            .expect("targets")
            .iter()
            .find(|t| t["route"] == route && t["channel"] == channel)
            .cloned()
            .expect("target")
    };
    let primary = find("fallback", "official");
    assert_eq!(primary["requests"], 3, "{primary}");
    assert_eq!(primary["ok"], 0);
    assert_eq!(primary["success_rate"], 0.0);
    assert_eq!(primary["last_error"]["summary"], "503");
    assert_eq!(
        primary["circuit"]["state"], "open",
        "three failures open it"
    );
    assert!(primary["circuit"]["retry_in_ms"]
        .as_u64()
        .is_some_and(|ms| ms > 0));
    assert_eq!(primary["secret"], "not_needed");
    let relay = find("cheap", "relay");
    assert_eq!(
        relay["requests"], 4,
        "the same target serves two routes: {relay}"
    );
    assert_eq!(relay["success_rate"], 1.0);
    assert!(relay["p50_ms"].is_u64() && relay["p95_ms"].is_u64());
    app.stop().await;
}

#[tokio::test]
async fn pausing_refuses_v1_with_a_clear_503_until_resumed() {
    let (app, [_, relay]) = new_app().await;
    app.topup(switchyard::config::Bucket::Wallet, 10_000_000)
        .await;
    let (s, body) = call(&app, "POST", "/api/pause", None).await;
    assert_eq!((s, body["paused"].as_bool()), (200, Some(true)));
    let (_, st) = call(&app, "GET", "/api/status", None).await;
    assert_eq!(st["paused"], true);

    let r = app.chat(ask("cheap")).await;
    assert_eq!(r.status(), 503);
    let body: Value = r.json().await.expect("json");
    assert_eq!(body["error"]["code"], "gateway_paused");
    assert!(message(&body).contains("paused"));
    assert_eq!(relay.hits(), 0, "nothing went upstream");
    // The management API stays up while paused.
    let (s, _) = call(&app, "GET", "/api/receipts", None).await;
    assert_eq!(s, 200);

    call(&app, "POST", "/api/resume", None).await;
    assert_eq!(app.chat(ask("cheap")).await.status(), 200);
    app.stop().await;
}

#[tokio::test]
async fn presets_cover_the_usual_providers_and_local_servers_are_probed() {
    let (app, _mocks) = new_app().await;
    let (s, p) = call(&app, "GET", "/api/presets", None).await;
    assert_eq!(s, 200);
    let ids: Vec<&str> = p["presets"]
        .as_array()
        .expect("presets")
        .iter()
        .filter_map(|p| p["id"].as_str())
        .collect();
    for want in [
        "openai",
        "anthropic",
        "gemini",
        "deepseek",
        "openrouter",
        "ollama",
        "lmstudio",
        "custom",
    ] {
        assert!(ids.contains(&want), "{want} in {ids:?}");
    }
    let (s, l) = call(&app, "GET", "/api/local-servers", None).await;
    assert_eq!(s, 200, "{l}");
    let servers = l["servers"].as_array().expect("servers");
    assert_eq!(servers.len(), 2);
    for srv in servers {
        assert!(srv["reachable"].is_boolean(), "{srv}");
        assert!(srv["base_url"]
            .as_str()
            .is_some_and(|u| u.starts_with("http://127.0.0.1:")));
    }
    app.stop().await;
}

#[tokio::test]
async fn the_ui_is_served_at_the_root_with_a_strict_content_security_policy() {
    let (app, _mocks) = new_app().await;
    let built = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../ui/dist/index.html")
        .exists();
    let r = app
        .http
        .get(app.url("/receipts"))
        .send()
        .await
        .expect("get");
    if built {
        assert_eq!(r.status(), 200);
        assert!(r.headers()["content-type"]
            .to_str()
            .is_ok_and(|c| c.starts_with("text/html")));
        let csp = r.headers()["content-security-policy"]
            .to_str()
            .expect("csp");
        assert!(csp.contains("script-src 'self'"), "{csp}");
        assert!(r.text().await.expect("html").contains("<div id=\"root\""));
    } else {
        assert_eq!(r.status(), 404);
        assert!(r.text().await.expect("text").contains("npm --prefix ui"));
    }
    // The APIs keep their JSON errors.
    let r = app.http.get(app.url("/v1/nope")).send().await.expect("get");
    assert_eq!(r.status(), 404);
    let body: Value = r.json().await.expect("json");
    assert_eq!(body["error"]["code"], "unknown_url");
    app.stop().await;
}

#[tokio::test]
async fn the_openapi_document_lists_every_management_route_and_each_is_real_and_guarded() {
    let (app, _mocks) = new_app().await;
    let r = app
        .http
        .get(app.url("/api/openapi.json"))
        .send()
        .await
        .expect("get");
    assert_eq!(r.status(), 200, "served without a token");
    let doc: Value = r.json().await.expect("json");
    assert!(doc["openapi"].as_str().is_some_and(|v| v.starts_with("3.")));
    assert!(doc["components"]["securitySchemes"]["admin_token"].is_object());
    assert!(
        doc["security"][0]["admin_token"].is_array(),
        "every operation takes the admin token"
    );
    for schema in [
        "ErrorBody",
        "Receipt",
        "Usage",
        "ChannelSpec",
        "RouteSpec",
        "CreateKeyBody",
    ] {
        assert!(
            doc["components"]["schemas"][schema].is_object(),
            "{schema} documented"
        );
    }
    let paths = doc["paths"].as_object().expect("paths");
    let mut operations = 0;
    for (path, item) in paths {
        let concrete = path
            .replace("{bucket}", "credit")
            .replace("{id}", "official")
            .replace("{model}", "fallback")
            .replace("{name}", "all");
        for method in ["get", "post", "put", "patch", "delete"] {
            if item.get(method).is_none() {
                continue;
            }
            operations += 1;
            assert!(
                item[method]["responses"]["401"].is_object(),
                "{method} {path} documents its 401"
            );
            // The guard slows an address after ten bad credentials: each
            // few requests come from another loopback address.
            let from: std::net::IpAddr = [127, 0, 0, 2 + (operations / 8) as u8].into();
            let client = reqwest::Client::builder()
                .local_address(from)
                .build()
                .expect("client");
            let m: reqwest::Method = method.to_uppercase().parse().expect("method");
            let resp = client
                .request(m, app.url(&concrete))
                .json(&json!({}))
                .send()
                .await
                .expect("send");
            assert_eq!(
                resp.status(),
                401,
                "{method} {path} is documented, exists, and needs the admin token"
            );
        }
    }
    assert!(operations >= 29, "{operations} operations documented");
    for want in [
        "/api/channels/{id}/secret",
        "/api/routes/{model}",
        "/api/dry-run",
        "/api/health",
        "/api/receipts/{id}",
        "/api/spend",
        "/api/keys",
    ] {
        assert!(paths.contains_key(want), "{want} documented");
    }
    app.stop().await;
}
