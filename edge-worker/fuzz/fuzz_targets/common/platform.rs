//! A small in-memory `Platform` for the fuzz targets (the crate's own `MemoryPlatform` is
//! cfg(test) only): a HashMap cache that honours `keep`, a lock that always lets the caller
//! fetch, and an upstream that plays fuzz-chosen answers in turn (the last one repeats).
//!
//! Every port finishes at once, so the core's futures complete on their first poll
//! (`edge_worker::ready::now_or_never`).

#![allow(dead_code)] // why: shared by several targets, each using a part

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::time::{Duration, SystemTime};

use edge_worker::{Body, CacheEntry, FetchError, Locked, LogLevel, Platform, Upstream};
use http::header::{self, HeaderValue};
use http::{HeaderMap, Request, Response, StatusCode};

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

#[derive(Clone)]
pub struct FuzzPlatform {
    pub now: Cell<SystemTime>,
    pub cache: RefCell<HashMap<String, CacheEntry>>,
    pub kept_until: RefCell<HashMap<String, SystemTime>>,
    pub answers: Vec<Answer>,
    pub next: Cell<usize>,
    pub fetches: Cell<usize>,
}

impl FuzzPlatform {
    pub fn new(now: SystemTime, answers: Vec<Answer>) -> Self {
        Self {
            now: Cell::new(now),
            cache: RefCell::default(),
            kept_until: RefCell::default(),
            answers,
            next: Cell::new(0),
            fetches: Cell::new(0),
        }
    }

    pub fn advance(&self, secs: u64) {
        self.now.set(self.now.get() + Duration::from_secs(secs));
    }
}

impl Platform for FuzzPlatform {
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
        Locked::Write(())
    }

    async fn fetch(&self, _request: Request<Body>) -> Result<Upstream, FetchError> {
        let i = self.next.get();
        self.next.set(i + 1);
        self.fetches.set(self.fetches.get() + 1);
        let answer = self
            .answers
            .get(i)
            .or(self.answers.last())
            .cloned()
            .unwrap_or(Answer::Fails);
        let Answer::Response {
            status,
            mut headers,
            mut body,
            content_length,
        } = answer
        else {
            return Err(FetchError("connection refused".into()));
        };
        // What an HTTP client hands over: framing fields consumed, no body where the status
        // has none (RFC 9110 §6.4.1), Content-Length only as the true length.
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
        Ok(Upstream::new(response))
    }

    fn log(&self, _level: LogLevel, _message: &str) {}
}
