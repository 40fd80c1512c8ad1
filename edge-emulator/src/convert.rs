//! Conversions between HTTP types and the WIT records, on the host side.

use edge_worker::{headers, Body};
use http::{HeaderMap, Request, Response, StatusCode};

use crate::runtime::types;

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

pub fn response_from_wit(response: types::Response) -> Result<Response<Body>, String> {
    let mut built = Response::new(response.body);
    *built.status_mut() = StatusCode::from_u16(response.status)
        .map_err(|_| format!("invalid status {}", response.status))?;
    *built.headers_mut() = headers_from_wit(response.headers)?;
    Ok(built)
}

/// Puts `metric` first in the Server-Timing list, so hops read from client to origin.
pub fn prepend_server_timing(headers: &mut Vec<(String, Vec<u8>)>, metric: &str) {
    match headers
        .iter_mut()
        .find(|(name, _)| name.eq_ignore_ascii_case("server-timing"))
    {
        Some((_, value)) => {
            let mut joined = metric.as_bytes().to_vec();
            joined.extend_from_slice(b", ");
            joined.extend_from_slice(value);
            *value = joined;
        }
        None => headers.push(("server-timing".into(), metric.as_bytes().to_vec())),
    }
}
