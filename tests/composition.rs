//! Edge composition end to end through the real binary and the wasm worker: ESI and JSON
//! templates filled with public fragments (shared by everybody) and private ones (fetched
//! with the token, kept per subject), failures with and without `onerror`, loops and depth,
//! the composed page's freshness, privacy, ETag and 304, and no subject's fragment in
//! another's page.

mod common;

use common::user_origin::UserOrigin;
use common::{config_file, demo_token, Emulator};

/// `path` with `params` as its query, encoded.
fn url(path: &str, params: &[(&str, &str)]) -> String {
    let query: String = form_urlencoded::Serializer::new(String::new())
        .extend_pairs(params)
        .finish();
    format!("{path}?{query}")
}

const ESI: &str = "content=\"ESI/1.0\"";

/// A template page at `path` whose HTML is `html`, public for a minute, with an ETag.
fn page(path: &str, html: &str) -> String {
    url(
        path,
        &[
            ("html", html),
            ("sc", ESI),
            ("cc", "public, max-age=60"),
            ("etag", "\"page-1\""),
        ],
    )
}

fn public_fragment() -> String {
    url(
        "/fragments/nav",
        &[
            ("html", "<nav>shared</nav>"),
            ("cc", "public, max-age=30"),
            ("etag", "\"nav-1\""),
        ],
    )
}

fn private_fragment() -> String {
    url(
        "/api/users/me",
        &[
            ("html", "<p>balance of {sub}</p>"),
            ("cc", "private, max-age=20"),
            ("etag", "\"me-1\""),
            ("cookie_from", "x-auth-sub"),
        ],
    )
}

fn include(src: &str, extra: &str) -> String {
    let src = src.replace('&', "&amp;");
    format!("<esi:include src=\"{src}\"{extra}/>")
}

fn dashboard() -> String {
    page(
        "/pages/dashboard",
        &format!(
            "<h1>Hi</h1>{}{}<!--esi <p>edge</p>--><esi:remove>no ESI</esi:remove>",
            include(&public_fragment(), ""),
            include(&private_fragment(), "")
        ),
    )
}

async fn start(extra: &[&str]) -> (UserOrigin, Emulator) {
    let origin = UserOrigin::start().await;
    let auth = config_file("composition-auth", edge_emulator::DEFAULT_AUTH);
    let mut args = vec!["--origin", &origin.url, "--auth", auth.to_str().unwrap()];
    args.extend_from_slice(extra);
    let emulator = Emulator::start_with(&args).await;
    (origin, emulator)
}

fn bearer(sub: &str) -> String {
    format!("Bearer {}", demo_token(sub))
}

#[tokio::test]
async fn a_page_of_public_and_private_parts_is_composed_per_subject_and_never_leaks() {
    let (origin, emulator) = start(&["--isolation", "isolate"]).await;
    let path = dashboard();
    let mut etags = std::collections::BTreeMap::new();
    // Interleaved subjects on one PoP (and so on its warm isolates), twice each.
    for sub in ["alice", "bob", "alice", "carol", "bob", "carol"] {
        let reply = emulator
            .get_with(
                &path,
                &[("authorization", &bearer(sub)), ("x-emulator-pop", "fra")],
            )
            .await;
        assert_eq!(
            reply.status,
            200,
            "{sub}: {:?}",
            String::from_utf8_lossy(&reply.body)
        );
        assert_eq!(
            String::from_utf8(reply.body.clone()).unwrap(),
            format!("<h1>Hi</h1><nav>shared</nav><p>balance of {sub}</p> <p>edge</p>"),
            "{sub}"
        );
        assert_eq!(reply.header("content-type"), "text/html; charset=utf-8");
        assert!(reply.header("surrogate-control").is_empty(), "stripped");
        assert!(
            reply.header("set-cookie").is_empty(),
            "a fragment's cookie stays out"
        );
        let cache_control = reply.header("cache-control");
        let max_age: u64 = cache_control
            .strip_prefix("private, max-age=")
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("{sub}: private and fresh, got {cache_control:?}"));
        assert!(
            (18..=20).contains(&max_age),
            "{sub}: no fresher than the private part's 20 s ({max_age})"
        );
        let etag = reply.header("etag").to_string();
        assert!(etag.starts_with("\"c"), "strong: every part's is ({etag})");
        etags.insert(sub, etag);
    }
    assert_eq!(
        origin.count("/pages/dashboard"),
        1,
        "the template is cached once"
    );
    assert_eq!(
        origin.count("/fragments/nav"),
        1,
        "the public part is shared"
    );
    assert_eq!(
        origin.count("/api/users/me"),
        3,
        "the private part once per subject (each from its private cache after)"
    );
    for seen in origin.seen("/api/users/me") {
        assert!(
            seen.headers.contains_key("x-auth-sub"),
            "fetched with the token"
        );
    }
    // Same parts, same validators: every subject's page has the same ETag; 304 for it.
    assert_eq!(
        etags
            .values()
            .collect::<std::collections::BTreeSet<_>>()
            .len(),
        1
    );
    let revalidated = emulator
        .get_with(
            &path,
            &[
                ("authorization", &bearer("alice")),
                ("if-none-match", &etags["alice"]),
            ],
        )
        .await;
    assert_eq!(revalidated.status, 304);
    assert!(revalidated.body.is_empty());
    // Without a token the private part fails (401 from the gate) and the page fails cleanly.
    let anonymous = emulator.get(&path).await;
    assert_eq!(anonymous.status, 502);
    assert_eq!(anonymous.json()["error"], "composition_failed");
    let message = anonymous.json()["message"].as_str().unwrap().to_string();
    assert!(
        message.contains("/api/users/me") && message.contains("401"),
        "{message}"
    );
}

#[tokio::test]
async fn failed_fragments_drop_with_onerror_continue_use_alt_or_fail_the_page() {
    let (_origin, emulator) = start(&[]).await;
    let broken = url("/fragments/broken", &[("status", "500"), ("html", "oops")]);
    let fallback = url(
        "/fragments/fallback",
        &[("html", "[alt]"), ("cc", "max-age=5")],
    );
    let dropped = page(
        "/pages/dropped",
        &format!("a{}b", include(&broken, " onerror=\"continue\"")),
    );
    let reply = emulator.get(&dropped).await;
    assert_eq!(reply.status, 200);
    assert_eq!(reply.body, b"ab");
    let alt = page(
        "/pages/alt",
        &format!(
            "a{}b",
            include(
                &broken,
                &format!(" alt=\"{}\"", fallback.replace('&', "&amp;"))
            )
        ),
    );
    let reply = emulator.get(&alt).await;
    assert_eq!(reply.status, 200);
    assert_eq!(reply.body, b"a[alt]b");
    assert_eq!(reply.header("cache-control"), "public, max-age=5");
    // The fallback had no validator of its own: the edge's content tag stands for it.
    assert!(
        reply.header("etag").starts_with("\"c"),
        "{}",
        reply.header("etag")
    );
    let failing = page("/pages/failing", &format!("a{}b", include(&broken, "")));
    let reply = emulator.get(&failing).await;
    assert_eq!(reply.status, 502);
    assert_eq!(reply.header("content-type"), "application/json");
    let message = reply.json()["message"].as_str().unwrap().to_string();
    assert!(
        message.contains("/fragments/broken") && message.contains("500"),
        "{message}"
    );
    // A malformed template fails the page too, saying where.
    let malformed = page("/pages/malformed", "<esi:include src=\"/x\">never closed");
    let reply = emulator.get(&malformed).await;
    assert_eq!(reply.status, 502);
    assert!(reply.json()["message"]
        .as_str()
        .unwrap()
        .contains("at byte 0"));
}

#[tokio::test]
async fn loops_depth_and_foreign_hosts_are_refused() {
    let policy = config_file("composition-depth", "[composition]\nmax_depth = 2\n");
    let (_origin, emulator) = start(&["--cache-policy", policy.to_str().unwrap()]).await;
    // A page that includes itself.
    let own = url(
        "/pages/loop",
        &[("html", "<esi:include src=\"{self}\"/>"), ("sc", ESI)],
    );
    let reply = emulator.get(&own).await;
    assert_eq!(reply.status, 502);
    let message = reply.json()["message"].as_str().unwrap().to_string();
    assert!(message.contains("includes itself"), "{message}");
    // Templates nested three deep under a limit of two.
    let leaf = url("/n/leaf", &[("html", "leaf")]);
    let middle = page("/n/middle", &include(&leaf, ""));
    let upper = page("/n/upper", &include(&middle, ""));
    let top = page("/n/top", &include(&upper, ""));
    let reply = emulator.get(&upper).await;
    assert_eq!(reply.status, 200, "two levels fit");
    assert_eq!(reply.body, b"leaf");
    let reply = emulator.get(&top).await;
    assert_eq!(reply.status, 502);
    let message = reply.json()["message"].as_str().unwrap().to_string();
    assert!(message.contains("nest deeper than 2"), "{message}");
    // No request forgery: an include naming another host is never fetched.
    let foreign = page(
        "/pages/foreign",
        &include("http://169.254.169.254/latest/meta-data", ""),
    );
    let reply = emulator.get(&foreign).await;
    assert_eq!(reply.status, 502);
    assert!(reply.json()["message"]
        .as_str()
        .unwrap()
        .contains("allow_hosts"));
}

#[tokio::test]
async fn a_json_document_composes_a_private_summary_and_is_compressed_and_trimmed_whole() {
    let (_origin, emulator) = start(&[]).await;
    let summary = url(
        "/api/users/me/summary",
        &[
            ("json", "{\"who\":\"{sub}\",\"balance\":12}"),
            ("cc", "private, max-age=30"),
        ],
    );
    let padding = "news ".repeat(400);
    let template = format!(
        "{{\"pad\":\"{padding}\",\"title\":\"Dashboard\",\"summary\":{{\"$include\":\"{summary}\"}},\"ads\":{{\"$include\":\"/none?status=404\",\"$onerror\":\"continue\"}}}}"
    );
    let path = url(
        "/pages/api-dashboard",
        &[
            ("json", &template),
            ("sc", "content=\"EDGE-JSON/1.0\""),
            ("cc", "public, max-age=60"),
        ],
    );
    let reply = emulator
        .get_with(&path, &[("authorization", &bearer("dana"))])
        .await;
    assert_eq!(
        reply.status,
        200,
        "{:?}",
        String::from_utf8_lossy(&reply.body)
    );
    assert_eq!(
        reply.json(),
        serde_json::json!({"pad": padding, "title": "Dashboard", "summary": {"who": "dana", "balance": 12}, "ads": null})
    );
    assert!(reply
        .header("cache-control")
        .starts_with("private, max-age="));
    // Compression applies to the composed document.
    let compressed = emulator
        .get_with(
            &path,
            &[
                ("authorization", &bearer("dana")),
                ("accept-encoding", "gzip"),
            ],
        )
        .await;
    assert_eq!(compressed.header("content-encoding"), "gzip");
    let decoded: serde_json::Value = serde_json::from_slice(&compressed.decoded()).unwrap();
    assert_eq!(decoded["summary"]["who"], "dana");
    // So does `?fields=`: the mask sees the fragments' members.
    let trimmed = emulator
        .get_with(
            &format!("{path}&fields=summary.who"),
            &[("authorization", &bearer("dana"))],
        )
        .await;
    assert_eq!(trimmed.status, 200);
    assert_eq!(
        trimmed.json(),
        serde_json::json!({"summary": {"who": "dana"}})
    );
}
