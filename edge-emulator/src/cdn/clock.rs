//! The emulator's clock: wall time plus an offset that tests and users can move forward
//! (`POST /__emulator/clock`), so TTLs expire without waiting.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime};

#[derive(Debug, Default)]
pub struct EmulatorClock {
    offset_ms: AtomicU64,
    /// Virtual time (the simulator): this start plus how far the tokio runtime's paused clock
    /// has moved since `at`. `None`: wall time (serve).
    virtual_base: Option<(SystemTime, tokio::time::Instant)>,
}

impl EmulatorClock {
    /// A clock that reads the tokio runtime's clock, which the simulator runs paused: it moves
    /// only when every task waits on a timer, straight to the next deadline. Create it inside
    /// that runtime.
    pub fn virtual_from(start: SystemTime) -> Self {
        Self {
            offset_ms: AtomicU64::new(0),
            virtual_base: Some((start, tokio::time::Instant::now())),
        }
    }

    pub fn now(&self) -> SystemTime {
        let base = match self.virtual_base {
            Some((start, at)) => start + at.elapsed(),
            None => {
                #[allow(clippy::disallowed_methods)]
                // why: this is the one place serve mode reads the OS clock
                let wall = SystemTime::now();
                wall
            }
        };
        base + Duration::from_millis(self.offset_ms.load(Ordering::Relaxed))
    }

    pub fn now_ms(&self) -> u64 {
        unix_ms(self.now())
    }

    /// Moves time forward for every tier and origin at once.
    pub fn advance(&self, by: Duration) {
        let ms = u64::try_from(by.as_millis()).unwrap_or(u64::MAX);
        self.offset_ms.fetch_add(ms, Ordering::Relaxed);
    }

    pub fn offset(&self) -> Duration {
        Duration::from_millis(self.offset_ms.load(Ordering::Relaxed))
    }

    /// Takes the offset back to zero: the clock reads real time again. Stored responses
    /// then look younger than they are (their ages saturate at zero), never older.
    pub fn reset(&self) {
        self.offset_ms.store(0, Ordering::Relaxed);
    }
}

/// `2026-12-07T15:04:05.123Z`: the RFC 3339 form admin replies and reports show beside epoch
/// milliseconds.
/// Always three fractional digits, so the times of a log line up.
pub fn rfc3339(time: SystemTime) -> String {
    const FORMAT: &[time::format_description::BorrowedFormatItem<'_>] = time::macros::format_description!(
        "[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:3]Z"
    );
    time::OffsetDateTime::from(time)
        .format(FORMAT)
        .unwrap_or_else(|_| unix_ms(time).to_string())
}

impl origin_stub::Clock for EmulatorClock {
    fn now(&self) -> SystemTime {
        EmulatorClock::now(self)
    }
}

pub fn unix_ms(time: SystemTime) -> u64 {
    time.duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_has_milliseconds_and_utc() {
        let at = SystemTime::UNIX_EPOCH + Duration::from_millis(1_796_655_845_123);
        assert_eq!(rfc3339(at), "2026-12-07T15:04:05.123Z");
        assert_eq!(rfc3339(SystemTime::UNIX_EPOCH), "1970-01-01T00:00:00.000Z");
    }

    #[test]
    fn reset_takes_the_offset_back() {
        let clock = EmulatorClock::default();
        clock.advance(Duration::from_secs(3600));
        clock.reset();
        assert_eq!(clock.offset(), Duration::ZERO);
    }

    #[test]
    fn advancing_moves_now_forward() {
        let clock = EmulatorClock::default();
        let before = clock.now();
        clock.advance(Duration::from_secs(61));
        assert!(clock.now().duration_since(before).unwrap() >= Duration::from_secs(61));
    }
}
