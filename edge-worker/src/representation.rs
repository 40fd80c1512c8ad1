//! The edge worker's request flow: what the client receives, built from the cached full
//! representation.
//!
//! ```text
//! origin body → cache (identity, full) → projection (?fields) → ETag for the mask
//!   → content coding (Accept-Encoding; encoded variants cached) → 304/412 check → response
//! ```
//! Only the full identity representation goes through the RFC 9111 tier. Projection runs per
//! request on the cached body; encoded variants are cached beside it under a key that holds the
//! base ETag, the canonical mask and the coding, so a repeated hit costs no compression.

use std::sync::Arc;
use std::time::Duration;

use http::header::{self, HeaderValue};
use http::{HeaderMap, Method, Request, Response, StatusCode};
use xxhash_rust::xxh3::xxh3_64;

use crate::auth::{self, AuthPolicy};
use crate::conditional::{self, EntityTag, Precondition};
use crate::encoding::{self, Coding, MIN_COMPRESS_SIZE};
use crate::fields::{self, FieldSelection, MAX_PROJECTED_BODY};
use crate::private_cache;
use crate::routing::{self, LazyRouter, Routed, Router};
use crate::{
    Body, CacheEntry, CacheKey, CacheTier, CfCacheStatus, Deferred, Outcome, Platform,
    StoredResponse, WorkerError,
};

/// How long an encoded variant is kept. Its key holds the base ETag, so it is never served for
/// a changed base; this only bounds how long an unused one occupies the store.
const VARIANT_KEEP: Duration = Duration::from_secs(600);

/// Says whether `?fields=` was applied: `applied`, or `skipped; reason=...`.
pub const FIELDS_HEADER: &str = "x-edge-fields";

/// The edge worker: the auth gate, then an RFC 9111 cache tier with the representation steps
/// around it.
#[derive(Debug, Clone)]
pub struct EdgeWorker {
    pub tier: CacheTier,
    /// `None`: every route is public.
    pub auth: Option<Arc<AuthPolicy>>,
    /// `None`: one upstream, the platform's.
    pub routing: Option<Arc<LazyRouter>>,
}

/// What the client asked of the representation.
struct Wanted {
    method: Method,
    fields: Option<FieldSelection>,
    coding: Coding,
    /// The client's request fields, for the preconditions.
    conditions: HeaderMap,
}

impl EdgeWorker {
    pub fn new(tier: CacheTier) -> Self {
        Self {
            tier,
            auth: None,
            routing: None,
        }
    }

    pub fn with_routing(self, router: Router) -> Self {
        self.with_lazy_routing(Arc::new(LazyRouter::ready(router)))
    }

    /// Routing whose configuration is parsed on the first fetch (or at once in redirect
    /// mode), for hosts that build a worker per request.
    pub fn with_lazy_routing(mut self, router: Arc<LazyRouter>) -> Self {
        self.routing = Some(router);
        self
    }

    pub fn with_auth(mut self, auth: Arc<AuthPolicy>) -> Self {
        self.auth = Some(auth);
        self
    }

    /// Handles one request. Hosts put the request's [`routing::Geo`] into its extensions.
    pub async fn handle<P: Platform>(&self, p: &P, request: Request<Body>) -> Outcome {
        let head = request.method() == Method::HEAD;
        let mut outcome = self.handle_any(p, request).await;
        if head {
            // RFC 9110 §9.3.2: no content in a response to HEAD, refusals and errors included.
            outcome.response.body_mut().clear();
        }
        outcome
    }

    async fn handle_any<P: Platform>(&self, p: &P, mut request: Request<Body>) -> Outcome {
        if let Some(lazy) = self.routing.as_deref().filter(|r| r.redirects()) {
            match lazy.get() {
                Ok(router) => {
                    if let Some(redirect) = routing::redirect(router, &request) {
                        return Outcome::uncached(redirect);
                    }
                }
                Err(problem) => {
                    let error = WorkerError::Config(format!("routing configuration: {problem}"));
                    return Outcome::uncached(error.to_response());
                }
            }
        }
        let mut auth_work = Vec::new();
        let mut subject = None;
        if let Some(auth) = &self.auth {
            match auth::admit(auth, p, &mut request).await {
                Ok(admitted) => {
                    auth_work = admitted.deferred;
                    subject = admitted.claims.and_then(|c| c.sub);
                }
                Err(refused) => return Outcome::uncached(*refused),
            }
        }
        // Auth fetches (JWKS) go to their own URLs; only the tier's fetches are routed.
        let mut outcome = match self.routing.as_deref() {
            Some(router) => {
                let routed = Routed::new(p, router);
                let mut outcome = self
                    .handle_admitted(&routed, request, subject.as_deref())
                    .await;
                outcome.route = routed.take_choice();
                outcome
            }
            None => self.handle_admitted(p, request, subject.as_deref()).await,
        };
        outcome.deferred.extend(auth_work);
        outcome
    }

    /// `subject`: the verified `sub`, which gives the request a private cache space.
    async fn handle_admitted<P: Platform>(
        &self,
        p: &P,
        request: Request<Body>,
        subject: Option<&str>,
    ) -> Outcome {
        let (mut parts, body) = request.into_parts();
        let (uri, fields) = match fields::take_from_uri(&parts.uri) {
            Ok(taken) => taken,
            Err(error) => return Outcome::uncached(WorkerError::from(error).to_response()),
        };
        parts.uri = uri;
        let wanted = Wanted {
            method: parts.method.clone(),
            fields,
            coding: encoding::negotiate(&parts.headers),
            conditions: parts.headers.clone(),
        };
        // We encode at the edge and cache identity bytes, so ask upstream for those.
        parts.headers.insert(
            header::ACCEPT_ENCODING,
            HeaderValue::from_static("identity"),
        );
        let request = Request::from_parts(parts, body);
        if wanted.method != Method::GET && wanted.method != Method::HEAD {
            return self.unsafe_method(p, request, &wanted).await;
        }
        let key = match CacheKey::from_uri(request.uri()) {
            Ok(key) => key,
            Err(error) => return Outcome::uncached(error.to_response()),
        };
        // HEAD is answered from the GET representation so both carry the same fields.
        let (mut parts, body) = request.into_parts();
        parts.method = Method::GET;
        // The URL's authority is the host (as in the tier); a Host field would not match.
        parts.headers.remove(header::HOST);
        let request = Request::from_parts(parts, body);
        if let Some(subject) = subject {
            if let Some(mut outcome) =
                private_cache::lookup(p, &self.tier.name, subject, &key, &request).await
            {
                // Private bytes: no encoded variant goes to the shared space (`cache: None`).
                outcome.response = self
                    .represent(p, &key, None, outcome.response, &wanted)
                    .await;
                return outcome;
            }
        }
        let (parts, body) = request.into_parts();
        let view = Request::from_parts(parts.clone(), ());
        let mut outcome = self.tier.handle(p, Request::from_parts(parts, body)).await;
        let mut cache = outcome.status;
        if let (Some(subject), Some(CfCacheStatus::Bypass)) = (subject, outcome.status) {
            if private_cache::store(p, subject, &key, &view, &outcome.response).await {
                cache = None;
            }
        }
        outcome.response = self
            .represent(p, &key, cache, outcome.response, &wanted)
            .await;
        outcome
    }

    pub async fn run_deferred<P: Platform>(&self, p: &P, task: Deferred) {
        match task {
            Deferred::RefreshJwks(url) => {
                auth::refresh_jwks(p, &url).await;
            }
            task => match self.routing.as_deref() {
                Some(router) => {
                    let routed = Routed::new(p, router);
                    self.tier.run_deferred(&routed, task).await
                }
                None => self.tier.run_deferred(p, task).await,
            },
        }
    }

    /// Unsafe methods go to the origin, but a precondition that already fails against the
    /// fresh representation we hold is answered here with 412 (RFC 9110 §13.2.2).
    async fn unsafe_method<P: Platform>(
        &self,
        p: &P,
        request: Request<Body>,
        wanted: &Wanted,
    ) -> Outcome {
        if let Some(stored) = self
            .tier
            .fresh_entry(p, request.uri(), request.headers())
            .await
        {
            let etag = stored
                .headers
                .get(header::ETAG)
                .and_then(|v| v.to_str().ok())
                .and_then(EntityTag::parse);
            let modified = conditional::date(&stored.headers, &header::LAST_MODIFIED);
            if conditional::evaluate(&wanted.method, &wanted.conditions, etag.as_ref(), modified)
                == Precondition::Failed
            {
                return Outcome::uncached(WorkerError::PreconditionFailed.to_response());
            }
        }
        self.tier.handle(p, request).await
    }

    /// Turns the full identity response from the tier into the one the client asked for.
    async fn represent<P: Platform>(
        &self,
        p: &P,
        key: &CacheKey,
        cache: Option<CfCacheStatus>,
        response: Response<Body>,
        wanted: &Wanted,
    ) -> Response<Body> {
        let mut response = if response.status().is_success() {
            self.selected(p, key, cache, response, wanted).await
        } else {
            response
        };
        if response.status().is_success() {
            let etag = response
                .headers()
                .get(header::ETAG)
                .and_then(|v| v.to_str().ok())
                .and_then(EntityTag::parse);
            let modified = conditional::date(response.headers(), &header::LAST_MODIFIED);
            match conditional::evaluate(&wanted.method, &wanted.conditions, etag.as_ref(), modified)
            {
                Precondition::Proceed => {}
                Precondition::NotModified => return conditional::not_modified(&response),
                Precondition::Failed => {
                    let mut failed = WorkerError::PreconditionFailed.to_response();
                    if let Some(etag) = response.headers().get(header::ETAG) {
                        failed.headers_mut().insert(header::ETAG, etag.clone());
                    }
                    return failed;
                }
            }
        }
        let length = response.body().len();
        response
            .headers_mut()
            .insert(header::CONTENT_LENGTH, HeaderValue::from(length));
        if wanted.method == Method::HEAD {
            response.body_mut().clear();
        }
        response
    }

    /// The selected representation of a 2xx response: projected, tagged and encoded.
    async fn selected<P: Platform>(
        &self,
        p: &P,
        key: &CacheKey,
        cache: Option<CfCacheStatus>,
        mut response: Response<Body>,
        wanted: &Wanted,
    ) -> Response<Body> {
        let no_transform = crate::cache_control::CacheControl::from_headers(response.headers())
            .has("no-transform");
        let content_type = response
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_string();
        let already_encoded = response.headers().contains_key(header::CONTENT_ENCODING);
        let compressible =
            !no_transform && !already_encoded && encoding::is_compressible(&content_type);
        if compressible {
            crate::vary::append_vary(response.headers_mut(), "accept-encoding");
        }
        let base_etag = match response.headers().get(header::ETAG) {
            Some(value) => value.to_str().ok().and_then(EntityTag::parse),
            None => {
                let generated = EntityTag::of_content(response.body());
                set_etag(response.headers_mut(), &generated);
                Some(generated)
            }
        };

        // What the mask does to this response, decided without touching the body.
        let projection = wanted.fields.as_ref().map(|fields| {
            let skip = if response.status() != StatusCode::OK || !fields::is_json(&content_type) {
                Some("not-json")
            } else if no_transform {
                Some("no-transform")
            } else if already_encoded {
                Some("content-encoded")
            } else if response.body().len() > MAX_PROJECTED_BODY {
                Some("body-too-large")
            } else {
                None
            };
            (fields, skip)
        });
        let mask = match projection {
            Some((fields, None)) => Some(fields),
            Some((_, Some(reason))) => {
                set_fields_header(response.headers_mut(), &format!("skipped; reason={reason}"));
                None
            }
            None => None,
        };
        let coding = if compressible && response.body().len() >= MIN_COMPRESS_SIZE {
            wanted.coding
        } else {
            Coding::Identity
        };
        if mask.is_none() && coding == Coding::Identity {
            return response;
        }

        // A cached encoded variant answers without projecting or compressing.
        let shared = matches!(
            cache,
            Some(
                CfCacheStatus::Hit
                    | CfCacheStatus::Miss
                    | CfCacheStatus::Expired
                    | CfCacheStatus::Stale
                    | CfCacheStatus::Updating
                    | CfCacheStatus::Revalidated
            )
        );
        let variant_key = match (&base_etag, coding, shared) {
            (Some(etag), Coding::Brotli | Coding::Gzip, true) => Some(format!(
                "{key}\u{1}etag={etag};fields={};coding={}",
                mask.map(ToString::to_string).unwrap_or_default(),
                coding.suffix()
            )),
            _ => None,
        };
        if let Some(variant_key) = &variant_key {
            if let Some(CacheEntry::Response(variant)) = p.cache_get(variant_key).await {
                for name in [
                    header::ETAG,
                    header::CONTENT_ENCODING,
                    header::HeaderName::from_static(FIELDS_HEADER),
                ] {
                    response.headers_mut().remove(&name);
                    for value in variant.headers.get_all(&name) {
                        response.headers_mut().append(name.clone(), value.clone());
                    }
                }
                *response.body_mut() = variant.body;
                return response;
            }
        }

        let mut etag = base_etag;
        if let Some(mask) = mask {
            match mask.apply(response.body()) {
                Ok(projected) => {
                    *response.body_mut() = projected;
                    let canonical = mask.to_string();
                    etag =
                        etag.map(|e| e.derive(&format!("f{:016x}", xxh3_64(canonical.as_bytes()))));
                    set_fields_header(response.headers_mut(), "applied");
                }
                Err(_) => set_fields_header(response.headers_mut(), "skipped; reason=invalid-json"),
            }
        }
        if coding != Coding::Identity {
            let encoded = coding.encode(response.body());
            *response.body_mut() = encoded;
            if let Some(token) = coding.token() {
                response
                    .headers_mut()
                    .insert(header::CONTENT_ENCODING, HeaderValue::from_static(token));
            }
            etag = etag.map(|e| e.derive(coding.suffix()));
        }
        if let Some(etag) = &etag {
            set_etag(response.headers_mut(), etag);
        }
        if let Some(variant_key) = variant_key {
            let mut headers = HeaderMap::new();
            for name in [
                header::ETAG,
                header::CONTENT_ENCODING,
                header::HeaderName::from_static(FIELDS_HEADER),
            ] {
                for value in response.headers().get_all(&name) {
                    headers.append(name.clone(), value.clone());
                }
            }
            let variant = StoredResponse {
                status: response.status(),
                headers,
                body: response.body().clone(),
                vary_request_headers: HeaderMap::new(),
                response_time: p.now(),
            };
            p.cache_put(&variant_key, CacheEntry::Response(variant), VARIANT_KEEP)
                .await;
        }
        response
    }
}

fn set_etag(headers: &mut HeaderMap, etag: &EntityTag) {
    if let Ok(value) = HeaderValue::from_str(&etag.to_string()) {
        headers.insert(header::ETAG, value);
    }
}

fn set_fields_header(headers: &mut HeaderMap, value: &str) {
    if let Ok(value) = HeaderValue::from_str(value) {
        headers.insert(FIELDS_HEADER, value);
    }
}

#[cfg(test)]
mod properties;
#[cfg(test)]
mod tests;
