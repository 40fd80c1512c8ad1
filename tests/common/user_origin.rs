//! Stand-ins for a user's own service behind `serve --origin`: a well-behaved HTTP origin
//! whose answers the request's query chooses, and a raw-TCP origin that misbehaves on demand.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

/// One request as the origin received it.
#[derive(Debug, Clone)]
pub struct Seen {
    pub method: String,
    pub path_and_query: String,
    pub headers: HeaderMap,
    pub body: Vec<u8>,
}

/// A JSON API whose responses the query string shapes:
/// `cc` (Cache-Control), `cdn` (CDN-Cache-Control), `sc` (Surrogate-Control), `html` and
/// `json` (a literal body: `{sub}` becomes the forwarded subject, `{n}` the count, `{self}` the path and query), `vary`, `location`, `content_location`,
/// `status`, `delay_ms`, `cookie_from` (a request field whose value becomes a session
/// cookie), `etag` (a request whose If-None-Match names it gets a 304), `last_modified` (an
/// HTTP-date: a request without If-None-Match whose If-Modified-Since is not before it gets a
/// 304), `expires`, `date` (sent as given, in place of the server's), `bare304=1` (304s carry
/// no validator and no caching fields: only Date, Content-Type and the origin's own). The
/// body reports what the origin saw: the path, how many times this path was asked for, and
/// the fields a poisoning attack would use, and the experiment assignment it was sent.
pub struct UserOrigin {
    pub url: String,
    seen: Arc<Mutex<Vec<Seen>>>,
    stop: watch::Sender<bool>,
}

impl Drop for UserOrigin {
    fn drop(&mut self) {
        let _ = self.stop.send(true);
    }
}

#[derive(Default)]
struct OriginState {
    seen: Arc<Mutex<Vec<Seen>>>,
    per_path: Mutex<HashMap<String, u64>>,
}

impl UserOrigin {
    pub async fn start() -> Self {
        let state = Arc::new(OriginState::default());
        let seen = state.seen.clone();
        let app = axum::Router::new().fallback(answer).with_state(state);
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let (stop, mut stopped) = watch::channel(false);
        tokio::spawn(async move {
            axum::serve(listener, app)
                .with_graceful_shutdown(async move {
                    let _ = stopped.wait_for(|s| *s).await;
                })
                .await
                .unwrap();
        });
        Self { url, seen, stop }
    }

    /// Every request so far whose path (without query) is `path`.
    pub fn seen(&self, path: &str) -> Vec<Seen> {
        self.seen
            .lock()
            .unwrap()
            .iter()
            .filter(|s| s.path_and_query.split('?').next() == Some(path))
            .cloned()
            .collect()
    }

    pub fn count(&self, path: &str) -> usize {
        self.seen(path).len()
    }
}

async fn answer(State(state): State<Arc<OriginState>>, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    let body: Bytes = axum::body::to_bytes(body, 16 * 1024 * 1024)
        .await
        .unwrap_or_default();
    let path = parts.uri.path().to_string();
    let query: HashMap<String, String> = parts
        .uri
        .query()
        .map(|q| {
            form_urlencoded::parse(q.as_bytes())
                .into_owned()
                .collect::<HashMap<_, _>>()
        })
        .unwrap_or_default();
    state.seen.lock().unwrap().push(Seen {
        method: parts.method.to_string(),
        path_and_query: parts.uri.path_and_query().unwrap().to_string(),
        headers: parts.headers.clone(),
        body: body.to_vec(),
    });
    let n = {
        let mut per_path = state.per_path.lock().unwrap();
        let n = per_path.entry(path.clone()).or_default();
        *n += 1;
        *n
    };
    if let Some(ms) = query.get("delay_ms").and_then(|v| v.parse().ok()) {
        tokio::time::sleep(Duration::from_millis(ms)).await;
    }
    let field = |name: &str| {
        parts
            .headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_string()
    };
    let payload = json!({
        "method": parts.method.as_str(),
        "path": path,
        "n": n,
        "lang": field("accept-language"),
        "forwarded_host": field("x-forwarded-host"),
        "original_url": field("x-original-url"),
        "method_override": field("x-http-method-override"),
        "experiment": field("x-edge-experiment"),
        "body_len": body.len(),
    });
    // A conditional request that names the current `etag`, or (without If-None-Match) is not
    // older than `last_modified`, is answered 304 (RFC 9110 §13.1.2, §13.1.3), with the same
    // caching fields as the 200 unless `bare304`.
    let if_none_match = parts
        .headers
        .get("if-none-match")
        .and_then(|v| v.to_str().ok());
    let not_modified = match if_none_match {
        Some(tags) => query
            .get("etag")
            .is_some_and(|etag| tags.split(',').any(|t| t.trim() == etag)),
        None => query.get("last_modified").is_some_and(|modified| {
            let since = parts
                .headers
                .get("if-modified-since")
                .and_then(|v| httpdate::parse_http_date(v.to_str().ok()?).ok());
            let modified = httpdate::parse_http_date(modified).ok();
            matches!((since, modified), (Some(since), Some(modified)) if modified <= since)
        }),
    };
    let bare = not_modified && query.get("bare304").is_some_and(|v| v == "1");
    let status = query
        .get("status")
        .and_then(|s| s.parse().ok())
        .and_then(|s| StatusCode::from_u16(s).ok())
        .unwrap_or(StatusCode::OK);
    // `html` / `json`: the body as given (a template or a fragment), `{sub}` replaced by the
    // forwarded subject and `{n}` by this path's count.
    let literal = [
        ("html", "text/html; charset=utf-8"),
        ("json", "application/json"),
    ]
    .into_iter()
    .find_map(|(param, content_type)| {
        let text = query.get(param)?;
        let text = text
            .replace("{sub}", &field("x-auth-sub"))
            .replace("{n}", &n.to_string())
            .replace(
                "{self}",
                parts.uri.path_and_query().map_or("", |p| p.as_str()),
            );
        Some((content_type, text))
    });
    let mut response = if not_modified {
        StatusCode::NOT_MODIFIED.into_response()
    } else if let Some((content_type, text)) = literal {
        (status, [("content-type", content_type)], text).into_response()
    } else {
        (status, axum::Json(payload)).into_response()
    };
    let headers = response.headers_mut();
    if bare {
        headers.insert("content-type", HeaderValue::from_static("application/json"));
    }
    for (param, name) in [
        ("cc", "cache-control"),
        ("cdn", "cdn-cache-control"),
        ("vary", "vary"),
        ("location", "location"),
        ("content_location", "content-location"),
        ("etag", "etag"),
        ("last_modified", "last-modified"),
        ("expires", "expires"),
        ("date", "date"),
        ("sc", "surrogate-control"),
    ] {
        let kept_on_a_bare_304 = matches!(param, "date" | "location" | "content_location");
        if bare && !kept_on_a_bare_304 {
            continue;
        }
        if let Some(value) = query.get(param) {
            headers.insert(
                HeaderName::from_static(name),
                HeaderValue::from_str(value).unwrap(),
            );
        }
    }
    if let Some(from) = query.get("cookie_from") {
        let who = field(from);
        headers.insert(
            "set-cookie",
            HeaderValue::from_str(&format!("session={who}")).unwrap(),
        );
    }
    headers.insert("x-origin-says", HeaderValue::from_static("hello"));
    response
}

/// How the raw origin answers its next connections.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Misbehaviour {
    /// A correct 200 with `Cache-Control: max-age=1, stale-if-error=600` and an ETag.
    Healthy,
    /// Reads the request, then resets the connection (RST).
    Reset,
    /// Answers bytes that are not HTTP.
    Garbage,
    /// Promises 1000 body bytes, sends 10, closes.
    Truncated,
    /// Says Content-Length: 5 and sends 40 bytes.
    LongerThanSaid,
    /// A gzip body that inflates 1000:1 (`bomb_bytes()` is what it sends).
    GzipBomb,
    /// Reads the request and never answers.
    Hang,
    /// Sends the head and half the body, then stalls.
    StallMidBody,
    /// A 200 whose Connection field names a private hop-by-hop field.
    HopByHop,
}

/// An origin speaking raw TCP, so it can break HTTP in ways a framework would not let it.
pub struct RawOrigin {
    pub url: String,
    mode: Arc<Mutex<Misbehaviour>>,
    pub connections: Arc<AtomicU64>,
    stop: watch::Sender<bool>,
}

impl Drop for RawOrigin {
    fn drop(&mut self) {
        let _ = self.stop.send(true);
    }
}

/// The gzip bomb's compressed bytes: 16 MiB of zeros.
pub fn bomb_bytes() -> &'static [u8] {
    static BOMB: std::sync::OnceLock<Vec<u8>> = std::sync::OnceLock::new();
    BOMB.get_or_init(|| {
        use std::io::Write;
        let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
        let zeros = vec![0u8; 1024 * 1024];
        for _ in 0..16 {
            encoder.write_all(&zeros).unwrap();
        }
        encoder.finish().unwrap()
    })
}

pub const HEALTHY_BODY: &str = "{\"healthy\":true}";

impl RawOrigin {
    pub async fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let mode = Arc::new(Mutex::new(Misbehaviour::Healthy));
        let connections = Arc::new(AtomicU64::new(0));
        let (stop, stopped) = watch::channel(false);
        let (accept_mode, accept_count) = (mode.clone(), connections.clone());
        let mut accept_stop = stopped.clone();
        tokio::spawn(async move {
            loop {
                let (stream, _) = tokio::select! {
                    accepted = listener.accept() => match accepted {
                        Ok(pair) => pair,
                        Err(_) => continue,
                    },
                    _ = accept_stop.wait_for(|s| *s) => return,
                };
                accept_count.fetch_add(1, Ordering::Relaxed);
                let mode = *accept_mode.lock().unwrap();
                let mut conn_stop = stopped.clone();
                tokio::spawn(async move {
                    tokio::select! {
                        () = serve_one(stream, mode) => {}
                        _ = conn_stop.wait_for(|s| *s) => {}
                    }
                });
            }
        });
        Self {
            url,
            mode,
            connections,
            stop,
        }
    }

    pub fn set(&self, mode: Misbehaviour) {
        *self.mode.lock().unwrap() = mode;
    }
}

/// Reads up to the end of the request head (these tests send no request bodies).
async fn read_head(stream: &mut TcpStream) {
    let mut buffer = Vec::new();
    let mut chunk = [0u8; 4096];
    while !buffer.windows(4).any(|w| w == b"\r\n\r\n") && buffer.len() < 64 * 1024 {
        match stream.read(&mut chunk).await {
            Ok(0) | Err(_) => return,
            Ok(n) => buffer.extend_from_slice(&chunk[..n]),
        }
    }
}

async fn serve_one(mut stream: TcpStream, mode: Misbehaviour) {
    read_head(&mut stream).await;
    let head = |extra: &str, length: usize| {
        format!(
            "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n{extra}content-length: {length}\r\nconnection: close\r\n\r\n"
        )
    };
    let _ = match mode {
        Misbehaviour::Healthy => {
            let text = head(
                "cache-control: max-age=1, stale-if-error=600\r\netag: \"h1\"\r\n",
                HEALTHY_BODY.len(),
            ) + HEALTHY_BODY;
            stream.write_all(text.as_bytes()).await
        }
        Misbehaviour::Reset => {
            // Linger 0: close sends RST instead of FIN.
            let _ = stream.set_zero_linger();
            drop(stream);
            return;
        }
        Misbehaviour::Garbage => {
            stream
                .write_all(b"SURPRISE \x00\xff not http\r\n\r\n")
                .await
        }
        Misbehaviour::Truncated => {
            let text = head("", 1000) + "0123456789";
            stream.write_all(text.as_bytes()).await
        }
        Misbehaviour::LongerThanSaid => {
            let text =
                head("cache-control: no-store\r\n", 5) + "01234 and 35 more bytes nobody asked";
            stream.write_all(text.as_bytes()).await
        }
        Misbehaviour::GzipBomb => {
            let bomb = bomb_bytes();
            let text = head(
                "content-encoding: gzip\r\ncache-control: no-store\r\n",
                bomb.len(),
            );
            let _ = stream.write_all(text.as_bytes()).await;
            stream.write_all(bomb).await
        }
        Misbehaviour::Hang => {
            std::future::pending::<()>().await;
            return;
        }
        Misbehaviour::StallMidBody => {
            let text = head("", 100) + &"x".repeat(50);
            let _ = stream.write_all(text.as_bytes()).await;
            std::future::pending::<()>().await;
            return;
        }
        Misbehaviour::HopByHop => {
            let text = head(
                "cache-control: no-store\r\nx-private-hop: secret\r\nkeep-alive: timeout=5\r\nconnection: x-private-hop\r\n",
                2,
            ) + "ok";
            stream.write_all(text.as_bytes()).await
        }
    };
    let _ = stream.shutdown().await;
}
