//! The shared scenario suite (`scenarios/`) against the emulator: `edge-emulator serve`, the
//! wasm component, a regional tier with coalescing, in-process origin-stubs.

mod common;
mod scenarios;

use common::{Emulator, Reply};
use scenarios::{Capabilities, Target};
use serde_json::Value;

/// The default PoP (fra) is served by the eu-west origin.
const ORIGIN: &str = "eu-west";

impl Target for Emulator {
    fn name(&self) -> &'static str {
        "emulator"
    }

    fn capabilities(&self) -> Capabilities {
        Capabilities {
            regional_tier: true,
            coalescing: true,
            country_header: false,
        }
    }

    fn default_pop(&self) -> &'static str {
        "fra"
    }

    async fn send(&self, method: &str, path: &str, headers: &[(&str, &str)]) -> Reply {
        Emulator::send(self, method, path, headers).await
    }

    async fn get_from(&self, country: &str, _pop: &str, path: &str) -> Reply {
        // The emulator picks the PoP from CF-IPCountry (its topology maps AU to syd).
        self.get_with(path, &[("cf-ipcountry", country)]).await
    }

    async fn origin_requests(&self, path: &str) -> u64 {
        Emulator::origin_requests(self, ORIGIN, path).await
    }

    async fn set_faults(&self, plan: Value) {
        Emulator::set_faults(self, ORIGIN, plan).await
    }

    async fn age_into_swr(&self) {
        // Products: max-age=60, stale-while-revalidate=30.
        self.advance(70).await
    }

    async fn age_past_swr(&self) {
        // Past 60 + 30 s, inside stale-if-error=600.
        self.advance(120).await
    }
}

/// The emulator with the suite's cache policy (`common::SCENARIO_POLICY`).
async fn start() -> Emulator {
    let policy = common::config_file("scenario-policy", common::SCENARIO_POLICY);
    Emulator::start_with(&["--cache-policy", policy.to_str().unwrap()]).await
}

scenario_tests!(start().await);
