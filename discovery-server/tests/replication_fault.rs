//! Fault tests with real processes: three `discovery-server` binaries, each
//! with the other two as `--peer`. One is killed while clients keep
//! registering and renewing through the others; restarted, it copies the
//! registry before its first read and nothing is lost. A real client
//! (py-eureka-client) given several server URLs fails over from dead nodes
//! to a live one.

#![allow(clippy::unwrap_used)]

mod support;

use std::collections::BTreeSet;
use std::process::Stdio;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use cloud_protocol::eureka::json;
use support::{Steps, eventually, instance, interop_python, send_expecting};
use tokio::process::{Child, Command};

const WITHIN: Duration = Duration::from_secs(15);

/// One node's process; killed when dropped.
struct Proc {
    port: u16,
    peers: Vec<u16>,
    child: Option<Child>,
}

impl Proc {
    fn spawn(port: u16, peers: Vec<u16>) -> Proc {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_discovery-server"));
        cmd.args(["--bind", "127.0.0.1", "--port", &port.to_string()]);
        for p in &peers {
            cmd.args(["--peer", &format!("http://127.0.0.1:{p}/eureka/")]);
        }
        let child = cmd
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .unwrap();
        Proc {
            port,
            peers,
            child: Some(child),
        }
    }

    fn eureka(&self) -> String {
        format!("http://127.0.0.1:{}/eureka/", self.port)
    }

    async fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            child.kill().await.unwrap();
        }
    }

    async fn restart(&mut self) {
        self.kill().await;
        *self = Proc::spawn(self.port, self.peers.clone());
    }

    /// Waits until the process answers (health is never held back).
    async fn ready(&mut self) {
        let url = format!("http://127.0.0.1:{}/actuator/health", self.port);
        let deadline = tokio::time::Instant::now() + WITHIN;
        loop {
            if let Ok(r) = reqwest::get(&url).await
                && r.status() == 200
            {
                return;
            }
            if let Some(status) = self.child.as_mut().and_then(|c| c.try_wait().unwrap()) {
                panic!("node on port {} exited: {status}", self.port);
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "node on {} never answered",
                self.port
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

/// Free loopback ports, found by binding port 0 and letting go.
fn free_ports(n: usize) -> Vec<u16> {
    let held: Vec<_> = (0..n)
        .map(|_| std::net::TcpListener::bind("127.0.0.1:0").unwrap())
        .collect();
    held.iter()
        .map(|l| l.local_addr().unwrap().port())
        .collect()
}

async fn register(http: &reqwest::Client, node: &Proc, id: &str) {
    let request = http
        .post(format!("{}apps/FLEET", node.eureka()))
        .header("Content-Type", "application/json")
        .body(json::encode_instance(&instance("FLEET", id)));
    send_expecting(request, 204).await;
}

async fn renew(http: &reqwest::Client, node: &Proc, id: &str) {
    let request = http.put(format!("{}apps/FLEET/{id}?status=UP", node.eureka()));
    send_expecting(request, 200).await;
}

/// The instance ids of an application on a node (empty when unknown).
async fn ids(http: &reqwest::Client, node: &Proc, app: &str) -> BTreeSet<String> {
    let Ok(r) = http
        .get(format!("{}apps", node.eureka()))
        .header("Accept", "application/json")
        .send()
        .await
    else {
        return BTreeSet::new();
    };
    let apps = json::decode_applications(&r.bytes().await.unwrap()).unwrap();
    apps.applications
        .iter()
        .filter(|a| a.name == app)
        .flat_map(|a| a.instances.iter().map(|i| i.instance_id.clone()))
        .collect()
}

async fn converges(http: &reqwest::Client, node: &Proc, expected: &BTreeSet<String>) {
    let deadline = tokio::time::Instant::now() + WITHIN;
    loop {
        let got = ids(http, node, "FLEET").await;
        if &got == expected {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "node {} has {got:?}, expected {expected:?}",
            node.port
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn set(ids: impl IntoIterator<Item = String>) -> BTreeSet<String> {
    ids.into_iter().collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_node_rejoins_with_nothing_lost_and_clients_fail_over() {
    tokio::time::timeout(Duration::from_secs(90), scenario())
        .await
        .expect("fault test deadline");
}

async fn scenario() {
    let ports = free_ports(3);
    let peers_of = |i: usize| -> Vec<u16> {
        ports
            .iter()
            .enumerate()
            .filter(|(j, _)| *j != i)
            .map(|(_, p)| *p)
            .collect()
    };
    let mut a = Proc::spawn(ports[0], peers_of(0));
    let mut b = Proc::spawn(ports[1], peers_of(1));
    let mut c = Proc::spawn(ports[2], peers_of(2));
    for n in [&mut a, &mut b, &mut c] {
        n.ready().await;
    }
    let http = reqwest::Client::new();

    // 1. Registrations and renewals through A reach B and C.
    let first = set((0..10).map(|i| format!("a-{i}")));
    for id in &first {
        register(&http, &a, id).await;
        renew(&http, &a, id).await;
    }
    converges(&http, &b, &first).await;
    converges(&http, &c, &first).await;

    // 2. C dies; clients keep registering, renewing and cancelling through
    //    A and B.
    c.kill().await;
    let mut expected = first.clone();
    for i in 0..10 {
        let (ida, idb) = (format!("ka-{i}"), format!("kb-{i}"));
        register(&http, &a, &ida).await;
        register(&http, &b, &idb).await;
        expected.insert(ida);
        expected.insert(idb);
    }
    for _ in 0..2 {
        for id in &expected {
            let owner = if id.starts_with("kb-") { &b } else { &a };
            renew(&http, owner, id).await;
        }
    }
    send_expecting(http.delete(format!("{}apps/FLEET/a-0", b.eureka())), 200).await;
    expected.remove("a-0");
    converges(&http, &a, &expected).await;
    converges(&http, &b, &expected).await;

    // 3. C comes back: its very first read already has everything.
    c.restart().await;
    c.ready().await;
    assert_eq!(
        ids(&http, &c, "FLEET").await,
        expected,
        "C's first read after restart"
    );
    // And it replicates again.
    register(&http, &c, "kc-0").await;
    expected.insert("kc-0".to_owned());
    converges(&http, &a, &expected).await;
    converges(&http, &b, &expected).await;

    // 4. A real client given "C,A,B" while C is down registers through A;
    //    when A dies too its heartbeats fail over to B.
    c.kill().await;
    let mut client = py_client(&format!("{},{},{}", c.eureka(), a.eureka(), b.eureka())).await;
    let py_id = "127.0.0.1:py-failover:9191";
    let py = |node: &Proc| {
        let url = format!("{}apps/PY-FAILOVER/{py_id}", node.eureka());
        let http = http.clone();
        async move {
            let r = http
                .get(url)
                .header("Accept", "application/json")
                .send()
                .await
                .ok()?;
            if r.status() != 200 {
                return None;
            }
            let info = json::decode_instance(&r.bytes().await.ok()?).ok()?;
            info.lease_info.map(|l| l.last_renewal_timestamp)
        }
    };
    eventually(WITHIN, "py client registered on A and B", || async {
        py(&a).await.is_some() && py(&b).await.is_some()
    })
    .await;
    a.kill().await;
    let killed_at = now_millis();
    // Only the client itself can renew on B now.
    eventually(WITHIN, "heartbeats failed over to B", || async {
        py(&b).await.is_some_and(|renewed| renewed > killed_at)
    })
    .await;
    client.kill().await.unwrap();
}

fn now_millis() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

const PY_CLIENT: &str = r#"
import asyncio, sys
import py_eureka_client.eureka_client as eureka_client

async def main(servers):
    client = eureka_client.EurekaClient(
        eureka_server=servers, app_name="py-failover", instance_host="127.0.0.1",
        instance_ip="127.0.0.1", instance_port=9191, renewal_interval_in_secs=1,
        duration_in_secs=10, should_discover=False)
    await client.start()
    print("STEP registered", flush=True)
    await asyncio.sleep(3600)

asyncio.run(main(sys.argv[1]))
"#;

/// Starts py-eureka-client with `servers` and waits until it registered.
async fn py_client(servers: &str) -> Child {
    let mut child = Command::new(interop_python())
        .args(["-c", PY_CLIENT, servers])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut steps = Steps::new(child.stdout.take().unwrap());
    assert_eq!(steps.next(WITHIN).await, "registered");
    tokio::spawn(steps.drain());
    child
}
