//! The edge worker as a wasm component (`wasm32-wasip2`): WIT records in, the pure core, WIT
//! records out. Only type conversion lives here; behaviour lives in `edge-worker`.

// why: the export glue that wit-bindgen generates is `unsafe extern "C"`; our own code has none.
#![allow(unsafe_code)]

mod convert;

use std::cell::RefCell;
use std::rc::Rc;
use std::time::{Duration, SystemTime};

use edge_worker::encoding::Coding;
use edge_worker::ready::now_or_never;
use edge_worker::routing::{Admission, Geo, LazyRouter};
use edge_worker::{
    Body, CacheEntry, Deferred, EdgeWorker, FetchError, Hedged, Locked, LogLevel, Platform,
    Upstream, WorkerConfig, WorkerError,
};

/// Bindings generated from `wit/edge-worker.wit`.
#[allow(clippy::too_many_arguments)] // why: generated code flattens WIT records into arguments
mod bindings {
    wit_bindgen::generate!({
    path: "../../wit",
        world: "edge-worker",
        pub_export_macro: true,
    });
}

use bindings::edge::worker::types;
use bindings::edge::worker::{cache, clock, config, log, random, upstream};
use bindings::Guest;

struct Component;

/// The core's ports over the host's imports. Every import is synchronous from the guest's
/// side, so every future the core awaits is ready on its first poll.
struct HostPlatform;

impl Platform for HostPlatform {
    fn now(&self) -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_millis(clock::now_ms())
    }

    fn random(&self) -> u64 {
        random::next_u64()
    }

    async fn cache_get(&self, key: &str) -> Option<CacheEntry> {
        cache::get(key).and_then(convert::entry_from_host)
    }

    async fn cache_put(&self, key: &str, entry: CacheEntry, keep: Duration) {
        let keep_ms = u64::try_from(keep.as_millis()).unwrap_or(u64::MAX);
        cache::put(key, convert::entry_to_host(&entry), keep_ms);
    }

    async fn cache_delete(&self, key: &str) {
        cache::delete(key);
    }

    /// The host coalesces per PoP across instances; the guard gives the key back when the
    /// tier is done with it (and the host releases what a trapped instance held).
    type Guard = LockGuard;

    async fn lock(&self, key: &str) -> Locked<LockGuard> {
        if cache::lock(key) {
            Locked::Write(LockGuard(key.to_string()))
        } else {
            Locked::Read
        }
    }

    async fn fetch(&self, request: http::Request<Body>) -> Result<Upstream, FetchError> {
        match upstream::fetch(&convert::request_to_wit(request)) {
            Ok(response) => upstream(response),
            Err(message) => Err(FetchError(message)),
        }
    }

    /// The guest cannot run two fetches at once; the host races them.
    async fn fetch_hedged(
        &self,
        primary: http::Request<Body>,
        backup: http::Request<Body>,
        after: Duration,
    ) -> Result<Hedged, FetchError> {
        let after_ms = u64::try_from(after.as_millis()).unwrap_or(u64::MAX);
        let hedged = upstream::fetch_hedged(
            &convert::request_to_wit(primary),
            &convert::request_to_wit(backup),
            after_ms,
        )
        .map_err(FetchError)?;
        Ok(Hedged {
            upstream: upstream(hedged.response)?,
            backup_won: hedged.backup_won,
        })
    }

    fn origin_admit(&self, origin: &str) -> Admission {
        match upstream::origin_admit(origin) {
            Ok(()) => Admission::Allow,
            Err(wait_ms) => Admission::Reject {
                retry_after: Duration::from_millis(wait_ms),
            },
        }
    }

    fn origin_report(&self, origin: &str, ok: bool) {
        upstream::origin_report(origin, ok);
    }

    /// The host codes (natively, and once per distinct body and level across PoPs): a body
    /// it holds is never copied into the guest for it.
    async fn encode(&self, coding: Coding, level: u32, body: &Body) -> Body {
        let coding = match coding {
            Coding::Gzip => types::ContentCoding::Gzip,
            Coding::Brotli => types::ContentCoding::Br,
            Coding::Zstd => types::ContentCoding::Zstd,
            Coding::Identity => return body.clone(),
        };
        let coded = convert::with_handle(body, |handle| handle.encode(coding, level));
        convert::body_from_wit(coded)
    }

    fn log(&self, level: LogLevel, message: &str) {
        let level = match level {
            LogLevel::Debug => types::LogLevel::Debug,
            LogLevel::Info => types::LogLevel::Info,
            LogLevel::Warn => types::LogLevel::Warn,
            LogLevel::Error => types::LogLevel::Error,
        };
        log::write(level, message);
    }
}

/// A held fetch lock at the host.
struct LockGuard(String);

impl Drop for LockGuard {
    fn drop(&mut self) {
        cache::unlock(&self.0);
    }
}

fn upstream(answer: types::UpstreamResponse) -> Result<Upstream, FetchError> {
    let hops = answer.hops.into_iter().map(convert::hop_from_wit).collect();
    convert::response_from_wit(answer.response)
        .map(|response| Upstream::via(response, hops))
        .map_err(|e| FetchError(format!("unusable upstream response: {e}")))
}

/// Where the request comes from, as the host reports it.
fn geo(ctx: &types::RequestContext) -> Geo {
    Geo::new(
        ctx.country.as_deref(),
        ctx.continent.as_deref(),
        Some(&ctx.pop),
        ctx.latitude.zip(ctx.longitude),
    )
}

/// What an instance keeps between the requests it serves (Cloudflare's isolate globals): the
/// worker built from the host's configuration (auth keys parsed, router prepared), for one
/// PoP. Nothing of a request lives here: responses and verified tokens go through the host's
/// caches, keyed as RFC 9111 and the auth design require, and each request's own values are
/// dropped when `handle` returns.
struct IsolateState {
    pop: String,
    worker: Result<Rc<EdgeWorker>, String>,
}

thread_local! {
    /// `None` until the instance's first call. A wasm instance is single-threaded, so a
    /// thread-local is the instance's global.
    static ISOLATE: RefCell<Option<IsolateState>> = const { RefCell::new(None) };
}

/// The worker for this PoP: built on the instance's first request and kept for the next ones.
/// An unusable configuration is refused by the host at start-up; if one arrives anyway the
/// worker fails closed (500) on every request of this instance.
fn worker(ctx: &types::RequestContext) -> Result<Rc<EdgeWorker>, WorkerError> {
    ISOLATE.with(|cell| {
        let mut state = cell.borrow_mut();
        let built = match state.as_ref() {
            // Hosts give an instance one PoP; a different one rebuilds rather than misnames
            // the cache in Cache-Status.
            Some(isolate) if isolate.pop == ctx.pop => isolate.worker.clone(),
            _ => {
                install_panic_hook();
                let worker = build_worker(ctx).map(Rc::new);
                *state = Some(IsolateState {
                    pop: ctx.pop.clone(),
                    worker: worker.clone(),
                });
                worker
            }
        };
        built.map_err(WorkerError::Config)
    })
}

/// The worker from the host's auth, routing and cache policy configurations (checked by the host at
/// start-up, so keys and routing are prepared when first used).
fn build_worker(ctx: &types::RequestContext) -> Result<EdgeWorker, String> {
    let routing = config::routing_mode()
        .map(|redirect| LazyRouter::from_loader(redirect, config::routing_config));
    let config = WorkerConfig::prechecked(config::auth_config().as_deref(), routing)
        .and_then(|config| config.with_cache_policy(config::cache_policy().as_deref()))
        .map_err(|e| e.to_string())?;
    Ok(config.worker(&ctx.pop))
}

/// Panics abort the instance (a trap); say why through our own log import first, since the
/// host gives the guest no stderr.
fn install_panic_hook() {
    std::panic::set_hook(Box::new(|info| {
        log::write(types::LogLevel::Error, &format!("worker panicked: {info}"));
    }));
}

fn refused(error: WorkerError, ctx: &types::RequestContext) -> types::Outcome {
    let edge = edge_worker::hops::Hop::new(edge_worker::hops::TierId::edge(&ctx.pop));
    types::Outcome {
        response: convert::response_to_wit(error.to_response()),
        deferred: Vec::new(),
        hops: vec![convert::hop_to_wit(edge)],
        route: None,
        recompression_saved: 0,
        exposures: Vec::new(),
        parts: Vec::new(),
    }
}

impl Guest for Component {
    fn handle(request: types::Request, ctx: types::RequestContext) -> types::Outcome {
        let worker = match worker(&ctx) {
            Ok(worker) => worker,
            Err(error) => return refused(error, &ctx),
        };
        let request = match convert::request_from_wit(request) {
            Ok(mut request) => {
                request.extensions_mut().insert(geo(&ctx));
                request
            }
            Err(error) => return refused(error, &ctx),
        };
        let outcome = now_or_never(worker.handle(&HostPlatform, request))
            .expect("host imports are synchronous, so the core never waits");
        convert::outcome_to_wit(outcome)
    }

    fn run_deferred(task: types::Deferred, ctx: types::RequestContext) {
        let Ok(worker) = worker(&ctx) else {
            return;
        };
        let Ok(mut task) = convert::deferred_from_wit(task) else {
            return;
        };
        if let Deferred::Revalidate(request) = &mut task {
            request.extensions_mut().insert(geo(&ctx));
        }
        now_or_never(worker.run_deferred(&HostPlatform, task))
            .expect("host imports are synchronous, so the core never waits");
    }
}

bindings::export!(Component with_types_in bindings);
