//! `POST /eureka/peerreplication/batch`: applies a peer's batch, item by
//! item, as replicated changes (never replicated again), and answers each
//! item with the status it would have had alone, as Eureka's
//! `PeerReplicationResource` does.

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};

use super::PeerApi;
use super::wire::{self, Action, ItemResponse, ReplicationItem};
use crate::node::Node;
use crate::registry::{Origin, RenewOutcome, RenewRequest};

/// The handler.
pub(crate) async fn batch<S: PeerApi>(
    State(state): State<S>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let body = match state.decode_body(&headers, body) {
        Ok(body) => body,
        Err(refused) => return refused.into_response(),
    };
    let items = match wire::read_replication_list(&body) {
        Ok(items) => items,
        Err(e) => return state.bad_request(e.to_string()).into_response(),
    };
    let responses: Vec<ItemResponse> = items
        .into_iter()
        .map(|item| match item {
            Ok(item) => apply(state.node(), item),
            Err(e) => {
                tracing::debug!(error = %e, "bad replication item");
                status_only(StatusCode::BAD_REQUEST)
            }
        })
        .collect();
    let mut out = Vec::with_capacity(32 * responses.len() + 32);
    wire::write_response_list(&mut out, &responses);
    ([(header::CONTENT_TYPE, "application/json")], out).into_response()
}

fn status_only(code: StatusCode) -> ItemResponse {
    ItemResponse {
        status_code: code.as_u16(),
        response_entity: None,
    }
}

fn found(done: bool) -> ItemResponse {
    status_only(if done {
        StatusCode::OK
    } else {
        StatusCode::NOT_FOUND
    })
}

/// Applies one item as a replicated change.
pub(crate) fn apply(node: &Node, item: ReplicationItem) -> ItemResponse {
    let origin = Origin::Replicated;
    let (app, id) = (item.app_name.as_str(), item.id.as_str());
    match item.action {
        Action::Register => {
            let Some(mut info) = item.instance_info else {
                return status_only(StatusCode::BAD_REQUEST);
            };
            if info.validate().is_err() || node.registry().limits().check_instance(&info).is_err() {
                return status_only(StatusCode::BAD_REQUEST);
            }
            node.register(info, origin);
            status_only(StatusCode::OK)
        }
        Action::Heartbeat => {
            let req = RenewRequest {
                status: item.status,
                overridden_status: item.overridden_status,
                last_dirty_timestamp: item.last_dirty_timestamp,
            };
            match node.renew(app, id, req, origin) {
                RenewOutcome::Renewed(_) => status_only(StatusCode::OK),
                RenewOutcome::NotFound => status_only(StatusCode::NOT_FOUND),
                RenewOutcome::Conflict(event) => ItemResponse {
                    status_code: StatusCode::CONFLICT.as_u16(),
                    response_entity: Some((*event.instance).clone()),
                },
            }
        }
        Action::Cancel => found(node.cancel(app, id, origin).is_some()),
        Action::StatusUpdate => match item.status {
            Some(status) => found(
                node.set_status_override(app, id, status, item.last_dirty_timestamp, origin)
                    .is_some(),
            ),
            None => status_only(StatusCode::BAD_REQUEST),
        },
        Action::DeleteStatusOverride => found(
            node.delete_status_override(app, id, item.status, item.last_dirty_timestamp, origin)
                .is_some(),
        ),
    }
}
