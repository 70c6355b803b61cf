//! The ledger service: receipts and money movements, written by one
//! dedicated thread so the request path never waits on disk.
//!
//! Invariants: every request the gateway accepted gets exactly one receipt
//! (a `pending` row first, replaced by its final row); a receipt's charge is
//! written in the same transaction as its final row and equals its cost;
//! each bucket's cached balance equals the sum of its entries. The in-memory
//! balance that admission checks read is the stored balance minus charges
//! queued but not yet committed, so it is exact at every moment.

use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use chrono::{Datelike, Local, NaiveDate, TimeZone};
use rusqlite::{params, Connection, OptionalExtension, Transaction};

use super::db::{self, DbError};
use super::money::format_amount;
use super::receipts::{self, Receipt};
use crate::config::{Bucket, BucketsConfig, OnEmpty};
use crate::keys::GatewayKey;
use crate::record::{Recorder, RequestRecord};

/// Most operations committed in one transaction.
const BATCH: usize = 512;
/// How often the writer looks for changes made by other processes
/// (`switchyard topup`).
const IDLE_CHECK: Duration = Duration::from_millis(500);
/// How long the writer gathers operations into one transaction. Receipts
/// reach the disk about this much later (plus a commit); the request never
/// waits for it. Longer windows save commits but make the writer's bursts
/// longer, and on a small machine a burst delays the requests that share
/// its CPU (with 20 ms windows, bursts were 1–2 ms of SQLite work under
/// load). It also bounds what a hard kill can lose.
const BATCH_WINDOW: Duration = Duration::from_millis(5);

/// What the request path hands the writer. Receipts are built on the
/// writer's thread, not the request's: a `pending` one only when its
/// request is still running when the batch commits.
enum Op {
    /// A request began: a copy of its record as it stood then.
    Pending(Box<RequestRecord>),
    /// A request finished.
    Final(Arc<RequestRecord>),
    Flush(mpsc::Sender<()>),
}

/// A row to write, as the writer turned an [`Op`] into it.
enum Write {
    Pending(Receipt),
    Final(Receipt),
}

impl Write {
    fn id(&self) -> &str {
        match self {
            Write::Pending(r) | Write::Final(r) => &r.id,
        }
    }
}

/// Why a bucket may not pay for a request now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// `on_empty = "block"` and nothing left.
    Empty {
        bucket: Bucket,
        balance: i64,
        currency: String,
    },
    /// The key's daily or monthly budget in this bucket is spent.
    Budget {
        key: String,
        period: &'static str,
        bucket: Bucket,
        limit: i64,
        spent: i64,
        currency: String,
    },
}

impl Refusal {
    pub fn message(&self) -> String {
        match self {
            Refusal::Empty {
                bucket,
                balance,
                currency,
            } => format!(
                "The {} balance is {}, so Switchyard refused the request before calling any \
                 provider. Top it up with `switchyard topup {bucket} AMOUNT`, or set \
                 `on_empty = \"allow\"` under [buckets.{bucket}] to let it go negative.",
                bucket.title(),
                format_amount(*balance, currency)
            ),
            Refusal::Budget {
                key,
                period,
                bucket,
                limit,
                spent,
                currency,
            } => format!(
                "The {period} budget of key `{key}` for {} is spent ({} of {}); it resets at the \
                 start of the next {}.",
                bucket.title(),
                format_amount(*spent, currency),
                format_amount(*limit, currency),
                if *period == "daily" { "day" } else { "month" }
            ),
        }
    }
}

#[derive(Debug, Clone, Copy, Default)]
struct PeriodSpend {
    day: Option<NaiveDate>,
    day_spent: i64,
    month: Option<(i32, u32)>,
    month_spent: i64,
}

#[derive(Default)]
struct Mem {
    stored: HashMap<Bucket, i64>,
    queued: HashMap<Bucket, i64>,
    spend: HashMap<(i64, Bucket), PeriodSpend>,
}

struct Shared {
    mem: Mutex<Mem>,
    buckets: BucketsConfig,
}

pub struct Ledger {
    tx: Mutex<Option<mpsc::Sender<Op>>>,
    shared: Arc<Shared>,
    writer: Mutex<Option<JoinHandle<()>>>,
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

fn local_date(ms: i64) -> NaiveDate {
    Local
        .timestamp_millis_opt(ms)
        .single()
        .map_or_else(|| Local::now().date_naive(), |t| t.date_naive())
}

/// Unix ms of local midnight starting `date`.
pub fn local_midnight_ms(date: NaiveDate) -> i64 {
    date.and_hms_opt(0, 0, 0)
        .and_then(|t| Local.from_local_datetime(&t).earliest())
        .map_or(0, |t| t.timestamp_millis())
}

impl Ledger {
    /// Opens the ledger: brings the schema up to date, turns receipts left
    /// `pending` by a previous run into `interrupted` ones (charged by
    /// estimate), and starts the writer.
    pub fn open(db_path: &Path, buckets: BucketsConfig) -> Result<Arc<Ledger>, DbError> {
        let mut conn = db::open(db_path)?;
        ensure_buckets(&conn, &buckets)?;
        let recovered = recover_interrupted(&mut conn)?;
        if recovered > 0 {
            tracing::warn!(
                receipts = recovered,
                "the previous run stopped with requests in flight; their receipts are now `interrupted`, charged by estimate"
            );
        }
        verify_balances(&conn)?;
        // Read before the balances, so a top-up committed in between is
        // seen as a change by the writer's first check.
        let data_version: i64 = conn.pragma_query_value(None, "data_version", |r| r.get(0))?;
        let mut mem = Mem {
            stored: read_balances(&conn)?,
            ..Default::default()
        };
        mem.spend = load_key_spend(&conn)?;
        let shared = Arc::new(Shared {
            mem: Mutex::new(mem),
            buckets,
        });
        let (tx, rx) = mpsc::channel();
        let writer_shared = Arc::clone(&shared);
        let writer = std::thread::Builder::new()
            .name("switchyard-ledger".into())
            .spawn(move || writer_loop(conn, rx, writer_shared, data_version))
            .map_err(|e| DbError::Sqlite(rusqlite::Error::ToSqlConversionFailure(Box::new(e))))?;
        Ok(Arc::new(Ledger {
            tx: Mutex::new(Some(tx)),
            shared,
            writer: Mutex::new(Some(writer)),
        }))
    }

    fn send(&self, op: Op) {
        let tx = self.tx.lock().unwrap_or_else(|p| p.into_inner());
        match tx.as_ref() {
            Some(tx) if tx.send(op).is_ok() => {}
            _ => tracing::error!("ledger writer is not running; a receipt could not be queued"),
        }
    }

    /// The balance of `bucket` including charges not yet on disk.
    pub fn balance(&self, bucket: Bucket) -> i64 {
        let mem = self.shared.mem.lock().unwrap_or_else(|p| p.into_inner());
        mem.stored.get(&bucket).copied().unwrap_or(0)
            - mem.queued.get(&bucket).copied().unwrap_or(0)
    }

    pub fn currency(&self, bucket: Bucket) -> &str {
        self.shared.buckets.currency(bucket)
    }

    /// May `bucket` pay for a request of `key` now? `Ok(Some(w))`: yes, with
    /// a warning for the client (the balance is negative and allowed to be).
    /// An unpriced target (a local model, an unknown one) is not held to the
    /// balance, since what it costs is unknown; budgets apply to every target.
    pub fn check(
        &self,
        key: &GatewayKey,
        bucket: Bucket,
        priced: bool,
    ) -> Result<Option<String>, Refusal> {
        let currency = self.currency(bucket).to_string();
        let balance = self.balance(bucket);
        let mut warning = None;
        if priced && balance <= 0 {
            match self.shared.buckets.get(bucket).on_empty {
                OnEmpty::Block => {
                    return Err(Refusal::Empty {
                        bucket,
                        balance,
                        currency,
                    })
                }
                OnEmpty::Allow => {
                    warning = Some(format!(
                        "{} balance is {} (on_empty = allow)",
                        bucket.title(),
                        format_amount(balance, &currency)
                    ));
                }
            }
        }
        let mem = self.shared.mem.lock().unwrap_or_else(|p| p.into_inner());
        let spent = mem
            .spend
            .get(&(key.id, bucket))
            .copied()
            .unwrap_or_default();
        let today = Local::now().date_naive();
        let this_month = (today.year(), today.month());
        let checks = [
            (
                "daily",
                key.daily_budget.get(&bucket),
                if spent.day == Some(today) {
                    spent.day_spent
                } else {
                    0
                },
            ),
            (
                "monthly",
                key.monthly_budget.get(&bucket),
                if spent.month == Some(this_month) {
                    spent.month_spent
                } else {
                    0
                },
            ),
        ];
        for (period, limit, spent) in checks {
            if let Some(&limit) = limit {
                if spent >= limit {
                    return Err(Refusal::Budget {
                        key: key.name.clone(),
                        period,
                        bucket,
                        limit,
                        spent,
                        currency,
                    });
                }
            }
        }
        Ok(warning)
    }

    /// What `key` has spent today and this month, per bucket.
    pub fn key_spend(&self, key_id: i64, bucket: Bucket) -> (i64, i64) {
        let mem = self.shared.mem.lock().unwrap_or_else(|p| p.into_inner());
        let s = mem
            .spend
            .get(&(key_id, bucket))
            .copied()
            .unwrap_or_default();
        let today = Local::now().date_naive();
        (
            if s.day == Some(today) { s.day_spent } else { 0 },
            if s.month == Some((today.year(), today.month())) {
                s.month_spent
            } else {
                0
            },
        )
    }

    /// What gateway keys have spent from `bucket` today (local time),
    /// including charges not yet on disk; micro-units of its currency.
    pub fn today_spend(&self, bucket: Bucket) -> i64 {
        let mem = self.shared.mem.lock().unwrap_or_else(|p| p.into_inner());
        let today = Local::now().date_naive();
        mem.spend
            .iter()
            .filter(|((_, b), s)| *b == bucket && s.day == Some(today))
            .map(|(_, s)| s.day_spent)
            .sum()
    }

    /// Blocks until everything queued so far is committed. (If the writer
    /// has died, the acknowledgement's sender is gone and this returns.)
    pub fn flush(&self) {
        let (ack, done) = mpsc::channel();
        self.send(Op::Flush(ack));
        let _ = done.recv();
    }

    /// Commits what is queued and stops the writer.
    pub fn close(&self) {
        self.tx.lock().unwrap_or_else(|p| p.into_inner()).take();
        if let Some(w) = self.writer.lock().unwrap_or_else(|p| p.into_inner()).take() {
            let _ = w.join();
        }
    }
}

impl Drop for Ledger {
    fn drop(&mut self) {
        self.close();
    }
}

impl Recorder for Ledger {
    fn begin(&self, record: &RequestRecord) {
        self.send(Op::Pending(Box::new(record.clone())));
    }

    fn record(&self, record: &Arc<RequestRecord>) {
        // Only what admission checks read is settled here; the receipt
        // itself is built by the writer.
        if let Some((bucket, cost)) = Receipt::charge_of(record).filter(|&(_, c)| c != 0) {
            let mut mem = self.shared.mem.lock().unwrap_or_else(|p| p.into_inner());
            *mem.queued.entry(bucket).or_default() += cost;
            if let Some(key_id) = record.key_id {
                let started_ms = receipts::unix_ms(record.started_at);
                add_spend(&mut mem.spend, key_id, bucket, started_ms, cost);
            }
        }
        self.send(Op::Final(Arc::clone(record)));
    }
}

fn add_spend(
    spend: &mut HashMap<(i64, Bucket), PeriodSpend>,
    key_id: i64,
    bucket: Bucket,
    at_ms: i64,
    cost: i64,
) {
    let date = local_date(at_ms);
    let month = (date.year(), date.month());
    let s = spend.entry((key_id, bucket)).or_default();
    if s.day != Some(date) {
        s.day = Some(date);
        s.day_spent = 0;
    }
    s.day_spent += cost;
    if s.month != Some(month) {
        s.month = Some(month);
        s.month_spent = 0;
    }
    s.month_spent += cost;
}

fn writer_loop(
    mut conn: Connection,
    rx: mpsc::Receiver<Op>,
    shared: Arc<Shared>,
    mut data_version: i64,
) {
    let mut last_check = Instant::now();
    // Someone else (a `topup`) may have written: their commits change the
    // data version this connection sees; its own commits do not.
    let mut check_others = |conn: &Connection, last_check: &mut Instant| {
        *last_check = Instant::now();
        let v: i64 = conn
            .pragma_query_value(None, "data_version", |r| r.get(0))
            .unwrap_or(data_version);
        if v != data_version {
            data_version = v;
            refresh_balances(conn, &shared);
        }
    };
    loop {
        let first = match rx.recv_timeout(IDLE_CHECK) {
            Ok(op) => op,
            Err(RecvTimeoutError::Timeout) => {
                check_others(&conn, &mut last_check);
                continue;
            }
            Err(RecvTimeoutError::Disconnected) => break,
        };
        // Gather what arrives within a short window into one transaction:
        // far fewer commits under load, and a request that finishes within
        // the window needs no `pending` row at all. Sleeping through the
        // window (rather than waking for each message) keeps the writer off
        // the CPU the requests need.
        if !matches!(first, Op::Flush(_)) {
            std::thread::sleep(BATCH_WINDOW);
        }
        let mut batch = vec![first];
        while batch.len() < BATCH {
            match rx.try_recv() {
                Ok(op) => batch.push(op),
                Err(_) => break,
            }
        }
        // A flush also picks up others' writes at once, so a top-up made
        // through the management API shows in the balance it answers with.
        if last_check.elapsed() >= IDLE_CHECK || batch.iter().any(|op| matches!(op, Op::Flush(_))) {
            check_others(&conn, &mut last_check);
        }
        commit_batch(&mut conn, &writes(&batch), &shared);
        for op in batch {
            if let Op::Flush(ack) = op {
                let _ = ack.send(());
            }
        }
    }
}

/// The rows a batch writes. A request that started and finished within
/// one batch needs no `pending` row: both would land in the same
/// transaction anyway.
fn writes(batch: &[Op]) -> Vec<Write> {
    let finished: HashSet<&str> = batch
        .iter()
        .filter_map(|op| match op {
            Op::Final(r) => Some(r.request_id.as_str()),
            _ => None,
        })
        .collect();
    batch
        .iter()
        .filter_map(|op| match op {
            Op::Pending(r) if finished.contains(r.request_id.as_str()) => None,
            Op::Pending(r) => Some(Write::Pending(Receipt::pending(r))),
            Op::Final(r) => Some(Write::Final(Receipt::from_record(r))),
            Op::Flush(_) => None,
        })
        .collect()
}

/// Commits a batch in one transaction. A failing batch (disk full, a busy
/// database) is retried; if it keeps failing, its rows are committed one
/// by one so that one bad row cannot cost the others.
fn commit_batch(conn: &mut Connection, writes: &[Write], shared: &Shared) {
    let mut delay = Duration::from_millis(50);
    for attempt in 1..=5 {
        match try_commit(conn, writes) {
            Ok(charged) => {
                settle(shared, &charged);
                return;
            }
            Err(e) => {
                tracing::error!(attempt, error = %e, "ledger write failed; retrying");
                std::thread::sleep(delay);
                delay *= 2;
            }
        }
    }
    for w in writes {
        match try_commit(conn, std::slice::from_ref(w)) {
            Ok(charged) => settle(shared, &charged),
            Err(e) => {
                tracing::error!(receipt = w.id(), error = %e, "could not write a receipt to the ledger");
            }
        }
    }
}

/// Charges committed, per bucket.
type Charged = Vec<(Bucket, i64)>;

fn try_commit(conn: &mut Connection, writes: &[Write]) -> rusqlite::Result<Charged> {
    let tx = conn.transaction()?;
    let mut charged = Vec::new();
    for w in writes {
        match w {
            Write::Pending(r) => receipts::upsert(&tx, r)?,
            Write::Final(r) => {
                if let Some(c) = finalize(&tx, r)? {
                    charged.push(c);
                }
            }
        }
    }
    tx.commit()?;
    Ok(charged)
}

/// After a commit: the committed charges move from "queued" to "stored".
fn settle(shared: &Shared, charged: &Charged) {
    let mut mem = shared.mem.lock().unwrap_or_else(|p| p.into_inner());
    for (bucket, cost) in charged {
        *mem.queued.entry(*bucket).or_default() -= cost;
        *mem.stored.entry(*bucket).or_default() -= cost;
    }
}

fn refresh_balances(conn: &Connection, shared: &Shared) {
    if let Ok(stored) = read_balances(conn) {
        shared.mem.lock().unwrap_or_else(|p| p.into_inner()).stored = stored;
    }
}

/// Writes a final receipt, its charge and its rollup; returns the charge.
fn finalize(tx: &Transaction<'_>, r: &Receipt) -> rusqlite::Result<Option<(Bucket, i64)>> {
    receipts::upsert(tx, r)?;
    // A refused request was never routed: it is on the receipts, not in
    // the spend reports.
    if r.status != "refused" {
        rollup(tx, r)?;
    }
    let bucket = r.bucket.as_deref().and_then(|b| b.parse::<Bucket>().ok());
    match (bucket, r.cost) {
        (Some(bucket), cost) if cost != 0 => {
            let currency = r.currency.as_deref().unwrap_or("");
            append_entry(tx, bucket, "charge", -cost, currency, Some(&r.id), None)?;
            Ok(Some((bucket, cost)))
        }
        _ => Ok(None),
    }
}

/// Appends a money movement and updates the cached balance; returns the
/// balance after it.
pub(crate) fn append_entry(
    tx: &Connection,
    bucket: Bucket,
    kind: &str,
    amount: i64,
    currency: &str,
    receipt_id: Option<&str>,
    note: Option<&str>,
) -> rusqlite::Result<i64> {
    let (balance, entries, stored_currency): (i64, i64, String) = tx
        .query_row(
            "SELECT balance, entries, currency FROM balances WHERE bucket = ?1",
            [bucket.as_str()],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )
        .optional()?
        .unwrap_or((0, 0, currency.to_string()));
    if !currency.is_empty() && stored_currency != currency {
        tracing::warn!(
            %bucket, ledger = %stored_currency, entry = %currency,
            "an entry's currency differs from the bucket's ledger currency (was the bucket's currency changed?)"
        );
    }
    let after = balance + amount;
    tx.prepare_cached(
        "INSERT INTO ledger_entries (at, bucket, kind, amount, balance_after, currency, receipt_id, note)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
    )?
    .execute(params![
        now_ms(),
        bucket.as_str(),
        kind,
        amount,
        after,
        if currency.is_empty() { stored_currency.as_str() } else { currency },
        receipt_id,
        note
    ])?;
    tx.prepare_cached(
        "INSERT INTO balances (bucket, balance, currency, entries) VALUES (?1, ?2, ?3, ?4)
         ON CONFLICT (bucket) DO UPDATE SET balance = excluded.balance, entries = excluded.entries",
    )?
    .execute(params![
        bucket.as_str(),
        after,
        stored_currency,
        entries + 1
    ])?;
    Ok(after)
}

fn rollup(tx: &Transaction<'_>, r: &Receipt) -> rusqlite::Result<()> {
    let hour = r.started_at.div_euclid(3_600_000);
    tx.prepare_cached(
        "INSERT INTO spend_hourly (hour, requested_model, channel, brand, key_name, project, bucket,
            source, currency, requests, errors, fallbacks, unpriced, input_tokens, output_tokens, cost)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, 1, ?10, ?11, ?12, ?13, ?14, ?15)
         ON CONFLICT (hour, requested_model, channel, brand, key_name, project, bucket, source, currency)
         DO UPDATE SET requests = requests + 1, errors = errors + excluded.errors,
            fallbacks = fallbacks + excluded.fallbacks, unpriced = unpriced + excluded.unpriced,
            input_tokens = input_tokens + excluded.input_tokens,
            output_tokens = output_tokens + excluded.output_tokens, cost = cost + excluded.cost",
    )?
    .execute(params![
        hour,
        r.requested_model,
        r.channel.as_deref().unwrap_or(""),
        r.brand.as_deref().unwrap_or(""),
        r.key_name.as_deref().unwrap_or(""),
        r.project.as_deref().unwrap_or(""),
        r.bucket.as_deref().unwrap_or(""),
        r.source,
        r.currency.as_deref().unwrap_or(""),
        r.is_error() as i64,
        (r.fallback_count > 0) as i64,
        r.unpriced() as i64,
        (r.usage.input + r.usage.cached_input + r.usage.cache_write) as i64,
        (r.usage.output + r.usage.reasoning) as i64,
        r.cost,
    ])?;
    Ok(())
}

fn ensure_buckets(conn: &Connection, buckets: &BucketsConfig) -> rusqlite::Result<()> {
    for b in Bucket::ALL {
        conn.execute(
            "INSERT OR IGNORE INTO balances (bucket, balance, currency, entries) VALUES (?1, 0, ?2, 0)",
            params![b.as_str(), buckets.currency(b)],
        )?;
    }
    Ok(())
}

fn read_balances(conn: &Connection) -> rusqlite::Result<HashMap<Bucket, i64>> {
    let mut stmt = conn.prepare_cached("SELECT bucket, balance FROM balances")?;
    let rows = stmt.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?)))?;
    let mut out = HashMap::new();
    for row in rows {
        let (b, v) = row?;
        if let Ok(b) = b.parse() {
            out.insert(b, v);
        }
    }
    Ok(out)
}

/// A bucket whose cached balance disagrees with its entries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mismatch {
    pub bucket: String,
    pub cached: i64,
    pub from_entries: i64,
}

/// Recomputes every balance from its entries and compares.
pub fn balance_mismatches(conn: &Connection) -> rusqlite::Result<Vec<Mismatch>> {
    let mut stmt = conn.prepare(
        "SELECT b.bucket, b.balance, COALESCE((SELECT SUM(amount) FROM ledger_entries e WHERE e.bucket = b.bucket), 0)
         FROM balances b",
    )?;
    let rows = stmt.query_map([], |r| {
        Ok(Mismatch {
            bucket: r.get(0)?,
            cached: r.get(1)?,
            from_entries: r.get(2)?,
        })
    })?;
    let mut out = Vec::new();
    for m in rows {
        let m = m?;
        if m.cached != m.from_entries {
            out.push(m);
        }
    }
    Ok(out)
}

/// At start: a cached balance that disagrees with the entries is rebuilt
/// from them (the entries are the truth), loudly.
fn verify_balances(conn: &Connection) -> rusqlite::Result<()> {
    for m in balance_mismatches(conn)? {
        tracing::error!(
            bucket = %m.bucket, cached = m.cached, entries = m.from_entries,
            "cached balance disagreed with the ledger entries; rebuilt from the entries"
        );
        conn.execute(
            "UPDATE balances SET balance = ?1 WHERE bucket = ?2",
            params![m.from_entries, m.bucket],
        )?;
    }
    Ok(())
}

fn load_key_spend(conn: &Connection) -> rusqlite::Result<HashMap<(i64, Bucket), PeriodSpend>> {
    let today = Local::now().date_naive();
    let month_start = NaiveDate::from_ymd_opt(today.year(), today.month(), 1).unwrap_or(today);
    let mut stmt = conn.prepare(
        "SELECT key_id, bucket, started_at, cost FROM receipts
         WHERE started_at >= ?1 AND key_id IS NOT NULL AND bucket IS NOT NULL AND cost != 0",
    )?;
    let rows = stmt.query_map([local_midnight_ms(month_start)], |r| {
        Ok((
            r.get::<_, i64>(0)?,
            r.get::<_, String>(1)?,
            r.get::<_, i64>(2)?,
            r.get::<_, i64>(3)?,
        ))
    })?;
    let mut spend = HashMap::new();
    for row in rows {
        let (key_id, bucket, at, cost) = row?;
        if let Ok(bucket) = bucket.parse() {
            add_spend(&mut spend, key_id, bucket, at, cost);
        }
    }
    Ok(spend)
}

/// Turns `pending` receipts of a run that died into `interrupted` ones,
/// charged by their estimate. Returns how many.
fn recover_interrupted(conn: &mut Connection) -> rusqlite::Result<usize> {
    let pending = receipts::pending(conn)?;
    if pending.is_empty() {
        return Ok(0);
    }
    let tx = conn.transaction()?;
    for mut r in pending.iter().cloned() {
        r.status = "interrupted".into();
        r.usage_estimated = true;
        r.cost = r.price.map_or(0, |p| p.cost(&r.usage));
        r.walk = format!(
            "interrupted: the gateway stopped before this request finished; charged by estimate{}",
            r.bucket
                .as_deref()
                .and_then(|b| b.parse::<Bucket>().ok())
                .map(|b| format!(" to {}", b.title()))
                .unwrap_or_default()
        );
        r.error = Some("the gateway stopped before this request finished".into());
        finalize(&tx, &r)?;
    }
    tx.commit()?;
    Ok(pending.len())
}

/// Records a top-up (from the CLI or the management API) in one
/// transaction; returns the new balance.
pub fn topup(
    conn: &mut Connection,
    buckets: &BucketsConfig,
    bucket: Bucket,
    amount: i64,
    note: Option<&str>,
) -> rusqlite::Result<i64> {
    let tx = conn.transaction()?;
    ensure_buckets(&tx, buckets)?;
    let after = append_entry(
        &tx,
        bucket,
        "topup",
        amount,
        buckets.currency(bucket),
        None,
        note,
    )?;
    tx.commit()?;
    Ok(after)
}

/// One money movement of a bucket, as stored (append-only).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Entry {
    pub id: i64,
    /// Unix milliseconds.
    pub at: i64,
    pub bucket: String,
    /// `topup`, `charge`, `refund` or `adjustment`.
    pub kind: String,
    /// Micro-units of `currency`; charges are negative.
    pub amount: i64,
    pub balance_after: i64,
    pub currency: String,
    pub receipt_id: Option<String>,
    pub note: Option<String>,
}

/// The entries of `bucket`, newest first, older than entry `before` when
/// given, at most `limit` (on the `(bucket, id)` index).
pub fn entries(
    conn: &Connection,
    bucket: Bucket,
    before: Option<i64>,
    limit: usize,
) -> rusqlite::Result<Vec<Entry>> {
    let mut stmt = conn.prepare_cached(
        "SELECT id, at, bucket, kind, amount, balance_after, currency, receipt_id, note
         FROM ledger_entries WHERE bucket = ?1 AND id < ?2 ORDER BY id DESC LIMIT ?3",
    )?;
    let rows = stmt.query_map(
        params![bucket.as_str(), before.unwrap_or(i64::MAX), limit as i64],
        |r| {
            Ok(Entry {
                id: r.get(0)?,
                at: r.get(1)?,
                bucket: r.get(2)?,
                kind: r.get(3)?,
                amount: r.get(4)?,
                balance_after: r.get(5)?,
                currency: r.get(6)?,
                receipt_id: r.get(7)?,
                note: r.get(8)?,
            })
        },
    )?;
    rows.collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ledger::pricing::{AppliedPrice, PriceSource, UnitPrices};
    use crate::ledger::spend::{spend, Dim};
    use crate::record::Usage;
    use crate::record::{RequestStatus, ServedBy};

    fn record(
        id: usize,
        started_ms: i64,
        model: &str,
        bucket: Bucket,
        tokens: u64,
    ) -> RequestRecord {
        let mut r = RequestRecord::new(format!("req_{id}"), model.into(), false);
        r.started_at = UNIX_EPOCH + Duration::from_millis(started_ms as u64);
        r.key_id = Some(1);
        r.key = Some("k".into());
        r.served_by = Some(ServedBy {
            channel: "c".into(),
            brand: "B".into(),
            upstream_model: model.into(),
            bucket,
            target_index: 0,
            cross_bucket: false,
            price: Some(AppliedPrice {
                unit: UnitPrices {
                    input: 1_000_000,
                    output: 2_000_000,
                    ..Default::default()
                },
                currency: if bucket == Bucket::Credit {
                    "USD"
                } else {
                    "CNY"
                }
                .into(),
                source: PriceSource::Catalog,
            }),
        });
        r.usage = Some(Usage {
            input: tokens,
            output: tokens / 2,
            ..Default::default()
        });
        r.status = if id.is_multiple_of(7) {
            RequestStatus::UpstreamCut
        } else {
            RequestStatus::Ok
        };
        r
    }

    #[test]
    fn spend_over_any_range_equals_a_direct_sum_over_receipts() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("s.db");
        let ledger = Ledger::open(&path, BucketsConfig::default()).expect("ledger");
        let base = 1_700_000_000_000i64;
        for i in 0..400usize {
            // Spread over ~5 days at uneven offsets.
            let at = base + (i as i64) * 1_097_131;
            let bucket = if i % 3 == 0 {
                Bucket::Wallet
            } else {
                Bucket::Credit
            };
            let model = ["a", "b", "c"][i % 3];
            let rec = record(i, at, model, bucket, 100 + i as u64);
            ledger.begin(&rec);
            ledger.record(&Arc::new(rec));
        }
        ledger.flush();
        let conn = db::open(&path).expect("db");
        let ranges = [
            (base, base + 5 * 86_400_000),
            (base + 1_234_567, base + 98_765_432),
            (base + 3_600_000, base + 7_200_000),
            (base + 10, base + 20),
            (base + 40_000_000, base + 41_000_000),
        ];
        for (from, to) in ranges {
            for dim in [Dim::Model, Dim::Bucket, Dim::Day] {
                let rows = spend(&conn, from, to, dim).expect("spend");
                let (cost, requests, errors): (i64, i64, i64) = conn
                    .query_row(
                        "SELECT COALESCE(SUM(cost), 0), COUNT(*), COALESCE(SUM(status = 'upstream_cut'), 0)
                         FROM receipts WHERE started_at >= ?1 AND started_at < ?2",
                        [from, to],
                        |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
                    )
                    .expect("direct");
                assert_eq!(
                    rows.iter().map(|r| r.cost).sum::<i64>(),
                    cost,
                    "{from}..{to} {dim:?}"
                );
                assert_eq!(rows.iter().map(|r| r.requests).sum::<i64>(), requests);
                assert_eq!(rows.iter().map(|r| r.errors).sum::<i64>(), errors);
            }
        }
        assert_eq!(balance_mismatches(&conn).expect("verify"), vec![]);
        // Charges went to both buckets, never blended.
        assert!(ledger.balance(Bucket::Credit) < 0 && ledger.balance(Bucket::Wallet) < 0);
    }

    #[test]
    fn balance_includes_queued_charges_and_topups_from_other_processes() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("b.db");
        let ledger = Ledger::open(&path, BucketsConfig::default()).expect("ledger");
        let mut other = db::open(&path).expect("db");
        topup(
            &mut other,
            &BucketsConfig::default(),
            Bucket::Credit,
            5_000_000,
            Some("test"),
        )
        .expect("topup");
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        while ledger.balance(Bucket::Credit) != 5_000_000 {
            assert!(std::time::Instant::now() < deadline, "top-up seen");
            std::thread::sleep(Duration::from_millis(20));
        }
        let rec = record(1, 1_700_000_000_000, "a", Bucket::Credit, 1000);
        ledger.record(&Arc::new(rec));
        // 1000 × 1 + 500 × 2 = 2000 micro, visible before and after commit.
        assert_eq!(ledger.balance(Bucket::Credit), 5_000_000 - 2000);
        ledger.flush();
        assert_eq!(ledger.balance(Bucket::Credit), 5_000_000 - 2000);
        let after: i64 = other
            .query_row(
                "SELECT balance_after FROM ledger_entries ORDER BY id DESC LIMIT 1",
                [],
                |r| r.get(0),
            )
            .expect("entry");
        assert_eq!(after, 5_000_000 - 2000);
    }
}
