//! In-memory ports and a scripted upstream for the core's unit tests.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::time::{Duration, SystemTime};

use http::{Request, Response};

use crate::{Body, CacheEntry, FetchError, LogLevel, Platform, Upstream};

pub type Script = Box<dyn Fn(&Request<Body>) -> Result<Response<Body>, FetchError>>;

pub struct MemoryPlatform {
    pub now: Cell<SystemTime>,
    /// When set, `lock` answers as if another request held it, and on release had stored
    /// `holder_stores` (if any).
    pub lock_is_held: Cell<bool>,
    pub holder_stores: RefCell<Option<(String, CacheEntry)>>,
    pub cache: RefCell<HashMap<String, CacheEntry>>,
    /// When each slot stops being kept (the `keep` of `cache_put`).
    pub kept_until: RefCell<HashMap<String, SystemTime>>,
    pub upstream: RefCell<Script>,
    pub fetched: RefCell<Vec<Request<Body>>>,
    /// Passive health, when a test routes between origins.
    pub health: Option<crate::routing::HealthBoard>,
}

impl MemoryPlatform {
    pub fn new(
        upstream: impl Fn(&Request<Body>) -> Result<Response<Body>, FetchError> + 'static,
    ) -> Self {
        Self {
            now: Cell::new(SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000)),
            lock_is_held: Cell::new(false),
            holder_stores: RefCell::default(),
            cache: RefCell::default(),
            kept_until: RefCell::default(),
            upstream: RefCell::new(Box::new(upstream)),
            fetched: RefCell::default(),
            health: None,
        }
    }
    pub fn advance(&self, secs: u64) {
        self.now.set(self.now.get() + Duration::from_secs(secs));
    }
    pub fn script(
        &self,
        upstream: impl Fn(&Request<Body>) -> Result<Response<Body>, FetchError> + 'static,
    ) {
        *self.upstream.borrow_mut() = Box::new(upstream);
    }
    pub fn fetches(&self) -> usize {
        self.fetched.borrow().len()
    }
}

impl Platform for MemoryPlatform {
    fn now(&self) -> SystemTime {
        self.now.get()
    }
    async fn cache_get(&self, key: &str) -> Option<CacheEntry> {
        let expired = self
            .kept_until
            .borrow()
            .get(key)
            .is_some_and(|until| *until <= self.now.get());
        if expired {
            self.cache.borrow_mut().remove(key);
            self.kept_until.borrow_mut().remove(key);
        }
        self.cache.borrow().get(key).cloned()
    }
    async fn cache_put(&self, key: &str, entry: CacheEntry, keep: Duration) {
        self.cache.borrow_mut().insert(key.to_string(), entry);
        self.kept_until
            .borrow_mut()
            .insert(key.to_string(), self.now.get() + keep);
    }
    async fn cache_delete(&self, key: &str) {
        self.cache.borrow_mut().remove(key);
        self.kept_until.borrow_mut().remove(key);
    }
    type Guard = ();
    async fn lock(&self, _key: &str) -> crate::Locked<()> {
        if self.lock_is_held.get() {
            if let Some((key, entry)) = self.holder_stores.borrow_mut().take() {
                self.cache.borrow_mut().insert(key, entry);
            }
            crate::Locked::Read
        } else {
            crate::Locked::Write(())
        }
    }
    async fn fetch(&self, request: Request<Body>) -> Result<Upstream, FetchError> {
        let result = (self.upstream.borrow())(&request);
        self.fetched.borrow_mut().push(request);
        result.map(Upstream::new)
    }
    fn log(&self, _level: LogLevel, _message: &str) {}
    fn origin_admit(&self, origin: &str) -> crate::routing::Admission {
        self.health
            .as_ref()
            .map_or(crate::routing::Admission::Allow, |h| {
                h.admit(origin, self.now.get())
            })
    }
    fn origin_report(&self, origin: &str, ok: bool) {
        if let Some(health) = &self.health {
            health.record(origin, self.now.get(), ok);
        }
    }
}

/// A response header as text, or "" when absent.
pub fn header<'a>(response: &'a Response<Body>, name: &str) -> &'a str {
    response
        .headers()
        .get(name)
        .map_or("", |v| v.to_str().unwrap())
}
