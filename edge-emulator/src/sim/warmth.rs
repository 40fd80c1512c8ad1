//! Whether a run measured warm caches. A short run measures the caches filling, not the
//! steady state a capacity planner sizes for: its offload is low and still rising. Two signs,
//! either enough: the measured window is shorter than the workload's TTL (no copy has expired
//! and been fetched again yet, so the steady state's cost is not in it), or the offload of the
//! window's second half is above its first half's by more than [`RISING_BY`].

use crate::sim::report::{ColdCaches, Report};
use crate::sim::setup::SimSetup;
use crate::sim::units::round;

/// How much higher the second half's offload may be before the run counts as still warming.
pub const RISING_BY: f64 = 0.01;

/// The measured window a suggestion asks for, in TTLs.
const WINDOW_PER_TTL: f64 = 1.2;

/// Requests per half below which the halves' offloads are too noisy to compare.
const MIN_REQUESTS_PER_HALF: u64 = 200;

/// Why `report`'s caches had not warmed, or `None` when they had.
pub fn check(setup: &SimSetup, report: &Report) -> Option<ColdCaches> {
    let measured_s = report.scenario.duration_s;
    let ttl_s = setup.spec.as_ref().map(|s| s.ttl_s).filter(|ttl| *ttl > 0);
    let shorter_than_ttl = ttl_s.filter(|ttl| measured_s < *ttl as f64);
    let halves = offload_halves(setup, report);
    let rising = halves.filter(|(first, second)| second - first > RISING_BY);
    if shorter_than_ttl.is_none() && rising.is_none() {
        return None;
    }
    // Enough requests, at the workload's rate, that the measured window after this warm-up
    // outlasts the TTL by a fifth (every copy expires and is fetched again within it); at
    // least twice this run's.
    let suggest_requests = setup.spec.as_ref().map(|spec| {
        let span_s = setup.warmup_s + WINDOW_PER_TTL * spec.ttl_s.max(1) as f64;
        ((span_s * spec.rate).ceil() as u64).max(2 * spec.requests)
    });
    Some(ColdCaches {
        measured_s,
        ttl_s: shorter_than_ttl,
        offload_first_half: halves.map(|h| round(h.0)),
        offload_second_half: halves.map(|h| round(h.1)),
        suggest_requests,
        // Rising without a TTL to blame: a longer warm-up lets the caches fill first.
        suggest_warmup_s: (shorter_than_ttl.is_none()).then(|| (2.0 * setup.warmup_s).max(10.0)),
    })
}

/// Offload by requests over the first and the second half of the measured window, from the
/// per-bucket timelines; the last bucket is left out when it is partial (it would read as a
/// drop in load, not a change of offload it is not).
fn offload_halves(setup: &SimSetup, report: &Report) -> Option<(f64, f64)> {
    let origin = &report.origin;
    let from = (setup.warmup_s / origin.bucket_s).ceil() as usize;
    let total_s = setup.warmup_s + report.scenario.duration_s;
    let whole_buckets = (total_s / origin.bucket_s).floor() as usize;
    let to = whole_buckets
        .min(origin.client_timeline.len())
        .min(origin.timeline.len());
    if to <= from + 1 {
        return None;
    }
    let middle = from + (to - from) / 2;
    let offload = |range: std::ops::Range<usize>| -> Option<f64> {
        let clients: u64 = origin.client_timeline[range.clone()].iter().sum();
        let origins: u64 = origin.timeline[range].iter().sum();
        (clients >= MIN_REQUESTS_PER_HALF).then(|| 1.0 - origins as f64 / clients as f64)
    };
    Some((offload(from..middle)?, offload(middle..to)?))
}

impl ColdCaches {
    /// One line for the top of the report and beside each `--assert` verdict.
    pub fn summary(&self) -> String {
        let mut why = Vec::new();
        if let Some(ttl) = self.ttl_s {
            why.push(format!(
                "the measured window ({:.1} s) is shorter than the workload's TTL ({ttl} s), so \
                 no copy expired and was fetched again",
                self.measured_s
            ));
        }
        if let (Some(first), Some(second)) = (self.offload_first_half, self.offload_second_half) {
            if second - first > RISING_BY {
                why.push(format!(
                    "offload was still rising: {:.1}% in the window's first half, {:.1}% in its \
                     second",
                    first * 100.0,
                    second * 100.0
                ));
            }
        }
        let mut advice = Vec::new();
        if let Some(requests) = self.suggest_requests {
            advice.push(format!("--requests {requests}"));
        }
        if let Some(warmup) = self.suggest_warmup_s {
            advice.push(format!("--warmup-s {warmup:.0}"));
        }
        let advice = if advice.is_empty() {
            "replay a longer trace, or more of it".to_string()
        } else {
            format!("try {}", advice.join(" "))
        };
        format!(
            "CAUTION: the caches never warmed, so these figures describe the caches filling, \
             not a steady state: {}. For a steady state, {advice}.",
            why.join("; ")
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sim::assertions::tests::sample_report;

    fn setup(ttl_s: u64, warmup_s: f64) -> SimSetup {
        let mut spec = crate::sim::scenario::Scenario::default_embedded().workload;
        spec.ttl_s = ttl_s;
        spec.requests = 10_000;
        SimSetup {
            warmup_s,
            bucket_s: 1.0,
            spec: Some(spec),
            ..crate::sim::tests::setup_for_tests()
        }
    }

    #[test]
    fn a_window_shorter_than_the_ttl_is_cold_and_says_what_to_run() {
        let mut report = sample_report("tiered");
        report.scenario.duration_s = 10.0;
        let cold = check(&setup(300, 2.0), &report).expect("cold");
        assert_eq!(cold.ttl_s, Some(300));
        let line = cold.summary();
        assert!(
            line.contains("shorter than the workload's TTL (300 s)"),
            "{line}"
        );
        assert!(line.contains("--requests"), "{line}");
        // (2 s warm-up + 1.2 × 300 s) × 2000 req/s.
        assert_eq!(cold.suggest_requests, Some(724_000));
        assert_eq!(cold.suggest_warmup_s, None);
    }

    #[test]
    fn rising_offload_is_cold_and_a_flat_one_is_not() {
        let mut report = sample_report("tiered");
        report.scenario.duration_s = 400.0;
        report.origin.bucket_s = 1.0;
        // 2 s of warm-up, then 400 s: 50 % offload in the first half, 90 % in the second.
        report.origin.client_timeline = vec![1000; 402];
        report.origin.timeline = (0..402).map(|i| if i < 202 { 500 } else { 100 }).collect();
        let cold = check(&setup(60, 2.0), &report).expect("rising");
        assert_eq!(cold.ttl_s, None);
        assert_eq!(cold.suggest_warmup_s, Some(10.0));
        assert_eq!(cold.offload_first_half, Some(0.5));
        assert!(
            cold.summary().contains("still rising: 50.0%"),
            "{}",
            cold.summary()
        );
        report.origin.timeline = vec![100; 402];
        assert_eq!(check(&setup(60, 2.0), &report), None);
    }
}
