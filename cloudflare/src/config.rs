//! The worker's configuration from wrangler `[vars]` and secrets, checked once per isolate by
//! the core's [`WorkerConfig`]: this file only names the bindings and reads them.

use std::sync::Arc;

use edge_worker::config::OriginOverride;
use edge_worker::routing::HealthBoard;
use edge_worker::{ConfigDocuments, ConfigError, WorkerConfig};

/// Names of the bindings the worker reads (wrangler.toml documents each).
pub mod binding {
    /// `[vars.AUTH]`: the core's `AuthConfig` (the emulator's `default-auth.toml`, as a table).
    pub const AUTH: &str = "AUTH";
    /// Secret: the HMAC secret for every HS* key in `AUTH` that has no key of its own.
    pub const JWT_HS256_SECRET: &str = "JWT_HS256_SECRET";
    /// Secret: the same as base64 (either alphabet), for random byte secrets; used when
    /// `JWT_HS256_SECRET` is not set.
    pub const JWT_HS256_SECRET_BASE64: &str = "JWT_HS256_SECRET_BASE64";
    /// Optional origin base URL (`https://origin.example.com`): requests for the worker's own
    /// host go there instead of Cloudflare's configured origin.
    pub const ORIGIN: &str = "ORIGIN";
    /// `[vars.ROUTING]`: the core's `RoutingConfig` (the emulator's `default-routing.toml`, as
    /// a table): regional origins, country rules, residency pins, breaker, hedging, redirect.
    pub const ROUTING: &str = "ROUTING";
    /// `[vars.CACHE_POLICY]`: the core's `CachePolicyConfig` (the emulator's
    /// `default-cache-policy.toml`, as a table): TTL jitter and negative caching per route.
    pub const CACHE_POLICY: &str = "CACHE_POLICY";
    /// `"true"` adds `X-Edge-Country`/`X-Edge-Continent` to responses (tests, debugging).
    pub const DEBUG_GEO_HEADERS: &str = "DEBUG_GEO_HEADERS";
    /// Secret: enables `POST /__edge/purge` for callers presenting it as a Bearer token.
    pub const PURGE_TOKEN: &str = "PURGE_TOKEN";
}

/// Everything the worker reads from its environment, checked.
#[derive(Debug, Clone, Default)]
pub struct Settings {
    /// Auth and geo routing, prepared once per isolate.
    pub worker: WorkerConfig,
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
    /// `CACHE_POLICY` as JSON text.
    pub cache_policy_json: Option<String>,
    pub hs256_secret: Option<String>,
    pub hs256_secret_base64: Option<String>,
    pub origin: Option<String>,
    pub debug_geo_headers: Option<String>,
}

impl RawSettings {
    /// Every key is parsed now: an isolate serves many requests, so a bad key fails at its
    /// first request, not later. HS* keys without a `secret` take `JWT_HS256_SECRET`, so that
    /// secrets stay out of wrangler.toml.
    pub fn check(self) -> Result<Settings, ConfigError> {
        let worker = WorkerConfig::check(ConfigDocuments {
            auth: self.auth_json.as_deref(),
            hmac_secret: self.hs256_secret.as_deref(),
            hmac_secret_base64: self.hs256_secret_base64.as_deref(),
            routing: self.routing_json.as_deref(),
            cache_policy: self.cache_policy_json.as_deref(),
        })?;
        let origin = match self.origin.as_deref().map(str::trim) {
            Some("") | None => None,
            Some(text) => Some(OriginOverride::parse(text)?),
        };
        Ok(Settings {
            health: worker.health_board().map(Arc::new),
            worker,
            origin,
            debug_geo_headers: self.debug_geo_headers.as_deref() == Some("true"),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bindings_become_one_checked_configuration() {
        let routing = r#"{"origin": [{"name": "eu-west", "url": "https://eu.origin.test",
            "lat": 53.3, "lon": -6.3}]}"#;
        let settings = RawSettings {
            routing_json: Some(routing.into()),
            origin: Some(" https://origin.example.com/ ".into()),
            debug_geo_headers: Some("true".into()),
            ..RawSettings::default()
        }
        .check()
        .unwrap();
        assert!(settings.health.is_some());
        assert!(settings.worker.router().is_some());
        assert!(settings.worker.auth().is_none());
        assert!(settings.origin.is_some());
        assert!(settings.debug_geo_headers);
        let unbound = RawSettings::default().check().unwrap();
        assert!(unbound.health.is_none() && unbound.origin.is_none());
    }

    #[test]
    fn a_bad_binding_fails_closed() {
        let raw = RawSettings {
            origin: Some("ftp://x".into()),
            ..RawSettings::default()
        };
        assert!(matches!(raw.check(), Err(ConfigError::OriginOverride(_))));
        let raw = RawSettings {
            auth_json: Some(r#"{"keys": [{"kid": "k1", "alg": "HS256"}]}"#.into()),
            ..RawSettings::default()
        };
        assert!(matches!(raw.check(), Err(ConfigError::KeySource { .. })));
        let raw = RawSettings {
            cache_policy_json: Some(r#"{"routes": [{"path": "*", "ttl_jitter": 2}]}"#.into()),
            ..RawSettings::default()
        };
        assert!(matches!(raw.check(), Err(ConfigError::CachePolicy(_))));
    }

    #[test]
    fn the_cache_policy_binding_reaches_the_edge_tier() {
        let settings = RawSettings {
            cache_policy_json: Some(
                r#"{"routes": [{"path": "/api/*", "negative_ttl_secs": 10}]}"#.into(),
            ),
            ..RawSettings::default()
        }
        .check()
        .unwrap();
        assert!(settings.worker.worker("fra").tier.rules.is_some());
    }
}
