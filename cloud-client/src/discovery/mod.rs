//! Discovery over the Eureka protocol: register, heartbeat, deregister, and
//! a local registry cache kept fresh by deltas and, against our discovery
//! server, its watch stream. Works against a Netflix Eureka server too
//! (without the watch, the timer alone refreshes the cache).
//!
//! - `cache`: the pure cache (full listing, deltas, hashcode check) and
//!   [`RegistrySnapshot`], the lock-free view lookups read.
//! - `failover`: the sticky server choice, pure.
//! - `instance`: [`ServiceInstance`] and the [`registration`] record.
//! - `transport`: Eureka's REST calls with failover.
//! - `client`: [`DiscoveryClient`] and its background loops.

mod cache;
mod client;
mod failover;
mod instance;
mod transport;

pub use cache::{DeltaOutcome, RegistryCache, RegistrySnapshot};
pub use client::{AppSubscription, DiscoveryClient, DiscoveryError, DiscoveryHealth};
pub use failover::ServerChoice;
pub use instance::{ServiceInstance, registration};
pub use transport::{RegistryUnreachable, TransportError, UnexpectedAnswer, UnreadableAnswer};
