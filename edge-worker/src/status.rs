//! The values a tier reports what it did with: Cloudflare's `CF-Cache-Status`, RFC 9211's
//! `fwd` and `ttl` (the members themselves are written from hops, `hops.rs`).

use std::time::Duration;

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

/// Signed seconds: positive while fresh, negative by how long a response has been stale.
pub fn ttl_seconds(fresh_for: Duration, stale_for: Duration) -> i64 {
    let secs = |d: Duration| i64::try_from(d.as_secs()).unwrap_or(i64::MAX);
    secs(fresh_for) - secs(stale_for)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stale_ttl_is_negative() {
        assert_eq!(ttl_seconds(Duration::ZERO, Duration::from_secs(5)), -5);
        assert_eq!(ttl_seconds(Duration::from_secs(7), Duration::ZERO), 7);
    }
}
