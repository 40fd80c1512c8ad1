//! The fixed conventions of a replay's numbers: where virtual time starts and how figures are
//! rounded, shared by the engine and the stream bound (a leaf: it imports nothing of the crate).

use std::time::Duration;

/// Virtual time starts here, so Date headers and token lifetimes are the same every run.
pub const VIRTUAL_EPOCH: Duration = Duration::from_secs(1_767_225_600); // 2026-01-01T00:00:00Z

/// Six significant digits: enough for every figure, and stable text in the JSON.
pub(crate) fn round(x: f64) -> f64 {
    if x == 0.0 || !x.is_finite() {
        return 0.0;
    }
    let scale = 10f64.powi(5 - x.abs().log10().floor() as i32);
    (x * scale).round() / scale
}
