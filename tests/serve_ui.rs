//! `serve` as a developer watches it: a line per request (text and JSON, to a file),
//! `/__emulator/stats` and metrics for people, the live page's data, a clock that tokens
//! follow, and the command line's help and small edges — over real HTTP and the real binary.

mod common;

use std::process::Command;
use std::time::Duration;

use common::Emulator;
use serde_json::Value;

fn emulator_command() -> Command {
    Command::new(env!("CARGO_BIN_EXE_edge-emulator"))
}

fn temp_file(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("edge-serve-ui-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir.join(name)
}

/// The file's lines once it holds at least `n` (the log is written as requests finish).
async fn lines_of(path: &std::path::Path, n: usize) -> Vec<String> {
    for _ in 0..100 {
        let text = std::fs::read_to_string(path).unwrap_or_default();
        let lines: Vec<String> = text.lines().map(str::to_string).collect();
        if lines.len() >= n {
            return lines;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("{} never held {n} lines", path.display());
}

/// Item 6: a line per request, as wrangler dev and nginx print one: time, method, path,
/// status, each tier's cache outcome, bytes, duration; in JSON with every field; refused
/// requests too.
#[tokio::test]
async fn each_request_gets_a_line_in_the_access_log() {
    let text_log = temp_file("access.log");
    let _ = std::fs::remove_file(&text_log);
    let emulator = Emulator::start_with(&["--access-log", text_log.to_str().unwrap()]).await;
    assert_eq!(emulator.get("/api/products/3").await.status, 200);
    assert_eq!(emulator.get("/api/products/3").await.status, 200);
    let refused = emulator
        .get_with("/api/products/3", &[("x-emulator-pop", "nowhere")])
        .await;
    assert_eq!(refused.status, 400);
    let lines = lines_of(&text_log, 3).await;
    let miss = &lines[0];
    assert!(
        miss.contains(" GET /api/products/3 200 edge-fra:MISS regional-eu-central:MISS ")
            && miss.contains(" ms (simulated "),
        "{miss}"
    );
    assert!(
        miss.split(' ').next().unwrap().ends_with('Z'),
        "starts with an RFC 3339 time: {miss}"
    );
    assert!(lines[1].contains(" 200 edge-fra:HIT "), "{}", lines[1]);
    assert!(lines[2].contains(" 400 edge-:- "), "{}", lines[2]);

    let json_log = temp_file("access.jsonl");
    let _ = std::fs::remove_file(&json_log);
    let emulator = Emulator::start_with(&[
        "--access-log",
        json_log.to_str().unwrap(),
        "--access-log-format",
        "json",
    ])
    .await;
    let reply = emulator
        .get_with("/api/products/4", &[("x-emulator-pop", "SYD")])
        .await;
    assert_eq!(
        reply.status, 200,
        "X-Emulator-Pop takes a PoP name in any case"
    );
    let line: Value = serde_json::from_str(&lines_of(&json_log, 1).await[0]).unwrap();
    assert_eq!(line["method"], "GET");
    assert_eq!(line["path"], "/api/products/4");
    assert_eq!(line["status"], 200);
    assert_eq!(line["pop"], "syd");
    assert_eq!(line["tiers"][0]["tier"], "edge-syd");
    assert_eq!(line["tiers"][0]["outcome"], "MISS");
    assert_eq!(line["bytes"].as_u64(), Some(reply.body.len() as u64));
    assert!(line["simulated_ms"].as_f64().unwrap() > 5.0, "{line}");
    assert!(line["time_ms"].as_u64().unwrap() > 1_700_000_000_000);
}

/// Items 7 and 8: the live page and its data, the stats' hit ratios and rates, `# HELP` and
/// `# TYPE` on every metric, times in RFC 3339 beside epoch milliseconds.
#[tokio::test]
async fn stats_metrics_and_the_live_page_speak_to_people() {
    let emulator = Emulator::start().await;
    for _ in 0..4 {
        assert_eq!(emulator.get("/api/products/9").await.status, 200);
    }
    let page = emulator.get("/__emulator/").await;
    assert_eq!(page.status, 200);
    assert!(page.header("content-type").starts_with("text/html"));
    let page = String::from_utf8(page.body).unwrap();
    assert!(page.contains("live.json") && !page.contains("http://") && !page.contains("https://"));
    assert_eq!(emulator.get("/__emulator").await.status, 308, "to the page");

    let live = emulator.get("/__emulator/live.json").await.json();
    let edge = live["tiers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["name"] == "edge")
        .unwrap();
    assert_eq!(edge["requests"], 4);
    assert_eq!(edge["hit_ratio"], 0.75);
    assert_eq!(live["recent"][0]["path"], "/api/products/9");
    assert_eq!(live["recent"].as_array().unwrap().len(), 4);
    assert!(live["latency"]["p50_ms"].as_f64().unwrap() >= 5.0);
    assert!(
        live["caches"].as_array().unwrap().len() >= 11,
        "every PoP and tier"
    );

    // Rates need two samples, a second apart.
    let stats = emulator
        .wait_for_stats("a rate window", |s| {
            s["summary"]["window_s"].as_f64().unwrap_or(0.0) >= 1.0
        })
        .await;
    assert_eq!(stats["summary"]["hit_ratio"]["edge"], 0.75);
    assert_eq!(stats["summary"]["hit_ratio_by_cache"]["edge-fra"], 0.75);
    assert!(stats["summary"]["client_requests_per_s"].is_number());
    assert!(stats["summary"]["origin_requests_per_s"].is_number());
    let now = stats["now"].as_str().unwrap();
    assert!(
        now.ends_with('Z') && now.contains('T') && now.len() == 24,
        "{now}"
    );
    assert!(stats["now_ms"].as_u64().is_some());

    let metrics = String::from_utf8(emulator.get("/__emulator/metrics").await.body).unwrap();
    let mut described = std::collections::HashSet::new();
    let mut typed = std::collections::HashSet::new();
    for line in metrics.lines() {
        if let Some(rest) = line.strip_prefix("# HELP ") {
            let (name, help) = rest.split_once(' ').unwrap();
            assert!(help.len() > 10, "{line}");
            described.insert(name.to_string());
        } else if let Some(rest) = line.strip_prefix("# TYPE ") {
            typed.insert(rest.split(' ').next().unwrap().to_string());
        } else {
            let name = line.split(['{', ' ']).next().unwrap();
            assert!(described.contains(name), "no # HELP before {line}");
            assert!(typed.contains(name), "no # TYPE before {line}");
        }
    }
    assert!(metrics.contains("edge_emulator_hit_ratio{tier=\"edge\",cache=\"fra\"} 0.75"));
}

/// Item 9: after the clock moved forward, a token minted on this machine's clock is expired
/// on arrival; one minted against the emulator's clock (`token --emulator`) is accepted; the
/// clock can be reset, and says its offset.
#[tokio::test]
async fn tokens_follow_the_emulators_clock_and_the_clock_resets() {
    let emulator = Emulator::start().await;
    emulator.advance(3600).await;
    let mint = |args: &[&str]| {
        let output = emulator_command().arg("token").args(args).output().unwrap();
        assert!(
            output.status.success(),
            "{}",
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8(output.stdout).unwrap().trim().to_string()
    };
    let local = mint(&["--ttl-secs", "600"]);
    let followed = mint(&["--ttl-secs", "600", "--emulator", &emulator.base]);
    let call = |token: String| {
        let emulator = &emulator;
        async move {
            let bearer = format!("Bearer {token}");
            emulator
                .get_with("/api/users/1", &[("authorization", &bearer)])
                .await
                .status
        }
    };
    assert_eq!(call(local).await, 401, "expired on the emulator's clock");
    assert_eq!(call(followed).await, 200);
    let stats = emulator.stats().await;
    assert!(stats["clock_offset_ms"].as_u64().unwrap() >= 3_600_000);

    let reset = emulator
        .client
        .post(format!("{}/__emulator/clock", emulator.base))
        .body(r#"{"reset": true}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(reset.status(), 200);
    let clock: Value = reset.json().await.unwrap();
    assert_eq!(clock["offset_ms"], 0);
    assert!(clock["now"].as_str().unwrap().ends_with('Z'));
    let bad = emulator
        .client
        .post(format!("{}/__emulator/clock", emulator.base))
        .body(r#"{"reset": false}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), 400);
    let refused = emulator_command()
        .args(["token", "--emulator", "http://127.0.0.1:9"])
        .output()
        .unwrap();
    assert_eq!(refused.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&refused.stderr).contains("is `edge-emulator serve` running"));
}

/// Item 11: every flag of every command has help; `serve --help` lists every admin endpoint;
/// `compare` takes `--trace` and `--assert`.
#[test]
fn every_flag_has_help_and_serve_lists_every_admin_endpoint() {
    for command in ["serve", "simulate", "compare", "token", "topology"] {
        let output = emulator_command()
            .args([command, "--help"])
            .output()
            .unwrap();
        assert!(output.status.success());
        let help = String::from_utf8(output.stdout).unwrap();
        let lines: Vec<&str> = help.lines().collect();
        for (i, line) in lines.iter().enumerate() {
            let trimmed = line.trim_start();
            if !(trimmed.starts_with("--")
                || trimmed.starts_with("-h")
                || trimmed.starts_with("-q"))
            {
                continue;
            }
            if !line.starts_with("  -") && !line.starts_with("      --") {
                continue;
            }
            // Short help puts the text after the flag on its line; long help on the next
            // lines, indented further.
            let same_line = trimmed.split("  ").filter(|p| !p.trim().is_empty()).count() > 1;
            let next = lines.get(i + 1).copied().unwrap_or("");
            let described =
                same_line || (next.starts_with("          ") && !next.trim().is_empty());
            assert!(described, "{command}: {line:?} has no help");
        }
        if command == "serve" {
            for endpoint in [
                "/__emulator/stats",
                "/__emulator/metrics",
                "/__emulator/clock",
                "/__emulator/purge",
                "/__emulator/origins",
                "/__emulator/ ",
            ] {
                assert!(help.contains(endpoint), "serve --help lacks {endpoint}");
            }
        }
        if command == "compare" {
            assert!(help.contains("--trace") && help.contains("--assert"));
        }
    }
}

/// Item 11: a route that needs tokens with no key to check them is a start-up error; a bad
/// topology says its cause once, with no backtrace; an empty trace says it is empty.
#[test]
fn configuration_mistakes_are_said_once_at_start() {
    let auth = temp_file("no-keys.toml");
    std::fs::write(
        &auth,
        "[[routes]]\npath = \"/api/*\"\nmode = \"required\"\n",
    )
    .unwrap();
    let output = emulator_command()
        .args(["serve", "--listen", "127.0.0.1:0", "--auth"])
        .arg(&auth)
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("route \"/api/*\" needs tokens"), "{stderr}");

    let topology = temp_file("bad-topology.toml");
    std::fs::write(&topology, "[[pop]]\nname = \"x\"\n").unwrap();
    let output = emulator_command()
        .env("RUST_BACKTRACE", "1")
        .args(["topology", "--topology"])
        .arg(&topology)
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(
        stderr.matches("missing field `city`").count(),
        1,
        "{stderr}"
    );
    assert!(!stderr.contains("Stack backtrace"), "{stderr}");

    let trace = temp_file("empty.csv");
    std::fs::write(&trace, "time,pop,url\n").unwrap();
    let output = emulator_command()
        .args(["simulate", "--no-html", "--trace"])
        .arg(&trace)
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("is empty"), "{stderr}");
}
