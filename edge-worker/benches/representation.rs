//! Representation costs on the origin-stub's catalogue JSON, natively:
//! - sparse fields: the streaming projection against its peer, `serde_json::Value` parse +
//!   filter + serialise, on a 100 KiB document (goal: ≥ 3× faster);
//! - compression: brotli at the chosen quality (and its neighbours) against gzip-6 on 1 KiB,
//!   100 KiB and 1 MiB, as MB/s (criterion throughput) plus output sizes printed once.
//!
//! Run: `cargo bench -p edge-worker --bench representation`

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use edge_worker::encoding::{brotli_at, brotli_quality, Coding};
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

fn compression(c: &mut Criterion) {
    let big = catalogue(1024 * 1024);
    let sizes = [
        ("1KiB", 1024),
        ("100KiB", 100 * 1024),
        ("1MiB", 1024 * 1024),
    ];
    println!("\ncompressed bytes of the catalogue JSON (percent of gzip-6):");
    for (name, size) in sizes {
        let input = &big[..size];
        let gzip = Coding::Gzip.encode(input).len();
        let row: Vec<String> = (4..=9)
            .map(|q| {
                let len = brotli_at(input, q).len();
                format!("br-{q} {len} ({:.1}%)", 100.0 * len as f64 / gzip as f64)
            })
            .collect();
        println!(
            "{name:>7}: gzip-6 {gzip}; {}; in use: br-{}",
            row.join("; "),
            brotli_quality(size)
        );
    }
    for (name, size) in sizes {
        let input = &big[..size];
        let mut group = c.benchmark_group(format!("compress_{name}"));
        group.throughput(Throughput::Bytes(size as u64));
        if size >= 1024 * 1024 {
            group.sample_size(20);
        }
        group.bench_function("gzip-6", |b| {
            b.iter(|| Coding::Gzip.encode(black_box(input)).len())
        });
        for quality in [5, 7, 8] {
            group.bench_function(format!("brotli-{quality}"), |b| {
                b.iter(|| brotli_at(black_box(input), quality).len())
            });
        }
        group.finish();
    }
}

criterion_group!(benches, fields, compression);
criterion_main!(benches);
