//! The loopback HTTP server: the axum router and its shared state.
//!
//! [`router`] builds the whole API from an [`AppState`] so tests can drive
//! it without a socket; [`crate::app`] binds it to the configured address.

mod error;
mod openai;

use std::sync::Arc;

use axum::extract::DefaultBodyLimit;
use axum::http::{HeaderMap, Request};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::json;
use tower_http::trace::TraceLayer;

pub use error::GatewayError;

use crate::keys::{GatewayKey, KeyCache};
use crate::ledger::Ledger;
use crate::routing::{Gateway, Recorder};

pub struct AppState {
    pub gateway: Arc<Gateway>,
    pub keys: Arc<KeyCache>,
    pub ledger: Arc<Ledger>,
    /// The ledger and the log line, and any others (tests).
    pub recorder: Arc<dyn Recorder>,
}

pub fn router(state: Arc<AppState>) -> Router {
    let max_body = state.gateway.config.server.max_body_bytes;
    Router::new()
        .route("/health", get(health))
        .route("/v1/chat/completions", post(openai::chat_completions))
        .route("/v1/models", get(openai::list_models))
        .fallback(not_found)
        .layer(DefaultBodyLimit::max(max_body))
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

async fn health() -> Json<serde_json::Value> {
    Json(json!({"status": "ok", "version": env!("CARGO_PKG_VERSION")}))
}

async fn not_found(uri: axum::http::Uri) -> GatewayError {
    GatewayError::BadRequest(format!(
        "Unknown endpoint {}. This gateway serves POST /v1/chat/completions and GET /v1/models.",
        uri.path()
    ))
}

/// The gateway key presented as `Authorization: Bearer …` or `x-api-key`.
fn presented_key(headers: &HeaderMap) -> Option<&str> {
    if let Some(v) = headers
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
    {
        let v = v.trim();
        if let Some(token) = v
            .strip_prefix("Bearer ")
            .or_else(|| v.strip_prefix("bearer "))
        {
            let token = token.trim();
            if !token.is_empty() {
                return Some(token);
            }
        }
    }
    headers
        .get("x-api-key")
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
        .filter(|s| !s.is_empty())
}

async fn authenticate(
    state: &AppState,
    headers: &HeaderMap,
) -> Result<Arc<GatewayKey>, GatewayError> {
    let presented = presented_key(headers).ok_or(GatewayError::MissingKey)?;
    state
        .keys
        .authenticate(presented)
        .await
        .ok_or(GatewayError::InvalidKey)
}
