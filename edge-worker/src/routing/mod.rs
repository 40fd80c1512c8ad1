//! Geo routing: which regional origin serves a request, and how the worker survives that
//! origin failing.
//!
//! ```text
//! Geo (request.cf / the emulator's PoP) ─▶ Router::plan ─▶ [primary, failover…]
//!     ─▶ Routed::fetch: skip open circuits, try in order (idempotent methods only),
//!        hedge a slow GET, report health ─▶ response + X-Edge-Origin-Region
//! ```
//! Policy, in order: explicit country rules; data-residency pins (a pinned request never
//! leaves its allowed set: it gets stale content or a 503); otherwise the nearest origin by
//! great-circle distance, biased as Route 53 geoproximity does. The decision is pure and
//! allocation-light (one small Vec per request); health state lives in the host across
//! requests ([`HealthBoard`]), because worker instances live for one request.

mod breaker;
mod config;
mod geo;
mod send;

use std::collections::HashMap;
use std::sync::OnceLock;
use std::time::Duration;

pub use breaker::{Admission, BreakerState, CircuitBreaker, HealthBoard, HealthSnapshot};
pub use config::{
    BreakerConfig, CountryRule, HedgeConfig, OriginConfig, OriginSpec, RedirectConfig,
    ResidencyPin, RoutingConfig, MAX_ORIGINS,
};
pub use geo::{great_circle_km, Geo, GeoPoint};
pub use send::{redirect, RouteChoice, Routed, RoutedTo, StaleFallback, ORIGIN_REGION_HEADER};

use config::{country_key, CountryKey};

/// Why an origin was chosen; shown as `reason=` in `X-Edge-Origin-Region`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reason {
    /// An explicit country rule.
    Rule,
    /// The nearest origin the client's residency pin allows.
    Residency,
    /// The nearest origin by (biased) great-circle distance.
    Nearest,
    /// The primary failed or its circuit is open; this is the next allowed origin.
    Failover,
    /// No location known: the first allowed origin in the configuration.
    Default,
}

impl Reason {
    pub fn as_str(self) -> &'static str {
        match self {
            Reason::Rule => "rule",
            Reason::Residency => "residency",
            Reason::Nearest => "nearest",
            Reason::Failover => "failover",
            Reason::Default => "default",
        }
    }
}

/// One origin a request may go to, in the order they are tried.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Candidate {
    /// Index into [`Router::origins`].
    pub origin: usize,
    pub reason: Reason,
}

/// The origins a request may use, best first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoutePlan {
    pub candidates: Vec<Candidate>,
    /// The residency pin that restricted the candidates, by name.
    pub pin: Option<usize>,
}

/// A checked routing configuration, ready for per-request decisions.
#[derive(Debug, Clone)]
pub struct Router {
    pub origins: Vec<OriginSpec>,
    rule_by_country: HashMap<CountryKey, usize>,
    /// (name, allowed-origins mask) per pin.
    pins: Vec<(String, u64)>,
    pin_by_country: HashMap<CountryKey, usize>,
    pub failover: bool,
    /// `Some(302 | 307)`: redirect mode.
    pub redirect_status: Option<u16>,
    pub breaker: BreakerConfig,
    pub hedge_after: Option<Duration>,
}

impl Router {
    /// Decides the candidate origins for a request from `geo`.
    pub fn plan(&self, geo: &Geo) -> RoutePlan {
        let key = geo.country.as_deref().and_then(country_key);
        let pin = key.and_then(|k| self.pin_by_country.get(&k).copied());
        let allowed = match pin {
            Some(p) => self.pins[p].1,
            None => u64::MAX,
        };
        let client = geo.location.map(|(lat, lon)| GeoPoint::new(lat, lon));
        let mut order: Vec<(f64, usize)> = (0..self.origins.len())
            .filter(|&i| allowed & (1 << i) != 0)
            .map(|i| {
                let origin = &self.origins[i];
                let distance = client.map_or(0.0, |c| {
                    c.distance_km(&origin.location) * origin.distance_factor
                });
                (distance, i)
            })
            .collect();
        // Stable: ties keep the configuration's order.
        order.sort_by(|a, b| a.0.total_cmp(&b.0));
        let rule = key
            .and_then(|k| self.rule_by_country.get(&k).copied())
            .filter(|&i| allowed & (1 << i) != 0);
        let primary = rule.unwrap_or(order[0].1);
        let reason = match (rule, pin, geo.location) {
            (Some(_), _, _) => Reason::Rule,
            (None, Some(_), _) => Reason::Residency,
            (None, None, Some(_)) => Reason::Nearest,
            (None, None, None) => Reason::Default,
        };
        let mut candidates = vec![Candidate {
            origin: primary,
            reason,
        }];
        if self.failover {
            candidates.extend(
                order
                    .iter()
                    .filter(|&&(_, i)| i != primary)
                    .map(|&(_, origin)| Candidate {
                        origin,
                        reason: Reason::Failover,
                    }),
            );
        }
        RoutePlan { candidates, pin }
    }

    /// The plan for a request from the [`Geo`] its host attached (none: no location known).
    pub fn plan_for<B>(&self, request: &http::Request<B>) -> RoutePlan {
        match request.extensions().get::<Geo>() {
            Some(geo) => self.plan(geo),
            None => self.plan(&Geo::default()),
        }
    }

    /// The name of a residency pin.
    pub fn pin_name(&self, pin: usize) -> &str {
        &self.pins[pin].0
    }

    pub fn origin_named(&self, name: &str) -> Option<&OriginSpec> {
        self.origins.iter().find(|o| o.name == name)
    }
}

/// A routing configuration prepared on first use. A host that builds a worker per request
/// (the wasmtime emulator's fresh instance) would otherwise fetch and parse it on every cache
/// hit, and hits never route.
pub struct LazyRouter {
    /// Where the configuration's JSON comes from, asked once.
    load: Box<dyn Fn() -> Option<String> + Send + Sync>,
    redirect: bool,
    prepared: OnceLock<Result<Router, String>>,
}

impl std::fmt::Debug for LazyRouter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LazyRouter")
            .field("redirect", &self.redirect)
            .field("prepared", &self.prepared.get().map(Result::is_ok))
            .finish_non_exhaustive()
    }
}

impl LazyRouter {
    /// `load` gives the configuration's JSON when first needed. `redirect`: whether it is in
    /// redirect mode (the host parsed and checked it at start-up); redirect mode needs the
    /// router for every request.
    pub fn from_loader(
        redirect: bool,
        load: impl Fn() -> Option<String> + Send + Sync + 'static,
    ) -> Self {
        Self {
            load: Box::new(load),
            redirect,
            prepared: OnceLock::new(),
        }
    }

    /// A router already built (hosts that keep the worker across requests).
    pub fn ready(router: Router) -> Self {
        let redirect = router.redirect_status.is_some();
        Self {
            load: Box::new(|| None),
            redirect,
            prepared: OnceLock::from(Ok(router)),
        }
    }

    pub fn redirects(&self) -> bool {
        self.redirect
    }

    /// The router, or why the configuration is unusable.
    pub fn get(&self) -> Result<&Router, &str> {
        self.prepared
            .get_or_init(|| {
                let json = (self.load)().ok_or("the host gave no routing configuration")?;
                serde_json::from_str::<RoutingConfig>(&json)
                    .map_err(|e| e.to_string())
                    .and_then(|config| config.build().map_err(|e| e.to_string()))
            })
            .as_ref()
            .map_err(String::as_str)
    }
}

#[cfg(test)]
mod tests;
