//! What a Rust service links to join the suite.
pub mod config;
pub mod discovery;
pub mod http;
pub mod loadbalancer;
pub mod settings;
pub mod sse;
