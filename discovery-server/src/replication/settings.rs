//! How replication batches, retries and syncs.

use std::time::Duration;

use circuit_breaker::retry::Backoff;

/// Replication settings. The defaults suit a LAN cluster; Eureka's
/// counterparts are named where they exist.
#[derive(Debug, Clone, PartialEq)]
pub struct ReplicationSettings {
    /// Most items per batch. Default is 250 (Eureka's `maxBatchingSize`).
    pub batch_size: usize,
    /// How long the first item of a batch waits for company. Default is
    /// 10 ms (Eureka waits up to 500 ms).
    pub max_batch_delay: Duration,
    /// Items a peer's queue holds before it drops the oldest heartbeats.
    /// Default is 10 000 (`maxElementsInPeerReplicationPool`).
    pub queue_capacity: usize,
    /// Items older than this are discarded unsent. Default is 30 seconds
    /// (`maxTimeForReplication`); a discarded heartbeat heals itself (the
    /// next one gets a `404` and re-registers).
    pub max_item_age: Duration,
    /// Timeout of one replication or sync request. Default is 5 seconds.
    pub request_timeout: Duration,
    /// Waits between retries after a network error or a `503`: 100 ms,
    /// doubling per consecutive failure up to 2 seconds, each spread by
    /// ±50 % so that nodes do not retry in step. `retry.initial` is also
    /// the pause between rounds of the initial registry copy.
    pub retry: Backoff,
    /// How long a starting node tries to copy the registry from a peer
    /// before it serves reads anyway. Default is 5 seconds.
    pub sync_timeout: Duration,
}

impl Default for ReplicationSettings {
    fn default() -> Self {
        ReplicationSettings {
            batch_size: 250,
            max_batch_delay: Duration::from_millis(10),
            queue_capacity: 10_000,
            max_item_age: Duration::from_secs(30),
            request_timeout: Duration::from_secs(5),
            retry: Backoff {
                initial: Duration::from_millis(100),
                multiplier: 2.0,
                max: Duration::from_secs(2),
                jitter: 0.5,
            },
            sync_timeout: Duration::from_secs(5),
        }
    }
}

/// Largest batch body sent; bigger batches are split (the receiver's
/// default body limit is 1 MiB).
pub(crate) const MAX_BATCH_BYTES: usize = 512 * 1024;
