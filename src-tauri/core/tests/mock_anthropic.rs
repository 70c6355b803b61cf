//! A mock Anthropic Messages upstream on 127.0.0.1: `POST /v1/messages`
//! answered in Anthropic's real wire format — a JSON message, or SSE sent
//! event by event with `event:` lines — and misbehaving on demand (529,
//! 429 with `retry-after`, 400s, a stream cut or paused mid-answer). Like
//! `mock.rs`, it is a small hand-written HTTP/1.1 server so that it can
//! break a connection the way a real network does.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::Value;
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};

use crate::mock::{read_request, reset, send};

pub const MESSAGE: &str = include_str!("fixtures/anthropic/message_text_tool_use.json");
pub const MESSAGE_CACHED: &str = include_str!("fixtures/anthropic/message_thinking_cache.json");
pub const STREAM: &str = include_str!("fixtures/anthropic/stream_thinking_text_tool_use.sse");
pub const STREAM_OVERLOADED: &str = include_str!("fixtures/anthropic/stream_error_overloaded.sse");
pub const OVERLOADED: &str = include_str!("fixtures/anthropic/error_overloaded_529.json");
pub const RATE_LIMITED: &str = include_str!("fixtures/anthropic/error_rate_limit_429.json");
pub const PROMPT_TOO_LONG: &str = include_str!("fixtures/anthropic/error_prompt_too_long_400.json");
pub const INVALID_REQUEST: &str = include_str!("fixtures/anthropic/error_invalid_request_400.json");

/// What the mock does with one request.
#[derive(Clone, Debug)]
pub enum Reply {
    /// 200 with this JSON message.
    Json(&'static str),
    /// 200 SSE: these events (blank-line separated), each in its own write.
    Sse(&'static str),
    /// SSE: the first `n` events, then the connection is reset.
    SseCutAfter(&'static str, usize),
    /// SSE: the first `n` events, a pause, then the rest.
    SsePauseAfter(&'static str, usize, Duration),
    /// An HTTP error with this body and extra headers.
    Status {
        status: u16,
        body: &'static str,
        headers: Vec<(&'static str, &'static str)>,
    },
}

pub fn status(status: u16, body: &'static str) -> Reply {
    Reply::Status {
        status,
        body,
        headers: Vec::new(),
    }
}

/// One request as the mock received it.
#[derive(Clone, Debug)]
pub struct Received {
    pub path: String,
    pub headers: Vec<(String, String)>,
    pub body: Value,
}

impl Received {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

pub struct MockAnthropic {
    pub port: u16,
    script: Mutex<VecDeque<Reply>>,
    /// When the script is empty: answer JSON or SSE as the request asks.
    default: Mutex<Option<Reply>>,
    hits: AtomicUsize,
    received: Mutex<Vec<Received>>,
}

impl MockAnthropic {
    pub async fn start() -> Arc<MockAnthropic> {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind mock");
        let port = listener.local_addr().expect("addr").port();
        let mock = Arc::new(MockAnthropic {
            port,
            script: Mutex::new(VecDeque::new()),
            default: Mutex::new(None),
            hits: AtomicUsize::new(0),
            received: Mutex::new(Vec::new()),
        });
        let weak = Arc::downgrade(&mock);
        tokio::spawn(async move {
            loop {
                let Ok((sock, _)) = listener.accept().await else {
                    break;
                };
                let Some(mock) = weak.upgrade() else { break };
                tokio::spawn(async move { mock.serve(sock).await });
            }
        });
        mock
    }

    /// The base URL a channel is configured with (Anthropic's own has no
    /// `/v1`; the provider adds `/v1/messages`).
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    pub fn push(&self, replies: impl IntoIterator<Item = Reply>) {
        self.script.lock().expect("lock").extend(replies);
    }

    pub fn set_default(&self, reply: Reply) {
        *self.default.lock().expect("lock") = Some(reply);
    }

    pub fn hits(&self) -> usize {
        self.hits.load(Ordering::SeqCst)
    }

    pub fn received(&self) -> Vec<Received> {
        self.received.lock().expect("lock").clone()
    }

    async fn serve(self: Arc<Self>, mut sock: TcpStream) {
        let Some((path, headers, body)) = read_request(&mut sock).await else {
            return;
        };
        let body: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
        self.hits.fetch_add(1, Ordering::SeqCst);
        let stream = body["stream"].as_bool().unwrap_or(false);
        self.received.lock().expect("lock").push(Received {
            path: path.clone(),
            headers,
            body,
        });
        if path != "/v1/messages" {
            let nf = r#"{"type":"error","error":{"type":"not_found_error","message":"Not found"}}"#;
            respond(&mut sock, 404, nf, &[]).await;
            return;
        }
        let reply = self
            .script
            .lock()
            .expect("lock")
            .pop_front()
            .or_else(|| self.default.lock().expect("lock").clone())
            .unwrap_or(if stream {
                Reply::Sse(STREAM)
            } else {
                Reply::Json(MESSAGE)
            });
        answer(&mut sock, reply).await;
    }
}

async fn respond(sock: &mut TcpStream, status: u16, body: &str, extra: &[(&str, &str)]) {
    let reason = match status {
        200 => "OK",
        400 => "Bad Request",
        401 => "Unauthorized",
        404 => "Not Found",
        429 => "Too Many Requests",
        529 => "Site Overloaded",
        _ => "Status",
    };
    let mut head = format!(
        "HTTP/1.1 {status} {reason}\r\ncontent-type: application/json\r\ncontent-length: {}\r\nrequest-id: req_mock\r\nconnection: close\r\n",
        body.len()
    );
    for (k, v) in extra {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str("\r\n");
    let _ = sock.write_all(head.as_bytes()).await;
    let _ = sock.write_all(body.as_bytes()).await;
    let _ = sock.shutdown().await;
}

/// The events of an SSE text, each with its terminating blank line.
fn events(sse: &str) -> Vec<String> {
    sse.split("\n\n")
        .filter(|e| !e.trim().is_empty())
        .map(|e| format!("{e}\n\n"))
        .collect()
}

async fn answer(sock: &mut TcpStream, reply: Reply) {
    let (sse, cut, pause) = match reply {
        Reply::Json(body) => return respond(sock, 200, body, &[]).await,
        Reply::Status {
            status,
            body,
            headers,
        } => return respond(sock, status, body, &headers).await,
        Reply::Sse(sse) => (sse, None, None),
        Reply::SseCutAfter(sse, n) => (sse, Some(n), None),
        Reply::SsePauseAfter(sse, n, wait) => (sse, None, Some((n, wait))),
    };
    let head = "HTTP/1.1 200 OK\r\ncontent-type: text/event-stream; charset=utf-8\r\ncache-control: no-cache\r\ntransfer-encoding: chunked\r\nrequest-id: req_mock\r\nconnection: close\r\n\r\n";
    if sock.write_all(head.as_bytes()).await.is_err() {
        return;
    }
    for (i, event) in events(sse).iter().enumerate() {
        if cut == Some(i) {
            reset(sock);
            return;
        }
        if let Some((n, wait)) = pause {
            if i == n {
                tokio::time::sleep(wait).await;
            }
        }
        if !send(sock, event).await {
            return;
        }
    }
    let _ = sock.write_all(b"0\r\n\r\n").await;
    let _ = sock.shutdown().await;
}
