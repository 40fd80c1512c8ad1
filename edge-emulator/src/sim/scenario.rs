//! Scenario files: the simulation's settings and its generated workload, one TOML file.

use serde::Deserialize;

use super::setup::SimSetup;
use super::workload::{WorkloadError, WorkloadSpec};
use crate::cdn::topology::Topology;
use crate::wasm::Isolation;

/// The scenario compiled into the binary (README's main command runs it).
pub const DEFAULT_SCENARIO: &str = include_str!("../../default-scenario.toml");

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum Tiering {
    /// Edge PoPs → regional tiers → origins.
    Tiered,
    /// Regional tiers pass requests through: PoPs → origins.
    EdgeOnly,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Scenario {
    pub name: String,
    pub seed: u64,
    #[serde(default)]
    pub warmup_s: f64,
    #[serde(default = "one")]
    pub bucket_s: f64,
    #[serde(default = "tiered")]
    pub tiering: Tiering,
    #[serde(default)]
    pub edge_capacity_mib: Option<f64>,
    #[serde(default)]
    pub jitter: f64,
    /// `isolate` (warm instances reused, as on Cloudflare; the default) or `fresh` (one
    /// instance per request). Changes the run's cost, never its report.
    #[serde(default)]
    pub isolation: Isolation,
    /// How long a purge takes to reach every cache (Cloudflare quotes under 150 ms globally).
    #[serde(default = "purge_propagation_ms")]
    pub purge_propagation_ms: f64,
    /// The cache policy for this scenario (`[[cache_policy.routes]]`, the keys of
    /// default-cache-policy.toml); `--cache-policy` replaces it. Absent: none.
    #[serde(default)]
    pub cache_policy: Option<toml::Table>,
    pub workload: WorkloadSpec,
}

fn purge_propagation_ms() -> f64 {
    150.0
}

fn one() -> f64 {
    1.0
}
fn tiered() -> Tiering {
    Tiering::Tiered
}

#[derive(Debug, thiserror::Error)]
pub enum ScenarioError {
    #[error("scenario is not valid TOML: {0}")]
    Parse(#[from] toml::de::Error),
    #[error(transparent)]
    Workload(#[from] WorkloadError),
    #[error("invalid scenario: {0}")]
    Invalid(String),
}

impl Scenario {
    pub fn parse(text: &str) -> Result<Self, ScenarioError> {
        let scenario: Scenario = toml::from_str(text)?;
        scenario.workload.validate()?;
        if !(scenario.bucket_s > 0.0 && scenario.bucket_s <= 3600.0) {
            return Err(ScenarioError::Invalid(
                "bucket_s must be within (0, 3600]".into(),
            ));
        }
        if scenario.warmup_s.is_nan() || scenario.warmup_s < 0.0 {
            return Err(ScenarioError::Invalid("warmup_s must be ≥ 0".into()));
        }
        if scenario
            .edge_capacity_mib
            .is_some_and(|c| !(c > 0.0 && c <= 1024.0 * 1024.0))
        {
            return Err(ScenarioError::Invalid(
                "edge_capacity_mib must be within (0, 1048576]".into(),
            ));
        }
        if !(0.0..=1.0).contains(&scenario.jitter) {
            return Err(ScenarioError::Invalid("jitter must be within 0..=1".into()));
        }
        if !(0.0..=600_000.0).contains(&scenario.purge_propagation_ms) {
            return Err(ScenarioError::Invalid(
                "purge_propagation_ms must be within 0..=600000".into(),
            ));
        }
        let buckets = scenario.workload.duration_s() / scenario.bucket_s;
        if buckets > 1_000_000.0 {
            return Err(ScenarioError::Invalid(format!(
                "{buckets:.0} timeline buckets; raise bucket_s"
            )));
        }
        Ok(scenario)
    }

    pub fn default_embedded() -> Self {
        Self::parse(DEFAULT_SCENARIO).expect("the embedded scenario is valid (checked by a test)")
    }

    /// The engine's settings for this scenario on `topology` with these worker configurations.
    pub fn setup(
        &self,
        topology: Topology,
        auth_toml: Option<String>,
        routing_toml: Option<String>,
    ) -> SimSetup {
        SimSetup {
            name: self.name.clone(),
            seed: self.seed,
            topology,
            auth_toml,
            routing_toml,
            cache_policy_toml: self
                .cache_policy
                .as_ref()
                .map(|table| toml::to_string(table).unwrap_or_default()),
            edge_capacity_bytes: self
                .edge_capacity_mib
                .map(|mib| (mib * 1024.0 * 1024.0) as u64),
            regional_caching: self.tiering == Tiering::Tiered,
            add_compute: false,
            jitter: self.jitter,
            warmup_s: self.warmup_s,
            bucket_s: self.bucket_s,
            spec: Some(self.workload.clone()),
            isolates: crate::wasm::IsolatePolicy {
                isolation: self.isolation,
                ..Default::default()
            },
            workload: self.workload.describe(),
            purge_propagation: std::time::Duration::from_secs_f64(
                self.purge_propagation_ms / 1000.0,
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_embedded_scenario_is_valid() {
        let s = Scenario::default_embedded();
        assert_eq!(s.workload.requests, 1_000_000);
        assert_eq!(s.tiering, Tiering::Tiered);
    }

    #[test]
    fn the_shipped_scenarios_are_valid() {
        for text in [
            include_str!("../../scenarios/synchronized-expiry.toml"),
            include_str!("../../scenarios/missing-ids.toml"),
        ] {
            let scenario = Scenario::parse(text).unwrap();
            assert!(scenario.workload.burst.is_some() || scenario.workload.missing_share > 0.0);
        }
        let with_policy = format!(
            "{DEFAULT_SCENARIO}\n[[cache_policy.routes]]\npath = \"*\"\nttl_jitter = 0.1\n"
        );
        let setup = Scenario::parse(&with_policy).unwrap().setup(
            crate::topology::Topology::default_embedded(),
            None,
            None,
        );
        let policy = setup.cache_policy_toml.unwrap();
        assert!(policy.contains("ttl_jitter = 0.1"), "{policy}");
    }

    #[test]
    fn invalid_scenarios_say_what_is_wrong() {
        let broken = DEFAULT_SCENARIO.replace("zipf_alpha = 1.0", "zipf_alpha = 9");
        let error = Scenario::parse(&broken).unwrap_err().to_string();
        assert!(error.contains("zipf_alpha"), "{error}");
        let error = Scenario::parse("name = 1").unwrap_err().to_string();
        assert!(error.contains("TOML"), "{error}");
    }
}
