//! The fetch handler: read `request.cf` and the configuration, run the core, hand its
//! background work to `ctx.waitUntil`.

use std::cell::OnceCell;
use std::rc::Rc;

use edge_worker::{ConfigError, Outcome, WorkerError};
use http::HeaderValue;
use wasm_bindgen::JsValue;
use worker::{console_error, event, Context, Env};

use crate::config::{binding, RawSettings, Settings};
use crate::convert;
use crate::geo::{hand_geo_to_core, CfGeo};
use crate::platform::CfPlatform;
use crate::purge::PURGE_PATH;

thread_local! {
    /// Bindings cannot change within an isolate, so they are read and checked (keys parsed)
    /// once, at its first request, and shared by every request after it.
    static SETTINGS: OnceCell<Result<Rc<Settings>, ConfigError>> = const { OnceCell::new() };
}

#[event(fetch)]
pub async fn fetch(
    request: worker::Request,
    env: Env,
    ctx: Context,
) -> worker::Result<worker::Response> {
    let geo = cf_geo(&request);
    let settings = match settings(&env) {
        Ok(settings) => settings,
        Err(error) => {
            console_error!("worker configuration: {error}");
            let response = WorkerError::Config(error.to_string()).to_response();
            return Ok(convert::response_to_worker(response));
        }
    };
    let (mut request, zone) = match convert::request_from_worker(request).await {
        Ok(converted) => converted,
        Err(error) => {
            let response = WorkerError::BadRequest(error.to_string()).to_response();
            return Ok(convert::response_to_worker(response));
        }
    };
    hand_geo_to_core(&mut request, &geo);
    if request.uri().path() == PURGE_PATH && request.method() == http::Method::POST {
        if let Ok(token) = env.secret(binding::PURGE_TOKEN) {
            return Ok(purge(&settings, zone, &request, &token.to_string()).await);
        }
    }

    let worker = Rc::new(settings.worker.worker(&geo.pop()));
    let platform = Rc::new(CfPlatform::new(settings.clone(), zone));
    let Outcome {
        mut response,
        deferred,
        ..
    } = worker.handle(platform.as_ref(), request).await;
    if !deferred.is_empty() {
        ctx.wait_until(async move {
            for task in deferred {
                worker.run_deferred(platform.as_ref(), task).await;
            }
        });
    }
    add_geo_headers(response.headers_mut(), &geo, settings.debug_geo_headers);
    Ok(convert::response_to_worker(response))
}

/// `POST /__edge/purge` (`crate::purge`): deletes the named URLs' slots in this data centre.
async fn purge(
    settings: &Rc<Settings>,
    zone: Option<http::uri::Authority>,
    request: &http::Request<edge_worker::Body>,
    token: &str,
) -> worker::Response {
    let authorization = request
        .headers()
        .get(http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok());
    // The authority as cache keys hold it (with a port, when the client named one).
    let authority = zone.as_ref().map_or("", |z| z.as_str()).to_string();
    let response = match crate::purge::plan(token, authorization, request.body(), &authority) {
        Ok(keys) => {
            let platform = CfPlatform::new(settings.clone(), zone);
            for key in &keys {
                edge_worker::Platform::cache_delete(&platform, key).await;
            }
            let body =
                serde_json::json!({ "deleted_keys": keys.len(), "scope": "this data centre" });
            edge_worker::error::json_error(http::StatusCode::OK, &body)
        }
        Err(refusal) => {
            let body =
                serde_json::json!({ "error": refusal.code(), "message": refusal.to_string() });
            edge_worker::error::json_error(refusal.status(), &body)
        }
    };
    convert::response_to_worker(response)
}

fn settings(env: &Env) -> Result<Rc<Settings>, ConfigError> {
    SETTINGS.with(|cell| {
        cell.get_or_init(|| read_settings(env).check().map(Rc::new))
            .clone()
    })
}

fn read_settings(env: &Env) -> RawSettings {
    let text = |name: &str| env.var(name).ok().map(|v| v.to_string());
    RawSettings {
        auth_json: json_binding(env, binding::AUTH),
        routing_json: json_binding(env, binding::ROUTING),
        cache_policy_json: json_binding(env, binding::CACHE_POLICY),
        hs256_secret: env
            .secret(binding::JWT_HS256_SECRET)
            .ok()
            .map(|v| v.to_string()),
        hs256_secret_base64: env
            .secret(binding::JWT_HS256_SECRET_BASE64)
            .ok()
            .map(|v| v.to_string()),
        origin: text(binding::ORIGIN),
        debug_geo_headers: text(binding::DEBUG_GEO_HEADERS),
    }
}

/// A binding as JSON text: wrangler turns a TOML table in `[vars]` into an object binding, and
/// a string var holding JSON is accepted too.
fn json_binding(env: &Env, name: &str) -> Option<String> {
    let value = js_sys::Reflect::get(env.as_ref(), &JsValue::from_str(name)).ok()?;
    if value.is_undefined() || value.is_null() {
        return None;
    }
    value
        .as_string()
        .or_else(|| js_sys::JSON::stringify(&value).ok()?.as_string())
}

/// `request.cf`, read as plain JSON (see [`CfGeo`] for why not `worker::Cf`).
fn cf_geo(request: &worker::Request) -> CfGeo {
    js_sys::Reflect::get(request.inner().as_ref(), &JsValue::from_str("cf"))
        .ok()
        .filter(|cf| cf.is_object())
        .and_then(|cf| js_sys::JSON::stringify(&cf).ok()?.as_string())
        .map(|json| CfGeo::from_json(&json))
        .unwrap_or_default()
}

/// `X-Edge-Colo` always (the PoP that answered, as the emulator's `X-Edge-Pop` would), the
/// client's country and continent only when `DEBUG_GEO_HEADERS` is on.
fn add_geo_headers(headers: &mut http::HeaderMap, geo: &CfGeo, debug: bool) {
    if let Ok(colo) = HeaderValue::from_str(&geo.pop()) {
        headers.insert("x-edge-colo", colo);
    }
    if !debug {
        return;
    }
    let core = geo.to_core();
    for (name, value) in [
        ("x-edge-country", core.country),
        ("x-edge-continent", core.continent),
    ] {
        if let Some(value) = value.and_then(|v| HeaderValue::from_str(&v).ok()) {
            headers.insert(name, value);
        }
    }
}
