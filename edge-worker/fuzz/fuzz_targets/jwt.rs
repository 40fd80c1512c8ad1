//! JWTs (RFC 7515, RFC 7519, RFC 8725) and Bearer credentials (RFC 6750) through the verifier's
//! entry points: `bearer_token`, `parse_header`, `Verifier::verify`, `check`, and the auth gate
//! `admit` with an in-memory platform. Arbitrary input must give a typed error, never a panic;
//! a token we did not sign never verifies; a verified token is never expired.
//!
//! Input: the first byte picks a mode:
//! 0. the rest is a token (and an Authorization value);
//! 1. `header JSON \n claims JSON`, signed HS256 with the demo secret;
//! 2. claims JSON under a fixed `{"alg":"HS256","kid":"hs"}` header, signed;
//! 3. claims JSON straight to `check`.
//!
//! Run: `edge-worker/fuzz/run.sh jwt 600` (stable), or `cargo +nightly fuzz run jwt`.

#![no_main]

use std::sync::{Arc, OnceLock};
use std::time::{Duration, SystemTime};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use edge_worker::auth::{
    admit, bearer_token, check, parse_header, AuthConfig, AuthError, AuthPolicy, Expectations,
    KeyConfig, KeySet, Verifier,
};
use edge_worker::ready::now_or_never;
use edge_worker::testing::MemoryPlatform;
use edge_worker::Body;
use http::{HeaderMap, HeaderValue, Request, StatusCode};
use jsonwebtoken::{Algorithm, EncodingKey};
use libfuzzer_sys::fuzz_target;
use serde_json::{json, Map, Value};

const SECRET: &str = "edge-demo-secret-change-me-0123456789";
const NOW: u64 = 1_795_564_800;

fn now() -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_secs(NOW)
}

fn keys() -> Value {
    json!([
        {"kid": "hs", "alg": "HS256", "secret": SECRET},
        {"kid": "es", "alg": "ES256", "pem": include_str!("../../src/auth/demo/es256-public.pem")},
        {"kid": "rs", "alg": "RS256", "pem": include_str!("../../src/auth/demo/rs256-public.pem")},
        {"kid": "ed", "alg": "EdDSA", "pem": include_str!("../../src/auth/demo/ed25519-public.pem")},
    ])
}

fn verifier() -> &'static Verifier {
    static VERIFIER: OnceLock<Verifier> = OnceLock::new();
    VERIFIER.get_or_init(|| {
        let configs: Vec<KeyConfig> = serde_json::from_value(keys()).unwrap();
        let keys = KeySet::from_configs(&configs);
        keys.check_all().expect("the demo keys parse");
        Verifier::new(keys)
    })
}

fn policy() -> Arc<AuthPolicy> {
    static POLICY: OnceLock<Arc<AuthPolicy>> = OnceLock::new();
    POLICY
        .get_or_init(|| {
            let config: AuthConfig = serde_json::from_value(json!({
                "realm": "shop",
                "keys": keys(),
                "routes": [
                    {"path": "/api/users/*", "mode": "required", "issuer": "https://issuer.example", "audience": "edge"},
                    {"path": "/api/feed", "mode": "optional"},
                    {"path": "/api/typed", "mode": "required", "typ": "at+jwt"}
                ],
                "forward": [{"claim": "sub", "header": "x-auth-sub"}, {"claim": "scope", "header": "x-auth-scope"}]
            }))
            .unwrap();
            let policy = config.build().unwrap();
            policy.check_keys().unwrap();
            Arc::new(policy)
        })
        .clone()
}

fn expectations(pick: u8) -> Expectations {
    match pick % 3 {
        0 => Expectations::default(),
        1 => Expectations {
            issuer: Some("https://issuer.example".into()),
            audience: Some("edge".into()),
            typ: None,
        },
        _ => Expectations {
            issuer: None,
            audience: None,
            typ: Some("at+jwt".into()),
        },
    }
}

fn sign(header: &[u8], claims: &[u8]) -> String {
    let message = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(header),
        URL_SAFE_NO_PAD.encode(claims)
    );
    let key = EncodingKey::from_secret(SECRET.as_bytes());
    let signature = jsonwebtoken::crypto::sign(message.as_bytes(), &key, Algorithm::HS256)
        .expect("HS256 signs");
    format!("{message}.{signature}")
}

/// A token through every entry point; `ours`: whether we signed it.
fn verify_all(token: &str, pick: u8, ours: bool) {
    let leeway = verifier().leeway.as_secs();
    let _ = parse_header(token);
    for expect in [expectations(pick), expectations(pick.wrapping_add(1))] {
        match verifier().verify(token, &expect, now()) {
            Ok(claims) => {
                assert!(ours, "a token we did not sign verified: {token:?}");
                assert!(
                    claims.exp.saturating_add(leeway) > NOW,
                    "expired token verified"
                );
                let header = parse_header(token).expect("a verified token has a good header");
                assert_eq!(header.alg, Algorithm::HS256);
            }
            Err(AuthError::InvalidToken(_)) => {}
            Err(other) => panic!("verify gave {other:?}"),
        }
    }
    let mut headers = HeaderMap::new();
    if let Ok(value) = HeaderValue::from_str(&format!("Bearer {token}")) {
        headers.insert("authorization", value);
        if let Ok(Some(got)) = bearer_token(&headers) {
            assert_eq!(got, token.trim());
        }
    }
    // Through the gate, on routes of each mode, against an in-memory platform.
    let policy = policy();
    let p = MemoryPlatform::answering(now(), Vec::new());
    for path in ["/api/users/1", "/api/feed", "/api/typed", "/public"] {
        let mut request = Request::new(Body::new());
        *request.uri_mut() = format!("https://shop.example{path}").parse().unwrap();
        request.headers_mut().extend(headers.clone());
        request
            .headers_mut()
            .insert("x-auth-sub", HeaderValue::from_static("spoofed"));
        for _ in 0..2 {
            // Twice: the second time from the verified-token cache.
            let mut request = clone_request(&request);
            match now_or_never(admit(&policy, &p, &mut request)).expect("ports never wait") {
                Ok(admitted) => {
                    assert_ne!(
                        request.headers().get("x-auth-sub").map(|v| v.as_bytes()),
                        Some(&b"spoofed"[..]),
                        "a client's identity header reached the origin"
                    );
                    if admitted.claims.is_some() {
                        assert!(ours, "the gate let a token we did not sign through");
                    }
                }
                Err(refused) => {
                    assert!(
                        [StatusCode::UNAUTHORIZED, StatusCode::BAD_REQUEST]
                            .contains(&refused.status()),
                        "refused with {}",
                        refused.status()
                    );
                }
            }
        }
    }
}

fn clone_request(request: &Request<Body>) -> Request<Body> {
    let mut copy = Request::new(request.body().clone());
    *copy.uri_mut() = request.uri().clone();
    *copy.headers_mut() = request.headers().clone();
    copy
}

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let pick = mode / 4;
    match mode % 4 {
        0 => {
            if let Ok(value) = HeaderValue::from_bytes(rest) {
                let mut headers = HeaderMap::new();
                headers.insert("authorization", value);
                match bearer_token(&headers) {
                    Ok(_) | Err(AuthError::InvalidRequest(_)) => {}
                    Err(other) => panic!("bearer_token gave {other:?}"),
                }
            }
            if let Ok(token) = std::str::from_utf8(rest) {
                verify_all(token, pick, false);
            }
        }
        1 => {
            let split = rest.iter().position(|b| *b == b'\n').unwrap_or(rest.len());
            let (header, claims) = (&rest[..split], rest.get(split + 1..).unwrap_or_default());
            verify_all(&sign(header, claims), pick, true);
        }
        2 => {
            let header: &[u8] = match pick % 3 {
                0 => br#"{"alg":"HS256","kid":"hs"}"#,
                1 => br#"{"alg":"HS256","kid":"hs","typ":"at+jwt"}"#,
                _ => br#"{"alg":"HS256","kid":"hs","typ":"JWT"}"#,
            };
            verify_all(&sign(header, rest), pick, true);
        }
        _ => {
            let Ok(claims) = serde_json::from_slice::<Map<String, Value>>(rest) else {
                return;
            };
            let typ = ["JWT", "at+jwt", "application/at+JWT"][usize::from(pick % 3)];
            for leeway in [0, 30, 300, u64::MAX] {
                match check(
                    claims.clone(),
                    Some(typ),
                    &expectations(pick),
                    now(),
                    Duration::from_secs(leeway),
                ) {
                    Ok(verified) => assert!(verified.exp.saturating_add(300) > NOW),
                    Err(AuthError::InvalidToken(_)) => {}
                    Err(other) => panic!("check gave {other:?}"),
                }
            }
        }
    }
});
