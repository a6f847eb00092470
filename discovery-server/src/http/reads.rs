//! The read side of the API: listings, one application, one instance, VIPs.

use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::response::Response;
use cloud_protocol::eureka::AppsHashcode;

use super::AppState;
use super::cache::Listing;
use super::error::AppError;
use super::negotiate::{Format, body_response, fresh_response, wants_gzip};
use crate::registry::Snapshot;

async fn listing(
    state: &AppState,
    headers: &HeaderMap,
    listing: Listing,
) -> Result<Response, AppError> {
    let format = Format::from_accept(headers);
    let gzipped = wants_gzip(headers);
    let bytes = state
        .cache
        .get(&state.node, listing, format, gzipped)
        .await?;
    Ok(body_response(format, gzipped, bytes))
}

/// `GET /apps`: every application.
pub(crate) async fn all(
    State(state): State<AppState>,
    headers: HeaderMap,
) -> Result<Response, AppError> {
    listing(&state, &headers, Listing::Full).await
}

/// `GET /apps/delta`: changes of the last three minutes.
pub(crate) async fn delta(
    State(state): State<AppState>,
    headers: HeaderMap,
) -> Result<Response, AppError> {
    listing(&state, &headers, Listing::Delta).await
}

/// `GET /apps/{app}`.
pub(crate) async fn application(
    State(state): State<AppState>,
    Path(app): Path<String>,
    headers: HeaderMap,
) -> Result<Response, AppError> {
    let snap = state
        .node
        .registry()
        .application(&app)
        .ok_or(AppError::NotFound)?;
    let format = Format::from_accept(&headers);
    Ok(fresh_response(
        format,
        &headers,
        format.write_application(&snap),
    ))
}

/// `GET /apps/{app}/{id}`.
pub(crate) async fn app_instance(
    State(state): State<AppState>,
    Path((app, id)): Path<(String, String)>,
    headers: HeaderMap,
) -> Result<Response, AppError> {
    let (info, lease) = state
        .node
        .registry()
        .instance(&app, &id)
        .ok_or(AppError::NotFound)?;
    let format = Format::from_accept(&headers);
    Ok(fresh_response(
        format,
        &headers,
        format.write_instance(&info, lease),
    ))
}

/// `GET /instances/{id}`.
pub(crate) async fn instance(
    State(state): State<AppState>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Result<Response, AppError> {
    let (info, lease) = state
        .node
        .registry()
        .instance_by_id(&id)
        .ok_or(AppError::NotFound)?;
    let format = Format::from_accept(&headers);
    Ok(fresh_response(
        format,
        &headers,
        format.write_instance(&info, lease),
    ))
}

fn selection(snap: &Snapshot, headers: &HeaderMap) -> Response {
    let mut counts = AppsHashcode::default();
    for (info, _) in snap.applications.iter().flat_map(|(_, l)| l) {
        counts.add(info.status);
    }
    let format = Format::from_accept(headers);
    fresh_response(
        format,
        headers,
        format.write_applications(snap, &counts.to_string()),
    )
}

/// `GET /vips/{vip}`.
pub(crate) async fn vip(
    State(state): State<AppState>,
    Path(vip): Path<String>,
    headers: HeaderMap,
) -> Response {
    selection(&state.node.registry().by_vip(&vip, false), &headers)
}

/// `GET /svips/{svip}`.
pub(crate) async fn svip(
    State(state): State<AppState>,
    Path(vip): Path<String>,
    headers: HeaderMap,
) -> Response {
    selection(&state.node.registry().by_vip(&vip, true), &headers)
}
