//! `edge-emulator simulate`: replay a workload under a virtual clock and report what each
//! tier absorbed, what the origin still saw and what clients waited.

/// The report assembled at the end of a replay: counters since the warm-up, bounds.
mod assemble;
/// k6-like thresholds (`--assert 'offload>=0.95'`) checked against a report.
pub mod assertions;
/// The glue between a replay and its stream bound.
mod bound_glue;
/// The emulator's counters read at one moment (the warm-up baseline, the end).
mod counters;
/// Latency by hop: Server-Timing entries per response, and the seed design's budgets.
pub mod hops;
/// What each replayed read measured, gathered per request.
mod measure;
/// Terminal tables and the self-contained HTML page.
pub mod render;
/// The discrete-event engine: the real emulator on a paused tokio clock.
pub mod replay;
/// What one run measured (the deterministic JSON report).
pub mod report;
/// Scenario files: settings and a generated workload.
pub mod scenario;
/// How one replay is set up, and what it took in wall time.
pub mod setup;
/// The bound any request stream sets: an infinite cache per location, and the gap by cause.
pub mod stream_bound;
/// Analytic bounds: TTL caches (Jung et al.), LRU (Che), tiers.
pub mod theory;
/// Replayed workloads: CSV and JSON Lines traces.
pub mod trace;
/// The replay's fixed units: the virtual epoch and the report's rounding.
pub mod units;
/// Whether a run measured warm caches, and what to run when not.
pub mod warmth;
/// Generated workloads: Zipf popularity, Poisson arrivals, mixes, writes, flash crowds.
pub mod workload;

#[cfg(test)]
mod tests;
