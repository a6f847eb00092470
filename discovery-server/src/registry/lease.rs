//! A lease: when it was last renewed and how long it lasts. The renewal
//! time is an atomic so a renewal needs only the registry's read lock.

use std::sync::atomic::{AtomicI64, Ordering};

use cloud_protocol::eureka::LeaseInfo;

pub(super) struct Lease {
    last_renewal: AtomicI64,
    service_up: AtomicI64,
    registration: i64,
    duration_millis: i64,
    renewal_interval_secs: u32,
    duration_secs: u32,
}

impl Lease {
    pub(super) fn new(now: i64, info: &LeaseInfo) -> Lease {
        Lease {
            last_renewal: AtomicI64::new(now),
            service_up: AtomicI64::new(info.service_up_timestamp),
            registration: now,
            duration_millis: i64::from(info.duration_in_secs) * 1000,
            renewal_interval_secs: info.renewal_interval_in_secs,
            duration_secs: info.duration_in_secs,
        }
    }

    pub(super) fn renew(&self, now: i64) {
        self.last_renewal.fetch_max(now, Ordering::AcqRel);
    }

    /// Records the first time the instance was seen `UP`.
    pub(super) fn mark_up(&self, now: i64) {
        let _ = self
            .service_up
            .compare_exchange(0, now, Ordering::AcqRel, Ordering::Acquire);
    }

    /// When this lease began (the registration it belongs to).
    pub(super) fn registration(&self) -> i64 {
        self.registration
    }

    /// Expired once its duration has passed since the last renewal.
    pub(super) fn is_expired(&self, now: i64) -> bool {
        now > self
            .last_renewal
            .load(Ordering::Acquire)
            .saturating_add(self.duration_millis)
    }

    pub(super) fn info(&self) -> LeaseInfo {
        LeaseInfo {
            renewal_interval_in_secs: self.renewal_interval_secs,
            duration_in_secs: self.duration_secs,
            registration_timestamp: self.registration,
            last_renewal_timestamp: self.last_renewal.load(Ordering::Acquire),
            eviction_timestamp: 0,
            service_up_timestamp: self.service_up.load(Ordering::Acquire),
        }
    }
}
