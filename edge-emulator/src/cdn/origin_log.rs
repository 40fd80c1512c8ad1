//! Every origin fetch the tiers made, in the simulator only: which tier asked, when, for
//! what, and the response head the origin sent. The simulator's stream bound reads each
//! object's freshness "as the origin sent it" from here, and explains the origin's load by
//! cause from it.

use std::sync::Mutex;

use http::{HeaderMap, Method, StatusCode, Uri};
use tokio::time::Instant;

/// Most fetches kept; a longer run stops recording (its bound is then computed from what
/// was kept, and the report says the log was cut).
pub const MAX_LOGGED_FETCHES: usize = 20_000_000;

/// One origin fetch.
#[derive(Debug, Clone)]
pub struct OriginFetch {
    /// When the tier sent it (the paused clock: virtual time).
    pub at: Instant,
    /// The tier's Cache-Status name: `regional-eu`, `shield-us`.
    pub from: String,
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
    cut: std::sync::atomic::AtomicBool,
}

impl OriginLog {
    pub fn record(&self, fetch: OriginFetch) {
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
