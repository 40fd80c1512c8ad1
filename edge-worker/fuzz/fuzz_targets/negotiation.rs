//! Arbitrary Accept-Encoding and conditional request fields: negotiation and precondition
//! evaluation may not panic.
//!
//! Run: `edge-worker/fuzz/run.sh negotiation 120` (stable), or `cargo +nightly fuzz run negotiation`.

#![no_main]

use std::time::SystemTime;

use edge_worker::conditional::{evaluate, EntityTag};
use edge_worker::encoding::negotiate;
use http::{HeaderMap, HeaderValue, Method};
use libfuzzer_sys::fuzz_target;

const FIELDS: [&str; 5] = [
    "accept-encoding",
    "if-none-match",
    "if-match",
    "if-modified-since",
    "if-unmodified-since",
];

fuzz_target!(|data: &[u8]| {
    let mut headers = HeaderMap::new();
    for (i, line) in data.split(|b| *b == b'\n').enumerate() {
        if let Ok(value) = HeaderValue::from_bytes(line) {
            headers.append(FIELDS[i % FIELDS.len()], value);
        }
    }
    let _ = negotiate(&headers);
    let etag = EntityTag::parse("\"v1\"");
    for method in [Method::GET, Method::PUT] {
        let _ = evaluate(&method, &headers, etag.as_ref(), None, SystemTime::UNIX_EPOCH);
    }
    if let Some(Ok(text)) = headers.get("if-none-match").map(|v| v.to_str()) {
        let _ = EntityTag::parse(text);
    }
});
