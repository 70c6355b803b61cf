//! DESIGN.md §5 point 3–4: retries, failover, timeouts, circuit breakers.
//! Each test asserts what the client sees, how many attempts each target
//! received, and (generously) how long it took.

use std::time::{Duration, Instant};

use serde_json::Value;
use switchyard::record::{AttemptOutcome, RequestStatus};

use crate::helpers::*;
use crate::mock::*;

async fn pair() -> (std::sync::Arc<MockUpstream>, std::sync::Arc<MockUpstream>) {
    (MockUpstream::start().await, MockUpstream::start().await)
}

fn rate_limited(retry_after: Option<&str>) -> Reply {
    Reply::Status {
        status: 429,
        body: openai_error(
            "Rate limit reached for requests",
            "requests",
            Some("rate_limit_exceeded"),
        ),
        headers: retry_after
            .map(|v| vec![("retry-after", v.to_string())])
            .unwrap_or_default(),
    }
}

#[tokio::test]
async fn primary_answers_and_response_names_upstream_model_route_channel_bucket() {
    let (p, b) = pair().await;
    let app = spawn_app(&two_targets(&p, &b, "")).await;
    let resp = app.chat(chat_body(false)).await;
    assert_eq!(resp.status(), 200);
    assert_eq!(header(&resp, "x-switchyard-route"), "gpt-test");
    assert_eq!(header(&resp, "x-switchyard-channel"), "primary");
    assert_eq!(header(&resp, "x-switchyard-bucket"), "credit");
    assert_eq!(header(&resp, "x-switchyard-attempts"), "1");
    let id = header(&resp, "x-switchyard-request-id").to_string();
    assert!(id.starts_with("req_"));
    let body: Value = resp.json().await.expect("json");
    assert_eq!(body["model"], "up-a", "the model that actually answered");
    assert_eq!(body["choices"][0]["message"]["content"], ANSWER);
    assert_eq!((p.hits(), b.hits()), (1, 0));

    let rec = app.only_record().await;
    assert_eq!(rec.request_id, id);
    assert_eq!(rec.status, RequestStatus::Ok);
    assert_eq!(rec.answered_model.as_deref(), Some("up-a"));
    let u = rec.usage.expect("usage");
    assert_eq!(
        (u.input, u.cached_input, u.output, u.reasoning),
        (8, 4, 3, 2)
    );
    assert!(!rec.usage_estimated);
}

#[tokio::test]
async fn server_error_once_is_retried_on_the_same_target() {
    let (p, b) = pair().await;
    p.push([status(500)]);
    let app = spawn_app(&two_targets(&p, &b, "")).await;
    let started = Instant::now();
    let resp = app.chat(chat_body(false)).await;
    assert_eq!(resp.status(), 200);
    assert_eq!(header(&resp, "x-switchyard-channel"), "primary");
    assert_eq!(header(&resp, "x-switchyard-attempts"), "2");
    assert_eq!((p.hits(), b.hits()), (2, 0));
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "first retry within ~1 s"
    );
    assert_eq!(app.only_record().await.retries(), 1);
}

#[tokio::test]
async fn server_error_always_fails_over_to_backup_after_retries() {
    let (p, b) = pair().await;
    p.set_default(status(503));
    let app = spawn_app(&two_targets(&p, &b, "")).await;
    let resp = app.chat(chat_body(false)).await;
    assert_eq!(resp.status(), 200);
    assert_eq!(header(&resp, "x-switchyard-channel"), "backup");
    assert_eq!(header(&resp, "x-switchyard-attempts"), "4");
    let body: Value = resp.json().await.expect("json");
    assert_eq!(body["model"], "up-b");
    assert_eq!((p.hits(), b.hits()), (3, 1));
    let rec = app.only_record().await;
    assert_eq!(
        rec.route_walk(),
        "primary primary/up-a → 503 ×3 → backup backup/up-b → ok (200); paid from Credit"
    );
}

#[tokio::test]
async fn every_target_failing_gives_502_summarising_each_attempt() {
    let (p, b) = pair().await;
    p.set_default(status(503));
    b.set_default(status(500));
    let app = spawn_app(&two_targets(&p, &b, "")).await;
    let resp = app.chat(chat_body(false)).await;
    assert_eq!(resp.status(), 502);
    assert_eq!(header(&resp, "x-switchyard-attempts"), "6");
    let body: Value = resp.json().await.expect("json");
    let msg = body["error"]["message"].as_str().expect("message");
    assert!(msg.contains("primary primary/up-a → 503 ×3"), "{msg}");
    assert!(msg.contains("backup backup/up-b → 500 ×3"), "{msg}");
    assert_eq!(body["error"]["type"], "upstream_error");
    assert_eq!(app.only_record().await.status, RequestStatus::Error);
}

#[tokio::test]
async fn rate_limit_with_retry_after_waits_then_retries_same_target() {
    let (p, b) = pair().await;
    p.push([rate_limited(Some("1"))]);
    let app = spawn_app(&two_targets(&p, &b, "")).await;
    let started = Instant::now();
    let resp = app.chat(chat_body(false)).await;
    let took = started.elapsed();
    assert_eq!(resp.status(), 200);
    assert_eq!(header(&resp, "x-switchyard-channel"), "primary");
    assert_eq!((p.hits(), b.hits()), (2, 0));
    assert!(
        took >= Duration::from_millis(950),
        "honoured Retry-After: {took:?}"
    );
    assert!(took < Duration::from_secs(4), "{took:?}");
}

#[tokio::test]
async fn rate_limit_without_retry_after_backs_off_with_jitter_then_fails_over() {
    let (p, b) = pair().await;
    p.set_default(rate_limited(None));
    let app = spawn_app(&two_targets(&p, &b, "")).await;
    let started = Instant::now();
    let resp = app.chat(chat_body(false)).await;
    assert_eq!(resp.status(), 200);
    assert_eq!(header(&resp, "x-switchyard-channel"), "backup");
    assert_eq!((p.hits(), b.hits()), (3, 1));
    let took = started.elapsed();
    // Two backoffs: ≥ 150 + 300 ms, < 450 + 900 ms plus slack.
    assert!(
        took >= Duration::from_millis(440) && took < Duration::from_secs(4),
        "{took:?}"
    );
}

#[tokio::test]
async fn retry_after_beyond_what_a_backup_is_worth_fails_over_at_once() {
    let (p, b) = pair().await;
    p.push([rate_limited(Some("60"))]);
    let app = spawn_app(&two_targets(&p, &b, "")).await;
    let started = Instant::now();
    let resp = app.chat(chat_body(false)).await;
    assert_eq!(resp.status(), 200);
    assert_eq!(header(&resp, "x-switchyard-channel"), "backup");
    assert_eq!((p.hits(), b.hits()), (1, 1));
    assert!(started.elapsed() < Duration::from_secs(2));
}

#[tokio::test]
async fn retry_after_that_does_not_fit_the_deadline_is_not_waited_for() {
    let mock = MockUpstream::start().await;
    mock.set_default(rate_limited(Some("30")));
    let app = spawn_app(&one_target(&mock, "timeouts = { total_s = 3 }")).await;
    let started = Instant::now();
    let resp = app.chat(chat_body(false)).await;
    assert_eq!(resp.status(), 503);
    assert_eq!(mock.hits(), 1);
    assert!(started.elapsed() < Duration::from_secs(2));
}

#[tokio::test]
async fn connection_reset_before_headers_is_retried_then_fails_over() {
    let (p, b) = pair().await;
    p.set_default(Reply::Reset);
    let app = spawn_app(&two_targets(&p, &b, "")).await;
    let resp = app.chat(chat_body(false)).await;
    assert_eq!(resp.status(), 200);
    assert_eq!(header(&resp, "x-switchyard-channel"), "backup");
    assert_eq!((p.hits(), b.hits()), (3, 1));
    let rec = app.only_record().await;
    assert!(matches!(
        rec.attempts[0].outcome,
        AttemptOutcome::Failed {
            class: "connection_broken"
        }
    ));
}

#[tokio::test]
async fn connection_refused_is_retried_then_fails_over() {
    let b = MockUpstream::start().await;
    // A port with nothing listening.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = closed.local_addr().expect("addr").port();
    drop(closed);
    let config = format!(
        r#"
[[channels]]
id = "down"
type = "openai-compatible"
base_url = "http://127.0.0.1:{port}/v1"
bucket = "credit"
secret = "none"

[[channels]]
id = "backup"
type = "openai-compatible"
base_url = "{}"
bucket = "credit"
secret = "none"

[[routes]]
model = "gpt-test"
targets = [{{ channel = "down", model = "up-a" }}, {{ channel = "backup", model = "up-b" }}]
"#,
        b.url()
    );
    let app = spawn_app(&config).await;
    let resp = app.chat(chat_body(false)).await;
    assert_eq!(resp.status(), 200);
    assert_eq!(header(&resp, "x-switchyard-attempts"), "4");
    let rec = app.only_record().await;
    assert!(rec.attempts[..3].iter().all(|a| a.outcome
        == AttemptOutcome::Failed {
            class: "connection_refused"
        }));
}

#[tokio::test]
async fn silent_upstream_fails_over_at_once_without_retrying() {
    let (p, b) = pair().await;
    p.set_default(Reply::Silent);
    let app = spawn_app(&two_targets(&p, &b, "timeouts = { first_byte_s = 1 }")).await;
    let started = Instant::now();
    let resp = app.chat(chat_body(false)).await;
    let took = started.elapsed();
    assert_eq!(resp.status(), 200);
    assert_eq!(header(&resp, "x-switchyard-channel"), "backup");
    assert_eq!(
        (p.hits(), b.hits()),
        (1, 1),
        "a silent target is not retried"
    );
    assert!(
        took >= Duration::from_millis(900) && took < Duration::from_secs(3),
        "{took:?}"
    );
}

#[tokio::test]
async fn silent_last_target_gives_504() {
    let mock = MockUpstream::start().await;
    mock.set_default(Reply::Silent);
    let app = spawn_app(&one_target(&mock, "timeouts = { first_byte_s = 1 }")).await;
    let resp = app.chat(chat_body(false)).await;
    assert_eq!(resp.status(), 504);
    let body: Value = resp.json().await.expect("json");
    assert_eq!(body["error"]["code"], "upstream_timeout");
    assert!(body["error"]["message"]
        .as_str()
        .is_some_and(|m| m.contains("first byte timeout")));
}

#[tokio::test]
async fn total_deadline_bounds_every_retry_combined() {
    let (p, b) = pair().await;
    p.set_default(Reply::Status {
        status: 429,
        body: openai_error("slow down", "requests", None),
        headers: vec![("retry-after", "1".into())],
    });
    b.set_default(Reply::Silent);
    let app = spawn_app(&two_targets(&p, &b, "timeouts = { total_s = 2.5 }")).await;
    let started = Instant::now();
    let resp = app.chat(chat_body(false)).await;
    let took = started.elapsed();
    assert_eq!(resp.status(), 504);
    assert!(took < Duration::from_secs(4), "deadline held: {took:?}");
}

#[tokio::test]
async fn context_length_exceeded_fails_over_without_retrying_the_same_target() {
    let (p, b) = pair().await;
    p.set_default(Reply::Status {
        status: 400,
        body: openai_error(
            "This model's maximum context length is 8192 tokens. However, your messages resulted in 9000 tokens.",
            "invalid_request_error",
            Some("context_length_exceeded"),
        ),
        headers: Vec::new(),
    });
    let app = spawn_app(&two_targets(&p, &b, "")).await;
    let resp = app.chat(chat_body(false)).await;
    assert_eq!(resp.status(), 200);
    assert_eq!(header(&resp, "x-switchyard-channel"), "backup");
    assert_eq!((p.hits(), b.hits()), (1, 1));
}

#[tokio::test]
async fn a_redirect_is_not_followed_and_fails_over_without_retry() {
    let (p, b) = pair().await;
    // Following it would POST the request (and, to the same host, the
    // channel's secret) to a URL the config does not name: here the backup.
    p.set_default(Reply::Status {
        status: 307,
        body: String::new(),
        headers: vec![("location", format!("{}/chat/completions", b.url()))],
    });
    let app = spawn_app(&two_targets(&p, &b, "")).await;
    let resp = app.chat(chat_body(false)).await;
    assert_eq!(resp.status(), 200);
    assert_eq!(header(&resp, "x-switchyard-channel"), "backup");
    assert_eq!(
        (p.hits(), b.hits()),
        (1, 1),
        "no retry, no redirect followed"
    );
}

#[tokio::test]
async fn a_redirect_on_the_only_target_says_to_check_base_url() {
    let mock = MockUpstream::start().await;
    mock.set_default(Reply::Status {
        status: 301,
        body: String::new(),
        headers: vec![(
            "location",
            "https://example.invalid/v1/chat/completions".into(),
        )],
    });
    let app = spawn_app(&one_target(&mock, "")).await;
    let resp = app.chat(chat_body(false)).await;
    assert_eq!(resp.status(), 502);
    let got: Value = resp.json().await.expect("json");
    let message = got["error"]["message"].as_str().unwrap_or_default();
    assert!(
        message.contains("primary only/up-a → 301")
            && message.contains("Channel `only` answered with a redirect (301)")
            && message.contains("base_url"),
        "{message}"
    );
    assert_eq!(mock.hits(), 1);
}

#[tokio::test]
async fn context_length_on_every_target_returns_the_providers_400() {
    let mock = MockUpstream::start().await;
    let body = openai_error(
        "This model's maximum context length is 8192 tokens.",
        "invalid_request_error",
        Some("context_length_exceeded"),
    );
    mock.set_default(Reply::Status {
        status: 400,
        body: body.clone(),
        headers: Vec::new(),
    });
    let app = spawn_app(&one_target(&mock, "")).await;
    let resp = app.chat(chat_body(false)).await;
    assert_eq!(resp.status(), 400);
    let got: Value = resp.json().await.expect("json");
    assert_eq!(got["error"]["code"], "context_length_exceeded");
    assert_eq!(mock.hits(), 1);
}

#[tokio::test]
async fn content_policy_400_is_returned_unchanged_with_no_retry_or_failover() {
    let (p, b) = pair().await;
    let body = openai_error(
        "Your request was rejected as a result of our safety system.",
        "invalid_request_error",
        Some("content_policy_violation"),
    );
    p.set_default(Reply::Status {
        status: 400,
        body: body.clone(),
        headers: Vec::new(),
    });
    let app = spawn_app(&two_targets(&p, &b, "")).await;
    let resp = app.chat(chat_body(false)).await;
    assert_eq!(resp.status(), 400);
    assert_eq!(header(&resp, "x-switchyard-attempts"), "1");
    let got: Value = resp.json().await.expect("json");
    let sent: Value = serde_json::from_str(&body).expect("json");
    assert_eq!(got, sent, "the provider's error, unchanged in meaning");
    assert_eq!((p.hits(), b.hits()), (1, 0));
}

#[tokio::test]
async fn rejected_channel_key_is_marked_and_fails_over() {
    let (p, b) = pair().await;
    p.set_default(Reply::Status {
        status: 401,
        body: openai_error(
            "Incorrect API key provided: sk-mock***.",
            "invalid_request_error",
            Some("invalid_api_key"),
        ),
        headers: Vec::new(),
    });
    let app = spawn_app(&two_targets(&p, &b, "")).await;
    let resp = app.chat(chat_body(false)).await;
    assert_eq!(resp.status(), 200);
    assert_eq!(header(&resp, "x-switchyard-channel"), "backup");
    assert_eq!((p.hits(), b.hits()), (1, 1));
    let state = app.state();
    assert!(state
        .gateway()
        .channel("primary")
        .expect("channel")
        .key_rejected());
    assert!(!state
        .gateway()
        .channel("backup")
        .expect("channel")
        .key_rejected());
}

#[tokio::test]
async fn rejected_key_on_every_target_tells_the_user_to_reset_the_secret() {
    let mock = MockUpstream::start().await;
    mock.set_default(status(401));
    let app = spawn_app(&one_target(&mock, "")).await;
    let resp = app.chat(chat_body(false)).await;
    assert_eq!(resp.status(), 502);
    let body: Value = resp.json().await.expect("json");
    let msg = body["error"]["message"].as_str().expect("msg");
    assert!(msg.contains("switchyard secret set only"), "{msg}");
}

fn cross_bucket_config(p: &MockUpstream, b: &MockUpstream, cross: bool) -> String {
    format!(
        r#"
[[channels]]
id = "official"
type = "openai"
base_url = "{}"
bucket = "credit"
secret = "none"

[[channels]]
id = "relay"
type = "openai-compatible"
base_url = "{}"
bucket = "wallet"
secret = "none"

[[routes]]
model = "gpt-test"
targets = [{{ channel = "official", model = "up-a" }}, {{ channel = "relay", model = "up-b" }}]
cross_bucket = {cross}
"#,
        p.url(),
        b.url()
    )
}

#[tokio::test]
async fn backup_in_the_other_bucket_is_skipped_unless_the_route_allows_it() {
    let (p, b) = pair().await;
    p.set_default(status(503));
    let app = spawn_app(&cross_bucket_config(&p, &b, false)).await;
    let resp = app.chat(chat_body(false)).await;
    assert_eq!(resp.status(), 502);
    assert_eq!(b.hits(), 0, "wallet backup never called for a credit route");
    let rec = app.only_record().await;
    assert_eq!(
        rec.attempts.last().map(|a| a.outcome.clone()),
        Some(AttemptOutcome::Skipped {
            reason: "other_bucket"
        })
    );
}

#[tokio::test]
async fn cross_bucket_fallback_is_allowed_when_the_route_says_so_and_flagged() {
    let (p, b) = pair().await;
    p.set_default(status(503));
    let app = spawn_app(&cross_bucket_config(&p, &b, true)).await;
    let resp = app.chat(chat_body(false)).await;
    assert_eq!(resp.status(), 200);
    assert_eq!(header(&resp, "x-switchyard-bucket"), "wallet");
    assert_eq!(header(&resp, "x-switchyard-channel"), "relay");
    let rec = app.only_record().await;
    let served = rec.served_by.clone().expect("served");
    assert!(served.cross_bucket);
    assert!(rec
        .route_walk()
        .ends_with("paid from Wallet (cross-bucket fallback)"));
}

#[tokio::test]
async fn open_circuit_sends_requests_straight_to_the_backup() {
    let (p, b) = pair().await;
    p.set_default(status(503));
    let app = spawn_app(&two_targets(&p, &b, "")).await;
    assert_eq!(app.chat(chat_body(false)).await.status(), 200);
    assert_eq!(p.hits(), 3);
    // The primary failed three times in a row: its circuit is open.
    let resp = app.chat(chat_body(false)).await;
    assert_eq!(resp.status(), 200);
    assert_eq!(header(&resp, "x-switchyard-channel"), "backup");
    assert_eq!(header(&resp, "x-switchyard-attempts"), "1");
    assert_eq!(p.hits(), 3, "skipped while open");
    let recs = app.records(2).await;
    assert_eq!(
        recs[1].attempts[0].outcome,
        AttemptOutcome::Skipped {
            reason: "circuit_open"
        }
    );
}

#[tokio::test]
async fn recovered_primary_is_back_in_use_within_30_seconds() {
    let (p, b) = pair().await;
    p.set_default(status(503));
    let app = spawn_app(&two_targets(&p, &b, "")).await;
    assert_eq!(app.chat(chat_body(false)).await.status(), 200);
    p.set_default(Reply::Ok);
    let recovered = Instant::now();
    let mut back_after = None;
    while recovered.elapsed() < Duration::from_secs(30) {
        let resp = app.chat(chat_body(false)).await;
        assert_eq!(resp.status(), 200);
        if header(&resp, "x-switchyard-channel") == "primary" {
            back_after = Some(recovered.elapsed());
            break;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let back_after = back_after.expect("primary back in use within 30 s");
    assert!(
        back_after >= Duration::from_secs(4),
        "cooldown respected: {back_after:?}"
    );
    // Closed again: the next request goes to the primary first.
    let resp = app.chat(chat_body(false)).await;
    assert_eq!(header(&resp, "x-switchyard-channel"), "primary");
}

#[tokio::test]
async fn single_target_with_open_circuit_is_still_tried() {
    let mock = MockUpstream::start().await;
    mock.push([status(503), status(503), status(503)]);
    let app = spawn_app(&one_target(&mock, "")).await;
    assert_eq!(app.chat(chat_body(false)).await.status(), 502);
    let resp = app.chat(chat_body(false)).await;
    assert_eq!(
        resp.status(),
        200,
        "with no backup, the open target is tried anyway"
    );
    assert_eq!(mock.hits(), 4);
}
