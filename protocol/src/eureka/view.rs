//! Borrowed views of the model that the writers serialize, so a server can
//! write its registry without cloning it and with lease timestamps that live
//! outside the `InstanceInfo` record.

use super::model::{Application, Applications, InstanceInfo, LeaseInfo};

/// How much of an instance a writer writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Detail {
    /// Every field (Eureka's default, `X-Eureka-Accept: full`).
    #[default]
    Full,
    /// Eureka's "mini" instance (`X-Eureka-Accept: compact`): `instanceId`,
    /// `hostName`, `app`, `ipAddr`, `status`, `port`, `securePort`,
    /// `dataCenterInfo`, `vipAddress`, `secureVipAddress`,
    /// `lastUpdatedTimestamp`, `actionType` and `asgName`; no lease, no
    /// metadata, no URLs.
    Compact,
}

impl Detail {
    /// The detail an `X-Eureka-Accept` header value asks for: `compact`
    /// (any case) is [`Detail::Compact`], anything else [`Detail::Full`],
    /// as Eureka's `EurekaAccept.fromString`.
    pub fn from_header(value: Option<&str>) -> Detail {
        match value {
            Some(v) if v.trim().eq_ignore_ascii_case("compact") => Detail::Compact,
            _ => Detail::Full,
        }
    }
}

/// An instance to write, with the lease to write for it.
#[derive(Debug, Clone, Copy)]
pub struct InstanceView<'a> {
    /// The record.
    pub info: &'a InstanceInfo,
    /// The lease written as `leaseInfo` (instead of `info.lease_info`).
    pub lease: Option<LeaseInfo>,
    /// How much to write.
    pub detail: Detail,
}

impl<'a> From<&'a InstanceInfo> for InstanceView<'a> {
    fn from(info: &'a InstanceInfo) -> Self {
        InstanceView {
            info,
            lease: info.lease_info,
            detail: Detail::Full,
        }
    }
}

/// The `sid` to write: Eureka leaves out `na` and `unknown` (which a
/// decoded instance never holds, but a built one may).
pub(crate) fn sid(info: &InstanceInfo) -> Option<&str> {
    info.sid
        .as_deref()
        .filter(|s| *s != "na" && *s != "unknown")
}

/// The optional string fields present on `info`, in Eureka's order, as
/// (name, value); a compact view keeps only the VIP addresses.
pub(crate) fn optional_fields(
    info: &InstanceInfo,
    detail: Detail,
) -> impl Iterator<Item = (&'static str, &str)> {
    let full = detail == Detail::Full;
    [
        ("appGroupName", &info.app_group_name, full),
        ("homePageUrl", &info.home_page_url, full),
        ("statusPageUrl", &info.status_page_url, full),
        ("healthCheckUrl", &info.health_check_url, full),
        ("secureHealthCheckUrl", &info.secure_health_check_url, full),
        ("vipAddress", &info.vip_address, true),
        ("secureVipAddress", &info.secure_vip_address, true),
    ]
    .into_iter()
    .filter_map(|(name, value, keep)| Some((name, value.as_deref().filter(|_| keep)?)))
}

/// The lease fields in Eureka's order, as (name, value).
pub(crate) fn lease_fields(lease: &LeaseInfo) -> [(&'static str, i64); 6] {
    [
        (
            "renewalIntervalInSecs",
            i64::from(lease.renewal_interval_in_secs),
        ),
        ("durationInSecs", i64::from(lease.duration_in_secs)),
        ("registrationTimestamp", lease.registration_timestamp),
        ("lastRenewalTimestamp", lease.last_renewal_timestamp),
        ("evictionTimestamp", lease.eviction_timestamp),
        ("serviceUpTimestamp", lease.service_up_timestamp),
    ]
}

/// An application to write.
#[derive(Debug, Clone)]
pub struct ApplicationView<'a> {
    /// Upper-case name.
    pub name: &'a str,
    /// Its instances.
    pub instances: Vec<InstanceView<'a>>,
}

impl<'a> From<&'a Application> for ApplicationView<'a> {
    fn from(app: &'a Application) -> Self {
        ApplicationView {
            name: &app.name,
            instances: app.instances.iter().map(InstanceView::from).collect(),
        }
    }
}

/// A registry listing to write.
#[derive(Debug, Clone)]
pub struct ApplicationsView<'a> {
    /// `versions__delta`.
    pub version_delta: i64,
    /// `apps__hashcode`.
    pub apps_hashcode: &'a str,
    /// The applications.
    pub applications: Vec<ApplicationView<'a>>,
}

impl<'a> From<&'a Applications> for ApplicationsView<'a> {
    fn from(apps: &'a Applications) -> Self {
        ApplicationsView {
            version_delta: apps.version_delta,
            apps_hashcode: &apps.apps_hashcode,
            applications: apps
                .applications
                .iter()
                .map(ApplicationView::from)
                .collect(),
        }
    }
}
