//! The tier's flow against in-memory ports and a scripted upstream, at chosen instants.

use http::{Request, Response};

use super::*;
use crate::ready::now_or_never;
use crate::testing::MemoryPlatform;
use crate::FetchError;

fn origin(
    cache_control: &'static str,
    body: &'static str,
) -> impl Fn(&Request<Body>) -> Result<Response<Body>, FetchError> {
    move |request| {
        if request
            .headers()
            .get("if-none-match")
            .is_some_and(|v| v == "\"v1\"")
        {
            return Ok(Response::builder()
                .status(304)
                .header("etag", "\"v1\"")
                .header("cache-control", cache_control)
                .body(Body::new())
                .unwrap());
        }
        Ok(Response::builder()
            .header("cache-control", cache_control)
            .header("etag", "\"v1\"")
            .header("content-type", "application/json")
            .body(Body::from(body.as_bytes().to_vec()))
            .unwrap())
    }
}

fn get(url: &str) -> Request<Body> {
    Request::builder()
        .uri(url)
        .header("host", "ignored.example")
        .body(Body::new())
        .unwrap()
}

/// An origin whose body is the request's Accept-Language, varying on it.
fn by_language(
    cache_control: &'static str,
) -> impl Fn(&Request<Body>) -> Result<Response<Body>, FetchError> {
    move |request| {
        let lang = request
            .headers()
            .get("accept-language")
            .map(|v| v.to_str().unwrap().to_string())
            .unwrap_or_default();
        Ok(Response::builder()
            .header("cache-control", cache_control)
            .header("vary", "Accept-Language")
            .body(Body::from(lang.into_bytes()))
            .unwrap())
    }
}

fn with_language(url: &str, lang: &str) -> Request<Body> {
    let mut request = get(url);
    request
        .headers_mut()
        .insert("accept-language", lang.parse().unwrap());
    request
}

fn run(tier: &CacheTier, p: &MemoryPlatform, request: Request<Body>) -> Outcome {
    super::with_fields(
        tier,
        now_or_never(tier.handle(p, request)).expect("in-memory ports never wait"),
    )
}

fn cf(outcome: &Outcome) -> &str {
    outcome.response.headers()["cf-cache-status"]
        .to_str()
        .unwrap()
}

fn edge() -> CacheTier {
    CacheTier::new(crate::hops::TierId::edge("fra"), true)
}

/// RFC 9211 §2.8: a fetched response the tier did not store says why in `detail`.
#[test]
fn rfc9211_2_8_an_unstored_response_says_why() {
    for (cache_control, detail) in [
        ("no-store", "not-storable"),
        ("private, max-age=60", "not-storable"),
    ] {
        let p = MemoryPlatform::new(origin(cache_control, "{}"));
        let outcome = run(&edge(), &p, get("https://shop.example/api/products/1"));
        assert_eq!(cf(&outcome), "BYPASS", "{cache_control}");
        assert_eq!(
            outcome.response.headers()["cache-status"],
            format!("edge-fra; fwd=uri-miss; fwd-status=200; detail={detail}").as_str(),
            "{cache_control}"
        );
    }
}

#[test]
fn miss_then_hit_fetches_once() {
    let p = MemoryPlatform::new(origin("max-age=60", "{\"id\":1}"));
    let first = run(&edge(), &p, get("https://shop.example/api/products/1"));
    assert_eq!(cf(&first), "MISS");
    assert_eq!(
        first.response.headers()["cache-status"],
        "edge-fra; fwd=uri-miss; fwd-status=200; stored"
    );
    p.advance(10);
    let second = run(&edge(), &p, get("https://shop.example/api/products/1"));
    assert_eq!(cf(&second), "HIT");
    assert_eq!(second.response.headers()["age"], "10");
    assert_eq!(
        second.response.headers()["cache-status"],
        "edge-fra; hit; ttl=50"
    );
    assert_eq!(second.response.body(), b"{\"id\":1}");
    assert_eq!(p.fetches(), 1);
}

#[test]
fn rfc5861_3_stale_while_revalidate_serves_stale_and_defers_one_refresh() {
    let p = MemoryPlatform::new(origin("max-age=60, stale-while-revalidate=30", "old"));
    run(&edge(), &p, get("https://shop.example/a"));
    p.advance(70);
    p.script(|_| {
        Ok(Response::builder()
            .header("cache-control", "max-age=60")
            .body(Body::from(b"new".to_vec()))
            .unwrap())
    });
    let stale = run(&edge(), &p, get("https://shop.example/a"));
    assert_eq!(cf(&stale), "UPDATING");
    assert_eq!(stale.response.body(), b"old");
    assert_eq!(
        stale.response.headers()["cache-status"],
        "edge-fra; hit; ttl=-10; detail=stale-while-revalidate"
    );
    assert_eq!(p.fetches(), 1, "the stale answer did not wait for upstream");
    assert_eq!(stale.deferred.len(), 1);
    for task in stale.deferred {
        now_or_never(edge().run_deferred(&p, task)).unwrap();
    }
    assert_eq!(p.fetches(), 2);
    assert_eq!(
        p.fetched.borrow()[1].headers()["if-none-match"],
        "\"v1\"",
        "refresh is conditional"
    );
    assert_eq!(
        p.fetched.borrow()[1].headers()["cache-control"],
        "min-fresh=0",
        "and asks for a fresh answer"
    );
    let fresh = run(&edge(), &p, get("https://shop.example/a"));
    assert_eq!(cf(&fresh), "HIT");
    assert_eq!(fresh.response.body(), b"new");
}

#[test]
fn rfc5861_4_stale_if_error_on_5xx_and_on_connection_failure() {
    let p = MemoryPlatform::new(origin("max-age=60, stale-if-error=600", "kept"));
    run(&edge(), &p, get("https://shop.example/a"));
    p.advance(120);
    p.script(|_| {
        Ok(Response::builder()
            .status(503)
            .body(Body::from(b"down".to_vec()))
            .unwrap())
    });
    let served = run(&edge(), &p, get("https://shop.example/a"));
    assert_eq!(cf(&served), "STALE");
    assert_eq!(served.response.status(), 200);
    assert_eq!(served.response.body(), b"kept");
    assert_eq!(
        served.response.headers()["cache-status"],
        "edge-fra; fwd=stale; fwd-status=503; ttl=-60; detail=stale-if-error"
    );
    p.script(|_| Err(FetchError("connection refused".into())));
    let served = run(&edge(), &p, get("https://shop.example/a"));
    assert_eq!(cf(&served), "STALE");
    assert_eq!(served.response.body(), b"kept");
    p.advance(600);
    let failed = run(&edge(), &p, get("https://shop.example/a"));
    assert_eq!(
        failed.response.status(),
        502,
        "past the stale-if-error window the error shows"
    );
}

#[test]
fn rfc9111_4_2_4_must_revalidate_passes_the_error_through() {
    let p = MemoryPlatform::new(origin(
        "max-age=60, must-revalidate, stale-if-error=600",
        "x",
    ));
    run(&edge(), &p, get("https://shop.example/a"));
    p.advance(61);
    p.script(|_| {
        Ok(Response::builder()
            .status(500)
            .body(Body::from(b"boom".to_vec()))
            .unwrap())
    });
    let served = run(&edge(), &p, get("https://shop.example/a"));
    assert_eq!(served.response.status(), 500);
    assert_eq!(cf(&served), "EXPIRED");
}

#[test]
fn rfc9111_4_3_4_a_304_refreshes_the_stored_headers() {
    let p = MemoryPlatform::new(origin("max-age=60", "body"));
    run(&edge(), &p, get("https://shop.example/a"));
    p.advance(61);
    p.script(|request| {
        assert_eq!(request.headers()["if-none-match"], "\"v1\"");
        Ok(Response::builder()
            .status(304)
            .header("etag", "\"v1\"")
            .header("cache-control", "max-age=120")
            .header("x-new", "1")
            .body(Body::new())
            .unwrap())
    });
    let revalidated = run(&edge(), &p, get("https://shop.example/a"));
    assert_eq!(cf(&revalidated), "REVALIDATED");
    assert_eq!(revalidated.response.status(), 200);
    assert_eq!(revalidated.response.body(), b"body");
    assert_eq!(revalidated.response.headers()["x-new"], "1");
    assert_eq!(revalidated.response.headers()["content-length"], "4");
    p.advance(100);
    let hit = run(&edge(), &p, get("https://shop.example/a"));
    assert_eq!(cf(&hit), "HIT", "the 304's max-age=120 now applies");
    assert_eq!(p.fetches(), 2);
}

/// RFC 9111 §4.3.3: a 304 that answers the tier's own conditional request validates the
/// stored response it asked about, also when the 304 names no validator (as Varnish and
/// nginx take it): one upstream request, the stored body, the 304's fields merged.
#[test]
fn rfc9111_4_3_3_a_304_without_validators_validates_what_was_asked_about() {
    /// (case, the stored response's validators, the conditional field the tier must send)
    type Case<'a> = (&'a str, &'a [(&'a str, &'a str)], &'a str);
    let cases: &[Case] = &[
        ("etag", &[("etag", "\"v1\"")], "if-none-match"),
        (
            "last-modified",
            &[("last-modified", "Sun, 01 Nov 2026 00:00:00 GMT")],
            "if-modified-since",
        ),
        (
            "both",
            &[
                ("etag", "\"v1\""),
                ("last-modified", "Sun, 01 Nov 2026 00:00:00 GMT"),
            ],
            "if-none-match",
        ),
    ];
    for (validators, fields, conditional) in cases {
        for cache_control in ["max-age=60", "max-age=60, must-revalidate", "no-cache"] {
            let p = MemoryPlatform::new(move |_: &Request<Body>| {
                let mut response = Response::builder().header("cache-control", cache_control);
                for (name, value) in *fields {
                    response = response.header(*name, *value);
                }
                Ok(response.body(Body::from(b"body".to_vec())).unwrap())
            });
            run(&edge(), &p, get("https://shop.example/a"));
            p.advance(61);
            let conditional = *conditional;
            p.script(move |request| {
                assert!(request.headers().contains_key(conditional), "{request:?}");
                Ok(Response::builder()
                    .status(304)
                    .header("content-type", "application/json")
                    .header("x-new", "1")
                    .body(Body::new())
                    .unwrap())
            });
            let revalidated = run(&edge(), &p, get("https://shop.example/a"));
            let case = format!("{validators}, {cache_control}");
            assert_eq!(cf(&revalidated), "REVALIDATED", "{case}");
            assert_eq!(revalidated.response.status(), 200, "{case}");
            assert_eq!(revalidated.response.body(), b"body", "{case}");
            assert_eq!(revalidated.response.headers()["x-new"], "1", "{case}");
            for (name, value) in *fields {
                assert_eq!(revalidated.response.headers()[*name], *value, "{case}");
            }
            assert_eq!(p.fetches(), 2, "{case}: one upstream request to validate");
        }
    }
}

/// A 304 that names another entity tag does not select the stored response (RFC 9111
/// §4.3.4): the tier fetches it whole.
#[test]
fn rfc9111_4_3_4_a_304_naming_another_validator_selects_nothing() {
    let p = MemoryPlatform::new(origin("max-age=60", "body"));
    run(&edge(), &p, get("https://shop.example/a"));
    p.advance(61);
    p.script(|request| {
        if request.headers().contains_key("if-none-match") {
            return Ok(Response::builder()
                .status(304)
                .header("etag", "\"v2\"")
                .body(Body::new())
                .unwrap());
        }
        Ok(Response::builder()
            .header("cache-control", "max-age=60")
            .header("etag", "\"v2\"")
            .body(Body::from(b"new".to_vec()))
            .unwrap())
    });
    let served = run(&edge(), &p, get("https://shop.example/a"));
    assert_eq!(served.response.body(), b"new");
    assert_eq!(p.fetches(), 3);
}

#[test]
fn rfc9111_3_not_shared_no_store_private_authorization_set_cookie() {
    type Fields = &'static [(&'static str, &'static str)];
    let cases: &[(&str, Fields, Fields)] = &[
        (
            "no-store",
            &[("cache-control", "no-store, max-age=60")],
            &[],
        ),
        ("private", &[("cache-control", "private, max-age=60")], &[]),
        (
            "authorization",
            &[("cache-control", "max-age=60")],
            &[("authorization", "Bearer a")],
        ),
        (
            "set-cookie",
            &[("cache-control", "max-age=60"), ("set-cookie", "s=1")],
            &[],
        ),
    ];
    for (name, response_headers, request_headers) in cases {
        let response_headers: Vec<(String, String)> = response_headers
            .iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect();
        let p = MemoryPlatform::new(move |_| {
            let mut r = Response::builder();
            for (n, v) in &response_headers {
                r = r.header(n, v);
            }
            Ok(r.body(Body::from(b"secret".to_vec())).unwrap())
        });
        for _ in 0..2 {
            let mut request = get("https://shop.example/me");
            for (n, v) in request_headers.iter() {
                request.headers_mut().insert(*n, v.parse().unwrap());
            }
            let outcome = run(&edge(), &p, request);
            assert_eq!(cf(&outcome), "BYPASS", "{name}");
        }
        assert_eq!(p.fetches(), 2, "{name}: never served from cache");
    }
}

#[test]
fn rfc9111_3_5_authorization_with_public_is_shared() {
    let p = MemoryPlatform::new(origin("public, max-age=60", "shared"));
    let mut request = get("https://shop.example/a");
    request
        .headers_mut()
        .insert("authorization", "Bearer a".parse().unwrap());
    run(&edge(), &p, request);
    assert_eq!(cf(&run(&edge(), &p, get("https://shop.example/a"))), "HIT");
}

#[test]
fn rfc9111_4_1_vary_selects_variants_and_vary_star_is_never_reused() {
    let p = MemoryPlatform::new(by_language("max-age=60"));
    let with = |lang: &str| with_language("https://shop.example/v", lang);
    assert_eq!(cf(&run(&edge(), &p, with("de"))), "MISS");
    let fr = run(&edge(), &p, with("fr"));
    assert_eq!(cf(&fr), "MISS");
    assert!(fr.response.headers()["cache-status"]
        .to_str()
        .unwrap()
        .contains("fwd=vary-miss"));
    let de = run(&edge(), &p, with("de"));
    assert_eq!(
        (cf(&de), de.response.body().as_slice()),
        ("HIT", b"de".as_slice())
    );
    let fr = run(&edge(), &p, with("fr"));
    assert_eq!(
        (cf(&fr), fr.response.body().as_slice()),
        ("HIT", b"fr".as_slice())
    );

    let star = MemoryPlatform::new(|_| {
        Ok(Response::builder()
            .header("cache-control", "max-age=60")
            .header("vary", "*")
            .body(Body::new())
            .unwrap())
    });
    run(&edge(), &star, get("https://shop.example/s"));
    assert_eq!(
        cf(&run(&edge(), &star, get("https://shop.example/s"))),
        "BYPASS"
    );
}

/// Issue 26: a request whose Accept-Language differs from the stored one only in whitespace,
/// case, weight spelling and order across weights selects the stored variant — fresh, and
/// stale within stale-while-revalidate (where `http-cache-semantics` compares as sent).
#[test]
fn rfc9111_4_1_vary_matches_normalised_values_fresh_and_stale() {
    let p = MemoryPlatform::new(by_language("max-age=2, stale-while-revalidate=60"));
    let with = |lang: &str| with_language("https://shop.example/n", lang);
    assert_eq!(cf(&run(&edge(), &p, with("en-US, fr;q=0.5"))), "MISS");
    let fresh = run(&edge(), &p, with("fr;Q=0.50,EN-us"));
    assert_eq!(
        (cf(&fresh), fresh.response.body().as_slice()),
        ("HIT", b"en-US, fr;q=0.5".as_slice())
    );
    p.advance(5);
    let stale = run(&edge(), &p, with("en-US ,fr;q=0.500"));
    assert_eq!(cf(&stale), "UPDATING", "served stale, not a vary miss");
    assert_eq!(p.fetches(), 1, "the stale answer waits for no fetch");
    assert!(
        !stale.deferred.is_empty(),
        "and leaves a background refresh"
    );
    // Equal weights in another order are another variant.
    assert_eq!(cf(&run(&edge(), &p, with("fr, en-US"))), "MISS");
}

#[test]
fn head_is_answered_from_the_get_entry_without_a_body() {
    let p = MemoryPlatform::new(origin("max-age=60", "12345"));
    let mut head = get("https://shop.example/h");
    *head.method_mut() = Method::HEAD;
    let first = run(&edge(), &p, head);
    assert!(first.response.body().is_empty());
    assert_eq!(first.response.headers()["content-length"], "5");
    assert_eq!(p.fetched.borrow()[0].method(), Method::GET);
    let get = run(&edge(), &p, get("https://shop.example/h"));
    assert_eq!(
        (cf(&get), get.response.body().as_slice()),
        ("HIT", b"12345".as_slice())
    );
}

#[test]
fn unsafe_methods_are_forwarded_as_dynamic() {
    let p = MemoryPlatform::new(origin("max-age=60", "ok"));
    let mut post = get("https://shop.example/a");
    *post.method_mut() = Method::POST;
    let outcome = run(&edge(), &p, post);
    assert_eq!(cf(&outcome), "DYNAMIC");
    assert_eq!(
        outcome.response.headers()["cache-status"],
        "edge-fra; fwd=method; fwd-status=200"
    );
}

#[test]
fn query_order_shares_the_entry_and_upstream_cache_status_is_kept_on_a_miss() {
    let p = MemoryPlatform::new(|_| {
        Ok(Response::builder()
            .header("cache-control", "max-age=60")
            .header("cache-status", "regional-eu; hit; ttl=300")
            .header("server-timing", "regional;dur=80")
            .body(Body::new())
            .unwrap())
    });
    let miss = run(&edge(), &p, get("https://shop.example/q?b=2&a=1"));
    assert_eq!(
        miss.response.headers()["cache-status"],
        "regional-eu; hit; ttl=300, edge-fra; fwd=uri-miss; fwd-status=200; stored"
    );
    let hit = run(&edge(), &p, get("https://shop.example/q?a=1&b=2"));
    assert_eq!(
        hit.response.headers()["cache-status"],
        "edge-fra; hit; ttl=60"
    );
    assert!(
        hit.response.headers().get("server-timing").is_none(),
        "per-hop reports are not replayed from cache"
    );
}

#[test]
fn upstream_failure_on_a_miss_is_a_json_502() {
    let p = MemoryPlatform::new(|_| Err(FetchError("refused".into())));
    let outcome = run(&edge(), &p, get("https://shop.example/a"));
    assert_eq!(outcome.response.status(), 502);
    assert_eq!(
        outcome.response.headers()["content-type"],
        "application/json"
    );
    let body: serde_json::Value = serde_json::from_slice(outcome.response.body()).unwrap();
    assert_eq!(body["error"], "upstream_unavailable");
}

#[test]
fn a_request_that_waited_on_the_lock_is_served_what_the_holder_stored() {
    let p = MemoryPlatform::new(origin("max-age=60", "once"));
    // The "holder": fills the cache.
    run(&edge(), &p, get("https://shop.example/c"));
    // Expire it so the next request misses and goes for the lock...
    p.advance(1000);
    p.script(|_| panic!("a waiter must not fetch when the holder stored a fresh copy"));
    // ...while another request holds it and stores a fresh copy meanwhile.
    let fresh = StoredResponse::capture(
        &HeaderMap::new(),
        &Response::builder()
            .header("cache-control", "max-age=60")
            .body(Body::from(b"fresh".to_vec()))
            .unwrap(),
        p.now(),
    );
    *p.holder_stores.borrow_mut() =
        Some(("https://shop.example/c".into(), CacheEntry::Response(fresh)));
    p.lock_is_held.set(true);
    let waited = run(&edge(), &p, get("https://shop.example/c?"));
    assert_eq!(cf(&waited), "HIT");
    assert!(waited.collapsed());
    assert_eq!(
        waited.response.headers()["cache-status"],
        "edge-fra; hit; ttl=60; collapsed"
    );
    assert_eq!(waited.response.body(), b"fresh");
}

#[test]
fn a_waiter_fetches_itself_when_the_holder_stored_nothing() {
    let p = MemoryPlatform::new(|_| {
        Ok(Response::builder()
            .header("cache-control", "no-store")
            .body(Body::from(b"x".to_vec()))
            .unwrap())
    });
    p.lock_is_held.set(true);
    let outcome = run(&edge(), &p, get("https://shop.example/n"));
    assert_eq!(cf(&outcome), "BYPASS");
    assert_eq!(p.fetches(), 1);
}

/// An origin answering every request with these header fields and a body naming the method.
fn origin_with(
    fields: &'static [(&'static str, &'static str)],
) -> impl Fn(&Request<Body>) -> Result<Response<Body>, FetchError> {
    move |request| {
        let mut response = Response::builder();
        for (name, value) in fields {
            response = response.header(*name, *value);
        }
        Ok(response
            .body(Body::from(request.method().as_str().as_bytes().to_vec()))
            .unwrap())
    }
}

#[test]
fn rfc9213_cdn_cache_control_overrides_cache_control_and_expires_for_the_cache_only() {
    let p = MemoryPlatform::new(origin_with(&[
        ("cache-control", "no-store"),
        ("expires", "Thu, 01 Jan 1970 00:00:00 GMT"),
        ("cdn-cache-control", "max-age=60"),
    ]));
    let first = run(&edge(), &p, get("https://shop.example/a"));
    assert_eq!(cf(&first), "MISS");
    p.advance(30);
    let second = run(&edge(), &p, get("https://shop.example/a"));
    assert_eq!(cf(&second), "HIT");
    // Browsers downstream still get the origin's own instructions.
    assert_eq!(second.response.headers()["cache-control"], "no-store");
    assert_eq!(second.response.headers()["cdn-cache-control"], "max-age=60");
    p.advance(31);
    assert_eq!(cf(&run(&edge(), &p, get("https://shop.example/a"))), "MISS");
    assert_eq!(p.fetches(), 2);
}

#[test]
fn rfc9213_cdn_cache_control_no_store_wins_and_an_invalid_field_is_ignored() {
    let p = MemoryPlatform::new(origin_with(&[
        ("cache-control", "max-age=60"),
        ("cdn-cache-control", "no-store"),
    ]));
    run(&edge(), &p, get("https://shop.example/a"));
    assert_eq!(
        cf(&run(&edge(), &p, get("https://shop.example/a"))),
        "BYPASS"
    );

    let p = MemoryPlatform::new(origin_with(&[
        ("cache-control", "max-age=60"),
        ("cdn-cache-control", "max-age=\"oops"),
    ]));
    run(&edge(), &p, get("https://shop.example/a"));
    assert_eq!(cf(&run(&edge(), &p, get("https://shop.example/a"))), "HIT");
}

#[test]
fn rfc9213_stale_windows_come_from_cdn_cache_control() {
    let p = MemoryPlatform::new(origin_with(&[
        ("cache-control", "max-age=600"),
        ("cdn-cache-control", "max-age=10, stale-while-revalidate=30"),
    ]));
    run(&edge(), &p, get("https://shop.example/a"));
    p.advance(20);
    let stale = run(&edge(), &p, get("https://shop.example/a"));
    assert_eq!(cf(&stale), "UPDATING");
    assert_eq!(stale.deferred.len(), 1);
}

fn request(method: Method, url: &str) -> Request<Body> {
    let mut request = get(url);
    *request.method_mut() = method;
    request
}

#[test]
fn rfc9111_4_4_unsafe_methods_invalidate_the_target_and_same_origin_locations() {
    let p = MemoryPlatform::new(origin_with(&[
        ("cache-control", "max-age=600"),
        ("location", "/items/2"),
        ("content-location", "https://shop.example/items/3?x=1"),
    ]));
    for path in ["/items/1", "/items/2", "/items/3?x=1", "/items/4"] {
        run(&edge(), &p, get(&format!("https://shop.example{path}")));
    }
    let post = run(
        &edge(),
        &p,
        request(Method::POST, "https://shop.example/items/1"),
    );
    assert_eq!(cf(&post), "DYNAMIC");
    for (path, expected) in [
        ("/items/1", "MISS"),
        ("/items/2", "MISS"),
        ("/items/3?x=1", "MISS"),
        ("/items/4", "HIT"),
    ] {
        let outcome = run(&edge(), &p, get(&format!("https://shop.example{path}")));
        assert_eq!(cf(&outcome), expected, "{path}");
    }
}

#[test]
fn rfc9111_4_4_failed_unsafe_requests_and_other_origins_invalidate_nothing() {
    let p = MemoryPlatform::new(origin_with(&[("cache-control", "max-age=600")]));
    run(&edge(), &p, get("https://shop.example/a"));
    run(&edge(), &p, get("https://shop.example/b"));
    p.script(|_| {
        Ok(Response::builder()
            .status(500)
            .body(Body::from(b"no".to_vec()))
            .unwrap())
    });
    run(
        &edge(),
        &p,
        request(Method::DELETE, "https://shop.example/a"),
    );
    p.script(|_| {
        Ok(Response::builder()
            .status(201)
            .header("location", "https://other.example/b")
            .header("content-location", "//shop.example/b")
            .body(Body::new())
            .unwrap())
    });
    run(&edge(), &p, request(Method::PUT, "https://shop.example/c"));
    assert_eq!(cf(&run(&edge(), &p, get("https://shop.example/a"))), "HIT");
    assert_eq!(cf(&run(&edge(), &p, get("https://shop.example/b"))), "HIT");
}

#[test]
fn rfc9111_4_4_invalidation_reaches_every_vary_variant() {
    let p = MemoryPlatform::new(by_language("max-age=600"));
    let with_lang = |lang: &str| with_language("https://shop.example/a", lang);
    run(&edge(), &p, with_lang("en"));
    run(&edge(), &p, with_lang("de"));
    assert_eq!(cf(&run(&edge(), &p, with_lang("de"))), "HIT");
    run(&edge(), &p, request(Method::PUT, "https://shop.example/a"));
    p.advance(1);
    // A new English variant is stored under a new rule; the old German one must not be found.
    assert_eq!(cf(&run(&edge(), &p, with_lang("en"))), "MISS");
    assert_eq!(cf(&run(&edge(), &p, with_lang("de"))), "MISS");
    assert_eq!(cf(&run(&edge(), &p, with_lang("de"))), "HIT");
    assert_eq!(cf(&run(&edge(), &p, with_lang("en"))), "HIT");
}

#[test]
fn set_cookie_is_never_shared_even_public_with_a_validator_or_on_a_304() {
    let p = MemoryPlatform::new(origin_with(&[
        ("cache-control", "public, max-age=60"),
        ("etag", "\"v1\""),
        ("set-cookie", "session=alice"),
    ]));
    run(&edge(), &p, get("https://shop.example/a"));
    let second = run(&edge(), &p, get("https://shop.example/a"));
    assert_eq!(cf(&second), "BYPASS");
    assert_eq!(p.fetches(), 2);

    // A stored response whose validation answer sets a cookie: that client gets it, the
    // stored copy stays cookie-free.
    let p = MemoryPlatform::new(origin_with(&[
        ("cache-control", "max-age=1"),
        ("etag", "\"v1\""),
    ]));
    run(&edge(), &p, get("https://shop.example/a"));
    p.advance(5);
    p.script(|_| {
        Ok(Response::builder()
            .status(304)
            .header("etag", "\"v1\"")
            .header("cache-control", "max-age=60")
            .header("set-cookie", "session=bob")
            .body(Body::new())
            .unwrap())
    });
    let bob = run(&edge(), &p, get("https://shop.example/a"));
    assert_eq!(bob.response.headers()["set-cookie"], "session=bob");
    p.script(origin_with(&[
        ("cache-control", "max-age=60"),
        ("etag", "\"v1\""),
    ]));
    let next = run(&edge(), &p, get("https://shop.example/a"));
    assert!(next.response.headers().get("set-cookie").is_none());
}

#[test]
fn unkeyed_override_headers_never_reach_the_origin_on_cacheable_requests() {
    let p = MemoryPlatform::new(origin_with(&[("cache-control", "max-age=60")]));
    let mut request = get("https://shop.example/a");
    for name in UNKEYED_OVERRIDES {
        request
            .headers_mut()
            .insert(*name, "evil.example".parse().unwrap());
    }
    run(&edge(), &p, request);
    let fetched = &p.fetched.borrow()[0];
    for name in UNKEYED_OVERRIDES {
        assert!(
            fetched.headers().get(*name).is_none(),
            "{name} was forwarded"
        );
    }
}

/// Freshness fields a strict reader finds: each response, fetched once, must not be reused
/// from the cache a second later (the second request reaches the origin again).
#[test]
fn rfc9111_freshness_fields_read_strictly() {
    type Fields = &'static [(&'static str, &'static str)];
    let cases: &[(&str, Fields)] = &[
        (
            "§5.2: directive names are case-insensitive",
            &[("cache-control", "max-age=10000, No-CaChE")],
        ),
        (
            "§5.4: Pragma too, when Cache-Control is absent",
            &[("pragma", "No-Cache")],
        ),
        (
            "§5.1: Age as a list uses its first member",
            &[("cache-control", "max-age=3600"), ("age", "7200, 0")],
        ),
        (
            "§5.3: an invalid Expires means already expired",
            &[("expires", "Thu, 18  Aug  2050 02:01:18 GMT")],
        ),
        (
            "RFC 9213 §2.1: a CDN-Cache-Control member of the wrong type is ignored",
            &[
                ("cdn-cache-control", "max-age=\"10000\""),
                ("cache-control", "no-store"),
            ],
        ),
    ];
    for (case, fields) in cases {
        let fields: Fields = fields;
        let p = MemoryPlatform::new(move |_| {
            let mut response = Response::builder().header("content-type", "text/plain");
            for (name, value) in fields {
                response = response.header(*name, *value);
            }
            Ok(response.body(Body::from(b"hello".to_vec())).unwrap())
        });
        let url = "https://shop.example/api/products/1";
        run(&edge(), &p, get(url));
        p.advance(1);
        let second = run(&edge(), &p, get(url));
        assert_eq!(p.fetches(), 2, "{case}: {}", cf(&second));
    }
}

/// RFC 9111 §3: any final status with explicit freshness may be stored and reused while fresh;
/// without explicit freshness only heuristically cacheable statuses are (§4.2.2).
#[test]
fn rfc9111_3_any_final_status_with_explicit_freshness_is_stored() {
    for status in [400u16, 500, 502, 503, 504, 299, 499, 599] {
        for (cache_control, reused) in [
            (Some("max-age=60"), true),
            (Some("s-maxage=60"), true),
            (Some("max-age=60, must-understand"), false),
            (None, false),
        ] {
            let p = MemoryPlatform::new(move |_| {
                let mut response = Response::builder()
                    .status(status)
                    .header("last-modified", "Tue, 24 Nov 2026 10:00:00 GMT");
                if let Some(cache_control) = cache_control {
                    response = response.header("cache-control", cache_control);
                }
                Ok(response.body(Body::from(b"answer".to_vec())).unwrap())
            });
            let url = "https://shop.example/api/products/1";
            run(&edge(), &p, get(url));
            p.advance(10);
            let second = run(&edge(), &p, get(url));
            assert_eq!(second.response.status().as_u16(), status);
            assert_eq!(
                p.fetches() == 1,
                reused,
                "{status} {cache_control:?}: {}",
                cf(&second)
            );
        }
    }
    // A heuristically cacheable status needs no explicit freshness (Last-Modified 10 days ago).
    let p = MemoryPlatform::new(|_| {
        Ok(Response::builder()
            .status(404)
            .header("last-modified", "Tue, 24 Nov 2026 10:00:00 GMT")
            .header("date", "Fri, 04 Dec 2026 10:00:00 GMT")
            .body(Body::new())
            .unwrap())
    });
    let url = "https://shop.example/missing";
    run(&edge(), &p, get(url));
    run(&edge(), &p, get(url));
    assert_eq!(p.fetches(), 1);
}
