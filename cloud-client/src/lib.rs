//! What a Rust service links to join the suite.
pub mod settings;
