//! The worker's front door: one request through redirect, auth, routing, the private cache
//! and the shared RFC 9111 tier, then representation selection for what the client asked.
//!
//! ```text
//! request → geo redirect? → auth gate (RFC 6750) → ?fields= taken off the URL
//!   → unsafe method: precondition check, then the tier (which invalidates, RFC 9111 §4.4)
//!   → GET/HEAD: private cache (signed-in) or the shared tier → representation → response
//! ```

use std::sync::Arc;

use http::header::{self, HeaderValue};
use http::{Method, Request};

use crate::auth::{self, AuthPolicy};
use crate::compose::{self, CompositionRules};
use crate::conditional::{self, EntityTag, Precondition};
use crate::encoding;
use crate::experiments::{Experiments, Unit};
use crate::fields;
use crate::hops::{self, Hop};
use crate::private_cache;
use crate::representation::{represent, Wanted};
use crate::routing::{self, LazyRouter, Routed, Router};
use crate::{Body, CacheKey, CacheTier, CfCacheStatus, Deferred, Outcome, Platform, WorkerError};

/// The edge worker: the auth gate, then an RFC 9111 cache tier with the representation steps
/// around it.
#[derive(Debug, Clone)]
pub struct EdgeWorker {
    pub tier: CacheTier,
    /// `None`: every route is public.
    pub auth: Option<Arc<AuthPolicy>>,
    /// `None`: one upstream, the platform's.
    pub routing: Option<Arc<LazyRouter>>,
    /// Whether the origin's `Cache-Tag` reaches clients. Off by default, as on Cloudflare:
    /// tags name how the site is purged, which is the operator's business, not the client's.
    /// The field stays on stored entries and on hops between our tiers, where purges read it.
    pub forward_cache_tag: bool,
    /// Whether coded variants stored on a miss are recoded in the background at the best
    /// level (`encoding::Effort`). On by default; the cache policy's
    /// `[compression] background = false` turns it off.
    pub recompress: bool,
    /// Sticky A/B variants (`None`: no experiments configured).
    pub experiments: Option<Arc<Experiments>>,
    /// Edge composition of templates (ESI, JSON) and its limits.
    pub composition: Arc<CompositionRules>,
}

/// A request as the tiers answered it, before the representation steps.
pub(crate) struct Resolved {
    pub outcome: Outcome,
    /// `None`: a response made before the cache (a refusal, an error, an unsafe method).
    pub shaping: Option<Shaping>,
    /// How long the auth gate took, for a request whose token it checked.
    pub auth_spent: Option<std::time::Duration>,
    /// Why composing this response failed (its response is then the 502 saying so), for a
    /// page that included it to report as it is.
    pub composition_failed: Option<compose::ComposeError>,
}

impl Resolved {
    fn unshaped(outcome: Outcome) -> Self {
        Self {
            outcome,
            shaping: None,
            auth_spent: None,
            composition_failed: None,
        }
    }
}

/// How a response from the tiers is turned into the one the client asked for.
pub(crate) struct Shaping {
    pub key: CacheKey,
    pub wanted: Wanted,
    /// The tier's status, when the shaped variant may be stored in the shared space.
    pub cache: Option<CfCacheStatus>,
}

impl EdgeWorker {
    /// A worker with no auth and no routing. Hosts build theirs from a checked configuration
    /// (`WorkerConfig::worker`); this and the `with_*` builders are for tests and benches.
    pub fn new(tier: CacheTier) -> Self {
        Self {
            tier,
            auth: None,
            routing: None,
            forward_cache_tag: false,
            recompress: true,
            experiments: None,
            composition: Arc::new(CompositionRules::default()),
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
        if !self.forward_cache_tag {
            outcome
                .response
                .headers_mut()
                .remove(crate::purge::CACHE_TAG);
        }
        if head {
            // RFC 9110 §9.3.2: no content in a response to HEAD, refusals and errors included.
            outcome.response.body_mut().clear();
        }
        outcome
    }

    async fn handle_any<P: Platform>(&self, p: &P, request: Request<Body>) -> Outcome {
        if let Some(lazy) = self.routing.as_deref().filter(|r| r.redirects()) {
            match lazy.get() {
                Ok(router) => {
                    if let Some((redirect, choice)) = routing::redirect(router, &request) {
                        let mut outcome = self.edge_outcome(Outcome::uncached(redirect));
                        let edge = outcome.hops.last_mut().expect("edge_outcome adds it");
                        edge.route = Some(choice);
                        let path = hops::path_timings(&outcome.hops);
                        hops::prepend_timings(outcome.response.headers_mut(), &path);
                        return outcome;
                    }
                }
                Err(problem) => {
                    let error = WorkerError::Config(format!("routing configuration: {problem}"));
                    return Outcome::uncached(error.to_response());
                }
            }
        }
        let resolved = self.resolve(p, request, &[]).await;
        let auth_spent = resolved.auth_spent;
        let outcome = self.represented(p, resolved).await;
        let mut outcome = self.edge_outcome(outcome);
        if let Some(spent) = auth_spent {
            let headers = outcome.response.headers_mut();
            hops::prepend_timings(headers, &[hops::auth_timing(spent)]);
            if let Some(edge) = outcome.hops.last_mut() {
                edge.auth = Some(spent);
            }
        }
        outcome
    }

    /// One request (a page, or a fragment of one at `chain.len()` levels down) through the
    /// auth gate, experiments and the cache tiers, composed if it is a template; before the
    /// representation steps.
    async fn resolve<P: Platform>(
        &self,
        p: &P,
        mut request: Request<Body>,
        chain: &[String],
    ) -> Resolved {
        // What fragments are fetched with: the client's credentials and cookies as it sent
        // them, so each fragment meets the auth gate on its own path.
        let mut fragment_base = compose_fetch::FragmentBase::of(&request);
        let mut auth_work = Vec::new();
        let mut claims = None;
        // Server-Timing `auth;dur=`: how far the platform's clock moved while the gate
        // checked a token. Clocks that stand still during compute (Cloudflare's, the
        // simulator's virtual one) count only its I/O: a JWKS fetch when the set was not at
        // hand. Only requests that presented a token to a route that checks it get one.
        let mut auth_spent = None;
        if let Some(auth) = &self.auth {
            let presented = request.headers().contains_key(header::AUTHORIZATION);
            let started = p.now();
            let admitted = auth::admit(auth, p, &mut request).await;
            let spent = p.now().duration_since(started).unwrap_or_default();
            match admitted {
                Ok(admitted) => {
                    auth_work = admitted.deferred;
                    if admitted.claims.is_some() {
                        auth_spent = Some(spent);
                    }
                    claims = admitted.claims;
                }
                Err(refused) => {
                    let mut outcome = self.edge_outcome(Outcome::uncached(*refused));
                    if presented {
                        let headers = outcome.response.headers_mut();
                        hops::prepend_timings(headers, &[hops::auth_timing(spent)]);
                        if let Some(edge) = outcome.hops.last_mut() {
                            edge.auth = Some(spent);
                        }
                    }
                    return Resolved::unshaped(outcome);
                }
            }
        }
        let subject = claims.as_ref().and_then(|c| c.sub.clone());
        let mut exposures = Vec::new();
        // A fragment comes with its page's unit (`FragmentBase`): assigned as the page was.
        let inherited = request.extensions_mut().remove::<Unit>();
        let unit = self.experiments.as_ref().map(|experiments| {
            let path = request.uri().path().to_string();
            let assigned = experiments.apply(
                p,
                subject.as_deref(),
                inherited,
                &path,
                request.headers_mut(),
            );
            exposures = assigned.exposures;
            assigned.unit
        });
        if let Some(id) = unit.as_ref().and_then(Unit::minted) {
            fragment_base.add_visitor(id);
        }
        fragment_base.unit.clone_from(&unit);
        let page_uri = request.uri().clone();
        // Auth fetches (JWKS) go to their own URLs; only the tier's fetches are routed.
        let routed = Routed::new(p, self.routing.as_deref());
        let (mut outcome, shaping) = self.cached(&routed, request, subject.as_deref()).await;
        if routed.routes() {
            outcome.route = routed.take_choice();
        }
        outcome.deferred.extend(auth_work);
        outcome.exposures = exposures;
        let mut resolved = Resolved {
            outcome,
            shaping,
            auth_spent,
            composition_failed: None,
        };
        let template = resolved
            .shaping
            .as_ref()
            .filter(|_| self.composition.enabled && resolved.outcome.response.status() == 200)
            .and_then(|_| compose::template_kind(resolved.outcome.response.headers()));
        if let Some(kind) = template {
            let env = compose::vars::Env::new(
                &page_uri,
                &fragment_base.headers,
                fragment_base.geo.as_ref().and_then(|g| g.country.clone()),
                claims.map(|c| c.all),
            );
            let page = compose_fetch::Page {
                uri: &page_uri,
                base: &fragment_base,
                env: &env,
                chain,
            };
            if let Err(error) = self.compose(p, kind, &page, &mut resolved).await {
                let hops = std::mem::take(&mut resolved.outcome.hops);
                let mut failed = Outcome::uncached(WorkerError::from(error.clone()).to_response());
                resolved.composition_failed = Some(error);
                failed.hops = hops;
                failed.deferred = std::mem::take(&mut resolved.outcome.deferred);
                failed.exposures = std::mem::take(&mut resolved.outcome.exposures);
                failed.route = resolved.outcome.route.take();
                resolved.outcome = failed;
                resolved.shaping = None;
            }
        }
        // The page (not a fragment) keeps a new visitor's id when it or any part of it was
        // exposed: set after composition, which drops the parts' own Set-Cookie.
        let exposed = chain.is_empty() && !resolved.outcome.exposures.is_empty();
        if let Some(cookie) = unit.as_ref().and_then(Unit::set_cookie).filter(|_| exposed) {
            resolved
                .outcome
                .response
                .headers_mut()
                .append(header::SET_COOKIE, cookie);
        }
        resolved
    }

    /// The representation steps on what the tiers answered: `?fields=`, coding, the
    /// client's preconditions, ranges. Responses made before the cache pass as they are.
    async fn represented<P: Platform>(&self, p: &P, resolved: Resolved) -> Outcome {
        let Resolved {
            mut outcome,
            shaping,
            ..
        } = resolved;
        let Some(Shaping { key, wanted, cache }) = shaping else {
            return outcome;
        };
        let response = std::mem::take(&mut outcome.response);
        let (response, extras) = represent(p, &key, cache, response, &wanted).await;
        outcome.response = response;
        outcome.recompression_saved = extras.recompression_saved;
        outcome
            .deferred
            .extend(extras.recompression.map(Deferred::Recompress));
        outcome
    }

    /// `outcome` with the edge's hop last: a response made before the cache (a refusal, a
    /// redirect) gets one that says no cache acted.
    fn edge_outcome(&self, mut outcome: Outcome) -> Outcome {
        if outcome.hops.last().map(|h| &h.tier) != Some(&self.tier.id) {
            outcome.hops.push(Hop::new(self.tier.id.clone()));
        }
        outcome
    }

    /// Writes what the tiers did, from their hops: `Cache-Status` (and `CF-Cache-Status`)
    /// and the Server-Timing entries of the way upstream. Before the representation steps,
    /// which keep those fields on a 304 and not on a 412.
    fn report_path(&self, outcome: &mut Outcome) {
        let headers = outcome.response.headers_mut();
        hops::write_cache_status(headers, &outcome.hops, self.tier.cf_cache_status);
        hops::prepend_timings(headers, &hops::path_timings(&outcome.hops));
    }

    /// The private cache (signed-in) or the shared tier for a GET/HEAD; unsafe methods to
    /// upstream. `subject`: the verified `sub`, which gives the request a private cache
    /// space. Returns the identity response and how to shape it for the client (`None`: a
    /// response made before the cache, passed as it is).
    async fn cached<P: Platform>(
        &self,
        p: &P,
        request: Request<Body>,
        subject: Option<&str>,
    ) -> (Outcome, Option<Shaping>) {
        let (mut parts, body) = request.into_parts();
        let (uri, fields) = match fields::take_from_uri(&parts.uri) {
            Ok(taken) => taken,
            Err(error) => {
                return (
                    Outcome::uncached(WorkerError::from(error).to_response()),
                    None,
                )
            }
        };
        parts.uri = uri;
        let wanted = Wanted {
            method: parts.method.clone(),
            fields,
            coding: encoding::negotiate(&parts.headers),
            conditions: parts.headers.clone(),
            recompress: self.recompress,
        };
        // We encode at the edge and cache identity bytes, so ask upstream for those.
        parts.headers.insert(
            header::ACCEPT_ENCODING,
            HeaderValue::from_static("identity"),
        );
        let request = Request::from_parts(parts, body);
        if wanted.method != Method::GET && wanted.method != Method::HEAD {
            return (self.unsafe_method(p, request, &wanted).await, None);
        }
        let key = match CacheKey::for_request(request.uri(), request.headers()) {
            Ok(key) => key,
            Err(error) => return (Outcome::uncached(error.to_response()), None),
        };
        // HEAD is answered from the GET representation so both carry the same fields.
        let (mut parts, body) = request.into_parts();
        parts.method = Method::GET;
        // The URL's authority is the host (as in the tier); a Host field would not match.
        parts.headers.remove(header::HOST);
        let request = Request::from_parts(parts, body);
        if let Some(subject) = subject {
            if let Some(mut outcome) =
                private_cache::lookup(p, &self.tier.id, subject, &key, &request).await
            {
                self.report_path(&mut outcome);
                // Private bytes: no encoded variant goes to the shared space (`cache: None`).
                let cache = None;
                return (outcome, Some(Shaping { key, wanted, cache }));
            }
        }
        let (parts, body) = request.into_parts();
        // The request as the private cache judges it; only a signed-in request needs it.
        let view = subject.map(|_| Request::from_parts(parts.clone(), ()));
        let request = Request::from_parts(parts, body);
        let mut outcome = self.tier.handle_keyed(p, &key, Method::GET, request).await;
        self.report_path(&mut outcome);
        let mut cache = outcome.status;
        if let (Some(subject), Some(view), Some(CfCacheStatus::Bypass)) =
            (subject, &view, outcome.status)
        {
            if private_cache::store(p, subject, &key, view, &outcome.response).await {
                cache = None;
            }
        }
        (outcome, Some(Shaping { key, wanted, cache }))
    }

    pub async fn run_deferred<P: Platform>(&self, p: &P, task: Deferred) {
        match task {
            Deferred::RefreshJwks(url) => {
                auth::refresh_jwks(p, &url).await;
            }
            Deferred::Recompress(task) => crate::representation::recompress(p, task).await,
            task => {
                let routed = Routed::new(p, self.routing.as_deref());
                self.tier.run_deferred(&routed, task).await
            }
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
            let now = p.now();
            let modified = conditional::date(&stored.headers, &header::LAST_MODIFIED, now);
            if conditional::evaluate(
                &wanted.method,
                &wanted.conditions,
                etag.as_ref(),
                modified,
                now,
            ) == Precondition::Failed
            {
                return Outcome::uncached(WorkerError::PreconditionFailed.to_response());
            }
        }
        let mut outcome = self.tier.handle(p, request).await;
        self.report_path(&mut outcome);
        outcome
    }
}

mod compose_fetch;

#[cfg(test)]
mod tests {
    #[test]
    fn the_auth_metric_is_in_milliseconds() {
        let metric = crate::hops::auth_timing(std::time::Duration::from_micros(42_250));
        assert_eq!(metric.to_string(), "auth;dur=42.2");
    }
}
