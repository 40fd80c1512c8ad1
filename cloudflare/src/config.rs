//! The worker's configuration from wrangler `[vars]` and secrets, checked once per isolate.

use std::sync::Arc;

use edge_worker::auth::{AuthConfig, AuthPolicy};
use edge_worker::routing::{HealthBoard, LazyRouter, RoutingConfig};
use http::uri::{Authority, Scheme};
use http::Uri;

/// Names of the bindings the worker reads (wrangler.toml documents each).
pub mod binding {
    /// `[vars.AUTH]`: the core's `AuthConfig` (the emulator's `default-auth.toml`, as a table).
    pub const AUTH: &str = "AUTH";
    /// Secret: the HMAC secret for every HS* key in `AUTH` that has no `secret` of its own.
    pub const JWT_HS256_SECRET: &str = "JWT_HS256_SECRET";
    /// Optional origin base URL (`https://origin.example.com`): requests for the worker's own
    /// host go there instead of Cloudflare's configured origin.
    pub const ORIGIN: &str = "ORIGIN";
    /// `[vars.ROUTING]`: the core's `RoutingConfig` (the emulator's `default-routing.toml`, as
    /// a table): regional origins, country rules, residency pins, breaker, hedging, redirect.
    pub const ROUTING: &str = "ROUTING";
    /// `"true"` adds `X-Edge-Country`/`X-Edge-Continent` to responses (tests, debugging).
    pub const DEBUG_GEO_HEADERS: &str = "DEBUG_GEO_HEADERS";
}

/// Why the configuration is unusable. The worker then answers 500 to every request (fails
/// closed) rather than serving protected routes without auth.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    #[error("AUTH is not valid JSON: {0}")]
    AuthJson(String),
    #[error("AUTH is not a valid auth configuration: {0}")]
    Auth(String),
    #[error("ROUTING is not a valid routing configuration: {0}")]
    Routing(String),
    #[error("ORIGIN must be an absolute http(s) URL without a path: {0}")]
    Origin(String),
}

/// Where the origin is, when not Cloudflare's own.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OriginOverride {
    pub scheme: Scheme,
    pub authority: Authority,
}

/// Everything the worker reads from its environment, checked.
#[derive(Debug, Clone, Default)]
pub struct Settings {
    pub auth: Option<Arc<AuthPolicy>>,
    /// Geo routing, prepared once per isolate.
    pub routing: Option<Arc<LazyRouter>>,
    /// Passive health of the routed origins: one circuit breaker per origin for this isolate
    /// (isolates share nothing, as the emulator's PoPs do not).
    pub health: Option<Arc<HealthBoard>>,
    pub origin: Option<OriginOverride>,
    pub debug_geo_headers: bool,
}

/// The raw binding values (`None` when unbound).
#[derive(Debug, Clone, Default)]
pub struct RawSettings {
    /// `AUTH` as JSON text.
    pub auth_json: Option<String>,
    /// `ROUTING` as JSON text.
    pub routing_json: Option<String>,
    pub hs256_secret: Option<String>,
    pub origin: Option<String>,
    pub debug_geo_headers: Option<String>,
}

impl RawSettings {
    pub fn check(self) -> Result<Settings, ConfigError> {
        let auth = match self.auth_json {
            Some(json) => Some(Arc::new(auth_policy(&json, self.hs256_secret.as_deref())?)),
            None => None,
        };
        let (routing, health) = match self.routing_json {
            Some(json) => {
                let router = serde_json::from_str::<RoutingConfig>(&json)
                    .map_err(|e| ConfigError::Routing(e.to_string()))?
                    .build()
                    .map_err(|e| ConfigError::Routing(e.to_string()))?;
                let health = HealthBoard::new(router.breaker);
                for origin in &router.origins {
                    health.track(&origin.name);
                }
                (
                    Some(Arc::new(LazyRouter::ready(router))),
                    Some(Arc::new(health)),
                )
            }
            None => (None, None),
        };
        let origin = match self.origin.as_deref().map(str::trim) {
            Some("") | None => None,
            Some(text) => Some(origin_override(text)?),
        };
        Ok(Settings {
            auth,
            routing,
            health,
            origin,
            debug_geo_headers: self.debug_geo_headers.as_deref() == Some("true"),
        })
    }
}

/// Builds the auth policy from `AUTH` (JSON), filling HS* keys that carry no `secret` with the
/// `JWT_HS256_SECRET` secret so that secrets stay out of wrangler.toml. Every key is parsed
/// now: an isolate serves many requests, so a bad key fails at its first request, not later.
pub fn auth_policy(json: &str, hs256_secret: Option<&str>) -> Result<AuthPolicy, ConfigError> {
    let mut value: serde_json::Value =
        serde_json::from_str(json).map_err(|e| ConfigError::AuthJson(e.to_string()))?;
    if let (Some(secret), Some(keys)) = (
        hs256_secret,
        value.get_mut("keys").and_then(|k| k.as_array_mut()),
    ) {
        for key in keys.iter_mut().filter_map(|k| k.as_object_mut()) {
            let hmac = key
                .get("alg")
                .and_then(|a| a.as_str())
                .is_some_and(|a| a.starts_with("HS"));
            if hmac && !key.contains_key("secret") {
                key.insert("secret".into(), secret.into());
            }
        }
    }
    let config: AuthConfig =
        serde_json::from_value(value).map_err(|e| ConfigError::Auth(e.to_string()))?;
    let policy = config
        .build()
        .map_err(|e| ConfigError::Auth(e.to_string()))?;
    policy
        .check_keys()
        .map_err(|e| ConfigError::Auth(e.to_string()))?;
    Ok(policy)
}

fn origin_override(text: &str) -> Result<OriginOverride, ConfigError> {
    let error = || ConfigError::Origin(text.to_string());
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
        (Some(scheme), Some(authority)) if path_is_root => Ok(OriginOverride { scheme, authority }),
        _ => Err(error()),
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

    #[test]
    fn routing_is_checked_once_and_fails_closed() {
        let routing = r#"{"origin": [{"name": "eu-west", "url": "https://eu.origin.test",
            "lat": 53.3, "lon": -6.3}], "rule": [{"countries": ["GB"], "origin": "eu-west"}]}"#;
        let settings = RawSettings {
            routing_json: Some(routing.into()),
            ..Default::default()
        }
        .check()
        .unwrap();
        let router = settings.routing.unwrap();
        assert_eq!(router.get().unwrap().origins[0].name, "eu-west");
        assert!(settings.health.is_some());
        let broken = RawSettings {
            routing_json: Some(r#"{"origin": []}"#.into()),
            ..Default::default()
        }
        .check()
        .unwrap_err();
        assert!(matches!(broken, ConfigError::Routing(m) if m.contains("at least one")));
    }

    #[test]
    fn hs_keys_without_a_secret_take_the_secret_binding() {
        let policy = auth_policy(AUTH, Some("a-secret-of-at-least-32-bytes-long!!")).unwrap();
        assert_eq!(
            policy.config.keys[0].secret.as_deref(),
            Some("a-secret-of-at-least-32-bytes-long!!")
        );
        assert!(policy.route("/api/users/1").is_some());
    }

    #[test]
    fn a_missing_or_short_secret_fails_closed() {
        assert!(matches!(auth_policy(AUTH, None), Err(ConfigError::Auth(_))));
        assert!(matches!(
            auth_policy(AUTH, Some("short")),
            Err(ConfigError::Auth(_))
        ));
        assert!(matches!(
            auth_policy("{", None),
            Err(ConfigError::AuthJson(_))
        ));
        assert!(matches!(
            auth_policy(r#"{"unknown": 1}"#, None),
            Err(ConfigError::Auth(_))
        ));
    }

    #[test]
    fn origin_override_rewrites_only_the_zone() {
        let settings = RawSettings {
            origin: Some("http://127.0.0.1:9000".into()),
            ..RawSettings::default()
        }
        .check()
        .unwrap();
        let origin = settings.origin.as_ref();
        let zone: Authority = "api.example.com".parse().unwrap();
        let own: Uri = "https://api.example.com/api/products/1?x=1"
            .parse()
            .unwrap();
        assert_eq!(
            upstream_uri(&own, Some(&zone), origin).to_string(),
            "http://127.0.0.1:9000/api/products/1?x=1"
        );
        let jwks: Uri = "https://auth.example/.well-known/jwks.json"
            .parse()
            .unwrap();
        assert_eq!(upstream_uri(&jwks, Some(&zone), origin), jwks);
        assert_eq!(upstream_uri(&own, Some(&zone), None), own);
    }

    #[test]
    fn origin_must_be_a_bare_http_url() {
        for bad in ["127.0.0.1:9000", "ftp://x", "https://x/path", "not a url"] {
            let raw = RawSettings {
                origin: Some(bad.into()),
                ..RawSettings::default()
            };
            assert!(matches!(raw.check(), Err(ConfigError::Origin(_))), "{bad}");
        }
        let raw = RawSettings {
            origin: Some("https://origin.example.com/".into()),
            debug_geo_headers: Some("true".into()),
            ..RawSettings::default()
        };
        let settings = raw.check().unwrap();
        assert!(settings.debug_geo_headers);
        assert!(settings.auth.is_none());
    }
}
