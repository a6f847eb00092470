//! The discovery client against the real discovery server, in-process.

#![allow(clippy::unwrap_used)]

mod support;

use std::time::Duration;

use cloud_client::discovery::{DiscoveryClient, registration};
use cloud_protocol::eureka::InstanceStatus;
use support::{Discovery, Proxy, eventually, reader, settings};
use tokio::time::Instant;

async fn client_of(name: &str, port: &str, urls: &str, extra: &[(&str, &str)]) -> DiscoveryClient {
    let mut pairs = vec![
        ("spring.application.name", name),
        ("server.port", port),
        ("eureka.client.service-url.defaultZone", urls),
    ];
    pairs.extend_from_slice(extra);
    DiscoveryClient::start(settings(&pairs)).await.unwrap()
}

/// A client that only watches (fetch timer at 30 s), once its watch is up.
async fn watching_caller(urls: &str, what: &str) -> DiscoveryClient {
    let caller = client_of(
        "caller",
        "9301",
        urls,
        &[
            ("eureka.client.register-with-eureka", "false"),
            ("eureka.client.registry-fetch-interval-seconds", "30"),
        ],
    )
    .await;
    eventually(Duration::from_secs(5), what, || async {
        caller.health().watching
    })
    .await;
    caller
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_registered_service_is_discovered_and_leaves_on_shutdown() {
    let server = Discovery::start().await;
    let users = client_of("user-service", "9001", &server.eureka_url(), &[]).await;
    let caller = client_of(
        "caller",
        "9002",
        &server.eureka_url(),
        &[("eureka.client.register-with-eureka", "false")],
    )
    .await;
    eventually(
        Duration::from_secs(5),
        "user-service in the caller's cache",
        || async { caller.instances("USER-SERVICE").len() == 1 },
    )
    .await;
    let found = &caller.instances("user-service")[0];
    assert_eq!(found.instance_id, "127.0.0.1:user-service:9001");
    assert_eq!(found.base_url(), "http://127.0.0.1:9001");
    assert_eq!(caller.instances_by_vip("user-service").len(), 1);
    assert!(users.health().registered);

    let mut sub = caller.subscribe("user-service");
    users.shutdown().await.unwrap();
    let left = tokio::time::timeout(Duration::from_secs(5), sub.changed())
        .await
        .expect("the subscriber hears of the shutdown")
        .unwrap();
    assert!(
        left.iter().all(|i| i.status != InstanceStatus::Up),
        "no UP instance remains: {left:?}"
    );
    assert!(caller.instances("user-service").is_empty());
    caller.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_client_fails_over_to_the_next_server_and_registers_there() {
    let first = Discovery::start().await;
    let second = Discovery::start().await;
    let cut_first = Proxy::start(first.addr).await;
    let urls = format!("{},{}", cut_first.eureka_url(), second.eureka_url());
    let client = client_of("svc", "9100", &urls, &[]).await;
    assert_eq!(client.health().server, cut_first.eureka_url());
    // The two nodes are not peers: the second knows nothing of the instance yet.
    let probe = client_of(
        "probe",
        "9101",
        &second.eureka_url(),
        &[("eureka.client.register-with-eureka", "false")],
    )
    .await;
    assert!(probe.instances("svc").is_empty());

    cut_first.cut();
    // The next heartbeat goes to the second server, which answers 404, and
    // the client registers there.
    eventually(
        Duration::from_secs(10),
        "svc registered on the second node",
        || async {
            probe.refresh_now().await;
            probe.instances("svc").len() == 1
        },
    )
    .await;
    let health = client.health();
    assert_eq!(
        health.server,
        second.eureka_url(),
        "the choice is sticky on the second"
    );
    assert!(health.registered);
    client.shutdown().await.unwrap();
    probe.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn when_every_server_is_down_the_last_registry_is_served() {
    let server = Discovery::start().await;
    let proxy = Proxy::start(server.addr).await;
    let svc = client_of("svc", "9200", &server.eureka_url(), &[]).await;
    let caller = client_of(
        "caller",
        "9201",
        &proxy.eureka_url(),
        &[("eureka.client.register-with-eureka", "false")],
    )
    .await;
    eventually(Duration::from_secs(5), "svc known", || async {
        caller.instances("svc").len() == 1
    })
    .await;
    assert!(caller.health().registry_reachable);

    proxy.cut();
    caller.refresh_now().await;
    let health = caller.health();
    assert!(!health.registry_reachable);
    assert!(health.serving_stale);
    assert!(health.last_error.is_some());
    assert_eq!(
        caller.instances("svc").len(),
        1,
        "the last known registry is served"
    );
    svc.shutdown().await.unwrap();
    caller.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_watched_change_reaches_the_cache_well_under_a_second() {
    let server = Discovery::start().await;
    // The timer alone would take 30 s.
    let caller = watching_caller(&server.eureka_url(), "the watch stream is up").await;
    let mut sub = caller.subscribe("late");
    let started = Instant::now();
    let late = client_of("late", "9300", &server.eureka_url(), &[]).await;
    let seen = tokio::time::timeout(Duration::from_secs(5), sub.changed())
        .await
        .expect("the change arrives")
        .unwrap();
    let took = started.elapsed();
    assert_eq!(seen.len(), 1);
    assert!(took < Duration::from_millis(500), "took {took:?}");
    late.shutdown().await.unwrap();
    caller.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_long_poll_is_used_when_the_stream_is_not_offered() {
    // A server whose router lacks the SSE route but keeps the long poll.
    use axum::Router;
    let node = discovery_server::Server::new(discovery_server::ServerConfig::default()).unwrap();
    let router: Router = node.router();
    let filtered = Router::new()
        .route(
            "/eureka/watch",
            axum::routing::get(|| async { axum::http::StatusCode::NOT_FOUND }),
        )
        .fallback_service(router);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/eureka/", listener.local_addr().unwrap());
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(async move {
        axum::serve(listener, filtered)
            .with_graceful_shutdown(async {
                let _ = rx.await;
            })
            .await
    });
    let caller = watching_caller(&url, "the long poll is up").await;
    let mut sub = caller.subscribe("late");
    let mut info = registration(&settings(&[("spring.application.name", "late")]));
    info.instance_id = "late-1".into();
    let late = DiscoveryClient::start_with(
        settings(&[
            ("spring.application.name", "late"),
            ("eureka.client.service-url.defaultZone", &url),
            ("eureka.client.fetch-registry", "false"),
        ]),
        info,
    )
    .await
    .unwrap();
    let seen = tokio::time::timeout(Duration::from_secs(3), sub.changed())
        .await
        .expect("the long poll brings the change")
        .unwrap();
    assert_eq!(seen[0].instance_id, "late-1");
    late.shutdown().await.unwrap();
    caller.shutdown().await.unwrap();
    let _ = tx.send(());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lease_the_server_lost_is_registered_again_on_the_next_heartbeat() {
    let server = Discovery::start().await;
    let svc = client_of("svc", "9500", &server.eureka_url(), &[]).await;
    let me = svc.registration();
    let url = format!("{}apps/{}/{}", server.eureka_url(), me.app, me.instance_id);
    let http = reqwest::Client::new();
    let gone = http.delete(&url).send().await.unwrap();
    assert_eq!(gone.status(), 200);
    assert_eq!(http.get(&url).send().await.unwrap().status(), 404);
    eventually(
        Duration::from_secs(5),
        "the instance registered again",
        || async {
            http.get(&url)
                .header("Accept", "application/json")
                .send()
                .await
                .is_ok_and(|r| r.status() == 200)
        },
    )
    .await;
    svc.shutdown().await.unwrap();
    assert_eq!(
        http.get(&url).send().await.unwrap().status(),
        404,
        "cancelled at shutdown"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_delta_that_leaves_a_different_hashcode_is_followed_by_a_full_fetch() {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicU32, Ordering};

    use axum::routing::get;
    use cloud_protocol::eureka::{ActionType, Application, Applications, InstanceInfo, json};

    fn instance(id: &str, action: Option<ActionType>) -> InstanceInfo {
        let mut i = registration(&settings(&[("spring.application.name", "svc")]));
        i.instance_id = id.into();
        i.action_type = action;
        i
    }
    fn listing(instances: Vec<InstanceInfo>, hashcode: &str) -> Vec<u8> {
        json::encode_applications(&Applications {
            version_delta: 1,
            apps_hashcode: hashcode.into(),
            applications: vec![Application {
                name: "SVC".into(),
                instances,
            }],
        })
    }
    // A plain Eureka server whose delta misses an instance: after it the
    // client counts two where the server counts three.
    let full_fetches = Arc::new(AtomicU32::new(0));
    let fetches = Arc::clone(&full_fetches);
    let app = axum::Router::new()
        .route(
            "/eureka/apps/",
            get(move || {
                let n = fetches.fetch_add(1, Ordering::SeqCst);
                let body = if n == 0 {
                    listing(vec![instance("a", None)], "UP_1_")
                } else {
                    listing(
                        vec![
                            instance("a", None),
                            instance("b", None),
                            instance("c", None),
                        ],
                        "UP_3_",
                    )
                };
                async move { ([("content-type", "application/json")], body) }
            }),
        )
        .route(
            "/eureka/apps/delta",
            get(|| async {
                (
                    [("content-type", "application/json")],
                    listing(vec![instance("b", Some(ActionType::Added))], "UP_3_"),
                )
            }),
        );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/eureka/", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });

    let caller = reader(
        &url,
        &[
            ("eureka.client.watch-enabled", "false"),
            ("eureka.client.registry-fetch-interval-seconds", "30"),
        ],
    )
    .await;
    assert_eq!(caller.all_instances("svc").len(), 1);
    caller.refresh_now().await;
    assert_eq!(
        full_fetches.load(Ordering::SeqCst),
        2,
        "the mismatch asked for the full registry"
    );
    let ids: Vec<String> = caller
        .all_instances("svc")
        .iter()
        .map(|i| i.instance_id.clone())
        .collect();
    assert_eq!(ids, ["a", "b", "c"]);
    caller.shutdown().await.unwrap();
}
