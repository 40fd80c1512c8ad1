//! One scenario suite, two runtimes: each scenario is written once against [`Target`] and run
//! against the emulator (`scenarios_emulator.rs`) and against the Cloudflare build in workerd
//! (`scenarios_workerd.rs`). Where the platforms differ, the difference is a declared
//! [`Capabilities`] field that the scenario reads and asserts on: nothing is skipped.

#![allow(dead_code)] // why: each runtime's test file uses the suite through a macro

use std::future::Future;
use std::time::Duration;

use serde_json::{json, Value};

use crate::common::{self, Reply, TIMEOUT};

/// Catalogue product: cacheable with stale-while-revalidate and stale-if-error windows.
pub const PRODUCT: &str = "/api/products/1";
/// A route that requires a JWT in the default auth configuration.
pub const USER: &str = "/api/users/1";
/// The origin-stub's personalised dashboard: an ESI template of a private summary and a
/// public news panel.
pub const DASHBOARD: &str = "/api/users/me/dashboard";
pub const NEWS: &str = "/dashboard/news";
pub const SUMMARY: &str = "/api/users/me/summary";

use crate::common::scenario_policy_json as policy_json;

/// The variant of `experiment` the core assigns `unit` (`sub:…` or `cookie:…`): what every
/// runtime must agree on.
fn variant_of(experiment: &str, unit: &str) -> String {
    let rules = edge_worker::cache_policy::CachePolicyConfig::parse(&policy_json()).unwrap();
    rules
        .experiments
        .variant_of(experiment, unit)
        .unwrap()
        .to_string()
}

/// What a runtime has that the other lacks.
#[derive(Debug, Clone, Copy)]
pub struct Capabilities {
    /// A regional tier between the edge and the origin (emulator: yes; Cloudflare's classic
    /// Cache API: no, it is per data centre). Shows as an extra Cache-Status member, and the
    /// stale-if-error answer comes from that tier instead of the edge.
    pub regional_tier: bool,
    /// Whether concurrent misses for one key are coalesced into one origin request
    /// (emulator: at the PoP and again at the regional tier; Cloudflare isolates share no
    /// locks: no).
    pub coalescing: bool,
    /// Whether the adapter reports the client's country (`X-Edge-Country`): the Cloudflare
    /// adapter with `DEBUG_GEO_HEADERS`; the emulator reports it only through the PoP it picks.
    pub country_header: bool,
}

/// A runtime with the edge worker in front of an origin-stub.
#[allow(async_fn_in_trait)] // why: used generically in tests only, on one thread
pub trait Target {
    fn name(&self) -> &'static str;
    fn capabilities(&self) -> Capabilities;
    /// The edge PoP that serves clients without geography (emulator: fra).
    fn default_pop(&self) -> &'static str;
    async fn send(&self, method: &str, path: &str, headers: &[(&str, &str)]) -> Reply;
    /// A request from a client in `country` at the PoP `pop` serves it from (emulator:
    /// `CF-IPCountry`; workerd: `request.cf` via the cf-blob header).
    async fn get_from(&self, country: &str, pop: &str, path: &str) -> Reply;
    /// Requests the origin serving the default PoP has received for `path`.
    async fn origin_requests(&self, path: &str) -> u64;
    /// Replaces the origin's fault plan (`PUT /__origin/faults`).
    async fn set_faults(&self, plan: Value);
    /// Lets catalogue responses cached now become stale but stay inside
    /// stale-while-revalidate (emulator: moves its clock; workerd: sleeps past a short
    /// max-age, because workerd's clock cannot be moved).
    async fn age_into_swr(&self);
    /// Lets them pass stale-while-revalidate but stay inside stale-if-error.
    async fn age_past_swr(&self);

    async fn get(&self, path: &str) -> Reply {
        self.send("GET", path, &[]).await
    }

    async fn get_with(&self, path: &str, headers: &[(&str, &str)]) -> Reply {
        self.send("GET", path, headers).await
    }

    /// Polls until the origin has seen `count` requests for `path`.
    async fn wait_for_origin(&self, path: &str, count: u64) {
        let deadline = tokio::time::Instant::now() + TIMEOUT;
        loop {
            let seen = self.origin_requests(path).await;
            if seen >= count {
                return;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "{}: origin saw {seen} requests for {path}, waited for {count}",
                self.name()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

/// The Cache-Status member this target's edge writes.
fn edge_member(target: &impl Target) -> String {
    format!("edge-{}", target.default_pop())
}

pub async fn miss_then_hit(t: &impl Target) {
    let first = t.get(PRODUCT).await;
    assert_eq!(first.status, 200, "{}", t.name());
    assert_eq!(first.header("cf-cache-status"), "MISS", "{}", t.name());
    let members: Vec<&str> = first.header("cache-status").split(", ").collect();
    let expected = 1 + usize::from(t.capabilities().regional_tier);
    assert_eq!(members.len(), expected, "{}: {members:?}", t.name());
    assert_eq!(
        members.last().copied(),
        Some(format!("{}; fwd=uri-miss; fwd-status=200; stored", edge_member(t)).as_str()),
        "{}",
        t.name()
    );

    let second = t.get(PRODUCT).await;
    assert_eq!(second.header("cf-cache-status"), "HIT", "{}", t.name());
    assert!(
        second
            .header("cache-status")
            .starts_with(&format!("{}; hit; ttl=", edge_member(t))),
        "{}: {}",
        t.name(),
        second.header("cache-status")
    );
    assert_eq!(second.body, first.body, "{}: the same bytes", t.name());
    assert_eq!(t.origin_requests(PRODUCT).await, 1, "{}", t.name());
}

pub async fn stale_while_revalidate(t: &impl Target) {
    let original = t.get(PRODUCT).await;
    assert_eq!(original.status, 200);
    t.age_into_swr().await;
    let stale = t.get(PRODUCT).await;
    assert_eq!(stale.status, 200, "{}", t.name());
    assert_eq!(stale.header("cf-cache-status"), "UPDATING", "{}", t.name());
    assert!(
        stale.header("cache-status").starts_with(&edge_member(t))
            && stale
                .header("cache-status")
                .ends_with("detail=stale-while-revalidate"),
        "{}: {}",
        t.name(),
        stale.header("cache-status")
    );
    assert_eq!(stale.body, original.body, "{}", t.name());

    // The refresh runs after the response (emulator: a second instance; Cloudflare:
    // ctx.waitUntil) and stores a fresh copy.
    t.wait_for_origin(PRODUCT, 2).await;
    let deadline = tokio::time::Instant::now() + TIMEOUT;
    loop {
        let refreshed = t.get(PRODUCT).await;
        if refreshed.header("cf-cache-status") == "HIT" {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{}: never HIT after the refresh: {:?}",
            t.name(),
            refreshed.headers
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(
        t.origin_requests(PRODUCT).await,
        2,
        "{}: exactly one refresh",
        t.name()
    );
}

pub async fn stale_if_error(t: &impl Target) {
    let original = t.get(PRODUCT).await;
    t.set_faults(json!({ "error_rate": 1.0, "error_status": 503 }))
        .await;
    t.age_past_swr().await;
    let served = t.get(PRODUCT).await;
    assert_eq!(served.status, 200, "{}", t.name());
    assert_eq!(served.body, original.body, "{}", t.name());
    // With a regional tier, that tier serves its stale copy and reports it; without one the
    // edge does.
    let cache_status = served.header("cache-status");
    let first_member = if t.capabilities().regional_tier {
        "regional-"
    } else {
        "edge-"
    };
    assert!(
        cache_status.starts_with(first_member)
            && cache_status.contains("fwd-status=503")
            && cache_status.contains("detail=stale-if-error"),
        "{}: {cache_status}",
        t.name()
    );
    assert!(
        t.origin_requests(PRODUCT).await >= 2,
        "{}: the origin was asked",
        t.name()
    );
}

pub async fn not_modified(t: &impl Target) {
    let first = t.get(PRODUCT).await;
    let etag = first.header("etag").to_string();
    assert!(!etag.is_empty(), "{}: an ETag", t.name());
    let revalidated = t.get_with(PRODUCT, &[("if-none-match", &etag)]).await;
    assert_eq!(revalidated.status, 304, "{}", t.name());
    assert!(revalidated.body.is_empty(), "{}", t.name());
    assert_eq!(revalidated.header("etag"), etag, "{}", t.name());
    let other = t
        .get_with(PRODUCT, &[("if-none-match", "\"something-else\"")])
        .await;
    assert_eq!(other.status, 200, "{}", t.name());
    assert_eq!(
        t.origin_requests(PRODUCT).await,
        1,
        "{}: the edge answered",
        t.name()
    );
}

pub async fn sparse_fields(t: &impl Target) {
    let full = t.get(PRODUCT).await.json();
    let sparse = t.get(&format!("{PRODUCT}?fields=name,id")).await;
    assert_eq!(sparse.status, 200, "{}", t.name());
    assert_eq!(sparse.header("x-edge-fields"), "applied", "{}", t.name());
    assert_eq!(
        sparse.json(),
        json!({"id": full["id"], "name": full["name"]}),
        "{}",
        t.name()
    );
    let bad = t.get(&format!("{PRODUCT}?fields=a(")).await;
    assert_eq!(bad.status, 400, "{}", t.name());
    assert_eq!(
        t.origin_requests(PRODUCT).await,
        1,
        "{}: one origin fetch",
        t.name()
    );
}

pub async fn compression(t: &impl Target) {
    let identity = t.get(PRODUCT).await;
    assert_eq!(identity.header("content-encoding"), "", "{}", t.name());
    for (coding, header) in [("br", "br"), ("gzip", "gzip")] {
        let reply = t.get_with(PRODUCT, &[("accept-encoding", coding)]).await;
        assert_eq!(reply.status, 200, "{}", t.name());
        assert_eq!(reply.header("content-encoding"), header, "{}", t.name());
        assert!(
            reply
                .header("vary")
                .to_ascii_lowercase()
                .contains("accept-encoding"),
            "{}",
            t.name()
        );
        assert!(
            reply.body.len() < identity.body.len(),
            "{}: {coding} is smaller",
            t.name()
        );
        assert_eq!(reply.decoded(), identity.body, "{}: {coding}", t.name());
    }
    assert_eq!(t.origin_requests(PRODUCT).await, 1, "{}", t.name());
}

pub async fn jwt_accept_and_reject(t: &impl Target) {
    let missing = t.get(USER).await;
    assert_eq!(missing.status, 401, "{}", t.name());
    assert!(
        missing
            .header("www-authenticate")
            .starts_with("Bearer realm="),
        "{}",
        t.name()
    );
    let bad = t.get_with(USER, &[("authorization", "Bearer a.b.c")]).await;
    assert_eq!(bad.status, 401, "{}", t.name());
    assert!(
        bad.header("www-authenticate")
            .contains("error=\"invalid_token\""),
        "{}",
        t.name()
    );
    assert_eq!(t.origin_requests(USER).await, 0, "{}", t.name());

    let token = format!("Bearer {}", common::demo_token("user-7"));
    let ok = t.get_with(USER, &[("authorization", &token)]).await;
    assert_eq!(ok.status, 200, "{}", t.name());
    assert_eq!(ok.json()["viewer"], "user-7", "{}", t.name());
    assert_eq!(t.origin_requests(USER).await, 1, "{}", t.name());

    // ES256 too (the Cloudflare build's trimmed crypto keeps it; see auth/crypto.rs).
    let es256 = edge_emulator::demo_token::mint(
        edge_emulator::demo_token::DemoAlg::Es256,
        "user-8",
        None,
        std::time::SystemTime::now(),
        Duration::from_secs(600),
    )
    .expect("the demo ES256 key signs");
    let ok = t
        .get_with(USER, &[("authorization", &format!("Bearer {es256}"))])
        .await;
    assert_eq!(ok.status, 200, "{}: ES256", t.name());
    assert_eq!(ok.json()["viewer"], "user-8", "{}", t.name());
}

/// The client's country reaches the worker. Routing by it (origins per region) is the geo
/// routing work; its assertion is added when that lands (see the README).
pub async fn cf_country_reaches_the_worker(t: &impl Target) {
    let sydney = t.get_from("AU", "syd", PRODUCT).await;
    assert_eq!(sydney.status, 200, "{}", t.name());
    assert!(
        sydney
            .header("cache-status")
            .ends_with("edge-syd; fwd=uri-miss; fwd-status=200; stored"),
        "{}: {}",
        t.name(),
        sydney.header("cache-status")
    );
    if t.capabilities().country_header {
        assert_eq!(sydney.header("x-edge-country"), "AU", "{}", t.name());
        assert_eq!(sydney.header("x-edge-colo"), "syd", "{}", t.name());
    }
    // A second Australian client hits Sydney's cache, not the default PoP's.
    let again = t.get_from("AU", "syd", PRODUCT).await;
    assert_eq!(again.header("cf-cache-status"), "HIT", "{}", t.name());
}

/// The worker picks the regional origin by the client's `cf` country: US → us-east, GB →
/// eu-west, AU → ap-southeast, and says so in `X-Edge-Origin-Region`. In the emulator by
/// distance from the PoP; in workerd by the test ROUTING binding's rules (and distance for AU).
pub async fn geo_routing_by_cf_country(t: &impl Target) {
    for (country, pop, region, path) in [
        ("US", "iad", "us-east", "/api/products/41"),
        ("GB", "lhr", "eu-west", "/api/products/42"),
        ("AU", "syd", "ap-southeast", "/api/products/43"),
    ] {
        let reply = t.get_from(country, pop, path).await;
        assert_eq!(reply.status, 200, "{}: {country}", t.name());
        let chosen = reply.header("x-edge-origin-region");
        assert_eq!(
            chosen.split(';').next(),
            Some(region),
            "{}: {country}: {chosen}",
            t.name()
        );
        assert!(chosen.contains("reason="), "{}: {chosen}", t.name());
    }
}

/// Eight concurrent misses for one cold key: one origin request where the platform
/// coalesces, up to eight where it does not (Cloudflare isolates share no lock).
pub async fn concurrent_misses(t: &impl Target) {
    let path = "/api/products/7";
    let replies = futures_join_all(t, path, 8).await;
    for reply in &replies {
        assert_eq!(reply.status, 200, "{}", t.name());
        assert_eq!(reply.body, replies[0].body, "{}", t.name());
    }
    let fetched = t.origin_requests(path).await;
    if t.capabilities().coalescing {
        assert_eq!(fetched, 1, "{}: coalesced", t.name());
    } else {
        assert!((1..=8).contains(&fetched), "{}: {fetched}", t.name());
    }
    // Either way, the next request is a hit.
    assert_eq!(
        t.get(path).await.header("cf-cache-status"),
        "HIT",
        "{}",
        t.name()
    );
}

async fn futures_join_all(t: &impl Target, path: &str, n: usize) -> Vec<Reply> {
    // Single-threaded test: the requests interleave on the runtime through join on a Vec.
    let mut pending: Vec<_> = (0..n).map(|_| Box::pin(t.get(path))).collect();
    let mut done: Vec<Option<Reply>> = (0..n).map(|_| None).collect();
    std::future::poll_fn(|cx| {
        let mut all = true;
        for (i, future) in pending.iter_mut().enumerate() {
            if done[i].is_none() {
                match future.as_mut().poll(cx) {
                    std::task::Poll::Ready(reply) => done[i] = Some(reply),
                    std::task::Poll::Pending => all = false,
                }
            }
        }
        if all {
            std::task::Poll::Ready(())
        } else {
            std::task::Poll::Pending
        }
    })
    .await;
    done.into_iter().flatten().collect()
}

/// The dashboard composed at the edge: each subject's page has their own summary and the
/// shared news, the template is fetched once, the summary once per subject, the page
/// answers 304 for its ETag, and without a token the page's own route refuses.
pub async fn composed_dashboard(t: &impl Target) {
    let mut variants = std::collections::BTreeSet::new();
    let mut etag = String::new();
    for sub in ["alice", "bob", "alice", "bob"] {
        let token = format!("Bearer {}", common::demo_token(sub));
        let page = t.get_with(DASHBOARD, &[("authorization", &token)]).await;
        let body = String::from_utf8_lossy(&page.body).into_owned();
        assert_eq!(page.status, 200, "{}: {sub}: {body}", t.name());
        assert!(
            body.contains(&format!("Welcome back, {sub}")),
            "{}: {sub}",
            t.name()
        );
        let other = if sub == "alice" { "bob" } else { "alice" };
        assert!(
            !body.contains(&format!("Welcome back, {other}")),
            "{}: no leak",
            t.name()
        );
        assert!(
            body.contains("class=\"news\"") && !body.contains("<esi:"),
            "{}",
            t.name()
        );
        assert_eq!(
            page.header("surrogate-control"),
            "",
            "{}: stripped",
            t.name()
        );
        assert!(
            page.header("cache-control")
                .starts_with("private, max-age="),
            "{}: {}",
            t.name(),
            page.header("cache-control")
        );
        let variant = body
            .split("data-experiment=\"")
            .nth(1)
            .and_then(|rest| rest.split('"').next())
            .unwrap_or_default()
            .to_string();
        assert_eq!(
            variant,
            format!("layout={}", variant_of("layout", &format!("sub:{sub}"))),
            "{}: the fragment's experiment is the subject's",
            t.name()
        );
        variants.insert(variant);
        if sub == "alice" {
            etag = page.header("etag").to_string();
        }
    }
    assert_eq!(
        t.origin_requests(DASHBOARD).await,
        1,
        "{}: one template",
        t.name()
    );
    assert_eq!(
        t.origin_requests(SUMMARY).await,
        2,
        "{}: a summary per subject",
        t.name()
    );
    assert_eq!(
        t.origin_requests(NEWS).await,
        variants.len() as u64,
        "{}: the news once per variant",
        t.name()
    );
    let token = format!("Bearer {}", common::demo_token("alice"));
    let revalidated = t
        .get_with(
            DASHBOARD,
            &[("authorization", &token), ("if-none-match", &etag)],
        )
        .await;
    assert_eq!(
        revalidated.status,
        304,
        "{}: the composed page's ETag",
        t.name()
    );
    let anonymous = t.get(DASHBOARD).await;
    assert_eq!(
        anonymous.status,
        401,
        "{}: the page's own route needs a token",
        t.name()
    );
}

/// An anonymous visitor gets the edge's cookie and keeps one variant with it; a forced
/// variant reaches the origin; the variant is the one the core computes natively.
pub async fn sticky_experiment(t: &impl Target) {
    let first = t.get(NEWS).await;
    assert_eq!(first.status, 200, "{}", t.name());
    let set_cookie = first.header("set-cookie").to_string();
    let id = set_cookie
        .strip_prefix("edge_uid=")
        .and_then(|rest| rest.split(';').next())
        .unwrap_or_else(|| panic!("{}: a visitor cookie, got {set_cookie:?}", t.name()))
        .to_string();
    let expected = format!(
        "data-experiment=\"layout={}\"",
        variant_of("layout", &format!("cookie:{id}"))
    );
    let cookie = format!("edge_uid={id}");
    for _ in 0..3 {
        let again = t.get_with(NEWS, &[("cookie", &cookie)]).await;
        let body = String::from_utf8_lossy(&again.body).into_owned();
        assert!(
            body.contains(&expected),
            "{}: {expected} in {body:.200}",
            t.name()
        );
        assert_eq!(again.header("set-cookie"), "", "{}", t.name());
    }
    let forced = t
        .get_with(
            NEWS,
            &[
                ("x-edge-force-variant", "layout=cards"),
                ("cookie", &cookie),
            ],
        )
        .await;
    assert!(
        String::from_utf8_lossy(&forced.body).contains("data-experiment=\"layout=cards\""),
        "{}",
        t.name()
    );
}

/// One `#[tokio::test]` per scenario for a target built by `$start` (an async expression).
#[macro_export]
macro_rules! scenario_tests {
    ($start:expr) => {
        $crate::scenario_tests!(@each $start;
            miss_then_hit, stale_while_revalidate, stale_if_error, not_modified, sparse_fields,
            compression, jwt_accept_and_reject, cf_country_reaches_the_worker,
            geo_routing_by_cf_country, concurrent_misses, composed_dashboard,
            sticky_experiment);
    };
    (@each $start:expr; $($name:ident),*) => {
        $(
            #[tokio::test]
            async fn $name() {
                let target = $start;
                scenarios::$name(&target).await;
            }
        )*
    };
}
