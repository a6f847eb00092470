//! The eviction timer: every `period`, evict expired leases.

use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::node::Node;

/// Evicts every `period` until `stop` is cancelled.
pub async fn run(node: Arc<Node>, period: Duration, stop: CancellationToken) {
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

#[cfg(test)]
mod tests {
    use cloud_protocol::eureka::{InstanceInfo, InstanceStatus, LeaseInfo};

    use super::*;
    use cloud_runtime::clock::TokioClock;

    use crate::registry::{Origin, RegistrySettings};

    #[tokio::test(start_paused = true)]
    async fn the_timer_evicts_an_expired_lease_on_its_next_tick() {
        let settings = RegistrySettings {
            self_preservation: false,
            ..RegistrySettings::default()
        };
        let node = Arc::new(Node::new(settings, Arc::new(TokioClock::new())));
        let info = InstanceInfo {
            instance_id: "a-1".into(),
            host_name: "h".into(),
            app: "A".into(),
            ip_addr: "10.0.0.1".into(),
            status: InstanceStatus::Up,
            lease_info: Some(LeaseInfo {
                duration_in_secs: 90,
                ..LeaseInfo::default()
            }),
            ..InstanceInfo::default()
        };
        node.register(info, Origin::Local);
        let stop = CancellationToken::new();
        let task = tokio::spawn(run(
            Arc::clone(&node),
            Duration::from_secs(60),
            stop.clone(),
        ));

        tokio::time::sleep(Duration::from_secs(61)).await;
        assert!(
            node.registry().instance("A", "a-1").is_some(),
            "alive at the 60 s tick"
        );
        tokio::time::sleep(Duration::from_secs(60)).await;
        assert!(
            node.registry().instance("A", "a-1").is_none(),
            "evicted at the 120 s tick"
        );
        assert_eq!(
            node.metrics()
                .evictions
                .load(std::sync::atomic::Ordering::Relaxed),
            1
        );

        stop.cancel();
        task.await.unwrap();
    }
}
