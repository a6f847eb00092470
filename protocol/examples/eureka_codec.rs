//! Decodes an instance as the Netflix Java client registers it (JSON with
//! `"$"`/`"@enabled"` ports, string timestamps, `@class` sigils), then writes
//! it back in Eureka's JSON and XML shapes, and reads both back.
//!
//! `cargo run -p cloud-protocol --example eureka_codec`

use cloud_protocol::eureka::{DecodeError, InstanceInfo, json, xml};

/// The body of `POST /eureka/apps/ORDERS` from a Spring Boot service.
const JAVA_CLIENT_REGISTRATION: &str = r#"{"instance":{
  "instanceId":"host-1.example.internal:orders:8080",
  "app":"ORDERS","appGroupName":null,"ipAddr":"10.0.0.7","sid":"na",
  "homePageUrl":"http://host-1.example.internal:8080/",
  "statusPageUrl":"http://host-1.example.internal:8080/actuator/info",
  "healthCheckUrl":"http://host-1.example.internal:8080/actuator/health",
  "secureHealthCheckUrl":null,"vipAddress":"orders","secureVipAddress":"orders",
  "countryId":1,
  "dataCenterInfo":{"@class":"com.netflix.appinfo.InstanceInfo$DefaultDataCenterInfo","name":"MyOwn"},
  "hostName":"host-1.example.internal","status":"UP","overriddenStatus":"UNKNOWN",
  "leaseInfo":{"renewalIntervalInSecs":30,"durationInSecs":90,"registrationTimestamp":0,
    "lastRenewalTimestamp":0,"evictionTimestamp":0,"serviceUpTimestamp":0},
  "isCoordinatingDiscoveryServer":false,
  "metadata":{"management.port":"8080","zone":"eu-1"},
  "lastUpdatedTimestamp":1700000000000,"lastDirtyTimestamp":1700000000000,
  "actionType":null,"asgName":null,
  "port":{"$":8080,"@enabled":"true"},"securePort":{"$":443,"@enabled":"false"}}}"#;

fn main() -> Result<(), DecodeError> {
    let mut info: InstanceInfo = json::decode_instance(JAVA_CLIENT_REGISTRATION.as_bytes())?;
    // What a server checks before it accepts a registration.
    info.validate()?;
    println!(
        "decoded {} of {} at {}:{} ({}), metadata {:?}",
        info.instance_id,
        info.app,
        info.ip_addr,
        info.port.port,
        info.status.as_str(),
        info.metadata.iter().collect::<Vec<_>>()
    );

    let as_json = json::encode_instance(&info);
    println!(
        "\nJSON, as Eureka writes it:\n{}",
        String::from_utf8_lossy(&as_json)
    );
    let as_xml = xml::encode_instance(&info);
    println!(
        "\nXML, as Eureka writes it:\n{}",
        String::from_utf8_lossy(&as_xml)
    );

    // Both shapes read back to the same instance.
    let from_json = json::decode_instance(&as_json)?;
    let from_xml = xml::decode_instance(&as_xml)?;
    assert_eq!(from_json, info, "JSON round trip");
    assert_eq!(from_xml, info, "XML round trip");
    println!("both round trips give the same instance");
    Ok(())
}
