//! What happened to one request: every attempt, which target served it,
//! its usage, the prices applied and its timings. Built while the request
//! runs and handed, once finished, to a [`Recorder`] — the structured log
//! line, the health book and the ledger.
//!
//! These are the facts providers, routing and the ledger share: providers
//! report [`Usage`], routing fills in the [`RequestRecord`], the ledger turns
//! it into a receipt. None of them imports another for these types.

mod price;
mod usage;

pub use price::{AppliedPrice, PriceSource, UnitPrices};
pub use usage::Usage;

use std::fmt::Write as _;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use serde::Serialize;

use crate::config::Bucket;

/// How one attempt ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum AttemptOutcome {
    /// The upstream answered (for streams: the first token arrived).
    Ok { status: u16 },
    /// An HTTP error from the upstream.
    Http { status: u16, class: &'static str },
    /// No HTTP answer: timeout, refused, reset, cut, malformed.
    Failed { class: &'static str },
    /// Not attempted.
    Skipped { reason: &'static str },
}

impl AttemptOutcome {
    /// A short phrase for summaries: "503", "timeout (first_byte)", "skipped: circuit open".
    pub fn short(&self) -> String {
        match self {
            AttemptOutcome::Ok { status } => format!("ok ({status})"),
            AttemptOutcome::Http { status, .. } => status.to_string(),
            AttemptOutcome::Failed { class } => class.replace('_', " "),
            AttemptOutcome::Skipped { reason } => format!("skipped: {}", reason.replace('_', " ")),
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct AttemptRecord {
    pub channel: String,
    pub upstream_model: String,
    pub bucket: Bucket,
    /// 0 for the primary, 1 for the first backup, …
    pub target_index: usize,
    pub outcome: AttemptOutcome,
    /// Since the request began.
    #[serde(serialize_with = "ms")]
    pub started: Duration,
    #[serde(serialize_with = "ms")]
    pub duration: Duration,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RequestStatus {
    Ok,
    Error,
    ClientCancelled,
    UpstreamCut,
    /// Turned away before any route was tried: bad JSON, an unknown model or
    /// endpoint, a wrong key, a key without that model in scope.
    Refused,
}

impl RequestStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            RequestStatus::Ok => "ok",
            RequestStatus::Error => "error",
            RequestStatus::ClientCancelled => "client_cancelled",
            RequestStatus::UpstreamCut => "upstream_cut",
            RequestStatus::Refused => "refused",
        }
    }
}

/// Who made a request: a client of the loopback port, or one of the app's
/// own features calling the same request path in-process (DESIGN.md §9).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Source {
    Api,
    Chat,
    Research,
    Eval,
}

impl Source {
    pub fn as_str(self) -> &'static str {
        match self {
            Source::Api => "api",
            Source::Chat => "chat",
            Source::Research => "research",
            Source::Eval => "eval",
        }
    }
}

/// The target that produced the answer.
#[derive(Debug, Clone, Serialize)]
pub struct ServedBy {
    pub channel: String,
    pub brand: String,
    pub upstream_model: String,
    pub bucket: Bucket,
    pub target_index: usize,
    /// Paid from a bucket other than the primary's (route allows it).
    pub cross_bucket: bool,
    /// The unit prices applied; `None` when the target is unpriced.
    pub price: Option<AppliedPrice>,
}

#[derive(Debug, Clone, Serialize)]
pub struct RequestRecord {
    pub request_id: String,
    #[serde(serialize_with = "unix_ms")]
    pub started_at: SystemTime,
    pub key_id: Option<i64>,
    pub key: Option<String>,
    pub project: Option<String>,
    /// Who asked.
    pub source: Source,
    /// The conversation, research run or eval run the request belongs to.
    pub run_id: Option<String>,
    /// What the request was for within its run: `answer`, `title`, `plan`, …
    pub step: Option<String>,
    pub requested_model: String,
    pub route: String,
    pub stream: bool,
    pub attempts: Vec<AttemptRecord>,
    pub served_by: Option<ServedBy>,
    /// The model the upstream says answered.
    pub answered_model: Option<String>,
    pub usage: Option<Usage>,
    pub usage_estimated: bool,
    #[serde(serialize_with = "opt_ms")]
    pub ttft: Option<Duration>,
    #[serde(serialize_with = "ms")]
    pub latency: Duration,
    pub status: RequestStatus,
    pub error: Option<String>,
    /// Said to the client in `x-switchyard-warning` (e.g. a negative balance).
    pub warnings: Vec<String>,
    /// Where an interrupted request would be charged: the primary target's
    /// bucket and price, and the prompt's estimated tokens.
    #[serde(skip)]
    pub provisional: Option<ServedBy>,
    /// Characters of prompt text, for estimating usage none was reported.
    #[serde(skip)]
    pub prompt_chars: usize,
}

impl RequestRecord {
    pub fn new(request_id: String, requested_model: String, stream: bool) -> Self {
        RequestRecord {
            request_id,
            started_at: SystemTime::now(),
            key_id: None,
            key: None,
            project: None,
            source: Source::Api,
            run_id: None,
            step: None,
            route: requested_model.clone(),
            requested_model,
            stream,
            attempts: Vec::new(),
            served_by: None,
            answered_model: None,
            usage: None,
            usage_estimated: false,
            ttft: None,
            latency: Duration::ZERO,
            status: RequestStatus::Error,
            error: None,
            warnings: Vec::new(),
            provisional: None,
            prompt_chars: 0,
        }
    }

    /// Backups used: distinct targets attempted beyond the first.
    pub fn fallbacks(&self) -> usize {
        let mut targets: Vec<usize> = self
            .attempts
            .iter()
            .filter(|a| !matches!(a.outcome, AttemptOutcome::Skipped { .. }))
            .map(|a| a.target_index)
            .collect();
        targets.dedup();
        targets.len().saturating_sub(1)
    }

    /// Attempts that reached (or tried to reach) an upstream.
    pub fn attempts_made(&self) -> usize {
        self.attempts
            .iter()
            .filter(|a| !matches!(a.outcome, AttemptOutcome::Skipped { .. }))
            .count()
    }

    /// Retries: repeated attempts at the same target.
    pub fn retries(&self) -> usize {
        let mut n = 0;
        let mut prev = None;
        for a in self
            .attempts
            .iter()
            .filter(|a| !matches!(a.outcome, AttemptOutcome::Skipped { .. }))
        {
            if prev == Some(a.target_index) {
                n += 1;
            }
            prev = Some(a.target_index);
        }
        n
    }

    /// The route walked, in plain words: "primary relay/gpt-5.5 → 503 ×3 →
    /// backup openai/gpt-5.5 → ok; paid from Credit".
    pub fn route_walk(&self) -> String {
        let mut out = String::new();
        let mut i = 0;
        while i < self.attempts.len() {
            let a = &self.attempts[i];
            let mut j = i + 1;
            // Collapse repeated identical outcomes on the same target.
            while j < self.attempts.len()
                && self.attempts[j].target_index == a.target_index
                && self.attempts[j].outcome.short() == a.outcome.short()
            {
                j += 1;
            }
            let role = if a.target_index == 0 {
                "primary"
            } else {
                "backup"
            };
            if i == 0 || self.attempts[i - 1].target_index != a.target_index {
                if !out.is_empty() {
                    out.push_str(" → ");
                }
                let _ = write!(out, "{role} {}/{}", a.channel, a.upstream_model);
            }
            let _ = write!(out, " → {}", a.outcome.short());
            if j - i > 1 {
                let _ = write!(out, " ×{}", j - i);
            }
            i = j;
        }
        match (&self.served_by, self.status) {
            (Some(s), _) => {
                let _ = write!(out, "; paid from {}", s.bucket.title());
                if s.cross_bucket {
                    out.push_str(" (cross-bucket fallback)");
                }
            }
            (None, _) if out.is_empty() => out.push_str("no target attempted"),
            (None, _) => out.push_str("; nothing charged"),
        }
        out
    }
}

/// Receives every request: once when it starts (before any upstream
/// call) and once when it has finished. The finished record is shared, so a
/// recorder can keep it (the ledger hands it to its writer thread) without
/// copying it on the request path.
pub trait Recorder: Send + Sync {
    fn begin(&self, _record: &RequestRecord) {}
    fn record(&self, record: &Arc<RequestRecord>);
}

/// Writes one structured `tracing` line per request: no prompt, no answer,
/// no secret — only what was routed where and how it went. The line is kept
/// short (it is written on the request path); the receipt holds the rest,
/// attempt by attempt (`switchyard receipts --id ID`).
pub struct LogRecorder;

impl Recorder for LogRecorder {
    fn record(&self, r: &Arc<RequestRecord>) {
        let served = r.served_by.as_ref();
        tracing::info!(
            target: "switchyard::request",
            request_id = %r.request_id,
            key = r.key.as_deref().unwrap_or("-"),
            model = %r.requested_model,
            status = r.status.as_str(),
            upstream_model = r.answered_model.as_deref(),
            bucket = served.map(|s| s.bucket.as_str()),
            input_tokens = r.usage.map(|u| u.input + u.cached_input + u.cache_write),
            output_tokens = r.usage.map(|u| u.output + u.reasoning),
            usage_estimated = r.usage_estimated.then_some(true),
            ttft_ms = r.ttft.map(|d| d.as_millis() as u64),
            latency_ms = r.latency.as_millis() as u64,
            error = r.error.as_deref(),
            "{}",
            r.route_walk()
        );
    }
}

/// Fans a record out to several recorders.
pub struct Recorders(pub Vec<Arc<dyn Recorder>>);

impl Recorder for Recorders {
    fn begin(&self, record: &RequestRecord) {
        for r in &self.0 {
            r.begin(record);
        }
    }

    fn record(&self, record: &Arc<RequestRecord>) {
        for r in &self.0 {
            r.record(record);
        }
    }
}

fn ms<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_u64(d.as_millis() as u64)
}

fn opt_ms<S: serde::Serializer>(d: &Option<Duration>, s: S) -> Result<S::Ok, S::Error> {
    match d {
        Some(d) => s.serialize_u64(d.as_millis() as u64),
        None => s.serialize_none(),
    }
}

fn unix_ms<S: serde::Serializer>(t: &SystemTime, s: S) -> Result<S::Ok, S::Error> {
    let ms = t
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64);
    s.serialize_u64(ms)
}

/// Owns a request's record while the request runs and makes sure it reaches
/// the recorder exactly once — also when the client goes away and the
/// request's future is dropped mid-flight (recorded as `client_cancelled`).
pub struct RecordGuard {
    rec: Option<RequestRecord>,
    recorder: Arc<dyn Recorder>,
    started: std::time::Instant,
    output_chars: usize,
}

impl RecordGuard {
    /// Takes charge of `rec` and announces it to the recorder (the ledger's
    /// `pending` receipt).
    pub fn new(rec: RequestRecord, recorder: Arc<dyn Recorder>) -> Self {
        recorder.begin(&rec);
        RecordGuard {
            rec: Some(rec),
            recorder,
            started: std::time::Instant::now(),
            output_chars: 0,
        }
    }

    /// When the request began.
    pub fn started(&self) -> std::time::Instant {
        self.started
    }

    /// The record being built. Present until [`RecordGuard::finish`].
    pub fn rec(&mut self) -> &mut RequestRecord {
        // Only `finish` and `drop` take the record, and both consume the guard.
        self.rec
            .get_or_insert_with(|| RequestRecord::new(String::new(), String::new(), false))
    }

    /// Characters of answer produced so far, for estimating usage.
    pub fn set_output_chars(&mut self, n: usize) {
        self.output_chars = n;
    }

    /// Finishes the record and hands it to the recorder; returns it as
    /// recorded.
    pub fn finish(mut self, status: RequestStatus, error: Option<String>) -> Arc<RequestRecord> {
        self.complete(status, error)
            .unwrap_or_else(|| Arc::new(RequestRecord::new(String::new(), String::new(), false)))
    }

    fn complete(
        &mut self,
        status: RequestStatus,
        error: Option<String>,
    ) -> Option<Arc<RequestRecord>> {
        let mut rec = self.rec.take()?;
        rec.status = status;
        if error.is_some() {
            rec.error = error;
        }
        rec.latency = self.started.elapsed();
        // Whatever an upstream produced is billed; when it reported no usage
        // (a cut, a cancel, a provider that sends none) estimate it.
        if rec.usage.is_none() && rec.served_by.is_some() {
            rec.usage = Some(Usage::estimate(rec.prompt_chars, self.output_chars));
            rec.usage_estimated = true;
        }
        let rec = Arc::new(rec);
        self.recorder.record(&rec);
        Some(rec)
    }
}

impl Drop for RecordGuard {
    fn drop(&mut self) {
        if self.rec.is_some() {
            let error =
                Some("the client closed the connection before the answer was complete".into());
            self.complete(RequestStatus::ClientCancelled, error);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn attempt(target_index: usize, channel: &str, outcome: AttemptOutcome) -> AttemptRecord {
        AttemptRecord {
            channel: channel.into(),
            upstream_model: "gpt-5.5".into(),
            bucket: if target_index == 0 {
                Bucket::Wallet
            } else {
                Bucket::Credit
            },
            target_index,
            outcome,
            started: Duration::ZERO,
            duration: Duration::ZERO,
        }
    }

    #[test]
    fn route_walk_reads_as_plain_words() {
        let mut r = RequestRecord::new("r1".into(), "gpt-5.5".into(), false);
        let e503 = AttemptOutcome::Http {
            status: 503,
            class: "server_error",
        };
        r.attempts = vec![
            attempt(0, "relay", e503.clone()),
            attempt(0, "relay", e503.clone()),
            attempt(0, "relay", e503),
            attempt(1, "openai", AttemptOutcome::Ok { status: 200 }),
        ];
        r.served_by = Some(ServedBy {
            channel: "openai".into(),
            brand: "OpenAI".into(),
            upstream_model: "gpt-5.5".into(),
            bucket: Bucket::Credit,
            target_index: 1,
            cross_bucket: false,
            price: None,
        });
        r.status = RequestStatus::Ok;
        assert_eq!(
            r.route_walk(),
            "primary relay/gpt-5.5 → 503 ×3 → backup openai/gpt-5.5 → ok (200); paid from Credit"
        );
        assert_eq!(r.retries(), 2);
        assert_eq!(r.attempts_made(), 4);
    }
}
