//! Content coding for the whole CDN model, each distinct input computed once.
//!
//! Coding is a pure function of (bytes, coding, level): the same object version coded at the
//! same level at eight PoPs gives the same bytes eight times. One memo, keyed by a hash of
//! the bytes, serves every PoP's worker (the `coding.encode` import, on the miss) and the
//! background recoding (`cdn::recode`), and the coded bytes it hands out are shared with the
//! caches that store them (reference counts), not copied. It remembers how long each coding
//! took, so a request served from the memo is charged the coder's time as if it had coded.

use std::collections::{HashMap, VecDeque};
use std::panic::AssertUnwindSafe;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use bytes::Bytes;
use edge_worker::encoding::Coding;
use xxhash_rust::xxh3::xxh3_128;

/// Coded bytes the memo keeps at most; past it the oldest finished codings are forgotten. The
/// bytes of a coded variant that a cache stores are shared with it, so this bounds only what
/// no cache holds any more.
pub const MEMO_BYTES: usize = 128 * 1024 * 1024;

/// A finished coding.
#[derive(Debug, Clone)]
pub struct Coded {
    pub bytes: Bytes,
    /// The coder's time when it was computed (wall time on a coding thread).
    pub took: Duration,
}

type Key = (u128, Coding, u32);
/// Filled once the coding is done; `None` if the coder panicked (the caller then codes in
/// place, so the panic surfaces where it would have without the memo).
type Slot = Arc<OnceLock<Option<Coded>>>;

/// Codings done or under way, by (hash of the uncoded bytes, coding, level).
#[derive(Default)]
pub struct CodingMemo {
    entries: Arc<Mutex<Memo>>,
}

#[derive(Default)]
struct Memo {
    coded: HashMap<Key, Slot>,
    /// Insertion order: what is forgotten first.
    order: VecDeque<Key>,
    bytes: usize,
    /// Codings computed, and answered from the memo.
    computed: u64,
    reused: u64,
    /// The coders' time over the codings computed (wall time on their threads).
    spent: Duration,
}

impl Memo {
    /// Counts `len` more bytes kept; forgets the oldest finished codings past the bound
    /// (codings under way stay).
    fn account(&mut self, len: usize) {
        self.bytes += len;
        let mut tries = self.order.len();
        while self.bytes > MEMO_BYTES && tries > 0 {
            tries -= 1;
            let Some(key) = self.order.pop_front() else {
                break;
            };
            let done = self.coded.get(&key).and_then(|slot| slot.get().cloned());
            match done {
                Some(coded) => {
                    self.coded.remove(&key);
                    self.bytes -= coded.map_or(0, |c| c.bytes.len());
                }
                None => self.order.push_back(key),
            }
        }
    }
}

fn timed(coding: Coding, body: &[u8], level: u32) -> Coded {
    let started = Instant::now();
    let bytes = Bytes::from(coding.encode_at(body, level));
    Coded {
        bytes,
        took: started.elapsed(),
    }
}

impl CodingMemo {
    fn lock(&self) -> std::sync::MutexGuard<'_, Memo> {
        self.entries.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The slot for `key`, and whether this caller is the one to fill it.
    fn slot(&self, key: Key) -> (Slot, bool) {
        let mut memo = self.lock();
        match memo.coded.get(&key).cloned() {
            Some(slot) => {
                memo.reused += 1;
                (slot, false)
            }
            None => {
                let slot = Slot::default();
                memo.coded.insert(key, slot.clone());
                memo.order.push_back(key);
                memo.computed += 1;
                (slot, true)
            }
        }
    }

    /// `coding.encode_at(body, level)`: from the memo when these bytes were coded so before
    /// (waiting when a coding thread has it under way), else coded here.
    pub fn encode(&self, coding: Coding, body: &[u8], level: u32) -> Coded {
        let (slot, mine) = self.slot((xxh3_128(body), coding, level));
        if mine {
            let coded = timed(coding, body, level);
            let _ = slot.set(Some(coded.clone()));
            let mut memo = self.lock();
            memo.spent += coded.took;
            memo.account(coded.bytes.len());
            return coded;
        }
        match slot.wait() {
            Some(coded) => coded.clone(),
            None => timed(coding, body, level),
        }
    }

    /// Starts `coding.encode_at(body, level)` on rayon's threads unless the memo has it or it
    /// is under way, so a replay goes on while brotli 10–11 runs; the replay takes the result
    /// later, at a virtual instant of its own choosing, through [`Self::encode`].
    pub fn start(&self, coding: Coding, body: Bytes, level: u32) {
        let (slot, mine) = self.slot((xxh3_128(&body), coding, level));
        if !mine {
            return;
        }
        let entries = self.entries.clone();
        rayon::spawn(move || {
            let coded = std::panic::catch_unwind(AssertUnwindSafe(|| timed(coding, &body, level)));
            let coded = coded.ok();
            let len = coded.as_ref().map_or(0, |c| c.bytes.len());
            let took = coded.as_ref().map_or(Duration::ZERO, |c| c.took);
            let _ = slot.set(coded);
            let mut memo = entries.lock().unwrap_or_else(|e| e.into_inner());
            memo.spent += took;
            memo.account(len);
        });
    }

    /// (codings computed, codings answered from the memo) so far.
    pub fn counts(&self) -> (u64, u64) {
        let memo = self.lock();
        (memo.computed, memo.reused)
    }

    /// What the memo did so far, for the run's wall figures.
    pub fn report(&self) -> CodingReport {
        let memo = self.lock();
        CodingReport {
            computed: memo.computed,
            reused: memo.reused,
            spent: memo.spent,
        }
    }
}

/// The emulator's own coding work (wall time, not part of a deterministic report).
#[derive(Debug, Clone, Copy, Default)]
pub struct CodingReport {
    pub computed: u64,
    /// Codings answered from the memo: another PoP (or the same) coded those bytes before.
    pub reused: u64,
    /// The coders' time over the codings computed.
    pub spent: Duration,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn json(n: usize) -> Vec<u8> {
        br#"{"id":1,"name":"lamp","tags":["a","b"],"price":12.5}"#.repeat(n)
    }

    /// What the memo hands out is byte for byte what the coder makes, at every coding and at
    /// the miss's and the background's levels alike; each distinct input is coded once.
    #[test]
    fn a_coding_from_the_memo_is_byte_identical_to_coding_directly() {
        let memo = CodingMemo::default();
        for body in [json(1), json(40), json(900)] {
            for (coding, level) in [
                (Coding::Brotli, 2),
                (Coding::Brotli, 4),
                (Coding::Brotli, 11),
                (Coding::Gzip, 6),
                (Coding::Gzip, 9),
                (Coding::Zstd, 1),
            ] {
                let direct = coding.encode_at(&body, level);
                assert_eq!(memo.encode(coding, &body, level).bytes, direct);
                assert_eq!(memo.encode(coding, &body, level).bytes, direct);
            }
        }
        assert_eq!(memo.counts(), (18, 18));
    }

    /// A coding started on the worker threads is what `encode` returns, once, however many
    /// times it is started.
    #[test]
    fn a_started_coding_is_the_one_encode_returns() {
        let memo = CodingMemo::default();
        let body = Bytes::from(json(200));
        memo.start(Coding::Brotli, body.clone(), 11);
        memo.start(Coding::Brotli, body.clone(), 11);
        assert_eq!(memo.counts().0, 1);
        assert_eq!(
            memo.encode(Coding::Brotli, &body, 11).bytes,
            Coding::Brotli.encode_at(&body, 11)
        );
    }

    #[test]
    fn shared_bytes_are_not_copies() {
        let memo = CodingMemo::default();
        let body = json(50);
        let first = memo.encode(Coding::Gzip, &body, 6).bytes;
        let again = memo.encode(Coding::Gzip, &body, 6).bytes;
        assert_eq!(first.as_ptr(), again.as_ptr(), "the same buffer, shared");
    }
}
