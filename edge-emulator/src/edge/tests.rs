//! The hop list a request comes back with, per tier kind (edge, regional, shield) and per
//! outcome, through the real worker, tiers and in-process origins on a paused clock; and that
//! the Cache-Status and Server-Timing written from the hops read as they always have.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use edge_worker::hops::{Detail, Hop, TierKind};
use edge_worker::store::NotStoredReason;
use edge_worker::CfCacheStatus;

use super::{serve_at_pop, Served};
use crate::bindings::types;
use crate::cdn::topology::Topology;
use crate::{Emulator, EmulatorOptions};

const OBJECT: &str = "/api/objects/7?bytes=2000&ttl=60&swr=30";

fn paused() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .start_paused(true)
        .build()
        .expect("a current-thread runtime")
}

async fn emulator(topology: Topology, regional_caching: bool) -> Arc<Emulator> {
    Emulator::start(EmulatorOptions {
        mode: crate::RunMode::Replay {
            start: SystemTime::UNIX_EPOCH + Duration::from_secs(1_767_225_600),
        },
        regional_caching,
        ..EmulatorOptions::new(topology)
    })
    .await
    .expect("the default topology starts")
}

async fn send(emulator: &Arc<Emulator>, pop: &str, method: &str, path: &str) -> Served {
    let pop = emulator.tiers.pop(pop).expect("a default PoP").clone();
    let request = types::Request {
        method: method.into(),
        url: format!("http://hops.example{path}"),
        headers: Vec::new(),
        body: Vec::new(),
        origin: None,
    };
    let ctx = pop.context(None);
    serve_at_pop(emulator, &pop, request, ctx, false)
        .await
        .expect("the worker answers")
}

fn header(served: &Served, name: &str) -> String {
    served
        .response
        .headers
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, v)| String::from_utf8_lossy(v).into_owned())
        .unwrap_or_default()
}

/// `(kind, name, status)` of each hop, origin-nearest first.
fn path(served: &Served) -> Vec<(TierKind, String, Option<CfCacheStatus>)> {
    served
        .hops
        .iter()
        .map(|h| {
            let status = h.cache.as_ref().map(|c| c.status);
            (h.tier.kind, h.tier.name.to_string(), status)
        })
        .collect()
}

fn ms(d: Option<Duration>, decimals: usize) -> String {
    format!("{:.*}", decimals, d.expect("timed").as_secs_f64() * 1000.0)
}

/// The Server-Timing a client reads, as the header has always been laid out: client, edge,
/// then the way upstream (route, each upper tier, origin).
fn expected_timing(served: &Served) -> String {
    let edge = served.hops.last().expect("the edge hop");
    let mut entries = vec![
        "client;dur=5.0".to_string(),
        format!("edge;dur={};desc=\"{}\"", ms(edge.spent, 2), edge.tier.name),
    ];
    let mut origin = None;
    for hop in served.hops.iter().rev().skip(1) {
        if let Some(spent) = hop.spent {
            entries.push(format!(
                "{};dur={};desc=\"{}\"",
                hop.tier.kind.as_str(),
                ms(Some(spent), 1),
                hop.tier.name
            ));
        }
        origin = hop.origin.clone().or(origin);
    }
    if let Some(origin) = origin {
        entries.push(format!(
            "origin;dur={};desc=\"{}\"",
            ms(Some(origin.spent), 1),
            origin.name
        ));
    }
    entries.join(", ")
}

fn ttl(hop: &Hop) -> i64 {
    hop.cache.as_ref().and_then(|c| c.ttl).expect("a ttl")
}

#[test]
fn edge_and_regional_hops_for_a_miss_a_hit_a_regional_hit_swr_and_revalidation() {
    paused().block_on(async {
        let emu = emulator(Topology::default_embedded(), true).await;

        let miss = send(&emu, "fra", "GET", OBJECT).await;
        use CfCacheStatus::*;
        use TierKind::*;
        assert_eq!(
            path(&miss),
            [
                (Regional, "eu-central".into(), Some(Miss)),
                (Edge, "fra".into(), Some(Miss))
            ]
        );
        let regional = &miss.hops[0];
        assert!(regional.spent.is_some() && regional.origin.is_some());
        assert!(regional.cache.as_ref().unwrap().stored);
        assert_eq!(miss.hops[1].age, None, "an origin answer carries no Age");
        assert_eq!(
            header(&miss, "cache-status"),
            "regional-eu-central; fwd=uri-miss; fwd-status=200; stored, \
             edge-fra; fwd=uri-miss; fwd-status=200; stored"
        );
        assert_eq!(header(&miss, "cf-cache-status"), "MISS");
        assert_eq!(header(&miss, "server-timing"), expected_timing(&miss));

        let hit = send(&emu, "fra", "GET", OBJECT).await;
        assert_eq!(path(&hit), [(Edge, "fra".into(), Some(Hit))]);
        let edge = &hit.hops[0];
        assert!(edge.served_from_cache() && edge.age.is_some());
        assert_eq!(
            header(&hit, "cache-status"),
            format!("edge-fra; hit; ttl={}", ttl(edge))
        );
        assert_eq!(header(&hit, "age"), edge.age.unwrap().to_string());
        assert_eq!(header(&hit, "server-timing"), expected_timing(&hit));

        let regional_hit = send(&emu, "lhr", "GET", OBJECT).await;
        assert_eq!(
            path(&regional_hit),
            [
                (Regional, "eu-central".into(), Some(Hit)),
                (Edge, "lhr".into(), Some(Miss))
            ]
        );
        let (upper, edge) = (&regional_hit.hops[0], &regional_hit.hops[1]);
        assert!(upper.origin.is_none(), "a hit fetched nothing");
        assert_eq!(
            edge.age, upper.age,
            "the edge forwards the Age it was given"
        );
        assert_eq!(
            header(&regional_hit, "cache-status"),
            format!(
                "regional-eu-central; hit; ttl={}, edge-lhr; fwd=uri-miss; fwd-status=200; stored",
                ttl(upper)
            )
        );
        assert_eq!(
            header(&regional_hit, "server-timing"),
            expected_timing(&regional_hit)
        );

        // Past max-age, within stale-while-revalidate: served stale, refreshed behind.
        tokio::time::sleep(Duration::from_secs(70)).await;
        let updating = send(&emu, "fra", "GET", OBJECT).await;
        assert_eq!(path(&updating), [(Edge, "fra".into(), Some(Updating))]);
        let cache = updating.hops[0].cache.clone().unwrap();
        assert_eq!(cache.detail, Some(Detail::StaleWhileRevalidate));
        assert!(cache.hit && cache.ttl.unwrap() < 0);
        assert_eq!(
            header(&updating, "cache-status"),
            format!(
                "edge-fra; hit; ttl={}; detail=stale-while-revalidate",
                cache.ttl.unwrap()
            )
        );

        // Past both windows at the other PoP: validated upstream first. The regional tier
        // revalidates with the origin (a 304 freshens its copy, which reports that tier
        // alone) and answers the edge's validation in full.
        tokio::time::sleep(Duration::from_secs(120)).await;
        let expired = send(&emu, "lhr", "GET", OBJECT).await;
        assert_eq!(
            path(&expired),
            [
                (Regional, "eu-central".into(), Some(Revalidated)),
                (Edge, "lhr".into(), Some(Expired))
            ]
        );
        let upper = &expired.hops[0];
        assert!(
            upper.origin.is_none(),
            "a freshened copy is not the origin's answer"
        );
        assert_eq!(
            header(&expired, "cache-status"),
            format!(
                "regional-eu-central; fwd=stale; fwd-status=304; ttl={}; stored, \
                 edge-lhr; fwd=stale; fwd-status=200; stored",
                ttl(upper)
            )
        );
        assert_eq!(header(&expired, "server-timing"), expected_timing(&expired));
        emu.shutdown();
    });
}

#[test]
fn bypass_dynamic_refused_and_collapsed_hops() {
    paused().block_on(async {
        let emu = emulator(Topology::default_embedded(), true).await;
        use CfCacheStatus::*;
        use TierKind::*;

        let private = send(&emu, "fra", "GET", "/api/users/1").await;
        assert_eq!(
            path(&private),
            [
                (Regional, "eu-central".into(), Some(Bypass)),
                (Edge, "fra".into(), Some(Bypass))
            ]
        );
        let not_storable = Some(Detail::NotStored(NotStoredReason::NotStorable));
        assert!(private
            .hops
            .iter()
            .all(|h| h.cache.as_ref().unwrap().detail == not_storable));
        assert_eq!(
            header(&private, "cache-status"),
            "regional-eu-central; fwd=uri-miss; fwd-status=200; detail=not-storable, \
             edge-fra; fwd=uri-miss; fwd-status=200; detail=not-storable"
        );

        let post = send(&emu, "fra", "POST", "/api/objects/9").await;
        assert_eq!(
            path(&post),
            [
                (Regional, "eu-central".into(), Some(Dynamic)),
                (Edge, "fra".into(), Some(Dynamic))
            ]
        );
        let status = post.response.status;
        assert_eq!(
            header(&post, "cache-status"),
            format!(
                "regional-eu-central; fwd=method; fwd-status={status}, \
                 edge-fra; fwd=method; fwd-status={status}"
            )
        );

        // A malformed field mask is refused before any cache: an edge hop with no outcome.
        let refused = send(&emu, "fra", "GET", "/api/objects/9?fields=a((").await;
        assert_eq!(refused.response.status, 400);
        assert_eq!(path(&refused), [(Edge, "fra".into(), None)]);
        assert_eq!(header(&refused, "cache-status"), "");
        assert_eq!(header(&refused, "server-timing"), expected_timing(&refused));

        // Two requests at once: the second waits for the first's fetch and is served it.
        let (first, second) = tokio::join!(
            send(&emu, "iad", "GET", OBJECT),
            send(&emu, "iad", "GET", OBJECT)
        );
        let collapsed = [&first, &second]
            .into_iter()
            .find(|s| s.collapsed())
            .expect("one request collapsed onto the other's fetch");
        assert_eq!(path(collapsed), [(Edge, "iad".into(), Some(Hit))]);
        assert_eq!(
            header(collapsed, "cache-status"),
            format!("edge-iad; hit; ttl={}; collapsed", ttl(&collapsed.hops[0]))
        );
        emu.shutdown();
    });
}

#[test]
fn shield_hops_and_a_pass_through_regional_tier() {
    paused().block_on(async {
        use CfCacheStatus::*;
        use TierKind::*;
        let emu = emulator(Topology::default_embedded().with_one_shield(), true).await;
        let shield = emu
            .tiers
            .uppers(edge_worker::hops::TierKind::Shield)
            .next()
            .expect("one shield")
            .name
            .clone();

        let miss = send(&emu, "fra", "GET", OBJECT).await;
        assert_eq!(
            path(&miss),
            [
                (Shield, shield.clone(), Some(Miss)),
                (Regional, "eu-central".into(), Some(Miss)),
                (Edge, "fra".into(), Some(Miss))
            ]
        );
        assert!(miss.hops[0].origin.is_some() && miss.hops[0].spent.is_some());
        assert!(
            miss.hops[1].origin.is_none(),
            "the shield fetched, not the regional tier"
        );
        assert_eq!(
            header(&miss, "cache-status"),
            format!(
                "shield-{shield}; fwd=uri-miss; fwd-status=200; stored, \
                 regional-eu-central; fwd=uri-miss; fwd-status=200; stored, \
                 edge-fra; fwd=uri-miss; fwd-status=200; stored"
            )
        );
        assert_eq!(header(&miss, "server-timing"), expected_timing(&miss));

        let shield_hit = send(&emu, "iad", "GET", OBJECT).await;
        assert_eq!(
            path(&shield_hit),
            [
                (Shield, shield.clone(), Some(Hit)),
                (Regional, "us-east".into(), Some(Miss)),
                (Edge, "iad".into(), Some(Miss))
            ]
        );
        assert_eq!(
            edge_worker::hops::served_by(&shield_hit.hops).map(|h| h.tier.kind),
            Some(Shield)
        );
        assert_eq!(
            header(&shield_hit, "server-timing"),
            expected_timing(&shield_hit)
        );
        emu.shutdown();

        let edge_only = emulator(Topology::default_embedded(), false).await;
        let passed = send(&edge_only, "fra", "GET", OBJECT).await;
        assert_eq!(
            path(&passed),
            [
                (Regional, "eu-central".into(), None),
                (Edge, "fra".into(), Some(Miss))
            ]
        );
        assert!(passed.hops[0].origin.is_some());
        assert_eq!(
            header(&passed, "cache-status"),
            "edge-fra; fwd=uri-miss; fwd-status=200; stored"
        );
        assert_eq!(header(&passed, "server-timing"), expected_timing(&passed));
        edge_only.shutdown();
    });
}
