//! JWT verification cost per algorithm, natively: full verification (shape checks, signature,
//! claims) against the same request answered from the verified-token cache.
//!
//! Run: `cargo bench -p edge-worker --bench auth`

use std::cell::RefCell;
use std::collections::HashMap;
use std::hint::black_box;
use std::time::{Duration, SystemTime};

use criterion::{criterion_group, criterion_main, Criterion};
use edge_worker::auth::{admit, AuthConfig, AuthPolicy};
use edge_worker::ready::now_or_never;
use edge_worker::testing::adversarial;
use edge_worker::{Body, CacheEntry, FetchError, Locked, LogLevel, Platform, Upstream};
use http::Request;

const NOW: u64 = 1_795_564_800;

/// Just enough of a platform for the gate: a clock and a cache.
#[derive(Default)]
struct Bench {
    cache: RefCell<HashMap<String, CacheEntry>>,
}

impl Platform for Bench {
    fn now(&self) -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_secs(NOW)
    }
    fn random(&self) -> u64 {
        unreachable!("the gate draws nothing; only a cache policy's jitter does")
    }
    async fn cache_get(&self, key: &str) -> Option<CacheEntry> {
        self.cache.borrow().get(key).cloned()
    }
    async fn cache_put(&self, key: &str, entry: CacheEntry, _keep: Duration) {
        self.cache.borrow_mut().insert(key.to_string(), entry);
    }
    async fn cache_delete(&self, key: &str) {
        self.cache.borrow_mut().remove(key);
    }
    type Guard = ();
    async fn lock(&self, _key: &str) -> Locked<()> {
        Locked::Write(())
    }
    async fn fetch(&self, _request: Request<Body>) -> Result<Upstream, FetchError> {
        Err(FetchError("the benchmark has no upstream".into()))
    }
    fn log(&self, _level: LogLevel, _message: &str) {}
}

fn policy() -> AuthPolicy {
    let config: AuthConfig = serde_json::from_value(serde_json::json!({
        "keys": adversarial::keys_config(),
        "routes": [{"path": "/*", "mode": "required", "issuer": "https://issuer.example", "audience": "edge"}],
    }))
    .unwrap();
    let policy = config.build().unwrap();
    policy.check_keys().unwrap();
    policy
}

fn verify(c: &mut Criterion) {
    let policy = policy();
    let tokens = adversarial::valid_tokens(NOW);
    let mut group = c.benchmark_group("jwt_native");
    for (alg, token) in &tokens {
        let request = || {
            Request::builder()
                .uri("http://shop.example/api/users/1")
                .header("authorization", format!("Bearer {token}"))
                .body(Body::new())
                .unwrap()
        };
        group.bench_function(format!("{alg}/verify"), |b| {
            b.iter(|| {
                let platform = Bench::default();
                let mut request = request();
                now_or_never(admit(&policy, &platform, black_box(&mut request)))
                    .unwrap()
                    .unwrap()
            })
        });
        let platform = Bench::default();
        now_or_never(admit(&policy, &platform, &mut request()))
            .unwrap()
            .unwrap();
        group.bench_function(format!("{alg}/token_cache_hit"), |b| {
            b.iter(|| {
                let mut request = request();
                now_or_never(admit(&policy, &platform, black_box(&mut request)))
                    .unwrap()
                    .unwrap()
            })
        });
    }
    group.finish();
}

criterion_group!(benches, verify);
criterion_main!(benches);
