//! Serve or replay: one value, chosen by the caller and kept on the emulator, that says whether
//! it answers clients on wall time or replays a workload on virtual time.

use std::time::SystemTime;

/// How the emulator runs. Its caller knows (`serve` or `simulate`); parts that behave
/// differently read this instead of guessing from the clock or the tokio runtime.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunMode {
    /// `serve`: wall time, origins over loopback HTTP, draws seeded by the OS, no origin fetch
    /// log. Must run on a multi-thread tokio runtime: background recompression blocks its worker
    /// thread in place (`tokio::task::block_in_place`, which panics on a current-thread one).
    Serve,
    /// `simulate`: virtual time from `start` inside a paused current-thread runtime, origins
    /// called in-process (a socket would let real time leak in), draws seeded from the run's
    /// seed, every origin fetch logged for the stream bound, and background recompression
    /// taking its modelled time.
    Replay { start: SystemTime },
}

impl RunMode {
    /// Whether this is a replay (virtual time, in-process origins).
    pub fn is_replay(&self) -> bool {
        matches!(self, Self::Replay { .. })
    }
}
