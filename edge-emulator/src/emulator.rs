//! The running emulator: the worker runtime and the CDN model around it, built from a
//! topology and the worker's configurations.

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;

use tokio::sync::watch;

use edge_worker::hops::TierKind;
use edge_worker::purge::Purge;
use edge_worker::{ConfigDocuments, WorkerConfig};

use crate::bindings::WORKER_COMPONENT;
use crate::cdn::clock::EmulatorClock;
use crate::cdn::network::Network;
use crate::cdn::origins::{self, OriginHandle};
use crate::cdn::pop::{PopNode, PopRouting};
use crate::cdn::purge::{PurgeLedger, PurgeReport};
use crate::cdn::regional::{OriginLink, RegionalTier, ShieldLink};
use crate::cdn::stats::{self, OriginCounters, OriginReport, OriginRouting, StatsReport};
use crate::cdn::tiers::Tiers;
use crate::cdn::topology::Topology;
use crate::cdn::{coalesce, store};
use crate::mode::RunMode;
use crate::wasm::{self, IsolatePolicy, WorkerRuntime};

/// How to start an emulator.
pub struct EmulatorOptions {
    pub topology: Topology,
    /// Multiplies every simulated RTT before sleeping it; 0 sleeps none.
    pub time_scale: f64,
    /// The worker's auth configuration (TOML text); `None`: every route is public.
    pub auth_toml: Option<String>,
    /// The worker's routing configuration (TOML text); `None`: each PoP's misses go to its
    /// regional tier's origin.
    pub routing_toml: Option<String>,
    /// The cache policy (TOML text: TTL jitter, negative caching per route), applied by the
    /// edge and the regional tiers; `None`: neither.
    pub cache_policy_toml: Option<String>,
    /// Serve (wall time, origins over loopback HTTP) or replay (virtual time from a start,
    /// inside a paused tokio runtime, with origins called in-process).
    pub mode: RunMode,
    /// Each edge PoP's cache capacity in bytes (LRU); `None`: only the slot limit.
    pub edge_capacity_bytes: Option<u64>,
    /// Whether regional tiers cache; `false` makes them pass-through (an edge-only CDN).
    pub regional_caching: bool,
    /// Each hop's RTT × (1 + jitter·N(0,1)), clamped at 0; 0 keeps RTTs exact.
    pub jitter: f64,
    /// Seeds the jitter draws.
    pub seed: u64,
    /// How long a request waits for another's fetch of the same key before fetching itself.
    pub coalesce_wait: std::time::Duration,
    /// Per-request CPU and memory limits of the worker, and the instance pool's size.
    pub guest_limits: wasm::GuestLimits,
    /// Warm isolates per PoP, or a fresh instance per request; when isolates are recycled.
    pub isolates: IsolatePolicy,
    /// Client requests `serve` handles at once; the next is shed with 503 and Retry-After.
    pub max_in_flight: usize,
    /// How long an origin may take for a whole response before the fetch fails.
    pub origin_timeout: std::time::Duration,
}

impl EmulatorOptions {
    /// Serve-mode defaults: real time (scale 1), no auth, no routing, caching regional tiers.
    pub fn new(topology: Topology) -> Self {
        Self {
            topology,
            time_scale: 1.0,
            auth_toml: None,
            routing_toml: None,
            cache_policy_toml: None,
            mode: RunMode::Serve,
            edge_capacity_bytes: None,
            regional_caching: true,
            jitter: 0.0,
            seed: 0,
            coalesce_wait: coalesce::DEFAULT_WAIT_LIMIT,
            guest_limits: wasm::GuestLimits::default(),
            isolates: IsolatePolicy::default(),
            max_in_flight: DEFAULT_MAX_IN_FLIGHT,
            origin_timeout: origins::ORIGIN_TIMEOUT,
        }
    }
}

/// Client requests served at once by default: below the instance pool (2048), which also
/// holds background refreshes.
pub const DEFAULT_MAX_IN_FLIGHT: usize = 1536;

/// The default cache policy: no routes, so no TTL jitter and no negative caching (as on
/// Cloudflare without a `CACHE_POLICY` var). Its comments show the keys.
pub const DEFAULT_CACHE_POLICY: &str = include_str!("../default-cache-policy.toml");

/// The default routing: nearest of the three regions, EU/EEA pinned to eu-west.
pub const DEFAULT_ROUTING: &str = include_str!("../default-routing.toml");

/// A TOML configuration as the JSON value the worker parses.
fn toml_to_json(toml_text: &str) -> anyhow::Result<serde_json::Value> {
    let value: toml::Value = toml::from_str(toml_text)?;
    Ok(serde_json::to_value(value)?)
}

/// The worker's configuration as the guest receives it (JSON documents) and as the host
/// uses it (the core's checked [`WorkerConfig`]: router, health boards).
#[derive(Debug, Clone, Default)]
pub struct CheckedConfig {
    pub auth_json: Option<Arc<str>>,
    pub routing_json: Option<Arc<str>>,
    pub cache_policy_json: Option<Arc<str>>,
    pub worker: WorkerConfig,
}

/// Checks the auth, routing and cache policy TOML documents with the core (keys parsed, router
/// built, limits checked), plus what only the emulator knows: every routed origin is an
/// `[[origin]]` of the topology (the routed origin travels with each request by name, so
/// origins may share a URL host).
pub fn check_config(
    auth_toml: Option<&str>,
    routing_toml: Option<&str>,
    cache_policy_toml: Option<&str>,
    topology: &Topology,
) -> anyhow::Result<CheckedConfig> {
    let auth_json = auth_toml
        .map(|text| {
            toml_to_json(text).map_err(|e| anyhow::anyhow!("invalid auth configuration: {e:#}"))
        })
        .transpose()?
        .map(|json| Arc::<str>::from(json.to_string()));
    let routing_json = routing_toml
        .map(|text| {
            toml_to_json(text).map_err(|e| anyhow::anyhow!("invalid routing configuration: {e:#}"))
        })
        .transpose()?
        .map(|json| Arc::<str>::from(json.to_string()));
    let cache_policy_json = cache_policy_toml
        .map(|text| {
            toml_to_json(text)
                .map_err(|e| anyhow::anyhow!("invalid cache_policy configuration: {e:#}"))
        })
        .transpose()?
        .map(|json| Arc::<str>::from(json.to_string()));
    let worker = WorkerConfig::check(ConfigDocuments {
        auth: auth_json.as_deref(),
        routing: routing_json.as_deref(),
        cache_policy: cache_policy_json.as_deref(),
        ..ConfigDocuments::default()
    })
    .map_err(|e| anyhow::anyhow!("invalid {} configuration: {e}", e.document()))?;
    if let Some(router) = worker.router() {
        for origin in &router.origins {
            anyhow::ensure!(
                topology.origin(&origin.name).is_some(),
                "invalid routing configuration: routing origin {:?} is not an [[origin]] of the \
                 topology (it has: {})",
                origin.name,
                topology
                    .origins
                    .iter()
                    .map(|o| o.name.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            );
        }
    }
    Ok(CheckedConfig {
        auth_json,
        routing_json,
        cache_policy_json,
        worker,
    })
}

/// The default auth configuration: `/api/users/*` needs a token signed with a demo key.
pub const DEFAULT_AUTH: &str = include_str!("../default-auth.toml");

/// The running CDN model: the worker runtime, PoPs, regional tiers and origins.
pub struct Emulator {
    /// Serve or replay, as started.
    pub mode: RunMode,
    pub topology: Topology,
    pub network: Arc<Network>,
    pub runtime: Arc<WorkerRuntime>,
    /// Every cache tier (edge PoPs, regional tiers, shields), by identity.
    pub tiers: Tiers,
    pub origins: BTreeMap<String, Arc<OriginHandle>>,
    /// Routing counters per origin (requests, failures, failovers, hedges).
    pub origin_counters: Arc<BTreeMap<String, Arc<OriginCounters>>>,
    /// Admission for `serve`: one permit per client request in flight.
    pub in_flight: Arc<tokio::sync::Semaphore>,
    max_in_flight: usize,
    /// Requests refused because `in_flight` had no permit left.
    pub shed: std::sync::atomic::AtomicU64,
    /// Purges so far and the origin requests they caused.
    pub purges: Arc<PurgeLedger>,
    /// Every coding, computed once per distinct input and shared by every PoP
    /// (`cdn::coding`): the worker's miss-time coding and the background recoding.
    pub codings: Arc<crate::cdn::coding::CodingMemo>,
    /// Every origin fetch, kept by the simulator (`None` in serve mode).
    pub origin_log: Option<Arc<crate::cdn::origin_log::OriginLog>>,
    /// The cache policy's per-route rules (negative caching, jitter), when one is set.
    pub cache_rules: Option<Arc<edge_worker::cache_policy::CacheRules>>,
    /// Client and origin requests per second over the last seconds (`serve` samples it).
    pub rates: stats::RateMeter,
    /// Requests assigned to each experiment's variants (`[[experiments]]`).
    pub exposures: stats::ExposureTally,
    shutdown: watch::Sender<bool>,
}

impl Emulator {
    pub async fn start(options: EmulatorOptions) -> anyhow::Result<Arc<Self>> {
        anyhow::ensure!(
            (0.0..=100.0).contains(&options.time_scale),
            "--time-scale must be within 0..=100 (1 sleeps real RTTs, 0 none)"
        );
        let topology = options.topology;
        let config = check_config(
            options.auth_toml.as_deref(),
            options.routing_toml.as_deref(),
            options.cache_policy_toml.as_deref(),
            &topology,
        )?;
        // Without an auth configuration the edge is transparent to Authorization.
        let strip_authorization = !config.worker.forwards_authorization();
        let clock = Arc::new(match options.mode {
            RunMode::Replay { start } => EmulatorClock::virtual_from(start),
            RunMode::Serve => EmulatorClock::default(),
        });
        anyhow::ensure!(
            (1..=tokio::sync::Semaphore::MAX_PERMITS).contains(&options.max_in_flight),
            "--max-in-flight must be at least 1"
        );
        let ten_minutes = std::time::Duration::from_secs(600);
        anyhow::ensure!(
            options.coalesce_wait <= ten_minutes,
            "--coalesce-wait-ms must be at most 600000 (ten minutes)"
        );
        anyhow::ensure!(
            !options.origin_timeout.is_zero() && options.origin_timeout <= ten_minutes,
            "--origin-timeout-ms must be within 1..=600000"
        );
        anyhow::ensure!(
            (0.0..=1.0).contains(&options.jitter),
            "jitter must be within 0..=1 (a relative standard deviation)"
        );
        let network = Arc::new(Network {
            clock: clock.clone(),
            time_scale: options.time_scale,
            jitter: options.jitter,
            rng: std::sync::Mutex::new(fastrand::Rng::with_seed(options.seed)),
            // The simulator's runs repeat from their seed (a stream of its own, so TTL jitter
            // does not shift the RTT draws); `serve` draws from a generator fastrand seeds
            // from std's per-process random hash keys (the OS's randomness).
            draws: std::sync::Mutex::new(match options.mode {
                RunMode::Replay { .. } => {
                    fastrand::Rng::with_seed(options.seed ^ 0x6a09_e667_f3bc_c908)
                }
                RunMode::Serve => fastrand::Rng::new(),
            }),
        });
        // Idle isolates hold pool slots: keep them within what admission leaves free, so a
        // full house of requests always finds a slot.
        let mut isolates = options.isolates;
        let spare = (options.guest_limits.instances as usize).saturating_sub(options.max_in_flight);
        isolates.max_idle_per_pop = isolates
            .max_idle_per_pop
            .min(spare / topology.pops.len().max(1))
            .max(1);
        let runtime = WorkerRuntime::new(WORKER_COMPONENT, options.guest_limits, isolates)
            .map_err(|e| anyhow::anyhow!("cannot load the worker component: {e:?}"))?;
        let runtime = Arc::new(runtime);
        let router = config.worker.router().cloned().map(Arc::new);
        let (shutdown, stop) = watch::channel(false);
        let purges = Arc::new(PurgeLedger::default());
        let connect_timeout = |name: &str| {
            router
                .as_ref()
                .and_then(|r| r.origin_named(name))
                .map(|o| o.connect_timeout)
        };
        let origins: BTreeMap<String, Arc<OriginHandle>> = origins::start(
            &topology.origins,
            &clock,
            connect_timeout,
            options.origin_timeout,
            options.mode.is_replay(),
            &purges,
            stop,
        )
        .await?
        .into_iter()
        .map(|o| (o.name.clone(), o))
        .collect();
        let origin_counters: Arc<BTreeMap<String, Arc<OriginCounters>>> = Arc::new(
            origins
                .keys()
                .map(|name| (name.clone(), Arc::default()))
                .collect(),
        );
        // Every origin as seen from one place: regional tiers and shields route among them.
        let links_from = |site: &dyn crate::cdn::topology::Located| {
            topology
                .origins
                .iter()
                .map(|origin| {
                    let link = OriginLink {
                        origin: origins[&origin.name].clone(),
                        rtt: topology.rtt(site, origin),
                        counters: origin_counters[&origin.name].clone(),
                    };
                    (origin.name.clone(), link)
                })
                .collect::<BTreeMap<_, _>>()
        };
        // The simulator keeps every origin fetch for its stream bound; serve mode keeps none.
        let origin_log = options
            .mode
            .is_replay()
            .then(|| Arc::new(crate::cdn::origin_log::OriginLog::default()));
        let configure = |tier: &mut RegionalTier| {
            tier.strip_authorization = strip_authorization;
            tier.origin_log = origin_log.clone();
            // The regional tier runs the same CacheTier: negative caching spares the origin
            // the whole region's misses, and jitter here is what spreads the origin's load
            // (an edge copy cannot outlive the regional copy it came from).
            if let Some(rules) = config.worker.cache_rules() {
                tier.tier = tier.tier.clone().with_rules(rules.clone());
            }
            tier.caching = options.regional_caching;
            tier.coalescer = coalesce::Coalescer::new(options.coalesce_wait);
        };
        let mut shields = BTreeMap::new();
        for site in &topology.shields {
            let mut tier = RegionalTier::new_shield(&site.name, links_from(site), network.clone());
            configure(&mut tier);
            shields.insert(site.name.clone(), Arc::new(tier));
        }
        let mut regionals = BTreeMap::new();
        for site in &topology.regionals {
            let mut tier =
                RegionalTier::new(&site.name, &site.origin, links_from(site), network.clone());
            configure(&mut tier);
            tier.shield = topology.shield_of(&site.name).map(|shield| ShieldLink {
                tier: shields[&shield.name].clone(),
                rtt: topology.rtt(site, shield),
            });
            regionals.insert(site.name.clone(), Arc::new(tier));
        }
        let codings = Arc::new(crate::cdn::coding::CodingMemo::default());
        let mut tiers = Tiers::default();
        for tier in shields.values().chain(regionals.values()) {
            tiers.insert_upper(tier.clone());
        }
        for pop in &topology.pops {
            let regional_site = topology
                .regional(&pop.regional)
                .expect("validated topology");
            let node = PopNode {
                name: pop.name.clone(),
                codings: codings.clone(),
                cache: store::MemoryStore::with_capacity(options.edge_capacity_bytes),
                regional: regionals[&pop.regional].clone(),
                rtt_to_regional: topology.rtt(pop, regional_site),
                network: network.clone(),
                counters: Default::default(),
                coalescer: coalesce::Coalescer::new(options.coalesce_wait),
                refreshing: Default::default(),
                auth_config: config.auth_json.clone(),
                cache_policy: config.cache_policy_json.clone(),
                routing: router
                    .as_ref()
                    .zip(config.routing_json.as_ref())
                    .zip(config.worker.health_board())
                    .map(|((router, json), health)| {
                        Arc::new(PopRouting {
                            config_json: json.clone(),
                            router: router.clone(),
                            health,
                            origins: origin_counters.clone(),
                        })
                    }),
                location: (pop.lat, pop.lon),
            };
            tiers.insert_pop(Arc::new(node));
        }
        Ok(Arc::new(Self {
            mode: options.mode,
            topology,
            network,
            runtime,
            tiers,
            origins,
            origin_counters,
            in_flight: Arc::new(tokio::sync::Semaphore::new(options.max_in_flight)),
            max_in_flight: options.max_in_flight,
            shed: Default::default(),
            purges,
            codings,
            origin_log,
            cache_rules: config.worker.cache_rules().cloned(),
            rates: stats::RateMeter::default(),
            exposures: stats::ExposureTally::default(),
            shutdown,
        }))
    }

    /// Removes (or, soft, marks stale) every slot `purge` reaches in every cache: each PoP's,
    /// each regional tier's and each shield's, every variant and coding.
    pub fn purge(&self, purge: &Purge) -> PurgeReport {
        let now = self.network.clock.now();
        let mut paths = HashSet::new();
        let mut report = PurgeReport {
            soft: purge.soft,
            ..Default::default()
        };
        for (id, tier) in self.tiers.iter() {
            let reached = tier.purge(purge, now, &mut paths);
            report.entries += reached;
            report.by_cache.insert(id.to_string(), reached);
        }
        report.paths = paths.len() as u64;
        if report.entries == 0 {
            report.note = Some(crate::cdn::purge::REACHED_NOTHING);
        }
        self.purges.record(&report, paths);
        report
    }

    /// Per origin: the counters and, from every PoP, the circuit state.
    pub fn routing_report(&self) -> BTreeMap<String, OriginRouting> {
        let mut report: BTreeMap<String, OriginRouting> = self
            .origin_counters
            .iter()
            .map(|(name, counters)| (name.clone(), counters.report()))
            .collect();
        for node in self.tiers.pops() {
            let Some(routing) = &node.routing else {
                continue;
            };
            for (origin, health) in routing.health.snapshot() {
                if let Some(entry) = report.get_mut(&origin) {
                    entry.breaker_state_changes += health.state_changes;
                    entry.breakers.insert(node.name.clone(), health.state);
                }
            }
        }
        report
    }

    pub fn stats(&self) -> StatsReport {
        let now = self.network.clock.now();
        let edge = self.counters_of(TierKind::Edge);
        let regional = self.counters_of(TierKind::Regional);
        let shield = self.counters_of(TierKind::Shield);
        let summary = stats::Summary::of(
            [
                (TierKind::Edge, &edge),
                (TierKind::Regional, &regional),
                (TierKind::Shield, &shield),
            ],
            self.rates.rates(),
        );
        StatsReport {
            now_ms: crate::cdn::clock::unix_ms(now),
            now: crate::cdn::clock::rfc3339(now),
            clock_offset_ms: u64::try_from(self.network.clock.offset().as_millis())
                .unwrap_or(u64::MAX),
            summary,
            edge,
            regional,
            shield,
            origins: self
                .origins
                .iter()
                .map(|(name, o)| {
                    (
                        name.clone(),
                        OriginReport {
                            url: o.base_url.clone(),
                            stats: o.stub.as_ref().map(|s| s.stats()),
                        },
                    )
                })
                .collect(),
            routing: self.routing_report(),
            load: self.load_report(),
            isolates: self.runtime.isolate_report(),
            purges: self.purges.snapshot(),
            experiments: self.exposures.snapshot(),
        }
    }

    /// Client requests the PoPs have taken and requests the origins have received, now:
    /// what [`stats::RateMeter`] samples.
    pub fn request_totals(&self) -> (u64, u64) {
        let read = |c: &std::sync::atomic::AtomicU64| c.load(std::sync::atomic::Ordering::Relaxed);
        let clients = self.tiers.pops().map(|p| read(&p.counters.requests)).sum();
        let origins = self
            .origin_counters
            .values()
            .map(|c| read(&c.requests))
            .sum();
        (clients, origins)
    }

    /// The counters of every tier of `kind`, by name.
    fn counters_of(&self, kind: TierKind) -> BTreeMap<String, BTreeMap<&'static str, u64>> {
        self.tiers
            .of(kind)
            .map(|(id, tier)| (id.name.to_string(), tier.counters().snapshot()))
            .collect()
    }

    /// The admission limit of `serve`.
    pub fn max_in_flight(&self) -> usize {
        self.max_in_flight
    }

    pub fn load_report(&self) -> stats::LoadReport {
        use std::sync::atomic::Ordering::Relaxed;
        let permits = self.in_flight.available_permits();
        let coalesce_timeouts = self
            .tiers
            .iter()
            .map(|(_, tier)| tier.coalesce_timeouts())
            .sum();
        stats::LoadReport {
            in_flight: (self.max_in_flight - permits) as u64,
            shed: self.shed.load(Relaxed),
            coalesce_timeouts,
        }
    }

    /// Stops the in-process origins and drops the idle isolates (each holds its PoP).
    pub fn shutdown(&self) {
        let _ = self.shutdown.send(true);
        self.runtime.drain();
    }
}
