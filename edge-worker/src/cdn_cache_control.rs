//! Targeted cache control (RFC 9213): `CDN-Cache-Control` speaks to CDN caches only, and when
//! it is present and valid, a CDN ignores `Cache-Control` and `Expires` for its own storage and
//! freshness. Browsers still see the origin's `Cache-Control`, which is why the field travels
//! on untouched and only the cache's *view* of the headers changes.
//!
//! The field is a Structured Fields dictionary (RFC 8941), parsed with `sfv`; a field that does
//! not parse is ignored as a whole (RFC 9213 §2.1), as if it were absent.

use std::borrow::Cow;

use http::header::{self, HeaderMap, HeaderValue};
use sfv::{BareItem, Dictionary, ListEntry, Parser};

pub const CDN_CACHE_CONTROL: &str = "cdn-cache-control";

/// Longest field (all lines joined) we parse; longer ones are ignored, as invalid ones are.
pub const MAX_FIELD_LEN: usize = 4096;

/// Directives whose value is delta-seconds: an RFC 8941 Integer and nothing else.
const DELTA_SECONDS: [&str; 4] = [
    "max-age",
    "s-maxage",
    "stale-while-revalidate",
    "stale-if-error",
];

/// The directives of a valid `CDN-Cache-Control`, rewritten as `Cache-Control` text so the
/// rest of the cache (and `http-cache-semantics`) reads them unchanged. `None` when the field
/// is absent or invalid.
pub fn as_cache_control(headers: &HeaderMap) -> Option<String> {
    let mut lines = headers.get_all(CDN_CACHE_CONTROL).iter().peekable();
    lines.peek()?;
    // RFC 8941 §4.2: a field split over several lines is parsed as their comma-joined value.
    let mut joined = Vec::new();
    for (i, line) in lines.enumerate() {
        if i > 0 {
            joined.extend_from_slice(b", ");
        }
        joined.extend_from_slice(line.as_bytes());
        if joined.len() > MAX_FIELD_LEN {
            return None;
        }
    }
    let dictionary: Dictionary = Parser::new(&joined).parse().ok()?;
    let mut directives = Vec::with_capacity(dictionary.len());
    for (key, entry) in &dictionary {
        // Directives with parameters or list values have no meaning in Cache-Control terms;
        // parameters are ignored (RFC 9213 §2.1 leaves them to extensions).
        let ListEntry::Item(item) = entry else {
            continue;
        };
        let name = key.as_str();
        // RFC 9213 §2.1 with RFC 8941: a member whose value is not of its directive's type is
        // invalid and ignored (`max-age="10000"` is a string where an integer is required).
        if DELTA_SECONDS.contains(&name) && !matches!(item.bare_item, BareItem::Integer(_)) {
            continue;
        }
        match &item.bare_item {
            BareItem::Boolean(true) => directives.push(name.to_string()),
            BareItem::Boolean(false) => {}
            BareItem::Integer(n) => {
                let n = i64::from(*n);
                // Delta-seconds are non-negative (RFC 9111 §1.2.2); a negative one is dropped.
                if n >= 0 {
                    directives.push(format!("{name}={n}"));
                }
            }
            // Re-quoted with `\` and `"` escaped (RFC 9110 §5.6.4 quoted-pair, as RFC 8941
            // strings): unescaped, a value could close the quotes and read as directives.
            BareItem::String(s) => directives.push(format!(
                "{name}=\"{}\"",
                s.as_str().replace('\\', "\\\\").replace('"', "\\\"")
            )),
            BareItem::Token(t) => directives.push(format!("{name}={}", t.as_str())),
            _ => {}
        }
    }
    Some(directives.join(", "))
}

/// The headers a CDN cache judges storage and freshness by: with a valid `CDN-Cache-Control`,
/// its directives replace `Cache-Control`, and `Expires` and `Pragma` are dropped; otherwise
/// the headers as they are (borrowed: the common case copies nothing).
pub fn effective(headers: &HeaderMap) -> Cow<'_, HeaderMap> {
    // A field left with no valid directive says nothing: Cache-Control decides.
    let Some(directives) = as_cache_control(headers).filter(|d| !d.is_empty()) else {
        return Cow::Borrowed(headers);
    };
    let mut view = headers.clone();
    view.remove(header::EXPIRES);
    view.remove(header::PRAGMA);
    if let Ok(value) = HeaderValue::from_str(&directives) {
        view.insert(header::CACHE_CONTROL, value);
    } else {
        view.remove(header::CACHE_CONTROL);
    }
    Cow::Owned(view)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    use crate::testing::header_map as headers;

    #[test]
    fn rfc9213_valid_field_replaces_cache_control_and_expires() {
        let h = headers(&[
            ("cache-control", "private, max-age=0"),
            ("expires", "Thu, 01 Jan 1970 00:00:00 GMT"),
            (
                "cdn-cache-control",
                "max-age=600, stale-while-revalidate=30",
            ),
        ]);
        let view = effective(&h);
        assert_eq!(
            view.get_all("cache-control").iter().collect::<Vec<_>>(),
            ["max-age=600, stale-while-revalidate=30"]
        );
        assert!(view.get("expires").is_none());
        // The origin's own field is untouched for browsers downstream.
        assert_eq!(h["cache-control"], "private, max-age=0");
    }

    #[test]
    fn rfc9213_2_1_invalid_field_is_ignored() {
        for invalid in [
            "max-age=\"unterminated",
            "MAX-AGE=5",
            "max-age=1.5.3",
            "=5",
            "a=?x",
        ] {
            let h = headers(&[
                ("cache-control", "max-age=10"),
                ("cdn-cache-control", invalid),
            ]);
            assert!(as_cache_control(&h).is_none(), "{invalid}");
            assert!(matches!(effective(&h), Cow::Borrowed(_)), "{invalid}");
        }
    }

    #[test]
    fn rfc9213_2_1_a_member_of_the_wrong_type_is_ignored() {
        let h = headers(&[
            ("cache-control", "no-store"),
            ("cdn-cache-control", "max-age=\"10000\""),
        ]);
        assert_eq!(as_cache_control(&h).unwrap(), "");
        assert!(matches!(effective(&h), Cow::Borrowed(_)));
        let h = headers(&[(
            "cdn-cache-control",
            "max-age=?1, s-maxage=60, stale-if-error=1.5",
        )]);
        assert_eq!(as_cache_control(&h).unwrap(), "s-maxage=60");
    }

    #[test]
    fn booleans_strings_tokens_and_negative_ages() {
        let h = headers(&[(
            "cdn-cache-control",
            "no-store, private=?0, no-cache=\"set-cookie\", s-maxage=-5, max-age=5;x=1",
        )]);
        assert_eq!(
            as_cache_control(&h).unwrap(),
            "no-store, no-cache=\"set-cookie\", max-age=5"
        );
    }

    /// Regression (fuzz target `cdn_cache_control`): `rrd="\\\\"` (a string of two
    /// backslashes) came out as `rrd="\\"`, which reads back as one; a quote in a string
    /// closed the quoted-string early, so its tail read as further directives.
    #[test]
    fn strings_are_requoted_with_escapes() {
        let h = headers(&[("cdn-cache-control", r#"rrd="\\\\""#)]);
        assert_eq!(as_cache_control(&h).unwrap(), r#"rrd="\\\\""#);
        let h = headers(&[(
            "cdn-cache-control",
            r#"no-cache="a\", max-age=9999", max-age=5"#,
        )]);
        let text = as_cache_control(&h).unwrap();
        assert_eq!(text, r#"no-cache="a\", max-age=9999", max-age=5"#);
        let mut again = HeaderMap::new();
        again.insert(CDN_CACHE_CONTROL, text.parse().unwrap());
        assert_eq!(as_cache_control(&again).unwrap(), text);
    }

    #[test]
    fn several_lines_are_one_dictionary() {
        let h = headers(&[
            ("cdn-cache-control", "max-age=60"),
            ("cdn-cache-control", "stale-if-error=300"),
        ]);
        assert_eq!(
            as_cache_control(&h).unwrap(),
            "max-age=60, stale-if-error=300"
        );
    }

    #[test]
    fn overlong_field_is_ignored() {
        let long = vec!["a"; MAX_FIELD_LEN].join(", ");
        let h = headers(&[("cdn-cache-control", &long)]);
        assert!(as_cache_control(&h).is_none());
    }

    proptest! {
        #[test]
        fn any_visible_ascii_is_parsed_or_ignored_never_a_panic(s in "[ -~]{0,300}") {
            if let Ok(value) = s.parse::<HeaderValue>() {
                let mut h = HeaderMap::new();
                h.insert(CDN_CACHE_CONTROL, value);
                if let Some(text) = as_cache_control(&h) {
                    // What we hand on is itself a valid Cache-Control value.
                    prop_assert!(HeaderValue::from_str(&text).is_ok());
                }
                let _ = effective(&h);
            }
        }
    }
}
