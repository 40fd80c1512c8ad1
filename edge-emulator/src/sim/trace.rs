//! Request traces users replay through the simulator: their own logs, as CSV or JSON Lines.
//!
//! Both formats carry the same columns (CSV: a header row naming them, in any order; JSON Lines:
//! one object per line with these keys). See [`TRACE_COLUMNS_HELP`], which the CLI prints:
//!
//! | column            | required | meaning |
//! |-------------------|----------|---------|
//! | `time`            | yes | seconds from trace start (a float, ≥ 0), or an RFC 3339 timestamp (converted to seconds after the first record's); non-decreasing |
//! | `country`         | one of  | client country, ISO 3166-1 alpha-2 (`DE`; case-insensitive, stored upper-case) |
//! | `pop`             | these   | PoP name the request arrives at (letters, digits, `-`, `_`, `.`) |
//! | `method`          | no  | an RFC 9110 method, case-sensitive (default `GET`), or `PURGE`: purge `url` from every cache (a trailing `*` purges the prefix) |
//! | `url`             | yes | path and query, starting with `/` (no scheme, host or fragment) |
//! | `accept_encoding` | no  | Accept-Encoding request header |
//! | `if_none_match`   | no  | If-None-Match request header |
//! | `authorization`   | no  | Authorization header; `demo` means "attach a valid demo token" |
//! | `fastly_soft_purge` | no | `1` on a `PURGE` record: mark stale instead of remove (Fastly's soft purge header) |
//!
//! An empty CSV field, or a JSON `null` or `""`, means the column is absent for that record.
//! Column names are case-insensitive and `-` may stand for `_` (`Accept-Encoding`). Unknown
//! columns are rejected rather than ignored, so a misspelt optional column (`if_non_match`)
//! cannot silently drop every conditional request. CSV lines starting with `#` are comments;
//! blank JSON Lines lines are skipped.

use std::path::{Path, PathBuf};
use std::str::FromStr;

use thiserror::Error;
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

/// What the CLI prints for `--help` on traces: the columns and their rules.
pub const TRACE_COLUMNS_HELP: &str = "\
Trace files: CSV with a header row (.csv) or JSON Lines, one object per line (.jsonl, .ndjson).
Columns / keys:
  time             required  seconds from trace start (float >= 0) or an RFC 3339 timestamp
                             (e.g. 2024-05-01T12:00:00.250Z); must not decrease
  country          one of    client country, ISO 3166-1 alpha-2 (e.g. DE)
  pop              these     PoP name the request arrives at (e.g. fra)
  method           optional  GET (default), HEAD, POST, PUT, DELETE, CONNECT, OPTIONS, TRACE,
                             or PURGE: purge url from every cache after the scenario's
                             purge_propagation_ms (url ending in * purges that prefix)
  url              required  path and query, starting with '/' (e.g. /api/items?id=3)
  accept_encoding  optional  Accept-Encoding header (e.g. br, gzip)
  if_none_match    optional  If-None-Match header (e.g. \"v1\")
  authorization    optional  Authorization header; the value demo attaches a valid demo token
  fastly_soft_purge optional 1 on a PURGE record marks stale instead of removing (soft purge)
An empty field (CSV) or null / \"\" (JSON) means absent. Other columns are an error.
CSV lines starting with # are comments. Limits: 10,000,000 records, url and header values
8 KiB each.";

/// Most records one trace may hold; a replay keeps them all in memory.
pub const MAX_RECORDS: usize = 10_000_000;
/// Longest trace text accepted, so a caller can refuse a file before reading it.
pub const MAX_TRACE_BYTES: usize = 1 << 31;
/// Longest `url`, bytes (a common server limit on the request target).
pub const MAX_URL_BYTES: usize = 8 * 1024;
/// Longest header value, bytes.
pub const MAX_HEADER_VALUE_BYTES: usize = 8 * 1024;
/// Longest PoP name, bytes.
pub const MAX_POP_NAME_BYTES: usize = 64;

/// The methods RFC 9110 §9.3 defines. Method names are case-sensitive (§9.1).
pub const METHODS: [&str; 8] = [
    "GET", "HEAD", "POST", "PUT", "DELETE", "CONNECT", "OPTIONS", "TRACE",
];

/// Not an RFC 9110 method: Varnish's, Squid's and Fastly's request to purge a URL.
pub const PURGE: &str = "PURGE";

/// The header names records carry, in the order [`TraceRecord::headers`] lists them.
const HEADER_COLUMNS: [(&str, &str); 4] = [
    ("accept_encoding", "accept-encoding"),
    ("if_none_match", "if-none-match"),
    ("authorization", "authorization"),
    ("fastly_soft_purge", "fastly-soft-purge"),
];
const KNOWN_COLUMNS: &str = "time, country, pop, method, url, accept_encoding, if_none_match, \
                             authorization, fastly_soft_purge";

/// One request to replay.
#[derive(Debug, Clone, PartialEq)]
pub struct TraceRecord {
    /// Seconds after the trace's start (after the first record, for RFC 3339 traces).
    pub time_s: f64,
    /// ISO 3166-1 alpha-2, upper-case.
    pub country: Option<String>,
    pub pop: Option<String>,
    pub method: String,
    /// Path and query, starting with '/'.
    pub path: String,
    /// Lower-case HTTP names ("accept-encoding", "if-none-match", "authorization"), in that
    /// order, only those present. An authorization value of "demo" asks the replay to attach a
    /// valid demo token.
    pub headers: Vec<(String, String)>,
}

/// How a trace file is encoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TraceFormat {
    /// Comma-separated, header row first.
    Csv,
    /// One JSON object per line.
    JsonLines,
}

impl TraceFormat {
    /// Picks the format by extension: `.csv`, or `.jsonl` / `.ndjson` (case-insensitive).
    pub fn from_path(path: &Path) -> Result<TraceFormat, TraceError> {
        let extension = path
            .extension()
            .and_then(|e| e.to_str())
            .map(str::to_ascii_lowercase);
        match extension.as_deref() {
            Some("csv") => Ok(TraceFormat::Csv),
            Some("jsonl" | "ndjson") => Ok(TraceFormat::JsonLines),
            _ => Err(TraceError::UnknownFormat {
                path: path.to_path_buf(),
            }),
        }
    }
}

/// Why a trace was refused. Per-record problems name the 1-based line they are on.
#[derive(Debug, Clone, PartialEq, Error)]
pub enum TraceError {
    #[error("cannot tell the trace format of {}: name it .csv, .jsonl or .ndjson", path.display())]
    UnknownFormat { path: PathBuf },
    #[error("the trace is {bytes} bytes; the limit is {MAX_TRACE_BYTES}")]
    TooLarge { bytes: usize },
    #[error("the trace has more than {MAX_RECORDS} records")]
    TooManyRecords,
    #[error("line {line}: {problem}")]
    Line { line: u64, problem: LineProblem },
}

/// What is wrong on one line.
#[derive(Debug, Clone, PartialEq, Error)]
pub enum LineProblem {
    #[error("malformed CSV: {0}")]
    Csv(String),
    #[error("malformed JSON: {0}")]
    Json(String),
    #[error("expected one JSON object per line")]
    NotAnObject,
    #[error("unknown column {0:?} (known: {KNOWN_COLUMNS})")]
    UnknownColumn(String),
    #[error("column {0:?} appears twice")]
    DuplicateColumn(String),
    #[error("there is no {0:?} column")]
    MissingColumn(&'static str),
    #[error("there is neither a \"country\" nor a \"pop\" column")]
    NoLocationColumn,
    #[error("{0:?} must be a string")]
    NotAString(String),
    #[error("time must be a number of seconds or an RFC 3339 timestamp string")]
    BadTimeType,
    #[error("{0:?} is missing")]
    MissingField(&'static str),
    #[error("neither country nor pop is given")]
    NoLocation,
    #[error("time {0:?} is neither seconds nor an RFC 3339 timestamp")]
    BadTime(String),
    #[error("time {0} is negative")]
    NegativeTime(f64),
    #[error("time {0:?} is an RFC 3339 timestamp but the first record's time was in seconds")]
    TimestampAfterSeconds(String),
    #[error("time {0:?} is in seconds but the first record's time was an RFC 3339 timestamp")]
    SecondsAfterTimestamp(String),
    #[error("time {time} is before the previous record's {previous}")]
    TimeGoesBack { time: f64, previous: f64 },
    #[error("country {0:?} is not an ISO 3166-1 alpha-2 code (two letters)")]
    BadCountry(String),
    #[error("pop {0:?} must be 1 to {MAX_POP_NAME_BYTES} letters, digits, '-', '_' or '.'")]
    BadPop(String),
    #[error("method {0:?} is not one of {METHODS:?} or PURGE (method names are case-sensitive)")]
    BadMethod(String),
    #[error("url {0:?} must be a path and query starting with '/'")]
    UrlNotAPath(String),
    #[error("url is {0} bytes; the limit is {MAX_URL_BYTES}")]
    UrlTooLong(usize),
    #[error("url {0:?} has a fragment ('#') or a character not allowed in a request target")]
    BadUrl(String),
    #[error("{name} is {len} bytes; the limit is {MAX_HEADER_VALUE_BYTES}")]
    HeaderTooLong { name: &'static str, len: usize },
    #[error("{name} {value:?} has a character not allowed in a header value")]
    BadHeaderValue { name: &'static str, value: String },
}

/// Parses a whole trace. Records come back in file order with times in seconds.
pub fn parse_trace(text: &str, format: TraceFormat) -> Result<Vec<TraceRecord>, TraceError> {
    if text.len() > MAX_TRACE_BYTES {
        return Err(TraceError::TooLarge { bytes: text.len() });
    }
    // Spreadsheet exports often start with a byte-order mark, which would glue onto "time".
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    match format {
        TraceFormat::Csv => parse_csv(text),
        TraceFormat::JsonLines => parse_json_lines(text),
    }
}

/// The fields of one record as read, before validation. Empty values are already `None`.
#[derive(Default)]
struct RawRecord<'a> {
    time: Option<&'a str>,
    country: Option<&'a str>,
    pop: Option<&'a str>,
    method: Option<&'a str>,
    url: Option<&'a str>,
    headers: [Option<&'a str>; HEADER_COLUMNS.len()],
}

/// A column a header or key names.
#[derive(Clone, Copy, PartialEq)]
enum Column {
    Time,
    Country,
    Pop,
    Method,
    Url,
    Header(usize),
}

impl Column {
    fn from_name(name: &str) -> Option<Column> {
        // Exact names are the common case; only other spellings pay for normalising.
        if let Some(column) = Column::from_exact_name(name) {
            return Some(column);
        }
        Column::from_exact_name(&name.trim().to_ascii_lowercase().replace('-', "_"))
    }

    fn from_exact_name(name: &str) -> Option<Column> {
        Some(match name {
            "time" => Column::Time,
            "country" => Column::Country,
            "pop" => Column::Pop,
            "method" => Column::Method,
            "url" => Column::Url,
            other => Column::Header(HEADER_COLUMNS.iter().position(|(c, _)| *c == other)?),
        })
    }
}

impl<'a> RawRecord<'a> {
    fn set(&mut self, column: Column, value: &'a str) {
        let value = Some(value).filter(|v| !v.is_empty());
        match column {
            Column::Time => self.time = value,
            Column::Country => self.country = value,
            Column::Pop => self.pop = value,
            Column::Method => self.method = value,
            Column::Url => self.url = value,
            Column::Header(i) => self.headers[i] = value,
        }
    }
}

/// Checks a CSV header row or a JSON object's keys, mapping each to its column.
fn columns<'k>(names: impl Iterator<Item = &'k str>) -> Result<Vec<Column>, LineProblem> {
    let mut columns = Vec::new();
    for name in names {
        let column =
            Column::from_name(name).ok_or_else(|| LineProblem::UnknownColumn(excerpt(name)))?;
        if columns.contains(&column) {
            return Err(LineProblem::DuplicateColumn(excerpt(name)));
        }
        columns.push(column);
    }
    Ok(columns)
}

fn parse_csv(text: &str) -> Result<Vec<TraceRecord>, TraceError> {
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(true)
        .trim(csv::Trim::All)
        .comment(Some(b'#'))
        .from_reader(text.as_bytes());
    let header = reader.headers().map_err(|e| csv_error(&e, 1))?.clone();
    // csv's own line counter skips comment and blank lines, so lines are counted from byte
    // offsets instead, incrementally to stay linear in the trace's length.
    let mut lines = LineCounter::new(text);
    let header_line = header.position().map_or(1, |p| lines.line_at(p.byte()));
    let at_header = |problem| TraceError::Line {
        line: header_line,
        problem,
    };
    let columns = columns(header.iter()).map_err(at_header)?;
    for required in [Column::Time, Column::Url] {
        if !columns.contains(&required) {
            let name = if required == Column::Time {
                "time"
            } else {
                "url"
            };
            return Err(at_header(LineProblem::MissingColumn(name)));
        }
    }
    if !columns.contains(&Column::Country) && !columns.contains(&Column::Pop) {
        return Err(at_header(LineProblem::NoLocationColumn));
    }

    let mut builder = RecordBuilder::default();
    let mut record = csv::StringRecord::new();
    loop {
        match reader.read_record(&mut record) {
            Ok(false) => break,
            Ok(true) => {}
            Err(e) => {
                let line = e
                    .position()
                    .map_or(header_line + 1, |p| lines.line_at(p.byte()));
                return Err(csv_error(&e, line));
            }
        }
        let line = record.position().map_or(0, |p| lines.line_at(p.byte()));
        let mut raw = RawRecord::default();
        for (&column, value) in columns.iter().zip(record.iter()) {
            raw.set(column, value);
        }
        builder.push(&raw, line)?;
    }
    Ok(builder.records)
}

/// 1-based line numbers of CSV records from their byte offsets, for offsets that never
/// decrease. csv reports where it began reading a record, which is before any blank or comment
/// lines it then skipped; those are skipped here too to land on the record's own line.
struct LineCounter<'a> {
    text: &'a [u8],
    counted_to: usize,
    line: u64,
}

impl<'a> LineCounter<'a> {
    fn new(text: &'a str) -> Self {
        LineCounter {
            text: text.as_bytes(),
            counted_to: 0,
            line: 1,
        }
    }

    fn line_at(&mut self, byte: u64) -> u64 {
        let mut start = usize::try_from(byte)
            .unwrap_or(usize::MAX)
            .min(self.text.len());
        loop {
            let rest = &self.text[start..];
            let skipped = match rest.first() {
                Some(b'\n') => 1,
                Some(b'\r') if rest.get(1) == Some(&b'\n') => 2,
                Some(b'#') => rest
                    .iter()
                    .position(|&b| b == b'\n')
                    .map_or(rest.len(), |i| i + 1),
                _ => 0,
            };
            if skipped == 0 {
                break;
            }
            start += skipped;
        }
        if start > self.counted_to {
            let newlines = self.text[self.counted_to..start]
                .iter()
                .filter(|&&b| b == b'\n')
                .count();
            self.line += newlines as u64;
            self.counted_to = start;
        }
        self.line
    }
}

fn csv_error(error: &csv::Error, line: u64) -> TraceError {
    let problem = match error.kind() {
        csv::ErrorKind::UnequalLengths {
            expected_len, len, ..
        } => LineProblem::Csv(format!("{len} fields where the header has {expected_len}")),
        _ => LineProblem::Csv(error.to_string()),
    };
    TraceError::Line { line, problem }
}

fn parse_json_lines(text: &str) -> Result<Vec<TraceRecord>, TraceError> {
    let mut builder = RecordBuilder::default();
    for (index, text_line) in text.lines().enumerate() {
        if text_line.trim().is_empty() {
            continue;
        }
        let line = index as u64 + 1;
        let at_line = |problem| TraceError::Line { line, problem };
        let value: serde_json::Value = serde_json::from_str(text_line)
            .map_err(|e| at_line(LineProblem::Json(e.to_string())))?;
        let serde_json::Value::Object(object) = value else {
            return Err(at_line(LineProblem::NotAnObject));
        };
        let keys = columns(object.keys().map(String::as_str)).map_err(at_line)?;
        // A number is only meaningful for time; its text goes through the same parsing as CSV's.
        let mut time_number = String::new();
        let mut raw = RawRecord::default();
        for (&column, (key, value)) in keys.iter().zip(&object) {
            match value {
                serde_json::Value::Null => {}
                serde_json::Value::String(s) => raw.set(column, s.trim()),
                serde_json::Value::Number(n) if column == Column::Time => {
                    time_number = n.to_string();
                }
                _ if column == Column::Time => return Err(at_line(LineProblem::BadTimeType)),
                _ => return Err(at_line(LineProblem::NotAString(excerpt(key)))),
            }
        }
        if !time_number.is_empty() {
            raw.set(Column::Time, &time_number);
        }
        builder.push(&raw, line)?;
    }
    Ok(builder.records)
}

/// How the trace states times; fixed by its first record.
enum TimeBase {
    Seconds,
    Timestamp(OffsetDateTime),
}

/// Validates records in order, carrying what later records are checked against.
#[derive(Default)]
struct RecordBuilder {
    records: Vec<TraceRecord>,
    time_base: Option<TimeBase>,
}

impl RecordBuilder {
    fn push(&mut self, raw: &RawRecord<'_>, line: u64) -> Result<(), TraceError> {
        if self.records.len() >= MAX_RECORDS {
            return Err(TraceError::TooManyRecords);
        }
        let record = self
            .validate(raw)
            .map_err(|problem| TraceError::Line { line, problem })?;
        self.records.push(record);
        Ok(())
    }

    fn validate(&mut self, raw: &RawRecord<'_>) -> Result<TraceRecord, LineProblem> {
        let time_s = self.time_s(raw.time.ok_or(LineProblem::MissingField("time"))?)?;
        if let Some(previous) = self.records.last().map(|r| r.time_s) {
            if time_s < previous {
                return Err(LineProblem::TimeGoesBack {
                    time: time_s,
                    previous,
                });
            }
        }
        if raw.country.is_none() && raw.pop.is_none() {
            return Err(LineProblem::NoLocation);
        }
        let country = raw.country.map(country).transpose()?;
        let pop = raw.pop.map(pop).transpose()?;
        let method = method(raw.method.unwrap_or("GET"))?;
        let path = url(raw.url.ok_or(LineProblem::MissingField("url"))?)?;
        let mut headers = Vec::new();
        for ((_, name), value) in HEADER_COLUMNS.iter().zip(raw.headers) {
            if let Some(value) = value {
                headers.push((name.to_string(), header_value(name, value)?));
            }
        }
        Ok(TraceRecord {
            time_s,
            country,
            pop,
            method,
            path,
            headers,
        })
    }

    /// Seconds since the trace's start; the first record decides between seconds and RFC 3339.
    fn time_s(&mut self, text: &str) -> Result<f64, LineProblem> {
        let seconds = f64::from_str(text).ok();
        match (&self.time_base, seconds) {
            (None | Some(TimeBase::Seconds), Some(s)) => {
                // from_str accepts "inf" and "NaN"; neither is a time.
                if !s.is_finite() {
                    return Err(LineProblem::BadTime(excerpt(text)));
                }
                if s < 0.0 {
                    return Err(LineProblem::NegativeTime(s));
                }
                self.time_base = Some(TimeBase::Seconds);
                Ok(s)
            }
            (Some(TimeBase::Timestamp(_)), Some(_)) => {
                Err(LineProblem::SecondsAfterTimestamp(excerpt(text)))
            }
            (base, None) => {
                let at = OffsetDateTime::parse(text, &Rfc3339)
                    .map_err(|_| LineProblem::BadTime(excerpt(text)))?;
                match base {
                    None => {
                        self.time_base = Some(TimeBase::Timestamp(at));
                        Ok(0.0)
                    }
                    Some(TimeBase::Timestamp(first)) => Ok((at - *first).as_seconds_f64()),
                    Some(TimeBase::Seconds) => {
                        Err(LineProblem::TimestampAfterSeconds(excerpt(text)))
                    }
                }
            }
        }
    }
}

fn country(text: &str) -> Result<String, LineProblem> {
    if text.len() == 2 && text.bytes().all(|b| b.is_ascii_alphabetic()) {
        Ok(text.to_ascii_uppercase())
    } else {
        Err(LineProblem::BadCountry(excerpt(text)))
    }
}

fn pop(text: &str) -> Result<String, LineProblem> {
    let allowed = |b: u8| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.');
    if text.len() <= MAX_POP_NAME_BYTES && text.bytes().all(allowed) {
        Ok(text.to_string())
    } else {
        Err(LineProblem::BadPop(excerpt(text)))
    }
}

fn method(text: &str) -> Result<String, LineProblem> {
    if METHODS.contains(&text) || text == PURGE {
        Ok(text.to_string())
    } else {
        Err(LineProblem::BadMethod(excerpt(text)))
    }
}

fn url(text: &str) -> Result<String, LineProblem> {
    if text.len() > MAX_URL_BYTES {
        return Err(LineProblem::UrlTooLong(text.len()));
    }
    if !text.starts_with('/') {
        return Err(LineProblem::UrlNotAPath(excerpt(text)));
    }
    // http's parser drops a fragment silently; clients never send one, so it is an error here.
    if text.contains('#') || http::uri::PathAndQuery::from_str(text).is_err() {
        return Err(LineProblem::BadUrl(excerpt(text)));
    }
    Ok(text.to_string())
}

fn header_value(name: &'static str, text: &str) -> Result<String, LineProblem> {
    if text.len() > MAX_HEADER_VALUE_BYTES {
        return Err(LineProblem::HeaderTooLong {
            name,
            len: text.len(),
        });
    }
    if http::HeaderValue::from_str(text).is_err() {
        return Err(LineProblem::BadHeaderValue {
            name,
            value: excerpt(text),
        });
    }
    Ok(text.to_string())
}

/// At most 80 characters of a user's value, so an error about an 8 KiB url stays one line.
fn excerpt(text: &str) -> String {
    const LIMIT: usize = 80;
    match text.char_indices().nth(LIMIT) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None => text.to_string(),
    }
}

#[cfg(test)]
mod tests;
