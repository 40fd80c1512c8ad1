//! A simulation [`Report`] for people: a plain-text table for the terminal, a side-by-side
//! comparison of several runs, and one self-contained HTML page with inline SVG charts.
//!
//! The tables are built once as [`Grid`]s and then drawn either as text or as HTML, so both
//! outputs always show the same figures. All output is deterministic for a given report.

/// Axis scales, ticks and label-width estimates.
mod axis;
/// The report's charts, built from its figures.
mod charts;
/// Drawing SVG: line, bar and percentile charts.
mod svg;

use std::fmt::Write;

use comfy_table::{presets, CellAlignment, Table};

use crate::sim::report::Report;
use svg::escape;

/// Most reports compared in one table or page; more would not fit side by side anyway.
pub const MAX_COMPARED_REPORTS: usize = 8;

/// A table: a title, a header row and body rows. Columns from the second on are numeric and
/// right-aligned.
struct Grid {
    title: String,
    header: Vec<String>,
    rows: Vec<Vec<String>>,
    /// A line under the table: what its figures mean.
    note: Option<&'static str>,
}

impl Grid {
    fn new(title: &str, header: &[&str]) -> Grid {
        Grid {
            title: title.to_string(),
            header: header.iter().map(|h| h.to_string()).collect(),
            rows: Vec::new(),
            note: None,
        }
    }

    fn row(&mut self, cells: Vec<String>) {
        self.rows.push(cells);
    }

    fn to_text(&self) -> String {
        let mut table = Table::new();
        table
            .load_style(presets::ASCII_MARKDOWN)
            .set_header(self.header.clone());
        for row in &self.rows {
            table.add_row(row.clone());
        }
        for i in 1..self.header.len() {
            if let Some(column) = table.column_mut(i) {
                column.set_cell_alignment(CellAlignment::Right);
            }
        }
        match self.note {
            Some(note) => format!("{}\n{table}\n{note}\n", self.title),
            None => format!("{}\n{table}\n", self.title),
        }
    }

    fn to_html(&self) -> String {
        let mut out = format!("<h3>{}</h3><table><thead><tr>", escape(&self.title));
        for cell in &self.header {
            let _ = write!(out, "<th>{}</th>", escape(cell));
        }
        out.push_str("</tr></thead><tbody>");
        for row in &self.rows {
            out.push_str("<tr>");
            for (i, cell) in row.iter().enumerate() {
                let class = if i == 0 { "" } else { " class=\"num\"" };
                let _ = write!(out, "<td{class}>{}</td>", escape(cell));
            }
            out.push_str("</tr>");
        }
        out.push_str("</tbody></table>");
        if let Some(note) = self.note {
            let _ = write!(out, "<p class=\"note\">{}</p>", escape(note));
        }
        out
    }
}

/// How a run was made and what its `--assert` thresholds said: shown with the answer, before
/// the details. Never in the JSON report, which stays the same for the same inputs.
#[derive(Debug, Clone, Default)]
pub struct RunContext {
    /// The command line as typed.
    pub command_line: String,
    pub version: &'static str,
    /// When the report was made, RFC 3339.
    pub date: String,
    pub verdicts: Vec<Verdict>,
}

/// One `--assert` threshold against one report.
#[derive(Debug, Clone)]
pub struct Verdict {
    /// The report it was checked against, when several were (compare).
    pub report: Option<String>,
    /// `PASS offload >= 0.95 (measured 0.971)`.
    pub text: String,
    pub passed: bool,
    /// The report's cold-cache caution, carried beside the verdict it weakens.
    pub warning: Option<String>,
}

impl Verdict {
    pub fn line(&self) -> String {
        let mut line = match &self.report {
            Some(report) => format!("{report}: {}", self.text),
            None => self.text.clone(),
        };
        if self.warning.is_some() {
            line.push_str(" (CAUTION: the caches never warmed; see the report's first lines)");
        }
        line
    }
}

pub use crate::cdn::clock::rfc3339;

impl RunContext {
    /// "Run: COMMAND · edge-emulator VERSION · DATE", when known.
    fn line(&self) -> Option<String> {
        if self.command_line.is_empty() && self.date.is_empty() {
            return None;
        }
        Some(format!(
            "Run: {} · edge-emulator {} · {}",
            self.command_line, self.version, self.date
        ))
    }

    fn verdicts_for<'a>(&'a self, report: &'a Report) -> impl Iterator<Item = &'a Verdict> + 'a {
        self.verdicts.iter().filter(move |v| {
            v.report
                .as_deref()
                .is_none_or(|name| name == report.scenario.name)
        })
    }
}

fn percent(ratio: f64) -> String {
    if ratio.is_finite() {
        format!("{:.1}%", ratio * 100.0)
    } else {
        "n/a".to_string()
    }
}

fn decimal(value: f64, places: usize) -> String {
    if value.is_finite() {
        format!("{value:.places$}")
    } else {
        "n/a".to_string()
    }
}

/// Bytes in binary units, e.g. "9.5 MiB": exact counts are in the JSON report.
fn bytes(count: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut value = count as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit < UNITS.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{count} B")
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

/// "tiered: zipf(0.9) …, 10000 requests over 10.0 s, seed 42, 8 PoPs, 3 regionals" (and
/// ", 1 shield" when there are shields).
fn scenario_line(report: &Report) -> String {
    let s = &report.scenario;
    let shields = match s.shields {
        0 => String::new(),
        1 => ", 1 shield".to_string(),
        n => format!(", {n} shields"),
    };
    format!(
        "{}: {}; {} requests over {} s, seed {}, {} PoPs, {} regionals{shields}; measured after \
         a warm-up of {} requests ({} s)",
        s.name,
        s.workload,
        s.requests,
        decimal(s.duration_s, 1),
        s.seed,
        s.pops,
        s.regionals,
        s.warmup_requests,
        decimal(s.warmup_s, 1)
    )
}

/// The loud warning when measured figures beat their stream bound, one line per figure.
pub fn bound_warning(report: &Report) -> Option<String> {
    let beaten = report.stream_bound.as_ref()?.beaten();
    if beaten.is_empty() {
        return None;
    }
    let mut out = format!("{}\n", crate::sim::report::BOUND_BEATEN);
    for line in beaten {
        let _ = writeln!(out, "  !! {line}");
    }
    Some(out)
}

/// The answer, before everything else: offload by requests and bytes with their bounds, the
/// origin's peak, the latency tail, the edge hit ratio.
fn headline(report: &Report) -> Vec<String> {
    let o = &report.offload;
    let bounded = |measured: f64, bound: Option<f64>| match bound {
        Some(bound) => format!("{} (bound {})", percent(measured), percent(bound)),
        None => percent(measured),
    };
    let b = report.stream_bound.as_ref();
    let edge = report.tiers.first().map_or(0.0, |t| t.hit_ratio);
    let all = report.latency.get("all");
    let ms = |pick: fn(&crate::sim::report::LatencySummary) -> f64| {
        all.map_or_else(
            || "-".to_string(),
            |l| format!("{} ms", decimal(pick(l), 1)),
        )
    };
    vec![
        format!(
            "Offload: {} of requests{}; byte hit ratio {}; origin egress saved {}",
            percent(o.requests),
            b.map_or_else(String::new, |b| format!(
                " (bound {})",
                percent(b.offload_requests.bound)
            )),
            bounded(o.byte_hit_ratio, b.map(|b| b.byte_hit_ratio.bound)),
            percent(o.origin_egress_saved),
        ),
        format!(
            "Origin: {} requests, peak {} rps (mean {} rps); latency p95 {}, p99 {}; edge hit \
             ratio {}",
            report.origin.requests,
            decimal(report.origin.peak_rps, 1),
            decimal(report.origin.mean_rps, 1),
            ms(|l| l.p95_ms),
            ms(|l| l.p99_ms),
            bounded(edge, b.map(|b| b.edge_hit_ratio.bound)),
        ),
    ]
}

/// The first lines of one report: the headline, the verdicts, the cautions, then how the run
/// was made and its scenario.
fn opening(report: &Report, run: &RunContext) -> Vec<String> {
    let mut lines = headline(report);
    lines.extend(run.verdicts_for(report).map(Verdict::line));
    if let Some(cold) = &report.cold_caches {
        lines.push(cold.summary());
    }
    if let Some(warning) = bound_warning(report) {
        lines.extend(warning.lines().map(str::to_string));
    }
    lines.extend(run.line());
    lines.push(format!("Scenario: {}", scenario_line(report)));
    lines
}

/// The stream bound beside each figure, then the gap between them by cause, per level.
fn stream_bound_grids(report: &Report) -> Vec<Grid> {
    let Some(b) = &report.stream_bound else {
        return Vec::new();
    };
    let mut figures = Grid::new(
        "Bound from the replayed stream (an infinite cache per location, TTLs as the origin sent)",
        &["figure", "measured", "bound", "measured/bound"],
    );
    let ratio = |m: f64, b: f64| {
        if b > 0.0 {
            decimal(m / b, 3)
        } else {
            "-".to_string()
        }
    };
    let rows = [
        ("edge hit ratio", &b.edge_hit_ratio),
        ("offload by requests", &b.offload_requests),
        ("byte hit ratio", &b.byte_hit_ratio),
    ];
    for (name, f) in rows {
        figures.row(vec![
            name.to_string(),
            percent(f.measured),
            percent(f.bound),
            ratio(f.measured, f.bound),
        ]);
    }
    figures.row(vec![
        "offload, one global cache".to_string(),
        "-".to_string(),
        percent(b.global_offload_requests),
        "-".to_string(),
    ]);
    for (pop, f) in &b.by_pop {
        figures.row(vec![
            format!("{pop} hit ratio"),
            percent(f.measured),
            percent(f.bound),
            ratio(f.measured, f.bound),
        ]);
    }
    let mut grids = vec![figures];
    for gap in &b.gap {
        let title = match gap.level.as_str() {
            "edge" => "Why the edge missed: requests not answered from the PoP's cache, by cause",
            "origin" => "Why the origin was asked: origin requests by cause",
            _ => "Misses by cause",
        };
        let mut grid = Grid::new(title, &["cause", "measured", "bound", "gap"]);
        for cause in &gap.causes {
            grid.row(vec![
                cause.cause.clone(),
                cause.measured.to_string(),
                cause.bound.to_string(),
                signed(cause.measured as i64 - cause.bound as i64),
            ]);
        }
        grid.row(vec![
            "total".to_string(),
            gap.measured.to_string(),
            gap.bound.to_string(),
            signed(gap.measured as i64 - gap.bound as i64),
        ]);
        if gap.revalidated > 0 {
            grid.row(vec![
                "of which revalidated (304, no body)".to_string(),
                gap.revalidated.to_string(),
                "-".to_string(),
                "-".to_string(),
            ]);
        }
        grids.push(grid);
    }
    grids
}

fn signed(n: i64) -> String {
    if n > 0 {
        format!("+{n}")
    } else {
        n.to_string()
    }
}

/// The latency regions in display order: "all" first, then the others alphabetically.
fn regions(
    report: &Report,
) -> impl Iterator<Item = (&String, &crate::sim::report::LatencySummary)> {
    let all = report.latency.get_key_value("all");
    all.into_iter()
        .chain(report.latency.iter().filter(|(k, _)| k.as_str() != "all"))
}

/// The per-report tables, in the order both outputs show them.
fn report_grids(report: &Report) -> Vec<Grid> {
    let mut tiers = Grid::new(
        "Tiers",
        &[
            "tier",
            "requests",
            "hit ratio",
            "hits",
            "misses",
            "SWR",
            "stale-if-error",
            "revalidated",
            "collapsed",
            "upstream (incl. background)",
            "peak stored",
            "peak entries",
        ],
    );
    for t in &report.tiers {
        tiers.row(vec![
            t.name.clone(),
            t.requests.to_string(),
            percent(t.hit_ratio),
            t.hits.to_string(),
            t.misses.to_string(),
            t.stale_while_revalidate.to_string(),
            t.stale_if_error.to_string(),
            t.revalidated.to_string(),
            t.collapsed.to_string(),
            t.upstream_requests.to_string(),
            bytes(t.peak_stored_bytes),
            t.peak_entries.to_string(),
        ]);
    }

    let c = &report.outcomes;
    let mut outcomes = Grid::new(
        "Responses to clients",
        &[
            "",
            "hits",
            "misses",
            "SWR",
            "stale-if-error",
            "revalidated",
            "collapsed",
            "negative hits",
            "304 to clients",
            "errors",
        ],
    );
    outcomes.row(vec![
        "edge".to_string(),
        c.hits.to_string(),
        c.misses.to_string(),
        c.stale_while_revalidate.to_string(),
        c.stale_if_error.to_string(),
        c.revalidated.to_string(),
        c.collapsed.to_string(),
        c.negative_hits.to_string(),
        c.not_modified_to_clients.to_string(),
        c.errors.to_string(),
    ]);

    let o = &report.origin;
    let mut origin = Grid::new(
        "Origin",
        &["", "requests", "304s", "bytes", "peak rps", "mean rps"],
    );
    origin.row(vec![
        "origin".to_string(),
        o.requests.to_string(),
        o.not_modified.to_string(),
        bytes(o.bytes),
        decimal(o.peak_rps, 1),
        decimal(o.mean_rps, 1),
    ]);

    let mut latency = Grid::new(
        "Latency (ms)",
        &["region", "requests", "p50", "p90", "p95", "p99", "p99.9"],
    );
    for (region, l) in regions(report) {
        latency.row(vec![
            region.clone(),
            l.count.to_string(),
            decimal(l.p50_ms, 1),
            decimal(l.p90_ms, 1),
            decimal(l.p95_ms, 1),
            decimal(l.p99_ms, 1),
            decimal(l.p999_ms, 1),
        ]);
    }

    let b = &report.bytes;
    let mut byte_grid = Grid::new("Bytes", &["", "bytes"]);
    byte_grid.note = Some(crate::sim::report::BYTE_FIGURES);
    let o = &report.offload;
    byte_grid.row(vec![
        "byte hit ratio (client bytes served from a cache)".to_string(),
        percent(o.byte_hit_ratio),
    ]);
    byte_grid.row(vec![
        "origin egress saved (against no CDN)".to_string(),
        percent(o.origin_egress_saved),
    ]);
    byte_grid.row(vec![
        "origin bytes per client byte".to_string(),
        decimal(o.origin_bytes_per_client_byte, 3),
    ]);
    byte_grid.row(vec!["to clients".to_string(), bytes(b.to_clients)]);
    byte_grid.row(vec![
        "sent by origins (egress)".to_string(),
        bytes(b.from_origin),
    ]);
    byte_grid.row(vec![
        "saved by compression".to_string(),
        bytes(b.saved_by_compression),
    ]);
    for (coding, count) in &b.by_coding {
        byte_grid.row(vec![format!("to clients as {coding}"), bytes(*count)]);
    }
    byte_grid.row(vec![
        format!(
            "saved by recompression ({} variants, {:.1} s of coder CPU)",
            b.recompressions, b.recompression_cpu_s
        ),
        bytes(b.saved_by_recompression),
    ]);
    for (tier, count) in &b.served_by_tier {
        byte_grid.row(vec![served_label(tier), bytes(*count)]);
    }

    let mut bounds = Grid::new("Bounds", &["figure", "measured", "bound", "measured/bound"]);
    for f in &report.bounds {
        bounds.row(vec![
            f.name.clone(),
            decimal(f.measured, 3),
            decimal(f.bound, 3),
            decimal(f.ratio, 3),
        ]);
    }

    let mut grids = vec![tiers, outcomes, origin, latency];
    grids.extend(hop_grid(report));
    grids.push(byte_grid);
    grids.extend(stream_bound_grids(report));
    if !report.bounds.is_empty() {
        grids.push(bounds);
    }
    if !report.parts.is_empty() {
        let mut parts = Grid::new(
            "Parts of composed pages (what the edge cached per part)",
            &[
                "part",
                "requests",
                "edge hits",
                "private hits",
                "fetched",
                "reached the origin",
                "bytes",
            ],
        );
        parts.note = Some(crate::sim::report::PART_FIGURES);
        for part in &report.parts {
            parts.row(vec![
                part.part.clone(),
                part.requests.to_string(),
                part.edge_hits.to_string(),
                part.private_hits.to_string(),
                part.fetched.to_string(),
                part.origin_fetches.to_string(),
                bytes(part.bytes),
            ]);
        }
        grids.push(parts);
    }
    if let Some(p) = &report.purges {
        let mut purges = Grid::new(
            "Purges",
            &[
                "purges",
                "soft",
                "entries reached",
                "origin refetches",
                "propagation ms",
            ],
        );
        purges.row(vec![
            p.purges.to_string(),
            p.soft_purges.to_string(),
            p.entries.to_string(),
            p.origin_refetches.to_string(),
            decimal(p.propagation_ms, 0),
        ]);
        grids.push(purges);
    }
    grids
}

/// Latency by Server-Timing hop, client side first, with the seed design's p95 budgets
/// beside p95 (`sim::hops::BUDGETS_P95_MS`): "OVER" marks a hop whose p95 exceeds its
/// budget. `None` when the report has no hops.
fn hop_grid(report: &Report) -> Option<Grid> {
    use crate::sim::hops;
    if report.hops.is_empty() {
        return None;
    }
    let mut grid = Grid::new(
        "Latency by hop (Server-Timing, ms)",
        &["hop", "responses", "p50", "p95", "p99", "p95 budget"],
    );
    let mut names: Vec<&String> = report.hops.keys().collect();
    names.sort_by_key(|n| hops::order_key(n));
    for name in names {
        let h = &report.hops[name];
        let budget = hops::budget_p95_ms(name).map_or_else(
            || "-".to_string(),
            |budget| {
                let verdict = if h.p95_ms > budget { "OVER" } else { "ok" };
                format!("{} {verdict}", decimal(budget, 0))
            },
        );
        grid.row(vec![
            name.clone(),
            h.count.to_string(),
            decimal(h.p50_ms, 1),
            decimal(h.p95_ms, 1),
            decimal(h.p99_ms, 1),
            budget,
        ]);
    }
    Some(grid)
}

/// "served by edge" for a cache tier's bytes; the origin's are the bytes clients got from an
/// origin fetch, told apart from what origins sent.
fn served_label(tier: &str) -> String {
    if tier == "origin" {
        "to clients from an origin fetch".to_string()
    } else {
        format!("to clients from the {tier} cache")
    }
}

/// The report as plain text for a terminal: the answer first (offload with its bounds, the
/// origin's peak, the latency tail, the `--assert` verdicts, any caution), then how the run was
/// made, then the tables of tiers, responses to clients, origin, latency per region, bytes and
/// bounds.
pub fn table(report: &Report, run: &RunContext) -> String {
    let mut out = String::new();
    for line in opening(report, run) {
        out.push_str(&line);
        out.push('\n');
    }
    for grid in report_grids(report) {
        out.push('\n');
        out.push_str(&grid.to_text());
    }
    out
}

fn tier_hit_ratio(report: &Report, tier: &str) -> String {
    report
        .tiers
        .iter()
        .find(|t| t.name == tier)
        .map_or_else(|| "-".to_string(), |t| percent(t.hit_ratio))
}

fn overall_ms(report: &Report, pick: fn(&crate::sim::report::LatencySummary) -> f64) -> String {
    report
        .latency
        .get("all")
        .map_or_else(|| "-".to_string(), |l| decimal(pick(l), 1))
}

/// The key figures of up to [`MAX_COMPARED_REPORTS`] reports, one column each.
fn compare_grid(reports: &[Report]) -> Grid {
    let reports = &reports[..reports.len().min(MAX_COMPARED_REPORTS)];
    let mut header = vec![String::new()];
    header.extend(reports.iter().map(|r| r.scenario.name.clone()));
    type Figure = fn(&Report) -> String;
    let figures: [(&str, Figure); 19] = [
        ("offload (requests)", |r| percent(r.offload.requests)),
        ("byte hit ratio", |r| percent(r.offload.byte_hit_ratio)),
        ("origin egress saved", |r| {
            percent(r.offload.origin_egress_saved)
        }),
        ("origin bytes per client byte", |r| {
            decimal(r.offload.origin_bytes_per_client_byte, 3)
        }),
        ("bytes to clients", |r| bytes(r.bytes.to_clients)),
        ("saved by recompression", |r| {
            bytes(r.bytes.saved_by_recompression)
        }),
        ("edge hit ratio", |r| tier_hit_ratio(r, "edge")),
        ("regional hit ratio", |r| tier_hit_ratio(r, "regional")),
        ("shield hit ratio", |r| tier_hit_ratio(r, "shield")),
        ("origin requests", |r| r.origin.requests.to_string()),
        ("origin bytes", |r| bytes(r.origin.bytes)),
        ("origin peak rps", |r| decimal(r.origin.peak_rps, 1)),
        ("negative hits", |r| r.outcomes.negative_hits.to_string()),
        ("p50 ms", |r| overall_ms(r, |l| l.p50_ms)),
        ("p95 ms", |r| overall_ms(r, |l| l.p95_ms)),
        ("p99 ms", |r| overall_ms(r, |l| l.p99_ms)),
        ("errors", |r| r.outcomes.errors.to_string()),
        ("origin refetches after purges", |r| {
            r.purges
                .as_ref()
                .map_or_else(|| "-".to_string(), |p| p.origin_refetches.to_string())
        }),
        ("requests", |r| r.scenario.requests.to_string()),
    ];
    let mut grid = Grid {
        title: "Comparison".to_string(),
        header,
        rows: Vec::new(),
        note: Some(crate::sim::report::BYTE_FIGURES),
    };
    for (label, figure) in figures {
        let mut row = vec![label.to_string()];
        row.extend(reports.iter().map(figure));
        grid.row(row);
    }
    compare_hop_rows(&mut grid, reports);
    grid
}

/// A "p95 HOP ms" row per Server-Timing hop any of `reports` has, client side first.
fn compare_hop_rows(grid: &mut Grid, reports: &[Report]) {
    let mut names: Vec<&String> = reports.iter().flat_map(|r| r.hops.keys()).collect();
    names.sort_by_key(|n| crate::sim::hops::order_key(n));
    names.dedup();
    for name in names {
        let mut row = vec![format!("p95 {name} ms")];
        row.extend(reports.iter().map(|r| {
            r.hops
                .get(name)
                .map_or_else(|| "-".to_string(), |h| decimal(h.p95_ms, 1))
        }));
        grid.row(row);
    }
}

/// Key figures side by side, one column per report headed by its scenario name: offload by
/// requests and the byte figures, edge, regional and shield hit ratio, origin requests, bytes
/// and peak rps, p50/p95/p99 over all regions, errors; then the `--assert` verdicts, any
/// caution, and how the run was made. Shows at most [`MAX_COMPARED_REPORTS`] reports and says
/// so when more were given.
pub fn compare_table(reports: &[Report], run: &RunContext) -> String {
    if reports.is_empty() {
        return "No reports to compare.\n".to_string();
    }
    let mut out = compare_grid(reports).to_text();
    if reports.len() > MAX_COMPARED_REPORTS {
        let _ = writeln!(
            out,
            "({} more reports not shown; at most {MAX_COMPARED_REPORTS} are compared)",
            reports.len() - MAX_COMPARED_REPORTS
        );
    }
    for line in compare_notes(reports, run) {
        out.push_str(&line);
        out.push('\n');
    }
    out
}

/// Under a comparison: every verdict, each report's cautions, how the run was made.
fn compare_notes(reports: &[Report], run: &RunContext) -> Vec<String> {
    let mut lines: Vec<String> = run.verdicts.iter().map(Verdict::line).collect();
    for report in reports {
        if let Some(cold) = &report.cold_caches {
            lines.push(format!("{}: {}", report.scenario.name, cold.summary()));
        }
        if let Some(warning) = bound_warning(report) {
            lines.push(format!("{}: {}", report.scenario.name, warning.trim_end()));
        }
    }
    lines.extend(run.line());
    lines
}

const STYLE: &str = "\
body{font:14px/1.4 system-ui,sans-serif;margin:2em auto;max-width:1100px;padding:0 1em;color:#222}\
h1{font-size:1.5em}h2{font-size:1.25em;margin-top:2em;border-bottom:1px solid #ccc}h3{font-size:1em}\
table{border-collapse:collapse;margin:.5em 0 1em}th,td{padding:.2em .7em;border-bottom:1px solid #e4e4e4}\
th{text-align:left;background:#f6f6f6}td.num{text-align:right;font-variant-numeric:tabular-nums}\
.charts{display:grid;grid-template-columns:minmax(0,1fr);gap:1em}\
svg.chart{width:100%;max-width:960px;height:auto;border:1px solid #eee}\
svg .title{font-weight:600;font-size:14px}svg .tick,svg .legend{font-size:11px;fill:#444}\
svg .axis,svg .label{font-size:12px;fill:#222}svg .grid{stroke:#eee}svg .axisline{stroke:#999}\
svg .shade{fill:#ececec;stroke:#d0d0d0}svg .range{stroke:#bbb;stroke-width:2}\
svg .empty{fill:#999;font-size:14px}\
pre.warning{background:#fde8e8;border:2px solid #c00;color:#900;padding:.6em;white-space:pre-wrap}\
.headline{font-size:1.15em;background:#f4f8f4;border-left:4px solid #4a7;padding:.5em .8em}\
.headline p{margin:.2em 0}.verdict.fail{color:#b00;font-weight:600}.verdict.pass{color:#264}\
.caution{background:#fff6dd;border:2px solid #c90;padding:.5em .8em}\
.context{color:#555;font-size:.9em}.context code{white-space:pre-wrap}p.note{color:#555;font-size:.9em}";

/// The answer block at the top of a page: per report, the headline, the verdicts and the
/// cautions; then how the run was made and each scenario.
fn html_opening(reports: &[Report], run: &RunContext) -> String {
    let mut out = String::new();
    for report in reports {
        out.push_str("<div class=\"headline\">");
        if reports.len() > 1 {
            let _ = write!(out, "<p><b>{}</b></p>", escape(&report.scenario.name));
        }
        for line in headline(report) {
            let _ = write!(out, "<p>{}</p>", escape(&line));
        }
        for verdict in run.verdicts_for(report) {
            let class = if verdict.passed { "pass" } else { "fail" };
            let _ = write!(
                out,
                "<p class=\"verdict {class}\">{}</p>",
                escape(&verdict.line())
            );
        }
        out.push_str("</div>");
        if let Some(cold) = &report.cold_caches {
            let _ = write!(out, "<p class=\"caution\">{}</p>", escape(&cold.summary()));
        }
        if let Some(warning) = bound_warning(report) {
            let _ = write!(out, "<pre class=\"warning\">{}</pre>", escape(&warning));
        }
    }
    out.push_str("<div class=\"context\">");
    if let Some(line) = run.line() {
        let _ = write!(out, "<p>{}</p>", escape(&line));
    }
    for report in reports {
        let _ = write!(out, "<p>Scenario: {}</p>", escape(&scenario_line(report)));
    }
    out.push_str("</div>");
    out
}

/// One self-contained HTML page (inline CSS and SVG; no scripts, fonts or links) for one report
/// or several compared. It opens with the answer — offload by requests and bytes with their
/// bounds, the origin's peak, p95/p99, the `--assert` verdicts, any caution — then the command
/// line, version, date and scenario; then the charts: offload over time above client and
/// origin load (warm-up shaded, the origin's peak marked), hit ratio by tier and cache with
/// the stream's bounds, measured vs bound, bytes by where they came from, each report's latency
/// CDF and percentiles per region; then each report's tables. Shows at most
/// [`MAX_COMPARED_REPORTS`] reports.
pub fn html(reports: &[Report], run: &RunContext) -> String {
    let shown = &reports[..reports.len().min(MAX_COMPARED_REPORTS)];
    let names: Vec<&str> = shown.iter().map(|r| r.scenario.name.as_str()).collect();
    let title = format!("Simulation: {}", names.join(" vs "));
    let mut out = format!(
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width,initial-scale=1\">\
         <title>{t}</title><style>{STYLE}</style></head><body><h1>{t}</h1>",
        t = escape(&title)
    );
    if shown.is_empty() {
        out.push_str("<p>No reports.</p></body></html>\n");
        return out;
    }
    out.push_str(&html_opening(shown, run));
    if reports.len() > shown.len() {
        let _ = write!(
            out,
            "<p>{} more reports not shown; at most {MAX_COMPARED_REPORTS} are compared.</p>",
            reports.len() - shown.len()
        );
    }
    if shown.len() > 1 {
        out.push_str(&compare_grid(shown).to_html());
    }
    out.push_str("<div class=\"charts\">");
    out.push_str(&charts::load_chart(shown));
    out.push_str(&charts::hit_ratio_chart(shown));
    if let Some(chart) = charts::bound_chart(shown) {
        out.push_str(&chart);
    }
    out.push_str(&charts::bytes_chart(shown));
    for report in shown {
        out.push_str(&charts::latency_chart(report));
        out.push_str(&charts::percentile_chart(report));
    }
    out.push_str("</div>");
    for report in shown {
        let _ = write!(out, "<section><h2>{}</h2>", escape(&scenario_line(report)),);
        for grid in report_grids(report) {
            out.push_str(&grid.to_html());
        }
        out.push_str("</section>");
    }
    out.push_str("</body></html>\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sim::assertions::tests::sample_report;

    fn none() -> RunContext {
        RunContext::default()
    }

    /// Charts on a page for `n` sample reports: load over time, hit ratio, measured vs bound,
    /// bytes, and a CDF and percentiles per report.
    fn chart_count(n: usize) -> usize {
        4 + 2 * n
    }

    /// Issue 26: a figure above its bound is printed loudly, in the table and on the page,
    /// naming the figure and both values; a report within its bounds has no warning.
    #[test]
    fn a_beaten_bound_is_a_loud_warning() {
        let mut report = sample_report("tiered");
        assert_eq!(bound_warning(&report), None);
        assert!(!table(&report, &none()).contains("WARNING"));
        let bound = report.stream_bound.as_mut().unwrap();
        bound.offload_requests.measured = 0.1945;
        bound.offload_requests.bound = 0.1924;
        let text = table(&report, &none());
        assert!(
            text.contains("WARNING: measured figures beat their stream bound")
                && text.contains("!! offload by requests: measured 19.450 %, bound 19.240 %"),
            "{text}"
        );
        let page = html(std::slice::from_ref(&report), &none());
        assert!(page.contains("<pre class=\"warning\">WARNING"), "{page}");
    }

    #[test]
    fn table_shows_every_section() {
        let text = table(&sample_report("tiered"), &none());
        for expected in [
            "tiered: zipf(0.9) over 1000 objects, 1000 req/s; 10000 requests over 10.0 s, seed 42, 8 PoPs, 3 regionals; measured after a warm-up of 2000 requests (2.0 s)",
            "Offload: 97.1% of requests (bound 98.0%); byte hit ratio 96.5% (bound 97.0%); origin egress saved 90.0%",
            "Origin: 290 requests, peak 61.0 rps (mean 29.0 rps)",
            "byte hit ratio = client bytes served from a cache / client bytes",
            "Bound from the replayed stream",
            "Why the edge missed",
            "| evicted for capacity ",
            "| of which revalidated (304, no body) |",
            "| edge-fra ",
            "90.0%",
            "stale-if-error",
            "Responses to clients",
            "304 to clients",
            "Origin",
            "293.0 KiB",
            "61.0",
            "| all ",
            "212.4",
            "saved by compression",
            "to clients from the regional cache",
            "edge hit ratio (TTL, Jung et al.)",
            "0.968",
            "Latency by hop (Server-Timing, ms)",
            "| regional ",
            "20 ok",
            "15 OVER",
        ] {
            assert!(text.contains(expected), "missing {expected:?} in\n{text}");
        }
        // "all" leads the latency rows although it sorts after "ap-southeast".
        let all = text.find("| all ").unwrap();
        assert!(all < text.find("| ap-southeast ").unwrap());
        // Hops read from the client to the origin.
        let hops = &text[text.find("Latency by hop").unwrap()..];
        let at = |hop: &str| hops.find(&format!("| {hop} ")).unwrap();
        assert!(at("client") < at("edge") && at("edge") < at("auth"));
        assert!(at("auth") < at("regional") && at("regional") < at("origin"));
        let mut no_hops = sample_report("tiered");
        no_hops.hops.clear();
        assert!(!table(&no_hops, &none()).contains("Latency by hop"));
    }

    #[test]
    fn table_columns_line_up() {
        let text = table(&sample_report("tiered"), &none());
        let tier_lines: Vec<&str> = text
            .lines()
            .skip_while(|l| *l != "Tiers")
            .skip(1)
            .take_while(|l| !l.is_empty())
            .collect();
        assert!(tier_lines.len() >= 4, "{text}");
        let width = tier_lines[0].chars().count();
        assert!(
            tier_lines.iter().all(|l| l.chars().count() == width),
            "{text}"
        );
    }

    #[test]
    fn compare_table_has_one_column_per_report() {
        let mut edge_only = sample_report("edge-only");
        edge_only.tiers.retain(|t| t.name != "regional");
        edge_only.latency.clear();
        let text = compare_table(&[sample_report("tiered"), edge_only], &none());
        let header = text.lines().nth(1).unwrap();
        assert!(
            header.contains("tiered") && header.contains("edge-only"),
            "{text}"
        );
        for row in [
            "offload (requests)",
            "byte hit ratio",
            "origin egress saved",
            "origin bytes per client byte",
            "edge hit ratio",
            "regional hit ratio",
            "origin requests",
            "origin peak rps",
            "p50 ms",
            "p95 ms",
            "p99 ms",
            "errors",
        ] {
            assert!(text.contains(row), "missing {row:?}\n{text}");
        }
        let regional = text
            .lines()
            .find(|l| l.contains("regional hit ratio"))
            .unwrap();
        assert!(
            regional.contains("71.0%") && regional.contains(" - "),
            "{regional}"
        );
        let mut no_hops = sample_report("no-hops");
        no_hops.hops.clear();
        let text = compare_table(&[sample_report("tiered"), no_hops], &none());
        let edge_hop = text.lines().find(|l| l.contains("p95 edge ms")).unwrap();
        assert!(
            edge_hop.contains("12.5") && edge_hop.contains(" - "),
            "{edge_hop}"
        );
        let mut shielded = sample_report("shield");
        shielded.scenario.shields = 1;
        let mut shield = shielded.tiers[0].clone();
        shield.name = "shield".into();
        shield.hit_ratio = 0.679;
        shielded.tiers.push(shield);
        let text = compare_table(&[sample_report("tiered"), shielded.clone()], &none());
        let row = text
            .lines()
            .find(|l| l.contains("shield hit ratio"))
            .unwrap();
        assert!(row.contains(" - ") && row.contains("67.9%"), "{row}");
        assert!(text.contains("origin bytes"), "{text}");
        assert!(
            table(&shielded, &none()).contains("8 PoPs, 3 regionals, 1 shield; measured after"),
            "{}",
            table(&shielded, &none())
        );
        assert_eq!(compare_table(&[], &none()), "No reports to compare.\n");
        let many: Vec<Report> = (0..10).map(|i| sample_report(&format!("r{i}"))).collect();
        assert!(compare_table(&many, &none()).contains("(2 more reports not shown"));
    }

    #[test]
    fn html_is_self_contained_with_one_svg_per_chart() {
        for n in [1, 2, 3] {
            let reports: Vec<Report> = (0..n).map(|i| sample_report(&format!("run{i}"))).collect();
            let page = html(&reports, &none());
            assert_eq!(page.matches("<svg").count(), chart_count(n), "n={n}");
            assert_eq!(page.matches("</svg>").count(), chart_count(n));
            assert!(!page.contains("http://") && !page.contains("https://"));
            assert!(!page.contains("<script") && !page.contains("<link") && !page.contains("url("));
            assert!(page.starts_with("<!DOCTYPE html>") && page.ends_with("</html>\n"));
            assert!(page.contains("<table>") && page.contains("<path d=\"M"));
            assert!(!page.contains("NaN") && !page.contains("inf\""));
            assert_eq!(
                page.matches("<h3>Latency by hop (Server-Timing, ms)</h3>")
                    .count(),
                n
            );
            assert!(page.contains("<td class=\"num\">15 OVER</td>"));
        }
    }

    #[test]
    fn html_escapes_everything_it_embeds() {
        let mut report = sample_report("<script>alert('x')</script>");
        report.scenario.workload = "a & b \"quoted\"".to_string();
        report.tiers[0].name = "<b>edge</b>".to_string();
        report
            .latency
            .insert("<img src=x>".to_string(), report.latency["all"].clone());
        report.bytes.served_by_tier.insert("</svg>".to_string(), 1);
        let page = html(&[report], &none());
        assert!(!page.contains("<script"), "unescaped scenario name");
        assert!(page.contains("&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;"));
        assert!(!page.contains("<b>") && !page.contains("<img"));
        assert!(page.contains("a &amp; b &quot;quoted&quot;"));
        assert_eq!(page.matches("</svg>").count(), chart_count(1));
    }

    #[test]
    fn empty_and_degenerate_reports_do_not_panic() {
        let mut report = sample_report("empty");
        report.origin.timeline.clear();
        report.origin.client_timeline.clear();
        report.tiers.clear();
        report.latency.clear();
        report.bytes.served_by_tier.clear();
        report.bounds.clear();
        let page = html(std::slice::from_ref(&report), &none());
        assert_eq!(page.matches("<svg").count(), chart_count(1));
        assert!(page.contains("no data"));
        assert!(!table(&report, &none()).is_empty());

        let mut odd = sample_report("odd");
        odd.origin.bucket_s = 0.0;
        odd.offload.requests = f64::NAN;
        odd.origin.timeline = vec![u64::MAX, 0, u64::MAX];
        for l in odd.latency.values_mut() {
            l.cdf = vec![
                (0.0, 0.5),
                (-1.0, 0.7),
                (f64::NAN, 0.9),
                (f64::INFINITY, 1.0),
            ];
        }
        let page = html(&[odd.clone()], &none());
        assert!(!page.contains("NaN"));
        assert!(table(&odd, &none()).contains("n/a"));
        odd.origin.bucket_s = 1.0;
        odd.origin.timeline = vec![1; 100_000];
        let page = html(&[odd], &none());
        assert!(page.len() < 400_000, "{} bytes", page.len());
        assert_eq!(html(&[], &none()).matches("<svg").count(), 0);
    }
}
