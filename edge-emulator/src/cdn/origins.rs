//! The origins behind the regional tiers: in-process origin-stubs (default) or real servers
//! named by URL, reached over HTTP on loopback either way.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use edge_worker::Body;
use http::{Request, Response};
use origin_stub::{Origin, OriginConfig};
use tokio::sync::watch;

use crate::cdn::clock::EmulatorClock;
use crate::cdn::purge::PurgeLedger;
use crate::cdn::topology::OriginSite;

/// Largest origin response body the emulator reads; larger responses fail as 502.
pub const MAX_ORIGIN_BODY: usize = 64 * 1024 * 1024;
/// How long an origin may take to answer (head and body) before the fetch fails, by default.
pub const ORIGIN_TIMEOUT: Duration = Duration::from_secs(30);
/// Added to every request forwarded to an origin (RFC 9110 §7.6.3).
const VIA: &str = "1.1 edge-emulator";

pub struct OriginHandle {
    pub name: String,
    pub base_url: String,
    /// The in-process stub, whose counters the stats endpoint reports.
    pub stub: Option<Arc<Origin>>,
    transport: Transport,
    /// Response body bytes this origin has sent.
    pub bytes_sent: AtomicU64,
    /// Purges, shared by every origin: attributes the first request after a purge to it.
    purges: Arc<PurgeLedger>,
}

/// How requests reach an origin.
enum Transport {
    /// HTTP over loopback (serve): what a real origin sees.
    Http(reqwest::Client),
    /// A direct call into the stub's router (the simulator): no sockets, so nothing real-time
    /// can advance the paused virtual clock, and runs are deterministic.
    InProcess(axum::Router),
}

impl OriginHandle {
    /// Sends `request` (whose URL is the client-facing one) to this origin's base URL.
    pub async fn send(&self, request: Request<Body>) -> Result<Response<Body>, String> {
        self.purges.origin_request(request.uri());
        let response = match &self.transport {
            Transport::Http(client) => self.send_http(client, request).await,
            Transport::InProcess(router) => self.send_in_process(router, request).await,
        }?;
        self.bytes_sent
            .fetch_add(response.body().len() as u64, Ordering::Relaxed);
        Ok(response)
    }

    async fn send_in_process(
        &self,
        router: &axum::Router,
        request: Request<Body>,
    ) -> Result<Response<Body>, String> {
        use tower::ServiceExt;
        let (mut parts, body) = request.into_parts();
        parts.uri = parts
            .uri
            .path_and_query()
            .map_or("/", |p| p.as_str())
            .parse()
            .map_err(|e| format!("origin {}: {e}", self.name))?;
        parts.headers.remove(http::header::HOST);
        let request = Request::from_parts(parts, axum::body::Body::from(body.to_bytes()));
        let response = router
            .clone()
            .oneshot(request)
            .await
            .map_err(|e| format!("origin {}: {e}", self.name))?;
        let (parts, body) = response.into_parts();
        let body = axum::body::to_bytes(body, MAX_ORIGIN_BODY)
            .await
            .map_err(|e| format!("origin {} broke off: {e}", self.name))?;
        Ok(Response::from_parts(parts, Body::from(body)))
    }

    async fn send_http(
        &self,
        client: &reqwest::Client,
        request: Request<Body>,
    ) -> Result<Response<Body>, String> {
        let (parts, body) = request.into_parts();
        let path = parts.uri.path_and_query().map_or("/", |p| p.as_str());
        let url = format!("{}{}", self.base_url.trim_end_matches('/'), path);
        let mut headers = edge_worker::headers::end_to_end(&parts.headers);
        headers.remove(http::header::HOST);
        headers.append(http::header::VIA, http::HeaderValue::from_static(VIA));
        let mut response = client
            .request(parts.method, &url)
            .headers(headers)
            .body(body.to_bytes())
            .send()
            .await
            .map_err(|e| self.failed("sent no usable response head", &e))?;
        let mut built = Response::builder().status(response.status());
        // Content-Length is measured again from what arrived: an origin's own can lie.
        let mut headers = edge_worker::headers::end_to_end(response.headers());
        headers.remove(http::header::CONTENT_LENGTH);
        if let Some(map) = built.headers_mut() {
            *map = headers;
        }
        let mut body = Vec::new();
        while let Some(chunk) = response
            .chunk()
            .await
            .map_err(|e| self.failed("broke off the body", &e))?
        {
            if body.len() + chunk.len() > MAX_ORIGIN_BODY {
                return Err(format!(
                    "origin {} sent more than {MAX_ORIGIN_BODY} bytes",
                    self.name
                ));
            }
            body.extend_from_slice(&chunk);
        }
        built.body(Body::from(body)).map_err(|e| e.to_string())
    }
}

impl OriginHandle {
    /// Why a fetch from this origin failed, in words a user can act on.
    fn failed(&self, what: &str, error: &reqwest::Error) -> String {
        let why = if error.is_timeout() {
            "timed out".to_string()
        } else if error.is_connect() {
            "refused the connection".to_string()
        } else {
            // The source chain says what hyper saw (reset, bad framing, short body).
            let mut text = error.to_string();
            let mut source = std::error::Error::source(error);
            while let Some(cause) = source {
                text.push_str(": ");
                text.push_str(&cause.to_string());
                source = cause.source();
            }
            text
        };
        format!("origin {} {what}: {why}", self.name)
    }
}

/// Starts an origin-stub for each site without a URL; they stop when `shutdown` turns true.
/// `connect_timeout` gives each origin's connect timeout (the routing configuration's).
/// `in_process`: call the stubs directly instead of over loopback HTTP (the simulator; sites
/// with a URL are refused then).
pub async fn start(
    sites: &[OriginSite],
    clock: &Arc<EmulatorClock>,
    connect_timeout: impl Fn(&str) -> Option<Duration>,
    timeout: Duration,
    in_process: bool,
    purges: &Arc<PurgeLedger>,
    shutdown: watch::Receiver<bool>,
) -> anyhow::Result<Vec<Arc<OriginHandle>>> {
    let mut handles = Vec::new();
    for site in sites {
        if in_process && site.url.is_some() {
            anyhow::bail!(
                "origin {} is a real server ({}); the simulator runs in-process origins only: \
                 remove its url from the topology",
                site.name,
                site.url.as_deref().unwrap_or_default()
            );
        }
        let mut client = reqwest::Client::builder()
            .timeout(timeout)
            .pool_max_idle_per_host(256);
        if let Some(timeout) = connect_timeout(&site.name) {
            client = client.connect_timeout(timeout);
        }
        let mut transport = Transport::Http(client.build()?);
        let (base_url, stub) = match &site.url {
            Some(url) => (url.clone(), None),
            None => {
                let faults = match &site.faults {
                    Some(plan) => plan
                        .clone()
                        .resolve(clock.now())
                        .map_err(|e| anyhow::anyhow!("origin {} faults: {e}", site.name))?,
                    None => Default::default(),
                };
                let origin = Origin::new(OriginConfig {
                    name: site.name.clone(),
                    latency: Duration::from_millis(site.latency_ms),
                    clock: clock.clone(),
                    faults,
                });
                if in_process {
                    transport = Transport::InProcess(origin_stub::app(origin.clone()));
                    (format!("in-process://{}", site.name), Some(origin))
                } else {
                    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
                    let url = format!("http://{}", listener.local_addr()?);
                    let mut stop = shutdown.clone();
                    tokio::spawn(origin_stub::run(listener, origin.clone(), async move {
                        let _ = stop.wait_for(|stop| *stop).await;
                    }));
                    (url, Some(origin))
                }
            }
        };
        handles.push(Arc::new(OriginHandle {
            name: site.name.clone(),
            base_url,
            stub,
            transport,
            bytes_sent: AtomicU64::new(0),
            purges: purges.clone(),
        }));
    }
    Ok(handles)
}
