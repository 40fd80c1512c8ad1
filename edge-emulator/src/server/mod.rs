//! The emulator's HTTP face: every request runs through a PoP's worker (`edge::serve_at_pop`)
//! and gets a line in the access log (`access_log`); `/__emulator/` holds the admin endpoints
//! (`admin`) and the live page (`live`).

pub mod access_log;
mod admin;
pub mod live;

pub use admin::{AdminAccess, ADMIN_TOKEN_ENV};

use std::future::Future;
use std::sync::Arc;

use axum::body::Body as AxumBody;
use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Router;
use serde_json::json;
use tokio::net::TcpListener;

use edge_worker::headers::end_to_end;

use crate::bindings::types;
use crate::cdn::pop::PopNode;
use crate::edge::serve_at_pop;
use crate::emulator::Emulator;
use crate::wasm::WorkerFailure;
use access_log::AccessLog;
use std::time::Duration;

/// Request size limits, answered with 413 / 414 / 431 and a JSON body.
pub const MAX_REQUEST_BODY: usize = 10 * 1024 * 1024;
pub const MAX_URL_LEN: usize = 8 * 1024;
pub const MAX_HEADER_COUNT: usize = 100;
pub const MAX_HEADER_BYTES: usize = 32 * 1024;

/// The emulator's own request controls, not passed to the worker.
const EMULATOR_CONTROLS: &[&str] = &["x-emulator-pop", "x-emulator-fault"];

/// What every handler may reach: the emulator, and the access log the edge writes to and
/// the live page reads.
#[derive(Clone)]
pub struct AppState {
    pub emulator: Arc<Emulator>,
    pub log: Arc<AccessLog>,
}

impl axum::extract::FromRef<AppState> for Arc<Emulator> {
    fn from_ref(state: &AppState) -> Self {
        state.emulator.clone()
    }
}

pub fn app(emulator: Arc<Emulator>, access: AdminAccess, log: Arc<AccessLog>) -> Router {
    admin::routes(access)
        .fallback(edge)
        .with_state(AppState { emulator, log })
}

/// How often `serve` samples the request totals for the rates in stats and the live page.
const RATE_SAMPLE_EVERY: std::time::Duration = std::time::Duration::from_secs(1);

/// Header fields hyper parses per request. Above [`MAX_HEADER_COUNT`], so that a request
/// with too many is still parsed and refused by us with 431 and a JSON body; hyper's own
/// default (100) would answer an empty 431 before the edge saw it.
const PARSED_HEADER_LIMIT: usize = 4 * MAX_HEADER_COUNT;
/// How long open connections get to finish after shutdown is asked for.
const DRAIN_LIMIT: std::time::Duration = std::time::Duration::from_secs(5);

/// Serves until `shutdown` resolves, then stops the in-process origins.
///
/// hyper-util's server directly rather than `axum::serve`, which does not expose hyper's
/// HTTP/1 limits.
pub async fn run(
    listener: TcpListener,
    emulator: Arc<Emulator>,
    access: AdminAccess,
    log: AccessLog,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    use hyper_util::rt::{TokioExecutor, TokioIo};
    use hyper_util::server::conn::auto::Builder;
    use hyper_util::server::graceful::GracefulShutdown;
    use hyper_util::service::TowerToHyperService;

    use tower::ServiceExt;
    let app = app(emulator.clone(), access, Arc::new(log));
    let sampler = {
        let emulator = emulator.clone();
        tokio::spawn(async move {
            let mut every = tokio::time::interval(RATE_SAMPLE_EVERY);
            loop {
                every.tick().await;
                let (clients, origins) = emulator.request_totals();
                #[allow(clippy::disallowed_methods)]
                // why: rates are per wall second in serve
                let now = std::time::Instant::now();
                emulator.rates.sample(now, clients, origins);
            }
        })
    };
    let mut builder = Builder::new(TokioExecutor::new());
    builder.http1().max_headers(PARSED_HEADER_LIMIT);
    let graceful = GracefulShutdown::new();
    tokio::pin!(shutdown);
    loop {
        let stream = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                // Out of file descriptors or a connection reset before accept: back off
                // briefly instead of spinning.
                Err(_) => {
                    tokio::time::sleep(std::time::Duration::from_millis(10)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let (stream, peer) = stream;
        let _ = stream.set_nodelay(true);
        // The peer address, for the admin endpoints' loopback rule.
        let app = app.clone().map_request(move |mut request: Request<_>| {
            request
                .extensions_mut()
                .insert(axum::extract::ConnectInfo(peer));
            request
        });
        let service = TowerToHyperService::new(app);
        let connection = builder
            .serve_connection_with_upgrades(TokioIo::new(stream), service)
            .into_owned();
        let connection = graceful.watch(connection);
        tokio::spawn(async move {
            let _ = connection.await;
        });
    }
    let _ = tokio::time::timeout(DRAIN_LIMIT, graceful.shutdown()).await;
    sampler.abort();
    emulator.shutdown();
    Ok(())
}

/// The emulator's own refusals in the core's error shape (see `edge_worker::error`).
pub fn json_error(status: StatusCode, code: &str, message: impl Into<String>) -> Response {
    let body = json!({ "error": code, "message": message.into() });
    edge_worker::error::json_error(status, &body).map(|body| AxumBody::from(body.to_bytes()))
}

/// Why the emulator refused a request before or while running the worker.
#[derive(Debug, thiserror::Error)]
pub enum RequestError {
    #[error("no PoP {name:?}; known PoPs: {known}")]
    UnknownPop { name: String, known: String },
    #[error("URLs are limited to {MAX_URL_LEN} bytes")]
    UriTooLong,
    #[error("at most {MAX_HEADER_COUNT} header fields and {MAX_HEADER_BYTES} bytes of them")]
    HeadersTooLarge,
    #[error("request bodies are limited to {MAX_REQUEST_BODY} bytes")]
    BodyTooLarge,
    #[error("the edge is at its limit of {limit} requests in flight; retry shortly")]
    Overloaded { limit: usize },
    #[error(transparent)]
    Worker(#[from] WorkerFailure),
}

impl RequestError {
    fn status(&self) -> StatusCode {
        match self {
            Self::UnknownPop { .. } => StatusCode::BAD_REQUEST,
            Self::UriTooLong => StatusCode::URI_TOO_LONG,
            Self::HeadersTooLarge => StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            Self::BodyTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            Self::Worker(WorkerFailure::Trap(_)) => StatusCode::INTERNAL_SERVER_ERROR,
            Self::Overloaded { .. }
            | Self::Worker(
                WorkerFailure::Exhausted(_)
                | WorkerFailure::CpuLimit { .. }
                | WorkerFailure::MemoryLimit { .. },
            ) => StatusCode::SERVICE_UNAVAILABLE,
        }
    }

    fn code(&self) -> &'static str {
        match self {
            Self::UnknownPop { .. } => "unknown_pop",
            Self::UriTooLong => "uri_too_long",
            Self::HeadersTooLarge => "headers_too_large",
            Self::BodyTooLarge => "body_too_large",
            Self::Overloaded { .. } => "overloaded",
            Self::Worker(WorkerFailure::CpuLimit { .. }) => "worker_cpu_limit",
            Self::Worker(WorkerFailure::MemoryLimit { .. }) => "worker_memory_limit",
            Self::Worker(WorkerFailure::Exhausted(_)) => "worker_pool_exhausted",
            Self::Worker(WorkerFailure::Trap(_)) => "worker_failed",
        }
    }
}

impl IntoResponse for RequestError {
    fn into_response(self) -> Response {
        let mut response = json_error(self.status(), self.code(), self.to_string());
        // Everything answered 503 here passes with time: say when to come back.
        if self.status() == StatusCode::SERVICE_UNAVAILABLE {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
        }
        // The rest of an oversized body is never read, so the connection cannot carry another
        // request: say so (RFC 9112 §9.6) rather than let a client reuse it and fail.
        if matches!(self, Self::BodyTooLarge) {
            response
                .headers_mut()
                .insert(header::CONNECTION, HeaderValue::from_static("close"));
        }
        response
    }
}

/// The PoP a request lands on: `X-Emulator-Pop` (a PoP name, in any case), else by
/// `CF-IPCountry`, else the default.
fn choose_pop<'a>(
    emulator: &'a Emulator,
    headers: &HeaderMap,
) -> Result<&'a Arc<PopNode>, RequestError> {
    if let Some(name) = headers.get("x-emulator-pop") {
        let name = name.to_str().unwrap_or_default().trim();
        return emulator
            .tiers
            .pops()
            .find(|pop| pop.name.eq_ignore_ascii_case(name))
            .ok_or_else(|| RequestError::UnknownPop {
                name: name.to_string(),
                known: emulator
                    .tiers
                    .pops()
                    .map(|p| p.name.as_str())
                    .collect::<Vec<_>>()
                    .join(", "),
            });
    }
    let country = headers.get("cf-ipcountry").and_then(|v| v.to_str().ok());
    let pop = emulator.topology.pop_for_country(country);
    emulator
        .tiers
        .pop(&pop.name)
        .ok_or_else(|| RequestError::UnknownPop {
            name: pop.name.clone(),
            known: String::new(),
        })
}

fn check_limits(request: &Request) -> Result<(), RequestError> {
    let url_len = request
        .uri()
        .path_and_query()
        .map_or(0, |p| p.as_str().len());
    if url_len > MAX_URL_LEN {
        return Err(RequestError::UriTooLong);
    }
    let headers = request.headers();
    let header_bytes: usize = headers
        .iter()
        .map(|(n, v)| n.as_str().len() + v.len())
        .sum();
    if headers.len() > MAX_HEADER_COUNT || header_bytes > MAX_HEADER_BYTES {
        return Err(RequestError::HeadersTooLarge);
    }
    Ok(())
}

/// Every request the edge answers, refused ones included, gets its line in the access log.
async fn edge(State(state): State<AppState>, request: Request) -> Response {
    #[allow(clippy::disallowed_methods)]
    // why: the line's duration is wall time, as nginx's $request_time
    let started = std::time::Instant::now();
    let method = request.method().to_string();
    let path = request
        .uri()
        .path_and_query()
        .map_or("/", |p| p.as_str())
        .to_string();
    let (response, pop, hops, simulated) = match serve_request(&state.emulator, request).await {
        Ok((served, pop)) => {
            let simulated = access_log::RequestLine::simulated(
                state.emulator.topology.client_rtt(),
                &served.hops,
            );
            let hops = served.hops;
            (to_http(served.response), pop, hops, simulated)
        }
        Err((error, pop)) => (error.into_response(), pop, Vec::new(), Duration::ZERO),
    };
    let now = state.emulator.network.clock.now();
    state.log.record(access_log::RequestLine {
        time: crate::cdn::clock::rfc3339(now),
        time_ms: crate::cdn::clock::unix_ms(now),
        method,
        path,
        status: response.status().as_u16(),
        pop,
        tiers: access_log::RequestLine::tiers_of(&hops),
        bytes: axum::body::HttpBody::size_hint(response.body())
            .exact()
            .unwrap_or_default(),
        duration_ms: (started.elapsed().as_secs_f64() * 10_000.0).round() / 10.0,
        simulated_ms: (simulated.as_secs_f64() * 10_000.0).round() / 10.0,
    });
    response
}

/// Runs one request through its PoP; the PoP's name comes back either way (empty when none
/// was chosen).
async fn serve_request(
    emulator: &Arc<Emulator>,
    request: Request,
) -> Result<(crate::edge::Served, String), (RequestError, String)> {
    let mut pop_name = String::new();
    let result = serve_at_chosen_pop(emulator, request, &mut pop_name).await;
    match result {
        Ok(served) => Ok((served, pop_name)),
        Err(error) => Err((error, pop_name)),
    }
}

async fn serve_at_chosen_pop(
    emulator: &Arc<Emulator>,
    request: Request,
    pop_name: &mut String,
) -> Result<crate::edge::Served, RequestError> {
    // Shed before any work: a request refused here costs the edge almost nothing.
    let Ok(_permit) = emulator.in_flight.clone().try_acquire_owned() else {
        emulator
            .shed
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        return Err(RequestError::Overloaded {
            limit: emulator.max_in_flight(),
        });
    };
    check_limits(&request)?;
    let pop = choose_pop(emulator, request.headers())?.clone();
    pop_name.clone_from(&pop.name);
    let (parts, body) = request.into_parts();
    let body = axum::body::to_bytes(body, MAX_REQUEST_BODY)
        .await
        .map_err(|_| RequestError::BodyTooLarge)?
        .to_vec();
    let trap = parts
        .headers
        .get("x-emulator-fault")
        .is_some_and(|v| v == "trap");
    let host = parts
        .headers
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("localhost");
    let path = parts.uri.path_and_query().map_or("/", |p| p.as_str());
    let headers = end_to_end(&parts.headers)
        .iter()
        .filter(|(name, _)| !EMULATOR_CONTROLS.contains(&name.as_str()))
        .map(|(n, v)| (n.as_str().to_string(), v.as_bytes().to_vec()))
        .collect();
    let wit_request = types::Request {
        method: parts.method.to_string(),
        url: format!("http://{host}{path}"),
        headers,
        body,
        origin: None,
    };
    let country = parts
        .headers
        .get("cf-ipcountry")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let ctx = pop.context(country);

    let served = serve_at_pop(emulator, &pop, wit_request, ctx, trap)
        .await
        .inspect_err(|failure| {
            eprintln!("[edge-{}] {} {}: {failure}", pop.name, parts.method, path);
        })?;
    Ok(served)
}

fn to_http(response: crate::wasm::Answer) -> Response {
    let mut built = Response::builder()
        .status(StatusCode::from_u16(response.status).unwrap_or(StatusCode::BAD_GATEWAY));
    for (name, value) in &response.headers {
        if let Ok(value) = HeaderValue::from_bytes(value) {
            built = built.header(name.as_str(), value);
        }
    }
    // RFC 9110 §7.6.3: an intermediary says it was one.
    built = built.header(header::VIA, HeaderValue::from_static("1.1 edge-emulator"));
    built
        .body(AxumBody::from(response.body))
        .unwrap_or_else(|e| json_error(StatusCode::BAD_GATEWAY, "invalid_response", e.to_string()))
}
