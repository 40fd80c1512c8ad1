// Conversions between the core's typed values (hops, freshness records, variant state) and
// the WIT records, for both sides of the boundary: `include!`d by the guest (wit-bindgen types) and the host
// (wasmtime's bindgen types), whose generated names and fields agree. The including module
// must have the WIT `types` in scope, and `WitBody`: how that side holds a WIT body (the
// guest's owned resource, the host's `Resource<Body>`).

pub fn cache_status_from_wit(status: types::CacheStatus) -> edge_worker::CfCacheStatus {
    match status {
        types::CacheStatus::Hit => edge_worker::CfCacheStatus::Hit,
        types::CacheStatus::Miss => edge_worker::CfCacheStatus::Miss,
        types::CacheStatus::Expired => edge_worker::CfCacheStatus::Expired,
        types::CacheStatus::Stale => edge_worker::CfCacheStatus::Stale,
        types::CacheStatus::Updating => edge_worker::CfCacheStatus::Updating,
        types::CacheStatus::Revalidated => edge_worker::CfCacheStatus::Revalidated,
        types::CacheStatus::Bypass => edge_worker::CfCacheStatus::Bypass,
        types::CacheStatus::Dynamic => edge_worker::CfCacheStatus::Dynamic,
    }
}

pub fn cache_status_to_wit(status: edge_worker::CfCacheStatus) -> types::CacheStatus {
    match status {
        edge_worker::CfCacheStatus::Hit => types::CacheStatus::Hit,
        edge_worker::CfCacheStatus::Miss => types::CacheStatus::Miss,
        edge_worker::CfCacheStatus::Expired => types::CacheStatus::Expired,
        edge_worker::CfCacheStatus::Stale => types::CacheStatus::Stale,
        edge_worker::CfCacheStatus::Updating => types::CacheStatus::Updating,
        edge_worker::CfCacheStatus::Revalidated => types::CacheStatus::Revalidated,
        edge_worker::CfCacheStatus::Bypass => types::CacheStatus::Bypass,
        edge_worker::CfCacheStatus::Dynamic => types::CacheStatus::Dynamic,
    }
}

pub fn route_from_wit(route: types::Route) -> edge_worker::routing::RouteChoice {
    edge_worker::routing::RouteChoice {
        origin: route.origin,
        reason: match route.reason {
            types::RouteReason::Rule => edge_worker::routing::Reason::Rule,
            types::RouteReason::Residency => edge_worker::routing::Reason::Residency,
            types::RouteReason::Nearest => edge_worker::routing::Reason::Nearest,
            types::RouteReason::Failover => edge_worker::routing::Reason::Failover,
            types::RouteReason::Default => edge_worker::routing::Reason::Default,
        },
    }
}

fn nanos(d: std::time::Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

fn detail_to_wit(detail: edge_worker::hops::Detail) -> types::Detail {
    use types::Detail as W;
    match detail {
        edge_worker::hops::Detail::StaleWhileRevalidate => W::StaleWhileRevalidate,
        edge_worker::hops::Detail::StaleIfError => W::StaleIfError,
        edge_worker::hops::Detail::UpstreamError => W::UpstreamError,
        edge_worker::hops::Detail::Negative => W::Negative,
        edge_worker::hops::Detail::NotStored(why) => match why {
            edge_worker::store::NotStoredReason::TooLarge => W::TooLarge,
            edge_worker::store::NotStoredReason::SetCookie => W::SetCookie,
            edge_worker::store::NotStoredReason::NotStorable => W::NotStorable,
            edge_worker::store::NotStoredReason::Authorization => W::Authorization,
            edge_worker::store::NotStoredReason::VaryStar => W::VaryStar,
            edge_worker::store::NotStoredReason::TooManyVaryFields => W::TooManyVaryFields,
            edge_worker::store::NotStoredReason::NotReusable => W::NotReusable,
        },
    }
}

fn detail_from_wit(detail: types::Detail) -> edge_worker::hops::Detail {
    use types::Detail as W;
    let not_stored = edge_worker::hops::Detail::NotStored;
    match detail {
        W::StaleWhileRevalidate => edge_worker::hops::Detail::StaleWhileRevalidate,
        W::StaleIfError => edge_worker::hops::Detail::StaleIfError,
        W::UpstreamError => edge_worker::hops::Detail::UpstreamError,
        W::Negative => edge_worker::hops::Detail::Negative,
        W::TooLarge => not_stored(edge_worker::store::NotStoredReason::TooLarge),
        W::SetCookie => not_stored(edge_worker::store::NotStoredReason::SetCookie),
        W::NotStorable => not_stored(edge_worker::store::NotStoredReason::NotStorable),
        W::Authorization => not_stored(edge_worker::store::NotStoredReason::Authorization),
        W::VaryStar => not_stored(edge_worker::store::NotStoredReason::VaryStar),
        W::TooManyVaryFields => not_stored(edge_worker::store::NotStoredReason::TooManyVaryFields),
        W::NotReusable => not_stored(edge_worker::store::NotStoredReason::NotReusable),
    }
}

fn forward_to_wit(fwd: edge_worker::status::Forward) -> types::Forward {
    match fwd {
        edge_worker::status::Forward::UriMiss => types::Forward::UriMiss,
        edge_worker::status::Forward::VaryMiss => types::Forward::VaryMiss,
        edge_worker::status::Forward::Stale => types::Forward::Stale,
        edge_worker::status::Forward::Method => types::Forward::Method,
    }
}

fn forward_from_wit(fwd: types::Forward) -> edge_worker::status::Forward {
    match fwd {
        types::Forward::UriMiss => edge_worker::status::Forward::UriMiss,
        types::Forward::VaryMiss => edge_worker::status::Forward::VaryMiss,
        types::Forward::Stale => edge_worker::status::Forward::Stale,
        types::Forward::Method => edge_worker::status::Forward::Method,
    }
}

fn kind_to_wit(kind: edge_worker::hops::TierKind) -> types::TierKind {
    match kind {
        edge_worker::hops::TierKind::Edge => types::TierKind::Edge,
        edge_worker::hops::TierKind::Regional => types::TierKind::Regional,
        edge_worker::hops::TierKind::Shield => types::TierKind::Shield,
    }
}

fn kind_from_wit(kind: types::TierKind) -> edge_worker::hops::TierKind {
    match kind {
        types::TierKind::Edge => edge_worker::hops::TierKind::Edge,
        types::TierKind::Regional => edge_worker::hops::TierKind::Regional,
        types::TierKind::Shield => edge_worker::hops::TierKind::Shield,
    }
}

pub fn hop_to_wit(hop: edge_worker::hops::Hop) -> types::Hop {
    types::Hop {
        tier: types::TierId {
            kind: kind_to_wit(hop.tier.kind),
            name: hop.tier.name.to_string(),
        },
        private: hop.private,
        cache: hop.cache.map(|c| types::CacheOutcome {
            status: cache_status_to_wit(c.status),
            hit: c.hit,
            fwd: c.fwd.map(forward_to_wit),
            fwd_status: c.fwd_status,
            ttl: c.ttl,
            stored: c.stored,
            collapsed: c.collapsed,
            negative: c.negative,
            detail: c.detail.map(detail_to_wit),
        }),
        spent_ns: hop.spent.map(nanos),
        origin: hop.origin.map(|o| types::OriginTrip {
            name: o.name.to_string(),
            spent_ns: nanos(o.spent),
        }),
        route: hop.route.map(route_to_wit),
        age: hop.age,
        auth_ns: hop.auth.map(nanos),
    }
}

pub fn hop_from_wit(hop: types::Hop) -> edge_worker::hops::Hop {
    edge_worker::hops::Hop {
        tier: edge_worker::hops::TierId::new(kind_from_wit(hop.tier.kind), &hop.tier.name),
        private: hop.private,
        cache: hop.cache.map(|c| edge_worker::hops::CacheOutcome {
            status: cache_status_from_wit(c.status),
            hit: c.hit,
            fwd: c.fwd.map(forward_from_wit),
            fwd_status: c.fwd_status,
            ttl: c.ttl,
            stored: c.stored,
            collapsed: c.collapsed,
            negative: c.negative,
            detail: c.detail.map(detail_from_wit),
        }),
        spent: hop.spent_ns.map(std::time::Duration::from_nanos),
        origin: hop.origin.map(|o| edge_worker::hops::OriginTrip {
            name: std::sync::Arc::from(o.name),
            spent: std::time::Duration::from_nanos(o.spent_ns),
        }),
        route: hop.route.map(route_from_wit),
        age: hop.age,
        auth: hop.auth_ns.map(std::time::Duration::from_nanos),
    }
}

pub fn route_to_wit(route: edge_worker::routing::RouteChoice) -> types::Route {
    types::Route {
        origin: route.origin,
        reason: match route.reason {
            edge_worker::routing::Reason::Rule => types::RouteReason::Rule,
            edge_worker::routing::Reason::Residency => types::RouteReason::Residency,
            edge_worker::routing::Reason::Nearest => types::RouteReason::Nearest,
            edge_worker::routing::Reason::Failover => types::RouteReason::Failover,
            edge_worker::routing::Reason::Default => types::RouteReason::Default,
        },
    }
}


pub fn freshness_to_wit(record: &edge_worker::freshness::FreshnessRecord) -> types::FreshnessRecord {
    types::FreshnessRecord {
        lifetime_secs: record.lifetime.as_secs(),
        initial_age_secs: record.initial_age.as_secs(),
        stale_while_revalidate_secs: record.stale_while_revalidate,
        stale_if_error_secs: record.stale_if_error,
        forbids_stale: record.forbids_stale,
        vary: record.vary.clone(),
    }
}

pub fn freshness_from_wit(
    record: types::FreshnessRecord,
) -> edge_worker::freshness::FreshnessRecord {
    edge_worker::freshness::FreshnessRecord {
        lifetime: std::time::Duration::from_secs(record.lifetime_secs),
        initial_age: std::time::Duration::from_secs(record.initial_age_secs),
        stale_while_revalidate: record.stale_while_revalidate_secs,
        stale_if_error: record.stale_if_error_secs,
        forbids_stale: record.forbids_stale,
        vary: record.vary,
    }
}

pub fn variant_to_wit(state: edge_worker::entry::VariantState) -> types::VariantState {
    types::VariantState {
        miss_length: state.miss_length,
        recode: state.recode,
        used_at_ms: state.used_at.map(|t| {
            t.duration_since(std::time::SystemTime::UNIX_EPOCH)
                .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        }),
    }
}

pub fn variant_from_wit(state: types::VariantState) -> edge_worker::entry::VariantState {
    edge_worker::entry::VariantState {
        miss_length: state.miss_length,
        recode: state.recode,
        used_at: state
            .used_at_ms
            .map(|ms| std::time::SystemTime::UNIX_EPOCH + std::time::Duration::from_millis(ms)),
    }
}

/// A cache entry as the WIT record, with `body` making the stored body's handle.
pub fn entry_to_wit(
    entry: &edge_worker::CacheEntry,
    body: impl FnOnce(&edge_worker::Body) -> WitBody,
) -> types::CacheEntry {
    use edge_worker::CacheEntry;
    match entry {
        CacheEntry::VaryRule(rule) => types::CacheEntry::VaryRule(rule.to_strings()),
        CacheEntry::VerifiedToken(token) => {
            types::CacheEntry::VerifiedToken(types::VerifiedToken {
                typ: token.typ.clone(),
                claims: token.claims.clone(),
            })
        }
        CacheEntry::Response(stored) => types::CacheEntry::Response(types::StoredResponse {
            status: stored.status.as_u16(),
            headers: edge_worker::headers::to_pairs(&stored.headers),
            body: body(&stored.body),
            vary_request_headers: edge_worker::headers::to_pairs(&stored.vary_request_headers),
            response_time_ms: stored
                .response_time
                .duration_since(std::time::SystemTime::UNIX_EPOCH)
                .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX)),
            lifetime: stored.lifetime.map(|l| types::LocalLifetime {
                secs: l.secs,
                negative: l.negative,
            }),
            freshness: stored.record.as_ref().map(freshness_to_wit),
            variant: stored.variant.map(variant_to_wit),
        }),
    }
}

/// A cache entry from its WIT record, with `body` taking the stored body's handle (first,
/// so a handle is consumed even when the rest is refused). `Ok(None)` when its fields are
/// not valid HTTP.
pub fn entry_from_wit<E>(
    entry: types::CacheEntry,
    body: impl FnOnce(WitBody) -> Result<edge_worker::Body, E>,
) -> Result<Option<edge_worker::CacheEntry>, E> {
    use edge_worker::CacheEntry;
    Ok(match entry {
        types::CacheEntry::VaryRule(rule) => Some(CacheEntry::VaryRule(
            edge_worker::vary::VaryRule::from_strings(rule),
        )),
        types::CacheEntry::VerifiedToken(token) => {
            Some(CacheEntry::VerifiedToken(edge_worker::VerifiedToken {
                typ: token.typ,
                claims: token.claims,
            }))
        }
        types::CacheEntry::Response(stored) => {
            let body = body(stored.body)?;
            let headers = |fields| edge_worker::headers::from_pairs(fields).ok();
            (|| {
                Some(CacheEntry::Response(edge_worker::StoredResponse {
                    status: http::StatusCode::from_u16(stored.status).ok()?,
                    headers: headers(stored.headers)?,
                    body,
                    vary_request_headers: headers(stored.vary_request_headers)?,
                    response_time: std::time::SystemTime::UNIX_EPOCH
                        + std::time::Duration::from_millis(stored.response_time_ms),
                    lifetime: stored.lifetime.map(|l| edge_worker::entry::LocalLifetime {
                        secs: l.secs,
                        negative: l.negative,
                    }),
                    record: stored.freshness.map(freshness_from_wit),
                    variant: stored.variant.map(variant_from_wit),
                }))
            })()
        }
    })
}
