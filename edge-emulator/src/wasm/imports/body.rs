//! `types.body`: bytes the host holds for the worker, by handle (`wasm::bodies`), and their
//! coding, which the host does once per distinct input (`cdn::coding`).

use wasmtime::component::Resource;

use edge_worker::encoding::Coding;

use crate::bindings::types::{Body, ContentCoding, HostBody};
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

    /// Coded natively, once per distinct input (`cdn::coding`), and charged to the request's
    /// CPU limit as the worker's own time.
    fn encode(
        &mut self,
        body: Resource<Body>,
        coding: ContentCoding,
        level: u32,
    ) -> wasmtime::Result<Resource<Body>> {
        self.check_trap()?;
        let coding = match coding {
            ContentCoding::Gzip => Coding::Gzip,
            ContentCoding::Br => Coding::Brotli,
            ContentCoding::Zstd => Coding::Zstd,
        };
        let bytes = self.bodies.get(&body)?.clone();
        let coded = self.pop.codings.encode(coding, &bytes, level);
        self.charge_cpu(coded.took)?;
        Ok(self.bodies.hold(coded.bytes))
    }

    fn drop(&mut self, body: Resource<Body>) -> wasmtime::Result<()> {
        self.bodies.drop_handle(body);
        Ok(())
    }
}
