//! The registry core: instances and their leases, renew, cancel, eviction
//! with Eureka's limits, self-preservation, status overrides, the
//! recently-changed queue behind `/apps/delta` (bounded in bytes, see
//! `changes`), the apps hashcode and a version that moves on every change.
//! Metadata per instance is held within the [`Limits`].
//!
//! Pure: no I/O and no tasks; time comes from an injected
//! [`Clock`](cloud_runtime::clock::Clock). Every
//! mutation returns the [`RegistryEvent`] it caused so the caller can
//! replicate it, count it and wake watchers.
//!
//! Concurrency: one `RwLock` over the maps with short critical sections.
//! A renewal takes the read lock and stores two atomics: no allocation,
//! no writer blocked for long. Serialization works on a [`Snapshot`] taken
//! under the read lock and written after it is released.

mod changes;
mod event;
mod lease;
mod rate;
mod rules;

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use arc_swap::ArcSwap;
use cloud_protocol::eureka::{
    ActionType, AppsHashcode, InstanceInfo, InstanceStatus, LeaseInfo, Metadata,
};
use parking_lot::RwLock;
use rand::seq::SliceRandom;

pub use changes::DeltaQueueStats;
pub use event::{EventAction, Origin, RegistryEvent};
pub use rules::effective_status;

use crate::limits::{Limits, MetadataTooLarge};
use changes::ChangeQueue;
use cloud_runtime::clock::SharedClock;
use lease::Lease;
use rate::MinuteRate;

/// Registry behaviour settings (the `eureka.server.*` and
/// `eureka.instance.*` settings that the core uses).
#[derive(Debug, Clone, PartialEq)]
pub struct RegistrySettings {
    /// Self-preservation on or off. Default is on.
    pub self_preservation: bool,
    /// Fraction of expected renewals below which self-preservation stops
    /// evictions, and the share of the registry kept per eviction run.
    /// Default is 0.85.
    pub renewal_percent_threshold: f64,
    /// Lease renewal interval for registrations that name none. Default is
    /// 30 seconds.
    pub default_renewal_interval_secs: u32,
    /// Lease duration for registrations that name none. Default is 90 seconds.
    pub default_duration_secs: u32,
    /// How long a change stays in the delta. Default is 3 minutes.
    pub delta_retention_millis: i64,
}

impl Default for RegistrySettings {
    fn default() -> Self {
        RegistrySettings {
            self_preservation: true,
            renewal_percent_threshold: 0.85,
            default_renewal_interval_secs: 30,
            default_duration_secs: 90,
            delta_retention_millis: 180_000,
        }
    }
}

/// Options a renewal carries (`PUT /apps/{app}/{id}?status=&lastDirtyTimestamp=&overriddenstatus=`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RenewRequest {
    /// The status the client reports.
    pub status: Option<InstanceStatus>,
    /// The override the sender knows of (replication).
    pub overridden_status: Option<InstanceStatus>,
    /// The client's last dirty timestamp.
    pub last_dirty_timestamp: Option<i64>,
}

/// The answer to a renewal.
#[derive(Debug, Clone)]
pub enum RenewOutcome {
    /// Renewed (`200`).
    Renewed(RegistryEvent),
    /// Unknown lease, or the client holds a newer record (`404`: re-register).
    NotFound,
    /// Renewed, but this node holds a newer record than the replicating
    /// peer (`409` with the instance).
    Conflict(RegistryEvent),
}

/// An instance with its current lease.
pub type LeasedInstance = (Arc<InstanceInfo>, LeaseInfo);

/// A read-only copy of (part of) the registry, for writing responses.
#[derive(Debug, Clone, Default)]
pub struct Snapshot {
    /// Registry version the snapshot was taken at.
    pub version: u64,
    /// Reconcile hashcode of the whole registry at that version.
    pub apps_hashcode: String,
    /// Applications by name, each with its instances and their leases.
    pub applications: Vec<(Arc<str>, Vec<LeasedInstance>)>,
}

/// Self-preservation figures, as the dashboard and health report them.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PreservationState {
    /// Whether self-preservation is configured on.
    pub enabled: bool,
    /// Renewals per minute expected from the registered instances.
    pub expected_renews_per_min: f64,
    /// Renewals needed in the last minute to allow evictions.
    pub renews_threshold: u64,
    /// Renewals received in the last minute.
    pub renews_last_min: u64,
    /// Whether expired leases may be evicted now (false: self-preservation
    /// is holding them).
    pub lease_expiration_enabled: bool,
}

impl PreservationState {
    /// True when self-preservation currently prevents evictions.
    pub fn is_active(&self) -> bool {
        self.enabled && !self.lease_expiration_enabled
    }
}

/// Counts of the registry.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RegistryCounts {
    /// Registered applications.
    pub applications: usize,
    /// Registered instances.
    pub instances: usize,
    /// Instances per status.
    pub by_status: AppsHashcode,
}

struct Entry {
    info: Arc<InstanceInfo>,
    /// The status the client itself reports (Eureka folds it into `status`).
    reported: InstanceStatus,
    lease: Lease,
}

impl Entry {
    /// Shows `status` (with `overridden` as its override field), as a status
    /// update or an override removal does; returns the status it replaces.
    fn change_status(
        &mut self,
        now: i64,
        status: InstanceStatus,
        overridden: InstanceStatus,
        last_dirty_timestamp: Option<i64>,
    ) -> InstanceStatus {
        let old_status = self.info.status;
        let info = Arc::make_mut(&mut self.info);
        info.overridden_status = overridden;
        info.status = status;
        if let Some(ts) = last_dirty_timestamp.filter(|ts| *ts > info.last_dirty_timestamp) {
            info.last_dirty_timestamp = ts;
        }
        info.action_type = Some(ActionType::Modified);
        info.last_updated_timestamp = now;
        if status == InstanceStatus::Up {
            self.lease.mark_up(now);
        }
        old_status
    }
}

/// Applications by upper-case name, each with its entries by instance id.
type Apps = BTreeMap<Arc<str>, HashMap<Arc<str>, Entry>>;

#[derive(Default)]
struct Inner {
    apps: Apps,
    overrides: HashMap<Arc<str>, InstanceStatus>,
    changes: ChangeQueue,
    counts: AppsHashcode,
    instances: usize,
    /// Sum over instances of 60 000 / renewal interval: expected renewals
    /// per minute, in thousandths.
    expected_renews_milli: u64,
}

/// The registry.
pub struct Registry {
    clock: SharedClock,
    settings: RegistrySettings,
    limits: ArcSwap<Limits>,
    inner: RwLock<Inner>,
    version: AtomicU64,
    renews: MinuteRate,
}

impl std::fmt::Debug for Registry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Registry")
            .field("version", &self.version())
            .field("settings", &self.settings)
            .finish()
    }
}

/// True when `status` is only the override showing through (a replicated
/// record or heartbeat), so it says nothing about what the client reports.
fn masked_by_override(status: InstanceStatus, overridden: Option<InstanceStatus>) -> bool {
    overridden.is_some_and(|o| o != InstanceStatus::Unknown && o == status)
}

/// The entry of instance `id` in application `app` (an upper-case key).
fn entry<'a>(apps: &'a Apps, app: &str, id: &str) -> Option<&'a Entry> {
    apps.get(app).and_then(|m| m.get(id))
}

/// The entry of instance `id` in application `app` (an upper-case key).
fn entry_mut<'a>(apps: &'a mut Apps, app: &str, id: &str) -> Option<&'a mut Entry> {
    apps.get_mut(app).and_then(|m| m.get_mut(id))
}

/// Upper-cases an application name, borrowing when it already is.
pub fn app_key(app: &str) -> std::borrow::Cow<'_, str> {
    if app.bytes().any(|b| b.is_ascii_lowercase()) {
        std::borrow::Cow::Owned(app.to_ascii_uppercase())
    } else {
        std::borrow::Cow::Borrowed(app)
    }
}

impl Registry {
    /// An empty registry.
    pub fn new(settings: RegistrySettings, clock: SharedClock) -> Registry {
        Registry {
            clock,
            settings,
            limits: ArcSwap::from_pointee(Limits::default()),
            inner: RwLock::new(Inner::default()),
            version: AtomicU64::new(0),
            renews: MinuteRate::new(),
        }
    }

    /// The settings in force.
    pub fn settings(&self) -> &RegistrySettings {
        &self.settings
    }

    /// The limits in force ([`Limits::default`] until
    /// [`set_limits`](Self::set_limits)).
    pub fn limits(&self) -> Limits {
        **self.limits.load()
    }

    /// Replaces the limits; takes effect for the next request. The server
    /// sets them once at start; they may also be changed while it runs.
    pub fn set_limits(&self, limits: Limits) {
        self.limits.store(Arc::new(limits));
    }

    /// Figures of the recently-changed queue behind `/apps/delta`.
    pub fn delta_queue_stats(&self) -> DeltaQueueStats {
        let now = self.clock.epoch_millis();
        self.inner.read().changes.stats(now)
    }

    /// Current time by the registry's clock.
    pub fn now_millis(&self) -> i64 {
        self.clock.epoch_millis()
    }

    /// The registry version: moves on every change that `/apps` shows
    /// (not on renewals).
    pub fn version(&self) -> u64 {
        self.version.load(Ordering::Acquire)
    }

    fn bump(
        &self,
        inner: &mut Inner,
        at: i64,
        instance: &Arc<InstanceInfo>,
        lease: LeaseInfo,
    ) -> u64 {
        self.purge_changes(inner, at);
        let max_bytes = self.limits.load().max_delta_queue_bytes;
        let retention = self.settings.delta_retention_millis;
        inner
            .changes
            .push(at, instance, lease, retention, max_bytes);
        self.version.fetch_add(1, Ordering::AcqRel) + 1
    }

    /// Moves an instance from `old_status` to its new status in the counts
    /// and records the change; returns the new version.
    fn record_status_change(
        &self,
        inner: &mut Inner,
        now: i64,
        old_status: InstanceStatus,
        instance: &Arc<InstanceInfo>,
        lease: LeaseInfo,
    ) -> u64 {
        inner.counts.remove(old_status);
        inner.counts.add(instance.status);
        self.bump(inner, now, instance, lease)
    }

    fn purge_changes(&self, inner: &mut Inner, now: i64) {
        inner
            .changes
            .purge(now - self.settings.delta_retention_millis);
    }

    /// Renewals a minute a lease expects, in thousandths.
    fn lease_interval_milli(lease: &LeaseInfo) -> u64 {
        60_000 / u64::from(lease.renewal_interval_in_secs.max(1))
    }

    fn interval_secs(info: &InstanceInfo, settings: &RegistrySettings) -> u64 {
        let secs = info
            .lease_info
            .map_or(settings.default_renewal_interval_secs, |l| {
                l.renewal_interval_in_secs
            })
            .max(1);
        u64::from(secs)
    }

    /// Renewals a minute the instance is expected to send, in thousandths.
    fn interval_milli(info: &InstanceInfo, settings: &RegistrySettings) -> u64 {
        60_000 / Self::interval_secs(info, settings)
    }

    /// Renewals that instances registered less than a minute ago could not
    /// have sent yet, in thousandths: a young instance is expected to have
    /// renewed once per interval it has lived, not at its full rate. Found
    /// from the registrations in the change queue, each counted only while
    /// that registration is still the instance's lease.
    fn unearned_renews_milli(&self, inner: &Inner, now: i64) -> u64 {
        let window_start = now - rate::WINDOW_MILLIS;
        inner
            .changes
            .iter()
            .rev()
            .take_while(|c| c.at > window_start)
            .filter(|c| c.lease.registration_timestamp == c.at)
            .filter(|c| {
                entry(&inner.apps, &c.app, &c.id).is_some_and(|e| e.lease.registration() == c.at)
            })
            .map(|c| {
                let secs = u64::from(c.lease.renewal_interval_in_secs.max(1));
                let age_millis = u64::try_from(now - c.at).unwrap_or(0);
                let earned = age_millis / (secs * 1000) * 1000;
                Self::lease_interval_milli(&c.lease).saturating_sub(earned)
            })
            .sum()
    }

    /// Registers (or re-registers) an instance. The app name is upper-cased;
    /// `info` must have passed [`InstanceInfo::validate`].
    pub fn register(&self, mut info: InstanceInfo, origin: Origin) -> RegistryEvent {
        let now = self.clock.epoch_millis();
        info.app = app_key(&info.app).into_owned();
        if info.last_dirty_timestamp == 0 {
            info.last_dirty_timestamp = now;
        }
        let mut inner = self.inner.write();
        let inner = &mut *inner;
        let app: Arc<str> = match inner.apps.get_key_value(info.app.as_str()) {
            Some((k, _)) => Arc::clone(k),
            None => Arc::from(info.app.as_str()),
        };
        let existing = inner
            .apps
            .get(&app)
            .and_then(|m| m.get(info.instance_id.as_str()));
        let mut service_up = 0;
        let mut existing_status = None;
        let mut reported = info.status;
        if let Some(old) = existing {
            service_up = old.lease.info().service_up_timestamp;
            if origin != Origin::Replicated {
                existing_status = Some(old.info.status);
            }
            if old.info.last_dirty_timestamp > info.last_dirty_timestamp {
                // Eureka keeps the newer record it already has.
                info = (*old.info).clone();
                reported = old.reported;
            } else if origin == Origin::Replicated
                && masked_by_override(info.status, Some(info.overridden_status))
            {
                // A peer's copy shows the override, not what the client
                // reports: keep the reported status we know.
                reported = old.reported;
            }
        }
        let id: Arc<str> = match inner.overrides.get_key_value(info.instance_id.as_str()) {
            Some((k, _)) => Arc::clone(k),
            None => match inner
                .apps
                .get(&app)
                .and_then(|m| m.get_key_value(info.instance_id.as_str()))
            {
                Some((k, _)) => Arc::clone(k),
                None => Arc::from(info.instance_id.as_str()),
            },
        };
        if info.overridden_status != InstanceStatus::Unknown && !inner.overrides.contains_key(&id) {
            inner
                .overrides
                .insert(Arc::clone(&id), info.overridden_status);
        }
        let override_status = inner.overrides.get(&id).copied();
        if let Some(s) = override_status {
            info.overridden_status = s;
        }
        info.status = effective_status(reported, override_status, existing_status);
        if info.status == InstanceStatus::Up && service_up == 0 {
            service_up = now;
        }
        let settings = &self.settings;
        let requested = info.lease_info.unwrap_or(LeaseInfo {
            renewal_interval_in_secs: settings.default_renewal_interval_secs,
            duration_in_secs: settings.default_duration_secs,
            ..LeaseInfo::default()
        });
        let lease_info = LeaseInfo {
            renewal_interval_in_secs: requested.renewal_interval_in_secs.max(1),
            duration_in_secs: requested.duration_in_secs.max(1),
            registration_timestamp: now,
            last_renewal_timestamp: now,
            eviction_timestamp: 0,
            service_up_timestamp: service_up,
        };
        info.lease_info = Some(lease_info);
        info.action_type = Some(ActionType::Added);
        info.last_updated_timestamp = now;
        let info = Arc::new(info);
        let entry = Entry {
            info: Arc::clone(&info),
            reported,
            lease: Lease::new(now, &lease_info),
        };
        let previous = inner
            .apps
            .entry(Arc::clone(&app))
            .or_default()
            .insert(Arc::clone(&id), entry);
        match previous {
            Some(old) => {
                inner.counts.remove(old.info.status);
                inner.expected_renews_milli -= Self::interval_milli(&old.info, settings);
            }
            None => inner.instances += 1,
        }
        inner.counts.add(info.status);
        inner.expected_renews_milli += Self::interval_milli(&info, settings);
        let version = self.bump(inner, now, &info, lease_info);
        RegistryEvent {
            action: EventAction::Register,
            instance: info,
            version,
        }
    }

    /// Renews a lease, honouring the reported status and last dirty
    /// timestamp as Eureka's `InstanceResource.renewLease` does.
    pub fn renew(&self, app: &str, id: &str, req: RenewRequest, origin: Origin) -> RenewOutcome {
        let now = self.clock.epoch_millis();
        let app = app_key(app);
        {
            let inner = self.inner.read();
            let Some(entry) = inner.apps.get(app.as_ref()).and_then(|m| m.get(id)) else {
                return RenewOutcome::NotFound;
            };
            let reported = self.reported_after_renew(entry, &req);
            let existing = (origin != Origin::Replicated).then_some(entry.info.status);
            let status = effective_status(reported, inner.overrides.get(id).copied(), existing);
            if status == entry.info.status && reported == entry.reported {
                if status == InstanceStatus::Unknown {
                    return RenewOutcome::NotFound;
                }
                entry.lease.renew(now);
                self.renews.increment(now);
                let event = RegistryEvent {
                    action: EventAction::Heartbeat,
                    instance: Arc::clone(&entry.info),
                    version: self.version(),
                };
                return Self::dirty_check(event, req.last_dirty_timestamp, origin);
            }
        }
        self.renew_changing_status(app.as_ref(), id, req, origin, now)
    }

    /// The reported status after a renewal: the renewal's `status` counts
    /// unless its timestamp says the client's record is older or newer than
    /// ours (newer: the client re-registers anyway).
    fn reported_after_renew(&self, entry: &Entry, req: &RenewRequest) -> InstanceStatus {
        if req
            .status
            .is_some_and(|s| masked_by_override(s, req.overridden_status))
        {
            // A peer's heartbeat carries the overridden status.
            return entry.reported;
        }
        match (req.status, req.last_dirty_timestamp) {
            (Some(s), None) => s,
            (Some(s), Some(ts)) if ts == entry.info.last_dirty_timestamp => s,
            _ => entry.reported,
        }
    }

    fn dirty_check(event: RegistryEvent, last_dirty: Option<i64>, origin: Origin) -> RenewOutcome {
        match last_dirty {
            Some(ts) if ts > event.instance.last_dirty_timestamp => RenewOutcome::NotFound,
            Some(ts)
                if ts < event.instance.last_dirty_timestamp && origin == Origin::Replicated =>
            {
                RenewOutcome::Conflict(event)
            }
            _ => RenewOutcome::Renewed(event),
        }
    }

    fn renew_changing_status(
        &self,
        app: &str,
        id: &str,
        req: RenewRequest,
        origin: Origin,
        now: i64,
    ) -> RenewOutcome {
        let mut guard = self.inner.write();
        let inner = &mut *guard;
        if origin == Origin::Replicated
            && let Some(s) = req
                .overridden_status
                .filter(|s| *s != InstanceStatus::Unknown)
            && !inner.overrides.contains_key(id)
        {
            // Eureka's storeOverriddenStatusIfRequired.
            inner.overrides.insert(Arc::from(id), s);
        }
        let override_status = inner.overrides.get(id).copied();
        let Some(entry) = entry_mut(&mut inner.apps, app, id) else {
            return RenewOutcome::NotFound;
        };
        let reported = self.reported_after_renew(entry, &req);
        let existing = (origin != Origin::Replicated).then_some(entry.info.status);
        let status = effective_status(reported, override_status, existing);
        entry.reported = reported;
        if status == InstanceStatus::Unknown {
            return RenewOutcome::NotFound;
        }
        entry.lease.renew(now);
        self.renews.increment(now);
        let old_status = entry.info.status;
        let mut version = self.version();
        if status != old_status {
            // The queue lets go of the record first, so it changes in place.
            inner.changes.release(app, id);
            let info = Arc::make_mut(&mut entry.info);
            info.status = status;
            info.action_type = Some(ActionType::Modified);
            info.last_updated_timestamp = now;
            if status == InstanceStatus::Up {
                entry.lease.mark_up(now);
            }
            let (snapshot, lease) = (Arc::clone(&entry.info), entry.lease.info());
            inner.counts.remove(old_status);
            inner.counts.add(status);
            version = self.bump(inner, now, &snapshot, lease);
        }
        let Some(entry) = inner.apps.get(app).and_then(|m| m.get(id)) else {
            return RenewOutcome::NotFound;
        };
        let event = RegistryEvent {
            action: EventAction::Heartbeat,
            instance: Arc::clone(&entry.info),
            version,
        };
        Self::dirty_check(event, req.last_dirty_timestamp, origin)
    }

    /// Removes an instance (`DELETE`); `None` when it was not registered.
    pub fn cancel(&self, app: &str, id: &str, origin: Origin) -> Option<RegistryEvent> {
        let now = self.clock.epoch_millis();
        let mut guard = self.inner.write();
        let action = if origin == Origin::Eviction {
            EventAction::Evict
        } else {
            EventAction::Cancel
        };
        self.remove_locked(&mut guard, &app_key(app), id, now, action)
    }

    fn remove_locked(
        &self,
        inner: &mut Inner,
        app: &str,
        id: &str,
        now: i64,
        action: EventAction,
    ) -> Option<RegistryEvent> {
        inner.overrides.remove(id);
        let instances = inner.apps.get_mut(app)?;
        let entry = instances.remove(id)?;
        if instances.is_empty() {
            inner.apps.remove(app);
        }
        inner.instances -= 1;
        inner.counts.remove(entry.info.status);
        inner.expected_renews_milli -= Self::interval_milli(&entry.info, &self.settings);
        // The queue lets go of the record first, so it is not copied.
        inner.changes.release(app, id);
        let mut info = Arc::unwrap_or_clone(entry.info);
        info.action_type = Some(ActionType::Deleted);
        info.last_updated_timestamp = now;
        let mut lease = entry.lease.info();
        lease.eviction_timestamp = now;
        info.lease_info = Some(lease);
        let info = Arc::new(info);
        let version = self.bump(inner, now, &info, lease);
        Some(RegistryEvent {
            action,
            instance: info,
            version,
        })
    }

    /// Sets a status override (`PUT .../status?value=`); `None` when the
    /// instance is not registered.
    pub fn set_status_override(
        &self,
        app: &str,
        id: &str,
        status: InstanceStatus,
        last_dirty_timestamp: Option<i64>,
        _origin: Origin,
    ) -> Option<RegistryEvent> {
        let now = self.clock.epoch_millis();
        let app = app_key(app);
        let mut guard = self.inner.write();
        let inner = &mut *guard;
        let key = Arc::clone(
            inner
                .apps
                .get(app.as_ref())
                .and_then(|m| m.get_key_value(id))?
                .0,
        );
        let entry = entry_mut(&mut inner.apps, &app, id)?;
        entry.lease.renew(now);
        inner.changes.release(&app, id);
        let old_status = entry.change_status(now, status, status, last_dirty_timestamp);
        let (snapshot, lease) = (Arc::clone(&entry.info), entry.lease.info());
        inner.overrides.insert(key, status);
        let version = self.record_status_change(inner, now, old_status, &snapshot, lease);
        Some(RegistryEvent {
            action: EventAction::StatusUpdate,
            instance: snapshot,
            version,
        })
    }

    /// Removes a status override (`DELETE .../status`). The status becomes
    /// `value` when given, else the status the client itself reports
    /// (Eureka sets `UNKNOWN` and waits for a re-registration; we know the
    /// reported status, so the instance is right at once). Without an
    /// override to remove, only the lease is renewed, as in Eureka.
    pub fn delete_status_override(
        &self,
        app: &str,
        id: &str,
        value: Option<InstanceStatus>,
        last_dirty_timestamp: Option<i64>,
        _origin: Origin,
    ) -> Option<RegistryEvent> {
        let now = self.clock.epoch_millis();
        let app = app_key(app);
        let mut guard = self.inner.write();
        let inner = &mut *guard;
        let entry = entry_mut(&mut inner.apps, &app, id)?;
        // Only a registered instance loses its override (not a namesake in
        // another application, nor a stranger).
        let had_override = inner.overrides.remove(id).is_some();
        entry.lease.renew(now);
        if !had_override {
            // Nothing to remove: the status stays what the rules made it,
            // as Eureka's deleteStatusOverride (which still answers 200).
            return Some(RegistryEvent {
                action: EventAction::DeleteStatusOverride,
                instance: Arc::clone(&entry.info),
                version: self.version(),
            });
        }
        let status = value.unwrap_or(entry.reported);
        inner.changes.release(&app, id);
        let old_status =
            entry.change_status(now, status, InstanceStatus::Unknown, last_dirty_timestamp);
        let (snapshot, lease) = (Arc::clone(&entry.info), entry.lease.info());
        let version = self.record_status_change(inner, now, old_status, &snapshot, lease);
        Some(RegistryEvent {
            action: EventAction::DeleteStatusOverride,
            instance: snapshot,
            version,
        })
    }

    /// Whether adding `entries` to the metadata of an instance keeps it
    /// within the [`Limits`]; `None` when the instance is not registered.
    /// [`update_metadata`](Self::update_metadata) checks again as it
    /// stores, so a concurrent update cannot take the instance past them.
    pub fn check_metadata_update(
        &self,
        app: &str,
        id: &str,
        entries: &[(String, String)],
    ) -> Option<Result<(), MetadataTooLarge>> {
        let limits = self.limits();
        let inner = self.inner.read();
        let entry = entry(&inner.apps, &app_key(app), id)?;
        Some(Self::merged_metadata(&limits, &entry.info, entries.to_vec()).map(|_| ()))
    }

    /// The metadata of `info` with `entries` added, if within `limits`.
    fn merged_metadata(
        limits: &Limits,
        info: &InstanceInfo,
        entries: Vec<(String, String)>,
    ) -> Result<Metadata, MetadataTooLarge> {
        let mut merged = info.metadata.clone();
        merged.extend(entries);
        limits.check_updated(info, &merged)?;
        Ok(merged)
    }

    /// Adds or replaces metadata entries (`PUT .../metadata?key=value`).
    /// `None` when the instance is not registered, or when the result would
    /// be over the metadata [`Limits`] (then nothing is stored; see
    /// [`check_metadata_update`](Self::check_metadata_update)).
    pub fn update_metadata(
        &self,
        app: &str,
        id: &str,
        entries: impl IntoIterator<Item = (String, String)>,
    ) -> Option<RegistryEvent> {
        let now = self.clock.epoch_millis();
        let app = app_key(app);
        let limits = self.limits();
        let entries: Vec<(String, String)> = entries.into_iter().collect();
        let mut guard = self.inner.write();
        let inner = &mut *guard;
        let entry = entry_mut(&mut inner.apps, &app, id)?;
        let merged = Self::merged_metadata(&limits, &entry.info, entries).ok()?;
        inner.changes.release(&app, id);
        let info = Arc::make_mut(&mut entry.info);
        info.metadata = merged;
        info.action_type = Some(ActionType::Modified);
        info.last_updated_timestamp = now;
        let (snapshot, lease) = (Arc::clone(&entry.info), entry.lease.info());
        let version = self.bump(inner, now, &snapshot, lease);
        Some(RegistryEvent {
            action: EventAction::Register,
            instance: snapshot,
            version,
        })
    }

    /// Self-preservation figures now. The expected rate is recomputed from
    /// the registered instances on every register, cancel and eviction, so
    /// it follows scale-downs instead of sticking; an instance registered
    /// less than a minute ago counts only the renewals it could have sent.
    pub fn preservation(&self) -> PreservationState {
        let now = self.clock.epoch_millis();
        self.preservation_from(&self.inner.read(), now)
    }

    fn preservation_from(&self, inner: &Inner, now: i64) -> PreservationState {
        let expected_milli = inner
            .expected_renews_milli
            .saturating_sub(self.unearned_renews_milli(inner, now));
        let expected = expected_milli as f64 / 1000.0;
        let threshold = (expected * self.settings.renewal_percent_threshold).floor() as u64;
        let renews = self.renews.last_minute(now);
        let enabled = self.settings.self_preservation;
        PreservationState {
            enabled,
            expected_renews_per_min: expected,
            renews_threshold: threshold,
            renews_last_min: renews,
            // Eureka's rule, except that nothing expected (an empty or
            // just-registered registry) is not reported as preserving.
            lease_expiration_enabled: !enabled
                || expected_milli == 0
                || (threshold > 0 && renews > threshold),
        }
    }

    /// Evicts expired leases, as Eureka's `AbstractInstanceRegistry.evict`:
    /// nothing while self-preservation holds; at most the share of the
    /// registry above the threshold per run (15% by default), chosen at
    /// random. A lease expires once its duration has passed since its last
    /// renewal (once, not twice, its duration).
    pub fn evict(&self) -> Vec<RegistryEvent> {
        let now = self.clock.epoch_millis();
        let mut guard = self.inner.write();
        let inner = &mut *guard;
        self.purge_changes(inner, now);
        if !self.preservation_from(inner, now).lease_expiration_enabled {
            return Vec::new();
        }
        let mut expired: Vec<(Arc<str>, Arc<str>)> = inner
            .apps
            .iter()
            .flat_map(|(app, m)| {
                m.iter()
                    .filter(|(_, e)| e.lease.is_expired(now))
                    .map(|(id, _)| (Arc::clone(app), Arc::clone(id)))
            })
            .collect();
        let size = inner.instances;
        let keep = (size as f64 * self.settings.renewal_percent_threshold) as usize;
        let limit = size.saturating_sub(keep);
        if expired.len() > limit {
            expired.shuffle(&mut rand::rng());
            expired.truncate(limit);
        }
        expired
            .into_iter()
            .filter_map(|(app, id)| self.remove_locked(inner, &app, &id, now, EventAction::Evict))
            .collect()
    }

    /// One instance with its current lease.
    pub fn instance(&self, app: &str, id: &str) -> Option<LeasedInstance> {
        let inner = self.inner.read();
        inner
            .apps
            .get(app_key(app).as_ref())
            .and_then(|m| m.get(id))
            .map(|e| (Arc::clone(&e.info), e.lease.info()))
    }

    /// One instance by id alone (`/instances/{id}`).
    pub fn instance_by_id(&self, id: &str) -> Option<LeasedInstance> {
        let inner = self.inner.read();
        inner
            .apps
            .values()
            .find_map(|m| m.get(id))
            .map(|e| (Arc::clone(&e.info), e.lease.info()))
    }

    /// A snapshot of the whole registry.
    pub fn snapshot(&self) -> Snapshot {
        self.select(|_, _| true)
    }

    /// A snapshot of one application (`None` when it has no instances).
    pub fn application(&self, app: &str) -> Option<Snapshot> {
        let key = app_key(app);
        let snap = self.select(|name, _| name == key.as_ref());
        (!snap.applications.is_empty()).then_some(snap)
    }

    /// A snapshot of the instances whose VIP (or secure VIP) address
    /// lists `vip` (Eureka allows comma-separated VIPs).
    pub fn by_vip(&self, vip: &str, secure: bool) -> Snapshot {
        self.select(|_, info| {
            let addr = if secure {
                &info.secure_vip_address
            } else {
                &info.vip_address
            };
            addr.as_deref()
                .is_some_and(|a| a.split(',').any(|v| v.trim().eq_ignore_ascii_case(vip)))
        })
    }

    fn select(&self, keep: impl Fn(&str, &InstanceInfo) -> bool) -> Snapshot {
        let inner = self.inner.read();
        let mut applications = Vec::new();
        for (name, instances) in &inner.apps {
            let mut list: Vec<_> = instances
                .values()
                .filter(|e| keep(name, &e.info))
                .map(|e| (Arc::clone(&e.info), e.lease.info()))
                .collect();
            if !list.is_empty() {
                list.sort_unstable_by(|a, b| a.0.instance_id.cmp(&b.0.instance_id));
                applications.push((Arc::clone(name), list));
            }
        }
        Snapshot {
            version: self.version(),
            apps_hashcode: inner.counts.to_string(),
            applications,
        }
    }

    /// The changes of the retention window (3 minutes by default), one
    /// entry per instance with its latest state and action, and the
    /// hashcode of the whole registry, as Eureka's `getApplicationDeltas`.
    ///
    /// When the change queue went over its byte budget and dropped changes
    /// still inside the window, the window is no longer known in full; until
    /// those changes would have left it, the delta lists every registered
    /// instance (and the removals still queued) instead. A client that
    /// applies it holds exactly the registry, except for instances removed
    /// in the lost changes; those make its reconcile hashcode count more
    /// instances than the delta's `apps__hashcode`, so it fetches the full
    /// registry. Either way no client is left with a wrong registry that
    /// its hashcode check accepts.
    pub fn delta(&self) -> Snapshot {
        let now = self.clock.epoch_millis();
        let horizon = now - self.settings.delta_retention_millis;
        let inner = self.inner.read();
        let incomplete = inner.changes.is_incomplete(now);
        // Later changes of an instance replace earlier ones (only the latest
        // keeps its record).
        let mut latest: HashMap<(&str, &str), LeasedInstance> = HashMap::new();
        for change in inner.changes.iter().filter(|c| c.at >= horizon) {
            let Some(instance) = &change.instance else {
                continue;
            };
            let removed = instance.action_type == Some(ActionType::Deleted);
            if incomplete && !removed {
                continue;
            }
            latest.insert(
                (&change.app, &change.id),
                (Arc::clone(instance), change.lease),
            );
        }
        if incomplete {
            for (app, instances) in &inner.apps {
                for (id, e) in instances {
                    latest.insert((app, id), (Arc::clone(&e.info), e.lease.info()));
                }
            }
        }
        let mut by_app: BTreeMap<&str, Vec<LeasedInstance>> = BTreeMap::new();
        for ((app, _), leased) in latest {
            by_app.entry(app).or_default().push(leased);
        }
        for list in by_app.values_mut() {
            list.sort_unstable_by(|a, b| a.0.instance_id.cmp(&b.0.instance_id));
        }
        Snapshot {
            version: self.version(),
            apps_hashcode: inner.counts.to_string(),
            applications: by_app
                .into_iter()
                .map(|(name, list)| (Arc::from(name), list))
                .collect(),
        }
    }

    /// Counts of applications, instances and statuses.
    pub fn counts(&self) -> RegistryCounts {
        let inner = self.inner.read();
        RegistryCounts {
            applications: inner.apps.len(),
            instances: inner.instances,
            by_status: inner.counts,
        }
    }

    /// Renewals counted in the last minute.
    pub fn renews_last_min(&self) -> u64 {
        self.renews.last_minute(self.clock.epoch_millis())
    }
}

#[cfg(test)]
mod tests;

#[cfg(test)]
mod limit_tests;
