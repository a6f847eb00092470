//! Hostile input against the real HTTP stack (a server on 127.0.0.1:0):
//! every request is answered within a time budget, limits answer a 4xx JSON
//! error and are counted, and git credentials never leave the process.
//!
//! The server runs on its own thread and runtime, so that a request that
//! never finishes (what these tests guard against) makes the client's
//! deadline fail the test instead of hanging the test's runtime.
#![allow(clippy::unwrap_used)]

mod support;

use std::io::Write;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use config_server::Settings;
use reqwest::StatusCode;
use serde_json::Value;
use support::Repo;
use tokio::sync::oneshot;

/// A server on 127.0.0.1:0 on its own thread and runtime; stopped
/// (gracefully) on drop.
struct TestServer {
    base: String,
    state: config_server::http::AppState,
    stop: Option<oneshot::Sender<()>>,
    _mirror: Option<tempfile::TempDir>,
}

impl TestServer {
    async fn start(settings: Settings, mirror: Option<tempfile::TempDir>) -> Self {
        let (ready_tx, ready_rx) = oneshot::channel();
        let (stop, stopped) = oneshot::channel::<()>();
        std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async move {
                let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
                let base = format!("http://{}", listener.local_addr().unwrap());
                let running = config_server::start(settings).await.unwrap();
                let _ = ready_tx.send((base, running.state.clone()));
                let _ = running
                    .serve(listener, async move {
                        let _ = stopped.await;
                    })
                    .await;
            });
        });
        let (base, state) = tokio::time::timeout(Duration::from_secs(30), ready_rx)
            .await
            .expect("server started within 30 s")
            .expect("server thread started");
        Self {
            base,
            state,
            stop: Some(stop),
            _mirror: mirror,
        }
    }

    fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    /// GETs `path` within the budget and expects a JSON success.
    async fn json(&self, path: &str) -> Value {
        let resp = within_budget(client().get(self.url(path))).await;
        assert!(resp.status().is_success(), "{path}: {}", resp.status());
        resp.json().await.unwrap()
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

/// What any single hostile request may take, debug build included.
const BUDGET: Duration = Duration::from_secs(3);

/// A client that opens a connection per request: the server closes a
/// connection whose body it refused without reading, so it is not reused.
fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .pool_max_idle_per_host(0)
        .build()
        .unwrap()
}

/// Sends `req` and fails the test if no answer arrives within [`BUDGET`].
async fn within_budget(req: reqwest::RequestBuilder) -> reqwest::Response {
    tokio::time::timeout(BUDGET, req.send())
        .await
        .unwrap_or_else(|_| panic!("no answer within {BUDGET:?}"))
        .unwrap()
}

/// The JSON error body of a refused request, checked for our shape.
async fn json_error(resp: reqwest::Response, status: StatusCode) -> Value {
    assert_eq!(resp.status(), status);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["status"], status.as_u16());
    assert!(body["message"].is_string(), "{body}");
    body
}

/// Expects a 400 JSON error whose message names `setting`.
async fn refused_naming_setting(resp: reqwest::Response, setting: &str) {
    let err = json_error(resp, StatusCode::BAD_REQUEST).await;
    let message = err["message"].as_str().unwrap();
    assert!(message.contains(setting), "{err}");
}

/// GETs `path` and expects a 400 whose message names `setting`.
async fn refused_naming(server: &TestServer, path: &str, setting: &str) {
    let resp = within_budget(client().get(server.url(path))).await;
    refused_naming_setting(resp, setting).await;
}

/// `count` names `{prefix}0`, `{prefix}1`, ... joined with commas.
fn name_list(prefix: &str, count: usize) -> String {
    (0..count)
        .map(|i| format!("{prefix}{i}"))
        .collect::<Vec<_>>()
        .join(",")
}

/// The `propertySources[].name` of an environment.
fn source_names(env: &Value) -> Vec<&str> {
    env["propertySources"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["name"].as_str().unwrap())
        .collect()
}

/// The value of `config_server_limit_rejections_total{reason=...}`.
async fn limit_count(server: &TestServer, reason: &str) -> u64 {
    let text = reqwest::get(server.url("/actuator/prometheus"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let prefix = format!("config_server_limit_rejections_total{{reason=\"{reason}\"}} ");
    text.lines()
        .find_map(|l| l.strip_prefix(prefix.as_str()))
        .unwrap_or_else(|| panic!("no {prefix} in\n{text}"))
        .parse()
        .unwrap()
}

/// A server over a native directory holding `files`.
async fn native_server(
    files: &[(&str, &str)],
    tweak: impl FnOnce(&mut Settings),
) -> (TestServer, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    for (path, content) in files {
        std::fs::write(dir.path().join(path), content).unwrap();
    }
    let mut settings = Settings {
        native_dirs: vec![dir.path().into()],
        refresh_rate: 0,
        ..Settings::default()
    };
    tweak(&mut settings);
    (TestServer::start(settings, None).await, dir)
}

fn form_post(server: &TestServer, path: &str, body: Vec<u8>) -> reqwest::RequestBuilder {
    client()
        .post(server.url(path))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(body)
}

// Item 4: `/monitor` work is linear and bounded.

#[tokio::test]
async fn a_monitor_path_with_ten_thousand_dashes_is_refused_at_once() {
    let (server, _dir) = native_server(&[], |_| {}).await;
    let body = format!("path={}.yml", vec!["a"; 10_000].join("-"));
    let resp = within_budget(form_post(&server, "/monitor", body.into_bytes())).await;
    refused_naming_setting(resp, "max_monitor_names_per_path").await;
    assert_eq!(limit_count(&server, "monitor_names_per_path").await, 1);

    // Ordinary webhooks are answered as before, Spring's names included.
    let resp = within_budget(form_post(
        &server,
        "/monitor",
        b"path=foo-bar-dev.yml&path=application-dev.yml".to_vec(),
    ))
    .await;
    assert_eq!(resp.status(), StatusCode::OK);
    let names: Vec<String> = resp.json().await.unwrap();
    assert_eq!(
        names,
        ["foo:bar-dev", "foo-bar:dev", "foo-bar-dev", "*:dev"]
    );
}

#[tokio::test]
async fn large_monitor_bodies_are_refused_and_health_stays_responsive() {
    let (server, _dir) = native_server(&[], |_| {}).await;
    // Two concurrent ~2 MB bodies of short paths (beyond the body bound),
    // then health.
    let big = format!("path={}", "a-b.yml&path=".repeat(150_000)).into_bytes();
    let (a, b) = tokio::join!(
        within_budget(form_post(&server, "/monitor", big.clone())),
        within_budget(form_post(&server, "/monitor", big)),
    );
    json_error(a, StatusCode::PAYLOAD_TOO_LARGE).await;
    json_error(b, StatusCode::PAYLOAD_TOO_LARGE).await;
    let health = within_budget(client().get(server.url("/actuator/health"))).await;
    assert_eq!(health.status(), StatusCode::OK);
    assert_eq!(limit_count(&server, "body_too_large").await, 2);

    // Within the body bound but naming too many paths.
    let many = format!("path={}", "x.yml&path=".repeat(2000)).into_bytes();
    let resp = within_budget(form_post(&server, "/monitor", many)).await;
    refused_naming_setting(resp, "max_monitor_paths").await;
    assert_eq!(limit_count(&server, "monitor_paths").await, 1);
}

// Item 5: placeholder cycles and blow-ups answer an error within a bound.

const CYCLE: &str = "a: \"${a}${a}\"\nb: plain\n";

#[tokio::test]
async fn a_placeholder_cycle_is_a_400_in_every_resolving_view() {
    let (server, _dir) = native_server(&[("cyc.yml", CYCLE)], |_| {}).await;
    for path in [
        "/cyc-default.yml",
        "/cyc-default.properties",
        "/cyc-default.json",
        "/cyc/default?resolvePlaceholders=true",
    ] {
        let resp = within_budget(client().get(server.url(path))).await;
        let err = json_error(resp, StatusCode::BAD_REQUEST).await;
        assert_eq!(
            err["message"], "Circular placeholder reference 'a' in property definitions",
            "{path}"
        );
    }
    assert_eq!(limit_count(&server, "placeholder_cycle").await, 4);
    // Without resolution the raw value is served, as Spring does.
    let env = server.json("/cyc/default").await;
    assert_eq!(env["propertySources"][0]["source"]["a"], "${a}${a}");
    let raw =
        within_budget(client().get(server.url("/cyc-default.yml?resolvePlaceholders=false"))).await;
    assert_eq!(raw.status(), StatusCode::OK);
}

#[tokio::test]
async fn exponential_placeholders_without_a_cycle_stop_at_the_output_bound() {
    // k0: x, k1: ${k0}${k0}, ..., k40: 2^40 bytes if expanded.
    let mut yaml = String::from("k0: x\n");
    for i in 1..=40 {
        yaml.push_str(&format!("k{i}: \"${{k{0}}}${{k{0}}}\"\n", i - 1));
    }
    let (server, _dir) = native_server(&[("boom.yml", &yaml)], |_| {}).await;
    refused_naming(&server, "/boom-default.yml", "max_placeholder_").await;
}

// Item 7: list lengths and work per request are capped.

#[tokio::test]
async fn thousands_of_applications_and_profiles_are_refused_at_once() {
    let (server, _dir) = native_server(&[("application.yml", "a: 1\n")], |_| {}).await;
    // As many as fit in the 32 KiB request head the server accepts (a
    // longer URL is refused earlier, with 431).
    let path = format!("/{}/{}", name_list("app", 2000), name_list("p", 2000));
    refused_naming(&server, &path, "max_applications_per_request").await;
    let path = format!("/foo/{}", name_list("p", 33));
    refused_naming(&server, &path, "max_profiles_per_request").await;
    let path = format!("/foo-{}.yml", name_list("p", 33));
    refused_naming(&server, &path, "max_profiles_per_request").await;
    assert_eq!(limit_count(&server, "applications").await, 1);
    assert_eq!(limit_count(&server, "profiles").await, 2);
    // At the bounds, answered.
    let path = format!("/{}/{}", name_list("app", 16), name_list("p", 32));
    let env = server.json(&path).await;
    assert_eq!(env["propertySources"][0]["source"]["a"], 1);
}

#[tokio::test]
async fn search_paths_that_multiply_lookups_are_capped() {
    let (server, _dir) = native_server(&[("application.yml", "a: 1\n")], |s| {
        s.search_paths = vec!["{application}/{profile}".into()];
    })
    .await;
    let path = format!("/{}/{}", name_list("app", 16), name_list("p", 32));
    refused_naming(&server, &path, "max_file_lookups_per_request").await;
    assert_eq!(limit_count(&server, "file_lookups").await, 1);
    let env = server.json("/foo/dev").await;
    assert_eq!(env["propertySources"][0]["source"]["a"], 1);
}

#[tokio::test]
async fn encrypt_and_decrypt_bodies_are_capped() {
    let (server, _dir) = native_server(&[], |s| s.encrypt_key = Some("k3y".into())).await;
    let client = client();
    for path in ["/encrypt", "/decrypt", "/encrypt/foo/dev"] {
        let req = client
            .post(server.url(path))
            .header("content-type", "text/plain")
            .body(vec![b'a'; 100 * 1024]);
        json_error(within_budget(req).await, StatusCode::PAYLOAD_TOO_LARGE).await;
    }
    let ok = client
        .post(server.url("/encrypt"))
        .header("content-type", "text/plain")
        .body("hello");
    assert_eq!(within_budget(ok).await.status(), StatusCode::OK);
    assert_eq!(limit_count(&server, "body_too_large").await, 3);
}

// Item 6: git credentials are never shown.

/// Every line the process logs, for the credential test.
fn captured_logs() -> Arc<Mutex<Vec<u8>>> {
    static LOGS: OnceLock<Arc<Mutex<Vec<u8>>>> = OnceLock::new();
    LOGS.get_or_init(|| {
        let logs = Arc::new(Mutex::new(Vec::new()));
        let sink = logs.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_max_level(tracing::Level::DEBUG)
            .with_ansi(false)
            .with_writer(move || LogWriter(sink.clone()))
            .finish();
        tracing::subscriber::set_global_default(subscriber).unwrap();
        logs
    })
    .clone()
}

struct LogWriter(Arc<Mutex<Vec<u8>>>);

impl Write for LogWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

const SECRET_URI: &str = "https://alice:TOPSECRET@127.0.0.1:1/cfg.git";
const SHOWN_URI: &str = "https://127.0.0.1:1/cfg.git";

fn assert_no_credentials(what: &str, text: &str) {
    assert!(
        !text.contains("TOPSECRET") && !text.contains("alice:"),
        "{what} shows the credentials: {text}"
    );
}

#[tokio::test]
async fn git_credentials_never_appear_in_answers_or_logs() {
    let logs = captured_logs();
    let repo = Repo::new();
    repo.write("foo.yml", "a: \"${b}\"\nb: 1\n")
        .write("application.properties", "c=2\n")
        .write("notes.txt", "a is ${a}\n");
    repo.commit("init");
    // A mirror whose remote carries credentials and cannot be reached: the
    // server boots from the mirror and health reports the failed fetch.
    let mirror = tempfile::tempdir().unwrap();
    let mirror_dir = mirror.path().join("mirror.git");
    let clone = std::process::Command::new("git")
        .args(["clone", "--mirror", "--quiet", &repo.uri()])
        .arg(&mirror_dir)
        .status()
        .unwrap();
    assert!(clone.success());
    let set_url = std::process::Command::new("git")
        .arg("-C")
        .arg(&mirror_dir)
        .args(["remote", "set-url", "origin", SECRET_URI])
        .status()
        .unwrap();
    assert!(set_url.success());
    let settings = Settings {
        git_uri: Some(SECRET_URI.into()),
        mirror_dir: Some(mirror_dir),
        refresh_rate: 0,
        username: Some("user".into()),
        password: Some("pass".into()),
        ..Settings::default()
    };
    let server = TestServer::start(settings, Some(mirror)).await;
    let client = client();

    let health: Value = within_budget(client.get(server.url("/actuator/health")))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(health["components"]["repository"]["repository"], SHOWN_URI);
    assert_eq!(health["components"]["repository"]["status"], "DOWN");
    assert_no_credentials("health", &health.to_string());

    let env: Value = within_budget(
        client
            .get(server.url("/foo/dev"))
            .basic_auth("user", Some("pass")),
    )
    .await
    .json()
    .await
    .unwrap();
    assert_eq!(
        source_names(&env),
        [
            format!("{SHOWN_URI}/foo.yml"),
            format!("{SHOWN_URI}/application.properties")
        ]
    );
    for path in [
        "/foo/dev",
        "/foo/dev/main",
        "/foo/dev?resolvePlaceholders=true",
        "/foo-dev.yml",
        "/foo-dev.properties",
        "/foo-dev.json",
        "/main/foo-dev.yml",
        "/foo/dev/main/notes.txt",
        "/foo/dev/nosuchlabel",
        "/actuator/prometheus",
    ] {
        let resp = within_budget(
            client
                .get(server.url(path))
                .basic_auth("user", Some("pass")),
        )
        .await;
        let text = resp.text().await.unwrap();
        assert_no_credentials(path, &text);
    }
    // A refresh against the unreachable remote logs its failure.
    let _ = server.state.envs.refresh().await;
    drop(server);
    let logs = String::from_utf8_lossy(&logs.lock().unwrap()).into_owned();
    for line in logs.lines() {
        assert_no_credentials("a log line", line);
    }
    assert!(
        logs.contains(SHOWN_URI) || logs.contains("127.0.0.1:1"),
        "{logs}"
    );
}

#[tokio::test]
async fn limits_from_settings_are_applied_at_start() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("foo.yml"), "a: 1\n").unwrap();
    let settings = Settings {
        native_dirs: vec![dir.path().into()],
        request_limits: config_server::settings::RequestLimits {
            max_profiles_per_request: 2,
            max_monitor_body_bytes: 64,
            ..Default::default()
        },
        ..Settings::default()
    };
    let running = config_server::start(settings).await.unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let serve = tokio::spawn(running.serve(listener, async move {
        let _ = rx.await;
    }));
    let client = client();
    let ok = within_budget(client.get(format!("{base}/foo/a,b"))).await;
    assert_eq!(ok.status(), StatusCode::OK);
    let refused = within_budget(client.get(format!("{base}/foo/a,b,c"))).await;
    json_error(refused, StatusCode::BAD_REQUEST).await;
    let big = within_budget(
        client
            .post(format!("{base}/monitor"))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(vec![b'a'; 65]),
    )
    .await;
    json_error(big, StatusCode::PAYLOAD_TOO_LARGE).await;
    tx.send(()).unwrap();
    serve.await.unwrap().unwrap();
}
