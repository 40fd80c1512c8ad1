//! Sticky A/B variants decided at the edge: `[[experiments]]` in the cache policy document.
//!
//! - **Who is assigned.** The verified token's subject when there is one, else the value of the
//!   [`COOKIE`] the edge sets on a visitor's first response (128 bits from
//!   [`Platform::random`]). A unit is assigned by a stable hash of (experiment, variant, unit),
//!   so the same subject gets the same variant at every PoP, on every isolate, and on
//!   Cloudflare as in the emulator: nothing is stored, nothing is random.
//! - **How.** Weighted rendezvous hashing (Schindelhauer and Schomaker's logarithmic method):
//!   each variant scores `-ln(u) / weight` with `u` uniform in (0, 1) from the hash, and the
//!   lowest score wins. Each variant then gets its weight's share of units, and changing one
//!   weight moves only the units whose winner changes: raising a variant's weight moves units
//!   *into* it and nowhere else, lowering it moves units *out of* it only, adding a variant
//!   takes its share from every other in proportion. No unit moves between two variants whose
//!   weights did not change. `ln` is `libm`'s, so wasm and native builds compute the same bits.
//! - **Where it goes.** The assignments travel upstream as one request field, [`REQUEST_HEADER`]
//!   (`checkout=b, hero=a`, an RFC 8941 dictionary of tokens), which is also part of the cache
//!   key at every tier (`CacheKey::for_request`): each variant is cached once for everybody in
//!   it, with no `Vary: Cookie`. A client's own copy of the field is dropped.
//! - **Testing a variant.** [`FORCE_HEADER`] (`x-edge-force-variant: checkout=b`) picks a
//!   declared variant for one request; the exposure is counted as forced.

use std::sync::Arc;

use http::header::{HeaderMap, HeaderName, HeaderValue};
use serde::Deserialize;

use crate::config::ConfigError;
use crate::Platform;

/// The request field that carries a request's assignments to upstream and into the cache key.
pub const REQUEST_HEADER: HeaderName = HeaderName::from_static("x-edge-experiment");
/// The request field that forces a variant, for testing.
pub const FORCE_HEADER: HeaderName = HeaderName::from_static("x-edge-force-variant");
/// The cookie that keeps an anonymous visitor's assignments sticky.
pub const COOKIE: &str = "edge_uid";
/// How long the cookie lives: a year, as experiment platforms' visitor ids do.
pub const COOKIE_MAX_AGE_SECS: u64 = 365 * 24 * 3600;

/// Most experiments a policy may declare (each adds a hash per variant to matching requests).
pub const MAX_EXPERIMENTS: usize = 16;
/// Most variants per experiment.
pub const MAX_VARIANTS: usize = 8;
/// Longest experiment or variant name.
pub const MAX_NAME_LEN: usize = 32;
/// Largest weight; weights are relative, so this only bounds the arithmetic.
pub const MAX_WEIGHT: u32 = 1_000_000;
/// Longest [`REQUEST_HEADER`] a tier keys on (16 experiments × two 32-byte names fit).
pub const MAX_FIELD_LEN: usize = 1200;
/// Longest cookie value taken as a visitor id; anything else is replaced by a new one.
const MAX_UNIT_LEN: usize = 64;

/// One `[[experiments]]` entry as written.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExperimentConfig {
    /// A lower-case name (`[a-z][a-z0-9_-]*`): the key in [`REQUEST_HEADER`].
    pub name: String,
    /// A path pattern as in the auth routes (`*` matches any run of characters).
    pub path: String,
    pub variants: Vec<VariantConfig>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VariantConfig {
    /// A lower-case name, as for experiments.
    pub name: String,
    /// A relative share (1 ..= 1,000,000); 0 keeps a variant reachable only by forcing it.
    pub weight: u32,
}

/// The checked experiments.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Experiments {
    list: Vec<Experiment>,
}

#[derive(Debug, Clone, PartialEq)]
struct Experiment {
    name: Arc<str>,
    path: String,
    variants: Vec<(Arc<str>, u32)>,
}

/// One request's exposure to one experiment: what the host counts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Exposure {
    pub experiment: Arc<str>,
    pub variant: Arc<str>,
    /// Chosen by [`FORCE_HEADER`], not by the hash.
    pub forced: bool,
}

/// Who a request is assigned as: its subject (`sub:…`), else a visitor id (`cookie:…`).
/// A page's unit travels to its fragments, so a fragment on a public route is assigned as
/// the signed-in page that included it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unit {
    key: String,
    /// A visitor id made for this request: the page's response sets it as [`COOKIE`] when
    /// any of its parts was exposed.
    minted: Option<String>,
}

impl Unit {
    fn subject(subject: &str) -> Self {
        Self {
            key: format!("sub:{subject}"),
            minted: None,
        }
    }

    fn visitor(id: &str) -> Self {
        Self {
            key: format!("cookie:{id}"),
            minted: None,
        }
    }

    fn mint<P: Platform>(p: &P) -> Self {
        let id = format!("{:016x}{:016x}", p.random(), p.random());
        Self {
            key: format!("cookie:{id}"),
            minted: Some(id),
        }
    }

    /// The visitor id made for this request, if it had neither subject nor cookie.
    pub fn minted(&self) -> Option<&str> {
        self.minted.as_deref()
    }

    /// The `Set-Cookie` that keeps a minted id (`None` when nothing was minted).
    pub fn set_cookie(&self) -> Option<HeaderValue> {
        self.minted.as_deref().map(cookie_for)
    }
}

/// What [`Experiments::apply`] decided for one request.
#[derive(Debug)]
pub struct Assigned {
    pub exposures: Vec<Exposure>,
    /// Who the request was assigned as, for its fragments.
    pub unit: Unit,
}

fn check_name(what: &str, name: &str) -> Result<(), ConfigError> {
    let mut bytes = name.bytes();
    let ok = name.len() <= MAX_NAME_LEN
        && bytes.next().is_some_and(|b| b.is_ascii_lowercase())
        && bytes.all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-');
    if ok {
        Ok(())
    } else {
        Err(ConfigError::CachePolicy(format!(
            "{what} {name:?}: a name is 1..={MAX_NAME_LEN} characters of a-z, 0-9, _ and -, \
             starting with a letter"
        )))
    }
}

impl Experiments {
    pub fn build(configs: Vec<ExperimentConfig>) -> Result<Self, ConfigError> {
        if configs.len() > MAX_EXPERIMENTS {
            return Err(ConfigError::CachePolicy(format!(
                "too many experiments (limit {MAX_EXPERIMENTS})"
            )));
        }
        let mut list: Vec<Experiment> = Vec::new();
        for config in configs {
            check_name("experiment", &config.name)?;
            let problem = |what: String| {
                ConfigError::CachePolicy(format!("experiment {:?}: {what}", config.name))
            };
            if list.iter().any(|e| *e.name == *config.name) {
                return Err(problem("declared twice".into()));
            }
            if config.variants.len() < 2 || config.variants.len() > MAX_VARIANTS {
                return Err(problem(format!("needs 2..={MAX_VARIANTS} variants")));
            }
            let mut variants: Vec<(Arc<str>, u32)> = Vec::new();
            for variant in &config.variants {
                check_name("variant", &variant.name)?;
                if variant.weight > MAX_WEIGHT {
                    return Err(problem(format!("weights are at most {MAX_WEIGHT}")));
                }
                if variants.iter().any(|(name, _)| **name == *variant.name) {
                    return Err(problem(format!(
                        "variant {:?} declared twice",
                        variant.name
                    )));
                }
                variants.push((variant.name.as_str().into(), variant.weight));
            }
            if variants.iter().all(|(_, weight)| *weight == 0) {
                return Err(problem("every weight is 0".into()));
            }
            // Kept in name order, so a request's exposures (and its field) come out sorted.
            let at = list.partition_point(|e| *e.name < *config.name);
            list.insert(
                at,
                Experiment {
                    name: config.name.as_str().into(),
                    path: config.path,
                    variants,
                },
            );
        }
        Ok(Self { list })
    }

    pub fn is_empty(&self) -> bool {
        self.list.is_empty()
    }

    /// The variant of `experiment` that `unit` is in, by the hash alone (`None`: no such
    /// experiment).
    pub fn variant_of(&self, experiment: &str, unit: &str) -> Option<&str> {
        let found = self.list.iter().find(|e| &*e.name == experiment)?;
        Some(&found.choose(unit).0)
    }

    /// Assigns the request to every experiment its path is in and writes [`REQUEST_HEADER`]
    /// for upstream. The unit is the request's own subject, else `inherited` (the including
    /// page's, for a fragment), else its visitor cookie, else a new visitor id.
    pub fn apply<P: Platform>(
        &self,
        p: &P,
        subject: Option<&str>,
        inherited: Option<Unit>,
        path: &str,
        headers: &mut HeaderMap,
    ) -> Assigned {
        // Only the edge assigns: a client's copy would choose its own cache slot.
        headers.remove(REQUEST_HEADER);
        let forced = headers.remove(FORCE_HEADER);
        let unit = match subject {
            Some(subject) => Unit::subject(subject),
            None => inherited
                .or_else(|| visitor_id(headers).map(|id| Unit::visitor(&id)))
                .unwrap_or_else(|| Unit::mint(p)),
        };
        let path = crate::auth::config::normalise(path);
        let matching: Vec<&Experiment> = self
            .list
            .iter()
            .filter(|e| crate::auth::config::glob(&e.path, &path))
            .collect();
        if matching.is_empty() {
            return Assigned {
                exposures: Vec::new(),
                unit,
            };
        }
        let forced = forced.as_ref().map(forced_variants).unwrap_or_default();
        let exposures: Vec<Exposure> = matching
            .into_iter()
            .map(|experiment| {
                let chosen = forced
                    .iter()
                    .find(|(name, _)| *name == *experiment.name)
                    .and_then(|(_, wanted)| {
                        experiment.variants.iter().find(|(v, _)| **v == **wanted)
                    });
                let forced = chosen.is_some();
                let (variant, _) = chosen.unwrap_or_else(|| experiment.choose(&unit.key));
                Exposure {
                    experiment: experiment.name.clone(),
                    variant: variant.clone(),
                    forced,
                }
            })
            .collect();
        let field = exposures
            .iter()
            .map(|e| format!("{}={}", e.experiment, e.variant))
            .collect::<Vec<_>>()
            .join(", ");
        // Names are checked as RFC 8941 keys and tokens, so the field is always valid.
        if let Ok(value) = HeaderValue::from_str(&field) {
            headers.insert(REQUEST_HEADER, value);
        }
        Assigned { exposures, unit }
    }
}

impl Experiment {
    fn choose(&self, unit: &str) -> &(Arc<str>, u32) {
        let mut best: Option<(f64, &(Arc<str>, u32))> = None;
        for variant in &self.variants {
            if variant.1 == 0 {
                continue;
            }
            let mut hasher = xxhash_rust::xxh3::Xxh3::new();
            for part in [self.name.as_bytes(), variant.0.as_bytes(), unit.as_bytes()] {
                hasher.update(&(part.len() as u64).to_le_bytes());
                hasher.update(part);
            }
            // The top 53 bits, offset by half a step: uniform in (0, 1), never 0.
            let u = ((hasher.digest() >> 11) as f64 + 0.5) / (1u64 << 53) as f64;
            let score = -libm::log(u) / f64::from(variant.1);
            if best.is_none_or(|(lowest, _)| score < lowest) {
                best = Some((score, variant));
            }
        }
        best.map(|(_, v)| v)
            .expect("build refuses all-zero weights")
    }
}

/// `name=variant` members of a [`FORCE_HEADER`] (an RFC 8941 dictionary); others are ignored.
fn forced_variants(value: &HeaderValue) -> Vec<(String, String)> {
    let Ok(dictionary) = sfv::Parser::new(value.as_bytes()).parse::<sfv::Dictionary>() else {
        return Vec::new();
    };
    dictionary
        .into_iter()
        .take(MAX_EXPERIMENTS)
        .filter_map(|(name, entry)| match entry {
            sfv::ListEntry::Item(sfv::Item {
                bare_item: sfv::BareItem::Token(token),
                ..
            }) => Some((name.as_str().to_string(), token.as_str().to_string())),
            _ => None,
        })
        .collect()
}

/// The visitor id from the request's cookies, when it is one the edge could have set.
fn visitor_id(headers: &HeaderMap) -> Option<String> {
    crate::cookies::get(headers, COOKIE)
        .filter(|id| {
            !id.is_empty() && id.len() <= MAX_UNIT_LEN && id.bytes().all(|b| b.is_ascii_hexdigit())
        })
        .map(str::to_string)
}

/// The visitor cookie: a year, first-party, not readable by scripts (RFC 6265 §4.1).
fn cookie_for(id: &str) -> HeaderValue {
    let cookie = format!(
        "{COOKIE}={id}; Path=/; Max-Age={COOKIE_MAX_AGE_SECS}; HttpOnly; Secure; SameSite=Lax"
    );
    HeaderValue::from_str(&cookie).expect("hex id and fixed attributes")
}

#[cfg(test)]
mod tests;
