//! Conversions between the WIT records and the `http` types the core uses.

use edge_worker::body::HeldBytes;
use edge_worker::outcome::Recompression;
use edge_worker::routing::RoutedTo;
use edge_worker::{headers, Body, CacheEntry, Deferred, Outcome, WorkerError};
use http::{HeaderMap, Method, Request, Response, StatusCode};

use crate::bindings::edge::worker::types;

type WitBody = types::Body;

// The hop, status and cache-entry conversions, shared with the host (the field names of
// both bindings generators agree).
include!("../../../wit/shared/values.rs");

fn headers_from_wit(fields: Vec<(String, Vec<u8>)>) -> Result<HeaderMap, WorkerError> {
    headers::from_pairs(fields)
}

/// A body the host holds, by its handle: the worker passes it on untouched and reads it only
/// to transform it.
struct HostBody {
    handle: types::Body,
    len: usize,
}

// SAFETY: a wasm32-wasip2 component instance runs on one thread; its handles never cross
// threads. The core's `HeldBytes` asks for Send + Sync because native hosts share bodies
// across threads.
unsafe impl Send for HostBody {}
unsafe impl Sync for HostBody {}

impl std::fmt::Debug for HostBody {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "the host ({} bytes)", self.len)
    }
}

impl HeldBytes for HostBody {
    fn len(&self) -> usize {
        self.len
    }

    fn read(&self) -> bytes::Bytes {
        self.handle.read().into()
    }

    fn as_any(&self) -> &dyn std::any::Any {
        self
    }

    fn into_any(self: Box<Self>) -> Box<dyn std::any::Any> {
        self
    }
}

/// A host-held body as the core's [`Body`].
pub fn body_from_wit(handle: types::Body) -> Body {
    let len = usize::try_from(handle.len()).unwrap_or(usize::MAX);
    Body::held(HostBody { handle, len })
}

/// Runs `use_handle` with a handle to `body`: the host's own when it holds the bytes, else a
/// new one for the bytes this side has.
pub fn with_handle<T>(body: &Body, use_handle: impl FnOnce(&types::Body) -> T) -> T {
    match body
        .holder()
        .and_then(|h| h.as_any().downcast_ref::<HostBody>())
    {
        Some(held) => use_handle(&held.handle),
        None => use_handle(&types::Body::new(body)),
    }
}

/// A body handed to the host for good: its handle moves back when this was the last
/// reference, else as [`body_to_wit`].
pub fn body_into_wit(body: Body) -> types::Body {
    match body.into_holder() {
        Ok(holder) => match holder.into_any().downcast::<HostBody>() {
            Ok(held) => held.handle,
            // Only `HostBody` holds bytes in the guest.
            Err(_) => types::Body::new(&[]),
        },
        Err(body) => body_to_wit(&body),
    }
}

/// A body for the host: the same handle when the host holds it already, else its bytes.
pub fn body_to_wit(body: &Body) -> types::Body {
    match body
        .holder()
        .and_then(|h| h.as_any().downcast_ref::<HostBody>())
    {
        Some(held) => held.handle.share(),
        None => types::Body::new(body),
    }
}

pub fn request_from_wit(request: types::Request) -> Result<Request<Body>, WorkerError> {
    let method = Method::from_bytes(request.method.as_bytes())
        .map_err(|_| WorkerError::InvalidUrl(format!("invalid method {:?}", request.method)))?;
    let mut built = Request::new(Body::from(request.body));
    *built.method_mut() = method;
    *built.uri_mut() = request
        .url
        .parse()
        .map_err(|_| WorkerError::InvalidUrl(request.url.clone()))?;
    *built.headers_mut() = headers_from_wit(request.headers)?;
    if let Some(origin) = request.origin {
        built.extensions_mut().insert(RoutedTo(origin));
    }
    Ok(built)
}

pub fn request_to_wit(request: Request<Body>) -> types::Request {
    let (parts, body) = request.into_parts();
    types::Request {
        method: parts.method.to_string(),
        url: parts.uri.to_string(),
        headers: headers::to_pairs(&parts.headers),
        body: body.to_vec(),
        origin: parts.extensions.get::<RoutedTo>().map(|o| o.0.clone()),
    }
}

pub fn response_from_wit(response: types::Response) -> Result<Response<Body>, WorkerError> {
    let mut built = Response::new(body_from_wit(response.body));
    *built.status_mut() = StatusCode::from_u16(response.status)
        .map_err(|_| WorkerError::Upstream(format!("invalid status {}", response.status)))?;
    *built.headers_mut() = headers_from_wit(response.headers)?;
    Ok(built)
}

pub fn response_to_wit(response: Response<Body>) -> types::Response {
    let (parts, body) = response.into_parts();
    types::Response {
        status: parts.status.as_u16(),
        headers: headers::to_pairs(&parts.headers),
        body: body_into_wit(body),
    }
}

/// A stored entry from the host: its body stays there, held by handle.
pub fn entry_from_host(entry: types::CacheEntry) -> Option<CacheEntry> {
    let held = entry_from_wit(entry, |handle| {
        Ok::<_, std::convert::Infallible>(body_from_wit(handle))
    });
    held.unwrap_or_else(|never| match never {})
}

/// An entry for the host to store: a body it holds goes back as a handle to the same bytes.
pub fn entry_to_host(entry: &CacheEntry) -> types::CacheEntry {
    entry_to_wit(entry, body_to_wit)
}

pub fn deferred_to_wit(task: Deferred) -> types::Deferred {
    match task {
        Deferred::Revalidate(request) => types::Deferred::Revalidate(request_to_wit(request)),
        Deferred::RefreshJwks(url) => types::Deferred::RefreshJwks(url),
        Deferred::Recompress(task) => types::Deferred::Recompress(types::Recompression {
            key: task.key,
            body: body_to_wit(&task.body),
        }),
    }
}

pub fn deferred_from_wit(task: types::Deferred) -> Result<Deferred, WorkerError> {
    match task {
        types::Deferred::Revalidate(request) => {
            Ok(Deferred::Revalidate(request_from_wit(request)?))
        }
        types::Deferred::RefreshJwks(url) => Ok(Deferred::RefreshJwks(url)),
        types::Deferred::Recompress(task) => Ok(Deferred::Recompress(Recompression {
            key: task.key,
            body: body_from_wit(task.body),
        })),
    }
}

pub fn outcome_to_wit(outcome: Outcome) -> types::Outcome {
    types::Outcome {
        response: response_to_wit(outcome.response),
        deferred: outcome.deferred.into_iter().map(deferred_to_wit).collect(),
        hops: outcome.hops.into_iter().map(hop_to_wit).collect(),
        route: outcome.route.map(route_to_wit),
        recompression_saved: outcome.recompression_saved,
        exposures: outcome
            .exposures
            .into_iter()
            .map(|e| types::Exposure {
                experiment: e.experiment.to_string(),
                variant: e.variant.to_string(),
                forced: e.forced,
            })
            .collect(),
        parts: outcome
            .parts
            .into_iter()
            .map(|part| types::Part {
                url: part.url,
                status: part.status,
                bytes: part.bytes,
                hops: part.hops.into_iter().map(hop_to_wit).collect(),
            })
            .collect(),
    }
}
