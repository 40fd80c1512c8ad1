//! The host↔worker contract (`wit/edge-worker.wit`) as Rust types and traits, and the
//! worker component build.rs made. Every layer may use these types; only `wasm` runs them.

wasmtime::component::bindgen!({
    path: "../wit",
    world: "edge-worker",
    // Only the imports that wait (upstream, another request's fetch) are async; the rest
    // answer at once and are called without a future per call.
    imports: {
        "edge:worker/upstream.fetch": async | trappable,
        "edge:worker/upstream.fetch-hedged": async | trappable,
        "edge:worker/cache.lock": async | trappable,
        default: trappable,
    },
    exports: { default: async },
});

pub use edge::worker::types;

/// The worker component built by build.rs.
pub const WORKER_COMPONENT: &[u8] = include_bytes!(env!("EDGE_WORKER_COMPONENT"));
