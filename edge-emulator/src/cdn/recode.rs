//! Background recompression, run by the host.
//!
//! The worker asks for it as deferred work (`Deferred::Recompress`), as it asks for a
//! background refresh. The emulator runs it natively with the core's own
//! `representation::recode`, on the PoP's slot, instead of in a guest instance: recoding a
//! variant at brotli 10–11 costs milliseconds to a second of CPU, once per (PoP, variant),
//! and in a replay that cost is paid for every PoP and every version of every object. Its
//! result is a pure function of (coding, uncoded bytes, level), so one memo serves every PoP:
//! each distinct body is coded once per run. The bytes and tags stored are exactly what the
//! guest would store; the CPU the work takes is not charged to any isolate (the figures for it
//! are in BENCHMARKS.md).
//!
//! In a replay the coding starts on rayon's threads and its result lands in the slot after
//! [`modelled_duration`] of virtual time, so the single-threaded replay goes on meanwhile
//! (brotli was 40 % of the first 100 s of the default run, profiled) and the report stays the
//! same whatever the machine.

use std::collections::HashMap;
use std::panic::AssertUnwindSafe;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use edge_worker::encoding::Coding;
use xxhash_rust::xxh3::xxh3_128;

use edge_worker::outcome::Recompression;
use edge_worker::CacheEntry;

use crate::cdn::pop::PopNode;

/// The memo's size bound: past it, it keeps only the codings still under way (a replay's
/// working set of distinct recoded bodies is far smaller on the default workload).
const MEMO_BYTES: usize = 256 * 1024 * 1024;

/// Recoded bodies by (hash of the uncoded bytes, coding, level), finished or under way on
/// the worker threads.
#[derive(Default)]
pub struct RecodeMemo {
    entries: Arc<Mutex<Memo>>,
}

type Key = (u128, Coding, u32);
/// Filled once the coding is done: `None` if the coder panicked (the caller then codes in
/// place, so the panic surfaces where it did before).
type Slot = Arc<OnceLock<Option<Arc<Vec<u8>>>>>;

#[derive(Default)]
struct Memo {
    coded: HashMap<Key, Slot>,
    bytes: usize,
}

impl Memo {
    fn account(&mut self, len: usize) {
        self.bytes += len;
        if self.bytes > MEMO_BYTES {
            self.coded.retain(|_, slot| slot.get().is_none());
            self.bytes = 0;
        }
    }
}

impl RecodeMemo {
    /// Starts `coding.encode_at(body, level)` on rayon's worker threads unless the memo has it
    /// or it is under way, so that a replay goes on while brotli 10–11 runs: the replay takes
    /// the result, at a virtual instant of its own choosing, through [`Self::encode`].
    pub fn start(&self, coding: Coding, body: Vec<u8>, level: u32) {
        let key = (xxh3_128(&body), coding, level);
        let slot = {
            let mut memo = lock(&self.entries);
            if memo.coded.contains_key(&key) {
                return;
            }
            let slot = Slot::default();
            memo.coded.insert(key, slot.clone());
            slot
        };
        let entries = self.entries.clone();
        rayon::spawn(move || {
            let coded =
                std::panic::catch_unwind(AssertUnwindSafe(|| coding.encode_at(&body, level)));
            let coded = coded.ok().map(Arc::new);
            let len = coded.as_ref().map_or(0, |c| c.len());
            let _ = slot.set(coded);
            lock(&entries).account(len);
        });
    }

    /// `coding.encode_at(body, level)`: from the memo when this body was coded before, after
    /// waiting for it when [`Self::start`] has it under way, else coded here.
    pub fn encode(&self, coding: Coding, body: &[u8], level: u32) -> Vec<u8> {
        let key = (xxh3_128(body), coding, level);
        let (slot, mine) = {
            let mut memo = lock(&self.entries);
            match memo.coded.get(&key) {
                Some(slot) => (slot.clone(), false),
                None => {
                    let slot = Slot::default();
                    memo.coded.insert(key, slot.clone());
                    (slot, true)
                }
            }
        };
        if mine {
            let coded = coding.encode_at(body, level);
            let _ = slot.set(Some(Arc::new(coded.clone())));
            lock(&self.entries).account(coded.len());
            return coded;
        }
        match slot.wait() {
            Some(coded) => coded.as_ref().clone(),
            None => coding.encode_at(body, level),
        }
    }
}

fn lock(entries: &Mutex<Memo>) -> std::sync::MutexGuard<'_, Memo> {
    entries.lock().unwrap_or_else(|e| e.into_inner())
}

/// What recoding `task` would code at (coding and level), read from the slot as it is now;
/// `None` when there is nothing to recode.
pub fn plan(pop: &PopNode, task: &Recompression) -> Option<(Coding, u32)> {
    let now = pop.network.clock.now();
    let Some(CacheEntry::Response(variant)) = pop.cache.get(&task.key, now) else {
        return None;
    };
    edge_worker::representation::recode_plan(&variant, task.body.len())
}

/// How long recoding takes in a replay's virtual time: the coder's native CPU time on the
/// catalogue's JSON (BENCHMARKS.md, "Speed": brotli 11 2.0 ms at 1 KiB, 12.3 ms at 10 KiB,
/// 34 ms at 32 KiB; brotli 10 49 ms at 100 KiB, 128 ms at 256 KiB; brotli 9 84–123 ms at
/// 1 MiB; gzip 9 41 ms at 1 MiB). A model, not a measurement, so the same seed gives the same
/// report on any machine; until then hits get the variant the miss coded, as they would on a
/// real edge while its background work runs.
pub fn modelled_duration(coding: Coding, level: u32, len: usize) -> Duration {
    let micros_per_kib: u64 = match (coding, level) {
        (Coding::Brotli, 11..) => 1_050,
        (Coding::Brotli, 10) => 550,
        (Coding::Brotli, _) => 100,
        (Coding::Gzip, _) => 40,
        (Coding::Zstd | Coding::Identity, _) => 20,
    };
    Duration::from_micros(500 + micros_per_kib * len as u64 / 1024)
}

/// Recodes the variant in `task.key` of `pop`'s cache, as the guest's
/// `representation::recompress` would. Returns whether it found a variant to recode.
pub fn recompress(pop: &PopNode, memo: &RecodeMemo, task: Recompression) -> bool {
    let now = pop.network.clock.now();
    let Some(CacheEntry::Response(mut variant)) = pop.cache.get(&task.key, now) else {
        return false;
    };
    let recoded = edge_worker::representation::recode(&mut variant, &task.body, |c, b, l| {
        memo.encode(c, b, l)
    });
    if recoded {
        let keep_until = now + edge_worker::representation::VARIANT_KEEP;
        pop.cache
            .put(&task.key, CacheEntry::Response(variant), keep_until);
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
        assert_eq!(lock(&memo.entries).coded.len(), 1);
        memo.encode(Coding::Gzip, &body, 9);
        assert_eq!(lock(&memo.entries).coded.len(), 2);
    }

    /// A coding started on the worker threads is what `encode` returns, once, however many
    /// times it is started.
    #[test]
    fn a_started_coding_is_the_one_encode_returns() {
        let memo = RecodeMemo::default();
        let body = br#"{"id":2,"name":"desk","tags":["c","d"]}"#.repeat(200);
        memo.start(Coding::Brotli, body.clone(), 11);
        memo.start(Coding::Brotli, body.clone(), 11);
        assert_eq!(lock(&memo.entries).coded.len(), 1);
        assert_eq!(
            memo.encode(Coding::Brotli, &body, 11),
            Coding::Brotli.encode_at(&body, 11)
        );
    }

    #[test]
    fn the_modelled_time_grows_with_size_and_effort() {
        let at = |coding, level, len| modelled_duration(coding, level, len);
        assert!(at(Coding::Brotli, 11, 32 * 1024) > at(Coding::Brotli, 11, 1024));
        assert!(at(Coding::Brotli, 11, 32 * 1024) > at(Coding::Gzip, 9, 32 * 1024));
        // Within a factor of two of the measured 34 ms and 123 ms.
        let q11 = at(Coding::Brotli, 11, 32 * 1024).as_secs_f64();
        assert!((0.017..0.068).contains(&q11), "{q11}");
        let q9 = at(Coding::Brotli, 9, 1024 * 1024).as_secs_f64();
        assert!((0.06..0.25).contains(&q9), "{q9}");
    }
}
