//! The routing decision per request, natively: 20 origins with rules and a residency pin,
//! for clients on every continent; and the same decision through the routing config parse the
//! wasm guest does per request.
//!
//! Run: `cargo bench -p edge-worker --bench routing`

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion};
use edge_worker::routing::{Geo, RoutingConfig};
use serde_json::json;

/// Twenty regional origins at real cloud-region locations.
fn twenty_origins() -> serde_json::Value {
    let places = [
        ("us-east-1", 39.0, -77.5),
        ("us-east-2", 40.0, -83.0),
        ("us-west-1", 37.4, -121.9),
        ("us-west-2", 45.8, -119.7),
        ("ca-central", 45.5, -73.6),
        ("sa-east", -23.5, -46.6),
        ("eu-west-1", 53.3, -6.3),
        ("eu-west-2", 51.5, -0.1),
        ("eu-west-3", 48.9, 2.3),
        ("eu-central", 50.1, 8.7),
        ("eu-north", 59.3, 18.1),
        ("eu-south", 45.5, 9.2),
        ("me-central", 25.3, 55.3),
        ("af-south", -33.9, 18.4),
        ("ap-south", 19.1, 72.9),
        ("ap-southeast-1", 1.3, 103.9),
        ("ap-southeast-2", -33.9, 151.2),
        ("ap-northeast-1", 35.7, 139.7),
        ("ap-northeast-2", 37.6, 127.0),
        ("ap-east", 22.3, 114.2),
    ];
    let origins: Vec<_> = places
        .iter()
        .map(|(name, lat, lon)| {
            json!({"name": name, "url": format!("https://{name}.origin.test"), "lat": lat, "lon": lon})
        })
        .collect();
    json!({
        "origin": origins,
        "rule": [{"countries": ["IN", "LK"], "origin": "ap-south"}],
        "residency": [{"name": "eu", "countries": ["DE", "FR", "IT", "ES", "NL", "SE", "PL"],
                       "origins": ["eu-west-1", "eu-west-3", "eu-central", "eu-north", "eu-south"]}]
    })
}

fn routing(c: &mut Criterion) {
    let config = twenty_origins();
    let router = serde_json::from_value::<RoutingConfig>(config.clone())
        .unwrap()
        .build()
        .unwrap();
    let clients = [
        Geo::new(Some("US"), None, None, Some((40.7, -74.0))),
        Geo::new(Some("DE"), None, None, Some((52.5, 13.4))),
        Geo::new(Some("IN"), None, None, Some((28.6, 77.2))),
        Geo::new(Some("BR"), None, None, Some((-22.9, -43.2))),
        Geo::new(Some("JP"), None, None, Some((34.7, 135.5))),
    ];
    let mut group = c.benchmark_group("routing_20_origins");
    group.bench_function("plan_5_clients", |b| {
        b.iter(|| {
            for geo in &clients {
                black_box(router.plan(black_box(geo)));
            }
        })
    });
    let text = config.to_string();
    group.bench_function("parse_and_build_config", |b| {
        b.iter(|| {
            black_box(
                serde_json::from_str::<RoutingConfig>(black_box(&text))
                    .unwrap()
                    .build()
                    .unwrap(),
            )
        })
    });
    group.finish();
}

criterion_group!(benches, routing);
criterion_main!(benches);
