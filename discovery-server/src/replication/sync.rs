//! A starting node copies the registry from a peer before it serves reads
//! (Eureka's `syncUp`), within a deadline so that a lone node still starts.
//!
//! Until the copy is done, reads under `/eureka/` wait (writes and
//! incoming replication are served at once, so nothing is lost meanwhile).
//! A peer that asks a not-yet-synced node for its registry gets `503` at
//! once and tries the next peer; when every peer answers so, the whole
//! cluster is starting and nobody has anything to copy: start empty.

use axum::extract::{Request, State};
use axum::http::{Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use cloud_protocol::eureka::{Applications, json};
use tokio::sync::watch;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::peer::{Peer, error_chain};
use super::{REPLICATION_HEADER, Shared};
use crate::registry::Origin;

/// Open once the registry has been copied (or copying gave up).
#[derive(Debug)]
pub(crate) struct ReadGate {
    open: watch::Sender<bool>,
}

impl ReadGate {
    pub(crate) fn new(open: bool) -> ReadGate {
        ReadGate {
            open: watch::Sender::new(open),
        }
    }

    pub(crate) fn open(&self) {
        self.open.send_replace(true);
    }

    pub(crate) fn is_open(&self) -> bool {
        *self.open.borrow()
    }

    async fn wait(&self) {
        let mut rx = self.open.subscribe();
        // The sender lives as long as the gate.
        let _ = rx.wait_for(|open| *open).await;
    }
}

fn from_peer(req: &Request) -> bool {
    req.headers()
        .get(REPLICATION_HEADER)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.trim().eq_ignore_ascii_case("true"))
}

/// Middleware: holds registry reads until the gate opens.
pub(crate) async fn hold_reads(
    State(gate): State<std::sync::Arc<ReadGate>>,
    req: Request,
    next: Next,
) -> Response {
    if gate.is_open() || req.method() != Method::GET || !req.uri().path().starts_with("/eureka/") {
        return next.run(req).await;
    }
    if from_peer(&req) {
        return (StatusCode::SERVICE_UNAVAILABLE, "registry not synced yet").into_response();
    }
    gate.wait().await;
    next.run(req).await
}

enum FetchError {
    /// The peer is starting too (`503`).
    NotReady,
    /// Unreachable or broken.
    Failed(String),
}

async fn fetch(
    shared: &Shared,
    peer: &Peer,
    timeout: std::time::Duration,
) -> Result<Applications, FetchError> {
    let response = shared
        .client
        .get(format!("{}apps", peer.url))
        .header(http::header::ACCEPT, "application/json")
        .header(REPLICATION_HEADER, "true")
        .timeout(timeout)
        .send()
        .await
        .map_err(|e| FetchError::Failed(error_chain(&e.without_url())))?;
    match response.status() {
        StatusCode::SERVICE_UNAVAILABLE => return Err(FetchError::NotReady),
        s if !s.is_success() => return Err(FetchError::Failed(format!("peer answered {s}"))),
        _ => {}
    }
    let bytes = response
        .bytes()
        .await
        .map_err(|e| FetchError::Failed(error_chain(&e.without_url())))?;
    json::decode_applications(&bytes).map_err(|e| FetchError::Failed(e.to_string()))
}

/// What the initial copy achieved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum SyncOutcome {
    /// Copied this many instances from the peer.
    Copied { peer: String, instances: usize },
    /// Every peer is starting as well.
    ClusterStarting,
    /// No peer answered before the deadline.
    TimedOut,
    /// Stopped first.
    Stopped,
}

/// Copies the registry from the first peer that has one to give.
pub(crate) async fn copy_registry(shared: &Shared, stop: &CancellationToken) -> SyncOutcome {
    let settings = &shared.settings;
    let deadline = Instant::now() + settings.sync_timeout;
    loop {
        let mut starting = 0;
        for peer in shared.remote_peers() {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return SyncOutcome::TimedOut;
            }
            let attempt = tokio::select! {
                _ = stop.cancelled() => return SyncOutcome::Stopped,
                r = fetch(shared, peer, left.min(settings.request_timeout)) => r,
            };
            match attempt {
                Ok(apps) => {
                    let mut instances = 0;
                    for mut info in apps.applications.into_iter().flat_map(|a| a.instances) {
                        if info.validate().is_ok()
                            && shared
                                .node
                                .registry()
                                .limits()
                                .check_instance(&info)
                                .is_ok()
                        {
                            shared.node.register(info, Origin::Replicated);
                            instances += 1;
                        }
                    }
                    return SyncOutcome::Copied {
                        peer: peer.name.clone(),
                        instances,
                    };
                }
                Err(FetchError::NotReady) => starting += 1,
                Err(FetchError::Failed(reason)) => {
                    tracing::debug!(peer = %peer.name, %reason, "cannot copy the registry from this peer");
                }
            }
        }
        if starting == shared.remote_peers().count() {
            return SyncOutcome::ClusterStarting;
        }
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return SyncOutcome::TimedOut;
        }
        tokio::select! {
            _ = stop.cancelled() => return SyncOutcome::Stopped,
            _ = tokio::time::sleep(settings.retry.initial.min(left)) => {}
        }
    }
}
