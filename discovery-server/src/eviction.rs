//! The eviction timer: every `eviction_interval`, evict expired leases.

use std::sync::Arc;

use tokio_util::sync::CancellationToken;

use crate::node::Node;

/// Runs until `stop` is cancelled.
pub async fn run(node: Arc<Node>, stop: CancellationToken) {
    let period = node.config().eviction_interval;
    let mut ticker = tokio::time::interval_at(tokio::time::Instant::now() + period, period);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = ticker.tick() => {
                node.evict();
            }
        }
    }
}
