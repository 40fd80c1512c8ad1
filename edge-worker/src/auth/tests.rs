//! Adversarial tokens with expected verdicts (RFC 7515, RFC 7519, RFC 8725, RFC 6750).

use std::time::{Duration, SystemTime};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use http::HeaderValue;
use jsonwebtoken::{crypto, Algorithm, EncodingKey};
use proptest::prelude::*;

use super::*;

const SECRET: &str = "edge-demo-secret-change-me-0123456789";
const ES256_PRIVATE: &str = include_str!("demo/es256-private.pem");
const ES256_PUBLIC: &str = include_str!("demo/es256-public.pem");
const RS256_PRIVATE: &str = include_str!("demo/rs256-private.pem");
const RS256_PUBLIC: &str = include_str!("demo/rs256-public.pem");
const ED_PRIVATE: &str = include_str!("demo/ed25519-private.pem");
const ED_PUBLIC: &str = include_str!("demo/ed25519-public.pem");

/// 2026-11-25T00:00:00Z
const NOW: u64 = 1_795_564_800;

fn now() -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_secs(NOW)
}

fn verifier() -> Verifier {
    let key = |kid: &str, alg, secret: Option<&str>, pem: Option<&str>| KeyConfig {
        kid: Some(kid.to_string()),
        alg,
        secret: secret.map(str::to_string),
        pem: pem.map(str::to_string),
        jwk: None,
    };
    let configs = [
        key("hs", Algorithm::HS256, Some(SECRET), None),
        key("es", Algorithm::ES256, None, Some(ES256_PUBLIC)),
        key("rs", Algorithm::RS256, None, Some(RS256_PUBLIC)),
        key("ed", Algorithm::EdDSA, None, Some(ED_PUBLIC)),
    ];
    Verifier::new(KeySet::from_configs(&configs).unwrap())
}

fn expectations() -> Expectations {
    Expectations {
        issuer: Some("https://issuer.example".into()),
        audience: Some("edge".into()),
        typ: None,
    }
}

fn b64(text: &str) -> String {
    URL_SAFE_NO_PAD.encode(text)
}

/// Signs `header` and `claims` (raw JSON text) with `alg` and `key`.
fn signed(header: &str, claims: &str, alg: Algorithm, key: &EncodingKey) -> String {
    let message = format!("{}.{}", b64(header), b64(claims));
    let signature = crypto::sign(message.as_bytes(), key, alg).unwrap();
    format!("{message}.{signature}")
}

fn hs_key() -> EncodingKey {
    EncodingKey::from_secret(SECRET.as_bytes())
}

fn good_claims() -> String {
    format!(
        r#"{{"sub":"user-1","iss":"https://issuer.example","aud":"edge","exp":{},"iat":{}}}"#,
        NOW + 600,
        NOW - 10
    )
}

fn hs(header: &str, claims: &str) -> String {
    signed(header, claims, Algorithm::HS256, &hs_key())
}

const HS_HEADER: &str = r#"{"alg":"HS256","kid":"hs","typ":"JWT"}"#;

#[derive(Debug, PartialEq)]
enum Verdict {
    Accept,
    /// Refused with a description containing this text.
    Refuse(&'static str),
}
use Verdict::*;

fn table() -> Vec<(&'static str, String, Verdict)> {
    let good = good_claims();
    let es = EncodingKey::from_ec_pem(ES256_PRIVATE.as_bytes()).unwrap();
    let rs = EncodingKey::from_rsa_pem(RS256_PRIVATE.as_bytes()).unwrap();
    let ed = EncodingKey::from_ed_pem(ED_PRIVATE.as_bytes()).unwrap();
    let valid = hs(HS_HEADER, &good);
    let parts: Vec<&str> = valid.split('.').collect();
    let claims_at = |field: &str| {
        format!(r#"{{"sub":"user-1","iss":"https://issuer.example","aud":"edge",{field}}}"#)
    };
    vec![
        ("HS256 valid", valid.clone(), Accept),
        (
            "ES256 valid",
            signed(
                r#"{"alg":"ES256","kid":"es"}"#,
                &good,
                Algorithm::ES256,
                &es,
            ),
            Accept,
        ),
        (
            "RS256 valid",
            signed(
                r#"{"alg":"RS256","kid":"rs"}"#,
                &good,
                Algorithm::RS256,
                &rs,
            ),
            Accept,
        ),
        (
            "EdDSA valid",
            signed(
                r#"{"alg":"EdDSA","kid":"ed"}"#,
                &good,
                Algorithm::EdDSA,
                &ed,
            ),
            Accept,
        ),
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
            hs(HS_HEADER, &claims_at(&format!(r#""exp":{}"#, NOW - 20))),
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
                    NOW + 60,
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
                    NOW + 60,
                    "[".repeat(2000),
                    "]".repeat(2000)
                ),
            ),
            Refuse("not a JSON object"),
        ),
        // Claims (RFC 7519 §4.1).
        (
            "expired",
            hs(HS_HEADER, &claims_at(&format!(r#""exp":{}"#, NOW - 31))),
            Refuse("expired"),
        ),
        (
            "no exp",
            hs(HS_HEADER, &claims_at(r#""iat":1"#)),
            Refuse("no exp"),
        ),
        (
            "exp as string",
            hs(HS_HEADER, &claims_at(&format!(r#""exp":"{}""#, NOW + 60))),
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
                &claims_at(&format!(r#""exp":{},"nbf":{}"#, NOW + 600, NOW + 120)),
            ),
            Refuse("not valid yet"),
        ),
        (
            "issued in the future",
            hs(
                HS_HEADER,
                &claims_at(&format!(r#""exp":{},"iat":{}"#, NOW + 600, NOW + 120)),
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

#[test]
fn adversarial_tokens_get_the_expected_verdicts() {
    let verifier = verifier();
    let cases = table();
    assert!(cases.len() >= 30);
    for (name, token, expected) in cases {
        let got = verifier.verify(&token, &expectations(), now());
        match (&expected, &got) {
            (Accept, Ok(claims)) => assert_eq!(claims.sub.as_deref(), Some("user-1"), "{name}"),
            (Refuse(why), Err(AuthError::InvalidToken(description))) => {
                assert!(
                    description.contains(why),
                    "{name}: {description:?} lacks {why:?}"
                )
            }
            _ => panic!("{name}: expected {expected:?}, got {got:?}"),
        }
    }
}

#[test]
fn a_token_with_an_aud_is_refused_where_no_audience_is_expected() {
    let token = hs(HS_HEADER, &good_claims());
    let open = Expectations::default();
    assert_eq!(
        verifier().verify(&token, &open, now()),
        Err(AuthError::invalid("token is meant for another audience"))
    );
}

#[test]
fn typ_is_checked_when_configured() {
    let expect = Expectations {
        typ: Some("at+jwt".into()),
        ..expectations()
    };
    let at = hs(
        r#"{"alg":"HS256","kid":"hs","typ":"application/at+JWT"}"#,
        &good_claims(),
    );
    assert!(verifier().verify(&at, &expect, now()).is_ok());
    let plain = hs(HS_HEADER, &good_claims());
    assert!(verifier().verify(&plain, &expect, now()).is_err());
}

#[test]
fn keys_are_pinned_and_checked_at_configuration() {
    let config = |alg, secret: Option<&str>, pem: Option<&str>| KeyConfig {
        kid: None,
        alg,
        secret: secret.map(str::to_string),
        pem: pem.map(str::to_string),
        jwk: None,
    };
    assert!(PinnedKey::from_config(&config(Algorithm::HS256, Some("short"), None)).is_err());
    assert!(PinnedKey::from_config(&config(Algorithm::RS256, Some(SECRET), None)).is_err());
    assert!(PinnedKey::from_config(&config(Algorithm::ES256, None, Some(RS256_PUBLIC))).is_err());
    assert!(
        PinnedKey::from_config(&config(Algorithm::HS256, Some(SECRET), Some(ES256_PUBLIC)))
            .is_err()
    );
    let printed = format!(
        "{:?}",
        PinnedKey::from_config(&config(Algorithm::HS256, Some(SECRET), None)).unwrap()
    );
    assert!(!printed.contains(SECRET), "{printed}");
}

fn authorization(value: &str) -> HeaderMap {
    let mut headers = HeaderMap::new();
    headers.insert(header::AUTHORIZATION, HeaderValue::from_str(value).unwrap());
    headers
}

#[test]
fn rfc6750_2_1_authorization_field_syntax() {
    assert_eq!(bearer_token(&HeaderMap::new()), Ok(None));
    assert_eq!(
        bearer_token(&authorization("Bearer abc.def.ghi")),
        Ok(Some("abc.def.ghi"))
    );
    assert_eq!(
        bearer_token(&authorization("bearer abc")),
        Ok(Some("abc")),
        "scheme is case-insensitive"
    );
    assert_eq!(
        bearer_token(&authorization("Bearer   abc")),
        Ok(Some("abc"))
    );
    assert_eq!(
        bearer_token(&authorization("  Bearer abc  ")),
        Ok(Some("abc"))
    );
    for bad in [
        "Bearer",
        "Bearer ",
        "Basic dXNlcjpwYXNz",
        "Bearer a b",
        "Bearer a,b",
        "Bearerabc",
    ] {
        assert!(
            matches!(
                bearer_token(&authorization(bad)),
                Err(AuthError::InvalidRequest(_))
            ),
            "{bad:?}"
        );
    }
    let mut two = authorization("Bearer a");
    two.append(header::AUTHORIZATION, HeaderValue::from_static("Bearer b"));
    assert!(bearer_token(&two).is_err());
}

#[test]
fn rfc6750_3_error_responses() {
    let missing = AuthError::Missing.to_response("edge");
    assert_eq!(missing.status(), 401);
    assert_eq!(
        missing.headers()["www-authenticate"],
        "Bearer realm=\"edge\""
    );
    let invalid = AuthError::invalid("token expired").to_response("edge");
    assert_eq!(invalid.status(), 401);
    assert_eq!(
        invalid.headers()["www-authenticate"],
        "Bearer realm=\"edge\", error=\"invalid_token\", error_description=\"token expired\""
    );
    let request = AuthError::InvalidRequest("x\"y".into()).to_response("edge");
    assert_eq!(request.status(), 400);
    assert!(request.headers()["www-authenticate"]
        .to_str()
        .unwrap()
        .contains("error=\"invalid_request\""));
    let body: Value = serde_json::from_slice(invalid.body()).unwrap();
    assert_eq!(body["error"], "invalid_token");
}

proptest! {
    #[test]
    fn no_input_panics_the_verifier(token in "[A-Za-z0-9_.=-]{0,200}") {
        let _ = verifier().verify(&token, &expectations(), now());
    }

    #[test]
    fn no_header_json_panics_the_verifier(header in "\\PC{0,80}", claims in "\\PC{0,80}") {
        let _ = verifier().verify(&hs(&header, &claims), &expectations(), now());
    }
}

mod gate {
    use std::sync::Arc;

    use http::{Request, Response};

    use super::*;
    use crate::ready::now_or_never;
    use crate::test_platform::MemoryPlatform;
    use crate::{CacheTier, EdgeWorker};

    fn policy() -> Arc<AuthPolicy> {
        let config: AuthConfig = serde_json::from_value(serde_json::json!({
            "realm": "shop",
            "keys": [{"kid": "hs", "alg": "HS256", "secret": SECRET}],
            "routes": [
                {"path": "/api/users/*", "mode": "required", "issuer": "https://issuer.example", "audience": "edge"},
                {"path": "/api/feed", "mode": "optional", "issuer": "https://issuer.example", "audience": "edge"}
            ],
            "forward": [{"claim": "sub", "header": "x-auth-sub"}, {"claim": "scope", "header": "x-auth-scope"}]
        }))
        .unwrap();
        Arc::new(config.build().unwrap())
    }

    fn origin() -> MemoryPlatform {
        let p = MemoryPlatform::new(|_| {
            Ok(Response::builder()
                .header("cache-control", "private, max-age=60")
                .header("content-type", "application/json")
                .body(b"{}".to_vec())
                .unwrap())
        });
        p.now.set(now());
        p
    }

    fn send(p: &MemoryPlatform, path: &str, headers: &[(&str, &str)]) -> Response<Body> {
        let mut request = Request::builder().uri(format!("http://shop.example{path}"));
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let worker = EdgeWorker::new(CacheTier::new("edge-test", true)).with_auth(policy());
        now_or_never(worker.handle(p, request.body(Vec::new()).unwrap()))
            .unwrap()
            .response
    }

    #[test]
    fn rejected_requests_never_reach_the_origin() {
        let p = origin();
        let expired = hs(HS_HEADER, &good_claims().replace(&(NOW + 600).to_string(), &(NOW - 100).to_string()));
        let cases = [
            (vec![], 401, "Bearer realm=\"shop\""),
            (vec![("authorization", "Basic dXNlcg==")], 400, "invalid_request"),
            (vec![("authorization", "Bearer not-a-jwt")], 401, "invalid_token"),
            (vec![("authorization", format!("Bearer {expired}").leak() as &str)], 401, "token expired"),
        ];
        for (headers, status, challenge) in cases {
            let response = send(&p, "/api/users/1", &headers);
            assert_eq!(response.status(), status, "{headers:?}");
            let www = response.headers()["www-authenticate"].to_str().unwrap();
            assert!(www.contains(challenge), "{www}");
        }
        assert_eq!(p.fetches(), 0);
    }

    #[test]
    fn a_verified_request_forwards_claims_not_the_token_nor_spoofed_headers() {
        let p = origin();
        let claims = good_claims().replace(r#""sub":"user-1""#, r#""sub":"user-1","scope":["read","write"]"#);
        let token = hs(HS_HEADER, &claims);
        let bearer = format!("Bearer {token}");
        let response = send(&p, "/api/users/1", &[("authorization", &bearer), ("x-auth-sub", "admin")]);
        assert_eq!(response.status(), 200);
        {
            let fetched = &p.fetched.borrow()[0];
            assert_eq!(fetched.headers()["x-auth-sub"], "user-1");
            assert_eq!(fetched.headers()["x-auth-scope"], "read write");
            assert!(fetched.headers().get("authorization").is_none());
        }

        // A public route: spoofed identity and the token are dropped too.
        send(&p, "/api/products/1", &[("authorization", &bearer), ("x-auth-sub", "admin")]);
        let fetched = &p.fetched.borrow()[1];
        assert!(fetched.headers().get("x-auth-sub").is_none());
        assert!(fetched.headers().get("authorization").is_none());
    }

    #[test]
    fn optional_routes_pass_anonymous_requests_and_check_tokens_sent() {
        let p = origin();
        assert_eq!(send(&p, "/api/feed", &[]).status(), 200);
        assert_eq!(send(&p, "/api/feed", &[("authorization", "Bearer x.y.z")]).status(), 401);
    }

    #[test]
    fn a_verified_token_is_remembered_until_it_expires() {
        let p = origin();
        let token = hs(HS_HEADER, &good_claims());
        let bearer = format!("Bearer {token}");
        assert_eq!(send(&p, "/api/users/1", &[("authorization", &bearer)]).status(), 200);
        let cached = p.cache.borrow().keys().filter(|k| k.starts_with("jwt:")).count();
        assert_eq!(cached, 1);
        // Time is still checked on a cached token: 600 s later it has expired.
        p.advance(600 + 31);
        assert_eq!(send(&p, "/api/users/1", &[("authorization", &bearer)]).status(), 401);
    }
}
