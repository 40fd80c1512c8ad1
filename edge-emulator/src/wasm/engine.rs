//! The wasmtime engine the worker runs on: pooling allocator, epoch interruption for the CPU
//! limit, and what one instance may use.
//!
//! Config follows the probe in the design brief: pooling allocator with `pagemap_scan` and
//! 4 MiB kept resident (about 7 µs per instantiate here).

use std::time::Duration;

use wasmtime::component::Linker;
use wasmtime::{Config, Enabled, Engine, InstanceAllocationStrategy, PoolingAllocationConfig};

use super::isolate::Isolation;
use super::state::{GuestState, EPOCH_TICK};

/// What one request's instance may use, and how many may run at once.
#[derive(Debug, Clone, Copy)]
pub struct GuestLimits {
    /// Time the guest may compute per request, not counting its waits on upstream or on
    /// another request's fetch (Cloudflare's CPU-time limit). Enforced by epoch interruption.
    pub cpu: Duration,
    /// Guest CPU for one piece of work after the response (`ctx.waitUntil`): background
    /// revalidation and recompression. Larger than `cpu`, as on Cloudflare, where waitUntil
    /// work shares the invocation's limit (30 s by default on paid plans): recoding a variant
    /// at brotli 10–11 takes up to ~0.5 s natively (BENCHMARKS.md, "Fast on the miss, best in
    /// the cache").
    pub background_cpu: Duration,
    /// Linear memory one instance may grow to; growing past it traps (`StoreLimits` with
    /// `trap_on_grow_failure`).
    pub memory_bytes: usize,
    /// Instances that may exist at once (the pooling allocator's size), idle isolates
    /// included; beyond it a request is refused with 503.
    pub instances: u32,
}

impl Default for GuestLimits {
    fn default() -> Self {
        Self {
            cpu: Duration::from_millis(50),
            background_cpu: Duration::from_millis(2000),
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
        if self.background_cpu.is_zero() || self.background_cpu > Duration::from_secs(60) {
            return Err("the background CPU limit must be within 1 ms..=60 s".into());
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

/// Advances the engine's epoch every tick for as long as the engine lives.
pub fn start_epoch_ticker(engine: &Engine) {
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

/// Linear memory a freed pool slot keeps resident (zeroed in place rather than returned to
/// the kernel): what makes instantiation cheap when instances come and go per request. Warm
/// isolates are created rarely, so there it would only hold memory: every slot ever used keeps
/// this much.
fn keep_resident(isolation: Isolation) -> usize {
    match isolation {
        Isolation::Fresh => 4 * 1024 * 1024,
        Isolation::Isolate => 256 * 1024,
    }
}

pub fn engine_config(limits: &GuestLimits, isolation: Isolation) -> Config {
    let instances = limits.instances;
    let mut pool = PoolingAllocationConfig::default();
    pool.total_component_instances(instances)
        .total_core_instances(instances * 4)
        .total_memories(instances * 2)
        .total_tables(instances * 4)
        .total_stacks(instances)
        .max_memory_size(limits.memory_bytes)
        .linear_memory_keep_resident(keep_resident(isolation))
        .table_keep_resident(64 * 1024)
        .pagemap_scan(Enabled::Auto);
    let mut config = Config::new();
    config
        .wasm_component_model(true)
        // The guest is built with +wide-arithmetic (see build.rs).
        .wasm_wide_arithmetic(true)
        .epoch_interruption(true)
        .allocation_strategy(InstanceAllocationStrategy::Pooling(pool));
    // Profiling: `perf record` names guest functions through /tmp/perf-PID.map (build the
    // guest with EDGE_GUEST_SYMBOLS=1 to keep their names).
    if std::env::var_os("EDGE_EMULATOR_PERFMAP").is_some() {
        config.profiler(wasmtime::ProfilingStrategy::PerfMap);
    }
    config
}

/// `wasi:random/insecure-seed`: std seeds HashMap's hasher from it. A constant keeps runs
/// reproducible. An isolate outlives a request, but what it keeps (the worker's
/// configuration) holds no map keyed by request input, so a fixed seed gives a client no
/// lever across requests.
pub fn link_wasi_seed(linker: &mut Linker<GuestState>) -> wasmtime::Result<()> {
    for version in ["0.2.0", "0.2.4", "0.2.6"] {
        let mut instance = linker.instance(&format!("wasi:random/insecure-seed@{version}"))?;
        instance.func_wrap("insecure-seed", |_, (): ()| Ok(((0x5eed_u64, 0xed6e_u64),)))?;
    }
    Ok(())
}
