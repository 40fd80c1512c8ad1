//! The core's `Platform` over workers-rs: the classic Cache API, `fetch`, `Date.now()`,
//! `console.*`.

use std::rc::Rc;
use std::time::{Duration, SystemTime};

use edge_worker::{Body, CacheEntry, FetchError, Locked, LogLevel, Platform, Upstream};
use http::uri::Authority;
use worker::{console_debug, console_error, console_log, console_warn, Cache, Date, Fetch};

use edge_worker::config::upstream_uri;

use crate::config::Settings;
use crate::{codec, convert};

/// Path prefix of the synthetic URLs our cache slots live under.
const CACHE_PATH: &str = "/__edge-cache/";

/// One request's view of the platform (also used by its background work).
pub struct CfPlatform {
    cache: Cache,
    settings: Rc<Settings>,
    /// The host the client asked for: cache slots live under it (the Cache API stores per zone)
    /// and upstream requests for it may go to the `ORIGIN` override.
    zone: Option<Authority>,
}

impl CfPlatform {
    pub fn new(settings: Rc<Settings>, zone: Option<Authority>) -> Self {
        Self {
            cache: Cache::default(),
            settings,
            zone,
        }
    }

    /// The Cache API keys only by URL: every slot of ours is a GET of
    /// `https://<zone>/__edge-cache/<key, percent-encoded>`.
    fn slot_url(&self, key: &str) -> String {
        let zone = self
            .zone
            .as_ref()
            .map_or("edge-cache.invalid", |z| z.host());
        let key: String = form_urlencoded::byte_serialize(key.as_bytes()).collect();
        format!("https://{zone}{CACHE_PATH}{key}")
    }
}

impl Platform for CfPlatform {
    fn now(&self) -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_millis(Date::now().as_millis())
    }

    /// `Math.random()` twice (32 bits from each): jitter needs spread, not secrecy, and this
    /// costs no crypto import.
    fn random(&self) -> u64 {
        let half = || (js_sys::Math::random() * 4_294_967_296.0) as u64 & 0xffff_ffff;
        (half() << 32) | half()
    }

    async fn cache_get(&self, key: &str) -> Option<CacheEntry> {
        let mut response = match self.cache.get(self.slot_url(key), false).await {
            Ok(Some(response)) => response,
            Ok(None) => return None,
            Err(error) => {
                self.log(LogLevel::Warn, &format!("cache match failed: {error}"));
                return None;
            }
        };
        let bytes = response.bytes().await.ok()?;
        match codec::decode(&bytes) {
            Ok(entry) => Some(entry),
            Err(error) => {
                self.log(
                    LogLevel::Warn,
                    &format!("cache slot {key:?} unusable: {error}"),
                );
                None
            }
        }
    }

    async fn cache_put(&self, key: &str, entry: CacheEntry, keep: Duration) {
        // The Cache API expires by the stored response's max-age; under a second would not be
        // stored at all, and the core decides freshness itself from what it stored.
        let keep_secs = keep.as_secs() + u64::from(keep.subsec_nanos() > 0);
        if keep_secs == 0 {
            return;
        }
        let tags = match &entry {
            CacheEntry::Response(stored) => {
                let tags: Vec<&str> = stored
                    .headers
                    .get_all(edge_worker::purge::CACHE_TAG)
                    .iter()
                    .filter_map(|v| v.to_str().ok())
                    .collect();
                (!tags.is_empty()).then(|| tags.join(","))
            }
            _ => None,
        };
        let response =
            convert::cache_slot_response(codec::encode(&entry), keep_secs, tags.as_deref());
        if let Err(error) = self.cache.put(self.slot_url(key), response).await {
            self.log(LogLevel::Warn, &format!("cache put failed: {error}"));
        }
    }

    async fn cache_delete(&self, key: &str) {
        if let Err(error) = self.cache.delete(self.slot_url(key), false).await {
            self.log(LogLevel::Warn, &format!("cache delete failed: {error}"));
        }
    }

    /// No coalescing: the Cache API has no locks and isolates share nothing.
    type Guard = ();

    async fn lock(&self, _key: &str) -> Locked<()> {
        Locked::Write(())
    }

    async fn fetch(&self, request: http::Request<Body>) -> Result<Upstream, FetchError> {
        let uri = upstream_uri(
            request.uri(),
            self.zone.as_ref(),
            self.settings.origin.as_ref(),
        );
        let request = convert::request_to_worker(request, &uri)
            .map_err(|e| FetchError(format!("cannot build the upstream request: {e}")))?;
        let response = Fetch::Request(request)
            .send()
            .await
            .map_err(|e| FetchError(e.to_string()))?;
        convert::response_from_worker(response)
            .await
            .map(Upstream::new)
            .map_err(|e| FetchError(format!("unusable upstream response: {e}")))
    }

    fn origin_admit(&self, origin: &str) -> edge_worker::routing::Admission {
        match &self.settings.health {
            Some(health) => health.admit(origin, self.now()),
            None => edge_worker::routing::Admission::Allow,
        }
    }

    fn origin_report(&self, origin: &str, ok: bool) {
        if let Some(health) = &self.settings.health {
            health.record(origin, self.now(), ok);
        }
    }

    fn log(&self, level: LogLevel, message: &str) {
        match level {
            LogLevel::Debug => console_debug!("{message}"),
            LogLevel::Info => console_log!("{message}"),
            LogLevel::Warn => console_warn!("{message}"),
            LogLevel::Error => console_error!("{message}"),
        }
    }
}
