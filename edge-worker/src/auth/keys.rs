//! Verification keys, each pinned to one algorithm (RFC 8725 §3.1): the token's `alg` must
//! equal the key's, so it never chooses the key type, and an RSA public key can never be used
//! as an HMAC secret.

use std::sync::OnceLock;

use jsonwebtoken::jwk::{AlgorithmParameters, Jwk};
use jsonwebtoken::{Algorithm, DecodingKey};
use serde::Deserialize;

use crate::config::ConfigError;

/// One key as configured (TOML in the emulator, JSON in a Cloudflare var).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeyConfig {
    /// Matched against the token's `kid`; a key without one matches tokens without a `kid`.
    pub kid: Option<String>,
    /// The one algorithm this key verifies, e.g. `ES256`.
    pub alg: Algorithm,
    /// HMAC secret (HS*), as text: its UTF-8 bytes are the key.
    pub secret: Option<String>,
    /// HMAC secret (HS*) as base64 (URL-safe or standard alphabet, padded or not), for the
    /// random byte keys identity providers issue and `wrangler secret put` stores.
    pub secret_base64: Option<String>,
    /// Public key in PEM (RS*, PS*, ES*, EdDSA).
    pub pem: Option<String>,
    /// A JWK (JSON text): a public key, or for HS* an `oct` key (RFC 7518 §6.4).
    pub jwk: Option<String>,
    /// A JWKS URL (RFC 7517 §5), fetched through the upstream port; `alg` applies to every key
    /// in it and tokens must name a `kid`. Leave `kid` unset.
    pub jwks_url: Option<String>,
}

/// A usable key and the algorithm it is pinned to.
#[derive(Clone)]
pub struct PinnedKey {
    pub kid: Option<String>,
    pub alg: Algorithm,
    pub key: DecodingKey,
}

impl std::fmt::Debug for PinnedKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print key material.
        f.debug_struct("PinnedKey")
            .field("kid", &self.kid)
            .field("alg", &self.alg)
            .finish_non_exhaustive()
    }
}

/// The shortest HMAC key we accept, in bytes: RFC 7518 §3.2 asks for at least the hash's size,
/// 32 bytes for HS256, which we apply to every HS* algorithm.
pub const MIN_HMAC_KEY_BYTES: usize = 32;

/// Base64 in either alphabet (RFC 4648 §4 and §5), padding optional: secrets are pasted from
/// identity providers and `wrangler secret` in both forms.
fn decode_base64(text: &str) -> Option<Vec<u8>> {
    use base64::engine::general_purpose::STANDARD_NO_PAD;
    use base64::Engine;
    let normalised: String = text
        .trim()
        .trim_end_matches('=')
        .chars()
        .map(|c| match c {
            '-' => '+',
            '_' => '/',
            c => c,
        })
        .collect();
    STANDARD_NO_PAD.decode(normalised).ok()
}

fn is_hmac(alg: Algorithm) -> bool {
    matches!(alg, Algorithm::HS256 | Algorithm::HS384 | Algorithm::HS512)
}

impl PinnedKey {
    pub fn from_config(config: &KeyConfig) -> Result<PinnedKey, ConfigError> {
        let kid = config.kid.clone();
        let unusable = |e: jsonwebtoken::errors::Error| ConfigError::KeyUnusable {
            kid: kid.clone(),
            reason: e.to_string(),
        };
        if !super::crypto::supported(config.alg) {
            return Err(ConfigError::KeyUnusable {
                kid,
                reason: format!(
                    "{:?} is not in this build (edge-worker features jwt-all-algorithms, jwt-es256)",
                    config.alg
                ),
            });
        }
        if config.jwks_url.is_some() {
            // Its keys arrive at run time (jwks.rs); here only its shape is checked.
            return Err(ConfigError::KeySource { kid });
        }
        let hmac_key = |bytes: Vec<u8>| {
            if !is_hmac(config.alg) {
                return Err(ConfigError::KeySecretMismatch { kid: kid.clone() });
            }
            if bytes.len() < MIN_HMAC_KEY_BYTES {
                return Err(ConfigError::KeyShortSecret { kid: kid.clone() });
            }
            Ok(DecodingKey::from_secret(&bytes))
        };
        let sources = [
            config.secret.is_some(),
            config.secret_base64.is_some(),
            config.pem.is_some(),
            config.jwk.is_some(),
        ];
        if sources.iter().filter(|given| **given).count() != 1 {
            return Err(ConfigError::KeySource { kid });
        }
        let key = match (&config.secret, &config.pem, &config.jwk) {
            (Some(secret), None, None) => hmac_key(secret.as_bytes().to_vec())?,
            (None, None, None) => {
                let text = config.secret_base64.as_deref().unwrap_or_default();
                let bytes = decode_base64(text).ok_or_else(|| ConfigError::KeyUnusable {
                    kid: kid.clone(),
                    reason: "secret_base64 is not base64".into(),
                })?;
                hmac_key(bytes)?
            }
            (None, Some(pem), None) => {
                let pem = pem.as_bytes();
                match config.alg {
                    Algorithm::ES256 | Algorithm::ES384 => {
                        ec_pem_key(pem).map_err(|reason| ConfigError::KeyUnusable {
                            kid: kid.clone(),
                            reason,
                        })?
                    }
                    #[cfg(feature = "jwt-all-algorithms")]
                    Algorithm::RS256
                    | Algorithm::RS384
                    | Algorithm::RS512
                    | Algorithm::PS256
                    | Algorithm::PS384
                    | Algorithm::PS512 => DecodingKey::from_rsa_pem(pem).map_err(unusable)?,
                    #[cfg(feature = "jwt-all-algorithms")]
                    Algorithm::EdDSA => DecodingKey::from_ed_pem(pem).map_err(unusable)?,
                    // Other algorithms are refused above as not in this build.
                    _ => return Err(ConfigError::KeySecretMismatch { kid }),
                }
            }
            (None, None, Some(jwk)) => {
                let jwk: Jwk = serde_json::from_str(jwk).map_err(|e| ConfigError::KeyUnusable {
                    kid: kid.clone(),
                    reason: format!("not a JWK: {e}"),
                })?;
                match (&jwk.algorithm, is_hmac(config.alg)) {
                    // RFC 7518 §6.4: `k` is the key's bytes, base64url.
                    (AlgorithmParameters::OctetKey(oct), true) => {
                        let bytes =
                            decode_base64(&oct.value).ok_or_else(|| ConfigError::KeyUnusable {
                                kid: kid.clone(),
                                reason: "the oct JWK's k is not base64url".into(),
                            })?;
                        hmac_key(bytes)?
                    }
                    (AlgorithmParameters::OctetKey(_), false) | (_, true) => {
                        return Err(ConfigError::KeySecretMismatch { kid })
                    }
                    _ => DecodingKey::from_jwk(&jwk).map_err(unusable)?,
                }
            }
            _ => return Err(ConfigError::KeySource { kid }),
        };
        // The key's family must match the pinned algorithm's (a PEM RSA key pinned to ES256
        // would otherwise fail only at verification time).
        if key.family() != config.alg.family() {
            return Err(ConfigError::KeyUnusable {
                kid,
                reason: format!("key type does not fit {:?}", config.alg),
            });
        }
        Ok(PinnedKey {
            kid,
            alg: config.alg,
            key,
        })
    }
}

/// The keys a verifier may use, each parsed on first use: a wasm instance lives for one
/// request, and parsing every configured key (an RSA key costs tens of µs in the guest) to use
/// one would be paid on every verification.
#[derive(Debug, Default)]
pub struct KeySet {
    keys: Vec<(KeyConfig, OnceLock<Result<PinnedKey, String>>)>,
}

impl Clone for KeySet {
    fn clone(&self) -> Self {
        Self::from_configs(&self.configs())
    }
}

impl KeySet {
    pub fn from_configs(configs: &[KeyConfig]) -> Self {
        Self {
            keys: configs
                .iter()
                .map(|c| (c.clone(), OnceLock::new()))
                .collect(),
        }
    }

    fn configs(&self) -> Vec<KeyConfig> {
        self.keys.iter().map(|(c, _)| c.clone()).collect()
    }

    /// Parses every key: hosts call this at start-up so a bad key is reported before the
    /// first request.
    pub fn check_all(&self) -> Result<(), ConfigError> {
        for (config, _) in &self.keys {
            match &config.jwks_url {
                Some(url) => {
                    let inline =
                        config.secret.is_some() || config.pem.is_some() || config.jwk.is_some();
                    if inline
                        || config.kid.is_some()
                        || is_hmac(config.alg)
                        || url.parse::<http::Uri>().is_err()
                    {
                        return Err(ConfigError::KeyUnusable {
                            kid: config.kid.clone(),
                            reason: format!("jwks_url {url:?} needs an absolute URL, an asymmetric alg and no kid, secret, pem or jwk"),
                        });
                    }
                }
                None => {
                    PinnedKey::from_config(config)?;
                }
            }
        }
        Ok(())
    }

    /// The JWKS URL configured for `alg`, if any.
    pub fn jwks_for(&self, alg: Algorithm) -> Option<&str> {
        self.keys
            .iter()
            .find(|(k, _)| k.alg == alg && k.jwks_url.is_some())
            .and_then(|(k, _)| k.jwks_url.as_deref())
    }

    /// The key for a token's `kid` and `alg`: the `kid` must match exactly (absent matches
    /// absent) and the key's pinned algorithm must equal `alg`. `Some(Err)` when that key
    /// does not parse.
    pub fn select(&self, kid: Option<&str>, alg: Algorithm) -> Option<Result<&PinnedKey, &str>> {
        let (config, parsed) = self
            .keys
            .iter()
            .find(|(k, _)| k.jwks_url.is_none() && k.kid.as_deref() == kid && k.alg == alg)?;
        let parsed =
            parsed.get_or_init(|| PinnedKey::from_config(config).map_err(|e| e.to_string()));
        Some(parsed.as_ref().map_err(String::as_str))
    }
}

/// An EC public key in PEM (SubjectPublicKeyInfo) as jsonwebtoken keys it: the SEC1 point.
#[cfg(feature = "jwt-all-algorithms")]
pub fn ec_pem_key(pem: &[u8]) -> Result<DecodingKey, String> {
    DecodingKey::from_ec_pem(pem).map_err(|e| e.to_string())
}

/// An EC public key in PEM, read by p256 (P-256 is the only curve these builds verify):
/// jsonwebtoken's own PEM reader is left out of them for its size (Cargo.toml, `jwt-es256`).
#[cfg(all(not(feature = "jwt-all-algorithms"), feature = "jwt-es256"))]
pub fn ec_pem_key(pem: &[u8]) -> Result<DecodingKey, String> {
    use p256::pkcs8::DecodePublicKey;
    let text = std::str::from_utf8(pem).map_err(|_| "the PEM is not text".to_string())?;
    let key = p256::PublicKey::from_public_key_pem(text)
        .map_err(|e| format!("not a P-256 public key in PEM: {e}"))?;
    let point = p256::elliptic_curve::sec1::ToEncodedPoint::to_encoded_point(&key, false);
    Ok(DecodingKey::from_ec_der(point.as_bytes()))
}

/// Without an EC algorithm compiled in, no EC key is usable.
#[cfg(not(any(feature = "jwt-all-algorithms", feature = "jwt-es256")))]
pub fn ec_pem_key(_pem: &[u8]) -> Result<DecodingKey, String> {
    Err("no EC algorithm is in this build (edge-worker feature jwt-es256)".into())
}
