//! Adversarial tokens with expected verdicts (RFC 7515, RFC 7519, RFC 8725, RFC 6750).

use std::time::{Duration, SystemTime};

use http::HeaderValue;
use jsonwebtoken::Algorithm;
use proptest::prelude::*;

use super::*;

use crate::testing::adversarial::*;
use crate::{Body, ConfigError, WorkerError};

/// 2026-11-25T00:00:00Z
const NOW: u64 = 1_795_564_800;

fn now() -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_secs(NOW)
}

fn verifier() -> Verifier {
    let configs: Vec<KeyConfig> = serde_json::from_value(keys_config()).unwrap();
    Verifier::new(KeySet::from_configs(&configs))
}

fn expectations() -> Expectations {
    Expectations {
        issuer: Some("https://issuer.example".into()),
        audience: Some("edge".into()),
        typ: None,
    }
}

#[test]
fn adversarial_tokens_get_the_expected_verdicts() {
    let verifier = verifier();
    let cases = table(NOW);
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
    let token = hs(HS_HEADER, &good_claims(NOW));
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
        &good_claims(NOW),
    );
    assert!(verifier().verify(&at, &expect, now()).is_ok());
    let plain = hs(HS_HEADER, &good_claims(NOW));
    assert!(verifier().verify(&plain, &expect, now()).is_err());
}

#[test]
fn keys_are_pinned_and_checked_at_configuration() {
    let config = |alg, secret: Option<&str>, pem: Option<&str>| KeyConfig {
        kid: None,
        alg,
        secret: secret.map(str::to_string),
        secret_base64: None,
        pem: pem.map(str::to_string),
        jwk: None,
        jwks_url: None,
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
    // RFC 6750 §3.1: a Bearer credential with a malformed token is invalid_token (401).
    for bad in [
        "Bearer",
        "Bearer ",
        "Bearer a b",
        "Bearer a,b",
        "Bearer a\tb",
    ] {
        assert!(
            matches!(
                bearer_token(&authorization(bad)),
                Err(AuthError::InvalidToken(_))
            ),
            "{bad:?}"
        );
    }
    // Another scheme, or none, carries no Bearer credentials.
    for other in ["Basic dXNlcjpwYXNz", "Bearerabc", "abc", "Token abc"] {
        assert_eq!(bearer_token(&authorization(other)), Ok(None), "{other:?}");
    }
    let mut two = authorization("Bearer a");
    two.append(header::AUTHORIZATION, HeaderValue::from_static("Bearer b"));
    assert!(bearer_token(&two).is_err());
}

#[test]
fn rfc6750_3_error_responses() {
    let missing = WorkerError::auth("edge", AuthError::Missing).to_response();
    assert_eq!(missing.status(), 401);
    assert_eq!(
        missing.headers()["www-authenticate"],
        "Bearer realm=\"edge\""
    );
    let invalid = WorkerError::auth("edge", AuthError::invalid("token expired")).to_response();
    assert_eq!(invalid.status(), 401);
    assert_eq!(
        invalid.headers()["www-authenticate"],
        "Bearer realm=\"edge\", error=\"invalid_token\", error_description=\"token expired\""
    );
    let request = WorkerError::auth("edge", AuthError::InvalidRequest("x\"y".into())).to_response();
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
    use crate::testing::MemoryPlatform;
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
                .body(Body::from(b"{}".to_vec()))
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
        let worker = EdgeWorker::new(CacheTier::new(crate::hops::TierId::edge("test"), true))
            .with_auth(policy());
        now_or_never(worker.handle(p, request.body(Body::new()).unwrap()))
            .unwrap()
            .response
    }

    #[test]
    fn rejected_requests_never_reach_the_origin() {
        let p = origin();
        let expired = hs(
            HS_HEADER,
            &good_claims(NOW).replace(&(NOW + 600).to_string(), &(NOW - 100).to_string()),
        );
        let cases = [
            (vec![], 401, "Bearer realm=\"shop\""),
            // RFC 6750 §3.1: another scheme is no Bearer credential: a bare challenge.
            (
                vec![("authorization", "Basic dXNlcg==")],
                401,
                "Bearer realm=\"shop\"",
            ),
            (vec![("authorization", "Bearer a b")], 401, "invalid_token"),
            (
                vec![("authorization", "Bearer not-a-jwt")],
                401,
                "invalid_token",
            ),
            (
                vec![("authorization", format!("Bearer {expired}").leak() as &str)],
                401,
                "token expired",
            ),
        ];
        for (headers, status, challenge) in cases {
            let response = send(&p, "/api/users/1", &headers);
            assert_eq!(response.status(), status, "{headers:?}");
            let www = response.headers()["www-authenticate"].to_str().unwrap();
            assert!(www.contains(challenge), "{www}");
        }
        for disguised in ["/api/%75sers/1", "/api//users/1", "/api/x/../users/1"] {
            assert_eq!(send(&p, disguised, &[]).status(), 401, "{disguised}");
        }
        assert_eq!(p.fetches(), 0);
    }

    #[test]
    fn a_verified_request_forwards_claims_not_the_token_nor_spoofed_headers() {
        let p = origin();
        let claims = good_claims(NOW).replace(
            r#""sub":"user-1""#,
            r#""sub":"user-1","scope":["read","write"]"#,
        );
        let token = hs(HS_HEADER, &claims);
        let bearer = format!("Bearer {token}");
        let response = send(
            &p,
            "/api/users/1",
            &[("authorization", &bearer), ("x-auth-sub", "admin")],
        );
        assert_eq!(response.status(), 200);
        {
            let fetched = &p.fetched.borrow()[0];
            assert_eq!(fetched.headers()["x-auth-sub"], "user-1");
            assert_eq!(fetched.headers()["x-auth-scope"], "read write");
            // Kept for the tiers' RFC 9111 §3.5 decisions; the origin hop drops it.
            assert!(fetched.headers().get("authorization").is_some());
        }

        // A public route: spoofed identity and the token are dropped too.
        send(
            &p,
            "/api/products/1",
            &[("authorization", &bearer), ("x-auth-sub", "admin")],
        );
        let fetched = &p.fetched.borrow()[1];
        assert!(fetched.headers().get("x-auth-sub").is_none());
        assert!(fetched.headers().get("authorization").is_none());
    }

    #[test]
    fn private_responses_are_cached_per_subject_and_never_shared() {
        let p = MemoryPlatform::new(|request| {
            let sub = request.headers()["x-auth-sub"]
                .to_str()
                .unwrap()
                .to_string();
            Ok(Response::builder()
                .header("cache-control", "private, max-age=60")
                .header("content-type", "application/json")
                .body(Body::from(format!(r#"{{"owner":"{sub}"}}"#).into_bytes()))
                .unwrap())
        });
        p.now.set(now());
        let bearer = |sub: &str| {
            format!(
                "Bearer {}",
                hs(HS_HEADER, &good_claims(NOW).replace("user-1", sub))
            )
        };
        let (alice, bob) = (bearer("alice"), bearer("bob"));
        let first = send(&p, "/api/users/1", &[("authorization", &alice)]);
        assert_eq!(first.body(), br#"{"owner":"alice"}"#);
        assert_eq!(first.headers()["cf-cache-status"], "BYPASS");
        let again = send(&p, "/api/users/1", &[("authorization", &alice)]);
        assert_eq!(again.body(), br#"{"owner":"alice"}"#);
        assert_eq!(again.headers()["cf-cache-status"], "HIT");
        assert!(again.headers()["cache-status"]
            .to_str()
            .unwrap()
            .starts_with("edge-test-private; hit"));
        assert_eq!(p.fetches(), 1);
        let other = send(&p, "/api/users/1", &[("authorization", &bob)]);
        assert_eq!(
            other.body(),
            br#"{"owner":"bob"}"#,
            "bob never gets alice's body"
        );
        assert_eq!(p.fetches(), 2);
        // Expired after max-age: fetched again.
        p.advance(61);
        let expired = send(&p, "/api/users/1", &[("authorization", &alice)]);
        assert_eq!(expired.headers()["cf-cache-status"], "BYPASS");
        assert_eq!(p.fetches(), 3);
    }

    #[test]
    fn server_timing_reports_the_auth_hop_where_a_token_was_checked() {
        let p = origin();
        let timing = |response: &Response<Body>| {
            response
                .headers()
                .get("server-timing")
                .map(|v| v.to_str().unwrap().to_string())
        };
        let bearer = format!("Bearer {}", hs(HS_HEADER, &good_claims(NOW)));
        // Verified: first in the list (the clock did not move: no I/O on the way).
        let verified = send(&p, "/api/users/1", &[("authorization", &bearer)]);
        assert_eq!(verified.status(), 200);
        assert!(
            timing(&verified).is_some_and(|t| t.starts_with("auth;dur=0.0")),
            "{:?}",
            timing(&verified)
        );
        // Refused after looking at the token.
        let refused = send(&p, "/api/users/1", &[("authorization", "Bearer x.y.z")]);
        assert_eq!(refused.status(), 401);
        assert_eq!(timing(&refused).as_deref(), Some("auth;dur=0.0"));
        // No token to check, or a public route: no auth hop.
        let missing = send(&p, "/api/users/1", &[]);
        assert_eq!(missing.status(), 401);
        assert_eq!(timing(&missing), None);
        let public = send(&p, "/api/products/1", &[("authorization", &bearer)]);
        assert!(!timing(&public).unwrap_or_default().contains("auth"));
    }

    #[test]
    fn optional_routes_pass_anonymous_requests_and_check_tokens_sent() {
        let p = origin();
        assert_eq!(send(&p, "/api/feed", &[]).status(), 200);
        assert_eq!(
            send(&p, "/api/feed", &[("authorization", "Bearer x.y.z")]).status(),
            401
        );
    }

    #[test]
    fn a_verified_token_is_remembered_until_it_expires() {
        let p = origin();
        let token = hs(HS_HEADER, &good_claims(NOW));
        let bearer = format!("Bearer {token}");
        assert_eq!(
            send(&p, "/api/users/1", &[("authorization", &bearer)]).status(),
            200
        );
        let cached = p
            .cache
            .borrow()
            .keys()
            .filter(|k| k.starts_with("jwt:"))
            .count();
        assert_eq!(cached, 1);
        // Time is still checked on a cached token: 600 s later it has expired.
        p.advance(600 + 31);
        assert_eq!(
            send(&p, "/api/users/1", &[("authorization", &bearer)]).status(),
            401
        );
    }

    /// Regression (fuzz target `jwt`): a signed token whose `exp` is past what `SystemTime`
    /// can hold (here from `{"suss":"htts/edge","exp":1795566666666666664000}`) panicked
    /// with "overflow when adding duration to instant" when the gate computed how long to
    /// remember it. Such a date is now refused (401) on every platform, never a panic; the
    /// last date accepted is the end of year 9999 (`MAX_NUMERIC_DATE`).
    #[test]
    fn a_token_expiring_past_what_the_clock_holds_is_refused_not_a_panic() {
        for (exp, status) in [
            ("1795566666666666664000", 401),
            ("18446744073709551615", 401),
            ("1e300", 401),
            ("253402300800", 401),
            ("253402300799", 200),
        ] {
            let p = origin();
            let claims = format!(
                r#"{{"sub":"user-1","iss":"https://issuer.example","aud":"edge","exp":{exp}}}"#
            );
            let bearer = format!("Bearer {}", hs(HS_HEADER, &claims));
            for _ in 0..2 {
                let response = send(&p, "/api/users/1", &[("authorization", &bearer)]);
                assert_eq!(response.status(), status, "exp {exp}");
            }
        }
    }

    /// RFC 8259 §9 lets parsers limit nesting; ours is serde_json's (128 levels). A claim
    /// nested 64 deep, which any mainstream parser takes, is accepted; 200 deep is refused
    /// as a malformed token, never a crash.
    #[test]
    fn deeply_nested_unknown_claims_up_to_the_documented_limit() {
        for (depth, status) in [(64, 200), (200, 401)] {
            let p = origin();
            let nested = format!("{}1{}", "[".repeat(depth), "]".repeat(depth));
            let claims = format!(
                r#"{{"sub":"user-1","iss":"https://issuer.example","aud":"edge","exp":{},"x":{nested}}}"#,
                NOW + 600
            );
            let bearer = format!("Bearer {}", hs(HS_HEADER, &claims));
            let response = send(&p, "/api/users/1", &[("authorization", &bearer)]);
            assert_eq!(response.status(), status, "depth {depth}");
        }
    }

    /// A CORS preflight carries no credentials: it reaches the origin on a required route.
    #[test]
    fn a_cors_preflight_passes_without_a_token() {
        let p = origin();
        let preflight = Request::builder()
            .method("OPTIONS")
            .uri("https://shop.example/api/users/1")
            .header("origin", "https://app.example")
            .header("access-control-request-method", "GET")
            .body(Body::new())
            .unwrap();
        let worker = EdgeWorker::new(CacheTier::new(crate::hops::TierId::edge("test"), true))
            .with_auth(policy());
        let response = now_or_never(worker.handle(&p, preflight)).unwrap().response;
        assert_eq!(response.status(), 200);
        assert_eq!(p.fetches(), 1);
        // A plain OPTIONS is no preflight: it needs a token like any request.
        let plain = Request::builder()
            .method("OPTIONS")
            .uri("https://shop.example/api/users/1")
            .body(Body::new())
            .unwrap();
        let response = now_or_never(worker.handle(&p, plain)).unwrap().response;
        assert_eq!(response.status(), 401);
    }

    /// RFC 6750 §2: a token sent two ways is a malformed request (400 invalid_request).
    #[test]
    fn a_token_in_two_places_is_invalid_request() {
        let p = origin();
        let bearer = format!("Bearer {}", hs(HS_HEADER, &good_claims(NOW)));
        let response = send(
            &p,
            "/api/users/1?access_token=abc",
            &[("authorization", &bearer)],
        );
        assert_eq!(response.status(), 400);
        assert_eq!(p.fetches(), 0);
    }
}

mod jwks {
    use std::sync::Arc;

    use http::{Request, Response};

    use super::*;
    use crate::ready::now_or_never;
    use crate::testing::MemoryPlatform;
    use crate::{CacheTier, Deferred, EdgeWorker, FetchError, Outcome};
    use jsonwebtoken::EncodingKey;

    const JWKS_URL: &str = "https://keys.example/.well-known/jwks.json";
    const USER_URL: &str = "http://shop.example/api/users/1";

    fn policy() -> Arc<AuthPolicy> {
        let config: AuthConfig = serde_json::from_value(serde_json::json!({
            "keys": [{"alg": "ES256", "jwks_url": JWKS_URL}],
            "routes": [{"path": "/api/users/*", "mode": "required", "issuer": "https://issuer.example", "audience": "edge"}],
        }))
        .unwrap();
        let policy = config.build().unwrap();
        policy.check_keys().unwrap();
        Arc::new(policy)
    }

    /// Upstream: the JWKS (while `jwks_up`), and a user document.
    fn platform(jwks_up: bool) -> MemoryPlatform {
        let p = MemoryPlatform::new(move |request| {
            if request.uri().path() == "/.well-known/jwks.json" {
                if !jwks_up {
                    return Err(FetchError("connection refused".into()));
                }
                return Ok(Response::builder()
                    .header("cache-control", "max-age=300")
                    .body(Body::from(origin_stub::DEMO_JWKS.as_bytes().to_vec()))
                    .unwrap());
            }
            Ok(Response::builder()
                .header("cache-control", "private")
                .body(Body::from(b"{}".to_vec()))
                .unwrap())
        });
        p.now.set(now());
        p
    }

    fn token(kid: &str, sub: &str, now: u64) -> String {
        let key = EncodingKey::from_ec_pem(ES256_PRIVATE.as_bytes()).unwrap();
        let claims = good_claims(now).replace("user-1", sub);
        signed(
            &format!(r#"{{"alg":"ES256","kid":"{kid}"}}"#),
            &claims,
            Algorithm::ES256,
            &key,
        )
    }

    fn send(p: &MemoryPlatform, token: &str) -> Outcome {
        let request = Request::builder()
            .uri(USER_URL)
            .header("authorization", format!("Bearer {token}"))
            .body(Body::new())
            .unwrap();
        let worker = EdgeWorker::new(CacheTier::new(crate::hops::TierId::edge("test"), true))
            .with_auth(policy());
        now_or_never(worker.handle(p, request)).unwrap()
    }

    fn jwks_fetches(p: &MemoryPlatform) -> usize {
        p.fetched
            .borrow()
            .iter()
            .filter(|r| r.uri().path() == "/.well-known/jwks.json")
            .count()
    }

    fn clock(p: &MemoryPlatform) -> u64 {
        p.now
            .get()
            .duration_since(SystemTime::UNIX_EPOCH)
            .unwrap()
            .as_secs()
    }

    #[test]
    fn the_set_is_fetched_once_and_reused() {
        let p = platform(true);
        for sub in ["a", "b", "c"] {
            assert_eq!(
                send(&p, &token("demo-es256-jwks", sub, NOW))
                    .response
                    .status(),
                200,
                "{sub}"
            );
        }
        assert_eq!(jwks_fetches(&p), 1);
    }

    #[test]
    fn an_unknown_kid_refetches_at_most_once_per_cooldown() {
        let p = platform(true);
        send(&p, &token("demo-es256-jwks", "a", NOW));
        for sub in ["x", "y", "z"] {
            assert_eq!(
                send(&p, &token("rotated-away", sub, NOW)).response.status(),
                401
            );
        }
        assert_eq!(
            jwks_fetches(&p),
            2,
            "one refetch for the burst of unknown kids"
        );
        p.advance(KID_MISS_COOLDOWN.as_secs() + 1);
        send(&p, &token("rotated-away", "w", clock(&p)));
        assert_eq!(jwks_fetches(&p), 3);
    }

    #[test]
    fn refreshed_in_the_background_near_expiry_and_served_stale_when_the_endpoint_fails() {
        let p = platform(true);
        send(&p, &token("demo-es256-jwks", "a", NOW));
        // 80% into its 300 s lifetime: still used, and a refresh is scheduled.
        p.advance(250);
        let outcome = send(&p, &token("demo-es256-jwks", "b", clock(&p)));
        assert_eq!(outcome.response.status(), 200);
        assert!(outcome
            .deferred
            .iter()
            .any(|d| matches!(d, Deferred::RefreshJwks(url) if url == JWKS_URL)));

        // Expired and the endpoint is down: the stored set still verifies.
        p.advance(400);
        p.script(|request| {
            if request.uri().path() == "/.well-known/jwks.json" {
                Err(FetchError("connection refused".into()))
            } else {
                Ok(Response::builder()
                    .header("cache-control", "private")
                    .body(Body::from(b"{}".to_vec()))
                    .unwrap())
            }
        });
        let stale = send(&p, &token("demo-es256-jwks", "c", clock(&p)));
        assert_eq!(stale.response.status(), 200);
    }

    #[test]
    fn no_set_and_no_endpoint_fails_closed() {
        let p = platform(false);
        assert_eq!(
            send(&p, &token("demo-es256-jwks", "a", NOW))
                .response
                .status(),
            401
        );
    }

    #[test]
    fn a_jwks_key_that_names_another_alg_is_not_used() {
        let p = MemoryPlatform::new(|_| {
            Ok(Response::builder()
                .body(Body::from(
                    origin_stub::DEMO_JWKS
                        .replace("\"ES256\"", "\"ES384\"")
                        .into_bytes(),
                ))
                .unwrap())
        });
        p.now.set(now());
        assert_eq!(
            send(&p, &token("demo-es256-jwks", "a", NOW))
                .response
                .status(),
            401
        );
    }
}

/// HMAC keys are bytes (RFC 7518 §3.2, counted in bytes): as text, as base64 in either
/// alphabet, or as an `oct` JWK (RFC 7518 §6.4); all three verify the same token.
#[test]
fn hmac_keys_as_text_base64_or_oct_jwk() {
    use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
    use base64::Engine;
    let bytes: Vec<u8> = (0u8..40).map(|i| i.wrapping_mul(37) ^ 0xfb).collect();
    let key =
        |secret: Option<String>, secret_base64: Option<String>, jwk: Option<String>| KeyConfig {
            kid: None,
            alg: Algorithm::HS256,
            secret,
            secret_base64,
            pem: None,
            jwk,
            jwks_url: None,
        };
    let claims = serde_json::json!({"sub": "u", "exp": 4_000_000_000u64});
    let token = jsonwebtoken::encode(
        &jsonwebtoken::Header::new(Algorithm::HS256),
        &claims,
        &jsonwebtoken::EncodingKey::from_secret(&bytes),
    )
    .unwrap();
    let oct = format!(
        r#"{{"kty":"oct","k":"{}"}}"#,
        URL_SAFE_NO_PAD.encode(&bytes)
    );
    for config in [
        key(None, Some(STANDARD.encode(&bytes)), None),
        key(None, Some(URL_SAFE_NO_PAD.encode(&bytes)), None),
        key(None, None, Some(oct)),
    ] {
        let pinned = PinnedKey::from_config(&config).unwrap();
        let mut validation = jsonwebtoken::Validation::new(Algorithm::HS256);
        validation.validate_aud = false;
        jsonwebtoken::decode::<serde_json::Value>(&token, &pinned.key, &validation).unwrap();
    }
    // 31 random bytes are too short, however long their base64 text is (44 characters).
    let short = STANDARD.encode(&bytes[..31]);
    assert!(short.len() >= 32);
    assert!(matches!(
        PinnedKey::from_config(&key(None, Some(short), None)),
        Err(ConfigError::KeyShortSecret { .. })
    ));
    assert!(matches!(
        PinnedKey::from_config(&key(None, Some("not base64!".into()), None)),
        Err(ConfigError::KeyUnusable { .. })
    ));
    // Two sources for one key are refused.
    assert!(matches!(
        PinnedKey::from_config(&key(
            Some("x".repeat(32)),
            Some(STANDARD.encode(&bytes)),
            None
        )),
        Err(ConfigError::KeySource { .. })
    ));
}

#[test]
fn an_inline_jwk_key_verifies() {
    let set: serde_json::Value = serde_json::from_str(origin_stub::DEMO_JWKS).unwrap();
    let config = KeyConfig {
        kid: Some("es".into()),
        alg: Algorithm::ES256,
        secret: None,
        secret_base64: None,
        pem: None,
        jwk: Some(set["keys"][0].to_string()),
        jwks_url: None,
    };
    let verifier = Verifier::new(KeySet::from_configs(&[config]));
    verifier.keys.check_all().unwrap();
    let key = jsonwebtoken::EncodingKey::from_ec_pem(ES256_PRIVATE.as_bytes()).unwrap();
    let token = signed(
        r#"{"alg":"ES256","kid":"es"}"#,
        &good_claims(NOW),
        Algorithm::ES256,
        &key,
    );
    assert!(verifier.verify(&token, &expectations(), now()).is_ok());
}
