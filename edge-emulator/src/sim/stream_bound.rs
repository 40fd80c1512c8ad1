//! The bound the replayed stream itself sets, for any workload (generated, default, trace):
//! an infinite cache at each location that keeps every object for exactly as long as its
//! origin allowed, replayed over the same requests. Its misses are the ones no cache of this
//! topology could avoid: the first request for an object at a location, a request after the
//! origin's TTL ran out, the first request after a purge, and requests for what may not be
//! stored. The closed forms (`theory`) need a generated workload's rates; this needs none.
//!
//! Why no cache beats it: a copy is fresh for at most TTL after the origin made the response
//! (its `Date`; RFC 9111 §4.2.3 never makes it younger), and the origin made it at most one
//! path's length (client, tiers, origin round trips, plus the origin's own time) after the
//! client's request. So the fetches a location makes cover its requests with intervals of
//! length TTL + that slack starting at request times, and the greedy covering (fetch at the
//! first uncovered request) uses the fewest such intervals. Stale-while-revalidate serves the
//! request but still fetches, so it changes the hit-ratio bound (a stale answer is a hit),
//! not the fetch count. The slack (`Layout::slack_s`) matters only for TTLs of a few seconds.
//!
//! Beside the bound, the measured misses are explained by cause: a shadow of each location's
//! actual copies (filled when the run fetched, with the Age the response carried) says
//! whether a copy should still have been there (then it was evicted, or its TTL jittered),
//! had run out of the origin's TTL, or ran out early because it arrived already aged from
//! the tier above.

use std::collections::{BTreeMap, HashMap, HashSet};

use crate::sim::report::{Bounded, GapBreakdown, GapCause, StreamBound};
use crate::sim::units::{round, VIRTUAL_EPOCH};

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
    /// The worker answered without its cache or upstream (a refused token, bad input, a
    /// redirect): neither a hit nor an origin request, in the run and in the bound.
    Answered,
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
    /// Its body came from an origin fetch (no cache on the way had it).
    pub from_origin: bool,
    pub measured: bool,
}

/// A purge, or a successful unsafe request's invalidation (RFC 9111 §4.4), when it reached
/// the caches.
#[derive(Debug, Clone, PartialEq)]
pub struct Invalidation {
    pub at_s: f64,
    /// Objects it reaches.
    pub keys: Vec<usize>,
    pub soft: bool,
    /// `None`: a purge, which reaches every cache. `Some(pop)`: an unsafe request that came in
    /// at that PoP (index into `Layout::pops`), which invalidates only the caches it passed:
    /// the PoP's edge, the tier above it, and the one global cache.
    pub on_path_of: Option<usize>,
}

/// One origin fetch of the run.
#[derive(Debug, Clone, PartialEq)]
pub struct Fetch {
    pub at_s: f64,
    /// Index into `Layout::tops`: the tier that fetched.
    pub location: usize,
    pub key: usize,
    /// Which origin host the tier keyed it under (index into the run's hosts): routing may
    /// send the same path to several origins, and a tier keys each copy by its URL.
    pub host: usize,
    /// The origin answered 304.
    pub not_modified: bool,
    /// No response (timeout, refused, broken).
    pub failed: bool,
    /// A GET (the tiers fetch HEADs as GETs): anything else passed through, never stored.
    pub cacheable_method: bool,
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
    /// How much later than the client's request the origin may make the response a copy's
    /// freshness counts from, seconds.
    pub slack_s: f64,
    /// How far apart two clients' requests may be and still reach a top tier in the other
    /// order (the spread of the PoPs' paths to it), seconds.
    pub reorder_s: f64,
    /// Whether tiers above the edge cache (false: an edge-only CDN).
    pub tiers_cache: bool,
    /// Edge caches have a byte capacity (evictions are expected).
    pub edge_capacity: bool,
    /// The cache policy jitters TTLs (copies may expire before the origin's TTL).
    pub ttl_jitter: bool,
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
    Coalesced,
    OtherOrigin,
    Answered,
    Other,
}

impl Cause {
    const ALL: [Cause; 11] = [
        Cause::First,
        Cause::Expired,
        Cause::ExpiredEarly,
        Cause::Evicted,
        Cause::Jittered,
        Cause::Invalidated,
        Cause::NotCacheable,
        Cause::Coalesced,
        Cause::OtherOrigin,
        Cause::Answered,
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
            Cause::Coalesced => "coalesced",
            Cause::OtherOrigin => "held under another origin's url",
            Cause::Answered => "answered by the worker",
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
    /// Key → per origin host it was keyed under: (the end of the copy's life by the
    /// origin's TTL, the same shortened by the Age it arrived with).
    copies: HashMap<usize, Vec<(usize, f64, f64)>>,
    purged: HashSet<usize>,
}

impl Shadow {
    /// Why a request at `at_s` for `key` (keyed under `host`) was not answered from the
    /// location's copy; `otherwise`: the cause when the copy should still have been there.
    fn why(&mut self, key: usize, host: usize, at_s: f64, otherwise: Cause) -> Cause {
        let copies = self.copies.get(&key).map_or(&[][..], Vec::as_slice);
        match copies.iter().find(|c| c.0 == host) {
            Some(&(_, full, _)) if at_s >= full => Cause::Expired,
            Some(&(_, _, aged)) if at_s >= aged => Cause::ExpiredEarly,
            Some(_) => otherwise,
            None if copies.iter().any(|c| at_s < c.2) => Cause::OtherOrigin,
            None if self.purged.remove(&key) => Cause::Invalidated,
            None if !copies.is_empty() => Cause::Expired,
            None => Cause::First,
        }
    }

    /// A copy from `at_s` that lives `lifetime_s` by the origin's TTL, `age_s` less here.
    fn fill(&mut self, key: usize, host: usize, at_s: f64, lifetime_s: f64, age_s: f64) {
        let end = at_s + lifetime_s;
        let copy = (host, end, end - age_s.max(0.0));
        let copies = self.copies.entry(key).or_default();
        match copies.iter_mut().find(|c| c.0 == host) {
            Some(slot) => *slot = copy,
            None => copies.push(copy),
        }
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
    /// Measured ones a 304 answered (their cause is still why the copy did not serve).
    revalidated: u64,
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
            revalidated: self.revalidated,
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
/// each object; reads, purges and fetches may come in any order. The measured figures beside
/// the bounds are counted from the same reads and fetches (the report's tier rows count from
/// the caches' counters, which can differ by the requests in flight when warm-up ended).
pub fn compute(
    layout: &Layout,
    objects: &[Storability],
    reads: &[ClientRead],
    purges: &[Invalidation],
    fetches: &[Fetch],
) -> StreamBound {
    let storability = |key: usize| objects.get(key).copied().unwrap_or_default();
    // Purges before fetches before reads at the same instant: a purge that lands with a
    // request reaches it, and a fetch sent at a read's instant was sent for an earlier one.
    // A layout without a tier above the edge is an edge-only CDN, whatever it says.
    let tiers_cache = layout.tiers_cache && !layout.tops.is_empty();
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
    let (mut fetches_measured, mut origin_bytes_measured) = (0u64, 0u64);
    let (mut origin_bound, mut global_origin, mut origin_bytes_bound) = (0u64, 0u64, 0u64);
    let mut pop_requests = vec![0u64; layout.pops.len()];
    let mut pop_hits = vec![0u64; layout.pops.len()];
    let mut pop_bound_misses = vec![0u64; layout.pops.len()];
    // (top, key) → (end of the window, fewest bytes a candidate got): see below.
    let mut windows: HashMap<(usize, usize), (f64, Option<u64>)> = HashMap::new();
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
                // The caches an unsafe request passed: its PoP's edge and the tier above.
                let path = purge.on_path_of.and_then(|pop| {
                    let top = layout.top_of_pop.get(pop).copied().unwrap_or(0);
                    (pop < edge_bound.len())
                        .then_some((pop, top.min(top_bound.len().saturating_sub(1))))
                });
                if purge.on_path_of.is_some() && path.is_none() {
                    continue;
                }
                for &key in &purge.keys {
                    match path {
                        None => {
                            let caches = edge_bound.iter_mut().chain(top_bound.iter_mut());
                            for cache in caches {
                                cache.purge(key, purge.at_s, purge.soft);
                            }
                            for shadow in edge_shadow.iter_mut().chain(top_shadow.iter_mut()) {
                                shadow.purge(key);
                            }
                        }
                        Some((pop, top)) => {
                            edge_bound[pop].purge(key, purge.at_s, purge.soft);
                            edge_shadow[pop].purge(key);
                            if let (Some(cache), Some(shadow)) =
                                (top_bound.get_mut(top), top_shadow.get_mut(top))
                            {
                                cache.purge(key, purge.at_s, purge.soft);
                                shadow.purge(key);
                            }
                        }
                    }
                    global.purge(key, purge.at_s, purge.soft);
                }
            }
            Event::Fetch(fetch) => {
                let Some(shadow) = top_shadow.get_mut(fetch.location) else {
                    continue;
                };
                let shared = storability(fetch.key)
                    .shared
                    .filter(|_| fetch.cacheable_method);
                let cause = match shared {
                    _ if fetch.failed => Cause::Other,
                    None => Cause::NotCacheable,
                    Some(_) => shadow.why(fetch.key, fetch.host, fetch.at_s, top_otherwise),
                };
                // A tier fetches again once the copy is no longer fresh (a refresh within
                // stale-while-revalidate is a fetch too).
                if let Some(life) = shared {
                    shadow.fill(fetch.key, fetch.host, fetch.at_s, life.fresh_s, 0.0);
                }
                if fetch.measured {
                    fetches_measured += 1;
                    if tiers_cache {
                        *origin.measured.entry(cause).or_default() += 1;
                        origin.revalidated += u64::from(fetch.not_modified);
                    }
                }
            }
            // Reads need a PoP to land at; a layout without one has nothing to bound.
            Event::Read(_) if layout.pops.is_empty() => {}
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
                    _ if read.edge == EdgeResult::Answered => Answer::Miss(Cause::Answered),
                    // The run answered it stale because upstream failed: a cache holding a
                    // copy would have too, so the bound does not count it against itself.
                    _ if read.edge == EdgeResult::Stale { if_error: true } => Answer::Hit,
                    None => Answer::Miss(Cause::NotCacheable),
                    Some((life, _)) => {
                        edge_bound[pop].request(read.key, read.at_s, life, layout.slack_s)
                    }
                };
                let (top_answer, global_answer) = match life {
                    // Nothing went upstream: no fetch anywhere.
                    _ if read.edge == EdgeResult::Answered => (Answer::Hit, Answer::Hit),
                    Some((life, false)) if tiers_cache => {
                        let top = layout.top_of_pop.get(pop).copied().unwrap_or(0);
                        let top = top.min(top_bound.len() - 1);
                        let slack = layout.slack_s;
                        (
                            top_bound[top].request(read.key, read.at_s, life, slack),
                            global.request(read.key, read.at_s, life, slack),
                        )
                    }
                    // An edge-only CDN has no tier: the edge's fetches are the origin's.
                    _ if !tiers_cache => (edge_answer, edge_answer),
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
                    (EdgeResult::Answered, _) => Some(Cause::Answered),
                    (EdgeResult::Collapsed, _) => Some(Cause::Coalesced),
                    (_, None) => Some(Cause::NotCacheable),
                    (EdgeResult::Fetched | EdgeResult::Revalidated, Some(_)) => {
                        Some(edge_shadow[pop].why(read.key, 0, read.at_s, edge_otherwise))
                    }
                };
                // The edge answers from a copy until it can no longer serve it, stale included.
                if let Some((life, _)) = life {
                    let lifetime_s = life.fresh_s + life.stale_s;
                    let shadow = &mut edge_shadow[pop];
                    match read.edge {
                        EdgeResult::Fetched | EdgeResult::Revalidated | EdgeResult::Collapsed => {
                            shadow.fill(read.key, 0, read.at_s, lifetime_s, read.age_s);
                        }
                        // The background refresh brings a copy as fresh as the tier above's.
                        EdgeResult::Stale { if_error: false } => {
                            shadow.fill(read.key, 0, read.at_s, lifetime_s, 0.0);
                        }
                        _ => {}
                    }
                }
                if !read.measured {
                    continue;
                }
                reads_measured += 1;
                bytes_measured += read.bytes;
                if read.from_origin {
                    origin_bytes_measured += read.bytes;
                }
                pop_requests[pop] += 1;
                if read.edge.is_hit() {
                    pop_hits[pop] += 1;
                }
                if let Some(cause) = measured_cause {
                    *edge.measured.entry(cause).or_default() += 1;
                    edge.revalidated += u64::from(read.edge == EdgeResult::Revalidated);
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
                // Bytes came from an origin only when neither the edge nor the tier had it. Which
                // of several near-simultaneous clients' requests reaches the tier first depends
                // on their paths, so the fetch is charged the fewest bytes any of them got.
                let window_key = (layout.top_of_pop.get(pop).copied().unwrap_or(0), read.key);
                let edge_missed = !edge_answer.is_hit() && read.edge != EdgeResult::Answered;
                if matches!(top_answer, Answer::Miss(_)) {
                    if let Some(done) = windows.remove(&window_key) {
                        origin_bytes_bound += done.1.unwrap_or(0);
                    }
                    let bytes = edge_missed.then_some(read.bytes);
                    windows.insert(window_key, (read.at_s + layout.reorder_s, bytes));
                } else if let Some(window) = windows.get_mut(&window_key) {
                    if edge_missed && read.at_s <= window.0 {
                        window.1 = Some(window.1.map_or(read.bytes, |b| b.min(read.bytes)));
                    }
                }
            }
        }
    }

    origin_bytes_bound += windows.values().filter_map(|w| w.1).sum::<u64>();
    let ratio = |part: u64, whole: u64| {
        if whole == 0 {
            0.0
        } else {
            1.0 - part as f64 / whole as f64
        }
    };
    let edge_bound_misses: u64 = edge.bound.values().sum();
    let edge_misses_measured = reads_measured - pop_hits.iter().sum::<u64>();
    let by_pop = layout
        .pops
        .iter()
        .enumerate()
        .filter(|(i, _)| pop_requests[*i] > 0)
        .map(|(i, name)| {
            (
                name.clone(),
                Bounded {
                    measured: round(pop_hits[i] as f64 / pop_requests[i] as f64),
                    bound: round(ratio(pop_bound_misses[i], pop_requests[i])),
                },
            )
        })
        .collect();
    let mut gap = vec![edge.breakdown("edge")];
    if tiers_cache {
        gap.push(origin.breakdown("origin"));
    }
    StreamBound {
        edge_hit_ratio: Bounded {
            measured: round(ratio(edge_misses_measured, reads_measured)),
            bound: round(ratio(edge_bound_misses, reads_measured)),
        },
        offload_requests: Bounded {
            measured: round(ratio(fetches_measured, reads_measured)),
            bound: round(ratio(origin_bound, reads_measured)),
        },
        byte_hit_ratio: Bounded {
            measured: round(ratio(origin_bytes_measured, bytes_measured)),
            bound: round(ratio(origin_bytes_bound, bytes_measured)),
        },
        global_offload_requests: round(ratio(global_origin, reads_measured)),
        by_pop,
        gap,
    }
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
    // Judged at the response's own Date (or the virtual epoch): no time has passed.
    let epoch = std::time::SystemTime::UNIX_EPOCH + VIRTUAL_EPOCH;
    let now = headers
        .get(http::header::DATE)
        .and_then(|d| d.to_str().ok())
        .and_then(|d| edge_worker::http_date::parse(d, epoch))
        .unwrap_or(epoch);
    let view = edge_worker::cache_view::effective(headers, now);
    let mut response = http::Response::new(());
    *response.status_mut() = status;
    *response.headers_mut() = view.clone().into_owned();
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

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const TTL10: Life = Life {
        fresh_s: 10.0,
        stale_s: 0.0,
    };

    fn layout(pops: usize) -> Layout {
        Layout {
            pops: (0..pops).map(|i| format!("edge-p{i}")).collect(),
            top_of_pop: vec![0; pops],
            tops: vec!["regional-r".into()],
            slack_s: 0.0,
            reorder_s: 0.0,
            tiers_cache: true,
            edge_capacity: true,
            ttl_jitter: false,
        }
    }

    fn read(at_s: f64, pop: usize, key: usize, edge: EdgeResult) -> ClientRead {
        ClientRead {
            at_s,
            pop,
            key,
            signed_in: false,
            cacheable_method: true,
            bytes: 100,
            edge,
            age_s: 0.0,
            from_origin: edge == EdgeResult::Fetched,
            measured: true,
        }
    }

    fn shared(life: Life) -> Storability {
        Storability {
            shared: Some(life),
            private: None,
        }
    }

    fn run(layout: &Layout, objects: &[Storability], reads: &[ClientRead]) -> StreamBound {
        run_with(layout, objects, reads, &[], &[])
    }

    fn run_with(
        layout: &Layout,
        objects: &[Storability],
        reads: &[ClientRead],
        purges: &[Invalidation],
        fetches: &[Fetch],
    ) -> StreamBound {
        compute(layout, objects, reads, purges, fetches)
    }

    fn causes(bound: &StreamBound, level: &str) -> Vec<(String, u64, u64)> {
        bound
            .gap
            .iter()
            .find(|g| g.level == level)
            .map(|g| {
                g.causes
                    .iter()
                    .map(|c| (c.cause.clone(), c.measured, c.bound))
                    .collect()
            })
            .unwrap_or_default()
    }

    #[test]
    fn an_infinite_cache_misses_only_first_requests_and_expiries() {
        let reads: Vec<_> = [0.0, 5.0, 11.0, 12.0, 25.0]
            .iter()
            .map(|&t| read(t, 0, 0, EdgeResult::Fetched))
            .collect();
        let bound = run(&layout(1), &[shared(TTL10)], &reads);
        // Misses at 0 (first), 11 and 25 (expired); hits at 5 and 12.
        assert_eq!(bound.edge_hit_ratio.bound, 0.4);
        assert_eq!(bound.offload_requests.bound, 0.4);
        let edge = causes(&bound, "edge");
        assert!(edge.contains(&("first request".into(), 1, 1)), "{edge:?}");
        // The run fetched every time: at 5, 11 and 12 its last copy should have lasted
        // (evictions); at 25 it had run out.
        assert!(edge.contains(&("ttl expired".into(), 1, 2)), "{edge:?}");
        assert!(
            edge.contains(&("evicted for capacity".into(), 3, 0)),
            "{edge:?}"
        );
    }

    #[test]
    fn stale_while_revalidate_answers_but_still_fetches() {
        let life = Life {
            fresh_s: 10.0,
            stale_s: 5.0,
        };
        let reads: Vec<_> = [0.0, 12.0, 16.0]
            .iter()
            .map(|&t| read(t, 0, 0, EdgeResult::Hit))
            .collect();
        let bound = run(&layout(1), &[shared(life)], &reads);
        // 12 is served stale and refreshes (fresh to 22), 16 is fresh.
        assert!((bound.edge_hit_ratio.bound - 2.0 / 3.0).abs() < 1e-5);
        assert!((bound.offload_requests.bound - 1.0 / 3.0).abs() < 1e-5);
        // Bytes came from the origin only on the first request.
        assert!((bound.byte_hit_ratio.bound - 2.0 / 3.0).abs() < 1e-5);
    }

    #[test]
    fn a_tier_above_sees_every_pops_requests() {
        let reads = vec![
            read(0.0, 0, 0, EdgeResult::Fetched),
            read(1.0, 1, 0, EdgeResult::Fetched),
            read(2.0, 1, 0, EdgeResult::Hit),
        ];
        let bound = run(&layout(2), &[shared(TTL10)], &reads);
        // Each PoP misses its first request; the tier fetches once.
        assert!((bound.edge_hit_ratio.bound - 1.0 / 3.0).abs() < 1e-5);
        assert!((bound.offload_requests.bound - 2.0 / 3.0).abs() < 1e-5);
        assert!((bound.global_offload_requests - 2.0 / 3.0).abs() < 1e-5);
        assert_eq!(bound.by_pop["edge-p0"].bound, 0.0);
        assert_eq!(bound.by_pop["edge-p1"].bound, 0.5);
    }

    #[test]
    fn a_purge_costs_one_miss_and_a_soft_purge_a_background_fetch() {
        let life = Life {
            fresh_s: 100.0,
            stale_s: 30.0,
        };
        let reads: Vec<_> = [0.0, 2.0, 3.0]
            .iter()
            .map(|&t| read(t, 0, 0, EdgeResult::Fetched))
            .collect();
        for (soft, edge_hits) in [(false, 1.0 / 3.0), (true, 2.0 / 3.0)] {
            let purge = Invalidation {
                on_path_of: None,
                at_s: 1.0,
                keys: vec![0],
                soft,
            };
            let bound = run_with(&layout(1), &[shared(life)], &reads, &[purge], &[]);
            assert!(
                (bound.edge_hit_ratio.bound - edge_hits).abs() < 1e-5,
                "{soft}"
            );
            // Either way the origin is asked again once.
            assert!(
                (bound.offload_requests.bound - 1.0 / 3.0).abs() < 1e-5,
                "{soft}"
            );
            let origin = causes(&bound, "origin");
            assert!(origin.contains(&("invalidated".into(), 0, 1)), "{origin:?}");
        }
    }

    #[test]
    fn what_may_not_be_stored_always_misses_and_private_stays_at_the_edge() {
        let private = Storability {
            shared: None,
            private: Some(TTL10),
        };
        let mut reads = vec![
            read(0.0, 0, 0, EdgeResult::Fetched),
            read(1.0, 0, 0, EdgeResult::Fetched),
            read(0.0, 0, 1, EdgeResult::Fetched),
            read(1.0, 0, 1, EdgeResult::Hit),
        ];
        reads[2].signed_in = true;
        reads[3].signed_in = true;
        let bound = run(&layout(1), &[Storability::default(), private], &reads);
        // Key 0: two misses (not cacheable). Key 1: a private miss, then a private hit.
        assert_eq!(bound.edge_hit_ratio.bound, 0.25);
        assert_eq!(bound.offload_requests.bound, 0.25);
        let origin = causes(&bound, "origin");
        assert!(
            origin.contains(&("not cacheable".into(), 0, 3)),
            "{origin:?}"
        );
        // Without a token, a private object is not cacheable at all.
        reads[3].signed_in = false;
        let bound = run(&layout(1), &[Storability::default(), private], &reads);
        assert_eq!(bound.edge_hit_ratio.bound, 0.0);
    }

    #[test]
    fn a_copy_that_arrived_aged_expires_early() {
        let mut reads = vec![
            read(0.0, 0, 0, EdgeResult::Fetched),
            read(5.0, 0, 0, EdgeResult::Fetched),
        ];
        reads[0].age_s = 8.0;
        let bound = run(&layout(1), &[shared(TTL10)], &reads);
        let edge = causes(&bound, "edge");
        assert!(
            edge.contains(&("ttl expired early (age carried down)".into(), 1, 0)),
            "{edge:?}"
        );
    }

    #[test]
    fn origin_fetches_are_explained_per_tier() {
        let reads = vec![read(0.0, 0, 0, EdgeResult::Fetched)];
        let fetch = |at_s: f64, not_modified: bool| Fetch {
            at_s,
            location: 0,
            key: 0,
            host: 0,
            not_modified,
            failed: false,
            cacheable_method: true,
            measured: true,
        };
        let fetches = [
            fetch(0.1, false),
            fetch(5.0, false),
            fetch(20.0, true),
            fetch(40.0, false),
        ];
        let bound = run_with(&layout(1), &[shared(TTL10)], &reads, &[], &fetches);
        let origin = causes(&bound, "origin");
        assert!(
            origin.contains(&("first request".into(), 1, 1)),
            "{origin:?}"
        );
        assert!(
            origin.contains(&("evicted for capacity".into(), 1, 0)),
            "{origin:?}"
        );
        // The 304 at 20 is an expiry like the refetch at 40, and counted apart as well.
        assert!(origin.contains(&("ttl expired".into(), 2, 0)), "{origin:?}");
        assert_eq!(bound.gap[1].revalidated, 1);
    }

    #[test]
    fn a_layout_without_pops_or_tiers_does_not_panic() {
        let reads = vec![read(0.0, 3, 7, EdgeResult::Fetched)];
        let mut empty = layout(0);
        empty.tops.clear();
        let bound = run(&empty, &[], &reads);
        assert_eq!(bound.edge_hit_ratio.bound, 0.0);
        let mut no_tiers = layout(1);
        no_tiers.tops.clear();
        let bound = run(&no_tiers, &[shared(TTL10)], &reads);
        assert_eq!(bound.gap.len(), 1, "no origin breakdown without a tier");
    }

    /// A real cache: TTL from its own fetch (shortened by the Age it arrived with), and
    /// least-recently-used eviction past `slots` objects.
    fn lru_ttl_run(times: &[(f64, usize)], slots: usize, ttl: f64) -> Vec<ClientRead> {
        let mut copies: Vec<(usize, f64)> = Vec::new(); // (key, expires), most recent last
        times
            .iter()
            .map(|&(at_s, key)| {
                let found = copies.iter().position(|&(k, _)| k == key);
                let hit = found.is_some_and(|i| copies[i].1 > at_s);
                if let Some(i) = found {
                    let copy = copies.remove(i);
                    copies.push(if hit { copy } else { (key, at_s + ttl) });
                } else {
                    copies.push((key, at_s + ttl));
                    if copies.len() > slots {
                        copies.remove(0);
                    }
                }
                let edge = if hit {
                    EdgeResult::Hit
                } else {
                    EdgeResult::Fetched
                };
                read(at_s, 0, key, edge)
            })
            .collect()
    }

    proptest! {
        /// No cache, whatever its size, beats the bound; and every measured miss has a cause.
        #[test]
        fn no_cache_beats_the_bound(
            gaps in proptest::collection::vec((0.0..5.0f64, 0usize..6), 1..200),
            slots in 1usize..8,
        ) {
            let mut at = 0.0;
            let times: Vec<(f64, usize)> = gaps
                .iter()
                .map(|&(gap, key)| {
                    at += gap;
                    (at, key)
                })
                .collect();
            let reads = lru_ttl_run(&times, slots, 10.0);
            let objects = vec![shared(TTL10); 6];
            let bound = run(&layout(1), &objects, &reads);
            let hits = reads.iter().filter(|r| r.edge == EdgeResult::Hit).count();
            let measured = hits as f64 / reads.len() as f64;
            prop_assert!((bound.edge_hit_ratio.measured - measured).abs() < 1e-5);
            prop_assert!(measured <= bound.edge_hit_ratio.bound + 1e-5);
            let edge = &bound.gap[0];
            prop_assert_eq!(edge.measured as usize, reads.len() - hits);
            prop_assert_eq!(edge.causes.iter().map(|c| c.measured).sum::<u64>(), edge.measured);
            prop_assert_eq!(edge.causes.iter().map(|c| c.bound).sum::<u64>(), edge.bound);
        }
    }
}
