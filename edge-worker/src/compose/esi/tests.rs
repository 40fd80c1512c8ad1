use super::*;
use crate::compose::vars::{Env, Piece, Variable};
use proptest::prelude::*;

/// The page as the edge would write it, each include shown as `[src]` (`[src|alt]`, `!`
/// when it continues on error) and vars as their HTML text.
fn render(page: &str) -> Result<String, ComposeError> {
    let template = parse(page.as_bytes(), 8)?;
    let env = Env {
        cookies: vec![("user".into(), "<b>&bob".into())],
        host: "shop.example".into(),
        ..Env::default()
    };
    let mut out = String::new();
    for node in template.nodes {
        match node {
            Node::Text(range) => out.push_str(&page[range]),
            Node::Include(include) => {
                out.push('[');
                out.push_str(&include.src.url(&env));
                if let Some(alt) = include.alt {
                    out.push('|');
                    out.push_str(&alt.url(&env));
                }
                if include.continue_on_error {
                    out.push('!');
                }
                out.push(']');
            }
            Node::Vars(expr) => out.push_str(&expr.html(&env)),
        }
    }
    Ok(out)
}

#[test]
fn the_esi_subset_table() {
    let cases: &[(&str, &str)] = &[
        ("plain <p>html</p> & < >", "plain <p>html</p> & < >"),
        (r#"a<esi:include src="/f"/>b"#, "a[/f]b"),
        (
            r#"<esi:include src='/f' alt="/g" onerror="continue" />"#,
            "[/f|/g!]",
        ),
        (r#"<ESI:INCLUDE SRC="/f"/>"#, "[/f]"),
        (r#"<esi:include src="/f"></esi:include>x"#, "[/f]x"),
        (
            r#"<esi:include src="/f?a=1&amp;b=2&#33;"/>"#,
            "[/f?a=1&b=2!]",
        ),
        (
            "<esi:remove>fallback <esi:include src=\"/never\"/></esi:remove>!",
            "!",
        ),
        (
            "<!--esi <p><esi:include src=\"/f\"/></p> -->",
            " <p>[/f]</p> ",
        ),
        (
            "<!-- <esi:include src=\"/commented\"/> -->",
            "<!-- <esi:include src=\"/commented\"/> -->",
        ),
        ("<esi:comment text=\"why\"/>x", "x"),
        (
            "<esi:vars>hi $(HTTP_COOKIE{user}) at $(HTTP_HOST)</esi:vars>",
            "hi &lt;b&gt;&amp;bob at shop.example",
        ),
        (
            r#"<esi:include src="/u/$(HTTP_COOKIE{'user'})"/>"#,
            "[/u/%3Cb%3E%26bob]",
        ),
        ("<esi:remove></esi:remove><esi:remove>a</esi:remove>", ""),
        ("<!--esi-->", ""),
        ("<<esi:include src=\"/f\"/>>", "<[/f]>"),
    ];
    for (page, want) in cases {
        assert_eq!(render(page).as_deref(), Ok(*want), "{page}");
    }
}

#[test]
fn malformed_templates_are_refused_with_where_and_why() {
    let cases: &[(&str, &str)] = &[
        ("<esi:include/>", "without src"),
        ("<esi:include src=/f/>", "quoted value"),
        ("<esi:include src=\"/f", "not closed"),
        ("<esi:include src=\"/f\"", "not closed"),
        ("<esi:include src=\"/f\">", "</esi:include>"),
        ("<esi:remove>never closed", "</esi:remove>"),
        ("<!--esi unclosed", "not closed with -->"),
        ("<!--esi <!--esi --> -->", "inside"),
        ("<!-- unclosed", "not closed"),
        ("</esi:remove>", "closes nothing"),
        (
            "<esi:choose><esi:when test=\"1\"/></esi:choose>",
            "not supported",
        ),
        ("<esi:vars>$(NOPE)</esi:vars>", "not a variable"),
        ("<esi:vars>$(HTTP_COOKIE{a}</esi:vars>", "not closed with )"),
        (
            "<esi:vars><esi:include src=\"/f\"/></esi:vars>",
            "inside <esi:vars>",
        ),
        ("<esi:vars>never", "</esi:vars>"),
    ];
    for (page, why) in cases {
        match parse(page.as_bytes(), 8) {
            Err(ComposeError::Malformed { why: said, .. }) => {
                assert!(said.contains(why), "{page}: {said}")
            }
            other => panic!("{page}: {other:?}"),
        }
    }
}

#[test]
fn includes_beyond_the_limit_refuse_the_page() {
    let page = "<esi:include src=\"/f\"/>".repeat(9);
    assert_eq!(
        parse(page.as_bytes(), 8),
        Err(ComposeError::TooManyIncludes { limit: 8 })
    );
    assert!(parse(&page.as_bytes()[..page.len() / 9 * 8], 8).is_ok());
}

#[test]
fn variables_parse_into_values() {
    let template = parse(
        b"<esi:include src=\"/s?c=$(GEO{country_code})&sub=$(JWT{sub})\"/>",
        8,
    )
    .unwrap();
    let Node::Include(include) = &template.nodes[0] else {
        panic!("{template:?}")
    };
    assert_eq!(
        include.src.0,
        vec![
            Piece::Literal("/s?c=".into()),
            Piece::Var(Variable::Country),
            Piece::Literal("&sub=".into()),
            Piece::Var(Variable::Claim("sub".into())),
        ]
    );
}

proptest! {
    /// Any bytes are composed or refused, never a panic; text nodes always lie in the page.
    #[test]
    fn any_bytes_are_parsed_or_refused(page in proptest::collection::vec(any::<u8>(), 0..512)) {
        if let Ok(template) = parse(&page, 8) {
            for node in template.nodes {
                if let Node::Text(range) = node {
                    prop_assert!(range.end <= page.len() && range.start < range.end);
                }
            }
        }
    }

    /// The same for pages made of ESI-looking pieces, which reach the deeper paths.
    #[test]
    fn esi_shaped_pages_are_parsed_or_refused(pieces in proptest::collection::vec(
        prop::sample::select(vec![
            "<esi:include src=\"/a\"/>", "<esi:include", " src='", "\"", "/>", ">", "<",
            "<esi:remove>", "</esi:remove>", "<!--esi", "-->", "<!--", "<esi:vars>",
            "</esi:vars>", "$(HTTP_COOKIE{a})", "$(", "&amp;", "&#x", "text", "<esi:comment/>",
            "</esi:include>", "é",
        ]), 0..24)) {
        let page = pieces.concat();
        let _ = parse(page.as_bytes(), 8);
    }
}
