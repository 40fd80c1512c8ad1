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

/// A header map from `(name, value)` pairs, repeated names appended in order.
pub fn header_map(pairs: &[(&str, &str)]) -> http::HeaderMap {
    let mut map = http::HeaderMap::new();
    for (name, value) in pairs {
        map.append(
            http::HeaderName::from_bytes(name.as_bytes()).expect("a valid field name"),
            http::HeaderValue::from_str(value).expect("a valid field value"),
        );
    }
    map
}
