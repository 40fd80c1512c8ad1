//! The simulator against theory and itself: fidelity to the TTL and Che models, tiering,
//! determinism, and coalescing/SWR in virtual time.

use std::collections::BTreeMap;

use super::engine::{simulate, SimSetup};
use super::report::Report;
use super::workload::{Generator, WorkloadSpec};
use crate::topology::Topology;

/// One country (so one PoP), public objects, identity only: the textbook setting.
fn spec(alpha: f64, requests: u64) -> WorkloadSpec {
    WorkloadSpec {
        requests,
        rate: 400.0,
        objects: 2000,
        zipf_alpha: alpha,
        median_bytes: 2000,
        size_sigma: 0.0,
        ttl_s: 20,
        swr_s: 0,
        countries: BTreeMap::from([("DE".into(), 1.0)]),
        encodings: BTreeMap::new(),
        auth_share: 0.0,
        fields_share: 0.0,
        conditional_share: 0.0,
        write_rate: 0.0,
        diurnal: None,
        flash: None,
    }
}

fn setup(name: &str, spec: &WorkloadSpec, seed: u64) -> SimSetup {
    SimSetup {
        name: name.into(),
        seed,
        topology: Topology::default_embedded(),
        auth_toml: None,
        routing_toml: None,
        edge_capacity_bytes: None,
        regional_caching: false,
        add_compute: false,
        jitter: 0.0,
        warmup_s: 40.0,
        bucket_s: 1.0,
        spec: Some(spec.clone()),
        workload: spec.describe(),
    }
}

fn run(setup: &SimSetup) -> Report {
    let spec = setup.spec.clone().unwrap();
    let events = Generator::new(spec.clone(), setup.seed);
    simulate(setup, events, spec.requests, &indicatif::ProgressBar::hidden())
        .unwrap()
        .0
}

#[test]
fn smoke() {
    let spec = spec(0.8, 4000);
    let report = run(&setup("smoke", &spec, 1));
    println!("{}", serde_json::to_string_pretty(&report).unwrap());
}
