//! A mock OpenAI-style upstream on 127.0.0.1 that speaks chat completions
//! (JSON and SSE, with usage) and misbehaves on demand. It is a small
//! hand-written HTTP/1.1 server so that it can do what a well-behaved
//! framework would not: reset the connection, go silent, stall or cut a
//! stream mid-answer.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// How long a "silent" or "stalled" upstream holds its connection.
const HOLD: Duration = Duration::from_secs(30);

/// What the mock does with one request.
#[derive(Clone, Debug)]
pub enum Reply {
    /// A normal answer: JSON, or SSE when the request asked to stream.
    Ok,
    /// An HTTP error with this body and extra headers.
    Status {
        status: u16,
        body: String,
        headers: Vec<(&'static str, String)>,
    },
    /// Reset the connection before any response header.
    Reset,
    /// Read the request, then say nothing.
    Silent,
    /// SSE: send headers and a role chunk, then wait before the first token.
    SlowFirstToken(Duration),
    /// SSE: send this many content chunks, then drop the connection.
    CutAfter(usize),
    /// SSE: send this many content chunks, then go quiet.
    StallAfter(usize),
    /// SSE: a normal answer with an unparseable event in the middle.
    Malformed,
    /// SSE: a complete answer (with finish_reason) but no `[DONE]`.
    NoDone,
    /// SSE: content then a clean end of body without finish or `[DONE]`.
    EndWithoutFinish,
    /// SSE: an error event before any token.
    ErrorEventFirst,
    /// SSE: this many content chunks, then an error event with this message.
    ErrorEventAfter(usize, String),
}

pub const TOKENS: [&str; 3] = ["Hello", " from", " upstream"];
pub const ANSWER: &str = "Hello from upstream";

pub struct MockUpstream {
    pub port: u16,
    script: Mutex<VecDeque<Reply>>,
    default: Mutex<Reply>,
    hits: AtomicUsize,
    bodies: Mutex<Vec<Value>>,
    headers: Mutex<Vec<Vec<(String, String)>>>,
}

impl MockUpstream {
    pub async fn start() -> Arc<MockUpstream> {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind mock");
        let port = listener.local_addr().expect("addr").port();
        let mock = Arc::new(MockUpstream {
            port,
            script: Mutex::new(VecDeque::new()),
            default: Mutex::new(Reply::Ok),
            hits: AtomicUsize::new(0),
            bodies: Mutex::new(Vec::new()),
            headers: Mutex::new(Vec::new()),
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

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}/v1", self.port)
    }

    /// The next requests get these replies, in order; then the default.
    pub fn push(&self, replies: impl IntoIterator<Item = Reply>) {
        self.script.lock().expect("lock").extend(replies);
    }

    pub fn set_default(&self, reply: Reply) {
        *self.default.lock().expect("lock") = reply;
    }

    /// Chat requests received.
    pub fn hits(&self) -> usize {
        self.hits.load(Ordering::SeqCst)
    }

    /// The JSON bodies of chat requests received.
    pub fn bodies(&self) -> Vec<Value> {
        self.bodies.lock().expect("lock").clone()
    }

    pub fn last_headers(&self) -> Vec<(String, String)> {
        self.headers
            .lock()
            .expect("lock")
            .last()
            .cloned()
            .unwrap_or_default()
    }

    async fn serve(self: Arc<Self>, mut sock: TcpStream) {
        let Some((path, headers, body)) = read_request(&mut sock).await else {
            return;
        };
        if path.ends_with("/models") {
            let list = json!({"object": "list", "data": [
                {"id": "pass-a", "object": "model", "created": 1, "owned_by": "mock"},
                {"id": "pass-b", "object": "model", "created": 1, "owned_by": "mock"},
                {"id": "other-c", "object": "model", "created": 1, "owned_by": "mock"}
            ]});
            respond_json(&mut sock, 200, &list.to_string(), &[]).await;
            return;
        }
        let req: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
        self.hits.fetch_add(1, Ordering::SeqCst);
        self.bodies.lock().expect("lock").push(req.clone());
        self.headers.lock().expect("lock").push(headers);
        let reply = self
            .script
            .lock()
            .expect("lock")
            .pop_front()
            .unwrap_or_else(|| self.default.lock().expect("lock").clone());
        let model = req["model"].as_str().unwrap_or("mock-model").to_string();
        if path.ends_with("/embeddings") && matches!(reply, Reply::Ok) {
            let n = req["input"].as_array().map_or(1, Vec::len);
            let data: Vec<Value> = (0..n)
                .map(|i| json!({"object": "embedding", "index": i, "embedding": [0.5, -1.0, i as f64]}))
                .collect();
            let body = json!({"object": "list", "data": data, "model": model,
                "usage": {"prompt_tokens": 5000, "total_tokens": 5000}});
            respond_json(&mut sock, 200, &body.to_string(), &[]).await;
            return;
        }
        let stream = req["stream"].as_bool().unwrap_or(false);
        let usage_asked = req
            .pointer("/stream_options/include_usage")
            .and_then(|v| v.as_bool())
            .unwrap_or(false);
        answer(&mut sock, reply, &model, stream, usage_asked).await;
    }
}

/// Reads one HTTP/1.1 request: its path, lower-cased headers and body.
pub(crate) async fn read_request(
    sock: &mut TcpStream,
) -> Option<(String, Vec<(String, String)>, Vec<u8>)> {
    let mut buf = Vec::new();
    let mut tmp = [0u8; 8192];
    let header_end = loop {
        let n = sock.read(&mut tmp).await.ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&tmp[..n]);
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
    };
    let head = String::from_utf8_lossy(&buf[..header_end]).to_string();
    let mut lines = head.split("\r\n");
    let path = lines.next()?.split(' ').nth(1)?.to_string();
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    let len: usize = headers
        .iter()
        .find(|(k, _)| k == "content-length")
        .and_then(|(_, v)| v.parse().ok())
        .unwrap_or(0);
    let mut body = buf[header_end..].to_vec();
    while body.len() < len {
        let n = sock.read(&mut tmp).await.ok()?;
        if n == 0 {
            break;
        }
        body.extend_from_slice(&tmp[..n]);
    }
    Some((path, headers, body))
}

fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        429 => "Too Many Requests",
        500 => "Internal Server Error",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        _ => "Status",
    }
}

async fn respond_json(sock: &mut TcpStream, status: u16, body: &str, extra: &[(&str, String)]) {
    let mut head = format!(
        "HTTP/1.1 {status} {}\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n",
        reason(status),
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

fn completion(model: &str) -> String {
    json!({
        "id": "chatcmpl-mock1",
        "object": "chat.completion",
        "created": 1_700_000_000,
        "model": model,
        "choices": [{
            "index": 0,
            "message": {"role": "assistant", "content": ANSWER, "refusal": null},
            "logprobs": null,
            "finish_reason": "stop"
        }],
        "usage": {
            "prompt_tokens": 12, "completion_tokens": 5, "total_tokens": 17,
            "prompt_tokens_details": {"cached_tokens": 4},
            "completion_tokens_details": {"reasoning_tokens": 2}
        },
        "system_fingerprint": "fp_mock"
    })
    .to_string()
}

fn chunk(model: &str, delta: Value, finish: Option<&str>, usage_asked: bool) -> String {
    let mut c = json!({
        "id": "chatcmpl-mock1",
        "object": "chat.completion.chunk",
        "created": 1_700_000_000,
        "model": model,
        "system_fingerprint": "fp_mock",
        "choices": [{"index": 0, "delta": delta, "logprobs": null, "finish_reason": finish}]
    });
    if usage_asked {
        c["usage"] = Value::Null;
    }
    c.to_string()
}

fn usage_chunk(model: &str) -> String {
    json!({
        "id": "chatcmpl-mock1",
        "object": "chat.completion.chunk",
        "created": 1_700_000_000,
        "model": model,
        "choices": [],
        "usage": {"prompt_tokens": 12, "completion_tokens": 3, "total_tokens": 15}
    })
    .to_string()
}

/// Writes one chunk of a chunked-encoding body.
pub(crate) async fn send(sock: &mut TcpStream, data: &str) -> bool {
    let framed = format!("{:x}\r\n{data}\r\n", data.len());
    sock.write_all(framed.as_bytes()).await.is_ok() && sock.flush().await.is_ok()
}

async fn event(sock: &mut TcpStream, data: &str) -> bool {
    send(sock, &format!("data: {data}\n\n")).await
}

async fn end_body(sock: &mut TcpStream) {
    let _ = sock.write_all(b"0\r\n\r\n").await;
    let _ = sock.shutdown().await;
}

/// Drops the connection with a TCP reset. A zero linger does not block on
/// drop, which is what the deprecation warns about.
#[allow(deprecated)]
pub(crate) fn reset(sock: &TcpStream) {
    let _ = sock.set_linger(Some(Duration::ZERO));
}

async fn answer(sock: &mut TcpStream, reply: Reply, model: &str, stream: bool, usage_asked: bool) {
    match reply {
        Reply::Status {
            status,
            body,
            headers,
        } => {
            respond_json(sock, status, &body, &headers).await;
            return;
        }
        Reply::Reset => {
            reset(sock);
            return;
        }
        Reply::Silent => {
            tokio::time::sleep(HOLD).await;
            return;
        }
        Reply::Ok if !stream => {
            respond_json(sock, 200, &completion(model), &[]).await;
            return;
        }
        _ => {}
    }
    let head = "HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ncache-control: no-cache\r\ntransfer-encoding: chunked\r\nconnection: close\r\n\r\n";
    if sock.write_all(head.as_bytes()).await.is_err() {
        return;
    }
    let role = chunk(
        model,
        json!({"role": "assistant", "content": ""}),
        None,
        usage_asked,
    );
    if !event(sock, &role).await {
        return;
    }
    let token = |i: usize| {
        chunk(
            model,
            json!({"content": TOKENS[i % TOKENS.len()]}),
            None,
            usage_asked,
        )
    };
    let finish = chunk(model, json!({}), Some("stop"), usage_asked);
    match reply {
        Reply::SlowFirstToken(wait) => tokio::time::sleep(wait).await,
        Reply::ErrorEventFirst => {
            event(sock, r#"{"error":{"message":"The server had an error while processing your request.","type":"server_error"}}"#).await;
            end_body(sock).await;
            return;
        }
        _ => {}
    }
    match reply {
        Reply::ErrorEventAfter(n, message) => {
            for i in 0..n {
                if !event(sock, &token(i)).await {
                    return;
                }
            }
            let error = json!({"error": {"message": message, "type": "server_error"}});
            event(sock, &error.to_string()).await;
            end_body(sock).await;
            return;
        }
        Reply::CutAfter(n) | Reply::StallAfter(n) => {
            for i in 0..n {
                if !event(sock, &token(i)).await {
                    return;
                }
            }
            if matches!(reply, Reply::StallAfter(_)) {
                tokio::time::sleep(HOLD).await;
            } else {
                reset(sock);
            }
            return;
        }
        Reply::EndWithoutFinish => {
            for i in 0..TOKENS.len() {
                event(sock, &token(i)).await;
            }
            end_body(sock).await;
            return;
        }
        _ => {}
    }
    for i in 0..TOKENS.len() {
        if i == 1 && matches!(reply, Reply::Malformed) {
            send(sock, "data: {\"choices\": [oops\n\n").await;
        }
        if !event(sock, &token(i)).await {
            return;
        }
    }
    event(sock, &finish).await;
    if usage_asked {
        event(sock, &usage_chunk(model)).await;
    }
    if !matches!(reply, Reply::NoDone) {
        event(sock, "[DONE]").await;
    }
    end_body(sock).await;
}

/// An OpenAI error body.
pub fn openai_error(message: &str, kind: &str, code: Option<&str>) -> String {
    json!({"error": {"message": message, "type": kind, "param": null, "code": code}}).to_string()
}

pub fn status(status: u16) -> Reply {
    Reply::Status {
        status,
        body: openai_error("upstream trouble", "server_error", None),
        headers: Vec::new(),
    }
}
