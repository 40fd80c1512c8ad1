//! What each replayed read measured: the request a client would send, served at its PoP, and
//! the figures the collector gathers from the response (latency, tier, outcome, bytes).

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use edge_worker::CfCacheStatus;
use hdrhistogram::Histogram;
use tokio::time::Instant;

use crate::bindings::types;
use crate::edge::serve_at_pop;
use crate::emulator::Emulator;
use crate::sim::stream_bound::{self, EdgeResult};
use crate::sim::workload::Read;

/// What one tier did for the measured client requests that passed it, counted from their
/// hops: the one source of every tier figure the report prints.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(super) struct TierTally {
    pub(super) requests: u64,
    pub(super) hits: u64,
    /// Miss, expired, bypass, dynamic, and requests the tier never cached (refused, failed,
    /// answered by the worker).
    pub(super) misses: u64,
    pub(super) stale_while_revalidate: u64,
    pub(super) stale_if_error: u64,
    pub(super) revalidated: u64,
    pub(super) collapsed: u64,
    pub(super) negative_hits: u64,
}

impl TierTally {
    /// Counts one request the tier handled with `cache`'s outcome.
    fn count(&mut self, cache: Option<&edge_worker::hops::CacheOutcome>) {
        self.requests += 1;
        let Some(cache) = cache else {
            self.misses += 1;
            return;
        };
        self.collapsed += u64::from(cache.collapsed);
        match cache.status {
            CfCacheStatus::Hit => {
                self.hits += 1;
                self.negative_hits += u64::from(cache.negative);
            }
            CfCacheStatus::Updating => self.stale_while_revalidate += 1,
            CfCacheStatus::Stale => self.stale_if_error += 1,
            CfCacheStatus::Revalidated => self.revalidated += 1,
            CfCacheStatus::Miss
            | CfCacheStatus::Expired
            | CfCacheStatus::Bypass
            | CfCacheStatus::Dynamic => self.misses += 1,
        }
    }

    pub(super) fn add(&mut self, other: &TierTally) {
        self.requests += other.requests;
        self.hits += other.hits;
        self.misses += other.misses;
        self.stale_while_revalidate += other.stale_while_revalidate;
        self.stale_if_error += other.stale_if_error;
        self.revalidated += other.revalidated;
        self.collapsed += other.collapsed;
        self.negative_hits += other.negative_hits;
    }

    /// Answered from the cache (hits and stale answers).
    pub(super) fn served(&self) -> u64 {
        self.hits + self.stale_while_revalidate + self.stale_if_error
    }
}

/// Per-request figures gathered while the run goes on.
#[derive(Default)]
pub(super) struct Collector {
    pub(super) reads: u64,
    /// Fragments of composed pages by path (edge composition).
    pub(super) parts: BTreeMap<String, crate::sim::report::PartFigures>,
    /// Each tier's figures over the measured requests, from their hops.
    pub(super) tiers: BTreeMap<edge_worker::hops::TierId, TierTally>,
    pub(super) latencies: BTreeMap<String, Histogram<u64>>,
    /// Server-Timing durations per hop (`sim::hops`).
    pub(super) hops: crate::sim::hops::HopHistograms,
    pub(super) client_timeline: Vec<u64>,
    pub(super) to_clients: u64,
    pub(super) saved_by_compression: u64,
    /// Body bytes to clients by Content-Encoding ("identity" when none).
    pub(super) by_coding: BTreeMap<String, u64>,
    pub(super) saved_by_recompression: u64,
    pub(super) served_by_tier: BTreeMap<String, u64>,
    pub(super) not_modified: u64,
    pub(super) errors: u64,
    /// Reads replayed during the warm-up (not measured).
    pub(super) warmed: u64,
    /// Measured responses by the tiers they passed: tier kind → that tier's cache outcome
    /// (`none` for a tier that did not cache) → responses.
    pub(super) paths: BTreeMap<&'static str, BTreeMap<&'static str, u64>>,
    /// Last ETag seen per (path, accept-encoding): what conditional clients send back.
    pub(super) etags: HashMap<(String, String), String>,
    /// Every read as the stream bound needs it, warm-up included.
    pub(super) stream: Vec<stream_bound::ClientRead>,
    /// What successful unsafe requests invalidated on their paths (RFC 9111 §4.4).
    pub(super) invalidations: Vec<stream_bound::Invalidation>,
    /// Object paths (as caches key them) by index, and back.
    pub(super) objects: Vec<String>,
    pub(super) object_index: HashMap<String, usize>,
    /// The object each replayed path (as the workload wrote it) names: a path's URL is
    /// parsed once, not per request.
    read_objects: HashMap<String, usize>,
}

impl Collector {
    /// The index of the object the replayed `path` names, adding it when new.
    fn object_of_read(&mut self, path: &str, url: &str) -> usize {
        if let Some(&index) = self.read_objects.get(path) {
            return index;
        }
        let object = url
            .parse()
            .ok()
            .and_then(|uri: http::Uri| stream_bound::object_path(&uri))
            // A URL no cache could key: one object of its own, never stored.
            .unwrap_or_else(|| format!("unkeyable:{path}"));
        let index = intern(&mut self.objects, &mut self.object_index, object);
        self.read_objects.insert(path.to_string(), index);
        index
    }
}

/// The objects an unsafe `method` request to `url`, answered `status` with `headers`,
/// invalidated in the caches it passed: by the worker's own rule (`edge_worker::invalidation`),
/// its target and the same-origin `Location` / `Content-Location` of a non-error answer.
fn invalidated_objects(
    method: &str,
    status: u16,
    headers: &[(String, Vec<u8>)],
    url: &str,
    c: &mut Collector,
) -> Vec<usize> {
    let (Ok(method), Ok(status), Ok(target)) = (
        http::Method::from_bytes(method.as_bytes()),
        http::StatusCode::from_u16(status),
        url.parse::<http::Uri>(),
    ) else {
        return Vec::new();
    };
    let mut answer = http::Response::new(edge_worker::Body::new());
    *answer.status_mut() = status;
    if !edge_worker::invalidation::invalidates(&method, &answer) {
        return Vec::new();
    }
    let mut fields = http::HeaderMap::new();
    for name in [http::header::LOCATION, http::header::CONTENT_LOCATION] {
        let value = headers
            .iter()
            .find(|(n, _)| name.as_str().eq_ignore_ascii_case(n))
            .and_then(|(_, v)| http::HeaderValue::from_bytes(v).ok());
        if let Some(value) = value {
            fields.insert(name, value);
        }
    }
    edge_worker::invalidation::invalidated(&target, &fields)
        .iter()
        .filter_map(stream_bound::object_path)
        .map(|path| intern(&mut c.objects, &mut c.object_index, path))
        .collect()
}

/// The index of `path` in `objects`, adding it when new.
pub(super) fn intern(
    objects: &mut Vec<String>,
    index: &mut HashMap<String, usize>,
    path: String,
) -> usize {
    if let Some(&i) = index.get(&path) {
        return i;
    }
    objects.push(path.clone());
    index.insert(path, objects.len() - 1);
    objects.len() - 1
}

/// Counts one fragment of a composed page by its edge hop.
fn tally_part(
    parts: &mut BTreeMap<String, crate::sim::report::PartFigures>,
    part: &edge_worker::outcome::Part,
) {
    let name = part.url.split('?').next().unwrap_or_default().to_string();
    let figures = parts.entry(name.clone()).or_default();
    figures.part = name;
    figures.requests += 1;
    figures.bytes += part.bytes;
    let edge = part.hops.last();
    match edge.and_then(|h| h.cache.as_ref()).map(|c| c.status) {
        _ if edge.is_some_and(|h| h.private) => figures.private_hits += 1,
        Some(CfCacheStatus::Hit | CfCacheStatus::Updating | CfCacheStatus::Stale) => {
            figures.edge_hits += 1
        }
        _ => figures.fetched += 1,
    }
    if part.hops.iter().any(|h| h.origin.is_some()) {
        figures.origin_fetches += 1;
    }
}

/// The demo tokens a replay attaches: one shared (`authorization: demo`, subject
/// `sim-user`) and one per subject (`authorization: demo:SUBJECT`), minted once each.
pub struct DemoTokens {
    start: std::time::SystemTime,
    pub shared: String,
    by_subject: Mutex<std::collections::HashMap<String, Arc<str>>>,
}

/// Tokens outlive any replay's virtual span.
const DEMO_TOKEN_TTL: std::time::Duration = std::time::Duration::from_secs(365 * 86_400);
/// Distinct subjects a replay mints tokens for; beyond, tokens are minted per request.
const MAX_DEMO_SUBJECTS: usize = 1_000_000;

impl DemoTokens {
    pub fn new(start: std::time::SystemTime) -> anyhow::Result<Self> {
        Ok(Self {
            start,
            shared: Self::mint(start, "sim-user")?,
            by_subject: Mutex::default(),
        })
    }

    fn mint(start: std::time::SystemTime, subject: &str) -> anyhow::Result<String> {
        crate::demo_token::mint(
            crate::demo_token::DemoAlg::Hs256,
            subject,
            None,
            start,
            DEMO_TOKEN_TTL,
        )
    }

    pub fn for_subject(&self, subject: &str) -> Arc<str> {
        let mut known = self.by_subject.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(token) = known.get(subject) {
            return token.clone();
        }
        // The demo key signs any subject; a failure here would be a bug in the demo key.
        let token: Arc<str> = Self::mint(self.start, subject).unwrap_or_default().into();
        if known.len() < MAX_DEMO_SUBJECTS {
            known.insert(subject.to_string(), token.clone());
        }
        token
    }
}

/// Replays one read at the PoP its client reaches and records what it measured; reads during
/// the warm-up feed only the timeline, the ETags clients remember and the stream bound.
pub(super) async fn serve(
    emulator: &Arc<Emulator>,
    collector: &Mutex<Collector>,
    read: Read,
    tokens: &DemoTokens,
    (at_s, bucket): (f64, usize),
    measured: bool,
    add_compute: bool,
) {
    let arrived = Instant::now();
    let signed_in = read.headers.iter().any(|(n, _)| n == "authorization");
    let pop = match &read.pop {
        Some(name) => emulator.tiers.pop(name),
        None => None,
    }
    .unwrap_or_else(|| {
        let pop = emulator.topology.pop_for_country(read.country.as_deref());
        emulator
            .tiers
            .pop(&pop.name)
            .expect("every topology PoP runs")
    })
    .clone();
    let encoding = read
        .headers
        .iter()
        .find(|(n, _)| n == "accept-encoding")
        .map_or(String::new(), |(_, v)| v.clone());
    let memory_key = (read.path.clone(), encoding);
    let mut headers: Vec<(String, Vec<u8>)> = read
        .headers
        .iter()
        .map(|(n, v)| {
            let value = match v.strip_prefix("demo") {
                Some(rest) if n == "authorization" => match rest.strip_prefix(':') {
                    Some(subject) => format!("Bearer {}", tokens.for_subject(subject)),
                    None if rest.is_empty() => format!("Bearer {}", tokens.shared),
                    None => v.clone(),
                },
                _ => v.clone(),
            };
            (n.clone(), value.into_bytes())
        })
        .collect();
    if read.conditional {
        let known = collector
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .etags
            .get(&memory_key)
            .cloned();
        if let Some(etag) = known {
            headers.push(("if-none-match".into(), etag.into_bytes()));
        }
    }
    let url = format!("http://sim.edge.example{}", read.path);
    let cacheable_method = matches!(read.method.as_str(), "GET" | "HEAD");
    let request = types::Request {
        method: read.method.clone(),
        url: url.clone(),
        headers,
        body: Vec::new(),
        origin: None,
    };
    let ctx = pop.context(read.country.clone());
    let result = serve_at_pop(emulator, &pop, request, ctx, false).await;
    let mut latency = arrived.elapsed();
    let mut c = collector.lock().unwrap_or_else(|e| e.into_inner());
    let (status, headers, body_len, compute, cache, recompression_saved, collapsed, at_edge) =
        match &result {
            Ok(served) => (
                served.response.status,
                served.response.headers.as_slice(),
                served.response.body.len() as u64,
                served.report.edge,
                served.cache(),
                served.recompression_saved,
                served.collapsed(),
                Some(served.at_edge),
            ),
            Err(_) => (503, &[][..], 0, Duration::ZERO, None, 0, false, None),
        };
    let path: &[edge_worker::hops::Hop] = match &result {
        Ok(served) => &served.hops,
        Err(_) => &[],
    };
    let parts: &[edge_worker::outcome::Part] = match &result {
        Ok(served) => &served.parts,
        Err(_) => &[],
    };
    // The edge hop: virtual time at the edge, plus compute only when latencies include it.
    let at_edge = at_edge.map(|t| if add_compute { t + compute } else { t });
    if add_compute {
        latency += compute;
    }
    let header = |name: &str| {
        headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| String::from_utf8_lossy(v).into_owned())
    };
    if let Some(etag) = header("etag") {
        c.etags.insert(memory_key, etag);
    }
    // Which tier's cache the bytes came from: the nearest to the client that served its own
    // copy, else the origin.
    let tier = edge_worker::hops::served_by(path).map_or("origin", |hop| hop.tier.kind.as_str());
    let edge_result = match cache {
        _ if result.is_err() => EdgeResult::Failed,
        Some(CfCacheStatus::Hit) => EdgeResult::Hit,
        Some(CfCacheStatus::Updating) => EdgeResult::Stale { if_error: false },
        Some(CfCacheStatus::Stale) => EdgeResult::Stale { if_error: true },
        _ if collapsed => EdgeResult::Collapsed,
        Some(CfCacheStatus::Revalidated) => EdgeResult::Revalidated,
        Some(_) => EdgeResult::Fetched,
        None => EdgeResult::Answered,
    };
    let key = c.object_of_read(&read.path, &url);
    let pop_index = emulator.tiers.pops().position(|p| p.name == pop.name);
    if !cacheable_method {
        let keys = invalidated_objects(&read.method, status, headers, &url, &mut c);
        if !keys.is_empty() {
            c.invalidations.push(stream_bound::Invalidation {
                // When the client had the answer: every cache on the path had invalidated.
                at_s: at_s + latency.as_secs_f64(),
                keys,
                soft: false,
                on_path_of: Some(pop_index.unwrap_or(0)),
            });
        }
    }
    c.stream.push(stream_bound::ClientRead {
        at_s,
        pop: pop_index.unwrap_or(0),
        key,
        signed_in,
        cacheable_method,
        bytes: body_len,
        edge: edge_result,
        age_s: path.last().and_then(|edge| edge.age).unwrap_or(0) as f64,
        // A response the worker made itself (no cache status) came from no origin.
        from_origin: tier == "origin" && cache.is_some(),
        measured,
    });
    // The timeline counts the warm-up too, as the origin's does: the chart shades it.
    if c.client_timeline.len() <= bucket {
        c.client_timeline.resize(bucket + 1, 0);
    }
    c.client_timeline[bucket] += 1;
    if !measured {
        c.warmed += 1;
        return;
    }
    c.reads += 1;
    for part in parts {
        tally_part(&mut c.parts, part);
    }
    c.to_clients += body_len;
    if status == 304 {
        c.not_modified += 1;
    }
    if status >= 400 {
        c.errors += 1;
    }
    for hop in path {
        let outcome = hop.cache.as_ref().map_or("none", |c| c.status.as_str());
        let tier = c.paths.entry(hop.tier.kind.as_str()).or_default();
        *tier.entry(outcome).or_default() += 1;
    }
    // Every measured request is one at its PoP, those that failed before a hop included.
    if path.is_empty() {
        let edge = edge_worker::hops::TierId::edge(&pop.name);
        c.tiers.entry(edge).or_default().count(None);
    }
    for hop in path {
        c.tiers
            .entry(hop.tier.clone())
            .or_default()
            .count(hop.cache.as_ref());
    }
    *c.served_by_tier.entry(tier.to_string()).or_default() += body_len;
    let coding = header("content-encoding");
    if let (Some(identity), Some(_)) = (read.identity_bytes, &coding) {
        c.saved_by_compression += identity.saturating_sub(body_len);
    }
    let coding = coding.map_or_else(|| "identity".to_string(), |c| c.to_ascii_lowercase());
    *c.by_coding.entry(coding).or_default() += body_len;
    c.saved_by_recompression += recompression_saved;
    if let Some(at_edge) = at_edge {
        // The header's `edge` is wall compute (not deterministic): the virtual figure stands
        // in for it.
        c.hops.record_path(emulator.topology.client_rtt(), path);
        c.hops.record("edge", at_edge.as_secs_f64() * 1000.0);
    }
    let micros = u64::try_from(latency.as_micros())
        .unwrap_or(u64::MAX)
        .max(1);
    for key in [pop.regional.name.clone(), "all".to_string()] {
        let histogram = c
            .latencies
            .entry(key)
            .or_insert_with(|| Histogram::new(3).expect("3 significant digits is valid"));
        let _ = histogram.record(micros);
    }
}
