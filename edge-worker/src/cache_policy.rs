//! The cache policy document: per-route choices a cache makes beyond what the origin says.
//!
//! - **TTL jitter** (`ttl_jitter`): a stored entry's remaining freshness is shortened by a
//!   random fraction up to `ttl_jitter`, drawn from [`Platform::random`](crate::Platform), so
//!   entries stored in the same second do not all expire in the same second (and send their
//!   refetches to the origin at once). Never longer than the origin said.
//! - **Background recompression** (`[compression] background`, on by default): a coded
//!   variant stored on a miss is recoded at the coding's best level after the response.
//! - **Negative caching** (`negative_ttl_secs`): a 404 or 410 (and, with `negative_5xx`, a
//!   5xx) that carries no freshness of its own is kept for that long, so a burst of requests
//!   for a missing id reaches the origin once. Only responses RFC 9111 §3 lets a shared cache
//!   store at all: the tier's usual admission (`no-store`, `private`, Set-Cookie,
//!   Authorization) decides, as for any other response.
//!
//! One serde shape for every host: TOML in the emulator (`--cache-policy`), JSON in a
//! Cloudflare var (`CACHE_POLICY`). Routes use the auth routes' path patterns; first match
//! wins; a path no route matches gets neither feature.

use std::time::Duration;

use http::{HeaderMap, StatusCode};
use serde::Deserialize;

use crate::cache_control::CacheControl;
use crate::config::ConfigError;

/// Most routes a cache policy may list.
pub const MAX_ROUTES: usize = 256;
/// The longest negative TTL: a missing object that appears should become visible within
/// minutes, and an error page should not outlive the incident it reports.
pub const MAX_NEGATIVE_TTL_SECS: u64 = 300;
/// The largest jitter: beyond halving a TTL the hit ratio pays more than the spreading gains.
pub const MAX_TTL_JITTER: f64 = 0.5;

/// The document as written.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CachePolicyConfig {
    /// First match wins.
    #[serde(default)]
    pub routes: Vec<RoutePolicyConfig>,
    /// Pass the origin's `Cache-Tag` on to clients (off, as on Cloudflare: tags say how the
    /// site is purged, which is the operator's business).
    #[serde(default)]
    pub forward_cache_tag: bool,
    /// How coded variants are made.
    #[serde(default)]
    pub compression: CompressionConfig,
    /// Sticky A/B variants decided at the edge (`experiments.rs`).
    #[serde(default)]
    pub experiments: Vec<crate::experiments::ExperimentConfig>,
    /// Edge composition of templates (`compose.rs`): on, with documented limits.
    #[serde(default)]
    pub composition: crate::compose::CompositionConfig,
}

/// The `[compression]` table.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CompressionConfig {
    /// Recode each variant coded on a miss in the background at the coding's best level
    /// (`encoding::Effort::Background`). On by default; off shows what it buys
    /// (`compare --variants recompress=off`).
    #[serde(default = "enabled")]
    pub background: bool,
}

impl Default for CompressionConfig {
    fn default() -> Self {
        Self { background: true }
    }
}

fn enabled() -> bool {
    true
}

/// One `[[routes]]` entry.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RoutePolicyConfig {
    /// A path pattern as in the auth routes: `*` matches any run of characters.
    pub path: String,
    /// Largest fraction a stored entry's freshness is shortened by (0 ..= 0.5; 0: off).
    #[serde(default)]
    pub ttl_jitter: f64,
    /// How long a 404/410 without freshness of its own is kept (0 ..= 300; 0: off).
    #[serde(default)]
    pub negative_ttl_secs: u64,
    /// Also keep 5xx responses without freshness of their own for `negative_ttl_secs`.
    #[serde(default)]
    pub negative_5xx: bool,
}

/// A checked cache policy.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CacheRules {
    routes: Vec<(String, RouteRules)>,
    pub forward_cache_tag: bool,
    /// `[compression] background`.
    pub recompress: bool,
    /// `[[experiments]]`.
    pub experiments: std::sync::Arc<crate::experiments::Experiments>,
    /// `[composition]`.
    pub composition: std::sync::Arc<crate::compose::CompositionRules>,
}

/// What one route's responses get.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct RouteRules {
    pub ttl_jitter: f64,
    pub negative_ttl: Option<Duration>,
    pub negative_5xx: bool,
}

impl CachePolicyConfig {
    /// The JSON document (as every host hands it to the core), checked.
    pub fn parse(json: &str) -> Result<CacheRules, ConfigError> {
        serde_json::from_str::<Self>(json)
            .map_err(|e| ConfigError::CachePolicy(e.to_string()))?
            .build()
    }

    pub fn build(self) -> Result<CacheRules, ConfigError> {
        if self.routes.len() > MAX_ROUTES {
            return Err(ConfigError::CachePolicy(format!(
                "too many routes (limit {MAX_ROUTES})"
            )));
        }
        let routes = self
            .routes
            .into_iter()
            .map(|route| {
                let problem = |what: String| {
                    Err(ConfigError::CachePolicy(format!(
                        "route {:?}: {what}",
                        route.path
                    )))
                };
                if !(0.0..=MAX_TTL_JITTER).contains(&route.ttl_jitter) {
                    return problem(format!("ttl_jitter must be within 0..={MAX_TTL_JITTER}"));
                }
                if route.negative_ttl_secs > MAX_NEGATIVE_TTL_SECS {
                    return problem(format!(
                        "negative_ttl_secs must be at most {MAX_NEGATIVE_TTL_SECS}"
                    ));
                }
                if route.negative_5xx && route.negative_ttl_secs == 0 {
                    return problem("negative_5xx needs negative_ttl_secs".into());
                }
                let rules = RouteRules {
                    ttl_jitter: route.ttl_jitter,
                    negative_ttl: (route.negative_ttl_secs > 0)
                        .then(|| Duration::from_secs(route.negative_ttl_secs)),
                    negative_5xx: route.negative_5xx,
                };
                Ok((route.path, rules))
            })
            .collect::<Result<_, _>>()?;
        Ok(CacheRules {
            routes,
            forward_cache_tag: self.forward_cache_tag,
            recompress: self.compression.background,
            experiments: std::sync::Arc::new(crate::experiments::Experiments::build(
                self.experiments,
            )?),
            composition: std::sync::Arc::new(self.composition.build()?),
        })
    }
}

impl CacheRules {
    /// The rules for a request path (normalised as auth routes are), when a route matches.
    pub fn route(&self, path: &str) -> Option<&RouteRules> {
        if self.routes.is_empty() {
            return None;
        }
        let path = crate::auth::config::normalise(path);
        self.routes
            .iter()
            .find(|(pattern, _)| crate::auth::config::glob(pattern, &path))
            .map(|(_, rules)| rules)
    }

    /// Whether any route jitters TTLs (stored copies may expire before the origin's TTL).
    pub fn jitters(&self) -> bool {
        self.routes.iter().any(|(_, rules)| rules.ttl_jitter > 0.0)
    }

    pub fn is_empty(&self) -> bool {
        self.routes.is_empty()
    }
}

impl RouteRules {
    /// The lifetime to keep a response for as a negative entry: a 404 or 410 (a 5xx when
    /// opted in) whose cache view (`view`: RFC 9213 applied) gives it no freshness of its own
    /// (`max-age`, `s-maxage`, `Expires`) and does not ask for validation on every use
    /// (`no-cache`). `None`: the response is judged by its own fields as usual.
    pub fn negative_lifetime(&self, status: StatusCode, view: &HeaderMap) -> Option<Duration> {
        let ttl = self.negative_ttl?;
        let eligible = matches!(status, StatusCode::NOT_FOUND | StatusCode::GONE)
            || (self.negative_5xx && status.is_server_error());
        if !eligible || view.contains_key(http::header::EXPIRES) {
            return None;
        }
        let directives = CacheControl::from_headers(view);
        let own = ["max-age", "s-maxage", "no-cache"]
            .iter()
            .any(|d| directives.has(d));
        (!own).then_some(ttl)
    }

    /// `ttl` shortened by a fraction `u × ttl_jitter`, with `u` uniform in [0, 1) from
    /// `draw`, rounded down to whole seconds (a lifetime is whole seconds): never longer.
    pub fn jittered(&self, ttl: Duration, draw: u64) -> Duration {
        // The top 53 bits make a uniform f64 in [0, 1).
        let u = (draw >> 11) as f64 / (1u64 << 53) as f64;
        let factor = (1.0 - u * self.ttl_jitter).clamp(0.0, 1.0);
        Duration::from_secs(ttl.mul_f64(factor).as_secs()).min(ttl)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rules(json: &str) -> Result<CacheRules, ConfigError> {
        CachePolicyConfig::parse(json)
    }

    #[test]
    fn first_matching_route_wins_and_paths_are_normalised() {
        let rules = rules(
            r#"{"routes": [
                {"path": "/api/products/*", "ttl_jitter": 0.1, "negative_ttl_secs": 10},
                {"path": "/api/*", "negative_ttl_secs": 5, "negative_5xx": true}
            ]}"#,
        )
        .unwrap();
        let products = rules.route("/api/products/7").unwrap();
        assert_eq!(products.ttl_jitter, 0.1);
        assert_eq!(products.negative_ttl, Some(Duration::from_secs(10)));
        assert!(!products.negative_5xx);
        assert!(rules.route("/api/x/../products/7").unwrap().ttl_jitter > 0.0);
        assert!(rules.route("/api/users/1").unwrap().negative_5xx);
        assert!(rules.route("/static/a.css").is_none());
        assert!(CacheRules::default().route("/api").is_none());
    }

    #[test]
    fn limits_and_unknown_fields_fail_the_check() {
        for bad in [
            r#"{"routes": [{"path": "*", "ttl_jitter": 0.6}]}"#,
            r#"{"routes": [{"path": "*", "ttl_jitter": -0.1}]}"#,
            r#"{"routes": [{"path": "*", "negative_ttl_secs": 301}]}"#,
            r#"{"routes": [{"path": "*", "negative_5xx": true}]}"#,
            r#"{"routes": [{"path": "*", "ttl": 3}]}"#,
            r#"{"route": []}"#,
            "{",
        ] {
            let error = rules(bad).unwrap_err();
            assert!(matches!(error, ConfigError::CachePolicy(_)), "{bad}");
            assert_eq!(error.document(), "cache_policy");
        }
        let many: Vec<String> = (0..=MAX_ROUTES)
            .map(|i| format!(r#"{{"path": "/{i}"}}"#))
            .collect();
        let many = format!(r#"{{"routes": [{}]}}"#, many.join(","));
        assert!(rules(&many).is_err());
        assert!(rules(r#"{"routes": []}"#).unwrap().is_empty());
    }

    #[test]
    fn jitter_never_lengthens_and_stays_within_its_fraction() {
        let route = RouteRules {
            ttl_jitter: 0.5,
            ..RouteRules::default()
        };
        let ttl = Duration::from_secs(100);
        let mut state = 7u64;
        let mut seen = std::collections::BTreeSet::new();
        for _ in 0..10_000 {
            let draw = crate::testing::platform::splitmix64(&mut state);
            let jittered = route.jittered(ttl, draw);
            assert!(jittered <= ttl && jittered >= Duration::from_secs(50));
            seen.insert(jittered.as_secs());
        }
        // Spread over the whole window, not bunched.
        assert!(seen.len() >= 45, "{seen:?}");
        assert_eq!(route.jittered(ttl, 0), ttl);
        assert_eq!(route.jittered(ttl, u64::MAX), Duration::from_secs(50));
        let off = RouteRules::default();
        assert_eq!(off.jittered(ttl, u64::MAX), ttl);
    }

    #[test]
    fn negative_lifetime_only_for_errors_without_freshness_of_their_own() {
        let route = RouteRules {
            negative_ttl: Some(Duration::from_secs(10)),
            ..RouteRules::default()
        };
        let head = |fields: &[(&str, &str)]| {
            let mut map = HeaderMap::new();
            for (n, v) in fields {
                map.append(
                    http::HeaderName::from_bytes(n.as_bytes()).unwrap(),
                    v.parse().unwrap(),
                );
            }
            map
        };
        let ten = Some(Duration::from_secs(10));
        assert_eq!(
            route.negative_lifetime(StatusCode::NOT_FOUND, &head(&[])),
            ten
        );
        assert_eq!(route.negative_lifetime(StatusCode::GONE, &head(&[])), ten);
        assert_eq!(
            route.negative_lifetime(StatusCode::NOT_FOUND, &head(&[("cache-control", "public")])),
            ten
        );
        for own in [
            ("cache-control", "max-age=60"),
            ("cache-control", "s-maxage=60"),
            ("cache-control", "no-cache"),
            ("expires", "Thu, 01 Jan 2026 00:00:00 GMT"),
        ] {
            assert_eq!(
                route.negative_lifetime(StatusCode::NOT_FOUND, &head(&[own])),
                None,
                "{own:?}"
            );
        }
        for status in [
            StatusCode::OK,
            StatusCode::BAD_REQUEST,
            StatusCode::BAD_GATEWAY,
        ] {
            assert_eq!(
                route.negative_lifetime(status, &head(&[])),
                None,
                "{status}"
            );
        }
        let with_5xx = RouteRules {
            negative_5xx: true,
            ..route
        };
        assert_eq!(
            with_5xx.negative_lifetime(StatusCode::SERVICE_UNAVAILABLE, &head(&[])),
            ten
        );
        assert_eq!(
            RouteRules::default().negative_lifetime(StatusCode::NOT_FOUND, &head(&[])),
            None
        );
    }
}
