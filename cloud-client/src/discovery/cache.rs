//! The local registry cache, pure: a full listing, deltas applied on top,
//! Eureka's reconcile hashcode to check a delta left the same registry as
//! the server's, and snapshots that keep unchanged applications' `Arc`s so
//! subscribers can tell what changed by pointer.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use cloud_protocol::eureka::{ActionType, Applications, AppsHashcode, InstanceInfo};

use super::instance::ServiceInstance;

/// What applying a delta did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DeltaOutcome {
    /// The delta applied and the hashcodes agree.
    Applied,
    /// After the delta the local hashcode differs from the server's: the
    /// cache must be replaced by a full fetch (Eureka's reconciliation).
    HashcodeMismatch {
        /// The hashcode of the local registry after the delta.
        local: String,
        /// The hashcode the server sent with the delta.
        server: String,
    },
}

/// All instances by upper-case application name, then by instance id.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RegistryCache {
    apps: BTreeMap<String, BTreeMap<String, InstanceInfo>>,
    filled: bool,
}

impl RegistryCache {
    /// An empty cache that has never seen a full listing.
    pub fn new() -> Self {
        Self::default()
    }

    /// Whether a full listing has been applied (a delta needs one first).
    pub fn is_filled(&self) -> bool {
        self.filled
    }

    /// Replaces everything with a full listing.
    pub fn apply_full(&mut self, apps: &Applications) {
        self.apps.clear();
        for instance in apps.instances() {
            self.upsert(instance.clone());
        }
        self.filled = true;
    }

    /// Applies a delta: `ADDED` and `MODIFIED` replace the instance,
    /// `DELETED` removes it; then compares hashcodes. An instance without an
    /// action type counts as modified, as Eureka's client does.
    pub fn apply_delta(&mut self, delta: &Applications) -> DeltaOutcome {
        for instance in delta.instances() {
            match instance.action_type {
                Some(ActionType::Deleted) => {
                    let key = instance.app.to_ascii_uppercase();
                    if let Some(app) = self.apps.get_mut(&key) {
                        app.remove(&instance.instance_id);
                        if app.is_empty() {
                            self.apps.remove(&key);
                        }
                    }
                }
                _ => self.upsert(instance.clone()),
            }
        }
        let local = self.hashcode();
        if local == delta.apps_hashcode {
            DeltaOutcome::Applied
        } else {
            DeltaOutcome::HashcodeMismatch {
                local,
                server: delta.apps_hashcode.clone(),
            }
        }
    }

    /// Eureka's reconcile hashcode of the cache (`DOWN_1_UP_5_`).
    pub fn hashcode(&self) -> String {
        let mut counts = AppsHashcode::default();
        for instance in self.apps.values().flat_map(BTreeMap::values) {
            counts.add(instance.status);
        }
        counts.to_string()
    }

    /// Number of instances held.
    pub fn len(&self) -> usize {
        self.apps.values().map(BTreeMap::len).sum()
    }

    /// Whether no instance is held.
    pub fn is_empty(&self) -> bool {
        self.apps.is_empty()
    }

    fn upsert(&mut self, instance: InstanceInfo) {
        self.apps
            .entry(instance.app.to_ascii_uppercase())
            .or_default()
            .insert(instance.instance_id.clone(), instance);
    }

    /// A snapshot for readers. Applications whose instances equal those in
    /// `previous` keep `previous`'s `Arc`.
    pub fn snapshot(&self, previous: &RegistrySnapshot) -> RegistrySnapshot {
        let mut apps = HashMap::with_capacity(self.apps.len());
        for (name, instances) in &self.apps {
            let fresh: Vec<ServiceInstance> =
                instances.values().map(ServiceInstance::from_info).collect();
            let list = match previous.apps.get(name) {
                Some(old) if old.as_ref() == fresh.as_slice() => Arc::clone(old),
                _ => Arc::from(fresh),
            };
            apps.insert(name.clone(), list);
        }
        RegistrySnapshot {
            apps,
            generation: previous.generation + 1,
        }
    }
}

/// An immutable view of the registry that lookups read without a lock.
#[derive(Debug, Clone, Default)]
pub struct RegistrySnapshot {
    apps: HashMap<String, Arc<[ServiceInstance]>>,
    generation: u64,
}

impl RegistrySnapshot {
    /// Every instance of `app` (any case), whatever its status, sorted by
    /// instance id; empty when unknown.
    pub fn application(&self, app: &str) -> Arc<[ServiceInstance]> {
        self.find(app)
            .cloned()
            .unwrap_or_else(|| Arc::from(Vec::new()))
    }

    /// The instances of `app` (any case), `None` when unknown. Looked up
    /// without allocating for names up to 64 bytes (the HTTP client does
    /// this on every call with `lb://users/...`: keys are upper case).
    pub(crate) fn find(&self, app: &str) -> Option<&Arc<[ServiceInstance]>> {
        if let Some(list) = self.apps.get(app) {
            return Some(list);
        }
        let mut buf = [0u8; 64];
        match buf.get_mut(..app.len()) {
            Some(upper) => {
                upper.copy_from_slice(app.as_bytes());
                upper.make_ascii_uppercase();
                // Upper-casing ASCII bytes keeps UTF-8 valid.
                let key = std::str::from_utf8(upper).ok()?;
                self.apps.get(key)
            }
            None => self.apps.get(&app.to_ascii_uppercase()),
        }
    }

    /// Instances whose VIP address (or secure VIP address) is `vip`.
    pub fn by_vip(&self, vip: &str) -> Vec<ServiceInstance> {
        let mut out: Vec<ServiceInstance> = self
            .apps
            .values()
            .flat_map(|l| l.iter())
            .filter(|i| i.has_vip(vip))
            .cloned()
            .collect();
        out.sort_by(|a, b| a.instance_id.cmp(&b.instance_id));
        out
    }

    /// Upper-case names of the applications held.
    pub fn application_names(&self) -> impl Iterator<Item = &str> {
        self.apps.keys().map(String::as_str)
    }

    /// Counts snapshots published since the client started (0: none yet).
    pub fn generation(&self) -> u64 {
        self.generation
    }

    /// Total instances.
    pub fn len(&self) -> usize {
        self.apps.values().map(|l| l.len()).sum()
    }

    /// Whether no instance is known.
    pub fn is_empty(&self) -> bool {
        self.apps.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use cloud_protocol::eureka::{Application, InstanceStatus, PortWrapper};

    fn info(app: &str, id: &str, status: InstanceStatus) -> InstanceInfo {
        InstanceInfo {
            instance_id: id.into(),
            host_name: format!("{id}.local"),
            app: app.into(),
            ip_addr: "10.0.0.1".into(),
            status,
            port: PortWrapper::enabled(8080),
            vip_address: Some(app.to_lowercase()),
            ..InstanceInfo::default()
        }
    }

    fn listing(instances: Vec<InstanceInfo>, hashcode: &str) -> Applications {
        let mut apps: Vec<Application> = Vec::new();
        for i in instances {
            match apps.iter_mut().find(|a| a.name == i.app) {
                Some(a) => a.instances.push(i),
                None => apps.push(Application {
                    name: i.app.clone(),
                    instances: vec![i],
                }),
            }
        }
        Applications {
            version_delta: 1,
            apps_hashcode: hashcode.into(),
            applications: apps,
        }
    }

    fn with_action(mut i: InstanceInfo, a: ActionType) -> InstanceInfo {
        i.action_type = Some(a);
        i
    }

    #[test]
    fn a_delta_adds_modifies_and_deletes_and_matching_hashcodes_are_accepted() {
        let mut cache = RegistryCache::new();
        cache.apply_full(&listing(
            vec![
                info("A", "a1", InstanceStatus::Up),
                info("A", "a2", InstanceStatus::Up),
                info("B", "b1", InstanceStatus::Up),
            ],
            "UP_3_",
        ));
        let delta = listing(
            vec![
                with_action(info("A", "a3", InstanceStatus::Up), ActionType::Added),
                with_action(info("A", "a1", InstanceStatus::Down), ActionType::Modified),
                with_action(info("B", "b1", InstanceStatus::Up), ActionType::Deleted),
            ],
            "DOWN_1_UP_2_",
        );
        assert_eq!(cache.apply_delta(&delta), DeltaOutcome::Applied);
        assert_eq!(cache.len(), 3);
        let snap = cache.snapshot(&RegistrySnapshot::default());
        assert!(snap.application("b").is_empty(), "B's last instance left");
        let a = snap.application("a");
        let statuses: Vec<_> = a
            .iter()
            .map(|i| (i.instance_id.as_str(), i.status))
            .collect();
        assert_eq!(
            statuses,
            [
                ("a1", InstanceStatus::Down),
                ("a2", InstanceStatus::Up),
                ("a3", InstanceStatus::Up)
            ]
        );
    }

    #[test]
    fn a_missed_delta_shows_as_a_hashcode_mismatch() {
        let mut cache = RegistryCache::new();
        cache.apply_full(&listing(vec![info("A", "a1", InstanceStatus::Up)], "UP_1_"));
        // The server holds two instances, but this delta only tells of a change to a1.
        let delta = listing(
            vec![with_action(
                info("A", "a1", InstanceStatus::Up),
                ActionType::Modified,
            )],
            "UP_2_",
        );
        assert_eq!(
            cache.apply_delta(&delta),
            DeltaOutcome::HashcodeMismatch {
                local: "UP_1_".into(),
                server: "UP_2_".into()
            }
        );
    }

    #[test]
    fn snapshots_keep_the_arc_of_unchanged_applications() {
        let mut cache = RegistryCache::new();
        cache.apply_full(&listing(
            vec![
                info("A", "a1", InstanceStatus::Up),
                info("B", "b1", InstanceStatus::Up),
            ],
            "UP_2_",
        ));
        let first = cache.snapshot(&RegistrySnapshot::default());
        cache.apply_delta(&listing(
            vec![with_action(
                info("B", "b2", InstanceStatus::Up),
                ActionType::Added,
            )],
            "UP_3_",
        ));
        let second = cache.snapshot(&first);
        assert!(Arc::ptr_eq(
            &first.application("A"),
            &second.application("A")
        ));
        assert!(!Arc::ptr_eq(
            &first.application("B"),
            &second.application("B")
        ));
        assert_eq!(second.generation(), first.generation() + 1);
    }

    #[test]
    fn vip_lookup_matches_either_vip_field() {
        let mut cache = RegistryCache::new();
        let mut s = info("S", "s1", InstanceStatus::Up);
        s.vip_address = None;
        s.secure_vip_address = Some("secure-s".into());
        cache.apply_full(&listing(
            vec![info("A", "a1", InstanceStatus::Up), s],
            "UP_2_",
        ));
        let snap = cache.snapshot(&RegistrySnapshot::default());
        assert_eq!(snap.by_vip("a").len(), 1);
        assert_eq!(snap.by_vip("secure-s")[0].instance_id, "s1");
        assert!(snap.by_vip("none").is_empty());
    }

    #[test]
    fn applications_are_found_in_any_case_and_any_length() {
        let long = "L".repeat(80);
        let mut cache = RegistryCache::new();
        cache.apply_full(&listing(
            vec![
                info("USER-SERVICE", "u1", InstanceStatus::Up),
                info(&long, "l1", InstanceStatus::Up),
            ],
            "UP_2_",
        ));
        let snap = cache.snapshot(&RegistrySnapshot::default());
        for name in ["USER-SERVICE", "user-service", "User-Service"] {
            assert_eq!(snap.find(name).map(|l| l.len()), Some(1), "{name}");
            assert_eq!(snap.application(name).len(), 1, "{name}");
        }
        assert_eq!(snap.find(&long.to_lowercase()).map(|l| l.len()), Some(1));
        assert!(snap.find("nobody").is_none());
        assert!(snap.find("ü").is_none());
        assert!(snap.application("nobody").is_empty());
    }
}
