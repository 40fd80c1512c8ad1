//! The shared scenario suite (`scenarios/`) against the Cloudflare build (workers-rs adapter,
//! worker-build output) running in workerd, with the classic Cache API backed by an in-memory
//! cache service and an origin-stub upstream. The first test builds the worker through
//! scripts/cloudflare-tools.sh (installing the pinned tools under tools/ when missing).

mod common;
mod scenarios;
mod workerd;

use common::Reply;
use scenarios::{Capabilities, Target};
use serde_json::Value;
use workerd::{Workerd, PURGE_TOKEN, SHORT_MAX_AGE, SHORT_SWR};

impl Target for Workerd {
    fn name(&self) -> &'static str {
        "workerd"
    }

    fn capabilities(&self) -> Capabilities {
        Capabilities {
            // The classic Cache API is per data centre, with no tier above it.
            regional_tier: false,
            // Isolates share no lock, so concurrent misses each fetch.
            coalescing: false,
            // DEBUG_GEO_HEADERS is on in the test configuration.
            country_header: true,
        }
    }

    fn default_pop(&self) -> &'static str {
        // No request.cf colo: the adapter's fallback PoP name.
        "cloudflare"
    }

    async fn send(&self, method: &str, path: &str, headers: &[(&str, &str)]) -> Reply {
        Workerd::send(self, method, path, headers).await
    }

    async fn get_from(&self, country: &str, pop: &str, path: &str) -> Reply {
        let cf = serde_json::json!({
            "country": country,
            "colo": pop.to_ascii_uppercase(),
            "continent": "OC",
            "latitude": "-33.86880",
            "longitude": "151.20930",
        })
        .to_string();
        self.get_with(path, &[("cf-blob", &cf)]).await
    }

    async fn origin_requests(&self, path: &str) -> u64 {
        Workerd::origin_requests(self, path)
    }

    async fn set_faults(&self, plan: Value) {
        let url = format!("{}/__origin/faults", self.origin_url);
        let response = self.client.put(url).json(&plan).send().await.unwrap();
        assert_eq!(response.status(), 200, "fault plan accepted");
    }

    async fn age_into_swr(&self) {
        // Half-way into stale-while-revalidate.
        tokio::time::sleep(SHORT_MAX_AGE + SHORT_SWR / 2).await
    }

    async fn age_past_swr(&self) {
        tokio::time::sleep(SHORT_MAX_AGE + SHORT_SWR + std::time::Duration::from_millis(500)).await
    }
}

scenario_tests!(Workerd::start().await);

/// The worker's slots really live in the Cache API (the cache service saw them), not in
/// isolate memory: a hit is a cache-service hit.
#[tokio::test]
async fn cache_slots_go_through_the_cache_api() {
    let workerd = Workerd::start().await;
    let first = workerd.get(scenarios::PRODUCT).await;
    assert_eq!(first.status, 200);
    let puts = workerd
        .cache
        .puts
        .load(std::sync::atomic::Ordering::Relaxed);
    assert!(puts >= 1, "the MISS stored a slot: {puts}");
    let hits_before = workerd
        .cache
        .hits
        .load(std::sync::atomic::Ordering::Relaxed);
    let second = workerd.get(scenarios::PRODUCT).await;
    assert_eq!(second.header("cf-cache-status"), "HIT");
    assert!(
        workerd
            .cache
            .hits
            .load(std::sync::atomic::Ordering::Relaxed)
            > hits_before
    );
    assert_eq!(second.header("x-edge-colo"), "cloudflare");
}

#[tokio::test]
async fn the_purge_route_deletes_a_url_in_this_data_centre_behind_its_secret() {
    let workerd = Workerd::start().await;
    workerd.get(scenarios::PRODUCT).await;
    assert_eq!(
        workerd
            .get(scenarios::PRODUCT)
            .await
            .header("cf-cache-status"),
        "HIT"
    );
    assert!(
        workerd
            .cache
            .cache_tags()
            .iter()
            .any(|t| t.contains("product-1")),
        "slots carry the origin's Cache-Tag, for Cloudflare's purge by tag: {:?}",
        workerd.cache.cache_tags()
    );
    let body = format!(r#"{{"files": ["{}"]}}"#, scenarios::PRODUCT);
    let purge = |authorization: Option<String>, body: String| {
        let mut request = workerd
            .client
            .post(format!("{}/__edge/purge", workerd.base))
            .body(body);
        if let Some(value) = authorization {
            request = request.header("authorization", value);
        }
        request.send()
    };
    let refused = purge(None, body.clone()).await.unwrap();
    assert_eq!(refused.status(), 403);
    let by_tag = purge(
        Some(format!("Bearer {PURGE_TOKEN}")),
        r#"{"tags": ["product-1"]}"#.into(),
    )
    .await
    .unwrap();
    assert_eq!(by_tag.status(), 501, "tags go through the zone purge API");
    let origin_before = workerd.origin_requests(scenarios::PRODUCT);
    let purged = purge(Some(format!("Bearer {PURGE_TOKEN}")), body)
        .await
        .unwrap();
    assert_eq!(purged.status(), 200);
    let answer: serde_json::Value = purged.json().await.unwrap();
    assert_eq!(answer["deleted_keys"], 2, "{answer}");
    let after = workerd.get(scenarios::PRODUCT).await;
    assert_eq!(after.header("cf-cache-status"), "MISS");
    assert_eq!(
        workerd.origin_requests(scenarios::PRODUCT),
        origin_before + 1
    );
    assert_eq!(
        after.header("cache-tag"),
        "",
        "Cache-Tag is not forwarded to clients"
    );
}
