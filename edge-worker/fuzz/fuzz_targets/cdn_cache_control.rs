//! Arbitrary CDN-Cache-Control (RFC 9213) field lines, beside Cache-Control, Expires and
//! Pragma, through `as_cache_control` and `effective`: no panic; any directives handed on are
//! a valid header value and read back the same when given again as CDN-Cache-Control (what
//! we write is what we parsed); the cache's view drops Cache-Control, Expires and Pragma only
//! when the field is valid, and keeps every other field.
//!
//! Input: lines; the first byte of each line picks the field (mostly CDN-Cache-Control).
//!
//! Run: `edge-worker/fuzz/run.sh cdn_cache_control 600` (stable), or `cargo +nightly fuzz run cdn_cache_control`.

#![no_main]

use std::borrow::Cow;

use edge_worker::cache_control::CacheControl;
use edge_worker::cdn_cache_control::{as_cache_control, effective, CDN_CACHE_CONTROL};
use http::header::{CACHE_CONTROL, EXPIRES, PRAGMA};
use http::{HeaderMap, HeaderName, HeaderValue};
use libfuzzer_sys::fuzz_target;

const FIELDS: [&str; 6] = [
    CDN_CACHE_CONTROL,
    CDN_CACHE_CONTROL,
    CDN_CACHE_CONTROL,
    "cache-control",
    "expires",
    "pragma",
];

fuzz_target!(|data: &[u8]| {
    let mut headers = HeaderMap::new();
    headers.insert("etag", HeaderValue::from_static("\"kept\""));
    for line in data.split(|b| *b == b'\n') {
        let Some((&pick, value)) = line.split_first() else {
            continue;
        };
        if let Ok(value) = HeaderValue::from_bytes(value) {
            headers.append(FIELDS[usize::from(pick) % FIELDS.len()], value);
        }
    }
    let text = as_cache_control(&headers);
    assert_eq!(as_cache_control(&headers), text, "deterministic");
    if let Some(text) = &text {
        let value = HeaderValue::from_str(text).expect("the directives are a valid header value");
        // What we hand on, given again as CDN-Cache-Control, reads back the same.
        let mut again = HeaderMap::new();
        again.insert(CDN_CACHE_CONTROL, value.clone());
        if !text.is_empty() {
            assert_eq!(
                as_cache_control(&again).as_deref(),
                Some(text.as_str()),
                "round trip of {text:?}"
            );
        }
        let mut cc = HeaderMap::new();
        cc.insert(CACHE_CONTROL, value);
        let _ = CacheControl::from_headers(&cc).forbids_stale();
    }
    let view = effective(&headers);
    match (&text, &view) {
        (None, Cow::Borrowed(_)) => {}
        (Some(text), Cow::Owned(view)) => {
            assert!(!view.contains_key(EXPIRES));
            assert!(!view.contains_key(PRAGMA));
            let lines: Vec<_> = view.get_all(CACHE_CONTROL).iter().collect();
            if text.is_empty() {
                assert!(lines.is_empty());
            } else {
                assert_eq!(lines, [text.as_str()]);
            }
            for name in headers.keys() {
                let replaced: [&HeaderName; 3] = [&CACHE_CONTROL, &EXPIRES, &PRAGMA];
                if !replaced.contains(&name) {
                    assert!(
                        view.get_all(name).iter().eq(headers.get_all(name).iter()),
                        "{name} kept as it was"
                    );
                }
            }
        }
        _ => panic!("effective disagrees with as_cache_control ({text:?})"),
    }
});
