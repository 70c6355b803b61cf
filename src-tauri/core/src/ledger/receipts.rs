//! Receipts: one row per request the gateway accepted — who asked, what was
//! routed where, every attempt, tokens, applied prices, cost, bucket,
//! latency and outcome. Never prompt or answer text, never a secret.

use std::time::UNIX_EPOCH;

use rusqlite::{params, Connection, OptionalExtension, Row};
use serde::Serialize;

use super::pricing::UnitPrices;
use crate::config::Bucket;
use crate::record::{AppliedPrice, PriceSource, RequestRecord, Usage};

/// A receipt as stored.
#[derive(Debug, Clone, Serialize, PartialEq, utoipa::ToSchema)]
pub struct Receipt {
    pub id: String,
    /// Unix milliseconds.
    pub started_at: i64,
    pub ended_at: Option<i64>,
    pub key_id: Option<i64>,
    pub key_name: Option<String>,
    pub project: Option<String>,
    /// `api`, `chat`, `research` or `eval`.
    pub source: String,
    /// The conversation or run the request belongs to.
    pub run_id: Option<String>,
    /// What it was for within the run (`answer`, `title`, …).
    pub step: Option<String>,
    pub requested_model: String,
    pub route: String,
    pub channel: Option<String>,
    pub brand: Option<String>,
    pub upstream_model: Option<String>,
    pub bucket: Option<String>,
    pub cross_bucket_fallback: bool,
    /// The attempt chain as JSON.
    #[schema(value_type = Vec<Object>)]
    pub attempts: serde_json::Value,
    /// The route walked, in plain words.
    pub walk: String,
    pub retry_count: i64,
    pub fallback_count: i64,
    pub stream: bool,
    pub usage: Usage,
    pub usage_estimated: bool,
    /// Applied unit prices (micro-units per 1M tokens); `None`: unpriced.
    pub price: Option<UnitPrices>,
    pub price_source: Option<String>,
    pub currency: Option<String>,
    /// Micro-units of `currency`.
    pub cost: i64,
    pub ttft_ms: Option<i64>,
    pub latency_ms: Option<i64>,
    pub status: String,
    pub error: Option<String>,
}

/// Unix milliseconds, as receipts store time.
pub(crate) fn unix_ms(t: std::time::SystemTime) -> i64 {
    t.duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

impl Receipt {
    /// The `pending` row written before the first upstream call: charged,
    /// should the process die, by estimate at the primary target's price.
    pub fn pending(rec: &RequestRecord) -> Receipt {
        let usage = Usage::estimate(rec.prompt_chars, 0);
        let mut r = Receipt::from_record(rec);
        r.status = "pending".into();
        r.ended_at = None;
        r.latency_ms = None;
        r.usage = usage;
        r.usage_estimated = true;
        if let Some(p) = &rec.provisional {
            r.channel = Some(p.channel.clone());
            r.brand = Some(p.brand.clone());
            r.upstream_model = Some(p.upstream_model.clone());
            r.bucket = Some(p.bucket.as_str().into());
            r.price = p.price.as_ref().map(|a| a.unit);
            r.price_source = p.price.as_ref().map(source_name);
            r.currency = p.price.as_ref().map(|a| a.currency.clone());
        }
        r.cost = 0;
        r.walk = "in progress".into();
        r
    }

    /// What a finished request is charged, and to which bucket: `None` when
    /// no target served it or the target is unpriced.
    pub fn charge_of(rec: &RequestRecord) -> Option<(Bucket, i64)> {
        let served = rec.served_by.as_ref()?;
        let price = served.price.as_ref()?;
        Some((
            served.bucket,
            price.unit.cost(&rec.usage.unwrap_or_default()),
        ))
    }

    /// The final row of a finished request, with its exact cost.
    pub fn from_record(rec: &RequestRecord) -> Receipt {
        let served = rec.served_by.as_ref();
        let price = served.and_then(|s| s.price.as_ref());
        let usage = rec.usage.unwrap_or_default();
        let cost = Receipt::charge_of(rec).map_or(0, |(_, cost)| cost);
        Receipt {
            id: rec.request_id.clone(),
            started_at: unix_ms(rec.started_at),
            ended_at: Some(unix_ms(rec.started_at) + rec.latency.as_millis() as i64),
            key_id: rec.key_id,
            key_name: rec.key.clone(),
            project: rec.project.clone(),
            source: rec.source.as_str().to_string(),
            run_id: rec.run_id.clone(),
            step: rec.step.clone(),
            requested_model: rec.requested_model.clone(),
            route: rec.route.clone(),
            channel: served.map(|s| s.channel.clone()),
            brand: served.map(|s| s.brand.clone()),
            upstream_model: rec
                .answered_model
                .clone()
                .or_else(|| served.map(|s| s.upstream_model.clone())),
            bucket: served.map(|s| s.bucket.as_str().to_string()),
            cross_bucket_fallback: served.is_some_and(|s| s.cross_bucket),
            attempts: serde_json::to_value(&rec.attempts).unwrap_or_default(),
            walk: rec.route_walk(),
            retry_count: rec.retries() as i64,
            fallback_count: rec.fallbacks() as i64,
            stream: rec.stream,
            usage,
            usage_estimated: rec.usage_estimated,
            price: price.map(|p| p.unit),
            price_source: price.map(source_name),
            currency: price.map(|p| p.currency.clone()),
            cost,
            ttft_ms: rec.ttft.map(|d| d.as_millis() as i64),
            latency_ms: Some(rec.latency.as_millis() as i64),
            status: rec.status.as_str().to_string(),
            error: rec.error.clone(),
        }
    }

    /// Served by a target with no known price: cost is not zero but unknown.
    pub fn unpriced(&self) -> bool {
        self.channel.is_some() && self.price.is_none()
    }

    /// Counts as a failure in error rates.
    pub fn is_error(&self) -> bool {
        matches!(
            self.status.as_str(),
            "error" | "upstream_cut" | "interrupted"
        )
    }
}

fn source_name(a: &AppliedPrice) -> String {
    match a.source {
        PriceSource::Catalog => "catalog".into(),
        PriceSource::Override => "override".into(),
    }
}

macro_rules! receipt_columns {
    () => {
        "id, started_at, ended_at, key_id, key_name, project, source, run_id,
    requested_model, route, channel, brand, upstream_model, bucket, cross_bucket_fallback,
    attempts, walk, retry_count, fallback_count, stream, input_tokens, cached_input_tokens,
    cache_write_tokens, output_tokens, reasoning_tokens, usage_estimated, price_input,
    price_cached_input, price_cache_write, price_output, price_reasoning, price_source,
    currency, cost, ttft_ms, latency_ms, status, error, step"
    };
}

const COLUMNS: &str = receipt_columns!();

const UPSERT: &str = concat!(
    "INSERT OR REPLACE INTO receipts (",
    receipt_columns!(),
    ") VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18,
     ?19, ?20, ?21, ?22, ?23, ?24, ?25, ?26, ?27, ?28, ?29, ?30, ?31, ?32, ?33, ?34, ?35, ?36,
     ?37, ?38, ?39)"
);

/// Inserts the receipt, or replaces its `pending` row.
pub(crate) fn upsert(conn: &Connection, r: &Receipt) -> rusqlite::Result<()> {
    let p = r.price;
    conn.prepare_cached(UPSERT)?.execute(params![
        r.id,
        r.started_at,
        r.ended_at,
        r.key_id,
        r.key_name,
        r.project,
        r.source,
        r.run_id,
        r.requested_model,
        r.route,
        r.channel,
        r.brand,
        r.upstream_model,
        r.bucket,
        r.cross_bucket_fallback,
        r.attempts.to_string(),
        r.walk,
        r.retry_count,
        r.fallback_count,
        r.stream,
        r.usage.input as i64,
        r.usage.cached_input as i64,
        r.usage.cache_write as i64,
        r.usage.output as i64,
        r.usage.reasoning as i64,
        r.usage_estimated,
        p.map(|p| p.input),
        p.map(|p| p.cached_input),
        p.map(|p| p.cache_write),
        p.map(|p| p.output),
        p.map(|p| p.reasoning),
        r.price_source,
        r.currency,
        r.cost,
        r.ttft_ms,
        r.latency_ms,
        r.status,
        r.error,
        r.step,
    ])?;
    Ok(())
}

fn from_row(row: &Row<'_>) -> rusqlite::Result<Receipt> {
    let attempts: String = row.get(15)?;
    let price_input: Option<i64> = row.get(26)?;
    let price = match price_input {
        Some(input) => Some(UnitPrices {
            input,
            cached_input: row.get(27)?,
            cache_write: row.get(28)?,
            output: row.get(29)?,
            reasoning: row.get(30)?,
        }),
        None => None,
    };
    let n = |i: usize| -> rusqlite::Result<u64> { Ok(row.get::<_, i64>(i)?.max(0) as u64) };
    Ok(Receipt {
        id: row.get(0)?,
        started_at: row.get(1)?,
        ended_at: row.get(2)?,
        key_id: row.get(3)?,
        key_name: row.get(4)?,
        project: row.get(5)?,
        source: row.get(6)?,
        run_id: row.get(7)?,
        requested_model: row.get(8)?,
        route: row.get(9)?,
        channel: row.get(10)?,
        brand: row.get(11)?,
        upstream_model: row.get(12)?,
        bucket: row.get(13)?,
        cross_bucket_fallback: row.get(14)?,
        attempts: serde_json::from_str(&attempts).unwrap_or_default(),
        walk: row.get(16)?,
        retry_count: row.get(17)?,
        fallback_count: row.get(18)?,
        stream: row.get(19)?,
        usage: Usage {
            input: n(20)?,
            cached_input: n(21)?,
            cache_write: n(22)?,
            output: n(23)?,
            reasoning: n(24)?,
        },
        usage_estimated: row.get(25)?,
        price,
        price_source: row.get(31)?,
        currency: row.get(32)?,
        cost: row.get(33)?,
        ttft_ms: row.get(34)?,
        latency_ms: row.get(35)?,
        status: row.get(36)?,
        error: row.get(37)?,
        step: row.get(38)?,
    })
}

/// The newest receipts first.
pub fn recent(conn: &Connection, limit: usize) -> rusqlite::Result<Vec<Receipt>> {
    let mut stmt = conn.prepare(&format!(
        "SELECT {COLUMNS} FROM receipts ORDER BY started_at DESC, id DESC LIMIT ?1"
    ))?;
    let rows = stmt.query_map([limit as i64], from_row)?;
    rows.collect()
}

/// The receipts of `ids` that exist, in no particular order.
pub fn by_ids(conn: &Connection, ids: &[String]) -> rusqlite::Result<Vec<Receipt>> {
    let ids = serde_json::to_string(ids).unwrap_or_else(|_| "[]".into());
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {COLUMNS} FROM receipts WHERE id IN (SELECT value FROM json_each(?1))"
    ))?;
    let rows = stmt.query_map([ids], from_row)?;
    rows.collect()
}

/// What a run (a conversation, a research or eval run) cost, per bucket and
/// currency: `(bucket, currency, cost)` in micro-units, never blended.
pub fn run_totals(conn: &Connection, run_id: &str) -> rusqlite::Result<Vec<(String, String, i64)>> {
    let mut stmt = conn.prepare_cached(
        "SELECT bucket, currency, sum(cost) FROM receipts
         WHERE run_id = ?1 AND bucket IS NOT NULL AND currency IS NOT NULL
         GROUP BY bucket, currency ORDER BY bucket, currency",
    )?;
    let rows = stmt.query_map([run_id], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?;
    rows.collect()
}

/// The runs of `source` that `bucket` paid for.
pub fn runs_paid_from(
    conn: &Connection,
    source: &str,
    bucket: &str,
) -> rusqlite::Result<Vec<String>> {
    let mut stmt = conn.prepare_cached(
        "SELECT DISTINCT run_id FROM receipts
         WHERE run_id IS NOT NULL AND source = ?1 AND bucket = ?2",
    )?;
    let rows = stmt.query_map([source, bucket], |r| r.get(0))?;
    rows.collect()
}

pub fn by_id(conn: &Connection, id: &str) -> rusqlite::Result<Option<Receipt>> {
    conn.query_row(
        &format!("SELECT {COLUMNS} FROM receipts WHERE id = ?1"),
        [id],
        from_row,
    )
    .optional()
}

pub(crate) fn pending(conn: &Connection) -> rusqlite::Result<Vec<Receipt>> {
    let mut stmt = conn.prepare(&format!(
        "SELECT {COLUMNS} FROM receipts WHERE status = 'pending' ORDER BY started_at"
    ))?;
    let rows = stmt.query_map([], from_row)?;
    rows.collect()
}

/// What a page of receipts is filtered by; `None` leaves a field open.
#[derive(Debug, Clone, Default)]
pub struct ReceiptFilter {
    /// Unix ms, inclusive.
    pub since: Option<i64>,
    /// Unix ms, exclusive.
    pub until: Option<i64>,
    pub model: Option<String>,
    pub channel: Option<String>,
    /// The key's name.
    pub key: Option<String>,
    pub project: Option<String>,
    pub bucket: Option<String>,
    pub status: Option<String>,
    /// Keyset cursor: only receipts strictly older than this
    /// `(started_at, id)`.
    pub before: Option<(i64, String)>,
}

/// A page of receipts matching `f`, newest first, at most `limit` long.
/// Ordered by `(started_at, id)` so paging with the last row as `before`
/// neither skips nor repeats a receipt; the time bounds and the key use
/// the `started_at` and `(key_id, started_at)` indexes.
pub fn page(conn: &Connection, f: &ReceiptFilter, limit: usize) -> rusqlite::Result<Vec<Receipt>> {
    use rusqlite::types::Value;
    let mut clauses: Vec<String> = Vec::new();
    let mut args: Vec<Value> = Vec::new();
    fn bind(clauses: &mut Vec<String>, args: &mut Vec<Value>, clause: &str, v: Value) {
        args.push(v);
        clauses.push(clause.replace('?', &format!("?{}", args.len())));
    }
    if let Some(t) = f.since {
        bind(
            &mut clauses,
            &mut args,
            "started_at >= ?",
            Value::Integer(t),
        );
    }
    if let Some(t) = f.until {
        bind(&mut clauses, &mut args, "started_at < ?", Value::Integer(t));
    }
    if let Some((at, id)) = &f.before {
        args.push(Value::Integer(*at));
        args.push(Value::Text(id.clone()));
        let (a, b) = (args.len() - 1, args.len());
        clauses.push(format!(
            "(started_at < ?{a} OR (started_at = ?{a} AND id < ?{b}))"
        ));
    }
    let text = |s: &Option<String>| s.clone().map(Value::Text);
    if let Some(v) = text(&f.key) {
        bind(
            &mut clauses,
            &mut args,
            "key_id IN (SELECT id FROM gateway_keys WHERE name = ?)",
            v,
        );
    }
    for (column, value) in [
        ("requested_model", &f.model),
        ("channel", &f.channel),
        ("project", &f.project),
        ("bucket", &f.bucket),
        ("status", &f.status),
    ] {
        if let Some(v) = text(value) {
            bind(&mut clauses, &mut args, &format!("{column} = ?"), v);
        }
    }
    let filter = if clauses.is_empty() {
        String::new()
    } else {
        format!("WHERE {}", clauses.join(" AND "))
    };
    args.push(Value::Integer(limit as i64));
    let mut stmt = conn.prepare(&format!(
        "SELECT {COLUMNS} FROM receipts {filter} ORDER BY started_at DESC, id DESC LIMIT ?{}",
        args.len()
    ))?;
    let rows = stmt.query_map(rusqlite::params_from_iter(args), from_row)?;
    rows.collect()
}
