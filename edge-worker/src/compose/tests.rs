use super::*;

fn part(ttl: Option<i64>, private: bool, etag: Option<&str>) -> PartHead {
    PartHead {
        ttl,
        private,
        etag: etag.and_then(EntityTag::parse),
    }
}

#[test]
fn surrogate_control_names_the_template_kind() {
    let kind = |value: &str| {
        let mut headers = HeaderMap::new();
        headers.insert(SURROGATE_CONTROL, HeaderValue::from_str(value).unwrap());
        template_kind(&headers)
    };
    assert_eq!(kind(r#"content="ESI/1.0""#), Some(TemplateKind::Esi));
    assert_eq!(
        kind(r#"max-age=60, content="ESI/1.0 ESI-INV/1.0""#),
        Some(TemplateKind::Esi)
    );
    assert_eq!(kind(r#"content="EDGE-JSON/1.0""#), Some(TemplateKind::Json));
    assert_eq!(kind("max-age=60"), None);
    assert_eq!(template_kind(&HeaderMap::new()), None);
}

#[test]
fn the_composed_head_is_as_fresh_as_its_stalest_part_and_private_if_any_part_is() {
    let mut template = HeaderMap::new();
    template.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=600"),
    );
    template.insert(
        SURROGATE_CONTROL,
        HeaderValue::from_static("content=\"ESI/1.0\""),
    );
    template.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/html"));
    template.insert(header::SET_COOKIE, HeaderValue::from_static("a=1"));
    let head = composed_head(
        &template,
        &[
            part(Some(600), false, Some("\"t\"")),
            part(Some(30), false, Some("\"f\"")),
        ],
    );
    assert_eq!(head[header::CACHE_CONTROL], "public, max-age=30");
    assert!(!head.contains_key(SURROGATE_CONTROL) && !head.contains_key(header::SET_COOKIE));
    assert_eq!(head[header::CONTENT_TYPE], "text/html");
    let private = composed_head(
        &template,
        &[part(Some(600), false, None), part(Some(60), true, None)],
    );
    assert_eq!(private[header::CACHE_CONTROL], "private, max-age=60");
    assert!(
        !private.contains_key(header::ETAG),
        "a part without a validator"
    );
    let unstored = composed_head(
        &template,
        &[part(Some(600), false, None), part(None, false, None)],
    );
    assert_eq!(unstored[header::CACHE_CONTROL], "public, no-cache");
}

#[test]
fn the_composed_etag_follows_the_parts_and_is_strong_only_if_all_are() {
    let strong = [
        part(None, false, Some("\"a\"")),
        part(None, false, Some("\"b\"")),
    ];
    let tag = composed_etag(&strong).unwrap();
    assert!(tag.starts_with("\"c"), "{tag}");
    let changed = [
        part(None, false, Some("\"a\"")),
        part(None, false, Some("\"c\"")),
    ];
    assert_ne!(composed_etag(&changed).unwrap(), tag);
    // Moving bytes between parts' tags changes the hash (lengths are hashed).
    let shifted = [
        part(None, false, Some("\"ab\"")),
        part(None, false, Some("\"\"")),
    ];
    assert_ne!(composed_etag(&shifted).unwrap(), tag);
    let weak = [
        part(None, false, Some("\"a\"")),
        part(None, false, Some("W/\"b\"")),
    ];
    assert!(composed_etag(&weak).unwrap().starts_with("W/\"c"));
}

#[test]
fn includes_go_only_to_the_pages_host_or_an_allowed_one() {
    let rules = CompositionConfig {
        allow_hosts: vec!["CDN.example".into()],
        ..Default::default()
    }
    .build()
    .unwrap();
    let page: Uri = "https://shop.example/pages/home?x=1".parse().unwrap();
    let url = |src: &str| rules.fragment_url(&page, src).map(|u| u.to_string());
    assert_eq!(url("/f/a").unwrap(), "https://shop.example/f/a");
    assert_eq!(
        url("part?b=2").unwrap(),
        "https://shop.example/pages/part?b=2"
    );
    assert_eq!(
        url("https://cdn.example/x").unwrap(),
        "https://cdn.example/x"
    );
    assert_eq!(url("//cdn.example/x").unwrap(), "https://cdn.example/x");
    for bad in [
        "https://evil.example/",
        "//evil.example/x",
        "http://169.254.169.254/latest",
        "https://shop.example:8443/x",
    ] {
        assert!(
            matches!(url(bad), Err(ComposeError::Forbidden { .. })),
            "{bad}"
        );
    }
}

#[test]
fn composition_limits_are_checked() {
    for bad in [
        CompositionConfig {
            max_depth: 0,
            ..Default::default()
        },
        CompositionConfig {
            max_depth: MAX_DEPTH + 1,
            ..Default::default()
        },
        CompositionConfig {
            max_includes: 0,
            ..Default::default()
        },
        CompositionConfig {
            max_fragment_bytes: MAX_TEMPLATE_BYTES + 1,
            ..Default::default()
        },
        CompositionConfig {
            fragment_timeout_ms: 0,
            ..Default::default()
        },
    ] {
        assert!(bad.build().is_err());
    }
}

#[test]
fn json_placeholders_are_found_in_order_and_filled() {
    let template = json::parse(
        br#"{"a": {"$include": "/x"}, "b": [1, {"$include": "/y", "$onerror": "continue"}], "c": {"d": 2}}"#,
        8,
    )
    .unwrap();
    assert_eq!(template.includes.len(), 2);
    assert!(!template.includes[0].continue_on_error && template.includes[1].continue_on_error);
    let filled = json::fill(
        template.document,
        vec![Some(serde_json::json!({"n": 1})), None],
    );
    assert_eq!(
        filled,
        serde_json::json!({"a": {"n": 1}, "b": [1, null], "c": {"d": 2}})
    );
    for bad in [
        &br#"{"a": {"$include": "/x", "$inclde": 1}}"#[..],
        br#"{"a": {"$include": 7}}"#,
        br#"{"a": {"$include": "/x", "$onerror": "stop"}}"#,
        br#"{"a": "#,
    ] {
        assert!(
            json::parse(bad, 8).is_err(),
            "{}",
            String::from_utf8_lossy(bad)
        );
    }
    let many = format!("[{}]", [r#"{"$include": "/x"}"#; 9].join(","));
    assert_eq!(
        json::parse(many.as_bytes(), 8).unwrap_err(),
        ComposeError::TooManyIncludes { limit: 8 }
    );
}
