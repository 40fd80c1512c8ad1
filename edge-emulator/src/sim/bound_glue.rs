//! The glue between a replay and its stream bound: the run's reads, the tiers' logged origin
//! fetches and its purges, put in the shape `stream_bound::compute` takes.

use edge_worker::hops::{TierId, TierKind};
use std::collections::HashMap;
use std::time::Duration;

use tokio::time::Instant;

use crate::emulator::Emulator;
use crate::sim::measure::intern;
use crate::sim::report::StreamBound;
use crate::sim::setup::SimSetup;
use crate::sim::stream_bound;

/// The stream bound of this run: the replayed reads, the origin fetches the tiers logged
/// (each object's storability comes from the first response its origin sent to a GET), the
/// purges, each matched against every object the run named, and what successful unsafe
/// requests invalidated on their paths.
pub(super) fn stream_bound_of(
    setup: &SimSetup,
    emulator: &Emulator,
    reads: Vec<stream_bound::ClientRead>,
    (objects, object_index): (&mut Vec<String>, &mut HashMap<String, usize>),
    purges: &[(f64, edge_worker::purge::Purge)],
    unsafe_invalidations: Vec<stream_bound::Invalidation>,
    started: Instant,
) -> StreamBound {
    let topology = &emulator.topology;
    let pops: Vec<String> = emulator
        .tiers
        .of(TierKind::Edge)
        .map(|(id, _)| id.to_string())
        .collect();
    let top_ids: Vec<&TierId> = emulator
        .tiers
        .iter()
        .map(|(id, _)| id)
        .filter(|id| id.kind != TierKind::Edge)
        .collect();
    let tops: Vec<String> = top_ids.iter().map(ToString::to_string).collect();
    let top_index = |id: &TierId| top_ids.iter().position(|t| *t == id);
    let mut top_of_pop = Vec::new();
    let (mut longest_path, mut longest_to_top) = (Duration::ZERO, Duration::ZERO);
    for pop in emulator.tiers.pops() {
        let regional = &pop.regional;
        let shield = regional.shield.as_ref();
        let top = shield.map_or(&regional.id, |s| &s.tier.id);
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
        // What caches may keep is what a GET brought back: an unsafe request's answer (a 405
        // to a POST) says nothing about the GETs of the same URL.
        let status = fetch
            .status
            .filter(|s| *s != http::StatusCode::NOT_MODIFIED && fetch.method == http::Method::GET);
        if let Some(status) = status {
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
            cacheable_method: fetch.method == http::Method::GET,
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
            on_path_of: None,
        })
        .chain(unsafe_invalidations)
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
