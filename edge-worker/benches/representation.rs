//! Representation costs on the origin-stub's catalogue JSON, natively:
//! - sparse fields: the streaming projection against its peer, `serde_json::Value` parse +
//!   filter + serialise, on a 100 KiB document (goal: ≥ 3× faster);
//! - compression on 1 KiB to 1 MiB: the miss path (brotli at the miss quality, zstd) against
//!   gzip-6, the background recompression's CPU per variant, and output sizes printed once
//!   (the cached brotli variant against gzip-6 and brotli 4).
//!
//! Run: `cargo bench -p edge-worker --bench representation`

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use edge_worker::encoding::{brotli_at, Coding, Effort};
use edge_worker::fields::{project, Mask, Selection};
use serde_json::Value;

/// The catalogue's products as one JSON array of at least `target` bytes.
fn catalogue(target: usize) -> Vec<u8> {
    let mut products = Vec::new();
    let mut id = 1;
    loop {
        products.push(origin_stub::catalogue::product(id, 1));
        id += 1;
        let bytes = serde_json::to_vec(&products).unwrap();
        if bytes.len() >= target {
            return bytes;
        }
    }
}

/// The peer: what an API server typically does.
fn through_value(body: &[u8], mask: &Mask) -> Vec<u8> {
    fn filter(value: Value, selection: &Selection) -> Value {
        match (value, selection) {
            (value, Selection::All) => value,
            (Value::Object(map), Selection::Members(members)) => Value::Object(
                map.into_iter()
                    .filter_map(|(k, v)| members.select(&k).map(|s| (k, filter(v, &s))))
                    .collect(),
            ),
            (Value::Array(items), selection) => {
                Value::Array(items.into_iter().map(|v| filter(v, selection)).collect())
            }
            (value, _) => value,
        }
    }
    let value: Value = serde_json::from_slice(body).unwrap();
    serde_json::to_vec(&filter(value, mask.selection())).unwrap()
}

fn fields(c: &mut Criterion) {
    let body = catalogue(100 * 1024);
    let mut group = c.benchmark_group("fields_100kib");
    group.throughput(Throughput::Bytes(body.len() as u64));
    for text in [
        "id,name,price(amount)",
        "id,seller(name,location/city),variants(sku,stock)",
        "*",
    ] {
        let mask = Mask::parse(text).unwrap();
        assert_eq!(
            serde_json::from_slice::<Value>(&project(&body, &mask).unwrap()).unwrap(),
            serde_json::from_slice::<Value>(&through_value(&body, &mask)).unwrap()
        );
        group.bench_with_input(BenchmarkId::new("streaming", text), &mask, |b, mask| {
            b.iter(|| project(black_box(&body), mask).unwrap().len())
        });
        group.bench_with_input(
            BenchmarkId::new("serde_value_peer", text),
            &mask,
            |b, mask| b.iter(|| through_value(black_box(&body), mask).len()),
        );
    }
    group.finish();
}

/// The sizes the compression figures cover (issue 17: 1 KiB to 1 MiB).
const SIZES: [(&str, usize); 4] = [
    ("1KiB", 1024),
    ("10KiB", 10 * 1024),
    ("100KiB", 100 * 1024),
    ("1MiB", 1024 * 1024),
];

fn compression(c: &mut Criterion) {
    let big = catalogue(1024 * 1024);
    println!("\ncompressed bytes of the catalogue JSON (percent of the input; the cached brotli variant against gzip-6 and brotli 4):");
    for (name, size) in SIZES {
        let input = &big[..size];
        let pct = |len: usize| format!("{len} ({:.1}%)", 100.0 * len as f64 / size as f64);
        let gzip6 = Coding::Gzip.encode_at(input, 6).len();
        let gzip9 = Coding::Gzip.encode_at(input, 9).len();
        let br4 = brotli_at(input, 4).len();
        let (miss, miss_q) = Coding::Brotli.encode(input, Effort::Miss);
        let (best, best_q) = Coding::Brotli.encode(input, Effort::Background);
        let zstd = Coding::Zstd.encode(input, Effort::Miss).0.len();
        println!(
            "{name:>7}: gzip-6 {}; gzip-9 {}; br-4 {}; miss br-{miss_q} {}; cached br-{best_q} {}; zstd {}",
            pct(gzip6),
            pct(gzip9),
            pct(br4),
            pct(miss.len()),
            pct(best.len()),
            pct(zstd),
        );
        println!(
            "{name:>7}: cached brotli is {:.1}% smaller than gzip-6 (goal >= 15%) and {:.1}% smaller than br-4 (goal >= 5%)",
            100.0 * (1.0 - best.len() as f64 / gzip6 as f64),
            100.0 * (1.0 - best.len() as f64 / br4 as f64),
        );
    }
    for (name, size) in SIZES {
        let input = &big[..size];
        let mut group = c.benchmark_group(format!("compress_{name}"));
        group.throughput(Throughput::Bytes(size as u64));
        if size >= 100 * 1024 {
            group.sample_size(10);
        }
        // The miss path (the client waits) against gzip-6, its speed goal.
        group.bench_function("gzip-6", |b| {
            b.iter(|| Coding::Gzip.encode_at(black_box(input), 6).len())
        });
        let miss = Coding::Brotli.level(size, Effort::Miss);
        group.bench_function(format!("miss_brotli-{miss}"), |b| {
            b.iter(|| {
                Coding::Brotli
                    .encode(black_box(input), Effort::Miss)
                    .0
                    .len()
            })
        });
        group.bench_function("miss_zstd", |b| {
            b.iter(|| Coding::Zstd.encode(black_box(input), Effort::Miss).0.len())
        });
        // The background recompression: its CPU per variant.
        let best = Coding::Brotli.level(size, Effort::Background);
        group.bench_function(format!("background_brotli-{best}"), |b| {
            b.iter(|| {
                Coding::Brotli
                    .encode(black_box(input), Effort::Background)
                    .0
                    .len()
            })
        });
        group.bench_function("background_gzip-9", |b| {
            b.iter(|| {
                Coding::Gzip
                    .encode(black_box(input), Effort::Background)
                    .0
                    .len()
            })
        });
        group.finish();
    }
}

/// Every brotli quality on each size, once: the table the levels were chosen from
/// (`cargo bench -p edge-worker --bench representation -- --list` skips it; run with
/// `QUALITY_TABLE=1`).
fn quality_table(_: &mut Criterion) {
    if std::env::var_os("QUALITY_TABLE").is_none() {
        return;
    }
    let big = catalogue(1024 * 1024);
    println!("\nbrotli quality: bytes and median time of 5 runs per size");
    let sizes = [
        ("1KiB", 1024),
        ("10KiB", 10 * 1024),
        ("32KiB", 32 * 1024),
        ("64KiB", 64 * 1024),
        ("100KiB", 100 * 1024),
        ("256KiB", 256 * 1024),
        ("512KiB", 512 * 1024),
        ("768KiB", 768 * 1024),
        ("1MiB", 1024 * 1024),
    ];
    for (name, size) in sizes {
        let input = &big[..size];
        let time = |f: &dyn Fn() -> usize| {
            let mut runs: Vec<(std::time::Duration, usize)> = (0..5)
                .map(|_| {
                    #[allow(clippy::disallowed_methods)]
                    // why: a one-off table, not a criterion figure
                    let start = std::time::Instant::now();
                    let len = f();
                    (start.elapsed(), len)
                })
                .collect();
            runs.sort();
            runs[2]
        };
        let (t, len) = time(&|| Coding::Gzip.encode_at(input, 6).len());
        let mut row = vec![format!("gzip-6 {len} {:.2?}", t)];
        for q in 1..=11 {
            let (t, len) = time(&|| brotli_at(input, q).len());
            row.push(format!("br-{q} {len} {:.2?}", t));
        }
        println!("{name:>7}: {}", row.join("; "));
    }
}

criterion_group!(benches, fields, compression, quality_table);
criterion_main!(benches);
