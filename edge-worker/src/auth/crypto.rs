//! Which JWS algorithms this build verifies, and a small verifier for builds that leave
//! jsonwebtoken's full RustCrypto provider out.
//!
//! Why: that provider links RSA, P-256, P-384 and Ed25519 whatever the configuration uses,
//! which is most of the Cloudflare bundle's size (Cloudflare limits the gzipped upload). With
//! the `jwt-all-algorithms` feature (default) every algorithm is there. Without it, this
//! module installs its own provider: HS256/384/512 always, ES256 with `jwt-es256`; a key for
//! any other algorithm is refused when the configuration is checked, not at the first token.

use jsonwebtoken::Algorithm;

/// Whether this build can verify `alg`.
pub fn supported(alg: Algorithm) -> bool {
    cfg!(feature = "jwt-all-algorithms")
        || matches!(alg, Algorithm::HS256 | Algorithm::HS384 | Algorithm::HS512)
        || (cfg!(feature = "jwt-es256") && alg == Algorithm::ES256)
}

/// Makes sure jsonwebtoken has a provider before it verifies anything.
pub fn install() {
    #[cfg(not(feature = "jwt-all-algorithms"))]
    small::install();
}

#[cfg(not(feature = "jwt-all-algorithms"))]
mod small {
    use std::sync::Once;

    use hmac::{Hmac, Mac};
    use jsonwebtoken::crypto::{CryptoProvider, JwkUtils, JwtVerifier};
    use jsonwebtoken::errors::{Error, ErrorKind};
    use jsonwebtoken::jwk::ThumbprintHash;
    use jsonwebtoken::{Algorithm, DecodingKey};
    use sha2::{Digest, Sha256, Sha384, Sha512};
    use signature::Verifier;

    static PROVIDER: CryptoProvider = CryptoProvider {
        // The edge only verifies; signing is the issuer's job.
        signer_factory: |_, _| Err(ErrorKind::InvalidAlgorithm.into()),
        verifier_factory: new_verifier,
        jwk_utils: JwkUtils {
            extract_rsa_public_key_components: |_| Err(ErrorKind::InvalidAlgorithm.into()),
            extract_ec_public_key_coordinates: |_, _| Err(ErrorKind::InvalidAlgorithm.into()),
            compute_digest: |data, hash| match hash {
                ThumbprintHash::SHA256 => Sha256::digest(data).to_vec(),
                ThumbprintHash::SHA384 => Sha384::digest(data).to_vec(),
                ThumbprintHash::SHA512 => Sha512::digest(data).to_vec(),
            },
        },
    };

    pub fn install() {
        static ONCE: Once = Once::new();
        // Another provider installed first (a host linking the full one) is just as good.
        ONCE.call_once(|| {
            let _ = PROVIDER.install_default();
        });
    }

    fn new_verifier(alg: &Algorithm, key: &DecodingKey) -> Result<Box<dyn JwtVerifier>, Error> {
        match alg {
            Algorithm::HS256 | Algorithm::HS384 | Algorithm::HS512 => Ok(Box::new(HmacVerifier {
                alg: *alg,
                secret: key.try_get_hmac_secret()?.to_vec(),
            })),
            #[cfg(feature = "jwt-es256")]
            Algorithm::ES256 => Ok(Box::new(Es256Verifier(
                p256::ecdsa::VerifyingKey::from_sec1_bytes(key.as_bytes())
                    .map_err(|_| ErrorKind::InvalidEcdsaKey)?,
            ))),
            _ => Err(ErrorKind::InvalidAlgorithm.into()),
        }
    }

    struct HmacVerifier {
        alg: Algorithm,
        secret: Vec<u8>,
    }

    fn check_mac<M: Mac + hmac::digest::KeyInit>(
        secret: &[u8],
        msg: &[u8],
        tag: &[u8],
    ) -> Result<(), signature::Error> {
        let mut mac = <M as hmac::digest::KeyInit>::new_from_slice(secret)
            .map_err(|_| signature::Error::new())?;
        mac.update(msg);
        mac.verify_slice(tag).map_err(|_| signature::Error::new())
    }

    impl Verifier<Vec<u8>> for HmacVerifier {
        fn verify(&self, msg: &[u8], tag: &Vec<u8>) -> Result<(), signature::Error> {
            match self.alg {
                Algorithm::HS256 => check_mac::<Hmac<Sha256>>(&self.secret, msg, tag),
                Algorithm::HS384 => check_mac::<Hmac<Sha384>>(&self.secret, msg, tag),
                Algorithm::HS512 => check_mac::<Hmac<Sha512>>(&self.secret, msg, tag),
                _ => Err(signature::Error::new()),
            }
        }
    }

    impl JwtVerifier for HmacVerifier {
        fn algorithm(&self) -> Algorithm {
            self.alg
        }
    }

    #[cfg(feature = "jwt-es256")]
    struct Es256Verifier(p256::ecdsa::VerifyingKey);

    #[cfg(feature = "jwt-es256")]
    impl Verifier<Vec<u8>> for Es256Verifier {
        fn verify(&self, msg: &[u8], sig: &Vec<u8>) -> Result<(), signature::Error> {
            let sig = p256::ecdsa::Signature::from_slice(sig)?;
            self.0.verify(msg, &sig)
        }
    }

    #[cfg(feature = "jwt-es256")]
    impl JwtVerifier for Es256Verifier {
        fn algorithm(&self) -> Algorithm {
            Algorithm::ES256
        }
    }
}

/// The trimmed provider against tokens the full one signed (`edge-emulator token`, demo keys).
/// Run with `cargo test -p edge-worker --no-default-features --features jwt-es256 --lib
/// auth::crypto` (CI does); with the default features these check the full provider instead.
#[cfg(test)]
mod tests {
    use super::*;
    use jsonwebtoken::DecodingKey;

    const HS256: &str = "eyJ0eXAiOiJKV1QiLCJhbGciOiJIUzI1NiIsImtpZCI6ImRlbW8taHMyNTYifQ.eyJhdWQiOiJlZGdlLWRlbW8iLCJleHAiOjE3OTU2MTcyODIsImlhdCI6MTc5NTYxNzIyMiwiaXNzIjoiaHR0cHM6Ly9kZW1vLmVkZ2UuZXhhbXBsZSIsInN1YiI6ImNyeXB0by10ZXN0In0.uClCk9wYMBiUptIn68tPvugbr63Mtnfpw4Qpmc0G7Yw";
    const ES256: &str = "eyJ0eXAiOiJKV1QiLCJhbGciOiJFUzI1NiIsImtpZCI6ImRlbW8tZXMyNTYifQ.eyJhdWQiOiJlZGdlLWRlbW8iLCJleHAiOjE3OTU2MTcyODIsImlhdCI6MTc5NTYxNzIyMiwiaXNzIjoiaHR0cHM6Ly9kZW1vLmVkZ2UuZXhhbXBsZSIsInN1YiI6ImNyeXB0by10ZXN0In0.cxkA77jS5MLEvdd19GOIIDdwk0rpGIslj09KZplhQZXRX35A5ulPevUDltbQdlzsyJIEQmH4_wSd2kbVdt2tRA";
    const SECRET: &[u8] = b"edge-demo-secret-change-me-0123456789";

    fn verify(token: &str, key: &DecodingKey, alg: Algorithm) -> bool {
        install();
        let (message, signature) = token.rsplit_once('.').unwrap();
        jsonwebtoken::crypto::verify(signature, message.as_bytes(), key, alg).unwrap_or(false)
    }

    fn flipped(token: &str) -> String {
        let mut bytes = token.as_bytes().to_vec();
        let at = bytes.len() - 5;
        bytes[at] = if bytes[at] == b'A' { b'B' } else { b'A' };
        String::from_utf8(bytes).unwrap()
    }

    #[test]
    fn hmac_tokens_verify_and_tampering_fails() {
        let key = DecodingKey::from_secret(SECRET);
        assert!(verify(HS256, &key, Algorithm::HS256));
        assert!(!verify(&flipped(HS256), &key, Algorithm::HS256));
        let other = DecodingKey::from_secret(b"another-secret-of-at-least-32-bytes!!");
        assert!(!verify(HS256, &other, Algorithm::HS256));
    }

    #[test]
    fn es256_tokens_verify_when_compiled_in() {
        let key = crate::auth::keys::ec_pem_key(include_bytes!("demo/es256-public.pem")).unwrap();
        assert_eq!(
            supported(Algorithm::ES256),
            verify(ES256, &key, Algorithm::ES256)
        );
        assert!(!verify(&flipped(ES256), &key, Algorithm::ES256));
    }

    #[test]
    fn ec_pem_keys_that_are_not_p256_public_keys_are_refused() {
        use crate::auth::keys::ec_pem_key;
        assert!(ec_pem_key(b"not a pem").is_err());
        assert!(
            ec_pem_key(b"-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n").is_err()
        );
        assert!(ec_pem_key(&[0xff, 0xfe]).is_err());
    }

    #[test]
    fn what_is_left_out_is_refused_not_panicking() {
        let key = crate::auth::keys::ec_pem_key(include_bytes!("demo/es256-public.pem")).unwrap();
        // An ES384 check of the ES256 token: unsupported or wrong curve, never true.
        assert!(!verify(ES256, &key, Algorithm::ES384));
        assert_eq!(
            supported(Algorithm::RS256),
            cfg!(feature = "jwt-all-algorithms")
        );
    }
}
