//! The core's error type and its one mapping to an HTTP response.

use http::{header, Response, StatusCode};

use crate::Body;

#[derive(Debug, thiserror::Error)]
pub enum WorkerError {
    /// The request URL cannot name a cache entry (no host, not absolute, too long).
    #[error("invalid request URL: {0}")]
    InvalidUrl(String),
    /// Nothing usable came back from upstream and no stale response may be served.
    #[error("upstream unavailable: {0}")]
    Upstream(String),
}

impl WorkerError {
    pub fn status(&self) -> StatusCode {
        match self {
            WorkerError::InvalidUrl(_) => StatusCode::BAD_REQUEST,
            WorkerError::Upstream(_) => StatusCode::BAD_GATEWAY,
        }
    }

    fn code(&self) -> &'static str {
        match self {
            WorkerError::InvalidUrl(_) => "invalid_url",
            WorkerError::Upstream(_) => "upstream_unavailable",
        }
    }

    /// A JSON error response: `{"error": code, "message": text}`.
    pub fn to_response(&self) -> Response<Body> {
        let body = serde_json::json!({ "error": self.code(), "message": self.to_string() });
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
        response
    }
}
