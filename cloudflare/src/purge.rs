//! `POST /__edge/purge` on Cloudflare: who may call it and which cache slots it deletes.
//!
//! The Cache API can delete a slot by its key but cannot list slots, and it is local to the
//! data centre that runs the worker. So this route purges by URL only, in this data centre:
//! it deletes the URL's primary slot, which holds the response or its Vary rule. Coded variants
//! are keyed by the base response's entity tag and Vary variants by the rule's generation, so
//! once the primary slot is gone they are never read again. Tags and prefixes go through
//! Cloudflare's own zone purge API, which reaches every data centre: our slots carry the
//! origin's `Cache-Tag` (`convert::cache_slot_response`) for that.

use edge_worker::purge::{Purge, PurgeError, Selector};
use http::StatusCode;

/// The route's path; only answered when the `PURGE_TOKEN` secret is bound.
pub const PURGE_PATH: &str = "/__edge/purge";

/// Why a purge request was refused, with the status to answer.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum PurgeRefusal {
    #[error("purging needs Authorization: Bearer <the PURGE_TOKEN secret>")]
    Forbidden,
    #[error(transparent)]
    Invalid(#[from] PurgeError),
    #[error(
        "the Cache API can delete a URL's slots but not find slots by tag or prefix, nor mark \
         them stale; purge tags, prefixes or everything with Cloudflare's zone API (POST \
         /zones/ZONE_ID/purge_cache), which reaches our slots through their Cache-Tag"
    )]
    Unsupported,
}

impl PurgeRefusal {
    pub fn status(&self) -> StatusCode {
        match self {
            Self::Forbidden => StatusCode::FORBIDDEN,
            Self::Invalid(_) => StatusCode::BAD_REQUEST,
            Self::Unsupported => StatusCode::NOT_IMPLEMENTED,
        }
    }

    pub fn code(&self) -> &'static str {
        match self {
            Self::Forbidden => "purge_forbidden",
            Self::Invalid(_) => "invalid_purge",
            Self::Unsupported => "purge_unsupported",
        }
    }
}

/// Checks the caller's token (constant-time) and the body, and returns the primary cache
/// keys to delete under `zone`, the request's authority (both schemes: the key keeps the one
/// the client used).
pub fn plan(
    token: &str,
    authorization: Option<&str>,
    body: &[u8],
    zone: &str,
) -> Result<Vec<String>, PurgeRefusal> {
    use subtle::ConstantTimeEq;
    let presented = authorization
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or_default();
    let authorised: bool = presented.as_bytes().ct_eq(token.as_bytes()).into();
    if token.is_empty() || !authorised {
        return Err(PurgeRefusal::Forbidden);
    }
    let purge = Purge::parse(body)?;
    let Selector::Files(paths) = purge.selector else {
        return Err(PurgeRefusal::Unsupported);
    };
    if purge.soft {
        return Err(PurgeRefusal::Unsupported);
    }
    let zone = zone.to_ascii_lowercase();
    Ok(paths
        .iter()
        .flat_map(|path| ["https", "http"].map(|scheme| format!("{scheme}://{zone}{path}")))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    const TOKEN: &str = "a-purge-token-for-tests";
    const BEARER: Option<&str> = Some("Bearer a-purge-token-for-tests");

    #[test]
    fn a_url_purge_names_the_primary_keys_under_the_zone() {
        let keys = plan(
            TOKEN,
            BEARER,
            br#"{"files": ["https://Shop.example/api/p?b=2&a=1", "/api/q"]}"#,
            "Shop.example",
        )
        .unwrap();
        assert_eq!(
            keys,
            [
                "https://shop.example/api/p?a=1&b=2",
                "http://shop.example/api/p?a=1&b=2",
                "https://shop.example/api/q",
                "http://shop.example/api/q",
            ]
        );
    }

    #[test]
    fn without_the_token_nothing_is_purged() {
        for authorization in [None, Some("Bearer wrong"), Some(TOKEN)] {
            assert_eq!(
                plan(TOKEN, authorization, br#"{"files": ["/a"]}"#, "z.example"),
                Err(PurgeRefusal::Forbidden)
            );
        }
        assert_eq!(
            plan("", Some("Bearer "), br#"{"files": ["/a"]}"#, "z.example"),
            Err(PurgeRefusal::Forbidden),
            "an empty secret opens nothing"
        );
    }

    #[test]
    fn what_the_cache_api_cannot_do_says_where_to_go() {
        for body in [
            r#"{"tags": ["t"]}"#,
            r#"{"prefixes": ["/a"]}"#,
            r#"{"purge_everything": true}"#,
            r#"{"files": ["/a"], "soft": true}"#,
        ] {
            let refusal = plan(TOKEN, BEARER, body.as_bytes(), "z.example").unwrap_err();
            assert_eq!(refusal.status(), StatusCode::NOT_IMPLEMENTED, "{body}");
            assert!(refusal.to_string().contains("purge_cache"));
        }
        let bad = plan(TOKEN, BEARER, b"{}", "z.example").unwrap_err();
        assert_eq!(bad.status(), StatusCode::BAD_REQUEST);
    }
}
