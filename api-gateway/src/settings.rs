//! The gateway's settings with Spring Boot's and SCG's key names, layered
//! by `cloud_runtime::settings::Layers` (defaults, `--config FILE`,
//! environment, flags).
//!
//! ```yaml
//! server:
//!   port: 8080                       # and cloud_runtime's serve limits
//!   ssl: { certificate: tls.crt, certificate-private-key: tls.key }   # see crate::tls
//! management:
//!   server: { port: 8081, address: 127.0.0.1 }
//! spring:
//!   cloud:
//!     gateway:
//!       routes: [...]                # or server.webflux.routes (SCG 4.3+)
//!       default-filters: [...]       # or server.webflux.default-filters
//!       discovery.locator: { enabled: false, lower-case-service-id: false }
//!       httpclient:
//!         connect-timeout: 30000     # ms
//!         response-timeout: 60s
//!         pool: { max-idle-time: 30s, max-idle-per-host: 256 }
//!       trusted-proxies: []          # CIDRs whose X-Forwarded-*/Forwarded are kept
//!       set-status.original-status-header-name: ""
//! resilience4j: { circuitbreaker: ..., timelimiter: ... }
//! ```

use std::path::{Path, PathBuf};
use std::time::Duration;

use cloud_runtime::serve::ServeLimits;
use cloud_runtime::settings::{ConfigError, Environment, Layers};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::config::{Definition, RouteDefinition, RouteError, definitions, parse_routes};

/// Every setting of the gateway.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default, rename_all = "kebab-case")]
pub struct Settings {
    /// `server.*`: the proxy's port and connection limits.
    pub server: Server,
    /// `management.*`: the admin port.
    pub management: Management,
    /// `spring.*`.
    pub spring: Spring,
    /// `resilience4j.*`: breakers and time limiters for `CircuitBreaker`.
    pub resilience4j: Value,
}

/// `server.*`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, rename_all = "kebab-case")]
pub struct Server {
    /// `server.port`. Default is 8080.
    pub port: u16,
    /// `server.address`. Default is 0.0.0.0.
    pub address: String,
    /// Connection limits.
    #[serde(flatten)]
    pub limits: ServeLimits,
    /// `server.ssl.*`: TLS for clients.
    pub ssl: crate::tls::Ssl,
}

impl Default for Server {
    fn default() -> Self {
        Server {
            port: 8080,
            address: "0.0.0.0".to_owned(),
            limits: ServeLimits::default(),
            ssl: crate::tls::Ssl::default(),
        }
    }
}

/// `management.*`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default, rename_all = "kebab-case")]
pub struct Management {
    /// `management.server.*`.
    pub server: ManagementServer,
}

/// `management.server.*`: where the admin API listens.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, rename_all = "kebab-case")]
pub struct ManagementServer {
    /// `management.server.port`. Default is 8081.
    pub port: u16,
    /// `management.server.address`. Default is 127.0.0.1 (the admin API can
    /// reload routes: keep it off public interfaces).
    pub address: String,
}

impl Default for ManagementServer {
    fn default() -> Self {
        ManagementServer {
            port: 8081,
            address: "127.0.0.1".to_owned(),
        }
    }
}

/// `spring.*`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default, rename_all = "kebab-case")]
pub struct Spring {
    /// `spring.cloud.*`.
    pub cloud: Cloud,
}

/// `spring.cloud.*`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default, rename_all = "kebab-case")]
pub struct Cloud {
    /// `spring.cloud.gateway.*`.
    pub gateway: GatewaySettings,
}

/// `spring.cloud.gateway.*`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default, rename_all = "kebab-case")]
pub struct GatewaySettings {
    /// `routes`: SCG route definitions.
    pub routes: Vec<Value>,
    /// `default-filters`: filters in front of every route's own.
    pub default_filters: Vec<Value>,
    /// `server.webflux.*` (SCG 4.3's prefix for the same keys).
    pub server: WebfluxWrapper,
    /// `discovery.*`.
    pub discovery: Discovery,
    /// `httpclient.*`.
    pub httpclient: HttpClient,
    /// `trusted-proxies`: address ranges (CIDR) of proxies in front of the
    /// gateway whose `X-Forwarded-*` and `Forwarded` headers are kept and
    /// extended; from anyone else they are replaced. Default is none.
    pub trusted_proxies: Vec<String>,
    /// `set-status.*`.
    pub set_status: SetStatus,
}

/// `spring.cloud.gateway.server.*`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default, rename_all = "kebab-case")]
pub struct WebfluxWrapper {
    /// `spring.cloud.gateway.server.webflux.*`.
    pub webflux: Webflux,
}

/// `spring.cloud.gateway.server.webflux.*`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default, rename_all = "kebab-case")]
pub struct Webflux {
    /// `routes`.
    pub routes: Vec<Value>,
    /// `default-filters`.
    pub default_filters: Vec<Value>,
    /// `discovery.*`.
    pub discovery: Discovery,
    /// `trusted-proxies`.
    pub trusted_proxies: Vec<String>,
}

/// `discovery.*`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default, rename_all = "kebab-case")]
pub struct Discovery {
    /// `discovery.locator.*`.
    pub locator: Locator,
}

/// `discovery.locator.*`: a route per known service.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default, rename_all = "kebab-case")]
pub struct Locator {
    /// `enabled`: route `/<service>/**` to `lb://<service>`, the prefix
    /// removed. Default is false.
    pub enabled: bool,
    /// `lower-case-service-id`: use the lower-cased service name in the
    /// path. Default is false.
    pub lower_case_service_id: bool,
}

/// `httpclient.*`: the upstream connections.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, rename_all = "kebab-case")]
pub struct HttpClient {
    /// `connect-timeout` in milliseconds. Default is 30,000.
    pub connect_timeout: u64,
    /// `response-timeout`: time for the upstream's response head. Default
    /// is 60 s (SCG has none; nginx's `proxy_read_timeout` is 60 s); `0`
    /// waits forever.
    #[serde(with = "duration_field")]
    pub response_timeout: Duration,
    /// `pool.*`.
    pub pool: Pool,
    /// `ssl.*`: how `https://` upstreams are trusted.
    pub ssl: crate::tls::ClientSsl,
}

impl Default for HttpClient {
    fn default() -> Self {
        HttpClient {
            connect_timeout: 30_000,
            response_timeout: Duration::from_secs(60),
            pool: Pool::default(),
            ssl: crate::tls::ClientSsl::default(),
        }
    }
}

/// `httpclient.pool.*`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, rename_all = "kebab-case")]
pub struct Pool {
    /// `max-idle-time`: an idle pooled connection is closed after it.
    /// Default is 30 s, below the 60 s keep-alive of common upstreams so the
    /// gateway closes first.
    #[serde(with = "duration_field")]
    pub max_idle_time: Duration,
    /// `max-idle-per-host`: idle connections kept per upstream. Default is
    /// 256.
    pub max_idle_per_host: usize,
}

impl Default for Pool {
    fn default() -> Self {
        Pool {
            max_idle_time: Duration::from_secs(30),
            max_idle_per_host: 256,
        }
    }
}

/// `set-status.*`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default, rename_all = "kebab-case")]
pub struct SetStatus {
    /// `original-status-header-name`: where `SetStatus` keeps the
    /// upstream's status. Default is none.
    pub original_status_header_name: String,
}

mod duration_field {
    use std::time::Duration;

    pub(super) fn serialize<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        cloud_runtime::duration::serialize_millis(d, s)
    }

    pub(super) fn deserialize<'de, D: serde::Deserializer<'de>>(
        d: D,
    ) -> Result<Duration, D::Error> {
        cloud_runtime::duration::deserialize(d)
    }
}

/// Where settings come from, kept so that a refresh reads them again.
#[derive(Clone)]
pub struct Source {
    /// `--config FILE`.
    pub file: Option<PathBuf>,
    /// The environment (the process's, or a map in tests).
    pub env: std::sync::Arc<dyn Environment + Send + Sync>,
    /// Flags as `(dotted key, value, flag name)`.
    pub flags: Vec<(String, Value, String)>,
}

impl std::fmt::Debug for Source {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Source")
            .field("file", &self.file)
            .field("flags", &self.flags)
            .finish_non_exhaustive()
    }
}

impl Source {
    /// Settings from `file` alone (no environment, no flags), as tests use.
    pub fn file(file: impl Into<PathBuf>) -> Source {
        Source {
            file: Some(file.into()),
            env: std::sync::Arc::new(std::collections::BTreeMap::<String, String>::new()),
            flags: Vec::new(),
        }
    }

    /// Layers and reads the settings.
    pub fn load(&self) -> Result<Settings, ConfigError> {
        let mut layers = Layers::new::<Settings>()?
            .optional_file(self.file.as_deref())?
            .env(self.env.as_ref());
        for (key, value, flag) in &self.flags {
            layers = layers.set(key, value.clone(), flag);
        }
        layers.load()
    }
}

/// Settings that cannot be used: a bad value or a bad route.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// A value does not fit its key.
    #[error(transparent)]
    Settings(#[from] ConfigError),
    /// A route cannot be compiled.
    #[error(transparent)]
    Route(#[from] RouteError),
    /// The task reading the settings did not finish.
    #[error("reading the settings was interrupted")]
    Interrupted(#[from] tokio::task::JoinError),
}

impl LoadError {
    /// Whether a route is at fault.
    pub fn is_route(&self) -> bool {
        matches!(self, LoadError::Route(_))
    }
}

impl GatewaySettings {
    /// Every route definition, from both prefixes (`routes` first).
    pub fn route_definitions(
        &self,
        file: Option<&Path>,
    ) -> Result<Vec<RouteDefinition>, RouteError> {
        let file = file.map(Path::to_path_buf);
        let mut defs = parse_routes(&self.routes, file.as_ref(), 0)?;
        defs.extend(parse_routes(
            &self.server.webflux.routes,
            file.as_ref(),
            self.routes.len(),
        )?);
        Ok(defs)
    }

    /// The default filters, from both prefixes.
    pub fn default_filter_definitions(
        &self,
        file: Option<&Path>,
    ) -> Result<Vec<Definition>, RouteError> {
        let all: Vec<Value> = self
            .default_filters
            .iter()
            .chain(&self.server.webflux.default_filters)
            .cloned()
            .collect();
        definitions(&Value::Array(all), "default filter")
            .map_err(|e| RouteError::new(file.map(Path::to_path_buf), "default-filters", e))
    }

    /// Whether the discovery locator is on (either prefix).
    pub fn locator(&self) -> Locator {
        Locator {
            enabled: self.discovery.locator.enabled
                || self.server.webflux.discovery.locator.enabled,
            lower_case_service_id: self.discovery.locator.lower_case_service_id
                || self.server.webflux.discovery.locator.lower_case_service_id,
        }
    }

    /// The trusted proxies (either prefix).
    pub fn trusted_proxies(&self) -> impl Iterator<Item = &String> {
        self.trusted_proxies
            .iter()
            .chain(&self.server.webflux.trusted_proxies)
    }
}

/// The route SCG's discovery locator makes for `service`: `/<service>/**`
/// to `lb://<service>` with the first segment removed.
pub fn locator_route(service: &str, locator: &Locator) -> RouteDefinition {
    let path_name = if locator.lower_case_service_id {
        service.to_lowercase()
    } else {
        service.to_owned()
    };
    RouteDefinition {
        id: format!("ReactiveCompositeDiscoveryClient_{service}"),
        uri: format!("lb://{service}"),
        order: 0,
        predicates: vec![Definition::shortcut(&format!("Path=/{path_name}/**"))],
        filters: vec![Definition::shortcut(&format!(
            "RewritePath=/{path_name}/?(?<remaining>.*), /${{remaining}}"
        ))],
        metadata: serde_json::Map::new(),
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::sync::Arc;

    use super::*;

    #[test]
    fn environment_and_flags_layer_over_defaults_with_spring_names() {
        let env: BTreeMap<String, String> = [
            ("SPRING_CLOUD_GATEWAY_HTTPCLIENT_RESPONSETIMEOUT", "250ms"),
            ("SPRING_CLOUD_GATEWAY_HTTPCLIENT_CONNECTTIMEOUT", "1500"),
            ("SPRING_CLOUD_GATEWAY_DISCOVERY_LOCATOR_ENABLED", "true"),
            ("MANAGEMENT_SERVER_PORT", "9001"),
            ("SERVER_PORT", "7000"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
        let source = Source {
            file: None,
            env: Arc::new(env),
            flags: vec![(
                "server.port".to_owned(),
                Value::from(7100),
                "--port".to_owned(),
            )],
        };
        let s = source.load().expect("loads");
        let gw = &s.spring.cloud.gateway;
        assert_eq!(gw.httpclient.response_timeout, Duration::from_millis(250));
        assert_eq!(gw.httpclient.connect_timeout, 1500);
        assert!(gw.locator().enabled);
        assert_eq!(s.management.server.port, 9001);
        assert_eq!(s.server.port, 7100, "the flag wins over the environment");
        assert_eq!(s.management.server.address, "127.0.0.1");
        assert_eq!(gw.httpclient.pool.max_idle_time, Duration::from_secs(30));
    }

    #[test]
    fn a_bad_value_names_its_origin_and_key() {
        let env: BTreeMap<String, String> = [(
            "SPRING_CLOUD_GATEWAY_HTTPCLIENT_CONNECTTIMEOUT".to_owned(),
            "soon".to_owned(),
        )]
        .into();
        let source = Source {
            file: None,
            env: Arc::new(env),
            flags: Vec::new(),
        };
        let e = source.load().expect_err("not a number").to_string();
        assert!(
            e.contains("SPRING_CLOUD_GATEWAY_HTTPCLIENT_CONNECTTIMEOUT"),
            "{e}"
        );
        assert!(e.contains("connect-timeout"), "{e}");
    }

    #[test]
    fn locator_routes_strip_the_service_segment() {
        let r = locator_route(
            "USERS",
            &Locator {
                enabled: true,
                lower_case_service_id: true,
            },
        );
        assert_eq!(r.uri, "lb://USERS");
        assert_eq!(r.predicates[0].to_string(), "Path=/users/**");
        assert_eq!(
            r.filters[0].to_string(),
            "RewritePath=/users/?(?<remaining>.*), /${remaining}"
        );
    }
}
