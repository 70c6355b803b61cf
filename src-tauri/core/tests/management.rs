//! The management API under `/api`: buckets, top-ups, ledger entries,
//! receipts, spend and gateway keys, all behind the admin token, against a
//! real gateway and mock upstreams.

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use switchyard::config::Bucket;

use crate::helpers::*;
use crate::mock::*;

const TEN: i64 = 10_000_000;

/// A gateway and the two mock upstreams it routes to (keep them alive).
async fn new_app() -> (TestApp, [Arc<MockUpstream>; 2]) {
    let (o, r) = (MockUpstream::start().await, MockUpstream::start().await);
    (spawn_app(&priced_config(&o, &r, "")).await, [o, r])
}

fn ask(model: &str) -> Value {
    json!({"model": model, "messages": [{"role": "user", "content": "Say hello"}]})
}

async fn get(app: &TestApp, path: &str) -> (u16, Value) {
    send(app.http.get(app.url(path)).bearer_auth(&app.admin_token)).await
}

async fn post(app: &TestApp, path: &str, body: Value) -> (u16, Value) {
    send(
        app.http
            .post(app.url(path))
            .bearer_auth(&app.admin_token)
            .json(&body),
    )
    .await
}

async fn send(req: reqwest::RequestBuilder) -> (u16, Value) {
    let resp = req.send().await.expect("gateway reachable");
    let status = resp.status().as_u16();
    let text = resp.text().await.expect("body");
    let body = serde_json::from_str(&text).unwrap_or_else(|_| panic!("JSON body: {text}"));
    (status, body)
}

fn message(body: &Value) -> &str {
    body["error"]["message"].as_str().unwrap_or_default()
}

#[tokio::test]
async fn every_api_route_refuses_no_token_and_gateway_keys_with_openai_401() {
    let routes: [(&str, &str); 21] = [
        ("GET", "/api/buckets"),
        ("POST", "/api/buckets/credit/topup"),
        ("GET", "/api/buckets/credit/entries"),
        ("GET", "/api/receipts"),
        ("GET", "/api/receipts/req_x"),
        ("GET", "/api/spend"),
        ("GET", "/api/keys"),
        ("POST", "/api/keys"),
        ("DELETE", "/api/keys/all"),
        ("GET", "/api/status"),
        ("GET", "/api/channels"),
        ("POST", "/api/channels"),
        ("PATCH", "/api/channels/official"),
        ("DELETE", "/api/channels/official"),
        ("PUT", "/api/channels/official/secret"),
        ("POST", "/api/channels/official/test"),
        ("GET", "/api/routes"),
        ("PUT", "/api/routes/fallback"),
        ("GET", "/api/dry-run?model=fallback"),
        ("GET", "/api/health"),
        ("POST", "/api/pause"),
    ];
    // Each credential on a gateway of its own, a few routes each: the
    // guard slows an address after ten failures.
    for chunk in routes.chunks(8) {
        let (app, _mocks) = new_app().await;
        let (keyed, _keyed_mocks) = new_app().await;
        for &(method, path) in chunk {
            let m: reqwest::Method = method.parse().expect("method");
            let bare = app.http.request(m.clone(), app.url(path)).json(&json!({}));
            let (status, body) = send(bare).await;
            assert_eq!(status, 401, "{method} {path} without a token");
            assert_eq!(body["error"]["code"], "admin_token_required");
            assert_eq!(body["error"]["type"], "invalid_request_error");
            let with_key = keyed
                .http
                .request(m, keyed.url(path))
                .bearer_auth(&keyed.key)
                .json(&json!({"amount": "5", "name": "x"}));
            let (status, body) = send(with_key).await;
            assert_eq!(status, 401, "{method} {path} with a gateway key");
            assert!(message(&body).contains("admin token"), "{body}");
        }
        // Nothing was changed by the refused writes.
        let config =
            std::fs::read_to_string(keyed.dir.path().join("switchyard.toml")).expect("config");
        let (_, b) = get(&keyed, "/api/buckets").await;
        assert_eq!(b["buckets"][0]["balance_micro"], 0);
        let (_, k) = get(&keyed, "/api/keys").await;
        assert_eq!(k["keys"][0]["active"], true);
        let (_, st) = get(&keyed, "/api/status").await;
        assert_eq!(st["paused"], false);
        assert!(
            config.contains("id = \"official\""),
            "the channel is still there"
        );
    }
}

#[tokio::test]
async fn topup_via_api_shows_in_buckets_and_in_the_ledger_entries() {
    let (app, _mocks) = new_app().await;
    let (status, body) = post(
        &app,
        "/api/buckets/credit/topup",
        json!({"amount": "12.50", "note": "card"}),
    )
    .await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["balance"], "12.50");
    assert_eq!(body["balance_micro"], 12_500_000);
    assert_eq!(body["currency"], "USD");
    let (status, _) = post(&app, "/api/buckets/wallet/topup", json!({"amount": "3"})).await;
    assert_eq!(status, 201);
    let (_, body) = post(&app, "/api/buckets/credit/topup", json!({"amount": "0.5"})).await;
    assert_eq!(body["balance"], "13.00");

    let (status, body) = get(&app, "/api/buckets").await;
    assert_eq!(status, 200);
    let buckets = body["buckets"].as_array().expect("buckets");
    assert_eq!(buckets.len(), 2, "both buckets, never blended: {body}");
    assert_eq!(
        buckets[0],
        json!({"bucket": "credit", "currency": "USD", "balance": "13.00", "balance_micro": 13_000_000})
    );
    assert_eq!(
        buckets[1],
        json!({"bucket": "wallet", "currency": "CNY", "balance": "3.00", "balance_micro": 3_000_000})
    );

    // Entries newest first, paged by `next`.
    let (status, page) = get(&app, "/api/buckets/credit/entries?limit=1").await;
    assert_eq!(status, 200, "{page}");
    let entries = page["entries"].as_array().expect("entries");
    assert_eq!(entries.len(), 1);
    assert_eq!(entries[0]["kind"], "topup");
    assert_eq!(entries[0]["amount"], 500_000);
    assert_eq!(entries[0]["balance_after_formatted"], "13.00");
    let next = page["next"].as_str().expect("a next cursor");
    let (_, older) = get(&app, &format!("/api/buckets/credit/entries?before={next}")).await;
    let older = older["entries"].as_array().expect("entries");
    assert_eq!(older.len(), 1);
    assert_eq!(older[0]["note"], "card");
    assert_eq!(older[0]["balance_after"], 12_500_000);

    // The gateway's own ledger agrees.
    assert_eq!(app.state().core.ledger.balance(Bucket::Credit), 13_000_000);
}

#[tokio::test]
async fn bad_topups_and_entry_queries_are_400_with_a_message() {
    let (app, _mocks) = new_app().await;
    for (path, body, says) in [
        (
            "/api/buckets/credit/topup",
            json!({"amount": "abc"}),
            "amount like 12.50",
        ),
        (
            "/api/buckets/credit/topup",
            json!({"amount": "-5"}),
            "positive",
        ),
        (
            "/api/buckets/credit/topup",
            json!({"amount": "1.1234567"}),
            "at most 6 decimals",
        ),
        (
            "/api/buckets/gold/topup",
            json!({"amount": "5"}),
            "unknown bucket `gold`",
        ),
        ("/api/buckets/credit/topup", json!({"note": "x"}), "amount"),
    ] {
        let (status, b) = post(&app, path, body.clone()).await;
        assert_eq!(status, 400, "{path} {body}: {b}");
        assert!(message(&b).contains(says), "{b}");
    }
    let (status, b) = get(&app, "/api/buckets/credit/entries?limit=0").await;
    assert_eq!(status, 400);
    assert!(message(&b).contains("limit"), "{b}");
    let (status, _) = get(&app, "/api/buckets/gold/entries").await;
    assert_eq!(status, 400);
    let (_, b) = get(&app, "/api/buckets").await;
    assert_eq!(b["buckets"][0]["balance_micro"], 0, "nothing was topped up");
}

#[tokio::test]
async fn receipts_are_filtered_and_paged_newest_first_and_one_has_its_attempts() {
    let (app, _mocks) = new_app().await;
    app.topup(Bucket::Credit, TEN).await;
    app.topup(Bucket::Wallet, TEN).await;
    let mut ids = Vec::new();
    for model in ["gpt-4o", "cheap", "gpt-4o", "cheap", "gpt-4o"] {
        let resp = app.chat(ask(model)).await;
        assert_eq!(resp.status(), 200);
        ids.push(header(&resp, "x-switchyard-request-id").to_string());
        // Distinct start times make the expected order unambiguous.
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    app.flush().await;

    // Paging: 2 + 2 + 1, newest first, no repeats.
    let mut seen = Vec::new();
    let mut path = "/api/receipts?limit=2".to_string();
    loop {
        let (status, page) = get(&app, &path).await;
        assert_eq!(status, 200, "{page}");
        for r in page["receipts"].as_array().expect("receipts") {
            seen.push(r["id"].as_str().expect("id").to_string());
        }
        match page["next"].as_str() {
            Some(next) => path = format!("/api/receipts?limit=2&before={next}"),
            None => break,
        }
    }
    let newest_first: Vec<String> = ids.iter().rev().cloned().collect();
    assert_eq!(seen, newest_first);

    let count = |b: &Value| b["receipts"].as_array().map_or(0, Vec::len);
    let (_, b) = get(&app, "/api/receipts?model=cheap").await;
    assert_eq!(count(&b), 2);
    assert!(b["receipts"]
        .as_array()
        .into_iter()
        .flatten()
        .all(|r| r["bucket"] == "wallet" && r["currency"] == "CNY"));
    let (_, b) = get(&app, "/api/receipts?bucket=credit&channel=official").await;
    assert_eq!(count(&b), 3);
    let (_, b) = get(&app, "/api/receipts?key=all&project=tests&status=ok").await;
    assert_eq!(count(&b), 5);
    let (_, b) = get(&app, "/api/receipts?key=nobody").await;
    assert_eq!(count(&b), 0);
    let (_, b) = get(&app, "/api/receipts?since=1h&until=99999999999999").await;
    assert_eq!(count(&b), 5);
    let (_, b) = get(&app, "/api/receipts?until=1000").await;
    assert_eq!(count(&b), 0);

    // One receipt, with its attempt chain and route walk.
    let (status, r) = get(&app, &format!("/api/receipts/{}", ids[1])).await;
    assert_eq!(status, 200, "{r}");
    assert_eq!(r["requested_model"], "cheap");
    assert_eq!(r["channel"], "relay");
    assert_eq!(r["attempts"].as_array().map(Vec::len), Some(1), "{r}");
    assert!(r["walk"].as_str().is_some_and(|w| !w.is_empty()), "{r}");
    assert_eq!(r["cost_formatted"]["currency"], "CNY");

    // Refusals.
    let (status, b) = get(&app, "/api/receipts/req_nope").await;
    assert_eq!(status, 404);
    assert_eq!(b["error"]["code"], "not_found");
    assert!(message(&b).contains("req_nope"), "{b}");
    for bad in [
        "limit=lots",
        "limit=100000",
        "before=yesterday",
        "since=3y",
        "until=7d",
        "bucket=gold",
        "status=great",
    ] {
        let (status, b) = get(&app, &format!("/api/receipts?{bad}")).await;
        assert_eq!(status, 400, "{bad}: {b}");
        assert!(!message(&b).is_empty());
    }
}

#[tokio::test]
async fn spend_reports_rows_and_totals_per_bucket_in_each_currency() {
    let (app, _mocks) = new_app().await;
    app.topup(Bucket::Credit, TEN).await;
    app.topup(Bucket::Wallet, TEN).await;
    for model in ["gpt-4o", "cheap", "cheap"] {
        assert_eq!(app.chat(ask(model)).await.status(), 200);
    }
    app.flush().await;

    let (status, b) = get(&app, "/api/spend?since=1d&by=model").await;
    assert_eq!(status, 200, "{b}");
    assert_eq!(b["by"], "model");
    let rows = b["rows"].as_array().expect("rows");
    let cheap = rows
        .iter()
        .find(|r| r["group"] == "cheap")
        .expect("cheap row");
    assert_eq!(cheap["requests"], 2);
    assert_eq!(cheap["bucket"], "wallet");
    let totals = b["totals"].as_array().expect("totals");
    assert_eq!(totals.len(), 2, "one total per bucket: {b}");
    let credit = totals
        .iter()
        .find(|t| t["bucket"] == "credit")
        .expect("credit");
    let wallet = totals
        .iter()
        .find(|t| t["bucket"] == "wallet")
        .expect("wallet");
    assert_eq!(
        (credit["currency"].as_str(), credit["requests"].as_i64()),
        (Some("USD"), Some(1))
    );
    assert_eq!(
        (wallet["currency"].as_str(), wallet["requests"].as_i64()),
        (Some("CNY"), Some(2))
    );
    assert!(credit["cost"].as_i64().is_some_and(|c| c > 0), "{b}");
    // The same money as the ledger charged.
    let spent = TEN - app.state().core.ledger.balance(Bucket::Credit);
    assert_eq!(credit["cost"].as_i64(), Some(spent));

    let today = chrono::Local::now().format("%Y-%m-%d").to_string();
    let (status, b) = get(&app, &format!("/api/spend?from={today}&to={today}&by=day")).await;
    assert_eq!(status, 200, "{b}");
    assert!(b["rows"]
        .as_array()
        .into_iter()
        .flatten()
        .all(|r| r["group"] == today.as_str()));

    for bad in [
        "by=colour",
        "since=3y",
        "from=2026-13-01",
        "from=2026-11-02&to=2026-11-01",
    ] {
        let (status, b) = get(&app, &format!("/api/spend?{bad}")).await;
        assert_eq!(status, 400, "{bad}: {b}");
        assert!(!message(&b).is_empty());
    }
}

#[tokio::test]
async fn key_created_via_api_works_on_v1_at_once_and_revoking_it_locks_it_out() {
    let (app, _mocks) = new_app().await;
    app.topup(Bucket::Wallet, TEN).await;
    let (status, created) = post(
        &app,
        "/api/keys",
        json!({"name": "ide", "models": ["cheap"], "buckets": ["wallet"], "project": "editor",
               "daily_budget": "5", "monthly_budget": {"wallet": "30"}}),
    )
    .await;
    assert_eq!(status, 201, "{created}");
    let plaintext = created["key"].as_str().expect("plaintext shown once");
    assert!(plaintext.starts_with("sy-"));
    assert_eq!(
        created["daily_budget"],
        json!({"credit": "5.00", "wallet": "5.00"})
    );
    assert_eq!(created["monthly_budget"], json!({"wallet": "30.00"}));

    // At once, with no wait for the key poller.
    let resp = app.chat_as(plaintext, ask("cheap")).await;
    assert_eq!(resp.status(), 200);
    let resp = app.chat_as(plaintext, ask("gpt-4o")).await;
    assert_eq!(resp.status(), 403, "scoped to `cheap`");
    app.flush().await;

    let (status, list) = get(&app, "/api/keys").await;
    assert_eq!(status, 200);
    let text = list.to_string();
    assert!(!text.contains(plaintext), "never the secret again");
    let ide = list["keys"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|k| k["name"] == "ide")
        .expect("listed");
    assert_eq!(ide["project"], "editor");
    assert_eq!(ide["buckets"], json!(["wallet"]));
    assert!(ide.get("key").is_none() && ide.get("hash").is_none());
    let today = ide["spend"]["wallet"]["today"]["micro"]
        .as_i64()
        .expect("spend");
    assert!(
        today > 0,
        "the request's cost counts against the key: {ide}"
    );
    assert_eq!(ide["spend"]["wallet"]["today"]["currency"], "CNY");
    assert_eq!(ide["spend"]["credit"]["month"]["micro"], 0);

    // Refusals.
    let (status, b) = post(&app, "/api/keys", json!({"name": "ide"})).await;
    assert_eq!(status, 409, "{b}");
    assert!(message(&b).contains("already exists"));
    for bad in [
        json!({"name": "has space"}),
        json!({"name": "x", "buckets": ["gold"]}),
        json!({"name": "x", "daily_budget": "-1"}),
        json!({"name": "x", "models": ["[oops"]}),
        json!({"name": "x", "colour": "red"}),
        json!({"models": []}),
    ] {
        let (status, b) = post(&app, "/api/keys", bad.clone()).await;
        assert_eq!(status, 400, "{bad}: {b}");
        assert!(!message(&b).is_empty());
    }

    // Revoke: refused on /v1 (once the running cache has re-read).
    let req = app
        .http
        .delete(app.url("/api/keys/ide"))
        .bearer_auth(&app.admin_token);
    let (status, b) = send(req).await;
    assert_eq!(status, 200, "{b}");
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let status = app.chat_as(plaintext, ask("cheap")).await.status();
        if status == 401 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "revoked key still works: {status}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let (_, list) = get(&app, "/api/keys").await;
    assert!(list["keys"]
        .as_array()
        .into_iter()
        .flatten()
        .any(|k| k["name"] == "ide" && k["active"] == false));
    let req = app
        .http
        .delete(app.url("/api/keys/ide"))
        .bearer_auth(&app.admin_token);
    let (status, b) = send(req).await;
    assert_eq!(status, 404, "{b}");
    assert_eq!(b["error"]["code"], "not_found");
}
