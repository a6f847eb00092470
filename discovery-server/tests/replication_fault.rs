//! Fault tests with real processes: three `discovery-server` binaries, each
//! with the other two as `--peer`. One is killed while clients keep
//! registering and renewing through the others; restarted, it copies the
//! registry before its first read and nothing is lost. A real client
//! (py-eureka-client) given several server URLs fails over from dead nodes
//! to a live one. Each node sits behind a fixed front address (see
//! [`Front`]), so no port is ever released and bound again.

#![allow(clippy::unwrap_used)]

mod support;

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::process::Stdio;
use std::sync::Arc;
use std::sync::atomic::{AtomicU16, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use cloud_protocol::eureka::json;
use support::{Steps, eventually, instance, interop_python, listening_addr, send_expecting};
use tokio::net::{TcpListener, TcpStream};
use tokio::process::{Child, Command};

const WITHIN: Duration = Duration::from_secs(15);

/// A node's fixed front address: a loopback listener bound once and kept
/// for the whole test, forwarding each connection to wherever the node's
/// process listens now (it binds port 0 and logs its address). Killed, the
/// node's front drops connections, as a dead node would. So peers can be
/// named before any node starts and a restarted node keeps its address,
/// without releasing a port and hoping to bind it again.
struct Front {
    addr: SocketAddr,
    target: Arc<AtomicU16>,
}

impl Front {
    async fn bind() -> Front {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let target = Arc::new(AtomicU16::new(0));
        let to = Arc::clone(&target);
        tokio::spawn(async move {
            while let Ok((mut inbound, _)) = listener.accept().await {
                let port = to.load(Ordering::SeqCst);
                tokio::spawn(async move {
                    if port == 0 {
                        return;
                    }
                    if let Ok(mut outbound) = TcpStream::connect(("127.0.0.1", port)).await {
                        let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                    }
                });
            }
        });
        Front { addr, target }
    }
}

/// One node's process behind its front; killed when dropped.
struct Proc {
    front: Front,
    peers: Vec<String>,
    child: Option<Child>,
}

impl Proc {
    async fn spawn(front: Front, peers: Vec<String>) -> Proc {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_discovery-server"));
        cmd.args(["--bind", "127.0.0.1", "--port", "0", "--log-format", "text"]);
        for p in &peers {
            cmd.args(["--peer", p]);
        }
        let mut child = cmd
            .env("RUST_LOG", "warn,discovery_server::server=info")
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .unwrap();
        let port = listening_addr(child.stdout.take().unwrap(), WITHIN)
            .await
            .port();
        front.target.store(port, Ordering::SeqCst);
        Proc {
            front,
            peers,
            child: Some(child),
        }
    }

    fn eureka(&self) -> String {
        format!("http://{}/eureka/", self.front.addr)
    }

    async fn kill(&mut self) {
        self.front.target.store(0, Ordering::SeqCst);
        if let Some(mut child) = self.child.take() {
            child.kill().await.unwrap();
        }
    }

    async fn restart(self) -> Proc {
        let Proc {
            front,
            peers,
            child,
        } = self;
        if let Some(mut child) = child {
            child.kill().await.unwrap();
        }
        Proc::spawn(front, peers).await
    }

    /// Waits until the process answers (health is never held back).
    async fn ready(&mut self) {
        let url = format!("http://{}/actuator/health", self.front.addr);
        let deadline = tokio::time::Instant::now() + WITHIN;
        loop {
            if let Ok(r) = reqwest::get(&url).await
                && r.status() == 200
            {
                return;
            }
            if let Some(status) = self.child.as_mut().and_then(|c| c.try_wait().unwrap()) {
                panic!("node at {} exited: {status}", self.front.addr);
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "node at {} never answered",
                self.front.addr
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
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
            node.front.addr
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
    let fronts = [
        Front::bind().await,
        Front::bind().await,
        Front::bind().await,
    ];
    let urls: Vec<String> = fronts
        .iter()
        .map(|f| format!("http://{}/eureka/", f.addr))
        .collect();
    let peers_of = |i: usize| -> Vec<String> {
        urls.iter()
            .enumerate()
            .filter(|(j, _)| *j != i)
            .map(|(_, u)| u.clone())
            .collect()
    };
    let [front_a, front_b, front_c] = fronts;
    let mut a = Proc::spawn(front_a, peers_of(0)).await;
    let mut b = Proc::spawn(front_b, peers_of(1)).await;
    let mut c = Proc::spawn(front_c, peers_of(2)).await;
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
    let mut c = c.restart().await;
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
