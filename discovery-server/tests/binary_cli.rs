//! The binary honours its command-line contract: `--port 0` binds a free
//! port (logged as `addr`), `--peer` values reach the node, settings come
//! from Spring's environment names, and SIGTERM drains promptly even with
//! watch streams and long polls open.

#![allow(clippy::unwrap_used)]

mod support;

use std::net::SocketAddr;
use std::process::Stdio;
use std::time::Duration;

use support::listening_addr;
use tokio::process::{Child, Command};

/// Starts the binary and waits for the address it listens on.
async fn spawn(args: &[&str], env: &[(&str, &str)]) -> (Child, SocketAddr) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_discovery-server"))
        .args(args)
        .envs(env.iter().copied())
        .env("RUST_LOG", "info")
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let addr = listening_addr(child.stdout.take().unwrap(), Duration::from_secs(30)).await;
    (child, addr)
}

async fn sigterm(child: &Child) {
    let pid = child.id().unwrap().to_string();
    let kill = Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .await
        .unwrap();
    assert!(kill.success());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn binary_serves_on_the_logged_port_and_stops_on_sigterm() {
    tokio::time::timeout(Duration::from_secs(60), serves_and_stops())
        .await
        .expect("binary test deadline");
}

async fn serves_and_stops() {
    let (mut child, addr) = spawn(
        &[
            "--port",
            "0",
            "--bind",
            "127.0.0.1",
            "--log-format",
            "text",
            "--peer",
            "http://127.0.0.1:1/eureka/",
        ],
        // The peer is dead; reads need not wait for its registry copy.
        &[("EUREKA_SERVER_REGISTRYSYNCTIMEOUTMS", "0")],
    )
    .await;
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

    sigterm(&child).await;
    let status = tokio::time::timeout(Duration::from_secs(10), child.wait())
        .await
        .unwrap()
        .unwrap();
    assert!(status.success(), "exit after SIGTERM: {status}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_ends_open_watch_streams_and_long_polls_and_exits_zero_at_once() {
    tokio::time::timeout(Duration::from_secs(60), drains_open_streams())
        .await
        .expect("binary test deadline");
}

async fn drains_open_streams() {
    // A long drain deadline: exiting well before it shows that nothing
    // waited for the streams (an expired deadline would also exit 1).
    let (mut child, addr) = spawn(
        &[
            "--port",
            "0",
            "--bind",
            "127.0.0.1",
            "--json-logs",
            "--drain-timeout",
            "60s",
        ],
        &[],
    )
    .await;
    let http = reqwest::Client::new();

    let since = http
        .get(format!("http://{addr}/eureka/watch/version?timeoutMs=0"))
        .send()
        .await
        .unwrap()
        .json::<serde_json::Value>()
        .await
        .unwrap()["version"]
        .as_u64()
        .unwrap();
    let polls: Vec<_> = (0..2)
        .map(|_| {
            let request = http.get(format!(
                "http://{addr}/eureka/watch/version?since={since}&timeoutMs=300000"
            ));
            tokio::spawn(async move {
                let response = request.send().await.unwrap();
                assert_eq!(response.status(), 200);
                response.json::<serde_json::Value>().await.unwrap()
            })
        })
        .collect();
    let mut streams = Vec::new();
    for _ in 0..2 {
        let mut response = http
            .get(format!("http://{addr}/eureka/watch"))
            .header("Accept", "text/event-stream")
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        let first = response.chunk().await.unwrap().unwrap();
        assert!(
            String::from_utf8_lossy(&first).contains("event: hello"),
            "{first:?}"
        );
        streams.push(response);
    }
    // One more round trip: the long polls, sent before, are being served.
    let health = http
        .get(format!("http://{addr}/actuator/health"))
        .send()
        .await
        .unwrap();
    assert_eq!(health.status(), 200);
    assert!(
        polls.iter().all(|p| !p.is_finished()),
        "long polls still open"
    );

    let started = tokio::time::Instant::now();
    sigterm(&child).await;
    let status = tokio::time::timeout(Duration::from_secs(10), child.wait())
        .await
        .expect("exit within 10 s of SIGTERM, far inside the 60 s drain deadline")
        .unwrap();
    assert!(status.success(), "exit after SIGTERM: {status}");
    for poll in polls {
        let answer = poll.await.unwrap();
        assert_eq!(answer["changed"], false, "{answer}");
        assert_eq!(answer["version"], since);
    }
    for mut stream in streams {
        // The stream ends cleanly (no error) after what it had sent.
        while let Some(chunk) = stream.chunk().await.unwrap() {
            assert!(!chunk.is_empty());
        }
    }
    assert!(started.elapsed() < Duration::from_secs(10));
}

#[tokio::test]
async fn an_invalid_setting_exits_2_naming_the_variable_and_key() {
    let output = tokio::time::timeout(
        Duration::from_secs(30),
        Command::new(env!("CARGO_BIN_EXE_discovery-server"))
            .args(["--port", "0", "--bind", "127.0.0.1", "--log-format", "text"])
            .env("EUREKA_SERVER_RENEWALPERCENTTHRESHOLD", "3")
            .output(),
    )
    .await
    .unwrap()
    .unwrap();
    assert_eq!(output.status.code(), Some(2));
    let log = String::from_utf8_lossy(&output.stdout);
    assert!(
        log.contains("environment variable EUREKA_SERVER_RENEWALPERCENTTHRESHOLD")
            && log.contains("eureka.server.renewal-percent-threshold"),
        "{log}"
    );
}
