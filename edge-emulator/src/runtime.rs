//! The wasmtime host for the worker component: one engine and `InstancePre` built once, a
//! fresh Store and instance per request (as Cloudflare and Fastly isolate requests), and the
//! host side of the WIT imports.
//!
//! Config follows the probe in the design brief: pooling allocator with `pagemap_scan` and
//! 4 MiB kept resident (about 7 µs per instantiate here), async host calls on fibers so one
//! request's upstream wait does not block others.

use std::collections::{BTreeMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use wasmtime::component::{Component, HasSelf, Linker};
use wasmtime::{
    Config, Enabled, Engine, InstanceAllocationStrategy, PoolingAllocationConfig, Store,
    StoreLimits, StoreLimitsBuilder,
};

use edge_worker::routing::{Admission, HealthBoard, Router};

use crate::regional::RegionalTier;
use crate::stats::{OriginCounters, TierCounters};
use crate::store::MemoryStore;
use crate::Network;

wasmtime::component::bindgen!({
    path: "../wit",
    world: "edge-worker",
    imports: { default: async | trappable },
    exports: { default: async },
});

pub use edge::worker::types;

/// The worker component built by build.rs.
pub const WORKER_COMPONENT: &[u8] = include_bytes!(env!("EDGE_WORKER_COMPONENT"));

/// Requests that may run in the worker at once (pool size); the next one is refused with 503.
pub const MAX_CONCURRENT_INSTANCES: u32 = 1000;
/// Linear memory one request's instance may grow to.
pub const GUEST_MEMORY_LIMIT: usize = 64 * 1024 * 1024;

/// One edge PoP: its cache (what the worker sees through its cache port) and its way upstream.
pub struct PopNode {
    pub name: String,
    pub cache: MemoryStore<types::CacheEntry>,
    pub regional: Arc<RegionalTier>,
    pub rtt_to_regional: Duration,
    pub network: Arc<Network>,
    pub counters: TierCounters,
    /// URLs whose background refresh is running, so a burst of stale hits refreshes once.
    pub refreshing: Mutex<HashSet<String>>,
    /// The worker's auth configuration as JSON; `None`: every route is public.
    pub auth_config: Option<Arc<str>>,
    /// Geo routing between regional origins; `None`: misses go to the regional tier's origin.
    pub routing: Option<Arc<PopRouting>>,
    /// Where the PoP is (lat, lon): the location the worker routes from.
    pub location: (f64, f64),
}

/// A PoP's side of geo routing: the configuration the worker reads, and the passive health
/// that outlives each request's instance.
pub struct PopRouting {
    /// The routing configuration as JSON, for the worker.
    pub config_json: Arc<str>,
    /// The same, prepared: which origin a routed URL is for, and its timeouts.
    pub router: Arc<Router>,
    /// This PoP's circuit breakers, one per origin.
    pub health: HealthBoard,
    /// Counters per origin, shared by every PoP.
    pub origins: Arc<BTreeMap<String, Arc<OriginCounters>>>,
}

impl PopRouting {
    fn counters(&self, origin: &str) -> Option<&OriginCounters> {
        self.origins.get(origin).map(|c| &**c)
    }
}

/// One trip from a PoP's worker through its regional tier and back.
struct Hop {
    result: Result<http::Response<edge_worker::Body>, String>,
    real: Duration,
    simulated: Duration,
}

impl Hop {
    /// A usable answer: a response that is not a 5xx.
    fn usable(&self) -> bool {
        self.result
            .as_ref()
            .is_ok_and(|r| !r.status().is_server_error())
    }
}

impl PopNode {
    /// The routed origin a URL is for, when routing is on and the URL names one.
    fn routed_origin(&self, uri: &http::Uri) -> Option<&edge_worker::routing::OriginSpec> {
        let routing = self.routing.as_deref()?;
        routing
            .router
            .origin_for_authority(uri.authority()?.as_str())
    }

    /// Sends `request` to the regional tier, bounded by the routed origin's first-byte
    /// timeout (plus the scaled round trips on the way).
    async fn hop(self: &Arc<Self>, request: http::Request<edge_worker::Body>) -> Hop {
        crate::stats::bump(&self.counters.upstream_requests);
        let started = Instant::now();
        let limit = self.routed_origin(request.uri()).map(|origin| {
            let rtts = self.rtt_to_regional + self.regional.link_for(request.uri()).rtt;
            (
                origin.name.clone(),
                origin.first_byte_timeout,
                origin.first_byte_timeout + rtts.mul_f64(self.network.time_scale),
            )
        });
        let trip = async {
            self.network.traverse(self.rtt_to_regional).await;
            self.regional.handle_timed(request).await
        };
        let (result, unslept) = match limit {
            Some((origin, timeout, bound)) => match tokio::time::timeout(bound, trip).await {
                Ok((response, unslept)) => (Ok(response), unslept),
                Err(_) => (
                    Err(format!(
                        "origin {origin} sent no response head within {} ms",
                        timeout.as_millis()
                    )),
                    Duration::ZERO,
                ),
            },
            None => {
                let (response, unslept) = trip.await;
                (Ok(response), unslept)
            }
        };
        let real = started.elapsed();
        Hop {
            result,
            real,
            simulated: self.network.simulated(self.rtt_to_regional, real) + unslept,
        }
    }
}

/// Why a request's worker run failed; the host answers it with 5xx and carries on.
#[derive(Debug, thiserror::Error)]
pub enum WorkerFailure {
    #[error("the worker trapped: {0}")]
    Trap(String),
    #[error("no worker instance is free (at most {MAX_CONCURRENT_INSTANCES} at once): {0}")]
    Exhausted(String),
}

/// Per-request Store data: the host side of the imports.
pub struct GuestState {
    pop: Arc<PopNode>,
    limits: StoreLimits,
    /// Fault injection: the next import call traps, as a guest fault would.
    trap_armed: bool,
    /// Real time spent inside `fetch` imports and the simulated time those hops stand for.
    pub upstream_real: Duration,
    pub upstream_simulated: Duration,
}

impl GuestState {
    fn check_trap(&mut self) -> wasmtime::Result<()> {
        if self.trap_armed {
            self.trap_armed = false;
            return Err(wasmtime::Error::msg(
                "injected fault (x-emulator-fault: trap)",
            ));
        }
        Ok(())
    }
}

impl types::Host for GuestState {}

impl edge::worker::host::Host for GuestState {
    async fn now_ms(&mut self) -> wasmtime::Result<u64> {
        self.check_trap()?;
        Ok(self.pop.network.clock.now_ms())
    }

    async fn cache_get(&mut self, key: String) -> wasmtime::Result<Option<types::CacheEntry>> {
        self.check_trap()?;
        Ok(self.pop.cache.get(&key, self.pop.network.clock.now()))
    }

    async fn cache_put(
        &mut self,
        key: String,
        entry: types::CacheEntry,
        keep_ms: u64,
    ) -> wasmtime::Result<()> {
        self.check_trap()?;
        let keep_until = self.pop.network.clock.now() + Duration::from_millis(keep_ms);
        self.pop.cache.put(&key, entry, keep_until);
        Ok(())
    }

    async fn fetch(
        &mut self,
        request: types::Request,
    ) -> wasmtime::Result<Result<types::Response, String>> {
        self.check_trap()?;
        let pop = self.pop.clone();
        let request = match crate::convert::request_from_wit(request) {
            Ok(request) => request,
            Err(message) => return Ok(Err(message)),
        };
        let hop = pop.hop(request).await;
        self.upstream_real += hop.real;
        self.upstream_simulated += hop.simulated;
        Ok(self.answer(hop))
    }

    async fn fetch_hedged(
        &mut self,
        primary: types::Request,
        backup: types::Request,
        after_ms: u64,
    ) -> wasmtime::Result<Result<types::HedgedResponse, String>> {
        self.check_trap()?;
        let pop = self.pop.clone();
        let (primary, backup) = match (
            crate::convert::request_from_wit(primary),
            crate::convert::request_from_wit(backup),
        ) {
            (Ok(primary), Ok(backup)) => (primary, backup),
            (Err(message), _) | (_, Err(message)) => return Ok(Err(message)),
        };
        let after = Duration::from_millis(after_ms);
        let started = Instant::now();
        let backup_origin = pop.routed_origin(backup.uri()).map(|o| o.name.clone());
        let first = pop.hop(primary);
        tokio::pin!(first);
        let (hop, backup_won) = tokio::select! {
            hop = &mut first => (hop, false),
            () = tokio::time::sleep(after) => {
                if let (Some(routing), Some(name)) = (&pop.routing, &backup_origin) {
                    if let Some(counters) = routing.counters(name) {
                        crate::stats::bump(&counters.hedges_sent);
                    }
                }
                let second = pop.hop(backup);
                tokio::pin!(second);
                // The first usable answer wins; an unusable one waits for the other.
                tokio::select! {
                    hop = &mut first => if hop.usable() { (hop, false) } else { (second.await, true) },
                    hop = &mut second => if hop.usable() { (hop, true) } else { (first.await, false) },
                }
            }
        };
        if backup_won {
            if let (Some(routing), Some(name)) = (&pop.routing, &backup_origin) {
                if let Some(counters) = routing.counters(name) {
                    crate::stats::bump(&counters.hedges_won);
                }
            }
        }
        self.upstream_real += started.elapsed();
        self.upstream_simulated += if backup_won {
            after + hop.simulated
        } else {
            hop.simulated
        };
        Ok(self.answer(hop).map(|response| types::HedgedResponse {
            response,
            backup_won,
        }))
    }

    async fn routing_mode(&mut self) -> wasmtime::Result<Option<bool>> {
        self.check_trap()?;
        Ok(self
            .pop
            .routing
            .as_ref()
            .map(|routing| routing.router.redirect_status.is_some()))
    }

    async fn routing_config(&mut self) -> wasmtime::Result<Option<String>> {
        self.check_trap()?;
        Ok(self
            .pop
            .routing
            .as_ref()
            .map(|routing| routing.config_json.to_string()))
    }

    async fn origin_admit(&mut self, origin: String) -> wasmtime::Result<Result<(), u64>> {
        self.check_trap()?;
        let Some(routing) = &self.pop.routing else {
            return Ok(Ok(()));
        };
        Ok(
            match routing.health.admit(&origin, self.pop.network.clock.now()) {
                Admission::Reject { retry_after } => {
                    Err(u64::try_from(retry_after.as_millis()).unwrap_or(u64::MAX))
                }
                Admission::Allow | Admission::Probe => Ok(()),
            },
        )
    }

    async fn origin_report(&mut self, origin: String, ok: bool) -> wasmtime::Result<()> {
        self.check_trap()?;
        if let Some(routing) = &self.pop.routing {
            routing
                .health
                .record(&origin, self.pop.network.clock.now(), ok);
            if let (false, Some(counters)) = (ok, routing.counters(&origin)) {
                crate::stats::bump(&counters.failures);
            }
        }
        Ok(())
    }

    async fn auth_config(&mut self) -> wasmtime::Result<Option<String>> {
        self.check_trap()?;
        Ok(self.pop.auth_config.as_deref().map(str::to_string))
    }

    async fn log(&mut self, level: types::LogLevel, message: String) -> wasmtime::Result<()> {
        if !matches!(level, types::LogLevel::Debug) {
            eprintln!("[edge-{}] {level:?}: {message}", self.pop.name);
        }
        Ok(())
    }
}

impl GuestState {
    /// A hop's result as the guest receives it, with the regional hop in Server-Timing.
    fn answer(&self, hop: Hop) -> Result<types::Response, String> {
        let response = hop.result?;
        let timing = format!(
            "regional;dur={:.1};desc=\"{}\"",
            hop.simulated.as_secs_f64() * 1000.0,
            self.pop.regional.name
        );
        let mut response = crate::convert::response_to_wit(response);
        crate::convert::prepend_server_timing(&mut response.headers, &timing);
        Ok(response)
    }
}

/// What the host learned about one run, for Server-Timing.
#[derive(Debug, Default, Clone, Copy)]
pub struct RunReport {
    /// Time in the worker itself, excluding upstream hops.
    pub edge: Duration,
    /// Simulated time of the upstream hops the worker made.
    pub upstream: Duration,
}

pub struct WorkerRuntime {
    engine: Engine,
    pre: EdgeWorkerPre<GuestState>,
}

impl WorkerRuntime {
    /// Compiles the component and links the host imports once. WASI imports the guest's std
    /// pulls in but never needs are linked as traps, except a seed for HashMap.
    pub fn new(wasm: &[u8]) -> wasmtime::Result<Self> {
        let engine = Engine::new(&engine_config())?;
        let component = Component::new(&engine, wasm)
            .map_err(|e| e.context("compiling the worker component"))?;
        let mut linker: Linker<GuestState> = Linker::new(&engine);
        EdgeWorker::add_to_linker::<_, HasSelf<_>>(&mut linker, |state| state)?;
        link_wasi_seed(&mut linker)?;
        linker.define_unknown_imports_as_traps(&component)?;
        let pre = EdgeWorkerPre::new(linker.instantiate_pre(&component)?)?;
        Ok(Self { engine, pre })
    }

    fn store(&self, pop: &Arc<PopNode>, trap_armed: bool) -> Store<GuestState> {
        let limits = StoreLimitsBuilder::new()
            .memory_size(GUEST_MEMORY_LIMIT)
            .trap_on_grow_failure(true)
            .build();
        let state = GuestState {
            pop: pop.clone(),
            limits,
            trap_armed,
            upstream_real: Duration::ZERO,
            upstream_simulated: Duration::ZERO,
        };
        let mut store = Store::new(&self.engine, state);
        store.limiter(|state| &mut state.limits);
        store
    }

    /// A fresh instance on a fresh Store: the per-request isolation.
    async fn instantiate(
        &self,
        pop: &Arc<PopNode>,
        trap_armed: bool,
    ) -> Result<(Store<GuestState>, EdgeWorker), WorkerFailure> {
        let mut store = self.store(pop, trap_armed);
        let worker = self
            .pre
            .instantiate_async(&mut store)
            .await
            .map_err(|e| WorkerFailure::Exhausted(format!("{e:#}")))?;
        Ok((store, worker))
    }

    /// Runs `handle` in a fresh instance. A trap fails this request only.
    pub async fn handle(
        &self,
        pop: &Arc<PopNode>,
        request: &types::Request,
        ctx: &types::RequestContext,
        trap_armed: bool,
    ) -> Result<(types::Outcome, RunReport), WorkerFailure> {
        let started = Instant::now();
        let (mut store, worker) = self.instantiate(pop, trap_armed).await?;
        let outcome = worker
            .call_handle(&mut store, request, ctx)
            .await
            .map_err(|e| WorkerFailure::Trap(format!("{e:#}")))?;
        let state = store.data();
        let report = RunReport {
            edge: started.elapsed().saturating_sub(state.upstream_real),
            upstream: state.upstream_simulated,
        };
        Ok((outcome, report))
    }

    /// Creates and drops one instance without calling it: the isolation cost alone, which the
    /// per-request benchmark reports beside the full path.
    pub async fn instantiate_only(&self, pop: &Arc<PopNode>) -> Result<(), WorkerFailure> {
        self.instantiate(pop, false).await.map(drop)
    }

    /// Runs deferred work in a fresh instance.
    pub async fn run_deferred(
        &self,
        pop: &Arc<PopNode>,
        task: &types::Deferred,
        ctx: &types::RequestContext,
    ) -> Result<(), WorkerFailure> {
        let (mut store, worker) = self.instantiate(pop, false).await?;
        worker
            .call_run_deferred(&mut store, task, ctx)
            .await
            .map_err(|e| WorkerFailure::Trap(format!("{e:#}")))
    }
}

fn engine_config() -> Config {
    let mut pool = PoolingAllocationConfig::default();
    pool.total_component_instances(MAX_CONCURRENT_INSTANCES)
        .total_core_instances(MAX_CONCURRENT_INSTANCES * 4)
        .total_memories(MAX_CONCURRENT_INSTANCES * 2)
        .total_tables(MAX_CONCURRENT_INSTANCES * 4)
        .total_stacks(MAX_CONCURRENT_INSTANCES)
        .max_memory_size(GUEST_MEMORY_LIMIT)
        .linear_memory_keep_resident(4 * 1024 * 1024)
        .table_keep_resident(64 * 1024)
        .pagemap_scan(Enabled::Auto);
    let mut config = Config::new();
    config
        .wasm_component_model(true)
        // The guest is built with +wide-arithmetic (see build.rs).
        .wasm_wide_arithmetic(true)
        .allocation_strategy(InstanceAllocationStrategy::Pooling(pool));
    config
}

/// `wasi:random/insecure-seed`: std seeds HashMap's hasher from it. A constant keeps runs
/// reproducible; the guest hashes no attacker-chosen keys across requests (each instance lives
/// for one request).
fn link_wasi_seed(linker: &mut Linker<GuestState>) -> wasmtime::Result<()> {
    for version in ["0.2.0", "0.2.4", "0.2.6"] {
        let mut instance = linker.instance(&format!("wasi:random/insecure-seed@{version}"))?;
        instance.func_wrap("insecure-seed", |_, (): ()| Ok(((0x5eed_u64, 0xed6e_u64),)))?;
    }
    Ok(())
}
