//! The dashboard renders in a real browser: headless Chromium loads `/` and
//! the DOM it builds lists the instance, its status and self-preservation.

#![allow(clippy::unwrap_used)]

mod support;

use std::process::Stdio;
use std::time::Duration;

use cloud_protocol::eureka::{InstanceInfo, InstanceStatus};
use discovery_server::ServerConfig;
use discovery_server::registry::Origin;
use support::Running;
use tokio::process::Command;

const CHROMIUM: &str = "/usr/bin/chromium";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn headless_chromium_shows_instances_and_self_preservation() {
    assert!(
        std::path::Path::new(CHROMIUM).exists(),
        "chromium missing: run scripts/prereqs"
    );
    let config = ServerConfig {
        peers: vec!["http://127.0.0.1:1/eureka/".into()],
        ..ServerConfig::default()
    };
    let running = Running::start(config).await;
    let info = InstanceInfo {
        instance_id: "dash-1".into(),
        host_name: "dash.local".into(),
        app: "DASH-APP".into(),
        ip_addr: "127.0.0.1".into(),
        status: InstanceStatus::Up,
        ..InstanceInfo::default()
    };
    running.server.node().register(info, Origin::Local);
    running.server.node().set_status_override(
        "DASH-APP",
        "dash-1",
        InstanceStatus::OutOfService,
        None,
        Origin::Local,
    );

    let profile = tempfile::tempdir().unwrap();
    let child = Command::new(CHROMIUM)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--disable-dev-shm-usage",
        ])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .arg("--dump-dom")
        .arg(running.url("/"))
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let output = tokio::time::timeout(Duration::from_secs(60), child.wait_with_output())
        .await
        .expect("chromium deadline")
        .unwrap();
    let dom = String::from_utf8_lossy(&output.stdout);
    assert!(dom.contains("<h1>Discovery Server</h1>"), "{dom}");
    assert!(dom.contains(r#"data-instance="dash-1""#), "{dom}");
    assert!(
        dom.contains(r#"<td class="OUT_OF_SERVICE">OUT_OF_SERVICE</td>"#),
        "{dom}"
    );
    assert!(dom.contains(r#"<td id="instance-count">1</td>"#), "{dom}");
    assert!(dom.contains("Self-preservation is"), "{dom}");
    assert!(
        dom.contains("http://127.0.0.1:1/eureka/"),
        "replicas listed: {dom}"
    );
    running.stop().await;
}
