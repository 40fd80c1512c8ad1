//! Arbitrary request field lines through `vary::selecting_value`, the normal form a Vary
//! comparison uses (RFC 9111 §4.1): no panic; the normal form of the normal form is itself
//! (so two requests that normalise alike select one variant); an absent field stays `None`.
//!
//! Input: byte 0 picks the field (the four weighted lists, or one of unknown syntax), then
//! lines.
//!
//! Run: `edge-worker/fuzz/run.sh vary_values 600` (stable), or `cargo +nightly fuzz run vary_values`.

#![no_main]

use edge_worker::vary::selecting_value;
use http::{HeaderMap, HeaderValue};
use libfuzzer_sys::fuzz_target;

const FIELDS: [&str; 5] = [
    "accept",
    "accept-charset",
    "accept-encoding",
    "accept-language",
    "x-tenant",
];

fuzz_target!(|data: &[u8]| {
    let Some((&pick, rest)) = data.split_first() else {
        return;
    };
    let field = FIELDS[usize::from(pick) % FIELDS.len()];
    let mut headers = HeaderMap::new();
    for line in rest.split(|b| *b == b'\n') {
        if let Ok(value) = HeaderValue::from_bytes(line) {
            headers.append(field, value);
        }
    }
    let Some(value) = selecting_value(&headers, field) else {
        assert!(!headers.contains_key(field));
        return;
    };
    let value = value.into_owned();
    let Ok(again) = HeaderValue::from_str(&value) else {
        // Lossy UTF-8 of obs-text: not a value a request could send back as is.
        return;
    };
    let mut normal = HeaderMap::new();
    normal.insert(field, again);
    assert_eq!(
        selecting_value(&normal, field).as_deref(),
        Some(value.as_str()),
        "{field}: {value:?} is not a fixed point"
    );
});
