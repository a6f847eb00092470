//! The binary honours its command-line contract: `--port 0` binds a free
//! port (logged as `addr=`), `--peer` values reach the node, and SIGTERM
//! shuts it down cleanly.

#![allow(clippy::unwrap_used)]

use std::process::Stdio;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::Command;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn binary_serves_on_the_logged_port_and_stops_on_sigterm() {
    tokio::time::timeout(Duration::from_secs(60), scenario())
        .await
        .expect("binary test deadline");
}

async fn scenario() {
    let mut child = Command::new(env!("CARGO_BIN_EXE_discovery-server"))
        .args([
            "--port",
            "0",
            "--bind",
            "127.0.0.1",
            "--peer",
            "http://127.0.0.1:1/eureka/",
        ])
        .env("RUST_LOG", "info")
        // The peer is dead; reads need not wait for its registry copy.
        .env("DISCOVERY__EUREKA__SERVER__REGISTRY_SYNC_TIMEOUT_MS", "0")
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let addr = loop {
        let line = lines
            .next_line()
            .await
            .unwrap()
            .expect("binary exited before listening");
        if let Some(rest) = line.split("addr=").nth(1) {
            break rest.split_whitespace().next().unwrap().to_owned();
        }
    };
    let health: serde_json::Value = reqwest::get(format!("http://{addr}/actuator/health"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(health["status"], "UP");
    assert_eq!(
        health["components"]["discovery"]["details"]["peers"][0],
        "http://127.0.0.1:1/eureka/"
    );
    let apps = reqwest::get(format!("http://{addr}/eureka/v2/apps"))
        .await
        .unwrap();
    assert_eq!(apps.status(), 200);

    let pid = child.id().unwrap().to_string();
    let kill = Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .await
        .unwrap();
    assert!(kill.success());
    let status = tokio::time::timeout(Duration::from_secs(10), child.wait())
        .await
        .unwrap()
        .unwrap();
    assert!(status.success(), "exit after SIGTERM: {status}");
}
