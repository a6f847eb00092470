//! A Eureka-compatible service registry: services register, renew their
//! leases and find each other over Eureka's REST API, so that every Eureka
//! client (the Netflix Java client in Spring Boot, py-eureka-client,
//! eureka-js-client, Steeltoe) works unchanged, while leases expire on time,
//! reads reflect writes at once and changes can be watched.
//!
//! # Layout
//! - [`registry`]: the pure core: leases, renew, cancel, eviction,
//!   self-preservation, status override rules, delta queue, hashcode.
//! - [`node`]: the registry plus the fan-out of its events (metrics,
//!   watchers, [`node::EventSink`]s such as peer replication).
//! - [`http`]: the `/eureka/*` and `/eureka/v2/*` API, content negotiation,
//!   pre-serialized listings, Basic auth; the watch endpoints (Server-Sent
//!   Events and long poll on the registry version), the dashboard at `/`,
//!   `/actuator/health` and `/actuator/prometheus`.
//! - [`replication`]: peer nodes, batched replication, conflict rules,
//!   the initial registry copy from a peer, recognising this node's own
//!   URL in the peer list.
//! - [`eviction`]: the eviction timer. [`config`]: settings with Spring's
//!   names, layered through `cloud_runtime::settings`. [`server`]: the one
//!   place that reads the configuration, wires the parts and serves them
//!   through `cloud_runtime::serve`.
//!
//! Arrows point down: `server` -> {`http`, `replication`, `eviction`} ->
//! `node` -> `registry`. Time comes from `cloud_runtime::clock`.
//!
//! # Example
//! ```no_run
//! use discovery_server::{ServerConfig, run};
//!
//! # async fn demo() -> std::io::Result<()> {
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
//! let shutdown = async { let _ = tokio::signal::ctrl_c().await; };
//! run(listener, ServerConfig::default(), shutdown).await
//! # }
//! ```
//!
//! A complete program that embeds the server on a free port, registers an
//! instance over HTTP, lists it and shuts down:
//! `cargo run -p discovery-server --example discovery_embedded`.
//!
//! In-process, without a socket:
//! ```
//! use axum::body::Body;
//! use axum::http::{Request, StatusCode};
//! use discovery_server::{Server, ServerConfig};
//! use tower::ServiceExt;
//!
//! # tokio::runtime::Runtime::new().unwrap().block_on(async {
//! let router = Server::new(ServerConfig::default()).unwrap().router();
//! let response = router
//!     .oneshot(Request::get("/eureka/apps").header("Accept", "application/json").body(Body::empty()).unwrap())
//!     .await
//!     .unwrap();
//! assert_eq!(response.status(), StatusCode::OK);
//! # });
//! ```

pub mod config;
pub mod eviction;
pub mod http;
pub mod limits;
pub mod metrics;
pub mod node;
pub mod registry;
pub mod replication;
pub mod server;

pub use config::ServerConfig;
pub use node::Node;
pub use server::{Server, run};
