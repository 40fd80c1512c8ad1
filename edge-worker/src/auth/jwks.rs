//! Keys from a JWKS URL (RFC 7517 §5), fetched through the upstream port and kept in the
//! cache port under `jwks:<url>`.
//!
//! - Freshness: the response's `max-age` (or `s-maxage`), bounded to 1 minute – 24 hours,
//!   5 minutes when it gives none.
//! - Refreshed in the background (`Deferred::RefreshJwks`) once 80% of that lifetime has passed,
//!   so requests do not wait for it.
//! - Served stale for up to 24 hours past expiry when the endpoint fails (a JWKS outage must
//!   not lock every user out).
//! - An unknown `kid` refetches at most once per 30 s per URL: a stream of tokens with made-up
//!   kids cannot turn into a stream of requests to the key server.
//!
//! Every key is still pinned: the configuration's `alg` applies to all keys of the set, and a
//! JWK that names another `alg` is not used.

use std::time::{Duration, SystemTime};

use http::header::{self, HeaderValue};
use http::{Method, Request, StatusCode};
use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{Algorithm, DecodingKey};

use super::{AuthError, PinnedKey};
use crate::cache_control::CacheControl;
use crate::{Body, CacheEntry, Deferred, LogLevel, Platform, StoredResponse};

pub const MIN_TTL: Duration = Duration::from_secs(60);
pub const MAX_TTL: Duration = Duration::from_secs(24 * 3600);
const DEFAULT_TTL: Duration = Duration::from_secs(300);
/// How long past expiry a stored set is used when the endpoint fails.
pub const SERVE_STALE_FOR: Duration = Duration::from_secs(24 * 3600);
/// At most one refetch per URL in this window because of an unknown `kid`.
pub const KID_MISS_COOLDOWN: Duration = Duration::from_secs(30);
/// Largest JWKS document accepted, and most keys used from it.
pub const MAX_JWKS_BYTES: usize = 64 * 1024;
pub const MAX_JWKS_KEYS: usize = 32;
/// The stored set's expiry (Unix seconds), kept beside the body.
const EXPIRES: &str = "x-edge-jwks-expires";

/// A stored set and when it stops being fresh.
struct Stored {
    body: Body,
    fetched: SystemTime,
    expires: SystemTime,
}

fn slot(url: &str) -> String {
    format!("jwks:{url}")
}

async fn load<P: Platform>(p: &P, url: &str) -> Option<Stored> {
    let Some(CacheEntry::Response(stored)) = p.cache_get(&slot(url)).await else {
        return None;
    };
    let expires = stored
        .headers
        .get(EXPIRES)?
        .to_str()
        .ok()?
        .parse::<u64>()
        .ok()?;
    Some(Stored {
        body: stored.body,
        fetched: stored.response_time,
        expires: SystemTime::UNIX_EPOCH + Duration::from_secs(expires),
    })
}

/// Fetches the set, checks it parses, and stores it. `None` if anything failed.
pub async fn refresh<P: Platform>(p: &P, url: &str) -> Option<Body> {
    let mut request = Request::new(Body::new());
    *request.method_mut() = Method::GET;
    *request.uri_mut() = url.parse().ok()?;
    request
        .headers_mut()
        .insert(header::ACCEPT, HeaderValue::from_static("application/json"));
    let response = match p.fetch(request).await {
        Ok(upstream) => upstream.response,
        Err(error) => {
            p.log(LogLevel::Warn, &format!("JWKS {url}: {error}"));
            return None;
        }
    };
    if response.status() != StatusCode::OK
        || response.body().len() > MAX_JWKS_BYTES
        || serde_json::from_slice::<JwkSet>(response.body()).is_err()
    {
        p.log(
            LogLevel::Warn,
            &format!("JWKS {url}: unusable response ({})", response.status()),
        );
        return None;
    }
    let cc = CacheControl::from_headers(response.headers());
    let ttl = cc
        .seconds("s-maxage")
        .or(cc.seconds("max-age"))
        .map_or(DEFAULT_TTL, Duration::from_secs)
        .clamp(MIN_TTL, MAX_TTL);
    let now = p.now();
    let expires = now + ttl;
    let mut headers = http::HeaderMap::new();
    let secs = expires
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    headers.insert(EXPIRES, HeaderValue::from(secs));
    let body = response.into_body();
    let stored = StoredResponse {
        status: StatusCode::OK,
        headers,
        body: body.clone(),
        vary_request_headers: http::HeaderMap::new(),
        response_time: now,
        lifetime: None,
        record: None,
        variant: None,
    };
    p.cache_put(
        &slot(url),
        CacheEntry::Response(stored),
        ttl + SERVE_STALE_FOR,
    )
    .await;
    Some(body)
}

/// The key of the set at `url` for a token's `kid`, pinned to `alg`, and a background refresh
/// to schedule if the set is nearing expiry.
pub async fn key_for<P: Platform>(
    p: &P,
    url: &str,
    alg: Algorithm,
    kid: &str,
) -> Result<(PinnedKey, Option<Deferred>), AuthError> {
    let now = p.now();
    let no_key = || AuthError::invalid("no key accepts this token");
    match load(p, url).await {
        Some(stored) if now < stored.expires => {
            let lifetime = stored
                .expires
                .duration_since(stored.fetched)
                .unwrap_or_default();
            let refresh_after = stored.fetched + lifetime.mul_f64(0.8);
            let deferred = (now >= refresh_after).then(|| Deferred::RefreshJwks(url.to_string()));
            if let Some(key) = find(&stored.body, alg, kid) {
                return Ok((key, deferred));
            }
            // Unknown kid: perhaps the keys rotated. Look again, at most once per cooldown.
            let marker = format!("jwks-miss:{url}");
            if p.cache_get(&marker).await.is_some() {
                return Err(no_key());
            }
            let mark = StoredResponse {
                status: StatusCode::NO_CONTENT,
                headers: http::HeaderMap::new(),
                body: Body::new(),
                vary_request_headers: http::HeaderMap::new(),
                response_time: now,
                lifetime: None,
                record: None,
                variant: None,
            };
            p.cache_put(&marker, CacheEntry::Response(mark), KID_MISS_COOLDOWN)
                .await;
            let body = refresh(p, url).await.ok_or_else(no_key)?;
            find(&body, alg, kid).map(|k| (k, None)).ok_or_else(no_key)
        }
        Some(stale) => match refresh(p, url).await {
            Some(body) => find(&body, alg, kid).map(|k| (k, None)).ok_or_else(no_key),
            // The endpoint failed: the stale set still says who our users are.
            None => find(&stale.body, alg, kid)
                .map(|k| (k, None))
                .ok_or_else(no_key),
        },
        None => {
            let body = refresh(p, url)
                .await
                .ok_or_else(|| AuthError::invalid("token cannot be verified"))?;
            find(&body, alg, kid).map(|k| (k, None)).ok_or_else(no_key)
        }
    }
}

/// The key with `kid` in a set, if its type fits `alg` and it names no other algorithm.
fn find(body: &[u8], alg: Algorithm, kid: &str) -> Option<PinnedKey> {
    let set: JwkSet = serde_json::from_slice(body).ok()?;
    let jwk = set
        .keys
        .iter()
        .take(MAX_JWKS_KEYS)
        .find(|k| k.common.key_id.as_deref() == Some(kid))?;
    if let Some(named) = &jwk.common.key_algorithm {
        if named.to_string() != format!("{alg:?}") {
            return None;
        }
    }
    let key = DecodingKey::from_jwk(jwk).ok()?;
    (key.family() == alg.family()).then(|| PinnedKey {
        kid: Some(kid.to_string()),
        alg,
        key,
    })
}
