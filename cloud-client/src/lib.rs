//! What a Rust service links to join the suite, as a Spring Boot service
//! gets from its Spring Cloud starters: settings with Spring's property
//! names, a Eureka discovery client with a local registry cache, load
//! balancing, a Spring Cloud Config client with live refresh, and a
//! resilient load-balanced HTTP client.
//!
//! It speaks the protocols, not our servers: the discovery client works
//! against a Netflix Eureka server and the config client against a Spring
//! Cloud Config server; against ours, changes arrive over their watch
//! streams in well under a second instead of on the next poll.
//!
//! # Layout
//! - [`settings`] holds [`ClientSettings`](settings::ClientSettings), Spring's
//!   keys (`spring.application.name`, `eureka.client.service-url.defaultZone`,
//!   ...) with relaxed matching; a wrong value names its key.
//! - [`discovery`] holds [`DiscoveryClient`](discovery::DiscoveryClient):
//!   register, heartbeat, re-register on 404, failover between servers,
//!   DOWN + cancel on shutdown; the registry cache (full fetch, deltas,
//!   hashcode reconciliation, watch), lookups and subscriptions. The pure
//!   parts are `discovery/cache.rs` and `discovery/failover.rs`.
//! - [`loadbalancer`] holds [`LoadBalancer`](loadbalancer::LoadBalancer) with
//!   round robin, random, weighted, zone preference, sticky and P2C over
//!   peak EWMA; outlier ejection. Picks take no lock and allocate nothing.
//! - [`config`] holds [`ConfigClient`](config::ConfigClient) and
//!   [`LiveConfig`](config::LiveConfig), typed snapshots refreshed from the
//!   server's change stream; `config/properties.rs` is the pure merging.
//! - [`http`] holds [`LbHttpClient`](http::LbHttpClient): `lb://` resolution,
//!   circuit breaker per service, safe retries with a budget, timeout,
//!   fallback, W3C `traceparent`; also a `tower::Service`.
//! - [`service`] holds [`CloudService`](service::CloudService): start in
//!   Spring Boot's order (bootstrap settings, config, final settings,
//!   register, HTTP client) and deregister on shutdown.
//! - [`actuator`] holds `/actuator/health` and `/actuator/prometheus`
//!   (registry cache, breakers with Resilience4j's names, balancers).
//! - [`sse`] holds the Server-Sent Events parser both watches use.
//!
//! `benches/pick.rs` measures a pick per strategy against tower's P2C;
//! `examples/service.rs` runs the whole loop against an in-process
//! discovery server (`cargo run -p cloud-client --example service`).
//!
//! # Example
//! ```
//! use std::sync::Arc;
//! use cloud_client::discovery::ServiceInstance;
//! use cloud_client::loadbalancer::{LoadBalancer, Outcome, Strategy};
//! use cloud_client::settings::ClientSettings;
//! use cloud_protocol::eureka::{InstanceInfo, InstanceStatus, PortWrapper};
//!
//! // Settings as Spring writes them, from a file, the environment or flags.
//! let settings = ClientSettings::from_properties([
//!     ("spring.application.name", "checkout"),
//!     ("eureka.client.service-url.defaultZone", "http://eureka1:8761/eureka/,http://eureka2:8761/eureka/"),
//!     ("eureka.instance.metadata-map.zone", "eu-west-1a"),
//! ])?;
//! assert_eq!(settings.eureka_service_urls()?.len(), 2);
//!
//! // Instances as the registry cache holds them; prefer the local zone.
//! let instance = |id: &str, zone: &str| {
//!     let mut info = InstanceInfo {
//!         instance_id: id.into(), host_name: format!("{id}.internal"), app: "USERS".into(),
//!         ip_addr: "10.0.0.1".into(), status: InstanceStatus::Up,
//!         port: PortWrapper::enabled(8080), ..InstanceInfo::default()
//!     };
//!     info.metadata.insert("zone".into(), zone.into());
//!     ServiceInstance::from_info(&info)
//! };
//! let lb = LoadBalancer::new(Strategy::ZonePreference("eu-west-1a".into()));
//! lb.update(&Arc::from(vec![instance("u1", "eu-west-1a"), instance("u2", "us-east-1a")]));
//! let picked = lb.pick().expect("an instance is up");
//! assert_eq!(picked.instance().base_url(), "http://u1.internal:8080");
//! picked.record(Outcome::Success);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

pub mod actuator;
pub mod config;
pub mod discovery;
pub mod http;
pub mod loadbalancer;
pub mod service;
pub mod settings;
pub mod sse;
