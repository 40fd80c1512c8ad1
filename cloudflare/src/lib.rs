//! The edge worker on Cloudflare Workers: `request.cf`, `worker::Cache`, `Fetch`,
//! `ctx.wait_until` and `Date.now()` as the core's ports. Type conversion only; behaviour lives
//! in `edge-worker`.
//!
//! The workers-rs glue (`platform`, `convert`, the fetch handler) compiles only for `wasm32`:
//! on the host this crate is its pure parts (entry codec, configuration, geo), which the
//! workspace's tests and clippy cover without building wasm-bindgen. `scripts/cloudflare-tools.sh`
//! builds the worker with worker-build.

pub mod codec;
pub mod config;
pub mod geo;
pub mod purge;

#[cfg(target_arch = "wasm32")]
mod convert;
#[cfg(target_arch = "wasm32")]
mod handler;
#[cfg(target_arch = "wasm32")]
mod platform;
