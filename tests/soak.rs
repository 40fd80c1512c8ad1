//! A bounded soak of `serve` under a mixed workload at high concurrency: every answer is one
//! a client should get (or an injected fault), and the emulator's memory stays flat.
//!
//! `EDGE_SOAK_SECS` sets the length (default 60 s). The figures go to stderr and to
//! `target/soak-report.json` for RELIABILITY.md.

mod common;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::Emulator;

const CONCURRENCY: usize = 64;
/// How much higher resident memory may peak in the second half of the run than in the
/// first and still count as flat: allocators keep some slack. Growth in the first half is
/// the caches filling up to their working set, which is bounded by the workload's objects.
const RSS_GROWTH_LIMIT_KIB: u64 = 32 * 1024;

/// One request of the mix and what answers it may get.
fn pick(rng: &mut fastrand::Rng, token: &str) -> (String, &'static str, Vec<(String, String)>) {
    let mut headers = Vec::new();
    let encoding = ["br", "gzip", "br, gzip", "identity"][rng.usize(..4)];
    headers.push(("accept-encoding".to_string(), encoding.to_string()));
    let id = 1 + rng.usize(..200);
    let (method, path) = match rng.u32(..100) {
        0..=49 => ("GET", format!("/api/products/{id}")),
        50..=64 => ("GET", format!("/api/products/{id}?fields=id,name,price")),
        65..=74 => ("HEAD", format!("/api/products/{id}")),
        75..=79 => (
            "GET",
            format!("/api/objects/{id}?bytes={}", 512 * (1 + id % 16)),
        ),
        80..=87 => {
            headers.push(("authorization".into(), format!("Bearer {token}")));
            ("GET", format!("/api/users/{}", 1 + rng.usize(..50)))
        }
        88..=91 => ("GET", format!("/api/users/{}", 1 + rng.usize(..50))),
        92..=95 => ("POST", format!("/api/products/{id}")),
        _ => ("GET", "/api/time".to_string()),
    };
    if rng.u32(..100) < 20 {
        headers.push(("if-none-match".into(), format!("\"stale-{id}\"")));
    }
    let country = ["US", "DE", "JP", "AU", "BR", "IN", "GB", "SG"][rng.usize(..8)];
    headers.push(("cf-ipcountry".into(), country.into()));
    (path, method, headers)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn soak_mixed_workload_keeps_memory_flat_and_answers_cleanly() {
    let seconds: u64 = std::env::var("EDGE_SOAK_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(60);
    let emulator = Arc::new(Emulator::start().await);
    let token = common::demo_token("soak-user");

    // Warm-up: fill the caches so what follows measures steady state.
    let statuses: Arc<Mutex<BTreeMap<String, u64>>> = Arc::default();
    let unexpected: Arc<Mutex<Vec<String>>> = Arc::default();
    let stop = Arc::new(AtomicBool::new(false));
    let run = |phase_secs: u64, seed: u64| {
        let (emulator, token) = (emulator.clone(), token.clone());
        let (statuses, unexpected, stop) = (statuses.clone(), unexpected.clone(), stop.clone());
        async move {
            let deadline = Instant::now() + Duration::from_secs(phase_secs);
            let workers = (0..CONCURRENCY).map(|w| {
                let (emulator, token) = (emulator.clone(), token.clone());
                let (statuses, unexpected, stop) =
                    (statuses.clone(), unexpected.clone(), stop.clone());
                tokio::spawn(async move {
                    let mut rng = fastrand::Rng::with_seed(seed * 1000 + w as u64);
                    while Instant::now() < deadline && !stop.load(Ordering::Relaxed) {
                        let (path, method, mut headers) = pick(&mut rng, &token);
                        let trap = rng.u32(..200) == 0;
                        if trap {
                            headers.push(("x-emulator-fault".into(), "trap".into()));
                        }
                        let pairs: Vec<(&str, &str)> = headers
                            .iter()
                            .map(|(n, v)| (n.as_str(), v.as_str()))
                            .collect();
                        let reply = emulator.send(method, &path, &pairs).await;
                        let ok = match reply.status {
                            200 | 304 => true,
                            401 => path.starts_with("/api/users/"),
                            405 => method == "POST",
                            500 => trap,
                            _ => false,
                        };
                        let length_ok = method == "HEAD"
                            || reply.status == 304
                            || reply.headers.get("content-length").is_none_or(|v| {
                                v.to_str().unwrap() == reply.body.len().to_string()
                            });
                        let key = format!("{method} {}", reply.status);
                        *statuses.lock().unwrap().entry(key).or_default() += 1;
                        if !ok || !length_ok || (reply.status == 304 && !reply.body.is_empty()) {
                            unexpected.lock().unwrap().push(format!(
                                "{method} {path} -> {} {}",
                                reply.status,
                                String::from_utf8_lossy(&reply.body[..reply.body.len().min(200)])
                            ));
                        }
                    }
                })
            });
            for worker in workers.collect::<Vec<_>>() {
                worker.await.expect("a soak worker panicked");
            }
        }
    };
    // 15 s, not 5: with 5 the caches were still filling through the first half (+66 MB in
    // CI, then +24 MB between the halves, against the 32 MB bound), and a busy machine
    // stretched the filling into the second half.
    run(15, 1).await;
    let rss_start = emulator.rss_kib();
    let started = Instant::now();
    // Resident memory once a second through the run.
    let samples: Arc<Mutex<Vec<u64>>> = Arc::default();
    let sampler = {
        let (emulator, samples, stop) = (emulator.clone(), samples.clone(), stop.clone());
        tokio::spawn(async move {
            while !stop.load(Ordering::Relaxed) {
                if let Some(kib) = emulator.rss_kib() {
                    samples.lock().unwrap().push(kib);
                }
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        })
    };

    // Expire things now and then so revalidation and refreshes run too.
    let ticker = {
        let (emulator, stop) = (emulator.clone(), stop.clone());
        tokio::spawn(async move {
            while !stop.load(Ordering::Relaxed) {
                tokio::time::sleep(Duration::from_secs(5)).await;
                emulator.advance(45).await;
            }
        })
    };
    run(seconds, 2).await;
    stop.store(true, Ordering::Relaxed);
    ticker.abort();
    sampler.abort();
    let samples = samples.lock().unwrap().clone();
    let (first, second) = samples.split_at(samples.len() / 2);
    let first_peak = first.iter().copied().max();
    let second_peak = second.iter().copied().max();
    let elapsed = started.elapsed();
    let rss_end = emulator.rss_kib();

    let statuses = statuses.lock().unwrap().clone();
    let total: u64 = statuses.values().sum();
    let stats = emulator.stats().await;
    let report = serde_json::json!({
        "seconds": elapsed.as_secs_f64(),
        "concurrency": CONCURRENCY,
        "requests": total,
        "requests_per_second": total as f64 / elapsed.as_secs_f64(),
        "statuses": statuses,
        "rss_kib_start": rss_start,
        "rss_kib_end": rss_end,
        "rss_kib_peak_first_half": first_peak,
        "rss_kib_peak_second_half": second_peak,
        "unexpected": unexpected.lock().unwrap().len(),
        "load": stats["load"],
    });
    eprintln!("soak: {report:#}");
    let out = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/soak-report.json");
    let _ = std::fs::write(out, serde_json::to_string_pretty(&report).unwrap());

    let unexpected = unexpected.lock().unwrap();
    assert!(
        unexpected.is_empty(),
        "{} unexpected answers, e.g. {:?}",
        unexpected.len(),
        &unexpected[..unexpected.len().min(5)]
    );
    if let (Some(first), Some(second)) = (first_peak, second_peak) {
        assert!(
            second <= first + RSS_GROWTH_LIMIT_KIB,
            "resident memory kept growing: peak {first} KiB in the first half, {second} KiB \
             in the second (samples {samples:?})"
        );
    }
    assert!(total > 1000, "the soak made only {total} requests");
}
