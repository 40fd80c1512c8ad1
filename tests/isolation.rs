//! Isolates (`--isolation isolate`, the default): warm instances reused across requests, as
//! Cloudflare runs them. What reuse must never do: carry one request's data into another,
//! keep an instance that trapped or hit a limit, or change what a client gets.

mod common;

use common::user_origin::UserOrigin;
use common::{demo_token, Emulator};
use serde_json::Value;

fn isolates(stats: &Value) -> &Value {
    &stats["isolates"]
}

fn count(stats: &Value, field: &str) -> u64 {
    isolates(stats)[field].as_u64().unwrap_or_default()
}

fn retired(stats: &Value, reason: &str) -> u64 {
    isolates(stats)["retired"][reason]
        .as_u64()
        .unwrap_or_default()
}

fn token(sub: &str, scope: Option<&str>) -> String {
    edge_emulator::demo_token::mint(
        edge_emulator::demo_token::DemoAlg::Hs256,
        sub,
        scope,
        std::time::SystemTime::now(),
        std::time::Duration::from_secs(600),
    )
    .expect("the demo key signs")
}

#[tokio::test]
async fn two_clients_interleaved_on_one_isolate_never_see_each_others_private_responses() {
    let emulator = Emulator::start_with(&["--isolation", "isolate"]).await;
    let (alice, bob) = (demo_token("alice"), demo_token("bob"));
    for round in 0..3 {
        for (sub, token) in [("alice", &alice), ("bob", &bob)] {
            let auth = format!("Bearer {token}");
            let reply = emulator
                .get_with("/api/users/1", &[("authorization", &auth)])
                .await;
            assert_eq!(reply.status, 200, "round {round}, {sub}");
            // The origin writes who asked into this private document.
            assert_eq!(reply.json()["viewer"], sub, "round {round}");
            assert!(reply.header("cache-control").contains("private"));
        }
    }
    // A client without a token gets no one's document from the isolate either.
    assert_eq!(emulator.get("/api/users/1").await.status, 401);
    let stats = emulator.stats().await;
    // Sequential requests: every one ran on the same warm isolate.
    assert_eq!(count(&stats, "created"), 1, "{stats:#}");
    assert_eq!(count(&stats, "requests"), 7, "{stats:#}");
    assert_eq!(isolates(&stats)["mode"], "isolate");
}

#[tokio::test]
async fn forwarded_claims_belong_to_the_request_that_carried_them() {
    let origin = UserOrigin::start().await;
    let auth = common::config_file("isolation-auth", edge_emulator::DEFAULT_AUTH);
    let emulator = Emulator::start_with(&[
        "--origin",
        &origin.url,
        "--auth",
        auth.to_str().unwrap(),
        "--isolation",
        "isolate",
    ])
    .await;
    let alice = format!("Bearer {}", token("alice", Some("admin")));
    let bob = format!("Bearer {}", token("bob", None));
    // no-store: every request reaches the origin, which records what the edge forwarded.
    let path = "/api/users/7?cc=no-store";
    for _ in 0..3 {
        for auth in [&alice, &bob] {
            let reply = emulator.get_with(path, &[("authorization", auth)]).await;
            assert_eq!(reply.status, 200);
        }
    }
    let seen = origin.seen("/api/users/7");
    assert_eq!(seen.len(), 6);
    for (i, request) in seen.iter().enumerate() {
        let header = |name: &str| {
            request
                .headers
                .get(name)
                .map(|v| v.to_str().unwrap().to_string())
        };
        let (sub, scope) = if i % 2 == 0 {
            ("alice", Some("admin".to_string()))
        } else {
            ("bob", None)
        };
        assert_eq!(header("x-auth-sub").as_deref(), Some(sub), "request {i}");
        assert_eq!(header("x-auth-scope"), scope, "request {i}");
        // The edge verified the token; it does not pass it on (forward_authorization off).
        assert_eq!(header("authorization"), None, "request {i}");
    }
    assert_eq!(count(&emulator.stats().await, "created"), 1);
}

#[tokio::test]
async fn after_a_trap_the_next_request_runs_on_a_new_isolate_and_succeeds() {
    let emulator = Emulator::start_with(&["--isolation", "isolate"]).await;
    assert_eq!(emulator.get("/api/products/1").await.status, 200);
    let trapped = emulator
        .get_with("/api/products/2", &[("x-emulator-fault", "trap")])
        .await;
    assert_eq!(trapped.status, 500);
    assert_eq!(trapped.json()["error"], "worker_failed");
    let next = emulator.get("/api/products/2").await;
    assert_eq!(next.status, 200);
    assert_eq!(next.json()["id"], 2);
    let hit = emulator.get("/api/products/1").await;
    assert_eq!(hit.header("cf-cache-status"), "HIT");
    let stats = emulator.stats().await;
    assert_eq!(retired(&stats, "trap"), 1, "{stats:#}");
    assert_eq!(count(&stats, "created"), 2, "{stats:#}");
    assert_eq!(count(&stats, "live"), 1, "{stats:#}");
}

#[tokio::test]
async fn a_request_past_a_limit_leaves_no_half_updated_isolate_behind() {
    let emulator = Emulator::start_with(&["--isolation", "isolate", "--cpu-limit-ms", "5"]).await;
    // Warm an isolate, then make it run out of CPU half-way through compressing 4 MB.
    assert_eq!(emulator.get("/api/products/1").await.status, 200);
    let path = "/api/objects/1?bytes=4000000";
    let heavy = emulator.get_with(path, &[("accept-encoding", "br")]).await;
    assert_eq!(heavy.status, 503);
    assert_eq!(heavy.json()["error"], "worker_cpu_limit");
    // The same URL, asked for without compression, comes whole from a new isolate.
    let plain = emulator.get(path).await;
    assert_eq!(plain.status, 200);
    assert!(plain.body.len() >= 4_000_000);
    assert_eq!(plain.header("content-length"), plain.body.len().to_string());
    assert_eq!(plain.json()["id"], 1);
    let stats = emulator.stats().await;
    assert_eq!(retired(&stats, "cpu_limit"), 1, "{stats:#}");
    assert_eq!(count(&stats, "created"), 2, "{stats:#}");

    let emulator =
        Emulator::start_with(&["--isolation", "isolate", "--memory-limit-mib", "8"]).await;
    assert_eq!(emulator.get("/api/products/1").await.status, 200);
    // Responses stay in the host: 8 MB pass through the worker's 8 MiB untouched (the host
    // codes them too, when asked).
    let passed = emulator.get("/api/objects/4?bytes=8000000").await;
    assert_eq!(passed.status, 200);
    assert!(passed.body.len() >= 8_000_000);
    // A request body is the worker's to read: 8 MB of it are past its 8 MiB.
    let huge = post_body(&emulator, "/api/orders", 8_000_000).await;
    assert_eq!(huge.json()["error"], "worker_memory_limit");
    let small = emulator.get("/api/objects/3?bytes=1000").await;
    assert_eq!(small.status, 200);
    assert_eq!(small.json()["id"], 3);
    let stats = emulator.stats().await;
    assert_eq!(retired(&stats, "memory_limit"), 1, "{stats:#}");
    assert_eq!(count(&stats, "created"), 2, "{stats:#}");
}

#[tokio::test]
async fn time_the_host_spends_on_a_request_is_not_the_guests_cpu() {
    // A 4 MB miss and then a hit. The guest's own work on it is about 2 ticks, but the host
    // spends far longer: the origin generates the body (~0.4 s in a debug build), and copying
    // it into guest memory and back out across the import boundary takes ~30 ms each way.
    // When each of those waits cost a tick at the guest's next check, the miss was charged
    // 6 ticks and failed under a 5 ms limit.
    let emulator = Emulator::start_with(&["--isolation", "isolate", "--cpu-limit-ms", "5"]).await;
    for id in 1..=2 {
        let path = format!("/api/objects/{id}?bytes=4000000");
        for expected in ["MISS", "HIT"] {
            let reply = emulator.get(&path).await;
            assert_eq!(reply.status, 200, "{path} {expected}: {:?}", reply.json());
            assert_eq!(reply.header("cf-cache-status"), expected, "{path}");
            assert_eq!(reply.body.len(), 4_000_000, "{path} {expected}");
        }
    }
    let stats = emulator.stats().await;
    assert_eq!(retired(&stats, "cpu_limit"), 0, "{stats:#}");
    assert_eq!(count(&stats, "created"), 1, "{stats:#}");
}

#[tokio::test]
async fn stats_count_isolates_created_retired_and_reused() {
    let emulator =
        Emulator::start_with(&["--isolation", "isolate", "--isolate-max-requests", "3"]).await;
    for _ in 0..7 {
        assert_eq!(emulator.get("/api/products/1").await.status, 200);
    }
    let stats = emulator.stats().await;
    assert_eq!(count(&stats, "created"), 3, "{stats:#}");
    assert_eq!(retired(&stats, "max_requests"), 2, "{stats:#}");
    assert_eq!(count(&stats, "requests"), 7);
    assert_eq!(count(&stats, "max_requests_per_isolate"), 3);
    assert_eq!(isolates(&stats)["requests_per_isolate"], 2.33);
    let metrics = emulator
        .client
        .get(format!("{}/__emulator/metrics", emulator.base))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains("edge_emulator_isolates_created_total 3"),
        "{metrics}"
    );
    assert!(
        metrics.contains("edge_emulator_isolates_retired_total{reason=\"max_requests\"} 2"),
        "{metrics}"
    );

    let fresh = Emulator::start_with(&["--isolation", "fresh"]).await;
    for _ in 0..4 {
        assert_eq!(fresh.get("/api/products/1").await.status, 200);
    }
    let stats = fresh.stats().await;
    assert_eq!(isolates(&stats)["mode"], "fresh");
    assert_eq!(count(&stats, "created"), 4, "{stats:#}");
    assert_eq!(retired(&stats, "single_use"), 4, "{stats:#}");
    assert_eq!(count(&stats, "max_requests_per_isolate"), 1);
}

#[tokio::test]
async fn concurrent_requests_take_more_isolates_each_serving_one_at_a_time() {
    let origin = UserOrigin::start().await;
    let emulator = Emulator::start_with(&["--origin", &origin.url, "--isolation", "isolate"]).await;
    // Eight slow, uncacheable requests at once: each holds its isolate while it waits.
    let requests = (0..8).map(|i| {
        let path = format!("/slow/{i}?cc=no-store&delay_ms=300");
        let emulator = &emulator;
        async move { emulator.get(&path).await.status }
    });
    let statuses = futures::future::join_all(requests).await;
    assert!(statuses.iter().all(|s| *s == 200), "{statuses:?}");
    let stats = emulator.stats().await;
    assert_eq!(count(&stats, "created"), 8, "{stats:#}");
    // A PoP keeps four idle (their linear memory stays resident); the rest are dropped.
    assert_eq!(count(&stats, "idle"), 4, "{stats:#}");
    assert_eq!(retired(&stats, "idle_full"), 4, "{stats:#}");
    // Afterwards they are reused, not multiplied.
    for i in 0..4 {
        emulator.get(&format!("/fast/{i}?cc=no-store")).await;
    }
    assert_eq!(count(&emulator.stats().await, "created"), 8);
}

/// POSTs `len` bytes to `path` (request bodies cross into the worker's memory).
async fn post_body(emulator: &Emulator, path: &str, len: usize) -> common::Reply {
    let response = emulator
        .client
        .post(format!("{}{path}", emulator.base))
        .body(vec![b'x'; len])
        .send()
        .await
        .expect("the edge answers");
    common::Reply::read(response).await
}
