//! Every cache tier of the CDN model in one map, keyed by its typed identity (`TierId`: edge,
//! regional or shield, and a name). What every tier has (counters, a store, purges) is asked
//! of a [`Tier`], so figures per tier are one loop over the map, named by the identity.

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;
use std::time::SystemTime;

use edge_worker::hops::{TierId, TierKind};
use edge_worker::purge::Purge;

use crate::cdn::pop::PopNode;
use crate::cdn::regional::RegionalTier;
use crate::cdn::stats::TierCounters;

/// One tier: an edge PoP (the worker's), or a native tier above it (regional or shield).
#[derive(Clone)]
pub enum Tier {
    Edge(Arc<PopNode>),
    Upper(Arc<RegionalTier>),
}

impl Tier {
    pub fn counters(&self) -> &TierCounters {
        match self {
            Tier::Edge(pop) => &pop.counters,
            Tier::Upper(tier) => &tier.counters,
        }
    }

    /// The most bytes and entries its store held at once.
    pub fn peak(&self) -> (u64, u64) {
        match self {
            Tier::Edge(pop) => pop.cache.peak(),
            Tier::Upper(tier) => tier.store.peak(),
        }
    }

    /// Applies `purge` to its store; the paths it reached go into `paths`.
    pub fn purge(&self, purge: &Purge, now: SystemTime, paths: &mut HashSet<String>) -> u64 {
        match self {
            Tier::Edge(pop) => crate::cdn::purge::apply(&pop.cache, purge, now, paths),
            Tier::Upper(tier) => crate::cdn::purge::apply(&tier.store, purge, now, paths),
        }
    }

    /// Requests that waited for another's fetch longer than the coalescing limit.
    pub fn coalesce_timeouts(&self) -> u64 {
        let coalescer = match self {
            Tier::Edge(pop) => &pop.coalescer,
            Tier::Upper(tier) => &tier.coalescer,
        };
        coalescer
            .timeouts
            .load(std::sync::atomic::Ordering::Relaxed)
    }
}

/// The tiers by identity, in order: edges, then regional tiers, then shields, each by name.
#[derive(Default, Clone)]
pub struct Tiers {
    map: BTreeMap<TierId, Tier>,
}

impl Tiers {
    pub fn insert_pop(&mut self, pop: Arc<PopNode>) {
        self.map.insert(TierId::edge(&pop.name), Tier::Edge(pop));
    }

    pub fn insert_upper(&mut self, tier: Arc<RegionalTier>) {
        self.map.insert(tier.id.clone(), Tier::Upper(tier));
    }

    pub fn iter(&self) -> impl Iterator<Item = (&TierId, &Tier)> {
        self.map.iter()
    }

    /// The tiers of one kind, by name.
    pub fn of(&self, kind: TierKind) -> impl Iterator<Item = (&TierId, &Tier)> {
        self.map.iter().filter(move |(id, _)| id.kind == kind)
    }

    /// How many tiers of `kind` there are.
    pub fn count(&self, kind: TierKind) -> usize {
        self.of(kind).count()
    }

    /// The edge PoPs, by name.
    pub fn pops(&self) -> impl Iterator<Item = &Arc<PopNode>> {
        self.map.values().filter_map(|tier| match tier {
            Tier::Edge(pop) => Some(pop),
            Tier::Upper(_) => None,
        })
    }

    /// The PoP called `name`.
    pub fn pop(&self, name: &str) -> Option<&Arc<PopNode>> {
        self.pops().find(|pop| pop.name == name)
    }

    /// The regional tiers or the shields, by name.
    pub fn uppers(&self, kind: TierKind) -> impl Iterator<Item = &Arc<RegionalTier>> {
        self.of(kind).filter_map(|(_, tier)| match tier {
            Tier::Upper(upper) => Some(upper),
            Tier::Edge(_) => None,
        })
    }
}
