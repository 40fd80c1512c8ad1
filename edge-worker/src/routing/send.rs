//! Carrying out a route plan: the core's upstream fetch, wrapped so the tier above it never
//! knows there is more than one origin.

use std::time::Duration;

use http::header::{self, HeaderValue};
use http::uri::PathAndQuery;
use http::{Method, Request, Response, StatusCode, Uri};

use super::{Admission, Candidate, LazyRouter, OriginSpec, Reason, Router};
use crate::{Body, CacheEntry, FetchError, Locked, LogLevel, Platform, Upstream, WorkerError};

/// Names the origin that produced a response and why: `eu-west; reason=nearest`.
pub const ORIGIN_REGION_HEADER: &str = "x-edge-origin-region";

/// Put into a request's extensions by the tier when it holds a stale response it may serve
/// if the fetch fails (RFC 5861 stale-if-error): then a failed primary is answered from cache
/// rather than from a farther origin.
#[derive(Debug, Clone, Copy)]
pub struct StaleFallback;

/// Put into a request's extensions when geo routing aims it at an origin: the origin's name,
/// so hosts and upper tiers know where it goes without looking its URL's host up (origins may
/// share a host).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoutedTo(pub String);

/// Which origin produced the response a fetch returned, and why it was chosen: the typed
/// form of [`ORIGIN_REGION_HEADER`], which hosts count without parsing the header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouteChoice {
    pub origin: String,
    pub reason: Reason,
}

/// A [`Platform`] whose `fetch` goes to the origins a [`Router`] picks (without one, to the
/// inner platform's `fetch`); everything else is the inner platform's. The worker always goes
/// through it, so the whole cache pipeline is compiled once per platform, not once with
/// routing and once without (that second copy was ~15 KiB of the gzipped Workers bundle).
pub struct Routed<'a, P> {
    pub inner: &'a P,
    pub router: Option<&'a LazyRouter>,
    /// The origin of the last fetch this request made (its final answer), if any.
    pub chosen: std::cell::RefCell<Option<RouteChoice>>,
}

impl<'a, P> Routed<'a, P> {
    pub fn new(inner: &'a P, router: Option<&'a LazyRouter>) -> Self {
        Self {
            inner,
            router,
            chosen: std::cell::RefCell::new(None),
        }
    }

    /// Whether fetches are routed here (else the inner platform's `fetch` decides).
    pub fn routes(&self) -> bool {
        self.router.is_some()
    }

    /// The route of this request's last upstream answer, if it fetched.
    pub fn take_choice(&self) -> Option<RouteChoice> {
        self.chosen.borrow_mut().take()
    }

    fn choose(&self, origin: &str, reason: Reason) {
        *self.chosen.borrow_mut() = Some(RouteChoice {
            origin: origin.to_string(),
            reason,
        });
    }
}

impl<P: Platform> Platform for Routed<'_, P> {
    type Guard = P::Guard;

    fn now(&self) -> std::time::SystemTime {
        self.inner.now()
    }
    fn random(&self) -> u64 {
        self.inner.random()
    }
    async fn cache_get(&self, key: &str) -> Option<CacheEntry> {
        self.inner.cache_get(key).await
    }
    async fn cache_put(&self, key: &str, entry: CacheEntry, keep: Duration) {
        self.inner.cache_put(key, entry, keep).await
    }
    async fn cache_delete(&self, key: &str) {
        self.inner.cache_delete(key).await
    }
    async fn lock(&self, key: &str) -> Locked<P::Guard> {
        self.inner.lock(key).await
    }
    async fn fetch(&self, request: Request<Body>) -> Result<Upstream, FetchError> {
        match self.router {
            Some(router) => self.send(router, request).await,
            None => self.inner.fetch(request).await,
        }
    }
    fn log(&self, level: LogLevel, message: &str) {
        self.inner.log(level, message)
    }
    fn origin_admit(&self, origin: &str) -> Admission {
        self.inner.origin_admit(origin)
    }
    fn origin_report(&self, origin: &str, ok: bool) {
        self.inner.origin_report(origin, ok)
    }
    async fn encode(&self, coding: crate::encoding::Coding, level: u32, body: &Body) -> Body {
        self.inner.encode(coding, level, body).await
    }
}

/// RFC 9110 §9.2.2: only these may be sent twice.
fn idempotent(method: &Method) -> bool {
    matches!(
        *method,
        Method::GET | Method::HEAD | Method::OPTIONS | Method::TRACE | Method::PUT | Method::DELETE
    )
}

/// The request for `origin`: same method, path, query, fields and body; the origin's
/// scheme and authority.
fn aimed_at(parts: &http::request::Parts, body: &Body, origin: &OriginSpec) -> Request<Body> {
    let path = parts
        .uri
        .path_and_query()
        .cloned()
        .unwrap_or_else(|| PathAndQuery::from_static("/"));
    let uri = Uri::builder()
        .scheme(origin.scheme.clone())
        .authority(origin.authority.clone())
        .path_and_query(path)
        .build()
        .unwrap_or_else(|_| parts.uri.clone());
    let mut request = Request::new(body.clone());
    *request.method_mut() = parts.method.clone();
    *request.uri_mut() = uri;
    *request.headers_mut() = parts.headers.clone();
    *request.extensions_mut() = parts.extensions.clone();
    request
        .extensions_mut()
        .insert(RoutedTo(origin.name.clone()));
    request
}

/// A response is a failure of its origin when the server says so (5xx).
fn healthy(result: &Result<Upstream, FetchError>) -> bool {
    result
        .as_ref()
        .is_ok_and(|u| !u.response.status().is_server_error())
}

/// Names the origin in the response for the client; the choice itself travels as a value
/// (the tier's hop writes Server-Timing's `route` entry from it).
fn annotate(response: &mut Response<Body>, origin: &str, reason: Reason) {
    let value = format!("{origin}; reason={}", reason.as_str());
    if let Ok(value) = HeaderValue::from_str(&value) {
        response.headers_mut().insert(ORIGIN_REGION_HEADER, value);
    }
}

/// `upstream` as the routed origin produced it.
fn routed(mut upstream: Upstream, origin: &str, reason: Reason) -> Upstream {
    annotate(&mut upstream.response, origin, reason);
    upstream.route = Some(RouteChoice {
        origin: origin.to_string(),
        reason,
    });
    upstream
}

impl<P: Platform> Routed<'_, P> {
    async fn send(
        &self,
        router: &LazyRouter,
        request: Request<Body>,
    ) -> Result<Upstream, FetchError> {
        let router = match router.get() {
            Ok(router) => router,
            Err(problem) => {
                let error = WorkerError::Config(format!("routing configuration: {problem}"));
                return Ok(Upstream::new(error.to_response()));
            }
        };
        let plan = router.plan_for(&request);
        let stale_fallback = request.extensions().get::<StaleFallback>().is_some();
        let (parts, body) = request.into_parts();
        let retryable = idempotent(&parts.method);
        let mut retry_after: Option<Duration> = None;
        let mut last: Option<(Result<Upstream, FetchError>, Candidate)> = None;
        let mut next = 0;
        while next < plan.candidates.len() {
            if last.is_some() && (!retryable || stale_fallback) {
                // POST is never replayed; a stale copy beats a farther origin.
                break;
            }
            let candidate = plan.candidates[next];
            next += 1;
            let origin = &router.origins[candidate.origin];
            if let Admission::Reject { retry_after: wait } = self.inner.origin_admit(&origin.name) {
                retry_after = Some(retry_after.map_or(wait, |r| r.min(wait)));
                continue;
            }
            let (result, served_by) =
                match self.hedge_partner(router, &parts, &plan.candidates[next..]) {
                    Some((after, partner)) => {
                        let (result, backup_won) = self
                            .hedged(router, &parts, &body, origin, partner, after)
                            .await;
                        if backup_won {
                            // The partner is used up; continue after it.
                            next += 1 + plan.candidates[next..]
                                .iter()
                                .position(|c| c.origin == partner.origin)
                                .unwrap_or(0);
                            (result, partner)
                        } else {
                            (result, candidate)
                        }
                    }
                    None => (
                        self.inner.fetch(aimed_at(&parts, &body, origin)).await,
                        candidate,
                    ),
                };
            let served_origin = &router.origins[served_by.origin].name;
            let ok = healthy(&result);
            self.inner.origin_report(served_origin, ok);
            if ok {
                self.choose(served_origin, served_by.reason);
                return result.map(|upstream| routed(upstream, served_origin, served_by.reason));
            }
            if let Err(error) = &result {
                self.inner.log(
                    LogLevel::Warn,
                    &format!("origin {served_origin}: {}", error.0),
                );
            }
            last = Some((result, served_by));
        }
        match last {
            // The last origin tried answered (with a 5xx): pass its answer on, so stale-if-error
            // and the client see what the origin said.
            Some((Ok(upstream), by)) => {
                let name = &router.origins[by.origin].name;
                self.choose(name, by.reason);
                Ok(routed(upstream, name, by.reason))
            }
            // A request that may not be replayed failed in flight: the origin may have acted
            // on it, so say so (502) rather than invite a retry.
            Some((Err(error), _)) if !retryable => Err(error),
            // Nothing answered, or every circuit was open: 503 with Retry-After.
            _ => {
                let tried: Vec<&str> = plan
                    .candidates
                    .iter()
                    .map(|c| router.origins[c.origin].name.as_str())
                    .collect();
                let pin = plan.pin.map(|p| router.pin_name(p));
                let error = WorkerError::NoOrigin {
                    origins: tried.join(", "),
                    pinned: pin.map(str::to_string),
                    retry_after: retry_after.unwrap_or(Duration::from_secs(1)),
                };
                Ok(Upstream::new(error.to_response()))
            }
        }
    }

    /// A GET may be hedged to the next candidate whose circuit admits it.
    fn hedge_partner(
        &self,
        router: &Router,
        parts: &http::request::Parts,
        rest: &[Candidate],
    ) -> Option<(Duration, Candidate)> {
        let after = router.hedge_after?;
        if parts.method != Method::GET {
            return None;
        }
        let partner = rest.iter().copied().find(|c| {
            self.inner
                .origin_admit(&router.origins[c.origin].name)
                .admitted()
        })?;
        Some((after, partner))
    }

    #[allow(clippy::too_many_arguments)] // why: one private call site; a struct would only rename them
    async fn hedged(
        &self,
        router: &Router,
        parts: &http::request::Parts,
        body: &Body,
        primary: &OriginSpec,
        partner: Candidate,
        after: Duration,
    ) -> (Result<Upstream, FetchError>, bool) {
        let backup = &router.origins[partner.origin];
        match self
            .inner
            .fetch_hedged(
                aimed_at(parts, body, primary),
                aimed_at(parts, body, backup),
                after,
            )
            .await
        {
            Ok(hedged) => (Ok(hedged.upstream), hedged.backup_won),
            Err(error) => (Err(error), false),
        }
    }
}

/// Redirect mode (answer at the edge, touch no origin): the chosen origin's public host with
/// the client's path and query, and the choice. `None` when the router is not in redirect
/// mode.
pub fn redirect(router: &Router, request: &Request<Body>) -> Option<(Response<Body>, RouteChoice)> {
    let status = StatusCode::from_u16(router.redirect_status?).ok()?;
    let plan = router.plan_for(request);
    let chosen = plan.candidates.first()?;
    let origin = &router.origins[chosen.origin];
    let host = origin.redirect_host.as_ref()?;
    let path = request.uri().path_and_query().map_or("/", |p| p.as_str());
    let location = format!("https://{host}{path}");
    let mut response = Response::new(Body::new());
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(header::LOCATION, HeaderValue::from_str(&location).ok()?);
    // The answer depends on where the client is: no shared cache may keep it.
    headers.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("private, no-store"),
    );
    headers.insert(header::CONTENT_LENGTH, HeaderValue::from(0));
    annotate(&mut response, &origin.name, chosen.reason);
    let choice = RouteChoice {
        origin: origin.name.clone(),
        reason: chosen.reason,
    };
    Some((response, choice))
}
