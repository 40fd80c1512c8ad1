//! Edge composition: a response whose origin marks it as a template (`Surrogate-Control:
//! content="ESI/1.0"` for HTML, `content="EDGE-JSON/1.0"` for JSON) is filled with fragments,
//! each fetched through the same cache and tiers under its own key, freshness and privacy.
//!
//! This module holds what composition decides from values: whether a response is a template,
//! its includes, where each may go, and the composed head (freshness no longer than the
//! shortest part's, `private` when any part is, an ETag from the parts' validators). The
//! fetching is the worker's (`worker.rs`), since a fragment runs the worker's own pipeline.

pub mod esi;
pub mod json;
pub mod vars;

use std::time::Duration;

use http::header::{self, HeaderMap, HeaderValue};
use http::Uri;
use serde::Deserialize;

use crate::conditional::EntityTag;
use crate::config::ConfigError;

/// The `Surrogate-Control` field (Edge Architecture Specification 1.0) that marks templates.
pub const SURROGATE_CONTROL: &str = "surrogate-control";
/// Most bytes of a template the edge parses.
pub const MAX_TEMPLATE_BYTES: usize = 1024 * 1024;

/// The `[composition]` table of the cache policy, with its documented defaults.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CompositionConfig {
    /// Compose templates at all (on: a template is only one when its origin marks it so).
    pub enabled: bool,
    /// Hosts includes may name besides the template's own.
    pub allow_hosts: Vec<String>,
    /// Templates inside fragments, counted from the page (the page is depth 0).
    pub max_depth: usize,
    /// Includes one template may hold.
    pub max_includes: usize,
    /// Largest fragment body.
    pub max_fragment_bytes: usize,
    /// A fragment that took longer than this (on the platform's clock) counts as failed.
    pub fragment_timeout_ms: u64,
}

impl Default for CompositionConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            allow_hosts: Vec::new(),
            max_depth: 3,
            max_includes: 32,
            max_fragment_bytes: 256 * 1024,
            fragment_timeout_ms: 5_000,
        }
    }
}

/// Hard ceilings on what a policy may set.
pub const MAX_DEPTH: usize = 8;
pub const MAX_INCLUDES: usize = 128;
pub const MAX_ALLOWED_HOSTS: usize = 64;

/// A checked `[composition]`.
#[derive(Debug, Clone, PartialEq)]
pub struct CompositionRules {
    pub enabled: bool,
    allow_hosts: Vec<String>,
    pub max_depth: usize,
    pub max_includes: usize,
    pub max_fragment_bytes: usize,
    pub fragment_timeout: Duration,
}

impl Default for CompositionRules {
    fn default() -> Self {
        CompositionConfig::default()
            .build()
            .expect("the defaults check")
    }
}

impl CompositionConfig {
    pub fn build(self) -> Result<CompositionRules, ConfigError> {
        let problem = |what: String| Err(ConfigError::CachePolicy(format!("[composition] {what}")));
        if self.max_depth == 0 || self.max_depth > MAX_DEPTH {
            return problem(format!("max_depth must be within 1..={MAX_DEPTH}"));
        }
        if self.max_includes == 0 || self.max_includes > MAX_INCLUDES {
            return problem(format!("max_includes must be within 1..={MAX_INCLUDES}"));
        }
        if self.max_fragment_bytes == 0 || self.max_fragment_bytes > MAX_TEMPLATE_BYTES {
            return problem(format!(
                "max_fragment_bytes must be within 1..={MAX_TEMPLATE_BYTES}"
            ));
        }
        if self.fragment_timeout_ms == 0 || self.fragment_timeout_ms > 60_000 {
            return problem("fragment_timeout_ms must be within 1..=60000".into());
        }
        if self.allow_hosts.len() > MAX_ALLOWED_HOSTS {
            return problem(format!(
                "allow_hosts holds at most {MAX_ALLOWED_HOSTS} hosts"
            ));
        }
        Ok(CompositionRules {
            enabled: self.enabled,
            allow_hosts: self
                .allow_hosts
                .into_iter()
                .map(|h| h.to_ascii_lowercase())
                .collect(),
            max_depth: self.max_depth,
            max_includes: self.max_includes,
            max_fragment_bytes: self.max_fragment_bytes,
            fragment_timeout: Duration::from_millis(self.fragment_timeout_ms),
        })
    }
}

/// Why a page could not be composed: the client gets a 502 with this as its message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ComposeError {
    #[error("the template is malformed at byte {at}: {why}")]
    Malformed { at: usize, why: String },
    #[error("the JSON template does not parse: {0}")]
    Json(String),
    #[error("the template is larger than {limit} bytes")]
    TemplateTooLarge { limit: usize },
    #[error("the template has more than {limit} includes")]
    TooManyIncludes { limit: usize },
    #[error("fragments nest deeper than {limit} levels")]
    TooDeep { limit: usize },
    #[error("{src} includes itself (through {chain})")]
    Loop { src: String, chain: String },
    #[error(
        "{src} names a host the configuration does not allow (add it to [composition] allow_hosts)"
    )]
    Forbidden { src: String },
    #[error("fragment {src} failed: {why}")]
    Fragment { src: String, why: String },
}

/// What kind of template a response is, from its origin's `Surrogate-Control`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TemplateKind {
    Esi,
    Json,
}

/// The template kind `Surrogate-Control` asks for: `content="ESI/1.0"` or
/// `content="EDGE-JSON/1.0"`, among other directives and capability tokens.
pub fn template_kind(headers: &HeaderMap) -> Option<TemplateKind> {
    headers
        .get_all(SURROGATE_CONTROL)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|directive| {
            let (name, value) = directive.trim().split_once('=')?;
            name.trim()
                .eq_ignore_ascii_case("content")
                .then(|| value.trim().trim_matches('"').to_string())
        })
        .flat_map(|value| {
            value
                .split_ascii_whitespace()
                .map(str::to_ascii_uppercase)
                .collect::<Vec<_>>()
        })
        .find_map(|token| match token.as_str() {
            "ESI/1.0" => Some(TemplateKind::Esi),
            "EDGE-JSON/1.0" => Some(TemplateKind::Json),
            _ => None,
        })
}

impl CompositionRules {
    /// The absolute URL of an include's `src` on `page`, if it may be fetched: the page's own
    /// host, or a host in `allow_hosts`. Relative references resolve against the page.
    pub fn fragment_url(&self, page: &Uri, src: &str) -> Result<Uri, ComposeError> {
        let forbidden = || ComposeError::Forbidden {
            src: src.to_string(),
        };
        let bad = |why: &str| ComposeError::Fragment {
            src: src.to_string(),
            why: why.to_string(),
        };
        let scheme = page.scheme_str().unwrap_or("https");
        let authority = page.authority().map(|a| a.as_str()).unwrap_or_default();
        let absolute = if let Some(path) = src.strip_prefix('/').filter(|p| !p.starts_with('/')) {
            format!("{scheme}://{authority}/{path}")
        } else if src.starts_with("http://") || src.starts_with("https://") {
            src.to_string()
        } else if src.starts_with("//") {
            format!("{scheme}:{src}")
        } else {
            // A path relative to the page's directory.
            let dir = page.path().rsplit_once('/').map_or("", |(dir, _)| dir);
            format!("{scheme}://{authority}{dir}/{src}")
        };
        let uri: Uri = absolute.parse().map_err(|_| bad("not a URL"))?;
        let host = uri
            .host()
            .ok_or_else(|| bad("no host"))?
            .to_ascii_lowercase();
        let own = page.host().is_some_and(|h| h.eq_ignore_ascii_case(&host))
            && uri.port_u16() == page.port_u16();
        if !own && !self.allow_hosts.contains(&host) {
            return Err(forbidden());
        }
        Ok(uri)
    }
}

/// One part of a composed response as the tiers served it, in values.
#[derive(Debug, Clone, PartialEq)]
pub struct PartHead {
    /// Remaining freshness in seconds at the edge (`None`: not stored, so none).
    pub ttl: Option<i64>,
    /// From the per-subject private cache, or marked `private` by its origin.
    pub private: bool,
    pub etag: Option<EntityTag>,
}

/// The head of a composed response, from its template's and its parts' values: the
/// template's fields without those composition changes (`Surrogate-Control`, lengths,
/// validators, `Age`), and a `Cache-Control` no looser than any part's.
pub fn composed_head(template: &HeaderMap, parts: &[PartHead]) -> HeaderMap {
    let mut headers = template.clone();
    for name in [
        header::CONTENT_LENGTH,
        header::ETAG,
        header::LAST_MODIFIED,
        header::AGE,
        header::EXPIRES,
        header::CACHE_CONTROL,
        header::SET_COOKIE,
    ] {
        headers.remove(name);
    }
    headers.remove(SURROGATE_CONTROL);
    headers.remove("cdn-cache-control");
    let ttl = parts
        .iter()
        .map(|p| p.ttl.unwrap_or(0).max(0))
        .min()
        .unwrap_or(0);
    let private = parts.iter().any(|p| p.private);
    let mut directives = vec![if private { "private" } else { "public" }.to_string()];
    if ttl == 0 {
        directives.push("no-cache".into());
    } else {
        directives.push(format!("max-age={ttl}"));
    }
    if let Ok(value) = HeaderValue::from_str(&directives.join(", ")) {
        headers.insert(header::CACHE_CONTROL, value);
    }
    if let Some(etag) = composed_etag(parts) {
        if let Ok(value) = HeaderValue::from_str(&etag) {
            headers.insert(header::ETAG, value);
        }
    }
    headers
}

/// An entity tag for the composed bytes: a hash of every part's tag in order, strong only
/// when each part's is. `None` when a part has no validator (nothing could tell a change).
pub fn composed_etag(parts: &[PartHead]) -> Option<String> {
    let mut hasher = xxhash_rust::xxh3::Xxh3::new();
    let mut weak = false;
    for part in parts {
        let tag = part.etag.as_ref()?;
        weak |= tag.weak;
        hasher.update(&(tag.tag.len() as u64).to_le_bytes());
        hasher.update(tag.tag.as_bytes());
    }
    let digest = hasher.digest128();
    Some(format!(
        "{}\"c{digest:032x}\"",
        if weak { "W/" } else { "" }
    ))
}

#[cfg(test)]
mod tests;
