//! The catalogue's documents: deterministic per id, 2–20 KiB of nested JSON (variants,
//! reviews, seller) so that compression and field selection have something to work on.

use serde_json::{json, Value};

/// Products are numbered 1..=PRODUCT_COUNT.
pub const PRODUCT_COUNT: u64 = 1000;
/// Users are numbered 1..=USER_COUNT.
pub const USER_COUNT: u64 = 1000;
pub const PAGE_SIZE: u64 = 20;

const COLORS: &[&str] = &[
    "black", "white", "red", "blue", "green", "grey", "navy", "olive",
];
const SIZES: &[&str] = &["XS", "S", "M", "L", "XL", "XXL"];
const CATEGORIES: &[&str] = &[
    "outdoor", "kitchen", "office", "audio", "garden", "travel", "toys",
];
const WORDS: &[&str] = &[
    "durable",
    "lightweight",
    "compact",
    "premium",
    "recycled",
    "waterproof",
    "ergonomic",
    "classic",
    "modern",
    "quiet",
    "fast",
    "portable",
    "sturdy",
    "soft",
    "bright",
    "reliable",
];
const CITIES: &[(&str, &str)] = &[
    ("Berlin", "DE"),
    ("Austin", "US"),
    ("Osaka", "JP"),
    ("Lyon", "FR"),
    ("Sydney", "AU"),
    ("Toronto", "CA"),
    ("Singapore", "SG"),
    ("Dublin", "IE"),
];

fn sentence(rng: &mut fastrand::Rng, words: usize) -> String {
    let mut text: Vec<&str> = (0..words)
        .map(|_| WORDS[rng.usize(..WORDS.len())])
        .collect();
    text.dedup();
    let mut s = text.join(" ");
    if let Some(first) = s.get_mut(0..1) {
        first.make_ascii_uppercase();
    }
    s.push('.');
    s
}

/// Product `id` at `version` (a version bump changes the document and so its ETag).
pub fn product(id: u64, version: u64) -> Value {
    let mut rng = fastrand::Rng::with_seed(id);
    let review_count = rng.usize(6..=50);
    let variant_count = rng.usize(1..=8);
    let (city, country) = CITIES[rng.usize(..CITIES.len())];
    let price = rng.u32(500..50_000);
    json!({
        "id": id,
        "sku": format!("SKU-{id:06}"),
        "version": version,
        "name": format!("{} {} {}", WORDS[rng.usize(..WORDS.len())], CATEGORIES[rng.usize(..CATEGORIES.len())], id),
        "description": (0..3).map(|_| sentence(&mut rng, 12)).collect::<Vec<_>>().join(" "),
        "category": CATEGORIES[rng.usize(..CATEGORIES.len())],
        "tags": (0..rng.usize(1..6)).map(|_| WORDS[rng.usize(..WORDS.len())]).collect::<Vec<_>>(),
        "price": { "amount": price, "currency": "EUR", "formatted": format!("€{}.{:02}", price / 100, price % 100) },
        "seller": {
            "id": rng.u32(1..500),
            "name": format!("{city} Trading {}", rng.u32(1..99)),
            "rating": f64::from(rng.u32(30..50)) / 10.0,
            "location": { "city": city, "country": country },
        },
        "variants": (0..variant_count).map(|v| json!({
            "sku": format!("SKU-{id:06}-{v}"),
            "color": COLORS[rng.usize(..COLORS.len())],
            "size": SIZES[rng.usize(..SIZES.len())],
            "stock": rng.u32(0..200),
            "price": { "amount": price + rng.u32(0..2000), "currency": "EUR" },
        })).collect::<Vec<_>>(),
        "reviews": (0..review_count).map(|r| json!({
            "id": id * 1000 + r as u64,
            "author": format!("user{}", rng.u32(1..10_000)),
            "rating": rng.u32(1..=5),
            "title": sentence(&mut rng, 4),
            "body": (0..2).map(|_| sentence(&mut rng, 14)).collect::<Vec<_>>().join(" "),
            "date": format!("2026-{:02}-{:02}", rng.u32(1..=12), rng.u32(1..=28)),
        })).collect::<Vec<_>>(),
        "images": (0..rng.usize(1..5)).map(|i| format!("/static/img/{id}-{i}.jpg")).collect::<Vec<_>>(),
    })
}

/// One page of product summaries.
pub fn product_page(page: u64) -> Value {
    let first = page.saturating_sub(1) * PAGE_SIZE + 1;
    let items: Vec<Value> = (first..first + PAGE_SIZE)
        .filter(|id| *id <= PRODUCT_COUNT)
        .map(|id| {
            let p = product(id, 0);
            json!({ "id": id, "name": p["name"], "price": p["price"], "category": p["category"] })
        })
        .collect();
    json!({ "page": page, "page_size": PAGE_SIZE, "total": PRODUCT_COUNT, "items": items })
}

/// A user's private profile and recent orders.
pub fn user(id: u64) -> Value {
    let mut rng = fastrand::Rng::with_seed(1_000_000 + id);
    json!({
        "id": id,
        "name": format!("User {id}"),
        "email": format!("user{id}@example.com"),
        "orders": (0..rng.usize(0..10)).map(|o| json!({
            "id": format!("ORD-{id}-{o}"),
            "product_id": rng.u64(1..=PRODUCT_COUNT),
            "total": rng.u32(500..50_000),
        })).collect::<Vec<_>>(),
    })
}

/// A static-like asset: deterministic text of a few KiB.
pub fn asset(name: &str) -> Option<(&'static str, String)> {
    let kind = match name.rsplit_once('.').map(|(_, ext)| ext) {
        Some("js") => "text/javascript",
        Some("css") => "text/css",
        Some("svg") => "image/svg+xml",
        _ => return None,
    };
    let mut rng = fastrand::Rng::with_seed(name.len() as u64);
    let body = (0..80)
        .map(|i| format!("/* {name} line {i} */ {}\n", sentence(&mut rng, 8)))
        .collect::<String>();
    Some((kind, body))
}

/// A JSON document of about `bytes` bytes for object `id` at `version`: records of words and
/// numbers, as compressible as the catalogue, the same bytes for the same inputs.
pub fn object(id: u64, version: u64, bytes: usize) -> Vec<u8> {
    let mut out = format!("{{\"id\":{id},\"version\":{version},\"items\":[");
    let mut n: u64 = 0;
    while out.len() + 2 < bytes {
        let seed = id.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ n.wrapping_mul(0xBF58_476D_1CE4_E5B9);
        let word = WORDS[(seed % WORDS.len() as u64) as usize];
        let color = COLORS[((seed >> 8) % COLORS.len() as u64) as usize];
        if n > 0 {
            out.push(',');
        }
        out.push_str(&format!(
            "{{\"n\":{n},\"name\":\"{word} {color}\",\"qty\":{}}}",
            (seed >> 16) % 1000
        ));
        n += 1;
    }
    out.push_str("]}");
    out.into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn products_are_deterministic_and_2_to_20_kib() {
        assert_eq!(product(7, 0), product(7, 0));
        assert_ne!(product(7, 0), product(7, 1));
        for id in 1..=PRODUCT_COUNT {
            let size = serde_json::to_vec(&product(id, 0)).unwrap().len();
            assert!(
                (2048..=20 * 1024).contains(&size),
                "product {id} is {size} bytes"
            );
        }
    }
}
