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
//! - `POST /actuator/gateway/routes/{id}` (SCG's `RouteDefinition` JSON;
//!   `201`, `Location: /routes/{id}`), `POST /actuator/gateway/routes` (a
//!   list, each with its `id`; `200`), `DELETE /actuator/gateway/routes/{id}`
//!   (`200`, `404` for an id no save made): routes kept in memory, in
//!   effect from the next refresh as in SCG; a saved route replaces the
//!   settings' route with its id. Unlike SCG, which checks only the names,
//!   a definition is compiled when saved and refused (`400` with the
//!   reason) when it would not compile;
//! - `GET /actuator/gateway/routedefinitions`: every definition the next
//!   refresh compiles, in SCG's form; `GET /actuator/gateway/`: the
//!   endpoints above, per route where they take an id;
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
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use bytes::Bytes;
use cloud_client::actuator::write_pool_gauges;
use cloud_runtime::auth::BasicAuthLayer;
use cloud_runtime::error_body::SpringError;
use cloud_runtime::prometheus::{self, PrometheusText};
use serde_json::{Value, json};

use crate::config::{RouteDefinition, canonical, parse_routes};
use crate::gateway::{Gateway, RouteStoreError};
use crate::settings::{EndpointAccess, LoadError};

/// The admin router; `/actuator/gateway/*` as the gateway's
/// [`EndpointAccess`] allows, behind Basic authentication when
/// `spring.security.user.name` is set (`/actuator/health` and its groups
/// stay open, for probes, as Spring Boot leaves them).
pub fn router(gateway: Gateway) -> Router {
    let user = gateway.admin_user().cloned();
    let router = endpoints_router(gateway);
    match user {
        None => router,
        Some(user) => router.layer(BasicAuthLayer::new(user, "gateway").exempt("/actuator/health")),
    }
}

fn endpoints_router(gateway: Gateway) -> Router {
    let access = gateway.admin_access();
    let mut router = Router::new();
    if access != EndpointAccess::None {
        let (mut many, mut one) = (get(routes), get(route));
        if access == EndpointAccess::Unrestricted {
            many = many.post(save_routes);
            one = one.post(save_route).delete(delete_route);
        }
        if access != EndpointAccess::ReadOnly {
            router = router.route("/actuator/gateway/refresh", post(refresh));
        }
        router = router
            .route("/actuator/gateway", get(endpoints))
            .route("/actuator/gateway/", get(endpoints))
            .route("/actuator/gateway/routes", many)
            .route("/actuator/gateway/routes/{id}", one)
            .route("/actuator/gateway/routedefinitions", get(route_definitions))
            .route(
                "/actuator/gateway/routes/{id}/combinedfilters",
                get(combined_filters),
            )
            .route("/actuator/gateway/routefilters", get(route_filters))
            .route("/actuator/gateway/routepredicates", get(route_predicates))
            .route("/actuator/gateway/globalfilters", get(global_filters));
    }
    router
        .route("/actuator", get(links))
        .route("/actuator/health", get(health))
        .route("/actuator/health/{component}", get(health_component))
        .route("/actuator/prometheus", get(metrics))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .with_state(gateway)
}

async fn not_found(uri: axum::http::Uri) -> Response {
    SpringError::new(StatusCode::NOT_FOUND, "No endpoint at this path")
        .at(uri.path())
        .into_response()
}

async fn method_not_allowed(method: axum::http::Method, uri: axum::http::Uri) -> Response {
    SpringError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        format!("{method} is not allowed here"),
    )
    .at(uri.path())
    .into_response()
}

/// `/actuator`: Spring Boot's discovery page, each endpoint's link built
/// from the request's `Host` (Spring Boot Admin and other tools start
/// here).
async fn links(State(gw): State<Gateway>, headers: axum::http::HeaderMap) -> Json<Value> {
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("localhost");
    let base = format!("http://{host}/actuator");
    let link = |path: &str, templated: bool| json!({ "href": format!("{base}{path}"), "templated": templated });
    let mut links = serde_json::Map::new();
    links.insert("self".into(), link("", false));
    links.insert("health".into(), link("/health", false));
    links.insert("health-path".into(), link("/health/{*path}", true));
    links.insert("prometheus".into(), link("/prometheus", false));
    if gw.admin_access() != EndpointAccess::None {
        links.insert("gateway".into(), link("/gateway", false));
    }
    Json(json!({ "_links": links }))
}

/// SCG's `GET /actuator/gateway/`: each endpoint's path (one per route
/// where it takes an id) and its methods.
async fn endpoints(State(gw): State<Gateway>) -> Json<Value> {
    const BASE: &str = "/actuator/gateway";
    let access = gw.admin_access();
    let (many, one) = match access == EndpointAccess::Unrestricted {
        true => (json!(["POST", "GET"]), json!(["POST", "DELETE", "GET"])),
        false => (json!(["GET"]), json!(["GET"])),
    };
    let mut list = vec![
        json!({ "href": format!("{BASE}/"), "methods": ["GET"] }),
        json!({ "href": format!("{BASE}/routes"), "methods": many }),
        json!({ "href": format!("{BASE}/routedefinitions"), "methods": ["GET"] }),
        json!({ "href": format!("{BASE}/globalfilters"), "methods": ["GET"] }),
        json!({ "href": format!("{BASE}/routefilters"), "methods": ["GET"] }),
        json!({ "href": format!("{BASE}/routepredicates"), "methods": ["GET"] }),
    ];
    if access != EndpointAccess::ReadOnly {
        list.push(json!({ "href": format!("{BASE}/refresh"), "methods": ["POST"] }));
    }
    for route in gw.table().routes() {
        let id = &route.id;
        list.push(json!({ "href": format!("{BASE}/routes/{id}"), "methods": one }));
        list.push(
            json!({ "href": format!("{BASE}/routes/{id}/combinedfilters"), "methods": ["GET"] }),
        );
    }
    Json(Value::Array(list))
}

/// Every route definition the next refresh compiles, in SCG's form.
async fn route_definitions(State(gw): State<Gateway>) -> Response {
    match gw.route_definitions().await {
        Ok(defs) => Json(Value::Array(
            defs.iter().map(RouteDefinition::to_json).collect(),
        ))
        .into_response(),
        Err(e) => store_failed(&e, "/actuator/gateway/routedefinitions"),
    }
}

/// `503` when the Redis route repository did not answer, else `500`.
fn store_failed(e: &RouteStoreError, at: &str) -> Response {
    let status = match e.is_unavailable() {
        true => StatusCode::SERVICE_UNAVAILABLE,
        false => StatusCode::INTERNAL_SERVER_ERROR,
    };
    SpringError::new(status, e.to_string())
        .at(at)
        .into_response()
}

/// SCG's `POST /actuator/gateway/routes/{id}`: saves the route definition
/// in the body (SCG's `RouteDefinition` JSON, or the YAML form as JSON)
/// under `id`, for the next refresh; `201` with `Location: /routes/{id}`,
/// or `400` with the reason.
async fn save_route(State(gw): State<Gateway>, Path(id): Path<String>, body: Bytes) -> Response {
    let at = format!("/actuator/gateway/routes/{id}");
    let route = match serde_json::from_slice::<Value>(&body) {
        Ok(Value::Object(mut map)) => {
            // The id in the path wins, as in SCG.
            map.retain(|key, _| canonical(key) != "id");
            map.insert("id".to_owned(), Value::String(id.clone()));
            Value::Object(map)
        }
        Ok(_) => return refused(&at, "the body must be a route definition (a JSON object)"),
        Err(e) => return refused(&at, &format!("the body is not JSON: {e}")),
    };
    if let Err(response) = save(&gw, &[route], &at).await {
        return response;
    }
    let location = HeaderValue::from_str(&format!("/routes/{id}"))
        .unwrap_or_else(|_| HeaderValue::from_static("/routes"));
    (StatusCode::CREATED, [(header::LOCATION, location)]).into_response()
}

/// SCG's `POST /actuator/gateway/routes`: saves a JSON list of route
/// definitions, each with its `id`, for the next refresh; all or none.
async fn save_routes(State(gw): State<Gateway>, body: Bytes) -> Response {
    const AT: &str = "/actuator/gateway/routes";
    let routes = match serde_json::from_slice::<Value>(&body) {
        Ok(Value::Array(routes)) => routes,
        Ok(_) => return refused(AT, "the body must be a JSON list of route definitions"),
        Err(e) => return refused(AT, &format!("the body is not JSON: {e}")),
    };
    let has_id = |route: &Value| {
        route.as_object().is_some_and(|m| {
            m.iter()
                .any(|(k, v)| canonical(k) == "id" && v.as_str().is_some_and(|s| !s.is_empty()))
        })
    };
    if let Some(i) = routes.iter().position(|r| !has_id(r)) {
        return refused(
            AT,
            &format!("route {i} has no `id`: saving several routes needs the id of each"),
        );
    }
    match save(&gw, &routes, AT).await {
        Ok(()) => StatusCode::OK.into_response(),
        Err(response) => response,
    }
}

/// Parses and saves `routes` (400 with the reason when one is wrong).
async fn save(gw: &Gateway, routes: &[Value], at: &str) -> Result<(), Response> {
    let defs = parse_routes(routes, None, 0).map_err(|e| refused(at, &e.to_string()))?;
    gw.save_routes(defs).await.map_err(|e| {
        let reason = match &e {
            RouteStoreError::Invalid(LoadError::Route(r)) => {
                format!("route `{}`: {}", r.route(), r.definition())
            }
            RouteStoreError::Invalid(other) => other.to_string(),
            unavailable @ RouteStoreError::Unavailable(_) => return store_failed(unavailable, at),
        };
        refused(at, &reason)
    })
}

/// SCG's `DELETE /actuator/gateway/routes/{id}`: forgets a saved route
/// from the next refresh on; `404` for an id no save made.
async fn delete_route(State(gw): State<Gateway>, Path(id): Path<String>) -> Response {
    let at = format!("/actuator/gateway/routes/{id}");
    match gw.delete_route(&id).await {
        Ok(true) => return StatusCode::OK.into_response(),
        Ok(false) => {}
        Err(e) => return store_failed(&e, &at),
    }
    SpringError::new(
        StatusCode::NOT_FOUND,
        format!("No saved route with id `{id}` (routes from the settings are not deleted)"),
    )
    .at(&at)
    .into_response()
}

fn refused(at: &str, reason: &str) -> Response {
    SpringError::new(StatusCode::BAD_REQUEST, reason)
        .at(at)
        .into_response()
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
    let components = health_components(&gw).await;
    if components.is_empty() {
        Json(json!({ "status": "UP" }))
    } else {
        Json(json!({ "status": "UP", "components": components }))
    }
}

/// `/actuator/health/{component}`: Spring Boot's probe groups, which
/// Kubernetes deployments of SCG point their probes at (`liveness`: the
/// process answers; `readiness`: it takes traffic, which it does from its
/// start, with Redis or the registry down too, as the gateway fails open),
/// or one component of `/actuator/health`; 404 for another name.
async fn health_component(State(gw): State<Gateway>, Path(name): Path<String>) -> Response {
    if name == "liveness" || name == "readiness" {
        return Json(json!({ "status": "UP" })).into_response();
    }
    match health_components(&gw).await.remove(&name) {
        Some(component) => Json(component).into_response(),
        None => SpringError::new(
            StatusCode::NOT_FOUND,
            format!("no health component `{name}`"),
        )
        .at(&format!("/actuator/health/{name}"))
        .into_response(),
    }
}

/// The components of `/actuator/health`: the registry client's and Redis's,
/// when they are configured.
async fn health_components(gw: &Gateway) -> serde_json::Map<String, Value> {
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
    components
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
