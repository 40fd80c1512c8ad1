//! The discrete-event engine: the real emulator (wasm worker per request, RFC 9111 tiers,
//! in-process origins) on a tokio runtime whose clock is paused. Every RTT, origin service
//! time and TTL is a timer; tokio jumps straight to the next deadline whenever every task
//! waits, so virtual time passes as fast as the machine can run the requests, fetches become
//! visible in a tier's cache only when they complete in virtual time, and requests arriving
//! meanwhile coalesce behind them.

use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use tokio::time::Instant;

use crate::emulator::{Emulator, EmulatorOptions};
use crate::mode::RunMode;
use crate::sim::assemble::build_report;
use crate::sim::bound_glue::stream_bound_of;
use crate::sim::counters::{origin_requests, snapshot, Baseline};
use crate::sim::measure::{serve, Collector, DemoTokens};
use crate::sim::report::Report;
use crate::sim::setup::{SimSetup, WallFigures};
use crate::sim::units::VIRTUAL_EPOCH;
use crate::sim::workload::{EventKind, SimEvent};

/// The guest CPU a replayed request may use. The CPU limit is wall time (epoch ticks), which
/// a busy machine or a debug build stretches, while a replay's report must not depend on
/// either (a request cut off at 50 ms on a loaded CI core once made two runs differ): a
/// replay keeps the limit only as a guard against a runaway guest.
pub const REPLAY_CPU_LIMIT: std::time::Duration = std::time::Duration::from_secs(10);

/// Runs `events` through a fresh emulator built from `setup`, on its own paused runtime.
pub fn simulate(
    setup: &SimSetup,
    events: impl Iterator<Item = SimEvent>,
    total_hint: u64,
    progress: &indicatif::ProgressBar,
) -> anyhow::Result<(Report, WallFigures)> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .start_paused(true)
        .build()?;
    #[allow(clippy::disallowed_methods)]
    // why: wall time of the whole run, for the throughput figure only
    let wall = std::time::Instant::now();
    progress.set_length(total_hint);
    let (report, (isolates, codings)) = runtime.block_on(run(setup, events, progress))?;
    if report.scenario.requests == 0 {
        let s = &report.scenario;
        anyhow::bail!(
            "{}: no request was measured: all {} requests fell inside the {} s warm-up. \
             Replay more requests (--requests) or shorten the warm-up (--warmup-s)",
            s.name,
            s.warmup_requests,
            s.warmup_s
        );
    }
    let figures = WallFigures {
        elapsed: wall.elapsed(),
        requests: report.scenario.requests,
        isolates,
        codings,
    };
    Ok((report, figures))
}

/// The replay itself: each event at its virtual time, the origin's timeline per bucket, the
/// baseline at the end of the warm-up, then the report.
async fn run(
    setup: &SimSetup,
    events: impl Iterator<Item = SimEvent>,
    progress: &indicatif::ProgressBar,
) -> anyhow::Result<(
    Report,
    (
        crate::cdn::stats::IsolateReport,
        crate::cdn::coding::CodingReport,
    ),
)> {
    let start_time = SystemTime::UNIX_EPOCH + VIRTUAL_EPOCH;
    let emulator = Emulator::start(EmulatorOptions {
        time_scale: 1.0,
        auth_toml: setup.auth_toml.clone(),
        routing_toml: setup.routing_toml.clone(),
        cache_policy_toml: setup.cache_policy_toml.clone(),
        mode: RunMode::Replay { start: start_time },
        edge_capacity_bytes: setup.edge_capacity_bytes,
        regional_caching: setup.regional_caching,
        jitter: setup.jitter,
        seed: setup.seed,
        isolates: setup.isolates,
        guest_limits: crate::wasm::GuestLimits {
            cpu: REPLAY_CPU_LIMIT,
            background_cpu: REPLAY_CPU_LIMIT,
            ..Default::default()
        },
        ..EmulatorOptions::new(setup.topology.clone())
    })
    .await?;
    let token = Arc::new(DemoTokens::new(start_time)?);
    let collector = Arc::new(Mutex::new(Collector::default()));
    let origin = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    let mut baseline: Option<Baseline> = None;
    let mut origin_timeline = Vec::new();
    let mut next_bucket = setup.bucket_s;
    let mut last_origin = 0;
    let mut last_at = 0.0;
    let mut purges: Vec<(f64, edge_worker::purge::Purge)> = Vec::new();
    for event in events {
        let at = Duration::from_secs_f64(event.at_s.max(0.0));
        tokio::time::sleep_until(origin + at).await;
        last_at = event.at_s;
        while event.at_s >= next_bucket {
            let now = origin_requests(&emulator);
            origin_timeline.push(now - last_origin);
            last_origin = now;
            next_bucket += setup.bucket_s;
        }
        if baseline.is_none() && event.at_s >= setup.warmup_s {
            baseline = Some(snapshot(&emulator));
        }
        let measured = event.at_s >= setup.warmup_s;
        match event.kind {
            EventKind::Write { object } => {
                for handle in emulator.origins.values() {
                    if let Some(stub) = &handle.stub {
                        stub.bump(object);
                    }
                }
            }
            EventKind::Purge { target, soft } => {
                let purge = EventKind::purge(&target, soft).map_err(anyhow::Error::msg)?;
                let reaches_at = event.at_s + setup.purge_propagation.as_secs_f64();
                purges.push((reaches_at, purge.clone()));
                let (emulator, propagation) = (emulator.clone(), setup.purge_propagation);
                tasks.spawn(async move {
                    tokio::time::sleep(propagation).await;
                    emulator.purge(&purge);
                });
            }
            EventKind::Read(read) => {
                let bucket = (event.at_s / setup.bucket_s) as usize;
                let (emulator, collector, token) =
                    (emulator.clone(), collector.clone(), token.clone());
                let add_compute = setup.add_compute;
                tasks.spawn(async move {
                    let at_s = event.at_s;
                    serve(
                        &emulator,
                        &collector,
                        read,
                        &token,
                        (at_s, bucket),
                        measured,
                        add_compute,
                    )
                    .await;
                });
                progress.inc(1);
            }
        }
        // Reap finished tasks as we go, so the set does not grow with the run.
        while tasks.try_join_next().is_some() {}
    }
    while tasks.join_next().await.is_some() {}
    let now = origin_requests(&emulator);
    origin_timeline.push(now - last_origin);
    let baseline = baseline.unwrap_or_default();
    let collector = Arc::try_unwrap(collector)
        .map_err(|_| anyhow::anyhow!("requests still running after the run"))?
        .into_inner()
        .unwrap_or_else(|e| e.into_inner());
    let duration_s = (last_at - setup.warmup_s).max(setup.bucket_s);
    let mut collector = collector;
    let stream = std::mem::take(&mut collector.stream);
    let invalidations = std::mem::take(&mut collector.invalidations);
    let mut objects = std::mem::take(&mut collector.objects);
    let mut object_index = std::mem::take(&mut collector.object_index);
    let stream_bound = stream_bound_of(
        setup,
        &emulator,
        stream,
        (&mut objects, &mut object_index),
        &purges,
        invalidations,
        origin,
    );
    let report = build_report(
        setup,
        &emulator,
        collector,
        &baseline,
        origin_timeline,
        duration_s,
        Some(stream_bound),
    );
    let isolates = (emulator.runtime.isolate_report(), emulator.codings.report());
    emulator.shutdown();
    Ok((report, isolates))
}
