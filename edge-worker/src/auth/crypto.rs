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
