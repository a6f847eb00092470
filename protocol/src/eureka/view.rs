//! Borrowed views of the model that the writers serialize, so a server can
//! write its registry without cloning it and with lease timestamps that live
//! outside the `InstanceInfo` record.

use super::model::{Application, Applications, InstanceInfo, LeaseInfo};

/// An instance to write, with the lease to write for it.
#[derive(Debug, Clone, Copy)]
pub struct InstanceView<'a> {
    /// The record.
    pub info: &'a InstanceInfo,
    /// The lease written as `leaseInfo` (instead of `info.lease_info`).
    pub lease: Option<LeaseInfo>,
}

impl<'a> From<&'a InstanceInfo> for InstanceView<'a> {
    fn from(info: &'a InstanceInfo) -> Self {
        InstanceView {
            info,
            lease: info.lease_info,
        }
    }
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
