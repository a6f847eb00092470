//! The admin API, on its own port (127.0.0.1 by default):
//!
//! - `GET /actuator/gateway/routes`: every route as SCG shows it;
//! - `GET /actuator/gateway/routes/{id}`: one route (404 when unknown);
//! - `POST /actuator/gateway/refresh`: reads the settings again and swaps
//!   the route table in one step (500 with the reason, old table kept, when
//!   they do not load);
//! - `GET /actuator/health`: `{"status":"UP"}`, with the registry as the
//!   `discoveryClient` component when `lb://` resolves through Eureka;
//! - `GET /actuator/prometheus`: per-route request counts and time; per
//!   `lb://` service the instances in its balancer and those ejected.

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

/// `UP`; with a registry, its component too (`UNKNOWN`, not `DOWN`, while
/// it cannot be reached: routes go on from the cache).
async fn health(State(gw): State<Gateway>) -> Json<Value> {
    match gw.resolver().health() {
        Some((name, component)) => {
            Json(json!({ "status": "UP", "components": { name: component } }))
        }
        None => Json(json!({ "status": "UP" })),
    }
}

async fn metrics(State(gw): State<Gateway>) -> Response {
    let mut text = PrometheusText::new();
    text.gauge(
        "gateway_routes",
        "Routes in the table",
        gw.table().routes().len(),
    );
    gw.metrics().write(&mut text);
    write_pool_gauges(&mut text, &gw.balancer().stats());
    (
        [(header::CONTENT_TYPE, prometheus::CONTENT_TYPE)],
        text.finish(),
    )
        .into_response()
}
