//! Registry core behaviour with an injected clock.

use std::sync::Arc;

use cloud_protocol::eureka::{ActionType, InstanceInfo, InstanceStatus, LeaseInfo};

use super::*;
use cloud_runtime::clock::ManualClock;

const T0: i64 = 1_700_000_000_000;

fn registry(self_preservation: bool) -> (Registry, Arc<ManualClock>) {
    let clock = Arc::new(ManualClock::at_epoch_millis(T0));
    let settings = RegistrySettings {
        self_preservation,
        ..RegistrySettings::default()
    };
    (Registry::new(settings, clock.clone()), clock)
}

fn instance(app: &str, id: &str) -> InstanceInfo {
    InstanceInfo {
        instance_id: id.into(),
        host_name: format!("{id}.local"),
        app: app.into(),
        ip_addr: "10.0.0.1".into(),
        status: InstanceStatus::Up,
        lease_info: Some(LeaseInfo {
            renewal_interval_in_secs: 30,
            duration_in_secs: 90,
            ..LeaseInfo::default()
        }),
        ..InstanceInfo::default()
    }
}

/// The instance ids of a snapshot with their actions, in order.
pub(super) fn actions(snapshot: &Snapshot) -> Vec<(String, Option<ActionType>)> {
    snapshot
        .applications
        .iter()
        .flat_map(|(_, l)| {
            l.iter()
                .map(|(i, _)| (i.instance_id.clone(), i.action_type))
        })
        .collect()
}

fn renew(r: &Registry, app: &str, id: &str) -> bool {
    matches!(
        r.renew(app, id, RenewRequest::default(), Origin::Local),
        RenewOutcome::Renewed(_)
    )
}

fn status_of(r: &Registry, app: &str, id: &str) -> InstanceStatus {
    r.instance(app, id).unwrap().0.status
}

#[test]
fn registration_upper_cases_the_app_and_moves_version_and_hashcode() {
    let (r, _) = registry(true);
    let ev = r.register(instance("orders", "o-1"), Origin::Local);
    assert_eq!(ev.action, EventAction::Register);
    assert_eq!(ev.instance.app, "ORDERS");
    assert_eq!(ev.version, 1);
    assert_eq!(r.version(), 1);
    r.register(instance("ORDERS", "o-2"), Origin::Local);
    let snap = r.snapshot();
    assert_eq!(snap.apps_hashcode, "UP_2_");
    assert_eq!(snap.applications.len(), 1);
    assert_eq!(&*snap.applications[0].0, "ORDERS");
    assert_eq!(snap.applications[0].1.len(), 2);
    let (info, lease) = r.instance("orders", "o-1").unwrap();
    assert_eq!(info.action_type, Some(ActionType::Added));
    assert_eq!(lease.registration_timestamp, T0);
    assert_eq!(lease.service_up_timestamp, T0);
    assert_eq!(
        info.last_dirty_timestamp, T0,
        "a missing lastDirtyTimestamp is set to now"
    );
}

#[test]
fn renewal_keeps_the_lease_and_does_not_move_the_version() {
    let (r, clock) = registry(false);
    r.register(instance("A", "a-1"), Origin::Local);
    let v = r.version();
    clock.advance_millis(60_000);
    assert!(renew(&r, "a", "a-1"));
    assert_eq!(r.version(), v);
    assert_eq!(
        r.instance("A", "a-1").unwrap().1.last_renewal_timestamp,
        T0 + 60_000
    );
    assert_eq!(r.renews_last_min(), 1);
    clock.advance_millis(89_000);
    assert!(r.evict().is_empty());
}

#[test]
fn renewing_an_unknown_lease_is_not_found() {
    let (r, _) = registry(true);
    assert!(matches!(
        r.renew("A", "nope", RenewRequest::default(), Origin::Local),
        RenewOutcome::NotFound
    ));
}

#[test]
fn a_lease_expires_after_its_duration_not_twice_it() {
    let (r, clock) = registry(false);
    let mut short = instance("A", "a-1");
    short.lease_info = Some(LeaseInfo {
        renewal_interval_in_secs: 5,
        duration_in_secs: 15,
        ..LeaseInfo::default()
    });
    r.register(short, Origin::Local);
    clock.advance_millis(15_000);
    assert!(r.evict().is_empty(), "still valid at exactly its duration");
    clock.advance_millis(1);
    let evicted = r.evict();
    assert_eq!(evicted.len(), 1);
    assert_eq!(evicted[0].action, EventAction::Evict);
    assert_eq!(evicted[0].instance.action_type, Some(ActionType::Deleted));
    assert!(r.instance("A", "a-1").is_none());
    assert_eq!(
        r.counts().applications,
        0,
        "an application without instances disappears"
    );
}

#[test]
fn eviction_removes_at_most_the_share_above_the_threshold_per_run() {
    let (r, clock) = registry(false);
    for i in 0..20 {
        r.register(instance("A", &format!("a-{i}")), Origin::Local);
    }
    clock.advance_millis(91_000);
    assert_eq!(r.evict().len(), 3, "20 - floor(20 * 0.85)");
    assert_eq!(r.counts().instances, 17);
    assert_eq!(r.evict().len(), 3, "17 - floor(17 * 0.85)");
    assert_eq!(r.counts().instances, 14);
}

#[test]
fn self_preservation_holds_expired_leases_when_renewals_drop_below_threshold() {
    let (r, clock) = registry(true);
    for i in 0..10 {
        r.register(instance("A", &format!("a-{i}")), Origin::Local);
    }
    // Everyone stops renewing (a partition): nothing is evicted.
    clock.advance_millis(120_000);
    let state = r.preservation();
    assert_eq!(state.expected_renews_per_min, 20.0);
    assert_eq!(state.renews_threshold, 17);
    assert!(state.is_active());
    assert!(r.evict().is_empty());
    assert_eq!(r.counts().instances, 10);
}

#[test]
fn an_empty_registry_is_not_reported_as_preserving() {
    let (r, _) = registry(true);
    assert!(!r.preservation().is_active());
    r.register(instance("A", "a-1"), Origin::Local);
    r.cancel("A", "a-1", Origin::Local);
    assert!(!r.preservation().is_active());
}

#[test]
fn fresh_registrations_are_expected_to_renew_only_for_the_time_they_have_lived() {
    let (r, clock) = registry(true);
    for i in 0..10 {
        r.register(instance("A", &format!("a-{i}")), Origin::Local);
    }
    // Just registered: no renewal is due yet, so nothing is missing
    // (Eureka would expect 20 a minute at once and report preservation).
    clock.advance_millis(1_000);
    let state = r.preservation();
    assert_eq!(state.expected_renews_per_min, 0.0);
    assert!(!state.is_active());
    // 31 s in, one renewal each is due; all arrived.
    clock.advance_millis(30_000);
    for i in 0..10 {
        assert!(renew(&r, "A", &format!("a-{i}")));
    }
    let state = r.preservation();
    assert_eq!(state.expected_renews_per_min, 10.0);
    assert!(!state.is_active());
    // A minute in, the full rate is expected; without the second round of
    // renewals the registry preserves, as Eureka's rule says.
    clock.advance_millis(30_000);
    let state = r.preservation();
    assert_eq!(state.expected_renews_per_min, 20.0);
    assert!(state.is_active());
}

#[test]
fn a_young_instance_beside_dead_old_ones_does_not_unlock_evictions() {
    let (r, clock) = registry(true);
    for i in 0..10 {
        r.register(instance("A", &format!("a-{i}")), Origin::Local);
    }
    // The old ten go silent (a partition); one newcomer registers.
    clock.advance_millis(120_000);
    r.register(instance("A", "new"), Origin::Local);
    clock.advance_millis(1_000);
    let state = r.preservation();
    assert_eq!(state.expected_renews_per_min, 20.0);
    assert!(state.is_active());
    assert!(r.evict().is_empty());
}

#[test]
fn self_preservation_off_evicts_expired_leases() {
    let (r, clock) = registry(false);
    for i in 0..10 {
        r.register(instance("A", &format!("a-{i}")), Origin::Local);
    }
    clock.advance_millis(120_000);
    assert!(!r.preservation().is_active());
    assert_eq!(r.evict().len(), 2, "10 - floor(8.5)");
}

/// Renews every live instance every 30 s for `minutes`.
fn heartbeat(r: &Registry, clock: &ManualClock, live: &[String], minutes: i64) {
    for _ in 0..(2 * minutes) {
        clock.advance_millis(30_000);
        for id in live {
            assert!(renew(r, "A", id));
        }
        r.evict();
    }
}

#[test]
fn self_preservation_is_recomputed_on_eviction_so_it_never_sticks() {
    let (r, clock) = registry(true);
    let mut live: Vec<String> = (0..20).map(|i| format!("a-{i}")).collect();
    for id in &live {
        r.register(instance("A", id), Origin::Local);
    }
    heartbeat(&r, &clock, &live, 2);
    // One instance dies: 38 renewals a minute is above 34, it is evicted.
    live.pop();
    heartbeat(&r, &clock, &live, 3);
    assert_eq!(r.counts().instances, 19);
    // Two more die: 34 a minute. With the expected rate recomputed after the
    // eviction (threshold 32) they go; Eureka's stale 40 (threshold 34)
    // would hold them forever.
    live.truncate(17);
    heartbeat(&r, &clock, &live, 3);
    assert_eq!(r.counts().instances, 17);
    assert!(!r.preservation().is_active());
}

#[test]
fn cancel_removes_and_recomputes_expected_renewals() {
    let (r, clock) = registry(true);
    r.register(instance("A", "a-1"), Origin::Local);
    r.register(instance("A", "a-2"), Origin::Local);
    // Past their first minute, both count at their full rate.
    clock.advance_millis(60_000);
    assert_eq!(r.preservation().expected_renews_per_min, 4.0);
    let ev = r.cancel("a", "a-1", Origin::Local).unwrap();
    assert_eq!(ev.action, EventAction::Cancel);
    assert_eq!(r.preservation().expected_renews_per_min, 2.0);
    assert!(r.cancel("a", "a-1", Origin::Local).is_none());
}

#[test]
fn out_of_service_override_survives_renewals_until_deleted() {
    let (r, _) = registry(true);
    r.register(instance("A", "a-1"), Origin::Local);
    let ev = r
        .set_status_override(
            "A",
            "a-1",
            InstanceStatus::OutOfService,
            None,
            Origin::Local,
        )
        .unwrap();
    assert_eq!(ev.instance.overridden_status, InstanceStatus::OutOfService);
    assert_eq!(status_of(&r, "A", "a-1"), InstanceStatus::OutOfService);
    let up = RenewRequest {
        status: Some(InstanceStatus::Up),
        ..RenewRequest::default()
    };
    assert!(matches!(
        r.renew("A", "a-1", up, Origin::Local),
        RenewOutcome::Renewed(_)
    ));
    assert_eq!(status_of(&r, "A", "a-1"), InstanceStatus::OutOfService);
    // A re-registration keeps the override too.
    r.register(instance("A", "a-1"), Origin::Local);
    assert_eq!(status_of(&r, "A", "a-1"), InstanceStatus::OutOfService);
    r.delete_status_override("A", "a-1", None, None, Origin::Local)
        .unwrap();
    let (info, _) = r.instance("A", "a-1").unwrap();
    assert_eq!(info.status, InstanceStatus::Up);
    assert_eq!(info.overridden_status, InstanceStatus::Unknown);
    assert!(
        r.set_status_override("A", "zz", InstanceStatus::Down, None, Origin::Local)
            .is_none()
    );
}

#[test]
fn a_client_reporting_down_on_renewal_is_believed_over_an_override() {
    let (r, _) = registry(true);
    r.register(instance("A", "a-1"), Origin::Local);
    r.set_status_override(
        "A",
        "a-1",
        InstanceStatus::OutOfService,
        None,
        Origin::Local,
    );
    let v = r.version();
    let down = RenewRequest {
        status: Some(InstanceStatus::Down),
        ..RenewRequest::default()
    };
    assert!(matches!(
        r.renew("A", "a-1", down, Origin::Local),
        RenewOutcome::Renewed(_)
    ));
    assert_eq!(status_of(&r, "A", "a-1"), InstanceStatus::Down);
    assert_eq!(r.version(), v + 1, "a status change moves the version");
    assert_eq!(r.snapshot().apps_hashcode, "DOWN_1_");
}

#[test]
fn registration_with_an_overridden_status_stores_the_override() {
    let (r, _) = registry(true);
    let mut i = instance("A", "a-1");
    i.overridden_status = InstanceStatus::OutOfService;
    r.register(i, Origin::Replicated);
    assert_eq!(status_of(&r, "A", "a-1"), InstanceStatus::OutOfService);
}

#[test]
fn renewal_compares_last_dirty_timestamps_as_eureka_does() {
    let (r, _) = registry(true);
    let mut i = instance("A", "a-1");
    i.last_dirty_timestamp = 1000;
    r.register(i, Origin::Local);
    let with = |ts| RenewRequest {
        last_dirty_timestamp: Some(ts),
        ..RenewRequest::default()
    };
    assert!(
        matches!(
            r.renew("A", "a-1", with(2000), Origin::Local),
            RenewOutcome::NotFound
        ),
        "client newer: re-register"
    );
    assert!(
        matches!(
            r.renew("A", "a-1", with(500), Origin::Replicated),
            RenewOutcome::Conflict(_)
        ),
        "peer older: 409"
    );
    assert!(matches!(
        r.renew("A", "a-1", with(500), Origin::Local),
        RenewOutcome::Renewed(_)
    ));
    assert!(matches!(
        r.renew("A", "a-1", with(1000), Origin::Local),
        RenewOutcome::Renewed(_)
    ));
}

#[test]
fn a_registration_older_than_the_record_keeps_the_record() {
    let (r, _) = registry(true);
    let mut newer = instance("A", "a-1");
    newer.last_dirty_timestamp = 2000;
    newer.metadata.insert("v".into(), "2".into());
    r.register(newer, Origin::Local);
    let mut older = instance("A", "a-1");
    older.last_dirty_timestamp = 1000;
    r.register(older, Origin::Replicated);
    let (info, _) = r.instance("A", "a-1").unwrap();
    assert_eq!(info.metadata.get("v"), Some("2"));
    assert_eq!(r.counts().instances, 1);
}

#[test]
fn delta_holds_three_minutes_of_changes_with_actions_and_the_full_hashcode() {
    let (r, clock) = registry(true);
    r.register(instance("A", "a-1"), Origin::Local);
    r.register(instance("B", "b-1"), Origin::Local);
    clock.advance_millis(1_000);
    r.cancel("A", "a-1", Origin::Local);
    r.update_metadata("B", "b-1", [("zone".to_owned(), "z1".to_owned())])
        .unwrap();
    let delta = r.delta();
    assert_eq!(delta.apps_hashcode, "UP_1_");
    assert_eq!(delta.version, r.version());
    assert_eq!(
        actions(&delta),
        vec![
            ("a-1".to_owned(), Some(ActionType::Deleted)),
            ("b-1".to_owned(), Some(ActionType::Modified))
        ]
    );
    clock.advance_millis(179_000);
    assert_eq!(r.delta().applications.len(), 2, "still inside the window");
    clock.advance_millis(1_001);
    assert!(
        r.delta().applications.is_empty(),
        "older than three minutes"
    );
    assert_eq!(r.delta().apps_hashcode, "UP_1_");
}

#[test]
fn vip_lookup_matches_any_listed_address_case_insensitively() {
    let (r, _) = registry(true);
    let mut a = instance("A", "a-1");
    a.vip_address = Some("orders,orders-v2".into());
    a.secure_vip_address = Some("secure-orders".into());
    r.register(a, Origin::Local);
    r.register(instance("B", "b-1"), Origin::Local);
    assert_eq!(r.by_vip("ORDERS-V2", false).applications.len(), 1);
    assert_eq!(r.by_vip("secure-orders", true).applications.len(), 1);
    assert!(r.by_vip("secure-orders", false).applications.is_empty());
    assert!(r.instance_by_id("b-1").is_some());
    assert!(r.application("b").is_some());
    assert!(r.application("c").is_none());
}
