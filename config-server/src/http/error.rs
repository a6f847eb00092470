//! The JSON error answer, in the shape of Spring Boot's error attributes
//! (`timestamp`, `status`, `error`, `message`, `path`), written by
//! [`cloud_runtime::error_body::SpringError`], so that clients written
//! against Spring Cloud Config read our errors the same way.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use cloud_runtime::error_body::SpringError;

/// An error answered as JSON:
/// `{"timestamp":"2026-01-02T03:04:05.678+00:00","status":404,"error":"Not Found","message":"...","path":"/foo/dev/x"}`.
#[derive(Debug)]
pub struct AppError(SpringError);

impl AppError {
    pub(super) fn new(status: StatusCode, message: impl Into<String>) -> Self {
        Self(SpringError::new(status, message))
    }

    /// The request path the error answers (Spring's `path` attribute).
    pub(super) fn at(self, path: &str) -> Self {
        Self(self.0.at(path))
    }

    /// The status answered.
    pub(super) fn status(&self) -> StatusCode {
        self.0.status()
    }
}

impl IntoResponse for AppError {
    fn into_response(self) -> Response {
        self.0.into_response()
    }
}
