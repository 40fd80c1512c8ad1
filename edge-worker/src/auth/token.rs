//! The shape of a compact JWS (RFC 7515 §7.1) checked strictly before any cryptography:
//! size, three base64url segments, a JSON-object header without duplicate members, a known
//! `alg` that is not `none`, and no `crit` extension we do not understand (RFC 7515 §4.1.11).
//!
//! `jsonwebtoken` verifies signatures and parses claims; it accepts duplicate header members
//! (last wins) and ignores `crit`, which RFC 7515 and RFC 8725 require us to refuse, so the
//! header is vetted here first.

use std::collections::BTreeSet;
use std::fmt;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use jsonwebtoken::Algorithm;
use serde::de::{self, Deserializer, MapAccess, Visitor};
use serde::Deserialize;

use super::AuthError;

/// Longest token accepted (the whole compact serialisation).
pub const MAX_TOKEN_LEN: usize = 8 * 1024;
/// Longest `kid` accepted.
const MAX_KID_LEN: usize = 128;

/// The header members we act on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenHeader {
    pub alg: Algorithm,
    pub kid: Option<String>,
    pub typ: Option<String>,
}

/// Checks the token's shape and returns its header.
pub fn parse_header(token: &str) -> Result<TokenHeader, AuthError> {
    if token.len() > MAX_TOKEN_LEN {
        return Err(AuthError::malformed("token longer than 8 KiB"));
    }
    let segments: Vec<&str> = token.split('.').collect();
    if segments.len() != 3 {
        return Err(AuthError::malformed(
            "a JWT has three dot-separated segments",
        ));
    }
    for segment in &segments {
        if !segment
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        {
            return Err(AuthError::malformed("segments must be unpadded base64url"));
        }
    }
    let header = URL_SAFE_NO_PAD
        .decode(segments[0])
        .map_err(|_| AuthError::malformed("header is not base64url"))?;
    let raw: RawHeader = serde_json::from_slice(&header)
        .map_err(|_| AuthError::malformed("header is not a JSON object with unique members"))?;
    let header = raw.into_header()?;
    if segments[2].is_empty() {
        return Err(AuthError::malformed("no signature"));
    }
    Ok(header)
}

#[derive(Debug, Default)]
struct RawHeader {
    alg: Option<String>,
    kid: Option<String>,
    typ: Option<String>,
    crit: Option<Vec<String>>,
}

/// Extensions we understand and may therefore accept in `crit`: none today.
const UNDERSTOOD_CRIT: [&str; 0] = [];

impl RawHeader {
    fn into_header(self) -> Result<TokenHeader, AuthError> {
        if let Some(crit) = self.crit {
            // RFC 7515 §4.1.11: an empty list or one naming anything we do not implement.
            if crit.is_empty() || crit.iter().any(|c| !UNDERSTOOD_CRIT.contains(&c.as_str())) {
                return Err(AuthError::invalid("unsupported critical header extension"));
            }
        }
        let alg = match self.alg.as_deref() {
            None => return Err(AuthError::malformed("header has no alg")),
            Some(alg) if alg.eq_ignore_ascii_case("none") => {
                return Err(AuthError::invalid("unsigned tokens (alg none) are refused"))
            }
            Some(alg) => alg
                .parse::<Algorithm>()
                .map_err(|_| AuthError::invalid("unsupported alg"))?,
        };
        if let Some(kid) = &self.kid {
            if kid.is_empty() || kid.len() > MAX_KID_LEN || kid.chars().any(|c| c.is_control()) {
                return Err(AuthError::invalid("unusable kid"));
            }
        }
        Ok(TokenHeader {
            alg,
            kid: self.kid,
            typ: self.typ,
        })
    }
}

impl<'de> Deserialize<'de> for RawHeader {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct HeaderVisitor;
        impl<'de> Visitor<'de> for HeaderVisitor {
            type Value = RawHeader;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a JOSE header object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<RawHeader, A::Error> {
                let mut seen = BTreeSet::new();
                let mut header = RawHeader::default();
                while let Some(name) = map.next_key::<String>()? {
                    if seen.len() >= 32 || !seen.insert(name.clone()) {
                        return Err(de::Error::custom("duplicate or too many header members"));
                    }
                    match name.as_str() {
                        "alg" => header.alg = Some(map.next_value()?),
                        "kid" => header.kid = Some(map.next_value()?),
                        "typ" => header.typ = Some(map.next_value()?),
                        "crit" => header.crit = Some(map.next_value()?),
                        _ => {
                            map.next_value::<de::IgnoredAny>()?;
                        }
                    }
                }
                Ok(header)
            }
        }
        deserializer.deserialize_map(HeaderVisitor)
    }
}
