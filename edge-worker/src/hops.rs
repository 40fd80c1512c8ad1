//! A request's path as values: one [`Hop`] per cache tier it passed, in the order RFC 9211
//! lists them (the tier nearest the origin first). Each tier appends its hop; the edge writes
//! `Cache-Status` and the path's `Server-Timing` entries from the list once, and the host
//! that measured the client's round trip and the worker's compute puts those two first
//! ([`host_timings`]). Hosts count outcomes, bytes and latencies from the same values, never
//! from the header text.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use http::{HeaderMap, HeaderValue};

use crate::routing::RouteChoice;
use crate::status::{CfCacheStatus, Forward};
use crate::store::NotStoredReason;

/// What kind of cache a tier is: where it sits between clients and origins.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum TierKind {
    /// The PoP that runs the worker, nearest the client.
    Edge,
    /// A regional tier between the PoPs and the origins (or their shield).
    Regional,
    /// An origin shield: one cache in front of the origins that regional tiers share.
    Shield,
}

impl TierKind {
    pub const ALL: [Self; 3] = [Self::Edge, Self::Regional, Self::Shield];

    /// The prefix of its Cache-Status member and its Server-Timing metric name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Edge => "edge",
            Self::Regional => "regional",
            Self::Shield => "shield",
        }
    }
}

/// A tier's identity: its kind and its name within the kind (`fra`, `eu-central`).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct TierId {
    pub kind: TierKind,
    pub name: Arc<str>,
}

impl TierId {
    pub fn new(kind: TierKind, name: &str) -> Self {
        Self {
            kind,
            name: Arc::from(name),
        }
    }

    pub fn edge(name: &str) -> Self {
        Self::new(TierKind::Edge, name)
    }

    pub fn regional(name: &str) -> Self {
        Self::new(TierKind::Regional, name)
    }

    pub fn shield(name: &str) -> Self {
        Self::new(TierKind::Shield, name)
    }
}

/// `edge-fra`: the tier's Cache-Status member name (RFC 9211 §2 names a cache by a token).
impl fmt::Display for TierId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{}", self.kind.as_str(), self.name)
    }
}

/// The RFC 9211 §2.8 `detail` a tier reports: why it did not store a response, or what kind
/// of answer it gave.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Detail {
    /// Served stale while a background refresh runs (RFC 5861 §3).
    StaleWhileRevalidate,
    /// Served stale because upstream failed (RFC 5861 §4).
    StaleIfError,
    /// No usable response came from upstream.
    UpstreamError,
    /// An error kept by negative caching (the cache policy), stored or served.
    Negative,
    /// Not stored, and why.
    NotStored(NotStoredReason),
}

impl Detail {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::StaleWhileRevalidate => "stale-while-revalidate",
            Self::StaleIfError => "stale-if-error",
            Self::UpstreamError => "upstream-error",
            Self::Negative => "negative",
            Self::NotStored(reason) => reason.as_str(),
        }
    }
}

/// What a tier's cache did for one request: the fields of its Cache-Status member
/// (RFC 9211 §2) and Cloudflare's `CF-Cache-Status` value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CacheOutcome {
    pub status: CfCacheStatus,
    pub hit: bool,
    pub fwd: Option<Forward>,
    pub fwd_status: Option<u16>,
    /// Remaining freshness in seconds; negative when a stale response was served.
    pub ttl: Option<i64>,
    pub stored: bool,
    /// Served by another request's fetch (coalescing).
    pub collapsed: bool,
    /// The response is an error kept by negative caching.
    pub negative: bool,
    pub detail: Option<Detail>,
}

impl CacheOutcome {
    pub fn new(status: CfCacheStatus) -> Self {
        Self {
            status,
            hit: false,
            fwd: None,
            fwd_status: None,
            ttl: None,
            stored: false,
            collapsed: false,
            negative: false,
            detail: None,
        }
    }

    /// Records what the tier's store decided: `stored`, or a `detail` saying why not (RFC
    /// 9211 §2.7, §2.8) unless the outcome already carries a detail of its own.
    pub fn record(&mut self, decision: &crate::store::StoreDecision) {
        self.stored = decision.is_stored();
        if self.detail.is_none() {
            self.detail = decision.detail();
        }
    }
}

/// The fetch a tier made from an origin for this response: Server-Timing's `origin` entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OriginTrip {
    /// The origin's name (`eu-west`).
    pub name: Arc<str>,
    /// The round trip and the origin's service time, as the tier waited for them.
    pub spent: Duration,
}

/// One tier a request passed, and what it did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hop {
    pub tier: TierId,
    /// The edge's per-subject private cache answered (member `edge-fra-private`).
    pub private: bool,
    /// What the tier's cache did; `None` for a tier that forwards without caching, or a
    /// request refused before the cache.
    pub cache: Option<CacheOutcome>,
    /// How long the tier below waited for this tier's answer, round trips included
    /// (Server-Timing `regional;dur=`). At the edge: the worker's compute, which only the
    /// host can measure (`None` until it does).
    pub spent: Option<Duration>,
    /// The origin fetch this tier made for the response, when it was the one to fetch.
    pub origin: Option<OriginTrip>,
    /// Geo routing's choice for this request's own upstream answer (the edge decides).
    pub route: Option<RouteChoice>,
    /// The `Age` (seconds) of the response this tier sent: its copy's age when it served one,
    /// else what upstream said.
    pub age: Option<u64>,
    /// The edge's auth gate: how far the platform clock moved while it checked a token.
    pub auth: Option<Duration>,
}

impl Hop {
    pub fn new(tier: TierId) -> Self {
        Self {
            tier,
            private: false,
            cache: None,
            spent: None,
            origin: None,
            route: None,
            age: None,
            auth: None,
        }
    }

    /// The Cache-Status member this hop writes, when its cache acted.
    pub fn member(&self) -> Option<Member<'_>> {
        self.cache.as_ref().map(|cache| Member { hop: self, cache })
    }

    /// Whether this tier answered from its own stored copy (fresh or stale).
    pub fn served_from_cache(&self) -> bool {
        self.cache.as_ref().is_some_and(|c| c.hit)
    }
}

/// One Cache-Status member, e.g. `edge-fra; fwd=uri-miss; fwd-status=200; stored`.
pub struct Member<'a> {
    hop: &'a Hop,
    cache: &'a CacheOutcome,
}

impl fmt::Display for Member<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let cache = self.cache;
        write!(f, "{}", self.hop.tier)?;
        if self.hop.private {
            f.write_str("-private")?;
        }
        if cache.hit {
            f.write_str("; hit")?;
        }
        if let Some(fwd) = cache.fwd {
            write!(f, "; fwd={}", fwd.as_str())?;
        }
        if let Some(status) = cache.fwd_status {
            write!(f, "; fwd-status={status}")?;
        }
        if let Some(ttl) = cache.ttl {
            write!(f, "; ttl={ttl}")?;
        }
        if cache.stored {
            f.write_str("; stored")?;
        }
        if cache.collapsed {
            f.write_str("; collapsed")?;
        }
        if let Some(detail) = cache.detail {
            write!(f, "; detail={}", detail.as_str())?;
        }
        Ok(())
    }
}

/// Writes `Cache-Status` (RFC 9211 §2) from `hops`, origin-nearest first, after any members
/// a cache outside ours put there; and `CF-Cache-Status` from the last hop when `cf` is set.
pub fn write_cache_status(headers: &mut HeaderMap, hops: &[Hop], cf: bool) {
    let mut value = match headers.get("cache-status").and_then(|v| v.to_str().ok()) {
        Some(existing) if !existing.trim().is_empty() => existing.to_string(),
        _ => String::new(),
    };
    for member in hops.iter().filter_map(Hop::member) {
        if !value.is_empty() {
            value.push_str(", ");
        }
        use fmt::Write;
        let _ = write!(value, "{member}");
    }
    if !value.is_empty() {
        if let Ok(value) = HeaderValue::from_str(&value) {
            headers.insert("cache-status", value);
        }
    }
    if let (true, Some(cache)) = (cf, hops.last().and_then(|h| h.cache.as_ref())) {
        headers.insert(
            "cf-cache-status",
            HeaderValue::from_static(cache.status.as_str()),
        );
    }
}

/// One Server-Timing entry (W3C Server Timing): `regional;dur=38.0;desc="eu-central"`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Timing<'a> {
    /// The metric name: a tier kind, `origin`, `route`, `auth`, `client`.
    pub metric: &'static str,
    pub dur: Option<Duration>,
    pub desc: Option<Desc<'a>>,
    /// Decimal places of `dur` in milliseconds.
    pub decimals: usize,
}

/// A Server-Timing `desc`: a name, or a routing decision (`eu-west nearest`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Desc<'a> {
    Name(&'a str),
    Route(&'a RouteChoice),
}

impl Timing<'_> {
    /// `dur` in milliseconds as the header states it (rounded to its decimals), so figures
    /// read from the values equal those a client reads from the header.
    pub fn written_ms(&self) -> Option<f64> {
        let dur = self.dur?;
        format!("{:.*}", self.decimals, dur.as_secs_f64() * 1000.0)
            .parse()
            .ok()
    }
}

impl fmt::Display for Timing<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.metric)?;
        if let Some(dur) = self.dur {
            write!(f, ";dur={:.*}", self.decimals, dur.as_secs_f64() * 1000.0)?;
        }
        match &self.desc {
            Some(Desc::Name(name)) => write!(f, ";desc=\"{name}\""),
            Some(Desc::Route(route)) => {
                write!(f, ";desc=\"{} {}\"", route.origin, route.reason.as_str())
            }
            None => Ok(()),
        }
    }
}

/// The entries for the way upstream that produced a response, client side first: geo
/// routing's choice, each upper tier's trip, the origin's:
/// `route;desc="eu-west nearest", regional;dur=38.0;desc="eu-central", origin;dur=21.0;desc="eu-west"`.
pub fn path_timings(hops: &[Hop]) -> Vec<Timing<'_>> {
    let mut entries = Vec::with_capacity(hops.len() + 1);
    let mut origin = None;
    for hop in hops.iter().rev() {
        if hop.tier.kind == TierKind::Edge {
            if let Some(route) = &hop.route {
                entries.push(Timing {
                    metric: "route",
                    dur: None,
                    desc: Some(Desc::Route(route)),
                    decimals: 1,
                });
            }
        } else if let Some(spent) = hop.spent {
            entries.push(Timing {
                metric: hop.tier.kind.as_str(),
                dur: Some(spent),
                desc: Some(Desc::Name(&hop.tier.name)),
                decimals: 1,
            });
        }
        if hop.origin.is_some() {
            origin = hop.origin.as_ref();
        }
    }
    if let Some(origin) = origin {
        entries.push(Timing {
            metric: "origin",
            dur: Some(origin.spent),
            desc: Some(Desc::Name(&origin.name)),
            decimals: 1,
        });
    }
    entries
}

/// The auth gate's entry: `auth;dur=0.4`.
pub fn auth_timing(spent: Duration) -> Timing<'static> {
    Timing {
        metric: "auth",
        dur: Some(spent),
        desc: None,
        decimals: 1,
    }
}

/// The entries only the host running the worker can measure: the client's round trip and
/// the worker's own compute at the edge (`client;dur=5.0, edge;dur=0.05;desc="fra"`).
pub fn host_timings(client: Duration, edge: Duration, pop: &str) -> [Timing<'_>; 2] {
    [
        Timing {
            metric: "client",
            dur: Some(client),
            desc: None,
            decimals: 1,
        },
        Timing {
            metric: "edge",
            dur: Some(edge),
            desc: Some(Desc::Name(pop)),
            decimals: 2,
        },
    ]
}

/// Puts `entries` first in the response's Server-Timing, before any already there (tiers
/// nearer the origin, or an origin that is not ours).
pub fn prepend_timings(headers: &mut HeaderMap, entries: &[Timing<'_>]) {
    if entries.is_empty() {
        return;
    }
    let text = entries
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(", ");
    crate::headers::prepend_server_timing(headers, &text);
}

/// The hop of the tier nearest the client that served from its own copy, if any: where the
/// response's bytes came from.
pub fn served_by(hops: &[Hop]) -> Option<&Hop> {
    hops.iter().rev().find(|h| h.served_from_cache())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::routing::Reason;

    fn hop(tier: TierId, cache: CacheOutcome) -> Hop {
        Hop {
            cache: Some(cache),
            ..Hop::new(tier)
        }
    }

    #[test]
    fn rfc9211_2_members_are_written_origin_nearest_first() {
        let mut regional = CacheOutcome::new(CfCacheStatus::Hit);
        regional.hit = true;
        regional.ttl = Some(540);
        let mut edge = CacheOutcome::new(CfCacheStatus::Miss);
        edge.fwd = Some(Forward::UriMiss);
        edge.fwd_status = Some(200);
        edge.stored = true;
        let hops = [
            hop(TierId::regional("eu"), regional),
            hop(TierId::edge("fra"), edge),
        ];
        let mut headers = HeaderMap::new();
        write_cache_status(&mut headers, &hops, true);
        assert_eq!(
            headers["cache-status"],
            "regional-eu; hit; ttl=540, edge-fra; fwd=uri-miss; fwd-status=200; stored"
        );
        assert_eq!(headers["cf-cache-status"], "MISS");
    }

    #[test]
    fn members_follow_a_foreign_cache_and_a_pass_through_tier_writes_none() {
        let mut headers = HeaderMap::new();
        headers.insert("cache-status", HeaderValue::from_static("OriginCache; hit"));
        let mut edge = CacheOutcome::new(CfCacheStatus::Hit);
        edge.hit = true;
        edge.detail = Some(Detail::NotStored(NotStoredReason::SetCookie));
        let hops = [
            Hop::new(TierId::regional("eu")),
            Hop {
                private: true,
                ..hop(TierId::edge("fra"), edge)
            },
        ];
        write_cache_status(&mut headers, &hops, false);
        assert_eq!(
            headers["cache-status"],
            "OriginCache; hit, edge-fra-private; hit; detail=set-cookie"
        );
        assert!(!headers.contains_key("cf-cache-status"));
    }

    #[test]
    fn server_timing_reads_from_the_client_to_the_origin() {
        let regional = Hop {
            spent: Some(Duration::from_millis(38)),
            ..Hop::new(TierId::regional("eu-central"))
        };
        let shield = Hop {
            spent: Some(Duration::from_micros(12_340)),
            origin: Some(OriginTrip {
                name: Arc::from("eu-west"),
                spent: Duration::from_millis(21),
            }),
            ..Hop::new(TierId::shield("fra"))
        };
        let route = RouteChoice {
            origin: "eu-west".into(),
            reason: Reason::Nearest,
        };
        let edge = Hop {
            route: Some(route),
            ..Hop::new(TierId::edge("fra"))
        };
        let hops = [shield, regional, edge];
        let mut headers = HeaderMap::new();
        headers.insert("server-timing", HeaderValue::from_static("db;dur=3"));
        prepend_timings(&mut headers, &path_timings(&hops));
        prepend_timings(&mut headers, &[auth_timing(Duration::ZERO)]);
        let host = host_timings(Duration::from_millis(5), Duration::from_micros(52), "fra");
        prepend_timings(&mut headers, &host);
        assert_eq!(
            headers["server-timing"],
            "client;dur=5.0, edge;dur=0.05;desc=\"fra\", auth;dur=0.0, \
             route;desc=\"eu-west nearest\", regional;dur=38.0;desc=\"eu-central\", \
             shield;dur=12.3;desc=\"fra\", origin;dur=21.0;desc=\"eu-west\", db;dur=3"
        );
        let written: Vec<_> = path_timings(&hops)
            .iter()
            .map(|t| (t.metric, t.written_ms()))
            .collect();
        assert_eq!(
            written,
            [
                ("route", None),
                ("regional", Some(38.0)),
                ("shield", Some(12.3)),
                ("origin", Some(21.0))
            ]
        );
    }

    #[test]
    fn the_served_tier_is_the_nearest_hit() {
        let mut hit = CacheOutcome::new(CfCacheStatus::Hit);
        hit.hit = true;
        let hops = [
            hop(TierId::regional("eu"), hit),
            hop(TierId::edge("fra"), CacheOutcome::new(CfCacheStatus::Miss)),
        ];
        assert_eq!(
            served_by(&hops).map(|h| h.tier.kind),
            Some(TierKind::Regional)
        );
        assert!(served_by(&hops[1..]).is_none());
    }
}
