//! The `edge-emulator` command.

use std::path::PathBuf;

use anyhow::Context;
use clap::{Parser, Subcommand};
use edge_emulator::topology::{Located, Topology};
use edge_emulator::wasm::{IsolatePolicy, Isolation};
use edge_emulator::{server, Emulator, EmulatorOptions, RunMode};

/// Runs the edge worker (wasm: warm isolates per PoP as on Cloudflare, or a fresh instance per
/// request as on Fastly) inside a modelled CDN — edge PoPs, regional tiers, origins, simulated
/// round-trip times — and serves it on localhost.
#[derive(Parser)]
#[command(version, propagate_version = true)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Serve the edge over HTTP, like `wrangler dev`.
    ///
    /// Each request lands on a PoP chosen by the `X-Emulator-Pop` header (a PoP name), else by
    /// `CF-IPCountry` (ISO country code), else the topology's default PoP. Responses carry
    /// CF-Cache-Status, Cache-Status (one member per tier) and Server-Timing (client, edge,
    /// regional, origin). Send `X-Emulator-Fault: trap` to make that request's worker trap.
    ///
    /// Admin: GET /__emulator/stats (JSON), GET /__emulator/metrics (Prometheus),
    /// GET|POST /__emulator/clock (POST {"advance_secs": N} moves every clock forward),
    /// GET /__emulator/origins (per-origin requests, failures, failovers, hedges, circuits),
    /// GET|PUT /__emulator/origins/NAME/faults (e.g. {"down_for_secs": 30},
    /// {"extra_latency_ms": 2000}, {"flap_period_ms": 1000}; {} clears).
    ///
    /// Geo routing: the worker picks the regional origin (country rules, residency pins,
    /// nearest to the client's PoP) and says which in `X-Edge-Origin-Region`.
    ///
    /// Proxy mode: `--origin http://127.0.0.1:3000` puts the whole edge in front of your own
    /// service instead of the built-in origin-stubs (every region's origin is that URL; auth
    /// and routing are off unless --auth / --routing name a file).
    ///
    /// Limits: each request's worker gets --cpu-limit-ms of guest CPU and --memory-limit-mib
    /// of linear memory (503 `worker_cpu_limit` / `worker_memory_limit` past them); beyond
    /// --max-in-flight requests at once, more are shed with 503 and `Retry-After`. Requests
    /// are refused with 414 (URL > 8 KiB), 431 (> 100 header fields or 32 KiB of them) and
    /// 413 (body > 10 MiB), each with a JSON body.
    ///
    /// Isolation: by default each PoP keeps warm isolates that serve one request at a time and
    /// are reused (configuration parsed once per isolate, as on Cloudflare); a trap or a limit
    /// replaces the isolate. `--isolation fresh` runs a new instance per request.
    /// `/__emulator/stats` has `isolates` (created, retired by reason, requests per isolate).
    Serve {
        /// Address to listen on; port 0 picks a free port.
        #[arg(long, default_value = "127.0.0.1:8787")]
        listen: String,
        /// TOML topology; the embedded default is used when absent (see `edge-emulator topology`).
        #[arg(long)]
        topology: Option<PathBuf>,
        /// Multiplies simulated RTTs before sleeping them (1 = real time, 0 = no sleeping).
        /// Server-Timing always reports the full simulated durations.
        #[arg(long, default_value_t = 1.0)]
        time_scale: f64,
        /// Proxy mode: the base URL of your origin (e.g. http://127.0.0.1:3000), used for
        /// every region instead of the built-in origin-stubs.
        #[arg(long, value_name = "URL")]
        origin: Option<String>,
        /// Require `Authorization: Bearer TOKEN` on every /__emulator/ admin request (stats,
        /// clock, purge, faults); without it they answer loopback clients only (403 otherwise).
        /// At least 16 characters; also read from EDGE_EMULATOR_ADMIN_TOKEN.
        #[arg(long, value_name = "TOKEN")]
        admin_token: Option<String>,
        #[command(flatten)]
        worker: WorkerConfigArgs,
        #[command(flatten)]
        limits: LimitArgs,
    },
    /// Replay a workload under a virtual clock and report what each tier absorbed, what the
    /// origins still saw, and what clients waited.
    ///
    /// The real wasm worker handles every request; RTTs, origin service times and TTLs run on
    /// a virtual clock, so ~1M requests of simulated minutes replay in about 2½ minutes on 2
    /// cores (`--requests 100000` in under a minute), and the same seed gives the same JSON.
    /// Without arguments: the embedded default scenario (see --print-scenario) on the default
    /// topology, auth and routing.
    Simulate(SimulateArgs),
    /// Run the same workload against several configurations (tiered vs edge-only, SWR on vs
    /// off, TTLs, capacities) and show the figures side by side, two runs at a time.
    Compare(CompareArgs),
    /// Print a JWT the default auth configuration accepts (signed with a demo key), e.g.
    /// `curl -H "Authorization: Bearer $(edge-emulator token)" localhost:8787/api/users/1`.
    Token {
        /// The `sub` claim.
        #[arg(long, default_value = "user-1")]
        sub: String,
        /// Lifetime in seconds from now.
        #[arg(long, default_value_t = 600)]
        ttl_secs: u64,
        /// An optional `scope` claim, e.g. "read write".
        #[arg(long)]
        scope: Option<String>,
        #[arg(long, value_enum, default_value = "hs256")]
        alg: edge_emulator::demo_token::DemoAlg,
    },
    /// Print the topology (embedded default or a file) with its derived round-trip times.
    Topology {
        #[arg(long)]
        topology: Option<PathBuf>,
        /// Print the embedded default as TOML, to start a file of your own from.
        #[arg(long)]
        toml: bool,
    },
}

#[derive(clap::Args)]
struct SimulateArgs {
    #[command(flatten)]
    common: SimCommon,
    /// Replay a trace (CSV or JSON Lines; columns in --help) instead of generating the
    /// scenario's workload. `edge-emulator/traces/example.csv` is one.
    #[arg(long, long_help = edge_emulator::sim::trace::TRACE_COLUMNS_HELP)]
    trace: Option<PathBuf>,
    /// Print the embedded default scenario, to start a file of your own from.
    #[arg(long)]
    print_scenario: bool,
    /// Write the JSON report here ("-": standard output). Same inputs and seed, same bytes.
    #[arg(long)]
    json: Option<PathBuf>,
    /// Write the HTML report (self-contained, with charts) here.
    #[arg(long, default_value = "edge-emulator-report.html")]
    html: PathBuf,
    /// Do not write the HTML report.
    #[arg(long)]
    no_html: bool,
    /// A threshold the run must meet, e.g. 'offload>=0.95', 'p99<250ms' or a Server-Timing
    /// hop's percentile 'p95(edge)<20ms'; repeatable. The command exits with status 1 when any
    /// is missed.
    #[arg(long = "assert", value_name = "EXPR", long_help = edge_emulator::sim::assertions::METRICS_HELP)]
    assertions: Vec<edge_emulator::sim::assertions::Assertion>,
}

#[derive(clap::Args)]
struct CompareArgs {
    #[command(flatten)]
    common: SimCommon,
    /// Configurations to compare, each a change to the scenario: tiered, shield (one origin
    /// shield at the first [[origin]], used by every regional tier), edge-only, swr=SECS,
    /// ttl=SECS, capacity-mib=MIB, no-routing, jitter=FRACTION (TTL jitter on every path;
    /// jitter=0 off), negative=SECS (negative caching of 404/410 on every path; negative=0
    /// off), recompress=on|off (background recompression of coded variants at their best
    /// level; on by default); version, purge, soft-purge (how the workload's writes reach the caches: a new
    /// URL, a purge, a soft purge). Comma-separated.
    #[arg(long, value_delimiter = ',', default_value = "tiered,edge-only,swr=0")]
    variants: Vec<String>,
    #[arg(long)]
    json: Option<PathBuf>,
    #[arg(long, default_value = "edge-emulator-compare.html")]
    html: PathBuf,
    #[arg(long)]
    no_html: bool,
}

/// The largest share of a run the default warm-up may take before it is scaled down, and the
/// share it is scaled to.
const WARMUP_SHARE_MAX: f64 = 0.5;
const WARMUP_SHARE_SCALED: f64 = 0.2;

/// Settings `simulate` and `compare` share.
#[derive(clap::Args, Clone)]
struct SimCommon {
    /// Scenario TOML (settings and workload); the embedded default when absent.
    #[arg(long)]
    scenario: Option<PathBuf>,
    /// Override the scenario's number of requests.
    #[arg(long)]
    requests: Option<u64>,
    /// Override the scenario's seed.
    #[arg(long)]
    seed: Option<u64>,
    /// Override the scenario's warm-up (requests before it are not measured).
    #[arg(long)]
    warmup_s: Option<f64>,
    /// Override the scenario's tiering.
    #[arg(long, value_enum)]
    tiering: Option<edge_emulator::sim::scenario::Tiering>,
    /// Override each PoP's cache capacity (MiB, LRU).
    #[arg(long)]
    edge_capacity_mib: Option<f64>,
    /// Add the worker's measured compute time to each latency and to the edge hop (makes
    /// reports vary run to run).
    #[arg(long)]
    add_compute: bool,
    #[arg(long)]
    topology: Option<PathBuf>,
    /// The worker's instances (`--isolation` overrides the scenario's `isolation`). The report
    /// is the same either way; the run's cost is not.
    #[command(flatten)]
    isolation: IsolationArgs,
    #[command(flatten)]
    worker: WorkerConfigArgs,
}

/// How much one request may use, and how much load `serve` takes on.
#[derive(clap::Args, Clone)]
struct LimitArgs {
    /// Guest CPU time per request, in milliseconds (epoch interruption, 1 ms ticks; waits
    /// on upstream are not counted).
    #[arg(long, default_value_t = 50)]
    cpu_limit_ms: u64,
    /// Guest CPU time for one piece of work after the response (ctx.waitUntil: background
    /// revalidation, background recompression of a coded variant), in milliseconds. Past it
    /// the work stops and what it would have stored is not stored.
    #[arg(long, default_value_t = 2000)]
    background_cpu_limit_ms: u64,
    /// Linear memory one request's worker instance may grow to, in MiB.
    #[arg(long, default_value_t = 64)]
    memory_limit_mib: usize,
    /// Client requests handled at once; more are shed with 503 and Retry-After: 1.
    #[arg(long, default_value_t = edge_emulator::DEFAULT_MAX_IN_FLIGHT)]
    max_in_flight: usize,
    /// How long a request waits for another request's fetch of the same key (edge and
    /// regional tiers) before fetching on its own, in milliseconds (nginx's
    /// proxy_cache_lock_timeout).
    #[arg(long, default_value_t = 5000)]
    coalesce_wait_ms: u64,
    /// How long an origin may take for a whole response (head and body) before the fetch
    /// fails (502, or stale content where stale-if-error allows), in milliseconds.
    #[arg(long, default_value_t = 30_000)]
    origin_timeout_ms: u64,
    #[command(flatten)]
    isolation: IsolationArgs,
}

/// How the worker's instances are used.
#[derive(clap::Args, Clone)]
struct IsolationArgs {
    /// `isolate`: each PoP keeps warm instances of the worker, reused across requests (one
    /// request at a time each), as Cloudflare runs isolates; `fresh`: a new instance per
    /// request, as Fastly Compute does by default. Cost differs; behaviour does not.
    #[arg(long, value_enum)]
    isolation: Option<Isolation>,
    /// Requests an isolate serves before it is replaced by a new one.
    #[arg(long, value_name = "N", default_value_t = edge_emulator::wasm::DEFAULT_MAX_REQUESTS,
          value_parser = clap::value_parser!(u64).range(1..))]
    isolate_max_requests: u64,
    /// Linear memory (MiB) past which an isolate is replaced after its request (linear
    /// memory never shrinks; Fastly's maxMemoryMiB).
    #[arg(long, value_name = "MIB", default_value_t = edge_emulator::wasm::DEFAULT_MEMORY_BOUND_MIB as u64,
          value_parser = clap::value_parser!(u64).range(1..=1024))]
    isolate_memory_mib: u64,
}

impl IsolationArgs {
    /// The policy, with `fallback` as the mode when `--isolation` was not given.
    fn policy(&self, fallback: Isolation) -> IsolatePolicy {
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
    fn apply(&self, options: &mut EmulatorOptions) {
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
struct WorkerConfigArgs {
    /// TOML auth configuration (keys, per-route policy, forwarded claims). The embedded
    /// default makes /api/users/* require a token signed with a demo key (see `token`).
    #[arg(long, conflicts_with = "no_auth")]
    auth: Option<PathBuf>,
    /// Serve every route as public (no JWT verification).
    #[arg(long)]
    no_auth: bool,
    /// TOML routing configuration (regional origins, country rules, residency pins,
    /// circuit breaker, hedging, redirect mode). The embedded default routes to the
    /// nearest of us-east, eu-west and ap-southeast and pins EU/EEA clients to eu-west.
    #[arg(long, conflicts_with = "no_routing")]
    routing: Option<PathBuf>,
    /// No geo routing: each PoP's misses go to its regional tier's own origin.
    #[arg(long)]
    no_routing: bool,
    /// TOML cache policy: per route, TTL jitter (`ttl_jitter`) and negative caching
    /// (`negative_ttl_secs`, `negative_5xx`), applied at the edge and the regional tiers. The
    /// embedded default (edge-emulator/default-cache-policy.toml) has no routes: neither.
    /// For simulate and compare it replaces a scenario's `[cache_policy]`.
    #[arg(long)]
    cache_policy: Option<PathBuf>,
}

impl WorkerConfigArgs {
    /// The `--cache-policy` file's text, when one is given.
    fn cache_policy(&self) -> anyhow::Result<Option<String>> {
        self.cache_policy
            .as_ref()
            .map(|path| {
                std::fs::read_to_string(path)
                    .with_context(|| format!("cannot read the cache policy {}", path.display()))
            })
            .transpose()
    }

    /// (auth TOML, routing TOML): the files given, none when switched off, else the defaults.
    fn load(&self) -> anyhow::Result<(Option<String>, Option<String>)> {
        self.load_with(
            Some(edge_emulator::DEFAULT_AUTH),
            Some(edge_emulator::DEFAULT_ROUTING),
        )
    }

    /// The same with other defaults (proxy mode has none: the user's service, their rules).
    fn load_with(
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

fn load(path: Option<&PathBuf>) -> anyhow::Result<Topology> {
    match path {
        Some(path) => Topology::from_file(path)
            .context("fix the topology file, or omit --topology to use the default"),
        None => Ok(Topology::default_embedded()),
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    match Cli::parse().command {
        Command::Serve {
            listen,
            topology,
            time_scale,
            origin,
            admin_token,
            worker,
            limits,
        } => {
            let admin_token = admin_token.or_else(|| std::env::var(server::ADMIN_TOKEN_ENV).ok());
            let access = match admin_token.as_deref().filter(|t| !t.is_empty()) {
                Some(token) => server::AdminAccess::token(token)
                    .map_err(|e| anyhow::anyhow!("--admin-token: {e}"))?,
                None => server::AdminAccess::loopback_only(),
            };
            let mut topology = load(topology.as_ref())?;
            let (auth_toml, routing_toml) = match &origin {
                Some(url) => {
                    topology
                        .proxy_to(url)
                        .context("--origin takes an http:// URL such as http://127.0.0.1:3000")?;
                    // Your service, your rules: the demo auth and routing apply only when asked.
                    worker.load_with(None, None)?
                }
                None => worker.load()?,
            };
            let cache_policy_toml = worker
                .cache_policy()?
                .unwrap_or_else(|| edge_emulator::DEFAULT_CACHE_POLICY.to_string());
            let mut options = EmulatorOptions {
                mode: RunMode::Serve,
                time_scale,
                auth_toml,
                routing_toml,
                cache_policy_toml: Some(cache_policy_toml),
                ..EmulatorOptions::new(topology)
            };
            limits.apply(&mut options);
            serve(&listen, options, access).await
        }
        // The simulator runs its own paused runtime, which must not nest inside this one.
        Command::Simulate(args) => std::thread::spawn(move || simulate(args))
            .join()
            .map_err(|_| anyhow::anyhow!("the simulation thread panicked"))?,
        Command::Compare(args) => std::thread::spawn(move || compare(args))
            .join()
            .map_err(|_| anyhow::anyhow!("the comparison thread panicked"))?,
        Command::Token {
            sub,
            ttl_secs,
            scope,
            alg,
        } => {
            let token = edge_emulator::demo_token::mint(
                alg,
                &sub,
                scope.as_deref(),
                std::time::SystemTime::now(),
                std::time::Duration::from_secs(ttl_secs),
            )?;
            println!("{token}");
            Ok(())
        }
        Command::Topology { topology, toml } => {
            if toml {
                print!("{}", edge_emulator::topology::DEFAULT_TOPOLOGY);
            } else {
                print_topology(&load(topology.as_ref())?);
            }
            Ok(())
        }
    }
}

/// A worker configuration: the file given, none when switched off, else the default (if any).
fn configuration(
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

async fn serve(
    listen: &str,
    options: EmulatorOptions,
    access: server::AdminAccess,
) -> anyhow::Result<()> {
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .with_context(|| {
            format!(
                "cannot listen on {listen}; is another emulator running? Try --listen 127.0.0.1:0"
            )
        })?;
    let address = listener.local_addr()?;
    if !address.ip().is_loopback() && !access.has_token() {
        eprintln!(
            "warning: listening on {address}, beyond loopback, without an admin token: the \
             /__emulator/ endpoints (purge, clock, faults) answer loopback clients only. Set \
             --admin-token or {} to use them from elsewhere.",
            server::ADMIN_TOKEN_ENV
        );
    }
    let emulator = Emulator::start(options).await?;
    // Tests read this first line to find the port.
    println!("edge-emulator listening on http://{address}");
    print_topology(&emulator.topology);
    println!("\nTry:");
    println!("  curl -si http://{address}/api/products/1 | grep -iE '^(HTTP|cf-cache-status|cache-status|server-timing|age)'");
    println!("  curl -si -H 'CF-IPCountry: AU' http://{address}/api/products/1 | grep -iE 'cache-status|server-timing'");
    println!("  curl -s http://{address}/__emulator/stats");
    println!("  curl -si -H 'CF-IPCountry: US' http://{address}/api/products/2 | grep -i x-edge-origin-region");
    println!("  curl -s -X PUT -d '{{\"down_for_secs\": 60}}' http://{address}/__emulator/origins/us-east/faults   # then the US request fails over");
    println!("  curl -si -H 'Accept-Encoding: br' 'http://{address}/api/products/1?fields=id,name,price' | grep -iE '^(HTTP|content-encoding|etag|x-edge-fields)'");
    println!("  curl -si http://{address}/api/users/1    # 401: needs a token; with one:");
    println!("  curl -si -H \"Authorization: Bearer $(cargo run -q --release -p edge-emulator -- token)\" http://{address}/api/users/1");
    println!("Stop with Ctrl-C.");
    server::run(listener, emulator, access, async {
        let _ = tokio::signal::ctrl_c().await;
    })
    .await?;
    Ok(())
}

fn print_topology(topology: &Topology) {
    println!(
        "\n{:<6} {:<12} {:<14} {:>9}  {:<14} {:>9}",
        "PoP", "city", "regional", "RTT ms", "origin", "RTT ms"
    );
    for pop in &topology.pops {
        let regional = topology.regional(&pop.regional).expect("validated");
        let origin = topology.origin(&regional.origin).expect("validated");
        println!(
            "{:<6} {:<12} {:<14} {:>9.1}  {:<14} {:>9.1}",
            pop.name,
            pop.city,
            regional.name,
            topology.rtt(pop, regional).as_secs_f64() * 1000.0,
            origin.name,
            topology.rtt(regional, origin).as_secs_f64() * 1000.0
        );
    }
    let ms = |a: &dyn Located, b: &dyn Located| topology.rtt(a, b).as_secs_f64() * 1000.0;
    for shield in &topology.shields {
        let tiers: Vec<String> = shield
            .regionals
            .iter()
            .filter_map(|name| topology.regional(name))
            .map(|r| format!("{} {:.1} ms", r.name, ms(r, shield)))
            .collect();
        let origins: Vec<String> = topology
            .origins
            .iter()
            .map(|o| format!("{} {:.1} ms", o.name, ms(shield, o)))
            .collect();
        println!(
            "shield {} ({}) for regional tiers {}\n  to origins {} (these tiers' misses go \
             through the shield, not straight to the origin above)",
            shield.name,
            shield.city,
            tiers.join(", "),
            origins.join(", ")
        );
    }
    println!(
        "client ↔ PoP RTT {:.1} ms; default PoP {}",
        topology.client_rtt_ms, topology.default_pop
    );
}

use edge_emulator::sim::render;
use edge_emulator::sim::replay;
use edge_emulator::sim::report::Report;
use edge_emulator::sim::scenario::Scenario;
use edge_emulator::sim::setup::{SimSetup, WallFigures};
use edge_emulator::sim::workload::{self, Generator, WriteInvalidation};

impl SimCommon {
    /// The scenario with the command line's overrides, and the engine's setup for it.
    fn setup(&self) -> anyhow::Result<(Scenario, SimSetup)> {
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

fn progress_bar(requests: u64, label: &str) -> anyhow::Result<indicatif::ProgressBar> {
    Ok(indicatif::ProgressBar::new(requests).with_style(
        indicatif::ProgressStyle::with_template(&format!(
            "{{spinner}} {label:<12} {{pos}}/{{len}} [{{bar:30}}] {{per_sec}} {{eta}}"
        ))?
        .progress_chars("=> "),
    ))
}

/// Writes the JSON (when asked) and the HTML (unless switched off) reports.
fn write_reports(
    reports: &[Report],
    json: Option<&std::path::Path>,
    html: &std::path::Path,
    no_html: bool,
) -> anyhow::Result<()> {
    if let Some(path) = json {
        let text = if reports.len() == 1 {
            serde_json::to_string_pretty(&reports[0])?
        } else {
            serde_json::to_string_pretty(reports)?
        };
        if path.as_os_str() == "-" {
            println!("{text}");
        } else {
            std::fs::write(path, text)
                .with_context(|| format!("cannot write {}", path.display()))?;
        }
    }
    if !no_html {
        std::fs::write(html, render::html(reports))
            .with_context(|| format!("cannot write {}", html.display()))?;
        println!("HTML report: {}", html.display());
    }
    Ok(())
}

fn simulate(args: SimulateArgs) -> anyhow::Result<()> {
    if args.print_scenario {
        print!("{}", edge_emulator::sim::scenario::DEFAULT_SCENARIO);
        return Ok(());
    }
    let (scenario, mut setup) = args.common.setup()?;
    let (events, total): (Box<dyn Iterator<Item = workload::SimEvent>>, u64) = match &args.trace {
        Some(path) => {
            let format = edge_emulator::sim::trace::TraceFormat::from_path(path)?;
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("cannot read the trace {}", path.display()))?;
            let records = edge_emulator::sim::trace::parse_trace(&text, format)
                .with_context(|| format!("fix the trace {}", path.display()))?;
            let total = records.len() as u64;
            setup.spec = None;
            // The file name only, so the report does not depend on where it was run from.
            let name = path.file_name().map_or_else(
                || path.display().to_string(),
                |n| n.to_string_lossy().into(),
            );
            setup.workload = format!("trace {name} ({total} requests)");
            if args.common.warmup_s.is_none() {
                setup.warmup_s = 0.0;
            }
            (Box::new(workload::from_trace(records)), total)
        }
        None => (
            Box::new(Generator::new(scenario.workload.clone(), scenario.seed)),
            scenario.workload.requests,
        ),
    };
    let progress = progress_bar(total, "simulating")?;
    let (report, wall) = replay::simulate(&setup, events, total, &progress)?;
    progress.finish_and_clear();
    if args.json.as_deref().is_none_or(|p| p.as_os_str() != "-") {
        print!("{}", render::table(&report));
    }
    write_reports(
        std::slice::from_ref(&report),
        args.json.as_deref(),
        &args.html,
        args.no_html,
    )?;
    eprintln!(
        "{} requests in {:.1} s of wall time: {:.0} simulated requests/s (one core)",
        wall.requests,
        wall.elapsed.as_secs_f64(),
        wall.requests_per_second()
    );
    eprintln!("{}", isolate_line(&wall.isolates));
    let codings = &wall.codings;
    eprintln!(
        "codings (miss and background, every PoP): {} computed in {:.1} s of coder time, {} \
         answered from the memo",
        codings.computed,
        codings.spent.as_secs_f64(),
        codings.reused
    );
    let outcomes = edge_emulator::sim::assertions::check(&args.assertions, &report);
    for outcome in &outcomes {
        eprintln!("{outcome}");
    }
    // Said on stderr too, so it is seen when stdout is the JSON; with `--assert`, it fails
    // the run whatever was asserted: a gate must not pass on figures that cannot be true.
    let bound_beaten = render::bound_warning(&report);
    if let Some(warning) = &bound_beaten {
        eprint!("{warning}");
    }
    let failed = outcomes.iter().filter(|o| !o.passed).count();
    if failed > 0 {
        eprintln!("{failed} of {} assertions failed", outcomes.len());
        std::process::exit(1);
    }
    if bound_beaten.is_some() && !args.assertions.is_empty() {
        eprintln!("--assert: failing the run because a measured figure beats its bound");
        std::process::exit(1);
    }
    Ok(())
}

/// How the worker's instances were used, for the line after a run.
fn isolate_line(isolates: &edge_emulator::cdn::stats::IsolateReport) -> String {
    let retired: Vec<String> = isolates
        .retired
        .iter()
        .filter(|(_, n)| **n > 0)
        .map(|(reason, n)| format!("{reason} {n}"))
        .collect();
    format!(
        "worker instances ({}): {} created, {:.1} calls each (at most {}); retired: {}",
        isolates.mode,
        isolates.created,
        isolates.requests_per_isolate,
        isolates.max_requests_per_isolate,
        if retired.is_empty() {
            "none".to_string()
        } else {
            retired.join(", ")
        }
    )
}

/// Applies one `--variants` entry to a copy of the setup.
fn variant(base: &SimSetup, scenario: &Scenario, name: &str) -> anyhow::Result<SimSetup> {
    let mut setup = base.clone();
    let mut spec = scenario.workload.clone();
    let number = |text: &str| -> anyhow::Result<f64> {
        text.parse::<f64>()
            .ok()
            .filter(|n| *n >= 0.0)
            .with_context(|| format!("variant {name:?}: {text:?} is not a number ≥ 0"))
    };
    match name.split_once('=') {
        None if name == "tiered" => setup.regional_caching = true,
        None if name == "shield" => {
            setup.regional_caching = true;
            setup.topology = setup.topology.with_one_shield();
        }
        None if name == "edge-only" => setup.regional_caching = false,
        None if name == "no-routing" => setup.routing_toml = None,
        Some(("swr", v)) => spec.swr_s = number(v)? as u64,
        Some(("ttl", v)) => spec.ttl_s = number(v)? as u64,
        Some(("capacity-mib", v)) => {
            setup.edge_capacity_bytes = Some((number(v)? * 1024.0 * 1024.0) as u64)
        }
        // How writes invalidate: a new URL per version, a purge, or a soft purge.
        None if name == "version" => spec.write_invalidation = WriteInvalidation::Version,
        None if name == "purge" => spec.write_invalidation = WriteInvalidation::Purge,
        None if name == "soft-purge" => spec.write_invalidation = WriteInvalidation::SoftPurge,
        // A cache policy of one route for every path with this one feature (0: off).
        Some(("jitter", v)) => {
            setup.cache_policy_toml = Some(format!(
                "[[routes]]\npath = \"*\"\nttl_jitter = {}\n",
                number(v)?
            ))
        }
        // Background recompression of coded variants (the cache policy's [compression]).
        Some(("recompress", v)) => {
            let on = match v {
                "on" => true,
                "off" => false,
                _ => anyhow::bail!("variant {name:?}: use recompress=on or recompress=off"),
            };
            setup.cache_policy_toml = Some(format!("[compression]\nbackground = {on}\n"))
        }
        Some(("negative", v)) => {
            let secs = number(v.strip_suffix('s').unwrap_or(v))? as u64;
            setup.cache_policy_toml = Some(format!(
                "[[routes]]\npath = \"*\"\nnegative_ttl_secs = {secs}\n"
            ))
        }
        _ => anyhow::bail!(
            "unknown variant {name:?}; use tiered, shield, edge-only, no-routing, swr=SECS, \
             ttl=SECS, capacity-mib=MIB, jitter=FRACTION, negative=SECS, recompress=on|off, or \
             version, purge, soft-purge (how writes invalidate)"
        ),
    }
    spec.validate()?;
    setup.name = name.to_string();
    setup.workload = spec.describe();
    setup.spec = Some(spec);
    Ok(setup)
}

fn compare(args: CompareArgs) -> anyhow::Result<()> {
    let (scenario, base) = args.common.setup()?;
    anyhow::ensure!(
        (2..=render::MAX_COMPARED_REPORTS).contains(&args.variants.len()),
        "compare needs 2 to {} variants",
        render::MAX_COMPARED_REPORTS
    );
    let setups = args
        .variants
        .iter()
        .map(|name| variant(&base, &scenario, name.trim()))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let bars = indicatif::MultiProgress::new();
    let slots: Vec<std::sync::Mutex<Option<RunResult>>> =
        setups.iter().map(|_| std::sync::Mutex::new(None)).collect();
    let next = std::sync::atomic::AtomicUsize::new(0);
    // Each configuration is its own deterministic run: two at a time use both cores.
    std::thread::scope(|scope| {
        for _ in 0..2 {
            scope.spawn(|| loop {
                let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                let Some(setup) = setups.get(i) else { break };
                let result = run_variant(setup, &bars);
                *slots[i].lock().unwrap_or_else(|e| e.into_inner()) = Some(result);
            });
        }
    });
    let mut reports = Vec::new();
    for (setup, slot) in setups.iter().zip(slots) {
        let result = slot
            .into_inner()
            .unwrap_or_else(|e| e.into_inner())
            .context("a comparison run did not finish")?;
        let (report, wall) = result.with_context(|| format!("variant {}", setup.name))?;
        eprintln!(
            "{}: {} requests in {:.1} s of wall time ({:.0}/s)",
            setup.name,
            wall.requests,
            wall.elapsed.as_secs_f64(),
            wall.requests_per_second()
        );
        reports.push(report);
    }
    if args.json.as_deref().is_none_or(|p| p.as_os_str() != "-") {
        print!("{}", render::compare_table(&reports));
    }
    write_reports(&reports, args.json.as_deref(), &args.html, args.no_html)
}

/// One comparison run's outcome.
type RunResult = anyhow::Result<(Report, WallFigures)>;

fn run_variant(setup: &SimSetup, bars: &indicatif::MultiProgress) -> RunResult {
    let spec = setup
        .spec
        .clone()
        .context("variants are generated workloads")?;
    let bar = bars.add(progress_bar(spec.requests, &setup.name)?);
    let result = replay::simulate(
        setup,
        Generator::new(spec.clone(), setup.seed),
        spec.requests,
        &bar,
    );
    bar.finish_and_clear();
    result
}
