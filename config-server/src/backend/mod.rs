//! Where configuration files come from.
//!
//! A [`Backend`] turns a label into a [`Snapshot`]: one immutable version of
//! the repository whose files can be read concurrently, without locks around
//! reads. [`git::GitBackend`] reads trees at a commit from a bare mirror;
//! [`native::NativeBackend`] reads directories.

pub mod git;
pub mod native;

use std::sync::Arc;

use crate::resolve::FileSource;

/// A failure of a backend.
#[derive(Debug, thiserror::Error)]
pub enum BackendError {
    /// The label names no branch, tag or commit.
    #[error("no such label: {0}")]
    NoSuchLabel(String),
    /// Reading the store failed.
    #[error("{context}: {source}")]
    Io {
        /// What was being done.
        context: String,
        /// The underlying error.
        source: std::io::Error,
    },
    /// A git command failed.
    #[error("git {command}: {message}")]
    Git {
        /// The git sub-command.
        command: String,
        /// Its error output.
        message: String,
    },
}

impl BackendError {
    pub(crate) fn io(context: impl Into<String>, source: std::io::Error) -> Self {
        Self::Io {
            context: context.into(),
            source,
        }
    }
}

/// One immutable version of a configuration repository.
pub trait Snapshot: FileSource + Send + Sync {
    /// The version to report (a commit id for git; `None` for native).
    fn version(&self) -> Option<&str>;
    /// A key that changes whenever the content may have changed (the commit
    /// id for git, a generation counter for native). Used for caching.
    fn cache_version(&self) -> &str;
}

/// The state of the backend for `/actuator/health`.
#[derive(Debug, Clone, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct BackendHealth {
    /// `UP` when the last refresh succeeded, `DOWN` otherwise.
    pub status: &'static str,
    /// The backend kind and location.
    pub repository: String,
    /// Seconds since the Unix epoch of the last successful refresh.
    pub last_successful_refresh: Option<u64>,
    /// The error of the last refresh, if it failed.
    pub last_error: Option<String>,
}

/// A source of configuration snapshots.
///
/// Methods may block (they read files or run git): call them from
/// `spawn_blocking`.
pub trait Backend: Send + Sync + 'static {
    /// The snapshot that `label` names (`None`: the default label).
    fn snapshot(&self, label: Option<&str>) -> Result<Arc<dyn Snapshot>, BackendError>;
    /// Brings the backend up to date (git: fetch). Returns whether anything
    /// may have changed.
    fn refresh(&self) -> Result<bool, BackendError>;
    /// Reachability and last refresh, for health.
    fn health(&self) -> BackendHealth;
    /// The label used when a request names none.
    fn default_label(&self) -> &str;
}

/// Seconds since the Unix epoch, for health reports.
pub(crate) fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}
