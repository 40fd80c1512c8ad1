use std::time::{Duration, SystemTime};

use http::{header, Method, Response, StatusCode};
use proptest::prelude::*;

use super::*;
use crate::testing::header_map;

const LAST_MODIFIED: &str = "Sun, 01 Nov 2026 00:00:00 GMT";

fn now() -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000)
}

/// A selected 200 of `len` bytes `0, 1, 2, …` with a strong ETag, a Last-Modified and a Date a
/// day later (so the Last-Modified is strong).
fn selected(len: usize) -> Response<Body> {
    let body: Vec<u8> = (0..len).map(|i| i as u8).collect();
    Response::builder()
        .status(StatusCode::OK)
        .header(header::ETAG, "\"v1\"")
        .header(header::LAST_MODIFIED, LAST_MODIFIED)
        .header(header::DATE, "Mon, 02 Nov 2026 00:00:00 GMT")
        .body(Body::from(body))
        .unwrap()
}

fn answered(request: &[(&str, &str)], response: Response<Body>) -> Response<Body> {
    let answer = answer(&Method::GET, &header_map(request), &response, now());
    apply(answer, response)
}

fn field(response: &Response<Body>, name: header::HeaderName) -> &str {
    response
        .headers()
        .get(name)
        .map_or("", |v| v.to_str().unwrap())
}

#[test]
fn rfc9110_14_1_2_first_last_suffix_and_open_ended_ranges() {
    // (Range, expected first..=last) over 100 bytes.
    let cases = [
        ("bytes=0-9", 0..=9),
        ("bytes=90-", 90..=99),
        ("bytes=-5", 95..=99),
        ("bytes=-500", 0..=99),
        ("bytes=95-1000", 95..=99),
        ("bytes=42-42", 42..=42),
        ("BYTES=0-0", 0..=0),
        // One range of several out of bounds: the satisfiable one is served (§14.1.1).
        ("bytes=500-600, 3-4", 3..=4),
    ];
    for (range, expected) in cases {
        let response = answered(&[("range", range)], selected(100));
        assert_eq!(response.status(), StatusCode::PARTIAL_CONTENT, "{range}");
        let want: Vec<u8> = expected.clone().map(|i| i as u8).collect();
        assert_eq!(response.body().as_slice(), want.as_slice(), "{range}");
        assert_eq!(
            field(&response, header::CONTENT_RANGE),
            format!("bytes {}-{}/100", expected.start(), expected.end()),
            "{range}"
        );
        assert_eq!(field(&response, header::ACCEPT_RANGES), "bytes");
        assert_eq!(field(&response, header::ETAG), "\"v1\"", "{range}");
    }
}

#[test]
fn rfc9110_15_5_17_no_satisfiable_range_is_a_416_naming_the_length() {
    for range in [
        "bytes=100-",
        "bytes=200-300",
        "bytes=-0",
        "bytes=100-200, 150-",
    ] {
        let response = answered(&[("range", range)], selected(100));
        assert_eq!(
            response.status(),
            StatusCode::RANGE_NOT_SATISFIABLE,
            "{range}"
        );
        assert_eq!(field(&response, header::CONTENT_RANGE), "bytes */100");
        let body: serde_json::Value = serde_json::from_slice(response.body()).unwrap();
        assert_eq!(body["error"], "range_not_satisfiable", "{range}");
    }
}

#[test]
fn rfc9110_14_2_ranges_not_understood_several_or_not_on_get_give_the_whole_200() {
    let whole = [
        // Another unit, bad syntax, reversed: ignored (§14.2).
        "items=0-9",
        "bytes=9-0",
        "bytes=abc",
        "bytes=",
        "bytes 0-9",
        // Several ranges: the whole 200, as Varnish answers them.
        "bytes=0-9,20-29",
        "bytes=0-0,-1",
    ];
    for range in whole {
        let response = answered(&[("range", range)], selected(100));
        assert_eq!(response.status(), StatusCode::OK, "{range}");
        assert_eq!(response.body().len(), 100, "{range}");
        assert_eq!(field(&response, header::ACCEPT_RANGES), "bytes");
        assert_eq!(field(&response, header::CONTENT_RANGE), "");
    }
    let too_many = vec!["0-0"; MAX_RANGES + 1].join(",");
    let response = answered(&[("range", &format!("bytes={too_many}"))], selected(100));
    assert_eq!(response.status(), StatusCode::OK);
    // HEAD (and every other method) ignores Range (§14.2).
    let response = selected(100);
    let headers = header_map(&[("range", "bytes=0-9")]);
    assert_eq!(
        answer(&Method::HEAD, &headers, &response, now()),
        RangeAnswer::Whole
    );
    // Two Range fields: not one range set, ignored.
    let mut headers = header_map(&[("range", "bytes=0-9")]);
    headers.append(header::RANGE, "bytes=10-19".parse().unwrap());
    assert_eq!(
        answer(&Method::GET, &headers, &response, now()),
        RangeAnswer::Whole
    );
    // An empty representation has no byte to point at: the whole (empty) 200.
    let response = answered(&[("range", "bytes=-5")], selected(0));
    assert_eq!(response.status(), StatusCode::OK);
}

#[test]
fn only_a_200_is_ranged() {
    let mut response = selected(100);
    *response.status_mut() = StatusCode::NOT_FOUND;
    let response = answered(&[("range", "bytes=0-9")], response);
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
    assert_eq!(response.body().len(), 100);
    assert_eq!(field(&response, header::ACCEPT_RANGES), "");
}

#[test]
fn rfc9110_13_1_5_if_range_compares_strong_validators_only() {
    // (If-Range, whether the range is served)
    let cases = [
        ("\"v1\"", true),
        ("\"v2\"", false),
        // A weak tag never matches, even the same opaque tag.
        ("W/\"v1\"", false),
        (LAST_MODIFIED, true),
        // The obsolete forms of the same instant (§5.6.7).
        ("Sunday, 01-Nov-26 00:00:00 GMT", true),
        ("Sun Nov  1 00:00:00 2026", true),
        ("Sun, 01 Nov 2026 00:00:01 GMT", false),
        ("garbage", false),
        ("", false),
    ];
    for (if_range, served) in cases {
        let response = answered(
            &[("range", "bytes=0-9"), ("if-range", if_range)],
            selected(100),
        );
        let expected = if served {
            StatusCode::PARTIAL_CONTENT
        } else {
            StatusCode::OK
        };
        assert_eq!(response.status(), expected, "If-Range: {if_range}");
    }
    // A weak ETag on the representation: no tag matches it strongly.
    let mut response = selected(100);
    response
        .headers_mut()
        .insert(header::ETAG, "W/\"v1\"".parse().unwrap());
    let response = answered(
        &[("range", "bytes=0-9"), ("if-range", "W/\"v1\"")],
        response,
    );
    assert_eq!(response.status(), StatusCode::OK);
    // §8.8.2.2: a Last-Modified within a second of the Date is weak, so the date fails.
    let mut response = selected(100);
    response
        .headers_mut()
        .insert(header::DATE, LAST_MODIFIED.parse().unwrap());
    let response = answered(
        &[("range", "bytes=0-9"), ("if-range", LAST_MODIFIED)],
        response,
    );
    assert_eq!(response.status(), StatusCode::OK);
}

proptest! {
    /// Any Range and If-Range text over any length: 200 (whole), 206 (a slice that matches
    /// its Content-Range) or 416, never a panic.
    #[test]
    fn any_range_gives_200_206_or_416(
        range in prop_oneof![
            "[ -~]{0,40}",
            "bytes=[0-9 ,-]{0,30}",
            (0u64..300, 0u64..300).prop_map(|(a, b)| format!("bytes={a}-{b}")),
            (0u64..300).prop_map(|n| format!("bytes=-{n}")),
            (0u64..300).prop_map(|n| format!("bytes={n}-")),
        ],
        if_range in proptest::option::of("[ -~]{0,30}"),
        len in 0usize..256,
    ) {
        let mut request = vec![("range", range.as_str())];
        if let Some(if_range) = &if_range {
            request.push(("if-range", if_range.as_str()));
        }
        let full = selected(len);
        let whole = full.body().clone();
        let response = answered(&request, full);
        match response.status() {
            StatusCode::OK => prop_assert_eq!(response.body(), &whole),
            StatusCode::PARTIAL_CONTENT => {
                let content_range = field(&response, header::CONTENT_RANGE);
                let spec = content_range.strip_prefix("bytes ").unwrap();
                let (span, total) = spec.split_once('/').unwrap();
                let (first, last) = span.split_once('-').unwrap();
                let (first, last): (usize, usize) = (first.parse().unwrap(), last.parse().unwrap());
                prop_assert_eq!(total.parse::<usize>().unwrap(), len);
                prop_assert!(first <= last && last < len);
                prop_assert_eq!(response.body().as_slice(), &whole[first..=last]);
            }
            StatusCode::RANGE_NOT_SATISFIABLE => {
                prop_assert_eq!(field(&response, header::CONTENT_RANGE), format!("bytes */{len}"));
            }
            other => prop_assert!(false, "status {other}"),
        }
    }
}
