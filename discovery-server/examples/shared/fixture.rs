//! What the load and footprint examples share: the fleet of instances they
//! register (100 applications, instance `i` in `SERVICE-{i % 100}`) and the
//! resident memory of a process.

// Each example uses only part of this module.
#![allow(dead_code)]

use cloud_protocol::eureka::{InstanceInfo, InstanceStatus, LeaseInfo, PortWrapper};

/// Instance `i` of the fleet, as a Spring Cloud client would register it,
/// with a 30 s renewal interval and a 90 s lease.
pub(crate) fn instance(i: u64) -> InstanceInfo {
    let app = format!("SERVICE-{}", i % 100);
    let host = format!("host-{i}.example.internal");
    InstanceInfo {
        instance_id: format!("{host}:{}:8080", app.to_lowercase()),
        host_name: host.clone(),
        app: app.clone(),
        ip_addr: format!("10.{}.{}.{}", i / 65536 % 256, (i / 256) % 256, i % 256),
        status: InstanceStatus::Up,
        port: PortWrapper::enabled(8080),
        secure_port: PortWrapper::disabled(443),
        country_id: 1,
        lease_info: Some(LeaseInfo::default()),
        metadata: [("management.port".to_owned(), "8080".to_owned())].into(),
        home_page_url: Some(format!("http://{host}:8080/")),
        status_page_url: Some(format!("http://{host}:8080/actuator/info")),
        health_check_url: Some(format!("http://{host}:8080/actuator/health")),
        vip_address: Some(app.to_lowercase()),
        secure_vip_address: Some(app.to_lowercase()),
        ..InstanceInfo::default()
    }
}

/// `{base}/eureka/apps/{app}/{id}?status=UP` for instance `i`, without
/// building the instance.
pub(crate) fn renew_uri(base: &str, i: u64) -> String {
    let app = i % 100;
    format!(
        "{base}/eureka/apps/SERVICE-{app}/host-{i}.example.internal:service-{app}:8080?status=UP"
    )
}

/// `VmRSS` of process `pid` (`"self"` for this one) in KiB; 0 when unknown.
pub(crate) fn rss_kib(pid: &str) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}
