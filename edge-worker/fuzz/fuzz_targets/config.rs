//! Auth and routing configurations as the hosts read them: JSON (a Cloudflare var) through
//! serde into `AuthConfig` / `RoutingConfig`, then `build()` and `check_keys()`, and TOML (the
//! emulator's files) through the `toml` crate into JSON first, as the emulator does. None may
//! panic; what builds respects the documented limits and answers route and plan queries.
//!
//! Input: the first byte picks JSON-auth, JSON-routing or TOML (both); the last line is a
//! request path for `AuthPolicy::route`.
//!
//! Run: `edge-worker/fuzz/run.sh config 600` (stable), or `cargo +nightly fuzz run config`.

#![no_main]

use edge_worker::auth::AuthConfig;
use edge_worker::routing::{Geo, RoutingConfig, MAX_ORIGINS};
use libfuzzer_sys::fuzz_target;

// The limits of auth/config.rs (not exported).
const MAX_ROUTES: usize = 256;
const MAX_KEYS: usize = 64;
const MAX_FORWARDED: usize = 16;

fn auth(json: Result<AuthConfig, serde_json::Error>, path: &str) {
    let Ok(config) = json else { return };
    let Ok(policy) = config.build() else { return };
    assert!(policy.config.routes.len() <= MAX_ROUTES);
    assert!(policy.config.keys.len() <= MAX_KEYS);
    assert!(policy.forward.len() <= MAX_FORWARDED);
    assert!(policy.leeway <= edge_worker::auth::MAX_LEEWAY);
    let _ = policy.check_keys();
    for path in [path, "/", "/api/users/1", "/api/%75sers//x/../1"] {
        if let Some(route) = policy.route(path) {
            assert!(policy.config.routes.iter().any(|r| std::ptr::eq(r, route)));
        }
    }
}

fn routing(json: Result<RoutingConfig, serde_json::Error>, path: &str) {
    let Ok(config) = json else { return };
    let Ok(router) = config.build() else { return };
    assert!(!router.origins.is_empty() && router.origins.len() <= MAX_ORIGINS);
    let country = path.get(..2);
    for geo in [
        Geo::new(country, None, None, None),
        Geo::new(None, None, None, Some((48.1, 11.6))),
        Geo::new(country, None, None, Some((-33.9, 151.2))),
    ] {
        let plan = router.plan(&geo);
        assert!(!plan.candidates.is_empty());
        assert!(plan
            .candidates
            .iter()
            .all(|c| c.origin < router.origins.len()));
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let split = rest.iter().rposition(|b| *b == b'\n').unwrap_or(rest.len());
    let (config, path) = (&rest[..split], rest.get(split + 1..).unwrap_or_default());
    let path = std::str::from_utf8(path).unwrap_or("/");
    match mode % 3 {
        0 => auth(serde_json::from_slice(config), path),
        1 => routing(serde_json::from_slice(config), path),
        _ => {
            // As the emulator's `toml_to_json`.
            let Ok(text) = std::str::from_utf8(config) else {
                return;
            };
            let Ok(value) = toml::from_str::<toml::Value>(text) else {
                return;
            };
            let Ok(json) = serde_json::to_value(value) else {
                return;
            };
            auth(serde_json::from_value::<AuthConfig>(json.clone()), path);
            routing(serde_json::from_value::<RoutingConfig>(json), path);
        }
    }
});
