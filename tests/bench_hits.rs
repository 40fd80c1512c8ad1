//! Cache-hit throughput of one scenario (a warm `GET /api/products/1`) in workerd (the
//! Cloudflare build) and in the emulator's `serve`, with the same load tool (`wrk`) and
//! concurrency. Ignored by default; BENCHMARKS.md has the command and the figures.
//!
//! Both are measured with the same settings: 2 wrk threads, 16 connections, 5 s per run,
//! 5 runs each, alternating, median reported. workerd's hits go through its Cache API to the
//! in-memory cache service of `tests/workerd/`; the emulator's through its PoP store.

mod common;
mod workerd;

use std::process::Command;
use std::time::Duration;

use common::Emulator;
use workerd::{Workerd, WorkerdOptions};

const PATH: &str = "/api/products/1";
const RUNS: usize = 5;
const SECS: u32 = 5;

/// Runs wrk once and returns requests per second.
fn wrk(url: &str) -> f64 {
    let output = Command::new("wrk")
        .args(["-t2", "-c16", &format!("-d{SECS}s"), "--latency", url])
        .output()
        .expect("wrk is installed (apt-get install wrk)");
    let text = String::from_utf8_lossy(&output.stdout);
    assert!(
        !text.contains("Non-2xx"),
        "every response must be a 200 hit: {text}"
    );
    text.lines()
        .find_map(|l| l.strip_prefix("Requests/sec:"))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("no Requests/sec in {text}"))
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(|a, b| a.total_cmp(b));
    values[values.len() / 2]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "benchmark: run with --ignored --nocapture (needs wrk)"]
async fn cache_hit_throughput_workerd_vs_emulator() {
    // Long lifetimes so every measured request is a hit.
    let workerd = Workerd::start_with(WorkerdOptions {
        short_ttl: false,
        verbose: false,
    })
    .await;
    let emulator = Emulator::start().await;
    for _ in 0..3 {
        workerd.send("GET", PATH, &[]).await;
        emulator.get(PATH).await;
    }
    assert_eq!(
        workerd
            .send("GET", PATH, &[])
            .await
            .header("cf-cache-status"),
        "HIT"
    );
    assert_eq!(emulator.get(PATH).await.header("cf-cache-status"), "HIT");

    let (mut on_workerd, mut on_emulator) = (Vec::new(), Vec::new());
    for _ in 0..RUNS {
        let url = format!("{}{PATH}", workerd.base);
        on_workerd.push(
            tokio::task::spawn_blocking(move || wrk(&url))
                .await
                .unwrap(),
        );
        let url = format!("{}{PATH}", emulator.base);
        on_emulator.push(
            tokio::task::spawn_blocking(move || wrk(&url))
                .await
                .unwrap(),
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let (w, e) = (median(on_workerd.clone()), median(on_emulator.clone()));
    println!("workerd  req/s per run: {on_workerd:?} median {w:.0}");
    println!("emulator req/s per run: {on_emulator:?} median {e:.0}");
    println!("workerd / emulator: {:.2}", w / e);
    assert_eq!(workerd.origin_requests(PATH), 1, "the load was all hits");
}
