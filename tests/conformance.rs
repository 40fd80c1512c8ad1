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

/// RFC 9111 §4.3: a revalidation is one request to the origin, whichever tiers hold stale
/// copies. Every path: edge and regional stale, edge stale with the regional fresh, a
/// `no-cache` response, `must-revalidate`, and request `max-age=0` / `no-cache`, each with and
/// without a validator.
#[tokio::test]
async fn rfc9111_4_3_one_client_request_reaches_the_origin_at_most_once() {
    let origin = UserOrigin::start().await;
    let emulator = Emulator::start_with(&["--origin", &origin.url]).await;
    for (validator, etag) in [("with an ETag", "&etag=%22v1%22"), ("without", "")] {
        // Edge and regional stale (must-revalidate), three seconds after the first request.
        let path = format!(
            "/must-revalidate-{}?cc=max-age%3D2%2C%20must-revalidate{etag}",
            etag.len()
        );
        let (first, _) = origin_requests_for(&emulator, &origin, &path, "fra", &[]).await;
        assert_eq!(first, 1, "{validator}: the first request fetches");
        emulator.advance(3).await;
        let (n, status) = origin_requests_for(&emulator, &origin, &path, "fra", &[]).await;
        assert_eq!(n, 1, "{validator}: edge and regional stale ({status})");

        // Edge stale, regional fresh: lhr (same regional tier) refreshed the regional copy.
        emulator.advance(3).await;
        let (n, _) = origin_requests_for(&emulator, &origin, &path, "lhr", &[]).await;
        assert_eq!(n, 1, "{validator}: lhr's miss refreshes the regional tier");
        let (n, status) = origin_requests_for(&emulator, &origin, &path, "fra", &[]).await;
        assert_eq!(n, 0, "{validator}: edge stale, regional fresh ({status})");

        // A no-cache response: every request is validated, once.
        let path = format!("/no-cache-{}?cc=no-cache{etag}", etag.len());
        for i in 0..3 {
            let (n, status) = origin_requests_for(&emulator, &origin, &path, "fra", &[]).await;
            assert_eq!(
                n, 1,
                "{validator}: no-cache response, request {i} ({status})"
            );
        }

        // Request directives on a fresh entry: max-age=0 and no-cache.
        let path = format!("/fresh-{}?cc=max-age%3D600{etag}", etag.len());
        origin_requests_for(&emulator, &origin, &path, "fra", &[]).await;
        // An entry of age 0 still satisfies `max-age=0` (RFC 9111 §5.2.1.1): let it age.
        emulator.advance(1).await;
        for directive in ["max-age=0", "no-cache"] {
            let headers = [("cache-control", directive)];
            let (n, status) = origin_requests_for(&emulator, &origin, &path, "fra", &headers).await;
            assert_eq!(n, 1, "{validator}: request {directive} ({status})");
        }
    }
}
