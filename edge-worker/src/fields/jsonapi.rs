//! JSON:API sparse fieldsets (`fields[TYPE]=a,b`, jsonapi.org/format/#fetching-sparse-fieldsets):
//! in every resource object whose `type` is TYPE, only the listed attributes and relationships
//! are kept; `type`, `id`, `links` and `meta` always are.
//!
//! Applied on a `serde_json::Value` tree rather than in the streaming pass: a resource's `type`
//! may come after its `attributes`, so the streaming pass would have to buffer anyway.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use serde_json::Value;

use super::mask::{MaskError, MAX_FIELDS};
use super::project::{ProjectError, MAX_JSON_DEPTH};

/// Field lists per resource type, sorted and deduplicated.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Fieldsets(BTreeMap<String, BTreeSet<String>>);

/// Most resource types one request may name.
pub const MAX_TYPES: usize = 32;

impl Fieldsets {
    /// Adds `fields[kind]=list`. An empty list is allowed: it keeps no attributes.
    pub fn add(&mut self, kind: &str, list: &str) -> Result<(), MaskError> {
        let invalid = |expected, found: &str| MaskError {
            position: 0,
            expected,
            found: found.to_string(),
        };
        if kind.is_empty() || kind.len() > 128 {
            return Err(invalid("a resource type inside fields[...]", kind));
        }
        if self.0.len() >= MAX_TYPES && !self.0.contains_key(kind) {
            return Err(invalid("fewer resource types", kind));
        }
        let names = self.0.entry(kind.to_string()).or_default();
        let mut position = 0;
        for name in list.split(',') {
            let trimmed = name.trim();
            if trimmed.is_empty() && !list.trim().is_empty() {
                return Err(MaskError {
                    position,
                    expected: "a field name",
                    found: format!("{name:?}"),
                });
            }
            if !trimmed.is_empty() {
                names.insert(trimmed.to_string());
            }
            position += name.len() + 1;
        }
        let total: usize = self.0.values().map(BTreeSet::len).sum();
        if total > MAX_FIELDS {
            return Err(invalid(
                "fewer field names",
                &format!("{total} (limit {MAX_FIELDS})"),
            ));
        }
        Ok(())
    }

    pub fn apply(&self, body: &[u8]) -> Result<Vec<u8>, ProjectError> {
        let mut document: Value =
            serde_json::from_slice(body).map_err(|e| ProjectError::Syntax(e.column()))?;
        self.prune(&mut document, 0)?;
        serde_json::to_vec(&document).map_err(|_| ProjectError::Syntax(0))
    }

    fn prune(&self, value: &mut Value, depth: usize) -> Result<(), ProjectError> {
        if depth > MAX_JSON_DEPTH {
            return Err(ProjectError::TooDeep);
        }
        match value {
            Value::Array(items) => {
                for item in items {
                    self.prune(item, depth + 1)?;
                }
            }
            Value::Object(map) => {
                let wanted = map
                    .get("type")
                    .and_then(Value::as_str)
                    .and_then(|kind| self.0.get(kind));
                if let Some(wanted) = wanted {
                    for section in ["attributes", "relationships"] {
                        if let Some(Value::Object(members)) = map.get_mut(section) {
                            members.retain(|name, _| wanted.contains(name));
                        }
                    }
                }
                for member in map.values_mut() {
                    self.prune(member, depth + 1)?;
                }
            }
            _ => {}
        }
        Ok(())
    }
}

impl fmt::Display for Fieldsets {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, (kind, names)) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(";")?;
            }
            write!(f, "{kind}(")?;
            for (j, name) in names.iter().enumerate() {
                if j > 0 {
                    f.write_str(",")?;
                }
                f.write_str(name)?;
            }
            f.write_str(")")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn keeps_listed_attributes_and_relationships_of_the_named_type() {
        let doc = json!({
            "data": [{
                "type": "articles", "id": "1",
                "attributes": {"title": "T", "body": "B", "created": "x"},
                "relationships": {"author": {"data": {"type": "people", "id": "9"}}, "comments": {}},
                "links": {"self": "/a/1"}
            }],
            "included": [{"type": "people", "id": "9", "attributes": {"name": "N", "age": 3}}]
        });
        let mut sets = Fieldsets::default();
        sets.add("articles", "title, author").unwrap();
        sets.add("people", "name").unwrap();
        let out: Value =
            serde_json::from_slice(&sets.apply(doc.to_string().as_bytes()).unwrap()).unwrap();
        assert_eq!(out["data"][0]["attributes"], json!({"title": "T"}));
        assert_eq!(
            out["data"][0]["relationships"],
            json!({"author": {"data": {"type": "people", "id": "9"}}})
        );
        assert_eq!(out["data"][0]["links"], json!({"self": "/a/1"}));
        assert_eq!(out["included"][0]["attributes"], json!({"name": "N"}));
        assert_eq!(sets.to_string(), "articles(author,title);people(name)");
    }

    #[test]
    fn empty_names_inside_a_list_are_errors() {
        assert!(Fieldsets::default().add("a", "x,,y").is_err());
        assert!(Fieldsets::default().add("", "x").is_err());
        assert!(Fieldsets::default().add("a", "").is_ok());
    }
}
