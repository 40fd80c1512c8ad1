//! What a cache slot holds (RFC 9111 §3): a stored response, or a Vary rule that points to
//! the slot of each variant (the design of pingora-cache's `variance`).

use std::time::{Duration, SystemTime};

use http::{HeaderMap, HeaderName, Method, Request, Response, StatusCode, Uri};
use http_cache_semantics::{CacheOptions, CachePolicy};

use crate::freshness::FreshnessRecord;
use crate::vary::{self, VaryRule};
use crate::Body;

/// Reports of how *this* request travelled, not of the resource; never stored (a hit would
/// replay another request's path). Hop-by-hop fields are not stored either.
const PER_HOP_REPORTS: &[&str] = &["cache-status", "cf-cache-status", "server-timing"];

#[derive(Debug, Clone, PartialEq)]
#[allow(clippy::large_enum_variant)] // why: entries move through the ports one at a time; boxing would add an allocation per hit
pub enum CacheEntry {
    Response(StoredResponse),
    /// The response at this key varies: the rule names the request fields that select its
    /// variant's slot (RFC 9111 §4.1).
    VaryRule(VaryRule),
    /// A token whose signature was verified: its claims, kept so a burst of requests with the
    /// same token pays for the signature once (claims and time are still checked each time).
    VerifiedToken(VerifiedToken),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedToken {
    /// The header's `typ`, for routes that require one.
    pub typ: Option<String>,
    /// The claims as JSON text.
    pub claims: String,
}

/// A stored response with what RFC 9111 needs to reuse it.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredResponse {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Body,
    /// The request fields nominated by Vary, as the request that produced this response sent them.
    pub vary_request_headers: HeaderMap,
    /// When the response arrived (RFC 9111 §4.2.3 `response_time`).
    pub response_time: SystemTime,
    /// The freshness lifetime this cache chose in place of the one the fields give (the
    /// cache policy: jitter, negative caching); `None`: the fields' own.
    pub lifetime: Option<LocalLifetime>,
    /// Freshness figured once, when the tier stored it ([`StoredResponse::seal`]); `None`
    /// for an entry stored without (every decision then rebuilds the policy).
    pub record: Option<FreshnessRecord>,
    /// For a coded variant the edge stored (`representation`): what it was coded to on the
    /// miss and whether background recoding is still to come. `None` for other entries.
    pub variant: Option<VariantState>,
}

/// A stored coded variant's own state, kept beside it (never sent to clients).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VariantState {
    /// Its length as coded on the miss, so a hit on the recoded variant can say what
    /// recoding saved.
    pub miss_length: u64,
    /// Still at its miss-time level, with a better level to come.
    pub recode: bool,
    /// When a client last used it while it waited to be recoded (the recoding policy,
    /// `representation::recode_policy`).
    pub used_at: Option<SystemTime>,
}

/// A freshness lifetime a cache set for its own copy (RFC 9111 §4.2.1 counts it from the
/// response's generation, as `max-age`, so `Age` stays the true age). What clients receive
/// is unchanged: it only decides when this cache treats its copy as stale.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LocalLifetime {
    pub secs: u64,
    /// Set by negative caching (an error response kept briefly), not by jitter.
    pub negative: bool,
}

impl StoredResponse {
    /// Captures `response` for storage: drops fields that must not be stored and remembers the
    /// request fields its Vary nominates.
    pub fn capture(
        request: &HeaderMap,
        response: &Response<Body>,
        response_time: SystemTime,
    ) -> Self {
        let mut headers = response.headers().clone();
        for name in crate::headers::HOP_BY_HOP.iter().chain(PER_HOP_REPORTS) {
            headers.remove(*name);
        }
        for name in crate::headers::connection_named(response.headers()) {
            if let Ok(name) = HeaderName::from_bytes(name.as_bytes()) {
                headers.remove(name);
            }
        }
        let vary_request_headers = vary::selecting_fields(request, response.headers());
        Self {
            status: response.status(),
            headers,
            body: response.body().clone(),
            vary_request_headers,
            response_time,
            lifetime: None,
            record: None,
            variant: None,
        }
    }

    /// Figures its freshness once (see [`FreshnessRecord`]): called when a tier stores it,
    /// after every change to the fields or the lifetime that decide it.
    pub fn seal(&mut self) {
        let policy = self.policy(&Method::GET, &Uri::from_static("/"));
        self.record = Some(FreshnessRecord::of(self, &policy));
    }

    /// Fastly's soft purge: this copy is stale from `now` on (its lifetime becomes its current
    /// age), so it is served only within its stale windows while one request revalidates, and
    /// revalidated (a 304 when unchanged) after them. `Age` stays the true age. `false` when
    /// there was nothing to mark: the copy was stale already.
    pub fn mark_stale(&mut self, now: SystemTime) -> bool {
        // Freshness does not depend on the request's method or URL, only Vary matching does.
        let policy = self.policy(&Method::GET, &Uri::from_static("/"));
        if policy.is_stale(now) {
            return false;
        }
        self.lifetime = Some(LocalLifetime {
            secs: policy.age(now).as_secs(),
            negative: self.is_negative(),
        });
        if self.record.is_some() {
            self.seal();
        }
        true
    }

    /// Whether this is an error response kept by negative caching.
    pub fn is_negative(&self) -> bool {
        self.lifetime.is_some_and(|l| l.negative)
    }

    /// The `http-cache-semantics` policy for this entry as a shared cache sees it.
    ///
    /// Rebuilt from what is stored rather than serialised, so the store stays plain data a
    /// host can inspect. The request side carries only the Vary-nominated fields, which is all
    /// the policy consults when matching a later request.
    /// A valid `CDN-Cache-Control` (RFC 9213) stands in for `Cache-Control` and `Expires`.
    /// A lifetime this cache chose ([`LocalLifetime`]) stands in for the fields' own.
    pub fn policy(&self, method: &Method, uri: &Uri) -> CachePolicy {
        let headers = crate::cache_view::effective(&self.headers, self.response_time);
        match self.lifetime {
            None => policy_for(self, method, uri, &headers, cache_options()),
            Some(lifetime) => {
                let headers = crate::cache_view::with_lifetime(&headers, lifetime.secs);
                policy_for(self, method, uri, &headers, cache_options())
            }
        }
    }

    /// The policy under other options (the edge's private per-subject cache is not shared).
    pub fn policy_with(&self, method: &Method, uri: &Uri, options: CacheOptions) -> CachePolicy {
        policy_for(self, method, uri, &self.headers, options)
    }

    /// How long the entry stays worth keeping after `now`: its remaining freshness plus the
    /// longer of its stale windows.
    pub fn keep_for(&self, policy: &CachePolicy, now: SystemTime) -> Duration {
        let cc = crate::cache_control::CacheControl::from_headers(&crate::cache_view::effective(
            &self.headers,
            now,
        ));
        let stale = cc
            .seconds("stale-while-revalidate")
            .unwrap_or(0)
            .max(cc.seconds("stale-if-error").unwrap_or(0));
        policy
            .time_to_live(now)
            .saturating_add(Duration::from_secs(stale))
    }

    /// Bytes this entry occupies, for capacity accounting.
    pub fn size(&self) -> usize {
        let headers: usize = self
            .headers
            .iter()
            .map(|(n, v)| n.as_str().len() + v.len())
            .sum();
        self.body.len() + headers
    }
}

/// Options for every tier: a shared cache (RFC 9111 §3.5 applies) with the heuristic
/// freshness of 10% of the Last-Modified age (RFC 9111 §4.2.2 suggests it).
pub fn cache_options() -> CacheOptions {
    CacheOptions {
        shared: true,
        ..CacheOptions::default()
    }
}

/// The policy for `stored` judged by `headers` (its own, or their RFC 9213 view).
fn policy_for(
    stored: &StoredResponse,
    method: &Method,
    uri: &Uri,
    headers: &HeaderMap,
    options: CacheOptions,
) -> CachePolicy {
    let mut request = Request::new(());
    *request.method_mut() = method.clone();
    *request.uri_mut() = uri.clone();
    *request.headers_mut() = stored.vary_request_headers.clone();
    let mut response = Response::new(());
    *response.status_mut() = crate::cache_view::policy_status(stored.status, headers);
    *response.headers_mut() = headers.clone();
    CachePolicy::new_options(&request, &response, stored.response_time, options)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::vary::vary_fields;

    #[test]
    fn rfc9111_3_1_hop_by_hop_and_per_hop_fields_are_not_stored() {
        let response = Response::builder()
            .header("connection", "x-private-hop")
            .header("x-private-hop", "1")
            .header("transfer-encoding", "chunked")
            .header("cache-status", "regional; hit")
            .header("server-timing", "origin;dur=3")
            .header("etag", "\"a\"")
            .header("set-cookie", "a=1")
            .header("set-cookie", "b=2")
            .body(Body::new())
            .unwrap();
        let stored = StoredResponse::capture(&HeaderMap::new(), &response, SystemTime::UNIX_EPOCH);
        for gone in [
            "connection",
            "x-private-hop",
            "transfer-encoding",
            "cache-status",
            "server-timing",
        ] {
            assert!(!stored.headers.contains_key(gone), "{gone}");
        }
        assert_eq!(stored.headers.get_all("set-cookie").iter().count(), 2);
        assert!(stored.headers.contains_key("etag"));
    }

    #[test]
    fn a_soft_purge_makes_a_fresh_copy_stale_and_keeps_its_stale_windows() {
        let t0 = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000);
        let response = Response::builder()
            .header("cache-control", "max-age=60, stale-while-revalidate=30")
            .header("date", httpdate::fmt_http_date(t0))
            .body(Body::new())
            .unwrap();
        let mut stored = StoredResponse::capture(&HeaderMap::new(), &response, t0);
        let uri = Uri::from_static("https://a.example/p");
        let now = t0 + Duration::from_secs(10);
        assert!(!stored.policy(&Method::GET, &uri).is_stale(now));
        assert!(stored.mark_stale(now));
        let policy = stored.policy(&Method::GET, &uri);
        assert!(policy.is_stale(now), "stale from the purge on");
        assert_eq!(
            policy.age(now),
            Duration::from_secs(10),
            "Age stays the true age"
        );
        assert!(
            stored.keep_for(&policy, now) >= Duration::from_secs(30),
            "the stale-while-revalidate window still counts"
        );
        assert!(!stored.mark_stale(now), "already stale: nothing to mark");
    }

    #[test]
    fn rfc9111_4_1_only_nominated_request_fields_are_kept() {
        let response = Response::builder()
            .header("vary", "Accept-Encoding, X-A")
            .body(Body::new())
            .unwrap();
        let mut request = HeaderMap::new();
        request.insert("accept-encoding", "br".parse().unwrap());
        request.insert("authorization", "Bearer secret".parse().unwrap());
        let stored = StoredResponse::capture(&request, &response, SystemTime::UNIX_EPOCH);
        assert_eq!(stored.vary_request_headers.len(), 1);
        assert_eq!(vary_fields(&stored.headers), vec!["accept-encoding", "x-a"]);
    }
}
