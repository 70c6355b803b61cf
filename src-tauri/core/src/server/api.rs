//! The management API's first slice under `/api`: buckets and their ledger
//! entries, top-ups, receipts, spend reports and gateway keys.
//!
//! Every route takes the admin token (checked by [`super::admin`]) and
//! answers JSON; every refusal is a [`GatewayError`] in OpenAI's error
//! shape. Money is always per bucket, in micro-units with a formatted
//! decimal string beside them, and never blended across currencies. The
//! handlers reuse the same library functions as the CLI, and run SQLite on
//! a blocking thread with a connection of their own, never on the async
//! request path. A key's plaintext appears once, in the answer to its
//! creation.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::routing::{delete, get, post, put};
use axum::{Json, Router};
use rusqlite::Connection;
use serde::Deserialize;
use serde_json::{json, Value};

use super::admin::authorize;
use super::{AppState, GatewayError};
use crate::config::Bucket;
use crate::keys::{self, KeyError, NewKey};
use crate::ledger::money::{format_micro, parse_amount};
use crate::ledger::receipts::{self, ReceiptFilter};
use crate::ledger::spend::{self, Dim};
use crate::ledger::{db, store};

/// Rows per page unless `limit` says otherwise, and the most it may say.
const DEFAULT_LIMIT: usize = 50;
const MAX_LIMIT: usize = 500;

pub fn routes() -> Router<Arc<AppState>> {
    Router::new()
        .route("/api/buckets", get(buckets))
        .route("/api/buckets/{bucket}/topup", post(topup))
        .route("/api/buckets/{bucket}/entries", get(entries))
        .route("/api/receipts", get(receipt_page))
        .route("/api/receipts/{id}", get(receipt))
        .route("/api/spend", get(spend_report))
        .route("/api/keys", get(list_keys).post(create_key))
        .route("/api/keys/{name}", delete(revoke_key))
        .route("/api/keys/{name}/budgets", put(set_key_budgets))
}

/// A database failure: logged with a request id, shown without detail.
pub(super) fn internal(e: impl std::fmt::Display) -> GatewayError {
    let request_id = crate::request::new_request_id();
    tracing::error!(request_id = %request_id, error = %e, "management API database error");
    GatewayError::Internal(request_id)
}

/// Runs `f` on a blocking thread with a fresh connection to the database.
async fn with_db<T, F>(state: &AppState, f: F) -> Result<T, GatewayError>
where
    T: Send + 'static,
    F: FnOnce(&mut Connection) -> Result<T, GatewayError> + Send + 'static,
{
    let path = crate::app::db_path(&state.data_dir);
    tokio::task::spawn_blocking(move || {
        let mut conn = db::open(&path).map_err(internal)?;
        f(&mut conn)
    })
    .await
    .map_err(internal)?
}

pub(super) fn query<T>(q: Result<Query<T>, QueryRejection>) -> Result<T, GatewayError> {
    q.map(|Query(t)| t)
        .map_err(|e| GatewayError::BadRequest(format!("Bad query string: {}", e.body_text())))
}

pub(super) fn body<T>(b: Result<Json<T>, JsonRejection>) -> Result<T, GatewayError> {
    b.map(|Json(t)| t)
        .map_err(|e| GatewayError::BadJson(e.body_text()))
}

fn bucket(s: &str) -> Result<Bucket, GatewayError> {
    s.parse().map_err(GatewayError::BadRequest)
}

fn limit(s: Option<&str>) -> Result<usize, GatewayError> {
    match s {
        None => Ok(DEFAULT_LIMIT),
        Some(s) => match s.parse::<usize>() {
            Ok(n) if (1..=MAX_LIMIT).contains(&n) => Ok(n),
            _ => Err(GatewayError::BadRequest(format!(
                "`limit` must be a whole number from 1 to {MAX_LIMIT}, not `{s}`"
            ))),
        },
    }
}

fn money(micro: i64, currency: &str) -> Value {
    json!({"micro": micro, "amount": format_micro(micro), "currency": currency})
}

/// One bucket's balance, in its own currency.
pub(super) fn bucket_json(state: &AppState, bucket: Bucket) -> Value {
    let micro = state.core.ledger.balance(bucket);
    json!({
        "bucket": bucket.as_str(),
        "currency": state.core.ledger.currency(bucket),
        "balance": format_micro(micro),
        "balance_micro": micro,
    })
}

/// Both buckets with their balances, each in its own currency.
#[utoipa::path(
    get,
    path = "/api/buckets",
    tag = "Buckets",
    summary = "Both buckets with their balances, each in its own currency",
    responses(
        (status = 200, description = "Balances", body = serde_json::Value),
    )
)]
async fn buckets(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
) -> Result<Json<Value>, GatewayError> {
    authorize(&state, &headers)?;
    let list: Vec<Value> = Bucket::ALL
        .iter()
        .map(|&b| bucket_json(&state, b))
        .collect();
    Ok(Json(json!({ "buckets": list })))
}

/// A top-up: a positive decimal amount in the bucket's currency.
#[derive(Deserialize, utoipa::ToSchema)]
struct TopupBody {
    amount: String,
    note: Option<String>,
}

/// Adds money to a bucket (one append-only `topup` entry).
#[utoipa::path(
    post,
    path = "/api/buckets/{bucket}/topup",
    tag = "Buckets",
    summary = "Adds money to a bucket (an append-only top-up entry)",
    request_body = TopupBody,
    params(
        ("bucket" = String, Path, description = "credit or wallet"),
    ),
    responses(
        (status = 201, description = "The new balance", body = serde_json::Value),
        super::openapi::BadInput,
    )
)]
async fn topup(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    Path(name): Path<String>,
    req: Result<Json<TopupBody>, JsonRejection>,
) -> Result<(StatusCode, Json<Value>), GatewayError> {
    authorize(&state, &headers)?;
    let bucket = bucket(&name)?;
    let req = body(req)?;
    let amount = parse_amount(&req.amount).map_err(|e| GatewayError::BadRequest(e.to_string()))?;
    if amount <= 0 {
        return Err(GatewayError::BadRequest(
            "a top-up must be a positive amount".into(),
        ));
    }
    let buckets = state.gateway().config.buckets.clone();
    let note = req.note.filter(|n| !n.trim().is_empty());
    let ledger = Arc::clone(&state.core.ledger);
    let after = with_db(&state, move |conn| {
        let after =
            store::topup(conn, &buckets, bucket, amount, note.as_deref()).map_err(internal)?;
        // Let the running ledger see the new balance before we answer.
        ledger.flush();
        Ok(after)
    })
    .await?;
    let currency = state.core.ledger.currency(bucket);
    Ok((
        StatusCode::CREATED,
        Json(json!({
            "bucket": bucket.as_str(),
            "currency": currency,
            "amount": format_micro(amount),
            "amount_micro": amount,
            "balance": format_micro(after),
            "balance_micro": after,
        })),
    ))
}

#[derive(Deserialize, Default)]
struct PageQuery {
    limit: Option<String>,
    before: Option<String>,
}

/// A bucket's ledger entries, newest first; `next` pages on.
#[utoipa::path(
    get,
    path = "/api/buckets/{bucket}/entries",
    tag = "Buckets",
    summary = "A bucket's ledger entries, newest first",
    params(
        ("bucket" = String, Path, description = "credit or wallet"),
        ("limit" = Option<u32>, Query, description = "1 to 500, default 50"),
        ("before" = Option<i64>, Query, description = "the `next` of the previous page"),
    ),
    responses(
        (status = 200, description = "Entries with their balance after each", body = serde_json::Value),
        super::openapi::BadInput,
    )
)]
async fn entries(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    Path(name): Path<String>,
    q: Result<Query<PageQuery>, QueryRejection>,
) -> Result<Json<Value>, GatewayError> {
    authorize(&state, &headers)?;
    let bucket = bucket(&name)?;
    let q = query(q)?;
    let limit = limit(q.limit.as_deref())?;
    let before = match q.before.as_deref() {
        None => None,
        Some(s) => Some(s.parse::<i64>().map_err(|_| {
            GatewayError::BadRequest(format!("`before` must be an entry id, not `{s}`"))
        })?),
    };
    let rows = with_db(&state, move |conn| {
        store::entries(conn, bucket, before, limit).map_err(internal)
    })
    .await?;
    let next = (rows.len() == limit)
        .then(|| rows.last().map(|e| e.id.to_string()))
        .flatten();
    let list: Vec<Value> = rows
        .iter()
        .map(|e| {
            let mut v = json!(e);
            v["amount_formatted"] = json!(format_micro(e.amount));
            v["balance_after_formatted"] = json!(format_micro(e.balance_after));
            v
        })
        .collect();
    Ok(Json(json!({
        "bucket": bucket.as_str(),
        "currency": state.core.ledger.currency(bucket),
        "entries": list,
        "next": next,
    })))
}

#[derive(Deserialize, Default)]
struct ReceiptQuery {
    limit: Option<String>,
    before: Option<String>,
    since: Option<String>,
    until: Option<String>,
    model: Option<String>,
    channel: Option<String>,
    key: Option<String>,
    project: Option<String>,
    bucket: Option<String>,
    status: Option<String>,
}

const STATUSES: [&str; 7] = [
    "pending",
    "ok",
    "error",
    "client_cancelled",
    "upstream_cut",
    "interrupted",
    "refused",
];

/// A time bound: Unix milliseconds, or for `since` also a duration back
/// from now (`24h`, `7d`).
fn time_bound(name: &str, s: &str, allow_duration: bool) -> Result<i64, GatewayError> {
    if let Ok(ms) = s.parse::<i64>() {
        return Ok(ms);
    }
    if allow_duration {
        if let Ok(span) = spend::parse_since(s) {
            return Ok(chrono::Utc::now().timestamp_millis() - span);
        }
    }
    Err(GatewayError::BadRequest(format!(
        "`{name}` must be Unix milliseconds{}, not `{s}`",
        if allow_duration {
            " or a duration like 24h or 7d"
        } else {
            ""
        }
    )))
}

/// The `next` cursor of a receipt page: `started_at:id`.
fn cursor(r: &receipts::Receipt) -> String {
    format!("{}:{}", r.started_at, r.id)
}

/// A page of receipts, newest first, filtered in SQL; `next` is the
/// cursor to pass as `before` for the following page.
#[utoipa::path(
    get,
    path = "/api/receipts",
    tag = "Receipts",
    summary = "A page of receipts, newest first, filtered",
    params(
        ("limit" = Option<u32>, Query, description = "1 to 500, default 50"),
        ("before" = Option<String>, Query, description = "the `next` cursor of the previous page"),
        ("since" = Option<String>, Query, description = "Unix ms, or a duration back from now: 24h, 7d"),
        ("until" = Option<i64>, Query, description = "Unix ms"),
        ("model" = Option<String>, Query),
        ("channel" = Option<String>, Query),
        ("key" = Option<String>, Query),
        ("project" = Option<String>, Query),
        ("bucket" = Option<String>, Query, description = "credit or wallet"),
        ("status" = Option<String>, Query, description = "pending, ok, error, client_cancelled, upstream_cut, interrupted or refused"),
    ),
    responses(
        (status = 200, description = "Receipts and the `next` cursor", body = serde_json::Value),
        super::openapi::BadInput,
    )
)]
async fn receipt_page(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    q: Result<Query<ReceiptQuery>, QueryRejection>,
) -> Result<Json<Value>, GatewayError> {
    authorize(&state, &headers)?;
    let q = query(q)?;
    let limit = limit(q.limit.as_deref())?;
    let before = match q.before.as_deref() {
        None => None,
        Some(s) => {
            let parsed = s
                .split_once(':')
                .and_then(|(at, id)| Some((at.parse::<i64>().ok()?, id.to_string())));
            Some(parsed.ok_or_else(|| {
                GatewayError::BadRequest(format!(
                    "`before` must be the `next` cursor of a previous page, not `{s}`"
                ))
            })?)
        }
    };
    if let Some(b) = q.bucket.as_deref() {
        bucket(b)?;
    }
    if let Some(s) = q.status.as_deref() {
        if !STATUSES.contains(&s) {
            return Err(GatewayError::BadRequest(format!(
                "unknown status `{s}` (expected one of {})",
                STATUSES.join(", ")
            )));
        }
    }
    let filter = ReceiptFilter {
        since: q
            .since
            .as_deref()
            .map(|s| time_bound("since", s, true))
            .transpose()?,
        until: q
            .until
            .as_deref()
            .map(|s| time_bound("until", s, false))
            .transpose()?,
        model: q.model,
        channel: q.channel,
        key: q.key,
        project: q.project,
        bucket: q.bucket.map(|b| b.trim().to_ascii_lowercase()),
        status: q.status,
        before,
    };
    let rows = with_db(&state, move |conn| {
        receipts::page(conn, &filter, limit).map_err(internal)
    })
    .await?;
    let next = (rows.len() == limit)
        .then(|| rows.last().map(cursor))
        .flatten();
    Ok(Json(json!({ "receipts": rows, "next": next })))
}

/// One receipt with its attempt chain and route walk.
#[utoipa::path(
    get,
    path = "/api/receipts/{id}",
    tag = "Receipts",
    summary = "One receipt with its attempt chain and the route walked in words",
    params(
        ("id" = String, Path, description = "the x-switchyard-request-id of a response"),
    ),
    responses(
        (status = 200, description = "The receipt", body = crate::ledger::Receipt),
        super::openapi::NotFound,
    )
)]
async fn receipt(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Json<Value>, GatewayError> {
    authorize(&state, &headers)?;
    let lookup = id.clone();
    let found = with_db(&state, move |conn| {
        receipts::by_id(conn, &lookup).map_err(internal)
    })
    .await?;
    match found {
        Some(r) => {
            let cost = r.currency.as_deref().map(|c| money(r.cost, c));
            let mut v = json!(r);
            v["cost_formatted"] = cost.unwrap_or(Value::Null);
            Ok(Json(v))
        }
        None => Err(GatewayError::NotFound(format!(
            "No receipt with id `{id}`. GET /api/receipts lists them; ids are the \
             `x-switchyard-request-id` of a response."
        ))),
    }
}

#[derive(Deserialize, Default)]
struct SpendQuery {
    since: Option<String>,
    from: Option<String>,
    to: Option<String>,
    by: Option<String>,
}

fn spend_row(r: &spend::SpendRow) -> Value {
    let mut v = json!(r);
    v["cost_formatted"] = json!(format_micro(r.cost));
    v
}

/// Spend over a range grouped by a dimension, with totals per bucket.
#[utoipa::path(
    get,
    path = "/api/spend",
    tag = "Spend",
    summary = "Spend grouped by a dimension, with totals per bucket (never blended)",
    params(
        ("since" = Option<String>, Query, description = "24h, 7d, 30d …"),
        ("from" = Option<String>, Query, description = "YYYY-MM-DD"),
        ("to" = Option<String>, Query, description = "YYYY-MM-DD"),
        ("by" = Option<String>, Query, description = "model, channel, brand, key, project, bucket, day or source"),
    ),
    responses(
        (status = 200, description = "Rows and per-bucket totals", body = serde_json::Value),
        super::openapi::BadInput,
    )
)]
async fn spend_report(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    q: Result<Query<SpendQuery>, QueryRejection>,
) -> Result<Json<Value>, GatewayError> {
    authorize(&state, &headers)?;
    let q = query(q)?;
    let by: Dim =
        q.by.as_deref()
            .unwrap_or("model")
            .parse()
            .map_err(GatewayError::BadRequest)?;
    let (from_ms, to_ms) = spend::range(
        chrono::Local::now(),
        q.since.as_deref(),
        q.from.as_deref(),
        q.to.as_deref(),
    )
    .map_err(GatewayError::BadRequest)?;
    let rows = with_db(&state, move |conn| {
        spend::spend(conn, from_ms, to_ms, by).map_err(internal)
    })
    .await?;
    let rows = spend::adopt_bucket_currency(rows, &state.gateway().config.buckets);
    let totals = spend::totals(&rows);
    Ok(Json(json!({
        "from": from_ms,
        "to": to_ms,
        "by": by.title().to_ascii_lowercase(),
        "rows": rows.iter().map(spend_row).collect::<Vec<_>>(),
        "totals": totals.iter().map(spend_row).collect::<Vec<_>>(),
    })))
}

fn budgets_json(b: &BTreeMap<Bucket, i64>) -> Value {
    let m: serde_json::Map<String, Value> = b
        .iter()
        .map(|(k, v)| (k.as_str().to_string(), json!(format_micro(*v))))
        .collect();
    Value::Object(m)
}

fn key_json(state: &AppState, k: &keys::GatewayKey) -> Value {
    let spend: serde_json::Map<String, Value> = Bucket::ALL
        .iter()
        .map(|&b| {
            let (today, month) = state.core.ledger.key_spend(k.id, b);
            let currency = state.core.ledger.currency(b);
            (
                b.as_str().to_string(),
                json!({"today": money(today, currency), "month": money(month, currency)}),
            )
        })
        .collect();
    json!({
        "name": k.name,
        "prefix": k.prefix,
        "models": k.models,
        "buckets": k.buckets.iter().map(|b| b.as_str()).collect::<Vec<_>>(),
        "project": k.project,
        "daily_budget": budgets_json(&k.daily_budget),
        "monthly_budget": budgets_json(&k.monthly_budget),
        // Unix milliseconds, as every time under /api.
        "created_at": k.created_at.saturating_mul(1000),
        "revoked_at": k.revoked_at.map(|t| t.saturating_mul(1000)),
        "active": k.revoked_at.is_none(),
        "spend": spend,
    })
}

/// Every key (revoked ones too), never its secret, with its spend.
#[utoipa::path(
    get,
    path = "/api/keys",
    tag = "Keys",
    summary = "Every gateway key (never its secret) with its scope, budget and spend",
    responses(
        (status = 200, description = "Keys", body = serde_json::Value),
    )
)]
async fn list_keys(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
) -> Result<Json<Value>, GatewayError> {
    authorize(&state, &headers)?;
    let list = with_db(&state, |conn| keys::list(conn).map_err(internal)).await?;
    let out: Vec<Value> = list.iter().map(|k| key_json(&state, k)).collect();
    Ok(Json(json!({ "keys": out })))
}

/// A budget: `"5"` for each bucket, or `{"wallet": "30"}`.
/// A budget: one amount for each bucket the key may use, or one per bucket.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(untagged)]
enum BudgetBody {
    Each(String),
    PerBucket(BTreeMap<String, String>),
}

impl BudgetBody {
    /// As the CLI's `--daily-budget` values.
    fn cli_values(self) -> Vec<String> {
        match self {
            BudgetBody::Each(s) => vec![s],
            BudgetBody::PerBucket(m) => m.into_iter().map(|(b, a)| format!("{b}={a}")).collect(),
        }
    }
}

/// A new gateway key: its name, model globs (default every model),
/// buckets (default both), project label and budgets.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct CreateKeyBody {
    name: String,
    #[serde(default)]
    models: Vec<String>,
    #[serde(default)]
    buckets: Vec<String>,
    project: Option<String>,
    daily_budget: Option<BudgetBody>,
    monthly_budget: Option<BudgetBody>,
}

fn budgets(b: Option<BudgetBody>, what: &str) -> Result<BTreeMap<Bucket, i64>, GatewayError> {
    keys::parse_budgets(&b.map(BudgetBody::cli_values).unwrap_or_default())
        .map_err(|e| GatewayError::BadRequest(format!("{what}: {e}")))
}

fn key_error(e: KeyError) -> GatewayError {
    match e {
        KeyError::Exists(_) => GatewayError::Conflict(e.to_string()),
        KeyError::NotFound(_) => GatewayError::NotFound(e.to_string()),
        KeyError::BadName(_) | KeyError::BadGlob(..) => GatewayError::BadRequest(e.to_string()),
        KeyError::Db(e) => internal(e),
    }
}

/// Creates a key; the answer holds its plaintext, shown this once.
#[utoipa::path(
    post,
    path = "/api/keys",
    tag = "Keys",
    summary = "Creates a gateway key; the answer holds its secret, shown this once",
    request_body = CreateKeyBody,
    responses(
        (status = 201, description = "The key, with `key` set once", body = serde_json::Value),
        super::openapi::BadInput,
        super::openapi::Exists,
    )
)]
async fn create_key(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    req: Result<Json<CreateKeyBody>, JsonRejection>,
) -> Result<(StatusCode, Json<Value>), GatewayError> {
    authorize(&state, &headers)?;
    let req = body(req)?;
    let new = NewKey {
        name: req.name,
        models: req.models,
        buckets: req
            .buckets
            .iter()
            .map(|b| bucket(b))
            .collect::<Result<_, _>>()?,
        project: req.project.filter(|p| !p.trim().is_empty()),
        daily_budget: budgets(req.daily_budget, "daily_budget")?,
        monthly_budget: budgets(req.monthly_budget, "monthly_budget")?,
    };
    let (key, plaintext) = with_db(&state, move |conn| {
        keys::create(conn, &new).map_err(key_error)
    })
    .await?;
    let mut v = key_json(&state, &key);
    v["key"] = json!(plaintext);
    Ok((StatusCode::CREATED, Json(v)))
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct KeyBudgetsBody {
    daily_budget: Option<BudgetBody>,
    monthly_budget: Option<BudgetBody>,
}

/// Replaces a key's budgets (the app's own key `app` included).
#[utoipa::path(
    put,
    path = "/api/keys/{name}/budgets",
    tag = "Keys",
    summary = "Replaces a key's daily and monthly budgets (left out: no limit)",
    params(
        ("name" = String, Path),
    ),
    request_body = KeyBudgetsBody,
    responses(
        (status = 200, description = "The budgets set", body = serde_json::Value),
        super::openapi::BadInput,
        super::openapi::NotFound,
    )
)]
async fn set_key_budgets(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    Path(name): Path<String>,
    b: Result<Json<KeyBudgetsBody>, JsonRejection>,
) -> Result<Json<Value>, GatewayError> {
    authorize(&state, &headers)?;
    let b = body(b)?;
    let daily = budgets(b.daily_budget, "daily_budget")?;
    let monthly = budgets(b.monthly_budget, "monthly_budget")?;
    let target = name.clone();
    let (d, m) = (daily.clone(), monthly.clone());
    with_db(&state, move |conn| {
        keys::set_budgets(conn, &target, &d, &m).map_err(key_error)
    })
    .await?;
    let show = |b: &BTreeMap<Bucket, i64>| -> Value {
        b.iter()
            .map(|(k, v)| (k.as_str().to_string(), json!(format_micro(*v))))
            .collect::<serde_json::Map<_, _>>()
            .into()
    };
    Ok(Json(
        json!({ "name": name, "daily_budget": show(&daily), "monthly_budget": show(&monthly) }),
    ))
}

/// Revokes the active key called `name`; requests with it fail at once.
#[utoipa::path(
    delete,
    path = "/api/keys/{name}",
    tag = "Keys",
    summary = "Revokes a key; requests with it fail at once",
    params(
        ("name" = String, Path),
    ),
    responses(
        (status = 200, description = "Revoked", body = serde_json::Value),
        super::openapi::NotFound,
    )
)]
async fn revoke_key(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    Path(name): Path<String>,
) -> Result<Json<Value>, GatewayError> {
    authorize(&state, &headers)?;
    let target = name.clone();
    with_db(&state, move |conn| {
        keys::revoke(conn, &target).map_err(key_error)
    })
    .await?;
    Ok(Json(json!({ "name": name, "revoked": true })))
}
