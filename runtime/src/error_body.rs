//! The JSON error answer in the shape of Spring Boot's error attributes
//! (`timestamp`, `status`, `error`, `message`, `path`), so that clients
//! written against Spring services read our errors the same way.
//!
//! ```
//! use axum::http::StatusCode;
//! use axum::response::IntoResponse;
//! use cloud_runtime::error_body::SpringError;
//!
//! let response = SpringError::new(StatusCode::NOT_FOUND, "no such thing").at("/x").into_response();
//! assert_eq!(response.status(), StatusCode::NOT_FOUND);
//! ```

use std::time::SystemTime;

use crate::clock::UtcTime;

use axum::response::{IntoResponse, Response};
use http::StatusCode;

/// An error answered as JSON:
/// `{"timestamp":"2026-01-02T03:04:05.678+00:00","status":404,"error":"Not Found","message":"...","path":"/x"}`.
#[derive(Debug, Clone)]
pub struct SpringError {
    status: StatusCode,
    message: Option<String>,
    path: Option<String>,
    request_id: Option<String>,
}

impl SpringError {
    /// An error with `status` and a `message` for the client.
    pub fn new(status: StatusCode, message: impl Into<String>) -> SpringError {
        SpringError {
            status,
            message: Some(message.into()),
            path: None,
            request_id: None,
        }
    }

    /// An error with no `message` attribute, as Spring Boot writes it by
    /// default (`server.error.include-message: never`): where a peer is
    /// compared with the reference byte for byte, or the message would add
    /// nothing.
    pub fn bare(status: StatusCode) -> SpringError {
        SpringError {
            status,
            message: None,
            path: None,
            request_id: None,
        }
    }

    /// The `requestId` attribute that WebFlux applications (Spring Cloud
    /// Gateway) add; the body then has WebFlux's order of attributes
    /// (`timestamp, path, status, error, ..., requestId`).
    pub fn request_id(mut self, id: impl Into<String>) -> SpringError {
        self.request_id = Some(id.into());
        self
    }

    /// The request path the error answers (Spring's `path` attribute).
    pub fn at(mut self, path: &str) -> SpringError {
        self.path = Some(path.to_owned());
        self
    }

    /// The status.
    pub fn status(&self) -> StatusCode {
        self.status
    }

    /// The message (empty for a [`SpringError::bare`] one).
    pub fn message(&self) -> &str {
        self.message.as_deref().unwrap_or("")
    }

    /// The body as JSON.
    pub fn body(&self) -> serde_json::Value {
        // Servlet applications write `timestamp, status, error, message,
        // path`; WebFlux ones (those with a `requestId`) put `path` second.
        let webflux = self.request_id.is_some();
        let mut body = serde_json::Map::new();
        body.insert("timestamp".into(), timestamp(SystemTime::now()).into());
        if webflux && let Some(path) = &self.path {
            body.insert("path".into(), path.as_str().into());
        }
        body.insert("status".into(), self.status.as_u16().into());
        body.insert(
            "error".into(),
            self.status.canonical_reason().unwrap_or("").into(),
        );
        if let Some(message) = &self.message {
            body.insert("message".into(), message.as_str().into());
        }
        if !webflux && let Some(path) = &self.path {
            body.insert("path".into(), path.as_str().into());
        }
        if let Some(id) = &self.request_id {
            body.insert("requestId".into(), id.as_str().into());
        }
        serde_json::Value::Object(body)
    }
}

impl IntoResponse for SpringError {
    fn into_response(self) -> Response {
        (self.status, axum::Json(self.body())).into_response()
    }
}

/// `at` as Jackson writes a `java.util.Date` in Spring Boot's error body:
/// `2026-01-02T03:04:05.678+00:00` (UTC).
pub fn timestamp(at: SystemTime) -> String {
    let t = UtcTime::at(at);
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}+00:00",
        t.year, t.month, t.day, t.hour, t.minute, t.second, t.millis
    )
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, UNIX_EPOCH};

    use super::*;

    #[test]
    fn timestamps_are_jacksons_utc_form() {
        let at = UNIX_EPOCH + Duration::from_millis(1_767_323_045_678);
        assert_eq!(timestamp(at), "2026-01-02T03:04:05.678+00:00");
        assert_eq!(timestamp(UNIX_EPOCH), "1970-01-01T00:00:00.000+00:00");
        assert_eq!(
            timestamp(UNIX_EPOCH + Duration::from_secs(951_782_400)),
            "2000-02-29T00:00:00.000+00:00"
        );
    }

    #[test]
    fn the_body_has_springs_attributes() {
        let body = SpringError::new(StatusCode::BAD_REQUEST, "bad")
            .at("/p")
            .body();
        assert_eq!(body["status"], 400);
        assert_eq!(body["error"], "Bad Request");
        assert_eq!(body["message"], "bad");
        assert_eq!(body["path"], "/p");
    }

    #[test]
    fn a_bare_error_has_no_message_and_may_carry_a_request_id() {
        let body = SpringError::bare(StatusCode::NOT_FOUND)
            .at("/x")
            .request_id("0000abcd-1")
            .body();
        assert_eq!(body.as_object().map(|o| o.len()), Some(5), "{body}");
        assert!(body.get("message").is_none(), "{body}");
        assert_eq!(body["requestId"], "0000abcd-1");
        assert_eq!(body["error"], "Not Found");
        assert_eq!(body["path"], "/x");
    }
}
