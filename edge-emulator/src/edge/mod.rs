//! One client request at a PoP, as `serve` and `simulate` both run it: the client's round
//! trip, the worker on an isolate of the PoP, counters from the worker's typed outcome,
//! deferred work spawned, Server-Timing.

use std::sync::Arc;
use std::time::Duration;

use edge_worker::hops::{self, Hop};
use edge_worker::routing::{Reason, RouteChoice};
use edge_worker::CfCacheStatus;

use crate::bindings::types;
use crate::cdn::pop::PopNode;
use crate::cdn::stats::bump;
use crate::emulator::Emulator;
use crate::wasm::{self, Background, RunReport, WorkerFailure};
use edge_worker::outcome::Recompression;

/// What the PoP answered, with what the worker decided.
pub struct Served {
    pub response: wasm::Answer,
    pub report: RunReport,
    /// Every tier the response passed, origin-nearest first; the edge's hop is last, with
    /// the worker's measured compute as its `spent`.
    pub hops: Vec<Hop>,
    /// Bytes the response saved over its variant's miss-time coding.
    pub recompression_saved: u64,
    /// A composed response's fragments, with their paths.
    pub parts: Vec<edge_worker::outcome::Part>,
    /// The request's time at the edge on the runtime's clock, its upstream hops taken out:
    /// from reaching the PoP to the worker's answer. In a replay (virtual clock) this is
    /// deterministic and holds no compute (which takes no virtual time): it is the time
    /// spent waiting at the edge, e.g. behind another request's fetch (coalescing); a hedge's
    /// delay counts as upstream. `report.edge` is the worker's measured wall compute instead.
    pub at_edge: std::time::Duration,
}

impl Served {
    /// The edge's hop.
    pub fn edge(&self) -> Option<&Hop> {
        self.hops.last()
    }

    /// The edge cache's outcome (`None`: refused before the cache).
    pub fn cache(&self) -> Option<CfCacheStatus> {
        self.edge()?.cache.as_ref().map(|c| c.status)
    }

    /// The request waited for another request's fetch of the same key.
    pub fn collapsed(&self) -> bool {
        self.edge()
            .and_then(|h| h.cache.as_ref())
            .is_some_and(|c| c.collapsed)
    }
}

/// The PoP entry point: runs one client request through `pop`.
pub async fn serve_at_pop(
    emulator: &Arc<Emulator>,
    pop: &Arc<PopNode>,
    request: types::Request,
    ctx: types::RequestContext,
    trap: bool,
) -> Result<Served, WorkerFailure> {
    let client_rtt = emulator.topology.client_rtt();
    emulator.network.traverse(client_rtt).await;
    let reached = tokio::time::Instant::now();
    let (outcome, report) = match emulator.runtime.handle(pop, &request, &ctx, trap).await {
        Ok(result) => result,
        Err(failure) => {
            bump(&pop.counters.worker_errors);
            return Err(failure);
        }
    };
    let mut hops = outcome.hops;
    if let Some(edge) = hops.last_mut() {
        edge.spent = Some(report.edge);
    }
    let edge_cache = hops.last().and_then(|h| h.cache.as_ref());
    let cache = edge_cache.map(|c| c.status);
    pop.counters
        .record(cache, edge_cache.is_some_and(|c| c.collapsed));
    pop.counters
        .record_negative(cache, edge_cache.is_some_and(|c| c.negative));
    pop.counters.recompression_saved_bytes.fetch_add(
        outcome.recompression_saved,
        std::sync::atomic::Ordering::Relaxed,
    );
    emulator.exposures.record(&outcome.exposures);
    if let Some(route) = &outcome.route {
        count_failover(emulator, cache, route);
    }
    for task in outcome.deferred {
        spawn_deferred(emulator, pop, task, ctx.clone());
    }
    let at_edge = reached.elapsed().saturating_sub(report.upstream);
    let mut response = outcome.response;
    prepend_timings(
        &mut response.headers,
        &hops::host_timings(client_rtt, report.edge, &pop.name),
    );
    Ok(Served {
        response,
        report,
        hops,
        recompression_saved: outcome.recompression_saved,
        parts: outcome.parts,
        at_edge,
    })
}

/// Puts the host's own Server-Timing entries (client, edge) first in a WIT response's list.
fn prepend_timings(headers: &mut Vec<(String, Vec<u8>)>, entries: &[hops::Timing<'_>]) {
    let mut joined = entries
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(", ")
        .into_bytes();
    match headers
        .iter_mut()
        .find(|(name, _)| name.eq_ignore_ascii_case("server-timing"))
    {
        Some((_, value)) => {
            joined.extend_from_slice(b", ");
            joined.extend_from_slice(value);
            *value = joined;
        }
        None => headers.push(("server-timing".into(), joined)),
    }
}

/// Counts a response that a failover origin produced for this request (not one served from
/// a stored copy, which this request only refreshed or failed to).
fn count_failover(emulator: &Emulator, cache: Option<CfCacheStatus>, route: &RouteChoice) {
    if matches!(
        cache,
        Some(CfCacheStatus::Hit | CfCacheStatus::Stale | CfCacheStatus::Updating)
    ) || route.reason != Reason::Failover
    {
        return;
    }
    if let Some(counters) = emulator.origin_counters.get(&route.origin) {
        bump(&counters.failovers);
    }
}

/// Runs a worker's deferred task on an isolate of the PoP after the response, once per URL
/// at a time per PoP (a burst of stale hits triggers one refresh).
fn spawn_deferred(
    emulator: &Arc<Emulator>,
    pop: &Arc<PopNode>,
    task: Background,
    ctx: types::RequestContext,
) {
    let url = task.name();
    if !pop
        .refreshing
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .insert(url.clone())
    {
        return;
    }
    let (emulator, pop) = (emulator.clone(), pop.clone());
    tokio::spawn(async move {
        // Recompression runs in the host with the core's own function (`cdn::recode`).
        let task = match task {
            Background::Guest(task) => task,
            Background::Recompress(task) => {
                let cpu = recompress(&emulator, &pop, task).await;
                pop.refreshing
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .remove(&url);
                bump(&pop.counters.recompressions);
                let micros = u64::try_from(cpu.as_micros()).unwrap_or(u64::MAX);
                pop.counters
                    .recompression_cpu_us
                    .fetch_add(micros, std::sync::atomic::Ordering::Relaxed);
                return;
            }
        };
        if let Err(failure) = emulator.runtime.run_deferred(&pop, &task, &ctx).await {
            bump(&pop.counters.worker_errors);
            eprintln!("[edge-{}] background work on {url}: {failure}", pop.name);
        }
        pop.refreshing
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&url);
        bump(&pop.counters.background_refreshes);
    });
}

/// Recodes a variant natively with the core's own function (`cdn::recode`). Returns the CPU
/// an edge spends on it (the coder's native time, modelled: a PoP codes for itself, whatever
/// the emulator's memo shares), zero when there was nothing to recode.
async fn recompress(emulator: &Emulator, pop: &PopNode, task: Recompression) -> Duration {
    let memo = &emulator.codings;
    let plan = crate::cdn::recode::plan(pop, &task);
    let cpu = plan.map_or(Duration::ZERO, |(coding, level)| {
        crate::cdn::recode::modelled_duration(coding, level, task.body.len())
    });
    if emulator.mode == crate::mode::RunMode::Serve {
        // In `serve` up to ~0.6 s of brotli must not stall the worker thread's other
        // requests.
        tokio::task::block_in_place(|| crate::cdn::recode::recompress(pop, memo, task));
        return cpu;
    }
    // A replay (one thread, virtual time): the coding runs on other threads while the replay
    // goes on for the time the coder would take, then lands.
    if let Some((coding, level)) = plan {
        memo.start(coding, task.body.to_bytes(), level);
        tokio::time::sleep(cpu).await;
    }
    crate::cdn::recode::recompress(pop, memo, task);
    cpu
}

#[cfg(test)]
mod tests;
