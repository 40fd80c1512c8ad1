//! Sticky A/B variants at the edge, end to end through the real binary and the wasm worker:
//! assignment sticky by subject and by the edge's cookie across PoPs, the variant sent to the
//! origin and keyed in the cache (each variant cached once for everybody in it), forcing a
//! variant, and exposures counted in stats and metrics.

mod common;

use common::user_origin::UserOrigin;
use common::{config_file, demo_token, Emulator};

const POLICY: &str = r#"
[[experiments]]
name = "checkout"
path = "/shop/*"
variants = [{ name = "control", weight = 50 }, { name = "onepage", weight = 50 }]

[[experiments]]
name = "profile"
path = "/api/users/*"
variants = [{ name = "a", weight = 1 }, { name = "b", weight = 1 }]
"#;

async fn start() -> (UserOrigin, Emulator) {
    start_in("isolate").await
}

/// `isolation`: warm isolates reused (Cloudflare) or a fresh instance per request (Fastly).
async fn start_in(isolation: &str) -> (UserOrigin, Emulator) {
    let origin = UserOrigin::start().await;
    let policy = config_file("experiments", POLICY);
    let auth = config_file("experiments-auth", edge_emulator::DEFAULT_AUTH);
    let emulator = Emulator::start_with(&[
        "--origin",
        &origin.url,
        "--auth",
        auth.to_str().unwrap(),
        "--cache-policy",
        policy.to_str().unwrap(),
        "--isolation",
        isolation,
    ])
    .await;
    (origin, emulator)
}

/// The variant of `experiment` the core assigns to `unit`, as every host computes it.
fn variant_of(experiment: &str, unit: &str) -> String {
    let policy: toml::Table = toml::from_str(POLICY).unwrap();
    let json = serde_json::to_string(&policy).unwrap();
    let rules = edge_worker::cache_policy::CachePolicyConfig::parse(&json).unwrap();
    rules
        .experiments
        .variant_of(experiment, unit)
        .unwrap()
        .to_string()
}

#[tokio::test]
async fn an_anonymous_visitor_keeps_one_variant_at_every_pop_through_the_edges_cookie() {
    for isolation in ["isolate", "fresh"] {
        one_visitor_at_every_pop(isolation).await;
    }
}

async fn one_visitor_at_every_pop(isolation: &str) {
    let (_origin, emulator) = start_in(isolation).await;
    let cc = "cc=public%2C%20max-age%3D60";
    let first = emulator
        .get_with(
            &format!("/shop/cart?n=0&{cc}"),
            &[("x-emulator-pop", "fra")],
        )
        .await;
    assert_eq!(first.status, 200);
    let set_cookie = first.header("set-cookie").to_string();
    let id = set_cookie
        .strip_prefix("edge_uid=")
        .and_then(|rest| rest.split(';').next())
        .unwrap_or_else(|| panic!("a visitor id cookie, got {set_cookie:?}"));
    assert!(set_cookie.contains("Path=/") && set_cookie.contains("HttpOnly"));
    let expected = variant_of("checkout", &format!("cookie:{id}"));
    assert_eq!(
        first.json()["experiment"],
        format!("checkout={expected}"),
        "the origin is told the variant"
    );
    let cookie = format!("edge_uid={id}");
    for (n, pop) in ["fra", "iad", "sin", "lhr", "fra", "iad"]
        .iter()
        .enumerate()
    {
        // A new URL each time, so each answer is the origin's word for this request.
        let reply = emulator
            .get_with(
                &format!("/shop/cart?n={}&{cc}", n + 1),
                &[("x-emulator-pop", pop), ("cookie", &cookie)],
            )
            .await;
        assert_eq!(reply.status, 200, "{pop}");
        assert_eq!(
            reply.json()["experiment"],
            format!("checkout={expected}"),
            "{pop}"
        );
        assert!(
            reply.header("set-cookie").is_empty(),
            "{pop}: a known visitor gets no new cookie"
        );
    }
    // Pages outside every experiment carry no assignment and set no cookie.
    let plain = emulator.get(&format!("/about?{cc}")).await;
    assert_eq!(plain.json()["experiment"], "");
    assert!(plain.header("set-cookie").is_empty());
}

/// Two subjects in different variants of `profile`, and a second subject in the first's.
fn subjects() -> (String, String, String) {
    let mut by_variant: std::collections::BTreeMap<String, Vec<String>> = Default::default();
    for i in 0..64 {
        let sub = format!("user-{i}");
        by_variant
            .entry(variant_of("profile", &format!("sub:{sub}")))
            .or_default()
            .push(sub);
    }
    let a = &by_variant["a"];
    let b = &by_variant["b"];
    (a[0].clone(), a[1].clone(), b[0].clone())
}

#[tokio::test]
async fn each_variant_is_cached_once_for_everybody_in_it() {
    let (origin, emulator) = start().await;
    let (first_a, second_a, first_b) = subjects();
    let path = "/api/users/home?cc=public%2C%20max-age%3D60";
    let get = |sub: String| {
        let emulator = &emulator;
        async move {
            let token = format!("Bearer {}", demo_token(&sub));
            emulator
                .get_with(
                    path,
                    &[("authorization", &token), ("x-emulator-pop", "fra")],
                )
                .await
        }
    };
    let miss = get(first_a.clone()).await;
    assert_eq!(miss.status, 200, "{:?}", miss.body);
    assert_eq!(miss.header("cf-cache-status"), "MISS");
    assert_eq!(miss.json()["experiment"], "profile=a");
    let shared = get(second_a).await;
    assert_eq!(
        shared.header("cf-cache-status"),
        "HIT",
        "same variant, other subject"
    );
    assert_eq!(shared.json()["experiment"], "profile=a");
    let other = get(first_b).await;
    assert_eq!(
        other.header("cf-cache-status"),
        "MISS",
        "the other variant's own slot"
    );
    assert_eq!(other.json()["experiment"], "profile=b");
    assert_eq!(get(first_a).await.header("cf-cache-status"), "HIT");
    assert_eq!(
        origin.count("/api/users/home"),
        2,
        "one origin fetch per variant, not per subject"
    );
    let stats = emulator.stats().await;
    assert_eq!(stats["experiments"]["profile"]["a"]["exposures"], 3);
    assert_eq!(stats["experiments"]["profile"]["b"]["exposures"], 1);
}

#[tokio::test]
async fn a_forced_variant_reaches_the_origin_and_is_counted_as_forced() {
    let (_origin, emulator) = start().await;
    let cc = "cc=no-store";
    for variant in ["control", "onepage"] {
        let reply = emulator
            .get_with(
                &format!("/shop/{variant}?{cc}"),
                &[
                    ("x-edge-force-variant", &format!("checkout={variant}")),
                    // A client cannot choose its slot by sending the upstream field itself.
                    ("x-edge-experiment", "checkout=evil"),
                ],
            )
            .await;
        assert_eq!(reply.json()["experiment"], format!("checkout={variant}"));
    }
    let stats = emulator.stats().await;
    for variant in ["control", "onepage"] {
        let counted = &stats["experiments"]["checkout"][variant];
        assert_eq!(counted["forced"], 1, "{variant}: {counted}");
        assert_eq!(counted["exposures"], 1, "{variant}: {counted}");
    }
    let metrics = String::from_utf8(emulator.get("/__emulator/metrics").await.body).unwrap();
    assert!(
        metrics.contains("# TYPE edge_emulator_experiment_exposures_total counter"),
        "{metrics}"
    );
    assert!(metrics.contains(
        "edge_emulator_experiment_exposures_total{experiment=\"checkout\",variant=\"onepage\",forced=\"true\"} 1"
    ));
}

#[tokio::test]
async fn a_bad_experiment_is_refused_at_start_up() {
    let policy = config_file(
        "bad-experiment",
        "[[experiments]]\nname = \"Checkout\"\npath = \"*\"\nvariants = [{ name = \"a\", weight = 1 }, { name = \"b\", weight = 1 }]\n",
    );
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_edge-emulator"))
        .args(["serve", "--cache-policy", policy.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("experiment \"Checkout\""), "{stderr}");
}
