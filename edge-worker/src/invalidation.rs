//! Invalidation after unsafe requests (RFC 9111 §4.4): which stored responses a successful
//! unsafe request makes obsolete, and deleting them.

use http::header;
use http::{HeaderMap, Method, Response, Uri};

use crate::{Body, CacheKey, Platform};

/// Whether a `method` request answered with `response` invalidates anything (RFC 9111 §4.4:
/// an unsafe method whose response is not an error).
pub fn invalidates(method: &Method, response: &Response<Body>) -> bool {
    !method.is_safe()
        && !response.status().is_server_error()
        && !response.status().is_client_error()
}

/// What a successful unsafe request invalidates (RFC 9111 §4.4): its target URI, and the
/// `Location` and `Content-Location` of the response when they name the same origin (a
/// different host must not be able to purge another's entries).
pub fn invalidated(target: &Uri, response: &HeaderMap) -> Vec<Uri> {
    let mut uris = vec![target.clone()];
    for name in [header::LOCATION, header::CONTENT_LOCATION] {
        let Some(value) = response.get(&name).and_then(|v| v.to_str().ok()) else {
            continue;
        };
        if let Some(uri) = same_origin(target, value) {
            uris.push(uri);
        }
    }
    uris
}

/// Deletes what a `method` request to `target` answered by `response` invalidates, when it
/// [`invalidates`] anything. Deleting a slot that holds a Vary rule makes all its variants
/// unreachable (see [`crate::vary::VaryRule`]).
pub(crate) async fn invalidate<P: Platform>(
    p: &P,
    method: &Method,
    target: &Uri,
    response: &Response<Body>,
) {
    if !invalidates(method, response) {
        return;
    }
    for uri in invalidated(target, response.headers()) {
        if let Ok(key) = CacheKey::from_uri(&uri) {
            p.cache_delete(key.as_str()).await;
        }
    }
}

/// `reference` resolved against `base` when it is an absolute URI of the same scheme and
/// authority, or an absolute path. Relative-path references (`../x`) are not resolved: they
/// are rare in these fields and RFC 3986 resolution is not worth a URL crate in the guest.
fn same_origin(base: &Uri, reference: &str) -> Option<Uri> {
    if reference.starts_with('/') && !reference.starts_with("//") {
        let mut parts = base.clone().into_parts();
        parts.path_and_query = Some(reference.parse().ok()?);
        return Uri::from_parts(parts).ok();
    }
    let uri: Uri = reference.parse().ok()?;
    let same = uri
        .scheme_str()
        .zip(base.scheme_str())
        .is_some_and(|(a, b)| a.eq_ignore_ascii_case(b))
        && uri
            .authority()
            .zip(base.authority())
            .is_some_and(|(a, b)| a.as_str().eq_ignore_ascii_case(b.as_str()));
    same.then_some(uri)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc9111_4_4_same_origin_references_only() {
        let base: Uri = "https://shop.example/items/1?a=1".parse().unwrap();
        let cases = [
            ("/items/2", Some("https://shop.example/items/2")),
            ("/items/3?x=1", Some("https://shop.example/items/3?x=1")),
            ("HTTPS://Shop.Example/a", Some("https://Shop.Example/a")),
            ("https://other.example/b", None),
            ("http://shop.example/b", None),
            ("//shop.example/b", None),
            ("../b", None),
        ];
        for (reference, expected) in cases {
            assert_eq!(
                same_origin(&base, reference).map(|u| u.to_string()),
                expected.map(str::to_string),
                "{reference}"
            );
        }
    }

    #[test]
    fn rfc9111_4_4_only_successful_unsafe_requests_invalidate() {
        let response = |status: u16| {
            Response::builder()
                .status(status)
                .body(Body::new())
                .unwrap()
        };
        assert!(invalidates(&Method::POST, &response(201)));
        assert!(invalidates(&Method::DELETE, &response(303)));
        assert!(!invalidates(&Method::PUT, &response(404)));
        assert!(!invalidates(&Method::POST, &response(503)));
        assert!(!invalidates(&Method::GET, &response(200)));
        let mut fields = HeaderMap::new();
        fields.insert(header::LOCATION, "/b".parse().unwrap());
        fields.insert(
            header::CONTENT_LOCATION,
            "https://evil.example/a".parse().unwrap(),
        );
        let target: Uri = "https://shop.example/a".parse().unwrap();
        let uris: Vec<String> = invalidated(&target, &fields)
            .iter()
            .map(Uri::to_string)
            .collect();
        assert_eq!(uris, ["https://shop.example/a", "https://shop.example/b"]);
    }
}
