//! The bound the replayed stream itself sets, for any workload (generated, default, trace):
//! an infinite cache at each location that keeps every object for exactly as long as its
//! origin allowed, replayed over the same requests. Its misses are the ones no cache of this
//! topology could avoid: the first request for an object at a location, a request after the
//! origin's TTL ran out, the first request after a purge, and requests for what may not be
//! stored. The closed forms (`theory`) need a generated workload's rates; this needs none.
//!
//! Why no cache beats it: a cache's copy is fresh for at most TTL after its own request for
//! it (RFC 9111 §4.2.3 counts the response delay into the age), so the fetches a location
//! makes cover its requests with intervals of length TTL starting at request times, and the
//! greedy covering (fetch at the first uncovered request) uses the fewest such intervals.
//! Stale-while-revalidate serves the request but still fetches, so it changes the hit ratio
//! bound (a stale answer is a hit), not the fetch count. A tier above the edge sees its
//! requests one or two round trips after the client sent them, so its copies are allowed
//! that much longer (`Layout::top_slack_s`).
//!
//! Beside the bound, the measured misses are explained by cause: a shadow of each location's
//! actual copies (filled when the run fetched, with the Age the response carried) says
//! whether a copy should still have been there (then it was evicted, or its TTL jittered),
//! had run out of the origin's TTL, or ran out early because it arrived already aged from
//! the tier above.

use std::collections::{BTreeMap, HashMap, HashSet};

use crate::sim::report::{Bounded, GapBreakdown, GapCause, StreamBound};

/// How long caches may keep an object, as its origin sent it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Life {
    /// Freshness lifetime, seconds (shared-cache view: `s-maxage` over `max-age`).
    pub fresh_s: f64,
    /// `stale-while-revalidate`, seconds: served stale while one request refreshes.
    pub stale_s: f64,
}

/// What caches may do with an object.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Storability {
    /// Shared caches (every tier) may keep it.
    pub shared: Option<Life>,
    /// Only the edge's per-subject private cache may keep it, for a signed-in request.
    pub private: Option<Life>,
}

/// What the edge did with one client request in the run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EdgeResult {
    Hit,
    /// Served stale: while revalidating (refreshed in the background) or because upstream
    /// failed (stale-if-error).
    Stale {
        if_error: bool,
    },
    /// Stale, validated upstream with a 304.
    Revalidated,
    /// Waited for another request's fetch.
    Collapsed,
    /// Fetched upstream (miss, expired, bypass, dynamic).
    Fetched,
    /// No response from the worker.
    Failed,
}

impl EdgeResult {
    fn is_hit(self) -> bool {
        matches!(self, Self::Hit | Self::Stale { .. })
    }
}

/// One client request of the replay, warm-up included (it fills caches too).
#[derive(Debug, Clone, PartialEq)]
pub struct ClientRead {
    pub at_s: f64,
    /// Index into `Layout::pops`.
    pub pop: usize,
    /// Index into the object table (path and query as the caches key it, `?fields=` off).
    pub key: usize,
    /// Sent with a verified token (the edge's private cache may answer it).
    pub signed_in: bool,
    /// GET or HEAD: a cache may answer it at all.
    pub cacheable_method: bool,
    /// Body bytes the client received.
    pub bytes: u64,
    pub edge: EdgeResult,
    /// The response's Age, seconds: how old the copy the edge received already was.
    pub age_s: f64,
    pub measured: bool,
}

/// A purge, when it reached the caches.
#[derive(Debug, Clone, PartialEq)]
pub struct Invalidation {
    pub at_s: f64,
    /// Objects it reaches.
    pub keys: Vec<usize>,
    pub soft: bool,
}

/// One origin fetch of the run.
#[derive(Debug, Clone, PartialEq)]
pub struct Fetch {
    pub at_s: f64,
    /// Index into `Layout::tops`: the tier that fetched.
    pub location: usize,
    pub key: usize,
    /// The origin answered 304.
    pub not_modified: bool,
    /// No response (timeout, refused, broken).
    pub failed: bool,
    pub measured: bool,
}

/// Where caches are and what they are allowed.
#[derive(Debug, Clone, PartialEq)]
pub struct Layout {
    /// PoP cache names ("edge-fra").
    pub pops: Vec<String>,
    /// For each PoP, the location that fetches from the origin for it (index into `tops`).
    pub top_of_pop: Vec<usize>,
    /// Tier names that fetch from origins ("regional-eu", or "shield-us" above them).
    pub tops: Vec<String>,
    /// How much later than the client a top tier may send its request, seconds.
    pub top_slack_s: f64,
    /// Whether tiers above the edge cache (false: an edge-only CDN).
    pub tiers_cache: bool,
    /// Edge caches have a byte capacity (evictions are expected).
    pub edge_capacity: bool,
    /// The cache policy jitters TTLs (copies may expire before the origin's TTL).
    pub ttl_jitter: bool,
}

/// The run's measured figures the bound stands beside.
#[derive(Debug, Clone, PartialEq)]
pub struct Measured {
    pub edge_hit_ratio: f64,
    pub offload_requests: f64,
    pub offload_bytes: f64,
    /// Edge hit ratio per PoP, by cache name.
    pub by_pop: BTreeMap<String, f64>,
}

/// Why a location could not answer a request itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Cause {
    First,
    Expired,
    ExpiredEarly,
    Evicted,
    Jittered,
    Invalidated,
    NotCacheable,
    Revalidated,
    Coalesced,
    Other,
}

impl Cause {
    const ALL: [Cause; 10] = [
        Cause::First,
        Cause::Expired,
        Cause::ExpiredEarly,
        Cause::Evicted,
        Cause::Jittered,
        Cause::Invalidated,
        Cause::NotCacheable,
        Cause::Revalidated,
        Cause::Coalesced,
        Cause::Other,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Cause::First => "first request",
            Cause::Expired => "ttl expired",
            Cause::ExpiredEarly => "ttl expired early (age carried down)",
            Cause::Evicted => "evicted for capacity",
            Cause::Jittered => "ttl shortened by jitter",
            Cause::Invalidated => "invalidated",
            Cause::NotCacheable => "not cacheable",
            Cause::Revalidated => "revalidated (304)",
            Cause::Coalesced => "coalesced",
            Cause::Other => "other",
        }
    }
}

/// What the infinite cache did with a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Answer {
    Hit,
    /// Served stale and refreshed: a hit for the client, a fetch upstream.
    StaleHit(Cause),
    Miss(Cause),
}

impl Answer {
    fn is_hit(self) -> bool {
        !matches!(self, Answer::Miss(_))
    }

    fn fetches(self) -> Option<Cause> {
        match self {
            Answer::Hit => None,
            Answer::StaleHit(cause) | Answer::Miss(cause) => Some(cause),
        }
    }
}

#[derive(Debug, Clone, Copy)]
struct Copy {
    fresh_until: f64,
    servable_until: f64,
    stale_s: f64,
    soft_purged: bool,
}

/// A cache that never evicts: copies leave only by a purge, and go stale by their TTL.
#[derive(Default)]
struct InfiniteCache {
    copies: HashMap<usize, Copy>,
    purged: HashSet<usize>,
}

impl InfiniteCache {
    fn request(&mut self, key: usize, at_s: f64, life: Life, slack_s: f64) -> Answer {
        let answer = match self.copies.get(&key) {
            None if self.purged.remove(&key) => Answer::Miss(Cause::Invalidated),
            None => Answer::Miss(Cause::First),
            Some(copy) => {
                let cause = if copy.soft_purged {
                    Cause::Invalidated
                } else {
                    Cause::Expired
                };
                if at_s < copy.fresh_until {
                    return Answer::Hit;
                } else if at_s < copy.servable_until {
                    Answer::StaleHit(cause)
                } else {
                    Answer::Miss(cause)
                }
            }
        };
        self.copies.insert(
            key,
            Copy {
                fresh_until: at_s + life.fresh_s + slack_s,
                servable_until: at_s + life.fresh_s + life.stale_s + slack_s,
                stale_s: life.stale_s,
                soft_purged: false,
            },
        );
        answer
    }

    fn purge(&mut self, key: usize, at_s: f64, soft: bool) {
        if soft {
            if let Some(copy) = self.copies.get_mut(&key) {
                copy.fresh_until = copy.fresh_until.min(at_s);
                copy.servable_until = copy.servable_until.min(at_s + copy.stale_s);
                copy.soft_purged = true;
            }
        } else if self.copies.remove(&key).is_some() {
            self.purged.insert(key);
        }
    }
}

/// A location's actual copies as the run made them, to say why it missed.
#[derive(Default)]
struct Shadow {
    /// Key → (full-TTL end, Age-shortened end), both with the stale window.
    copies: HashMap<usize, (f64, f64)>,
    purged: HashSet<usize>,
}

impl Shadow {
    /// Why a request at `at_s` for `key` was not answered from the location's copy, given
    /// what caches may keep; `otherwise`: the cause when the copy should still have been there.
    fn why(&mut self, key: usize, at_s: f64, otherwise: Cause) -> Cause {
        match self.copies.get(&key) {
            None if self.purged.remove(&key) => Cause::Invalidated,
            None => Cause::First,
            Some(&(full, aged)) => {
                if at_s >= full {
                    Cause::Expired
                } else if at_s >= aged {
                    Cause::ExpiredEarly
                } else {
                    otherwise
                }
            }
        }
    }

    fn fill(&mut self, key: usize, at_s: f64, life: Life, age_s: f64) {
        let full = at_s + life.fresh_s + life.stale_s;
        self.copies.insert(key, (full, full - age_s.max(0.0)));
    }

    fn purge(&mut self, key: usize) {
        if self.copies.remove(&key).is_some() {
            self.purged.insert(key);
        }
    }
}

/// Counts per cause, measured and in the bound.
#[derive(Default)]
struct Tally {
    measured: BTreeMap<Cause, u64>,
    bound: BTreeMap<Cause, u64>,
}

impl Tally {
    fn breakdown(&self, level: &str) -> GapBreakdown {
        let causes = Cause::ALL
            .iter()
            .filter_map(|cause| {
                let measured = self.measured.get(cause).copied().unwrap_or(0);
                let bound = self.bound.get(cause).copied().unwrap_or(0);
                (measured + bound > 0).then(|| GapCause {
                    cause: cause.name().to_string(),
                    measured,
                    bound,
                })
            })
            .collect();
        GapBreakdown {
            level: level.to_string(),
            measured: self.measured.values().sum(),
            bound: self.bound.values().sum(),
            causes,
        }
    }
}

/// One event of the merged timeline.
enum Event<'a> {
    Purge(&'a Invalidation),
    Fetch(&'a Fetch),
    Read(&'a ClientRead),
}

/// The bound and the gap breakdown for one run. `objects[key]` says what caches may do with
/// each object; reads, purges and fetches may come in any order.
pub fn compute(
    layout: &Layout,
    objects: &[Storability],
    reads: &[ClientRead],
    purges: &[Invalidation],
    fetches: &[Fetch],
    measured: &Measured,
) -> StreamBound {
    let storability = |key: usize| objects.get(key).copied().unwrap_or_default();
    // Purges before fetches before reads at the same instant: a purge that lands with a
    // request reaches it, and a fetch sent at a read's instant was sent for an earlier one.
    let mut events: Vec<(f64, u8, Event)> = Vec::new();
    events.extend(purges.iter().map(|p| (p.at_s, 0, Event::Purge(p))));
    events.extend(fetches.iter().map(|f| (f.at_s, 1, Event::Fetch(f))));
    events.extend(reads.iter().map(|r| (r.at_s, 2, Event::Read(r))));
    events.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));

    let mut edge_bound: Vec<InfiniteCache> =
        layout.pops.iter().map(|_| Default::default()).collect();
    let mut top_bound: Vec<InfiniteCache> =
        layout.tops.iter().map(|_| Default::default()).collect();
    let mut global = InfiniteCache::default();
    let mut edge_shadow: Vec<Shadow> = layout.pops.iter().map(|_| Default::default()).collect();
    let mut top_shadow: Vec<Shadow> = layout.tops.iter().map(|_| Default::default()).collect();
    let mut edge = Tally::default();
    let mut origin = Tally::default();
    let (mut reads_measured, mut bytes_measured) = (0u64, 0u64);
    let (mut origin_bound, mut global_origin, mut origin_bytes_bound) = (0u64, 0u64, 0u64);
    let mut pop_requests = vec![0u64; layout.pops.len()];
    let mut pop_hits = vec![0u64; layout.pops.len()];
    let mut pop_bound_misses = vec![0u64; layout.pops.len()];
    let edge_otherwise = if layout.edge_capacity {
        Cause::Evicted
    } else if layout.ttl_jitter {
        Cause::Jittered
    } else {
        Cause::Other
    };
    let top_otherwise = if layout.ttl_jitter {
        Cause::Jittered
    } else {
        Cause::Evicted
    };

    for (_, _, event) in &events {
        match event {
            Event::Purge(purge) => {
                for &key in &purge.keys {
                    let caches = edge_bound.iter_mut().chain(top_bound.iter_mut());
                    for cache in caches.chain(std::iter::once(&mut global)) {
                        cache.purge(key, purge.at_s, purge.soft);
                    }
                    for shadow in edge_shadow.iter_mut().chain(top_shadow.iter_mut()) {
                        shadow.purge(key);
                    }
                }
            }
            Event::Fetch(fetch) => {
                let Some(shadow) = top_shadow.get_mut(fetch.location) else {
                    continue;
                };
                let shared = storability(fetch.key).shared;
                let cause = match shared {
                    _ if fetch.failed => Cause::Other,
                    None => Cause::NotCacheable,
                    Some(_) if fetch.not_modified => Cause::Revalidated,
                    Some(_) => shadow.why(fetch.key, fetch.at_s, top_otherwise),
                };
                if let Some(life) = shared {
                    shadow.fill(fetch.key, fetch.at_s, life, 0.0);
                }
                if fetch.measured && layout.tiers_cache {
                    *origin.measured.entry(cause).or_default() += 1;
                }
            }
            Event::Read(read) => {
                let objects = storability(read.key);
                let pop = read.pop.min(layout.pops.len().saturating_sub(1));
                let life = if !read.cacheable_method {
                    None
                } else {
                    objects.shared.map(|l| (l, false)).or(objects
                        .private
                        .filter(|_| read.signed_in)
                        .map(|l| (l, true)))
                };
                // The bound.
                let edge_answer = match life {
                    // The run answered it stale because upstream failed: a cache holding a
                    // copy would have too, so the bound does not count it against itself.
                    _ if read.edge == EdgeResult::Stale { if_error: true } => Answer::Hit,
                    None => Answer::Miss(Cause::NotCacheable),
                    Some((life, _)) => edge_bound[pop].request(read.key, read.at_s, life, 0.0),
                };
                let (top_answer, global_answer) = match life {
                    Some((life, false)) if layout.tiers_cache => {
                        let top = layout.top_of_pop.get(pop).copied().unwrap_or(0);
                        let slack = layout.top_slack_s;
                        (
                            top_bound[top].request(read.key, read.at_s, life, slack),
                            global.request(read.key, read.at_s, life, slack),
                        )
                    }
                    // An edge-only CDN has no tier: the edge's fetches are the origin's.
                    _ if !layout.tiers_cache => (edge_answer, edge_answer),
                    // Private copies live only at the edge; what a shared tier may not keep
                    // reaches the origin whenever the edge asks.
                    _ => {
                        let upstream = match edge_answer {
                            Answer::Hit | Answer::StaleHit(_) => edge_answer,
                            Answer::Miss(_) => Answer::Miss(Cause::NotCacheable),
                        };
                        (upstream, upstream)
                    }
                };
                // The run, explained.
                let measured_cause = match (read.edge, life) {
                    (EdgeResult::Hit | EdgeResult::Stale { .. }, _) => None,
                    (EdgeResult::Failed, _) => Some(Cause::Other),
                    (EdgeResult::Collapsed, _) => Some(Cause::Coalesced),
                    (_, None) => Some(Cause::NotCacheable),
                    (EdgeResult::Revalidated, _) => Some(Cause::Revalidated),
                    (EdgeResult::Fetched, Some(_)) => {
                        Some(edge_shadow[pop].why(read.key, read.at_s, edge_otherwise))
                    }
                };
                if let Some((life, _)) = life {
                    match read.edge {
                        EdgeResult::Fetched | EdgeResult::Revalidated | EdgeResult::Collapsed => {
                            edge_shadow[pop].fill(read.key, read.at_s, life, read.age_s);
                        }
                        // The background refresh brings a copy as fresh as the tier above's.
                        EdgeResult::Stale { if_error: false } => {
                            edge_shadow[pop].fill(read.key, read.at_s, life, 0.0);
                        }
                        _ => {}
                    }
                }
                if !read.measured {
                    continue;
                }
                reads_measured += 1;
                bytes_measured += read.bytes;
                pop_requests[pop] += 1;
                if read.edge.is_hit() {
                    pop_hits[pop] += 1;
                }
                if let Some(cause) = measured_cause {
                    *edge.measured.entry(cause).or_default() += 1;
                }
                if let Answer::Miss(cause) = edge_answer {
                    *edge.bound.entry(cause).or_default() += 1;
                    pop_bound_misses[pop] += 1;
                }
                if let Some(cause) = top_answer.fetches() {
                    origin_bound += 1;
                    *origin.bound.entry(cause).or_default() += 1;
                }
                if global_answer.fetches().is_some() {
                    global_origin += 1;
                }
                // Bytes came from an origin only when neither the edge nor the tier had it.
                if !edge_answer.is_hit() && !top_answer.is_hit() {
                    origin_bytes_bound += read.bytes;
                }
            }
        }
    }

    let ratio = |part: u64, whole: u64| {
        if whole == 0 {
            0.0
        } else {
            1.0 - part as f64 / whole as f64
        }
    };
    let edge_bound_misses: u64 = edge.bound.values().sum();
    let by_pop = layout
        .pops
        .iter()
        .enumerate()
        .filter(|(i, _)| pop_requests[*i] > 0)
        .map(|(i, name)| {
            (
                name.clone(),
                Bounded {
                    measured: round(
                        measured
                            .by_pop
                            .get(name)
                            .copied()
                            .unwrap_or(pop_hits[i] as f64 / pop_requests[i] as f64),
                    ),
                    bound: round(ratio(pop_bound_misses[i], pop_requests[i])),
                },
            )
        })
        .collect();
    let mut gap = vec![edge.breakdown("edge")];
    if layout.tiers_cache {
        gap.push(origin.breakdown("origin"));
    }
    StreamBound {
        edge_hit_ratio: Bounded {
            measured: round(measured.edge_hit_ratio),
            bound: round(ratio(edge_bound_misses, reads_measured)),
        },
        offload_requests: Bounded {
            measured: round(measured.offload_requests),
            bound: round(ratio(origin_bound, reads_measured)),
        },
        offload_bytes: Bounded {
            measured: round(measured.offload_bytes),
            bound: round(ratio(origin_bytes_bound, bytes_measured)),
        },
        global_offload_requests: round(ratio(global_origin, reads_measured)),
        by_pop,
        gap,
    }
}

/// Six significant digits, as the rest of the report.
fn round(x: f64) -> f64 {
    super::engine::round(x)
}

/// What caches may do with the object one origin response describes, judged as the tiers
/// judge it: RFC 9213's `CDN-Cache-Control` view, RFC 9111 storability and freshness for a
/// shared cache (the same `http-cache-semantics` options the core uses), the edge's private
/// cache for `private` responses, and the cache policy's negative caching.
pub fn storability_of(
    request: &http::request::Parts,
    status: http::StatusCode,
    headers: &http::HeaderMap,
    rules: Option<&edge_worker::cache_policy::CacheRules>,
) -> Storability {
    use http_cache_semantics::{CacheOptions, CachePolicy};
    let view = edge_worker::cache_view::effective(headers);
    let mut response = http::Response::new(());
    *response.status_mut() = status;
    *response.headers_mut() = view.clone().into_owned();
    // Judged at the response's own Date (or the virtual epoch): no time has passed.
    let now = headers
        .get(http::header::DATE)
        .and_then(|d| d.to_str().ok())
        .and_then(|d| httpdate::parse_http_date(d).ok())
        .unwrap_or(std::time::SystemTime::UNIX_EPOCH + super::engine::VIRTUAL_EPOCH);
    let judge = |options: CacheOptions| {
        let policy = CachePolicy::new_options(request, &response, now, options);
        policy
            .is_storable()
            .then(|| policy.time_to_live(now).as_secs_f64())
    };
    let stale_s = edge_worker::cache_control::CacheControl::from_headers(&view)
        .seconds("stale-while-revalidate")
        .unwrap_or(0) as f64;
    let shared_options = edge_worker::entry::cache_options();
    let negative = rules
        .and_then(|r| r.route(request.uri.path()))
        .and_then(|route| route.negative_lifetime(status, &view));
    let shared = match (judge(shared_options), negative) {
        (Some(_), Some(ttl)) => Some(Life {
            fresh_s: ttl.as_secs_f64(),
            stale_s: 0.0,
        }),
        (Some(fresh_s), None) => Some(Life { fresh_s, stale_s }),
        (None, _) => None,
    };
    let private = judge(CacheOptions {
        shared: false,
        ..shared_options
    })
    .filter(|_| shared.is_none())
    .map(|fresh_s| Life {
        fresh_s,
        stale_s: 0.0,
    });
    Storability { shared, private }
}

/// The path and query caches key a request URL by: `?fields=` taken off (the edge projects
/// from the full object), the query normalised. `None` for a URL no cache could key.
pub fn object_path(uri: &http::Uri) -> Option<String> {
    let (uri, _) = edge_worker::fields::take_from_uri(uri).ok()?;
    let absolute: http::Uri = if uri.scheme().is_some() {
        uri
    } else {
        format!("http://sim.edge.example{uri}").parse().ok()?
    };
    let key = edge_worker::CacheKey::from_uri(&absolute).ok()?;
    edge_worker::purge::slot_path(key.as_str()).map(str::to_string)
}
