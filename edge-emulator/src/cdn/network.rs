//! Simulated time on the wire: hops are slept for `rtt × time_scale`, and reported at their
//! full simulated length.

use std::sync::Arc;
use std::time::Duration;

use crate::cdn::clock::EmulatorClock;

pub struct Network {
    pub clock: Arc<EmulatorClock>,
    pub time_scale: f64,
    /// Relative RTT jitter (standard deviation); 0: exact RTTs.
    pub jitter: f64,
    /// Seeded draws for the jitter: one run's hops draw in the same order every time.
    pub rng: std::sync::Mutex<fastrand::Rng>,
    /// Draws for the caches' TTL jitter (`Platform::random`), apart from `rng` so that turning
    /// TTL jitter on does not move the RTT draws. Seeded in the simulator, OS-seeded in `serve`.
    pub draws: std::sync::Mutex<fastrand::Rng>,
}

impl Network {
    /// One draw for a cache's TTL jitter.
    pub fn random(&self) -> u64 {
        self.draws.lock().unwrap_or_else(|e| e.into_inner()).u64(..)
    }

    /// Waits out one round trip of `rtt` (scaled, jittered).
    pub async fn traverse(&self, rtt: Duration) {
        let rtt = if self.jitter > 0.0 {
            let mut rng = self.rng.lock().unwrap_or_else(|e| e.into_inner());
            let (u, v) = (1.0 - rng.f64(), rng.f64());
            let z = (-2.0 * u.ln()).sqrt() * (std::f64::consts::TAU * v).cos();
            rtt.mul_f64((1.0 + self.jitter * z).max(0.0))
        } else {
            rtt
        };
        let scaled = rtt.mul_f64(self.time_scale);
        if !scaled.is_zero() {
            tokio::time::sleep(scaled).await;
        }
    }

    /// The simulated length of a hop that really took `elapsed` including its scaled sleep.
    pub fn simulated(&self, rtt: Duration, elapsed: Duration) -> Duration {
        rtt + elapsed.saturating_sub(rtt.mul_f64(self.time_scale))
    }
}
