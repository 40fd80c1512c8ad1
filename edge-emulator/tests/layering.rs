//! The emulator's layering, checked from its source: no import cycle between the files of one
//! folder or between top-level folders, and the CDN model (`cdn/`) never imports the wasm host.
//!
//! A node is a module at the granularity of files (`sim::replay`, `wasm::state`; a folder's
//! `mod.rs` is the folder's node, `lib.rs` the crate root). An edge is a reference from one
//! file to another through `use crate::…`, `use super::…`, `use self::…`, a `use` of a child
//! module by name, or a `crate::…` / `super::…` / `self::…` path in code; `pub use` re-exports
//! are followed to the module that defines the item. Comments, strings and `cfg(test)` code are
//! left out: tests may reach across layers.
//!
//! Cycles are looked for among the children of every module: the edge `sim::render::charts →
//! sim::assertions` counts as `render → assertions` among `sim`'s children, and `cdn::recode →
//! wasm` as `cdn → wasm` among the crate's top-level modules. A module's references to its own
//! parent (`super::json_error` from `server::admin`) are not between siblings and never count.
//!
//! Not modelled, on purpose: paths through a `use`d alias (`use crate::wasm;` counts as an edge
//! to `wasm`, and a later `wasm::convert::…` adds nothing), glob re-exports, macros' expansions.

// The checker's parts live in tests/layering/. A `mod` in a test's root file would look in
// tests/ itself, where cargo takes every file for a test target of its own.
#[path = "layering/cycles.rs"]
mod cycles;
#[path = "layering/graph.rs"]
mod graph;
#[path = "layering/source.rs"]
mod source;

use std::collections::BTreeSet;
use std::path::Path;

use graph::{path, Crate, Violation};

/// Violations that exist today and are being fixed on another branch. The check fails on any
/// violation not listed here, and on any listed one that no longer exists: remove its line then,
/// so this list shrinks to empty.
const KNOWN_VIOLATIONS: &[&str] = &[];

/// Imports that must not exist at all, whether or not they close a cycle: (from, to, why).
const FORBIDDEN: &[(&str, &str, &str)] = &[(
    "cdn",
    "wasm",
    "the CDN model is the layer below the wasm host and must not know it",
)];

#[test]
fn layering_has_no_cycles_or_forbidden_imports_beyond_the_known_ones() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let krate = Crate::load(|path| std::fs::read_to_string(src.join(path)).ok())
        .unwrap_or_else(|e| panic!("reading {}: {e}", src.display()));
    // A parser that finds nothing would pass every check: make sure it sees the crate.
    assert!(
        krate.modules.len() >= 30,
        "only {} modules found under {}",
        krate.modules.len(),
        src.display()
    );
    assert!(
        krate
            .edges
            .iter()
            .any(|e| e.from == path("server") && e.to == path("emulator")),
        "the edge server → emulator (use crate::emulator::Emulator) was not found"
    );

    let found = graph::violations(&krate, FORBIDDEN);
    let known: BTreeSet<&str> = KNOWN_VIOLATIONS.iter().copied().collect();
    let mut problems = Vec::new();
    for violation in &found {
        if !known.contains(violation.key().as_str()) {
            problems.push(format!("new violation: {violation}"));
        }
    }
    let found_keys: BTreeSet<String> = found.iter().map(Violation::key).collect();
    for listed in &known {
        if !found_keys.contains(*listed) {
            problems.push(format!(
                "listed in KNOWN_VIOLATIONS but no longer found (fixed? then remove its line): {listed}"
            ));
        }
    }
    assert!(problems.is_empty(), "\n{}\n", problems.join("\n\n"));
}
