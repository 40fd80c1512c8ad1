//! Geo routing and origin resilience end to end: the real emulator binary, the wasm worker
//! choosing the regional origin, in-process origins with injected faults.

mod common;

use common::{config_file, Emulator};
use edge_emulator::DEFAULT_ROUTING;
use serde_json::json;

/// Where a client's request went and why.
async fn region_for(emulator: &Emulator, country: &str, path: &str) -> (u16, String) {
    let reply = emulator.get_with(path, &[("cf-ipcountry", country)]).await;
    (
        reply.status,
        reply.header("x-edge-origin-region").to_string(),
    )
}

const REGIONS: [&str; 3] = ["us-east", "eu-west", "ap-southeast"];

#[tokio::test]
async fn clients_from_ten_countries_land_on_the_expected_region() {
    let emulator = Emulator::start().await;
    let cases = [
        ("US", "us-east; reason=nearest"),
        ("CA", "us-east; reason=nearest"),
        ("BR", "us-east; reason=nearest"),
        ("GB", "eu-west; reason=nearest"),
        ("CH", "eu-west; reason=nearest"),
        ("DE", "eu-west; reason=residency"),
        ("FR", "eu-west; reason=residency"),
        ("JP", "ap-southeast; reason=nearest"),
        ("AU", "ap-southeast; reason=nearest"),
        ("IN", "ap-southeast; reason=rule"),
    ];
    for (i, (country, expected)) in cases.iter().enumerate() {
        let path = format!("/api/products/{}", 100 + i);
        assert_eq!(
            region_for(&emulator, country, &path).await,
            (200, expected.to_string()),
            "{country}"
        );
        let region = expected.split(';').next().unwrap();
        for origin in REGIONS {
            let want = u64::from(origin == region);
            assert_eq!(
                emulator.origin_requests(origin, &path).await,
                want,
                "{country}: {origin}"
            );
        }
    }
    let timing = emulator
        .get_with("/api/products/200", &[("cf-ipcountry", "JP")])
        .await;
    assert!(
        timing
            .header("server-timing")
            .contains("route;desc=\"ap-southeast nearest\""),
        "{}",
        timing.header("server-timing")
    );
}

#[tokio::test]
async fn an_eu_client_gets_stale_or_503_and_never_a_us_origin_when_eu_is_down() {
    let emulator = Emulator::start().await;
    let cached = "/api/products/10";
    assert_eq!(
        region_for(&emulator, "DE", cached).await,
        (200, "eu-west; reason=residency".into())
    );
    emulator
        .set_faults("eu-west", json!({ "down_for_secs": 3600 }))
        .await;
    // Past max-age and stale-while-revalidate, inside stale-if-error.
    emulator.advance(120).await;
    let stale = emulator.get_with(cached, &[("cf-ipcountry", "DE")]).await;
    assert_eq!(stale.status, 200);
    assert!(stale.header("cache-status").contains("stale-if-error"));

    // Never cached: 503, and once the circuit opens the 503 says when to come back.
    let mut last = None;
    for i in 0..7 {
        let reply = emulator
            .get_with(
                &format!("/api/products/{}", 20 + i),
                &[("cf-ipcountry", "DE")],
            )
            .await;
        assert_eq!(
            reply.status,
            503,
            "{}",
            String::from_utf8_lossy(&reply.body)
        );
        last = Some(reply);
    }
    let last = last.unwrap();
    assert!(last.header("retry-after").parse::<u64>().unwrap() >= 1);
    assert_eq!(last.json()["error"], "no_origin_available");
    assert!(last.json()["message"].as_str().unwrap().contains("eu-eea"));
    assert_eq!(emulator.origin_total("us-east").await, 0);
    assert_eq!(emulator.origin_total("ap-southeast").await, 0);
    let routing = emulator.routing().await;
    assert_eq!(routing["eu-west"]["breakers"]["fra"], "open");
    assert_eq!(routing["eu-west"]["failovers"], 0);
}

#[tokio::test]
async fn a_us_client_fails_over_and_returns_after_a_half_open_probe() {
    let emulator = Emulator::start().await;
    emulator
        .set_faults("us-east", json!({ "down_for_secs": 3600 }))
        .await;
    for i in 0..8 {
        let path = format!("/api/products/{}", 300 + i);
        assert_eq!(
            region_for(&emulator, "US", &path).await,
            (200, "eu-west; reason=failover".into())
        );
    }
    // Five failures opened the circuit; the last three went straight to eu-west.
    let routing = emulator.routing().await;
    assert_eq!(routing["us-east"]["failures"], 5);
    assert_eq!(routing["us-east"]["breakers"]["iad"], "open");
    assert_eq!(routing["eu-west"]["failovers"], 8);
    assert_eq!(emulator.origin_total("us-east").await, 5);

    // Recovery: after the cool-down one probe goes to us-east, succeeds, and closes it.
    emulator.set_faults("us-east", json!({})).await;
    emulator.advance(6).await;
    assert_eq!(
        region_for(&emulator, "US", "/api/products/400").await,
        (200, "us-east; reason=nearest".into())
    );
    assert_eq!(
        region_for(&emulator, "US", "/api/products/401").await,
        (200, "us-east; reason=nearest".into())
    );
    let routing = emulator.routing().await;
    assert_eq!(routing["us-east"]["breakers"]["iad"], "closed");
    assert_eq!(routing["us-east"]["breaker_state_changes"], 3);
}

#[tokio::test]
async fn a_flapping_origin_does_not_cause_a_retry_storm() {
    let emulator = Emulator::start().await;
    // Down for the second 10 s of every 20 s of the emulator's clock.
    emulator
        .set_faults("us-east", json!({ "flap_period_ms": 20_000 }))
        .await;
    // Start 1 s into an up half, so wall time inside a phase cannot cross into the next.
    let now = emulator.now_ms().await;
    emulator
        .advance((20_000 - now % 20_000 + 1_000).div_ceil(1000))
        .await;
    let (phases, per_phase) = (6u64, 20u64);
    let mut n = 0;
    for _ in 0..phases {
        for _ in 0..per_phase {
            let path = format!("/api/products/{}", 500 + n);
            let (status, _) = region_for(&emulator, "US", &path).await;
            assert_eq!(status, 200, "every client request is answered");
            n += 1;
        }
        emulator.advance(10).await;
    }
    let us = emulator.origin_total("us-east").await;
    let eu = emulator.origin_total("eu-west").await;
    let clients = phases * per_phase;
    let down_phases = phases / 2;
    // Up phases: one request each. Down phases: at most the breaker's 5 failures before it
    // opens, and no retry of the same origin ever.
    assert!(us <= clients / 2 + 5 * down_phases, "us-east saw {us}");
    assert!(
        us + eu <= clients + 5 * down_phases,
        "{us} + {eu} origin requests"
    );
    assert_eq!(eu, 60, "the down halves went to eu-west, once per request");
    let routing = emulator.routing().await;
    assert_eq!(routing["us-east"]["failures"], 5 * down_phases);
    // Each down half: open; each following up half: half-open probe, closed.
    assert!(
        routing["us-east"]["breaker_state_changes"]
            .as_u64()
            .unwrap()
            >= 2 * down_phases
    );
}

#[tokio::test]
async fn redirect_mode_sends_the_regional_host_with_zero_origin_requests() {
    let routing =
        DEFAULT_ROUTING.replace("# [redirect]\n# status = 307", "[redirect]\nstatus = 307");
    let file = config_file("redirect", &routing);
    let emulator = Emulator::start_with(&["--routing", file.to_str().unwrap()]).await;
    let reply = emulator
        .get_with("/api/products/3?fields=id,name", &[("cf-ipcountry", "AU")])
        .await;
    assert_eq!(reply.status, 307);
    assert_eq!(
        reply.header("location"),
        "https://ap-southeast.api.edge.example/api/products/3?fields=id,name"
    );
    assert_eq!(
        reply.header("x-edge-origin-region"),
        "ap-southeast; reason=nearest"
    );
    let reply = emulator
        .send("POST", "/api/orders?x=1", &[("cf-ipcountry", "GB")])
        .await;
    assert_eq!(reply.status, 307);
    assert_eq!(
        reply.header("location"),
        "https://eu-west.api.edge.example/api/orders?x=1"
    );
    for origin in REGIONS {
        assert_eq!(emulator.origin_total(origin).await, 0, "{origin}");
    }
}

#[tokio::test]
async fn post_is_never_retried_at_another_origin() {
    let emulator = Emulator::start().await;
    emulator
        .set_faults("us-east", json!({ "down_for_secs": 3600 }))
        .await;
    let reply = emulator
        .send("POST", "/api/products/1", &[("cf-ipcountry", "US")])
        .await;
    assert_eq!(
        reply.status, 503,
        "the origin's own failure, passed through"
    );
    assert_eq!(
        reply.header("x-edge-origin-region"),
        "us-east; reason=nearest"
    );
    assert_eq!(emulator.origin_total("us-east").await, 1);
    assert_eq!(emulator.origin_total("eu-west").await, 0);
    assert_eq!(emulator.origin_total("ap-southeast").await, 0);
}

#[tokio::test]
async fn a_slow_origin_times_out_and_a_hedged_get_wins_elsewhere() {
    let routing = DEFAULT_ROUTING
        .replacen(
            "first_byte_timeout_ms = 5000",
            "first_byte_timeout_ms = 300",
            1,
        )
        .replace("# [hedge]\n# after_ms = 150", "[hedge]\nafter_ms = 100");
    let file = config_file("hedge", &routing);
    let emulator = Emulator::start_with(&["--routing", file.to_str().unwrap()]).await;
    emulator
        .set_faults("us-east", json!({ "extra_latency_ms": 3000 }))
        .await;
    // The hedge to eu-west goes out after 100 ms and answers first.
    let started = std::time::Instant::now();
    assert_eq!(
        region_for(&emulator, "US", "/api/products/7").await,
        (200, "eu-west; reason=failover".into())
    );
    assert!(started.elapsed() < std::time::Duration::from_secs(2));
    let routing = emulator.routing().await;
    assert_eq!(routing["eu-west"]["hedges_sent"], 1);
    assert_eq!(routing["eu-west"]["hedges_won"], 1);

    // POST is not hedged: it waits for us-east, whose 300 ms first-byte timeout fires; the
    // worker does not replay it elsewhere.
    let reply = emulator
        .send("POST", "/api/products/8", &[("cf-ipcountry", "US")])
        .await;
    assert_eq!(reply.status, 502);
    assert!(String::from_utf8_lossy(&reply.body).contains("within 300 ms"));
    // The hedged GET's slow primary lost the race, which is no failure; the POST's timeout is.
    assert_eq!(emulator.routing().await["us-east"]["failures"], 1);
}
