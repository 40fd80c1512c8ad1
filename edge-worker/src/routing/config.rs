//! The routing configuration: regional origins, country rules, residency pins, health and
//! hedging. One serde shape for every host: TOML in the emulator (`--routing`), JSON in a
//! Cloudflare var.

use std::collections::HashMap;
use std::time::Duration;

use http::uri::{Authority, Scheme};
use http::Uri;
use serde::Deserialize;

use crate::config::ConfigError;

use super::geo::GeoPoint;
use super::Router;

/// Most origins a configuration may list: the allowed set of a request is a 64-bit mask.
pub const MAX_ORIGINS: usize = 64;
/// Most rules and residency pins, and most countries each may list.
pub const MAX_RULES: usize = 256;
pub const MAX_COUNTRIES: usize = 300;
/// Longest a timeout, breaker window or cool-down may be.
pub const MAX_DURATION_MS: u64 = 10 * 60 * 1000;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RoutingConfig {
    #[serde(rename = "origin")]
    pub origins: Vec<OriginConfig>,
    /// Explicit country → origin assignments; they win over distance.
    #[serde(default, rename = "rule")]
    pub rules: Vec<CountryRule>,
    /// Data-residency pins: clients of these countries are served only by these origins.
    #[serde(default, rename = "residency")]
    pub residency: Vec<ResidencyPin>,
    /// Whether a failed idempotent request is retried at the next allowed origin.
    #[serde(default = "yes")]
    pub failover: bool,
    /// Redirect mode: answer with a redirect to the chosen origin's public host instead of
    /// fetching.
    #[serde(default)]
    pub redirect: Option<RedirectConfig>,
    #[serde(default)]
    pub breaker: BreakerConfig,
    /// Hedged GETs: a second request to the next origin when the first is slow.
    #[serde(default)]
    pub hedge: Option<HedgeConfig>,
}

fn yes() -> bool {
    true
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OriginConfig {
    /// The region name, e.g. `eu-west`; shown in `X-Edge-Origin-Region`.
    pub name: String,
    /// Base URL the worker fetches, e.g. `https://eu-west.api.example.com`.
    pub url: String,
    pub lat: f64,
    pub lon: f64,
    /// Route 53 geoproximity bias, -99..=99: positive values draw clients from farther away
    /// (biased distance = distance × (1 − bias/100)).
    #[serde(default)]
    pub bias: i32,
    /// Public host clients are sent to in redirect mode, e.g. `eu.api.example.com`.
    #[serde(default)]
    pub redirect_host: Option<String>,
    #[serde(default = "default_connect_timeout")]
    pub connect_timeout_ms: u64,
    /// Longest wait for the response head; a slower origin counts as failed.
    #[serde(default = "default_first_byte_timeout")]
    pub first_byte_timeout_ms: u64,
}

fn default_connect_timeout() -> u64 {
    1_000
}
fn default_first_byte_timeout() -> u64 {
    10_000
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CountryRule {
    pub countries: Vec<String>,
    pub origin: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ResidencyPin {
    /// Names the pin in logs, e.g. `eu`.
    pub name: String,
    pub countries: Vec<String>,
    pub origins: Vec<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RedirectConfig {
    /// 302 or 307 (default 307: the method and body are kept).
    #[serde(default = "default_redirect_status")]
    pub status: u16,
}

fn default_redirect_status() -> u16 {
    307
}

/// The passive-health circuit breaker per origin.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct BreakerConfig {
    /// Failures (errors, timeouts, 5xx) within `window_ms` that open the circuit.
    pub failures: u32,
    pub window_ms: u64,
    /// How long an open circuit refuses requests before one probe is let through.
    pub cooldown_ms: u64,
}

impl Default for BreakerConfig {
    fn default() -> Self {
        Self {
            failures: 5,
            window_ms: 10_000,
            cooldown_ms: 5_000,
        }
    }
}

impl BreakerConfig {
    pub fn window(&self) -> Duration {
        Duration::from_millis(self.window_ms)
    }
    pub fn cooldown(&self) -> Duration {
        Duration::from_millis(self.cooldown_ms)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HedgeConfig {
    /// Delay before the second request, e.g. the primary origin's p95.
    pub after_ms: u64,
}

/// One origin, prepared for routing.
#[derive(Debug, Clone)]
pub struct OriginSpec {
    pub name: String,
    pub scheme: Scheme,
    pub authority: Authority,
    pub location: GeoPoint,
    /// 1 − bias/100: multiplies the distance.
    pub distance_factor: f64,
    pub redirect_host: Option<Authority>,
    pub connect_timeout: Duration,
    pub first_byte_timeout: Duration,
}

/// Two ASCII letters, upper case: the key of the per-country tables.
pub(crate) type CountryKey = [u8; 2];

pub(crate) fn country_key(code: &str) -> Option<CountryKey> {
    match code.as_bytes() {
        [a, b] if a.is_ascii_alphabetic() && b.is_ascii_alphabetic() => {
            Some([a.to_ascii_uppercase(), b.to_ascii_uppercase()])
        }
        _ => None,
    }
}

impl RoutingConfig {
    /// Checks the configuration and prepares it for per-request decisions.
    pub fn build(&self) -> Result<Router, ConfigError> {
        use ConfigError as E;
        if self.origins.is_empty() {
            return Err(E::NoOrigins);
        }
        for (what, len, limit) in [
            ("origins", self.origins.len(), MAX_ORIGINS),
            ("rules", self.rules.len(), MAX_RULES),
            ("residency pins", self.residency.len(), MAX_RULES),
        ] {
            if len > limit {
                return Err(E::TooManyRouted { what, limit });
            }
        }
        let mut origins = Vec::with_capacity(self.origins.len());
        for origin in &self.origins {
            if origins.iter().any(|o: &OriginSpec| o.name == origin.name) {
                return Err(E::DuplicateOrigin(origin.name.clone()));
            }
            origins.push(origin.prepare()?);
        }
        let index_of = |place: String, name: &str| {
            origins
                .iter()
                .position(|o| o.name == name)
                .ok_or_else(|| E::UnknownOrigin {
                    place,
                    origin: name.to_string(),
                })
        };
        let countries = |place: &str, list: &[String]| {
            if list.len() > MAX_COUNTRIES {
                return Err(E::TooManyRouted {
                    what: "countries in one entry",
                    limit: MAX_COUNTRIES,
                });
            }
            list.iter()
                .map(|code| {
                    country_key(code).ok_or_else(|| E::Country {
                        place: place.to_string(),
                        code: code.clone(),
                    })
                })
                .collect::<Result<Vec<_>, _>>()
        };
        let mut rule_by_country = HashMap::new();
        for (i, rule) in self.rules.iter().enumerate() {
            let place = format!("rule {}", i + 1);
            let origin = index_of(place.clone(), &rule.origin)?;
            for key in countries(&place, &rule.countries)? {
                // First rule wins, as in the file's order.
                rule_by_country.entry(key).or_insert(origin);
            }
        }
        let mut pins = Vec::new();
        let mut pin_by_country = HashMap::new();
        for pin in &self.residency {
            let place = format!("residency {:?}", pin.name);
            if pin.origins.is_empty() {
                return Err(E::InvalidRouting(format!("{place} allows no origin")));
            }
            let mut allowed = 0u64;
            for name in &pin.origins {
                allowed |= 1 << index_of(place.clone(), name)?;
            }
            for key in countries(&place, &pin.countries)? {
                pin_by_country.entry(key).or_insert(pins.len());
            }
            pins.push((pin.name.clone(), allowed));
        }
        if let Some(redirect) = &self.redirect {
            if redirect.status != 302 && redirect.status != 307 {
                return Err(E::InvalidRouting(format!(
                    "redirect status must be 302 or 307, got {}",
                    redirect.status
                )));
            }
            if let Some(origin) = origins.iter().find(|o| o.redirect_host.is_none()) {
                return Err(E::Origin {
                    name: origin.name.clone(),
                    problem: "redirect mode needs a redirect_host for every origin".into(),
                });
            }
        }
        let b = &self.breaker;
        if b.failures == 0 || b.failures > 1000 {
            return Err(E::InvalidRouting(format!(
                "breaker.failures must be within 1..=1000, got {}",
                b.failures
            )));
        }
        for (what, ms) in [
            ("breaker.window_ms", b.window_ms),
            ("breaker.cooldown_ms", b.cooldown_ms),
        ] {
            if ms == 0 || ms > MAX_DURATION_MS {
                return Err(E::InvalidRouting(format!(
                    "{what} must be within 1..={MAX_DURATION_MS}, got {ms}"
                )));
            }
        }
        if let Some(hedge) = &self.hedge {
            if hedge.after_ms > MAX_DURATION_MS {
                return Err(E::InvalidRouting(format!(
                    "hedge.after_ms must be at most {MAX_DURATION_MS}"
                )));
            }
        }
        Ok(Router {
            origins,
            rule_by_country,
            pins,
            pin_by_country,
            failover: self.failover,
            redirect_status: self.redirect.as_ref().map(|r| r.status),
            breaker: self.breaker,
            hedge_after: self.hedge.map(|h| Duration::from_millis(h.after_ms)),
        })
    }
}

impl OriginConfig {
    fn prepare(&self) -> Result<OriginSpec, ConfigError> {
        let problem = |problem: String| ConfigError::Origin {
            name: self.name.clone(),
            problem,
        };
        if self.name.is_empty()
            || self.name.len() > 64
            || !self
                .name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        {
            return Err(problem("names are 1–64 letters, digits, '-' or '_'".into()));
        }
        let uri: Uri = self
            .url
            .parse()
            .map_err(|e| problem(format!("url {:?}: {e}", self.url)))?;
        let (Some(scheme), Some(authority)) = (uri.scheme().cloned(), uri.authority().cloned())
        else {
            return Err(problem(format!(
                "url {:?} must be absolute (scheme://host)",
                self.url
            )));
        };
        if uri.path() != "/" && !uri.path().is_empty() || uri.query().is_some() {
            return Err(problem(format!(
                "url {:?} must be scheme://host[:port] only; the client's path is kept",
                self.url
            )));
        }
        if !(-90.0..=90.0).contains(&self.lat) || !(-180.0..=180.0).contains(&self.lon) {
            return Err(problem(format!(
                "coordinates out of range ({}, {})",
                self.lat, self.lon
            )));
        }
        if !(-99..=99).contains(&self.bias) {
            return Err(problem(format!(
                "bias must be within -99..=99, got {}",
                self.bias
            )));
        }
        for (what, ms) in [
            ("connect_timeout_ms", self.connect_timeout_ms),
            ("first_byte_timeout_ms", self.first_byte_timeout_ms),
        ] {
            if ms == 0 || ms > MAX_DURATION_MS {
                return Err(problem(format!(
                    "{what} must be within 1..={MAX_DURATION_MS}, got {ms}"
                )));
            }
        }
        let redirect_host = match &self.redirect_host {
            Some(host) => Some(
                host.parse::<Authority>()
                    .map_err(|e| problem(format!("redirect_host {host:?}: {e}")))?,
            ),
            None => None,
        };
        Ok(OriginSpec {
            name: self.name.clone(),
            scheme,
            authority,
            location: GeoPoint::new(self.lat, self.lon),
            distance_factor: 1.0 - f64::from(self.bias) / 100.0,
            redirect_host,
            connect_timeout: Duration::from_millis(self.connect_timeout_ms),
            first_byte_timeout: Duration::from_millis(self.first_byte_timeout_ms),
        })
    }
}
