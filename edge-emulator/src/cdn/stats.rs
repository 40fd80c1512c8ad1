//! Per-tier counters, served as JSON at `/__emulator/stats` and as Prometheus text at
//! `/__emulator/metrics`.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering};

use edge_worker::CfCacheStatus;
use serde::Serialize;

/// Counters of one cache tier (an edge PoP, a regional tier or a shield).
#[derive(Debug, Default)]
pub struct TierCounters {
    pub requests: AtomicU64,
    pub hits: AtomicU64,
    pub misses: AtomicU64,
    pub expired: AtomicU64,
    /// Served stale because upstream failed (stale-if-error).
    pub stale: AtomicU64,
    /// Served stale while refreshing in the background (stale-while-revalidate).
    pub updating: AtomicU64,
    pub revalidated: AtomicU64,
    pub bypass: AtomicU64,
    pub dynamic: AtomicU64,
    /// Requests that waited for another request's upstream fetch.
    pub collapsed: AtomicU64,
    /// Hits on errors kept by negative caching (the cache policy's `negative_ttl_secs`).
    pub negative_hits: AtomicU64,
    /// Requests this tier sent upstream (after coalescing).
    pub upstream_requests: AtomicU64,
    /// Background refreshes run (deferred work).
    pub background_refreshes: AtomicU64,
    /// Coded variants recoded at their best level in the background.
    pub recompressions: AtomicU64,
    /// The CPU those recodings cost an edge, in µs (the coder's native time, modelled).
    pub recompression_cpu_us: AtomicU64,
    /// Bytes clients did not receive because a recompressed variant answered them.
    pub recompression_saved_bytes: AtomicU64,
    /// Requests that failed inside the worker (trap, instantiation failure).
    pub worker_errors: AtomicU64,
}

/// Adds one to a counter.
pub fn bump(counter: &AtomicU64) {
    counter.fetch_add(1, Ordering::Relaxed);
}

impl TierCounters {
    pub fn record(&self, status: Option<CfCacheStatus>, collapsed: bool) {
        bump(&self.requests);
        if collapsed {
            bump(&self.collapsed);
        }
        let counter = match status {
            Some(CfCacheStatus::Hit) => &self.hits,
            Some(CfCacheStatus::Miss) => &self.misses,
            Some(CfCacheStatus::Expired) => &self.expired,
            Some(CfCacheStatus::Stale) => &self.stale,
            Some(CfCacheStatus::Updating) => &self.updating,
            Some(CfCacheStatus::Revalidated) => &self.revalidated,
            Some(CfCacheStatus::Bypass) => &self.bypass,
            Some(CfCacheStatus::Dynamic) | None => &self.dynamic,
        };
        bump(counter);
    }

    /// Counts a hit on a negatively cached error (the outcome's typed flag, not a header).
    pub fn record_negative(&self, status: Option<CfCacheStatus>, negative: bool) {
        if negative && status == Some(CfCacheStatus::Hit) {
            bump(&self.negative_hits);
        }
    }

    pub fn snapshot(&self) -> BTreeMap<&'static str, u64> {
        let read = |c: &AtomicU64| c.load(Ordering::Relaxed);
        BTreeMap::from([
            ("requests", read(&self.requests)),
            ("hits", read(&self.hits)),
            ("misses", read(&self.misses)),
            ("expired", read(&self.expired)),
            ("stale", read(&self.stale)),
            ("updating", read(&self.updating)),
            ("revalidated", read(&self.revalidated)),
            ("bypass", read(&self.bypass)),
            ("dynamic", read(&self.dynamic)),
            ("collapsed", read(&self.collapsed)),
            ("negative_hits", read(&self.negative_hits)),
            ("upstream_requests", read(&self.upstream_requests)),
            ("background_refreshes", read(&self.background_refreshes)),
            ("recompressions", read(&self.recompressions)),
            ("recompression_cpu_us", read(&self.recompression_cpu_us)),
            (
                "recompression_saved_bytes",
                read(&self.recompression_saved_bytes),
            ),
            ("worker_errors", read(&self.worker_errors)),
        ])
    }
}

/// What happened between the workers and one origin, across all PoPs.
#[derive(Debug, Default)]
pub struct OriginCounters {
    /// Requests the regional tiers sent to this origin.
    pub requests: AtomicU64,
    /// Failed attempts the workers reported (errors, timeouts, 5xx).
    pub failures: AtomicU64,
    /// Client responses this origin served as a failover target.
    pub failovers: AtomicU64,
    /// Hedged second requests sent to this origin, and how many answered first.
    pub hedges_sent: AtomicU64,
    pub hedges_won: AtomicU64,
}

/// One origin's routing figures in `/__emulator/stats` and `/__emulator/origins`.
#[derive(Debug, Clone, Serialize)]
pub struct OriginRouting {
    pub requests: u64,
    pub failures: u64,
    pub failovers: u64,
    pub hedges_sent: u64,
    pub hedges_won: u64,
    /// Circuit-breaker transitions summed over PoPs.
    pub breaker_state_changes: u64,
    /// The circuit state each PoP holds for this origin.
    pub breakers: BTreeMap<String, edge_worker::routing::BreakerState>,
}

impl OriginCounters {
    pub fn report(&self) -> OriginRouting {
        let read = |c: &AtomicU64| c.load(Ordering::Relaxed);
        OriginRouting {
            requests: read(&self.requests),
            failures: read(&self.failures),
            failovers: read(&self.failovers),
            hedges_sent: read(&self.hedges_sent),
            hedges_won: read(&self.hedges_won),
            breaker_state_changes: 0,
            breakers: BTreeMap::new(),
        }
    }
}

/// Client and origin requests per second, from samples of the running totals taken about
/// once a second (`serve` samples; a replay reports its own timeline instead).
#[derive(Debug, Default)]
pub struct RateMeter {
    samples: std::sync::Mutex<std::collections::VecDeque<(std::time::Instant, u64, u64)>>,
}

/// The window rates are taken over.
pub const RATE_WINDOW: std::time::Duration = std::time::Duration::from_secs(10);
/// Samples kept: a minute at one a second.
const MAX_RATE_SAMPLES: usize = 60;

/// Requests per second over the last [`RATE_WINDOW`] (or since the first sample).
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct Rates {
    pub client_requests_per_s: f64,
    pub origin_requests_per_s: f64,
    /// Seconds the rates were taken over (0 before two samples).
    pub window_s: f64,
}

impl RateMeter {
    /// Records the running totals (client requests, origin requests) at `at`.
    pub fn sample(&self, at: std::time::Instant, clients: u64, origins: u64) {
        let mut samples = self.samples.lock().unwrap_or_else(|e| e.into_inner());
        samples.push_back((at, clients, origins));
        while samples.len() > MAX_RATE_SAMPLES {
            samples.pop_front();
        }
    }

    pub fn rates(&self) -> Rates {
        let samples = self.samples.lock().unwrap_or_else(|e| e.into_inner());
        let Some(&(last, clients, origins)) = samples.back() else {
            return Rates::default();
        };
        let Some(&(first, clients_then, origins_then)) = samples
            .iter()
            .find(|(at, _, _)| last.duration_since(*at) <= RATE_WINDOW)
        else {
            return Rates::default();
        };
        let window = last.duration_since(first).as_secs_f64();
        if window <= 0.0 {
            return Rates::default();
        }
        let per_s = |now: u64, then: u64| round2(now.saturating_sub(then) as f64 / window);
        Rates {
            client_requests_per_s: per_s(clients, clients_then),
            origin_requests_per_s: per_s(origins, origins_then),
            window_s: round2(window),
        }
    }
}

fn round2(value: f64) -> f64 {
    (value * 100.0).round() / 100.0
}

/// The figures people read first: hit ratios per tier kind and per cache, and the rates.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Summary {
    /// Requests a tier answered from its cache (hits and stale served) over its requests,
    /// summed over the tiers of each kind: `edge`, `regional`, `shield`. Absent for a kind
    /// without requests.
    pub hit_ratio: BTreeMap<&'static str, f64>,
    /// The same per cache (`edge-fra`, `regional-eu-central`).
    pub hit_ratio_by_cache: BTreeMap<String, f64>,
    #[serde(flatten)]
    pub rates: Rates,
}

/// Requests answered from the cache over requests, from one tier's counters (the same rule
/// as the simulator's report: hits, stale-while-revalidate and stale-if-error answers).
pub fn hit_ratio(counters: &BTreeMap<&'static str, u64>) -> Option<f64> {
    let read = |k: &str| counters.get(k).copied().unwrap_or(0);
    let requests = read("requests");
    (requests > 0).then(|| {
        let served = read("hits") + read("updating") + read("stale");
        (served as f64 / requests as f64 * 10_000.0).round() / 10_000.0
    })
}

/// The counters of several caches added up (a tier kind's total).
pub fn summed(
    caches: &BTreeMap<String, BTreeMap<&'static str, u64>>,
) -> BTreeMap<&'static str, u64> {
    let mut total: BTreeMap<&'static str, u64> = BTreeMap::new();
    for counters in caches.values() {
        for (key, value) in counters {
            *total.entry(key).or_default() += value;
        }
    }
    total
}

impl Summary {
    pub fn of<'a>(
        kinds: impl IntoIterator<
            Item = (
                edge_worker::hops::TierKind,
                &'a BTreeMap<String, BTreeMap<&'static str, u64>>,
            ),
        >,
        rates: Rates,
    ) -> Self {
        let mut summary = Summary {
            rates,
            ..Summary::default()
        };
        for (kind, caches) in kinds {
            let total = summed(caches);
            for (name, counters) in caches {
                if let Some(ratio) = hit_ratio(counters) {
                    summary
                        .hit_ratio_by_cache
                        .insert(format!("{}-{name}", kind.as_str()), ratio);
                }
            }
            if let Some(ratio) = hit_ratio(&total) {
                summary.hit_ratio.insert(kind.as_str(), ratio);
            }
        }
        summary
    }
}

/// Everything `/__emulator/stats` reports.
#[derive(Debug, Serialize)]
pub struct StatsReport {
    /// The emulator's clock (advanced by `/__emulator/clock`), Unix milliseconds and RFC 3339.
    pub now_ms: u64,
    pub now: String,
    pub clock_offset_ms: u64,
    /// Hit ratios and request rates.
    pub summary: Summary,
    pub edge: BTreeMap<String, BTreeMap<&'static str, u64>>,
    pub regional: BTreeMap<String, BTreeMap<&'static str, u64>>,
    /// Origin shields' counters (absent when the topology has none).
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub shield: BTreeMap<String, BTreeMap<&'static str, u64>>,
    pub origins: BTreeMap<String, OriginReport>,
    /// Per origin: requests, failures, failovers, hedges and circuit states.
    pub routing: BTreeMap<String, OriginRouting>,
    pub load: LoadReport,
    /// The worker's instances: created, retired by reason, requests each served.
    pub isolates: IsolateReport,
    /// Purges so far, the entries they reached and the origin requests they caused.
    pub purges: crate::cdn::purge::PurgeTotals,
    /// Exposures per experiment and variant (absent without `[[experiments]]`).
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub experiments: BTreeMap<String, BTreeMap<String, VariantExposures>>,
}

/// How often one variant was served.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct VariantExposures {
    /// Requests assigned to the variant, forced ones included.
    pub exposures: u64,
    /// Of those, requests that forced it (`x-edge-force-variant`).
    pub forced: u64,
}

/// Exposures as the workers report them (typed values of each outcome), across PoPs.
#[derive(Debug, Default)]
pub struct ExposureTally {
    counts: std::sync::Mutex<BTreeMap<(String, String), VariantExposures>>,
}

impl ExposureTally {
    pub fn record(&self, exposures: &[edge_worker::experiments::Exposure]) {
        if exposures.is_empty() {
            return;
        }
        let mut counts = self.counts.lock().unwrap_or_else(|e| e.into_inner());
        for exposure in exposures {
            let key = (
                exposure.experiment.to_string(),
                exposure.variant.to_string(),
            );
            let count = counts.entry(key).or_default();
            count.exposures += 1;
            count.forced += u64::from(exposure.forced);
        }
    }

    pub fn snapshot(&self) -> BTreeMap<String, BTreeMap<String, VariantExposures>> {
        let counts = self.counts.lock().unwrap_or_else(|e| e.into_inner());
        let mut out: BTreeMap<String, BTreeMap<String, VariantExposures>> = BTreeMap::new();
        for ((experiment, variant), count) in counts.iter() {
            out.entry(experiment.clone())
                .or_default()
                .insert(variant.clone(), *count);
        }
        out
    }
}

/// How the worker's instances were used (`--isolation`).
#[derive(Debug, Default, Clone, Serialize)]
pub struct IsolateReport {
    /// `isolate` (warm instances reused) or `fresh` (one instance per request).
    pub mode: &'static str,
    /// Instances created, across PoPs.
    pub created: u64,
    /// Instances alive now: serving a request or idle.
    pub live: u64,
    /// Instances waiting for a request.
    pub idle: u64,
    /// The linear memory the idle instances hold (it never shrinks while they live).
    pub idle_memory_bytes: u64,
    /// Worker calls (client requests and deferred work) the instances ran.
    pub requests: u64,
    /// `requests / created`: how well instances are reused (1.0 in fresh mode).
    pub requests_per_isolate: f64,
    /// The most requests one instance has served.
    pub max_requests_per_isolate: u64,
    /// Instances dropped, by reason: `trap`, `cpu_limit`, `memory_limit`, `max_requests`,
    /// `memory_bound`, `idle_full` (more idle than the PoP keeps), `cancelled` (the client
    /// went away mid-request), `single_use` (fresh mode).
    pub retired: BTreeMap<&'static str, u64>,
}

/// How `serve` is holding up: admission and coalescing under load.
#[derive(Debug, Default, Serialize)]
pub struct LoadReport {
    /// Client requests being handled now.
    pub in_flight: u64,
    /// Client requests refused with 503 because `in_flight` was at its limit.
    pub shed: u64,
    /// Waits for another request's fetch that gave up at the limit (then fetched alone).
    pub coalesce_timeouts: u64,
}

#[derive(Debug, Serialize)]
pub struct OriginReport {
    /// Base URL, for fault injection (`PUT {url}/__origin/faults`).
    pub url: String,
    /// The origin-stub's own counters (in-process origins only).
    pub stats: Option<origin_stub::OriginStats>,
}

/// What each tier counter counts, for Prometheus' `# HELP` (names as in
/// [`TierCounters::snapshot`]).
const TIER_COUNTER_HELP: &[(&str, &str)] = &[
    ("requests", "Requests the cache tier handled"),
    ("hits", "Requests answered from a fresh stored response"),
    ("misses", "Requests with nothing stored to use"),
    ("expired", "Requests whose stored response had expired"),
    (
        "stale",
        "Requests answered stale because upstream failed (stale-if-error)",
    ),
    (
        "updating",
        "Requests answered stale while refreshing (stale-while-revalidate)",
    ),
    (
        "revalidated",
        "Requests answered after a 304 validated the stored response",
    ),
    ("bypass", "Requests that bypassed the cache"),
    (
        "dynamic",
        "Requests that could not be cached (method, status or directives)",
    ),
    (
        "collapsed",
        "Requests that waited for another request's upstream fetch",
    ),
    ("negative_hits", "Hits on errors kept by negative caching"),
    (
        "upstream_requests",
        "Requests the tier sent upstream, after coalescing",
    ),
    (
        "background_refreshes",
        "Background refreshes run after a response",
    ),
    (
        "recompressions",
        "Coded variants recoded at their best level in the background",
    ),
    (
        "recompression_cpu_us",
        "Modelled coder CPU those recodings cost, microseconds",
    ),
    (
        "recompression_saved_bytes",
        "Bytes clients did not receive thanks to recoded variants",
    ),
    (
        "worker_errors",
        "Requests that failed inside the worker (trap, instantiation)",
    ),
];

/// One metric's `# HELP` and `# TYPE` lines.
fn describe(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} {kind}");
}

/// Prometheus text exposition of the same figures; every metric has `# HELP` and `# TYPE`.
pub fn prometheus(report: &StatsReport) -> String {
    let mut out = String::new();
    let tiers = [
        ("edge", &report.edge),
        ("regional", &report.regional),
        ("shield", &report.shield),
    ];
    let names: Vec<&str> = report
        .edge
        .values()
        .next()
        .map(|m| m.keys().copied().collect())
        .unwrap_or_default();
    for name in names {
        let help = TIER_COUNTER_HELP
            .iter()
            .find(|(n, _)| *n == name)
            .map_or("A cache tier counter", |(_, help)| help);
        let metric = format!("edge_emulator_{name}_total");
        describe(&mut out, &metric, "counter", help);
        for (tier, members) in tiers {
            for (cache, counters) in members {
                let _ = writeln!(
                    out,
                    "{metric}{{tier=\"{tier}\",cache=\"{cache}\"}} {}",
                    counters.get(name).copied().unwrap_or(0)
                );
            }
        }
    }
    describe(
        &mut out,
        "edge_emulator_hit_ratio",
        "gauge",
        "Requests answered from the cache (hits and stale served) over requests, per cache",
    );
    for (cache, ratio) in &report.summary.hit_ratio_by_cache {
        let (tier, name) = cache.split_once('-').unwrap_or((cache, ""));
        let _ = writeln!(
            out,
            "edge_emulator_hit_ratio{{tier=\"{tier}\",cache=\"{name}\"}} {ratio}"
        );
    }
    if !report.experiments.is_empty() {
        describe(
            &mut out,
            "edge_emulator_experiment_exposures_total",
            "counter",
            "Requests assigned to an experiment's variant (forced=\"true\": by x-edge-force-variant)",
        );
        for (experiment, variants) in &report.experiments {
            for (variant, count) in variants {
                for (forced, value) in [
                    ("false", count.exposures - count.forced),
                    ("true", count.forced),
                ] {
                    let _ = writeln!(
                        out,
                        "edge_emulator_experiment_exposures_total{{experiment=\"{experiment}\",variant=\"{variant}\",forced=\"{forced}\"}} {value}"
                    );
                }
            }
        }
    }
    let rates = &report.summary.rates;
    for (name, help, value) in [
        (
            "edge_emulator_client_requests_per_second",
            "Client requests per second over the last seconds (serve)",
            rates.client_requests_per_s,
        ),
        (
            "edge_emulator_origin_requests_per_second",
            "Origin requests per second over the last seconds (serve)",
            rates.origin_requests_per_s,
        ),
    ] {
        describe(&mut out, name, "gauge", help);
        let _ = writeln!(out, "{name} {value}");
    }
    type Read = fn(&OriginRouting) -> u64;
    let origin_figures: [(&str, &str, Read); 5] = [
        (
            "failures",
            "Failed attempts at the origin (errors, timeouts, 5xx)",
            |r| r.failures,
        ),
        (
            "failovers",
            "Client responses this origin served as a failover target",
            |r| r.failovers,
        ),
        (
            "hedges_sent",
            "Hedged second requests sent to the origin",
            |r| r.hedges_sent,
        ),
        (
            "hedges_won",
            "Hedged requests to the origin that answered first",
            |r| r.hedges_won,
        ),
        (
            "breaker_state_changes",
            "Circuit-breaker transitions, summed over PoPs",
            |r| r.breaker_state_changes,
        ),
    ];
    for (name, help, read) in origin_figures {
        let metric = format!("edge_emulator_origin_{name}_total");
        describe(&mut out, &metric, "counter", help);
        for (origin, routing) in &report.routing {
            let _ = writeln!(out, "{metric}{{origin=\"{origin}\"}} {}", read(routing));
        }
    }
    let load = &report.load;
    for (name, kind, help, value) in [
        (
            "in_flight",
            "gauge",
            "Client requests being handled now",
            load.in_flight,
        ),
        (
            "shed_total",
            "counter",
            "Client requests refused with 503 at the in-flight limit",
            load.shed,
        ),
        (
            "coalesce_timeouts_total",
            "counter",
            "Waits for another request's fetch that gave up at the limit",
            load.coalesce_timeouts,
        ),
    ] {
        let metric = format!("edge_emulator_{name}");
        describe(&mut out, &metric, kind, help);
        let _ = writeln!(out, "{metric} {value}");
    }
    let isolates = &report.isolates;
    for (name, kind, help, value) in [
        (
            "isolates_created_total",
            "counter",
            "Worker instances created",
            isolates.created,
        ),
        (
            "isolates_live",
            "gauge",
            "Worker instances alive now",
            isolates.live,
        ),
        (
            "isolates_idle",
            "gauge",
            "Worker instances waiting for a request",
            isolates.idle,
        ),
        (
            "isolate_requests_total",
            "counter",
            "Worker calls the instances ran",
            isolates.requests,
        ),
        (
            "isolate_max_requests",
            "gauge",
            "The most requests one instance has served",
            isolates.max_requests_per_isolate,
        ),
    ] {
        let metric = format!("edge_emulator_{name}");
        describe(&mut out, &metric, kind, help);
        let _ = writeln!(out, "{metric} {value}");
    }
    describe(
        &mut out,
        "edge_emulator_isolates_retired_total",
        "counter",
        "Worker instances dropped, by reason",
    );
    for (reason, value) in &isolates.retired {
        let _ = writeln!(
            out,
            "edge_emulator_isolates_retired_total{{reason=\"{reason}\"}} {value}"
        );
    }
    describe(
        &mut out,
        "edge_emulator_origin_requests_total",
        "counter",
        "Requests the origin received",
    );
    for (origin, o) in &report.origins {
        if let Some(stats) = &o.stats {
            let _ = writeln!(
                out,
                "edge_emulator_origin_requests_total{{origin=\"{origin}\"}} {}",
                stats.requests
            );
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates_come_from_the_samples_in_the_window() {
        let meter = RateMeter::default();
        assert_eq!(meter.rates(), Rates::default());
        let start = std::time::Instant::now();
        for s in 0..=20u64 {
            let at = start + std::time::Duration::from_secs(s);
            meter.sample(at, s * 100, s * 5);
        }
        let rates = meter.rates();
        assert_eq!(rates.window_s, 10.0);
        assert_eq!(rates.client_requests_per_s, 100.0);
        assert_eq!(rates.origin_requests_per_s, 5.0);
    }

    #[test]
    fn hit_ratio_counts_stale_answers_as_served() {
        let counters =
            BTreeMap::from([("requests", 10), ("hits", 6), ("updating", 1), ("stale", 1)]);
        assert_eq!(hit_ratio(&counters), Some(0.8));
        assert_eq!(hit_ratio(&BTreeMap::new()), None);
    }
}
