//! The simulator against theory and itself: fidelity to the TTL and Che models, tiering,
//! determinism, and coalescing/SWR in virtual time.

use std::collections::BTreeMap;

use super::engine::{simulate, SimSetup};
use super::report::Report;
use super::theory;
use super::workload::{Generator, WorkloadSpec};
use crate::cdn::topology::Topology;

/// One country (so one PoP), public objects, identity only: the textbook setting.
fn spec(alpha: f64, ttl_s: u64, requests: u64) -> WorkloadSpec {
    WorkloadSpec {
        requests,
        rate: 200.0,
        objects: 1000,
        zipf_alpha: alpha,
        median_bytes: 200,
        size_sigma: 0.0,
        ttl_s,
        swr_s: 0,
        countries: BTreeMap::from([("DE".into(), 1.0)]),
        encodings: BTreeMap::new(),
        auth_share: 0.0,
        fields_share: 0.0,
        conditional_share: 0.0,
        write_rate: 0.0,
        diurnal: None,
        flash: None,
        missing_share: 0.0,
        missing_ids: 1000,
        burst: None,
    }
}

fn setup(spec: &WorkloadSpec, seed: u64) -> SimSetup {
    SimSetup {
        name: "test".into(),
        seed,
        topology: Topology::default_embedded(),
        auth_toml: None,
        routing_toml: None,
        cache_policy_toml: None,
        edge_capacity_bytes: None,
        regional_caching: false,
        add_compute: false,
        jitter: 0.0,
        warmup_s: 20.0,
        bucket_s: 1.0,
        spec: Some(spec.clone()),
        isolates: Default::default(),
        workload: spec.describe(),
    }
}

fn run(setup: &SimSetup) -> Report {
    let spec = setup.spec.clone().unwrap();
    let events = Generator::new(spec.clone(), setup.seed);
    simulate(
        setup,
        events,
        spec.requests,
        &indicatif::ProgressBar::hidden(),
    )
    .unwrap()
    .0
}

fn tier<'a>(report: &'a Report, name: &str) -> &'a super::report::TierFigures {
    report.tiers.iter().find(|t| t.name == name).unwrap()
}

#[test]
fn ttl_cache_hit_ratio_is_within_one_point_of_jung_berger_balakrishnan() {
    for alpha in [0.8, 1.2] {
        let spec = spec(alpha, 10, 20_000);
        let report = run(&setup(&spec, 7));
        let bound = &report.bounds[0];
        println!("α={alpha}: {bound:?}");
        assert!(bound.name.contains("TTL"), "{bound:?}");
        assert!(
            (bound.measured - bound.bound).abs() <= 0.01,
            "α={alpha}: measured {} vs λT/(1+λT) {}",
            bound.measured,
            bound.bound
        );
    }
}

#[test]
fn lru_edge_hit_ratio_is_within_two_points_of_che() {
    let spec = spec(0.8, 100_000, 20_000);
    let mut setup = setup(&spec, 11);
    // Room for about 100 of the 1000 objects (each weighs its body plus 512 bytes).
    setup.edge_capacity_bytes = Some(100 * 712);
    let report = run(&setup);
    let bound = &report.bounds[0];
    println!("{bound:?}");
    assert!(bound.name.contains("Che"), "{bound:?}");
    assert!(
        (bound.measured - bound.bound).abs() <= 0.02,
        "measured {} vs Che {}",
        bound.measured,
        bound.bound
    );
}

#[test]
fn a_regional_tier_behind_two_pops_cuts_origin_requests_as_the_formula_predicts() {
    let mut spec = spec(0.8, 10, 16_000);
    // fra and lhr, both behind regional eu-central.
    spec.countries = BTreeMap::from([("DE".into(), 1.0), ("GB".into(), 1.0)]);
    let mut tiered = setup(&spec, 5);
    tiered.regional_caching = true;
    let edge_only = setup(&spec, 5);
    let (tiered, edge_only) = (run(&tiered), run(&edge_only));
    let duration = tiered.scenario.duration_s;
    let rates = spec.object_rates();
    // One cache seeing both PoPs' traffic: the floor λ/(1+λT) summed over objects.
    let single_cache = theory::ttl_origin_rate(&rates, 10.0) * duration;
    // Two independent PoPs, each with half of every object's rate.
    let half: Vec<f64> = rates.iter().map(|r| r / 2.0).collect();
    let two_pops = 2.0 * theory::ttl_origin_rate(&half, 10.0) * duration;
    let (t, e) = (
        tiered.origin.requests as f64,
        edge_only.origin.requests as f64,
    );
    assert!(
        (e - two_pops).abs() <= two_pops * 0.05,
        "edge-only {e} vs {two_pops}"
    );
    assert!(
        (t - single_cache).abs() <= single_cache * 0.1,
        "tiered {t} vs {single_cache}"
    );
    assert!(t < e * 0.9, "tiered {t} vs edge-only {e}");
}

#[test]
fn the_same_seed_gives_the_same_json_and_another_seed_does_not() {
    let spec = spec(1.0, 10, 3_000);
    let mut one = setup(&spec, 1);
    one.warmup_s = 2.0;
    one.routing_toml = Some(crate::DEFAULT_ROUTING.to_string());
    let json = |s: &SimSetup| serde_json::to_string(&run(s)).unwrap();
    let first = json(&one);
    assert_eq!(first, json(&one));
    let mut other = one.clone();
    other.seed = 2;
    assert_ne!(first, json(&other));
}

#[test]
fn a_hot_key_expiring_under_10k_requests_per_second_refreshes_once_per_tier() {
    let mut spec = spec(1.0, 1, 30_000);
    spec.objects = 1;
    spec.rate = 10_000.0;
    spec.swr_s = 10;
    spec.countries = BTreeMap::from([("DE".into(), 1.0), ("GB".into(), 1.0)]);
    let mut setup = setup(&spec, 3);
    setup.regional_caching = true;
    setup.warmup_s = 0.5;
    let report = run(&setup);
    let refreshes = report.scenario.duration_s.ceil() as u64 + 1;
    println!(
        "origin {}, regional upstream {}, refreshes {refreshes}",
        report.origin.requests,
        tier(&report, "regional").upstream_requests
    );
    assert!(
        report.origin.requests <= refreshes,
        "origin {} for {refreshes} refreshes",
        report.origin.requests
    );
    for pop in ["edge-fra", "edge-lhr"] {
        let upstream = tier(&report, pop).upstream_requests;
        assert!(upstream <= refreshes, "{pop}: {upstream} for {refreshes}");
    }
    assert!(tier(&report, "regional").upstream_requests <= refreshes);
    assert!(report.outcomes.stale_while_revalidate > 0);
    assert_eq!(report.outcomes.errors, 0);
}
