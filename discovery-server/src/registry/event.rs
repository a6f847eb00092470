//! What the registry reports after each mutation, for replication, metrics
//! and watchers.

use std::sync::Arc;

use cloud_protocol::eureka::InstanceInfo;

/// The kind of mutation, named as Eureka's peer replication names actions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventAction {
    /// Registered, re-registered, or metadata changed (Eureka replicates a
    /// metadata update as a register).
    Register,
    /// Lease renewed (a heartbeat).
    Heartbeat,
    /// Cancelled by the client.
    Cancel,
    /// Status override set (`PUT .../status`).
    StatusUpdate,
    /// Status override removed (`DELETE .../status`).
    DeleteStatusOverride,
    /// Lease expired and evicted by this node (never replicated by Eureka).
    Evict,
}

impl EventAction {
    /// Eureka's replication action name (`Register`, `Heartbeat`, ...).
    pub fn as_str(self) -> &'static str {
        match self {
            EventAction::Register => "Register",
            EventAction::Heartbeat => "Heartbeat",
            EventAction::Cancel => "Cancel",
            EventAction::StatusUpdate => "StatusUpdate",
            EventAction::DeleteStatusOverride => "DeleteStatusOverride",
            EventAction::Evict => "Evict",
        }
    }

    /// Whether the action changes what `GET /eureka/apps` shows (all but
    /// heartbeats).
    pub fn is_change(self) -> bool {
        self != EventAction::Heartbeat
    }
}

/// Where a mutation came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    /// A client of this node.
    Local,
    /// A peer (`x-netflix-discovery-replication: true`): apply, never
    /// replicate again.
    Replicated,
    /// This node's own eviction timer.
    Eviction,
}

/// One mutation of the registry.
#[derive(Debug, Clone)]
pub struct RegistryEvent {
    /// What happened.
    pub action: EventAction,
    /// The instance after the mutation (its last state for a cancel or
    /// eviction): app, id, status, overridden status, last dirty timestamp.
    pub instance: Arc<InstanceInfo>,
    /// Registry version after the mutation.
    pub version: u64,
}
