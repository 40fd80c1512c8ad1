//! The ports through which the core reaches the world: clock, randomness, cache store,
//! upstream, logging.

use std::time::{Duration, SystemTime};

use http::{Request, Response};

use crate::encoding::Coding;
use crate::hops::{Hop, OriginTrip};
use crate::routing::{Admission, RouteChoice};
use crate::{Body, CacheEntry};

/// A response from upstream, with the path it took there as values.
#[derive(Debug)]
pub struct Upstream {
    pub response: Response<Body>,
    /// `true` when this request did not fetch itself but waited for an identical fetch
    /// already in flight (request coalescing); reported as `collapsed` in Cache-Status.
    pub collapsed: bool,
    /// The tiers above that produced `response`, origin-nearest first (none when upstream
    /// is an origin, or a cache that is not ours).
    pub hops: Vec<Hop>,
    /// The origin fetch that produced it, when this platform fetched from an origin itself.
    pub origin: Option<OriginTrip>,
    /// Geo routing's choice of the origin that produced it.
    pub route: Option<RouteChoice>,
}

impl Upstream {
    pub fn new(response: Response<Body>) -> Self {
        Self {
            response,
            collapsed: false,
            hops: Vec::new(),
            origin: None,
            route: None,
        }
    }

    /// `response` as the tiers in `hops` produced it.
    pub fn via(response: Response<Body>, hops: Vec<Hop>) -> Self {
        Self {
            hops,
            ..Self::new(response)
        }
    }
}

/// The answer to [`Platform::fetch_hedged`].
#[derive(Debug)]
pub struct Hedged {
    pub upstream: Upstream,
    /// Whether the second (backup) request answered first.
    pub backup_won: bool,
}

/// The answer to [`Platform::lock`]: request coalescing as a value (pingora-cache's `Locked`).
#[derive(Debug)]
pub enum Locked<G> {
    /// This request fetches; others for the key wait until the guard is dropped.
    Write(G),
    /// Another request held the lock and has finished: look in the cache again.
    Read,
}

/// Why no response came back from upstream.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("upstream fetch failed: {0}")]
pub struct FetchError(pub String);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogLevel {
    Debug,
    Info,
    Warn,
    Error,
}

/// Everything the core needs from its host.
///
/// Implementations: the wasm component's imports (emulator), `worker::Cache`/`Fetch`
/// (Cloudflare), and in-memory ports in tests and in the emulator's regional tier.
/// Futures need not be `Send`: Workers futures are not.
#[allow(async_fn_in_trait)] // why: used generically (`P: Platform`), never as `dyn`; !Send is intended
pub trait Platform {
    /// The current time. Wall time in `serve`, virtual time in the simulator.
    fn now(&self) -> SystemTime;

    /// A uniformly random 64-bit number (TTL jitter). Each host says where it comes from:
    /// a seeded generator where runs must repeat (the simulator, tests), the platform's own
    /// randomness otherwise. No default: a made-up constant would silently turn jitter off.
    fn random(&self) -> u64;

    /// Reads one slot of this tier's cache.
    async fn cache_get(&self, key: &str) -> Option<CacheEntry>;

    /// Writes one slot. `keep` is how long the entry stays useful (fresh plus stale windows);
    /// the store may evict earlier.
    async fn cache_put(&self, key: &str, entry: CacheEntry, keep: Duration);

    /// Removes one slot (RFC 9111 §4.4 invalidation after an unsafe request).
    async fn cache_delete(&self, key: &str);

    /// Held while one request fetches and stores a key.
    type Guard;

    /// Takes the fetch lock for `key`, or waits for the request holding it to finish.
    /// A platform without coalescing (Cloudflare's per-isolate cache) always returns `Write`.
    async fn lock(&self, key: &str) -> Locked<Self::Guard>;

    /// Sends a request to the next tier upstream.
    async fn fetch(&self, request: Request<Body>) -> Result<Upstream, FetchError>;

    fn log(&self, level: LogLevel, message: &str);

    /// Whether `origin` may be tried now, from the passive-health record the host keeps
    /// across requests ([`crate::routing::HealthBoard`]). Hosts without one admit everything.
    fn origin_admit(&self, _origin: &str) -> Admission {
        Admission::Allow
    }

    /// Records how a request to `origin` went (`ok`: an answer that was not a 5xx).
    fn origin_report(&self, _origin: &str, _ok: bool) {}

    /// `body` coded with `coding` at `level`. Coding is a pure function of those three, so a
    /// host that sees the same bytes in many places (PoPs and tiers) may code each once and
    /// share the result; the bytes must be exactly [`Coding::encode_at`]'s. The default codes
    /// here.
    async fn encode(&self, coding: Coding, level: u32, body: &Body) -> Body {
        Body::from(coding.encode_at(body, level))
    }

    /// Sends `primary`; if it has not answered after `after`, sends `backup` too and returns
    /// the first usable answer ("The Tail at Scale" hedged requests). A platform that cannot
    /// run two fetches at once sends `primary` only.
    async fn fetch_hedged(
        &self,
        primary: Request<Body>,
        _backup: Request<Body>,
        _after: Duration,
    ) -> Result<Hedged, FetchError> {
        self.fetch(primary).await.map(|upstream| Hedged {
            upstream,
            backup_won: false,
        })
    }
}
