//! An in-memory cache store for one tier: slots with an expiry, dropped when read after it.
//! The tier's RFC 9111 logic lives in the worker core; this is only storage.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::SystemTime;

/// Most slots one store holds; past it the entry nearest to expiry is evicted.
pub const MAX_SLOTS: usize = 100_000;

#[derive(Debug)]
pub struct MemoryStore<V> {
    slots: Mutex<HashMap<String, (V, SystemTime)>>,
}

impl<V: Clone> Default for MemoryStore<V> {
    fn default() -> Self {
        Self {
            slots: Mutex::new(HashMap::new()),
        }
    }
}

impl<V: Clone> MemoryStore<V> {
    pub fn get(&self, key: &str, now: SystemTime) -> Option<V> {
        let mut slots = self.slots.lock().unwrap_or_else(|e| e.into_inner());
        match slots.get(key) {
            Some((value, keep_until)) if *keep_until > now => Some(value.clone()),
            Some(_) => {
                slots.remove(key);
                None
            }
            None => None,
        }
    }

    pub fn put(&self, key: &str, value: V, keep_until: SystemTime) {
        let mut slots = self.slots.lock().unwrap_or_else(|e| e.into_inner());
        if slots.len() >= MAX_SLOTS && !slots.contains_key(key) {
            let soonest = slots
                .iter()
                .min_by_key(|(_, (_, until))| *until)
                .map(|(k, _)| k.clone());
            if let Some(soonest) = soonest {
                slots.remove(&soonest);
            }
        }
        slots.insert(key.to_string(), (value, keep_until));
    }

    /// Empties the store (admin purge; benchmarks that must measure a cold variant).
    pub fn clear(&self) {
        self.slots.lock().unwrap_or_else(|e| e.into_inner()).clear();
    }

    pub fn len(&self) -> usize {
        self.slots.lock().unwrap_or_else(|e| e.into_inner()).len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn entries_vanish_after_their_keep_time() {
        let store = MemoryStore::default();
        let t0 = SystemTime::UNIX_EPOCH + Duration::from_secs(100);
        store.put("k", 1, t0 + Duration::from_secs(10));
        assert_eq!(store.get("k", t0 + Duration::from_secs(9)), Some(1));
        assert_eq!(store.get("k", t0 + Duration::from_secs(10)), None);
        assert!(store.is_empty());
    }
}
