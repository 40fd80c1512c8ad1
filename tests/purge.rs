//! Purges over real HTTP through the real guest: Cloudflare's body shapes at
//! `POST /__emulator/purge` reach every PoP and tier, every variant and coding; Fastly's soft
//! purge serves stale while one request refreshes; `Cache-Tag` stays between our tiers; and
//! who may call the admin endpoints at all.

mod common;

use common::Emulator;
use serde_json::{json, Value};

/// `public, max-age=60, stale-while-revalidate=30, stale-if-error=600`; tagged
/// `product-N, products` by the origin-stub.
const PRODUCT: &str = "/api/products/1";
const TOKEN: &str = "an-admin-token-of-32-characters!";

impl Emulator {
    async fn purge(&self, body: Value) -> (u16, Value) {
        self.purge_with(body, &[]).await
    }

    async fn purge_with(&self, body: Value, headers: &[(&str, &str)]) -> (u16, Value) {
        let mut request = self
            .client
            .post(format!("{}/__emulator/purge", self.base))
            .json(&body);
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let response = request.send().await.expect("the emulator answers");
        let status = response.status().as_u16();
        (status, response.json().await.expect("a JSON body"))
    }
}

/// Fills the edge and the regional tier with the identity, br and gzip variants of `path`.
async fn warm(emulator: &Emulator, path: &str) {
    for coding in ["identity", "br", "gzip"] {
        let reply = emulator
            .get_with(path, &[("accept-encoding", coding)])
            .await;
        assert_eq!(reply.status, 200);
    }
    let hit = emulator.get_with(path, &[("accept-encoding", "br")]).await;
    assert_eq!(hit.header("cf-cache-status"), "HIT");
}

#[tokio::test]
async fn a_url_purge_removes_the_object_its_variants_and_codings_at_every_tier() {
    let emulator = Emulator::start().await;
    warm(&emulator, PRODUCT).await;
    warm(&emulator, "/api/products/2").await;
    let before = emulator.origin_requests("eu-west", PRODUCT).await;

    let (status, report) = emulator
        .purge(json!({ "files": [format!("{}{PRODUCT}", emulator.base)] }))
        .await;
    assert_eq!(status, 200, "{report}");
    assert_eq!(report["soft"], false);
    // Edge: the identity entry plus its br and gzip variants; regional: the identity entry.
    assert_eq!(report["by_cache"]["edge-fra"], 3, "{report}");
    assert_eq!(report["by_cache"]["regional-eu-central"], 1, "{report}");
    assert_eq!(report["entries"], 4);
    assert_eq!(report["paths"], 1);

    let refill = emulator
        .get_with(PRODUCT, &[("accept-encoding", "br")])
        .await;
    assert_eq!(refill.header("cf-cache-status"), "MISS");
    assert!(
        refill
            .header("cache-status")
            .starts_with("regional-eu-central; fwd=uri-miss"),
        "the regional copy went too: {}",
        refill.header("cache-status")
    );
    assert_eq!(
        emulator.origin_requests("eu-west", PRODUCT).await,
        before + 1,
        "the first request after the purge went to the origin"
    );
    let other = emulator
        .get_with("/api/products/2", &[("accept-encoding", "br")])
        .await;
    assert_eq!(
        other.header("cf-cache-status"),
        "HIT",
        "another URL is untouched"
    );
    let stats = emulator.stats().await;
    assert_eq!(stats["purges"]["purges"], 1);
    assert_eq!(stats["purges"]["entries"], 4);
    assert_eq!(stats["purges"]["origin_refetches"], 1);
}

#[tokio::test]
async fn tags_prefixes_and_everything_reach_what_they_name() {
    let emulator = Emulator::start().await;
    for path in ["/api/products/1", "/api/products/2", "/api/products?page=1"] {
        warm(&emulator, path).await;
    }
    let first = emulator.get(PRODUCT).await;
    assert_eq!(
        first.header("cache-tag"),
        "",
        "Cache-Tag is the operator's, not forwarded to clients (as on Cloudflare)"
    );

    let (_, by_tag) = emulator.purge(json!({ "tags": ["Product-2"] })).await;
    assert_eq!(by_tag["paths"], 1, "{by_tag}");
    assert_ne!(
        emulator
            .get("/api/products/2")
            .await
            .header("cf-cache-status"),
        "HIT"
    );
    assert_eq!(emulator.get(PRODUCT).await.header("cf-cache-status"), "HIT");

    let (_, by_prefix) = emulator
        .purge(json!({ "prefixes": ["localhost/api/products/"] }))
        .await;
    assert_eq!(
        by_prefix["paths"], 2,
        "products 1 and 2, not the list: {by_prefix}"
    );
    assert_eq!(
        emulator
            .get("/api/products?page=1")
            .await
            .header("cf-cache-status"),
        "HIT"
    );

    let (_, everything) = emulator.purge(json!({ "purge_everything": true })).await;
    assert!(everything["entries"].as_u64().unwrap() >= 3, "{everything}");
    assert_ne!(
        emulator
            .get("/api/products?page=1")
            .await
            .header("cf-cache-status"),
        "HIT"
    );
}

#[tokio::test]
async fn a_bad_purge_body_is_a_400_that_says_what_to_send() {
    let emulator = Emulator::start().await;
    for body in [
        json!({}),
        json!({ "files": ["/a"], "tags": ["b"] }),
        json!({ "hosts": ["a.example"] }),
        json!({ "files": [""] }),
    ] {
        let (status, reply) = emulator.purge(body.clone()).await;
        assert_eq!(status, 400, "{body}");
        assert_eq!(reply["error"], "invalid_purge");
        assert!(reply["message"].as_str().unwrap().len() > 20, "{reply}");
    }
}

/// A prefix that is not `host/path` (a typo) is refused, not read as "purge everything", and a
/// purge that matches nothing says so instead of looking like one that worked.
#[tokio::test]
async fn a_typo_prefix_is_a_400_and_a_purge_that_reaches_nothing_says_so() {
    let emulator = Emulator::start().await;
    warm(&emulator, PRODUCT).await;
    let (status, reply) = emulator
        .purge(json!({ "prefixes": ["definitely-a-typo"] }))
        .await;
    assert_eq!(status, 400, "{reply}");
    assert_eq!(reply["error"], "invalid_purge");
    let message = reply["message"].as_str().unwrap();
    assert!(message.contains("host/path"), "says the form: {message}");
    let hit = emulator
        .get_with(PRODUCT, &[("accept-encoding", "br")])
        .await;
    assert_eq!(hit.header("cf-cache-status"), "HIT", "nothing was purged");

    let (status, reply) = emulator
        .purge(json!({ "prefixes": ["localhost/api/no-such-thing"] }))
        .await;
    assert_eq!(status, 200, "{reply}");
    assert_eq!(reply["entries"], 0);
    assert!(
        reply["note"]
            .as_str()
            .unwrap()
            .contains("reached no cache entry"),
        "{reply}"
    );
    let (_, reply) = emulator.purge(json!({ "files": [PRODUCT] })).await;
    assert!(reply["entries"].as_u64().unwrap() > 0, "{reply}");
    assert!(reply.get("note").is_none(), "{reply}");
}

#[tokio::test]
async fn soft_purge_serves_stale_while_one_request_refreshes() {
    let emulator = Emulator::start().await;
    let original = emulator.get(PRODUCT).await;
    assert_eq!(emulator.get(PRODUCT).await.header("cf-cache-status"), "HIT");

    let (status, report) = emulator
        .purge(json!({ "files": [PRODUCT], "soft": true }))
        .await;
    assert_eq!(status, 200, "{report}");
    assert_eq!(report["soft"], true);
    assert!(
        report["entries"].as_u64().unwrap() >= 2,
        "edge and regional: {report}"
    );

    // Marked stale, within stale-while-revalidate (30 s): served at once, refreshed behind.
    let stale = emulator.get(PRODUCT).await;
    assert_eq!(stale.status, 200);
    assert_eq!(stale.header("cf-cache-status"), "UPDATING");
    assert_eq!(stale.body, original.body);
    let refreshed = emulator
        .wait_for_stats("the background refresh", |s| {
            s["edge"]["fra"]["background_refreshes"].as_u64() >= Some(1)
        })
        .await;
    assert_eq!(refreshed["purges"]["soft_purges"], 1);
    assert_eq!(
        emulator.get(PRODUCT).await.header("cf-cache-status"),
        "HIT",
        "the refresh stored a fresh copy"
    );
    assert_eq!(
        emulator.origin_requests("eu-west", PRODUCT).await,
        2,
        "one fill, one refresh: the soft purge never emptied the cache"
    );
}

#[tokio::test]
async fn admin_endpoints_need_the_token_when_one_is_set() {
    let emulator = Emulator::start_with(&["--admin-token", TOKEN]).await;
    let (status, reply) = emulator.purge(json!({ "purge_everything": true })).await;
    assert_eq!(status, 403, "no token, even from loopback");
    assert_eq!(reply["error"], "admin_forbidden");
    let (wrong, _) = emulator
        .purge_with(
            json!({ "purge_everything": true }),
            &[("authorization", "Bearer an-admin-token-of-32-characters?")],
        )
        .await;
    assert_eq!(wrong, 403);
    assert_eq!(emulator.get("/__emulator/stats").await.status, 403);
    assert_eq!(
        emulator
            .get_with(
                "/__emulator/clock",
                &[("authorization", &format!("Bearer {TOKEN}"))]
            )
            .await
            .status,
        200
    );
    let (ok, _) = emulator
        .purge_with(
            json!({ "purge_everything": true }),
            &[("authorization", &format!("Bearer {TOKEN}"))],
        )
        .await;
    assert_eq!(ok, 200);
    assert_eq!(
        emulator.get(PRODUCT).await.status,
        200,
        "the edge itself is open"
    );
}

#[tokio::test]
async fn without_a_token_loopback_clients_reach_admin_endpoints() {
    // A client from another address gets 403 (`server::admin` unit tests: tests here talk to
    // 127.0.0.1 only); listening on every interface changes nothing for loopback clients.
    let emulator = Emulator::start_with(&["--listen", "0.0.0.0:0"]).await;
    assert_eq!(emulator.get("/__emulator/stats").await.status, 200);
    let (status, _) = emulator.purge(json!({ "purge_everything": true })).await;
    assert_eq!(status, 200);
}

#[tokio::test]
async fn the_cache_policy_can_forward_cache_tag_to_clients() {
    let policy = common::config_file("forward-tags", "forward_cache_tag = true\nroutes = []\n");
    let emulator = Emulator::start_with(&["--cache-policy", policy.to_str().unwrap()]).await;
    let reply = emulator.get(PRODUCT).await;
    assert_eq!(reply.header("cache-tag"), "product-1, products");
    let hit = emulator.get(PRODUCT).await;
    assert_eq!(hit.header("cf-cache-status"), "HIT");
    assert_eq!(hit.header("cache-tag"), "product-1, products", "hits too");
}

/// What `serve ARGS` wrote on stderr before it printed its address.
async fn start_up_warnings(args: &[&str]) -> String {
    use tokio::io::{AsyncBufReadExt, AsyncReadExt, BufReader};
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_edge-emulator"))
        .args(["serve", "--time-scale", "0"])
        .args(args)
        .env_remove("EDGE_EMULATOR_ADMIN_TOKEN")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("edge-emulator starts");
    let stdout = child.stdout.take().expect("piped stdout");
    let first = tokio::time::timeout(common::TIMEOUT, BufReader::new(stdout).lines().next_line())
        .await
        .expect("it printed its address in time")
        .expect("stdout readable");
    assert!(first.is_some_and(|l| l.starts_with("edge-emulator listening on ")));
    // The warning comes before the address line; whatever stderr holds by now includes it.
    let _ = child.start_kill();
    let mut stderr = String::new();
    let mut pipe = child.stderr.take().expect("piped stderr");
    let _ = tokio::time::timeout(common::TIMEOUT, pipe.read_to_string(&mut stderr)).await;
    stderr
}

#[tokio::test]
async fn serve_warns_when_it_listens_beyond_loopback_without_a_token() {
    let open = start_up_warnings(&["--listen", "0.0.0.0:0"]).await;
    assert!(
        open.contains("warning") && open.contains("--admin-token"),
        "{open}"
    );
    let with_token = start_up_warnings(&["--listen", "0.0.0.0:0", "--admin-token", TOKEN]).await;
    assert!(!with_token.contains("warning"), "{with_token}");
    let loopback = start_up_warnings(&["--listen", "127.0.0.1:0"]).await;
    assert!(!loopback.contains("warning"), "{loopback}");
}
