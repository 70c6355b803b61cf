//! How an attempt failed, and what the failure semantics of DESIGN.md §5
//! say to do next: retry the same target, fail over, or give the client
//! the upstream's answer.

use std::time::Duration;

use bytes::Bytes;
use rand::Rng;

use crate::record::AttemptOutcome;

/// Attempts per target before failing over.
pub const MAX_ATTEMPTS_PER_TARGET: u32 = 3;
/// While a backup remains, a `Retry-After` longer than this fails over
/// instead of waiting.
pub const MAX_RETRY_AFTER_WITH_BACKUP: Duration = Duration::from_secs(5);
/// First retry waits ~150–450 ms, the second ~300–900 ms.
const BACKOFF_BASE: Duration = Duration::from_millis(300);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TimeoutKind {
    Connect,
    FirstByte,
    FirstToken,
    Total,
}

#[derive(Debug)]
pub enum Failure {
    /// 429.
    RateLimited {
        retry_after: Option<Duration>,
    },
    /// 5xx (and Anthropic's 529).
    Server {
        status: u16,
    },
    /// 3xx: the upstream sent the request elsewhere. Redirects are not
    /// followed: an API call is a POST with the channel's secret in a
    /// header, and neither should go to a URL the config does not name.
    Redirected {
        status: u16,
    },
    /// 401/403: the channel's secret is wrong or lacks access.
    KeyRejected {
        status: u16,
    },
    /// The prompt does not fit this target.
    ContextLength {
        status: u16,
        body: Bytes,
    },
    /// Any other 4xx: the request's own fault.
    Client {
        status: u16,
        body: Bytes,
    },
    Timeout(TimeoutKind),
    /// Connection refused or could not be set up.
    Connect,
    /// The connection broke before the answer began (reset, cut, EOF).
    Broken,
    /// The upstream reported an error inside its stream before any token.
    StreamError,
    /// A 2xx that is not a valid answer.
    Malformed,
    /// The channel has no usable secret.
    NoSecret,
    /// The channel's provider type cannot do what was asked (embeddings on
    /// an Anthropic channel).
    Unsupported,
}

/// What to do after a failed attempt.
#[derive(Debug, PartialEq)]
pub enum Next {
    Retry(Duration),
    Failover,
    /// Relay this upstream answer to the client; no retry, no failover.
    Relay,
}

impl Failure {
    pub fn outcome(&self) -> AttemptOutcome {
        match self {
            Failure::RateLimited { .. } => AttemptOutcome::Http {
                status: 429,
                class: "rate_limited",
            },
            Failure::Server { status } => AttemptOutcome::Http {
                status: *status,
                class: "server_error",
            },
            Failure::Redirected { status } => AttemptOutcome::Http {
                status: *status,
                class: "redirected",
            },
            Failure::KeyRejected { status } => AttemptOutcome::Http {
                status: *status,
                class: "key_rejected",
            },
            Failure::ContextLength { status, .. } => AttemptOutcome::Http {
                status: *status,
                class: "context_length_exceeded",
            },
            Failure::Client { status, .. } => AttemptOutcome::Http {
                status: *status,
                class: "client_error",
            },
            Failure::Timeout(kind) => AttemptOutcome::Failed {
                class: match kind {
                    TimeoutKind::Connect => "connect_timeout",
                    TimeoutKind::FirstByte => "first_byte_timeout",
                    TimeoutKind::FirstToken => "first_token_timeout",
                    TimeoutKind::Total => "deadline_exceeded",
                },
            },
            Failure::Connect => AttemptOutcome::Failed {
                class: "connection_refused",
            },
            Failure::Broken => AttemptOutcome::Failed {
                class: "connection_broken",
            },
            Failure::StreamError => AttemptOutcome::Failed {
                class: "stream_error",
            },
            Failure::Malformed => AttemptOutcome::Failed {
                class: "malformed_response",
            },
            Failure::NoSecret => AttemptOutcome::Skipped {
                reason: "no_secret",
            },
            Failure::Unsupported => AttemptOutcome::Skipped {
                reason: "unsupported_by_channel_type",
            },
        }
    }

    /// Whether this failure says the target is unhealthy (circuit breaker).
    /// Request-specific refusals do not.
    pub fn counts_against_target(&self) -> bool {
        !matches!(
            self,
            Failure::Client { .. }
                | Failure::ContextLength { .. }
                | Failure::NoSecret
                | Failure::Unsupported
        )
    }

    /// The failure semantics: what to do after attempt number `attempt`
    /// (1-based) at a target failed this way, with `remaining` time before
    /// the request's deadline and whether a backup target is left.
    pub fn next(&self, attempt: u32, has_backup: bool, remaining: Duration) -> Next {
        let may_retry = attempt < MAX_ATTEMPTS_PER_TARGET;
        let retry_if_fits = |d: Duration| {
            if may_retry && d < remaining {
                Next::Retry(d)
            } else {
                Next::Failover
            }
        };
        match self {
            Failure::Client { .. } => Next::Relay,
            Failure::RateLimited {
                retry_after: Some(wait),
            } => {
                if has_backup && *wait > MAX_RETRY_AFTER_WITH_BACKUP {
                    Next::Failover
                } else {
                    retry_if_fits(*wait)
                }
            }
            Failure::RateLimited { retry_after: None }
            | Failure::Server { .. }
            | Failure::Connect
            | Failure::Broken
            | Failure::StreamError
            | Failure::Malformed => retry_if_fits(backoff(attempt)),
            // Retrying a silent target only multiplies the wait; a rejected
            // key, a redirect or a too-long prompt will not change on retry.
            Failure::Timeout(_)
            | Failure::Redirected { .. }
            | Failure::KeyRejected { .. }
            | Failure::ContextLength { .. }
            | Failure::NoSecret
            | Failure::Unsupported => Next::Failover,
        }
    }
}

/// Exponential backoff with jitter: base × 2^(attempt-1) × [0.5, 1.5).
pub fn backoff(attempt: u32) -> Duration {
    let exp = BACKOFF_BASE * 2u32.saturating_pow(attempt.saturating_sub(1)).min(16);
    exp.mul_f64(rand::thread_rng().gen_range(0.5..1.5))
}

/// Parses `Retry-After` (seconds, or an HTTP date) and OpenAI's
/// `retry-after-ms`.
pub fn retry_after(headers: &reqwest::header::HeaderMap) -> Option<Duration> {
    if let Some(ms) = headers
        .get("retry-after-ms")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<f64>().ok())
    {
        if ms.is_finite() && ms >= 0.0 {
            return Some(Duration::from_secs_f64(ms / 1000.0));
        }
    }
    let v = headers
        .get(reqwest::header::RETRY_AFTER)?
        .to_str()
        .ok()?
        .trim();
    if let Ok(secs) = v.parse::<f64>() {
        return (secs.is_finite() && secs >= 0.0).then(|| Duration::from_secs_f64(secs));
    }
    let at = httpdate::parse_http_date(v).ok()?;
    Some(
        at.duration_since(std::time::SystemTime::now())
            .unwrap_or(Duration::ZERO),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    const LOTS: Duration = Duration::from_secs(600);

    #[test]
    fn server_errors_retry_then_fail_over() {
        let f = Failure::Server { status: 503 };
        match f.next(1, true, LOTS) {
            Next::Retry(d) => assert!(d < Duration::from_secs(1), "first retry within ~1 s"),
            other => panic!("expected retry, got {other:?}"),
        }
        assert_eq!(f.next(MAX_ATTEMPTS_PER_TARGET, true, LOTS), Next::Failover);
    }

    #[test]
    fn retry_after_is_honoured_when_it_fits() {
        let short = Failure::RateLimited {
            retry_after: Some(Duration::from_secs(2)),
        };
        assert_eq!(
            short.next(1, true, LOTS),
            Next::Retry(Duration::from_secs(2))
        );
        assert_eq!(short.next(1, true, Duration::from_secs(1)), Next::Failover);
        let long = Failure::RateLimited {
            retry_after: Some(Duration::from_secs(30)),
        };
        assert_eq!(long.next(1, true, LOTS), Next::Failover);
        assert_eq!(
            long.next(1, false, LOTS),
            Next::Retry(Duration::from_secs(30))
        );
    }

    #[test]
    fn silent_targets_rejected_keys_and_long_prompts_fail_over_at_once() {
        for f in [
            Failure::Timeout(TimeoutKind::FirstByte),
            Failure::KeyRejected { status: 401 },
            Failure::ContextLength {
                status: 400,
                body: Bytes::new(),
            },
        ] {
            assert_eq!(f.next(1, true, LOTS), Next::Failover, "{f:?}");
        }
        let policy = Failure::Client {
            status: 400,
            body: Bytes::new(),
        };
        assert_eq!(policy.next(1, true, LOTS), Next::Relay);
        assert!(!policy.counts_against_target());
    }

    #[test]
    fn retry_after_header_forms() {
        let mut h = reqwest::header::HeaderMap::new();
        h.insert("retry-after", "3".parse().expect("hv"));
        assert_eq!(retry_after(&h), Some(Duration::from_secs(3)));
        h.insert("retry-after-ms", "250".parse().expect("hv"));
        assert_eq!(retry_after(&h), Some(Duration::from_millis(250)));
        let mut d = reqwest::header::HeaderMap::new();
        d.insert(
            "retry-after",
            "Wed, 21 Oct 2015 07:28:00 GMT".parse().expect("hv"),
        );
        assert_eq!(retry_after(&d), Some(Duration::ZERO));
    }

    #[test]
    fn backoff_grows_and_stays_jittered() {
        for _ in 0..50 {
            let b1 = backoff(1);
            assert!(b1 >= Duration::from_millis(150) && b1 < Duration::from_millis(450));
            let b2 = backoff(2);
            assert!(b2 >= Duration::from_millis(300) && b2 < Duration::from_millis(900));
        }
    }
}
