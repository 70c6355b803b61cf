//! Per-request timeouts, layered: route over channel over the global
//! `[timeouts]` table over built-in defaults. All values are seconds.

use std::time::Duration;

use serde::Deserialize;

/// Timeouts as written in the config: any subset may be set at any level.
#[derive(Debug, Clone, Copy, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct TimeoutsConfig {
    /// TCP + TLS connect.
    pub connect_s: Option<f64>,
    /// From sending the request to the upstream's response headers.
    pub first_byte_s: Option<f64>,
    /// Streaming: from the request to the first content/progress event.
    /// Only enforced while a backup target remains.
    pub first_token_s: Option<f64>,
    /// Streaming: the longest silence tolerated once the answer has begun.
    pub idle_s: Option<f64>,
    /// The whole request, every retry and failover included.
    pub total_s: Option<f64>,
}

/// Effective timeouts for one attempt.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Timeouts {
    pub connect: Duration,
    pub first_byte: Duration,
    pub first_token: Duration,
    pub idle: Duration,
    pub total: Duration,
}

impl Default for Timeouts {
    fn default() -> Self {
        Timeouts {
            connect: Duration::from_secs(10),
            // Non-streaming upstreams send headers only once the whole answer
            // is ready, so this must allow for a long generation.
            first_byte: Duration::from_secs(120),
            first_token: Duration::from_secs(10),
            idle: Duration::from_secs(30),
            total: Duration::from_secs(600),
        }
    }
}

impl TimeoutsConfig {
    pub(crate) fn validate(&self) -> Result<(), (&'static str, String)> {
        let fields = [
            ("connect_s", self.connect_s),
            ("first_byte_s", self.first_byte_s),
            ("first_token_s", self.first_token_s),
            ("idle_s", self.idle_s),
            ("total_s", self.total_s),
        ];
        for (name, value) in fields {
            if let Some(v) = value {
                if !(v.is_finite() && v > 0.0 && v <= 86_400.0) {
                    return Err((
                        name,
                        format!("{v} must be a number of seconds > 0 and ≤ 86400"),
                    ));
                }
            }
        }
        Ok(())
    }

    /// `self` where set, otherwise `base`.
    pub fn over(&self, base: Timeouts) -> Timeouts {
        let pick = |v: Option<f64>, d: Duration| v.map_or(d, Duration::from_secs_f64);
        Timeouts {
            connect: pick(self.connect_s, base.connect),
            first_byte: pick(self.first_byte_s, base.first_byte),
            first_token: pick(self.first_token_s, base.first_token),
            idle: pick(self.idle_s, base.idle),
            total: pick(self.total_s, base.total),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn route_overrides_channel_overrides_global() {
        let global = TimeoutsConfig {
            idle_s: Some(20.0),
            total_s: Some(100.0),
            ..Default::default()
        };
        let channel = TimeoutsConfig {
            idle_s: Some(5.0),
            ..Default::default()
        };
        let route = TimeoutsConfig {
            total_s: Some(50.0),
            ..Default::default()
        };
        let t = route.over(channel.over(global.over(Timeouts::default())));
        assert_eq!(t.idle, Duration::from_secs(5));
        assert_eq!(t.total, Duration::from_secs(50));
        assert_eq!(t.connect, Timeouts::default().connect);
    }

    #[test]
    fn zero_or_negative_is_refused() {
        let bad = TimeoutsConfig {
            idle_s: Some(0.0),
            ..Default::default()
        };
        assert_eq!(bad.validate().map_err(|e| e.0), Err("idle_s"));
    }
}
