//! The command line's shared settings: the simulation's common flags, the worker's
//! configurations, limits and isolation, and loading what they name.

use std::path::PathBuf;

use anyhow::Context;
use edge_emulator::sim::scenario::Scenario;
use edge_emulator::sim::setup::SimSetup;
use edge_emulator::topology::Topology;
use edge_emulator::wasm::{IsolatePolicy, Isolation};
use edge_emulator::EmulatorOptions;

#[derive(clap::Args)]
pub struct SimulateArgs {
    #[command(flatten)]
    pub common: SimCommon,
    /// Replay a trace (CSV or JSON Lines; columns in --help) instead of generating the
    /// scenario's workload. `edge-emulator/traces/example.csv` is one.
    #[arg(long, long_help = edge_emulator::sim::trace::TRACE_COLUMNS_HELP)]
    pub trace: Option<PathBuf>,
    /// Print the embedded default scenario, to start a file of your own from.
    #[arg(long)]
    pub print_scenario: bool,
    /// Write the JSON report here ("-": standard output). Same inputs and seed, same bytes.
    #[arg(long)]
    pub json: Option<PathBuf>,
    /// Write the HTML report (self-contained, with charts) here.
    #[arg(long, default_value = "edge-emulator-report.html")]
    pub html: PathBuf,
    /// Do not write the HTML report.
    #[arg(long)]
    pub no_html: bool,
    #[command(flatten)]
    pub assertions: AssertArgs,
}

/// `--assert`, for `simulate` and `compare`.
#[derive(clap::Args)]
pub struct AssertArgs {
    /// A threshold the run must meet, e.g. 'offload>=0.95', 'p99<250ms' or a Server-Timing
    /// hop's percentile 'p95(edge)<20ms'; repeatable. The command exits with status 99 when
    /// any is missed (1 is an error in the command line or its files). With `compare`, every
    /// variant must meet it.
    #[arg(long = "assert", value_name = "EXPR", long_help = edge_emulator::sim::assertions::METRICS_HELP)]
    pub list: Vec<edge_emulator::sim::assertions::Assertion>,
}

#[derive(clap::Args)]
pub struct CompareArgs {
    #[command(flatten)]
    pub common: SimCommon,
    /// Configurations to compare, each a change to the scenario: tiered, shield (one origin
    /// shield at the first [[origin]], used by every regional tier), edge-only, swr=SECS,
    /// ttl=SECS, capacity-mib=MIB, no-routing, jitter=FRACTION (TTL jitter on every path;
    /// jitter=0 off), negative=SECS (negative caching of 404/410 on every path; negative=0
    /// off), recompress=on|off (background recompression of coded variants at their best
    /// level; on by default); version, purge, soft-purge (how the workload's writes reach the caches: a new
    /// URL, a purge, a soft purge). Comma-separated.
    /// With --trace, only the variants that change the caches apply (tiered, shield,
    /// edge-only, no-routing, capacity-mib, jitter, negative, recompress): a trace's
    /// requests and their freshness are its own.
    #[arg(long, value_delimiter = ',', default_value = "tiered,edge-only,swr=0")]
    pub variants: Vec<String>,
    /// Replay this trace (CSV or JSON Lines, as `simulate --trace`) under every variant
    /// instead of generating the scenario's workload.
    #[arg(long, long_help = edge_emulator::sim::trace::TRACE_COLUMNS_HELP)]
    pub trace: Option<PathBuf>,
    /// Write the reports as one JSON array here ("-": standard output), one per variant in
    /// the order given. Same inputs and seed, same bytes.
    #[arg(long)]
    pub json: Option<PathBuf>,
    /// Write the HTML page (self-contained: the variants side by side, then each one's
    /// charts and tables) here.
    #[arg(long, default_value = "edge-emulator-compare.html")]
    pub html: PathBuf,
    /// Do not write the HTML page.
    #[arg(long)]
    pub no_html: bool,
    #[command(flatten)]
    pub assertions: AssertArgs,
}

/// `serve`'s line per request.
#[derive(clap::Args, Clone)]
pub struct AccessLogArgs {
    /// Write the line per request to FILE (appended) instead of standard error.
    #[arg(long, value_name = "FILE")]
    pub access_log: Option<PathBuf>,
    /// The line's form: `text` (time, method, path, status, each tier's cache outcome,
    /// bytes, duration) or `json` (one JSON object per line, the same fields).
    #[arg(long, value_enum, default_value = "text")]
    pub access_log_format: edge_emulator::server::access_log::LogFormat,
    /// No line per request (the live page at /__emulator/ still shows the last ones).
    #[arg(long, short, conflicts_with = "access_log")]
    pub quiet: bool,
}

/// The largest share of a run the default warm-up may take before it is scaled down, and the
/// share it is scaled to.
pub const WARMUP_SHARE_MAX: f64 = 0.5;
pub const WARMUP_SHARE_SCALED: f64 = 0.2;

/// Settings `simulate` and `compare` share.
#[derive(clap::Args, Clone)]
pub struct SimCommon {
    /// Scenario TOML (settings and workload); the embedded default when absent.
    #[arg(long)]
    pub scenario: Option<PathBuf>,
    /// Override the scenario's number of requests.
    #[arg(long)]
    pub requests: Option<u64>,
    /// Override the scenario's seed.
    #[arg(long)]
    pub seed: Option<u64>,
    /// Override the scenario's warm-up (requests before it are not measured).
    #[arg(long)]
    pub warmup_s: Option<f64>,
    /// Override the scenario's tiering.
    #[arg(long, value_enum)]
    pub tiering: Option<edge_emulator::sim::scenario::Tiering>,
    /// Override each PoP's cache capacity (MiB, LRU).
    #[arg(long)]
    pub edge_capacity_mib: Option<f64>,
    /// Add the worker's measured compute time to each latency and to the edge hop (makes
    /// reports vary run to run).
    #[arg(long)]
    pub add_compute: bool,
    /// TOML topology (PoPs, regional tiers, shields, origins); the embedded default when
    /// absent (`edge-emulator topology --toml` prints it).
    #[arg(long)]
    pub topology: Option<PathBuf>,
    /// The worker's instances (`--isolation` overrides the scenario's `isolation`). The report
    /// is the same either way; the run's cost is not.
    #[command(flatten)]
    pub isolation: IsolationArgs,
    #[command(flatten)]
    pub worker: WorkerConfigArgs,
}

/// How much one request may use, and how much load `serve` takes on.
#[derive(clap::Args, Clone)]
pub struct LimitArgs {
    /// Guest CPU time per request, in milliseconds (epoch interruption, 1 ms ticks; waits
    /// on upstream are not counted).
    #[arg(long, default_value_t = 50)]
    pub cpu_limit_ms: u64,
    /// Guest CPU time for one piece of work after the response (ctx.waitUntil: background
    /// revalidation, background recompression of a coded variant), in milliseconds. Past it
    /// the work stops and what it would have stored is not stored.
    #[arg(long, default_value_t = 2000)]
    pub background_cpu_limit_ms: u64,
    /// Linear memory one request's worker instance may grow to, in MiB.
    #[arg(long, default_value_t = 64)]
    pub memory_limit_mib: usize,
    /// Client requests handled at once; more are shed with 503 and Retry-After: 1.
    #[arg(long, default_value_t = edge_emulator::DEFAULT_MAX_IN_FLIGHT)]
    pub max_in_flight: usize,
    /// How long a request waits for another request's fetch of the same key (edge and
    /// regional tiers) before fetching on its own, in milliseconds (nginx's
    /// proxy_cache_lock_timeout).
    #[arg(long, default_value_t = 5000)]
    pub coalesce_wait_ms: u64,
    /// How long an origin may take for a whole response (head and body) before the fetch
    /// fails (502, or stale content where stale-if-error allows), in milliseconds.
    #[arg(long, default_value_t = 30_000)]
    pub origin_timeout_ms: u64,
    #[command(flatten)]
    pub isolation: IsolationArgs,
}

/// How the worker's instances are used.
#[derive(clap::Args, Clone)]
pub struct IsolationArgs {
    /// `isolate`: each PoP keeps warm instances of the worker, reused across requests (one
    /// request at a time each), as Cloudflare runs isolates; `fresh`: a new instance per
    /// request, as Fastly Compute does by default. Cost differs; behaviour does not.
    #[arg(long, value_enum)]
    pub isolation: Option<Isolation>,
    /// Requests an isolate serves before it is replaced by a new one.
    #[arg(long, value_name = "N", default_value_t = edge_emulator::wasm::DEFAULT_MAX_REQUESTS,
          value_parser = clap::value_parser!(u64).range(1..))]
    pub isolate_max_requests: u64,
    /// Linear memory (MiB) past which an isolate is replaced after its request (linear
    /// memory never shrinks; Fastly's maxMemoryMiB).
    #[arg(long, value_name = "MIB", default_value_t = edge_emulator::wasm::DEFAULT_MEMORY_BOUND_MIB as u64,
          value_parser = clap::value_parser!(u64).range(1..=1024))]
    pub isolate_memory_mib: u64,
}

impl IsolationArgs {
    /// The policy, with `fallback` as the mode when `--isolation` was not given.
    pub fn policy(&self, fallback: Isolation) -> IsolatePolicy {
        IsolatePolicy {
            isolation: self.isolation.unwrap_or(fallback),
            max_requests: self.isolate_max_requests,
            memory_bound: usize::try_from(self.isolate_memory_mib * 1024 * 1024)
                .unwrap_or(usize::MAX),
            ..IsolatePolicy::default()
        }
    }
}

impl LimitArgs {
    pub fn apply(&self, options: &mut EmulatorOptions) {
        options.guest_limits.cpu = std::time::Duration::from_millis(self.cpu_limit_ms);
        options.guest_limits.background_cpu =
            std::time::Duration::from_millis(self.background_cpu_limit_ms);
        options.guest_limits.memory_bytes = self.memory_limit_mib.saturating_mul(1024 * 1024);
        // The pool also holds background refreshes: leave them headroom above admission.
        options.guest_limits.instances = u32::try_from(self.max_in_flight)
            .unwrap_or(u32::MAX)
            .saturating_add(512)
            .min(16_384);
        options.max_in_flight = self.max_in_flight;
        options.coalesce_wait = std::time::Duration::from_millis(self.coalesce_wait_ms);
        options.origin_timeout = std::time::Duration::from_millis(self.origin_timeout_ms);
        options.isolates = self.isolation.policy(Isolation::Isolate);
    }
}

/// The worker's configurations, for `serve`, `simulate` and `compare`.
#[derive(clap::Args, Clone)]
pub struct WorkerConfigArgs {
    /// TOML auth configuration (keys, per-route policy, forwarded claims). The embedded
    /// default makes /api/users/* require a token signed with a demo key (see `token`).
    #[arg(long, conflicts_with = "no_auth")]
    pub auth: Option<PathBuf>,
    /// Serve every route as public (no JWT verification).
    #[arg(long)]
    pub no_auth: bool,
    /// TOML routing configuration (regional origins, country rules, residency pins,
    /// circuit breaker, hedging, redirect mode). The embedded default routes to the
    /// nearest of us-east, eu-west and ap-southeast and pins EU/EEA clients to eu-west.
    #[arg(long, conflicts_with = "no_routing")]
    pub routing: Option<PathBuf>,
    /// No geo routing: each PoP's misses go to its regional tier's own origin.
    #[arg(long)]
    pub no_routing: bool,
    /// TOML cache policy: per route, TTL jitter (`ttl_jitter`) and negative caching
    /// (`negative_ttl_secs`, `negative_5xx`), applied at the edge and the regional tiers. The
    /// embedded default (edge-emulator/default-cache-policy.toml) has no routes: neither.
    /// For simulate and compare it replaces a scenario's `[cache_policy]`.
    #[arg(long)]
    pub cache_policy: Option<PathBuf>,
}

impl WorkerConfigArgs {
    /// The `--cache-policy` file's text, when one is given.
    pub fn cache_policy(&self) -> anyhow::Result<Option<String>> {
        self.cache_policy
            .as_ref()
            .map(|path| {
                std::fs::read_to_string(path)
                    .with_context(|| format!("cannot read the cache policy {}", path.display()))
            })
            .transpose()
    }

    /// (auth TOML, routing TOML): the files given, none when switched off, else the defaults.
    pub fn load(&self) -> anyhow::Result<(Option<String>, Option<String>)> {
        self.load_with(
            Some(edge_emulator::DEFAULT_AUTH),
            Some(edge_emulator::DEFAULT_ROUTING),
        )
    }

    /// The same with other defaults (proxy mode has none: the user's service, their rules).
    pub fn load_with(
        &self,
        default_auth: Option<&str>,
        default_routing: Option<&str>,
    ) -> anyhow::Result<(Option<String>, Option<String>)> {
        let auth = configuration(self.auth.clone(), self.no_auth, "auth", default_auth)?;
        let routing = configuration(
            self.routing.clone(),
            self.no_routing,
            "routing",
            default_routing,
        )?;
        Ok((auth, routing))
    }
}

pub fn load(path: Option<&PathBuf>) -> anyhow::Result<Topology> {
    match path {
        Some(path) => Topology::from_file(path)
            .context("fix the topology file, or omit --topology to use the default"),
        None => Ok(Topology::default_embedded()),
    }
}

/// A worker configuration: the file given, none when switched off, else the default (if any).
pub fn configuration(
    path: Option<PathBuf>,
    off: bool,
    what: &str,
    default: Option<&str>,
) -> anyhow::Result<Option<String>> {
    match (path, off) {
        (_, true) => Ok(None),
        (Some(path), false) => std::fs::read_to_string(&path)
            .with_context(|| format!("cannot read the {what} configuration {}", path.display()))
            .map(Some),
        (None, false) => Ok(default.map(str::to_string)),
    }
}

impl SimCommon {
    /// The scenario with the command line's overrides, and the engine's setup for it.
    pub fn setup(&self) -> anyhow::Result<(Scenario, SimSetup)> {
        let mut scenario = match &self.scenario {
            Some(path) => {
                let text = std::fs::read_to_string(path)
                    .with_context(|| format!("cannot read the scenario {}", path.display()))?;
                Scenario::parse(&text).context(
                    "fix the scenario file (start from `edge-emulator simulate --print-scenario`)",
                )?
            }
            None => Scenario::default_embedded(),
        };
        if let Some(requests) = self.requests {
            scenario.workload.requests = requests;
        }
        if let Some(seed) = self.seed {
            scenario.seed = seed;
        }
        if let Some(warmup) = self.warmup_s {
            scenario.warmup_s = warmup;
        }
        if let Some(tiering) = self.tiering {
            scenario.tiering = tiering;
        }
        if self.edge_capacity_mib.is_some() {
            scenario.edge_capacity_mib = self.edge_capacity_mib;
        }
        if let Some(isolation) = self.isolation.isolation {
            scenario.isolation = isolation;
        }
        scenario.workload.validate()?;
        // The default warm-up (a minute of traffic) would swallow a short run: scale it with
        // the run, and say so, unless it was asked for.
        let span_s =
            scenario.workload.requests as f64 / scenario.workload.rate.max(f64::MIN_POSITIVE);
        if self.warmup_s.is_none() && scenario.warmup_s > WARMUP_SHARE_MAX * span_s {
            let scaled = (WARMUP_SHARE_SCALED * span_s * 10.0).round() / 10.0;
            eprintln!(
                "note: the {} s warm-up would take more than half of this run's ~{:.0} s \
                 ({} requests at {} req/s); warming up for {scaled} s instead (--warmup-s to choose)",
                scenario.warmup_s, span_s, scenario.workload.requests, scenario.workload.rate
            );
            scenario.warmup_s = scaled;
        }
        let topology = load(self.topology.as_ref())?;
        let (auth, routing) = self.worker.load()?;
        let mut setup = scenario.setup(topology, auth, routing);
        if let Some(policy) = self.worker.cache_policy()? {
            setup.cache_policy_toml = Some(policy);
        }
        setup.add_compute = self.add_compute;
        setup.isolates = self.isolation.policy(scenario.isolation);
        Ok((scenario, setup))
    }
}
