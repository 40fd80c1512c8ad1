//! The HTML report as a person sees it: pages from the real `simulate` and `compare` (and one
//! with the request stream's bounds, rendered from a real run's JSON) are opened in headless
//! Chromium with a checking script that measures every chart's labels. No two labels of a chart
//! may overlap, none may stick out of its chart, and every chart must draw data.
//!
//! Without a Chromium (`chromium`, `chromium-browser`, `google-chrome`, or the path in
//! `CHROME`) the tests say so and pass; `.ci/run` installs Debian's `chromium` under CI.
//! `HTML_IN_BROWSER_SCREENSHOT=path.png` also saves a screenshot of the single-run page, and
//! `HTML_IN_BROWSER_KEEP=1` keeps the pages (their folder is printed).

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use edge_emulator::sim::report::{Bounded, Report, StreamBound};
use serde_json::Value;

/// Runs in the page after everything above it is parsed (CSS applies; no web fonts to wait
/// for), and leaves its verdict as JSON in `<pre id="layout-verdict">`.
const CHECK_SCRIPT: &str = r#"<script>
(function () {
  const TOL = 1; // px of overlap forgiven (anti-aliasing, rounding)
  const problems = [];
  const charts = [];
  document.querySelectorAll('svg').forEach(function (svg, i) {
    const name = svg.getAttribute('aria-label') || ('svg #' + (i + 1));
    const box = svg.getBoundingClientRect();
    const texts = Array.from(svg.querySelectorAll('text'))
      .map(function (t) { return { text: t.textContent, r: t.getBoundingClientRect() }; })
      .filter(function (t) { return t.text.trim() !== '' && t.r.width > 0 && t.r.height > 0; });
    for (let a = 0; a < texts.length; a++) {
      const A = texts[a];
      if (A.r.left < box.left - TOL || A.r.right > box.right + TOL ||
          A.r.top < box.top - TOL || A.r.bottom > box.bottom + TOL) {
        problems.push(name + ': label "' + A.text + '" sticks out of the chart');
      }
      for (let b = a + 1; b < texts.length; b++) {
        const B = texts[b];
        const w = Math.min(A.r.right, B.r.right) - Math.max(A.r.left, B.r.left);
        const h = Math.min(A.r.bottom, B.r.bottom) - Math.max(A.r.top, B.r.top);
        if (w > TOL && h > TOL) {
          problems.push(name + ': label "' + A.text + '" overlaps "' + B.text + '" (' +
            w.toFixed(1) + ' x ' + h.toFixed(1) + ' px)');
        }
      }
    }
    const data = Array.from(svg.querySelectorAll('.data')).filter(function (e) {
      const r = e.getBoundingClientRect();
      return r.width > 0 || r.height > 0;
    }).length;
    if (data === 0) {
      problems.push(name + ': no data marks (elements of class "data" with a size)');
    }
    charts.push({ name: name, labels: texts.length, data: data });
  });
  const out = document.createElement('pre');
  out.id = 'layout-verdict';
  out.textContent = JSON.stringify({ charts: charts, problems: problems });
  document.body.appendChild(out);
})();
</script>"#;

const BROWSER_TIMEOUT: Duration = Duration::from_secs(120);

fn emulator() -> Command {
    Command::new(env!("CARGO_BIN_EXE_edge-emulator"))
}

/// A headless-capable Chromium: `CHROME` when set, else the first of the usual names on PATH.
fn chromium() -> Option<PathBuf> {
    if let Some(path) = std::env::var_os("CHROME").filter(|p| !p.is_empty()) {
        return Some(PathBuf::from(path));
    }
    let names = [
        "chromium",
        "chromium-browser",
        "google-chrome",
        "google-chrome-stable",
    ];
    let path = std::env::var_os("PATH")?;
    names.iter().find_map(|name| {
        std::env::split_paths(&path)
            .map(|dir| dir.join(name))
            .find(|p| p.is_file())
    })
}

fn chromium_or_skip() -> Option<PathBuf> {
    let found = chromium();
    if found.is_none() {
        println!(
            "skipping: no Chromium found (install Debian's `chromium` package, or set CHROME \
             to a Chrome/Chromium binary)"
        );
    }
    found
}

fn temp_dir(tag: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("edge-html-browser-{}-{tag}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("temp folder writable");
    dir
}

/// Runs Chromium headless on `url` with `args`, killing it after [`BROWSER_TIMEOUT`]; returns
/// its standard output.
fn run_chromium(chrome: &Path, dir: &Path, args: &[String], url: &str) -> String {
    let stdout_path = dir.join("chromium.out");
    let stderr_path = dir.join("chromium.err");
    let mut child = Command::new(chrome)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--no-first-run",
            "--hide-scrollbars",
        ])
        .arg(format!("--user-data-dir={}", dir.join("profile").display()))
        .args(args)
        .arg(url)
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(&stdout_path).unwrap())
        .stderr(std::fs::File::create(&stderr_path).unwrap())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {}: {e}", chrome.display()));
    let deadline = Instant::now() + BROWSER_TIMEOUT;
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait for chromium") {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "{} did not finish within {BROWSER_TIMEOUT:?}; stderr:\n{}",
                chrome.display(),
                std::fs::read_to_string(&stderr_path).unwrap_or_default()
            );
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let stdout = std::fs::read_to_string(&stdout_path).unwrap_or_default();
    assert!(
        status.success(),
        "{} exited with {status}; stderr:\n{}",
        chrome.display(),
        std::fs::read_to_string(&stderr_path).unwrap_or_default()
    );
    stdout
}

/// The checking script's verdict on the page at `html`: `{charts: [{name, labels, data}],
/// problems: [..]}`.
fn verdict(chrome: &Path, html: &Path) -> Value {
    let page = std::fs::read_to_string(html).expect("report written");
    let checked = match page.rfind("</body>") {
        Some(end) => format!("{}{CHECK_SCRIPT}{}", &page[..end], &page[end..]),
        None => format!("{page}{CHECK_SCRIPT}"),
    };
    let dir = html.parent().unwrap();
    let checked_path = dir.join(format!(
        "{}.checked.html",
        html.file_stem().unwrap().to_string_lossy()
    ));
    std::fs::write(&checked_path, checked).unwrap();
    let url = format!("file://{}", checked_path.display());
    let dom = run_chromium(
        chrome,
        dir,
        &["--window-size=1280,2000".into(), "--dump-dom".into()],
        &url,
    );
    let start = dom
        .find("<pre id=\"layout-verdict\">")
        .unwrap_or_else(|| panic!("no verdict in the page Chromium dumped:\n{dom}"))
        + "<pre id=\"layout-verdict\">".len();
    let end = start + dom[start..].find("</pre>").expect("verdict closes");
    let json = dom[start..end]
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&nbsp;", "\u{a0}")
        .replace("&amp;", "&");
    serde_json::from_str(&json).unwrap_or_else(|e| panic!("verdict {json:?}: {e}"))
}

/// Asserts the page has `charts` charts and no problems, naming every problem otherwise.
fn assert_readable(chrome: &Path, html: &Path, charts: usize) -> Value {
    let v = verdict(chrome, html);
    let problems: Vec<&str> = v["problems"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p.as_str().unwrap())
        .collect();
    let found = v["charts"].as_array().unwrap();
    println!("{}: {} charts checked", html.display(), found.len());
    for chart in found {
        println!(
            "  {}: {} labels, {} data marks",
            chart["name"], chart["labels"], chart["data"]
        );
    }
    assert!(
        problems.is_empty(),
        "{} has {} layout problems:\n{}",
        html.display(),
        problems.len(),
        problems.join("\n")
    );
    assert_eq!(found.len(), charts, "charts in {}", html.display());
    v
}

fn ran_ok(command: &mut Command) {
    let output = command.output().expect("edge-emulator runs");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
}

/// A bound for `measured`: a third of what it misses is beyond any cache. Real runs carry
/// their `stream_bound`; this only fills one for a report without it (JSON from before it
/// existed), so the page with bound markers is always checked.
fn bounded(measured: f64) -> Bounded {
    Bounded {
        measured,
        bound: measured + (1.0 - measured) * 2.0 / 3.0,
    }
}

fn with_stream_bound(mut report: Report) -> Report {
    if report.stream_bound.is_none() {
        let edge = report
            .tiers
            .iter()
            .find(|t| t.name == "edge")
            .map_or(0.5, |t| t.hit_ratio);
        report.stream_bound = Some(StreamBound {
            edge_hit_ratio: bounded(edge),
            offload_requests: bounded(report.offload.requests),
            byte_hit_ratio: bounded(report.offload.byte_hit_ratio),
            global_offload_requests: bounded(report.offload.requests).bound,
            by_pop: report
                .tiers
                .iter()
                .filter(|t| t.name.starts_with("edge-"))
                .map(|t| (t.name.clone(), bounded(t.hit_ratio)))
                .collect(),
            gap: Vec::new(),
        });
    }
    report
}

#[test]
fn the_check_catches_overlapping_labels_and_empty_charts() {
    let Some(chrome) = chromium_or_skip() else {
        return;
    };
    let dir = temp_dir("fixture");
    let html = dir.join("fixture.html");
    // The old "Hit ratio by tier" in miniature: category names centred under narrow groups.
    std::fs::write(
        &html,
        "<!DOCTYPE html><html><body>\
         <svg class=\"chart\" viewBox=\"0 0 300 100\" width=\"600\" aria-label=\"crowded\">\
         <rect class=\"data\" x=\"10\" y=\"10\" width=\"20\" height=\"50\"/>\
         <text x=\"100\" y=\"80\" font-size=\"8\" text-anchor=\"middle\">regional-us-east</text>\
         <text x=\"120\" y=\"80\" font-size=\"8\" text-anchor=\"middle\">regional-eu-west</text></svg>\
         <svg viewBox=\"0 0 300 100\" width=\"600\" aria-label=\"empty\">\
         <text x=\"10\" y=\"20\">title</text><text x=\"290\" y=\"20\">cut off</text></svg>\
         </body></html>",
    )
    .unwrap();
    let v = verdict(&chrome, &html);
    let problems: Vec<String> = v["problems"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p.as_str().unwrap().to_string())
        .collect();
    let has = |needle: &str| problems.iter().any(|p| p.contains(needle));
    assert!(
        has("crowded: label \"regional-us-east\" overlaps \"regional-eu-west\""),
        "{problems:#?}"
    );
    assert!(has("empty: no data marks"), "{problems:#?}");
    assert!(
        has("empty: label \"cut off\" sticks out of the chart"),
        "{problems:#?}"
    );
    assert_eq!(problems.len(), 3, "{problems:#?}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn simulate_and_compare_pages_have_readable_charts() {
    let Some(chrome) = chromium_or_skip() else {
        return;
    };
    let dir = temp_dir("reports");
    let (html, json) = (dir.join("simulate.html"), dir.join("simulate.json"));
    ran_ok(
        emulator()
            .args(["simulate", "--requests", "3000", "--warmup-s", "0.5"])
            .arg("--html")
            .arg(&html)
            .arg("--json")
            .arg(&json),
    );
    let report: Report =
        serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).expect("JSON report");
    // Load over time, hit ratio, (measured vs bound), bytes; a CDF and percentiles per report.
    let bound_chart = usize::from(report.stream_bound.is_some());
    assert_readable(&chrome, &html, 5 + bound_chart);

    // The same run with its bounds drawn (made up here while the engine leaves them out).
    let bounded_html = dir.join("bounded.html");
    let bounded = with_stream_bound(report);
    std::fs::write(
        &bounded_html,
        edge_emulator::sim::render::html(std::slice::from_ref(&bounded), &Default::default()),
    )
    .unwrap();
    let page = std::fs::read_to_string(&bounded_html).unwrap();
    assert!(page.contains("bound: infinite cache"));
    assert!(page.matches("class=\"data bound\"").count() >= 4);
    assert_readable(&chrome, &bounded_html, 6);
    if let Some(path) = std::env::var_os("HTML_IN_BROWSER_SCREENSHOT") {
        let path = std::path::absolute(PathBuf::from(path)).unwrap();
        run_chromium(
            &chrome,
            &dir,
            &[
                "--window-size=1280,2400".into(),
                format!("--screenshot={}", path.display()),
            ],
            &format!("file://{}", html.display()),
        );
        println!("screenshot: {}", path.display());
    }

    let (compare_html, compare_json) = (dir.join("compare.html"), dir.join("compare.json"));
    ran_ok(
        emulator()
            .args([
                "compare",
                "--requests",
                "2000",
                "--warmup-s",
                "0.2",
                "--variants",
                "tiered,edge-only,shield",
                "--no-routing",
            ])
            .arg("--html")
            .arg(&compare_html)
            .arg("--json")
            .arg(&compare_json),
    );
    let reports: Vec<Report> =
        serde_json::from_str(&std::fs::read_to_string(&compare_json).unwrap()).unwrap();
    let bound_chart = usize::from(reports.iter().any(|r| r.stream_bound.is_some()));
    assert_readable(&chrome, &compare_html, 3 + bound_chart + 2 * reports.len());
    if std::env::var_os("HTML_IN_BROWSER_KEEP").is_some() {
        println!("pages kept in {}", dir.display());
    } else {
        let _ = std::fs::remove_dir_all(&dir);
    }
}

/// Issue 27: the live page of a running `serve`, in a real browser: it loads, fills its tables
/// from `live.json` after requests flowed (the last requests, the edge's hit ratio), updates,
/// and raises no script error.
#[test]
fn the_live_page_of_serve_updates_in_a_browser() {
    let Some(chrome) = chromium_or_skip() else {
        return;
    };
    use std::io::BufRead;
    let mut child = emulator()
        .args([
            "serve",
            "--time-scale",
            "0",
            "--listen",
            "127.0.0.1:0",
            "--quiet",
        ])
        .stdout(Stdio::piped())
        .spawn()
        .expect("edge-emulator starts");
    struct Kill(std::process::Child);
    impl Drop for Kill {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
    let stdout = child.stdout.take().unwrap();
    let mut child = Kill(child);
    let mut lines = std::io::BufReader::new(stdout).lines();
    let first = lines
        .next()
        .expect("a first line")
        .expect("stdout readable");
    let base = first
        .strip_prefix("edge-emulator listening on ")
        .unwrap_or_else(|| panic!("unexpected first line {first:?}"))
        .to_string();
    std::thread::spawn(move || for _ in lines {});
    let address = base.trim_start_matches("http://").to_string();
    for _ in 0..3 {
        use std::io::{Read, Write};
        let mut stream = std::net::TcpStream::connect(&address).expect("the edge listens");
        stream
            .set_read_timeout(Some(Duration::from_secs(30)))
            .unwrap();
        write!(
            stream,
            "GET /api/products/7 HTTP/1.1\r\nHost: {address}\r\nConnection: close\r\n\r\n"
        )
        .unwrap();
        let mut reply = String::new();
        let _ = stream.read_to_string(&mut reply);
        assert!(reply.starts_with("HTTP/1.1 200"), "{reply}");
    }
    let dir = temp_dir("live");
    let dom = run_chromium(
        &chrome,
        &dir,
        &[
            "--window-size=1280,1600".into(),
            "--virtual-time-budget=5000".into(),
            "--dump-dom".into(),
        ],
        &format!("{base}/__emulator/"),
    );
    assert!(dom.contains("edge-emulator: live"), "{dom}");
    let body = &dom[dom.find("<body").expect("a body")..];
    let body_tag = &body[..body.find('>').unwrap()];
    assert!(
        !body_tag.contains("data-errors"),
        "script errors: {body_tag}"
    );
    assert!(
        body_tag.contains("data-updates="),
        "the page never updated: {body_tag}"
    );
    let status = &dom[dom.find("<p id=\"status\"").expect("the status line")..];
    let status = &status[..status.find("</p>").unwrap()];
    assert!(
        !status.contains("error") && status.contains("emulator time"),
        "{status}"
    );
    assert!(dom.contains("/api/products/7"), "the last requests: {dom}");
    assert!(dom.contains("edge-fra:HIT"), "each tier's outcome: {dom}");
    let row = dom.find("<td>edge</td>").expect("the edge tier's row");
    assert!(dom[row..].contains("66.7%"), "two hits in three: {dom}");
    let _ = child.0.kill();
    let _ = std::fs::remove_dir_all(&dir);
}
