//! DESIGN.md §5.8 and §6 end to end: receipts, exact charges in the right
//! bucket, balances that equal their entries, 402 and budgets before any
//! upstream call, recovery after a hard kill, and nothing lost on a stop.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use serde_json::{json, Value};
use switchyard::config::Bucket;
use switchyard::keys::{self, NewKey};
use switchyard::ledger::store::balance_mismatches;
use switchyard::ledger::{receipts, Receipt};

use crate::helpers::*;
use crate::mock::*;

const TEN: i64 = 10_000_000;

fn ask(model: &str, stream: bool) -> Value {
    json!({"model": model, "messages": [{"role": "user", "content": "Say hello"}], "stream": stream})
}

fn all_receipts(app: &TestApp) -> Vec<Receipt> {
    receipts::recent(&app.db(), 1000).expect("receipts")
}

fn charges(app: &TestApp) -> BTreeMap<String, i64> {
    let conn = app.db();
    let mut stmt = conn
        .prepare("SELECT receipt_id, amount FROM ledger_entries WHERE kind = 'charge'")
        .expect("prepare");
    stmt.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?)))
        .expect("query")
        .map(|r| r.expect("row"))
        .collect()
}

/// Every charge equals its receipt's cost, and every balance equals the
/// sum of its entries.
fn assert_books_balance(app: &TestApp) {
    let receipts = all_receipts(app);
    let charges = charges(app);
    for r in &receipts {
        assert_ne!(r.status, "pending", "no receipt left pending");
        let charged = charges.get(&r.id).copied().unwrap_or(0);
        assert_eq!(-charged, r.cost, "charge of {} equals its cost", r.id);
    }
    assert_eq!(
        charges.len(),
        receipts.iter().filter(|r| r.cost != 0).count()
    );
    assert_eq!(balance_mismatches(&app.db()).expect("verify"), vec![]);
}

async fn one_receipt(app: &TestApp) -> Receipt {
    app.flush().await;
    let all = all_receipts(app);
    assert_eq!(all.len(), 1, "exactly one receipt");
    all[0].clone()
}

#[tokio::test]
async fn priced_request_is_charged_exactly_to_credit_and_the_charge_matches_the_receipt() {
    let (o, r) = (MockUpstream::start().await, MockUpstream::start().await);
    let app = spawn_app(&priced_config(&o, &r, "")).await;
    app.topup(Bucket::Credit, TEN).await;
    let resp = app.chat(ask("gpt-4o", false)).await;
    assert_eq!(resp.status(), 200);
    assert_eq!(header(&resp, "x-switchyard-bucket"), "credit");
    let rec = one_receipt(&app).await;
    // Usage 12 prompt (4 cached) + 5 completion (2 reasoning), USD list prices:
    // 8×2.50 + 4×1.25 + 3×10 + 2×10 = 75 micro-USD.
    assert_eq!(
        (
            rec.usage.input,
            rec.usage.cached_input,
            rec.usage.output,
            rec.usage.reasoning
        ),
        (8, 4, 3, 2)
    );
    assert_eq!(rec.cost, 75);
    assert_eq!(rec.currency.as_deref(), Some("USD"));
    assert_eq!(rec.bucket.as_deref(), Some("credit"));
    assert_eq!(rec.price.map(|p| p.cached_input), Some(1_250_000));
    assert_eq!(rec.price_source.as_deref(), Some("catalog"));
    assert_eq!(rec.status, "ok");
    assert_eq!(rec.key_name.as_deref(), Some("all"));
    assert_eq!(rec.project.as_deref(), Some("tests"));
    assert_eq!(rec.source, "api");
    assert_eq!(
        rec.walk,
        "primary official/gpt-4o → ok (200); paid from Credit"
    );
    assert_eq!(app.state().core.ledger.balance(Bucket::Credit), TEN - 75);
    assert_books_balance(&app);
}

#[tokio::test]
async fn wallet_target_is_priced_in_its_currency_with_multiplier_and_rate() {
    let (o, r) = (MockUpstream::start().await, MockUpstream::start().await);
    let app = spawn_app(&priced_config(&o, &r, "")).await;
    app.topup(Bucket::Wallet, TEN).await;
    assert_eq!(app.chat(ask("cheap", false)).await.status(), 200);
    let rec = one_receipt(&app).await;
    // gpt-4o × 0.3 × 7.1 CNY/USD: 8×5.325 + 4×2.6625 + 3×21.3 + 2×21.3 = 159.75 → 160.
    assert_eq!(rec.cost, 160);
    assert_eq!(rec.currency.as_deref(), Some("CNY"));
    assert_eq!(rec.bucket.as_deref(), Some("wallet"));
    assert_eq!(
        app.state().core.ledger.balance(Bucket::Credit),
        0,
        "credit untouched"
    );
    assert_books_balance(&app);
}

#[tokio::test]
async fn route_price_override_is_applied_in_the_bucket_currency() {
    let (o, r) = (MockUpstream::start().await, MockUpstream::start().await);
    let app = spawn_app(&priced_config(&o, &r, "")).await;
    app.topup(Bucket::Wallet, TEN).await;
    assert_eq!(app.chat(ask("house", false)).await.status(), 200);
    let rec = one_receipt(&app).await;
    // 8×3 + 4×3 (cached = input) + 3×12 + 2×12 (reasoning = output) = 96.
    assert_eq!(rec.cost, 96);
    assert_eq!(rec.price_source.as_deref(), Some("override"));
}

#[tokio::test]
async fn empty_bucket_is_refused_with_402_before_any_upstream_call() {
    let (o, r) = (MockUpstream::start().await, MockUpstream::start().await);
    let app = spawn_app(&priced_config(&o, &r, "")).await;
    let resp = app.chat(ask("gpt-4o", false)).await;
    assert_eq!(resp.status(), 402);
    assert_eq!(
        resp.headers()["x-switchyard-bucket"],
        "credit",
        "the bucket to top up"
    );
    let body: Value = resp.json().await.expect("json");
    assert_eq!(body["error"]["code"], "balance_empty");
    assert_eq!(body["error"]["type"], "insufficient_quota");
    let msg = body["error"]["message"].as_str().expect("message");
    assert!(msg.contains("Credit balance is 0.00 USD"), "{msg}");
    assert!(msg.contains("switchyard topup credit"), "{msg}");
    assert_eq!(o.hits(), 0, "nothing spent upstream");
    let rec = one_receipt(&app).await;
    assert_eq!(rec.status, "error");
    assert_eq!(rec.cost, 0);
    assert!(rec.walk.contains("skipped: bucket empty"), "{}", rec.walk);
}

#[tokio::test]
async fn allow_on_empty_goes_negative_with_a_warning_header() {
    let (o, r) = (MockUpstream::start().await, MockUpstream::start().await);
    let app = spawn_app(&priced_config(
        &o,
        &r,
        "[buckets.credit]\non_empty = \"allow\"",
    ))
    .await;
    let resp = app.chat(ask("gpt-4o", false)).await;
    assert_eq!(resp.status(), 200);
    assert!(header(&resp, "x-switchyard-warning").contains("Credit balance is 0.00 USD"));
    app.flush().await;
    assert_eq!(app.state().core.ledger.balance(Bucket::Credit), -75);
    assert_books_balance(&app);
}

#[tokio::test]
async fn spent_daily_budget_refuses_with_429_naming_the_budget() {
    let (o, r) = (MockUpstream::start().await, MockUpstream::start().await);
    let app = spawn_app(&priced_config(&o, &r, "")).await;
    app.topup(Bucket::Credit, TEN).await;
    let (_, key) = keys::create(
        &app.db(),
        &NewKey {
            name: "capped".into(),
            daily_budget: BTreeMap::from([(Bucket::Credit, 100)]),
            ..Default::default()
        },
    )
    .expect("key");
    assert_eq!(app.chat_as(&key, ask("gpt-4o", false)).await.status(), 200);
    assert_eq!(app.chat_as(&key, ask("gpt-4o", false)).await.status(), 200);
    // 150 micro spent ≥ the 100 micro budget.
    let resp = app.chat_as(&key, ask("gpt-4o", false)).await;
    assert_eq!(resp.status(), 429);
    let body: Value = resp.json().await.expect("json");
    assert_eq!(body["error"]["code"], "budget_exceeded");
    let msg = body["error"]["message"].as_str().expect("message");
    assert!(msg.contains("daily budget of key `capped`"), "{msg}");
    assert_eq!(o.hits(), 2);
    // Other keys are not held to it.
    assert_eq!(app.chat(ask("gpt-4o", false)).await.status(), 200);
}

#[tokio::test]
async fn every_outcome_leaves_exactly_one_receipt_with_status_and_attempt_chain() {
    let (o, r) = (MockUpstream::start().await, MockUpstream::start().await);
    let app = spawn_app(&priced_config(&o, &r, "[timeouts]\nidle_s = 1")).await;
    app.topup(Bucket::Credit, TEN).await;
    app.topup(Bucket::Wallet, TEN).await;

    // ok
    assert_eq!(app.chat(ask("gpt-4o", false)).await.status(), 200);
    // cross-bucket fallback: official fails three times, relay serves.
    o.push([status(503), status(503), status(503)]);
    assert_eq!(app.chat(ask("fallback", false)).await.status(), 200);
    // error: every attempt fails.
    r.push([status(500), status(500), status(500)]);
    assert_eq!(app.chat(ask("cheap", false)).await.status(), 502);
    // upstream cut after the first token.
    o.push([Reply::CutAfter(2)]);
    let s = read_stream(app.chat(ask("gpt-4o", true)).await).await;
    assert!(s.error().is_some());
    // client cancels mid-stream.
    o.push([Reply::StallAfter(1)]);
    let resp = app.chat(ask("gpt-4o", true)).await;
    let mut body = resp.bytes_stream();
    let _ = tokio::time::timeout(Duration::from_secs(5), body.next()).await;
    drop(body);
    app.records(5).await;
    app.flush().await;

    let mut by_status: BTreeMap<String, Vec<Receipt>> = BTreeMap::new();
    for r in all_receipts(&app) {
        by_status.entry(r.status.clone()).or_default().push(r);
    }
    let counts: BTreeMap<&str, usize> = by_status
        .iter()
        .map(|(k, v)| (k.as_str(), v.len()))
        .collect();
    assert_eq!(
        counts,
        BTreeMap::from([
            ("client_cancelled", 1),
            ("error", 1),
            ("ok", 2),
            ("upstream_cut", 1)
        ])
    );
    let fallback = by_status["ok"]
        .iter()
        .find(|r| r.route == "fallback")
        .expect("fallback receipt");
    assert!(fallback.cross_bucket_fallback);
    assert_eq!(fallback.bucket.as_deref(), Some("wallet"));
    assert_eq!((fallback.retry_count, fallback.fallback_count), (2, 1));
    assert_eq!(fallback.attempts.as_array().map(Vec::len), Some(4));
    assert!(
        fallback
            .walk
            .ends_with("paid from Wallet (cross-bucket fallback)"),
        "{}",
        fallback.walk
    );
    let error = &by_status["error"][0];
    assert_eq!(error.cost, 0);
    assert!(error.error.as_deref().is_some_and(|e| e.contains("500 ×3")));
    let cut = &by_status["upstream_cut"][0];
    assert!(
        cut.usage_estimated && cut.cost > 0,
        "a cut stream is charged for what was produced"
    );
    let cancelled = &by_status["client_cancelled"][0];
    assert!(cancelled.usage_estimated && cancelled.cost > 0);
    assert_books_balance(&app);
}

#[tokio::test]
async fn unpriced_target_is_flagged_never_a_silent_zero() {
    let mock = MockUpstream::start().await;
    let app = spawn_app(&one_target(&mock, "")).await;
    assert_eq!(app.chat(chat_body(false)).await.status(), 200);
    let rec = one_receipt(&app).await;
    assert!(rec.unpriced());
    assert_eq!(rec.price, None);
    let out = Command::new(env!("CARGO_BIN_EXE_switchyard"))
        .args([
            "--data-dir",
            app.dir.path().to_str().expect("utf8"),
            "receipts",
        ])
        .output()
        .expect("runs");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("unpriced"), "{text}");
}

#[tokio::test]
async fn spend_and_receipts_commands_explain_where_the_money_went() {
    let (o, r) = (MockUpstream::start().await, MockUpstream::start().await);
    let app = spawn_app(&priced_config(&o, &r, "")).await;
    app.topup(Bucket::Credit, TEN).await;
    app.topup(Bucket::Wallet, TEN).await;
    for model in ["gpt-4o", "gpt-4o", "cheap"] {
        assert_eq!(app.chat(ask(model, false)).await.status(), 200);
    }
    app.flush().await;
    let run = |args: &[&str]| {
        let out = Command::new(env!("CARGO_BIN_EXE_switchyard"))
            .arg("--data-dir")
            .arg(app.dir.path())
            .args(args)
            .output()
            .expect("runs");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).expect("utf8")
    };
    let text = run(&["spend", "--by", "model"]);
    assert!(
        text.contains("Balances: Credit 9.99985 USD · Wallet 9.99984 CNY"),
        "{text}"
    );
    assert!(
        text.contains("Total credit: 0.00015 USD over 2 request(s)"),
        "{text}"
    );
    assert!(
        text.contains("Total wallet: 0.00016 CNY over 1 request(s)"),
        "{text}"
    );
    let csv = run(&["spend", "--by", "bucket", "--csv"]);
    let lines: Vec<&str> = csv.lines().collect();
    assert_eq!(
        lines[0],
        "bucket,bucket,currency,requests,input_tokens,output_tokens,cost,fallbacks,errors,unpriced"
    );
    assert!(
        lines.contains(&"credit,credit,USD,2,24,10,0.00015,0,0,0"),
        "{csv}"
    );
    let by_day = run(&["spend", "--by", "day", "--since", "1d"]);
    let today = chrono::Local::now().format("%Y-%m-%d").to_string();
    assert!(by_day.contains(&today), "{by_day}");

    let list = run(&["receipts", "--limit", "2"]);
    assert!(
        list.contains("primary relay/gpt-4o → ok (200); paid from Wallet"),
        "{list}"
    );
    let json: Value =
        serde_json::from_str(&run(&["receipts", "--json", "--limit", "5"])).expect("json");
    let id = json[0]["id"].as_str().expect("id").to_string();
    let detail = run(&["receipts", "--id", &id]);
    assert!(
        detail.contains("Paid from") && detail.contains("Prices / 1M"),
        "{detail}"
    );
}

/// Reads the serve process's stderr until it prints its address.
/// Reads `serve`'s start-up lines: its address and its admin token.
fn wait_listening(child: &mut std::process::Child) -> (String, String) {
    let mut stderr = child.stderr.take().expect("stderr");
    let started = Instant::now();
    let mut text = String::new();
    let mut buf = [0u8; 4096];
    let ready = |t: &str| t.split("#token=").nth(1).is_some_and(|r| r.contains('\n'));
    while !ready(&text) && started.elapsed() < Duration::from_secs(30) {
        let n = stderr.read(&mut buf).expect("read");
        if n == 0 {
            break;
        }
        text.push_str(&String::from_utf8_lossy(&buf[..n]));
    }
    // Keep draining so the child never blocks on a full pipe.
    std::thread::spawn(move || {
        let mut sink = Vec::new();
        let _ = stderr.read_to_end(&mut sink);
    });
    let addr = text
        .split("listening on http://")
        .nth(1)
        .and_then(|r| r.split('/').next())
        .unwrap_or_else(|| panic!("no address in: {text}"))
        .to_string();
    let token = text
        .split("#token=")
        .nth(1)
        .and_then(|r| r.lines().next())
        .unwrap_or_else(|| panic!("no admin link in: {text}"))
        .trim()
        .to_string();
    (addr, token)
}

/// A `switchyard serve` process over a priced config (`official` primary,
/// `relay` backup) with 10 USD of Credit and a key, killed when dropped.
pub struct ServeProcess {
    pub dir: tempfile::TempDir,
    pub child: ChildGuard,
    pub addr: String,
    pub key: String,
    /// Made anew at each start (the tests keep no keyring).
    pub admin_token: String,
}

impl ServeProcess {
    fn start(official: &MockUpstream, relay: &MockUpstream) -> ServeProcess {
        Self::start_with(&priced_config(official, relay, ""))
    }

    /// A `serve` process over `config` (a listen address is added).
    pub fn start_with(config: &str) -> ServeProcess {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(
            dir.path().join("switchyard.toml"),
            format!("[server]\nlisten = \"127.0.0.1:0\"\n{config}"),
        )
        .expect("config");
        assert!(Self::command(dir.path())
            .args(["topup", "credit", "10"])
            .stdout(Stdio::null())
            .status()
            .expect("topup")
            .success());
        let out = Self::command(dir.path())
            .args(["key", "create", "ledger-test"])
            .output()
            .expect("key");
        let key = String::from_utf8(out.stdout)
            .expect("utf8")
            .lines()
            .last()
            .expect("key")
            .to_string();
        let (child, addr, admin_token) = Self::serve(dir.path());
        ServeProcess {
            dir,
            child,
            addr,
            key,
            admin_token,
        }
    }

    /// The binary, on this data dir and config.
    fn command(dir: &std::path::Path) -> Command {
        let mut c = Command::new(env!("CARGO_BIN_EXE_switchyard"));
        c.arg("--config")
            .arg(dir.join("switchyard.toml"))
            .arg("--data-dir")
            .arg(dir)
            // Never touch the developer's real keyring.
            .env(
                "DBUS_SESSION_BUS_ADDRESS",
                "unix:path=/nonexistent/switchyard-tests",
            );
        c
    }

    /// Starts `serve` on `dir`: the process, its address, its admin token.
    pub fn serve(dir: &std::path::Path) -> (ChildGuard, String, String) {
        let mut child = ChildGuard(
            Self::command(dir)
                .arg("serve")
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::piped())
                .spawn()
                .expect("serve"),
        );
        let (addr, token) = wait_listening(&mut child.0);
        (child, addr, token)
    }

    pub fn db_path(&self) -> std::path::PathBuf {
        self.dir.path().join("switchyard.db")
    }
}

// Multi-threaded: this test blocks on processes while the mock serves.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hard_kill_mid_request_leaves_an_interrupted_receipt_charged_by_estimate() {
    let (o, r) = (MockUpstream::start().await, MockUpstream::start().await);
    o.set_default(Reply::Silent);
    let mut served = ServeProcess::start(&o, &r);
    let (addr, key) = (served.addr.clone(), served.key.clone());

    // A request whose upstream never answers, held open by a raw socket.
    let body =
        json!({"model": "gpt-4o", "messages": [{"role": "user", "content": "x".repeat(400)}]})
            .to_string();
    let mut sock = std::net::TcpStream::connect(&addr).expect("connect");
    write!(
        sock,
        "POST /v1/chat/completions HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {key}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .expect("send");
    let db_path = served.db_path();
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let conn = switchyard::ledger::db::open(&db_path).expect("db");
        let pending: i64 = conn
            .query_row(
                "SELECT count(*) FROM receipts WHERE status = 'pending'",
                [],
                |r| r.get(0),
            )
            .expect("count");
        if pending == 1 && o.hits() == 1 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "pending receipt written before the upstream answers (pending {pending}, upstream hits {})",
            o.hits()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    served.child.0.kill().expect("kill -9");
    served.child.0.wait().expect("reaped");
    drop(sock);

    let (child, _, _) = ServeProcess::serve(served.dir.path());
    let conn = switchyard::ledger::db::open(&db_path).expect("db");
    let all = receipts::recent(&conn, 10).expect("receipts");
    drop(child);
    assert_eq!(all.len(), 1);
    let rec = &all[0];
    assert_eq!(rec.status, "interrupted");
    assert!(rec.usage_estimated);
    // 400 characters ≈ 100 prompt tokens at 2.50 USD/1M = 250 micro-USD.
    assert_eq!(rec.usage.input, 100);
    assert_eq!(rec.cost, 250);
    assert!(rec.walk.starts_with("interrupted"), "{}", rec.walk);
    let charged: i64 = conn
        .query_row(
            "SELECT -amount FROM ledger_entries WHERE receipt_id = ?1",
            [&rec.id],
            |r| r.get(0),
        )
        .expect("charged");
    assert_eq!(charged, 250);
    assert_eq!(balance_mismatches(&conn).expect("verify"), vec![]);
}

// Multi-threaded: this test blocks on processes while the mock serves.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stop_right_after_the_answers_commits_every_receipt_first() {
    let (o, r) = (MockUpstream::start().await, MockUpstream::start().await);
    let mut served = ServeProcess::start(&o, &r);
    let http = reqwest::Client::new();
    const REQUESTS: usize = 20;
    for _ in 0..REQUESTS {
        let resp = http
            .post(format!("http://{}/v1/chat/completions", served.addr))
            .bearer_auth(&served.key)
            .json(&ask("gpt-4o", false))
            .send()
            .await
            .expect("send");
        assert_eq!(resp.status(), 200);
    }
    // At once, inside the ledger writer's batch window.
    let status = served.child.terminate(Duration::from_secs(10)).await;
    assert!(status.success(), "clean exit: {status}");
    let conn = switchyard::ledger::db::open(&served.db_path()).expect("db");
    let all = receipts::recent(&conn, 100).expect("receipts");
    assert_eq!(all.len(), REQUESTS);
    assert!(
        all.iter().all(|r| r.status == "ok" && r.cost > 0),
        "{all:?}"
    );
    let charges: i64 = conn
        .query_row(
            "SELECT count(*) FROM ledger_entries WHERE kind = 'charge'",
            [],
            |r| r.get(0),
        )
        .expect("charges");
    assert_eq!(charges, REQUESTS as i64);
    assert_eq!(balance_mismatches(&conn).expect("verify"), vec![]);
}

#[tokio::test]
async fn prices_command_shows_every_target_and_flags_unpriced_ones() {
    let (o, r) = (MockUpstream::start().await, MockUpstream::start().await);
    let dir = tempfile::tempdir().expect("tempdir");
    let config = dir.path().join("switchyard.toml");
    let mut text = priced_config(&o, &r, "");
    text.push_str(
        "\n[[routes]]\nmodel = \"local\"\ntargets = [{ channel = \"relay\", model = \"llama-local\" }]\n",
    );
    std::fs::write(&config, text).expect("config");
    let out = Command::new(env!("CARGO_BIN_EXE_switchyard"))
        .arg("--config")
        .arg(&config)
        .arg("prices")
        .output()
        .expect("runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).expect("utf8");
    let line = |needle: &str| {
        text.lines()
            .find(|l| l.contains(needle))
            .unwrap_or_else(|| panic!("no line with {needle:?} in\n{text}"))
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ")
    };
    assert!(
        line("primary official/gpt-4o").contains("credit 2.50 1.25 10.00 USD catalog"),
        "{text}"
    );
    // 2.50 USD × 0.3 × 7.1 = 5.325 CNY.
    assert!(
        line("cheap").contains("wallet 5.325 2.6625 21.30 CNY catalog"),
        "{text}"
    );
    assert!(
        line("house").contains("3.00 3.00 12.00 CNY route override"),
        "{text}"
    );
    assert!(line("llama-local").contains("UNPRICED"), "{text}");
}

#[tokio::test]
async fn key_list_shows_spend_against_budgets() {
    let (o, r) = (MockUpstream::start().await, MockUpstream::start().await);
    let app = spawn_app(&priced_config(&o, &r, "")).await;
    app.topup(Bucket::Credit, TEN).await;
    let (_, key) = keys::create(
        &app.db(),
        &NewKey {
            name: "ide".into(),
            daily_budget: BTreeMap::from([(Bucket::Credit, 1_000_000)]),
            ..Default::default()
        },
    )
    .expect("key");
    assert_eq!(app.chat_as(&key, ask("gpt-4o", false)).await.status(), 200);
    app.flush().await;
    let out = Command::new(env!("CARGO_BIN_EXE_switchyard"))
        .arg("--data-dir")
        .arg(app.dir.path())
        .args(["key", "list"])
        .output()
        .expect("runs");
    let text = String::from_utf8(out.stdout).expect("utf8");
    let ide = text
        .lines()
        .find(|l| l.starts_with("ide "))
        .expect("ide listed");
    assert!(
        ide.contains("credit: today 0.000075 of 1.00 · month 0.000075 USD"),
        "{text}"
    );
}
