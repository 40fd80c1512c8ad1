//! What geo routing buys in latency: a multi-country client mix against the emulator's
//! default topology, every request a miss (so the origin round trip counts), once with nearest
//! routing to three regional origins and once with every request sent to us-east. Latency is
//! the simulated client-to-origin time the emulator reports in Server-Timing (RTTs from the
//! topology, real origin service time); RTT sleeps are off, so the run takes seconds.
//!
//! Run: `cargo bench -p edge-emulator --bench routing_latency`

use std::collections::BTreeMap;
use std::sync::Arc;

use edge_emulator::topology::Topology;
use edge_emulator::{server, Emulator, EmulatorOptions, DEFAULT_ROUTING};
use hdrhistogram::Histogram;
use tokio::sync::Semaphore;

/// Countries and their share of requests: roughly a global API's audience.
const MIX: &[(&str, u32)] = &[
    ("US", 30),
    ("CA", 5),
    ("BR", 5),
    ("GB", 10),
    ("DE", 10),
    ("FR", 5),
    ("IN", 10),
    ("JP", 10),
    ("AU", 5),
    ("SG", 10),
];
const REQUESTS: u32 = 1000;
const CONCURRENCY: usize = 32;

const SINGLE_ORIGIN: &str = r#"
[[origin]]
name = "us-east"
url = "https://us-east.origin.edge.example"
lat = 39.04
lon = -77.49
"#;

/// Sum of the client, edge and regional Server-Timing durations: the simulated time from the
/// client's request to its response (the regional hop includes the origin).
fn simulated_ms(server_timing: &str) -> f64 {
    server_timing
        .split(',')
        .filter(|metric| {
            let name = metric.trim().split(';').next().unwrap_or("");
            matches!(name, "client" | "edge" | "regional")
        })
        .filter_map(|metric| {
            metric
                .split(';')
                .find_map(|p| p.trim().strip_prefix("dur="))
                .and_then(|d| d.parse::<f64>().ok())
        })
        .sum()
}

async fn run(name: &str, routing: &str) -> BTreeMap<String, Histogram<u64>> {
    let emulator = Emulator::start(EmulatorOptions {
        topology: Topology::default_embedded(),
        time_scale: 0.0,
        auth_toml: None,
        routing_toml: Some(routing.to_string()),
        ..EmulatorOptions::new(Topology::default_embedded())
    })
    .await
    .expect("the emulator starts");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let serving = tokio::spawn(server::run(
        listener,
        emulator,
        server::AdminAccess::loopback_only(),
        server::access_log::AccessLog::quiet(),
        async {
            let _ = stopped.await;
        },
    ));
    let client = reqwest::Client::new();
    let slots = Arc::new(Semaphore::new(CONCURRENCY));
    let total: u32 = MIX.iter().map(|(_, w)| w).sum();
    let mut tasks = Vec::new();
    for i in 0..REQUESTS {
        let mut pick = i % total;
        let country = MIX
            .iter()
            .find(|(_, w)| {
                let hit = pick < *w;
                pick = pick.saturating_sub(*w);
                hit
            })
            .map_or("US", |(c, _)| c);
        let permit = slots.clone().acquire_owned().await.unwrap();
        let (client, url) = (client.clone(), format!("{base}/api/products/{}", i + 1));
        tasks.push(tokio::spawn(async move {
            let response = client
                .get(url)
                .header("cf-ipcountry", country)
                .send()
                .await
                .expect("the emulator answers");
            let timing = response
                .headers()
                .get("server-timing")
                .and_then(|v| v.to_str().ok())
                .unwrap_or("")
                .to_string();
            drop(permit);
            (country, simulated_ms(&timing))
        }));
    }
    let mut by_country: BTreeMap<String, Histogram<u64>> = BTreeMap::new();
    for task in tasks {
        let (country, ms) = task.await.unwrap();
        for key in [country, "all"] {
            by_country
                .entry(key.to_string())
                .or_insert_with(|| Histogram::new(3).unwrap())
                .record((ms * 1000.0) as u64)
                .unwrap();
        }
    }
    let _ = stop.send(());
    let _ = serving.await;
    eprintln!("{name}: {REQUESTS} requests done");
    by_country
}

fn ms(h: &Histogram<u64>, q: f64) -> f64 {
    h.value_at_quantile(q) as f64 / 1000.0
}

#[tokio::main]
async fn main() {
    // `cargo bench` passes --bench; `cargo test --benches` passes nothing: run briefly either way.
    let nearest = run("nearest routing", DEFAULT_ROUTING).await;
    let single = run("single origin (us-east)", SINGLE_ORIGIN).await;
    println!(
        "\n{:<8} {:>14} {:>14} {:>14} {:>14}",
        "client", "nearest p50", "single p50", "nearest p95", "single p95"
    );
    for (country, n) in &nearest {
        let s = &single[country];
        println!(
            "{:<8} {:>11.1} ms {:>11.1} ms {:>11.1} ms {:>11.1} ms",
            country,
            ms(n, 0.5),
            ms(s, 0.5),
            ms(n, 0.95),
            ms(s, 0.95)
        );
    }
    let (n, s) = (&nearest["all"], &single["all"]);
    println!(
        "\noverall: p50 {:.1} → {:.1} ms ({:.2}×), p95 {:.1} → {:.1} ms ({:.2}×) single origin → nearest",
        ms(s, 0.5),
        ms(n, 0.5),
        ms(s, 0.5) / ms(n, 0.5),
        ms(s, 0.95),
        ms(n, 0.95),
        ms(s, 0.95) / ms(n, 0.95)
    );
}
