//! Runs the Cloudflare build (`build/` from scripts/cloudflare-tools.sh) in the npm `workerd`
//! binary, on 127.0.0.1, with:
//! - an in-memory cache service as `cacheApiOutbound` ([`CacheService`]), which is what
//!   `caches.default` talks to in workerd;
//! - an origin-stub in this process as the upstream (the worker's `ORIGIN` binding);
//! - `cfBlobHeader = "cf-blob"` on the socket, so a test sets `request.cf` per request.
//!
//! Every process and server started here stops when [`Workerd`] is dropped.

#![allow(dead_code)] // why: helpers shared by the workerd test files

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use origin_stub::{Origin, OriginConfig};
use tokio::io::AsyncReadExt;
use tokio::net::TcpListener;
use tokio::process::{Child, Command};
use tokio::sync::watch;

use crate::common::{Reply, TIMEOUT};

/// The short-lived catalogue Cache-Control the workerd origin sends instead of the stub's
/// minutes-long one: workerd's clock cannot be moved, so scenarios that need time to pass
/// sleep past these windows (see [`SHORT_MAX_AGE`]).
pub const SHORT_CACHE_CONTROL: &str =
    "public, max-age=2, stale-while-revalidate=4, stale-if-error=600";
pub const SHORT_MAX_AGE: Duration = Duration::from_secs(2);
pub const SHORT_SWR: Duration = Duration::from_secs(4);

/// The longest a cold build (installing the tools, compiling the worker) may take.
const BUILD_TIMEOUT: Duration = Duration::from_secs(40 * 60);

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the workspace root")
        .to_path_buf()
}

/// Paths of the built worker and the workerd binary.
#[derive(Debug, Clone)]
pub struct Built {
    pub index_js: PathBuf,
    pub wasm: PathBuf,
    pub workerd: PathBuf,
}

/// Runs `scripts/cloudflare-tools.sh build` once per test process (it installs only what is
/// missing and rebuilds incrementally). Tests in this process share the result.
pub fn built() -> &'static Built {
    static BUILT: OnceLock<Result<Built, String>> = OnceLock::new();
    let result = BUILT.get_or_init(|| {
        let root = repo_root();
        let script = root.join("scripts/cloudflare-tools.sh");
        // The tools' installs and the Cloudflare build print hundreds of lines over minutes,
        // which under `cargo test` look like a hang: one line says what happens, the rest
        // goes to a log that a failure quotes.
        let log_path = root.join("target/cloudflare-tools.log");
        let _ = std::fs::create_dir_all(root.join("target"));
        let first_run = !root.join("tools/npm/node_modules").exists();
        eprintln!(
            "workerd scenario suite: {} the Cloudflare build (scripts/cloudflare-tools.sh build){}; \
             its output goes to {}",
            if first_run { "installing wrangler, workerd, worker-build and wasm-bindgen under tools/ (about 550 MB from npm and crates.io), then" } else { "updating" },
            if first_run { ": about 8 minutes on 2 cores the first time, seconds later" } else { "" },
            log_path.display()
        );
        let log = std::fs::File::create(&log_path)
            .map_err(|e| format!("cannot write {}: {e}", log_path.display()))?;
        let mut child = std::process::Command::new("bash")
            .arg(&script)
            .arg("build")
            .current_dir(&root)
            .stdout(log.try_clone().map_err(|e| e.to_string())?)
            .stderr(log)
            .spawn()
            .map_err(|e| format!("cannot run {}: {e}", script.display()))?;
        let log_tail = || {
            let text = std::fs::read_to_string(&log_path).unwrap_or_default();
            let lines: Vec<&str> = text.lines().collect();
            lines[lines.len().saturating_sub(40)..].join("\n")
        };
        let started = Instant::now();
        let status = loop {
            if let Some(status) = child.try_wait().map_err(|e| e.to_string())? {
                break status;
            }
            if started.elapsed() > BUILD_TIMEOUT {
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!(
                    "{} took longer than {BUILD_TIMEOUT:?}",
                    script.display()
                ));
            }
            std::thread::sleep(Duration::from_millis(200));
        };
        if !status.success() {
            return Err(format!(
                "{} build failed: {status}; the end of {}:\n{}",
                script.display(),
                log_path.display(),
                log_tail()
            ));
        }
        let built = Built {
            index_js: root.join("build/index.js"),
            wasm: root.join("build/index_bg.wasm"),
            workerd: root.join("tools/npm/node_modules/@cloudflare/workerd-linux-64/bin/workerd"),
        };
        for path in [&built.index_js, &built.wasm, &built.workerd] {
            if !path.exists() {
                return Err(format!("the build left no {}", path.display()));
            }
        }
        Ok(built)
    });
    match result {
        Ok(built) => built,
        Err(error) => panic!("the Cloudflare build is unavailable: {error}"),
    }
}

/// The `PURGE_TOKEN` secret the worker is started with.
pub const PURGE_TOKEN: &str = "a-purge-token-for-the-workerd-tests";

impl CacheService {
    /// The `Cache-Tag` values of every stored slot (what Cloudflare's purge by tag matches).
    pub fn cache_tags(&self) -> Vec<String> {
        self.entries
            .lock()
            .unwrap()
            .values()
            .flat_map(|stored| stored.headers.iter())
            .filter(|(name, _)| name.eq_ignore_ascii_case("cache-tag"))
            .map(|(_, value)| String::from_utf8_lossy(value).into_owned())
            .collect()
    }
}

/// A stored Cache API entry: the response workerd serialised on `cache.put`.
#[derive(Debug, Clone)]
struct Stored {
    status: u16,
    headers: Vec<(String, Vec<u8>)>,
    body: Vec<u8>,
    expires: Option<Instant>,
}

/// What workerd's Cache API needs from `cacheApiOutbound` (workerd's cache protocol, as
/// miniflare implements it): `PUT <key url>` with the serialised HTTP response as the body
/// stores (204); `GET` answers the stored response with `CF-Cache-Status: HIT`, or
/// `CF-Cache-Status: MISS`; `PURGE` deletes (200, or 404 when absent). Entries expire by the
/// stored response's `s-maxage`/`max-age`, as Cloudflare's cache does.
#[derive(Default)]
pub struct CacheService {
    entries: Mutex<HashMap<String, Stored>>,
    pub puts: AtomicU64,
    pub hits: AtomicU64,
    pub misses: AtomicU64,
    pub purges: AtomicU64,
}

impl CacheService {
    pub fn len(&self) -> usize {
        self.entries.lock().unwrap().len()
    }

    fn key(request: &Request) -> String {
        let host = request
            .headers()
            .get("host")
            .and_then(|h| h.to_str().ok())
            .unwrap_or("");
        let namespace = request
            .headers()
            .get("cf-cache-namespaces")
            .and_then(|h| h.to_str().ok())
            .unwrap_or("");
        format!("{namespace}|{host}{}", request.uri())
    }
}

async fn cache_handler(State(cache): State<Arc<CacheService>>, request: Request) -> Response {
    let key = CacheService::key(&request);
    let method = request.method().as_str().to_string();
    match method.as_str() {
        "PUT" => {
            let Ok(body) = axum::body::to_bytes(request.into_body(), 64 << 20).await else {
                return StatusCode::PAYLOAD_TOO_LARGE.into_response();
            };
            match parse_serialised(&body) {
                Some(stored) => {
                    cache.entries.lock().unwrap().insert(key, stored);
                    cache.puts.fetch_add(1, Ordering::Relaxed);
                    StatusCode::NO_CONTENT.into_response()
                }
                None => StatusCode::PAYLOAD_TOO_LARGE.into_response(),
            }
        }
        "GET" | "HEAD" => {
            let found = {
                let mut entries = cache.entries.lock().unwrap();
                match entries.get(&key) {
                    Some(stored) if stored.expires.is_some_and(|e| e <= Instant::now()) => {
                        entries.remove(&key);
                        None
                    }
                    other => other.cloned(),
                }
            };
            let Some(stored) = found else {
                cache.misses.fetch_add(1, Ordering::Relaxed);
                return (StatusCode::GATEWAY_TIMEOUT, [("cf-cache-status", "MISS")])
                    .into_response();
            };
            cache.hits.fetch_add(1, Ordering::Relaxed);
            let mut headers = HeaderMap::new();
            for (name, value) in &stored.headers {
                if let (Ok(name), Ok(value)) = (
                    HeaderName::from_bytes(name.as_bytes()),
                    HeaderValue::from_bytes(value),
                ) {
                    headers.append(name, value);
                }
            }
            headers.insert("cf-cache-status", HeaderValue::from_static("HIT"));
            let status = StatusCode::from_u16(stored.status).unwrap_or(StatusCode::OK);
            (status, headers, stored.body).into_response()
        }
        "PURGE" | "DELETE" => {
            cache.purges.fetch_add(1, Ordering::Relaxed);
            match cache.entries.lock().unwrap().remove(&key) {
                Some(_) => StatusCode::OK.into_response(),
                None => StatusCode::NOT_FOUND.into_response(),
            }
        }
        _ => StatusCode::METHOD_NOT_ALLOWED.into_response(),
    }
}

/// Parses the HTTP/1.1 response workerd sends as a `PUT` body.
fn parse_serialised(bytes: &Bytes) -> Option<Stored> {
    let mut headers = [httparse::EMPTY_HEADER; 128];
    let mut response = httparse::Response::new(&mut headers);
    let httparse::Status::Complete(head_len) = response.parse(bytes).ok()? else {
        return None;
    };
    let status = response.code?;
    let headers: Vec<(String, Vec<u8>)> = response
        .headers
        .iter()
        .map(|h| (h.name.to_ascii_lowercase(), h.value.to_vec()))
        .collect();
    let field = |name: &str| {
        headers
            .iter()
            .find(|(n, _)| n == name)
            .and_then(|(_, v)| std::str::from_utf8(v).ok())
    };
    let rest = &bytes[head_len..];
    let body = if field("transfer-encoding").is_some_and(|te| te.contains("chunked")) {
        dechunk(rest)?
    } else {
        match field("content-length").and_then(|l| l.trim().parse::<usize>().ok()) {
            Some(len) => rest.get(..len)?.to_vec(),
            None => rest.to_vec(),
        }
    };
    let expires = field("cache-control").and_then(|cc| {
        let seconds = |directive: &str| {
            cc.split(',').find_map(|d| {
                let (name, value) = d.trim().split_once('=')?;
                (name.eq_ignore_ascii_case(directive))
                    .then(|| value.trim().parse::<u64>().ok())
                    .flatten()
            })
        };
        seconds("s-maxage")
            .or_else(|| seconds("max-age"))
            .map(|s| Instant::now() + Duration::from_secs(s))
    });
    // Framing fields described the serialised message, not the response we will replay.
    let headers = headers
        .into_iter()
        .filter(|(n, _)| n != "transfer-encoding" && n != "content-length")
        .collect();
    Some(Stored {
        status,
        headers,
        body,
        expires,
    })
}

fn dechunk(mut rest: &[u8]) -> Option<Vec<u8>> {
    let mut body = Vec::new();
    loop {
        let line_end = rest.windows(2).position(|w| w == b"\r\n")?;
        let size_text = std::str::from_utf8(&rest[..line_end]).ok()?;
        let size = usize::from_str_radix(size_text.split(';').next()?.trim(), 16).ok()?;
        rest = &rest[line_end + 2..];
        if size == 0 {
            return Some(body);
        }
        body.extend_from_slice(rest.get(..size)?);
        rest = rest.get(size + 2..)?;
    }
}

/// A running workerd with the worker, its cache service and its origin.
pub struct Workerd {
    pub base: String,
    pub client: reqwest::Client,
    pub origin: Arc<Origin>,
    pub origin_url: String,
    pub cache: Arc<CacheService>,
    /// What workerd printed (stdout and stderr), for failure messages.
    pub log: Arc<Mutex<String>>,
    dir: PathBuf,
    shutdown: watch::Sender<bool>,
    _child: Child,
}

impl Drop for Workerd {
    fn drop(&mut self) {
        let _ = self.shutdown.send(true);
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Options for [`Workerd::start_with`].
#[derive(Debug, Clone)]
pub struct WorkerdOptions {
    /// Rewrite the catalogue's Cache-Control to [`SHORT_CACHE_CONTROL`].
    pub short_ttl: bool,
    /// workerd's own log level flag.
    pub verbose: bool,
}

impl Default for WorkerdOptions {
    fn default() -> Self {
        Self {
            short_ttl: true,
            verbose: false,
        }
    }
}

/// The worker's ROUTING binding: the emulator's three regions at `urls`, with country rules
/// for the scenario's clients (the test cf blob places every client in Sydney, so distance
/// alone would send them all to ap-southeast).
fn routing_binding(urls: &[String]) -> String {
    serde_json::json!({
        "origin": [
            {"name": "us-east", "url": urls[0], "lat": 39.04, "lon": -77.49},
            {"name": "eu-west", "url": urls[1], "lat": 53.35, "lon": -6.26},
            {"name": "ap-southeast", "url": urls[2], "lat": 1.29, "lon": 103.85},
        ],
        "rule": [
            {"countries": ["US"], "origin": "us-east"},
            {"countries": ["GB"], "origin": "eu-west"},
        ],
    })
    .to_string()
}

/// The worker's AUTH binding: the emulator's default configuration (so the same demo tokens
/// pass), with the HS256 key's secret taken out and given as the JWT_HS256_SECRET secret.
fn auth_binding() -> (String, String) {
    let toml = include_str!("../../edge-emulator/default-auth.toml");
    let topology = edge_emulator::topology::Topology::default_embedded();
    let checked = edge_emulator::check_config(Some(toml), None, None, &topology)
        .expect("the default auth config");
    let json = checked.auth_json.expect("an auth document");
    let mut value: serde_json::Value = serde_json::from_str(&json).unwrap();
    let mut secret = String::new();
    for key in value["keys"].as_array_mut().unwrap() {
        if key["alg"] == "HS256" {
            if let Some(s) = key.as_object_mut().unwrap().remove("secret") {
                secret = s.as_str().unwrap().to_string();
            }
        }
    }
    assert!(!secret.is_empty(), "the default config has an HS256 key");
    (value.to_string(), secret)
}

/// A capnp text literal.
fn capnp_text(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    out.push('"');
    for c in text.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("a free port");
    listener.local_addr().unwrap().port()
}

impl Workerd {
    pub async fn start() -> Self {
        Self::start_with(WorkerdOptions::default()).await
    }

    pub async fn start_with(options: WorkerdOptions) -> Self {
        let built = tokio::task::spawn_blocking(built)
            .await
            .expect("the build task");
        let (shutdown, stop) = watch::channel(false);

        // The origin, with short catalogue lifetimes when asked.
        let origin = Origin::new(OriginConfig {
            name: "origin".into(),
            ..OriginConfig::default()
        });
        let mut app = origin_stub::app(origin.clone());
        if options.short_ttl {
            app = app.layer(axum::middleware::map_response(shorten_cache_control));
        }
        // One stub behind three listeners: the ROUTING binding's three regional origins (each
        // needs its own host:port), with one set of counters for the scenarios.
        let mut region_urls = Vec::new();
        for _ in 0..3 {
            let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
            region_urls.push(format!("http://{}", listener.local_addr().unwrap()));
            let mut origin_stop = stop.clone();
            let app = app.clone();
            tokio::spawn(async move {
                axum::serve(listener, app)
                    .with_graceful_shutdown(async move {
                        let _ = origin_stop.wait_for(|s| *s).await;
                    })
                    .await
            });
        }
        let origin_url = region_urls[0].clone();
        let routing = routing_binding(&region_urls);

        // The cache service.
        let cache = Arc::new(CacheService::default());
        let cache_app = axum::Router::new()
            .fallback(cache_handler)
            .with_state(cache.clone());
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let cache_addr = listener.local_addr().unwrap();
        let mut cache_stop = stop.clone();
        tokio::spawn(async move {
            axum::serve(listener, cache_app)
                .with_graceful_shutdown(async move {
                    let _ = cache_stop.wait_for(|s| *s).await;
                })
                .await
        });

        // The configuration, next to copies of the module (capnp embeds relative paths).
        let dir = std::env::temp_dir().join(format!(
            "edge-workerd-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::copy(&built.index_js, dir.join("index.js")).unwrap();
        std::fs::copy(&built.wasm, dir.join("index_bg.wasm")).unwrap();
        let port = free_port();
        let (auth, secret) = auth_binding();
        let config = format!(
            r#"using Workerd = import "/workerd/workerd.capnp";

const config :Workerd.Config = (
  services = [
    (name = "main", worker = .worker),
    (name = "cache", external = (address = "{cache_addr}", http = ())),
    (name = "net", network = (allow = ["public", "private", "local"])),
  ],
  sockets = [
    (name = "http", address = "127.0.0.1:{port}", http = (cfBlobHeader = "cf-blob"), service = "main"),
  ],
);

const worker :Workerd.Worker = (
  modules = [
    (name = "index.js", esModule = embed "index.js"),
    (name = "index_bg.wasm", wasm = embed "index_bg.wasm"),
  ],
  compatibilityDate = "2026-11-01",
  bindings = [
    (name = "ORIGIN", text = {origin}),
    (name = "DEBUG_GEO_HEADERS", text = "true"),
    (name = "AUTH", json = {auth}),
    (name = "ROUTING", json = {routing}),
    (name = "CACHE_POLICY", json = {cache_policy}),
    (name = "JWT_HS256_SECRET", text = {secret}),
    (name = "PURGE_TOKEN", text = {purge_token}),
  ],
  globalOutbound = "net",
  cacheApiOutbound = "cache",
);
"#,
            origin = capnp_text(&origin_url),
            auth = capnp_text(&auth),
            routing = capnp_text(&routing),
            cache_policy = capnp_text(&crate::common::scenario_policy_json()),
            secret = capnp_text(&secret),
            purge_token = capnp_text(PURGE_TOKEN),
        );
        std::fs::write(dir.join("config.capnp"), config).unwrap();

        let mut command = Command::new(&built.workerd);
        command
            .arg("serve")
            .arg("config.capnp")
            .current_dir(&dir)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        if options.verbose {
            command.arg("--verbose");
        }
        let mut child = command.spawn().expect("workerd starts");
        let log = Arc::new(Mutex::new(String::new()));
        for stream in [
            child
                .stdout
                .take()
                .map(|s| Box::new(s) as Box<dyn tokio::io::AsyncRead + Send + Unpin>),
            child
                .stderr
                .take()
                .map(|s| Box::new(s) as Box<dyn tokio::io::AsyncRead + Send + Unpin>),
        ]
        .into_iter()
        .flatten()
        {
            let log = log.clone();
            tokio::spawn(async move {
                let mut stream = stream;
                let mut buf = vec![0; 8192];
                while let Ok(n) = stream.read(&mut buf).await {
                    if n == 0 {
                        break;
                    }
                    log.lock()
                        .unwrap()
                        .push_str(&String::from_utf8_lossy(&buf[..n]));
                }
            });
        }

        // Ready when the socket accepts.
        let deadline = Instant::now() + TIMEOUT;
        loop {
            if tokio::net::TcpStream::connect(("127.0.0.1", port))
                .await
                .is_ok()
            {
                break;
            }
            if let Ok(Some(status)) = child.try_wait() {
                panic!("workerd exited with {status}: {}", log.lock().unwrap());
            }
            assert!(
                Instant::now() < deadline,
                "workerd did not listen in time: {}",
                log.lock().unwrap()
            );
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        let client = reqwest::Client::builder().timeout(TIMEOUT).build().unwrap();
        Self {
            base: format!("http://127.0.0.1:{port}"),
            client,
            origin,
            origin_url,
            cache,
            log,
            dir,
            shutdown,
            _child: child,
        }
    }

    pub async fn send(&self, method: &str, path: &str, headers: &[(&str, &str)]) -> Reply {
        let method = reqwest::Method::from_bytes(method.as_bytes()).expect("a method");
        let mut request = self.client.request(method, format!("{}{path}", self.base));
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let response = match request.send().await {
            Ok(response) => response,
            Err(error) => panic!(
                "workerd answers: {error}; log: {}",
                self.log.lock().unwrap()
            ),
        };
        Reply::read(response).await
    }

    pub fn origin_requests(&self, path: &str) -> u64 {
        self.origin.stats().by_path.get(path).copied().unwrap_or(0)
    }
}

static NEXT: AtomicU64 = AtomicU64::new(0);

async fn shorten_cache_control(mut response: Response) -> Response {
    let catalogue = response
        .headers()
        .get("cache-control")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|cc| cc.contains("stale-while-revalidate"));
    if catalogue {
        response.headers_mut().insert(
            "cache-control",
            HeaderValue::from_static(SHORT_CACHE_CONTROL),
        );
    }
    response
}
