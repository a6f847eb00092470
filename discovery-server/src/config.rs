//! Server settings, with Spring Cloud Netflix's names and defaults.
//!
//! [`Settings`] is the file schema: a Spring Cloud Netflix Eureka Server's
//! own `application.yml` is read unchanged (keys it does not know are
//! ignored, `${...}` placeholders in the peer list are resolved):
//!
//! ```yaml
//! server:
//!   port: 8761
//!   # connection limits (see cloud_runtime::serve::ServeLimits)
//!   connection-timeout: 10s
//!   max-connections: 8192
//! eureka:
//!   instance:
//!     hostname: localhost
//!     lease-renewal-interval-in-seconds: 30
//!     lease-expiration-duration-in-seconds: 90
//!   client:
//!     register-with-eureka: false   # accepted and ignored
//!     fetch-registry: false         # accepted and ignored
//!     service-url:
//!       defaultZone: http://${eureka.instance.hostname}:${server.port}/eureka/
//!   server:
//!     enable-self-preservation: true
//!     renewal-percent-threshold: 0.85
//!     eviction-interval-timer-in-ms: 60000
//!     retention-time-in-m-s-in-delta-queue: 180000
//!     # peer replication (see `replication::ReplicationSettings`)
//!     max-elements-in-peer-replication-pool: 10000
//!     max-time-for-replication: 30000
//!     peer-node-read-timeout-ms: 5000
//!     registry-sync-timeout-ms: 5000
//! spring:
//!   security:
//!     user:
//!       name: admin
//!       password: secret
//!   lifecycle:
//!     timeout-per-shutdown-phase: 10s   # the drain deadline
//! management:
//!   endpoint:
//!     health:
//!       show-details: when-authorized   # or always, never
//! ```
//!
//! Layers, each overriding the one before key by key: the defaults, the
//! `--config FILE`, environment variables with Spring's relaxed names
//! (`SERVER_PORT`, `EUREKA_SERVER_ENABLESELFPRESERVATION`,
//! `EUREKA_CLIENT_SERVICEURL_DEFAULTZONE`, `SPRING_SECURITY_USER_NAME`),
//! then flags ([`Overrides`]). The older variables `DISCOVERY_PORT` and
//! `DISCOVERY__A__B` (`__` between levels) are deprecated aliases, below
//! the Spring names; each use logs the new name.
//!
//! An invalid value is a [`ConfigError`] naming the file (or variable, or
//! flag) and the key.

use std::path::Path;
use std::time::Duration;

use cloud_runtime::serve::ServeLimits;
use cloud_runtime::settings::{Environment, Layers};
use serde::{Deserialize, Deserializer, Serialize};

pub use cloud_runtime::settings::ConfigError;

use crate::http::ShowDetails;
use crate::limits::Limits;
use crate::registry::RegistrySettings;
use crate::replication::ReplicationSettings;
use cloud_protocol::eureka::xml::XmlLimits;

/// HTTP Basic credentials required on the API, the dashboard and
/// `/actuator/prometheus`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BasicAuth {
    /// User name.
    pub username: String,
    /// Password.
    pub password: String,
}

/// Everything the server needs, wired from [`Settings`] (or built directly
/// by an embedding program or a test).
#[derive(Debug, Clone, PartialEq)]
pub struct ServerConfig {
    /// Listening port. Default is 8761.
    pub port: u16,
    /// Peer service URLs such as `http://127.0.0.1:8762/eureka/`, from
    /// `--peer` or `eureka.client.service-url.defaultZone`. A URL naming
    /// this node itself is recognised and skipped.
    pub peers: Vec<String>,
    /// Registry behaviour.
    pub registry: RegistrySettings,
    /// How often expired leases are evicted. Default is 60 seconds.
    pub eviction_interval: Duration,
    /// Credentials required on `/eureka/*`, the dashboard and
    /// `/actuator/prometheus`; none by default.
    pub basic_auth: Option<BasicAuth>,
    /// Who sees the details of `/actuator/health`. Default is
    /// when-authorized.
    pub show_details: ShowDetails,
    /// Largest request body accepted. Default is 1 MiB.
    pub max_body_bytes: usize,
    /// Peer replication: batching, retries, initial registry copy.
    pub replication: ReplicationSettings,
    /// Bounds on what one client may store or send (metadata, XML, the
    /// delta queue's memory).
    pub input_limits: Limits,
    /// Connection limits (`server.connection-timeout`,
    /// `server.max-connections`, ...).
    pub limits: ServeLimits,
    /// How long a stopping process waits for open work
    /// (`spring.lifecycle.timeout-per-shutdown-phase`). Default is 10
    /// seconds.
    pub drain_timeout: Duration,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig::from_settings(Settings::default())
    }
}

/// What the command line sets; each `Some` (or non-empty list) wins over
/// the file and the environment.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Overrides {
    /// `--port`.
    pub port: Option<u16>,
    /// `--peer` (repeatable).
    pub peers: Vec<String>,
    /// `--drain-timeout`.
    pub drain_timeout: Option<Duration>,
}

impl ServerConfig {
    /// Layers the defaults, `file` (YAML, TOML or JSON by extension) when
    /// given, `env` (Spring's relaxed names, then the deprecated
    /// `DISCOVERY_PORT` / `DISCOVERY__A__B` aliases beneath them) and
    /// `overrides`.
    pub fn load(
        file: Option<&Path>,
        env: &dyn Environment,
        overrides: &Overrides,
    ) -> Result<ServerConfig, ConfigError> {
        let peers = (!overrides.peers.is_empty()).then(|| overrides.peers.join(","));
        let drain_ms = overrides
            .drain_timeout
            .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
        let settings: Settings = Layers::new::<Settings>()?
            .strict_placeholders("eureka.client.service-url")
            .optional_file(file)?
            .env_prefix_alias(env, "DISCOVERY__", "__")
            .env_alias(env, "DISCOVERY_PORT", "server.port")
            .env(env)
            .set_some("server.port", overrides.port, "--port")
            .set_some("eureka.client.service-url.default-zone", peers, "--peer")
            .set_some(
                "spring.lifecycle.timeout-per-shutdown-phase",
                drain_ms,
                "--drain-timeout",
            )
            .load()?;
        let config = ServerConfig::from_settings(settings);
        Ok(config)
    }

    /// The settings wired into the parts.
    pub fn from_settings(s: Settings) -> ServerConfig {
        let server = s.eureka.server;
        let instance = s.eureka.instance;
        let user = s.spring.security.user;
        let drain_timeout = s.spring.lifecycle.timeout_per_shutdown_phase;
        let mut limits = s.server.limits;
        limits.drain_timeout = drain_timeout;
        ServerConfig {
            port: s.server.port,
            peers: s.eureka.client.service_url.default_zone,
            registry: RegistrySettings {
                self_preservation: server.enable_self_preservation,
                renewal_percent_threshold: server.renewal_percent_threshold,
                default_renewal_interval_secs: instance.lease_renewal_interval_in_seconds,
                default_duration_secs: instance.lease_expiration_duration_in_seconds,
                delta_retention_millis: server.retention_time_in_m_s_in_delta_queue,
            },
            eviction_interval: Duration::from_millis(server.eviction_interval_timer_in_ms),
            basic_auth: (!user.name.is_empty()).then_some(BasicAuth {
                username: user.name,
                password: user.password,
            }),
            show_details: s.management.endpoint.health.show_details,
            max_body_bytes: 1 << 20,
            replication: ReplicationSettings {
                queue_capacity: server.max_elements_in_peer_replication_pool.max(1),
                max_item_age: Duration::from_millis(server.max_time_for_replication.max(1)),
                request_timeout: Duration::from_millis(server.peer_node_read_timeout_ms.max(1)),
                sync_timeout: Duration::from_millis(server.registry_sync_timeout_ms),
                ..ReplicationSettings::default()
            },
            input_limits: Limits {
                max_metadata_keys_per_instance: server.max_metadata_keys_per_instance,
                max_metadata_bytes_per_instance: server.max_metadata_bytes_per_instance,
                xml: XmlLimits {
                    max_depth: server.max_xml_depth,
                    max_attributes_per_element: server.max_xml_attributes_per_element,
                    max_elements: server.max_xml_elements_per_document,
                },
                max_delta_queue_bytes: server.max_delta_queue_bytes,
            },
            limits,
            drain_timeout,
        }
    }
}

/// The settings file's schema, with Spring's key names. Its `Default` is
/// the defaults.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "kebab-case")]
pub struct Settings {
    /// `server.*`.
    pub server: ServerSection,
    /// `eureka.*`.
    pub eureka: EurekaSection,
    /// `spring.*`.
    pub spring: SpringSection,
    /// `management.*`.
    pub management: ManagementSection,
}

/// `server.*`: port and connection limits.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "kebab-case")]
pub struct ServerSection {
    /// `server.port`. Default is 8761.
    pub port: u16,
    /// `server.connection-timeout`, `server.max-connections`, ... (its
    /// `drain-timeout` is replaced by
    /// `spring.lifecycle.timeout-per-shutdown-phase`).
    #[serde(flatten, deserialize_with = "cloud_runtime::settings::flattened")]
    pub limits: ServeLimits,
}

impl Default for ServerSection {
    fn default() -> Self {
        ServerSection {
            port: 8761,
            limits: ServeLimits::default(),
        }
    }
}

/// `eureka.*`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "kebab-case")]
pub struct EurekaSection {
    /// `eureka.server.*`.
    pub server: EurekaServer,
    /// `eureka.instance.*`.
    pub instance: EurekaInstance,
    /// `eureka.client.*`.
    pub client: EurekaClient,
}

/// `eureka.server.*`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "kebab-case")]
pub struct EurekaServer {
    /// Default is true.
    pub enable_self_preservation: bool,
    /// Between 0 and 1. Default is 0.85.
    #[serde(deserialize_with = "fraction")]
    pub renewal_percent_threshold: f64,
    /// Positive. Default is 60 000.
    #[serde(deserialize_with = "positive_u64")]
    pub eviction_interval_timer_in_ms: u64,
    /// Default is 180 000.
    pub retention_time_in_m_s_in_delta_queue: i64,
    /// Default is 10 000.
    pub max_elements_in_peer_replication_pool: usize,
    /// Default is 30 000.
    pub max_time_for_replication: u64,
    /// Default is 5 000.
    pub peer_node_read_timeout_ms: u64,
    /// Default is 5 000.
    pub registry_sync_timeout_ms: u64,
    /// Most metadata entries per instance. Default is 256.
    pub max_metadata_keys_per_instance: usize,
    /// Most metadata bytes per instance. Default is 65 536.
    pub max_metadata_bytes_per_instance: usize,
    /// Most attributes on one element of an XML body. Default is 1 024.
    pub max_xml_attributes_per_element: usize,
    /// Most elements in an XML body. Default is 10 000.
    pub max_xml_elements_per_document: usize,
    /// Deepest nesting of an XML body. Default is 32.
    pub max_xml_depth: usize,
    /// Memory budget of the delta queue in bytes. Default is 64 MiB.
    pub max_delta_queue_bytes: usize,
}

impl Default for EurekaServer {
    fn default() -> Self {
        let input = Limits::default();
        EurekaServer {
            enable_self_preservation: true,
            renewal_percent_threshold: 0.85,
            eviction_interval_timer_in_ms: 60_000,
            retention_time_in_m_s_in_delta_queue: 180_000,
            max_elements_in_peer_replication_pool: 10_000,
            max_time_for_replication: 30_000,
            peer_node_read_timeout_ms: 5_000,
            registry_sync_timeout_ms: 5_000,
            max_metadata_keys_per_instance: input.max_metadata_keys_per_instance,
            max_metadata_bytes_per_instance: input.max_metadata_bytes_per_instance,
            max_xml_attributes_per_element: input.xml.max_attributes_per_element,
            max_xml_elements_per_document: input.xml.max_elements,
            max_xml_depth: input.xml.max_depth,
            max_delta_queue_bytes: input.max_delta_queue_bytes,
        }
    }
}

/// `eureka.instance.*`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "kebab-case")]
pub struct EurekaInstance {
    /// This node's host name, for `${eureka.instance.hostname}` in the peer
    /// list. Default is empty.
    pub hostname: String,
    /// Positive. Default is 30.
    #[serde(deserialize_with = "positive_u32")]
    pub lease_renewal_interval_in_seconds: u32,
    /// Positive. Default is 90.
    #[serde(deserialize_with = "positive_u32")]
    pub lease_expiration_duration_in_seconds: u32,
}

impl Default for EurekaInstance {
    fn default() -> Self {
        EurekaInstance {
            hostname: String::new(),
            lease_renewal_interval_in_seconds: 30,
            lease_expiration_duration_in_seconds: 90,
        }
    }
}

/// `eureka.client.*`: the peer list. A server is no client of itself:
/// `register-with-eureka` and `fetch-registry` are accepted and ignored.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "kebab-case")]
pub struct EurekaClient {
    /// Ignored. Default is false.
    pub register_with_eureka: bool,
    /// Ignored. Default is false.
    pub fetch_registry: bool,
    /// `eureka.client.service-url.*`.
    pub service_url: ServiceUrl,
}

/// `eureka.client.service-url.*`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "kebab-case")]
pub struct ServiceUrl {
    /// `defaultZone`: peer service URLs, comma-separated or a list.
    pub default_zone: Vec<String>,
}

/// `spring.*`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "kebab-case")]
pub struct SpringSection {
    /// `spring.security.*`.
    pub security: SecuritySection,
    /// `spring.lifecycle.*`.
    pub lifecycle: LifecycleSection,
}

/// `spring.security.*`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "kebab-case")]
pub struct SecuritySection {
    /// `spring.security.user.*`.
    pub user: cloud_runtime::auth::UserSettings,
}

pub use cloud_runtime::settings::LifecycleSection;

/// `management.*`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "kebab-case")]
pub struct ManagementSection {
    /// `management.endpoint.*`.
    pub endpoint: EndpointSection,
}

/// `management.endpoint.*`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "kebab-case")]
pub struct EndpointSection {
    /// `management.endpoint.health.*`.
    pub health: HealthSection,
}

/// `management.endpoint.health.*`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "kebab-case")]
pub struct HealthSection {
    /// Who sees the details. Default is when-authorized.
    pub show_details: ShowDetails,
}

fn fraction<'de, D: Deserializer<'de>>(d: D) -> Result<f64, D::Error> {
    let v = f64::deserialize(d)?;
    if (0.0..=1.0).contains(&v) {
        Ok(v)
    } else {
        Err(serde::de::Error::custom(format!(
            "{v} is not between 0 and 1"
        )))
    }
}

fn positive_u64<'de, D: Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
    match u64::deserialize(d)? {
        0 => Err(serde::de::Error::custom("must be positive")),
        v => Ok(v),
    }
}

fn positive_u32<'de, D: Deserializer<'de>>(d: D) -> Result<u32, D::Error> {
    match u32::deserialize(d)? {
        0 => Err(serde::de::Error::custom("must be positive")),
        v => Ok(v),
    }
}

#[cfg(test)]
mod tests;
