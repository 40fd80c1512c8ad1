//! Purges across the CDN model: a checked [`Purge`] (the core decides which slots it reaches)
//! applied to every PoP's cache and every tier's, with what it removed or marked, and the
//! origin requests it caused afterwards.

use std::collections::{BTreeMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::SystemTime;

use edge_worker::purge::{slot_path, Purge};
use serde::Serialize;

use crate::cdn::store::{MemoryStore, Weigh};

/// A stored value a purge can inspect and mark.
pub trait Purgeable {
    /// The stored response's `Cache-Tag` field values (none for other kinds of slot).
    fn cache_tags(&self) -> Vec<&[u8]>;
    /// Marks a stored response stale from `now` (a soft purge); `false` when there was
    /// nothing to mark.
    fn mark_stale(&mut self, now: SystemTime) -> bool;
}

impl Purgeable for edge_worker::CacheEntry {
    fn cache_tags(&self) -> Vec<&[u8]> {
        match self {
            Self::Response(stored) => stored
                .headers
                .get_all(edge_worker::purge::CACHE_TAG)
                .iter()
                .map(|v| v.as_bytes())
                .collect(),
            _ => Vec::new(),
        }
    }

    fn mark_stale(&mut self, now: SystemTime) -> bool {
        match self {
            Self::Response(stored) => stored.mark_stale(now),
            _ => false,
        }
    }
}

/// Applies `purge` to one store; the paths it reached go into `paths`.
pub fn apply<V: Clone + Weigh + Purgeable>(
    store: &MemoryStore<V>,
    purge: &Purge,
    now: SystemTime,
    paths: &mut HashSet<String>,
) -> u64 {
    let keys = if purge.soft {
        store.update_where(|key, value| {
            purge.reaches(key, || value.cache_tags()) && value.mark_stale(now)
        })
    } else {
        store.remove_where(|key, value| purge.reaches(key, || value.cache_tags()))
    };
    paths.extend(keys.iter().filter_map(|k| slot_path(k)).map(str::to_string));
    keys.len() as u64
}

/// What one purge did.
#[derive(Debug, Clone, Default, Serialize)]
pub struct PurgeReport {
    pub soft: bool,
    /// Slots removed (hard purge) or marked stale (soft purge), every variant and coding
    /// counted, across every cache.
    pub entries: u64,
    /// The same per cache, by its Cache-Status name (`edge-fra`, `regional-eu`).
    pub by_cache: BTreeMap<String, u64>,
    /// Distinct paths (with query) reached.
    pub paths: u64,
    /// Said when the purge reached no entry, so that a misspelt path or tag is not taken for
    /// a purge that worked.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<&'static str>,
}

/// [`PurgeReport::note`] for a purge that reached nothing.
pub const REACHED_NOTHING: &str = "this purge reached no cache entry: nothing is stored under \
     what it names (check the path, prefix or tag; GET /__emulator/stats shows what the caches hold)";

/// Purges so far, and the origin requests they caused: the first origin request for a path
/// after a purge reached it (what the purge cost the origin).
#[derive(Debug, Default)]
pub struct PurgeLedger {
    pub purges: AtomicU64,
    pub soft_purges: AtomicU64,
    pub entries: AtomicU64,
    pub refetches: AtomicU64,
    /// Paths reached by a purge and not fetched from an origin since.
    pending: Mutex<HashSet<String>>,
}

/// Most paths the ledger remembers; past it, a purge's refetches are not attributed.
const MAX_PENDING_PATHS: usize = 1_000_000;

impl PurgeLedger {
    pub fn record(&self, report: &PurgeReport, paths: HashSet<String>) {
        self.purges.fetch_add(1, Ordering::Relaxed);
        if report.soft {
            self.soft_purges.fetch_add(1, Ordering::Relaxed);
        }
        self.entries.fetch_add(report.entries, Ordering::Relaxed);
        let mut pending = self.pending.lock().unwrap_or_else(|e| e.into_inner());
        for path in paths {
            if pending.len() >= MAX_PENDING_PATHS {
                break;
            }
            pending.insert(path);
        }
    }

    /// Called for each origin request: counts it when a purge sent it there.
    pub fn origin_request(&self, uri: &http::Uri) {
        let mut pending = self.pending.lock().unwrap_or_else(|e| e.into_inner());
        // Most runs purge nothing: no key is built for them.
        if pending.is_empty() {
            return;
        }
        let Ok(key) = edge_worker::CacheKey::from_uri(uri) else {
            return;
        };
        if slot_path(key.as_str()).is_some_and(|path| pending.remove(path)) {
            self.refetches.fetch_add(1, Ordering::Relaxed);
        }
    }

    pub fn snapshot(&self) -> PurgeTotals {
        PurgeTotals {
            purges: self.purges.load(Ordering::Relaxed),
            soft_purges: self.soft_purges.load(Ordering::Relaxed),
            entries: self.entries.load(Ordering::Relaxed),
            origin_refetches: self.refetches.load(Ordering::Relaxed),
        }
    }
}

/// The ledger's counters, for stats and reports.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct PurgeTotals {
    pub purges: u64,
    pub soft_purges: u64,
    /// Slots removed or marked.
    pub entries: u64,
    /// Origin requests that were the first for a path after a purge reached it.
    pub origin_refetches: u64,
}
