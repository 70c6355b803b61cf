//! The guard every request passes before a handler sees it.
//!
//! It keeps four promises of DESIGN.md §7 for the whole router, `/health`
//! included:
//!
//! - the `Host` is a loopback name (`127.0.0.1`, `localhost`, `[::1]`, with
//!   the listening port if any), so a web page cannot reach the port through
//!   a DNS name it controls (DNS rebinding); with `allow_remote` the listen
//!   address is accepted too;
//! - a request from a web page (`Origin`) is served only when that origin is
//!   the gateway's own or is listed in `server.allowed_origins`, and only
//!   such origins get CORS headers, preflights included — a hostile page
//!   cannot spend money even with a "simple" request;
//! - the body arrives within `server.client_timeout_s` and fits
//!   `server.max_body_bytes`, so a slow client cannot hold a worker;
//! - an address that keeps presenting missing or wrong keys is answered
//!   429 for a while. A valid key is never slowed: on loopback every client
//!   shares one address.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{header, HeaderMap, HeaderName, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use bytes::{Bytes, BytesMut};
use futures_util::StreamExt;

use super::error::AuthFailure;
use super::GatewayError;
use crate::config::ServerConfig;

/// Missing or wrong keys tolerated from one address per window.
const AUTH_FAILURES: u32 = 10;
const AUTH_WINDOW: Duration = Duration::from_secs(10);
/// Addresses tracked at once; expired windows are dropped beyond this.
const TRACKED_ADDRESSES: usize = 4096;

/// Request headers a browser page may send cross-origin (besides any the
/// preflight asks for).
const ALLOW_HEADERS: &str =
    "authorization, content-type, x-api-key, anthropic-version, x-goog-api-key, x-goog-api-client";
const ALLOW_METHODS: &str = "GET, POST, DELETE, OPTIONS";
/// Response headers a page may read.
const EXPOSE_HEADERS: &str = "x-switchyard-request-id, x-switchyard-route, \
     x-switchyard-channel, x-switchyard-bucket, x-switchyard-attempts, x-switchyard-warning, \
     retry-after";

pub struct Guard {
    port: u16,
    /// With `allow_remote` on a non-loopback address: that address also
    /// names this gateway (unspecified: any IP literal does).
    remote: Option<IpAddr>,
    allowed_origins: Vec<String>,
    max_body: usize,
    client_timeout: Duration,
    failures: FailureBudget,
}

impl Guard {
    pub fn new(config: &ServerConfig, listen: SocketAddr) -> Guard {
        Guard {
            port: listen.port(),
            remote: (config.allow_remote && !listen.ip().is_loopback()).then_some(listen.ip()),
            allowed_origins: config.allowed_origins.clone(),
            max_body: config.max_body_bytes,
            client_timeout: config.client_timeout(),
            failures: FailureBudget::default(),
        }
    }

    /// Whether `host` (a `Host` header or URI authority) names this gateway.
    fn host_allowed(&self, host: &str) -> bool {
        let Some((name, port)) = split_host(host) else {
            return false;
        };
        if port.is_some_and(|p| p != self.port) {
            return false;
        }
        let name = name.to_ascii_lowercase();
        if matches!(name.as_str(), "localhost" | "127.0.0.1" | "[::1]") {
            return true;
        }
        let Some(remote) = self.remote else {
            return false;
        };
        // An IP literal cannot be rebound, so it is safe to accept when the
        // user chose to listen beyond loopback.
        let literal = name.trim_start_matches('[').trim_end_matches(']');
        literal
            .parse::<IpAddr>()
            .is_ok_and(|ip| ip == remote || remote.is_unspecified())
    }

    /// The request's host when every name it gives is allowed.
    fn checked_host(&self, req: &Request) -> Result<String, GatewayError> {
        let header = req.headers().get(header::HOST).map(|h| h.to_str());
        let authority = req.uri().authority().map(|a| a.as_str());
        let host = match (header, authority) {
            (Some(Ok(h)), _) => h,
            (Some(Err(_)), _) => return Err(GatewayError::HostNotAllowed("(not text)".into())),
            (None, Some(a)) => a,
            (None, None) => return Err(GatewayError::HostNotAllowed("(missing)".into())),
        };
        for name in [Some(host), authority].into_iter().flatten() {
            if !self.host_allowed(name) {
                return Err(GatewayError::HostNotAllowed(
                    name.chars().take(100).collect(),
                ));
            }
        }
        Ok(host.to_string())
    }

    fn origin_allowed(&self, origin: &str, host: &str) -> bool {
        let own = format!("http://{host}");
        origin.eq_ignore_ascii_case(&own)
            || self
                .allowed_origins
                .iter()
                .any(|o| o.eq_ignore_ascii_case(origin))
    }

    fn client_timeout_error(&self) -> GatewayError {
        GatewayError::ClientTimeout {
            seconds: self.client_timeout.as_secs_f64(),
        }
    }
}

/// `name[:port]`, where name may be a bracketed IPv6 literal.
fn split_host(host: &str) -> Option<(&str, Option<u16>)> {
    let (name, port) = if host.starts_with('[') {
        let end = host.find(']')?;
        let (name, rest) = host.split_at(end + 1);
        match rest.strip_prefix(':') {
            Some(p) => (name, Some(p)),
            None if rest.is_empty() => (name, None),
            None => return None,
        }
    } else {
        match host.split_once(':') {
            Some((name, p)) => (name, Some(p)),
            None => (host, None),
        }
    };
    if name.is_empty() {
        return None;
    }
    match port {
        Some(p) => Some((name, Some(p.parse().ok()?))),
        None => Some((name, None)),
    }
}

/// The middleware: see the module documentation.
pub async fn check(State(guard): State<Arc<Guard>>, req: Request, next: Next) -> Response {
    let host = match guard.checked_host(&req) {
        Ok(h) => h,
        Err(e) => return e.into_response(),
    };
    let origin = match req.headers().get(header::ORIGIN) {
        None => None,
        Some(o) => match o.to_str() {
            Ok(o) if guard.origin_allowed(o, &host) => Some(o.to_string()),
            Ok(o) => {
                return GatewayError::OriginNotAllowed(o.chars().take(200).collect())
                    .into_response()
            }
            Err(_) => return GatewayError::OriginNotAllowed("(not text)".into()).into_response(),
        },
    };
    if let Some(origin) = &origin {
        if req.method() == Method::OPTIONS
            && req
                .headers()
                .contains_key(header::ACCESS_CONTROL_REQUEST_METHOD)
        {
            return preflight(origin, req.headers());
        }
    }

    let client = req
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED), |c| c.0.ip());
    let (parts, body) = req.into_parts();
    let body = match read_body(&guard, &parts.headers, body).await {
        Ok(b) => b,
        Err(e) => return with_cors(e.into_response(), origin.as_deref()),
    };
    if let Some(seen) = parts.extensions.get::<super::refusals::SeenBody>() {
        seen.set(&body);
    }
    let mut resp = next.run(Request::from_parts(parts, Body::from(body))).await;

    if resp.extensions().get::<AuthFailure>().is_some() {
        if let Err(retry_after) = guard.failures.fail(client, Instant::now()) {
            tracing::debug!(%client, "too many requests with a wrong key");
            resp = GatewayError::TooManyAuthFailures { retry_after }.into_response();
        }
    }
    with_cors(resp, origin.as_deref())
}

/// The whole body, within the size limit and the client timeout.
async fn read_body(guard: &Guard, headers: &HeaderMap, body: Body) -> Result<Bytes, GatewayError> {
    let limit = guard.max_body;
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > limit as u64) {
        return Err(GatewayError::BodyTooLarge { limit });
    }
    let collect = async {
        let mut stream = body.into_data_stream();
        let mut buf = BytesMut::new();
        while let Some(chunk) = stream.next().await {
            let chunk = chunk.map_err(|_| {
                GatewayError::BadRequest("The request body could not be read.".into())
            })?;
            if buf.len() + chunk.len() > limit {
                return Err(GatewayError::BodyTooLarge { limit });
            }
            buf.extend_from_slice(&chunk);
        }
        Ok(buf.freeze())
    };
    tokio::time::timeout(guard.client_timeout, collect)
        .await
        .map_err(|_| guard.client_timeout_error())?
}

/// The answer to an allowed origin's preflight.
fn preflight(origin: &str, req: &HeaderMap) -> Response {
    let mut allow_headers = ALLOW_HEADERS.to_string();
    // The page's own extra headers (SDKs add some); the origin is trusted.
    if let Some(asked) = req
        .get(header::ACCESS_CONTROL_REQUEST_HEADERS)
        .and_then(|v| v.to_str().ok())
    {
        for name in asked.split(',').map(str::trim) {
            let known = ALLOW_HEADERS
                .split(", ")
                .any(|h| h.eq_ignore_ascii_case(name));
            if !known && HeaderName::from_bytes(name.as_bytes()).is_ok() {
                allow_headers.push_str(", ");
                allow_headers.push_str(&name.to_ascii_lowercase());
            }
        }
    }
    let mut resp = StatusCode::NO_CONTENT.into_response();
    let h = resp.headers_mut();
    set(h, header::ACCESS_CONTROL_ALLOW_ORIGIN, origin);
    set(h, header::ACCESS_CONTROL_ALLOW_METHODS, ALLOW_METHODS);
    set(h, header::ACCESS_CONTROL_ALLOW_HEADERS, &allow_headers);
    set(h, header::ACCESS_CONTROL_MAX_AGE, "600");
    set(
        h,
        header::VARY,
        "origin, access-control-request-method, access-control-request-headers",
    );
    resp
}

fn with_cors(mut resp: Response, origin: Option<&str>) -> Response {
    if let Some(origin) = origin {
        let h = resp.headers_mut();
        set(h, header::ACCESS_CONTROL_ALLOW_ORIGIN, origin);
        set(h, header::ACCESS_CONTROL_EXPOSE_HEADERS, EXPOSE_HEADERS);
        h.append(header::VARY, HeaderValue::from_static("origin"));
    }
    resp
}

fn set(headers: &mut HeaderMap, name: HeaderName, value: &str) {
    if let Ok(v) = HeaderValue::from_str(value) {
        headers.insert(name, v);
    }
}

/// Missing or wrong keys per client address, in fixed windows.
#[derive(Default)]
struct FailureBudget {
    windows: Mutex<HashMap<IpAddr, Window>>,
}

struct Window {
    start: Instant,
    failures: u32,
}

impl FailureBudget {
    /// Counts a failure from `client`; once over budget, the seconds until
    /// its window ends.
    fn fail(&self, client: IpAddr, now: Instant) -> Result<(), u64> {
        let mut windows = self.windows.lock().unwrap_or_else(|p| p.into_inner());
        if windows.len() >= TRACKED_ADDRESSES && !windows.contains_key(&client) {
            windows.retain(|_, w| now.duration_since(w.start) < AUTH_WINDOW);
            if windows.len() >= TRACKED_ADDRESSES {
                windows.clear();
            }
        }
        let w = windows.entry(client).or_insert(Window {
            start: now,
            failures: 0,
        });
        if now.duration_since(w.start) >= AUTH_WINDOW {
            *w = Window {
                start: now,
                failures: 0,
            };
        }
        w.failures += 1;
        if w.failures <= AUTH_FAILURES {
            return Ok(());
        }
        let left = (w.start + AUTH_WINDOW).saturating_duration_since(now);
        Err(left.as_secs_f64().ceil().max(1.0) as u64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn guard(listen: &str, allow_remote: bool) -> Guard {
        let config = ServerConfig {
            allow_remote,
            allowed_origins: vec!["http://localhost:5173".into()],
            ..ServerConfig::default()
        };
        Guard::new(&config, listen.parse().expect("addr"))
    }

    #[test]
    fn only_loopback_names_on_the_listening_port_are_hosts() {
        let g = guard("127.0.0.1:4141", false);
        for ok in [
            "127.0.0.1",
            "127.0.0.1:4141",
            "localhost:4141",
            "LOCALHOST",
            "[::1]:4141",
            "[::1]",
        ] {
            assert!(g.host_allowed(ok), "{ok}");
        }
        for bad in [
            "evil.example",
            "evil.example:4141",
            "127.0.0.1:4142",
            "localhost.evil.example",
            "127.0.0.1.nip.io:4141",
            "192.168.1.5:4141",
            "[::1]x",
            "",
            ":4141",
            "localhost:port",
        ] {
            assert!(!g.host_allowed(bad), "{bad}");
        }
    }

    #[test]
    fn allow_remote_accepts_the_listen_address_but_never_a_dns_name() {
        let g = guard("192.168.1.5:4141", true);
        assert!(g.host_allowed("192.168.1.5:4141"));
        assert!(g.host_allowed("localhost:4141"));
        assert!(!g.host_allowed("10.0.0.1:4141"));
        assert!(!g.host_allowed("gateway.evil.example:4141"));
        let any = guard("0.0.0.0:4141", true);
        assert!(any.host_allowed("10.0.0.1:4141") && any.host_allowed("[fe80::1]:4141"));
        assert!(!any.host_allowed("nas.local:4141"));
    }

    #[test]
    fn own_and_listed_origins_are_allowed_others_are_not() {
        let g = guard("127.0.0.1:4141", false);
        assert!(g.origin_allowed("http://127.0.0.1:4141", "127.0.0.1:4141"));
        assert!(g.origin_allowed("http://localhost:5173", "127.0.0.1:4141"));
        assert!(!g.origin_allowed("http://localhost:3000", "127.0.0.1:4141"));
        assert!(!g.origin_allowed("https://evil.example", "127.0.0.1:4141"));
        assert!(!g.origin_allowed("null", "127.0.0.1:4141"));
    }

    #[test]
    fn failure_budget_refuses_after_ten_per_window_then_forgives() {
        let b = FailureBudget::default();
        let ip: IpAddr = "127.0.0.1".parse().expect("ip");
        let other: IpAddr = "127.0.0.2".parse().expect("ip");
        let t0 = Instant::now();
        for i in 0..AUTH_FAILURES {
            assert_eq!(b.fail(ip, t0 + Duration::from_millis(i as u64)), Ok(()));
        }
        assert_eq!(b.fail(ip, t0 + Duration::from_secs(3)), Err(7));
        assert_eq!(b.fail(other, t0 + Duration::from_secs(3)), Ok(()));
        assert_eq!(b.fail(ip, t0 + AUTH_WINDOW), Ok(()), "a new window");
    }
}
