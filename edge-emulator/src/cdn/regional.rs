//! A native cache tier: the worker core's RFC 9111 flow running in the host as a shared cache
//! with request coalescing. A regional tier is one between the edge PoPs and the origins; an
//! origin shield is one between regional tiers and the origins. Both are a [`RegionalTier`]:
//! they differ only in their Cache-Status name and in what is upstream of them.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use edge_worker::routing::Router;
use edge_worker::{Body, CacheEntry, CacheTier, FetchError, Locked, LogLevel, Platform, Upstream};
use http::{Request, Response};

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

/// The shield a regional tier sends its misses to, and the round trip to it.
pub struct ShieldLink {
    pub tier: Arc<RegionalTier>,
    pub rtt: Duration,
}

/// A regional tier or an origin shield (see the module documentation).
pub struct RegionalTier {
    pub name: String,
    /// Its Cache-Status name: `regional-NAME` or `shield-NAME`.
    pub member: String,
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
    /// The shield this tier's misses go to instead of the origins (`None`: straight to them).
    pub shield: Option<ShieldLink>,
    /// Where the simulator records this tier's origin fetches (`None` in serve mode).
    pub origin_log: Option<Arc<crate::cdn::origin_log::OriginLog>>,
}

/// An origin shield is a native cache tier in front of the origins.
pub type ShieldTier = RegionalTier;

impl RegionalTier {
    /// A regional tier, `regional-NAME` in Cache-Status; `default_origin` must be a key of
    /// `origins`.
    pub fn new(
        name: &str,
        default_origin: &str,
        origins: BTreeMap<String, OriginLink>,
        router: Option<Arc<Router>>,
        network: Arc<Network>,
    ) -> Self {
        Self::named(
            format!("regional-{name}"),
            name,
            default_origin,
            origins,
            router,
            network,
        )
    }

    /// An origin shield, `shield-NAME` in Cache-Status. A miss the worker's routing did not
    /// place goes to the origin of the regional tier that sent it, so putting a shield in
    /// front of tiers never changes which origin serves them; `origins` must not be empty.
    pub fn new_shield(
        name: &str,
        origins: BTreeMap<String, OriginLink>,
        router: Option<Arc<Router>>,
        network: Arc<Network>,
    ) -> Self {
        let first = origins.keys().next().cloned().unwrap_or_default();
        Self::named(
            format!("shield-{name}"),
            name,
            &first,
            origins,
            router,
            network,
        )
    }

    fn named(
        member: String,
        name: &str,
        default_origin: &str,
        origins: BTreeMap<String, OriginLink>,
        router: Option<Arc<Router>>,
        network: Arc<Network>,
    ) -> Self {
        Self {
            name: name.to_string(),
            tier: CacheTier::new(member.clone(), false),
            member,
            store: MemoryStore::default(),
            default_origin: default_origin.to_string(),
            origins,
            router,
            network,
            counters: TierCounters::default(),
            strip_authorization: false,
            caching: true,
            coalescer: Coalescer::new(crate::cdn::coalesce::DEFAULT_WAIT_LIMIT),
            shield: None,
            origin_log: None,
        }
    }

    /// The origin a request goes to: the routed one its URL names, else this tier's default.
    pub fn link_for(&self, uri: &http::Uri) -> &OriginLink {
        self.link_or(uri, &self.default_origin)
    }

    /// The routed origin `uri` names, else `fallback`, else this tier's default.
    fn link_or(&self, uri: &http::Uri, fallback: &str) -> &OriginLink {
        uri.authority()
            .zip(self.router.as_deref())
            .and_then(|(authority, router)| router.origin_for_authority(authority.as_str()))
            .and_then(|spec| self.origins.get(&spec.name))
            .or_else(|| self.origins.get(fallback))
            .unwrap_or(&self.origins[&self.default_origin])
    }

    /// The round trips from this tier to the origin `uri` goes to, through its shield if any.
    pub fn rtt_to_origin(&self, uri: &http::Uri) -> Duration {
        match &self.shield {
            Some(shield) => shield.rtt + shield.tier.link_or(uri, &self.default_origin).rtt,
            None => self.link_for(uri).rtt,
        }
    }

    /// The round trip to this tier's farthest origin.
    pub fn longest_origin_rtt(&self) -> Duration {
        self.origins
            .values()
            .map(|l| l.rtt)
            .max()
            .unwrap_or_default()
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
        self.serve(request, self.default_origin.clone()).await
    }

    /// [`Self::handle_timed`] for a request whose unrouted misses go to `fallback` (a shield
    /// serves the origin of the regional tier that asked). Boxed as a `Send` trait object: a
    /// tier's future holds its shield's, which is of the same type, and only a named type lets
    /// the compiler see that it is `Send`.
    fn serve(self: &Arc<Self>, request: Request<Body>, fallback: String) -> TierFuture<'_> {
        Box::pin(async move {
            let platform = RegionalPlatform::new(self, &fallback);
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
                let (tier, fallback) = (self.clone(), fallback.clone());
                tokio::spawn(async move {
                    tier.tier
                        .run_deferred(&RegionalPlatform::new(&tier, &fallback), task)
                        .await;
                    crate::cdn::stats::bump(&tier.counters.background_refreshes);
                });
            }
            let unslept = Duration::from_nanos(platform.unslept_ns.load(Ordering::Relaxed));
            (outcome.response, unslept)
        })
    }
}

/// A tier's answer with its unslept time.
type TierFuture<'a> =
    std::pin::Pin<Box<dyn std::future::Future<Output = (Response<Body>, Duration)> + Send + 'a>>;

/// The core's ports for a regional tier or shield, for one request.
struct RegionalPlatform<'a> {
    tier: &'a RegionalTier,
    /// The origin of misses that routing did not place.
    fallback: &'a str,
    /// Simulated upstream time not slept, in nanoseconds (atomic: host futures must be Send).
    unslept_ns: AtomicU64,
}

impl<'a> RegionalPlatform<'a> {
    fn new(tier: &'a RegionalTier, fallback: &'a str) -> Self {
        Self {
            tier,
            fallback,
            unslept_ns: AtomicU64::new(0),
        }
    }

    /// Crosses `rtt` to run `hop`, which answers with its own unslept time; adds what this
    /// hop did not sleep to the request's, and puts `NAME;dur=` (the hop's whole simulated
    /// time) first in the response's Server-Timing.
    ///
    /// Timed on the runtime's clock (`tokio::time::Instant`): the OS clock in `serve`, the
    /// paused virtual clock in a replay, where the hop's `dur` is then its virtual time
    /// (RTTs, origin service time, waits behind a coalesced fetch) and deterministic.
    async fn hop<E>(
        &self,
        rtt: Duration,
        metric: &str,
        desc: &str,
        hop: impl std::future::Future<Output = Result<(Response<Body>, Duration), E>>,
    ) -> Result<Response<Body>, E> {
        let network = &self.tier.network;
        let started = tokio::time::Instant::now();
        network.traverse(rtt).await;
        let (mut response, inner_unslept) = hop.await?;
        let real = started.elapsed();
        let spent = network.simulated(rtt, real) + inner_unslept;
        let unslept = u64::try_from(spent.saturating_sub(real).as_nanos()).unwrap_or(u64::MAX);
        self.unslept_ns.fetch_add(unslept, Ordering::Relaxed);
        let timing = format!(
            "{metric};dur={:.1};desc=\"{desc}\"",
            spent.as_secs_f64() * 1000.0
        );
        edge_worker::headers::prepend_server_timing(response.headers_mut(), &timing);
        Ok(response)
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
        crate::cdn::stats::bump(&tier.counters.upstream_requests);
        if let Some(shield) = &tier.shield {
            // Authorization travels on to the shield, which is one of our tiers (RFC 9111
            // §3.5); the shield drops it on its own hop to the origin.
            let via_shield = shield.tier.serve(request, tier.default_origin.clone());
            let response = self
                .hop(shield.rtt, "shield", &shield.tier.name, async move {
                    Ok::<_, FetchError>(via_shield.await)
                })
                .await?;
            return Ok(Upstream::new(response));
        }
        if tier.strip_authorization {
            request.headers_mut().remove(http::header::AUTHORIZATION);
        }
        let link = tier.link_or(request.uri(), self.fallback);
        crate::cdn::stats::bump(&link.counters.requests);
        let sent = tier.origin_log.as_ref().map(|log| {
            let fetch = crate::cdn::origin_log::OriginFetch {
                at: tokio::time::Instant::now(),
                from: tier.member.clone(),
                method: request.method().clone(),
                uri: request.uri().clone(),
                request_headers: request.headers().clone(),
                status: None,
                response_headers: http::HeaderMap::new(),
            };
            (log, fetch)
        });
        let to_origin = async {
            let result = link.origin.send(request).await;
            if let Some((log, mut fetch)) = sent {
                if let Ok(response) = &result {
                    fetch.status = Some(response.status());
                    fetch.response_headers = response.headers().clone();
                }
                log.record(fetch);
            }
            Ok((result.map_err(FetchError)?, Duration::ZERO))
        };
        let response = self
            .hop(link.rtt, "origin", &link.origin.name, to_origin)
            .await?;
        Ok(Upstream::new(response))
    }

    fn log(&self, level: LogLevel, message: &str) {
        if level != LogLevel::Debug {
            eprintln!("[{level:?}] {message}");
        }
    }
}
