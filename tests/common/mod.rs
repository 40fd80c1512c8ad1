//! Drives a real `edge-emulator serve` process over HTTP on 127.0.0.1.

#![allow(dead_code)] // why: each test file uses a different subset of the helpers

pub mod user_origin;

use std::process::Stdio;
use std::time::Duration;

use reqwest::header::HeaderMap;
use serde_json::Value;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

/// Writes a worker configuration file for `--routing`/`--auth` into the temp folder; the
/// name is unique per test process and `tag`.
pub fn config_file(tag: &str, text: &str) -> std::path::PathBuf {
    let path = std::env::temp_dir().join(format!(
        "edge-emulator-test-{}-{tag}.toml",
        std::process::id()
    ));
    std::fs::write(&path, text).expect("temp folder writable");
    path
}

/// Every wait in these tests is bounded by this.
pub const TIMEOUT: Duration = Duration::from_secs(30);

/// A running emulator; the process is killed when this is dropped.
pub struct Emulator {
    pub base: String,
    pub client: reqwest::Client,
    _child: Child,
}

#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub headers: HeaderMap,
    pub body: Vec<u8>,
}

/// A token the default auth configuration accepts, for `sub`, valid for ten minutes of wall
/// time (tests that advance the emulator clock past that need a longer one).
pub fn demo_token(sub: &str) -> String {
    edge_emulator::demo_token::mint(
        edge_emulator::demo_token::DemoAlg::Hs256,
        sub,
        None,
        std::time::SystemTime::now(),
        Duration::from_secs(600),
    )
    .expect("the demo key signs")
}

impl Reply {
    pub fn header(&self, name: &str) -> &str {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
    }

    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).expect("a JSON body")
    }

    /// The body with its Content-Encoding (br, gzip) undone.
    pub fn decoded(&self) -> Vec<u8> {
        use std::io::Read;
        let mut bytes = Vec::new();
        match self.header("content-encoding") {
            "br" => {
                brotli::Decompressor::new(&self.body[..], 4096)
                    .read_to_end(&mut bytes)
                    .expect("valid brotli");
            }
            "gzip" => {
                flate2::read::GzDecoder::new(&self.body[..])
                    .read_to_end(&mut bytes)
                    .expect("valid gzip");
            }
            "zstd" => {
                ruzstd::decoding::StreamingDecoder::new(&self.body[..])
                    .expect("a zstd frame")
                    .read_to_end(&mut bytes)
                    .expect("valid zstd");
            }
            "" => bytes.clone_from(&self.body),
            other => panic!("unexpected content-encoding {other}"),
        }
        bytes
    }

    /// Reads a whole response.
    pub async fn read(response: reqwest::Response) -> Self {
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let body = response.bytes().await.expect("a body").to_vec();
        Reply {
            status,
            headers,
            body,
        }
    }
}

impl Emulator {
    /// Starts `edge-emulator serve` on a free port with RTT sleeps off (`--time-scale 0`),
    /// so tests run at full speed while Server-Timing still reports simulated durations.
    pub async fn start() -> Self {
        Self::start_with(&[]).await
    }

    /// Runs with `extra` flags, in the isolation mode `EDGE_EMULATOR_ISOLATION` names
    /// (`isolate` or `fresh`; unset: the emulator's default), unless `extra` names one: CI runs
    /// the end-to-end suites in both modes.
    pub async fn start_with(extra: &[&str]) -> Self {
        let mut command = Command::new(env!("CARGO_BIN_EXE_edge-emulator"));
        command.args(["serve", "--time-scale", "0"]).args(extra);
        if !extra.contains(&"--listen") {
            command.args(["--listen", "127.0.0.1:0"]);
        }
        // A line per request on the test's stderr would bury its output; the tests of the
        // access log name a file.
        if !extra.contains(&"--access-log") {
            command.arg("--quiet");
        }
        if let (Ok(mode), false) = (
            std::env::var("EDGE_EMULATOR_ISOLATION"),
            extra.contains(&"--isolation"),
        ) {
            command.args(["--isolation", &mode]);
        }
        let mut child = command
            .stdout(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .expect("edge-emulator starts");
        let stdout = child.stdout.take().expect("piped stdout");
        let mut lines = BufReader::new(stdout).lines();
        let first = tokio::time::timeout(TIMEOUT, lines.next_line())
            .await
            .expect("edge-emulator printed its address in time")
            .expect("stdout readable")
            .expect("a first line");
        let base = first
            .strip_prefix("edge-emulator listening on ")
            .unwrap_or_else(|| panic!("unexpected first line {first:?}"))
            .to_string();
        // Keep draining stdout so the child never blocks on a full pipe.
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        // Redirects are answers under test, not instructions.
        let client = reqwest::Client::builder()
            .timeout(TIMEOUT)
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap();
        Self {
            base,
            client,
            _child: child,
        }
    }

    /// The emulator process's resident memory in KiB (Linux `/proc`), if readable.
    pub fn rss_kib(&self) -> Option<u64> {
        let pid = self._child.id()?;
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
        status
            .lines()
            .find_map(|line| line.strip_prefix("VmRSS:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
    }

    pub async fn get(&self, path: &str) -> Reply {
        self.get_with(path, &[]).await
    }

    pub async fn get_with(&self, path: &str, headers: &[(&str, &str)]) -> Reply {
        self.send("GET", path, headers).await
    }

    pub async fn send(&self, method: &str, path: &str, headers: &[(&str, &str)]) -> Reply {
        let method = reqwest::Method::from_bytes(method.as_bytes()).expect("a method");
        let mut request = self.client.request(method, format!("{}{path}", self.base));
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        Reply::read(request.send().await.expect("the emulator answers")).await
    }

    pub async fn stats(&self) -> Value {
        self.get("/__emulator/stats").await.json()
    }

    /// Requests an origin has received for `path`.
    pub async fn origin_requests(&self, origin: &str, path: &str) -> u64 {
        self.stats().await["origins"][origin]["stats"]["by_path"][path]
            .as_u64()
            .unwrap_or(0)
    }

    pub async fn origin_url(&self, origin: &str) -> String {
        self.stats().await["origins"][origin]["url"]
            .as_str()
            .expect("origin url")
            .to_string()
    }

    /// Replaces an origin's fault plan (`PUT /__emulator/origins/NAME/faults`).
    pub async fn set_faults(&self, origin: &str, plan: Value) {
        let url = format!("{}/__emulator/origins/{origin}/faults", self.base);
        let response = self.client.put(url).json(&plan).send().await.unwrap();
        assert_eq!(response.status(), 200, "fault plan accepted");
    }

    /// Routing figures per origin (`GET /__emulator/origins`).
    pub async fn routing(&self) -> Value {
        self.get("/__emulator/origins").await.json()
    }

    /// Every request an origin has received.
    pub async fn origin_total(&self, origin: &str) -> u64 {
        self.stats().await["origins"][origin]["stats"]["requests"]
            .as_u64()
            .unwrap_or(0)
    }

    /// The emulator's clock in Unix milliseconds.
    pub async fn now_ms(&self) -> u64 {
        self.get("/__emulator/clock").await.json()["now_ms"]
            .as_u64()
            .expect("now_ms")
    }

    /// Moves every clock in the emulator (caches and origins) forward.
    pub async fn advance(&self, secs: u64) {
        let response = self
            .client
            .post(format!("{}/__emulator/clock", self.base))
            .json(&serde_json::json!({ "advance_secs": secs }))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
    }

    /// Polls until `condition` holds on the stats, failing after [`TIMEOUT`].
    pub async fn wait_for_stats(&self, what: &str, condition: impl Fn(&Value) -> bool) -> Value {
        let deadline = tokio::time::Instant::now() + TIMEOUT;
        loop {
            let stats = self.stats().await;
            if condition(&stats) {
                return stats;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "timed out waiting for {what}: {stats:#}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

/// The cache policy both runtimes run the suite with (emulator: `--cache-policy`; workerd:
/// the CACHE_POLICY binding): an experiment on the news panel.
pub const SCENARIO_POLICY: &str = r#"
[[experiments]]
name = "layout"
path = "/dashboard/news"
variants = [{ name = "classic", weight = 1 }, { name = "cards", weight = 1 }]
"#;

/// [`SCENARIO_POLICY`] as JSON, as Cloudflare's binding holds it.
pub fn scenario_policy_json() -> String {
    let table: toml::Table = toml::from_str(SCENARIO_POLICY).expect("the suite's policy is TOML");
    serde_json::to_string(&table).expect("TOML tables are JSON")
}
