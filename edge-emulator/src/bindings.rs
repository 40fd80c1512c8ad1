//! The host↔worker contract (`wit/edge-worker.wit`) as Rust types and traits, and the
//! worker component build.rs made. Every layer may use these types; only `wasm` runs them.

wasmtime::component::bindgen!({
    path: "../wit",
    world: "edge-worker",
    imports: { default: async | trappable },
    exports: { default: async },
});

pub use edge::worker::types;

/// The worker component built by build.rs.
pub const WORKER_COMPONENT: &[u8] = include_bytes!(env!("EDGE_WORKER_COMPONENT"));
