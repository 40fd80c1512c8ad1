//! The ESI 1.0 subset Varnish and Fastly implement, parsed into a template: `<esi:include
//! src alt onerror/>`, `<esi:remove>…</esi:remove>`, `<!--esi …-->`, `<esi:comment/>`, plus
//! `<esi:vars>…</esi:vars>` and variables in `src`/`alt` (W3C ESI Language Specification 1.0
//! §3). Everything else is text, passed through byte for byte; an ordinary HTML comment is
//! text too, so an include commented out with `<!-- -->` stays out.
//!
//! Why a scanner of our own: ESI tags sit inside HTML that is not XML (unclosed `<p>`,
//! attributes without quotes), so an XML parser cannot read the page, and an HTML5 parser
//! (html5ever) would rewrite the markup and cost more than the Workers bundle can spare. The
//! scanner only looks for `<esi:`, `<!--esi`, `<!--` and `-->` (memchr), and refuses any
//! `esi:` markup it does not understand rather than pass it to the client.

use std::ops::Range;

use super::vars::{self, Expr};
use super::ComposeError;

/// Where `needle` (one of the scanner's short fixed markers) first occurs in `hay`. memchr's
/// `memmem` would do it, but its searchers were ~6 KB of the Cloudflare bundle's code; with
/// needles of at most 13 bytes, memchr on the first byte and a compare is as good here.
fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    let (&first, _) = needle.split_first()?;
    let mut from = 0;
    while let Some(i) = memchr::memchr(first, &hay[from..]) {
        let at = from + i;
        if hay[at..].starts_with(needle) {
            return Some(at);
        }
        from = at + 1;
    }
    None
}

/// Longest attribute value (a `src` URL, an `alt`).
pub const MAX_ATTRIBUTE_LEN: usize = 2048;

/// A parsed ESI template: text of the page, and what the edge puts between it.
#[derive(Debug, Clone, PartialEq)]
pub struct Template {
    pub nodes: Vec<Node>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Node {
    /// Bytes of the page, copied as they are.
    Text(Range<usize>),
    /// `<esi:include>`: a fragment fetched through the cache.
    Include(Include),
    /// Text with variables (`<esi:vars>`), written HTML-escaped.
    Vars(Expr),
}

#[derive(Debug, Clone, PartialEq)]
pub struct Include {
    pub src: Expr,
    /// Tried when `src` fails (ESI §3.1).
    pub alt: Option<Expr>,
    /// `onerror="continue"`: a failed fragment is dropped instead of failing the page.
    pub continue_on_error: bool,
}

fn malformed(at: usize, why: impl Into<String>) -> ComposeError {
    ComposeError::Malformed {
        at,
        why: why.into(),
    }
}

/// Parses `page`. `max_includes` bounds the `<esi:include>`s one page may hold.
pub fn parse(page: &[u8], max_includes: usize) -> Result<Template, ComposeError> {
    let mut nodes = Vec::new();
    let mut includes = 0;
    let mut text_from = 0;
    let mut at = 0;
    // Inside `<!--esi … -->`: its `-->` closes it and is dropped.
    let mut in_esi_comment: Option<usize> = None;
    let push_text = |nodes: &mut Vec<Node>, range: Range<usize>| {
        if !range.is_empty() {
            nodes.push(Node::Text(range));
        }
    };
    while at < page.len() {
        let next_tag = memchr::memchr(b'<', &page[at..]).map(|i| at + i);
        let next_close = in_esi_comment.and_then(|_| find(&page[at..], b"-->").map(|i| at + i));
        let tag = match (next_tag, next_close) {
            (_, Some(close)) if next_tag.is_none_or(|t| close < t) => {
                push_text(&mut nodes, text_from..close);
                in_esi_comment = None;
                at = close + 3;
                text_from = at;
                continue;
            }
            (Some(tag), _) => tag,
            (None, _) => break,
        };
        let rest = &page[tag..];
        if rest.starts_with(b"<!--esi") {
            if in_esi_comment.is_some() {
                return Err(malformed(tag, "<!--esi inside <!--esi"));
            }
            push_text(&mut nodes, text_from..tag);
            in_esi_comment = Some(tag);
            at = tag + 7;
            text_from = at;
        } else if rest.starts_with(b"<!--") {
            // An ordinary comment: text, and what it comments out stays out.
            let end = find(&rest[4..], b"-->")
                .ok_or_else(|| malformed(tag, "an HTML comment is not closed"))?;
            at = tag + 4 + end + 3;
        } else if starts_with_ignore_case(rest, b"<esi:")
            || starts_with_ignore_case(rest, b"</esi:")
        {
            push_text(&mut nodes, text_from..tag);
            at = element(page, tag, &mut nodes, &mut includes, max_includes)?;
            text_from = at;
        } else {
            at = tag + 1;
        }
    }
    if let Some(open) = in_esi_comment {
        return Err(malformed(open, "<!--esi is not closed with -->"));
    }
    push_text(&mut nodes, text_from..page.len());
    Ok(Template { nodes })
}

fn starts_with_ignore_case(bytes: &[u8], prefix: &[u8]) -> bool {
    bytes.len() >= prefix.len() && bytes[..prefix.len()].eq_ignore_ascii_case(prefix)
}

/// One `esi:` element at `tag`; returns where the page goes on.
fn element(
    page: &[u8],
    tag: usize,
    nodes: &mut Vec<Node>,
    includes: &mut usize,
    max_includes: usize,
) -> Result<usize, ComposeError> {
    let name_from = if page[tag + 1] == b'/' {
        tag + 6
    } else {
        tag + 5
    };
    let name_len = page[name_from..]
        .iter()
        .take_while(|b| b.is_ascii_alphabetic())
        .count();
    let name = String::from_utf8_lossy(&page[name_from..name_from + name_len]).to_ascii_lowercase();
    if page[tag + 1] == b'/' {
        return Err(malformed(tag, format!("</esi:{name}> closes nothing")));
    }
    let open_end = memchr::memchr(b'>', &page[name_from..])
        .map(|i| name_from + i)
        .ok_or_else(|| malformed(tag, format!("<esi:{name} is not closed with >")))?;
    let self_closing = page[open_end - 1] == b'/';
    let attributes_end = if self_closing { open_end - 1 } else { open_end };
    let attributes = &page[name_from + name_len..attributes_end];
    let after = open_end + 1;
    match name.as_str() {
        "include" => {
            *includes += 1;
            if *includes > max_includes {
                return Err(ComposeError::TooManyIncludes {
                    limit: max_includes,
                });
            }
            let attributes = parse_attributes(attributes, tag)?;
            let get = |wanted: &str| attributes.iter().find(|(n, _)| n == wanted).map(|(_, v)| v);
            let src = get("src").ok_or_else(|| malformed(tag, "<esi:include> without src"))?;
            let include = Include {
                src: vars::parse(src).map_err(|why| malformed(tag, why))?,
                alt: get("alt")
                    .map(|alt| vars::parse(alt).map_err(|why| malformed(tag, why)))
                    .transpose()?,
                continue_on_error: get("onerror").is_some_and(|v| v == "continue"),
            };
            nodes.push(Node::Include(include));
            if self_closing {
                Ok(after)
            } else {
                closing(page, after, "include", tag).map(|(_, end)| end)
            }
        }
        "comment" => {
            if self_closing {
                Ok(after)
            } else {
                closing(page, after, "comment", tag).map(|(_, end)| end)
            }
        }
        // Shown only where ESI is not processed; an include inside is never fetched.
        "remove" if !self_closing => closing(page, after, "remove", tag).map(|(_, end)| end),
        "vars" if !self_closing => {
            let (content_end, end) = closing(page, after, "vars", tag)?;
            let content = std::str::from_utf8(&page[after..content_end])
                .map_err(|_| malformed(after, "<esi:vars> content is not UTF-8"))?;
            if content.contains("<esi:") {
                return Err(malformed(
                    after,
                    "ESI elements inside <esi:vars> are not supported",
                ));
            }
            nodes.push(Node::Vars(
                vars::parse(content).map_err(|why| malformed(after, why))?,
            ));
            Ok(end)
        }
        other => Err(malformed(
            tag,
            format!("<esi:{other}> is not supported (include, remove, comment, vars)"),
        )),
    }
}

/// The `</esi:NAME>` after `from`: (where the content ends, where the page goes on).
fn closing(
    page: &[u8],
    from: usize,
    name: &str,
    tag: usize,
) -> Result<(usize, usize), ComposeError> {
    let close = format!("</esi:{name}>");
    let at = find(&page[from..], close.as_bytes())
        .ok_or_else(|| malformed(tag, format!("<esi:{name}> is not closed with {close}")))?;
    Ok((from + at, from + at + close.len()))
}

/// `name="value"` pairs (either quote), names lower-cased, values' entities decoded.
fn parse_attributes(text: &[u8], tag: usize) -> Result<Vec<(String, String)>, ComposeError> {
    let mut out = Vec::new();
    let mut i = 0;
    loop {
        while i < text.len() && text[i].is_ascii_whitespace() {
            i += 1;
        }
        if i == text.len() {
            return Ok(out);
        }
        let name_from = i;
        while i < text.len() && (text[i].is_ascii_alphanumeric() || text[i] == b'-') {
            i += 1;
        }
        if i == name_from || text.get(i) != Some(&b'=') {
            return Err(malformed(tag, "attributes are name=\"value\""));
        }
        let name = String::from_utf8_lossy(&text[name_from..i]).to_ascii_lowercase();
        let quote = *text
            .get(i + 1)
            .filter(|q| **q == b'"' || **q == b'\'')
            .ok_or_else(|| malformed(tag, format!("{name}= needs a quoted value")))?;
        let value_from = i + 2;
        let len = memchr::memchr(quote, &text[value_from..])
            .ok_or_else(|| malformed(tag, format!("{name}'s value is not closed")))?;
        if len > MAX_ATTRIBUTE_LEN {
            return Err(malformed(
                tag,
                format!("{name} is longer than {MAX_ATTRIBUTE_LEN} bytes"),
            ));
        }
        let raw = std::str::from_utf8(&text[value_from..value_from + len])
            .map_err(|_| malformed(tag, format!("{name} is not UTF-8")))?;
        out.push((name, decode_entities(raw)));
        i = value_from + len + 1;
    }
}

/// XML's five named entities and numeric references; anything else stays as written.
/// Why by hand: these are the only references an attribute in ESI markup needs, and an
/// entity crate would bring HTML's 2,000 names into the Workers bundle.
fn decode_entities(raw: &str) -> String {
    let mut out = String::with_capacity(raw.len());
    let mut rest = raw;
    while let Some(at) = rest.find('&') {
        out.push_str(&rest[..at]);
        rest = &rest[at..];
        let Some(end) = rest[..rest.len().min(12)].find(';') else {
            out.push('&');
            rest = &rest[1..];
            continue;
        };
        let name = &rest[1..end];
        let decoded = match name {
            "amp" => Some('&'),
            "lt" => Some('<'),
            "gt" => Some('>'),
            "quot" => Some('"'),
            "apos" => Some('\''),
            _ => name
                .strip_prefix("#x")
                .or_else(|| name.strip_prefix("#X"))
                .map(|hex| u32::from_str_radix(hex, 16))
                .or_else(|| name.strip_prefix('#').map(str::parse::<u32>))
                .and_then(Result::ok)
                .and_then(char::from_u32),
        };
        match decoded {
            Some(c) => {
                out.push(c);
                rest = &rest[end + 1..];
            }
            None => {
                out.push('&');
                rest = &rest[1..];
            }
        }
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests;
