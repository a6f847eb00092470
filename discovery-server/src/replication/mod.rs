//! Peer replication, as Eureka does it and compatible with a Eureka peer:
//! every register, renewal, cancel, status change and metadata change made
//! by a client of this node is queued for each peer and sent in batches
//! (`POST {peer}peerreplication/batch`, header
//! `x-netflix-discovery-replication: true`); what arrives from a peer is
//! applied as [`Origin::Replicated`] and never sent on. Heartbeat conflicts
//! follow Eureka's `lastDirtyTimestamp` rules: a peer that does not know an
//! instance (`404`) gets its registration again, a peer holding a newer
//! record (`409`) hands it over and this node adopts it.
//!
//! A starting node copies the registry from a peer before it serves reads.
//!
//! # Layout
//! - `wire`: `ReplicationList` / `ReplicationListResponse` JSON.
//! - `queue`: a peer's bounded queue; the oldest heartbeats make room.
//! - `peer`: a peer's sender task: batching, retries with backoff,
//!   conflict rules, health.
//! - `receive`: the batch endpoint.
//! - `sync`: the initial registry copy and the read gate in front of it.
//! - `settings`: [`ReplicationSettings`].
//! - `own_address`: recognising this node's own URL in the peer list, so
//!   every node of a cluster can be given the same list.
//!
//! The module depends on [`crate::node`] only: the batch endpoint is served
//! over any state that implements [`PeerApi`].
//!
//! # Example
//! ```no_run
//! use discovery_server::{Server, ServerConfig};
//!
//! # async fn demo() -> std::io::Result<()> {
//! // Two nodes, each the other's peer; a change on one shows on the other.
//! let a = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
//! let b = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
//! let url = |l: &tokio::net::TcpListener| -> std::io::Result<String> {
//!     Ok(format!("http://{}/eureka/", l.local_addr()?))
//! };
//! // Both get the same list: a node skips its own URL.
//! let peers = vec![url(&a)?, url(&b)?];
//! let config = ServerConfig { peers, ..ServerConfig::default() };
//! let server_a = Server::new(config.clone()).map_err(std::io::Error::other)?;
//! let server_b = Server::new(config).map_err(std::io::Error::other)?;
//! tokio::spawn(server_a.serve(a, std::future::pending()));
//! server_b.serve(b, std::future::pending()).await
//! # }
//! ```

mod own_address;
mod peer;
mod queue;
mod receive;
mod settings;
mod sync;
pub mod wire;

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use axum::Router;
use axum::body::Bytes;
use axum::http::HeaderMap;
use axum::response::IntoResponse;
use axum::routing::post;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

pub use settings::ReplicationSettings;

use crate::node::{EventSink, Node};
use crate::registry::{EventAction, Origin, RegistryEvent};
use peer::Peer;
use queue::Task;
use sync::{ReadGate, SyncOutcome};
use wire::Action;

/// The header that marks a request from a peer node.
pub const REPLICATION_HEADER: &str = "x-netflix-discovery-replication";

/// What the batch endpoint needs from the server's state.
pub trait PeerApi: Clone + Send + Sync + 'static {
    /// The API's error, answered when a batch is refused.
    type Rejection: IntoResponse;
    /// The node batches are applied to.
    fn node(&self) -> &Arc<Node>;
    /// The request body decoded as the API decodes bodies (gzip, size
    /// limit), or why it is refused.
    fn decode_body(&self, headers: &HeaderMap, body: Bytes) -> Result<Bytes, Self::Rejection>;
    /// The `400` for a batch that cannot be read, in the API's error shape.
    fn bad_request(&self, reason: String) -> Self::Rejection;
}

/// The replication HTTP client could not be built.
#[derive(Debug, thiserror::Error)]
#[error("cannot build the peer replication HTTP client")]
pub struct ClientError {
    #[source]
    source: reqwest::Error,
}

/// What the sender tasks share.
#[derive(Debug)]
pub(crate) struct Shared {
    node: Arc<Node>,
    peers: Vec<Arc<Peer>>,
    client: reqwest::Client,
    transport: Arc<dyn peer::BatchTransport>,
    settings: ReplicationSettings,
}

impl Shared {
    /// The peers other than this node itself.
    fn remote_peers(&self) -> impl Iterator<Item = &Arc<Peer>> {
        self.peers.iter().filter(|p| !p.is_self())
    }

    /// Copies the peers' counters into the node's metrics.
    fn publish_metrics(&self) {
        let m = self.node.metrics();
        let sum = |f: &dyn Fn(&Peer) -> u64| self.peers.iter().map(|p| f(p)).sum::<u64>();
        m.replication_queue
            .store(sum(&|p| p.queue.len() as u64), Ordering::Relaxed);
        m.replication_dropped
            .store(sum(&|p| p.queue.dropped()), Ordering::Relaxed);
        m.replication_failures.store(
            sum(&|p| p.failures.load(Ordering::Relaxed)),
            Ordering::Relaxed,
        );
        m.replication_batches.store(
            sum(&|p| p.batches.load(Ordering::Relaxed)),
            Ordering::Relaxed,
        );
    }

    /// Shows the peers' health on the dashboard.
    fn publish_peer_status(&self) {
        self.node.set_peer_status(
            self.remote_peers()
                .map(|p| p.health.lock().clone())
                .collect(),
        );
    }
}

/// Queues each local change for every peer.
struct Fanout {
    peers: Vec<Arc<Peer>>,
}

impl EventSink for Fanout {
    fn on_event(&self, event: &RegistryEvent, origin: Origin) {
        if origin != Origin::Local {
            return;
        }
        let action = match event.action {
            EventAction::Register => Action::Register,
            EventAction::Heartbeat => Action::Heartbeat,
            EventAction::Cancel => Action::Cancel,
            EventAction::StatusUpdate => Action::StatusUpdate,
            EventAction::DeleteStatusOverride => Action::DeleteStatusOverride,
            EventAction::Evict => return,
        };
        let queued_at = Instant::now();
        for peer in self.peers.iter().filter(|p| !p.is_self()) {
            peer.queue.push(Task {
                action,
                info: Arc::clone(&event.instance),
                queued_at,
            });
        }
    }
}

/// Replication of one node to its peers.
#[derive(Debug, Clone)]
pub struct Replication {
    shared: Arc<Shared>,
    gate: Arc<ReadGate>,
}

impl Replication {
    /// Replication of `node` to `peers` (service URLs). Local changes are
    /// queued from now on; [`Replication::run`] sends them.
    pub fn new(
        node: Arc<Node>,
        peers: &[String],
        settings: ReplicationSettings,
    ) -> Result<Replication, ClientError> {
        let client = reqwest::Client::builder()
            .connect_timeout(settings.request_timeout)
            .pool_idle_timeout(std::time::Duration::from_secs(60))
            .build()
            .map_err(|source| ClientError { source })?;
        let transport = Arc::new(peer::HttpTransport::new(client.clone()));
        Ok(Replication::with_transport(
            node, peers, settings, client, transport,
        ))
    }

    fn with_transport(
        node: Arc<Node>,
        peers: &[String],
        settings: ReplicationSettings,
        client: reqwest::Client,
        transport: Arc<dyn peer::BatchTransport>,
    ) -> Replication {
        let peers: Vec<Arc<Peer>> = peers
            .iter()
            .map(|url| Arc::new(Peer::new(url, settings.queue_capacity)))
            .collect();
        if !peers.is_empty() {
            node.add_sink(Arc::new(Fanout {
                peers: peers.clone(),
            }));
        }
        let gate = Arc::new(ReadGate::new(peers.is_empty()));
        let shared = Arc::new(Shared {
            node,
            peers,
            client,
            transport,
            settings,
        });
        if !shared.peers.is_empty() {
            // Shown from the start without passwords.
            shared.publish_peer_status();
        }
        Replication { shared, gate }
    }

    /// The batch endpoint, to mount beside the Eureka API
    /// (`/peerreplication/batch`, with or without a trailing slash).
    pub fn routes<S: PeerApi>() -> Router<S> {
        Router::new()
            .route("/peerreplication/batch", post(receive::batch::<S>))
            .route("/peerreplication/batch/", post(receive::batch::<S>))
    }

    /// Finds the peer URLs that name this node, listening on `local` (same
    /// port, and a host that is, or resolves to, the bound address; with a
    /// wildcard bind, any address of this machine), and never replicates
    /// to them. Returns how many there were.
    pub async fn recognise_self(&self, local: SocketAddr) -> usize {
        let timeout = self.shared.settings.request_timeout;
        let mut found = 0;
        for peer in &self.shared.peers {
            if own_address::names_this_node(&peer.url, local, timeout).await {
                tracing::info!(peer = %peer.name, "peer URL names this node; not replicating to it");
                peer.mark_self();
                found += 1;
            }
        }
        if found > 0 {
            self.shared.publish_peer_status();
            self.shared.publish_metrics();
        }
        found
    }

    /// `router` with registry reads held until the initial copy is done.
    pub fn guard_reads(&self, router: Router) -> Router {
        if self.shared.peers.is_empty() {
            // Nothing to copy: the gate never closes, so no layer at all.
            return router;
        }
        router.layer(axum::middleware::from_fn_with_state(
            Arc::clone(&self.gate),
            sync::hold_reads,
        ))
    }

    /// True once reads are served (the registry was copied, or there was
    /// nothing to copy from).
    pub fn is_synced(&self) -> bool {
        self.gate.is_open()
    }

    /// Copies the registry from a peer, opens reads, then sends batches to
    /// every peer until `stop`.
    pub async fn run(&self, stop: CancellationToken) {
        let shared = &self.shared;
        if shared.remote_peers().next().is_none() {
            self.gate.open();
            return;
        }
        shared.publish_peer_status();
        let senders: Vec<_> = shared
            .remote_peers()
            .map(|p| tokio::spawn(peer::run(Arc::clone(shared), Arc::clone(p), stop.clone())))
            .collect();
        let started = Instant::now();
        let outcome = sync::copy_registry(shared, &stop).await;
        self.gate.open();
        let took_ms = started.elapsed().as_millis();
        match outcome {
            SyncOutcome::Copied { peer, instances } => {
                tracing::info!(%peer, instances, took_ms, "copied the registry from a peer");
            }
            SyncOutcome::ClusterStarting => {
                tracing::info!(took_ms, "every peer is starting: serving an empty registry");
            }
            SyncOutcome::TimedOut => {
                tracing::warn!(
                    took_ms,
                    "no peer could give its registry in time: serving what this node has"
                );
            }
            SyncOutcome::Stopped => {}
        }
        for sender in senders {
            let _ = sender.await;
        }
    }
}

#[cfg(test)]
mod tests;
