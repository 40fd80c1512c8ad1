//! The core's error type and its one mapping to an HTTP response.

use http::{header, Response, StatusCode};

use crate::fields::MaskError;
use crate::Body;

#[derive(Debug, thiserror::Error)]
pub enum WorkerError {
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
}

impl WorkerError {
    pub fn status(&self) -> StatusCode {
        match self {
            WorkerError::InvalidUrl(_) => StatusCode::BAD_REQUEST,
            WorkerError::Upstream(_) => StatusCode::BAD_GATEWAY,
            WorkerError::InvalidFields(_) => StatusCode::BAD_REQUEST,
            WorkerError::PreconditionFailed => StatusCode::PRECONDITION_FAILED,
            WorkerError::NoOrigin { .. } => StatusCode::SERVICE_UNAVAILABLE,
            WorkerError::Config(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn code(&self) -> &'static str {
        match self {
            WorkerError::InvalidUrl(_) => "invalid_url",
            WorkerError::Upstream(_) => "upstream_unavailable",
            WorkerError::InvalidFields(_) => "invalid_fields",
            WorkerError::PreconditionFailed => "precondition_failed",
            WorkerError::NoOrigin { .. } => "no_origin_available",
            WorkerError::Config(_) => "worker_misconfigured",
        }
    }

    /// A JSON error response: `{"error": code, "message": text}`.
    pub fn to_response(&self) -> Response<Body> {
        let mut body = serde_json::json!({ "error": self.code(), "message": self.to_string() });
        if let WorkerError::InvalidFields(error) = self {
            body["position"] = error.position.into();
            body["expected"] = error.expected.into();
        }
        let mut response = Response::new(body.to_string().into_bytes());
        *response.status_mut() = self.status();
        response.headers_mut().insert(
            header::CONTENT_TYPE,
            header::HeaderValue::from_static("application/json"),
        );
        response.headers_mut().insert(
            header::CACHE_CONTROL,
            header::HeaderValue::from_static("no-store"),
        );
        if let WorkerError::NoOrigin { retry_after, .. } = self {
            response.headers_mut().insert(
                header::RETRY_AFTER,
                header::HeaderValue::from(retry_after_secs(*retry_after)),
            );
        }
        response
    }
}

/// Retry-After is whole seconds (RFC 9110 §10.2.3): round up, and never say 0.
fn retry_after_secs(wait: std::time::Duration) -> u64 {
    wait.as_secs_f64().ceil().max(1.0) as u64
}
