//! A regional tier: the worker core's RFC 9111 flow running natively in the host as a shared
//! cache between the edge PoPs and the origin, with request coalescing.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use edge_worker::routing::Router;
use edge_worker::{Body, CacheEntry, CacheTier, FetchError, Locked, LogLevel, Platform, Upstream};
use http::{HeaderValue, Request, Response};

use crate::cdn::coalesce::{Coalescer, FetchGuard};
use crate::cdn::network::Network;
use crate::cdn::origins::OriginHandle;
use crate::cdn::stats::{OriginCounters, TierCounters};
use crate::cdn::store::MemoryStore;

/// An origin this tier can reach, and the round trip to it.
pub struct OriginLink {
    pub origin: Arc<OriginHandle>,
    pub rtt: Duration,
    pub counters: Arc<OriginCounters>,
}

pub struct RegionalTier {
    pub name: String,
    /// The core's tier; public so start-up can give it the cache policy.
    pub tier: CacheTier,
    /// The tier's storage; public so benchmarks and tests can seed it.
    pub store: MemoryStore<CacheEntry>,
    /// Where misses go when the worker did not route them (no routing configuration).
    default_origin: String,
    /// Every origin by name: the worker's routing picks one by the fetched URL's host.
    origins: BTreeMap<String, OriginLink>,
    /// Names the origin a routed URL's authority stands for.
    router: Option<Arc<Router>>,
    network: Arc<Network>,
    pub counters: TierCounters,
    /// Drop the client's Authorization on the hop to the origin (the auth configuration's
    /// `forward_authorization = false`); it travels between our tiers for RFC 9111 §3.5.
    pub strip_authorization: bool,
    /// `false`: forward every request without caching (an edge-only CDN).
    pub caching: bool,
    /// One fetch per key at a time; the others wait (bounded) and read what it stored.
    pub coalescer: Coalescer,
}

impl RegionalTier {
    /// `default_origin` must be a key of `origins`.
    pub fn new(
        name: &str,
        default_origin: &str,
        origins: BTreeMap<String, OriginLink>,
        router: Option<Arc<Router>>,
        network: Arc<Network>,
    ) -> Self {
        Self {
            name: name.to_string(),
            tier: CacheTier::new(format!("regional-{name}"), false),
            store: MemoryStore::default(),
            default_origin: default_origin.to_string(),
            origins,
            router,
            network,
            counters: TierCounters::default(),
            strip_authorization: false,
            caching: true,
            coalescer: Coalescer::new(crate::cdn::coalesce::DEFAULT_WAIT_LIMIT),
        }
    }

    /// The origin a request goes to: the routed one its URL names, else this tier's default.
    pub fn link_for(&self, uri: &http::Uri) -> &OriginLink {
        uri.authority()
            .zip(self.router.as_deref())
            .and_then(|(authority, router)| router.origin_for_authority(authority.as_str()))
            .and_then(|spec| self.origins.get(&spec.name))
            .unwrap_or(&self.origins[&self.default_origin])
    }

    /// Handles a request from an edge PoP; background refreshes run on their own task.
    pub async fn handle(self: &Arc<Self>, request: Request<Body>) -> Response<Body> {
        self.handle_timed(request).await.0
    }

    /// Handles a request and says how much simulated time its origin hops stand for beyond
    /// the real time they took (the RTTs not slept when `time_scale` < 1), so the PoP's
    /// Server-Timing covers the whole path to the origin.
    pub async fn handle_timed(
        self: &Arc<Self>,
        request: Request<Body>,
    ) -> (Response<Body>, Duration) {
        let platform = RegionalPlatform::new(self);
        if !self.caching {
            let response = match platform.fetch(request).await {
                Ok(upstream) => upstream.response,
                Err(error) => edge_worker::WorkerError::Upstream(error.0).to_response(),
            };
            self.counters
                .record(Some(edge_worker::CfCacheStatus::Dynamic), false);
            let unslept = Duration::from_nanos(platform.unslept_ns.load(Ordering::Relaxed));
            return (response, unslept);
        }
        let outcome = self.tier.handle(&platform, request).await;
        self.counters.record(outcome.status, outcome.collapsed);
        self.counters
            .record_negative(outcome.status, outcome.negative);
        for task in outcome.deferred {
            let tier = self.clone();
            tokio::spawn(async move {
                tier.tier
                    .run_deferred(&RegionalPlatform::new(&tier), task)
                    .await;
                crate::cdn::stats::bump(&tier.counters.background_refreshes);
            });
        }
        let unslept = Duration::from_nanos(platform.unslept_ns.load(Ordering::Relaxed));
        (outcome.response, unslept)
    }
}

/// The core's ports for a regional tier, for one request.
struct RegionalPlatform<'a> {
    tier: &'a RegionalTier,
    /// Simulated origin time not slept, in nanoseconds (atomic: host futures must be Send).
    unslept_ns: AtomicU64,
}

impl<'a> RegionalPlatform<'a> {
    fn new(tier: &'a RegionalTier) -> Self {
        Self {
            tier,
            unslept_ns: AtomicU64::new(0),
        }
    }
}

impl Platform for RegionalPlatform<'_> {
    type Guard = FetchGuard;

    fn now(&self) -> SystemTime {
        self.tier.network.clock.now()
    }

    fn random(&self) -> u64 {
        self.tier.network.random()
    }

    async fn cache_get(&self, key: &str) -> Option<CacheEntry> {
        self.tier.store.get(key, self.now())
    }

    async fn cache_put(&self, key: &str, entry: CacheEntry, keep: Duration) {
        self.tier.store.put(key, entry, self.now() + keep);
    }

    async fn cache_delete(&self, key: &str) {
        self.tier.store.remove(key);
    }

    async fn lock(&self, key: &str) -> Locked<FetchGuard> {
        match self.tier.coalescer.lock(key).await {
            Some(guard) => Locked::Write(guard),
            None => Locked::Read,
        }
    }

    async fn fetch(&self, mut request: Request<Body>) -> Result<Upstream, FetchError> {
        let tier = self.tier;
        if tier.strip_authorization {
            request.headers_mut().remove(http::header::AUTHORIZATION);
        }
        crate::cdn::stats::bump(&tier.counters.upstream_requests);
        let link = tier.link_for(request.uri());
        crate::cdn::stats::bump(&link.counters.requests);
        let started = Instant::now();
        tier.network.traverse(link.rtt).await;
        let mut response = link.origin.send(request).await.map_err(FetchError)?;
        let real = started.elapsed();
        let spent = tier.network.simulated(link.rtt, real);
        let unslept = u64::try_from(spent.saturating_sub(real).as_nanos()).unwrap_or(u64::MAX);
        self.unslept_ns.fetch_add(unslept, Ordering::Relaxed);
        let timing = format!(
            "origin;dur={:.1};desc=\"{}\"",
            spent.as_secs_f64() * 1000.0,
            link.origin.name
        );
        if let Ok(value) = HeaderValue::from_str(&timing) {
            response.headers_mut().append("server-timing", value);
        }
        Ok(Upstream::new(response))
    }

    fn log(&self, level: LogLevel, message: &str) {
        if level != LogLevel::Debug {
            eprintln!("[{level:?}] {message}");
        }
    }
}
