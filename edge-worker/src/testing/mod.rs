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

/// A JSON array of about `target` bytes whose text varies as an API's does (names, prices,
/// sentences from a small vocabulary in changing order), deterministic: enough variety that a
/// harder coder level finds more to remove, as on real data. Tests only; the benchmarks use
/// the origin-stub's catalogue.
pub fn varied_json(target: usize) -> Vec<u8> {
    const WORDS: [&str; 24] = [
        "amber", "brisk", "cedar", "delta", "ember", "fjord", "gale", "harbor", "iris", "juniper",
        "kelp", "lumen", "maple", "nectar", "onyx", "prairie", "quartz", "river", "sable",
        "tundra", "umber", "vale", "willow", "zephyr",
    ];
    let mut state = 0x9e37_79b9_7f4a_7c15_u64;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    let mut items = Vec::new();
    let mut length = 2;
    let mut id = 0;
    while length < target {
        id += 1;
        let sentence: Vec<&str> = (0..8 + next() % 12)
            .map(|_| WORDS[(next() % WORDS.len() as u64) as usize])
            .collect();
        let item = serde_json::json!({
            "id": id,
            "sku": format!("SKU-{:08x}", next() as u32),
            "name": format!("{} {}", WORDS[id % WORDS.len()], WORDS[(id * 7) % WORDS.len()]),
            "price": (next() % 100_000) as f64 / 100.0,
            "stock": next() % 500,
            "description": sentence.join(" "),
        });
        length += item.to_string().len() + 1;
        items.push(item);
    }
    serde_json::to_vec(&items).expect("JSON values serialise")
}
