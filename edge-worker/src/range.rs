//! Byte ranges of the selected representation (RFC 9110 §14), answered at the edge from the
//! complete response the tier stored or fetched.
//!
//! ```text
//! GET + Range → If-Range holds? (strong validators only, §13.1.5)
//!   → one satisfiable range      → 206 + Content-Range: bytes a-b/len
//!   → no satisfiable range       → 416 + Content-Range: bytes */len
//!   → several, invalid, not GET  → the whole 200 (Accept-Ranges: bytes)
//! ```
//!
//! The tiers never forward `Range`: they fetch and store complete responses, so an origin 206
//! is never asked for, and one that comes anyway is not stored (`entry::policy_status`
//! refuses it; combining partial content, RFC 9111 §3.4, is not built). The range applies
//! to the bytes this request is sent — after `?fields=` projection and content coding — so a
//! `Content-Encoding: br` variant is sliced in its coded bytes and carries its own ETag.
//!
//! Several ranges get the whole 200, as Varnish answers them, rather than
//! `multipart/byteranges`: the clients that resume downloads and seek in media ask for one
//! range, and multipart answers to many small or overlapping ranges are a known amplification
//! (CVE-2011-3192). The parser (the `http-range-header` crate, tower-http's) bounds the
//! ranges and digits it reads.

use std::num::NonZeroUsize;
use std::ops::RangeInclusive;
use std::time::{Duration, SystemTime};

use http::header::{self, HeaderValue};
use http::{HeaderMap, Method, Response, StatusCode};
use http_range_header::RangeUnsatisfiableError;

use crate::conditional::{self, EntityTag};
use crate::{http_date, Body, WorkerError};

/// The most ranges one `Range` field may name before it is ignored (the whole 200).
pub const MAX_RANGES: usize = 16;

/// What a request's `Range` asks of a complete 200 response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RangeAnswer {
    /// No range applies: send the whole representation.
    Whole,
    /// One satisfiable range, inclusive byte positions.
    Part(RangeInclusive<u64>),
    /// A syntactically valid range set of which no range lies within the representation.
    Unsatisfiable,
}

/// Decides what `request`'s `Range` (and `If-Range`) ask of `response`, the representation
/// selected for this request: 200, its final fields and bytes.
pub fn answer(
    method: &Method,
    request: &HeaderMap,
    response: &Response<Body>,
    now: SystemTime,
) -> RangeAnswer {
    if method != Method::GET || response.status() != StatusCode::OK {
        return RangeAnswer::Whole;
    }
    let mut values = request.get_all(header::RANGE).iter();
    let (Some(value), None) = (values.next(), values.next()) else {
        return RangeAnswer::Whole;
    };
    let Ok(text) = value.to_str() else {
        return RangeAnswer::Whole;
    };
    if !if_range_holds(request, response.headers(), now) {
        return RangeAnswer::Whole;
    }
    let max = NonZeroUsize::new(MAX_RANGES).expect("MAX_RANGES is not zero");
    let Ok(parsed) = http_range_header::parse_range_header_with_max_ranges(text, max) else {
        // §14.2: a Range the server does not understand is ignored.
        return RangeAnswer::Whole;
    };
    match parsed.validate(response.body().len() as u64) {
        Ok(ranges) if ranges.len() == 1 => RangeAnswer::Part(ranges[0].clone()),
        // None (an empty representation) or several: the whole response.
        Ok(_) => RangeAnswer::Whole,
        Err(RangeUnsatisfiableError::Unsatisfiable) => RangeAnswer::Unsatisfiable,
        Err(_) => RangeAnswer::Whole,
    }
}

/// RFC 9110 §13.1.5: whether `If-Range` (when present) still names the representation, by
/// strong comparison only; any doubt sends the whole representation, never a wrong part.
fn if_range_holds(request: &HeaderMap, response: &HeaderMap, now: SystemTime) -> bool {
    let mut values = request.get_all(header::IF_RANGE).iter();
    let value = match (values.next(), values.next()) {
        (None, _) => return true,
        (Some(value), None) => value,
        (Some(_), Some(_)) => return false,
    };
    let Ok(text) = value.to_str() else {
        return false;
    };
    let text = text.trim();
    if text.starts_with('"') || text.starts_with("W/") {
        let current = response
            .get(header::ETAG)
            .and_then(|v| v.to_str().ok())
            .and_then(EntityTag::parse);
        return match (EntityTag::parse(text), current) {
            (Some(asked), Some(current)) => asked.strong_eq(&current),
            _ => false,
        };
    }
    let (Some(asked), Some(modified)) = (
        http_date::parse(text, now),
        conditional::date(response, &header::LAST_MODIFIED, now),
    ) else {
        return false;
    };
    // §8.8.2.2: a cache may take Last-Modified as strong when the response's Date is at
    // least a second later (the representation could not change twice in the same second).
    let strong = conditional::date(response, &header::DATE, now)
        .is_some_and(|date| date >= modified + Duration::from_secs(1));
    strong && asked == modified
}

/// Applies `answer` to the selected 200 response: a 206 with the part, a 416, or the whole
/// response marked as one that ranges may be asked of.
pub fn apply(answer: RangeAnswer, mut response: Response<Body>) -> Response<Body> {
    if response.status() != StatusCode::OK {
        return response;
    }
    let length = response.body().len() as u64;
    match answer {
        RangeAnswer::Whole => {}
        RangeAnswer::Part(range) => {
            let content_range = format!("bytes {}-{}/{length}", range.start(), range.end());
            let part = response
                .body()
                .slice(*range.start() as usize..=*range.end() as usize);
            *response.body_mut() = part;
            *response.status_mut() = StatusCode::PARTIAL_CONTENT;
            response.headers_mut().insert(
                header::CONTENT_RANGE,
                HeaderValue::try_from(content_range).expect("digits and ASCII"),
            );
        }
        RangeAnswer::Unsatisfiable => {
            let mut refused = WorkerError::RangeNotSatisfiable { length }.to_response();
            if let Some(etag) = response.headers().get(header::ETAG) {
                refused.headers_mut().insert(header::ETAG, etag.clone());
            }
            return refused;
        }
    }
    response
        .headers_mut()
        .insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
    response
}

#[cfg(test)]
mod tests;
