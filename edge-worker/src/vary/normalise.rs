//! The value a Vary comparison uses for one nominated request field (RFC 9111 §4.1): two
//! requests select the same stored response when their values differ only in ways the
//! field's own syntax says mean nothing.
//!
//! Every field: several lines are one comma-joined list (RFC 9110 §5.3). Nothing else is
//! assumed of a field we do not know the syntax of (`Cookie`, `User-Agent`, `X-…`): removing
//! whitespace or reordering there could merge requests an origin tells apart.
//!
//! The weighted lists of content negotiation — `Accept`, `Accept-Charset`, `Accept-Encoding`,
//! `Accept-Language` (RFC 9110 §12.4.2, §12.5) — also lose:
//! - the optional whitespace around `,`, `;` and `=` and empty members (§5.6.1, §5.6.6);
//! - case in the value and parameter names (codings, charsets, language tags and media types
//!   are case-insensitive; other parameter values keep their case);
//! - the spelling of the weight: `q=1`, `q=1.000` and none are one weight, `Q=0.50` is `q=0.5`;
//! - member order across weights: members are ordered by descending weight, since weights
//!   alone say the preference. Members of equal weight keep their order, because an origin
//!   may break ties by it (as many do for `Accept-Language`).
//!
//! So `en-US, fr;q=0.5` and `fr;Q=0.50,EN-us` select the same variant (nginx already
//! matches the whitespace case), while `en, fr` and `fr, en` do not.

use std::borrow::Cow;

use http::header::{self, HeaderMap, HeaderName};

/// The weighted lists of content negotiation: normalised member by member.
const WEIGHTED_LISTS: [HeaderName; 4] = [
    header::ACCEPT,
    header::ACCEPT_CHARSET,
    header::ACCEPT_ENCODING,
    header::ACCEPT_LANGUAGE,
];

/// Most members of a weighted list normalised; a longer list is compared as sent.
const MAX_MEMBERS: usize = 64;

/// The value of `field` in `headers` as a Vary comparison sees it; `None` when absent. An
/// empty field is `Some("")`, distinct from an absent one.
pub fn selecting_value<'h>(headers: &'h HeaderMap, field: &str) -> Option<Cow<'h, str>> {
    let mut lines = headers.get_all(field).iter();
    let first = lines.next()?;
    let joined: Cow<'h, str> = match lines.next() {
        None => String::from_utf8_lossy(first.as_bytes()),
        Some(second) => {
            let mut joined = String::from_utf8_lossy(first.as_bytes()).into_owned();
            for line in std::iter::once(second).chain(lines) {
                joined.push_str(", ");
                joined.push_str(&String::from_utf8_lossy(line.as_bytes()));
            }
            Cow::Owned(joined)
        }
    };
    if !WEIGHTED_LISTS.iter().any(|name| name.as_str() == field) || is_canonical(&joined) {
        return Some(joined);
    }
    Some(weighted_list(&joined).map_or(joined, Cow::Owned))
}

/// Already in the normal form: no whitespace, no upper case, no parameters (so every weight
/// is 1 and the order is kept).
fn is_canonical(text: &str) -> bool {
    !text
        .bytes()
        .any(|b| b == b' ' || b == b'\t' || b == b';' || b.is_ascii_uppercase())
}

/// The normal form of a weighted list; `None` (compare as sent) when it has too many members
/// or a weight that is not a qvalue.
fn weighted_list(text: &str) -> Option<String> {
    let mut members: Vec<(u16, String)> = Vec::new();
    for member in text.split(',').map(str::trim).filter(|m| !m.is_empty()) {
        if members.len() == MAX_MEMBERS {
            return None;
        }
        let (weight, normal) = weighted_member(member)?;
        // A member of nothing but separators (`;`) is as empty as an empty one (found by
        // the `vary_values` fuzz target).
        if !normal.is_empty() {
            members.push((weight, normal));
        }
    }
    // Stable: members of equal weight keep their order.
    members.sort_by_key(|member| std::cmp::Reverse(member.0));
    let mut out = String::with_capacity(text.len());
    for (i, (_, member)) in members.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push_str(member);
    }
    Some(out)
}

/// One member: its weight in thousandths and its normal form (`value;param=v;q=0.5`).
fn weighted_member(member: &str) -> Option<(u16, String)> {
    let mut parts = member.split(';').map(str::trim);
    let mut out = parts.next().unwrap_or("").to_ascii_lowercase();
    let mut weight = 1000;
    for parameter in parts.filter(|p| !p.is_empty()) {
        let (name, value) = match parameter.split_once('=') {
            Some((name, value)) => (name.trim().to_ascii_lowercase(), Some(value.trim())),
            None => (parameter.to_ascii_lowercase(), None),
        };
        if name == "q" {
            weight = qvalue(value?)?;
            continue;
        }
        out.push(';');
        out.push_str(&name);
        if let Some(value) = value {
            out.push('=');
            out.push_str(value);
        }
    }
    if weight != 1000 {
        out.push_str(";q=");
        out.push_str(&thousandths(weight));
    }
    Some((weight, out))
}

/// RFC 9110 §12.4.2: `0[.ddd]` or `1[.000]`, in thousandths.
fn qvalue(text: &str) -> Option<u16> {
    let (whole, fraction) = text.split_once('.').unwrap_or((text, ""));
    if fraction.len() > 3 || !fraction.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let fraction: u16 = format!("{fraction:0<3}").parse().ok()?;
    match whole {
        "0" => Some(fraction),
        "1" if fraction == 0 => Some(1000),
        _ => None,
    }
}

/// A weight below 1 written shortest: 500 → `0.5`, 0 → `0`.
fn thousandths(weight: u16) -> String {
    let text = format!("0.{weight:03}");
    let text = text.trim_end_matches('0').trim_end_matches('.');
    if text.is_empty() {
        "0".to_string()
    } else {
        text.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::header_map;
    use proptest::prelude::*;

    fn value(field: &str, lines: &[&str]) -> Option<String> {
        let pairs: Vec<(&str, &str)> = lines.iter().map(|l| (field, *l)).collect();
        selecting_value(&header_map(&pairs), field).map(Cow::into_owned)
    }

    #[test]
    fn rfc9111_4_1_weighted_lists_lose_whitespace_case_weight_spelling_and_cross_weight_order() {
        // (field, lines, lines that must select the same variant)
        let same: &[(&str, &[&str], &[&str])] = &[
            (
                "accept-language",
                &["en-US, fr;q=0.5"],
                &["fr;Q=0.50,EN-us"],
            ),
            (
                "accept-language",
                &["en-US,fr;q=0.5"],
                &["en-US ,  fr ; q=0.5"],
            ),
            ("accept-language", &["en, fr"], &["en", "fr"]),
            ("accept-encoding", &["gzip, br"], &["gzip,br"]),
            (
                "accept-encoding",
                &["br;q=1.0, gzip;q=0"],
                &["gzip;q=0.000,BR"],
            ),
            (
                "accept",
                &["text/html, */*;q=0.8"],
                &["*/*; q=0.8, Text/HTML"],
            ),
            (
                "accept-charset",
                &["utf-8, iso-8859-1;q=0.5"],
                &["ISO-8859-1;q=0.500,utf-8"],
            ),
        ];
        for (field, a, b) in same {
            assert_eq!(value(field, a), value(field, b), "{field}: {a:?} vs {b:?}");
        }
        // (field, lines, lines that must not)
        let different: &[(&str, &[&str], &[&str])] = &[
            // Equal weights: the order may be the origin's tie-break.
            ("accept-language", &["en, fr"], &["fr, en"]),
            ("accept-language", &["en"], &["en;q=0.9"]),
            ("accept-encoding", &["gzip"], &[""]),
            // A parameter value keeps its case.
            (
                "accept",
                &["text/plain;format=Flowed"],
                &["text/plain;format=flowed"],
            ),
            // Fields of unknown syntax are compared as sent, lines joined.
            ("x-tenant", &["a,b"], &["a, b"]),
            ("cookie", &["a=1; b=2"], &["a=1;b=2"]),
        ];
        for (field, a, b) in different {
            assert_ne!(value(field, a), value(field, b), "{field}: {a:?} vs {b:?}");
        }
        assert_eq!(value("x-tenant", &["a", "b"]), value("x-tenant", &["a, b"]));
        assert_eq!(value("accept-language", &[]), None);
        assert_eq!(value("accept-language", &[""]), Some(String::new()));
        assert_eq!(value("accept", &["a;b", ";"]), value("accept", &["a;b"]));
        assert_eq!(
            value("accept-language", &["fr;q=0.5, de;q=0.7 , EN"]).as_deref(),
            Some("en,de;q=0.7,fr;q=0.5")
        );
    }

    #[test]
    fn weights_that_are_not_qvalues_are_compared_as_sent() {
        for bad in ["en;q=2", "en;q=0.1234", "en;q=x", "en;q", "en;q=-0.5"] {
            assert_eq!(value("accept-language", &[bad]).as_deref(), Some(bad));
        }
        let long = vec!["a"; MAX_MEMBERS + 1].join(", ");
        assert_eq!(value("accept-language", &[&long]), Some(long.clone()));
    }

    proptest! {
        /// Normalising is idempotent, and the normal form selects the same variant as the
        /// value it came from.
        #[test]
        fn the_normal_form_is_a_fixed_point(
            members in proptest::collection::vec(
                ("[a-zA-Z*/-]{1,8}", proptest::option::of(0u16..=1000), " {0,2}"),
                0..6,
            ),
        ) {
            let text: Vec<String> = members
                .iter()
                .map(|(v, q, ws)| match q {
                    Some(q) => format!("{ws}{v}{ws};{ws}q={}.{:03}", q / 1000, q % 1000),
                    None => format!("{ws}{v}"),
                })
                .collect();
            let text = text.join(",");
            if let Some(once) = value("accept-language", &[&text]) {
                prop_assert_eq!(value("accept-language", &[&once]), Some(once.clone()));
            }
        }
    }
}
