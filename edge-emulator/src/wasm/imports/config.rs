//! `config`: the PoP's auth, routing and cache policy configurations, which an instance reads once.

use crate::bindings::edge::worker::config::Host;
use crate::wasm::state::GuestState;

impl Host for GuestState {
    fn routing_mode(&mut self) -> wasmtime::Result<Option<bool>> {
        self.check_trap()?;
        Ok(self
            .pop
            .routing
            .as_ref()
            .map(|routing| routing.router.redirect_status.is_some()))
    }

    fn routing_config(&mut self) -> wasmtime::Result<Option<String>> {
        self.check_trap()?;
        Ok(self
            .pop
            .routing
            .as_ref()
            .map(|routing| routing.config_json.to_string()))
    }

    fn auth_config(&mut self) -> wasmtime::Result<Option<String>> {
        self.check_trap()?;
        Ok(self.pop.auth_config.as_deref().map(str::to_string))
    }

    fn cache_policy(&mut self) -> wasmtime::Result<Option<String>> {
        self.check_trap()?;
        Ok(self.pop.cache_policy.as_deref().map(str::to_string))
    }
}
