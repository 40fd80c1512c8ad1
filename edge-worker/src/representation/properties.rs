//! Properties of the whole worker over generated origins and request sequences (issue 8):
//!
//! * a 304 never carries a body, and a request whose If-None-Match names the entity tag just
//!   served for the same representation gets one (RFC 9110 §13.1.2, §15.4.5);
//! * Content-Length is the body's length on every response that carries it, 2xx answers to GET
//!   and HEAD always carry it, and a HEAD response is the GET response without its body (same
//!   status and fields, so its Content-Length is the GET body's length).

use http::{Request, Response};
use proptest::prelude::*;

use super::*;
use crate::ready::now_or_never;
use crate::testing::MemoryPlatform;
use crate::{CacheTier, EdgeWorker};

const URL: &str = "http://shop.example/api/products/1";

#[derive(Debug, Clone)]
struct Origin {
    status: u16,
    cache_control: &'static str,
    etag: Option<&'static str>,
    last_modified: bool,
    content_type: &'static str,
    content_encoding: bool,
    /// Repetitions of the description: 0 gives a body too small to compress.
    size: usize,
}

fn origin() -> impl Strategy<Value = Origin> {
    (
        prop::sample::select(vec![200u16, 200, 200, 203, 404, 500]),
        prop::sample::select(vec![
            "max-age=60",
            "public, max-age=60",
            "no-store",
            "private, max-age=60",
            "no-cache",
            "max-age=60, no-transform",
            "max-age=1, stale-while-revalidate=600",
        ]),
        prop::option::of(prop::sample::select(vec!["\"v1\"", "W/\"v1\"", "garbage"])),
        prop::bool::ANY,
        prop::sample::select(vec!["application/json", "text/html", "image/png"]),
        prop::bool::weighted(0.15),
        prop::sample::select(vec![0usize, 1, 40]),
    )
        .prop_map(
            |(status, cache_control, etag, last_modified, content_type, content_encoding, size)| {
                Origin {
                    status,
                    cache_control,
                    etag,
                    last_modified,
                    content_type,
                    content_encoding,
                    size,
                }
            },
        )
}

impl Origin {
    fn platform(&self) -> MemoryPlatform {
        let origin = self.clone();
        MemoryPlatform::new(move |request| {
            let body = serde_json::to_vec(&serde_json::json!({
                "id": 1, "name": "Lamp", "seller": {"id": 3, "name": "Acme"},
                "description": "a long description ".repeat(origin.size),
            }))
            .unwrap();
            let mut r = Response::builder()
                .status(origin.status)
                .header("cache-control", origin.cache_control)
                .header("content-type", origin.content_type);
            if let Some(etag) = origin.etag {
                r = r.header("etag", etag);
            }
            if origin.last_modified {
                r = r.header("last-modified", "Tue, 24 Nov 2026 10:00:00 GMT");
            }
            if origin.content_encoding {
                r = r.header("content-encoding", "gzip");
            }
            let body = if request.method() == Method::GET {
                body
            } else {
                b"{\"ok\":true}".to_vec()
            };
            Ok(r.body(Body::from(body)).unwrap())
        })
    }
}

/// What a request asks for beyond the URL.
#[derive(Debug, Clone)]
struct Ask {
    method: &'static str,
    query: &'static str,
    accept_encoding: Option<&'static str>,
    /// How to fill If-None-Match from the previous response's ETag.
    condition: Condition,
    elapsed: u64,
}

#[derive(Debug, Clone, Copy)]
enum Condition {
    None,
    Same,
    Weak,
    InList,
    Star,
    Other,
    ModifiedSince,
}

fn ask(methods: Vec<&'static str>) -> impl Strategy<Value = Ask> {
    (
        prop::sample::select(methods),
        prop::sample::select(vec![
            "",
            "?fields=id,name",
            "?fields=seller(name)",
            "?fields=nope",
        ]),
        prop::option::of(prop::sample::select(vec![
            "br",
            "gzip",
            "identity",
            "br;q=0, gzip",
            "*",
        ])),
        prop::sample::select(vec![
            Condition::None,
            Condition::Same,
            Condition::Same,
            Condition::Weak,
            Condition::InList,
            Condition::Star,
            Condition::Other,
            Condition::ModifiedSince,
        ]),
        prop::sample::select(vec![0u64, 0, 30, 61, 700]),
    )
        .prop_map(|(method, query, accept_encoding, condition, elapsed)| Ask {
            method,
            query,
            accept_encoding,
            condition,
            elapsed,
        })
}

impl Ask {
    fn request(&self, method: &str, previous: Option<&Response<Body>>) -> Request<Body> {
        let mut r = Request::builder()
            .method(method)
            .uri(format!("{URL}{}", self.query));
        if let Some(coding) = self.accept_encoding {
            r = r.header("accept-encoding", coding);
        }
        let etag = previous
            .and_then(|p| p.headers().get(header::ETAG))
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        let inm = match (self.condition, etag) {
            (Condition::Same, Some(etag)) => Some(etag),
            (Condition::Weak, Some(etag)) => Some(format!("W/{}", etag.trim_start_matches("W/"))),
            (Condition::InList, Some(etag)) => Some(format!("\"a\", {etag}, \"b\"")),
            (Condition::Star, _) => Some("*".to_string()),
            (Condition::Other, _) => Some("\"other\"".to_string()),
            _ => None,
        };
        if let Some(inm) = inm {
            r = r.header("if-none-match", inm);
        }
        if let Condition::ModifiedSince = self.condition {
            r = r.header("if-modified-since", "Wed, 25 Nov 2026 00:00:00 GMT");
        }
        r.body(Body::new()).unwrap()
    }
}

fn send(p: &MemoryPlatform, request: Request<Body>) -> Response<Body> {
    let worker = EdgeWorker::new(CacheTier::new(crate::hops::TierId::edge("prop"), true));
    let outcome = now_or_never(worker.handle(p, request)).expect("in-memory ports never wait");
    for task in outcome.deferred {
        now_or_never(worker.run_deferred(p, task)).expect("in-memory ports never wait");
    }
    outcome.response
}

fn content_length(response: &Response<Body>) -> Option<usize> {
    let value = response.headers().get(header::CONTENT_LENGTH)?;
    Some(value.to_str().unwrap().parse().unwrap())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(192))]

    #[test]
    fn a_304_has_no_body_and_answers_the_etag_just_served(
        origin in origin(),
        first in ask(vec!["GET"]),
        second in ask(vec!["GET", "HEAD"]),
    ) {
        let p = origin.platform();
        let served = send(&p, first.request("GET", None));
        let mut same = first.clone();
        same.condition = Condition::Same;
        same.method = second.method;
        for ask in [&second, &same] {
            let response = send(&p, ask.request(ask.method, Some(&served)));
            if response.status() == StatusCode::NOT_MODIFIED {
                prop_assert!(response.body().is_empty(), "a 304 with a body");
                prop_assert!(content_length(&response).unwrap_or(0) == 0);
            }
        }
        // The same request again, naming the tag it was just given: the client's copy is
        // current (weak comparison, RFC 9110 §13.1.2).
        let tag = served
            .headers()
            .get(header::ETAG)
            .and_then(|v| v.to_str().ok())
            .and_then(EntityTag::parse);
        if served.status() == StatusCode::OK && tag.is_some() {
            let again = send(&p, same.request(same.method, Some(&served)));
            prop_assert_eq!(again.status(), StatusCode::NOT_MODIFIED);
            prop_assert!(again.body().is_empty());
        }
    }

    #[test]
    fn content_length_is_the_body_and_head_is_get_without_the_body(
        origin in origin(),
        asks in prop::collection::vec(ask(vec!["GET", "GET", "HEAD", "HEAD", "POST", "PUT"]), 1..5),
    ) {
        // Two platforms fed the same steps; one sends HEAD where the other sends GET.
        let (as_sent, as_get) = (origin.platform(), origin.platform());
        let (mut previous_sent, mut previous_get) = (None, None);
        for ask in asks {
            let sent = send(&as_sent, ask.request(ask.method, previous_sent.as_ref()));
            let twin_method = if ask.method == "HEAD" { "GET" } else { ask.method };
            let twin = send(&as_get, ask.request(twin_method, previous_get.as_ref()));
            let safe = ask.method == "GET" || ask.method == "HEAD";
            for response in [&sent, &twin] {
                if response.status() == StatusCode::NOT_MODIFIED {
                    prop_assert!(response.body().is_empty());
                }
                if safe && response.status().is_success() {
                    prop_assert!(content_length(response).is_some(), "a 2xx without Content-Length");
                }
            }
            if let Some(length) = content_length(&twin) {
                prop_assert_eq!(length, twin.body().len());
            }
            if ask.method == "HEAD" {
                prop_assert!(sent.body().is_empty(), "a HEAD response with a body");
                prop_assert_eq!(sent.status(), twin.status());
                prop_assert_eq!(sent.headers(), twin.headers());
            } else if let Some(length) = content_length(&sent) {
                prop_assert_eq!(length, sent.body().len());
            }
            as_sent.advance(ask.elapsed);
            as_get.advance(ask.elapsed);
            previous_sent = Some(sent);
            previous_get = Some(twin);
        }
    }
}
