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
    /// The repository has nothing to serve yet (its first clone has not
    /// succeeded).
    #[error("repository {repository} is not available yet: {reason}")]
    Unavailable {
        /// The repository's location.
        repository: String,
        /// Why the last attempt failed.
        reason: String,
    },
}

impl BackendError {
    /// Whether the label names no branch, tag or commit.
    pub fn is_no_such_label(&self) -> bool {
        matches!(self, Self::NoSuchLabel(_))
    }

    /// Whether the repository cannot serve anything yet (answered 503).
    pub fn is_unavailable(&self) -> bool {
        matches!(self, Self::Unavailable { .. })
    }

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
#[derive(Debug, Clone)]
pub struct BackendHealth {
    /// `UP` when the last refresh succeeded, `DOWN` otherwise.
    pub status: &'static str,
    /// The backend kind and location.
    pub repository: String,
    /// Seconds since the Unix epoch of the last successful refresh.
    pub last_successful_refresh: Option<u64>,
    /// Seconds since the last successful refresh (fetch), when there was
    /// one.
    pub last_successful_refresh_age_seconds: Option<u64>,
    /// The commit served for the default label (git), the last good one
    /// when the remote is unreachable.
    pub last_good_commit: Option<String>,
    /// The error of the last refresh, if it failed.
    pub last_error: Option<String>,
    /// Whether the backend can serve requests (a git backend cannot before
    /// its first clone). Readiness reports it.
    pub serving: bool,
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
    /// A short name for logs and open-work listings (`git <uri>`,
    /// `native`).
    fn describe(&self) -> String;
}

/// Seconds from `since` (seconds since the Unix epoch) to now.
pub(crate) fn age_seconds(since: Option<u64>) -> Option<u64> {
    since.map(|s| unix_now().saturating_sub(s))
}

/// Seconds since the Unix epoch, for health reports.
pub(crate) fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}
