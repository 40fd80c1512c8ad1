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

use crate::coalesce::{Coalescer, FetchGuard};
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

/// What one request's instance may use, and how many may run at once.
#[derive(Debug, Clone, Copy)]
pub struct GuestLimits {
    /// Time the guest may compute per request, not counting its waits on upstream or on
    /// another request's fetch (Cloudflare's CPU-time limit). Enforced by epoch interruption.
    pub cpu: Duration,
    /// Linear memory one instance may grow to; growing past it traps (`StoreLimits` with
    /// `trap_on_grow_failure`).
    pub memory_bytes: usize,
    /// Instances that may exist at once (the pooling allocator's size); beyond it a request
    /// is refused with 503.
    pub instances: u32,
}

impl Default for GuestLimits {
    fn default() -> Self {
        Self {
            cpu: Duration::from_millis(50),
            memory_bytes: 64 * 1024 * 1024,
            instances: 2048,
        }
    }
}

impl GuestLimits {
    /// Bounds the options take: a memory cap the pool can reserve for every slot, and a
    /// pool that fits in the address space.
    pub fn check(&self) -> Result<(), String> {
        if self.cpu.is_zero() || self.cpu > Duration::from_secs(60) {
            return Err("the CPU limit must be within 1 ms..=60 s".into());
        }
        if !(1024 * 1024..=1024 * 1024 * 1024).contains(&self.memory_bytes) {
            return Err("the memory limit must be within 1..=1024 MiB".into());
        }
        if !(1..=16_384).contains(&self.instances) {
            return Err("the instance limit must be within 1..=16384".into());
        }
        Ok(())
    }
}

/// How often the engine's epoch advances: the granularity of the CPU deadline.
const EPOCH_TICK: Duration = Duration::from_millis(1);

/// One edge PoP: its cache (what the worker sees through its cache port) and its way upstream.
pub struct PopNode {
    pub name: String,
    pub cache: MemoryStore<types::CacheEntry>,
    pub regional: Arc<RegionalTier>,
    pub rtt_to_regional: Duration,
    pub network: Arc<Network>,
    pub counters: TierCounters,
    /// One fetch per key at a time across this PoP's instances (the worker's `cache-lock`).
    pub coalescer: Coalescer,
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
    #[error("no worker instance is free: {0}")]
    Exhausted(String),
    #[error("the worker exceeded its CPU limit ({used_ms} ms used, limit {limit_ms} ms)")]
    CpuLimit { used_ms: u64, limit_ms: u64 },
    #[error("the worker exceeded its memory limit ({limit_mib} MiB)")]
    MemoryLimit { limit_mib: usize },
}

/// Per-request Store data: the host side of the imports.
pub struct GuestState {
    pop: Arc<PopNode>,
    limits: StoreLimits,
    memory_limit: usize,
    /// Epoch ticks seen while guest code ran: its CPU time in `EPOCH_TICK`s. Counted at each
    /// tick the guest is running through, so waits in host calls and time the OS thread was
    /// descheduled count at most one tick each, unlike wall time on a busy machine.
    cpu_ticks: u64,
    cpu_limit: Duration,
    /// Which limit stopped the guest, when one did.
    exceeded: Option<WorkerFailure>,
    /// Fault injection: the next import call traps, as a guest fault would.
    trap_armed: bool,
    /// Fetch locks this instance holds; dropped with the Store if the guest never unlocks.
    locks: Vec<(String, FetchGuard)>,
    /// Real time spent inside `fetch` imports and the simulated time those hops stand for.
    pub upstream_real: Duration,
    pub upstream_simulated: Duration,
}

impl wasmtime::ResourceLimiter for GuestState {
    fn memory_growing(
        &mut self,
        current: usize,
        desired: usize,
        maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        let allowed = self.limits.memory_growing(current, desired, maximum);
        if !matches!(allowed, Ok(true)) {
            self.exceeded = Some(WorkerFailure::MemoryLimit {
                limit_mib: self.memory_limit / (1024 * 1024),
            });
        }
        allowed
    }

    fn table_growing(
        &mut self,
        current: usize,
        desired: usize,
        maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        self.limits.table_growing(current, desired, maximum)
    }
}

impl GuestState {
    /// Called at each epoch tick while guest code runs: traps once the guest's own time
    /// passes the limit.
    fn check_cpu(&mut self) -> wasmtime::Result<wasmtime::UpdateDeadline> {
        self.cpu_ticks += 1;
        let used = EPOCH_TICK * u32::try_from(self.cpu_ticks).unwrap_or(u32::MAX);
        if used > self.cpu_limit {
            let failure = WorkerFailure::CpuLimit {
                used_ms: u64::try_from(used.as_millis()).unwrap_or(u64::MAX),
                limit_ms: u64::try_from(self.cpu_limit.as_millis()).unwrap_or(u64::MAX),
            };
            let message = failure.to_string();
            self.exceeded = Some(failure);
            return Err(wasmtime::Error::msg(message));
        }
        Ok(wasmtime::UpdateDeadline::Continue(1))
    }

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

    async fn cache_lock(&mut self, key: String) -> wasmtime::Result<bool> {
        self.check_trap()?;
        let guard = self.pop.coalescer.lock(&key).await;
        Ok(match guard {
            Some(guard) => {
                self.locks.push((key, guard));
                true
            }
            None => false,
        })
    }

    async fn cache_unlock(&mut self, key: String) -> wasmtime::Result<()> {
        self.locks.retain(|(held, _)| *held != key);
        Ok(())
    }

    async fn cache_delete(&mut self, key: String) -> wasmtime::Result<()> {
        self.check_trap()?;
        self.pop.cache.remove(&key);
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
    pub limits: GuestLimits,
}

impl WorkerRuntime {
    /// Compiles the component and links the host imports once. WASI imports the guest's std
    /// pulls in but never needs are linked as traps, except a seed for HashMap.
    pub fn new(wasm: &[u8], limits: GuestLimits) -> wasmtime::Result<Self> {
        limits.check().map_err(wasmtime::Error::msg)?;
        let engine = Engine::new(&engine_config(&limits))?;
        start_epoch_ticker(&engine);
        let component = Component::new(&engine, wasm)
            .map_err(|e| e.context("compiling the worker component"))?;
        let mut linker: Linker<GuestState> = Linker::new(&engine);
        EdgeWorker::add_to_linker::<_, HasSelf<_>>(&mut linker, |state| state)?;
        link_wasi_seed(&mut linker)?;
        linker.define_unknown_imports_as_traps(&component)?;
        let pre = EdgeWorkerPre::new(linker.instantiate_pre(&component)?)?;
        Ok(Self {
            engine,
            pre,
            limits,
        })
    }

    fn store(&self, pop: &Arc<PopNode>, trap_armed: bool) -> Store<GuestState> {
        let limits = StoreLimitsBuilder::new()
            .memory_size(self.limits.memory_bytes)
            .trap_on_grow_failure(true)
            .build();
        let state = GuestState {
            pop: pop.clone(),
            limits,
            memory_limit: self.limits.memory_bytes,
            cpu_ticks: 0,
            cpu_limit: self.limits.cpu,
            exceeded: None,
            trap_armed,
            locks: Vec::new(),
            upstream_real: Duration::ZERO,
            upstream_simulated: Duration::ZERO,
        };
        let mut store = Store::new(&self.engine, state);
        store.limiter(|state| state);
        store.set_epoch_deadline(1);
        store.epoch_deadline_callback(|mut context| context.data_mut().check_cpu());
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
            .map_err(|e| failure(&mut store, e))?;
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
            .map_err(|e| failure(&mut store, e))
    }
}

/// Why a call into the guest failed: a limit it hit, else the trap itself.
fn failure(store: &mut Store<GuestState>, error: wasmtime::Error) -> WorkerFailure {
    store
        .data_mut()
        .exceeded
        .take()
        .unwrap_or_else(|| WorkerFailure::Trap(format!("{error:#}")))
}

/// Advances the engine's epoch every tick for as long as the engine lives.
fn start_epoch_ticker(engine: &Engine) {
    let engine = engine.weak();
    let spawned = std::thread::Builder::new()
        .name("wasm-epoch".into())
        .spawn(move || {
            while let Some(engine) = engine.upgrade() {
                engine.increment_epoch();
                drop(engine);
                std::thread::sleep(EPOCH_TICK);
            }
        });
    if let Err(error) = spawned {
        eprintln!("cannot start the CPU-limit ticker ({error}); guests run unlimited");
    }
}

fn engine_config(limits: &GuestLimits) -> Config {
    let instances = limits.instances;
    let mut pool = PoolingAllocationConfig::default();
    pool.total_component_instances(instances)
        .total_core_instances(instances * 4)
        .total_memories(instances * 2)
        .total_tables(instances * 4)
        .total_stacks(instances)
        .max_memory_size(limits.memory_bytes)
        .linear_memory_keep_resident(4 * 1024 * 1024)
        .table_keep_resident(64 * 1024)
        .pagemap_scan(Enabled::Auto);
    let mut config = Config::new();
    config
        .wasm_component_model(true)
        // The guest is built with +wide-arithmetic (see build.rs).
        .wasm_wide_arithmetic(true)
        .epoch_interruption(true)
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
