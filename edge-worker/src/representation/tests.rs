//! The composition, natively: origin body → cache → projection → ETag → 304 → encoding.

use std::io::Read;

use http::{Request, Response};
use serde_json::{json, Value};

use super::*;
use crate::ready::now_or_never;
use crate::testing::{header, MemoryPlatform};
use crate::{CacheTier, EdgeWorker};

const URL: &str = "http://shop.example/api/products/1";

fn document() -> Value {
    json!({
        "id": 1, "name": "Lamp", "price": 12.5,
        "seller": {"id": 3, "name": "Acme"},
        "description": "a long description ".repeat(40),
    })
}

fn platform() -> MemoryPlatform {
    platform_serving(serde_json::to_vec(&document()).unwrap())
}

fn platform_serving(body: Vec<u8>) -> MemoryPlatform {
    MemoryPlatform::new(move |_| {
        Ok(Response::builder()
            .header("cache-control", "public, max-age=60")
            .header("etag", "\"base\"")
            .header("last-modified", "Tue, 24 Nov 2026 10:00:00 GMT")
            .header("content-type", "application/json")
            .body(Body::from(body.clone()))
            .unwrap())
    })
}

fn worker() -> EdgeWorker {
    EdgeWorker::new(CacheTier::new(crate::hops::TierId::edge("test"), true))
}

fn send(p: &MemoryPlatform, method: &str, url: &str, headers: &[(&str, &str)]) -> Response<Body> {
    let mut request = Request::builder().method(method).uri(url);
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    now_or_never(worker().handle(p, request.body(Body::new()).unwrap()))
        .expect("in-memory ports never wait")
        .response
}

fn decoded(response: &Response<Body>) -> Value {
    let mut bytes = Vec::new();
    match header(response, "content-encoding") {
        "br" => brotli::Decompressor::new(&response.body()[..], 4096)
            .read_to_end(&mut bytes)
            .map(|_| ())
            .unwrap(),
        "gzip" => flate2::read::GzDecoder::new(&response.body()[..])
            .read_to_end(&mut bytes)
            .map(|_| ())
            .unwrap(),
        "zstd" => ruzstd::decoding::StreamingDecoder::new(&response.body()[..])
            .unwrap()
            .read_to_end(&mut bytes)
            .map(|_| ())
            .unwrap(),
        _ => bytes = response.body().to_vec(),
    }
    serde_json::from_slice(&bytes).unwrap()
}

#[test]
fn one_fetch_serves_every_mask_coding_and_validation() {
    let p = platform();
    let ab_br = send(
        &p,
        "GET",
        &format!("{URL}?fields=name,id"),
        &[("accept-encoding", "br")],
    );
    assert_eq!(ab_br.status(), 200);
    assert_eq!(header(&ab_br, "content-encoding"), "br");
    assert_eq!(header(&ab_br, "x-edge-fields"), "applied");
    assert_eq!(header(&ab_br, "vary"), "accept-encoding");
    assert_eq!(decoded(&ab_br), json!({"id": 1, "name": "Lamp"}));
    assert_eq!(
        header(&ab_br, "content-length"),
        ab_br.body().len().to_string()
    );
    let etag = header(&ab_br, "etag").to_string();
    assert!(
        etag.starts_with("\"base-f") && etag.ends_with("-br2\""),
        "{etag}"
    );

    // RFC 9110 §13.1.2: the same mask written differently, same coding → 304 from the edge.
    let revalidated = send(
        &p,
        "GET",
        &format!("{URL}?fields=id,name"),
        &[("accept-encoding", "br"), ("if-none-match", &etag)],
    );
    assert_eq!(revalidated.status(), 304);
    assert!(revalidated.body().is_empty());
    assert_eq!(header(&revalidated, "etag"), etag);
    assert!(revalidated.headers().get("content-type").is_none());

    // Another mask is another representation: 200.
    let a_br = send(
        &p,
        "GET",
        &format!("{URL}?fields=id"),
        &[("accept-encoding", "br"), ("if-none-match", &etag)],
    );
    assert_eq!(a_br.status(), 200);
    assert_eq!(decoded(&a_br), json!({"id": 1}));

    // gzip of the same mask: its own ETag, which validates too.
    let ab_gz = send(
        &p,
        "GET",
        &format!("{URL}?fields=id,name"),
        &[("accept-encoding", "gzip")],
    );
    let gz_etag = header(&ab_gz, "etag").to_string();
    assert_ne!(gz_etag, etag);
    assert_eq!(decoded(&ab_gz), json!({"id": 1, "name": "Lamp"}));
    let gz_304 = send(
        &p,
        "GET",
        &format!("{URL}?fields=id,name"),
        &[("accept-encoding", "gzip"), ("if-none-match", &gz_etag)],
    );
    assert_eq!(gz_304.status(), 304);

    assert_eq!(p.fetches(), 1, "one origin fetch for all of it");
    assert!(
        p.fetched.borrow()[0].uri().query().is_none(),
        "fields are not sent upstream"
    );
}

#[test]
fn encoded_variants_are_cached_and_reused() {
    let p = platform();
    let first = send(&p, "GET", URL, &[("accept-encoding", "gzip, br")]);
    let variants = p
        .cache
        .borrow()
        .keys()
        .filter(|k| k.contains("coding=br"))
        .count();
    assert_eq!(variants, 1);
    // Poison the stored variant's bytes: a hit must serve them, proving no recompression.
    let key = p
        .cache
        .borrow()
        .keys()
        .find(|k| k.contains("coding=br"))
        .unwrap()
        .clone();
    if let Some(CacheEntry::Response(stored)) = p.cache.borrow_mut().get_mut(&key) {
        stored.body = b"cached".to_vec().into();
    }
    let second = send(&p, "GET", URL, &[("accept-encoding", "br")]);
    assert_eq!(second.body(), b"cached");
    assert_eq!(header(&second, "etag"), header(&first, "etag"));
    assert_eq!(header(&second, "etag"), "\"base-br2\"");
}

#[test]
fn head_matches_get_and_identity_keeps_the_base_etag() {
    let p = platform();
    let get = send(&p, "GET", URL, &[("accept-encoding", "br")]);
    let head = send(&p, "HEAD", URL, &[("accept-encoding", "br")]);
    assert!(head.body().is_empty());
    for name in ["etag", "content-length", "content-encoding", "vary"] {
        assert_eq!(header(&head, name), header(&get, name), "{name}");
    }
    let identity = send(&p, "GET", URL, &[]);
    assert_eq!(header(&identity, "etag"), "\"base\"");
    assert!(identity.headers().get("content-encoding").is_none());
    assert_eq!(decoded(&identity), document());
}

/// Regression (fuzz target `pipeline`, input `/wAAAADxMDA=`): HEAD of an origin-form target
/// (`/`, no scheme or host) was answered 400 with the JSON error as content; so was any HEAD
/// refused before the cache (a bad `?fields=` mask here).
#[test]
fn rfc9110_9_3_2_head_errors_carry_no_content() {
    let p = platform();
    for url in ["/", &format!("{URL}?fields=((")] {
        let get = send(&p, "GET", url, &[]);
        let head = send(&p, "HEAD", url, &[]);
        assert_eq!(get.status(), 400, "{url}");
        assert!(!get.body().is_empty(), "{url}");
        assert_eq!(head.status(), 400, "{url}");
        assert!(head.body().is_empty(), "{url}: HEAD answered with content");
    }
}

#[test]
fn rfc9110_13_2_2_preconditions_at_the_edge() {
    let p = platform();
    let ims = send(
        &p,
        "GET",
        URL,
        &[("if-modified-since", "Wed, 25 Nov 2026 10:00:00 GMT")],
    );
    assert_eq!(ims.status(), 304);
    let if_match = send(&p, "GET", URL, &[("if-match", "\"other\"")]);
    assert_eq!(if_match.status(), 412);
    // An unsafe method whose precondition fails against the fresh cached copy: 412 without
    // contacting the origin.
    let put = send(&p, "PUT", URL, &[("if-match", "\"stale\"")]);
    assert_eq!(put.status(), 412);
    assert_eq!(p.fetches(), 1);
}

#[test]
fn masks_that_cannot_apply_pass_the_body_through_and_say_why() {
    let bad = send(&platform(), "GET", &format!("{URL}?fields=a(b"), &[]);
    assert_eq!(bad.status(), 400);
    let error: Value = serde_json::from_slice(bad.body()).unwrap();
    assert_eq!(error["error"], "invalid_fields");
    assert_eq!(error["position"], 3);

    let p = MemoryPlatform::new(|_| {
        Ok(Response::builder()
            .header("cache-control", "max-age=60")
            .header("content-type", "text/plain")
            .body(Body::from(b"plain text".to_vec()))
            .unwrap())
    });
    let text = send(&p, "GET", &format!("{URL}?fields=a"), &[]);
    assert_eq!(text.body(), b"plain text");
    assert_eq!(header(&text, "x-edge-fields"), "skipped; reason=not-json");
    // No ETag from the origin: a strong one from the bytes.
    let etag = header(&text, "etag");
    assert!(etag.len() == 34 && !etag.starts_with("W/"), "{etag}");
}

/// RFC 9110 §12.5.5: Vary names Accept-Encoding only where the edge's coding choice depends on
/// it. Otherwise the origin's Vary passes unchanged.
#[test]
fn rfc9110_12_5_5_vary_accept_encoding_only_when_the_coding_depends_on_it() {
    let cases: &[(&str, usize, Option<&str>, &[&str])] = &[
        (
            "a 36-byte text/plain body is never coded",
            36,
            Some("Foo"),
            &["Foo"],
        ),
        ("nor is one without a Vary of its own", 36, None, &[]),
        (
            "a large text body is",
            4096,
            Some("Foo"),
            &["Foo", "accept-encoding"],
        ),
        ("an image never is", 4096, None, &[]),
    ];
    for (case, size, vary, expected) in cases {
        let (size, vary) = (*size, *vary);
        let content_type = if case.contains("image") {
            "image/png"
        } else {
            "text/plain"
        };
        let p = MemoryPlatform::new(move |_| {
            let mut response = Response::builder()
                .header("cache-control", "public, max-age=60")
                .header("content-type", content_type);
            if let Some(vary) = vary {
                response = response.header("vary", vary);
            }
            Ok(response.body(Body::from(vec![b'a'; size])).unwrap())
        });
        let response = send(&p, "GET", URL, &[("accept-encoding", "gzip")]);
        let got: Vec<&str> = response
            .headers()
            .get_all("vary")
            .iter()
            .map(|v| v.to_str().unwrap())
            .collect();
        assert_eq!(&got, expected, "{case}");
    }
}

fn handle(p: &MemoryPlatform, worker: &EdgeWorker, headers: &[(&str, &str)]) -> crate::Outcome {
    let mut request = Request::builder().uri(URL);
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    now_or_never(worker.handle(p, request.body(Body::new()).unwrap()))
        .expect("in-memory ports never wait")
}

fn run_deferred(p: &MemoryPlatform, worker: &EdgeWorker, outcome: crate::Outcome) {
    for task in outcome.deferred {
        now_or_never(worker.run_deferred(p, task)).expect("in-memory ports never wait");
    }
}

/// Fast on the miss, best in the cache: the miss sends brotli 2; the variant's first hit is
/// remembered, and a second within the recoding window (served as stored, uncoded work
/// queued) leaves a recompression behind; once it has run, hits get brotli 11 under their own
/// strong tag, and a client holding either level's tag is answered 304 with the tag it holds
/// (RFC 9110 §8.8.3, §13.1.2; see `represent`).
#[test]
fn a_miss_codes_fast_and_the_background_replaces_the_variant_with_the_best() {
    let body = crate::testing::varied_json(8 * 1024);
    let p = platform_serving(body.clone());
    let worker = worker();
    let miss = handle(&p, &worker, &[("accept-encoding", "br")]);
    assert_eq!(header(&miss.response, "etag"), "\"base-br2\"");
    let miss_bytes = miss.response.body().len();
    assert_eq!(miss.recompression_saved, 0);
    assert!(
        miss.deferred.is_empty(),
        "a variant never used again is never recoded"
    );

    let first_hit = handle(&p, &worker, &[("accept-encoding", "br")]);
    assert_eq!(header(&first_hit.response, "etag"), "\"base-br2\"");
    assert!(first_hit.deferred.is_empty(), "one use says little");
    // A use long after the last one: the variant is not hot, it waits again.
    p.advance(61);
    let cold = handle(&p, &worker, &[("accept-encoding", "br")]);
    assert!(cold.deferred.is_empty(), "uses a minute apart do not pay");
    let second_hit = handle(&p, &worker, &[("accept-encoding", "br")]);
    assert_eq!(second_hit.response.body().len(), miss_bytes);
    assert!(matches!(
        second_hit.deferred.as_slice(),
        [crate::Deferred::Recompress(_)]
    ));
    run_deferred(&p, &worker, second_hit);

    let hit = handle(&p, &worker, &[("accept-encoding", "br")]);
    assert!(hit.deferred.is_empty(), "recoded once, never again");
    assert_eq!(header(&hit.response, "etag"), "\"base-br11\"");
    assert_eq!(
        decoded(&hit.response),
        serde_json::from_slice::<Value>(&body).unwrap()
    );
    let best_bytes = hit.response.body().len();
    assert!(best_bytes < miss_bytes, "{best_bytes} < {miss_bytes}");
    assert_eq!(hit.recompression_saved, (miss_bytes - best_bytes) as u64);
    assert_eq!(
        header(&hit.response, "content-length"),
        best_bytes.to_string()
    );

    for held in ["\"base-br2\"", "\"base-br11\""] {
        let revalidated = handle(
            &p,
            &worker,
            &[("accept-encoding", "br"), ("if-none-match", held)],
        );
        assert_eq!(revalidated.response.status(), 304, "{held}");
        assert_eq!(header(&revalidated.response, "etag"), held);
    }
    // Another coding's tag, or a made-up level suffix, names another representation: 200.
    for other in [
        "\"base-gz6\"",
        "\"base-brx\"",
        "\"other-br2\"",
        "W/\"base-br2\"",
    ] {
        let full = handle(
            &p,
            &worker,
            &[("accept-encoding", "br"), ("if-none-match", other)],
        );
        assert_eq!(full.response.status(), 200, "{other}");
        assert_eq!(header(&full.response, "etag"), "\"base-br11\"");
    }
    assert_eq!(
        p.fetches(),
        2,
        "the base went stale in the minute the variant waited"
    );
}

/// The first hit of a projected variant hands the background the projected bytes.
#[test]
fn a_projected_variant_is_recoded_from_its_projection() {
    let p = platform_serving(crate::testing::varied_json(8 * 1024));
    let worker = worker();
    let url = format!("{URL}?fields=id,name");
    let get = |p: &MemoryPlatform| {
        let request = Request::builder()
            .uri(&url)
            .header("accept-encoding", "br")
            .body(Body::new())
            .unwrap();
        now_or_never(worker.handle(p, request)).unwrap()
    };
    let miss = get(&p);
    let expected = decoded(&miss.response);
    get(&p);
    let second_hit = get(&p);
    run_deferred(&p, &worker, second_hit);
    let hit = get(&p);
    assert!(header(&hit.response, "etag").ends_with("-br11\""));
    assert_eq!(decoded(&hit.response), expected);
}

/// A host may start the slow coding early from `recode_plan`: it names what `recode` will
/// code at, and nothing once the mark is gone or the variant is at its best level already.
#[test]
fn the_recode_plan_names_what_recode_codes_at() {
    let variant = |etag: &str, coding: &str, marked: bool| {
        let mut headers = HeaderMap::new();
        headers.insert(header::ETAG, HeaderValue::from_str(etag).unwrap());
        headers.insert(
            header::CONTENT_ENCODING,
            HeaderValue::from_str(coding).unwrap(),
        );
        StoredResponse {
            status: http::StatusCode::OK,
            headers,
            body: Body::new(),
            vary_request_headers: HeaderMap::new(),
            response_time: std::time::UNIX_EPOCH,
            lifetime: None,
            record: None,
            variant: Some(crate::entry::VariantState {
                miss_length: 0,
                recode: marked,
                used_at: None,
            }),
        }
    };
    let small = 8 * 1024;
    let large = encoding::BROTLI_11_UP_TO + 1;
    assert_eq!(
        recode_plan(&variant("\"t-br2\"", "br", true), small),
        Some((Coding::Brotli, 11))
    );
    assert_eq!(
        recode_plan(&variant("\"t-br4\"", "br", true), large),
        Some((Coding::Brotli, 10))
    );
    assert_eq!(
        recode_plan(&variant("\"t-gz6\"", "gzip", true), small),
        Some((Coding::Gzip, 9))
    );
    assert_eq!(recode_plan(&variant("\"t-br2\"", "br", false), small), None);
    assert_eq!(recode_plan(&variant("\"t-br11\"", "br", true), small), None);
    assert_eq!(
        recode_plan(&variant("\"untagged\"", "br", true), small),
        None
    );

    let mut marked = variant("\"t-br2\"", "br", true);
    let body = crate::testing::varied_json(small);
    let mut coded_at = None;
    assert!(recode(&mut marked, &body, |coding, body, level| {
        coded_at = Some((coding, level));
        Body::from(coding.encode_at(body, level))
    }));
    assert_eq!(coded_at, Some((Coding::Brotli, 11)));
    assert_eq!(recode_plan(&marked, small), None);
}

/// Variants that compress no better at the background level keep their bytes and tag, and
/// stop asking: gzip 9 finds nothing more in a tiny repetitive document.
#[test]
fn a_recompression_that_gains_nothing_keeps_the_variant_and_clears_the_mark() {
    let p = platform();
    let worker = worker();
    handle(&p, &worker, &[("accept-encoding", "gzip")]);
    let first_hit = handle(&p, &worker, &[("accept-encoding", "gzip")]);
    let bytes = first_hit.response.body().clone();
    run_deferred(&p, &worker, first_hit);
    let hit = handle(&p, &worker, &[("accept-encoding", "gzip")]);
    assert_eq!(header(&hit.response, "etag"), "\"base-gz6\"");
    assert_eq!(hit.response.body(), &bytes);
    assert!(hit.deferred.is_empty());
}

/// gzip 9 gains 0–0.7 % over gzip 6 on JSON (BENCHMARKS.md), zstd has one level: neither is
/// worth the background's CPU (`recode_policy`).
#[test]
fn gzip_and_zstd_variants_are_never_recoded() {
    let body = crate::testing::varied_json(64 * 1024);
    let document = serde_json::from_slice::<Value>(&body).unwrap();
    let p = platform_serving(body);
    let worker = worker();
    let gzip = handle(&p, &worker, &[("accept-encoding", "gzip")]);
    assert_eq!(header(&gzip.response, "etag"), "\"base-gz6\"");
    for _ in 0..3 {
        let hit = handle(&p, &worker, &[("accept-encoding", "gzip")]);
        assert!(hit.deferred.is_empty());
        assert_eq!(header(&hit.response, "etag"), "\"base-gz6\"");
        assert_eq!(decoded(&hit.response), document);
    }

    if !crate::encoding::ZSTD {
        return;
    }
    let zstd = handle(&p, &worker, &[("accept-encoding", "zstd")]);
    assert_eq!(header(&zstd.response, "content-encoding"), "zstd");
    assert_eq!(header(&zstd.response, "etag"), "\"base-zst1\"");
    assert_eq!(decoded(&zstd.response), document);
    let zstd_hit = handle(&p, &worker, &[("accept-encoding", "zstd")]);
    assert!(
        zstd_hit.deferred.is_empty(),
        "ruzstd has one level: nothing to recode"
    );
    let br_and_zstd = handle(&p, &worker, &[("accept-encoding", "zstd, br")]);
    assert_eq!(header(&br_and_zstd.response, "content-encoding"), "br");
}

#[test]
fn with_background_recompression_off_the_miss_variant_stays() {
    let p = platform_serving(crate::testing::varied_json(8 * 1024));
    let mut worker = worker();
    worker.recompress = false;
    handle(&p, &worker, &[("accept-encoding", "br")]);
    let hit = handle(&p, &worker, &[("accept-encoding", "br")]);
    assert!(hit.deferred.is_empty());
    assert_eq!(header(&hit.response, "etag"), "\"base-br2\"");
    assert_eq!(hit.recompression_saved, 0);
}

/// A recompression that finds its slot gone (purged or evicted between the hit and the
/// background work) stores nothing.
#[test]
fn a_recompression_whose_variant_is_gone_stores_nothing() {
    let p = platform_serving(crate::testing::varied_json(8 * 1024));
    let worker = worker();
    handle(&p, &worker, &[("accept-encoding", "br")]);
    let first_hit = handle(&p, &worker, &[("accept-encoding", "br")]);
    p.cache.borrow_mut().retain(|k, _| !k.contains("coding=br"));
    run_deferred(&p, &worker, first_hit);
    assert!(!p.cache.borrow().keys().any(|k| k.contains("coding=br")));
}

/// Item 4 of issue 17: a body the origin coded already is passed through as it came, on the
/// miss and on hits, and never queued for recompression.
#[test]
fn a_pre_coded_origin_body_is_never_recoded() {
    let coded = Coding::Gzip.encode_at(&crate::testing::varied_json(8 * 1024), 1);
    let body = coded.clone();
    let p = MemoryPlatform::new(move |_| {
        Ok(Response::builder()
            .header("cache-control", "public, max-age=60")
            .header("etag", "\"pre\"")
            .header("content-type", "application/json")
            .header("content-encoding", "gzip")
            .body(Body::from(body.clone()))
            .unwrap())
    });
    let worker = worker();
    for _ in 0..3 {
        let reply = handle(&p, &worker, &[("accept-encoding", "br, zstd")]);
        assert_eq!(header(&reply.response, "content-encoding"), "gzip");
        assert_eq!(header(&reply.response, "etag"), "\"pre\"");
        assert_eq!(reply.response.body(), &coded);
        assert!(reply.deferred.is_empty());
    }
}

/// RFC 9110 §14 through the worker: the tier fetches the complete response once (no `Range`
/// upstream) and each range is cut from the bytes this request is sent — identity, a coded
/// variant's bytes (its own ETag), or a `?fields=` projection.
#[test]
fn rfc9110_14_ranges_are_cut_from_the_selected_representation() {
    let p = platform();
    let full = send(&p, "GET", URL, &[]);
    let etag = header(&full, "etag").to_string();
    let length = full.body().len();

    let part = send(
        &p,
        "GET",
        URL,
        &[("range", "bytes=0-9"), ("if-range", &etag)],
    );
    assert_eq!(part.status(), StatusCode::PARTIAL_CONTENT);
    assert_eq!(part.body().as_slice(), &full.body()[..10]);
    assert_eq!(
        header(&part, "content-range"),
        format!("bytes 0-9/{length}")
    );
    assert_eq!(header(&part, "content-length"), "10");
    assert_eq!(header(&full, "accept-ranges"), "bytes");

    // A coded variant: the range is of its coded bytes, validated by its own tag.
    let br = [("accept-encoding", "br")];
    let whole_br = send(&p, "GET", URL, &br);
    assert_eq!(header(&whole_br, "content-encoding"), "br");
    let br_etag = header(&whole_br, "etag").to_string();
    assert_ne!(br_etag, etag);
    let tail = send(
        &p,
        "GET",
        URL,
        &[br[0], ("range", "bytes=-20"), ("if-range", &br_etag)],
    );
    assert_eq!(tail.status(), StatusCode::PARTIAL_CONTENT);
    let coded = whole_br.body().len();
    assert_eq!(tail.body().as_slice(), &whole_br.body()[coded - 20..]);
    assert_eq!(header(&tail, "content-encoding"), "br");
    assert_eq!(
        header(&tail, "content-range"),
        format!("bytes {}-{}/{coded}", coded - 20, coded - 1)
    );
    // The identity tag does not name the coded bytes: the whole variant.
    let other = send(
        &p,
        "GET",
        URL,
        &[br[0], ("range", "bytes=-20"), ("if-range", &etag)],
    );
    assert_eq!(other.status(), StatusCode::OK);
    assert_eq!(other.body(), whole_br.body());

    // A projection: the range is of the projected bytes, which are the same every time for a
    // base and a mask, so its strong tag validates If-Range.
    let projected_url = format!("{URL}?fields=name,id");
    let projected = send(&p, "GET", &projected_url, &[]);
    let projected_etag = header(&projected, "etag").to_string();
    let head = send(
        &p,
        "GET",
        &projected_url,
        &[("range", "bytes=0-4"), ("if-range", &projected_etag)],
    );
    assert_eq!(head.status(), StatusCode::PARTIAL_CONTENT);
    assert_eq!(head.body().as_slice(), &projected.body()[..5]);

    let beyond = send(&p, "GET", URL, &[("range", &format!("bytes={length}-"))]);
    assert_eq!(beyond.status(), StatusCode::RANGE_NOT_SATISFIABLE);
    assert_eq!(
        header(&beyond, "content-range"),
        format!("bytes */{length}")
    );

    // HEAD ignores Range: the whole length, no content.
    let head = send(&p, "HEAD", URL, &[("range", "bytes=0-9")]);
    assert_eq!(head.status(), StatusCode::OK);
    assert_eq!(header(&head, "content-length"), length.to_string());
    assert_eq!(header(&head, "accept-ranges"), "bytes");

    // A 304 comes before the range (§13.2.2).
    let revalidated = send(
        &p,
        "GET",
        URL,
        &[("range", "bytes=0-9"), ("if-none-match", &etag)],
    );
    assert_eq!(revalidated.status(), StatusCode::NOT_MODIFIED);

    assert_eq!(p.fetches(), 1, "one complete fetch serves every range");
    assert!(p
        .fetched
        .borrow()
        .iter()
        .all(|r| !r.headers().contains_key("range") && !r.headers().contains_key("if-range")));
}
