//! The cache policy in the tier's flow: TTL jitter and negative caching, at chosen instants.

use http::{Request, Response, StatusCode};

use super::*;
use crate::cache_policy::CachePolicyConfig;
use crate::ready::now_or_never;
use crate::testing::MemoryPlatform;
use crate::FetchError;

fn tier(policy: &str) -> CacheTier {
    CacheTier::new(crate::hops::TierId::edge("fra"), true)
        .with_rules(Arc::new(CachePolicyConfig::parse(policy).unwrap()))
}

fn run(tier: &CacheTier, p: &MemoryPlatform, url: &str) -> Outcome {
    let request = Request::builder().uri(url).body(Body::new()).unwrap();
    super::with_fields(
        tier,
        now_or_never(tier.handle(p, request)).expect("in-memory ports never wait"),
    )
}

fn header<'a>(outcome: &'a Outcome, name: &str) -> &'a str {
    outcome
        .response
        .headers()
        .get(name)
        .map_or("", |v| v.to_str().unwrap())
}

/// The `ttl=` of the last Cache-Status member.
fn ttl(outcome: &Outcome) -> i64 {
    let status = header(outcome, "cache-status");
    let member = status.rsplit(',').next().unwrap();
    member
        .split(';')
        .find_map(|p| p.trim().strip_prefix("ttl="))
        .unwrap()
        .parse()
        .unwrap()
}

/// An origin answering every URL with `status` and these fields.
fn answering(
    status: u16,
    fields: &'static [(&'static str, &'static str)],
) -> impl Fn(&Request<Body>) -> Result<Response<Body>, FetchError> {
    move |_| {
        let mut response = Response::builder().status(status);
        for (name, value) in fields {
            response = response.header(*name, *value);
        }
        Ok(response.body(Body::from(b"{}".to_vec())).unwrap())
    }
}

const JITTER: &str = r#"{"routes": [{"path": "/api/*", "ttl_jitter": 0.5}]}"#;

/// Which of 50 URLs, stored together with max-age=100, have expired 60 s later.
fn expired_after_60s(tier: &CacheTier, p: &MemoryPlatform) -> Vec<usize> {
    for i in 0..50 {
        let first = run(tier, p, &format!("https://shop.example/api/products/{i}"));
        assert_eq!(header(&first, "cf-cache-status"), "MISS");
    }
    p.advance(60);
    (0..50)
        .filter(|i| {
            let again = run(tier, p, &format!("https://shop.example/api/products/{i}"));
            match header(&again, "cf-cache-status") {
                "HIT" => {
                    // Truthful: Age is the real age, ttl what this cache will still give it.
                    assert_eq!(header(&again, "age"), "60");
                    let left = ttl(&again);
                    assert!((1..=40).contains(&left), "ttl={left}");
                    false
                }
                // Kept only while fresh (no validator, no stale window): gone once expired.
                "MISS" | "EXPIRED" => true,
                other => panic!("{other}"),
            }
        })
        .collect()
}

#[test]
fn jitter_spreads_expiries_and_never_lengthens() {
    let p = MemoryPlatform::new(answering(200, &[("cache-control", "max-age=100")]));
    let expired = expired_after_60s(&tier(JITTER), &p);
    // u ≥ 0.8 expires a copy by 60 s: about a fifth of them.
    assert!(
        (3..=20).contains(&expired.len()),
        "{} of 50 expired",
        expired.len()
    );
    // Without jitter every copy is fresh until 100 s.
    let plain = MemoryPlatform::new(answering(200, &[("cache-control", "max-age=100")]));
    assert!(expired_after_60s(
        &CacheTier::new(crate::hops::TierId::edge("fra"), true),
        &plain
    )
    .is_empty());
    // A route without jitter is not jittered either.
    let other = MemoryPlatform::new(answering(200, &[("cache-control", "max-age=100")]));
    let elsewhere = tier(r#"{"routes": [{"path": "/static/*", "ttl_jitter": 0.5}]}"#);
    assert!(expired_after_60s(&elsewhere, &other).is_empty());
}

#[test]
fn jitter_is_deterministic_for_a_seeded_platform() {
    let a = MemoryPlatform::new(answering(200, &[("cache-control", "max-age=100")]));
    let b = MemoryPlatform::new(answering(200, &[("cache-control", "max-age=100")]));
    let c = MemoryPlatform::new(answering(200, &[("cache-control", "max-age=100")]));
    c.random_state.set(99);
    let (a, b, c) = (
        expired_after_60s(&tier(JITTER), &a),
        expired_after_60s(&tier(JITTER), &b),
        expired_after_60s(&tier(JITTER), &c),
    );
    assert_eq!(a, b);
    assert_ne!(a, c);
}

#[test]
fn jitter_shortens_what_is_left_of_a_copy_that_arrives_with_an_age() {
    let p = MemoryPlatform::new(answering(
        200,
        &[("cache-control", "max-age=100"), ("age", "40")],
    ));
    let tier = tier(JITTER);
    for i in 0..20 {
        let url = format!("https://shop.example/api/products/{i}");
        run(&tier, &p, &url);
        let hit = run(&tier, &p, &url);
        assert_eq!(header(&hit, "cf-cache-status"), "HIT");
        assert_eq!(header(&hit, "age"), "40");
        // 60 s were left; jitter 0.5 leaves 30..=60 of them, never more.
        assert!((30..=60).contains(&ttl(&hit)), "{}", ttl(&hit));
    }
}

#[test]
fn a_revalidated_copy_is_jittered_again() {
    let p = MemoryPlatform::new(|request: &Request<Body>| {
        let status = if request.headers().contains_key("if-none-match") {
            304
        } else {
            200
        };
        Ok(Response::builder()
            .status(status)
            .header("cache-control", "max-age=100")
            .header("etag", "\"v1\"")
            .body(Body::new())
            .unwrap())
    });
    let tier = tier(JITTER);
    let url = "https://shop.example/api/products/1";
    run(&tier, &p, url);
    p.advance(100);
    let revalidated = run(&tier, &p, url);
    assert_eq!(header(&revalidated, "cf-cache-status"), "REVALIDATED");
    let left = ttl(&revalidated);
    assert!((50..=100).contains(&left), "{left}");
    p.advance(1);
    let hit = run(&tier, &p, url);
    assert_eq!(ttl(&hit), left - 1);
}

const NEGATIVE: &str = r#"{"routes": [{"path": "/api/*", "negative_ttl_secs": 10}]}"#;

#[test]
fn a_404_without_freshness_is_kept_for_the_negative_ttl() {
    for status in [404, 410] {
        let p = MemoryPlatform::new(answering(status, &[]));
        let tier = tier(NEGATIVE);
        let url = "https://shop.example/api/products/99999";
        let first = run(&tier, &p, url);
        assert_eq!(header(&first, "cf-cache-status"), "MISS");
        assert_eq!(
            header(&first, "cache-status"),
            format!("edge-fra; fwd=uri-miss; fwd-status={status}; stored; detail=negative")
        );
        assert!(!first.negative());
        p.advance(4);
        let second = run(&tier, &p, url);
        assert_eq!(second.response.status().as_u16(), status);
        assert_eq!(header(&second, "cf-cache-status"), "HIT");
        assert_eq!(header(&second, "age"), "4");
        assert_eq!(
            header(&second, "cache-status"),
            "edge-fra; hit; ttl=6; detail=negative"
        );
        assert!(second.negative());
        // What the client receives is the origin's: no Cache-Control was added.
        assert_eq!(header(&second, "cache-control"), "");
        assert_eq!(p.fetches(), 1);
        p.advance(6);
        let third = run(&tier, &p, url);
        // Kept only as long as it is fresh: the slot is gone.
        assert_eq!(header(&third, "cf-cache-status"), "MISS");
        assert_eq!(p.fetches(), 2);
    }
}

#[test]
fn without_a_policy_a_404_without_freshness_is_not_kept() {
    let p = MemoryPlatform::new(answering(404, &[]));
    let url = "https://shop.example/api/products/99999";
    let first = run(
        &CacheTier::new(crate::hops::TierId::edge("fra"), true),
        &p,
        url,
    );
    assert_eq!(header(&first, "cf-cache-status"), "BYPASS");
    // A 404 on a route the policy does not name is not kept either.
    let other = tier(r#"{"routes": [{"path": "/static/*", "negative_ttl_secs": 10}]}"#);
    assert_eq!(header(&run(&other, &p, url), "cf-cache-status"), "BYPASS");
}

#[test]
fn negative_caching_never_stores_what_may_not_be_stored() {
    type Fields = &'static [(&'static str, &'static str)];
    let cases: [(Fields, &str); 3] = [
        (&[("cache-control", "no-store")], "not-storable"),
        (&[("cache-control", "private")], "not-storable"),
        (&[("set-cookie", "a=1")], "set-cookie"),
    ];
    for (fields, detail) in cases {
        let p = MemoryPlatform::new(answering(404, fields));
        let outcome = run(&tier(NEGATIVE), &p, "https://shop.example/api/x");
        assert_eq!(header(&outcome, "cf-cache-status"), "BYPASS", "{fields:?}");
        assert!(
            header(&outcome, "cache-status").ends_with(detail),
            "{fields:?}"
        );
    }
    // A request with Authorization: the response does not say it may be shared.
    let p = MemoryPlatform::new(answering(404, &[]));
    let signed = Request::builder()
        .uri("https://shop.example/api/x")
        .header("authorization", "Bearer t")
        .body(Body::new())
        .unwrap();
    let t = tier(NEGATIVE);
    let outcome = super::with_fields(&t, now_or_never(t.handle(&p, signed)).unwrap());
    assert!(header(&outcome, "cache-status").ends_with("detail=authorization"));
}

#[test]
fn an_error_with_freshness_of_its_own_keeps_it() {
    let p = MemoryPlatform::new(answering(404, &[("cache-control", "max-age=60")]));
    let tier = tier(NEGATIVE);
    let url = "https://shop.example/api/x";
    let first = run(&tier, &p, url);
    assert_eq!(
        header(&first, "cache-status"),
        "edge-fra; fwd=uri-miss; fwd-status=404; stored"
    );
    p.advance(30);
    let hit = run(&tier, &p, url);
    assert_eq!(header(&hit, "cache-status"), "edge-fra; hit; ttl=30");
    assert!(!hit.negative());
    // `no-cache` asks for validation on every use: no negative lifetime overrides it.
    let p = MemoryPlatform::new(answering(404, &[("cache-control", "no-cache")]));
    assert_eq!(header(&run(&tier, &p, url), "cf-cache-status"), "BYPASS");
}

#[test]
fn server_errors_only_when_opted_in() {
    let url = "https://shop.example/api/x";
    let p = MemoryPlatform::new(answering(503, &[]));
    assert_eq!(
        header(&run(&tier(NEGATIVE), &p, url), "cf-cache-status"),
        "BYPASS"
    );
    let opted =
        tier(r#"{"routes": [{"path": "/api/*", "negative_ttl_secs": 5, "negative_5xx": true}]}"#);
    let p = MemoryPlatform::new(answering(503, &[]));
    run(&opted, &p, url);
    let hit = run(&opted, &p, url);
    assert_eq!(hit.response.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(header(&hit, "cf-cache-status"), "HIT");
    assert!(hit.negative());
    assert_eq!(p.fetches(), 1);
    // A 5xx that forbids storing is still not stored.
    let p = MemoryPlatform::new(answering(502, &[("cache-control", "no-store")]));
    assert_eq!(header(&run(&opted, &p, url), "cf-cache-status"), "BYPASS");
}
