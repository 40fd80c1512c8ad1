//! JWT verification end to end through the real binary and the wasm guest: the adversarial
//! token table, the origin never contacted for a rejected request, claims forwarded.

mod common;

use std::time::{SystemTime, UNIX_EPOCH};

use common::Emulator;
use edge_worker::testing::adversarial::{self, table, Verdict};

const USER: &str = "/api/users/7";

/// The adversarial table's keys and expectations, as an emulator auth file.
fn adversarial_config() -> String {
    let config = serde_json::json!({
        "realm": "test",
        "keys": adversarial::keys_config(),
        "routes": [{"path": "/api/users/*", "mode": "required", "issuer": "https://issuer.example", "audience": "edge"}],
        "forward": [{"claim": "sub", "header": "x-auth-sub"}],
    });
    toml::to_string(&config).expect("JSON objects are TOML tables")
}

/// Starts the emulator with the adversarial configuration; the file is removed on drop.
struct AuthFile(std::path::PathBuf);
impl Drop for AuthFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

async fn start() -> (Emulator, AuthFile) {
    let path = std::env::temp_dir().join(format!("edge-auth-{}.toml", std::process::id()));
    std::fs::write(&path, adversarial_config()).expect("temp file");
    let emulator = Emulator::start_with(&["--auth", path.to_str().unwrap()]).await;
    (emulator, AuthFile(path))
}

#[tokio::test]
async fn adversarial_tokens_through_the_wasm_guest() {
    let (emulator, _file) = start().await;
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let mut accepted = 0;
    let mut origin_count = 0;
    for (name, token, verdict) in table(now) {
        let bearer = format!("Bearer {token}");
        let reply = emulator.get_with(USER, &[("authorization", &bearer)]).await;
        match &verdict {
            Verdict::Accept => {
                assert_eq!(
                    reply.status,
                    200,
                    "{name}: {}",
                    String::from_utf8_lossy(&reply.body)
                );
                accepted += 1;
            }
            Verdict::Refuse(_) => {
                // A header beyond the server's field limit may be refused before the worker
                // (431); a token refused by the worker is a 401.
                assert!(
                    matches!(reply.status, 400 | 401 | 431),
                    "{name}: got {}",
                    reply.status
                );
                if reply.status == 401 {
                    assert!(
                        reply
                            .header("www-authenticate")
                            .starts_with("Bearer realm=\"test\", error=\"invalid_token\""),
                        "{name}: {}",
                        reply.header("www-authenticate")
                    );
                    assert_eq!(reply.json()["error"], "invalid_token", "{name}");
                }
            }
        }
        // A refused request never reaches the origin. (Accepted ones share one subject, so
        // after the first they are answered from that subject's private cache.)
        let count = emulator.origin_requests("eu-west", USER).await;
        if matches!(verdict, Verdict::Refuse(_)) {
            assert_eq!(count, origin_count, "{name}: the origin count");
        }
        origin_count = count;
    }
    assert!(accepted >= 4);
    assert_eq!(
        origin_count, 1,
        "one origin request, for the first accepted token"
    );
}

#[tokio::test]
async fn missing_and_malformed_credentials_with_the_default_configuration() {
    let emulator = Emulator::start().await;
    let missing = emulator.get(USER).await;
    assert_eq!(missing.status, 401);
    assert_eq!(
        missing.header("www-authenticate"),
        "Bearer realm=\"edge-emulator\""
    );
    // RFC 6750 §3.1: another scheme carries no Bearer credentials (a bare challenge); a
    // malformed Bearer token is invalid_token.
    let basic = emulator
        .get_with(USER, &[("authorization", "Basic dXNlcjpwYXNz")])
        .await;
    assert_eq!(basic.status, 401);
    assert_eq!(
        basic.header("www-authenticate"),
        "Bearer realm=\"edge-emulator\""
    );
    let malformed = emulator
        .get_with(USER, &[("authorization", "Bearer a b")])
        .await;
    assert_eq!(malformed.status, 401);
    assert!(malformed
        .header("www-authenticate")
        .contains("error=\"invalid_token\""));
    assert_eq!(emulator.origin_requests("eu-west", USER).await, 0);

    // A demo token (what `edge-emulator token` prints) passes; public routes need none.
    let token = format!("Bearer {}", common::demo_token("user-7"));
    let ok = emulator.get_with(USER, &[("authorization", &token)]).await;
    assert_eq!(ok.status, 200);
    let product = emulator
        .get_with(
            "/api/products/1",
            &[("authorization", &token), ("x-auth-sub", "admin")],
        )
        .await;
    assert_eq!(product.status, 200);
    assert_eq!(emulator.origin_requests("eu-west", USER).await, 1);
    // The origin saw the verified subject once (the user route) and never the token or the
    // client's spoofed X-Auth-Sub.
    let origin = &emulator.stats().await["origins"]["eu-west"]["stats"];
    assert_eq!(origin["with_authorization"], 0);
    assert_eq!(origin["with_auth_sub"], 1);
}

#[tokio::test]
async fn invalid_auth_configuration_stops_serve_with_a_clear_message() {
    let path = std::env::temp_dir().join(format!("edge-bad-auth-{}.toml", std::process::id()));
    std::fs::write(
        &path,
        "[[keys]]\nkid = \"k\"\nalg = \"HS256\"\nsecret = \"short\"\n",
    )
    .unwrap();
    let _file = AuthFile(path.clone());
    let run = tokio::process::Command::new(env!("CARGO_BIN_EXE_edge-emulator"))
        .args([
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--auth",
            path.to_str().unwrap(),
        ])
        .kill_on_drop(true)
        .output();
    let output = tokio::time::timeout(common::TIMEOUT, run)
        .await
        .expect("serve exits at once on a bad configuration")
        .expect("runs");
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("at least 32 bytes"), "{stderr}");
}

#[tokio::test]
async fn keys_from_the_origins_jwks_are_fetched_once_through_the_tiers() {
    let emulator = Emulator::start().await;
    for sub in ["ann", "bob", "cat"] {
        let token = edge_emulator::demo_token::mint(
            edge_emulator::demo_token::DemoAlg::Es256Jwks,
            sub,
            None,
            SystemTime::now(),
            std::time::Duration::from_secs(600),
        )
        .unwrap();
        let reply = emulator
            .get_with(USER, &[("authorization", &format!("Bearer {token}"))])
            .await;
        assert_eq!(
            reply.status,
            200,
            "{sub}: {}",
            String::from_utf8_lossy(&reply.body)
        );
    }
    assert_eq!(
        emulator
            .origin_requests("eu-west", "/.well-known/jwks.json")
            .await,
        1
    );
}

#[tokio::test]
async fn private_user_data_is_cached_per_subject_and_never_crosses_users() {
    let emulator = Emulator::start().await;
    let alice = format!("Bearer {}", common::demo_token("alice"));
    let bob = format!("Bearer {}", common::demo_token("bob"));
    let first = emulator.get_with(USER, &[("authorization", &alice)]).await;
    assert_eq!(first.json()["viewer"], "alice");
    assert_eq!(
        first.header("cf-cache-status"),
        "BYPASS",
        "private: not in the shared cache"
    );
    let again = emulator.get_with(USER, &[("authorization", &alice)]).await;
    assert_eq!(again.json()["viewer"], "alice");
    assert_eq!(again.header("cf-cache-status"), "HIT");
    assert!(again
        .header("cache-status")
        .starts_with("edge-fra-private; hit"));
    let other = emulator.get_with(USER, &[("authorization", &bob)]).await;
    assert_eq!(
        other.json()["viewer"],
        "bob",
        "bob never receives alice's cached body"
    );
    assert_eq!(emulator.origin_requests("eu-west", USER).await, 2);
}

#[tokio::test]
async fn authorization_field_variants_through_the_wasm_guest() {
    let emulator = Emulator::start().await;
    let token = common::demo_token("user-7");
    let cases = [
        (
            format!("bearer {token}"),
            200,
            "the scheme is case-insensitive",
        ),
        (format!("BEARER {token}"), 200, "upper case too"),
        (format!("Bearer   {token}"), 200, "several spaces"),
        (
            format!("  Bearer {token}  "),
            200,
            "leading and trailing spaces",
        ),
        // RFC 6750 §3.1: a malformed token is invalid_token; no Bearer scheme, no credentials.
        (format!("Bearer {token} extra"), 401, "two tokens"),
        (format!("Bearer{token}"), 401, "no space"),
        (format!("Token {token}"), 401, "another scheme"),
        ("Bearer".to_string(), 401, "no token"),
    ];
    for (value, status, why) in cases {
        let reply = emulator.get_with(USER, &[("authorization", &value)]).await;
        assert_eq!(reply.status, status, "{why}");
    }
}
