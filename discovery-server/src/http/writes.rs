//! The write side of the API: register, renew, cancel, status overrides,
//! metadata. Handlers translate HTTP to [`Node`](crate::node::Node) calls
//! and hold no rules of their own.

use std::convert::Infallible;

use axum::body::Bytes;
use axum::extract::{FromRequestParts, Path, Query, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use cloud_protocol::eureka::InstanceStatus;
use serde::Deserialize;

use super::AppState;
use super::error::AppError;
use super::negotiate::{Format, Negotiated, inflate_body};
use crate::limits::Rejection;
use crate::registry::{Origin, RenewOutcome, RenewRequest, app_key};
use crate::replication::REPLICATION_HEADER;

/// Where a request comes from: a peer when it carries
/// `x-netflix-discovery-replication: true`, else a client.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Sender(pub(crate) Origin);

impl<S: Send + Sync> FromRequestParts<S> for Sender {
    type Rejection = Infallible;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        let replicated = parts
            .headers
            .get(REPLICATION_HEADER)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.trim().eq_ignore_ascii_case("true"));
        Ok(Sender(if replicated {
            Origin::Replicated
        } else {
            Origin::Local
        }))
    }
}

/// `POST /apps/{app}`: register. `204` on success, `400` with a reason.
pub(crate) async fn register(
    State(state): State<AppState>,
    Path(app): Path<String>,
    Sender(origin): Sender,
    headers: HeaderMap,
    body: Bytes,
) -> Result<StatusCode, AppError> {
    let body = inflate_body(&headers, body, state.max_body_bytes())?;
    let format = Format::of_body(&headers, &body).ok_or_else(|| {
        let content_type = headers.get(header::CONTENT_TYPE);
        let content_type = content_type.and_then(|v| v.to_str().ok()).unwrap_or("?");
        AppError::UnsupportedMediaType(content_type.to_owned())
    })?;
    let limits = state.node.registry().limits();
    let mut info =
        format
            .decode_instance(&body, &limits.xml)
            .map_err(|e| match e.limit_exceeded() {
                Some(limit) => rejected(&state, Rejection::of_document(limit), &e),
                None => AppError::BadRequest(e.to_string()),
            })?;
    info.validate()
        .map_err(|e| AppError::BadRequest(e.to_string()))?;
    limits
        .check_instance(&info)
        .map_err(|e| rejected(&state, e.rejection(), &e))?;
    let expected = app_key(&app);
    if *app_key(&info.app) != *expected {
        return Err(AppError::BadRequest(format!(
            "Mismatched appName, expecting {expected} but was {}",
            info.app
        )));
    }
    state.node.register(info, origin);
    Ok(StatusCode::NO_CONTENT)
}

/// A `400` for a request over a limit, counted by reason.
fn rejected(state: &AppState, reason: Rejection, error: &dyn std::fmt::Display) -> AppError {
    state.node.metrics().rejected.record(reason);
    AppError::BadRequest(error.to_string())
}

fn status_param(value: Option<&str>, name: &str) -> Result<Option<InstanceStatus>, AppError> {
    value
        .filter(|v| !v.trim().is_empty())
        .map(|v| {
            InstanceStatus::parse_strict(v)
                .ok_or_else(|| AppError::BadRequest(format!("invalid {name}: {v}")))
        })
        .transpose()
}

fn timestamp_param(value: Option<&str>) -> Result<Option<i64>, AppError> {
    value
        .filter(|v| !v.trim().is_empty())
        .map(|v| {
            v.trim()
                .parse()
                .map_err(|_| AppError::BadRequest(format!("invalid lastDirtyTimestamp: {v}")))
        })
        .transpose()
}

/// Query of a renewal.
#[derive(Debug, Default, Deserialize)]
pub(crate) struct RenewQuery {
    status: Option<String>,
    #[serde(rename = "lastDirtyTimestamp")]
    last_dirty_timestamp: Option<String>,
    overriddenstatus: Option<String>,
}

/// `PUT /apps/{app}/{id}`: renew. `200`, `404` (re-register) or `409`
/// with the newer instance (to a peer).
pub(crate) async fn renew(
    State(state): State<AppState>,
    Path((app, id)): Path<(String, String)>,
    Query(q): Query<RenewQuery>,
    Sender(origin): Sender,
    want: Negotiated,
) -> Result<Response, AppError> {
    let req = RenewRequest {
        status: status_param(q.status.as_deref(), "status")?,
        overridden_status: status_param(q.overriddenstatus.as_deref(), "overriddenstatus")?,
        last_dirty_timestamp: timestamp_param(q.last_dirty_timestamp.as_deref())?,
    };
    match state.node.renew(&app, &id, req, origin) {
        RenewOutcome::Renewed(_) => Ok(StatusCode::OK.into_response()),
        RenewOutcome::NotFound => Err(AppError::NotFound),
        RenewOutcome::Conflict(event) => {
            let lease = event.instance.lease_info.unwrap_or_default();
            let mut response = want.respond(want.write_instance(&event.instance, lease));
            *response.status_mut() = StatusCode::CONFLICT;
            Ok(response)
        }
    }
}

/// `DELETE /apps/{app}/{id}`: cancel. `200` or `404`.
pub(crate) async fn cancel(
    State(state): State<AppState>,
    Path((app, id)): Path<(String, String)>,
    Sender(origin): Sender,
) -> Result<StatusCode, AppError> {
    state
        .node
        .cancel(&app, &id, origin)
        .map(|_| StatusCode::OK)
        .ok_or(AppError::NotFound)
}

/// Query of a status change.
#[derive(Debug, Default, Deserialize)]
pub(crate) struct StatusQuery {
    value: Option<String>,
    #[serde(rename = "lastDirtyTimestamp")]
    last_dirty_timestamp: Option<String>,
}

/// `PUT /apps/{app}/{id}/status?value=OUT_OF_SERVICE`: set an override.
pub(crate) async fn set_status(
    State(state): State<AppState>,
    Path((app, id)): Path<(String, String)>,
    Query(q): Query<StatusQuery>,
    Sender(origin): Sender,
) -> Result<StatusCode, AppError> {
    let status = status_param(q.value.as_deref(), "value")?
        .ok_or_else(|| AppError::BadRequest("missing value".to_owned()))?;
    let last_dirty = timestamp_param(q.last_dirty_timestamp.as_deref())?;
    state
        .node
        .set_status_override(&app, &id, status, last_dirty, origin)
        .map(|_| StatusCode::OK)
        .ok_or(AppError::NotFound)
}

/// `DELETE /apps/{app}/{id}/status[?value=UP]`: remove the override.
pub(crate) async fn delete_status(
    State(state): State<AppState>,
    Path((app, id)): Path<(String, String)>,
    Query(q): Query<StatusQuery>,
    Sender(origin): Sender,
) -> Result<StatusCode, AppError> {
    let value = status_param(q.value.as_deref(), "value")?;
    let last_dirty = timestamp_param(q.last_dirty_timestamp.as_deref())?;
    state
        .node
        .delete_status_override(&app, &id, value, last_dirty, origin)
        .map(|_| StatusCode::OK)
        .ok_or(AppError::NotFound)
}

/// `PUT /apps/{app}/{id}/metadata?key=value&...`: adds or replaces
/// entries; `200` (also with no entries, as Eureka), `404` for an unknown
/// instance, `400` when the instance would carry more metadata than the
/// limits allow (nothing is stored). A key given twice keeps its first
/// value, as Eureka's `entry.getValue().get(0)`.
pub(crate) async fn metadata(
    State(state): State<AppState>,
    Path((app, id)): Path<(String, String)>,
    Query(entries): Query<Vec<(String, String)>>,
    Sender(origin): Sender,
) -> Result<StatusCode, AppError> {
    let mut seen = std::collections::HashSet::new();
    let entries: Vec<(String, String)> = entries
        .into_iter()
        .filter(|(k, _)| seen.insert(k.clone()))
        .collect();
    let registry = state.node.registry();
    let check = |state: &AppState| match registry.check_metadata_update(&app, &id, &entries) {
        None => Err(AppError::NotFound),
        Some(Err(e)) => Err(rejected(state, e.rejection(), &e)),
        Some(Ok(())) => Ok(()),
    };
    check(&state)?;
    if state
        .node
        .update_metadata(&app, &id, entries.clone(), origin)
        .is_some()
    {
        return Ok(StatusCode::OK);
    }
    // Refused although within the limits when checked: a concurrent update
    // took the room (400), or the instance left (404).
    check(&state)?;
    Err(AppError::NotFound)
}
