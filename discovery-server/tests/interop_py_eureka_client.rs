//! Interop: the real py-eureka-client (PyPI, unmodified) registers, renews,
//! discovers another app, marks itself OUT_OF_SERVICE and cancels against
//! our server; the test checks the server side after each step.

#![allow(clippy::unwrap_used)]

mod support;

use std::time::Duration;

use cloud_protocol::eureka::{InstanceInfo, InstanceStatus, LeaseInfo, PortWrapper};
use discovery_server::ServerConfig;
use discovery_server::registry::Origin;
use support::{Driven, Running, drive_python, eventually, get_text};
use tokio::io::AsyncWriteExt;

const PY_ID: &str = "127.0.0.1:py-app:9090";

fn other_app() -> InstanceInfo {
    InstanceInfo {
        instance_id: "other-1".into(),
        host_name: "other.local".into(),
        app: "OTHER-APP".into(),
        ip_addr: "10.9.9.9".into(),
        status: InstanceStatus::Up,
        port: PortWrapper::enabled(7777),
        vip_address: Some("other-app".into()),
        lease_info: Some(LeaseInfo::default()),
        ..InstanceInfo::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn py_eureka_client_registers_renews_discovers_goes_out_of_service_and_cancels() {
    tokio::time::timeout(Duration::from_secs(90), scenario())
        .await
        .expect("interop test deadline");
}

async fn scenario() {
    let running = Running::start(ServerConfig::default()).await;
    let node = running.server.node().clone();
    node.register(other_app(), Origin::Local);

    let Driven {
        mut child,
        mut stdin,
        mut steps,
    } = drive_python("py_client.py", &[running.eureka_url()]);
    let mut next_step = async || -> Vec<String> {
        let step = steps.next(Duration::from_secs(30)).await;
        step.split(' ').map(str::to_owned).collect()
    };

    // 1. Registered, with its metadata and lease settings.
    assert_eq!(next_step().await, ["registered"]);
    let (info, lease) = node
        .registry()
        .instance("PY-APP", PY_ID)
        .expect("py-app registered");
    assert_eq!(info.status, InstanceStatus::Up);
    assert_eq!(info.port.port, 9090);
    assert_eq!(info.metadata.get("team"), Some("interop"));
    assert_eq!(lease.renewal_interval_in_secs, 1);
    assert_eq!(lease.duration_in_secs, 10);

    // 2. It renews (its heartbeat runs every second).
    eventually(
        Duration::from_secs(15),
        "a renewal from py-eureka-client",
        || {
            let renewed = node
                .registry()
                .instance("PY-APP", PY_ID)
                .is_some_and(|(_, l)| l.last_renewal_timestamp > l.registration_timestamp);
            async move { renewed }
        },
    )
    .await;
    stdin.write_all(b"go\n").await.unwrap();

    // 3. It discovered the other application.
    assert_eq!(
        next_step().await,
        [
            "discovered",
            "OTHER-APP",
            "other-1",
            "10.9.9.9",
            "7777",
            "UP"
        ]
    );
    let mut late = other_app();
    late.app = "LATE-APP".into();
    late.instance_id = "late-1".into();
    node.register(late, Origin::Local);
    stdin.write_all(b"go\n").await.unwrap();

    // 3b. Its periodic refresh (delta + hashcode reconciliation) sees a
    // registration made after it started.
    assert_eq!(next_step().await, ["refreshed", "LATE-APP", "late-1"]);
    stdin.write_all(b"go\n").await.unwrap();

    // 4. OUT_OF_SERVICE through the status endpoint: an override.
    assert_eq!(next_step().await, ["out_of_service"]);
    let (info, _) = node.registry().instance("PY-APP", PY_ID).unwrap();
    assert_eq!(info.status, InstanceStatus::OutOfService);
    assert_eq!(info.overridden_status, InstanceStatus::OutOfService);
    let xml = get_text(running.url("/eureka/apps/PY-APP")).await;
    assert!(
        xml.contains("<overriddenstatus>OUT_OF_SERVICE</overriddenstatus>"),
        "{xml}"
    );
    stdin.write_all(b"go\n").await.unwrap();

    // 5. It cancels on stop.
    assert_eq!(next_step().await, ["stopped"]);
    assert!(
        node.registry().instance("PY-APP", PY_ID).is_none(),
        "py-app cancelled"
    );
    let delta = get_text(running.url("/eureka/apps/delta")).await;
    assert!(
        delta.contains("<actionType>DELETED</actionType>"),
        "{delta}"
    );
    let status = tokio::time::timeout(Duration::from_secs(10), child.wait())
        .await
        .unwrap()
        .unwrap();
    assert!(status.success(), "python exited with {status}");
    assert!(
        node.metrics()
            .cancellations
            .load(std::sync::atomic::Ordering::Relaxed)
            >= 1
    );
    running.stop().await;
}
