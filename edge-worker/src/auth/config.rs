//! The auth configuration: keys, per-route policy, what to forward. One serde shape for every
//! host: TOML in the emulator (`[auth]`), JSON in a Cloudflare var (keys' secrets as secrets).

use std::time::Duration;

use serde::Deserialize;

use crate::config::ConfigError;

use super::{Expectations, KeyConfig, KeySet, Verifier, DEFAULT_LEEWAY, MAX_LEEWAY};

/// Most routes, keys and forwarded claims a configuration may list.
pub const MAX_ROUTES: usize = 256;
pub const MAX_KEYS: usize = 64;
pub const MAX_FORWARDED: usize = 16;

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// No token needed; a token sent is neither checked nor lets the response be cached apart.
    #[default]
    Public,
    /// A valid token is needed: 401 before the origin otherwise.
    Required,
    /// A token is verified if present; requests without one pass anonymously.
    Optional,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RouteConfig {
    /// A path pattern: `*` matches any run of characters, e.g. `/api/users/*`.
    pub path: String,
    pub mode: Mode,
    #[serde(default, flatten)]
    pub expect: Expectations,
}

/// A claim sent to the origin as a request header after verification.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ForwardedClaim {
    pub claim: String,
    pub header: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuthConfig {
    /// The `realm` of `WWW-Authenticate` challenges.
    #[serde(default = "default_realm")]
    pub realm: String,
    /// Clock-skew allowance for exp/nbf/iat in seconds (default 30, at most 300).
    #[serde(default)]
    pub leeway_secs: Option<u64>,
    #[serde(default)]
    pub keys: Vec<KeyConfig>,
    /// First match wins; a path no route matches is public.
    #[serde(default)]
    pub routes: Vec<RouteConfig>,
    /// Claims forwarded to the origin; the same headers sent by a client are always removed.
    #[serde(default)]
    pub forward: Vec<ForwardedClaim>,
    /// Whether the client's Authorization header goes to the origin (default: no). It always
    /// travels between our own tiers, so that none of them shares an authenticated response
    /// the origin did not mark shareable (RFC 9111 §3.5); the hop to the origin drops it.
    #[serde(default)]
    pub forward_authorization: bool,
}

fn default_realm() -> String {
    "edge".to_string()
}

/// A configuration ready to use: limits and header names checked. Keys are parsed when first
/// used (see `KeySet`).
#[derive(Debug)]
pub struct AuthPolicy {
    pub config: AuthConfig,
    pub leeway: Duration,
    pub forward: Vec<(String, http::HeaderName)>,
    pub verifier: Verifier,
}

impl AuthConfig {
    pub fn build(self) -> Result<AuthPolicy, ConfigError> {
        for (what, count, limit) in [
            ("routes", self.routes.len(), MAX_ROUTES),
            ("keys", self.keys.len(), MAX_KEYS),
            ("forwarded claims", self.forward.len(), MAX_FORWARDED),
        ] {
            if count > limit {
                return Err(ConfigError::TooMany { what, limit });
            }
        }
        // A route that checks tokens with no key to check them against would answer 401 to
        // everybody: a configuration mistake, said at start-up rather than per request.
        if self.keys.is_empty() {
            if let Some(route) = self.routes.iter().find(|r| r.mode != Mode::Public) {
                return Err(ConfigError::NoKeys {
                    route: route.path.clone(),
                });
            }
        }
        let leeway = self
            .leeway_secs
            .map_or(DEFAULT_LEEWAY, Duration::from_secs)
            .min(MAX_LEEWAY);
        let forward = self
            .forward
            .iter()
            .map(|f| {
                http::HeaderName::from_bytes(f.header.as_bytes())
                    .map(|name| (f.claim.clone(), name))
                    .map_err(|_| ConfigError::Header {
                        claim: f.claim.clone(),
                        header: f.header.clone(),
                    })
            })
            .collect::<Result<_, _>>()?;
        let verifier = Verifier {
            keys: KeySet::from_configs(&self.keys),
            leeway,
        };
        Ok(AuthPolicy {
            config: self,
            leeway,
            forward,
            verifier,
        })
    }
}

impl AuthPolicy {
    /// Parses every key now: hosts call this at start-up so that a bad key is reported
    /// before the first request.
    pub fn check_keys(&self) -> Result<(), ConfigError> {
        self.verifier.keys.check_all()
    }

    /// The route for a path: the first whose pattern matches, else public. The path is
    /// normalised first, so `/api/%75sers/7`, `/api//users/7` and `/api/x/../users/7` cannot
    /// slip past a `/api/users/*` rule to an origin that normalises them.
    pub fn route(&self, path: &str) -> Option<&RouteConfig> {
        let path = normalise(path);
        self.config.routes.iter().find(|r| glob(&r.path, &path))
    }
}

/// Decodes percent-encoded unreserved characters (RFC 3986 §2.3), collapses repeated slashes
/// and removes dot segments (§5.2.4). Written here because `http` leaves paths as sent.
/// The cache policy's routes match the same way.
pub(crate) fn normalise(path: &str) -> String {
    let bytes = path.as_bytes();
    let mut decoded = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| (b as char).to_digit(16);
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            if let (Some(h), Some(l)) = (hex(bytes[i + 1]), hex(bytes[i + 2])) {
                let c = (h * 16 + l) as u8;
                if c.is_ascii_alphanumeric() || b"-._~".contains(&c) {
                    decoded.push(c);
                    i += 3;
                    continue;
                }
            }
        }
        decoded.push(bytes[i]);
        i += 1;
    }
    let decoded = String::from_utf8_lossy(&decoded);
    let mut segments: Vec<&str> = Vec::new();
    for segment in decoded.split('/') {
        match segment {
            "" | "." => {}
            ".." => {
                segments.pop();
            }
            other => segments.push(other),
        }
    }
    let mut out = format!("/{}", segments.join("/"));
    if decoded.ends_with('/') && out.len() > 1 {
        out.push('/');
    }
    out
}

/// `*` matches any run of characters (including `/`); everything else literally.
pub(crate) fn glob(pattern: &str, path: &str) -> bool {
    let mut parts = pattern.split('*');
    let first = parts.next().unwrap_or("");
    let Some(mut rest) = path.strip_prefix(first) else {
        return false;
    };
    let parts: Vec<&str> = parts.collect();
    let Some((last, middle)) = parts.split_last() else {
        return rest.is_empty();
    };
    for part in middle {
        match rest.find(part) {
            Some(i) => rest = &rest[i + part.len()..],
            None => return false,
        }
    }
    rest.ends_with(last)
}

#[cfg(test)]
mod tests {
    use super::{glob, normalise};

    #[test]
    fn paths_are_normalised_before_matching() {
        for (path, expected) in [
            ("/api/users/7", "/api/users/7"),
            ("/api/%75sers/7", "/api/users/7"),
            ("/api//users/7", "/api/users/7"),
            ("/api/x/../users/7", "/api/users/7"),
            ("/api/./users/7/", "/api/users/7/"),
            ("/../../api/users/7", "/api/users/7"),
            ("/api/users%2F7", "/api/users%2F7"),
            ("/%", "/%"),
            ("/%4", "/%4"),
            ("", "/"),
        ] {
            assert_eq!(normalise(path), expected, "{path}");
        }
    }

    #[test]
    fn path_patterns() {
        for (pattern, path, matches) in [
            ("/api/users/*", "/api/users/7", true),
            ("/api/users/*", "/api/users/7/orders", true),
            ("/api/users/*", "/api/users", false),
            ("/api/users/*", "/api/products/1", false),
            ("/api/*/orders", "/api/users/7/orders", true),
            ("/api/*/orders", "/api/users/7/orders/1", false),
            ("/exact", "/exact", true),
            ("/exact", "/exact/", false),
            ("*", "/anything", true),
        ] {
            assert_eq!(glob(pattern, path), matches, "{pattern} vs {path}");
        }
    }
}
