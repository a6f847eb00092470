//! Shared by the integration tests: a server on a loopback port that stops
//! when dropped, polling with a deadline, an instance to register, HTTP
//! shortcuts, and the interop venv's Python with the step lines its client
//! scripts print.

#![allow(dead_code, unused_imports, clippy::unwrap_used)]

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use cloud_protocol::eureka::{InstanceInfo, InstanceStatus, LeaseInfo, PortWrapper};
use discovery_server::{Server, ServerConfig};
use tokio::io::{AsyncBufReadExt, AsyncRead, BufReader, Lines};
use tokio::net::TcpListener;
use tokio::process::ChildStdout;
use tokio::sync::oneshot;

/// A server running in-process on `127.0.0.1:0`.
pub(crate) struct Running {
    pub(crate) server: Server,
    pub(crate) addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<std::io::Result<()>>>,
}

impl Running {
    pub(crate) async fn start(config: ServerConfig) -> Running {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        Running::serve(listener, config)
    }

    /// Serves on a listener bound beforehand, so that its address can be
    /// given to peers before it starts.
    pub(crate) fn serve(listener: TcpListener, config: ServerConfig) -> Running {
        let addr = listener.local_addr().unwrap();
        let server = Server::new(config).unwrap();
        let (tx, rx) = oneshot::channel::<()>();
        let task = tokio::spawn(server.clone().serve(listener, async {
            let _ = rx.await;
        }));
        Running {
            server,
            addr,
            stop: Some(tx),
            task: Some(task),
        }
    }

    /// `http://127.0.0.1:PORT/eureka/`
    pub(crate) fn eureka_url(&self) -> String {
        format!("http://{}/eureka/", self.addr)
    }

    pub(crate) fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }

    pub(crate) async fn stop(mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        if let Some(task) = self.task.take() {
            task.await.unwrap().unwrap();
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
    }
}

/// `http://ADDR/eureka/` for a bound listener.
pub(crate) fn eureka_url_of(listener: &TcpListener) -> String {
    format!("http://{}/eureka/", listener.local_addr().unwrap())
}

/// An `UP` instance with a 30 s renewal interval and a 90 s lease.
pub(crate) fn instance(app: &str, id: &str) -> InstanceInfo {
    InstanceInfo {
        instance_id: id.into(),
        host_name: format!("{id}.local"),
        app: app.into(),
        ip_addr: "10.1.2.3".into(),
        status: InstanceStatus::Up,
        port: PortWrapper::enabled(8080),
        vip_address: Some(app.to_lowercase()),
        lease_info: Some(LeaseInfo {
            renewal_interval_in_secs: 30,
            duration_in_secs: 90,
            ..LeaseInfo::default()
        }),
        ..InstanceInfo::default()
    }
}

/// Sends `request` and checks the response status.
pub(crate) async fn send_expecting(
    request: reqwest::RequestBuilder,
    status: u16,
) -> reqwest::Response {
    let response = request.send().await.unwrap();
    assert_eq!(response.status(), status, "{}", response.url());
    response
}

/// The body of `GET url` as text.
pub(crate) async fn get_text(url: impl reqwest::IntoUrl) -> String {
    reqwest::get(url).await.unwrap().text().await.unwrap()
}

/// Where `scripts/prereqs` put an interop tool: `$env` when set, else
/// `<workspace>/target/<under_target>`.
fn prereq_dir(env: &str, under_target: &str) -> PathBuf {
    std::env::var_os(env).map(PathBuf::from).unwrap_or_else(|| {
        PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("../target")
            .join(under_target)
    })
}

/// The interop venv's Python (`$INTEROP_VENV`, else
/// `<workspace>/target/interop-venv`).
pub(crate) fn interop_python() -> PathBuf {
    let venv = prereq_dir("INTEROP_VENV", "interop-venv");
    let python = venv.join("bin/python");
    assert!(
        python.exists(),
        "no interop venv at {}: run scripts/prereqs",
        venv.display()
    );
    python
}

/// The `node_modules` holding eureka-js-client (`$INTEROP_NODE_MODULES`,
/// else `<workspace>/target/interop-node/node_modules`).
pub(crate) fn interop_node_modules() -> PathBuf {
    let dir = prereq_dir("INTEROP_NODE_MODULES", "interop-node/node_modules");
    assert!(
        dir.join("eureka-js-client").is_dir(),
        "no eureka-js-client under {}: run scripts/prereqs",
        dir.display()
    );
    dir
}

/// A driven interop client: the process (killed when dropped), its stdin
/// (a line lets it take its next step) and the steps it prints.
pub(crate) struct Driven {
    pub(crate) child: tokio::process::Child,
    pub(crate) stdin: tokio::process::ChildStdin,
    pub(crate) steps: Steps<tokio::process::ChildStdout>,
}

/// Starts `tests/interop/<script>` with the interop venv's Python and `args`.
pub(crate) fn drive_python(script: &str, args: &[String]) -> Driven {
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/interop")
        .join(script);
    let mut child = tokio::process::Command::new(interop_python())
        .arg(&script)
        .args(args)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::inherit())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let stdin = child.stdin.take().unwrap();
    let steps = Steps::new(child.stdout.take().unwrap());
    Driven {
        child,
        stdin,
        steps,
    }
}

pub(crate) use cloud_runtime::testing::eventually;

/// The `STEP <rest>` lines that a driven client script prints on stdout;
/// any other output (client libraries log there too) is skipped.
pub(crate) struct Steps<R> {
    lines: Lines<BufReader<R>>,
}

impl<R: AsyncRead + Unpin> Steps<R> {
    pub(crate) fn new(stdout: R) -> Steps<R> {
        Steps {
            lines: BufReader::new(stdout).lines(),
        }
    }

    /// The text after `STEP ` of the next step line. Panics when `within`
    /// passes first or the process closes its stdout.
    pub(crate) async fn next(&mut self, within: Duration) -> String {
        let lines = &mut self.lines;
        tokio::time::timeout(within, async move {
            loop {
                let line = lines
                    .next_line()
                    .await
                    .unwrap()
                    .expect("client exited before its next step");
                if let Some(rest) = line.strip_prefix("STEP ") {
                    return rest.to_owned();
                }
            }
        })
        .await
        .expect("client step deadline")
    }

    /// Reads and drops the rest of the output, so that the process never
    /// blocks on a full pipe.
    pub(crate) async fn drain(mut self) {
        while let Ok(Some(_)) = self.lines.next_line().await {}
    }
}

#[path = "../../../interop/spring/spring_app.rs"]
mod spring_app;
#[allow(unused_imports)]
pub(crate) use spring_app::{JVM_START, SpringApp, within_scenario_deadline};

/// `GET url` with `Accept: application/json`: the status and the body as
/// JSON (`Null` when the body is empty or not JSON).
pub(crate) async fn get_json(url: &str) -> (u16, serde_json::Value) {
    let response = reqwest::Client::new()
        .get(url)
        .header("accept", "application/json")
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    let body = response.text().await.unwrap();
    (
        status,
        serde_json::from_str(&body).unwrap_or(serde_json::Value::Null),
    )
}

/// Eureka's JSON registration body for an `UP` instance of `app` at
/// `127.0.0.1:port` with a 1 s renewal interval and a 10 s lease.
pub(crate) fn instance_json(app: &str, id: &str, port: u16) -> serde_json::Value {
    serde_json::json!({"instance": {
        "instanceId": id,
        "hostName": "127.0.0.1",
        "app": app.to_uppercase(),
        "ipAddr": "127.0.0.1",
        "status": "UP",
        "overriddenStatus": "UNKNOWN",
        "port": {"$": port, "@enabled": "true"},
        "securePort": {"$": 443, "@enabled": "false"},
        "countryId": 1,
        "dataCenterInfo": {
            "@class": "com.netflix.appinfo.InstanceInfo$DefaultDataCenterInfo",
            "name": "MyOwn"
        },
        "leaseInfo": {"renewalIntervalInSecs": 1, "durationInSecs": 10},
        "metadata": {"zone": "z1"},
        "homePageUrl": format!("http://127.0.0.1:{port}/"),
        "statusPageUrl": format!("http://127.0.0.1:{port}/info"),
        "healthCheckUrl": format!("http://127.0.0.1:{port}/health"),
        "vipAddress": app.to_lowercase(),
        "secureVipAddress": app.to_lowercase(),
        "lastDirtyTimestamp": "1700000000000"
    }})
}

/// Registers `body` (see [`instance_json`]) under `app` at the Eureka base
/// URL `eureka` (`http://HOST:PORT/eureka/`); returns the status.
pub(crate) async fn register_json(eureka: &str, app: &str, body: &serde_json::Value) -> u16 {
    reqwest::Client::new()
        .post(format!("{eureka}apps/{app}"))
        .json(body)
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

#[path = "../../../interop/spring/differential.rs"]
pub(crate) mod differential;

/// Reads a `discovery-server` process's log lines until one carries the
/// listening address, in text (`addr=127.0.0.1:1234`) or JSON
/// (`"addr":"127.0.0.1:1234"`) form; then keeps draining the rest, so the
/// process never blocks on a full pipe.
pub(crate) async fn listening_addr(stdout: ChildStdout, within: Duration) -> SocketAddr {
    let mut lines = BufReader::new(stdout).lines();
    let addr = tokio::time::timeout(within, async {
        loop {
            let line = lines
                .next_line()
                .await
                .unwrap()
                .expect("binary exited before listening");
            let found = line
                .split("addr=")
                .nth(1)
                .and_then(|rest| rest.split_whitespace().next())
                .or_else(|| {
                    line.split("\"addr\":\"")
                        .nth(1)
                        .and_then(|rest| rest.split('"').next())
                });
            if let Some(addr) = found {
                return addr.parse::<SocketAddr>().unwrap();
            }
        }
    })
    .await
    .expect("binary never logged its address");
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    addr
}
