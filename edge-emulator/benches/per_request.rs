//! The host's per-request path for a 1 KiB edge cache hit, in both isolation modes: a warm
//! isolate reused (`wasm_isolate`), and a fresh Store and instance from the `InstancePre`,
//! `handle`, drop (`wasm_instance_per_request`). The peer, measured in the same run, is the
//! same hit through the same core running natively (the regional tier's path).
//!
//! Run: `cargo bench -p edge-emulator --bench per_request`

use std::sync::Arc;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion};
use edge_emulator::bindings::types;
use edge_emulator::cdn::pop::PopNode;
use edge_emulator::topology::Topology;
use edge_emulator::wasm::{IsolatePolicy, Isolation};
use edge_emulator::{Emulator, EmulatorOptions};
use edge_worker::encoding::{Coding, Effort};
use edge_worker::testing::adversarial;
use edge_worker::{Body, CacheEntry, StoredResponse};
use http::{HeaderMap, Response};

const URL: &str = "http://bench.example/api/hit";

fn one_kib_response() -> Response<Body> {
    Response::builder()
        .header("cache-control", "public, max-age=86400")
        .header("content-type", "application/json")
        .header("etag", "\"bench\"")
        .body(Body::from(vec![b'x'; 1024]))
        .unwrap()
}

fn per_request(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let start = |isolation| {
        runtime
            .block_on(Emulator::start(EmulatorOptions {
                topology: Topology::default_embedded(),
                time_scale: 0.0,
                auth_toml: Some(edge_emulator::DEFAULT_AUTH.to_string()),
                routing_toml: Some(edge_emulator::DEFAULT_ROUTING.to_string()),
                isolates: IsolatePolicy {
                    isolation,
                    ..IsolatePolicy::default()
                },
                ..EmulatorOptions::new(Topology::default_embedded())
            }))
            .unwrap()
    };
    let emulator = start(Isolation::Isolate);
    let fresh = start(Isolation::Fresh);
    let fresh_pop = fresh.tiers.pop("fra").expect("a default PoP").clone();
    let pop = emulator.tiers.pop("fra").expect("a default PoP").clone();
    let regional = pop.regional.clone();
    let now = emulator.network.clock.now();
    let keep = now + Duration::from_secs(86_400);

    // The same PoP without an auth configuration: what auth costs a public-route hit.
    let open_pop = pop_with_auth(&pop, None);

    // Seed the PoP caches (what the guest sees) and the regional cache (the native peer).
    let stored = StoredResponse::capture(&HeaderMap::new(), &one_kib_response(), now);
    for pop in [&pop, &open_pop, &fresh_pop] {
        pop.cache
            .put("http://bench.example/api/hit", wit_entry(&stored), keep);
    }
    regional.store.put(
        "http://bench.example/api/hit",
        CacheEntry::Response(stored),
        keep,
    );

    let request = types::Request {
        method: "GET".into(),
        url: URL.into(),
        headers: vec![("accept".into(), b"application/json".to_vec())],
        body: Vec::new(),
        origin: None,
    };
    let ctx = context("fra");
    let check = runtime
        .block_on(emulator.runtime.handle(&pop, &request, &ctx, false))
        .unwrap()
        .0;
    assert_eq!(check.response.body.len(), 1024);
    assert!(check
        .response
        .headers
        .iter()
        .any(|(n, v)| n == "cf-cache-status" && v == b"HIT"));

    let mut group = c.benchmark_group("hit_1kib");
    for (name, emulator, pop) in [
        ("wasm_isolate", &emulator, &pop),
        ("wasm_instance_per_request", &fresh, &fresh_pop),
        ("wasm_isolate_without_auth", &emulator, &open_pop),
    ] {
        group.bench_function(name, |b| {
            b.to_async(&runtime).iter(|| async {
                let (outcome, _) = emulator
                    .runtime
                    .handle(pop, &request, &ctx, false)
                    .await
                    .unwrap();
                outcome.response.body.len()
            })
        });
    }
    group.bench_function("instantiate_only", |b| {
        b.to_async(&runtime)
            .iter(|| async { emulator.runtime.instantiate_only(&pop).await.unwrap() })
    });
    // The peer for the guest's path: the same worker (edge cache tier, auth gate, fields,
    // representation) natively, over an in-memory cache holding the same entry.
    let native = NativePlatform::default();
    native
        .cache
        .put(URL, CacheEntry::Response(stored_native(now)), keep);
    native.now.set(Some(now));
    let worker = edge_worker::EdgeWorker::new(edge_worker::CacheTier::new(
        edge_worker::hops::TierId::edge("fra"),
        true,
    ));
    group.bench_function("native_worker", |b| {
        b.to_async(&runtime).iter(|| async {
            let request = http::Request::builder()
                .uri(URL)
                .header("accept", "application/json")
                .body(Body::new())
                .unwrap();
            worker.handle(&native, request).await.response.body().len()
        })
    });
    group.bench_function("native_core", |b| {
        b.to_async(&runtime).iter(|| async {
            let request = http::Request::builder()
                .uri(URL)
                .header("accept", "application/json")
                .body(Body::new())
                .unwrap();
            regional.handle(request).await.response.body().len()
        })
    });
    group.finish();
    compression_in_the_guest(c, &runtime, &emulator);
    jwt_in_the_guest(c, &runtime, &emulator);
    emulator.shutdown();
    fresh.shutdown();
}

/// Catalogue JSON hits at the edge (1 KiB, 100 KiB, 1 MiB): identity; brotli and gzip
/// compressed in the guest on each request (the cached variant removed first); brotli from the
/// cached variant; and the same compression natively, as the peer in the same run.
fn compression_in_the_guest(
    c: &mut Criterion,
    runtime: &tokio::runtime::Runtime,
    emulator: &Emulator,
) {
    const JSON_URL: &str = "http://bench.example/api/catalogue";
    let mut products = Vec::new();
    let catalogue = loop {
        products.push(origin_stub::catalogue::product(
            products.len() as u64 + 1,
            1,
        ));
        let bytes = serde_json::to_vec(&products).unwrap();
        if bytes.len() >= 1024 * 1024 {
            break bytes;
        }
    };
    let ctx = context("sin");
    let request = |encoding: &str| types::Request {
        method: "GET".into(),
        url: JSON_URL.into(),
        headers: vec![("accept-encoding".into(), encoding.as_bytes().to_vec())],
        body: Vec::new(),
        origin: None,
    };
    let (identity, br, gzip) = (request("identity"), request("br"), request("gzip"));
    for (name, size) in [
        ("1kib", 1024),
        ("100kib", 100 * 1024),
        ("1mib", 1024 * 1024),
    ] {
        let body = catalogue[..size].to_vec();
        let now = emulator.network.clock.now();
        let response = Response::builder()
            .header("cache-control", "public, max-age=86400")
            .header("content-type", "application/json")
            .header("etag", "\"catalogue\"")
            .body(Body::from(body.clone()))
            .unwrap();
        let stored = StoredResponse::capture(&HeaderMap::new(), &response, now);
        let pop = emulator.tiers.pop("sin").expect("a default PoP").clone();
        let seed = move || {
            pop.cache.clear();
            pop.cache.put(
                JSON_URL,
                wit_entry(&stored),
                now + Duration::from_secs(86_400),
            );
        };
        seed();
        let pop = emulator.tiers.pop("sin").expect("a default PoP").clone();
        let handle = |request: &types::Request| {
            runtime
                .block_on(emulator.runtime.handle(&pop, request, &ctx, false))
                .unwrap()
                .0
                .response
                .body
                .len()
        };
        assert!(handle(&br) < body.len() / 2, "brotli came back");

        let mut group = c.benchmark_group(format!("json_{name}"));
        group.throughput(criterion::Throughput::Bytes(size as u64));
        group.sample_size(if size > 100 * 1024 { 10 } else { 30 });
        group.bench_function("guest_identity_hit", |b| b.iter(|| handle(&identity)));
        group.bench_function("guest_brotli_cached_variant", |b| b.iter(|| handle(&br)));
        for (coding, request) in [("brotli", &br), ("gzip", &gzip)] {
            group.bench_function(format!("guest_{coding}_compress"), |b| {
                b.iter_batched(
                    &seed,
                    |()| handle(request),
                    criterion::BatchSize::PerIteration,
                )
            });
        }
        group.bench_function("native_brotli", |b| {
            b.iter(|| Coding::Brotli.encode(&body, Effort::Miss).0.len())
        });
        group.bench_function("native_gzip", |b| {
            b.iter(|| Coding::Gzip.encode(&body, Effort::Miss).0.len())
        });
        group.finish();
    }
}

/// A cache hit on a route that requires a token, per algorithm: verified in the guest on each
/// request (the verified-token cache emptied first) and answered from the verified-token cache.
fn jwt_in_the_guest(c: &mut Criterion, runtime: &tokio::runtime::Runtime, emulator: &Emulator) {
    const USER_URL: &str = "http://bench.example/api/users/1";
    let now_secs = emulator.network.clock.now_ms() / 1000;
    let config = serde_json::json!({
        "keys": adversarial::keys_config(),
        "routes": [{"path": "/api/users/*", "mode": "required", "issuer": "https://issuer.example", "audience": "edge"}],
    });
    let pop = pop_with_auth(
        emulator.tiers.pop("fra").expect("a default PoP"),
        Some(config.to_string()),
    );
    let now = emulator.network.clock.now();
    let stored = StoredResponse::capture(&HeaderMap::new(), &one_kib_response(), now);
    let seed = || {
        pop.cache.clear();
        pop.cache.put(
            USER_URL,
            wit_entry(&stored),
            now + Duration::from_secs(86_400),
        );
    };
    seed();
    let tokens = adversarial::valid_tokens(now_secs);
    let ctx = context("fra");
    let mut group = c.benchmark_group("jwt_guest");
    for (alg, token) in &tokens {
        let request = types::Request {
            method: "GET".into(),
            url: USER_URL.into(),
            headers: vec![(
                "authorization".into(),
                format!("Bearer {token}").into_bytes(),
            )],
            body: Vec::new(),
            origin: None,
        };
        let handle = || {
            let (outcome, _) = runtime
                .block_on(emulator.runtime.handle(&pop, &request, &ctx, false))
                .unwrap();
            assert_eq!(outcome.response.status, 200, "{alg}");
            outcome.response.body.len()
        };
        handle();
        group.bench_function(format!("{alg}/verify"), |b| {
            b.iter_batched(seed, |()| handle(), criterion::BatchSize::PerIteration)
        });
        group.bench_function(format!("{alg}/token_cache_hit"), |b| b.iter(handle));
    }
    group.finish();
}

fn stored_native(now: std::time::SystemTime) -> StoredResponse {
    StoredResponse::capture(&HeaderMap::new(), &one_kib_response(), now)
}

/// The core's ports in memory, for the native peer: a store, a fixed clock, no upstream.
#[derive(Default)]
struct NativePlatform {
    cache: edge_emulator::cdn::store::MemoryStore<CacheEntry>,
    now: std::cell::Cell<Option<std::time::SystemTime>>,
}

impl edge_worker::Platform for NativePlatform {
    fn now(&self) -> std::time::SystemTime {
        self.now.get().expect("set before use")
    }
    fn random(&self) -> u64 {
        unreachable!("hits only, and no cache policy: nothing draws")
    }
    async fn cache_get(&self, key: &str) -> Option<CacheEntry> {
        self.cache.get(key, self.now()).map(|e| (*e).clone())
    }
    async fn cache_put(&self, key: &str, entry: CacheEntry, keep: Duration) {
        self.cache.put(key, entry, self.now() + keep);
    }
    async fn cache_delete(&self, key: &str) {
        self.cache.remove(key);
    }
    type Guard = ();
    async fn lock(&self, _key: &str) -> edge_worker::Locked<()> {
        edge_worker::Locked::Write(())
    }
    async fn fetch(
        &self,
        _request: http::Request<Body>,
    ) -> Result<edge_worker::Upstream, edge_worker::FetchError> {
        Err(edge_worker::FetchError(
            "the benchmark serves hits only".into(),
        ))
    }
    fn log(&self, _level: edge_worker::LogLevel, _message: &str) {}
}

/// A PoP like `pop` with an empty cache and its own auth configuration.
fn pop_with_auth(pop: &PopNode, auth_config: Option<String>) -> Arc<PopNode> {
    Arc::new(PopNode {
        codings: pop.codings.clone(),
        name: pop.name.clone(),
        cache: Default::default(),
        regional: pop.regional.clone(),
        rtt_to_regional: pop.rtt_to_regional,
        network: pop.network.clone(),
        counters: Default::default(),
        coalescer: edge_emulator::cdn::coalesce::Coalescer::new(
            edge_emulator::cdn::coalesce::DEFAULT_WAIT_LIMIT,
        ),
        refreshing: Default::default(),
        auth_config: auth_config.map(Into::into),
        cache_policy: pop.cache_policy.clone(),
        routing: pop.routing.clone(),
        location: pop.location,
    })
}

/// The entry as a PoP's store keeps it (the core's type, its body shared).
fn wit_entry(stored: &StoredResponse) -> CacheEntry {
    CacheEntry::Response(stored.clone())
}

criterion_group!(benches, per_request);
criterion_main!(benches);

/// Where a benchmark request comes from: a PoP, at the PoP's own location, no country.
fn context(pop: &str) -> types::RequestContext {
    let site = Topology::default_embedded();
    let site = site.pop(pop).expect("a default PoP");
    types::RequestContext {
        pop: pop.into(),
        country: None,
        continent: None,
        latitude: Some(site.lat),
        longitude: Some(site.lon),
    }
}
