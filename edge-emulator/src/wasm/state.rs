//! What a Store holds for the host: the PoP the instance serves, its limits, and the state of
//! the request it is running (reset before each one).

use std::sync::Arc;
use std::time::Duration;

use wasmtime::StoreLimits;

use super::bodies::BodyTable;
use crate::cdn::coalesce::FetchGuard;
use crate::cdn::pop::PopNode;

/// How often the engine's epoch advances (`engine::start_epoch_ticker`): the unit a request's
/// guest CPU is counted in, and so the granularity of the CPU limit.
pub const EPOCH_TICK: Duration = Duration::from_millis(1);

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

/// Store data: the host side of the imports.
pub struct GuestState {
    pub pop: Arc<PopNode>,
    limits: StoreLimits,
    memory_limit: usize,
    /// The instance's linear memory, as last grown: an isolate past its bound is retired
    /// after the request (linear memory never shrinks).
    pub memory_bytes: usize,
    cpu_limit: Duration,
    background_cpu_limit: Duration,
    /// What the running request has done so far.
    pub request: RequestState,
    /// The bodies the running request holds (the WIT `body` resource).
    pub bodies: BodyTable,
}

/// The part of the Store that belongs to one request.
#[derive(Default)]
pub struct RequestState {
    /// Epoch ticks seen while guest code ran: its CPU time in `EPOCH_TICK`s. Counted at each
    /// tick the guest is running through; every entry into guest code starts a fresh tick
    /// (the Store's call hook), so time in host calls counts none and time the OS thread was
    /// descheduled counts at most one tick, unlike wall time on a busy machine.
    cpu_ticks: u64,
    /// Time the host spent on the guest's behalf (coding its bodies), counted as its CPU.
    host_cpu: Duration,
    /// Which limit stopped the guest, when one did.
    pub exceeded: Option<WorkerFailure>,
    /// Fault injection: the next import call traps, as a guest fault would.
    trap_armed: bool,
    /// Work after the response (deferred), under the background CPU limit.
    background: bool,
    /// Fetch locks this request holds; released when it ends even if the guest never unlocks.
    pub locks: Vec<(String, FetchGuard)>,
    /// Real time spent inside `fetch` imports and the simulated time those hops stand for.
    pub upstream_real: Duration,
    pub upstream_simulated: Duration,
}

impl GuestState {
    pub fn new(
        pop: Arc<PopNode>,
        limits: StoreLimits,
        memory_limit: usize,
        cpu: Duration,
        background_cpu: Duration,
    ) -> Self {
        Self {
            pop,
            limits,
            memory_limit,
            memory_bytes: 0,
            cpu_limit: cpu,
            background_cpu_limit: background_cpu,
            request: RequestState::default(),
            // What the worker hands the host per request is bounded as its memory is.
            bodies: BodyTable::new(memory_limit),
        }
    }

    /// Starts a request on this Store: nothing of the previous one carries over.
    pub fn begin(&mut self, trap_armed: bool, background: bool) {
        self.request = RequestState {
            trap_armed,
            background,
            ..RequestState::default()
        };
        self.bodies.begin();
    }

    /// Called at each epoch tick while guest code runs: traps once the guest's own time
    /// passes the limit.
    pub fn check_cpu(&mut self) -> wasmtime::Result<wasmtime::UpdateDeadline> {
        self.request.cpu_ticks += 1;
        self.over_limit()?;
        Ok(wasmtime::UpdateDeadline::Continue(1))
    }

    /// An error (the guest traps) once the request's CPU passed its limit.
    fn over_limit(&mut self) -> wasmtime::Result<()> {
        let used = EPOCH_TICK * u32::try_from(self.request.cpu_ticks).unwrap_or(u32::MAX)
            + self.request.host_cpu;
        let limit = if self.request.background {
            self.background_cpu_limit
        } else {
            self.cpu_limit
        };
        if used > limit {
            let failure = WorkerFailure::CpuLimit {
                used_ms: u64::try_from(used.as_millis()).unwrap_or(u64::MAX),
                limit_ms: u64::try_from(limit.as_millis()).unwrap_or(u64::MAX),
            };
            let message = failure.to_string();
            self.request.exceeded = Some(failure);
            return Err(wasmtime::Error::msg(message));
        }
        Ok(())
    }

    /// Counts time the host spent working for the guest (coding a body on its behalf)
    /// against the request's CPU limit, as if the guest had spent it; traps past the limit.
    pub fn charge_cpu(&mut self, spent: Duration) -> wasmtime::Result<()> {
        self.request.host_cpu = self.request.host_cpu.saturating_add(spent);
        self.over_limit()
    }

    /// Every import starts here: an armed fault traps the guest at its next host call.
    pub fn check_trap(&mut self) -> wasmtime::Result<()> {
        if self.request.trap_armed {
            self.request.trap_armed = false;
            return Err(wasmtime::Error::msg(
                "injected fault (x-emulator-fault: trap)",
            ));
        }
        Ok(())
    }
}

impl wasmtime::ResourceLimiter for GuestState {
    fn memory_growing(
        &mut self,
        current: usize,
        desired: usize,
        maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        let allowed = self.limits.memory_growing(current, desired, maximum);
        if matches!(allowed, Ok(true)) {
            self.memory_bytes = desired;
        } else {
            self.request.exceeded = Some(WorkerFailure::MemoryLimit {
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
