//! Cache-Control directives (RFC 9111 §5.2) that `http-cache-semantics` does not expose:
//! the RFC 5861 stale windows and the directives that forbid serving stale.

use http::HeaderMap;

/// Directives beyond this many are ignored: the header is input we do not control.
pub const MAX_DIRECTIVES: usize = 64;

/// Parsed response or request Cache-Control, names lower-cased.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct CacheControl {
    directives: Vec<(String, Option<String>)>,
}

impl CacheControl {
    /// Parses every Cache-Control field line of `headers` (RFC 9111 §5.2: a list, possibly
    /// split over several lines). Malformed members are skipped, never an error.
    pub fn from_headers(headers: &HeaderMap) -> Self {
        let mut directives = Vec::new();
        for value in headers.get_all(http::header::CACHE_CONTROL) {
            let Ok(text) = value.to_str() else { continue };
            for member in split_list(text) {
                if directives.len() == MAX_DIRECTIVES {
                    return Self { directives };
                }
                let (name, arg) = match member.split_once('=') {
                    Some((n, v)) => (n.trim(), Some(v.trim().trim_matches('"').to_string())),
                    None => (member.trim(), None),
                };
                if !name.is_empty() {
                    directives.push((name.to_ascii_lowercase(), arg));
                }
            }
        }
        Self { directives }
    }

    pub fn has(&self, name: &str) -> bool {
        self.directives.iter().any(|(n, _)| n == name)
    }

    /// A delta-seconds argument (RFC 9111 §1.2.2). An invalid value reads as absent, and a
    /// value too large for u64 saturates, as §1.2.2 asks.
    pub fn seconds(&self, name: &str) -> Option<u64> {
        let (_, arg) = self.directives.iter().find(|(n, _)| n == name)?;
        let arg = arg.as_deref()?;
        if arg.is_empty() || !arg.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        Some(arg.parse().unwrap_or(u64::MAX))
    }

    /// `no-cache` without field names: the response must be validated before every reuse.
    pub fn is_no_cache(&self) -> bool {
        self.has("no-cache")
    }

    /// RFC 9111 §4.2.4: a shared cache must not serve this response stale.
    /// `s-maxage` implies `proxy-revalidate` (§5.2.2.10).
    pub fn forbids_stale(&self) -> bool {
        self.has("must-revalidate")
            || self.has("proxy-revalidate")
            || self.has("s-maxage")
            || self.has("no-cache")
    }
}

/// Splits a comma-separated list, keeping commas inside quoted strings.
fn split_list(text: &str) -> impl Iterator<Item = &str> {
    let mut start = 0;
    let mut in_quotes = false;
    let mut parts = Vec::new();
    for (i, b) in text.bytes().enumerate() {
        match b {
            b'"' => in_quotes = !in_quotes,
            b',' if !in_quotes => {
                parts.push(&text[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    parts.push(&text[start..]);
    parts.into_iter().map(str::trim).filter(|p| !p.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn cc(lines: &[&str]) -> CacheControl {
        let mut headers = HeaderMap::new();
        for line in lines {
            headers.append("cache-control", line.parse().unwrap());
        }
        CacheControl::from_headers(&headers)
    }

    #[test]
    fn rfc5861_windows_are_read() {
        let c = cc(&[
            "max-age=60, stale-while-revalidate=30",
            "stale-if-error=600",
        ]);
        assert_eq!(c.seconds("stale-while-revalidate"), Some(30));
        assert_eq!(c.seconds("stale-if-error"), Some(600));
        assert_eq!(c.seconds("max-age"), Some(60));
    }

    #[test]
    fn rfc9111_1_2_2_invalid_delta_seconds_is_absent_and_large_saturates() {
        assert_eq!(cc(&["max-age=-1"]).seconds("max-age"), None);
        assert_eq!(cc(&["max-age=abc"]).seconds("max-age"), None);
        assert_eq!(cc(&["max-age="]).seconds("max-age"), None);
        assert_eq!(
            cc(&["max-age=99999999999999999999999"]).seconds("max-age"),
            Some(u64::MAX)
        );
    }

    #[test]
    fn rfc9111_5_2_2_names_are_case_insensitive_and_quotes_are_kept_together() {
        let c = cc(&[r#"No-Cache="set-cookie, x", Max-Age=5"#]);
        assert!(c.is_no_cache());
        assert_eq!(c.seconds("max-age"), Some(5));
    }

    #[test]
    fn rfc9111_4_2_4_directives_that_forbid_stale() {
        for value in [
            "must-revalidate",
            "proxy-revalidate",
            "s-maxage=10",
            "no-cache",
        ] {
            assert!(cc(&[value]).forbids_stale(), "{value}");
        }
        assert!(!cc(&["max-age=10, stale-while-revalidate=5"]).forbids_stale());
    }

    #[test]
    fn directive_count_is_bounded() {
        let long = vec!["a"; 1000].join(",");
        assert_eq!(cc(&[&long]).directives.len(), MAX_DIRECTIVES);
    }

    proptest! {
        #[test]
        fn never_panics_on_any_visible_ascii(s in "[ -~]{0,200}") {
            if let Ok(v) = s.parse() {
                let mut headers = HeaderMap::new();
                headers.insert("cache-control", v);
                let c = CacheControl::from_headers(&headers);
                let _ = c.seconds("max-age");
                prop_assert!(c.directives.len() <= MAX_DIRECTIVES);
            }
        }
    }
}
