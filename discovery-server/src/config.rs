//! Server settings, with Spring Cloud Netflix's names and defaults.
//!
//! A config file (YAML or TOML) uses Spring's keys:
//!
//! ```yaml
//! server:
//!   port: 8761
//! eureka:
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
//!   instance:
//!     lease-renewal-interval-in-seconds: 30
//!     lease-expiration-duration-in-seconds: 90
//!   client:
//!     service-url:
//!       defaultZone: http://peer1:8761/eureka/,http://peer2:8761/eureka/
//! spring:
//!   security:
//!     user:
//!       name: admin
//!       password: secret
//! ```
//!
//! Environment variables override the file: prefix `DISCOVERY`, `__`
//! between levels, `_` for `-` (`DISCOVERY__EUREKA__SERVER__ENABLE_SELF_PRESERVATION=false`).
//! Command-line flags override both.

use std::collections::HashMap;
use std::path::Path;
use std::time::Duration;

use serde::Deserialize;

use crate::registry::RegistrySettings;
use crate::replication::ReplicationSettings;

/// Why settings could not be loaded.
#[derive(Debug, thiserror::Error)]
#[error("configuration: {0}")]
pub struct ConfigError(String);

/// HTTP Basic credentials required on the API and dashboard.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BasicAuth {
    /// User name.
    pub username: String,
    /// Password.
    pub password: String,
}

/// Everything the server needs.
#[derive(Debug, Clone, PartialEq)]
pub struct ServerConfig {
    /// Listening port. Default is 8761.
    pub port: u16,
    /// Peer service URLs such as `http://127.0.0.1:8762/eureka/`, from
    /// `--peer` or `eureka.client.service-url.defaultZone`. Used by peer
    /// replication.
    pub peers: Vec<String>,
    /// Registry behaviour.
    pub registry: RegistrySettings,
    /// How often expired leases are evicted. Default is 60 seconds.
    pub eviction_interval: Duration,
    /// Credentials required on `/eureka/*` and the dashboard; none by default.
    pub basic_auth: Option<BasicAuth>,
    /// Largest request body accepted. Default is 1 MiB.
    pub max_body_bytes: usize,
    /// Peer replication: batching, retries, initial registry copy.
    pub replication: ReplicationSettings,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            port: 8761,
            peers: Vec::new(),
            registry: RegistrySettings::default(),
            eviction_interval: Duration::from_secs(60),
            basic_auth: None,
            max_body_bytes: 1 << 20,
            replication: ReplicationSettings::default(),
        }
    }
}

impl ServerConfig {
    /// Loads defaults, then `file` (YAML or TOML by extension) when given,
    /// then environment variables. `env` replaces the process environment
    /// (for tests); `None` reads the real one.
    pub fn load(
        file: Option<&Path>,
        env: Option<HashMap<String, String>>,
    ) -> Result<ServerConfig, ConfigError> {
        let mut builder = config::Config::builder();
        if let Some(path) = file {
            builder = builder.add_source(config::File::from(path).required(true));
        }
        let environment = config::Environment::with_prefix("DISCOVERY")
            .prefix_separator("__")
            .separator("__")
            .try_parsing(true)
            .source(env);
        builder = builder.add_source(environment);
        let raw: FileShape = builder
            .build()
            .and_then(|c| c.try_deserialize())
            .map_err(|e| ConfigError(e.to_string()))?;
        let config = raw.into_config();
        config.validate()?;
        Ok(config)
    }

    /// Checks that the settings make sense.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let t = self.registry.renewal_percent_threshold;
        if !(0.0..=1.0).contains(&t) {
            return Err(ConfigError(format!(
                "renewal-percent-threshold {t} is not between 0 and 1"
            )));
        }
        if self.eviction_interval.is_zero() {
            return Err(ConfigError(
                "eviction-interval-timer-in-ms must be positive".to_owned(),
            ));
        }
        if self.registry.default_duration_secs == 0
            || self.registry.default_renewal_interval_secs == 0
        {
            return Err(ConfigError("lease durations must be positive".to_owned()));
        }
        Ok(())
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct FileShape {
    server: ServerSection,
    eureka: EurekaSection,
    spring: SpringSection,
}

#[derive(Debug, Deserialize)]
#[serde(default, rename_all = "kebab-case")]
struct ServerSection {
    port: u16,
}

impl Default for ServerSection {
    fn default() -> Self {
        ServerSection { port: 8761 }
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct EurekaSection {
    server: EurekaServer,
    instance: EurekaInstance,
    client: EurekaClient,
}

#[derive(Debug, Deserialize)]
#[serde(default, rename_all = "kebab-case")]
struct EurekaServer {
    #[serde(alias = "enable_self_preservation")]
    enable_self_preservation: bool,
    #[serde(alias = "renewal_percent_threshold")]
    renewal_percent_threshold: f64,
    #[serde(alias = "eviction_interval_timer_in_ms")]
    eviction_interval_timer_in_ms: u64,
    #[serde(alias = "retention_time_in_m_s_in_delta_queue")]
    retention_time_in_m_s_in_delta_queue: i64,
    #[serde(alias = "max_elements_in_peer_replication_pool")]
    max_elements_in_peer_replication_pool: usize,
    #[serde(alias = "max_time_for_replication")]
    max_time_for_replication: u64,
    #[serde(alias = "peer_node_read_timeout_ms")]
    peer_node_read_timeout_ms: u64,
    #[serde(alias = "registry_sync_timeout_ms")]
    registry_sync_timeout_ms: u64,
}

impl Default for EurekaServer {
    fn default() -> Self {
        EurekaServer {
            enable_self_preservation: true,
            renewal_percent_threshold: 0.85,
            eviction_interval_timer_in_ms: 60_000,
            retention_time_in_m_s_in_delta_queue: 180_000,
            max_elements_in_peer_replication_pool: 10_000,
            max_time_for_replication: 30_000,
            peer_node_read_timeout_ms: 5_000,
            registry_sync_timeout_ms: 5_000,
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(default, rename_all = "kebab-case")]
struct EurekaInstance {
    #[serde(alias = "lease_renewal_interval_in_seconds")]
    lease_renewal_interval_in_seconds: u32,
    #[serde(alias = "lease_expiration_duration_in_seconds")]
    lease_expiration_duration_in_seconds: u32,
}

impl Default for EurekaInstance {
    fn default() -> Self {
        EurekaInstance {
            lease_renewal_interval_in_seconds: 30,
            lease_expiration_duration_in_seconds: 90,
        }
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "kebab-case")]
struct EurekaClient {
    #[serde(alias = "service_url", alias = "serviceUrl")]
    service_url: ServiceUrl,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct ServiceUrl {
    #[serde(
        rename = "defaultZone",
        alias = "defaultzone",
        alias = "default-zone",
        alias = "default_zone"
    )]
    default_zone: String,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct SpringSection {
    security: SecuritySection,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct SecuritySection {
    user: UserSection,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct UserSection {
    name: String,
    password: String,
}

impl FileShape {
    fn into_config(self) -> ServerConfig {
        let s = self.eureka.server;
        let i = self.eureka.instance;
        let peers = self
            .eureka
            .client
            .service_url
            .default_zone
            .split(',')
            .map(str::trim)
            .filter(|u| !u.is_empty())
            .map(str::to_owned)
            .collect();
        let user = self.spring.security.user;
        ServerConfig {
            port: self.server.port,
            peers,
            registry: RegistrySettings {
                self_preservation: s.enable_self_preservation,
                renewal_percent_threshold: s.renewal_percent_threshold,
                default_renewal_interval_secs: i.lease_renewal_interval_in_seconds,
                default_duration_secs: i.lease_expiration_duration_in_seconds,
                delta_retention_millis: s.retention_time_in_m_s_in_delta_queue,
            },
            eviction_interval: Duration::from_millis(s.eviction_interval_timer_in_ms),
            basic_auth: (!user.name.is_empty()).then_some(BasicAuth {
                username: user.name,
                password: user.password,
            }),
            max_body_bytes: 1 << 20,
            replication: ReplicationSettings {
                queue_capacity: s.max_elements_in_peer_replication_pool.max(1),
                max_item_age: Duration::from_millis(s.max_time_for_replication.max(1)),
                request_timeout: Duration::from_millis(s.peer_node_read_timeout_ms.max(1)),
                sync_timeout: Duration::from_millis(s.registry_sync_timeout_ms),
                ..ReplicationSettings::default()
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_springs() {
        let c = ServerConfig::load(None, Some(HashMap::new())).unwrap();
        assert_eq!(c, ServerConfig::default());
        assert_eq!(c.registry.renewal_percent_threshold, 0.85);
        assert_eq!(c.eviction_interval, Duration::from_secs(60));
    }

    #[test]
    fn file_then_environment_layer_over_defaults() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("discovery.yml");
        std::fs::write(
            &path,
            "server:\n  port: 9000\neureka:\n  server:\n    enable-self-preservation: false\n    eviction-interval-timer-in-ms: 5000\n  instance:\n    lease-expiration-duration-in-seconds: 30\n  client:\n    service-url:\n      defaultZone: http://a/eureka/, http://b/eureka/\nspring:\n  security:\n    user:\n      name: u\n      password: p\n",
        )
        .unwrap();
        let env = HashMap::from([(
            "DISCOVERY__EUREKA__SERVER__RENEWAL_PERCENT_THRESHOLD".to_owned(),
            "0.5".to_owned(),
        )]);
        let c = ServerConfig::load(Some(&path), Some(env)).unwrap();
        assert_eq!(c.port, 9000);
        assert!(!c.registry.self_preservation);
        assert_eq!(c.registry.renewal_percent_threshold, 0.5);
        assert_eq!(c.registry.default_duration_secs, 30);
        assert_eq!(c.eviction_interval, Duration::from_secs(5));
        assert_eq!(
            c.peers,
            vec!["http://a/eureka/".to_owned(), "http://b/eureka/".to_owned()]
        );
        assert_eq!(
            c.basic_auth,
            Some(BasicAuth {
                username: "u".into(),
                password: "p".into()
            })
        );
    }

    #[test]
    fn nonsense_is_rejected() {
        let env = HashMap::from([(
            "DISCOVERY__EUREKA__SERVER__RENEWAL_PERCENT_THRESHOLD".to_owned(),
            "3".to_owned(),
        )]);
        assert!(ServerConfig::load(None, Some(env)).is_err());
    }
}
