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
    /// Route id to status to counters: looked up by `&str`, so a request
    /// allocates only the first time its route and status are seen.
    requests: DashMap<String, DashMap<u16, Counter>>,
    unmatched: AtomicU64,
    reloads: AtomicU64,
    reload_failures: AtomicU64,
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
        let add = |c: &Counter| {
            c.count.fetch_add(1, Ordering::Relaxed);
            c.nanos.fetch_add(nanos, Ordering::Relaxed);
        };
        if let Some(by_status) = self.requests.get(route) {
            if let Some(c) = by_status.get(&status) {
                add(&c);
                return;
            }
            add(&by_status.entry(status).or_default());
            return;
        }
        let by_status = self.requests.entry(route.to_owned()).or_default();
        add(&by_status.entry(status).or_default());
    }

    /// Counts one request that matched no route.
    pub fn record_unmatched(&self) {
        self.unmatched.fetch_add(1, Ordering::Relaxed);
    }

    /// Counts one reload of a changed settings file, `ok` or refused.
    pub fn record_reload(&self, ok: bool) {
        let counter = if ok {
            &self.reloads
        } else {
            &self.reload_failures
        };
        counter.fetch_add(1, Ordering::Relaxed);
    }

    /// Reloads of a changed settings file so far: (applied, refused).
    pub fn reloads(&self) -> (u64, u64) {
        (
            self.reloads.load(Ordering::Relaxed),
            self.reload_failures.load(Ordering::Relaxed),
        )
    }

    /// Requests of `route` so far (any status).
    pub fn count(&self, route: &str) -> u64 {
        self.requests.get(route).map_or(0, |by_status| {
            by_status
                .iter()
                .map(|c| c.value().count.load(Ordering::Relaxed))
                .sum()
        })
    }

    /// Writes the families into `text`.
    pub fn write(&self, text: &mut PrometheusText) {
        let mut rows: Vec<(String, u16, u64, u64)> = Vec::new();
        for route in &self.requests {
            for c in route.value().iter() {
                rows.push((
                    route.key().clone(),
                    *c.key(),
                    c.value().count.load(Ordering::Relaxed),
                    c.value().nanos.load(Ordering::Relaxed),
                ));
            }
        }
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
        let (applied, refused) = self.reloads();
        text.counter(
            "gateway_settings_reloads_total",
            "Changes of the settings file applied to the routes",
            applied,
        );
        text.counter(
            "gateway_settings_reload_failures_total",
            "Changes of the settings file that did not load (the routes stayed)",
            refused,
        );
    }
}
