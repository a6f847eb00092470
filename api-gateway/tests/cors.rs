//! CORS end to end: a real gateway on port 0 in front of an echoing
//! upstream, with SCG's `globalcors` and a route's `metadata.cors`.

mod support;

use api_gateway::Gateway;
use api_gateway::settings::Settings;
use axum::http::StatusCode;
use reqwest::Method;
use reqwest::header::HeaderMap;
use support::{TestGateway, Upstream, client, send};

const SECRET: &str = "an-hs-secret-that-is-at-least-32-bytes-long";

fn yaml(up: &Upstream) -> String {
    format!(
        r#"
spring:
  cloud:
    gateway:
      globalcors:
        add-to-simple-url-handler-mapping: true
        cors-configurations:
          '[/**]':
            allowed-origins: "https://app.example"
            allowed-methods: [GET, POST]
            allowed-headers: [Content-Type, X-Trace]
            exposed-headers: X-Total
            allow-credentials: true
            max-age: 1800
      jwt:
        secret: {SECRET}
      routes:
        - id: api
          uri: http://{up}
          predicates: [Path=/api/**, "Method=GET,POST"]
        - id: orders
          uri: http://{up}
          predicates: [Path=/orders/**]
          metadata:
            cors:
              allowedOrigins: https://admin.example
              allowedMethods: [PUT]
        - id: private
          uri: http://{up}
          predicates: [Path=/private/**]
          filters: [JwtAuth]
"#,
        up = up.addr
    )
}

async fn preflight(
    gw: &TestGateway,
    path: &str,
    origin: &str,
    method: &str,
    headers: Option<&str>,
) -> (StatusCode, HeaderMap) {
    let mut request = client()
        .request(Method::OPTIONS, gw.url(path))
        .header("origin", origin)
        .header("access-control-request-method", method);
    if let Some(h) = headers {
        request = request.header("access-control-request-headers", h);
    }
    let (status, headers, _) = send(request).await;
    (status, headers)
}

fn header<'h>(headers: &'h HeaderMap, name: &str) -> Option<&'h str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

fn vary(headers: &HeaderMap) -> Vec<String> {
    headers
        .get_all("vary")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|v| v.trim().to_owned())
        .collect()
}

#[tokio::test]
async fn an_allowed_preflight_is_answered_by_the_gateway() {
    let up = Upstream::start().await;
    let gw = TestGateway::start(&yaml(&up)).await;
    // `Method=GET,POST` does not match OPTIONS: the route is found with
    // the method the preflight asks for.
    let (status, h) = preflight(
        &gw,
        "/api/items",
        "https://app.example",
        "POST",
        Some("content-type,x-trace"),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        header(&h, "access-control-allow-origin"),
        Some("https://app.example")
    );
    assert_eq!(header(&h, "access-control-allow-methods"), Some("GET,POST"));
    assert_eq!(
        header(&h, "access-control-allow-headers"),
        Some("content-type, x-trace")
    );
    assert_eq!(header(&h, "access-control-max-age"), Some("1800"));
    assert_eq!(header(&h, "access-control-allow-credentials"), Some("true"));
    assert_eq!(
        vary(&h),
        [
            "Origin",
            "Access-Control-Request-Method",
            "Access-Control-Request-Headers"
        ]
    );
    assert_eq!(up.hits(), 0, "the upstream never sees a preflight");
    // As in SCG, the route's request metric leaves it out.
    let metrics = gw.prometheus().await;
    assert!(
        metrics.contains("gateway_cors_answers_total 1\n"),
        "{metrics}"
    );
    assert!(!metrics.contains("httpMethod=\"OPTIONS\""), "{metrics}");
}

#[tokio::test]
async fn a_disallowed_preflight_is_forbidden() {
    let up = Upstream::start().await;
    let gw = TestGateway::start(&yaml(&up)).await;
    for (origin, method, headers) in [
        ("https://evil.example", "GET", None),
        ("https://app.example", "DELETE", None),
        ("https://app.example", "GET", Some("x-secret")),
    ] {
        let (status, h) = preflight(&gw, "/api/items", origin, method, headers).await;
        assert_eq!(
            status,
            StatusCode::FORBIDDEN,
            "{origin} {method} {headers:?}"
        );
        assert_eq!(header(&h, "access-control-allow-origin"), None);
    }
    assert_eq!(up.hits(), 0);
}

#[tokio::test]
async fn actual_requests_get_allow_origin_and_vary_or_are_refused() {
    let up = Upstream::start().await;
    let gw = TestGateway::start(&yaml(&up)).await;
    let (status, h, echo) = send(
        client()
            .get(gw.url("/api/items"))
            .header("origin", "https://app.example"),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(echo["path"], "/api/items");
    assert_eq!(
        header(&h, "access-control-allow-origin"),
        Some("https://app.example")
    );
    assert_eq!(header(&h, "access-control-allow-credentials"), Some("true"));
    assert_eq!(header(&h, "access-control-expose-headers"), Some("X-Total"));
    assert_eq!(header(&h, "access-control-allow-methods"), None);
    assert!(vary(&h).contains(&"Origin".to_owned()));

    let (status, h, body) = send(
        client()
            .get(gw.url("/api/items"))
            .header("origin", "https://evil.example"),
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(body["message"], "Invalid CORS request");
    assert_eq!(header(&h, "access-control-allow-origin"), None);
    assert_eq!(
        up.hits(),
        1,
        "the refused request did not reach the upstream"
    );

    let (status, h, _) = send(client().get(gw.url("/api/items"))).await;
    assert_eq!(status, StatusCode::OK, "no Origin: not a CORS request");
    assert_eq!(header(&h, "access-control-allow-origin"), None);
    assert!(
        vary(&h).contains(&"Origin".to_owned()),
        "caches must still vary"
    );
}

#[tokio::test]
async fn a_routes_metadata_cors_adds_to_the_global_configuration() {
    let up = Upstream::start().await;
    let gw = TestGateway::start(&yaml(&up)).await;
    let (status, h) = preflight(&gw, "/orders/1", "https://admin.example", "PUT", None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        header(&h, "access-control-allow-origin"),
        Some("https://admin.example")
    );
    assert_eq!(
        header(&h, "access-control-allow-methods"),
        Some("GET,POST,PUT")
    );
    let (status, _) = preflight(&gw, "/orders/1", "https://app.example", "PUT", None).await;
    assert_eq!(status, StatusCode::OK, "the global origins still apply");
    let (status, _) = preflight(&gw, "/api/items", "https://admin.example", "GET", None).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "only on the route");
}

#[tokio::test]
async fn preflights_need_no_token_and_refusals_carry_cors_headers() {
    let up = Upstream::start().await;
    let gw = TestGateway::start(&yaml(&up)).await;
    let (status, _) = preflight(&gw, "/private/x", "https://app.example", "GET", None).await;
    assert_eq!(status, StatusCode::OK);
    let (status, h, _) = send(
        client()
            .get(gw.url("/private/x"))
            .header("origin", "https://app.example"),
    )
    .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(
        header(&h, "access-control-allow-origin"),
        Some("https://app.example"),
        "a browser can read the 401"
    );
    assert_eq!(up.hits(), 0);
}

#[tokio::test]
async fn without_a_cors_configuration_preflights_go_to_the_upstream() {
    let up = Upstream::start().await;
    let gw = TestGateway::start(&format!(
        "spring:\n  cloud:\n    gateway:\n      routes:\n        - id: api\n          uri: http://{}\n          predicates: [Path=/api/**]\n",
        up.addr
    ))
    .await;
    let (status, h) = preflight(&gw, "/api/items", "https://app.example", "GET", None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(header(&h, "access-control-allow-origin"), None);
    assert_eq!(up.hits(), 1, "the upstream answers its own CORS");
}

#[test]
fn a_wildcard_origin_with_credentials_fails_at_start() {
    let yaml = r#"
spring:
  cloud:
    gateway:
      globalcors:
        cors-configurations:
          '[/**]':
            allowed-origins: "*"
            allow-credentials: true
"#;
    let settings: Settings = serde_yaml_ng::from_str(yaml).expect("valid YAML");
    let e = Gateway::builder(settings)
        .build()
        .map(|_| ())
        .expect_err("refused")
        .to_string();
    assert!(
        e.contains("spring.cloud.gateway.globalcors.cors-configurations.[/**]"),
        "{e}"
    );
    assert!(e.contains("allow-credentials"), "{e}");
}
