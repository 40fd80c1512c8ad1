//! Tests of the trace parser: both formats, every error's line number, limits, and
//! proptests (CSV round trip; no input panics).

use super::*;
use proptest::prelude::*;

fn csv(text: &str) -> Result<Vec<TraceRecord>, TraceError> {
    parse_trace(text, TraceFormat::Csv)
}

fn jsonl(text: &str) -> Result<Vec<TraceRecord>, TraceError> {
    parse_trace(text, TraceFormat::JsonLines)
}

fn error_text(result: Result<Vec<TraceRecord>, TraceError>) -> String {
    match result {
        Ok(records) => panic!("expected an error, parsed {records:?}"),
        Err(e) => e.to_string(),
    }
}

/// Writes records as the CSV this module reads: the round-trip's other half.
fn to_csv(records: &[TraceRecord]) -> String {
    let mut writer = csv::Writer::from_writer(Vec::new());
    let mut header = vec!["time", "country", "pop", "method", "url"];
    header.extend(HEADER_COLUMNS.iter().map(|(c, _)| *c));
    writer.write_record(&header).unwrap();
    for r in records {
        let mut row = vec![
            r.time_s.to_string(),
            r.country.clone().unwrap_or_default(),
            r.pop.clone().unwrap_or_default(),
            r.method.clone(),
            r.path.clone(),
        ];
        for (_, name) in HEADER_COLUMNS {
            let value = r.headers.iter().find(|(n, _)| n == name);
            row.push(value.map(|(_, v)| v.clone()).unwrap_or_default());
        }
        writer.write_record(&row).unwrap();
    }
    String::from_utf8(writer.into_inner().unwrap()).unwrap()
}

#[test]
fn csv_reads_every_column() {
    let records = csv(
        "time,country,pop,method,url,accept_encoding,if_none_match,authorization\n\
         0,de,,GET,/a?x=1,\"br, gzip\",,\n\
         0.5,,fra,HEAD,/b,,\"\"\"v1\"\"\",demo\n",
    )
    .unwrap();
    assert_eq!(
        records,
        vec![
            TraceRecord {
                time_s: 0.0,
                country: Some("DE".into()),
                pop: None,
                method: "GET".into(),
                path: "/a?x=1".into(),
                headers: vec![("accept-encoding".into(), "br, gzip".into())],
            },
            TraceRecord {
                time_s: 0.5,
                country: None,
                pop: Some("fra".into()),
                method: "HEAD".into(),
                path: "/b".into(),
                headers: vec![
                    ("if-none-match".into(), "\"v1\"".into()),
                    ("authorization".into(), "demo".into()),
                ],
            },
        ]
    );
}

#[test]
fn csv_columns_in_any_order_with_defaults_and_comments() {
    let records = csv("# a comment\nURL , Country, Time\n/x, US, 2\n# another\n/y,GB,2\n").unwrap();
    assert_eq!(records.len(), 2);
    assert_eq!(records[0].method, "GET");
    assert_eq!(records[1].country.as_deref(), Some("GB"));
    assert!(records[0].headers.is_empty());
    // Header names may use HTTP spelling.
    let records = csv("time,pop,url,Accept-Encoding\n1,fra,/,gzip\n").unwrap();
    assert_eq!(
        records[0].headers,
        vec![("accept-encoding".into(), "gzip".into())]
    );
    // A byte-order mark from a spreadsheet export is not part of the first column's name.
    assert_eq!(csv("\u{feff}time,pop,url\n1,fra,/\n").unwrap().len(), 1);
    assert_eq!(
        jsonl("\u{feff}{\"time\":1,\"pop\":\"fra\",\"url\":\"/\"}")
            .unwrap()
            .len(),
        1
    );
    // A header alone is an empty trace, not an error.
    assert_eq!(csv("time,pop,url\n").unwrap(), vec![]);
}

#[test]
fn csv_errors_name_the_line() {
    let cases = [
        (
            "time,pop,url\n4.0,fra,/\n3.2,fra,/\n",
            "line 3: time 3.2 is before the previous record's 4",
        ),
        (
            "time,pop,url\n1,fra,/\n1,fra\n",
            "line 3: malformed CSV: 2 fields where the header has 3",
        ),
        ("time,pop\n", "line 1: there is no \"url\" column"),
        ("pop,url\n", "line 1: there is no \"time\" column"),
        (
            "time,url\n",
            "line 1: there is neither a \"country\" nor a \"pop\" column",
        ),
        ("time,pop,url,contry\n", "line 1: unknown column \"contry\""),
        ("time,pop,url,pop\n", "line 1: column \"pop\" appears twice"),
        ("", "line 1: there is no \"time\" column"),
        (
            "time,country,pop,url\n1,,,/\n",
            "line 2: neither country nor pop is given",
        ),
        ("time,pop,url\n,fra,/\n", "line 2: \"time\" is missing"),
        ("time,pop,url\n1,fra,\n", "line 2: \"url\" is missing"),
        (
            "time,pop,url\nsoon,fra,/\n",
            "line 2: time \"soon\" is neither seconds nor",
        ),
        (
            "time,pop,url\nNaN,fra,/\n",
            "line 2: time \"NaN\" is neither",
        ),
        ("time,pop,url\n-1,fra,/\n", "line 2: time -1 is negative"),
        (
            "time,country,url\n1,DEU,/\n",
            "line 2: country \"DEU\" is not an ISO 3166-1",
        ),
        ("time,pop,url\n1,fr a,/\n", "line 2: pop \"fr a\""),
        (
            "time,pop,method,url\n1,fra,get,/\n",
            "line 2: method \"get\" is not one of",
        ),
        (
            "time,pop,method,url\n1,fra,PATCH,/\n",
            "line 2: method \"PATCH\"",
        ),
        (
            "time,pop,url\n1,fra,https://x.test/\n",
            "line 2: url \"https://x.test/\" must be a path",
        ),
        (
            "time,pop,url\n1,fra,/a b\n",
            "line 2: url \"/a b\" has a fragment",
        ),
        (
            "time,pop,url\n1,fra,/a#top\n",
            "line 2: url \"/a#top\" has a fragment",
        ),
        (
            "time,pop,url,if_none_match\n1,fra,/,\"a\x01\"\n",
            "line 2: if-none-match",
        ),
        (
            "time,pop,url\n1,fra,/\n2024-05-01T00:00:00Z,fra,/\n",
            "line 3: time \"2024-05-01T00:00:00Z\" is an RFC 3339 timestamp but",
        ),
        (
            "time,pop,url\n2024-05-01T00:00:00Z,fra,/\n5,fra,/\n",
            "line 3: time \"5\" is in seconds but",
        ),
    ];
    for (text, expected) in cases {
        let message = error_text(csv(text));
        assert!(
            message.starts_with(expected),
            "{text:?}\n  got: {message}\n want: {expected}"
        );
    }
}

#[test]
fn line_numbers_count_comments_and_quoted_newlines() {
    let text = "# comment\ntime,pop,url,if_none_match\n1,fra,/,\"a\nb\"\n0,fra,/,\n";
    let message = error_text(csv(text));
    assert!(
        message.starts_with("line 3: if-none-match") || message.starts_with("line 5: time 0"),
        "{message}"
    );
    let cases = [
        (
            "# comment\ntime,pop,url\n1,fra,/\n\n0,fra,/\n",
            "line 5: time 0 is before",
        ),
        (
            "time,pop,url\n1,fra,/\n# c\n\r\n# d\n0,fra,/\n",
            "line 6: time 0 is before",
        ),
        (
            "\n\n# x\ntime,pop,url,country\n1,fra,/\n",
            "line 5: malformed CSV: 3 fields",
        ),
        ("\n# x\ntime,pop,url,contry\n", "line 3: unknown column"),
    ];
    for (text, expected) in cases {
        let message = error_text(csv(text));
        assert!(
            message.starts_with(expected),
            "{text:?}\n  got: {message}\n want: {expected}"
        );
    }
}

#[test]
fn rfc3339_times_become_seconds_from_the_first_record() {
    let records = csv("time,pop,url\n\
         2024-05-01T12:00:00Z,fra,/\n\
         2024-05-01T12:00:01.250Z,fra,/\n\
         2024-05-01T14:00:02+02:00,fra,/\n")
    .unwrap();
    let times: Vec<f64> = records.iter().map(|r| r.time_s).collect();
    assert_eq!(times, vec![0.0, 1.25, 2.0]);
    let message = error_text(csv(
        "time,pop,url\n2024-05-01T12:00:05Z,fra,/\n2024-05-01T12:00:01Z,fra,/\n",
    ));
    assert_eq!(message, "line 3: time -4 is before the previous record's 0");
}

#[test]
fn limits_are_enforced() {
    let long_url = format!("/{}", "a".repeat(MAX_URL_BYTES));
    let message = error_text(csv(&format!("time,pop,url\n1,fra,{long_url}\n")));
    assert_eq!(
        message,
        format!(
            "line 2: url is {} bytes; the limit is 8192",
            MAX_URL_BYTES + 1
        )
    );
    let ok_url = format!("/{}", "a".repeat(MAX_URL_BYTES - 1));
    assert!(csv(&format!("time,pop,url\n1,fra,{ok_url}\n")).is_ok());
    let long_value = "b".repeat(MAX_HEADER_VALUE_BYTES + 1);
    let message = error_text(csv(&format!(
        "time,pop,url,accept_encoding\n1,fra,/,{long_value}\n"
    )));
    assert!(
        message.starts_with("line 2: accept-encoding is 8193 bytes"),
        "{message}"
    );
    let long_pop = "p".repeat(MAX_POP_NAME_BYTES + 1);
    assert!(csv(&format!("time,pop,url\n1,{long_pop},/\n")).is_err());
    // Long values are shortened in messages.
    let message = error_text(csv(&format!("time,pop,url\n1,fra,x{}\n", "y".repeat(5000))));
    assert!(message.len() < 200, "{message}");
}

#[test]
fn jsonl_reads_the_same_columns() {
    let text = "{\"time\": 0, \"country\": \"jp\", \"url\": \"/a\"}\n\
         \n\
         {\"time\": \"1.5\", \"pop\": \"nrt\", \"method\": \"POST\", \"url\": \"/b\", \"authorization\": \"demo\", \"if_none_match\": null}\n\
         {\"time\": \"2024-01-01T00:00:00Z\", \"pop\": \"nrt\", \"url\": \"/b\"}\n";
    let message = error_text(jsonl(text));
    assert_eq!(message, "line 4: time \"2024-01-01T00:00:00Z\" is an RFC 3339 timestamp but the first record's time was in seconds");
    let text: String = text.lines().take(3).map(|l| format!("{l}\n")).collect();
    let records = jsonl(&text).unwrap();
    assert_eq!(records.len(), 2);
    assert_eq!(records[0].country.as_deref(), Some("JP"));
    assert_eq!(records[1].time_s, 1.5);
    assert_eq!(records[1].method, "POST");
    assert_eq!(
        records[1].headers,
        vec![("authorization".into(), "demo".into())]
    );
}

#[test]
fn jsonl_errors_name_the_line() {
    let cases = [
        (
            "{\"time\":0,\"pop\":\"a\",\"url\":\"/\"}\n[1]\n",
            "line 2: expected one JSON object per line",
        ),
        ("{\"time\":0,\"pop\":\"a\"\n", "line 1: malformed JSON"),
        (
            "{\"time\":0,\"pop\":\"a\",\"url\":7}\n",
            "line 1: \"url\" must be a string",
        ),
        (
            "{\"time\":true,\"pop\":\"a\",\"url\":\"/\"}\n",
            "line 1: time must be a number of seconds or an RFC 3339",
        ),
        (
            "{\"time\":0,\"pop\":\"a\",\"path\":\"/\"}\n",
            "line 1: unknown column \"path\"",
        ),
        (
            "{\"time\":0,\"url\":\"/\"}\n",
            "line 1: neither country nor pop is given",
        ),
        (
            "{\"pop\":\"a\",\"url\":\"/\"}\n",
            "line 1: \"time\" is missing",
        ),
        (
            "{\"time\":1e999,\"pop\":\"a\",\"url\":\"/\"}\n",
            "line 1: malformed JSON",
        ),
    ];
    for (text, expected) in cases {
        let message = error_text(jsonl(text));
        assert!(
            message.starts_with(expected),
            "{text:?}\n  got: {message}\n want: {expected}"
        );
    }
}

#[test]
fn purge_records_become_purges_and_soft_ones_say_so() {
    let records = csv("time,pop,method,url,fastly_soft_purge\n\
         0.0,fra,GET,/api/products/1,\n\
         1.0,fra,PURGE,/api/products/1,\n\
         2.0,fra,PURGE,/api/products/*,1\n")
    .unwrap();
    let events: Vec<_> = crate::sim::workload::from_trace(records).collect();
    use crate::sim::workload::EventKind;
    assert!(matches!(&events[0].kind, EventKind::Read(r) if r.method == "GET"));
    let EventKind::Purge { target, soft } = &events[1].kind else {
        panic!("{:?}", events[1]);
    };
    assert_eq!((target.as_str(), *soft), ("/api/products/1", false));
    let EventKind::Purge { target, soft } = &events[2].kind else {
        panic!("{:?}", events[2]);
    };
    assert_eq!((target.as_str(), *soft), ("/api/products/*", true));
    let prefix = EventKind::purge(target, *soft).unwrap();
    assert!(prefix.reaches("http://h/api/products/7", Vec::<&[u8]>::new));
    assert!(error_text(csv("time,pop,method,url\n0,fra,purge,/a\n")).contains("PURGE"));
}

#[test]
fn format_from_path() {
    assert_eq!(
        TraceFormat::from_path(Path::new("a/b.csv")),
        Ok(TraceFormat::Csv)
    );
    assert_eq!(
        TraceFormat::from_path(Path::new("b.JSONL")),
        Ok(TraceFormat::JsonLines)
    );
    assert_eq!(
        TraceFormat::from_path(Path::new("b.ndjson")),
        Ok(TraceFormat::JsonLines)
    );
    let error = TraceFormat::from_path(Path::new("trace.txt")).unwrap_err();
    assert_eq!(
        error.to_string(),
        "cannot tell the trace format of trace.txt: name it .csv, .jsonl or .ndjson"
    );
    assert!(TraceFormat::from_path(Path::new("csv")).is_err());
}

#[test]
fn the_example_trace_parses() {
    let text = include_str!("../../../traces/example.csv");
    let records = csv(text).unwrap();
    assert!(records.len() >= 40, "{}", records.len());
    assert!(records
        .iter()
        .any(|r| r.headers.iter().any(|(n, _)| n == "if-none-match")));
    assert!(records
        .iter()
        .any(|r| r.headers.iter().any(|(n, _)| n == "authorization")));
}

fn header_value_strategy() -> impl Strategy<Value = String> {
    // Visible ASCII with inner spaces: what HeaderValue accepts and trimming leaves alone.
    "[!-~]([ !-~]{0,12}[!-~])?"
}

prop_compose! {
    fn record_strategy()(
        country in proptest::option::of("[A-Z]{2}"),
        pop in proptest::option::of("[a-z0-9][a-z0-9._-]{0,8}"),
        country_if_neither in "[A-Z]{2}",
        method in proptest::sample::select(METHODS.to_vec()),
        path in "/[A-Za-z0-9/._~%?=&,;:@!$'()*+-]{0,40}",
        headers in proptest::collection::vec(proptest::option::of(header_value_strategy()), HEADER_COLUMNS.len()),
    ) -> TraceRecord {
        let country = if country.is_none() && pop.is_none() { Some(country_if_neither) } else { country };
        let headers = HEADER_COLUMNS.iter().zip(headers)
            .filter_map(|((_, name), v)| v.map(|v| (name.to_string(), v)))
            .collect();
        TraceRecord { time_s: 0.0, country, pop, method: method.to_string(), path, headers }
    }
}

proptest! {
    #[test]
    fn valid_records_round_trip_through_csv(
        mut records in proptest::collection::vec(record_strategy(), 0..30),
        mut times in proptest::collection::vec(0.0..1e7_f64, 30),
    ) {
        times.sort_by(f64::total_cmp);
        for (record, time) in records.iter_mut().zip(times) {
            record.time_s = time;
        }
        let text = to_csv(&records);
        prop_assert_eq!(csv(&text), Ok(records));
    }

    #[test]
    fn arbitrary_text_never_panics(text in "\\PC*") {
        let _ = csv(&text);
        let _ = jsonl(&text);
    }

    #[test]
    fn trace_like_text_never_panics(text in "(time|pop|url|country|[,\"\n#/:0-9a-zA-Z{}. -]){0,200}") {
        let _ = csv(&text);
        let _ = jsonl(&text);
    }
}
