//! What handling a request produces: the response now, and work for after it.

use http::{Request, Response};

use crate::hops::Hop;
use crate::routing::RouteChoice;
use crate::{Body, CfCacheStatus};

/// Work to run after the response has been sent (Cloudflare's `ctx.waitUntil`, the
/// emulator's second instance). A value, not a callback, so it can cross the wasm boundary.
#[derive(Debug)]
#[allow(clippy::large_enum_variant)] // why: a handful per response at most; boxing buys nothing
pub enum Deferred {
    /// Refresh the stored response for this request (RFC 5861 §3 background revalidation).
    Revalidate(Request<Body>),
    /// Refetch the JWKS at this URL before it expires.
    RefreshJwks(String),
    /// Replace a coded variant stored on a miss with the best coding the budget allows, after
    /// its first hit (`representation::recompress`).
    Recompress(Recompression),
}

/// A coded variant to recode in the background.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recompression {
    /// The variant's slot in the shared cache.
    pub key: String,
    /// The bytes before coding (the representation after any `?fields=` projection), carried
    /// here so the background work needs no decoder.
    pub body: Body,
}

#[derive(Debug)]
pub struct Outcome {
    pub response: Response<Body>,
    pub deferred: Vec<Deferred>,
    /// What this tier's cache did (its hop's status); `None` when the request never reached
    /// the cache (invalid input).
    pub status: Option<CfCacheStatus>,
    /// Every tier the response passed, origin-nearest first; this tier's hop is the last.
    pub hops: Vec<Hop>,
    /// The origin this request's own upstream answer came from, when geo routing chose one
    /// (`None`: no fetch, or no routing), also when the answer only freshened a stored copy.
    pub route: Option<RouteChoice>,
    /// How many bytes smaller this response is than the same variant as it was coded on the
    /// miss: what background recompression saved on it (0 when it served no recompressed
    /// variant).
    pub recompression_saved: u64,
    /// The experiments this request was assigned to (`experiments.rs`), for the host to count.
    pub exposures: Vec<crate::experiments::Exposure>,
    /// The fragments a composed response was made of (`compose.rs`), nested ones included,
    /// each with the path it took: what the edge cached per part.
    pub parts: Vec<Part>,
}

/// One fragment of a composed response, as the tiers served it.
#[derive(Debug, Clone)]
pub struct Part {
    /// Its URL (path and query).
    pub url: String,
    pub status: u16,
    /// Its bytes, as they went into the page.
    pub bytes: u64,
    /// Every tier it passed, origin-nearest first; the edge's hop is last.
    pub hops: Vec<Hop>,
}

impl Outcome {
    /// A response produced before the cache was consulted (e.g. a 400 for bad input).
    pub fn uncached(response: Response<Body>) -> Self {
        Self {
            response,
            deferred: Vec::new(),
            status: None,
            hops: Vec::new(),
            route: None,
            recompression_saved: 0,
            exposures: Vec::new(),
            parts: Vec::new(),
        }
    }

    /// This tier's hop: the last one.
    pub fn hop(&self) -> Option<&Hop> {
        self.hops.last()
    }

    /// Whether the response came from another request's fetch (coalescing).
    pub fn collapsed(&self) -> bool {
        self.hop()
            .and_then(|h| h.cache.as_ref())
            .is_some_and(|c| c.collapsed)
    }

    /// Whether the response is an error this tier kept by negative caching (the cache
    /// policy's `negative_ttl_secs`): with a `Hit` status, a negative hit.
    pub fn negative(&self) -> bool {
        self.hop()
            .and_then(|h| h.cache.as_ref())
            .is_some_and(|c| c.negative)
    }
}
