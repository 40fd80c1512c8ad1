/// k6-like thresholds on report figures (`--assert 'p99<250ms'`).
pub mod assertions;
/// The report as a terminal table and as one self-contained HTML page.
pub mod render;
/// The JSON report one simulation run produces.
pub mod report;
/// Analytic hit-ratio bounds (TTL and Che) the measured figures are compared against.
pub mod theory;
/// Parsing user-supplied request traces (CSV, JSON Lines) for replay.
pub mod trace;
