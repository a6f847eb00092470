//! The management endpoints a service exposes, as Spring Boot Actuator
//! does: `GET /actuator/health` (JSON, Spring's shape) and
//! `GET /actuator/prometheus` (Prometheus text: the registry cache, and per
//! called service its circuit breaker, with Resilience4j's metric names, and
//! its balancer).

use axum::Json;
use axum::http::header::CONTENT_TYPE;
use axum::response::IntoResponse;
use axum::routing::get;
use circuit_breaker::metrics;
use cloud_runtime::prometheus::{self, PrometheusText};
use serde_json::json;

use crate::config::LiveConfig;
use crate::discovery::{DiscoveryClient, DiscoveryHealth};
use crate::http::{LbHttpClient, ServiceStats};

/// The breaker families: name, type, help.
const BREAKER_FAMILIES: [(&str, &str, &str); 7] = [
    (
        metrics::STATE,
        "gauge",
        "Circuit breaker state (1 for the current one).",
    ),
    (
        metrics::CALLS_TOTAL,
        "counter",
        "Calls through the circuit breaker, by outcome.",
    ),
    (
        metrics::SLOW_CALLS_TOTAL,
        "counter",
        "Slow calls through the circuit breaker.",
    ),
    (
        metrics::BUFFERED_CALLS,
        "gauge",
        "Calls in the circuit breaker's window.",
    ),
    (
        metrics::SLOW_CALLS,
        "gauge",
        "Slow calls in the circuit breaker's window.",
    ),
    (
        metrics::FAILURE_RATE,
        "gauge",
        "Failure rate of the window in percent, -1 until enough calls.",
    ),
    (
        metrics::SLOW_CALL_RATE,
        "gauge",
        "Slow-call rate of the window in percent, -1 until enough calls.",
    ),
];

/// Writes the metrics of the registry cache and of every called service.
pub fn write_metrics(
    out: &mut PrometheusText,
    discovery: Option<&DiscoveryClient>,
    http: &LbHttpClient,
) {
    if let Some(d) = discovery {
        let h = d.health();
        out.gauge(
            "cloud_client_registry_reachable",
            "Whether the last registry call reached a Eureka server.",
            u8::from(h.registry_reachable),
        );
        out.gauge(
            "cloud_client_registry_instances",
            "Instances in the local registry cache.",
            h.instances,
        );
        out.gauge(
            "cloud_client_registry_since_last_fetch_seconds",
            "Seconds since the registry cache was last refreshed (-1 before the first).",
            h.since_last_fetch.map_or(-1.0, |d| d.as_secs_f64()),
        );
        out.gauge(
            "cloud_client_registry_watching",
            "Whether the cache follows the server's watch stream.",
            u8::from(h.watching),
        );
    }
    let services: Vec<ServiceStats> = http.services();
    let pools: Vec<PoolGauges> = services
        .iter()
        .map(|s| PoolGauges {
            service: s.service.clone(),
            instances: s.instances,
            ejected: s.ejected,
        })
        .collect();
    write_pool_gauges(out, &pools);
    let samples: Vec<(&str, Vec<metrics::MetricSample>)> = services
        .iter()
        .map(|s| (s.service.as_str(), s.breaker.metrics().samples()))
        .collect();
    for (name, kind, help) in BREAKER_FAMILIES {
        let mut family = out.family(name, kind, help);
        for (service, list) in &samples {
            for sample in list.iter().filter(|m| m.name == name) {
                let mut labels: Vec<(&str, &str)> = vec![("name", service)];
                labels.extend(sample.labels.iter().copied());
                family = family.sample(&labels, sample.value);
            }
        }
    }
}

/// The `discoveryClient` health component, in Spring's shape: `UP` while
/// the registry answers, `UNKNOWN` (not `DOWN`) when it cannot be reached,
/// since lookups then go on from the cache (`servingStale`).
pub fn discovery_health(h: &DiscoveryHealth) -> serde_json::Value {
    json!({
        "status": if h.registry_reachable { "UP" } else { "UNKNOWN" },
        "details": {
            "registered": h.registered,
            "servingStale": h.serving_stale,
            "watching": h.watching,
            "instances": h.instances,
            "server": h.server,
            "sinceLastFetchMillis": h.since_last_fetch.map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX)),
            "lastError": h.last_error,
        }
    })
}

/// One service's balancer pool, for [`write_pool_gauges`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PoolGauges {
    /// The service name (the `service` label).
    pub service: String,
    /// Instances in its pool.
    pub instances: usize,
    /// Of those, ejected as outliers now.
    pub ejected: usize,
}

/// Writes `cloud_client_loadbalancer_instances` and
/// `cloud_client_loadbalancer_ejected`, one sample per service.
pub fn write_pool_gauges(out: &mut PrometheusText, pools: &[PoolGauges]) {
    let mut family = out.family(
        "cloud_client_loadbalancer_instances",
        "gauge",
        "Instances in a service's balancer pool.",
    );
    for p in pools {
        family = family.sample(&[("service", &p.service)], p.instances);
    }
    let mut family = out.family(
        "cloud_client_loadbalancer_ejected",
        "gauge",
        "Instances of a service ejected as outliers now.",
    );
    for p in pools {
        family = family.sample(&[("service", &p.service)], p.ejected);
    }
}

/// `/actuator/health` and `/actuator/prometheus`. Health is `UP`, with the
/// discovery client and config server as components; a component whose
/// server cannot be reached is `UNKNOWN`, not `DOWN`: the service still
/// works from its cache, and an outage of the registry must not make every
/// service unhealthy.
pub fn router<T: Send + Sync + 'static>(
    discovery: Option<DiscoveryClient>,
    config: LiveConfig<T>,
    http: LbHttpClient,
) -> axum::Router {
    let health_discovery = discovery.clone();
    axum::Router::new()
        .route(
            "/actuator/health",
            get(move || {
                let mut components = serde_json::Map::new();
                if let Some(d) = &health_discovery {
                    components.insert("discoveryClient".into(), discovery_health(&d.health()));
                }
                let snap = config.current();
                components.insert(
                    "configServer".into(),
                    json!({
                        "status": if snap.from_server { "UP" } else { "UNKNOWN" },
                        "details": { "version": snap.version },
                    }),
                );
                async move { Json(json!({"status": "UP", "components": components})) }
            }),
        )
        .route(
            "/actuator/prometheus",
            get(move || {
                let mut out = PrometheusText::new();
                write_metrics(&mut out, discovery.as_ref(), &http);
                let text = out.finish();
                async move { ([(CONTENT_TYPE, prometheus::CONTENT_TYPE)], text).into_response() }
            }),
        )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_unreachable_registry_is_unknown_and_says_it_serves_from_the_cache() {
        let mut h = DiscoveryHealth {
            registry_reachable: true,
            serving_stale: false,
            since_last_fetch: Some(std::time::Duration::from_millis(1500)),
            instances: 3,
            registered: false,
            watching: true,
            server: "http://eureka:8761/eureka/".into(),
            last_error: None,
        };
        let up = discovery_health(&h);
        assert_eq!(up["status"], "UP");
        assert_eq!(up["details"]["instances"], 3);
        assert_eq!(up["details"]["sinceLastFetchMillis"], 1500);
        h.registry_reachable = false;
        h.serving_stale = true;
        h.last_error = Some("connection refused".into());
        let stale = discovery_health(&h);
        assert_eq!(stale["status"], "UNKNOWN");
        assert_eq!(stale["details"]["servingStale"], true);
        assert_eq!(stale["details"]["lastError"], "connection refused");
    }
}
