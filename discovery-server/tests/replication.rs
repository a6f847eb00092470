//! Peer replication between in-process nodes on loopback: changes made
//! through one node show on the others, heartbeat conflicts resolve by
//! `lastDirtyTimestamp`, a dead peer costs bounded memory and shows as
//! unhealthy, and a starting node copies the registry before serving reads.

#![allow(clippy::unwrap_used)]

mod support;

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use cloud_protocol::eureka::{InstanceInfo, InstanceStatus, json};
use discovery_server::ServerConfig;
use discovery_server::registry::{Origin, RenewRequest};
use discovery_server::replication::ReplicationSettings;
use support::{Running, eureka_url_of, eventually, get_text, instance, send_expecting};
use tokio::net::TcpListener;

const WITHIN: Duration = Duration::from_secs(10);

async fn listeners(n: usize) -> Vec<TcpListener> {
    let mut out = Vec::new();
    for _ in 0..n {
        out.push(TcpListener::bind("127.0.0.1:0").await.unwrap());
    }
    out
}

fn start(listener: TcpListener, peers: Vec<String>, settings: ReplicationSettings) -> Running {
    let config = ServerConfig {
        peers,
        replication: settings,
        ..ServerConfig::default()
    };
    Running::serve(listener, config)
}

/// Nodes that each have all the others as peers.
async fn cluster(n: usize) -> Vec<Running> {
    let ls = listeners(n).await;
    let urls: Vec<String> = ls.iter().map(eureka_url_of).collect();
    ls.into_iter()
        .enumerate()
        .map(|(i, l)| {
            let peers = urls
                .iter()
                .enumerate()
                .filter(|(j, _)| *j != i)
                .map(|(_, u)| u.clone())
                .collect();
            start(l, peers, ReplicationSettings::default())
        })
        .collect()
}

fn has(node: &Running, app: &str, id: &str, check: impl Fn(&InstanceInfo) -> bool) -> bool {
    node.server
        .node()
        .registry()
        .instance(app, id)
        .is_some_and(|(i, _)| check(&i))
}

/// Waits until `holds` is true of each of `nodes`.
async fn on_each(nodes: &[&Running], what: &str, holds: impl Fn(&Running) -> bool) {
    for node in nodes {
        eventually(WITHIN, what, || {
            let held = holds(node);
            async move { held }
        })
        .await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn changes_through_one_node_show_on_the_others() {
    let nodes = cluster(3).await;
    let http = reqwest::Client::new();
    let (a, b, c) = (&nodes[0], &nodes[1], &nodes[2]);

    // Register through A (over HTTP, as a client would).
    let body = json::encode_instance(&instance("ORDERS", "orders-1"));
    let register = http
        .post(format!("{}apps/ORDERS", a.eureka_url()))
        .header("Content-Type", "application/json")
        .body(body);
    send_expecting(register, 204).await;
    on_each(&[b, c], "registration replicated", |n| {
        has(n, "ORDERS", "orders-1", |i| i.status == InstanceStatus::Up)
    })
    .await;

    // A renewal through A renews the lease on B: B counts one more
    // renewal (no wall-clock wait for the timestamp to move).
    let renewals_on_b = || {
        b.server
            .node()
            .metrics()
            .renewals
            .load(std::sync::atomic::Ordering::Relaxed)
    };
    let before = renewals_on_b();
    let orders_1 =
        |node: &Running, rest: &str| format!("{}apps/ORDERS/orders-1{rest}", node.eureka_url());
    send_expecting(http.put(orders_1(a, "")), 200).await;
    eventually(WITHIN, "heartbeat replicated", || async {
        renewals_on_b() > before
    })
    .await;

    // Status override and metadata through B reach A and C.
    send_expecting(http.put(orders_1(b, "/status?value=OUT_OF_SERVICE")), 200).await;
    send_expecting(http.put(orders_1(b, "/metadata?zone=east")), 200).await;
    on_each(&[a, c], "override and metadata replicated", |n| {
        has(n, "ORDERS", "orders-1", |i| {
            i.status == InstanceStatus::OutOfService
                && i.overridden_status == InstanceStatus::OutOfService
                && i.metadata.get("zone") == Some("east")
        })
    })
    .await;
    send_expecting(http.delete(orders_1(c, "/status")), 200).await;
    on_each(&[a, b], "override removal replicated", |n| {
        has(n, "ORDERS", "orders-1", |i| {
            i.status == InstanceStatus::Up && i.overridden_status == InstanceStatus::Unknown
        })
    })
    .await;

    // Cancel through C removes it everywhere.
    send_expecting(http.delete(orders_1(c, "")), 200).await;
    on_each(&[a, b], "cancel replicated", |n| {
        n.server
            .node()
            .registry()
            .instance("ORDERS", "orders-1")
            .is_none()
    })
    .await;

    // Nothing bounced back and forth: replicated changes are not replicated.
    let metrics = a.server.node().metrics();
    assert!(metrics.replication_batches.load(Ordering::Relaxed) >= 1);
    assert_eq!(metrics.replication_failures.load(Ordering::Relaxed), 0);
    let prom = get_text(a.url("/actuator/prometheus")).await;
    assert!(
        prom.contains("discovery_replication_batches_total"),
        "{prom}"
    );
    assert!(
        prom.contains("discovery_replication_dropped_total 0"),
        "{prom}"
    );
    assert!(
        a.server
            .node()
            .peer_status()
            .iter()
            .all(|p| p.healthy == Some(true))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_heartbeat_conflict_resolves_to_the_newer_record_both_ways() {
    let nodes = cluster(2).await;
    let (a, b) = (&nodes[0], &nodes[1]);
    eventually(WITHIN, "both synced", || async {
        a.server.replication().is_synced() && b.server.replication().is_synced()
    })
    .await;

    // B holds a newer record of `x` than A (planted without replication).
    let older = InstanceInfo {
        last_dirty_timestamp: 1_000,
        ..instance("CART", "x")
    };
    let mut newer = InstanceInfo {
        last_dirty_timestamp: 2_000,
        ..instance("CART", "x")
    };
    newer.metadata.insert("version".into(), "2".into());
    a.server.node().register(older, Origin::Replicated);
    b.server.node().register(newer, Origin::Replicated);
    // A renewal on A replicates with A's older timestamp: B answers 409
    // with its record and A adopts it.
    a.server
        .node()
        .renew("CART", "x", RenewRequest::default(), Origin::Local);
    eventually(WITHIN, "A adopts B's newer record", || async {
        has(a, "CART", "x", |i| {
            i.last_dirty_timestamp == 2_000 && i.metadata.get("version") == Some("2")
        })
    })
    .await;

    // A knows `y`, B does not: A's heartbeat gets 404 and A re-registers it.
    a.server
        .node()
        .register(instance("CART", "y"), Origin::Replicated);
    assert!(b.server.node().registry().instance("CART", "y").is_none());
    a.server
        .node()
        .renew("CART", "y", RenewRequest::default(), Origin::Local);
    eventually(WITHIN, "B gets y re-registered", || async {
        has(b, "CART", "y", |_| true)
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_peer_costs_a_bounded_queue_and_shows_unhealthy() {
    // A port with nothing behind it.
    let dead = {
        let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
        eureka_url_of(&l)
    };
    let settings = ReplicationSettings {
        queue_capacity: 50,
        sync_timeout: Duration::from_millis(200),
        retry: circuit_breaker::retry::Backoff {
            initial: Duration::from_millis(20),
            multiplier: 2.0,
            max: Duration::from_millis(50),
            jitter: 0.5,
        },
        ..ReplicationSettings::default()
    };
    let l = listeners(1).await.pop().unwrap();
    let a = start(l, vec![dead.clone()], settings);
    let node = Arc::clone(a.server.node());
    for i in 0..20 {
        node.register(instance("LOAD", &format!("i-{i}")), Origin::Local);
    }
    for _ in 0..10 {
        for i in 0..20 {
            node.renew(
                "LOAD",
                &format!("i-{i}"),
                RenewRequest::default(),
                Origin::Local,
            );
        }
    }
    let metrics = node.metrics();
    eventually(WITHIN, "drops counted and queue bounded", || async {
        let q = metrics.replication_queue.load(Ordering::Relaxed);
        let dropped = metrics.replication_dropped.load(Ordering::Relaxed);
        q > 0 && q <= 50 && dropped >= 170
    })
    .await;
    eventually(WITHIN, "peer shown unhealthy", || async {
        node.peer_status()
            .iter()
            .any(|p| p.url == dead && p.healthy == Some(false) && p.last_error.is_some())
    })
    .await;
    // The registrations outlived the heartbeats: all 20 still queued.
    let dashboard = get_text(a.url("/")).await;
    assert!(dashboard.contains(&dead), "{dashboard}");
    // A lone node still serves reads once the copy times out.
    send_expecting(
        reqwest::Client::new().get(format!("{}apps", a.eureka_url())),
        200,
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_starting_node_copies_the_registry_before_it_serves_reads() {
    let ls = listeners(2).await;
    let (url_a, url_b) = (eureka_url_of(&ls[0]), eureka_url_of(&ls[1]));
    let mut ls = ls.into_iter();
    // B's port is bound but not served yet: A gives up copying quickly.
    let quick = ReplicationSettings {
        sync_timeout: Duration::from_millis(300),
        ..ReplicationSettings::default()
    };
    let a = start(ls.next().unwrap(), vec![url_b.clone()], quick);
    eventually(WITHIN, "A serves", || async {
        a.server.replication().is_synced()
    })
    .await;
    for i in 0..300 {
        a.server
            .node()
            .register(instance("STOCK", &format!("s-{i}")), Origin::Replicated);
    }
    // B starts now; its very first read already holds A's registry.
    let b = start(
        ls.next().unwrap(),
        vec![url_a],
        ReplicationSettings::default(),
    );
    let request = reqwest::Client::new()
        .get(format!("{}apps/STOCK", b.eureka_url()))
        .header("Accept", "application/json");
    let apps = send_expecting(request, 200).await;
    let app = json::decode_application(&apps.bytes().await.unwrap()).unwrap();
    assert_eq!(app.instances.len(), 300);
    assert!(b.server.replication().is_synced());
    drop(url_b);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replication_authenticates_with_credentials_in_the_peer_url() {
    let ls = listeners(2).await;
    let auth_url =
        |l: &TcpListener| format!("http://peer:s3cret@{}/eureka/", l.local_addr().unwrap());
    let (url_a, url_b) = (auth_url(&ls[0]), auth_url(&ls[1]));
    let secured = |peer: String, listener: TcpListener| {
        let config = ServerConfig {
            peers: vec![peer],
            basic_auth: Some(discovery_server::config::BasicAuth {
                username: "peer".into(),
                password: "s3cret".into(),
            }),
            ..ServerConfig::default()
        };
        Running::serve(listener, config)
    };
    let mut ls = ls.into_iter();
    let a = secured(url_b, ls.next().unwrap());
    let b = secured(url_a, ls.next().unwrap());
    a.server
        .node()
        .register(instance("SECURE", "s-1"), Origin::Local);
    eventually(WITHIN, "replicated with Basic auth", || async {
        has(&b, "SECURE", "s-1", |_| true)
    })
    .await;
    // A records the peer's answer just after B applied the batch.
    eventually(WITHIN, "peer shown healthy, password masked", || async {
        a.server
            .node()
            .peer_status()
            .iter()
            .all(|p| p.healthy == Some(true) && p.url.contains("peer:***@"))
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stopping_node_flushes_what_it_has_not_sent_yet() {
    let ls = listeners(2).await;
    let (url_a, url_b) = (eureka_url_of(&ls[0]), eureka_url_of(&ls[1]));
    let mut ls = ls.into_iter();
    let (la, lb) = (ls.next().unwrap(), ls.next().unwrap());
    let b = start(lb, vec![url_a], ReplicationSettings::default());
    // A holds every batch back for a minute...
    let a = start(
        la,
        vec![url_b],
        ReplicationSettings {
            max_batch_delay: Duration::from_secs(60),
            ..ReplicationSettings::default()
        },
    );
    let server = a.server.clone();
    eventually(WITHIN, "A synced", || async {
        server.replication().is_synced()
    })
    .await;
    server
        .node()
        .register(instance("LAST", "l-1"), Origin::Local);
    server.node().cancel("LAST", "l-1", Origin::Local);
    server
        .node()
        .register(instance("LAST", "l-2"), Origin::Local);
    assert!(b.server.node().registry().instance("LAST", "l-2").is_none());
    // ...but sends them when it stops.
    tokio::time::timeout(WITHIN, a.stop()).await.unwrap();
    assert!(has(&b, "LAST", "l-2", |_| true));
    assert!(b.server.node().registry().instance("LAST", "l-1").is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_node_can_be_given_the_same_peer_list_including_itself() {
    let ls = listeners(2).await;
    // The same list for both, as Eureka allows; `localhost` for A resolves
    // to its loopback address.
    let port_a = ls[0].local_addr().unwrap().port();
    let urls = vec![
        format!("http://localhost:{port_a}/eureka/"),
        eureka_url_of(&ls[1]),
    ];
    let mut nodes = ls
        .into_iter()
        .map(|l| start(l, urls.clone(), ReplicationSettings::default()));
    let (a, b) = (nodes.next().unwrap(), nodes.next().unwrap());

    // Each node shows (and replicates to) only the other one.
    eventually(WITHIN, "each node skips its own URL", || async {
        a.server.node().peer_status().len() == 1 && b.server.node().peer_status().len() == 1
    })
    .await;
    assert_eq!(b.server.node().peer_status()[0].url, urls[0]);
    assert_eq!(a.server.node().peer_status()[0].url, urls[1]);

    for (from, to, id) in [(&a, &b, "via-a"), (&b, &a, "via-b")] {
        let register = reqwest::Client::new()
            .post(format!("{}apps/SELFLESS", from.eureka_url()))
            .header("Content-Type", "application/json")
            .body(cloud_protocol::eureka::json::encode_instance(&instance(
                "SELFLESS", id,
            )));
        send_expecting(register, 204).await;
        eventually(WITHIN, "replicated to the other node", || async {
            has(to, "SELFLESS", id, |_| true)
        })
        .await;
    }
    // Nobody replicated to itself: every replicated batch went across, and
    // no node holds a batch failure or queue for a peer that is itself.
    for node in [&a, &b] {
        let m = node.server.node().metrics();
        assert_eq!(m.replication_failures.load(Ordering::Relaxed), 0);
        assert_eq!(m.registrations.load(Ordering::Relaxed), 2);
    }
}
