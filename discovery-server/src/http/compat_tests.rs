//! Eureka compatibility, endpoint by endpoint, against the behaviour of
//! Netflix Eureka's resources (`ApplicationsResource`, `ApplicationResource`,
//! `InstanceResource`, `InstancesResource`, `VIPResource`,
//! `SecureVIPResource`) and `AbstractInstanceRegistry`.

use std::io::Read as _;

use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use axum::response::Response;
use http_body_util::BodyExt as _;
use serde_json::Value;

use super::tests::{call, get, method, register, registration, server, text};
use crate::server::Server;

const PREFIXES: [&str; 2] = ["/eureka", "/eureka/v2"];

fn json(body: &str) -> Value {
    serde_json::from_str(body).unwrap_or_else(|e| panic!("{e}: {body}"))
}

async fn read_json(s: &Server, uri: &str) -> Value {
    let response = call(s, get(uri, "application/json")).await;
    assert_eq!(response.status(), StatusCode::OK, "{uri}");
    json(&text(response).await)
}

fn no_accept(uri: &str) -> Request<Body> {
    Request::get(uri).body(Body::empty()).unwrap()
}

fn with_headers(m: &str, uri: &str, headers: &[(&str, &str)]) -> Request<Body> {
    let mut req = Request::builder().method(m).uri(uri);
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    req.body(Body::empty()).unwrap()
}

/// Registers `id` of `app` with VIP `vip` and secure VIP `svip`.
async fn register_with_vips(s: &Server, app: &str, id: &str, vip: &str, svip: &str) {
    let body = registration(app, id).replace(
        &format!(r#""vipAddress":"{app}""#),
        &format!(r#""vipAddress":"{vip}","secureVipAddress":"{svip}""#),
    );
    let req = Request::post(format!("/eureka/apps/{app}"))
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from(body))
        .unwrap();
    assert_eq!(call(s, req).await.status(), StatusCode::NO_CONTENT);
}

async fn gunzip(response: Response) -> String {
    assert_eq!(response.headers()[header::CONTENT_ENCODING], "gzip");
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    let mut out = String::new();
    flate2::read::GzDecoder::new(&bytes[..])
        .read_to_string(&mut out)
        .unwrap();
    out
}

fn delta_action(delta: &Value, app: &str) -> Value {
    delta["applications"]["application"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["name"] == app)
        .map(|a| a["instance"][0]["actionType"].clone())
        .unwrap_or(Value::Null)
}

#[tokio::test]
async fn status_changes_of_an_unknown_instance_are_404_on_both_prefixes() {
    let (s, _) = server();
    register(&s, "A", "a-1").await;
    for p in PREFIXES {
        for uri in [
            format!("{p}/apps/A/zz/status?value=OUT_OF_SERVICE"),
            format!("{p}/apps/NOPE/a-1/status?value=OUT_OF_SERVICE"),
        ] {
            let put = call(&s, method("PUT", &uri)).await;
            assert_eq!(put.status(), StatusCode::NOT_FOUND, "PUT {uri}");
            let delete = call(&s, method("DELETE", &uri)).await;
            assert_eq!(delete.status(), StatusCode::NOT_FOUND, "DELETE {uri}");
        }
        let uri = format!("{p}/apps/A/zz/status");
        let delete = call(&s, method("DELETE", &uri)).await;
        assert_eq!(delete.status(), StatusCode::NOT_FOUND);
        let metadata = call(&s, method("PUT", &format!("{p}/apps/A/zz/metadata?k=v"))).await;
        assert_eq!(metadata.status(), StatusCode::NOT_FOUND);
    }
    // The known instance was not touched.
    let v = read_json(&s, "/eureka/apps/A/a-1").await;
    assert_eq!(v["instance"]["status"], "UP");
    assert_eq!(v["instance"]["overriddenStatus"], "UNKNOWN");
}

#[tokio::test]
async fn deleting_an_override_with_a_value_sets_that_status() {
    let (s, _) = server();
    register(&s, "A", "a-1").await;
    let put = method("PUT", "/eureka/v2/apps/A/a-1/status?value=OUT_OF_SERVICE");
    assert_eq!(call(&s, put).await.status(), StatusCode::OK);
    let v = read_json(&s, "/eureka/apps/A/a-1").await;
    assert_eq!(v["instance"]["status"], "OUT_OF_SERVICE");
    assert_eq!(v["instance"]["overriddenStatus"], "OUT_OF_SERVICE");

    let delete = method("DELETE", "/eureka/v2/apps/A/a-1/status?value=DOWN");
    assert_eq!(call(&s, delete).await.status(), StatusCode::OK);
    let v = read_json(&s, "/eureka/apps/A/a-1").await;
    assert_eq!(v["instance"]["status"], "DOWN");
    assert_eq!(v["instance"]["overriddenStatus"], "UNKNOWN");
    let delta = read_json(&s, "/eureka/apps/delta").await;
    assert_eq!(delta_action(&delta, "A"), "MODIFIED");
    assert_eq!(delta["applications"]["apps__hashcode"], "DOWN_1_");
    // A value Eureka cannot parse is refused, and changes nothing.
    let bad = method("DELETE", "/eureka/apps/A/a-1/status?value=LATER");
    assert_eq!(call(&s, bad).await.status(), StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn deleting_an_override_without_a_value_shows_what_the_client_reports() {
    let (s, _) = server();
    register(&s, "A", "a-1").await;
    let put = method("PUT", "/eureka/apps/A/a-1/status?value=OUT_OF_SERVICE");
    assert_eq!(call(&s, put).await.status(), StatusCode::OK);
    // The client keeps renewing while out of service: the override holds.
    let renew = method("PUT", "/eureka/apps/A/a-1?status=UP&lastDirtyTimestamp=100");
    assert_eq!(call(&s, renew).await.status(), StatusCode::OK);
    let v = read_json(&s, "/eureka/apps/A/a-1").await;
    assert_eq!(v["instance"]["status"], "OUT_OF_SERVICE");

    let delete = method("DELETE", "/eureka/apps/A/a-1/status");
    assert_eq!(call(&s, delete).await.status(), StatusCode::OK);
    // Eureka shows UNKNOWN until the client re-registers; we know the
    // client reports UP, so the instance is UP at once.
    let v = read_json(&s, "/eureka/apps/A/a-1").await;
    assert_eq!(v["instance"]["status"], "UP");
    assert_eq!(v["instance"]["overriddenStatus"], "UNKNOWN");
    let renew = method("PUT", "/eureka/apps/A/a-1?status=UP&lastDirtyTimestamp=100");
    assert_eq!(call(&s, renew).await.status(), StatusCode::OK);
    let v = read_json(&s, "/eureka/apps/A/a-1").await;
    assert_eq!(v["instance"]["status"], "UP");
}

#[tokio::test]
async fn metadata_updates_show_in_every_read_and_in_the_delta() {
    let (s, _) = server();
    register(&s, "A", "a-1").await;
    register(&s, "B", "b-1").await;
    let put = method(
        "PUT",
        "/eureka/v2/apps/a/a-1/metadata?zone=z1&weight=3&zone=z2",
    );
    assert_eq!(call(&s, put).await.status(), StatusCode::OK);
    let expected = serde_json::json!({"weight": "3", "zone": "z1"});
    for p in PREFIXES {
        let one = read_json(&s, &format!("{p}/apps/A/a-1")).await;
        assert_eq!(one["instance"]["metadata"], expected);
        let by_id = read_json(&s, &format!("{p}/instances/a-1")).await;
        assert_eq!(by_id["instance"]["metadata"], expected);
        let app = read_json(&s, &format!("{p}/apps/A")).await;
        assert_eq!(app["application"]["instance"][0]["metadata"], expected);
        let all = read_json(&s, &format!("{p}/apps")).await;
        let a = &all["applications"]["application"][0];
        assert_eq!(
            (&a["name"], &a["instance"][0]["metadata"]),
            (&"A".into(), &expected)
        );
    }
    let xml = text(call(&s, get("/eureka/apps/A/a-1", "application/xml")).await).await;
    assert!(
        xml.contains("<metadata>\n    <weight>3</weight>\n    <zone>z1</zone>\n  </metadata>"),
        "{xml}"
    );
    let delta = read_json(&s, "/eureka/apps/delta").await;
    assert_eq!(delta_action(&delta, "A"), "MODIFIED");
    assert_eq!(delta_action(&delta, "B"), "ADDED");
    let apps = delta["applications"]["application"].as_array().unwrap();
    let a = apps.iter().find(|a| a["name"] == "A").unwrap();
    assert_eq!(a["instance"][0]["metadata"], expected);

    // No entries: Eureka answers 200 and changes nothing.
    let empty = method("PUT", "/eureka/apps/A/a-1/metadata");
    assert_eq!(call(&s, empty).await.status(), StatusCode::OK);
    let one = read_json(&s, "/eureka/apps/A/a-1").await;
    assert_eq!(one["instance"]["metadata"], expected);
}

#[tokio::test]
async fn instances_vips_and_svips_answer_in_json_and_xml_on_both_prefixes() {
    let (s, _) = server();
    register_with_vips(&s, "ORDERS", "o-1", "orders,orders-v2", "orders-secure").await;
    register_with_vips(&s, "BILLING", "b-1", "billing", "billing-secure").await;
    for p in PREFIXES {
        let by_id = read_json(&s, &format!("{p}/instances/o-1")).await;
        assert_eq!(by_id["instance"]["app"], "ORDERS");
        assert_eq!(by_id["instance"]["secureVipAddress"], "orders-secure");
        let xml = text(call(&s, get(&format!("{p}/instances/o-1"), "application/xml")).await).await;
        assert!(
            xml.starts_with("<instance>\n  <instanceId>o-1</instanceId>"),
            "{xml}"
        );
        let missing = call(&s, get(&format!("{p}/instances/zz"), "application/json")).await;
        assert_eq!(missing.status(), StatusCode::NOT_FOUND);

        for (path, vip) in [("vips", "orders-v2"), ("svips", "orders-secure")] {
            let v = read_json(&s, &format!("{p}/{path}/{vip}")).await;
            let apps = v["applications"]["application"].as_array().unwrap();
            assert_eq!(apps.len(), 1, "{v}");
            assert_eq!(apps[0]["name"], "ORDERS");
            assert_eq!(apps[0]["instance"][0]["instanceId"], "o-1");
            assert_eq!(v["applications"]["apps__hashcode"], "UP_1_");
            assert_eq!(v["applications"]["versions__delta"], "-1");
            let xml = text(call(&s, get(&format!("{p}/{path}/{vip}"), "")).await).await;
            assert!(xml.starts_with("<applications>\n  <versions__delta>-1</versions__delta>\n  <apps__hashcode>UP_1_</apps__hashcode>\n<application>\n  <name>ORDERS</name>"), "{xml}");
            assert!(!xml.contains("BILLING"), "{xml}");
        }
        // An unknown VIP is an empty listing, not a 404, as Eureka.
        for path in ["vips", "svips"] {
            let empty = call(&s, get(&format!("{p}/{path}/nothing"), "application/json")).await;
            assert_eq!(empty.status(), StatusCode::OK);
            assert_eq!(
                text(empty).await,
                r#"{"applications":{"versions__delta":"-1","apps__hashcode":"","application":[]}}"#
            );
            let empty = call(&s, get(&format!("{p}/{path}/nothing"), "application/xml")).await;
            assert_eq!(empty.status(), StatusCode::OK);
            assert_eq!(
                text(empty).await,
                "<applications>\n  <versions__delta>-1</versions__delta>\n  <apps__hashcode></apps__hashcode>\n</applications>\n"
            );
        }
    }
    // A plain VIP does not match a secure one.
    let v = read_json(&s, "/eureka/vips/orders-secure").await;
    assert_eq!(v["applications"]["application"], serde_json::json!([]));
}

#[tokio::test]
async fn application_names_are_case_insensitive_on_every_endpoint() {
    let (s, _) = server();
    let req = Request::post("/eureka/apps/orders")
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from(registration("orders", "o-1")))
        .unwrap();
    assert_eq!(call(&s, req).await.status(), StatusCode::NO_CONTENT);
    for p in PREFIXES {
        for app in ["orders", "Orders", "ORDERS"] {
            let one = read_json(&s, &format!("{p}/apps/{app}")).await;
            assert_eq!(one["application"]["name"], "ORDERS");
            let inst = read_json(&s, &format!("{p}/apps/{app}/o-1")).await;
            assert_eq!(inst["instance"]["app"], "ORDERS");
            for (m, uri) in [
                (
                    "PUT",
                    format!("{p}/apps/{app}/o-1?status=UP&lastDirtyTimestamp=100"),
                ),
                (
                    "PUT",
                    format!("{p}/apps/{app}/o-1/status?value=OUT_OF_SERVICE"),
                ),
                ("DELETE", format!("{p}/apps/{app}/o-1/status?value=UP")),
                ("PUT", format!("{p}/apps/{app}/o-1/metadata?case={app}")),
            ] {
                assert_eq!(
                    call(&s, method(m, &uri)).await.status(),
                    StatusCode::OK,
                    "{m} {uri}"
                );
            }
        }
    }
    let inst = read_json(&s, "/eureka/apps/ORDERS/o-1").await;
    assert_eq!(inst["instance"]["status"], "UP");
    assert_eq!(inst["instance"]["metadata"]["case"], "ORDERS");
    let all = read_json(&s, "/eureka/apps").await;
    assert_eq!(
        all["applications"]["application"].as_array().unwrap().len(),
        1
    );
    let cancel = method("DELETE", "/eureka/v2/apps/oRdErS/o-1");
    assert_eq!(call(&s, cancel).await.status(), StatusCode::OK);
    let gone = call(&s, get("/eureka/apps/orders", "application/json")).await;
    assert_eq!(gone.status(), StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn json_only_when_accept_says_json_on_every_read() {
    let (s, _) = server();
    register_with_vips(&s, "A", "a-1", "a", "a-s").await;
    for p in PREFIXES {
        for path in [
            "/apps",
            "/apps/delta",
            "/apps/A",
            "/apps/A/a-1",
            "/instances/a-1",
            "/vips/a",
            "/svips/a-s",
        ] {
            let uri = format!("{p}{path}");
            for (accept, format) in [
                (Some("application/json"), "application/json"),
                (Some("application/json;charset=UTF-8"), "application/json"),
                (Some("application/xml"), "application/xml"),
                (Some("text/xml"), "application/xml"),
                (Some("*/*"), "application/xml"),
                (None, "application/xml"),
            ] {
                let req = match accept {
                    Some(a) => get(&uri, a),
                    None => no_accept(&uri),
                };
                let response = call(&s, req).await;
                assert_eq!(response.status(), StatusCode::OK, "{uri} {accept:?}");
                assert_eq!(
                    response.headers()[header::CONTENT_TYPE],
                    format,
                    "{uri} {accept:?}"
                );
                let body = text(response).await;
                let first = body.as_bytes()[0];
                let want_first = if format == "application/json" {
                    b'{'
                } else {
                    b'<'
                };
                assert_eq!(first, want_first, "{uri} {accept:?}: {body}");
            }
        }
    }
}

#[tokio::test]
async fn every_read_is_gzipped_when_asked() {
    let (s, _) = server();
    register_with_vips(&s, "A", "a-1", "a", "a-s").await;
    for path in [
        "/eureka/apps",
        "/eureka/apps/delta",
        "/eureka/apps/A",
        "/eureka/apps/A/a-1",
        "/eureka/instances/a-1",
        "/eureka/v2/vips/a",
        "/eureka/v2/svips/a-s",
    ] {
        for accept in ["application/json", "application/xml"] {
            let plain = text(call(&s, get(path, accept)).await).await;
            let gz = with_headers(
                "GET",
                path,
                &[("accept", accept), ("accept-encoding", "gzip, deflate")],
            );
            assert_eq!(gunzip(call(&s, gz).await).await, plain, "{path} {accept}");
        }
    }
}

#[tokio::test]
async fn head_answers_like_get_without_a_body() {
    let (s, _) = server();
    register(&s, "A", "a-1").await;
    for path in [
        "/eureka/apps",
        "/eureka/v2/apps/A",
        "/eureka/apps/A/a-1",
        "/eureka/instances/a-1",
    ] {
        let response = call(
            &s,
            with_headers("HEAD", path, &[("accept", "application/json")]),
        )
        .await;
        assert_eq!(response.status(), StatusCode::OK, "{path}");
        assert_eq!(response.headers()[header::CONTENT_TYPE], "application/json");
        assert_eq!(text(response).await, "", "{path}");
    }
    let missing = call(&s, method("HEAD", "/eureka/apps/NOPE")).await;
    assert_eq!(missing.status(), StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn a_registration_that_is_neither_json_nor_xml_is_415() {
    let (s, _) = server();
    for content_type in [
        "text/plain",
        "application/x-www-form-urlencoded",
        "application/octet-stream",
    ] {
        let req = Request::post("/eureka/apps/A")
            .header(header::CONTENT_TYPE, content_type)
            .body(Body::from(registration("A", "a-1")))
            .unwrap();
        let response = call(&s, req).await;
        assert_eq!(
            response.status(),
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "{content_type}"
        );
        let v = json(&text(response).await);
        assert!(v["reason"].as_str().unwrap().contains(content_type), "{v}");
    }
    let all = read_json(&s, "/eureka/apps").await;
    assert_eq!(all["applications"]["application"], serde_json::json!([]));
    // JSON with a charset, XML as text/xml, and no content type at all
    // (sniffed) are accepted.
    for (content_type, id) in [
        (Some("application/json; charset=UTF-8"), "a-1"),
        (None, "a-2"),
    ] {
        let mut req = Request::post("/eureka/v2/apps/A");
        if let Some(ct) = content_type {
            req = req.header(header::CONTENT_TYPE, ct);
        }
        let req = req.body(Body::from(registration("A", id))).unwrap();
        assert_eq!(call(&s, req).await.status(), StatusCode::NO_CONTENT);
    }
    let xml = text(call(&s, get("/eureka/apps/A/a-1", "application/xml")).await).await;
    let req = Request::post("/eureka/apps/A")
        .header(header::CONTENT_TYPE, "text/xml")
        .body(Body::from(xml.replace("a-1", "a-3")))
        .unwrap();
    assert_eq!(call(&s, req).await.status(), StatusCode::NO_CONTENT);
    // Malformed JSON is a 400 with a reason, not a 415 or a 500.
    let req = Request::post("/eureka/apps/A")
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from(r#"{"instance":{"#))
        .unwrap();
    let response = call(&s, req).await;
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    assert!(json(&text(response).await)["reason"].is_string());
}

#[tokio::test]
async fn an_empty_metadata_map_is_written_as_eureka_writes_it() {
    let (s, _) = server();
    register(&s, "A", "a-1").await;
    for path in [
        "/eureka/apps",
        "/eureka/apps/A",
        "/eureka/apps/A/a-1",
        "/eureka/instances/a-1",
    ] {
        let body = text(call(&s, get(path, "application/json")).await).await;
        assert!(
            body.contains(r#","metadata":{"@class":"java.util.Collections$EmptyMap"},"#),
            "{path}: {body}"
        );
        let body = text(call(&s, get(path, "application/xml")).await).await;
        assert!(
            body.contains("\n  <metadata class=\"java.util.Collections$EmptyMap\"/>\n"),
            "{path}: {body}"
        );
    }
}

#[tokio::test]
async fn compact_instances_when_x_eureka_accept_asks() {
    let (s, _) = server();
    register(&s, "A", "a-1").await;
    call(&s, method("PUT", "/eureka/apps/A/a-1/metadata?zone=z1")).await;
    let compact = [
        ("accept", "application/json"),
        ("x-eureka-accept", "compact"),
    ];
    for path in [
        "/eureka/apps",
        "/eureka/apps/delta",
        "/eureka/v2/apps/A",
        "/eureka/vips/A",
    ] {
        let body = text(call(&s, with_headers("GET", path, &compact)).await).await;
        let v = json(&body);
        let root = v.as_object().unwrap().values().next().unwrap();
        let app = if root.get("application").is_some_and(Value::is_array) {
            &root["application"][0]
        } else {
            root
        };
        let inst = app["instance"][0].as_object().unwrap();
        let mut keys: Vec<&str> = inst.keys().map(String::as_str).collect();
        keys.sort_unstable();
        let mut expected = vec![
            "instanceId",
            "hostName",
            "app",
            "ipAddr",
            "status",
            "port",
            "securePort",
            "dataCenterInfo",
            "vipAddress",
            "lastUpdatedTimestamp",
            "actionType",
        ];
        expected.sort_unstable();
        assert_eq!(keys, expected, "{path}: {body}");
    }
    let one = text(call(&s, with_headers("GET", "/eureka/apps/A/a-1", &compact)).await).await;
    assert!(
        !one.contains("leaseInfo") && one.contains(r#""port":{"$":8080"#),
        "{one}"
    );
    let xml = with_headers("GET", "/eureka/apps", &[("x-eureka-accept", "compact")]);
    let xml = text(call(&s, xml).await).await;
    assert!(
        !xml.contains("<leaseInfo>") && xml.contains("<port enabled=\"true\">8080</port>"),
        "{xml}"
    );
    // The full listing, plain and gzipped, is still full afterwards: the
    // two shapes are cached apart.
    for headers in [
        vec![("accept", "application/json"), ("x-eureka-accept", "full")],
        vec![("accept", "application/json")],
    ] {
        let full = text(call(&s, with_headers("GET", "/eureka/apps", &headers)).await).await;
        assert!(
            full.contains(r#""leaseInfo""#) && full.contains(r#""zone":"z1""#),
            "{full}"
        );
    }
    let gz = [
        ("accept", "application/json"),
        ("x-eureka-accept", "compact"),
        ("accept-encoding", "gzip"),
    ];
    let gz = gunzip(call(&s, with_headers("GET", "/eureka/apps", &gz)).await).await;
    assert!(!gz.contains("leaseInfo"), "{gz}");
    let gz_full = [("accept", "application/json"), ("accept-encoding", "gzip")];
    let gz_full = gunzip(call(&s, with_headers("GET", "/eureka/apps", &gz_full)).await).await;
    assert!(gz_full.contains("leaseInfo"), "{gz_full}");
}

#[tokio::test]
async fn the_regions_parameter_lists_the_local_registry() {
    let (s, _) = server();
    register(&s, "A", "a-1").await;
    let plain = text(call(&s, get("/eureka/apps", "application/json")).await).await;
    for uri in [
        "/eureka/apps?regions=us-east-1",
        "/eureka/apps/delta?regions=us-east-1,eu-west-1",
    ] {
        let response = call(&s, get(uri, "application/json")).await;
        assert_eq!(response.status(), StatusCode::OK, "{uri}");
        let body = text(response).await;
        if uri.starts_with("/eureka/apps?") {
            assert_eq!(body, plain);
        } else {
            assert!(body.contains(r#""instanceId":"a-1""#), "{body}");
        }
    }
}

#[tokio::test]
async fn a_gzipped_registration_is_inflated_as_jersey_does() {
    use std::io::Write as _;
    let (s, _) = server();
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    encoder
        .write_all(registration("A", "a-1").as_bytes())
        .unwrap();
    let gzipped = encoder.finish().unwrap();
    let req = Request::post("/eureka/v2/apps/A")
        .header(header::CONTENT_TYPE, "application/json")
        .header(header::CONTENT_ENCODING, "gzip")
        .body(Body::from(gzipped.clone()))
        .unwrap();
    assert_eq!(call(&s, req).await.status(), StatusCode::NO_CONTENT);
    let v = read_json(&s, "/eureka/apps/A/a-1").await;
    assert_eq!(v["instance"]["hostName"], "a-1.local");
    // A body that claims gzip but is not: 400 with a reason.
    let req = Request::post("/eureka/apps/A")
        .header(header::CONTENT_TYPE, "application/json")
        .header(header::CONTENT_ENCODING, "gzip")
        .body(Body::from(registration("A", "a-2")))
        .unwrap();
    let response = call(&s, req).await;
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    assert!(
        json(&text(response).await)["reason"]
            .as_str()
            .unwrap()
            .contains("gzip")
    );
}

#[tokio::test]
async fn deleting_an_override_that_is_not_there_changes_nothing() {
    let (s, _) = server();
    register(&s, "A", "a-1").await;
    // The client itself reports DOWN; no operator override exists.
    let renew = method(
        "PUT",
        "/eureka/apps/A/a-1?status=DOWN&lastDirtyTimestamp=100",
    );
    assert_eq!(call(&s, renew).await.status(), StatusCode::OK);
    let before = read_json(&s, "/eureka/apps").await;
    assert_eq!(before["applications"]["apps__hashcode"], "DOWN_1_");
    let delete = method("DELETE", "/eureka/apps/A/a-1/status?value=UP");
    assert_eq!(call(&s, delete).await.status(), StatusCode::OK);
    let after = read_json(&s, "/eureka/apps").await;
    assert_eq!(after, before, "no status change, no version change");
}
