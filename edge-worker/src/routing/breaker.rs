//! Passive health per origin: a circuit breaker (closed → open after N failures within a
//! window → one half-open probe after a cool-down), as Envoy's outlier detection and
//! resilience4j do. Pure state machines over `now`; the host keeps a [`HealthBoard`] across
//! requests and serialises access to it, so one probe goes out per cool-down however many
//! instances run at once.

use std::collections::{BTreeMap, VecDeque};
use std::sync::Mutex;
use std::time::{Duration, SystemTime};

use super::BreakerConfig;

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum BreakerState {
    Closed,
    Open,
    HalfOpen,
}

/// Whether a request may go to an origin now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admission {
    Allow,
    /// The circuit was open and its cool-down is over: this request is the probe.
    Probe,
    /// The circuit is open (or a probe is out); try again after this long.
    Reject {
        retry_after: Duration,
    },
}

impl Admission {
    pub fn admitted(self) -> bool {
        !matches!(self, Admission::Reject { .. })
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Closed,
    Open {
        until: SystemTime,
    },
    /// `probe_since`: when the probe went out; a probe that never reports (its instance
    /// trapped) is replaced after one more cool-down.
    HalfOpen {
        probe_since: SystemTime,
    },
}

#[derive(Debug, Clone)]
pub struct CircuitBreaker {
    config: BreakerConfig,
    state: State,
    /// Times of the most recent failures while closed, at most `config.failures` of them.
    failures: VecDeque<SystemTime>,
    /// State transitions so far (for metrics).
    pub changes: u64,
}

impl CircuitBreaker {
    pub fn new(config: BreakerConfig) -> Self {
        Self {
            config,
            state: State::Closed,
            failures: VecDeque::new(),
            changes: 0,
        }
    }

    pub fn state(&self) -> BreakerState {
        match self.state {
            State::Closed => BreakerState::Closed,
            State::Open { .. } => BreakerState::Open,
            State::HalfOpen { .. } => BreakerState::HalfOpen,
        }
    }

    pub fn admit(&mut self, now: SystemTime) -> Admission {
        match self.state {
            State::Closed => Admission::Allow,
            State::Open { until } if now < until => Admission::Reject {
                retry_after: until.duration_since(now).unwrap_or_default(),
            },
            State::Open { .. } => {
                self.set(State::HalfOpen { probe_since: now });
                Admission::Probe
            }
            State::HalfOpen { probe_since } => {
                let stuck_after = probe_since + self.config.cooldown();
                if now >= stuck_after {
                    self.state = State::HalfOpen { probe_since: now };
                    Admission::Probe
                } else {
                    Admission::Reject {
                        retry_after: stuck_after.duration_since(now).unwrap_or_default(),
                    }
                }
            }
        }
    }

    pub fn record(&mut self, now: SystemTime, ok: bool) {
        match (self.state, ok) {
            (State::HalfOpen { .. }, true) => {
                self.failures.clear();
                self.set(State::Closed);
            }
            (State::HalfOpen { .. }, false) => self.trip(now),
            (State::Closed, false) => {
                if self.failures.len() == self.config.failures as usize {
                    self.failures.pop_front();
                }
                self.failures.push_back(now);
                let window_start = now.checked_sub(self.config.window()).unwrap_or(now);
                let recent = self.failures.iter().filter(|&&t| t > window_start).count();
                if recent >= self.config.failures as usize {
                    self.trip(now);
                }
            }
            // Successes while closed change nothing; late answers after opening are ignored.
            (State::Closed, true) | (State::Open { .. }, _) => {}
        }
    }

    fn trip(&mut self, now: SystemTime) {
        self.failures.clear();
        self.set(State::Open {
            until: now + self.config.cooldown(),
        });
    }

    fn set(&mut self, state: State) {
        self.state = state;
        self.changes += 1;
    }
}

/// What a host reports of one origin's health.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct HealthSnapshot {
    pub state: BreakerState,
    pub state_changes: u64,
}

/// The breakers of one worker location (a PoP, an isolate), by origin name.
#[derive(Debug)]
pub struct HealthBoard {
    config: BreakerConfig,
    breakers: Mutex<BTreeMap<String, CircuitBreaker>>,
}

impl HealthBoard {
    pub fn new(config: BreakerConfig) -> Self {
        Self {
            config,
            breakers: Mutex::default(),
        }
    }

    /// Origins are named by a configuration the host checked, so the map stays as small as
    /// the origin list; an unknown name from a confused guest is admitted without a record.
    pub fn admit(&self, origin: &str, now: SystemTime) -> Admission {
        match self.lock().get_mut(origin) {
            Some(breaker) => breaker.admit(now),
            None => Admission::Allow,
        }
    }

    pub fn record(&self, origin: &str, now: SystemTime, ok: bool) {
        if let Some(breaker) = self.lock().get_mut(origin) {
            breaker.record(now, ok);
        }
    }

    /// Starts tracking `origin` (idempotent).
    pub fn track(&self, origin: &str) {
        self.lock()
            .entry(origin.to_string())
            .or_insert_with(|| CircuitBreaker::new(self.config));
    }

    pub fn snapshot(&self) -> BTreeMap<String, HealthSnapshot> {
        self.lock()
            .iter()
            .map(|(name, b)| {
                (
                    name.clone(),
                    HealthSnapshot {
                        state: b.state(),
                        state_changes: b.changes,
                    },
                )
            })
            .collect()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, CircuitBreaker>> {
        self.breakers.lock().unwrap_or_else(|e| e.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> BreakerConfig {
        BreakerConfig {
            failures: 3,
            window_ms: 10_000,
            cooldown_ms: 5_000,
        }
    }

    fn at(secs: u64) -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000 + secs)
    }

    #[test]
    fn opens_after_n_failures_in_the_window_and_probes_after_the_cooldown() {
        let mut b = CircuitBreaker::new(config());
        b.record(at(0), false);
        b.record(at(1), false);
        assert_eq!(b.admit(at(1)), Admission::Allow);
        b.record(at(2), false);
        assert_eq!(b.state(), BreakerState::Open);
        assert_eq!(
            b.admit(at(3)),
            Admission::Reject {
                retry_after: Duration::from_secs(4)
            }
        );
        assert_eq!(b.admit(at(7)), Admission::Probe);
        // One probe at a time.
        assert!(!b.admit(at(7)).admitted());
        b.record(at(8), true);
        assert_eq!(b.state(), BreakerState::Closed);
        assert_eq!(b.admit(at(8)), Admission::Allow);
        assert_eq!(b.changes, 3, "open, half-open, closed");
    }

    #[test]
    fn failures_spread_wider_than_the_window_do_not_open() {
        let mut b = CircuitBreaker::new(config());
        for t in [0, 6, 12, 18, 24] {
            b.record(at(t), false);
        }
        assert_eq!(b.state(), BreakerState::Closed);
    }

    #[test]
    fn a_failed_probe_reopens_for_another_cooldown() {
        let mut b = CircuitBreaker::new(config());
        for t in 0..3 {
            b.record(at(t), false);
        }
        assert_eq!(b.admit(at(10)), Admission::Probe);
        b.record(at(10), false);
        assert_eq!(b.state(), BreakerState::Open);
        assert!(!b.admit(at(14)).admitted());
        assert_eq!(b.admit(at(15)), Admission::Probe);
    }

    #[test]
    fn a_probe_that_never_reports_is_replaced_after_a_cooldown() {
        let mut b = CircuitBreaker::new(config());
        for t in 0..3 {
            b.record(at(t), false);
        }
        assert_eq!(b.admit(at(10)), Admission::Probe);
        assert!(!b.admit(at(12)).admitted());
        assert_eq!(b.admit(at(15)), Admission::Probe);
    }

    #[test]
    fn the_board_tracks_named_origins_only() {
        let board = HealthBoard::new(config());
        board.track("eu-west");
        for t in 0..3 {
            board.record("eu-west", at(t), false);
            board.record("nowhere", at(t), false);
        }
        assert!(!board.admit("eu-west", at(3)).admitted());
        assert_eq!(board.admit("nowhere", at(3)), Admission::Allow);
        assert_eq!(board.snapshot()["eu-west"].state, BreakerState::Open);
        assert_eq!(board.snapshot().len(), 1);
    }
}
