//! How a tier reports what it did: Cloudflare's `CF-Cache-Status` and RFC 9211 `Cache-Status`.

use std::fmt;
use std::time::Duration;

use http::{HeaderMap, HeaderValue};

/// Cloudflare's cache status values, with the meanings Cloudflare documents.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CfCacheStatus {
    /// Served from cache, fresh.
    Hit,
    /// Not in cache; fetched and (if allowed) stored.
    Miss,
    /// In cache but stale; fetched anew (upstream sent a full response).
    Expired,
    /// Stale, served because upstream failed (stale-if-error).
    Stale,
    /// Stale, served while a background refresh runs (stale-while-revalidate).
    Updating,
    /// Stale, validated upstream with a 304 and served from cache.
    Revalidated,
    /// Upstream said not to store it (no-store, private, Vary: *, no freshness nor validator).
    Bypass,
    /// The request is not eligible for caching (method).
    Dynamic,
}

impl CfCacheStatus {
    pub const ALL: [Self; 8] = [
        Self::Hit,
        Self::Miss,
        Self::Expired,
        Self::Stale,
        Self::Updating,
        Self::Revalidated,
        Self::Bypass,
        Self::Dynamic,
    ];

    /// Reads a `CF-Cache-Status` value.
    pub fn parse(value: &[u8]) -> Option<Self> {
        Self::ALL
            .into_iter()
            .find(|s| s.as_str().as_bytes() == value)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Hit => "HIT",
            Self::Miss => "MISS",
            Self::Expired => "EXPIRED",
            Self::Stale => "STALE",
            Self::Updating => "UPDATING",
            Self::Revalidated => "REVALIDATED",
            Self::Bypass => "BYPASS",
            Self::Dynamic => "DYNAMIC",
        }
    }
}

/// Why a request went upstream (RFC 9211 §2.2 `fwd`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Forward {
    UriMiss,
    VaryMiss,
    Stale,
    Method,
}

impl Forward {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::UriMiss => "uri-miss",
            Self::VaryMiss => "vary-miss",
            Self::Stale => "stale",
            Self::Method => "method",
        }
    }
}

/// One member of `Cache-Status` (RFC 9211 §2), e.g. `edge-fra; fwd=uri-miss; fwd-status=200; stored`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CacheStatusMember<'a> {
    pub cache: &'a str,
    pub hit: bool,
    pub fwd: Option<Forward>,
    pub fwd_status: Option<u16>,
    /// Remaining freshness in seconds; negative when a stale response was served.
    pub ttl: Option<i64>,
    pub stored: bool,
    pub collapsed: bool,
    pub detail: Option<&'static str>,
}

impl<'a> CacheStatusMember<'a> {
    /// Records what the tier's store decided: `stored`, or a `detail` saying why not (RFC
    /// 9211 §2.7, §2.8) unless the member already carries a detail of its own.
    pub fn record(&mut self, decision: &crate::store::StoreDecision) {
        self.stored = decision.is_stored();
        if self.detail.is_none() {
            self.detail = decision.detail();
        }
    }

    pub fn new(cache: &'a str) -> Self {
        Self {
            cache,
            hit: false,
            fwd: None,
            fwd_status: None,
            ttl: None,
            stored: false,
            collapsed: false,
            detail: None,
        }
    }

    /// Appends this member after any members upstream tiers added, so the list reads from the
    /// cache nearest the origin to the one nearest the client (RFC 9211 §2).
    pub fn append_to(&self, headers: &mut HeaderMap) {
        let member = self.to_string();
        let value = match headers.get("cache-status").and_then(|v| v.to_str().ok()) {
            Some(existing) if !existing.trim().is_empty() => format!("{existing}, {member}"),
            _ => member,
        };
        if let Ok(value) = HeaderValue::from_str(&value) {
            headers.insert("cache-status", value);
        }
    }
}

/// Signed seconds: positive while fresh, negative by how long a response has been stale.
pub fn ttl_seconds(fresh_for: Duration, stale_for: Duration) -> i64 {
    let secs = |d: Duration| i64::try_from(d.as_secs()).unwrap_or(i64::MAX);
    secs(fresh_for) - secs(stale_for)
}

impl fmt::Display for CacheStatusMember<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.cache)?;
        if self.hit {
            f.write_str("; hit")?;
        }
        if let Some(fwd) = self.fwd {
            write!(f, "; fwd={}", fwd.as_str())?;
        }
        if let Some(status) = self.fwd_status {
            write!(f, "; fwd-status={status}")?;
        }
        if let Some(ttl) = self.ttl {
            write!(f, "; ttl={ttl}")?;
        }
        if self.stored {
            f.write_str("; stored")?;
        }
        if self.collapsed {
            f.write_str("; collapsed")?;
        }
        if let Some(detail) = self.detail {
            write!(f, "; detail={detail}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc9211_2_members_are_appended_origin_nearest_first() {
        let mut headers = HeaderMap::new();
        let mut regional = CacheStatusMember::new("regional-eu");
        regional.hit = true;
        regional.ttl = Some(540);
        regional.append_to(&mut headers);
        let mut edge = CacheStatusMember::new("edge-fra");
        edge.fwd = Some(Forward::UriMiss);
        edge.fwd_status = Some(200);
        edge.stored = true;
        edge.append_to(&mut headers);
        assert_eq!(
            headers["cache-status"],
            "regional-eu; hit; ttl=540, edge-fra; fwd=uri-miss; fwd-status=200; stored"
        );
    }

    #[test]
    fn stale_ttl_is_negative() {
        assert_eq!(ttl_seconds(Duration::ZERO, Duration::from_secs(5)), -5);
        assert_eq!(ttl_seconds(Duration::from_secs(7), Duration::ZERO), 7);
    }
}
