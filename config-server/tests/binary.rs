//! The `config-server` binary: flags and environment layering, serving, and
//! a graceful exit on SIGTERM. Also the library's shutdown ending open watch
//! streams.
#![allow(clippy::unwrap_used)]

use std::process::Stdio;
use std::time::Duration;

use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::time::timeout;

/// Reads the child's log lines until the "listening" one and returns the
/// port (the line carries `addr=127.0.0.1:PORT` or `"addr":"127.0.0.1:PORT"`).
async fn listening_port<R: tokio::io::AsyncBufRead + Unpin>(
    lines: &mut tokio::io::Lines<R>,
) -> u16 {
    timeout(Duration::from_secs(30), async {
        loop {
            let line = lines
                .next_line()
                .await
                .unwrap()
                .expect("exited before listening");
            if line.contains("config-server listening") {
                assert!(!line.contains("Some("), "log values are for people: {line}");
                let tail = line.rsplit("127.0.0.1:").next().unwrap();
                let digits: String = tail.chars().take_while(char::is_ascii_digit).collect();
                return digits.parse::<u16>().unwrap();
            }
        }
    })
    .await
    .expect("no listening line within 30 s")
}

/// Starts the binary with `args` and `envs` (logging at info on stdout) and
/// returns it, its port and its remaining log lines.
async fn start_binary(
    args: &[&std::ffi::OsStr],
    envs: &[(&str, &str)],
) -> (
    tokio::process::Child,
    u16,
    tokio::io::Lines<BufReader<tokio::process::ChildStdout>>,
) {
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_config-server"))
        .args(args)
        .envs(envs.iter().copied())
        .env("RUST_LOG", "info")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let port = listening_port(&mut lines).await;
    (child, port, lines)
}

/// Sends SIGTERM to `child`.
fn sigterm(child: &tokio::process::Child) {
    let pid = child.id().unwrap().to_string();
    let killed = std::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap();
    assert!(killed.success());
}

#[tokio::test]
async fn an_open_watch_stream_does_not_hold_the_binary_past_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("foo.yml"), "a: 1\n").unwrap();
    // A stream that stayed open would keep the process for 30 s (the
    // drain deadline and the connection drain); it must end at once.
    let (mut child, port, mut lines) = start_binary(
        &[
            "--port".as_ref(),
            "0".as_ref(),
            "--refresh-rate".as_ref(),
            "0".as_ref(),
            "--drain-timeout".as_ref(),
            "30s".as_ref(),
            "--native-dir".as_ref(),
            dir.path().as_os_str(),
        ],
        &[
            ("SERVER_ADDRESS", "127.0.0.1"),
            ("SERVER_DRAINTIMEOUT", "30s"),
        ],
    )
    .await;
    // Keep draining the log so the child never blocks on a full pipe.
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });

    let mut resp = reqwest::Client::new()
        .get(format!("http://127.0.0.1:{port}/watch/foo/default"))
        .header("accept", "text/event-stream")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let first = timeout(Duration::from_secs(10), resp.chunk())
        .await
        .expect("no first event within 10 s")
        .unwrap()
        .unwrap();
    assert!(String::from_utf8_lossy(&first).contains("event: environment"));

    sigterm(&child);
    let exit = timeout(Duration::from_secs(10), child.wait())
        .await
        .expect("no exit within 10 s of SIGTERM (the drain deadline is 30 s)")
        .unwrap();
    assert_eq!(exit.code(), Some(0), "{exit:?}");
    let rest = timeout(Duration::from_secs(5), async {
        while let Ok(Some(_)) = resp.chunk().await {}
    })
    .await;
    assert!(rest.is_ok(), "the stream was not closed");
}

#[tokio::test]
async fn without_a_repository_the_binary_fails_at_start_and_says_why() {
    let empty = tempfile::tempdir().unwrap();
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_config-server"))
        .args(["--port", "0", "--log-format", "text"])
        .current_dir(empty.path())
        .env("SERVER_ADDRESS", "127.0.0.1")
        .env("RUST_LOG", "info")
        .kill_on_drop(true)
        .output();
    let out = timeout(Duration::from_secs(30), out)
        .await
        .expect("no exit within 30 s")
        .unwrap();
    assert!(!out.status.success());
    let log = String::from_utf8_lossy(&out.stdout);
    assert!(log.contains("nothing to serve"), "{log}");
    assert!(log.contains("config-repo"), "{log}");
}

#[tokio::test]
async fn binary_serves_flags_and_env_and_exits_on_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("foo.yml"), "a: from-native-dir\n").unwrap();
    let (mut child, port, _lines) = start_binary(
        &[
            "--port".as_ref(),
            "0".as_ref(),
            "--refresh-rate".as_ref(),
            "0".as_ref(),
            "--native-dir".as_ref(),
            dir.path().as_os_str(),
        ],
        &[("CONFIG_SERVER_BIND", "127.0.0.1"), ("ENCRYPT_KEY", "k")],
    )
    .await;
    let base = format!("http://127.0.0.1:{port}");
    let env: Value = reqwest::get(format!("{base}/foo/dev"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        env["propertySources"][0]["source"]["a"],
        json!("from-native-dir")
    );
    let status: Value = reqwest::get(format!("{base}/encrypt/status"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(status["status"], json!("OK"), "ENCRYPT_KEY is read");

    sigterm(&child);
    let exit = timeout(Duration::from_secs(10), child.wait())
        .await
        .expect("no exit within 10 s of SIGTERM")
        .unwrap();
    assert!(exit.success(), "{exit:?}");
}

#[tokio::test]
async fn shutdown_ends_open_watch_streams_and_returns() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("foo.yml"), "a: 1\n").unwrap();
    let settings = config_server::Settings {
        native_dirs: vec![dir.path().into()],
        refresh_rate: 0,
        ..Default::default()
    };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(config_server::run(listener, settings, async move {
        let _ = rx.await;
    }));
    let resp = reqwest::Client::new()
        .get(format!("http://{addr}/watch/foo/default"))
        .header("accept", "text/event-stream")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    tx.send(()).unwrap();
    timeout(Duration::from_secs(10), server)
        .await
        .expect("server did not drain within 10 s")
        .unwrap()
        .unwrap();
    // The stream was closed by the server.
    let rest = timeout(Duration::from_secs(5), resp.bytes()).await.unwrap();
    assert!(rest.is_ok_and(|b| String::from_utf8_lossy(&b).contains("event: environment")));
}
