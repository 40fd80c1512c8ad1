//! Arbitrary routing configurations (JSON) and client locations: parsing, checking and
//! planning may not panic, and a plan always starts inside the client's residency pin.
//!
//! Run: `edge-worker/fuzz/run.sh routing 120` (stable), or `cargo +nightly fuzz run routing`.

#![no_main]

use edge_worker::routing::{Geo, RoutingConfig};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // The last 18 bytes (when present) are the client: a country and a location.
    let (config, client) = data.split_at(data.len().saturating_sub(18));
    let Ok(config) = serde_json::from_slice::<RoutingConfig>(config) else {
        return;
    };
    let Ok(router) = config.build() else {
        return;
    };
    let country = std::str::from_utf8(client.get(..2).unwrap_or_default()).ok();
    let float = |range: std::ops::Range<usize>| {
        client
            .get(range)
            .and_then(|b| b.try_into().ok())
            .map(f64::from_le_bytes)
    };
    let location = float(2..10).zip(float(10..18));
    let plan = router.plan(&Geo::new(country, None, None, location));
    assert!(!plan.candidates.is_empty());
    assert!(plan
        .candidates
        .iter()
        .all(|c| c.origin < router.origins.len()));
});
