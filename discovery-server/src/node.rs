//! One discovery node: the registry plus what hangs off its mutations:
//! metrics, the version watchers wait on, the change stream behind the
//! watch endpoint, and event sinks (peer replication plugs in here).
//!
//! Every mutation, whoever makes it (HTTP handler, eviction timer, a
//! replicator applying a peer's batch), goes through [`Node`] so that all
//! of them are published the same way.

use std::sync::Arc;

use arc_swap::ArcSwap;
use cloud_protocol::eureka::{InstanceInfo, InstanceStatus};
use tokio::sync::{broadcast, watch};

use cloud_runtime::clock::SharedClock;

use crate::metrics::Metrics;
use crate::registry::{
    Origin, Registry, RegistryEvent, RegistrySettings, RenewOutcome, RenewRequest,
};

/// Receives every registry event, with its origin. Must not block: hand the
/// event to a queue and return. A replicator ignores `Origin::Replicated`
/// (never re-replicate) and `Origin::Eviction` (each node evicts itself).
pub trait EventSink: Send + Sync + 'static {
    /// Called after each mutation.
    fn on_event(&self, event: &RegistryEvent, origin: Origin);
}

/// A peer as the dashboard shows it; replication keeps this up to date.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerStatus {
    /// The peer's service URL.
    pub url: String,
    /// `Some(true)` when the last exchange succeeded, `None` when unknown.
    pub healthy: Option<bool>,
    /// The last error, if any.
    pub last_error: Option<String>,
}

/// The registry and its event fan-out.
pub struct Node {
    registry: Registry,
    metrics: Metrics,
    version: watch::Sender<u64>,
    changes: broadcast::Sender<RegistryEvent>,
    sinks: ArcSwap<Vec<Arc<dyn EventSink>>>,
    peers: ArcSwap<Vec<PeerStatus>>,
    started_millis: i64,
}

impl std::fmt::Debug for Node {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Node")
            .field("registry", &self.registry)
            .finish_non_exhaustive()
    }
}

impl Node {
    /// A node with an empty registry.
    pub fn new(settings: RegistrySettings, clock: SharedClock) -> Node {
        let started_millis = clock.epoch_millis();
        let registry = Registry::new(settings, clock);
        Node {
            registry,
            metrics: Metrics::default(),
            version: watch::Sender::new(0),
            changes: broadcast::Sender::new(1024),
            sinks: ArcSwap::from_pointee(Vec::new()),
            peers: ArcSwap::from_pointee(Vec::new()),
            started_millis,
        }
    }

    /// The registry (read it freely; mutate through the node).
    pub fn registry(&self) -> &Registry {
        &self.registry
    }

    /// Counters.
    pub fn metrics(&self) -> &Metrics {
        &self.metrics
    }

    /// Milliseconds since the node started.
    pub fn uptime_millis(&self) -> i64 {
        self.registry.now_millis() - self.started_millis
    }

    /// Adds a sink that receives every event from now on.
    pub fn add_sink(&self, sink: Arc<dyn EventSink>) {
        self.sinks.rcu(|sinks| {
            let mut next = Vec::clone(sinks);
            next.push(Arc::clone(&sink));
            next
        });
    }

    /// Replaces what the dashboard shows about peers.
    pub fn set_peer_status(&self, peers: Vec<PeerStatus>) {
        self.peers.store(Arc::new(peers));
    }

    /// What the dashboard shows about peers.
    pub fn peer_status(&self) -> Arc<Vec<PeerStatus>> {
        self.peers.load_full()
    }

    /// A receiver of the registry version, for long polls.
    pub fn subscribe_version(&self) -> watch::Receiver<u64> {
        self.version.subscribe()
    }

    /// A receiver of every change (not renewals), for the watch stream.
    pub fn subscribe_changes(&self) -> broadcast::Receiver<RegistryEvent> {
        self.changes.subscribe()
    }

    fn publish(&self, event: &RegistryEvent, origin: Origin) {
        self.metrics.record(event.action);
        if event.action.is_change() {
            let i = &event.instance;
            tracing::info!(
                action = event.action.as_str(),
                app = %i.app,
                instance = %i.instance_id,
                status = i.status.as_str(),
                version = event.version,
                origin = ?origin,
                "registry change"
            );
            self.version.send_if_modified(|v| {
                let newer = event.version > *v;
                if newer {
                    *v = event.version;
                }
                newer
            });
            // No receivers is fine.
            let _ = self.changes.send(event.clone());
        }
        for sink in self.sinks.load().iter() {
            sink.on_event(event, origin);
        }
    }

    fn published(&self, event: Option<RegistryEvent>, origin: Origin) -> Option<RegistryEvent> {
        if let Some(e) = &event {
            self.publish(e, origin);
        }
        event
    }

    /// Registers an instance (see [`Registry::register`]).
    pub fn register(&self, info: InstanceInfo, origin: Origin) -> RegistryEvent {
        let event = self.registry.register(info, origin);
        self.publish(&event, origin);
        event
    }

    /// Renews a lease (see [`Registry::renew`]).
    pub fn renew(&self, app: &str, id: &str, req: RenewRequest, origin: Origin) -> RenewOutcome {
        let outcome = self.registry.renew(app, id, req, origin);
        match &outcome {
            RenewOutcome::Renewed(e) | RenewOutcome::Conflict(e) => self.publish(e, origin),
            RenewOutcome::NotFound => {
                self.metrics
                    .renewals_not_found
                    .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            }
        }
        outcome
    }

    /// Cancels a lease (see [`Registry::cancel`]).
    pub fn cancel(&self, app: &str, id: &str, origin: Origin) -> Option<RegistryEvent> {
        self.published(self.registry.cancel(app, id, origin), origin)
    }

    /// Sets a status override (see [`Registry::set_status_override`]).
    pub fn set_status_override(
        &self,
        app: &str,
        id: &str,
        status: InstanceStatus,
        last_dirty: Option<i64>,
        origin: Origin,
    ) -> Option<RegistryEvent> {
        self.published(
            self.registry
                .set_status_override(app, id, status, last_dirty, origin),
            origin,
        )
    }

    /// Removes a status override (see [`Registry::delete_status_override`]).
    pub fn delete_status_override(
        &self,
        app: &str,
        id: &str,
        value: Option<InstanceStatus>,
        last_dirty: Option<i64>,
        origin: Origin,
    ) -> Option<RegistryEvent> {
        self.published(
            self.registry
                .delete_status_override(app, id, value, last_dirty, origin),
            origin,
        )
    }

    /// Updates metadata (see [`Registry::update_metadata`]).
    pub fn update_metadata(
        &self,
        app: &str,
        id: &str,
        entries: Vec<(String, String)>,
        origin: Origin,
    ) -> Option<RegistryEvent> {
        self.published(self.registry.update_metadata(app, id, entries), origin)
    }

    /// Evicts expired leases (see [`Registry::evict`]).
    pub fn evict(&self) -> Vec<RegistryEvent> {
        let events = self.registry.evict();
        for e in &events {
            self.publish(e, Origin::Eviction);
        }
        if !events.is_empty() {
            tracing::info!(evicted = events.len(), "evicted expired leases");
        }
        events
    }
}
