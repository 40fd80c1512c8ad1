//! The admin endpoints under `/__emulator/`: counters, the clock, purges, origins and their
//! faults, and who may call them.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::{ConnectInfo, Request, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::json;
use subtle::ConstantTimeEq;

use super::{json_error, AppState};
use crate::cdn::stats::prometheus;
use crate::emulator::Emulator;

/// Who may call the admin endpoints. They can purge every cache and take origins down, so
/// without a token only loopback clients may (a `serve --listen 0.0.0.0:8787` in a container
/// must not hand that to the network); with one, every caller must present it, loopback too.
#[derive(Clone, Default)]
pub struct AdminAccess {
    token: Option<Arc<[u8]>>,
}

/// Shortest admin token accepted: a guessable token is no protection.
pub const MIN_ADMIN_TOKEN_LEN: usize = 16;
/// The environment variable `serve` reads the token from when `--admin-token` is absent.
pub const ADMIN_TOKEN_ENV: &str = "EDGE_EMULATOR_ADMIN_TOKEN";

impl AdminAccess {
    /// Loopback clients only.
    pub fn loopback_only() -> Self {
        Self::default()
    }

    /// Every admin request must carry `Authorization: Bearer <token>`.
    pub fn token(token: &str) -> Result<Self, String> {
        if token.len() < MIN_ADMIN_TOKEN_LEN || token.bytes().any(|b| !b.is_ascii_graphic()) {
            return Err(format!(
                "the admin token must be at least {MIN_ADMIN_TOKEN_LEN} visible ASCII characters, \
                 e.g. from `openssl rand -hex 24`"
            ));
        }
        Ok(Self {
            token: Some(token.as_bytes().into()),
        })
    }

    pub fn has_token(&self) -> bool {
        self.token.is_some()
    }

    /// `None` when the request may pass; otherwise why not.
    fn refusal(
        &self,
        peer: Option<SocketAddr>,
        authorization: Option<&[u8]>,
    ) -> Option<&'static str> {
        match &self.token {
            Some(token) => {
                let presented = authorization
                    .and_then(|v| v.strip_prefix(b"Bearer "))
                    .unwrap_or_default();
                // Constant-time: a timing difference must not reveal how much of a guess matched.
                let matches: bool = presented.ct_eq(token).into();
                (!matches).then_some(
                    "admin endpoints need Authorization: Bearer <token>, the token serve was \
                     started with (--admin-token or EDGE_EMULATOR_ADMIN_TOKEN)",
                )
            }
            // A request with no peer address came from inside the process (tests, benches).
            // Canonical: a dual-stack listener (`[::]:8787`) sees IPv4 loopback clients as
            // `::ffff:127.0.0.1`, which `is_loopback` alone does not count.
            None => peer
                .is_some_and(|p| !p.ip().to_canonical().is_loopback())
                .then_some(
                    "admin endpoints answer loopback clients only; start serve with --admin-token \
                 (or EDGE_EMULATOR_ADMIN_TOKEN) and send it as a Bearer token to allow others",
                ),
        }
    }
}

/// The read-only live page and its data: the only admin routes that also take the token as
/// a `token` query parameter, since a browser opening the page cannot send a Bearer header.
const LIVE_ROUTES: [&str; 2] = ["/__emulator/", "/__emulator/live.json"];

/// `Bearer TOKEN` from a live route's `token` query parameter.
fn query_token(request: &Request) -> Option<Vec<u8>> {
    if request.method() != axum::http::Method::GET || !LIVE_ROUTES.contains(&request.uri().path()) {
        return None;
    }
    let query = request.uri().query()?;
    form_urlencoded::parse(query.as_bytes())
        .find(|(name, _)| name == "token")
        .map(|(_, token)| format!("Bearer {token}").into_bytes())
}

async fn guard(access: AdminAccess, request: Request, next: Next) -> Response {
    let peer = request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0);
    let from_query = query_token(&request);
    let authorization = request
        .headers()
        .get(header::AUTHORIZATION)
        .map(HeaderValue::as_bytes)
        .or(from_query.as_deref());
    match access.refusal(peer, authorization) {
        None => next.run(request).await,
        Some(why) => json_error(StatusCode::FORBIDDEN, "admin_forbidden", why),
    }
}

pub fn routes(access: AdminAccess) -> Router<AppState> {
    Router::new()
        .route("/__emulator", get(to_live_page))
        .route("/__emulator/", get(live_page))
        .route("/__emulator/live.json", get(live_view))
        .route("/__emulator/stats", get(stats))
        .route("/__emulator/metrics", get(metrics))
        .route("/__emulator/clock", get(clock).post(advance_clock))
        .route("/__emulator/origins", get(origins))
        .route(
            "/__emulator/origins/{name}/faults",
            get(origin_faults).put(set_origin_faults),
        )
        .route("/__emulator/purge", post(purge))
        .route_layer(middleware::from_fn(move |request: Request, next: Next| {
            guard(access.clone(), request, next)
        }))
}

async fn to_live_page(request: Request) -> Response {
    let query = request
        .uri()
        .query()
        .map(|q| format!("?{q}"))
        .unwrap_or_default();
    axum::response::Redirect::permanent(&format!("/__emulator/{query}")).into_response()
}

async fn live_page() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            (header::CACHE_CONTROL, "no-store"),
        ],
        super::live::PAGE,
    )
        .into_response()
}

async fn live_view(State(state): State<AppState>) -> Response {
    let view = super::live::LiveView::of(&state.emulator.stats(), &state.log);
    ([(header::CACHE_CONTROL, "no-store")], Json(view)).into_response()
}

/// Purges every cache (Cloudflare's body shapes; `"soft": true` marks stale, as Fastly's
/// soft purge does) and says how many entries it reached, per cache.
async fn purge(State(emulator): State<Arc<Emulator>>, body: axum::body::Bytes) -> Response {
    match edge_worker::purge::Purge::parse(&body) {
        Ok(purge) => Json(emulator.purge(&purge)).into_response(),
        Err(error) => json_error(StatusCode::BAD_REQUEST, "invalid_purge", error.to_string()),
    }
}

async fn stats(State(emulator): State<Arc<Emulator>>) -> Response {
    Json(emulator.stats()).into_response()
}

async fn metrics(State(emulator): State<Arc<Emulator>>) -> Response {
    let mut response = prometheus(&emulator.stats()).into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; version=0.0.4"),
    );
    response
}

async fn clock(State(emulator): State<Arc<Emulator>>) -> Response {
    let clock = &emulator.network.clock;
    let now = clock.now();
    Json(json!({
        "now_ms": crate::cdn::clock::unix_ms(now),
        "now": crate::cdn::clock::rfc3339(now),
        "offset_ms": clock.offset().as_millis() as u64,
    }))
    .into_response()
}

/// `{"advance_secs": N}` or `{"reset": true}`.
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct ClockChange {
    advance_secs: Option<f64>,
    reset: Option<bool>,
}

/// Moves the emulator's clock (and so every cache's and origin's idea of now) forward, or
/// takes it back to real time.
async fn advance_clock(State(emulator): State<Arc<Emulator>>, body: axum::body::Bytes) -> Response {
    let time = &emulator.network.clock;
    match serde_json::from_slice::<ClockChange>(&body) {
        Ok(ClockChange {
            advance_secs: Some(secs),
            reset: None,
        }) if (0.0..=1e9).contains(&secs) => {
            time.advance(std::time::Duration::from_secs_f64(secs));
        }
        Ok(ClockChange {
            advance_secs: None,
            reset: Some(true),
        }) => time.reset(),
        _ => {
            return json_error(
                StatusCode::BAD_REQUEST,
                "invalid_clock_change",
                "send {\"advance_secs\": N} with 0 <= N <= 1e9 to move time forward, or \
                 {\"reset\": true} to take the offset back to zero",
            )
        }
    }
    clock(State(emulator)).await
}

/// Routing per origin: requests, failures, failovers, hedges, and each PoP's circuit state.
async fn origins(State(emulator): State<Arc<Emulator>>) -> Response {
    Json(emulator.routing_report()).into_response()
}

/// The in-process origin-stub named `name`, or the error response saying why not.
fn stub(emulator: &Emulator, name: &str) -> Result<Arc<origin_stub::Origin>, Box<Response>> {
    let Some(handle) = emulator.origins.get(name) else {
        let known: Vec<&str> = emulator.origins.keys().map(String::as_str).collect();
        return Err(Box::new(json_error(
            StatusCode::NOT_FOUND,
            "unknown_origin",
            format!("no origin {name:?}; known origins: {}", known.join(", ")),
        )));
    };
    handle.stub.clone().ok_or_else(|| {
        Box::new(json_error(
            StatusCode::CONFLICT,
            "external_origin",
            format!(
                "origin {name} is a real server ({}); inject faults there",
                handle.base_url
            ),
        ))
    })
}

async fn origin_faults(
    State(emulator): State<Arc<Emulator>>,
    axum::extract::Path(name): axum::extract::Path<String>,
) -> Response {
    match stub(&emulator, &name) {
        Ok(origin) => {
            let plan = origin
                .faults
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .clone();
            Json(with_dates(&plan)).into_response()
        }
        Err(response) => *response,
    }
}

/// Takes a region down, slows it or makes it flap: the body is a fault plan, e.g.
/// `{"down_for_secs": 30}`, `{"extra_latency_ms": 2000}`, `{"flap_period_ms": 1000}`;
/// `{}` clears every fault.
async fn set_origin_faults(
    State(emulator): State<Arc<Emulator>>,
    axum::extract::Path(name): axum::extract::Path<String>,
    body: axum::body::Bytes,
) -> Response {
    let origin = match stub(&emulator, &name) {
        Ok(origin) => origin,
        Err(response) => return *response,
    };
    let plan = serde_json::from_slice::<origin_stub::FaultPlan>(&body)
        .map_err(|e| e.to_string())
        .and_then(|plan| plan.resolve(emulator.network.clock.now()));
    match plan {
        Ok(plan) => {
            *origin.faults.lock().unwrap_or_else(|e| e.into_inner()) = plan.clone();
            Json(with_dates(&plan)).into_response()
        }
        Err(message) => json_error(
            StatusCode::BAD_REQUEST,
            "invalid_fault_plan",
            format!(
                "{message}; send e.g. {{\"down_for_secs\": 30}}, {{\"extra_latency_ms\": 2000}}, \
                 {{\"flap_period_ms\": 1000}}, {{\"error_rate\": 0.5}} or {{}} to clear"
            ),
        ),
    }
}

/// A fault plan as JSON, with its outage end also in RFC 3339 (`down_until`).
fn with_dates(plan: &origin_stub::FaultPlan) -> serde_json::Value {
    let mut value = serde_json::to_value(plan).unwrap_or_default();
    if let Some(ms) = plan.down_until_ms {
        let at = std::time::SystemTime::UNIX_EPOCH + std::time::Duration::from_millis(ms);
        value["down_until"] = crate::cdn::clock::rfc3339(at).into();
    }
    value
}

#[cfg(test)]
mod tests {
    use super::*;

    fn peer(ip: &str) -> Option<SocketAddr> {
        Some(SocketAddr::new(ip.parse().unwrap(), 50_000))
    }

    #[test]
    fn without_a_token_only_loopback_peers_pass() {
        let access = AdminAccess::loopback_only();
        assert_eq!(access.refusal(peer("127.0.0.1"), None), None);
        assert_eq!(access.refusal(peer("::1"), None), None);
        assert_eq!(access.refusal(peer("::ffff:127.0.0.1"), None), None);
        assert!(access.refusal(peer("::ffff:10.0.0.7"), None).is_some());
        assert_eq!(access.refusal(None, None), None, "in-process callers");
        for remote in ["10.0.0.7", "192.168.1.2", "2001:db8::1"] {
            let why = access
                .refusal(peer(remote), Some(b"Bearer anything"))
                .unwrap();
            assert!(why.contains("--admin-token"), "says what to do: {why}");
        }
    }

    #[test]
    fn with_a_token_every_peer_must_present_it() {
        let access = AdminAccess::token("0123456789abcdef-token").unwrap();
        let good: &[u8] = b"Bearer 0123456789abcdef-token";
        assert_eq!(access.refusal(peer("10.0.0.7"), Some(good)), None);
        assert_eq!(access.refusal(peer("127.0.0.1"), Some(good)), None);
        for bad in [
            None,
            Some(&b"Bearer 0123456789abcdef-toke"[..]),
            Some(&b"Bearer 0123456789abcdef-token2"[..]),
            Some(&b"bearer 0123456789abcdef-token"[..]),
            Some(&b"0123456789abcdef-token"[..]),
        ] {
            assert!(access.refusal(peer("127.0.0.1"), bad).is_some(), "{bad:?}");
        }
    }

    #[test]
    fn short_or_odd_tokens_are_refused_at_start() {
        assert!(AdminAccess::token("short").is_err());
        assert!(AdminAccess::token("sixteen chars with spaces").is_err());
        assert!(AdminAccess::token(&"x".repeat(MIN_ADMIN_TOKEN_LEN)).is_ok());
    }
}
