//! Request coalescing per cache key with a bounded wait, shared by the edge PoPs (through the
//! worker's `cache-lock` import) and the regional tiers: the first request for a key fetches;
//! the others wait for it, at most `wait_limit`, and then look in the cache again. A waiter
//! that gives up fetches on its own, as nginx does after `proxy_cache_lock_timeout`, so one
//! slow origin response cannot hold a crowd of requests hostage.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::watch;

/// How long a request waits for another's fetch of the same key by default (nginx's
/// `proxy_cache_lock_timeout` default).
pub const DEFAULT_WAIT_LIMIT: Duration = Duration::from_secs(5);

type Inflight = Arc<Mutex<HashMap<String, watch::Receiver<()>>>>;

pub struct Coalescer {
    inflight: Inflight,
    wait_limit: Duration,
    /// Waits that hit `wait_limit`.
    pub timeouts: AtomicU64,
}

/// Held by the request that fetches a key; dropping it lets the waiters look again.
pub struct FetchGuard {
    key: String,
    inflight: Inflight,
    _sender: watch::Sender<()>,
}

impl Drop for FetchGuard {
    fn drop(&mut self) {
        self.inflight
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&self.key);
    }
}

impl Coalescer {
    pub fn new(wait_limit: Duration) -> Self {
        Self {
            inflight: Arc::default(),
            wait_limit,
            timeouts: AtomicU64::new(0),
        }
    }

    /// The fetch lock for `key` (`Some`), or `None` once the request holding it has finished
    /// or the wait limit has passed.
    pub async fn lock(&self, key: &str) -> Option<FetchGuard> {
        let mut receiver = {
            let mut inflight = self.inflight.lock().unwrap_or_else(|e| e.into_inner());
            match inflight.get(key) {
                Some(receiver) => receiver.clone(),
                None => {
                    let (sender, receiver) = watch::channel(());
                    inflight.insert(key.to_string(), receiver);
                    return Some(FetchGuard {
                        key: key.to_string(),
                        inflight: self.inflight.clone(),
                        _sender: sender,
                    });
                }
            }
        };
        // `changed` resolves with an error once the holder's guard (the sender) is dropped.
        if tokio::time::timeout(self.wait_limit, receiver.changed())
            .await
            .is_err()
        {
            self.timeouts.fetch_add(1, Ordering::Relaxed);
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn one_holder_waiters_wake_when_it_finishes_and_give_up_after_the_limit() {
        let coalescer = Arc::new(Coalescer::new(Duration::from_secs(5)));
        let guard = coalescer.lock("k").await.expect("first takes the lock");
        let waiter = {
            let c = coalescer.clone();
            tokio::spawn(async move { c.lock("k").await.is_none() })
        };
        tokio::time::sleep(Duration::from_secs(1)).await;
        drop(guard);
        assert!(waiter.await.unwrap(), "a waiter is told to look again");
        assert_eq!(coalescer.timeouts.load(Ordering::Relaxed), 0);

        let _stuck = coalescer.lock("k").await.expect("free again");
        let started = tokio::time::Instant::now();
        assert!(coalescer.lock("k").await.is_none());
        assert_eq!(started.elapsed(), Duration::from_secs(5));
        assert_eq!(coalescer.timeouts.load(Ordering::Relaxed), 1);
        assert!(
            coalescer.lock("other").await.is_some(),
            "keys are independent"
        );
    }
}
