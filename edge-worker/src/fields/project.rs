//! Applies a mask to a JSON document in one streaming pass that copies the selected byte ranges.
//!
//! Written by hand rather than with `serde_json::Value` because building and re-serialising a
//! tree costs several times more than skipping what is not selected (see
//! `benches/representation.rs`). The output is made only of input bytes (keys and values as the
//! origin wrote them) plus the punctuation between them, so it is valid JSON when the input is.

use std::borrow::Cow;

use memchr::memchr2;

use super::mask::{Mask, Members, Selection};

/// Deepest JSON nesting we walk; deeper documents are passed through whole.
pub const MAX_JSON_DEPTH: usize = 128;

/// Why a document could not be projected. The caller passes the body through unchanged.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProjectError {
    #[error("not valid JSON at byte {0}")]
    Syntax(usize),
    #[error("JSON nested deeper than {MAX_JSON_DEPTH}")]
    TooDeep,
}

/// Projects `input` through `mask`, appending the result to a new buffer.
pub fn project(input: &[u8], mask: &Mask) -> Result<Vec<u8>, ProjectError> {
    let mut projector = Projector {
        input,
        pos: 0,
        out: Vec::with_capacity(input.len() / 4),
    };
    projector.skip_ws();
    projector.value(mask.selection(), 0)?;
    projector.skip_ws();
    if projector.pos != input.len() {
        return Err(ProjectError::Syntax(projector.pos));
    }
    Ok(projector.out)
}

struct Projector<'a> {
    input: &'a [u8],
    pos: usize,
    out: Vec<u8>,
}

impl Projector<'_> {
    fn syntax(&self) -> ProjectError {
        ProjectError::Syntax(self.pos)
    }

    fn peek(&self) -> Option<u8> {
        self.input.get(self.pos).copied()
    }

    fn skip_ws(&mut self) {
        while let Some(b' ' | b'\n' | b'\r' | b'\t') = self.peek() {
            self.pos += 1;
        }
    }

    fn expect(&mut self, byte: u8) -> Result<(), ProjectError> {
        self.skip_ws();
        if self.peek() == Some(byte) {
            self.pos += 1;
            Ok(())
        } else {
            Err(self.syntax())
        }
    }

    /// One value at `pos` (whitespace already skipped), kept according to `selection`.
    fn value(&mut self, selection: &Selection, depth: usize) -> Result<(), ProjectError> {
        let members = match selection {
            Selection::All => {
                let start = self.pos;
                self.skip_value()?;
                self.out.extend_from_slice(&self.input[start..self.pos]);
                return Ok(());
            }
            Selection::Members(members) => members,
        };
        if depth >= MAX_JSON_DEPTH {
            return Err(ProjectError::TooDeep);
        }
        match self.peek() {
            Some(b'{') => self.object(members, depth + 1),
            Some(b'[') => self.array(selection, depth + 1),
            // A scalar where an object was expected is kept as it is: the mask cannot narrow it.
            _ => {
                let start = self.pos;
                self.skip_value()?;
                self.out.extend_from_slice(&self.input[start..self.pos]);
                Ok(())
            }
        }
    }

    fn object(&mut self, members: &Members, depth: usize) -> Result<(), ProjectError> {
        self.pos += 1;
        self.out.push(b'{');
        let mut first = true;
        self.skip_ws();
        if self.peek() == Some(b'}') {
            self.pos += 1;
            self.out.push(b'}');
            return Ok(());
        }
        loop {
            self.skip_ws();
            let key_start = self.pos;
            self.skip_string()?;
            let raw_key = &self.input[key_start + 1..self.pos - 1];
            let key_end = self.pos;
            self.expect(b':')?;
            self.skip_ws();
            match selected(members, raw_key) {
                Some(selection) => {
                    if !first {
                        self.out.push(b',');
                    }
                    first = false;
                    self.out.extend_from_slice(&self.input[key_start..key_end]);
                    self.out.push(b':');
                    self.value(&selection, depth)?;
                }
                None => self.skip_value()?,
            }
            self.skip_ws();
            match self.peek() {
                Some(b',') => self.pos += 1,
                Some(b'}') => {
                    self.pos += 1;
                    self.out.push(b'}');
                    return Ok(());
                }
                _ => return Err(self.syntax()),
            }
        }
    }

    /// The selection applies to every element of an array.
    fn array(&mut self, selection: &Selection, depth: usize) -> Result<(), ProjectError> {
        self.pos += 1;
        self.out.push(b'[');
        self.skip_ws();
        if self.peek() == Some(b']') {
            self.pos += 1;
            self.out.push(b']');
            return Ok(());
        }
        loop {
            self.skip_ws();
            self.value(selection, depth)?;
            self.skip_ws();
            match self.peek() {
                Some(b',') => {
                    self.pos += 1;
                    self.out.push(b',');
                }
                Some(b']') => {
                    self.pos += 1;
                    self.out.push(b']');
                    return Ok(());
                }
                _ => return Err(self.syntax()),
            }
        }
    }

    /// Moves past a string starting at `pos` (the opening quote).
    fn skip_string(&mut self) -> Result<(), ProjectError> {
        if self.peek() != Some(b'"') {
            return Err(self.syntax());
        }
        self.pos += 1;
        loop {
            let rest = &self.input[self.pos..];
            let Some(offset) = memchr2(b'"', b'\\', rest) else {
                self.pos = self.input.len();
                return Err(self.syntax());
            };
            self.pos += offset + 1;
            if rest[offset] == b'"' {
                return Ok(());
            }
            // A backslash escapes the next byte (for \uXXXX, the `u`).
            self.pos += 1;
            if self.pos >= self.input.len() {
                self.pos = self.input.len();
                return Err(self.syntax());
            }
        }
    }

    /// Moves past one value without copying it. Iterative, so a deep unselected subtree
    /// costs no stack.
    fn skip_value(&mut self) -> Result<(), ProjectError> {
        let mut depth = 0usize;
        loop {
            self.skip_ws();
            match self.peek() {
                Some(b'"') => self.skip_string()?,
                Some(b'{' | b'[') => {
                    depth += 1;
                    if depth > MAX_JSON_DEPTH {
                        return Err(ProjectError::TooDeep);
                    }
                    self.pos += 1;
                    continue;
                }
                Some(b'}' | b']') if depth > 0 => {
                    self.pos += 1;
                    depth -= 1;
                }
                Some(b'-' | b'0'..=b'9' | b't' | b'f' | b'n') => {
                    while let Some(b) = self.peek() {
                        if matches!(b, b',' | b'}' | b']' | b' ' | b'\n' | b'\r' | b'\t' | b':') {
                            break;
                        }
                        self.pos += 1;
                    }
                }
                _ => return Err(self.syntax()),
            }
            if depth == 0 {
                return Ok(());
            }
            // Inside a container: a separator, or the container closes on the next turn.
            self.skip_ws();
            match self.peek() {
                Some(b',' | b':') => self.pos += 1,
                Some(b'}' | b']') => {}
                _ => return Err(self.syntax()),
            }
        }
    }
}

/// What `members` keeps of the member whose key is `raw_key` (as written, without quotes).
fn selected<'m>(members: &'m Members, raw_key: &[u8]) -> Option<Cow<'m, Selection>> {
    let key: Cow<'_, str> = if raw_key.contains(&b'\\') {
        // Escaped keys are rare: let serde_json decode them.
        let mut quoted = Vec::with_capacity(raw_key.len() + 2);
        quoted.push(b'"');
        quoted.extend_from_slice(raw_key);
        quoted.push(b'"');
        Cow::Owned(serde_json::from_slice::<String>(&quoted).ok()?)
    } else {
        Cow::Borrowed(std::str::from_utf8(raw_key).ok()?)
    };
    if members.has_star() {
        members.select(&key).map(Cow::Owned)
    } else {
        members.select_ref(&key).map(Cow::Borrowed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde_json::{json, Value};

    fn apply(mask: &str, doc: &Value) -> Value {
        let bytes = serde_json::to_vec_pretty(doc).unwrap();
        let out = project(&bytes, &Mask::parse(mask).unwrap()).unwrap();
        serde_json::from_slice(&out).expect("projection is valid JSON")
    }

    fn product() -> Value {
        json!({
            "id": 7, "name": "Lamp", "price": {"amount": 12.5, "currency": "EUR"},
            "tags": ["a", "b"],
            "seller": {"id": 3, "name": "Acme", "address": {"city": "Berlin"}},
            "variants": [{"sku": "x", "stock": 1}, {"sku": "y", "stock": 0, "extra": [1, {"deep": true}]}],
            "note": "quote \" and \\ backslash, unicode \u{e9}"
        })
    }

    #[test]
    fn selects_members_paths_and_sub_selections() {
        let doc = product();
        assert_eq!(apply("id,name", &doc), json!({"id": 7, "name": "Lamp"}));
        assert_eq!(
            apply("seller/name", &doc),
            json!({"seller": {"name": "Acme"}})
        );
        assert_eq!(
            apply("seller.address.city", &doc),
            json!({"seller": {"address": {"city": "Berlin"}}})
        );
        assert_eq!(
            apply("variants(sku)", &doc),
            json!({"variants": [{"sku": "x"}, {"sku": "y"}]})
        );
        assert_eq!(apply("*", &doc), doc);
        assert_eq!(apply("note", &doc), json!({"note": doc["note"]}));
        assert_eq!(apply("tags(x)", &doc), json!({"tags": ["a", "b"]}));
        assert_eq!(apply("*(id)", &doc)["seller"], json!({"id": 3}));
    }

    #[test]
    fn unknown_fields_are_absent_and_arrays_at_the_top_are_mapped() {
        assert_eq!(apply("nope", &product()), json!({}));
        let list = json!([{"id": 1, "x": 2}, {"id": 2}, 3]);
        assert_eq!(apply("id", &list), json!([{"id": 1}, {"id": 2}, 3]));
    }

    #[test]
    fn escaped_keys_are_matched_by_their_value() {
        let out = project(
            br#"{"na\u006de": 1, "x": 2}"#,
            &Mask::parse("name").unwrap(),
        )
        .unwrap();
        assert_eq!(out, br#"{"na\u006de":1}"#);
    }

    #[test]
    fn invalid_or_too_deep_documents_are_errors() {
        let mask = Mask::parse("a").unwrap();
        for bad in [
            &b"{"[..],
            b"{\"a\":}",
            b"{\"a\":1,}",
            b"[1 2]",
            b"{\"a\":1} x",
            b"\"abc",
            b"",
        ] {
            assert!(
                project(bad, &mask).is_err(),
                "{:?}",
                String::from_utf8_lossy(bad)
            );
        }
        let deep = format!(
            "{}{}",
            "[".repeat(MAX_JSON_DEPTH + 1),
            "]".repeat(MAX_JSON_DEPTH + 1)
        );
        assert_eq!(project(deep.as_bytes(), &mask), Err(ProjectError::TooDeep));
        let deep_skipped = format!("{{\"b\":{}{}}}", "[".repeat(500), "]".repeat(500));
        assert_eq!(
            project(deep_skipped.as_bytes(), &mask),
            Err(ProjectError::TooDeep)
        );
    }

    fn json_value() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::from),
            any::<i32>().prop_map(Value::from),
            "[a-c\"\\\\é]{0,4}".prop_map(Value::from),
        ];
        leaf.prop_recursive(4, 32, 4, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..4).prop_map(Value::from),
                prop::collection::btree_map("[a-c]", inner, 0..4)
                    .prop_map(|m| Value::Object(m.into_iter().collect())),
            ]
        })
    }

    use crate::testing::reference;

    proptest! {
        #[test]
        fn agrees_with_a_value_tree(doc in json_value(), mask in "[a-c*]([/.][a-c*]){0,2}(,[a-c*](\\([a-c*]\\))?){0,3}") {
            let mask = Mask::parse(&mask).unwrap();
            let bytes = serde_json::to_vec(&doc).unwrap();
            let out = project(&bytes, &mask).unwrap();
            let got: Value = serde_json::from_slice(&out).unwrap();
            prop_assert_eq!(got, reference(&doc, mask.selection()));
        }

        #[test]
        fn never_panics(bytes in prop::collection::vec(any::<u8>(), 0..64)) {
            let _ = project(&bytes, &Mask::parse("a(b),*").unwrap());
        }
    }
}
