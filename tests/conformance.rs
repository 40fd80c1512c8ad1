//! HTTP caching conformance end to end (issue 15): the emulator in proxy mode in front of an
//! origin that sends exactly the fields under test, through the real wasm guest at the edge
//! and the regional tier behind it, counting what reaches the origin.

mod common;

use common::user_origin::UserOrigin;
use common::Emulator;

/// One client request at `pop` with `headers`; returns how many requests it caused at the
/// origin and the edge's CF-Cache-Status.
async fn origin_requests_for(
    emulator: &Emulator,
    origin: &UserOrigin,
    path_and_query: &str,
    pop: &str,
    headers: &[(&str, &str)],
) -> (usize, String) {
    let path = path_and_query.split('?').next().unwrap();
    let before = origin.count(path);
    let mut all = vec![("x-emulator-pop", pop)];
    all.extend_from_slice(headers);
    let reply = emulator.get_with(path_and_query, &all).await;
    assert!(reply.status < 500, "{path_and_query}: {}", reply.status);
    (
        origin.count(path) - before,
        reply.header("cf-cache-status").to_string(),
    )
}

/// The validators an origin response carries in [`rfc9111_4_3_one_client_request_reaches_the_origin_at_most_once`],
/// as query parameters of the stand-in origin.
const VALIDATORS: [(&str, &str); 4] = [
    ("etag", "&etag=%22v1%22"),
    (
        "lm",
        "&last_modified=Sun%2C%2001%20Nov%202026%2000%3A00%3A00%20GMT",
    ),
    (
        "both",
        "&etag=%22v1%22&last_modified=Sun%2C%2001%20Nov%202026%2000%3A00%3A00%20GMT",
    ),
    ("none", ""),
];

/// RFC 9111 §4.3: a revalidation is one request to the origin, whichever tiers hold stale
/// copies. Every path: edge and regional stale, edge stale with the regional fresh, a
/// `no-cache` response, `must-revalidate`, request `max-age=0` / `no-cache`, and a
/// Last-Modified-only response past its heuristic freshness; each with an ETag, a
/// Last-Modified, both and neither; and each again with the origin's 304 carrying no
/// validator and no caching fields (issue 26: such a 304 validates what the tier asked
/// about, as Varnish and nginx take it, rather than costing a second, unconditional fetch).
#[tokio::test]
async fn rfc9111_4_3_one_client_request_reaches_the_origin_at_most_once() {
    let origin = UserOrigin::start().await;
    let emulator = Emulator::start_with(&["--origin", &origin.url]).await;
    for bare in ["", "&bare304=1"] {
        for (validator, fields) in VALIDATORS {
            let case = format!("{validator}{bare}");
            let slug = format!("{validator}-{}", bare.len());
            // Edge and regional stale (must-revalidate), three seconds after the first request.
            let path = format!(
                "/must-revalidate-{slug}?cc=max-age%3D2%2C%20must-revalidate{fields}{bare}"
            );
            let (first, _) = origin_requests_for(&emulator, &origin, &path, "fra", &[]).await;
            assert_eq!(first, 1, "{case}: the first request fetches");
            emulator.advance(3).await;
            let (n, status) = origin_requests_for(&emulator, &origin, &path, "fra", &[]).await;
            assert_eq!(n, 1, "{case}: edge and regional stale ({status})");
            let reply = emulator.get_with(&path, &[("x-emulator-pop", "fra")]).await;
            assert_eq!(reply.status, 200, "{case}");
            if validator != "none" {
                assert_eq!(
                    reply.json()["n"],
                    1,
                    "{case}: the stored body, not a refetch"
                );
            }

            // Edge stale, regional fresh: lhr (same regional tier) refreshed the regional copy.
            emulator.advance(3).await;
            let (n, _) = origin_requests_for(&emulator, &origin, &path, "lhr", &[]).await;
            assert_eq!(n, 1, "{case}: lhr's miss refreshes the regional tier");
            let (n, status) = origin_requests_for(&emulator, &origin, &path, "fra", &[]).await;
            assert_eq!(n, 0, "{case}: edge stale, regional fresh ({status})");

            // A no-cache response: every request is validated, once.
            let path = format!("/no-cache-{slug}?cc=no-cache{fields}{bare}");
            for i in 0..3 {
                let (n, status) = origin_requests_for(&emulator, &origin, &path, "fra", &[]).await;
                assert_eq!(n, 1, "{case}: no-cache response, request {i} ({status})");
            }

            // Request directives on a fresh entry: max-age=0 and no-cache.
            let path = format!("/fresh-{slug}?cc=max-age%3D600{fields}{bare}");
            origin_requests_for(&emulator, &origin, &path, "fra", &[]).await;
            // An entry of age 0 still satisfies `max-age=0` (RFC 9111 §5.2.1.1): let it age.
            emulator.advance(1).await;
            for directive in ["max-age=0", "no-cache"] {
                let headers = [("cache-control", directive)];
                let (n, status) =
                    origin_requests_for(&emulator, &origin, &path, "fra", &headers).await;
                assert_eq!(n, 1, "{case}: request {directive} ({status})");
            }
        }

        // A Last-Modified-only response without explicit freshness: heuristic freshness
        // (RFC 9111 §4.2.2, a tenth of its age at Date: two seconds here), then validated
        // with If-Modified-Since.
        let modified = httpdate::fmt_http_date(
            std::time::SystemTime::now() - std::time::Duration::from_secs(20),
        );
        let path = format!(
            "/heuristic-{}?last_modified={}{bare}",
            bare.len(),
            form_urlencoded::byte_serialize(modified.as_bytes()).collect::<String>()
        );
        let (first, _) = origin_requests_for(&emulator, &origin, &path, "fra", &[]).await;
        assert_eq!(first, 1, "heuristic{bare}: the first request fetches");
        let (n, status) = origin_requests_for(&emulator, &origin, &path, "fra", &[]).await;
        assert_eq!(n, 0, "heuristic{bare}: fresh by heuristic ({status})");
        emulator.advance(5).await;
        let (n, status) = origin_requests_for(&emulator, &origin, &path, "fra", &[]).await;
        assert_eq!(n, 1, "heuristic{bare}: stale, validated once ({status})");
        let seen = origin.seen(path.split('?').next().unwrap());
        assert!(
            seen.last()
                .unwrap()
                .headers
                .contains_key("if-modified-since"),
            "heuristic{bare}: validated with If-Modified-Since"
        );
    }
}

/// RFC 9110 §5.6.7: an `Expires` in the obsolete RFC 850 or asctime form, or with names in
/// another case, gives the lifetime it names (nginx reads them too); garbage is expired.
#[tokio::test]
async fn rfc9110_5_6_7_obsolete_expires_forms_give_their_lifetime() {
    use std::time::{Duration, SystemTime};
    let origin = UserOrigin::start().await;
    let emulator = Emulator::start_with(&["--origin", &origin.url]).await;
    let in_an_hour = SystemTime::now() + Duration::from_secs(3600);
    let imf = httpdate::fmt_http_date(in_an_hour);
    let date = time::OffsetDateTime::from(in_an_hour);
    let long_day = match &imf[..3] {
        "Mon" => "Monday",
        "Tue" => "Tuesday",
        "Wed" => "Wednesday",
        "Thu" => "Thursday",
        "Fri" => "Friday",
        "Sat" => "Saturday",
        _ => "Sunday",
    };
    let cases = [
        ("imf", imf.clone(), true),
        (
            "rfc850",
            format!(
                "{long_day}, {}-{}-{:02} {} GMT",
                &imf[5..7],
                &imf[8..11],
                date.year() % 100,
                &imf[17..25]
            ),
            true,
        ),
        (
            "asctime",
            format!(
                "{} {} {:>2} {} {}",
                &imf[..3],
                &imf[8..11],
                date.day(),
                &imf[17..25],
                date.year()
            ),
            true,
        ),
        ("lowercase", imf.to_ascii_lowercase(), true),
        ("offset", imf.replace("GMT", "+0000"), false),
        ("garbage", "soon".to_string(), false),
    ];
    for (form, expires, cached) in cases {
        let path = format!(
            "/expires-{form}?expires={}",
            form_urlencoded::byte_serialize(expires.as_bytes()).collect::<String>()
        );
        origin_requests_for(&emulator, &origin, &path, "fra", &[]).await;
        let (n, status) = origin_requests_for(&emulator, &origin, &path, "fra", &[]).await;
        if cached {
            assert_eq!((n, status.as_str()), (0, "HIT"), "{form}: {expires}");
        } else {
            assert_eq!(n, 1, "{form}: {expires} is already expired ({status})");
        }
    }
}

/// RFC 9111 §4.1 (issue 26): the fields a response varies on select a stored variant by
/// their normalised values — whitespace, case, weight spelling and order across weights in
/// the weighted lists (`Accept-Language` here) — and as sent for fields of unknown syntax.
#[tokio::test]
async fn rfc9111_4_1_vary_compares_normalised_field_values() {
    let origin = UserOrigin::start().await;
    let emulator = Emulator::start_with(&["--origin", &origin.url]).await;
    let path = "/vary-language?cc=public%2C%20max-age%3D600&vary=accept-language";
    // (Accept-Language, origin requests it causes)
    let cases = [
        ("en-US, fr;q=0.5", 1),
        ("fr;Q=0.50,EN-us", 0),
        ("en-US ,fr ; q=0.500", 0),
        // Equal weights in another order: the origin may break ties by order.
        ("fr, en-US", 1),
        ("fr,en-US", 0),
    ];
    for (language, expected) in cases {
        let headers = [("accept-language", language)];
        let (n, status) = origin_requests_for(&emulator, &origin, path, "fra", &headers).await;
        assert_eq!(n, expected, "Accept-Language: {language} ({status})");
    }
    let path = "/vary-tenant?cc=public%2C%20max-age%3D600&vary=x-tenant";
    for (tenant, expected) in [("a,b", 1), ("a,b", 0), ("a, b", 1)] {
        let headers = [("x-tenant", tenant)];
        let (n, status) = origin_requests_for(&emulator, &origin, path, "fra", &headers).await;
        assert_eq!(n, expected, "X-Tenant: {tenant} ({status})");
    }
}

/// RFC 9110 §14 (issue 26): a range of a response the origin sent whole is cut at the edge
/// from the stored response — the origin is asked once, without `Range`.
#[tokio::test]
async fn rfc9110_14_ranges_come_from_the_stored_response() {
    let origin = UserOrigin::start().await;
    let emulator = Emulator::start_with(&["--origin", &origin.url]).await;
    let path = "/ranged?cc=public%2C%20max-age%3D600&etag=%22r1%22";
    let full = emulator.get_with(path, &[("x-emulator-pop", "fra")]).await;
    let length = full.body.len();
    for (range, if_range, status) in [
        ("bytes=0-3", "\"r1\"", 206),
        ("bytes=-4", "", 206),
        ("bytes=0-3", "\"other\"", 200),
        ("bytes=99999-", "", 416),
    ] {
        let mut headers = vec![("x-emulator-pop", "fra"), ("range", range)];
        if !if_range.is_empty() {
            headers.push(("if-range", if_range));
        }
        let reply = emulator.get_with(path, &headers).await;
        assert_eq!(reply.status, status, "{range} {if_range}");
        match status {
            206 => assert_eq!(reply.body.len(), 4),
            416 => assert_eq!(reply.header("content-range"), format!("bytes */{length}")),
            _ => assert_eq!(reply.body, full.body),
        }
    }
    let seen = origin.seen("/ranged");
    assert_eq!(seen.len(), 1, "one origin request");
    assert!(!seen[0].headers.contains_key("range"));
}
