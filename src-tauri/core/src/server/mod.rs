//! The loopback HTTP server: the axum router and its shared state.
//!
//! [`router`] builds the whole API from an [`AppState`] so tests can drive
//! it without a socket; [`crate::app`] binds it to the configured address
//! and serves it with [`conn::serve`]. Every request passes the
//! [`guard`] first; a handler that panics answers an OpenAI-format 500
//! without the panic's message.

mod admin;
mod anthropic;
mod api;
mod chat_api;
pub mod conn;
mod error;
mod gemini;
mod guard;
mod ingress;
mod manage;
mod openai;
pub mod openapi;
mod refusals;
mod responses;
mod ui;

use std::borrow::Cow;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use axum::extract::DefaultBodyLimit;
use axum::http::{HeaderMap, Request};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{middleware, Json, Router};
use serde_json::json;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::trace::TraceLayer;

pub use crate::request::{ErrorBody, GatewayError};
pub use admin::AdminToken;
pub use error::AuthFailure;

use crate::keys::GatewayKey;
use crate::request::{new_request_id, Core};
use crate::routing::{Gateway, HealthBook};
use crate::secrets::SecretStore;

pub struct AppState {
    /// The request path: the compiled config (replaced whole when `/api`
    /// edits it), gateway keys, the ledger, the recorders.
    pub core: Arc<Core>,
    /// Conversations: the Chat view's feature, calling `core` in-process.
    pub chat: Arc<crate::chat::Chat>,
    /// The address the gateway listens on (the port is the bound one).
    pub listen: SocketAddr,
    /// Opens `/api`.
    pub admin: AdminToken,
    /// Where the database lives; `/api` handlers open their own
    /// connections to it off the async path.
    pub data_dir: PathBuf,
    /// Reads channel secrets when the config is edited; `/api` writes them.
    pub secrets: Arc<dyn SecretStore>,
    /// While set, `/v1` refuses requests (the tray's "Pause gateway").
    pub paused: AtomicBool,
    /// Per-target outcomes of the last hour, for the health view.
    pub health: Arc<HealthBook>,
    /// One config edit at a time.
    pub(crate) edits: tokio::sync::Mutex<()>,
}

impl AppState {
    /// The gateway as configured now. A request holds on to the one it
    /// started with, even if the config is edited meanwhile.
    pub fn gateway(&self) -> Arc<Gateway> {
        self.core.gateway()
    }

    pub fn paused(&self) -> bool {
        self.paused.load(Ordering::Relaxed)
    }

    /// Pauses or resumes `/v1`; the management API stays up.
    pub fn set_paused(&self, paused: bool) {
        if self.paused.swap(paused, Ordering::Relaxed) != paused {
            tracing::info!("gateway {}", if paused { "paused" } else { "resumed" });
        }
    }
}

pub fn router(state: Arc<AppState>) -> Router {
    let gateway = state.gateway();
    let max_body = gateway.config.server.max_body_bytes;
    let guard = Arc::new(guard::Guard::new(&gateway.config.server, state.listen));
    let refusals = Arc::new(refusals::Refusals::new(Arc::clone(&state)));
    let v1 = Router::new()
        .route("/v1/chat/completions", post(openai::chat_completions))
        .route("/v1/models", get(openai::list_models))
        .route("/v1/models/{model}", get(openai::retrieve_model))
        .route("/v1/embeddings", post(openai::embeddings))
        .route("/v1/responses", post(responses::create))
        .route(
            "/v1/responses/{id}",
            get(responses::kept_response).delete(responses::kept_response),
        )
        .route("/v1/messages", post(anthropic::messages))
        .route("/v1/messages/count_tokens", post(anthropic::count_tokens))
        .route("/v1beta/models", get(gemini::list_models))
        .route(
            "/v1beta/models/{model}",
            get(gemini::get_model).post(gemini::model_method),
        )
        .route_layer(middleware::from_fn_with_state(
            Arc::clone(&state),
            refuse_when_paused,
        ));
    Router::new()
        .route("/health", get(health))
        .route("/api/openapi.json", get(openapi::serve))
        .merge(v1)
        .merge(admin::routes())
        .merge(api::routes())
        .merge(chat_api::routes())
        .merge(manage::routes())
        .fallback(not_found)
        .layer(DefaultBodyLimit::max(max_body))
        .layer(middleware::from_fn_with_state(guard, guard::check))
        .layer(middleware::from_fn_with_state(refusals, refusals::record))
        .layer(CatchPanicLayer::custom(panicked))
        .layer(
            TraceLayer::new_for_http().make_span_with(|req: &Request<_>| {
                let path = req
                    .extensions()
                    .get::<axum::extract::MatchedPath>()
                    .map_or("unmatched", |p| p.as_str());
                tracing::debug_span!("http", method = %req.method(), path)
            }),
        )
        .with_state(state)
}

/// A handler panicked: the client gets the OpenAI-format 500, and neither
/// it nor the log line repeats the panic's message (it could hold data).
fn panicked(_payload: Box<dyn std::any::Any + Send + 'static>) -> Response {
    let request_id = new_request_id();
    tracing::error!(request_id = %request_id, "a request handler panicked");
    GatewayError::Internal(request_id).into_response()
}

/// While the gateway is paused, `/v1` answers 503 in the caller's format.
async fn refuse_when_paused(
    axum::extract::State(state): axum::extract::State<Arc<AppState>>,
    req: Request<axum::body::Body>,
    next: middleware::Next,
) -> Response {
    if !state.paused() {
        return next.run(req).await;
    }
    let err = GatewayError::Paused;
    if gemini::is_gemini_path(req.uri().path()) {
        err.into_gemini_response()
    } else if req.headers().contains_key("anthropic-version") {
        err.into_anthropic_response()
    } else {
        err.into_response()
    }
}

async fn health() -> Json<serde_json::Value> {
    Json(json!({"status": "ok", "version": env!("CARGO_PKG_VERSION")}))
}

async fn not_found(
    method: axum::http::Method,
    uri: axum::http::Uri,
    headers: HeaderMap,
) -> Response {
    if ui::is_ui_path(&method, uri.path()) {
        return ui::serve(&uri);
    }
    let err = GatewayError::UnknownEndpoint(format!("{method} {}", uri.path()));
    if gemini::is_gemini_path(uri.path()) {
        err.into_gemini_response()
    } else if headers.contains_key("anthropic-version") {
        err.into_anthropic_response()
    } else {
        err.into_response()
    }
}

/// The token of `Authorization: Bearer …`.
fn bearer_token(headers: &HeaderMap) -> Option<&str> {
    let v = headers
        .get(axum::http::header::AUTHORIZATION)?
        .to_str()
        .ok()?
        .trim();
    let token = v
        .strip_prefix("Bearer ")
        .or_else(|| v.strip_prefix("bearer "))?
        .trim();
    (!token.is_empty()).then_some(token)
}

/// The gateway key presented as `Authorization: Bearer …`, `x-api-key`,
/// `x-goog-api-key` (Gemini's SDKs), or in the URL's `query` as `key=`
/// (Gemini's REST convention). Never logged, never stored.
fn presented_key<'a>(headers: &'a HeaderMap, query: Option<&str>) -> Option<Cow<'a, str>> {
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::trim)
            .filter(|s| !s.is_empty())
    };
    if let Some(k) = bearer_token(headers)
        .or_else(|| header("x-api-key"))
        .or_else(|| header("x-goog-api-key"))
    {
        return Some(Cow::Borrowed(k));
    }
    // reqwest's URL type decodes the query; no key, no URL.
    let url = reqwest::Url::parse(&format!("http://localhost/?{}", query?)).ok()?;
    url.query_pairs()
        .find(|(name, _)| name == "key")
        .map(|(_, v)| Cow::<'a, str>::Owned(v.trim().to_string()))
        .filter(|k| !k.is_empty())
}

async fn authenticate(
    state: &AppState,
    headers: &HeaderMap,
) -> Result<Arc<GatewayKey>, GatewayError> {
    authenticate_presented(state, presented_key(headers, None)).await
}

async fn authenticate_presented(
    state: &AppState,
    presented: Option<Cow<'_, str>>,
) -> Result<Arc<GatewayKey>, GatewayError> {
    let presented = presented.ok_or(GatewayError::MissingKey)?;
    let presented = presented.as_ref();
    match state.core.keys.authenticate(presented).await {
        Some(key) => Ok(key),
        None if state.admin.matches(presented) => Err(GatewayError::AdminTokenIsNotAKey),
        None => Err(GatewayError::InvalidKey),
    }
}
