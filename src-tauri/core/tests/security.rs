//! DESIGN.md §7 as an attacker and a careless log would test it: the
//! provider secret never leaves the keyring's side of the gateway, a web
//! page cannot reach the port (DNS rebinding, CORS, simple requests), slow
//! or noisy clients cannot hold it, `/api` and `/v1` keep their keys apart,
//! and a provider's refusal of a secret is visible to `secret status`.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use switchyard::keys::{self, NewKey};
use switchyard::ledger::db;
use switchyard::record::{Recorder, RequestRecord};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::helpers::*;
use crate::mock::*;

/// A provider secret no legitimate output could contain by chance.
const SECRET: &str = "sk-LEAKCHECK-7f3a9c1e5b2d4f60a8e1c3b5d7f90246";
const SECRET_VAR: &str = "SWITCHYARD_LEAKCHECK_SECRET";
/// Points the keyring at a bus that is not there: the spawned gateway must
/// never read or write the real keyring of whoever runs the tests.
const NO_DBUS: &str = "unix:path=/nonexistent/switchyard-test-bus";

fn bin() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_switchyard"));
    c.env_remove("SWITCHYARD_CONFIG")
        .env_remove("SWITCHYARD_DATA_DIR")
        .env("DBUS_SESSION_BUS_ADDRESS", NO_DBUS)
        .env("NO_COLOR", "1");
    c
}

/// Every 12-character piece of the secret: a truncated or partly masked
/// copy is a leak too.
fn leaks(haystack: &[u8]) -> Option<String> {
    let s = SECRET.as_bytes();
    (0..=s.len() - 12)
        .map(|i| &s[i..i + 12])
        .find(|w| haystack.windows(12).any(|h| h == *w))
        .map(|w| String::from_utf8_lossy(w).into_owned())
}

fn assert_no_leak(what: &str, haystack: &[u8]) {
    if let Some(piece) = leaks(haystack) {
        panic!(
            "{what} contains the provider secret (`{piece}`):\n{}",
            String::from_utf8_lossy(haystack)
        );
    }
}

fn files_under(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("read dir").flatten() {
        let path = entry.path();
        if path.is_dir() {
            files_under(&path, out);
        } else {
            out.push(path);
        }
    }
}

/// Everything the client saw of one response.
async fn seen(resp: reqwest::Response, transcript: &mut Vec<u8>) -> (u16, String) {
    let status = resp.status().as_u16();
    for (k, v) in resp.headers() {
        transcript.extend_from_slice(format!("{k}: ").as_bytes());
        transcript.extend_from_slice(v.as_bytes());
        transcript.push(b'\n');
    }
    let body = resp.text().await.expect("body");
    transcript.extend_from_slice(body.as_bytes());
    transcript.push(b'\n');
    (status, body)
}

/// A `switchyard serve` process whose output is collected as it comes,
/// killed if the test fails before stopping it.
struct Served {
    child: ChildGuard,
    stderr: Arc<Mutex<Vec<u8>>>,
    stdout: Arc<Mutex<Vec<u8>>>,
    readers: Vec<std::thread::JoinHandle<()>>,
}

fn collect(
    mut from: impl Read + Send + 'static,
) -> (Arc<Mutex<Vec<u8>>>, std::thread::JoinHandle<()>) {
    let buf = Arc::new(Mutex::new(Vec::new()));
    let sink = Arc::clone(&buf);
    let reader = std::thread::spawn(move || {
        let mut chunk = [0u8; 8192];
        while let Ok(n) = from.read(&mut chunk) {
            if n == 0 {
                break;
            }
            sink.lock().expect("lock").extend_from_slice(&chunk[..n]);
        }
    });
    (buf, reader)
}

impl Served {
    fn start(config: &Path, data: &Path) -> Served {
        let mut child = bin()
            .args([
                "--config",
                config.to_str().expect("utf8"),
                "--data-dir",
                data.to_str().expect("utf8"),
                "serve",
            ])
            .env("SWITCHYARD_LOG", "trace")
            .env(SECRET_VAR, SECRET)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawns");
        let (stderr, e) = collect(child.stderr.take().expect("stderr"));
        let (stdout, o) = collect(child.stdout.take().expect("stdout"));
        Served {
            child: ChildGuard(child),
            stderr,
            stdout,
            readers: vec![e, o],
        }
    }

    fn log(&self) -> String {
        String::from_utf8_lossy(&self.stderr.lock().expect("lock")).into_owned()
    }

    /// The address and admin token it printed at start.
    async fn started(&self) -> (String, String) {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let log = self.log();
            if let Some(line) = log.lines().find(|l| l.contains("Admin link")) {
                let url = line.split("it): ").nth(1).expect("url").trim();
                let (base, token) = url.split_once("/#token=").expect("token in the link");
                let addr = base.trim_start_matches("http://").to_string();
                return (addr, token.to_string());
            }
            assert!(Instant::now() < deadline, "gateway did not start:\n{log}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Stops it with SIGTERM; returns stderr and stdout.
    async fn stop(mut self) -> (Vec<u8>, Vec<u8>) {
        let status = self.child.terminate(Duration::from_secs(15)).await;
        assert!(status.success(), "clean exit: {status}\n{}", self.log());
        for r in self.readers.drain(..) {
            r.join().expect("reader");
        }
        let err = self.stderr.lock().expect("lock").clone();
        let out = self.stdout.lock().expect("lock").clone();
        (err, out)
    }
}

fn status_output(config: &Path, data: &Path, env: &[(&str, &str)]) -> String {
    let mut cmd = bin();
    cmd.args([
        "--config",
        config.to_str().expect("utf8"),
        "--data-dir",
        data.to_str().expect("utf8"),
        "secret",
        "status",
    ]);
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().expect("runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

fn echo(status: u16) -> Reply {
    Reply::Status {
        status,
        body: openai_error(
            &format!("Incorrect API key provided: {SECRET}. You sent {SECRET}."),
            "invalid_request_error",
            None,
        ),
        headers: vec![("www-authenticate", format!("Bearer realm=\"{SECRET}\""))],
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn provider_secret_never_reaches_logs_files_or_responses() {
    let mock = MockUpstream::start().await;
    let dead_port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        l.local_addr().expect("addr").port()
    };
    let dir = tempfile::tempdir().expect("tempdir");
    let config = dir.path().join("conf/switchyard.toml");
    let data = dir.path().join("data");
    std::fs::create_dir_all(config.parent().expect("dir")).expect("mkdir");
    std::fs::write(
        &config,
        format!(
            r#"[server]
listen = "127.0.0.1:0"

[[channels]]
id = "leaky"
type = "openai-compatible"
base_url = "{}"
bucket = "credit"
secret = "env:{SECRET_VAR}"

[[channels]]
id = "dead"
type = "openai-compatible"
base_url = "http://127.0.0.1:{dead_port}/v1"
bucket = "credit"
secret = "env:{SECRET_VAR}"

[[routes]]
model = "gpt-test"
targets = [{{ channel = "leaky", model = "up-a" }}]

[[routes]]
model = "gpt-dead"
targets = [{{ channel = "dead", model = "up-a" }}]
"#,
            mock.url()
        ),
    )
    .expect("config");
    let key = {
        let conn = db::open(&data.join("switchyard.db")).expect("db");
        keys::create(
            &conn,
            &NewKey {
                name: "leakcheck".into(),
                ..Default::default()
            },
        )
        .expect("key")
        .1
    };

    let served = Served::start(&config, &data);
    let (addr, admin_token) = served.started().await;
    let http = reqwest::Client::new();
    let url = |p: &str| format!("http://{addr}{p}");
    let chat = |body: Value, bearer: &str| {
        http.post(url("/v1/chat/completions"))
            .bearer_auth(bearer)
            .json(&body)
            .send()
    };
    let mut transcript = Vec::new();

    // A success, whole and streamed.
    let (status, _) = seen(
        chat(chat_body(false), &key).await.expect("sent"),
        &mut transcript,
    )
    .await;
    assert_eq!(status, 200);
    let auth = mock
        .last_headers()
        .into_iter()
        .find(|(k, _)| k == "authorization");
    assert_eq!(
        auth.map(|(_, v)| v),
        Some(format!("Bearer {SECRET}")),
        "the secret is really in play"
    );
    let (status, body) = seen(
        chat(chat_body(true), &key).await.expect("sent"),
        &mut transcript,
    )
    .await;
    assert_eq!(status, 200);
    assert!(body.contains("[DONE]"), "{body}");

    // An upstream 500 whose body echoes the key (retried, then summarised).
    mock.set_default(echo(500));
    let (status, _) = seen(
        chat(chat_body(false), &key).await.expect("sent"),
        &mut transcript,
    )
    .await;
    assert_eq!(status, 502);

    // A 400 echoing it is relayed, with the key cut out.
    mock.set_default(echo(400));
    let (status, body) = seen(
        chat(chat_body(false), &key).await.expect("sent"),
        &mut transcript,
    )
    .await;
    assert_eq!(status, 400);
    assert!(body.contains("[redacted]"), "{body}");

    // An error event mid-stream that echoes it.
    mock.set_default(Reply::ErrorEventAfter(
        2,
        format!("upstream exploded with key {SECRET}"),
    ));
    let (status, body) = seen(
        chat(chat_body(true), &key).await.expect("sent"),
        &mut transcript,
    )
    .await;
    assert_eq!(status, 200);
    assert!(body.contains("[redacted]"), "{body}");

    // A channel that cannot be reached (reqwest errors carry URLs).
    let mut dead = chat_body(false);
    dead["model"] = json!("gpt-dead");
    let (status, _) = seen(chat(dead, &key).await.expect("sent"), &mut transcript).await;
    assert_eq!(status, 502);

    // A confused client sending the provider secret as its gateway key.
    let (status, _) = seen(
        chat(chat_body(false), SECRET).await.expect("sent"),
        &mut transcript,
    )
    .await;
    assert_eq!(status, 401);

    // The management view and the model list.
    let resp = http
        .get(url("/api/status"))
        .bearer_auth(&admin_token)
        .send()
        .await
        .expect("sent");
    let (status, _) = seen(resp, &mut transcript).await;
    assert_eq!(status, 200);
    let resp = http
        .get(url("/v1/models"))
        .bearer_auth(&key)
        .send()
        .await
        .expect("sent");
    assert_eq!(seen(resp, &mut transcript).await.0, 200);

    // Last, the provider rejects the secret: 401 with the key echoed.
    mock.set_default(echo(401));
    let (status, body) = seen(
        chat(chat_body(false), &key).await.expect("sent"),
        &mut transcript,
    )
    .await;
    assert_eq!(status, 502, "{body}");
    assert!(body.contains("switchyard secret set leaky"), "{body}");

    // `secret status`, another process, sees the rejection.
    let env = [(SECRET_VAR, SECRET)];
    let deadline = Instant::now() + Duration::from_secs(10);
    let status_text = loop {
        let text = status_output(&config, &data, &env);
        if text.contains("rejected") {
            break text;
        }
        assert!(Instant::now() < deadline, "rejection recorded:\n{text}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let leaky = status_text
        .lines()
        .find(|l| l.starts_with("leaky"))
        .expect("a row per channel");
    assert!(leaky.contains("rejected (401 at "), "{status_text}");
    assert!(
        status_text
            .lines()
            .any(|l| l.starts_with("dead") && l.ends_with("set")),
        "{status_text}"
    );
    transcript.extend_from_slice(status_text.as_bytes());

    let (stderr, stdout) = served.stop().await;
    let log = String::from_utf8_lossy(&stderr).into_owned();
    // The log really saw all of it, at TRACE, with the key cut out.
    for needle in [
        "TRACE",
        "upstream refused",
        "[redacted]",
        "upstream request failed",
        // The per-request line, for the request whose key was refused.
        "switchyard::request: primary leaky/up-a → 401",
    ] {
        assert!(log.contains(needle), "log lacks `{needle}`:\n{log}");
    }
    assert_no_leak("the gateway's log", &stderr);
    assert_no_leak("the gateway's stdout", &stdout);
    assert_no_leak("what clients saw", &transcript);
    for url in log.split("http://").skip(1) {
        let url: String = url
            .chars()
            .take_while(|c| !c.is_whitespace() && !matches!(c, '"' | '\'' | ')' | ','))
            .collect();
        assert!(!url.contains('?'), "a logged URL carries a query: {url}");
    }
    let mut files = Vec::new();
    files_under(dir.path(), &mut files);
    assert!(
        files.iter().any(|f| f.ends_with("switchyard.db")),
        "{files:?}"
    );
    for f in files {
        assert_no_leak(&f.display().to_string(), &std::fs::read(&f).expect("read"));
    }
}

/// Panics when armed, inside the request handler (a recorder is told of
/// every request before any upstream call).
#[derive(Default)]
struct PanicOnce {
    armed: AtomicBool,
}

impl Recorder for PanicOnce {
    fn begin(&self, _: &RequestRecord) {
        if self.armed.swap(false, Ordering::SeqCst) {
            panic!("boom: internal detail XYZZY-PANIC-DETAIL");
        }
    }
    fn record(&self, _: &Arc<RequestRecord>) {}
}

#[tokio::test]
async fn panicking_handler_answers_an_openai_500_without_the_panic_message() {
    let mock = MockUpstream::start().await;
    let panic = Arc::new(PanicOnce::default());
    let config = format!(
        "[server]\nlisten = \"127.0.0.1:0\"\n{}",
        one_target(&mock, "")
    );
    let app =
        spawn_app_recording(&config, &[], vec![Arc::clone(&panic) as Arc<dyn Recorder>]).await;
    panic.armed.store(true, Ordering::SeqCst);
    let resp = app.chat(chat_body(false)).await;
    assert_eq!(resp.status(), 500);
    assert_eq!(header(&resp, "content-type"), "application/json");
    let headers = format!("{:?}", resp.headers());
    let text = resp.text().await.expect("body");
    assert!(!text.contains("XYZZY") && !text.contains("boom"), "{text}");
    assert!(!headers.contains("XYZZY"), "{headers}");
    let body: Value = serde_json::from_str(&text).expect("OpenAI error JSON");
    assert_eq!(body["error"]["type"], "server_error");
    assert!(body["error"]["message"]
        .as_str()
        .is_some_and(|m| m.contains("request id req_")));
    assert_eq!(mock.hits(), 0);
    // The server lives on.
    assert_eq!(app.chat(chat_body(false)).await.status(), 200);
}

async fn error_json(resp: reqwest::Response) -> (u16, Value) {
    let status = resp.status().as_u16();
    assert_eq!(header(&resp, "content-type"), "application/json");
    let body: Value = resp.json().await.expect("OpenAI error JSON");
    assert!(
        body["error"]["message"]
            .as_str()
            .is_some_and(|m| !m.is_empty()),
        "{body}"
    );
    (status, body)
}

#[tokio::test]
async fn foreign_host_header_is_refused_as_dns_rebinding_even_for_health() {
    let mock = MockUpstream::start().await;
    let app = spawn_app(&one_target(&mock, "")).await;
    let port = app.addr.port();
    for host in [
        format!("evil.example:{port}"),
        "evil.example".to_string(),
        format!("127.0.0.1:{}", port.wrapping_add(1)),
        format!("localhost.evil.example:{port}"),
    ] {
        let resp = app
            .http
            .post(app.url("/v1/chat/completions"))
            .header("host", &host)
            .bearer_auth(&app.key)
            .json(&chat_body(false))
            .send()
            .await
            .expect("sent");
        let (status, body) = error_json(resp).await;
        assert_eq!(status, 403, "{host}");
        assert_eq!(body["error"]["code"], "host_not_allowed");
        assert!(
            body["error"]["message"]
                .as_str()
                .is_some_and(|m| m.contains("DNS rebinding")),
            "{body}"
        );
        let resp = app
            .http
            .get(app.url("/health"))
            .header("host", &host)
            .send()
            .await
            .expect("sent");
        assert_eq!(error_json(resp).await.0, 403, "/health with {host}");
    }
    assert_eq!(mock.hits(), 0, "nothing reached the upstream");
}

#[tokio::test]
async fn loopback_host_names_are_served() {
    let mock = MockUpstream::start().await;
    let app = spawn_app(&one_target(&mock, "")).await;
    let port = app.addr.port();
    for host in [
        format!("127.0.0.1:{port}"),
        format!("localhost:{port}"),
        format!("[::1]:{port}"),
        "localhost".to_string(),
    ] {
        let resp = app
            .http
            .get(app.url("/health"))
            .header("host", &host)
            .send()
            .await
            .expect("sent");
        assert_eq!(resp.status(), 200, "{host}");
    }
    let resp = app
        .http
        .post(app.url("/v1/chat/completions"))
        .header("host", format!("localhost:{port}"))
        .bearer_auth(&app.key)
        .json(&chat_body(false))
        .send()
        .await
        .expect("sent");
    assert_eq!(resp.status(), 200);
}

async fn cors_app(mock: &MockUpstream) -> TestApp {
    spawn_app_with(
        &format!(
            "[server]\nlisten = \"127.0.0.1:0\"\nallowed_origins = [\"http://localhost:5173\"]\n{}",
            one_target(mock, "")
        ),
        &[],
    )
    .await
}

fn cors_headers(resp: &reqwest::Response) -> Vec<String> {
    resp.headers()
        .keys()
        .map(|k| k.as_str().to_string())
        .filter(|k| k.starts_with("access-control-"))
        .collect()
}

#[tokio::test]
async fn preflight_from_an_allowed_origin_gets_204_with_cors_headers() {
    let mock = MockUpstream::start().await;
    let app = cors_app(&mock).await;
    let resp = app
        .http
        .request(reqwest::Method::OPTIONS, app.url("/v1/chat/completions"))
        .header("origin", "http://localhost:5173")
        .header("access-control-request-method", "POST")
        .header(
            "access-control-request-headers",
            "authorization, content-type, x-stainless-os",
        )
        .send()
        .await
        .expect("sent");
    assert_eq!(resp.status(), 204);
    assert_eq!(
        header(&resp, "access-control-allow-origin"),
        "http://localhost:5173"
    );
    assert!(header(&resp, "access-control-allow-methods").contains("POST"));
    let allowed = header(&resp, "access-control-allow-headers");
    for h in [
        "authorization",
        "content-type",
        "x-api-key",
        "anthropic-version",
        "x-stainless-os",
    ] {
        assert!(allowed.contains(h), "{h} in {allowed}");
    }
}

#[tokio::test]
async fn preflight_from_an_unknown_origin_is_403_without_cors_headers() {
    let mock = MockUpstream::start().await;
    let app = cors_app(&mock).await;
    let resp = app
        .http
        .request(reqwest::Method::OPTIONS, app.url("/v1/chat/completions"))
        .header("origin", "https://evil.example")
        .header("access-control-request-method", "POST")
        .send()
        .await
        .expect("sent");
    assert!(cors_headers(&resp).is_empty(), "{:?}", resp.headers());
    let (status, body) = error_json(resp).await;
    assert_eq!(status, 403);
    assert_eq!(body["error"]["code"], "origin_not_allowed");
    assert!(body["error"]["message"]
        .as_str()
        .is_some_and(|m| m.contains("allowed_origins")));
}

#[tokio::test]
async fn simple_request_from_an_unknown_origin_is_refused_before_spending() {
    let mock = MockUpstream::start().await;
    let app = cors_app(&mock).await;
    // What a hostile page can send without a preflight: a text/plain POST.
    let resp = app
        .http
        .post(app.url("/v1/chat/completions"))
        .header("origin", "http://localhost:3000")
        .header("content-type", "text/plain")
        .bearer_auth(&app.key)
        .body(chat_body(false).to_string())
        .send()
        .await
        .expect("sent");
    assert!(cors_headers(&resp).is_empty(), "{:?}", resp.headers());
    let (status, body) = error_json(resp).await;
    assert_eq!(status, 403);
    assert_eq!(body["error"]["code"], "origin_not_allowed");
    assert_eq!(mock.hits(), 0);
    app.flush().await;
    let db = app.db();
    let (status, cost, error): (String, i64, String) = db
        .query_row("SELECT status, cost, error FROM receipts", [], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?))
        })
        .expect("one receipt: the refusal");
    assert_eq!((status.as_str(), cost), ("refused", 0));
    assert!(
        error.starts_with("POST /v1/chat/completions → 403:"),
        "{error}"
    );
    let charges: i64 = db
        .query_row("SELECT count(*) FROM ledger_entries", [], |r| r.get(0))
        .expect("count");
    assert_eq!(charges, 0, "nothing was started, nothing charged");
}

#[tokio::test]
async fn allowed_and_own_origins_are_served_with_cors_headers_others_get_none() {
    let mock = MockUpstream::start().await;
    let app = cors_app(&mock).await;
    let own = format!("http://127.0.0.1:{}", app.addr.port());
    for origin in ["http://localhost:5173", own.as_str()] {
        let resp = app
            .http
            .post(app.url("/v1/chat/completions"))
            .header("origin", origin)
            .bearer_auth(&app.key)
            .json(&chat_body(false))
            .send()
            .await
            .expect("sent");
        assert_eq!(resp.status(), 200, "{origin}");
        assert_eq!(header(&resp, "access-control-allow-origin"), origin);
        assert!(header(&resp, "access-control-expose-headers").contains("x-switchyard-channel"));
    }
    let resp = app.chat(chat_body(false)).await;
    assert_eq!(resp.status(), 200);
    assert!(cors_headers(&resp).is_empty(), "no Origin, no CORS headers");
}

#[tokio::test]
async fn repeated_wrong_keys_from_one_address_get_429_but_a_good_key_never_does() {
    let mock = MockUpstream::start().await;
    let app = spawn_app(&one_target(&mock, "")).await;
    for i in 0..10 {
        let wrong = format!("sy-wrong-{i}");
        let (status, _) = error_json(app.chat_as(&wrong, chat_body(false)).await).await;
        assert_eq!(status, 401, "failure {i} is within the budget");
        assert_eq!(
            app.chat(chat_body(false)).await.status(),
            200,
            "a good key is never slowed"
        );
    }
    let resp = app.chat_as("sy-wrong-again", chat_body(false)).await;
    let retry_after: u64 = header(&resp, "retry-after").parse().expect("Retry-After");
    assert!((1..=10).contains(&retry_after), "{retry_after}");
    let (status, body) = error_json(resp).await;
    assert_eq!(status, 429);
    assert_eq!(body["error"]["code"], "too_many_auth_failures");
    // A missing key and a wrong admin token count the same way.
    let resp = app
        .http
        .post(app.url("/v1/chat/completions"))
        .json(&chat_body(false))
        .send()
        .await
        .expect("sent");
    assert_eq!(resp.status(), 429);
    let resp = app
        .http
        .get(app.url("/api/status"))
        .bearer_auth("sya-guess")
        .send()
        .await
        .expect("sent");
    assert_eq!(resp.status(), 429);
    assert_eq!(app.chat(chat_body(false)).await.status(), 200);
    let resp = app
        .http
        .get(app.url("/api/status"))
        .bearer_auth(&app.admin_token)
        .send()
        .await
        .expect("sent");
    assert_eq!(resp.status(), 200, "the admin token is not slowed either");
}

async fn slow_app(mock: &MockUpstream) -> TestApp {
    spawn_app_with(
        &format!(
            "[server]\nlisten = \"127.0.0.1:0\"\nclient_timeout_s = 1\n{}",
            one_target(mock, "")
        ),
        &[],
    )
    .await
}

/// Reads until the server closes the connection (or 10 s pass).
async fn read_until_closed(sock: &mut TcpStream) -> String {
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        match tokio::time::timeout_at(deadline, sock.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => break,
            Ok(Ok(n)) => out.extend_from_slice(&buf[..n]),
            Err(_) => panic!(
                "the server kept the connection open: {}",
                String::from_utf8_lossy(&out)
            ),
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[tokio::test]
async fn body_sent_one_byte_at_a_time_is_cut_off_with_408_after_the_client_timeout() {
    let mock = MockUpstream::start().await;
    let app = slow_app(&mock).await;
    let mut sock = TcpStream::connect(app.addr).await.expect("connect");
    let head = format!(
        "POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {}\r\n\
         Content-Type: application/json\r\nContent-Length: 1000\r\n\r\n",
        app.key
    );
    sock.write_all(head.as_bytes()).await.expect("head");
    let started = Instant::now();
    let (mut rd, mut wr) = sock.into_split();
    let dribble = tokio::spawn(async move {
        for _ in 0..1000 {
            if wr.write_all(b" ").await.is_err() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    });
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match tokio::time::timeout(Duration::from_secs(10), rd.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => break,
            Ok(Ok(n)) => out.extend_from_slice(&buf[..n]),
            Err(_) => panic!("the slow client held the connection"),
        }
    }
    dribble.abort();
    let elapsed = started.elapsed();
    let text = String::from_utf8_lossy(&out);
    assert!(text.starts_with("HTTP/1.1 408"), "{text}");
    assert!(text.contains("\"code\":\"request_timeout\""), "{text}");
    assert!(text.contains("client_timeout_s"), "{text}");
    assert!(
        elapsed >= Duration::from_millis(900) && elapsed < Duration::from_secs(5),
        "{elapsed:?}"
    );
    assert_eq!(mock.hits(), 0);
    // A client at normal speed is unaffected by the short timeout.
    assert_eq!(app.chat(chat_body(false)).await.status(), 200);
}

#[tokio::test]
async fn answers_that_take_longer_than_the_client_timeout_are_not_cut() {
    let mock = MockUpstream::start().await;
    mock.set_default(Reply::SlowFirstToken(Duration::from_millis(2500)));
    let app = slow_app(&mock).await;
    let started = Instant::now();
    let resp = app.chat(chat_body(true)).await;
    assert_eq!(resp.status(), 200);
    let stream = read_stream(resp).await;
    assert!(started.elapsed() >= Duration::from_millis(2500));
    assert!(stream.done && stream.error().is_none());
    assert_eq!(stream.text(), ANSWER);
    // The same connection serves the next request.
    mock.set_default(Reply::Ok);
    assert_eq!(app.chat(chat_body(false)).await.status(), 200);
}

#[tokio::test]
async fn headers_sent_slowly_are_cut_off_after_the_client_timeout() {
    let mock = MockUpstream::start().await;
    let app = slow_app(&mock).await;
    let mut sock = TcpStream::connect(app.addr).await.expect("connect");
    let started = Instant::now();
    sock.write_all(b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ")
        .await
        .expect("start");
    let (mut rd, mut wr) = sock.into_split();
    let dribble = tokio::spawn(async move {
        for _ in 0..1000 {
            if wr.write_all(b"a").await.is_err() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    });
    let mut buf = [0u8; 1024];
    let closed = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            match rd.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(_) => {}
            }
        }
    })
    .await;
    dribble.abort();
    assert!(closed.is_ok(), "the slow client held the connection");
    let elapsed = started.elapsed();
    assert!(
        elapsed >= Duration::from_millis(900) && elapsed < Duration::from_secs(5),
        "{elapsed:?}"
    );
    let resp = app.http.get(app.url("/health")).send().await.expect("sent");
    assert_eq!(resp.status(), 200, "others are served meanwhile");
}

#[tokio::test]
async fn oversized_request_headers_are_refused_with_431() {
    let mock = MockUpstream::start().await;
    let app = spawn_app(&one_target(&mock, "")).await;
    let mut sock = TcpStream::connect(app.addr).await.expect("connect");
    let big = "a".repeat(80 * 1024);
    let req = format!("GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Big: {big}\r\n\r\n");
    let _ = sock.write_all(req.as_bytes()).await;
    let text = read_until_closed(&mut sock).await;
    assert!(text.starts_with("HTTP/1.1 431"), "{text}");
    let resp = app.http.get(app.url("/health")).send().await.expect("sent");
    assert_eq!(resp.status(), 200, "an ordinary request is served");
}

#[tokio::test]
async fn api_status_opens_with_the_admin_token_and_reports_the_gateway() {
    let mock = MockUpstream::start().await;
    let app = spawn_app(&one_target(&mock, "")).await;
    app.topup(switchyard::config::Bucket::Credit, 12_500_000)
        .await;
    assert!(app.admin_token.starts_with("sya-") && app.admin_token.len() >= 47);
    let resp = app
        .http
        .get(app.url("/api/status"))
        .bearer_auth(&app.admin_token)
        .send()
        .await
        .expect("sent");
    assert_eq!(resp.status(), 200);
    let body: Value = resp.json().await.expect("json");
    assert_eq!(body["version"], env!("CARGO_PKG_VERSION"));
    assert_eq!(body["listen"], app.addr.to_string());
    assert_eq!(
        (body["channels"].as_u64(), body["routes"].as_u64()),
        (Some(1), Some(1))
    );
    assert_eq!(
        body["balances"],
        json!([
            {"bucket": "credit", "currency": "USD", "balance": "12.50", "balance_micro": 12_500_000},
            {"bucket": "wallet", "currency": "CNY", "balance": "0.00", "balance_micro": 0},
        ])
    );
}

#[tokio::test]
async fn gateway_key_never_opens_api() {
    let mock = MockUpstream::start().await;
    let app = spawn_app(&one_target(&mock, "")).await;
    for bearer in [Some(app.key.as_str()), None, Some("sya-not-the-token")] {
        let mut req = app.http.get(app.url("/api/status"));
        if let Some(b) = bearer {
            req = req.bearer_auth(b);
        }
        let (status, body) = error_json(req.send().await.expect("sent")).await;
        assert_eq!(status, 401, "{bearer:?}");
        assert_eq!(body["error"]["code"], "admin_token_required");
        assert!(
            body["error"]["message"]
                .as_str()
                .is_some_and(|m| m.contains("admin token")),
            "{body}"
        );
    }
    // Nor does x-api-key, the other way a gateway key is sent.
    let resp = app
        .http
        .get(app.url("/api/status"))
        .header("x-api-key", &app.admin_token)
        .send()
        .await
        .expect("sent");
    assert_eq!(resp.status(), 401);
}

#[tokio::test]
async fn admin_token_never_opens_v1() {
    let mock = MockUpstream::start().await;
    let app = spawn_app(&one_target(&mock, "")).await;
    let (status, body) = error_json(app.chat_as(&app.admin_token, chat_body(false)).await).await;
    assert_eq!(status, 401);
    assert_eq!(body["error"]["code"], "invalid_api_key");
    assert!(
        body["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("only the management API")),
        "{body}"
    );
    let resp = app
        .http
        .get(app.url("/v1/models"))
        .header("x-api-key", &app.admin_token)
        .send()
        .await
        .expect("sent");
    assert_eq!(resp.status(), 401);
    assert_eq!(mock.hits(), 0);
}

fn rejection(app: &TestApp, channel: &str) -> Option<(i64, i64)> {
    use rusqlite::OptionalExtension;
    app.db()
        .query_row(
            "SELECT status, rejected_at FROM channel_status WHERE channel = ?1",
            [channel],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .optional()
        .expect("query")
}

async fn wait_for_rejection(app: &TestApp, channel: &str, want: bool) -> Option<(i64, i64)> {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let r = rejection(app, channel);
        if r.is_some() == want {
            return r;
        }
        assert!(
            Instant::now() < deadline,
            "rejection of {channel} never became {want}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn rejected_secret_is_recorded_for_secret_status_and_cleared_when_it_works_again() {
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
    let app = spawn_app_with(&config, &[("openai", "sk-soon-rejected")]).await;
    mock.set_default(Reply::Status {
        status: 403,
        body: openai_error("no access", "invalid_request_error", None),
        headers: Vec::new(),
    });
    let started = chrono::Utc::now().timestamp_millis();
    assert_eq!(app.chat(chat_body(false)).await.status(), 502);
    let (status, at) = wait_for_rejection(&app, "openai", true)
        .await
        .expect("recorded");
    assert_eq!(status, 403);
    assert!(at >= started - 1000, "{at} vs {started}");

    mock.set_default(Reply::Ok);
    assert_eq!(app.chat(chat_body(false)).await.status(), 200);
    wait_for_rejection(&app, "openai", false).await;
}

#[test]
fn secret_status_shows_set_missing_rejected_not_needed_and_unavailable() {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = dir.path().join("c.toml");
    let data = dir.path().join("data");
    std::fs::write(
        &config,
        r#"
[[channels]]
id = "from-env"
type = "openai-compatible"
base_url = "http://127.0.0.1:9/v1"
bucket = "credit"
secret = "env:SWITCHYARD_STATUS_SET"

[[channels]]
id = "env-missing"
type = "openai-compatible"
base_url = "http://127.0.0.1:9/v1"
bucket = "credit"
secret = "env:SWITCHYARD_STATUS_UNSET"

[[channels]]
id = "refused"
type = "openai-compatible"
base_url = "http://127.0.0.1:9/v1"
bucket = "credit"
secret = "env:SWITCHYARD_STATUS_SET"

[[channels]]
id = "local"
type = "openai-compatible"
base_url = "http://127.0.0.1:9/v1"
bucket = "wallet"
secret = "none"

[[channels]]
id = "in-keyring"
type = "openai"
bucket = "credit"
"#,
    )
    .expect("config");
    let conn = db::open(&data.join("switchyard.db")).expect("db");
    switchyard::secrets::status::mark_rejected(
        &conn,
        "refused",
        switchyard::secrets::status::Rejection {
            status: 401,
            at_ms: 1_700_000_000_000,
        },
    )
    .expect("mark");
    let text = status_output(
        &config,
        &data,
        &[("SWITCHYARD_STATUS_SET", "sk-status-set-value")],
    );
    let row = |id: &str| {
        text.lines()
            .find(|l| l.split_whitespace().next() == Some(id))
            .unwrap_or_else(|| panic!("no row for {id}:\n{text}"))
            .to_string()
    };
    assert!(row("from-env").ends_with(" set"), "{text}");
    assert!(row("env-missing").ends_with(" missing"), "{text}");
    assert!(
        row("refused").contains(" rejected (401 at 2023-11-"),
        "{text}"
    );
    assert!(row("local").ends_with(" not needed"), "{text}");
    assert!(row("in-keyring").contains(" unavailable ("), "{text}");
    assert!(text.contains("refused the secret of refused"), "{text}");
    assert!(!text.contains("sk-status-set-value"), "{text}");
}
