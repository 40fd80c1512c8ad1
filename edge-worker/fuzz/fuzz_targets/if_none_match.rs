//! Entity tags and preconditions (RFC 9110 §8.8.3, §13): arbitrary ETag, Last-Modified,
//! If-None-Match, If-Match, If-Modified-Since and If-Unmodified-Since values through
//! `EntityTag::parse`, `TagList::from_headers`, `evaluate` and `not_modified`. None may panic;
//! a parsed tag prints back to itself; the §13.2.2 order holds (a failed If-Match is 412
//! whatever follows; 304 only for GET and HEAD; no precondition, no effect); a 304 has no body.
//!
//! Input: the first byte picks the method; then lines: the ETag, the Last-Modified, and then
//! request fields in turn.
//!
//! Run: `edge-worker/fuzz/run.sh if_none_match 600` (stable), or `cargo +nightly fuzz run if_none_match`.

#![no_main]

use edge_worker::conditional::{date, evaluate, not_modified, EntityTag, Precondition, TagList};
use edge_worker::Body;
use http::header::{self, HeaderName};
use http::{HeaderMap, HeaderValue, Method, Response, StatusCode};
use libfuzzer_sys::fuzz_target;

const METHODS: [Method; 5] = [
    Method::GET,
    Method::HEAD,
    Method::PUT,
    Method::POST,
    Method::DELETE,
];
const FIELDS: [HeaderName; 4] = [
    header::IF_NONE_MATCH,
    header::IF_MATCH,
    header::IF_MODIFIED_SINCE,
    header::IF_UNMODIFIED_SINCE,
];

fn round_trips(tag: &EntityTag) {
    let printed = tag.to_string();
    assert_eq!(EntityTag::parse(&printed).as_ref(), Some(tag), "{printed}");
}

fuzz_target!(|data: &[u8]| {
    let Some((&pick, rest)) = data.split_first() else {
        return;
    };
    let method = &METHODS[usize::from(pick) % METHODS.len()].clone();
    let mut lines = rest.split(|b| *b == b'\n');
    let etag_line = lines.next().unwrap_or_default();
    let modified_line = lines.next().unwrap_or_default();
    let mut response = Response::new(Body::from(b"body".to_vec()));
    if let Ok(value) = HeaderValue::from_bytes(etag_line) {
        response.headers_mut().insert(header::ETAG, value);
    }
    if let Ok(value) = HeaderValue::from_bytes(modified_line) {
        response.headers_mut().insert(header::LAST_MODIFIED, value);
    }
    let mut request = HeaderMap::new();
    for (i, line) in lines.enumerate() {
        if let Ok(value) = HeaderValue::from_bytes(line) {
            request.append(&FIELDS[(i + usize::from(pick / 8)) % FIELDS.len()], value);
        }
    }

    let etag = response
        .headers()
        .get(header::ETAG)
        .and_then(|v| v.to_str().ok())
        .and_then(EntityTag::parse);
    if let Some(etag) = &etag {
        round_trips(etag);
        round_trips(&etag.derive("br"));
        assert!(etag.weak_eq(etag));
        assert_eq!(etag.strong_eq(etag), !etag.weak);
    }
    if let Ok(text) = std::str::from_utf8(etag_line) {
        if let Some(tag) = EntityTag::parse(text) {
            round_trips(&tag);
        }
    }
    // Any instant: an RFC 850 date's century is placed from it (RFC 9110 §5.6.7).
    let now = std::time::SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(1_800_000_000);
    let modified = date(response.headers(), &header::LAST_MODIFIED, now);
    for name in [header::IF_NONE_MATCH, header::IF_MATCH] {
        match TagList::from_headers(&request, &name) {
            None => assert!(!request.contains_key(&name)),
            Some(TagList::Any) => {}
            Some(TagList::Tags(tags)) => {
                assert!(tags.len() <= 64);
                tags.iter().for_each(round_trips);
            }
        }
    }

    let verdict = evaluate(method, &request, etag.as_ref(), modified, now);
    assert_eq!(evaluate(method, &request, etag.as_ref(), modified, now), verdict);
    let safe = *method == Method::GET || *method == Method::HEAD;
    if verdict == Precondition::NotModified {
        assert!(safe, "304 for {method}");
    }
    if request.is_empty() {
        assert_eq!(verdict, Precondition::Proceed);
    }
    // §13.2.2 step 1: If-Match with no current representation fails, whatever follows.
    if request.contains_key(header::IF_MATCH) {
        assert_eq!(
            evaluate(method, &request, None, modified, now),
            Precondition::Failed
        );
    }
    // If-None-Match: * against a representation that exists: 304 for GET/HEAD, else 412,
    // unless an If-Match or If-Unmodified-Since failed before it.
    if etag.is_some()
        && !request.contains_key(header::IF_MATCH)
        && !request.contains_key(header::IF_UNMODIFIED_SINCE)
    {
        let mut star = request.clone();
        star.insert(header::IF_NONE_MATCH, HeaderValue::from_static("*"));
        let expected = if safe {
            Precondition::NotModified
        } else {
            Precondition::Failed
        };
        assert_eq!(evaluate(method, &star, etag.as_ref(), modified, now), expected);
    }

    let short = not_modified(&response);
    assert_eq!(short.status(), StatusCode::NOT_MODIFIED);
    assert!(short.body().is_empty());
    assert_eq!(
        short.headers().get(header::ETAG),
        response.headers().get(header::ETAG)
    );
    assert!(!short.headers().contains_key(header::LAST_MODIFIED));
});
