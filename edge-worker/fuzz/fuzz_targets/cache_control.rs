//! Arbitrary Cache-Control field lines (one per input line) through `CacheControl::from_headers`
//! and every accessor: no panic, at most `MAX_DIRECTIVES` directives, the accessors agree with
//! each other, and parsing is deterministic.
//!
//! Run: `edge-worker/fuzz/run.sh cache_control 600` (stable), or `cargo +nightly fuzz run cache_control`.

#![no_main]

use edge_worker::cache_control::CacheControl;
use http::header::CACHE_CONTROL;
use http::{HeaderMap, HeaderValue};
use libfuzzer_sys::fuzz_target;

/// Directive names the worker asks about (RFC 9111 §5.2, RFC 5861).
const NAMES: [&str; 14] = [
    "max-age",
    "s-maxage",
    "no-cache",
    "no-store",
    "private",
    "public",
    "must-revalidate",
    "proxy-revalidate",
    "no-transform",
    "stale-while-revalidate",
    "stale-if-error",
    "min-fresh",
    "max-stale",
    "only-if-cached",
];

fuzz_target!(|data: &[u8]| {
    let mut headers = HeaderMap::new();
    for line in data.split(|b| *b == b'\n') {
        if let Ok(value) = HeaderValue::from_bytes(line) {
            headers.append(CACHE_CONTROL, value);
        }
    }
    let cc = CacheControl::from_headers(&headers);
    assert_eq!(CacheControl::from_headers(&headers), cc, "deterministic");
    // Names taken from the input itself, lower-cased as the parser stores them.
    let text = String::from_utf8_lossy(data).to_ascii_lowercase();
    let found = text
        .split([',', '\n', '='])
        .map(str::trim)
        .filter(|n| !n.is_empty())
        .take(80);
    let agree = |name: &str| {
        if cc.seconds(name).is_some() {
            assert!(cc.has(name), "{name}: seconds without the directive");
        }
    };
    NAMES.iter().for_each(|name| agree(name));
    found.for_each(agree);
    assert_eq!(cc.is_no_cache(), cc.has("no-cache"));
    let forbids = [
        "must-revalidate",
        "proxy-revalidate",
        "s-maxage",
        "no-cache",
    ]
    .iter()
    .any(|n| cc.has(n));
    assert_eq!(cc.forbids_stale(), forbids);
    // A value with no Cache-Control field parses as no directives at all.
    if headers.is_empty() {
        assert_eq!(cc, CacheControl::default());
    }
});
