//! edge-emulator: runs the edge worker's wasm component inside a modelled CDN (edge PoPs,
//! regional tiers, origins, simulated round-trip times) and serves it over HTTP on loopback,
//! as `wrangler dev` does, or replays workloads under a virtual clock.
//!
//! Layers, each using only those before it: `bindings` (the WIT contract) and `mode` (serve
//! or replay), `cdn` (the model: PoPs, tiers, origins, network, stores), `wasm` (the wasmtime
//! host: engine, isolates, imports), `emulator` and `edge` (the running whole and its
//! per-request entry point), then the faces: `server` (the HTTP face of `serve`) and `sim`
//! (simulate, compare).

pub mod bindings;
pub mod cdn;
pub mod demo_token;
pub mod edge;
pub mod emulator;
pub mod mode;
pub mod server;
pub mod sim;
pub mod wasm;

pub use cdn::topology;
pub use emulator::{
    check_config, CheckedConfig, Emulator, EmulatorOptions, DEFAULT_AUTH, DEFAULT_CACHE_POLICY,
    DEFAULT_MAX_IN_FLIGHT, DEFAULT_ROUTING,
};
pub use mode::RunMode;
