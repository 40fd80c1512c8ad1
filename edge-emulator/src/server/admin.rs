//! The admin endpoints under `/__emulator/`: counters, the clock, origins and their faults.

use std::sync::Arc;

use axum::extract::State;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde_json::json;

use super::json_error;
use crate::cdn::stats::prometheus;
use crate::emulator::Emulator;

pub fn routes() -> Router<Arc<Emulator>> {
    Router::new()
        .route("/__emulator/stats", get(stats))
        .route("/__emulator/metrics", get(metrics))
        .route("/__emulator/clock", get(clock).post(advance_clock))
        .route("/__emulator/origins", get(origins))
        .route(
            "/__emulator/origins/{name}/faults",
            get(origin_faults).put(set_origin_faults),
        )
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
    Json(json!({ "now_ms": clock.now_ms(), "offset_ms": clock.offset().as_millis() as u64 }))
        .into_response()
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct Advance {
    advance_secs: f64,
}

/// Moves the emulator's clock (and so every cache's and origin's idea of now) forward.
async fn advance_clock(State(emulator): State<Arc<Emulator>>, body: axum::body::Bytes) -> Response {
    match serde_json::from_slice::<Advance>(&body) {
        Ok(Advance { advance_secs }) if (0.0..=1e9).contains(&advance_secs) => {
            emulator
                .network
                .clock
                .advance(std::time::Duration::from_secs_f64(advance_secs));
            clock(State(emulator)).await
        }
        _ => json_error(
            StatusCode::BAD_REQUEST,
            "invalid_clock_change",
            "send {\"advance_secs\": N} with 0 <= N <= 1e9; time only moves forward",
        ),
    }
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
        Ok(origin) => Json(
            origin
                .faults
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .clone(),
        )
        .into_response(),
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
            Json(plan).into_response()
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
