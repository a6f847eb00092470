//! Per-route request counts and latency, written as Prometheus text with
//! SCG's metric name (`spring_cloud_gateway_requests_seconds`, a summary
//! with `_count` and `_sum`, labelled `routeId` and `status`).

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use cloud_runtime::prometheus::PrometheusText;
use dashmap::DashMap;

/// The counters.
#[derive(Debug, Default)]
pub struct Metrics {
    requests: DashMap<(String, u16), Counter>,
    unmatched: AtomicU64,
}

#[derive(Debug, Default)]
struct Counter {
    count: AtomicU64,
    nanos: AtomicU64,
}

impl Metrics {
    /// Counts one request of `route` answered with `status` after `took`.
    pub fn record(&self, route: &str, status: u16, took: Duration) {
        let nanos = u64::try_from(took.as_nanos()).unwrap_or(u64::MAX);
        let key = (route.to_owned(), status);
        if let Some(c) = self.requests.get(&key) {
            c.count.fetch_add(1, Ordering::Relaxed);
            c.nanos.fetch_add(nanos, Ordering::Relaxed);
            return;
        }
        let c = self.requests.entry(key).or_default();
        c.count.fetch_add(1, Ordering::Relaxed);
        c.nanos.fetch_add(nanos, Ordering::Relaxed);
    }

    /// Counts one request that matched no route.
    pub fn record_unmatched(&self) {
        self.unmatched.fetch_add(1, Ordering::Relaxed);
    }

    /// Requests of `route` so far (any status).
    pub fn count(&self, route: &str) -> u64 {
        self.requests
            .iter()
            .filter(|e| e.key().0 == route)
            .map(|e| e.value().count.load(Ordering::Relaxed))
            .sum()
    }

    /// Writes the families into `text`.
    pub fn write(&self, text: &mut PrometheusText) {
        let mut rows: Vec<(String, u16, u64, u64)> = self
            .requests
            .iter()
            .map(|e| {
                (
                    e.key().0.clone(),
                    e.key().1,
                    e.value().count.load(Ordering::Relaxed),
                    e.value().nanos.load(Ordering::Relaxed),
                )
            })
            .collect();
        rows.sort();
        let mut family = text.family(
            "spring_cloud_gateway_requests_seconds",
            "summary",
            "Requests answered through each route, by status, and their time",
        );
        for (route, status, count, nanos) in &rows {
            let status = status.to_string();
            let labels = [("routeId", route.as_str()), ("status", status.as_str())];
            family = family.sample_named("_count", &labels, count).sample_named(
                "_sum",
                &labels,
                *nanos as f64 / 1e9,
            );
        }
        text.counter(
            "gateway_unmatched_requests_total",
            "Requests that matched no route (answered 404)",
            self.unmatched.load(Ordering::Relaxed),
        );
    }
}
