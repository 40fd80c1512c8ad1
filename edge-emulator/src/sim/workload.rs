//! Workloads for the simulator: generated (Zipf popularity, Poisson arrivals with an optional
//! diurnal curve, a country mix, shares of authenticated, `?fields=`, conditional and encoded
//! requests, writes that bump versions, a flash crowd), all from one seed.

use std::collections::BTreeMap;

use serde::Deserialize;

/// Most objects and requests a scenario may ask for.
pub const MAX_OBJECTS: u64 = 10_000_000;
pub const MAX_REQUESTS: u64 = 100_000_000;

/// A generated workload, as a scenario file's `[workload]` table.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WorkloadSpec {
    /// Client requests to generate (reads; writes come on top).
    pub requests: u64,
    /// Mean arrival rate, requests per second of virtual time.
    pub rate: f64,
    pub objects: u64,
    pub zipf_alpha: f64,
    /// Object sizes are log-normal around this median.
    pub median_bytes: u64,
    #[serde(default)]
    pub size_sigma: f64,
    /// Origin's max-age for objects; 0 makes them `no-store`.
    pub ttl_s: u64,
    /// Origin's stale-while-revalidate for objects.
    #[serde(default)]
    pub swr_s: u64,
    /// Client countries and their weights.
    pub countries: BTreeMap<String, f64>,
    /// Accept-Encoding values and their weights ("identity" sends none).
    #[serde(default)]
    pub encodings: BTreeMap<String, f64>,
    /// Share of requests for a signed-in user's private document (`/api/users/{id}` with a
    /// token).
    #[serde(default)]
    pub auth_share: f64,
    /// Share of object requests with `?fields=id,version`.
    #[serde(default)]
    pub fields_share: f64,
    /// Share of requests that send If-None-Match with the ETag they last saw.
    #[serde(default)]
    pub conditional_share: f64,
    /// Writes per second: each changes a Zipf-chosen object at the origin.
    #[serde(default)]
    pub write_rate: f64,
    /// How a write reaches the caches: `version` (later requests use a new URL, `&v=`: the
    /// versioned-key purge), `purge` (same URL, purged from every cache) or `soft-purge`
    /// (same URL, marked stale: served within stale-while-revalidate while one request
    /// refreshes).
    #[serde(default)]
    pub write_invalidation: WriteInvalidation,
    #[serde(default)]
    pub diurnal: Option<Diurnal>,
    #[serde(default)]
    pub flash: Option<FlashCrowd>,
    /// Share of object requests for ids outside the catalogue (`&of=objects`): the origin
    /// answers 404 with no freshness of its own (broken links, scanners, deleted items).
    #[serde(default)]
    pub missing_share: f64,
    /// How many distinct missing ids those requests spread over, uniformly.
    #[serde(default = "default_missing_ids")]
    pub missing_ids: u64,
    /// Synchronised expiry: one request for each of objects 1..=`objects`, spread over one
    /// second from `start_s` (a cache warm-up, a deploy, a purge), so all their copies are
    /// stored in the same second with the same max-age.
    #[serde(default)]
    pub burst: Option<Burst>,
    /// Share of requests for the origin-stub's personalised dashboard
    /// (`/api/users/me/dashboard`), each by one of `dashboard_users` signed-in users.
    #[serde(default)]
    pub dashboard_share: f64,
    #[serde(default = "default_dashboard_users")]
    pub dashboard_users: u64,
    /// Who puts the dashboard together: `edge` (an ESI template filled at the edge) or
    /// `origin` (rendered whole at the origin, per user).
    #[serde(default)]
    pub compose: Compose,
}

fn default_missing_ids() -> u64 {
    1000
}

fn default_dashboard_users() -> u64 {
    1000
}

/// Where the dashboard is composed (the origin-stub's `?compose=`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Compose {
    #[default]
    Edge,
    Origin,
}

impl Compose {
    pub fn as_str(self) -> &'static str {
        match self {
            Compose::Edge => "edge",
            Compose::Origin => "origin",
        }
    }
}

/// One request for each of the first `objects` objects within one second.
#[derive(Debug, Clone, Copy, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Burst {
    pub start_s: f64,
    pub objects: u64,
}

/// How writes invalidate cached copies.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum WriteInvalidation {
    #[default]
    Version,
    Purge,
    SoftPurge,
}

/// Arrival rate × (1 + amplitude·sin(2πt/period)).
#[derive(Debug, Clone, Copy, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Diurnal {
    pub amplitude: f64,
    pub period_s: f64,
}

/// Extra requests for one object during a window.
#[derive(Debug, Clone, Copy, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FlashCrowd {
    pub object: u64,
    pub start_s: f64,
    pub duration_s: f64,
    pub rate: f64,
}

#[derive(Debug, thiserror::Error)]
#[error("invalid workload: {0}")]
pub struct WorkloadError(pub String);

impl WorkloadSpec {
    pub fn validate(&self) -> Result<(), WorkloadError> {
        let bad = |m: String| Err(WorkloadError(m));
        if self.requests == 0 || self.requests > MAX_REQUESTS {
            return bad(format!("requests must be within 1..={MAX_REQUESTS}"));
        }
        if self.objects == 0 || self.objects > MAX_OBJECTS {
            return bad(format!("objects must be within 1..={MAX_OBJECTS}"));
        }
        if !(self.rate > 0.0 && self.rate <= 10_000_000.0) {
            return bad("rate must be within (0, 1e7] requests per second".into());
        }
        if !(0.0..=5.0).contains(&self.zipf_alpha) {
            return bad("zipf_alpha must be within 0..=5".into());
        }
        if self.median_bytes == 0 || self.median_bytes > 8 * 1024 * 1024 {
            return bad("median_bytes must be within 1..=8 MiB".into());
        }
        if !(0.0..=3.0).contains(&self.size_sigma) {
            return bad("size_sigma must be within 0..=3".into());
        }
        for (what, share) in [
            ("auth_share", self.auth_share),
            ("fields_share", self.fields_share),
            ("conditional_share", self.conditional_share),
            ("dashboard_share", self.dashboard_share),
        ] {
            if !(0.0..=1.0).contains(&share) {
                return bad(format!("{what} must be within 0..=1"));
            }
        }
        if self.countries.is_empty() || self.countries.values().any(|w| w.is_nan() || *w < 0.0) {
            return bad("countries needs at least one country with a weight ≥ 0".into());
        }
        if self.countries.values().sum::<f64>() <= 0.0 {
            return bad("country weights sum to 0".into());
        }
        if !(0.0..=1_000_000.0).contains(&self.write_rate) {
            return bad("write_rate must be within 0..=1e6".into());
        }
        if let Some(d) = self.diurnal {
            if !(0.0..1.0).contains(&d.amplitude) || d.period_s <= 0.0 {
                return bad("diurnal amplitude within 0..1 and period_s > 0".into());
            }
        }
        if !(0.0..=1.0).contains(&self.missing_share) {
            return bad("missing_share must be within 0..=1".into());
        }
        if self.missing_ids == 0 || self.missing_ids > MAX_OBJECTS {
            return bad(format!("missing_ids must be within 1..={MAX_OBJECTS}"));
        }
        if self.auth_share + self.dashboard_share > 1.0 {
            return bad("auth_share + dashboard_share must be at most 1".into());
        }
        if self.dashboard_users == 0 || self.dashboard_users > 10_000_000 {
            return bad("dashboard_users must be within 1..=10000000".into());
        }
        if let Some(b) = self.burst {
            if b.objects == 0 || b.objects > self.objects || b.start_s.is_nan() || b.start_s < 0.0 {
                return bad("burst: objects within 1..=objects and start_s ≥ 0".into());
            }
        }
        if let Some(f) = self.flash {
            if f.object == 0 || f.object > self.objects || f.rate < 0.0 || f.duration_s < 0.0 {
                return bad("flash: object within 1..=objects, rate and duration ≥ 0".into());
            }
        }
        Ok(())
    }

    /// Virtual time the reads span, roughly.
    pub fn duration_s(&self) -> f64 {
        self.requests as f64 / self.rate
    }

    pub fn describe(&self) -> String {
        format!(
            "zipf({}) over {} objects (median {} B), {} req/s, ttl {} s, swr {} s",
            self.zipf_alpha, self.objects, self.median_bytes, self.rate, self.ttl_s, self.swr_s
        )
    }

    /// Request rate per object (object i at index i − 1), for the analytic bounds.
    pub fn object_rates(&self) -> Vec<f64> {
        zipf(self.objects as usize, self.zipf_alpha)
            .into_iter()
            .map(|p| p * self.rate * (1.0 - self.auth_share - self.dashboard_share))
            .collect()
    }
}

use super::theory::zipf_probabilities as zipf;

/// One thing that happens in a simulation.
#[derive(Debug, Clone, PartialEq)]
pub struct SimEvent {
    /// Virtual seconds from the start.
    pub at_s: f64,
    pub kind: EventKind,
}

#[derive(Debug, Clone, PartialEq)]
pub enum EventKind {
    Read(Read),
    /// The object changes at every origin; later reads ask for its new version.
    Write {
        object: u64,
    },
    /// A purge of a path (with its query) or, ending in `*`, a prefix, sent to every cache;
    /// it takes effect after the scenario's propagation time.
    Purge {
        target: String,
        soft: bool,
    },
}

impl EventKind {
    /// The purge a `Purge` event stands for.
    pub fn purge(target: &str, soft: bool) -> Result<edge_worker::purge::Purge, String> {
        use edge_worker::purge::Purge;
        match target.strip_suffix('*') {
            Some(prefix) => Purge::prefix(prefix, soft),
            None => Purge::path(target, soft),
        }
        .map_err(|e| format!("purge of {target:?}: {e}"))
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Read {
    /// Where the client is: a country (its PoP by the topology) or a PoP by name.
    pub country: Option<String>,
    pub pop: Option<String>,
    pub method: String,
    /// Path and query.
    pub path: String,
    pub headers: Vec<(String, String)>,
    /// Send If-None-Match with the ETag last seen for this path and encoding.
    pub conditional: bool,
    /// The identity size of the full representation, when known (bytes saved by compression).
    pub identity_bytes: Option<u64>,
}

/// Draws events in time order from a spec and a seed.
pub struct Generator {
    spec: WorkloadSpec,
    rng: fastrand::Rng,
    /// Cumulative Zipf distribution for sampling objects.
    cdf: Vec<f64>,
    sizes: Vec<u64>,
    versions: Vec<u64>,
    countries: Vec<(String, f64)>,
    encodings: Vec<(String, f64)>,
    reads: u64,
    /// The object whose write still owes its purge (purge modes emit it next).
    purge_due: Option<u64>,
    last_write: f64,
    /// Next arrival of each stream: base reads, flash reads, writes.
    next_base: f64,
    next_flash: f64,
    next_write: f64,
    /// The burst's requests so far (object `burst_sent + 1` is next).
    burst_sent: u64,
}

impl Generator {
    pub fn new(spec: WorkloadSpec, seed: u64) -> Self {
        let mut rng = fastrand::Rng::with_seed(seed);
        let mut cdf = zipf(spec.objects as usize, spec.zipf_alpha);
        let mut sum = 0.0;
        for p in &mut cdf {
            sum += *p;
            *p = sum;
        }
        let sizes = draw_sizes(&spec, &mut rng);
        let weights = |map: &BTreeMap<String, f64>| -> Vec<(String, f64)> {
            let total: f64 = map.values().sum();
            let mut acc = 0.0;
            map.iter()
                .map(|(k, w)| {
                    acc += w / total;
                    (k.clone(), acc)
                })
                .collect()
        };
        let countries = weights(&spec.countries);
        let encodings = weights(&spec.encodings);
        let mut generator = Self {
            versions: vec![0; spec.objects as usize],
            cdf,
            sizes,
            countries,
            encodings,
            reads: 0,
            purge_due: None,
            last_write: 0.0,
            next_base: 0.0,
            next_flash: f64::INFINITY,
            next_write: f64::INFINITY,
            burst_sent: 0,
            spec,
            rng,
        };
        generator.next_base = generator.base_after(0.0);
        if let Some(flash) = generator.spec.flash {
            if flash.rate > 0.0 {
                generator.next_flash = flash.start_s + exponential(&mut generator.rng, flash.rate);
            }
        }
        if generator.spec.write_rate > 0.0 {
            generator.next_write = exponential(&mut generator.rng, generator.spec.write_rate);
        }
        generator
    }

    /// The next base arrival after `t`: Poisson at the peak rate, thinned by the diurnal curve.
    fn base_after(&mut self, mut t: f64) -> f64 {
        let (amplitude, period) = self
            .spec
            .diurnal
            .map_or((0.0, 1.0), |d| (d.amplitude, d.period_s));
        let peak = self.spec.rate * (1.0 + amplitude);
        loop {
            t += exponential(&mut self.rng, peak);
            let rate =
                self.spec.rate * (1.0 + amplitude * (std::f64::consts::TAU * t / period).sin());
            if self.rng.f64() * peak <= rate {
                return t;
            }
        }
    }

    fn pick(rng: &mut fastrand::Rng, cumulative: &[(String, f64)]) -> Option<String> {
        let draw = rng.f64();
        cumulative
            .iter()
            .find(|(_, c)| draw < *c)
            .or(cumulative.last())
            .map(|(k, _)| k.clone())
    }

    fn zipf_object(&mut self) -> u64 {
        let draw = self.rng.f64();
        self.cdf
            .partition_point(|c| *c < draw)
            .min(self.cdf.len() - 1) as u64
            + 1
    }

    /// An object's URL: its version is part of it only when writes bump versions.
    fn object_path(&self, object: u64) -> String {
        let index = (object - 1) as usize;
        let version = match self.spec.write_invalidation {
            WriteInvalidation::Version => self.versions[index],
            WriteInvalidation::Purge | WriteInvalidation::SoftPurge => 0,
        };
        format!(
            "/api/objects/{object}?bytes={}&ttl={}&swr={}&v={version}",
            self.sizes[index], self.spec.ttl_s, self.spec.swr_s
        )
    }

    fn read(&mut self, at_s: f64, object: Option<u64>) -> SimEvent {
        let country = Self::pick(&mut self.rng, &self.countries);
        let mut headers = Vec::new();
        if let Some(coding) = Self::pick(&mut self.rng, &self.encodings) {
            if coding != "identity" {
                headers.push(("accept-encoding".to_string(), coding));
            }
        }
        let conditional = self.rng.f64() < self.spec.conditional_share;
        // Drawn only when asked for, so scenarios without the dashboard replay as before.
        if object.is_none()
            && self.spec.dashboard_share > 0.0
            && self.rng.f64() < self.spec.dashboard_share
        {
            let user = self.rng.u64(1..=self.spec.dashboard_users);
            headers.push(("authorization".to_string(), format!("demo:user-{user}")));
            let path = format!(
                "/api/users/me/dashboard?compose={}",
                self.spec.compose.as_str()
            );
            return get(at_s, country, path, headers, conditional, None);
        }
        if object.is_none() && self.rng.f64() < self.spec.auth_share {
            let user = self.rng.u64(1..=1000);
            headers.push(("authorization".to_string(), "demo".to_string()));
            let path = format!("/api/users/{user}");
            return get(at_s, country, path, headers, conditional, None);
        }
        // Drawn only when asked for, so scenarios without missing ids replay as before.
        if object.is_none()
            && self.spec.missing_share > 0.0
            && self.rng.f64() < self.spec.missing_share
        {
            let id = self.spec.objects + self.rng.u64(1..=self.spec.missing_ids);
            let path = format!(
                "/api/objects/{id}?bytes=64&ttl={}&of={}",
                self.spec.ttl_s, self.spec.objects
            );
            return get(at_s, country, path, headers, conditional, None);
        }
        let object = object.unwrap_or_else(|| self.zipf_object());
        let size = self.sizes[(object - 1) as usize];
        let mut path = self.object_path(object);
        let fields = self.rng.f64() < self.spec.fields_share;
        if fields {
            path.push_str("&fields=id,version");
        }
        let identity_bytes = (!fields).then_some(size);
        get(at_s, country, path, headers, conditional, identity_bytes)
    }
}

impl Iterator for Generator {
    type Item = SimEvent;

    fn next(&mut self) -> Option<SimEvent> {
        if self.reads >= self.spec.requests {
            return None;
        }
        let flash_end = self
            .spec
            .flash
            .map_or(f64::NEG_INFINITY, |f| f.start_s + f.duration_s);
        if self.next_flash >= flash_end {
            self.next_flash = f64::INFINITY;
        }
        if let Some(object) = self.purge_due.take() {
            let soft = self.spec.write_invalidation == WriteInvalidation::SoftPurge;
            return Some(SimEvent {
                at_s: self.last_write,
                kind: EventKind::Purge {
                    target: self.object_path(object),
                    soft,
                },
            });
        }
        if let Some(burst) = self.spec.burst {
            if self.burst_sent < burst.objects {
                let at = burst.start_s + self.burst_sent as f64 / burst.objects as f64;
                if at <= self.next_base.min(self.next_flash).min(self.next_write) {
                    self.burst_sent += 1;
                    self.reads += 1;
                    return Some(self.read(at, Some(self.burst_sent)));
                }
            }
        }
        let earliest = self.next_base.min(self.next_flash).min(self.next_write);
        if earliest == self.next_write {
            let at = self.next_write;
            self.next_write = at + exponential(&mut self.rng, self.spec.write_rate);
            let object = self.zipf_object();
            self.versions[(object - 1) as usize] += 1;
            if self.spec.write_invalidation != WriteInvalidation::Version {
                self.purge_due = Some(object);
                self.last_write = at;
            }
            return Some(SimEvent {
                at_s: at,
                kind: EventKind::Write { object },
            });
        }
        self.reads += 1;
        if earliest == self.next_flash {
            let at = self.next_flash;
            let flash = self.spec.flash.expect("a flash stream has a spec");
            self.next_flash = at + exponential(&mut self.rng, flash.rate);
            return Some(self.read(at, Some(flash.object)));
        }
        let at = self.next_base;
        self.next_base = self.base_after(at);
        Some(self.read(at, None))
    }
}

/// A client's GET.
fn get(
    at_s: f64,
    country: Option<String>,
    path: String,
    headers: Vec<(String, String)>,
    conditional: bool,
    identity_bytes: Option<u64>,
) -> SimEvent {
    SimEvent {
        at_s,
        kind: EventKind::Read(Read {
            country,
            pop: None,
            method: "GET".into(),
            path,
            headers,
            conditional,
            identity_bytes,
        }),
    }
}

/// Each object's size, as the generator with this seed draws them.
pub fn object_sizes(spec: &WorkloadSpec, seed: u64) -> Vec<u64> {
    draw_sizes(spec, &mut fastrand::Rng::with_seed(seed))
}

/// Log-normal around the median; the generator's first draws.
fn draw_sizes(spec: &WorkloadSpec, rng: &mut fastrand::Rng) -> Vec<u64> {
    (0..spec.objects)
        .map(|_| {
            let z = normal(rng);
            ((spec.median_bytes as f64) * (spec.size_sigma * z).exp()).clamp(64.0, 8e6) as u64
        })
        .collect()
}

/// A replayed trace as simulation events; If-None-Match comes from the trace itself.
/// `PURGE` records become purges (soft with `fastly-soft-purge: 1`).
pub fn from_trace(records: Vec<super::trace::TraceRecord>) -> impl Iterator<Item = SimEvent> {
    records.into_iter().map(|r| {
        let kind = if r.method == super::trace::PURGE {
            let soft = r
                .headers
                .iter()
                .any(|(name, value)| name == "fastly-soft-purge" && value == "1");
            EventKind::Purge {
                target: r.path,
                soft,
            }
        } else {
            EventKind::Read(Read {
                country: r.country,
                pop: r.pop,
                method: r.method,
                path: r.path,
                headers: r.headers,
                conditional: false,
                identity_bytes: None,
            })
        };
        SimEvent {
            at_s: r.time_s,
            kind,
        }
    })
}

fn exponential(rng: &mut fastrand::Rng, rate: f64) -> f64 {
    -(1.0 - rng.f64()).ln() / rate
}

/// A standard normal draw (Box–Muller).
fn normal(rng: &mut fastrand::Rng) -> f64 {
    let (u, v) = (1.0 - rng.f64(), rng.f64());
    (-2.0 * u.ln()).sqrt() * (std::f64::consts::TAU * v).cos()
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(crate) fn spec() -> WorkloadSpec {
        WorkloadSpec {
            requests: 20_000,
            rate: 1000.0,
            objects: 100,
            zipf_alpha: 1.0,
            median_bytes: 1000,
            size_sigma: 0.5,
            ttl_s: 60,
            swr_s: 0,
            countries: BTreeMap::from([("US".into(), 3.0), ("DE".into(), 1.0)]),
            encodings: BTreeMap::new(),
            auth_share: 0.0,
            fields_share: 0.0,
            conditional_share: 0.0,
            write_rate: 0.0,
            write_invalidation: Default::default(),
            diurnal: None,
            flash: None,
            missing_share: 0.0,
            missing_ids: 1000,
            burst: None,
            dashboard_share: 0.0,
            dashboard_users: 1000,
            compose: Compose::Edge,
        }
    }

    #[test]
    fn purge_modes_keep_the_url_and_purge_it_after_each_write() {
        let mut s = spec();
        s.write_rate = 50.0;
        s.write_invalidation = WriteInvalidation::SoftPurge;
        let events: Vec<_> = Generator::new(s, 7).take(2000).collect();
        let mut writes = 0;
        for (i, event) in events.iter().enumerate() {
            match &event.kind {
                EventKind::Write { object } => {
                    writes += 1;
                    let Some(SimEvent {
                        at_s,
                        kind: EventKind::Purge { target, soft },
                    }) = events.get(i + 1)
                    else {
                        panic!("a purge follows write {i}");
                    };
                    assert_eq!(*at_s, event.at_s);
                    assert!(*soft);
                    assert!(target.starts_with(&format!("/api/objects/{object}?")));
                    assert!(target.ends_with("&v=0"));
                    EventKind::purge(target, *soft).expect("a valid purge");
                }
                EventKind::Read(read) => assert!(read.path.contains("&v=0"), "{}", read.path),
                EventKind::Purge { .. } => {}
            }
        }
        assert!(writes > 10);
    }

    #[test]
    fn missing_ids_lie_outside_the_catalogue_and_the_burst_takes_one_second() {
        let mut s = spec();
        s.missing_share = 0.2;
        s.missing_ids = 10;
        s.burst = Some(Burst {
            start_s: 3.0,
            objects: 100,
        });
        let events: Vec<_> = Generator::new(s, 5).collect();
        let paths: Vec<&str> = events
            .iter()
            .filter_map(|e| match &e.kind {
                EventKind::Read(r) => Some(r.path.as_str()),
                EventKind::Write { .. } | EventKind::Purge { .. } => None,
            })
            .collect();
        let missing = paths.iter().filter(|p| p.contains("&of=100")).count();
        assert!((3_000..5_000).contains(&missing), "{missing}");
        assert!(paths
            .iter()
            .filter(|p| p.contains("&of=100"))
            .all(|p| (101..=110).any(|id| p.starts_with(&format!("/api/objects/{id}?")))));
        let burst = events
            .iter()
            .filter(|e| (3.0..4.0).contains(&e.at_s))
            .count();
        // About 1,000 base reads in that second, plus the burst's 100.
        assert!(burst > 1_050, "{burst}");
        assert!(events.windows(2).all(|w| w[0].at_s <= w[1].at_s));
    }

    #[test]
    fn the_same_seed_gives_the_same_events_and_another_seed_others() {
        let a: Vec<_> = Generator::new(spec(), 1).take(100).collect();
        let b: Vec<_> = Generator::new(spec(), 1).take(100).collect();
        let c: Vec<_> = Generator::new(spec(), 2).take(100).collect();
        assert_eq!(a, b);
        assert_ne!(a, c);
    }

    #[test]
    fn arrivals_are_poisson_at_the_rate_and_popularity_is_zipf() {
        let events: Vec<_> = Generator::new(spec(), 7).collect();
        assert_eq!(events.len(), 20_000);
        let span = events.last().unwrap().at_s;
        assert!((span - 20.0).abs() < 1.0, "{span}");
        assert!(events.windows(2).all(|w| w[0].at_s <= w[1].at_s));
        let first = events
            .iter()
            .filter(
                |e| matches!(&e.kind, EventKind::Read(r) if r.path.starts_with("/api/objects/1?")),
            )
            .count() as f64;
        let expected = zipf(100, 1.0)[0] * 20_000.0;
        assert!(
            (first - expected).abs() < expected * 0.1,
            "{first} vs {expected}"
        );
        let us = events
            .iter()
            .filter(|e| matches!(&e.kind, EventKind::Read(r) if r.country.as_deref() == Some("US")))
            .count();
        assert!((14_500..15_500).contains(&us), "{us}");
    }

    #[test]
    fn writes_bump_versions_and_the_flash_crowd_hits_one_object() {
        let mut s = spec();
        s.write_rate = 10.0;
        s.flash = Some(FlashCrowd {
            object: 42,
            start_s: 5.0,
            duration_s: 2.0,
            rate: 2000.0,
        });
        let events: Vec<_> = Generator::new(s, 3).collect();
        let writes = events
            .iter()
            .filter(|e| matches!(e.kind, EventKind::Write { .. }))
            .count();
        assert!((100..300).contains(&writes), "{writes}");
        assert!(events
            .iter()
            .any(|e| matches!(&e.kind, EventKind::Read(r) if r.path.contains("&v=1"))));
        let flash = events
            .iter()
            .filter(|e| (5.0..7.0).contains(&e.at_s))
            .filter(
                |e| matches!(&e.kind, EventKind::Read(r) if r.path.starts_with("/api/objects/42?")),
            )
            .count();
        assert!(flash > 3500, "{flash}");
    }

    #[test]
    fn invalid_specs_say_what_is_wrong() {
        let mut s = spec();
        s.zipf_alpha = -1.0;
        assert!(s.validate().unwrap_err().to_string().contains("zipf_alpha"));
        let mut s = spec();
        s.countries.clear();
        assert!(s.validate().unwrap_err().to_string().contains("countries"));
    }
}
