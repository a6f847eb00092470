//! Counters the server keeps for `/actuator/prometheus`.

use std::sync::atomic::{AtomicU64, Ordering};

use cloud_runtime::prometheus::PrometheusText;

use crate::limits::Rejection;
use crate::registry::{EventAction, Registry};

/// Requests refused by a limit, by [`Rejection`].
#[derive(Debug, Default)]
pub struct Rejections {
    counts: [AtomicU64; Rejection::ALL.len()],
}

impl Rejections {
    /// Counts one refused request.
    pub fn record(&self, reason: Rejection) {
        self.counts[Self::index(reason)].fetch_add(1, Ordering::Relaxed);
    }

    /// Requests refused for `reason` so far.
    pub fn get(&self, reason: Rejection) -> u64 {
        self.counts[Self::index(reason)].load(Ordering::Relaxed)
    }

    fn index(reason: Rejection) -> usize {
        Rejection::ALL
            .iter()
            .position(|r| *r == reason)
            .unwrap_or_default()
    }
}

/// Monotonic counters and gauges. Replication updates its own gauges here.
#[derive(Debug, Default)]
pub struct Metrics {
    /// The HTTP connection counters of the serving loop.
    pub connections: std::sync::Arc<cloud_runtime::serve::ConnectionStats>,
    /// Registrations (and re-registrations) accepted.
    pub registrations: AtomicU64,
    /// Renewals accepted.
    pub renewals: AtomicU64,
    /// Renewals answered `404`.
    pub renewals_not_found: AtomicU64,
    /// Cancellations.
    pub cancellations: AtomicU64,
    /// Evictions of expired leases.
    pub evictions: AtomicU64,
    /// Status override changes.
    pub status_updates: AtomicU64,
    /// Replication batch items waiting to be sent (set by replication).
    pub replication_queue: AtomicU64,
    /// Replication items that failed for good (set by replication).
    pub replication_failures: AtomicU64,
    /// Replication items dropped for lack of queue room (set by replication).
    pub replication_dropped: AtomicU64,
    /// Replication batches delivered (set by replication).
    pub replication_batches: AtomicU64,
    /// Requests refused by a limit (`400`), by reason.
    pub rejected: Rejections,
}

impl Metrics {
    /// Counts one registry event.
    pub fn record(&self, action: EventAction) {
        let counter = match action {
            EventAction::Register => &self.registrations,
            EventAction::Heartbeat => &self.renewals,
            EventAction::Cancel => &self.cancellations,
            EventAction::Evict => &self.evictions,
            EventAction::StatusUpdate | EventAction::DeleteStatusOverride => &self.status_updates,
        };
        counter.fetch_add(1, Ordering::Relaxed);
    }

    /// Prometheus text exposition of the counters and registry gauges.
    pub fn render(&self, registry: &Registry, uptime_secs: u64) -> String {
        let counts = registry.counts();
        let p = registry.preservation();
        let queue = registry.delta_queue_stats();
        let c = |a: &AtomicU64| a.load(Ordering::Relaxed);
        let rows: [(&str, &str, &str, u64); 21] = [
            (
                "discovery_instances",
                "gauge",
                "Registered instances.",
                counts.instances as u64,
            ),
            (
                "discovery_applications",
                "gauge",
                "Registered applications.",
                counts.applications as u64,
            ),
            (
                "discovery_renews_last_minute",
                "gauge",
                "Renewals received in the last minute.",
                p.renews_last_min,
            ),
            (
                "discovery_renews_threshold",
                "gauge",
                "Renewals per minute needed to allow evictions.",
                p.renews_threshold,
            ),
            (
                "discovery_self_preservation_active",
                "gauge",
                "1 when self-preservation is holding expired leases.",
                u64::from(p.is_active()),
            ),
            (
                "discovery_registrations_total",
                "counter",
                "Registrations accepted.",
                c(&self.registrations),
            ),
            (
                "discovery_renewals_total",
                "counter",
                "Renewals accepted.",
                c(&self.renewals),
            ),
            (
                "discovery_renewals_not_found_total",
                "counter",
                "Renewals of unknown leases.",
                c(&self.renewals_not_found),
            ),
            (
                "discovery_cancellations_total",
                "counter",
                "Cancellations.",
                c(&self.cancellations),
            ),
            (
                "discovery_evictions_total",
                "counter",
                "Expired leases evicted.",
                c(&self.evictions),
            ),
            (
                "discovery_status_updates_total",
                "counter",
                "Status override changes.",
                c(&self.status_updates),
            ),
            (
                "discovery_replication_queue",
                "gauge",
                "Replication items waiting.",
                c(&self.replication_queue),
            ),
            (
                "discovery_replication_failures_total",
                "counter",
                "Replication items that failed.",
                c(&self.replication_failures),
            ),
            (
                "discovery_replication_dropped_total",
                "counter",
                "Replication items dropped because a peer queue was full.",
                c(&self.replication_dropped),
            ),
            (
                "discovery_replication_batches_total",
                "counter",
                "Replication batches delivered to peers.",
                c(&self.replication_batches),
            ),
            (
                "discovery_delta_queue_changes",
                "gauge",
                "Changes in the recently-changed queue behind /apps/delta.",
                queue.changes as u64,
            ),
            (
                "discovery_delta_queue_bytes",
                "gauge",
                "Approximate bytes the recently-changed queue holds.",
                queue.bytes as u64,
            ),
            (
                "discovery_delta_changes_dropped_total",
                "counter",
                "Changes dropped from the delta queue before their window ended, for its byte budget.",
                queue.dropped_early,
            ),
            (
                "discovery_delta_incomplete",
                "gauge",
                "1 while /apps/delta lists every instance because changes were dropped.",
                u64::from(queue.incomplete),
            ),
            (
                "discovery_registry_version",
                "gauge",
                "Registry version.",
                registry.version(),
            ),
            (
                "discovery_uptime_seconds",
                "gauge",
                "Seconds since start.",
                uptime_secs,
            ),
        ];
        let mut out = PrometheusText::new();
        for (name, kind, help, value) in rows {
            out.family(name, kind, help).sample(&[], value);
        }
        let mut rejected = out.family(
            "discovery_rejected_requests_total",
            "counter",
            "Requests refused because they were over a limit.",
        );
        for reason in Rejection::ALL {
            rejected = rejected.sample(&[("reason", reason.as_str())], self.rejected.get(reason));
        }
        self.connections.write_prometheus(&mut out, "discovery");
        out.finish()
    }
}
