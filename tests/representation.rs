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

/// RFC 9110 §14 end to end: after one complete fetch, ranges of the identity bytes, of a br
/// variant's bytes and of a projection are answered from the stored response — suffix and
/// open-ended ranges, If-Range by strong tag, 416 past the end, several ranges as the whole
/// 200 — and the origin sees no second request and never a `Range`.
#[tokio::test]
async fn rfc9110_14_range_requests_are_answered_from_the_stored_response() {
    let emulator = Emulator::start().await;
    let full = emulator.get(PRODUCT).await;
    assert_eq!(full.status, 200);
    assert_eq!(full.header("accept-ranges"), "bytes");
    let length = full.body.len();
    let etag = full.header("etag").to_string();

    // (Range, first, last)
    let cases = [
        ("bytes=0-9".to_string(), 0, 9),
        ("bytes=-50".to_string(), length - 50, length - 1),
        (format!("bytes={}-", length - 7), length - 7, length - 1),
        ("bytes=5-99999999".to_string(), 5, length - 1),
    ];
    for (range, first, last) in cases {
        let part = emulator
            .get_with(PRODUCT, &[("range", &range), ("if-range", &etag)])
            .await;
        assert_eq!(part.status, 206, "{range}");
        assert_eq!(part.body, full.body[first..=last], "{range}");
        assert_eq!(
            part.header("content-range"),
            format!("bytes {first}-{last}/{length}"),
            "{range}"
        );
        assert_eq!(
            part.header("content-length"),
            (last - first + 1).to_string()
        );
        assert_eq!(part.header("etag"), etag);
    }

    let beyond = emulator
        .get_with(PRODUCT, &[("range", &format!("bytes={length}-"))])
        .await;
    assert_eq!(beyond.status, 416);
    assert_eq!(beyond.header("content-range"), format!("bytes */{length}"));
    assert_eq!(beyond.json()["error"], "range_not_satisfiable");

    let several = emulator
        .get_with(PRODUCT, &[("range", "bytes=0-9,20-29")])
        .await;
    assert_eq!((several.status, several.body.len()), (200, length));
    let changed = emulator
        .get_with(
            PRODUCT,
            &[("range", "bytes=0-9"), ("if-range", "\"other\"")],
        )
        .await;
    assert_eq!((changed.status, changed.body.len()), (200, length));

    // A br variant: the range is of its coded bytes, under its own tag.
    let br = emulator
        .get_with(PRODUCT, &[("accept-encoding", "br")])
        .await;
    assert_eq!(br.header("content-encoding"), "br");
    let br_tag = br.header("etag").to_string();
    let br_part = emulator
        .get_with(
            PRODUCT,
            &[
                ("accept-encoding", "br"),
                ("range", "bytes=0-15"),
                ("if-range", &br_tag),
            ],
        )
        .await;
    assert_eq!(br_part.status, 206);
    assert_eq!(br_part.header("content-encoding"), "br");
    assert_eq!(br_part.body, br.body[..16]);
    assert_eq!(
        br_part.header("content-range"),
        format!("bytes 0-15/{}", br.body.len())
    );

    // ?fields= and Range: a range of the projected document.
    let projected = emulator.get(&format!("{PRODUCT}?fields=id,name")).await;
    let projected_part = emulator
        .get_with(
            &format!("{PRODUCT}?fields=id,name"),
            &[("range", "bytes=0-5")],
        )
        .await;
    assert_eq!(projected_part.status, 206);
    assert_eq!(projected_part.body, projected.body[..6]);

    assert_eq!(
        emulator.origin_requests("eu-west", PRODUCT).await,
        1,
        "every range from the one stored response"
    );
}
