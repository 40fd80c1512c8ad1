//! The `edge-emulator` command: the command line, and which command runs.

mod args;
mod serve;
mod simulate;
mod token;

use std::path::PathBuf;

use anyhow::Context;
use clap::{Parser, Subcommand};
use edge_emulator::{server, EmulatorOptions, RunMode};

use args::{load, CompareArgs, LimitArgs, SimulateArgs, WorkerConfigArgs};

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
    /// Admin (loopback clients only, or every caller with --admin-token):
    /// GET /__emulator/ (a live page: hit ratios per tier and PoP, origin requests/s, latency
    /// percentiles, the last requests), GET /__emulator/stats (JSON),
    /// GET /__emulator/metrics (Prometheus),
    /// GET|POST /__emulator/clock (POST {"advance_secs": N} moves every clock forward,
    /// {"reset": true} takes the offset back to zero),
    /// POST /__emulator/purge (Cloudflare's bodies: {"files": [URL or path, …]},
    /// {"prefixes": ["host/path", …]}, {"tags": [TAG, …]}, {"purge_everything": true}; add
    /// "soft": true to mark stale instead of removing),
    /// GET /__emulator/origins (per-origin requests, failures, failovers, hedges, circuits),
    /// GET|PUT /__emulator/origins/NAME/faults (e.g. {"down_for_secs": 30},
    /// {"extra_latency_ms": 2000}, {"flap_period_ms": 1000}; {} clears).
    ///
    /// Each request prints a line (time, method, path, status, each tier's cache outcome,
    /// bytes, duration), as wrangler dev and nginx do: --access-log FILE writes them to a file,
    /// --access-log-format json as JSON Lines, --quiet prints none.
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
        log: args::AccessLogArgs,
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
    ///
    /// After `/__emulator/clock` moved a running emulator's time forward, a token minted
    /// against this machine's clock is already expired there: `--emulator URL` mints it
    /// against that emulator's clock instead.
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
        /// The signature: hs256 (the demo secret), es256 (the demo key pair, kid configured
        /// in the auth file) or es256-jwks (the same key, found by the edge in the origin's
        /// /.well-known/jwks.json).
        #[arg(long, value_enum, default_value = "hs256")]
        alg: edge_emulator::demo_token::DemoAlg,
        /// A running emulator (e.g. http://127.0.0.1:8787) whose clock the token's `iat` and
        /// `exp` follow, read from its /__emulator/clock.
        #[arg(long, value_name = "URL")]
        emulator: Option<String>,
    },
    /// Print the topology (embedded default or a file) with its derived round-trip times.
    Topology {
        /// A TOML topology file to print instead of the embedded default.
        #[arg(long)]
        topology: Option<PathBuf>,
        /// Print the embedded default as TOML, to start a file of your own from.
        #[arg(long)]
        toml: bool,
    },
}

/// `simulate --assert` and `compare --assert`: the exit status when a threshold is missed
/// (k6's for failed thresholds), distinct from 1, a configuration or input error.
pub const ASSERTION_FAILED: i32 = 99;

#[tokio::main]
async fn main() -> std::process::ExitCode {
    match run(Cli::parse().command).await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(error) => {
            eprint!("{}", describe(&error));
            std::process::ExitCode::FAILURE
        }
    }
}

/// An error for people: what went wrong, then each cause once (a cause whose text its
/// context already quotes is not repeated), never a backtrace.
fn describe(error: &anyhow::Error) -> String {
    let mut said = String::new();
    let mut out = String::new();
    for (i, cause) in error.chain().enumerate() {
        let text = cause.to_string();
        if said.contains(text.trim()) {
            continue;
        }
        if i == 0 {
            out.push_str(&format!("error: {text}\n"));
        } else {
            out.push_str(&format!("  because: {text}\n"));
        }
        said.push_str(&text);
    }
    out
}

async fn run(command: Command) -> anyhow::Result<()> {
    match command {
        Command::Serve {
            listen,
            topology,
            time_scale,
            origin,
            admin_token,
            log,
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
            serve::serve(&listen, options, access, &log).await
        }
        // The simulator runs its own paused runtime, which must not nest inside this one.
        Command::Simulate(args) => std::thread::spawn(move || simulate::simulate(args))
            .join()
            .map_err(|_| anyhow::anyhow!("the simulation thread panicked"))?,
        Command::Compare(args) => std::thread::spawn(move || simulate::compare(args))
            .join()
            .map_err(|_| anyhow::anyhow!("the comparison thread panicked"))?,
        Command::Token {
            sub,
            ttl_secs,
            scope,
            alg,
            emulator,
        } => {
            let now = match &emulator {
                Some(url) => token::emulator_now(url).await?,
                None => std::time::SystemTime::now(),
            };
            let token = edge_emulator::demo_token::mint(
                alg,
                &sub,
                scope.as_deref(),
                now,
                std::time::Duration::from_secs(ttl_secs),
            )?;
            println!("{token}");
            Ok(())
        }
        Command::Topology { topology, toml } => {
            if toml {
                print!("{}", edge_emulator::topology::DEFAULT_TOPOLOGY);
            } else {
                serve::print_topology(&load(topology.as_ref())?);
            }
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cause_its_context_already_quotes_is_said_once() {
        #[derive(Debug, thiserror::Error)]
        #[error("topology is not valid TOML: {0}")]
        struct Parse(#[source] std::io::Error);
        let inner = std::io::Error::other("missing field `city`");
        let error = anyhow::Error::new(Parse(inner)).context("fix the topology file");
        assert_eq!(
            describe(&error),
            "error: fix the topology file\n  because: topology is not valid TOML: missing \
             field `city`\n"
        );
    }
}
