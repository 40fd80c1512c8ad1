//! `clock`: the PoP's clock (wall time in `serve`, virtual in the simulator).

use crate::bindings::edge::worker::clock::Host;
use crate::wasm::state::GuestState;

impl Host for GuestState {
    fn now_ms(&mut self) -> wasmtime::Result<u64> {
        self.check_trap()?;
        Ok(self.pop.network.clock.now_ms())
    }
}
