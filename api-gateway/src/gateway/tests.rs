//! The request path through the router with `oneshot`: no sockets.

use tower::ServiceExt as _;

use super::*;

/// A gateway over `routes` (a YAML list).
fn gateway(routes: &str) -> Gateway {
    let routes: serde_json::Value = serde_yaml_ng::from_str(routes).expect("test YAML");
    let mut settings = Settings::default();
    settings.spring.cloud.gateway.routes = routes.as_array().cloned().unwrap_or_default();
    Gateway::builder(settings).build().expect("routes compile")
}

async fn call(gw: &Gateway, request: Request<Body>) -> Response<Body> {
    gw.router().oneshot(request).await.expect("infallible")
}

fn get(uri: &str) -> Request<Body> {
    Request::get(uri)
        .header("host", "gateway.test")
        .body(Body::empty())
        .expect("request")
}

async fn json(response: Response<Body>) -> serde_json::Value {
    let bytes = response
        .into_body()
        .collect()
        .await
        .expect("body")
        .to_bytes();
    serde_json::from_slice(&bytes).expect("JSON body")
}

#[tokio::test]
async fn no_route_is_a_spring_json_404() {
    let gw = gateway("[]");
    let response = call(&gw, get("/missing?x=1")).await;
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
    let body = json(response).await;
    assert_eq!(
        (body["status"].as_u64(), body["path"].as_str()),
        (Some(404), Some("/missing"))
    );
}

#[tokio::test]
async fn forward_routes_match_again_and_response_filters_apply() {
    let gw = gateway(
        r#"
- id: old
  uri: forward:/new
  predicates: [Path=/old]
  filters: ["AddResponseHeader=X-Via, old"]
- id: new
  uri: http://127.0.0.1:1
  predicates: [Path=/new]
  filters: ["RedirectTo=301, https://example.org/new"]
- id: loop
  uri: forward:/loop
  predicates: [Path=/loop]
"#,
    );
    let response = call(&gw, get("/old")).await;
    assert_eq!(response.status(), StatusCode::MOVED_PERMANENTLY);
    assert_eq!(response.headers()["location"], "https://example.org/new");
    assert_eq!(response.headers()["x-via"], "old");
    let response = call(&gw, get("/loop")).await;
    assert_eq!(
        response.status(),
        StatusCode::LOOP_DETECTED,
        "a forward loop ends"
    );
    assert_eq!(gw.metrics().count("new"), 1);
}

#[tokio::test]
async fn a_websocket_upgrade_on_a_connection_that_cannot_switch_is_refused() {
    let gw = gateway("[{id: ws, uri: 'ws://127.0.0.1:1', predicates: ['Path=/ws']}]");
    let request = Request::get("/ws")
        .header("host", "gateway.test")
        .header("connection", "upgrade")
        .header("upgrade", "websocket")
        .body(Body::empty())
        .expect("request");
    let response = call(&gw, request).await;
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    assert!(
        json(response).await["message"]
            .as_str()
            .is_some_and(|m| m.contains("cannot be upgraded"))
    );
}

#[tokio::test]
async fn an_unreachable_https_upstream_answers_502() {
    let gw = gateway("[{id: tls, uri: 'https://127.0.0.1:1', predicates: ['Path=/**']}]");
    let response = call(&gw, get("/x")).await;
    assert_eq!(response.status(), StatusCode::BAD_GATEWAY);
    assert!(
        json(response).await["message"]
            .as_str()
            .is_some_and(|m| m.contains("connection refused"))
    );
}

#[tokio::test]
async fn refresh_without_a_source_recompiles_the_same_settings() {
    let gw = gateway("[{id: a, uri: 'http://127.0.0.1:1'}]");
    let before = gw.table();
    assert_eq!(gw.refresh().await.expect("refreshes"), 1);
    assert!(
        !Arc::ptr_eq(&before, &gw.table()),
        "a new table is swapped in"
    );
}

#[tokio::test]
async fn metrics_settings_name_and_label_the_request_metric() {
    let mut settings = Settings::default();
    let gw_settings = &mut settings.spring.cloud.gateway;
    gw_settings.routes =
        serde_yaml_ng::from_str("[{id: r, uri: 'http://127.0.0.1:1', predicates: [Path=/r]}]")
            .expect("test YAML");
    gw_settings.metrics.prefix = "edge".to_owned();
    gw_settings
        .metrics
        .tags
        .insert("zone".to_owned(), serde_json::json!(3));
    let gw = Gateway::builder(settings.clone())
        .build()
        .expect("routes compile");
    call(&gw, get("/r")).await;
    let mut text = cloud_runtime::prometheus::PrometheusText::new();
    gw.write_metrics(&mut text);
    let text = text.finish();
    assert!(text.contains("edge_routes_count 1\n"), "{text}");
    let line = text
        .lines()
        .find(|l| l.starts_with("edge_requests_seconds_count{"))
        .unwrap_or_else(|| panic!("no request metric in\n{text}"));
    // Nothing listens on port 1: a 502.
    assert_eq!(
        line,
        r#"edge_requests_seconds_count{httpMethod="GET",httpStatusCode="502",outcome="SERVER_ERROR",routeId="r",routeUri="http://127.0.0.1:1",status="BAD_GATEWAY",zone="3"} 1"#
    );

    let mut bad = settings;
    bad.spring
        .cloud
        .gateway
        .metrics
        .tags
        .insert("team".to_owned(), serde_json::json!(["a", "b"]));
    let err = Gateway::builder(bad)
        .build()
        .expect_err("a list is no tag value");
    assert!(
        err.to_string()
            .contains("spring.cloud.gateway.metrics.tags.team"),
        "{err}"
    );
}

#[test]
fn an_unknown_pool_type_is_refused_naming_its_key() {
    let mut settings = Settings::default();
    settings.spring.cloud.gateway.httpclient.pool.pool_type = "BOUNDED".to_owned();
    let err = Gateway::builder(settings)
        .build()
        .expect_err("BOUNDED is no pool type");
    let text = err.to_string();
    assert!(
        text.contains("spring.cloud.gateway.httpclient.pool.type"),
        "{text}"
    );
    assert!(text.contains("ELASTIC, FIXED or DISABLED"), "{text}");
}
