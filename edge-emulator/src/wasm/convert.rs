//! Conversions between HTTP types and the WIT records, on the host side.

use edge_worker::{headers, Body};
use http::{HeaderMap, Request, Response};

use crate::bindings::types;

// The hop and status conversions, shared with the guest (the field names of both bindings
// generators agree).
include!("../../../wit/shared/hops.rs");

fn headers_from_wit(fields: Vec<(String, Vec<u8>)>) -> Result<HeaderMap, String> {
    headers::from_pairs(fields).map_err(|e| e.to_string())
}

pub fn request_from_wit(request: types::Request) -> Result<Request<Body>, String> {
    let mut built = Request::new(request.body);
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

pub fn response_to_wit(response: Response<Body>) -> types::Response {
    let (parts, body) = response.into_parts();
    types::Response {
        status: parts.status.as_u16(),
        headers: headers::to_pairs(&parts.headers),
        body,
    }
}

/// The head of a stored response as the core reads it (the body is left empty: freshness,
/// which is all a host asks of it, never reads the body), or `None` when its fields are not
/// valid HTTP.
pub fn stored_head_from_wit(stored: &types::StoredResponse) -> Option<edge_worker::StoredResponse> {
    Some(edge_worker::StoredResponse {
        status: http::StatusCode::from_u16(stored.status).ok()?,
        headers: headers_from_wit(stored.headers.clone()).ok()?,
        body: Vec::new(),
        vary_request_headers: headers_from_wit(stored.vary_request_headers.clone()).ok()?,
        response_time: std::time::SystemTime::UNIX_EPOCH
            + std::time::Duration::from_millis(stored.response_time_ms),
        lifetime: stored.lifetime.map(|l| edge_worker::entry::LocalLifetime {
            secs: l.secs,
            negative: l.negative,
        }),
    })
}

/// A stored response with its body (for host-side work on a PoP's slot).
pub fn stored_from_wit(stored: types::StoredResponse) -> Option<edge_worker::StoredResponse> {
    let mut head = stored_head_from_wit(&stored)?;
    head.body = stored.body;
    Some(head)
}

/// The WIT record of a stored response, as the guest's conversion builds it.
pub fn stored_to_wit(stored: edge_worker::StoredResponse) -> types::StoredResponse {
    let millis = stored
        .response_time
        .duration_since(std::time::SystemTime::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
    types::StoredResponse {
        status: stored.status.as_u16(),
        headers: headers::to_pairs(&stored.headers),
        body: stored.body,
        vary_request_headers: headers::to_pairs(&stored.vary_request_headers),
        response_time_ms: millis,
        lifetime: stored.lifetime.map(|l| types::LocalLifetime {
            secs: l.secs,
            negative: l.negative,
        }),
    }
}
