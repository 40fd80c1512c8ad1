//! Registered claims (RFC 7519 §4.1) checked against `now` from the platform clock.
//!
//! `jsonwebtoken`'s own time checks read the system clock and default to a 60 s leeway with
//! `nbf` unchecked; we switch them off and check here, so time stays a parameter and the
//! defaults are ours (30 s leeway, `nbf` and `iat` checked).

use std::time::{Duration, SystemTime};

use serde_json::{Map, Value};

use super::AuthError;

/// What a route expects of a token's claims.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Expectations {
    /// Required `iss`, when set.
    pub issuer: Option<String>,
    /// An audience the token's `aud` must contain, when set. A token that carries an `aud`
    /// is refused on a route that expects none (RFC 7519 §4.1.3).
    pub audience: Option<String>,
    /// Required `typ` header (e.g. `at+jwt`), compared case-insensitively, `application/`
    /// prefix optional (RFC 8725 §3.11).
    pub typ: Option<String>,
}

/// Largest leeway a configuration may ask for.
pub const MAX_LEEWAY: Duration = Duration::from_secs(300);

/// Claims of a verified token.
#[derive(Debug, Clone, PartialEq)]
pub struct VerifiedClaims {
    pub sub: Option<String>,
    /// `exp` as seconds since the epoch.
    pub exp: u64,
    pub all: Map<String, Value>,
}

fn seconds(claims: &Map<String, Value>, name: &str) -> Result<Option<u64>, AuthError> {
    match claims.get(name) {
        None => Ok(None),
        // NumericDate may carry a fraction (RFC 7519 §2); negative or non-numeric is refused.
        Some(Value::Number(n)) => {
            let Some(float) = n.as_f64().filter(|f| *f >= 0.0 && f.is_finite()) else {
                return Err(AuthError::invalid(&format!("{name} is not a NumericDate")));
            };
            let seconds = n.as_u64().unwrap_or(float as u64);
            if seconds > MAX_NUMERIC_DATE || float > MAX_NUMERIC_DATE as f64 {
                return Err(AuthError::invalid(&format!(
                    "{name} is beyond what the clock can represent"
                )));
            }
            Ok(Some(seconds))
        }
        Some(_) => Err(AuthError::invalid(&format!("{name} is not a NumericDate"))),
    }
}

/// The latest NumericDate we accept: 9999-12-31T23:59:59Z, the end of four-digit years. Every
/// platform's clock holds it (a wasm host's `SystemTime` may end centuries earlier than a
/// native one's), so the same token gets the same verdict everywhere; a date past it is
/// refused rather than treated as "never expires".
pub const MAX_NUMERIC_DATE: u64 = 253_402_300_799;

pub fn check(
    claims: Map<String, Value>,
    typ: Option<&str>,
    expect: &Expectations,
    now: SystemTime,
    leeway: Duration,
) -> Result<VerifiedClaims, AuthError> {
    let now = now
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let leeway = leeway.min(MAX_LEEWAY).as_secs();
    let exp = seconds(&claims, "exp")?.ok_or_else(|| AuthError::invalid("token has no exp"))?;
    if exp.saturating_add(leeway) <= now {
        return Err(AuthError::invalid("token expired"));
    }
    if let Some(nbf) = seconds(&claims, "nbf")? {
        if nbf > now.saturating_add(leeway) {
            return Err(AuthError::invalid("token not valid yet"));
        }
    }
    if let Some(iat) = seconds(&claims, "iat")? {
        if iat > now.saturating_add(leeway) {
            return Err(AuthError::invalid("token issued in the future"));
        }
    }
    if let Some(issuer) = &expect.issuer {
        if claims.get("iss").and_then(Value::as_str) != Some(issuer.as_str()) {
            return Err(AuthError::invalid("wrong issuer"));
        }
    }
    let audiences: Vec<&str> = match claims.get("aud") {
        None => Vec::new(),
        Some(Value::String(one)) => vec![one.as_str()],
        Some(Value::Array(many)) => many.iter().filter_map(Value::as_str).collect(),
        Some(_) => return Err(AuthError::invalid("aud is neither a string nor an array")),
    };
    match &expect.audience {
        Some(audience) if !audiences.contains(&audience.as_str()) => {
            return Err(AuthError::invalid("wrong audience"))
        }
        None if claims.contains_key("aud") => {
            return Err(AuthError::invalid("token is meant for another audience"))
        }
        _ => {}
    }
    if let Some(expected) = &expect.typ {
        let normalise = |t: &str| {
            let t = t.to_ascii_lowercase();
            t.strip_prefix("application/")
                .map(str::to_string)
                .unwrap_or(t)
        };
        if typ.map(normalise) != Some(normalise(expected)) {
            return Err(AuthError::invalid("wrong typ"));
        }
    }
    let sub = match claims.get("sub") {
        None => None,
        Some(Value::String(sub)) => Some(sub.clone()),
        Some(_) => return Err(AuthError::invalid("sub is not a string")),
    };
    Ok(VerifiedClaims {
        sub,
        exp,
        all: claims,
    })
}
