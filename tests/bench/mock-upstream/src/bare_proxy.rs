//! The floor for the overhead benchmark: an HTTP proxy with nothing in it.
//!
//! It forwards `POST /v1/chat/completions` bodies, unread, to one upstream
//! URL through one pooled `reqwest` client and relays the status and body
//! back. It has no keys, no routing, no JSON parsing, no log line and no
//! ledger, but it is built from the same parts as `switchyard serve` (axum
//! on a multi-threaded tokio runtime, reqwest with the same features, TCP
//! keep-alive on both sides). `tests/bench/overhead.sh` measures it beside
//! the direct call and Switchyard, so that each run shows how much of the
//! added latency any second HTTP hop costs on the machine at hand.
//!
//! ```text
//! switchyard-bench-bare-proxy --upstream URL [--port 0]
//! ```
//!
//! The bound port is printed alone on the first line of stdout.
#![allow(clippy::print_stdout)]

use std::io::Write as _;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::Router;

const USAGE: &str = "Usage: switchyard-bench-bare-proxy --upstream URL [--port PORT]";

struct Upstream {
    http: reqwest::Client,
    url: reqwest::Url,
}

/// Relays the body to the upstream and its answer back.
async fn forward(State(up): State<Arc<Upstream>>, body: Bytes) -> Response {
    let answer = up
        .http
        .post(up.url.clone())
        .header(header::CONTENT_TYPE, "application/json")
        .body(body)
        .send()
        .await;
    let resp = match answer {
        Ok(r) => r,
        Err(e) => return (StatusCode::BAD_GATEWAY, e.to_string()).into_response(),
    };
    let status = StatusCode::from_u16(resp.status().as_u16()).unwrap_or(StatusCode::BAD_GATEWAY);
    match resp.bytes().await {
        Ok(body) => {
            let mut out = (status, body).into_response();
            out.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            );
            out
        }
        Err(e) => (StatusCode::BAD_GATEWAY, e.to_string()).into_response(),
    }
}

fn parse_args() -> Result<(reqwest::Url, u16), String> {
    let (mut url, mut port) = (None, 0u16);
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut value = || {
            args.next()
                .ok_or_else(|| format!("{arg} needs a value\n{USAGE}"))
        };
        match arg.as_str() {
            "--upstream" => {
                let v = value()?;
                url = Some(v.parse().map_err(|e| format!("--upstream {v}: {e}"))?);
            }
            "--port" => {
                let v = value()?;
                port = v.parse().map_err(|e| format!("--port {v}: {e}"))?;
            }
            "-h" | "--help" => return Err(USAGE.into()),
            other => return Err(format!("unknown argument `{other}`\n{USAGE}")),
        }
    }
    Ok((url.ok_or(USAGE)?, port))
}

async fn serve(url: reqwest::Url, port: u16) -> std::io::Result<()> {
    let http = reqwest::Client::builder()
        .tcp_nodelay(true)
        .build()
        .map_err(std::io::Error::other)?;
    let app = Router::new()
        .route("/v1/chat/completions", post(forward))
        .with_state(Arc::new(Upstream { http, url }));
    let listener =
        tokio::net::TcpListener::bind(SocketAddr::from((Ipv4Addr::LOCALHOST, port))).await?;
    let addr = listener.local_addr()?;
    {
        let mut out = std::io::stdout().lock();
        writeln!(out, "{}", addr.port())?;
        out.flush()?;
    }
    axum::serve(listener, app)
        .with_graceful_shutdown(async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await
}

fn main() -> std::process::ExitCode {
    let (url, port) = match parse_args() {
        Ok(a) => a,
        Err(msg) => {
            eprintln!("{msg}");
            return std::process::ExitCode::from(2);
        }
    };
    let result = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .and_then(|rt| rt.block_on(serve(url, port)));
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("switchyard-bench-bare-proxy: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}
