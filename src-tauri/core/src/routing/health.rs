//! How each target has fared over the last hour: attempts, successes,
//! latency percentiles, the last error and answers from an unexpected
//! model. Fed by every finished request (it is a [`Recorder`]) and read by
//! the management API's health view; the circuit state comes from the
//! [`super::Gateway`] itself.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crate::record::{AttemptOutcome, Recorder, RequestRecord};

/// How far back the health view looks.
pub const WINDOW: Duration = Duration::from_secs(3600);
/// Samples kept per target; older ones fall out first. Bounds memory under
/// heavy load, where the newest samples describe the target best anyway.
const MAX_SAMPLES: usize = 20_000;

#[derive(Clone, Copy)]
struct Sample {
    at: Instant,
    ok: bool,
    /// Milliseconds until the target answered (or failed).
    ms: u32,
}

#[derive(Default)]
struct TargetLog {
    samples: VecDeque<Sample>,
    last_error: Option<(i64, String)>,
    mismatches: VecDeque<Instant>,
}

impl TargetLog {
    fn prune(&mut self, now: Instant) {
        while self
            .samples
            .front()
            .is_some_and(|s| now.duration_since(s.at) > WINDOW)
        {
            self.samples.pop_front();
        }
        while self
            .mismatches
            .front()
            .is_some_and(|&at| now.duration_since(at) > WINDOW)
        {
            self.mismatches.pop_front();
        }
    }
}

/// One target's last hour.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize)]
pub struct TargetStats {
    /// Attempts made (skipped ones are not counted).
    pub requests: u64,
    pub ok: u64,
    /// `ok / requests`; `None` without attempts.
    pub success_rate: Option<f64>,
    pub p50_ms: Option<u32>,
    pub p95_ms: Option<u32>,
    /// Unix milliseconds and a short description, e.g. "503", "timeout".
    pub last_error: Option<(i64, String)>,
    /// Answers whose model differed from the target's upstream model.
    pub mismatches: u64,
}

#[derive(Default)]
pub struct HealthBook {
    targets: Mutex<HashMap<(String, String), TargetLog>>,
}

fn unix_ms(t: SystemTime) -> i64 {
    t.duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// The `q`-quantile (0..=1) of sorted values, nearest rank.
fn quantile(sorted: &[u32], q: f64) -> Option<u32> {
    if sorted.is_empty() {
        return None;
    }
    let rank = (q * sorted.len() as f64).ceil() as usize;
    Some(sorted[rank.clamp(1, sorted.len()) - 1])
}

impl HealthBook {
    pub fn new() -> HealthBook {
        HealthBook::default()
    }

    fn note(&self, rec: &RequestRecord, now: Instant) {
        let finished = SystemTime::now();
        let mut map = self.targets.lock().unwrap_or_else(|p| p.into_inner());
        for a in &rec.attempts {
            let ok = match &a.outcome {
                AttemptOutcome::Ok { .. } => true,
                AttemptOutcome::Http { .. } | AttemptOutcome::Failed { .. } => false,
                AttemptOutcome::Skipped { .. } => continue,
            };
            let log = map
                .entry((a.channel.clone(), a.upstream_model.clone()))
                .or_default();
            log.prune(now);
            if log.samples.len() >= MAX_SAMPLES {
                log.samples.pop_front();
            }
            log.samples.push_back(Sample {
                at: now,
                ok,
                ms: u32::try_from(a.duration.as_millis()).unwrap_or(u32::MAX),
            });
            if !ok {
                log.last_error = Some((unix_ms(finished), a.outcome.short()));
            }
        }
        if let (Some(served), Some(answered)) = (&rec.served_by, &rec.answered_model) {
            if !answered.is_empty() && *answered != served.upstream_model {
                let log = map
                    .entry((served.channel.clone(), served.upstream_model.clone()))
                    .or_default();
                if log.mismatches.len() >= MAX_SAMPLES {
                    log.mismatches.pop_front();
                }
                log.mismatches.push_back(now);
            }
        }
    }

    /// The last hour of the target (`channel`, `model`).
    pub fn stats(&self, channel: &str, model: &str) -> TargetStats {
        let now = Instant::now();
        let mut map = self.targets.lock().unwrap_or_else(|p| p.into_inner());
        let Some(log) = map.get_mut(&(channel.to_string(), model.to_string())) else {
            return TargetStats::default();
        };
        log.prune(now);
        let requests = log.samples.len() as u64;
        let ok = log.samples.iter().filter(|s| s.ok).count() as u64;
        let mut ms: Vec<u32> = log.samples.iter().map(|s| s.ms).collect();
        ms.sort_unstable();
        TargetStats {
            requests,
            ok,
            success_rate: (requests > 0).then(|| ok as f64 / requests as f64),
            p50_ms: quantile(&ms, 0.5),
            p95_ms: quantile(&ms, 0.95),
            last_error: log.last_error.clone(),
            mismatches: log.mismatches.len() as u64,
        }
    }
}

impl Recorder for HealthBook {
    fn record(&self, record: &Arc<RequestRecord>) {
        self.note(record, Instant::now());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Bucket;
    use crate::record::{AttemptRecord, ServedBy};

    fn attempt(channel: &str, outcome: AttemptOutcome, ms: u64) -> AttemptRecord {
        AttemptRecord {
            channel: channel.into(),
            upstream_model: "m".into(),
            bucket: Bucket::Credit,
            target_index: 0,
            outcome,
            started: Duration::ZERO,
            duration: Duration::from_millis(ms),
        }
    }

    #[test]
    fn counts_attempts_percentiles_errors_and_mismatches() {
        let book = HealthBook::new();
        let now = Instant::now();
        for ms in 1..=100 {
            let mut rec = RequestRecord::new("r".into(), "m".into(), false);
            rec.attempts
                .push(attempt("a", AttemptOutcome::Ok { status: 200 }, ms));
            book.note(&rec, now);
        }
        let mut rec = RequestRecord::new("r".into(), "m".into(), false);
        rec.attempts.push(attempt(
            "a",
            AttemptOutcome::Http {
                status: 503,
                class: "server_error",
            },
            7,
        ));
        rec.attempts.push(attempt(
            "b",
            AttemptOutcome::Skipped {
                reason: "circuit_open",
            },
            0,
        ));
        rec.served_by = Some(ServedBy {
            channel: "a".into(),
            brand: "A".into(),
            upstream_model: "m".into(),
            bucket: Bucket::Credit,
            target_index: 0,
            cross_bucket: false,
            price: None,
        });
        rec.answered_model = Some("m-2025".into());
        book.note(&rec, now);

        let s = book.stats("a", "m");
        assert_eq!((s.requests, s.ok), (101, 100));
        assert_eq!(s.p50_ms, Some(50));
        assert_eq!(s.p95_ms, Some(95));
        assert_eq!(s.last_error.map(|e| e.1), Some("503".to_string()));
        assert_eq!(s.mismatches, 1);
        // A skipped target made no attempt.
        assert_eq!(book.stats("b", "m").requests, 0);
        assert_eq!(book.stats("b", "m").success_rate, None);
    }

    #[test]
    fn quantiles_use_nearest_rank() {
        assert_eq!(quantile(&[], 0.5), None);
        assert_eq!(quantile(&[4], 0.95), Some(4));
        assert_eq!(quantile(&[1, 2, 3, 4], 0.5), Some(2));
        assert_eq!(quantile(&[1, 2, 3, 4], 0.95), Some(4));
    }
}
