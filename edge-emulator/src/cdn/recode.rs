//! Background recompression, run by the host.
//!
//! The worker asks for it as deferred work (`Deferred::Recompress`), as it asks for a
//! background refresh. The emulator runs it natively with the core's own
//! `representation::recode`, on the PoP's slot, instead of in a guest instance: recoding a
//! variant at brotli 10–11 costs milliseconds to a second of CPU, once per (PoP, variant),
//! and in a replay that cost is paid for every PoP and every version of every object. Its
//! result is a pure function of (coding, uncoded bytes, level), so one memo serves every PoP:
//! each distinct body is coded once per run. The bytes and tags stored are exactly what the
//! guest would store; what is not modelled is the guest CPU the work takes (the figures for it
//! are in BENCHMARKS.md).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use edge_worker::encoding::Coding;
use xxhash_rust::xxh3::xxh3_128;

use crate::bindings::types;
use crate::cdn::pop::PopNode;
use crate::wasm;

/// The memo's size bound: past it, it starts again empty (a replay's working set of distinct
/// recoded bodies is far smaller on the default workload).
const MEMO_BYTES: usize = 256 * 1024 * 1024;

/// Recoded bodies by (hash of the uncoded bytes, coding, level).
#[derive(Default)]
pub struct RecodeMemo {
    entries: Mutex<Memo>,
}

#[derive(Default)]
struct Memo {
    coded: HashMap<(u128, Coding, u32), Arc<Vec<u8>>>,
    bytes: usize,
}

impl RecodeMemo {
    /// `coding.encode_at(body, level)`, from the memo when this body was coded before.
    pub fn encode(&self, coding: Coding, body: &[u8], level: u32) -> Vec<u8> {
        let key = (xxh3_128(body), coding, level);
        if let Some(coded) = self.lock().coded.get(&key) {
            return coded.as_ref().clone();
        }
        let coded = coding.encode_at(body, level);
        let mut memo = self.lock();
        if memo.bytes + coded.len() > MEMO_BYTES {
            *memo = Memo::default();
        }
        memo.bytes += coded.len();
        memo.coded.insert(key, Arc::new(coded.clone()));
        coded
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Memo> {
        self.entries.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// Recodes the variant in `task.key` of `pop`'s cache, as the guest's
/// `representation::recompress` would. Returns whether it found a variant to recode.
pub fn recompress(pop: &PopNode, memo: &RecodeMemo, task: types::Recompression) -> bool {
    let now = pop.network.clock.now();
    let Some(types::CacheEntry::Response(stored)) = pop.cache.get(&task.key, now) else {
        return false;
    };
    let Some(mut variant) = wasm::stored_from_wit(stored) else {
        return false;
    };
    let recoded = edge_worker::representation::recode(&mut variant, &task.body, |c, b, l| {
        memo.encode(c, b, l)
    });
    if recoded {
        let keep_until = now + edge_worker::representation::VARIANT_KEEP;
        pop.cache.put(
            &task.key,
            types::CacheEntry::Response(wasm::stored_to_wit(variant)),
            keep_until,
        );
    }
    recoded
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_memo_returns_what_the_coder_returns_and_codes_each_body_once() {
        let memo = RecodeMemo::default();
        let body = br#"{"id":1,"name":"lamp","tags":["a","b"]}"#.repeat(40);
        let first = memo.encode(Coding::Brotli, &body, 11);
        assert_eq!(first, Coding::Brotli.encode_at(&body, 11));
        assert_eq!(memo.encode(Coding::Brotli, &body, 11), first);
        assert_eq!(memo.lock().coded.len(), 1);
        memo.encode(Coding::Gzip, &body, 9);
        assert_eq!(memo.lock().coded.len(), 2);
    }
}
