//! Test support shared by the core's unit tests, its benches, the end-to-end tests and the
//! fuzz targets; built for `cfg(test)` and with the `testing` feature, never in a release.
//!
//! * [`platform`]: an in-memory [`Platform`](crate::Platform) (cache, lock, scripted upstream);
//! * [`adversarial`]: tokens with the verdicts the verifier must give, and the demo keys;
//! * [`reference`]: the slow, obvious `?fields=` projection the streaming one must agree with.

pub mod adversarial;
pub mod platform;
pub mod reference;

pub use platform::{header, Answer, MemoryPlatform, Script};
pub use reference::reference;
