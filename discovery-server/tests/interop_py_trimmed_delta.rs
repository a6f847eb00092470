//! Interop: the real py-eureka-client (PyPI, unmodified) keeps an exact
//! registry when the delta queue went over its byte budget and dropped
//! changes of the window, among them the removal of an instance the client
//! holds: the delta then lists every instance, and the client's hashcode
//! reconciliation does the rest.

#![allow(clippy::unwrap_used)]

mod support;

use std::time::Duration;

use cloud_protocol::eureka::InstanceInfo;
use discovery_server::ServerConfig;
use discovery_server::limits::Limits;
use discovery_server::registry::Origin;
use support::{Driven, Running, drive_python, instance};
use tokio::io::AsyncWriteExt;

const FILLERS: usize = 6;

fn filler(i: usize) -> InstanceInfo {
    let mut info = instance("FILLER-APP", &format!("f-{i}"));
    info.metadata
        .extend((0..50).map(|k| (format!("key-{k}"), "v".repeat(100))));
    info
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn py_eureka_client_stays_exact_through_a_trimmed_delta_queue() {
    tokio::time::timeout(Duration::from_secs(90), scenario())
        .await
        .expect("interop test deadline");
}

async fn scenario() {
    let running = Running::start(ServerConfig::default()).await;
    let node = running.server.node().clone();
    node.registry().set_limits(Limits {
        max_delta_queue_bytes: 3 * filler(0).approx_size_bytes(),
        ..Limits::default()
    });
    node.register(instance("GHOST-APP", "g-1"), Origin::Local);

    let Driven {
        mut child,
        mut stdin,
        mut steps,
    } = drive_python(
        "py_delta_client.py",
        &[running.eureka_url(), FILLERS.to_string()],
    );

    assert_eq!(steps.next(Duration::from_secs(30)).await, "sees_ghost");
    // The removal and the fillers overflow the queue: the removal of g-1
    // leaves it before its window ends.
    node.cancel("GHOST-APP", "g-1", Origin::Local);
    for i in 0..FILLERS {
        node.register(filler(i), Origin::Local);
    }
    let stats = node.registry().delta_queue_stats();
    assert!(stats.incomplete && stats.dropped_early >= 1, "{stats:?}");
    stdin.write_all(b"go\n").await.unwrap();

    assert_eq!(steps.next(Duration::from_secs(40)).await, "converged");
    assert!(node.registry().delta_queue_stats().incomplete);
    stdin.write_all(b"go\n").await.unwrap();

    assert_eq!(steps.next(Duration::from_secs(30)).await, "stopped");
    let status = tokio::time::timeout(Duration::from_secs(10), child.wait())
        .await
        .unwrap()
        .unwrap();
    assert!(status.success(), "python exited with {status}");
    running.stop().await;
}
