//! The Eureka data model: `InstanceInfo` and the records it holds,
//! `Application` and `Applications`.

use super::hashcode::AppsHashcode;
use super::metadata::Metadata;
use super::status::{ActionType, InstanceStatus};

/// The `@class` Eureka writes for a data center that is not Amazon.
pub const DEFAULT_DATA_CENTER_CLASS: &str =
    "com.netflix.appinfo.InstanceInfo$DefaultDataCenterInfo";
/// The `@class` Eureka writes for Amazon data centers.
pub const AMAZON_DATA_CENTER_CLASS: &str = "com.netflix.appinfo.AmazonInfo";

/// A port and whether it is enabled (`"port":{"$":8080,"@enabled":"true"}`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PortWrapper {
    /// The port number.
    pub port: u16,
    /// Whether the port is enabled.
    pub enabled: bool,
}

impl PortWrapper {
    /// An enabled port.
    pub fn enabled(port: u16) -> PortWrapper {
        PortWrapper {
            port,
            enabled: true,
        }
    }

    /// A disabled port.
    pub fn disabled(port: u16) -> PortWrapper {
        PortWrapper {
            port,
            enabled: false,
        }
    }
}

/// Where an instance runs (`dataCenterInfo` with its `@class`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DataCenterInfo {
    /// The Java class name Eureka writes as `@class`.
    pub class: String,
    /// `MyOwn`, `Amazon` or `Netflix`.
    pub name: String,
    /// Amazon metadata (only written when non-empty).
    pub metadata: Metadata,
}

impl Default for DataCenterInfo {
    fn default() -> Self {
        DataCenterInfo {
            class: DEFAULT_DATA_CENTER_CLASS.to_owned(),
            name: "MyOwn".to_owned(),
            metadata: Metadata::new(),
        }
    }
}

/// Lease settings and timestamps (`leaseInfo`). Timestamps are epoch millis.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LeaseInfo {
    /// How often the client renews. Default is 30 seconds.
    pub renewal_interval_in_secs: u32,
    /// How long after the last renewal the lease expires. Default is 90 seconds.
    pub duration_in_secs: u32,
    /// When the instance registered.
    pub registration_timestamp: i64,
    /// When the lease was last renewed.
    pub last_renewal_timestamp: i64,
    /// When the lease was cancelled or evicted (0 while alive).
    pub eviction_timestamp: i64,
    /// When the instance was first seen `UP`.
    pub service_up_timestamp: i64,
}

impl Default for LeaseInfo {
    fn default() -> Self {
        LeaseInfo {
            renewal_interval_in_secs: 30,
            duration_in_secs: 90,
            registration_timestamp: 0,
            last_renewal_timestamp: 0,
            eviction_timestamp: 0,
            service_up_timestamp: 0,
        }
    }
}

/// One registered instance: Eureka's `InstanceInfo`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct InstanceInfo {
    /// Unique id within the registry (for example `host:app:port`).
    pub instance_id: String,
    /// Host name.
    pub host_name: String,
    /// Application name, upper-cased by the server.
    pub app: String,
    /// IP address.
    pub ip_addr: String,
    /// Optional security id (`sid`); Eureka's placeholders `na` and
    /// `unknown` read as `None` and are never written.
    pub sid: Option<String>,
    /// Optional application group (`appGroupName`).
    pub app_group_name: Option<String>,
    /// Current status.
    pub status: InstanceStatus,
    /// Status override (`UNKNOWN` when none).
    pub overridden_status: InstanceStatus,
    /// Plain port.
    pub port: PortWrapper,
    /// TLS port.
    pub secure_port: PortWrapper,
    /// Country id (Eureka writes 1).
    pub country_id: i32,
    /// Data center.
    pub data_center_info: DataCenterInfo,
    /// Lease; `None` when the client sent none.
    pub lease_info: Option<LeaseInfo>,
    /// Free-form metadata.
    pub metadata: Metadata,
    /// Home page URL.
    pub home_page_url: Option<String>,
    /// Status page URL.
    pub status_page_url: Option<String>,
    /// Health check URL.
    pub health_check_url: Option<String>,
    /// Secure health check URL.
    pub secure_health_check_url: Option<String>,
    /// Virtual IP address (the name clients look the service up by).
    pub vip_address: Option<String>,
    /// Secure virtual IP address.
    pub secure_vip_address: Option<String>,
    /// Whether this instance is a discovery server itself.
    pub is_coordinating_discovery_server: bool,
    /// Last time the server changed this record (epoch millis).
    pub last_updated_timestamp: i64,
    /// Last time the client changed this record (epoch millis).
    pub last_dirty_timestamp: i64,
    /// What happened last to this instance.
    pub action_type: Option<ActionType>,
    /// Auto-scaling group name.
    pub asg_name: Option<String>,
}

impl InstanceInfo {
    /// Bytes this record holds, approximately: the struct itself and every
    /// string and metadata buffer it owns. What a server counts to bound
    /// the memory of the records it keeps.
    pub fn approx_size_bytes(&self) -> usize {
        let strings = [
            &self.instance_id,
            &self.host_name,
            &self.app,
            &self.ip_addr,
            &self.data_center_info.class,
            &self.data_center_info.name,
        ]
        .into_iter()
        .map(String::capacity)
        .sum::<usize>();
        let optional = [
            &self.sid,
            &self.app_group_name,
            &self.home_page_url,
            &self.status_page_url,
            &self.health_check_url,
            &self.secure_health_check_url,
            &self.vip_address,
            &self.secure_vip_address,
            &self.asg_name,
        ]
        .into_iter()
        .flatten()
        .map(String::capacity)
        .sum::<usize>();
        std::mem::size_of::<InstanceInfo>()
            + strings
            + optional
            + self.metadata.heap_bytes()
            + self.data_center_info.metadata.heap_bytes()
    }
}

impl Default for PortWrapper {
    fn default() -> Self {
        PortWrapper {
            port: 7001,
            enabled: false,
        }
    }
}

/// All instances of one application.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Application {
    /// Upper-case application name.
    pub name: String,
    /// Its instances.
    pub instances: Vec<InstanceInfo>,
}

/// A registry listing: all applications, or a delta.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Applications {
    /// `versions__delta`.
    pub version_delta: i64,
    /// `apps__hashcode`, such as `DOWN_1_UP_5_`.
    pub apps_hashcode: String,
    /// The applications.
    pub applications: Vec<Application>,
}

impl Applications {
    /// Computes the reconcile hashcode over every instance of every
    /// application, as Eureka's `Applications.getReconcileHashCode` does.
    pub fn reconcile_hashcode(&self) -> String {
        let mut counts = AppsHashcode::default();
        for instance in self.applications.iter().flat_map(|a| &a.instances) {
            counts.add(instance.status);
        }
        counts.to_string()
    }

    /// The application called `name` (case-insensitive).
    pub fn application(&self, name: &str) -> Option<&Application> {
        self.applications
            .iter()
            .find(|a| a.name.eq_ignore_ascii_case(name))
    }

    /// Iterates over every instance of every application.
    pub fn instances(&self) -> impl Iterator<Item = &InstanceInfo> {
        self.applications.iter().flat_map(|a| a.instances.iter())
    }
}
