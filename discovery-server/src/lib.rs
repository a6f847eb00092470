//! discovery-server library.

pub mod clock;
pub mod registry;
