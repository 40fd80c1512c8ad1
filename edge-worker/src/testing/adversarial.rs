//! Adversarial tokens with expected verdicts (RFC 7515, RFC 7519, RFC 8725), for the
//! verifier's unit tests, the auth benches and the end-to-end test through the wasm guest.
//! Keys: the demo keys in `auth/demo/`, with kids `hs`, `es`, `rs`, `ed`; expected issuer
//! `https://issuer.example`, audience `edge`; `now` is the verifier's clock in Unix seconds.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use jsonwebtoken::{crypto, Algorithm, EncodingKey};

pub const SECRET: &str = "edge-demo-secret-change-me-0123456789";
pub const ES256_PRIVATE: &str = include_str!("../auth/demo/es256-private.pem");
pub const ES256_PUBLIC: &str = include_str!("../auth/demo/es256-public.pem");
pub const RS256_PRIVATE: &str = include_str!("../auth/demo/rs256-private.pem");
pub const RS256_PUBLIC: &str = include_str!("../auth/demo/rs256-public.pem");
pub const ED_PRIVATE: &str = include_str!("../auth/demo/ed25519-private.pem");
pub const ED_PUBLIC: &str = include_str!("../auth/demo/ed25519-public.pem");

pub fn b64(text: &str) -> String {
    URL_SAFE_NO_PAD.encode(text)
}

/// Signs `header` and `claims` (raw JSON text) with `alg` and `key`.
pub fn signed(header: &str, claims: &str, alg: Algorithm, key: &EncodingKey) -> String {
    let message = format!("{}.{}", b64(header), b64(claims));
    let signature = crypto::sign(message.as_bytes(), key, alg).unwrap();
    format!("{message}.{signature}")
}

pub fn hs_key() -> EncodingKey {
    EncodingKey::from_secret(SECRET.as_bytes())
}

pub fn good_claims(now: u64) -> String {
    format!(
        r#"{{"sub":"user-1","iss":"https://issuer.example","aud":"edge","exp":{},"iat":{}}}"#,
        now + 600,
        now - 10
    )
}

pub fn hs(header: &str, claims: &str) -> String {
    signed(header, claims, Algorithm::HS256, &hs_key())
}

pub const HS_HEADER: &str = r#"{"alg":"HS256","kid":"hs","typ":"JWT"}"#;

#[derive(Debug, PartialEq)]
pub enum Verdict {
    Accept,
    /// Refused with a description containing this text.
    Refuse(&'static str),
}
pub use Verdict::*;

/// The table's keys, as the `keys` list of an auth configuration.
pub fn keys_config() -> serde_json::Value {
    serde_json::json!([
        {"kid": "hs", "alg": "HS256", "secret": SECRET},
        {"kid": "es", "alg": "ES256", "pem": ES256_PUBLIC},
        {"kid": "rs", "alg": "RS256", "pem": RS256_PUBLIC},
        {"kid": "ed", "alg": "EdDSA", "pem": ED_PUBLIC},
    ])
}

/// One valid token per algorithm for `now`, signed with the demo keys: (alg, token).
pub fn valid_tokens(now: u64) -> Vec<(&'static str, String)> {
    let good = good_claims(now);
    let sign = |name: &'static str, kid: &str, alg, key: EncodingKey| {
        let header = format!(r#"{{"alg":"{name}","kid":"{kid}"}}"#);
        (name, signed(&header, &good, alg, &key))
    };
    vec![
        sign("HS256", "hs", Algorithm::HS256, hs_key()),
        sign(
            "ES256",
            "es",
            Algorithm::ES256,
            EncodingKey::from_ec_pem(ES256_PRIVATE.as_bytes()).unwrap(),
        ),
        sign(
            "RS256",
            "rs",
            Algorithm::RS256,
            EncodingKey::from_rsa_pem(RS256_PRIVATE.as_bytes()).unwrap(),
        ),
        sign(
            "EdDSA",
            "ed",
            Algorithm::EdDSA,
            EncodingKey::from_ed_pem(ED_PRIVATE.as_bytes()).unwrap(),
        ),
    ]
}

pub fn table(now: u64) -> Vec<(&'static str, String, Verdict)> {
    let good = good_claims(now);
    let valid_for = |alg: &str| {
        valid_tokens(now)
            .into_iter()
            .find(|(a, _)| *a == alg)
            .map(|(_, token)| token)
            .unwrap()
    };
    let valid = hs(HS_HEADER, &good);
    let parts: Vec<&str> = valid.split('.').collect();
    let claims_at = |field: &str| {
        format!(r#"{{"sub":"user-1","iss":"https://issuer.example","aud":"edge",{field}}}"#)
    };
    vec![
        ("HS256 valid", valid.clone(), Accept),
        ("ES256 valid", valid_for("ES256"), Accept),
        ("RS256 valid", valid_for("RS256"), Accept),
        ("EdDSA valid", valid_for("EdDSA"), Accept),
        (
            "aud as array containing ours",
            hs(
                HS_HEADER,
                &good.replace(r#""aud":"edge""#, r#""aud":["x","edge"]"#),
            ),
            Accept,
        ),
        (
            "exp expired within leeway",
            hs(HS_HEADER, &claims_at(&format!(r#""exp":{}"#, now - 20))),
            Accept,
        ),
        // RFC 8725 §3.1 / RFC 7515: algorithm choice and unsigned tokens.
        (
            "alg none",
            format!("{}.{}.", b64(r#"{"alg":"none","kid":"hs"}"#), b64(&good)),
            Refuse("alg none"),
        ),
        (
            "alg NONE",
            format!("{}.{}.", b64(r#"{"alg":"NONE"}"#), b64(&good)),
            Refuse("alg none"),
        ),
        (
            "RS public key used as HMAC secret",
            signed(
                r#"{"alg":"HS256","kid":"rs"}"#,
                &good,
                Algorithm::HS256,
                &EncodingKey::from_secret(RS256_PUBLIC.as_bytes()),
            ),
            Refuse("no key"),
        ),
        (
            "ES key with alg switched to HS256",
            signed(
                r#"{"alg":"HS256","kid":"es"}"#,
                &good,
                Algorithm::HS256,
                &hs_key(),
            ),
            Refuse("no key"),
        ),
        (
            "HS key with alg HS512",
            signed(
                r#"{"alg":"HS512","kid":"hs"}"#,
                &good,
                Algorithm::HS512,
                &hs_key(),
            ),
            Refuse("no key"),
        ),
        (
            "unknown alg",
            hs(r#"{"alg":"HS999","kid":"hs"}"#, &good),
            Refuse("unsupported alg"),
        ),
        ("no alg", hs(r#"{"kid":"hs"}"#, &good), Refuse("no alg")),
        // Signatures.
        (
            "stripped signature",
            format!("{}.{}.", parts[0], parts[1]),
            Refuse("no signature"),
        ),
        (
            "tampered payload",
            format!(
                "{}.{}.{}",
                parts[0],
                b64(&good.replace("user-1", "admin")),
                parts[2]
            ),
            Refuse("bad signature"),
        ),
        (
            "tampered header",
            format!(
                "{}.{}.{}",
                b64(r#"{"alg":"HS256","kid":"hs","typ":"XX"}"#),
                parts[1],
                parts[2]
            ),
            Refuse("bad signature"),
        ),
        (
            "signature of another token",
            format!(
                "{}.{}.{}",
                parts[0],
                parts[1],
                hs(HS_HEADER, "{}").split('.').nth(2).unwrap()
            ),
            Refuse("bad signature"),
        ),
        // Keys.
        (
            "unknown kid",
            hs(r#"{"alg":"HS256","kid":"other"}"#, &good),
            Refuse("no key"),
        ),
        (
            "kid with path characters",
            hs(r#"{"alg":"HS256","kid":"../../etc/passwd"}"#, &good),
            Refuse("no key"),
        ),
        (
            "kid with control characters",
            hs(r#"{"alg":"HS256","kid":"hs\u0000"}"#, &good),
            Refuse("unusable kid"),
        ),
        (
            "no kid when every key has one",
            hs(r#"{"alg":"HS256"}"#, &good),
            Refuse("no key"),
        ),
        // Header shape (RFC 7515 §4.1.11, duplicate members).
        (
            "crit with unknown extension",
            hs(
                r#"{"alg":"HS256","kid":"hs","crit":["exp"],"exp":1}"#,
                &good,
            ),
            Refuse("critical"),
        ),
        (
            "empty crit",
            hs(r#"{"alg":"HS256","kid":"hs","crit":[]}"#, &good),
            Refuse("critical"),
        ),
        (
            "duplicate alg member",
            hs(r#"{"alg":"none","kid":"hs","alg":"HS256"}"#, &good),
            Refuse("unique members"),
        ),
        (
            "header not JSON",
            format!("{}.{}.{}", b64("not json"), parts[1], parts[2]),
            Refuse("unique members"),
        ),
        (
            "header a JSON array",
            format!("{}.{}.{}", b64("[1]"), parts[1], parts[2]),
            Refuse("unique members"),
        ),
        (
            "huge header",
            hs(
                &format!(r#"{{"alg":"HS256","kid":"hs","x":"{}"}}"#, "a".repeat(9000)),
                &good,
            ),
            Refuse("longer than 8 KiB"),
        ),
        // Encoding.
        (
            "bad base64 characters",
            format!("{}.{}!.{}", parts[0], parts[1], parts[2]),
            Refuse("base64url"),
        ),
        (
            "padded base64",
            format!("{}=.{}.{}", parts[0], parts[1], parts[2]),
            Refuse("base64url"),
        ),
        (
            "two segments",
            format!("{}.{}", parts[0], parts[1]),
            Refuse("three"),
        ),
        (
            "four segments",
            format!("{valid}.{}", parts[2]),
            Refuse("three"),
        ),
        ("empty token", String::new(), Refuse("three")),
        (
            "claims not JSON",
            hs(HS_HEADER, "not json"),
            Refuse("not a JSON object"),
        ),
        (
            "nested-JSON bomb in claims",
            hs(
                HS_HEADER,
                &format!(
                    r#"{{"exp":{},"x":{}{}}}"#,
                    now + 60,
                    "[".repeat(4000),
                    "]".repeat(4000)
                ),
            ),
            Refuse("longer than 8 KiB"),
        ),
        (
            "nested-JSON bomb under the size limit",
            hs(
                HS_HEADER,
                &format!(
                    r#"{{"exp":{},"x":{}{}}}"#,
                    now + 60,
                    "[".repeat(2000),
                    "]".repeat(2000)
                ),
            ),
            Refuse("not a JSON object"),
        ),
        // Claims (RFC 7519 §4.1).
        (
            "expired",
            hs(HS_HEADER, &claims_at(&format!(r#""exp":{}"#, now - 31))),
            Refuse("expired"),
        ),
        (
            "no exp",
            hs(HS_HEADER, &claims_at(r#""iat":1"#)),
            Refuse("no exp"),
        ),
        (
            "exp as string",
            hs(HS_HEADER, &claims_at(&format!(r#""exp":"{}""#, now + 60))),
            Refuse("NumericDate"),
        ),
        (
            "exp negative",
            hs(HS_HEADER, &claims_at(r#""exp":-5"#)),
            Refuse("NumericDate"),
        ),
        (
            "not yet valid",
            hs(
                HS_HEADER,
                &claims_at(&format!(r#""exp":{},"nbf":{}"#, now + 600, now + 120)),
            ),
            Refuse("not valid yet"),
        ),
        (
            "issued in the future",
            hs(
                HS_HEADER,
                &claims_at(&format!(r#""exp":{},"iat":{}"#, now + 600, now + 120)),
            ),
            Refuse("future"),
        ),
        (
            "wrong issuer",
            hs(
                HS_HEADER,
                &good.replace("https://issuer.example", "https://evil.example"),
            ),
            Refuse("issuer"),
        ),
        (
            "wrong audience",
            hs(
                HS_HEADER,
                &good.replace(r#""aud":"edge""#, r#""aud":"billing""#),
            ),
            Refuse("audience"),
        ),
        (
            "no audience",
            hs(HS_HEADER, &good.replace(r#""aud":"edge","#, "")),
            Refuse("audience"),
        ),
        (
            "sub not a string",
            hs(HS_HEADER, &good.replace(r#""sub":"user-1""#, r#""sub":7"#)),
            Refuse("sub"),
        ),
    ]
}
