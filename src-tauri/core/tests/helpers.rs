//! `spawn_app()`: a real gateway on port 0 with a temp data dir, an
//! in-memory secret store and a recorder the test can read.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, Once};
use std::time::Duration;

use secrecy::ExposeSecret;
use serde_json::{json, Value};
use switchyard::app::{self, AppOptions, Server};
use switchyard::config::{Bucket, Config};
use switchyard::keys::{self, NewKey};
use switchyard::ledger::db;
use switchyard::record::{Recorder, RequestRecord};
use switchyard::secrets::{MemoryStore, SecretStore};
use tempfile::TempDir;
use tokio::sync::Notify;

use crate::mock::MockUpstream;

static TRACING: Once = Once::new();

/// Quiet unless TEST_LOG is set.
fn init_tracing() {
    TRACING.call_once(|| {
        if std::env::var_os("TEST_LOG").is_some() {
            let _ = tracing_subscriber::fmt()
                .with_env_filter(tracing_subscriber::EnvFilter::new(
                    "debug,hyper=info,reqwest=info",
                ))
                .with_test_writer()
                .try_init();
        }
    });
}

#[derive(Default)]
pub struct Capture {
    records: Mutex<Vec<RequestRecord>>,
    notify: Notify,
}

impl Recorder for Capture {
    fn record(&self, record: &Arc<RequestRecord>) {
        self.records
            .lock()
            .expect("lock")
            .push(RequestRecord::clone(record));
        self.notify.notify_waiters();
    }
}

pub struct TestApp {
    pub addr: SocketAddr,
    /// A key that may use every model and bucket.
    pub key: String,
    /// The admin token for `/api` (kept in the test's in-memory store).
    pub admin_token: String,
    pub http: reqwest::Client,
    pub capture: Arc<Capture>,
    pub dir: TempDir,
    server: Option<Server>,
}

impl TestApp {
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    pub fn db_path(&self) -> PathBuf {
        app::db_path(self.dir.path())
    }

    pub async fn chat(&self, body: Value) -> reqwest::Response {
        self.chat_as(&self.key, body).await
    }

    pub async fn chat_as(&self, key: &str, body: Value) -> reqwest::Response {
        self.http
            .post(self.url("/v1/chat/completions"))
            .bearer_auth(key)
            .json(&body)
            .send()
            .await
            .expect("gateway reachable")
    }

    pub fn create_key(&self, name: &str, models: &[&str], buckets: &[Bucket]) -> String {
        let conn = db::open(&self.db_path()).expect("db");
        keys::create(
            &conn,
            &NewKey {
                name: name.into(),
                models: models.iter().map(|s| s.to_string()).collect(),
                buckets: buckets.to_vec(),
                project: Some("tests".into()),
                ..Default::default()
            },
        )
        .expect("create key")
        .1
    }

    /// Waits until `n` requests have been recorded and returns them all.
    pub async fn records(&self, n: usize) -> Vec<RequestRecord> {
        let wait = async {
            loop {
                let notified = self.capture.notify.notified();
                {
                    let recs = self.capture.records.lock().expect("lock");
                    if recs.len() >= n {
                        return recs.clone();
                    }
                }
                notified.await;
            }
        };
        tokio::time::timeout(Duration::from_secs(15), wait)
            .await
            .expect("request records arrive")
    }

    /// The single record of a test that made one request.
    pub async fn only_record(&self) -> RequestRecord {
        let recs = self.records(1).await;
        assert_eq!(recs.len(), 1, "exactly one record per request");
        recs[0].clone()
    }

    /// Waits until every receipt so far is on disk.
    pub async fn flush(&self) {
        let state = self.state();
        tokio::task::spawn_blocking(move || state.core.ledger.flush())
            .await
            .expect("flush");
    }

    pub fn db(&self) -> rusqlite::Connection {
        db::open(&self.db_path()).expect("db")
    }

    /// Tops up a bucket the way `switchyard topup` does, and waits until the
    /// running gateway has seen it.
    pub async fn topup(&self, bucket: Bucket, micro: i64) {
        let config = Config::default();
        let mut conn = self.db();
        switchyard::ledger::store::topup(&mut conn, &config.buckets, bucket, micro, None)
            .expect("topup");
        let state = self.state();
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        while state.core.ledger.balance(bucket) < micro {
            assert!(
                std::time::Instant::now() < deadline,
                "gateway sees the top-up"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    pub fn state(&self) -> std::sync::Arc<switchyard::server::AppState> {
        std::sync::Arc::clone(&self.server.as_ref().expect("running").state)
    }

    pub async fn stop(mut self) {
        if let Some(s) = self.server.take() {
            s.shutdown().await.expect("clean shutdown");
        }
    }
}

/// A child process that is killed when the test ends, pass or fail, so a
/// failing assertion never leaves a `switchyard serve` running.
pub struct ChildGuard(pub std::process::Child);

impl ChildGuard {
    /// Sends SIGTERM and waits, at most `within`, for the process to exit.
    pub async fn terminate(&mut self, within: Duration) -> std::process::ExitStatus {
        let pid = self.0.id().to_string();
        assert!(std::process::Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .expect("kill")
            .success());
        let deadline = std::time::Instant::now() + within;
        loop {
            if let Some(status) = self.0.try_wait().expect("wait") {
                return status;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "exits within {within:?} of SIGTERM"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

impl Drop for ChildGuard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts a gateway whose config is `[server] listen = "127.0.0.1:0"`
/// followed by `config`.
pub async fn spawn_app(config: &str) -> TestApp {
    spawn_app_with(
        &format!("[server]\nlisten = \"127.0.0.1:0\"\n\n{config}"),
        &[],
    )
    .await
}

/// Starts a gateway with a whole config text and secrets in the store.
pub async fn spawn_app_with(config: &str, secrets: &[(&str, &str)]) -> TestApp {
    spawn_app_recording(config, secrets, Vec::new()).await
}

/// As [`spawn_app_with`], with more recorders to hand every request to.
pub async fn spawn_app_recording(
    config: &str,
    secrets: &[(&str, &str)],
    recorders: Vec<Arc<dyn Recorder>>,
) -> TestApp {
    init_tracing();
    let dir = tempfile::tempdir().expect("tempdir");
    // On disk, as a user's would be: `/api` edits it.
    let config_path = dir.path().join("switchyard.toml");
    std::fs::write(&config_path, config).expect("write config");
    let config = Config::parse(config, &config_path).expect("test config is valid");
    let store = Arc::new(MemoryStore::new());
    for (channel, secret) in secrets {
        store.set(channel, secret).expect("store secret");
    }
    let conn = db::open(&app::db_path(dir.path())).expect("db");
    let (_, key) = keys::create(
        &conn,
        &NewKey {
            name: "all".into(),
            project: Some("tests".into()),
            ..Default::default()
        },
    )
    .expect("key");
    drop(conn);
    let capture = Arc::new(Capture::default());
    let mut all: Vec<Arc<dyn Recorder>> = vec![Arc::clone(&capture) as Arc<dyn Recorder>];
    all.extend(recorders);
    let server = app::start(AppOptions {
        config,
        data_dir: dir.path().to_path_buf(),
        secrets: Arc::clone(&store) as Arc<dyn SecretStore>,
        recorders: all,
    })
    .await
    .expect("gateway starts");
    let admin_token = store
        .get(switchyard::secrets::ADMIN_TOKEN_ACCOUNT)
        .expect("memory store")
        .expect("the admin token is stored at first start");
    assert_eq!(
        admin_token.expose_secret(),
        server.admin_token.expose_secret()
    );
    TestApp {
        addr: server.addr,
        key,
        admin_token: admin_token.expose_secret().to_string(),
        http: reqwest::Client::new(),
        capture,
        dir,
        server: Some(server),
    }
}

/// Channels `primary` and `backup` (both credit, no secret) and a route
/// `gpt-test` → primary `up-a`, backup `up-b`; `extra` is appended to the
/// route table, and `channel_extra` to both channels.
pub fn two_targets(primary: &MockUpstream, backup: &MockUpstream, route_extra: &str) -> String {
    format!(
        r#"
[[channels]]
id = "primary"
type = "openai-compatible"
base_url = "{}"
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
targets = [{{ channel = "primary", model = "up-a" }}, {{ channel = "backup", model = "up-b" }}]
{route_extra}
"#,
        primary.url(),
        backup.url()
    )
}

/// A route `gpt-test` → a single target `up-a` on `mock`.
pub fn one_target(mock: &MockUpstream, route_extra: &str) -> String {
    format!(
        r#"
[[channels]]
id = "only"
type = "openai-compatible"
base_url = "{}"
bucket = "credit"
secret = "none"

[[routes]]
model = "gpt-test"
targets = [{{ channel = "only", model = "up-a" }}]
{route_extra}
"#,
        mock.url()
    )
}

pub fn chat_body(stream: bool) -> Value {
    json!({
        "model": "gpt-test",
        "messages": [{"role": "user", "content": "Say hello"}],
        "stream": stream
    })
}

pub fn header<'a>(resp: &'a reqwest::Response, name: &str) -> &'a str {
    resp.headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
}

/// A parsed client-side SSE stream.
pub struct ClientStream {
    /// JSON payloads of `data:` events, `[DONE]` excluded.
    pub events: Vec<Value>,
    pub done: bool,
}

impl ClientStream {
    pub fn text(&self) -> String {
        self.events
            .iter()
            .filter_map(|e| {
                e.pointer("/choices/0/delta/content")
                    .and_then(|c| c.as_str())
            })
            .collect()
    }

    pub fn error(&self) -> Option<&Value> {
        self.events.iter().find_map(|e| e.get("error"))
    }
}

pub async fn read_stream(resp: reqwest::Response) -> ClientStream {
    let text = tokio::time::timeout(Duration::from_secs(30), resp.text())
        .await
        .expect("stream ends")
        .expect("stream body");
    let mut events = Vec::new();
    let mut done = false;
    for block in text.split("\n\n") {
        let Some(data) = block.trim().strip_prefix("data: ") else {
            continue;
        };
        assert!(!done, "nothing may follow [DONE]: {text}");
        if data == "[DONE]" {
            done = true;
        } else {
            events.push(serde_json::from_str(data).expect("every forwarded event is JSON"));
        }
    }
    ClientStream { events, done }
}

/// Priced routes: `gpt-4o` paid from Credit (USD) through `official`,
/// `cheap` (×0.3, CNY) and `house` (price override) from Wallet through
/// `relay`, and `fallback` from official to relay across buckets.
/// `buckets` is TOML placed before the channels.
pub fn priced_config(official: &MockUpstream, relay: &MockUpstream, buckets: &str) -> String {
    format!(
        r#"
{buckets}

[[channels]]
id = "official"
type = "openai"
brand = "OpenAI"
base_url = "{}"
bucket = "credit"
secret = "none"

[[channels]]
id = "relay"
type = "openai-compatible"
brand = "Relay"
base_url = "{}"
bucket = "wallet"
secret = "none"
price_multiplier = 0.3

[[routes]]
model = "gpt-4o"
targets = [{{ channel = "official", model = "gpt-4o" }}]

[[routes]]
model = "cheap"
targets = [{{ channel = "relay", model = "gpt-4o" }}]

[[routes]]
model = "house"
targets = [{{ channel = "relay", model = "house-model", price = {{ input = 3.0, output = 12.0 }} }}]

[[routes]]
model = "fallback"
targets = [{{ channel = "official", model = "gpt-4o" }}, {{ channel = "relay", model = "gpt-4o" }}]
cross_bucket = true
"#,
        official.url(),
        relay.url()
    )
}
