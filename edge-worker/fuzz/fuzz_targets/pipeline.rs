//! The whole edge worker (`EdgeWorker::handle`: auth gate, routing, ?fields= projection, RFC 9111
//! tier, preconditions, content coding) on arbitrary requests, against an upstream whose
//! answers (status, fields, body, gzip or garbage) are fuzz-chosen too. Two or three requests
//! per input share one in-memory cache, with time passing between them, and deferred work
//! (background revalidation) runs after each.
//!
//! Invariants on every response: no panic; the status is 100..=599 (as every upstream status
//! is); a 304 has no body; a Content-Length is the body's length; a HEAD response is the GET
//! response without its body (same status and fields, Content-Length included), checked by
//! replaying the request as GET (without its Range, which HEAD ignores) on a copy of the
//! platform.
//!
//! Run: `edge-worker/fuzz/run.sh pipeline 600` (stable), or `cargo +nightly fuzz run pipeline`.

#![no_main]

use std::io::Write;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, SystemTime};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use edge_worker::auth::{AuthConfig, AuthPolicy};
use edge_worker::ready::now_or_never;
use edge_worker::routing::{Router, RoutingConfig};
use edge_worker::testing::{Answer, MemoryPlatform};
use edge_worker::hops::TierId;
use edge_worker::Body;
use edge_worker::{CacheTier, EdgeWorker};
use http::header::{self, HeaderName, HeaderValue};
use http::{HeaderMap, Method, Request, Response, StatusCode};
use jsonwebtoken::{Algorithm, EncodingKey};
use libfuzzer_sys::arbitrary::{Result, Unstructured};
use libfuzzer_sys::fuzz_target;

const SECRET: &str = "edge-demo-secret-change-me-0123456789";
const NOW: u64 = 1_795_564_800;

fn auth() -> Arc<AuthPolicy> {
    static POLICY: OnceLock<Arc<AuthPolicy>> = OnceLock::new();
    POLICY
        .get_or_init(|| {
            let config: AuthConfig = serde_json::from_value(serde_json::json!({
                "realm": "shop",
                "keys": [{"kid": "hs", "alg": "HS256", "secret": SECRET}],
                "routes": [
                    {"path": "/api/users/*", "mode": "required", "issuer": "https://issuer.example", "audience": "edge"},
                    {"path": "/api/feed", "mode": "optional", "issuer": "https://issuer.example", "audience": "edge"}
                ],
                "forward": [{"claim": "sub", "header": "x-auth-sub"}]
            }))
            .unwrap();
            Arc::new(config.build().unwrap())
        })
        .clone()
}

fn router() -> Router {
    static ROUTER: OnceLock<Router> = OnceLock::new();
    ROUTER
        .get_or_init(|| {
            let config: RoutingConfig = serde_json::from_value(serde_json::json!({
                "origin": [
                    {"name": "eu", "url": "https://eu.origin.example", "lat": 50.1, "lon": 8.7},
                    {"name": "us", "url": "https://us.origin.example", "lat": 39.0, "lon": -77.5}
                ],
                "failover": true
            }))
            .unwrap();
            config.build().unwrap()
        })
        .clone()
}

/// Bearer credentials: valid for two subjects, expired, unsigned, and not Bearer at all.
fn authorizations() -> &'static [String] {
    static TOKENS: OnceLock<Vec<String>> = OnceLock::new();
    TOKENS.get_or_init(|| {
        let sign = |claims: String| {
            let message = format!(
                "{}.{}",
                URL_SAFE_NO_PAD.encode(r#"{"alg":"HS256","kid":"hs"}"#),
                URL_SAFE_NO_PAD.encode(claims)
            );
            let key = EncodingKey::from_secret(SECRET.as_bytes());
            let signature =
                jsonwebtoken::crypto::sign(message.as_bytes(), &key, Algorithm::HS256).unwrap();
            format!("Bearer {message}.{signature}")
        };
        let claims = |sub: &str, exp: u64| {
            format!(
                r#"{{"sub":"{sub}","iss":"https://issuer.example","aud":"edge","exp":{exp},"iat":{}}}"#,
                NOW - 10
            )
        };
        vec![
            sign(claims("user-1", NOW + 3600)),
            sign(claims("user-2", NOW + 3600)),
            sign(claims("user-1", NOW + 60)),
            sign(claims("user-1", NOW - 3600)),
            "Bearer e30.e30.".into(),
            "Basic dXNlcjpwYXNz".into(),
            "Bearer".into(),
        ]
    })
}

const DATES: [&str; 4] = [
    "Wed, 25 Nov 2026 00:00:00 GMT",
    "Tue, 24 Nov 2026 10:00:00 GMT",
    "Thu, 01 Jan 1970 00:00:00 GMT",
    "Fri, 25 Nov 2050 00:00:00 GMT",
];

/// Field values worth trying, by name; anything else is arbitrary bytes.
fn dictionary(name: &str) -> &'static [&'static str] {
    match name {
        "cache-control" => &[
            "max-age=60",
            "public, max-age=60",
            "s-maxage=30",
            "no-store",
            "private",
            "private, max-age=60",
            "no-cache",
            "max-age=60, stale-while-revalidate=30",
            "max-age=1, stale-if-error=600",
            "must-revalidate, max-age=1",
            "public",
            "no-transform, max-age=60",
            "max-age=0",
            "min-fresh=10",
            "max-stale",
            "only-if-cached",
        ],
        "cdn-cache-control" => &[
            "max-age=600",
            "no-store",
            "private",
            "max-age=60, stale-if-error=30",
            "max-age=5, stale-while-revalidate=300",
            "max-age=\"x\"",
            "s-maxage=-5",
        ],
        "etag" | "if-none-match" | "if-match" => &[
            "\"v1\"",
            "W/\"v1\"",
            "*",
            "\"v1\", \"v2\"",
            "\"v1-br\"",
            "\"v1-gz\"",
            "garbage",
        ],
        "vary" => &[
            "accept-encoding",
            "*",
            "cookie",
            "authorization, accept",
            "Accept-Encoding, User-Agent",
        ],
        "content-type" => &[
            "application/json",
            "text/html; charset=utf-8",
            "image/png",
            "application/vnd.api+json",
        ],
        "content-encoding" => &["gzip", "br", "identity"],
        "accept-encoding" => &[
            "br",
            "gzip",
            "gzip;q=0, br;q=0.5",
            "*",
            "identity;q=0",
            "br;q=1, gzip;q=1",
        ],
        "age" => &["0", "10", "3600", "999999999999999999999"],
        "set-cookie" => &["session=abc; Path=/"],
        "location" | "content-location" => &[
            "/a",
            "http://shop.example/api/products/1",
            "https://elsewhere.example/a",
            "//x",
        ],
        "pragma" => &["no-cache"],
        "cookie" => &["a=1", "a=2"],
        "accept" => &["application/json", "*/*"],
        "x-auth-sub" => &["spoofed"],
        "range" | "if-range" => &["bytes=0-10", "\"v1\""],
        _ => &[],
    }
}

const RESPONSE_FIELDS: [&str; 15] = [
    "cache-control",
    "cache-control",
    "cdn-cache-control",
    "etag",
    "last-modified",
    "expires",
    "date",
    "age",
    "vary",
    "set-cookie",
    "content-type",
    "content-type",
    "content-encoding",
    "location",
    "content-location",
];

const REQUEST_FIELDS: [&str; 14] = [
    "accept-encoding",
    "accept-encoding",
    "if-none-match",
    "if-match",
    "if-modified-since",
    "if-unmodified-since",
    "cache-control",
    "authorization",
    "cookie",
    "accept",
    "x-auth-sub",
    "range",
    "pragma",
    "host",
];

fn value(u: &mut Unstructured, name: &str) -> Result<Option<HeaderValue>> {
    let dates = matches!(
        name,
        "last-modified" | "expires" | "date" | "if-modified-since" | "if-unmodified-since"
    );
    Ok(match u.int_in_range(0..=7u8)? {
        0 => HeaderValue::from_bytes(u.arbitrary::<&[u8]>()?).ok(),
        1 | 2 if dates => Some(HeaderValue::from_static(*u.choose(&DATES)?)),
        _ if name == "authorization" => HeaderValue::from_str(u.choose(authorizations())?).ok(),
        _ => match dictionary(name) {
            [] => HeaderValue::from_bytes(u.arbitrary::<&[u8]>()?).ok(),
            values => Some(HeaderValue::from_static(*u.choose(values)?)),
        },
    })
}

fn fields(u: &mut Unstructured, names: &[&'static str], headers: &mut HeaderMap) -> Result<()> {
    for _ in 0..u.int_in_range(0..=6u8)? {
        let name = if u.ratio(1, 12)? {
            match HeaderName::from_bytes(u.arbitrary::<&[u8]>()?) {
                Ok(name) => name,
                Err(_) => continue,
            }
        } else {
            HeaderName::from_static(*u.choose(names)?)
        };
        if let Some(value) = value(u, name.as_str())? {
            headers.append(name, value);
        }
    }
    Ok(())
}

fn document(u: &mut Unstructured) -> Result<Vec<u8>> {
    let name = "a long description ".repeat(usize::from(u.int_in_range(0..=30u8)?));
    Ok(serde_json::to_vec(&serde_json::json!({
        "id": u.arbitrary::<u16>()?, "name": "Lamp", "price": 12.5,
        "seller": {"id": 3, "name": "Acme"}, "tags": ["a", "b"],
        "description": name,
    }))
    .unwrap())
}

fn answer(u: &mut Unstructured) -> Result<Answer> {
    if u.ratio(1, 10)? {
        return Ok(Answer::Fails);
    }
    let status = if u.ratio(3, 4)? {
        *u.choose(&[
            200u16, 200, 200, 201, 203, 204, 206, 301, 304, 404, 410, 500, 502, 503,
        ])?
    } else {
        u.int_in_range(100..=599)?
    };
    let mut headers = HeaderMap::new();
    fields(u, &RESPONSE_FIELDS, &mut headers)?;
    let body = match u.int_in_range(0..=4u8)? {
        0 => u.arbitrary::<&[u8]>()?.to_vec(),
        1 => {
            // Real gzip of something, labelled as such.
            let mut encoder =
                flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
            encoder.write_all(&document(u)?).unwrap();
            headers.insert(header::CONTENT_ENCODING, HeaderValue::from_static("gzip"));
            encoder.finish().unwrap()
        }
        2 => {
            // Garbage that says it is gzip.
            headers.insert(header::CONTENT_ENCODING, HeaderValue::from_static("gzip"));
            let mut garbage = vec![0x1f, 0x8b];
            garbage.extend_from_slice(u.arbitrary::<&[u8]>()?);
            garbage
        }
        _ => document(u)?,
    };
    Ok(Answer::Response {
        status: StatusCode::from_u16(status).unwrap(),
        headers,
        body: Body::from(body),
        content_length: u.arbitrary()?,
    })
}

const METHODS: [&str; 9] = [
    "GET", "GET", "GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "PURGE",
];
const PATHS: [&str; 6] = [
    "/api/products/1",
    "/api/users/1",
    "/api/feed",
    "/",
    "/a",
    "/api/users/2",
];
const QUERIES: [&str; 8] = [
    "",
    "",
    "?fields=id,name",
    "?fields=seller(name),tags",
    "?b=2&&a=1",
    "?fields=",
    "?fields[products]=name",
    "?fields=id&fields=name",
];

/// One request, and what the previous response said (to send its validators back).
fn request(u: &mut Unstructured, previous: Option<&Response<Vec<u8>>>) -> Result<Request<Vec<u8>>> {
    let method = Method::from_bytes(u.choose(&METHODS)?.as_bytes()).unwrap();
    let uri = if u.ratio(1, 16)? {
        http::Uri::try_from(u.arbitrary::<&[u8]>()?).ok()
    } else {
        let scheme = *u.choose(&["https", "http", "HTTPS"])?;
        let host = *u.choose(&["shop.example", "Shop.Example", "other.example:8443"])?;
        let path = if u.ratio(1, 8)? {
            String::from_utf8_lossy(u.arbitrary::<&[u8]>()?).into_owned()
        } else {
            u.choose(&PATHS)?.to_string()
        };
        format!("{scheme}://{host}{path}{}", u.choose(&QUERIES)?)
            .parse()
            .ok()
    };
    let mut request = Request::new(u.arbitrary::<&[u8]>()?.to_vec());
    *request.method_mut() = method;
    if let Some(uri) = uri {
        *request.uri_mut() = uri;
    }
    fields(u, &REQUEST_FIELDS, request.headers_mut())?;
    if let Some(previous) = previous {
        if u.ratio(1, 3)? {
            for (from, to) in [
                (header::ETAG, header::IF_NONE_MATCH),
                (header::LAST_MODIFIED, header::IF_MODIFIED_SINCE),
            ] {
                if let Some(v) = previous.headers().get(from) {
                    request.headers_mut().insert(to, v.clone());
                }
            }
        }
    }
    Ok(request)
}

fn copy(request: &Request<Vec<u8>>, method: Method) -> Request<Vec<u8>> {
    let mut copy = Request::new(request.body().clone());
    *copy.method_mut() = method;
    *copy.uri_mut() = request.uri().clone();
    *copy.headers_mut() = request.headers().clone();
    copy
}

/// `asked`: the request line, for the failure message.
fn check(response: &Response<Vec<u8>>, head: bool, asked: &str) {
    let status = response.status().as_u16();
    assert!((100..=599).contains(&status), "{asked}: status {status}");
    if response.status() == StatusCode::NOT_MODIFIED {
        assert!(response.body().is_empty(), "{asked}: a 304 with a body");
    }
    let lengths: Vec<_> = response
        .headers()
        .get_all(header::CONTENT_LENGTH)
        .iter()
        .collect();
    assert!(
        lengths.len() <= 1,
        "{asked}: several Content-Length fields: {lengths:?}"
    );
    if head {
        assert!(
            response.body().is_empty(),
            "{asked}: a HEAD response with a body ({status})"
        );
    } else if let Some(length) = lengths.first() {
        assert_eq!(
            length.to_str().ok().and_then(|l| l.parse::<usize>().ok()),
            Some(response.body().len()),
            "{asked}: Content-Length is not the body length (status {status})"
        );
    }
}

fn run(worker: &EdgeWorker, p: &MemoryPlatform, request: Request<Vec<u8>>) -> Response<Vec<u8>> {
    let outcome = now_or_never(worker.handle(p, request.map(Body::from)))
        .expect("in-memory ports never wait");
    for task in outcome.deferred {
        now_or_never(worker.run_deferred(p, task)).expect("in-memory ports never wait");
    }
    outcome.response.map(|body| body.to_vec())
}

fn one(u: &mut Unstructured) -> Result<()> {
    let mut worker = EdgeWorker::new(CacheTier::new(TierId::edge("fuzz"), u.arbitrary()?));
    if u.ratio(1, 3)? {
        worker = worker.with_auth(auth());
    }
    if u.ratio(1, 5)? {
        worker = worker.with_routing(router());
    }
    let answers = (0..u.int_in_range(1..=4u8)?)
        .map(|_| answer(u))
        .collect::<Result<Vec<_>>>()?;
    let p = MemoryPlatform::answering(SystemTime::UNIX_EPOCH + Duration::from_secs(NOW), answers);
    let mut previous: Option<Response<Vec<u8>>> = None;
    for _ in 0..u.int_in_range(2..=3u8)? {
        let request = request(u, previous.as_ref())?;
        let head = request.method() == Method::HEAD;
        let asked = format!("{} {}", request.method(), request.uri());
        // What the same request as GET would have given, from the same state; without its
        // Range, which only GET honours (RFC 9110 §14.2).
        let as_get = head.then(|| {
            let twin = p.twin();
            let mut get = copy(&request, Method::GET);
            get.headers_mut().remove(header::RANGE);
            let response = run(&worker, &twin, get);
            check(&response, false, &asked);
            response
        });
        let response = run(&worker, &p, request);
        check(&response, head, &asked);
        if let Some(get) = as_get {
            assert_eq!(
                response.status(),
                get.status(),
                "{asked}: HEAD and GET differ in status"
            );
            assert_eq!(
                response.headers(),
                get.headers(),
                "{asked}: HEAD and GET differ in fields"
            );
        }
        previous = Some(response);
        let secs = *u.choose(&[0u64, 1, 5, 30, 59, 61, 120, 700, 4000, 90_000])?;
        p.advance(secs);
    }
    Ok(())
}

fuzz_target!(|data: &[u8]| {
    let _ = one(&mut Unstructured::new(data));
});
