//! Per-target circuit breakers.
//!
//! A target that fails [`FAILURES_TO_OPEN`] attempts in a row opens its
//! circuit: requests skip it (straight to the backup) for a cooldown, after
//! which one request probes it (half-open). A success closes the circuit; a
//! failed probe reopens it with a longer cooldown, capped so that a
//! recovered primary is back in use within 30 s of recovering.

use std::time::{Duration, Instant};

pub const FAILURES_TO_OPEN: u32 = 3;
pub const BASE_COOLDOWN: Duration = Duration::from_secs(5);
/// Cap on the cooldown: a recovered target waits at most this long plus one
/// probe before it is used again.
pub const MAX_COOLDOWN: Duration = Duration::from_secs(20);
/// A probe that never reported back (its request was cancelled) stops
/// blocking other probes after this long.
const PROBE_TIMEOUT: Duration = Duration::from_secs(30);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CircuitState {
    Closed,
    Open,
    HalfOpen,
}

impl CircuitState {
    pub fn as_str(self) -> &'static str {
        match self {
            CircuitState::Closed => "closed",
            CircuitState::Open => "open",
            CircuitState::HalfOpen => "half_open",
        }
    }
}

/// What a request may do with this target now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admission {
    /// Use it.
    Allow,
    /// Use it as the probe of an open circuit.
    Probe,
    /// Skip it: its circuit is open.
    Skip,
}

#[derive(Debug, Clone)]
pub struct Circuit {
    state: CircuitState,
    consecutive_failures: u32,
    cooldown: Duration,
    opened_at: Option<Instant>,
    probe_started: Option<Instant>,
}

impl Default for Circuit {
    fn default() -> Self {
        Circuit {
            state: CircuitState::Closed,
            consecutive_failures: 0,
            cooldown: BASE_COOLDOWN,
            opened_at: None,
            probe_started: None,
        }
    }
}

impl Circuit {
    pub fn state(&self) -> CircuitState {
        self.state
    }

    /// When an open circuit will next admit a probe.
    pub fn retry_at(&self) -> Option<Instant> {
        match self.state {
            CircuitState::Open => self.opened_at.map(|t| t + self.cooldown),
            _ => None,
        }
    }

    pub fn admit(&mut self, now: Instant) -> Admission {
        match self.state {
            CircuitState::Closed => Admission::Allow,
            CircuitState::Open => {
                if self.retry_at().is_some_and(|t| now >= t) {
                    self.state = CircuitState::HalfOpen;
                    self.probe_started = Some(now);
                    Admission::Probe
                } else {
                    Admission::Skip
                }
            }
            CircuitState::HalfOpen => {
                if self
                    .probe_started
                    .is_none_or(|t| now.duration_since(t) >= PROBE_TIMEOUT)
                {
                    self.probe_started = Some(now);
                    Admission::Probe
                } else {
                    Admission::Skip
                }
            }
        }
    }

    pub fn record_success(&mut self) {
        *self = Circuit::default();
    }

    pub fn record_failure(&mut self, now: Instant) {
        self.consecutive_failures += 1;
        match self.state {
            CircuitState::HalfOpen => {
                self.cooldown = (self.cooldown * 2).min(MAX_COOLDOWN);
                self.open(now);
            }
            CircuitState::Closed if self.consecutive_failures >= FAILURES_TO_OPEN => {
                self.open(now);
            }
            // A late failure from a request admitted before the circuit
            // opened does not extend the cooldown.
            _ => {}
        }
    }

    fn open(&mut self, now: Instant) {
        self.state = CircuitState::Open;
        self.opened_at = Some(now);
        self.probe_started = None;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn opens_after_consecutive_failures_and_probes_after_cooldown() {
        let t0 = Instant::now();
        let mut c = Circuit::default();
        for _ in 0..FAILURES_TO_OPEN - 1 {
            c.record_failure(t0);
            assert_eq!(c.admit(t0), Admission::Allow);
        }
        c.record_failure(t0);
        assert_eq!(c.state(), CircuitState::Open);
        assert_eq!(c.admit(t0 + Duration::from_secs(1)), Admission::Skip);
        let later = t0 + BASE_COOLDOWN;
        assert_eq!(c.admit(later), Admission::Probe);
        // Only one probe at a time.
        assert_eq!(c.admit(later), Admission::Skip);
        c.record_success();
        assert_eq!(c.admit(later), Admission::Allow);
    }

    #[test]
    fn failed_probe_doubles_cooldown_up_to_the_cap() {
        let mut now = Instant::now();
        let mut c = Circuit::default();
        for _ in 0..FAILURES_TO_OPEN {
            c.record_failure(now);
        }
        let mut last = BASE_COOLDOWN;
        for _ in 0..6 {
            now += last;
            assert_eq!(c.admit(now), Admission::Probe);
            c.record_failure(now);
            last = c.retry_at().expect("open") - now;
            assert!(last <= MAX_COOLDOWN);
        }
        assert_eq!(last, MAX_COOLDOWN);
    }

    #[test]
    fn a_success_resets_the_failure_count() {
        let now = Instant::now();
        let mut c = Circuit::default();
        c.record_failure(now);
        c.record_failure(now);
        c.record_success();
        c.record_failure(now);
        assert_eq!(c.state(), CircuitState::Closed);
    }

    #[test]
    fn abandoned_probe_does_not_block_forever() {
        let now = Instant::now();
        let mut c = Circuit::default();
        for _ in 0..FAILURES_TO_OPEN {
            c.record_failure(now);
        }
        let t = now + BASE_COOLDOWN;
        assert_eq!(c.admit(t), Admission::Probe);
        assert_eq!(c.admit(t + PROBE_TIMEOUT), Admission::Probe);
    }
}
