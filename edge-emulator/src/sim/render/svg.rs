//! Inline SVG charts (lines and grouped bars) drawn as strings, so the HTML report needs no
//! script, font or network.
//!
//! Every label passes through [`escape`]; every coordinate is finite (non-finite data points are
//! dropped) so a chart is well-formed whatever the report holds.

use std::fmt::Write;

/// Drawing size in SVG user units; the page scales it to the column width.
const WIDTH: f64 = 720.0;
const HEIGHT: f64 = 300.0;
const LEFT: f64 = 64.0;
const RIGHT: f64 = 64.0;
const TOP: f64 = 48.0;
const BOTTOM: f64 = 56.0;

/// Distinguishable on white and for the common colour-vision deficiencies (Okabe–Ito).
pub const PALETTE: [&str; 8] = [
    "#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#000000", "#F0E442",
];

/// Escapes text for HTML and SVG content and attribute values.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// One line of a line chart.
pub struct Series {
    pub label: String,
    pub points: Vec<(f64, f64)>,
    pub color: &'static str,
    pub dashed: bool,
    /// Plotted against the right-hand axis (its own scale), e.g. client load beside origin load.
    pub right_axis: bool,
}

/// How the x axis maps values.
#[derive(Clone, Copy, PartialEq)]
pub enum XScale {
    Linear,
    /// Base 10; values ≤ 0 are clamped to the smallest positive one.
    Log,
}

pub struct LineChart<'a> {
    pub title: &'a str,
    pub x_label: &'a str,
    pub y_label: &'a str,
    /// Right axis label; only drawn when some series uses the right axis.
    pub right_label: &'a str,
    pub x_scale: XScale,
    pub series: Vec<Series>,
}

/// Grouped bars: one group per category, one bar per series in each.
pub struct BarChart<'a> {
    pub title: &'a str,
    pub y_label: &'a str,
    pub categories: Vec<String>,
    /// (label, one value per category).
    pub series: Vec<(String, Vec<f64>)>,
    /// Formats tick labels and bar tooltips.
    pub format: fn(f64) -> String,
}

/// Ticks at 1, 2 or 5 × 10ⁿ covering 0..=max, and the axis top they imply.
fn linear_ticks(max: f64) -> (Vec<f64>, f64) {
    let max = if max.is_finite() && max > 0.0 {
        max
    } else {
        1.0
    };
    let rough = max / 5.0;
    let magnitude = 10f64.powf(rough.log10().floor());
    let step = [1.0, 2.0, 5.0, 10.0]
        .iter()
        .map(|m| m * magnitude)
        .find(|s| *s >= rough)
        .unwrap_or(10.0 * magnitude);
    let count = (max / step).ceil().clamp(1.0, 20.0) as usize;
    let ticks: Vec<f64> = (0..=count).map(|i| i as f64 * step).collect();
    (ticks, count as f64 * step)
}

/// A number short enough for an axis label.
pub fn short_number(value: f64) -> String {
    let magnitude = value.abs();
    if magnitude >= 1e6 {
        format!("{:.1}M", value / 1e6)
    } else if magnitude >= 1e4 {
        format!("{:.0}k", value / 1e3)
    } else if magnitude >= 100.0 || value == value.trunc() {
        format!("{value:.0}")
    } else if magnitude >= 1.0 {
        format!("{value:.1}")
    } else {
        format!("{value:.2}")
    }
}

/// Wraps a chart's body in its `<svg>` with the title on top and the legend below, the legend
/// wrapping onto as many rows as it needs (the drawing grows taller to fit them).
fn finish(title: &str, body: &str, entries: &[(&str, &str, bool)]) -> String {
    const ROW: f64 = 16.0;
    let mut legend = String::new();
    let (mut x, mut y) = (LEFT, HEIGHT - 12.0);
    for (label, color, dashed) in entries {
        // Approximate text width; the legend only needs to not overlap itself.
        let width = 30.0 + 6.5 * label.chars().count() as f64;
        if x > LEFT && x + width > WIDTH {
            x = LEFT;
            y += ROW;
        }
        let dash = if *dashed {
            " stroke-dasharray=\"5 3\""
        } else {
            ""
        };
        let _ = write!(
            legend,
            "<line x1=\"{x}\" y1=\"{y0}\" x2=\"{x1}\" y2=\"{y0}\" stroke=\"{color}\" stroke-width=\"2\"{dash}/>\
             <text x=\"{tx}\" y=\"{y}\" class=\"legend\">{label}</text>",
            y0 = y - 4.0,
            x1 = x + 18.0,
            tx = x + 22.0,
            label = escape(label),
        );
        x += width + 10.0;
    }
    let height = y + 12.0;
    format!(
        "<svg class=\"chart\" viewBox=\"0 0 {WIDTH} {height}\" role=\"img\" aria-label=\"{t}\">\
         <text x=\"{LEFT}\" y=\"18\" class=\"title\">{t}</text>{body}{legend}</svg>",
        t = escape(title)
    )
}

fn no_data(title: &str) -> String {
    let body = format!(
        "<text x=\"{x}\" y=\"{y}\" class=\"empty\" text-anchor=\"middle\">no data</text>",
        x = WIDTH / 2.0,
        y = HEIGHT / 2.0
    );
    finish(title, &body, &[])
}

/// Renders a line chart; series without finite points are left out of scales but kept in the
/// legend, and a chart with no points at all says "no data".
pub fn line_chart(chart: &LineChart<'_>) -> String {
    let mut out = String::new();
    let finite = |s: &Series| -> Vec<(f64, f64)> {
        s.points
            .iter()
            .copied()
            .filter(|(x, y)| x.is_finite() && y.is_finite())
            .filter(|(x, _)| chart.x_scale == XScale::Linear || *x > 0.0)
            .collect()
    };
    let cleaned: Vec<Vec<(f64, f64)>> = chart.series.iter().map(finite).collect();
    let all_points = || cleaned.iter().flatten();
    if all_points().next().is_none() {
        return no_data(chart.title);
    }
    let y_max = |right: bool| {
        chart
            .series
            .iter()
            .zip(&cleaned)
            .filter(|(s, _)| s.right_axis == right)
            .flat_map(|(_, p)| p.iter().map(|(_, y)| *y))
            .fold(0.0, f64::max)
    };
    let (left_ticks, left_top) = linear_ticks(y_max(false));
    let has_right = chart.series.iter().any(|s| s.right_axis);
    let (right_ticks, right_top) = linear_ticks(y_max(true));
    let x_min = all_points().map(|(x, _)| *x).fold(f64::INFINITY, f64::min);
    let x_max = all_points()
        .map(|(x, _)| *x)
        .fold(f64::NEG_INFINITY, f64::max);
    // Axis range in axis units: values for a linear axis, log10 of values for a log one.
    let (x_ticks, x_lo, x_hi): (Vec<f64>, f64, f64) = match chart.x_scale {
        XScale::Linear => {
            let (ticks, top) = linear_ticks(x_max);
            (ticks, 0.0, top)
        }
        XScale::Log => {
            let hi = x_max.log10().ceil();
            // Twelve decades are plenty for latency; points below are pinned to the left edge.
            let lo = x_min.log10().floor().clamp(hi - 12.0, hi - 1.0);
            let ticks = (lo as i32..=hi as i32).map(|e| 10f64.powi(e)).collect();
            (ticks, lo, hi)
        }
    };
    let plot_w = WIDTH - LEFT - RIGHT;
    let plot_h = HEIGHT - TOP - BOTTOM;
    let px = |x: f64| {
        let unit = match chart.x_scale {
            XScale::Linear => x,
            XScale::Log => x.log10(),
        };
        LEFT + ((unit - x_lo) / (x_hi - x_lo)).clamp(0.0, 1.0) * plot_w
    };
    let py = |y: f64, top: f64| TOP + plot_h - (y / top).clamp(0.0, 1.0) * plot_h;

    for &t in &left_ticks {
        let y = py(t, left_top);
        let _ = write!(
            out,
            "<line x1=\"{LEFT}\" y1=\"{y:.1}\" x2=\"{x2}\" y2=\"{y:.1}\" class=\"grid\"/>\
             <text x=\"{lx}\" y=\"{ty:.1}\" text-anchor=\"end\" class=\"tick\">{label}</text>",
            x2 = WIDTH - RIGHT,
            lx = LEFT - 6.0,
            ty = y + 4.0,
            label = short_number(t),
        );
    }
    if has_right {
        for &t in &right_ticks {
            let _ = write!(
                out,
                "<text x=\"{x}\" y=\"{y:.1}\" class=\"tick\">{label}</text>",
                x = WIDTH - RIGHT + 6.0,
                y = py(t, right_top) + 4.0,
                label = short_number(t),
            );
        }
        let _ = write!(
            out,
            "<text x=\"{x}\" y=\"{y}\" class=\"axis\" text-anchor=\"end\">{label}</text>",
            x = WIDTH - 4.0,
            y = TOP - 8.0,
            label = escape(chart.right_label),
        );
    }
    for &t in &x_ticks {
        let x = px(t);
        let _ = write!(
            out,
            "<text x=\"{x:.1}\" y=\"{y}\" text-anchor=\"middle\" class=\"tick\">{label}</text>",
            y = TOP + plot_h + 16.0,
            label = short_number(t),
        );
    }
    let _ = write!(
        out,
        "<text x=\"{LEFT}\" y=\"{y}\" class=\"axis\">{y_label}</text>\
         <text x=\"{x}\" y=\"{xy}\" class=\"axis\" text-anchor=\"middle\">{x_label}</text>",
        y = TOP - 8.0,
        y_label = escape(chart.y_label),
        x = LEFT + plot_w / 2.0,
        xy = TOP + plot_h + 32.0,
        x_label = escape(chart.x_label),
    );
    for (series, points) in chart.series.iter().zip(&cleaned) {
        if points.is_empty() {
            continue;
        }
        let top = if series.right_axis {
            right_top
        } else {
            left_top
        };
        let mut path = String::new();
        for (i, &(x, y)) in points.iter().enumerate() {
            let command = if i == 0 { 'M' } else { 'L' };
            let _ = write!(path, "{command}{:.1} {:.1}", px(x), py(y, top));
        }
        let dash = if series.dashed {
            " stroke-dasharray=\"5 3\""
        } else {
            ""
        };
        let _ = write!(
            out,
            "<path d=\"{path}\" fill=\"none\" stroke=\"{c}\" stroke-width=\"1.8\"{dash}><title>{l}</title></path>",
            c = series.color,
            l = escape(&series.label),
        );
    }
    let entries: Vec<(&str, &str, bool)> = chart
        .series
        .iter()
        .map(|s| (s.label.as_str(), s.color, s.dashed))
        .collect();
    finish(chart.title, &out, &entries)
}

/// Renders grouped bars from zero; negative and non-finite values draw as empty bars.
pub fn bar_chart(chart: &BarChart<'_>) -> String {
    let mut out = String::new();
    let value = |v: f64| if v.is_finite() && v > 0.0 { v } else { 0.0 };
    if chart.categories.is_empty() || chart.series.is_empty() {
        return no_data(chart.title);
    }
    let max = chart
        .series
        .iter()
        .flat_map(|(_, values)| values.iter().copied().map(value))
        .fold(0.0, f64::max);
    let (ticks, top) = linear_ticks(max);
    let plot_w = WIDTH - LEFT - RIGHT;
    let plot_h = HEIGHT - TOP - BOTTOM;
    let py = |y: f64| TOP + plot_h - (y / top).clamp(0.0, 1.0) * plot_h;
    for &t in &ticks {
        let _ = write!(
            out,
            "<line x1=\"{LEFT}\" y1=\"{y:.1}\" x2=\"{x2}\" y2=\"{y:.1}\" class=\"grid\"/>\
             <text x=\"{lx}\" y=\"{ty:.1}\" text-anchor=\"end\" class=\"tick\">{label}</text>",
            y = py(t),
            x2 = WIDTH - RIGHT,
            lx = LEFT - 6.0,
            ty = py(t) + 4.0,
            label = escape(&(chart.format)(t)),
        );
    }
    let _ = write!(
        out,
        "<text x=\"{LEFT}\" y=\"{y}\" class=\"axis\">{label}</text>",
        y = TOP - 8.0,
        label = escape(chart.y_label)
    );
    let group_w = plot_w / chart.categories.len() as f64;
    let bar_w = group_w * 0.8 / chart.series.len() as f64;
    for (c, category) in chart.categories.iter().enumerate() {
        let group_x = LEFT + c as f64 * group_w + group_w * 0.1;
        for (s, (label, values)) in chart.series.iter().enumerate() {
            let v = value(values.get(c).copied().unwrap_or(0.0));
            let y = py(v);
            let _ = write!(
                out,
                "<rect x=\"{x:.1}\" y=\"{y:.1}\" width=\"{w:.1}\" height=\"{h:.1}\" fill=\"{color}\">\
                 <title>{label} · {category}: {shown}</title></rect>",
                x = group_x + s as f64 * bar_w,
                w = (bar_w - 1.0).max(0.5),
                h = TOP + plot_h - y,
                color = PALETTE[s % PALETTE.len()],
                label = escape(label),
                category = escape(category),
                shown = escape(&(chart.format)(v)),
            );
        }
        let _ = write!(
            out,
            "<text x=\"{x:.1}\" y=\"{y}\" text-anchor=\"middle\" class=\"tick\">{label}</text>",
            x = group_x + group_w * 0.4,
            y = TOP + plot_h + 16.0,
            label = escape(category),
        );
    }
    let entries: Vec<(&str, &str, bool)> = chart
        .series
        .iter()
        .enumerate()
        .map(|(i, (label, _))| (label.as_str(), PALETTE[i % PALETTE.len()], false))
        .collect();
    finish(chart.title, &out, &entries)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escape_covers_markup_and_quotes() {
        assert_eq!(
            escape("<a href='x'>&\"</a>"),
            "&lt;a href=&#39;x&#39;&gt;&amp;&quot;&lt;/a&gt;"
        );
    }

    #[test]
    fn ticks_cover_the_maximum_with_round_steps() {
        assert_eq!(
            linear_ticks(9.0),
            (vec![0.0, 2.0, 4.0, 6.0, 8.0, 10.0], 10.0)
        );
        assert_eq!(linear_ticks(1.0).1, 1.0);
        for max in [0.0, -3.0, f64::NAN, f64::INFINITY, 1e-300, 1e300, 123_456.0] {
            let (ticks, top) = linear_ticks(max);
            assert!(
                !ticks.is_empty() && ticks.len() <= 21 && top.is_finite() && top > 0.0,
                "{max}"
            );
        }
    }

    #[test]
    fn charts_never_emit_non_finite_coordinates() {
        let chart = LineChart {
            title: "t",
            x_label: "x",
            y_label: "y",
            right_label: "r",
            x_scale: XScale::Log,
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
                right_axis: false,
            }],
        };
        let svg = line_chart(&chart);
        assert!(!svg.contains("NaN") && !svg.contains("inf"), "{svg}");
        let bars = bar_chart(&BarChart {
            title: "b",
            y_label: "y",
            categories: vec!["a".into(), "b".into()],
            series: vec![("s".into(), vec![f64::NAN])],
            format: short_number,
        });
        assert!(!bars.contains("NaN") && !bars.contains("inf"), "{bars}");
    }
}
