//! A tiny, fast mock OpenAI-compatible upstream for the overhead benchmark
//! in `tests/bench/overhead.sh`.
//!
//! It answers `POST /v1/chat/completions` with a small, realistic
//! `chat.completion` object naming the requested model (with `stream: true`,
//! the same answer as `chat.completion.chunk` server-sent events), and
//! `GET /v1/models` with a one-model list. It does as little work as it can
//! so that the time measured through Switchyard minus the time measured
//! against this server directly is Switchyard's own overhead.
//!
//! ```text
//! switchyard-bench-upstream [--host 127.0.0.1] [--port 0] [--threads 1]
//! ```
//!
//! The bound port is printed alone on the first line of stdout.
#![allow(clippy::print_stdout)]

use std::io::Write as _;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use axum::body::Bytes;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use serde_json::{json, Value};

/// Counter for unique completion ids.
static NEXT_ID: AtomicU64 = AtomicU64::new(1);

const USAGE: &str = "Usage: switchyard-bench-upstream [--host ADDR] [--port PORT] [--threads N]";

struct Options {
    host: IpAddr,
    port: u16,
    threads: usize,
}

fn parse_args() -> Result<Options, String> {
    let mut opts = Options {
        host: IpAddr::V4(Ipv4Addr::LOCALHOST),
        port: 0,
        threads: 1,
    };
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let (name, inline) = match arg.split_once('=') {
            Some((n, v)) => (n.to_string(), Some(v.to_string())),
            None => (arg.clone(), None),
        };
        let mut value = |what: &str| {
            inline
                .clone()
                .or_else(|| args.next())
                .ok_or_else(|| format!("{name} needs {what}\n{USAGE}"))
        };
        match name.as_str() {
            "--host" => {
                let v = value("an address")?;
                opts.host = v.parse().map_err(|e| format!("--host {v}: {e}"))?;
            }
            "--port" => {
                let v = value("a port number")?;
                opts.port = v.parse().map_err(|e| format!("--port {v}: {e}"))?;
            }
            "--threads" => {
                let v = value("a thread count")?;
                opts.threads = v.parse().map_err(|e| format!("--threads {v}: {e}"))?;
                if opts.threads == 0 {
                    return Err("--threads must be at least 1".into());
                }
            }
            "-h" | "--help" => return Err(USAGE.into()),
            other => return Err(format!("unknown argument `{other}`\n{USAGE}")),
        }
    }
    Ok(opts)
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

fn json_response(status: StatusCode, body: Vec<u8>) -> Response {
    let mut resp = (status, body).into_response();
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    resp
}

fn error(status: StatusCode, message: &str) -> Response {
    let body = json!({"error": {"message": message, "type": "invalid_request_error", "param": null, "code": null}});
    json_response(status, body.to_string().into_bytes())
}

/// `POST /v1/chat/completions`: a fixed small answer for the requested model.
async fn chat_completions(body: Bytes) -> Response {
    let request: Value = match serde_json::from_slice(&body) {
        Ok(v) => v,
        Err(e) => return error(StatusCode::BAD_REQUEST, &format!("invalid JSON body: {e}")),
    };
    let Some(model) = request.get("model").and_then(Value::as_str) else {
        return error(
            StatusCode::BAD_REQUEST,
            "you must provide a model parameter",
        );
    };
    let id = NEXT_ID.fetch_add(1, Ordering::Relaxed);
    if request.get("stream").and_then(Value::as_bool) == Some(true) {
        let usage = request
            .pointer("/stream_options/include_usage")
            .and_then(Value::as_bool)
            == Some(true);
        return stream(id, model, usage);
    }
    let answer = json!({
        "id": format!("chatcmpl-bench{id:016x}"),
        "object": "chat.completion",
        "created": unix_now(),
        "model": model,
        "system_fingerprint": "fp_bench",
        "choices": [{
            "index": 0,
            "message": {
                "role": "assistant",
                "content": ANSWER,
                "refusal": null
            },
            "logprobs": null,
            "finish_reason": "stop"
        }],
        "usage": {
            "prompt_tokens": 19,
            "completion_tokens": 21,
            "total_tokens": 40
        }
    });
    json_response(StatusCode::OK, answer.to_string().into_bytes())
}

const ANSWER: &str =
    "Hello! This is a canned answer from the Switchyard benchmark upstream. How can I help you today?";

/// The answer as OpenAI streams it: a role chunk, one chunk per word, the
/// finish, the usage chunk when asked for, `[DONE]`.
fn stream(id: u64, model: &str, usage: bool) -> Response {
    let chunk = |delta: Value, finish: Value| {
        json!({
            "id": format!("chatcmpl-bench{id:016x}"),
            "object": "chat.completion.chunk",
            "created": unix_now(),
            "model": model,
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
        })
    };
    let mut events = vec![chunk(
        json!({"role": "assistant", "content": ""}),
        Value::Null,
    )];
    for (i, word) in ANSWER.split(' ').enumerate() {
        let text = if i == 0 {
            word.to_string()
        } else {
            format!(" {word}")
        };
        events.push(chunk(json!({"content": text}), Value::Null));
    }
    events.push(chunk(json!({}), json!("stop")));
    if usage {
        let mut u = chunk(json!({}), Value::Null);
        u["choices"] = json!([]);
        u["usage"] = json!({"prompt_tokens": 19, "completion_tokens": 21, "total_tokens": 40});
        events.push(u);
    }
    let mut body = String::new();
    for e in events {
        body.push_str("data: ");
        body.push_str(&e.to_string());
        body.push_str("\n\n");
    }
    body.push_str("data: [DONE]\n\n");
    let mut resp = Response::new(body.into());
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/event-stream"),
    );
    resp
}

/// `GET /v1/models`.
async fn models() -> Response {
    let body = json!({
        "object": "list",
        "data": [{"id": "bench-model", "object": "model", "created": 1_700_000_000, "owned_by": "bench"}]
    });
    json_response(StatusCode::OK, body.to_string().into_bytes())
}

async fn not_found() -> Response {
    error(StatusCode::NOT_FOUND, "unknown endpoint")
}

fn app() -> Router {
    Router::new()
        .route("/v1/chat/completions", post(chat_completions))
        .route("/v1/models", get(models))
        .fallback(not_found)
}

async fn serve(opts: Options) -> std::io::Result<()> {
    let listener = tokio::net::TcpListener::bind(SocketAddr::new(opts.host, opts.port)).await?;
    let addr = listener.local_addr()?;
    {
        let mut out = std::io::stdout().lock();
        writeln!(out, "{}", addr.port())?;
        out.flush()?;
    }
    eprintln!("switchyard-bench-upstream listening on http://{addr}/v1");
    axum::serve(listener, app())
        .with_graceful_shutdown(async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await
}

fn main() -> std::process::ExitCode {
    let opts = match parse_args() {
        Ok(o) => o,
        Err(msg) => {
            eprintln!("{msg}");
            return std::process::ExitCode::from(2);
        }
    };
    let runtime = if opts.threads == 1 {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
    } else {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(opts.threads)
            .enable_all()
            .build()
    };
    let result = runtime.and_then(|rt| rt.block_on(serve(opts)));
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("switchyard-bench-upstream: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}
