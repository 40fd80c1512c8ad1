//! End to end through the real binary and the wasm worker: sparse fields, ETags and 304s,
//! brotli and gzip, and how they compose on one cached origin response.

mod common;

use common::{Emulator, Reply};
use serde_json::{json, Value};

const PRODUCT: &str = "/api/products/1";

fn json_of(reply: &Reply) -> Value {
    serde_json::from_slice(&reply.decoded()).expect("JSON")
}

#[tokio::test]
async fn one_origin_fetch_serves_every_mask_coding_and_revalidation() {
    let emulator = Emulator::start().await;
    let full = emulator.get(PRODUCT).await.json();

    // ?fields=a,b with br.
    let ab_br = emulator
        .get_with(
            &format!("{PRODUCT}?fields=name,id"),
            &[("accept-encoding", "br")],
        )
        .await;
    assert_eq!(ab_br.status, 200);
    assert_eq!(ab_br.header("content-encoding"), "br");
    assert_eq!(ab_br.header("x-edge-fields"), "applied");
    assert!(ab_br.header("vary").contains("accept-encoding"));
    assert_eq!(ab_br.header("content-length"), ab_br.body.len().to_string());
    assert_eq!(
        json_of(&ab_br),
        json!({"id": full["id"], "name": full["name"]})
    );
    let br_etag = ab_br.header("etag").to_string();

    // Its ETag, the same mask written the other way round → 304 without a body.
    let not_modified = emulator
        .get_with(
            &format!("{PRODUCT}?fields=id,name"),
            &[("accept-encoding", "br"), ("if-none-match", &br_etag)],
        )
        .await;
    assert_eq!(not_modified.status, 304);
    assert!(not_modified.body.is_empty());
    assert_eq!(not_modified.header("etag"), br_etag);
    for absent in ["content-type", "content-encoding", "last-modified"] {
        assert_eq!(not_modified.header(absent), "", "a 304 carries no {absent}");
    }

    // ?fields=a is another representation: 200.
    let a_br = emulator
        .get_with(
            &format!("{PRODUCT}?fields=id"),
            &[("accept-encoding", "br"), ("if-none-match", &br_etag)],
        )
        .await;
    assert_eq!(a_br.status, 200);
    assert_eq!(json_of(&a_br), json!({"id": full["id"]}));

    // gzip of the same mask: a different ETag, and it validates too.
    let ab_gzip = emulator
        .get_with(
            &format!("{PRODUCT}?fields=id,name"),
            &[("accept-encoding", "gzip")],
        )
        .await;
    assert_eq!(ab_gzip.header("content-encoding"), "gzip");
    let gzip_etag = ab_gzip.header("etag").to_string();
    assert_ne!(gzip_etag, br_etag);
    assert_eq!(json_of(&ab_gzip), json_of(&ab_br));
    let gzip_304 = emulator
        .get_with(
            &format!("{PRODUCT}?fields=id,name"),
            &[("accept-encoding", "gzip"), ("if-none-match", &gzip_etag)],
        )
        .await;
    assert_eq!(gzip_304.status, 304);
    // The br ETag does not validate the gzip representation.
    let crossed = emulator
        .get_with(
            &format!("{PRODUCT}?fields=id,name"),
            &[("accept-encoding", "gzip"), ("if-none-match", &br_etag)],
        )
        .await;
    assert_eq!(crossed.status, 200);

    assert_eq!(
        emulator.origin_requests("eu-west", PRODUCT).await,
        1,
        "one origin fetch for all of this"
    );
}

#[tokio::test]
async fn compression_follows_accept_encoding_and_head_matches_get() {
    let emulator = Emulator::start().await;
    let identity = emulator.get(PRODUCT).await;
    assert_eq!(identity.header("content-encoding"), "");
    assert!(identity.header("vary").contains("accept-encoding"));

    let br = emulator
        .get_with(PRODUCT, &[("accept-encoding", "gzip, deflate, br")])
        .await;
    assert_eq!(br.header("content-encoding"), "br");
    assert_eq!(br.decoded(), identity.body, "the same bytes once decoded");
    assert!(
        br.body.len() < identity.body.len() / 2,
        "JSON compresses well"
    );

    let refused = emulator
        .get_with(PRODUCT, &[("accept-encoding", "br;q=0, gzip;q=0.5")])
        .await;
    assert_eq!(refused.header("content-encoding"), "gzip");
    let none = emulator.get_with(PRODUCT, &[("accept-encoding", "")]).await;
    assert_eq!(none.header("content-encoding"), "");

    let head = emulator
        .send("HEAD", PRODUCT, &[("accept-encoding", "br")])
        .await;
    assert_eq!(head.status, 200);
    assert!(head.body.is_empty());
    for name in [
        "etag",
        "content-length",
        "content-encoding",
        "vary",
        "content-type",
    ] {
        assert_eq!(
            head.header(name),
            br.header(name),
            "HEAD and GET agree on {name}"
        );
    }
    assert_eq!(emulator.origin_requests("eu-west", PRODUCT).await, 1);
}

#[tokio::test]
async fn conditional_requests_are_answered_at_the_edge() {
    let emulator = Emulator::start().await;
    let first = emulator.get(PRODUCT).await;
    let etag = first.header("etag").to_string();
    let last_modified = first.header("last-modified").to_string();

    let listed = emulator
        .get_with(
            PRODUCT,
            &[("if-none-match", &format!("\"nope\", W/{etag}"))],
        )
        .await;
    assert_eq!(listed.status, 304, "weak comparison over a list");
    let star = emulator.get_with(PRODUCT, &[("if-none-match", "*")]).await;
    assert_eq!(star.status, 304);
    let since = emulator
        .get_with(PRODUCT, &[("if-modified-since", &last_modified)])
        .await;
    assert_eq!(since.status, 304);
    let ignored_since = emulator
        .get_with(
            PRODUCT,
            &[
                ("if-none-match", "\"nope\""),
                ("if-modified-since", &last_modified),
            ],
        )
        .await;
    assert_eq!(
        ignored_since.status, 200,
        "If-Modified-Since yields to If-None-Match"
    );
    let if_match = emulator
        .get_with(PRODUCT, &[("if-match", "\"nope\"")])
        .await;
    assert_eq!(if_match.status, 412);
    assert_eq!(if_match.json()["error"], "precondition_failed");

    assert_eq!(emulator.origin_requests("eu-west", PRODUCT).await, 1);
}

#[tokio::test]
async fn bad_masks_are_400_and_non_json_passes_through() {
    let emulator = Emulator::start().await;
    let bad = emulator.get(&format!("{PRODUCT}?fields=items(id")).await;
    assert_eq!(bad.status, 400);
    let error = bad.json();
    assert_eq!(error["error"], "invalid_fields");
    assert_eq!(error["position"], 8);
    assert_eq!(error["expected"], "',' or ')'");

    let css = emulator.get("/static/style.css").await;
    let masked = emulator.get("/static/style.css?fields=a").await;
    assert_eq!(masked.status, 200);
    assert_eq!(masked.body, css.body, "not JSON: untouched");
    assert_eq!(masked.header("x-edge-fields"), "skipped; reason=not-json");
    assert_eq!(
        emulator
            .origin_requests("eu-west", "/static/style.css")
            .await,
        1
    );
}
