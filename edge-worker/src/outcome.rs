//! What handling a request produces: the response now, and work for after it.

use http::{Request, Response};

use crate::Body;

/// Work to run after the response has been sent (Cloudflare's `ctx.waitUntil`, the
/// emulator's second instance). A value, not a callback, so it can cross the wasm boundary.
#[derive(Debug)]
pub enum Deferred {
    /// Refresh the stored response for this request (RFC 5861 §3 background revalidation).
    Revalidate(Request<Body>),
}

#[derive(Debug)]
pub struct Outcome {
    pub response: Response<Body>,
    pub deferred: Vec<Deferred>,
}

impl Outcome {
    pub fn respond(response: Response<Body>) -> Self {
        Self {
            response,
            deferred: Vec::new(),
        }
    }
}
