//! Vary (RFC 9111 §4.1): which request fields select a stored response, and the rule a cache
//! slot holds so that each variant gets a slot of its own (the design of pingora-cache's
//! `variance`).

use std::time::SystemTime;

use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use http::Request;

use crate::{Body, CacheKey, StoredResponse};

mod normalise;
pub use normalise::selecting_value;

/// Most header names a Vary rule may nominate; a response varying on more is not stored.
pub const MAX_VARY_FIELDS: usize = 16;

/// How a rule's generation is written as the first string of its list form.
const GENERATION_MARK: char = '#';

/// The rule a primary cache slot holds for a response that varies: the request fields its
/// variants differ by, and the generation the rule was created in.
///
/// The generation is part of every variant key, so when an invalidation (RFC 9111 §4.4)
/// deletes the rule, the variants stored under it become unreachable even though their own
/// slots live on until they expire; the next response stored starts a new generation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VaryRule {
    /// Nanoseconds since the Unix epoch when the rule was created; `None` for a rule written
    /// before rules had generations.
    generation: Option<u128>,
    /// Lower-cased, sorted, deduplicated request field names, as [`vary_fields`] returns them.
    fields: Vec<String>,
}

impl VaryRule {
    /// A new rule for `fields` (as [`vary_fields`] returns them) in the generation of `now`.
    pub fn new(fields: Vec<String>, now: SystemTime) -> Self {
        let generation = now
            .duration_since(SystemTime::UNIX_EPOCH)
            .unwrap_or_default()
            .as_nanos();
        Self {
            generation: Some(generation),
            fields,
        }
    }

    /// The request fields the variants differ by.
    pub fn fields(&self) -> &[String] {
        &self.fields
    }

    /// When the rule was created (nanoseconds since the Unix epoch), if it records it.
    pub fn generation(&self) -> Option<u128> {
        self.generation
    }

    /// The slot key of the variant `request` selects under this rule (RFC 9111 §4.1). Field
    /// values are normalised as [`selecting_value`] says; an absent field is distinguished
    /// from an empty one.
    pub fn variant(&self, key: &CacheKey, request: &HeaderMap) -> String {
        let mut variant = key.as_str().to_owned();
        variant.push_str("\n#vary");
        if let Some(generation) = self.generation {
            variant.push('\n');
            variant.push(GENERATION_MARK);
            variant.push_str(&generation.to_string());
        }
        for field in &self.fields {
            variant.push('\n');
            variant.push_str(field);
            if let Some(value) = selecting_value(request, field) {
                variant.push('=');
                variant.push_str(&value);
            }
        }
        variant
    }

    /// The rule as a list of strings, the form hosts store (the WIT `vary-rule`, the
    /// Cloudflare codec): `#<generation>` first when there is one, then the field names.
    pub fn to_strings(&self) -> Vec<String> {
        let mut list = Vec::with_capacity(self.fields.len() + 1);
        if let Some(generation) = self.generation {
            list.push(format!("{GENERATION_MARK}{generation}"));
        }
        list.extend(self.fields.iter().cloned());
        list
    }

    /// Reads what [`VaryRule::to_strings`] wrote. A list whose first string is not a
    /// generation is a rule without one; a generation marker that does not parse is dropped.
    pub fn from_strings(mut list: Vec<String>) -> Self {
        let generation = match list.first() {
            Some(first) if first.starts_with(GENERATION_MARK) => {
                let generation = first[GENERATION_MARK.len_utf8()..].parse().ok();
                list.remove(0);
                generation
            }
            _ => None,
        };
        Self {
            generation,
            fields: list,
        }
    }
}

/// Why a response's Vary cannot be kept as a rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unstorable {
    /// `Vary: *` never matches a later request (RFC 9111 §4.1), so storing it is pointless.
    Star,
    /// More than [`MAX_VARY_FIELDS`] fields.
    TooManyFields,
}

/// The fields a rule for this response would name: empty when it does not vary.
pub fn rule_fields(response: &HeaderMap) -> Result<Vec<String>, Unstorable> {
    let fields = vary_fields(response);
    if fields.iter().any(|f| f == "*") {
        return Err(Unstorable::Star);
    }
    if fields.len() > MAX_VARY_FIELDS {
        return Err(Unstorable::TooManyFields);
    }
    Ok(fields)
}

/// The lower-cased field names of all Vary lines, sorted and deduplicated; `*` is returned as
/// itself.
pub fn vary_fields(headers: &HeaderMap) -> Vec<String> {
    let mut fields: Vec<String> = comma_list(headers.get_all(header::VARY))
        .map(|f| f.to_ascii_lowercase())
        .collect();
    fields.sort();
    fields.dedup();
    fields
}

fn comma_list<'a>(values: header::GetAll<'a, HeaderValue>) -> impl Iterator<Item = &'a str> {
    values
        .into_iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .filter(|f| !f.is_empty())
}

/// The request fields a response's Vary nominates, as `request` sent them: what a stored
/// response must remember to be matched later (RFC 9111 §4.1).
pub fn selecting_fields(request: &HeaderMap, response: &HeaderMap) -> HeaderMap {
    let mut selecting = HeaderMap::new();
    for field in vary_fields(response) {
        if let Ok(name) = HeaderName::from_bytes(field.as_bytes()) {
            for value in request.get_all(&name) {
                selecting.append(name.clone(), value.clone());
            }
        }
    }
    selecting
}

/// RFC 9111 §4.1: whether `request` sends the values of the fields `stored` varies on that
/// the request it was stored for sent. `Vary: *` never matches.
pub fn matches(stored: &StoredResponse, request: &HeaderMap) -> bool {
    matches_fields(&vary_fields(&stored.headers), stored, request)
}

/// [`matches`] with the stored response's Vary fields already read (its freshness record).
/// Values are compared as [`selecting_value`] normalises them.
pub fn matches_fields(fields: &[String], stored: &StoredResponse, request: &HeaderMap) -> bool {
    fields.iter().all(|field| {
        field != "*"
            && selecting_value(request, field)
                == selecting_value(&stored.vary_request_headers, field)
    })
}

/// `request` with the fields `stored` varies on written as the stored request sent them, when
/// they [`matches`] (normalised) but differ as sent: `http-cache-semantics` compares them as
/// sent, and must agree with this module. `None` when nothing needs rewriting.
pub fn aligned(stored: &StoredResponse, request: &Request<Body>) -> Option<Request<Body>> {
    let fields = vary_fields(&stored.headers);
    let differs = |field: &String| {
        !request
            .headers()
            .get_all(field.as_str())
            .iter()
            .eq(stored.vary_request_headers.get_all(field.as_str()).iter())
    };
    if !fields.iter().any(differs) || !matches_fields(&fields, stored, request.headers()) {
        return None;
    }
    let mut copy = Request::new(request.body().clone());
    *copy.method_mut() = request.method().clone();
    *copy.uri_mut() = request.uri().clone();
    *copy.headers_mut() = request.headers().clone();
    *copy.extensions_mut() = request.extensions().clone();
    for field in &fields {
        let Ok(name) = HeaderName::from_bytes(field.as_bytes()) else {
            continue;
        };
        copy.headers_mut().remove(&name);
        for value in stored.vary_request_headers.get_all(&name) {
            copy.headers_mut().append(name.clone(), value.clone());
        }
    }
    Some(copy)
}

/// Adds `field` to `Vary` unless it is there already (or `Vary: *` covers it).
pub(crate) fn append_vary(headers: &mut HeaderMap, field: &'static str) {
    let present = headers.get_all(header::VARY).iter().any(|value| {
        value.to_str().is_ok_and(|text| {
            text.split(',')
                .any(|f| f.trim() == "*" || f.trim().eq_ignore_ascii_case(field))
        })
    });
    if !present {
        headers.append(header::VARY, HeaderValue::from_static(field));
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn rule(fields: &[&str]) -> VaryRule {
        VaryRule::from_strings(fields.iter().map(|f| f.to_string()).collect())
    }

    use crate::testing::header_map as headers;

    #[test]
    fn rfc9111_4_1_variants_differ_by_nominated_field_values() {
        let base = CacheKey::from_uri(&"https://a.example/".parse().unwrap()).unwrap();
        let rule = rule(&["accept-encoding"]);
        let gzip = headers(&[("accept-encoding", "gzip")]);
        let br = headers(&[("accept-encoding", "br")]);
        let empty = headers(&[("accept-encoding", "")]);
        let none = HeaderMap::new();
        let keys: Vec<String> = [&gzip, &br, &empty, &none]
            .iter()
            .map(|h| rule.variant(&base, h))
            .collect();
        for (i, a) in keys.iter().enumerate() {
            for b in &keys[i + 1..] {
                assert_ne!(a, b);
            }
        }
        assert_eq!(
            rule.variant(&base, &gzip),
            rule.variant(&base, &gzip.clone())
        );
    }

    #[test]
    fn rfc9111_4_4_a_new_generation_selects_other_slots() {
        let base = CacheKey::from_uri(&"https://a.example/".parse().unwrap()).unwrap();
        let fields = vec!["accept-language".to_string()];
        let t0 = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        let old = VaryRule::new(fields.clone(), t0);
        let new = VaryRule::new(fields, t0 + Duration::from_secs(1));
        let de = headers(&[("accept-language", "de")]);
        assert_eq!(old.fields(), new.fields());
        assert_ne!(old.variant(&base, &de), new.variant(&base, &de));
    }

    #[test]
    fn the_list_form_round_trips_and_keeps_variant_keys() {
        let base = CacheKey::from_uri(&"https://a.example/x".parse().unwrap()).unwrap();
        let t0 = SystemTime::UNIX_EPOCH + Duration::from_nanos(1_700_000_000_123_456_789);
        let rule = VaryRule::new(vec!["accept".into(), "x-a".into()], t0);
        let list = rule.to_strings();
        assert_eq!(list, ["#1700000000123456789", "accept", "x-a"]);
        assert_eq!(VaryRule::from_strings(list), rule);
        let request = headers(&[("accept", "a/b"), ("x-a", "1"), ("x-a", "2")]);
        assert_eq!(
            rule.variant(&base, &request),
            "https://a.example/x\n#vary\n#1700000000123456789\naccept=a/b\nx-a=1, 2"
        );
        // A rule from before generations: fields only.
        let legacy = VaryRule::from_strings(vec!["accept".into()]);
        assert_eq!(legacy.generation(), None);
        assert_eq!(legacy.to_strings(), ["accept"]);
        assert_eq!(
            legacy.variant(&base, &request),
            "https://a.example/x\n#vary\naccept=a/b"
        );
    }

    #[test]
    fn rfc9111_4_1_star_and_too_many_fields_make_no_rule() {
        assert_eq!(rule_fields(&HeaderMap::new()), Ok(Vec::new()));
        assert_eq!(
            rule_fields(&headers(&[("vary", "X-B, accept"), ("vary", "x-b")])),
            Ok(vec!["accept".to_string(), "x-b".to_string()])
        );
        assert_eq!(
            rule_fields(&headers(&[("vary", "accept, *")])),
            Err(Unstorable::Star)
        );
        let many: Vec<String> = (0..=MAX_VARY_FIELDS).map(|i| format!("x-{i}")).collect();
        let mut response = HeaderMap::new();
        response.insert(header::VARY, many.join(", ").parse().unwrap());
        assert_eq!(rule_fields(&response), Err(Unstorable::TooManyFields));
    }

    #[test]
    fn append_vary_adds_a_field_once() {
        let mut h = headers(&[("vary", "Accept-Encoding")]);
        append_vary(&mut h, "accept-encoding");
        assert_eq!(h.get_all(header::VARY).iter().count(), 1);
        let mut h = headers(&[("vary", "*")]);
        append_vary(&mut h, "accept-encoding");
        assert_eq!(h.get_all(header::VARY).iter().count(), 1);
        let mut h = headers(&[("vary", "accept")]);
        append_vary(&mut h, "accept-encoding");
        assert_eq!(vary_fields(&h), ["accept", "accept-encoding"]);
    }
}
