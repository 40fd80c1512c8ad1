//! The report's charts: what each shows and from which figures. Drawing is in [`super::svg`].

use super::axis::{self, Scale};
use super::svg::{
    self, BarChart, BarSeries, LegendEntry, LineChart, Panel, RangeChart, Series, Shape, Swatch,
    YAxis, PALETTE,
};
use super::{bytes, percent, regions};
use crate::sim::report::{LatencySummary, Report};

/// Most points drawn per timeline line; longer timelines are merged into wider buckets.
const MAX_TIMELINE_POINTS: usize = 600;
/// Most points drawn per CDF line (the report promises ≤ 100; this guards hand-made ones).
const MAX_CDF_POINTS: usize = 200;
/// Most regions drawn in one CDF chart, and rows in one bar or percentile chart.
const MAX_LINES: usize = 12;
const MAX_CATEGORIES: usize = 40;
/// The legend entry of bound ticks.
pub const BOUND_LABEL: &str = "bound: infinite cache";

fn color(i: usize) -> &'static str {
    PALETTE[i % PALETTE.len()]
}

/// How many adjacent buckets are merged so a timeline has at most `MAX_TIMELINE_POINTS`.
fn merge_factor(buckets: usize) -> usize {
    buckets.div_ceil(MAX_TIMELINE_POINTS).max(1)
}

/// A last bucket covering less of its width than this is left out of rate lines: its rate
/// over so short a time says nothing.
const MIN_LAST_BUCKET: f64 = 0.25;

/// A timeline as (time at the middle of each merged bucket s, requests per second). The run
/// ends at `span_s`: a last bucket it cuts short is a rate over the time it covers (not a drop
/// in load), or left out when it covers less than a quarter of its width.
pub(super) fn rate_points(counts: &[u64], bucket_s: f64, span_s: f64) -> Vec<(f64, f64)> {
    if !(bucket_s.is_finite() && bucket_s > 0.0) {
        return Vec::new();
    }
    let merge = merge_factor(counts.len());
    counts
        .chunks(merge)
        .enumerate()
        .filter_map(|(i, chunk)| {
            let start = (i * merge) as f64 * bucket_s;
            let full = bucket_s * chunk.len() as f64;
            let width = if span_s.is_finite() && span_s > start {
                full.min(span_s - start)
            } else {
                full
            };
            if width < full * MIN_LAST_BUCKET {
                return None;
            }
            // Summed as f64: a hand-made report's counts may overflow u64 when added.
            let total: f64 = chunk.iter().map(|&c| c as f64).sum();
            Some((start + width / 2.0, total / width))
        })
        .collect()
}

/// Where the origin's busiest bucket after the warm-up is: (its middle, s; requests/s).
fn origin_peak(r: &Report) -> Option<(f64, f64)> {
    let o = &r.origin;
    let from = (r.scenario.warmup_s / o.bucket_s).ceil() as usize;
    let (i, _) = o
        .timeline
        .iter()
        .enumerate()
        .skip(from)
        .max_by(|a, b| a.1.cmp(b.1).then(b.0.cmp(&a.0)))?;
    Some(((i as f64 + 0.5) * o.bucket_s, o.peak_rps))
}

/// Offload per (merged) bucket, 1 − origin requests / client requests, as (time at the
/// bucket's middle s, offload); buckets without client requests are skipped.
pub(super) fn offload_points(origin: &[u64], client: &[u64], bucket_s: f64) -> Vec<(f64, f64)> {
    if !(bucket_s.is_finite() && bucket_s > 0.0) {
        return Vec::new();
    }
    let merge = merge_factor(client.len());
    client
        .chunks(merge)
        .enumerate()
        .filter_map(|(i, chunk)| {
            let clients: f64 = chunk.iter().map(|&c| c as f64).sum();
            let start = i * merge;
            let origins: f64 = origin
                .iter()
                .skip(start)
                .take(chunk.len())
                .map(|&c| c as f64)
                .sum();
            let t = start as f64 * bucket_s + bucket_s * chunk.len() as f64 / 2.0;
            (clients > 0.0).then(|| (t, 1.0 - origins / clients))
        })
        .collect()
}

/// At most `MAX_CDF_POINTS` of a CDF, evenly spaced, always keeping the last point.
pub(super) fn thin(points: &[(f64, f64)]) -> Vec<(f64, f64)> {
    let step = points.len().div_ceil(MAX_CDF_POINTS).max(1);
    let mut kept: Vec<(f64, f64)> = points.iter().copied().step_by(step).collect();
    if let Some(&last) = points.last() {
        if kept.last() != Some(&last) {
            kept.push(last);
        }
    }
    kept
}

/// A region's CDF with its percentiles merged in (the 100-point CDF jumps from 0.99 to 1; the
/// p99.9 fills the tail a nines scale shows), ordered by fraction.
fn cdf_with_percentiles(l: &LatencySummary) -> Vec<(f64, f64)> {
    let mut points = thin(&l.cdf);
    for (q, ms) in [
        (0.5, l.p50_ms),
        (0.9, l.p90_ms),
        (0.95, l.p95_ms),
        (0.99, l.p99_ms),
        (0.999, l.p999_ms),
    ] {
        if !points.iter().any(|(_, p)| (p - q).abs() < 1e-9) {
            points.push((ms, q));
        }
    }
    points.retain(|(ms, q)| ms.is_finite() && q.is_finite());
    points.sort_by(|a, b| a.1.total_cmp(&b.1).then(a.0.total_cmp(&b.0)));
    points
}

/// Names in first-seen order across reports, at most `MAX_CATEGORIES`.
fn union_of<'a>(names: impl Iterator<Item = &'a str>) -> Vec<String> {
    let mut seen: Vec<String> = Vec::new();
    for name in names {
        if seen.len() < MAX_CATEGORIES && !seen.iter().any(|s| s == name) {
            seen.push(name.to_string());
        }
    }
    seen
}

/// The virtual time a report's timeline covers, s.
fn span_s(r: &Report) -> f64 {
    r.scenario.warmup_s + r.scenario.duration_s
}

/// Offload over time above the client and origin request rates, on one time axis, the
/// warm-up shaded and each report's origin peak after it marked.
pub fn load_chart(reports: &[Report]) -> String {
    let series = |points: &dyn Fn(&Report) -> Vec<(f64, f64)>| -> Vec<Series> {
        reports
            .iter()
            .enumerate()
            .map(|(i, r)| Series {
                label: r.scenario.name.clone(),
                points: points(r),
                color: color(i),
                dashed: false,
            })
            .collect()
    };
    let panels = vec![
        Panel {
            y_label: "offload: 1 − origin requests / client requests, per interval".into(),
            y: YAxis::Ratio,
            height: 150.0,
            series: series(&|r| {
                offload_points(
                    &r.origin.timeline,
                    &r.origin.client_timeline,
                    r.origin.bucket_s,
                )
            }),
            marks: Vec::new(),
        },
        Panel {
            y_label: "client requests/s".into(),
            y: YAxis::Linear,
            height: 100.0,
            series: series(&|r| {
                rate_points(&r.origin.client_timeline, r.origin.bucket_s, span_s(r))
            }),
            marks: Vec::new(),
        },
        Panel {
            y_label: format!(
                "origin requests/s (▲ peak after warm-up: {})",
                reports
                    .iter()
                    .map(|r| format!("{} rps", super::decimal(r.origin.peak_rps, 1)))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            y: YAxis::Linear,
            height: 100.0,
            series: series(&|r| rate_points(&r.origin.timeline, r.origin.bucket_s, span_s(r))),
            marks: reports
                .iter()
                .enumerate()
                .filter_map(|(i, r)| {
                    let (t, rps) = origin_peak(r)?;
                    let tip = format!(
                        "{}: origin peak {} rps at {} s",
                        r.scenario.name,
                        super::decimal(rps, 1),
                        super::decimal(t, 0)
                    );
                    Some(svg::Mark {
                        at: (t, rps),
                        color: color(i),
                        tip,
                    })
                })
                .collect(),
        },
    ];
    let warmup = reports
        .iter()
        .map(|r| r.scenario.warmup_s)
        .filter(|w| w.is_finite() && *w > 0.0)
        .fold(0.0, f64::max);
    let mut legend: Vec<LegendEntry> = reports
        .iter()
        .enumerate()
        .map(|(i, r)| LegendEntry::new(r.scenario.name.clone(), color(i), Swatch::Line))
        .collect();
    if warmup > 0.0 {
        legend.push(LegendEntry::new(
            "warm-up (not measured)",
            "#000",
            Swatch::Shade,
        ));
    }
    svg::line_chart(&LineChart {
        title: "Offload and load over time",
        x_label: "time (s)",
        x_scale: Scale::Linear,
        panels,
        shade: (warmup > 0.0).then_some((0.0, warmup)),
        legend,
    })
}

/// Hit ratio per tier and cache, one row each, one bar per report; the stream's bound (an
/// infinite cache) ticked on the edge and per-PoP bars when the report has it.
pub fn hit_ratio_chart(reports: &[Report]) -> String {
    let categories = union_of(
        reports
            .iter()
            .flat_map(|r| r.tiers.iter().map(|t| t.name.as_str())),
    );
    let series = reports
        .iter()
        .enumerate()
        .map(|(i, r)| {
            let values = categories
                .iter()
                .map(|c| r.tiers.iter().find(|t| &t.name == c).map(|t| t.hit_ratio))
                .collect();
            let bounds = categories
                .iter()
                .map(|c| {
                    let b = r.stream_bound.as_ref()?;
                    if c == "edge" {
                        Some(b.edge_hit_ratio.bound)
                    } else {
                        b.by_pop.get(c).map(|p| p.bound)
                    }
                })
                .collect();
            BarSeries {
                label: r.scenario.name.clone(),
                color: color(i),
                values,
                bounds,
            }
        })
        .collect();
    svg::bar_chart(&BarChart {
        title: "Hit ratio by tier and cache",
        x_label: "hit ratio (hits and stale served / requests)",
        categories,
        series,
        format: &percent,
        ticks: &svg::percent_tick,
        max: Some(1.0),
        bound_label: BOUND_LABEL,
    })
}

/// Measured against the stream's bound for edge hit ratio and offload by requests and bytes;
/// `None` when no report has a bound.
pub fn bound_chart(reports: &[Report]) -> Option<String> {
    let categories: Vec<String> = ["edge hit ratio", "offload (requests)", "offload (bytes)"]
        .map(String::from)
        .to_vec();
    let series: Vec<BarSeries> = reports
        .iter()
        .enumerate()
        .filter_map(|(i, r)| {
            let b = r.stream_bound.as_ref()?;
            let figures = [&b.edge_hit_ratio, &b.offload_requests, &b.byte_hit_ratio];
            Some(BarSeries {
                label: format!("{}: measured", r.scenario.name),
                color: color(i),
                values: figures.iter().map(|f| Some(f.measured)).collect(),
                bounds: figures.iter().map(|f| Some(f.bound)).collect(),
            })
        })
        .collect();
    if series.is_empty() {
        return None;
    }
    Some(svg::bar_chart(&BarChart {
        title: "Measured vs what the request stream allows",
        x_label: "fraction",
        categories,
        series,
        format: &percent,
        ticks: &svg::percent_tick,
        max: Some(1.0),
        bound_label: BOUND_LABEL,
    }))
}

/// Bytes clients received by where they came from (each tier's cache, or an origin fetch),
/// then what origins sent: labelled so the two origin rows cannot be taken for one.
pub fn bytes_chart(reports: &[Report]) -> String {
    const EGRESS: &str = "origin egress (bytes origins sent)";
    let label = |tier: &str| super::served_label(tier);
    let tiers = union_of(
        reports
            .iter()
            .flat_map(|r| r.bytes.served_by_tier.keys().map(String::as_str)),
    );
    let categories: Vec<String> = tiers
        .iter()
        .map(|t| label(t))
        .chain([EGRESS.to_string()])
        .collect();
    let raw = |r: &Report, c: &str| -> f64 {
        if c == EGRESS {
            return r.bytes.from_origin as f64;
        }
        tiers
            .iter()
            .find(|t| label(t) == c)
            .and_then(|t| r.bytes.served_by_tier.get(t))
            .copied()
            .unwrap_or(0) as f64
    };
    let max = reports
        .iter()
        .flat_map(|r| categories.iter().map(move |c| raw(r, c)))
        .fold(0.0, f64::max);
    // Plotted in the unit of the largest value, so ticks fall on round numbers of it.
    let (unit, scale) = ["B", "KiB", "MiB", "GiB", "TiB"]
        .iter()
        .enumerate()
        .map(|(i, u)| (*u, 1024f64.powi(i as i32)))
        .take_while(|(_, s)| *s == 1.0 || max >= *s)
        .last()
        .unwrap_or(("B", 1.0));
    let series = reports
        .iter()
        .enumerate()
        .map(|(i, r)| BarSeries {
            label: r.scenario.name.clone(),
            color: color(i),
            values: categories.iter().map(|c| Some(raw(r, c) / scale)).collect(),
            bounds: Vec::new(),
        })
        .collect();
    let format = move |v: f64| bytes((v * scale).round() as u64);
    let ticks = move |v: f64| format!("{} {unit}", axis::short_number(v));
    svg::bar_chart(&BarChart {
        title: "Bytes to clients by where they came from, and origin egress",
        x_label: "bytes",
        categories,
        series,
        format: &format,
        ticks: &ticks,
        max: None,
        bound_label: BOUND_LABEL,
    })
}

/// One report's latency CDF per region on a log latency axis and a nines fraction axis, so
/// both the body and the tail (to p99.9) have room.
pub fn latency_chart(report: &Report) -> String {
    let series: Vec<Series> = regions(report)
        .take(MAX_LINES)
        .enumerate()
        .map(|(i, (region, l))| Series {
            label: region.clone(),
            points: cdf_with_percentiles(l),
            color: color(i),
            dashed: false,
        })
        .collect();
    let legend = series
        .iter()
        .map(|s| LegendEntry::new(s.label.clone(), s.color, Swatch::Line))
        .collect();
    let title = format!("Latency CDF by region: {}", report.scenario.name);
    svg::line_chart(&LineChart {
        title: &title,
        x_label: "latency (ms, log scale)",
        x_scale: Scale::Log,
        panels: vec![Panel {
            y_label: "fraction of requests at or below (nines scale)".into(),
            y: YAxis::Nines(3),
            height: 260.0,
            series,
            marks: Vec::new(),
        }],
        shade: None,
        legend,
    })
}

/// One report's latency percentiles per region, one row each, on a log axis.
pub fn percentile_chart(report: &Report) -> String {
    let rows = regions(report)
        .take(MAX_CATEGORIES)
        .map(|(region, l)| {
            (
                region.clone(),
                vec![l.p50_ms, l.p90_ms, l.p95_ms, l.p99_ms, l.p999_ms],
            )
        })
        .collect();
    let title = format!("Latency percentiles by region: {}", report.scenario.name);
    svg::range_chart(&RangeChart {
        title: &title,
        x_label: "latency (ms, log scale)",
        rows,
        marks: vec![
            ("p50", PALETTE[0], Shape::Circle),
            ("p90", PALETTE[2], Shape::Square),
            ("p95", PALETTE[4], Shape::Diamond),
            ("p99", PALETTE[1], Shape::Triangle),
            ("p99.9", PALETTE[6], Shape::Cross),
        ],
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sim::assertions::tests::sample_report;

    #[test]
    fn long_timelines_are_merged_into_rates() {
        let points = rate_points(&vec![2; 1200], 0.5, 600.0);
        assert_eq!(points.len(), 600);
        assert_eq!(points[1], (1.5, 4.0));
        assert_eq!(rate_points(&[3, 5], 2.0, 4.0), vec![(1.0, 1.5), (3.0, 2.5)]);
        assert!(rate_points(&[1], f64::NAN, 1.0).is_empty());
        let cdf: Vec<(f64, f64)> = (1..=1000).map(|i| (i as f64, i as f64 / 1000.0)).collect();
        let thinned = thin(&cdf);
        assert!(thinned.len() <= MAX_CDF_POINTS + 1);
        assert_eq!(thinned.last(), Some(&(1000.0, 1.0)));
    }

    /// Issue 27: a run that ends 0.4 s into its last second does not draw that second as a
    /// drop to 40 % of the load; one that ends 0.1 s into it leaves it out.
    #[test]
    fn a_partial_last_bucket_is_a_rate_over_the_time_it_covers() {
        let points = rate_points(&[100, 100, 40], 1.0, 2.4);
        assert_eq!(points.len(), 3);
        assert!((points[2].1 - 100.0).abs() < 1e-9, "{points:?}");
        assert!((points[2].0 - 2.2).abs() < 1e-9, "{points:?}");
        assert_eq!(rate_points(&[100, 100, 10], 1.0, 2.1).len(), 2);
    }

    #[test]
    fn the_origin_peak_is_marked_after_the_warm_up() {
        let mut report = sample_report("tiered");
        report.scenario.warmup_s = 2.0;
        report.origin.bucket_s = 1.0;
        report.origin.timeline = vec![90, 80, 20, 61, 30];
        report.origin.peak_rps = 61.0;
        assert_eq!(origin_peak(&report), Some((3.5, 61.0)));
        let chart = load_chart(std::slice::from_ref(&report));
        assert!(
            chart.contains("tiered: origin peak 61.0 rps at 4 s"),
            "{chart}"
        );
        assert!(chart.contains("peak after warm-up: 61.0 rps"));
    }

    #[test]
    fn offload_per_interval_skips_intervals_without_clients() {
        let points = offload_points(&[5, 0, 1, 9], &[10, 0, 4, 0], 1.0);
        assert_eq!(points, vec![(0.5, 0.5), (2.5, 0.75)]);
        let merged = offload_points(&vec![1; 1200], &vec![4; 1200], 1.0);
        assert_eq!(merged.len(), 600);
        assert_eq!(merged[0], (1.0, 0.75));
        assert!(offload_points(&[1], &[2], 0.0).is_empty());
    }

    #[test]
    fn the_cdf_gains_its_tail_percentiles() {
        let report = sample_report("r");
        let points = cdf_with_percentiles(&report.latency["all"]);
        let qs: Vec<f64> = points.iter().map(|p| p.1).collect();
        assert!(qs.windows(2).all(|w| w[0] <= w[1]), "{qs:?}");
        assert!(qs.contains(&0.999) && qs.contains(&0.9), "{qs:?}");
    }

    #[test]
    fn bounds_tick_the_tiers_they_belong_to() {
        let report = sample_report("r");
        let svg = hit_ratio_chart(std::slice::from_ref(&report));
        // "edge" and "edge-fra" have bounds; "regional" has none.
        assert_eq!(svg.matches("class=\"data bound\"").count(), 2, "{svg}");
        assert!(
            svg.contains("r · edge: bound: infinite cache 99.0%"),
            "{svg}"
        );
        assert!(svg.contains(BOUND_LABEL));
        let chart = bound_chart(std::slice::from_ref(&report)).unwrap();
        assert_eq!(chart.matches("class=\"data bound\"").count(), 3);
        assert!(chart.contains("offload (bytes)"));

        let mut none = report;
        none.stream_bound = None;
        let svg = hit_ratio_chart(std::slice::from_ref(&none));
        assert!(!svg.contains("class=\"data bound\"") && !svg.contains(BOUND_LABEL));
        assert!(bound_chart(&[none]).is_none());
    }

    #[test]
    fn bytes_ticks_are_round_in_the_largest_unit() {
        let svg = bytes_chart(&[sample_report("r")]);
        assert!(svg.contains(">8 MiB<") || svg.contains(">5 MiB<"), "{svg}");
        assert!(svg.contains(">8.6 MiB<"), "edge's 9,000,000 bytes: {svg}");
    }
}
