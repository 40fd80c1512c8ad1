//! Inline SVG charts drawn as strings, so the HTML report needs no script, font or network:
//! line charts of one or more stacked panels sharing an x axis, horizontal bar charts (one row
//! per name, so names never collide) with optional bound ticks, and rows of percentile markers.
//!
//! Every label passes through [`escape`]; every coordinate is finite (non-finite data points are
//! dropped) so a chart is well-formed whatever the report holds. Label positions come from
//! [`axis::text_width`]'s conservative estimates, so labels stay apart in any common font.
//! Marks that carry data have the class `data` (the browser check counts them).

use std::fmt::Write;

use super::axis::{self, fit, text_width, Axis, Scale, LABEL_PX, TICK_PX, TITLE_PX};

/// Drawing width in SVG user units; the page scales it to the column width.
pub const WIDTH: f64 = 860.0;
/// Where a chart's content starts, below its title.
const TOP: f64 = 40.0;
/// Space kept from the drawing's right edge.
const MARGIN: f64 = 12.0;

/// Distinguishable on white and for the common colour-vision deficiencies (Okabe–Ito).
pub const PALETTE: [&str; 8] = [
    "#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#000000", "#F0E442",
];
/// Bound ticks: dark and thick enough to read on every palette colour.
const BOUND_COLOR: &str = "#111111";

/// Escapes text for HTML and SVG content and attribute values.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    edge_worker::compose::vars::escape_html_into(text, &mut out);
    out
}

/// Marker shapes, told apart without colour.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Shape {
    Circle,
    Square,
    Diamond,
    Triangle,
    Cross,
}

/// How a legend entry is drawn.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Swatch {
    Line,
    Dashed,
    Bar,
    /// A bound tick on a bar.
    Tick,
    Marker(Shape),
    /// A shaded time range (the warm-up).
    Shade,
}

pub struct LegendEntry {
    pub label: String,
    pub color: &'static str,
    pub swatch: Swatch,
}

impl LegendEntry {
    pub fn new(label: impl Into<String>, color: &'static str, swatch: Swatch) -> LegendEntry {
        LegendEntry {
            label: label.into(),
            color,
            swatch,
        }
    }
}

fn marker(shape: Shape, x: f64, y: f64, color: &str, class: &str, tip: &str) -> String {
    let r = 4.5;
    let body = match shape {
        Shape::Circle => format!("<circle cx=\"{x:.1}\" cy=\"{y:.1}\" r=\"{r}\""),
        Shape::Square => format!(
            "<rect x=\"{:.1}\" y=\"{:.1}\" width=\"{w}\" height=\"{w}\"",
            x - r * 0.85,
            y - r * 0.85,
            w = r * 1.7
        ),
        Shape::Diamond => format!(
            "<path d=\"M{x:.1} {:.1}L{:.1} {y:.1}L{x:.1} {:.1}L{:.1} {y:.1}Z\"",
            y - r * 1.2,
            x + r * 1.2,
            y + r * 1.2,
            x - r * 1.2
        ),
        Shape::Triangle => format!(
            "<path d=\"M{x:.1} {:.1}L{:.1} {:.1}L{:.1} {:.1}Z\"",
            y - r * 1.15,
            x + r * 1.1,
            y + r * 0.85,
            x - r * 1.1,
            y + r * 0.85
        ),
        Shape::Cross => format!(
            "<path d=\"M{:.1} {:.1}L{:.1} {:.1}M{:.1} {:.1}L{:.1} {:.1}\" stroke-width=\"2.2\" stroke=\"{color}\"",
            x - r,
            y - r,
            x + r,
            y + r,
            x - r,
            y + r,
            x + r,
            y - r
        ),
    };
    let tip = if tip.is_empty() {
        String::new()
    } else {
        format!("<title>{}</title>", escape(tip))
    };
    format!(
        "{body} fill=\"{color}\" class=\"{class}\">{tip}</{tag}>",
        tag = tag_of(&body)
    )
}

fn tag_of(element: &str) -> &str {
    element[1..].split(' ').next().unwrap_or("path")
}

fn swatch(kind: Swatch, x: f64, y: f64, color: &str) -> String {
    let mid = y - 4.0;
    match kind {
        Swatch::Line | Swatch::Dashed => format!(
            "<line x1=\"{x}\" y1=\"{mid}\" x2=\"{x2}\" y2=\"{mid}\" stroke=\"{color}\" stroke-width=\"2\"{dash}/>",
            x2 = x + 18.0,
            dash = if kind == Swatch::Dashed {
                " stroke-dasharray=\"5 3\""
            } else {
                ""
            }
        ),
        Swatch::Bar => format!(
            "<rect x=\"{x}\" y=\"{y0}\" width=\"16\" height=\"10\" fill=\"{color}\"/>",
            y0 = mid - 5.0
        ),
        Swatch::Shade => format!(
            "<rect x=\"{x}\" y=\"{y0}\" width=\"16\" height=\"10\" class=\"shade\"/>",
            y0 = mid - 5.0
        ),
        Swatch::Tick => format!(
            "<line x1=\"{x1}\" y1=\"{a}\" x2=\"{x1}\" y2=\"{b}\" stroke=\"{color}\" stroke-width=\"2.5\"/>",
            x1 = x + 8.0,
            a = mid - 7.0,
            b = mid + 7.0
        ),
        Swatch::Marker(shape) => marker(shape, x + 8.0, mid, color, "", ""),
    }
}

/// Wraps a chart's body in its `<svg>`: the title on top, the body (which ends at
/// `body_bottom`), then the legend, wrapping onto as many rows as it needs.
fn finish(title: &str, body: &str, body_bottom: f64, entries: &[LegendEntry]) -> String {
    const ROW: f64 = 18.0;
    let mut legend = String::new();
    let left = 12.0;
    let (mut x, mut y) = (left, body_bottom + 22.0);
    for entry in entries {
        let label = fit(&entry.label, WIDTH - 2.0 * left - 26.0, TICK_PX);
        let width = 24.0 + text_width(&label, TICK_PX);
        if x > left && x + width > WIDTH - MARGIN {
            x = left;
            y += ROW;
        }
        legend.push_str(&swatch(entry.swatch, x, y, entry.color));
        let _ = write!(
            legend,
            "<text x=\"{tx}\" y=\"{y}\" class=\"legend\">{label}</text>",
            tx = x + 22.0,
            label = escape(&label),
        );
        x += width + 18.0;
    }
    let height = if entries.is_empty() {
        body_bottom + 12.0
    } else {
        y + 10.0
    };
    format!(
        "<svg class=\"chart\" viewBox=\"0 0 {WIDTH} {height}\" role=\"img\" aria-label=\"{t}\">\
         <text x=\"12\" y=\"22\" class=\"title\">{short}</text>{body}{legend}</svg>",
        t = escape(title),
        short = escape(&fit(title, WIDTH - 24.0, TITLE_PX)),
    )
}

/// A chart with nothing to draw says so.
pub fn no_data(title: &str) -> String {
    let body = format!(
        "<text x=\"{x}\" y=\"{y}\" class=\"empty\" text-anchor=\"middle\">no data</text>",
        x = WIDTH / 2.0,
        y = TOP + 40.0
    );
    finish(title, &body, TOP + 60.0, &[])
}

/// A category label at the left of a row, shortened to `room` (the full name as a tooltip).
fn row_label(out: &mut String, name: &str, x: f64, y: f64, room: f64) {
    let shown = fit(name, room, LABEL_PX);
    let _ = write!(
        out,
        "<g><title>{full}</title><text x=\"{x:.1}\" y=\"{y:.1}\" text-anchor=\"end\" class=\"label\">{shown}</text></g>",
        full = escape(name),
        shown = escape(&shown),
    );
}

/// Ticks and grid lines of a horizontal axis under a plot from `top` to `bottom`, then its
/// label; returns where the axis ends.
fn x_axis(
    out: &mut String,
    axis: &Axis,
    (left, width): (f64, f64),
    (top, bottom): (f64, f64),
    label: &str,
) -> f64 {
    for (value, text) in &axis.ticks {
        let x = left + axis.frac(*value) * width;
        let _ = write!(
            out,
            "<line x1=\"{x:.1}\" y1=\"{top:.1}\" x2=\"{x:.1}\" y2=\"{bottom:.1}\" class=\"grid\"/>\
             <text x=\"{x:.1}\" y=\"{ty:.1}\" text-anchor=\"middle\" class=\"tick\">{text}</text>",
            ty = bottom + 18.0,
            text = escape(text),
        );
    }
    let _ = write!(
        out,
        "<line x1=\"{left:.1}\" y1=\"{bottom:.1}\" x2=\"{r:.1}\" y2=\"{bottom:.1}\" class=\"axisline\"/>\
         <text x=\"{x:.1}\" y=\"{y:.1}\" text-anchor=\"middle\" class=\"axis\">{label}</text>",
        r = left + width,
        x = left + width / 2.0,
        y = bottom + 38.0,
        label = escape(label),
    );
    bottom + 44.0
}

/// One line of a line chart.
pub struct Series {
    pub label: String,
    pub points: Vec<(f64, f64)>,
    pub color: &'static str,
    pub dashed: bool,
}

/// How a panel's y axis maps values.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum YAxis {
    /// From 0 up to the data's maximum, rounded.
    Linear,
    /// Fractions 0..=1, labelled as percentages.
    Ratio,
    /// Fractions on a nines scale up to 1 − 10⁻ⁿ (see [`axis::nines`]).
    Nines(u32),
}

/// One plot of a line chart, stacked under the previous one and sharing its x axis.
pub struct Panel {
    pub y_label: String,
    pub y: YAxis,
    pub height: f64,
    pub series: Vec<Series>,
    /// Points marked with a triangle (e.g. the origin's peak), each with its tooltip.
    pub marks: Vec<Mark>,
}

/// A marked point of a panel.
pub struct Mark {
    pub at: (f64, f64),
    pub color: &'static str,
    pub tip: String,
}

pub struct LineChart<'a> {
    pub title: &'a str,
    pub x_label: &'a str,
    /// `Linear` or `Log`.
    pub x_scale: Scale,
    pub panels: Vec<Panel>,
    /// An x range shaded in every panel (the warm-up).
    pub shade: Option<(f64, f64)>,
    pub legend: Vec<LegendEntry>,
}

pub fn percent_tick(value: f64) -> String {
    format!("{}%", axis::short_number(value * 100.0))
}

/// Renders a line chart: its panels stacked, one x axis under the last. Points a scale cannot
/// place (non-finite, ≤ 0 on a log axis, ≥ 1 on a nines axis) are dropped; a chart with no
/// points at all says "no data".
pub fn line_chart(chart: &LineChart<'_>) -> String {
    let y_scale = |y: YAxis| match y {
        YAxis::Nines(_) => Scale::Nines,
        _ => Scale::Linear,
    };
    let cleaned: Vec<Vec<Vec<(f64, f64)>>> = chart
        .panels
        .iter()
        .map(|panel| {
            panel
                .series
                .iter()
                .map(|s| {
                    s.points
                        .iter()
                        .copied()
                        .filter(|(x, y)| chart.x_scale.admits(*x) && y_scale(panel.y).admits(*y))
                        .collect()
                })
                .collect()
        })
        .collect();
    let xs = || cleaned.iter().flatten().flatten().map(|(x, _)| *x);
    if xs().next().is_none() {
        return no_data(chart.title);
    }
    let y_axes: Vec<Axis> = chart
        .panels
        .iter()
        .zip(&cleaned)
        .map(|(panel, points)| {
            let marked = panel.marks.iter().map(|m| m.at.1).filter(|y| y.is_finite());
            let max = points
                .iter()
                .flatten()
                .map(|(_, y)| *y)
                .chain(marked)
                .fold(0.0, f64::max);
            match panel.y {
                YAxis::Linear => axis::linear(max, None, panel.height, false, &axis::short_number),
                YAxis::Ratio => axis::linear(1.0, Some(1.0), panel.height, false, &percent_tick),
                YAxis::Nines(n) => axis::nines(n),
            }
        })
        .collect();
    let left = y_axes
        .iter()
        .map(|a| a.label_width(TICK_PX))
        .fold(24.0, f64::max)
        + 22.0;
    let width = WIDTH - left - MARGIN - 16.0;
    let mut x_min = xs().fold(f64::INFINITY, f64::min);
    let mut x_max = xs().fold(f64::NEG_INFINITY, f64::max);
    if let Some((lo, hi)) = chart.shade {
        if lo.is_finite() && hi.is_finite() {
            x_min = x_min.min(lo);
            x_max = x_max.max(hi);
        }
    }
    let x_axis_spec = match chart.x_scale {
        Scale::Log => axis::log(x_min, x_max, width, true, &axis::short_number),
        _ => axis::linear(x_max, None, width, true, &axis::short_number),
    };
    let px = |x: f64| left + x_axis_spec.frac(x) * width;

    let mut out = String::new();
    let mut cursor = TOP;
    for (i, ((panel, points), y_axis)) in chart.panels.iter().zip(&cleaned).zip(&y_axes).enumerate()
    {
        let top = cursor + 20.0;
        let bottom = top + panel.height;
        let py = |y: f64| bottom - y_axis.frac(y) * panel.height;
        if let Some((lo, hi)) = chart.shade {
            if lo.is_finite() && hi.is_finite() && hi > lo {
                let _ = write!(
                    out,
                    "<rect x=\"{x:.1}\" y=\"{top:.1}\" width=\"{w:.1}\" height=\"{h:.1}\" class=\"shade\"/>",
                    x = px(lo),
                    w = px(hi) - px(lo),
                    h = panel.height,
                );
            }
        }
        for (value, text) in &y_axis.ticks {
            let y = py(*value);
            let _ = write!(
                out,
                "<line x1=\"{left:.1}\" y1=\"{y:.1}\" x2=\"{r:.1}\" y2=\"{y:.1}\" class=\"grid\"/>\
                 <text x=\"{tx:.1}\" y=\"{ty:.1}\" text-anchor=\"end\" class=\"tick\">{text}</text>",
                r = left + width,
                tx = left - 6.0,
                ty = y + 4.0,
                text = escape(text),
            );
        }
        let _ = write!(
            out,
            "<text x=\"{left:.1}\" y=\"{y:.1}\" class=\"axis\">{label}</text>",
            y = top - 8.0,
            label = escape(&fit(&panel.y_label, width, LABEL_PX)),
        );
        if i + 1 < chart.panels.len() {
            for (value, _) in &x_axis_spec.ticks {
                let x = px(*value);
                let _ = write!(
                    out,
                    "<line x1=\"{x:.1}\" y1=\"{top:.1}\" x2=\"{x:.1}\" y2=\"{bottom:.1}\" class=\"grid\"/>"
                );
            }
            let _ = write!(
                out,
                "<line x1=\"{left:.1}\" y1=\"{bottom:.1}\" x2=\"{r:.1}\" y2=\"{bottom:.1}\" class=\"axisline\"/>",
                r = left + width
            );
        }
        for (series, points) in panel.series.iter().zip(points) {
            if points.is_empty() {
                continue;
            }
            if let [(x, y)] = points[..] {
                // A lone point (a run shorter than two intervals) still shows, as a dot.
                out.push_str(&marker(
                    Shape::Circle,
                    px(x),
                    py(y),
                    series.color,
                    "data",
                    &series.label,
                ));
                continue;
            }
            let mut path = String::new();
            for (j, &(x, y)) in points.iter().enumerate() {
                let command = if j == 0 { 'M' } else { 'L' };
                let _ = write!(path, "{command}{:.1} {:.1}", px(x), py(y));
            }
            let _ = write!(
                out,
                "<path d=\"{path}\" fill=\"none\" stroke=\"{c}\" stroke-width=\"1.8\"{dash} class=\"data\"><title>{l}</title></path>",
                c = series.color,
                dash = if series.dashed { " stroke-dasharray=\"5 3\"" } else { "" },
                l = escape(&series.label),
            );
        }
        for mark in &panel.marks {
            let (x, y) = mark.at;
            if chart.x_scale.admits(x) && y_scale(panel.y).admits(y) {
                out.push_str(&marker(
                    Shape::Triangle,
                    px(x),
                    py(y),
                    mark.color,
                    "data peak",
                    &mark.tip,
                ));
            }
        }
        cursor = bottom + 12.0;
        if i + 1 == chart.panels.len() {
            cursor = x_axis(
                &mut out,
                &x_axis_spec,
                (left, width),
                (top, bottom),
                chart.x_label,
            );
        }
    }
    finish(chart.title, &out, cursor, &chart.legend)
}

/// One set of bars: one bar per category (none where the value is `None`), each with an
/// optional bound tick.
pub struct BarSeries {
    pub label: String,
    pub color: &'static str,
    pub values: Vec<Option<f64>>,
    pub bounds: Vec<Option<f64>>,
}

/// Horizontal bars: one row per category (its name on the left), one bar per series in each
/// row, the values in a column on the right.
pub struct BarChart<'a> {
    pub title: &'a str,
    pub x_label: &'a str,
    pub categories: Vec<String>,
    pub series: Vec<BarSeries>,
    /// Formats the values (and tooltips).
    pub format: &'a dyn Fn(f64) -> String,
    /// Formats the axis ticks.
    pub ticks: &'a dyn Fn(f64) -> String,
    /// Pins the axis top (1 for ratios).
    pub max: Option<f64>,
    /// Legend entry for the bound ticks, shown when any bar has one.
    pub bound_label: &'a str,
}

/// Widest name in a left column, capped so the plot keeps most of the width.
fn label_column(names: impl Iterator<Item = String>) -> f64 {
    names
        .map(|n| text_width(&n, LABEL_PX))
        .fold(24.0, f64::max)
        .min(WIDTH * 0.3)
}

/// Renders horizontal bars from zero; negative and non-finite values draw as no bar.
pub fn bar_chart(chart: &BarChart<'_>) -> String {
    const BAR: f64 = 14.0;
    const GAP: f64 = 2.0;
    const ROW_GAP: f64 = 10.0;
    let clean = |v: Option<f64>| v.filter(|v| v.is_finite()).map(|v| v.max(0.0));
    if chart.categories.is_empty() || chart.series.is_empty() {
        return no_data(chart.title);
    }
    let values = || {
        chart
            .series
            .iter()
            .flat_map(|s| s.values.iter().copied().map(clean))
            .flatten()
    };
    let bounds = || {
        chart
            .series
            .iter()
            .flat_map(|s| s.bounds.iter().copied().map(clean))
            .flatten()
    };
    let room = label_column(chart.categories.iter().cloned());
    let left = room + 20.0;
    let value_col = values()
        .map(|v| text_width(&(chart.format)(v), TICK_PX))
        .fold(0.0, f64::max)
        + 16.0;
    let width = WIDTH - left - value_col - MARGIN;
    let max = values().chain(bounds()).fold(0.0, f64::max);
    let x = axis::linear(max, chart.max, width, true, chart.ticks);
    let px = |v: f64| left + x.frac(v) * width;

    let n = chart.series.len() as f64;
    let group = n * BAR + (n - 1.0) * GAP;
    let top = TOP + 6.0;
    let bottom = top + chart.categories.len() as f64 * (group + ROW_GAP);
    let mut out = String::new();
    let axis_end = x_axis(&mut out, &x, (left, width), (top, bottom), chart.x_label);
    let mut any_bound = false;
    for (c, category) in chart.categories.iter().enumerate() {
        let row_top = top + ROW_GAP / 2.0 + c as f64 * (group + ROW_GAP);
        row_label(
            &mut out,
            category,
            left - 8.0,
            row_top + group / 2.0 + 4.0,
            room,
        );
        for (s, series) in chart.series.iter().enumerate() {
            let y = row_top + s as f64 * (BAR + GAP);
            let Some(v) = clean(series.values.get(c).copied().flatten()) else {
                continue;
            };
            let shown = (chart.format)(v);
            let tip = format!("{} · {category}: {shown}", series.label);
            let _ = write!(
                out,
                "<rect x=\"{left:.1}\" y=\"{y:.1}\" width=\"{w:.1}\" height=\"{BAR}\" fill=\"{color}\" class=\"data\">\
                 <title>{tip}</title></rect>\
                 <text x=\"{vx:.1}\" y=\"{vy:.1}\" text-anchor=\"end\" class=\"tick\">{shown}</text>",
                w = px(v) - left,
                color = series.color,
                tip = escape(&tip),
                vx = WIDTH - MARGIN,
                vy = y + BAR / 2.0 + 4.0,
                shown = escape(&shown),
            );
            if let Some(b) = clean(series.bounds.get(c).copied().flatten()) {
                any_bound = true;
                let tip = format!(
                    "{} · {category}: {} {}",
                    series.label,
                    chart.bound_label,
                    (chart.format)(b)
                );
                let _ = write!(
                    out,
                    "<line x1=\"{bx:.1}\" y1=\"{y1:.1}\" x2=\"{bx:.1}\" y2=\"{y2:.1}\" stroke=\"{BOUND_COLOR}\" \
                     stroke-width=\"2.5\" class=\"data bound\"><title>{tip}</title></line>",
                    bx = px(b),
                    y1 = y - 2.0,
                    y2 = y + BAR + 2.0,
                    tip = escape(&tip),
                );
            }
        }
    }
    let mut legend: Vec<LegendEntry> = chart
        .series
        .iter()
        .map(|s| LegendEntry::new(s.label.clone(), s.color, Swatch::Bar))
        .collect();
    if any_bound {
        legend.push(LegendEntry::new(
            chart.bound_label,
            BOUND_COLOR,
            Swatch::Tick,
        ));
    }
    finish(chart.title, &out, axis_end, &legend)
}

/// Rows of markers on a shared log axis, e.g. latency percentiles per region: each row a thin
/// line from its smallest to its largest value with one marker per value.
pub struct RangeChart<'a> {
    pub title: &'a str,
    pub x_label: &'a str,
    /// (row name, one value per mark).
    pub rows: Vec<(String, Vec<f64>)>,
    /// (label, colour, shape) of each mark, in the rows' value order.
    pub marks: Vec<(&'a str, &'static str, Shape)>,
}

pub fn range_chart(chart: &RangeChart<'_>) -> String {
    const ROW: f64 = 24.0;
    let positive = || {
        chart
            .rows
            .iter()
            .flat_map(|(_, v)| v.iter().copied())
            .filter(|v| Scale::Log.admits(*v))
    };
    if positive().next().is_none() {
        return no_data(chart.title);
    }
    let room = label_column(chart.rows.iter().map(|(n, _)| n.clone()));
    let left = room + 20.0;
    let width = WIDTH - left - MARGIN - 16.0;
    let min = positive().fold(f64::INFINITY, f64::min);
    let max = positive().fold(0.0, f64::max);
    let x = axis::log(min, max, width, true, &axis::short_number);
    let px = |v: f64| left + x.frac(v) * width;
    let top = TOP + 6.0;
    let bottom = top + chart.rows.len() as f64 * ROW;
    let mut out = String::new();
    let axis_end = x_axis(&mut out, &x, (left, width), (top, bottom), chart.x_label);
    for (r, (name, values)) in chart.rows.iter().enumerate() {
        let y = top + (r as f64 + 0.5) * ROW;
        row_label(&mut out, name, left - 8.0, y + 4.0, room);
        let placed: Vec<f64> = values
            .iter()
            .copied()
            .filter(|v| Scale::Log.admits(*v))
            .collect();
        if let (Some(lo), Some(hi)) = (
            placed.iter().copied().reduce(f64::min),
            placed.iter().copied().reduce(f64::max),
        ) {
            let _ = write!(
                out,
                "<line x1=\"{a:.1}\" y1=\"{y:.1}\" x2=\"{b:.1}\" y2=\"{y:.1}\" class=\"range\"/>",
                a = px(lo),
                b = px(hi).max(px(lo) + 1.0),
            );
        }
        let marks: Vec<(f64, f64, &(&str, &'static str, Shape))> = values
            .iter()
            .zip(&chart.marks)
            .filter(|(value, _)| Scale::Log.admits(**value))
            .map(|(value, mark)| (*value, px(*value), mark))
            .collect();
        let lifts = dodge(&marks.iter().map(|m| m.1).collect::<Vec<_>>());
        for ((value, x, (label, color, shape)), lift) in marks.iter().zip(lifts) {
            let tip = format!("{name} {label}: {}", axis::short_number(*value));
            out.push_str(&marker(*shape, *x, y + lift, color, "data", &tip));
        }
    }
    let legend: Vec<LegendEntry> = chart
        .marks
        .iter()
        .map(|(label, color, shape)| LegendEntry::new(*label, color, Swatch::Marker(*shape)))
        .collect();
    finish(chart.title, &out, axis_end, &legend)
}

/// Vertical offsets that keep marks at (nearly) the same x apart: marks closer than a
/// marker's width form a group, spread evenly about the row's line, so a region whose
/// percentiles coincide still shows every marker.
fn dodge(xs: &[f64]) -> Vec<f64> {
    const APART: f64 = 8.0;
    const STEP: f64 = 5.0;
    let mut order: Vec<usize> = (0..xs.len()).collect();
    order.sort_by(|a, b| xs[*a].total_cmp(&xs[*b]));
    let mut lifts = vec![0.0; xs.len()];
    let mut start = 0;
    while start < order.len() {
        let mut end = start + 1;
        while end < order.len() && xs[order[end]] - xs[order[end - 1]] < APART {
            end += 1;
        }
        let n = end - start;
        for (k, &i) in order[start..end].iter().enumerate() {
            lifts[i] = (k as f64 - (n as f64 - 1.0) / 2.0) * STEP;
        }
        start = end;
    }
    lifts
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn coinciding_marks_are_spread_and_apart_ones_stay_on_the_line() {
        assert_eq!(dodge(&[10.0, 100.0, 200.0]), [0.0, 0.0, 0.0]);
        let lifts = dodge(&[10.0, 52.0, 52.0, 52.0, 52.0]);
        assert_eq!(lifts[0], 0.0);
        assert_eq!(&lifts[1..], &[-7.5, -2.5, 2.5, 7.5]);
    }

    /// (x, y, estimated width) of every `<text>` in a chart, from its markup.
    fn texts(svg: &str) -> Vec<(f64, f64, f64, String)> {
        let attr = |tag: &str, name: &str| -> f64 {
            let tag = format!(" {tag}");
            let start = tag.find(&format!(" {name}=\"")).unwrap() + name.len() + 3;
            tag[start..].split('"').next().unwrap().parse().unwrap()
        };
        svg.split("<text ")
            .skip(1)
            .map(|rest| {
                let (tag, content) = rest.split_once('>').unwrap();
                let content = content.split("</text>").next().unwrap().to_string();
                let class_px = if tag.contains("class=\"label\"") || tag.contains("class=\"axis\"")
                {
                    LABEL_PX
                } else if tag.contains("class=\"title\"") {
                    TITLE_PX
                } else {
                    TICK_PX
                };
                let w = text_width(&content, class_px);
                let x = attr(tag, "x");
                let left = if tag.contains("text-anchor=\"end\"") {
                    x - w
                } else if tag.contains("text-anchor=\"middle\"") {
                    x - w / 2.0
                } else {
                    x
                };
                (left, attr(tag, "y"), w, content)
            })
            .collect()
    }

    /// No two labels' estimated boxes (one line high) intersect, and all are inside the width.
    fn assert_apart(svg: &str) {
        let all = texts(svg);
        for (i, a) in all.iter().enumerate() {
            assert!(
                a.0 >= 0.0 && a.0 + a.2 <= WIDTH + 0.5,
                "{a:?} outside\n{svg}"
            );
            for b in &all[i + 1..] {
                let apart_x = a.0 + a.2 <= b.0 || b.0 + b.2 <= a.0;
                let apart_y = (a.1 - b.1).abs() >= TICK_PX * 1.15;
                assert!(apart_x || apart_y, "{a:?} overlaps {b:?}");
            }
        }
    }

    fn long_names(n: usize) -> Vec<String> {
        (0..n)
            .map(|i| format!("regional-us-east-{i}-MMMMWWWW-long-name"))
            .collect()
    }

    #[test]
    fn escape_covers_markup_and_quotes() {
        assert_eq!(
            escape("<a href='x'>&\"</a>"),
            "&lt;a href=&#39;x&#39;&gt;&amp;&quot;&lt;/a&gt;"
        );
    }

    #[test]
    fn twenty_long_names_get_a_row_each_and_never_overlap() {
        let categories = long_names(20);
        let series = (0..3)
            .map(|s| BarSeries {
                label: format!("report {s} with a long legend label"),
                color: PALETTE[s],
                values: (0..20).map(|i| Some(i as f64 / 20.0)).collect(),
                bounds: (0..20).map(|i| Some((i as f64 / 19.0).min(1.0))).collect(),
            })
            .collect();
        let svg = bar_chart(&BarChart {
            title: "Hit ratio by tier",
            x_label: "hit ratio",
            categories,
            series,
            format: &|v| format!("{:.1}%", v * 100.0),
            ticks: &percent_tick,
            max: Some(1.0),
            bound_label: "bound: infinite cache",
        });
        assert_apart(&svg);
        assert_eq!(svg.matches("class=\"label\"").count(), 20);
        assert_eq!(svg.matches("class=\"data bound\"").count(), 60);
        assert!(svg.contains("bound: infinite cache"));
        assert!(svg.contains('…'), "long names are shortened");
    }

    #[test]
    fn a_cdf_on_log_and_nines_axes_keeps_its_labels_apart() {
        let series = long_names(12)
            .into_iter()
            .enumerate()
            .map(|(i, label)| Series {
                label,
                points: (1..=100)
                    .map(|q| (0.5 * 1.1f64.powi(q + i as i32), f64::from(q) / 100.0))
                    .chain([(5000.0, 0.999)])
                    .collect(),
                color: PALETTE[i % 8],
                dashed: false,
            })
            .collect::<Vec<_>>();
        let legend = series
            .iter()
            .map(|s| LegendEntry::new(s.label.clone(), s.color, Swatch::Line))
            .collect();
        let svg = line_chart(&LineChart {
            title: "Latency CDF",
            x_label: "latency (ms, log scale)",
            x_scale: Scale::Log,
            panels: vec![Panel {
                y_label: "fraction of requests at or below".into(),
                y: YAxis::Nines(3),
                height: 260.0,
                series,
                marks: Vec::new(),
            }],
            shade: None,
            legend,
        });
        assert_apart(&svg);
        for tick in [
            ">0.999<", ">0.99<", ">0.9<", ">1<", ">10<", ">100<", ">1000<",
        ] {
            assert!(svg.contains(tick), "{tick}");
        }
        // The q = 1 point has no place on a nines axis and is dropped, not drawn at infinity.
        assert!(!svg.contains("NaN") && !svg.contains("inf"));
    }

    #[test]
    fn stacked_panels_share_one_x_axis() {
        let points: Vec<(f64, f64)> = (0..300).map(|t| (f64::from(t), 1000.0)).collect();
        let panel = |label: &str, y| Panel {
            y_label: label.into(),
            y,
            height: 120.0,
            series: vec![Series {
                label: "run".into(),
                points: points.clone(),
                color: PALETTE[0],
                dashed: false,
            }],
            marks: Vec::new(),
        };
        let svg = line_chart(&LineChart {
            title: "Offload over time",
            x_label: "time (s)",
            x_scale: Scale::Linear,
            panels: vec![
                panel("offload", YAxis::Ratio),
                panel("client requests/s", YAxis::Linear),
            ],
            shade: Some((0.0, 60.0)),
            legend: vec![LegendEntry::new("warm-up", "#ccc", Swatch::Shade)],
        });
        assert_apart(&svg);
        assert_eq!(svg.matches(">time (s)<").count(), 1);
        assert_eq!(svg.matches("<path d=\"M").count(), 2, "one line per panel");
        assert_eq!(
            svg.matches("class=\"shade\"").count(),
            3,
            "two panels and the legend"
        );
    }

    #[test]
    fn a_lone_point_is_drawn_as_a_dot() {
        let svg = line_chart(&LineChart {
            title: "t",
            x_label: "x",
            x_scale: Scale::Linear,
            panels: vec![Panel {
                y_label: "y".into(),
                y: YAxis::Ratio,
                height: 100.0,
                series: vec![Series {
                    label: "short run".into(),
                    points: vec![(0.5, 0.4)],
                    color: PALETTE[0],
                    dashed: false,
                }],
                marks: Vec::new(),
            }],
            shade: None,
            legend: vec![],
        });
        assert!(
            svg.contains("<circle") && svg.contains("class=\"data\""),
            "{svg}"
        );
    }

    #[test]
    fn charts_never_emit_non_finite_coordinates() {
        let svg = line_chart(&LineChart {
            title: "t",
            x_label: "x",
            x_scale: Scale::Log,
            panels: vec![Panel {
                y_label: "y".into(),
                y: YAxis::Linear,
                height: 200.0,
                series: vec![Series {
                    label: "s".into(),
                    points: vec![
                        (0.0, 1.0),
                        (f64::NAN, 2.0),
                        (10.0, f64::INFINITY),
                        (100.0, 0.5),
                        (1000.0, 1.0),
                    ],
                    color: PALETTE[0],
                    dashed: false,
                }],
                marks: Vec::new(),
            }],
            shade: Some((f64::NAN, 3.0)),
            legend: vec![],
        });
        assert!(!svg.contains("NaN") && !svg.contains("inf"), "{svg}");
        let bars = bar_chart(&BarChart {
            title: "b",
            x_label: "y",
            categories: vec!["a".into(), "b".into()],
            series: vec![BarSeries {
                label: "s".into(),
                color: PALETTE[0],
                values: vec![Some(f64::NAN)],
                bounds: vec![Some(f64::INFINITY), Some(-1.0)],
            }],
            format: &axis::short_number,
            ticks: &axis::short_number,
            max: None,
            bound_label: "bound",
        });
        assert!(!bars.contains("NaN") && !bars.contains("inf"), "{bars}");
        let ranges = range_chart(&RangeChart {
            title: "p",
            x_label: "ms",
            rows: vec![("all".into(), vec![0.0, f64::NAN, 3.0, 30.0])],
            marks: vec![("p50", PALETTE[0], Shape::Circle); 4],
        });
        assert!(!ranges.contains("NaN") && ranges.contains("class=\"data\""));
        assert!(range_chart(&RangeChart {
            title: "p",
            x_label: "ms",
            rows: vec![],
            marks: vec![],
        })
        .contains("no data"));
    }
}
