//! The wasmtime host for the worker component: the engine and `InstancePre` built once, the
//! isolates (warm instances per PoP, or a fresh one per request), and the host side of the
//! WIT imports (`imports/`, one file per interface).
//!
//! Host calls are async on fibers, so one request's upstream wait does not block others.

mod bodies;
pub(crate) mod convert;
mod engine;
mod imports;
mod isolate;
mod precompiled;
mod state;

use std::sync::Arc;
use std::time::{Duration, Instant};

use wasmtime::component::{HasSelf, Linker};
use wasmtime::{CallHook, Engine, Store, StoreLimitsBuilder};

use crate::bindings::{types, EdgeWorker, EdgeWorkerPre};
use crate::cdn::pop::PopNode;
use crate::cdn::stats::IsolateReport;

pub use convert::{Answer, Background, Decision};
pub use engine::GuestLimits;
pub use isolate::{IsolatePolicy, Isolation, DEFAULT_MAX_REQUESTS, DEFAULT_MEMORY_BOUND_MIB};
pub use state::WorkerFailure;

use isolate::{Isolate, IsolatePool, Retirement};
use state::GuestState;

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
    isolates: IsolatePool,
}

impl WorkerRuntime {
    /// Compiles the component (or loads it compiled, see `precompiled`) and links the host
    /// imports once. WASI imports the guest's std
    /// pulls in but never needs are linked as traps, except a seed for HashMap.
    pub fn new(wasm: &[u8], limits: GuestLimits, policy: IsolatePolicy) -> wasmtime::Result<Self> {
        limits.check().map_err(wasmtime::Error::msg)?;
        let engine = Engine::new(&engine::engine_config(&limits, policy.isolation))?;
        engine::start_epoch_ticker(&engine);
        let component = precompiled::load(&engine, wasm)
            .map_err(|e| e.context("compiling the worker component"))?;
        let mut linker: Linker<GuestState> = Linker::new(&engine);
        EdgeWorker::add_to_linker::<_, HasSelf<_>>(&mut linker, |state| state)?;
        engine::link_wasi_seed(&mut linker)?;
        linker.define_unknown_imports_as_traps(&component)?;
        let pre = EdgeWorkerPre::new(linker.instantiate_pre(&component)?)?;
        Ok(Self {
            engine,
            pre,
            limits,
            isolates: IsolatePool::new(policy),
        })
    }

    fn store(&self, pop: &Arc<PopNode>) -> Store<GuestState> {
        let limits = StoreLimitsBuilder::new()
            .memory_size(self.limits.memory_bytes)
            .trap_on_grow_failure(true)
            .build();
        let state = GuestState::new(
            pop.clone(),
            limits,
            self.limits.memory_bytes,
            self.limits.cpu,
            self.limits.background_cpu,
        );
        let mut store = Store::new(&self.engine, state);
        store.limiter(|state| state);
        store.epoch_deadline_callback(|mut context| context.data_mut().check_cpu());
        // Time in the host is not the guest's CPU: an import's wait (a fetch) and copying its
        // arguments and results across the boundary (4 MB for a 4 MB body) would otherwise
        // cost a tick each, charged at the guest's next check. Each entry into guest code
        // starts a fresh tick instead, so only ticks that pass while guest code runs count.
        store.call_hook(|mut context, hook| {
            if matches!(hook, CallHook::CallingWasm | CallHook::ReturningFromHost) {
                context.set_epoch_deadline(1);
            }
            Ok(())
        });
        store
    }

    /// A new instance on a new Store. When the pool has no slot left, idle isolates of every
    /// PoP are dropped and the instantiation is tried once more.
    async fn instantiate(&self, pop: &Arc<PopNode>) -> Result<Isolate, WorkerFailure> {
        let mut store = self.store(pop);
        let worker = match self.pre.instantiate_async(&mut store).await {
            Ok(worker) => worker,
            Err(error) => {
                if self.isolates.evict_idle() == 0 {
                    return Err(WorkerFailure::Exhausted(format!("{error:#}")));
                }
                store = self.store(pop);
                self.pre
                    .instantiate_async(&mut store)
                    .await
                    .map_err(|e| WorkerFailure::Exhausted(format!("{e:#}")))?
            }
        };
        self.isolates.created();
        Ok(Isolate {
            store,
            worker,
            served: 0,
        })
    }

    /// An instance for one call at `pop`: a warm one when the PoP has one idle, else new.
    async fn checkout(
        &self,
        pop: &Arc<PopNode>,
        trap_armed: bool,
        background: bool,
    ) -> Result<Isolate, WorkerFailure> {
        let mut isolate = match self.isolates.take(pop) {
            Some(isolate) => isolate,
            None => self.instantiate(pop).await?,
        };
        isolate.store.data_mut().begin(trap_armed, background);
        // Deadlines are relative: each call gets the full CPU limit.
        isolate.store.set_epoch_deadline(1);
        Ok(isolate)
    }

    /// Runs `call` on an isolate of `pop` and gives the isolate back, or retires it when the
    /// call failed (or was abandoned: the guard counts it if this future is dropped).
    async fn run<T>(
        &self,
        pop: &Arc<PopNode>,
        trap_armed: bool,
        background: bool,
        call: impl AsyncFnOnce(&mut Isolate) -> wasmtime::Result<T>,
    ) -> Result<(T, Isolate), WorkerFailure> {
        let isolate = self.checkout(pop, trap_armed, background).await?;
        let mut guard = Abandoned {
            pool: &self.isolates,
            isolate: Some(isolate),
        };
        let isolate = guard.isolate.as_mut().expect("set above");
        let result = call(isolate).await;
        let mut isolate = guard.isolate.take().expect("set above");
        match result {
            Ok(value) => Ok((value, isolate)),
            Err(error) => {
                let failure = isolate
                    .store
                    .data_mut()
                    .request
                    .exceeded
                    .take()
                    .unwrap_or_else(|| WorkerFailure::Trap(format!("{error:#}")));
                self.isolates.failed(Retirement::of(&failure));
                Err(failure)
            }
        }
    }

    /// Runs `handle` for one client request on an isolate of `pop`. A trap or a limit fails
    /// this request only, and its isolate is replaced.
    pub async fn handle(
        &self,
        pop: &Arc<PopNode>,
        request: &types::Request,
        ctx: &types::RequestContext,
        trap_armed: bool,
    ) -> Result<(Decision, RunReport), WorkerFailure> {
        let started = Instant::now();
        let (outcome, isolate) = self
            .run(pop, trap_armed, false, async |isolate| {
                let outcome = isolate
                    .worker
                    .call_handle(&mut isolate.store, request, ctx)
                    .await?;
                // Bodies are taken out of the request's table before the isolate goes back.
                convert::decision_from_wit(outcome, &mut isolate.store.data_mut().bodies)
            })
            .await?;
        let done = &isolate.store.data().request;
        let report = RunReport {
            edge: started.elapsed().saturating_sub(done.upstream_real),
            upstream: done.upstream_simulated,
        };
        self.isolates.give_back(pop, isolate);
        Ok((outcome, report))
    }

    /// Runs deferred work on an isolate of `pop`, as `ctx.waitUntil` runs it in the isolate
    /// that served the request.
    pub async fn run_deferred(
        &self,
        pop: &Arc<PopNode>,
        task: &types::Deferred,
        ctx: &types::RequestContext,
    ) -> Result<(), WorkerFailure> {
        let ((), isolate) = self
            .run(pop, false, true, async |isolate| {
                isolate
                    .worker
                    .call_run_deferred(&mut isolate.store, task, ctx)
                    .await
            })
            .await?;
        self.isolates.give_back(pop, isolate);
        Ok(())
    }

    /// Creates and drops one instance without calling it: the isolation cost alone, which the
    /// per-request benchmark reports beside the full path.
    pub async fn instantiate_only(&self, pop: &Arc<PopNode>) -> Result<(), WorkerFailure> {
        self.instantiate(pop).await.map(drop)
    }

    pub fn isolate_report(&self) -> IsolateReport {
        self.isolates.report()
    }

    /// Drops every idle isolate (they hold their PoP alive): at shutdown.
    pub fn drain(&self) {
        self.isolates.evict_idle();
    }
}

/// An isolate lent to a call: if the call's future is dropped before it ends (the client
/// went away), the isolate is dropped with it and counted.
struct Abandoned<'a> {
    pool: &'a IsolatePool,
    isolate: Option<Isolate>,
}

impl Drop for Abandoned<'_> {
    fn drop(&mut self) {
        if self.isolate.take().is_some() {
            self.pool.failed(Retirement::Cancelled);
        }
    }
}
