//! `log`: the worker's log lines, on the emulator's stderr.

use crate::bindings::edge::worker::log::Host;
use crate::bindings::types::LogLevel;
use crate::wasm::state::GuestState;

impl Host for GuestState {
    fn write(&mut self, level: LogLevel, message: String) -> wasmtime::Result<()> {
        if !matches!(level, LogLevel::Debug) {
            eprintln!("[edge-{}] {level:?}: {message}", self.pop.name);
        }
        Ok(())
    }
}
