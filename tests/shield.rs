//! An origin shield end to end: the real binary and wasm worker over HTTP, with the example
//! topology `edge-emulator/topologies/shield.toml` (one shield in Ashburn that the three
//! regional tiers use).

mod common;

use common::Emulator;

/// Public, `max-age=60`: cached at every tier.
const PRODUCT: &str = "/api/products/1";
const ORIGINS: [&str; 3] = ["eu-west", "us-east", "ap-southeast"];

fn shield_topology() -> String {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("topologies/shield.toml")
        .display()
        .to_string()
}

async fn origin_requests(emulator: &Emulator, path: &str) -> Vec<u64> {
    let mut counts = Vec::new();
    for origin in ORIGINS {
        counts.push(emulator.origin_requests(origin, path).await);
    }
    counts
}

/// Asserts `metrics` appear in `timing` in this order.
fn in_order(timing: &str, metrics: &[&str]) {
    let mut from = 0;
    for metric in metrics {
        let at = timing[from..]
            .find(metric)
            .unwrap_or_else(|| panic!("Server-Timing {timing:?} lacks {metric} after {from}"));
        from += at + metric.len();
    }
}

#[tokio::test]
async fn a_shield_collapses_misses_from_three_regional_tiers_into_one_origin_request() {
    // Without geo routing every PoP fetches the client's URL, so the three regional tiers
    // ask the shield for one key.
    let topology = shield_topology();
    let emulator = Emulator::start_with(&["--topology", &topology, "--no-routing"]).await;
    let fra = emulator
        .get_with(PRODUCT, &[("x-emulator-pop", "fra")])
        .await;
    assert_eq!(fra.status, 200);
    assert_eq!(
        fra.header("cache-status"),
        "shield-us-east; fwd=uri-miss; fwd-status=200; stored, \
         regional-eu-central; fwd=uri-miss; fwd-status=200; stored, \
         edge-fra; fwd=uri-miss; fwd-status=200; stored",
        "one member per tier, origin-nearest first"
    );
    in_order(
        fra.header("server-timing"),
        &["edge;dur=", "regional;dur=", "shield;dur=", "origin;dur="],
    );

    for (pop, regional) in [("iad", "us-east"), ("sin", "ap-southeast")] {
        let reply = emulator.get_with(PRODUCT, &[("x-emulator-pop", pop)]).await;
        assert_eq!(reply.status, 200);
        assert_eq!(reply.body, fra.body, "{pop}: the same bytes");
        let status = reply.header("cache-status");
        assert!(
            status.starts_with("shield-us-east; hit; ttl="),
            "{pop}: {status}"
        );
        assert!(
            status.contains(&format!(
                "regional-{regional}; fwd=uri-miss; fwd-status=200; stored"
            )),
            "{pop}: {status}"
        );
        let timing = reply.header("server-timing");
        in_order(timing, &["regional;dur=", "shield;dur="]);
        assert!(!timing.contains("origin;"), "{pop}: {timing}");
    }

    // The first miss went to the origin of the regional tier that asked (eu-central's).
    assert_eq!(origin_requests(&emulator, PRODUCT).await, [1, 0, 0]);
    let stats = emulator.stats().await;
    let shield = &stats["shield"]["us-east"];
    assert_eq!(shield["requests"], 3, "{shield}");
    assert_eq!(shield["misses"], 1, "{shield}");
    assert_eq!(shield["hits"], 2, "{shield}");
    assert_eq!(shield["upstream_requests"], 1, "{shield}");
    for regional in ["eu-central", "us-east", "ap-southeast"] {
        assert_eq!(stats["regional"][regional]["upstream_requests"], 1);
    }
    let metrics = emulator.get("/__emulator/metrics").await;
    let text = String::from_utf8_lossy(&metrics.body);
    assert!(
        text.contains("edge_emulator_hits_total{tier=\"shield\",cache=\"us-east\"} 2"),
        "{text}"
    );
}

#[tokio::test]
async fn concurrent_misses_from_three_regional_tiers_wait_for_one_shield_fetch() {
    let topology = shield_topology();
    let emulator = Emulator::start_with(&["--topology", &topology, "--no-routing"]).await;
    // Slow origins, so the three requests overlap at the shield.
    for origin in ORIGINS {
        emulator
            .set_faults(origin, serde_json::json!({ "extra_latency_ms": 300 }))
            .await;
    }
    let path = "/api/products/2";
    let replies = futures_join(&emulator, path).await;
    for reply in &replies {
        assert_eq!(reply.status, 200);
    }
    // Whichever tier reached the shield first chose the origin (its own).
    let counts = origin_requests(&emulator, path).await;
    assert_eq!(counts.iter().sum::<u64>(), 1, "{counts:?}");
    let stats = emulator.stats().await;
    assert_eq!(stats["shield"]["us-east"]["upstream_requests"], 1);
    assert_eq!(stats["shield"]["us-east"]["collapsed"], 2, "{stats:#}");
}

async fn futures_join(emulator: &Emulator, path: &str) -> Vec<common::Reply> {
    let (a, b, c) = tokio::join!(
        emulator.get_with(path, &[("x-emulator-pop", "fra")]),
        emulator.get_with(path, &[("x-emulator-pop", "iad")]),
        emulator.get_with(path, &[("x-emulator-pop", "syd")]),
    );
    vec![a, b, c]
}

#[tokio::test]
async fn with_geo_routing_the_shield_sends_each_miss_to_the_origin_its_url_names() {
    // The default routing sends fra's clients to eu-west and syd's to ap-southeast under each
    // origin's own host: two keys at the shield, each fetched from its own origin.
    let topology = shield_topology();
    let emulator = Emulator::start_with(&["--topology", &topology]).await;
    let fra = emulator
        .get_with(PRODUCT, &[("x-emulator-pop", "fra")])
        .await;
    let syd = emulator
        .get_with(PRODUCT, &[("x-emulator-pop", "syd")])
        .await;
    for reply in [&fra, &syd] {
        assert_eq!(reply.status, 200);
        assert!(
            reply
                .header("cache-status")
                .starts_with("shield-us-east; fwd=uri-miss; fwd-status=200; stored"),
            "{}",
            reply.header("cache-status")
        );
    }
    assert!(fra.header("server-timing").contains("desc=\"eu-west\""));
    assert!(syd
        .header("server-timing")
        .contains("desc=\"ap-southeast\""));
    assert_eq!(origin_requests(&emulator, PRODUCT).await, [1, 0, 1]);
    let routing = emulator.routing().await;
    assert_eq!(routing["eu-west"]["requests"], 1);
    assert_eq!(routing["ap-southeast"]["requests"], 1);
}
