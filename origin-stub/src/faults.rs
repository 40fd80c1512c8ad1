//! Fault injection: errors at a rate, extra latency, and outage windows.

use std::time::{Duration, SystemTime};

use serde::{Deserialize, Serialize};

/// What goes wrong, set at start-up or with `PUT /__origin/faults` (JSON of this shape).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct FaultPlan {
    /// Fraction of API requests answered with `error_status` (0.0–1.0).
    pub error_rate: f64,
    /// Status for injected errors; 503 when unset.
    pub error_status: Option<u16>,
    /// Real time added to every API response, in milliseconds.
    pub extra_latency_ms: u64,
    /// Outage: every API request fails until the origin clock passes this Unix time (ms).
    pub down_until_ms: Option<u64>,
    /// Convenience when setting: an outage of this many seconds from now.
    #[serde(skip_serializing)]
    pub down_for_secs: Option<u64>,
    /// Flapping: every API request fails during the second half of each period of this many
    /// milliseconds (origin clock), and none fail during the first half.
    pub flap_period_ms: Option<u64>,
}

/// Most extra latency a plan may add: faults must not hang a test run forever.
pub const MAX_EXTRA_LATENCY: Duration = Duration::from_secs(60);

impl FaultPlan {
    /// Resolves `down_for_secs` against `now` and checks ranges.
    pub fn resolve(mut self, now: SystemTime) -> Result<Self, String> {
        if !(0.0..=1.0).contains(&self.error_rate) {
            return Err(format!(
                "error_rate must be within 0.0..=1.0, got {}",
                self.error_rate
            ));
        }
        if let Some(status) = self.error_status {
            if !(400..=599).contains(&status) {
                return Err(format!(
                    "error_status must be a 4xx or 5xx code, got {status}"
                ));
            }
        }
        if Duration::from_millis(self.extra_latency_ms) > MAX_EXTRA_LATENCY {
            return Err(format!(
                "extra_latency_ms must be at most {}",
                MAX_EXTRA_LATENCY.as_millis()
            ));
        }
        if let Some(period) = self.flap_period_ms {
            if !(2..=3_600_000).contains(&period) {
                return Err(format!(
                    "flap_period_ms must be within 2..=3600000, got {period}"
                ));
            }
        }
        if let Some(secs) = self.down_for_secs.take() {
            let until = now + Duration::from_secs(secs.min(365 * 24 * 3600));
            self.down_until_ms = Some(unix_ms(until));
        }
        Ok(self)
    }

    /// Whether this request fails: during an outage or the down half of a flap always,
    /// otherwise at `error_rate`.
    pub fn fails(&self, now: SystemTime, draw: f64) -> bool {
        let ms = unix_ms(now);
        let flapped_down = self
            .flap_period_ms
            .is_some_and(|period| period >= 2 && ms % period >= period / 2);
        self.down_until_ms.is_some_and(|until| ms < until) || flapped_down || draw < self.error_rate
    }

    pub fn status(&self) -> u16 {
        self.error_status.unwrap_or(503)
    }
}

fn unix_ms(time: SystemTime) -> u64 {
    time.duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outage_window_ends() {
        let t0 = SystemTime::UNIX_EPOCH + Duration::from_secs(1000);
        let plan = FaultPlan {
            down_for_secs: Some(10),
            ..Default::default()
        }
        .resolve(t0)
        .unwrap();
        assert!(plan.fails(t0 + Duration::from_secs(9), 1.0));
        assert!(!plan.fails(t0 + Duration::from_secs(10), 1.0));
    }

    #[test]
    fn a_flapping_origin_is_down_half_of_each_period() {
        let plan = FaultPlan {
            flap_period_ms: Some(1000),
            ..Default::default()
        }
        .resolve(SystemTime::UNIX_EPOCH)
        .unwrap();
        let at = |ms| SystemTime::UNIX_EPOCH + Duration::from_millis(ms);
        assert!(!plan.fails(at(10_000), 1.0));
        assert!(!plan.fails(at(10_499), 1.0));
        assert!(plan.fails(at(10_500), 1.0));
        assert!(plan.fails(at(10_999), 1.0));
        assert!(!plan.fails(at(11_000), 1.0));
    }

    #[test]
    fn invalid_plans_are_refused_with_a_reason() {
        let now = SystemTime::UNIX_EPOCH;
        assert!(FaultPlan {
            error_rate: 1.5,
            ..Default::default()
        }
        .resolve(now)
        .unwrap_err()
        .contains("error_rate"));
        assert!(FaultPlan {
            error_status: Some(200),
            ..Default::default()
        }
        .resolve(now)
        .is_err());
    }
}
