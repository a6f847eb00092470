//! Counters exposed at `/actuator/prometheus` in the Prometheus text format.

use cloud_runtime::prometheus::PrometheusText;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::limits::LimitReason;

/// The server's counters; all start at zero.
#[derive(Debug, Default)]
pub struct Metrics {
    /// The HTTP connection counters of the serving loop.
    pub connections: std::sync::Arc<cloud_runtime::serve::ConnectionStats>,
    /// Environment requests answered from the cache.
    pub cache_hits: AtomicU64,
    /// Environment requests that had to resolve.
    pub cache_misses: AtomicU64,
    /// Successful backend refreshes.
    pub refresh_ok: AtomicU64,
    /// Failed backend refreshes.
    pub refresh_failed: AtomicU64,
    /// Webhook calls accepted on `/monitor`.
    pub webhooks: AtomicU64,
    /// Config-path requests answered with a 4xx, and failed Basic auth.
    pub rejected: AtomicU64,
    /// Watch streams currently open.
    pub watchers: AtomicU64,
    /// Change events sent to watchers.
    pub watch_events: AtomicU64,
    /// Requests refused by a limit, indexed by [`LimitReason::index`].
    limit_rejections: [AtomicU64; LimitReason::ALL.len()],
}

impl Metrics {
    /// Counts a request refused because `reason` tripped.
    pub fn limit_tripped(&self, reason: LimitReason) {
        if let Some(c) = self.limit_rejections.get(reason.index()) {
            c.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// How many requests `reason` has refused.
    pub fn limit_rejections(&self, reason: LimitReason) -> u64 {
        self.limit_rejections
            .get(reason.index())
            .map_or(0, |c| c.load(Ordering::Relaxed))
    }

    /// The Prometheus text exposition of every counter.
    pub fn render(&self) -> String {
        let rows: [(&str, &str, &str, &AtomicU64); 8] = [
            (
                "config_server_cache_hits_total",
                "counter",
                "Environment requests served from the cache.",
                &self.cache_hits,
            ),
            (
                "config_server_cache_misses_total",
                "counter",
                "Environment requests that resolved files.",
                &self.cache_misses,
            ),
            (
                "config_server_refresh_total",
                "counter",
                "Successful repository refreshes.",
                &self.refresh_ok,
            ),
            (
                "config_server_refresh_failures_total",
                "counter",
                "Failed repository refreshes.",
                &self.refresh_failed,
            ),
            (
                "config_server_webhooks_total",
                "counter",
                "Accepted /monitor calls.",
                &self.webhooks,
            ),
            (
                "config_server_rejected_requests_total",
                "counter",
                "Config requests answered with a 4xx and failed Basic auth.",
                &self.rejected,
            ),
            (
                "config_server_watchers",
                "gauge",
                "Open watch streams.",
                &self.watchers,
            ),
            (
                "config_server_watch_events_total",
                "counter",
                "Change events sent to watchers.",
                &self.watch_events,
            ),
        ];
        let mut out = PrometheusText::new();
        for (name, kind, help, value) in rows {
            out.family(name, kind, help)
                .sample(&[], value.load(Ordering::Relaxed));
        }
        let mut limits = out.family(
            "config_server_limit_rejections_total",
            "counter",
            "Requests refused by a limit (docs: Limits), by the limit that tripped.",
        );
        for reason in LimitReason::ALL {
            limits = limits.sample(&[("reason", reason.label())], self.limit_rejections(reason));
        }
        self.connections.write_prometheus(&mut out, "config_server");
        out.finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_every_counter_with_help_and_type() {
        let m = Metrics::default();
        m.cache_hits.fetch_add(3, Ordering::Relaxed);
        let text = m.render();
        assert!(text.contains(
            "# TYPE config_server_cache_hits_total counter\nconfig_server_cache_hits_total 3\n"
        ));
        // Eight counters, one sample per limit, five connection counters.
        assert_eq!(
            text.lines().filter(|l| !l.starts_with('#')).count(),
            8 + LimitReason::ALL.len() + 5
        );
        assert!(text.contains("\nconfig_server_connection_header_timeouts_total 0\n"));
        assert!(text.contains("\nconfig_server_connection_send_timeouts_total 0\n"));
    }

    #[test]
    fn limit_rejections_are_counted_per_reason() {
        let m = Metrics::default();
        m.limit_tripped(LimitReason::MonitorNames);
        m.limit_tripped(LimitReason::MonitorNames);
        let text = m.render();
        assert!(text.contains(
            "config_server_limit_rejections_total{reason=\"monitor_names_per_path\"} 2\n"
        ));
        assert!(text.contains("config_server_limit_rejections_total{reason=\"profiles\"} 0\n"));
    }
}
