//! The read side of the API: listings, one application, one instance, VIPs.

use axum::extract::{Path, State};
use axum::response::Response;
use cloud_protocol::eureka::AppsHashcode;

use super::AppState;
use super::cache::Listing;
use super::error::AppError;
use super::negotiate::{Negotiated, body_response};
use crate::registry::Snapshot;

async fn listing(
    state: &AppState,
    want: Negotiated,
    listing: Listing,
) -> Result<Response, AppError> {
    let bytes = state.cache.get(&state.node, listing, want).await?;
    Ok(body_response(want.format, want.gzip, bytes))
}

/// `GET /apps`: every application.
pub(crate) async fn all(
    State(state): State<AppState>,
    want: Negotiated,
) -> Result<Response, AppError> {
    listing(&state, want, Listing::Full).await
}

/// `GET /apps/delta`: changes of the last three minutes.
pub(crate) async fn delta(
    State(state): State<AppState>,
    want: Negotiated,
) -> Result<Response, AppError> {
    listing(&state, want, Listing::Delta).await
}

/// `GET /apps/{app}`.
pub(crate) async fn application(
    State(state): State<AppState>,
    Path(app): Path<String>,
    want: Negotiated,
) -> Result<Response, AppError> {
    let snap = state
        .node
        .registry()
        .application(&app)
        .ok_or(AppError::NotFound)?;
    Ok(want.respond(want.write_application(&snap)))
}

/// `GET /apps/{app}/{id}`.
pub(crate) async fn app_instance(
    State(state): State<AppState>,
    Path((app, id)): Path<(String, String)>,
    want: Negotiated,
) -> Result<Response, AppError> {
    let (info, lease) = state
        .node
        .registry()
        .instance(&app, &id)
        .ok_or(AppError::NotFound)?;
    Ok(want.respond(want.write_instance(&info, lease)))
}

/// `GET /instances/{id}`.
pub(crate) async fn instance(
    State(state): State<AppState>,
    Path(id): Path<String>,
    want: Negotiated,
) -> Result<Response, AppError> {
    let (info, lease) = state
        .node
        .registry()
        .instance_by_id(&id)
        .ok_or(AppError::NotFound)?;
    Ok(want.respond(want.write_instance(&info, lease)))
}

/// A listing of a selection, with the hashcode of what it holds, as
/// Eureka's `getApplicationsForVip`: always `200` (an unknown VIP lists no
/// application) and `versions__delta` `-1` (Eureka's unset version).
fn selection(snap: &Snapshot, want: Negotiated) -> Response {
    let mut counts = AppsHashcode::default();
    for (info, _) in snap.applications.iter().flat_map(|(_, l)| l) {
        counts.add(info.status);
    }
    want.respond(want.write_applications(snap, -1, &counts.to_string()))
}

/// `GET /vips/{vip}`.
pub(crate) async fn vip(
    State(state): State<AppState>,
    Path(vip): Path<String>,
    want: Negotiated,
) -> Response {
    selection(&state.node.registry().by_vip(&vip, false), want)
}

/// `GET /svips/{svip}`.
pub(crate) async fn svip(
    State(state): State<AppState>,
    Path(vip): Path<String>,
    want: Negotiated,
) -> Response {
    selection(&state.node.registry().by_vip(&vip, true), want)
}
