//! The core's request error and its one mapping to an HTTP response, used by every adapter.
//!
//! The core has two error enums: [`WorkerError`] (a request's: each becomes a response through
//! [`WorkerError::to_response`]) and [`crate::ConfigError`] (a configuration's: hosts refuse to
//! start with one). The rest are the detail they carry: [`AuthError`] (the RFC 6750 error
//! class), [`MaskError`] (where a `?fields=` mask stops parsing), and the port-level
//! [`crate::FetchError`] and `fields::ProjectError`, which never reach a client as such.

use http::header::HeaderValue;
use http::{header, Response, StatusCode};

use crate::auth::AuthError;
use crate::fields::MaskError;
use crate::Body;

#[derive(Debug, thiserror::Error)]
pub enum WorkerError {
    /// The request cannot be read: a header field or method the adapter cannot convert.
    #[error("bad request: {0}")]
    BadRequest(String),
    /// The auth gate refused the request (RFC 6750 §3): 401 or 400 with a Bearer challenge.
    #[error("{error}")]
    Auth { realm: String, error: AuthError },
    /// The request URL cannot name a cache entry (no host, not absolute, too long).
    #[error("invalid request URL: {0}")]
    InvalidUrl(String),
    /// Nothing usable came back from upstream and no stale response may be served.
    #[error("upstream unavailable: {0}")]
    Upstream(String),
    /// `?fields=` or `?fields[TYPE]=` does not parse.
    #[error(transparent)]
    InvalidFields(#[from] MaskError),
    /// `If-Match`, `If-Unmodified-Since` or (for unsafe methods) `If-None-Match` failed
    /// (RFC 9110 §13.2.2).
    #[error("a precondition of the request failed for the current representation")]
    PreconditionFailed,
    /// None of the requested byte ranges lies within the selected representation
    /// (RFC 9110 §15.5.17).
    #[error("no requested byte range lies within the representation's {length} bytes; ask for a range below {length} or drop the Range field")]
    RangeNotSatisfiable { length: u64 },
    /// No origin the request may use answered: all failed, timed out or have open circuits.
    #[error("no origin available (tried {origins}{}); retry after {}s", pinned.as_ref().map(|p| format!("; residency {p} allows no other")).unwrap_or_default(), retry_after_secs(*retry_after))]
    NoOrigin {
        origins: String,
        pinned: Option<String>,
        retry_after: std::time::Duration,
    },
    /// The worker's own configuration is unusable: nothing the client can fix.
    #[error("worker misconfigured: {0}")]
    Config(String),
    /// A template's fragments could not be put together (`compose.rs`).
    #[error("the page could not be composed: {0}")]
    Composition(#[from] crate::compose::ComposeError),
}

impl WorkerError {
    /// An auth refusal, challenging with `realm`.
    pub fn auth(realm: &str, error: AuthError) -> Self {
        WorkerError::Auth {
            realm: realm.to_string(),
            error,
        }
    }

    pub fn status(&self) -> StatusCode {
        match self {
            WorkerError::BadRequest(_) => StatusCode::BAD_REQUEST,
            WorkerError::Auth { error, .. } => match error {
                AuthError::InvalidRequest(_) => StatusCode::BAD_REQUEST,
                AuthError::Missing | AuthError::InvalidToken(_) => StatusCode::UNAUTHORIZED,
            },
            WorkerError::InvalidUrl(_) => StatusCode::BAD_REQUEST,
            WorkerError::Upstream(_) | WorkerError::Composition(_) => StatusCode::BAD_GATEWAY,
            WorkerError::InvalidFields(_) => StatusCode::BAD_REQUEST,
            WorkerError::PreconditionFailed => StatusCode::PRECONDITION_FAILED,
            WorkerError::RangeNotSatisfiable { .. } => StatusCode::RANGE_NOT_SATISFIABLE,
            WorkerError::NoOrigin { .. } => StatusCode::SERVICE_UNAVAILABLE,
            WorkerError::Config(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn code(&self) -> &'static str {
        match self {
            WorkerError::BadRequest(_) => "bad_request",
            WorkerError::Auth { error, .. } => match error {
                AuthError::Missing => "missing_token",
                AuthError::InvalidRequest(_) => "invalid_request",
                AuthError::InvalidToken(_) => "invalid_token",
            },
            WorkerError::InvalidUrl(_) => "invalid_url",
            WorkerError::Upstream(_) => "upstream_unavailable",
            WorkerError::Composition(_) => "composition_failed",
            WorkerError::InvalidFields(_) => "invalid_fields",
            WorkerError::PreconditionFailed => "precondition_failed",
            WorkerError::RangeNotSatisfiable { .. } => "range_not_satisfiable",
            WorkerError::NoOrigin { .. } => "no_origin_available",
            WorkerError::Config(_) => "worker_misconfigured",
        }
    }

    /// The response for this error: its status, a JSON body `{"error": code, "message":
    /// text}`, `Cache-Control: no-store`, and the fields the status calls for
    /// (`WWW-Authenticate` on auth refusals, RFC 6750 §3; `Retry-After` on 503, RFC 9110
    /// §10.2.3).
    pub fn to_response(&self) -> Response<Body> {
        let mut body = serde_json::json!({ "error": self.code(), "message": self.to_string() });
        if let WorkerError::InvalidFields(error) = self {
            body["position"] = error.position.into();
            body["expected"] = error.expected.into();
        }
        let mut response = json_error(self.status(), &body);
        match self {
            WorkerError::NoOrigin { retry_after, .. } => {
                response.headers_mut().insert(
                    header::RETRY_AFTER,
                    HeaderValue::from(retry_after_secs(*retry_after)),
                );
            }
            WorkerError::RangeNotSatisfiable { length } => {
                // RFC 9110 §14.4: the complete length, so the client can ask again.
                if let Ok(value) = HeaderValue::from_str(&format!("bytes */{length}")) {
                    response.headers_mut().insert(header::CONTENT_RANGE, value);
                }
            }
            WorkerError::Auth { realm, error } => {
                if let Ok(value) = HeaderValue::from_str(&error.challenge(realm)) {
                    response
                        .headers_mut()
                        .insert(header::WWW_AUTHENTICATE, value);
                }
            }
            _ => {}
        }
        response
    }
}

/// A JSON error response that no cache stores. Hosts use it for their own refusals (an
/// unknown PoP, a full house) so that every error a client sees has the same shape.
pub fn json_error(status: StatusCode, body: &serde_json::Value) -> Response<Body> {
    let mut response = Response::new(Body::from(body.to_string()));
    *response.status_mut() = status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

/// Retry-After is whole seconds (RFC 9110 §10.2.3): round up, and never say 0.
fn retry_after_secs(wait: std::time::Duration) -> u64 {
    wait.as_secs_f64().ceil().max(1.0) as u64
}
