//! `cache`: the PoP's cache slots and its fetch locks.

use std::time::Duration;

use crate::bindings::edge::worker::cache::Host;
use crate::bindings::types::CacheEntry;
use crate::wasm::convert;
use crate::wasm::state::GuestState;

impl Host for GuestState {
    fn get(&mut self, key: String) -> wasmtime::Result<Option<CacheEntry>> {
        self.check_trap()?;
        let entry = self.pop.cache.get(&key, self.pop.network.clock.now());
        Ok(entry.map(|entry| convert::entry_to_guest(&entry, &mut self.bodies)))
    }

    fn put(&mut self, key: String, entry: CacheEntry, keep_ms: u64) -> wasmtime::Result<()> {
        self.check_trap()?;
        let keep_until = self.pop.network.clock.now() + Duration::from_millis(keep_ms);
        if let Some(entry) = convert::entry_from_guest(entry, &mut self.bodies)? {
            self.pop.cache.put(&key, entry, keep_until);
        }
        Ok(())
    }

    fn delete(&mut self, key: String) -> wasmtime::Result<()> {
        self.check_trap()?;
        self.pop.cache.remove(&key);
        Ok(())
    }

    async fn lock(&mut self, key: String) -> wasmtime::Result<bool> {
        self.check_trap()?;
        Ok(match self.pop.coalescer.lock(&key).await {
            Some(guard) => {
                self.request.locks.push((key, guard));
                true
            }
            None => false,
        })
    }

    fn unlock(&mut self, key: String) -> wasmtime::Result<()> {
        self.request.locks.retain(|(held, _)| *held != key);
        Ok(())
    }
}
