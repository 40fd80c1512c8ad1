//! `serve`'s line per request, as wrangler dev, Viceroy and nginx print one: time, method,
//! path, status, each tier's cache outcome, bytes and duration — as text or JSON Lines, on
//! standard error or into a file — and the last requests and latencies the live page shows.

use std::collections::VecDeque;
use std::fmt::Write as _;
use std::io::Write as _;
use std::path::Path;
use std::sync::Mutex;
use std::time::Duration;

use edge_worker::hops::Hop;
use hdrhistogram::Histogram;
use serde::Serialize;

/// How each line is written.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    /// `2026-12-07T15:04:05.123Z GET /api/products/1 200 edge-fra:HIT 1.2 KiB 0.4 ms (simulated 5.0 ms)`
    #[default]
    Text,
    /// One JSON object per line, the fields of [`RequestLine`].
    Json,
}

/// Where lines go.
pub enum Sink {
    /// Nowhere (`--quiet`): the live page still keeps the last requests.
    Off,
    Stderr,
    File(Mutex<std::io::LineWriter<std::fs::File>>),
}

impl Sink {
    /// Appends to `path`, creating it.
    pub fn file(path: &Path) -> std::io::Result<Self> {
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)?;
        Ok(Sink::File(Mutex::new(std::io::LineWriter::new(file))))
    }
}

/// One tier's part in a response: its Cache-Status name and its cache outcome
/// (`HIT`, `MISS`, …; `-` for a tier that forwarded without caching).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TierOutcome {
    pub tier: String,
    pub outcome: &'static str,
}

/// What one client request got.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RequestLine {
    /// When it was answered, by the emulator's clock (moved by `/__emulator/clock`): RFC 3339
    /// and Unix milliseconds.
    pub time: String,
    pub time_ms: u64,
    pub method: String,
    /// Path and query.
    pub path: String,
    pub status: u16,
    /// The PoP that ran it (`fra`).
    pub pop: String,
    /// Each tier it passed, nearest the client first (the reverse of Cache-Status).
    pub tiers: Vec<TierOutcome>,
    /// Body bytes sent.
    pub bytes: u64,
    /// Wall time the emulator took to answer, milliseconds (`--time-scale` sleeps included).
    pub duration_ms: f64,
    /// The client's latency as simulated (round trips, origin service times, waits),
    /// milliseconds: what Server-Timing adds up to.
    pub simulated_ms: f64,
}

impl RequestLine {
    /// The tiers `hops` (origin-nearest first) passed, nearest the client first.
    pub fn tiers_of(hops: &[Hop]) -> Vec<TierOutcome> {
        hops.iter()
            .rev()
            .map(|hop| TierOutcome {
                tier: if hop.private {
                    format!("{}-private", hop.tier)
                } else {
                    hop.tier.to_string()
                },
                outcome: hop.cache.as_ref().map_or("-", |c| c.status.as_str()),
            })
            .collect()
    }

    /// The client's simulated latency: its round trip, what the edge waited for upstream
    /// (the hop below the edge's `spent`, round trips beyond included) and the edge's own time.
    pub fn simulated(client_rtt: Duration, hops: &[Hop]) -> Duration {
        let edge = hops.last().and_then(|h| h.spent).unwrap_or_default();
        let upstream = hops
            .iter()
            .rev()
            .nth(1)
            .and_then(|h| h.spent)
            .unwrap_or_default();
        client_rtt + upstream + edge
    }

    pub fn to_text(&self) -> String {
        let mut out = format!(
            "{} {} {} {}",
            self.time, self.method, self.path, self.status
        );
        for tier in &self.tiers {
            let _ = write!(out, " {}:{}", tier.tier, tier.outcome);
        }
        if self.tiers.is_empty() {
            let _ = write!(out, " edge-{}:-", self.pop);
        }
        let _ = write!(
            out,
            " {} {:.1} ms (simulated {:.1} ms)",
            human_bytes(self.bytes),
            self.duration_ms,
            self.simulated_ms
        );
        out
    }
}

fn human_bytes(bytes: u64) -> String {
    match bytes {
        0..1024 => format!("{bytes} B"),
        1024..1_048_576 => format!("{:.1} KiB", bytes as f64 / 1024.0),
        _ => format!("{:.1} MiB", bytes as f64 / 1_048_576.0),
    }
}

/// Requests the live page lists.
pub const RECENT_REQUESTS: usize = 50;

/// Latency percentiles of the requests served so far (simulated, milliseconds).
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct LatencyFigures {
    pub requests: u64,
    pub p50_ms: f64,
    pub p90_ms: f64,
    pub p95_ms: f64,
    pub p99_ms: f64,
}

/// The line per request, and what the live page shows of the last ones.
pub struct AccessLog {
    sink: Sink,
    format: LogFormat,
    recent: Mutex<VecDeque<RequestLine>>,
    latency: Mutex<Histogram<u64>>,
}

impl AccessLog {
    pub fn new(sink: Sink, format: LogFormat) -> Self {
        Self {
            sink,
            format,
            recent: Mutex::new(VecDeque::with_capacity(RECENT_REQUESTS)),
            latency: Mutex::new(Histogram::new(3).expect("3 significant digits is valid")),
        }
    }

    /// Keeps the last requests for the live page, writes no line.
    pub fn quiet() -> Self {
        Self::new(Sink::Off, LogFormat::Text)
    }

    pub fn record(&self, line: RequestLine) {
        let text = match (&self.sink, self.format) {
            (Sink::Off, _) => None,
            (_, LogFormat::Text) => Some(line.to_text()),
            (_, LogFormat::Json) => serde_json::to_string(&line).ok(),
        };
        match (&self.sink, text) {
            (Sink::Stderr, Some(text)) => eprintln!("{text}"),
            (Sink::File(file), Some(text)) => {
                let mut file = file.lock().unwrap_or_else(|e| e.into_inner());
                // A full disk must not take the edge down: the line is lost, the request not.
                let _ = writeln!(file, "{text}");
            }
            _ => {}
        }
        let micros = (line.simulated_ms * 1000.0).round().max(1.0) as u64;
        let _ = self
            .latency
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .record(micros);
        let mut recent = self.recent.lock().unwrap_or_else(|e| e.into_inner());
        if recent.len() == RECENT_REQUESTS {
            recent.pop_front();
        }
        recent.push_back(line);
    }

    /// The last requests, newest first.
    pub fn recent(&self) -> Vec<RequestLine> {
        let recent = self.recent.lock().unwrap_or_else(|e| e.into_inner());
        recent.iter().rev().cloned().collect()
    }

    pub fn latency(&self) -> LatencyFigures {
        let histogram = self.latency.lock().unwrap_or_else(|e| e.into_inner());
        let ms = |q: f64| (histogram.value_at_quantile(q) as f64 / 100.0).round() / 10.0;
        if histogram.is_empty() {
            return LatencyFigures::default();
        }
        LatencyFigures {
            requests: histogram.len(),
            p50_ms: ms(0.5),
            p90_ms: ms(0.9),
            p95_ms: ms(0.95),
            p99_ms: ms(0.99),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(path: &str) -> RequestLine {
        RequestLine {
            time: "2026-12-07T15:04:05.123Z".into(),
            time_ms: 1_796_655_845_123,
            method: "GET".into(),
            path: path.into(),
            status: 200,
            pop: "fra".into(),
            tiers: vec![
                TierOutcome {
                    tier: "edge-fra".into(),
                    outcome: "MISS",
                },
                TierOutcome {
                    tier: "regional-eu-central".into(),
                    outcome: "HIT",
                },
            ],
            bytes: 2048,
            duration_ms: 0.42,
            simulated_ms: 47.0,
        }
    }

    #[test]
    fn a_text_line_says_time_method_path_status_tiers_bytes_and_durations() {
        assert_eq!(
            line("/api/products/1").to_text(),
            "2026-12-07T15:04:05.123Z GET /api/products/1 200 edge-fra:MISS \
             regional-eu-central:HIT 2.0 KiB 0.4 ms (simulated 47.0 ms)"
        );
    }

    #[test]
    fn a_json_line_has_every_field() {
        let value = serde_json::to_value(line("/a")).unwrap();
        for field in [
            "time",
            "time_ms",
            "method",
            "path",
            "status",
            "pop",
            "tiers",
            "bytes",
            "duration_ms",
            "simulated_ms",
        ] {
            assert!(value.get(field).is_some(), "{field}");
        }
        assert_eq!(value["tiers"][1]["outcome"], "HIT");
    }

    #[test]
    fn the_last_requests_are_kept_newest_first_and_bounded() {
        let log = AccessLog::quiet();
        for i in 0..RECENT_REQUESTS + 5 {
            log.record(line(&format!("/{i}")));
        }
        let recent = log.recent();
        assert_eq!(recent.len(), RECENT_REQUESTS);
        assert_eq!(recent[0].path, format!("/{}", RECENT_REQUESTS + 4));
        let latency = log.latency();
        assert_eq!(latency.requests, (RECENT_REQUESTS + 5) as u64);
        assert_eq!(latency.p50_ms, 47.0);
    }
}
