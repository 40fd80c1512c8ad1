//! The `edge-emulator` command.

use std::path::PathBuf;

use anyhow::Context;
use clap::{Parser, Subcommand};
use edge_emulator::topology::Topology;
use edge_emulator::{server, Emulator, EmulatorOptions};

/// Runs the edge worker (wasm, a fresh instance per request) inside a modelled CDN — edge PoPs,
/// regional tiers, origins, simulated round-trip times — and serves it on localhost.
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
    },
    /// Replay a workload under a virtual clock and report what each tier absorbed, what the
    /// origins still saw, and what clients waited.
    ///
    /// The real wasm worker handles every request; RTTs, origin service times and TTLs run on
    /// a virtual clock, so ~1M requests take seconds and the same seed gives the same JSON.
    /// Without arguments: the embedded default scenario (see --print-scenario) on the default
    /// topology, auth and routing.
    Simulate(SimulateArgs),
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
    /// Scenario TOML (settings and workload); the embedded default when absent.
    #[arg(long)]
    scenario: Option<PathBuf>,
    /// Print the embedded default scenario, to start a file of your own from.
    #[arg(long)]
    print_scenario: bool,
    /// Override the scenario's number of requests.
    #[arg(long)]
    requests: Option<u64>,
    /// Override the scenario's seed.
    #[arg(long)]
    seed: Option<u64>,
    /// Override the scenario's tiering.
    #[arg(long, value_enum)]
    tiering: Option<edge_emulator::sim::scenario::Tiering>,
    /// Override each PoP's cache capacity (MiB, LRU).
    #[arg(long)]
    edge_capacity_mib: Option<f64>,
    /// Add the worker's measured compute time to each latency (makes reports vary run to run).
    #[arg(long)]
    add_compute: bool,
    #[arg(long)]
    topology: Option<PathBuf>,
    /// Auth configuration TOML (default: the embedded one).
    #[arg(long, conflicts_with = "no_auth")]
    auth: Option<PathBuf>,
    #[arg(long)]
    no_auth: bool,
    /// Routing configuration TOML (default: the embedded one).
    #[arg(long, conflicts_with = "no_routing")]
    routing: Option<PathBuf>,
    #[arg(long)]
    no_routing: bool,
    /// Write the JSON report here ("-": standard output).
    #[arg(long)]
    json: Option<PathBuf>,
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
            auth,
            no_auth,
            routing,
            no_routing,
        } => {
            let options = EmulatorOptions {
                topology: load(topology.as_ref())?,
                time_scale,
                auth_toml: configuration(auth, no_auth, "auth", edge_emulator::DEFAULT_AUTH)?,
                routing_toml: configuration(
                    routing,
                    no_routing,
                    "routing",
                    edge_emulator::DEFAULT_ROUTING,
                )?,
                ..EmulatorOptions::new(Topology::default_embedded())
            };
            serve(&listen, options).await
        }
        // The simulator runs its own paused runtime, which must not nest inside this one.
        Command::Simulate(args) => std::thread::spawn(move || simulate(args))
            .join()
            .map_err(|_| anyhow::anyhow!("the simulation thread panicked"))?,
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

/// A worker configuration: the file given, none when switched off, else the embedded default.
fn configuration(
    path: Option<PathBuf>,
    off: bool,
    what: &str,
    default: &str,
) -> anyhow::Result<Option<String>> {
    match (path, off) {
        (_, true) => Ok(None),
        (Some(path), false) => std::fs::read_to_string(&path)
            .with_context(|| format!("cannot read the {what} configuration {}", path.display()))
            .map(Some),
        (None, false) => Ok(Some(default.to_string())),
    }
}

async fn serve(listen: &str, options: EmulatorOptions) -> anyhow::Result<()> {
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .with_context(|| {
            format!(
                "cannot listen on {listen}; is another emulator running? Try --listen 127.0.0.1:0"
            )
        })?;
    let address = listener.local_addr()?;
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
    server::run(listener, emulator, async {
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
    println!(
        "client ↔ PoP RTT {:.1} ms; default PoP {}",
        topology.client_rtt_ms, topology.default_pop
    );
}

fn simulate(args: SimulateArgs) -> anyhow::Result<()> {
    use edge_emulator::sim::{engine, scenario::Scenario, workload::Generator};
    if args.print_scenario {
        print!("{}", edge_emulator::sim::scenario::DEFAULT_SCENARIO);
        return Ok(());
    }
    let mut scenario = match &args.scenario {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("cannot read the scenario {}", path.display()))?;
            Scenario::parse(&text).context(
                "fix the scenario file (start from `edge-emulator simulate --print-scenario`)",
            )?
        }
        None => Scenario::default_embedded(),
    };
    if let Some(requests) = args.requests {
        scenario.workload.requests = requests;
    }
    if let Some(seed) = args.seed {
        scenario.seed = seed;
    }
    if let Some(tiering) = args.tiering {
        scenario.tiering = tiering;
    }
    if args.edge_capacity_mib.is_some() {
        scenario.edge_capacity_mib = args.edge_capacity_mib;
    }
    scenario.workload.validate()?;
    let topology = load(args.topology.as_ref())?;
    let auth = configuration(args.auth, args.no_auth, "auth", edge_emulator::DEFAULT_AUTH)?;
    let routing = configuration(
        args.routing,
        args.no_routing,
        "routing",
        edge_emulator::DEFAULT_ROUTING,
    )?;
    let mut setup = scenario.setup(topology, auth, routing);
    setup.add_compute = args.add_compute;
    let progress = indicatif::ProgressBar::new(scenario.workload.requests).with_style(
        indicatif::ProgressStyle::with_template(
            "{spinner} simulating {pos}/{len} requests [{bar:30}] {per_sec} {eta}",
        )?
        .progress_chars("=> "),
    );
    let events = Generator::new(scenario.workload.clone(), scenario.seed);
    let (report, wall) = engine::simulate(&setup, events, scenario.workload.requests, &progress)?;
    progress.finish_and_clear();
    let json = serde_json::to_string_pretty(&report)?;
    match args.json.as_deref() {
        Some(path) if path.as_os_str() == "-" => println!("{json}"),
        Some(path) => std::fs::write(path, &json)
            .with_context(|| format!("cannot write {}", path.display()))?,
        None => {}
    }
    eprintln!(
        "{} requests in {:.1} s of wall time: {:.0} simulated requests/s",
        wall.requests,
        wall.elapsed.as_secs_f64(),
        wall.requests_per_second()
    );
    Ok(())
}
