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
//!         pool: { max-idle-time: 30s, max-idle-per-host: 256, type: ELASTIC,   # or FIXED, DISABLED
//!                 max-connections: 16, acquire-timeout: 45000, max-life-time: 0 }
//!       x-forwarded: { enabled: true, prefix-enabled: true, host-append: true, ... }
//!       forwarded.enabled: true
//!       metrics: { enabled: true, prefix: spring.cloud.gateway, tags: { region: eu } }
//!       redis-rate-limiter: { include-headers: true, remaining-header: X-RateLimit-Remaining, ... }
//!       filter.request-rate-limiter: { deny-empty-key: true, empty-key-status-code: FORBIDDEN }
//!       # httpclient and the keys after it also under server.webflux (SCG 4.3)
//!       trusted-proxies: []          # CIDRs whose X-Forwarded-*/Forwarded are kept
//!       set-status.original-status-header-name: ""
//!       loadbalancer.strategy: power-of-two-choices   # or round-robin, random, weighted
//!     # (ours) spring.application.name: api-gateway (the name it registers under)
//! resilience4j: { circuitbreaker: ..., timelimiter: ... }
//! spring.data.redis:                 # or spring.redis; RequestRateLimiter through Redis
//!   host: localhost                  # or url: redis://user:pass@host:6379/0
//!   port: 6379
//!   timeout: 100ms                   # then the request is let through
//! eureka:                            # cloud-client's keys; the registry for lb://
//!   client:
//!     service-url.defaultZone: ""    # set it (or EUREKA_CLIENT_SERVICEURL_DEFAULTZONE) to use a registry
//!     registry-fetch-interval-seconds: 30
//!     register-with-eureka: false    # the gateway's default; true registers it
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
    /// `eureka.*`: the registry `lb://` routes resolve through.
    pub eureka: Eureka,
    /// `reactor.*`: Reactor Netty's switches that SCG users set as system
    /// properties (`-Dreactor.netty.http.server.accessLogEnabled=true`).
    pub reactor: Reactor,
}

/// `reactor.*`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default, rename_all = "kebab-case")]
pub struct Reactor {
    /// `reactor.netty.*`.
    pub netty: ReactorNetty,
}

/// `reactor.netty.*`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default, rename_all = "kebab-case")]
pub struct ReactorNetty {
    /// `reactor.netty.http.*`.
    pub http: ReactorHttp,
}

/// `reactor.netty.http.*`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default, rename_all = "kebab-case")]
pub struct ReactorHttp {
    /// `reactor.netty.http.server.*`.
    pub server: ReactorHttpServer,
}

/// `reactor.netty.http.server.*`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default, rename_all = "kebab-case")]
pub struct ReactorHttpServer {
    /// `reactor.netty.http.server.access-log-enabled` (Reactor Netty's
    /// `accessLogEnabled`): one line per request on the proxy port, in
    /// Reactor Netty's format (see `access_log.rs`). Read at start.
    pub access_log_enabled: bool,
}

/// `eureka.*`: cloud-client's Eureka settings with the gateway's defaults:
/// no registry until `eureka.client.service-url.defaultZone` is set, and
/// `register-with-eureka` false (the gateway fetches the registry; it
/// registers itself only when asked).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Eureka(pub cloud_client::settings::EurekaSettings);

impl Default for Eureka {
    fn default() -> Self {
        let mut e = cloud_client::settings::EurekaSettings::default();
        e.client.register_with_eureka = false;
        e.client.service_url =
            std::collections::BTreeMap::from([("defaultZone".to_owned(), String::new())]);
        Eureka(e)
    }
}

impl Eureka {
    /// Whether a registry is configured: the client is enabled and some
    /// zone lists a server URL.
    pub fn is_configured(&self) -> bool {
        let c = &self.0.client;
        c.enabled && c.service_url.values().any(|urls| !urls.trim().is_empty())
    }
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
    #[serde(flatten, deserialize_with = "cloud_runtime::settings::flattened")]
    pub limits: ServeLimits,
    /// `server.ssl.*`: TLS for clients.
    pub ssl: crate::tls::Ssl,
    /// `server.compression.*`: gzip responses (see [`crate::compress`]).
    pub compression: crate::compress::CompressionSettings,
    /// `server.http2.*`.
    pub http2: Http2,
}

/// `server.http2.*`. Clients may speak HTTP/2 whatever this says (h2c, or
/// ALPN `h2` over TLS); as in SCG, `enabled` offers HTTP/2 to `https`
/// upstreams too, which gRPC needs.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct Http2 {
    /// `server.http2.enabled`. Default is false.
    pub enabled: bool,
}

impl Default for Server {
    fn default() -> Self {
        Server {
            port: 8080,
            address: "0.0.0.0".to_owned(),
            limits: ServeLimits::default(),
            ssl: crate::tls::Ssl::default(),
            compression: crate::compress::CompressionSettings::default(),
            http2: Http2::default(),
        }
    }
}

/// `management.*`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default, rename_all = "kebab-case")]
pub struct Management {
    /// `management.server.*`.
    pub server: ManagementServer,
    /// `management.endpoint.*`: of Spring Boot's per-endpoint keys, those
    /// of the `gateway` endpoint.
    pub endpoint: ManagementEndpoint,
    /// `management.endpoints.*`: of the keys for all endpoints,
    /// `access.default`.
    pub endpoints: ManagementEndpoints,
}

/// `management.endpoint.*`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default, rename_all = "kebab-case")]
pub struct ManagementEndpoint {
    /// `management.endpoint.gateway.*`.
    pub gateway: EndpointSwitch,
}

/// One endpoint's `access` and (Spring Boot 3.3's, deprecated) `enabled`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default, rename_all = "kebab-case")]
pub struct EndpointSwitch {
    /// `access`: `none`, `read-only` or `unrestricted`; empty when unset.
    pub access: String,
    /// `enabled`: `true` is `access: unrestricted`, `false` is `none`;
    /// empty when unset.
    pub enabled: String,
}

/// `management.endpoints.*`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default, rename_all = "kebab-case")]
pub struct ManagementEndpoints {
    /// `management.endpoints.access.*`.
    pub access: EndpointsAccess,
}

/// `management.endpoints.access.*`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default, rename_all = "kebab-case")]
pub struct EndpointsAccess {
    /// `default`: every endpoint's access unless its own says otherwise;
    /// empty when unset.
    pub default: String,
}

/// What `/actuator/gateway/*` allows: Spring Boot's access levels, and
/// ours when none is set.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EndpointAccess {
    /// `none`: no view at all (404).
    None,
    /// `read-only`: the views, without refreshing (404) or saving and
    /// deleting routes (405), as SCG answers then.
    ReadOnly,
    /// Nothing set (ours): the views and refresh, not saving or deleting
    /// routes. SCG's endpoint is off unless an access is set.
    Refresh,
    /// `unrestricted`: everything, saving and deleting routes too.
    Unrestricted,
}

impl Management {
    /// The gateway endpoint's access: `management.endpoint.gateway.access`,
    /// else `management.endpoint.gateway.enabled` (`true` is unrestricted,
    /// as SCG documents, `false` none), else
    /// `management.endpoints.access.default`, else
    /// [`EndpointAccess::Refresh`]. Fails with the key and the reason for a
    /// value that is not a level.
    pub fn gateway_access(&self) -> Result<EndpointAccess, (&'static str, String)> {
        let parse = |key: &'static str, value: &str| match value
            .trim()
            .to_ascii_lowercase()
            .replace('_', "-")
            .as_str()
        {
            "none" => Ok(EndpointAccess::None),
            "read-only" => Ok(EndpointAccess::ReadOnly),
            "unrestricted" => Ok(EndpointAccess::Unrestricted),
            _ => Err((
                key,
                format!("`{value}` is not an access level (none, read-only, unrestricted)"),
            )),
        };
        let own = &self.endpoint.gateway;
        if !own.access.trim().is_empty() {
            return parse("management.endpoint.gateway.access", &own.access);
        }
        match own.enabled.trim().to_ascii_lowercase().as_str() {
            "" => {}
            "true" => return Ok(EndpointAccess::Unrestricted),
            "false" => return Ok(EndpointAccess::None),
            _ => {
                return Err((
                    "management.endpoint.gateway.enabled",
                    format!("`{}` is not true or false", own.enabled),
                ));
            }
        }
        match self.endpoints.access.default.trim() {
            "" => Ok(EndpointAccess::Refresh),
            value => parse("management.endpoints.access.default", value),
        }
    }
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
    /// `spring.data.*`.
    pub data: SpringData,
    /// `spring.redis.*`: Spring Boot 2's name for `spring.data.redis.*`.
    pub redis: RedisSettings,
    /// `spring.application.*`.
    pub application: Application,
    /// `spring.security.*`: the resource server's JWT settings.
    pub security: crate::security::SpringSecurity,
    /// `spring.codec.*`.
    pub codec: Codec,
    /// `spring.ssl.*`: Spring Boot's SSL bundles.
    pub ssl: SpringSsl,
}

/// `spring.ssl.*`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default, rename_all = "kebab-case")]
pub struct SpringSsl {
    /// `spring.ssl.bundle.*`.
    pub bundle: crate::tls::SslBundles,
}

/// `spring.codec.*`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default, rename_all = "kebab-case")]
pub struct Codec {
    /// `max-in-memory-size`: the largest body a filter that reads whole
    /// bodies (`RemoveJsonAttributesResponseBody`) buffers; `256KB` by
    /// default, `-1` for no limit (as Spring).
    pub max_in_memory_size: Option<String>,
}

impl Codec {
    /// `max-in-memory-size` in bytes; the reason when it is not a size.
    pub fn max_in_memory_size(&self) -> Result<usize, String> {
        match self.max_in_memory_size.as_deref().map(str::trim) {
            None | Some("") => Ok(crate::filter::DEFAULT_MAX_IN_MEMORY_SIZE),
            Some("-1") => Ok(usize::MAX),
            Some(text) => crate::filter::parse_data_size(text)
                .and_then(|n| usize::try_from(n).ok())
                .ok_or_else(|| format!("`{text}` is not a size such as 256KB (or -1)")),
        }
    }
}

/// `spring.data.*`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default, rename_all = "kebab-case")]
pub struct SpringData {
    /// `spring.data.redis.*`: the Redis that `RequestRateLimiter` shares
    /// its buckets through.
    pub redis: RedisSettings,
}

/// `spring.data.redis.*` (or `spring.redis.*`): Spring Boot's keys for
/// where Redis is. When `url`, `host` or `port` is set, every
/// `RequestRateLimiter` keeps its buckets in that Redis (with SCG's keys and
/// script) instead of in memory.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "kebab-case")]
pub struct RedisSettings {
    /// `url`: `redis://[user:password@]host:port[/database]`; wins over the
    /// other address keys. Default is none.
    pub url: Option<String>,
    /// `host`. Default is `localhost`.
    pub host: Option<String>,
    /// `port`. Default is 6379.
    #[serde(deserialize_with = "cloud_runtime::settings::optional_number")]
    pub port: Option<u16>,
    /// `username` (Redis 6 ACL). Default is none.
    pub username: Option<String>,
    /// `password`. Default is none.
    pub password: Option<String>,
    /// `database`. Default is 0.
    pub database: u32,
    /// `timeout`: the longest a request waits for Redis before it is let
    /// through. Default is 100 ms (Spring Boot has 60 s; a limiter that
    /// fails open must fail fast).
    #[serde(with = "duration_field")]
    pub timeout: Duration,
    /// `connect-timeout`: the longest a (re)connection attempt takes; made
    /// in the background, never by a request past `timeout`. Default is 1 s.
    #[serde(with = "duration_field")]
    pub connect_timeout: Duration,
}

impl Default for RedisSettings {
    fn default() -> Self {
        RedisSettings {
            url: None,
            host: None,
            port: None,
            username: None,
            password: None,
            database: 0,
            timeout: Duration::from_millis(100),
            connect_timeout: Duration::from_secs(1),
        }
    }
}

impl RedisSettings {
    /// Whether an address is given (`url`, `host` or `port`).
    pub fn is_configured(&self) -> bool {
        self.url.is_some() || self.host.is_some() || self.port.is_some()
    }
}

impl Spring {
    /// The Redis settings in use and their key prefix: `spring.data.redis`
    /// when it names an address, else `spring.redis` when that does, else
    /// none (rate limiters count in memory).
    pub fn redis_settings(&self) -> Option<(&'static str, &RedisSettings)> {
        if self.data.redis.is_configured() {
            Some(("spring.data.redis", &self.data.redis))
        } else if self.redis.is_configured() {
            Some(("spring.redis", &self.redis))
        } else {
            None
        }
    }
}

/// `spring.application.*`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default, rename_all = "kebab-case")]
pub struct Application {
    /// `spring.application.name`: the name the gateway registers under
    /// when `eureka.client.register-with-eureka` is true. Default is unset
    /// (then `api-gateway`).
    pub name: Option<String>,
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
    /// `fail-on-route-definition-error`: a route that does not compile
    /// fails the start (and a reload or refresh keeps the routes in use).
    /// With `false`, as in SCG, it is left out with a warning and the
    /// others serve. Default is true.
    pub fail_on_route_definition_error: DefaultOn,
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
    /// `filter.*`: settings of filter factories.
    pub filter: FilterFactories,
    /// `global-filter.*`: switches of global filters.
    pub global_filter: GlobalFilters,
    /// `loadbalancer.*`: how `lb://` routes choose an instance, and what
    /// they answer when there is none.
    pub loadbalancer: LoadBalancerSettings,
    /// `jwt.*`: keys and claim rules of `JwtAuth`.
    pub jwt: crate::security::JwtSettings,
    /// `globalcors.*`: CORS by path.
    pub globalcors: crate::cors::GlobalCors,
    /// `reload.*` (ours): reading the settings file again when it changes.
    pub reload: ReloadSettings,
    /// `metrics.*`: the request metric's name and extra labels.
    pub metrics: MetricsSettings,
    /// `redis-rate-limiter.*`: the `X-RateLimit-*` headers.
    pub redis_rate_limiter: RedisRateLimiterSettings,
    /// `redis-route-definition-repository.*`: routes saved through the
    /// admin API kept in Redis (see [`crate::route_store`]).
    pub redis_route_definition_repository: RepositorySwitch,
    /// `x-forwarded.*`: which `X-Forwarded-*` headers are written.
    pub x_forwarded: XForwardedSettings,
    /// `forwarded.*`: whether `Forwarded` is written.
    pub forwarded: ForwardedSettings,
}

/// `spring.cloud.gateway.x-forwarded.*` (SCG's `XForwardedHeadersFilter`
/// switches): every header is written and a trusted proxy's value extended
/// unless turned off here. A header that is off is not written; a trusted
/// proxy's value of it passes and anyone else's is removed.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, rename_all = "kebab-case")]
pub struct XForwardedSettings {
    /// `enabled`: `false` turns every `X-Forwarded-*` header off.
    pub enabled: bool,
    /// `for-enabled`.
    pub for_enabled: bool,
    /// `host-enabled`.
    pub host_enabled: bool,
    /// `port-enabled`.
    pub port_enabled: bool,
    /// `proto-enabled`.
    pub proto_enabled: bool,
    /// `prefix-enabled`.
    pub prefix_enabled: bool,
    /// `for-append`: `false` replaces a trusted proxy's value.
    pub for_append: bool,
    /// `host-append`.
    pub host_append: bool,
    /// `port-append`.
    pub port_append: bool,
    /// `proto-append`.
    pub proto_append: bool,
    /// `prefix-append`.
    pub prefix_append: bool,
}

impl Default for XForwardedSettings {
    fn default() -> Self {
        XForwardedSettings {
            enabled: true,
            for_enabled: true,
            host_enabled: true,
            port_enabled: true,
            proto_enabled: true,
            prefix_enabled: true,
            for_append: true,
            host_append: true,
            port_append: true,
            proto_append: true,
            prefix_append: true,
        }
    }
}

/// `spring.cloud.gateway.forwarded.*`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, rename_all = "kebab-case")]
pub struct ForwardedSettings {
    /// `enabled`: `false` stops writing `Forwarded` (a trusted proxy's
    /// passes, anyone else's is removed).
    pub enabled: bool,
}

impl Default for ForwardedSettings {
    fn default() -> Self {
        ForwardedSettings { enabled: true }
    }
}

impl GatewaySettings {
    /// The forwarding headers to write, from `x-forwarded.*` and
    /// `forwarded.enabled`.
    pub fn forwarding_headers(&self) -> crate::proxy::ForwardingHeaders {
        let x = &self.x_forwarded;
        let switch = |enabled: bool, append: bool| crate::proxy::Switch {
            enabled: x.enabled && enabled,
            append,
        };
        crate::proxy::ForwardingHeaders {
            for_: switch(x.for_enabled, x.for_append),
            proto: switch(x.proto_enabled, x.proto_append),
            host: switch(x.host_enabled, x.host_append),
            port: switch(x.port_enabled, x.port_append),
            prefix: switch(x.prefix_enabled, x.prefix_append),
            forwarded: self.forwarded.enabled,
        }
    }
}

/// `spring.cloud.gateway.metrics.*` (or `server.webflux.metrics.*`): how
/// `/actuator/prometheus` names and labels the request metric.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, rename_all = "kebab-case")]
pub struct MetricsSettings {
    /// `enabled`: `false` drops the request metric and the route count.
    /// Default is true (as SCG 4.3).
    pub enabled: bool,
    /// `prefix`: the metric names' start. Default is `spring.cloud.gateway`
    /// (`spring_cloud_gateway_requests_seconds`).
    pub prefix: String,
    /// `tags`: labels added to every request series (`region: eu`).
    pub tags: serde_json::Map<String, Value>,
}

impl Default for MetricsSettings {
    fn default() -> Self {
        MetricsSettings {
            enabled: true,
            prefix: "spring.cloud.gateway".to_owned(),
            tags: serde_json::Map::new(),
        }
    }
}

/// `spring.cloud.gateway.reload.*` (ours).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, rename_all = "kebab-case")]
pub struct ReloadSettings {
    /// `interval`: how often the settings file is read again; when its
    /// bytes changed, the routes are refreshed as by
    /// `POST /actuator/gateway/refresh`. `0` turns it off. Read at start.
    /// Default is 5 s.
    #[serde(with = "duration_field")]
    pub interval: Duration,
}

impl Default for ReloadSettings {
    fn default() -> Self {
        ReloadSettings {
            interval: Duration::from_secs(5),
        }
    }
}

/// `spring.cloud.gateway.loadbalancer.*`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default, rename_all = "kebab-case")]
pub struct LoadBalancerSettings {
    /// `strategy` (ours): read at start. Default is
    /// `power-of-two-choices`.
    pub strategy: BalanceStrategy,
    /// `use404` (SCG's): answer `404` rather than `503` when an `lb://`
    /// service has no UP instance. Default is false.
    pub use404: bool,
}

/// How an `lb://` route chooses among the UP instances of its service
/// (cloud-client's strategies).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum BalanceStrategy {
    /// Two at random, the lower peak-EWMA latency times requests in flight
    /// wins (tower's and Finagle's P2C). A new instance, never timed, wins
    /// its first draw, so it is tried at once and then competes on its own
    /// latency.
    #[default]
    PowerOfTwoChoices,
    /// Each in turn (Spring Cloud LoadBalancer's default).
    RoundRobin,
    /// Uniformly at random.
    Random,
    /// At random in proportion to the instance metadata `weight`.
    Weighted,
}

/// `spring.cloud.gateway.server.*`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default, rename_all = "kebab-case")]
pub struct WebfluxWrapper {
    /// `spring.cloud.gateway.server.webflux.*`.
    pub webflux: Webflux,
}

/// A repository's `enabled` switch (default off).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default, rename_all = "kebab-case")]
pub struct RepositorySwitch {
    /// `enabled`.
    pub enabled: bool,
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
    /// `globalcors.*`.
    pub globalcors: crate::cors::GlobalCors,
    /// `redis-route-definition-repository.*` (SCG 4.3's key).
    pub redis_route_definition_repository: RepositorySwitch,
}

/// A switch that is on unless turned off.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct DefaultOn(pub bool);

impl Default for DefaultOn {
    fn default() -> Self {
        DefaultOn(true)
    }
}

/// `spring.cloud.gateway.filter.*`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default, rename_all = "kebab-case")]
pub struct FilterFactories {
    /// `local-response-cache.*`.
    pub local_response_cache: LocalResponseCacheSettings,
    /// `request-rate-limiter.*`.
    pub request_rate_limiter: RequestRateLimiterSettings,
    /// `secure-headers.*`.
    pub secure_headers: SecureHeadersSettings,
    /// `remove-hop-by-hop.*`.
    pub remove_hop_by_hop: RemoveHopByHopSettings,
}

/// `spring.cloud.gateway.filter.remove-hop-by-hop.*`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, rename_all = "kebab-case")]
pub struct RemoveHopByHopSettings {
    /// `headers`: removed from every request and response, SCG's set by
    /// default. The connection's own (`connection`, `keep-alive`, `te`,
    /// `trailer`, `transfer-encoding`, `upgrade`) go whatever it says.
    pub headers: Vec<String>,
}

impl Default for RemoveHopByHopSettings {
    fn default() -> Self {
        RemoveHopByHopSettings {
            headers: crate::proxy::HopByHop::DEFAULT
                .iter()
                .map(|n| (*n).to_owned())
                .collect(),
        }
    }
}

/// `spring.cloud.gateway.filter.secure-headers.*`: the values `SecureHeaders`
/// sets, and which headers a `SecureHeaders` without arguments sets. SCG's
/// defaults.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, rename_all = "kebab-case")]
pub struct SecureHeadersSettings {
    /// `X-Xss-Protection`. Default is `1 ; mode=block`.
    pub xss_protection_header: String,
    /// `Strict-Transport-Security`. Default is `max-age=631138519`.
    pub strict_transport_security: String,
    /// `X-Frame-Options`. Default is `DENY`.
    pub frame_options: String,
    /// `X-Content-Type-Options`. Default is `nosniff`.
    pub content_type_options: String,
    /// `Referrer-Policy`. Default is `no-referrer`.
    pub referrer_policy: String,
    /// `Content-Security-Policy`. Default is SCG's.
    pub content_security_policy: String,
    /// `X-Download-Options`. Default is `noopen`.
    pub download_options: String,
    /// `X-Permitted-Cross-Domain-Policies`. Default is `none`.
    pub permitted_cross_domain_policies: String,
    /// `Permissions-Policy`, set only when enabled. Default is SCG's, which
    /// turns off every browser feature it lists.
    pub permissions_policy: String,
    /// `disable`: lower-case names of headers not to set.
    pub disable: Vec<String>,
    /// `enable`: names of headers to set beyond the eight
    /// (`permissions-policy`).
    pub enable: Vec<String>,
}

impl Default for SecureHeadersSettings {
    fn default() -> Self {
        let value = |header: &str| {
            crate::filter::secure_header_index(header)
                .map(|i| crate::filter::secure_header_default(i).to_owned())
                .unwrap_or_default()
        };
        let mut settings = SecureHeadersSettings {
            xss_protection_header: String::new(),
            strict_transport_security: String::new(),
            frame_options: String::new(),
            content_type_options: String::new(),
            referrer_policy: String::new(),
            content_security_policy: String::new(),
            download_options: String::new(),
            permitted_cross_domain_policies: String::new(),
            permissions_policy: String::new(),
            disable: Vec::new(),
            enable: Vec::new(),
        };
        for (header, _, field) in settings.by_header() {
            *field = value(header);
        }
        settings
    }
}

impl SecureHeadersSettings {
    /// Each header's name, its key under `filter.secure-headers` and its
    /// value here: the one place that pairs them.
    fn by_header(&mut self) -> [(&'static str, &'static str, &mut String); 9] {
        [
            (
                "x-xss-protection",
                "xss-protection-header",
                &mut self.xss_protection_header,
            ),
            (
                "strict-transport-security",
                "strict-transport-security",
                &mut self.strict_transport_security,
            ),
            ("x-frame-options", "frame-options", &mut self.frame_options),
            (
                "x-content-type-options",
                "content-type-options",
                &mut self.content_type_options,
            ),
            (
                "referrer-policy",
                "referrer-policy",
                &mut self.referrer_policy,
            ),
            (
                "content-security-policy",
                "content-security-policy",
                &mut self.content_security_policy,
            ),
            (
                "x-download-options",
                "download-options",
                &mut self.download_options,
            ),
            (
                "x-permitted-cross-domain-policies",
                "permitted-cross-domain-policies",
                &mut self.permitted_cross_domain_policies,
            ),
            (
                "permissions-policy",
                "permissions-policy",
                &mut self.permissions_policy,
            ),
        ]
    }
}

/// `spring.cloud.gateway.filter.request-rate-limiter.*`: what a
/// `RequestRateLimiter` does with a request without a key, unless its own
/// arguments say.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, rename_all = "kebab-case")]
pub struct RequestRateLimiterSettings {
    /// `deny-empty-key`: refuse a request whose key is empty. Default is
    /// true.
    pub deny_empty_key: bool,
    /// `empty-key-status-code`: the status of that refusal, as a number or
    /// Spring's name. Default is `FORBIDDEN`.
    pub empty_key_status_code: String,
}

impl Default for RequestRateLimiterSettings {
    fn default() -> Self {
        RequestRateLimiterSettings {
            deny_empty_key: true,
            empty_key_status_code: "FORBIDDEN".to_owned(),
        }
    }
}

/// `spring.cloud.gateway.redis-rate-limiter.*`: the `X-RateLimit-*`
/// headers of every `RequestRateLimiter` (in memory or through Redis).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, rename_all = "kebab-case")]
pub struct RedisRateLimiterSettings {
    /// `include-headers`: add them to responses. Default is true.
    pub include_headers: bool,
    /// `remaining-header`. Default is `X-RateLimit-Remaining`.
    pub remaining_header: String,
    /// `replenish-rate-header`. Default is `X-RateLimit-Replenish-Rate`.
    pub replenish_rate_header: String,
    /// `burst-capacity-header`. Default is `X-RateLimit-Burst-Capacity`.
    pub burst_capacity_header: String,
    /// `requested-tokens-header`. Default is `X-RateLimit-Requested-Tokens`.
    pub requested_tokens_header: String,
}

impl Default for RedisRateLimiterSettings {
    fn default() -> Self {
        RedisRateLimiterSettings {
            include_headers: true,
            remaining_header: "X-RateLimit-Remaining".to_owned(),
            replenish_rate_header: "X-RateLimit-Replenish-Rate".to_owned(),
            burst_capacity_header: "X-RateLimit-Burst-Capacity".to_owned(),
            requested_tokens_header: "X-RateLimit-Requested-Tokens".to_owned(),
        }
    }
}

/// `spring.cloud.gateway.filter.local-response-cache.*`: SCG's response
/// cache.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "kebab-case")]
pub struct LocalResponseCacheSettings {
    /// `enabled`: one cache in front of every route without its own
    /// `LocalResponseCache` (unless `global-filter.local-response-cache.enabled`
    /// is false). Default is false.
    pub enabled: bool,
    /// `time-to-live`: how long an entry is served, for the global cache
    /// and routes that do not say. Default is 5 minutes.
    #[serde(with = "duration_field")]
    pub time_to_live: Duration,
    /// `size`: the most body bytes one cache keeps (`500MB`). Default is
    /// 100MB (SCG has no bound).
    pub size: Option<String>,
    /// `request.*`.
    pub request: CacheRequestOptions,
}

impl Default for LocalResponseCacheSettings {
    fn default() -> Self {
        LocalResponseCacheSettings {
            enabled: false,
            time_to_live: Duration::from_secs(5 * 60),
            size: None,
            request: CacheRequestOptions::default(),
        }
    }
}

/// `local-response-cache.request.*`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "kebab-case")]
pub struct CacheRequestOptions {
    /// `no-cache-strategy`: what a request with `Cache-Control: no-cache`
    /// does to the entry: `SKIP_UPDATE_CACHE_ENTRY` (the default: the fresh
    /// response is passed on, the entry stays) or `UPDATE_CACHE_ENTRY`.
    pub no_cache_strategy: String,
}

impl Default for CacheRequestOptions {
    fn default() -> Self {
        CacheRequestOptions {
            no_cache_strategy: "SKIP_UPDATE_CACHE_ENTRY".to_owned(),
        }
    }
}

/// `spring.cloud.gateway.global-filter.*`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default, rename_all = "kebab-case")]
pub struct GlobalFilters {
    /// `local-response-cache.*`.
    pub local_response_cache: GlobalFilterSwitch,
}

/// `global-filter.<name>.enabled`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, rename_all = "kebab-case")]
pub struct GlobalFilterSwitch {
    /// `enabled`. Default is true.
    pub enabled: bool,
}

impl Default for GlobalFilterSwitch {
    fn default() -> Self {
        GlobalFilterSwitch { enabled: true }
    }
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
    /// `proxy.*`: a forward proxy upstreams are reached through.
    pub proxy: ProxySettings,
}

impl Default for HttpClient {
    fn default() -> Self {
        HttpClient {
            connect_timeout: 30_000,
            response_timeout: Duration::from_secs(60),
            pool: Pool::default(),
            ssl: crate::tls::ClientSsl::default(),
            proxy: ProxySettings::default(),
        }
    }
}

/// `httpclient.proxy.*`: SCG's forward proxy for upstream connections.
/// Its `Debug` hides the password.
#[derive(Clone, Serialize, Deserialize)]
#[serde(default, rename_all = "kebab-case")]
pub struct ProxySettings {
    /// `type`: `HTTP` (the default; a `CONNECT` tunnel per connection).
    /// Reactor Netty's `SOCKS4` and `SOCKS5` are refused at start.
    #[serde(rename = "type")]
    pub proxy_type: String,
    /// `host`: the proxy; none (the default) reaches upstreams directly.
    pub host: String,
    /// `port`: required with `host` (`0`, the default, is none).
    pub port: u16,
    /// `username` and `password`: `Proxy-Authorization: Basic`.
    pub username: String,
    /// See `username`.
    pub password: String,
    /// `non-proxy-hosts-pattern` (also `nonProxyHostsPattern`): a regular
    /// expression for the hosts reached directly, matched whole and
    /// ignoring case.
    #[serde(alias = "nonProxyHostsPattern")]
    pub non_proxy_hosts_pattern: String,
}

impl Default for ProxySettings {
    fn default() -> Self {
        ProxySettings {
            proxy_type: "HTTP".to_owned(),
            host: String::new(),
            port: 0,
            username: String::new(),
            password: String::new(),
            non_proxy_hosts_pattern: String::new(),
        }
    }
}

impl std::fmt::Debug for ProxySettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProxySettings")
            .field("type", &self.proxy_type)
            .field("host", &self.host)
            .field("port", &self.port)
            .field("username", &self.username)
            .field("password", &"***")
            .field("non_proxy_hosts_pattern", &self.non_proxy_hosts_pattern)
            .finish()
    }
}

impl ProxySettings {
    /// The forward proxy, if `host` is set; else the key (under
    /// `httpclient.proxy.`) and reason of what is wrong.
    pub fn forward_proxy(
        &self,
    ) -> Result<Option<crate::proxy::ForwardProxy>, (&'static str, String)> {
        if self.host.trim().is_empty() {
            return Ok(None);
        }
        if !self.proxy_type.eq_ignore_ascii_case("HTTP") {
            return Err((
                "type",
                format!(
                    "`{}` proxies are not supported: only HTTP (CONNECT tunnels)",
                    self.proxy_type
                ),
            ));
        }
        let port = self.port;
        if port == 0 {
            return Err(("port", "is required with proxy.host".to_owned()));
        }
        let host = self.host.trim();
        let authority = match host.contains(':') && !host.starts_with('[') {
            true => format!("[{host}]:{port}"),
            false => format!("{host}:{port}"),
        };
        let authorization = match self.username.is_empty() {
            true => None,
            false => {
                let credentials =
                    cloud_runtime::auth::Credentials::new(&self.username, &self.password);
                let value = http::HeaderValue::from_str(&credentials.basic_value());
                Some(value.map_err(|_| {
                    (
                        "username",
                        "the credentials cannot be sent in Proxy-Authorization".to_owned(),
                    )
                })?)
            }
        };
        let exempt = crate::proxy::ForwardProxy::exempt_pattern(&self.non_proxy_hosts_pattern)
            .map_err(|e| {
                (
                    "non-proxy-hosts-pattern",
                    format!("not a regular expression: {e}"),
                )
            })?;
        Ok(Some(crate::proxy::ForwardProxy::new(
            authority,
            authorization,
            exempt,
        )))
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
    /// `type`: `ELASTIC` (as many connections per upstream as requests
    /// need; the default, as SCG's), `FIXED` (at most `max-connections`) or
    /// `DISABLED` (a new connection per request). Read at start.
    #[serde(rename = "type")]
    pub pool_type: String,
    /// `max-connections`: under `FIXED`, the most connections one upstream
    /// may have open. Default is Reactor Netty's: twice the CPUs, at least
    /// 16.
    pub max_connections: usize,
    /// `acquire-timeout`: under `FIXED`, the longest a request waits for a
    /// connection (in ms, or with a unit); then it is answered 503. Default
    /// is 45 s.
    #[serde(with = "duration_field")]
    pub acquire_timeout: Duration,
    /// `max-life-time`: a connection this old is closed when its request
    /// ends instead of being kept. Default is `0`: none.
    #[serde(with = "duration_field")]
    pub max_life_time: Duration,
}

impl Pool {
    /// The pool's [`crate::proxy::Sizing`], or the reason `type` is not one.
    pub fn sizing(&self) -> Result<crate::proxy::Sizing, String> {
        match self.pool_type.to_ascii_uppercase().as_str() {
            "ELASTIC" => Ok(crate::proxy::Sizing::Elastic),
            "FIXED" => Ok(crate::proxy::Sizing::Fixed {
                max: self.max_connections.max(1),
                acquire_timeout: self.acquire_timeout,
            }),
            "DISABLED" => Ok(crate::proxy::Sizing::Disabled),
            other => Err(format!(
                "`{other}` is no pool type: ELASTIC, FIXED or DISABLED"
            )),
        }
    }
}

impl Default for Pool {
    fn default() -> Self {
        Pool {
            max_idle_time: Duration::from_secs(30),
            max_idle_per_host: 256,
            pool_type: "ELASTIC".to_owned(),
            max_connections: std::thread::available_parallelism()
                .map_or(16, |n| (2 * n.get()).max(16)),
            acquire_timeout: Duration::from_secs(45),
            max_life_time: Duration::ZERO,
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

pub(crate) mod duration_field {
    use std::time::Duration;

    pub(crate) fn serialize<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        cloud_runtime::duration::serialize_millis(d, s)
    }

    pub(crate) fn deserialize<'de, D: serde::Deserializer<'de>>(
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
            .strict_placeholders("eureka.client.service-url")
            // An SCG key this gateway does not read is named at start
            // rather than ignored in silence.
            .warn_unknown_under("spring.cloud.gateway", FREE_MAPS);
        // SCG 4.3 moved these under `server.webflux`; both names bind.
        for key in [
            "httpclient",
            "set-status",
            "x-forwarded",
            "forwarded",
            "metrics",
            "filter",
            "global-filter",
            "redis-rate-limiter",
            "fail-on-route-definition-error",
        ] {
            layers = layers.alias(
                &format!("spring.cloud.gateway.server.webflux.{key}"),
                &format!("spring.cloud.gateway.{key}"),
            );
        }
        let mut layers = layers
            .optional_file(self.file.as_deref())?
            .env(self.env.as_ref());
        for (key, value, flag) in &self.flags {
            layers = layers.set(key, value.clone(), flag);
        }
        layers.load()
    }
}

/// The maps under `spring.cloud.gateway` whose keys are the user's and
/// that have entries by default (see [`Layers::warn_unknown_under`]).
const FREE_MAPS: &[&str] = &["spring.cloud.gateway.jwt.claim-headers"];

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

    /// Whether routes saved through the admin API are kept in Redis
    /// (`redis-route-definition-repository.enabled`, either prefix).
    pub fn routes_in_redis(&self) -> bool {
        self.redis_route_definition_repository.enabled
            || self
                .server
                .webflux
                .redis_route_definition_repository
                .enabled
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

    /// `filter.local-response-cache.*` and whether the global cache is on.
    pub fn local_response_cache(&self) -> (&LocalResponseCacheSettings, bool) {
        let settings = &self.filter.local_response_cache;
        (
            settings,
            settings.enabled && self.global_filter.local_response_cache.enabled,
        )
    }

    /// `RequestRateLimiter`'s defaults: `redis-rate-limiter.*` and
    /// `filter.request-rate-limiter.*`; a bad header name or status is
    /// refused as (key, reason).
    pub fn limiter_defaults(
        &self,
    ) -> Result<crate::filter::ratelimit::LimiterDefaults, (String, String)> {
        let r = &self.redis_rate_limiter;
        let name = |key: &str, value: &str| {
            crate::filter::ratelimit::header_name(value).ok_or_else(|| {
                (
                    format!("spring.cloud.gateway.redis-rate-limiter.{key}"),
                    format!("`{value}` is not a header name"),
                )
            })
        };
        let header_names = match r.include_headers {
            false => None,
            true => Some([
                name("remaining-header", &r.remaining_header)?,
                name("replenish-rate-header", &r.replenish_rate_header)?,
                name("burst-capacity-header", &r.burst_capacity_header)?,
                name("requested-tokens-header", &r.requested_tokens_header)?,
            ]),
        };
        let f = &self.filter.request_rate_limiter;
        let empty_key_status =
            crate::filter::parse_status(&f.empty_key_status_code).ok_or_else(|| {
                (
                    "spring.cloud.gateway.filter.request-rate-limiter.empty-key-status-code"
                        .to_owned(),
                    format!("`{}` is not an HTTP status", f.empty_key_status_code),
                )
            })?;
        Ok(crate::filter::ratelimit::LimiterDefaults {
            header_names,
            deny_empty_key: f.deny_empty_key,
            empty_key_status,
        })
    }

    /// `SecureHeaders`' defaults (`filter.secure-headers.*`); a value that
    /// is not a header value, or a name that is not one of its headers, is
    /// refused as (key, reason).
    pub fn secure_header_defaults(
        &self,
    ) -> Result<crate::filter::SecureHeaderDefaults, (String, String)> {
        let mut s = self.filter.secure_headers.clone();
        let key = |k: &str| format!("spring.cloud.gateway.filter.secure-headers.{k}");
        let mut values = Vec::with_capacity(9);
        for (header, k, v) in s.by_header() {
            let value = http::HeaderValue::from_str(v)
                .map_err(|_| (key(k), format!("`{v}` is not a header value")))?;
            if let Some(place) = crate::filter::secure_header_index(header) {
                values.push((place, value));
            }
        }
        let places = |k: &str, names: &[String]| {
            names
                .iter()
                .map(|n| {
                    crate::filter::secure_header_index(n).ok_or_else(|| {
                        (
                            key(k),
                            format!("`{n}` is not one of SecureHeaders' headers"),
                        )
                    })
                })
                .collect::<Result<Vec<_>, _>>()
        };
        Ok(crate::filter::SecureHeaderDefaults::new(
            values,
            &places("enable", &s.enable)?,
            &places("disable", &s.disable)?,
        ))
    }

    /// The headers every request and response loses
    /// (`filter.remove-hop-by-hop.headers`); a name that is not a header
    /// name is refused as (key, reason).
    pub fn hop_by_hop(&self) -> Result<crate::proxy::HopByHop, (String, String)> {
        crate::proxy::HopByHop::new(
            self.filter
                .remove_hop_by_hop
                .headers
                .iter()
                .map(String::as_str),
        )
        .map_err(|name| {
            (
                "spring.cloud.gateway.filter.remove-hop-by-hop.headers".to_owned(),
                format!("`{name}` is not a header name"),
            )
        })
    }

    /// How the request metric is named and labelled (`metrics.*`). A tag
    /// whose value is not a string, number or boolean is refused as (key,
    /// reason).
    pub fn metrics_format(&self) -> Result<crate::metrics::MetricsFormat, (String, String)> {
        let metrics = &self.metrics;
        let mut tags = Vec::with_capacity(metrics.tags.len());
        for (name, value) in &metrics.tags {
            let value = match value {
                Value::String(s) => s.clone(),
                Value::Number(n) => n.to_string(),
                Value::Bool(b) => b.to_string(),
                _ => {
                    return Err((
                        format!("spring.cloud.gateway.metrics.tags.{name}"),
                        "a tag's value must be a string, number or boolean".to_owned(),
                    ));
                }
            };
            tags.push((name.clone(), value));
        }
        Ok(crate::metrics::MetricsFormat::new(
            metrics.enabled,
            &metrics.prefix,
            tags,
        ))
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
        enabled: true,
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
            ("SERVER_HTTP2_ENABLED", "true"),
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
        assert!(s.server.http2.enabled);
        assert!(!Settings::default().server.http2.enabled, "off by default");
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
    fn redis_settings_come_from_spring_boot_keys_in_the_environment() {
        let env: BTreeMap<String, String> = [
            ("SPRING_DATA_REDIS_HOST", "cache.local"),
            ("SPRING_DATA_REDIS_PORT", "6380"),
            ("SPRING_DATA_REDIS_TIMEOUT", "250ms"),
            ("SPRING_REDIS_HOST", "old.local"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
        let source = Source {
            file: None,
            env: Arc::new(env),
            flags: Vec::new(),
        };
        let s = source.load().expect("loads");
        let (prefix, redis) = s.spring.redis_settings().expect("configured");
        assert_eq!(prefix, "spring.data.redis", "Boot 3's keys win");
        assert_eq!(redis.host.as_deref(), Some("cache.local"));
        assert_eq!(redis.port, Some(6380));
        assert_eq!(redis.timeout, Duration::from_millis(250));
        assert!(Settings::default().spring.redis_settings().is_none());
        // Spring Boot 2's keys, with numbers where text is expected.
        let s = load_file(
            b"spring:\n  redis:\n    host: 10.0.0.5\n    port: 6381\n    password: 123456\n",
        );
        let (prefix, redis) = s.spring.redis_settings().expect("configured");
        assert_eq!(prefix, "spring.redis");
        assert_eq!(redis.port, Some(6381));
        assert_eq!(redis.password.as_deref(), Some("123456"));
    }

    /// The settings of a YAML file holding `yaml`, read as the binary reads
    /// its `--config` file.
    #[test]
    fn secure_headers_bind_under_both_prefixes_and_a_name_not_of_its_headers_is_refused_with_its_key()
     {
        let s = load_file(
            b"spring.cloud.gateway.server.webflux.filter.secure-headers:\n  disable: x-frame-options,strict-transport-security\n  referrer-policy: same-origin\n",
        );
        let gw = &s.spring.cloud.gateway;
        assert_eq!(
            gw.filter.secure_headers.disable,
            ["x-frame-options", "strict-transport-security"],
            "a comma-separated list, under SCG 4.3's prefix"
        );
        assert_eq!(gw.filter.secure_headers.referrer_policy, "same-origin");
        assert_eq!(
            gw.filter.secure_headers.frame_options, "DENY",
            "SCG's default"
        );
        assert!(gw.secure_header_defaults().is_ok());
        let s = load_file(b"spring.cloud.gateway.filter.secure-headers.enable: [x-made-up]\n");
        let (key, reason) = s
            .spring
            .cloud
            .gateway
            .secure_header_defaults()
            .expect_err("refused");
        assert_eq!(key, "spring.cloud.gateway.filter.secure-headers.enable");
        assert!(reason.contains("x-made-up"), "{reason}");
    }

    #[test]
    fn the_hop_by_hop_set_is_scgs_unless_a_file_gives_one_and_a_bad_name_names_its_key() {
        let defaults = load_file(b"server.port: 8080\n");
        assert_eq!(
            defaults.spring.cloud.gateway.hop_by_hop(),
            Ok(crate::proxy::HopByHop::default())
        );
        let s = load_file(
            b"spring.cloud.gateway.server.webflux.filter.remove-hop-by-hop.headers: X-Internal, connection\n",
        );
        let gw = &s.spring.cloud.gateway;
        assert_eq!(
            gw.filter.remove_hop_by_hop.headers,
            ["X-Internal", "connection"]
        );
        assert_eq!(
            gw.hop_by_hop(),
            Ok(crate::proxy::HopByHop::new(["x-internal"]).expect("a name"))
        );
        let s = load_file(b"spring.cloud.gateway.filter.remove-hop-by-hop.headers: [ok, 'a b']\n");
        let (key, reason) = s.spring.cloud.gateway.hop_by_hop().expect_err("refused");
        assert_eq!(key, "spring.cloud.gateway.filter.remove-hop-by-hop.headers");
        assert!(reason.contains("`a b`"), "{reason}");
    }

    #[test]
    fn a_bad_connection_limit_names_its_key_under_server() {
        let mut file = tempfile::Builder::new()
            .suffix(".yml")
            .tempfile()
            .expect("temp file");
        std::io::Write::write_all(
            &mut file,
            b"server:\n  port: 8080\n  io-worker-affinity: sometimes\n",
        )
        .expect("write");
        let e = Source::file(file.path())
            .load()
            .expect_err("not a choice")
            .to_string();
        assert!(
            e.contains("`io-worker-affinity`: unknown variant `sometimes`"),
            "{e}"
        );
        assert!(e.contains(&*file.path().to_string_lossy()), "{e}");
    }

    fn load_file(yaml: &[u8]) -> Settings {
        let mut file = tempfile::Builder::new()
            .suffix(".yml")
            .tempfile()
            .expect("temp file");
        std::io::Write::write_all(&mut file, yaml).expect("write");
        Source::file(file.path()).load().expect("loads")
    }

    #[test]
    fn scg_4_3_httpclient_set_status_and_forwarding_keys_bind_under_server_webflux() {
        let s = load_file(
            b"spring.cloud.gateway:\n  httpclient.connect-timeout: 1000\n  server.webflux:\n    httpclient:\n      response-timeout: 250ms\n      pool.max-idle-time: 5s\n    set-status.original-status-header-name: X-Was\n",
        );
        let gw = &s.spring.cloud.gateway;
        assert_eq!(gw.httpclient.connect_timeout, 1000);
        assert_eq!(gw.httpclient.response_timeout, Duration::from_millis(250));
        assert_eq!(gw.httpclient.pool.max_idle_time, Duration::from_secs(5));
        assert_eq!(gw.set_status.original_status_header_name, "X-Was");

        let s = load_file(
            b"spring.cloud.gateway:\n  x-forwarded.host-append: false\n  server.webflux:\n    x-forwarded.prefix-enabled: false\n    forwarded.enabled: false\n",
        );
        let which = s.spring.cloud.gateway.forwarding_headers();
        assert!(!which.prefix.enabled && which.prefix.append);
        assert!(which.host.enabled && !which.host.append);
        assert!(which.for_.enabled && which.for_.append);
        assert!(!which.forwarded);
        let s = load_file(
            b"spring.cloud.gateway:\n  metrics.tags: { zone: a, team: t }\n  server.webflux.metrics:\n    prefix: edge\n    tags.zone: b\n",
        );
        let metrics = &s.spring.cloud.gateway.metrics;
        assert_eq!(metrics.prefix, "edge");
        assert_eq!(
            metrics.tags["zone"], "b",
            "SCG 4.3's prefix wins key by key"
        );
        assert_eq!(metrics.tags["team"], "t");
        let s = load_file(
            b"spring.cloud.gateway:\n  redis-rate-limiter.remaining-header: X-Left\n  server.webflux:\n    redis-rate-limiter.include-headers: false\n    filter.request-rate-limiter:\n      deny-empty-key: false\n      empty-key-status-code: I_AM_A_TEAPOT\n",
        );
        let s2 = load_file(
            b"spring.cloud.gateway.server.webflux:\n  filter.local-response-cache: { enabled: true, time-to-live: 1m }\n",
        );
        let (cache, global) = s2.spring.cloud.gateway.local_response_cache();
        assert!(global);
        assert_eq!(cache.time_to_live, Duration::from_secs(60));
        let defaults = s.spring.cloud.gateway.limiter_defaults().expect("valid");
        assert!(defaults.header_names.is_none());
        assert!(!defaults.deny_empty_key);
        assert_eq!(defaults.empty_key_status, http::StatusCode::IM_A_TEAPOT);
        let s = load_file(b"spring.cloud.gateway.redis-rate-limiter.remaining-header: X-Left\n");
        let names = s
            .spring
            .cloud
            .gateway
            .limiter_defaults()
            .expect("valid")
            .header_names;
        assert_eq!(names.as_ref().map(|n| n[0].as_str()), Some("x-left"));
        let s = load_file(b"spring.cloud.gateway.redis-rate-limiter.remaining-header: 'no name'\n");
        let (key, _) = s
            .spring
            .cloud
            .gateway
            .limiter_defaults()
            .expect_err("a space");
        assert_eq!(
            key,
            "spring.cloud.gateway.redis-rate-limiter.remaining-header"
        );
        let s = load_file(b"spring.cloud.gateway.x-forwarded.enabled: false\n");
        let which = s.spring.cloud.gateway.forwarding_headers();
        assert!(!which.for_.enabled && !which.port.enabled && !which.proto.enabled);
        assert!(which.forwarded);
    }

    #[test]
    fn connection_limits_and_io_workers_are_read_from_the_file() {
        let s = load_file(b"server:\n  io-workers: 1\n  max-connections: 100\n");
        assert_eq!(s.server.limits.io_workers, Some(1));
        assert_eq!(s.server.limits.max_connections, 100);
        assert_eq!(
            s.server.limits.io_worker_affinity,
            cloud_runtime::serve::workers::WorkerAffinity::Auto
        );
        let s = load_file(b"server.io-worker-affinity: none\n");
        assert_eq!(
            s.server.limits.io_worker_affinity,
            cloud_runtime::serve::workers::WorkerAffinity::None
        );
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
