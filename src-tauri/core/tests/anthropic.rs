//! `anthropic` channels end to end: an OpenAI client talks to the real
//! gateway, which calls a mock that speaks Anthropic's Messages wire
//! format. What the client sees (answers, chunk sequences, errors), what
//! Anthropic receives, how Anthropic's failures route (DESIGN.md §5), and
//! what the ledger charges for cache reads, cache writes and output (§6).

use std::time::{Duration, Instant};

use serde_json::{json, Value};
use switchyard::config::Bucket;
use switchyard::ledger::receipts;
use switchyard::record::RequestStatus;
use switchyard::record::Usage;

use crate::helpers::*;
use crate::mock_anthropic::*;

const TEN: i64 = 10_000_000;

/// Route `claude` → `claude-sonnet-4-5` on channel `claude` (`primary`),
/// then on `claude-backup` (`backup`) when given. `secret` is the
/// channels' secret setting; `route_extra` is appended to the route.
fn claude_config(
    primary: &MockAnthropic,
    backup: Option<&MockAnthropic>,
    secret: &str,
    route_extra: &str,
) -> String {
    let mut config = format!(
        r#"[server]
listen = "127.0.0.1:0"

[[channels]]
id = "claude"
type = "anthropic"
brand = "Anthropic"
base_url = "{}"
bucket = "credit"
{secret}
"#,
        primary.url()
    );
    let mut targets = r#"{ channel = "claude", model = "claude-sonnet-4-5" }"#.to_string();
    if let Some(b) = backup {
        config.push_str(&format!(
            r#"
[[channels]]
id = "claude-backup"
type = "anthropic"
base_url = "{}"
bucket = "credit"
{secret}
"#,
            b.url()
        ));
        targets.push_str(r#", { channel = "claude-backup", model = "claude-sonnet-4-5" }"#);
    }
    config.push_str(&format!(
        "\n[[routes]]\nmodel = \"claude\"\ntargets = [{targets}]\n{route_extra}\n"
    ));
    config
}

/// A gateway in front of the mocks, with Credit topped up so the (priced)
/// Claude targets may be called.
async fn claude_app(
    primary: &MockAnthropic,
    backup: Option<&MockAnthropic>,
    extra: &str,
) -> TestApp {
    let app = spawn_app_with(
        &claude_config(primary, backup, "secret = \"none\"", extra),
        &[],
    )
    .await;
    app.topup(Bucket::Credit, TEN).await;
    app
}

fn ask(stream: bool) -> Value {
    json!({
        "model": "claude",
        "messages": [
            {"role": "system", "content": "You are a weather assistant."},
            {"role": "user", "content": "Weather in Paris and London?"}
        ],
        "tools": [{"type": "function", "function": {
            "name": "get_weather",
            "parameters": {"type": "object", "properties": {"location": {"type": "string"}}}
        }}],
        "stream": stream
    })
}

/// Each chunk's choice delta, with its finish reason folded in.
fn deltas(s: &ClientStream) -> Vec<Value> {
    s.events
        .iter()
        .filter_map(|c| {
            let choice = c.pointer("/choices/0")?;
            let mut d = choice["delta"].clone();
            if let Some(f) = choice["finish_reason"].as_str() {
                d["finish_reason"] = json!(f);
            }
            Some(d)
        })
        .collect()
}

/// What the fixture stream looks like to an OpenAI client, chunk by chunk.
fn fixture_stream_deltas() -> Vec<Value> {
    vec![
        json!({"role": "assistant", "content": ""}),
        json!({"reasoning_content": "The user wants the weather in Paris and London."}),
        json!({"reasoning_content": " I should call get_weather twice."}),
        json!({"content": "Let me check"}),
        json!({"content": " both cities."}),
        json!({"tool_calls": [{"index": 0, "id": "toolu_01T1x1fJ34qAmk2tNTrN7Up6", "type": "function", "function": {"name": "get_weather", "arguments": ""}}]}),
        json!({"tool_calls": [{"index": 0, "function": {"arguments": "{\"location\": \"Par"}}]}),
        json!({"tool_calls": [{"index": 0, "function": {"arguments": "is, France\"}"}}]}),
        json!({"tool_calls": [{"index": 1, "id": "toolu_01ABmPq4r1Yx8y1nKqjqJ7Lz", "type": "function", "function": {"name": "get_weather", "arguments": ""}}]}),
        json!({"tool_calls": [{"index": 1, "function": {"arguments": "{\"location\": \"London, UK\"}"}}]}),
        json!({"finish_reason": "tool_calls"}),
    ]
}

#[tokio::test]
async fn whole_answer_reaches_an_openai_client_with_text_tool_calls_finish_and_usage() {
    let mock = MockAnthropic::start().await;
    let config = claude_config(&mock, None, "", "");
    let app = spawn_app_with(&config, &[("claude", "sk-ant-test")]).await;
    app.topup(Bucket::Credit, TEN).await;
    let resp = app.chat(ask(false)).await;
    assert_eq!(resp.status(), 200);
    assert_eq!(header(&resp, "x-switchyard-channel"), "claude");
    let body: Value = resp.json().await.expect("json");
    assert_eq!(body["object"], "chat.completion");
    assert_eq!(body["model"], "claude-sonnet-4-5-20250929");
    let choice = &body["choices"][0];
    assert_eq!(choice["finish_reason"], "tool_calls");
    assert_eq!(
        choice["message"],
        json!({
            "role": "assistant",
            "content": "I'll check the current weather in Paris for you.",
            "tool_calls": [{
                "id": "toolu_01A09q90qw90lq917835lq9",
                "type": "function",
                "function": {"name": "get_weather", "arguments": "{\"location\":\"Paris, France\",\"unit\":\"celsius\"}"}
            }]
        })
    );
    assert_eq!(
        body["usage"],
        json!({"prompt_tokens": 472, "completion_tokens": 89, "total_tokens": 561, "prompt_tokens_details": {"cached_tokens": 0}})
    );

    // What Anthropic received.
    let got = &mock.received()[0];
    assert_eq!(got.path, "/v1/messages");
    assert_eq!(got.header("x-api-key"), Some("sk-ant-test"));
    assert_eq!(got.header("anthropic-version"), Some("2023-06-01"));
    assert_eq!(got.header("content-type"), Some("application/json"));
    assert_eq!(got.header("authorization"), None);
    assert!(got.headers.iter().all(|(_, v)| !v.contains(&app.key)));
    assert_eq!(
        got.body,
        json!({
            "model": "claude-sonnet-4-5",
            "max_tokens": 16384,
            "system": "You are a weather assistant.",
            "messages": [{"role": "user", "content": [{"type": "text", "text": "Weather in Paris and London?"}]}],
            "tools": [{"name": "get_weather", "input_schema": {"type": "object", "properties": {"location": {"type": "string"}}}}]
        })
    );
    let rec = app.only_record().await;
    assert_eq!(
        rec.answered_model.as_deref(),
        Some("claude-sonnet-4-5-20250929")
    );
    assert_eq!(
        rec.usage,
        Some(Usage {
            input: 472,
            output: 89,
            ..Usage::default()
        })
    );
}

#[tokio::test]
async fn stream_is_relayed_as_the_exact_openai_chunk_sequence_with_the_usage_chunk_asked_for() {
    let mock = MockAnthropic::start().await;
    let app = claude_app(&mock, None, "").await;
    let mut body = ask(true);
    body["stream_options"] = json!({"include_usage": true});
    let resp = app.chat(body).await;
    assert_eq!(resp.status(), 200);
    assert_eq!(header(&resp, "content-type"), "text/event-stream");
    let s = read_stream(resp).await;
    assert!(s.done && s.error().is_none());
    assert_eq!(deltas(&s), fixture_stream_deltas());
    let last = s.events.last().expect("events");
    assert_eq!(last["choices"], json!([]));
    assert_eq!(
        last["usage"],
        json!({"prompt_tokens": 4225, "completion_tokens": 89, "total_tokens": 4314, "prompt_tokens_details": {"cached_tokens": 3000}})
    );
    assert_eq!(s.events.len(), fixture_stream_deltas().len() + 1);
    for e in &s.events {
        assert_eq!(e["object"], "chat.completion.chunk");
        assert_eq!(e["model"], "claude-sonnet-4-5-20250929");
        assert_eq!(e["id"], "msg_01XFDUDYJgAACzvnptvVoYEL");
    }
    assert_eq!(mock.received()[0].body["stream"], true);
    assert_eq!(
        mock.received()[0].header("accept"),
        Some("text/event-stream")
    );
}

#[tokio::test]
async fn stream_without_include_usage_carries_no_usage_chunk() {
    let mock = MockAnthropic::start().await;
    let app = claude_app(&mock, None, "").await;
    let s = read_stream(app.chat(ask(true)).await).await;
    assert!(s.done);
    assert_eq!(deltas(&s), fixture_stream_deltas());
    assert!(s.events.iter().all(|e| e.get("usage").is_none()));
    let rec = app.only_record().await;
    assert_eq!(rec.status, RequestStatus::Ok);
    assert!(!rec.usage_estimated);
    assert_eq!(rec.usage.map(|u| u.total()), Some(25 + 3000 + 1200 + 89));
}

#[tokio::test]
async fn overloaded_529_is_retried_then_fails_over_to_the_backup() {
    let (p, b) = (MockAnthropic::start().await, MockAnthropic::start().await);
    p.set_default(status(529, OVERLOADED));
    let app = claude_app(&p, Some(&b), "").await;
    let resp = app.chat(ask(false)).await;
    assert_eq!(resp.status(), 200);
    assert_eq!(header(&resp, "x-switchyard-channel"), "claude-backup");
    assert_eq!(header(&resp, "x-switchyard-attempts"), "4");
    let body: Value = resp.json().await.expect("json");
    assert_eq!(body["choices"][0]["finish_reason"], "tool_calls");
    assert_eq!(
        (p.hits(), b.hits()),
        (3, 1),
        "retried like a 5xx, then failed over"
    );
}

#[tokio::test]
async fn rate_limited_429_honours_retry_after_then_answers() {
    let mock = MockAnthropic::start().await;
    mock.push([Reply::Status {
        status: 429,
        body: RATE_LIMITED,
        headers: vec![("retry-after", "1")],
    }]);
    let app = claude_app(&mock, None, "").await;
    let started = Instant::now();
    let resp = app.chat(ask(false)).await;
    let took = started.elapsed();
    assert_eq!(resp.status(), 200);
    assert_eq!(header(&resp, "x-switchyard-attempts"), "2");
    assert_eq!(mock.hits(), 2);
    assert!(
        took >= Duration::from_millis(950) && took < Duration::from_secs(4),
        "{took:?}"
    );
}

#[tokio::test]
async fn prompt_too_long_fails_over_at_once_without_retrying_the_same_target() {
    let (p, b) = (MockAnthropic::start().await, MockAnthropic::start().await);
    p.set_default(status(400, PROMPT_TOO_LONG));
    let app = claude_app(&p, Some(&b), "").await;
    let resp = app.chat(ask(false)).await;
    assert_eq!(resp.status(), 200);
    assert_eq!(header(&resp, "x-switchyard-channel"), "claude-backup");
    assert_eq!((p.hits(), b.hits()), (1, 1));
}

#[tokio::test]
async fn prompt_too_long_everywhere_reaches_the_client_as_an_openai_context_length_error() {
    let mock = MockAnthropic::start().await;
    mock.set_default(status(400, PROMPT_TOO_LONG));
    let app = claude_app(&mock, None, "").await;
    let resp = app.chat(ask(false)).await;
    assert_eq!(resp.status(), 400);
    let body: Value = resp.json().await.expect("json");
    assert_eq!(
        body,
        json!({"error": {
            "message": "prompt is too long: 207791 tokens > 200000 maximum",
            "type": "invalid_request_error", "param": null, "code": "context_length_exceeded"
        }})
    );
    assert_eq!(mock.hits(), 1);
}

#[tokio::test]
async fn invalid_request_400_is_relayed_as_an_openai_error_and_never_failed_over() {
    let (p, b) = (MockAnthropic::start().await, MockAnthropic::start().await);
    p.set_default(status(400, INVALID_REQUEST));
    let app = claude_app(&p, Some(&b), "").await;
    let resp = app.chat(ask(false)).await;
    assert_eq!(resp.status(), 400);
    let body: Value = resp.json().await.expect("json");
    assert_eq!(
        body,
        json!({"error": {
            "message": "messages.0.content.1.image.source.base64.media_type: Input should be 'image/jpeg', 'image/png', 'image/gif' or 'image/webp'",
            "type": "invalid_request_error", "param": null, "code": null
        }})
    );
    assert_eq!((p.hits(), b.hits()), (1, 0), "no retry, no failover");
    let rec = app.only_record().await;
    assert_eq!(rec.status, RequestStatus::Error);
}

#[tokio::test]
async fn rejected_key_fails_over_to_the_backup() {
    let (p, b) = (MockAnthropic::start().await, MockAnthropic::start().await);
    p.set_default(status(
        401,
        r#"{"type":"error","error":{"type":"authentication_error","message":"invalid x-api-key"},"request_id":"req_011CV"}"#,
    ));
    let app = claude_app(&p, Some(&b), "").await;
    let resp = app.chat(ask(false)).await;
    assert_eq!(resp.status(), 200);
    assert_eq!(header(&resp, "x-switchyard-channel"), "claude-backup");
    assert_eq!((p.hits(), b.hits()), (1, 1));
}

#[tokio::test]
async fn stream_error_event_before_the_first_token_is_retried() {
    let mock = MockAnthropic::start().await;
    mock.push([Reply::Sse(STREAM_OVERLOADED)]);
    let app = claude_app(&mock, None, "").await;
    let resp = app.chat(ask(true)).await;
    assert_eq!(header(&resp, "x-switchyard-attempts"), "2");
    let s = read_stream(resp).await;
    assert!(s.done && s.error().is_none());
    assert_eq!(
        deltas(&s),
        fixture_stream_deltas(),
        "nothing of the failed attempt leaked"
    );
}

#[tokio::test]
async fn stream_cut_after_the_answer_began_ends_with_an_error_event_not_a_finish() {
    let (p, b) = (MockAnthropic::start().await, MockAnthropic::start().await);
    // Events 0–9: the start, the thinking, and both text deltas.
    p.set_default(Reply::SseCutAfter(STREAM, 10));
    let app = claude_app(&p, Some(&b), "").await;
    let s = read_stream(app.chat(ask(true)).await).await;
    assert!(!s.done, "a cut answer must never finish normally");
    assert_eq!(s.text(), "Let me check both cities.");
    assert_eq!(
        s.error().map(|e| e["code"].clone()),
        Some(json!("upstream_cut"))
    );
    assert!(deltas(&s).iter().all(|d| d.get("finish_reason").is_none()));
    assert_eq!(b.hits(), 0, "no failover once content reached the client");
    let rec = app.only_record().await;
    assert_eq!(rec.status, RequestStatus::UpstreamCut);
    assert!(
        rec.usage_estimated,
        "no final usage came: estimated and flagged"
    );
}

#[tokio::test]
async fn a_thinking_delta_counts_as_the_first_token() {
    let (p, b) = (MockAnthropic::start().await, MockAnthropic::start().await);
    // The first thinking delta (event 3) arrives at once, the rest after
    // longer than first_token_s: the model is alive, so no failover.
    p.set_default(Reply::SsePauseAfter(STREAM, 4, Duration::from_millis(1500)));
    let app = claude_app(&p, Some(&b), "timeouts = { first_token_s = 1 }").await;
    let resp = app.chat(ask(true)).await;
    assert_eq!(header(&resp, "x-switchyard-channel"), "claude");
    let s = read_stream(resp).await;
    assert!(s.done);
    assert_eq!(deltas(&s), fixture_stream_deltas());
    assert_eq!(b.hits(), 0);
}

#[tokio::test]
async fn silence_before_any_thinking_or_text_fails_over() {
    let (p, b) = (MockAnthropic::start().await, MockAnthropic::start().await);
    // message_start, a block start and a ping are not progress.
    p.set_default(Reply::SsePauseAfter(STREAM, 3, Duration::from_secs(5)));
    let app = claude_app(&p, Some(&b), "timeouts = { first_token_s = 1 }").await;
    let resp = app.chat(ask(true)).await;
    assert_eq!(header(&resp, "x-switchyard-channel"), "claude-backup");
    let s = read_stream(resp).await;
    assert!(s.done);
    assert_eq!(
        deltas(&s),
        fixture_stream_deltas(),
        "nothing from the primary leaked"
    );
    assert_eq!((p.hits(), b.hits()), (1, 1));
}

#[tokio::test]
async fn receipts_charge_cache_reads_cache_writes_and_output_exactly() {
    let mock = MockAnthropic::start().await;
    mock.push([Reply::Json(MESSAGE_CACHED)]);
    let app = claude_app(&mock, None, "").await;
    assert_eq!(app.chat(ask(false)).await.status(), 200);
    assert!(read_stream(app.chat(ask(true)).await).await.done);
    app.records(2).await;
    app.flush().await;
    let mut all = receipts::recent(&app.db(), 10).expect("receipts");
    all.sort_by_key(|r| r.stream);
    assert_eq!(all.len(), 2);
    let (whole, streamed) = (&all[0], &all[1]);

    // claude-sonnet-4-5 list prices per 1M: input 3.00, cache read 0.30,
    // cache write 3.75, output 15.00 (USD). Whole answer:
    // 21×3 + 2000×0.30 + 1000×3.75 + 503×15 = 63 + 600 + 3750 + 7545.
    assert_eq!(
        whole.usage,
        Usage {
            input: 21,
            cached_input: 2000,
            cache_write: 1000,
            output: 503,
            reasoning: 0
        }
    );
    assert_eq!(whole.cost, 11_958);
    // Streamed: 25×3 + 3000×0.30 + 1200×3.75 + 89×15 = 75 + 900 + 4500 + 1335.
    assert_eq!(
        streamed.usage,
        Usage {
            input: 25,
            cached_input: 3000,
            cache_write: 1200,
            output: 89,
            reasoning: 0
        }
    );
    assert_eq!(streamed.cost, 6_810);
    for r in &all {
        assert!(!r.usage_estimated);
        assert_eq!(r.status, "ok");
        assert_eq!(r.currency.as_deref(), Some("USD"));
        assert_eq!(r.bucket.as_deref(), Some("credit"));
        assert_eq!(r.price_source.as_deref(), Some("catalog"));
        let p = r.price.expect("priced");
        assert_eq!(
            (p.input, p.cached_input, p.cache_write, p.output),
            (3_000_000, 300_000, 3_750_000, 15_000_000)
        );
    }
    assert_eq!(
        app.state().core.ledger.balance(Bucket::Credit),
        TEN - 11_958 - 6_810
    );
}
