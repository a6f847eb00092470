//! Helpers shared by the integration tests: throwaway git repositories and
//! a server started in-process on port 0.
#![allow(dead_code, unreachable_pub, clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::process::Command;

use config_server::Settings;
use tokio::sync::oneshot;

/// A git repository in a temporary directory, with a working tree that the
/// test edits and commits.
pub struct Repo {
    pub dir: tempfile::TempDir,
}

impl Repo {
    /// `git init` with `main` as the first branch.
    pub fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let r = Self { dir };
        r.git(&["init", "-q", "-b", "main"]);
        r.git(&["config", "user.email", "test@example.invalid"]);
        r.git(&["config", "user.name", "test"]);
        r.git(&["config", "commit.gpgsign", "false"]);
        r
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    pub fn uri(&self) -> String {
        format!("file://{}", self.path().display())
    }

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

    pub fn write(&self, path: &str, content: &str) -> &Self {
        let p = self.path().join(path);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, content).unwrap();
        self
    }

    pub fn remove(&self, path: &str) -> &Self {
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

/// A server on 127.0.0.1:0, stopped (gracefully) on drop.
pub struct TestServer {
    pub base: String,
    pub state: config_server::http::AppState,
    stop: Option<oneshot::Sender<()>>,
    pub mirror: tempfile::TempDir,
}

impl TestServer {
    pub async fn start(mut settings: Settings) -> Self {
        let mirror = tempfile::tempdir().unwrap();
        if settings.git_uri.is_some() && settings.mirror_dir.is_none() {
            settings.mirror_dir = Some(mirror.path().join("mirror.git"));
        }
        Self::start_with_mirror(settings, mirror).await
    }

    pub async fn start_with_mirror(settings: Settings, mirror: tempfile::TempDir) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let running = config_server::start(settings).await.unwrap();
        let state = running.state.clone();
        let (tx, rx) = oneshot::channel::<()>();
        tokio::spawn(running.serve(listener, async move {
            let _ = rx.await;
        }));
        Self {
            base,
            state,
            stop: Some(tx),
            mirror,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    pub async fn json(&self, path: &str) -> serde_json::Value {
        let resp = reqwest::get(self.url(path)).await.unwrap();
        assert!(resp.status().is_success(), "{path}: {}", resp.status());
        resp.json().await.unwrap()
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
    }
}

/// Settings for a git repository with background fetches off.
pub fn git_settings(repo: &Repo) -> Settings {
    Settings {
        git_uri: Some(repo.uri()),
        refresh_rate: 0,
        ..Settings::default()
    }
}

/// The workspace root (for the interop venv).
pub fn workspace_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}
