//! Background recompression, run by the host.
//!
//! The worker asks for it as deferred work (`Deferred::Recompress`), as it asks for a
//! background refresh. The emulator runs it natively with the core's own
//! `representation::recode`, on the PoP's slot, instead of in a guest instance: recoding a
//! variant at brotli 10–11 costs milliseconds to a second of CPU, once per (PoP, variant),
//! and in a replay that cost is paid for every PoP and every version of every object. Its
//! result is a pure function of (coding, uncoded bytes, level), so the one memo of every
//! coding (`cdn::coding`) serves every PoP: each distinct body is coded once per run. The bytes and tags stored are exactly what the
//! guest would store; the CPU the work takes is not charged to any isolate (the figures for it
//! are in BENCHMARKS.md).
//!
//! In a replay the coding starts on rayon's threads and its result lands in the slot after
//! [`modelled_duration`] of virtual time, so the single-threaded replay goes on meanwhile
//! (brotli was 40 % of the first 100 s of the default run, profiled) and the report stays the
//! same whatever the machine.

use std::time::Duration;

use edge_worker::encoding::Coding;
use edge_worker::outcome::Recompression;
use edge_worker::{Body, CacheEntry};

use crate::cdn::coding::CodingMemo;
use crate::cdn::pop::PopNode;

/// What recoding `task` would code at (coding and level), read from the slot as it is now;
/// `None` when there is nothing to recode.
pub fn plan(pop: &PopNode, task: &Recompression) -> Option<(Coding, u32)> {
    let now = pop.network.clock.now();
    let entry = pop.cache.get(&task.key, now)?;
    let CacheEntry::Response(variant) = &*entry else {
        return None;
    };
    edge_worker::representation::recode_plan(variant, task.body.len())
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
pub fn recompress(pop: &PopNode, memo: &CodingMemo, task: Recompression) -> bool {
    let now = pop.network.clock.now();
    let Some(CacheEntry::Response(mut variant)) =
        pop.cache.get(&task.key, now).map(|e| (*e).clone())
    else {
        return false;
    };
    let recoded = edge_worker::representation::recode(&mut variant, &task.body, |c, b, l| {
        Body::from(memo.encode(c, b, l).bytes)
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
