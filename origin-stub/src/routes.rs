//! The origin's HTTP routes, each with the validators and Cache-Control of its kind of data.

use std::collections::HashMap;
use std::hash::{DefaultHasher, Hash, Hasher};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use axum::extract::{Path, Query, Request, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, put};
use axum::{Json, Router};
use serde_json::json;

use crate::catalogue::{self, PRODUCT_COUNT, USER_COUNT};
use crate::{FaultPlan, Origin};

/// Cache-Control per kind of data: catalogue reads tolerate staleness, user data is private,
/// assets are immutable, the clock is never cached.
pub const PRODUCT_CACHE_CONTROL: &str =
    "public, max-age=60, stale-while-revalidate=30, stale-if-error=600";
pub const LIST_CACHE_CONTROL: &str =
    "public, max-age=30, stale-while-revalidate=30, stale-if-error=300";
pub const USER_CACHE_CONTROL: &str = "private, max-age=60";
pub const ASSET_CACHE_CONTROL: &str = "public, max-age=86400, immutable";

/// Catalogue documents were all last modified at this instant (plus one day per version bump).
const CATALOGUE_EPOCH: Duration = Duration::from_secs(1_767_225_600); // 2026-01-01T00:00:00Z

pub fn router(origin: Arc<Origin>) -> Router {
    let api = Router::new()
        .route("/api/products", get(product_list))
        .route("/api/products/{id}", get(product))
        .route("/api/objects", axum::routing::post(create_object))
        .route("/api/objects/{id}", get(object).put(replace_object))
        .route("/api/objects/{id}/edits", axum::routing::post(edit_object))
        .route("/api/users/{id}", get(user))
        .route("/api/users/me/dashboard", get(crate::dashboard::page))
        .route(
            "/api/users/me/summary",
            get(crate::dashboard::summary_panel),
        )
        .route(
            crate::dashboard::NEWS_PATH,
            get(crate::dashboard::news_panel),
        )
        .route("/api/time", get(time))
        .route("/static/{name}", get(asset))
        .route("/.well-known/jwks.json", get(jwks))
        .layer(middleware::from_fn_with_state(
            origin.clone(),
            count_and_inject,
        ));
    Router::new()
        .merge(api)
        .route("/__origin/stats", get(stats))
        .route("/__origin/faults", put(set_faults).get(get_faults))
        .route("/__origin/products/{id}/bump", axum::routing::post(bump))
        .with_state(origin)
}

/// Counts every data request, applies latency, and answers injected faults before the handler.
async fn count_and_inject(
    State(origin): State<Arc<Origin>>,
    request: Request,
    next: Next,
) -> Response {
    let path = request.uri().path().to_string();
    let authorized = request.headers().contains_key(header::AUTHORIZATION);
    let identified = request.headers().contains_key("x-auth-sub");
    let now = origin.config.clock.now();
    let (fails, plan) = {
        let plan = origin
            .faults
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        let draw = origin.rng.lock().unwrap_or_else(|e| e.into_inner()).f64();
        (plan.fails(now, draw), plan)
    };
    {
        let mut stats = origin.stats.lock().unwrap_or_else(|e| e.into_inner());
        stats.requests += 1;
        stats.with_authorization += u64::from(authorized);
        stats.with_auth_sub += u64::from(identified);
        *stats.by_path.entry(path).or_default() += 1;
        if fails {
            stats.faults += 1;
        }
    }
    let delay = origin.config.latency + Duration::from_millis(plan.extra_latency_ms);
    if !delay.is_zero() {
        tokio::time::sleep(delay).await;
    }
    let mut response = if fails {
        let status = StatusCode::from_u16(plan.status()).unwrap_or(StatusCode::SERVICE_UNAVAILABLE);
        let mut r = (
            status,
            Json(json!({ "error": "injected_fault", "origin": origin.config.name })),
        )
            .into_response();
        r.headers_mut()
            .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        r
    } else {
        next.run(request).await
    };
    if response.status() == StatusCode::NOT_MODIFIED {
        origin
            .stats
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .not_modified += 1;
    }
    let headers = response.headers_mut();
    headers.insert(header::DATE, header_value(&httpdate::fmt_http_date(now)));
    headers.insert("x-origin", header_value(&origin.config.name));
    response
}

fn header_value(text: &str) -> HeaderValue {
    HeaderValue::from_str(text).unwrap_or_else(|_| HeaderValue::from_static("invalid"))
}

/// A strong ETag over the exact bytes (RFC 9110 §8.8.3).
pub(crate) fn etag(bytes: &[u8]) -> String {
    let mut hasher = DefaultHasher::new();
    bytes.hash(&mut hasher);
    format!("\"{:016x}\"", hasher.finish())
}

/// RFC 9110 §13.1.2 weak comparison of `If-None-Match` against our ETag.
fn none_match(headers: &HeaderMap, etag: &str) -> Option<bool> {
    let value = headers.get(header::IF_NONE_MATCH)?.to_str().ok()?;
    let ours = etag.trim_start_matches("W/");
    Some(
        value
            .split(',')
            .map(str::trim)
            .any(|tag| tag == "*" || tag.trim_start_matches("W/") == ours),
    )
}

/// A Cache-Control value, from a constant or built per request.
pub struct CacheControlValue(HeaderValue);

impl From<&'static str> for CacheControlValue {
    fn from(value: &'static str) -> Self {
        Self(HeaderValue::from_static(value))
    }
}

impl From<HeaderValue> for CacheControlValue {
    fn from(value: HeaderValue) -> Self {
        Self(value)
    }
}

/// A cacheable JSON representation with validators, or 304 when the request's validators
/// match (RFC 9110 §13.2.2: If-None-Match first, If-Modified-Since only without it).
fn representation(
    request: &HeaderMap,
    content_type: &'static str,
    body: Vec<u8>,
    cache_control: impl Into<CacheControlValue>,
    last_modified: SystemTime,
) -> Response {
    let tag = etag(&body);
    let last_modified_text = httpdate::fmt_http_date(last_modified);
    let not_modified = match none_match(request, &tag) {
        Some(matched) => matched,
        None => request
            .get(header::IF_MODIFIED_SINCE)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| httpdate::parse_http_date(v).ok())
            .is_some_and(|since| last_modified <= since),
    };
    let mut headers = HeaderMap::new();
    headers.insert(header::ETAG, header_value(&tag));
    headers.insert(header::LAST_MODIFIED, header_value(&last_modified_text));
    headers.insert(header::CACHE_CONTROL, cache_control.into().0);
    if not_modified {
        return (StatusCode::NOT_MODIFIED, headers).into_response();
    }
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    (StatusCode::OK, headers, body).into_response()
}

/// The demo signing keys as a JWKS (RFC 7517 §5): the public half of the ES256 demo key
/// (edge-worker/src/auth/demo/), under kid `demo-es256-jwks`.
pub const DEMO_JWKS: &str = r#"{"keys":[{"kty":"EC","crv":"P-256","x":"a6Sqz1wmVVbTwIJMI1EOoubtu-m20RHv6AbeoRci46o","y":"pWquv3yvcmAPZYf_KCX4WLeeTig2cWX9thYqQ4ohNSI","kid":"demo-es256-jwks","alg":"ES256","use":"sig"}]}"#;

async fn jwks() -> Response {
    let mut response = DEMO_JWKS.into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/jwk-set+json"),
    );
    headers.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=300"),
    );
    response
}

fn not_found(what: &str) -> Response {
    let mut r = (
        StatusCode::NOT_FOUND,
        Json(json!({ "error": "not_found", "message": what })),
    )
        .into_response();
    r.headers_mut().insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=10"),
    );
    r
}

fn version_of(origin: &Origin, id: u64) -> u64 {
    origin
        .versions
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .get(&id)
        .copied()
        .unwrap_or(0)
}

async fn product(
    State(origin): State<Arc<Origin>>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Response {
    let Some(id) = id
        .parse::<u64>()
        .ok()
        .filter(|id| (1..=PRODUCT_COUNT).contains(id))
    else {
        return not_found(&format!(
            "no product {id:?}; ids run from 1 to {PRODUCT_COUNT}"
        ));
    };
    let version = version_of(&origin, id);
    let body = serde_json::to_vec(&catalogue::product(id, version)).unwrap_or_default();
    let modified = SystemTime::UNIX_EPOCH + CATALOGUE_EPOCH + Duration::from_secs(version * 86_400);
    tagged(
        representation(
            &headers,
            "application/json",
            body,
            PRODUCT_CACHE_CONTROL,
            modified,
        ),
        &format!("product-{id}, products"),
    )
}

/// Adds the `Cache-Tag` field CDNs purge by (Cloudflare, Akamai): comma-separated tags.
fn tagged(mut response: Response, tags: &str) -> Response {
    response
        .headers_mut()
        .insert("cache-tag", header_value(tags));
    response
}

/// Largest synthetic object, and longest TTL it may ask for.
pub const MAX_OBJECT_BYTES: usize = 8 * 1024 * 1024;
pub const MAX_OBJECT_TTL_SECS: u64 = 365 * 86_400;

/// Synthetic objects for simulated workloads: `/api/objects/{id}?bytes=N&ttl=T[&swr=S]` is a
/// JSON document of N bytes (at least its ~40-byte skeleton; deterministic per id and
/// version), cacheable for T seconds (`public, max-age=T[, stale-while-revalidate=S]`);
/// `ttl=0` makes it `no-store`. Versions move with `POST /__origin/products/{id}/bump`, as
/// products' do. With `&of=C` the catalogue holds ids 1..=C: any other id is a 404 with no
/// freshness of its own (as most origins send one), the case negative caching is for.
async fn object(
    State(origin): State<Arc<Origin>>,
    Path(id): Path<String>,
    Query(query): Query<HashMap<String, String>>,
    headers: HeaderMap,
) -> Response {
    let number = |name: &str, default: u64| -> Result<u64, String> {
        match query.get(name) {
            None => Ok(default),
            Some(text) => text
                .parse::<u64>()
                .map_err(|_| format!("{name}={text:?} is not a whole number")),
        }
    };
    let parsed = id
        .parse::<u64>()
        .map_err(|_| format!("object id {id:?} is not a whole number"))
        .and_then(|id| {
            Ok((
                id,
                number("bytes", 1024)?,
                number("ttl", 60)?,
                number("swr", 0)?,
            ))
        });
    let (id, bytes, ttl, swr) = match parsed {
        Ok(values) => values,
        Err(message) => return bad_request(&message),
    };
    match number("of", u64::MAX) {
        Ok(catalogue) if id == 0 || id > catalogue => return missing(id, catalogue),
        Ok(_) => {}
        Err(message) => return bad_request(&message),
    }
    if bytes as usize > MAX_OBJECT_BYTES || ttl > MAX_OBJECT_TTL_SECS || swr > MAX_OBJECT_TTL_SECS {
        return bad_request(&format!(
            "bytes ≤ {MAX_OBJECT_BYTES}, ttl and swr ≤ {MAX_OBJECT_TTL_SECS}"
        ));
    }
    let version = version_of(&origin, id);
    let body = catalogue::object(id, version, bytes as usize);
    let cache_control = match (ttl, swr) {
        (0, _) => "no-store".to_string(),
        (ttl, 0) => format!("public, max-age={ttl}"),
        (ttl, swr) => format!("public, max-age={ttl}, stale-while-revalidate={swr}"),
    };
    let modified = SystemTime::UNIX_EPOCH + CATALOGUE_EPOCH + Duration::from_secs(version * 60);
    tagged(
        representation(
            &headers,
            "application/json",
            body,
            header_value(&cache_control),
            modified,
        ),
        &format!("object-{id}, objects"),
    )
}

/// Writes to objects, the three shapes of a successful unsafe request a cache must invalidate
/// after (RFC 9111 §4.4), each changing the object's version so a stale copy shows:
/// `PUT /api/objects/{id}` answers 204 and names nothing else; `POST /api/objects?id=N`
/// answers 201 with `Location: /api/objects/N`; `POST /api/objects/{id}/edits` answers 200
/// with the edited object and `Content-Location: /api/objects/{id}`. Any other method on
/// `/api/objects/{id}` is 405, which invalidates nothing.
async fn replace_object(State(origin): State<Arc<Origin>>, Path(id): Path<String>) -> Response {
    match id.parse::<u64>() {
        Ok(id) => {
            bump_version(&origin, id);
            StatusCode::NO_CONTENT.into_response()
        }
        Err(_) => bad_request(&format!("object id {id:?} is not a whole number")),
    }
}

async fn create_object(
    State(origin): State<Arc<Origin>>,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    let Some(id) = query.get("id").and_then(|id| id.parse::<u64>().ok()) else {
        return bad_request("POST /api/objects needs ?id=N, a whole number");
    };
    let version = bump_version(&origin, id);
    let mut response = (
        StatusCode::CREATED,
        Json(json!({ "id": id, "version": version })),
    )
        .into_response();
    response.headers_mut().insert(
        header::LOCATION,
        header_value(&format!("/api/objects/{id}")),
    );
    response
}

async fn edit_object(State(origin): State<Arc<Origin>>, Path(id): Path<String>) -> Response {
    let Ok(id) = id.parse::<u64>() else {
        return bad_request(&format!("object id {id:?} is not a whole number"));
    };
    let version = bump_version(&origin, id);
    let body = catalogue::object(id, version, 256);
    let mut response = ([(header::CONTENT_TYPE, "application/json")], body).into_response();
    response.headers_mut().insert(
        header::CONTENT_LOCATION,
        header_value(&format!("/api/objects/{id}")),
    );
    response
}

fn bump_version(origin: &Origin, id: u64) -> u64 {
    let mut versions = origin.versions.lock().unwrap_or_else(|e| e.into_inner());
    let version = versions.entry(id).or_default();
    *version += 1;
    *version
}

/// A 404 without Cache-Control, Expires or validators: no freshness of its own.
fn missing(id: u64, catalogue: u64) -> Response {
    (
        StatusCode::NOT_FOUND,
        Json(json!({
            "error": "not_found",
            "message": format!("no object {id}; ids run from 1 to {catalogue}")
        })),
    )
        .into_response()
}

fn bad_request(message: &str) -> Response {
    (
        StatusCode::BAD_REQUEST,
        Json(json!({ "error": "invalid_request", "message": message })),
    )
        .into_response()
}

async fn product_list(
    Query(query): Query<HashMap<String, String>>,
    headers: HeaderMap,
) -> Response {
    let page = query
        .get("page")
        .and_then(|p| p.parse().ok())
        .unwrap_or(1u64)
        .clamp(1, 10_000);
    let body = serde_json::to_vec(&catalogue::product_page(page)).unwrap_or_default();
    let modified = SystemTime::UNIX_EPOCH + CATALOGUE_EPOCH;
    tagged(
        representation(
            &headers,
            "application/json",
            body,
            LIST_CACHE_CONTROL,
            modified,
        ),
        "products, product-list",
    )
}

async fn user(Path(id): Path<String>, headers: HeaderMap) -> Response {
    let Some(id) = id
        .parse::<u64>()
        .ok()
        .filter(|id| (1..=USER_COUNT).contains(id))
    else {
        return not_found(&format!("no user {id:?}; ids run from 1 to {USER_COUNT}"));
    };
    let mut document = catalogue::user(id);
    // Who is looking, as the edge forwards it: what makes this response private to them.
    document["viewer"] = headers
        .get("x-auth-sub")
        .and_then(|v| v.to_str().ok())
        .map_or(serde_json::Value::Null, |sub| sub.into());
    let body = serde_json::to_vec(&document).unwrap_or_default();
    let modified = SystemTime::UNIX_EPOCH + CATALOGUE_EPOCH;
    representation(
        &headers,
        "application/json",
        body,
        USER_CACHE_CONTROL,
        modified,
    )
}

async fn time(State(origin): State<Arc<Origin>>) -> Response {
    let now = origin.config.clock.now();
    let ms = now
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64);
    let mut r = Json(json!({ "unix_ms": ms })).into_response();
    r.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    r
}

async fn asset(Path(name): Path<String>, headers: HeaderMap) -> Response {
    match catalogue::asset(&name) {
        Some((kind, body)) => {
            let modified = SystemTime::UNIX_EPOCH + CATALOGUE_EPOCH;
            representation(
                &headers,
                kind,
                body.into_bytes(),
                ASSET_CACHE_CONTROL,
                modified,
            )
        }
        None => not_found(&format!(
            "no asset {name:?}; try app.js, style.css or logo.svg"
        )),
    }
}

async fn stats(State(origin): State<Arc<Origin>>) -> Json<crate::OriginStats> {
    Json(origin.stats())
}

async fn get_faults(State(origin): State<Arc<Origin>>) -> Json<FaultPlan> {
    Json(
        origin
            .faults
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone(),
    )
}

async fn set_faults(State(origin): State<Arc<Origin>>, body: axum::body::Bytes) -> Response {
    let plan = serde_json::from_slice::<FaultPlan>(&body)
        .map_err(|e| e.to_string())
        .and_then(|plan| plan.resolve(origin.config.clock.now()));
    match plan {
        Ok(plan) => {
            *origin.faults.lock().unwrap_or_else(|e| e.into_inner()) = plan.clone();
            Json(plan).into_response()
        }
        Err(message) => (
            StatusCode::BAD_REQUEST,
            Json(json!({ "error": "invalid_fault_plan", "message": message,
                "example": { "error_rate": 0.5, "error_status": 503, "extra_latency_ms": 100, "down_for_secs": 30, "flap_period_ms": 2000 } })),
        )
            .into_response(),
    }
}

/// Changes a product (its version, hence body, ETag and Last-Modified).
async fn bump(State(origin): State<Arc<Origin>>, Path(id): Path<u64>) -> Json<serde_json::Value> {
    let version = bump_version(&origin, id);
    Json(json!({ "id": id, "version": version }))
}
