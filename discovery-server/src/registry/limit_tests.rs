//! The registry within its [`Limits`]: metadata caps, and a delta queue
//! that stays within its byte budget without ever misleading a client.

use std::collections::HashMap;
use std::sync::Arc;

use cloud_protocol::eureka::{ActionType, AppsHashcode, InstanceInfo, InstanceStatus, LeaseInfo};
use proptest::prelude::*;

use super::*;
use crate::limits::Limits;
use cloud_runtime::clock::ManualClock;

const T0: i64 = 1_700_000_000_000;
const RETENTION: i64 = 180_000;

fn registry(limits: Limits) -> (Registry, Arc<ManualClock>) {
    let clock = Arc::new(ManualClock::at_epoch_millis(T0));
    let r = Registry::new(RegistrySettings::default(), clock.clone());
    r.set_limits(limits);
    (r, clock)
}

fn instance(id: &str, metadata_entries: usize) -> InstanceInfo {
    let mut info = InstanceInfo {
        instance_id: id.into(),
        host_name: format!("{id}.local"),
        app: "APP".into(),
        ip_addr: "10.0.0.1".into(),
        status: InstanceStatus::Up,
        lease_info: Some(LeaseInfo::default()),
        ..InstanceInfo::default()
    };
    info.metadata
        .extend((0..metadata_entries).map(|i| (format!("key-{i:05}"), "v".repeat(10))));
    info
}

fn entries(n: usize, prefix: &str) -> Vec<(String, String)> {
    (0..n)
        .map(|i| (format!("{prefix}{i}"), "v".to_owned()))
        .collect()
}

#[test]
fn a_metadata_update_over_the_limit_stores_nothing() {
    let limits = Limits {
        max_metadata_keys_per_instance: 10,
        ..Limits::default()
    };
    let (r, _) = registry(limits);
    r.register(instance("a", 4), Origin::Local);
    let version = r.version();
    assert_eq!(
        r.check_metadata_update("app", "a", &entries(6, "x")),
        Some(Ok(()))
    );
    let over = r.check_metadata_update("app", "a", &entries(7, "x"));
    assert!(matches!(over, Some(Err(e)) if e.is_too_many_keys() && e.actual == 11));
    assert!(r.update_metadata("app", "a", entries(7, "x")).is_none());
    assert_eq!(r.version(), version, "nothing changed");
    let Some((info, _)) = r.instance("APP", "a") else {
        panic!("the instance is still registered");
    };
    assert_eq!(info.metadata.len(), 4);
    // Replacing existing keys adds nothing, so it always fits.
    assert!(
        r.update_metadata("APP", "a", entries(3, "key-0000"))
            .is_some()
    );
    assert_eq!(r.check_metadata_update("APP", "nobody", &[]), None);
}

#[test]
fn re_registering_one_instance_keeps_one_record_in_the_delta_queue() {
    let (r, clock) = registry(Limits::default());
    let one = instance("a", 200).approx_size_bytes();
    for i in 0..200 {
        let mut info = instance("a", 200);
        info.last_dirty_timestamp = T0 + i;
        r.register(info, Origin::Local);
        clock.advance_millis(10);
    }
    let stats = r.delta_queue_stats();
    assert_eq!(stats.changes, 200);
    assert!(
        stats.bytes < one + 200 * 256,
        "{stats:?} for records of {one} bytes"
    );
    assert!(!stats.incomplete);
}

#[test]
fn metadata_updates_change_the_record_in_place() {
    let (r, _) = registry(Limits::default());
    r.register(instance("a", 0), Origin::Local);
    let before = r.instance("APP", "a").map(|(i, _)| Arc::as_ptr(&i));
    r.update_metadata("APP", "a", entries(1, "k")).unwrap();
    let after = r.instance("APP", "a").map(|(i, _)| Arc::as_ptr(&i));
    // Neither the queue nor anything else held the record: no copy.
    assert_eq!(before, after);
}

#[test]
fn the_queue_stays_within_its_budget_and_the_delta_then_lists_everyone() {
    let one = instance("x", 50).approx_size_bytes();
    let limits = Limits {
        max_delta_queue_bytes: 4 * one,
        ..Limits::default()
    };
    let (r, clock) = registry(limits);
    for i in 0..10 {
        r.register(instance(&format!("i{i}"), 50), Origin::Local);
        clock.advance_millis(1_000);
        assert!(r.delta_queue_stats().bytes <= 4 * one);
    }
    r.cancel("APP", "i0", Origin::Local);
    let stats = r.delta_queue_stats();
    assert!(stats.incomplete && stats.dropped_early > 0, "{stats:?}");
    let delta = r.delta();
    let listed = super::tests::actions(&delta);
    // Every registered instance, and the removal still queued.
    assert_eq!(listed.len(), 10, "{listed:?}");
    assert!(listed.contains(&("i0".to_owned(), Some(ActionType::Deleted))));
    assert_eq!(delta.apps_hashcode, "UP_9_");
    // Once the lost changes would have left the window, the delta is the
    // window's changes again.
    clock.advance_millis(RETENTION + 1);
    assert!(!r.delta_queue_stats().incomplete);
    assert!(r.delta().applications.is_empty());
}

/// What a Eureka client keeps: instances by (app, id).
#[derive(Default)]
struct Client {
    instances: HashMap<(String, String), InstanceInfo>,
    last_fetch: i64,
}

/// The instances of a snapshot by (app, id).
fn by_key(snapshot: &Snapshot) -> HashMap<(String, String), InstanceInfo> {
    snapshot
        .applications
        .iter()
        .flat_map(|(app, l)| {
            l.iter()
                .map(|(i, _)| ((app.to_string(), i.instance_id.clone()), (**i).clone()))
        })
        .collect()
}

impl Client {
    fn full_fetch(&mut self, r: &Registry) {
        self.instances = by_key(&r.snapshot());
    }

    /// Eureka's `DiscoveryClient.getAndUpdateDelta`: apply, then compare
    /// the reconcile hashcode and fetch everything on a mismatch.
    fn fetch_delta(&mut self, r: &Registry) {
        let delta = r.delta();
        for (app, list) in &delta.applications {
            for (info, _) in list {
                let key = (app.to_string(), info.instance_id.clone());
                if info.action_type == Some(ActionType::Deleted) {
                    self.instances.remove(&key);
                } else {
                    self.instances.insert(key, (**info).clone());
                }
            }
        }
        let mut counts = AppsHashcode::default();
        for info in self.instances.values() {
            counts.add(info.status);
        }
        if counts.to_string() != delta.apps_hashcode {
            self.full_fetch(r);
        }
    }

    fn sees_the_registry(&self, r: &Registry) -> bool {
        by_key(&r.snapshot()) == self.instances
    }
}

#[derive(Debug, Clone)]
enum Op {
    Register {
        id: u8,
        metadata: usize,
    },
    Cancel {
        id: u8,
    },
    Status {
        id: u8,
        out_of_service: bool,
    },
    Metadata {
        id: u8,
        key: u8,
    },
    /// The client fetches the delta.
    Fetch,
    Wait {
        millis: i64,
    },
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        (0u8..6, 0usize..40).prop_map(|(id, metadata)| Op::Register { id, metadata }),
        (0u8..6).prop_map(|id| Op::Cancel { id }),
        (0u8..6, any::<bool>()).prop_map(|(id, out_of_service)| Op::Status { id, out_of_service }),
        (0u8..6, 0u8..50).prop_map(|(id, key)| Op::Metadata { id, key }),
        Just(Op::Fetch),
        (0i64..40_000).prop_map(|millis| Op::Wait { millis }),
    ]
}

proptest! {
    /// A client that fetches the delta at least every 30 seconds, as
    /// Eureka clients do, always ends up with the registry, whatever the
    /// budget: the delta is exact, or the hashcode sends it to a full fetch.
    #[test]
    fn a_client_applying_deltas_never_holds_a_wrong_registry(
        ops in prop::collection::vec(op(), 1..80),
        budget_records in 1usize..12,
    ) {
        let limits = Limits {
            max_delta_queue_bytes: budget_records * instance("x", 20).approx_size_bytes(),
            ..Limits::default()
        };
        let (r, clock) = registry(limits);
        let mut client = Client::default();
        client.full_fetch(&r);
        client.last_fetch = r.now_millis();
        for (n, op) in ops.into_iter().enumerate() {
            let id = |i: u8| format!("i{i}");
            match op {
                Op::Register { id: i, metadata } => {
                    let mut info = instance(&id(i), metadata);
                    info.last_dirty_timestamp = r.now_millis() + n as i64;
                    r.register(info, Origin::Local);
                }
                Op::Cancel { id: i } => { r.cancel("APP", &id(i), Origin::Local); }
                Op::Status { id: i, out_of_service: true } => {
                    r.set_status_override("APP", &id(i), InstanceStatus::OutOfService, None, Origin::Local);
                }
                Op::Status { id: i, out_of_service: false } => {
                    r.delete_status_override("APP", &id(i), None, None, Origin::Local);
                }
                Op::Metadata { id: i, key } => {
                    r.update_metadata("APP", &id(i), [(format!("k{key}"), n.to_string())]);
                }
                Op::Fetch => {
                    client.fetch_delta(&r);
                    client.last_fetch = r.now_millis();
                    prop_assert!(client.sees_the_registry(&r));
                }
                Op::Wait { millis } => {
                    // Fetch at least every 30 seconds.
                    let mut left = millis;
                    while left > 0 {
                        let step = left.min(client.last_fetch + 30_000 - r.now_millis()).max(1);
                        clock.advance_millis(step);
                        left -= step;
                        if r.now_millis() - client.last_fetch >= 30_000 {
                            client.fetch_delta(&r);
                            client.last_fetch = r.now_millis();
                            prop_assert!(client.sees_the_registry(&r));
                        }
                    }
                }
            }
            prop_assert!(r.delta_queue_stats().bytes <= limits.max_delta_queue_bytes);
        }
        client.fetch_delta(&r);
        prop_assert!(client.sees_the_registry(&r));
    }
}
