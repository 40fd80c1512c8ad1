//! Sparse fields: what a client asks for with `?fields=` (Google's partial-response grammar)
//! or `?fields[TYPE]=` (JSON:API sparse fieldsets), and how it is applied to a JSON body.

mod jsonapi;
mod mask;
mod project;

use std::fmt;

use http::Uri;

pub use jsonapi::Fieldsets;
pub use mask::{Mask, MaskError, Members, Selection, MAX_DEPTH, MAX_FIELDS, MAX_MASK_LEN};
pub use project::{project, ProjectError, MAX_JSON_DEPTH};

/// Largest body we project; beyond it the full body is passed through and the response says so.
pub const MAX_PROJECTED_BODY: usize = 4 * 1024 * 1024;

/// A parsed field selection in canonical form.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FieldSelection {
    /// `?fields=a,b(c)`.
    Mask(Mask),
    /// `?fields[articles]=title,body`.
    JsonApi(Fieldsets),
}

impl FieldSelection {
    /// Applies the selection to a JSON document.
    pub fn apply(&self, body: &[u8]) -> Result<Vec<u8>, ProjectError> {
        match self {
            FieldSelection::Mask(mask) => project(body, mask),
            FieldSelection::JsonApi(fieldsets) => fieldsets.apply(body),
        }
    }
}

impl fmt::Display for FieldSelection {
    /// The canonical form: equal for selections written differently (`b,a` and `a,b`), and
    /// different between the two syntaxes.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FieldSelection::Mask(mask) => write!(f, "{mask}"),
            FieldSelection::JsonApi(fieldsets) => write!(f, "jsonapi:{fieldsets}"),
        }
    }
}

/// Takes `fields=` and `fields[TYPE]=` out of a request URI: the rest of the URI names the full
/// representation, which is what is fetched and cached, so one origin fetch serves every mask.
/// Several `fields=` parameters are joined with commas. Returns `None` when there are none.
pub fn take_from_uri(uri: &Uri) -> Result<(Uri, Option<FieldSelection>), MaskError> {
    let Some(query) = uri.query() else {
        return Ok((uri.clone(), None));
    };
    let mut kept = Vec::new();
    let mut masks = Vec::new();
    let mut fieldsets = Fieldsets::default();
    let mut jsonapi = false;
    for raw in query.split('&') {
        let (name, value) = form_urlencoded::parse(raw.as_bytes())
            .next()
            .unwrap_or_default();
        if name == "fields" {
            masks.push(value.into_owned());
        } else if let Some(kind) = name
            .strip_prefix("fields[")
            .and_then(|n| n.strip_suffix(']'))
        {
            jsonapi = true;
            fieldsets.add(kind, &value)?;
        } else {
            kept.push(raw);
        }
    }
    let selection = match (masks.is_empty(), jsonapi) {
        (true, false) => None,
        (false, false) => Some(FieldSelection::Mask(Mask::parse(&masks.join(","))?)),
        (true, true) => Some(FieldSelection::JsonApi(fieldsets)),
        (false, true) => {
            return Err(MaskError {
                position: 0,
                expected: "either fields= or fields[TYPE]=, not both",
                found: "both".to_string(),
            })
        }
    };
    if selection.is_none() {
        return Ok((uri.clone(), None));
    }
    let mut rebuilt = uri.path().to_string();
    if !kept.is_empty() {
        rebuilt.push('?');
        rebuilt.push_str(&kept.join("&"));
    }
    let mut parts = uri.clone().into_parts();
    parts.path_and_query = Some(rebuilt.parse().map_err(|_| MaskError {
        position: 0,
        expected: "a valid URL",
        found: uri.to_string(),
    })?);
    let uri = Uri::from_parts(parts).map_err(|_| MaskError {
        position: 0,
        expected: "a valid URL",
        found: uri.to_string(),
    })?;
    Ok((uri, selection))
}

/// Whether a `Content-Type` is JSON (`application/json` or any `+json` type).
pub fn is_json(content_type: &str) -> bool {
    let essence = crate::headers::media_type(content_type);
    essence == "application/json"
        || (essence.starts_with("application/") && essence.ends_with("+json"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn take(url: &str) -> (String, Option<String>) {
        let (uri, selection) = take_from_uri(&url.parse().unwrap()).unwrap();
        (uri.to_string(), selection.map(|s| s.to_string()))
    }

    #[test]
    fn fields_parameters_leave_the_uri() {
        assert_eq!(take("http://h/p?a=1"), ("http://h/p?a=1".into(), None));
        assert_eq!(
            take("http://h/p?fields=b,a&x=1"),
            ("http://h/p?x=1".into(), Some("a,b".into()))
        );
        assert_eq!(
            take("http://h/p?fields=b%2Ca"),
            ("http://h/p".into(), Some("a,b".into()))
        );
        assert_eq!(
            take("http://h/p?fields=a+,+b"),
            ("http://h/p".into(), Some("a,b".into()))
        );
        assert_eq!(
            take("http://h/p?fields=a&fields=c(d)"),
            ("http://h/p".into(), Some("a,c(d)".into()))
        );
        assert_eq!(
            take("http://h/p?fields%5Bpeople%5D=name&fields[articles]=title"),
            (
                "http://h/p".into(),
                Some("jsonapi:articles(title);people(name)".into())
            )
        );
        assert!(take_from_uri(&"http://h/p?fields=a&fields[t]=b".parse().unwrap()).is_err());
        assert!(take_from_uri(&"http://h/p?fields=a(".parse().unwrap()).is_err());
    }

    #[test]
    fn json_media_types() {
        for yes in [
            "application/json",
            "Application/JSON; charset=utf-8",
            "application/vnd.api+json",
        ] {
            assert!(is_json(yes), "{yes}");
        }
        for no in ["text/html", "application/jsonx", "text/json+xml", ""] {
            assert!(!is_json(no), "{no}");
        }
    }
}
