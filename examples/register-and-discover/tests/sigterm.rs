//! The real example binary against the real discovery server (in-process,
//! port 0): it registers, and on SIGTERM it leaves the registry by
//! cancelling its lease (not by expiry) and exits 0.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::process::Stdio;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use cloud_protocol::eureka::InstanceStatus;
use cloud_runtime::testing::eventually;
use discovery_server::{Node, Server, ServerConfig};
use tokio::net::TcpListener;
use tokio::process::{Child, Command};

/// The discovery server on 127.0.0.1:0, stopped on drop.
struct Registry {
    url: String,
    node: Arc<Node>,
    _stop: tokio::sync::oneshot::Sender<()>,
}

impl Registry {
    async fn start() -> Registry {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/eureka/", listener.local_addr().unwrap());
        let server = Server::new(ServerConfig::default()).unwrap();
        let node = Arc::clone(server.node());
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        tokio::spawn(server.serve(listener, async {
            let _ = stopped.await;
        }));
        Registry {
            url,
            node,
            _stop: stop,
        }
    }

    /// `(instance id, status)` of each instance of `app`.
    fn instances(&self, app: &str) -> Vec<(String, InstanceStatus)> {
        let Some(snapshot) = self.node.registry().application(app) else {
            return Vec::new();
        };
        snapshot
            .applications
            .iter()
            .flat_map(|(_, instances)| instances.iter())
            .map(|(info, _lease)| (info.instance_id.clone(), info.status))
            .collect()
    }
}

fn spawn_example(registry: &Registry) -> Child {
    let config = concat!(env!("CARGO_MANIFEST_DIR"), "/application.yml");
    Command::new(env!("CARGO_BIN_EXE_register-and-discover"))
        .args(["--config", config, "--port", "0", "--log-format", "text"])
        .env("EUREKA_CLIENT_SERVICEURL_DEFAULTZONE", &registry.url)
        .env("SERVER_PORT", "0")
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .kill_on_drop(true)
        .spawn()
        .expect("the example binary starts")
}

fn sigterm(child: &Child) {
    let pid = child.id().expect("the example is still running");
    let status = std::process::Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status()
        .expect("`kill` runs");
    assert!(status.success(), "kill -TERM {pid}: {status}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_cancels_the_registration_and_exits_zero() {
    let registry = Registry::start().await;
    let mut child = spawn_example(&registry);

    eventually(Duration::from_secs(30), "GREETER registered UP", || async {
        let up = registry.instances("GREETER");
        up.len() == 1 && up[0].1 == InstanceStatus::Up
    })
    .await;
    let metrics = registry.node.metrics();
    assert_eq!(metrics.cancellations.load(Ordering::Relaxed), 0);

    sigterm(&child);
    let status = tokio::time::timeout(Duration::from_secs(15), child.wait())
        .await
        .expect("the example exits within 15 s of SIGTERM")
        .unwrap();
    assert_eq!(status.code(), Some(0), "exit status {status}");

    assert!(
        registry.instances("GREETER").is_empty(),
        "gone from the registry once the process has exited"
    );
    assert_eq!(
        metrics.cancellations.load(Ordering::Relaxed),
        1,
        "left by cancelling its lease"
    );
    assert_eq!(metrics.evictions.load(Ordering::Relaxed), 0, "not expired");
}
