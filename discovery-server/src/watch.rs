//! Watching the registry, beyond Eureka: a client learns of a change the
//! moment it happens instead of polling every 30 seconds.
//!
//! - `GET /eureka/watch`: Server-Sent Events. First `event: hello` with the
//!   current version, then one `event: change` per change (`id:` is the
//!   registry version; data is JSON `{"version","action","app","instanceId",
//!   "status","actionType"}`). A client that falls behind gets
//!   `event: resync` and should fetch `/eureka/apps`. Comments keep the
//!   connection alive every 15 seconds.
//! - `GET /eureka/watch/version?since=N&timeoutMs=30000`: long poll. Answers
//!   `{"version":V,"changed":true}` as soon as the version exceeds `N`, or
//!   `{"version":V,"changed":false}` after the timeout (at most 5 minutes).

use std::convert::Infallible;
use std::time::Duration;

use axum::Json;
use axum::extract::{Query, State};
use axum::response::sse::{Event, KeepAlive, Sse};
use futures::Stream;
use serde::Deserialize;
use tokio::sync::broadcast::error::RecvError;

use crate::http::AppState;
use crate::registry::RegistryEvent;

fn change_event(e: &RegistryEvent) -> Event {
    let i = &e.instance;
    let data = serde_json::json!({
        "version": e.version,
        "action": e.action.as_str(),
        "app": i.app,
        "instanceId": i.instance_id,
        "status": i.status.as_str(),
        "actionType": i.action_type.map(|a| a.as_str()),
    });
    Event::default()
        .event("change")
        .id(e.version.to_string())
        .data(data.to_string())
}

/// `GET /eureka/watch`: the change stream.
pub(crate) async fn stream(
    State(state): State<AppState>,
) -> Sse<impl Stream<Item = Result<Event, Infallible>>> {
    let receiver = state.node.subscribe_changes();
    let version = state.node.registry().version();
    let hello = Event::default()
        .event("hello")
        .id(version.to_string())
        .data(format!("{{\"version\":{version}}}"));
    let first = futures::stream::once(async move { Ok(hello) });
    let changes = futures::stream::unfold(receiver, |mut rx| async move {
        let event = match rx.recv().await {
            Ok(e) => change_event(&e),
            Err(RecvError::Lagged(missed)) => Event::default()
                .event("resync")
                .data(format!("{{\"missed\":{missed}}}")),
            Err(RecvError::Closed) => return None,
        };
        Some((Ok(event), rx))
    });
    Sse::new(futures::StreamExt::chain(first, changes))
        .keep_alive(KeepAlive::new().interval(Duration::from_secs(15)))
}

/// Query of the long poll.
#[derive(Debug, Deserialize)]
pub(crate) struct PollQuery {
    #[serde(default)]
    since: u64,
    #[serde(rename = "timeoutMs", default = "default_timeout")]
    timeout_ms: u64,
}

fn default_timeout() -> u64 {
    30_000
}

/// `GET /eureka/watch/version`: waits for the version to pass `since`.
pub(crate) async fn long_poll(
    State(state): State<AppState>,
    Query(q): Query<PollQuery>,
) -> Json<serde_json::Value> {
    let mut rx = state.node.subscribe_version();
    let timeout = Duration::from_millis(q.timeout_ms.min(300_000));
    let waited = tokio::time::timeout(timeout, rx.wait_for(|v| *v > q.since)).await;
    let changed = matches!(waited, Ok(Ok(_)));
    let version = state.node.registry().version();
    Json(serde_json::json!({"version": version, "changed": changed}))
}
