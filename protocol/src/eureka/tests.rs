//! Codec tests: Eureka's exact shapes, lenient reading, round trips, and
//! decoders that never panic.

use proptest::prelude::*;

use super::*;

fn sample() -> InstanceInfo {
    InstanceInfo {
        instance_id: "host-1:orders:8080".into(),
        host_name: "host-1".into(),
        app: "ORDERS".into(),
        ip_addr: "10.0.0.7".into(),
        status: InstanceStatus::Up,
        overridden_status: InstanceStatus::Unknown,
        port: PortWrapper::enabled(8080),
        secure_port: PortWrapper::disabled(443),
        country_id: 1,
        lease_info: Some(LeaseInfo {
            registration_timestamp: 1_700_000_000_000,
            last_renewal_timestamp: 1_700_000_030_000,
            service_up_timestamp: 1_700_000_000_001,
            ..LeaseInfo::default()
        }),
        home_page_url: Some("http://host-1:8080/".into()),
        status_page_url: Some("http://host-1:8080/actuator/info".into()),
        health_check_url: Some("http://host-1:8080/actuator/health".into()),
        vip_address: Some("orders".into()),
        secure_vip_address: Some("orders".into()),
        last_updated_timestamp: 1_700_000_000_002,
        last_dirty_timestamp: 1_700_000_000_003,
        action_type: Some(ActionType::Added),
        ..InstanceInfo::default()
    }
}

#[test]
fn json_instance_has_eurekas_shape() {
    let text = String::from_utf8(json::encode_instance(&sample())).unwrap();
    let expected = concat!(
        r#"{"instance":{"instanceId":"host-1:orders:8080","hostName":"host-1","app":"ORDERS","ipAddr":"10.0.0.7","#,
        r#""status":"UP","overriddenStatus":"UNKNOWN","port":{"$":8080,"@enabled":"true"},"#,
        r#""securePort":{"$":443,"@enabled":"false"},"countryId":1,"#,
        r#""dataCenterInfo":{"@class":"com.netflix.appinfo.InstanceInfo$DefaultDataCenterInfo","name":"MyOwn"},"#,
        r#""leaseInfo":{"renewalIntervalInSecs":30,"durationInSecs":90,"registrationTimestamp":1700000000000,"#,
        r#""lastRenewalTimestamp":1700000030000,"evictionTimestamp":0,"serviceUpTimestamp":1700000000001},"#,
        r#""metadata":{"@class":"java.util.Collections$EmptyMap"},"homePageUrl":"http://host-1:8080/","#,
        r#""statusPageUrl":"http://host-1:8080/actuator/info","healthCheckUrl":"http://host-1:8080/actuator/health","#,
        r#""vipAddress":"orders","secureVipAddress":"orders","isCoordinatingDiscoveryServer":"false","#,
        r#""lastUpdatedTimestamp":"1700000000002","lastDirtyTimestamp":"1700000000003","actionType":"ADDED"}}"#
    );
    assert_eq!(text, expected);
    // And it is valid JSON.
    serde_json::from_str::<serde_json::Value>(&text).unwrap();
}

#[test]
fn compact_detail_writes_eurekas_mini_instance() {
    let info = InstanceInfo {
        metadata: [("zone".to_owned(), "z1".to_owned())].into_iter().collect(),
        ..sample()
    };
    let view = InstanceView {
        detail: Detail::Compact,
        ..InstanceView::from(&info)
    };
    let mut out = Vec::new();
    json::write_instance_document(&mut out, view);
    let text = String::from_utf8(out).unwrap();
    let expected = concat!(
        r#"{"instance":{"instanceId":"host-1:orders:8080","hostName":"host-1","app":"ORDERS","ipAddr":"10.0.0.7","#,
        r#""status":"UP","port":{"$":8080,"@enabled":"true"},"securePort":{"$":443,"@enabled":"false"},"#,
        r#""dataCenterInfo":{"@class":"com.netflix.appinfo.InstanceInfo$DefaultDataCenterInfo","name":"MyOwn"},"#,
        r#""vipAddress":"orders","secureVipAddress":"orders","lastUpdatedTimestamp":"1700000000002","actionType":"ADDED"}}"#
    );
    assert_eq!(text, expected);
    let mut out = Vec::new();
    xml::write_instance(&mut out, view);
    let text = String::from_utf8(out).unwrap();
    for absent in [
        "leaseInfo",
        "metadata",
        "overriddenstatus",
        "countryId",
        "homePageUrl",
        "lastDirtyTimestamp",
        "isCoordinating",
    ] {
        assert!(!text.contains(absent), "{absent} in {text}");
    }
    assert!(
        text.contains(r#"<port enabled="true">8080</port>"#),
        "{text}"
    );
    assert!(text.contains("<vipAddress>orders</vipAddress>"), "{text}");
    let back = xml::decode_instance(text.as_bytes()).unwrap();
    assert_eq!(
        (back.port.port, back.status, back.lease_info),
        (8080, InstanceStatus::Up, None)
    );
    assert_eq!(Detail::from_header(Some(" Compact")), Detail::Compact);
    assert_eq!(Detail::from_header(Some("full")), Detail::Full);
    assert_eq!(Detail::from_header(None), Detail::Full);
}

#[test]
fn empty_applications_write_an_empty_application_array() {
    let apps = Applications {
        version_delta: 3,
        apps_hashcode: String::new(),
        applications: vec![],
    };
    let text = String::from_utf8(json::encode_applications(&apps)).unwrap();
    assert_eq!(
        text,
        r#"{"applications":{"versions__delta":"3","apps__hashcode":"","application":[]}}"#
    );
    let xml_text = String::from_utf8(xml::encode_applications(&apps)).unwrap();
    assert!(xml_text.starts_with("<applications>"), "{xml_text}");
    assert!(xml_text.contains("<versions__delta>3</versions__delta>"));
    assert!(xml_text.contains("<apps__hashcode></apps__hashcode>"));
}

#[test]
fn xml_instance_has_xstreams_shape() {
    let mut info = sample();
    info.metadata.insert("zone".into(), "a&b".into());
    info.overridden_status = InstanceStatus::OutOfService;
    let text = String::from_utf8(xml::encode_instance(&info)).unwrap();
    for needle in [
        "<instance>",
        "<instanceId>host-1:orders:8080</instanceId>",
        "<overriddenstatus>OUT_OF_SERVICE</overriddenstatus>",
        r#"<port enabled="true">8080</port>"#,
        r#"<securePort enabled="false">443</securePort>"#,
        r#"<dataCenterInfo class="com.netflix.appinfo.InstanceInfo$DefaultDataCenterInfo">"#,
        "<name>MyOwn</name>",
        "<renewalIntervalInSecs>30</renewalIntervalInSecs>",
        "<serviceUpTimestamp>1700000000001</serviceUpTimestamp>",
        "<zone>a&amp;b</zone>",
        "<isCoordinatingDiscoveryServer>false</isCoordinatingDiscoveryServer>",
        "<lastDirtyTimestamp>1700000000003</lastDirtyTimestamp>",
        "<actionType>ADDED</actionType>",
    ] {
        assert!(text.contains(needle), "missing {needle} in\n{text}");
    }
    let empty = String::from_utf8(xml::encode_instance(&sample())).unwrap();
    assert!(empty.contains(r#"<metadata class="java.util.Collections$EmptyMap"/>"#));
}

#[test]
fn applications_round_trip_in_both_formats_with_hashcode() {
    let mut down = sample();
    down.instance_id = "host-2:orders:8080".into();
    down.status = InstanceStatus::Down;
    let mut apps = Applications {
        version_delta: 7,
        apps_hashcode: String::new(),
        applications: vec![Application {
            name: "ORDERS".into(),
            instances: vec![sample(), down],
        }],
    };
    apps.apps_hashcode = apps.reconcile_hashcode();
    assert_eq!(apps.apps_hashcode, "DOWN_1_UP_1_");
    assert_eq!(
        apps.application("orders").map(|a| a.instances.len()),
        Some(2)
    );
    assert_eq!(apps.instances().count(), 2);
    assert_eq!(
        json::decode_applications(&json::encode_applications(&apps)).unwrap(),
        apps
    );
    assert_eq!(
        xml::decode_applications(&xml::encode_applications(&apps)).unwrap(),
        apps
    );
    let app = &apps.applications[0];
    assert_eq!(
        &json::decode_application(&json::encode_application(app)).unwrap(),
        app
    );
    assert_eq!(
        &xml::decode_application(&xml::encode_application(app)).unwrap(),
        app
    );
}

#[test]
fn lenient_json_accepts_what_clients_send() {
    // Strings for numbers, bool for @enabled, legacy overriddenstatus,
    // value/enabled/class without sigils, nulls, unknown fields, one
    // instance instead of an array.
    let body = br#"{"applications":{"versions__delta":2,"apps__hashcode":"UP_1_","application":
      {"name":"SVC","instance":{"instanceId":"i1","hostName":"h","app":"SVC","ipAddr":"1.2.3.4",
       "status":"up","overriddenstatus":"OUT_OF_SERVICE","port":{"value":"5555","enabled":"true"},
       "securePort":{"$":443,"@enabled":false},"countryId":"1",
       "dataCenterInfo":{"class":"com.netflix.appinfo.InstanceInfo$DefaultDataCenterInfo","name":"MyOwn"},
       "leaseInfo":{"renewalIntervalInSecs":"5","durationInSecs":15,"registrationTimestamp":null},
       "metadata":{"class":"java.util.Collections$EmptyMap"},"homePageUrl":null,"someNewField":{"x":1},
       "lastDirtyTimestamp":"12","isCoordinatingDiscoveryServer":false}}}}"#;
    let apps = json::decode_applications(body).unwrap();
    assert_eq!(apps.version_delta, 2);
    let i = &apps.applications[0].instances[0];
    assert_eq!(i.status, InstanceStatus::Up);
    assert_eq!(i.overridden_status, InstanceStatus::OutOfService);
    assert_eq!(i.port, PortWrapper::enabled(5555));
    assert_eq!(i.secure_port, PortWrapper::disabled(443));
    assert_eq!(i.lease_info.unwrap().renewal_interval_in_secs, 5);
    assert_eq!(i.lease_info.unwrap().duration_in_secs, 15);
    assert!(i.metadata.is_empty());
    assert_eq!(i.home_page_url, None);
    assert_eq!(i.last_dirty_timestamp, 12);
}

#[test]
fn py_eureka_client_registration_body_decodes() {
    // The body py-eureka-client 0.13 posts (json.dumps of its dict).
    let body = br#"{"instance": {"instanceId": "127.0.0.1:py-app:9090", "hostName": "127.0.0.1", "app": "PY-APP",
      "ipAddr": "127.0.0.1", "status": "UP", "overriddenstatus": "UNKNOWN",
      "port": {"$": 9090, "@enabled": "true"}, "securePort": {"$": 443, "@enabled": "false"}, "countryId": 1,
      "dataCenterInfo": {"@class": "com.netflix.appinfo.InstanceInfo$DefaultDataCenterInfo", "name": "MyOwn"},
      "leaseInfo": {"renewalIntervalInSecs": 30, "durationInSecs": 90, "registrationTimestamp": 0,
        "lastRenewalTimestamp": 0, "evictionTimestamp": 0, "serviceUpTimestamp": 0},
      "metadata": {"management.port": "9090"}, "homePageUrl": "http://127.0.0.1:9090/",
      "statusPageUrl": "http://127.0.0.1:9090/info", "healthCheckUrl": "http://127.0.0.1:9090/health",
      "secureHealthCheckUrl": "", "vipAddress": "py-app", "secureVipAddress": "py-app",
      "lastUpdatedTimestamp": "1700000000000", "lastDirtyTimestamp": "1700000000000",
      "isCoordinatingDiscoveryServer": "false"}}"#;
    let mut i = json::decode_instance(body).unwrap();
    i.validate().unwrap();
    assert_eq!(i.metadata.get("management.port"), Some("9090"));
    assert_eq!(i.secure_health_check_url, None);
    assert_eq!(i.last_dirty_timestamp, 1_700_000_000_000);
}

#[test]
fn xml_registration_from_the_java_client_decodes() {
    let body = br#"<?xml version="1.0" encoding="UTF-8"?>
<instance>
    <instanceId>tony:ribbon:5555</instanceId>
    <hostName>tony</hostName><app>RIBBON</app><ipAddr>192.168.1.7</ipAddr>
    <status>STARTING</status><overriddenstatus>UNKNOWN</overriddenstatus>
    <port enabled="true">5555</port><securePort enabled="false">443</securePort>
    <countryId>1</countryId>
    <dataCenterInfo class="com.netflix.appinfo.InstanceInfo$DefaultDataCenterInfo"><name>MyOwn</name></dataCenterInfo>
    <leaseInfo><renewalIntervalInSecs>30</renewalIntervalInSecs><durationInSecs>90</durationInSecs></leaseInfo>
    <metadata><zone>eu-1</zone><empty/></metadata>
    <vipAddress>ribbon</vipAddress>
    <lastDirtyTimestamp>1523714720912</lastDirtyTimestamp>
</instance>"#;
    let mut i = xml::decode_instance(body).unwrap();
    i.validate().unwrap();
    assert_eq!(i.status, InstanceStatus::Starting);
    assert_eq!(i.port, PortWrapper::enabled(5555));
    assert_eq!(i.metadata.get("zone"), Some("eu-1"));
    assert_eq!(i.metadata.get("empty"), Some(""));
    assert_eq!(i.vip_address.as_deref(), Some("ribbon"));
}

#[test]
fn validation_reports_eurekas_reasons() {
    let reason = |mut i: InstanceInfo| i.validate().unwrap_err().to_string();
    assert_eq!(
        reason(InstanceInfo {
            host_name: String::new(),
            ..InstanceInfo::default()
        }),
        "Missing instanceId"
    );
    assert_eq!(
        reason(InstanceInfo {
            instance_id: "x".into(),
            ..InstanceInfo::default()
        }),
        "Missing hostname"
    );
    let mut no_dc = sample();
    no_dc.data_center_info.name.clear();
    assert_eq!(reason(no_dc), "Missing dataCenterInfo");
    let no_dc_name = br#"{"instance":{"instanceId":"a","hostName":"h","app":"A","ipAddr":"1","dataCenterInfo":{"@class":"x"}}}"#;
    assert_eq!(
        json::decode_instance(no_dc_name).unwrap_err().to_string(),
        "Missing dataCenterInfo Name"
    );
    // A missing instanceId falls back to the host name, as Eureka's getId() does.
    let mut no_id = sample();
    no_id.instance_id.clear();
    no_id.validate().unwrap();
    assert_eq!(no_id.instance_id, "host-1");
}

#[test]
fn malformed_bodies_are_errors_with_reasons() {
    assert!(matches!(
        json::decode_instance(b"{"),
        Err(DecodeError::Syntax { format: "JSON", .. })
    ));
    assert!(matches!(
        xml::decode_instance(b"<instance><a></instance>"),
        Err(DecodeError::Syntax { .. })
    ));
    assert!(json::decode_instance(br#"{"instance":{"port":{"$":99999}}}"#).is_err());
    assert!(json::decode_instance(b"[1,2]").is_err());
    let deep = "<a>".repeat(100) + &"</a>".repeat(100);
    assert!(xml::decode_instance(deep.as_bytes()).is_err());
}

fn word() -> impl Strategy<Value = String> {
    "[a-zA-Z0-9]([a-zA-Z0-9 .:/&<>\"'_\\-]{0,12}[a-zA-Z0-9])?"
}

fn status() -> impl Strategy<Value = InstanceStatus> {
    prop::sample::select(InstanceStatus::ALL_BY_NAME.to_vec())
}

prop_compose! {
    fn arb_instance()(
        ids in (word(), word(), word(), word()),
        sid in prop::option::of("[a-m]{1,5}"),
        statuses in (status(), status()),
        ports in (any::<u16>(), any::<bool>(), any::<u16>(), any::<bool>()),
        country in any::<i32>(),
        dc_name in word(),
        metadata in prop::collection::btree_map("[a-z][a-z0-9._\\-]{0,8}", word(), 0..4).prop_map(|m| m.into_iter().collect::<Metadata>()),
        lease in prop::option::of((1u32..1000, 1u32..1000, any::<i64>(), any::<i64>(), any::<i64>(), any::<i64>())),
        urls in (prop::option::of(word()), prop::option::of(word()), prop::option::of(word())),
        flags in (any::<bool>(), any::<i64>(), any::<i64>()),
        action in prop::option::of(prop::sample::select(vec![ActionType::Added, ActionType::Modified, ActionType::Deleted])),
    ) -> InstanceInfo {
        InstanceInfo {
            instance_id: ids.0, host_name: ids.1, app: ids.2, ip_addr: ids.3, sid,
            app_group_name: None,
            status: statuses.0, overridden_status: statuses.1,
            port: PortWrapper { port: ports.0, enabled: ports.1 },
            secure_port: PortWrapper { port: ports.2, enabled: ports.3 },
            country_id: country,
            data_center_info: DataCenterInfo { class: DEFAULT_DATA_CENTER_CLASS.into(), name: dc_name, metadata: Metadata::new() },
            lease_info: lease.map(|l| LeaseInfo {
                renewal_interval_in_secs: l.0, duration_in_secs: l.1, registration_timestamp: l.2,
                last_renewal_timestamp: l.3, eviction_timestamp: l.4, service_up_timestamp: l.5,
            }),
            metadata,
            home_page_url: urls.0, status_page_url: urls.1, health_check_url: urls.2,
            secure_health_check_url: None, vip_address: Some("v".into()), secure_vip_address: None,
            is_coordinating_discovery_server: flags.0,
            last_updated_timestamp: flags.1, last_dirty_timestamp: flags.2,
            action_type: action, asg_name: None,
        }
    }
}

proptest! {
    #[test]
    fn any_instance_round_trips_through_json_and_xml(info in arb_instance()) {
        prop_assert_eq!(&json::decode_instance(&json::encode_instance(&info)).unwrap(), &info);
        prop_assert_eq!(&xml::decode_instance(&xml::encode_instance(&info)).unwrap(), &info);
    }

    #[test]
    fn a_parsed_value_decodes_as_its_bytes_do(info in arb_instance()) {
        let bytes = json::encode_instance(&info);
        let value: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
        prop_assert_eq!(json::decode_instance_value(&value).unwrap(), json::decode_instance(&bytes).unwrap());
        prop_assert_eq!(json::decode_instance_value(&value["instance"]).unwrap(), info);
    }

    #[test]
    fn arbitrary_bytes_never_panic_the_decoders(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
        let _ = json::decode_instance(&bytes);
        let _ = json::decode_applications(&bytes);
        let _ = xml::decode_instance(&bytes);
        let _ = xml::decode_applications(&bytes);
    }

    #[test]
    fn arbitrary_markup_never_panics_the_decoders(
        text in "(<[a-z@$]{1,3}( [a-z]{1,2}=\"[a-z0-9]{0,3}\")?/?>|</[a-z]{1,3}>|[{}\\[\\]:,\"a-z0-9$@ ]){0,40}"
    ) {
        let _ = xml::decode_applications(text.as_bytes());
        let _ = xml::decode_instance(text.as_bytes());
        let _ = json::decode_applications(text.as_bytes());
        let _ = json::decode_instance(text.as_bytes());
    }
}
