//! Wire types that the suite's servers and their clients share.
//!
//! Serde only: no sockets, no I/O. One definition of each type, used by the
//! server that writes it and the client that reads it.
//!
//! # Layout
//! - `eureka`: Netflix Eureka's `InstanceInfo`, `Application`, `Applications`
//!   with their JSON and XML codecs (added by the discovery-server work).
//! - `config`: Spring Cloud Config's `Environment` and `PropertySource`
//!   (added by the config-server work).

pub mod config;
pub mod eureka;
