//! Whether a stored response may be reused now (RFC 9111 §4.2), served stale
//! (RFC 5861 §3, §4), or must be validated first (RFC 9111 §4.3).
//!
//! `http-cache-semantics` decides storability, freshness lifetime, age and request matching
//! and builds the conditional request. We go beyond it for the RFC 5861 stale windows, which it
//! does not know, and keep RFC 9111 §4.2.4's rule that `must-revalidate`, `proxy-revalidate`,
//! `s-maxage` and `no-cache` forbid serving stale.
//!
//! Known conservatism inherited from the library: a shared cache treats `proxy-revalidate`
//! responses as having no freshness at all (always revalidated), and age is the stored `Age`
//! plus resident time (RFC 9111 §4.2.3 without the apparent-age correction, i.e. it trusts
//! upstream clocks no more than the `Age` they send).

use std::time::{Duration, SystemTime};

use http::Request;
use http_cache_semantics::{BeforeRequest, CachePolicy};

use crate::cache_control::CacheControl;
use crate::vary;
use crate::{Body, StoredResponse};

/// What a cache computes once, when it stores a response, so that a hit decides freshness
/// with integer comparisons: no `CachePolicy` rebuilt, no stored field parsed again. The same
/// figures `http-cache-semantics` gives for the entry (RFC 9111 §4.2: the lifetime from
/// `CDN-Cache-Control`, `s-maxage`, `max-age`, `Expires` or the heuristic, or the lifetime the
/// cache policy chose; the age it arrived with), and the RFC 5861 windows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FreshnessRecord {
    /// The freshness lifetime; zero when the response arrived stale (or may never be served
    /// without validation: `no-cache`), which leaves every decision to the full policy.
    pub lifetime: Duration,
    /// Its age when it arrived (RFC 9111 §4.2.3: the `Age` it came with).
    pub initial_age: Duration,
    /// `stale-while-revalidate` and `stale-if-error`, in seconds (0: absent).
    pub stale_while_revalidate: u64,
    pub stale_if_error: u64,
    /// RFC 9111 §4.2.4: `must-revalidate`, `proxy-revalidate`, `s-maxage` or `no-cache`.
    pub forbids_stale: bool,
    /// The request fields its `Vary` nominates, lowercase, sorted (RFC 9111 §4.1); a hit
    /// compares them with the request without reading the stored `Vary` again.
    pub vary: Vec<String>,
}

impl FreshnessRecord {
    /// The record of `stored` as `policy` (its own policy) judges it.
    pub fn of(stored: &StoredResponse, policy: &CachePolicy) -> Self {
        let arrived = stored.response_time;
        let initial_age = policy.age(arrived);
        let ttl = policy.time_to_live(arrived);
        let cc = CacheControl::from_headers(&crate::cache_view::effective(
            &stored.headers,
            stored.response_time,
        ));
        Self {
            lifetime: if ttl.is_zero() {
                Duration::ZERO
            } else {
                ttl.saturating_add(initial_age)
            },
            initial_age,
            stale_while_revalidate: cc.seconds("stale-while-revalidate").unwrap_or(0),
            stale_if_error: cc.seconds("stale-if-error").unwrap_or(0),
            forbids_stale: cc.forbids_stale(),
            vary: vary::vary_fields(&stored.headers),
        }
    }

    /// Its age at `now`: the age it arrived with plus the time it has been here (as
    /// `CachePolicy::age`).
    pub fn age(&self, arrived: SystemTime, now: SystemTime) -> Duration {
        // Saturating: an upstream's `Age` can be any number (found by the `pipeline` fuzz target).
        self.initial_age
            .saturating_add(now.duration_since(arrived).unwrap_or_default())
    }

    /// How long it stays fresh after `now`, when it is fresh.
    pub fn fresh_for(&self, arrived: SystemTime, now: SystemTime) -> Option<Duration> {
        let age = self.age(arrived, now);
        (age < self.lifetime).then(|| self.lifetime - age)
    }
}

/// A fresh hit decided from the stored record alone: for a request that states no freshness
/// requirements of its own and matches the entry's Vary, `Some((ttl, age))` when the entry
/// is fresh at `now`. `None` leaves the decision to [`decide`] (stale, validation, a request
/// with its own directives, an entry without a record).
pub fn fresh_hit(
    stored: &StoredResponse,
    request: &Request<Body>,
    now: SystemTime,
) -> Option<(Duration, Duration)> {
    let record = stored.record.as_ref()?;
    if !is_plain(request) {
        return None;
    }
    let ttl = record.fresh_for(stored.response_time, now)?;
    vary::matches_fields(&record.vary, stored, request.headers())
        .then(|| (ttl, record.age(stored.response_time, now)))
}

/// What may be done with a stored response for one request.
#[derive(Debug)]
pub enum Freshness {
    /// Reuse it without contacting upstream; `ttl` is the freshness left.
    Fresh { ttl: Duration },
    /// Stale by `stale_for`, within `stale-while-revalidate`: serve it now and refresh it in
    /// the background with `revalidation` (RFC 5861 §3).
    StaleWhileRevalidate {
        revalidation: http::request::Parts,
        stale_for: Duration,
    },
    /// Validate upstream first with `revalidation` (it carries If-None-Match /
    /// If-Modified-Since from the stored validators). If upstream fails or answers 5xx, the
    /// stale response may be served only when `stale_if_error` (RFC 5861 §4).
    MustRevalidate {
        revalidation: http::request::Parts,
        stale_for: Duration,
        stale_if_error: bool,
    },
    /// The stored response was selected for another request (method or Vary): a miss.
    Mismatch,
}

/// Decides for `request` at `now`. The request must already be in the tier's GET form.
pub fn decide(
    policy: &CachePolicy,
    stored: &StoredResponse,
    request: &Request<Body>,
    now: SystemTime,
) -> Freshness {
    if is_plain(request) && !policy.is_stale(now) && vary::matches(stored, request.headers()) {
        // The common hit: what `before_request` would decide, without the full response copy
        // (headers, formatted Date) it builds and we would throw away.
        return Freshness::Fresh {
            ttl: policy.time_to_live(now),
        };
    }
    // The policy compares Vary'd fields as sent; we compare them normalised.
    let aligned = vary::aligned(stored, request);
    let request = aligned.as_ref().unwrap_or(request);
    let response_cc =
        CacheControl::from_headers(&crate::cache_view::effective(&stored.headers, now));
    // RFC 9111 §4.2.4: a response whose directives forbid serving it stale is not served
    // stale whatever staleness the client accepts; `http-cache-semantics` lets max-stale
    // override everything but must-revalidate (found by tier/properties.rs).
    let strict;
    let request = if response_cc.forbids_stale()
        && policy.is_stale(now)
        && CacheControl::from_headers(request.headers()).has("max-stale")
    {
        strict = without_max_stale(request);
        &strict
    } else {
        request
    };
    let (revalidation, matches) = match policy.before_request(request, now) {
        BeforeRequest::Fresh(_) => {
            return Freshness::Fresh {
                ttl: policy.time_to_live(now),
            }
        }
        BeforeRequest::Stale { request, matches } => (request, matches),
    };
    if !matches {
        return Freshness::Mismatch;
    }
    let request_cc = CacheControl::from_headers(request.headers());
    let stale_for = staleness(policy, stored, now);
    let may_serve_stale = !response_cc.forbids_stale();
    let within = |directive: &str| {
        response_cc
            .seconds(directive)
            .is_some_and(|window| stale_for <= Duration::from_secs(window))
    };
    // A client that asks for validation (no-cache, max-age, min-fresh) is not given a
    // stale-while-revalidate answer: it explicitly wants a validated one.
    let client_wants_validation = request_cc.is_no_cache()
        || request_cc.has("max-age")
        || request_cc.has("min-fresh")
        || request
            .headers()
            .get_all(http::header::PRAGMA)
            .iter()
            .any(|v| {
                v.to_str()
                    .is_ok_and(|v| v.to_ascii_lowercase().contains("no-cache"))
            });
    if may_serve_stale && !client_wants_validation && within("stale-while-revalidate") {
        return Freshness::StaleWhileRevalidate {
            revalidation,
            stale_for,
        };
    }
    Freshness::MustRevalidate {
        revalidation,
        stale_for,
        stale_if_error: may_serve_stale && within("stale-if-error"),
    }
}

/// `request` without its `max-stale` request directive.
fn without_max_stale(request: &Request<Body>) -> Request<Body> {
    let mut strict = Request::new(Body::new());
    *strict.method_mut() = request.method().clone();
    *strict.uri_mut() = request.uri().clone();
    *strict.headers_mut() = request.headers().clone();
    *strict.extensions_mut() = request.extensions().clone();
    let headers = strict.headers_mut();
    headers.remove(http::header::CACHE_CONTROL);
    for value in request.headers().get_all(http::header::CACHE_CONTROL) {
        let Ok(text) = value.to_str() else { continue };
        let kept: Vec<&str> = text
            .split(',')
            .map(str::trim)
            .filter(|d| !d.is_empty() && !d.to_ascii_lowercase().starts_with("max-stale"))
            .collect();
        if kept.is_empty() {
            continue;
        }
        if let Ok(value) = http::HeaderValue::from_str(&kept.join(", ")) {
            headers.append(http::header::CACHE_CONTROL, value);
        }
    }
    strict
}

/// A request that states no freshness requirements of its own (RFC 9111 §5.2.1, §5.4).
fn is_plain(request: &Request<Body>) -> bool {
    !request.headers().contains_key(http::header::CACHE_CONTROL)
        && !request.headers().contains_key(http::header::PRAGMA)
}

/// How long past its freshness lifetime the response is at `now`.
///
/// The library exposes remaining TTL but not the lifetime itself; at arrival the lifetime is
/// TTL + age. A response that arrived already stale counts as stale since its arrival, which
/// overstates staleness slightly and so errs toward revalidating.
pub fn staleness(policy: &CachePolicy, stored: &StoredResponse, now: SystemTime) -> Duration {
    let at_arrival = stored.response_time;
    let ttl_at_arrival = policy.time_to_live(at_arrival);
    let lifetime = if ttl_at_arrival.is_zero() {
        Duration::ZERO
    } else {
        ttl_at_arrival + policy.age(at_arrival)
    };
    policy.age(now).saturating_sub(lifetime)
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::{HeaderMap, Method, Response};

    const T0: u64 = 1_700_000_000;

    fn at(secs: u64) -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_secs(T0 + secs)
    }

    fn stored(headers: &[(&str, &str)]) -> StoredResponse {
        let mut response = Response::builder().status(200);
        for (name, value) in headers {
            response = response.header(*name, *value);
        }
        let response = response.body(Body::from(b"body".to_vec())).unwrap();
        StoredResponse::capture(&HeaderMap::new(), &response, at(0))
    }

    fn get(headers: &[(&str, &str)]) -> Request<Body> {
        let mut request = Request::builder().uri("https://a.example/x");
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        request.body(Body::new()).unwrap()
    }

    fn decide_at(s: &StoredResponse, request: &Request<Body>, secs: u64) -> Freshness {
        let policy = s.policy(&Method::GET, request.uri());
        decide(&policy, s, request, at(secs))
    }

    /// An upstream's `Age` near the largest number: the record saturates (the `pipeline`
    /// fuzz target found the overflow).
    #[test]
    fn a_huge_age_saturates_instead_of_overflowing() {
        for age in ["18446744073709551615", "9223372036854775807", "4294967295"] {
            let mut s = stored(&[("cache-control", "max-age=60"), ("age", age)]);
            s.seal();
            assert_eq!(fresh_hit(&s, &get(&[]), at(10)), None, "Age: {age}");
        }
    }

    /// (case, response headers, request headers, seconds after storing, expected)
    #[test]
    fn decisions_at_chosen_instants() {
        type Case = (
            &'static str,
            &'static [(&'static str, &'static str)],
            &'static [(&'static str, &'static str)],
            u64,
            &'static str,
        );
        let cases: &[Case] = &[
            (
                "rfc9111-4.2 fresh within max-age",
                &[("cache-control", "max-age=60")],
                &[],
                59,
                "fresh",
            ),
            (
                "rfc9111-4.2 stale at max-age",
                &[("cache-control", "max-age=60")],
                &[],
                60,
                "revalidate",
            ),
            (
                "rfc9111-4.2.1 s-maxage beats max-age in a shared cache",
                &[("cache-control", "max-age=10, s-maxage=100")],
                &[],
                50,
                "fresh",
            ),
            (
                "rfc9111-4.2.1 max-age beats Expires",
                &[
                    ("cache-control", "max-age=100"),
                    ("expires", "Thu, 01 Jan 1970 00:00:00 GMT"),
                ],
                &[],
                50,
                "fresh",
            ),
            (
                "rfc9111-4.2.1 Expires without max-age",
                &[
                    ("date", "Tue, 14 Nov 2023 22:13:20 GMT"),
                    ("expires", "Tue, 14 Nov 2023 22:15:00 GMT"),
                ],
                &[],
                90,
                "fresh",
            ),
            (
                "rfc9111-4.2.2 heuristic from Last-Modified",
                &[
                    ("date", "Tue, 14 Nov 2023 22:13:20 GMT"),
                    ("last-modified", "Tue, 14 Nov 2023 21:13:20 GMT"),
                ],
                &[],
                300,
                "fresh",
            ),
            (
                "rfc9111-4.2.3 Age counts against freshness",
                &[("cache-control", "max-age=60"), ("age", "50")],
                &[],
                11,
                "revalidate",
            ),
            (
                "rfc5861-3 within stale-while-revalidate",
                &[("cache-control", "max-age=60, stale-while-revalidate=30")],
                &[],
                89,
                "swr",
            ),
            (
                "rfc5861-3 past stale-while-revalidate",
                &[("cache-control", "max-age=60, stale-while-revalidate=30")],
                &[],
                91,
                "revalidate",
            ),
            (
                "rfc5861-4 stale-if-error window",
                &[("cache-control", "max-age=60, stale-if-error=300")],
                &[],
                200,
                "revalidate+sie",
            ),
            (
                "rfc5861-4 past stale-if-error",
                &[("cache-control", "max-age=60, stale-if-error=300")],
                &[],
                361,
                "revalidate",
            ),
            (
                "rfc9111-4.2.4 must-revalidate forbids swr",
                &[(
                    "cache-control",
                    "max-age=60, must-revalidate, stale-while-revalidate=30, stale-if-error=30",
                )],
                &[],
                70,
                "revalidate",
            ),
            (
                "rfc9111-5.2.2.10 s-maxage forbids stale",
                &[(
                    "cache-control",
                    "s-maxage=60, stale-while-revalidate=30, stale-if-error=30",
                )],
                &[],
                70,
                "revalidate",
            ),
            (
                "rfc9111-5.2.2.8 proxy-revalidate forbids stale",
                &[(
                    "cache-control",
                    "max-age=60, proxy-revalidate, stale-if-error=30",
                )],
                &[],
                70,
                "revalidate",
            ),
            (
                "rfc9111-5.2.2.4 no-cache always validates",
                &[("cache-control", "no-cache, max-age=60, stale-if-error=30")],
                &[],
                1,
                "revalidate",
            ),
            (
                "rfc9111-5.2.1.4 request no-cache validates",
                &[("cache-control", "max-age=60")],
                &[("cache-control", "no-cache")],
                1,
                "revalidate",
            ),
            (
                "rfc5861 client no-cache gets no swr",
                &[("cache-control", "max-age=60, stale-while-revalidate=30")],
                &[("cache-control", "no-cache")],
                70,
                "revalidate",
            ),
            (
                "rfc9111-4.1 vary mismatch",
                &[("cache-control", "max-age=60"), ("vary", "accept-language")],
                &[("accept-language", "de")],
                1,
                "mismatch",
            ),
        ];
        for (name, response, request, secs, expected) in cases {
            let s = stored(response);
            let got = match decide_at(&s, &get(request), *secs) {
                Freshness::Fresh { .. } => "fresh",
                Freshness::StaleWhileRevalidate { .. } => "swr",
                Freshness::MustRevalidate {
                    stale_if_error: true,
                    ..
                } => "revalidate+sie",
                Freshness::MustRevalidate { .. } => "revalidate",
                Freshness::Mismatch => "mismatch",
            };
            assert_eq!(got, *expected, "{name}");
        }
    }

    #[test]
    fn rfc9111_4_3_1_revalidation_carries_stored_validators() {
        let s = stored(&[
            ("cache-control", "max-age=1"),
            ("etag", "\"v1\""),
            ("last-modified", "Tue, 14 Nov 2023 21:13:20 GMT"),
        ]);
        let Freshness::MustRevalidate { revalidation, .. } = decide_at(&s, &get(&[]), 5) else {
            panic!("expected revalidation")
        };
        assert_eq!(revalidation.headers["if-none-match"], "\"v1\"");
        assert_eq!(
            revalidation.headers["if-modified-since"],
            "Tue, 14 Nov 2023 21:13:20 GMT"
        );
    }

    #[test]
    fn staleness_counts_from_the_end_of_the_lifetime() {
        let s = stored(&[("cache-control", "max-age=60")]);
        let policy = s.policy(&Method::GET, &"https://a.example/x".parse().unwrap());
        assert_eq!(staleness(&policy, &s, at(30)), Duration::ZERO);
        assert_eq!(staleness(&policy, &s, at(75)), Duration::from_secs(15));
    }

    /// Regression (tier/properties.rs): `no-cache` stored with a Last-Modified, a client
    /// sending `max-stale=100`, asked again at once, was a HIT without validation, because
    /// `http-cache-semantics` lets max-stale override every directive but must-revalidate.
    #[test]
    fn rfc9111_4_2_4_max_stale_never_overrides_directives_that_forbid_stale() {
        for response in [
            "no-cache",
            "no-cache, max-age=60",
            "max-age=10, proxy-revalidate",
            "s-maxage=10",
            "max-age=10, must-revalidate",
        ] {
            let s = stored(&[
                ("cache-control", response),
                ("last-modified", "Tue, 14 Nov 2023 21:13:20 GMT"),
            ]);
            for request in ["max-stale=100", "max-stale", "max-stale=100, max-age=3600"] {
                let r = get(&[("cache-control", request)]);
                for secs in [0, 20] {
                    let fresh_now = secs == 0
                        && (response == "s-maxage=10" || response.ends_with("must-revalidate"));
                    match decide_at(&s, &r, secs) {
                        Freshness::Fresh { .. } if fresh_now => {}
                        Freshness::MustRevalidate { revalidation, .. } if !fresh_now => {
                            let sent = revalidation.headers.get("cache-control");
                            assert!(
                                sent.is_none_or(|v| !v.to_str().unwrap().contains("max-stale")),
                                "{response} / {request}: {sent:?}"
                            );
                        }
                        other => panic!("{response} / {request} at {secs}s: {other:?}"),
                    }
                }
            }
        }
        // Where nothing forbids it, max-stale still serves a stale response.
        let s = stored(&[("cache-control", "max-age=10")]);
        let r = get(&[("cache-control", "max-stale=100")]);
        assert!(matches!(decide_at(&s, &r, 20), Freshness::Fresh { .. }));
    }

    proptest::proptest! {
        /// Whatever the origin and the client send, deciding never panics.
        #[test]
        fn deciding_never_panics(
            response in proptest::collection::vec(("(cache-control|expires|date|age|vary|last-modified|etag)", "[ -~]{0,60}"), 0..6),
            request in proptest::collection::vec(("(cache-control|pragma|accept-language)", "[ -~]{0,40}"), 0..4),
            later in 0u64..100_000,
        ) {
            let to_headers = |fields: &[(String, String)]| {
                let mut headers = HeaderMap::new();
                for (name, value) in fields {
                    if let Ok(value) = value.parse::<http::HeaderValue>() {
                        headers.append(http::HeaderName::from_bytes(name.as_bytes()).unwrap(), value);
                    }
                }
                headers
            };
            let mut built = Response::new(Body::new());
            *built.headers_mut() = to_headers(&response);
            let request_headers = to_headers(&request);
            let s = StoredResponse::capture(&request_headers, &built, at(0));
            let mut r = get(&[]);
            *r.headers_mut() = request_headers;
            let _ = decide_at(&s, &r, later);
        }
    }
}
