//! Entity tags and conditional requests (RFC 9110 §8.8.3, §13), and a stored response
//! freshened by a 304 (RFC 9111 §4.3.4).
//!
//! Written here because `http` has no entity-tag type and `http-cache-semantics` only builds
//! conditional requests; it does not evaluate them.

use std::time::SystemTime;

use http::header::{self, HeaderName};
use http::{HeaderMap, Method, Response, StatusCode};
use xxhash_rust::xxh3::xxh3_128;

use crate::{Body, StoredResponse};

/// Most entity tags we compare from one `If-None-Match` / `If-Match`.
const MAX_TAGS: usize = 64;

/// An entity tag (RFC 9110 §8.8.3): an opaque quoted string, weak or strong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EntityTag {
    pub weak: bool,
    /// The characters between the quotes.
    pub tag: String,
}

impl EntityTag {
    pub fn strong(tag: impl Into<String>) -> Self {
        Self {
            weak: false,
            tag: tag.into(),
        }
    }

    /// Parses one `entity-tag`; `None` if it is not one.
    pub fn parse(text: &str) -> Option<Self> {
        let text = text.trim();
        let (weak, quoted) = match text.strip_prefix("W/") {
            Some(rest) => (true, rest),
            None => (false, text),
        };
        let tag = quoted.strip_prefix('"')?.strip_suffix('"')?;
        // etagc = %x21 / %x23-7E / obs-text
        if !tag
            .bytes()
            .all(|b| b == 0x21 || (0x23..=0x7e).contains(&b) || b >= 0x80)
        {
            return None;
        }
        Some(Self {
            weak,
            tag: tag.to_string(),
        })
    }

    /// A strong tag for bytes that came with none: a hash of the content.
    pub fn of_content(body: &[u8]) -> Self {
        Self::strong(format!("{:032x}", xxh3_128(body)))
    }

    /// The tag of a representation derived from this one (a projection or a content coding):
    /// distinct per derivation (RFC 9110 §8.8.3.3) and as weak as its base.
    pub fn derive(&self, suffix: &str) -> Self {
        Self {
            weak: self.weak,
            tag: format!("{}-{suffix}", self.tag),
        }
    }

    /// Strong comparison (§8.8.3.2): both strong and the same.
    pub fn strong_eq(&self, other: &EntityTag) -> bool {
        !self.weak && !other.weak && self.tag == other.tag
    }

    /// Weak comparison (§8.8.3.2): the same opaque tag, weak or not.
    pub fn weak_eq(&self, other: &EntityTag) -> bool {
        self.tag == other.tag
    }
}

impl std::fmt::Display for EntityTag {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.weak {
            f.write_str("W/")?;
        }
        write!(f, "\"{}\"", self.tag)
    }
}

/// `If-Match` / `If-None-Match` values: `*` or a list of entity tags.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TagList {
    Any,
    Tags(Vec<EntityTag>),
}

impl TagList {
    /// Parses every field line of `name`. Entries that are not entity tags are ignored, so a
    /// malformed list can only fail to match. `None` when the field is absent.
    pub fn from_headers(headers: &HeaderMap, name: &HeaderName) -> Option<TagList> {
        let mut tags = Vec::new();
        let mut present = false;
        for value in headers.get_all(name) {
            present = true;
            let Ok(text) = value.to_str() else { continue };
            if text.trim() == "*" {
                return Some(TagList::Any);
            }
            tags.extend(split_tags(text).filter_map(EntityTag::parse));
            tags.truncate(MAX_TAGS);
        }
        present.then_some(TagList::Tags(tags))
    }

    fn matches(&self, current: Option<&EntityTag>, weak: bool) -> bool {
        match (self, current) {
            (TagList::Any, current) => current.is_some(),
            (TagList::Tags(_), None) => false,
            (TagList::Tags(tags), Some(current)) => tags.iter().any(|tag| {
                if weak {
                    tag.weak_eq(current)
                } else {
                    tag.strong_eq(current)
                }
            }),
        }
    }
}

/// Splits a list of entity tags at the commas between them; a comma may appear inside quotes.
fn split_tags(text: &str) -> impl Iterator<Item = &str> {
    let mut rest = text;
    std::iter::from_fn(move || {
        let trimmed = rest.trim_start_matches([' ', '\t', ',']);
        if trimmed.is_empty() {
            return None;
        }
        // Skip to the closing quote, then to the next comma.
        let open = trimmed.find('"').map_or(trimmed.len(), |i| i + 1);
        let close = trimmed[open..]
            .find('"')
            .map_or(trimmed.len(), |i| open + i + 1);
        let end = trimmed[close..]
            .find(',')
            .map_or(trimmed.len(), |i| close + i);
        let (item, tail) = trimmed.split_at(end);
        rest = tail;
        Some(item)
    })
}

/// What the preconditions of a request decide for the selected representation (§13.2.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Precondition {
    /// No precondition, or all passed: answer normally.
    Proceed,
    /// 304: the client's copy is current (GET/HEAD only).
    NotModified,
    /// 412: a precondition failed.
    Failed,
}

/// Evaluates `If-Match`, `If-Unmodified-Since`, `If-None-Match` and `If-Modified-Since` in the
/// order of RFC 9110 §13.2.2 against the representation's `etag` and `last_modified`
/// (`now` places a two-digit year). Call only when the response would otherwise be 2xx
/// (§13.2.1).
pub fn evaluate(
    method: &Method,
    request: &HeaderMap,
    etag: Option<&EntityTag>,
    last_modified: Option<SystemTime>,
    now: SystemTime,
) -> Precondition {
    let safe = method == Method::GET || method == Method::HEAD;
    // Step 1 and 2: If-Match, else If-Unmodified-Since.
    if let Some(list) = TagList::from_headers(request, &header::IF_MATCH) {
        if !list.matches(etag, false) {
            return Precondition::Failed;
        }
    } else if let (Some(since), Some(modified)) = (
        date(request, &header::IF_UNMODIFIED_SINCE, now),
        last_modified,
    ) {
        if modified > since {
            return Precondition::Failed;
        }
    }
    // Step 3 and 4: If-None-Match, else If-Modified-Since (GET and HEAD only, §13.1.3).
    if let Some(list) = TagList::from_headers(request, &header::IF_NONE_MATCH) {
        if list.matches(etag, true) {
            return if safe {
                Precondition::NotModified
            } else {
                Precondition::Failed
            };
        }
    } else if let (true, Some(since), Some(modified)) = (
        safe,
        date(request, &header::IF_MODIFIED_SINCE, now),
        last_modified,
    ) {
        if modified <= since {
            return Precondition::NotModified;
        }
    }
    Precondition::Proceed
}

/// An HTTP-date field in any of its three forms (RFC 9110 §5.6.7, `now` placing a two-digit
/// year); `None` when absent or invalid (an invalid date is ignored, §13.1.3).
pub fn date(headers: &HeaderMap, name: &HeaderName, now: SystemTime) -> Option<SystemTime> {
    let text = headers.get(name)?.to_str().ok()?;
    crate::http_date::parse(text, now)
}

/// Fields a 304 carries (§15.4.5): those a 200 would have sent among these. Fields about the
/// cache rather than the representation (Age, CF-Cache-Status, Cache-Status) are kept too, as
/// Cloudflare keeps them.
const NOT_MODIFIED_FIELDS: [&str; 9] = [
    "etag",
    "cache-control",
    "expires",
    "vary",
    "date",
    "content-location",
    "age",
    "cf-cache-status",
    "cache-status",
];

/// The 304 for a 200 response the client already has.
pub fn not_modified(full: &Response<Body>) -> Response<Body> {
    let mut response = Response::new(Body::new());
    *response.status_mut() = StatusCode::NOT_MODIFIED;
    for name in NOT_MODIFIED_FIELDS {
        for value in full.headers().get_all(name) {
            response.headers_mut().append(name, value.clone());
        }
    }
    response
}

/// The stored response freshened by a 304 (RFC 9111 §4.3.4, §3.2): every field the 304
/// carries replaces the stored one, except Content-Length and fields never stored; the stored
/// `Age` goes unless the 304 sends one, and the response time becomes `now`. Done here rather
/// than by `http-cache-semantics`, whose merge keeps only one value of multi-valued fields.
/// The caller must first check that the 304 selects this stored response.
pub fn refreshed(
    mut stored: StoredResponse,
    not_modified: &HeaderMap,
    now: SystemTime,
) -> StoredResponse {
    let mut update = Response::new(Body::new());
    *update.headers_mut() = not_modified.clone();
    let update = StoredResponse::capture(&HeaderMap::new(), &update, now);
    for name in update.headers.keys() {
        if name == header::CONTENT_LENGTH {
            continue;
        }
        stored.headers.remove(name);
        for value in update.headers.get_all(name) {
            stored.headers.append(name.clone(), value.clone());
        }
    }
    if !not_modified.contains_key(header::AGE) {
        stored.headers.remove(header::AGE);
    }
    stored.response_time = now;
    // The 304 brings the origin's freshness anew: a lifetime this cache chose for the old
    // copy does not carry over (the tier chooses again when it stores the refreshed one).
    stored.lifetime = None;
    stored
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tag(text: &str) -> EntityTag {
        EntityTag::parse(text).unwrap()
    }

    use crate::testing::header_map as headers;

    const MODIFIED: &str = "Tue, 24 Nov 2026 10:00:00 GMT";

    fn now() -> SystemTime {
        httpdate::parse_http_date("Sun, 06 Dec 2026 00:00:00 GMT").unwrap()
    }
    const BEFORE: &str = "Mon, 23 Nov 2026 10:00:00 GMT";
    const AFTER: &str = "Wed, 25 Nov 2026 10:00:00 GMT";

    #[test]
    fn rfc9110_8_8_3_2_comparison_table() {
        // (a, b, strong, weak)
        let table = [
            ("W/\"1\"", "W/\"1\"", false, true),
            ("W/\"1\"", "W/\"2\"", false, false),
            ("W/\"1\"", "\"1\"", false, true),
            ("\"1\"", "\"1\"", true, true),
        ];
        for (a, b, strong, weak) in table {
            assert_eq!(tag(a).strong_eq(&tag(b)), strong, "{a} {b}");
            assert_eq!(tag(a).weak_eq(&tag(b)), weak, "{a} {b}");
        }
        assert_eq!(EntityTag::parse("\"a b\""), None);
        assert_eq!(EntityTag::parse("abc"), None);
        assert_eq!(tag("W/\"x\"").derive("br").to_string(), "W/\"x-br\"");
    }

    /// (name, method, request fields, expected)
    type Case<'a> = (
        &'a str,
        &'a Method,
        Vec<(&'static str, &'a str)>,
        Precondition,
    );

    #[test]
    fn rfc9110_13_2_2_precedence_table() {
        let etag = tag("\"v1\"");
        let modified = httpdate::parse_http_date(MODIFIED).ok();
        let get = Method::GET;
        let put = Method::PUT;
        let cases: Vec<Case> = vec![
            ("no preconditions", &get, vec![], Precondition::Proceed),
            // §13.1.2 If-None-Match: weak comparison, lists, `*`.
            (
                "INM match",
                &get,
                vec![("if-none-match", "\"v1\"")],
                Precondition::NotModified,
            ),
            (
                "INM weak match",
                &get,
                vec![("if-none-match", "W/\"v1\"")],
                Precondition::NotModified,
            ),
            (
                "INM list",
                &get,
                vec![("if-none-match", "\"a\", \"v1\"")],
                Precondition::NotModified,
            ),
            (
                "INM two lines",
                &get,
                vec![("if-none-match", "\"a\""), ("if-none-match", "\"v1\"")],
                Precondition::NotModified,
            ),
            (
                "INM star",
                &get,
                vec![("if-none-match", "*")],
                Precondition::NotModified,
            ),
            (
                "INM no match",
                &get,
                vec![("if-none-match", "\"v2\"")],
                Precondition::Proceed,
            ),
            (
                "INM on PUT",
                &put,
                vec![("if-none-match", "\"v1\"")],
                Precondition::Failed,
            ),
            (
                "INM star on PUT",
                &put,
                vec![("if-none-match", "*")],
                Precondition::Failed,
            ),
            // §13.1.3 If-Modified-Since only without If-None-Match.
            (
                "IMS not modified",
                &get,
                vec![("if-modified-since", AFTER)],
                Precondition::NotModified,
            ),
            (
                "IMS equal",
                &get,
                vec![("if-modified-since", MODIFIED)],
                Precondition::NotModified,
            ),
            (
                "IMS modified",
                &get,
                vec![("if-modified-since", BEFORE)],
                Precondition::Proceed,
            ),
            (
                "IMS invalid date",
                &get,
                vec![("if-modified-since", "yesterday")],
                Precondition::Proceed,
            ),
            (
                "IMS ignored with INM",
                &get,
                vec![("if-none-match", "\"v2\""), ("if-modified-since", AFTER)],
                Precondition::Proceed,
            ),
            (
                "IMS ignored on PUT",
                &put,
                vec![("if-modified-since", AFTER)],
                Precondition::Proceed,
            ),
            // §13.1.1 If-Match: strong comparison; first in precedence.
            (
                "IM match",
                &get,
                vec![("if-match", "\"v1\"")],
                Precondition::Proceed,
            ),
            (
                "IM weak never matches",
                &get,
                vec![("if-match", "W/\"v1\"")],
                Precondition::Failed,
            ),
            (
                "IM no match",
                &put,
                vec![("if-match", "\"v2\"")],
                Precondition::Failed,
            ),
            (
                "IM star",
                &put,
                vec![("if-match", "*")],
                Precondition::Proceed,
            ),
            (
                "IM before INM",
                &get,
                vec![("if-match", "\"v2\""), ("if-none-match", "\"v1\"")],
                Precondition::Failed,
            ),
            // §13.1.4 If-Unmodified-Since only without If-Match.
            (
                "IUS modified since",
                &put,
                vec![("if-unmodified-since", BEFORE)],
                Precondition::Failed,
            ),
            (
                "IUS unmodified",
                &put,
                vec![("if-unmodified-since", AFTER)],
                Precondition::Proceed,
            ),
            // §5.6.7: the obsolete date forms, and names in any case, are read.
            (
                "IMS in RFC 850 form",
                &get,
                vec![("if-modified-since", "Tuesday, 24-Nov-26 10:00:00 GMT")],
                Precondition::NotModified,
            ),
            (
                "IMS in asctime form",
                &get,
                vec![("if-modified-since", "Tue Nov 24 10:00:00 2026")],
                Precondition::NotModified,
            ),
            (
                "IMS lower case, before",
                &get,
                vec![("if-modified-since", "mon, 23 nov 2026 10:00:00 gmt")],
                Precondition::Proceed,
            ),
            (
                "IMS garbage is ignored",
                &get,
                vec![("if-modified-since", "Tue, 24 Nov 2026 10:00:00 +0000")],
                Precondition::Proceed,
            ),
            (
                "IUS ignored with IM",
                &put,
                vec![("if-match", "\"v1\""), ("if-unmodified-since", BEFORE)],
                Precondition::Proceed,
            ),
        ];
        for (name, method, fields, expected) in cases {
            assert_eq!(
                evaluate(method, &headers(&fields), Some(&etag), modified, now()),
                expected,
                "{name}"
            );
        }
        assert_eq!(
            evaluate(&get, &headers(&[("if-none-match", "*")]), None, None, now()),
            Precondition::Proceed,
            "`*` needs a current representation"
        );
    }

    #[test]
    fn rfc9110_15_4_5_a_304_carries_only_the_listed_fields() {
        let full = Response::builder()
            .header("etag", "\"v1\"")
            .header("cache-control", "max-age=60")
            .header("vary", "accept-encoding")
            .header("content-type", "application/json")
            .header("content-length", "5")
            .header("content-encoding", "br")
            .header("last-modified", MODIFIED)
            .header("cf-cache-status", "HIT")
            .body(Body::from(b"hello".to_vec()))
            .unwrap();
        let response = not_modified(&full);
        assert_eq!(response.status(), StatusCode::NOT_MODIFIED);
        assert!(response.body().is_empty());
        let mut names: Vec<&str> = response.headers().keys().map(|n| n.as_str()).collect();
        names.sort_unstable();
        assert_eq!(names, ["cache-control", "cf-cache-status", "etag", "vary"]);
    }

    #[test]
    fn commas_inside_tags_do_not_split_them() {
        let list = TagList::from_headers(
            &headers(&[("if-none-match", "\"a,b\", W/\"c\"")]),
            &header::IF_NONE_MATCH,
        );
        assert_eq!(
            list,
            Some(TagList::Tags(vec![tag("\"a,b\""), tag("W/\"c\"")]))
        );
    }

    #[test]
    fn rfc9111_4_3_4_a_304_replaces_fields_it_carries_and_keeps_the_rest() {
        let t0 = SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(1_700_000_000);
        let full = Response::builder()
            .header("etag", "\"v1\"")
            .header("cache-control", "max-age=60")
            .header("content-type", "application/json")
            .header("content-length", "5")
            .header("age", "30")
            .header("x-multi", "a")
            .body(Body::from(b"hello".to_vec()))
            .unwrap();
        let stored = StoredResponse::capture(&HeaderMap::new(), &full, t0);
        let update = headers(&[
            ("cache-control", "max-age=120"),
            ("content-length", "0"),
            ("x-multi", "b"),
            ("x-multi", "c"),
            ("connection", "close"),
        ]);
        let later = t0 + std::time::Duration::from_secs(90);
        let merged = refreshed(stored, &update, later);
        assert_eq!(merged.headers["cache-control"], "max-age=120");
        assert_eq!(merged.headers["content-length"], "5");
        assert_eq!(merged.headers["content-type"], "application/json");
        assert_eq!(merged.headers["etag"], "\"v1\"");
        let multi: Vec<_> = merged.headers.get_all("x-multi").iter().collect();
        assert_eq!(multi, ["b", "c"]);
        assert!(
            !merged.headers.contains_key("age"),
            "the old Age no longer holds"
        );
        assert!(!merged.headers.contains_key("connection"), "never stored");
        assert_eq!(merged.response_time, later);
        assert_eq!(merged.body, b"hello");
    }
}
