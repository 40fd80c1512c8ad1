//! Conversions between the core's types and the WIT records, on the host side. Bodies cross
//! as handles to bytes the host keeps ([`BodyTable`]).

use bytes::Bytes;
use edge_worker::hops::Hop;
use edge_worker::outcome::Recompression;
use edge_worker::routing::RouteChoice;
use edge_worker::{headers, Body, CacheEntry};
use http::{HeaderMap, Request, Response};

use super::bodies::BodyTable;
use crate::bindings::types;

type WitBody = wasmtime::component::Resource<types::Body>;

// The hop, status and cache-entry conversions, shared with the guest (the field names of
// both bindings generators agree).
include!("../../../wit/shared/values.rs");

fn headers_from_wit(fields: Vec<(String, Vec<u8>)>) -> Result<HeaderMap, String> {
    headers::from_pairs(fields).map_err(|e| e.to_string())
}

pub fn request_from_wit(request: types::Request) -> Result<Request<Body>, String> {
    let mut built = Request::new(Body::from(request.body));
    *built.method_mut() = request
        .method
        .parse()
        .map_err(|_| format!("invalid method {:?}", request.method))?;
    *built.uri_mut() = request
        .url
        .parse()
        .map_err(|_| format!("invalid URL {:?}", request.url))?;
    *built.headers_mut() = headers_from_wit(request.headers)?;
    if let Some(origin) = request.origin {
        built
            .extensions_mut()
            .insert(edge_worker::routing::RoutedTo(origin));
    }
    Ok(built)
}

/// A response for the guest: its body stays here, the guest gets a handle.
pub fn response_to_wit(response: Response<Body>, bodies: &mut BodyTable) -> types::Response {
    let (parts, body) = response.into_parts();
    types::Response {
        status: parts.status.as_u16(),
        headers: headers::to_pairs(&parts.headers),
        body: bodies.hold(body.to_bytes()),
    }
}

/// A response the worker gave, on the host's side: its body is the host's bytes.
#[derive(Debug, Clone)]
pub struct Answer {
    pub status: u16,
    /// Header fields in wire order.
    pub headers: Vec<(String, Vec<u8>)>,
    pub body: Bytes,
}

pub fn answer_from_wit(
    response: types::Response,
    bodies: &mut BodyTable,
) -> wasmtime::Result<Answer> {
    Ok(Answer {
        status: response.status,
        headers: response.headers,
        body: bodies.take(response.body)?,
    })
}

/// A stored entry for the guest: the body stays in the store, shared with the guest's handle.
pub fn entry_to_guest(entry: &CacheEntry, bodies: &mut BodyTable) -> types::CacheEntry {
    entry_to_wit(entry, |body| bodies.hold(body.to_bytes()))
}

/// An entry the guest stores. `Ok(None)` when its fields are not valid HTTP (not stored); an
/// error when its body handle is not this request's.
pub fn entry_from_guest(
    entry: types::CacheEntry,
    bodies: &mut BodyTable,
) -> wasmtime::Result<Option<CacheEntry>> {
    entry_from_wit(entry, |handle| bodies.take(handle).map(Body::from))
}

/// Work the worker asked for after its response, on the host's side.
#[derive(Debug)]
pub enum Background {
    /// Run in the guest again (`run-deferred`): a refresh or a JWKS fetch.
    Guest(types::Deferred),
    /// Recoding a variant, which the host runs natively (`cdn::recode`).
    Recompress(Recompression),
}

impl Background {
    /// What names this work, so a burst of requests asking for it runs it once per PoP.
    pub fn name(&self) -> String {
        match self {
            Background::Guest(types::Deferred::Revalidate(request)) => request.url.clone(),
            Background::Guest(types::Deferred::RefreshJwks(url)) => format!("jwks:{url}"),
            Background::Guest(types::Deferred::Recompress(task)) => {
                format!("recompress:{}", task.key)
            }
            Background::Recompress(task) => format!("recompress:{}", task.key),
        }
    }
}

fn background_from_wit(
    task: types::Deferred,
    bodies: &mut BodyTable,
) -> wasmtime::Result<Background> {
    Ok(match task {
        types::Deferred::Recompress(task) => Background::Recompress(Recompression {
            key: task.key,
            body: Body::from(bodies.take(task.body)?),
        }),
        task => Background::Guest(task),
    })
}

/// What the worker decided for one request, on the host's side of the boundary.
#[derive(Debug)]
pub struct Decision {
    pub response: Answer,
    pub deferred: Vec<Background>,
    /// Every tier the response passed, origin-nearest first; the edge's hop is last.
    pub hops: Vec<Hop>,
    /// The origin this request's own upstream answer came from, when routing chose one.
    pub route: Option<RouteChoice>,
    /// Bytes the response saved over its variant's miss-time coding.
    pub recompression_saved: u64,
    /// The experiments the request was assigned to.
    pub exposures: Vec<edge_worker::experiments::Exposure>,
    /// A composed response's fragments.
    pub parts: Vec<edge_worker::outcome::Part>,
}

pub fn decision_from_wit(
    outcome: types::Outcome,
    bodies: &mut BodyTable,
) -> wasmtime::Result<Decision> {
    Ok(Decision {
        response: answer_from_wit(outcome.response, bodies)?,
        deferred: outcome
            .deferred
            .into_iter()
            .map(|task| background_from_wit(task, bodies))
            .collect::<wasmtime::Result<_>>()?,
        hops: outcome.hops.into_iter().map(hop_from_wit).collect(),
        route: outcome.route.map(route_from_wit),
        recompression_saved: outcome.recompression_saved,
        exposures: outcome
            .exposures
            .into_iter()
            .map(|e| edge_worker::experiments::Exposure {
                experiment: e.experiment.into(),
                variant: e.variant.into(),
                forced: e.forced,
            })
            .collect(),
        parts: outcome
            .parts
            .into_iter()
            .map(|part| edge_worker::outcome::Part {
                url: part.url,
                status: part.status,
                bytes: part.bytes,
                hops: part.hops.into_iter().map(hop_from_wit).collect(),
            })
            .collect(),
    })
}
