//! The catalogue's documents, shaped like a production JSON API's: people, companies,
//! addresses, free text, URLs, ids and timestamps from the `fake` crate, drawn from a ChaCha8
//! generator seeded by (kind, id, version), so one id at one version is always the same bytes.
//!
//! The vocabulary is what decides how well bodies compress, and so what the edge's compressed
//! variants save: it is varied enough that gzip-6 saves about 70 %, as on production JSON
//! APIs (issue 17; the measurement is `tests::compression_savings`, figures in BENCHMARKS.md).

use std::io::Write as _;

use fake::faker::address::raw::{BuildingNumber, CityName, StateName, StreetName, ZipCode};
use fake::faker::company::raw::{Bs, BsNoun, Buzzword, CatchPhrase, CompanyName, Industry};
use fake::faker::impls::address::CityNameGenFn;
use fake::faker::internet::raw::{FreeEmailProvider, Username};
use fake::faker::lorem::raw::{Paragraph, Sentence, Word};
use fake::faker::name::raw::Name;
use fake::faker::number::raw::NumberWithFormat;
use fake::faker::phone_number::raw::PhoneNumber;
use fake::locales::{Data, DE_DE, EN, FR_FR, IT_IT, JA_JP, NL_NL, PT_BR};
use fake::Fake;
use rand::rngs::ChaCha8Rng;
use rand::seq::IndexedRandom;
use rand::{RngExt, SeedableRng};
use serde::Serialize;
use serde_json::{json, Value};
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

/// Products are numbered 1..=PRODUCT_COUNT.
pub const PRODUCT_COUNT: u64 = 1000;
/// Users are numbered 1..=USER_COUNT.
pub const USER_COUNT: u64 = 1000;
pub const PAGE_SIZE: u64 = 20;

// Enumerations a real catalogue fixes too (a shop's colours and sizes are a closed list), not
// vocabulary: free text comes from `fake`.
const COLORS: &[&str] = &[
    "black", "white", "red", "blue", "green", "grey", "navy", "olive", "sand", "burgundy",
];
const SIZES: &[&str] = &["XS", "S", "M", "L", "XL", "XXL"];
const ORDER_STATES: &[&str] = &[
    "placed",
    "paid",
    "packed",
    "shipped",
    "delivered",
    "returned",
];

/// What a generator draws for: each kind has its own stream, so adding a field to one kind
/// never shifts another's bytes.
#[derive(Clone, Copy)]
enum Kind {
    /// What a product is: name, seller, reviews. The same at every version.
    Product = 1,
    /// What an edit changes: price, stock, update time. Drawn per version.
    ProductEdit = 2,
    User = 3,
    Object = 4,
    Asset = 5,
}

/// The generator for one document. The seed holds kind, id and version side by side (no
/// mixing, so no two inputs share a stream), and ChaCha8's output for a seed is fixed by the
/// cipher, not by the rand version.
fn generator(kind: Kind, id: u64, version: u64) -> ChaCha8Rng {
    let mut seed = [0u8; 32];
    seed[..8].copy_from_slice(&(kind as u64).to_le_bytes());
    seed[8..16].copy_from_slice(&id.to_le_bytes());
    seed[16..24].copy_from_slice(&version.to_le_bytes());
    ChaCha8Rng::from_seed(seed)
}

/// Where a seller or user is: their locale's names and addresses, their currency.
#[derive(Clone, Copy)]
enum Market {
    Us,
    De,
    Fr,
    It,
    Nl,
    Br,
    Jp,
}

impl Market {
    const ALL: [Market; 7] = [
        Market::Us,
        Market::De,
        Market::Fr,
        Market::It,
        Market::Nl,
        Market::Br,
        Market::Jp,
    ];

    fn pick(rng: &mut ChaCha8Rng) -> Self {
        *Self::ALL.choose(rng).unwrap_or(&Market::Us)
    }

    fn country(self) -> &'static str {
        match self {
            Market::Us => "US",
            Market::De => "DE",
            Market::Fr => "FR",
            Market::It => "IT",
            Market::Nl => "NL",
            Market::Br => "BR",
            Market::Jp => "JP",
        }
    }

    /// The BCP 47 tag of text written there (a review's language).
    fn locale(self) -> &'static str {
        match self {
            Market::Us => "en-US",
            Market::De => "de-DE",
            Market::Fr => "fr-FR",
            Market::It => "it-IT",
            Market::Nl => "nl-NL",
            Market::Br => "pt-BR",
            Market::Jp => "ja-JP",
        }
    }

    fn currency(self) -> &'static str {
        match self {
            Market::Us => "USD",
            Market::Br => "BRL",
            Market::Jp => "JPY",
            _ => "EUR",
        }
    }

    /// `amount` in the currency's minor unit (yen have none), as a shop shows it.
    fn format_price(self, amount: u32) -> String {
        let (major, minor) = (amount / 100, amount % 100);
        match self {
            Market::Us => format!("${major}.{minor:02}"),
            Market::Br => format!("R$ {major},{minor:02}"),
            Market::Jp => format!("¥{amount}"),
            Market::De | Market::Fr | Market::It | Market::Nl => format!("{major},{minor:02} €"),
        }
    }

    fn person(self, rng: &mut ChaCha8Rng) -> String {
        match self {
            Market::Us => Name(EN).fake_with_rng(rng),
            Market::De => Name(DE_DE).fake_with_rng(rng),
            Market::Fr => Name(FR_FR).fake_with_rng(rng),
            Market::It => Name(IT_IT).fake_with_rng(rng),
            Market::Nl => Name(NL_NL).fake_with_rng(rng),
            Market::Br => Name(PT_BR).fake_with_rng(rng),
            Market::Jp => Name(JA_JP).fake_with_rng(rng),
        }
    }

    fn company(self, rng: &mut ChaCha8Rng) -> String {
        match self {
            Market::Us => CompanyName(EN).fake_with_rng(rng),
            Market::De => CompanyName(DE_DE).fake_with_rng(rng),
            Market::Fr => CompanyName(FR_FR).fake_with_rng(rng),
            Market::It => CompanyName(IT_IT).fake_with_rng(rng),
            Market::Nl => CompanyName(NL_NL).fake_with_rng(rng),
            Market::Br => CompanyName(PT_BR).fake_with_rng(rng),
            Market::Jp => CompanyName(JA_JP).fake_with_rng(rng),
        }
    }

    fn address(self, rng: &mut ChaCha8Rng) -> Value {
        match self {
            Market::Us => address_in(EN, self, rng),
            Market::De => address_in(DE_DE, self, rng),
            Market::Fr => address_in(FR_FR, self, rng),
            Market::It => address_in(IT_IT, self, rng),
            Market::Nl => address_in(NL_NL, self, rng),
            Market::Br => address_in(PT_BR, self, rng),
            Market::Jp => address_in(JA_JP, self, rng),
        }
    }

    fn phone(self, rng: &mut ChaCha8Rng) -> String {
        match self {
            Market::Us => PhoneNumber(EN).fake_with_rng(rng),
            Market::De => PhoneNumber(DE_DE).fake_with_rng(rng),
            Market::Fr => PhoneNumber(FR_FR).fake_with_rng(rng),
            Market::It => PhoneNumber(IT_IT).fake_with_rng(rng),
            Market::Nl => PhoneNumber(NL_NL).fake_with_rng(rng),
            Market::Br => PhoneNumber(PT_BR).fake_with_rng(rng),
            Market::Jp => PhoneNumber(JA_JP).fake_with_rng(rng),
        }
    }
}

fn address_in<L: Data + CityNameGenFn + Copy>(l: L, market: Market, rng: &mut ChaCha8Rng) -> Value {
    let number: String = BuildingNumber(l).fake_with_rng(rng);
    let street: String = StreetName(l).fake_with_rng(rng);
    json!({
        "line1": format!("{street} {number}"),
        "city": CityName(l).fake_with_rng::<String, _>(rng),
        "region": StateName(l).fake_with_rng::<String, _>(rng),
        "postcode": ZipCode(l).fake_with_rng::<String, _>(rng),
        "country": market.country(),
    })
}

/// The catalogue's first day (2024-01-01) and how far after it things happen.
const EPOCH_UNIX: i64 = 1_704_067_200;
const SPAN_SECS: i64 = 2 * 365 * 86_400;

/// An RFC 3339 time within the catalogue's two years: what APIs send as `created_at`.
fn timestamp(rng: &mut ChaCha8Rng) -> String {
    let at = EPOCH_UNIX + rng.random_range(0..SPAN_SECS);
    rfc3339(at)
}

fn rfc3339(unix: i64) -> String {
    OffsetDateTime::from_unix_timestamp(unix)
        .ok()
        .and_then(|t| t.format(&Rfc3339).ok())
        .unwrap_or_default()
}

/// A lowercase ASCII handle from a display name (domains, usernames); `fallback` when the name
/// has no ASCII letters (Japanese company names).
fn slug(name: &str, fallback: impl FnOnce() -> String) -> String {
    let slug: String = name
        .chars()
        .filter(char::is_ascii_alphanumeric)
        .map(|c| c.to_ascii_lowercase())
        .collect();
    if slug.is_empty() {
        fallback()
    } else {
        slug
    }
}

/// Product `id` at `version`. What the product is (name, description, seller, reviews) is
/// drawn from the id alone; what an edit changes (price, stock, `updated_at`) from the id and
/// version, so a bump reads like a real catalogue edit and still changes the body and ETag.
pub fn product(id: u64, version: u64) -> Value {
    let mut rng = generator(Kind::Product, id, 0);
    let mut edit = generator(Kind::ProductEdit, id, version);
    let market = Market::pick(&mut rng);
    let currency = market.currency();
    let price: u32 = edit.random_range(500..50_000);
    let name: String = CatchPhrase(EN).fake_with_rng(&mut rng);
    let seller_id: u32 = rng.random_range(1..5_000);
    let seller = market.company(&mut rng);
    let domain = slug(&seller, || format!("seller{seller_id}"));
    let tld = ["com", "net", "shop", "store", "io"]
        .choose(&mut rng)
        .unwrap_or(&"com");
    let address = market.address(&mut rng);
    let created = EPOCH_UNIX + rng.random_range(0..SPAN_SECS / 2);
    let review_count = rng.random_range(4..=30);
    let variant_count = rng.random_range(1..=8);
    json!({
        "id": id,
        "sku": format!("SKU-{id:06}"),
        "version": version,
        "name": name,
        "description": Paragraph(EN, 2..5).fake_with_rng::<String, _>(&mut rng),
        "category": Industry(EN).fake_with_rng::<String, _>(&mut rng),
        "tags": (0..rng.random_range(2..7)).map(|i| if i % 2 == 0 {
            BsNoun(EN).fake_with_rng::<String, _>(&mut rng)
        } else {
            Buzzword(EN).fake_with_rng::<String, _>(&mut rng).to_lowercase()
        }).collect::<Vec<_>>(),
        "price": { "amount": price, "currency": currency, "formatted": market.format_price(price) },
        "seller": {
            "id": seller_id,
            "name": seller,
            "rating": f64::from(rng.random_range(25..=50u32)) / 10.0,
            "url": format!("https://www.{domain}.{tld}/"),
            "email": format!("sales@{domain}.{tld}"),
            "phone": market.phone(&mut rng),
            "location": { "city": address["city"], "country": market.country() },
            "address": address,
        },
        "variants": (0..variant_count).map(|v| json!({
            "sku": format!("SKU-{id:06}-{v}"),
            "gtin": NumberWithFormat(EN, "^############").fake_with_rng::<String, _>(&mut rng),
            "color": COLORS.choose(&mut rng),
            "size": SIZES.choose(&mut rng),
            "weight_g": rng.random_range(50..5_000u32),
            "stock": edit.random_range(0..200u32),
            "price": { "amount": price + edit.random_range(0..2000u32), "currency": currency },
        })).collect::<Vec<_>>(),
        "reviews": (0..review_count).map(|r| {
            let reviewer = Market::pick(&mut rng);
            let review = id * 1000 + r as u64;
            // Reviewers are the API's users: ids that `/api/users/{id}` serves.
            let author: u64 = rng.random_range(1..=USER_COUNT);
            json!({
                "id": review,
                "author": {
                    "id": author,
                    "name": reviewer.person(&mut rng),
                    "country": reviewer.country(),
                },
                "locale": reviewer.locale(),
                "status": "published",
                "links": {
                    "self": format!("/api/products/{id}/reviews/{review}"),
                    "author": format!("/api/users/{author}"),
                },
                "rating": rng.random_range(1..=5u32),
                "title": Sentence(EN, 2..7).fake_with_rng::<String, _>(&mut rng),
                "body": Paragraph(EN, 1..4).fake_with_rng::<String, _>(&mut rng),
                "created_at": rfc3339(created + rng.random_range(0..SPAN_SECS / 2)),
                "helpful_votes": rng.random_range(0..250u32),
                "verified_purchase": rng.random_bool(0.7),
            })
        }).collect::<Vec<_>>(),
        "images": (0..rng.random_range(1..5)).map(|i| format!(
            "https://images.example-cdn.com/products/{id}/{:08x}-{i}.jpg",
            rng.random::<u32>()
        )).collect::<Vec<_>>(),
        "created_at": rfc3339(created),
        "updated_at": rfc3339(created + SPAN_SECS / 2 + edit.random_range(0..SPAN_SECS / 2)),
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
    let mut rng = generator(Kind::User, id, 0);
    let market = Market::pick(&mut rng);
    let handle: String = Username(EN).fake_with_rng(&mut rng);
    let provider: String = FreeEmailProvider(EN).fake_with_rng(&mut rng);
    json!({
        "id": id,
        "name": market.person(&mut rng),
        "username": handle,
        "email": format!("{handle}{id}@{provider}"),
        "phone": market.phone(&mut rng),
        "address": market.address(&mut rng),
        "member_since": timestamp(&mut rng),
        "orders": (0..rng.random_range(0..10)).map(|o| {
            let lines = (0..rng.random_range(1..4)).map(|_| json!({
                "product_id": rng.random_range(1..=PRODUCT_COUNT),
                "quantity": rng.random_range(1..4u32),
                "unit_price": rng.random_range(500..50_000u32),
            })).collect::<Vec<_>>();
            json!({
                "id": format!("ORD-{id}-{o}"),
                "placed_at": timestamp(&mut rng),
                "status": ORDER_STATES.choose(&mut rng),
                "currency": market.currency(),
                "total": lines.iter().filter_map(|l| Some(l["unit_price"].as_u64()? * l["quantity"].as_u64()?)).sum::<u64>(),
                "lines": lines,
            })
        }).collect::<Vec<_>>(),
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
    let mut rng = generator(Kind::Asset, name.len() as u64, 0);
    let body = (0..80)
        .map(|i| {
            let text: String = Sentence(EN, 4..10).fake_with_rng(&mut rng);
            format!("/* {name} line {i} */ {text}\n")
        })
        .collect::<String>();
    Some((kind, body))
}

/// One record of an object's `items`: an order line as a commerce API lists them.
#[derive(Serialize)]
struct Record {
    n: u64,
    id: String,
    sku: String,
    name: String,
    seller: String,
    quantity: u32,
    unit_price: u32,
    currency: &'static str,
    status: &'static str,
    updated_at: String,
    note: String,
    links: Links,
}

/// Hypermedia links, as HAL and JSON:API responses carry them.
#[derive(Serialize)]
struct Links {
    product: String,
    buyer: String,
}

impl Record {
    fn draw(n: u64, rng: &mut ChaCha8Rng) -> Self {
        let market = Market::pick(rng);
        let product = rng.random_range(1..=PRODUCT_COUNT);
        Record {
            n,
            id: format!("{:08x}", rng.random::<u32>()),
            sku: format!("SKU-{product:06}-{}", rng.random_range(0..8)),
            name: CatchPhrase(EN).fake_with_rng(rng),
            seller: market.company(rng),
            quantity: rng.random_range(1..20),
            unit_price: rng.random_range(500..50_000),
            currency: market.currency(),
            status: ORDER_STATES.choose(rng).unwrap_or(&"placed"),
            updated_at: timestamp(rng),
            // A buyer's words, not lorem alone: 100 KiB of a 250-word vocabulary would
            // compress past what production text does.
            note: format!(
                "{} {}",
                Bs(EN).fake_with_rng::<String, _>(rng),
                Sentence(EN, 2..8).fake_with_rng::<String, _>(rng)
            ),
            links: Links {
                product: format!("/api/products/{product}"),
                buyer: format!("/api/users/{}", rng.random_range(1..=USER_COUNT)),
            },
        }
    }
}

/// A JSON document of `bytes` bytes for object `id` at `version` (more only when `bytes` is
/// below the smallest document, ~40 bytes): order-line records, then a `note` of free text
/// that fills the rest, so sizes in a workload are the sizes served. The same bytes for the
/// same inputs. Callers bound `bytes` (the route: `MAX_OBJECT_BYTES`).
pub fn object(id: u64, version: u64, bytes: usize) -> Vec<u8> {
    const TAIL: &[u8] = b"],\"note\":\"";
    let mut rng = generator(Kind::Object, id, version);
    let mut out = Vec::with_capacity(bytes + 64);
    // Writing to a Vec cannot fail.
    let _ = write!(out, "{{\"id\":{id},\"version\":{version},\"items\":[");
    let mut record = Vec::new();
    for n in 0.. {
        record.clear();
        if n > 0 {
            record.push(b',');
        }
        // A struct of strings and numbers always serializes.
        let _ = serde_json::to_writer(&mut record, &Record::draw(n, &mut rng));
        if out.len() + record.len() + TAIL.len() + 2 > bytes {
            break;
        }
        out.extend_from_slice(&record);
    }
    out.extend_from_slice(TAIL);
    let mut room = bytes.saturating_sub(out.len() + 2);
    let mut note = String::with_capacity(room + 16);
    while note.len() < room {
        note.push_str(Word(EN).fake_with_rng::<&str, _>(&mut rng));
        note.push(' ');
    }
    // Lorem words are ASCII, so any length is a boundary; the loop only guards the invariant.
    while !note.is_char_boundary(room) {
        room -= 1;
    }
    note.truncate(room);
    out.extend_from_slice(note.as_bytes());
    out.extend_from_slice(b"\"}");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn objects_are_valid_json_of_the_asked_size_and_deterministic() {
        for bytes in [0, 10, 64, 100, 1000, 1024, 4096, 10 * 1024, 100 * 1024] {
            for (id, version) in [(1, 0), (42, 0), (42, 3)] {
                let body = object(id, version, bytes);
                let doc: Value = serde_json::from_slice(&body).unwrap();
                assert_eq!(doc["id"], id);
                assert_eq!(doc["version"], version);
                assert!(doc["items"].is_array() && doc["note"].is_string());
                // Exactly the size asked, unless it is below the smallest document.
                let smallest = object(id, version, 0).len();
                assert_eq!(
                    body.len(),
                    bytes.max(smallest),
                    "object {id} v{version} of {bytes}"
                );
                assert_eq!(body, object(id, version, bytes));
            }
            if bytes >= 1024 {
                assert_ne!(object(42, 0, bytes), object(42, 1, bytes));
                assert_ne!(object(42, 0, bytes), object(43, 0, bytes));
            }
        }
    }

    #[test]
    fn products_keep_their_shape_and_an_edit_keeps_their_identity() {
        let (v0, v1) = (product(7, 0), product(7, 1));
        for field in [
            "id",
            "sku",
            "name",
            "description",
            "category",
            "tags",
            "price",
            "seller",
            "variants",
            "reviews",
            "images",
            "version",
        ] {
            assert!(!v0[field].is_null(), "{field}");
        }
        for field in ["amount", "currency", "formatted"] {
            assert!(!v0["price"][field].is_null(), "price.{field}");
        }
        assert!(v0["seller"]["name"].is_string());
        assert!(v0["variants"][0]["sku"].is_string());
        // A version bump is an edit: the same product, a new price, stock and update time.
        for field in [
            "name",
            "description",
            "seller",
            "reviews",
            "images",
            "created_at",
        ] {
            assert_eq!(v0[field], v1[field], "{field}");
        }
        assert_ne!(v0["updated_at"], v1["updated_at"]);
        assert_eq!(user(3), user(3));
        assert_ne!(user(3), user(4));
    }

    #[test]
    fn gzip_saves_about_seventy_percent_not_eighty_five() {
        let mut docs: Vec<Vec<u8>> = (1..=20)
            .map(|id| serde_json::to_vec(&product(id, 0)).unwrap())
            .collect();
        docs.extend((1..=20).map(|id| object(id, 0, 10 * 1024)));
        let (gzip, _, _) = savings(&docs);
        assert!((62.0..=78.0).contains(&gzip), "gzip-6 saves {gzip:.1} %");
    }

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

    /// Savings (1 − compressed/original, in %) of gzip level 6 and brotli over `docs`, summed:
    /// what the edge's compressed variants save on this data. Brotli's quality is the edge's
    /// (`edge_worker::encoding::brotli_quality`: 7 from 32 KiB, else 5), window 22.
    fn savings(docs: &[Vec<u8>]) -> (f64, f64, usize) {
        use std::io::Write;
        let (mut raw, mut gz, mut br) = (0usize, 0usize, 0usize);
        for doc in docs {
            raw += doc.len();
            let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::new(6));
            enc.write_all(doc).unwrap();
            gz += enc.finish().unwrap().len();
            let mut out = Vec::new();
            let params = brotli::enc::BrotliEncoderParams {
                quality: if doc.len() >= 32 * 1024 { 7 } else { 5 },
                lgwin: 22,
                ..Default::default()
            };
            brotli::BrotliCompress(&mut &doc[..], &mut out, &params).unwrap();
            br += out.len();
        }
        let pct = |c: usize| 100.0 * (1.0 - c as f64 / raw as f64);
        (pct(gz), pct(br), raw)
    }

    /// The figures BENCHMARKS.md quotes ("Realistic data"):
    /// `cargo test --release -p origin-stub --lib -- --ignored --nocapture compression_savings`
    #[test]
    #[ignore = "a measurement that prints figures; run in release"]
    fn compression_savings() {
        use std::time::Instant;
        // Each set with the time its generation took: objects are made on every origin miss.
        let timed = |make: &dyn Fn(u64) -> Vec<u8>| {
            let start = Instant::now();
            let docs: Vec<Vec<u8>> = (1..=200).map(make).collect();
            (docs, start.elapsed())
        };
        let mut rows = vec![
            (
                "products ×200",
                timed(&|id| serde_json::to_vec(&product(id, 0)).unwrap()),
            ),
            (
                "users ×200",
                timed(&|id| serde_json::to_vec(&user(id)).unwrap()),
            ),
        ];
        for (name, size) in [
            ("objects 1 KiB ×200", 1024),
            ("objects 10 KiB ×200", 10 * 1024),
            ("objects 100 KiB ×200", 100 * 1024),
        ] {
            rows.push((name, timed(&|id| object(id, 0, size))));
        }
        println!("| documents | bytes | gzip-6 saves | brotli saves | generated at |");
        for (name, (docs, took)) in &rows {
            let (gz, br, raw) = savings(docs);
            let rate = raw as f64 / took.as_secs_f64() / 1e6;
            println!("| {name} | {raw} | {gz:.1} % | {br:.1} % | {rate:.0} MB/s |");
        }
    }
}
