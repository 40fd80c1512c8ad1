//! Latency by hop: the `dur` of each Server-Timing entry (W3C Server Timing) a response
//! carried, gathered per metric name over a run, and the seed design's budgets.
//!
//! The hops a replayed response reports, client side first:
//!
//! | name       | set by                      | `dur` in a replay                                   |
//! |------------|-----------------------------|-----------------------------------------------------|
//! | `client`   | the PoP (`edge.rs`)         | the topology's client RTT                           |
//! | `edge`     | the PoP (`edge.rs`)         | replaced by the engine's virtual figure (below)     |
//! | `auth`     | the worker's gate           | the worker clock's advance while it checked a token |
//! | `regional` | the PoP's upstream import   | the trip through the regional tier, virtual time    |
//! | `shield`   | a regional tier             | the trip through the shield, virtual time           |
//! | `origin`   | the tier nearest the origin | the origin RTT and service time, virtual time       |
//!
//! `route` (geo routing's choice) has no `dur` and is not a hop here. The header's own `edge`
//! is the worker's measured wall compute, which would make the report differ run to run; the
//! engine records instead the request's time at the edge on the virtual clock, upstream hops
//! taken out (waits, e.g. behind a coalesced fetch), plus the measured compute
//! only under `--add-compute` (which gives up determinism for every latency anyway). Every
//! other figure comes from the virtual clock, so the report stays deterministic.
//!
//! A hop's percentiles are over the responses that made it: hits never reach `regional`,
//! and only requests that presented a token to a route that checks it report `auth`.

use std::collections::BTreeMap;

use hdrhistogram::Histogram;

/// The seed design's latency budgets at p95, in ms: what the terminal table marks.
pub const BUDGETS_P95_MS: &[(&str, f64)] = &[("edge", 20.0), ("auth", 15.0)];

/// Hops in the order a request meets them; others follow in name order.
pub const HOP_ORDER: &[&str] = &["client", "edge", "auth", "regional", "shield", "origin"];

/// Most entries read from one Server-Timing value: the header comes from upstream, so its
/// size is the input's to choose.
pub const MAX_ENTRIES: usize = 32;
/// Longest Server-Timing value read; the rest is ignored.
pub const MAX_VALUE_BYTES: usize = 8 * 1024;
/// Longest metric name kept (`edge-emulator` names are short tokens).
pub const MAX_NAME_BYTES: usize = 32;
/// Most distinct hop names a run keeps; entries of further names are dropped.
pub const MAX_HOPS: usize = 32;
/// Largest `dur` taken, ms (an hour); larger or negative ones are dropped.
pub const MAX_DUR_MS: f64 = 3_600_000.0;

/// The `(name, dur ms)` of each entry of a Server-Timing field value that has a usable
/// `dur`, in order. Never panics; reads at most [`MAX_ENTRIES`] entries of the first
/// [`MAX_VALUE_BYTES`] bytes, and skips names that are not short tokens.
pub fn parse(value: &str) -> Vec<(String, f64)> {
    let value = truncate(value, MAX_VALUE_BYTES);
    split_outside_quotes(value, ',')
        .take(MAX_ENTRIES)
        .filter_map(|entry| {
            let mut parts = split_outside_quotes(entry, ';');
            let name = parts.next()?.trim();
            if !is_hop_name(name) {
                return None;
            }
            let dur = parts.find_map(|param| {
                let (key, value) = param.split_once('=')?;
                if !key.trim().eq_ignore_ascii_case("dur") {
                    return None;
                }
                let value = value.trim().trim_matches('"');
                value.parse::<f64>().ok()
            })?;
            (dur.is_finite() && (0.0..=MAX_DUR_MS).contains(&dur))
                .then(|| (name.to_ascii_lowercase(), dur))
        })
        .collect()
}

/// A name the report keeps and `p95(NAME)` can name: 1–32 letters, digits, '-', '_', '.'.
pub fn is_hop_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= MAX_NAME_BYTES
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
}

/// Sorts hop names the way a request meets them.
pub fn order_key(name: &str) -> (usize, &str) {
    let rank = HOP_ORDER
        .iter()
        .position(|h| *h == name)
        .unwrap_or(HOP_ORDER.len());
    (rank, name)
}

/// The seed design's p95 budget for a hop, ms.
pub fn budget_p95_ms(hop: &str) -> Option<f64> {
    BUDGETS_P95_MS
        .iter()
        .find(|(name, _)| *name == hop)
        .map(|(_, ms)| *ms)
}

/// The first `max` bytes of `text`, cut at a character boundary.
fn truncate(text: &str, max: usize) -> &str {
    if text.len() <= max {
        return text;
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

/// Splits on `separator` outside quoted strings (`desc="a, b"` is one parameter; `\"` inside
/// quotes is an escape, RFC 9110 §5.6.4).
fn split_outside_quotes(text: &str, separator: char) -> impl Iterator<Item = &str> {
    let mut rest = Some(text);
    std::iter::from_fn(move || {
        let text = rest?;
        let (mut quoted, mut escaped) = (false, false);
        for (at, c) in text.char_indices() {
            match c {
                _ if escaped => escaped = false,
                '\\' if quoted => escaped = true,
                '"' => quoted = !quoted,
                c if c == separator && !quoted => {
                    rest = Some(&text[at + c.len_utf8()..]);
                    return Some(&text[..at]);
                }
                _ => {}
            }
        }
        rest = None;
        Some(text)
    })
}

/// Durations per hop over the measured requests, in µs.
#[derive(Default)]
pub struct HopHistograms {
    hops: BTreeMap<String, Histogram<u64>>,
}

impl HopHistograms {
    /// Records one response's Server-Timing value; an entry named in `skip` is left out (the
    /// engine records those itself), and a name repeated in one value counts once, summed.
    pub fn record_header(&mut self, value: &str, skip: &[&str]) {
        let mut summed: BTreeMap<String, f64> = BTreeMap::new();
        for (name, dur) in parse(value) {
            if !skip.contains(&name.as_str()) {
                *summed.entry(name).or_default() += dur;
            }
        }
        for (name, dur) in summed {
            self.record(&name, dur);
        }
    }

    /// Records the hops of one response from its values: the client's round trip, the
    /// auth gate's time and the way upstream (what its Server-Timing says, at the precision
    /// it says it). The edge's own entry is left to the caller: its header figure is wall
    /// compute, which a replay replaces by a virtual one.
    pub fn record_path(&mut self, client: std::time::Duration, path: &[edge_worker::hops::Hop]) {
        use edge_worker::hops;
        let mut timings =
            vec![hops::host_timings(client, std::time::Duration::ZERO, "")[0].clone()];
        if let Some(auth) = path.last().and_then(|edge| edge.auth) {
            timings.push(hops::auth_timing(auth));
        }
        timings.extend(hops::path_timings(path));
        for timing in &timings {
            if let Some(ms) = timing.written_ms() {
                self.record(timing.metric, ms);
            }
        }
    }

    /// Records `dur_ms` for `hop` (dropped past [`MAX_HOPS`] names).
    pub fn record(&mut self, hop: &str, dur_ms: f64) {
        if !self.hops.contains_key(hop) && self.hops.len() >= MAX_HOPS {
            return;
        }
        let micros = (dur_ms.clamp(0.0, MAX_DUR_MS) * 1000.0).round() as u64;
        let histogram = self
            .hops
            .entry(hop.to_string())
            .or_insert_with(|| Histogram::new(3).expect("3 significant digits is valid"));
        let _ = histogram.record(micros);
    }

    pub fn into_inner(self) -> BTreeMap<String, Histogram<u64>> {
        self.hops
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn parses_the_emulators_server_timing() {
        let value = "client;dur=20.0, edge;dur=0.31;desc=\"fra\", auth;dur=0.0, \
                     route;desc=\"eu-central nearest\", regional;dur=42.5;desc=\"eu-west\", \
                     origin;dur=30.0;desc=\"origin-eu\"";
        assert_eq!(
            parse(value),
            vec![
                ("client".to_string(), 20.0),
                ("edge".to_string(), 0.31),
                ("auth".to_string(), 0.0),
                ("regional".to_string(), 42.5),
                ("origin".to_string(), 30.0),
            ]
        );
    }

    #[test]
    fn quoted_descriptions_params_and_odd_spacing() {
        let value = r#"cache;desc="a, b; c";dur=1.5 ,  db ; DUR = 2 ;desc="\"x,\"", x;dur="3""#;
        assert_eq!(
            parse(value),
            vec![
                ("cache".to_string(), 1.5),
                ("db".to_string(), 2.0),
                ("x".to_string(), 3.0)
            ]
        );
    }

    #[test]
    fn unusable_entries_are_skipped() {
        for value in [
            "",
            ",,,",
            "route;desc=\"x\"",
            "a;dur=",
            "a;dur=abc",
            "a;dur=-1",
            "a;dur=NaN",
            "a;dur=inf",
            "a;dur=1e300",
            "has space;dur=1",
            "é;dur=1",
            ";dur=1",
            "\"unterminated;dur=1, b;dur=2",
        ] {
            assert_eq!(parse(value), vec![], "{value:?}");
        }
        let long = format!("{};dur=1", "n".repeat(MAX_NAME_BYTES + 1));
        assert_eq!(parse(&long), vec![]);
    }

    #[test]
    fn entries_and_bytes_read_are_bounded() {
        let many = vec!["a;dur=1"; MAX_ENTRIES * 4].join(",");
        assert_eq!(parse(&many).len(), MAX_ENTRIES);
        let padded = format!("{}, late;dur=1", " ".repeat(MAX_VALUE_BYTES));
        assert_eq!(parse(&padded), vec![]);
        let mut hops = HopHistograms::default();
        for i in 0..MAX_HOPS * 2 {
            hops.record(&format!("h{i}"), 1.0);
        }
        assert_eq!(hops.into_inner().len(), MAX_HOPS);
    }

    #[test]
    fn a_response_counts_once_per_hop_and_skipped_names_are_left_out() {
        let mut hops = HopHistograms::default();
        hops.record_header("edge;dur=9, origin;dur=10, origin;dur=5", &["edge"]);
        hops.record_header("origin;dur=0", &["edge"]);
        let hops = hops.into_inner();
        assert!(!hops.contains_key("edge"));
        let origin = &hops["origin"];
        assert_eq!(origin.len(), 2);
        assert!(origin.equivalent(origin.max(), 15_000), "summed, in µs");
        assert_eq!(origin.min(), 0);
    }

    #[test]
    fn hops_sort_client_to_origin() {
        let mut names = vec![
            "origin", "zeta", "edge", "regional", "auth", "client", "alpha",
        ];
        names.sort_by_key(|n| order_key(n));
        assert_eq!(
            names,
            ["client", "edge", "auth", "regional", "origin", "alpha", "zeta"]
        );
        assert_eq!(budget_p95_ms("edge"), Some(20.0));
        assert_eq!(budget_p95_ms("auth"), Some(15.0));
        assert_eq!(budget_p95_ms("origin"), None);
    }

    proptest! {
        #[test]
        fn arbitrary_values_never_panic(value in "\\PC{0,300}") {
            let entries = parse(&value);
            prop_assert!(entries.len() <= MAX_ENTRIES);
            for (name, dur) in entries {
                prop_assert!(is_hop_name(&name));
                prop_assert!(dur.is_finite() && dur >= 0.0);
            }
        }

        #[test]
        fn server_timing_like_values_never_panic(
            value in "([a-z]{1,6}|;|,|=|\"|\\\\|dur|desc|[0-9.e-]{1,6}| ){0,40}"
        ) {
            let mut hops = HopHistograms::default();
            hops.record_header(&value, &["edge"]);
            prop_assert!(hops.into_inner().len() <= MAX_HOPS);
        }
    }
}
