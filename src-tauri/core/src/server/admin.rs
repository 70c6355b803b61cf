//! The management API under `/api`, which the desktop app and the web UI
//! build on.
//!
//! It opens only to the admin token (`Authorization: Bearer sya-…`), never
//! to a gateway key, and the admin token never opens `/v1`. Only the
//! token's SHA-256 is held here, and it is compared in constant time.

use std::sync::Arc;

use axum::extract::State;
use axum::http::HeaderMap;
use axum::routing::get;
use axum::{Json, Router};
use secrecy::{ExposeSecret, SecretString};
use serde_json::{json, Value};
use subtle::ConstantTimeEq;

use super::{bearer_token, AppState, GatewayError};
use crate::config::Bucket;
use crate::keys::hash_key;

/// The admin token, as the server checks it.
pub struct AdminToken {
    hash: [u8; 32],
}

impl AdminToken {
    pub fn new(token: &SecretString) -> AdminToken {
        AdminToken {
            hash: hash_key(token.expose_secret()),
        }
    }

    pub fn matches(&self, presented: &str) -> bool {
        bool::from(hash_key(presented).ct_eq(&self.hash))
    }
}

pub fn routes() -> Router<Arc<AppState>> {
    Router::new().route("/api/status", get(status))
}

pub(super) fn authorize(state: &AppState, headers: &HeaderMap) -> Result<(), GatewayError> {
    match bearer_token(headers) {
        Some(token) if state.admin.matches(token) => Ok(()),
        _ => Err(GatewayError::AdminTokenRequired),
    }
}

/// What this gateway is: version, address, size, and the balances.
#[utoipa::path(
    get,
    path = "/api/status",
    tag = "Gateway",
    summary = "What this gateway is: version, address, paused, balances",
    responses(
        (status = 200, description = "Status", body = serde_json::Value),
    )
)]
async fn status(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
) -> Result<Json<Value>, GatewayError> {
    authorize(&state, &headers)?;
    let balances: Vec<Value> = Bucket::ALL
        .iter()
        .map(|&bucket| super::api::bucket_json(&state, bucket))
        .collect();
    Ok(Json(json!({
        "version": env!("CARGO_PKG_VERSION"),
        "listen": state.listen.to_string(),
        "channels": state.gateway().channels().len(),
        "routes": state.gateway().config.routes.len(),
        "paused": state.paused(),
        "balances": balances,
    })))
}
