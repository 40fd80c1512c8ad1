//! Composition's fetching: every include of a template fetched concurrently through the
//! worker's own pipeline (auth gate, experiments, private cache, shared tiers, each fragment
//! under its own key), with its `alt` and `onerror`, then the page assembled (`compose.rs`
//! decides the composed head).

use bytes::Bytes;
use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use http::{Request, Uri};
use serde_json::Value;

use super::{EdgeWorker, Resolved};
use crate::cache_control::CacheControl;
use crate::compose::esi::{self, Include, Node};
use crate::compose::vars::Env;
use crate::compose::{self, json, ComposeError, PartHead, TemplateKind};
use crate::conditional::EntityTag;
use crate::experiments::{Exposure, Unit, FORCE_HEADER};
use crate::outcome::Part;
use crate::routing::Geo;
use crate::{Body, Deferred, Outcome, Platform};

/// The client's fields a fragment request carries: its credentials and cookies (so each
/// fragment meets the auth gate as the page did), a forced variant (so a tester sees the
/// whole page in it), and what content negotiation of a fragment may use. Never the
/// client's preconditions or ranges: those apply to the composed page.
const CARRIED: [HeaderName; 5] = [
    header::AUTHORIZATION,
    header::COOKIE,
    FORCE_HEADER,
    header::ACCEPT_LANGUAGE,
    header::USER_AGENT,
];

/// What every fragment request of a page starts from.
pub(crate) struct FragmentBase {
    pub headers: HeaderMap,
    pub geo: Option<Geo>,
    /// Who the page was assigned as, so its fragments are in the same variants.
    pub unit: Option<Unit>,
}

impl FragmentBase {
    pub fn of(request: &Request<Body>) -> Self {
        let mut headers = HeaderMap::new();
        for name in CARRIED {
            for value in request.headers().get_all(&name) {
                headers.append(name.clone(), value.clone());
            }
        }
        Self {
            headers,
            geo: request.extensions().get::<Geo>().cloned(),
            unit: None,
        }
    }

    /// The visitor id the page's response is about to set, so fragments are assigned as
    /// the page was.
    pub fn add_visitor(&mut self, id: &str) {
        let cookie = format!("{}={id}", crate::experiments::COOKIE);
        if let Ok(value) = HeaderValue::from_str(&cookie) {
            self.headers.append(header::COOKIE, value);
        }
    }

    fn request(&self, uri: Uri) -> Request<Body> {
        let mut request = Request::new(Body::new());
        *request.uri_mut() = uri;
        *request.headers_mut() = self.headers.clone();
        // The fragment's bytes go into the page: identity, whatever the client accepts.
        request.headers_mut().insert(
            header::ACCEPT_ENCODING,
            HeaderValue::from_static("identity"),
        );
        if let Some(geo) = &self.geo {
            request.extensions_mut().insert(geo.clone());
        }
        if let Some(unit) = &self.unit {
            request.extensions_mut().insert(unit.clone());
        }
        request
    }
}

/// The page being composed, as its fragments need it.
pub(crate) struct Page<'a> {
    pub uri: &'a Uri,
    pub base: &'a FragmentBase,
    pub env: &'a Env,
    /// The templates above this one (URLs), to refuse a template that includes itself.
    pub chain: &'a [String],
}

/// A fragment as fetched.
struct Fetched {
    body: Bytes,
    /// Its JSON, for a JSON template.
    json: Option<Value>,
    head: PartHead,
    deferred: Vec<Deferred>,
    exposures: Vec<Exposure>,
    /// This fragment, then the parts it was composed of.
    parts: Vec<Part>,
}

enum Parsed {
    Esi(esi::Template),
    Json(json::JsonTemplate),
}

impl EdgeWorker {
    /// Fills the template in `resolved` with its fragments, or says why the page fails.
    pub(super) async fn compose<P: Platform>(
        &self,
        p: &P,
        kind: TemplateKind,
        page: &Page<'_>,
        resolved: &mut Resolved,
    ) -> Result<(), ComposeError> {
        let rules = &self.composition;
        if page.chain.len() >= rules.max_depth {
            return Err(ComposeError::TooDeep {
                limit: rules.max_depth,
            });
        }
        let template = resolved.outcome.response.body().to_bytes();
        if template.len() > compose::MAX_TEMPLATE_BYTES {
            return Err(ComposeError::TemplateTooLarge {
                limit: compose::MAX_TEMPLATE_BYTES,
            });
        }
        let parsed = match kind {
            TemplateKind::Esi => Parsed::Esi(esi::parse(&template, rules.max_includes)?),
            TemplateKind::Json => Parsed::Json(json::parse(&template, rules.max_includes)?),
        };
        let includes: Vec<&Include> = match &parsed {
            Parsed::Esi(t) => t
                .nodes
                .iter()
                .filter_map(|n| match n {
                    Node::Include(include) => Some(include),
                    _ => None,
                })
                .collect(),
            Parsed::Json(t) => t.includes.iter().collect(),
        };
        let mut chain = page.chain.to_vec();
        chain.push(page.uri.to_string());
        let fetches = includes
            .iter()
            .map(|include| Box::pin(self.fragment(p, kind, include, page, &chain)));
        let fetched = futures_util::future::join_all(fetches)
            .await
            .into_iter()
            .collect::<Result<Vec<Option<Fetched>>, ComposeError>>()?;

        let mut heads = vec![part_head(&resolved.outcome)];
        heads.extend(fetched.iter().flatten().map(|f| f.head.clone()));
        let outcome = &mut resolved.outcome;
        let body = match parsed {
            Parsed::Esi(t) => {
                let mut fragments = fetched.iter();
                let mut out = Vec::with_capacity(template.len());
                for node in &t.nodes {
                    match node {
                        Node::Text(range) => out.extend_from_slice(&template[range.clone()]),
                        Node::Include(_) => {
                            if let Some(Some(f)) = fragments.next() {
                                out.extend_from_slice(&f.body);
                            }
                        }
                        Node::Vars(expr) => out.extend_from_slice(expr.html(page.env).as_bytes()),
                    }
                }
                out
            }
            Parsed::Json(t) => {
                let values = fetched
                    .iter()
                    .map(|f| f.as_ref().and_then(|f| f.json.clone()))
                    .collect();
                serde_json::to_vec(&json::fill(t.document, values))
                    .map_err(|e| ComposeError::Json(e.to_string()))?
            }
        };
        let head = compose::composed_head(outcome.response.headers(), &heads);
        *outcome.response.headers_mut() = head;
        *outcome.response.body_mut() = Body::from(body);
        for f in fetched.into_iter().flatten() {
            outcome.deferred.extend(f.deferred);
            outcome.exposures.extend(f.exposures);
            outcome.parts.extend(f.parts);
        }
        if let Some(shaping) = &mut resolved.shaping {
            // The composed bytes are this request's alone: no coded variant of them is shared.
            shaping.cache = None;
        }
        Ok(())
    }

    /// One include: `src`, else `alt`; a failure of both drops it (`onerror="continue"`) or
    /// fails the page.
    async fn fragment<P: Platform>(
        &self,
        p: &P,
        kind: TemplateKind,
        include: &Include,
        page: &Page<'_>,
        chain: &[String],
    ) -> Result<Option<Fetched>, ComposeError> {
        let mut failure = None;
        for expr in std::iter::once(&include.src).chain(include.alt.as_ref()) {
            match self
                .fetch_one(p, kind, &expr.url(page.env), page, chain)
                .await
            {
                Ok(fetched) => return Ok(Some(fetched)),
                Err(error) => failure = Some(error),
            }
        }
        match failure {
            Some(_) if include.continue_on_error => Ok(None),
            Some(error) => Err(error),
            None => Ok(None),
        }
    }

    async fn fetch_one<P: Platform>(
        &self,
        p: &P,
        kind: TemplateKind,
        src: &str,
        page: &Page<'_>,
        chain: &[String],
    ) -> Result<Fetched, ComposeError> {
        let uri = self.composition.fragment_url(page.uri, src)?;
        let url = uri.to_string();
        // Hosts report a part by its path and query.
        let part_url = uri
            .path_and_query()
            .map_or_else(|| url.clone(), |p| p.to_string());
        if chain.contains(&url) {
            return Err(ComposeError::Loop {
                src: url,
                chain: chain.join(" → "),
            });
        }
        let fail = |why: String| ComposeError::Fragment {
            src: url.clone(),
            why,
        };
        let started = p.now();
        let mut resolved = Box::pin(self.resolve(p, page.base.request(uri), chain)).await;
        if let Some(inner) = resolved.composition_failed.take() {
            // A nested template's own failure (a loop, the depth limit), said as it is.
            return Err(inner);
        }
        let outcome = self.represented(p, resolved).await;
        let took = p.now().duration_since(started).unwrap_or_default();
        let status = outcome.response.status();
        if !status.is_success() {
            let said = String::from_utf8_lossy(outcome.response.body())
                .chars()
                .take(200)
                .collect::<String>();
            return Err(fail(format!("status {} ({said})", status.as_u16())));
        }
        let limit = self.composition.max_fragment_bytes;
        if outcome.response.body().len() > limit {
            return Err(fail(format!("larger than {limit} bytes")));
        }
        let timeout = self.composition.fragment_timeout;
        if took > timeout {
            return Err(fail(format!(
                "took {} ms, over the {} ms limit",
                took.as_millis(),
                timeout.as_millis()
            )));
        }
        let body = outcome.response.body().to_bytes();
        let json = match kind {
            TemplateKind::Json => {
                Some(serde_json::from_slice(&body).map_err(|e| fail(format!("not JSON: {e}")))?)
            }
            TemplateKind::Esi => None,
        };
        let head = part_head(&outcome);
        let mut parts = vec![Part {
            url: part_url,
            status: status.as_u16(),
            bytes: body.len() as u64,
            hops: outcome.hops,
        }];
        parts.extend(outcome.parts);
        Ok(Fetched {
            body,
            json,
            head,
            deferred: outcome.deferred,
            exposures: outcome.exposures,
            parts,
        })
    }
}

/// A part's freshness, privacy and validator: the edge hop's values (a hit's remaining
/// freshness), else its origin's lifetime less the age the hop reports.
fn part_head(outcome: &Outcome) -> PartHead {
    let directives = CacheControl::from_headers(outcome.response.headers());
    let hop = outcome.hop();
    let private = hop.is_some_and(|h| h.private) || directives.has("private");
    let reusable = !directives.has("no-store") && !directives.is_no_cache();
    let ttl = hop
        .and_then(|h| h.cache.as_ref())
        .and_then(|c| c.ttl)
        .or_else(|| {
            let lifetime = directives.seconds("max-age").filter(|_| reusable)?;
            let age = hop.and_then(|h| h.age).unwrap_or(0);
            Some(i64::try_from(lifetime.saturating_sub(age)).unwrap_or(i64::MAX))
        });
    PartHead {
        ttl,
        private,
        etag: outcome
            .response
            .headers()
            .get(header::ETAG)
            .and_then(|v| v.to_str().ok())
            .and_then(EntityTag::parse),
    }
}
