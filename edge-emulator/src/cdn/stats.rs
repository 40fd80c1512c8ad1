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

/// Everything `/__emulator/stats` reports.
#[derive(Debug, Serialize)]
pub struct StatsReport {
    pub clock_offset_ms: u64,
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

/// Prometheus text exposition of the same figures.
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
        let _ = writeln!(out, "# TYPE edge_emulator_{name}_total counter");
        for (tier, members) in tiers {
            for (cache, counters) in members {
                let _ = writeln!(
                    out,
                    "edge_emulator_{name}_total{{tier=\"{tier}\",cache=\"{cache}\"}} {}",
                    counters.get(name).copied().unwrap_or(0)
                );
            }
        }
    }
    for (name, read) in [
        (
            "failures",
            (|r: &OriginRouting| r.failures) as fn(&OriginRouting) -> u64,
        ),
        ("failovers", |r| r.failovers),
        ("hedges_sent", |r| r.hedges_sent),
        ("hedges_won", |r| r.hedges_won),
        ("breaker_state_changes", |r| r.breaker_state_changes),
    ] {
        let _ = writeln!(out, "# TYPE edge_emulator_origin_{name}_total counter");
        for (origin, routing) in &report.routing {
            let _ = writeln!(
                out,
                "edge_emulator_origin_{name}_total{{origin=\"{origin}\"}} {}",
                read(routing)
            );
        }
    }
    let load = &report.load;
    for (name, kind, value) in [
        ("in_flight", "gauge", load.in_flight),
        ("shed_total", "counter", load.shed),
        ("coalesce_timeouts_total", "counter", load.coalesce_timeouts),
    ] {
        let _ = writeln!(out, "# TYPE edge_emulator_{name} {kind}");
        let _ = writeln!(out, "edge_emulator_{name} {value}");
    }
    let isolates = &report.isolates;
    for (name, kind, value) in [
        ("isolates_created_total", "counter", isolates.created),
        ("isolates_live", "gauge", isolates.live),
        ("isolates_idle", "gauge", isolates.idle),
        ("isolate_requests_total", "counter", isolates.requests),
        (
            "isolate_max_requests",
            "gauge",
            isolates.max_requests_per_isolate,
        ),
    ] {
        let _ = writeln!(out, "# TYPE edge_emulator_{name} {kind}");
        let _ = writeln!(out, "edge_emulator_{name} {value}");
    }
    let _ = writeln!(out, "# TYPE edge_emulator_isolates_retired_total counter");
    for (reason, value) in &isolates.retired {
        let _ = writeln!(
            out,
            "edge_emulator_isolates_retired_total{{reason=\"{reason}\"}} {value}"
        );
    }
    let _ = writeln!(out, "# TYPE edge_emulator_origin_requests_total counter");
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
