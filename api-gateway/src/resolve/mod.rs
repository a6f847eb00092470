//! `lb://name`: service names to instances, through the
//! [`ServiceInstances`] trait, and the choice of one instance per request.
//!
//! - [`StaticInstances`]: a fixed (settable) list for tests and small setups.
//! - [`RegistryInstances`] (`registry.rs`): the instances in cloud-client's
//!   Eureka registry cache, followed live.
//! - [`Balancer`] (`balance.rs`): cloud-client's load balancer per service
//!   (P2C over peak EWMA by default) over the UP instances.
//!
//! No network call is made on the request path: lookups read memory.

mod balance;
mod registry;

use std::collections::BTreeMap;
use std::sync::{Arc, PoisonError, RwLock};

use tokio::sync::watch;

pub use balance::Balancer;
pub use registry::{RegistryInstances, client_settings};

/// One instance of a service.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Instance {
    /// Host name or address.
    pub host: String,
    /// Port.
    pub port: u16,
    /// Whether it speaks HTTPS.
    pub secure: bool,
    /// Whether it is UP (only UP instances get requests).
    pub up: bool,
    /// Its share for the `weighted` strategy (metadata `weight`); 1 when
    /// not given.
    pub weight: u32,
}

impl Instance {
    /// An UP, plain HTTP instance.
    pub fn up(host: impl Into<String>, port: u16) -> Instance {
        Instance {
            host: host.into(),
            port,
            secure: false,
            up: true,
            weight: 1,
        }
    }

    /// `host:port` (IPv6 addresses in brackets).
    pub fn authority(&self) -> String {
        authority(&self.host, self.port)
    }
}

/// `host:port`, an IPv6 address in brackets.
pub fn authority(host: &str, port: u16) -> String {
    if host.contains(':') && !host.starts_with('[') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    }
}

/// Service names to their current instances.
pub trait ServiceInstances: Send + Sync + std::fmt::Debug + 'static {
    /// The instances of `service` now (any status).
    fn instances(&self, service: &str) -> Arc<[Instance]>;
    /// Every known service name.
    fn services(&self) -> Vec<String>;
    /// A receiver that changes whenever the set of services or instances
    /// changes (its value is a change counter).
    fn subscribe(&self) -> watch::Receiver<u64>;
    /// A health component (Spring's `{"status": .., "details": ..}`) and
    /// its name, for the admin API's health. Default is none.
    fn health(&self) -> Option<(&'static str, serde_json::Value)> {
        None
    }
}

/// A fixed list of services, replaceable at run time.
#[derive(Debug)]
pub struct StaticInstances {
    services: RwLock<BTreeMap<String, Arc<[Instance]>>>,
    changes: watch::Sender<u64>,
}

impl Default for StaticInstances {
    fn default() -> Self {
        StaticInstances {
            services: RwLock::new(BTreeMap::new()),
            changes: watch::channel(0).0,
        }
    }
}

impl StaticInstances {
    /// No services.
    pub fn new() -> StaticInstances {
        StaticInstances::default()
    }

    /// Replaces the instances of `service` (an empty list removes it).
    pub fn set(&self, service: &str, instances: Vec<Instance>) {
        {
            let mut map = self
                .services
                .write()
                .unwrap_or_else(PoisonError::into_inner);
            if instances.is_empty() {
                map.remove(service);
            } else {
                map.insert(service.to_owned(), instances.into());
            }
        }
        self.changes.send_modify(|n| *n += 1);
    }
}

impl ServiceInstances for StaticInstances {
    fn instances(&self, service: &str) -> Arc<[Instance]> {
        self.services
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .get(service)
            .cloned()
            .unwrap_or_else(|| Arc::from(Vec::new()))
    }

    fn services(&self) -> Vec<String> {
        self.services
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .keys()
            .cloned()
            .collect()
    }

    fn subscribe(&self) -> watch::Receiver<u64> {
        self.changes.subscribe()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn static_instances_replace_lists_and_tell_subscribers() {
        let s = StaticInstances::new();
        let rx = s.subscribe();
        s.set("users", vec![Instance::up("a", 1), Instance::up("b", 3)]);
        assert!(rx.has_changed().unwrap_or(false));
        assert_eq!(s.instances("users").len(), 2);
        assert!(s.instances("nobody").is_empty());
        assert_eq!(s.services(), ["users"]);
        s.set("users", Vec::new());
        assert!(s.services().is_empty());
        assert_eq!(Instance::up("::1", 8).authority(), "[::1]:8");
    }
}
