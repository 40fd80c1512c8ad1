//! The CDN the emulator models: edge PoPs, regional tiers, optional origin shields, origins,
//! and the round-trip times between them, from the embedded default or a TOML file.

use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::time::Duration;

use serde::Deserialize;

/// The topology compiled into the binary.
pub const DEFAULT_TOPOLOGY: &str = include_str!("../../default-topology.toml");

/// Most PoPs, regional tiers, shields and origins a file may declare together.
pub const MAX_NODES: usize = 1000;
/// Light in fibre covers about 200 km per millisecond.
const FIBRE_KM_PER_MS: f64 = 200.0;

#[derive(Debug, thiserror::Error)]
pub enum TopologyError {
    #[error("cannot read topology file {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("topology is not valid TOML: {0}")]
    Parse(#[from] toml::de::Error),
    #[error("invalid topology: {0}")]
    Invalid(String),
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Topology {
    /// Fibre path length over great-circle distance.
    #[serde(default = "default_fibre_factor")]
    pub fibre_factor: f64,
    /// Smallest RTT between two places (same data centre).
    #[serde(default = "default_rtt_floor")]
    pub rtt_floor_ms: f64,
    /// Round trip between a client and its PoP.
    #[serde(default = "default_client_rtt")]
    pub client_rtt_ms: f64,
    pub default_pop: String,
    #[serde(rename = "pop")]
    pub pops: Vec<Pop>,
    #[serde(rename = "regional")]
    pub regionals: Vec<Regional>,
    /// Origin shields between regional tiers and the origins; none by default.
    #[serde(default, rename = "shield")]
    pub shields: Vec<Shield>,
    #[serde(rename = "origin")]
    pub origins: Vec<OriginSite>,
    #[serde(default, rename = "rtt")]
    pub rtt_overrides: Vec<RttOverride>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Pop {
    pub name: String,
    pub city: String,
    pub lat: f64,
    pub lon: f64,
    /// The regional tier this PoP's misses go to.
    pub regional: String,
    /// ISO 3166-1 alpha-2 codes of the clients this PoP serves.
    #[serde(default)]
    pub countries: Vec<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Regional {
    pub name: String,
    pub city: String,
    pub lat: f64,
    pub lon: f64,
    /// The origin this tier's misses go to.
    pub origin: String,
}

/// An origin shield: one more shared cache that the regional tiers it lists send their misses
/// to, so the origins see one request per key where they would see one per regional tier.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Shield {
    pub name: String,
    pub city: String,
    pub lat: f64,
    pub lon: f64,
    /// The regional tiers that use this shield (each uses at most one).
    pub regionals: Vec<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OriginSite {
    pub name: String,
    pub city: String,
    pub lat: f64,
    pub lon: f64,
    /// Base URL of a real origin; when absent the emulator starts an origin-stub for it.
    pub url: Option<String>,
    /// Service time of the in-process origin-stub.
    #[serde(default)]
    pub latency_ms: u64,
    /// Faults of the in-process origin-stub from the start (same keys as
    /// `PUT /__emulator/origins/NAME/faults`), e.g. `faults = { flap_period_ms = 2000 }`.
    #[serde(default)]
    pub faults: Option<origin_stub::FaultPlan>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RttOverride {
    pub from: String,
    pub to: String,
    pub ms: f64,
}

fn default_fibre_factor() -> f64 {
    1.5
}
fn default_rtt_floor() -> f64 {
    0.5
}
fn default_client_rtt() -> f64 {
    5.0
}

/// An origin's base URL: http(s), a host, and no query (paths are appended to it).
fn check_origin_url(url: &str) -> Result<(), TopologyError> {
    let invalid = || {
        TopologyError::Invalid(format!(
            "origin URL {url:?} must look like http://127.0.0.1:3000 (http or https, a host, \
             an optional base path, no query)"
        ))
    };
    let uri: http::Uri = url.parse().map_err(|_| invalid())?;
    let scheme_ok = matches!(uri.scheme_str(), Some("http" | "https"));
    if !scheme_ok || uri.host().is_none_or(str::is_empty) || uri.query().is_some() {
        return Err(invalid());
    }
    Ok(())
}

/// A place with coordinates.
pub trait Located {
    fn name(&self) -> &str;
    fn coordinates(&self) -> (f64, f64);
}

macro_rules! located {
    ($($t:ty),*) => {$(
        impl Located for $t {
            fn name(&self) -> &str { &self.name }
            fn coordinates(&self) -> (f64, f64) { (self.lat, self.lon) }
        }
    )*};
}
located!(Pop, Regional, Shield, OriginSite);

impl Topology {
    /// Every located place: PoPs, then regional tiers, then shields, then origins.
    pub fn places(&self) -> impl Iterator<Item = &dyn Located> {
        self.pops
            .iter()
            .map(|p| p as &dyn Located)
            .chain(self.regionals.iter().map(|r| r as &dyn Located))
            .chain(self.shields.iter().map(|s| s as &dyn Located))
            .chain(self.origins.iter().map(|o| o as &dyn Located))
    }

    pub fn default_embedded() -> Self {
        Self::parse(DEFAULT_TOPOLOGY).expect("the embedded topology is valid (checked by a test)")
    }

    pub fn from_file(path: &Path) -> Result<Self, TopologyError> {
        let text = std::fs::read_to_string(path).map_err(|source| TopologyError::Read {
            path: path.display().to_string(),
            source,
        })?;
        Self::parse(&text)
    }

    pub fn parse(text: &str) -> Result<Self, TopologyError> {
        let topology: Topology = toml::from_str(text)?;
        topology.validate()?;
        Ok(topology)
    }

    /// Proxy mode: every origin becomes the server at `url` (the regions keep their places,
    /// so round trips still differ by region).
    pub fn proxy_to(&mut self, url: &str) -> Result<(), TopologyError> {
        check_origin_url(url)?;
        for origin in &mut self.origins {
            origin.url = Some(url.trim_end_matches('/').to_string());
            origin.faults = None;
        }
        Ok(())
    }

    fn validate(&self) -> Result<(), TopologyError> {
        let invalid = |m: String| Err(TopologyError::Invalid(m));
        for origin in &self.origins {
            if let Some(url) = &origin.url {
                check_origin_url(url)?;
            }
        }
        if self.pops.is_empty() || self.regionals.is_empty() || self.origins.is_empty() {
            return invalid(
                "needs at least one [[pop]], one [[regional]] and one [[origin]]".into(),
            );
        }
        if self.places().count() > MAX_NODES {
            return invalid(format!("more than {MAX_NODES} places"));
        }
        if !(1.0..=5.0).contains(&self.fibre_factor) {
            return invalid(format!(
                "fibre_factor {} is outside 1.0..=5.0",
                self.fibre_factor
            ));
        }
        for (what, ms) in [
            ("rtt_floor_ms", self.rtt_floor_ms),
            ("client_rtt_ms", self.client_rtt_ms),
        ] {
            if !(0.0..=10_000.0).contains(&ms) {
                return invalid(format!("{what} {ms} is outside 0..=10000"));
            }
        }
        let mut names = HashSet::new();
        let places: Vec<&dyn Located> = self.places().collect();
        for place in &places {
            let (lat, lon) = place.coordinates();
            if !(-90.0..=90.0).contains(&lat) || !(-180.0..=180.0).contains(&lon) {
                return invalid(format!(
                    "{} has coordinates out of range ({lat}, {lon})",
                    place.name()
                ));
            }
            if place.name().is_empty()
                || !place
                    .name()
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-')
            {
                return invalid(format!(
                    "name {:?} must be letters, digits and '-'",
                    place.name()
                ));
            }
        }
        for pop in &self.pops {
            if !names.insert(format!("pop:{}", pop.name)) {
                return invalid(format!("PoP {} is declared twice", pop.name));
            }
            if self.regional(&pop.regional).is_none() {
                return invalid(format!(
                    "PoP {} names regional tier {:?}, which is not declared",
                    pop.name, pop.regional
                ));
            }
        }
        for regional in &self.regionals {
            if !names.insert(format!("regional:{}", regional.name)) {
                return invalid(format!("regional tier {} is declared twice", regional.name));
            }
            if self.origin(&regional.origin).is_none() {
                return invalid(format!(
                    "regional tier {} names origin {:?}, which is not declared",
                    regional.name, regional.origin
                ));
            }
        }
        self.validate_shields(&mut names)?;
        for origin in &self.origins {
            if !names.insert(format!("origin:{}", origin.name)) {
                return invalid(format!("origin {} is declared twice", origin.name));
            }
            if let Some(faults) = &origin.faults {
                if let Err(problem) = faults.clone().resolve(std::time::SystemTime::UNIX_EPOCH) {
                    return invalid(format!("origin {} faults: {problem}", origin.name));
                }
            }
        }
        if self.pop(&self.default_pop).is_none() {
            return invalid(format!(
                "default_pop {:?} is not a declared PoP",
                self.default_pop
            ));
        }
        for o in &self.rtt_overrides {
            if !(0.0..=10_000.0).contains(&o.ms) {
                return invalid(format!(
                    "rtt {}–{} of {} ms is outside 0..=10000",
                    o.from, o.to, o.ms
                ));
            }
        }
        Ok(())
    }

    /// Each shield's name is new, and it lists declared regional tiers, each of which uses no
    /// other shield.
    fn validate_shields(&self, names: &mut HashSet<String>) -> Result<(), TopologyError> {
        let invalid = |m: String| Err(TopologyError::Invalid(m));
        let mut shielded: HashMap<&str, &str> = HashMap::new();
        for shield in &self.shields {
            if !names.insert(format!("shield:{}", shield.name)) {
                return invalid(format!("shield {} is declared twice", shield.name));
            }
            if shield.regionals.is_empty() {
                return invalid(format!(
                    "shield {} lists no regional tiers (regionals = [\"...\"])",
                    shield.name
                ));
            }
            for regional in &shield.regionals {
                if self.regional(regional).is_none() {
                    return invalid(format!(
                        "shield {} names regional tier {regional:?}, which is not declared",
                        shield.name
                    ));
                }
                if let Some(other) = shielded.insert(regional, &shield.name) {
                    return invalid(format!(
                        "regional tier {regional} is listed by shield {other} and by shield {}; \
                         a regional tier uses at most one shield",
                        shield.name
                    ));
                }
            }
        }
        Ok(())
    }

    pub fn pop(&self, name: &str) -> Option<&Pop> {
        self.pops.iter().find(|p| p.name == name)
    }

    pub fn regional(&self, name: &str) -> Option<&Regional> {
        self.regionals.iter().find(|r| r.name == name)
    }

    pub fn origin(&self, name: &str) -> Option<&OriginSite> {
        self.origins.iter().find(|o| o.name == name)
    }

    /// The shield a regional tier sends its misses to, if any.
    pub fn shield_of(&self, regional: &str) -> Option<&Shield> {
        self.shields
            .iter()
            .find(|s| s.regionals.iter().any(|r| r == regional))
    }

    /// This topology with its shields replaced by one that every regional tier uses, at the
    /// first `[[origin]]`'s place: a CDN puts a shield next to the origin it protects, and the
    /// first origin is the one a file names as primary. `compare --variants shield` runs it.
    pub fn with_one_shield(&self) -> Topology {
        let origin = &self.origins[0];
        let mut topology = self.clone();
        topology.shields = vec![Shield {
            name: origin.name.clone(),
            city: origin.city.clone(),
            lat: origin.lat,
            lon: origin.lon,
            regionals: self.regionals.iter().map(|r| r.name.clone()).collect(),
        }];
        topology
    }

    /// The PoP that serves clients of `country`, else the default PoP.
    pub fn pop_for_country(&self, country: Option<&str>) -> &Pop {
        country
            .and_then(|c| {
                self.pops
                    .iter()
                    .find(|p| p.countries.iter().any(|pc| pc.eq_ignore_ascii_case(c)))
            })
            .or_else(|| self.pop(&self.default_pop))
            .unwrap_or(&self.pops[0])
    }

    /// Round-trip time between two places: an explicit `[[rtt]]` entry, else derived from
    /// great-circle distance.
    pub fn rtt(&self, a: &dyn Located, b: &dyn Located) -> Duration {
        let explicit = self.rtt_overrides.iter().find(|o| {
            (o.from == a.name() && o.to == b.name()) || (o.from == b.name() && o.to == a.name())
        });
        let ms = match explicit {
            Some(o) => o.ms,
            None => {
                let km = great_circle_km(a.coordinates(), b.coordinates());
                (2.0 * km * self.fibre_factor / FIBRE_KM_PER_MS).max(self.rtt_floor_ms)
            }
        };
        Duration::from_secs_f64(ms / 1000.0)
    }

    pub fn client_rtt(&self) -> Duration {
        Duration::from_secs_f64(self.client_rtt_ms / 1000.0)
    }
}

pub use edge_worker::routing::great_circle_km;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proxy_mode_points_every_origin_at_the_url_and_refuses_what_is_not_one() {
        let mut topology = Topology::default_embedded();
        topology.proxy_to("http://127.0.0.1:3000/").unwrap();
        assert!(topology
            .origins
            .iter()
            .all(|o| o.url.as_deref() == Some("http://127.0.0.1:3000")));
        for bad in [
            "127.0.0.1:3000",
            "ftp://x",
            "http://",
            "http://h/?q=1",
            "not a url",
        ] {
            assert!(topology.proxy_to(bad).is_err(), "{bad}");
        }
        let text = DEFAULT_TOPOLOGY.replacen(
            "[[origin]]\nname = \"us-east\"\n",
            "[[origin]]\nname = \"us-east\"\nurl = \"gopher://x\"\n",
            1,
        );
        assert!(
            text.contains("gopher"),
            "the fixture found an origin to edit"
        );
        assert!(matches!(
            Topology::parse(&text),
            Err(TopologyError::Invalid(m)) if m.contains("gopher")
        ));
    }

    struct Place(&'static str, f64, f64);
    impl Located for Place {
        fn name(&self) -> &str {
            self.0
        }
        fn coordinates(&self) -> (f64, f64) {
            (self.1, self.2)
        }
    }

    #[test]
    fn embedded_topology_is_valid() {
        let t = Topology::default_embedded();
        assert_eq!(t.pops.len(), 8);
        assert_eq!(t.pop_for_country(Some("de")).name, "fra");
        assert_eq!(t.pop_for_country(Some("AU")).name, "syd");
        assert_eq!(t.pop_for_country(Some("ZZ")).name, "fra");
        assert_eq!(t.pop_for_country(None).name, "fra");
    }

    #[test]
    fn derived_rtts_match_the_brief() {
        let t = Topology::default_embedded();
        let ms = |a: &Place, b: &Place| t.rtt(a, b).as_secs_f64() * 1000.0;
        let new_york = Place("nyc", 40.71, -74.01);
        let london = Place("lon", 51.51, -0.13);
        let los_angeles = Place("lax", 34.05, -118.24);
        let sydney = Place("syd", -33.87, 151.21);
        assert!(
            (75.0..90.0).contains(&ms(&new_york, &london)),
            "{}",
            ms(&new_york, &london)
        );
        assert!(
            (170.0..190.0).contains(&ms(&los_angeles, &sydney)),
            "{}",
            ms(&los_angeles, &sydney)
        );
        assert_eq!(
            ms(&london, &london),
            0.5,
            "the floor applies in the same place"
        );
    }

    #[test]
    fn explicit_rtt_overrides_distance() {
        let mut t = Topology::default_embedded();
        t.rtt_overrides.push(RttOverride {
            from: "a".into(),
            to: "b".into(),
            ms: 42.0,
        });
        assert_eq!(
            t.rtt(&Place("b", 0.0, 0.0), &Place("a", 50.0, 50.0)),
            Duration::from_millis(42)
        );
    }

    #[test]
    fn origins_may_start_with_a_fault_schedule() {
        let flapping = DEFAULT_TOPOLOGY.replace(
            "name = \"us-east\"\ncity = \"Ashburn\"\nlat = 39.04\nlon = -77.49\nlatency_ms = 20",
            "name = \"us-east\"\ncity = \"Ashburn\"\nlat = 39.04\nlon = -77.49\nlatency_ms = 20\n\
             faults = { flap_period_ms = 2000 }",
        );
        let t = Topology::parse(&flapping).unwrap();
        let faults = t.origin("us-east").unwrap().faults.clone().unwrap();
        assert_eq!(faults.flap_period_ms, Some(2000));
        let broken = flapping.replace("flap_period_ms = 2000", "flap_period_ms = 1");
        let error = Topology::parse(&broken).unwrap_err().to_string();
        assert!(
            error.contains("us-east faults") && error.contains("flap_period_ms"),
            "{error}"
        );
    }

    /// The default topology with `shield` appended before its origins.
    fn with_shield(shield: &str) -> String {
        DEFAULT_TOPOLOGY.replacen("[[origin]]", &format!("{shield}\n[[origin]]"), 1)
    }

    fn shield_error(shield: &str) -> String {
        match Topology::parse(&with_shield(shield)) {
            Err(TopologyError::Invalid(message)) => message,
            other => panic!("{shield}: expected Invalid, got {other:?}"),
        }
    }

    #[test]
    fn shields_are_optional_and_say_which_regional_tiers_use_them() {
        assert!(Topology::default_embedded().shields.is_empty());
        let t = Topology::parse(&with_shield(
            "[[shield]]\nname = \"iad\"\ncity = \"Ashburn\"\nlat = 39.0\nlon = -77.5\n\
             regionals = [\"eu-central\", \"us-east\"]",
        ))
        .unwrap();
        assert_eq!(t.shields.len(), 1);
        assert_eq!(t.shield_of("eu-central").unwrap().name, "iad");
        assert_eq!(t.shield_of("us-east").unwrap().name, "iad");
        assert!(t.shield_of("ap-southeast").is_none());
        // Derived from geography like every place, and overridable by name.
        let shield = &t.shields[0];
        let frankfurt = t.regional("eu-central").unwrap();
        let ms = t.rtt(frankfurt, shield).as_secs_f64() * 1000.0;
        assert!((80.0..110.0).contains(&ms), "Frankfurt–Ashburn {ms}");
        let mut overridden = t.clone();
        overridden.rtt_overrides.push(RttOverride {
            from: "iad".into(),
            to: "eu-central".into(),
            ms: 7.0,
        });
        assert_eq!(
            overridden.rtt(frankfurt, &overridden.shields[0]),
            Duration::from_millis(7)
        );
    }

    #[test]
    fn invalid_shields_say_what_is_wrong() {
        let shield = |name: &str, regionals: &str| {
            format!(
                "[[shield]]\nname = \"{name}\"\ncity = \"X\"\nlat = 1.0\nlon = 2.0\n\
                 regionals = [{regionals}]\n"
            )
        };
        let error = shield_error(&shield("s", "\"nowhere\""));
        assert!(
            error.contains("shield s") && error.contains("\"nowhere\""),
            "{error}"
        );
        let error = shield_error(&shield("s", ""));
        assert!(error.contains("lists no regional tiers"), "{error}");
        let error = shield_error(&format!(
            "{}{}",
            shield("a", "\"us-east\""),
            shield("b", "\"eu-central\", \"us-east\"")
        ));
        assert!(
            error.contains("us-east") && error.contains("at most one shield"),
            "{error}"
        );
        let error = shield_error(&shield("a", "\"us-east\", \"us-east\""));
        assert!(error.contains("at most one shield"), "{error}");
        let error = shield_error(&format!(
            "{}{}",
            shield("a", "\"us-east\""),
            shield("a", "\"eu-central\"")
        ));
        assert!(error.contains("shield a is declared twice"), "{error}");
        let error = shield_error(&shield("no spaces", "\"us-east\""));
        assert!(error.contains("letters, digits"), "{error}");
        let error = shield_error(&shield("s", "\"us-east\"").replace("lat = 1.0", "lat = 91.0"));
        assert!(error.contains("out of range"), "{error}");
        let unknown = with_shield(&format!(
            "{}origin = \"us-east\"\n",
            shield("s", "\"us-east\"")
        ));
        assert!(matches!(
            Topology::parse(&unknown),
            Err(TopologyError::Parse(_))
        ));
    }

    #[test]
    fn the_example_shield_topology_is_the_default_with_one_shield_for_every_tier() {
        let example = Topology::parse(include_str!("../../topologies/shield.toml")).unwrap();
        let built = Topology::default_embedded().with_one_shield();
        assert_eq!(example.shields.len(), 1);
        let (a, b) = (&example.shields[0], &built.shields[0]);
        assert_eq!((&a.name, a.lat, a.lon), (&b.name, b.lat, b.lon));
        assert_eq!(a.regionals, b.regionals);
        assert_eq!(
            example.places().count(),
            Topology::default_embedded().places().count() + 1
        );
        for regional in &built.regionals {
            assert_eq!(built.shield_of(&regional.name).unwrap().name, "us-east");
        }
    }

    #[test]
    fn invalid_files_say_what_is_wrong() {
        let broken = DEFAULT_TOPOLOGY.replace(
            "regional = \"eu-central\"\ncountries = [\"GB\"",
            "regional = \"nowhere\"\ncountries = [\"GB\"",
        );
        let error = Topology::parse(&broken).unwrap_err().to_string();
        assert!(
            error.contains("lhr") && error.contains("nowhere"),
            "{error}"
        );
        let error = Topology::parse("default_pop = 1").unwrap_err().to_string();
        assert!(error.contains("TOML"), "{error}");
    }
}
