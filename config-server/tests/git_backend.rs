//! The git backend against real repositories created in the test: branches,
//! tags, commit ids, a changed value, a deleted file, a label with a slash,
//! symlinks, an unreachable remote, and webhook-driven watch.
#![allow(clippy::unwrap_used)]

mod support;

use std::time::Duration;

use futures::StreamExt;
use serde_json::{Value, json};
use support::{Repo, TestServer, git_settings};
use tokio::time::{Instant, timeout};

fn value<'a>(env: &'a Value, key: &str) -> Option<&'a Value> {
    env["propertySources"]
        .as_array()
        .unwrap()
        .iter()
        .find_map(|s| s["source"].get(key))
}

#[tokio::test]
async fn labels_resolve_to_branches_tags_commits_and_slashed_names() {
    let repo = Repo::new();
    repo.write("foo.yml", "color: red\nsize: 1\n")
        .write("application.yml", "shared: yes\n");
    let first = repo.commit("first");
    repo.git(&["tag", "v1"]);
    repo.git(&["tag", "-a", "v1-annotated", "-m", "annotated"]);
    repo.write("foo.yml", "color: blue\nsize: 1\n");
    let second = repo.commit("change color");
    repo.git(&["checkout", "-q", "-b", "feature/x"]);
    repo.write("foo.yml", "color: green\n");
    repo.commit("feature");
    repo.git(&["checkout", "-q", "main"]);

    let server = TestServer::start(git_settings(&repo)).await;

    let env = server.json("/foo/default").await;
    assert_eq!(value(&env, "color"), Some(&json!("blue")));
    assert_eq!(env["version"], json!(second));
    assert_eq!(env["label"], json!("main"));
    let names: Vec<&str> = env["propertySources"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        [
            format!("{}/foo.yml", repo.uri()),
            format!("{}/application.yml", repo.uri())
        ]
    );

    let tagged = server.json("/foo/default/v1").await;
    assert_eq!(value(&tagged, "color"), Some(&json!("red")));
    assert_eq!(tagged["version"], json!(first));
    let annotated = server.json("/foo/default/v1-annotated").await;
    assert_eq!(
        annotated["version"],
        json!(first),
        "annotated tags peel to the commit"
    );

    let by_commit = server.json(&format!("/foo/default/{}", &first[..10])).await;
    assert_eq!(value(&by_commit, "color"), Some(&json!("red")));
    assert_eq!(by_commit["version"], json!(first));

    let feature = server.json("/foo/default/feature(_)x").await;
    assert_eq!(value(&feature, "color"), Some(&json!("green")));
    assert_eq!(value(&feature, "size"), None);

    let yml = reqwest::get(server.url("/feature(_)x/foo-default.yml"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(yml.contains("color: green"), "{yml}");

    let missing = reqwest::get(server.url("/foo/default/nope")).await.unwrap();
    assert_eq!(missing.status(), 404);
    let body: Value = missing.json().await.unwrap();
    assert_eq!(body["status"], json!(404));
}

#[tokio::test]
async fn default_label_falls_back_to_master() {
    let repo = Repo::new();
    repo.git(&["checkout", "-q", "-b", "master"]);
    repo.write("foo.yml", "on: master\n");
    repo.commit("m");
    assert!(repo.git(&["branch", "--list", "main"]).is_empty());
    // A plain local path works as well as a file:// URL.
    let mut settings = git_settings(&repo);
    settings.git_uri = Some(repo.path().display().to_string());
    let server = TestServer::start(settings).await;
    let env = server.json("/foo/default").await;
    assert_eq!(value(&env, "on"), Some(&json!("master")));
    // The answer names the branch served, as Spring's JGit repository does
    // once it has fallen back.
    assert_eq!(env["label"], json!("master"));
}

#[tokio::test]
async fn a_new_commit_is_served_after_refresh_and_deleted_files_disappear() {
    let repo = Repo::new();
    repo.write("foo.yml", "a: 1\n")
        .write("foo-dev.yml", "b: 2\n");
    repo.commit("one");
    let server = TestServer::start(git_settings(&repo)).await;
    let before = server.json("/foo/dev").await;
    assert_eq!(value(&before, "a"), Some(&json!(1)));
    assert_eq!(value(&before, "b"), Some(&json!(2)));

    repo.write("foo.yml", "a: 5\n").remove("foo-dev.yml");
    let next = repo.commit("two");
    // No fetch yet: the cached commit is still served.
    let stale = server.json("/foo/dev").await;
    assert_eq!(value(&stale, "a"), Some(&json!(1)));

    assert!(server.state.envs.refresh().await.unwrap());
    let after = server.json("/foo/dev").await;
    assert_eq!(after["version"], json!(next));
    assert_eq!(value(&after, "a"), Some(&json!(5)));
    assert_eq!(value(&after, "b"), None);
    assert_eq!(after["propertySources"].as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn symlinks_in_the_repository_are_not_followed() {
    let outside = tempfile::tempdir().unwrap();
    std::fs::write(outside.path().join("secret.yml"), "password: hunter2\n").unwrap();
    let repo = Repo::new();
    repo.write("foo.yml", "a: 1\n");
    std::os::unix::fs::symlink(
        outside.path().join("secret.yml"),
        repo.path().join("application.yml"),
    )
    .unwrap();
    std::os::unix::fs::symlink("/etc/passwd", repo.path().join("passwd")).unwrap();
    repo.commit("links");
    let server = TestServer::start(git_settings(&repo)).await;
    let env = server.json("/foo/default").await;
    assert_eq!(value(&env, "password"), None);
    assert_eq!(env["propertySources"].as_array().unwrap().len(), 1);
    let resp = reqwest::get(server.url("/foo/default/main/passwd"))
        .await
        .unwrap();
    assert_eq!(resp.status(), 404);
}

#[tokio::test]
async fn remote_down_keeps_serving_and_health_tells() {
    let repo = Repo::new();
    repo.write("foo.yml", "a: 1\n");
    let commit = repo.commit("one");
    let mirror = tempfile::tempdir().unwrap();
    let mut settings = git_settings(&repo);
    settings.mirror_dir = Some(mirror.path().join("m.git"));
    {
        let server = TestServer::start(settings.clone()).await;
        assert_eq!(server.json("/foo/default").await["version"], json!(commit));
    }
    // The remote disappears.
    let gone = repo.path().with_extension("moved");
    std::fs::rename(repo.path(), &gone).unwrap();

    // Boot from the existing mirror while the remote is down.
    let server = TestServer::start_with_mirror(settings, mirror).await;
    let env = server.json("/foo/default").await;
    assert_eq!(env["version"], json!(commit));
    assert_eq!(value(&env, "a"), Some(&json!(1)));
    let health = server.json("/actuator/health").await;
    assert_eq!(health["status"], json!("UP"));
    assert_eq!(health["components"]["repository"]["status"], json!("DOWN"));
    assert!(health["components"]["repository"]["lastError"].is_string());
    // The component says what is still served and how old it is.
    assert_eq!(
        health["components"]["repository"]["lastGoodCommit"],
        json!(commit)
    );
    assert!(health["components"]["repository"]["lastSuccessfulRefreshAgeSeconds"].is_u64());
    assert_eq!(
        health["components"]["readinessState"]["status"],
        json!("UP")
    );
    // Both groups stay UP: the server still serves its last good commit.
    let ready = server.json("/actuator/health/readiness").await;
    assert_eq!(ready["status"], json!("UP"));
    let live = server.json("/actuator/health/liveness").await;
    assert_eq!(live["status"], json!("UP"));
    assert!(server.state.envs.refresh().await.is_err());
    assert_eq!(server.json("/foo/default").await["version"], json!(commit));
    std::fs::rename(&gone, repo.path()).unwrap();
    assert!(server.state.envs.refresh().await.is_ok());
    let health = server.json("/actuator/health").await;
    assert_eq!(health["components"]["repository"]["status"], json!("UP"));
}

#[tokio::test]
async fn a_pushed_change_reaches_a_watcher_within_a_second_of_the_webhook() {
    let repo = Repo::new();
    repo.write("foo.yml", "a: 1\n").write("bar.yml", "b: 1\n");
    repo.commit("one");
    let server = TestServer::start(git_settings(&repo)).await;
    let client = reqwest::Client::new();
    let resp = client
        .get(server.url("/watch/foo/default"))
        .header("accept", "text/event-stream")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let mut stream = resp.bytes_stream();
    let mut buf = String::new();
    // The first event tells the current version.
    let first_digest = next_event(&mut stream, &mut buf).await["digest"].clone();

    // A change to another application does not wake this watcher.
    repo.write("bar.yml", "b: 2\n");
    repo.commit("bar only");
    let r = github_push(&client, &server.url("/monitor"), "bar.yml").await;
    assert_eq!(r.json::<Value>().await.unwrap(), json!(["bar"]));

    repo.write("foo.yml", "a: 2\n");
    let commit = repo.commit("foo changes");
    let started = Instant::now();
    let r = github_push(&client, &server.url("/monitor"), "foo.yml").await;
    assert_eq!(r.status(), 200);
    let event = next_event(&mut stream, &mut buf).await;
    let elapsed = started.elapsed();
    assert_eq!(
        event["version"],
        json!(commit),
        "only the foo change is announced"
    );
    assert_ne!(event["digest"], first_digest);
    assert!(elapsed < Duration::from_secs(1), "took {elapsed:?}");
    let env = server.json("/foo/default").await;
    assert_eq!(value(&env, "a"), Some(&json!(2)));
}

/// Reads SSE bytes until one `data:` event is complete; returns its JSON.
/// Sends GitHub's push webhook announcing that `modified` changed.
async fn github_push(client: &reqwest::Client, monitor: &str, modified: &str) -> reqwest::Response {
    let hook = json!({"commits": [{"added": [], "modified": [modified], "removed": []}]});
    client
        .post(monitor)
        .header("x-github-event", "push")
        .json(&hook)
        .send()
        .await
        .unwrap()
}

async fn next_event<S>(stream: &mut S, buf: &mut String) -> Value
where
    S: futures::Stream<Item = reqwest::Result<bytes::Bytes>> + Unpin,
{
    let deadline = Duration::from_secs(10);
    timeout(deadline, async {
        loop {
            if let Some(end) = buf.find("\n\n") {
                let block: String = buf.drain(..end + 2).collect();
                if let Some(data) = block.lines().find_map(|l| l.strip_prefix("data:")) {
                    return serde_json::from_str(data.trim()).unwrap();
                }
                continue;
            }
            let chunk = stream.next().await.unwrap().unwrap();
            buf.push_str(std::str::from_utf8(&chunk).unwrap());
        }
    })
    .await
    .unwrap()
}

#[tokio::test]
async fn repositories_are_chosen_by_pattern_and_search_paths_expand() {
    let main = Repo::new();
    main.write("foo.yml", "from: main\n")
        .write("apps/foo/foo.yml", "from: main-searchpath\n");
    main.commit("main");
    let special = Repo::new();
    special.write("special-app.yml", "from: special\n");
    special.commit("special");
    let mirrors = tempfile::tempdir().unwrap();
    let mut settings = git_settings(&main);
    settings.search_paths = vec!["apps/{application}".into()];
    settings.repos = vec![config_server::settings::RepoSettings {
        name: "special".into(),
        pattern: vec!["special*/dev*".into()],
        uri: special.uri(),
        search_paths: vec![],
        mirror_dir: Some(mirrors.path().join("special.git")),
        username: None,
        password: None,
    }];
    let server = TestServer::start(settings).await;

    let foo = server.json("/foo/dev").await;
    assert_eq!(value(&foo, "from"), Some(&json!("main-searchpath")));
    assert_eq!(foo["propertySources"].as_array().unwrap().len(), 2);
    let sp = server.json("/special-app/dev").await;
    assert_eq!(value(&sp, "from"), Some(&json!("special")));
    assert_eq!(sp["version"], json!(special.git(&["rev-parse", "HEAD"])));
    let other_profile = server.json("/special-app/prod").await;
    assert_eq!(
        value(&other_profile, "from"),
        None,
        "prod is served by the main repo"
    );
    let health = server.json("/actuator/health").await;
    assert_eq!(
        health["components"]["repositories"]["special"]["status"],
        json!("UP")
    );
}

#[tokio::test]
async fn many_labels_are_served_concurrently_without_mixing_up() {
    let repo = Repo::new();
    let mut labels = Vec::new();
    for i in 0..4 {
        repo.write("foo.yml", &format!("n: {i}\n"));
        repo.commit(&format!("c{i}"));
        repo.git(&["tag", &format!("t{i}")]);
        labels.push((format!("t{i}"), i));
    }
    let server = TestServer::start(git_settings(&repo)).await;
    let client = reqwest::Client::new();
    let mut tasks = Vec::new();
    for round in 0..40 {
        let (label, n) = labels[round % labels.len()].clone();
        let url = server.url(&format!("/foo/default/{label}"));
        let client = client.clone();
        tasks.push(tokio::spawn(async move {
            let env: Value = client.get(url).send().await.unwrap().json().await.unwrap();
            assert_eq!(value(&env, "n"), Some(&json!(n)), "label {label}");
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
}

/// GET `path`: the status and the JSON body.
async fn status_and_json(server: &TestServer, path: &str) -> (u16, Value) {
    let resp = reqwest::get(server.url(path)).await.unwrap();
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap())
}

/// A file:// remote that does not exist yet, and the repository whose
/// content it will get.
struct LateRemote {
    base: tempfile::TempDir,
    content: Repo,
    commit: String,
}

impl LateRemote {
    fn new() -> Self {
        let content = Repo::new();
        content.write("foo.yml", "a: late\n");
        let commit = content.commit("one");
        Self {
            base: tempfile::tempdir().unwrap(),
            content,
            commit,
        }
    }

    fn path(&self) -> std::path::PathBuf {
        self.base.path().join("remote.git")
    }

    fn uri(&self) -> String {
        format!("file://{}", self.path().display())
    }

    /// Creates the remote.
    fn create(&self) {
        let out = std::process::Command::new("git")
            .args(["clone", "-q", "--bare"])
            .arg(self.content.path())
            .arg(self.path())
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

#[tokio::test]
async fn an_unreachable_remote_at_boot_answers_503_until_the_first_clone_succeeds() {
    let remote = LateRemote::new();
    let settings = config_server::Settings {
        git_uri: Some(remote.uri()),
        refresh_rate: 0,
        ..config_server::Settings::default()
    };
    let server = TestServer::start(settings).await;
    let mut generation = server.state.envs.subscribe();

    let (status, body) = status_and_json(&server, "/foo/default").await;
    assert_eq!(status, 503, "{body}");
    assert_eq!(body["status"], json!(503));
    assert_eq!(body["error"], json!("Service Unavailable"));
    assert_eq!(body["path"], json!("/foo/default"));
    let message = body["message"].as_str().unwrap();
    assert!(message.contains("not available yet"), "{message}");
    assert!(
        message.contains("remote.git"),
        "the reason names the remote: {message}"
    );

    let (status, ready) = status_and_json(&server, "/actuator/health/readiness").await;
    assert_eq!((status, &ready["status"]), (503, &json!("DOWN")));
    let (status, live) = status_and_json(&server, "/actuator/health/liveness").await;
    assert_eq!((status, &live["status"]), (200, &json!("UP")));
    let (status, health) = status_and_json(&server, "/actuator/health").await;
    assert_eq!((status, &health["status"]), (503, &json!("DOWN")));
    assert_eq!(health["components"]["repository"]["status"], json!("DOWN"));
    assert!(health["components"]["repository"]["lastError"].is_string());

    // The remote appears; the background retry clones it.
    remote.create();
    timeout(Duration::from_secs(30), generation.changed())
        .await
        .expect("not cloned within 30 s of the remote appearing")
        .unwrap();
    let env = server.json("/foo/default").await;
    assert_eq!(env["version"], json!(remote.commit));
    assert_eq!(value(&env, "a"), Some(&json!("late")));
    let ready = server.json("/actuator/health/readiness").await;
    assert_eq!(ready["status"], json!("UP"));
    let health = server.json("/actuator/health").await;
    assert_eq!(health["components"]["repository"]["status"], json!("UP"));
}

#[tokio::test]
async fn clone_on_start_fails_fast_when_the_remote_is_unreachable() {
    let remote = LateRemote::new();
    let mirror = tempfile::tempdir().unwrap();
    let settings = config_server::Settings {
        git_uri: Some(remote.uri()),
        mirror_dir: Some(mirror.path().join("m.git")),
        clone_on_start: true,
        refresh_rate: 0,
        ..config_server::Settings::default()
    };
    let err = config_server::start(settings.clone()).await.unwrap_err();
    assert!(err.to_string().contains("git clone"), "{err}");
    // Once the remote exists the same settings start.
    remote.create();
    let running = config_server::start(settings).await.unwrap();
    assert!(running.state.envs.is_serving());
}
