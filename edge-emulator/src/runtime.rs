//! The wasmtime host for the worker component: one engine and `InstancePre` built once, a
//! fresh Store and instance per request (as Cloudflare and Fastly isolate requests), and the
//! host side of the WIT imports.
//!
//! Config follows the probe in the design brief: pooling allocator with `pagemap_scan` and
//! 4 MiB kept resident (about 7 µs per instantiate here), async host calls on fibers so one
//! request's upstream wait does not block others.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use wasmtime::component::{Component, HasSelf, Linker};
use wasmtime::{
    Config, Enabled, Engine, InstanceAllocationStrategy, PoolingAllocationConfig, Store,
    StoreLimits, StoreLimitsBuilder,
};

use crate::regional::RegionalTier;
use crate::stats::TierCounters;
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
        let started = Instant::now();
        let pop = self.pop.clone();
        let request = match crate::convert::request_from_wit(request) {
            Ok(request) => request,
            Err(message) => return Ok(Err(message)),
        };
        pop.network.traverse(pop.rtt_to_regional).await;
        let response = pop.regional.handle(request).await;
        let real = started.elapsed();
        let simulated = pop.network.simulated(pop.rtt_to_regional, real);
        self.upstream_real += real;
        self.upstream_simulated += simulated;
        let timing = format!(
            "regional;dur={:.1};desc=\"{}\"",
            simulated.as_secs_f64() * 1000.0,
            pop.regional.name
        );
        let mut response = crate::convert::response_to_wit(response);
        crate::convert::prepend_server_timing(&mut response.headers, &timing);
        Ok(Ok(response))
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
