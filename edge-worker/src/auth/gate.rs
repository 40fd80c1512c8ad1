//! The auth gate in front of everything else at the edge: decides per route whether a request
//! goes on, and what of its identity goes to the origin.

use std::time::{Duration, SystemTime};

use http::header::{self, HeaderValue};
use http::{Request, Response};
use serde_json::Value;
use sha2::{Digest, Sha256};

use super::config::{AuthPolicy, Mode};
use super::{bearer_token, check, jwks, parse_header, AuthError, VerifiedClaims};
use crate::{Body, CacheEntry, Deferred, Platform, VerifiedToken, WorkerError};

/// Longest a verified token is remembered, whatever its `exp`.
pub const TOKEN_CACHE_MAX: Duration = Duration::from_secs(300);
/// Longest forwarded claim value; longer values are not forwarded.
const MAX_FORWARDED_VALUE: usize = 1024;

/// A request let through: who it is (if anyone) and work for after the response.
#[derive(Debug, Default)]
pub struct Admitted {
    pub claims: Option<VerifiedClaims>,
    pub deferred: Vec<Deferred>,
}

/// `OPTIONS` with `Access-Control-Request-Method`: a browser asking before a cross-origin call.
fn is_cors_preflight(request: &Request<Body>) -> bool {
    request.method() == http::Method::OPTIONS
        && request
            .headers()
            .contains_key(header::ACCESS_CONTROL_REQUEST_METHOD)
}

/// Lets `request` through (rewritten for the origin) or answers it with a 401/400.
pub async fn admit<P: Platform>(
    policy: &AuthPolicy,
    p: &P,
    request: &mut Request<Body>,
) -> Result<Admitted, Box<Response<Body>>> {
    let realm = &policy.config.realm;
    let refuse = |e: AuthError| Box::new(WorkerError::auth(realm, e).to_response());
    // Identity headers come only from us: drop whatever a client sent (spoofing).
    for (_, name) in &policy.forward {
        request.headers_mut().remove(name);
    }
    let route = policy.route(request.uri().path());
    // A CORS preflight carries no credentials (browsers never send them on one, Fetch
    // §4.8): it goes to the origin as on a public route, which answers what it allows.
    let mode = match route {
        _ if is_cors_preflight(request) => Mode::Public,
        Some(route) => route.mode,
        None => Mode::Public,
    };
    if mode == Mode::Public {
        if !policy.config.forward_authorization {
            request.headers_mut().remove(header::AUTHORIZATION);
        }
        return Ok(Admitted::default());
    }
    let in_query = request.uri().query().is_some_and(|q| {
        form_urlencoded::parse(q.as_bytes()).any(|(name, _)| name == "access_token")
    });
    let token = match bearer_token(request.headers()).map_err(refuse)? {
        // RFC 6750 §2: one method per request; the query form we never read.
        Some(_) if in_query => {
            return Err(refuse(AuthError::InvalidRequest(
                "a token in both the Authorization field and the query".into(),
            )))
        }
        Some(token) => token.to_string(),
        None if mode == Mode::Required => return Err(refuse(AuthError::Missing)),
        None => return Ok(Admitted::default()),
    };
    let expect = route.map(|r| r.expect.clone()).unwrap_or_default();
    let mut deferred = Vec::new();
    let claims = verified(policy, p, &token, &expect, &mut deferred)
        .await
        .map_err(refuse)?;
    for (claim, name) in &policy.forward {
        let value = match claims.all.get(claim) {
            Some(Value::String(s)) => s.clone(),
            Some(Value::Number(n)) => n.to_string(),
            Some(Value::Bool(b)) => b.to_string(),
            // `scope`-like arrays of strings travel space-separated (RFC 8693 §4.2).
            Some(Value::Array(items)) => items
                .iter()
                .filter_map(Value::as_str)
                .collect::<Vec<_>>()
                .join(" "),
            _ => continue,
        };
        if value.len() <= MAX_FORWARDED_VALUE {
            if let Ok(value) = HeaderValue::from_str(&value) {
                request.headers_mut().insert(name.clone(), value);
            }
        }
    }
    // The Authorization field stays on the request through the cache tiers, so each applies
    // RFC 9111 §3.5 (an authenticated response is shared only if it says public, s-maxage or
    // must-revalidate). The host removes it on the hop to the origin unless
    // `forward_authorization` (AuthConfig) says otherwise.
    Ok(Admitted {
        claims: Some(claims),
        deferred,
    })
}

/// Verifies a token, or takes its claims from the verified-token cache; time and the route's
/// expectations are checked every time.
async fn verified<P: Platform>(
    policy: &AuthPolicy,
    p: &P,
    token: &str,
    expect: &super::Expectations,
    deferred: &mut Vec<Deferred>,
) -> Result<VerifiedClaims, AuthError> {
    let now = p.now();
    let key = format!("jwt:{:x}", Sha256::digest(token.as_bytes()));
    if let Some(CacheEntry::VerifiedToken(cached)) = p.cache_get(&key).await {
        if let Ok(claims) = serde_json::from_str(&cached.claims) {
            return check(claims, cached.typ.as_deref(), expect, now, policy.leeway);
        }
    }
    let header = parse_header(token)?;
    let verifier = &policy.verifier;
    let claims = match (
        verifier.keys.select(header.kid.as_deref(), header.alg),
        verifier.keys.jwks_for(header.alg),
        header.kid.as_deref(),
    ) {
        (Some(Ok(key)), _, _) => verifier.verify_with(token, &header, key, expect, now)?,
        // A key the host failed to check at start-up: fail closed, say nothing of it.
        (Some(Err(_)), _, _) => return Err(AuthError::invalid("token cannot be verified")),
        (None, None, _) | (None, Some(_), None) => {
            return Err(AuthError::invalid("no key accepts this token"))
        }
        (None, Some(url), Some(kid)) => {
            let (key, refresh) = jwks::key_for(p, url, header.alg, kid).await?;
            deferred.extend(refresh);
            verifier.verify_with(token, &header, &key, expect, now)?
        }
    };
    let typ = header.typ;
    // `exp` is the token's number: one past what the clock can hold is kept the longest.
    let until = SystemTime::UNIX_EPOCH
        .checked_add(Duration::from_secs(claims.exp).saturating_add(policy.leeway));
    let keep = until
        .map_or(TOKEN_CACHE_MAX, |until| {
            until.duration_since(now).unwrap_or_default()
        })
        .min(TOKEN_CACHE_MAX);
    if !keep.is_zero() {
        let entry = VerifiedToken {
            typ,
            claims: Value::Object(claims.all.clone()).to_string(),
        };
        p.cache_put(&key, CacheEntry::VerifiedToken(entry), keep)
            .await;
    }
    Ok(claims)
}
