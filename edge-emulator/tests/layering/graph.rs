//! The import graph between the crate's file modules, and the rules checked on it: no cycle
//! among the children of any module, and no import a rule forbids.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use super::cycles::{cycle_through, cycles};
use super::source::{parse, Parsed, Reference};

/// A module path, `[]` for the crate root.
pub type ModPath = Vec<String>;

pub fn path(text: &str) -> ModPath {
    if text == "crate" {
        return Vec::new();
    }
    text.split("::").map(str::to_string).collect()
}

pub fn show(module: &[String]) -> String {
    if module.is_empty() {
        "crate".to_string()
    } else {
        module.join("::")
    }
}

/// One reference from a file to another module's file.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Edge {
    pub from: ModPath,
    pub to: ModPath,
    /// Where: the file, relative to `src`, and the line.
    pub file: String,
    pub line: usize,
    /// The path as written (`crate::wasm::convert::stored_head_from_wit`).
    pub text: String,
}

impl fmt::Display for Edge {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} → {} ({}:{}: {})",
            show(&self.from),
            show(&self.to),
            self.file,
            self.line,
            self.text
        )
    }
}

/// The crate as the check sees it: its file modules and the references between them.
pub struct Crate {
    /// Every file module, with its file relative to `src`.
    pub modules: BTreeMap<ModPath, String>,
    pub edges: Vec<Edge>,
}

impl Crate {
    /// Reads the module tree from `lib.rs` through `mod name;` declarations; `read` takes a path
    /// relative to `src`.
    pub fn load(read: impl Fn(&str) -> Option<String>) -> Result<Crate, String> {
        let mut modules = BTreeMap::new();
        let mut parsed = BTreeMap::new();
        let mut queue = vec![(Vec::new(), "lib.rs".to_string())];
        while let Some((module, file)) = queue.pop() {
            let text = read(&file).ok_or_else(|| format!("cannot read {file}"))?;
            let this = parse(&text);
            let dir = module_dir(&file);
            for child in &this.children {
                let flat = format!("{dir}{child}.rs");
                let nested = format!("{dir}{child}/mod.rs");
                let child_file = if read(&flat).is_some() {
                    flat
                } else if read(&nested).is_some() {
                    nested
                } else {
                    return Err(format!("{file}: no file for `mod {child};`"));
                };
                let mut child_path = module.clone();
                child_path.push(child.clone());
                queue.push((child_path, child_file));
            }
            modules.insert(module.clone(), file);
            parsed.insert(module, this);
        }
        let reexports = reexports(&modules, &parsed);
        let mut edges = Vec::new();
        for (module, this) in &parsed {
            for reference in &this.references {
                let Some(target) = absolute(&modules, module, reference) else {
                    continue;
                };
                let to = resolve(&modules, &reexports, target, 0);
                if to != *module {
                    edges.push(Edge {
                        from: module.clone(),
                        to,
                        file: modules[module].clone(),
                        line: reference.line,
                        text: reference.segments.join("::"),
                    });
                }
            }
        }
        edges.sort();
        Ok(Crate { modules, edges })
    }
}

/// The folder, relative to `src` and ending in `/` (or empty), where `file`'s child modules are.
fn module_dir(file: &str) -> String {
    let (dir, name) = file.rsplit_once('/').unwrap_or(("", file));
    let dir = if dir.is_empty() {
        String::new()
    } else {
        format!("{dir}/")
    };
    match name {
        "lib.rs" | "main.rs" | "mod.rs" => dir,
        _ => format!("{dir}{}/", name.trim_end_matches(".rs")),
    }
}

/// The absolute path a reference names, or `None` for another crate's.
fn absolute(
    modules: &BTreeMap<ModPath, String>,
    file_module: &ModPath,
    reference: &Reference,
) -> Option<ModPath> {
    let mut context: ModPath = file_module.clone();
    context.extend(reference.inline.iter().cloned());
    let mut segments = reference.segments.iter().peekable();
    let mut base = match segments.peek().map(|s| s.as_str()) {
        Some("crate") => {
            segments.next();
            Vec::new()
        }
        Some("self") => {
            segments.next();
            context
        }
        Some("super") => {
            let mut base = context;
            while segments.peek().map(|s| s.as_str()) == Some("super") {
                segments.next();
                base.pop()?;
            }
            base
        }
        Some(first) if reference.from_use => {
            // A `use` may start at a child module of the module it is in (`pub use
            // engine::GuestLimits;` in `wasm/mod.rs`); any other first name is another crate.
            let mut child = context.clone();
            child.push(first.to_string());
            if !modules.contains_key(&child) {
                return None;
            }
            context
        }
        _ => return None,
    };
    base.extend(segments.cloned());
    Some(base)
}

/// Re-exports per module: name → the absolute path it stands for.
fn reexports(
    modules: &BTreeMap<ModPath, String>,
    parsed: &BTreeMap<ModPath, Parsed>,
) -> BTreeMap<ModPath, BTreeMap<String, ModPath>> {
    let mut out: BTreeMap<ModPath, BTreeMap<String, ModPath>> = BTreeMap::new();
    for (module, this) in parsed {
        for reference in &this.references {
            let (Some(name), true) = (&reference.reexport, reference.inline.is_empty()) else {
                continue;
            };
            if let Some(target) = absolute(modules, module, reference) {
                out.entry(module.clone())
                    .or_default()
                    .insert(name.clone(), target);
            }
        }
    }
    out
}

/// The file module that defines what `target` names: its longest prefix that is a file module,
/// followed through that module's re-exports.
fn resolve(
    modules: &BTreeMap<ModPath, String>,
    reexports: &BTreeMap<ModPath, BTreeMap<String, ModPath>>,
    target: ModPath,
    depth: usize,
) -> ModPath {
    let known = (0..=target.len())
        .rev()
        .find(|&n| modules.contains_key(&target[..n]))
        .unwrap_or(0);
    let module = target[..known].to_vec();
    let rest = &target[known..];
    let via = rest
        .first()
        .and_then(|name| reexports.get(&module)?.get(name));
    match via {
        Some(through) if depth < 8 => {
            let mut next = through.clone();
            next.extend(rest[1..].iter().cloned());
            if next == target {
                module
            } else {
                resolve(modules, reexports, next, depth + 1)
            }
        }
        _ => module,
    }
}

/// A broken rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Violation {
    /// Modules, children of one module, that import one another; `path` is one cycle through
    /// them and `edges` the references behind each step.
    Cycle {
        members: Vec<ModPath>,
        path: Vec<ModPath>,
        edges: Vec<Edge>,
    },
    /// An import a rule forbids.
    Forbidden { edge: Edge, why: &'static str },
}

impl Violation {
    /// What `KNOWN_VIOLATIONS` lists: stable across line moves and parse order.
    pub fn key(&self) -> String {
        match self {
            Violation::Cycle { members, .. } => format!(
                "cycle among {}",
                members
                    .iter()
                    .map(|m| show(m))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            Violation::Forbidden { edge, .. } => {
                format!("{} imports {}", show(&edge.from), show(&edge.to))
            }
        }
    }
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "{}", self.key())?;
        match self {
            Violation::Cycle { path, edges, .. } => {
                let steps: Vec<String> = path.iter().map(|m| show(m)).collect();
                writeln!(f, "  cycle: {}", steps.join(" → "))?;
                for edge in edges {
                    writeln!(f, "    {edge}")?;
                }
            }
            Violation::Forbidden { edge, why } => {
                writeln!(f, "  {edge}")?;
                writeln!(f, "  ({why})")?;
            }
        }
        Ok(())
    }
}

/// Every cycle among siblings and every import `forbidden` names (from, to, why), in a stable
/// order.
pub fn violations(krate: &Crate, forbidden: &[(&str, &str, &'static str)]) -> Vec<Violation> {
    let mut out = Vec::new();
    let parents: BTreeSet<ModPath> = krate
        .modules
        .keys()
        .filter(|m| !m.is_empty())
        .map(|m| m[..m.len() - 1].to_vec())
        .collect();
    for parent in &parents {
        // Each edge between two different children of `parent` (or their descendants), as an
        // edge between those children.
        let child = |m: &ModPath| -> Option<ModPath> {
            (m.len() > parent.len() && m.starts_with(parent)).then(|| m[..=parent.len()].to_vec())
        };
        let mut graph: BTreeMap<ModPath, BTreeMap<ModPath, Vec<Edge>>> = BTreeMap::new();
        for edge in &krate.edges {
            if let (Some(a), Some(b)) = (child(&edge.from), child(&edge.to)) {
                if a != b {
                    graph
                        .entry(a)
                        .or_default()
                        .entry(b)
                        .or_default()
                        .push(edge.clone());
                }
            }
        }
        let plain: BTreeMap<ModPath, BTreeSet<ModPath>> = graph
            .iter()
            .map(|(a, targets)| (a.clone(), targets.keys().cloned().collect()))
            .collect();
        for members in cycles(&plain) {
            let path = cycle_through(&plain, &members);
            let edges = path
                .windows(2)
                .flat_map(|step| graph[&step[0]][&step[1]].iter().cloned())
                .collect();
            out.push(Violation::Cycle {
                members,
                path,
                edges,
            });
        }
    }
    for edge in &krate.edges {
        for &(from, to, why) in forbidden {
            if edge.from.starts_with(&path(from)) && edge.to.starts_with(&path(to)) {
                out.push(Violation::Forbidden {
                    edge: edge.clone(),
                    why,
                });
            }
        }
    }
    // One forbidden entry per pair of modules: the first reference stands for the others.
    let mut seen = BTreeSet::new();
    out.retain(|v| seen.insert(v.key()));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The rule the examples break.
    const RULES: &[(&str, &str, &str)] = &[("cdn", "wasm", "the model must not know the host")];

    /// A crate made of `(file, text)` pairs.
    fn sample(files: &[(&str, &str)]) -> Crate {
        let files: BTreeMap<String, String> = files
            .iter()
            .map(|(f, t)| (f.to_string(), t.to_string()))
            .collect();
        Crate::load(|path| files.get(path).cloned()).expect("the sample crate loads")
    }

    fn edge_list(krate: &Crate) -> Vec<String> {
        krate
            .edges
            .iter()
            .map(|e| format!("{} → {}", show(&e.from), show(&e.to)))
            .collect()
    }

    fn keys(krate: &Crate) -> Vec<String> {
        violations(krate, RULES)
            .iter()
            .map(Violation::key)
            .collect()
    }

    #[test]
    fn references_resolve_to_file_modules_through_super_inline_modules_and_reexports() {
        let krate = sample(&[
            ("lib.rs", "pub mod a; pub mod b; mod c; pub use a::inner::Thing;"),
            ("a/mod.rs", "pub mod inner; pub use inner::Widget;"),
            ("a/inner.rs", "pub struct Thing; pub struct Widget;"),
            (
                "b.rs",
                "use crate::a::Widget;\nfn f() { let _ = crate::Thing; }\nmod nested { use super::super::c::D; }",
            ),
            ("c.rs", "pub struct D; fn g() -> super::b::X { todo!() } // crate::a"),
        ]);
        assert_eq!(
            edge_list(&krate),
            [
                "crate → a::inner", // the root's own re-exports
                "a → a::inner",
                "b → a::inner",
                "b → a::inner",
                "b → c",
                "c → b",
            ]
        );
        assert_eq!(krate.edges[2].line, 1);
        assert_eq!(krate.edges[3].line, 2);
    }

    #[test]
    fn cfg_test_code_and_other_crates_are_left_out() {
        let krate = sample(&[
            ("lib.rs", "mod a; mod b;\n#[cfg(test)]\nmod tests;"),
            ("a.rs", "use std::fmt; use serde::Serialize;\n#[cfg(test)]\nmod tests { use crate::b::X; }\n#[cfg(test)]\nuse crate::b::Y;\npub fn f() {}"),
            ("b.rs", "pub struct X; pub struct Y; use crate::a::f;"),
        ]);
        assert_eq!(edge_list(&krate), ["b → a"]);
        assert!(!krate.modules.contains_key(&path("tests")));
    }

    #[test]
    fn a_cycle_between_siblings_is_found_and_printed() {
        let krate = sample(&[
            ("lib.rs", "mod w;"),
            (
                "w/mod.rs",
                "mod engine; mod state; mod isolate; mod convert;",
            ),
            ("w/engine.rs", "use super::state::S;"),
            (
                "w/state.rs",
                "use super::isolate::I; use super::convert::c;",
            ),
            ("w/isolate.rs", "use crate::w::engine::E;"),
            ("w/convert.rs", "pub fn c() {}"),
        ]);
        assert_eq!(
            keys(&krate),
            ["cycle among w::engine, w::isolate, w::state"]
        );
        let shown = violations(&krate, RULES)[0].to_string();
        assert!(
            shown.contains("cycle: w::engine → w::state → w::isolate → w::engine"),
            "{shown}"
        );
        assert!(
            shown.contains("w/isolate.rs:1: crate::w::engine::E"),
            "{shown}"
        );
    }

    #[test]
    fn a_cycle_between_folders_counts_their_files_and_forbidden_imports_are_named() {
        let krate = sample(&[
            ("lib.rs", "mod cdn; mod wasm; mod sim;"),
            ("cdn/mod.rs", "mod purge;"),
            ("cdn/purge.rs", "fn f() { crate::wasm::convert::head(); }"),
            ("wasm/mod.rs", "mod convert; use crate::cdn::purge;"),
            ("wasm/convert.rs", "pub fn head() {}"),
            (
                "sim/mod.rs",
                "use crate::wasm::convert::head; use crate::cdn::purge;",
            ),
        ]);
        assert_eq!(
            keys(&krate),
            ["cycle among cdn, wasm", "cdn::purge imports wasm::convert"]
        );
    }

    #[test]
    fn no_cycle_no_violation() {
        let krate = sample(&[
            ("lib.rs", "mod a; mod b; mod c;"),
            ("a.rs", "use crate::b::X; use crate::c::Y;"),
            ("b.rs", "use crate::c::Y; pub struct X;"),
            ("c.rs", "pub struct Y; fn f() { super::a::g(); }"),
        ]);
        assert_eq!(keys(&krate), ["cycle among a, b, c"]);
        let krate = sample(&[
            ("lib.rs", "mod a; mod b; mod c;"),
            ("a.rs", "use crate::b::X; use crate::c::Y;"),
            ("b.rs", "use crate::c::Y; pub struct X;"),
            ("c.rs", "pub struct Y;"),
        ]);
        assert!(keys(&krate).is_empty());
    }

    #[test]
    fn a_module_using_its_parent_is_no_cycle() {
        let krate = sample(&[
            ("lib.rs", "mod server;"),
            (
                "server/mod.rs",
                "mod admin; use admin::routes; pub fn json_error() {}",
            ),
            (
                "server/admin.rs",
                "use super::json_error; pub fn routes() {}",
            ),
        ]);
        assert_eq!(
            edge_list(&krate),
            ["server → server::admin", "server::admin → server"]
        );
        assert!(keys(&krate).is_empty());
    }
}
