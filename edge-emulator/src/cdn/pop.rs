//! One edge PoP of the CDN model: its cache (what the worker sees through its cache port),
//! its coalescer, the passive health of the origins it routes to, and its way upstream
//! through a regional tier.

use std::collections::{BTreeMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use edge_worker::routing::{Admission, HealthBoard, OriginSpec, Router};

use crate::bindings::types;
use crate::cdn::coalesce::Coalescer;
use crate::cdn::network::Network;
use crate::cdn::regional::RegionalTier;
use crate::cdn::stats::{bump, OriginCounters, TierCounters};
use crate::cdn::store::MemoryStore;

pub struct PopNode {
    pub name: String,
    pub cache: MemoryStore<types::CacheEntry>,
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

/// One trip from a PoP's worker through its regional tier and back.
pub struct Hop {
    pub result: Result<http::Response<edge_worker::Body>, String>,
    /// Wall time the trip took.
    pub real: Duration,
    /// The simulated time it stands for: from the runtime's clock (virtual in a replay, so
    /// deterministic there), plus the RTTs not slept when `time_scale` < 1.
    pub simulated: Duration,
}

impl Hop {
    /// A usable answer: a response that is not a 5xx.
    fn usable(&self) -> bool {
        self.result
            .as_ref()
            .is_ok_and(|r| !r.status().is_server_error())
    }
}

/// The first usable answer of a hedged pair.
pub struct HedgedHop {
    pub hop: Hop,
    pub backup_won: bool,
    /// Simulated time the client of this hop waited: the hedge delay too when the backup won.
    pub simulated: Duration,
}

impl PopNode {
    /// The routed origin a URL is for, when routing is on and the URL names one.
    fn routed_origin(&self, uri: &http::Uri) -> Option<&OriginSpec> {
        let routing = self.routing.as_deref()?;
        routing
            .router
            .origin_for_authority(uri.authority()?.as_str())
    }

    /// Sends `request` to the regional tier, bounded by the routed origin's first-byte
    /// timeout (plus the scaled round trips on the way).
    pub async fn hop(&self, request: http::Request<edge_worker::Body>) -> Hop {
        bump(&self.counters.upstream_requests);
        let started = Instant::now();
        // The runtime's clock: the OS clock in `serve`, the virtual one in a replay.
        let on_clock = tokio::time::Instant::now();
        let limit = self.routed_origin(request.uri()).map(|origin| {
            let rtts = self.rtt_to_regional + self.regional.rtt_to_origin(request.uri());
            (
                origin.name.clone(),
                origin.first_byte_timeout,
                origin.first_byte_timeout + rtts.mul_f64(self.network.time_scale),
            )
        });
        let trip = async {
            self.network.traverse(self.rtt_to_regional).await;
            self.regional.handle_timed(request).await
        };
        let (result, unslept) = match limit {
            Some((origin, timeout, bound)) => match tokio::time::timeout(bound, trip).await {
                Ok((response, unslept)) => (Ok(response), unslept),
                Err(_) => (
                    Err(format!(
                        "origin {origin} sent no response head within {} ms",
                        timeout.as_millis()
                    )),
                    Duration::ZERO,
                ),
            },
            None => {
                let (response, unslept) = trip.await;
                (Ok(response), unslept)
            }
        };
        let real = started.elapsed();
        let elapsed = on_clock.elapsed();
        Hop {
            result,
            real,
            simulated: self.network.simulated(self.rtt_to_regional, elapsed) + unslept,
        }
    }

    /// Sends `primary`; if it has not answered within `after`, sends `backup` too. The first
    /// usable answer wins; an unusable one waits for the other.
    pub async fn hop_hedged(
        &self,
        primary: http::Request<edge_worker::Body>,
        backup: http::Request<edge_worker::Body>,
        after: Duration,
    ) -> HedgedHop {
        let started = Instant::now();
        let backup_counters = self
            .routed_origin(backup.uri())
            .and_then(|o| self.routing.as_deref()?.counters(&o.name));
        let first = self.hop(primary);
        tokio::pin!(first);
        let (mut hop, backup_won) = tokio::select! {
            hop = &mut first => (hop, false),
            () = tokio::time::sleep(after) => {
                if let Some(counters) = backup_counters {
                    bump(&counters.hedges_sent);
                }
                let second = self.hop(backup);
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
        HedgedHop {
            hop,
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
