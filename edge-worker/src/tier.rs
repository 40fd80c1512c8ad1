//! One caching tier's request flow (RFC 9111 with RFC 5861): look up, decide, serve, fetch,
//! validate, refresh. What is stored is decided in `store`, Vary in `vary`, what unsafe
//! requests invalidate in `invalidation`. The edge worker runs it at each PoP; the emulator's
//! regional tier runs the same code.

use std::sync::Arc;
use std::time::Duration;

use http::header::{self, HeaderValue};
use http::{HeaderMap, Method, Request, Response, StatusCode};
use http_cache_semantics::{AfterResponse, CachePolicy};

use crate::cache_policy::{CacheRules, RouteRules};
use crate::cache_view::response_view;
use crate::conditional::refreshed;
use crate::freshness::{self, Freshness};
use crate::hops::{CacheOutcome, Detail, Hop, TierId};
use crate::status::{ttl_seconds, Forward};
use crate::{invalidation, store};
use crate::{
    Body, CacheEntry, CacheKey, CfCacheStatus, Deferred, Locked, LogLevel, Outcome, Platform,
    StoredResponse, Upstream, WorkerError,
};

pub use crate::store::MAX_STORED_BODY;

/// Request fields a cache evaluates itself and does not forward on a miss: the fetch must bring
/// back a complete response it can store (as Varnish does). The edge answers them on the
/// representation it selects (`representation`, `range`).
const CLIENT_EVALUATED: [header::HeaderName; 6] = [
    header::IF_NONE_MATCH,
    header::IF_MODIFIED_SINCE,
    header::IF_MATCH,
    header::IF_UNMODIFIED_SINCE,
    header::IF_RANGE,
    header::RANGE,
];

/// Request fields that ask an origin to serve something other than the URL says (another
/// host, path, scheme or method) without being part of the cache key: the classic
/// web-cache-poisoning vectors. A cacheable request drops them, so one client cannot change
/// what is stored for everyone (the host sets trusted forwarding fields itself).
pub const UNKEYED_OVERRIDES: &[&str] = &[
    "forwarded",
    "x-forwarded-host",
    "x-forwarded-server",
    "x-forwarded-scheme",
    "x-forwarded-proto",
    "x-forwarded-port",
    "x-forwarded-prefix",
    "x-host",
    "x-original-url",
    "x-rewrite-url",
    "x-original-host",
    "x-http-method-override",
    "x-http-method",
    "x-method-override",
];

/// A named caching tier.
#[derive(Debug, Clone)]
pub struct CacheTier {
    /// Which tier this is: named in its hop, and so in Cache-Status (`edge-fra`).
    pub id: TierId,
    /// Whether to set Cloudflare's `CF-Cache-Status` (the edge does; inner tiers do not).
    pub cf_cache_status: bool,
    /// The cache policy (TTL jitter, negative caching) per route; `None`: neither.
    pub rules: Option<Arc<CacheRules>>,
}

/// What a cache slot lookup found.
enum Lookup {
    Found(Box<StoredResponse>),
    Miss(Forward),
}

impl CacheTier {
    pub fn new(id: TierId, cf_cache_status: bool) -> Self {
        Self {
            id,
            cf_cache_status,
            rules: None,
        }
    }

    /// This tier with a cache policy (an empty one is the same as none).
    pub fn with_rules(mut self, rules: Arc<CacheRules>) -> Self {
        self.rules = (!rules.is_empty()).then_some(rules);
        self
    }

    /// The cache policy's route for a request URL, if any.
    fn route_rules(&self, uri: &http::Uri) -> Option<&RouteRules> {
        self.rules.as_deref()?.route(uri.path())
    }

    /// Handles one request. Never panics and never fails: upstream trouble becomes a stale
    /// response (when RFC 5861 allows) or a JSON error response.
    pub async fn handle<P: Platform>(&self, platform: &P, mut request: Request<Body>) -> Outcome {
        // The URL's authority is the host; a Host field would only split the cache.
        request.headers_mut().remove(header::HOST);
        let method = request.method().clone();
        if method != Method::GET && method != Method::HEAD {
            return self.pass(platform, request).await;
        }
        let key = match CacheKey::for_request(request.uri(), request.headers()) {
            Ok(key) => key,
            Err(error) => return Outcome::uncached(error.to_response()),
        };
        self.handle_keyed(platform, &key, method, request).await
    }

    /// [`Self::handle`] of a GET or HEAD whose cache key the caller made already (from the
    /// same URL), so it is not made twice.
    pub async fn handle_keyed<P: Platform>(
        &self,
        platform: &P,
        key: &CacheKey,
        method: Method,
        mut request: Request<Body>,
    ) -> Outcome {
        request.headers_mut().remove(header::HOST);
        // HEAD is answered from the GET entry (RFC 9110 §9.3.2); on a miss we fetch with GET
        // so the body can be stored.
        *request.method_mut() = Method::GET;
        for name in &CLIENT_EVALUATED {
            request.headers_mut().remove(name);
        }
        for name in UNKEYED_OVERRIDES {
            request.headers_mut().remove(*name);
        }
        let mut outcome = self.serve(platform, key, request).await;
        let length = outcome.response.body().len();
        outcome
            .response
            .headers_mut()
            .insert(header::CONTENT_LENGTH, HeaderValue::from(length));
        if method == Method::HEAD {
            outcome.response.body_mut().clear();
        }
        outcome
    }

    /// The stored GET response for `uri` if it is fresh now, without touching upstream: what
    /// preconditions of an unsafe method are judged against at the edge.
    pub async fn fresh_entry<P: Platform>(
        &self,
        p: &P,
        uri: &http::Uri,
        headers: &HeaderMap,
    ) -> Option<StoredResponse> {
        let key = CacheKey::for_request(uri, headers).ok()?;
        let Lookup::Found(stored) = self.lookup(p, &key, headers).await else {
            return None;
        };
        let mut get = Request::new(Body::new());
        *get.uri_mut() = uri.clone();
        *get.headers_mut() = headers.clone();
        let policy = stored.policy(&Method::GET, uri);
        match freshness::decide(&policy, &stored, &get, p.now()) {
            Freshness::Fresh { .. } => Some(*stored),
            _ => None,
        }
    }

    /// Runs deferred work produced by an earlier `handle`.
    pub async fn run_deferred<P: Platform>(&self, platform: &P, task: Deferred) {
        match task {
            Deferred::Revalidate(request) => self.refresh(platform, request).await,
            // Auth and representation work; `EdgeWorker::run_deferred` runs it before the tier.
            Deferred::RefreshJwks(_) | Deferred::Recompress(_) => {}
        }
    }

    async fn serve<P: Platform>(&self, p: &P, key: &CacheKey, request: Request<Body>) -> Outcome {
        let stored = match self.lookup(p, key, request.headers()).await {
            Lookup::Found(stored) => stored,
            Lookup::Miss(why) => return self.fetch_coalesced(p, key, request, why).await,
        };
        let now = p.now();
        // The common hit: decided from the record the tier made when it stored the entry.
        if let Some((ttl, age)) = freshness::fresh_hit(&stored, &request, now) {
            return self.hit(*stored, ttl, age, false);
        }
        let policy = stored.policy(&Method::GET, request.uri());
        match freshness::decide(&policy, &stored, &request, now) {
            Freshness::Fresh { ttl } => self.hit(*stored, ttl, policy.age(now), false),
            Freshness::Mismatch => {
                self.fetch_coalesced(p, key, request, Forward::VaryMiss)
                    .await
            }
            Freshness::StaleWhileRevalidate { stale_for, .. } => {
                let mut member = CacheOutcome::new(CfCacheStatus::Updating);
                member.hit = true;
                member.ttl = Some(ttl_seconds(Duration::ZERO, stale_for));
                member.detail = Some(Detail::StaleWhileRevalidate);
                let mut outcome = self.cached_response(*stored, policy.age(now), member);
                let (parts, _) = request.into_parts();
                outcome
                    .deferred
                    .push(Deferred::Revalidate(Request::from_parts(
                        parts,
                        Body::new(),
                    )));
                outcome
            }
            Freshness::MustRevalidate {
                revalidation,
                stale_for,
                stale_if_error,
            } => {
                let Locked::Write(guard) = p.lock(key.as_str()).await else {
                    // Another request validated it while we waited.
                    return self.after_wait(p, key, request, Forward::Stale).await;
                };
                let serve_stale = stale_if_error.then_some(stale_for);
                let outcome = self
                    .validate(p, key, request, *stored, &policy, revalidation, serve_stale)
                    .await;
                drop(guard);
                outcome
            }
        }
    }

    /// Finds the stored response for a request, following a Vary rule to its variant slot.
    async fn lookup<P: Platform>(&self, p: &P, key: &CacheKey, request: &HeaderMap) -> Lookup {
        match p.cache_get(key.as_str()).await {
            None | Some(CacheEntry::VerifiedToken(_)) => Lookup::Miss(Forward::UriMiss),
            Some(CacheEntry::Response(stored)) => Lookup::Found(Box::new(stored)),
            Some(CacheEntry::VaryRule(rule)) => {
                match p.cache_get(&rule.variant(key, request)).await {
                    Some(CacheEntry::Response(stored)) => Lookup::Found(Box::new(stored)),
                    _ => Lookup::Miss(Forward::VaryMiss),
                }
            }
        }
    }

    /// A miss under the fetch lock: one request per key goes upstream at a time.
    async fn fetch_coalesced<P: Platform>(
        &self,
        p: &P,
        key: &CacheKey,
        request: Request<Body>,
        why: Forward,
    ) -> Outcome {
        match p.lock(key.as_str()).await {
            Locked::Write(guard) => {
                let outcome = self.fetch_and_store(p, key, request, why).await;
                drop(guard);
                outcome
            }
            Locked::Read => self.after_wait(p, key, request, why).await,
        }
    }

    /// After waiting on another request's fetch: serve what it stored if it is fresh
    /// (`collapsed`), else fetch without the lock (it was not storable, or is already stale).
    async fn after_wait<P: Platform>(
        &self,
        p: &P,
        key: &CacheKey,
        request: Request<Body>,
        why: Forward,
    ) -> Outcome {
        if let Lookup::Found(stored) = self.lookup(p, key, request.headers()).await {
            let now = p.now();
            if let Some((ttl, age)) = freshness::fresh_hit(&stored, &request, now) {
                return self.hit(*stored, ttl, age, true);
            }
            let policy = stored.policy(&Method::GET, request.uri());
            if let Freshness::Fresh { ttl } = freshness::decide(&policy, &stored, &request, now) {
                return self.hit(*stored, ttl, policy.age(now), true);
            }
        }
        self.fetch_and_store(p, key, request, why).await
    }

    fn hit(
        &self,
        stored: StoredResponse,
        ttl: Duration,
        age: Duration,
        collapsed: bool,
    ) -> Outcome {
        let mut member = CacheOutcome::new(CfCacheStatus::Hit);
        member.hit = true;
        member.ttl = Some(ttl_seconds(ttl, Duration::ZERO));
        member.collapsed = collapsed;
        if stored.is_negative() {
            member.detail = Some(Detail::Negative);
        }
        self.cached_response(stored, age, member)
    }

    /// Fetches, stores when allowed, and forwards what came back.
    async fn fetch_and_store<P: Platform>(
        &self,
        p: &P,
        key: &CacheKey,
        request: Request<Body>,
        why: Forward,
    ) -> Outcome {
        let (parts, body) = request.into_parts();
        let request_view = Request::from_parts(parts.clone(), ());
        let mut member = CacheOutcome::new(CfCacheStatus::Miss);
        member.fwd = Some(why);
        let upstream = match p.fetch(Request::from_parts(parts, body)).await {
            Ok(upstream) => upstream,
            Err(error) => {
                p.log(LogLevel::Warn, &format!("{}: {key}: {error}", self.id));
                member.detail = Some(Detail::UpstreamError);
                if why == Forward::Stale {
                    member.status = CfCacheStatus::Expired;
                }
                let response = WorkerError::Upstream(error.0).to_response();
                return self.finish(response, member, None);
            }
        };
        member.fwd_status = Some(upstream.response.status().as_u16());
        member.collapsed = upstream.collapsed;
        let rules = self.route_rules(request_view.uri());
        let decision =
            store::store(p, key, &request_view, &upstream.response, p.now(), rules).await;
        member.record(&decision);
        member.status = match (why, member.stored) {
            (Forward::Stale, _) => CfCacheStatus::Expired,
            (_, true) => CfCacheStatus::Miss,
            (_, false) => CfCacheStatus::Bypass,
        };
        self.forward(upstream, member)
    }

    /// A stale entry that must be validated first (RFC 9111 §4.3), with stale-if-error as the
    /// fallback when `serve_stale` carries how stale the entry is.
    #[allow(clippy::too_many_arguments)] // why: internal, two call sites; a struct would only rename them
    async fn validate<P: Platform>(
        &self,
        p: &P,
        key: &CacheKey,
        request: Request<Body>,
        stored: StoredResponse,
        policy: &CachePolicy,
        revalidation: http::request::Parts,
        serve_stale: Option<Duration>,
    ) -> Outcome {
        let mut member = CacheOutcome::new(CfCacheStatus::Expired);
        member.fwd = Some(Forward::Stale);
        let mut revalidation = revalidation;
        // The validation request is built anew; keep what the host attached (geo) and say
        // whether a stale copy may stand in if it fails.
        revalidation.extensions = request.extensions().clone();
        if serve_stale.is_some() {
            revalidation
                .extensions
                .insert(crate::routing::StaleFallback);
        }
        let result = p
            .fetch(Request::from_parts(revalidation, Body::new()))
            .await;
        let now = p.now();
        let failed = match &result {
            Ok(upstream) => upstream.response.status().is_server_error(),
            Err(_) => true,
        };
        if let Ok(upstream) = &result {
            member.fwd_status = Some(upstream.response.status().as_u16());
            member.collapsed = upstream.collapsed;
        }
        if let (true, Some(stale_for)) = (failed, serve_stale) {
            // RFC 5861 §4: serve the stored response instead of the error.
            member.status = CfCacheStatus::Stale;
            member.ttl = Some(ttl_seconds(Duration::ZERO, stale_for));
            member.detail = Some(Detail::StaleIfError);
            return self.cached_response(stored, policy.age(now), member);
        }
        let upstream = match result {
            Ok(upstream) => upstream,
            Err(error) => {
                p.log(LogLevel::Warn, &format!("{}: {key}: {error}", self.id));
                member.detail = Some(Detail::UpstreamError);
                let response = WorkerError::Upstream(error.0).to_response();
                return self.finish(response, member, None);
            }
        };
        let (parts, body) = request.into_parts();
        let request_view = Request::from_parts(parts, ());
        if upstream.response.status() == StatusCode::NOT_MODIFIED {
            let view = validating_view(&upstream.response, &stored, now);
            match policy.after_response(&request_view, &view, now) {
                AfterResponse::NotModified(new_policy, _) => {
                    let mut refreshed = refreshed(stored, upstream.response.headers(), now);
                    // Jittered anew: a revalidated copy's new lifetime is spread like a
                    // fetched one's.
                    let rules = self.route_rules(request_view.uri());
                    let new_policy = store::jitter(
                        p,
                        rules,
                        &mut refreshed,
                        new_policy,
                        request_view.uri(),
                        now,
                    );
                    member.stored = store::store_refreshed(
                        p,
                        key,
                        request_view.headers(),
                        refreshed.clone(),
                        upstream.response.headers(),
                        &new_policy,
                        now,
                    )
                    .await
                    .is_stored();
                    member.ttl = Some(ttl_seconds(new_policy.time_to_live(now), Duration::ZERO));
                    member.status = CfCacheStatus::Revalidated;
                    let age = new_policy.age(now);
                    return self.cached_response(refreshed, age, member);
                }
                // The 304 does not select our entry (RFC 9111 §4.3.4): fetch it whole.
                AfterResponse::Modified(..) => {
                    let request = Request::from_parts(request_view.into_parts().0, body);
                    return self.fetch_and_store(p, key, request, Forward::Stale).await;
                }
            }
        }
        let rules = self.route_rules(request_view.uri());
        let decision = store::store(p, key, &request_view, &upstream.response, now, rules).await;
        member.record(&decision);
        self.forward(upstream, member)
    }

    /// Background revalidation (RFC 5861 §3): a validation whose response nobody waits for.
    async fn refresh<P: Platform>(&self, p: &P, mut request: Request<Body>) {
        let Ok(key) = CacheKey::for_request(request.uri(), request.headers()) else {
            return;
        };
        // A refresh wants a fresh answer: without this an upstream cache whose copy is as old
        // as ours would hand back its own stale-while-revalidate copy (RFC 9111 §5.2.1.3).
        request.headers_mut().insert(
            header::CACHE_CONTROL,
            HeaderValue::from_static("min-fresh=0"),
        );
        // Whoever holds the lock is refreshing this key already.
        let Locked::Write(guard) = p.lock(key.as_str()).await else {
            return;
        };
        match self.lookup(p, &key, request.headers()).await {
            Lookup::Found(stored) => {
                let now = p.now();
                let policy = stored.policy(&Method::GET, request.uri());
                match freshness::decide(&policy, &stored, &request, now) {
                    Freshness::Fresh { .. } => {}
                    Freshness::Mismatch => {
                        self.fetch_and_store(p, &key, request, Forward::VaryMiss)
                            .await;
                    }
                    Freshness::StaleWhileRevalidate { revalidation, .. }
                    | Freshness::MustRevalidate { revalidation, .. } => {
                        self.validate(p, &key, request, *stored, &policy, revalidation, None)
                            .await;
                    }
                }
            }
            // Evicted meanwhile: refetch so the next request hits.
            Lookup::Miss(why) => {
                self.fetch_and_store(p, &key, request, why).await;
            }
        }
        drop(guard);
    }

    /// A request the cache does not handle (unsafe or unknown method): forward it, and when
    /// an unsafe method succeeded, invalidate what it changed (RFC 9111 §4.4).
    async fn pass<P: Platform>(&self, p: &P, request: Request<Body>) -> Outcome {
        let mut member = CacheOutcome::new(CfCacheStatus::Dynamic);
        member.fwd = Some(Forward::Method);
        let (method, target) = (request.method().clone(), request.uri().clone());
        match p.fetch(request).await {
            Ok(upstream) => {
                member.fwd_status = Some(upstream.response.status().as_u16());
                invalidation::invalidate(p, &method, &target, &upstream.response).await;
                self.forward(upstream, member)
            }
            Err(error) => {
                member.detail = Some(Detail::UpstreamError);
                self.finish(WorkerError::Upstream(error.0).to_response(), member, None)
            }
        }
    }

    /// A response built from a stored one, with its current Age (RFC 9111 §5.1). Built from
    /// this tier's copy, it reports this tier alone: the hops of a validation that only
    /// freshened the copy are not the path its bytes took.
    fn cached_response(
        &self,
        stored: StoredResponse,
        age: Duration,
        mut member: CacheOutcome,
    ) -> Outcome {
        member.negative = stored.is_negative();
        let mut response = Response::new(stored.body);
        *response.status_mut() = stored.status;
        *response.headers_mut() = stored.headers;
        let age = age.as_secs();
        response
            .headers_mut()
            .insert(header::AGE, HeaderValue::from(age));
        let mut outcome = self.finish(response, member, None);
        if let Some(hop) = outcome.hops.last_mut() {
            hop.age = Some(age);
        }
        outcome
    }

    /// Forwards what upstream answered, after the hops of the tiers above that produced it.
    fn forward(&self, upstream: Upstream, mut member: CacheOutcome) -> Outcome {
        member.fwd_status = Some(upstream.response.status().as_u16());
        member.collapsed = upstream.collapsed;
        let Upstream {
            response,
            hops,
            origin,
            route,
            ..
        } = upstream;
        // The Age the response carries is what the tier just above stated.
        let age = hops.last().and_then(|h| h.age);
        let mut outcome = self.finish(response, member, Some(hops));
        if let Some(hop) = outcome.hops.last_mut() {
            hop.age = age;
            hop.origin = origin;
            hop.route = route;
        }
        outcome
    }

    /// This tier's outcome: the response, and this tier's hop after `upstream`'s.
    fn finish(
        &self,
        response: Response<Body>,
        member: CacheOutcome,
        upstream: Option<Vec<Hop>>,
    ) -> Outcome {
        let status = member.status;
        let mut hops = upstream.unwrap_or_default();
        hops.push(Hop {
            cache: Some(member),
            ..Hop::new(self.id.clone())
        });
        Outcome {
            response,
            deferred: Vec::new(),
            status: Some(status),
            hops,
            route: None,
            recompression_saved: 0,
            exposures: Vec::new(),
            parts: Vec::new(),
        }
    }
}

/// The 304 to this tier's own conditional request as the cache judges it. A 304 that names
/// no validator is taken to validate the stored response the request was built from (RFC
/// 9111 §4.3.3: the 304 says that response may be reused): §4.3.4's selection by validator
/// has nothing to select by, and the library would refuse it, costing the client a second,
/// unconditional fetch. Varnish and nginx use such a 304 the same way. A 304 that names
/// another validator still selects nothing.
fn validating_view(
    not_modified: &Response<Body>,
    stored: &StoredResponse,
    now: std::time::SystemTime,
) -> Response<()> {
    let mut view = response_view(not_modified, now);
    let validators = [header::ETAG, header::LAST_MODIFIED];
    if !validators
        .iter()
        .any(|name| view.headers().contains_key(name))
    {
        let stored = crate::cache_view::effective(&stored.headers, now);
        for name in validators {
            if let Some(value) = stored.get(&name) {
                view.headers_mut().insert(name, value.clone());
            }
        }
    }
    view
}

/// `outcome` with its hops written into the response as the edge worker writes them, for
/// tests that read the fields a client would.
#[cfg(test)]
fn with_fields(tier: &CacheTier, mut outcome: Outcome) -> Outcome {
    let headers = outcome.response.headers_mut();
    crate::hops::write_cache_status(headers, &outcome.hops, tier.cf_cache_status);
    crate::hops::prepend_timings(headers, &crate::hops::path_timings(&outcome.hops));
    outcome
}

#[cfg(test)]
mod policy_tests;
#[cfg(test)]
mod properties;
#[cfg(test)]
mod tests;
