//! Helpers shared by the integration tests: throwaway git repositories and
//! a server started in-process on port 0.
#![allow(dead_code, unreachable_pub, clippy::unwrap_used)]

use std::path::PathBuf;

use config_server::Settings;
use tokio::sync::oneshot;

/// A git repository in a temporary directory (the shared test helper).
pub use cloud_runtime::testing::GitRepo as Repo;

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

/// The workspace root (for the interop venv and node modules).
pub fn workspace_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// A prerequisite installed by `scripts/prereqs`: the path from the
/// environment variable `var`, else `<workspace>/<fallback>`. Fails the test
/// with a hint when it is missing.
pub fn interop_prereq(var: &str, fallback: &str) -> PathBuf {
    let path = std::env::var_os(var)
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace_root().join(fallback));
    assert!(
        path.exists(),
        "interop prerequisite missing at {} ({var}): run scripts/prereqs",
        path.display()
    );
    path
}

/// A test script under `tests/interop/`.
pub fn interop_script(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/interop")
        .join(name)
}

/// Runs an unmodified client (a script under an interpreter), waits for it
/// with a deadline and returns the single JSON document it prints. The
/// process is killed if the deadline passes or the test fails (kill on drop).
pub async fn run_client_json(
    mut cmd: tokio::process::Command,
    deadline: std::time::Duration,
) -> serde_json::Value {
    let child = cmd
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let out = tokio::time::timeout(deadline, child.wait_with_output())
        .await
        .unwrap_or_else(|_| panic!("client {cmd:?} did not finish within {deadline:?}"))
        .unwrap();
    assert!(
        out.status.success(),
        "client {cmd:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "client printed no JSON ({e}): {}",
            String::from_utf8_lossy(&out.stdout)
        )
    })
}

#[path = "../../../interop/spring/spring_app.rs"]
mod spring_app;
#[allow(unused_imports)]
pub(crate) use spring_app::{JVM_START, SpringApp, within_scenario_deadline};

#[path = "../../../interop/spring/differential.rs"]
#[allow(dead_code, unreachable_pub)]
pub(crate) mod differential;
