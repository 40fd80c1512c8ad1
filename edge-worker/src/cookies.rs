//! The `Cookie` request field read as name–value pairs (RFC 6265 §4.2.1, §5.4), for the
//! experiments' visitor id and ESI's `$(HTTP_COOKIE{name})`.
//!
//! Why not the `cookie` crate: it parses every pair as a whole `Set-Cookie` (attributes,
//! `Expires` dates through `time`'s format parsers), which cost ~20 KiB of the gzipped
//! Cloudflare bundle whose limit is 1 MiB. A request's `Cookie` field has no attributes: its
//! grammar is `name=value` pairs separated by `; `, which is all this reads.

use http::header::{self, HeaderMap};

/// Most pairs read from one request; a client controls the count.
pub const MAX_PAIRS: usize = 128;

/// The request's cookies in order, as sent: names and values trimmed of surrounding
/// whitespace, a value's double quotes kept (RFC 6265 allows them as part of the value).
/// Pairs without `=` or with an empty name are skipped, as browsers do.
pub fn pairs(headers: &HeaderMap) -> impl Iterator<Item = (&str, &str)> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|line| line.split(';'))
        .filter_map(|pair| {
            let (name, value) = pair.split_once('=')?;
            let name = name.trim();
            (!name.is_empty()).then(|| (name, value.trim()))
        })
        .take(MAX_PAIRS)
}

/// The first value of cookie `name`.
pub fn get<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    pairs(headers).find(|(n, _)| *n == name).map(|(_, v)| v)
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;
    use proptest::prelude::*;

    fn with(lines: &[&str]) -> HeaderMap {
        let mut headers = HeaderMap::new();
        for line in lines {
            headers.append(header::COOKIE, HeaderValue::from_str(line).unwrap());
        }
        headers
    }

    #[test]
    fn pairs_across_lines_in_order_with_whitespace_trimmed() {
        let headers = with(&["a=1;b = 2 ;  edge_uid=ff", "c=\"q\"; junk; =x; d="]);
        let got: Vec<_> = pairs(&headers).collect();
        assert_eq!(
            got,
            [
                ("a", "1"),
                ("b", "2"),
                ("edge_uid", "ff"),
                ("c", "\"q\""),
                ("d", "")
            ]
        );
        assert_eq!(get(&headers, "edge_uid"), Some("ff"));
        assert_eq!(get(&headers, "zz"), None);
    }

    #[test]
    fn the_count_is_bounded() {
        let line: Vec<String> = (0..1000).map(|i| format!("k{i}=v")).collect();
        let headers = with(&[&line.join("; ")]);
        assert_eq!(pairs(&headers).count(), MAX_PAIRS);
    }

    proptest! {
        /// Any field is read without panic into pairs whose names are non-empty and free of
        /// the separators; pairs written as a browser writes them read back the same.
        #[test]
        fn any_field_reads_and_written_pairs_round_trip(
            raw in "[ -~]{0,200}",
            written in proptest::collection::vec(("[A-Za-z0-9_-]{1,8}", "[A-Za-z0-9]{0,8}"), 0..10),
        ) {
            let headers = with(&[&raw]);
            for (name, value) in pairs(&headers) {
                prop_assert!(!name.is_empty() && !name.contains(';') && !name.contains('='));
                prop_assert!(!value.contains(';'));
            }
            let line: Vec<String> = written.iter().map(|(n, v)| format!("{n}={v}")).collect();
            let headers = with(&[&line.join("; ")]);
            let back: Vec<(String, String)> =
                pairs(&headers).map(|(n, v)| (n.to_string(), v.to_string())).collect();
            prop_assert_eq!(back, written);
        }
    }
}
