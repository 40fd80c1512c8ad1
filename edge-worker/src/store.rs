//! Storing responses (RFC 9111 §3): whether a tier keeps a response, for how long, and writing
//! it to its slot (or its variant's slot under a Vary rule).

use std::time::{Duration, SystemTime};

use http::header;
use http::{HeaderMap, Request, Response};
use http_cache_semantics::CachePolicy;

use crate::cache_policy::RouteRules;
use crate::entry::{cache_options, LocalLifetime};
use crate::vary::{self, VaryRule};
use crate::{Body, CacheEntry, CacheKey, Platform, StoredResponse};

/// Bodies larger than this are passed through but not stored.
pub const MAX_STORED_BODY: usize = 32 * 1024 * 1024;
/// An entry with validators stays useful for revalidation at least this long after it expires.
const VALIDATOR_KEEP: Duration = Duration::from_secs(3600);

/// Why a response was not stored. [`NotStoredReason::as_str`] is the token a Cache-Status
/// `detail` (RFC 9211 §2.8) would carry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum NotStoredReason {
    /// The body is larger than [`MAX_STORED_BODY`].
    TooLarge,
    /// The response sets a cookie. RFC 9111 would let `public` share it; CDNs (Cloudflare,
    /// Varnish's built-in VCL) refuse, and so do we: a stored copy would hand one visitor's
    /// session to the next, even via a 304 that refreshes it.
    SetCookie,
    /// RFC 9111 §3 forbids storing it in a shared cache (`no-store`, `private`, an
    /// Authorization request the response does not mark shareable, an uncacheable status),
    /// as `http-cache-semantics` judges the response's RFC 9213 view.
    NotStorable,
    /// A response to a request with Authorization that does not itself say `public`,
    /// `s-maxage` or `must-revalidate` (RFC 9111 §3.5). Checked on the directives as sent:
    /// `http-cache-semantics` adds a `must-revalidate` of its own when a directive repeats
    /// with different values, which must not make an authenticated response shareable.
    Authorization,
    /// `Vary: *` never matches a later request (RFC 9111 §4.1).
    VaryStar,
    /// Vary names more than [`vary::MAX_VARY_FIELDS`] fields.
    TooManyVaryFields,
    /// No freshness, no stale window and no validator: it could never be reused (e.g.
    /// Set-Cookie without `public`, which the library gives no freshness in a shared cache).
    NotReusable,
}

impl NotStoredReason {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::TooLarge => "too-large",
            Self::SetCookie => "set-cookie",
            Self::NotStorable => "not-storable",
            Self::Authorization => "authorization",
            Self::VaryStar => "vary-star",
            Self::TooManyVaryFields => "too-many-vary-fields",
            Self::NotReusable => "not-reusable",
        }
    }
}

impl From<vary::Unstorable> for NotStoredReason {
    fn from(why: vary::Unstorable) -> Self {
        match why {
            vary::Unstorable::Star => Self::VaryStar,
            vary::Unstorable::TooManyFields => Self::TooManyVaryFields,
        }
    }
}

/// What a tier did with a response it fetched or refreshed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreDecision {
    /// Stored for `keep`: its remaining freshness plus the longer of its stale windows, and at
    /// least an hour when it has a validator. `vary` names the request fields of the rule it
    /// was stored under; empty when it does not vary. `negative`: kept by negative caching
    /// (Cache-Status `detail=negative`).
    Stored {
        keep: Duration,
        vary: Vec<String>,
        negative: bool,
    },
    /// Not stored, and why.
    NotStored(NotStoredReason),
}

impl StoreDecision {
    /// Whether the response was stored (Cache-Status `stored`, RFC 9211 §2.7).
    pub fn is_stored(&self) -> bool {
        matches!(self, Self::Stored { .. })
    }

    /// The Cache-Status `detail` token: why a response was not stored, or that it was
    /// stored as a negative entry.
    pub fn detail(&self) -> Option<crate::hops::Detail> {
        match self {
            Self::Stored { negative: true, .. } => Some(crate::hops::Detail::Negative),
            Self::Stored { .. } => None,
            Self::NotStored(reason) => Some(crate::hops::Detail::NotStored(*reason)),
        }
    }
}

/// Whether a fetched response may be stored at all (RFC 9111 §3), judged on the request as the
/// client sent it (Authorization, no-store) and on the response as a CDN reads it (RFC 9213):
/// the policy to store it under, or why not.
pub fn admit(
    request: &Request<()>,
    response: &Response<Body>,
    now: SystemTime,
) -> Result<CachePolicy, NotStoredReason> {
    admit_with(request, response, now, None)
}

/// [`admit`], with the freshness lifetime `lifetime` (seconds) in place of the response's
/// own when the cache chose one (negative caching): every other rule is judged as usual, so a
/// `no-store`, `private`, Set-Cookie or Authorization refusal stands.
pub fn admit_with(
    request: &Request<()>,
    response: &Response<Body>,
    now: SystemTime,
    lifetime: Option<u64>,
) -> Result<CachePolicy, NotStoredReason> {
    if response.body().len() > MAX_STORED_BODY {
        return Err(NotStoredReason::TooLarge);
    }
    if response.headers().contains_key(header::SET_COOKIE) {
        return Err(NotStoredReason::SetCookie);
    }
    let mut view = crate::cache_view::response_view(response, now);
    if request.headers().contains_key(header::AUTHORIZATION) {
        let directives = crate::cache_control::CacheControl::from_headers(view.headers());
        if !["public", "s-maxage", "must-revalidate"]
            .iter()
            .any(|d| directives.has(d))
        {
            return Err(NotStoredReason::Authorization);
        }
    }
    if let Some(secs) = lifetime {
        let headers = crate::cache_view::with_lifetime(view.headers(), secs);
        *view.status_mut() = crate::cache_view::policy_status(response.status(), &headers);
        *view.headers_mut() = headers;
    }
    let policy = CachePolicy::new_options(request, &view, now, cache_options());
    if !policy.is_storable() {
        return Err(NotStoredReason::NotStorable);
    }
    Ok(policy)
}

/// Whether an admitted `entry` (fetched, or refreshed by a 304) is worth keeping under
/// `policy` at `now`, and for how long.
pub fn decide(entry: &StoredResponse, policy: &CachePolicy, now: SystemTime) -> StoreDecision {
    let fields = match vary::rule_fields(&entry.headers) {
        Ok(fields) => fields,
        Err(why) => return StoreDecision::NotStored(why.into()),
    };
    let fresh = !policy.time_to_live(now).is_zero();
    let has_validator = entry.headers.contains_key(header::ETAG)
        || entry.headers.contains_key(header::LAST_MODIFIED);
    if !fresh && !has_validator {
        return StoreDecision::NotStored(NotStoredReason::NotReusable);
    }
    let mut keep = entry.keep_for(policy, now);
    if has_validator {
        keep = keep.max(VALIDATOR_KEEP);
    }
    StoreDecision::Stored {
        keep,
        vary: fields,
        negative: entry.is_negative(),
    }
}

/// Stores a fetched `response` for `request` at `key` when RFC 9111 §3 allows and it is worth
/// keeping; says what it did. `rules`: the cache policy's route for the request, if any
/// (negative caching, jitter).
pub(crate) async fn store<P: Platform>(
    p: &P,
    key: &CacheKey,
    request: &Request<()>,
    response: &Response<Body>,
    now: SystemTime,
    rules: Option<&RouteRules>,
) -> StoreDecision {
    let negative = rules.and_then(|rules| {
        let view = crate::cache_view::effective(response.headers(), now);
        rules.negative_lifetime(response.status(), &view)
    });
    let policy = match admit_with(request, response, now, negative.map(|d| d.as_secs())) {
        Ok(policy) => policy,
        Err(reason) => return StoreDecision::NotStored(reason),
    };
    let mut entry = StoredResponse::capture(request.headers(), response, now);
    let policy = match negative {
        Some(ttl) => {
            entry.lifetime = Some(LocalLifetime {
                secs: ttl.as_secs(),
                negative: true,
            });
            entry.policy(request.method(), request.uri())
        }
        None => jitter(p, rules, &mut entry, policy, request.uri(), now),
    };
    put(p, key, request.headers(), entry, &policy, now).await
}

/// Shortens `entry`'s remaining freshness by the route's jitter (a fresh draw from the
/// platform), recording the lifetime it ends up with; gives the policy to judge it by. The
/// remaining freshness is jittered rather than the whole lifetime, so a copy that arrived
/// with an `Age` (from a tier above) is not made stale on arrival. Never lengthens.
pub(crate) fn jitter<P: Platform>(
    p: &P,
    rules: Option<&RouteRules>,
    entry: &mut StoredResponse,
    policy: CachePolicy,
    uri: &http::Uri,
    now: SystemTime,
) -> CachePolicy {
    let Some(rules) = rules.filter(|r| r.ttl_jitter > 0.0) else {
        return policy;
    };
    let ttl = policy.time_to_live(now);
    if ttl.is_zero() {
        return policy;
    }
    let age = policy.age(now);
    let lifetime = age + rules.jittered(ttl, p.random());
    entry.lifetime = Some(LocalLifetime {
        secs: lifetime.as_secs(),
        negative: false,
    });
    entry.policy(&http::Method::GET, uri)
}

/// Stores the entry a 304 refreshed (RFC 9111 §4.3.4) under the 304's `policy`, unless the
/// 304 sets a cookie: that answers this client and must not become the copy everyone else is
/// served.
pub(crate) async fn store_refreshed<P: Platform>(
    p: &P,
    key: &CacheKey,
    request: &HeaderMap,
    refreshed: StoredResponse,
    not_modified: &HeaderMap,
    policy: &CachePolicy,
    now: SystemTime,
) -> StoreDecision {
    if not_modified.contains_key(header::SET_COOKIE) {
        return StoreDecision::NotStored(NotStoredReason::SetCookie);
    }
    put(p, key, request, refreshed, policy, now).await
}

/// Writes `entry` (and its Vary rule) when [`decide`] keeps it.
async fn put<P: Platform>(
    p: &P,
    key: &CacheKey,
    request: &HeaderMap,
    mut entry: StoredResponse,
    policy: &CachePolicy,
    now: SystemTime,
) -> StoreDecision {
    let decision = decide(&entry, policy, now);
    let StoreDecision::Stored { keep, vary, .. } = &decision else {
        return decision;
    };
    entry.seal();
    if vary.is_empty() {
        p.cache_put(key.as_str(), CacheEntry::Response(entry), *keep)
            .await;
    } else {
        // A rule still in place with the same fields is kept, so its variants stay found; a
        // new rule starts a new generation, so variants stored under an earlier rule (before
        // an invalidation deleted it) stay unreachable.
        let rule = match p.cache_get(key.as_str()).await {
            Some(CacheEntry::VaryRule(rule)) if rule.fields() == vary.as_slice() => rule,
            _ => VaryRule::new(vary.clone(), now),
        };
        let variant = rule.variant(key, request);
        p.cache_put(key.as_str(), CacheEntry::VaryRule(rule), *keep)
            .await;
        p.cache_put(&variant, CacheEntry::Response(entry), *keep)
            .await;
    }
    decision
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(secs: u64) -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000 + secs)
    }

    fn response(fields: &[(&str, &str)], body: Vec<u8>) -> Response<Body> {
        let mut response = Response::builder();
        for (name, value) in fields {
            response = response.header(*name, *value);
        }
        response.body(Body::from(body)).unwrap()
    }

    fn get() -> Request<()> {
        Request::builder()
            .uri("https://a.example/x")
            .body(())
            .unwrap()
    }

    /// What the tier decides for a response fetched at `at(0)`.
    fn decision(fields: &[(&str, &str)], body: Vec<u8>) -> StoreDecision {
        let response = response(fields, body);
        match admit(&get(), &response, at(0)) {
            Ok(policy) => {
                let entry = StoredResponse::capture(&HeaderMap::new(), &response, at(0));
                decide(&entry, &policy, at(0))
            }
            Err(reason) => StoreDecision::NotStored(reason),
        }
    }

    #[test]
    fn rfc9111_3_5_authorization_needs_an_explicit_directive() {
        let signed = Request::builder()
            .uri("https://a.example/x")
            .header("authorization", "Bearer t")
            .body(())
            .unwrap();
        for (cache_control, shared) in [
            ("max-age=30", false),
            // A repeated directive is invalid (RFC 9111 §4.2.1): the library marks it
            // must-revalidate, which the origin never said.
            ("max-age=30, max-age=0", false),
            ("public, max-age=30", true),
            ("s-maxage=30", true),
            ("must-revalidate, max-age=30", true),
        ] {
            let response = response(&[("cache-control", cache_control)], Vec::new());
            let admitted = admit(&signed, &response, at(0));
            assert_eq!(admitted.is_ok(), shared, "{cache_control}");
            if !shared {
                assert_eq!(admitted.err(), Some(NotStoredReason::Authorization));
            }
        }
    }

    #[test]
    fn rfc9111_3_reasons_not_to_store() {
        use NotStoredReason::*;
        /// (case, response fields, expected reason)
        type Case = (
            &'static str,
            &'static [(&'static str, &'static str)],
            NotStoredReason,
        );
        let cases: &[Case] = &[
            (
                "no-store",
                &[("cache-control", "no-store, max-age=60")],
                NotStorable,
            ),
            (
                "private",
                &[("cache-control", "private, max-age=60")],
                NotStorable,
            ),
            (
                "set-cookie",
                &[
                    ("cache-control", "public, max-age=60"),
                    ("set-cookie", "a=1"),
                ],
                SetCookie,
            ),
            (
                "vary star",
                &[("cache-control", "max-age=60"), ("vary", "*")],
                VaryStar,
            ),
            (
                "no freshness nor validator",
                &[("cache-control", "max-age=0")],
                NotReusable,
            ),
        ];
        for (name, fields, expected) in cases {
            assert_eq!(
                decision(fields, Vec::new()),
                StoreDecision::NotStored(*expected),
                "{name}"
            );
            assert_eq!(
                decision(fields, Vec::new()).detail(),
                Some(crate::hops::Detail::NotStored(*expected))
            );
        }
        let large = decision(
            &[("cache-control", "max-age=60")],
            vec![0; MAX_STORED_BODY + 1],
        );
        assert_eq!(large, StoreDecision::NotStored(TooLarge));
        let fields: Vec<String> = (0..=vary::MAX_VARY_FIELDS)
            .map(|i| format!("x-{i}"))
            .collect();
        let vary = fields.join(", ");
        let many = decision(
            &[("cache-control", "max-age=60"), ("vary", &vary)],
            Vec::new(),
        );
        assert_eq!(many, StoreDecision::NotStored(TooManyVaryFields));
    }

    #[test]
    fn kept_for_freshness_plus_stale_window_and_an_hour_with_a_validator() {
        let plain = decision(
            &[("cache-control", "max-age=60, stale-if-error=30")],
            Vec::new(),
        );
        assert_eq!(
            plain,
            StoreDecision::Stored {
                keep: Duration::from_secs(90),
                vary: Vec::new(),
                negative: false,
            }
        );
        assert!(plain.is_stored());
        assert_eq!(plain.detail(), None);
        let validated = decision(
            &[
                ("cache-control", "max-age=0"),
                ("etag", "\"v1\""),
                ("vary", "Accept"),
            ],
            Vec::new(),
        );
        assert_eq!(
            validated,
            StoreDecision::Stored {
                keep: VALIDATOR_KEEP,
                vary: vec!["accept".to_string()],
                negative: false,
            }
        );
    }
}
