//! Arbitrary `Range` and `If-Range` values over a response of fuzz-chosen length, and arbitrary
//! HTTP-date text: `range::answer`/`apply` give 200 (the whole body), 206 (exactly the bytes
//! its Content-Range names) or 416 (`bytes */len`), never a panic; `http_date::parse` never
//! panics, and what `normalise` writes is IMF-fixdate that reads back as the same instant.
//!
//! Input: byte 0 the body length, then `Range` up to the first newline, `If-Range` after it.
//!
//! Run: `edge-worker/fuzz/run.sh ranges_and_dates 600` (stable), or `cargo +nightly fuzz run ranges_and_dates`.

#![no_main]

use std::time::{Duration, SystemTime};

use edge_worker::range::{answer, apply};
use edge_worker::{http_date, Body};
use http::{header, HeaderMap, HeaderValue, Method, Response, StatusCode};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&len, rest)) = data.split_first() else {
        return;
    };
    let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000);
    let (range, if_range) = match rest.iter().position(|b| *b == b'\n') {
        Some(at) => (&rest[..at], Some(&rest[at + 1..])),
        None => (rest, None),
    };
    for text in [Some(range), if_range].into_iter().flatten() {
        if let Ok(text) = std::str::from_utf8(text) {
            let parsed = http_date::parse(text, now);
            if let Some(fixed) = http_date::normalise(text, now) {
                assert_eq!(httpdate::parse_http_date(&fixed).ok(), parsed, "{text:?} → {fixed:?}");
            }
        }
    }
    let mut request = HeaderMap::new();
    if let Ok(value) = HeaderValue::from_bytes(range) {
        request.insert(header::RANGE, value);
    }
    if let Some(Ok(value)) = if_range.map(HeaderValue::from_bytes) {
        request.insert(header::IF_RANGE, value);
    }
    let whole: Vec<u8> = (0..len).collect();
    let response = Response::builder()
        .header(header::ETAG, "\"v1\"")
        .header(header::LAST_MODIFIED, "Sun, 01 Nov 2026 00:00:00 GMT")
        .header(header::DATE, "Mon, 02 Nov 2026 00:00:00 GMT")
        .body(Body::from(whole.clone()))
        .unwrap();
    let answered = apply(answer(&Method::GET, &request, &response, now), response);
    let field = |name| {
        answered
            .headers()
            .get(name)
            .map(|v: &HeaderValue| v.to_str().unwrap().to_string())
    };
    match answered.status() {
        StatusCode::OK => assert_eq!(answered.body().as_slice(), whole.as_slice()),
        StatusCode::PARTIAL_CONTENT => {
            let content_range = field(header::CONTENT_RANGE).expect("a 206 names its range");
            let (span, total) = content_range
                .strip_prefix("bytes ")
                .and_then(|s| s.split_once('/'))
                .expect("bytes first-last/len");
            let (first, last) = span.split_once('-').expect("first-last");
            let (first, last): (usize, usize) = (first.parse().unwrap(), last.parse().unwrap());
            assert_eq!(total.parse::<usize>().unwrap(), whole.len());
            assert!(first <= last && last < whole.len());
            assert_eq!(answered.body().as_slice(), &whole[first..=last]);
        }
        StatusCode::RANGE_NOT_SATISFIABLE => {
            assert_eq!(field(header::CONTENT_RANGE), Some(format!("bytes */{}", whole.len())));
        }
        other => panic!("status {other}"),
    }
});
