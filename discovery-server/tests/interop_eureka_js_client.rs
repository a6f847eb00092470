//! Interop: the real eureka-js-client (npm 4.5.0, unmodified) speaks JSON to
//! our server. It registers, renews, re-registers when its lease is lost,
//! discovers an application registered over HTTP (by app id and by VIP,
//! through its delta fetch or its full fetch), drops it from its cache once
//! cancelled, and deregisters on stop. The test checks the server side after
//! each step, once under `/eureka/apps/` with delta fetches, and once under
//! `/eureka/v2/apps/` (the client's default path) with full fetches, Basic
//! auth given as `user:pass@host`, and the port written as strings.

#![allow(clippy::unwrap_used)]

mod support;

use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use discovery_server::ServerConfig;
use discovery_server::config::BasicAuth;
use discovery_server::registry::Origin;
use serde_json::{Value, json};
use support::{Running, Steps, eventually, interop_node_modules, send_expecting};
use tokio::io::AsyncWriteExt;
use tokio::process::{ChildStdin, ChildStdout, Command};

/// Longest wait for any one step of the script.
const STEP_WITHIN: Duration = Duration::from_secs(30);
/// Longest wait for a server-side condition.
const CHECK_WITHIN: Duration = Duration::from_secs(15);

/// How one run configures the client.
struct Scenario {
    /// `eureka.servicePath`, also the prefix the test reads through.
    service_path: &'static str,
    /// The client's `shouldUseDelta`.
    use_delta: bool,
    /// `instance.instanceId`; without it the client (and Eureka) use the
    /// host name as the id.
    instance_id: Option<&'static str>,
    /// Basic auth the server demands; the client puts it in its host.
    credentials: Option<(&'static str, &'static str)>,
    /// The client sends `"port":{"$":"8080","@enabled":"true"}`.
    port_as_strings: bool,
}

const HOST_NAME: &str = "js-host.local";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn eureka_js_client_with_delta_fetches_under_eureka_apps() {
    run(Scenario {
        service_path: "/eureka/apps/",
        use_delta: true,
        instance_id: Some("js-host.local:jsapp:8080"),
        credentials: None,
        port_as_strings: false,
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn eureka_js_client_with_full_fetches_basic_auth_and_host_name_as_id_under_eureka_v2() {
    run(Scenario {
        service_path: "/eureka/v2/apps/",
        use_delta: false,
        instance_id: None,
        credentials: Some(("eureka", "s3cret")),
        port_as_strings: true,
    })
    .await;
}

async fn run(scenario: Scenario) {
    tokio::time::timeout(Duration::from_secs(90), drive(scenario))
        .await
        .expect("interop test deadline");
}

/// The node process, its stdin for `go` lines and its step lines.
struct Script {
    child: tokio::process::Child,
    stdin: ChildStdin,
    steps: Steps<ChildStdout>,
}

impl Script {
    fn spawn(settings: &Value) -> Script {
        let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/interop/js_client.js");
        let mut child = Command::new("node")
            .arg(&script)
            .arg(settings.to_string())
            .env("NODE_PATH", interop_node_modules())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .expect("node on PATH");
        let stdin = child.stdin.take().unwrap();
        let steps = Steps::new(child.stdout.take().unwrap());
        Script {
            child,
            stdin,
            steps,
        }
    }

    /// Waits for the step called `name` and returns its JSON.
    async fn step(&mut self, name: &str) -> Value {
        let line = self.steps.next(STEP_WITHIN).await;
        let (got, data) = line.split_once(' ').unwrap_or((&line, "{}"));
        assert_eq!(got, name, "script step: {line}");
        serde_json::from_str(data).unwrap()
    }

    async fn go(&mut self) {
        self.stdin.write_all(b"go\n").await.unwrap();
    }
}

/// An instance as a Java Eureka client would register it.
fn other_app() -> Value {
    json!({"instance": {
        "instanceId": "other-1",
        "hostName": "other.local",
        "app": "OTHERAPP",
        "ipAddr": "10.9.9.9",
        "status": "UP",
        "port": {"$": 7777, "@enabled": "true"},
        "securePort": {"$": 7443, "@enabled": "false"},
        "vipAddress": "otherapp.vip",
        "dataCenterInfo": {
            "@class": "com.netflix.appinfo.InstanceInfo$DefaultDataCenterInfo",
            "name": "MyOwn"
        },
        "leaseInfo": {"renewalIntervalInSecs": 30, "durationInSecs": 90}
    }})
}

/// The test's own HTTP calls, with the scenario's credentials.
#[derive(Clone, Copy)]
struct Api<'a> {
    http: &'a reqwest::Client,
    base: &'a str,
    credentials: Option<(&'static str, &'static str)>,
}

impl Api<'_> {
    fn request(&self, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        let request = self.http.request(method, format!("{}{path}", self.base));
        match self.credentials {
            Some((user, pass)) => request.basic_auth(user, Some(pass)),
            None => request,
        }
    }

    /// `GET` as JSON: the status and, when 200, the body.
    async fn get_json(&self, path: &str) -> (u16, Value) {
        get_json(self.request(reqwest::Method::GET, path)).await
    }
}

async fn get_json(request: reqwest::RequestBuilder) -> (u16, Value) {
    let response = request
        .header("Accept", "application/json")
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    let body = if status == 200 {
        response.json().await.unwrap()
    } else {
        Value::Null
    };
    (status, body)
}

fn last_renewal(instance: &Value) -> i64 {
    instance["instance"]["leaseInfo"]["lastRenewalTimestamp"]
        .as_i64()
        .unwrap()
}

async fn drive(scenario: Scenario) {
    let config = ServerConfig {
        basic_auth: scenario.credentials.map(|(username, password)| BasicAuth {
            username: username.into(),
            password: password.into(),
        }),
        ..ServerConfig::default()
    };
    let running = Running::start(config).await;
    let node = running.server.node().clone();
    let http = reqwest::Client::new();
    let base = running.url(scenario.service_path);
    let api = Api {
        http: &http,
        base: &base,
        credentials: scenario.credentials,
    };
    let id = scenario.instance_id.unwrap_or(HOST_NAME);
    let mine = format!("JSAPP/{id}");

    if scenario.credentials.is_some() {
        let (status, _) = get_json(http.get(&base)).await;
        assert_eq!(status, 401, "the API demands credentials");
    }
    let host = match scenario.credentials {
        Some((user, pass)) => format!("{user}:{pass}@127.0.0.1"),
        None => "127.0.0.1".to_owned(),
    };
    let mut script = Script::spawn(&json!({
        "host": host,
        "port": running.addr.port(),
        "servicePath": scenario.service_path,
        "shouldUseDelta": scenario.use_delta,
        "instanceId": scenario.instance_id,
        "portAsStrings": scenario.port_as_strings,
    }));

    // 1. Registered (its first full fetch done), as it described itself.
    let started = script.step("started").await;
    assert_eq!(started["instanceId"], id);
    assert_eq!(started["seen"]["full"], 1);
    assert_eq!(started["seen"]["registrations"], 1);
    let (status, registered) = api.get_json(&mine).await;
    assert_eq!(status, 200, "{mine} registered");
    let instance = &registered["instance"];
    assert_eq!(instance["instanceId"], id);
    assert_eq!(instance["app"], "JSAPP");
    assert_eq!(instance["hostName"], HOST_NAME);
    assert_eq!(instance["status"], "UP");
    assert_eq!(instance["port"], json!({"$": 8080, "@enabled": "true"}));
    assert_eq!(instance["vipAddress"], "jsapp.vip");
    assert_eq!(instance["metadata"]["team"], "interop-js");
    assert_eq!(instance["dataCenterInfo"]["name"], "MyOwn");

    // 2. Heartbeats (every 200 ms) move the server's lastRenewalTimestamp.
    let first_renewal = last_renewal(&registered);
    eventually(CHECK_WITHIN, "a heartbeat from eureka-js-client", || {
        let mine = &mine;
        async move {
            let (status, now) = api.get_json(mine).await;
            status == 200 && last_renewal(&now) > first_renewal
        }
    })
    .await;

    // 3. A lost lease: the next heartbeat gets 404 and the client registers
    // again on its own.
    assert!(node.cancel("JSAPP", id, Origin::Local).is_some());
    eventually(CHECK_WITHIN, "eureka-js-client to re-register", || {
        let back = node.registry().instance("JSAPP", id).is_some();
        async move { back }
    })
    .await;

    // 4. Another application registers over HTTP, after the client's only
    // full fetch.
    let register = api
        .request(reqwest::Method::POST, "OTHERAPP")
        .json(&other_app());
    send_expecting(register, 204).await;
    script.go().await;

    let discovered = script.step("discovered").await;
    for (how, found) in [
        ("app id", &discovered["byApp"]),
        ("vip", &discovered["byVip"]),
    ] {
        let found = found.as_array().unwrap();
        assert_eq!(found.len(), 1, "OTHERAPP by {how}: {found:?}");
        let other = &found[0];
        assert_eq!(other["instanceId"], "other-1", "by {how}");
        assert_eq!(other["app"], "OTHERAPP");
        assert_eq!(other["ipAddr"], "10.9.9.9");
        assert_eq!(other["status"], "UP");
        assert_eq!(other["port"], json!({"$": 7777, "@enabled": "true"}));
        assert_eq!(other["vipAddress"], "otherapp.vip");
    }
    assert_eq!(discovered["self"][0]["instanceId"], id);
    let seen = &discovered["seen"];
    assert!(
        seen["registrations"].as_u64().unwrap() >= 2,
        "re-registered after the 404: {seen}"
    );
    if scenario.use_delta {
        // Only one full fetch ever, before OTHERAPP existed: the delta
        // brought it.
        assert_eq!(seen["full"], 1, "{seen}");
        assert!(seen["delta"].as_u64().unwrap() >= 1, "{seen}");
    } else {
        assert_eq!(seen["delta"], 0, "{seen}");
        assert!(seen["full"].as_u64().unwrap() >= 2, "{seen}");
    }

    // 5. OTHERAPP cancels: the client's cache drops it.
    let cancel = api.request(reqwest::Method::DELETE, "OTHERAPP/other-1");
    send_expecting(cancel, 200).await;
    script.go().await;
    let forgotten = script.step("forgotten").await;
    assert!(forgotten["seen"]["heartbeats"].as_u64().unwrap() >= 1);
    script.go().await;

    // 6. stop() deregisters.
    script.step("stopped").await;
    assert!(node.registry().instance("JSAPP", id).is_none());
    let (status, _) = api.get_json(&mine).await;
    assert_eq!(status, 404);
    let (_, delta) = api.get_json("delta").await;
    let deleted = delta["applications"]["application"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|app| app["name"] == "JSAPP")
        .flat_map(|app| app["instance"].as_array().unwrap())
        .any(|i| i["instanceId"] == id && i["actionType"] == "DELETED");
    assert!(deleted, "JSAPP DELETED in the delta: {delta}");

    let status = tokio::time::timeout(Duration::from_secs(10), script.child.wait())
        .await
        .unwrap()
        .unwrap();
    assert!(status.success(), "node exited with {status}");
    running.stop().await;
}
