//! The discrete-event engine: the real emulator (wasm worker per request, RFC 9111 tiers,
//! in-process origins) on a tokio runtime whose clock is paused. Every RTT, origin service
//! time and TTL is a timer; tokio jumps straight to the next deadline whenever every task
//! waits, so virtual time passes as fast as the machine can run the requests, fetches become
//! visible in a tier's cache only when they complete in virtual time, and requests arriving
//! meanwhile coalesce behind them.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use edge_worker::CfCacheStatus;
use hdrhistogram::Histogram;
use tokio::time::Instant;

use crate::bindings::types;
use crate::cdn::stats::TierCounters;
use crate::cdn::topology::Topology;
use crate::edge::serve_at_pop;
use crate::sim::report::{
    BoundFigure, BytesFigures, HopLatency, LatencySummary, Offload, OriginLoad, Outcomes,
    PurgeFigures, Report, ScenarioSummary, TierFigures,
};
use crate::sim::stream_bound::{self, EdgeResult};
use crate::sim::units::{round, VIRTUAL_EPOCH};
use crate::sim::workload::{EventKind, Read, SimEvent, WorkloadSpec};
use crate::wasm::IsolatePolicy;
use crate::{Emulator, EmulatorOptions};

/// How a simulation is set up (one configuration of a comparison).
#[derive(Debug, Clone)]
pub struct SimSetup {
    pub name: String,
    pub seed: u64,
    pub topology: Topology,
    pub auth_toml: Option<String>,
    pub routing_toml: Option<String>,
    /// The cache policy (TOML): TTL jitter, negative caching; `None`: neither.
    pub cache_policy_toml: Option<String>,
    pub edge_capacity_bytes: Option<u64>,
    pub regional_caching: bool,
    /// Add the worker's real compute time to each latency (off: reports stay deterministic).
    pub add_compute: bool,
    /// Network jitter: each hop's RTT × (1 + jitter·N(0,1)), clamped at 0.
    pub jitter: f64,
    /// Requests before this many seconds warm the caches and are not measured.
    pub warmup_s: f64,
    /// Width of a timeline bucket.
    pub bucket_s: f64,
    /// The workload's analytic description, when it was generated (bounds need it).
    pub spec: Option<WorkloadSpec>,
    /// Warm isolates or a fresh instance per request, and when isolates are recycled: changes
    /// the run's cost, never its report.
    pub isolates: IsolatePolicy,
    pub workload: String,
    /// How long a purge takes to reach every cache.
    pub purge_propagation: Duration,
}

/// What the run took in wall time (not part of the deterministic report).
#[derive(Debug, Clone)]
pub struct WallFigures {
    pub elapsed: Duration,
    pub requests: u64,
    /// How the worker's instances were used (they change the cost, not the report).
    pub isolates: crate::cdn::stats::IsolateReport,
}

impl WallFigures {
    pub fn requests_per_second(&self) -> f64 {
        self.requests as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }
}

/// Per-request figures gathered while the run goes on.
#[derive(Default)]
struct Collector {
    reads: u64,
    latencies: BTreeMap<String, Histogram<u64>>,
    /// Server-Timing durations per hop (`sim::hops`).
    hops: crate::sim::hops::HopHistograms,
    client_timeline: Vec<u64>,
    to_clients: u64,
    saved_by_compression: u64,
    /// Body bytes to clients by Content-Encoding ("identity" when none).
    by_coding: BTreeMap<String, u64>,
    saved_by_recompression: u64,
    served_by_tier: BTreeMap<String, u64>,
    not_modified: u64,
    errors: u64,
    /// Reads replayed during the warm-up (not measured).
    warmed: u64,
    /// Edge outcome per CF-Cache-Status, for measured requests.
    edge_status: BTreeMap<String, u64>,
    /// Last ETag seen per (path, accept-encoding): what conditional clients send back.
    etags: HashMap<(String, String), String>,
    /// Every read as the stream bound needs it, warm-up included.
    stream: Vec<stream_bound::ClientRead>,
    /// Object paths (as caches key them) by index, and back.
    objects: Vec<String>,
    object_index: HashMap<String, usize>,
}

impl Collector {
    /// The index of the object `path` names, adding it when new.
    fn object(&mut self, path: String) -> usize {
        intern(&mut self.objects, &mut self.object_index, path)
    }
}

/// The index of `path` in `objects`, adding it when new.
fn intern(objects: &mut Vec<String>, index: &mut HashMap<String, usize>, path: String) -> usize {
    if let Some(&i) = index.get(&path) {
        return i;
    }
    objects.push(path.clone());
    index.insert(path, objects.len() - 1);
    objects.len() - 1
}

/// Counter values at the end of warm-up, subtracted from the final ones.
#[derive(Default, Clone)]
struct Baseline {
    tiers: BTreeMap<String, BTreeMap<&'static str, u64>>,
    origin_requests: u64,
    origin_not_modified: u64,
    origin_bytes: u64,
    purges: crate::cdn::purge::PurgeTotals,
}

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
    let (report, isolates) = runtime.block_on(run(setup, events, progress))?;
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
    };
    Ok((report, figures))
}

async fn run(
    setup: &SimSetup,
    events: impl Iterator<Item = SimEvent>,
    progress: &indicatif::ProgressBar,
) -> anyhow::Result<(Report, crate::cdn::stats::IsolateReport)> {
    let start_time = SystemTime::UNIX_EPOCH + VIRTUAL_EPOCH;
    let emulator = Emulator::start(EmulatorOptions {
        time_scale: 1.0,
        auth_toml: setup.auth_toml.clone(),
        routing_toml: setup.routing_toml.clone(),
        cache_policy_toml: setup.cache_policy_toml.clone(),
        virtual_start: Some(start_time),
        edge_capacity_bytes: setup.edge_capacity_bytes,
        regional_caching: setup.regional_caching,
        jitter: setup.jitter,
        seed: setup.seed,
        isolates: setup.isolates,
        ..EmulatorOptions::new(setup.topology.clone())
    })
    .await?;
    let token = crate::demo_token::mint(
        crate::demo_token::DemoAlg::Hs256,
        "sim-user",
        None,
        start_time,
        Duration::from_secs(365 * 86_400),
    )?;
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
    let mut objects = std::mem::take(&mut collector.objects);
    let mut object_index = std::mem::take(&mut collector.object_index);
    let mut report = build_report(
        setup,
        &emulator,
        collector,
        &baseline,
        origin_timeline,
        duration_s,
    );
    report.stream_bound = Some(stream_bound_of(
        setup,
        &emulator,
        stream,
        (&mut objects, &mut object_index),
        &purges,
        origin,
    ));
    let isolates = emulator.runtime.isolate_report();
    emulator.shutdown();
    Ok((report, isolates))
}

async fn serve(
    emulator: &Arc<Emulator>,
    collector: &Mutex<Collector>,
    read: Read,
    token: &str,
    (at_s, bucket): (f64, usize),
    measured: bool,
    add_compute: bool,
) {
    let arrived = Instant::now();
    let signed_in = read.headers.iter().any(|(n, _)| n == "authorization");
    let pop = match &read.pop {
        Some(name) => emulator.pops.get(name),
        None => None,
    }
    .unwrap_or_else(|| {
        let pop = emulator.topology.pop_for_country(read.country.as_deref());
        &emulator.pops[&pop.name]
    })
    .clone();
    let encoding = read
        .headers
        .iter()
        .find(|(n, _)| n == "accept-encoding")
        .map_or(String::new(), |(_, v)| v.clone());
    let memory_key = (read.path.clone(), encoding);
    let mut headers: Vec<(String, Vec<u8>)> = read
        .headers
        .iter()
        .map(|(n, v)| {
            let value = if n == "authorization" && v == "demo" {
                format!("Bearer {token}")
            } else {
                v.clone()
            };
            (n.clone(), value.into_bytes())
        })
        .collect();
    if read.conditional {
        let known = collector
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .etags
            .get(&memory_key)
            .cloned();
        if let Some(etag) = known {
            headers.push(("if-none-match".into(), etag.into_bytes()));
        }
    }
    let object_path = format!("http://sim.edge.example{}", read.path)
        .parse()
        .ok()
        .and_then(|uri: http::Uri| stream_bound::object_path(&uri));
    let cacheable_method = matches!(read.method.as_str(), "GET" | "HEAD");
    let request = types::Request {
        method: read.method.clone(),
        url: format!("http://sim.edge.example{}", read.path),
        headers,
        body: Vec::new(),
    };
    let ctx = pop.context(read.country.clone());
    let result = serve_at_pop(emulator, &pop, request, ctx, false).await;
    let mut latency = arrived.elapsed();
    let mut c = collector.lock().unwrap_or_else(|e| e.into_inner());
    let (status, headers, body_len, compute, cache, recompression_saved, collapsed, at_edge) =
        match &result {
            Ok(served) => (
                served.response.status,
                served.response.headers.as_slice(),
                served.response.body.len() as u64,
                served.report.edge,
                served.cache,
                served.recompression_saved,
                served.collapsed,
                Some(served.at_edge),
            ),
            Err(_) => (503, &[][..], 0, Duration::ZERO, None, 0, false, None),
        };
    // The edge hop: virtual time at the edge, plus compute only when latencies include it.
    let at_edge = at_edge.map(|t| if add_compute { t + compute } else { t });
    if add_compute {
        latency += compute;
    }
    let header = |name: &str| {
        headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| String::from_utf8_lossy(v).into_owned())
    };
    if let Some(etag) = header("etag") {
        c.etags.insert(memory_key, etag);
    }
    // Which tier's cache the bytes came from: the edge's on an edge hit, else the upper tier
    // (regional or shield) whose Cache-Status member, origin-nearest first, says hit, else
    // the origin.
    let cache_status = header("cache-status").unwrap_or_default();
    let origin_nearest = cache_status.split(',').next().unwrap_or("").trim_start();
    let tier = if matches!(
        cache,
        Some(CfCacheStatus::Hit | CfCacheStatus::Stale | CfCacheStatus::Updating)
    ) {
        "edge"
    } else if !origin_nearest.contains("; hit") {
        "origin"
    } else if origin_nearest.starts_with("regional-") {
        "regional"
    } else if origin_nearest.starts_with("shield-") {
        "shield"
    } else {
        "origin"
    };
    let edge_result = match cache {
        _ if result.is_err() => EdgeResult::Failed,
        Some(CfCacheStatus::Hit) => EdgeResult::Hit,
        Some(CfCacheStatus::Updating) => EdgeResult::Stale { if_error: false },
        Some(CfCacheStatus::Stale) => EdgeResult::Stale { if_error: true },
        _ if collapsed => EdgeResult::Collapsed,
        Some(CfCacheStatus::Revalidated) => EdgeResult::Revalidated,
        Some(_) => EdgeResult::Fetched,
        None => EdgeResult::Answered,
    };
    let key = match object_path {
        Some(path) => c.object(path),
        // A URL no cache could key: one object of its own, never stored.
        None => c.object(format!("unkeyable:{}", read.path)),
    };
    let pop_index = emulator.pops.keys().position(|name| *name == pop.name);
    c.stream.push(stream_bound::ClientRead {
        at_s,
        pop: pop_index.unwrap_or(0),
        key,
        signed_in,
        cacheable_method,
        bytes: body_len,
        edge: edge_result,
        age_s: header("age")
            .and_then(|a| a.trim().parse::<f64>().ok())
            .unwrap_or(0.0),
        // A response the worker made itself (no cache status) came from no origin.
        from_origin: tier == "origin" && cache.is_some(),
        measured,
    });
    // The timeline counts the warm-up too, as the origin's does: the chart shades it.
    if c.client_timeline.len() <= bucket {
        c.client_timeline.resize(bucket + 1, 0);
    }
    c.client_timeline[bucket] += 1;
    if !measured {
        c.warmed += 1;
        return;
    }
    c.reads += 1;
    c.to_clients += body_len;
    if status == 304 {
        c.not_modified += 1;
    }
    if status >= 400 {
        c.errors += 1;
    }
    let edge = cache.map_or("NONE", |status| status.as_str());
    *c.edge_status.entry(edge.to_string()).or_default() += 1;
    *c.served_by_tier.entry(tier.to_string()).or_default() += body_len;
    let coding = header("content-encoding");
    if let (Some(identity), Some(_)) = (read.identity_bytes, &coding) {
        c.saved_by_compression += identity.saturating_sub(body_len);
    }
    let coding = coding.map_or_else(|| "identity".to_string(), |c| c.to_ascii_lowercase());
    *c.by_coding.entry(coding).or_default() += body_len;
    c.saved_by_recompression += recompression_saved;
    if let Some(at_edge) = at_edge {
        // The header's `edge` is wall compute (not deterministic): the virtual figure stands
        // in for it.
        if let Some(timing) = header("server-timing") {
            c.hops.record_header(&timing, &["edge"]);
        }
        c.hops.record("edge", at_edge.as_secs_f64() * 1000.0);
    }
    let micros = u64::try_from(latency.as_micros())
        .unwrap_or(u64::MAX)
        .max(1);
    for key in [pop.regional.name.clone(), "all".to_string()] {
        let histogram = c
            .latencies
            .entry(key)
            .or_insert_with(|| Histogram::new(3).expect("3 significant digits is valid"));
        let _ = histogram.record(micros);
    }
}

/// The stream bound of this run: the replayed reads, the origin fetches the tiers logged
/// (each object's storability comes from the first response its origin sent), and the
/// purges, each matched against every object the run named.
fn stream_bound_of(
    setup: &SimSetup,
    emulator: &Emulator,
    reads: Vec<stream_bound::ClientRead>,
    (objects, object_index): (&mut Vec<String>, &mut HashMap<String, usize>),
    purges: &[(f64, edge_worker::purge::Purge)],
    started: Instant,
) -> crate::sim::report::StreamBound {
    let topology = &emulator.topology;
    let pops: Vec<String> = emulator.pops.keys().map(|p| format!("edge-{p}")).collect();
    let mut tops: Vec<String> = emulator
        .regionals
        .values()
        .map(|r| r.member.clone())
        .collect();
    tops.extend(emulator.shields.values().map(|s| s.member.clone()));
    let top_index = |name: &str| tops.iter().position(|t| t == name);
    let mut top_of_pop = Vec::new();
    let (mut longest_path, mut longest_to_top) = (Duration::ZERO, Duration::ZERO);
    for pop in emulator.pops.values() {
        let regional = &pop.regional;
        let shield = regional.shield.as_ref();
        let top = shield.map_or(&regional.member, |s| &s.tier.member);
        top_of_pop.push(top_index(top).unwrap_or(0));
        let (to_top, top_to_origin) = match shield {
            Some(shield) => (shield.rtt, shield.tier.longest_origin_rtt()),
            None => (Duration::ZERO, regional.longest_origin_rtt()),
        };
        let to_top = topology.client_rtt() + pop.rtt_to_regional + to_top;
        longest_to_top = longest_to_top.max(to_top);
        longest_path = longest_path.max(to_top + top_to_origin);
    }
    let log = match &emulator.origin_log {
        Some(log) => {
            if log.was_cut() {
                eprintln!(
                    "note: the origin fetch log stopped at {} fetches; the origin's causes count \
                     only those",
                    crate::cdn::origin_log::MAX_LOGGED_FETCHES
                );
            }
            log.take()
        }
        None => Vec::new(),
    };
    let mut storability: HashMap<usize, stream_bound::Storability> = HashMap::new();
    let mut fetches = Vec::with_capacity(log.len());
    let mut hosts: Vec<String> = Vec::new();
    for fetch in log {
        let host = fetch.uri.authority().map_or("", |a| a.as_str());
        let host = match hosts.iter().position(|h| h == host) {
            Some(index) => index,
            None => {
                hosts.push(host.to_string());
                hosts.len() - 1
            }
        };
        let Some(path) = stream_bound::object_path(&fetch.uri) else {
            continue;
        };
        let key = intern(objects, object_index, path);
        let at_s = fetch.at.duration_since(started).as_secs_f64();
        if let Some(status) = fetch
            .status
            .filter(|s| *s != http::StatusCode::NOT_MODIFIED)
        {
            storability.entry(key).or_insert_with(|| {
                let mut request = http::Request::new(());
                *request.method_mut() = fetch.method.clone();
                *request.uri_mut() = fetch.uri.clone();
                *request.headers_mut() = fetch.request_headers.clone();
                let (parts, ()) = request.into_parts();
                stream_bound::storability_of(
                    &parts,
                    status,
                    &fetch.response_headers,
                    emulator.cache_rules.as_deref(),
                )
            });
        }
        fetches.push(stream_bound::Fetch {
            at_s,
            location: top_index(&fetch.from).unwrap_or(usize::MAX),
            key,
            host,
            not_modified: fetch.status == Some(http::StatusCode::NOT_MODIFIED),
            failed: fetch.status.is_none(),
            measured: at_s >= setup.warmup_s,
        });
    }
    let objects_storability: Vec<stream_bound::Storability> = (0..objects.len())
        .map(|key| storability.get(&key).copied().unwrap_or_default())
        .collect();
    let invalidations: Vec<stream_bound::Invalidation> = purges
        .iter()
        .map(|(at_s, purge)| stream_bound::Invalidation {
            at_s: *at_s,
            keys: objects
                .iter()
                .enumerate()
                .filter(|(_, path)| {
                    purge.reaches(&format!("http://sim.edge.example{path}"), || {
                        std::iter::empty::<&[u8]>()
                    })
                })
                .map(|(key, _)| key)
                .collect(),
            soft: purge.soft,
        })
        .collect();
    let jitter = emulator
        .cache_rules
        .as_ref()
        .is_some_and(|rules| rules.jitters());
    let layout = stream_bound::Layout {
        pops,
        top_of_pop,
        tops,
        // Network jitter stretches RTTs (5 σ covers every draw a run makes); an origin's own
        // service time is allowed one more second.
        slack_s: longest_path.as_secs_f64() * (1.0 + 5.0 * setup.jitter) + 1.0,
        reorder_s: longest_to_top.as_secs_f64() * (1.0 + 5.0 * setup.jitter),
        tiers_cache: setup.regional_caching,
        edge_capacity: setup.edge_capacity_bytes.is_some(),
        ttl_jitter: jitter,
    };
    stream_bound::compute(
        &layout,
        &objects_storability,
        &reads,
        &invalidations,
        &fetches,
    )
}

/// Requests the origins have received: the atomic per-origin counters, read at every timeline
/// bucket (the stubs' own stats clone a map of every path).
fn origin_requests(emulator: &Emulator) -> u64 {
    emulator
        .origin_counters
        .values()
        .map(|c| c.requests.load(std::sync::atomic::Ordering::Relaxed))
        .sum()
}

fn snapshot(emulator: &Emulator) -> Baseline {
    let stubs: Vec<_> = emulator
        .origins
        .values()
        .filter_map(|o| o.stub.as_ref().map(|s| s.stats()))
        .collect();
    Baseline {
        tiers: tier_counters(emulator)
            .into_iter()
            .map(|(name, counters)| (name, counters.snapshot()))
            .collect(),
        origin_requests: origin_requests(emulator),
        origin_not_modified: stubs.iter().map(|s| s.not_modified).sum(),
        origin_bytes: emulator
            .origins
            .values()
            .map(|o| o.bytes_sent.load(std::sync::atomic::Ordering::Relaxed))
            .sum(),
        purges: emulator.purges.snapshot(),
    }
}

/// Every cache's counters by its Cache-Status name.
fn tier_counters(emulator: &Emulator) -> Vec<(String, &TierCounters)> {
    let edges = emulator
        .pops
        .iter()
        .map(|(name, pop)| (format!("edge-{name}"), &pop.counters));
    let regionals = emulator
        .regionals
        .iter()
        .map(|(name, tier)| (format!("regional-{name}"), &tier.counters));
    let shields = emulator
        .shields
        .iter()
        .map(|(name, tier)| (format!("shield-{name}"), &tier.counters));
    edges.chain(regionals).chain(shields).collect()
}

/// Each cache's peak stored bytes and entries, by its Cache-Status name.
fn store_peaks(emulator: &Emulator) -> BTreeMap<String, (u64, u64)> {
    let edges = emulator
        .pops
        .iter()
        .map(|(name, pop)| (format!("edge-{name}"), pop.cache.peak()));
    let regionals = emulator
        .regionals
        .iter()
        .map(|(name, tier)| (format!("regional-{name}"), tier.store.peak()));
    let shields = emulator
        .shields
        .iter()
        .map(|(name, tier)| (format!("shield-{name}"), tier.store.peak()));
    edges.chain(regionals).chain(shields).collect()
}

fn build_report(
    setup: &SimSetup,
    emulator: &Emulator,
    collector: Collector,
    baseline: &Baseline,
    origin_timeline: Vec<u64>,
    duration_s: f64,
) -> Report {
    let end = snapshot(emulator);
    let counters: Vec<(String, BTreeMap<&'static str, u64>)> = end
        .tiers
        .iter()
        .map(|(name, values)| {
            let before = baseline.tiers.get(name);
            let diff = values
                .iter()
                .map(|(k, v)| (*k, v - before.and_then(|b| b.get(k)).copied().unwrap_or(0)))
                .collect();
            (name.clone(), diff)
        })
        .collect();
    // A counter summed over every edge PoP, measured part only.
    let tier_delta = |key: &str| -> u64 {
        counters
            .iter()
            .filter(|(n, _)| n.starts_with("edge-"))
            .map(|(_, c)| c.get(key).copied().unwrap_or(0))
            .sum()
    };
    let figures = |name: String, rows: &[&BTreeMap<&'static str, u64>]| {
        let sum = |key: &str| {
            rows.iter()
                .map(|r| r.get(key).copied().unwrap_or(0))
                .sum::<u64>()
        };
        let requests = sum("requests");
        let served = sum("hits") + sum("updating") + sum("stale");
        TierFigures {
            name,
            requests,
            hits: sum("hits"),
            misses: sum("misses") + sum("expired") + sum("bypass") + sum("dynamic"),
            stale_while_revalidate: sum("updating"),
            stale_if_error: sum("stale"),
            revalidated: sum("revalidated"),
            collapsed: sum("collapsed"),
            negative_hits: sum("negative_hits"),
            upstream_requests: sum("upstream_requests"),
            hit_ratio: if requests == 0 {
                0.0
            } else {
                round(served as f64 / requests as f64)
            },
            peak_stored_bytes: 0,
            peak_entries: 0,
        }
    };
    let of_kind = |prefix: &str| -> Vec<&BTreeMap<&'static str, u64>> {
        counters
            .iter()
            .filter(|(n, _)| n.starts_with(prefix))
            .map(|(_, c)| c)
            .collect()
    };
    let mut tiers = vec![figures("edge".into(), &of_kind("edge-"))];
    if setup.regional_caching {
        tiers.push(figures("regional".into(), &of_kind("regional-")));
        if !emulator.shields.is_empty() {
            tiers.push(figures("shield".into(), &of_kind("shield-")));
        }
    }
    for (name, c) in &counters {
        if c.get("requests").copied().unwrap_or(0) > 0
            && (setup.regional_caching || name.starts_with("edge-"))
        {
            tiers.push(figures(name.clone(), &[c]));
        }
    }
    let peaks = store_peaks(emulator);
    for tier in &mut tiers {
        let prefix = format!("{}-", tier.name);
        let (bytes, entries) = peaks
            .iter()
            .filter(|(cache, _)| **cache == tier.name || cache.starts_with(&prefix))
            .fold((0, 0), |(b, e), (_, (pb, pe))| (b + pb, e + pe));
        tier.peak_stored_bytes = bytes;
        tier.peak_entries = entries;
    }
    let edge = &tiers[0];
    let reads = collector.reads;
    let origin_requests = end.origin_requests - baseline.origin_requests;
    let from_origin = end.origin_bytes - baseline.origin_bytes;
    // The busiest second after warm-up: the cold start's fill is not what a steady state
    // asks of the origin (and would hide the expiry peaks TTL jitter is for).
    let measured_from = (setup.warmup_s / setup.bucket_s).ceil() as usize;
    let peak = origin_timeline
        .iter()
        .skip(measured_from)
        .copied()
        .max()
        .unwrap_or(0);
    let ratio = |part: u64, whole: u64| {
        if whole == 0 {
            0.0
        } else {
            1.0 - part as f64 / whole as f64
        }
    };
    let outcomes = Outcomes {
        hits: edge.hits,
        misses: edge.misses,
        stale_while_revalidate: edge.stale_while_revalidate,
        stale_if_error: edge.stale_if_error,
        revalidated: edge.revalidated,
        collapsed: tiers
            .iter()
            .filter(|t| matches!(t.name.as_str(), "edge" | "regional" | "shield"))
            .map(|t| t.collapsed)
            .sum(),
        negative_hits: edge.negative_hits,
        not_modified_to_clients: collector.not_modified,
        errors: collector.errors,
    };
    let latency = collector
        .latencies
        .iter()
        .map(|(name, h)| (name.clone(), summarise(h)))
        .collect();
    let hops = collector
        .hops
        .into_inner()
        .into_iter()
        .map(|(name, h)| (name, hop_latency(&h)))
        .collect();
    let bounds = bounds(setup, edge.hit_ratio, &tiers);
    let served_from_origin = collector.served_by_tier.get("origin").copied().unwrap_or(0);
    let mut served_by_tier = collector.served_by_tier;
    served_by_tier.entry("origin".into()).or_insert(0);
    Report {
        scenario: ScenarioSummary {
            name: setup.name.clone(),
            seed: setup.seed,
            requests: reads,
            duration_s: round(duration_s),
            pops: emulator.pops.len(),
            regionals: emulator.regionals.len(),
            shields: emulator.shields.len(),
            workload: setup.workload.clone(),
            warmup_requests: collector.warmed,
            warmup_s: setup.warmup_s,
        },
        offload: Offload {
            requests: round(ratio(origin_requests, reads)),
            // Byte hit ratio: the share of bytes clients received that a cache tier served.
            bytes: round(ratio(served_from_origin, collector.to_clients)),
        },
        tiers,
        origin: OriginLoad {
            requests: origin_requests,
            not_modified: end.origin_not_modified - baseline.origin_not_modified,
            bytes: from_origin,
            peak_rps: round(peak as f64 / setup.bucket_s),
            mean_rps: round(origin_requests as f64 / duration_s),
            bucket_s: setup.bucket_s,
            timeline: origin_timeline,
            client_timeline: collector.client_timeline,
        },
        outcomes,
        latency,
        hops,
        bytes: BytesFigures {
            to_clients: collector.to_clients,
            from_origin,
            saved_by_compression: collector.saved_by_compression,
            by_coding: collector.by_coding,
            saved_by_recompression: collector.saved_by_recompression,
            recompressions: tier_delta("recompressions"),
            served_by_tier,
        },
        bounds,
        purges: purge_figures(setup, &end.purges, &baseline.purges),
        stream_bound: None,
    }
}

fn purge_figures(
    setup: &SimSetup,
    end: &crate::cdn::purge::PurgeTotals,
    start: &crate::cdn::purge::PurgeTotals,
) -> Option<PurgeFigures> {
    let purges = end.purges - start.purges;
    (purges > 0).then(|| PurgeFigures {
        purges,
        soft_purges: end.soft_purges - start.soft_purges,
        entries: end.entries - start.entries,
        origin_refetches: end.origin_refetches - start.origin_refetches,
        propagation_ms: round(setup.purge_propagation.as_secs_f64() * 1000.0),
    })
}

fn summarise(h: &Histogram<u64>) -> LatencySummary {
    let ms = |q: f64| round(h.value_at_quantile(q) as f64 / 1000.0);
    let cdf = (1..=100)
        .map(|i| {
            let q = f64::from(i) / 100.0;
            (ms(q), q)
        })
        .collect();
    LatencySummary {
        count: h.len(),
        p50_ms: ms(0.5),
        p90_ms: ms(0.9),
        p95_ms: ms(0.95),
        p99_ms: ms(0.99),
        p999_ms: ms(0.999),
        cdf,
    }
}

fn hop_latency(h: &Histogram<u64>) -> HopLatency {
    let ms = |q: f64| round(h.value_at_quantile(q) as f64 / 1000.0);
    HopLatency {
        count: h.len(),
        p50_ms: ms(0.5),
        p90_ms: ms(0.9),
        p95_ms: ms(0.95),
        p99_ms: ms(0.99),
        p999_ms: ms(0.999),
    }
}

/// The analytic bounds for a generated workload of public objects: the TTL model per PoP (each
/// PoP sees its countries' share of every object's rate), and Che's approximation when the
/// edge has a capacity.
fn bounds(setup: &SimSetup, edge_hit_ratio: f64, tiers: &[TierFigures]) -> Vec<BoundFigure> {
    let Some(spec) = &setup.spec else {
        return Vec::new();
    };
    if spec.ttl_s == 0 || spec.write_rate > 0.0 || spec.fields_share > 0.0 {
        return Vec::new();
    }
    let rates = spec.object_rates();
    let total_weight: f64 = spec.countries.values().sum();
    let mut pop_share: BTreeMap<String, f64> = BTreeMap::new();
    for (country, weight) in &spec.countries {
        let pop = setup.topology.pop_for_country(Some(country));
        *pop_share.entry(pop.name.clone()).or_default() += weight / total_weight;
    }
    let ttl = spec.ttl_s as f64;
    let figure = |name: &str, measured: f64, bound: f64| BoundFigure {
        name: name.to_string(),
        measured: round(measured),
        bound: round(bound),
        ratio: round(if bound > 0.0 { measured / bound } else { 0.0 }),
    };
    let mut out = Vec::new();
    match setup.edge_capacity_bytes {
        None => {
            let bound: f64 = pop_share
                .values()
                .map(|share| {
                    let pop_rates: Vec<f64> = rates.iter().map(|r| r * share).collect();
                    share * super::theory::ttl_hit_ratio(&pop_rates, ttl)
                })
                .sum();
            out.push(figure(
                "edge hit ratio (TTL, Jung et al.)",
                edge_hit_ratio,
                bound,
            ));
        }
        Some(capacity) => {
            let sizes = object_weights(spec, setup.seed);
            let bound: f64 = pop_share
                .values()
                .map(|share| {
                    let pop_rates: Vec<f64> = rates.iter().map(|r| r * share).collect();
                    share * super::theory::che_hit_ratio(&pop_rates, &sizes, capacity as f64)
                })
                .sum();
            out.push(figure("edge hit ratio (LRU, Che)", edge_hit_ratio, bound));
        }
    }
    if let Some(regional) = tiers.iter().find(|t| t.name == "regional") {
        // An upper tier sees the PoPs' miss streams and approaches the single-cache bound of
        // the aggregate traffic: the hierarchy's offload cannot beat it.
        let aggregate = super::theory::ttl_hit_ratio(&rates, ttl);
        let mut overall = 1.0 - (1.0 - edge_hit_ratio) * (1.0 - regional.hit_ratio);
        let topology = &setup.topology;
        let all_shielded = topology
            .regionals
            .iter()
            .all(|r| topology.shield_of(&r.name).is_some());
        if let (true, Some(shield)) = (all_shielded, tiers.iter().find(|t| t.name == "shield")) {
            overall = 1.0 - (1.0 - overall) * (1.0 - shield.hit_ratio);
        }
        out.push(figure(
            "offload by requests (tiers) vs single-cache TTL bound",
            overall,
            aggregate,
        ));
        out.extend(
            shield_bounds(setup, &rates, &pop_share, tiers, ttl)
                .map(|(name, measured, bound)| figure(&name, measured, bound)),
        );
    }
    out
}

/// Per shield: the offload of the traffic behind it (1 − its upstream requests / its PoPs'
/// client requests) beside the TTL bound of that traffic. A shield sees the union of its
/// regional tiers' miss streams, so the hierarchy under it can do no better than one TTL cache
/// fed the summed per-object rates of its PoPs (Jung et al., as for the regional tiers).
fn shield_bounds<'a>(
    setup: &'a SimSetup,
    rates: &'a [f64],
    pop_share: &'a BTreeMap<String, f64>,
    tiers: &'a [TierFigures],
    ttl: f64,
) -> impl Iterator<Item = (String, f64, f64)> + 'a {
    let topology = &setup.topology;
    let row = |name: String| tiers.iter().find(|t| t.name == name);
    topology.shields.iter().filter_map(move |shield| {
        let pops: Vec<&str> = topology
            .pops
            .iter()
            .filter(|p| shield.regionals.contains(&p.regional))
            .map(|p| p.name.as_str())
            .collect();
        let per_pop_rates: Vec<Vec<f64>> = pops
            .iter()
            .filter_map(|pop| pop_share.get(*pop))
            .map(|share| rates.iter().map(|r| r * share).collect())
            .collect();
        let clients: u64 = pops
            .iter()
            .filter_map(|pop| row(format!("edge-{pop}")))
            .map(|t| t.requests)
            .sum();
        let upstream = row(format!("shield-{}", shield.name))?.upstream_requests;
        if clients == 0 {
            return None;
        }
        let measured = 1.0 - upstream as f64 / clients as f64;
        let bound = super::theory::tiered_upper_bound(&per_pop_rates, ttl);
        Some((
            format!(
                "offload by requests via shield-{} vs TTL bound of its traffic",
                shield.name
            ),
            measured,
            bound,
        ))
    })
}

/// The weight each object takes in an edge store (its body plus the store's per-entry
/// overhead), from the generator's size draw.
fn object_weights(spec: &WorkloadSpec, seed: u64) -> Vec<f64> {
    super::workload::object_sizes(spec, seed)
        .into_iter()
        .map(|s| s as f64 + 512.0)
        .collect()
}
