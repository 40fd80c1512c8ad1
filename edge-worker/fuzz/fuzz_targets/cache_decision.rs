//! Arbitrary request URL and response/request header values through the cache key, the
//! Cache-Control and Vary parsers, storage capture and the freshness decision: none may panic.
//!
//! Run: `edge-worker/fuzz/run.sh cache_decision 120` (stable), or `cargo +nightly fuzz run cache_decision`.

#![no_main]

use std::time::{Duration, SystemTime};

use edge_worker::cache_control::CacheControl;
use edge_worker::vary::vary_fields;
use edge_worker::Body;
use edge_worker::{freshness, CacheKey, StoredResponse};
use http::{HeaderMap, HeaderValue, Method, Request, Response};
use libfuzzer_sys::fuzz_target;

const FIELDS: [&str; 8] = [
    "cache-control",
    "vary",
    "expires",
    "date",
    "last-modified",
    "age",
    "etag",
    "pragma",
];

fuzz_target!(|data: &[u8]| {
    let mut parts = data.split(|b| *b == b'\n');
    let url = parts.next().unwrap_or_default();
    let Ok(uri) = http::Uri::try_from(url) else {
        return;
    };
    let _ = CacheKey::from_uri(&uri);
    let mut response_headers = HeaderMap::new();
    let mut request_headers = HeaderMap::new();
    for (i, line) in parts.enumerate() {
        if let Ok(value) = HeaderValue::from_bytes(line) {
            let target = if i % 2 == 0 {
                &mut response_headers
            } else {
                &mut request_headers
            };
            target.append(FIELDS[i / 2 % FIELDS.len()], value);
        }
    }
    let _ = CacheControl::from_headers(&response_headers).forbids_stale();
    let _ = vary_fields(&response_headers);
    let mut response = Response::new(Body::new());
    *response.headers_mut() = response_headers;
    let t0 = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
    let stored = StoredResponse::capture(&request_headers, &response, t0);
    let policy = stored.policy(&Method::GET, &uri);
    let mut request = Request::new(Body::new());
    *request.uri_mut() = uri;
    *request.headers_mut() = request_headers;
    for later in [0, 59, 3600, u32::MAX as u64] {
        let _ = freshness::decide(&policy, &stored, &request, t0 + Duration::from_secs(later));
    }
});
