//! Routing decisions and the routed fetch, natively, over in-memory ports.

use http::{Request, Response};
use serde_json::json;

use super::*;
use crate::ready::now_or_never;
use crate::testing::{header, MemoryPlatform};
use crate::{Body, CacheTier, EdgeWorker, FetchError};

/// EU/EEA members pinned to EU origins; three regions as in the emulator's default topology.
fn config() -> serde_json::Value {
    json!({
        "origin": [
            {"name": "us-east", "url": "https://us-east.origin.test", "lat": 39.04, "lon": -77.49,
             "redirect_host": "us.api.test"},
            {"name": "eu-west", "url": "https://eu-west.origin.test", "lat": 53.35, "lon": -6.26,
             "redirect_host": "eu.api.test"},
            {"name": "ap-southeast", "url": "https://ap-southeast.origin.test", "lat": 1.29,
             "lon": 103.85, "redirect_host": "ap.api.test"}
        ],
        "rule": [{"countries": ["IN"], "origin": "ap-southeast"}],
        "residency": [{"name": "eu", "countries": ["DE", "FR", "IE", "NL"], "origins": ["eu-west"]}],
        "breaker": {"failures": 2, "window_ms": 10000, "cooldown_ms": 5000}
    })
}

fn router_from(value: serde_json::Value) -> Router {
    serde_json::from_value::<RoutingConfig>(value)
        .unwrap()
        .build()
        .unwrap()
}

fn router() -> Router {
    router_from(config())
}

/// Coordinates of the cities clients are in.
fn geo(country: &str, lat: f64, lon: f64) -> Geo {
    Geo::new(Some(country), None, None, Some((lat, lon)))
}

fn primary(router: &Router, geo: &Geo) -> (String, Reason) {
    let first = router.plan(geo).candidates[0];
    (router.origins[first.origin].name.clone(), first.reason)
}

#[test]
fn clients_land_on_the_expected_region_and_say_why() {
    let r = router();
    let cases = [
        (geo("US", 40.7, -74.0), "us-east", Reason::Nearest),
        (geo("BR", -23.4, -46.5), "us-east", Reason::Nearest),
        (geo("GB", 51.5, -0.1), "eu-west", Reason::Nearest),
        (geo("DE", 50.1, 8.7), "eu-west", Reason::Residency),
        (geo("JP", 35.7, 139.7), "ap-southeast", Reason::Nearest),
        (geo("AU", -33.9, 151.2), "ap-southeast", Reason::Nearest),
        // Closer to Dublin than to Singapore, but a rule says otherwise.
        (geo("IN", 28.6, 77.2), "ap-southeast", Reason::Rule),
        (Geo::default(), "us-east", Reason::Default),
    ];
    for (geo, region, reason) in cases {
        assert_eq!(primary(&r, &geo), (region.to_string(), reason), "{geo:?}");
    }
}

#[test]
fn failover_order_is_by_distance_and_residency_allows_no_other() {
    let r = router();
    let plan = r.plan(&geo("US", 40.7, -74.0));
    let names: Vec<_> = plan
        .candidates
        .iter()
        .map(|c| (r.origins[c.origin].name.as_str(), c.reason))
        .collect();
    assert_eq!(
        names,
        [
            ("us-east", Reason::Nearest),
            ("eu-west", Reason::Failover),
            ("ap-southeast", Reason::Failover)
        ]
    );
    let pinned = r.plan(&geo("DE", 50.1, 8.7));
    assert_eq!(pinned.candidates.len(), 1);
    assert_eq!(pinned.pin.map(|p| r.pin_name(p)), Some("eu"));
}

#[test]
fn bias_widens_an_origins_catchment_as_route_53_does() {
    // Reykjavik: Dublin ~1500 km, Ashburn ~4500 km.
    let reykjavik = geo("IS", 64.1, -21.9);
    assert_eq!(primary(&router(), &reykjavik).0, "eu-west");
    let mut biased = config();
    biased["origin"][0]["bias"] = json!(80);
    assert_eq!(primary(&router_from(biased), &reykjavik).0, "us-east");
}

#[test]
fn invalid_configurations_say_what_is_wrong() {
    let cases = [
        (json!({"origin": []}), "at least one"),
        (
            json!({"origin": [{"name": "a", "url": "/relative", "lat": 0, "lon": 0}]}),
            "absolute",
        ),
        (
            json!({"origin": [{"name": "a", "url": "https://a.test", "lat": 0, "lon": 0}],
                   "rule": [{"countries": ["DE"], "origin": "b"}]}),
            "not declared",
        ),
        (
            json!({"origin": [{"name": "a", "url": "https://a.test", "lat": 0, "lon": 0}],
                   "rule": [{"countries": ["Germany"], "origin": "a"}]}),
            "alpha-2",
        ),
        (
            json!({"origin": [{"name": "a", "url": "https://a.test", "lat": 0, "lon": 0, "bias": 100}]}),
            "bias",
        ),
        (
            json!({"origin": [{"name": "a", "url": "https://a.test", "lat": 0, "lon": 0}],
                   "redirect": {"status": 307}}),
            "redirect_host",
        ),
        (
            json!({"origin": [{"name": "a", "url": "https://a.test/v1", "lat": 0, "lon": 0}]}),
            "path is kept",
        ),
    ];
    for (value, expected) in cases {
        let error = serde_json::from_value::<RoutingConfig>(value)
            .unwrap()
            .build()
            .unwrap_err()
            .to_string();
        assert!(
            error.contains(expected),
            "{error} should mention {expected}"
        );
    }
}

/// Which origin authorities are down; everything else answers 200 with `public, max-age=60`.
fn origins(down: &'static [&'static str]) -> MemoryPlatform {
    let mut p = MemoryPlatform::new(move |request: &Request<Body>| {
        let host = request.uri().host().unwrap_or("");
        if down.iter().any(|d| host.starts_with(d)) {
            return Err(FetchError(format!("{host} refused the connection")));
        }
        Ok(Response::builder()
            .header("cache-control", "public, max-age=60, stale-if-error=600")
            .header("content-type", "application/json")
            .body(Body::from(
                format!("{{\"served_by\":\"{host}\"}}").into_bytes(),
            ))
            .unwrap())
    });
    let router = router();
    let health = HealthBoard::new(router.breaker);
    for origin in &router.origins {
        health.track(&origin.name);
    }
    p.health = Some(health);
    p
}

fn worker() -> EdgeWorker {
    EdgeWorker::new(CacheTier::new(crate::hops::TierId::edge("test"), true)).with_routing(router())
}

fn send(p: &MemoryPlatform, method: &str, path: &str, geo: Geo) -> Response<Body> {
    let mut request = Request::builder()
        .method(method)
        .uri(format!("https://api.test{path}"))
        .body(Body::from(b"{}".to_vec()))
        .unwrap();
    request.extensions_mut().insert(geo);
    now_or_never(worker().handle(p, request))
        .expect("in-memory ports never wait")
        .response
}

fn hosts_fetched(p: &MemoryPlatform) -> Vec<String> {
    p.fetched
        .borrow()
        .iter()
        .map(|r| r.uri().host().unwrap_or("").to_string())
        .collect()
}

#[test]
fn the_fetch_goes_to_the_chosen_origin_with_path_and_query_kept() {
    let p = origins(&[]);
    let response = send(&p, "GET", "/api/products/1?x=1", geo("JP", 35.7, 139.7));
    assert_eq!(response.status(), 200);
    assert_eq!(
        header(&response, ORIGIN_REGION_HEADER),
        "ap-southeast; reason=nearest"
    );
    assert!(header(&response, "server-timing").contains("route;desc=\"ap-southeast nearest\""));
    assert_eq!(
        p.fetched.borrow()[0].uri().to_string(),
        "https://ap-southeast.origin.test/api/products/1?x=1"
    );
}

#[test]
fn a_down_region_fails_over_to_the_next_nearest_and_its_circuit_opens() {
    let p = origins(&["us-east"]);
    let response = send(&p, "GET", "/a", geo("US", 40.7, -74.0));
    assert_eq!(response.status(), 200);
    assert_eq!(
        header(&response, ORIGIN_REGION_HEADER),
        "eu-west; reason=failover"
    );
    assert_eq!(
        hosts_fetched(&p),
        ["us-east.origin.test", "eu-west.origin.test"]
    );
    send(&p, "GET", "/b", geo("US", 40.7, -74.0));
    // Two failures opened us-east's circuit: the next request goes straight to eu-west.
    send(&p, "GET", "/c", geo("US", 40.7, -74.0));
    assert_eq!(hosts_fetched(&p).len(), 5);
    assert_eq!(hosts_fetched(&p)[4], "eu-west.origin.test");
    assert_eq!(
        p.health.as_ref().unwrap().snapshot()["us-east"].state,
        BreakerState::Open
    );
}

#[test]
fn the_region_is_used_again_after_a_successful_half_open_probe() {
    let p = origins(&[]);
    let health = p.health.as_ref().unwrap();
    for _ in 0..2 {
        health.record("us-east", p.now.get(), false);
    }
    let during = send(&p, "GET", "/a", geo("US", 40.7, -74.0));
    assert_eq!(
        header(&during, ORIGIN_REGION_HEADER),
        "eu-west; reason=failover"
    );
    p.advance(6);
    let probe = send(&p, "GET", "/b", geo("US", 40.7, -74.0));
    assert_eq!(
        header(&probe, ORIGIN_REGION_HEADER),
        "us-east; reason=nearest"
    );
    assert_eq!(health.snapshot()["us-east"].state, BreakerState::Closed);
}

#[test]
fn a_pinned_client_gets_503_with_retry_after_never_another_region() {
    let p = origins(&["eu-west"]);
    let response = send(&p, "GET", "/a", geo("DE", 50.1, 8.7));
    assert_eq!(response.status(), 503);
    assert!(header(&response, "retry-after").parse::<u64>().unwrap() >= 1);
    let body: serde_json::Value = serde_json::from_slice(response.body()).unwrap();
    assert_eq!(body["error"], "no_origin_available");
    assert!(body["message"].as_str().unwrap().contains("residency eu"));
    send(&p, "GET", "/b", geo("DE", 50.1, 8.7));
    // The circuit is open now: the 503 comes without a request, and says how long to wait.
    let refused = send(&p, "GET", "/c", geo("DE", 50.1, 8.7));
    assert_eq!(refused.status(), 503);
    assert_eq!(header(&refused, "retry-after"), "5");
    assert!(hosts_fetched(&p).iter().all(|h| h == "eu-west.origin.test"));
    assert_eq!(hosts_fetched(&p).len(), 2);
}

#[test]
fn a_pinned_client_gets_the_stale_copy_when_its_region_is_down() {
    let p = origins(&[]);
    assert_eq!(send(&p, "GET", "/a", geo("DE", 50.1, 8.7)).status(), 200);
    p.advance(120);
    p.script(|_| Err(FetchError("eu-west is down".into())));
    let response = send(&p, "GET", "/a", geo("DE", 50.1, 8.7));
    assert_eq!(response.status(), 200);
    assert!(header(&response, "cache-status").contains("stale-if-error"));
    assert!(hosts_fetched(&p).iter().all(|h| h == "eu-west.origin.test"));
}

#[test]
fn stale_if_error_is_preferred_to_a_farther_region() {
    let p = origins(&[]);
    send(&p, "GET", "/a", geo("US", 40.7, -74.0));
    p.advance(120);
    p.script(|request| {
        if request.uri().host() == Some("us-east.origin.test") {
            Err(FetchError("down".into()))
        } else {
            Ok(Response::new(Body::from(b"{}".to_vec())))
        }
    });
    let response = send(&p, "GET", "/a", geo("US", 40.7, -74.0));
    assert!(header(&response, "cache-status").contains("stale-if-error"));
    assert_eq!(
        hosts_fetched(&p),
        ["us-east.origin.test", "us-east.origin.test"]
    );
}

#[test]
fn post_is_never_replayed_at_another_origin() {
    let p = origins(&["us-east"]);
    let response = send(&p, "POST", "/api/orders", geo("US", 40.7, -74.0));
    assert_eq!(response.status(), 502);
    assert_eq!(hosts_fetched(&p), ["us-east.origin.test"]);
    // A POST that was never sent (open circuit) may go elsewhere: nothing is replayed.
    send(&p, "POST", "/api/orders", geo("US", 40.7, -74.0));
    p.script(|_| Ok(Response::new(Body::from(b"{}".to_vec()))));
    let response = send(&p, "POST", "/api/orders", geo("US", 40.7, -74.0));
    assert_eq!(
        header(&response, ORIGIN_REGION_HEADER),
        "eu-west; reason=failover"
    );
}

#[test]
fn redirect_mode_answers_at_the_edge_with_path_and_query() {
    let mut value = config();
    value["redirect"] = json!({"status": 302});
    let worker = EdgeWorker::new(CacheTier::new(crate::hops::TierId::edge("test"), true))
        .with_routing(router_from(value));
    let p = origins(&[]);
    let mut request = Request::get("https://api.test/api/products/7?fields=id")
        .body(Body::new())
        .unwrap();
    request.extensions_mut().insert(geo("GB", 51.5, -0.1));
    let response = now_or_never(worker.handle(&p, request)).unwrap().response;
    assert_eq!(response.status(), 302);
    assert_eq!(
        header(&response, "location"),
        "https://eu.api.test/api/products/7?fields=id"
    );
    assert_eq!(
        header(&response, ORIGIN_REGION_HEADER),
        "eu-west; reason=nearest"
    );
    assert_eq!(p.fetches(), 0);
}

proptest::proptest! {
    /// Any client: the plan lists each origin at most once, only allowed ones, and a pinned
    /// client's plan never leaves its pin.
    #[test]
    fn plans_respect_residency_and_never_repeat_an_origin(
        country in proptest::sample::select(vec!["US", "DE", "FR", "IN", "JP", "ZZ", "GB"]),
        lat in -90.0f64..=90.0,
        lon in -180.0f64..=180.0,
        located in proptest::bool::ANY,
    ) {
        let r = router();
        let geo = Geo::new(Some(country), None, None, located.then_some((lat, lon)));
        let plan = r.plan(&geo);
        let mut seen = std::collections::HashSet::new();
        for c in &plan.candidates {
            proptest::prop_assert!(seen.insert(c.origin));
        }
        if ["DE", "FR"].contains(&country) {
            proptest::prop_assert_eq!(plan.candidates.len(), 1);
            proptest::prop_assert_eq!(&r.origins[plan.candidates[0].origin].name, "eu-west");
        } else {
            proptest::prop_assert_eq!(plan.candidates.len(), 3);
        }
    }
}
