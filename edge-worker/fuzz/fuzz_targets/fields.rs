//! A `?fields=` mask and a body through the parser and the streaming projector: neither may
//! panic, the canonical form must be a fixed point, and valid JSON in must give valid JSON
//! out that agrees with projecting through a `serde_json::Value` tree.
//!
//! Run: `edge-worker/fuzz/run.sh fields 300` (stable), or `cargo +nightly fuzz run fields`.

#![no_main]

use edge_worker::fields::{project, Mask};
use edge_worker::testing::reference;
use libfuzzer_sys::fuzz_target;
use serde_json::Value;

fuzz_target!(|data: &[u8]| {
    let split = data.iter().position(|b| *b == b'\n').unwrap_or(data.len());
    let (mask, body) = (&data[..split], data.get(split + 1..).unwrap_or_default());
    let Ok(mask) = std::str::from_utf8(mask) else {
        return;
    };
    let Ok(mask) = Mask::parse(mask) else { return };
    let canonical = mask.to_string();
    let again = Mask::parse(&canonical).expect("the canonical form parses");
    assert_eq!(again, mask);
    assert_eq!(again.to_string(), canonical);
    let projected = project(body, &mask);
    if let (Ok(value), Ok(out)) = (serde_json::from_slice::<Value>(body), &projected) {
        let out: Value = serde_json::from_slice(out).expect("valid JSON in, valid JSON out");
        assert_eq!(out, reference(&value, mask.selection()));
    }
});
