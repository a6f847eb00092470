//! The admin API, on its own port (127.0.0.1 by default):
//!
//! - `GET /actuator/gateway/routes`: every route as SCG shows it;
//! - `GET /actuator/gateway/routes/{id}`: one route (404 when unknown);
//! - `GET /actuator/gateway/routefilters`, `/routepredicates`: the filter
//!   and predicate names routes may use, keyed as SCG keys its factories
//!   (`[AddRequestHeaderGatewayFilterFactory]`, value `null`);
//! - `GET /actuator/gateway/globalfilters`: the steps every request goes
//!   through, by SCG's global filter names, with SCG's orders;
//! - `GET /actuator/gateway/routes/{id}/combinedfilters`: one route's
//!   default and own filters with their orders in the chain;
//! - `POST /actuator/gateway/refresh`: reads the settings again and swaps
//!   the route table in one step (500 with the reason, old table kept, when
//!   they do not load);
//! - `GET /actuator/health`: `{"status":"UP"}`, with components: the
//!   registry as `discoveryClient` when `lb://` resolves through Eureka
//!   (`UNKNOWN` while it cannot be reached: routes go on from the cache);
//!   with Redis configured, a `redis` component that PINGs it (`DOWN` with
//!   the error when it does not answer). The gateway itself stays `UP`
//!   (200) either way: its rate limiters let requests through while Redis
//!   is away;
//! - `GET /actuator/prometheus`: per-route request counts and time, as
//!   SCG's `spring_cloud_gateway_requests_seconds` (see [`crate::metrics`]); open
//!   WebSocket tunnels and handshakes refused at the tunnel limit; per
//!   `lb://` service the instances in its balancer and those ejected; the
//!   Redis rate limiter's failures.

use axum::Json;
use axum::Router;
use axum::extract::{Path, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use cloud_client::actuator::write_pool_gauges;
use cloud_runtime::error_body::SpringError;
use cloud_runtime::prometheus::{self, PrometheusText};
use serde_json::{Value, json};

use crate::gateway::Gateway;

/// The admin router.
pub fn router(gateway: Gateway) -> Router {
    Router::new()
        .route("/actuator/gateway/routes", get(routes))
        .route("/actuator/gateway/routes/{id}", get(route))
        .route(
            "/actuator/gateway/routes/{id}/combinedfilters",
            get(combined_filters),
        )
        .route("/actuator/gateway/routefilters", get(route_filters))
        .route("/actuator/gateway/routepredicates", get(route_predicates))
        .route("/actuator/gateway/globalfilters", get(global_filters))
        .route("/actuator/gateway/refresh", post(refresh))
        .route("/actuator/health", get(health))
        .route("/actuator/prometheus", get(metrics))
        .with_state(gateway)
}

async fn routes(State(gw): State<Gateway>) -> Json<Value> {
    let table = gw.table();
    Json(Value::Array(
        table.routes().iter().map(|r| r.describe()).collect(),
    ))
}

async fn route(State(gw): State<Gateway>, Path(id): Path<String>) -> Response {
    match gw.table().get(&id) {
        Some(r) => Json(r.describe()).into_response(),
        None => SpringError::new(StatusCode::NOT_FOUND, format!("No route with id `{id}`"))
            .at(&format!("/actuator/gateway/routes/{id}"))
            .into_response(),
    }
}

/// The route's filters (default ones first) with their place in the chain,
/// as SCG orders a route's filters (1, 2, ...).
async fn combined_filters(State(gw): State<Gateway>, Path(id): Path<String>) -> Response {
    match gw.table().get(&id) {
        Some(r) => {
            let filters = r.describe()["filters"].clone();
            let combined: serde_json::Map<String, Value> = filters
                .as_array()
                .into_iter()
                .flatten()
                .enumerate()
                .map(|(i, f)| (f.as_str().unwrap_or_default().to_owned(), json!(i + 1)))
                .collect();
            Json(Value::Object(combined)).into_response()
        }
        None => SpringError::new(StatusCode::NOT_FOUND, format!("No route with id `{id}`"))
            .at(&format!("/actuator/gateway/routes/{id}/combinedfilters"))
            .into_response(),
    }
}

/// `names` keyed as SCG keys its factories, each with `null`.
fn factories(names: &[&str], suffix: &str) -> Json<Value> {
    Json(Value::Object(
        names
            .iter()
            .map(|n| (format!("[{n}{suffix}]"), Value::Null))
            .collect(),
    ))
}

async fn route_filters() -> Json<Value> {
    factories(&crate::filter::FILTER_NAMES, "GatewayFilterFactory")
}

async fn route_predicates() -> Json<Value> {
    factories(&crate::predicate::PREDICATE_NAMES, "RoutePredicateFactory")
}

/// The steps of every request under the names and orders of the SCG
/// global filters that do the same work.
async fn global_filters() -> Json<Value> {
    const STEPS: [(&str, i64); 8] = [
        (
            "org.springframework.cloud.gateway.filter.NettyWriteResponseFilter",
            -1,
        ),
        (
            "org.springframework.cloud.gateway.filter.ForwardPathFilter",
            0,
        ),
        (
            "org.springframework.cloud.gateway.filter.GatewayMetricsFilter",
            0,
        ),
        (
            "org.springframework.cloud.gateway.filter.RouteToRequestUrlFilter",
            10000,
        ),
        (
            "org.springframework.cloud.gateway.filter.ReactiveLoadBalancerClientFilter",
            10150,
        ),
        (
            "org.springframework.cloud.gateway.filter.WebsocketRoutingFilter",
            2147483646,
        ),
        (
            "org.springframework.cloud.gateway.filter.NettyRoutingFilter",
            2147483647,
        ),
        (
            "org.springframework.cloud.gateway.filter.ForwardRoutingFilter",
            2147483647,
        ),
    ];
    Json(Value::Object(
        STEPS
            .iter()
            .map(|(name, order)| ((*name).to_owned(), json!(order)))
            .collect(),
    ))
}

async fn refresh(State(gw): State<Gateway>) -> Response {
    match gw.refresh().await {
        Ok(n) => Json(json!({ "routes": n })).into_response(),
        Err(e) => {
            tracing::error!(error = %e, "refresh failed; the old routes stay");
            SpringError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                format!("refresh failed, old routes kept: {e}"),
            )
            .at("/actuator/gateway/refresh")
            .into_response()
        }
    }
}

/// `UP`, with the registry's and Redis's components when they are in use.
async fn health(State(gw): State<Gateway>) -> Json<Value> {
    let mut components = serde_json::Map::new();
    if let Some((name, component)) = gw.resolver().health() {
        components.insert(name.into(), component);
    }
    if let Some(redis) = gw.redis() {
        let component = match redis.ping().await {
            Ok(()) => json!({ "status": "UP", "details": { "address": redis.address() } }),
            Err(e) => {
                let error = redis.last_error().unwrap_or_else(|| e.to_string());
                json!({ "status": "DOWN", "details": { "address": redis.address(), "error": error } })
            }
        };
        components.insert("redis".into(), component);
    }
    if components.is_empty() {
        Json(json!({ "status": "UP" }))
    } else {
        Json(json!({ "status": "UP", "components": components }))
    }
}

async fn metrics(State(gw): State<Gateway>) -> Response {
    let mut text = PrometheusText::new();
    text.gauge(
        "gateway_routes",
        "Routes in the table",
        gw.table().routes().len(),
    );
    gw.write_metrics(&mut text);
    text.gauge(
        "gateway_websocket_tunnels",
        "WebSocket tunnels open now",
        gw.open_tunnels(),
    );
    text.counter(
        "gateway_websocket_refused_total",
        "WebSocket handshakes answered 503 because server.max-connections tunnels were open",
        gw.refused_tunnels(),
    );
    if let Some(redis) = gw.redis() {
        text.counter(
            "gateway_rate_limiter_redis_failures_total",
            "RequestRateLimiter calls to Redis that failed; each let its request through",
            redis.failures(),
        );
        text.gauge(
            "gateway_rate_limiter_redis_up",
            "1 when the last call to Redis succeeded",
            u8::from(redis.is_up()),
        );
    }
    write_pool_gauges(&mut text, &gw.balancer().stats());
    gw.connection_stats().write_prometheus(&mut text, "gateway");
    (
        [(header::CONTENT_TYPE, prometheus::CONTENT_TYPE)],
        text.finish(),
    )
        .into_response()
}
