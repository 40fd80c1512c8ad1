//! The emulator's topology files (`edge-emulator/src/cdn/topology.rs`, `Topology::parse`): arbitrary
//! TOML through parsing and validation, and a valid topology through its queries (PoP for a
//! country, round-trip times). None may panic, and RTTs are finite and non-negative.
//!
//! The module is compiled in by path, with origin-stub's `faults.rs` (the only crate-local code
//! it uses) beside it, rather than by depending on edge-emulator: that crate links wasmtime and
//! builds the wasm guest in its build script, which is minutes of instrumented build for a
//! parser that needs serde and toml.
//!
//! Run: `edge-worker/fuzz/run.sh topology 600` (stable), or `cargo +nightly fuzz run topology`.

#![no_main]

// `topology.rs` names `origin_stub::FaultPlan`: make this crate answer to that name.
extern crate self as origin_stub;

#[path = "../../../origin-stub/src/faults.rs"]
#[allow(dead_code)]
mod faults;
#[allow(unused_imports)] // why: reached as `origin_stub::FaultPlan` from the topology module
use faults::FaultPlan;

#[path = "../../../edge-emulator/src/cdn/topology.rs"]
#[allow(dead_code)]
mod topology;

use libfuzzer_sys::fuzz_target;
use topology::{Located, Topology};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(topology) = Topology::parse(text) else {
        return;
    };
    let places: Vec<&dyn Located> = topology
        .pops
        .iter()
        .map(|p| p as &dyn Located)
        .chain(topology.regionals.iter().map(|r| r as &dyn Located))
        .chain(topology.origins.iter().map(|o| o as &dyn Located))
        .take(24)
        .collect();
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
