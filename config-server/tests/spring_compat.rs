//! Behaviour checked against Spring Cloud Config's own controllers and
//! tests (`EnvironmentController`, `EncryptionController`,
//! `PropertyPathEndpoint`, `JGitEnvironmentRepository`): status codes, the
//! error body, labels, versions, property source names, file precedence,
//! content negotiation, encrypt/decrypt bodies and `/monitor` answers. Real
//! git repositories, the server on port 0.
#![allow(clippy::unwrap_used)]

mod support;

use config_server::crypto::{DEFAULT_SALT, TextEncryptor};
use reqwest::StatusCode;
use reqwest::header::{ACCEPT, CONTENT_TYPE};
use serde_json::{Value, json};
use support::{Repo, TestServer, git_settings};

const KEY: &str = "compat-key";

/// `foo` in every format plus profile files, `main` and `release/1`.
fn repo() -> (Repo, String) {
    let repo = Repo::new();
    repo.write("application.yml", "shared: app\nwho: application\n")
        .write("application-default.yml", "flavour: app-default\n")
        .write("foo.properties", "a=properties\nref=${b}\n")
        .write("foo.yml", "a: yml\nb: yml\nc: yml\nwho: foo\n")
        .write("foo.yaml", "a: yaml\nb: yaml\nc: yaml\nd: yaml\n")
        .write("foo-default.yml", "flavour: foo-default\n")
        .write("foo-dev.yml", "who: foo-dev\n");
    let main = repo.commit("config");
    repo.git(&["checkout", "-q", "-b", "release/1"]);
    repo.write("foo-dev.yml", "who: release\n");
    repo.commit("release");
    repo.git(&["checkout", "-q", "main"]);
    (repo, main)
}

async fn server(repo: &Repo) -> TestServer {
    let mut settings = git_settings(repo);
    settings.encrypt_key = Some(KEY.into());
    TestServer::start(settings).await
}

fn names(env: &Value) -> Vec<String> {
    env["propertySources"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["name"].as_str().unwrap().to_string())
        .collect()
}

fn merged(env: &Value, key: &str) -> Value {
    env["propertySources"]
        .as_array()
        .unwrap()
        .iter()
        .find_map(|s| s["source"].get(key).cloned())
        .unwrap_or(Value::Null)
}

#[tokio::test]
async fn environment_carries_default_label_commit_and_uri_based_source_names() {
    let (repo, main) = repo();
    let s = server(&repo).await;
    let env = s.json("/foo/default").await;
    // Spring's JGit repository answers the default label it used.
    assert_eq!(env["label"], json!("main"));
    assert_eq!(env["version"], json!(main));
    assert_eq!(env["state"], Value::Null);
    assert_eq!(env["profiles"], json!(["default"]));
    // `default` is a real profile: `*-default` files apply.
    let uri = repo.uri();
    assert_eq!(
        names(&env),
        [
            format!("{uri}/foo-default.yml"),
            format!("{uri}/application-default.yml"),
            format!("{uri}/foo.properties"),
            format!("{uri}/foo.yml"),
            format!("{uri}/foo.yaml"),
            format!("{uri}/application.yml"),
        ]
    );
    assert_eq!(merged(&env, "flavour"), json!("foo-default"));
    // Another profile alone leaves the `default` files out.
    let dev = s.json("/foo/dev").await;
    assert_eq!(merged(&dev, "flavour"), Value::Null);
    assert_eq!(merged(&dev, "who"), json!("foo-dev"));
    // `.properties` beats `.yml` beats `.yaml` in one location.
    assert_eq!(merged(&dev, "a"), json!("properties"));
    assert_eq!(merged(&dev, "b"), json!("yml"));
    assert_eq!(merged(&dev, "d"), json!("yaml"));
    // Placeholders stay for the client unless asked for.
    assert_eq!(merged(&dev, "ref"), json!("${b}"));
    let resolved = s.json("/foo/dev?resolvePlaceholders=true").await;
    assert_eq!(merged(&resolved, "ref"), json!("yml"));
    // A `(_)` label is answered with its `/` name.
    let release = s.json("/foo/dev/release(_)1").await;
    assert_eq!(release["label"], json!("release/1"));
    assert_eq!(merged(&release, "who"), json!("release"));
}

#[tokio::test]
async fn views_at_a_slashed_label_resolve_placeholders() {
    let (repo, _) = repo();
    let s = server(&repo).await;
    let text = reqwest::get(s.url("/release(_)1/foo-dev.properties"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(text.contains("who: release\n"), "{text}");
    assert!(text.contains("ref: yml\n"), "{text}");
    let raw = reqwest::get(s.url("/release(_)1/foo-dev.properties?resolvePlaceholders=false"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(raw.contains("ref: ${b}\n"), "{raw}");
}

#[tokio::test]
async fn unknown_label_is_a_404_with_spring_boots_error_body() {
    let (repo, _) = repo();
    let s = server(&repo).await;
    let resp = reqwest::get(s.url("/foo/dev/no-such-label")).await.unwrap();
    assert_eq!(resp.status(), StatusCode::NOT_FOUND);
    assert!(
        resp.headers()[CONTENT_TYPE]
            .to_str()
            .unwrap()
            .starts_with("application/json")
    );
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["status"], json!(404));
    assert_eq!(body["error"], json!("Not Found"));
    assert_eq!(body["path"], json!("/foo/dev/no-such-label"));
    let ts = body["timestamp"].as_str().unwrap();
    assert!(ts.len() == 29 && ts.ends_with("+00:00"), "{ts}");
    // Bad input is a 400 in the same shape.
    let body: Value = reqwest::get(s.url("/foo/..%2F..%2Fetc"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(body["status"], json!(400));
    assert_eq!(body["path"], json!("/foo/..%2F..%2Fetc"));
}

#[tokio::test]
async fn the_environment_is_json_only_like_springs_produces_mapping() {
    let (repo, _) = repo();
    let s = server(&repo).await;
    let client = reqwest::Client::new();
    let get = |path: &'static str, accept: &'static str| {
        client.get(s.url(path)).header(ACCEPT, accept).send()
    };
    for _ in 0..2 {
        // Twice: the second answer comes from the hot-path cache.
        assert_eq!(get("/foo/dev", "text/plain").await.unwrap().status(), 406);
        assert_eq!(
            get("/foo/dev", "application/json").await.unwrap().status(),
            200
        );
    }
    assert_eq!(
        get("/foo/dev", "text/plain, */*;q=0.1")
            .await
            .unwrap()
            .status(),
        200
    );
    let v2 = get(
        "/foo/dev",
        "application/vnd.spring-cloud.config-server.v2+json",
    )
    .await
    .unwrap();
    assert_eq!(v2.status(), 200);
    // The text views and plain files are text.
    let view = get("/foo-dev.properties", "text/plain").await.unwrap();
    assert_eq!(view.status(), 200);
    assert!(
        view.headers()[CONTENT_TYPE]
            .to_str()
            .unwrap()
            .starts_with("text/plain")
    );
}

#[tokio::test]
async fn encrypt_and_decrypt_read_bodies_like_springs_strip_form_data() {
    let (repo, _) = repo();
    let s = server(&repo).await;
    let enc = TextEncryptor::new(KEY, DEFAULT_SALT).unwrap();
    let client = reqwest::Client::new();
    let post = |path: &'static str, ct: &'static str, body: String| {
        client
            .post(s.url(path))
            .header(CONTENT_TYPE, ct)
            .body(body)
            .send()
    };
    // text/plain is taken as it is, a trailing '=' included.
    let c = post("/encrypt", "text/plain", "ab=".into()).await.unwrap();
    assert_eq!(enc.decrypt(&c.text().await.unwrap()).unwrap(), "ab=");
    // A form body (`curl -d 'p%40ss+x'` gains a '=') is URL-decoded, '=' dropped.
    let form = "application/x-www-form-urlencoded";
    let c = post("/encrypt", form, "p%40ss+x=".into()).await.unwrap();
    let cipher = c.text().await.unwrap();
    assert_eq!(enc.decrypt(&cipher).unwrap(), "p@ss x");
    let plain = post("/decrypt", form, format!("{cipher}=")).await.unwrap();
    assert_eq!(plain.text().await.unwrap(), "p@ss x");
    let plain = post("/decrypt", "text/plain", cipher.clone())
        .await
        .unwrap();
    assert_eq!(plain.text().await.unwrap(), "p@ss x");
    // Not cipher text for this key: 400 INVALID.
    for bad in ["zz-not-hex", "00ff", &enc.encrypt("x")[..40]] {
        let r = post("/decrypt", "text/plain", bad.to_string())
            .await
            .unwrap();
        assert_eq!(r.status(), 400);
        let body: Value = r.json().await.unwrap();
        assert_eq!(body["status"], json!("INVALID"));
    }
    let r = client
        .post(s.url("/encrypt"))
        .header(CONTENT_TYPE, "text/plain")
        .body(vec![0xff, 0xfe])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    // An empty body is refused, as Spring's required `@RequestBody`.
    for path in ["/encrypt", "/decrypt"] {
        let r = post(path, "text/plain", String::new()).await.unwrap();
        assert_eq!(r.status(), 400);
        assert_eq!(r.json::<Value>().await.unwrap()["path"], json!(path));
    }
    let status: Value = s.json("/encrypt/status").await;
    assert_eq!(status, json!({"status": "OK"}));
    // A symmetric key has no public key: Spring's 404 for `GET /key`.
    let r = reqwest::get(s.url("/key")).await.unwrap();
    assert_eq!(r.status(), 404);
    assert_eq!(
        r.json::<Value>().await.unwrap(),
        json!({"description": "No public key available", "status": "NOT_FOUND"})
    );
}

#[tokio::test]
async fn encrypt_status_without_a_key_is_404_no_key() {
    let (repo, _) = repo();
    let s = TestServer::start(git_settings(&repo)).await;
    let r = reqwest::get(s.url("/encrypt/status")).await.unwrap();
    assert_eq!(r.status(), 404);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["status"], json!("NO_KEY"));
    let r = reqwest::Client::new()
        .post(s.url("/encrypt"))
        .header(CONTENT_TYPE, "text/plain")
        .body("x")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
}

#[tokio::test]
async fn monitor_answers_the_services_spring_would_notify() {
    let (repo, _) = repo();
    let s = server(&repo).await;
    let hook = json!({"commits": [
        {"added": ["foo-dev.yml"], "modified": ["application-prod.yml", "bar.properties"], "removed": []}
    ]});
    let r = reqwest::Client::new()
        .post(s.url("/monitor"))
        .header("x-github-event", "push")
        .json(&hook)
        .send()
        .await
        .unwrap();
    assert_eq!(
        r.json::<Value>().await.unwrap(),
        json!(["*:prod", "bar", "foo:dev", "foo-dev"])
    );
    let r = reqwest::Client::new()
        .post(s.url("/monitor"))
        .header(CONTENT_TYPE, "application/x-www-form-urlencoded")
        .body("path=application.yml")
        .send()
        .await
        .unwrap();
    assert_eq!(r.json::<Value>().await.unwrap(), json!(["*"]));
}

#[tokio::test]
async fn an_application_named_watch_is_served_and_sse_clients_still_watch() {
    let repo = Repo::new();
    repo.write("watch.yml", "i.am: watch\n")
        .write("foo.yml", "a: 1\n");
    repo.commit("one");
    let s = server(&repo).await;
    let env = s.json("/watch/default").await;
    assert_eq!(env["name"], json!("watch"));
    assert_eq!(merged(&env, "i.am"), json!("watch"));
    let labelled = s.json("/watch/default/main").await;
    assert_eq!(labelled["name"], json!("watch"));
    let stream = reqwest::Client::new()
        .get(s.url("/watch/foo/default"))
        .header(ACCEPT, "text/event-stream")
        .send()
        .await
        .unwrap();
    assert_eq!(stream.status(), 200);
    assert!(
        stream.headers()[CONTENT_TYPE]
            .to_str()
            .unwrap()
            .starts_with("text/event-stream")
    );
}
