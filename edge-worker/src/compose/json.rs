//! JSON templates (`Surrogate-Control: content="EDGE-JSON/1.0"`): a value that is an object
//! with an `"$include"` member is a placeholder, replaced by the fragment's JSON.
//!
//! ```json
//! {"title": "Dashboard",
//!  "summary": {"$include": "/api/users/me/summary", "$onerror": "continue"},
//!  "news": {"$include": "/api/news?region=$(GEO{country_code})", "$alt": "/api/news"}}
//! ```
//!
//! `$include` and `$alt` take the same variables as ESI's `src`; `"$onerror": "continue"`
//! puts `null` where a failed fragment was (the member stays, so clients see the hole).
//! A placeholder may have no other members: a typo such as `"$inclde"` beside it refuses
//! the template instead of leaving a half-written object in the document.

use serde_json::Value;

use super::esi::Include;
use super::vars;
use super::ComposeError;

/// A parsed JSON template: the document, and its placeholders in document order.
#[derive(Debug, Clone, PartialEq)]
pub struct JsonTemplate {
    pub document: Value,
    pub includes: Vec<Include>,
}

pub fn parse(bytes: &[u8], max_includes: usize) -> Result<JsonTemplate, ComposeError> {
    // serde_json refuses nesting deeper than 128 levels, so the walks below are bounded.
    let document: Value =
        serde_json::from_slice(bytes).map_err(|e| ComposeError::Json(e.to_string()))?;
    let mut includes = Vec::new();
    collect(&document, &mut includes, max_includes)?;
    Ok(JsonTemplate { document, includes })
}

fn collect(value: &Value, out: &mut Vec<Include>, max: usize) -> Result<(), ComposeError> {
    match value {
        Value::Object(members) if members.contains_key("$include") => {
            if out.len() == max {
                return Err(ComposeError::TooManyIncludes { limit: max });
            }
            out.push(placeholder(members)?);
            Ok(())
        }
        Value::Object(members) => members.values().try_for_each(|v| collect(v, out, max)),
        Value::Array(items) => items.iter().try_for_each(|v| collect(v, out, max)),
        _ => Ok(()),
    }
}

fn placeholder(members: &serde_json::Map<String, Value>) -> Result<Include, ComposeError> {
    let bad = |why: String| ComposeError::Json(why);
    let text = |name: &str| -> Result<Option<&str>, ComposeError> {
        match members.get(name) {
            None => Ok(None),
            Some(Value::String(s)) if s.len() <= super::esi::MAX_ATTRIBUTE_LEN => Ok(Some(s)),
            Some(_) => Err(bad(format!(
                "{name} must be a string of at most {} bytes",
                super::esi::MAX_ATTRIBUTE_LEN
            ))),
        }
    };
    if let Some(other) = members
        .keys()
        .find(|k| !matches!(k.as_str(), "$include" | "$alt" | "$onerror"))
    {
        return Err(bad(format!(
            "a placeholder has only $include, $alt and $onerror, not {other:?}"
        )));
    }
    let onerror = text("$onerror")?;
    if onerror.is_some_and(|v| v != "continue") {
        return Err(bad("$onerror can only be \"continue\"".into()));
    }
    let src = text("$include")?.expect("checked by the caller");
    Ok(Include {
        src: vars::parse(src).map_err(bad)?,
        alt: text("$alt")?.map(vars::parse).transpose().map_err(bad)?,
        continue_on_error: onerror.is_some(),
    })
}

/// The document with each placeholder replaced by `fragments`' values, in order (`None`: a
/// dropped fragment, written as `null`).
pub fn fill(mut document: Value, fragments: Vec<Option<Value>>) -> Value {
    let mut fragments = fragments.into_iter();
    replace(&mut document, &mut fragments);
    document
}

fn replace(value: &mut Value, fragments: &mut impl Iterator<Item = Option<Value>>) {
    match value {
        Value::Object(members) if members.contains_key("$include") => {
            *value = fragments.next().flatten().unwrap_or(Value::Null);
        }
        Value::Object(members) => members.values_mut().for_each(|v| replace(v, fragments)),
        Value::Array(items) => items.iter_mut().for_each(|v| replace(v, fragments)),
        _ => {}
    }
}
