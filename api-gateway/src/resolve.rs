//! `lb://name`: service names to instances, through the
//! [`ServiceInstances`] trait. [`StaticInstances`] is a fixed (settable)
//! list for tests and small setups; the discovery client plugs in through
//! the same trait. A request picks among the instances that are UP, round
//! robin per service; no network call is made on the request path.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, PoisonError, RwLock};

use dashmap::DashMap;
use tokio::sync::watch;

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
}

impl Instance {
    /// An UP, plain HTTP instance.
    pub fn up(host: impl Into<String>, port: u16) -> Instance {
        Instance {
            host: host.into(),
            port,
            secure: false,
            up: true,
        }
    }

    /// `host:port` (IPv6 addresses in brackets).
    pub fn authority(&self) -> String {
        if self.host.contains(':') && !self.host.starts_with('[') {
            format!("[{}]:{}", self.host, self.port)
        } else {
            format!("{}:{}", self.host, self.port)
        }
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

/// Round-robin choice among the UP instances of each service.
#[derive(Debug, Default)]
pub struct Balancer {
    cursors: DashMap<String, AtomicUsize>,
}

impl Balancer {
    /// The next UP instance of `service`, or `None` when none is UP.
    pub fn choose(&self, source: &dyn ServiceInstances, service: &str) -> Option<Instance> {
        let all = source.instances(service);
        let up: Vec<&Instance> = all.iter().filter(|i| i.up).collect();
        if up.is_empty() {
            return None;
        }
        let n = match self.cursors.get(service) {
            Some(c) => c.fetch_add(1, Ordering::Relaxed),
            None => self
                .cursors
                .entry(service.to_owned())
                .or_default()
                .fetch_add(1, Ordering::Relaxed),
        };
        up.get(n % up.len()).map(|i| (*i).clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_robin_over_up_instances_only() {
        let s = StaticInstances::new();
        let rx = s.subscribe();
        s.set(
            "users",
            vec![
                Instance::up("a", 1),
                Instance {
                    up: false,
                    ..Instance::up("down", 2)
                },
                Instance::up("b", 3),
            ],
        );
        assert!(rx.has_changed().unwrap_or(false));
        let b = Balancer::default();
        let picks: Vec<String> = (0..4)
            .filter_map(|_| b.choose(&s, "users"))
            .map(|i| i.host)
            .collect();
        assert_eq!(picks, ["a", "b", "a", "b"]);
        assert_eq!(b.choose(&s, "nobody"), None);
        s.set(
            "users",
            vec![Instance {
                up: false,
                ..Instance::up("down", 2)
            }],
        );
        assert_eq!(b.choose(&s, "users"), None);
        assert_eq!(s.services(), ["users"]);
        assert_eq!(Instance::up("::1", 8).authority(), "[::1]:8");
    }
}
