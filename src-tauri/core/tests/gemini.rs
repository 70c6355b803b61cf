//! The `gemini` channel type end to end: the real gateway in front of a mock
//! Gemini API that speaks its wire format (`generateContent` JSON,
//! `streamGenerateContent?alt=sse` chunks without `[DONE]`, Gemini error
//! bodies) and misbehaves on demand. Every assertion is on what an OpenAI
//! client sees, or on what the ledger charged.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::http::{HeaderMap, Uri};
use axum::response::Response;
use futures_util::StreamExt;
use serde_json::{json, Value};
use switchyard::config::Bucket;
use switchyard::ledger::{receipts, Receipt};

use crate::helpers::*;

const ANSWER: &str = include_str!("fixtures/gemini/generate_content_response.json");
const STREAM: &str = include_str!("fixtures/gemini/stream.sse");
const PROMPT_BLOCKED: &str = include_str!("fixtures/gemini/prompt_blocked.json");
const TOO_LONG: &str = include_str!("fixtures/gemini/error_400_too_long.json");
const INVALID: &str = include_str!("fixtures/gemini/error_400_invalid_argument.json");
const BAD_KEY: &str = include_str!("fixtures/gemini/error_400_api_key_invalid.json");
const EXHAUSTED: &str = include_str!("fixtures/gemini/error_429_resource_exhausted.json");
const UNAVAILABLE: &str = r#"{"error":{"code":503,"message":"The model is overloaded. Please try again later.","status":"UNAVAILABLE"}}"#;

const KEY: &str = "AIzaSyTEST-primary-0123456789";
const BACKUP_KEY: &str = "AIzaSyTEST-backup-9876543210";
const MODEL: &str = "gemini-2.5-flash";

/// What the mock does with one request (also used by `gemini_ingress`).
#[derive(Clone, Debug)]
pub enum Gem {
    /// The fixture answer: JSON, or the fixture stream for stream calls.
    Answer,
    /// An HTTP error with this Gemini error body.
    Status(u16, &'static str),
    /// A prompt blocked by safety, reported with 200 (JSON or one event).
    Blocked,
    /// Stream calls: this many events of the fixture stream, then a cut.
    CutAfter(usize),
}

/// One request as the mock saw it.
#[derive(Clone, Debug)]
pub struct Seen {
    /// Path and query.
    pub uri: String,
    pub api_key: Option<String>,
    pub body: Value,
}

pub struct GeminiMock {
    port: u16,
    script: Mutex<VecDeque<Gem>>,
    default: Mutex<Gem>,
    seen: Mutex<Vec<Seen>>,
}

impl GeminiMock {
    pub async fn start() -> Arc<GeminiMock> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind mock");
        let port = listener.local_addr().expect("addr").port();
        let mock = Arc::new(GeminiMock {
            port,
            script: Mutex::new(VecDeque::new()),
            default: Mutex::new(Gem::Answer),
            seen: Mutex::new(Vec::new()),
        });
        let handler = Arc::clone(&mock);
        let app = axum::Router::new().fallback(move |uri: Uri, headers: HeaderMap, body: Bytes| {
            let mock = Arc::clone(&handler);
            async move { mock.handle(&uri, &headers, &body) }
        });
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        mock
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}/v1beta", self.port)
    }

    pub fn push(&self, replies: impl IntoIterator<Item = Gem>) {
        self.script.lock().expect("lock").extend(replies);
    }

    pub fn set_default(&self, reply: Gem) {
        *self.default.lock().expect("lock") = reply;
    }

    pub fn seen(&self) -> Vec<Seen> {
        self.seen.lock().expect("lock").clone()
    }

    pub fn hits(&self) -> usize {
        self.seen.lock().expect("lock").len()
    }

    fn handle(&self, uri: &Uri, headers: &HeaderMap, body: &[u8]) -> Response {
        self.seen.lock().expect("lock").push(Seen {
            uri: uri.to_string(),
            api_key: headers
                .get("x-goog-api-key")
                .and_then(|v| v.to_str().ok())
                .map(str::to_string),
            body: serde_json::from_slice(body).unwrap_or(Value::Null),
        });
        let reply = self
            .script
            .lock()
            .expect("lock")
            .pop_front()
            .unwrap_or_else(|| self.default.lock().expect("lock").clone());
        let stream = uri.path().ends_with(":streamGenerateContent");
        match reply {
            Gem::Status(status, body) => json_response(status, body),
            Gem::Blocked if stream => sse(vec![compact(PROMPT_BLOCKED)], false),
            Gem::Blocked => json_response(200, PROMPT_BLOCKED),
            Gem::Answer if stream => sse(stream_events(), false),
            Gem::Answer => json_response(200, ANSWER),
            Gem::CutAfter(n) => sse(stream_events().into_iter().take(n).collect(), true),
        }
    }
}

fn compact(json: &str) -> String {
    serde_json::from_str::<Value>(json)
        .expect("fixture is JSON")
        .to_string()
}

/// The `data:` payloads of the fixture stream.
fn stream_events() -> Vec<String> {
    STREAM
        .split("\r\n\r\n")
        .filter_map(|e| e.strip_prefix("data: "))
        .map(str::to_string)
        .collect()
}

fn json_response(status: u16, body: &'static str) -> Response {
    Response::builder()
        .status(status)
        .header("content-type", "application/json; charset=UTF-8")
        .body(Body::from(body))
        .expect("response")
}

/// SSE the way Gemini frames it (CRLF, no `[DONE]`), a little apart so
/// the gateway sees the events one by one; `cut` breaks the connection
/// after them instead of ending the body.
fn sse(events: Vec<String>, cut: bool) -> Response {
    let mut items: Vec<Result<Bytes, std::io::Error>> = events
        .into_iter()
        .map(|e| Ok(Bytes::from(format!("data: {e}\r\n\r\n"))))
        .collect();
    if cut {
        items.push(Err(std::io::Error::other("connection cut")));
    }
    let body = futures_util::stream::iter(items).then(|item| async move {
        tokio::time::sleep(Duration::from_millis(20)).await;
        item
    });
    Response::builder()
        .status(200)
        .header("content-type", "text/event-stream")
        .body(Body::from_stream(body))
        .expect("response")
}

/// A route `gemini-2.5-flash` → the `gem` channel on `primary`, then the
/// `gem-backup` channel on `backup` if given; both Gemini, both credit.
fn config(primary: &GeminiMock, backup: Option<&GeminiMock>) -> String {
    let mut c = format!(
        r#"[server]
listen = "127.0.0.1:0"

[[channels]]
id = "gem"
type = "gemini"
brand = "Google"
base_url = "{}"
bucket = "credit"
"#,
        primary.url()
    );
    let mut targets = format!(r#"{{ channel = "gem", model = "{MODEL}" }}"#);
    if let Some(b) = backup {
        c.push_str(&format!(
            r#"
[[channels]]
id = "gem-backup"
type = "gemini"
brand = "Google"
base_url = "{}"
bucket = "credit"
"#,
            b.url()
        ));
        targets.push_str(&format!(
            r#", {{ channel = "gem-backup", model = "{MODEL}" }}"#
        ));
    }
    c.push_str(&format!(
        "\n[[routes]]\nmodel = \"{MODEL}\"\ntargets = [{targets}]\n"
    ));
    c
}

async fn app_for(primary: &GeminiMock, backup: Option<&GeminiMock>) -> TestApp {
    let app = spawn_app_with(
        &config(primary, backup),
        &[("gem", KEY), ("gem-backup", BACKUP_KEY)],
    )
    .await;
    app.topup(Bucket::Credit, 10_000_000).await;
    app
}

fn ask(stream: bool) -> Value {
    json!({
        "model": MODEL,
        "messages": [
            {"role": "system", "content": "You are terse."},
            {"role": "user", "content": "Weather in Paris?"}
        ],
        "tools": [{"type": "function", "function": {
            "name": "get_weather",
            "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}
        }}],
        "stream": stream
    })
}

async fn error_of(resp: reqwest::Response) -> (u16, Value) {
    let status = resp.status().as_u16();
    let body: Value = resp.json().await.expect("JSON error body");
    (status, body)
}

async fn one_receipt(app: &TestApp) -> Receipt {
    app.records(1).await;
    app.flush().await;
    let all = receipts::recent(&app.db(), 10).expect("receipts");
    assert_eq!(all.len(), 1, "exactly one receipt");
    all[0].clone()
}

#[tokio::test]
async fn whole_answer_reaches_the_client_as_an_openai_completion() {
    let gem = GeminiMock::start().await;
    let app = app_for(&gem, None).await;
    let resp = app.chat(ask(false)).await;
    assert_eq!(resp.status(), 200);
    assert_eq!(header(&resp, "x-switchyard-channel"), "gem");
    let b: Value = resp.json().await.expect("json");
    assert_eq!(b["object"], "chat.completion");
    assert_eq!(b["model"], MODEL);
    let choice = &b["choices"][0];
    assert_eq!(choice["finish_reason"], "tool_calls");
    assert_eq!(
        choice["message"]["content"],
        "Let me check the weather in Paris."
    );
    let call = &choice["message"]["tool_calls"][0];
    assert_eq!(call["id"], "call_0");
    assert_eq!(call["type"], "function");
    assert_eq!(call["function"]["name"], "get_weather");
    let args: Value = serde_json::from_str(call["function"]["arguments"].as_str().expect("string"))
        .expect("arguments are JSON");
    assert_eq!(args, json!({"city": "Paris", "unit": "celsius"}));
    assert_eq!(b["usage"]["total_tokens"], 1390);

    // What Gemini received: its own request shape, the key in its header,
    // and no key in the URL.
    let seen = gem.seen();
    assert_eq!(seen.len(), 1);
    assert_eq!(
        seen[0].uri,
        format!("/v1beta/models/{MODEL}:generateContent")
    );
    assert_eq!(seen[0].api_key.as_deref(), Some(KEY));
    assert!(!seen[0].uri.contains(KEY) && !seen[0].uri.contains("key="));
    assert_eq!(
        seen[0].body["systemInstruction"],
        json!({"parts": [{"text": "You are terse."}]})
    );
    assert_eq!(
        seen[0].body["contents"],
        json!([{"role": "user", "parts": [{"text": "Weather in Paris?"}]}])
    );
    assert_eq!(
        seen[0].body["tools"][0]["functionDeclarations"][0]["name"],
        "get_weather"
    );
    assert!(seen[0].body.get("messages").is_none() && seen[0].body.get("model").is_none());
}

#[tokio::test]
async fn stream_becomes_openai_chunks_ending_with_done() {
    let gem = GeminiMock::start().await;
    let app = app_for(&gem, None).await;
    let resp = app.chat(ask(true)).await;
    assert_eq!(resp.status(), 200);
    assert_eq!(header(&resp, "content-type"), "text/event-stream");
    let s = read_stream(resp).await;
    assert!(s.done, "Gemini sends no [DONE]; the gateway ends with one");
    assert!(s.error().is_none());
    assert_eq!(s.text(), "Hello from Gemini.");
    assert!(s
        .events
        .iter()
        .all(|e| e["object"] == "chat.completion.chunk" && e["model"] == MODEL));
    assert!(s.events.iter().all(|e| e.get("usage").is_none()));
    let first = &s.events[0]["choices"][0]["delta"];
    assert_eq!(first["role"], "assistant");
    assert!(first["reasoning_content"]
        .as_str()
        .is_some_and(|r| !r.is_empty()));
    let calls: Vec<&Value> = s
        .events
        .iter()
        .filter_map(|e| e.pointer("/choices/0/delta/tool_calls/0"))
        .collect();
    assert_eq!(calls.len(), 1);
    assert_eq!(calls[0]["function"]["name"], "get_weather");
    assert_eq!(calls[0]["function"]["arguments"], "{\"city\":\"Paris\"}");
    let finishes: Vec<&Value> = s
        .events
        .iter()
        .map(|e| &e["choices"][0]["finish_reason"])
        .filter(|f| !f.is_null())
        .collect();
    assert_eq!(finishes, vec![&json!("tool_calls")]);

    let seen = gem.seen();
    assert_eq!(
        seen[0].uri,
        format!("/v1beta/models/{MODEL}:streamGenerateContent?alt=sse")
    );
    assert_eq!(seen[0].api_key.as_deref(), Some(KEY));
    assert!(!seen[0].uri.contains(KEY));
}

#[tokio::test]
async fn stream_usage_chunk_is_sent_when_the_client_asks() {
    let gem = GeminiMock::start().await;
    let app = app_for(&gem, None).await;
    let mut body = ask(true);
    body["stream_options"] = json!({"include_usage": true});
    let s = read_stream(app.chat(body).await).await;
    assert!(s.done);
    let (last, rest) = s.events.split_last().expect("events");
    assert_eq!(last["choices"], json!([]));
    assert_eq!(last["usage"]["prompt_tokens"], 1200);
    assert_eq!(last["usage"]["completion_tokens"], 50);
    assert_eq!(last["usage"]["total_tokens"], 1250);
    assert_eq!(
        rest.last().expect("finish chunk")["choices"][0]["finish_reason"],
        "tool_calls"
    );
}

#[tokio::test]
async fn overloaded_gemini_is_retried_then_fails_over_to_the_backup() {
    let (gem, backup) = (GeminiMock::start().await, GeminiMock::start().await);
    gem.set_default(Gem::Status(503, UNAVAILABLE));
    let app = app_for(&gem, Some(&backup)).await;
    let resp = app.chat(ask(false)).await;
    assert_eq!(resp.status(), 200);
    assert_eq!(header(&resp, "x-switchyard-channel"), "gem-backup");
    let b: Value = resp.json().await.expect("json");
    assert_eq!(b["choices"][0]["finish_reason"], "tool_calls");
    assert_eq!(gem.hits(), 3, "retried before failing over");
    assert_eq!(backup.hits(), 1);
    assert_eq!(backup.seen()[0].api_key.as_deref(), Some(BACKUP_KEY));
}

#[tokio::test]
async fn resource_exhausted_waits_the_retry_delay_it_names_on_the_only_target() {
    let gem = GeminiMock::start().await;
    let exhausted: &'static str = EXHAUSTED.replace("\"23s\"", "\"1.2s\"").leak();
    gem.push([Gem::Status(429, exhausted)]);
    let app = app_for(&gem, None).await;
    let started = std::time::Instant::now();
    let resp = app.chat(ask(false)).await;
    let took = started.elapsed();
    assert_eq!(resp.status(), 200);
    assert_eq!(header(&resp, "x-switchyard-attempts"), "2");
    assert_eq!(gem.hits(), 2);
    // Backoff alone would have retried within ~0.45 s.
    assert!(took >= Duration::from_millis(1200), "waited {took:?}");
}

#[tokio::test]
async fn resource_exhausted_with_a_long_retry_delay_fails_over_at_once() {
    let (gem, backup) = (GeminiMock::start().await, GeminiMock::start().await);
    gem.set_default(Gem::Status(429, EXHAUSTED));
    let app = app_for(&gem, Some(&backup)).await;
    let resp = app.chat(ask(false)).await;
    assert_eq!(resp.status(), 200);
    assert_eq!(header(&resp, "x-switchyard-channel"), "gem-backup");
    assert_eq!(
        (gem.hits(), backup.hits()),
        (1, 1),
        "23 s is no wait with a backup"
    );
}

#[tokio::test]
async fn too_long_prompt_fails_over_at_once_to_the_backup() {
    let (gem, backup) = (GeminiMock::start().await, GeminiMock::start().await);
    gem.set_default(Gem::Status(400, TOO_LONG));
    let app = app_for(&gem, Some(&backup)).await;
    let s = read_stream(app.chat(ask(true)).await).await;
    assert!(s.done);
    assert_eq!(s.text(), "Hello from Gemini.");
    assert_eq!(gem.hits(), 1, "a too-long prompt is never retried");
    assert_eq!(backup.hits(), 1);
}

#[tokio::test]
async fn too_long_everywhere_is_an_openai_context_length_error() {
    let gem = GeminiMock::start().await;
    gem.set_default(Gem::Status(400, TOO_LONG));
    let app = app_for(&gem, None).await;
    let (status, b) = error_of(app.chat(ask(false)).await).await;
    assert_eq!(status, 400);
    assert_eq!(b["error"]["code"], "context_length_exceeded");
    assert_eq!(b["error"]["type"], "invalid_request_error");
    assert_eq!(
        b["error"]["message"],
        "The input token count (1200293) exceeds the maximum number of tokens allowed (1048576)."
    );
}

#[tokio::test]
async fn blocked_prompt_is_a_content_policy_error_with_no_failover() {
    for stream in [false, true] {
        let (gem, backup) = (GeminiMock::start().await, GeminiMock::start().await);
        gem.set_default(Gem::Blocked);
        let app = app_for(&gem, Some(&backup)).await;
        let resp = app.chat(ask(stream)).await;
        assert_eq!(
            header(&resp, "content-type"),
            "application/json",
            "an error, not a stream"
        );
        let (status, b) = error_of(resp).await;
        assert_eq!(status, 400, "stream: {stream}");
        assert_eq!(b["error"]["code"], "content_policy_violation");
        let message = b["error"]["message"].as_str().expect("message");
        assert!(
            message.contains("SAFETY") && message.contains("HARM_CATEGORY_DANGEROUS_CONTENT"),
            "{message}"
        );
        assert_eq!(gem.hits(), 1, "not retried");
        assert_eq!(backup.hits(), 0, "not failed over");
    }
}

#[tokio::test]
async fn invalid_argument_is_relayed_in_openai_shape_with_no_failover() {
    let (gem, backup) = (GeminiMock::start().await, GeminiMock::start().await);
    gem.set_default(Gem::Status(400, INVALID));
    let app = app_for(&gem, Some(&backup)).await;
    let (status, b) = error_of(app.chat(ask(false)).await).await;
    assert_eq!(status, 400);
    assert_eq!(b["error"]["type"], "invalid_request_error");
    assert_eq!(b["error"]["code"], "invalid_argument");
    assert_eq!(
        b["error"]["message"],
        "* GenerateContentRequest.contents: contents is not specified"
    );
    assert_eq!((gem.hits(), backup.hits()), (1, 0));
}

#[tokio::test]
async fn invalid_api_key_fails_over_and_says_which_secret_to_replace() {
    let (gem, backup) = (GeminiMock::start().await, GeminiMock::start().await);
    gem.set_default(Gem::Status(400, BAD_KEY));
    let app = app_for(&gem, Some(&backup)).await;
    let resp = app.chat(ask(false)).await;
    assert_eq!(resp.status(), 200);
    assert_eq!(header(&resp, "x-switchyard-channel"), "gem-backup");
    assert_eq!((gem.hits(), backup.hits()), (1, 1));

    // With no backup left, the client is told what to fix, not Gemini's 400.
    backup.set_default(Gem::Status(400, BAD_KEY));
    let (status, b) = error_of(app.chat(ask(false)).await).await;
    assert_eq!(status, 502);
    let message = b["error"]["message"].as_str().expect("message");
    assert!(message.contains("switchyard secret set gem"), "{message}");
    assert!(!message.contains(KEY) && !message.contains(BACKUP_KEY));
}

#[tokio::test]
async fn stream_cut_after_the_first_token_ends_with_an_error_event() {
    let (gem, backup) = (GeminiMock::start().await, GeminiMock::start().await);
    gem.set_default(Gem::CutAfter(2));
    let app = app_for(&gem, Some(&backup)).await;
    let s = read_stream(app.chat(ask(true)).await).await;
    assert!(!s.done, "a cut answer never finishes normally");
    assert_eq!(s.text(), "Hello");
    let err = s.error().expect("in-band error event");
    assert_eq!(err["code"], "upstream_cut");
    assert_eq!(
        backup.hits(),
        0,
        "no failover once content reached the client"
    );
}

#[tokio::test]
async fn receipts_charge_cached_and_thinking_tokens_exactly() {
    let gem = GeminiMock::start().await;
    let app = app_for(&gem, None).await;
    assert_eq!(app.chat(ask(false)).await.status(), 200);
    let rec = one_receipt(&app).await;
    // usageMetadata: prompt 1200 of which 1000 cached, candidates 40,
    // thoughts 150 (reported beside the candidates, total 1390).
    assert_eq!(
        (
            rec.usage.input,
            rec.usage.cached_input,
            rec.usage.cache_write,
            rec.usage.output,
            rec.usage.reasoning
        ),
        (200, 1000, 0, 40, 150)
    );
    assert_eq!(rec.usage.total(), 1390);
    assert!(!rec.usage_estimated);
    // gemini-2.5-flash list prices per 1M tokens: input 0.30, cached 0.03,
    // output and thinking 2.50 USD:
    // 200×0.30 + 1000×0.03 + 40×2.50 + 150×2.50 = 565 micro-USD.
    assert_eq!(rec.cost, 565);
    assert_eq!(rec.currency.as_deref(), Some("USD"));
    assert_eq!(rec.channel.as_deref(), Some("gem"));
    assert_eq!(rec.upstream_model.as_deref(), Some(MODEL));
    assert_eq!(rec.status, "ok");
    assert_eq!(
        app.state().core.ledger.balance(Bucket::Credit),
        10_000_000 - 565
    );
}

#[tokio::test]
async fn streamed_receipt_uses_the_last_usage_metadata() {
    let gem = GeminiMock::start().await;
    let app = app_for(&gem, None).await;
    let s = read_stream(app.chat(ask(true)).await).await;
    assert!(s.done);
    let rec = one_receipt(&app).await;
    assert_eq!(
        (
            rec.usage.input,
            rec.usage.cached_input,
            rec.usage.output,
            rec.usage.reasoning
        ),
        (200, 1000, 20, 30)
    );
    assert!(!rec.usage_estimated);
    // 200×0.30 + 1000×0.03 + 20×2.50 + 30×2.50 = 215 micro-USD.
    assert_eq!(rec.cost, 215);
    assert!(rec.stream);
}
