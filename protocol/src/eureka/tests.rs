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

/// `<instance a0="" a1="" ...>` with `n` attributes, then a valid body.
fn instance_with_attributes(n: usize) -> String {
    let mut s = String::from("<instance");
    for i in 0..n {
        s.push_str(&format!(" a{i}=''"));
    }
    s.push_str("><instanceId>i</instanceId><hostName>h</hostName><app>A</app><ipAddr>1</ipAddr>");
    s.push_str("<dataCenterInfo class='x'><name>MyOwn</name></dataCenterInfo></instance>");
    s
}

fn limit_of(result: Result<InstanceInfo, DecodeError>) -> Option<LimitExceeded> {
    result.err().and_then(|e| e.limit_exceeded().copied())
}

#[test]
fn attributes_over_the_limit_stop_the_xml_reader() {
    let limits = xml::XmlLimits {
        max_attributes_per_element: 100,
        ..xml::XmlLimits::default()
    };
    let ok = xml::decode_instance_within(instance_with_attributes(100).as_bytes(), &limits);
    assert_eq!(ok.map(|i| i.instance_id).ok().as_deref(), Some("i"));
    let over = xml::decode_instance_within(instance_with_attributes(101).as_bytes(), &limits);
    assert_eq!(
        limit_of(over),
        Some(LimitExceeded {
            limit: DocumentLimit::AttributesPerElement,
            max: 100
        })
    );
    // The default limit applies to the plain decoder too.
    let default_max = xml::XmlLimits::default().max_attributes_per_element;
    let over = xml::decode_instance(instance_with_attributes(default_max + 1).as_bytes());
    assert_eq!(
        limit_of(over).map(|l| l.limit),
        Some(DocumentLimit::AttributesPerElement)
    );
}

#[test]
fn many_attributes_within_a_raised_limit_are_all_read_and_duplicates_are_refused() {
    // 50 000 attributes: quick-xml's pairwise duplicate check would make
    // this 1.25 billion comparisons; the map check keeps it linear.
    let limits = xml::XmlLimits {
        max_attributes_per_element: usize::MAX,
        ..xml::XmlLimits::default()
    };
    let doc = instance_with_attributes(50_000);
    assert!(xml::decode_instance_within(doc.as_bytes(), &limits).is_ok());
    let dup = doc.replacen(" a1=''", " a0=''", 1);
    let err = xml::decode_instance_within(dup.as_bytes(), &limits).unwrap_err();
    assert!(err.to_string().contains("duplicate attribute a0"), "{err}");
}

#[test]
fn elements_over_the_limit_stop_the_xml_reader() {
    let mut doc = instance_with_attributes(0).replace("</instance>", "<metadata>");
    for i in 0..50 {
        doc.push_str(&format!("<k{i}>v</k{i}>"));
    }
    doc.push_str("</metadata></instance>");
    // instance, 4 fields, dataCenterInfo, name, metadata: 8, plus 50 keys.
    let limits = |max_elements| xml::XmlLimits {
        max_elements,
        ..xml::XmlLimits::default()
    };
    let ok = xml::decode_instance_within(doc.as_bytes(), &limits(58)).unwrap();
    assert_eq!(ok.metadata.len(), 50);
    assert_eq!(
        limit_of(xml::decode_instance_within(doc.as_bytes(), &limits(57))),
        Some(LimitExceeded {
            limit: DocumentLimit::ElementsPerDocument,
            max: 57
        })
    );
}

#[test]
fn nesting_over_the_limit_stops_the_xml_reader() {
    let doc = format!("{}{}", "<a>".repeat(33), "</a>".repeat(33));
    let err = xml::decode_instance(doc.as_bytes()).unwrap_err();
    assert_eq!(
        err.limit_exceeded().map(|l| l.limit),
        Some(DocumentLimit::Depth)
    );
    assert_eq!(
        err.to_string(),
        "document too large: more than 32 levels of element nesting"
    );
}

#[test]
fn metadata_in_any_key_order_decodes_sorted_with_the_last_value_of_a_key() {
    let body = br#"{"instance":{"instanceId":"i","hostName":"h","app":"A","ipAddr":"1",
        "metadata":{"z":"1","b":"2","m":"3","@class":"java.util.LinkedHashMap"}}}"#;
    let info = json::decode_instance(body).unwrap();
    assert_eq!(
        info.metadata.iter().collect::<Vec<_>>(),
        vec![("b", "2"), ("m", "3"), ("z", "1")]
    );
}

#[test]
fn the_size_estimate_grows_with_metadata() {
    let small = sample();
    let mut big = sample();
    big.metadata
        .extend((0..100).map(|i| (format!("key-{i}"), "x".repeat(100))));
    assert!(small.approx_size_bytes() >= std::mem::size_of::<InstanceInfo>());
    assert!(big.approx_size_bytes() >= small.approx_size_bytes() + 100 * 105);
}

proptest! {
    #[test]
    fn distinct_attributes_all_arrive_and_limits_only_ever_refuse(
        names in prop::collection::btree_set("[a-z]{1,4}", 0..40),
        max in 1usize..45,
    ) {
        let mut doc = String::from("<instance");
        for (i, n) in names.iter().enumerate() {
            doc.push_str(&format!(" {n}=\"{i}\""));
        }
        doc.push_str("><instanceId>i</instanceId><port enabled=\"true\">80</port></instance>");
        let unlimited = xml::XmlLimits { max_attributes_per_element: usize::MAX, ..xml::XmlLimits::default() };
        let limited = xml::XmlLimits { max_attributes_per_element: max, ..xml::XmlLimits::default() };
        let full = xml::decode_instance_within(doc.as_bytes(), &unlimited);
        prop_assert!(full.is_ok());
        match xml::decode_instance_within(doc.as_bytes(), &limited) {
            Ok(info) => {
                prop_assert!(names.len() <= max);
                prop_assert_eq!(Ok(info), full);
            }
            Err(e) => {
                prop_assert!(names.len() > max);
                prop_assert_eq!(e.limit_exceeded().map(|l| l.limit), Some(DocumentLimit::AttributesPerElement));
            }
        }
    }

    #[test]
    fn tight_limits_never_change_what_is_decoded(
        text in "(<[a-z]{1,3}( [a-z]{1,2}=\"[a-z0-9]{0,3}\"){0,3}/?>|</[a-z]{1,3}>|[a-z0-9 ]){0,40}",
        depth in 1usize..6, attributes in 0usize..4, elements in 1usize..20,
    ) {
        let tight = xml::XmlLimits { max_depth: depth, max_attributes_per_element: attributes, max_elements: elements };
        if let Ok(info) = xml::decode_instance_within(text.as_bytes(), &tight) {
            prop_assert_eq!(Ok(info), xml::decode_instance(text.as_bytes()));
        }
    }
}

#[test]
fn control_characters_xml_cannot_carry_are_dropped_on_reading_as_on_writing() {
    let doc = "<instance><instanceId>a\u{16}b</instanceId><hostName>h</hostName><app>APP</app>\
        <ipAddr>1.2.3.4</ipAddr><dataCenterInfo class=\"x&#x16;y\"><name>MyOwn</name></dataCenterInfo></instance>";
    let info = xml::decode_instance(doc.as_bytes()).unwrap();
    assert_eq!(info.instance_id, "ab");
    assert_eq!(info.data_center_info.class, "xy");
    let again = xml::decode_instance(&xml::encode_instance(&info)).unwrap();
    assert_eq!(again, info);
}

#[test]
fn text_mixed_between_child_elements_is_not_a_metadata_entry() {
    let doc = "<instance><instanceId>a</instanceId><hostName>h</hostName><app>APP</app>\
        <ipAddr>1.2.3.4</ipAddr><dataCenterInfo><name>MyOwn</name></dataCenterInfo>\
        <metadata>stray<zone>z1</zone></metadata></instance>";
    let info = xml::decode_instance(doc.as_bytes()).unwrap();
    assert_eq!(info.metadata.len(), 1);
    assert_eq!(
        xml::decode_instance(&xml::encode_instance(&info)).unwrap(),
        info
    );
}
