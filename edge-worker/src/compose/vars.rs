//! ESI variables (ESI 1.0 §5) the edge knows: `$(HTTP_COOKIE{name})`, `$(HTTP_HOST)`,
//! `$(QUERY_STRING{name})`, `$(GEO{country_code})`, and `$(JWT{claim})`, a claim of the token the
//! edge verified (an extension; nothing else may name a verified identity). A variable with no
//! value is empty, as the specification says; a variable name we do not know refuses the
//! template, so a typo is seen rather than silently empty.

use http::HeaderMap;
use serde_json::{Map, Value};

/// Most variables one expression may hold.
pub const MAX_VARIABLES: usize = 64;

#[derive(Debug, Clone, PartialEq, Default)]
pub struct Expr(pub Vec<Piece>);

#[derive(Debug, Clone, PartialEq)]
pub enum Piece {
    Literal(String),
    Var(Variable),
}

#[derive(Debug, Clone, PartialEq)]
pub enum Variable {
    Cookie(String),
    Host,
    Query(String),
    Country,
    Claim(String),
}

/// What variables read, taken from the page's request once.
#[derive(Debug, Default)]
pub struct Env {
    pub cookies: Vec<(String, String)>,
    pub host: String,
    pub query: Vec<(String, String)>,
    pub country: Option<String>,
    /// The verified token's claims (`None`: no token was verified).
    pub claims: Option<Map<String, Value>>,
}

impl Env {
    pub fn new(
        uri: &http::Uri,
        headers: &HeaderMap,
        country: Option<String>,
        claims: Option<Map<String, Value>>,
    ) -> Self {
        let cookies = crate::cookies::pairs(headers)
            .map(|(name, value)| (name.to_string(), value.to_string()))
            .collect();
        Self {
            cookies,
            host: uri.host().unwrap_or_default().to_string(),
            query: uri
                .query()
                .map(|q| form_urlencoded::parse(q.as_bytes()).into_owned().collect())
                .unwrap_or_default(),
            country,
            claims,
        }
    }

    fn value(&self, variable: &Variable) -> String {
        let find = |list: &[(String, String)], name: &str| {
            list.iter()
                .find(|(n, _)| n == name)
                .map(|(_, v)| v.clone())
                .unwrap_or_default()
        };
        match variable {
            Variable::Cookie(name) => find(&self.cookies, name),
            Variable::Host => self.host.clone(),
            Variable::Query(name) => find(&self.query, name),
            Variable::Country => self.country.clone().unwrap_or_default(),
            Variable::Claim(name) => match self.claims.as_ref().and_then(|c| c.get(name)) {
                Some(Value::String(s)) => s.clone(),
                Some(Value::Number(n)) => n.to_string(),
                Some(Value::Bool(b)) => b.to_string(),
                _ => String::new(),
            },
        }
    }
}

impl Expr {
    /// The expression as a URL: variables' values percent-encoded, so a cookie cannot add a
    /// path segment or a query parameter of its own.
    pub fn url(&self, env: &Env) -> String {
        self.render(env, |value, out| {
            out.extend(form_urlencoded::byte_serialize(value.as_bytes()))
        })
    }

    /// The expression as HTML text: variables' values escaped, so a cookie cannot add markup.
    pub fn html(&self, env: &Env) -> String {
        self.render(env, escape_html_into)
    }

    fn render(&self, env: &Env, escape: impl Fn(&str, &mut String)) -> String {
        let mut out = String::new();
        for piece in &self.0 {
            match piece {
                Piece::Literal(text) => out.push_str(text),
                Piece::Var(variable) => escape(&env.value(variable), &mut out),
            }
        }
        out
    }
}

/// Parses text with `$(NAME)` / `$(NAME{key})` / `$(NAME{'key'})` in it.
pub fn parse(text: &str) -> Result<Expr, String> {
    let mut pieces = Vec::new();
    let mut rest = text;
    let mut variables = 0;
    while let Some(at) = rest.find("$(") {
        if at > 0 {
            pieces.push(Piece::Literal(rest[..at].to_string()));
        }
        let end = rest[at..].find(')').map(|i| at + i).ok_or_else(|| {
            format!(
                "variable {:?} is not closed with )",
                &rest[at..rest.len().min(at + 24)]
            )
        })?;
        let inner = &rest[at + 2..end];
        let (name, key) = match inner.split_once('{') {
            Some((name, key)) => {
                let key = key
                    .strip_suffix('}')
                    .ok_or_else(|| format!("$({inner}): a key is written {{key}}"))?;
                let key = key
                    .strip_prefix('\'')
                    .and_then(|k| k.strip_suffix('\''))
                    .unwrap_or(key);
                (name, Some(key.to_string()))
            }
            None => (inner, None),
        };
        let variable = match (name, key) {
            ("HTTP_COOKIE", Some(key)) => Variable::Cookie(key),
            ("HTTP_HOST", None) => Variable::Host,
            ("QUERY_STRING", Some(key)) => Variable::Query(key),
            ("GEO", Some(key)) if key == "country_code" => Variable::Country,
            ("JWT", Some(key)) => Variable::Claim(key),
            _ => {
                return Err(format!(
                    "$({inner}) is not a variable the edge knows (HTTP_COOKIE{{name}}, HTTP_HOST, \
                     QUERY_STRING{{name}}, GEO{{country_code}}, JWT{{claim}})"
                ))
            }
        };
        variables += 1;
        if variables > MAX_VARIABLES {
            return Err(format!("more than {MAX_VARIABLES} variables"));
        }
        pieces.push(Piece::Var(variable));
        rest = &rest[end + 1..];
    }
    if !rest.is_empty() {
        pieces.push(Piece::Literal(rest.to_string()));
    }
    Ok(Expr(pieces))
}

/// Appends `text` escaped for HTML content and quoted attribute values (`&<>"'`). The
/// emulator's report pages use it too.
pub fn escape_html_into(text: &str, out: &mut String) {
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
}
