//! The API in-process, through `tower::ServiceExt::oneshot`.

use std::io::Read as _;
use std::sync::Arc;

use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use axum::response::Response;
use http_body_util::BodyExt as _;
use proptest::prelude::*;
use tower::ServiceExt as _;

use crate::config::{BasicAuth, ServerConfig};
use crate::http::ShowDetails;
use crate::server::Server;
use cloud_runtime::clock::ManualClock;

pub(super) fn server() -> (Server, Arc<ManualClock>) {
    let clock = Arc::new(ManualClock::at_epoch_millis(1_700_000_000_000));
    (
        Server::with_clock(ServerConfig::default(), clock.clone()).unwrap(),
        clock,
    )
}

pub(super) fn registration(app: &str, id: &str) -> String {
    format!(
        r#"{{"instance":{{"instanceId":"{id}","hostName":"{id}.local","app":"{app}","ipAddr":"10.1.1.1",
        "status":"UP","port":{{"$":8080,"@enabled":"true"}},"vipAddress":"{app}","lastDirtyTimestamp":"100",
        "dataCenterInfo":{{"@class":"com.netflix.appinfo.InstanceInfo$DefaultDataCenterInfo","name":"MyOwn"}}}}}}"#
    )
}

pub(super) async fn call(server: &Server, req: Request<Body>) -> Response {
    server.router().oneshot(req).await.unwrap()
}

pub(super) async fn text(response: Response) -> String {
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    String::from_utf8(bytes.to_vec()).unwrap()
}

pub(super) fn get(uri: &str, accept: &str) -> Request<Body> {
    Request::get(uri)
        .header(header::ACCEPT, accept)
        .body(Body::empty())
        .unwrap()
}

pub(super) fn method(m: &str, uri: &str) -> Request<Body> {
    Request::builder()
        .method(m)
        .uri(uri)
        .body(Body::empty())
        .unwrap()
}

pub(super) async fn register(server: &Server, app: &str, id: &str) -> StatusCode {
    let req = Request::post(format!("/eureka/apps/{app}"))
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from(registration(app, id)))
        .unwrap();
    call(server, req).await.status()
}

#[tokio::test]
async fn register_then_list_in_json_and_xml() {
    let (s, _) = server();
    assert_eq!(register(&s, "orders", "o-1").await, StatusCode::NO_CONTENT);
    let json = text(call(&s, get("/eureka/apps", "application/json")).await).await;
    let v: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(v["applications"]["apps__hashcode"], "UP_1_");
    assert_eq!(v["applications"]["versions__delta"], "1");
    let inst = &v["applications"]["application"][0]["instance"][0];
    assert_eq!(v["applications"]["application"][0]["name"], "ORDERS");
    assert_eq!(inst["app"], "ORDERS");
    assert_eq!(inst["port"]["$"], 8080);
    assert_eq!(inst["port"]["@enabled"], "true");
    assert_eq!(inst["metadata"]["@class"], "java.util.Collections$EmptyMap");
    let response = call(&s, get("/eureka/v2/apps/", "*/*")).await;
    assert_eq!(response.headers()[header::CONTENT_TYPE], "application/xml");
    let xml = text(response).await;
    assert!(
        xml.contains("<name>ORDERS</name>") && xml.contains("<instanceId>o-1</instanceId>"),
        "{xml}"
    );
    let one = text(call(&s, get("/eureka/apps/orders/o-1", "application/json")).await).await;
    assert!(
        one.starts_with(r#"{"instance":{"instanceId":"o-1""#),
        "{one}"
    );
    let app = text(call(&s, get("/eureka/apps/ORDERS", "application/xml")).await).await;
    assert!(app.starts_with("<application>"), "{app}");
    assert_eq!(
        call(&s, get("/eureka/instances/o-1", "")).await.status(),
        StatusCode::OK
    );
    assert!(
        text(call(&s, get("/eureka/vips/orders", "")).await)
            .await
            .contains("<instanceId>o-1</instanceId>")
    );
    assert_eq!(
        call(&s, get("/eureka/apps/NOPE", "")).await.status(),
        StatusCode::NOT_FOUND
    );
}

#[tokio::test]
async fn every_api_path_also_answers_with_a_trailing_slash() {
    let (s, _) = server();
    assert_eq!(register(&s, "orders", "o-1").await, StatusCode::NO_CONTENT);
    for prefix in ["/eureka", "/eureka/v2"] {
        for path in [
            "/apps/",
            "/apps/delta/",
            "/apps/ORDERS/",
            "/apps/ORDERS/o-1/",
            "/instances/o-1/",
            "/vips/orders/",
            "/svips/orders/",
        ] {
            let uri = format!("{prefix}{path}");
            let response = call(&s, get(&uri, "application/json")).await;
            assert_eq!(response.status(), StatusCode::OK, "GET {uri}");
        }
    }
    let renew = call(&s, method("PUT", "/eureka/apps/ORDERS/o-1/?status=UP")).await;
    assert_eq!(renew.status(), StatusCode::OK);
    let cancel = call(&s, method("DELETE", "/eureka/apps/ORDERS/o-1/")).await;
    assert_eq!(cancel.status(), StatusCode::OK);
}

#[tokio::test]
async fn an_xml_registration_from_the_java_client_is_accepted() {
    let (s, _) = server();
    let body = r#"<instance><instanceId>x-1</instanceId><hostName>x.local</hostName><app>XAPP</app>
      <ipAddr>10.0.0.2</ipAddr><status>UP</status><overriddenstatus>UNKNOWN</overriddenstatus>
      <port enabled="true">8081</port><securePort enabled="false">443</securePort><countryId>1</countryId>
      <dataCenterInfo class="com.netflix.appinfo.InstanceInfo$DefaultDataCenterInfo"><name>MyOwn</name></dataCenterInfo>
      <metadata class="java.util.Collections$EmptyMap"/></instance>"#;
    let req = Request::post("/eureka/v2/apps/xapp")
        .header(header::CONTENT_TYPE, "application/xml")
        .body(Body::from(body))
        .unwrap();
    assert_eq!(call(&s, req).await.status(), StatusCode::NO_CONTENT);
    let json = text(call(&s, get("/eureka/apps/XAPP/x-1", "application/json")).await).await;
    assert!(
        json.contains(r#""port":{"$":8081,"@enabled":"true"}"#),
        "{json}"
    );
}

#[tokio::test]
async fn empty_registry_lists_an_empty_application_array() {
    let (s, _) = server();
    let json = text(call(&s, get("/eureka/apps", "application/json")).await).await;
    assert_eq!(
        json,
        r#"{"applications":{"versions__delta":"0","apps__hashcode":"","application":[]}}"#
    );
}

#[tokio::test]
async fn a_bad_registration_is_a_400_with_a_reason() {
    let (s, _) = server();
    let body = registration("A", "a-1").replace(r#""hostName":"a-1.local","#, "");
    let req = Request::post("/eureka/apps/A")
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from(body));
    let response = call(&s, req.unwrap()).await;
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    let v: serde_json::Value = serde_json::from_str(&text(response).await).unwrap();
    assert_eq!(v["reason"], "Missing hostname");
    let mismatched = Request::post("/eureka/apps/B")
        .body(Body::from(registration("A", "a-1")))
        .unwrap();
    assert_eq!(call(&s, mismatched).await.status(), StatusCode::BAD_REQUEST);
    let garbage = Request::post("/eureka/apps/A")
        .body(Body::from("<instance><oops>"))
        .unwrap();
    assert_eq!(call(&s, garbage).await.status(), StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn renew_is_200_for_a_lease_and_404_for_a_stranger() {
    let (s, _) = server();
    register(&s, "A", "a-1").await;
    assert_eq!(
        call(
            &s,
            method("PUT", "/eureka/apps/A/a-1?status=UP&lastDirtyTimestamp=100")
        )
        .await
        .status(),
        StatusCode::OK
    );
    assert_eq!(
        call(&s, method("PUT", "/eureka/apps/A/zz")).await.status(),
        StatusCode::NOT_FOUND
    );
    // The client holds a newer record: 404 so that it re-registers.
    assert_eq!(
        call(
            &s,
            method("PUT", "/eureka/apps/A/a-1?lastDirtyTimestamp=200")
        )
        .await
        .status(),
        StatusCode::NOT_FOUND
    );
    let bad = call(
        &s,
        method("PUT", "/eureka/apps/A/a-1?lastDirtyTimestamp=soon"),
    )
    .await;
    assert_eq!(bad.status(), StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn an_older_replicated_renewal_gets_409_with_the_newer_instance() {
    let (s, _) = server();
    register(&s, "A", "a-1").await;
    let req = Request::put("/eureka/apps/A/a-1?lastDirtyTimestamp=50")
        .header(crate::replication::REPLICATION_HEADER, "true")
        .header(header::ACCEPT, "application/json")
        .body(Body::empty())
        .unwrap();
    let response = call(&s, req).await;
    assert_eq!(response.status(), StatusCode::CONFLICT);
    assert!(
        text(response)
            .await
            .contains(r#""lastDirtyTimestamp":"100""#)
    );
}

#[tokio::test]
async fn status_override_and_cancel_show_in_listing_and_delta() {
    let (s, _) = server();
    register(&s, "A", "a-1").await;
    register(&s, "B", "b-1").await;
    assert_eq!(
        call(
            &s,
            method("PUT", "/eureka/apps/A/a-1/status?value=OUT_OF_SERVICE")
        )
        .await
        .status(),
        StatusCode::OK
    );
    let xml = text(call(&s, get("/eureka/apps", "")).await).await;
    assert!(
        xml.contains("<overriddenstatus>OUT_OF_SERVICE</overriddenstatus>"),
        "{xml}"
    );
    assert!(
        xml.contains("<apps__hashcode>OUT_OF_SERVICE_1_UP_1_</apps__hashcode>"),
        "{xml}"
    );
    assert_eq!(
        call(&s, method("PUT", "/eureka/apps/A/a-1/status?value=SLEEPY"))
            .await
            .status(),
        StatusCode::BAD_REQUEST
    );
    assert_eq!(
        call(&s, method("DELETE", "/eureka/apps/A/a-1/status"))
            .await
            .status(),
        StatusCode::OK
    );
    assert_eq!(
        call(&s, method("DELETE", "/eureka/apps/B/b-1"))
            .await
            .status(),
        StatusCode::OK
    );
    assert_eq!(
        call(&s, method("DELETE", "/eureka/apps/B/b-1"))
            .await
            .status(),
        StatusCode::NOT_FOUND
    );
    let delta = text(call(&s, get("/eureka/apps/delta", "application/json")).await).await;
    let v: serde_json::Value = serde_json::from_str(&delta).unwrap();
    assert_eq!(v["applications"]["apps__hashcode"], "UP_1_");
    let apps = v["applications"]["application"].as_array().unwrap();
    let action = |name: &str| {
        apps.iter()
            .find(|a| a["name"] == name)
            .map(|a| a["instance"][0]["actionType"].clone())
            .unwrap()
    };
    assert_eq!(action("A"), "MODIFIED");
    assert_eq!(action("B"), "DELETED");
}

#[tokio::test]
async fn metadata_updates_show_at_once() {
    let (s, _) = server();
    register(&s, "A", "a-1").await;
    let before = text(call(&s, get("/eureka/apps", "application/json")).await).await;
    assert!(!before.contains("zone"));
    assert_eq!(
        call(
            &s,
            method("PUT", "/eureka/apps/A/a-1/metadata?zone=z1&weight=3")
        )
        .await
        .status(),
        StatusCode::OK
    );
    let after = text(call(&s, get("/eureka/apps", "application/json")).await).await;
    assert!(
        after.contains(r#""metadata":{"weight":"3","zone":"z1"}"#),
        "{after}"
    );
    assert_eq!(
        call(&s, method("PUT", "/eureka/apps/A/zz/metadata?a=b"))
            .await
            .status(),
        StatusCode::NOT_FOUND
    );
}

#[tokio::test]
async fn gzip_is_served_when_asked_and_matches_the_plain_body() {
    let (s, _) = server();
    register(&s, "A", "a-1").await;
    let plain = text(call(&s, get("/eureka/apps", "application/json")).await).await;
    let req = Request::get("/eureka/apps")
        .header(header::ACCEPT, "application/json")
        .header(header::ACCEPT_ENCODING, "gzip")
        .body(Body::empty())
        .unwrap();
    let response = call(&s, req).await;
    assert_eq!(response.headers()[header::CONTENT_ENCODING], "gzip");
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    let mut decoded = String::new();
    flate2::read::GzDecoder::new(&bytes[..])
        .read_to_string(&mut decoded)
        .unwrap();
    assert_eq!(decoded, plain);
}

fn guarded(show_details: ShowDetails) -> Server {
    let config = ServerConfig {
        basic_auth: Some(BasicAuth {
            username: "eureka".into(),
            password: "s3cret".into(),
        }),
        show_details,
        ..ServerConfig::default()
    };
    Server::new(config).unwrap()
}

/// `eureka:s3cret`.
const GOOD: &str = "Basic ZXVyZWthOnMzY3JldA==";
/// `eureka:no`.
const WRONG: &str = "Basic ZXVyZWthOm5v";

fn get_as(uri: &str, authorization: Option<&str>) -> Request<Body> {
    let mut req = Request::get(uri);
    if let Some(a) = authorization {
        req = req.header(header::AUTHORIZATION, a);
    }
    req.body(Body::empty()).unwrap()
}

async fn health_as(s: &Server, uri: &str, authorization: Option<&str>) -> serde_json::Value {
    let response = call(s, get_as(uri, authorization)).await;
    assert_eq!(response.status(), StatusCode::OK, "{uri} stays open");
    serde_json::from_str(&text(response).await).unwrap()
}

#[tokio::test]
async fn basic_auth_guards_the_api_the_dashboard_and_prometheus_but_not_health() {
    let s = guarded(ShowDetails::WhenAuthorized);
    for uri in [
        "/eureka/apps",
        "/eureka/v2/apps",
        "/",
        "/actuator/prometheus",
    ] {
        let refused = call(&s, get_as(uri, None)).await;
        assert_eq!(refused.status(), StatusCode::UNAUTHORIZED, "{uri}");
        assert_eq!(
            refused.headers()[header::WWW_AUTHENTICATE],
            "Basic realm=\"eureka\""
        );
        assert_eq!(
            call(&s, get_as(uri, Some(WRONG))).await.status(),
            StatusCode::UNAUTHORIZED,
            "{uri}"
        );
        assert_eq!(
            call(&s, get_as(uri, Some(GOOD))).await.status(),
            StatusCode::OK,
            "{uri}"
        );
    }
    // The scheme is case-insensitive (RFC 7235).
    assert_eq!(
        call(
            &s,
            get_as("/eureka/apps", Some("basic ZXVyZWthOnMzY3JldA=="))
        )
        .await
        .status(),
        StatusCode::OK
    );
    assert_eq!(
        call(&s, get_as("/actuator/health", None)).await.status(),
        StatusCode::OK
    );
}

#[tokio::test]
async fn health_details_show_only_to_authorized_callers_when_authorized() {
    let s = guarded(ShowDetails::WhenAuthorized);
    for uri in ["/actuator/health", "/actuator/health/discovery"] {
        assert_eq!(
            health_as(&s, uri, None).await,
            serde_json::json!({"status": "UP"})
        );
        assert_eq!(
            health_as(&s, uri, Some(WRONG)).await,
            serde_json::json!({"status": "UP"})
        );
        let detailed = health_as(&s, uri, Some(GOOD)).await;
        assert_eq!(
            detailed["components"]["discovery"]["details"]["instances"],
            0
        );
    }
}

#[tokio::test]
async fn health_details_follow_always_and_never() {
    let always = guarded(ShowDetails::Always);
    let anonymous = health_as(&always, "/actuator/health", None).await;
    assert_eq!(anonymous["components"]["discovery"]["status"], "UP");

    let never = guarded(ShowDetails::Never);
    assert_eq!(
        health_as(&never, "/actuator/health", Some(GOOD)).await,
        serde_json::json!({"status": "UP"})
    );
}

#[tokio::test]
async fn without_credentials_health_shows_details_to_everyone() {
    let (s, _) = server();
    let health = health_as(&s, "/actuator/health", None).await;
    assert_eq!(health["components"]["discovery"]["status"], "UP");
    assert_eq!(
        call(&s, get_as("/actuator/prometheus", None))
            .await
            .status(),
        StatusCode::OK
    );
}

#[tokio::test]
async fn health_and_prometheus_report_the_registry() {
    let (s, _) = server();
    register(&s, "A", "a-1").await;
    call(&s, method("PUT", "/eureka/apps/A/a-1")).await;
    let health: serde_json::Value =
        serde_json::from_str(&text(call(&s, get("/actuator/health", "")).await).await).unwrap();
    assert_eq!(health["status"], "UP");
    assert_eq!(health["components"]["discovery"]["details"]["instances"], 1);
    assert_eq!(
        health["components"]["discovery"]["details"]["selfPreservation"]["enabled"],
        true
    );
    let metrics = text(call(&s, get("/actuator/prometheus", "")).await).await;
    assert!(metrics.contains("discovery_instances 1"), "{metrics}");
    assert!(metrics.contains("discovery_renewals_total 1"), "{metrics}");
    assert!(
        metrics.contains("discovery_registrations_total 1"),
        "{metrics}"
    );
}

#[tokio::test]
async fn every_exported_metric_is_documented() {
    let (s, _) = server();
    let metrics = text(call(&s, get("/actuator/prometheus", "")).await).await;
    let doc = include_str!("../../../docs/discovery-server.md");
    let names: Vec<&str> = metrics
        .lines()
        .filter_map(|l| l.strip_prefix("# TYPE "))
        .filter_map(|l| l.split_whitespace().next())
        .collect();
    assert!(names.len() >= 17, "{metrics}");
    for name in names {
        assert!(
            doc.contains(&format!("`{name}`")),
            "{name} is not in docs/discovery-server.md"
        );
    }
}

#[tokio::test]
async fn long_poll_answers_when_the_version_moves() {
    let (s, _) = server();
    let router = s.router();
    let waiter =
        tokio::spawn(router.oneshot(get("/eureka/watch/version?since=0&timeoutMs=5000", "")));
    register(&s, "A", "a-1").await;
    let response = waiter.await.unwrap().unwrap();
    let v: serde_json::Value = serde_json::from_str(&text(response).await).unwrap();
    assert_eq!(v["changed"], true);
    assert_eq!(v["version"], 1);
    let idle = text(call(&s, get("/eureka/watch/version?since=1&timeoutMs=10", "")).await).await;
    assert!(idle.contains(r#""changed":false"#), "{idle}");
}

#[tokio::test]
async fn dashboard_lists_instances_and_self_preservation() {
    let (s, _) = server();
    register(&s, "A", "a-1").await;
    let html = text(call(&s, get("/", "text/html")).await).await;
    assert!(html.contains("data-instance=\"a-1\""), "{html}");
    assert!(html.contains("Self-preservation is"), "{html}");
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn no_registration_body_makes_the_server_fail(body in prop::collection::vec(any::<u8>(), 0..300), xml in any::<bool>()) {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        let status = rt.block_on(async {
            let (s, _) = server();
            let ct = if xml { "application/xml" } else { "application/json" };
            let req = Request::post("/eureka/apps/A").header(header::CONTENT_TYPE, ct).body(Body::from(body)).unwrap();
            call(&s, req).await.status()
        });
        prop_assert!(status == StatusCode::BAD_REQUEST || status == StatusCode::NO_CONTENT, "{}", status);
    }
}
