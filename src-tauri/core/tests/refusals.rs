//! No silent refusals: every request to the model endpoints that is turned
//! away before routing leaves a `refused` receipt saying why — with the
//! key and model when they are known, never the key that was presented —
//! and refusals from unknown callers are recorded at a bounded rate.

use serde_json::{json, Value};
use switchyard::config::Bucket;
use switchyard::ledger::receipts::{self, Receipt, ReceiptFilter};

use crate::helpers::*;
use crate::mock::*;

fn config(mock: &MockUpstream) -> String {
    format!(
        r#"
[[channels]]
id = "oa"
type = "openai-compatible"
base_url = "{}"
bucket = "credit"
secret = "none"

[[routes]]
model = "gpt-test"
targets = [{{ channel = "oa", model = "gpt-upstream" }}]
"#,
        mock.url()
    )
}

fn refused(app: &TestApp) -> Vec<Receipt> {
    receipts::page(
        &app.db(),
        &ReceiptFilter {
            status: Some("refused".into()),
            ..Default::default()
        },
        1000,
    )
    .expect("receipts")
}

/// The request id the response names, and its status.
fn request_id(resp: &reqwest::Response) -> String {
    resp.headers()
        .get("x-switchyard-request-id")
        .and_then(|v| v.to_str().ok())
        .expect("every refusal names its request id")
        .to_string()
}

#[tokio::test]
async fn refusals_before_routing_leave_receipts_that_say_why() {
    let mock = MockUpstream::start().await;
    let app = spawn_app(&config(&mock)).await;
    let scoped = app.create_key("scoped", &["other-model"], &[Bucket::Credit]);

    // Bad JSON, from a valid key.
    let resp = app
        .http
        .post(app.url("/v1/chat/completions"))
        .bearer_auth(&app.key)
        .header("content-type", "application/json")
        .body("{\"model\": \"gpt-test\", ")
        .send()
        .await
        .expect("sent");
    assert_eq!(resp.status(), 400);
    let bad_json = request_id(&resp);

    // A body the endpoint cannot take: the model is still named.
    let resp = app
        .http
        .post(app.url("/v1/messages"))
        .bearer_auth(&app.key)
        .header("anthropic-version", "2023-06-01")
        .json(&json!({"model": "gpt-test", "max_tokens": 100, "messages": "hello"}))
        .send()
        .await
        .expect("sent");
    assert_eq!(resp.status(), 400);
    let bad_shape = request_id(&resp);
    let body: Value = resp.json().await.expect("json");
    assert_eq!(
        body["type"], "error",
        "the refusal is in Anthropic's format"
    );

    // An unknown model, and a model outside the key's scope: refused inside
    // the request path.
    let resp = app
        .chat(json!({"model": "no-such-model", "messages": [{"role": "user", "content": "hi"}]}))
        .await;
    assert_eq!(resp.status(), 404);
    let unknown_model = request_id(&resp);
    let resp = app
        .chat_as(
            &scoped,
            json!({"model": "gpt-test", "messages": [{"role": "user", "content": "hi"}]}),
        )
        .await;
    assert_eq!(resp.status(), 403);
    let out_of_scope = request_id(&resp);

    // An endpoint the port does not have.
    let resp = app
        .http
        .post(app.url("/v1/no-such-endpoint"))
        .bearer_auth(&app.key)
        .json(&json!({"model": "gpt-test"}))
        .send()
        .await
        .expect("sent");
    assert_eq!(resp.status(), 404);
    let unknown_endpoint = request_id(&resp);

    assert_eq!(mock.hits(), 0, "no refusal reached an upstream");
    app.flush().await;
    let list = refused(&app);
    let find = |id: &str| {
        list.iter()
            .find(|r| r.id == id)
            .unwrap_or_else(|| panic!("no refused receipt {id} in {list:#?}"))
    };

    let r = find(&bad_json);
    assert_eq!(r.key_name.as_deref(), Some("all"));
    assert_eq!(r.requested_model, "");
    let error = r.error.as_deref().unwrap_or_default();
    assert!(
        error.starts_with("POST /v1/chat/completions → 400:"),
        "{error}"
    );

    let r = find(&bad_shape);
    assert_eq!(
        (r.key_name.as_deref(), r.requested_model.as_str()),
        (Some("all"), "gpt-test")
    );
    assert!(
        r.error
            .as_deref()
            .is_some_and(|e| e.starts_with("POST /v1/messages → 400: messages")),
        "{:?}",
        r.error
    );

    let r = find(&unknown_model);
    assert_eq!(r.requested_model, "no-such-model");
    assert!(r
        .error
        .as_deref()
        .is_some_and(|e| e.contains("no-such-model")));

    let r = find(&out_of_scope);
    assert_eq!(
        (r.key_name.as_deref(), r.requested_model.as_str()),
        (Some("scoped"), "gpt-test")
    );

    let r = find(&unknown_endpoint);
    assert!(
        r.error
            .as_deref()
            .is_some_and(|e| e.starts_with("POST /v1/no-such-endpoint → 404:")),
        "{:?}",
        r.error
    );
    assert_eq!(list.len(), 5, "one receipt per refusal: {list:#?}");
    for r in &list {
        assert_eq!(r.cost, 0);
        assert!(r.channel.is_none() && r.bucket.is_none());
    }

    // Refusals are not spend: the reports count no requests.
    let charges: i64 = app
        .db()
        .query_row("SELECT count(*) FROM ledger_entries", [], |r| r.get(0))
        .expect("count");
    let rollup: i64 = app
        .db()
        .query_row("SELECT count(*) FROM spend_hourly", [], |r| r.get(0))
        .expect("count");
    assert_eq!((charges, rollup), (0, 0));

    // So does `switchyard receipts --status refused`, with the reason.
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_switchyard"))
        .arg("--data-dir")
        .arg(app.dir.path())
        .args(["receipts", "--status", "refused", "--limit", "50"])
        .env_remove("SWITCHYARD_CONFIG")
        .env("NO_COLOR", "1")
        .output()
        .expect("runs");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        text.lines().filter(|l| l.contains("refused")).count(),
        5,
        "{text}"
    );
    assert!(text.contains("POST /v1/no-such-endpoint → 404:"), "{text}");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_switchyard"))
        .args(["receipts", "--status", "nonsense"])
        .output()
        .expect("runs");
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("refused"));

    // The management API lists them by status too.
    let listed: Value = app
        .http
        .get(app.url("/api/receipts?status=refused"))
        .bearer_auth(&app.admin_token)
        .send()
        .await
        .expect("sent")
        .json()
        .await
        .expect("json");
    assert_eq!(
        listed["receipts"].as_array().map(Vec::len),
        Some(5),
        "{listed}"
    );
}

#[tokio::test]
async fn a_wrong_key_is_never_stored_and_floods_are_recorded_at_a_bounded_rate() {
    let mock = MockUpstream::start().await;
    let app = spawn_app(&config(&mock)).await;
    let wrong = "sy-WRONGKEY-0123456789abcdefghijklmnop";
    for _ in 0..45 {
        let resp = app
            .chat_as(
                wrong,
                json!({"model": "gpt-test", "messages": [{"role": "user", "content": "hi"}]}),
            )
            .await;
        assert!(
            resp.status() == 401 || resp.status() == 429,
            "{}",
            resp.status()
        );
    }
    app.flush().await;
    let list = refused(&app);
    assert_eq!(list.len(), 30, "at most 30 a minute are recorded");
    assert!(list.iter().all(|r| r.key_name.is_none()));
    let first = list.last().expect("oldest");
    assert_eq!(first.requested_model, "gpt-test");
    assert!(
        first
            .error
            .as_deref()
            .is_some_and(|e| e.starts_with("POST /v1/chat/completions → 401:")),
        "{:?}",
        first.error
    );
    // The guard's 429 for a noisy address is a refusal too.
    assert!(list
        .iter()
        .any(|r| r.error.as_deref().is_some_and(|e| e.contains("→ 429:"))));

    // The presented key is nowhere in the data dir (database and WAL).
    let piece = &wrong.as_bytes()[3..15];
    for entry in std::fs::read_dir(app.dir.path()).expect("dir").flatten() {
        if entry.path().is_file() {
            let bytes = std::fs::read(entry.path()).expect("read");
            assert!(
                !bytes.windows(piece.len()).any(|w| w == piece),
                "the wrong key was stored in {}",
                entry.path().display()
            );
        }
    }
}
