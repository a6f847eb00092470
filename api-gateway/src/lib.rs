//! An API gateway that reads Spring Cloud Gateway's route definitions from
//! its `application.yml` (routes, predicates, filters, default filters,
//! the discovery locator) and proxies on pooled `hyper` connections.
//!
//! A request is matched against the routes in order (`order`, then
//! declaration), its request filters run, the upstream is called (through
//! the route's `CircuitBreaker` and `Retry`, if any), and its response
//! filters run on the way back. No route: 404 JSON. `lb://` with no
//! instance UP: 503 JSON. Upstream unreachable: 502; no response head in
//! time: 504. See `docs/api-gateway.md` for every predicate and filter.
//!
//! # Layout
//! - [`config`]: route definitions as SCG writes them (shortcut and
//!   expanded forms), binding of arguments, refusal of `#{...}`.
//! - [`settings`]: the settings schema (Spring Boot's and SCG's keys) and
//!   where settings come from ([`settings::Source`]).
//! - [`predicate`]: the predicates, pure; `predicate/pattern.rs` SCG's path
//!   and host patterns, `time.rs` date-times, `cidr.rs` address ranges.
//! - [`filter`]: the filters and their one order; `filter/retry.rs` the
//!   retry policy, `filter/ratelimit.rs` the in-memory token buckets.
//! - [`route`]: compiled routes and the route table; [`target`] a route's
//!   `uri` and a request's own destination.
//! - [`resolve`]: `lb://` names to instances ([`resolve::ServiceInstances`];
//!   [`resolve::StaticInstances`], and [`resolve::RegistryInstances`] over
//!   cloud-client's Eureka registry cache) and the choice of one
//!   ([`resolve::Balancer`]: cloud-client's strategies, P2C by default).
//! - [`proxy`]: hop-by-hop and forwarding headers (SCG's `x-forwarded.*`
//!   switches), timeouts, the one transparent retry; `proxy/pool.rs` the
//!   upstream connections (hyper's HTTP/1.1 `client::conn`, pooled per
//!   upstream and I/O worker; SCG's `ELASTIC`, `FIXED` and `DISABLED` pool
//!   types), `proxy/pool/inline.rs` the HTTP/1.1 exchange run in the
//!   request's own task for requests without a body to cleartext
//!   upstreams (`ELASTIC` only), `proxy/pool/http2.rs` the multiplexed HTTP/2 connection per
//!   `https` upstream and I/O worker (`server.http2.enabled`, for gRPC),
//!   `proxy/pool/tunnel.rs` connections through a forward proxy
//!   (`httpclient.proxy.*`, `CONNECT` tunnels).
//! - `request_check.rs`: what is refused before routing (a missing,
//!   repeated or invalid `Host`; dot-segments in the path; `CONNECT`), the
//!   request target's authority made the `Host`, and an HTTP/2 request's
//!   `cookie` fields joined into one.
//! - [`gateway`]: the running gateway: table swap, the request path,
//!   refresh.
//! - [`tls`]: TLS for clients (`server.ssl.*`, certificate reload) and
//!   to `https://` upstreams.
//! - [`websocket`]: WebSocket upgrades and the tunnels they open.
//! - `access_log.rs`: Reactor Netty's access log line per request, when
//!   `reactor.netty.http.server.access-log-enabled` is on.
//! - [`compress`]: gzip responses (`server.compression.*`).
//! - [`admin`]: the admin API on its own port; [`metrics`] its counters,
//!   with SCG's request metric written as SCG writes it; [`route_store`]
//!   the routes it saves, kept in Redis as SCG keeps them when asked.
//! - [`reload`]: the settings file read again when it changes.
//! - [`security`]: JWT validation (`JwtAuth`), JWKS keys, claim headers.
//! - `watched.rs`: a response body passed on while the response cache or
//!   the access log watches it.
//! - [`cors`]: CORS (global and per route), as Spring's `DefaultCorsProcessor`.
//!
//! # Example
//! A route table from SCG's YAML, matched without a socket:
//!
//! ```
//! use api_gateway::gateway::Gateway;
//! use api_gateway::settings::Settings;
//!
//! let yaml = r#"
//! spring:
//!   cloud:
//!     gateway:
//!       routes:
//!         - id: users
//!           uri: http://127.0.0.1:9000
//!           predicates: [ "Path=/users/{id}", "Method=GET" ]
//!           filters: [ "StripPrefix=1", "AddRequestHeader=X-User, {id}" ]
//! "#;
//! let settings: Settings = serde_yaml_ng::from_str(yaml).expect("valid YAML");
//! let gateway = Gateway::builder(settings).build().expect("routes compile");
//! let table = gateway.table();
//! let headers = http::HeaderMap::new();
//! let view = api_gateway::predicate::RequestView {
//!     method: &http::Method::GET,
//!     path: "/users/42",
//!     query: None,
//!     headers: &headers,
//!     remote: "127.0.0.1".parse().expect("address"),
//!     now_millis: 0,
//!     weight_roll: 0.5,
//! };
//! let (route, vars) = table.find(&view).expect("a route matches");
//! assert_eq!(route.id, "users");
//! assert_eq!(vars, [("id".to_owned(), "42".to_owned())]);
//! ```
//!
//! Serving: [`run`] serves the proxy and the admin API until the token is
//! cancelled. The proxy's plain HTTP/1.1 requests (no body, no upgrade)
//! are read and answered by the runtime's own HTTP/1 loop
//! (`RequestService::OWN_HTTP1`); the rest by hyper's server.

mod access_log;
pub mod admin;
pub mod compress;
pub mod config;
pub mod cors;
pub mod filter;
pub mod gateway;
mod media;
pub mod metrics;
pub mod predicate;
pub mod proxy;
pub mod reload;
mod request_check;
pub mod resolve;
pub mod route;
pub mod route_store;
pub mod security;
pub mod settings;
pub mod target;
pub mod tls;
mod watched;
pub mod websocket;

use cloud_runtime::serve::ServeLimits;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

pub use gateway::{Gateway, GatewayBuilder};

/// Serves `gateway` on `proxy` (over TLS when `server.ssl` says so) and
/// its admin API on `admin` until `shutdown` is cancelled, then drains
/// both; the routes follow service changes meanwhile when the discovery
/// locator is on. With the Redis route repository, the routes saved there
/// are read before either port serves. Fails at once when the TLS
/// settings do not load.
pub async fn run(
    gateway: Gateway,
    proxy: TcpListener,
    admin: TcpListener,
    limits: &ServeLimits,
    shutdown: CancellationToken,
) -> std::io::Result<()> {
    let tls = tls::ServerTls::from_settings_with(
        &gateway.settings().server.ssl,
        &gateway.settings().spring.ssl.bundle,
        gateway.file().as_deref(),
    )
    .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, e))?;
    let watcher = tokio::spawn(gateway.clone().watch_services(shutdown.clone()));
    let file_watcher = tokio::spawn(reload::watch_settings_file(
        gateway.clone(),
        reload::current_bytes(&gateway).await,
        shutdown.clone(),
    ));
    let tunnels = {
        let (gateway, shutdown, within) = (gateway.clone(), shutdown.clone(), limits.drain_timeout);
        tokio::spawn(async move {
            shutdown.cancelled().await;
            gateway.close_tunnels(within).await;
        })
    };
    let reloader = tls.clone().map(|t| tokio::spawn(t.watch(shutdown.clone())));
    if gateway.keeps_routes_in_redis() {
        // The routes other gateways saved, before the first request.
        if let Err(e) = gateway.refresh().await {
            tracing::error!(error = %e, "the routes do not compile with those saved in Redis; serving without them");
        }
    }
    // The proxy serves on I/O workers (one per CPU unless
    // `server.io-workers` says otherwise); the admin API on this runtime.
    let mut proxy_limits = limits.clone();
    proxy_limits
        .io_workers
        .get_or_insert_with(cloud_runtime::serve::workers::default_count);
    let serve_proxy = async {
        match &tls {
            Some(t) => {
                cloud_runtime::serve::serve_tls_with_stats(
                    proxy,
                    gateway.service(),
                    &proxy_limits,
                    shutdown.clone(),
                    std::sync::Arc::clone(gateway.connection_stats()),
                    t.acceptor(),
                )
                .await
            }
            None => {
                cloud_runtime::serve::serve_with_stats(
                    proxy,
                    gateway.service(),
                    &proxy_limits,
                    shutdown.clone(),
                    std::sync::Arc::clone(gateway.connection_stats()),
                )
                .await
            }
        }
    };
    let served = tokio::try_join!(
        serve_proxy,
        cloud_runtime::serve::serve(
            admin,
            admin::router(gateway.clone()),
            limits,
            shutdown.clone()
        ),
    );
    shutdown.cancel();
    if let Err(e) = watcher.await {
        tracing::debug!(error = %e, "service watcher ended abnormally");
    }
    if let Some(Err(e)) = match reloader {
        Some(r) => Some(r.await),
        None => None,
    } {
        tracing::debug!(error = %e, "the certificate reloader ended abnormally");
    }
    if let Err(e) = file_watcher.await {
        tracing::debug!(error = %e, "the settings file watcher ended abnormally");
    }
    if let Err(e) = tunnels.await {
        tracing::debug!(error = %e, "closing the WebSocket tunnels ended abnormally");
    }
    served.map(|_| ())
}
