//! The CDN model around the worker: PoPs, regional tiers, origins, the topology that places
//! them, the network between them, and the caches and coalescers they keep. Nothing here runs
//! wasm: the `wasm` host calls into a PoP, and `edge` ties the two together per request.

pub mod clock;
pub mod coalesce;
pub mod coding;
pub mod network;
pub mod origin_log;
pub mod origins;
pub mod pop;
pub mod purge;
pub mod recode;
pub mod regional;
pub mod stats;
pub mod store;
pub mod tiers;
pub mod topology;
