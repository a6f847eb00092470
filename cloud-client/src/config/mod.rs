//! The config client: the environment from a Spring Cloud Config server,
//! layered into the application's configuration and kept fresh.
//!
//! - `properties`: the pure part: merging property sources (first wins),
//!   layering local < server < environment variables, changed keys,
//!   `invalid.<key>` detection, flat keys to a typed value.
//! - `client`: [`ConfigClient`] (fetch with Basic auth, fail-fast or the
//!   cached copy) and [`LiveConfig`], the typed snapshot refreshed from the
//!   server's change stream (`GET /watch/{app}/{profiles}`, SSE) or by
//!   polling when the server has none.

mod client;
mod properties;

pub use client::{ConfigClient, ConfigError, ConfigSnapshot, FetchError, LiveConfig};
pub use properties::{
    DeserializeError, Properties, Undecryptable, changed_keys, deserialize, layer, merge_sources,
};
