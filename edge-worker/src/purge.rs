//! Purge requests in Cloudflare's body shapes (`files`, `prefixes`, `tags`,
//! `purge_everything`) plus Fastly's soft purge, and which cache slots they reach.
//!
//! Hosts own their stores, so the core only decides: [`Purge::parse`] checks a request body,
//! [`Purge::reaches`] says whether one slot (any tier, any variant, any coding) is covered.
//! A slot's key names its primary cache key first (`CacheKey`), then the variant it holds
//! (`\n#vary…` for Vary variants, `\u{1}etag=…;coding=…` for coded variants), or is the
//! per-subject `private:<hash>:<key>`; all of them are matched by that primary key.

use http::Uri;
use serde::Deserialize;

/// Most URLs, prefixes or tags one purge may name (Cloudflare allows 30–500 per call by plan).
pub const MAX_PURGE_ITEMS: usize = 500;
/// Longest URL or prefix, bytes (the cache key's own limit).
pub const MAX_PURGE_URL: usize = crate::cache_key::MAX_URL_LEN;
/// Longest tag, bytes (Cloudflare: 1,024).
pub const MAX_TAG_LEN: usize = 1024;
/// The response field carrying an object's tags, comma-separated (Cloudflare, Akamai).
pub const CACHE_TAG: &str = "cache-tag";

/// Why a purge body was refused; the message tells the caller what to send instead.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PurgeError {
    #[error("purge body is not valid JSON of the expected shape: {0}")]
    Json(String),
    #[error(
        "name exactly one of files, prefixes, tags or purge_everything (Cloudflare's shapes), \
         e.g. {{\"files\": [\"/api/products/1\"]}}"
    )]
    Selector,
    #[error("at most {MAX_PURGE_ITEMS} items per purge; split the list")]
    TooMany,
    #[error("{what} {item:?} is empty or longer than {limit} bytes")]
    BadItem {
        what: &'static str,
        item: String,
        limit: usize,
    },
    #[error("{0:?} is not a URL or a path starting with '/'")]
    BadUrl(String),
    #[error(
        "{0:?} is not a prefix: send host/path (Cloudflare's form, e.g. \"shop.example/api/products\"), \
         a URL (\"https://shop.example/api/products\") or a path (\"/api/products\"), without a query; \
         {{\"purge_everything\": true}} purges everything"
    )]
    BadPrefix(String),
}

/// One `files` member: a URL, or Cloudflare's `{"url": …, "headers": {…}}` (the headers name
/// a custom cache key; our keys have no such parts, so every variant is purged anyway).
#[derive(Deserialize)]
#[serde(untagged)]
enum FileRef {
    Url(String),
    WithHeaders {
        url: String,
        #[allow(dead_code)] // why: accepted for Cloudflare compatibility, not needed to match
        #[serde(default)]
        headers: serde_json::Map<String, serde_json::Value>,
    },
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PurgeBody {
    files: Option<Vec<FileRef>>,
    prefixes: Option<Vec<String>>,
    tags: Option<Vec<String>>,
    purge_everything: Option<bool>,
    /// Fastly's soft purge: mark stale instead of removing.
    #[serde(default)]
    soft: bool,
}

/// What a purge reaches.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Selector {
    /// Paths with their queries, normalised as cache keys are (`/p?a=1&b=2`).
    Files(Vec<String>),
    /// Path prefixes; a prefix reaches the path itself and everything below it.
    Prefixes(Vec<String>),
    /// Lower-cased tags (Cloudflare compares tags case-insensitively).
    Tags(Vec<String>),
    Everything,
}

/// A checked purge.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Purge {
    pub selector: Selector,
    /// Mark stale (still served within stale-while-revalidate / stale-if-error while one
    /// request refreshes) rather than remove.
    pub soft: bool,
}

impl Purge {
    /// Parses and checks a purge body (JSON).
    pub fn parse(body: &[u8]) -> Result<Self, PurgeError> {
        let body: PurgeBody =
            serde_json::from_slice(body).map_err(|e| PurgeError::Json(e.to_string()))?;
        let everything = body.purge_everything == Some(true);
        let named = [
            body.files.is_some(),
            body.prefixes.is_some(),
            body.tags.is_some(),
            everything,
        ];
        if named.iter().filter(|n| **n).count() != 1 || body.purge_everything == Some(false) {
            return Err(PurgeError::Selector);
        }
        let selector = if let Some(files) = body.files {
            let urls = files.into_iter().map(|f| match f {
                FileRef::Url(url) | FileRef::WithHeaders { url, .. } => url,
            });
            Selector::Files(checked(urls, "url", MAX_PURGE_URL, file_path)?)
        } else if let Some(prefixes) = body.prefixes {
            Selector::Prefixes(checked(
                prefixes.into_iter(),
                "prefix",
                MAX_PURGE_URL,
                prefix_path,
            )?)
        } else if let Some(tags) = body.tags {
            Selector::Tags(checked(tags.into_iter(), "tag", MAX_TAG_LEN, |t| {
                Ok(t.trim().to_ascii_lowercase())
            })?)
        } else {
            Selector::Everything
        };
        Ok(Self {
            selector,
            soft: body.soft,
        })
    }

    /// A purge of one path (with its query), as a trace or a workload names it.
    pub fn path(path: &str, soft: bool) -> Result<Self, PurgeError> {
        Ok(Self {
            selector: Selector::Files(vec![file_path(path.to_string())?]),
            soft,
        })
    }

    /// A purge of everything under one path prefix (Cloudflare's prefix rule).
    pub fn prefix(prefix: &str, soft: bool) -> Result<Self, PurgeError> {
        Ok(Self {
            selector: Selector::Prefixes(vec![prefix_path(prefix.to_string())?]),
            soft,
        })
    }

    /// Whether the slot `slot_key` is covered. `tags` gives the stored response's
    /// `Cache-Tag` field values, asked only for a tag purge.
    ///
    /// Matching is by path and query: the emulator is one zone, and its tiers key the same
    /// object under different hosts (the client's at the edge, the routed origin's above), so a
    /// purge of `https://shop.example/p` must reach the regional tier's `https://eu.origin/p`.
    /// Slots that are not HTTP responses (the verified-token cache, `jwt:…`) are never reached.
    pub fn reaches<'a, T>(&self, slot_key: &str, tags: impl FnOnce() -> T) -> bool
    where
        T: IntoIterator<Item = &'a [u8]>,
    {
        let Some(target) = slot_path(slot_key) else {
            return false;
        };
        match &self.selector {
            Selector::Everything => true,
            Selector::Files(paths) => paths.iter().any(|p| p == target),
            Selector::Prefixes(prefixes) => prefixes.iter().any(|p| under_prefix(target, p)),
            Selector::Tags(wanted) => tags().into_iter().any(|value| {
                String::from_utf8_lossy(value)
                    .split(',')
                    .map(str::trim)
                    .any(|tag| wanted.iter().any(|w| w.eq_ignore_ascii_case(tag)))
            }),
        }
    }
}

fn checked(
    items: impl Iterator<Item = String>,
    what: &'static str,
    limit: usize,
    normalise: impl Fn(String) -> Result<String, PurgeError>,
) -> Result<Vec<String>, PurgeError> {
    let mut out = Vec::new();
    for item in items {
        if out.len() == MAX_PURGE_ITEMS {
            return Err(PurgeError::TooMany);
        }
        if item.trim().is_empty() || item.len() > limit {
            let shown: String = item.chars().take(64).collect();
            return Err(PurgeError::BadItem {
                what,
                item: shown,
                limit,
            });
        }
        out.push(normalise(item)?);
    }
    Ok(out)
}

/// The path and query of a slot's primary key, or `None` for slots that hold no response.
pub fn slot_path(slot_key: &str) -> Option<&str> {
    let key = match slot_key.strip_prefix("private:") {
        // `private:<hex subject hash>:<key>`
        Some(rest) => rest.split_once(':')?.1,
        None => slot_key,
    };
    let primary = key.split(['\n', '\u{1}']).next()?;
    let after_scheme = primary.split_once("://")?.1;
    let path = &after_scheme[after_scheme.find('/')?..];
    Some(path)
}

/// A `files` member as the path and query its cache key holds: an absolute URL or a path
/// (the emulator's zone is implied), its query normalised as cache keys are.
fn file_path(url: String) -> Result<String, PurgeError> {
    let absolute = if url.starts_with('/') {
        format!("http://zone.invalid{url}")
    } else if url.contains("://") {
        url.clone()
    } else {
        // Cloudflare's `files` also accept `host/path` without a scheme.
        format!("http://{url}")
    };
    let uri: Uri = absolute
        .parse()
        .map_err(|_| PurgeError::BadUrl(url.clone()))?;
    let key = crate::CacheKey::from_uri(&uri).map_err(|_| PurgeError::BadUrl(url.clone()))?;
    slot_path(key.as_str())
        .map(str::to_string)
        .ok_or(PurgeError::BadUrl(url))
}

/// A prefix as a path: Cloudflare's `host/path` form, a URL, or a path. A word with no `/`
/// (a typo, a bare host) is refused rather than read as the host's root, which would purge
/// everything.
fn prefix_path(prefix: String) -> Result<String, PurgeError> {
    let path = if prefix.starts_with('/') {
        Some(prefix.as_str())
    } else {
        let (scheme, rest) = match prefix.split_once("://") {
            Some((_, rest)) => (true, rest),
            None => (false, prefix.as_str()),
        };
        match rest.find('/') {
            Some(i) if i > 0 => Some(&rest[i..]),
            // `https://shop.example` names the host's root, as a URL does.
            None if scheme && !rest.is_empty() => Some("/"),
            _ => None,
        }
    };
    match path {
        Some(path) if !path.contains(['?', '#']) => Ok(path.to_string()),
        _ => Err(PurgeError::BadPrefix(prefix)),
    }
}

/// Cloudflare's prefix rule: a prefix covers its own path and those below it on a `/`
/// boundary (`/api/products` covers `/api/products/1` and `/api/products?x`, not
/// `/api/productsx`).
fn under_prefix(target: &str, prefix: &str) -> bool {
    match target.strip_prefix(prefix) {
        Some(rest) => prefix.ends_with('/') || rest.is_empty() || rest.starts_with(['/', '?']),
        None => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn purge(body: &str) -> Purge {
        Purge::parse(body.as_bytes()).unwrap()
    }

    const NO_TAGS: fn() -> Vec<&'static [u8]> = Vec::new;

    #[test]
    fn cloudflare_shapes_parse() {
        assert_eq!(
            purge(r#"{"files": ["https://shop.example/api/products/1?b=2&a=1"]}"#).selector,
            Selector::Files(vec!["/api/products/1?a=1&b=2".into()])
        );
        assert_eq!(
            purge(r#"{"files": [{"url": "/p", "headers": {"CF-IPCountry": "US"}}]}"#).selector,
            Selector::Files(vec!["/p".into()])
        );
        assert_eq!(
            purge(r#"{"prefixes": ["shop.example/api/users"]}"#).selector,
            Selector::Prefixes(vec!["/api/users".into()])
        );
        assert_eq!(
            purge(r#"{"tags": ["Product-1"]}"#).selector,
            Selector::Tags(vec!["product-1".into()])
        );
        let all = purge(r#"{"purge_everything": true, "soft": true}"#);
        assert_eq!(all.selector, Selector::Everything);
        assert!(all.soft);
    }

    #[test]
    fn bodies_that_name_nothing_or_too_much_are_refused() {
        for body in [
            "{}",
            r#"{"purge_everything": false}"#,
            r#"{"files": ["/a"], "tags": ["t"]}"#,
            r#"{"hosts": ["a.example"]}"#,
            r#"{"files": [""]}"#,
            r#"{"files": ["/a b"]}"#,
            r#"{"prefixes": ["/a?b"]}"#,
            r#"{"prefixes": ["definitely-a-typo"]}"#,
            r#"{"prefixes": ["shop.example"]}"#,
            r#"{"prefixes": ["/api/products", "typo"]}"#,
            "not json",
        ] {
            assert!(Purge::parse(body.as_bytes()).is_err(), "{body}");
        }
        let many: Vec<String> = (0..=MAX_PURGE_ITEMS).map(|i| format!("\"t{i}\"")).collect();
        let body = format!(r#"{{"tags": [{}]}}"#, many.join(","));
        assert_eq!(Purge::parse(body.as_bytes()), Err(PurgeError::TooMany));
    }

    #[test]
    fn a_url_purge_reaches_every_variant_coding_and_tier_of_its_object() {
        let p = purge(r#"{"files": ["http://localhost:8787/api/products/1"]}"#);
        for slot in [
            "http://localhost:8787/api/products/1",
            "https://eu-west.api.example.com/api/products/1",
            "http://localhost:8787/api/products/1\n#vary\naccept-language=de",
            "http://localhost:8787/api/products/1\u{1}etag=\"a\";fields=;coding=br",
            "private:ab12:http://localhost:8787/api/products/1",
        ] {
            assert!(p.reaches(slot, NO_TAGS), "{slot:?}");
        }
        for slot in [
            "http://localhost:8787/api/products/10",
            "http://localhost:8787/api/products/1?x=1",
            "jwt:abcdef",
        ] {
            assert!(!p.reaches(slot, NO_TAGS), "{slot:?}");
        }
    }

    #[test]
    fn a_prefix_without_a_path_is_refused_and_says_the_form() {
        let error = Purge::parse(br#"{"prefixes": ["definitely-a-typo"]}"#).unwrap_err();
        assert_eq!(error, PurgeError::BadPrefix("definitely-a-typo".into()));
        let message = error.to_string();
        assert!(message.contains("host/path"), "{message}");
        assert!(message.contains("purge_everything"), "{message}");
        for (prefix, path) in [
            ("shop.example/", "/"),
            ("https://shop.example", "/"),
            ("https://shop.example/api", "/api"),
            ("/", "/"),
        ] {
            let body = format!(r#"{{"prefixes": ["{prefix}"]}}"#);
            assert_eq!(
                purge(&body).selector,
                Selector::Prefixes(vec![path.into()]),
                "{prefix}"
            );
        }
    }

    #[test]
    fn prefixes_stop_at_a_segment_boundary() {
        let p = purge(r#"{"prefixes": ["/api/products"]}"#);
        assert!(p.reaches("http://h/api/products", NO_TAGS));
        assert!(p.reaches("http://h/api/products/7?fields=id", NO_TAGS));
        assert!(p.reaches("http://h/api/products?page=2", NO_TAGS));
        assert!(!p.reaches("http://h/api/productsx", NO_TAGS));
        assert!(!p.reaches("http://h/api/users/1", NO_TAGS));
    }

    #[test]
    fn tags_match_any_member_case_insensitively() {
        let p = purge(r#"{"tags": ["catalogue"]}"#);
        let header: &[u8] = b"product-1, Catalogue";
        assert!(p.reaches("http://h/p", || [header]));
        let other: &[u8] = b"product-2";
        assert!(!p.reaches("http://h/p", || [other]));
        assert!(!p.reaches("http://h/p", NO_TAGS));
    }

    proptest! {
        #[test]
        fn parsing_never_panics(body in ".{0,200}") {
            let _ = Purge::parse(body.as_bytes());
        }

        #[test]
        fn a_file_purge_reaches_its_own_key(path in "/[a-z0-9/]{0,20}", query in "[a-z0-9=&]{0,20}") {
            let url = if query.is_empty() { path.clone() } else { format!("{path}?{query}") };
            let p = Purge::path(&url, false).unwrap();
            let key = crate::CacheKey::from_uri(&format!("https://h.example{url}").parse().unwrap()).unwrap();
            prop_assert!(p.reaches(key.as_str(), NO_TAGS));
        }
    }
}
