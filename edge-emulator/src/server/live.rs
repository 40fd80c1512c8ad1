//! The live page at `/__emulator/`, as varnishstat shows a running Varnish: per-tier and
//! per-PoP hit ratios, client and origin requests per second, latency percentiles and the last
//! requests, refreshed every second from `/__emulator/live.json`. One self-contained page:
//! inline CSS and script, no build step, nothing fetched from elsewhere.

use std::collections::BTreeMap;

use serde::Serialize;

use super::access_log::{AccessLog, LatencyFigures, RequestLine};
use crate::cdn::stats::{hit_ratio, summed, Rates, StatsReport};

/// One cache's line on the page.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CacheLine {
    /// `edge-fra`, `regional-eu-central`, or a kind's total (`edge`).
    pub name: String,
    pub requests: u64,
    pub hits: u64,
    /// Hits and stale answers over requests; `null` before the first request.
    pub hit_ratio: Option<f64>,
    pub upstream_requests: u64,
}

/// What the page shows, refreshed every second.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LiveView {
    pub now: String,
    pub now_ms: u64,
    /// How far `/__emulator/clock` has moved the emulator's clock ahead of real time.
    pub clock_offset_ms: u64,
    pub rates: Rates,
    /// Each kind's total (`edge`, `regional`, `shield`).
    pub tiers: Vec<CacheLine>,
    /// Each cache: every PoP, regional tier and shield.
    pub caches: Vec<CacheLine>,
    pub origin_requests: u64,
    pub latency: LatencyFigures,
    /// The last requests, newest first.
    pub recent: Vec<RequestLine>,
}

fn line(name: String, counters: &BTreeMap<&'static str, u64>) -> CacheLine {
    let read = |k: &str| counters.get(k).copied().unwrap_or(0);
    CacheLine {
        name,
        requests: read("requests"),
        hits: read("hits"),
        hit_ratio: hit_ratio(counters),
        upstream_requests: read("upstream_requests"),
    }
}

impl LiveView {
    pub fn of(stats: &StatsReport, log: &AccessLog) -> Self {
        let mut tiers = Vec::new();
        let mut caches = Vec::new();
        for (kind, members) in [
            ("edge", &stats.edge),
            ("regional", &stats.regional),
            ("shield", &stats.shield),
        ] {
            if members.is_empty() {
                continue;
            }
            for (name, counters) in members {
                caches.push(line(format!("{kind}-{name}"), counters));
            }
            tiers.push(line(kind.to_string(), &summed(members)));
        }
        LiveView {
            now: stats.now.clone(),
            now_ms: stats.now_ms,
            clock_offset_ms: stats.clock_offset_ms,
            rates: stats.summary.rates,
            tiers,
            caches,
            origin_requests: stats.routing.values().map(|r| r.requests).sum(),
            latency: log.latency(),
            recent: log.recent(),
        }
    }
}

/// The page. Its script reads `live.json` beside it every second (carrying the `token` query
/// parameter it was opened with, for `--admin-token`), and fills the tables; a failed read
/// is shown, not thrown.
pub const PAGE: &str = include_str!("live.html");
