//! Interop with Spring itself: a Spring Boot 3.5 / Spring Cloud 2025.0
//! service (spring-cloud-starter-netflix-eureka-client + LoadBalancer, from
//! `interop/spring/service`) against our registry, and our registry peered
//! with the reference Spring Cloud Netflix Eureka Server
//! (`interop/spring/eureka-server`). The jars come from `scripts/prereqs`.

#![allow(clippy::unwrap_used)]

mod support;

use std::collections::HashMap;
use std::path::PathBuf;
use std::time::Duration;

use axum::Router;
use axum::routing::get;
use discovery_server::ServerConfig;
use discovery_server::config::Overrides;
use serde_json::Value;
use support::differential::{Answer, Differences, KnownDifference, mask_json};
use support::{
    JVM_START, Running, SpringApp, eventually, get_json, instance_json, register_json,
    within_scenario_deadline,
};
use tokio::net::TcpListener;

/// An HTTP upstream on `127.0.0.1:0` answering `GET /hello`; the Spring
/// service reaches it by name only, through our registry.
async fn stub_upstream() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let app = Router::new().route("/hello", get(|| async { "hello from the rust stub" }));
    tokio::spawn(async move { axum::serve(listener, app).await });
    port
}

/// The reference Eureka Server's own `application.yml`
/// (`interop/spring/eureka-server`), which our node reads unchanged too.
fn reference_settings_file() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../interop/spring/eureka-server/src/main/resources/application.yml")
}

/// Our node started the way the reference is: from the reference's own
/// `application.yml`, with `server.port` (the bound port) and, when given,
/// the peer list from the command line (`--port`, `--peer`, as the reference
/// gets `--server.port` and `--eureka.client.service-url.defaultZone`).
fn ours_from_reference_file(listener: TcpListener, peers: &[String]) -> Running {
    let port = listener.local_addr().unwrap().port();
    let overrides = Overrides {
        port: Some(port),
        peers: peers.to_vec(),
        ..Overrides::default()
    };
    let config = ServerConfig::load(
        Some(&reference_settings_file()),
        &HashMap::<String, String>::new(),
        &overrides,
    )
    .unwrap();
    assert!(
        !config.registry.self_preservation,
        "read from the reference's file"
    );
    if peers.is_empty() {
        // The file's own peer list (`http://127.0.0.1:${server.port}/eureka/`)
        // names this node, which never replicates to itself.
        assert_eq!(
            config.peers,
            [format!("http://127.0.0.1:{port}/eureka/")],
            "the file's defaultZone with the port resolved"
        );
    }
    Running::serve(listener, config)
}

/// [`ours_from_reference_file`] on a fresh port.
async fn start_ours_standalone() -> Running {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    ours_from_reference_file(listener, &[])
}

/// The Spring flags that point the service at `eureka` with one-second
/// renewals and registry fetches.
fn service_args(eureka: &str, instance_id: &str) -> Vec<String> {
    [
        "--server.port=0".to_owned(),
        format!("--eureka.client.service-url.defaultZone={eureka}"),
        format!("--eureka.instance.instance-id={instance_id}"),
        "--eureka.instance.metadata-map.zone=z1".to_owned(),
        "--eureka.instance.lease-renewal-interval-in-seconds=1".to_owned(),
        "--eureka.client.registry-fetch-interval-seconds=1".to_owned(),
    ]
    .into()
}

fn timestamp(instance: &Value, key: &str) -> i64 {
    let v = &instance["instance"]["leaseInfo"][key];
    v.as_i64()
        .or_else(|| v.as_str().and_then(|s| s.parse().ok()))
        .unwrap_or_else(|| panic!("no leaseInfo.{key} in {instance}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spring_service_registers_renews_discovers_and_cancels_with_our_registry() {
    within_scenario_deadline(spring_client_scenario()).await;
}

async fn spring_client_scenario() {
    let running = start_ours_standalone().await;
    let eureka = running.eureka_url();
    let upstream = stub_upstream().await;
    let stub = instance_json("STUB-UPSTREAM", "stub-1", upstream);
    assert_eq!(register_json(&eureka, "STUB-UPSTREAM", &stub).await, 204);

    let id = "spring-svc-1";
    let mut spring = SpringApp::start("service", service_args(&eureka, id));
    let port = spring.http_port(JVM_START).await;
    let own = running.url(&format!("/eureka/apps/INTEROP-SERVICE/{id}"));

    // 1. Registered UP, with its real port, metadata and lease settings.
    eventually(Duration::from_secs(30), "the Spring registration", || {
        let own = own.clone();
        async move { get_json(&own).await.0 == 200 }
    })
    .await;
    let (_, registered) = get_json(&own).await;
    let info = &registered["instance"];
    assert_eq!(info["status"], "UP", "{registered}");
    assert_eq!(info["app"], "INTEROP-SERVICE");
    assert_eq!(info["vipAddress"], "interop-service");
    assert_eq!(
        info["port"]["$"].to_string().trim_matches('"'),
        port.to_string()
    );
    assert_eq!(info["metadata"]["zone"], "z1", "{registered}");
    assert_eq!(
        info["leaseInfo"]["renewalIntervalInSecs"].to_string(),
        "1",
        "{registered}"
    );

    // 2. It renews: lastRenewalTimestamp moves.
    let first = timestamp(&registered, "lastRenewalTimestamp");
    eventually(Duration::from_secs(15), "a renewal from Spring", || {
        let own = own.clone();
        async move { timestamp(&get_json(&own).await.1, "lastRenewalTimestamp") > first }
    })
    .await;

    // 3. It fetched the registry: a call by name through Spring Cloud
    // LoadBalancer reaches the stub registered with us over REST.
    let call = format!("http://127.0.0.1:{port}/call/stub-upstream/hello");
    let client = reqwest::Client::new();
    eventually(
        Duration::from_secs(30),
        "Spring calling stub-upstream by name",
        || {
            let request = client.get(&call).send();
            async move {
                match request.await {
                    Ok(r) if r.status() == 200 => {
                        r.text().await.unwrap() == "hello from the rust stub"
                    }
                    _ => false,
                }
            }
        },
    )
    .await;

    // 4. A graceful shutdown cancels the lease before the JVM exits.
    spring.terminate(Duration::from_secs(30)).await;
    assert!(
        spring.logged("deregister  status: 200"),
        "{}",
        spring.log_tail()
    );
    assert_eq!(get_json(&own).await.0, 404, "cancelled on shutdown");
    let (_, apps) = get_json(&running.url("/eureka/apps")).await;
    assert!(
        !apps.to_string().contains(id),
        "gone from the full registry: {apps}"
    );
    running.stop().await;
}

/// A TCP forwarder on `127.0.0.1:0` to an address learnt later: our node
/// needs its peer's URL when it starts, the reference server's port is only
/// known once it has started (with `--server.port=0`), and the reference
/// needs our URL to start. Connections made before the target is known are
/// closed at once (a refused connection, which our replication retries).
struct Forwarder {
    port: u16,
    target: tokio::sync::watch::Sender<Option<u16>>,
}

impl Forwarder {
    async fn start() -> Forwarder {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let (target, rx) = tokio::sync::watch::channel(None::<u16>);
        tokio::spawn(async move {
            while let Ok((mut inbound, _)) = listener.accept().await {
                let Some(to) = *rx.borrow() else {
                    continue;
                };
                tokio::spawn(async move {
                    if let Ok(mut outbound) =
                        tokio::net::TcpStream::connect(("127.0.0.1", to)).await
                    {
                        let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                    }
                });
            }
        });
        Forwarder { port, target }
    }

    /// The Eureka URL our node uses for the forwarded peer.
    fn peer_url(&self) -> String {
        format!("http://127.0.0.1:{}/eureka/", self.port)
    }

    fn forward_to(&self, port: u16) {
        self.target.send_replace(Some(port));
    }
}

/// The status of a write to a Eureka server.
async fn write(method: reqwest::Method, url: String) -> u16 {
    reqwest::Client::new()
        .request(method, url)
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

/// Waits until `GET url` (JSON) satisfies `check`; returns the last body.
async fn wait_json(url: &str, what: &str, check: impl Fn(u16, &Value) -> bool) -> Value {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let last = get_json(url).await;
        if check(last.0, &last.1) {
            return last.1;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what} at {url}; last answer: {} {}",
            last.0,
            last.1
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Registers `app`/`id` at `writer`, renews it, overrides its status and
/// cancels it there; after each step the change must show at `reader`.
async fn replicated_lifecycle(writer: &str, reader: &str, app: &str, id: &str) {
    let at_reader = format!("{reader}apps/{app}/{id}");
    let at_writer = format!("{writer}apps/{app}/{id}");
    let body = instance_json(app, id, 4321);
    assert_eq!(
        register_json(writer, app, &body).await,
        204,
        "register at {writer}"
    );
    let seen = wait_json(&at_reader, "the replicated registration", |s, v| {
        s == 200 && v["instance"]["status"] == "UP"
    })
    .await;
    assert_eq!(seen["instance"]["metadata"]["zone"], "z1", "{seen}");
    assert_eq!(seen["instance"]["ipAddr"], "127.0.0.1", "{seen}");

    let before = timestamp(&seen, "lastRenewalTimestamp");
    // One renewal, as a client sends it: Eureka's batching replicates a
    // heartbeat only once no newer one for the same instance has come for
    // its batching delay (500 ms), so renewals in a tight loop never leave.
    let renew = format!("{at_writer}?status=UP&lastDirtyTimestamp=1700000000000");
    assert_eq!(
        write(reqwest::Method::PUT, renew).await,
        200,
        "renew at writer"
    );
    wait_json(&at_reader, "the replicated renewal", |s, v| {
        s == 200 && timestamp(v, "lastRenewalTimestamp") > before
    })
    .await;

    let status =
        format!("{at_writer}/status?value=OUT_OF_SERVICE&lastDirtyTimestamp=1700000000000");
    assert_eq!(
        write(reqwest::Method::PUT, status).await,
        200,
        "override at writer"
    );
    let seen = wait_json(&at_reader, "the replicated status override", |s, v| {
        s == 200 && v["instance"]["status"] == "OUT_OF_SERVICE"
    })
    .await;
    assert_eq!(
        seen["instance"]["overriddenStatus"], "OUT_OF_SERVICE",
        "{seen}"
    );

    assert_eq!(
        write(reqwest::Method::DELETE, at_writer).await,
        200,
        "cancel at writer"
    );
    wait_json(&at_reader, "the replicated cancel", |s, _| s == 404).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn our_registry_and_the_reference_eureka_server_replicate_to_each_other() {
    within_scenario_deadline(mixed_cluster_scenario()).await;
}

/// Our node and the reference Eureka Server as peers of each other: our
/// node's peer is a [`Forwarder`] to the reference, the reference's peer is
/// our node's port.
struct MixedCluster {
    forwarder: Forwarder,
    ours: Option<Running>,
    reference: SpringApp,
    reference_url: String,
}

impl MixedCluster {
    async fn start() -> MixedCluster {
        let forwarder = Forwarder::start().await;
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let ours = ours_from_reference_file(listener, &[forwarder.peer_url()]);
        // Eureka drops every peer URL whose host equals its own host name
        // (PeerEurekaNodes.isThisMyUrl), and both run on 127.0.0.1: the
        // reference reaches us as `localhost`.
        let ours_as_peer = format!("http://localhost:{}/eureka/", ours.addr.port());
        let mut reference = SpringApp::start(
            "eureka-server",
            [
                "--server.port=0".to_owned(),
                format!("--eureka.client.service-url.defaultZone={ours_as_peer}"),
                "--eureka.client.register-with-eureka=true".to_owned(),
                "--eureka.client.fetch-registry=true".to_owned(),
                "--eureka.client.registry-fetch-interval-seconds=1".to_owned(),
                "--eureka.client.initial-instance-info-replication-interval-seconds=1".to_owned(),
                "--eureka.instance.instance-id=reference-eureka-1".to_owned(),
                "--eureka.instance.lease-renewal-interval-in-seconds=1".to_owned(),
            ],
        );
        let reference_port = reference.http_port(JVM_START).await;
        forwarder.forward_to(reference_port);
        let reference_url = format!("http://127.0.0.1:{reference_port}/eureka/");
        MixedCluster {
            forwarder,
            ours: Some(ours),
            reference,
            reference_url,
        }
    }

    /// Stops our node; returns the address it listened on.
    async fn stop_ours(&mut self) -> std::net::SocketAddr {
        let ours = self.ours.take().expect("our node is running");
        let addr = ours.addr;
        ours.stop().await;
        addr
    }

    /// Starts a new node of ours, from the same file, on `addr` (the port
    /// the reference knows as its peer).
    async fn start_ours_again(&mut self, addr: std::net::SocketAddr) {
        assert!(self.ours.is_none(), "our node is still running");
        let listener = rebind(addr).await;
        self.ours = Some(ours_from_reference_file(
            listener,
            &[self.forwarder.peer_url()],
        ));
    }

    /// Our node's Eureka URL.
    fn ours_url(&self) -> String {
        self.ours
            .as_ref()
            .expect("our node is running")
            .eureka_url()
    }

    async fn stop(self) {
        drop(self.reference);
        if let Some(ours) = self.ours {
            ours.stop().await;
        }
    }
}

/// Binds `addr` again once the stopped server has let it go.
async fn rebind(addr: std::net::SocketAddr) -> TcpListener {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        match TcpListener::bind(addr).await {
            Ok(listener) => return listener,
            Err(e) => assert!(
                tokio::time::Instant::now() < deadline,
                "cannot bind {addr} again: {e}"
            ),
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn mixed_cluster_scenario() {
    let cluster = MixedCluster::start().await;
    let ours_url = cluster.ours_url();
    let reference_url = cluster.reference_url.clone();

    // The reference registers itself with us, as a Eureka client.
    wait_json(
        &format!("{ours_url}apps/REFERENCE-EUREKA/reference-eureka-1"),
        "the reference server's own registration",
        |s, _| s == 200,
    )
    .await;

    // Ours -> reference, then reference -> ours.
    replicated_lifecycle(&ours_url, &reference_url, "MIXED-FROM-OURS", "ours-1").await;
    replicated_lifecycle(&reference_url, &ours_url, "MIXED-FROM-REFERENCE", "ref-1").await;

    cluster.stop().await;
}

/// An instance registered by the durability scenario: a lease long enough
/// that no eviction runs during the test (nobody renews it).
fn durable_instance(app: &str, id: &str, port: u16) -> Value {
    let mut body = instance_json(app, id, port);
    body["instance"]["leaseInfo"] =
        serde_json::json!({"renewalIntervalInSecs": 30, "durationInSecs": 600});
    body
}

/// Waits until `eureka` shows `app`/`id` with `status`.
async fn wait_status(eureka: &str, app: &str, id: &str, status: &str, what: &str) {
    wait_json(&format!("{eureka}apps/{app}/{id}"), what, |s, v| {
        s == 200 && v["instance"]["status"] == status
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restarting_our_node_beside_the_reference_eureka_server_loses_nothing() {
    within_scenario_deadline(restart_scenario()).await;
}

async fn restart_scenario() {
    let mut cluster = MixedCluster::start().await;
    let ours_url = cluster.ours_url();
    let reference_url = cluster.reference_url.clone();

    // Before the restart: one instance registered with us, one with the
    // reference, both replicated.
    let before_ours = durable_instance("DURABLE-OURS", "before-ours", 5001);
    assert_eq!(
        register_json(&ours_url, "DURABLE-OURS", &before_ours).await,
        204
    );
    let before_reference = durable_instance("DURABLE-REFERENCE", "before-ref", 5002);
    assert_eq!(
        register_json(&reference_url, "DURABLE-REFERENCE", &before_reference).await,
        204
    );
    for eureka in [&ours_url, &reference_url] {
        wait_status(
            eureka,
            "DURABLE-OURS",
            "before-ours",
            "UP",
            "registered on ours",
        )
        .await;
        wait_status(
            eureka,
            "DURABLE-REFERENCE",
            "before-ref",
            "UP",
            "registered on the reference",
        )
        .await;
    }

    // Our node goes down; meanwhile the reference takes a registration and
    // a status override of an instance first registered with us.
    let addr = cluster.stop_ours().await;
    assert!(
        reqwest::get(format!("{ours_url}apps")).await.is_err(),
        "our node is down"
    );
    let while_down = durable_instance("DURABLE-WHILE-DOWN", "while-down", 5003);
    assert_eq!(
        register_json(&reference_url, "DURABLE-WHILE-DOWN", &while_down).await,
        204
    );
    let override_url = format!(
        "{reference_url}apps/DURABLE-OURS/before-ours/status?value=OUT_OF_SERVICE&lastDirtyTimestamp=1700000000000"
    );
    assert_eq!(write(reqwest::Method::PUT, override_url).await, 200);

    // A new node on the same port, from the same file: its first reads wait
    // for the copy of the reference's registry.
    cluster.start_ours_again(addr).await;
    assert_eq!(cluster.ours_url(), ours_url, "the same port");
    let (status, apps) = get_json(&format!("{ours_url}apps")).await;
    assert_eq!(status, 200, "{apps}");
    for id in ["before-ours", "before-ref", "while-down"] {
        assert!(
            apps.to_string().contains(id),
            "{id} in the restarted node's first full registry: {apps}"
        );
    }
    let (_, overridden) = get_json(&format!("{ours_url}apps/DURABLE-OURS/before-ours")).await;
    assert_eq!(
        overridden["instance"]["status"], "OUT_OF_SERVICE",
        "{overridden}"
    );
    assert_eq!(
        overridden["instance"]["overriddenStatus"], "OUT_OF_SERVICE",
        "{overridden}"
    );

    // Nothing lost on the reference either.
    wait_status(
        &reference_url,
        "DURABLE-OURS",
        "before-ours",
        "OUT_OF_SERVICE",
        "kept",
    )
    .await;
    wait_status(
        &reference_url,
        "DURABLE-REFERENCE",
        "before-ref",
        "UP",
        "kept",
    )
    .await;
    wait_status(
        &reference_url,
        "DURABLE-WHILE-DOWN",
        "while-down",
        "UP",
        "kept",
    )
    .await;

    // And the pair replicates again, both ways.
    replicated_lifecycle(
        &ours_url,
        &reference_url,
        "AFTER-RESTART-OURS",
        "after-ours",
    )
    .await;
    replicated_lifecycle(&reference_url, &ours_url, "AFTER-RESTART-REF", "after-ref").await;

    cluster.stop().await;
}

/// One request of the Eureka differential script.
struct Step {
    name: &'static str,
    method: reqwest::Method,
    path: String,
    accept: &'static str,
    body: Option<String>,
}

fn step(name: &'static str, method: reqwest::Method, path: &str) -> Step {
    Step {
        name,
        method,
        path: path.to_owned(),
        accept: "application/json",
        body: None,
    }
}

/// A second instance, registered with an XML body as Java clients may send.
const XML_REGISTRATION: &str = concat!(
    "<instance><instanceId>diff-2</instanceId><hostName>127.0.0.1</hostName>",
    "<app>DIFF-APP</app><ipAddr>127.0.0.1</ipAddr><status>UP</status>",
    "<overriddenstatus>UNKNOWN</overriddenstatus><port enabled=\"true\">8081</port>",
    "<securePort enabled=\"false\">443</securePort><countryId>1</countryId>",
    "<dataCenterInfo class=\"com.netflix.appinfo.InstanceInfo$DefaultDataCenterInfo\">",
    "<name>MyOwn</name></dataCenterInfo><leaseInfo><renewalIntervalInSecs>1</renewalIntervalInSecs>",
    "<durationInSecs>10</durationInSecs></leaseInfo><metadata><zone>z2</zone></metadata>",
    "<vipAddress>diff-app</vipAddress><secureVipAddress>diff-app</secureVipAddress>",
    "<lastDirtyTimestamp>1700000000000</lastDirtyTimestamp></instance>"
);

/// The scripted sequence sent to both servers: the lifecycle of one
/// instance through the REST API, with the reads a client makes between.
fn eureka_script() -> Vec<Step> {
    use reqwest::Method;
    let get = |name, path: &str| step(name, Method::GET, path);
    let put = |name, path: &str| step(name, Method::PUT, path);
    let post = |name, path: &str| step(name, Method::POST, path);
    let delete = |name, path: &str| step(name, Method::DELETE, path);
    let instance = "/eureka/apps/DIFF-APP/diff-1";
    let registration = instance_json("DIFF-APP", "diff-1", 8080).to_string();
    let with_body = |mut s: Step, body: &str| {
        s.body = Some(body.to_owned());
        s
    };
    let as_xml = |mut s: Step| {
        s.accept = "application/xml";
        s
    };
    vec![
        with_body(post("register", "/eureka/apps/DIFF-APP"), &registration),
        with_body(
            post("register malformed", "/eureka/apps/DIFF-APP"),
            "{\"instance\": {",
        ),
        with_body(
            post("register xml", "/eureka/apps/DIFF-APP"),
            XML_REGISTRATION,
        ),
        get("instance registered as xml", "/eureka/apps/DIFF-APP/diff-2"),
        delete(
            "cancel instance registered as xml",
            "/eureka/apps/DIFF-APP/diff-2",
        ),
        get("instance", instance),
        as_xml(get("instance as xml", instance)),
        get("application by lowercase name", "/eureka/apps/diff-app"),
        get("application", "/eureka/apps/DIFF-APP"),
        get("all applications", "/eureka/apps"),
        as_xml(get("all applications as xml", "/eureka/apps")),
        put(
            "renew",
            &format!("{instance}?status=UP&lastDirtyTimestamp=1700000000000"),
        ),
        put(
            "renew unknown",
            "/eureka/apps/DIFF-APP/nobody?status=UP&lastDirtyTimestamp=1700000000000",
        ),
        put(
            "renew newer dirty timestamp",
            &format!("{instance}?status=UP&lastDirtyTimestamp=1800000000000"),
        ),
        put(
            "renew older dirty timestamp",
            &format!("{instance}?status=UP&lastDirtyTimestamp=1600000000000"),
        ),
        put(
            "status override",
            &format!("{instance}/status?value=OUT_OF_SERVICE&lastDirtyTimestamp=1700000000000"),
        ),
        get("instance out of service", instance),
        put(
            "status override unknown",
            "/eureka/apps/DIFF-APP/nobody/status?value=OUT_OF_SERVICE",
        ),
        put(
            "status override bogus value",
            &format!("{instance}/status?value=BOGUS"),
        ),
        delete(
            "delete status override unknown",
            "/eureka/apps/DIFF-APP/nobody/status",
        ),
        put(
            "metadata unknown",
            "/eureka/apps/DIFF-APP/nobody/metadata?team=a",
        ),
        get("by vip", "/eureka/vips/diff-app"),
        get("by unknown vip", "/eureka/vips/nobody"),
        get("by secure vip", "/eureka/svips/diff-app"),
        get("by instance id", "/eureka/instances/diff-1"),
        delete(
            "delete status override",
            &format!("{instance}/status?value=UP&lastDirtyTimestamp=1700000000000"),
        ),
        get("instance after override", instance),
        put("metadata", &format!("{instance}/metadata?team=a")),
        get("instance with metadata", instance),
        get("delta", "/eureka/apps/delta"),
        delete("cancel", instance),
        delete("cancel again", instance),
        get("application after cancel", "/eureka/apps/DIFF-APP"),
        get("instance after cancel", instance),
        get("all applications after cancel", "/eureka/apps"),
    ]
}

/// Masks timestamps (every key that names one, and in XML every run of 13
/// digits), the registry's delta version and XML indentation; orders the
/// instances of an application by id (neither server promises an order).
fn normalize_eureka(body: &str) -> Value {
    match serde_json::from_str::<Value>(body) {
        Ok(mut v) => {
            mask_json(&mut v, &|k| {
                k.to_ascii_lowercase().contains("timestamp") || k == "versions__delta"
            });
            sort_instances(&mut v);
            v
        }
        Err(_) => {
            let mut out = String::with_capacity(body.len());
            let mut digits = String::new();
            for c in body.chars().chain(std::iter::once('\0')) {
                if c.is_ascii_digit() {
                    digits.push(c);
                    continue;
                }
                out.push_str(if digits.len() >= 13 { "<ts>" } else { &digits });
                digits.clear();
                if c != '\0' {
                    out.push(c);
                }
            }
            // Indentation is not significant in XML.
            let lines: Vec<&str> = out
                .lines()
                .map(str::trim)
                .filter(|l| !l.starts_with("<versions__delta>"))
                .collect();
            Value::String(lines.join("\n").trim_end().to_owned())
        }
    }
}

fn sort_instances(v: &mut Value) {
    match v {
        Value::Object(map) => {
            if let Some(Value::Array(instances)) = map.get_mut("instance") {
                instances.sort_by_key(|i| i["instanceId"].to_string());
            }
            map.values_mut().for_each(sort_instances);
        }
        Value::Array(items) => items.iter_mut().for_each(sort_instances),
        _ => {}
    }
}

async fn send_step(client: &reqwest::Client, base: &str, step: &Step) -> Answer {
    let mut request = client
        .request(step.method.clone(), format!("{base}{}", step.path))
        .header("accept", step.accept);
    if let Some(body) = &step.body {
        request = request
            .header(
                "content-type",
                if body.starts_with('<') {
                    "application/xml"
                } else {
                    "application/json"
                },
            )
            .body(body.clone());
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    let raw = response.text().await.unwrap();
    let normalized = normalize_eureka(&raw);
    Answer {
        status,
        raw,
        normalized,
    }
}

/// Differences between the reference Eureka Server and ours, reported to
/// the lead (see `Differences::assert_known`).
const EUREKA_KNOWN_DIFFERENCES: &[KnownDifference] = &[
    (
        "register malformed",
        &["/error", "/reason"],
        "both 400; reference body {\"error\": \"cannot parse request body\"}, ours {\"error\":\"Bad Request\",\"reason\":...}",
    ),
    (
        "instance with metadata",
        &["/instance/actionType"],
        "Eureka re-registers on a metadata update (actionType ADDED); ours says MODIFIED",
    ),
    (
        "delta",
        &["/applications/application/0/instance/0/actionType"],
        "the same ADDED vs MODIFIED after the metadata update",
    ),
    (
        "status override bogus value",
        &[
            "<status>",
            "/error",
            "/path",
            "/reason",
            "/status",
            "/timestamp",
        ],
        "reference 500 (InstanceStatus.valueOf throws), ours 400 with a reason",
    ),
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reference_eureka_server_and_ours_answer_the_same_script_alike() {
    within_scenario_deadline(eureka_differential_scenario()).await;
}

async fn eureka_differential_scenario() {
    let ours = start_ours_standalone().await;
    let mut reference = SpringApp::start("eureka-server", ["--server.port=0"]);
    let reference_base = format!("http://127.0.0.1:{}", reference.http_port(JVM_START).await);
    let ours_base = format!("http://{}", ours.addr);
    let client = reqwest::Client::new();
    let mut differences = Differences::default();
    for step in eureka_script() {
        let theirs = send_step(&client, &reference_base, &step).await;
        let mine = send_step(&client, &ours_base, &step).await;
        let request = format!(
            "{} {} (Accept: {}){}",
            step.method,
            step.path,
            step.accept,
            step.body
                .as_ref()
                .map(|b| format!(" body={b}"))
                .unwrap_or_default()
        );
        differences.compare(step.name, &request, &theirs, &mine);
    }
    differences.assert_known(EUREKA_KNOWN_DIFFERENCES);
    drop(reference);
    ours.stop().await;
}
