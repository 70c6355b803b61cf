//! Turning a [`GatewayError`] into an HTTP response, in OpenAI's format or
//! Anthropic's, with the headers some refusals carry.

use axum::http::HeaderValue;
use axum::response::{IntoResponse, Response};
use bytes::Bytes;

use crate::request::GatewayError;

/// Marks a response refusing a missing or wrong credential, so the
/// connection guard can count failures per client address.
#[derive(Debug, Clone, Copy)]
pub struct AuthFailure;

impl IntoResponse for GatewayError {
    fn into_response(self) -> Response {
        let body = self.openai_body();
        respond(self, body)
    }
}

impl GatewayError {
    /// This error as a response in Anthropic's format.
    pub fn into_anthropic_response(self) -> Response {
        let body = self.anthropic_body();
        respond(self, body)
    }
}

impl GatewayError {
    /// This error as a response in Gemini's format.
    pub fn into_gemini_response(self) -> Response {
        let body = self.gemini_body();
        respond(self, body)
    }
}

fn respond(err: GatewayError, body: Bytes) -> Response {
    let mut resp = (err.status(), body).into_response();
    let headers = resp.headers_mut();
    headers.insert(
        axum::http::header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    match err {
        GatewayError::TooManyAuthFailures { retry_after } => {
            headers.insert(axum::http::header::RETRY_AFTER, retry_after.into());
        }
        GatewayError::ClientTimeout { .. } => {
            headers.insert(
                axum::http::header::CONNECTION,
                HeaderValue::from_static("close"),
            );
        }
        GatewayError::MissingKey
        | GatewayError::InvalidKey
        | GatewayError::AdminTokenRequired
        | GatewayError::AdminTokenIsNotAKey => {
            resp.extensions_mut().insert(AuthFailure);
        }
        _ => {}
    }
    resp
}
