//! The config client against the real config server, in-process, over a
//! git repository the test commits to.

#![allow(clippy::unwrap_used)]

mod support;

use std::time::Duration;

use cloud_client::config::{ConfigClient, ConfigError, Properties};
use cloud_client::settings::ClientSettings;
use serde::Deserialize;
use serde_json::json;
use support::{ConfigServer, Repo};

#[derive(Debug, Deserialize, PartialEq)]
#[serde(rename_all = "kebab-case")]
struct AppConfig {
    greeting: String,
    max_users: u32,
    #[serde(default)]
    region: Option<String>,
}

fn settings(server: &str, extra: &[(&str, &str)]) -> ClientSettings {
    let import = format!("configserver:{server}");
    let mut pairs: Vec<(&str, &str)> = vec![
        ("spring.application.name", "users"),
        ("spring.profiles.active", "dev"),
        ("spring.config.import", &import),
        ("spring.cloud.config.watch.delay", "200"),
    ];
    pairs.extend_from_slice(extra);
    ClientSettings::from_properties(pairs).unwrap()
}

fn props(pairs: &[(&str, serde_json::Value)]) -> Properties {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), v.clone()))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pushed_change_becomes_a_new_snapshot_with_its_changed_keys() {
    let repo = Repo::new();
    repo.write("users.yml", "greeting: hello\nmax-users: 10\n")
        .write("users-dev.yml", "max-users: 20\n");
    let first_commit = repo.commit("one");
    let server = ConfigServer::start(&repo).await;

    let local = props(&[("greeting", json!("local")), ("region", json!("eu"))]);
    let env = props(&[("region", json!("us"))]);
    let live = ConfigClient::new(&settings(&server.base, &[]))
        .unwrap()
        .start::<AppConfig>(local, env)
        .await
        .unwrap();
    let snap = live.current();
    assert_eq!(
        *snap.value,
        AppConfig {
            greeting: "hello".into(),
            max_users: 20,
            region: Some("us".into()),
        },
        "server above local files, dev above default, env vars above all"
    );
    assert_eq!(snap.version.as_deref(), Some(first_commit.as_str()));

    let mut rx = live.subscribe();
    rx.borrow_and_update();
    repo.write("users-dev.yml", "max-users: 30\nnew-key: 1\n");
    let second_commit = repo.commit("two");
    server.push_hook("users-dev.yml").await;
    tokio::time::timeout(Duration::from_secs(10), rx.changed())
        .await
        .expect("a new snapshot after the webhook")
        .unwrap();
    let snap = live.current();
    assert_eq!(snap.value.max_users, 30);
    assert_eq!(&*snap.changed_keys, ["max-users", "new-key"]);
    assert_eq!(snap.version.as_deref(), Some(second_commit.as_str()));

    // A change that does not fit the type keeps the old snapshot: the next
    // snapshot published is the one after it, compared with the old one.
    repo.write("users-dev.yml", "max-users: lots\n");
    repo.commit("three");
    server.push_hook("users-dev.yml").await;
    assert_eq!(live.get().max_users, 30);
    repo.write("users-dev.yml", "max-users: 40\n");
    repo.commit("four");
    server.push_hook("users-dev.yml").await;
    tokio::time::timeout(Duration::from_secs(10), rx.changed())
        .await
        .expect("a snapshot for the fitting change")
        .unwrap();
    let snap = live.current();
    assert_eq!(snap.value.max_users, 40, "no snapshot of 'lots' came first");
    assert_eq!(&*snap.changed_keys, ["max-users", "new-key"]);
    live.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_server_fails_fast_or_falls_back_to_the_cached_copy() {
    let repo = Repo::new();
    repo.write("users.yml", "greeting: cached\nmax-users: 5\n");
    repo.commit("one");
    let server = ConfigServer::start(&repo).await;
    let dir = tempfile::tempdir().unwrap();
    let cache = dir.path().join("users.json");
    let cache_str = cache.display().to_string();
    let extra = [("spring.cloud.config.cache-file", cache_str.as_str())];
    // A first start writes the cache.
    let live = ConfigClient::new(&settings(&server.base, &extra))
        .unwrap()
        .start::<AppConfig>(Properties::new(), Properties::new())
        .await
        .unwrap();
    live.stop().await;
    assert!(cache.exists());
    drop(server);

    // Nothing listens on this port now.
    let gone = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let dead = format!("http://{}", gone.local_addr().unwrap());
    drop(gone);

    let err = ConfigClient::new(&settings(&dead, &extra))
        .unwrap()
        .start::<AppConfig>(Properties::new(), Properties::new())
        .await
        .unwrap_err();
    assert!(matches!(err, ConfigError::Unavailable(_)), "{err}");

    let optional = format!("optional:configserver:{dead}");
    let s = ClientSettings::from_properties([
        ("spring.application.name", "users"),
        ("spring.config.import", optional.as_str()),
        ("spring.cloud.config.cache-file", cache_str.as_str()),
    ])
    .unwrap();
    let live = ConfigClient::new(&s)
        .unwrap()
        .start::<AppConfig>(Properties::new(), Properties::new())
        .await
        .unwrap();
    assert_eq!(live.get().greeting, "cached");
    live.stop().await;

    let with_fail_fast = ClientSettings::from_properties([
        ("spring.application.name", "users"),
        ("spring.config.import", optional.as_str()),
        ("spring.cloud.config.fail-fast", "true"),
    ])
    .unwrap();
    let err = ConfigClient::new(&with_fail_fast)
        .unwrap()
        .start::<AppConfig>(Properties::new(), Properties::new())
        .await
        .unwrap_err();
    assert!(matches!(err, ConfigError::Unavailable(_)));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_undecryptable_value_stops_the_start() {
    let repo = Repo::new();
    // The server has no key: every {cipher} value is undecryptable.
    repo.write(
        "users.yml",
        "greeting: hi\nmax-users: 1\ndb:\n  password: '{cipher}deadbeef'\n",
    );
    repo.commit("one");
    let server = ConfigServer::start(&repo).await;
    let err = ConfigClient::new(&settings(&server.base, &[]))
        .unwrap()
        .start::<AppConfig>(Properties::new(), Properties::new())
        .await
        .unwrap_err();
    match err {
        ConfigError::Undecryptable(e) => assert_eq!(e.keys(), ["db.password"]),
        other => panic!("expected an undecryptable error, got {other}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_change_stream_the_client_polls_with_basic_auth() {
    use std::sync::{Arc, Mutex};

    use axum::extract::State;
    use axum::http::{HeaderMap, StatusCode};
    use axum::routing::get;

    // A plain Spring Cloud Config server: no /watch, Basic auth required.
    let doc = Arc::new(Mutex::new(json!({
        "name": "users", "profiles": ["dev"], "label": null, "version": "v1", "state": null,
        "propertySources": [{"name": "users.yml", "source": {"greeting": "one", "max-users": 1}}]
    })));
    let app = axum::Router::new()
        .route(
            "/users/dev",
            get(
                |State(doc): State<Arc<Mutex<serde_json::Value>>>, headers: HeaderMap| async move {
                    // "user:secret"
                    if headers.get("authorization").and_then(|v| v.to_str().ok())
                        != Some("Basic dXNlcjpzZWNyZXQ=")
                    {
                        return Err(StatusCode::UNAUTHORIZED);
                    }
                    Ok(axum::Json(doc.lock().unwrap().clone()))
                },
            ),
        )
        .with_state(Arc::clone(&doc));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://user:secret@{}", listener.local_addr().unwrap());
    let (tx, rx_stop) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(async move {
        axum::serve(listener, app)
            .with_graceful_shutdown(async {
                let _ = rx_stop.await;
            })
            .await
    });

    let live = ConfigClient::new(&settings(&base, &[]))
        .unwrap()
        .start::<AppConfig>(Properties::new(), Properties::new())
        .await
        .unwrap();
    assert_eq!(live.get().greeting, "one");
    let mut rx = live.subscribe();
    rx.borrow_and_update();
    *doc.lock().unwrap() = json!({
        "name": "users", "profiles": ["dev"], "label": null, "version": "v2", "state": null,
        "propertySources": [{"name": "users.yml", "source": {"greeting": "two", "max-users": 1}}]
    });
    tokio::time::timeout(Duration::from_secs(5), rx.changed())
        .await
        .expect("the poll finds the change")
        .unwrap();
    let snap = live.current();
    assert_eq!(snap.value.greeting, "two");
    assert_eq!(&*snap.changed_keys, ["greeting"]);
    assert_eq!(snap.version.as_deref(), Some("v2"));
    live.stop().await;
    let _ = tx.send(());
}
