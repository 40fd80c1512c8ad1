//! An in-memory cache store for one tier: slots with an expiry, dropped when read after it,
//! and least-recently-used eviction past a slot count or a byte capacity. The tier's RFC 9111
//! logic lives in the worker core; this is only storage.

use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use lru::LruCache;
use xxhash_rust::xxh3::Xxh3DefaultBuilder;

/// Most slots one store holds; past it the least recently used slot is evicted.
pub const MAX_SLOTS: usize = 100_000;

/// How much room a stored value takes, for byte capacities.
pub trait Weigh {
    fn weight(&self) -> u64;
}

struct Slot<V> {
    /// Shared with every reader: a read hands out a reference count, not a copy.
    value: Arc<V>,
    keep_until: SystemTime,
    weight: u64,
}

struct Slots<V> {
    /// Keys to slots, most recently used first. Keys are hashed with xxh3: they are URLs a
    /// client chose, but a store is private to one emulator run.
    map: LruCache<Arc<str>, Slot<V>, Xxh3DefaultBuilder>,
    bytes: u64,
    /// The most bytes and slots held at once so far.
    peak_bytes: u64,
    peak_slots: usize,
}

pub struct MemoryStore<V> {
    slots: Mutex<Slots<V>>,
    /// `None`: only the slot limit applies.
    capacity_bytes: Option<u64>,
    evictions: std::sync::atomic::AtomicU64,
}

impl<V> std::fmt::Debug for MemoryStore<V> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MemoryStore")
            .field("capacity_bytes", &self.capacity_bytes)
            .finish_non_exhaustive()
    }
}

impl<V: Clone + Weigh> Default for MemoryStore<V> {
    fn default() -> Self {
        Self::with_capacity(None)
    }
}

impl<V: Clone + Weigh> MemoryStore<V> {
    pub fn with_capacity(capacity_bytes: Option<u64>) -> Self {
        Self {
            slots: Mutex::new(Slots {
                map: LruCache::unbounded_with_hasher(Xxh3DefaultBuilder::new()),
                bytes: 0,
                peak_bytes: 0,
                peak_slots: 0,
            }),
            capacity_bytes,
            evictions: Default::default(),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Slots<V>> {
        self.slots.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The value in `key`'s slot, shared (the slot becomes the most recently used), unless it
    /// expired.
    pub fn get(&self, key: &str, now: SystemTime) -> Option<Arc<V>> {
        let mut slots = self.lock();
        let slot = slots.map.get(key)?;
        if slot.keep_until > now {
            return Some(slot.value.clone());
        }
        slots.remove(key);
        None
    }

    pub fn put(&self, key: &str, value: V, keep_until: SystemTime) {
        let weight = value.weight();
        let mut slots = self.lock();
        slots.remove(key);
        if self.capacity_bytes.is_some_and(|c| weight > c) {
            // Larger than the whole cache: not stored, as a real cache would refuse it.
            return;
        }
        while slots.map.len() >= MAX_SLOTS
            || self
                .capacity_bytes
                .is_some_and(|c| slots.bytes + weight > c)
        {
            let Some((_, oldest)) = slots.map.pop_lru() else {
                break;
            };
            slots.bytes -= oldest.weight;
            self.evictions
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        }
        slots.bytes += weight;
        slots.map.put(
            Arc::from(key),
            Slot {
                value: Arc::new(value),
                keep_until,
                weight,
            },
        );
        slots.peak_bytes = slots.peak_bytes.max(slots.bytes);
        slots.peak_slots = slots.peak_slots.max(slots.map.len());
    }

    /// The most bytes the stored values weighed at once, and the most slots, so far: what a
    /// capacity planner sizes the cache (and the emulator's memory) by.
    pub fn peak(&self) -> (u64, u64) {
        let slots = self.lock();
        (slots.peak_bytes, slots.peak_slots as u64)
    }

    /// Drops one slot (a purge by URL).
    pub fn remove(&self, key: &str) {
        self.lock().remove(key);
    }

    /// Removes every slot `reached` selects (a purge); returns their keys.
    pub fn remove_where(&self, mut reached: impl FnMut(&str, &V) -> bool) -> Vec<String> {
        let mut slots = self.lock();
        let keys: Vec<String> = slots
            .map
            .iter()
            .filter(|(key, slot)| reached(key, &slot.value))
            .map(|(key, _)| key.to_string())
            .collect();
        for key in &keys {
            slots.remove(key);
        }
        keys
    }

    /// Changes in place every slot `update` changes (returns `true` for); returns their keys.
    /// Weight and recency stay as they were: a soft purge marks an entry, it does not use it.
    pub fn update_where(&self, mut update: impl FnMut(&str, &mut V) -> bool) -> Vec<String> {
        let mut slots = self.lock();
        slots
            .map
            .iter_mut()
            .filter_map(|(key, slot)| {
                update(key, Arc::make_mut(&mut slot.value)).then(|| key.to_string())
            })
            .collect()
    }

    /// Empties the store (benchmarks that must measure a cold variant).
    pub fn clear(&self) {
        let mut slots = self.lock();
        slots.map.clear();
        slots.bytes = 0;
    }

    pub fn len(&self) -> usize {
        self.lock().map.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Bytes the stored values weigh.
    pub fn bytes(&self) -> u64 {
        self.lock().bytes
    }

    /// Slots evicted to make room (not expiries).
    pub fn evictions(&self) -> u64 {
        self.evictions.load(std::sync::atomic::Ordering::Relaxed)
    }
}

impl<V> Slots<V> {
    fn remove(&mut self, key: &str) {
        if let Some(slot) = self.map.pop(key) {
            self.bytes -= slot.weight;
        }
    }
}

impl Weigh for edge_worker::CacheEntry {
    fn weight(&self) -> u64 {
        match self {
            edge_worker::CacheEntry::Response(stored) => stored.body.len() as u64 + 512,
            _ => 256,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    impl Weigh for u64 {
        fn weight(&self) -> u64 {
            *self
        }
    }

    #[test]
    fn entries_vanish_after_their_keep_time() {
        let store = MemoryStore::default();
        let t0 = SystemTime::UNIX_EPOCH + Duration::from_secs(100);
        store.put("k", 1u64, t0 + Duration::from_secs(10));
        assert_eq!(
            store.get("k", t0 + Duration::from_secs(9)).as_deref(),
            Some(&1)
        );
        assert_eq!(store.get("k", t0 + Duration::from_secs(10)), None);
        assert!(store.is_empty());
        assert_eq!(store.bytes(), 0);
    }

    #[test]
    fn a_byte_capacity_evicts_the_least_recently_used() {
        let store = MemoryStore::with_capacity(Some(300));
        let t0 = SystemTime::UNIX_EPOCH;
        let later = t0 + Duration::from_secs(60);
        store.put("a", 100u64, later);
        store.put("b", 100u64, later);
        store.put("c", 100u64, later);
        assert_eq!(
            store.get("a", t0).as_deref(),
            Some(&100),
            "a is now the most recent"
        );
        store.put("d", 100u64, later);
        assert_eq!(store.get("b", t0), None, "b was least recently used");
        assert_eq!(store.get("a", t0).as_deref(), Some(&100));
        assert_eq!(store.bytes(), 300);
        assert_eq!(store.evictions(), 1);
        assert_eq!(store.peak(), (300, 3), "the capacity bounds the peak");
        store.put("huge", 301u64, later);
        assert_eq!(
            store.get("huge", t0),
            None,
            "larger than the cache: not stored"
        );
        store.put("a", 50u64, later);
        assert_eq!(store.bytes(), 250, "replacing a slot replaces its weight");
    }

    #[test]
    fn a_purge_removes_or_updates_only_what_it_selects() {
        let store = MemoryStore::default();
        let later = SystemTime::UNIX_EPOCH + Duration::from_secs(60);
        for (key, value) in [("a/1", 1u64), ("a/2", 2), ("b/1", 3)] {
            store.put(key, value, later);
        }
        let mut removed = store.remove_where(|key, _| key.starts_with("a/"));
        removed.sort();
        assert_eq!(removed, ["a/1", "a/2"]);
        assert_eq!((store.len(), store.bytes()), (1, 3));
        let changed = store.update_where(|_, value| {
            *value += 1;
            true
        });
        assert_eq!(changed, ["b/1"]);
        assert_eq!(
            store.get("b/1", SystemTime::UNIX_EPOCH).as_deref(),
            Some(&4)
        );
    }
}
