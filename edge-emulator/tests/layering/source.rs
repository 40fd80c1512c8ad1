//! Reading Rust source as far as the layering check needs: comments and literals blanked,
//! tokens, `mod` declarations, `use` trees and `crate::` / `super::` / `self::` paths, with
//! `cfg(test)` items skipped.

/// One file's parse: its child file modules, its `use` items and its inline paths.
#[derive(Default)]
pub struct Parsed {
    /// `mod name;` outside `cfg(test)`.
    pub children: Vec<String>,
    /// Every reference: the inline module it sits in (for `super`), the path, whether it comes
    /// from a `use` (where a first segment may name a child module), a `pub use` name (a
    /// re-export) and the line.
    pub references: Vec<Reference>,
}

#[derive(Debug, Clone, PartialEq)]
/// One path to a module of the crate (or another crate: `absolute` tells).
pub struct Reference {
    /// Inline modules (`mod x { … }`) between the file and the reference.
    pub inline: Vec<String>,
    pub segments: Vec<String>,
    /// From a `use`, where a first segment may name a child module.
    pub from_use: bool,
    /// For a `pub use` (any visibility but private): the name it is re-exported under.
    pub reexport: Option<String>,
    pub line: usize,
}

/// `text` with comments and the contents of string and char literals blanked (newlines kept, so
/// lines still count): what is left is code.
fn strip(text: &str) -> String {
    let chars: Vec<char> = text.chars().collect();
    let mut out = String::with_capacity(text.len());
    let blank = |c: char| if c == '\n' { '\n' } else { ' ' };
    let is_ident = |c: char| c.is_alphanumeric() || c == '_';
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        let next = chars.get(i + 1).copied();
        if c == '/' && next == Some('/') {
            while i < chars.len() && chars[i] != '\n' {
                out.push(' ');
                i += 1;
            }
        } else if c == '/' && next == Some('*') {
            let mut depth = 0;
            while i < chars.len() {
                if chars[i] == '/' && chars.get(i + 1) == Some(&'*') {
                    depth += 1;
                    out.push_str("  ");
                    i += 2;
                } else if chars[i] == '*' && chars.get(i + 1) == Some(&'/') {
                    depth -= 1;
                    out.push_str("  ");
                    i += 2;
                    if depth == 0 {
                        break;
                    }
                } else {
                    out.push(blank(chars[i]));
                    i += 1;
                }
            }
        } else if c == 'r'
            && (i == 0
                || !is_ident(chars[i - 1])
                || (chars[i - 1] == 'b' && (i == 1 || !is_ident(chars[i - 2]))))
            && matches!(next, Some('"' | '#'))
            && {
                let hashes = chars[i + 1..].iter().take_while(|&&h| h == '#').count();
                chars.get(i + 1 + hashes) == Some(&'"')
            }
        {
            // A raw string: r"…", r#"…"#, br"…".
            let hashes = chars[i + 1..].iter().take_while(|&&h| h == '#').count();
            let body = i + 2 + hashes;
            let mut end = body;
            while end < chars.len()
                && !(chars[end] == '"'
                    && chars[end + 1..]
                        .iter()
                        .take(hashes)
                        .filter(|&&h| h == '#')
                        .count()
                        == hashes)
            {
                end += 1;
            }
            let end = (end + 1 + hashes).min(chars.len());
            out.extend(chars[i..end].iter().map(|&c| blank(c)));
            i = end;
        } else if c == '"' {
            let mut end = i + 1;
            while end < chars.len() && chars[end] != '"' {
                end += if chars[end] == '\\' { 2 } else { 1 };
            }
            let end = (end + 1).min(chars.len());
            out.extend(chars[i..end].iter().map(|&c| blank(c)));
            i = end;
        } else if c == '\'' && (next == Some('\\') || chars.get(i + 2) == Some(&'\'')) {
            // A char literal ('x', '\n', '\u{..}'); a lifetime or label ('a) has no closing quote.
            let mut end = i + 1;
            while end < chars.len() && chars[end] != '\'' {
                end += if chars[end] == '\\' { 2 } else { 1 };
            }
            let end = (end + 1).min(chars.len());
            out.extend(chars[i..end].iter().map(|&c| blank(c)));
            i = end;
        } else {
            out.push(c);
            i += 1;
        }
    }
    out
}

#[derive(Debug, Clone, PartialEq)]
struct Token {
    text: String,
    line: usize,
}

/// Identifiers (and numbers), `::`, and single punctuation characters.
fn tokens(code: &str) -> Vec<Token> {
    let chars: Vec<char> = code.chars().collect();
    let mut out = Vec::new();
    let (mut i, mut line) = (0, 1);
    while i < chars.len() {
        let c = chars[i];
        if c == '\n' {
            line += 1;
            i += 1;
        } else if c.is_whitespace() {
            i += 1;
        } else if c.is_alphanumeric() || c == '_' {
            let start = i;
            while i < chars.len() && (chars[i].is_alphanumeric() || chars[i] == '_') {
                i += 1;
            }
            out.push(Token {
                text: chars[start..i].iter().collect(),
                line,
            });
        } else if c == ':' && chars.get(i + 1) == Some(&':') {
            out.push(Token {
                text: "::".into(),
                line,
            });
            i += 2;
        } else {
            out.push(Token {
                text: c.to_string(),
                line,
            });
            i += 1;
        }
    }
    out
}

/// One file's child modules and references.
pub fn parse(text: &str) -> Parsed {
    let tokens = tokens(&strip(text));
    let at = |i: usize| tokens.get(i).map_or("", |t| t.text.as_str());
    let is_ident = |s: &str| {
        s.chars()
            .next()
            .is_some_and(|c| c.is_alphabetic() || c == '_')
    };
    let mut parsed = Parsed::default();
    // Inline modules open at a brace depth; `cfg(test)` items are skipped whole.
    let mut inline: Vec<(String, usize)> = Vec::new();
    let mut depth = 0;
    let mut cfg_test = false;
    let mut i = 0;
    while i < tokens.len() {
        match at(i) {
            "#" if at(i + 1) == "[" || (at(i + 1) == "!" && at(i + 2) == "[") => {
                // An attribute: note `cfg(test)` for the item after it.
                let open = if at(i + 1) == "!" { i + 2 } else { i + 1 };
                let close = matching(&tokens, open);
                let inner: Vec<&str> = (open + 1..close).map(at).collect();
                if inner == ["cfg", "(", "test", ")"] {
                    if at(i + 1) == "!" {
                        // `#![cfg(test)]`: the whole file is test code.
                        return Parsed::default();
                    }
                    cfg_test = true;
                }
                i = close + 1;
                continue;
            }
            "{" => {
                depth += 1;
                cfg_test = false;
            }
            "}" => {
                depth -= 1;
                cfg_test = false;
                if inline.last().is_some_and(|(_, d)| *d == depth) {
                    inline.pop();
                }
            }
            "mod" if is_ident(at(i + 1)) => {
                let name = at(i + 1).to_string();
                if cfg_test {
                    i = skip_item(&tokens, i);
                    cfg_test = false;
                    continue;
                }
                if at(i + 2) == ";" && inline.is_empty() {
                    parsed.children.push(name);
                } else if at(i + 2) == "{" {
                    inline.push((name, depth));
                    depth += 1;
                    i += 3;
                    continue;
                }
            }
            "use" if at(i + 1) != "<" => {
                if cfg_test {
                    i = skip_item(&tokens, i);
                    cfg_test = false;
                    continue;
                }
                let public = at(i.wrapping_sub(1)) == "pub"
                    || (at(i.wrapping_sub(1)) == ")" && visibility_before(&tokens, i - 1));
                let mut pos = i + 1;
                let mut items = Vec::new();
                if at(pos) != "::" {
                    use_tree(&tokens, &mut pos, Vec::new(), &mut items);
                }
                for (segments, name) in items {
                    parsed.references.push(Reference {
                        inline: inline.iter().map(|(n, _)| n.clone()).collect(),
                        segments,
                        from_use: true,
                        reexport: if public { name } else { None },
                        line: tokens[i].line,
                    });
                }
                while pos < tokens.len() && at(pos) != ";" {
                    pos += 1;
                }
                i = pos + 1;
                continue;
            }
            "crate" | "super" | "self"
                if at(i + 1) == "::"
                    && at(i.wrapping_sub(1)) != "::"
                    && !in_visibility(&tokens, i) =>
            {
                let mut segments = vec![at(i).to_string()];
                let mut pos = i + 1;
                while at(pos) == "::" && is_ident(at(pos + 1)) {
                    segments.push(at(pos + 1).to_string());
                    pos += 2;
                }
                parsed.references.push(Reference {
                    inline: inline.iter().map(|(n, _)| n.clone()).collect(),
                    segments,
                    from_use: false,
                    reexport: None,
                    line: tokens[i].line,
                });
                i = pos;
                continue;
            }
            // Any other item under `cfg(test)` is skipped whole.
            "fn" | "struct" | "enum" | "impl" | "const" | "static" | "type" | "trait"
            | "macro_rules"
                if cfg_test =>
            {
                i = skip_item(&tokens, i);
                cfg_test = false;
                continue;
            }
            // A `cfg(test)` on a field, a statement or an expression ends with it.
            "," | ";" | "=" => cfg_test = false,
            _ => {}
        }
        i += 1;
    }
    parsed
}

/// The index of the bracket closing the one at `open` (`(`, `[` or `{`).
fn matching(tokens: &[Token], open: usize) -> usize {
    let mut depth = 0;
    for (i, token) in tokens.iter().enumerate().skip(open) {
        match token.text.as_str() {
            "(" | "[" | "{" => depth += 1,
            ")" | "]" | "}" => {
                depth -= 1;
                if depth == 0 {
                    return i;
                }
            }
            _ => {}
        }
    }
    tokens.len()
}

/// The index after the item starting at `start`: through its `;` or its closing brace, whichever
/// comes first at the item's own level.
fn skip_item(tokens: &[Token], start: usize) -> usize {
    let mut i = start;
    while i < tokens.len() {
        match tokens[i].text.as_str() {
            ";" => return i + 1,
            "{" => return matching(tokens, i) + 1,
            "(" | "[" => i = matching(tokens, i) + 1,
            _ => i += 1,
        }
    }
    i
}

/// Whether the `)` at `close` ends a visibility (`pub(crate)`, `pub(in crate::x)`).
fn visibility_before(tokens: &[Token], close: usize) -> bool {
    (0..close)
        .rev()
        .find(|&i| tokens[i].text == "(")
        .is_some_and(|open| open > 0 && tokens[open - 1].text == "pub")
}

/// Whether the path starting at `i` is the module of a `pub(in …)` visibility.
fn in_visibility(tokens: &[Token], i: usize) -> bool {
    i >= 3 && tokens[i - 1].text == "in" && tokens[i - 2].text == "(" && tokens[i - 3].text == "pub"
}

/// Reads a use tree from `pos` (after `use`, or inside braces): each leaf's full path, and the
/// name it brings into scope (`None` for a glob).
fn use_tree(
    tokens: &[Token],
    pos: &mut usize,
    prefix: Vec<String>,
    out: &mut Vec<(Vec<String>, Option<String>)>,
) {
    let at = |i: usize| tokens.get(i).map_or("", |t| t.text.as_str());
    match at(*pos) {
        "{" => {
            *pos += 1;
            while *pos < tokens.len() && at(*pos) != "}" {
                use_tree(tokens, pos, prefix.clone(), out);
                if at(*pos) == "," {
                    *pos += 1;
                }
            }
            *pos += 1;
        }
        "*" => {
            *pos += 1;
            out.push((prefix, None));
        }
        _ => {
            let mut segments = prefix;
            segments.push(at(*pos).to_string());
            *pos += 1;
            while at(*pos) == "::" {
                *pos += 1;
                if matches!(at(*pos), "{" | "*") {
                    use_tree(tokens, pos, segments, out);
                    return;
                }
                segments.push(at(*pos).to_string());
                *pos += 1;
            }
            // `a::b::{self}` names `b`.
            if segments.last().map(String::as_str) == Some("self") && segments.len() > 1 {
                segments.pop();
            }
            let mut name = segments.last().cloned();
            if at(*pos) == "as" {
                name = Some(at(*pos + 1).to_string());
                *pos += 2;
            }
            out.push((segments, name));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strip_blanks_comments_strings_and_chars_but_keeps_lifetimes_and_lines() {
        let code = "let a = \"crate::x\"; // crate::y\n/* crate::z /* nested */ */ let b = 'c';\nfn f<'a>(x: &'a str) -> char { '\\'' }\nlet r = r#\"crate::\"q\"#; crate::w";
        let stripped = strip(code);
        assert!(!stripped.contains("crate::x"));
        assert!(!stripped.contains("crate::y"));
        assert!(!stripped.contains("crate::z"));
        assert!(!stripped.contains("crate::\"q"));
        assert!(stripped.contains("crate::w"));
        assert!(stripped.contains("fn f<'a>(x: &'a str)"));
        assert_eq!(stripped.lines().count(), code.lines().count());
    }

    #[test]
    fn use_trees_give_every_leaf_with_its_name() {
        let tokens = tokens("crate::a::{self, b::{C, D as E}, f::*};");
        let mut items = Vec::new();
        use_tree(&tokens, &mut 0, Vec::new(), &mut items);
        let names: Vec<(String, Option<String>)> =
            items.into_iter().map(|(s, n)| (s.join("::"), n)).collect();
        assert_eq!(
            names,
            [
                ("crate::a".to_string(), Some("a".to_string())),
                ("crate::a::b::C".into(), Some("C".into())),
                ("crate::a::b::D".into(), Some("E".into())),
                ("crate::a::f".into(), None),
            ]
        );
    }
}
