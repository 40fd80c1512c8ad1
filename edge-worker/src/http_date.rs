//! HTTP-dates as recipients must read them (RFC 9110 §5.6.7): the preferred IMF-fixdate and
//! the two obsolete forms, RFC 850 (`Sunday, 06-Nov-94 08:49:37 GMT`) and asctime
//! (`Sun Nov  6 08:49:37 1994`), with day names, month names and `GMT` in any case (as nginx
//! reads them). Anything else is refused.
//!
//! Written here because the parsers at hand each miss part of it: `httpdate` reads the three
//! forms but not other cases, and maps two-digit years with a fixed pivot where §5.6.7 asks
//! for "not more than 50 years in the future"; `http-cache-semantics` reads RFC 2822 only, so
//! an `Expires` in an obsolete form counted as already expired. The calendar arithmetic is
//! the `time` crate's; [`normalise`] rewrites a field into IMF-fixdate (`httpdate`'s
//! formatter) for the library to read.

use std::time::SystemTime;

use time::{Date, Month, OffsetDateTime, PrimitiveDateTime, Time};

/// The longest HTTP-date (RFC 850 with `Wednesday`) is 33 bytes; past this it is not one.
const MAX_LEN: usize = 40;

const DAY_NAMES: [&str; 7] = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"];
const LONG_DAY_NAMES: [&str; 7] = [
    "monday",
    "tuesday",
    "wednesday",
    "thursday",
    "friday",
    "saturday",
    "sunday",
];
const MONTHS: [Month; 12] = [
    Month::January,
    Month::February,
    Month::March,
    Month::April,
    Month::May,
    Month::June,
    Month::July,
    Month::August,
    Month::September,
    Month::October,
    Month::November,
    Month::December,
];

/// Reads an HTTP-date in any of the three forms; `now` places an RFC 850 two-digit year
/// (§5.6.7: a year more than 50 years ahead of `now` is the most recent past year with those
/// digits). Dates before 1970 read as the Unix epoch: every use of them here is "long ago".
pub fn parse(text: &str, now: SystemTime) -> Option<SystemTime> {
    if text.len() > MAX_LEN || !text.is_ascii() {
        return None;
    }
    let (weekday, rest) = text.split_once([',', ' '])?;
    let separator = text.as_bytes()[weekday.len()];
    let weekday = weekday.to_ascii_lowercase();
    let fields = if separator == b',' {
        let rest = rest.strip_prefix(' ')?;
        if DAY_NAMES.contains(&weekday.as_str()) {
            imf_fixdate(rest)?
        } else if LONG_DAY_NAMES.contains(&weekday.as_str()) {
            rfc850(rest, now)?
        } else {
            return None;
        }
    } else if DAY_NAMES.contains(&weekday.as_str()) {
        asctime(rest)?
    } else {
        return None;
    };
    Some(fields.at())
}

/// `text` as IMF-fixdate when it is an HTTP-date in another form or case; `None` when it is
/// IMF-fixdate already or not a date at all.
pub fn normalise(text: &str, now: SystemTime) -> Option<String> {
    if httpdate::parse_http_date(text).is_ok() && text.as_bytes().get(3) == Some(&b',') {
        return None;
    }
    parse(text, now).map(httpdate::fmt_http_date)
}

/// The calendar fields of a date, before they are checked.
struct Fields {
    year: i32,
    month: Month,
    day: u8,
    hour: u8,
    minute: u8,
    second: u8,
}

impl Fields {
    fn at(&self) -> SystemTime {
        let at = Date::from_calendar_date(self.year, self.month, self.day)
            .ok()
            .zip(Time::from_hms(self.hour, self.minute, self.second).ok())
            .map(|(date, time)| PrimitiveDateTime::new(date, time).assume_utc());
        // Checked in `checked`, so a date that does not exist never reaches here.
        let at = at.unwrap_or(OffsetDateTime::UNIX_EPOCH);
        SystemTime::from(at).max(SystemTime::UNIX_EPOCH)
    }

    /// These fields when they name a real instant (no 30 February, no hour 24; RFC 9110
    /// allows a leap second, 60, which reads as 59).
    fn checked(self) -> Option<Self> {
        let second = self.second.min(59);
        Date::from_calendar_date(self.year, self.month, self.day).ok()?;
        Time::from_hms(self.hour, self.minute, second).ok()?;
        Some(Self { second, ..self })
    }
}

/// `DD Mon YYYY HH:MM:SS GMT`
fn imf_fixdate(rest: &str) -> Option<Fields> {
    let mut parts = rest.split(' ');
    let day = two_digits(parts.next()?)?;
    let month = month(parts.next()?)?;
    let year = four_digits(parts.next()?)?;
    let (hour, minute, second) = time_of_day(parts.next()?)?;
    gmt(parts.next()?)?;
    parts.next().is_none().then_some(())?;
    Fields {
        year,
        month,
        day,
        hour,
        minute,
        second,
    }
    .checked()
}

/// `DD-Mon-YY HH:MM:SS GMT`
fn rfc850(rest: &str, now: SystemTime) -> Option<Fields> {
    let mut parts = rest.split(' ');
    let mut date = parts.next()?.split('-');
    let day = two_digits(date.next()?)?;
    let month = month(date.next()?)?;
    let yy = two_digits(date.next()?)?;
    date.next().is_none().then_some(())?;
    let (hour, minute, second) = time_of_day(parts.next()?)?;
    gmt(parts.next()?)?;
    parts.next().is_none().then_some(())?;
    Fields {
        year: century_of(yy, now),
        month,
        day,
        hour,
        minute,
        second,
    }
    .checked()
}

/// `Mon DD HH:MM:SS YYYY` with the day as two digits or a space and one digit.
fn asctime(rest: &str) -> Option<Fields> {
    let (month_name, rest) = rest.split_once(' ')?;
    let (day, rest) = match rest.strip_prefix(' ') {
        Some(single) => {
            let (digit, rest) = single.split_at_checked(1)?;
            (one_digit(digit)?, rest)
        }
        None => {
            let (digits, rest) = rest.split_at_checked(2)?;
            (two_digits(digits)?, rest)
        }
    };
    let mut parts = rest.strip_prefix(' ')?.split(' ');
    let (hour, minute, second) = time_of_day(parts.next()?)?;
    let year = four_digits(parts.next()?)?;
    parts.next().is_none().then_some(())?;
    Fields {
        year,
        month: month(month_name)?,
        day,
        hour,
        minute,
        second,
    }
    .checked()
}

/// The four-digit year of `yy` (RFC 9110 §5.6.7): this century's, unless that is more than
/// 50 years after `now`, then the century before's.
fn century_of(yy: u8, now: SystemTime) -> i32 {
    let this_year = OffsetDateTime::from(now.max(SystemTime::UNIX_EPOCH)).year();
    let century = this_year - this_year.rem_euclid(100);
    let year = century + i32::from(yy);
    if year > this_year + 50 {
        year - 100
    } else {
        year
    }
}

fn month(name: &str) -> Option<Month> {
    const NAMES: [&str; 12] = [
        "jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec",
    ];
    let i = NAMES.iter().position(|m| m.eq_ignore_ascii_case(name))?;
    Some(MONTHS[i])
}

fn gmt(text: &str) -> Option<()> {
    text.eq_ignore_ascii_case("gmt").then_some(())
}

/// `HH:MM:SS`
fn time_of_day(text: &str) -> Option<(u8, u8, u8)> {
    let mut parts = text.split(':');
    let hour = two_digits(parts.next()?)?;
    let minute = two_digits(parts.next()?)?;
    let second = two_digits(parts.next()?)?;
    parts.next().is_none().then_some((hour, minute, second))
}

fn one_digit(text: &str) -> Option<u8> {
    let &[d] = text.as_bytes() else { return None };
    d.is_ascii_digit().then(|| d - b'0')
}

fn two_digits(text: &str) -> Option<u8> {
    let &[a, b] = text.as_bytes() else {
        return None;
    };
    (a.is_ascii_digit() && b.is_ascii_digit()).then(|| (a - b'0') * 10 + (b - b'0'))
}

fn four_digits(text: &str) -> Option<i32> {
    (text.len() == 4 && text.bytes().all(|b| b.is_ascii_digit()))
        .then(|| text.parse().ok())
        .flatten()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::time::Duration;

    fn unix_seconds(at: SystemTime) -> u64 {
        at.duration_since(SystemTime::UNIX_EPOCH).unwrap().as_secs()
    }

    /// 2026-12-06, the reference "now" for two-digit years.
    fn now() -> SystemTime {
        httpdate::parse_http_date("Sun, 06 Dec 2026 00:00:00 GMT").unwrap()
    }

    fn secs(text: &str) -> Option<u64> {
        parse(text, now()).map(unix_seconds)
    }

    /// RFC 9110 §5.6.7's three examples name the same instant.
    const NOV_6_1994: u64 = 784_111_777;

    #[test]
    fn rfc9110_5_6_7_the_three_forms_of_one_instant() {
        for text in [
            "Sun, 06 Nov 1994 08:49:37 GMT",
            "Sunday, 06-Nov-94 08:49:37 GMT",
            "Sun Nov  6 08:49:37 1994",
        ] {
            assert_eq!(secs(text), Some(NOV_6_1994), "{text}");
        }
        assert_eq!(
            secs("Thu Nov 26 08:49:37 2026"),
            secs("Thu, 26 Nov 2026 08:49:37 GMT")
        );
    }

    #[test]
    fn names_in_any_case() {
        for text in [
            "sun, 06 nov 1994 08:49:37 gmt",
            "SUN, 06 NOV 1994 08:49:37 GMT",
            "SUNDAY, 06-NOV-94 08:49:37 Gmt",
            "sun nov  6 08:49:37 1994",
        ] {
            assert_eq!(secs(text), Some(NOV_6_1994), "{text}");
        }
    }

    #[test]
    fn rfc9110_5_6_7_two_digit_years_are_at_most_50_years_ahead() {
        let year = |yy: &str| {
            let at = parse(&format!("Monday, 01-Jan-{yy} 00:00:00 GMT"), now())?;
            Some(OffsetDateTime::from(at).year())
        };
        assert_eq!(year("26"), Some(2026));
        assert_eq!(year("76"), Some(2076));
        assert_eq!(year("77"), Some(1977));
        assert_eq!(year("94"), Some(1994));
        assert_eq!(year("00"), Some(2000));
    }

    #[test]
    fn garbage_is_refused() {
        for text in [
            "",
            "0",
            "-1",
            "tomorrow",
            "Thu, 18  Aug  2050 02:01:18 GMT",
            "Thu, 18 Aug 2050 02:01:18 +0000",
            "Thu, 18 Aug 2050 02:01:18 UTC",
            "Thu, 18 Aug 2050 02:01:18",
            "Thu, 18 Aug 2050 02:01:18 GMT x",
            "Thu, 31 Feb 2050 02:01:18 GMT",
            "Thu, 18 Aug 2050 24:00:00 GMT",
            "Thu, 18 Aug 50 02:01:18 GMT",
            "Thursday, 18-Aug-2050 02:01:18 GMT",
            "Thursday 18-Aug-50 02:01:18 GMT",
            "Thu Aug 18 02:01:18 50",
            "Thu Aug  18 02:01:18 2050",
            "Xyz, 18 Aug 2050 02:01:18 GMT",
            "Thu, 18 Aug 2050 2:01:18 GMT",
            "Thu, 1é Aug 2050 02:01:18 GMT",
        ] {
            assert_eq!(secs(text), None, "{text:?}");
        }
    }

    #[test]
    fn before_1970_reads_as_the_epoch() {
        assert_eq!(secs("Mon, 01 Jan 1968 00:00:00 GMT"), Some(0));
    }

    #[test]
    fn normalise_rewrites_only_other_forms() {
        assert_eq!(normalise("Sun, 06 Nov 1994 08:49:37 GMT", now()), None);
        assert_eq!(normalise("garbage", now()), None);
        for text in [
            "Sunday, 06-Nov-94 08:49:37 GMT",
            "Sun Nov  6 08:49:37 1994",
            "sun, 06 nov 1994 08:49:37 gmt",
        ] {
            assert_eq!(
                normalise(text, now()).as_deref(),
                Some("Sun, 06 Nov 1994 08:49:37 GMT"),
                "{text}"
            );
        }
    }

    proptest! {
        /// Every instant reads back from each of the three forms, whatever the case.
        #[test]
        fn every_form_reads_back(secs in 0u64..4_102_444_800, upper in any::<bool>()) {
            let at = SystemTime::UNIX_EPOCH + Duration::from_secs(secs);
            let imf = httpdate::fmt_http_date(at);
            let date = OffsetDateTime::from(at);
            let asc = format!(
                "{} {} {:>2} {:02}:{:02}:{:02} {}",
                &imf[..3], &imf[8..11], date.day(), date.hour(), date.minute(), date.second(),
                date.year()
            );
            let case = |t: String| if upper { t.to_ascii_uppercase() } else { t.to_ascii_lowercase() };
            prop_assert_eq!(parse(&case(imf.clone()), now()), Some(at));
            prop_assert_eq!(parse(&case(asc), now()), Some(at));
            let yy = date.year().rem_euclid(100);
            if century_of(yy as u8, now()) == date.year() {
                let long = LONG_DAY_NAMES[DAY_NAMES.iter().position(|d| d.eq_ignore_ascii_case(&imf[..3])).unwrap()];
                let rfc850 = format!("{long}, {}-{}-{yy:02} {} GMT", &imf[5..7], &imf[8..11], &imf[17..25]);
                prop_assert_eq!(parse(&case(rfc850), now()), Some(at));
            }
        }

        /// Any text is read or refused, never a panic.
        #[test]
        fn any_text_is_read_or_refused(text in "\\PC{0,40}") {
            let _ = parse(&text, now());
            let _ = normalise(&text, now());
        }
    }
}
