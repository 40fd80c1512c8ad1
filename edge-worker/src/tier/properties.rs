//! Properties of the tier over generated responses and timings (issue 8):
//!
//! * a stored response is reused only when RFC 9111 allows it: never for `no-store`,
//!   `private`, `no-cache`, `Vary: *`, or an Authorization request the response did not mark
//!   shareable (§3, §3.5, §4.1); a HIT only when `http-cache-semantics` (shared cache) says the
//!   response was storable and is fresh enough for the request at that time, and an UPDATING
//!   only within a `stale-while-revalidate` window (RFC 5861 §3) the response allows;
//!   conversely a storable response still fresh for a plain request is a HIT;
//! * Content-Length is the body's length on every response, and a HEAD response is the GET
//!   response without its body (same status and fields, so its Content-Length is the GET's).

use std::time::{Duration, SystemTime};

use http::{HeaderMap, Request, Response};
use http_cache_semantics::{BeforeRequest, CachePolicy};
use proptest::prelude::*;

use super::*;
use crate::cache_control::CacheControl;
use crate::entry::cache_options;
use crate::ready::now_or_never;
use crate::testing::MemoryPlatform;

const URL: &str = "https://shop.example/api/products/1";

fn run(p: &MemoryPlatform, request: Request<Body>) -> Outcome {
    let tier = CacheTier::new(crate::hops::TierId::edge("prop"), true);
    let outcome = now_or_never(tier.handle(p, request)).expect("in-memory ports never wait");
    super::with_fields(&tier, outcome)
}

fn cf(outcome: &Outcome) -> &str {
    outcome.response.headers()["cf-cache-status"]
        .to_str()
        .unwrap()
}

fn seconds() -> impl Strategy<Value = u64> {
    prop::sample::select(vec![0u64, 1, 30, 60, 600])
}

fn directive() -> impl Strategy<Value = String> {
    prop_oneof![
        prop::sample::select(vec![
            "public",
            "private",
            "no-store",
            "no-cache",
            "must-revalidate",
            "proxy-revalidate",
        ])
        .prop_map(str::to_string),
        (
            prop::sample::select(vec![
                "max-age",
                "s-maxage",
                "stale-while-revalidate",
                "stale-if-error",
            ]),
            seconds()
        )
            .prop_map(|(name, n)| format!("{name}={n}")),
    ]
}

/// A response's caching fields, as an origin might send them.
#[derive(Debug, Clone)]
struct Origin {
    status: u16,
    cache_control: Option<Vec<String>>,
    /// RFC 9213: when present (and valid) it replaces Cache-Control and Expires for us.
    cdn_cache_control: Option<Vec<String>>,
    /// Seconds from the response time.
    expires: Option<i64>,
    date: Option<i64>,
    age: Option<u64>,
    vary: Option<&'static str>,
    set_cookie: bool,
    etag: bool,
    last_modified: bool,
}

fn origin() -> impl Strategy<Value = Origin> {
    let offset = || prop::option::of(prop::sample::select(vec![-600i64, -60, 0, 30, 600]));
    (
        prop::sample::select(vec![
            200u16, 200, 200, 203, 204, 206, 301, 302, 404, 410, 500,
        ]),
        prop::option::weighted(0.8, prop::collection::vec(directive(), 0..4)),
        prop::option::weighted(0.2, prop::collection::vec(directive(), 1..3)),
        offset(),
        offset(),
        prop::option::of(prop::sample::select(vec![0u64, 10, 100, 1000])),
        prop::option::weighted(
            0.3,
            prop::sample::select(vec!["accept-encoding", "*", "cookie"]),
        ),
        prop::bool::weighted(0.2),
        prop::bool::ANY,
        prop::bool::weighted(0.3),
    )
        .prop_map(
            |(
                status,
                cache_control,
                cdn_cache_control,
                expires,
                date,
                age,
                vary,
                set_cookie,
                etag,
                last_modified,
            )| Origin {
                status,
                cache_control,
                cdn_cache_control,
                expires,
                date,
                age,
                vary,
                set_cookie,
                etag,
                last_modified,
            },
        )
}

fn at(t0: SystemTime, offset: i64) -> SystemTime {
    if offset >= 0 {
        t0 + Duration::from_secs(offset.unsigned_abs())
    } else {
        t0 - Duration::from_secs(offset.unsigned_abs())
    }
}

impl Origin {
    fn response(&self, t0: SystemTime) -> Response<Body> {
        let mut r = Response::builder().status(self.status);
        if let Some(cc) = &self.cache_control {
            r = r.header("cache-control", cc.join(", "));
        }
        if let Some(cdn) = &self.cdn_cache_control {
            r = r.header("cdn-cache-control", cdn.join(", "));
        }
        if let Some(offset) = self.expires {
            r = r.header("expires", httpdate::fmt_http_date(at(t0, offset)));
        }
        if let Some(offset) = self.date {
            r = r.header("date", httpdate::fmt_http_date(at(t0, offset)));
        }
        if let Some(age) = self.age {
            r = r.header("age", age);
        }
        if let Some(vary) = self.vary {
            r = r.header("vary", vary);
        }
        if self.set_cookie {
            r = r.header("set-cookie", "session=1");
        }
        if self.etag {
            r = r.header("etag", "\"v1\"");
        }
        if self.last_modified {
            r = r.header("last-modified", "Tue, 24 Nov 2026 10:00:00 GMT");
        }
        r.body(Body::from(b"stored body".to_vec())).unwrap()
    }
}

/// The client's side: the same request twice.
#[derive(Debug, Clone)]
struct Client {
    authorization: bool,
    cache_control: Option<&'static str>,
    cookie: bool,
}

fn client() -> impl Strategy<Value = Client> {
    (
        prop::bool::weighted(0.25),
        prop::option::weighted(
            0.25,
            prop::sample::select(vec![
                "no-cache",
                "no-store",
                "max-age=0",
                "max-age=30",
                "min-fresh=20",
                "max-stale=100",
                "max-stale",
            ]),
        ),
        prop::bool::ANY,
    )
        .prop_map(|(authorization, cache_control, cookie)| Client {
            authorization,
            cache_control,
            cookie,
        })
}

impl Client {
    fn request(&self) -> Request<Body> {
        let mut r = Request::builder().uri(URL);
        if self.authorization {
            r = r.header("authorization", "Bearer a.b.c");
        }
        if let Some(cc) = self.cache_control {
            r = r.header("cache-control", cc);
        }
        if self.cookie {
            r = r.header("cookie", "a=1");
        }
        r.body(Body::new()).unwrap()
    }
}

/// The response fields a CDN judges by (RFC 9213), as the tier reads them.
fn effective(response: &Response<Body>, now: SystemTime) -> HeaderMap {
    crate::cache_view::effective(response.headers(), now).into_owned()
}

/// The head the library judges: the cache's view of the fields, and the status as RFC 9111 §3
/// lets a cache judge it (`cache_view::policy_status`).
fn head_of(response: &Response<Body>, headers: HeaderMap) -> Response<()> {
    let mut head = Response::new(());
    *head.status_mut() = crate::cache_view::policy_status(response.status(), &headers);
    *head.headers_mut() = headers;
    head
}

fn view(request: &Request<Body>) -> Request<()> {
    let mut view = Request::new(());
    *view.uri_mut() = request.uri().clone();
    *view.headers_mut() = request.headers().clone();
    view
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn a_stored_response_is_reused_only_when_rfc9111_allows(
        origin in origin(),
        client in client(),
        elapsed in prop::sample::select(vec![0u64, 1, 20, 29, 31, 59, 61, 100, 599, 601, 700, 5000]),
    ) {
        let p = MemoryPlatform::new(move |_| Ok(Response::new(Body::new())));
        let t0 = p.now.get();
        let upstream = origin.clone();
        p.script(move |_| Ok(upstream.response(t0)));
        let first = run(&p, client.request());
        prop_assert_eq!(p.fetches(), 1);
        p.advance(elapsed);
        let t1 = p.now.get();
        let second = run(&p, client.request());
        let reused = p.fetches() == 1;
        let status = cf(&second).to_string();
        prop_assert_eq!(reused, status == "HIT" || status == "UPDATING", "{}", status);
        if reused {
            prop_assert_eq!(second.response.body(), first.response.body());
        }

        // The reference: http-cache-semantics as a shared cache, on the CDN's view.
        let response = origin.response(t0);
        let cdn = effective(&response, at(t0, 0));
        let request = client.request();
        let policy = CachePolicy::new_options(
            &view(&request),
            &head_of(&response, cdn.clone()),
            t0,
            cache_options(),
        );
        let cc = CacheControl::from_headers(&cdn);
        let request_cc = CacheControl::from_headers(request.headers());

        // Hard rules, stated without the library.
        let never = [
            (cc.has("no-store") || request_cc.has("no-store"), "no-store"),
            (cc.has("private"), "private"),
            (cc.has("no-cache") || request_cc.has("no-cache"), "no-cache"),
            (origin.vary == Some("*"), "Vary: *"),
            // Stricter than RFC 9111 (which lets `public` share it), as CDNs are: a cookie
            // belongs to one client.
            (origin.set_cookie, "Set-Cookie"),
            (
                client.authorization
                    && !(cc.has("public") || cc.has("s-maxage") || cc.has("must-revalidate")),
                "Authorization without public, s-maxage or must-revalidate",
            ),
        ];
        let forbidden = never.iter().any(|(applies, _)| *applies);
        for (applies, why) in never {
            prop_assert!(!(applies && reused), "reused despite {}", why);
        }

        let fresh_for_request = policy.is_storable()
            && matches!(policy.before_request(&view(&request), t1), BeforeRequest::Fresh(_));
        if status == "HIT" {
            prop_assert!(fresh_for_request, "HIT though not fresh for the request");
        }
        if status == "UPDATING" {
            // RFC 5861 §3 within the window, and nothing forbids stale (RFC 9111 §4.2.4).
            prop_assert!(policy.is_storable());
            prop_assert!(!cc.forbids_stale());
            let lifetime = match policy.time_to_live(t0) {
                ttl if ttl.is_zero() => Duration::ZERO,
                ttl => ttl + policy.age(t0),
            };
            let stale_for = policy.age(t1).saturating_sub(lifetime);
            let window = cc.seconds("stale-while-revalidate");
            prop_assert!(window.is_some_and(|w| stale_for <= Duration::from_secs(w)),
                "UPDATING {:?} stale, window {:?}", stale_for, window);
            // A client asking for validation is not given a stale answer.
            prop_assert!(!(request_cc.has("no-cache") || request_cc.has("max-age") || request_cc.has("min-fresh")));
        }
        // Conversely: storable, fresh, no request directives, one variant, no hard rule
        // against it: a HIT.
        if fresh_for_request
            && !forbidden
            && client.cache_control.is_none()
            && origin.vary != Some("*")
            && !origin.set_cookie
            && !policy.time_to_live(t1).is_zero()
        {
            prop_assert_eq!(status.as_str(), "HIT");
        }
    }

    #[test]
    fn content_length_is_the_body_and_head_is_get_without_the_body(
        steps in prop::collection::vec(
            (
                prop::sample::select(vec!["GET", "GET", "HEAD", "POST"]),
                prop::sample::select(vec![0u64, 30, 61, 700]),
            ),
            1..5,
        ),
        origin in origin(),
        body_len in 0usize..600,
    ) {
        // Two platforms, same origin, same steps: one sends HEAD where the other sends GET.
        let make = || {
            let origin = origin.clone();
            let p = MemoryPlatform::new(|_| Ok(Response::new(Body::new())));
            let t0 = p.now.get();
            p.script(move |request| {
                let mut response = origin.response(t0);
                if request.method() != Method::POST {
                    *response.body_mut() = vec![b'x'; body_len].into();
                }
                Ok(response)
            });
            p
        };
        let (as_sent, as_get) = (make(), make());
        for (method, elapsed) in steps {
            let request = |method: &str| {
                Request::builder().method(method).uri(URL).body(Body::new()).unwrap()
            };
            let sent = run(&as_sent, request(method));
            let twin = run(&as_get, request(if method == "HEAD" { "GET" } else { method }));
            for outcome in [&sent, &twin] {
                if let Some(length) = outcome.response.headers().get(header::CONTENT_LENGTH) {
                    let expected = if method == "HEAD" { twin.response.body().len() } else { outcome.response.body().len() };
                    prop_assert_eq!(length.to_str().unwrap(), expected.to_string());
                } else {
                    prop_assert_eq!(method, "POST", "GET and HEAD always carry Content-Length");
                }
            }
            if method == "HEAD" {
                prop_assert!(sent.response.body().is_empty());
                prop_assert_eq!(sent.response.status(), twin.response.status());
                prop_assert_eq!(sent.response.headers(), twin.response.headers());
            }
            as_sent.advance(elapsed);
            as_get.advance(elapsed);
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1024))]

    /// The hit decided from the record a tier made when it stored a response is the hit the
    /// full `http-cache-semantics` policy decides: the same freshness, the same remaining
    /// lifetime, the same Age, at any time after storing, with or without a lifetime the
    /// cache chose (jitter, negative caching).
    #[test]
    fn a_hit_from_the_record_is_the_policys_hit(
        origin in origin(),
        client in client(),
        local in prop::option::of((0u64..900, prop::bool::ANY)),
        later in prop::sample::select(vec![0u64, 1, 29, 30, 31, 59, 60, 61, 299, 600, 5000]),
        nanos in 0u32..1_000_000_000,
    ) {
        let t0 = SystemTime::UNIX_EPOCH + Duration::from_secs(1_764_000_000);
        let response = origin.response(t0);
        let request = client.request();
        let mut stored = StoredResponse::capture(request.headers(), &response, t0);
        stored.lifetime = local.map(|(secs, negative)| crate::entry::LocalLifetime { secs, negative });
        stored.seal();
        let now = t0 + Duration::from_secs(later) + Duration::from_nanos(u64::from(nanos));
        let policy = stored.policy(&Method::GET, request.uri());
        let by_policy = match crate::freshness::decide(&policy, &stored, &request, now) {
            crate::freshness::Freshness::Fresh { ttl } => Some((ttl, policy.age(now))),
            _ => None,
        };
        let by_record = crate::freshness::fresh_hit(&stored, &request, now);
        match by_record {
            // A request with directives of its own, or an entry that needs the policy, is
            // decided by the policy; when the record decides, it must agree.
            None => prop_assert!(
                client.cache_control.is_some() || by_policy.is_none()
                    || stored.record.is_some_and(|r| r.lifetime.is_zero()),
                "the record missed a hit the policy serves: {by_policy:?}"
            ),
            Some(hit) => prop_assert_eq!(Some(hit), by_policy),
        }
    }
}
