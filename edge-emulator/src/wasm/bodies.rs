//! Bodies the host holds for the worker (the WIT `body` resource): a stored entry's bytes, an
//! upstream answer's, a response's. The worker gets a handle it can pass on untouched; a hit
//! shares the stored bytes (a reference count) instead of copying them into guest memory and
//! back.
//!
//! A handle is good for the request it came with only. Each request starts with an empty
//! table, and handles are numbered from one counter for the whole process, so a handle an
//! isolate kept from an earlier request (or one it made up, or one another isolate's request
//! was given) names nothing: using it traps, it can never read another request's bytes.

use std::sync::atomic::{AtomicU32, Ordering};

use std::collections::HashMap;

use bytes::Bytes;
use wasmtime::component::Resource;

use crate::bindings::types;

/// The bodies of the request a Store is running.
#[derive(Debug, Default)]
pub struct BodyTable {
    held: HashMap<u32, Bytes>,
    /// Bytes the worker handed over this request (`body` constructor), against `limit`.
    made: usize,
    limit: usize,
}

impl BodyTable {
    /// A table whose worker may hand the host at most `limit` bytes per request: bytes it
    /// makes are host memory the guest's own memory limit does not cover.
    pub fn new(limit: usize) -> Self {
        Self {
            limit,
            ..Self::default()
        }
    }

    /// Starts a request: the previous request's handles name nothing from now on.
    pub fn begin(&mut self) {
        self.held.clear();
        self.made = 0;
    }

    /// A new handle to `bytes` for the guest.
    pub fn hold(&mut self, bytes: Bytes) -> Resource<types::Body> {
        // 2^32 handles before a number repeats; a repeat would still need a guest to have
        // kept a handle that long (isolates are recycled after `--isolate-max-requests`).
        let rep = NEXT_HANDLE.fetch_add(1, Ordering::Relaxed);
        self.held.insert(rep, bytes);
        Resource::new_own(rep)
    }

    /// Bytes the guest made, handed over.
    pub fn made(&mut self, bytes: Vec<u8>) -> wasmtime::Result<Resource<types::Body>> {
        self.made = self.made.saturating_add(bytes.len());
        if self.made > self.limit {
            wasmtime::bail!(
                "the worker handed the host more than {} bytes of bodies in one request",
                self.limit
            );
        }
        Ok(self.hold(bytes.into()))
    }

    /// The bytes a handle names.
    pub fn get(&self, handle: &Resource<types::Body>) -> wasmtime::Result<&Bytes> {
        self.held.get(&handle.rep()).ok_or_else(|| stale(handle))
    }

    /// The bytes a handle names, giving the handle up (the guest passed it by value).
    pub fn take(&mut self, handle: Resource<types::Body>) -> wasmtime::Result<Bytes> {
        self.held
            .remove(&handle.rep())
            .ok_or_else(|| stale(&handle))
    }

    /// The guest dropped a handle. One from another request names nothing here: nothing to
    /// drop (the request it belonged to cleared it).
    pub fn drop_handle(&mut self, handle: Resource<types::Body>) {
        self.held.remove(&handle.rep());
    }
}

/// The number the next handle gets, in any Store.
static NEXT_HANDLE: AtomicU32 = AtomicU32::new(1);

fn stale(handle: &Resource<types::Body>) -> wasmtime::Error {
    wasmtime::Error::msg(format!(
        "body handle {} is not one of this request's: a worker may use a body only in the \
         request that received it",
        handle.rep()
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_handle_from_an_earlier_request_names_nothing_in_the_next() {
        let mut table = BodyTable::new(1024);
        table.begin();
        let first = table.hold(Bytes::from_static(b"request one's secret"));
        let kept = Resource::<types::Body>::new_own(first.rep());
        assert_eq!(table.get(&first).unwrap(), "request one's secret");
        table.begin();
        let second = table.hold(Bytes::from_static(b"request two"));
        assert_ne!(
            second.rep(),
            kept.rep(),
            "numbers are never reused in a Store"
        );
        let error = table.get(&kept).unwrap_err().to_string();
        assert!(error.contains("not one of this request's"), "{error}");
        assert!(table.take(kept).is_err());
        assert_eq!(table.get(&second).unwrap(), "request two");
    }

    #[test]
    fn a_handle_from_another_isolate_names_nothing_here() {
        let mut one = BodyTable::new(1024);
        let mut other = BodyTable::new(1024);
        one.begin();
        other.begin();
        let mine = one.hold(Bytes::from_static(b"this isolate"));
        let theirs = other.hold(Bytes::from_static(b"another isolate's request"));
        let foreign = Resource::<types::Body>::new_own(theirs.rep());
        assert!(one.get(&foreign).is_err(), "no bytes of another isolate");
        assert_eq!(one.get(&mine).unwrap(), "this isolate");
    }

    #[test]
    fn what_the_worker_hands_over_is_bounded_per_request() {
        let mut table = BodyTable::new(8);
        table.begin();
        table.made(vec![0; 5]).unwrap();
        assert!(table.made(vec![0; 5]).is_err());
        table.begin();
        table.made(vec![0; 8]).unwrap();
    }
}
