//! End to end through the real binary and the real wasm worker: the cache policy's TTL jitter
//! (stored copies expire spread out, never later than the origin said) and negative caching
//! (a missing id reaches the origin once while the negative entry lasts).

mod common;

use common::{config_file, Emulator};

/// 50 objects, each `public, max-age=100`, fetched at t = 0 from the default PoP (fra).
fn object(i: u64) -> String {
    format!("/api/objects/{i}?bytes=64&ttl=100")
}

/// How many of the 50 objects the edge no longer serves as a fresh hit 60 s after they were
/// stored, checking that the hits' Age and Cache-Status ttl are truthful.
async fn expired_after_60s(emulator: &Emulator) -> usize {
    for i in 1..=50 {
        let first = emulator.get(&object(i)).await;
        assert_eq!(first.status, 200);
        assert_eq!(first.header("cf-cache-status"), "MISS");
    }
    emulator.advance(60).await;
    let mut expired = 0;
    for i in 1..=50 {
        let again = emulator.get(&object(i)).await;
        assert_eq!(again.status, 200);
        if again.header("cf-cache-status") == "HIT" {
            // The real age (wall time passes too in `serve`: a second at most here).
            let age: u64 = again.header("age").parse().unwrap();
            assert!((60..=61).contains(&age), "Age {age}");
            let status = again.header("cache-status");
            let ttl: i64 = status
                .rsplit("ttl=")
                .next()
                .and_then(|t| t.split(';').next())
                .and_then(|t| t.trim().parse().ok())
                .unwrap_or_else(|| panic!("a ttl in {status:?}"));
            // Whole seconds left of at most 100 − 60 (0 when under a second is left).
            assert!((0..=40).contains(&ttl), "ttl={ttl}: never past max-age");
        } else {
            expired += 1;
        }
    }
    expired
}

#[tokio::test]
async fn jitter_spreads_the_expiry_of_entries_stored_together() {
    let policy = config_file(
        "jitter",
        "[[routes]]\npath = \"/api/objects/*\"\nttl_jitter = 0.5\n",
    );
    let jittered = Emulator::start_with(&["--cache-policy", policy.to_str().unwrap()]).await;
    // Jitter 0.5 leaves each copy 50..=100 s: by 60 s about a fifth have expired.
    let expired = expired_after_60s(&jittered).await;
    assert!((2..=25).contains(&expired), "{expired} of 50 expired");
    drop(jittered);
    let plain = Emulator::start().await;
    assert_eq!(
        expired_after_60s(&plain).await,
        0,
        "without jitter none has"
    );
}

#[tokio::test]
async fn a_missing_id_is_cached_negatively_and_counted() {
    let policy = config_file(
        "negative",
        "[[routes]]\npath = \"/api/*\"\nnegative_ttl_secs = 10\n",
    );
    let emulator = Emulator::start_with(&["--cache-policy", policy.to_str().unwrap()]).await;
    let missing = "/api/objects/999?bytes=64&of=100";
    let first = emulator.get(missing).await;
    assert_eq!(first.status, 404);
    assert_eq!(first.header("cf-cache-status"), "MISS");
    assert!(
        first.header("cache-control").is_empty(),
        "no freshness of its own"
    );
    assert!(
        first
            .header("cache-status")
            .ends_with("stored; detail=negative"),
        "{}",
        first.header("cache-status")
    );
    emulator.advance(3).await;
    let second = emulator.get(missing).await;
    assert_eq!(second.status, 404);
    assert_eq!(second.header("cf-cache-status"), "HIT");
    // The real age, and what the negative entry has left (wall time moves a little too).
    let age: u64 = second.header("age").parse().unwrap();
    assert!((3..=4).contains(&age), "Age {age}");
    // Both are whole seconds rounded down, so together they make 9 or 10.
    let left = 10 - age;
    let status = second.header("cache-status");
    assert!(
        [left, left - 1]
            .iter()
            .any(|ttl| status == format!("edge-fra; hit; ttl={ttl}; detail=negative")),
        "{status}"
    );
    assert_eq!(second.body, first.body);
    assert_eq!(
        emulator
            .origin_requests("eu-west", "/api/objects/999")
            .await,
        1
    );
    let stats = emulator.stats().await;
    assert_eq!(stats["edge"]["fra"]["negative_hits"], 1);
    // Past the negative TTL the origin is asked again.
    emulator.advance(10).await;
    let third = emulator.get(missing).await;
    assert_ne!(third.header("cf-cache-status"), "HIT");
    assert_eq!(
        emulator
            .origin_requests("eu-west", "/api/objects/999")
            .await,
        2
    );
}

#[tokio::test]
async fn without_a_cache_policy_every_404_reaches_the_origin() {
    let emulator = Emulator::start().await;
    let missing = "/api/objects/999?bytes=64&of=100";
    for _ in 0..2 {
        let reply = emulator.get(missing).await;
        assert_eq!(reply.status, 404);
        assert_eq!(reply.header("cf-cache-status"), "BYPASS");
    }
    assert_eq!(
        emulator
            .origin_requests("eu-west", "/api/objects/999")
            .await,
        2
    );
    assert_eq!(emulator.stats().await["edge"]["fra"]["negative_hits"], 0);
}

#[tokio::test]
async fn an_invalid_cache_policy_stops_the_start() {
    let policy = config_file(
        "bad-policy",
        "[[routes]]\npath = \"*\"\nnegative_ttl_secs = 3600\n",
    );
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_edge-emulator"))
        .args(["serve", "--listen", "127.0.0.1:0"])
        .args(["--cache-policy", policy.to_str().unwrap()])
        .output()
        .expect("edge-emulator runs");
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("invalid cache_policy configuration") && stderr.contains("300"),
        "{stderr}"
    );
}
