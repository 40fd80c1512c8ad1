//! The cache key: scheme, host, path and normalised query (RFC 9111 §2). The secondary key
//! that selects a Vary variant (RFC 9111 §4.1) is `vary::VaryRule::variant`.

use http::Uri;

use crate::WorkerError;

/// Longest URL we accept as a key; longer requests are refused (414-class input limit).
pub const MAX_URL_LEN: usize = 8 * 1024;
/// Most query parameters we sort; beyond this the request is refused as invalid.
pub const MAX_QUERY_PARAMS: usize = 256;

/// The primary cache key of a request, e.g. `https://shop.example/api/products/1?a=1&b=2`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct CacheKey(String);

impl CacheKey {
    /// Builds the key from an absolute request URI. The scheme and host are lower-cased, an
    /// empty path becomes `/`, and query parameters are sorted (stable, so repeated names keep
    /// their order) with empty members dropped: `?b=2&&a=1` and `?a=1&b=2` share a key.
    pub fn from_uri(uri: &Uri) -> Result<Self, WorkerError> {
        let text = uri.to_string();
        if text.len() > MAX_URL_LEN {
            return Err(WorkerError::InvalidUrl(format!(
                "longer than {MAX_URL_LEN} bytes"
            )));
        }
        let scheme = uri
            .scheme_str()
            .ok_or_else(|| WorkerError::InvalidUrl("not absolute (no scheme)".into()))?;
        let authority = uri
            .authority()
            .ok_or_else(|| WorkerError::InvalidUrl("no host".into()))?;
        let path = match uri.path() {
            "" => "/",
            p => p,
        };
        let mut key = format!(
            "{}://{}{}",
            scheme.to_ascii_lowercase(),
            authority.as_str().to_ascii_lowercase(),
            path
        );
        if let Some(query) = uri.query() {
            let mut params: Vec<&str> = query.split('&').filter(|p| !p.is_empty()).collect();
            if params.len() > MAX_QUERY_PARAMS {
                return Err(WorkerError::InvalidUrl(format!(
                    "more than {MAX_QUERY_PARAMS} query parameters"
                )));
            }
            params.sort_by_key(|p| p.split_once('=').map_or(*p, |(name, _)| name));
            if !params.is_empty() {
                key.push('?');
                key.push_str(&params.join("&"));
            }
        }
        Ok(Self(key))
    }

    /// [`Self::from_uri`] plus the request's experiment assignments
    /// ([`crate::experiments::REQUEST_HEADER`], written by the edge): each variant of a page
    /// has a slot of its own at every tier, as a custom cache key with a header would on
    /// Cloudflare. Purges by URL reach every variant (the mark follows a `\n`, as Vary's).
    pub fn for_request(uri: &Uri, headers: &http::HeaderMap) -> Result<Self, WorkerError> {
        let mut key = Self::from_uri(uri)?;
        if let Some(value) = headers.get(crate::experiments::REQUEST_HEADER) {
            if value.len() > crate::experiments::MAX_FIELD_LEN {
                return Err(WorkerError::InvalidUrl(format!(
                    "{} longer than {} bytes",
                    crate::experiments::REQUEST_HEADER,
                    crate::experiments::MAX_FIELD_LEN
                )));
            }
            key.0.push_str("\n#experiment=");
            key.0.push_str(&String::from_utf8_lossy(value.as_bytes()));
        }
        Ok(key)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for CacheKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn key(url: &str) -> String {
        CacheKey::from_uri(&url.parse().unwrap()).unwrap().0
    }

    #[test]
    fn query_order_and_empty_members_do_not_split_the_cache() {
        assert_eq!(
            key("https://a.example/p?b=2&&a=1"),
            key("https://a.example/p?a=1&b=2")
        );
        assert_eq!(key("https://A.Example/p?"), "https://a.example/p");
        assert_eq!(key("https://a.example"), "https://a.example/");
    }

    #[test]
    fn repeated_parameters_keep_their_order() {
        assert_eq!(
            key("https://a.example/?t=2&a=0&t=1"),
            "https://a.example/?a=0&t=2&t=1"
        );
    }

    #[test]
    fn path_case_and_scheme_matter() {
        assert_ne!(key("https://a.example/P"), key("https://a.example/p"));
        assert_ne!(key("http://a.example/p"), key("https://a.example/p"));
    }

    #[test]
    fn relative_uris_are_refused() {
        assert!(CacheKey::from_uri(&"/p".parse().unwrap()).is_err());
    }

    proptest! {
        #[test]
        fn normalisation_is_idempotent(q in "[a-c=&]{0,30}") {
            if let Ok(uri) = format!("https://a.example/x?{q}").parse::<Uri>() {
                let once = CacheKey::from_uri(&uri).unwrap();
                let twice = CacheKey::from_uri(&once.0.parse().unwrap()).unwrap();
                prop_assert_eq!(once, twice);
            }
        }
    }
}
