//! Axis scales, their ticks, and text-width estimates so labels can be laid out without a
//! browser: tick sets are thinned until neighbouring labels cannot touch, and long names are
//! shortened to the room they have.

/// Font sizes (SVG user units) of the chart's text classes; the page's CSS uses the same.
pub const TICK_PX: f64 = 11.0;
pub const LABEL_PX: f64 = 12.0;
pub const TITLE_PX: f64 = 14.0;

/// Free space kept between two neighbouring labels.
const LABEL_GAP: f64 = 8.0;

/// An upper bound on the width of `text` at `px`, for the common sans-serif fonts (DejaVu Sans,
/// the widest of them, Liberation/Arial, Helvetica, system-ui): per-character widths in ems,
/// rounded up.
pub fn text_width(text: &str, px: f64) -> f64 {
    text.chars().map(em).sum::<f64>() * px
}

fn em(c: char) -> f64 {
    match c {
        'i' | 'j' | 'l' | '.' | ',' | ':' | ';' | '\'' | '|' | '!' | 'I' => 0.34,
        ' ' | 'f' | 't' | 'r' | '(' | ')' | '[' | ']' | '-' | '/' => 0.46,
        'm' | 'w' | 'M' | 'W' | '%' | '@' | '…' | '—' => 1.02,
        'A'..='Z' => 0.82,
        c if c.is_ascii() => 0.68,
        // Other scripts (CJK is a full em) and symbols.
        _ => 1.05,
    }
}

/// `text` if it fits in `room` at `px`, else its longest prefix that does followed by "…".
pub fn fit(text: &str, room: f64, px: f64) -> String {
    if text_width(text, px) <= room {
        return text.to_string();
    }
    let mut out = String::new();
    let mut width = em('…') * px;
    for c in text.chars() {
        width += em(c) * px;
        if width > room {
            break;
        }
        out.push(c);
    }
    out.push('…');
    out
}

/// How values map onto an axis.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Scale {
    Linear,
    /// Base 10; values ≤ 0 have no place on it and are dropped by the charts.
    Log,
    /// Fractions on a "nines" scale: linear from 0 to 0.9 over [`NINES_BODY`] units, where
    /// most requests fall, then −log10(1 − q), so 0.9, 0.99 and 0.999 are equally spaced and
    /// the tail of a CDF gets room too.
    Nines,
}

impl Scale {
    /// The value in axis units (linear for `Linear`).
    pub fn unit(self, value: f64) -> f64 {
        match self {
            Scale::Linear => value,
            Scale::Log => value.max(f64::MIN_POSITIVE).log10(),
            Scale::Nines => {
                let q = value.clamp(0.0, 1.0);
                if q <= 0.9 {
                    q / 0.9 * NINES_BODY
                } else {
                    NINES_BODY + (-(1.0 - q).max(1e-12).log10() - 1.0)
                }
            }
        }
    }

    /// Whether a value can be placed on the axis at all.
    pub fn admits(self, value: f64) -> bool {
        value.is_finite()
            && match self {
                Scale::Linear => true,
                Scale::Log => value > 0.0,
                Scale::Nines => (0.0..1.0).contains(&value),
            }
    }
}

/// One axis: its scale, range (in axis units) and labelled ticks.
#[derive(Clone, Debug)]
pub struct Axis {
    pub scale: Scale,
    lo: f64,
    hi: f64,
    pub ticks: Vec<(f64, String)>,
}

impl Axis {
    /// Where `value` falls, 0 at the low end and 1 at the high end (clamped).
    pub fn frac(&self, value: f64) -> f64 {
        let f = (self.scale.unit(value) - self.lo) / (self.hi - self.lo);
        if f.is_finite() {
            f.clamp(0.0, 1.0)
        } else {
            0.0
        }
    }

    /// The largest value on the axis (for a linear axis, its top).
    #[cfg(test)]
    pub fn top(&self) -> f64 {
        match self.scale {
            Scale::Linear => self.hi,
            Scale::Log => 10f64.powf(self.hi),
            Scale::Nines if self.hi <= NINES_BODY => self.hi / NINES_BODY * 0.9,
            Scale::Nines => 1.0 - 10f64.powf(-(self.hi - NINES_BODY + 1.0)),
        }
    }

    /// Widest tick label at `px`.
    pub fn label_width(&self, px: f64) -> f64 {
        self.ticks
            .iter()
            .map(|(_, l)| text_width(l, px))
            .fold(0.0, f64::max)
    }
}

/// Whether labels at these positions (px along the axis) stay apart: horizontally, each
/// label's estimated width centred on its tick; vertically, one line height.
fn labels_fit(ticks: &[(f64, String)], position: impl Fn(f64) -> f64, horizontal: bool) -> bool {
    ticks.windows(2).all(|pair| {
        let distance = (position(pair[1].0) - position(pair[0].0)).abs();
        let needed = if horizontal {
            (text_width(&pair[0].1, TICK_PX) + text_width(&pair[1].1, TICK_PX)) / 2.0 + LABEL_GAP
        } else {
            TICK_PX * 1.3 + 4.0
        };
        distance >= needed
    })
}

/// A linear axis from 0 covering `max`, ticks at 1, 2 or 5 × 10ⁿ: the finest step whose
/// labels stay apart over `length` px (`horizontal`: labels side by side; else stacked).
/// `fixed_top` pins the axis top (e.g. 1 for ratios) instead of rounding `max` up.
pub fn linear(
    max: f64,
    fixed_top: Option<f64>,
    length: f64,
    horizontal: bool,
    format: &dyn Fn(f64) -> String,
) -> Axis {
    let max = match fixed_top {
        Some(top) if top.is_finite() && top > 0.0 => top,
        _ if max.is_finite() && max > 0.0 => max,
        _ => 1.0,
    };
    let magnitude = 10f64.powf((max / 20.0).log10().floor());
    let mut fallback = None;
    for step in (0..12).flat_map(|e| [1.0, 2.0, 5.0].map(|m| m * magnitude * 10f64.powi(e))) {
        let count = (max / step - 1e-9).ceil().max(1.0);
        if count > if horizontal { 10.0 } else { 8.0 } {
            continue;
        }
        if !(count * step).is_finite() {
            break;
        }
        let top = fixed_top.map_or(count * step, |_| max);
        let ticks: Vec<(f64, String)> = (0..=count as usize)
            .map(|i| i as f64 * step)
            .filter(|v| *v <= top * (1.0 + 1e-9))
            .map(|v| (v, format(v)))
            .collect();
        let axis = Axis {
            scale: Scale::Linear,
            lo: 0.0,
            hi: top,
            ticks,
        };
        if labels_fit(&axis.ticks, |v| axis.frac(v) * length, horizontal) {
            return axis;
        }
        fallback.get_or_insert(axis);
    }
    // Nothing fits (an absurdly short axis): the two ends, or only zero.
    let mut axis = fallback.expect("at least one step");
    axis.ticks = vec![(0.0, format(0.0)), (axis.hi, format(axis.hi))];
    if !labels_fit(&axis.ticks, |v| axis.frac(v) * length, horizontal) {
        axis.ticks.truncate(1);
    }
    axis
}

/// The largest of 1, 2, 5 × 10ⁿ at or below `value` (`up`: the smallest at or above).
fn nice_125(value: f64, up: bool) -> f64 {
    let e = value.log10().floor();
    let candidates = [1.0, 2.0, 5.0, 10.0].map(|m| m * 10f64.powf(e));
    if up {
        candidates
            .into_iter()
            .find(|c| *c >= value * (1.0 - 1e-9))
            .unwrap_or(10.0 * 10f64.powf(e))
    } else {
        candidates
            .into_iter()
            .rev()
            .find(|c| *c <= value * (1.0 + 1e-9))
            .unwrap_or(10f64.powf(e))
    }
}

/// A log axis from `min` to `max` (both > 0), widened by a fifth either side, then to
/// 1, 2, 5 × 10ⁿ and to at least one decade, at most twelve; ticks at 1, 2, 5 × 10ⁿ, thinned (1 and 3, then 1 per decade, then
/// every other decade, …) until the labels stay apart over `length` px.
pub fn log(
    min: f64,
    max: f64,
    length: f64,
    horizontal: bool,
    format: &dyn Fn(f64) -> String,
) -> Axis {
    let (min, max) = if min.is_finite() && max.is_finite() && min > 0.0 && max >= min {
        (min, max)
    } else {
        (1.0, 10.0)
    };
    // A little room either side, so a curve's first and last steps are not on the frame.
    let mut hi = nice_125(max * 1.2, true).log10();
    let mut lo = nice_125(min / 1.2, false).log10().max(hi - 12.0);
    if hi - lo < 1.0 {
        // At least a decade, centred on the data.
        let mid = (hi + lo) / 2.0;
        lo = nice_125(10f64.powf(mid - 0.5), false).log10();
        hi = nice_125(10f64.powf(mid + 0.5), true).log10();
    }
    let sets: [&[f64]; 3] = [&[1.0, 2.0, 5.0], &[1.0, 3.0], &[1.0]];
    let candidates = sets
        .iter()
        .map(|m| (*m, 1))
        .chain((2..=6).map(|every| (&[1.0][..], every)));
    let mut last = Vec::new();
    for (multiples, every) in candidates {
        let ticks: Vec<(f64, String)> = ((lo.floor() as i32)..=(hi.ceil() as i32))
            .filter(|e| e.rem_euclid(every) == 0)
            .flat_map(|e| multiples.iter().map(move |m| m * 10f64.powi(e)))
            .filter(|v| {
                let u = v.log10();
                u >= lo - 1e-9 && u <= hi + 1e-9
            })
            .map(|v| (v, format(v)))
            .collect();
        let axis = Axis {
            scale: Scale::Log,
            lo,
            hi,
            ticks,
        };
        if labels_fit(&axis.ticks, |v| axis.frac(v) * length, horizontal) {
            return axis;
        }
        last = axis.ticks;
    }
    Axis {
        scale: Scale::Log,
        lo,
        hi,
        ticks: last.into_iter().take(1).collect(),
    }
}

/// The units a nines axis gives fractions 0 to 0.9 (each further nine gets one): with three
/// nines, 0–0.5 takes about a quarter of the axis rather than a tenth.
pub const NINES_BODY: f64 = 1.5;

/// A "nines" axis for fractions from 0 up to 1 − 10⁻ⁿ (n = `nines`), ticked at 0, 0.25, 0.5,
/// 0.75, 0.9, 0.99, …
pub fn nines(nines: u32) -> Axis {
    let nines = nines.clamp(1, 6);
    let mut ticks: Vec<(f64, String)> = [0.0, 0.25, 0.5, 0.75]
        .iter()
        .map(|q| (*q, short_number(*q)))
        .collect();
    for n in 1..=nines {
        let q = 1.0 - 10f64.powi(-(n as i32));
        ticks.push((q, format!("{q:.*}", n as usize)));
    }
    Axis {
        scale: Scale::Nines,
        lo: 0.0,
        hi: NINES_BODY + f64::from(nines) - 1.0,
        ticks,
    }
}

/// A number short enough for an axis label: 1, 2.5, 0.05, 120, 15k, 1.2M.
pub fn short_number(value: f64) -> String {
    let magnitude = value.abs();
    let trimmed = |s: String| {
        if s.contains('.') {
            s.trim_end_matches('0').trim_end_matches('.').to_string()
        } else {
            s
        }
    };
    if magnitude >= 1e6 {
        format!("{}M", trimmed(format!("{:.1}", value / 1e6)))
    } else if magnitude >= 1e4 {
        format!("{}k", trimmed(format!("{:.1}", value / 1e3)))
    } else if magnitude >= 100.0 || value == value.trunc() {
        format!("{value:.0}")
    } else if magnitude >= 1.0 {
        trimmed(format!("{value:.1}"))
    } else {
        trimmed(format!("{value:.3}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels(axis: &Axis) -> Vec<&str> {
        axis.ticks.iter().map(|(_, l)| l.as_str()).collect()
    }

    #[test]
    fn log_ticks_are_one_two_five_and_cover_the_data() {
        let axis = log(3.2, 450.0, 600.0, true, &short_number);
        assert_eq!(
            labels(&axis),
            ["2", "5", "10", "20", "50", "100", "200", "500", "1000"]
        );
        assert!(axis.frac(3.2) > 0.0 && axis.frac(450.0) < 1.0);
        assert_eq!(axis.frac(2.0), 0.0);
        assert_eq!(axis.frac(1000.0), 1.0);
        // A minimum on a round value still gets room before it.
        assert!(log(5.003, 150.0, 600.0, true, &short_number).frac(5.003) > 0.05);
        // Sub-millisecond values and a narrow range still get a decade with round ticks.
        let narrow = log(0.4, 0.6, 600.0, true, &short_number);
        assert_eq!(labels(&narrow), ["0.1", "0.2", "0.5", "1", "2"]);
        // Many decades on a short axis are thinned, never overlapping.
        let wide = log(0.01, 1e7, 200.0, true, &short_number);
        assert!(wide.ticks.len() >= 2, "{:?}", wide.ticks);
        assert!(labels_fit(&wide.ticks, |v| wide.frac(v) * 200.0, true));
        for (min, max) in [(0.0, 1.0), (f64::NAN, 2.0), (5.0, 1.0)] {
            let axis = log(min, max, 600.0, true, &short_number);
            assert!(!axis.ticks.is_empty() && axis.frac(2.0).is_finite());
        }
    }

    #[test]
    fn linear_ticks_never_crowd_their_labels() {
        let axis = linear(9.0, None, 600.0, true, &short_number);
        assert_eq!(
            labels(&axis),
            ["0", "1", "2", "3", "4", "5", "6", "7", "8", "9"]
        );
        let axis = linear(9.0, None, 120.0, true, &short_number);
        assert_eq!(labels(&axis), ["0", "2", "4", "6", "8", "10"]);
        let wide = |v: f64| format!("{v:.1} MiB-ish");
        for length in [80.0, 300.0, 900.0] {
            for max in [1.0, 7.3, 123_456.0, 1e12] {
                let axis = linear(max, None, length, true, &wide);
                assert!(
                    labels_fit(&axis.ticks, |v| axis.frac(v) * length, true),
                    "{max} over {length}: {:?}",
                    axis.ticks
                );
                assert!(axis.top() >= max);
            }
        }
        let ratio = linear(0.4, Some(1.0), 600.0, true, &|v| {
            format!("{:.0}%", v * 100.0)
        });
        assert_eq!(ratio.ticks.first().unwrap().1, "0%");
        assert_eq!(ratio.ticks.last().unwrap().1, "100%");
        let vertical = linear(1000.0, None, 60.0, false, &short_number);
        assert!(vertical.ticks.len() <= 4, "{:?}", vertical.ticks);
        for max in [0.0, -3.0, f64::NAN, f64::INFINITY, 1e-300, 1e300] {
            let axis = linear(max, None, 600.0, true, &short_number);
            assert!(
                !axis.ticks.is_empty() && axis.top().is_finite() && axis.top() > 0.0,
                "{max}: {axis:?}"
            );
        }
    }

    #[test]
    fn the_nines_scale_spaces_the_tail_evenly() {
        let axis = nines(3);
        assert_eq!(
            labels(&axis),
            ["0", "0.25", "0.5", "0.75", "0.9", "0.99", "0.999"]
        );
        let (a, b, c) = (axis.frac(0.9), axis.frac(0.99), axis.frac(0.999));
        assert!((b - a - (c - b)).abs() < 1e-9 && (c - 1.0).abs() < 1e-9);
        assert_eq!(axis.frac(1.0), 1.0);
        assert!(!Scale::Nines.admits(1.0) && Scale::Nines.admits(0.0));
        assert!((axis.top() - 0.999).abs() < 1e-12);
    }

    /// Issue 27: where most requests fall (fractions 0 to 0.5) gets a readable share of the
    /// axis, linear within it, and the body is continuous with the tail.
    #[test]
    fn the_body_of_a_cdf_gets_a_quarter_of_the_nines_axis() {
        let axis = nines(3);
        let half = axis.frac(0.5);
        assert!(half > 0.2 && half < 0.3, "0–0.5 takes {half}");
        assert!(
            (axis.frac(0.25) * 2.0 - half).abs() < 1e-9,
            "linear in the body"
        );
        let below = axis.frac(0.9 - 1e-9);
        let above = axis.frac(0.9 + 1e-9);
        assert!((above - below).abs() < 1e-6, "continuous at 0.9");
    }

    #[test]
    fn long_names_are_shortened_to_their_room() {
        let name = "regional-us-east-with-a-very-long-suffix";
        let short = fit(name, 100.0, LABEL_PX);
        assert!(
            short.ends_with('…') && text_width(&short, LABEL_PX) <= 100.0,
            "{short}"
        );
        assert_eq!(fit("edge", 100.0, LABEL_PX), "edge");
        assert!(text_width("WWW", 10.0) > text_width("iii", 10.0));
    }

    #[test]
    fn short_numbers() {
        assert_eq!(short_number(1000.0), "1000");
        assert_eq!(short_number(20_000.0), "20k");
        assert_eq!(short_number(2_500_000.0), "2.5M");
        assert_eq!(short_number(0.05), "0.05");
        assert_eq!(short_number(2.5), "2.5");
    }
}
