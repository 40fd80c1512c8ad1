//! What one simulation run measured. Serialised as the JSON report, which is deterministic:
//! the same scenario and seed give byte-identical JSON (no wall-clock figures in here; the
//! command prints those beside the table).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Report {
    pub scenario: ScenarioSummary,
    /// Offload over all tiers: 1 − origin requests / client requests, and by bytes.
    pub offload: Offload,
    /// One row per tier kind, nearest the client first: "edge", "regional", "shield" (when
    /// configured), each summed over its caches; then per cache ("edge-fra", "regional-us-east").
    pub tiers: Vec<TierFigures>,
    pub origin: OriginLoad,
    /// What clients got, counted at the edge.
    pub outcomes: Outcomes,
    /// Virtual-time latency from request to response, per client region ("all" first is not
    /// guaranteed: BTreeMap order; the key "all" is always present).
    pub latency: BTreeMap<String, LatencySummary>,
    /// Latency by hop, from the Server-Timing entries of the responses (measured part of
    /// the run): "client" (the client's RTT), "edge" (time at the edge on the virtual clock,
    /// upstream hops taken out: waits such as coalescing; no compute unless
    /// `--add-compute`), "auth" (the worker clock's advance while its gate checked a token: a
    /// JWKS fetch; requests that presented a token only), "regional", "shield", "origin"
    /// (each trip's virtual time, the hops beyond it included; requests that made the trip
    /// only). See `sim::hops`. Absent when no response reported a hop.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub hops: BTreeMap<String, HopLatency>,
    pub bytes: BytesFigures,
    /// Measured hit ratios beside their analytic bounds, where the workload has one.
    pub bounds: Vec<BoundFigure>,
    /// Purges in the measured part of the run and what they cost; absent when there were none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub purges: Option<PurgeFigures>,
    /// Measured client responses by the tiers they passed, from each response's hops: tier
    /// kind (`edge`, `regional`, `shield`) → that tier's cache outcome (`HIT`, `MISS`, …;
    /// `none` for a tier that forwarded without caching) → responses. A response rebuilt
    /// from a tier's own copy (revalidated, stale-if-error) lists that tier alone.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub paths: BTreeMap<String, BTreeMap<String, u64>>,
    /// What the replayed stream itself allows: the misses an infinite cache at each location
    /// could not avoid, beside what was measured, and why the two differ. Present for every
    /// workload (generated, default, trace).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stream_bound: Option<StreamBound>,
    /// Present when the caches never warmed (`sim::warmth`): the figures describe caches
    /// filling, not a steady state.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cold_caches: Option<ColdCaches>,
    /// The fragments of composed pages (edge composition), by path: what the edge cached per
    /// part. The tier rows, hit ratios and the bound count a composed page by its template.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub parts: Vec<PartFigures>,
}

/// One fragment path of composed pages over the measured requests.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct PartFigures {
    /// The fragment's path (its query left out).
    pub part: String,
    /// Times a page included it.
    pub requests: u64,
    /// Answered from the edge's shared cache.
    pub edge_hits: u64,
    /// Answered from the edge's per-subject private cache.
    pub private_hits: u64,
    /// Fetched upstream from the edge (a regional tier or the origin answered).
    pub fetched: u64,
    /// Of those, fetches that reached an origin.
    pub origin_fetches: u64,
    /// Its bytes in the composed pages.
    pub bytes: u64,
}

/// Says what the parts table counts, under it.
pub const PART_FIGURES: &str = "a composed page counts once in the tier rows, hit ratios and \
     the bound, by its template's outcome; its parts' own outcomes are these";

/// Why a run's caches had not warmed, and what to run instead.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ColdCaches {
    /// The measured window, virtual seconds.
    pub measured_s: f64,
    /// The workload's TTL, when the window was shorter than it.
    pub ttl_s: Option<u64>,
    /// Offload by requests over the measured window's halves (when each had enough
    /// requests to tell).
    pub offload_first_half: Option<f64>,
    pub offload_second_half: Option<f64>,
    /// A `--requests` that covers the warm-up and two TTLs (generated workloads).
    pub suggest_requests: Option<u64>,
    /// A `--warmup-s` of one TTL (generated workloads).
    pub suggest_warmup_s: Option<f64>,
}

/// The best any cache of this topology could do on this request stream: an infinite cache at
/// every location (each PoP; each regional tier, or the shield above it; one global cache),
/// keeping every response for as long as its origin allowed (TTL and stale-while-revalidate
/// as sent, no jitter, no Age lost on the way down), losing it only to a purge, and never
/// storing what may not be stored. Measured figures cannot exceed these.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StreamBound {
    /// Requests answered at the edge (hits and stale served) over requests.
    pub edge_hit_ratio: Bounded,
    /// 1 − origin requests / client requests through the whole hierarchy.
    pub offload_requests: Bounded,
    /// Byte hit ratio: 1 − bytes clients received from an origin fetch / bytes clients
    /// received.
    pub byte_hit_ratio: Bounded,
    /// One infinite cache in front of the origin for every client: no topology does better.
    pub global_offload_requests: f64,
    /// Edge hit ratio per PoP, by cache name ("edge-fra").
    pub by_pop: BTreeMap<String, Bounded>,
    /// Why the measured figures fall short of their bounds: at the edge, and at the origin.
    pub gap: Vec<GapBreakdown>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Bounded {
    pub measured: f64,
    pub bound: f64,
}

impl StreamBound {
    /// The figures measured above their bound, as lines for the user ("offload by requests:
    /// measured 19.450 %, bound 19.240 %"). No correct cache beats an infinite one, so any line
    /// here is a bug in the emulator, the worker or the bound. Both sides are rounded the same
    /// way (monotonically), so rounding alone never puts one above the other.
    pub fn beaten(&self) -> Vec<String> {
        let mut figures = vec![
            ("edge hit ratio".to_string(), &self.edge_hit_ratio),
            ("offload by requests".to_string(), &self.offload_requests),
            ("byte hit ratio".to_string(), &self.byte_hit_ratio),
        ];
        figures.extend(
            self.by_pop
                .iter()
                .map(|(pop, f)| (format!("{pop} hit ratio"), f)),
        );
        figures
            .into_iter()
            .filter(|(_, f)| f.measured > f.bound)
            .map(|(name, f)| {
                format!(
                    "{name}: measured {:.3} %, bound {:.3} %",
                    f.measured * 100.0,
                    f.bound * 100.0
                )
            })
            .collect()
    }
}

/// The warning printed above a report whose measured figures beat their bound.
pub const BOUND_BEATEN: &str = "WARNING: measured figures beat their stream bound, which no \
     correct cache can do: a bug in the emulator, the worker or the bound. Please report it \
     with the trace or scenario that shows it.";

/// The requests one level could not answer itself ("edge": not served from the PoP's cache;
/// "origin": requests the origins received), measured and in the bound, by cause.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GapBreakdown {
    pub level: String,
    pub measured: u64,
    pub bound: u64,
    pub causes: Vec<GapCause>,
    /// Of the measured ones, those a 304 answered: an expiry that cost a round trip but no
    /// body (counted under its cause as well).
    #[serde(default)]
    pub revalidated: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GapCause {
    /// "first request", "ttl expired", "ttl expired early (age carried down)",
    /// "evicted for capacity", "ttl shortened by jitter", "invalidated", "not cacheable",
    /// "coalesced", "held under another origin's url", "answered by the worker", "other".
    pub cause: String,
    pub measured: u64,
    pub bound: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PurgeFigures {
    /// Purges applied (soft ones included).
    pub purges: u64,
    pub soft_purges: u64,
    /// Cache entries removed or marked stale, every variant, coding and tier counted.
    pub entries: u64,
    /// Origin requests that were the first for a path after a purge reached it: the origin
    /// load purges caused.
    pub origin_refetches: u64,
    /// Each purge's delay before it reached the caches.
    pub propagation_ms: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ScenarioSummary {
    /// A label for comparisons, e.g. "tiered" or "edge-only".
    pub name: String,
    pub seed: u64,
    pub requests: u64,
    /// Virtual time the workload spans, seconds.
    pub duration_s: f64,
    pub pops: usize,
    pub regionals: usize,
    /// Origin shields (omitted when none, so reports without one read as before).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub shields: usize,
    /// One-line description of the workload, e.g. "zipf(0.9) over 10000 objects, 2000 req/s".
    pub workload: String,
    /// Requests replayed during the warm-up, which fill the caches and are not measured
    /// (`requests` counts the measured ones).
    #[serde(default)]
    pub warmup_requests: u64,
    /// The warm-up's length, virtual seconds.
    #[serde(default)]
    pub warmup_s: f64,
}

fn is_zero(n: &usize) -> bool {
    *n == 0
}

/// What the caches took off the origins. The three byte figures answer different questions
/// and are named so they cannot be mistaken for one another: see [`BYTE_FIGURES`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Offload {
    /// 1 − origin requests / client requests.
    pub requests: f64,
    /// Byte hit ratio: the share of the bytes clients received that a cache served (1 − bytes
    /// clients received from an origin fetch / bytes clients received).
    pub byte_hit_ratio: f64,
    /// Origin egress saved against no CDN: 1 − bytes origins sent / bytes clients received
    /// (without a CDN the origins would have sent what the clients received, compressed or
    /// not). Negative when origins sent more than clients got (identity bodies the edge
    /// compressed, fields it trimmed).
    pub origin_egress_saved: f64,
    /// Bytes origins sent per byte clients received (1 − `origin_egress_saved`).
    pub origin_bytes_per_client_byte: f64,
}

/// How the report defines its byte figures, said beside them in every view.
pub const BYTE_FIGURES: &str = "byte hit ratio = client bytes served from a cache / client \
     bytes; origin egress saved = 1 − origin bytes / client bytes (against no CDN, where origins \
     send what clients receive); origin bytes per client byte = origin bytes / client bytes";

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TierFigures {
    /// "edge", "regional", "shield", or one cache's name ("edge-fra").
    pub name: String,
    pub requests: u64,
    pub hits: u64,
    pub misses: u64,
    /// Served stale while refreshing (stale-while-revalidate).
    pub stale_while_revalidate: u64,
    /// Served stale because upstream failed (stale-if-error).
    pub stale_if_error: u64,
    /// Validated upstream with a 304.
    pub revalidated: u64,
    /// Waited for another request's fetch (coalescing).
    pub collapsed: u64,
    /// Hits on errors kept by negative caching (cache policy), included in `hits`.
    #[serde(default)]
    pub negative_hits: u64,
    /// Requests this tier sent upstream, its background refreshes included (which no client
    /// request's path shows: the other figures of the row count client requests).
    pub upstream_requests: u64,
    /// Requests answered from this tier's cache without asking upstream (hits and stale
    /// served), over requests (0 when no requests). Revalidations count as upstream requests.
    pub hit_ratio: f64,
    /// The most bytes this cache held at once over the whole run (warm-up included: memory
    /// is sized by it), bodies plus 512 bytes per entry; for a tier kind, the sum over its
    /// caches.
    #[serde(default)]
    pub peak_stored_bytes: u64,
    /// The most entries it held at once (responses, Vary rules, verified tokens).
    #[serde(default)]
    pub peak_entries: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OriginLoad {
    pub requests: u64,
    /// Conditional requests the origin answered 304 (an origin request, almost no bytes).
    pub not_modified: u64,
    pub bytes: u64,
    /// Origin requests in the busiest timeline bucket after warm-up, per second.
    pub peak_rps: f64,
    pub mean_rps: f64,
    /// Width of one timeline bucket, seconds.
    pub bucket_s: f64,
    /// Origin requests per bucket, from t = 0.
    pub timeline: Vec<u64>,
    /// Client requests per bucket, from t = 0 (same buckets).
    pub client_timeline: Vec<u64>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Outcomes {
    pub hits: u64,
    pub misses: u64,
    pub stale_while_revalidate: u64,
    pub stale_if_error: u64,
    pub revalidated: u64,
    pub collapsed: u64,
    /// Edge hits on errors kept by negative caching (cache policy), included in `hits`.
    #[serde(default)]
    pub negative_hits: u64,
    /// 304s the edge sent to clients (their If-None-Match matched).
    pub not_modified_to_clients: u64,
    /// 4xx/5xx responses to clients.
    pub errors: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LatencySummary {
    pub count: u64,
    pub p50_ms: f64,
    pub p90_ms: f64,
    pub p95_ms: f64,
    pub p99_ms: f64,
    pub p999_ms: f64,
    /// Points of the CDF: (latency ms, fraction of requests at or below it), ascending, at most
    /// 100 points.
    pub cdf: Vec<(f64, f64)>,
}

/// One hop's Server-Timing durations over the responses that reported it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HopLatency {
    /// Responses that reported this hop.
    pub count: u64,
    pub p50_ms: f64,
    pub p90_ms: f64,
    pub p95_ms: f64,
    pub p99_ms: f64,
    pub p999_ms: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BytesFigures {
    /// Body bytes sent to clients.
    pub to_clients: u64,
    /// Body bytes origins sent.
    pub from_origin: u64,
    /// Identity bytes minus the bytes sent, over responses the edge compressed.
    pub saved_by_compression: u64,
    /// Body bytes to clients by content coding: "br", "zstd", "gzip", "identity".
    #[serde(default)]
    pub by_coding: BTreeMap<String, u64>,
    /// Bytes clients did not receive because the variant that answered them had been recoded
    /// in the background at its best level (against the same variant as coded on the miss).
    #[serde(default)]
    pub saved_by_recompression: u64,
    /// Background recompressions run (one per coded variant, at most).
    #[serde(default)]
    pub recompressions: u64,
    /// The CPU those recompressions cost the edges, in seconds: the coder's native time per
    /// variant (`cdn::recode::modelled_duration`, from BENCHMARKS.md's speed table), as each
    /// PoP codes for itself. What the recoding policy spends for `saved_by_recompression`.
    #[serde(default)]
    pub recompression_cpu_s: f64,
    /// Bytes served from each tier's cache (hits), by tier kind: "edge", "regional", "shield"
    /// (when configured), "origin".
    pub served_by_tier: BTreeMap<String, u64>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BoundFigure {
    /// What is bounded, e.g. "edge hit ratio (TTL, Jung et al.)".
    pub name: String,
    pub measured: f64,
    pub bound: f64,
    /// measured / bound.
    pub ratio: f64,
}
