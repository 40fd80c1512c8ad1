//! The response head a cache judges storage and freshness by: the origin's fields with a valid
//! `CDN-Cache-Control` in place of `Cache-Control` (RFC 9213), and the RFC 9111 parsing rules
//! that `http-cache-semantics` does not apply made explicit, so the library reads what the
//! standard means. Clients still receive the origin's fields untouched.
//!
//! What the view fixes, each a rule the library leaves out:
//! - directive names are case-insensitive (RFC 9111 §5.2): `No-CaChE` is `no-cache`, in
//!   `Cache-Control` and `Pragma`;
//! - `Age` given as a list uses its first member (RFC 9111 §5.1);
//! - an `Expires` that is not a valid HTTP-date means "already expired" (RFC 9111 §5.3); the
//!   library's RFC 2822 parser accepts forms RFC 9110 §5.6.7 does not (doubled spaces);
//! - `Date`, `Expires` and `Last-Modified` in the obsolete RFC 850 and asctime forms, or with
//!   names in another case, are read (RFC 9110 §5.6.7) and handed on as IMF-fixdate, the only
//!   form the library reads ([`crate::http_date`]);
//! - any final status with explicit freshness may be stored (RFC 9111 §3), where the library
//!   stores only the statuses it lists ([`policy_status`]).

use std::borrow::Cow;
use std::time::SystemTime;

use http::header::{self, HeaderMap, HeaderValue};
use http::StatusCode;

use crate::cache_control::CacheControl;
use crate::cdn_cache_control;

/// The statuses `http-cache-semantics` will store (its `UNDERSTOOD_STATUSES`).
const LIBRARY_STATUSES: [u16; 14] = [
    200, 203, 204, 300, 301, 302, 303, 307, 308, 404, 405, 410, 414, 501,
];

/// The status the library should judge a response's storage by. RFC 9111 §3 lets a cache
/// store any final status when the response carries explicit freshness (`max-age`,
/// `s-maxage`, `Expires`) and no `must-understand`; the library stores only the statuses it
/// lists. Such a response is judged as a 200: with explicit freshness its status plays no
/// other part in storage or freshness. Without explicit freshness the status stands, so only
/// heuristically cacheable statuses are stored (§4.2.2). 206 and 304 are never stored as
/// such; 1xx are not final.
pub fn policy_status(status: StatusCode, view: &HeaderMap) -> StatusCode {
    let code = status.as_u16();
    if code < 200 || code == 206 || code == 304 || LIBRARY_STATUSES.contains(&code) {
        return status;
    }
    let directives = CacheControl::from_headers(view);
    let explicit = directives.seconds("max-age").is_some()
        || directives.seconds("s-maxage").is_some()
        || view.contains_key(header::EXPIRES);
    if explicit && !directives.has("must-understand") {
        StatusCode::OK
    } else {
        status
    }
}

/// The headers a cache judges storage and freshness by (borrowed when nothing needs
/// rewriting: the common case copies nothing). `now` places a two-digit year.
pub fn effective(headers: &HeaderMap, now: SystemTime) -> Cow<'_, HeaderMap> {
    let mut view = cdn_cache_control::effective(headers);
    for name in [header::CACHE_CONTROL, header::PRAGMA] {
        if let Some(lowered) = lowered_directives(&view, &name) {
            let view = view.to_mut();
            view.remove(&name);
            if let Ok(value) = HeaderValue::from_str(&lowered) {
                view.insert(name, value);
            }
        }
    }
    if let Some(first) = first_age(&view) {
        match first {
            Some(age) => view.to_mut().insert(header::AGE, HeaderValue::from(age)),
            None => view.to_mut().remove(header::AGE),
        };
    }
    for name in [header::DATE, header::EXPIRES, header::LAST_MODIFIED] {
        if let Some(imf) = obsolete_date(&view, &name, now) {
            view.to_mut().insert(name, imf);
        }
    }
    if has_invalid_expires(&view) {
        view.to_mut()
            .insert(header::EXPIRES, HeaderValue::from_static("0"));
    }
    view
}

/// The field as IMF-fixdate when it is one HTTP-date in another form; `None` when it is
/// IMF-fixdate already, absent, repeated or not a date.
fn obsolete_date(
    headers: &HeaderMap,
    name: &header::HeaderName,
    now: SystemTime,
) -> Option<HeaderValue> {
    let mut values = headers.get_all(name).iter();
    let text = values.next()?.to_str().ok()?;
    if values.next().is_some() {
        return None;
    }
    let imf = crate::http_date::normalise(text, now)?;
    HeaderValue::from_str(&imf).ok()
}

/// `view` with its freshness lifetime set to `secs` (a lifetime the cache chose: jitter,
/// negative caching). `Expires` goes, and the lifetime directive is rewritten in place:
/// `s-maxage` stays `s-maxage` (so a shared cache's other rules for it still hold), anything
/// else becomes `max-age`. Counted from the response's generation, like the directives.
pub fn with_lifetime(view: &HeaderMap, secs: u64) -> HeaderMap {
    let mut out = view.clone();
    out.remove(header::EXPIRES);
    let directives = CacheControl::from_headers(view);
    let name = if directives.has("s-maxage") {
        "s-maxage"
    } else {
        "max-age"
    };
    let mut kept: Vec<String> = Vec::new();
    for value in view.get_all(header::CACHE_CONTROL) {
        let Ok(text) = value.to_str() else { continue };
        for member in text.split(',').map(str::trim).filter(|m| !m.is_empty()) {
            let directive = member.split('=').next().unwrap_or("").trim();
            if !directive.eq_ignore_ascii_case("max-age")
                && !directive.eq_ignore_ascii_case("s-maxage")
            {
                kept.push(member.to_string());
            }
        }
    }
    kept.push(format!("{name}={secs}"));
    out.remove(header::CACHE_CONTROL);
    if let Ok(value) = HeaderValue::from_str(&kept.join(", ")) {
        out.insert(header::CACHE_CONTROL, value);
    }
    out
}

/// A response's head as a cache judges it (see [`effective`]). Only the head: a cache policy
/// never reads the body.
pub fn response_view(
    response: &http::Response<crate::Body>,
    now: SystemTime,
) -> http::Response<()> {
    let mut view = http::Response::new(());
    *view.headers_mut() = effective(response.headers(), now).into_owned();
    *view.status_mut() = policy_status(response.status(), view.headers());
    view
}

/// The field's lines joined with directive names lower-cased, when any name has an upper-case
/// letter; `None` when it is already canonical (or absent).
fn lowered_directives(headers: &HeaderMap, name: &header::HeaderName) -> Option<String> {
    // The common case, on every cache hit: nothing upper-case at all, nothing to allocate.
    if !headers
        .get_all(name)
        .iter()
        .any(|v| v.as_bytes().iter().any(u8::is_ascii_uppercase))
    {
        return None;
    }
    let mut needs = false;
    let mut lines = Vec::new();
    for value in headers.get_all(name) {
        let text = value.to_str().ok()?;
        let lowered: Vec<String> = text
            .split(',')
            .map(|member| match member.split_once('=') {
                Some((directive, argument)) => {
                    needs |= directive.bytes().any(|b| b.is_ascii_uppercase());
                    format!("{}={argument}", directive.to_ascii_lowercase())
                }
                None => {
                    needs |= member.bytes().any(|b| b.is_ascii_uppercase());
                    member.to_ascii_lowercase()
                }
            })
            .collect();
        lines.push(lowered.join(","));
    }
    needs.then(|| lines.join(", "))
}

/// The largest delta-seconds a cache need represent (RFC 9111 §1.2.2): a larger `Age` reads
/// as this, so no later sum of durations can overflow.
pub const MAX_DELTA_SECONDS: u64 = 1 << 31;

/// `Some(first)` when `Age` needs rewriting: a list, split over lines, or above
/// [`MAX_DELTA_SECONDS`] (`Some(None)` when its first member is not delta-seconds, which reads
/// as absent). `None` when it is one valid member in range, or absent.
fn first_age(headers: &HeaderMap) -> Option<Option<u64>> {
    let mut values = headers.get_all(header::AGE).iter();
    let first_line = values.next()?;
    let text = first_line.to_str().unwrap_or("");
    let is_list = text.contains(',') || values.next().is_some();
    let first = text.split(',').next().unwrap_or("").trim();
    let seconds = (!first.is_empty() && first.bytes().all(|b| b.is_ascii_digit()))
        .then(|| first.parse().unwrap_or(u64::MAX));
    let too_large = seconds.is_some_and(|s| s > MAX_DELTA_SECONDS);
    (is_list || too_large).then_some(seconds.map(|s| s.min(MAX_DELTA_SECONDS)))
}

/// Whether `Expires` is present but not one valid HTTP-date.
fn has_invalid_expires(headers: &HeaderMap) -> bool {
    let mut values = headers.get_all(header::EXPIRES).iter();
    let Some(first) = values.next() else {
        return false;
    };
    if values.next().is_some() {
        return true;
    }
    first
        .to_str()
        .map_or(true, |text| httpdate::parse_http_date(text).is_err())
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::testing::header_map as headers;

    fn now() -> SystemTime {
        httpdate::parse_http_date("Sun, 06 Dec 2026 00:00:00 GMT").unwrap()
    }

    #[test]
    fn rfc9111_5_2_directive_names_are_case_insensitive() {
        let h = headers(&[
            ("cache-control", "max-age=10000, No-CaChE"),
            ("pragma", "No-Cache"),
        ]);
        let view = effective(&h, now());
        assert_eq!(view["cache-control"], "max-age=10000, no-cache");
        assert_eq!(view["pragma"], "no-cache");
        // Arguments keep their case; canonical fields are not copied.
        let h = headers(&[("cache-control", "Private=\"Set-Cookie\"")]);
        assert_eq!(
            effective(&h, now())["cache-control"],
            "private=\"Set-Cookie\""
        );
        let canonical = headers(&[("cache-control", "max-age=60")]);
        assert!(matches!(effective(&canonical, now()), Cow::Borrowed(_)));
    }

    #[test]
    fn rfc9111_5_1_age_list_uses_its_first_member() {
        for (ages, expected) in [
            (&["7200, 0"][..], Some("7200")),
            (&["7200", "0"][..], Some("7200")),
            (&["x, 5"][..], None),
            // RFC 9111 §1.2.2: beyond what a cache need represent reads as 2^31 (the
            // `pipeline` fuzz target found http-cache-semantics overflowing on these).
            (&["18446744073709551615"][..], Some("2147483648")),
            (&["99999999999999999999999, 1"][..], Some("2147483648")),
            (&["2147483649"][..], Some("2147483648")),
        ] {
            let pairs: Vec<_> = ages.iter().map(|a| ("age", *a)).collect();
            let view = effective(&headers(&pairs), now()).into_owned();
            assert_eq!(
                view.get("age").map(|v| v.to_str().unwrap()),
                expected,
                "{ages:?}"
            );
        }
        assert_eq!(effective(&headers(&[("age", "30")]), now())["age"], "30");
        assert!(matches!(
            effective(&headers(&[("age", "2147483648")]), now()),
            Cow::Borrowed(_)
        ));
    }

    #[test]
    fn rfc9111_5_3_an_invalid_expires_is_already_expired() {
        for invalid in [
            "Thu, 18  Aug  2050 02:01:18 GMT",
            "0",
            "tomorrow",
            "Thu, 18 Aug 2050 02:01:18 +0000",
        ] {
            let view = effective(&headers(&[("expires", invalid)]), now()).into_owned();
            assert_eq!(view["expires"], "0", "{invalid}");
        }
        let valid = headers(&[("expires", "Thu, 18 Aug 2050 02:01:18 GMT")]);
        assert!(matches!(effective(&valid, now()), Cow::Borrowed(_)));
    }

    #[test]
    fn rfc9110_5_6_7_obsolete_date_forms_are_read() {
        let imf = "Fri, 18 Aug 2028 02:01:18 GMT";
        for obsolete in [
            "Friday, 18-Aug-28 02:01:18 GMT",
            "Fri Aug 18 02:01:18 2028",
            "fri, 18 AUG 2028 02:01:18 gmt",
        ] {
            for name in ["expires", "date", "last-modified"] {
                let view = effective(&headers(&[(name, obsolete)]), now()).into_owned();
                assert_eq!(view[name], imf, "{name}: {obsolete}");
            }
        }
        // Garbage in Date or Last-Modified stays as it is (the library ignores it); in
        // Expires it is "already expired".
        let view = effective(&headers(&[("date", "yesterday")]), now()).into_owned();
        assert_eq!(view["date"], "yesterday");
    }

    /// The policy reads an obsolete-form `Expires` as the instant it names, not as expired.
    #[test]
    fn an_obsolete_expires_gives_its_lifetime() {
        use http_cache_semantics::CachePolicy;
        let response = http::Response::builder()
            .header("date", "Sunday, 06-Dec-26 00:00:00 GMT")
            .header("expires", "Sun Dec  6 01:00:00 2026")
            .body(crate::Body::new())
            .unwrap();
        let request = http::Request::get("https://a.example/x").body(()).unwrap();
        let view = response_view(&response, now());
        let policy = CachePolicy::new_options(&request, &view, now(), Default::default());
        assert_eq!(policy.time_to_live(now()).as_secs(), 3600);
    }
}
