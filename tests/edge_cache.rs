//! End to end through the real binary, the real wasm worker and real HTTP: the edge-cache
//! behaviour of the foundation (RFC 9111 storing and freshness, RFC 5861 stale windows,
//! tiers, coalescing, isolation of a trapping request).

mod common;

use common::Emulator;
use serde_json::json;

/// Products: `public, max-age=60, stale-while-revalidate=30, stale-if-error=600`, from the
/// eu-west origin for clients of the default PoP (fra).
const PRODUCT: &str = "/api/products/1";

#[tokio::test]
async fn first_request_misses_then_hits_with_one_origin_request() {
    let emulator = Emulator::start().await;
    let first = emulator.get(PRODUCT).await;
    assert_eq!(first.status, 200);
    assert_eq!(first.header("cf-cache-status"), "MISS");
    assert_eq!(
        first.header("cache-status"),
        "regional-eu-central; fwd=uri-miss; fwd-status=200; stored, edge-fra; fwd=uri-miss; fwd-status=200; stored",
        "one member per tier, origin-nearest first"
    );
    let timing = first.header("server-timing");
    for hop in ["client;dur=", "edge;dur=", "regional;dur=", "origin;dur="] {
        assert!(timing.contains(hop), "Server-Timing {timing:?} lacks {hop}");
    }

    let second = emulator.get(PRODUCT).await;
    assert_eq!(second.header("cf-cache-status"), "HIT");
    assert!(second
        .header("cache-status")
        .starts_with("edge-fra; hit; ttl="));
    assert_eq!(second.header("age"), "0");
    assert_eq!(second.body, first.body, "the same bytes");
    assert!(
        !second.header("server-timing").contains("origin;"),
        "a hit goes nowhere"
    );
    assert_eq!(emulator.origin_requests("eu-west", PRODUCT).await, 1);

    let stats = emulator.stats().await;
    assert_eq!(stats["edge"]["fra"]["hits"], 1);
    assert_eq!(stats["edge"]["fra"]["misses"], 1);
    assert_eq!(stats["regional"]["eu-central"]["upstream_requests"], 1);
}

#[tokio::test]
async fn within_stale_while_revalidate_the_stale_body_comes_at_once_and_the_origin_sees_one_refresh(
) {
    let emulator = Emulator::start().await;
    let original = emulator.get(PRODUCT).await;
    // max-age=60 and stale-while-revalidate=30: at 70 s the entry is 10 s stale.
    emulator.advance(70).await;
    let stale = emulator.get(PRODUCT).await;
    assert_eq!(stale.status, 200);
    assert_eq!(stale.header("cf-cache-status"), "UPDATING");
    assert_eq!(
        stale.header("cache-status"),
        "edge-fra; hit; ttl=-10; detail=stale-while-revalidate"
    );
    assert_eq!(stale.body, original.body);

    emulator
        .wait_for_stats("the background refresh to reach the origin", |s| {
            s["origins"]["eu-west"]["stats"]["by_path"][PRODUCT] == 2
        })
        .await;
    emulator
        .wait_for_stats("the refresh to finish", |s| {
            s["edge"]["fra"]["background_refreshes"] == 1
        })
        .await;
    let refreshed = emulator.get(PRODUCT).await;
    assert_eq!(
        refreshed.header("cf-cache-status"),
        "HIT",
        "the refresh stored a fresh copy"
    );
    assert_eq!(
        emulator.origin_requests("eu-west", PRODUCT).await,
        2,
        "exactly one more origin request"
    );
}

#[tokio::test]
async fn when_the_origin_fails_stale_if_error_serves_the_stored_body() {
    // One origin behind the PoP: with geo routing the last request would fail over instead
    // (tests/geo_routing.rs).
    let emulator = Emulator::start_with(&["--no-routing"]).await;
    let original = emulator.get(PRODUCT).await;
    emulator
        .set_faults("eu-west", json!({ "error_rate": 1.0, "error_status": 503 }))
        .await;
    // Past max-age + stale-while-revalidate (90 s), inside stale-if-error (660 s).
    emulator.advance(120).await;
    let served = emulator.get(PRODUCT).await;
    assert_eq!(served.status, 200);
    assert_eq!(served.body, original.body);
    let cache_status = served.header("cache-status");
    assert!(
        cache_status.starts_with(
            "regional-eu-central; fwd=stale; fwd-status=503; ttl=-60; detail=stale-if-error"
        ),
        "{cache_status}"
    );
    assert!(
        emulator.origin_requests("eu-west", PRODUCT).await >= 2,
        "the origin was asked and failed"
    );

    // Past stale-if-error the failure shows.
    emulator.advance(700).await;
    let failed = emulator.get(PRODUCT).await;
    assert_eq!(failed.status, 503);
}

#[tokio::test]
async fn a_304_from_the_origin_refreshes_the_regional_copy() {
    let emulator = Emulator::start().await;
    emulator.get(PRODUCT).await;
    // Past the stale-while-revalidate window: a synchronous, conditional revalidation.
    emulator.advance(100).await;
    let revalidated = emulator.get(PRODUCT).await;
    assert_eq!(revalidated.status, 200);
    assert!(
        revalidated
            .header("cache-status")
            .starts_with("regional-eu-central; fwd=stale; fwd-status=304;"),
        "{}",
        revalidated.header("cache-status")
    );
    let stats = emulator.stats().await;
    assert_eq!(stats["origins"]["eu-west"]["stats"]["not_modified"], 1);
    assert_eq!(stats["regional"]["eu-central"]["revalidated"], 1);
}

#[tokio::test]
async fn private_and_no_store_responses_are_never_served_to_a_second_client() {
    let emulator = Emulator::start().await;
    // /api/users/{id} is `private, max-age=60` (and needs a token); /api/time is `no-store`.
    let alice = format!("Bearer {}", common::demo_token("alice"));
    let bob = format!("Bearer {}", common::demo_token("bob"));
    for path in ["/api/users/7", "/api/time"] {
        let alice = emulator.get_with(path, &[("authorization", &alice)]).await;
        let bob = emulator.get_with(path, &[("authorization", &bob)]).await;
        for reply in [&alice, &bob] {
            assert_eq!(reply.status, 200);
            assert_eq!(reply.header("cf-cache-status"), "BYPASS", "{path}");
        }
        assert_eq!(
            emulator.origin_requests("eu-west", path).await,
            2,
            "{path}: both went to the origin"
        );
    }
}

#[tokio::test]
async fn a_hundred_concurrent_requests_for_a_cold_key_make_one_origin_request() {
    let emulator = Emulator::start().await;
    // Slow the origin so the requests really overlap.
    emulator
        .set_faults("eu-west", json!({ "extra_latency_ms": 300 }))
        .await;
    let path = "/api/products/42";
    let mut requests = tokio::task::JoinSet::new();
    for _ in 0..100 {
        let client = emulator.client.clone();
        let url = format!("{}{path}", emulator.base);
        requests.spawn(async move {
            let response = client.get(url).send().await.expect("answered");
            (
                response.status().as_u16(),
                response.bytes().await.expect("body"),
            )
        });
    }
    let mut bodies = Vec::new();
    while let Some(result) = requests.join_next().await {
        let (status, body) = result.unwrap();
        assert_eq!(status, 200);
        bodies.push(body);
    }
    assert_eq!(bodies.len(), 100);
    assert!(
        bodies.iter().all(|b| *b == bodies[0]),
        "everyone got the same document"
    );
    assert_eq!(
        emulator.origin_requests("eu-west", path).await,
        1,
        "exactly one origin request"
    );
    // The PoP coalesces: one request goes up through the regional tier to the origin.
    let stats = emulator.stats().await;
    let (edge, regional) = (&stats["edge"]["fra"], &stats["regional"]["eu-central"]);
    assert_eq!(edge["upstream_requests"], 1);
    assert_eq!(regional["upstream_requests"], 1);
    assert!(
        edge["collapsed"].as_u64().unwrap() > 0,
        "requests waited on the one fetch: {edge}"
    );
}

#[tokio::test]
async fn a_trapping_worker_fails_one_request_and_the_next_succeeds() {
    let emulator = Emulator::start().await;
    let trapped = emulator
        .get_with(PRODUCT, &[("x-emulator-fault", "trap")])
        .await;
    assert_eq!(trapped.status, 500);
    assert_eq!(trapped.json()["error"], "worker_failed");
    let next = emulator.get(PRODUCT).await;
    assert_eq!(next.status, 200);
    assert_eq!(next.header("cf-cache-status"), "MISS");
    assert_eq!(emulator.stats().await["edge"]["fra"]["worker_errors"], 1);
}

#[tokio::test]
async fn clients_land_on_their_pop_and_tier_by_country_or_header() {
    let emulator = Emulator::start().await;
    let sydney = emulator.get_with(PRODUCT, &[("cf-ipcountry", "AU")]).await;
    assert!(sydney
        .header("cache-status")
        .ends_with("edge-syd; fwd=uri-miss; fwd-status=200; stored"));
    assert!(sydney
        .header("cache-status")
        .starts_with("regional-ap-southeast;"));
    assert_eq!(emulator.origin_requests("ap-southeast", PRODUCT).await, 1);
    let pinned = emulator
        .get_with(PRODUCT, &[("x-emulator-pop", "syd")])
        .await;
    assert_eq!(pinned.header("cf-cache-status"), "HIT");
    let unknown = emulator
        .get_with(PRODUCT, &[("x-emulator-pop", "atlantis")])
        .await;
    assert_eq!(unknown.status, 400);
    assert!(
        unknown.json()["message"].as_str().unwrap().contains("fra"),
        "lists the known PoPs"
    );
}

#[tokio::test]
async fn admin_endpoints_report_counters_as_json_and_prometheus() {
    let emulator = Emulator::start().await;
    emulator.get(PRODUCT).await;
    emulator.get(PRODUCT).await;
    let metrics = emulator.get("/__emulator/metrics").await;
    assert_eq!(metrics.status, 200);
    let text = String::from_utf8(metrics.body).unwrap();
    assert!(
        text.contains("edge_emulator_hits_total{tier=\"edge\",cache=\"fra\"} 1"),
        "{text}"
    );
    assert!(
        text.contains("edge_emulator_origin_requests_total{origin=\"eu-west\"} 1"),
        "{text}"
    );
    let bad = emulator
        .client
        .post(format!("{}/__emulator/clock", emulator.base))
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), 400);
}

/// RFC 9111 §4.4 through the stub's object writes: a 405 to a POST invalidates nothing (the
/// next GET is a hit); a successful PUT (204), a POST answered 201 with `Location`, and one
/// answered 200 with `Content-Location` each make the next GET of the object they name fetch
/// its new version.
#[tokio::test]
async fn successful_writes_invalidate_what_they_name_and_a_refused_one_nothing() {
    let emulator = Emulator::start().await;
    let object = |id: u32| format!("/api/objects/{id}");
    let version = |reply: &common::Reply| reply.json()["version"].clone();

    let first = emulator.get(&object(5)).await;
    let refused = emulator.send("POST", &object(5), &[]).await;
    assert_eq!(refused.status, 405);
    let after = emulator.get(&object(5)).await;
    assert_eq!(after.header("cf-cache-status"), "HIT");
    assert_eq!(after.body, first.body);

    // (write, its status, the object it changes)
    let writes = [
        ("PUT", object(6), 204, 6),
        ("POST", "/api/objects?id=7".to_string(), 201, 7),
        ("POST", format!("{}/edits", object(8)), 200, 8),
    ];
    for (method, target, status, id) in writes {
        let before = emulator.get(&object(id)).await;
        assert_eq!(
            emulator.get(&object(id)).await.header("cf-cache-status"),
            "HIT"
        );
        let write = emulator.send(method, &target, &[]).await;
        assert_eq!(write.status, status, "{method} {target}");
        let after = emulator.get(&object(id)).await;
        assert_eq!(after.header("cf-cache-status"), "MISS", "{method} {target}");
        assert_ne!(version(&after), version(&before), "{method} {target}");
    }
    assert_eq!(
        emulator.origin_requests("eu-west", &object(5)).await,
        2,
        "the GET and the refused POST"
    );
}
