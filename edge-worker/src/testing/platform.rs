//! An in-memory [`Platform`] for tests and fuzz targets: a HashMap cache that honours `keep`,
//! a lock that can play another holder, and an upstream that is either a script or a list of
//! answers played in turn.
//!
//! Every port finishes at once, so the core's futures complete on their first poll
//! ([`crate::ready::now_or_never`]).

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::rc::Rc;
use std::time::{Duration, SystemTime};

use http::header::{self, HeaderValue};
use http::{HeaderMap, Request, Response, StatusCode};

use crate::routing::{Admission, HealthBoard};
use crate::{Body, CacheEntry, FetchError, Locked, LogLevel, Platform, Upstream};

/// An upstream as a function of the request.
pub type Respond = Rc<dyn Fn(&Request<Body>) -> Result<Response<Body>, FetchError>>;

/// How a [`MemoryPlatform`]'s upstream answers its fetches.
#[derive(Clone)]
pub enum Script {
    /// Each fetch is answered by the function.
    Function(Respond),
    /// The n-th fetch gets the n-th answer; the last one repeats; none at all is a refusal.
    Answers(Vec<Answer>),
}

/// One upstream answer: a response, or a failed fetch.
#[derive(Debug, Clone)]
pub enum Answer {
    Response {
        status: StatusCode,
        headers: HeaderMap,
        body: Body,
        /// Whether the HTTP client reports a Content-Length (always the true one).
        content_length: bool,
    },
    Fails,
}

impl Answer {
    /// What an HTTP client hands over for this answer: framing fields consumed, no body where
    /// the status has none (RFC 9110 §6.4.1), Content-Length only as the true length.
    pub fn received(self) -> Result<Response<Body>, FetchError> {
        let Answer::Response {
            status,
            mut headers,
            mut body,
            content_length,
        } = self
        else {
            return Err(FetchError("connection refused".into()));
        };
        headers.remove(header::CONTENT_LENGTH);
        headers.remove(header::TRANSFER_ENCODING);
        if status.is_informational()
            || status == StatusCode::NO_CONTENT
            || status == StatusCode::NOT_MODIFIED
        {
            body.clear();
        }
        if content_length {
            headers.insert(header::CONTENT_LENGTH, HeaderValue::from(body.len()));
        }
        let mut response = Response::new(body);
        *response.status_mut() = status;
        *response.headers_mut() = headers;
        Ok(response)
    }
}

/// The in-memory platform. Its fields are public so that a test can set the scene (a held
/// lock, a cache entry, a health board) and read what happened (the requests fetched).
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
    pub health: Option<HealthBoard>,
    /// The state of the seeded generator behind [`Platform::random`]: set it to replay draws.
    pub random_state: Cell<u64>,
}

impl MemoryPlatform {
    /// A platform at 2023-11-14T22:13:20Z whose upstream is `upstream`.
    pub fn new(
        upstream: impl Fn(&Request<Body>) -> Result<Response<Body>, FetchError> + 'static,
    ) -> Self {
        Self::with_script(
            SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000),
            Script::Function(Rc::new(upstream)),
        )
    }

    /// A platform at `now` whose upstream plays `answers` in turn.
    pub fn answering(now: SystemTime, answers: Vec<Answer>) -> Self {
        Self::with_script(now, Script::Answers(answers))
    }

    fn with_script(now: SystemTime, script: Script) -> Self {
        Self {
            now: Cell::new(now),
            lock_is_held: Cell::new(false),
            holder_stores: RefCell::default(),
            cache: RefCell::default(),
            kept_until: RefCell::default(),
            upstream: RefCell::new(script),
            fetched: RefCell::default(),
            health: None,
            random_state: Cell::new(RANDOM_SEED),
        }
    }

    /// Moves the clock `secs` forward.
    pub fn advance(&self, secs: u64) {
        self.now.set(self.now.get() + Duration::from_secs(secs));
    }

    /// Answers the following fetches with `upstream`.
    pub fn script(
        &self,
        upstream: impl Fn(&Request<Body>) -> Result<Response<Body>, FetchError> + 'static,
    ) {
        *self.upstream.borrow_mut() = Script::Function(Rc::new(upstream));
    }

    /// How many fetches the upstream has seen.
    pub fn fetches(&self) -> usize {
        self.fetched.borrow().len()
    }

    /// A copy in the same state (clock, cache, lock, fetches so far, upstream), to replay a
    /// request on without touching this one. A scripted upstream is shared.
    ///
    /// Panics on a platform with a health board, which cannot be copied.
    pub fn twin(&self) -> Self {
        assert!(self.health.is_none(), "a health board cannot be copied");
        Self {
            now: self.now.clone(),
            lock_is_held: self.lock_is_held.clone(),
            holder_stores: self.holder_stores.clone(),
            cache: self.cache.clone(),
            kept_until: self.kept_until.clone(),
            upstream: self.upstream.clone(),
            fetched: RefCell::new(self.fetched.borrow().iter().map(copy).collect()),
            health: None,
            random_state: self.random_state.clone(),
        }
    }
}

/// The seed every [`MemoryPlatform`] starts from, so tests repeat.
pub const RANDOM_SEED: u64 = 0x5eed;

/// SplitMix64 (Steele et al.): a tiny seeded generator, enough for jitter draws in tests.
pub fn splitmix64(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// `request` again (its extensions aside: `Request` is not `Clone`).
fn copy(request: &Request<Body>) -> Request<Body> {
    let mut copy = Request::new(request.body().clone());
    *copy.method_mut() = request.method().clone();
    *copy.uri_mut() = request.uri().clone();
    *copy.version_mut() = request.version();
    *copy.headers_mut() = request.headers().clone();
    copy
}

impl Platform for MemoryPlatform {
    fn now(&self) -> SystemTime {
        self.now.get()
    }

    fn random(&self) -> u64 {
        let mut state = self.random_state.get();
        let draw = splitmix64(&mut state);
        self.random_state.set(state);
        draw
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
        // A store keeps an entry at most for as long as its clock can say.
        let until = self
            .now
            .get()
            .checked_add(keep)
            .unwrap_or(SystemTime::UNIX_EPOCH + Duration::from_secs(1 << 40));
        self.cache.borrow_mut().insert(key.to_string(), entry);
        self.kept_until.borrow_mut().insert(key.to_string(), until);
    }

    async fn cache_delete(&self, key: &str) {
        self.cache.borrow_mut().remove(key);
        self.kept_until.borrow_mut().remove(key);
    }

    type Guard = ();

    async fn lock(&self, _key: &str) -> Locked<()> {
        if self.lock_is_held.get() {
            if let Some((key, entry)) = self.holder_stores.borrow_mut().take() {
                self.cache.borrow_mut().insert(key, entry);
            }
            Locked::Read
        } else {
            Locked::Write(())
        }
    }

    async fn fetch(&self, request: Request<Body>) -> Result<Upstream, FetchError> {
        let result = match &*self.upstream.borrow() {
            Script::Function(respond) => respond(&request),
            Script::Answers(answers) => {
                let n = self.fetched.borrow().len();
                let answer = answers.get(n).or(answers.last()).cloned();
                answer.unwrap_or(Answer::Fails).received()
            }
        };
        self.fetched.borrow_mut().push(request);
        result.map(Upstream::new)
    }

    fn log(&self, _level: LogLevel, _message: &str) {}

    fn origin_admit(&self, origin: &str) -> Admission {
        self.health
            .as_ref()
            .map_or(Admission::Allow, |h| h.admit(origin, self.now.get()))
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
