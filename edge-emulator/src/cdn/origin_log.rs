//! Every origin fetch the tiers made, in the simulator only: which tier asked, when, for
//! what, and the response head the origin sent. The simulator's stream bound reads each
//! object's freshness "as the origin sent it" from here, and explains the origin's load by
//! cause from it.

use std::collections::HashSet;
use std::sync::Mutex;

use http::{HeaderMap, Method, StatusCode, Uri};
use tokio::time::Instant;

/// Most fetches kept (a trace holds at most 10M requests); past it recording stops and the
/// bound is computed from what was kept.
pub const MAX_LOGGED_FETCHES: usize = 10_000_000;

/// One origin fetch.
#[derive(Debug, Clone)]
pub struct OriginFetch {
    /// When the tier sent it (the paused clock: virtual time).
    pub at: Instant,
    /// The tier that fetched: a regional tier or a shield.
    pub from: edge_worker::hops::TierId,
    pub method: Method,
    pub uri: Uri,
    pub request_headers: HeaderMap,
    /// `None`: the fetch failed (no response head).
    pub status: Option<StatusCode>,
    pub response_headers: HeaderMap,
}

#[derive(Debug, Default)]
pub struct OriginLog {
    fetches: Mutex<Vec<OriginFetch>>,
    /// Paths (with query) a kept response head already describes.
    described: Mutex<HashSet<String>>,
    cut: std::sync::atomic::AtomicBool,
}

impl OriginLog {
    /// Keeps `fetch`; its headers only when it is the first full response for its path and
    /// query (the only one the stream bound reads), so a long run holds ~100 bytes a fetch.
    pub fn record(&self, mut fetch: OriginFetch) {
        let full = fetch.status.is_some_and(|s| s != StatusCode::NOT_MODIFIED);
        let path = fetch.uri.path_and_query().map_or("/", |p| p.as_str());
        let first = full && {
            let mut described = self.described.lock().unwrap_or_else(|e| e.into_inner());
            // Looked up by `&str` first: most fetches are of paths seen before, and need no
            // owned copy.
            !described.contains(path) && described.insert(path.to_string())
        };
        if !first {
            fetch.request_headers = HeaderMap::new();
            fetch.response_headers = HeaderMap::new();
        }
        let mut fetches = self.fetches.lock().unwrap_or_else(|e| e.into_inner());
        if fetches.len() < MAX_LOGGED_FETCHES {
            fetches.push(fetch);
        } else {
            self.cut.store(true, std::sync::atomic::Ordering::Relaxed);
        }
    }

    /// Takes every fetch recorded so far, in the order they were sent.
    pub fn take(&self) -> Vec<OriginFetch> {
        std::mem::take(&mut *self.fetches.lock().unwrap_or_else(|e| e.into_inner()))
    }

    /// Whether fetches were dropped past [`MAX_LOGGED_FETCHES`].
    pub fn was_cut(&self) -> bool {
        self.cut.load(std::sync::atomic::Ordering::Relaxed)
    }
}
