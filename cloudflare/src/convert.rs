//! workers-rs requests and responses to and from the `http` types the core speaks.

use edge_worker::Body;
use http::uri::Authority;
use http::{HeaderName, HeaderValue, Method, StatusCode, Uri};
use worker::{EncodeBody, Headers, RequestInit, RequestRedirect, ResponseBuilder};

/// Why a request or response could not be converted.
#[derive(Debug, thiserror::Error)]
pub enum ConvertError {
    #[error("{0}")]
    Worker(#[from] worker::Error),
    #[error("{0}")]
    Http(#[from] http::Error),
    #[error("invalid method")]
    Method,
    #[error("invalid header field {0:?}")]
    Header(String),
}

/// Headers the runtime sets itself on a subrequest; copying the client's would misdirect it.
const NOT_FORWARDED: &[&str] = &["host", "content-length"];

/// The client's request as the core sees it, and the host it named.
pub async fn request_from_worker(
    mut request: worker::Request,
) -> Result<(http::Request<Body>, Option<Authority>), ConvertError> {
    let url = request.url()?;
    let method = Method::from_bytes(request.inner().method().as_bytes())
        .map_err(|_| ConvertError::Method)?;
    let mut builder = http::Request::builder()
        .method(method.clone())
        .uri(url.as_str());
    for (name, value) in request.headers().entries() {
        builder = builder.header(header_name(&name)?, header_value(&name, &value)?);
    }
    let body = if method == Method::GET || method == Method::HEAD {
        Body::new()
    } else {
        Body::from(request.bytes().await?)
    };
    let request = builder.body(body)?;
    let zone = request.uri().authority().cloned();
    Ok((request, zone))
}

/// An upstream request for `fetch`, sent to `uri`. Redirects come back to the core as they are.
pub fn request_to_worker(
    request: http::Request<Body>,
    uri: &Uri,
) -> Result<worker::Request, ConvertError> {
    let (parts, body) = request.into_parts();
    let headers = Headers::new();
    for (name, value) in &parts.headers {
        if NOT_FORWARDED.contains(&name.as_str()) {
            continue;
        }
        headers.append(name.as_str(), &String::from_utf8_lossy(value.as_bytes()))?;
    }
    let mut init = RequestInit::new();
    init.with_method(worker::Method::from(parts.method.as_str().to_string()))
        .with_headers(headers)
        .with_redirect(RequestRedirect::Manual);
    if !body.is_empty() {
        init.with_body(Some(js_sys::Uint8Array::from(body.as_slice()).into()));
    }
    Ok(worker::Request::new_with_init(&uri.to_string(), &init)?)
}

/// An upstream response, body read in full (the core caches and transforms whole bodies).
pub async fn response_from_worker(
    mut response: worker::Response,
) -> Result<http::Response<Body>, ConvertError> {
    let mut builder = http::Response::builder().status(response.status_code());
    for (name, value) in response.headers().entries() {
        builder = builder.header(header_name(&name)?, header_value(&name, &value)?);
    }
    let body = Body::from(response.bytes().await?);
    Ok(builder.body(body)?)
}

/// The core's response for the client. The body goes out exactly as the core made it
/// (`encodeBody: "manual"`): the core has already compressed it when it says so in
/// Content-Encoding, and the runtime must not compress it again.
pub fn response_to_worker(response: http::Response<Body>) -> worker::Response {
    let (parts, body) = response.into_parts();
    let headers = Headers::new();
    for (name, value) in &parts.headers {
        // Only non-UTF-8 obs-text could fail here; dropping one odd field beats failing.
        let _ = headers.append(name.as_str(), &String::from_utf8_lossy(value.as_bytes()));
    }
    // The Response constructor throws (and workers-rs then panics) on a status outside
    // 200..=599 or a body with a null-body status: guard both.
    let status = if (200..=599).contains(&parts.status.as_u16()) {
        parts.status
    } else {
        StatusCode::BAD_GATEWAY
    };
    let builder = ResponseBuilder::new()
        .with_status(status.as_u16())
        .with_headers(headers)
        .with_encode_body(EncodeBody::Manual);
    let null_body = matches!(status.as_u16(), 204 | 205 | 304);
    if null_body || body.is_empty() {
        builder.empty()
    } else {
        builder.fixed(body.to_vec())
    }
}

/// A cache slot as the Cache API stores it: our encoded entry, kept `keep_secs`.
/// `cache_tags`: the stored response's `Cache-Tag`, which the Cache API honours, so that
/// Cloudflare's zone purge by tag reaches our slots.
pub fn cache_slot_response(
    bytes: Vec<u8>,
    keep_secs: u64,
    cache_tags: Option<&str>,
) -> worker::Response {
    let headers = Headers::new();
    let _ = headers.set("content-type", "application/octet-stream");
    let _ = headers.set("cache-control", &format!("max-age={keep_secs}"));
    if let Some(tags) = cache_tags {
        let _ = headers.set("cache-tag", tags);
    }
    ResponseBuilder::new()
        .with_status(200)
        .with_headers(headers)
        .fixed(bytes)
}

fn header_name(name: &str) -> Result<HeaderName, ConvertError> {
    HeaderName::from_bytes(name.as_bytes()).map_err(|_| ConvertError::Header(name.to_string()))
}

fn header_value(name: &str, value: &str) -> Result<HeaderValue, ConvertError> {
    HeaderValue::from_str(value).map_err(|_| ConvertError::Header(name.to_string()))
}
