//! `types.body`: bytes the host holds for the worker, by handle (`wasm::bodies`).

use wasmtime::component::Resource;

use crate::bindings::types::{Body, HostBody};
use crate::wasm::state::GuestState;

impl HostBody for GuestState {
    fn new(&mut self, bytes: Vec<u8>) -> wasmtime::Result<Resource<Body>> {
        self.check_trap()?;
        self.bodies.made(bytes)
    }

    fn len(&mut self, body: Resource<Body>) -> wasmtime::Result<u64> {
        Ok(self.bodies.get(&body)?.len() as u64)
    }

    fn read(&mut self, body: Resource<Body>) -> wasmtime::Result<Vec<u8>> {
        self.check_trap()?;
        Ok(self.bodies.get(&body)?.to_vec())
    }

    fn share(&mut self, body: Resource<Body>) -> wasmtime::Result<Resource<Body>> {
        let bytes = self.bodies.get(&body)?.clone();
        Ok(self.bodies.hold(bytes))
    }

    fn drop(&mut self, body: Resource<Body>) -> wasmtime::Result<()> {
        self.bodies.drop_handle(body);
        Ok(())
    }
}
