//! The worker's configuration, checked once: the auth, routing and cache policy documents in, a
//! worker per PoP and a health board out. Every adapter (the wasm guest, the Cloudflare Worker, the
//! emulator's start-up check) builds its worker here, so they differ only in where the
//! documents come from.

use std::sync::Arc;

use http::uri::{Authority, Scheme};
use http::Uri;

use crate::auth::{AuthConfig, AuthPolicy};
use crate::cache_policy::{CachePolicyConfig, CacheRules};
use crate::routing::{HealthBoard, LazyRouter, Router, RoutingConfig};
use crate::{CacheTier, EdgeWorker};

/// Why a configuration is unusable. Hosts refuse to start with one; a worker that meets one at
/// run time answers 500 to every request (fails closed) rather than serve protected routes
/// without auth.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ConfigError {
    /// The auth document is not JSON, or not an [`AuthConfig`] (unknown or missing fields).
    #[error("the auth configuration does not parse: {0}")]
    AuthDocument(String),
    /// More routes, keys or forwarded claims than the limits allow.
    #[error("too many {what} (limit {limit})")]
    TooMany { what: &'static str, limit: usize },
    /// More origins, rules or countries than the routing limits allow.
    #[error("too many {what} (limit {limit})")]
    TooManyRouted { what: &'static str, limit: usize },
    #[error("forwarded claim {claim:?}: {header:?} is not a valid header name")]
    Header { claim: String, header: String },
    #[error(
        "route {route:?} needs tokens but the auth configuration has no [[keys]] to verify \
         them with: add a key (secret, pem, jwk or jwks_url), or make the route public"
    )]
    NoKeys { route: String },
    #[error("key {kid:?}: give exactly one of secret, pem or jwk")]
    KeySource { kid: Option<String> },
    #[error("key {kid:?}: an HMAC secret is only for HS256/384/512, and HS* needs a secret")]
    KeySecretMismatch { kid: Option<String> },
    #[error("key {kid:?}: HMAC secrets must be at least 32 bytes (RFC 7518 §3.2)")]
    KeyShortSecret { kid: Option<String> },
    /// A PEM or JWK that does not parse, or does not suit its algorithm.
    #[error("key {kid:?}: {reason}")]
    KeyUnusable { kid: Option<String>, reason: String },
    /// The routing document is not JSON, or not a [`RoutingConfig`].
    #[error("the routing configuration does not parse: {0}")]
    RoutingDocument(String),
    #[error("routing needs at least one [[origin]]")]
    NoOrigins,
    #[error("origin {0:?} is declared twice")]
    DuplicateOrigin(String),
    /// A routed origin's URL or settings are unusable.
    #[error("origin {name:?}: {problem}")]
    Origin { name: String, problem: String },
    #[error("{place} names origin {origin:?}, which is not declared")]
    UnknownOrigin { place: String, origin: String },
    #[error("{place}: {code:?} is not an ISO 3166-1 alpha-2 country code")]
    Country { place: String, code: String },
    /// Any other inconsistency in the routing document.
    #[error("{0}")]
    InvalidRouting(String),
    /// The cache policy document does not parse, or breaks a limit (routes, jitter, TTL).
    #[error("the cache policy does not check: {0}")]
    CachePolicy(String),
    /// The origin override is not an absolute http(s) URL without a path.
    #[error("origin must be an absolute http(s) URL without a path: {0}")]
    OriginOverride(String),
}

impl ConfigError {
    /// Which document is at fault: `auth`, `routing`, `cache_policy` or `origin`.
    pub fn document(&self) -> &'static str {
        use ConfigError as E;
        match self {
            E::AuthDocument(_)
            | E::TooMany { .. }
            | E::Header { .. }
            | E::KeySource { .. }
            | E::KeySecretMismatch { .. }
            | E::KeyShortSecret { .. }
            | E::KeyUnusable { .. }
            | E::NoKeys { .. } => "auth",
            E::RoutingDocument(_)
            | E::TooManyRouted { .. }
            | E::NoOrigins
            | E::DuplicateOrigin(_)
            | E::Origin { .. }
            | E::UnknownOrigin { .. }
            | E::Country { .. }
            | E::InvalidRouting(_) => "routing",
            E::CachePolicy(_) => "cache_policy",
            E::OriginOverride(_) => "origin",
        }
    }
}

/// The configuration documents, as JSON text (`None`: not configured).
#[derive(Debug, Clone, Copy, Default)]
pub struct ConfigDocuments<'a> {
    /// An [`AuthConfig`]. Without one every route is public.
    pub auth: Option<&'a str>,
    /// The secret of every HS* key in `auth` that names none, so that secrets can live in a
    /// secret store (Cloudflare's secret bindings) rather than beside the configuration.
    pub hmac_secret: Option<&'a str>,
    /// The same as base64 (either alphabet), for secrets that are random bytes; used when
    /// `hmac_secret` is not given.
    pub hmac_secret_base64: Option<&'a str>,
    /// A [`RoutingConfig`]. Without one every fetch goes to the platform's single upstream.
    pub routing: Option<&'a str>,
    /// A [`CachePolicyConfig`]. Without one: no TTL jitter, no negative caching.
    pub cache_policy: Option<&'a str>,
}

/// A checked worker configuration, shared by every request of an isolate or host.
#[derive(Debug, Clone, Default)]
pub struct WorkerConfig {
    auth: Option<Arc<AuthPolicy>>,
    routing: Option<Arc<LazyRouter>>,
    cache_rules: Option<Arc<CacheRules>>,
}

impl WorkerConfig {
    /// Checks every part now, every key parsed and the router built, so a bad key or origin is
    /// reported before the first request.
    pub fn check(documents: ConfigDocuments<'_>) -> Result<Self, ConfigError> {
        let auth = match documents.auth {
            Some(json) => {
                let secret = match (documents.hmac_secret, documents.hmac_secret_base64) {
                    (Some(text), _) => Some(("secret", text)),
                    (None, Some(base64)) => Some(("secret_base64", base64)),
                    (None, None) => None,
                };
                let policy = auth_policy(json, secret)?;
                policy.check_keys()?;
                Some(Arc::new(policy))
            }
            None => None,
        };
        let routing = match documents.routing {
            Some(json) => Some(Arc::new(LazyRouter::ready(router(json)?))),
            None => None,
        };
        Self {
            auth,
            routing,
            cache_rules: None,
        }
        .with_cache_policy(documents.cache_policy)
    }

    /// Adds the cache policy (JSON of [`CachePolicyConfig`]; small, so checked in full even
    /// where the rest was prechecked).
    pub fn with_cache_policy(mut self, json: Option<&str>) -> Result<Self, ConfigError> {
        self.cache_rules = json
            .map(CachePolicyConfig::parse)
            .transpose()?
            .map(Arc::new);
        Ok(self)
    }

    /// The checked cache policy, when one is configured (the emulator's regional tiers use
    /// it too).
    pub fn cache_rules(&self) -> Option<&Arc<CacheRules>> {
        self.cache_rules.as_ref()
    }

    /// For a host whose documents were checked with [`WorkerConfig::check`] at start-up and
    /// that builds a configuration per instance (the wasm guest): limits and header names are
    /// checked, keys are parsed when first used, and routing is loaded on the first routed
    /// fetch (a cache hit never routes), so a fresh instance pays only for what it uses.
    pub fn prechecked(
        auth: Option<&str>,
        routing: Option<LazyRouter>,
    ) -> Result<Self, ConfigError> {
        Ok(Self {
            auth: auth
                .map(|json| auth_policy(json, None))
                .transpose()?
                .map(Arc::new),
            routing: routing.map(Arc::new),
            cache_rules: None,
        })
    }

    /// The worker for one PoP: its edge tier is named `edge-{pop}` in Cache-Status.
    pub fn worker(&self, pop: &str) -> EdgeWorker {
        let mut tier = CacheTier::new(crate::hops::TierId::edge(pop), true);
        if let Some(rules) = &self.cache_rules {
            tier = tier.with_rules(rules.clone());
        }
        let mut worker = EdgeWorker::new(tier);
        worker.forward_cache_tag = self
            .cache_rules
            .as_ref()
            .is_some_and(|rules| rules.forward_cache_tag);
        worker.recompress = self
            .cache_rules
            .as_ref()
            .is_none_or(|rules| rules.recompress);
        worker.experiments = self
            .cache_rules
            .as_ref()
            .map(|rules| rules.experiments.clone())
            .filter(|experiments| !experiments.is_empty());
        if let Some(rules) = &self.cache_rules {
            worker.composition = rules.composition.clone();
        }
        if let Some(routing) = &self.routing {
            worker = worker.with_lazy_routing(routing.clone());
        }
        if let Some(auth) = &self.auth {
            worker = worker.with_auth(auth.clone());
        }
        worker
    }

    /// A passive health board tracking every routed origin, one per place that keeps circuit
    /// state (an isolate on Cloudflare, a PoP in the emulator). `None` without routing, or
    /// while a deferred routing document is not yet loaded.
    pub fn health_board(&self) -> Option<HealthBoard> {
        let router = self.router()?;
        let health = HealthBoard::new(router.breaker);
        for origin in &router.origins {
            health.track(&origin.name);
        }
        Some(health)
    }

    /// The prepared router, when routing is configured and ready.
    pub fn router(&self) -> Option<&Router> {
        self.routing.as_deref()?.get().ok()
    }

    pub fn auth(&self) -> Option<&AuthPolicy> {
        self.auth.as_deref()
    }

    /// Whether a client's Authorization field travels to the origin (RFC 9111 §3.5: it always
    /// travels between our own tiers). Without auth the edge is transparent to it.
    pub fn forwards_authorization(&self) -> bool {
        self.auth
            .as_deref()
            .is_none_or(|policy| policy.config.forward_authorization)
    }
}

/// The auth policy from its JSON, giving HS* keys that carry no key material of their own the
/// secret (`field` is `secret` or `secret_base64`).
fn auth_policy(json: &str, hmac_secret: Option<(&str, &str)>) -> Result<AuthPolicy, ConfigError> {
    let invalid = |e: serde_json::Error| ConfigError::AuthDocument(e.to_string());
    let mut value: serde_json::Value = serde_json::from_str(json).map_err(invalid)?;
    if let (Some((field, secret)), Some(keys)) = (
        hmac_secret,
        value.get_mut("keys").and_then(|k| k.as_array_mut()),
    ) {
        for key in keys.iter_mut().filter_map(|k| k.as_object_mut()) {
            let hmac = key
                .get("alg")
                .and_then(|a| a.as_str())
                .is_some_and(|a| a.starts_with("HS"));
            let has_material = ["secret", "secret_base64", "jwk", "jwks_url"]
                .iter()
                .any(|name| key.contains_key(*name));
            if hmac && !has_material {
                key.insert(field.into(), secret.into());
            }
        }
    }
    serde_json::from_value::<AuthConfig>(value)
        .map_err(invalid)?
        .build()
}

fn router(json: &str) -> Result<Router, ConfigError> {
    let config: RoutingConfig =
        serde_json::from_str(json).map_err(|e| ConfigError::RoutingDocument(e.to_string()))?;
    config.build()
}

/// Where the origin is when it is not the platform's own (Cloudflare's `ORIGIN` binding).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OriginOverride {
    pub scheme: Scheme,
    pub authority: Authority,
}

impl OriginOverride {
    /// An absolute `http` or `https` URL with no path beyond `/`.
    pub fn parse(text: &str) -> Result<Self, ConfigError> {
        let error = || ConfigError::OriginOverride(text.to_string());
        let uri: Uri = text.parse().map_err(|_| error())?;
        let parts = uri.into_parts();
        let scheme = parts
            .scheme
            .filter(|s| *s == Scheme::HTTP || *s == Scheme::HTTPS);
        let path_is_root = parts
            .path_and_query
            .as_ref()
            .is_none_or(|p| p.as_str() == "/");
        match (scheme, parts.authority) {
            (Some(scheme), Some(authority)) if path_is_root => Ok(Self { scheme, authority }),
            _ => Err(error()),
        }
    }
}

/// The URL an upstream request goes to: requests for the worker's own host (`zone`) go to the
/// origin override if there is one; anything else (a JWKS URL) goes where it names.
pub fn upstream_uri(uri: &Uri, zone: Option<&Authority>, origin: Option<&OriginOverride>) -> Uri {
    let (Some(origin), Some(zone)) = (origin, zone) else {
        return uri.clone();
    };
    if uri.authority() != Some(zone) {
        return uri.clone();
    }
    let mut parts = uri.clone().into_parts();
    parts.scheme = Some(origin.scheme.clone());
    parts.authority = Some(origin.authority.clone());
    Uri::from_parts(parts).unwrap_or_else(|_| uri.clone())
}

#[cfg(test)]
mod tests {
    use super::*;

    const AUTH: &str = r#"{
        "realm": "edge",
        "keys": [{"kid": "k1", "alg": "HS256"}],
        "routes": [{"path": "/api/users/*", "mode": "required"}]
    }"#;
    const SECRET: &str = "a-secret-of-at-least-32-bytes-long!!";

    fn check(
        auth: Option<&str>,
        secret: Option<&str>,
        routing: Option<&str>,
    ) -> Result<WorkerConfig, ConfigError> {
        WorkerConfig::check(ConfigDocuments {
            auth,
            hmac_secret: secret,
            hmac_secret_base64: None,
            routing,
            cache_policy: None,
        })
    }

    #[test]
    fn the_cache_policy_reaches_the_edge_tier_and_fails_closed() {
        let policy = r#"{"routes": [{"path": "/api/*", "ttl_jitter": 0.1}]}"#;
        let config = WorkerConfig::check(ConfigDocuments {
            cache_policy: Some(policy),
            ..ConfigDocuments::default()
        })
        .unwrap();
        assert!(config.cache_rules().is_some());
        let tier = config.worker("fra").tier;
        assert!(tier.rules.is_some_and(|r| r.route("/api/x").is_some()));
        let broken = WorkerConfig::check(ConfigDocuments {
            cache_policy: Some(r#"{"routes": [{"path": "*", "negative_ttl_secs": 3600}]}"#),
            ..ConfigDocuments::default()
        })
        .unwrap_err();
        assert_eq!(broken.document(), "cache_policy");
        let prechecked = WorkerConfig::prechecked(None, None)
            .unwrap()
            .with_cache_policy(Some(policy))
            .unwrap();
        assert!(prechecked.worker("fra").tier.rules.is_some());
    }

    #[test]
    fn routing_is_checked_once_and_fails_closed() {
        let routing = r#"{"origin": [{"name": "eu-west", "url": "https://eu.origin.test",
            "lat": 53.3, "lon": -6.3}], "rule": [{"countries": ["GB"], "origin": "eu-west"}]}"#;
        let config = check(None, None, Some(routing)).unwrap();
        assert_eq!(config.router().unwrap().origins[0].name, "eu-west");
        assert!(config.health_board().is_some());
        assert!(config.worker("fra").routing.is_some());
        let broken = check(None, None, Some(r#"{"origin": []}"#)).unwrap_err();
        assert_eq!(broken, ConfigError::NoOrigins);
        assert!(matches!(
            check(None, None, Some("{")),
            Err(ConfigError::RoutingDocument(_))
        ));
    }

    /// A route that needs tokens, with nothing to verify them: refused at start-up, naming
    /// the route; public routes alone need no key.
    #[test]
    fn a_token_route_without_keys_is_a_configuration_error() {
        for mode in ["required", "optional"] {
            let auth = format!(r#"{{"routes": [{{"path": "/api/*", "mode": "{mode}"}}]}}"#);
            let error = check(Some(&auth), None, None).unwrap_err();
            assert_eq!(
                error,
                ConfigError::NoKeys {
                    route: "/api/*".into()
                }
            );
            assert!(error.to_string().contains("make the route public"));
        }
        let public = r#"{"routes": [{"path": "/api/*", "mode": "public"}]}"#;
        assert!(check(Some(public), None, None).is_ok());
    }

    #[test]
    fn hs_keys_without_a_secret_take_the_secret_binding() {
        let config = check(Some(AUTH), Some(SECRET), None).unwrap();
        let policy = config.auth().unwrap();
        assert_eq!(policy.config.keys[0].secret.as_deref(), Some(SECRET));
        assert!(policy.route("/api/users/1").is_some());
        assert!(!config.forwards_authorization());
        assert!(config.worker("fra").auth.is_some());
    }

    #[test]
    fn a_missing_or_short_secret_fails_closed() {
        assert!(matches!(
            check(Some(AUTH), None, None),
            Err(ConfigError::KeySource { .. } | ConfigError::KeyShortSecret { .. })
        ));
        assert!(matches!(
            check(Some(AUTH), Some("short"), None),
            Err(ConfigError::KeySource { .. } | ConfigError::KeyShortSecret { .. })
        ));
        assert!(matches!(
            check(Some("{"), None, None),
            Err(ConfigError::AuthDocument(_))
        ));
        assert!(matches!(
            check(Some(r#"{"unknown": 1}"#), None, None),
            Err(ConfigError::AuthDocument(_))
        ));
    }

    #[test]
    fn a_base64_secret_binding_fills_hs_keys() {
        let config = WorkerConfig::check(ConfigDocuments {
            auth: Some(AUTH),
            hmac_secret_base64: Some("AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8"),
            ..ConfigDocuments::default()
        })
        .unwrap();
        let key = &config.auth().unwrap().config.keys[0];
        assert!(key.secret.is_none() && key.secret_base64.is_some());
        let short = WorkerConfig::check(ConfigDocuments {
            auth: Some(AUTH),
            hmac_secret_base64: Some("AAECAw"),
            ..ConfigDocuments::default()
        });
        assert!(matches!(short, Err(ConfigError::KeyShortSecret { .. })));
    }

    #[test]
    fn prechecked_defers_keys_and_routing() {
        // A key without its secret is accepted here: the host checked the documents.
        let config = WorkerConfig::prechecked(Some(AUTH), None).unwrap();
        assert!(config.auth().is_some());
        let lazy = LazyRouter::from_loader(false, || None);
        let config = WorkerConfig::prechecked(None, Some(lazy)).unwrap();
        assert!(config.health_board().is_none());
        assert!(config.forwards_authorization());
    }

    #[test]
    fn origin_override_rewrites_only_the_zone() {
        let origin = OriginOverride::parse("http://127.0.0.1:9000").unwrap();
        let zone: Authority = "api.example.com".parse().unwrap();
        let own: Uri = "https://api.example.com/api/products/1?x=1"
            .parse()
            .unwrap();
        assert_eq!(
            upstream_uri(&own, Some(&zone), Some(&origin)).to_string(),
            "http://127.0.0.1:9000/api/products/1?x=1"
        );
        let jwks: Uri = "https://auth.example/.well-known/jwks.json"
            .parse()
            .unwrap();
        assert_eq!(upstream_uri(&jwks, Some(&zone), Some(&origin)), jwks);
        assert_eq!(upstream_uri(&own, Some(&zone), None), own);
    }

    #[test]
    fn origin_must_be_a_bare_http_url() {
        for bad in ["127.0.0.1:9000", "ftp://x", "https://x/path", "not a url"] {
            assert!(
                matches!(
                    OriginOverride::parse(bad),
                    Err(ConfigError::OriginOverride(_))
                ),
                "{bad}"
            );
        }
        assert!(OriginOverride::parse("https://origin.example.com/").is_ok());
    }
}
