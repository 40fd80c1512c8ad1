//! Arbitrary bytes as an edge template: `compose::esi::parse` (ESI) and `compose::json::parse`
//! (JSON placeholders) either refuse them or give a template whose text ranges lie inside the
//! input and in order, with no more includes than the limit; variables render without panic.
//!
//! Input: byte 0 picks ESI or JSON and the include limit, the rest is the template.
//!
//! Run: `edge-worker/fuzz/run.sh esi_template 600` (stable), or `cargo +nightly fuzz run esi_template`.

#![no_main]

use edge_worker::compose::esi::{self, Node};
use edge_worker::compose::json;
use edge_worker::compose::vars::Env;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&pick, page)) = data.split_first() else {
        return;
    };
    let limit = usize::from(pick >> 1) % 16 + 1;
    let env = Env {
        cookies: vec![("a".into(), "<&>\"'".into())],
        host: "h.example".into(),
        ..Env::default()
    };
    if pick & 1 == 0 {
        let Ok(template) = esi::parse(page, limit) else {
            return;
        };
        let mut end = 0;
        let mut includes = 0;
        for node in &template.nodes {
            match node {
                Node::Text(range) => {
                    assert!(range.start >= end && range.start < range.end && range.end <= page.len());
                    end = range.end;
                }
                Node::Include(include) => {
                    includes += 1;
                    let _ = include.src.url(&env);
                }
                Node::Vars(expr) => {
                    // A variable's value is escaped: the cookie's `<` never appears raw.
                    let html = expr.html(&env);
                    let literal_lt: usize = expr
                        .0
                        .iter()
                        .map(|p| match p {
                            edge_worker::compose::vars::Piece::Literal(t) => t.matches('<').count(),
                            _ => 0,
                        })
                        .sum();
                    assert_eq!(html.matches('<').count(), literal_lt);
                }
            }
        }
        assert!(includes <= limit);
    } else if let Ok(template) = json::parse(page, limit) {
        assert!(template.includes.len() <= limit);
        let filled = json::fill(template.document, vec![None; template.includes.len()]);
        let _ = serde_json::to_vec(&filled).unwrap();
    }
});
