//! The two sides of an instance: [`ServiceInstance`], what a caller sees of
//! another service, and [`registration`], the `InstanceInfo` this service
//! registers, built from its settings as Spring Cloud Netflix does.

use cloud_protocol::eureka::{
    DataCenterInfo, InstanceInfo, InstanceStatus, LeaseInfo, Metadata, PortWrapper,
};

use crate::settings::ClientSettings;

/// One instance of a service, as callers use it: where to reach it and
/// what the balancer reads (`zone`, `weight`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceInstance {
    /// Unique id within the registry.
    pub instance_id: String,
    /// Upper-case application name.
    pub app: String,
    /// Host to connect to (the IP address when the instance registered
    /// with `prefer-ip-address`).
    pub host: String,
    /// Port to connect to.
    pub port: u16,
    /// Whether to use `https` (only the secure port is enabled).
    pub secure: bool,
    /// Status in the registry.
    pub status: InstanceStatus,
    /// `metadata.zone`, if any.
    pub zone: Option<String>,
    /// `metadata.weight`; 1 when absent or not a positive whole number.
    pub weight: u32,
    /// All metadata.
    pub metadata: Metadata,
    /// VIP address.
    pub vip_address: Option<String>,
    /// Secure VIP address.
    pub secure_vip_address: Option<String>,
}

impl ServiceInstance {
    /// The caller's view of a registry record.
    pub fn from_info(info: &InstanceInfo) -> ServiceInstance {
        let secure = info.secure_port.enabled && !info.port.enabled;
        let port = if secure {
            info.secure_port.port
        } else {
            info.port.port
        };
        let weight = info
            .metadata
            .get("weight")
            .and_then(|w| w.trim().parse::<u32>().ok())
            .filter(|w| *w > 0)
            .unwrap_or(1);
        ServiceInstance {
            instance_id: info.instance_id.clone(),
            app: info.app.to_ascii_uppercase(),
            host: info.host_name.clone(),
            port,
            secure,
            status: info.status,
            zone: info.metadata.get("zone").map(str::to_owned),
            weight,
            metadata: info.metadata.clone(),
            vip_address: info.vip_address.clone(),
            secure_vip_address: info.secure_vip_address.clone(),
        }
    }

    /// Whether the instance is `UP`.
    pub fn is_up(&self) -> bool {
        self.status == InstanceStatus::Up
    }

    /// `http://host:port` (or `https`), without a trailing slash.
    pub fn base_url(&self) -> String {
        let scheme = if self.secure { "https" } else { "http" };
        format!("{scheme}://{}:{}", self.host, self.port)
    }

    /// Whether `vip` is one of its VIP addresses (case-insensitive; a
    /// comma-separated VIP field counts each entry).
    pub fn has_vip(&self, vip: &str) -> bool {
        [&self.vip_address, &self.secure_vip_address]
            .into_iter()
            .flatten()
            .flat_map(|v| v.split(','))
            .any(|v| v.trim().eq_ignore_ascii_case(vip))
    }
}

/// The record this service registers, from its settings:
/// `eureka.instance.hostname` (else `$HOSTNAME`, else `localhost`),
/// `eureka.instance.ip-address` (else `127.0.0.1`), `prefer-ip-address`,
/// `instance-id` (else `host:name:port`), `server.port`, the lease settings
/// and `metadata-map`. The VIP address is the application name. Change the
/// result before starting the client to register something else.
pub fn registration(settings: &ClientSettings) -> InstanceInfo {
    let inst = &settings.eureka.instance;
    let name = settings.application_name();
    let ip = inst
        .ip_address
        .clone()
        .unwrap_or_else(|| "127.0.0.1".to_owned());
    let machine = inst
        .hostname
        .clone()
        .or_else(|| std::env::var("HOSTNAME").ok().filter(|h| !h.is_empty()))
        .unwrap_or_else(|| "localhost".to_owned());
    let host = if inst.prefer_ip_address {
        ip.clone()
    } else {
        machine
    };
    let port = settings.server.port;
    let instance_id = inst
        .instance_id
        .clone()
        .unwrap_or_else(|| format!("{host}:{name}:{port}"));
    let base = format!("http://{host}:{port}/");
    InstanceInfo {
        instance_id,
        host_name: host,
        app: name.to_ascii_uppercase(),
        ip_addr: ip,
        status: InstanceStatus::Up,
        overridden_status: InstanceStatus::Unknown,
        port: PortWrapper::enabled(port),
        secure_port: PortWrapper::disabled(443),
        country_id: 1,
        data_center_info: DataCenterInfo::default(),
        lease_info: Some(LeaseInfo {
            renewal_interval_in_secs: inst.lease_renewal_interval_in_seconds,
            duration_in_secs: inst.lease_expiration_duration_in_seconds,
            ..LeaseInfo::default()
        }),
        metadata: inst
            .metadata_map
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect(),
        home_page_url: Some(base.clone()),
        status_page_url: Some(format!("{base}actuator/info")),
        health_check_url: Some(format!("{base}actuator/health")),
        vip_address: Some(name.to_owned()),
        secure_vip_address: Some(name.to_owned()),
        ..InstanceInfo::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registration_follows_spring_cloud_netflix_defaults() {
        let s = ClientSettings::from_properties([
            ("spring.application.name", "user-service"),
            ("server.port", "9001"),
            ("eureka.instance.hostname", "box1"),
            ("eureka.instance.metadata-map.zone", "z1"),
            ("eureka.instance.lease-renewal-interval-in-seconds", "5"),
            ("eureka.instance.lease-expiration-duration-in-seconds", "15"),
        ])
        .unwrap();
        let info = registration(&s);
        assert_eq!(info.instance_id, "box1:user-service:9001");
        assert_eq!(info.app, "USER-SERVICE");
        assert_eq!(info.host_name, "box1");
        assert_eq!(info.port, PortWrapper::enabled(9001));
        assert_eq!(info.vip_address.as_deref(), Some("user-service"));
        assert_eq!(info.metadata.get("zone"), Some("z1"));
        let lease = info.lease_info.unwrap();
        assert_eq!(
            (lease.renewal_interval_in_secs, lease.duration_in_secs),
            (5, 15)
        );

        let s = ClientSettings::from_properties([
            ("eureka.instance.prefer-ip-address", "true"),
            ("eureka.instance.ip-address", "10.9.8.7"),
            ("eureka.instance.instance-id", "custom-1"),
        ])
        .unwrap();
        let info = registration(&s);
        assert_eq!(info.host_name, "10.9.8.7");
        assert_eq!(info.instance_id, "custom-1");
    }

    #[test]
    fn the_caller_view_reads_zone_weight_and_the_secure_port() {
        let mut info = registration(&ClientSettings::default());
        info.metadata.insert("weight".into(), "x".into());
        assert_eq!(ServiceInstance::from_info(&info).weight, 1);
        info.metadata.insert("weight".into(), "4".into());
        info.port = PortWrapper::disabled(80);
        info.secure_port = PortWrapper::enabled(8443);
        let s = ServiceInstance::from_info(&info);
        assert_eq!(s.weight, 4);
        assert!(s.secure);
        assert!(s.base_url().starts_with("https://") && s.base_url().ends_with(":8443"));
    }
}
