//! Errors a handler answers with: a status and a reason as JSON
//! (`{"error":"Bad Request","reason":"Missing hostname"}`), logged at the
//! edge; never internals.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

/// A failed request.
#[derive(Debug, thiserror::Error)]
pub enum AppError {
    /// The request is wrong (`400`).
    #[error("bad request: {0}")]
    BadRequest(String),
    /// The body's content type is neither JSON nor XML (`415`).
    #[error("unsupported media type: {0}")]
    UnsupportedMediaType(String),
    /// The instance or application is unknown (`404`; the body is filled in
    /// by [`spring_not_found`]).
    #[error("not found")]
    NotFound,
    /// Something failed inside (`500`); the detail is logged, not sent.
    #[error("internal error: {0}")]
    Internal(String),
}

impl IntoResponse for AppError {
    fn into_response(self) -> Response {
        match self {
            AppError::BadRequest(reason) => {
                tracing::debug!(%reason, "bad request");
                let body = serde_json::json!({"error": "Bad Request", "reason": reason});
                (StatusCode::BAD_REQUEST, Json(body)).into_response()
            }
            AppError::UnsupportedMediaType(content_type) => {
                tracing::debug!(%content_type, "unsupported media type");
                let body = serde_json::json!({
                    "error": "Unsupported Media Type",
                    "reason": format!("{content_type} is neither JSON nor XML"),
                });
                (StatusCode::UNSUPPORTED_MEDIA_TYPE, Json(body)).into_response()
            }
            AppError::NotFound => StatusCode::NOT_FOUND.into_response(),
            AppError::Internal(detail) => {
                tracing::error!(%detail, "internal error");
                let body = serde_json::json!({"error": "Internal Server Error"});
                (StatusCode::INTERNAL_SERVER_ERROR, Json(body)).into_response()
            }
        }
    }
}

/// Fills an empty `404` with Spring Boot's error body, as the reference
/// Eureka Server answers (its Jersey 404s go through Spring's `/error`):
/// `{"timestamp":...,"status":404,"error":"Not Found","path":"/eureka/apps/X/y"}`.
/// Answers that already have a body pass unchanged. Only the URI is kept
/// per request (a reference-counted clone).
pub(super) async fn spring_not_found(
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let uri = request.uri().clone();
    let response = next.run(request).await;
    if response.status() != StatusCode::NOT_FOUND
        || response
            .headers()
            .contains_key(axum::http::header::CONTENT_TYPE)
    {
        return response;
    }
    cloud_runtime::error_body::SpringError::bare(StatusCode::NOT_FOUND)
        .at(uri.path())
        .into_response()
}
