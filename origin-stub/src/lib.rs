//! A realistic origin for the edge to sit in front of: a JSON catalogue API with ETags,
//! Last-Modified and per-route Cache-Control, configurable latency, fault injection, and
//! request counters the offload tests read.
//!
//! Servers follow mini-redis: [`app`] builds the router, [`run`] serves it on a listener until
//! `shutdown` resolves.

pub mod catalogue;
pub mod dashboard;
pub mod faults;
mod routes;

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use axum::Router;
use tokio::net::TcpListener;

pub use faults::FaultPlan;
pub use routes::DEMO_JWKS;

/// The origin's clock. The emulator passes its own so that Date headers agree with the
/// edge's idea of now when tests move time forward.
pub trait Clock: Send + Sync + 'static {
    fn now(&self) -> SystemTime;
}

/// The operating system's clock, for standalone use.
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> SystemTime {
        SystemTime::now()
    }
}

/// How the origin behaves.
#[derive(Clone)]
pub struct OriginConfig {
    /// Names the origin in Server-Timing and logs, e.g. `us-east`.
    pub name: String,
    /// Real time added to every API response (service time).
    pub latency: Duration,
    pub clock: Arc<dyn Clock>,
    /// Faults active from the start; `PUT /__origin/faults` replaces them at run time.
    pub faults: FaultPlan,
}

impl Default for OriginConfig {
    fn default() -> Self {
        Self {
            name: "origin".into(),
            latency: Duration::ZERO,
            clock: Arc::new(SystemClock),
            faults: FaultPlan::default(),
        }
    }
}

/// Requests the origin has seen, by path.
#[derive(Debug, Default, Clone, serde::Serialize)]
pub struct OriginStats {
    pub requests: u64,
    /// Conditional requests answered 304.
    pub not_modified: u64,
    /// Requests answered with an injected fault.
    pub faults: u64,
    /// Requests that carried an Authorization header (the edge drops it unless configured).
    pub with_authorization: u64,
    /// Requests that carried `X-Auth-Sub` (a verified subject forwarded by the edge).
    pub with_auth_sub: u64,
    pub by_path: BTreeMap<String, u64>,
}

/// Shared state behind the router.
pub struct Origin {
    pub config: OriginConfig,
    pub stats: Mutex<OriginStats>,
    pub faults: Mutex<FaultPlan>,
    /// Product versions changed by `POST /__origin/products/{id}/bump`.
    versions: Mutex<std::collections::HashMap<u64, u64>>,
    rng: Mutex<fastrand::Rng>,
}

impl Origin {
    pub fn new(config: OriginConfig) -> Arc<Self> {
        Arc::new(Self {
            faults: Mutex::new(config.faults.clone()),
            config,
            stats: Mutex::default(),
            versions: Mutex::default(),
            rng: Mutex::new(fastrand::Rng::with_seed(7)),
        })
    }

    /// Changes an object or product (its version, hence body and ETag), as
    /// `POST /__origin/products/{id}/bump` does. Returns the new version.
    pub fn bump(&self, id: u64) -> u64 {
        let mut versions = self.versions.lock().unwrap_or_else(|e| e.into_inner());
        let version = versions.entry(id).or_default();
        *version += 1;
        *version
    }

    pub fn stats(&self) -> OriginStats {
        self.stats.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }
}

/// The origin's router: the API under `/api`, assets under `/static`, admin under `/__origin`.
pub fn app(origin: Arc<Origin>) -> Router {
    routes::router(origin)
}

/// Serves `app(origin)` on `listener` until `shutdown` completes.
pub async fn run(
    listener: TcpListener,
    origin: Arc<Origin>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(listener, app(origin))
        .with_graceful_shutdown(shutdown)
        .await
}
