//! `edge-emulator token`: mints a token the default auth configuration accepts, signed with a
//! demo key, so that `/api/users/*` can be tried with curl.

use std::time::{Duration, SystemTime};

use jsonwebtoken::{encode, Algorithm, EncodingKey, Header};

/// The demo HS256 secret of `default-auth.toml`.
pub const DEMO_SECRET: &str = "edge-demo-secret-change-me-0123456789";
const DEMO_ES256_PRIVATE: &str = include_str!("../../edge-worker/src/auth/demo/es256-private.pem");
pub const DEMO_ISSUER: &str = "https://demo.edge.example";
pub const DEMO_AUDIENCE: &str = "edge-demo";

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum DemoAlg {
    Hs256,
    Es256,
    /// ES256 with the kid published in the origin's JWKS.
    Es256Jwks,
}

/// A signed token for `sub`, valid from `now` for `ttl`.
pub fn mint(
    alg: DemoAlg,
    sub: &str,
    scope: Option<&str>,
    now: SystemTime,
    ttl: Duration,
) -> anyhow::Result<String> {
    let iat = now.duration_since(SystemTime::UNIX_EPOCH)?.as_secs();
    let mut claims = serde_json::json!({
        "sub": sub,
        "iss": DEMO_ISSUER,
        "aud": DEMO_AUDIENCE,
        "iat": iat,
        "exp": iat + ttl.as_secs(),
    });
    if let Some(scope) = scope {
        claims["scope"] = scope.into();
    }
    let (header, key) = match alg {
        DemoAlg::Hs256 => (
            Header::new(Algorithm::HS256),
            EncodingKey::from_secret(DEMO_SECRET.as_bytes()),
        ),
        DemoAlg::Es256 | DemoAlg::Es256Jwks => (
            Header::new(Algorithm::ES256),
            EncodingKey::from_ec_pem(DEMO_ES256_PRIVATE.as_bytes())?,
        ),
    };
    let header = Header {
        kid: Some(
            match alg {
                DemoAlg::Hs256 => "demo-hs256",
                DemoAlg::Es256 => "demo-es256",
                DemoAlg::Es256Jwks => "demo-es256-jwks",
            }
            .to_string(),
        ),
        ..header
    };
    Ok(encode(&header, &claims, &key)?)
}
