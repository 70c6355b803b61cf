//! DESIGN.md §5 points 3 and 5–7 for streams: first-token failover, cuts
//! and stalls after the first token, malformed events, missing `[DONE]`,
//! usage chunks, and client disconnects.

use std::time::{Duration, Instant};

use futures_util::StreamExt;
use serde_json::json;
use switchyard::record::RequestStatus;

use crate::helpers::*;
use crate::mock::*;

#[tokio::test]
async fn stream_relays_every_chunk_and_strips_the_usage_chunk_it_asked_for() {
    let mock = MockUpstream::start().await;
    let app = spawn_app(&one_target(&mock, "")).await;
    let resp = app.chat(chat_body(true)).await;
    assert_eq!(resp.status(), 200);
    assert_eq!(header(&resp, "content-type"), "text/event-stream");
    assert_eq!(header(&resp, "x-switchyard-channel"), "only");
    let s = read_stream(resp).await;
    assert!(s.done, "ends with [DONE]");
    assert_eq!(s.text(), ANSWER);
    assert!(s.error().is_none());
    assert!(
        s.events.iter().all(|e| e.get("usage").is_none()),
        "no usage chunk and no usage:null the client did not ask for"
    );
    assert!(s.events.iter().all(|e| e["model"] == "up-a"));
    // Upstream was asked for usage all the same, and it reached the record.
    assert_eq!(
        mock.bodies()[0]["stream_options"],
        json!({"include_usage": true})
    );
    let rec = app.only_record().await;
    assert_eq!(rec.status, RequestStatus::Ok);
    assert_eq!(rec.usage.map(|u| u.total()), Some(15));
    assert!(!rec.usage_estimated);
    assert!(rec.ttft.is_some());
}

#[tokio::test]
async fn stream_keeps_the_usage_chunk_when_the_client_asks_for_it() {
    let mock = MockUpstream::start().await;
    let app = spawn_app(&one_target(&mock, "")).await;
    let mut body = chat_body(true);
    body["stream_options"] = json!({"include_usage": true});
    let s = read_stream(app.chat(body).await).await;
    assert!(s.done);
    let last = s.events.last().expect("events");
    assert_eq!(last["choices"], json!([]));
    assert_eq!(last["usage"]["total_tokens"], 15);
    assert!(s.events[..s.events.len() - 1]
        .iter()
        .all(|e| e["usage"].is_null() && e.get("usage").is_some()));
}

#[tokio::test]
async fn slow_first_token_fails_over_while_a_backup_remains() {
    let (p, b) = (MockUpstream::start().await, MockUpstream::start().await);
    p.set_default(Reply::SlowFirstToken(Duration::from_secs(10)));
    let app = spawn_app(&two_targets(&p, &b, "timeouts = { first_token_s = 1 }")).await;
    let started = Instant::now();
    let resp = app.chat(chat_body(true)).await;
    assert_eq!(resp.status(), 200);
    assert_eq!(header(&resp, "x-switchyard-channel"), "backup");
    let s = read_stream(resp).await;
    let took = started.elapsed();
    assert_eq!(s.text(), ANSWER);
    assert!(
        s.events.iter().all(|e| e["model"] == "up-b"),
        "nothing from the primary leaked"
    );
    assert_eq!((p.hits(), b.hits()), (1, 1));
    assert!(
        took >= Duration::from_millis(900) && took < Duration::from_secs(4),
        "{took:?}"
    );
}

#[tokio::test]
async fn slow_first_token_on_the_last_target_is_waited_for() {
    let mock = MockUpstream::start().await;
    mock.set_default(Reply::SlowFirstToken(Duration::from_secs(2)));
    let app = spawn_app(&one_target(&mock, "timeouts = { first_token_s = 1 }")).await;
    let s = read_stream(app.chat(chat_body(true)).await).await;
    assert!(s.done);
    assert_eq!(s.text(), ANSWER);
    assert_eq!(mock.hits(), 1);
}

#[tokio::test]
async fn stream_error_before_first_token_is_retried_like_a_server_error() {
    let mock = MockUpstream::start().await;
    mock.push([Reply::ErrorEventFirst]);
    let app = spawn_app(&one_target(&mock, "")).await;
    let resp = app.chat(chat_body(true)).await;
    assert_eq!(header(&resp, "x-switchyard-attempts"), "2");
    let s = read_stream(resp).await;
    assert!(s.done && s.error().is_none());
    assert_eq!(s.text(), ANSWER);
}

#[tokio::test]
async fn stream_cut_after_first_token_ends_with_error_event() {
    let (p, b) = (MockUpstream::start().await, MockUpstream::start().await);
    p.set_default(Reply::CutAfter(2));
    let app = spawn_app(&two_targets(&p, &b, "")).await;
    let s = read_stream(app.chat(chat_body(true)).await).await;
    assert!(!s.done, "a cut answer must never finish normally");
    assert_eq!(s.text(), "Hello from");
    let err = s.error().expect("in-band error event");
    assert_eq!(err["code"], "upstream_cut");
    assert!(err["message"]
        .as_str()
        .is_some_and(|m| m.contains("incomplete")));
    assert_eq!(b.hits(), 0, "no failover once content reached the client");
    let rec = app.only_record().await;
    assert_eq!(rec.status, RequestStatus::UpstreamCut);
    assert!(rec.usage_estimated, "no usage came: estimated and flagged");
    assert!(rec.usage.is_some_and(|u| u.output > 0));
}

#[tokio::test]
async fn stream_that_ends_without_finish_or_done_is_a_cut_not_a_finish() {
    let mock = MockUpstream::start().await;
    mock.set_default(Reply::EndWithoutFinish);
    let app = spawn_app(&one_target(&mock, "")).await;
    let s = read_stream(app.chat(chat_body(true)).await).await;
    assert!(!s.done);
    assert_eq!(
        s.error().map(|e| e["code"].clone()),
        Some(json!("upstream_cut"))
    );
    assert_eq!(app.only_record().await.status, RequestStatus::UpstreamCut);
}

#[tokio::test]
async fn stream_stall_after_first_token_ends_with_error_event_after_idle_timeout() {
    let mock = MockUpstream::start().await;
    mock.set_default(Reply::StallAfter(1));
    let app = spawn_app(&one_target(&mock, "timeouts = { idle_s = 1 }")).await;
    let started = Instant::now();
    let s = read_stream(app.chat(chat_body(true)).await).await;
    let took = started.elapsed();
    assert!(!s.done);
    assert_eq!(s.text(), "Hello");
    assert_eq!(
        s.error().map(|e| e["code"].clone()),
        Some(json!("upstream_stalled"))
    );
    assert!(
        took >= Duration::from_millis(900) && took < Duration::from_secs(4),
        "{took:?}"
    );
    assert_eq!(app.only_record().await.status, RequestStatus::UpstreamCut);
}

#[tokio::test]
async fn malformed_upstream_event_is_skipped_not_forwarded() {
    let mock = MockUpstream::start().await;
    mock.set_default(Reply::Malformed);
    let app = spawn_app(&one_target(&mock, "")).await;
    let resp = app.chat(chat_body(true)).await;
    // read_stream asserts every forwarded event is valid JSON.
    let s = read_stream(resp).await;
    assert!(s.done);
    assert_eq!(s.text(), ANSWER);
    assert_eq!(app.only_record().await.status, RequestStatus::Ok);
}

#[tokio::test]
async fn stream_without_done_is_finalised_at_once() {
    let mock = MockUpstream::start().await;
    mock.set_default(Reply::NoDone);
    let app = spawn_app(&one_target(&mock, "timeouts = { idle_s = 20 }")).await;
    let started = Instant::now();
    let s = read_stream(app.chat(chat_body(true)).await).await;
    assert!(
        s.done,
        "a finished answer is closed with [DONE] for the client"
    );
    assert!(s.error().is_none());
    assert_eq!(s.text(), ANSWER);
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "not waiting for idle_s"
    );
}

#[tokio::test]
async fn client_disconnect_mid_stream_is_recorded_as_client_cancelled() {
    let mock = MockUpstream::start().await;
    mock.set_default(Reply::StallAfter(2));
    let app = spawn_app(&one_target(&mock, "timeouts = { idle_s = 20 }")).await;
    let resp = app.chat(chat_body(true)).await;
    let mut body = resp.bytes_stream();
    let first = tokio::time::timeout(Duration::from_secs(5), body.next())
        .await
        .expect("first chunk arrives");
    assert!(first.is_some());
    drop(body);
    let started = Instant::now();
    let rec = app.only_record().await;
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "cancel noticed without waiting for idle"
    );
    assert_eq!(rec.status, RequestStatus::ClientCancelled);
    assert!(rec.usage_estimated && rec.usage.is_some_and(|u| u.output > 0));
}

#[tokio::test]
async fn client_disconnect_before_the_answer_is_recorded_too() {
    let mock = MockUpstream::start().await;
    mock.set_default(Reply::Silent);
    let app = spawn_app(&one_target(&mock, "")).await;
    let http = reqwest::Client::builder()
        .timeout(Duration::from_millis(500))
        .build()
        .expect("client");
    let err = http
        .post(app.url("/v1/chat/completions"))
        .bearer_auth(&app.key)
        .json(&chat_body(false))
        .send()
        .await;
    assert!(err.is_err(), "client gave up");
    let rec = app.only_record().await;
    assert_eq!(rec.status, RequestStatus::ClientCancelled);
    assert_eq!(rec.attempts.len(), 0, "the attempt in flight had not ended");
}

#[tokio::test]
async fn chunks_are_forwarded_as_they_arrive_not_buffered() {
    let mock = MockUpstream::start().await;
    // First token now, then a 2 s pause before the rest.
    mock.set_default(Reply::StallAfter(1));
    let app = spawn_app(&one_target(&mock, "timeouts = { idle_s = 2 }")).await;
    let started = Instant::now();
    let resp = app.chat(chat_body(true)).await;
    let mut body = resp.bytes_stream();
    let mut seen = String::new();
    while !seen.contains("Hello") {
        let chunk = tokio::time::timeout(Duration::from_secs(5), body.next())
            .await
            .expect("data")
            .expect("chunk")
            .expect("bytes");
        seen.push_str(&String::from_utf8_lossy(&chunk));
    }
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "first token reached the client before the stall: {:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn unknown_fields_reach_the_upstream_unchanged() {
    let mock = MockUpstream::start().await;
    let app = spawn_app(&one_target(&mock, "")).await;
    let body = json!({
        "model": "gpt-test",
        "messages": [
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": [
                {"type": "text", "text": "What is this?"},
                {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo=", "detail": "low"}}
            ]}
        ],
        "tools": [{"type": "function", "function": {"name": "lookup", "description": "d", "parameters": {"type": "object", "properties": {"q": {"type": "string"}}}}}],
        "tool_choice": "auto",
        "response_format": {"type": "json_object"},
        "seed": 42,
        "temperature": 0.2,
        "x_vendor_extension": {"nested": [1, 2, 3]}
    });
    assert_eq!(app.chat(body.clone()).await.status(), 200);
    let sent = &mock.bodies()[0];
    let mut expected = body;
    expected["model"] = json!("up-a");
    assert_eq!(sent, &expected);
    let auth = mock.last_headers();
    assert!(
        auth.iter().all(|(k, _)| k != "authorization"),
        "secret = none sends no Authorization header"
    );
}

#[tokio::test]
async fn channel_secret_is_sent_as_bearer_and_never_the_gateway_key() {
    let mock = MockUpstream::start().await;
    let config = format!(
        r#"[server]
listen = "127.0.0.1:0"

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
    let app = spawn_app_with(&config, &[("openai", "sk-upstream-secret")]).await;
    assert_eq!(app.chat(chat_body(false)).await.status(), 200);
    let headers = mock.last_headers();
    let auth = headers
        .iter()
        .find(|(k, _)| k == "authorization")
        .map(|(_, v)| v.as_str());
    assert_eq!(auth, Some("Bearer sk-upstream-secret"));
    assert!(headers.iter().all(|(_, v)| !v.contains(&app.key)));
}
