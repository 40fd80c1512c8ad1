//! The edge under hostile conditions, end to end over HTTP on 127.0.0.1: proxy mode in front
//! of a user's own service (headers, bodies, invalidation, CDN-Cache-Control), origins that
//! break HTTP, cache poisoning attempts, request limits, load shedding, per-request CPU and
//! memory limits, and a thundering herd.

mod common;

use std::time::{Duration, Instant};

use common::user_origin::{bomb_bytes, Misbehaviour, RawOrigin, UserOrigin, HEALTHY_BODY};
use common::{Emulator, Reply};
use futures::future::join_all;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Sends raw request bytes to the emulator and returns the raw response text: for fields a
/// client library would rewrite or refuse (Connection, TE).
async fn raw_exchange(base: &str, request: &str) -> String {
    let address = base.trim_start_matches("http://");
    let mut stream = tokio::net::TcpStream::connect(address).await.unwrap();
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut response = Vec::new();
    tokio::time::timeout(common::TIMEOUT, stream.read_to_end(&mut response))
        .await
        .expect("the emulator answers and closes")
        .unwrap();
    String::from_utf8_lossy(&response).into_owned()
}

/// What the edge did with a GET of `path` (`CF-Cache-Status`).
async fn cache_status(emulator: &Emulator, path: &str) -> String {
    emulator
        .get(path)
        .await
        .header("cf-cache-status")
        .to_string()
}

fn is_clean_failure(reply: &Reply) -> bool {
    matches!(reply.status, 502..=504)
        && serde_json::from_slice::<serde_json::Value>(&reply.body)
            .is_ok_and(|body| body["error"].is_string())
}

#[tokio::test]
async fn proxy_mode_forwards_bodies_and_end_to_end_fields_and_drops_hop_by_hop_ones() {
    let origin = UserOrigin::start().await;
    let emulator = Emulator::start_with(&["--origin", &origin.url]).await;
    let body = r#"{"qty":3}"#;
    let request = format!(
        "POST /api/orders HTTP/1.1\r\nhost: shop.test\r\nx-request-id: r-1\r\n\
         connection: x-private-req, close\r\nx-private-req: secret\r\nte: trailers\r\n\
         keep-alive: timeout=5\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{body}",
        body.len()
    );
    let response = raw_exchange(&emulator.base, &request).await;
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    let lower = response.to_ascii_lowercase();
    assert!(lower.contains("x-origin-says: hello"), "{response}");
    assert!(lower.contains("via: 1.1 edge-emulator"), "{response}");

    let seen = origin.seen("/api/orders");
    assert_eq!(seen.len(), 1);
    let seen = &seen[0];
    assert_eq!(seen.method, "POST");
    assert_eq!(
        seen.body,
        body.as_bytes(),
        "the request body arrives intact"
    );
    assert_eq!(seen.headers["x-request-id"], "r-1");
    assert_eq!(seen.headers["content-type"], "application/json");
    for hop in ["x-private-req", "te", "keep-alive"] {
        assert!(seen.headers.get(hop).is_none(), "{hop} was forwarded");
    }
    assert!(seen.headers["via"]
        .to_str()
        .unwrap()
        .contains("1.1 edge-emulator"));
}

#[tokio::test]
async fn proxy_mode_drops_the_hop_by_hop_fields_an_origin_names_in_connection() {
    let origin = RawOrigin::start().await;
    origin.set(Misbehaviour::HopByHop);
    let emulator = Emulator::start_with(&["--origin", &origin.url]).await;
    let reply = emulator.get("/anything").await;
    assert_eq!(reply.status, 200);
    assert_eq!(reply.body, b"ok");
    assert!(reply.headers.get("x-private-hop").is_none());
    assert!(reply.headers.get("keep-alive").is_none());
}

#[tokio::test]
async fn rfc9111_4_4_unsafe_requests_invalidate_the_target_and_same_origin_locations() {
    let origin = UserOrigin::start().await;
    let emulator = Emulator::start_with(&["--origin", &origin.url]).await;
    let cached = "?cc=max-age%3D600";
    for path in ["/items/1", "/items/7", "/items/8"] {
        emulator.get(&format!("{path}{cached}")).await;
        let again = emulator.get(&format!("{path}{cached}")).await;
        assert_eq!(again.header("cf-cache-status"), "HIT", "{path}");
    }
    // The target URI itself.
    let post = emulator
        .send("POST", &format!("/items/1{cached}"), &[])
        .await;
    assert_eq!(post.status, 200);
    let after = emulator.get(&format!("/items/1{cached}")).await;
    assert_eq!(after.header("cf-cache-status"), "MISS");
    assert_eq!(after.json()["n"], 3, "the origin served it anew");

    // Location on the same origin is invalidated; a Content-Location on another host is not.
    let location = format!("/items/7{}", cached.replace("%3D", "%253D"));
    let other = "http://elsewhere.example/items/8";
    emulator
        .send(
            "PUT",
            &format!("/items?location={location}&content_location={other}"),
            &[],
        )
        .await;
    assert_eq!(
        cache_status(&emulator, &format!("/items/7{cached}")).await,
        "MISS"
    );
    assert_eq!(
        cache_status(&emulator, &format!("/items/8{cached}")).await,
        "HIT"
    );
    // A failed unsafe request changes nothing.
    let location = format!("/items/8{}", cached.replace("%3D", "%253D"));
    emulator
        .send(
            "DELETE",
            &format!("/items?status=500&location={location}"),
            &[],
        )
        .await;
    assert_eq!(
        cache_status(&emulator, &format!("/items/8{cached}")).await,
        "HIT"
    );
}

#[tokio::test]
async fn rfc9213_cdn_cache_control_governs_the_edge_and_browsers_keep_cache_control() {
    let origin = UserOrigin::start().await;
    let emulator = Emulator::start_with(&["--origin", &origin.url]).await;
    let path = "/cdn?cc=no-store&cdn=max-age%3D60";
    emulator.get(path).await;
    let hit = emulator.get(path).await;
    assert_eq!(hit.header("cf-cache-status"), "HIT");
    assert_eq!(hit.header("cache-control"), "no-store");
    assert_eq!(hit.header("cdn-cache-control"), "max-age=60");
    assert_eq!(origin.count("/cdn"), 1);

    // CDN-Cache-Control: no-store beats a cacheable Cache-Control.
    let path = "/cdn-no-store?cc=max-age%3D60&cdn=no-store";
    emulator.get(path).await;
    emulator.get(path).await;
    assert_eq!(origin.count("/cdn-no-store"), 2);

    // An invalid field is ignored as a whole: Cache-Control decides.
    let path = "/cdn-invalid?cc=max-age%3D60&cdn=max-age%3D%22oops";
    emulator.get(path).await;
    assert_eq!(emulator.get(path).await.header("cf-cache-status"), "HIT");
    assert_eq!(origin.count("/cdn-invalid"), 1);
}

#[tokio::test]
async fn cache_poisoning_unkeyed_fields_cookies_private_data_and_vary() {
    let origin = UserOrigin::start().await;
    let emulator = Emulator::start_with(&["--origin", &origin.url]).await;

    // Unkeyed fields that would change the origin's answer never reach it.
    let page = "/page?cc=public,max-age%3D60";
    let attack = emulator
        .get_with(
            page,
            &[
                ("x-forwarded-host", "evil.example"),
                ("x-original-url", "/admin"),
                ("x-http-method-override", "DELETE"),
                ("forwarded", "host=evil.example"),
            ],
        )
        .await;
    assert_eq!(attack.status, 200);
    let victim = emulator.get(page).await;
    assert_eq!(victim.header("cf-cache-status"), "HIT");
    let body = victim.json();
    assert_eq!(body["forwarded_host"], "");
    assert_eq!(body["original_url"], "");
    assert_eq!(body["method_override"], "");
    let seen = &origin.seen("/page")[0];
    for field in [
        "x-forwarded-host",
        "x-original-url",
        "x-http-method-override",
        "forwarded",
    ] {
        assert!(
            seen.headers.get(field).is_none(),
            "{field} reached the origin"
        );
    }

    // A response that sets a cookie is never shared, even when marked public.
    let login = "/login?cc=public,max-age%3D60&cookie_from=x-user";
    let alice = emulator.get_with(login, &[("x-user", "alice")]).await;
    assert_eq!(alice.header("set-cookie"), "session=alice");
    let bob = emulator.get_with(login, &[("x-user", "bob")]).await;
    assert_eq!(bob.header("set-cookie"), "session=bob");
    assert_eq!(origin.count("/login"), 2);

    // Private responses and responses to Authorization are not shared.
    for (path, headers) in [
        ("/me?cc=private,max-age%3D60", vec![]),
        (
            "/account?cc=max-age%3D60",
            vec![("authorization", "Bearer alice")],
        ),
    ] {
        emulator.get_with(path, &headers).await;
        let other = emulator.get(path).await;
        assert_ne!(other.header("cf-cache-status"), "HIT", "{path}");
    }
    assert_eq!(origin.count("/me"), 2);
    assert_eq!(origin.count("/account"), 2);

    // Vary selects the variant per request.
    let greet = "/greet?cc=max-age%3D60&vary=accept-language";
    for (lang, hit) in [("en", false), ("de", false), ("en", true), ("de", true)] {
        let reply = emulator.get_with(greet, &[("accept-language", lang)]).await;
        assert_eq!(reply.json()["lang"], lang);
        assert_eq!(reply.header("cf-cache-status") == "HIT", hit, "{lang}");
    }
}

#[tokio::test]
async fn broken_origins_give_stale_content_or_clean_errors_and_never_hang_or_lose_the_cache() {
    let origin = RawOrigin::start().await;
    let emulator =
        Emulator::start_with(&["--origin", &origin.url, "--origin-timeout-ms", "1500"]).await;
    let cached = emulator.get("/item").await;
    assert_eq!(cached.status, 200);
    assert_eq!(cached.body, HEALTHY_BODY.as_bytes());
    emulator.advance(5).await;

    let faults = [
        Misbehaviour::Reset,
        Misbehaviour::Garbage,
        Misbehaviour::Truncated,
        Misbehaviour::Hang,
        Misbehaviour::StallMidBody,
    ];
    for (i, fault) in faults.into_iter().enumerate() {
        origin.set(fault);
        let started = Instant::now();
        let stale = emulator.get("/item").await;
        assert_eq!(stale.status, 200, "{fault:?}: stale-if-error");
        assert_eq!(stale.body, HEALTHY_BODY.as_bytes(), "{fault:?}");
        let fresh = emulator.get(&format!("/never-cached-{i}")).await;
        assert!(is_clean_failure(&fresh), "{fault:?}: {fresh:?}");
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "{fault:?} took {:?}",
            started.elapsed()
        );
    }

    // A body longer than its Content-Length: the declared bytes, consistently framed.
    origin.set(Misbehaviour::LongerThanSaid);
    let long = emulator.get("/long").await;
    assert_eq!(long.status, 200);
    assert_eq!(long.body, b"01234");
    assert_eq!(long.header("content-length"), "5");

    // A gzip bomb passes through as the bytes it is: the edge never inflates it.
    origin.set(Misbehaviour::GzipBomb);
    let bomb = emulator.get("/bomb").await;
    assert_eq!(bomb.status, 200);
    assert_eq!(bomb.header("content-encoding"), "gzip");
    assert_eq!(bomb.body, bomb_bytes());

    // Through all of it, the stored entry survived intact.
    origin.set(Misbehaviour::Healthy);
    let after = emulator.get("/item").await;
    assert_eq!(after.status, 200);
    assert_eq!(after.body, HEALTHY_BODY.as_bytes());
}

#[tokio::test]
async fn oversized_requests_get_414_431_413_with_json_bodies() {
    let emulator = Emulator::start().await;
    let long_url = format!("/api/products/1?pad={}", "a".repeat(9000));
    let reply = emulator.get(&long_url).await;
    assert_eq!(reply.status, 414);
    assert_eq!(reply.json()["error"], "uri_too_long");

    let many: Vec<(String, String)> = (0..150)
        .map(|i| (format!("x-field-{i}"), "v".to_string()))
        .collect();
    let headers: Vec<(&str, &str)> = many.iter().map(|(n, v)| (n.as_str(), v.as_str())).collect();
    let reply = emulator.get_with("/api/products/1", &headers).await;
    assert_eq!(reply.status, 431);
    assert_eq!(reply.json()["error"], "headers_too_large");

    let response = emulator
        .client
        .post(format!("{}/api/orders", emulator.base))
        .body(vec![b'x'; 11 * 1024 * 1024])
        .send()
        .await
        .unwrap();
    let reply = Reply::read(response).await;
    assert_eq!(reply.status, 413);
    assert_eq!(reply.json()["error"], "body_too_large");
    // The edge is still serving.
    assert_eq!(emulator.get("/api/products/1").await.status, 200);
}

#[tokio::test]
async fn a_request_past_its_cpu_or_memory_limit_fails_alone_with_503() {
    // Brotli over 4 MB takes far more than 5 ms of guest time.
    let emulator = Emulator::start_with(&["--cpu-limit-ms", "5"]).await;
    let heavy = emulator
        .get_with("/api/objects/1?bytes=4000000", &[("accept-encoding", "br")])
        .await;
    assert_eq!(
        heavy.status,
        503,
        "{:?}",
        String::from_utf8_lossy(&heavy.body)
    );
    assert_eq!(heavy.json()["error"], "worker_cpu_limit");
    assert_eq!(heavy.header("retry-after"), "1");
    assert_still_serving(&emulator).await;

    // An 8 MB request body cannot be read into 8 MiB of guest memory (responses stay in the
    // host: the worker never holds them).
    let emulator = Emulator::start_with(&["--memory-limit-mib", "8"]).await;
    let response = emulator
        .client
        .post(format!("{}/api/orders", emulator.base))
        .body(vec![b'x'; 8_000_000])
        .send()
        .await
        .unwrap();
    let huge = Reply::read(response).await;
    assert_eq!(
        huge.status,
        503,
        "{:?}",
        String::from_utf8_lossy(&huge.body)
    );
    assert_eq!(huge.json()["error"], "worker_memory_limit");
    assert_still_serving(&emulator).await;
}

/// Other requests are unaffected by one that failed.
async fn assert_still_serving(emulator: &Emulator) {
    let small = emulator.get("/api/products/1").await;
    assert_eq!(small.status, 200);
    assert_eq!(
        emulator
            .get("/api/products/1")
            .await
            .header("cf-cache-status"),
        "HIT"
    );
}

#[tokio::test]
async fn beyond_the_in_flight_limit_requests_are_shed_with_503_and_retry_after() {
    let origin = UserOrigin::start().await;
    let emulator = Emulator::start_with(&["--origin", &origin.url, "--max-in-flight", "4"]).await;
    let replies = join_all((0..20).map(|i| {
        let emulator = &emulator;
        async move {
            emulator
                .get(&format!("/slow/{i}?cc=no-store&delay_ms=1000"))
                .await
        }
    }))
    .await;
    let shed: Vec<&Reply> = replies.iter().filter(|r| r.status == 503).collect();
    let served = replies.iter().filter(|r| r.status == 200).count();
    assert_eq!(shed.len() + served, 20);
    eprintln!("shedding: {served} served, {} shed", shed.len());
    assert!((1..=4).contains(&served), "served {served}");
    for reply in &shed {
        assert_eq!(reply.header("retry-after"), "1");
        assert_eq!(reply.json()["error"], "overloaded");
    }
    let stats = emulator.stats().await;
    assert_eq!(stats["load"]["shed"], shed.len() as u64);
    assert_eq!(stats["load"]["in_flight"], 0);
}

#[tokio::test]
async fn thundering_herd_of_1000_on_an_expired_key_makes_one_fetch_per_tier() {
    let origin = UserOrigin::start().await;
    let emulator = Emulator::start_with(&["--origin", &origin.url]).await;
    let hot = "/hot?cc=max-age%3D1&delay_ms=300";
    let pop = [("x-emulator-pop", "fra")];
    assert_eq!(emulator.get_with(hot, &pop).await.status, 200);
    emulator.advance(5).await;
    let before = emulator.stats().await;
    let rss_before = emulator.rss_kib();

    let started = Instant::now();
    let replies = join_all((0..1000).map(|_| emulator.get_with(hot, &pop))).await;
    eprintln!(
        "herd: 1000 answered in {:?}; emulator RSS {rss_before:?} KiB before, {:?} KiB after",
        started.elapsed(),
        emulator.rss_kib()
    );
    assert_eq!(replies.len(), 1000);
    assert!(replies.iter().all(|r| r.status == 200), "all 1000 answered");
    assert_eq!(
        origin.count("/hot"),
        2,
        "one fetch before, one for the herd"
    );

    let after = emulator.stats().await;
    let upstream = |stats: &serde_json::Value, tier: &str, name: &str| {
        stats[tier][name]["upstream_requests"].as_u64().unwrap()
    };
    assert_eq!(
        upstream(&after, "edge", "fra") - upstream(&before, "edge", "fra"),
        1,
        "the PoP sent one request upstream"
    );
    assert_eq!(
        upstream(&after, "regional", "eu-central") - upstream(&before, "regional", "eu-central"),
        1,
        "the regional tier sent one request to the origin"
    );
    assert_eq!(after["load"]["coalesce_timeouts"], 0);
}

#[tokio::test]
async fn a_waiter_gives_up_on_a_slow_fetch_after_the_coalescing_limit_and_fetches_itself() {
    let origin = UserOrigin::start().await;
    let emulator =
        Emulator::start_with(&["--origin", &origin.url, "--coalesce-wait-ms", "200"]).await;
    let slow = "/slow-key?cc=max-age%3D60&delay_ms=1500";
    let pop = [("x-emulator-pop", "fra")];
    let started = Instant::now();
    let replies = join_all((0..5).map(|_| emulator.get_with(slow, &pop))).await;
    assert!(replies.iter().all(|r| r.status == 200));
    let stats = emulator.stats().await;
    assert!(
        stats["load"]["coalesce_timeouts"].as_u64().unwrap() >= 4,
        "the four waiters gave up: {}",
        stats["load"]
    );
    // They did not wait for the first fetch to finish before starting their own.
    assert!(origin.count("/slow-key") > 1);
    assert!(started.elapsed() < Duration::from_secs(10));
}
