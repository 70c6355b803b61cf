//! The one error type of the request path.
//!
//! Every refusal a caller can get — bad input, a bad key, an unknown model,
//! an empty bucket, every target failing — is a [`GatewayError`], which
//! knows its HTTP status and renders itself in the caller's API format
//! (OpenAI or Anthropic error JSON). In-process callers (chat, research)
//! get the same value; the HTTP server only turns it into a response
//! (`server::error`). Nothing builds error bodies by hand, and messages
//! never carry secrets or internal detail.

use bytes::Bytes;
use http::StatusCode;
use serde_json::json;

#[derive(Debug, thiserror::Error)]
pub enum GatewayError {
    #[error("{0}")]
    BadRequest(String),
    #[error("We could not parse the JSON body of your request: {0}")]
    BadJson(String),
    #[error(
        "Missing API key. Send a Switchyard gateway key as `Authorization: Bearer sy-...`, \
         `x-api-key` or `x-goog-api-key`; create one with `switchyard key create NAME`."
    )]
    MissingKey,
    #[error(
        "Incorrect API key provided. Switchyard gateway keys start with `sy-`; list yours with \
         `switchyard key list` or create one with `switchyard key create NAME`."
    )]
    InvalidKey,
    #[error("The key `{key}` is not allowed to use model `{model}` (allowed: {allowed}).")]
    ModelNotAllowed {
        key: String,
        model: String,
        allowed: String,
    },
    #[error(
        "The key `{key}` may only spend from {allowed}, and no target of model `{model}` is paid \
         from that bucket."
    )]
    BucketNotAllowed {
        key: String,
        model: String,
        allowed: String,
    },
    #[error(
        "The model `{0}` does not exist on this gateway. GET /v1/models lists the models your \
         key can use; routes are configured in switchyard.toml."
    )]
    UnknownModel(String),
    /// The paying bucket is empty and set to block.
    #[error("{0}")]
    BalanceEmpty(String),
    /// The key's budget is spent.
    #[error("{0}")]
    BudgetExhausted(String),
    #[error(
        "Unknown endpoint {0}. This gateway serves POST /v1/chat/completions, POST /v1/responses, \
         POST /v1/embeddings, POST /v1/messages, POST /v1/messages/count_tokens, GET /v1/models, \
         and Gemini's POST /v1beta/models/{{model}}:generateContent (:streamGenerateContent?alt=sse, \
         :countTokens) and GET /v1beta/models."
    )]
    UnknownEndpoint(String),
    #[error("Request body is larger than the {limit}-byte limit (server.max_body_bytes).")]
    BodyTooLarge { limit: usize },
    /// An upstream refused the request for a reason that is the request's
    /// own (an ordinary 4xx): relayed with its status and meaning unchanged.
    #[error("upstream answered {status}")]
    Upstream { status: StatusCode, body: Bytes },
    /// Every target was tried (or skipped) and none answered.
    #[error("{summary}")]
    AllTargetsFailed { status: StatusCode, summary: String },
    #[error("Internal error in the gateway (request id {0}); see the Switchyard log.")]
    Internal(String),
    /// The `Host` is not a name this gateway answers to.
    #[error(
        "Host `{0}` is not allowed. Switchyard answers only requests addressed to 127.0.0.1, \
         localhost or [::1], so that a web page cannot reach it through a DNS name it controls \
         (DNS rebinding). Use http://127.0.0.1:PORT."
    )]
    HostNotAllowed(String),
    /// A browser request from a page whose origin is not allowed.
    #[error(
        "Requests from web pages at origin `{0}` are not allowed. If you trust that page, add \
         its origin to `allowed_origins` in the [server] table of switchyard.toml."
    )]
    OriginNotAllowed(String),
    #[error(
        "Too many requests with a missing or wrong key from this address; try again in \
         {retry_after} s. Requests with a valid key are not affected."
    )]
    TooManyAuthFailures { retry_after: u64 },
    #[error(
        "The request was not received within {seconds} s (server.client_timeout_s); the \
         connection is closed."
    )]
    ClientTimeout { seconds: f64 },
    #[error(
        "The management API (/api) needs the admin token: send `Authorization: Bearer sya-...`. \
         `switchyard serve` prints it at start-up (in the UI link); gateway keys (`sy-...`) do \
         not open /api."
    )]
    AdminTokenRequired,
    #[error(
        "The admin token opens only the management API (/api). Send a gateway key (`sy-...`) \
         here; create one with `switchyard key create NAME`."
    )]
    AdminTokenIsNotAKey,
    #[error(
        "Switchyard is paused: it is not forwarding requests. Resume it from the tray menu \
         (\"Resume gateway\") or the app."
    )]
    Paused,
    /// A management-API object (receipt, key, …) that does not exist.
    #[error("{0}")]
    NotFound(String),
    /// A management-API write that clashes with what exists.
    #[error("{0}")]
    Conflict(String),
}

/// Every refusal's body, in OpenAI's error shape (`/v1` and `/api`).
#[derive(serde::Serialize, utoipa::ToSchema)]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

#[derive(serde::Serialize, utoipa::ToSchema)]
pub struct ErrorDetail {
    /// What went wrong and what to do about it, in words.
    pub message: String,
    /// `invalid_request_error`, `permission_error`, `insufficient_quota`, …
    #[serde(rename = "type")]
    pub kind: &'static str,
    /// The request field at fault, if one is.
    pub param: Option<&'static str>,
    /// A stable machine-readable code, e.g. `model_not_found`.
    pub code: Option<&'static str>,
}

impl GatewayError {
    pub fn status(&self) -> StatusCode {
        match self {
            GatewayError::BadRequest(_) | GatewayError::BadJson(_) => StatusCode::BAD_REQUEST,
            GatewayError::MissingKey
            | GatewayError::InvalidKey
            | GatewayError::AdminTokenRequired
            | GatewayError::AdminTokenIsNotAKey => StatusCode::UNAUTHORIZED,
            GatewayError::HostNotAllowed(_) | GatewayError::OriginNotAllowed(_) => {
                StatusCode::FORBIDDEN
            }
            GatewayError::TooManyAuthFailures { .. } => StatusCode::TOO_MANY_REQUESTS,
            GatewayError::ClientTimeout { .. } => StatusCode::REQUEST_TIMEOUT,
            GatewayError::ModelNotAllowed { .. } | GatewayError::BucketNotAllowed { .. } => {
                StatusCode::FORBIDDEN
            }
            GatewayError::UnknownModel(_)
            | GatewayError::UnknownEndpoint(_)
            | GatewayError::NotFound(_) => StatusCode::NOT_FOUND,
            GatewayError::Conflict(_) => StatusCode::CONFLICT,
            GatewayError::BalanceEmpty(_) => StatusCode::PAYMENT_REQUIRED,
            GatewayError::BudgetExhausted(_) => StatusCode::TOO_MANY_REQUESTS,
            GatewayError::BodyTooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            GatewayError::Upstream { status, .. } => *status,
            GatewayError::AllTargetsFailed { status, .. } => *status,
            GatewayError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
            GatewayError::Paused => StatusCode::SERVICE_UNAVAILABLE,
        }
    }

    /// OpenAI's `error.type`.
    fn openai_type(&self) -> &'static str {
        match self {
            GatewayError::BadRequest(_)
            | GatewayError::BadJson(_)
            | GatewayError::MissingKey
            | GatewayError::InvalidKey
            | GatewayError::AdminTokenRequired
            | GatewayError::AdminTokenIsNotAKey
            | GatewayError::ClientTimeout { .. }
            | GatewayError::UnknownModel(_)
            | GatewayError::UnknownEndpoint(_)
            | GatewayError::BodyTooLarge { .. }
            | GatewayError::NotFound(_)
            | GatewayError::Conflict(_)
            | GatewayError::Upstream { .. } => "invalid_request_error",
            GatewayError::ModelNotAllowed { .. }
            | GatewayError::BucketNotAllowed { .. }
            | GatewayError::HostNotAllowed(_)
            | GatewayError::OriginNotAllowed(_) => "permission_error",
            GatewayError::TooManyAuthFailures { .. } => "rate_limit_error",
            GatewayError::AllTargetsFailed { .. } | GatewayError::Paused => "upstream_error",
            GatewayError::BalanceEmpty(_) | GatewayError::BudgetExhausted(_) => {
                "insufficient_quota"
            }
            GatewayError::Internal(_) => "server_error",
        }
    }

    /// OpenAI's `error.code`: a stable machine-readable name of the refusal.
    pub fn code(&self) -> Option<&'static str> {
        match self {
            GatewayError::BadJson(_) => Some("invalid_json"),
            GatewayError::MissingKey => Some("missing_api_key"),
            GatewayError::InvalidKey => Some("invalid_api_key"),
            GatewayError::ModelNotAllowed { .. } => Some("model_not_allowed"),
            GatewayError::BucketNotAllowed { .. } => Some("bucket_not_allowed"),
            GatewayError::UnknownModel(_) => Some("model_not_found"),
            GatewayError::UnknownEndpoint(_) => Some("unknown_url"),
            GatewayError::BodyTooLarge { .. } => Some("request_too_large"),
            GatewayError::BalanceEmpty(_) => Some("balance_empty"),
            GatewayError::BudgetExhausted(_) => Some("budget_exceeded"),
            GatewayError::HostNotAllowed(_) => Some("host_not_allowed"),
            GatewayError::OriginNotAllowed(_) => Some("origin_not_allowed"),
            GatewayError::TooManyAuthFailures { .. } => Some("too_many_auth_failures"),
            GatewayError::ClientTimeout { .. } => Some("request_timeout"),
            GatewayError::AdminTokenRequired => Some("admin_token_required"),
            GatewayError::AdminTokenIsNotAKey => Some("invalid_api_key"),
            GatewayError::NotFound(_) => Some("not_found"),
            GatewayError::Conflict(_) => Some("conflict"),
            GatewayError::Paused => Some("gateway_paused"),
            GatewayError::AllTargetsFailed { status, .. } => Some(match status.as_u16() {
                504 => "upstream_timeout",
                503 => "upstream_unavailable",
                _ => "upstream_failed",
            }),
            _ => None,
        }
    }

    fn param(&self) -> Option<&'static str> {
        match self {
            GatewayError::UnknownModel(_)
            | GatewayError::ModelNotAllowed { .. }
            | GatewayError::BucketNotAllowed { .. } => Some("model"),
            _ => None,
        }
    }

    /// The OpenAI-format JSON body of this error.
    pub fn openai_body(&self) -> Bytes {
        if let GatewayError::Upstream { body, .. } = self {
            return openai_error_passthrough(body);
        }
        let body = ErrorBody {
            error: ErrorDetail {
                message: self.to_string(),
                kind: self.openai_type(),
                param: self.param(),
                code: self.code(),
            },
        };
        Bytes::from(serde_json::to_vec(&body).unwrap_or_default())
    }
}

/// An upstream 4xx body, kept as is when it already is an OpenAI error
/// object, otherwise wrapped in one (trimmed, never raw HTML pages).
fn openai_error_passthrough(body: &Bytes) -> Bytes {
    if let Ok(v) = serde_json::from_slice::<serde_json::Value>(body) {
        if v.get("error").is_some_and(|e| e.is_object()) {
            return body.clone();
        }
    }
    let text = String::from_utf8_lossy(body);
    let mut message: String = text.trim().chars().take(500).collect();
    if message.is_empty() {
        message = "The upstream provider refused the request without a message.".into();
    }
    Bytes::from(
        json!({"error": {"message": message, "type": "invalid_request_error", "param": null, "code": null}})
            .to_string(),
    )
}

/// The human message of an upstream error body, whatever its format
/// (OpenAI's `error.message`, Anthropic's, Gemini's, or plain text).
fn upstream_message(body: &Bytes) -> String {
    if let Ok(v) = serde_json::from_slice::<serde_json::Value>(body) {
        if let Some(m) = v.pointer("/error/message").and_then(|m| m.as_str()) {
            return m.to_string();
        }
    }
    let text: String = String::from_utf8_lossy(body)
        .trim()
        .chars()
        .take(500)
        .collect();
    if text.is_empty() {
        "The upstream provider refused the request without a message.".into()
    } else {
        text
    }
}

impl GatewayError {
    /// Anthropic's `error.type` for this error's status.
    fn anthropic_type(&self) -> &'static str {
        match self.status().as_u16() {
            400 | 408 | 413 | 422 => "invalid_request_error",
            401 => "authentication_error",
            402 => "billing_error",
            403 => "permission_error",
            404 => "not_found_error",
            429 => "rate_limit_error",
            504 => "timeout_error",
            529 | 503 => "overloaded_error",
            _ => "api_error",
        }
    }

    /// The error in words for a person: for a refusal the upstream made,
    /// the provider's own message.
    pub fn describe(&self) -> String {
        match self {
            GatewayError::Upstream { status, body } => format!(
                "The provider refused the request ({}): {}",
                status.as_u16(),
                upstream_message(body)
            ),
            other => other.to_string(),
        }
    }

    /// The Anthropic-format JSON body of this error
    /// (`{"type":"error","error":{"type","message"}}`).
    pub fn anthropic_body(&self) -> Bytes {
        let message = match self {
            GatewayError::Upstream { body, .. } => upstream_message(body),
            other => other.to_string(),
        };
        Bytes::from(
            json!({"type": "error", "error": {"type": self.anthropic_type(), "message": message}})
                .to_string(),
        )
    }
}

impl GatewayError {
    /// Google's canonical status name for this error's HTTP status.
    ///
    /// An empty balance (402) has no Google equivalent; it keeps its 402,
    /// which Gemini clients do not retry (they retry 429 and 5xx with
    /// backoff, which would only delay the message), named
    /// `FAILED_PRECONDITION`: the request cannot run until the bucket is
    /// topped up.
    fn google_status(&self) -> &'static str {
        match self.status().as_u16() {
            400 | 413 | 422 => "INVALID_ARGUMENT",
            401 => "UNAUTHENTICATED",
            402 => "FAILED_PRECONDITION",
            403 => "PERMISSION_DENIED",
            404 => "NOT_FOUND",
            408 | 504 => "DEADLINE_EXCEEDED",
            409 => "ABORTED",
            429 => "RESOURCE_EXHAUSTED",
            499 => "CANCELLED",
            501 => "UNIMPLEMENTED",
            502 | 503 | 529 => "UNAVAILABLE",
            _ => "INTERNAL",
        }
    }

    /// The Gemini-format JSON body of this error
    /// (`{"error":{"code","message","status"}}`).
    pub fn gemini_body(&self) -> Bytes {
        let message = match self {
            GatewayError::Upstream { body, .. } => upstream_message(body),
            other => other.to_string(),
        };
        Bytes::from(
            json!({"error": {
                "code": self.status().as_u16(),
                "message": message,
                "status": self.google_status(),
            }})
            .to_string(),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gemini_errors_name_googles_status() {
        for (e, code, status) in [
            (GatewayError::BadJson("x".into()), 400, "INVALID_ARGUMENT"),
            (GatewayError::MissingKey, 401, "UNAUTHENTICATED"),
            (
                GatewayError::BalanceEmpty("top up".into()),
                402,
                "FAILED_PRECONDITION",
            ),
            (GatewayError::UnknownModel("m".into()), 404, "NOT_FOUND"),
            (
                GatewayError::BudgetExhausted("b".into()),
                429,
                "RESOURCE_EXHAUSTED",
            ),
            (GatewayError::Paused, 503, "UNAVAILABLE"),
            (GatewayError::Internal("req_1".into()), 500, "INTERNAL"),
        ] {
            let b: serde_json::Value = serde_json::from_slice(&e.gemini_body()).expect("json");
            assert_eq!(b["error"]["code"], code, "{e:?}");
            assert_eq!(b["error"]["status"], status, "{e:?}");
            assert_eq!(b["error"]["message"], e.to_string());
        }
        let upstream = GatewayError::Upstream {
            status: StatusCode::BAD_REQUEST,
            body: Bytes::from_static(
                br#"{"error":{"message":"bad schema","type":"invalid_request_error"}}"#,
            ),
        };
        let b: serde_json::Value = serde_json::from_slice(&upstream.gemini_body()).expect("json");
        assert_eq!(b["error"]["message"], "bad schema");
        assert_eq!(b["error"]["status"], "INVALID_ARGUMENT");
    }

    fn body(e: &GatewayError) -> serde_json::Value {
        serde_json::from_slice(&e.openai_body()).expect("valid json")
    }

    #[test]
    fn unknown_model_is_404_in_openai_shape_with_a_way_forward() {
        let e = GatewayError::UnknownModel("gpt-9".into());
        assert_eq!(e.status(), StatusCode::NOT_FOUND);
        let b = body(&e);
        assert_eq!(b["error"]["code"], "model_not_found");
        assert_eq!(b["error"]["type"], "invalid_request_error");
        assert!(b["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("GET /v1/models")));
    }

    #[test]
    fn upstream_openai_error_passes_through_unchanged() {
        let raw = Bytes::from_static(br#"{"error":{"message":"bad","type":"invalid_request_error","param":null,"code":"content_policy_violation"}}"#);
        let e = GatewayError::Upstream {
            status: StatusCode::BAD_REQUEST,
            body: raw.clone(),
        };
        assert_eq!(e.openai_body(), raw);
    }

    #[test]
    fn upstream_non_json_error_is_wrapped() {
        let e = GatewayError::Upstream {
            status: StatusCode::UNPROCESSABLE_ENTITY,
            body: Bytes::from_static(b"nope"),
        };
        assert_eq!(body(&e)["error"]["message"], "nope");
    }
}
