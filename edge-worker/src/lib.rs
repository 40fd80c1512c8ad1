//! The edge worker's pure core: RFC 9111 edge caching with stale-while-revalidate and
//! stale-if-error, behind a small [`Platform`] port so the same code runs natively, in a
//! wasm component under the emulator, and on Cloudflare Workers.
//!
//! The core has no clock, network or randomness of its own (sans-IO, as quinn-proto): every
//! time-dependent call takes `now` from [`Platform::now`], random draws (TTL jitter) come from
//! [`Platform::random`], and work that must happen after the
//! response (a background refresh) comes back as a [`Deferred`] value for the caller to run.

pub mod auth;
pub mod body;
pub mod cache_control;
pub mod cache_key;
pub mod cache_policy;
pub mod cache_view;
pub mod cdn_cache_control;
pub mod compose;
pub mod conditional;
pub mod config;
pub mod cookies;
pub mod encoding;
pub mod entry;
pub mod error;
pub mod experiments;
pub mod fields;
pub mod freshness;
pub mod headers;
pub mod hops;
pub mod http_date;
pub mod invalidation;
pub mod outcome;
pub mod ports;
pub mod private_cache;
pub mod purge;
pub mod range;
pub mod ready;
pub mod representation;
pub mod routing;
pub mod status;
pub mod store;
#[cfg(any(test, feature = "testing"))]
pub mod testing;
pub mod tier;
pub mod vary;
pub mod worker;

pub use cache_key::CacheKey;
pub use config::{ConfigDocuments, ConfigError, WorkerConfig};
pub use entry::{CacheEntry, StoredResponse, VerifiedToken};
pub use error::WorkerError;
pub use outcome::{Deferred, Outcome};
pub use ports::{FetchError, Hedged, Locked, LogLevel, Platform, Upstream};
pub use status::CfCacheStatus;
pub use tier::CacheTier;
pub use worker::EdgeWorker;

pub use body::Body;
