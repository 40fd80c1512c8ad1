//! JWT verification at the edge (RFC 7519, RFC 7515, RFC 8725 best practices) with Bearer
//! errors per RFC 6750 §3.
//!
//! Shape checks (`token.rs`) run before any cryptography; keys are pinned to one algorithm
//! (`keys.rs`); `jsonwebtoken` verifies the signature; claims are checked against the
//! platform clock (`claims.rs`).

mod claims;
pub(crate) mod config;
mod gate;
mod jwks;
mod keys;
mod token;

use std::time::{Duration, SystemTime};

use http::header;
use http::HeaderMap;
use jsonwebtoken::{decode, Validation};
use serde_json::{Map, Value};

pub use claims::{check, Expectations, VerifiedClaims, MAX_LEEWAY, MAX_NUMERIC_DATE};
pub use config::{AuthConfig, AuthPolicy, ForwardedClaim, Mode, RouteConfig};
pub use gate::{admit, Admitted, TOKEN_CACHE_MAX};
pub use jwks::{refresh as refresh_jwks, KID_MISS_COOLDOWN};
pub use keys::{KeyConfig, KeySet, PinnedKey};
pub use token::{parse_header, TokenHeader, MAX_TOKEN_LEN};

/// Default clock-skew allowance for `exp`, `nbf` and `iat`.
pub const DEFAULT_LEEWAY: Duration = Duration::from_secs(30);

/// Why a request was refused. The descriptions never say which key would have matched.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    /// No credentials on a route that needs them: a bare challenge (RFC 6750 §3.1).
    #[error("authentication required")]
    Missing,
    /// The Authorization field is not a well-formed Bearer credential: 400 `invalid_request`.
    #[error("malformed Authorization header: {0}")]
    InvalidRequest(String),
    /// A Bearer token that is malformed, unverifiable, expired or not for us: 401
    /// `invalid_token`.
    #[error("invalid token: {0}")]
    InvalidToken(String),
}

impl AuthError {
    pub fn invalid(why: &str) -> Self {
        AuthError::InvalidToken(why.to_string())
    }

    /// A token whose shape is wrong is still an `invalid_token` (RFC 6750 §3.1).
    pub fn malformed(why: &str) -> Self {
        AuthError::InvalidToken(format!("malformed token: {why}"))
    }

    /// The `WWW-Authenticate` challenge for this refusal (RFC 6750 §3).
    pub fn challenge(&self, realm: &str) -> String {
        let realm = realm.replace(['"', '\\'], "");
        match self {
            AuthError::Missing => format!("Bearer realm=\"{realm}\""),
            AuthError::InvalidRequest(why) => format!(
                "Bearer realm=\"{realm}\", error=\"invalid_request\", error_description=\"{}\"",
                quoted(why)
            ),
            AuthError::InvalidToken(why) => format!(
                "Bearer realm=\"{realm}\", error=\"invalid_token\", error_description=\"{}\"",
                quoted(why)
            ),
        }
    }
}

/// error_description is a quoted-string of printable ASCII without `"` and `\` (RFC 6750 §3).
fn quoted(text: &str) -> String {
    text.chars()
        .filter(|c| (' '..='~').contains(c) && *c != '"' && *c != '\\')
        .collect()
}

/// The Bearer token of a request (RFC 6750 §2.1; the scheme is case-insensitive, RFC 9110
/// §11.1), with the error classes of RFC 6750 §3.1:
/// - `Ok(None)`: no Bearer credentials: no Authorization field, or one with another scheme
///   (`Basic …`) or none (the gate answers a bare challenge where a token is required);
/// - `Err(InvalidToken)` (401): a Bearer credential whose token is empty or not one token68;
/// - `Err(InvalidRequest)` (400): a malformed request: more than one Authorization field.
pub fn bearer_token(headers: &HeaderMap) -> Result<Option<&str>, AuthError> {
    let mut values = headers.get_all(header::AUTHORIZATION).iter();
    let Some(value) = values.next() else {
        return Ok(None);
    };
    if values.next().is_some() {
        return Err(AuthError::InvalidRequest(
            "more than one Authorization field".into(),
        ));
    }
    let bytes = value.as_bytes().trim_ascii();
    let is_bearer = bytes.len() >= 6
        && bytes[..6].eq_ignore_ascii_case(b"bearer")
        && bytes.get(6).is_none_or(|b| *b == b' ');
    if !is_bearer {
        return Ok(None);
    }
    let malformed = |why: &str| AuthError::malformed(why);
    let text = value.to_str().map_err(|_| malformed("not ASCII"))?.trim();
    let token = text[6..].trim_start_matches(' ');
    let token68 = |b: u8| b.is_ascii_alphanumeric() || b"-._~+/".contains(&b);
    let body = token.trim_end_matches('=');
    if body.is_empty() {
        return Err(malformed("no token after Bearer"));
    }
    if !body.bytes().all(token68) {
        return Err(malformed("expected Bearer followed by one token68"));
    }
    Ok(Some(token))
}

/// Verifies tokens against pinned keys.
#[derive(Debug)]
pub struct Verifier {
    pub keys: KeySet,
    pub leeway: Duration,
}

impl Verifier {
    pub fn new(keys: KeySet) -> Self {
        Self {
            keys,
            leeway: DEFAULT_LEEWAY,
        }
    }

    pub fn verify(
        &self,
        token: &str,
        expect: &Expectations,
        now: SystemTime,
    ) -> Result<VerifiedClaims, AuthError> {
        let header = parse_header(token)?;
        let key = self
            .keys
            .select(header.kid.as_deref(), header.alg)
            .ok_or_else(|| AuthError::invalid("no key accepts this token"))?
            // A key the host failed to check at start-up: fail closed, say nothing of it.
            .map_err(|_| AuthError::invalid("token cannot be verified"))?;
        self.verify_with(token, &header, key, expect, now)
    }

    /// Verifies with a key already chosen for the token's (`kid`, `alg`).
    pub fn verify_with(
        &self,
        token: &str,
        header: &TokenHeader,
        key: &PinnedKey,
        expect: &Expectations,
        now: SystemTime,
    ) -> Result<VerifiedClaims, AuthError> {
        if key.alg != header.alg {
            return Err(AuthError::invalid("no key accepts this token"));
        }
        let mut validation = Validation::new(key.alg);
        // Time, audience and issuer are ours to check (see claims.rs).
        validation.validate_exp = false;
        validation.validate_nbf = false;
        validation.validate_aud = false;
        validation.required_spec_claims.clear();
        crypto::install();
        let data = decode::<Map<String, Value>>(token, &key.key, &validation).map_err(|e| {
            use jsonwebtoken::errors::ErrorKind;
            match e.kind() {
                ErrorKind::InvalidSignature => AuthError::invalid("bad signature"),
                ErrorKind::Json(_) | ErrorKind::Utf8(_) | ErrorKind::Base64(_) => {
                    AuthError::malformed("claims are not a JSON object")
                }
                _ => AuthError::invalid("token cannot be verified"),
            }
        })?;
        check(data.claims, header.typ.as_deref(), expect, now, self.leeway)
    }
}

pub mod crypto;
#[cfg(test)]
mod tests;
