//! One peer node: its queue, its health, and the task that sends its
//! batches (`POST {peer}peerreplication/batch`), retries on network errors
//! with backoff, and resolves heartbeat conflicts as Eureka does: a `404`
//! re-sends the registration, a `409` carrying a newer instance is adopted.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use bytes::Bytes;
use cloud_protocol::eureka::InstanceInfo;
use futures::future::BoxFuture;
use http::StatusCode;
use parking_lot::Mutex;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::queue::{Task, TaskQueue};
use super::settings::MAX_BATCH_BYTES;
use super::wire::{self, Action, ItemResponse};
use super::{REPLICATION_HEADER, Shared};
use crate::node::PeerStatus;
use crate::registry::Origin;

/// A peer and what replication knows of it.
#[derive(Debug)]
pub(crate) struct Peer {
    /// Service URL, ending in `/`.
    pub(crate) url: String,
    /// The URL as logs and the dashboard show it (no password).
    pub(crate) name: String,
    pub(crate) queue: TaskQueue,
    pub(crate) batches: AtomicU64,
    pub(crate) failures: AtomicU64,
    pub(crate) health: Mutex<PeerStatus>,
    /// The URL names this node itself: nothing is sent to it.
    is_self: AtomicBool,
}

/// `url` with its password, if any, masked (`http://user:***@host/eureka/`).
pub(crate) fn redacted(url: &str) -> String {
    let Some(scheme_end) = url.find("://").map(|i| i + 3) else {
        return url.to_owned();
    };
    let authority_end = url[scheme_end..]
        .find('/')
        .map_or(url.len(), |i| scheme_end + i);
    let Some(at) = url[scheme_end..authority_end]
        .rfind('@')
        .map(|i| scheme_end + i)
    else {
        return url.to_owned();
    };
    let user = url[scheme_end..at].split(':').next().unwrap_or("");
    format!("{}{user}:***{}", &url[..scheme_end], &url[at..])
}

/// `url` with exactly one trailing slash.
pub(crate) fn service_url(url: &str) -> String {
    format!("{}/", url.trim().trim_end_matches('/'))
}

impl Peer {
    pub(crate) fn new(url: &str, capacity: usize) -> Peer {
        Peer {
            url: service_url(url),
            name: redacted(url),
            queue: TaskQueue::new(capacity),
            batches: AtomicU64::new(0),
            failures: AtomicU64::new(0),
            health: Mutex::new(PeerStatus {
                url: redacted(url),
                healthy: None,
                last_error: None,
            }),
            is_self: AtomicBool::new(false),
        }
    }

    /// Whether the URL names this node itself.
    pub(crate) fn is_self(&self) -> bool {
        self.is_self.load(Ordering::Relaxed)
    }

    /// Marks the peer as this node itself and drops what was queued for it.
    pub(crate) fn mark_self(&self) {
        self.is_self.store(true, Ordering::Relaxed);
        drop(self.queue.take(usize::MAX));
    }

    /// Records the outcome of an exchange; true when the health changed.
    pub(crate) fn record(&self, error: Option<String>) -> bool {
        let mut health = self.health.lock();
        let healthy = Some(error.is_none());
        let changed = health.healthy != healthy || (error.is_some() && health.last_error != error);
        health.healthy = healthy;
        if error.is_some() {
            health.last_error = error;
        }
        changed
    }
}

/// Why a batch was not delivered.
enum SendError {
    /// Worth retrying: the network failed or the peer is busy (`503`).
    Retry(String),
    /// Not worth retrying (the peer refused the batch).
    Fatal(String),
}

/// Posts a batch body to a peer's batch endpoint and returns the status
/// and body of the answer, or why there was none (a network error). The
/// seam between the sender's timing and the network, for tests.
pub(crate) trait BatchTransport: Send + Sync + std::fmt::Debug + 'static {
    /// `POST {url}` with `body`, within `timeout`.
    fn post(
        &self,
        url: String,
        body: Vec<u8>,
        timeout: Duration,
    ) -> BoxFuture<'static, Result<(StatusCode, Bytes), String>>;
}

/// The real transport: HTTP with the replication header.
#[derive(Debug)]
pub(crate) struct HttpTransport {
    client: reqwest::Client,
}

impl HttpTransport {
    pub(crate) fn new(client: reqwest::Client) -> HttpTransport {
        HttpTransport { client }
    }
}

impl BatchTransport for HttpTransport {
    fn post(
        &self,
        url: String,
        body: Vec<u8>,
        timeout: Duration,
    ) -> BoxFuture<'static, Result<(StatusCode, Bytes), String>> {
        let request = self
            .client
            .post(url)
            .header(http::header::CONTENT_TYPE, "application/json")
            .header(http::header::ACCEPT, "application/json")
            .header(REPLICATION_HEADER, "true")
            .timeout(timeout)
            .body(body);
        Box::pin(async move {
            let response = request
                .send()
                .await
                .map_err(|e| error_chain(&e.without_url()))?;
            let status = response.status();
            let bytes = response
                .bytes()
                .await
                .map_err(|e| error_chain(&e.without_url()))?;
            Ok((status, bytes))
        })
    }
}

async fn send(
    shared: &Shared,
    peer: &Peer,
    body: Vec<u8>,
    timeout: Duration,
) -> Result<Vec<ItemResponse>, SendError> {
    let (status, bytes) = shared
        .transport
        .post(format!("{}peerreplication/batch", peer.url), body, timeout)
        .await
        .map_err(SendError::Retry)?;
    if status == StatusCode::SERVICE_UNAVAILABLE {
        return Err(SendError::Retry(format!("peer answered {status}")));
    }
    if !status.is_success() {
        return Err(SendError::Fatal(format!("peer answered {status}")));
    }
    wire::read_response_list(&bytes).map_err(|e| SendError::Fatal(e.to_string()))
}

/// An error with its sources, for logs and the dashboard.
pub(crate) fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}

fn encode(batch: &[Task]) -> Vec<u8> {
    let mut body = Vec::with_capacity(256 * batch.len());
    wire::write_replication_list(&mut body, batch.iter().map(|t| (t.action, &*t.info)));
    body
}

/// Sends `peer`'s queue until `stop`, then makes one last, short attempt
/// to deliver what is left (a node that stops still passes on the last
/// cancels it received).
pub(crate) async fn run(shared: Arc<Shared>, peer: Arc<Peer>, stop: CancellationToken) {
    send_until(&shared, &peer, &stop).await;
    if tokio::time::timeout(FLUSH_DEADLINE, flush(&shared, &peer))
        .await
        .is_err()
    {
        tracing::warn!(peer = %peer.name, left = peer.queue.len(), "stopped before the replication queue was flushed");
    }
}

/// How long a stopping node tries to flush its queues.
const FLUSH_DEADLINE: Duration = Duration::from_secs(2);

async fn flush(shared: &Shared, peer: &Peer) {
    let max_age = shared.settings.max_item_age;
    loop {
        let now = Instant::now();
        let mut batch = peer.queue.take(shared.settings.batch_size);
        batch.retain(|t| now.duration_since(t.queued_at) <= max_age);
        if batch.is_empty() {
            if peer.queue.len() == 0 {
                return;
            }
            continue;
        }
        match send(shared, peer, encode(&batch), FLUSH_DEADLINE).await {
            Ok(responses) => handle_responses(shared, peer, &batch, &responses),
            Err(SendError::Retry(reason) | SendError::Fatal(reason)) => {
                tracing::warn!(peer = %peer.name, %reason, left = batch.len() + peer.queue.len(), "cannot flush the replication queue");
                return;
            }
        }
    }
}

async fn send_until(shared: &Arc<Shared>, peer: &Arc<Peer>, stop: &CancellationToken) {
    let settings = &shared.settings;
    // Consecutive failed attempts; the backoff grows with them.
    let mut failures: u32 = 0;
    loop {
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = peer.queue.wait_for_task() => {}
        }
        if peer.queue.len() < settings.batch_size && !pause(stop, settings.max_batch_delay).await {
            return;
        }
        let mut batch = peer.queue.take(settings.batch_size);
        let now = Instant::now();
        let before = batch.len();
        batch.retain(|t| now.duration_since(t.queued_at) <= settings.max_item_age);
        if batch.len() < before {
            let late = before - batch.len();
            tracing::warn!(peer = %peer.name, late, "discarding replication items older than the maximum age");
            peer.failures.fetch_add(late as u64, Ordering::Relaxed);
        }
        let mut body = encode(&batch);
        while body.len() > MAX_BATCH_BYTES && batch.len() > 1 {
            let rest = batch.split_off(batch.len() / 2);
            peer.queue.requeue_front(rest);
            body = encode(&batch);
        }
        shared.publish_metrics();
        if batch.is_empty() {
            continue;
        }
        match send(shared, peer, body, settings.request_timeout).await {
            Ok(responses) => {
                failures = 0;
                peer.batches.fetch_add(1, Ordering::Relaxed);
                if peer.record(None) {
                    tracing::info!(peer = %peer.name, "peer replication healthy");
                    shared.publish_peer_status();
                }
                handle_responses(shared, peer, &batch, &responses);
            }
            Err(SendError::Retry(reason)) => {
                if peer.record(Some(reason.clone())) {
                    tracing::warn!(peer = %peer.name, %reason, "peer unreachable; retrying with backoff");
                    shared.publish_peer_status();
                }
                peer.queue.requeue_front(batch);
                shared.publish_metrics();
                failures = failures.saturating_add(1);
                let delay = settings.retry.delay(failures, rand::random::<f64>());
                if !pause(stop, delay).await {
                    return;
                }
            }
            Err(SendError::Fatal(reason)) => {
                tracing::error!(peer = %peer.name, %reason, items = batch.len(), "peer rejected a replication batch; discarding it");
                peer.failures
                    .fetch_add(batch.len() as u64, Ordering::Relaxed);
                if peer.record(Some(reason)) {
                    shared.publish_peer_status();
                }
            }
        }
        shared.publish_metrics();
    }
}

/// Sleeps `d` unless stopped first; false when stopped.
async fn pause(stop: &CancellationToken, d: Duration) -> bool {
    tokio::select! {
        _ = stop.cancelled() => false,
        _ = tokio::time::sleep(d) => true,
    }
}

fn handle_responses(shared: &Shared, peer: &Peer, batch: &[Task], responses: &[ItemResponse]) {
    if responses.len() != batch.len() {
        tracing::error!(peer = %peer.name, sent = batch.len(), answered = responses.len(), "replication response does not match the batch");
        return;
    }
    for (task, response) in batch.iter().zip(responses) {
        handle_response(shared, peer, task, response);
    }
}

/// Eureka's conflict rules for one answered item.
fn handle_response(shared: &Shared, peer: &Peer, task: &Task, response: &ItemResponse) {
    let code = response.status_code;
    if (200..300).contains(&code) {
        return;
    }
    let (app, id) = (&task.info.app, &task.info.instance_id);
    match (task.action, code) {
        // The peer does not know the instance: send it the registration,
        // if it still stands here (never resurrect a cancelled one).
        (Action::Heartbeat | Action::StatusUpdate | Action::DeleteStatusOverride, 404) => {
            if let Some((info, _)) = shared.node.registry().instance(app, id) {
                tracing::debug!(peer = %peer.name, %app, %id, "peer lacks the instance; re-sending its registration");
                peer.queue.push(Task {
                    action: Action::Register,
                    info,
                    queued_at: Instant::now(),
                });
            }
        }
        // The peer holds a newer record: adopt it (registration keeps
        // whichever record has the later lastDirtyTimestamp).
        (Action::Heartbeat, 409) => match &response.response_entity {
            Some(newer) => adopt(shared, peer, newer),
            None => tracing::debug!(peer = %peer.name, %app, %id, "conflict without an instance"),
        },
        // Already gone there.
        (Action::Cancel, 404) => {}
        _ => {
            tracing::warn!(peer = %peer.name, action = task.action.as_str(), %app, %id, code, "replication item failed");
            peer.failures.fetch_add(1, Ordering::Relaxed);
        }
    }
}

fn adopt(shared: &Shared, peer: &Peer, newer: &InstanceInfo) {
    let mut info = newer.clone();
    if let Err(e) = info.validate() {
        tracing::warn!(peer = %peer.name, error = %e, "peer sent an invalid instance in a conflict");
        return;
    }
    if let Err(e) = shared.node.registry().limits().check_instance(&info) {
        tracing::warn!(peer = %peer.name, error = %e, "peer sent an instance over the metadata limits");
        return;
    }
    tracing::debug!(peer = %peer.name, app = %info.app, id = %info.instance_id, "adopting the peer's newer record");
    shared.node.register(info, Origin::Replicated);
}
