//! A native cache tier: the worker core's RFC 9111 flow running in the host as a shared cache
//! with request coalescing. A regional tier is one between the edge PoPs and the origins; an
//! origin shield is one between regional tiers and the origins. Both are a [`RegionalTier`]:
//! they differ only in their Cache-Status name and in what is upstream of them.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use edge_worker::hops::{Hop, OriginTrip, TierId};
use edge_worker::routing::RoutedTo;
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
    /// Which tier it is (`regional` or `shield`, and its name): its hops say so.
    pub id: TierId,
    /// The core's tier; public so start-up can give it the cache policy.
    pub tier: CacheTier,
    /// The tier's storage; public so benchmarks and tests can seed it.
    pub store: MemoryStore<CacheEntry>,
    /// Where misses go when the worker did not route them (no routing configuration).
    default_origin: String,
    /// Every origin by name: the worker's routing picks one by the fetched URL's host.
    origins: BTreeMap<String, OriginLink>,
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

impl RegionalTier {
    /// A regional tier, `regional-NAME` in Cache-Status; `default_origin` must be a key of
    /// `origins`.
    pub fn new(
        name: &str,
        default_origin: &str,
        origins: BTreeMap<String, OriginLink>,
        network: Arc<Network>,
    ) -> Self {
        Self::named(TierId::regional(name), default_origin, origins, network)
    }

    /// An origin shield, `shield-NAME` in Cache-Status. A miss the worker's routing did not
    /// place goes to the origin of the regional tier that sent it, so putting a shield in
    /// front of tiers never changes which origin serves them; `origins` must not be empty.
    pub fn new_shield(
        name: &str,
        origins: BTreeMap<String, OriginLink>,
        network: Arc<Network>,
    ) -> Self {
        let first = origins.keys().next().cloned().unwrap_or_default();
        Self::named(TierId::shield(name), &first, origins, network)
    }

    fn named(
        id: TierId,
        default_origin: &str,
        origins: BTreeMap<String, OriginLink>,
        network: Arc<Network>,
    ) -> Self {
        Self {
            name: id.name.to_string(),
            tier: CacheTier::new(id.clone(), false),
            id,
            store: MemoryStore::default(),
            default_origin: default_origin.to_string(),
            origins,
            network,
            counters: TierCounters::default(),
            strip_authorization: false,
            caching: true,
            coalescer: Coalescer::new(crate::cdn::coalesce::DEFAULT_WAIT_LIMIT),
            shield: None,
            origin_log: None,
        }
    }

    /// The origin a request goes to: the routed one, else this tier's default.
    pub fn link_for(&self, routed: Option<&RoutedTo>) -> &OriginLink {
        self.link_or(routed, &self.default_origin)
    }

    /// The routed origin, else `fallback`, else this tier's default.
    fn link_or(&self, routed: Option<&RoutedTo>, fallback: &str) -> &OriginLink {
        routed
            .and_then(|to| self.origins.get(&to.0))
            .or_else(|| self.origins.get(fallback))
            .unwrap_or(&self.origins[&self.default_origin])
    }

    /// The round trips from this tier to the origin a request goes to, through its shield if
    /// any.
    pub fn rtt_to_origin(&self, routed: Option<&RoutedTo>) -> Duration {
        match &self.shield {
            Some(shield) => shield.rtt + shield.tier.link_or(routed, &self.default_origin).rtt,
            None => self.link_for(routed).rtt,
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
    pub async fn handle(self: &Arc<Self>, request: Request<Body>) -> TierAnswer {
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
                // A pass-through tier: its hop has no cache outcome, only its origin trip.
                let mut hop = Hop::new(self.id.clone());
                let response = match platform.fetch(request).await {
                    Ok(upstream) => {
                        hop.origin = upstream.origin;
                        upstream.response
                    }
                    Err(error) => edge_worker::WorkerError::Upstream(error.0).to_response(),
                };
                self.counters
                    .record(Some(edge_worker::CfCacheStatus::Dynamic), false);
                return TierAnswer {
                    response,
                    hops: vec![hop],
                    unslept: platform.unslept(),
                };
            }
            let outcome = self.tier.handle(&platform, request).await;
            self.counters.record(outcome.status, outcome.collapsed());
            self.counters
                .record_negative(outcome.status, outcome.negative());
            for task in outcome.deferred {
                let (tier, fallback) = (self.clone(), fallback.clone());
                tokio::spawn(async move {
                    tier.tier
                        .run_deferred(&RegionalPlatform::new(&tier, &fallback), task)
                        .await;
                    crate::cdn::stats::bump(&tier.counters.background_refreshes);
                });
            }
            TierAnswer {
                response: outcome.response,
                hops: outcome.hops,
                unslept: platform.unslept(),
            }
        })
    }
}

/// What a regional tier or shield answers the tier below with.
pub struct TierAnswer {
    pub response: Response<Body>,
    /// The tiers the response passed, origin-nearest first; this tier's hop is last (its
    /// `spent` is for the tier below to set: only it knows the round trip).
    pub hops: Vec<Hop>,
    /// How much simulated time its upstream trips stand for beyond the real time they took
    /// (the RTTs not slept when `time_scale` < 1).
    pub unslept: Duration,
}

type TierFuture<'a> = std::pin::Pin<Box<dyn std::future::Future<Output = TierAnswer> + Send + 'a>>;

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

    /// The simulated upstream time not slept so far.
    fn unslept(&self) -> Duration {
        Duration::from_nanos(self.unslept_ns.load(Ordering::Relaxed))
    }

    /// Crosses `rtt` to run `trip`, which answers with its own unslept time; adds what this
    /// trip did not sleep to the request's, and returns its answer with the whole simulated
    /// time it took (the `dur` the hop reports).
    ///
    /// Timed on the runtime's clock (`tokio::time::Instant`): the OS clock in `serve`, the
    /// paused virtual clock in a replay, where the trip's time is then virtual (RTTs, origin
    /// service time, waits behind a coalesced fetch) and deterministic.
    async fn trip<T, E>(
        &self,
        rtt: Duration,
        trip: impl std::future::Future<Output = Result<(T, Duration), E>>,
    ) -> Result<(T, Duration), E> {
        let network = &self.tier.network;
        let started = tokio::time::Instant::now();
        network.traverse(rtt).await;
        let (answer, inner_unslept) = trip.await?;
        let real = started.elapsed();
        let spent = network.simulated(rtt, real) + inner_unslept;
        let unslept = u64::try_from(spent.saturating_sub(real).as_nanos()).unwrap_or(u64::MAX);
        self.unslept_ns.fetch_add(unslept, Ordering::Relaxed);
        Ok((answer, spent))
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
        // The core works on its own copy of the entry (the tier may change it).
        self.tier.store.get(key, self.now()).map(|e| (*e).clone())
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
            let (answer, spent) = self
                .trip(shield.rtt, async move {
                    let answer = via_shield.await;
                    let unslept = answer.unslept;
                    Ok::<_, FetchError>((answer, unslept))
                })
                .await?;
            let mut hops = answer.hops;
            if let Some(shield_hop) = hops.last_mut() {
                shield_hop.spent = Some(spent);
            }
            return Ok(Upstream::via(answer.response, hops));
        }
        if tier.strip_authorization {
            request.headers_mut().remove(http::header::AUTHORIZATION);
        }
        let link = tier.link_or(request.extensions().get::<RoutedTo>(), self.fallback);
        crate::cdn::stats::bump(&link.counters.requests);
        let sent = tier.origin_log.as_ref().map(|log| {
            let fetch = crate::cdn::origin_log::OriginFetch {
                at: tokio::time::Instant::now(),
                from: tier.id.clone(),
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
        let (response, spent) = self.trip(link.rtt, to_origin).await?;
        Ok(Upstream {
            origin: Some(OriginTrip {
                name: Arc::from(link.origin.name.as_str()),
                spent,
            }),
            ..Upstream::new(response)
        })
    }

    fn log(&self, level: LogLevel, message: &str) {
        if level != LogLevel::Debug {
            eprintln!("[{level:?}] {message}");
        }
    }
}
