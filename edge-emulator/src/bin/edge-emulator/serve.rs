//! `serve`: the edge on localhost, its banner and the topology table.

use anyhow::Context;
use edge_emulator::topology::{Located, Topology};
use edge_emulator::{server, Emulator, EmulatorOptions};

/// How this binary was started, for the banner's copy-paste lines: its own path when run
/// directly, `cargo run …` when cargo ran it.
fn own_command() -> String {
    let exe = std::env::args()
        .next()
        .unwrap_or_else(|| "edge-emulator".into());
    if std::env::var_os("CARGO").is_some() && exe.contains("/target/") {
        "cargo run -q --release -p edge-emulator --".to_string()
    } else {
        exe
    }
}

pub async fn serve(
    listen: &str,
    options: EmulatorOptions,
    access: server::AdminAccess,
    log: &crate::args::AccessLogArgs,
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
    let sink = match (&log.access_log, log.quiet) {
        (_, true) => server::access_log::Sink::Off,
        (Some(path), false) => server::access_log::Sink::file(path)
            .with_context(|| format!("cannot open the access log {}", path.display()))?,
        (None, false) => server::access_log::Sink::Stderr,
    };
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
    println!(
        "  curl -si -H \"Authorization: Bearer $({} token --emulator http://{address})\" http://{address}/api/users/1",
        own_command()
    );
    println!("Live page (hit ratios, origin requests/s, latency, the last requests): http://{address}/__emulator/");
    println!("Stop with Ctrl-C.");
    let logger = server::access_log::AccessLog::new(sink, log.access_log_format);
    server::run(listener, emulator, access, logger, async {
        let _ = tokio::signal::ctrl_c().await;
    })
    .await?;
    Ok(())
}

pub fn print_topology(topology: &Topology) {
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
