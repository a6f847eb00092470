//! Per-route request counts and latency, written as Prometheus text with
//! SCG's metric name (`spring_cloud_gateway_requests_seconds`, a summary
//! with `_count` and `_sum`, labelled `routeId` and `status`).

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use cloud_runtime::prometheus::PrometheusText;

use cloud_runtime::shard::{self, CacheLine};

/// The counters.
#[derive(Debug)]
pub struct Metrics {
    /// Per thread (see [`cloud_runtime::shard`]): route id to status to counters,
    /// looked up by `&str`, so a request allocates only the first time its
    /// thread sees its route and status, and no two I/O workers write to
    /// the same counter.
    requests: Box<[CacheLine<Mutex<ByRoute>>]>,
    unmatched: AtomicU64,
    reloads: AtomicU64,
    reload_failures: AtomicU64,
}

type ByRoute = HashMap<Box<str>, HashMap<u16, Counter>>;

#[derive(Debug, Default, Clone, Copy)]
struct Counter {
    count: u64,
    nanos: u64,
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics {
            requests: shard::shards(),
            unmatched: AtomicU64::new(0),
            reloads: AtomicU64::new(0),
            reload_failures: AtomicU64::new(0),
        }
    }
}

impl Metrics {
    /// Counts one request of `route` answered with `status` after `took`.
    pub fn record(&self, route: &str, status: u16, took: Duration) {
        let nanos = u64::try_from(took.as_nanos()).unwrap_or(u64::MAX);
        let mut by_route = self.requests[shard::this_thread()]
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let by_status = match by_route.get_mut(route) {
            Some(s) => s,
            None => by_route.entry(route.into()).or_default(),
        };
        let c = by_status.entry(status).or_default();
        c.count += 1;
        c.nanos = c.nanos.saturating_add(nanos);
    }

    /// Every shard's counters summed, by route and status.
    fn totals(&self) -> HashMap<(Box<str>, u16), Counter> {
        let mut totals: HashMap<(Box<str>, u16), Counter> = HashMap::new();
        for shard in &self.requests {
            let by_route = shard
                .0
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            for (route, by_status) in by_route.iter() {
                for (status, c) in by_status {
                    let t = totals.entry((route.clone(), *status)).or_default();
                    t.count += c.count;
                    t.nanos = t.nanos.saturating_add(c.nanos);
                }
            }
        }
        totals
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
        self.requests
            .iter()
            .map(|shard| {
                let by_route = shard
                    .0
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner);
                by_route
                    .get(route)
                    .map_or(0, |by_status| by_status.values().map(|c| c.count).sum())
            })
            .sum()
    }

    /// Writes the families into `text`.
    pub fn write(&self, text: &mut PrometheusText) {
        let mut rows: Vec<(Box<str>, u16, u64, u64)> = self
            .totals()
            .into_iter()
            .map(|((route, status), c)| (route, status, c.count, c.nanos))
            .collect();
        rows.sort();
        let mut family = text.family(
            "spring_cloud_gateway_requests_seconds",
            "summary",
            "Requests answered through each route, by status, and their time",
        );
        for (route, status, count, nanos) in &rows {
            let status = status.to_string();
            let labels = [("routeId", &**route), ("status", status.as_str())];
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_from_every_thread_add_up() {
        let metrics = std::sync::Arc::new(Metrics::default());
        let threads: Vec<_> = (0..4)
            .map(|_| {
                let metrics = std::sync::Arc::clone(&metrics);
                std::thread::spawn(move || {
                    for _ in 0..250 {
                        metrics.record("api", 200, Duration::from_millis(2));
                    }
                    metrics.record("api", 503, Duration::from_millis(1));
                })
            })
            .collect();
        for t in threads {
            t.join().expect("a recording thread panicked");
        }
        assert_eq!(metrics.count("api"), 1004);
        assert_eq!(metrics.count("other"), 0);
        let mut text = PrometheusText::new();
        metrics.write(&mut text);
        let text = text.finish();
        assert!(
            text.contains(
                r#"spring_cloud_gateway_requests_seconds_count{routeId="api",status="200"} 1000"#
            ),
            "{text}"
        );
        assert!(
            text.contains(
                r#"spring_cloud_gateway_requests_seconds_sum{routeId="api",status="200"} 2"#
            ),
            "{text}"
        );
        assert!(
            text.contains(
                r#"spring_cloud_gateway_requests_seconds_count{routeId="api",status="503"} 4"#
            ),
            "{text}"
        );
    }
}
