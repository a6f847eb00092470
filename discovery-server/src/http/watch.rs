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
//!
//! Both end when the server shuts down (the stream closes, the long poll
//! answers `changed: false`), so a drain never waits for them; while open
//! they are listed as open work in the drain log.

use std::convert::Infallible;
use std::time::Duration;

use axum::Extension;
use axum::Json;
use axum::extract::ConnectInfo;
use axum::extract::{Query, State};
use axum::response::sse::{Event, KeepAlive, Sse};
use cloud_runtime::shutdown::OpenWork;
use futures::{Stream, StreamExt as _};
use serde::Deserialize;
use tokio::sync::broadcast::error::RecvError;

use super::AppState;
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

/// The client's address for the drain log, when known.
fn client(connect: Option<Extension<ConnectInfo<std::net::SocketAddr>>>) -> String {
    connect.map_or_else(
        || "in-process".to_owned(),
        |Extension(ConnectInfo(a))| a.to_string(),
    )
}

/// `GET /eureka/watch`: the change stream, until the client goes or the
/// server shuts down.
pub(super) async fn stream(
    State(state): State<AppState>,
    connect: Option<Extension<ConnectInfo<std::net::SocketAddr>>>,
) -> Sse<impl Stream<Item = Result<Event, Infallible>>> {
    let open = OpenWork::begin("watch stream", client(connect));
    let receiver = state.node.subscribe_changes();
    let version = state.node.registry().version();
    let hello = Event::default()
        .event("hello")
        .id(version.to_string())
        .data(format!("{{\"version\":{version}}}"));
    let first = futures::stream::once(async move { Ok(hello) });
    // The guard lives in the stream's state: dropped when the stream ends.
    let changes = futures::stream::unfold((receiver, open), |(mut rx, open)| async move {
        let event = match rx.recv().await {
            Ok(e) => change_event(&e),
            Err(RecvError::Lagged(missed)) => Event::default()
                .event("resync")
                .data(format!("{{\"missed\":{missed}}}")),
            Err(RecvError::Closed) => return None,
        };
        Some((Ok(event), (rx, open)))
    });
    let until_shutdown = first
        .chain(changes)
        .take_until(state.shutdown.token().clone().cancelled_owned());
    Sse::new(until_shutdown).keep_alive(KeepAlive::new().interval(Duration::from_secs(15)))
}

/// Query of the long poll.
#[derive(Debug, Deserialize)]
pub(super) struct PollQuery {
    #[serde(default)]
    since: u64,
    #[serde(rename = "timeoutMs", default = "default_timeout")]
    timeout_ms: u64,
}

fn default_timeout() -> u64 {
    30_000
}

/// `GET /eureka/watch/version`: waits for the version to pass `since`, at
/// most the timeout, and no longer than until the server shuts down.
pub(super) async fn long_poll(
    State(state): State<AppState>,
    connect: Option<Extension<ConnectInfo<std::net::SocketAddr>>>,
    Query(q): Query<PollQuery>,
) -> Json<serde_json::Value> {
    let _open = OpenWork::begin("long poll", client(connect));
    let mut rx = state.node.subscribe_version();
    let timeout = Duration::from_millis(q.timeout_ms.min(300_000));
    let changed = tokio::select! {
        waited = tokio::time::timeout(timeout, rx.wait_for(|v| *v > q.since)) => matches!(waited, Ok(Ok(_))),
        () = state.shutdown.token().cancelled() => false,
    };
    let version = state.node.registry().version();
    Json(serde_json::json!({"version": version, "changed": changed}))
}
