//! [`Balancer`]: one cloud-client [`LoadBalancer`] per service. The pool
//! is rebuilt only when the resolver hands out a different list (compared
//! by pointer), so while nothing changes a request costs a map lookup, two
//! atomic loads and the pick itself; an instance that stays keeps its
//! numbers (latency, requests in flight, ejection) across rebuilds.

use std::sync::Arc;

use arc_swap::ArcSwap;
use cloud_client::actuator::PoolGauges;
use cloud_client::discovery::ServiceInstance;
use cloud_client::loadbalancer::{LoadBalancer, Strategy};
use cloud_protocol::eureka::{InstanceStatus, Metadata};
use dashmap::DashMap;

use super::{Instance, ServiceInstances};
use crate::settings::BalanceStrategy;

/// Chooses among the UP instances of each service with cloud-client's
/// load balancer.
#[derive(Debug)]
pub struct Balancer {
    strategy: Strategy,
    services: DashMap<String, Arc<ServicePool>>,
}

impl Default for Balancer {
    /// P2C over peak EWMA.
    fn default() -> Self {
        Balancer::new(BalanceStrategy::default())
    }
}

#[derive(Debug)]
struct ServicePool {
    lb: Arc<LoadBalancer>,
    /// The resolver's list the pool was last built from.
    built_from: ArcSwap<Source>,
}

#[derive(Debug, Default)]
struct Source(Option<Arc<[Instance]>>);

impl Balancer {
    /// A balancer choosing with `strategy`.
    pub fn new(strategy: BalanceStrategy) -> Balancer {
        let strategy = match strategy {
            BalanceStrategy::PowerOfTwoChoices => Strategy::PowerOfTwoChoices,
            BalanceStrategy::RoundRobin => Strategy::RoundRobin,
            BalanceStrategy::Random => Strategy::Random,
            BalanceStrategy::Weighted => Strategy::Weighted,
        };
        Balancer {
            strategy,
            services: DashMap::new(),
        }
    }

    /// The load balancer of `service`, its pool brought up to date with
    /// the instances `source` holds now. Pick with
    /// [`LoadBalancer::pick`] (`None`: no instance is UP) and record how
    /// the call went on the pick.
    pub fn service(&self, source: &dyn ServiceInstances, service: &str) -> Arc<LoadBalancer> {
        let pool = match self.services.get(service) {
            Some(p) => Arc::clone(&p),
            None => Arc::clone(
                self.services
                    .entry(service.to_owned())
                    .or_insert_with(|| {
                        Arc::new(ServicePool {
                            lb: Arc::new(LoadBalancer::new(self.strategy.clone())),
                            built_from: ArcSwap::from_pointee(Source::default()),
                        })
                    })
                    .value(),
            ),
        };
        let now = source.instances(service);
        let unchanged = pool
            .built_from
            .load()
            .0
            .as_ref()
            .is_some_and(|old| Arc::ptr_eq(old, &now));
        if !unchanged {
            let converted: Arc<[ServiceInstance]> =
                now.iter().map(|i| service_instance(service, i)).collect();
            pool.lb.update(&converted);
            pool.built_from.store(Arc::new(Source(Some(now))));
        }
        Arc::clone(&pool.lb)
    }
}

impl Balancer {
    /// Every service balanced so far (named as routes write it), by name:
    /// the UP instances in its pool and those ejected now.
    pub fn stats(&self) -> Vec<PoolGauges> {
        let mut out: Vec<PoolGauges> = self
            .services
            .iter()
            .map(|e| PoolGauges {
                service: e.key().clone(),
                instances: e.value().lb.endpoints().len(),
                ejected: e.value().lb.ejected_count(),
            })
            .collect();
        out.sort_by(|a, b| a.service.cmp(&b.service));
        out
    }
}

/// The balancer's view of an instance; `host:port` identifies it, so an
/// instance keeps its numbers while it stays in the list.
fn service_instance(service: &str, i: &Instance) -> ServiceInstance {
    ServiceInstance {
        instance_id: i.authority(),
        app: service.to_ascii_uppercase(),
        host: i.host.clone(),
        port: i.port,
        secure: i.secure,
        status: if i.up {
            InstanceStatus::Up
        } else {
            InstanceStatus::Down
        },
        zone: None,
        weight: i.weight.max(1),
        metadata: Metadata::new(),
        vip_address: None,
        secure_vip_address: None,
    }
}

#[cfg(test)]
mod tests {
    use cloud_client::loadbalancer::Outcome;

    use super::*;
    use crate::resolve::StaticInstances;

    fn pick(b: &Balancer, s: &StaticInstances, service: &str) -> Option<String> {
        let lb = b.service(s, service);
        let picked = lb.pick()?;
        let host = picked.instance().host.clone();
        picked.record(Outcome::Success);
        Some(host)
    }

    #[test]
    fn round_robin_over_up_instances_only_following_changes() {
        let s = StaticInstances::new();
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
        let b = Balancer::new(BalanceStrategy::RoundRobin);
        let picks: Vec<String> = (0..4).filter_map(|_| pick(&b, &s, "users")).collect();
        assert_eq!(picks, ["a", "b", "a", "b"]);
        assert_eq!(pick(&b, &s, "nobody"), None);
        s.set("users", vec![Instance::up("c", 4)]);
        assert_eq!(pick(&b, &s, "users").as_deref(), Some("c"));
        s.set(
            "users",
            vec![Instance {
                up: false,
                ..Instance::up("down", 2)
            }],
        );
        assert_eq!(pick(&b, &s, "users"), None);
    }

    #[test]
    fn p2c_is_the_default_and_prefers_the_instance_with_less_in_flight() {
        let s = StaticInstances::new();
        s.set("users", vec![Instance::up("a", 1), Instance::up("b", 2)]);
        let b = Balancer::default();
        let lb = b.service(&s, "users");
        assert_eq!(lb.strategy(), &Strategy::PowerOfTwoChoices);
        // Hold a pick open: with two instances P2C compares both, so every
        // other pick goes to the one without a request in flight.
        let busy = lb.pick().expect("an instance is up");
        let busy_host = busy.instance().host.clone();
        for _ in 0..10 {
            let other = lb.pick().expect("an instance is up");
            assert_ne!(other.instance().host, busy_host);
        }
        busy.record(Outcome::Success);
        assert_eq!(
            b.stats(),
            [PoolGauges {
                service: "users".into(),
                instances: 2,
                ejected: 0
            }]
        );
        assert!(
            Arc::ptr_eq(&lb, &b.service(&s, "users")),
            "one balancer per service"
        );
    }
}
