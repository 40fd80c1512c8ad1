//! One edge PoP of the CDN model: its cache (what the worker sees through its cache port),
//! its coalescer, the passive health of the origins it routes to, and its way upstream
//! through a regional tier.

use std::collections::{BTreeMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use edge_worker::hops::Hop;
use edge_worker::routing::{Admission, HealthBoard, OriginSpec, RoutedTo, Router};

use crate::bindings::types;
use crate::cdn::coalesce::Coalescer;
use crate::cdn::network::Network;
use crate::cdn::regional::RegionalTier;
use crate::cdn::stats::{bump, OriginCounters, TierCounters};
use crate::cdn::store::MemoryStore;

pub struct PopNode {
    pub name: String,
    /// Every coding, computed once per distinct input (shared by every PoP).
    pub codings: Arc<crate::cdn::coding::CodingMemo>,
    pub cache: MemoryStore<edge_worker::CacheEntry>,
    pub regional: Arc<RegionalTier>,
    pub rtt_to_regional: Duration,
    pub network: Arc<Network>,
    pub counters: TierCounters,
    /// One fetch per key at a time across this PoP's instances (the worker's `cache.lock`).
    pub coalescer: Coalescer,
    /// URLs whose background refresh is running, so a burst of stale hits refreshes once.
    pub refreshing: Mutex<HashSet<String>>,
    /// The worker's auth configuration as JSON; `None`: every route is public.
    pub auth_config: Option<Arc<str>>,
    /// The cache policy (JSON) the worker reads; `None`: no jitter, no negative caching.
    pub cache_policy: Option<Arc<str>>,
    /// Geo routing between regional origins; `None`: misses go to the regional tier's origin.
    pub routing: Option<Arc<PopRouting>>,
    /// Where the PoP is (lat, lon): the location the worker routes from.
    pub location: (f64, f64),
}

/// A PoP's side of geo routing: the configuration the worker reads, and the passive health
/// that outlives each request and instance.
pub struct PopRouting {
    /// The routing configuration as JSON, for the worker.
    pub config_json: Arc<str>,
    /// The same, prepared: which origin a routed URL is for, and its timeouts.
    pub router: Arc<Router>,
    /// This PoP's circuit breakers, one per origin.
    pub health: HealthBoard,
    /// Counters per origin, shared by every PoP.
    pub origins: Arc<BTreeMap<String, Arc<OriginCounters>>>,
}

impl PopRouting {
    pub fn counters(&self, origin: &str) -> Option<&OriginCounters> {
        self.origins.get(origin).map(|c| &**c)
    }
}

/// What the regional tier answered: the response and the tiers it passed, origin-nearest
/// first (the regional tier's hop last, with the trip's time).
pub struct Answer {
    pub response: http::Response<edge_worker::Body>,
    pub hops: Vec<Hop>,
}

/// One trip from a PoP's worker through its regional tier and back.
pub struct Trip {
    pub result: Result<Answer, String>,
    /// Wall time the trip took.
    pub real: Duration,
    /// The simulated time it stands for: from the runtime's clock (virtual in a replay, so
    /// deterministic there), plus the RTTs not slept when `time_scale` < 1.
    pub simulated: Duration,
}

impl Trip {
    /// A usable answer: a response that is not a 5xx.
    fn usable(&self) -> bool {
        self.result
            .as_ref()
            .is_ok_and(|a| !a.response.status().is_server_error())
    }
}

/// The first usable answer of a hedged pair.
pub struct HedgedTrip {
    pub trip: Trip,
    pub backup_won: bool,
    /// Simulated time the client of this hop waited: the hedge delay too when the backup won.
    pub simulated: Duration,
}

impl PopNode {
    /// The origin geo routing aimed a request at, when routing is on.
    fn routed_origin<B>(&self, request: &http::Request<B>) -> Option<&OriginSpec> {
        let routing = self.routing.as_deref()?;
        let to = request.extensions().get::<RoutedTo>()?;
        routing.router.origin_named(&to.0)
    }

    /// Sends `request` to the regional tier, bounded by the routed origin's first-byte
    /// timeout (plus the scaled round trips on the way).
    pub async fn trip(&self, request: http::Request<edge_worker::Body>) -> Trip {
        bump(&self.counters.upstream_requests);
        let started = Instant::now();
        // The runtime's clock: the OS clock in `serve`, the virtual one in a replay.
        let on_clock = tokio::time::Instant::now();
        let limit = self.routed_origin(&request).map(|origin| {
            let routed = request.extensions().get::<RoutedTo>();
            let rtts = self.rtt_to_regional + self.regional.rtt_to_origin(routed);
            (
                origin.name.clone(),
                origin.first_byte_timeout,
                origin.first_byte_timeout + rtts.mul_f64(self.network.time_scale),
            )
        });
        let trip = async {
            self.network.traverse(self.rtt_to_regional).await;
            self.regional.handle(request).await
        };
        let (result, unslept) = match limit {
            Some((origin, timeout, bound)) => match tokio::time::timeout(bound, trip).await {
                Ok(answer) => {
                    let unslept = answer.unslept;
                    (Ok(answer), unslept)
                }
                Err(_) => (
                    Err(format!(
                        "origin {origin} sent no response head within {} ms",
                        timeout.as_millis()
                    )),
                    Duration::ZERO,
                ),
            },
            None => {
                let answer = trip.await;
                let unslept = answer.unslept;
                (Ok(answer), unslept)
            }
        };
        let real = started.elapsed();
        let elapsed = on_clock.elapsed();
        let simulated = self.network.simulated(self.rtt_to_regional, elapsed) + unslept;
        let result = result.map(|answer| {
            let mut hops = answer.hops;
            if let Some(regional) = hops.last_mut() {
                regional.spent = Some(simulated);
            }
            Answer {
                response: answer.response,
                hops,
            }
        });
        Trip {
            result,
            real,
            simulated,
        }
    }

    /// Sends `primary`; if it has not answered within `after`, sends `backup` too. The first
    /// usable answer wins; an unusable one waits for the other.
    pub async fn trip_hedged(
        &self,
        primary: http::Request<edge_worker::Body>,
        backup: http::Request<edge_worker::Body>,
        after: Duration,
    ) -> HedgedTrip {
        let started = Instant::now();
        let backup_counters = self
            .routed_origin(&backup)
            .and_then(|o| self.routing.as_deref()?.counters(&o.name));
        let first = self.trip(primary);
        tokio::pin!(first);
        let (mut hop, backup_won) = tokio::select! {
            hop = &mut first => (hop, false),
            () = tokio::time::sleep(after) => {
                if let Some(counters) = backup_counters {
                    bump(&counters.hedges_sent);
                }
                let second = self.trip(backup);
                tokio::pin!(second);
                tokio::select! {
                    hop = &mut first => if hop.usable() { (hop, false) } else { (second.await, true) },
                    hop = &mut second => if hop.usable() { (hop, true) } else { (first.await, false) },
                }
            }
        };
        if let (true, Some(counters)) = (backup_won, backup_counters) {
            bump(&counters.hedges_won);
        }
        hop.real = started.elapsed();
        let simulated = if backup_won {
            after + hop.simulated
        } else {
            hop.simulated
        };
        HedgedTrip {
            trip: hop,
            backup_won,
            simulated,
        }
    }

    /// Whether `origin` may be tried now (its circuit at this PoP), else how long until it may.
    pub fn admit(&self, origin: &str) -> Result<(), Duration> {
        let Some(routing) = &self.routing else {
            return Ok(());
        };
        match routing.health.admit(origin, self.network.clock.now()) {
            Admission::Reject { retry_after } => Err(retry_after),
            Admission::Allow | Admission::Probe => Ok(()),
        }
    }

    /// How a request to `origin` went, for its circuit at this PoP.
    pub fn report(&self, origin: &str, ok: bool) {
        if let Some(routing) = &self.routing {
            routing.health.record(origin, self.network.clock.now(), ok);
            if let (false, Some(counters)) = (ok, routing.counters(origin)) {
                bump(&counters.failures);
            }
        }
    }

    /// The request context a PoP gives the worker: its name and location, the client's
    /// country.
    pub fn context(&self, country: Option<String>) -> types::RequestContext {
        types::RequestContext {
            pop: self.name.clone(),
            country,
            continent: None,
            // Clients are placed at their PoP: the emulator knows no finer location.
            latitude: Some(self.location.0),
            longitude: Some(self.location.1),
        }
    }
}
