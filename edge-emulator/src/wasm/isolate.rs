//! Warm instances of the worker, kept per PoP and reused across requests, as Cloudflare runs
//! isolates; or one fresh instance per request, as Fastly Compute does by default.
//!
//! An isolate serves one request at a time: concurrency comes from more isolates, each one
//! pooling-allocator slot, so the pool's size bounds them together with the admission limit.
//! An isolate is dropped, never reused, after a trap or a CPU or memory limit (wasmtime
//! poisons a Store that trapped, and a half-run request may have left guest state half
//! updated); after `max_requests`; and when its linear memory passed `memory_bound` (linear
//! memory never shrinks, so Fastly's `maxMemoryMiB` recycles the same way).

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use wasmtime::Store;

use crate::bindings::EdgeWorker;
use crate::cdn::pop::PopNode;
use crate::cdn::stats::IsolateReport;

use super::state::{GuestState, WorkerFailure};

/// How the worker's instances are used.
#[derive(
    Debug,
    Clone,
    Copy,
    Default,
    PartialEq,
    Eq,
    clap::ValueEnum,
    serde::Deserialize,
    serde::Serialize,
)]
#[serde(rename_all = "lowercase")]
pub enum Isolation {
    /// Warm instances per PoP, reused across requests (Cloudflare Workers).
    #[default]
    Isolate,
    /// A fresh instance per request (Fastly Compute's default).
    Fresh,
}

impl Isolation {
    pub fn as_str(self) -> &'static str {
        match self {
            Isolation::Isolate => "isolate",
            Isolation::Fresh => "fresh",
        }
    }
}

/// When isolates are recycled, and how many wait idle.
#[derive(Debug, Clone, Copy)]
pub struct IsolatePolicy {
    pub isolation: Isolation,
    /// Requests one isolate serves before it is replaced.
    pub max_requests: u64,
    /// Linear memory past which an isolate is replaced after its request, in bytes.
    pub memory_bound: usize,
    /// Idle isolates each PoP keeps; more are dropped when their request ends.
    pub max_idle_per_pop: usize,
}

impl Default for IsolatePolicy {
    fn default() -> Self {
        Self {
            isolation: Isolation::Isolate,
            max_requests: DEFAULT_MAX_REQUESTS,
            memory_bound: DEFAULT_MEMORY_BOUND_MIB * 1024 * 1024,
            max_idle_per_pop: DEFAULT_MAX_IDLE_PER_POP,
        }
    }
}

/// Idle isolates a PoP keeps by default: enough for a burst's worth of reuse, few enough that
/// their linear memory (never returned while they live) stays small.
pub const DEFAULT_MAX_IDLE_PER_POP: usize = 4;
/// Requests an isolate serves before it is replaced, by default.
pub const DEFAULT_MAX_REQUESTS: u64 = 100_000;
/// Linear memory past which an isolate is replaced, by default (MiB).
pub const DEFAULT_MEMORY_BOUND_MIB: usize = 32;

/// Why an isolate was dropped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Retirement {
    Trap,
    CpuLimit,
    MemoryLimit,
    MaxRequests,
    MemoryBound,
    /// Its PoP already kept as many idle isolates as it may.
    IdleFull,
    /// The request it ran was abandoned (the client went away).
    Cancelled,
    /// Fresh mode: every instance serves one request.
    SingleUse,
    /// Dropped to make room in the pool for a PoP that had none free.
    Evicted,
}

impl Retirement {
    const ALL: [Self; 9] = [
        Self::Trap,
        Self::CpuLimit,
        Self::MemoryLimit,
        Self::MaxRequests,
        Self::MemoryBound,
        Self::IdleFull,
        Self::Cancelled,
        Self::SingleUse,
        Self::Evicted,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Trap => "trap",
            Self::CpuLimit => "cpu_limit",
            Self::MemoryLimit => "memory_limit",
            Self::MaxRequests => "max_requests",
            Self::MemoryBound => "memory_bound",
            Self::IdleFull => "idle_full",
            Self::Cancelled => "cancelled",
            Self::SingleUse => "single_use",
            Self::Evicted => "evicted",
        }
    }

    /// The reason a failed call retires its isolate.
    pub fn of(failure: &WorkerFailure) -> Self {
        match failure {
            WorkerFailure::CpuLimit { .. } => Self::CpuLimit,
            WorkerFailure::MemoryLimit { .. } => Self::MemoryLimit,
            WorkerFailure::Trap(_) | WorkerFailure::Exhausted(_) => Self::Trap,
        }
    }
}

/// A worker instance with its Store.
pub struct Isolate {
    pub store: Store<GuestState>,
    pub worker: EdgeWorker,
    /// Calls it has run.
    pub served: u64,
}

/// The idle isolates of every PoP, and what happened to isolates so far.
pub struct IsolatePool {
    pub policy: IsolatePolicy,
    /// Idle isolates by PoP (the PoP node's address: two nodes may share a name in tests).
    idle: Mutex<HashMap<usize, Vec<Isolate>>>,
    created: AtomicU64,
    requests: AtomicU64,
    max_served: AtomicU64,
    retired: [AtomicU64; Retirement::ALL.len()],
}

impl IsolatePool {
    pub fn new(policy: IsolatePolicy) -> Self {
        Self {
            policy,
            idle: Mutex::default(),
            created: AtomicU64::new(0),
            requests: AtomicU64::new(0),
            max_served: AtomicU64::new(0),
            retired: Default::default(),
        }
    }

    /// An idle isolate of `pop`, if it has one (never in fresh mode).
    pub fn take(&self, pop: &Arc<PopNode>) -> Option<Isolate> {
        if self.policy.isolation == Isolation::Fresh {
            return None;
        }
        self.idle
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get_mut(&key(pop))?
            .pop()
    }

    pub fn created(&self) {
        self.created.fetch_add(1, Ordering::Relaxed);
    }

    /// Takes back an isolate whose call succeeded: kept for the PoP's next request, or
    /// retired.
    pub fn give_back(&self, pop: &Arc<PopNode>, mut isolate: Isolate) {
        isolate.served += 1;
        self.requests.fetch_add(1, Ordering::Relaxed);
        self.max_served.fetch_max(isolate.served, Ordering::Relaxed);
        let reason = if self.policy.isolation == Isolation::Fresh {
            Some(Retirement::SingleUse)
        } else if isolate.served >= self.policy.max_requests {
            Some(Retirement::MaxRequests)
        } else if isolate.store.data().memory_bytes > self.policy.memory_bound {
            Some(Retirement::MemoryBound)
        } else {
            None
        };
        if let Some(reason) = reason {
            return self.count(reason);
        }
        // What the request held is released now, not when the isolate is next used.
        isolate.store.data_mut().request.locks.clear();
        let mut idle = self.idle.lock().unwrap_or_else(|e| e.into_inner());
        let kept = idle.entry(key(pop)).or_default();
        if kept.len() < self.policy.max_idle_per_pop {
            kept.push(isolate);
        } else {
            drop(idle);
            self.count(Retirement::IdleFull);
        }
    }

    /// Counts an isolate dropped because its call failed or was abandoned.
    pub fn failed(&self, reason: Retirement) {
        self.requests.fetch_add(1, Ordering::Relaxed);
        self.count(reason);
    }

    fn count(&self, reason: Retirement) {
        let i = Retirement::ALL
            .iter()
            .position(|r| *r == reason)
            .expect("every reason is in ALL");
        self.retired[i].fetch_add(1, Ordering::Relaxed);
    }

    /// Drops every idle isolate, to free pool slots for a PoP that found none; returns how
    /// many were dropped.
    pub fn evict_idle(&self) -> usize {
        let dropped: Vec<Isolate> = self
            .idle
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .values_mut()
            .flat_map(std::mem::take)
            .collect();
        for _ in &dropped {
            self.count(Retirement::Evicted);
        }
        dropped.len()
    }

    pub fn report(&self) -> IsolateReport {
        let read = |c: &AtomicU64| c.load(Ordering::Relaxed);
        let created = read(&self.created);
        let requests = read(&self.requests);
        let retired: BTreeMap<&'static str, u64> = Retirement::ALL
            .iter()
            .zip(&self.retired)
            .map(|(reason, count)| (reason.as_str(), read(count)))
            .collect();
        let (idle, idle_memory) = self
            .idle
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .values()
            .flatten()
            .fold((0u64, 0u64), |(n, bytes), isolate| {
                (n + 1, bytes + isolate.store.data().memory_bytes as u64)
            });
        IsolateReport {
            mode: self.policy.isolation.as_str(),
            created,
            live: created.saturating_sub(retired.values().sum()),
            idle,
            idle_memory_bytes: idle_memory,
            requests,
            requests_per_isolate: if created == 0 {
                0.0
            } else {
                (requests as f64 / created as f64 * 100.0).round() / 100.0
            },
            max_requests_per_isolate: read(&self.max_served),
            retired,
        }
    }
}

fn key(pop: &Arc<PopNode>) -> usize {
    Arc::as_ptr(pop) as usize
}
