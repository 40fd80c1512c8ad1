//! When recoding a coded variant in the background pays: the coder's CPU is spent once, the
//! bytes it saves are saved on every later hit, so it pays for variants that will be used
//! again soon, and only for codings whose best level is much smaller than the miss's.
//!
//! Measured on the default scenario (BENCHMARKS.md, "Background coding where it pays"): with
//! every variant recoded at its first hit, a third of the variants are never used again (their
//! recoding saves nothing) and gzip 9 saves 0.4 % of what brotli's levels save for 7 % of the
//! CPU. Recoding brotli variants once they are used twice within a minute keeps 92 % of the
//! bytes saved for about half the coder's CPU. Both the saving and the CPU of one recoding grow
//! with the variant's size (about 20 % of its bytes per hit; brotli 10–11 at 0.5–1 ms per KiB),
//! so the rule counts uses, not bytes.

use std::time::{Duration, SystemTime};

use crate::encoding::Coding;

/// Uses of a variant this close together say it is hot: the second one starts its recoding.
pub const WINDOW: Duration = Duration::from_secs(60);

/// Whether variants in this coding are marked for background recoding at all: brotli's
/// optimal parsing (qualities 10–11) is 15–23 % smaller than the miss's quality 2–4; gzip 9
/// gains 0–0.7 % over gzip 6 on JSON, zstd has one level.
pub fn recodes(coding: Coding) -> bool {
    coding == Coding::Brotli
}

/// What a hit on a variant still waiting to be recoded does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnUse {
    /// Recode it now (in the background).
    Recode,
    /// Remember this use: the next one within [`WINDOW`] recodes it.
    Remember,
}

/// Decides for a hit at `now` on a variant last used (while waiting) at `used_at`.
pub fn on_use(used_at: Option<SystemTime>, now: SystemTime) -> OnUse {
    match used_at {
        Some(last) if now.duration_since(last).unwrap_or_default() <= WINDOW => OnUse::Recode,
        _ => OnUse::Remember,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_use_within_the_window_recodes() {
        let t0 = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000);
        assert_eq!(on_use(None, t0), OnUse::Remember, "the first use waits");
        assert_eq!(on_use(Some(t0), t0 + WINDOW), OnUse::Recode);
        assert_eq!(
            on_use(Some(t0), t0 + WINDOW + Duration::from_millis(1)),
            OnUse::Remember,
            "a cold variant starts counting again"
        );
    }

    #[test]
    fn only_brotli_variants_are_recoded() {
        assert!(recodes(Coding::Brotli));
        assert!(!recodes(Coding::Gzip) && !recodes(Coding::Zstd) && !recodes(Coding::Identity));
    }
}
