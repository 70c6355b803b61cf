//! The attempt loop: try a route's targets in order under the failure
//! semantics of DESIGN.md §5, until one answers, the request's own fault is
//! relayed, or every target has failed and the client gets a summary.
//!
//! Nothing reaches the client before an attempt has succeeded (for streams:
//! before the first token), so every failure up to then can still be retried
//! or failed over.

use std::time::{Duration, Instant};

use bytes::Bytes;
use futures_util::StreamExt;
use http::StatusCode;
use secrecy::SecretString;
use serde_json::{Map, Value};
use tokio::time::timeout_at;

use super::failure::{retry_after, Failure, Next, TimeoutKind, MAX_ATTEMPTS_PER_TARGET};
use super::stream::StreamStart;
use super::{Admission, Gateway, Route, Target};
use crate::keys::GatewayKey;
use crate::ledger::{Ledger, Refusal};
use crate::providers::{ChatCall, ChatReply, ErrorMeaning, NativeRequest, ReplyError, SseParser};
use crate::record::{AttemptOutcome, AttemptRecord, RecordGuard, ServedBy};
use crate::request::GatewayError;
use crate::secrets::{scrub, ResolvedSecret};

/// Largest upstream error body read (the rest is dropped).
const MAX_ERROR_BODY: usize = 64 * 1024;

/// What the client asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CallKind {
    Chat,
    Embeddings,
}

/// One request on its route, as the request path hands it to the attempt
/// loop.
pub struct Dispatch<'a> {
    pub kind: CallKind,
    pub route: &'a Route,
    /// The request in the canonical (OpenAI chat) shape.
    pub body: &'a Map<String, Value>,
    /// The client's own request (Anthropic Messages, Gemini), when it sent one: a
    /// provider that speaks its format natively gets it as it is.
    pub native: Option<NativeRequest<'a>>,
    pub stream: bool,
    /// The client itself asked for the usage chunk.
    pub client_wants_usage: bool,
    pub key: &'a GatewayKey,
    /// Admission checks: balances and key budgets.
    pub ledger: &'a Ledger,
    /// Told each time an attempt begins.
    pub progress: Option<&'a tokio::sync::mpsc::UnboundedSender<AttemptStarted>>,
    /// Only the route's target on this channel: no failover, and its own
    /// bucket pays (a comparison of routes, a pinned evaluation).
    pub pin: Option<&'a str>,
}

impl Dispatch<'_> {
    /// Left out by the pin: not part of this request at all.
    fn pinned_out(&self, target: &Target) -> bool {
        self.pin.is_some_and(|p| p != target.channel.id)
    }
}

/// An attempt at a target is about to be made.
#[derive(Debug, Clone, serde::Serialize)]
pub struct AttemptStarted {
    pub channel: String,
    pub upstream_model: String,
    /// 0 for the primary, 1 for the first backup, …
    pub target_index: usize,
    /// 1 for the first attempt at this target, 2 for its first retry, …
    pub attempt: u32,
}

/// A successful start: a whole answer, or a stream past its first token.
pub enum Answer {
    Whole(ChatReply),
    Stream(StreamStart),
}

/// Why a target is not eligible for this request at all.
fn ineligible(call: &Dispatch<'_>, index: usize, target: &Target) -> Option<&'static str> {
    let bucket = target.channel.bucket;
    if !call.key.allows_bucket(bucket) {
        return Some("bucket_not_allowed_for_key");
    }
    if index > 0
        && call.pin.is_none()
        && !call.route.cross_bucket
        && Some(bucket) != call.route.bucket()
    {
        return Some("other_bucket");
    }
    None
}

fn skipped(index: usize, target: &Target, reason: &'static str, at: Duration) -> AttemptRecord {
    AttemptRecord {
        channel: target.channel.id.clone(),
        upstream_model: target.model.clone(),
        bucket: target.channel.bucket,
        target_index: index,
        outcome: AttemptOutcome::Skipped { reason },
        started: at,
        duration: Duration::ZERO,
    }
}

pub async fn execute(
    gw: &Gateway,
    call: &Dispatch<'_>,
    guard: &mut RecordGuard,
) -> Result<Answer, GatewayError> {
    let route = call.route;
    let begun = guard.started();
    let deadline = begun + gw.total_timeout(route);
    let targets = &route.targets;

    if targets
        .iter()
        .filter(|t| !call.pinned_out(t))
        .all(|t| !call.key.allows_bucket(t.channel.bucket))
    {
        return Err(GatewayError::BucketNotAllowed {
            key: call.key.name.clone(),
            model: route.model.clone(),
            allowed: call.key.buckets_display(),
        });
    }

    let mut last: Option<Failure> = None;
    let mut refusal: Option<Refusal> = None;
    let mut hints: Vec<String> = Vec::new();
    'targets: for (index, target) in targets.iter().enumerate() {
        if call.pinned_out(target) {
            continue;
        }
        let rec_at = begun.elapsed();
        if let Some(reason) = ineligible(call, index, target) {
            guard
                .rec()
                .attempts
                .push(skipped(index, target, reason, rec_at));
            continue;
        }
        let has_backup = targets
            .iter()
            .enumerate()
            .skip(index + 1)
            .any(|(i, t)| !call.pinned_out(t) && ineligible(call, i, t).is_none());

        let secret = match target.channel.secret() {
            ResolvedSecret::Present(s) => Some(s),
            ResolvedSecret::NotNeeded => None,
            ResolvedSecret::Missing(why) | ResolvedSecret::Unavailable(why) => {
                guard
                    .rec()
                    .attempts
                    .push(skipped(index, target, "no_secret", rec_at));
                hints.push(why);
                last = Some(Failure::NoSecret);
                continue;
            }
        };

        // The paying bucket must be able to pay (priced targets), and the
        // key's budget must not be spent — checked before any upstream call.
        match call
            .ledger
            .check(call.key, target.channel.bucket, target.price.is_some())
        {
            Ok(Some(warning)) => guard.rec().warnings.push(warning),
            Ok(None) => {}
            Err(r) => {
                let reason = match r {
                    Refusal::Empty { .. } => "bucket_empty",
                    Refusal::Budget { .. } => "budget_exhausted",
                };
                guard
                    .rec()
                    .attempts
                    .push(skipped(index, target, reason, rec_at));
                refusal = Some(r);
                continue;
            }
        }

        // An open circuit is skipped while another target remains; the
        // last eligible target is always tried.
        if gw.admit(target, Instant::now()) == Admission::Skip && has_backup {
            guard
                .rec()
                .attempts
                .push(skipped(index, target, "circuit_open", rec_at));
            last = Some(Failure::Server { status: 503 });
            continue;
        }

        for attempt_no in 1..=MAX_ATTEMPTS_PER_TARGET {
            let now = Instant::now();
            if now >= deadline {
                last = Some(Failure::Timeout(TimeoutKind::Total));
                break 'targets;
            }
            if let Some(progress) = call.progress {
                let _ = progress.send(AttemptStarted {
                    channel: target.channel.id.clone(),
                    upstream_model: target.model.clone(),
                    target_index: index,
                    attempt: attempt_no,
                });
            }
            let started = begun.elapsed();
            let result = attempt(gw, call, target, secret.as_ref(), has_backup, deadline).await;
            let duration = begun.elapsed().saturating_sub(started);
            let outcome = match &result {
                Ok(_) => AttemptOutcome::Ok { status: 200 },
                Err(f) => f.outcome(),
            };
            guard.rec().attempts.push(AttemptRecord {
                channel: target.channel.id.clone(),
                upstream_model: target.model.clone(),
                bucket: target.channel.bucket,
                target_index: index,
                outcome,
                started,
                duration,
            });
            let failure = match result {
                Ok(answer) => {
                    gw.circuit_success(target);
                    gw.secret_accepted(&target.channel);
                    let rec = guard.rec();
                    rec.served_by = Some(ServedBy {
                        channel: target.channel.id.clone(),
                        brand: target.channel.brand.clone(),
                        upstream_model: target.model.clone(),
                        bucket: target.channel.bucket,
                        target_index: index,
                        cross_bucket: call.pin.is_none()
                            && Some(target.channel.bucket) != route.bucket(),
                        price: target.price.clone(),
                    });
                    match &answer {
                        Answer::Whole(reply) => {
                            rec.answered_model =
                                Some(reply.model.clone().unwrap_or_else(|| target.model.clone()));
                            rec.usage = reply.usage;
                        }
                        Answer::Stream(s) => {
                            rec.ttft = Some(begun.elapsed());
                            rec.answered_model = Some(
                                s.decoder
                                    .model()
                                    .map_or_else(|| target.model.clone(), str::to_string),
                            );
                        }
                    }
                    return Ok(answer);
                }
                Err(f) => f,
            };
            if failure.counts_against_target() {
                gw.circuit_failure(target, Instant::now());
            }
            if let Failure::KeyRejected { status } = failure {
                gw.secret_rejected(&target.channel, status);
                hints.push(format!(
                    "The provider rejected the secret of channel `{}` ({status}); store a new one \
                     with `switchyard secret set {}`.",
                    target.channel.id, target.channel.id
                ));
            }
            if let Failure::Redirected { status } = failure {
                hints.push(format!(
                    "Channel `{}` answered with a redirect ({status}), which Switchyard does not \
                     follow; check its base_url.",
                    target.channel.id
                ));
            }
            let remaining = deadline.saturating_duration_since(Instant::now());
            match failure.next(attempt_no, has_backup, remaining) {
                Next::Retry(wait) => tokio::time::sleep(wait).await,
                Next::Failover => {
                    last = Some(failure);
                    continue 'targets;
                }
                Next::Relay => {
                    if let Failure::Client { status, body } = failure {
                        return Err(GatewayError::Upstream {
                            status: StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_REQUEST),
                            body,
                        });
                    }
                }
            }
        }
    }
    Err(all_failed(guard, last, refusal, hints))
}

/// The error for a request no target could serve.
fn all_failed(
    guard: &mut RecordGuard,
    last: Option<Failure>,
    refusal: Option<Refusal>,
    mut hints: Vec<String>,
) -> GatewayError {
    let rec = guard.rec();
    if let Some(r) = refusal {
        // Refused before any upstream call: that is the whole answer.
        if rec.attempts_made() == 0 {
            let message = format!("{} (request id {})", r.message(), rec.request_id);
            rec.error = Some(message.clone());
            return match r {
                Refusal::Empty { .. } => GatewayError::BalanceEmpty(message),
                Refusal::Budget { .. } => GatewayError::BudgetExhausted(message),
            };
        }
        hints.push(r.message());
    }
    let (status, verb) = match &last {
        // Every target found the prompt too long: that is the answer.
        Some(Failure::ContextLength { status, body }) => {
            return GatewayError::Upstream {
                status: StatusCode::from_u16(*status).unwrap_or(StatusCode::BAD_REQUEST),
                body: body.clone(),
            };
        }
        // No target's channel type can do this (embeddings on Anthropic):
        // the request does not fit the model, whatever is retried.
        Some(Failure::Unsupported) if rec.attempts_made() == 0 => {
            let message = format!(
                "Model `{}` cannot serve this kind of request: {}. Route it to a channel type that \
                 supports it. (request id {})",
                rec.requested_model,
                rec.route_walk(),
                rec.request_id
            );
            rec.error = Some(message.clone());
            return GatewayError::BadRequest(message);
        }
        Some(Failure::Timeout(_)) => (StatusCode::GATEWAY_TIMEOUT, "timed out"),
        Some(Failure::RateLimited { .. }) | Some(Failure::NoSecret) | None => {
            (StatusCode::SERVICE_UNAVAILABLE, "is unavailable")
        }
        Some(Failure::Server { status: 503 })
            if rec
                .attempts
                .iter()
                .all(|a| matches!(a.outcome, AttemptOutcome::Skipped { .. })) =>
        {
            (StatusCode::SERVICE_UNAVAILABLE, "is unavailable")
        }
        Some(_) => (StatusCode::BAD_GATEWAY, "failed"),
    };
    let mut summary = format!(
        "Every target for model `{}` {verb}: {}.",
        rec.requested_model,
        rec.route_walk()
    );
    for h in &hints {
        summary.push(' ');
        summary.push_str(h);
    }
    summary.push_str(&format!(" (request id {})", rec.request_id));
    rec.error = Some(summary.clone());
    GatewayError::AllTargetsFailed { status, summary }
}

fn classify(e: &reqwest::Error) -> Failure {
    if e.is_connect() {
        if e.is_timeout() {
            Failure::Timeout(TimeoutKind::Connect)
        } else {
            Failure::Connect
        }
    } else if e.is_timeout() {
        Failure::Timeout(TimeoutKind::FirstByte)
    } else {
        Failure::Broken
    }
}

async fn read_capped(mut resp: reqwest::Response, until: Instant) -> Bytes {
    let mut out = Vec::new();
    while out.len() < MAX_ERROR_BODY {
        match timeout_at(until.into(), resp.chunk()).await {
            Ok(Ok(Some(chunk))) => out.extend_from_slice(&chunk),
            _ => break,
        }
    }
    out.truncate(MAX_ERROR_BODY);
    Bytes::from(out)
}

/// One HTTP call to one target.
async fn attempt(
    gw: &Gateway,
    call: &Dispatch<'_>,
    target: &Target,
    secret: Option<&SecretString>,
    has_backup: bool,
    deadline: Instant,
) -> Result<Answer, Failure> {
    let t = gw.timeouts(call.route, target);
    let start = Instant::now();
    let channel = &target.channel;
    let provider = &channel.provider;
    let native = match (call.kind, call.native.as_ref()) {
        (CallKind::Chat, Some(native)) => provider.native_request(
            &channel.http,
            &channel.base_url,
            secret,
            native,
            &target.model,
            call.stream,
        ),
        _ => None,
    };
    let is_native = native.is_some();
    let req = match (call.kind, native) {
        (_, Some(req)) => req,
        (CallKind::Chat, None) => provider.chat_request(
            &channel.http,
            &channel.base_url,
            secret,
            &ChatCall {
                body: call.body,
                upstream_model: &target.model,
                stream: call.stream,
            },
        ),
        (CallKind::Embeddings, None) => match provider.embeddings_request(
            &channel.http,
            &channel.base_url,
            secret,
            call.body,
            &target.model,
        ) {
            Some(req) => req,
            None => return Err(Failure::Unsupported),
        },
    };

    // Waiting for headers: the first-byte timeout, or for a stream with a
    // backup left, the (usually shorter) first-token timeout.
    let mut wait = (start + t.first_byte, TimeoutKind::FirstByte);
    if call.stream && has_backup && start + t.first_token < wait.0 {
        wait = (start + t.first_token, TimeoutKind::FirstToken);
    }
    if deadline < wait.0 {
        wait = (deadline, TimeoutKind::Total);
    }
    let resp = match timeout_at(wait.0.into(), req.send()).await {
        Err(_) => return Err(Failure::Timeout(wait.1)),
        Ok(Err(e)) => {
            let failure = classify(&e);
            tracing::debug!(channel = %channel.id, error = %super::describe_http_error(e), "upstream request failed");
            return Err(failure);
        }
        Ok(Ok(r)) => r,
    };

    let status = resp.status().as_u16();
    if !resp.status().is_success() {
        let retry_after = retry_after(resp.headers());
        let until = (Instant::now() + Duration::from_secs(5)).min(deadline);
        let body = scrub(&read_capped(resp, until).await, secret);
        tracing::debug!(
            channel = %channel.id,
            status,
            body = %String::from_utf8_lossy(&body[..body.len().min(512)]),
            "upstream refused"
        );
        return Err(match status {
            300..=399 => Failure::Redirected { status },
            429 => Failure::RateLimited {
                retry_after: retry_after.or_else(|| provider.retry_delay(&body)),
            },
            401 | 403 => Failure::KeyRejected { status },
            400..=499 => match provider.error_meaning(status, &body) {
                ErrorMeaning::ContextLength => Failure::ContextLength {
                    status,
                    body: provider.client_error_body(body),
                },
                ErrorMeaning::KeyRejected => Failure::KeyRejected { status },
                ErrorMeaning::ClientError => Failure::Client {
                    status,
                    body: provider.client_error_body(body),
                },
            },
            _ => Failure::Server { status },
        });
    }

    if !call.stream {
        let body = match timeout_at(deadline.into(), resp.bytes()).await {
            Err(_) => return Err(Failure::Timeout(TimeoutKind::Total)),
            Ok(Err(_)) => return Err(Failure::Broken),
            Ok(Ok(b)) => b,
        };
        if call.kind == CallKind::Embeddings {
            return provider
                .embeddings_reply(body, &target.model)
                .map(Answer::Whole)
                .map_err(|why| {
                    tracing::warn!(channel = %channel.id, "{why}");
                    Failure::Malformed
                });
        }
        let reply = if is_native {
            provider.native_reply(body)
        } else {
            provider.chat_reply(body)
        };
        return reply.map(Answer::Whole).map_err(|e| match e {
            ReplyError::Malformed(why) => {
                tracing::warn!(channel = %channel.id, "{why}");
                Failure::Malformed
            }
            ReplyError::Refused(r) => Failure::Client {
                status: r.status,
                body: r.body,
            },
        });
    }

    // Streaming: hold everything back until the first token, so that a
    // silent or broken upstream can still be failed over.
    let mut body = resp.bytes_stream().boxed();
    let mut parser = SseParser::new();
    let mut decoder = match is_native
        .then(|| provider.native_stream_decoder())
        .flatten()
    {
        Some(d) => d,
        None => provider.stream_decoder(call.client_wants_usage),
    };
    let mut prelude = Vec::new();
    let mut events = Vec::new();
    let (token_deadline, kind) = if has_backup && start + t.first_token < deadline {
        (start + t.first_token, TimeoutKind::FirstToken)
    } else {
        (deadline, TimeoutKind::Total)
    };
    let mut ended = false;
    loop {
        match timeout_at(token_deadline.into(), body.next()).await {
            Err(_) => return Err(Failure::Timeout(kind)),
            Ok(Some(Err(_))) => return Err(Failure::Broken),
            Ok(Some(Ok(bytes))) => {
                if parser.push(&bytes, &mut events).is_err() {
                    return Err(Failure::Malformed);
                }
            }
            Ok(None) => {
                if parser.finish(&mut events).is_err() {
                    return Err(Failure::Malformed);
                }
                ended = true;
            }
        }
        let mut began = false;
        let mut done = false;
        for ev in events.drain(..) {
            let d = decoder.decode(&ev);
            if d.malformed {
                tracing::warn!(channel = %channel.id, "skipped a malformed upstream stream event");
                continue;
            }
            if let Some(r) = d.refused {
                return Err(Failure::Client {
                    status: r.status,
                    body: r.body,
                });
            }
            if let Some(message) = d.error {
                let message = scrub(message.as_bytes(), secret);
                tracing::debug!(channel = %channel.id, error = %String::from_utf8_lossy(&message), "upstream stream error before first token");
                return Err(Failure::StreamError);
            }
            prelude.extend(d.forward);
            began |= d.progress;
            done |= d.done;
        }
        if began || done {
            return Ok(Answer::Stream(StreamStart {
                prelude,
                body,
                parser,
                decoder,
                done,
                idle: t.idle,
                secret: secret.cloned(),
                channel: channel.id.clone(),
            }));
        }
        if ended {
            // Closed before any token: an empty answer only if the upstream
            // said it finished; otherwise it broke.
            return if decoder.finished() {
                Ok(Answer::Stream(StreamStart {
                    prelude,
                    body,
                    parser,
                    decoder,
                    done: true,
                    idle: t.idle,
                    secret: secret.cloned(),
                    channel: channel.id.clone(),
                }))
            } else {
                Err(Failure::Broken)
            };
        }
    }
}
