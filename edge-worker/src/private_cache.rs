//! The edge's per-subject private cache: a response the origin marks `private` (RFC 9111
//! §5.2.2.7), to a request whose token the edge verified, is kept for that subject alone and
//! never shared. Everything else stays with the shared tier (which shares an authenticated
//! response only when §3.5 allows).
//!
//! Deliberately simple: fresh or miss. No stale serving and no revalidation, so a private
//! entry is only ever served while the origin said it may be.

use std::time::Duration;

use http::header::{self, HeaderValue};
use http::{Method, Request, Response};
use http_cache_semantics::{BeforeRequest, CacheOptions, CachePolicy};
use sha2::{Digest, Sha256};

use crate::cache_control::CacheControl;
use crate::hops::{CacheOutcome, Hop, TierId};
use crate::status::ttl_seconds;
use crate::{Body, CacheEntry, CacheKey, CfCacheStatus, Outcome, Platform, StoredResponse};

/// Largest body kept per subject and URL.
pub const MAX_PRIVATE_BODY: usize = 1024 * 1024;

fn private_options() -> CacheOptions {
    CacheOptions {
        shared: false,
        ..CacheOptions::default()
    }
}

/// The slot of `key` in `subject`'s space; the subject is hashed so any `sub` makes a key.
fn slot(subject: &str, key: &CacheKey) -> String {
    format!("private:{:x}:{key}", Sha256::digest(subject.as_bytes()))
}

/// A fresh private response for this subject and request, if there is one. The request must
/// carry no Host field (the URL names the host), as in the tier.
pub async fn lookup<P: Platform>(
    p: &P,
    tier: &TierId,
    subject: &str,
    key: &CacheKey,
    request: &Request<Body>,
) -> Option<Outcome> {
    let Some(CacheEntry::Response(stored)) = p.cache_get(&slot(subject, key)).await else {
        return None;
    };
    let now = p.now();
    let policy = stored.policy_with(&Method::GET, request.uri(), private_options());
    let aligned = crate::vary::aligned(&stored, request);
    let BeforeRequest::Fresh(_) = policy.before_request(aligned.as_ref().unwrap_or(request), now)
    else {
        return None;
    };
    let mut response = Response::new(stored.body);
    *response.status_mut() = stored.status;
    *response.headers_mut() = stored.headers;
    let age = policy.age(now).as_secs();
    response
        .headers_mut()
        .insert(header::AGE, HeaderValue::from(age));
    let mut cache = CacheOutcome::new(CfCacheStatus::Hit);
    cache.hit = true;
    cache.ttl = Some(ttl_seconds(policy.time_to_live(now), Duration::ZERO));
    Some(Outcome {
        hops: vec![Hop {
            private: true,
            cache: Some(cache),
            age: Some(age),
            ..Hop::new(tier.clone())
        }],
        status: Some(CfCacheStatus::Hit),
        ..Outcome::uncached(response)
    })
}

/// Keeps `response` for `subject` if the origin marked it `private` and a private cache may
/// store it. Returns whether it did.
pub async fn store<P: Platform>(
    p: &P,
    subject: &str,
    key: &CacheKey,
    request: &Request<()>,
    response: &Response<Body>,
) -> bool {
    if !CacheControl::from_headers(response.headers()).has("private")
        || response.body().len() > MAX_PRIVATE_BODY
    {
        return false;
    }
    let now = p.now();
    let policy = CachePolicy::new_options(request, response, now, private_options());
    let ttl = policy.time_to_live(now);
    if !policy.is_storable() || ttl.is_zero() {
        return false;
    }
    let stored = StoredResponse::capture(request.headers(), response, now);
    p.cache_put(&slot(subject, key), CacheEntry::Response(stored), ttl)
        .await;
    true
}
