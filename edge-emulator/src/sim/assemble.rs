//! The report assembled at the end of a replay: counters since the warm-up, the collector's
//! figures, latency summaries, and the analytic bounds beside what was measured.

use edge_worker::hops::{TierId, TierKind};
use std::collections::BTreeMap;

use hdrhistogram::Histogram;

use crate::emulator::Emulator;
use crate::sim::counters::{snapshot, store_peaks, Baseline};
use crate::sim::measure::{Collector, TierTally};
use crate::sim::report::{
    BoundFigure, BytesFigures, HopLatency, LatencySummary, Offload, OriginLoad, Outcomes,
    PurgeFigures, Report, ScenarioSummary, StreamBound, TierFigures,
};
use crate::sim::setup::SimSetup;
use crate::sim::units::round;
use crate::sim::workload::WorkloadSpec;

/// The run's report: counters since `baseline`, the collector's figures, the bounds; the
/// stream bound is added by the caller.
pub(super) fn build_report(
    setup: &SimSetup,
    emulator: &Emulator,
    collector: Collector,
    baseline: &Baseline,
    origin_timeline: Vec<u64>,
    duration_s: f64,
    stream_bound: Option<StreamBound>,
) -> Report {
    let end = snapshot(emulator);
    // A tier's counter over the measured part: for what no client request's hops carry, the
    // background work (refreshes, recoding) besides the requests clients made.
    let delta = |id: &TierId, key: &str| -> u64 {
        let now = end.tiers.get(id).and_then(|c| c.get(key)).copied();
        let before = baseline.tiers.get(id).and_then(|b| b.get(key)).copied();
        now.unwrap_or(0).saturating_sub(before.unwrap_or(0))
    };
    let kind_delta = |kind: TierKind, key: &str| -> u64 {
        end.tiers
            .keys()
            .filter(|id| id.kind == kind)
            .map(|id| delta(id, key))
            .sum()
    };
    let tier_delta = |key: &str| kind_delta(TierKind::Edge, key);
    let figures = |name: String, t: &TierTally, upstream_requests: u64| TierFigures {
        name,
        requests: t.requests,
        hits: t.hits,
        misses: t.misses,
        stale_while_revalidate: t.stale_while_revalidate,
        stale_if_error: t.stale_if_error,
        revalidated: t.revalidated,
        collapsed: t.collapsed,
        negative_hits: t.negative_hits,
        upstream_requests,
        hit_ratio: if t.requests == 0 {
            0.0
        } else {
            round(t.served() as f64 / t.requests as f64)
        },
        peak_stored_bytes: 0,
        peak_entries: 0,
    };
    let peaks = store_peaks(emulator);
    // One row per kind (its tiers summed), then one per tier that served requests.
    let mut rows: Vec<(TierFigures, Vec<&TierId>)> = Vec::new();
    let mut kinds = vec![TierKind::Edge];
    if setup.regional_caching {
        kinds.push(TierKind::Regional);
        if emulator.tiers.count(TierKind::Shield) > 0 {
            kinds.push(TierKind::Shield);
        }
    }
    for kind in kinds {
        let mut total = TierTally::default();
        for (_, tally) in collector.tiers.iter().filter(|(id, _)| id.kind == kind) {
            total.add(tally);
        }
        let ids = peaks.keys().filter(|id| id.kind == kind).collect();
        let upstream = kind_delta(kind, "upstream_requests");
        rows.push((figures(kind.as_str().into(), &total, upstream), ids));
    }
    for (id, tally) in &collector.tiers {
        if tally.requests > 0 && (setup.regional_caching || id.kind == TierKind::Edge) {
            let upstream = delta(id, "upstream_requests");
            rows.push((figures(id.to_string(), tally, upstream), vec![id]));
        }
    }
    let mut tiers = Vec::with_capacity(rows.len());
    for (mut tier, ids) in rows {
        let (bytes, entries) = ids
            .iter()
            .filter_map(|id| peaks.get(*id))
            .fold((0, 0), |(b, e), (pb, pe)| (b + pb, e + pe));
        tier.peak_stored_bytes = bytes;
        tier.peak_entries = entries;
        tiers.push(tier);
    }
    let edge = &tiers[0];
    let reads = collector.reads;
    // The origin requests the stream bound's gap table classifies (the origin fetch log,
    // measured part), so the two can never disagree; the counters when there is no such
    // table (an edge-only run).
    let origin_requests = stream_bound
        .as_ref()
        .and_then(|b| b.gap.iter().find(|g| g.level == "origin"))
        .map_or(end.origin_requests - baseline.origin_requests, |g| {
            g.measured
        });
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
    let mut report = Report {
        scenario: ScenarioSummary {
            name: setup.name.clone(),
            seed: setup.seed,
            requests: reads,
            duration_s: round(duration_s),
            pops: emulator.tiers.count(TierKind::Edge),
            regionals: emulator.tiers.count(TierKind::Regional),
            shields: emulator.tiers.count(TierKind::Shield),
            workload: setup.workload.clone(),
            warmup_requests: collector.warmed,
            warmup_s: setup.warmup_s,
        },
        offload: Offload {
            requests: round(ratio(origin_requests, reads)),
            byte_hit_ratio: round(ratio(served_from_origin, collector.to_clients)),
            origin_egress_saved: round(ratio(from_origin, collector.to_clients)),
            origin_bytes_per_client_byte: if collector.to_clients == 0 {
                0.0
            } else {
                round(from_origin as f64 / collector.to_clients as f64)
            },
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
            recompression_cpu_s: round(tier_delta("recompression_cpu_us") as f64 / 1e6),
            served_by_tier,
        },
        bounds,
        purges: purge_figures(setup, &end.purges, &baseline.purges),
        paths: collector
            .paths
            .into_iter()
            .map(|(kind, outcomes)| {
                let outcomes = outcomes
                    .into_iter()
                    .map(|(o, n)| (o.to_string(), n))
                    .collect();
                (kind.to_string(), outcomes)
            })
            .collect(),
        stream_bound,
        cold_caches: None,
        parts: collector.parts.values().cloned().collect(),
    };
    align_bound(&mut report);
    report.cold_caches = crate::sim::warmth::check(setup, &report);
    report
}

/// The stream bound's measured column reads the report's own figures, so a figure printed in
/// the headline, the tiers table, the bound table and the charts is one number.
fn align_bound(report: &mut Report) {
    let Some(bound) = report.stream_bound.as_mut() else {
        return;
    };
    let hit_ratio = |name: &str| {
        report
            .tiers
            .iter()
            .find(|t| t.name == name)
            .map(|t| t.hit_ratio)
    };
    if let Some(edge) = hit_ratio("edge") {
        bound.edge_hit_ratio.measured = edge;
    }
    bound.offload_requests.measured = report.offload.requests;
    bound.byte_hit_ratio.measured = report.offload.byte_hit_ratio;
    for (pop, figure) in bound.by_pop.iter_mut() {
        if let Some(measured) = hit_ratio(pop) {
            figure.measured = measured;
        }
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
