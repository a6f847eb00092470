//! The `api-gateway` binary: flags, settings file, errors at start.

mod support;

use std::process::{Command, Stdio};
use std::time::Duration;

use axum::http::StatusCode;
use support::{Child, Upstream, eventually, free_port, get};

const BIN: &str = env!("CARGO_BIN_EXE_api-gateway");

/// Starts the binary on free ports with `config` (after `extra_args`),
/// its standard output to `stdout`; returns it and its proxy port once its
/// admin port answers.
async fn start_binary(
    config: &std::path::Path,
    extra_args: &[&str],
    env: &[(&str, &str)],
    stdout: Stdio,
) -> (Child, u16) {
    let (port, admin) = (free_port(), free_port());
    let child = Child(
        Command::new(BIN)
            .args([
                "--port",
                &port.to_string(),
                "--admin-port",
                &admin.to_string(),
            ])
            .args(["--drain-timeout", "1s"])
            .args(extra_args)
            .arg("--config")
            .arg(config)
            .envs(env.iter().copied())
            .stdout(stdout)
            .stderr(Stdio::null())
            .spawn()
            .expect("binary starts"),
    );
    let health = format!("http://127.0.0.1:{admin}/actuator/health");
    eventually(Duration::from_secs(10), "the admin port", || async {
        support::client().get(&health).send().await.is_ok()
    })
    .await;
    (child, port)
}

#[tokio::test]
async fn binary_serves_routes_from_the_config_file_on_the_flag_ports() {
    let up = Upstream::start().await;
    let dir = tempfile::tempdir().expect("temp dir");
    let file = dir.path().join("application.yml");
    std::fs::write(
        &file,
        format!("server.address: 127.0.0.1\nspring.cloud.gateway.routes:\n  - id: a\n    uri: http://{}\n    predicates: [Path=/a/**]\n", up.addr),
    )
    .expect("write config");
    let (_child, port) = start_binary(&file, &["--log-format", "json"], &[], Stdio::null()).await;
    let (status, _, echo) = get(&format!("http://127.0.0.1:{port}/a/x")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(echo["path"], "/a/x");
}

#[test]
fn binary_refuses_a_bad_route_naming_file_route_and_reason() {
    let dir = tempfile::tempdir().expect("temp dir");
    let file = dir.path().join("application.yml");
    std::fs::write(&file, "spring.cloud.gateway.routes:\n  - id: broken\n    uri: http://x\n    filters: ['AddRequestHeader=X-Eval, #{T(java.lang.Runtime).getRuntime()}']\n").expect("write config");
    let out = Command::new(BIN)
        .args([
            "--port",
            "0",
            "--admin-port",
            "0",
            "--log-format",
            "text",
            "--config",
        ])
        .arg(&file)
        .output()
        .expect("binary runs");
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains(&file.display().to_string()), "{stderr}");
    assert!(stderr.contains("route `broken`"), "{stderr}");
    assert!(stderr.contains("CVE-2022-22947"), "{stderr}");
}

#[tokio::test]
async fn the_access_log_writes_reactor_nettys_line_per_request() {
    let up = Upstream::start().await;
    let dir = tempfile::tempdir().expect("temp dir");
    let file = dir.path().join("application.yml");
    // Spelled as SCG users pass the system property.
    std::fs::write(
        &file,
        format!("reactor.netty.http.server.accessLogEnabled: true\nspring.cloud.gateway.routes:\n  - id: a\n    uri: http://{}\n    predicates: [Path=/a/**]\n", up.addr),
    )
    .expect("write config");
    let log = dir.path().join("out.log");
    let (_child, port) = start_binary(
        &file,
        &["--log-format", "text"],
        &[("RUST_LOG", "warn,reactor.netty.http.server.AccessLog=info")],
        std::fs::File::create(&log).expect("log file").into(),
    )
    .await;
    let (status, _, _) = get(&format!("http://127.0.0.1:{port}/a/x?q=1")).await;
    assert_eq!(status, StatusCode::OK);
    let (status, _, _) = get(&format!("http://127.0.0.1:{port}/none")).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let read = || std::fs::read_to_string(&log).unwrap_or_default();
    eventually(Duration::from_secs(10), "two access log lines", || async {
        read().lines().filter(|l| l.contains("AccessLog")).count() == 2
    })
    .await;
    let text = read();
    let lines: Vec<&str> = text.lines().filter(|l| l.contains("AccessLog")).collect();
    let line =
        request_and_status(lines[0]).unwrap_or_else(|| panic!("not Reactor Netty's form: {text}"));
    assert_eq!(line, "\"GET /a/x?q=1 HTTP/1.1\" 200");
    assert!(lines[1].contains("\"GET /none HTTP/1.1\" 404 "), "{text}");
    assert_eq!(text.lines().count(), 2, "nothing else at warn: {text}");
}

/// The `"request" status` part of a line `ip:port - - [dd/Mon/yyyy:hh:mm:ss
/// +0000] "request" status length N ms`, when the line has that form.
fn request_and_status(line: &str) -> Option<String> {
    let re = regex::Regex::new(
        r#"127\.0\.0\.1:\d+ - - \[\d{2}/[A-Z][a-z]{2}/\d{4}:\d{2}:\d{2}:\d{2} \+0000\] (".*" \d{3}) \d+ \d+ ms$"#,
    )
    .ok()?;
    let caps = re.captures(line)?;
    Some(caps.get(1)?.as_str().to_owned())
}
