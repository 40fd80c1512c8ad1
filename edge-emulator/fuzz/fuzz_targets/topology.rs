//! The emulator's topology files (`edge_emulator::topology`, `Topology::parse`): arbitrary
//! TOML through parsing and validation, and a valid topology through its queries (PoP for a
//! country, round-trip times). None may panic, and RTTs are finite and non-negative.
//!
//! Run: `edge-emulator/fuzz/run.sh topology 600` (stable), or `cargo +nightly fuzz run topology`.

#![no_main]

use edge_emulator::topology::{Located, Topology};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(topology) = Topology::parse(text) else {
        return;
    };
    let places: Vec<&dyn Located> = topology.places().take(24).collect();
    for a in &places {
        for b in &places {
            let rtt = topology.rtt(*a, *b);
            assert_eq!(rtt, topology.rtt(*b, *a), "RTT is symmetric");
        }
    }
    let _ = topology.client_rtt();
    for pop in topology.pops.iter().take(24) {
        for country in pop.countries.iter().take(8) {
            let _ = topology.pop_for_country(Some(country));
        }
    }
    let default = topology.pop_for_country(None);
    assert_eq!(default.name, topology.default_pop);
});
