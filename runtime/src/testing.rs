//! Test plumbing every crate's integration tests share (feature
//! `testing`, for `[dev-dependencies]` only): waiting on a condition with a
//! deadline instead of sleeping, and throwaway git repositories.
//!
//! ```
//! # tokio::runtime::Runtime::new().unwrap().block_on(async {
//! use std::time::Duration;
//! use cloud_runtime::testing::eventually;
//!
//! let ready = std::sync::atomic::AtomicBool::new(true);
//! eventually(Duration::from_secs(5), "the flag", || async {
//!     ready.load(std::sync::atomic::Ordering::Relaxed)
//! })
//! .await;
//! # });
//! ```
#![allow(clippy::unwrap_used)]

use std::future::Future;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

/// Polls `check` every 10 ms until it holds; panics naming `what` once
/// `within` has passed.
pub async fn eventually<F, Fut>(within: Duration, what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + within;
    loop {
        if check().await {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out after {within:?} waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// A git repository in a temporary directory, with a working tree that the
/// test edits and commits; removed on drop.
#[derive(Debug)]
pub struct GitRepo {
    /// The directory (its working tree).
    pub dir: tempfile::TempDir,
}

impl GitRepo {
    /// `git init` with `main` as the first branch and a local identity.
    pub fn new() -> GitRepo {
        let dir = tempfile::tempdir().unwrap();
        let r = GitRepo { dir };
        r.git(&["init", "-q", "-b", "main"]);
        r.git(&["config", "user.email", "test@example.invalid"]);
        r.git(&["config", "user.name", "test"]);
        r.git(&["config", "commit.gpgsign", "false"]);
        r
    }

    /// The working tree.
    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// The `file://` URI of the repository.
    pub fn uri(&self) -> String {
        format!("file://{}", self.path().display())
    }

    /// Runs `git args` in the repository; its trimmed standard output.
    /// Panics with git's standard error when it fails.
    pub fn git(&self, args: &[&str]) -> String {
        let out = Command::new("git")
            .arg("-C")
            .arg(self.path())
            .args(args)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "git {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap().trim().to_string()
    }

    /// Writes `content` to `path` (parent directories created).
    pub fn write(&self, path: &str, content: &str) -> &GitRepo {
        let p = self.path().join(path);
        if let Some(parent) = p.parent() {
            std::fs::create_dir_all(parent).unwrap();
        }
        std::fs::write(p, content).unwrap();
        self
    }

    /// `git rm` of `path`.
    pub fn remove(&self, path: &str) -> &GitRepo {
        self.git(&["rm", "-q", path]);
        self
    }

    /// Commits everything; returns the commit id.
    pub fn commit(&self, msg: &str) -> String {
        self.git(&["add", "-A"]);
        self.git(&["commit", "-q", "--allow-empty", "-m", msg]);
        self.git(&["rev-parse", "HEAD"])
    }
}

impl Default for GitRepo {
    fn default() -> Self {
        GitRepo::new()
    }
}
