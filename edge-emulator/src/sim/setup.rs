//! How one replay is set up (one configuration of a comparison), and what it took in wall time.

use std::time::Duration;

use crate::cdn::topology::Topology;
use crate::sim::workload::WorkloadSpec;
use crate::wasm::IsolatePolicy;

/// How a simulation is set up (one configuration of a comparison).
#[derive(Debug, Clone)]
pub struct SimSetup {
    pub name: String,
    pub seed: u64,
    pub topology: Topology,
    pub auth_toml: Option<String>,
    pub routing_toml: Option<String>,
    /// The cache policy (TOML): TTL jitter, negative caching; `None`: neither.
    pub cache_policy_toml: Option<String>,
    pub edge_capacity_bytes: Option<u64>,
    pub regional_caching: bool,
    /// Add the worker's real compute time to each latency (off: reports stay deterministic).
    pub add_compute: bool,
    /// Network jitter: each hop's RTT × (1 + jitter·N(0,1)), clamped at 0.
    pub jitter: f64,
    /// Requests before this many seconds warm the caches and are not measured.
    pub warmup_s: f64,
    /// Width of a timeline bucket.
    pub bucket_s: f64,
    /// The workload's analytic description, when it was generated (bounds need it).
    pub spec: Option<WorkloadSpec>,
    /// Warm isolates or a fresh instance per request, and when isolates are recycled: changes
    /// the run's cost, never its report.
    pub isolates: IsolatePolicy,
    pub workload: String,
    /// How long a purge takes to reach every cache.
    pub purge_propagation: Duration,
}

/// What the run took in wall time (not part of the deterministic report).
#[derive(Debug, Clone)]
pub struct WallFigures {
    pub elapsed: Duration,
    pub requests: u64,
    /// How the worker's instances were used (they change the cost, not the report).
    pub isolates: crate::cdn::stats::IsolateReport,
    /// The coding the emulator did for every PoP (miss and background), each distinct input
    /// once.
    pub codings: crate::cdn::coding::CodingReport,
}

impl WallFigures {
    pub fn requests_per_second(&self) -> f64 {
        self.requests as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }
}
