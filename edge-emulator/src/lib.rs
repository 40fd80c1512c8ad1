//! edge-emulator: runs the edge worker's wasm component per request inside a modelled CDN
//! (edge PoPs, regional tiers, origins, simulated round-trip times) and serves it over HTTP on
//! loopback, as `wrangler dev` does.

pub mod clock;
pub mod convert;
pub mod demo_token;
pub mod origins;
pub mod regional;
pub mod runtime;
pub mod server;
pub mod stats;
pub mod store;
pub mod topology;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;

use crate::clock::EmulatorClock;
use crate::origins::OriginHandle;
use crate::regional::RegionalTier;
use crate::runtime::{PopNode, WorkerRuntime};
use crate::stats::{OriginReport, StatsReport};
use crate::topology::Topology;

/// Simulated time on the wire: hops are slept for `rtt × time_scale`, and reported at their
/// full simulated length.
pub struct Network {
    pub clock: Arc<EmulatorClock>,
    pub time_scale: f64,
}

impl Network {
    /// Waits out one round trip of `rtt` (scaled).
    pub async fn traverse(&self, rtt: Duration) {
        let scaled = rtt.mul_f64(self.time_scale);
        if !scaled.is_zero() {
            tokio::time::sleep(scaled).await;
        }
    }

    /// The simulated length of a hop that really took `elapsed` including its scaled sleep.
    pub fn simulated(&self, rtt: Duration, elapsed: Duration) -> Duration {
        rtt + elapsed.saturating_sub(rtt.mul_f64(self.time_scale))
    }
}

/// How to start an emulator.
pub struct EmulatorOptions {
    pub topology: Topology,
    /// Multiplies every simulated RTT before sleeping it; 0 sleeps none.
    pub time_scale: f64,
    /// The worker's auth configuration (TOML text); `None`: every route is public.
    pub auth_toml: Option<String>,
}

/// The default auth configuration: `/api/users/*` needs a token signed with a demo key.
pub const DEFAULT_AUTH: &str = include_str!("../default-auth.toml");

/// Parses and checks an auth configuration (keys included) and returns it as the JSON the
/// worker reads.
pub fn auth_config_json(toml_text: &str) -> anyhow::Result<String> {
    let value: toml::Value = toml::from_str(toml_text)?;
    let json = serde_json::to_value(value)?;
    let config: edge_worker::auth::AuthConfig = serde_json::from_value(json.clone())?;
    let policy = config.build()?;
    policy.check_keys()?;
    Ok(json.to_string())
}

/// The running CDN model: the worker runtime, PoPs, regional tiers and origins.
pub struct Emulator {
    pub topology: Topology,
    pub network: Arc<Network>,
    pub runtime: Arc<WorkerRuntime>,
    pub pops: BTreeMap<String, Arc<PopNode>>,
    pub regionals: BTreeMap<String, Arc<RegionalTier>>,
    pub origins: BTreeMap<String, Arc<OriginHandle>>,
    shutdown: watch::Sender<bool>,
}

impl Emulator {
    pub async fn start(options: EmulatorOptions) -> anyhow::Result<Arc<Self>> {
        anyhow::ensure!(
            (0.0..=100.0).contains(&options.time_scale),
            "--time-scale must be within 0..=100 (1 sleeps real RTTs, 0 none)"
        );
        let topology = options.topology;
        let auth_config: Option<Arc<str>> = match &options.auth_toml {
            Some(text) => Some(
                auth_config_json(text)
                    .map_err(|e| anyhow::anyhow!("invalid auth configuration: {e:#}"))?
                    .into(),
            ),
            None => None,
        };
        // Without an auth configuration the edge is transparent to Authorization.
        let strip_authorization = auth_config.as_deref().is_some_and(|json| {
            serde_json::from_str::<edge_worker::auth::AuthConfig>(json)
                .is_ok_and(|c| !c.forward_authorization)
        });
        let clock = Arc::new(EmulatorClock::default());
        let network = Arc::new(Network {
            clock: clock.clone(),
            time_scale: options.time_scale,
        });
        let runtime = WorkerRuntime::new(runtime::WORKER_COMPONENT)
            .map_err(|e| anyhow::anyhow!("cannot load the worker component: {e:?}"))?;
        let runtime = Arc::new(runtime);
        let (shutdown, stop) = watch::channel(false);
        let origins: BTreeMap<String, Arc<OriginHandle>> =
            origins::start(&topology.origins, &clock, stop)
                .await?
                .into_iter()
                .map(|o| (o.name.clone(), o))
                .collect();
        let mut regionals = BTreeMap::new();
        for site in &topology.regionals {
            let origin_site = topology.origin(&site.origin).expect("validated topology");
            let rtt = topology.rtt(site, origin_site);
            let mut tier = RegionalTier::new(
                &site.name,
                origins[&site.origin].clone(),
                rtt,
                network.clone(),
            );
            tier.strip_authorization = strip_authorization;
            regionals.insert(site.name.clone(), Arc::new(tier));
        }
        let mut pops = BTreeMap::new();
        for pop in &topology.pops {
            let regional_site = topology
                .regional(&pop.regional)
                .expect("validated topology");
            let node = PopNode {
                name: pop.name.clone(),
                cache: store::MemoryStore::default(),
                regional: regionals[&pop.regional].clone(),
                rtt_to_regional: topology.rtt(pop, regional_site),
                network: network.clone(),
                counters: Default::default(),
                refreshing: Default::default(),
                auth_config: auth_config.clone(),
            };
            pops.insert(pop.name.clone(), Arc::new(node));
        }
        Ok(Arc::new(Self {
            topology,
            network,
            runtime,
            pops,
            regionals,
            origins,
            shutdown,
        }))
    }

    pub fn stats(&self) -> StatsReport {
        StatsReport {
            clock_offset_ms: u64::try_from(self.network.clock.offset().as_millis())
                .unwrap_or(u64::MAX),
            edge: self
                .pops
                .iter()
                .map(|(name, p)| (name.clone(), p.counters.snapshot()))
                .collect(),
            regional: self
                .regionals
                .iter()
                .map(|(name, r)| (name.clone(), r.counters.snapshot()))
                .collect(),
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
        }
    }

    /// Stops the in-process origins.
    pub fn shutdown(&self) {
        let _ = self.shutdown.send(true);
    }
}
