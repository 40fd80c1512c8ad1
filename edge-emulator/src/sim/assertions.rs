//! Pass/fail thresholds on a simulation report, k6-style: `--assert 'offload>=0.95'
//! --assert 'p99<250ms'` make `simulate` exit non-zero when any is missed.
//!
//! An assertion is `METRIC OP VALUE` with optional spaces between the parts. The metrics are
//! listed in [`METRICS_HELP`]; operators are `<`, `<=`, `>`, `>=`, `==`. Latency values need a
//! unit (`ms` or `s`), so `p99<250` cannot be misread; ratio values may be written as a
//! percentage (`offload>=95%`). A percentile takes a client region in brackets
//! (`p95[eu-west]<100ms`, the report's `latency`) or a Server-Timing hop in parentheses
//! (`p95(edge)<20ms`, the report's `hops`).

use std::fmt;

use thiserror::Error;

use crate::sim::report::Report;

/// What the CLI prints to explain `--assert`.
pub const METRICS_HELP: &str = "\
--assert 'METRIC OP VALUE', e.g. --assert 'offload>=0.95' --assert 'p99<250ms'
Operators: <  <=  >  >=  ==
Metrics:
  offload              1 - origin requests / client requests (0..1, or a percentage: 95%)
  byte_hit_ratio       client bytes served from a cache / client bytes (0..1 or %)
  egress_saved         origin egress saved against no CDN: 1 - origin bytes / client bytes
                       (negative when origins sent more than clients got)
  origin_bytes_per_client_byte   origin bytes / client bytes
  origin_requests      requests that reached an origin
  origin_peak_rps      highest origin requests per second over the timeline
  hit_ratio            edge tier hit ratio (0..1 or %)
  regional_hit_ratio   regional tier hit ratio (0..1 or %)
  shield_hit_ratio     origin shield hit ratio (0..1 or %; topologies with a [[shield]])
  errors               4xx/5xx responses to clients
  p50 p90 p95 p99 p999 latency percentile over all requests, with a unit: 250ms or 0.25s
  p99[REGION]          a percentile for one client region of the report, e.g. p95[eu-west]
  p95(HOP)             a percentile of one hop's Server-Timing duration: client, edge, auth,
                       regional, shield, origin, e.g. p95(edge)<20ms p95(auth)<15ms
VALUE `bound`: offload, byte_hit_ratio and hit_ratio compare with the bound the replayed stream
sets (an infinite cache per location), e.g. --assert 'offload<=bound'; a figure above its
bound is a bug in the emulator or the worker.";

/// Longest assertion text accepted; real ones are ~20 characters.
pub const MAX_ASSERTION_BYTES: usize = 256;
/// Longest region name in `p99[REGION]`.
pub const MAX_REGION_BYTES: usize = 64;
/// Longest hop name in `p95(HOP)`.
pub const MAX_HOP_BYTES: usize = crate::sim::hops::MAX_NAME_BYTES;

const KNOWN_METRICS: &str = "offload, byte_hit_ratio, egress_saved, \
     origin_bytes_per_client_byte, origin_requests, origin_peak_rps, hit_ratio, \
     regional_hit_ratio, shield_hit_ratio, errors, p50, p90, p95, p99, p999, pNN[REGION], pNN(HOP)";

/// A latency percentile the report carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Percentile {
    P50,
    P90,
    P95,
    P99,
    P999,
}

impl Percentile {
    fn from_name(name: &str) -> Option<Percentile> {
        Some(match name {
            "p50" => Percentile::P50,
            "p90" => Percentile::P90,
            "p95" => Percentile::P95,
            "p99" => Percentile::P99,
            "p999" | "p99.9" => Percentile::P999,
            _ => return None,
        })
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Percentile::P50 => "p50",
            Percentile::P90 => "p90",
            Percentile::P95 => "p95",
            Percentile::P99 => "p99",
            Percentile::P999 => "p999",
        }
    }
}

/// A figure of the report an assertion can test.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Metric {
    /// `offload.requests`.
    Offload,
    /// `offload.byte_hit_ratio`.
    ByteHitRatio,
    /// `offload.origin_egress_saved`.
    EgressSaved,
    /// `offload.origin_bytes_per_client_byte`.
    OriginBytesPerClientByte,
    OriginRequests,
    OriginPeakRps,
    /// The "edge" tier row's hit ratio.
    HitRatio,
    /// The "regional" tier row's hit ratio.
    RegionalHitRatio,
    /// The "shield" tier row's hit ratio.
    ShieldHitRatio,
    /// `outcomes.errors`.
    Errors,
    /// A latency percentile, ms, for `region` (a key of `Report::latency`; "all" when none given).
    Latency {
        percentile: Percentile,
        region: Option<String>,
    },
    /// A percentile of one hop's Server-Timing duration, ms (a key of `Report::hops`).
    HopLatency {
        percentile: Percentile,
        hop: String,
    },
}

impl Metric {
    fn from_name(name: &str) -> Result<Metric, AssertionError> {
        let unknown = || AssertionError::UnknownMetric(name.to_string());
        Ok(match name {
            "offload" => Metric::Offload,
            "byte_hit_ratio" => Metric::ByteHitRatio,
            "egress_saved" => Metric::EgressSaved,
            "origin_bytes_per_client_byte" => Metric::OriginBytesPerClientByte,
            // It meant two things in earlier releases: say which figures there are.
            "byte_offload" => return Err(AssertionError::Ambiguous(name.to_string())),
            "origin_requests" => Metric::OriginRequests,
            "origin_peak_rps" => Metric::OriginPeakRps,
            "hit_ratio" => Metric::HitRatio,
            "regional_hit_ratio" => Metric::RegionalHitRatio,
            "shield_hit_ratio" => Metric::ShieldHitRatio,
            "errors" => Metric::Errors,
            _ if name.contains('(') => {
                let (percentile, rest) = name.split_once('(').ok_or_else(unknown)?;
                let percentile =
                    Percentile::from_name(percentile.trim_end()).ok_or_else(unknown)?;
                let hop = rest
                    .strip_suffix(')')
                    .map(str::trim)
                    .filter(|h| crate::sim::hops::is_hop_name(h))
                    .ok_or_else(|| AssertionError::BadHop(name.to_string()))?;
                Metric::HopLatency {
                    percentile,
                    hop: hop.to_ascii_lowercase(),
                }
            }
            _ => match name.split_once('[') {
                None => Metric::Latency {
                    percentile: Percentile::from_name(name).ok_or_else(unknown)?,
                    region: None,
                },
                Some((percentile, rest)) => {
                    let percentile =
                        Percentile::from_name(percentile.trim_end()).ok_or_else(unknown)?;
                    let region = rest
                        .strip_suffix(']')
                        .map(str::trim)
                        .filter(|r| is_region_name(r))
                        .ok_or_else(|| AssertionError::BadRegion(name.to_string()))?;
                    Metric::Latency {
                        percentile,
                        region: Some(region.to_string()),
                    }
                }
            },
        })
    }

    /// How the metric's values are written and shown.
    fn kind(&self) -> ValueKind {
        match self {
            Metric::Offload
            | Metric::ByteHitRatio
            | Metric::EgressSaved
            | Metric::OriginBytesPerClientByte
            | Metric::HitRatio
            | Metric::RegionalHitRatio
            | Metric::ShieldHitRatio => ValueKind::Ratio,
            Metric::OriginRequests | Metric::Errors => ValueKind::Count,
            Metric::OriginPeakRps => ValueKind::Rate,
            Metric::Latency { .. } | Metric::HopLatency { .. } => ValueKind::Milliseconds,
        }
    }

    /// `Some` for metrics with a stream bound; with a report, the bound it holds (`None`
    /// when it has none).
    fn bound(&self, report: Option<&Report>) -> Option<Option<f64>> {
        let pick: fn(&crate::sim::report::StreamBound) -> f64 = match self {
            Metric::Offload => |b| b.offload_requests.bound,
            Metric::ByteHitRatio => |b| b.byte_hit_ratio.bound,
            Metric::HitRatio => |b| b.edge_hit_ratio.bound,
            _ => return None,
        };
        Some(report.and_then(|r| r.stream_bound.as_ref()).map(pick))
    }

    /// The metric's value in `report`, or why there is none.
    fn measure(&self, report: &Report) -> Result<f64, Unmeasured> {
        let tier_hit_ratio = |tier: &'static str| {
            report
                .tiers
                .iter()
                .find(|t| t.name == tier)
                .map(|t| t.hit_ratio)
                .ok_or(Unmeasured::NoTier(tier))
        };
        match self {
            Metric::Offload => Ok(report.offload.requests),
            Metric::ByteHitRatio => Ok(report.offload.byte_hit_ratio),
            Metric::EgressSaved => Ok(report.offload.origin_egress_saved),
            Metric::OriginBytesPerClientByte => Ok(report.offload.origin_bytes_per_client_byte),
            Metric::OriginRequests => Ok(report.origin.requests as f64),
            Metric::OriginPeakRps => Ok(report.origin.peak_rps),
            Metric::HitRatio => tier_hit_ratio("edge"),
            Metric::RegionalHitRatio => tier_hit_ratio("regional"),
            Metric::ShieldHitRatio => tier_hit_ratio("shield"),
            Metric::Errors => Ok(report.outcomes.errors as f64),
            Metric::Latency { percentile, region } => {
                let key = region.as_deref().unwrap_or("all");
                let summary = report
                    .latency
                    .get(key)
                    .ok_or_else(|| Unmeasured::NoRegion(key.to_string()))?;
                Ok(match percentile {
                    Percentile::P50 => summary.p50_ms,
                    Percentile::P90 => summary.p90_ms,
                    Percentile::P95 => summary.p95_ms,
                    Percentile::P99 => summary.p99_ms,
                    Percentile::P999 => summary.p999_ms,
                })
            }
            Metric::HopLatency { percentile, hop } => {
                let summary = report.hops.get(hop).ok_or_else(|| Unmeasured::NoHop {
                    hop: hop.clone(),
                    known: report.hops.keys().cloned().collect(),
                })?;
                Ok(match percentile {
                    Percentile::P50 => summary.p50_ms,
                    Percentile::P90 => summary.p90_ms,
                    Percentile::P95 => summary.p95_ms,
                    Percentile::P99 => summary.p99_ms,
                    Percentile::P999 => summary.p999_ms,
                })
            }
        }
    }
}

impl fmt::Display for Metric {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name = match self {
            Metric::Offload => "offload",
            Metric::ByteHitRatio => "byte_hit_ratio",
            Metric::EgressSaved => "egress_saved",
            Metric::OriginBytesPerClientByte => "origin_bytes_per_client_byte",
            Metric::OriginRequests => "origin_requests",
            Metric::OriginPeakRps => "origin_peak_rps",
            Metric::HitRatio => "hit_ratio",
            Metric::RegionalHitRatio => "regional_hit_ratio",
            Metric::ShieldHitRatio => "shield_hit_ratio",
            Metric::Errors => "errors",
            Metric::Latency { percentile, region } => {
                return match region {
                    Some(region) => write!(f, "{}[{region}]", percentile.as_str()),
                    None => f.write_str(percentile.as_str()),
                };
            }
            Metric::HopLatency { percentile, hop } => {
                return write!(f, "{}({hop})", percentile.as_str());
            }
        };
        f.write_str(name)
    }
}

/// Region keys are topology names; this also keeps them printable in one line.
fn is_region_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= MAX_REGION_BYTES
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
}

#[derive(Clone, Copy)]
enum ValueKind {
    Ratio,
    Count,
    Rate,
    Milliseconds,
}

impl ValueKind {
    fn show(self, value: f64) -> String {
        match self {
            ValueKind::Ratio => format!("{value:.3}"),
            ValueKind::Count => format!("{value:.0}"),
            ValueKind::Rate => format!("{value:.1}"),
            ValueKind::Milliseconds => format!("{value:.1}ms"),
        }
    }
}

/// A comparison operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Lt,
    Le,
    Gt,
    Ge,
    Eq,
}

impl Op {
    pub fn as_str(self) -> &'static str {
        match self {
            Op::Lt => "<",
            Op::Le => "<=",
            Op::Gt => ">",
            Op::Ge => ">=",
            Op::Eq => "==",
        }
    }

    fn holds(self, measured: f64, threshold: f64) -> bool {
        match self {
            Op::Lt => measured < threshold,
            Op::Le => measured <= threshold,
            Op::Gt => measured > threshold,
            Op::Ge => measured >= threshold,
            // Ratios are computed, so exact float equality would fail on rounding noise.
            Op::Eq => (measured - threshold).abs() <= 1e-9 * threshold.abs().max(1.0),
        }
    }
}

/// One threshold: `metric op value`. `value` is in the metric's own unit: a ratio in 0..1, a
/// count, requests per second, or milliseconds for latency (`0.25s` parses to 250); or the
/// word `bound`: the metric's bound from the replayed stream (`offload<=bound`).
#[derive(Debug, Clone, PartialEq)]
pub struct Assertion {
    pub metric: Metric,
    pub op: Op,
    pub value: Threshold,
}

/// What a metric is compared with.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Threshold {
    Value(f64),
    /// The report's stream bound for the metric (`offload`, `byte_hit_ratio`, `hit_ratio`).
    Bound,
}

/// Why an `--assert` argument was refused.
#[derive(Debug, Clone, PartialEq, Error)]
pub enum AssertionError {
    #[error("empty assertion; expected METRIC OP VALUE, e.g. p99<250ms")]
    Empty,
    #[error("assertion is {0} bytes; the limit is {MAX_ASSERTION_BYTES}")]
    TooLong(usize),
    #[error("{0:?} has no operator; expected METRIC OP VALUE with OP one of < <= > >= ==, e.g. offload>=0.95")]
    NoOperator(String),
    #[error("{0:?}: use == to test equality")]
    SingleEquals(String),
    #[error("unknown metric {0:?}; known: {KNOWN_METRICS}")]
    UnknownMetric(String),
    #[error("{0:?} could mean two figures: byte_hit_ratio (client bytes served from a cache / client bytes) or egress_saved (1 - origin bytes / client bytes, against no CDN); name one")]
    Ambiguous(String),
    #[error("{0:?}: a region is written p99[NAME], NAME being letters, digits, '-', '_' or '.'")]
    BadRegion(String),
    #[error("{0:?}: a hop is written p95(NAME), NAME being a Server-Timing metric (edge, auth, regional, shield, origin, client): up to {MAX_HOP_BYTES} letters, digits, '-', '_' or '.'")]
    BadHop(String),
    #[error("{0:?} has no value after the operator")]
    MissingValue(String),
    #[error("{value:?} is not a number (in {assertion:?})")]
    BadNumber { assertion: String, value: String },
    #[error("{metric} is a latency: give a unit, e.g. {metric}<250ms or {metric}<0.25s")]
    MissingUnit { metric: Metric },
    #[error("{metric} takes no unit {unit:?}")]
    UnexpectedUnit { metric: Metric, unit: String },
    #[error("{metric} has no bound; `bound` compares offload, byte_hit_ratio or hit_ratio with the bound the replayed stream sets, e.g. offload<=bound")]
    NoBound { metric: Metric },
}

impl Assertion {
    /// Parses `METRIC OP VALUE`, e.g. `offload>=0.95`, `p99 < 250ms`, `p95[eu-west]<0.1s`.
    pub fn parse(text: &str) -> Result<Assertion, AssertionError> {
        if text.len() > MAX_ASSERTION_BYTES {
            return Err(AssertionError::TooLong(text.len()));
        }
        let text = text.trim();
        if text.is_empty() {
            return Err(AssertionError::Empty);
        }
        let op_start = text
            .find(['<', '>', '=', '!'])
            .ok_or_else(|| AssertionError::NoOperator(text.to_string()))?;
        let (metric, rest) = text.split_at(op_start);
        let (op, value) = if let Some(value) = rest.strip_prefix("<=") {
            (Op::Le, value)
        } else if let Some(value) = rest.strip_prefix(">=") {
            (Op::Ge, value)
        } else if let Some(value) = rest.strip_prefix("==") {
            (Op::Eq, value)
        } else if let Some(value) = rest.strip_prefix('<') {
            (Op::Lt, value)
        } else if let Some(value) = rest.strip_prefix('>') {
            (Op::Gt, value)
        } else if rest.starts_with('=') {
            return Err(AssertionError::SingleEquals(text.to_string()));
        } else {
            return Err(AssertionError::NoOperator(text.to_string()));
        };
        let metric = Metric::from_name(metric.trim())?;
        let value = match value.trim() {
            "bound" if metric.bound(None).is_some() => Threshold::Bound,
            "bound" => return Err(AssertionError::NoBound { metric }),
            value => Threshold::Value(parse_value(&metric, value, text)?),
        };
        Ok(Assertion { metric, op, value })
    }

    /// Tests the assertion against `report`.
    pub fn check(&self, report: &Report) -> AssertionOutcome {
        let threshold = match self.value {
            Threshold::Value(value) => Ok(value),
            Threshold::Bound => self
                .metric
                .bound(Some(report))
                .flatten()
                .ok_or(Unmeasured::NoBound),
        };
        let measured = self
            .metric
            .measure(report)
            .and_then(|m| threshold.map(|t| (m, t)));
        // A NaN figure (e.g. a ratio over zero requests gone wrong) passes nothing.
        let passed = matches!(measured, Ok((m, t)) if !m.is_nan() && self.op.holds(m, t));
        let bound = measured
            .as_ref()
            .ok()
            .filter(|_| self.value == Threshold::Bound)
            .map(|(_, t)| *t);
        let measured = measured.map(|(m, _)| m);
        AssertionOutcome {
            assertion: self.clone(),
            measured: measured.as_ref().ok().copied(),
            passed,
            bound,
            unmeasured: measured.err(),
        }
    }
}

/// So clap can parse `--assert` values straight into assertions.
impl std::str::FromStr for Assertion {
    type Err = AssertionError;

    fn from_str(text: &str) -> Result<Assertion, AssertionError> {
        Assertion::parse(text)
    }
}

/// Splits `250ms` / `0.25 s` / `95%` / `0.95` into the metric's unit.
fn parse_value(metric: &Metric, value: &str, assertion: &str) -> Result<f64, AssertionError> {
    if value.is_empty() {
        return Err(AssertionError::MissingValue(assertion.to_string()));
    }
    let number_end = value
        .find(|c: char| !(c.is_ascii_digit() || matches!(c, '.' | '-' | '+' | 'e' | 'E')))
        .unwrap_or(value.len());
    // "1e3ms" is fine, but a unit starting with 'e' cannot be told from an exponent; there is none.
    let (number, unit) = value.split_at(number_end);
    let number: f64 = number
        .parse()
        .ok()
        .filter(|n: &f64| n.is_finite())
        .ok_or_else(|| AssertionError::BadNumber {
            assertion: assertion.to_string(),
            value: value.to_string(),
        })?;
    let unit = unit.trim();
    match (metric.kind(), unit) {
        (ValueKind::Milliseconds, "ms") => Ok(number),
        (ValueKind::Milliseconds, "s") => Ok(number * 1000.0),
        (ValueKind::Milliseconds, "") => Err(AssertionError::MissingUnit {
            metric: metric.clone(),
        }),
        (ValueKind::Ratio, "%") => Ok(number / 100.0),
        (_, "") => Ok(number),
        (_, unit) => Err(AssertionError::UnexpectedUnit {
            metric: metric.clone(),
            unit: unit.to_string(),
        }),
    }
}

impl fmt::Display for Assertion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let value = match (self.value, self.metric.kind()) {
            (Threshold::Bound, _) => "bound".to_string(),
            (Threshold::Value(value), ValueKind::Milliseconds) => format!("{value}ms"),
            (Threshold::Value(value), _) => value.to_string(),
        };
        write!(f, "{} {} {value}", self.metric, self.op.as_str())
    }
}

/// Why a metric has no value in a report.
#[derive(Debug, Clone, PartialEq)]
pub enum Unmeasured {
    /// The report has no tier row of this name (e.g. an edge-only run has no "regional").
    NoTier(&'static str),
    /// The report's latency has no such region key.
    NoRegion(String),
    /// The report has no stream bound to compare with.
    NoBound,
    /// No response reported this Server-Timing hop; `known` are those that were.
    NoHop { hop: String, known: Vec<String> },
}

impl fmt::Display for Unmeasured {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Unmeasured::NoTier(tier) => write!(f, "the report has no {tier:?} tier"),
            Unmeasured::NoRegion(region) => write!(f, "the report has no latency for {region:?}"),
            Unmeasured::NoBound => f.write_str("the report has no stream bound"),
            Unmeasured::NoHop { hop, known } if known.is_empty() => write!(
                f,
                "no response reported a Server-Timing hop {hop:?} (the report has no hops)"
            ),
            Unmeasured::NoHop { hop, known } => write!(
                f,
                "no response reported a Server-Timing hop {hop:?}; hops in the report: {}",
                known.join(", ")
            ),
        }
    }
}

/// The result of one assertion. An assertion whose metric the report lacks fails.
#[derive(Debug, Clone, PartialEq)]
pub struct AssertionOutcome {
    pub assertion: Assertion,
    /// The report's figure, in the assertion's unit; `None` when the report has none.
    pub measured: Option<f64>,
    pub passed: bool,
    /// The bound it was compared with, for `METRIC OP bound`.
    pub bound: Option<f64>,
    /// Why there is no measurement, when there is none.
    pub unmeasured: Option<Unmeasured>,
}

impl fmt::Display for AssertionOutcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mark = if self.passed { '✓' } else { '✗' };
        match (self.measured, &self.unmeasured) {
            (Some(measured), _) => {
                let kind = self.assertion.metric.kind();
                let shown = kind.show(measured);
                match self.bound {
                    Some(bound) => write!(
                        f,
                        "{}: measured {shown}, bound {} {mark}",
                        self.assertion,
                        kind.show(bound)
                    ),
                    None => write!(f, "{}: measured {shown} {mark}", self.assertion),
                }
            }
            (None, Some(why)) => write!(f, "{}: {why} {mark}", self.assertion),
            (None, None) => write!(f, "{}: not measured {mark}", self.assertion),
        }
    }
}

/// Tests every assertion against `report`, in order. The run passes when all outcomes do.
pub fn check(assertions: &[Assertion], report: &Report) -> Vec<AssertionOutcome> {
    assertions.iter().map(|a| a.check(report)).collect()
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::sim::report::*;
    use proptest::prelude::*;
    use std::collections::BTreeMap;

    fn latency(p50: f64, p99: f64) -> LatencySummary {
        LatencySummary {
            count: 100,
            p50_ms: p50,
            p90_ms: p50 * 1.5,
            p95_ms: p50 * 2.0,
            p99_ms: p99,
            p999_ms: p99 * 2.0,
            cdf: vec![(p50 / 2.0, 0.1), (p50, 0.5), (p99, 0.99), (p99 * 2.0, 1.0)],
        }
    }

    fn tier(name: &str, requests: u64, hits: u64) -> TierFigures {
        TierFigures {
            name: name.to_string(),
            requests,
            hits,
            misses: requests - hits,
            stale_while_revalidate: 3,
            stale_if_error: 1,
            revalidated: 2,
            collapsed: 4,
            negative_hits: 0,
            upstream_requests: requests - hits,
            hit_ratio: hits as f64 / requests as f64,
            peak_stored_bytes: 0,
            peak_entries: 0,
        }
    }

    /// A small but complete report for tests here and in `render`.
    pub(crate) fn sample_report(name: &str) -> Report {
        let mut latency_by_region = BTreeMap::new();
        latency_by_region.insert("all".to_string(), latency(12.0, 212.4));
        latency_by_region.insert("eu-west".to_string(), latency(8.0, 95.0));
        latency_by_region.insert("ap-southeast".to_string(), latency(40.0, 310.0));
        let mut served_by_tier = BTreeMap::new();
        served_by_tier.insert("edge".to_string(), 9_000_000);
        served_by_tier.insert("regional".to_string(), 700_000);
        served_by_tier.insert("origin".to_string(), 300_000);
        Report {
            scenario: ScenarioSummary {
                name: name.to_string(),
                seed: 42,
                requests: 10_000,
                duration_s: 10.0,
                pops: 8,
                regionals: 3,
                shields: 0,
                workload: "zipf(0.9) over 1000 objects, 1000 req/s".to_string(),
                warmup_requests: 2_000,
                warmup_s: 2.0,
            },
            offload: Offload {
                requests: 0.971,
                byte_hit_ratio: 0.9652,
                origin_egress_saved: 0.9,
                origin_bytes_per_client_byte: 0.1,
            },
            tiers: vec![
                tier("edge", 10_000, 9_000),
                tier("regional", 1_000, 710),
                tier("edge-fra", 4_000, 3_700),
            ],
            origin: OriginLoad {
                requests: 290,
                not_modified: 12,
                bytes: 300_000,
                peak_rps: 61.0,
                mean_rps: 29.0,
                bucket_s: 1.0,
                timeline: vec![61, 40, 30, 25, 25, 24, 23, 22, 20, 20],
                client_timeline: vec![1000; 10],
            },
            outcomes: Outcomes {
                hits: 9_000,
                misses: 1_000,
                stale_while_revalidate: 3,
                stale_if_error: 1,
                revalidated: 2,
                collapsed: 4,
                negative_hits: 0,
                not_modified_to_clients: 7,
                errors: 5,
            },
            latency: latency_by_region,
            hops: [
                ("client", 20.0, 30.0),
                ("edge", 0.0, 12.5),
                ("auth", 0.0, 16.0),
                ("regional", 40.0, 95.0),
                ("origin", 30.0, 80.0),
            ]
            .into_iter()
            .map(|(name, p50, p95)| {
                let hop = HopLatency {
                    count: 1_000,
                    p50_ms: p50,
                    p90_ms: (p50 + p95) / 2.0,
                    p95_ms: p95,
                    p99_ms: p95 * 1.5,
                    p999_ms: p95 * 2.0,
                };
                (name.to_string(), hop)
            })
            .collect(),
            bytes: BytesFigures {
                to_clients: 10_000_000,
                from_origin: 300_000,
                saved_by_compression: 2_500_000,
                by_coding: BTreeMap::from([
                    ("br".to_string(), 6_000_000),
                    ("identity".to_string(), 4_000_000),
                ]),
                saved_by_recompression: 400_000,
                recompressions: 120,
                recompression_cpu_s: 0.5,
                served_by_tier,
            },
            bounds: vec![BoundFigure {
                name: "edge hit ratio (TTL, Jung et al.)".to_string(),
                measured: 0.9,
                bound: 0.93,
                ratio: 0.9 / 0.93,
            }],
            purges: None,
            paths: BTreeMap::new(),
            stream_bound: Some(StreamBound {
                edge_hit_ratio: Bounded {
                    measured: 0.8,
                    bound: 0.99,
                },
                offload_requests: Bounded {
                    measured: 0.971,
                    bound: 0.98,
                },
                byte_hit_ratio: Bounded {
                    measured: 0.9652,
                    bound: 0.97,
                },
                global_offload_requests: 0.98,
                by_pop: [(
                    "edge-fra".to_string(),
                    Bounded {
                        measured: 0.8,
                        bound: 0.9,
                    },
                )]
                .into_iter()
                .collect(),
                gap: vec![GapBreakdown {
                    level: "edge".into(),
                    measured: 200,
                    bound: 100,
                    causes: vec![
                        GapCause {
                            cause: "first request".into(),
                            measured: 80,
                            bound: 80,
                        },
                        GapCause {
                            cause: "evicted for capacity".into(),
                            measured: 100,
                            bound: 0,
                        },
                        GapCause {
                            cause: "ttl expired".into(),
                            measured: 20,
                            bound: 20,
                        },
                    ],
                    revalidated: 5,
                }],
            }),
            cold_caches: None,
            parts: Vec::new(),
        }
    }

    fn parse(text: &str) -> Assertion {
        Assertion::parse(text).unwrap_or_else(|e| panic!("{text:?}: {e}"))
    }

    fn parse_error(text: &str) -> String {
        match Assertion::parse(text) {
            Ok(a) => panic!("{text:?} parsed as {a:?}"),
            Err(e) => e.to_string(),
        }
    }

    #[test]
    fn parses_every_metric_and_operator() {
        let cases = [
            ("offload>=0.95", Metric::Offload, Op::Ge, 0.95),
            ("byte_hit_ratio > 0.5", Metric::ByteHitRatio, Op::Gt, 0.5),
            ("egress_saved>=-0.1", Metric::EgressSaved, Op::Ge, -0.1),
            (
                "origin_bytes_per_client_byte<0.2",
                Metric::OriginBytesPerClientByte,
                Op::Lt,
                0.2,
            ),
            (
                "origin_requests<=1000",
                Metric::OriginRequests,
                Op::Le,
                1000.0,
            ),
            ("origin_peak_rps < 80", Metric::OriginPeakRps, Op::Lt, 80.0),
            ("hit_ratio>=90%", Metric::HitRatio, Op::Ge, 0.9),
            (
                "regional_hit_ratio>0.5",
                Metric::RegionalHitRatio,
                Op::Gt,
                0.5,
            ),
            ("shield_hit_ratio>=50%", Metric::ShieldHitRatio, Op::Ge, 0.5),
            ("errors==0", Metric::Errors, Op::Eq, 0.0),
            ("  errors  ==  0  ", Metric::Errors, Op::Eq, 0.0),
        ];
        for (text, metric, op, value) in cases {
            assert_eq!(
                parse(text),
                Assertion {
                    metric,
                    op,
                    value: Threshold::Value(value)
                },
                "{text}"
            );
        }
    }

    #[test]
    fn parses_latency_with_units_and_regions() {
        let p = |percentile, region: Option<&str>| Metric::Latency {
            percentile,
            region: region.map(str::to_string),
        };
        let hop = |percentile, hop: &str| Metric::HopLatency {
            percentile,
            hop: hop.to_string(),
        };
        let cases = [
            ("p99<250ms", p(Percentile::P99, None), 250.0),
            ("p99<0.25s", p(Percentile::P99, None), 250.0),
            ("p50 < 20 ms", p(Percentile::P50, None), 20.0),
            ("p90<1e2ms", p(Percentile::P90, None), 100.0),
            (
                "p95[eu-west]<0.1s",
                p(Percentile::P95, Some("eu-west")),
                100.0,
            ),
            ("p999 < 1s", p(Percentile::P999, None), 1000.0),
            ("p99.9<1s", p(Percentile::P999, None), 1000.0),
            (
                "p99[ ap-southeast ]<300ms",
                p(Percentile::P99, Some("ap-southeast")),
                300.0,
            ),
            ("p95(edge)<20ms", hop(Percentile::P95, "edge"), 20.0),
            ("p95 ( Auth ) < 0.015s", hop(Percentile::P95, "auth"), 15.0),
            ("p99.9(origin)<1s", hop(Percentile::P999, "origin"), 1000.0),
            (
                "p50(cdn-cache.v2)<=1ms",
                hop(Percentile::P50, "cdn-cache.v2"),
                1.0,
            ),
        ];
        for (text, metric, value) in cases {
            let a = parse(text);
            assert_eq!(
                (a.metric, a.value),
                (metric, Threshold::Value(value)),
                "{text}"
            );
        }
    }

    #[test]
    fn bad_input_gets_a_clear_message() {
        let cases = [
            ("", "empty assertion"),
            ("   ", "empty assertion"),
            ("offload 0.95", "\"offload 0.95\" has no operator"),
            ("offload=0.95", "use == to test equality"),
            ("offload!=0.95", "has no operator"),
            (
                "offlaod>=0.95",
                "unknown metric \"offlaod\"; known: offload, byte_hit_ratio",
            ),
            (
                "byte_offload>0.9",
                "could mean two figures: byte_hit_ratio (client bytes served from a cache",
            ),
            ("p98<250ms", "unknown metric \"p98\""),
            ("p99[<250ms", "a region is written p99[NAME]"),
            ("p99[]<250ms", "a region is written p99[NAME]"),
            ("p99[eu west]<250ms", "a region is written"),
            ("p95(edge<20ms", "a hop is written p95(NAME)"),
            ("p95()<20ms", "a hop is written p95(NAME)"),
            ("p95(ed ge)<20ms", "a hop is written p95(NAME)"),
            ("p95(edge)x<20ms", "a hop is written p95(NAME)"),
            ("p97(edge)<20ms", "unknown metric \"p97(edge)\""),
            ("(edge)<20ms", "unknown metric"),
            ("p95(edge)<20", "p95(edge) is a latency: give a unit"),
            ("offload>=", "has no value after the operator"),
            ("offload>=high", "\"high\" is not a number"),
            ("offload>=NaN", "is not a number"),
            ("offload>=inf", "is not a number"),
            (
                "p99<250",
                "p99 is a latency: give a unit, e.g. p99<250ms or p99<0.25s",
            ),
            ("p99<250us", "p99 takes no unit \"us\""),
            ("errors<5%", "errors takes no unit \"%\""),
            ("offload>=0.9ms", "offload takes no unit \"ms\""),
            ("p99<1..2ms", "is not a number"),
        ];
        for (text, expected) in cases {
            let message = parse_error(text);
            assert!(
                message.contains(expected),
                "{text:?}\n  got: {message}\n want: {expected}"
            );
        }
        let long = format!("offload>={}", "9".repeat(MAX_ASSERTION_BYTES));
        assert!(parse_error(&long).contains("the limit is 256"));
    }

    #[test]
    fn checks_against_a_report() {
        let report = sample_report("tiered");
        let assertions: Vec<Assertion> = [
            "offload>=0.95",
            "byte_hit_ratio>0.99",
            "origin_requests<=290",
            "origin_peak_rps<60",
            "hit_ratio==0.9",
            "regional_hit_ratio>=0.7",
            "errors==5",
            "p99<250ms",
            "p99[ap-southeast]<0.25s",
            "p50[mars]<1s",
        ]
        .iter()
        .map(|t| parse(t))
        .collect();
        let outcomes = check(&assertions, &report);
        let passed: Vec<bool> = outcomes.iter().map(|o| o.passed).collect();
        assert_eq!(
            passed,
            [true, false, true, false, true, true, true, true, false, false]
        );
        let shown: Vec<String> = outcomes.iter().map(ToString::to_string).collect();
        assert_eq!(shown[0], "offload >= 0.95: measured 0.971 ✓");
        assert_eq!(shown[2], "origin_requests <= 290: measured 290 ✓");
        assert_eq!(shown[3], "origin_peak_rps < 60: measured 61.0 ✗");
        assert_eq!(shown[7], "p99 < 250ms: measured 212.4ms ✓");
        assert_eq!(shown[8], "p99[ap-southeast] < 250ms: measured 310.0ms ✗");
        assert_eq!(
            shown[9],
            "p50[mars] < 1000ms: the report has no latency for \"mars\" ✗"
        );
    }

    #[test]
    fn checks_hop_percentiles_and_names_the_hops_there_are() {
        let mut report = sample_report("tiered");
        let outcomes = check(
            &[
                parse("p95(edge)<20ms"),
                parse("p95(auth)<15ms"),
                parse("p50(regional)<=40ms"),
                parse("p95(shield)<50ms"),
            ],
            &report,
        );
        let passed: Vec<bool> = outcomes.iter().map(|o| o.passed).collect();
        assert_eq!(passed, [true, false, true, false]);
        assert_eq!(
            outcomes[0].to_string(),
            "p95(edge) < 20ms: measured 12.5ms ✓"
        );
        assert_eq!(
            outcomes[1].to_string(),
            "p95(auth) < 15ms: measured 16.0ms ✗"
        );
        assert_eq!(
            outcomes[3].to_string(),
            "p95(shield) < 50ms: no response reported a Server-Timing hop \"shield\"; \
             hops in the report: auth, client, edge, origin, regional ✗"
        );
        report.hops.clear();
        let outcome = &check(&[parse("p95(edge)<20ms")], &report)[0];
        assert!(!outcome.passed);
        assert!(outcome.to_string().contains("(the report has no hops)"));
        // A region and a hop of the same name are different figures.
        assert!(check(&[parse("p95[edge]<1s")], &report)[0]
            .unmeasured
            .is_some());
    }

    #[test]
    fn missing_and_nan_figures_fail() {
        let mut report = sample_report("edge-only");
        report.tiers.retain(|t| t.name != "regional");
        report.offload.requests = f64::NAN;
        let outcomes = check(
            &[parse("regional_hit_ratio>=0"), parse("offload>=0")],
            &report,
        );
        assert!(!outcomes[0].passed && !outcomes[1].passed);
        assert_eq!(outcomes[0].unmeasured, Some(Unmeasured::NoTier("regional")));
        assert_eq!(
            outcomes[0].to_string(),
            "regional_hit_ratio >= 0: the report has no \"regional\" tier ✗"
        );
        assert!(check(&[], &report).is_empty());
        // Without a [[shield]] the report has no shield tier to measure.
        let outcome = &check(&[parse("shield_hit_ratio>=0")], &report)[0];
        assert_eq!(outcome.unmeasured, Some(Unmeasured::NoTier("shield")));
    }

    fn metric_strategy() -> impl Strategy<Value = Metric> {
        let percentile = proptest::sample::select(vec![
            Percentile::P50,
            Percentile::P90,
            Percentile::P95,
            Percentile::P99,
            Percentile::P999,
        ]);
        prop_oneof![
            proptest::sample::select(vec![
                Metric::Offload,
                Metric::ByteHitRatio,
                Metric::EgressSaved,
                Metric::OriginBytesPerClientByte,
                Metric::OriginRequests,
                Metric::OriginPeakRps,
                Metric::HitRatio,
                Metric::RegionalHitRatio,
                Metric::ShieldHitRatio,
                Metric::Errors,
            ]),
            (
                percentile.clone(),
                proptest::option::of("[a-z0-9][a-z0-9._-]{0,20}")
            )
                .prop_map(|(percentile, region)| Metric::Latency { percentile, region }),
            (percentile, "[a-z0-9._-]{1,32}")
                .prop_map(|(percentile, hop)| Metric::HopLatency { percentile, hop }),
        ]
    }

    #[test]
    fn a_figure_compares_with_its_stream_bound() {
        let report = sample_report("tiered");
        for (text, passes) in [
            ("offload<=bound", true),
            ("byte_hit_ratio <= bound", true),
            ("hit_ratio<=bound", true),
            ("offload>=bound", false),
        ] {
            let assertion = parse(text);
            assert_eq!(assertion.value, Threshold::Bound, "{text}");
            assert_eq!(
                Assertion::parse(&assertion.to_string()),
                Ok(assertion.clone())
            );
            let outcome = assertion.check(&report);
            assert_eq!(outcome.passed, passes, "{text}: {outcome}");
            assert!(outcome.to_string().contains("bound 0.9"), "{outcome}");
        }
        // A report without a bound fails, saying so.
        let mut bare = report.clone();
        bare.stream_bound = None;
        let outcome = parse("offload<=bound").check(&bare);
        assert!(!outcome.passed);
        assert!(outcome.to_string().contains("no stream bound"), "{outcome}");
        // Metrics without a bound are refused when parsed.
        for text in ["p99<=bound", "errors<bound", "regional_hit_ratio<=bound"] {
            let message = parse_error(text);
            assert!(message.contains("has no bound"), "{text}: {message}");
        }
    }

    proptest! {
        #[test]
        fn display_parses_back_to_the_same_assertion(
            metric in metric_strategy(),
            op in proptest::sample::select(vec![Op::Lt, Op::Le, Op::Gt, Op::Ge, Op::Eq]),
            value in -1e6..1e6_f64,
        ) {
            let assertion = Assertion { metric, op, value: Threshold::Value(value) };
            prop_assert_eq!(Assertion::parse(&assertion.to_string()), Ok(assertion));
        }

        #[test]
        fn arbitrary_text_never_panics(text in "\\PC*") {
            let _ = Assertion::parse(&text);
        }

        #[test]
        fn assertion_like_text_never_panics(text in "(p99|offload|errors|edge|bound|\\[|\\]|\\(|\\)|[<>=!]|[0-9.eE+-]|ms|s|%| ){0,12}") {
            if let Ok(assertion) = Assertion::parse(&text) {
                let sane = match assertion.value {
                    Threshold::Value(v) => v.is_finite(),
                    Threshold::Bound => assertion.metric.bound(None).is_some(),
                };
                prop_assert!(sane);
                let _ = assertion.check(&sample_report("any")).to_string();
            }
        }
    }
}
