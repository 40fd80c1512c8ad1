//! The emulator's counters read at one moment: every cache's, the origins' and the purges'.
//! The replay reads them at the end of the warm-up (the baseline) and at the end of the run.

use std::collections::BTreeMap;

use edge_worker::hops::TierId;

use crate::emulator::Emulator;

/// Counter values at the end of warm-up, subtracted from the final ones.
#[derive(Default, Clone)]
pub(super) struct Baseline {
    pub(super) tiers: BTreeMap<TierId, BTreeMap<&'static str, u64>>,
    pub(super) origin_requests: u64,
    pub(super) origin_not_modified: u64,
    pub(super) origin_bytes: u64,
    pub(super) purges: crate::cdn::purge::PurgeTotals,
}

/// Requests the origins have received: the atomic per-origin counters, read at every timeline
/// bucket (the stubs' own stats clone a map of every path).
pub(super) fn origin_requests(emulator: &Emulator) -> u64 {
    emulator
        .origin_counters
        .values()
        .map(|c| c.requests.load(std::sync::atomic::Ordering::Relaxed))
        .sum()
}

/// Every counter the report subtracts, as it stands now.
pub(super) fn snapshot(emulator: &Emulator) -> Baseline {
    let stubs: Vec<_> = emulator
        .origins
        .values()
        .filter_map(|o| o.stub.as_ref().map(|s| s.stats()))
        .collect();
    Baseline {
        tiers: emulator
            .tiers
            .iter()
            .map(|(id, tier)| (id.clone(), tier.counters().snapshot()))
            .collect(),
        origin_requests: origin_requests(emulator),
        origin_not_modified: stubs.iter().map(|s| s.not_modified).sum(),
        origin_bytes: emulator
            .origins
            .values()
            .map(|o| o.bytes_sent.load(std::sync::atomic::Ordering::Relaxed))
            .sum(),
        purges: emulator.purges.snapshot(),
    }
}

/// Each cache's peak stored bytes and entries.
pub(super) fn store_peaks(emulator: &Emulator) -> BTreeMap<TierId, (u64, u64)> {
    emulator
        .tiers
        .iter()
        .map(|(id, tier)| (id.clone(), tier.peak()))
        .collect()
}
