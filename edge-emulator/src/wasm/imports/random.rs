//! `random`: draws for the worker's TTL jitter, from the emulator's generator (seeded per run
//! in the simulator, so the same seed gives the same report; OS-seeded in `serve`).

use crate::bindings::edge::worker::random::Host;
use crate::wasm::state::GuestState;

impl Host for GuestState {
    fn next_u64(&mut self) -> wasmtime::Result<u64> {
        self.check_trap()?;
        Ok(self.pop.network.random())
    }
}
