//! Test plumbing every crate's integration tests share (feature
//! `testing`, for `[dev-dependencies]` only): waiting on a condition with a
//! deadline instead of sleeping, throwaway git repositories, and an HTTP/2
//! server that refuses streams.
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

/// An HTTP/2 server (cleartext, prior knowledge) on a free port of
/// 127.0.0.1 that takes one connection and answers its streams in turn:
/// each with the next reset of its list (`None`: `200` with body `ok`).
/// It counts the streams it saw, and stops when dropped.
#[cfg(feature = "service")]
pub struct H2Upstream {
    /// Its address.
    pub addr: std::net::SocketAddr,
    seen: std::sync::Arc<std::sync::atomic::AtomicU32>,
    task: tokio::task::JoinHandle<()>,
}

#[cfg(feature = "service")]
impl H2Upstream {
    /// Starts one answering stream `n` with `resets[n]`.
    pub async fn start(resets: Vec<Option<h2::Reason>>) -> H2Upstream {
        use std::sync::atomic::Ordering;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind the HTTP/2 upstream");
        let addr = listener.local_addr().expect("its address");
        let seen = std::sync::Arc::new(std::sync::atomic::AtomicU32::new(0));
        let counter = std::sync::Arc::clone(&seen);
        let task = tokio::spawn(async move {
            let Ok((socket, _)) = listener.accept().await else {
                return;
            };
            let Ok(mut conn) = h2::server::handshake(socket).await else {
                return;
            };
            while let Some(Ok((_request, mut respond))) = conn.accept().await {
                let n = counter.fetch_add(1, Ordering::SeqCst) as usize;
                match resets.get(n).copied().flatten() {
                    Some(reason) => respond.send_reset(reason),
                    None => {
                        let head = http::Response::builder()
                            .status(200)
                            .body(())
                            .expect("a response head");
                        if let Ok(mut body) = respond.send_response(head, false) {
                            let _ = body.send_data(bytes::Bytes::from_static(b"ok"), true);
                        }
                    }
                }
            }
        });
        H2Upstream { addr, seen, task }
    }

    /// The streams it saw so far.
    pub fn streams(&self) -> u32 {
        self.seen.load(std::sync::atomic::Ordering::SeqCst)
    }
}

#[cfg(feature = "service")]
impl Drop for H2Upstream {
    fn drop(&mut self) {
        self.task.abort();
    }
}
