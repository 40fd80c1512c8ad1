use super::*;
use crate::testing::MemoryPlatform;
use crate::FetchError;
use http::header;

fn platform() -> MemoryPlatform {
    MemoryPlatform::new(|_| Err(FetchError("assignment fetches nothing".into())))
}

fn experiments(weights: &[(&str, u32)]) -> Experiments {
    Experiments::build(vec![ExperimentConfig {
        name: "checkout".into(),
        path: "/shop/*".into(),
        variants: weights
            .iter()
            .map(|(name, weight)| VariantConfig {
                name: name.to_string(),
                weight: *weight,
            })
            .collect(),
    }])
    .unwrap()
}

fn shares(e: &Experiments, units: usize) -> std::collections::BTreeMap<String, usize> {
    let mut counts = std::collections::BTreeMap::new();
    for i in 0..units {
        let variant = e.variant_of("checkout", &format!("sub:user-{i}")).unwrap();
        *counts.entry(variant.to_string()).or_default() += 1;
    }
    counts
}

#[test]
fn weights_hold_within_a_percent_over_100k_subjects() {
    let e = experiments(&[("a", 70), ("b", 20), ("c", 10)]);
    let counts = shares(&e, 100_000);
    for (variant, expected) in [("a", 70_000.0), ("b", 20_000.0), ("c", 10_000.0)] {
        let got = counts[variant] as f64;
        // The binomial sd at 100k is at most 158; 1,000 is over six of them.
        assert!((got - expected).abs() < 1_000.0, "{variant}: {got} of 100k");
    }
}

#[test]
fn raising_one_weight_moves_subjects_only_into_that_variant() {
    let before = experiments(&[("a", 50), ("b", 30), ("c", 20)]);
    let after = experiments(&[("a", 50), ("b", 30), ("c", 40)]);
    let mut moved = 0;
    for i in 0..50_000 {
        let unit = format!("sub:{i}");
        let (old, new) = (
            before.variant_of("checkout", &unit).unwrap(),
            after.variant_of("checkout", &unit).unwrap(),
        );
        if old != new {
            assert_eq!(new, "c", "{unit} moved {old} → {new}");
            moved += 1;
        }
    }
    // c goes from 20% to 40/120 = 33.3%: 13.3% of units must move, and no more do.
    let share = moved as f64 / 50_000.0;
    assert!((share - 0.1333).abs() < 0.01, "{share}");
}

#[test]
fn the_same_subject_gets_the_same_variant_from_every_instance() {
    let one = experiments(&[("a", 1), ("b", 1)]);
    let other = experiments(&[("a", 1), ("b", 1)]);
    for i in 0..1000 {
        let unit = format!("sub:{i}");
        assert_eq!(
            one.variant_of("checkout", &unit),
            other.variant_of("checkout", &unit)
        );
    }
    // Pinned: a change of hash or arithmetic would reshuffle every running experiment, and
    // the wasm builds (guest, Cloudflare) must agree with this native one.
    let pinned: Vec<&str> = (0..8)
        .map(|i| one.variant_of("checkout", &format!("sub:{i}")).unwrap())
        .collect();
    assert_eq!(pinned, PINNED);
}

const PINNED: [&str; 8] = ["a", "b", "a", "a", "a", "a", "b", "a"];

#[test]
fn apply_writes_the_field_mints_a_cookie_and_drops_the_clients_copy() {
    let e = experiments(&[("a", 1), ("b", 1)]);
    let p = platform();
    let mut headers = HeaderMap::new();
    headers.insert(REQUEST_HEADER, HeaderValue::from_static("checkout=zzz"));
    let assigned = e.apply(&p, None, None, "/shop/cart", &mut headers);
    let cookie = assigned
        .unit
        .set_cookie()
        .expect("a new visitor gets an id");
    let cookie = cookie.to_str().unwrap();
    assert!(cookie.starts_with("edge_uid="), "{cookie}");
    assert!(cookie.contains("Max-Age=31536000") && cookie.contains("HttpOnly"));
    let variant = &assigned.exposures[0].variant;
    assert_eq!(
        headers.get(REQUEST_HEADER).unwrap(),
        &format!("checkout={variant}")
    );
    // The visitor comes back with the cookie: the same variant, no new cookie.
    let id = cookie.split(';').next().unwrap();
    let mut again = HeaderMap::new();
    again.insert(
        header::COOKIE,
        HeaderValue::from_str(&format!("x=1; {id}")).unwrap(),
    );
    let second = e.apply(&p, None, None, "/shop/cart", &mut again);
    assert!(second.unit.set_cookie().is_none());
    assert_eq!(&second.exposures[0].variant, variant);
}

#[test]
fn a_subject_outranks_the_cookie_and_paths_outside_assign_nothing() {
    let e = experiments(&[("a", 1), ("b", 1)]);
    let p = platform();
    let mut headers = HeaderMap::new();
    let assigned = e.apply(&p, Some("alice"), None, "/shop/x", &mut headers);
    assert!(assigned.unit.set_cookie().is_none());
    assert_eq!(
        &*assigned.exposures[0].variant,
        e.variant_of("checkout", "sub:alice").unwrap()
    );
    let mut other = HeaderMap::new();
    other.insert(REQUEST_HEADER, HeaderValue::from_static("checkout=a"));
    let none = e.apply(&p, None, None, "/api/x", &mut other);
    assert!(none.exposures.is_empty());
    assert!(
        !other.contains_key(REQUEST_HEADER),
        "a client's copy never goes upstream"
    );
}

#[test]
fn forcing_picks_a_declared_variant_and_says_so() {
    let e = experiments(&[("a", 1), ("b", 0)]);
    let p = platform();
    let mut headers = HeaderMap::new();
    headers.insert(FORCE_HEADER, HeaderValue::from_static("checkout=b"));
    let forced = e.apply(&p, Some("u"), None, "/shop/", &mut headers);
    assert_eq!(&*forced.exposures[0].variant, "b");
    assert!(forced.exposures[0].forced);
    assert!(!headers.contains_key(FORCE_HEADER));
    for junk in ["checkout=nope", "checkout=\"b\"", "(((", "other=b"] {
        let mut headers = HeaderMap::new();
        headers.insert(FORCE_HEADER, HeaderValue::from_static(junk));
        let chosen = e.apply(&p, Some("u"), None, "/shop/", &mut headers);
        assert_eq!(&*chosen.exposures[0].variant, "a", "{junk}");
        assert!(!chosen.exposures[0].forced, "{junk}");
    }
}

#[test]
fn bad_configurations_are_refused() {
    let variant = |name: &str, weight| VariantConfig {
        name: name.into(),
        weight,
    };
    let one = |name: &str, variants| ExperimentConfig {
        name: name.into(),
        path: "*".into(),
        variants,
    };
    for bad in [
        vec![one("Checkout", vec![variant("a", 1), variant("b", 1)])],
        vec![one("c", vec![variant("a", 1)])],
        vec![one("c", vec![variant("a", 0), variant("b", 0)])],
        vec![one("c", vec![variant("a", 1), variant("a", 1)])],
        vec![one("c", vec![variant("a b", 1), variant("b", 1)])],
        vec![one(
            "c",
            vec![variant("a", MAX_WEIGHT + 1), variant("b", 1)],
        )],
        vec![
            one("c", vec![variant("a", 1), variant("b", 1)]),
            one("c", vec![variant("a", 1), variant("b", 1)]),
        ],
    ] {
        assert!(Experiments::build(bad).is_err());
    }
    let many = (0..=MAX_EXPERIMENTS)
        .map(|i| one(&format!("e{i}"), vec![variant("a", 1), variant("b", 1)]))
        .collect();
    assert!(Experiments::build(many).is_err());
}

#[test]
fn visitor_ids_that_the_edge_could_not_have_set_are_replaced() {
    let e = experiments(&[("a", 1), ("b", 1)]);
    let p = platform();
    let long = format!("edge_uid={}", "a".repeat(65));
    for cookie in ["edge_uid=", "edge_uid=not-hex!", &long] {
        let mut headers = HeaderMap::new();
        headers.insert(header::COOKIE, HeaderValue::from_str(cookie).unwrap());
        let assigned = e.apply(&p, None, None, "/shop/", &mut headers);
        assert!(assigned.unit.set_cookie().is_some(), "{cookie}");
    }
}

#[test]
fn a_fragment_is_assigned_as_its_page_unless_it_has_its_own_subject() {
    let e = experiments(&[("a", 1), ("b", 1)]);
    let p = platform();
    let page = e.apply(&p, Some("alice"), None, "/home", &mut HeaderMap::new());
    assert!(page.exposures.is_empty(), "the page is in no experiment");
    // A fragment on a public route (no subject of its own) takes the page's subject.
    let fragment = e.apply(
        &p,
        None,
        Some(page.unit.clone()),
        "/shop/news",
        &mut HeaderMap::new(),
    );
    assert_eq!(fragment.unit, page.unit);
    assert_eq!(
        &*fragment.exposures[0].variant,
        e.variant_of("checkout", "sub:alice").unwrap()
    );
    // An anonymous page mints once; its fragments reuse that id instead of minting their own.
    let anonymous = e.apply(&p, None, None, "/home", &mut HeaderMap::new());
    let id = anonymous.unit.minted().expect("minted").to_string();
    let part = e.apply(
        &p,
        None,
        Some(anonymous.unit.clone()),
        "/shop/x",
        &mut HeaderMap::new(),
    );
    assert_eq!(part.unit.minted(), Some(id.as_str()));
    assert_eq!(
        &*part.exposures[0].variant,
        e.variant_of("checkout", &format!("cookie:{id}")).unwrap()
    );
}
