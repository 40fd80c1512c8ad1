//! `edge-emulator simulate` and `compare` as users run them: the real binary, its exit codes,
//! its JSON, HTML and table.

use std::process::Command;

fn emulator() -> Command {
    Command::new(env!("CARGO_BIN_EXE_edge-emulator"))
}

fn manifest(path: &str) -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(path)
}

/// `simulate --no-html --json - ARGS`: the JSON report, after checking the run succeeded.
fn simulate_json(args: &[&str]) -> String {
    let mut all = vec!["simulate", "--no-html", "--json", "-"];
    all.extend_from_slice(args);
    String::from_utf8(succeeded(&all)).expect("UTF-8 JSON")
}

/// What `edge-emulator ARGS` printed on stdout, after checking it succeeded.
fn succeeded(args: &[&str]) -> Vec<u8> {
    ran_ok(args).stdout
}

/// `edge-emulator ARGS`'s output (stdout and stderr), after checking it succeeded.
fn ran_ok(args: &[&str]) -> std::process::Output {
    let output = emulator().args(args).output().expect("edge-emulator runs");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

#[test]
fn replaying_the_example_trace_gives_the_committed_report() {
    let trace = manifest("traces/example.csv");
    let expected = std::fs::read_to_string(manifest("traces/example.expected.json")).unwrap();
    assert_eq!(
        simulate_json(&["--trace", trace.to_str().unwrap()]).trim_end(),
        expected.trim_end(),
        "regenerate with: edge-emulator simulate --trace edge-emulator/traces/example.csv \
         --json edge-emulator/traces/example.expected.json --no-html"
    );
}

/// Isolation changes what a run costs, never what it reports: the committed trace and the
/// default scenario (shortened) give byte-identical JSON with warm isolates and with a fresh
/// instance per request.
#[test]
fn both_isolation_modes_give_the_same_report() {
    let trace = manifest("traces/example.csv");
    let trace = trace.to_str().unwrap();
    let expected = std::fs::read_to_string(manifest("traces/example.expected.json")).unwrap();
    for isolation in ["isolate", "fresh"] {
        let report = simulate_json(&["--trace", trace, "--isolation", isolation]);
        assert_eq!(report.trim_end(), expected.trim_end(), "{isolation}");
    }
    // The default scenario's first 20,000 requests, measured after 2 s of warm-up.
    let scenario = ["--requests", "20000", "--warmup-s", "2"];
    let isolate = simulate_json(&[&scenario[..], &["--isolation", "isolate"]].concat());
    let report: serde_json::Value = serde_json::from_str(&isolate).expect("JSON");
    assert!(
        report["scenario"]["requests"].as_u64() > Some(10_000),
        "{isolate}"
    );
    let fresh = simulate_json(&[&scenario[..], &["--isolation", "fresh"]].concat());
    assert_eq!(isolate, fresh);
}

/// The seed design's budgets (edge 20 ms, auth 15 ms at p95) as assertions on per-hop
/// Server-Timing percentiles: the report has them for every hop the default workload takes
/// (its signed-in share sends tokens, so auth is one), budgets met pass, and a missed one or
/// an unknown hop fails the command. One short run (a debug binary replays ~100 requests/s).
#[test]
fn hop_latency_budgets_are_reported_and_asserted() {
    let dir = std::env::temp_dir().join(format!("edge-sim-hops-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let json = dir.join("report.json");
    let output = emulator()
        .args([
            "simulate",
            "--no-html",
            "--requests",
            "6000",
            "--warmup-s",
            "1",
        ])
        .arg("--json")
        .arg(&json)
        .args(["--assert", "p95(edge)<20ms", "--assert", "p95(auth)<15ms"])
        .args([
            "--assert",
            "p99(regional)<1s",
            "--assert",
            "p95(origin)<0.001ms",
        ])
        .args(["--assert", "p95(nowhere)<1s"])
        .output()
        .expect("edge-emulator runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(99), "{stderr}");
    for expected in [
        "p95(edge) < 20ms: measured 0.0ms ✓",
        "p95(auth) < 15ms: measured 0.0ms ✓",
        "p99(regional) < 1000ms: measured",
        "p95(origin) < 0.001ms: measured",
        "p95(nowhere) < 1000ms: no response reported a Server-Timing hop \"nowhere\"; \
         hops in the report: auth, client, edge, origin, regional ✗",
        "2 of 5 assertions failed",
    ] {
        assert!(
            stderr.contains(expected),
            "missing {expected:?} in\n{stderr}"
        );
    }
    assert!(
        stdout.contains("Latency by hop (Server-Timing, ms)"),
        "{stdout}"
    );

    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    let hops = &report["hops"];
    for hop in ["client", "edge", "auth", "regional", "origin"] {
        let figures = &hops[hop];
        assert!(figures["count"].as_u64() > Some(0), "{hop}: {hops}");
        let (p50, p95, p99) = (
            figures["p50_ms"].as_f64().unwrap(),
            figures["p95_ms"].as_f64().unwrap(),
            figures["p99_ms"].as_f64().unwrap(),
        );
        assert!(0.0 <= p50 && p50 <= p95 && p95 <= p99, "{hop}: {figures}");
    }
    let requests = report["scenario"]["requests"].as_u64().unwrap();
    assert_eq!(hops["edge"]["count"].as_u64(), Some(requests), "{hops}");
    assert!(
        hops["auth"]["count"].as_u64() < Some(requests / 10),
        "{hops}"
    );
    assert!(hops["origin"]["p95_ms"].as_f64() > Some(1.0), "{hops}");
    // The origin's trip is part of the regional one.
    assert!(hops["regional"]["p95_ms"].as_f64() >= hops["origin"]["p95_ms"].as_f64());
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_generated_run_prints_the_table_writes_html_and_fails_a_missed_threshold() {
    let dir = std::env::temp_dir().join(format!("edge-sim-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let html = dir.join("report.html");
    let json = dir.join("report.json");
    let run = |extra: &[&str]| {
        emulator()
            .args([
                "simulate",
                "--requests",
                "3000",
                "--warmup-s",
                "0.5",
                "--json",
            ])
            .arg(&json)
            .arg("--html")
            .arg(&html)
            .args(extra)
            .output()
            .expect("edge-emulator runs")
    };
    let passed = run(&["--assert", "offload>=0.2", "--assert", "p99<10s"]);
    let stdout = String::from_utf8_lossy(&passed.stdout);
    let stderr = String::from_utf8_lossy(&passed.stderr);
    assert!(passed.status.success(), "{stderr}");
    assert!(
        stdout.contains("Offload:")
            && stdout.contains("Latency")
            && stdout.contains("Latency by hop (Server-Timing, ms)"),
        "{stdout}"
    );
    assert!(stderr.contains("offload >= 0.2: measured"), "{stderr}");
    let page = std::fs::read_to_string(&html).unwrap();
    assert!(page.matches("<svg").count() >= 4, "charts in the page");
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    assert_eq!(report["scenario"]["name"], "default");
    assert!(report["offload"]["requests"].as_f64().unwrap() > 0.2);

    let missed = run(&["--assert", "offload>=0.999"]);
    assert_eq!(
        missed.status.code(),
        Some(99),
        "a missed threshold fails the command, with k6's status, not a configuration error's"
    );
    assert!(String::from_utf8_lossy(&missed.stderr).contains("1 of 1 assertions failed"));

    let bad = run(&["--assert", "offlaod>=1"]);
    assert_eq!(bad.status.code(), Some(2), "clap refuses an unknown metric");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn compare_shows_tiered_and_edge_only_side_by_side() {
    let dir = std::env::temp_dir().join(format!("edge-cmp-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let json = dir.join("compare.json");
    let output = emulator()
        .args([
            "compare",
            "--requests",
            "2000",
            "--warmup-s",
            "0.2",
            "--variants",
            "tiered,edge-only",
            "--no-html",
            "--json",
        ])
        .arg(&json)
        .output()
        .expect("edge-emulator runs");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        stdout.contains("tiered") && stdout.contains("edge-only"),
        "{stdout}"
    );
    let reports: Vec<serde_json::Value> =
        serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    let origin = |i: usize| reports[i]["origin"]["requests"].as_u64().unwrap();
    assert!(origin(0) < origin(1), "the regional tier absorbs requests");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn compare_shield_adds_a_shield_tier_in_front_of_the_origins() {
    // Without geo routing the regions' misses share one host, so the shield can merge them.
    let stdout = succeeded(&[
        "compare",
        "--requests",
        "3000",
        "--warmup-s",
        "0.2",
        "--variants",
        "tiered,shield",
        "--no-routing",
        "--no-html",
        "--json",
        "-",
    ]);
    let reports: Vec<serde_json::Value> = serde_json::from_slice(&stdout).unwrap();
    let tiers = |i: usize| -> Vec<String> {
        reports[i]["tiers"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t["name"].as_str().unwrap().to_string())
            .collect()
    };
    assert!(!tiers(0).iter().any(|t| t.starts_with("shield")));
    assert!(
        tiers(1).contains(&"shield".to_string()) && tiers(1).contains(&"shield-us-east".into()),
        "{:?}",
        tiers(1)
    );
    assert_eq!(reports[1]["scenario"]["shields"], 1);
    let origin = |i: usize| reports[i]["origin"]["requests"].as_u64().unwrap();
    assert!(origin(1) <= origin(0), "{} vs {}", origin(1), origin(0));
}

/// Issue 18, item 5: the default one-minute warm-up would swallow a short run. It is scaled
/// with the run (and the user is told), the report says how many requests warmed and how many
/// were measured, and a run with nothing measured is an error that says what to change.
#[test]
fn a_short_run_scales_its_warm_up_and_an_empty_measurement_is_an_error() {
    let output = ran_ok(&["simulate", "--no-html", "--json", "-", "--requests", "6000"]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("warming up for 0.6 s instead"), "{stderr}");
    let report: serde_json::Value = serde_json::from_slice(&output.stdout).expect("JSON");
    let scenario = &report["scenario"];
    let (measured, warmed) = (
        scenario["requests"].as_u64().unwrap(),
        scenario["warmup_requests"].as_u64().unwrap(),
    );
    assert!(warmed > 0 && measured > 3 * warmed, "{scenario}");
    assert_eq!(scenario["warmup_s"].as_f64(), Some(0.6));

    let swallowed = emulator()
        .args([
            "simulate",
            "--no-html",
            "--requests",
            "2000",
            "--warmup-s",
            "60",
        ])
        .output()
        .expect("edge-emulator runs");
    assert!(!swallowed.status.success());
    let stderr = String::from_utf8_lossy(&swallowed.stderr);
    assert!(
        stderr.contains("no request was measured: all 2000 requests fell inside the 60 s warm-up")
            && stderr.contains("--warmup-s"),
        "{stderr}"
    );
}

/// Every figure the stream bound covers, for one report: measured never above bound (a cache
/// beating an infinite cache is a bug), and each level's causes adding up to its totals.
fn assert_within_bound(report: &serde_json::Value, run: &str) {
    let name = format!("{run} / {}", report["scenario"]["name"]);
    let bound = &report["stream_bound"];
    assert!(bound.is_object(), "{name}: no stream bound");
    let mut figures: Vec<(String, &serde_json::Value)> =
        ["edge_hit_ratio", "offload_requests", "byte_hit_ratio"]
            .iter()
            .map(|f| (f.to_string(), &bound[f]))
            .collect();
    for (pop, figure) in bound["by_pop"].as_object().expect("by_pop") {
        figures.push((pop.clone(), figure));
    }
    for (figure, value) in figures {
        let (measured, limit) = (value["measured"].as_f64(), value["bound"].as_f64());
        let (Some(measured), Some(limit)) = (measured, limit) else {
            panic!("{name}: {figure} is not a number: {value}");
        };
        // Both are rounded to six significant digits.
        assert!(
            measured <= limit + 2e-6,
            "{name}: {figure} measured {measured} is above its bound {limit}"
        );
    }
    for level in bound["gap"].as_array().expect("gap") {
        let causes = level["causes"].as_array().expect("causes");
        for column in ["measured", "bound"] {
            let sum: u64 = causes.iter().map(|c| c[column].as_u64().unwrap()).sum();
            assert_eq!(Some(sum), level[column].as_u64(), "{name}: {level}");
        }
    }
}

/// The committed workloads (the default one, both scenario files, the example trace) under
/// every configuration `compare` offers that changes what caches may keep: none beats the
/// bound its own request stream sets, and `--assert '…<=bound'` agrees.
#[test]
fn no_committed_workload_beats_the_bound_its_stream_sets() {
    let dir = std::env::temp_dir().join(format!("edge-sim-bound-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let scenarios = manifest("scenarios");
    let missing = scenarios.join("missing-ids.toml");
    let expiry = scenarios.join("synchronized-expiry.toml");
    // Short runs: the debug binary replays a few hundred requests a second.
    let short = ["--requests", "4000", "--warmup-s", "1"];
    let compares: [(&str, Vec<&str>); 4] = [
        (
            "default",
            [&short[..], &["--variants", "tiered,shield,capacity-mib=1"]].concat(),
        ),
        (
            "writes",
            [&short[..], &["--variants", "purge,soft-purge"]].concat(),
        ),
        (
            "missing-ids",
            [
                &["--scenario", missing.to_str().unwrap()][..],
                &short[..],
                &["--variants", "negative=0,negative=10"],
            ]
            .concat(),
        ),
        (
            "synchronized-expiry",
            [
                &["--scenario", expiry.to_str().unwrap()][..],
                &short[..],
                &["--variants", "jitter=0.2,ttl=1"],
            ]
            .concat(),
        ),
    ];
    for (run, args) in compares {
        let json = dir.join(format!("{run}.json"));
        let mut all = vec!["compare", "--no-html", "--json", json.to_str().unwrap()];
        all.extend(args);
        ran_ok(&all);
        let reports: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).expect("JSON");
        let reports = reports
            .as_array()
            .expect("compare writes a list of reports");
        assert!(reports.len() >= 2, "{run}: {reports:?}");
        for report in reports {
            assert_within_bound(report, run);
        }
    }
    // A trace replay has its bound, and the assertions pass against it.
    let trace = manifest("traces/example.csv");
    let output = ran_ok(&[
        "simulate",
        "--no-html",
        "--trace",
        trace.to_str().unwrap(),
        "--json",
        dir.join("trace.json").to_str().unwrap(),
        "--assert",
        "offload<=bound",
        "--assert",
        "byte_hit_ratio<=bound",
        "--assert",
        "hit_ratio<=bound",
    ]);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        stdout.contains("Bound from the replayed stream"),
        "{stdout}"
    );
    assert!(stdout.contains("Why the origin was asked"), "{stdout}");
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("trace.json")).unwrap()).unwrap();
    assert_within_bound(&report, "trace");
    // And a threshold above the bound fails, naming both figures.
    let output = emulator()
        .args([
            "simulate",
            "--no-html",
            "--trace",
            trace.to_str().unwrap(),
            "--assert",
            "offload>bound",
        ])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(99));
    let all = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        all.contains("offload > bound: measured") && all.contains(", bound "),
        "{all}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// Writes a trace of `rows` (`time,pop,method,url`) to a temporary file.
fn trace_file(name: &str, rows: &[(f64, &str, &str, String)]) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("edge-sim-unsafe-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let mut text = String::from("time,pop,method,url\n");
    for (at, pop, method, url) in rows {
        text.push_str(&format!("{at:.3},{pop},{method},{url}\n"));
    }
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path
}

/// The origin's requests, measured and in the bound, and the bound's "not cacheable" count.
fn origin_gap(report: &serde_json::Value) -> (u64, u64, u64) {
    let gap = report["stream_bound"]["gap"]
        .as_array()
        .unwrap()
        .iter()
        .find(|g| g["level"] == "origin")
        .expect("an origin level");
    let not_cacheable = gap["causes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["cause"] == "not cacheable")
        .map_or(0, |c| c["bound"].as_u64().unwrap());
    (
        gap["measured"].as_u64().unwrap(),
        gap["bound"].as_u64().unwrap(),
        not_cacheable,
    )
}

/// Issue 26: traces with unsafe methods — refused (405, which invalidates nothing) and
/// successful (204; 201 with `Location`; 200 with `Content-Location`), at one PoP and read at
/// another — never let a measured figure beat its bound, and the bound counts exactly the
/// origin requests an RFC 9111 cache cannot avoid. `--assert` agrees.
#[test]
fn unsafe_methods_never_let_a_replay_beat_its_bound() {
    let object = |id: u32| format!("/api/objects/{id}");
    // The 23 requests of the issue: a refused POST before ten GETs, and one between a GET and
    // ten more. An RFC 9111 cache asks the origin 4 times: 2 POSTs, 2 first GETs.
    let mut refused = vec![(0.0, "fra", "POST", object(5))];
    refused.extend((1..=10).map(|i| (0.1 * f64::from(i), "fra", "GET", object(5))));
    refused.push((2.0, "fra", "GET", object(6)));
    refused.push((2.1, "fra", "POST", object(6)));
    refused.extend((1..=10).map(|i| (2.1 + 0.1 * f64::from(i), "fra", "GET", object(6))));
    let refused = trace_file("refused.csv", &refused);
    let report: serde_json::Value =
        serde_json::from_str(&simulate_json(&["--trace", refused.to_str().unwrap()])).unwrap();
    assert_within_bound(&report, "refused POSTs");
    assert_eq!(origin_gap(&report), (4, 4, 2), "{}", report["stream_bound"]);

    // Successful writes at fra, each followed by reads at fra (which must fetch again) and at
    // another PoP (whose copy the write did not pass, so it still answers).
    let mut rows = Vec::new();
    let writes = [
        ("PUT", object(7), 7),
        ("POST", "/api/objects?id=8".to_string(), 8),
        ("POST", format!("{}/edits", object(9)), 9),
    ];
    for (n, (method, target, id)) in writes.into_iter().enumerate() {
        let t = 10.0 * n as f64;
        for pop in ["fra", "iad"] {
            rows.push((t, pop, "GET", object(id)));
            rows.push((t + 0.5, pop, "GET", object(id)));
        }
        rows.push((t + 1.0, "fra", method, target));
        for pop in ["fra", "iad"] {
            rows.push((t + 2.0, pop, "GET", object(id)));
            rows.push((t + 2.5, pop, "GET", object(id)));
        }
    }
    rows.sort_by(|a, b| a.0.total_cmp(&b.0));
    let written = trace_file("written.csv", &rows);
    let output = ran_ok(&[
        "simulate",
        "--no-html",
        "--json",
        "-",
        "--trace",
        written.to_str().unwrap(),
        "--assert",
        "offload<=bound",
        "--assert",
        "hit_ratio<=bound",
        "--assert",
        "byte_hit_ratio<=bound",
    ]);
    let report: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_within_bound(&report, "successful writes");
    let (measured, bound, _) = origin_gap(&report);
    assert_eq!(measured, bound, "{}", report["stream_bound"]);
    // Per write: the first GET at each PoP's path, the write, and fra's GET after it (the
    // write invalidated fra's edge and the tier above, which iad shares or not).
    assert!(
        (9..=12).contains(&bound),
        "bound {bound}: {}",
        report["stream_bound"]
    );
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        !stderr.contains("WARNING: measured figures beat"),
        "{stderr}"
    );
}

/// The rows of the text table titled `title` (header first), cells trimmed.
fn text_table(text: &str, title: &str) -> Vec<Vec<String>> {
    text.lines()
        .skip_while(|l| *l != title)
        .skip(1)
        .take_while(|l| l.starts_with('|'))
        .filter(|l| !l.starts_with("|-"))
        .map(|l| {
            l.trim_matches('|')
                .split('|')
                .map(|c| c.trim().to_string())
                .collect()
        })
        .collect()
}

/// Markup out of an HTML fragment, entities decoded (the few the renderer writes).
fn html_text(fragment: &str) -> String {
    let mut out = String::new();
    let mut in_tag = false;
    for c in fragment.chars() {
        match c {
            '<' => in_tag = true,
            '>' => in_tag = false,
            c if !in_tag => out.push(c),
            _ => {}
        }
    }
    out.replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&#39;", "'")
        .replace("&amp;", "&")
}

/// The rows of the HTML table after `<h3>title</h3>` (header first).
fn html_table(page: &str, title: &str) -> Vec<Vec<String>> {
    let Some(start) = page.find(&format!("<h3>{}</h3>", title.replace('\'', "&#39;"))) else {
        return Vec::new();
    };
    let table = &page[start..];
    let table = &table[..table.find("</table>").unwrap()];
    table
        .split("<tr>")
        .skip(1)
        .map(|row| {
            let mut cells = Vec::new();
            let mut rest = row;
            while let Some(open) = rest.find("<t") {
                let after = &rest[open..];
                let Some(body_at) = after.find('>') else {
                    break;
                };
                let body = &after[body_at + 1..];
                let Some(close) = body.find("</t") else { break };
                cells.push(html_text(&body[..close]));
                rest = &body[close + 3..];
            }
            cells
        })
        .collect()
}

fn cell<'a>(table: &'a [Vec<String>], row: &str, column: &str) -> &'a str {
    let header = &table[0];
    let at = header
        .iter()
        .position(|h| h == column)
        .unwrap_or_else(|| panic!("no column {column:?} in {header:?}"));
    let line = table
        .iter()
        .find(|r| r[0] == row)
        .unwrap_or_else(|| panic!("no row {row:?} in {table:?}"));
    &line[at]
}

fn pct(ratio: f64) -> String {
    format!("{:.1}%", ratio * 100.0)
}

/// Every place one run's text and HTML show a figure, against its one value in the JSON.
fn assert_one_figure_everywhere(report: &serde_json::Value, text: &str, page: &str) {
    let tiers = report["tiers"].as_array().unwrap();
    let tier = |name: &str| tiers.iter().find(|t| t["name"] == name).unwrap();
    let edge = tier("edge");
    let edge_ratio = pct(edge["hit_ratio"].as_f64().unwrap());
    let offload = pct(report["offload"]["requests"].as_f64().unwrap());
    let byte_hit = pct(report["offload"]["byte_hit_ratio"].as_f64().unwrap());
    let requests = report["scenario"]["requests"].as_u64().unwrap();
    assert_eq!(edge["requests"].as_u64(), Some(requests), "edge requests");
    let bound = &report["stream_bound"];
    // The JSON's bound table reads the same figures.
    assert_eq!(bound["edge_hit_ratio"]["measured"], edge["hit_ratio"]);
    assert_eq!(
        bound["offload_requests"]["measured"],
        report["offload"]["requests"]
    );
    assert_eq!(
        bound["byte_hit_ratio"]["measured"],
        report["offload"]["byte_hit_ratio"]
    );
    for view in [text.to_string(), html_text(page)] {
        assert!(
            view.contains(&format!("Offload: {offload} of requests"))
                && view.contains(&format!("byte hit ratio {byte_hit}"))
                && view.contains(&format!("edge hit ratio {edge_ratio}")),
            "headline:\n{}",
            &view[..view.len().min(1500)]
        );
    }
    for (name, tables) in [
        ("text", {
            let t: fn(&str, &str) -> Vec<Vec<String>> = text_table;
            (
                t(text, "Tiers"),
                t(text, BOUND_TITLE),
                t(text, "Origin"),
                t(text, "Bytes"),
            )
        }),
        ("html", {
            (
                html_table(page, "Tiers"),
                html_table(page, BOUND_TITLE),
                html_table(page, "Origin"),
                html_table(page, "Bytes"),
            )
        }),
    ] {
        let (tier_table, bound_table, origin_table, bytes_table) = tables;
        assert_eq!(cell(&tier_table, "edge", "hit ratio"), edge_ratio, "{name}");
        assert_eq!(
            cell(&tier_table, "edge", "requests"),
            requests.to_string(),
            "{name}"
        );
        assert_eq!(
            cell(&bound_table, "edge hit ratio", "measured"),
            edge_ratio,
            "{name}"
        );
        assert_eq!(
            cell(&bound_table, "offload by requests", "measured"),
            offload,
            "{name}"
        );
        assert_eq!(
            cell(&bound_table, "byte hit ratio", "measured"),
            byte_hit,
            "{name}"
        );
        assert_eq!(
            cell(
                &bytes_table,
                "byte hit ratio (client bytes served from a cache)",
                "bytes"
            ),
            byte_hit,
            "{name}"
        );
        for t in tiers {
            let pop = t["name"].as_str().unwrap();
            if pop.starts_with("edge-") {
                assert_eq!(
                    cell(&bound_table, &format!("{pop} hit ratio"), "measured"),
                    cell(&tier_table, pop, "hit ratio"),
                    "{name}: {pop}"
                );
            }
        }
        assert_eq!(
            cell(&origin_table, "origin", "requests"),
            report["origin"]["requests"].to_string(),
            "{name}"
        );
    }
    // Why the edge missed: every request not answered from the cache, once.
    let gap = bound["gap"].as_array().unwrap();
    let edge_gap = gap.iter().find(|g| g["level"] == "edge").unwrap();
    assert_eq!(
        edge_gap["measured"].as_u64().unwrap(),
        edge["misses"].as_u64().unwrap() + edge["revalidated"].as_u64().unwrap()
    );
    if let Some(origin_gap) = gap.iter().find(|g| g["level"] == "origin") {
        assert_eq!(origin_gap["measured"], report["origin"]["requests"]);
    }
    // The charts: the hit-ratio bars and the measured-vs-bound bars.
    let run = report["scenario"]["name"].as_str().unwrap();
    assert!(
        page.contains(&format!("<title>{run} · edge: {edge_ratio}</title>")),
        "hit-ratio chart"
    );
    assert!(
        page.contains(&format!(
            "<title>{run}: measured · edge hit ratio: {edge_ratio}</title>"
        )),
        "bound chart"
    );
}

const BOUND_TITLE: &str =
    "Bound from the replayed stream (an infinite cache per location, TTLs as the origin sent)";

/// Issue 27: each figure is computed in one place and every view reads it there — the
/// terminal text, the JSON and the HTML of one run, on the default scenario shortened, the
/// example trace and a comparison.
#[test]
fn every_occurrence_of_a_figure_is_the_same_number() {
    let dir = std::env::temp_dir().join(format!("edge-figures-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let trace = manifest("traces/example.csv");
    let runs: [(&str, Vec<&str>); 2] = [
        ("default", vec!["--requests", "4000", "--warmup-s", "0.5"]),
        ("trace", vec!["--trace", trace.to_str().unwrap()]),
    ];
    for (name, args) in runs {
        let json = dir.join(format!("{name}.json"));
        let html = dir.join(format!("{name}.html"));
        let output = emulator()
            .arg("simulate")
            .args(&args)
            .arg("--json")
            .arg(&json)
            .arg("--html")
            .arg(&html)
            .output()
            .unwrap();
        assert!(output.status.success(), "{name}");
        let text = String::from_utf8(output.stdout).unwrap();
        let report: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
        let page = std::fs::read_to_string(&html).unwrap();
        assert_one_figure_everywhere(&report, &text, &page);
        // The answer comes first: the headline, then how the run was made, then the tables.
        let at = |needle: &str| text.find(needle).unwrap_or(usize::MAX);
        assert_eq!(at("Offload:"), 0, "{text}");
        assert!(
            at("Origin: ") < at("Run: ") && at("Run: ") < at("Tiers"),
            "{text}"
        );
        assert!(text.contains("· edge-emulator "), "the version");
        let html_at = |needle: &str| page.find(needle).unwrap_or(usize::MAX);
        assert!(html_at("class=\"headline\"") < html_at("Run: "));
        assert!(html_at("Run: ") < html_at("<svg"), "answer before charts");
    }

    let json = dir.join("compare.json");
    let html = dir.join("compare.html");
    let output = emulator()
        .args([
            "compare",
            "--requests",
            "3000",
            "--warmup-s",
            "0.5",
            "--variants",
            "tiered,edge-only",
            "--json",
        ])
        .arg(&json)
        .arg("--html")
        .arg(&html)
        .output()
        .unwrap();
    assert!(output.status.success());
    let text = String::from_utf8(output.stdout).unwrap();
    let reports: Vec<serde_json::Value> =
        serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    let page = std::fs::read_to_string(&html).unwrap();
    let comparison = text_table(&text, "Comparison");
    for report in &reports {
        let name = report["scenario"]["name"].as_str().unwrap();
        let edge = pct(report["tiers"][0]["hit_ratio"].as_f64().unwrap());
        assert_eq!(cell(&comparison, "edge hit ratio", name), edge);
        assert_eq!(
            cell(&comparison, "byte hit ratio", name),
            pct(report["offload"]["byte_hit_ratio"].as_f64().unwrap())
        );
        assert_eq!(
            cell(&html_table(&page, "Comparison"), "edge hit ratio", name),
            edge
        );
        assert!(page.contains(&format!("<title>{name} · edge: {edge}</title>")));
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// Issue 27: a run shorter than its workload's TTL says so first, with the figure that shows
/// it and what to run instead, and its `--assert` verdicts carry the caution.
#[test]
fn a_run_whose_caches_never_warmed_says_so_at_the_top() {
    let output = emulator()
        .args([
            "simulate",
            "--requests",
            "3000",
            "--warmup-s",
            "0.5",
            "--no-html",
            "--assert",
            "offload>=0.1",
        ])
        .output()
        .unwrap();
    assert!(output.status.success());
    let text = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    let caution = text
        .lines()
        .position(|l| l.starts_with("CAUTION: the caches never warmed"))
        .unwrap_or_else(|| panic!("{text}"));
    assert!(caution < 6, "at the top:\n{text}");
    let line = text.lines().nth(caution).unwrap();
    assert!(
        line.contains("shorter than the workload's TTL (300 s)") && line.contains("--requests"),
        "{line}"
    );
    assert!(
        stderr.contains("offload >= 0.1: measured") && stderr.contains("CAUTION"),
        "{stderr}"
    );
}

/// Issue 27: `compare` replays a trace under each variant that changes the caches, checks
/// `--assert` against every one (status 99 when one misses), and refuses a variant that would
/// change the trace's own workload.
#[test]
fn compare_takes_a_trace_and_assertions() {
    let trace = manifest("traces/example.csv");
    let trace = trace.to_str().unwrap();
    let output = emulator()
        .args([
            "compare",
            "--no-html",
            "--json",
            "-",
            "--trace",
            trace,
            "--variants",
            "tiered,edge-only",
            "--assert",
            "offload>=0",
        ])
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let reports: Vec<serde_json::Value> = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(reports.len(), 2);
    for report in &reports {
        assert!(report["scenario"]["workload"]
            .as_str()
            .unwrap()
            .starts_with("trace example.csv"));
    }
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("tiered: offload >= 0: measured"),
        "{stderr}"
    );
    assert!(
        stderr.contains("edge-only: offload >= 0: measured"),
        "{stderr}"
    );
    let missed = emulator()
        .args([
            "compare",
            "--no-html",
            "--trace",
            trace,
            "--variants",
            "tiered,edge-only",
            "--assert",
            "offload>=0.99",
        ])
        .output()
        .unwrap();
    assert_eq!(missed.status.code(), Some(99));
    let refused = emulator()
        .args([
            "compare",
            "--no-html",
            "--trace",
            trace,
            "--variants",
            "tiered,swr=0",
        ])
        .output()
        .unwrap();
    assert_eq!(refused.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&refused.stderr).contains("which --trace replaces"));
}
