//! The running gateway: the route table behind an `ArcSwap`, the request
//! path (match, request filters, breaker and retry around the upstream
//! exchange, response filters) and the refresh.

use std::borrow::Cow;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::Mutex;

use arc_swap::ArcSwap;
use axum::Router;
use axum::body::Body;
use axum::extract::{ConnectInfo, State};
use axum::response::IntoResponse;
use circuit_breaker::{Classification, ResilienceConfig};
use cloud_client::discovery::ServiceInstance;
use cloud_client::loadbalancer::{LoadBalancer, Outcome, Picked};
use cloud_runtime::auth::Credentials;
use cloud_runtime::clock::{SharedClock, TokioClock};
use cloud_runtime::error_body::SpringError;
use cloud_runtime::serve::{RequestService, Secure};
use cloud_runtime::settings::{ConfigError, Origin};
use http::header::{self, HeaderValue};
use http::{Method, Request, Response, StatusCode};
use http_body_util::BodyExt;
use hyper::body::Body as _;
use tokio_util::sync::CancellationToken;

use crate::access_log;
use crate::compress::Compression;
use crate::config::{RouteDefinition, RouteError};
use crate::cors::{self, CorsTable};
use crate::filter::cache::{CachePolicy, ResponseCache};
use crate::filter::json_body::JsonAttributes;
use crate::filter::ratelimit::redis::RedisBuckets;
use crate::filter::ratelimit::redis::RedisUnavailable;
use crate::filter::retry::MAX_REPLAY_BODY;
use crate::filter::{
    BreakerFilter, FallbackCause, Filter, FilterSettings, Outbound, ResponseContext,
};
use crate::metrics::{Answered, Metrics, MetricsFormat};
use crate::predicate::RequestView;
use crate::predicate::cidr::Cidr;
use crate::proxy::{self, AttemptBody, ClientSide, Peer, PoolSettings, UpstreamError, Upstreams};
use crate::request_check;
use crate::resolve::{self, Balancer, ServiceInstances, StaticInstances};
use crate::route::{CompileSettings, Route, RouteTable, Target};
use crate::route_store::RedisRoutes;
use crate::security::Authority;
use crate::settings::{EndpointAccess, LoadError, Settings, Source, locator_route};

/// Forwards (`forward:` routes and fallbacks) followed before giving up.
const MAX_FORWARDS: u8 = 4;

/// A gateway: cheap to clone, clones share everything.
#[derive(Debug, Clone)]
pub struct Gateway {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    /// What the last install put in place, read once per request.
    installed: ArcSwap<Installed>,
    settings: ArcSwap<Settings>,
    source: Option<Source>,
    resolver: Arc<dyn ServiceInstances>,
    balancer: Balancer,
    upstreams: Upstreams,
    /// The `CircuitBreaker` time limits, on one ticker (see
    /// [`circuit_breaker::time_limiter::Deadlines`]).
    breaker_deadlines: circuit_breaker::time_limiter::Deadlines,
    clock: SharedClock,
    metrics: Metrics,
    tunnels: crate::websocket::Tunnels,
    resilience: Mutex<Option<(serde_json::Value, circuit_breaker::Registry)>>,
    /// Held while routes are compiled and installed or saved, so that
    /// they happen one at a time.
    refreshing: tokio::sync::Mutex<()>,
    /// The routes saved through the admin API (see
    /// [`Gateway::save_routes`]); with the Redis repository, those last
    /// read from it.
    saved_routes: Mutex<Vec<RouteDefinition>>,
    /// `redis-route-definition-repository.enabled`: where saved routes
    /// are kept, read at build.
    route_store: Option<RedisRoutes>,
    /// `spring.data.redis.*`, read once at build.
    redis: Option<RedisBuckets>,
    /// The proxy port's connection counters (see [`crate::run`]).
    connections: Arc<cloud_runtime::serve::ConnectionStats>,
    /// `reactor.netty.http.server.access-log-enabled`, read at build.
    access_log: bool,
    /// `server.compression.*`, when enabled; read at build.
    compression: Option<Compression>,
    /// `management.endpoint.gateway.access` and the keys it falls back
    /// on, read at build.
    admin_access: EndpointAccess,
    /// `spring.security.user.*`, read at build: the admin API's
    /// credentials.
    admin_user: Option<Credentials>,
}

/// A request's handle on the installed set (see
/// [`Gateway::installed_for`]).
type Snapshot = Arc<Arc<Installed>>;

/// What one install puts in place, swapped as one: a request sees the
/// routes and the settings compiled with them together, for one load.
#[derive(Debug, Default)]
struct Installed {
    table: Arc<RouteTable>,
    /// `trusted-proxies`.
    trusted: Vec<Cidr>,
    /// The global `LocalResponseCache`, when enabled.
    response_cache: Option<Arc<ResponseCache>>,
    /// The JWT settings, when any key is configured.
    jwt: Option<Arc<Authority>>,
    /// The CORS configurations.
    cors: CorsTable,
    /// `spring.cloud.gateway.metrics.*`.
    metrics_format: MetricsFormat,
    /// `x-forwarded.*` and `forwarded.enabled`.
    forwarding: proxy::ForwardingHeaders,
    /// `filter.remove-hop-by-hop.headers`.
    hop_by_hop: proxy::HopByHop,
}

impl Installed {
    /// The route's `LocalResponseCache`, else the global one.
    fn response_cache(&self, route: &Route) -> Option<Arc<ResponseCache>> {
        route
            .filters
            .iter()
            .find_map(|f| match f {
                Filter::LocalResponseCache(c) => Some(Arc::clone(c)),
                _ => None,
            })
            .or_else(|| self.response_cache.clone())
    }
}

/// Builds a [`Gateway`].
#[derive(Debug)]
pub struct GatewayBuilder {
    settings: Settings,
    source: Option<Source>,
    resolver: Option<Arc<dyn ServiceInstances>>,
    clock: Option<SharedClock>,
}

impl GatewayBuilder {
    /// Where a refresh reads the settings again. Default is none (a
    /// refresh recompiles the settings given to the builder).
    pub fn source(mut self, source: Source) -> Self {
        self.source = Some(source);
        self
    }

    /// Where `lb://` names resolve. Default is no services.
    pub fn resolver(mut self, resolver: Arc<dyn ServiceInstances>) -> Self {
        self.resolver = Some(resolver);
        self
    }

    /// The clock of time predicates and rate limiters. Default is
    /// [`TokioClock`].
    pub fn clock(mut self, clock: SharedClock) -> Self {
        self.clock = Some(clock);
        self
    }

    /// Compiles the routes and builds the gateway.
    pub fn build(self) -> Result<Gateway, LoadError> {
        let http = &self.settings.spring.cloud.gateway.httpclient;
        let file = self.source.as_ref().and_then(|s| s.file.clone());
        let tls = crate::tls::client_config(
            &http.ssl,
            &self.settings.spring.ssl.bundle,
            file.as_deref(),
        )?;
        let sizing = http.pool.sizing().map_err(|reason| {
            ConfigError::new(
                origin(&file),
                Some("spring.cloud.gateway.httpclient.pool.type"),
                reason,
            )
        })?;
        let proxy = http.proxy.forward_proxy().map_err(|(key, reason)| {
            ConfigError::new(
                origin(&file),
                Some(&format!("spring.cloud.gateway.httpclient.proxy.{key}")),
                reason,
            )
        })?;
        let upstreams = Upstreams::new(
            PoolSettings {
                idle_timeout: http.pool.max_idle_time,
                max_idle_per_host: http.pool.max_idle_per_host.max(1),
                max_life: Some(http.pool.max_life_time).filter(|t| !t.is_zero()),
                sizing,
                http2: self.settings.server.http2.enabled,
                proxy,
            },
            tls,
        );
        let redis = match self.settings.spring.redis_settings() {
            None => None,
            Some((prefix, redis)) => Some(
                RedisBuckets::new(prefix, redis)
                    .map_err(|e| ConfigError::new(origin(&file), Some(&e.key), e.reason()))?,
            ),
        };
        let compression = Compression::from_settings(&self.settings.server.compression)
            .map_err(|e| ConfigError::new(origin(&file), Some(&e.key), e.reason))?;
        let route_store = match (self.settings.spring.cloud.gateway.routes_in_redis(), &redis) {
            (false, _) => None,
            (true, Some(r)) => Some(RedisRoutes::new(r.clone())),
            (true, None) => {
                return Err(LoadError::Settings(ConfigError::new(
                    origin(&file),
                    Some("spring.cloud.gateway.redis-route-definition-repository.enabled"),
                    "needs Redis: set spring.data.redis.host, .port or .url",
                )));
            }
        };
        let admin_access = self
            .settings
            .management
            .gateway_access()
            .map_err(|(key, reason)| ConfigError::new(origin(&file), Some(key), reason))?;
        let user = &self.settings.spring.security.user;
        if !user.name.is_empty() && user.password.is_empty() {
            return Err(LoadError::Settings(ConfigError::new(
                origin(&file),
                Some("spring.security.user.password"),
                "is required with spring.security.user.name (the admin API's credentials)",
            )));
        }
        let admin_user = user.credentials();
        let clock: SharedClock = self.clock.unwrap_or_else(|| Arc::new(TokioClock::new()));
        let inner = Inner {
            installed: ArcSwap::from_pointee(Installed::default()),
            settings: ArcSwap::from_pointee(self.settings.clone()),
            source: self.source,
            resolver: self
                .resolver
                .unwrap_or_else(|| Arc::new(StaticInstances::new())),
            balancer: Balancer::new(self.settings.spring.cloud.gateway.loadbalancer.strategy),
            upstreams,
            breaker_deadlines: circuit_breaker::time_limiter::Deadlines::new(),
            metrics: Metrics::new(clock.now()),
            clock,
            tunnels: crate::websocket::Tunnels::new(self.settings.server.limits.max_connections),
            resilience: Mutex::new(None),
            refreshing: tokio::sync::Mutex::new(()),
            saved_routes: Mutex::default(),
            route_store,
            redis,
            connections: Arc::default(),
            access_log: self.settings.reactor.netty.http.server.access_log_enabled,
            compression,
            admin_access,
            admin_user,
        };
        let gateway = Gateway {
            inner: Arc::new(inner),
        };
        gateway.install(self.settings)?;
        Ok(gateway)
    }
}

/// Why saved routes could not be changed or read.
#[derive(Debug, thiserror::Error)]
pub enum RouteStoreError {
    /// A route that would not compile.
    #[error(transparent)]
    Invalid(#[from] LoadError),
    /// The Redis route repository did not answer.
    #[error("the route repository in Redis did not answer: {0}")]
    Unavailable(#[from] RedisUnavailable),
}

impl RouteStoreError {
    /// Whether Redis did not answer (the request may be tried again).
    pub fn is_unavailable(&self) -> bool {
        matches!(self, RouteStoreError::Unavailable(_))
    }
}

/// One request on its way through a route, after its request filters.
struct Call<'a> {
    route: &'a Route,
    out: &'a Outbound,
    /// The client's `Host`.
    client_host: Option<&'a HeaderValue>,
    /// The client's path.
    client_path: &'a str,
    /// Whether the client asked for a WebSocket upgrade.
    upgrade: bool,
    /// The client connection's switch to the upgraded protocol, taken by
    /// the exchange that proxies the upgrade.
    on_upgrade: Mutex<Option<hyper::upgrade::OnUpgrade>>,
    /// The client's header map itself, for the first attempt (see
    /// [`Gateway::upstream_request`]); `out` holds a copy.
    first_headers: Mutex<Option<http::HeaderMap>>,
    peer: &'a Peer,
    /// The installed set the request is served with (a forward keeps it).
    installed: &'a Snapshot,
    depth: u8,
}

/// The `host:port` that answered (for `RewriteLocationResponseHeader`),
/// carried on the response from the attempt to the response filters.
#[derive(Debug, Clone)]
struct UpstreamAuthority(String);

/// Marks the gateway's own error answers, which response filters leave
/// alone.
#[derive(Debug, Clone, Copy)]
struct GatewayAnswer;

impl Gateway {
    /// A builder over `settings`.
    pub fn builder(settings: Settings) -> GatewayBuilder {
        GatewayBuilder {
            settings,
            source: None,
            resolver: None,
            clock: None,
        }
    }

    /// A builder over the settings `source` gives; refreshes read it again.
    pub fn from_source(source: Source) -> Result<GatewayBuilder, LoadError> {
        let settings = source.load()?;
        Ok(Gateway::builder(settings).source(source))
    }

    /// The current route table.
    pub fn table(&self) -> Arc<RouteTable> {
        Arc::clone(&self.inner.installed.load().table)
    }

    /// Where `lb://` names resolve.
    pub fn resolver(&self) -> &Arc<dyn ServiceInstances> {
        &self.inner.resolver
    }

    /// The `lb://` balancers.
    pub fn balancer(&self) -> &Balancer {
        &self.inner.balancer
    }

    /// The request counters.
    pub fn metrics(&self) -> &Metrics {
        &self.inner.metrics
    }

    /// Writes the request metrics (as `spring.cloud.gateway.metrics.*` says)
    /// and the gateway's own counters into `text`.
    pub fn write_metrics(&self, text: &mut cloud_runtime::prometheus::PrometheusText) {
        let installed = self.snapshot();
        self.inner.metrics.write(
            text,
            &installed.metrics_format,
            self.inner.clock.now(),
            installed.table.routes().len(),
        );
    }

    /// The counters of the client connections to the proxy port.
    pub fn connection_stats(&self) -> &Arc<cloud_runtime::serve::ConnectionStats> {
        &self.inner.connections
    }

    /// The Redis that rate limiters share, when `spring.data.redis.*` is
    /// set (read at build; a refresh does not reconnect elsewhere).
    pub fn redis(&self) -> Option<&RedisBuckets> {
        self.inner.redis.as_ref()
    }

    /// What the admin API's `/actuator/gateway/*` allows (read at build).
    pub fn admin_access(&self) -> EndpointAccess {
        self.inner.admin_access
    }

    /// The Basic credentials the admin API asks for (read at build).
    pub fn admin_user(&self) -> Option<&Credentials> {
        self.inner.admin_user.as_ref()
    }

    /// The settings in use.
    pub fn settings(&self) -> Arc<Settings> {
        self.inner.settings.load_full()
    }

    /// Reads the settings again (from the source, if any) and swaps in the
    /// new route table; on error the old table stays. Returns the number
    /// of routes.
    pub async fn refresh(&self) -> Result<usize, LoadError> {
        let _one_at_a_time = self.inner.refreshing.lock().await;
        let settings = match &self.inner.source {
            Some(source) => {
                let source = source.clone();
                tokio::task::spawn_blocking(move || source.load()).await??
            }
            None => (*self.inner.settings.load_full()).clone(),
        };
        if let Some(store) = &self.inner.route_store {
            match store.load().await {
                Ok(routes) => *self.saved_routes_mut() = self.compilable(&settings, routes),
                Err(e) => {
                    tracing::warn!(error = %e, "the saved routes cannot be read from Redis; those last read stay");
                }
            }
        }
        self.install(settings)?;
        Ok(self.inner.installed.load().table.routes().len())
    }

    /// The settings file, if any (for errors that name it).
    pub(crate) fn file(&self) -> Option<PathBuf> {
        self.inner.source.as_ref().and_then(|s| s.file.clone())
    }

    /// Compiles `settings`, with the routes saved through the admin API,
    /// and swaps the table in.
    fn install(&self, settings: Settings) -> Result<(), LoadError> {
        let saved = self.saved_routes();
        let installed = self.compile(&settings, &saved)?;
        tracing::info!(
            routes = installed.table.routes().len(),
            "route table installed"
        );
        self.inner.installed.store(Arc::new(installed));
        self.inner.settings.store(Arc::new(settings));
        Ok(())
    }

    /// The routes saved through the admin API, in the order first saved
    /// (with the Redis repository: as last read, in key order).
    fn saved_routes(&self) -> Vec<RouteDefinition> {
        self.saved_routes_mut().clone()
    }

    fn saved_routes_mut(&self) -> std::sync::MutexGuard<'_, Vec<RouteDefinition>> {
        self.inner
            .saved_routes
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The routes of `saved` that compile with `settings`: a route another
    /// gateway saved in Redis may use a filter this one does not have, and
    /// is then left out with a warning instead of failing every refresh.
    /// All of them when the settings themselves do not compile (the
    /// install then fails on the settings).
    fn compilable(&self, settings: &Settings, saved: Vec<RouteDefinition>) -> Vec<RouteDefinition> {
        if self.compile(settings, &saved).is_ok() || self.compile(settings, &[]).is_err() {
            return saved;
        }
        saved
            .into_iter()
            .filter(|route| match self.compile(settings, std::slice::from_ref(route)) {
                Ok(_) => true,
                Err(e) => {
                    tracing::warn!(route = %route.id, error = %e, "a route saved in Redis does not compile here; left out");
                    false
                }
            })
            .collect()
    }

    /// Whether saved routes are kept in Redis
    /// (`redis-route-definition-repository.enabled`).
    pub fn keeps_routes_in_redis(&self) -> bool {
        self.inner.route_store.is_some()
    }

    /// Every route definition `settings` and `saved` make: the settings'
    /// routes, each replaced by the saved route with its id; the other
    /// saved routes; then, with the discovery locator on, a route per
    /// service.
    fn definitions(
        &self,
        settings: &Settings,
        saved: &[RouteDefinition],
    ) -> Result<Vec<RouteDefinition>, RouteError> {
        let gw = &settings.spring.cloud.gateway;
        let mut defs = gw.route_definitions(self.file().as_deref())?;
        for route in saved {
            match defs.iter_mut().find(|d| d.id == route.id) {
                Some(d) => *d = route.clone(),
                None => defs.push(route.clone()),
            }
        }
        let locator = gw.locator();
        if locator.enabled {
            for service in self.inner.resolver.services() {
                defs.push(locator_route(&service, &locator));
            }
        }
        Ok(defs)
    }

    /// Every route definition the next refresh compiles (SCG's
    /// `/actuator/gateway/routedefinitions`): those of the settings in
    /// use, with the routes saved through the admin API (read from Redis
    /// now, with the Redis repository, as SCG reads it).
    pub async fn route_definitions(&self) -> Result<Vec<RouteDefinition>, RouteStoreError> {
        let saved = match &self.inner.route_store {
            Some(store) => store.load().await?,
            None => self.saved_routes(),
        };
        Ok(self
            .definitions(&self.settings(), &saved)
            .map_err(LoadError::from)?)
    }

    /// Saves `routes` as SCG's `POST /actuator/gateway/routes/{id}` and
    /// `POST /actuator/gateway/routes` do: each replaces the saved route
    /// with its id, or is added (and replaces a route of the settings
    /// with its id). They take effect at the next refresh, as in SCG, but
    /// are compiled now with the settings in use: a route that would not
    /// compile is refused here with the reason, and none of `routes` is
    /// saved.
    ///
    /// With the Redis repository they are written to Redis (SCG's keys),
    /// where every gateway's next refresh reads them.
    pub async fn save_routes(&self, routes: Vec<RouteDefinition>) -> Result<(), RouteStoreError> {
        let _one_at_a_time = self.inner.refreshing.lock().await;
        let mut saved = self.saved_routes();
        for route in &routes {
            match saved.iter_mut().find(|d| d.id == route.id) {
                Some(d) => *d = route.clone(),
                None => saved.push(route.clone()),
            }
        }
        let mut installed = self.compile(&self.settings(), &saved)?;
        // Left out under `fail-on-route-definition-error: false`, but
        // refused here all the same: a save should not vanish.
        if let Some(table) = Arc::get_mut(&mut installed.table)
            && let Some(e) = table.take_left_out(|id| routes.iter().any(|r| r.id == id))
        {
            return Err(LoadError::from(e).into());
        }
        if let Some(store) = &self.inner.route_store {
            store.save(&routes).await?;
        }
        *self.saved_routes_mut() = saved;
        Ok(())
    }

    /// Forgets the saved route `id` (SCG's `DELETE
    /// /actuator/gateway/routes/{id}`), from the next refresh on; false
    /// when no route with that id was saved (routes of the settings cannot
    /// be deleted, as in SCG).
    /// With the Redis repository the route is deleted there.
    pub async fn delete_route(&self, id: &str) -> Result<bool, RouteStoreError> {
        let _one_at_a_time = self.inner.refreshing.lock().await;
        let in_redis = match &self.inner.route_store {
            Some(store) => Some(store.delete(id).await?),
            None => None,
        };
        let mut saved = self.saved_routes_mut();
        let before = saved.len();
        saved.retain(|d| d.id != id);
        Ok(in_redis.unwrap_or(saved.len() != before))
    }

    /// Compiles `settings` with the `saved` routes into what an install
    /// puts in place.
    fn compile(
        &self,
        settings: &Settings,
        saved: &[RouteDefinition],
    ) -> Result<Installed, LoadError> {
        let file = self.file();
        let gw = &settings.spring.cloud.gateway;
        let trusted = gw
            .trusted_proxies()
            .map(|t| {
                t.parse::<Cidr>().map_err(|e| {
                    ConfigError::new(
                        origin(&file),
                        Some("spring.cloud.gateway.trusted-proxies"),
                        e.to_string(),
                    )
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        let original_status_header = match gw.set_status.original_status_header_name.trim() {
            "" => None,
            name => Some(http::HeaderName::from_bytes(name.as_bytes()).map_err(|e| {
                ConfigError::new(
                    origin(&file),
                    Some("spring.cloud.gateway.set-status.original-status-header-name"),
                    format!("`{name}` is not a header name: {e}"),
                )
            })?),
        };
        let (cache_policy, global_cache) = response_cache_policy(gw, &file)?;
        let compile = CompileSettings {
            filters: FilterSettings {
                original_status_header,
                resilience: self.resilience(&settings.resilience4j, &file)?,
                clock: Arc::clone(&self.inner.clock),
                redis: self.inner.redis.clone(),
                response_cache: cache_policy,
                rate_limiter: gw
                    .limiter_defaults()
                    .map_err(|(key, reason)| ConfigError::new(origin(&file), Some(&key), reason))?,
                secure_headers: gw
                    .secure_header_defaults()
                    .map_err(|(key, reason)| ConfigError::new(origin(&file), Some(&key), reason))?,
                max_in_memory_size: settings.spring.codec.max_in_memory_size().map_err(
                    |reason| {
                        ConfigError::new(
                            origin(&file),
                            Some("spring.codec.max-in-memory-size"),
                            reason,
                        )
                    },
                )?,
            },
            connect_timeout: std::time::Duration::from_millis(gw.httpclient.connect_timeout.max(1)),
            response_timeout: Some(gw.httpclient.response_timeout).filter(|t| !t.is_zero()),
            file: file.clone(),
            skip_invalid: !gw.fail_on_route_definition_error.0,
        };
        let defs = self.definitions(settings, saved)?;
        let defaults = gw.default_filter_definitions(file.as_deref())?;
        let cors = CorsTable::compile(
            [
                &gw.globalcors.cors_configurations,
                &gw.server.webflux.globalcors.cors_configurations,
            ],
            defs.iter().filter_map(|d| {
                let (_, v) = d.metadata.iter().find(|(k, _)| k.as_str() == "cors")?;
                Some((d.id.as_str(), v))
            }),
        )
        .map_err(|(key, e)| ConfigError::new(origin(&file), Some(&key), e.to_string()))?;
        let table = RouteTable::compile(defs, &defaults, &compile)?;
        let jwt = self.jwt_authority(settings, &table, &file)?;
        let metrics_format = gw
            .metrics_format()
            .map_err(|(key, reason)| ConfigError::new(origin(&file), Some(&key), reason))?;
        let hop_by_hop = gw
            .hop_by_hop()
            .map_err(|(key, reason)| ConfigError::new(origin(&file), Some(&key), reason))?;
        let kept = self.inner.installed.load().response_cache.clone();
        let response_cache = match (global_cache, kept) {
            (false, _) => None,
            (true, Some(c)) if c.policy() == cache_policy => Some(c),
            (true, _) => Some(Arc::new(ResponseCache::new(
                cache_policy,
                Arc::clone(&self.inner.clock),
            ))),
        };
        Ok(Installed {
            table: Arc::new(table),
            trusted,
            response_cache,
            jwt,
            cors,
            metrics_format,
            forwarding: gw.forwarding_headers(),
            hop_by_hop,
        })
    }

    /// The breaker registry: kept while `resilience4j` is unchanged, so a
    /// refresh does not reset the breakers' state.
    fn resilience(
        &self,
        value: &serde_json::Value,
        file: &Option<PathBuf>,
    ) -> Result<circuit_breaker::Registry, ConfigError> {
        let mut cached = self
            .inner
            .resilience
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some((v, r)) = cached.as_ref()
            && v == value
        {
            return Ok(r.clone());
        }
        let config: ResilienceConfig = if value.is_null() {
            ResilienceConfig::default()
        } else {
            serde_json::from_value(value.clone())
                .map_err(|e| ConfigError::new(origin(file), Some("resilience4j"), e.to_string()))?
        };
        let registry = circuit_breaker::Registry::new(config)
            .map_err(|e| ConfigError::new(origin(file), Some("resilience4j"), e.to_string()))?;
        *cached = Some((value.clone(), registry.clone()));
        Ok(registry)
    }

    /// The JWT authority of `settings`: the current one while its settings
    /// are unchanged (its JWKS cache kept); an error when a route needs
    /// one and no key is configured.
    fn jwt_authority(
        &self,
        settings: &Settings,
        table: &RouteTable,
        file: &Option<PathBuf>,
    ) -> Result<Option<Arc<Authority>>, ConfigError> {
        let gateway = &settings.spring.cloud.gateway.jwt;
        let spring = &settings.spring.security.oauth2.resourceserver.jwt;
        let current = self.inner.installed.load().jwt.clone();
        let authority = match current {
            Some(a) if a.compiled_from(gateway, spring) => Some(a),
            _ => Authority::compile(
                gateway,
                spring,
                Arc::clone(&self.inner.clock),
                &origin(file),
            )?
            .map(Arc::new),
        };
        if authority.is_none()
            && let Some(route) = table.routes().iter().find(|r| jwt_requirement(r).is_some())
        {
            return Err(ConfigError::new(
                origin(file),
                Some("spring.cloud.gateway.jwt"),
                format!(
                    "route `{}` uses JwtAuth but no key is configured (secret, public-key, public-key-location, jwk-set-uri or spring.security.oauth2.resourceserver.jwt.*)",
                    route.id
                ),
            ));
        }
        Ok(authority)
    }

    /// Strips the client's claim headers and, on a `JwtAuth` route, checks
    /// the token; the answer when it is refused.
    async fn authenticate(
        &self,
        authority: Option<&Authority>,
        route: &Route,
        headers: &mut http::HeaderMap,
        path: &str,
        depth: u8,
    ) -> Option<Response<Body>> {
        let authority = authority?;
        if depth == 0 {
            authority.strip_claim_headers(headers);
        }
        let requirement = jwt_requirement(route)?;
        match authority.admit(requirement, headers).await {
            Ok(_) => None,
            Err(rejection) => {
                tracing::debug!(route = %route.id, reason = %rejection, "request refused");
                let mut answer = rejection.answer(path);
                answer.extensions_mut().insert(GatewayAnswer);
                Some(answer)
            }
        }
    }

    /// CORS's own answer (a preflight, a refusal), counted for `route`.
    fn cors_answer(
        &self,
        route: Option<&Route>,
        method: &Method,
        answer: (StatusCode, http::HeaderMap),
        path: &str,
        started: tokio::time::Instant,
    ) -> Response<Body> {
        let (status, headers) = answer;
        // As in SCG, not in the route's request metric: the route's
        // filters and upstream never see the request.
        self.inner.metrics.record_cors_answer();
        let took = self.inner.clock.now().saturating_duration_since(started);
        let route = route.map(|r| r.id.as_str());
        tracing::debug!(route, %method, %status, took_us = took.as_micros(), "answered by CORS");
        cors::answer(status, headers, path)
    }

    /// Counts a request of `route` answered with `status`; how long it took.
    fn record(
        &self,
        route: &Route,
        method: &Method,
        status: StatusCode,
        started: tokio::time::Instant,
    ) -> std::time::Duration {
        let now = self.inner.clock.now();
        let took = now.saturating_duration_since(started);
        let answered = Answered {
            route_id: &route.id,
            route_uri: &route.uri,
            method,
            status: status.as_u16(),
        };
        self.inner.metrics.record(answered, now, took);
        took
    }

    /// Recompiles the routes whenever the services change, while the
    /// discovery locator is on, until `shutdown`.
    pub async fn watch_services(self, shutdown: CancellationToken) {
        let mut changes = self.inner.resolver.subscribe();
        loop {
            tokio::select! {
                changed = changes.changed() => if changed.is_err() { return },
                () = shutdown.cancelled() => return,
            }
            let _one_at_a_time = self.inner.refreshing.lock().await;
            let settings = (*self.inner.settings.load_full()).clone();
            if settings.spring.cloud.gateway.locator().enabled
                && let Err(e) = self.install(settings)
            {
                tracing::error!(error = %e, "services changed but the routes do not compile; keeping the old ones");
            }
        }
    }

    /// The proxy: every request goes through the route table.
    pub fn router(&self) -> Router {
        Router::new().fallback(handle).with_state(self.clone())
    }

    /// The proxy as a server's [`RequestService`] (what [`crate::run`]
    /// serves): the same as [`Gateway::router`] without axum's own
    /// matching, with a [`ProxyConnection`] per client connection.
    pub fn service(&self) -> ProxyService {
        ProxyService(self.clone())
    }

    /// Handles one request from `peer` (over TLS when it carries the
    /// [`Secure`] extension). As on the proxy port, an HTTP/1.1 request
    /// needs one valid `Host` (or an absolute URI) and a path without
    /// dot-segments, else it is answered 400.
    pub async fn handle(&self, request: Request<Body>, peer: SocketAddr) -> Response<Body> {
        let peer = Peer::new(peer, request.extensions().get::<Secure>().is_some());
        self.dispatch(request, &peer, self.snapshot(), None, 0)
            .await
    }

    /// A new handle on the installed set.
    fn snapshot(&self) -> Snapshot {
        Arc::new(self.inner.installed.load_full())
    }

    /// The installed set for a request on the connection whose own handle
    /// on it is `held`: that handle while the set is unchanged (cloning it
    /// writes only to the connection's memory), a new one after a refresh.
    fn installed_for(&self, held: &Mutex<Snapshot>) -> Snapshot {
        let current = self.inner.installed.load();
        let mut held = held
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if !Arc::ptr_eq(&**held, &*current) {
            *held = Arc::new(arc_swap::Guard::into_inner(current));
        }
        Arc::clone(&held)
    }

    fn dispatch<'a>(
        &'a self,
        request: Request<Body>,
        peer: &'a Peer,
        installed: Snapshot,
        fallback: Option<FallbackCause>,
        depth: u8,
    ) -> Pin<Box<dyn Future<Output = Response<Body>> + Send + 'a>> {
        boxed_in_place(move || async move {
            let started = self.inner.clock.now();
            let table = &installed.table;
            let (mut parts, body) = request.into_parts();
            // Also makes an absolute URI's or HTTP/2's `:authority` the
            // `Host` (a forward keeps the `Host` its request had).
            let client_host = match depth {
                0 => match request_check::check(&mut parts) {
                    Ok(host) => host,
                    Err(refusal) => {
                        self.inner.metrics.record_refused();
                        return error_answer(refusal.status(), refusal.message(), parts.uri.path());
                    }
                },
                _ => parts.headers.get(header::HOST).cloned(),
            };
            // Runs of `/` are one, as SCG forwards them and nginx routes
            // them: `//admin/x` must not pass a `/admin/**` route's guards
            // through another route, to an upstream that merges them.
            let raw_path = parts.uri.path();
            let merged = request_check::merged_slashes(raw_path);
            let path = merged.as_deref().unwrap_or(raw_path);
            // Routes and CORS configurations match the decoded path, as
            // Spring's `PathPattern` does; filters work on `path`.
            let Ok(decoded) = crate::predicate::pattern::decoded_path(path) else {
                self.inner.metrics.record_refused();
                let refusal = request_check::Refusal::MalformedEscape;
                return error_answer(refusal.status(), refusal.message(), raw_path);
            };
            let view = RequestView {
                method: &parts.method,
                path: &decoded,
                query: parts.uri.query(),
                headers: &parts.headers,
                remote: peer.addr().ip(),
                now_millis: match table.reads_time() {
                    true => self.inner.clock.epoch_millis(),
                    false => 0,
                },
                weight_roll: roll(),
            };
            let cors = &installed.cors;
            let secure = peer.is_secure();
            if depth == 0
                && !cors.is_empty()
                && let Some(asked) = cors::preflight_method(&parts.method, &parts.headers)
            {
                // The route the actual request would take.
                let route = table.find(&RequestView {
                    method: &asked,
                    ..view
                });
                let config = cors.config_for(&decoded, route.as_ref().map(|(r, _)| r.id.as_str()));
                if let cors::Outcome::Answer(status, headers) =
                    cors::process(config.as_ref(), &parts.method, &parts.headers, secure)
                {
                    let route: Option<&Route> = route.as_ref().map(|(r, _)| -> &Route { r });
                    return self.cors_answer(
                        route,
                        &parts.method,
                        (status, headers),
                        raw_path,
                        started,
                    );
                }
            }
            let Some((route, vars)) = table.find(&view) else {
                self.inner.metrics.record_unmatched();
                return not_found_answer(raw_path);
            };
            let cors_headers = match depth == 0 && !cors.is_empty() {
                false => None,
                true => match cors::process(
                    cors.config_for(&decoded, Some(&route.id)).as_ref(),
                    &parts.method,
                    &parts.headers,
                    secure,
                ) {
                    cors::Outcome::Proceed(headers) => Some(headers),
                    cors::Outcome::Answer(status, headers) => {
                        return self.cors_answer(
                            Some(route),
                            &parts.method,
                            (status, headers),
                            raw_path,
                            started,
                        );
                    }
                },
            };
            let upgrade = crate::websocket::is_websocket_upgrade(&parts.headers);
            let on_upgrade = parts.extensions.remove::<hyper::upgrade::OnUpgrade>();
            let mut out = Outbound {
                method: parts.method.clone(),
                path: path.to_owned(),
                query: parts.uri.query().map(str::to_owned),
                headers: std::mem::take(&mut parts.headers),
                vars,
                preserve_host: false,
                host: None,
                remote: peer.addr().ip(),
                response_headers: Vec::new(),
                fallback,
                uri: None,
            };
            let mut answer = self
                .authenticate(
                    installed.jwt.as_deref(),
                    route,
                    &mut out.headers,
                    raw_path,
                    depth,
                )
                .await;
            let mut ran = if answer.is_some() {
                0
            } else {
                route.filters.len()
            };
            for (i, f) in route.filters.iter().enumerate().take(ran) {
                if let Err(a) = f.apply(&mut out).await {
                    ran = i + 1;
                    answer = Some(*a);
                    break;
                }
            }
            let response = match answer {
                Some(a) => a,
                None => {
                    let body = limit_chunked_body(route, &out.headers, body);
                    let cache = installed.response_cache(route);
                    let target = out.uri.as_ref().map_or(&route.target, |u| &u.target);
                    // The first attempt sends the client's map itself and
                    // the request keeps a copy, not the other way round:
                    // hyper hands the map over with room to spare from its
                    // earlier messages, while a copy has none, and adding
                    // the forwarding headers to it would grow it twice.
                    let first_headers = (cache.is_none() && !matches!(target, Target::Forward(_)))
                        .then(|| {
                            let copy = out.headers.clone();
                            std::mem::replace(&mut out.headers, copy)
                        });
                    let call = Call {
                        route,
                        out: &out,
                        client_host: client_host.as_ref(),
                        client_path: raw_path,
                        upgrade,
                        on_upgrade: Mutex::new(on_upgrade),
                        first_headers: Mutex::new(first_headers),
                        peer,
                        installed: &installed,
                        depth,
                    };
                    match cache {
                        // Boxed: its future is larger than the exchange's,
                        // and would make every request's larger.
                        Some(cache) => {
                            Box::pin(cache.serve(&out, || self.exchange(&call, body))).await
                        }
                        None => self.exchange(&call, body).await,
                    }
                }
            };
            let response = if response.extensions().get::<GatewayAnswer>().is_some() {
                response
            } else {
                let (mut head, body) = response.into_parts();
                let upstream = head.extensions.remove::<UpstreamAuthority>();
                let ctx = ResponseContext {
                    client_host: client_host.as_ref().and_then(|h| h.to_str().ok()),
                    client_path: raw_path,
                    upstream_authority: upstream.as_ref().map(|u| u.0.as_str()),
                    vars: &out.vars,
                };
                for f in route.filters[..ran]
                    .iter()
                    .rev()
                    .filter(|f| f.is_response_filter())
                {
                    f.apply_response(&mut head, &ctx);
                }
                // Moved, not cloned: a clone of `X-RateLimit-Remaining`'s
                // value, made from a number, would allocate.
                for (n, v) in std::mem::take(&mut out.response_headers) {
                    head.headers.insert(n, v);
                }
                if route.rewrites_json() {
                    rewrite_json_body(&route.filters[..ran], &parts.method, head, body, raw_path)
                        .await
                } else {
                    Response::from_parts(head, body)
                }
            };
            let mut response = response;
            if let Some(headers) = &cors_headers {
                cors::apply(response.headers_mut(), headers);
            }
            let took = self.record(route, &parts.method, response.status(), started);
            tracing::debug!(route = %route.id, status = response.status().as_u16(), took_us = took.as_micros(), "proxied");
            response
        })
    }

    async fn exchange(&self, call: &Call<'_>, body: Body) -> Response<Body> {
        let (route, out, path) = (call.route, call.out, call.client_path);
        if let Target::Forward(to) = call.target() {
            return self.forward(to, call, body, out.fallback.clone()).await;
        }
        if call.upgrade {
            return self.upgrade(call).await;
        }
        match route.breaker() {
            None => match self.with_retry(call, body, None).await {
                Ok(r) => r,
                Err(e) => upstream_error_answer(&route.id, &e, path),
            },
            Some(b) => self.with_breaker(b, call, body).await,
        }
    }

    async fn with_breaker(&self, b: &BreakerFilter, call: &Call<'_>, body: Body) -> Response<Body> {
        let path = call.client_path;
        let permit = match b.breaker.try_acquire() {
            Ok(p) => p,
            Err(e) => {
                let cause = FallbackCause {
                    exception_type:
                        "io.github.resilience4j.circuitbreaker.CallNotPermittedException".to_owned(),
                    message: e.to_string(),
                };
                return self
                    .fallback_or(b, call, cause, || {
                        error_answer(
                            StatusCode::SERVICE_UNAVAILABLE,
                            "Upstream service is temporarily unavailable",
                            path,
                        )
                    })
                    .await;
            }
        };
        // Pinned where it is made: the attempts' future is large, and is
        // not moved into the deadline. It ends with its block, so that a
        // fallback's future takes its place rather than adding to it.
        let outcome = {
            let attempts = std::pin::pin!(self.with_retry(call, body, Some(b.timeout)));
            self.inner.breaker_deadlines.run(b.timeout, attempts).await
        };
        match outcome {
            Err(_) => {
                permit.record(Classification::Failure);
                let cause = FallbackCause {
                    exception_type: "java.util.concurrent.TimeoutException".to_owned(),
                    message: format!(
                        "Did not observe any item or terminal signal within {}ms",
                        b.timeout.as_millis()
                    ),
                };
                self.fallback_or(b, call, cause, || {
                    error_answer(
                        StatusCode::GATEWAY_TIMEOUT,
                        "Upstream service did not respond in time",
                        path,
                    )
                })
                .await
            }
            Ok(Err(e)) if e.is_client_fault() => {
                // A broken or oversized request body says nothing about
                // the upstream: no failure, no fallback.
                permit.record(Classification::Ignored);
                upstream_error_answer(&call.route.id, &e, path)
            }
            Ok(Err(e)) => {
                permit.record(Classification::Failure);
                let cause = FallbackCause {
                    exception_type: e.java_type().to_owned(),
                    message: e.detail().to_owned(),
                };
                self.fallback_or(b, call, cause, || {
                    upstream_error_answer(&call.route.id, &e, path)
                })
                .await
            }
            Ok(Ok(response)) if b.status_codes.contains(&response.status()) => {
                permit.record(Classification::Failure);
                if b.fallback.is_none() {
                    return response;
                }
                let cause = FallbackCause {
                    exception_type: "org.springframework.cloud.gateway.filter.factory.SpringCloudCircuitBreakerFilterFactory$CircuitBreakerStatusCodeException".to_owned(),
                    // Spring's HttpStatus names: `500 INTERNAL_SERVER_ERROR`.
                    message: format!(
                        "{} {}",
                        response.status().as_u16(),
                        response
                            .status()
                            .canonical_reason()
                            .unwrap_or("UNKNOWN")
                            .to_ascii_uppercase()
                            .replace([' ', '-'], "_")
                    ),
                };
                self.fallback_or(b, call, cause, || response).await
            }
            Ok(Ok(response)) => {
                permit.record(Classification::Success);
                response
            }
        }
    }

    async fn fallback_or(
        &self,
        b: &BreakerFilter,
        call: &Call<'_>,
        cause: FallbackCause,
        otherwise: impl FnOnce() -> Response<Body>,
    ) -> Response<Body> {
        match &b.fallback {
            Some(path) => self.forward(path, call, Body::empty(), Some(cause)).await,
            None => otherwise(),
        }
    }

    /// Matches `path` again against the routes (`forward:`).
    async fn forward(
        &self,
        path: &str,
        call: &Call<'_>,
        body: Body,
        cause: Option<FallbackCause>,
    ) -> Response<Body> {
        if call.depth >= MAX_FORWARDS {
            return error_answer(StatusCode::LOOP_DETECTED, "Too many forwards", path);
        }
        let out = call.out;
        let uri = match &out.query {
            Some(q) if cause.is_none() => format!("{path}?{q}"),
            _ => path.to_owned(),
        };
        let mut request = Request::new(body);
        *request.method_mut() = out.method.clone();
        *request.headers_mut() = out.headers.clone();
        if let Some(u) = call.take_upgrade() {
            request.extensions_mut().insert(u);
        }
        if cause.is_some() {
            // A fallback gets no body: the original was sent upstream.
            request.headers_mut().remove(header::CONTENT_LENGTH);
            request.headers_mut().remove(header::TRANSFER_ENCODING);
        }
        match uri.parse() {
            Ok(u) => *request.uri_mut() = u,
            Err(_) => {
                return error_answer(StatusCode::INTERNAL_SERVER_ERROR, "Bad forward path", path);
            }
        }
        self.dispatch(
            request,
            call.peer,
            Arc::clone(call.installed),
            cause,
            call.depth + 1,
        )
        .await
    }

    /// The route's attempts (more than one under `Retry`), all within
    /// `limit` when the caller sets one (a circuit breaker's time limit).
    async fn with_retry(
        &self,
        call: &Call<'_>,
        body: Body,
        limit: Option<std::time::Duration>,
    ) -> Result<Response<Body>, UpstreamError> {
        let (route, out) = (call.route, call.out);
        let policy = route.retry().filter(|p| p.applies_to(&out.method));
        let mut body = match (route.cached_body(), policy) {
            (Some(limit), _) => keep_whole(body, limit).await?,
            (None, None) => AttemptBody::Stream(Some(body)),
            (None, Some(_)) => keep_if_small(body, &out.headers).await?,
        };
        let retries = match policy {
            Some(p) if body.replayable() => p.retries,
            _ => 0,
        };
        let mut attempt = 0;
        loop {
            let result = self.attempt(call, &mut body, limit).await;
            if attempt >= retries {
                return result;
            }
            let Some(p) = policy else { return result };
            let again = match &result {
                Ok(r) => p.retries_status(r.status()),
                Err(e) => e.failure_kind().is_some_and(|k| p.retries_failure(k)),
            };
            if !again {
                return result;
            }
            attempt += 1;
            tracing::debug!(route = %route.id, attempt, "retrying");
            drop(result);
            tokio::time::sleep(p.pause(attempt)).await;
        }
    }

    async fn attempt(
        &self,
        call: &Call<'_>,
        body: &mut AttemptBody,
        limit: Option<std::time::Duration>,
    ) -> Result<Response<Body>, UpstreamError> {
        let balancer = self.service_balancer(call.target());
        let picked = self.pick(call.target(), balancer.as_deref())?;
        let instance = picked.as_ref().map(Picked::instance);
        let mut up = self.upstream_request(call, instance)?;
        let again = || Some(self.upstream_request(call, instance).ok()?.into_headers());
        let sent = self.send(call, &mut up, body, &again, limit).await;
        if let Some(pick) = picked {
            pick.record(match &sent {
                Ok(r) if r.status().is_server_error() => Outcome::Failure,
                Ok(_) => Outcome::Success,
                Err(e) if e.failure_kind().is_some() => Outcome::Failure,
                Err(_) => Outcome::Ignored,
            });
        }
        let mut response = sent?;
        call.installed.hop_by_hop.remove(response.headers_mut());
        if call
            .route
            .filters
            .iter()
            .any(Filter::reads_upstream_authority)
        {
            response
                .extensions_mut()
                .insert(UpstreamAuthority(up.authority.into_owned()));
        }
        Ok(response)
    }

    /// Proxies a WebSocket upgrade: the handshake goes upstream with its
    /// upgrade headers, and a `101` answer opens a tunnel (see
    /// [`crate::websocket`]). Neither `Retry` nor `CircuitBreaker` applies.
    async fn upgrade(&self, call: &Call<'_>) -> Response<Body> {
        let (route, path) = (call.route, call.client_path);
        let Some(client) = call.take_upgrade() else {
            return error_answer(
                StatusCode::BAD_REQUEST,
                "This connection cannot be upgraded (WebSocket needs HTTP/1.1)",
                path,
            );
        };
        let Some(slot) = self.inner.tunnels.reserve() else {
            // A flood of handshakes must not flood the log.
            let refused = self.inner.tunnels.refused();
            if refused.is_power_of_two() {
                tracing::warn!(route = %route.id, open = self.inner.tunnels.open(), refused, "WebSocket handshake refused: server.max-connections tunnels are open");
            }
            return error_answer(
                StatusCode::SERVICE_UNAVAILABLE,
                "Too many WebSocket connections are open",
                path,
            );
        };
        let sent = async {
            let balancer = self.service_balancer(call.target());
            let picked = self.pick(call.target(), balancer.as_deref())?;
            let instance = picked.as_ref().map(Picked::instance);
            let upgrade_request = || {
                let mut up = self.upstream_request(call, instance)?;
                crate::websocket::restore_upgrade_headers(&call.out.headers, &mut up.headers);
                Ok::<_, UpstreamError>(up)
            };
            let mut up = upgrade_request()?;
            let again = || Some(upgrade_request().ok()?.into_headers());
            let mut empty = AttemptBody::Stream(Some(Body::empty()));
            let response = self.send(call, &mut up, &mut empty, &again, None).await?;
            Ok::<_, UpstreamError>((response, up.authority.into_owned()))
        };
        match sent.await {
            Ok((response, authority)) => {
                let mut response =
                    self.inner
                        .tunnels
                        .answer(response, client, slot, call.peer.addr(), &authority);
                response
                    .extensions_mut()
                    .insert(UpstreamAuthority(authority));
                response
            }
            Err(e) => upstream_error_answer(&route.id, &e, path),
        }
    }

    /// Sends `up` (its headers taken) with `body` under the route's
    /// timeouts, inside the caller's `limit` if any; `again` makes the
    /// headers anew for the transparent retry.
    async fn send(
        &self,
        call: &Call<'_>,
        up: &mut UpstreamRequest<'_>,
        body: &mut AttemptBody,
        again: &(dyn Fn() -> Option<http::HeaderMap> + Sync),
        limit: Option<std::time::Duration>,
    ) -> Result<Response<Body>, UpstreamError> {
        self.inner
            .upstreams
            .send(
                &up.authority,
                up.secure,
                &call.out.method,
                std::mem::take(&mut up.path_and_query),
                std::mem::take(&mut up.headers),
                std::mem::take(&mut up.forwarding),
                again,
                body,
                call.route.connect_timeout,
                call.route.response_timeout,
                // The caller's limit started before this attempt: when it
                // is shorter, it always ends the wait first.
                matches!((limit, call.route.response_timeout), (Some(l), Some(t)) if l < t),
            )
            .await
    }

    /// Closes the open WebSocket tunnels and waits for them to end, at
    /// most `within`.
    pub async fn close_tunnels(&self, within: std::time::Duration) {
        self.inner.tunnels.close(within).await;
    }

    /// WebSocket tunnels open now.
    pub fn open_tunnels(&self) -> usize {
        self.inner.tunnels.open()
    }

    /// WebSocket handshakes refused so far because `server.max-connections`
    /// tunnels were open.
    pub fn refused_tunnels(&self) -> u64 {
        self.inner.tunnels.refused()
    }

    /// The balancer of an `lb://` target's service.
    fn service_balancer(&self, target: &Target) -> Option<Arc<LoadBalancer>> {
        match target {
            Target::Service(name) => Some(
                self.inner
                    .balancer
                    .service(self.inner.resolver.as_ref(), name),
            ),
            _ => None,
        }
    }

    /// No UP instance of `name`: 503, or 404 with `loadbalancer.use404`.
    fn no_instance(&self, name: &str) -> UpstreamError {
        let use404 = self
            .inner
            .settings
            .load()
            .spring
            .cloud
            .gateway
            .loadbalancer
            .use404;
        UpstreamError::no_instance(name, use404)
    }

    /// An instance of an `lb://` route's service (none for other routes);
    /// 503 when none is UP (see [`Gateway::no_instance`]).
    fn pick<'b>(
        &self,
        target: &Target,
        balancer: Option<&'b LoadBalancer>,
    ) -> Result<Option<Picked<'b>>, UpstreamError> {
        match (target, balancer) {
            (Target::Service(name), Some(b)) => {
                b.pick().map(Some).ok_or_else(|| self.no_instance(name))
            }
            _ => Ok(None),
        }
    }

    /// Where and what to send upstream for `call`: the authority, the
    /// headers (hop-by-hop removed, forwarding headers and `Host` set) and
    /// the path with its query.
    fn upstream_request<'a>(
        &self,
        call: &Call<'a>,
        instance: Option<&ServiceInstance>,
    ) -> Result<UpstreamRequest<'a>, UpstreamError> {
        let (route, out, peer) = (call.route, call.out, call.peer);
        let (authority, secure, fixed_host) = match call.target() {
            Target::Fixed {
                authority,
                secure,
                host,
            } => (Cow::Borrowed(authority.as_str()), *secure, Some(host)),
            Target::Service(name) => {
                let instance = instance.ok_or_else(|| self.no_instance(name))?;
                (
                    Cow::Owned(resolve::authority(&instance.host, instance.port)),
                    instance.secure,
                    None,
                )
            }
            Target::Forward(_) => {
                return Err(UpstreamError::unsupported(
                    &route.uri,
                    "a forward has no upstream",
                ));
            }
        };
        let mut headers = match call.take_first_headers() {
            Some(h) => h,
            None => out.headers.clone(),
        };
        // Room for `Host` and, when the request goes out through hyper's
        // client, the six forwarding headers (see `proxy::Forwarding`): a
        // client's few headers would otherwise make the map grow twice.
        // (A copy's entries have no room to spare, and this makes none
        // while its index is big enough: only the first attempt's map,
        // the client's own, has it.)
        headers.reserve(FORWARDING_ROOM);
        call.installed.hop_by_hop.remove(&mut headers);
        let client_host = call.client_host;
        let port = client_host
            .and_then(|h| h.to_str().ok())
            .and_then(|h| h.rsplit_once(':'))
            .and_then(|(_, p)| p.parse().ok())
            .unwrap_or(if peer.is_secure() { 443 } else { 80 });
        let prefix = proxy::removed_prefix(call.client_path, &out.path);
        let side = ClientSide {
            peer,
            host: client_host,
            port,
            prefix: prefix.as_deref(),
        };
        let trusted = proxy::is_trusted(&call.installed.trusted, peer.addr().ip());
        let forwarding =
            proxy::forwarding_headers(&mut headers, &side, trusted, &call.installed.forwarding);
        let host = match (&out.host, out.preserve_host, client_host) {
            (Some(h), _, _) => Some(h.clone()),
            (None, true, Some(h)) => Some(h.clone()),
            // A fixed upstream's value is made once.
            _ => match fixed_host {
                Some(h) => Some(h.clone()),
                None => HeaderValue::from_str(&authority).ok(),
            },
        };
        if let Some(h) = host {
            headers.insert(header::HOST, h);
        }
        let path_and_query = match (&out.uri, out.query.as_deref().filter(|q| !q.is_empty())) {
            (Some(uri), _) => uri.path_and_query.clone(),
            (None, Some(q)) => format!("{}?{q}", out.path),
            (None, None) => out.path.clone(),
        };
        Ok(UpstreamRequest {
            authority,
            secure,
            headers,
            forwarding,
            path_and_query,
        })
    }
}

/// The headers [`Gateway::upstream_request`] may add to a client's.
const FORWARDING_ROOM: usize = 7;

/// What [`Gateway::upstream_request`] prepared for the upstream.
struct UpstreamRequest<'a> {
    authority: Cow<'a, str>,
    secure: bool,
    /// The client's headers, filtered, without the forwarding headers.
    headers: http::HeaderMap,
    /// The forwarding headers, to be written after `headers`.
    forwarding: proxy::Forwarding,
    path_and_query: String,
}

impl UpstreamRequest<'_> {
    /// All the headers, the forwarding headers among them (for a
    /// request made again).
    fn into_headers(mut self) -> http::HeaderMap {
        self.forwarding.apply(&mut self.headers);
        self.headers
    }
}

impl<'a> Call<'a> {
    /// Where the request goes: its own URI's target (`SetRequestUri`,
    /// `RequestHeaderToRequestUri`), or its route's.
    fn target(&self) -> &'a Target {
        match &self.out.uri {
            Some(uri) => &uri.target,
            None => &self.route.target,
        }
    }

    /// The client's header map for the first attempt, once.
    fn take_first_headers(&self) -> Option<http::HeaderMap> {
        self.first_headers
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .take()
    }

    /// The client connection's upgrade, once.
    fn take_upgrade(&self) -> Option<hyper::upgrade::OnUpgrade> {
        self.on_upgrade
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .take()
    }
}

#[cfg(test)]
mod tests;

/// The requirement of the route's `JwtAuth` filter, if it has one.
fn jwt_requirement(route: &Route) -> Option<&crate::security::jwt::Requirement> {
    route.filters.iter().find_map(|f| match f {
        Filter::JwtAuth(r) => Some(r.as_ref()),
        _ => None,
    })
}

/// The proxy as a server's [`RequestService`] (see [`Gateway::service`]):
/// each connection gets a [`ProxyConnection`].
#[derive(Debug, Clone)]
pub struct ProxyService(Gateway);

impl RequestService for ProxyService {
    /// Plain requests (no body, no upgrade) take the server's own HTTP/1
    /// loop, in the connection's task; the rest hyper's.
    const OWN_HTTP1: bool = true;

    type Connection = ProxyConnection;

    fn connection(&self, peer: SocketAddr, secure: bool) -> ProxyConnection {
        let gateway = self.0.clone();
        let installed = Mutex::new(gateway.snapshot());
        ProxyConnection(Arc::new(ConnectionState {
            gateway,
            peer: Peer::new(peer, secure),
            installed,
        }))
    }
}

/// `make()`'s future in a new box, written straight into the box: a
/// request's future is several KiB, and `Box::pin(future)` makes it on the
/// stack first and copies it (about 550 instructions per request).
#[inline(always)]
fn boxed_in_place<F>(make: impl FnOnce() -> F) -> Pin<Box<F>> {
    Box::into_pin(Box::write(Box::new_uninit(), make()))
}

/// The proxy for one client connection. Its requests clone `Arc`s that
/// belong to the connection (written by its thread only), not the
/// gateway's or the route table's, which every I/O worker would otherwise
/// write to on each request.
#[derive(Debug, Clone)]
pub struct ProxyConnection(Arc<ConnectionState>);

#[derive(Debug)]
struct ConnectionState {
    gateway: Gateway,
    peer: Peer,
    /// The connection's own handle on the installed set.
    installed: Mutex<Snapshot>,
}

impl tower::Service<Request<Body>> for ProxyConnection {
    type Response = Response<Body>;
    type Error = std::convert::Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Response<Body>, Self::Error>> + Send>>;

    fn poll_ready(
        &mut self,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<(), Self::Error>> {
        std::task::Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: Request<Body>) -> Self::Future {
        let connection = Arc::clone(&self.0);
        boxed_in_place(move || async move {
            let (gateway, peer) = (&connection.gateway, &connection.peer);
            let installed = gateway.installed_for(&connection.installed);
            let logged = gateway
                .inner
                .access_log
                .then(|| access_log::Entry::begin(&request, peer.addr(), &gateway.inner.clock));
            let compression = gateway
                .inner
                .compression
                .as_ref()
                .filter(|c| c.wanted_by(&request));
            let response = gateway.dispatch(request, peer, installed, None, 0).await;
            let response = match compression {
                Some(c) => c.apply(response),
                None => response,
            };
            Ok(match logged {
                Some(entry) => entry.finish(response),
                None => response,
            })
        })
    }
}

/// The peer from the `ConnectInfo` the server puts on each request
/// (unspecified when served without one, as in `oneshot` tests).
fn peer_of<B>(request: &Request<B>) -> SocketAddr {
    request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0)
        .unwrap_or_else(|| SocketAddr::from((Ipv4Addr::UNSPECIFIED, 0)))
}

/// The peer from axum's `ConnectInfo` (unspecified when served without
/// one, as in `oneshot` tests).
async fn handle(State(gateway): State<Gateway>, request: Request<Body>) -> Response<Body> {
    let peer = peer_of(&request);
    gateway.handle(request, peer).await
}

/// Keeps a small body in memory so that `Retry` can send it again; a body
/// of unknown or large size is streamed once.
async fn keep_if_small(
    body: Body,
    headers: &http::HeaderMap,
) -> Result<AttemptBody, UpstreamError> {
    if body.size_hint().exact() == Some(0) {
        return Ok(AttemptBody::Kept(bytes::Bytes::new()));
    }
    let length = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
    match length {
        Some(n) if n <= MAX_REPLAY_BODY => {
            let limit = usize::try_from(MAX_REPLAY_BODY).unwrap_or(usize::MAX);
            match http_body_util::Limited::new(body, limit).collect().await {
                Ok(collected) => Ok(AttemptBody::Kept(collected.to_bytes())),
                Err(e) => Err(UpstreamError::client_body(BodyError(e.to_string()))),
            }
        }
        _ => Ok(AttemptBody::Stream(Some(body))),
    }
}

/// `CacheRequestBody`: the whole body, at most `limit` bytes (413 past it).
async fn keep_whole(body: Body, limit: usize) -> Result<AttemptBody, UpstreamError> {
    match http_body_util::Limited::new(body, limit).collect().await {
        Ok(collected) => Ok(AttemptBody::Kept(collected.to_bytes())),
        Err(e) if e.is::<http_body_util::LengthLimitError>() => {
            Err(UpstreamError::too_large(format!(
                "The request body is larger than spring.codec.max-in-memory-size ({limit} bytes), the most CacheRequestBody keeps"
            )))
        }
        Err(e) => Err(UpstreamError::client_body(BodyError(e.to_string()))),
    }
}

/// A request body that could not be read (the cause, as text: the body's
/// error type is boxed and not `Sync`).
#[derive(Debug, thiserror::Error)]
#[error("request body: {0}")]
struct BodyError(String);

/// `LocalResponseCache`'s defaults from
/// `spring.cloud.gateway.filter.local-response-cache.*`, and whether the
/// global cache is on.
fn response_cache_policy(
    gw: &crate::settings::GatewaySettings,
    file: &Option<PathBuf>,
) -> Result<(CachePolicy, bool), ConfigError> {
    const KEY: &str = "spring.cloud.gateway.filter.local-response-cache";
    let (s, global) = gw.local_response_cache();
    let size = match &s.size {
        None => CachePolicy::default().size,
        Some(text) => crate::filter::parse_data_size(text).ok_or_else(|| {
            ConfigError::new(
                origin(file),
                Some(&format!("{KEY}.size")),
                format!("`{text}` is not a size such as 500MB"),
            )
        })?,
    };
    let update_on_no_cache = match s.request.no_cache_strategy.trim() {
        "SKIP_UPDATE_CACHE_ENTRY" => false,
        "UPDATE_CACHE_ENTRY" => true,
        other => {
            return Err(ConfigError::new(
                origin(file),
                Some(&format!("{KEY}.request.no-cache-strategy")),
                format!("`{other}` is not SKIP_UPDATE_CACHE_ENTRY or UPDATE_CACHE_ENTRY"),
            ));
        }
    };
    let policy = CachePolicy {
        time_to_live: s.time_to_live,
        size,
        update_on_no_cache,
    };
    Ok((policy, global))
}

fn origin(file: &Option<PathBuf>) -> Origin {
    file.clone().map_or(Origin::Defaults, Origin::File)
}

/// The gateway's own error answer: Spring's JSON error body.
fn error_answer(status: StatusCode, message: &str, path: &str) -> Response<Body> {
    let mut response = SpringError::new(status, message)
        .at(path)
        .request_id(request_id())
        .into_response();
    response.extensions_mut().insert(GatewayAnswer);
    response
}

/// `RemoveJsonAttributesResponseBody` on a response: a JSON body is
/// buffered (up to the filters' `spring.codec.max-in-memory-size`) and
/// rewritten by each filter, last declared first. A body too large, not
/// JSON or unreadable fails the request (500, as SCG; 502 when the
/// upstream breaks off) rather than pass the attributes on.
async fn rewrite_json_body(
    filters: &[Filter],
    method: &http::Method,
    mut head: http::response::Parts,
    body: Body,
    path: &str,
) -> Response<Body> {
    let no_body = method == http::Method::HEAD
        || head.status.is_informational()
        || head.status == StatusCode::NO_CONTENT
        || head.status == StatusCode::NOT_MODIFIED;
    if no_body || !JsonAttributes::applies_to(&head.headers) {
        return Response::from_parts(head, body);
    }
    let rewriters = || {
        filters.iter().rev().filter_map(|f| match f {
            Filter::RemoveJsonAttributesResponseBody(j) => Some(j),
            _ => None,
        })
    };
    // None when the filter that answered came before any of them.
    let Some(limit) = rewriters().map(JsonAttributes::limit).min() else {
        return Response::from_parts(head, body);
    };
    let mut bytes = match http_body_util::BodyExt::collect(http_body_util::Limited::new(
        body, limit,
    ))
    .await
    {
        Ok(collected) => collected.to_bytes(),
        Err(e) if e.is::<http_body_util::LengthLimitError>() => {
            return error_answer(
                StatusCode::INTERNAL_SERVER_ERROR,
                &format!(
                    "The response body is larger than spring.codec.max-in-memory-size ({limit} bytes), so RemoveJsonAttributesResponseBody cannot read it"
                ),
                path,
            );
        }
        Err(e) => {
            tracing::warn!(error = %e, "reading the upstream's response body failed");
            return error_answer(
                StatusCode::BAD_GATEWAY,
                "The upstream's response body could not be read",
                path,
            );
        }
    };
    for j in rewriters() {
        bytes = match j.rewrite(&head.headers, &bytes) {
            Ok(b) => b,
            Err(e) => {
                tracing::warn!(error = %e, source = ?std::error::Error::source(&e), "RemoveJsonAttributesResponseBody failed");
                return error_answer(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    &format!("Failed to process the response body: {e}"),
                    path,
                );
            }
        };
    }
    head.headers.remove(header::TRANSFER_ENCODING);
    head.headers
        .insert(header::CONTENT_LENGTH, HeaderValue::from(bytes.len()));
    Response::from_parts(head, Body::from(bytes))
}

/// On a route with `RequestSize`, a body of unknown length (chunked, or
/// HTTP/2 without `content-length`) is cut at the limit: the exchange then
/// fails with 413 (`Content-Length` itself is checked by the filter before
/// anything is sent).
fn limit_chunked_body(route: &Route, headers: &http::HeaderMap, body: Body) -> Body {
    let max = route.filters.iter().find_map(|f| match f {
        crate::filter::Filter::RequestSize(max) => Some(*max),
        _ => None,
    });
    match max {
        Some(max) if !headers.contains_key(header::CONTENT_LENGTH) => Body::new(
            http_body_util::Limited::new(body, usize::try_from(max).unwrap_or(usize::MAX)),
        ),
        _ => body,
    }
}

/// SCG's 404 for a request no route matches: Spring Boot's error body as
/// WebFlux writes it (no `message`, a `requestId`).
/// The `requestId` of a gateway's own error answer, as Spring's WebFlux
/// error body has one: unique within the process.
fn request_id() -> String {
    static REQUESTS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);
    let n = REQUESTS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    format!("{:08x}-{n}", std::process::id())
}

fn not_found_answer(path: &str) -> Response<Body> {
    let mut response = SpringError::bare(StatusCode::NOT_FOUND)
        .at(path)
        .request_id(request_id())
        .into_response();
    response.extensions_mut().insert(GatewayAnswer);
    response
}

fn upstream_error_answer(route: &str, e: &UpstreamError, path: &str) -> Response<Body> {
    match e.is_client_fault() {
        // Any client can cause these: not worth a warning each.
        true => {
            tracing::debug!(route, error = %e, source = ?std::error::Error::source(e), "request refused");
        }
        false => {
            tracing::warn!(route, error = %e, source = ?std::error::Error::source(e), "upstream failed");
        }
    }
    error_answer(e.status(), e.detail(), path)
}

/// A number in `[0, 1)` for `Weight`: a per-thread xorshift, seeded from
/// the standard library's random hasher keys.
fn roll() -> f64 {
    use std::cell::Cell;
    use std::hash::{BuildHasher, Hasher};
    thread_local! {
        static STATE: Cell<u64> = Cell::new({
            let mut h = std::collections::hash_map::RandomState::new().build_hasher();
            h.write_u64(0x9E37_79B9_7F4A_7C15);
            h.finish() | 1
        });
    }
    STATE.with(|s| {
        let mut x = s.get();
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        s.set(x);
        (x >> 11) as f64 / (1u64 << 53) as f64
    })
}
