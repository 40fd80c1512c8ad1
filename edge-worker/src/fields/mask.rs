//! The `?fields=` mask: Google's partial-response grammar, parsed into a canonical tree.
//!
//! ```text
//! fields    := selection ( ',' selection )*
//! selection := path ( '(' fields ')' )?
//! path      := name ( ('/' | '.') name )*
//! name      := '*' | one or more characters other than , / . ( ) * and whitespace
//! ```
//! Whitespace is allowed around every token. Written by hand because no crate implements this
//! grammar; it is small and every error must say where and what was expected.

use std::collections::BTreeMap;
use std::fmt;

/// Longest mask accepted, in bytes.
pub const MAX_MASK_LEN: usize = 2048;
/// Most names a mask may contain.
pub const MAX_FIELDS: usize = 128;
/// Deepest nesting a mask may describe (`a/b/c` is 3).
pub const MAX_DEPTH: usize = 16;

/// What to keep of one JSON value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Selection {
    /// The whole value.
    All,
    /// Of an object, only these members; applied to each element of an array.
    Members(Members),
}

/// The selected members of an object. `*` selects every member with its selection.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Members {
    named: BTreeMap<String, Selection>,
    star: Option<Box<Selection>>,
}

/// A parsed, canonical mask. Two masks that select the same thing are equal and print the same.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mask {
    /// Always `Selection::Members`: a document is an object (or an array of them).
    root: Selection,
}

/// A syntax error in a mask: where (byte offset) and what was expected there.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid fields mask at position {position}: expected {expected}, found {found}")]
pub struct MaskError {
    pub position: usize,
    pub expected: &'static str,
    pub found: String,
}

impl Selection {
    fn merge(self, other: Selection) -> Selection {
        match (self, other) {
            (Selection::All, _) | (_, Selection::All) => Selection::All,
            (Selection::Members(a), Selection::Members(b)) => Selection::Members(a.merge(b)),
        }
    }
}

impl Members {
    fn insert(&mut self, name: &str, selection: Selection) {
        if name == "*" {
            let merged = match self.star.take() {
                Some(old) => old.merge(selection),
                None => selection,
            };
            self.star = Some(Box::new(merged));
            return;
        }
        let merged = match self.named.remove(name) {
            Some(old) => old.merge(selection),
            None => selection,
        };
        self.named.insert(name.to_string(), merged);
    }

    fn merge(mut self, other: Members) -> Members {
        for (name, selection) in other.named {
            self.insert(&name, selection);
        }
        if let Some(star) = other.star {
            self.insert("*", *star);
        }
        self
    }

    /// What to keep of the member `name`, or `None` to drop it. A member named explicitly also
    /// gets what `*` selects (`*(id),owner(name)` keeps `owner.id` and `owner.name`).
    pub fn select(&self, name: &str) -> Option<Selection> {
        match (self.named.get(name), &self.star) {
            (Some(selection), None) => Some(selection.clone()),
            (Some(selection), Some(star)) => Some(selection.clone().merge((**star).clone())),
            (None, Some(star)) => Some((**star).clone()),
            (None, None) => None,
        }
    }

    /// Like [`select`](Self::select) without cloning, for the common case of no `*`.
    pub fn select_ref(&self, name: &str) -> Option<&Selection> {
        self.named.get(name).or(self.star.as_deref())
    }

    /// Whether [`select_ref`](Self::select_ref) is exact for every name (no `*` to merge in).
    pub fn has_star(&self) -> bool {
        self.star.is_some()
    }
}

impl Mask {
    pub fn parse(text: &str) -> Result<Mask, MaskError> {
        if text.len() > MAX_MASK_LEN {
            return Err(MaskError {
                position: MAX_MASK_LEN,
                expected: "a shorter mask",
                found: format!("{} bytes (limit {MAX_MASK_LEN})", text.len()),
            });
        }
        let mut parser = Parser {
            text,
            pos: 0,
            names: 0,
        };
        let root = parser.fields(0)?;
        parser.skip_ws();
        if parser.pos < text.len() {
            return Err(parser.error("',' or the end of the mask"));
        }
        Ok(Mask {
            root: Selection::Members(root),
        })
    }

    /// What the mask keeps of the whole document.
    pub fn selection(&self) -> &Selection {
        &self.root
    }
}

impl fmt::Display for Selection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Selection::All => f.write_str("*"),
            Selection::Members(members) => members.fmt(f),
        }
    }
}

impl fmt::Display for Members {
    /// The canonical form: members sorted by name, `*` last, nested selections in parentheses.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut first = true;
        let star = self.star.as_deref().map(|s| ("*", s));
        for (name, selection) in self.named.iter().map(|(n, s)| (n.as_str(), s)).chain(star) {
            if !first {
                f.write_str(",")?;
            }
            first = false;
            f.write_str(name)?;
            if let Selection::Members(members) = selection {
                write!(f, "({members})")?;
            }
        }
        Ok(())
    }
}

impl fmt::Display for Mask {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.root.fmt(f)
    }
}

struct Parser<'a> {
    text: &'a str,
    pos: usize,
    names: usize,
}

fn is_name_char(c: char) -> bool {
    !matches!(c, ',' | '/' | '.' | '(' | ')' | '*') && !c.is_whitespace()
}

impl Parser<'_> {
    fn peek(&self) -> Option<char> {
        self.text[self.pos..].chars().next()
    }

    fn skip_ws(&mut self) {
        while let Some(c) = self.peek().filter(|c| c.is_whitespace()) {
            self.pos += c.len_utf8();
        }
    }

    fn error(&self, expected: &'static str) -> MaskError {
        let found = match self.peek() {
            Some(c) => format!("{c:?}"),
            None => "the end of the mask".to_string(),
        };
        MaskError {
            position: self.pos,
            expected,
            found,
        }
    }

    fn fields(&mut self, depth: usize) -> Result<Members, MaskError> {
        let mut members = Members::default();
        loop {
            self.selection(depth, &mut members)?;
            self.skip_ws();
            if self.peek() == Some(',') {
                self.pos += 1;
            } else {
                return Ok(members);
            }
        }
    }

    /// One `path(sub)` item, inserted into `into`.
    fn selection(&mut self, depth: usize, into: &mut Members) -> Result<(), MaskError> {
        let mut path = vec![self.name()?];
        loop {
            self.skip_ws();
            match self.peek() {
                Some('/' | '.') => {
                    self.pos += 1;
                    path.push(self.name()?);
                }
                _ => break,
            }
        }
        let depth = depth + path.len();
        if depth > MAX_DEPTH {
            return Err(MaskError {
                position: self.pos,
                expected: "a shallower mask",
                found: format!("nesting depth {depth} (limit {MAX_DEPTH})"),
            });
        }
        let mut selection = if self.peek() == Some('(') {
            self.pos += 1;
            let sub = self.fields(depth)?;
            self.skip_ws();
            if self.peek() != Some(')') {
                return Err(self.error("',' or ')'"));
            }
            self.pos += 1;
            Selection::Members(sub)
        } else {
            Selection::All
        };
        let (first, rest) = path.split_first().expect("a path has at least one name");
        for name in rest.iter().rev() {
            let mut members = Members::default();
            members.insert(name, selection);
            selection = Selection::Members(members);
        }
        into.insert(first, selection);
        Ok(())
    }

    fn name(&mut self) -> Result<String, MaskError> {
        self.skip_ws();
        self.names += 1;
        if self.names > MAX_FIELDS {
            return Err(MaskError {
                position: self.pos,
                expected: "fewer field names",
                found: format!("more than {MAX_FIELDS}"),
            });
        }
        if self.peek() == Some('*') {
            self.pos += 1;
            return Ok("*".to_string());
        }
        let start = self.pos;
        while let Some(c) = self.peek().filter(|&c| is_name_char(c)) {
            self.pos += c.len_utf8();
        }
        if self.pos == start {
            return Err(self.error("a field name or '*'"));
        }
        Ok(self.text[start..self.pos].to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn canonical(text: &str) -> String {
        Mask::parse(text).unwrap().to_string()
    }

    #[test]
    fn google_grammar_in_canonical_form() {
        let cases = [
            ("id,name,price", "id,name,price"),
            ("price , id,name", "id,name,price"),
            ("b,a,a", "a,b"),
            ("owner/name", "owner(name)"),
            ("owner.name", "owner(name)"),
            ("owner/name,owner.id", "owner(id,name)"),
            ("items(id,name),total", "items(id,name),total"),
            ("items(id),items(name)", "items(id,name)"),
            ("items(id),items", "items"),
            ("a/b/c(d,e)", "a(b(c(d,e)))"),
            ("*", "*"),
            ("*(id),owner(name)", "owner(name),*(id)"),
            (" items ( id , name ) ", "items(id,name)"),
            ("größe", "größe"),
        ];
        for (input, expected) in cases {
            assert_eq!(canonical(input), expected, "mask {input:?}");
        }
    }

    #[test]
    fn syntax_errors_name_the_position_and_what_was_expected() {
        let cases = [
            ("", 0, "a field name or '*'"),
            ("a,", 2, "a field name or '*'"),
            ("a(b", 3, "',' or ')'"),
            ("a)", 1, "',' or the end of the mask"),
            ("a//b", 2, "a field name or '*'"),
            ("a(,b)", 2, "a field name or '*'"),
        ];
        for (input, position, expected) in cases {
            let error = Mask::parse(input).unwrap_err();
            assert_eq!(
                (error.position, error.expected),
                (position, expected),
                "{input:?}"
            );
        }
    }

    #[test]
    fn limits_are_errors() {
        assert!(Mask::parse(&"a,".repeat(MAX_MASK_LEN)).is_err());
        let many: Vec<String> = (0..=MAX_FIELDS).map(|i| format!("f{i}")).collect();
        assert!(Mask::parse(&many.join(",")).is_err());
        assert!(Mask::parse(&vec!["a"; MAX_DEPTH].join("/")).is_ok());
        assert!(Mask::parse(&vec!["a"; MAX_DEPTH + 1].join("/")).is_err());
        assert!(Mask::parse(&format!("{}x{}", "a(".repeat(20), ")".repeat(20))).is_err());
    }

    #[test]
    fn star_merges_into_named_members() {
        let mask = Mask::parse("*(id),owner(name)").unwrap();
        let Selection::Members(root) = mask.selection() else {
            panic!("a mask selects members")
        };
        assert_eq!(
            root.select("owner").as_ref(),
            Some(Mask::parse("id,name").unwrap().selection())
        );
        assert_eq!(
            root.select("other").as_ref(),
            Some(Mask::parse("id").unwrap().selection())
        );
    }

    proptest! {
        #[test]
        fn never_panics(text in "\\PC{0,64}") {
            let _ = Mask::parse(&text);
        }

        #[test]
        fn canonical_form_is_a_fixed_point(text in "[a-c*/.(), ]{0,40}") {
            if let Ok(mask) = Mask::parse(&text) {
                let once = mask.to_string();
                let again = Mask::parse(&once).unwrap();
                prop_assert_eq!(&again, &mask);
                prop_assert_eq!(again.to_string(), once);
            }
        }
    }
}
