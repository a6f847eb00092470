//! `lb://` through the real discovery server: instances registered with the
//! Eureka REST API reach the gateway's routes through cloud-client's
//! registry cache, live, with real upstreams and real HTTP.

mod support;

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use api_gateway::resolve::{RegistryInstances, ServiceInstances, client_settings};
use axum::http::StatusCode;
use cloud_client::discovery::DiscoveryClient;
use serde_json::Value;
use support::{Child, TestGateway, Upstream, client, eventually, free_port, get};
use tokio::sync::oneshot;
use tokio::task::JoinSet;

/// Long enough for a change to travel registry -> watch -> cache -> routes
/// on a loaded machine; it normally takes milliseconds.
const DEADLINE: Duration = Duration::from_secs(20);

/// The real discovery server on a loopback port, stopped on drop.
struct Registry {
    addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
}

impl Registry {
    async fn start() -> Registry {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind registry");
        let addr = listener.local_addr().expect("address");
        let server = discovery_server::Server::new(discovery_server::ServerConfig::default())
            .expect("discovery server");
        let (tx, rx) = oneshot::channel::<()>();
        tokio::spawn(server.serve(listener, async {
            let _ = rx.await;
        }));
        Registry {
            addr,
            stop: Some(tx),
        }
    }

    fn url(&self) -> String {
        format!("http://{}/eureka/", self.addr)
    }

    /// Registers `id` of `app` at `127.0.0.1:port`, UP, with Eureka's JSON.
    async fn register(&self, app: &str, id: &str, port: u16) {
        let body = format!(
            r#"{{"instance":{{"instanceId":"{id}","hostName":"127.0.0.1","app":"{app}","ipAddr":"127.0.0.1",
            "status":"UP","port":{{"$":{port},"@enabled":"true"}},"securePort":{{"$":443,"@enabled":"false"}},
            "vipAddress":"{app}","lastDirtyTimestamp":"1",
            "dataCenterInfo":{{"@class":"com.netflix.appinfo.InstanceInfo$DefaultDataCenterInfo","name":"MyOwn"}}}}}}"#
        );
        let r = client()
            .post(format!("{}apps/{app}", self.url()))
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
            .expect("registry answers");
        assert_eq!(r.status().as_u16(), 204, "register {id}");
    }

    /// Overrides the status of `id` (Eureka's `PUT .../status?value=`).
    async fn set_status(&self, app: &str, id: &str, status: &str) {
        let r = client()
            .put(format!(
                "{}apps/{app}/{id}/status?value={status}",
                self.url()
            ))
            .send()
            .await
            .expect("registry answers");
        assert_eq!(r.status().as_u16(), 200, "status of {id}");
    }

    /// Cancels the lease of `id`.
    async fn cancel(&self, app: &str, id: &str) {
        let r = client()
            .delete(format!("{}apps/{app}/{id}", self.url()))
            .send()
            .await
            .expect("registry answers");
        assert_eq!(r.status().as_u16(), 200, "cancel {id}");
    }

    /// The registry's record of `app` (JSON), or `None` when unknown.
    async fn application(&self, app: &str) -> Option<Value> {
        let r = client()
            .get(format!("{}apps/{app}", self.url()))
            .header("accept", "application/json")
            .send()
            .await
            .expect("registry answers");
        if r.status().as_u16() != 200 {
            return None;
        }
        r.json().await.ok()
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
    }
}

/// The gateway in-process with `routes` (YAML below `spring.cloud.gateway`)
/// resolving through `registry`, and its discovery client.
async fn gateway(registry: &Registry, gateway_yaml: &str) -> (TestGateway, DiscoveryClient) {
    let yaml = format!(
        "spring.cloud.gateway:\n{gateway_yaml}\
         eureka.client:\n  service-url.defaultZone: {}\n  registry-fetch-interval-seconds: 1\n  \
         eureka-server-connect-timeout-seconds: 1\n  eureka-server-read-timeout-seconds: 2\n",
        registry.url()
    );
    let view = RegistryInstances::new();
    let resolver: Arc<dyn ServiceInstances> = view.clone();
    let gw = TestGateway::start_with(&yaml, Some(resolver)).await;
    let settings = client_settings(&gw.gateway.settings(), gw.proxy.port())
        .expect("valid eureka settings")
        .expect("a registry is configured");
    assert!(
        !settings.eureka.client.register_with_eureka,
        "the gateway does not register by default"
    );
    let discovery = view.start(settings).await.expect("discovery client starts");
    (gw, discovery)
}

const USERS_ROUTE: &str =
    "  routes:\n    - id: users\n      uri: lb://USERS\n      predicates: [Path=/users/**]\n";

/// Sends `n` requests at once; the upstream address of each 200 answer,
/// and the statuses of the others.
async fn spread(gw: &TestGateway, path: &str, n: usize) -> (Vec<String>, Vec<StatusCode>) {
    let mut set = JoinSet::new();
    for _ in 0..n {
        let url = gw.url(path);
        set.spawn(async move { get(&url).await });
    }
    let (mut servers, mut others) = (Vec::new(), Vec::new());
    while let Some(joined) = set.join_next().await {
        let (status, _, echo) = joined.expect("request task");
        match echo["server"].as_str() {
            Some(s) if status == StatusCode::OK => servers.push(s.to_owned()),
            _ => others.push(status),
        }
    }
    (servers, others)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lb_traffic_follows_instances_as_they_register_go_down_and_cancel() {
    let registry = Registry::start().await;
    let (a, b) = (Upstream::start().await, Upstream::start().await);
    let (a_addr, b_addr) = (a.addr.to_string(), b.addr.to_string());
    registry.register("USERS", "users-a", a.addr.port()).await;
    let (gw, discovery) = gateway(&registry, USERS_ROUTE).await;

    let (status, _, echo) = get(&gw.url("/users/1")).await;
    assert_eq!(status, StatusCode::OK, "{echo}");
    assert_eq!(echo["server"], a_addr.as_str());
    assert_eq!(echo["path"], "/users/1");

    // A second instance: it starts getting traffic (P2C sends it requests
    // once the first has some in flight).
    registry.register("USERS", "users-b", b.addr.port()).await;
    eventually(DEADLINE, "the new instance to get requests", || async {
        let (servers, others) = spread(&gw, "/users/2", 16).await;
        assert!(others.is_empty(), "every request answered: {others:?}");
        servers.contains(&b_addr)
    })
    .await;

    let metrics = gw.prometheus().await;
    assert!(
        metrics.contains("cloud_client_loadbalancer_instances{service=\"USERS\"} 2"),
        "{metrics}"
    );

    // DOWN: no more requests for it.
    registry.set_status("USERS", "users-a", "DOWN").await;
    eventually(DEADLINE, "the DOWN instance to be left out", || async {
        let (servers, others) = spread(&gw, "/users/3", 16).await;
        others.is_empty() && servers.iter().all(|s| *s == b_addr)
    })
    .await;
    let a_hits = a.hits();
    let (servers, _) = spread(&gw, "/users/4", 16).await;
    assert_eq!(servers.len(), 16);
    assert_eq!(a.hits(), a_hits, "the DOWN instance got a request");

    // Cancelled: no instance is UP, so 503 with Spring's JSON body.
    registry.cancel("USERS", "users-b").await;
    eventually(DEADLINE, "503 once no instance is UP", || async {
        get(&gw.url("/users/5")).await.0 == StatusCode::SERVICE_UNAVAILABLE
    })
    .await;
    let (_, headers, body) = get(&gw.url("/users/5")).await;
    assert_eq!(
        headers
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .map(|v| v.starts_with("application/json")),
        Some(true)
    );
    assert_eq!(body["status"], 503);
    assert_eq!(body["path"], "/users/5");
    assert!(
        body["message"]
            .as_str()
            .is_some_and(|m| m.contains("USERS")),
        "{body}"
    );
    discovery.shutdown().await.expect("client stops");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_discovery_locator_routes_a_service_while_it_is_registered() {
    let registry = Registry::start().await;
    let up = Upstream::start().await;
    let (gw, discovery) = gateway(
        &registry,
        "  discovery.locator:\n    enabled: true\n    lower-case-service-id: true\n",
    )
    .await;
    assert_eq!(get(&gw.url("/orders/42")).await.0, StatusCode::NOT_FOUND);

    registry
        .register("ORDERS", "orders-1", up.addr.port())
        .await;
    eventually(DEADLINE, "the locator route for ORDERS", || async {
        get(&gw.url("/orders/42")).await.0 == StatusCode::OK
    })
    .await;
    let (_, _, echo) = get(&gw.url("/orders/42?x=1")).await;
    assert_eq!(echo["path"], "/42", "the service segment is removed");
    assert_eq!(echo["query"], "x=1");
    let (_, _, routes) = get(&gw.admin_url("/actuator/gateway/routes")).await;
    let ids: BTreeSet<String> = routes
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|r| r["route_id"].as_str().map(str::to_owned))
        .collect();
    assert!(
        ids.contains("ReactiveCompositeDiscoveryClient_ORDERS"),
        "{routes}"
    );

    registry.cancel("ORDERS", "orders-1").await;
    eventually(DEADLINE, "the locator route to go", || async {
        get(&gw.url("/orders/42")).await.0 == StatusCode::NOT_FOUND
    })
    .await;
    discovery.shutdown().await.expect("client stops");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_shows_the_registry_and_routes_go_on_from_the_cache_when_it_is_gone() {
    let registry = Registry::start().await;
    let up = Upstream::start().await;
    registry.register("USERS", "users-a", up.addr.port()).await;
    let (gw, discovery) = gateway(&registry, USERS_ROUTE).await;
    let health = || async {
        let (status, _, body) = get(&gw.admin_url("/actuator/health")).await;
        assert_eq!(status, StatusCode::OK);
        body
    };
    let h = health().await;
    assert_eq!(h["status"], "UP");
    let component = &h["components"]["discoveryClient"];
    assert_eq!(component["status"], "UP", "{h}");
    assert_eq!(component["details"]["instances"], 1, "{h}");
    assert_eq!(component["details"]["servingStale"], false, "{h}");
    assert_eq!(component["details"]["registered"], false, "{h}");

    drop(registry);
    eventually(DEADLINE, "health to say the cache is stale", || async {
        let h = health().await;
        h["status"] == "UP"
            && h["components"]["discoveryClient"]["status"] == "UNKNOWN"
            && h["components"]["discoveryClient"]["details"]["servingStale"] == true
    })
    .await;
    let (status, _, echo) = get(&gw.url("/users/1")).await;
    assert_eq!(status, StatusCode::OK, "served from the cache: {echo}");
    assert_eq!(echo["server"], up.addr.to_string());
    discovery.shutdown().await.expect("client stops");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn binary_resolves_lb_routes_through_the_registry_named_in_the_environment() {
    let registry = Registry::start().await;
    let up = Upstream::start().await;
    registry.register("USERS", "users-a", up.addr.port()).await;
    let dir = tempfile::tempdir().expect("temp dir");
    let file = dir.path().join("application.yml");
    std::fs::write(
        &file,
        format!("server.address: 127.0.0.1\nspring.cloud.gateway:\n{USERS_ROUTE}"),
    )
    .expect("write config");
    let (port, admin) = (free_port(), free_port());
    let child = Child(
        Command::new(env!("CARGO_BIN_EXE_api-gateway"))
            .args([
                "--port",
                &port.to_string(),
                "--admin-port",
                &admin.to_string(),
                "--drain-timeout",
                "1s",
                "--config",
            ])
            .arg(&file)
            .env("EUREKA_CLIENT_SERVICEURL_DEFAULTZONE", registry.url())
            .env("EUREKA_CLIENT_REGISTRYFETCHINTERVALSECONDS", "1")
            .env("EUREKA_CLIENT_REGISTERWITHEUREKA", "true")
            .env("EUREKA_INSTANCE_HOSTNAME", "127.0.0.1")
            .env("SPRING_APPLICATION_NAME", "edge")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("binary starts"),
    );
    let url = format!("http://127.0.0.1:{port}/users/7");
    eventually(
        DEADLINE,
        "the binary to route through the registry",
        || async {
            match client().get(&url).send().await {
                Ok(r) => r.status().as_u16() == 200,
                Err(_) => false,
            }
        },
    )
    .await;
    let (_, _, echo) = get(&url).await;
    assert_eq!(echo["server"], up.addr.to_string());

    let (_, _, health) = get(&format!("http://127.0.0.1:{admin}/actuator/health")).await;
    assert_eq!(
        health["components"]["discoveryClient"]["status"], "UP",
        "{health}"
    );
    // Asked to, it registers itself under its name with its proxy port,
    // and cancels that on SIGTERM.
    let edge = registry.application("EDGE").await.expect("EDGE registered");
    let instance = &edge["application"]["instance"][0];
    assert_eq!(instance["port"]["$"], port, "{edge}");
    let killed = Command::new("kill")
        .args(["-TERM", &child.0.id().to_string()])
        .status()
        .expect("kill runs");
    assert!(killed.success());
    eventually(DEADLINE, "the gateway to deregister", || async {
        registry.application("EDGE").await.is_none()
    })
    .await;
}
