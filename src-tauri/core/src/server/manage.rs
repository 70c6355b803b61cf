//! The management API's config side: channels (with their secrets and a
//! connection test), routes, a dry run of routing, per-target health, the
//! provider presets and local-server detection, and pausing the gateway.
//!
//! Edits are written to the config file with its comments and layout kept
//! ([`crate::config::edit`]), checked as `config check` would check them,
//! and take effect at once: the gateway is rebuilt and swapped in, keeping
//! its circuit breakers. Requests in flight finish on the gateway they
//! started with. Secrets go to the OS keyring and never come back out.

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::routing::{get, post, put};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{json, Value};

use super::admin::authorize;
use super::api::{body, internal, query};
use super::{AppState, GatewayError};
use crate::config::edit::{ChannelPatch, ChannelSpec, ConfigDoc, EditError, RouteSpec};
use crate::config::{Bucket, SecretRef};
use crate::ledger::money::format_micro;
use crate::ledger::pricing::PriceSource;
use crate::routing::{Channel, CircuitState, Gateway, Route, Target};
use crate::secrets::{self, ResolvedSecret};

/// How long "test connection" waits for a provider.
const PROBE_TIMEOUT: Duration = Duration::from_secs(10);
/// How long local-server detection waits for each port.
const DETECT_TIMEOUT: Duration = Duration::from_millis(800);

pub fn routes() -> Router<Arc<AppState>> {
    Router::new()
        .route("/api/channels", get(list_channels).post(add_channel))
        .route(
            "/api/channels/{id}",
            get(one_channel).patch(edit_channel).delete(remove_channel),
        )
        .route(
            "/api/channels/{id}/secret",
            put(set_secret).delete(delete_secret),
        )
        .route("/api/channels/{id}/test", post(test_channel))
        .route("/api/routes", get(list_routes).post(add_route))
        .route(
            "/api/routes/{model}",
            get(one_route).put(edit_route).delete(remove_route),
        )
        .route("/api/dry-run", get(dry_run))
        .route("/api/health", get(health))
        .route("/api/presets", get(presets))
        .route("/api/local-servers", get(local_servers))
        .route("/api/pause", post(pause))
        .route("/api/resume", post(resume))
}

fn edit_error(e: EditError) -> GatewayError {
    match e {
        EditError::NotFound(m) => GatewayError::NotFound(m),
        EditError::Exists(m) => GatewayError::Conflict(m),
        EditError::File(e) => GatewayError::BadRequest(e.to_string()),
        other => GatewayError::BadRequest(other.to_string()),
    }
}

/// Applies `edit` to the config file: checked, written, and live. Returns
/// the gateway now serving.
async fn apply<F>(state: &Arc<AppState>, edit: F) -> Result<Arc<Gateway>, GatewayError>
where
    F: FnOnce(&mut ConfigDoc) -> Result<(), EditError> + Send + 'static,
{
    let _one_at_a_time = state.edits.lock().await;
    let current = state.gateway();
    let path = current.config.path.clone();
    let store = Arc::clone(&state.secrets);
    // File and keyring access block.
    let mut next = tokio::task::spawn_blocking(move || -> Result<Gateway, GatewayError> {
        let mut doc = ConfigDoc::open(&path).map_err(edit_error)?;
        edit(&mut doc).map_err(edit_error)?;
        let config = doc.check().map_err(edit_error)?;
        let gateway = Gateway::build(config, store.as_ref())
            .map_err(|e| GatewayError::BadRequest(e.to_string()))?;
        doc.save().map_err(edit_error)?;
        Ok(gateway)
    })
    .await
    .map_err(internal)??;
    next.inherit(&current);
    let next = Arc::new(next);
    state.core.gateway.store(Arc::clone(&next));
    tracing::info!(path = %next.config.path.display(), "config edited from the app; now live");
    Ok(next)
}

fn secret_state(c: &Channel) -> (&'static str, Option<String>) {
    match c.secret() {
        ResolvedSecret::Present(_) if c.key_rejected() => ("rejected", None),
        ResolvedSecret::Present(_) => ("set", None),
        ResolvedSecret::NotNeeded => ("not_needed", None),
        ResolvedSecret::Missing(why) => ("missing", Some(why)),
        ResolvedSecret::Unavailable(why) => ("unavailable", Some(why)),
    }
}

fn channel_json(gw: &Gateway, c: &Channel) -> Value {
    let cfg = gw.config.channel(&c.id);
    let (source, env) = match &c.secret_ref {
        SecretRef::Keyring => ("keyring", None),
        SecretRef::Env(var) => ("env", Some(var.clone())),
        SecretRef::None => ("none", None),
    };
    let (state, detail) = secret_state(c);
    let routes: Vec<&str> = gw
        .routes()
        .filter(|r| r.targets.iter().any(|t| t.channel.id == c.id))
        .map(|r| r.model.as_str())
        .collect();
    json!({
        "id": c.id,
        "type": c.kind.as_str(),
        "brand": c.brand,
        "base_url": c.base_url,
        "bucket": c.bucket.as_str(),
        "secret": {"source": source, "env": env, "state": state, "detail": detail},
        "models": cfg.map(|c| c.models.clone()).unwrap_or_default(),
        "price_multiplier": c.price_multiplier,
        "routes": routes,
    })
}

fn find_channel(gw: &Gateway, id: &str) -> Result<Arc<Channel>, GatewayError> {
    gw.channel(id).cloned().ok_or_else(|| {
        GatewayError::NotFound(format!("No channel `{id}`. GET /api/channels lists them."))
    })
}

#[utoipa::path(
    get,
    path = "/api/channels",
    tag = "Channels",
    summary = "Every channel with its secret state (set, missing, rejected, not_needed, unavailable), never the secret",
    responses(
        (status = 200, description = "Channels", body = serde_json::Value),
    )
)]
async fn list_channels(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
) -> Result<Json<Value>, GatewayError> {
    authorize(&state, &headers)?;
    let gw = state.gateway();
    let list: Vec<Value> = gw.channels().iter().map(|c| channel_json(&gw, c)).collect();
    Ok(Json(json!({ "channels": list })))
}

#[utoipa::path(
    get,
    path = "/api/channels/{id}",
    tag = "Channels",
    summary = "One channel",
    params(
        ("id" = String, Path),
    ),
    responses(
        (status = 200, description = "The channel", body = serde_json::Value),
        super::openapi::NotFound,
    )
)]
async fn one_channel(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Json<Value>, GatewayError> {
    authorize(&state, &headers)?;
    let gw = state.gateway();
    let c = find_channel(&gw, &id)?;
    Ok(Json(channel_json(&gw, &c)))
}

/// Body of `POST /api/channels`: the channel, and optionally its secret,
/// which goes straight to the keyring.
#[derive(Deserialize, utoipa::ToSchema)]
struct NewChannel {
    #[serde(flatten)]
    channel: ChannelSpec,
    key: Option<String>,
}

#[utoipa::path(
    post,
    path = "/api/channels",
    tag = "Channels",
    summary = "Adds a channel to the config file (live at once); `key` goes straight to the OS keyring",
    request_body = NewChannel,
    responses(
        (status = 201, description = "The channel", body = serde_json::Value),
        super::openapi::BadInput,
        super::openapi::Exists,
    )
)]
async fn add_channel(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    req: Result<Json<Value>, JsonRejection>,
) -> Result<(StatusCode, Json<Value>), GatewayError> {
    authorize(&state, &headers)?;
    let raw = body(req)?;
    let NewChannel { channel, key } = serde_json::from_value(raw)
        .map_err(|e| GatewayError::BadRequest(format!("Bad channel: {e}")))?;
    let id = channel.id.trim().to_string();
    let key = key.filter(|k| !k.trim().is_empty());
    if key.is_some()
        && !matches!(
            channel.secret.as_deref().map(str::trim),
            None | Some("keyring")
        )
    {
        return Err(GatewayError::BadRequest(
            "`key` goes to the OS keyring, so the channel's `secret` must be \"keyring\" \
             (the default)"
                .into(),
        ));
    }
    if state.gateway().channel(&id).is_some() {
        return Err(GatewayError::Conflict(format!(
            "a channel with id `{id}` already exists"
        )));
    }
    if let Some(k) = &key {
        // Stored first, so the new channel starts with it.
        store_secret(&state, &id, k.trim()).await?;
    }
    let gw = match apply(&state, move |doc| doc.add_channel(&channel)).await {
        Ok(gw) => gw,
        Err(e) => {
            if key.is_some() {
                // The channel was not added: its key goes too.
                let store = Arc::clone(&state.secrets);
                let account = id.clone();
                let _ = tokio::task::spawn_blocking(move || store.delete(&account)).await;
            }
            return Err(e);
        }
    };
    let c = find_channel(&gw, &id)?;
    Ok((StatusCode::CREATED, Json(channel_json(&gw, &c))))
}

#[utoipa::path(
    patch,
    path = "/api/channels/{id}",
    tag = "Channels",
    summary = "Changes a channel; `null` removes an optional key",
    request_body = ChannelPatch,
    params(
        ("id" = String, Path),
    ),
    responses(
        (status = 200, description = "The channel", body = serde_json::Value),
        super::openapi::BadInput,
        super::openapi::NotFound,
    )
)]
async fn edit_channel(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    Path(id): Path<String>,
    req: Result<Json<ChannelPatch>, JsonRejection>,
) -> Result<Json<Value>, GatewayError> {
    authorize(&state, &headers)?;
    let patch = body(req)?;
    let target = id.clone();
    let gw = apply(&state, move |doc| doc.edit_channel(&target, &patch)).await?;
    let c = find_channel(&gw, &id)?;
    Ok(Json(channel_json(&gw, &c)))
}

#[utoipa::path(
    delete,
    path = "/api/channels/{id}",
    tag = "Channels",
    summary = "Removes a channel; refused while a route sends to it",
    params(
        ("id" = String, Path),
    ),
    responses(
        (status = 200, description = "Removed", body = serde_json::Value),
        super::openapi::BadInput,
        super::openapi::NotFound,
    )
)]
async fn remove_channel(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Json<Value>, GatewayError> {
    authorize(&state, &headers)?;
    let target = id.clone();
    apply(&state, move |doc| doc.remove_channel(&target)).await?;
    Ok(Json(json!({ "id": id, "removed": true })))
}

async fn store_secret(state: &AppState, id: &str, secret: &str) -> Result<(), GatewayError> {
    let store = Arc::clone(&state.secrets);
    let (id, secret) = (id.to_string(), secret.to_string());
    tokio::task::spawn_blocking(move || store.set(&id, &secret))
        .await
        .map_err(internal)?
        .map_err(|e| GatewayError::BadRequest(format!("The OS keyring refused the secret: {e}")))
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct SecretBody {
    secret: String,
}

/// Stores a channel's secret in the keyring (write-only) and uses it at once.
#[utoipa::path(
    put,
    path = "/api/channels/{id}/secret",
    tag = "Channels",
    summary = "Stores the channel's secret in the OS keyring (write-only) and uses it at once",
    request_body = SecretBody,
    params(
        ("id" = String, Path),
    ),
    responses(
        (status = 200, description = "The secret state", body = serde_json::Value),
        super::openapi::BadInput,
        super::openapi::NotFound,
    )
)]
async fn set_secret(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    Path(id): Path<String>,
    req: Result<Json<SecretBody>, JsonRejection>,
) -> Result<Json<Value>, GatewayError> {
    authorize(&state, &headers)?;
    let secret = body(req)?.secret;
    let secret = secret.trim();
    if secret.is_empty() {
        return Err(GatewayError::BadRequest("`secret` is empty".into()));
    }
    let gw = state.gateway();
    let channel = find_channel(&gw, &id)?;
    if channel.secret_ref != SecretRef::Keyring {
        return Err(GatewayError::BadRequest(format!(
            "channel `{id}` does not read its secret from the keyring (secret = \"{}\"); \
             set `secret` to \"keyring\" first",
            secret_ref_str(&channel.secret_ref)
        )));
    }
    store_secret(&state, &id, secret).await?;
    refresh_secret(&state, &gw, &channel).await?;
    let (st, _) = secret_state(&channel);
    Ok(Json(json!({ "id": id, "state": st })))
}

#[utoipa::path(
    delete,
    path = "/api/channels/{id}/secret",
    tag = "Channels",
    summary = "Deletes the channel's secret from the OS keyring",
    params(
        ("id" = String, Path),
    ),
    responses(
        (status = 200, description = "The secret state", body = serde_json::Value),
        super::openapi::NotFound,
    )
)]
async fn delete_secret(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Json<Value>, GatewayError> {
    authorize(&state, &headers)?;
    let gw = state.gateway();
    let channel = find_channel(&gw, &id)?;
    let store = Arc::clone(&state.secrets);
    let account = id.clone();
    tokio::task::spawn_blocking(move || store.delete(&account))
        .await
        .map_err(internal)?
        .map_err(|e| GatewayError::BadRequest(format!("The OS keyring refused: {e}")))?;
    refresh_secret(&state, &gw, &channel).await?;
    let (st, _) = secret_state(&channel);
    Ok(Json(json!({ "id": id, "state": st })))
}

/// Reads the channel's secret again and hands it to the running gateway.
async fn refresh_secret(
    state: &AppState,
    gw: &Arc<Gateway>,
    channel: &Arc<Channel>,
) -> Result<(), GatewayError> {
    let store = Arc::clone(&state.secrets);
    let (id, secret_ref) = (channel.id.clone(), channel.secret_ref.clone());
    let resolved =
        tokio::task::spawn_blocking(move || secrets::resolve(store.as_ref(), &id, &secret_ref))
            .await
            .map_err(internal)?;
    gw.replace_secret(channel, resolved);
    Ok(())
}

fn secret_ref_str(r: &SecretRef) -> String {
    match r {
        SecretRef::Keyring => "keyring".into(),
        SecretRef::None => "none".into(),
        SecretRef::Env(v) => format!("env:{v}"),
    }
}

/// "Test connection": asks the provider for its model list with the
/// channel's secret.
#[utoipa::path(
    post,
    path = "/api/channels/{id}/test",
    tag = "Channels",
    summary = "Test connection: asks the provider for its model list with the channel's secret",
    params(
        ("id" = String, Path),
    ),
    responses(
        (status = 200, description = "What the provider answered", body = serde_json::Value),
        super::openapi::NotFound,
    )
)]
async fn test_channel(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Json<Value>, GatewayError> {
    authorize(&state, &headers)?;
    let gw = state.gateway();
    let channel = find_channel(&gw, &id)?;
    let probe = gw.probe(&channel, PROBE_TIMEOUT).await;
    let (secret, _) = secret_state(&channel);
    Ok(Json(json!({
        "id": id,
        "ok": probe.models.is_some(),
        "status": probe.status,
        "latency_ms": probe.latency.as_millis() as u64,
        "models": probe.models.as_ref().map(Vec::len),
        "sample": probe.models.as_ref().map(|m| m.iter().take(10).collect::<Vec<_>>()).unwrap_or_default(),
        "error": probe.error,
        "secret": secret,
    })))
}

fn price_json(t: &Target) -> Value {
    match &t.price {
        None => Value::Null,
        Some(p) => json!({
            "source": match p.source {
                PriceSource::Catalog => "catalog",
                PriceSource::Override => "override",
            },
            "currency": p.currency,
            "input": format_micro(p.unit.input),
            "cached_input": format_micro(p.unit.cached_input),
            "cache_write": format_micro(p.unit.cache_write),
            "output": format_micro(p.unit.output),
            "reasoning": format_micro(p.unit.reasoning),
        }),
    }
}

fn health_json(state: &AppState, gw: &Gateway, route: &str, position: usize, t: &Target) -> Value {
    let s = state.health.stats(&t.channel.id, &t.model);
    let mut circuit = gw.circuit_state(&t.channel.id, &t.model);
    let mut retry_in = None;
    if circuit == CircuitState::Open {
        match gw.circuit_retry_in(&t.channel.id, &t.model, Instant::now()) {
            // The cooldown is over: the next request probes it.
            Some(d) if d.is_zero() => circuit = CircuitState::HalfOpen,
            d => retry_in = d.map(|d| d.as_millis() as u64),
        }
    }
    let (secret, _) = secret_state(&t.channel);
    json!({
        "route": route,
        "channel": t.channel.id,
        "model": t.model,
        "position": position,
        "requests": s.requests,
        "ok": s.ok,
        "success_rate": s.success_rate,
        "p50_ms": s.p50_ms,
        "p95_ms": s.p95_ms,
        "circuit": {"state": circuit.as_str(), "retry_in_ms": retry_in},
        "last_error": s.last_error.map(|(at, summary)| json!({"at": at, "summary": summary})),
        "secret": secret,
        "mismatches": s.mismatches,
    })
}

fn target_json(state: &AppState, gw: &Gateway, route: &Route, position: usize) -> Value {
    let t = &route.targets[position];
    json!({
        "position": position,
        "role": if position == 0 { "primary" } else { "backup" },
        "channel": t.channel.id,
        "model": t.model,
        "bucket": t.channel.bucket.as_str(),
        "brand": t.channel.brand,
        "type": t.channel.kind.as_str(),
        "price": price_json(t),
        "health": health_json(state, gw, &route.model, position, t),
    })
}

fn route_json(state: &AppState, gw: &Gateway, route: &Route) -> Value {
    json!({
        "model": route.model,
        "cross_bucket": route.cross_bucket,
        "passthrough": route.passthrough,
        "targets": (0..route.targets.len()).map(|i| target_json(state, gw, route, i)).collect::<Vec<_>>(),
    })
}

/// Brands of one channel type, each with its channels.
type Brands<'a> = Vec<(&'a str, Vec<Value>)>;

/// The route tree of the UI: channel type → brand → channel → routed
/// models, each with its place in its route.
fn tree_json(gw: &Gateway) -> Value {
    let mut types: Vec<(&str, Brands)> = Vec::new();
    for c in gw.channels() {
        let models: Vec<Value> = gw
            .routes()
            .flat_map(|r| {
                r.targets
                    .iter()
                    .enumerate()
                    .filter(|(_, t)| t.channel.id == c.id)
                    .map(|(i, t)| {
                        json!({
                            "route": r.model,
                            "upstream_model": t.model,
                            "position": i,
                            "of": r.targets.len(),
                        })
                    })
                    .collect::<Vec<_>>()
            })
            .collect();
        let channel = json!({
            "id": c.id,
            "bucket": c.bucket.as_str(),
            "globs": gw.config.channel(&c.id).map(|c| c.models.clone()).unwrap_or_default(),
            "models": models,
        });
        let ty = c.kind.as_str();
        let brands = match types.iter_mut().find(|(t, _)| *t == ty) {
            Some((_, b)) => b,
            None => {
                types.push((ty, Vec::new()));
                &mut types.last_mut().expect("just pushed").1
            }
        };
        match brands.iter_mut().find(|(b, _)| *b == c.brand) {
            Some((_, chans)) => chans.push(channel),
            None => brands.push((&c.brand, vec![channel])),
        }
    }
    Value::Array(
        types
            .into_iter()
            .map(|(ty, brands)| {
                json!({
                    "type": ty,
                    "brands": brands.into_iter().map(|(b, ch)| json!({"brand": b, "channels": ch})).collect::<Vec<_>>(),
                })
            })
            .collect(),
    )
}

#[utoipa::path(
    get,
    path = "/api/routes",
    tag = "Routes",
    summary = "Every route with its targets, prices and health, and the route tree (type → brand → channel → routed models)",
    responses(
        (status = 200, description = "Routes and tree", body = serde_json::Value),
    )
)]
async fn list_routes(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
) -> Result<Json<Value>, GatewayError> {
    authorize(&state, &headers)?;
    let gw = state.gateway();
    let routes: Vec<Value> = gw.routes().map(|r| route_json(&state, &gw, r)).collect();
    Ok(Json(json!({ "routes": routes, "tree": tree_json(&gw) })))
}

fn find_route(gw: &Gateway, model: &str) -> Result<Arc<Route>, GatewayError> {
    gw.routes()
        .find(|r| r.model == model)
        .cloned()
        .ok_or_else(|| {
            GatewayError::NotFound(format!(
                "No route for model `{model}`. GET /api/routes lists them."
            ))
        })
}

#[utoipa::path(
    get,
    path = "/api/routes/{model}",
    tag = "Routes",
    summary = "One route",
    params(
        ("model" = String, Path),
    ),
    responses(
        (status = 200, description = "The route", body = serde_json::Value),
        super::openapi::NotFound,
    )
)]
async fn one_route(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    Path(model): Path<String>,
) -> Result<Json<Value>, GatewayError> {
    authorize(&state, &headers)?;
    let gw = state.gateway();
    let r = find_route(&gw, &model)?;
    Ok(Json(route_json(&state, &gw, &r)))
}

/// A new route: the model name clients ask for, and its targets.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct NewRoute {
    model: String,
    #[serde(flatten)]
    spec: RouteSpec,
}

#[utoipa::path(
    post,
    path = "/api/routes",
    tag = "Routes",
    summary = "Adds a route (live at once)",
    request_body = NewRoute,
    responses(
        (status = 201, description = "The route", body = serde_json::Value),
        super::openapi::BadInput,
        super::openapi::Exists,
    )
)]
async fn add_route(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    req: Result<Json<Value>, JsonRejection>,
) -> Result<(StatusCode, Json<Value>), GatewayError> {
    authorize(&state, &headers)?;
    let NewRoute { model, spec } = serde_json::from_value(body(req)?)
        .map_err(|e| GatewayError::BadRequest(format!("Bad route: {e}")))?;
    let model = model.trim().to_string();
    let name = model.clone();
    let gw = apply(&state, move |doc| doc.add_route(&name, &spec)).await?;
    let r = find_route(&gw, &model)?;
    Ok((StatusCode::CREATED, Json(route_json(&state, &gw, &r))))
}

#[utoipa::path(
    put,
    path = "/api/routes/{model}",
    tag = "Routes",
    summary = "Replaces a route's targets, primary first, and its cross-bucket rule; targets that stay keep their price overrides",
    request_body = RouteSpec,
    params(
        ("model" = String, Path),
    ),
    responses(
        (status = 200, description = "The route", body = serde_json::Value),
        super::openapi::BadInput,
        super::openapi::NotFound,
    )
)]
async fn edit_route(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    Path(model): Path<String>,
    req: Result<Json<RouteSpec>, JsonRejection>,
) -> Result<Json<Value>, GatewayError> {
    authorize(&state, &headers)?;
    let spec = body(req)?;
    let name = model.clone();
    let gw = apply(&state, move |doc| doc.edit_route(&name, &spec)).await?;
    let r = find_route(&gw, &model)?;
    Ok(Json(route_json(&state, &gw, &r)))
}

#[utoipa::path(
    delete,
    path = "/api/routes/{model}",
    tag = "Routes",
    summary = "Removes a route",
    params(
        ("model" = String, Path),
    ),
    responses(
        (status = 200, description = "Removed", body = serde_json::Value),
        super::openapi::NotFound,
    )
)]
async fn remove_route(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    Path(model): Path<String>,
) -> Result<Json<Value>, GatewayError> {
    authorize(&state, &headers)?;
    let name = model.clone();
    apply(&state, move |doc| doc.remove_route(&name)).await?;
    Ok(Json(json!({ "model": model, "removed": true })))
}

#[derive(Deserialize)]
struct DryRunQuery {
    model: Option<String>,
}

/// Why a target would be passed over now, without a key in view (a key's
/// own scope and budget can pass over more).
fn pass_over(
    state: &AppState,
    gw: &Gateway,
    route: &Route,
    i: usize,
    t: &Target,
) -> Option<String> {
    let bucket = t.channel.bucket;
    if i > 0 && !route.cross_bucket && Some(bucket) != route.bucket() {
        return Some(format!(
            "paid from {}, and the route does not allow cross-bucket fallback",
            bucket.title()
        ));
    }
    match t.channel.secret() {
        ResolvedSecret::Missing(why) | ResolvedSecret::Unavailable(why) => return Some(why),
        _ => {}
    }
    let balance = state.core.ledger.balance(bucket);
    if t.price.is_some()
        && balance <= 0
        && gw.config.buckets.get(bucket).on_empty == crate::config::OnEmpty::Block
    {
        return Some(format!(
            "{} is empty ({} {}) and set to block",
            bucket.title(),
            format_micro(balance),
            state.core.ledger.currency(bucket)
        ));
    }
    if gw.circuit_state(&t.channel.id, &t.model) == CircuitState::Open
        && gw
            .circuit_retry_in(&t.channel.id, &t.model, Instant::now())
            .is_some_and(|d| !d.is_zero())
        && i + 1 < route.targets.len()
    {
        return Some("its circuit is open after repeated failures".into());
    }
    None
}

/// "Which target would serve this model now, and at what price."
#[utoipa::path(
    get,
    path = "/api/dry-run",
    tag = "Routes",
    summary = "Which target would serve this model now, at what price, and why others are passed over",
    params(
        ("model" = String, Query),
    ),
    responses(
        (status = 200, description = "The target that would serve, or why none", body = serde_json::Value),
        super::openapi::BadInput,
    )
)]
async fn dry_run(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    q: Result<Query<DryRunQuery>, QueryRejection>,
) -> Result<Json<Value>, GatewayError> {
    authorize(&state, &headers)?;
    let model = query(q)?
        .model
        .map(|m| m.trim().to_string())
        .filter(|m| !m.is_empty())
        .ok_or_else(|| {
            GatewayError::BadRequest("`model` is required: /api/dry-run?model=NAME".into())
        })?;
    let gw = state.gateway();
    let Some(route) = gw.resolve(&model) else {
        return Ok(Json(json!({
            "model": model,
            "route": null,
            "passthrough": false,
            "target": null,
            "skipped": [],
            "reason": format!("No route serves `{model}` and no channel's `models` globs match it: a request would get 404."),
        })));
    };
    let mut skipped = Vec::new();
    let mut chosen = None;
    for (i, t) in route.targets.iter().enumerate() {
        match pass_over(&state, &gw, &route, i, t) {
            Some(reason) => {
                skipped.push(json!({"channel": t.channel.id, "model": t.model, "reason": reason}))
            }
            None => {
                chosen = Some(i);
                break;
            }
        }
    }
    let reason = match chosen {
        Some(0) => format!(
            "The primary target serves it, paid from {}.",
            route.targets[0].channel.bucket.title()
        ),
        Some(i) => format!(
            "Backup {} serves it ({} passed over), paid from {}.",
            i,
            if i == 1 {
                "the primary is"
            } else {
                "earlier targets are"
            },
            route.targets[i].channel.bucket.title()
        ),
        None => "No target can serve it now: a request would fail.".to_string(),
    };
    Ok(Json(json!({
        "model": model,
        "route": route.model,
        "passthrough": route.passthrough,
        "target": chosen.map(|i| target_json(&state, &gw, &route, i)),
        "skipped": skipped,
        "reason": reason,
    })))
}

/// Every explicit route's targets: the last hour, circuits and secrets.
#[utoipa::path(
    get,
    path = "/api/health",
    tag = "Routes",
    summary = "Per target over the last hour: success rate, p50/p95, circuit, last error, secret state, model mismatches",
    responses(
        (status = 200, description = "Targets' health", body = serde_json::Value),
    )
)]
async fn health(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
) -> Result<Json<Value>, GatewayError> {
    authorize(&state, &headers)?;
    let gw = state.gateway();
    let targets: Vec<Value> = gw
        .routes()
        .flat_map(|r| {
            r.targets
                .iter()
                .enumerate()
                .map(|(i, t)| health_json(&state, &gw, &r.model, i, t))
                .collect::<Vec<_>>()
        })
        .collect();
    Ok(Json(json!({
        "window_ms": crate::routing::health::WINDOW.as_millis() as u64,
        "targets": targets,
    })))
}

struct Preset {
    id: &'static str,
    label: &'static str,
    kind: &'static str,
    brand: &'static str,
    base_url: Option<&'static str>,
    bucket: Bucket,
    needs_key: bool,
    models: &'static [&'static str],
    local_port: Option<u16>,
}

/// The providers the app offers to add in one step.
const PRESETS: &[Preset] = &[
    Preset {
        id: "openai",
        label: "OpenAI",
        kind: "openai",
        brand: "OpenAI",
        base_url: None,
        bucket: Bucket::Credit,
        needs_key: true,
        models: &[],
        local_port: None,
    },
    Preset {
        id: "anthropic",
        label: "Anthropic",
        kind: "anthropic",
        brand: "Anthropic",
        base_url: None,
        bucket: Bucket::Credit,
        needs_key: true,
        models: &[],
        local_port: None,
    },
    Preset {
        id: "gemini",
        label: "Google Gemini",
        kind: "gemini",
        brand: "Google",
        base_url: None,
        bucket: Bucket::Credit,
        needs_key: true,
        models: &[],
        local_port: None,
    },
    Preset {
        id: "deepseek",
        label: "DeepSeek",
        kind: "openai-compatible",
        brand: "DeepSeek",
        base_url: Some("https://api.deepseek.com/v1"),
        bucket: Bucket::Credit,
        needs_key: true,
        models: &["deepseek-*"],
        local_port: None,
    },
    Preset {
        id: "openrouter",
        label: "OpenRouter",
        kind: "openai-compatible",
        brand: "OpenRouter",
        base_url: Some("https://openrouter.ai/api/v1"),
        bucket: Bucket::Wallet,
        needs_key: true,
        models: &[],
        local_port: None,
    },
    Preset {
        id: "ollama",
        label: "Ollama (local)",
        kind: "openai-compatible",
        brand: "Ollama",
        base_url: Some("http://127.0.0.1:11434/v1"),
        bucket: Bucket::Wallet,
        needs_key: false,
        models: &["*"],
        local_port: Some(11434),
    },
    Preset {
        id: "lmstudio",
        label: "LM Studio (local)",
        kind: "openai-compatible",
        brand: "LM Studio",
        base_url: Some("http://127.0.0.1:1234/v1"),
        bucket: Bucket::Wallet,
        needs_key: false,
        models: &["*"],
        local_port: Some(1234),
    },
    Preset {
        id: "custom",
        label: "Other OpenAI-compatible service",
        kind: "openai-compatible",
        brand: "",
        base_url: None,
        bucket: Bucket::Wallet,
        needs_key: true,
        models: &[],
        local_port: None,
    },
];

#[utoipa::path(
    get,
    path = "/api/presets",
    tag = "Channels",
    summary = "Providers that can be added in one step",
    responses(
        (status = 200, description = "Presets", body = serde_json::Value),
    )
)]
async fn presets(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
) -> Result<Json<Value>, GatewayError> {
    authorize(&state, &headers)?;
    let list: Vec<Value> = PRESETS
        .iter()
        .map(|p| {
            json!({
                "id": p.id,
                "label": p.label,
                "type": p.kind,
                "brand": p.brand,
                "base_url": p.base_url,
                "bucket": p.bucket.as_str(),
                "secret": if p.needs_key { "keyring" } else { "none" },
                "models": p.models,
                "local": p.local_port.is_some(),
            })
        })
        .collect();
    Ok(Json(json!({ "presets": list })))
}

/// Looks for Ollama and LM Studio on their usual ports.
#[utoipa::path(
    get,
    path = "/api/local-servers",
    tag = "Channels",
    summary = "Looks for Ollama (11434) and LM Studio (1234) on this machine",
    responses(
        (status = 200, description = "What answered", body = serde_json::Value),
    )
)]
async fn local_servers(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
) -> Result<Json<Value>, GatewayError> {
    authorize(&state, &headers)?;
    let http = reqwest::Client::builder()
        .timeout(DETECT_TIMEOUT)
        .no_proxy()
        .build()
        .map_err(internal)?;
    let checks = PRESETS.iter().filter_map(|p| {
        let base = p.base_url?;
        p.local_port?;
        let http = http.clone();
        Some(async move {
            let found = match http.get(format!("{base}/models")).send().await {
                Ok(r) if r.status().is_success() => r.json::<Value>().await.ok().map(|v| {
                    v["data"]
                        .as_array()
                        .map(|a| {
                            a.iter()
                                .filter_map(|m| m["id"].as_str().map(String::from))
                                .collect::<Vec<_>>()
                        })
                        .unwrap_or_default()
                }),
                _ => None,
            };
            json!({
                "preset": p.id,
                "base_url": base,
                "reachable": found.is_some(),
                "models": found.unwrap_or_default(),
            })
        })
    });
    let servers = futures_util::future::join_all(checks).await;
    Ok(Json(json!({ "servers": servers })))
}

#[utoipa::path(
    post,
    path = "/api/pause",
    tag = "Gateway",
    summary = "Stops forwarding /v1 requests (they get 503 gateway_paused); /api stays up",
    responses(
        (status = 200, description = "Paused", body = serde_json::Value),
    )
)]
async fn pause(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
) -> Result<Json<Value>, GatewayError> {
    authorize(&state, &headers)?;
    state.set_paused(true);
    Ok(Json(json!({ "paused": true })))
}

#[utoipa::path(
    post,
    path = "/api/resume",
    tag = "Gateway",
    summary = "Forwards /v1 requests again",
    responses(
        (status = 200, description = "Resumed", body = serde_json::Value),
    )
)]
async fn resume(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
) -> Result<Json<Value>, GatewayError> {
    authorize(&state, &headers)?;
    state.set_paused(false);
    Ok(Json(json!({ "paused": false })))
}
