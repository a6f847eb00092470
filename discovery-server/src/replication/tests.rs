use axum::body::Body;
use axum::http::{Request, StatusCode};
use cloud_protocol::eureka::{InstanceInfo, InstanceStatus, LeaseInfo, PortWrapper};
use http_body_util::BodyExt as _;
use tower::ServiceExt as _;

use super::wire::{self, Action};
use super::*;
use crate::config::ServerConfig;
use crate::server::Server;

fn instance(id: &str, last_dirty: i64) -> InstanceInfo {
    InstanceInfo {
        instance_id: id.into(),
        host_name: "h.local".into(),
        app: "SVC".into(),
        ip_addr: "10.0.0.1".into(),
        status: InstanceStatus::Up,
        port: PortWrapper::enabled(8080),
        lease_info: Some(LeaseInfo::default()),
        last_dirty_timestamp: last_dirty,
        ..InstanceInfo::default()
    }
}

#[test]
fn a_replication_list_reads_back_what_was_written() {
    let info = InstanceInfo {
        overridden_status: InstanceStatus::OutOfService,
        ..instance("a", 42)
    };
    let mut out = Vec::new();
    wire::write_replication_list(
        &mut out,
        [
            (Action::Register, &info),
            (Action::Heartbeat, &info),
            (Action::Cancel, &info),
        ],
    );
    let items: Vec<_> = wire::read_replication_list(&out)
        .unwrap()
        .into_iter()
        .map(Result::unwrap)
        .collect();
    assert_eq!(items.len(), 3);
    assert_eq!(items[0].action, Action::Register);
    assert_eq!(items[0].instance_info.as_ref().unwrap().instance_id, "a");
    assert_eq!(items[0].instance_info.as_ref().unwrap().port.port, 8080);
    assert_eq!(items[1].action, Action::Heartbeat);
    assert_eq!(items[1].last_dirty_timestamp, Some(42));
    assert_eq!(items[1].status, Some(InstanceStatus::Up));
    assert_eq!(
        items[1].overridden_status,
        Some(InstanceStatus::OutOfService)
    );
    assert!(
        items[1].instance_info.is_none(),
        "heartbeats carry no instance"
    );
    assert_eq!(
        (items[2].app_name.as_str(), items[2].id.as_str()),
        ("SVC", "a")
    );
    assert_eq!(items[2].last_dirty_timestamp, None);
}

#[test]
fn a_batch_as_eureka_writes_it_is_read() {
    // The shape Eureka's Jackson codec produces for a ReplicationList.
    let body = br#"{"replicationList":[
      {"appName":"SVC","id":"h:svc:1","lastDirtyTimestamp":1700000000000,"overriddenStatus":null,
       "status":"UP","instanceInfo":{"instanceId":"h:svc:1","app":"SVC","hostName":"h","ipAddr":"10.0.0.1",
       "status":"UP","overriddenStatus":"UNKNOWN","port":{"$":8080,"@enabled":"true"},
       "securePort":{"$":443,"@enabled":"false"},"countryId":1,
       "dataCenterInfo":{"@class":"com.netflix.appinfo.InstanceInfo$DefaultDataCenterInfo","name":"MyOwn"},
       "leaseInfo":{"renewalIntervalInSecs":30,"durationInSecs":90},"metadata":{"@class":"java.util.Collections$EmptyMap"},
       "lastDirtyTimestamp":"1700000000000","actionType":"ADDED"},"action":"Register"},
      {"appName":"SVC","id":"h:svc:1","lastDirtyTimestamp":1700000000000,"status":"UP","action":"Heartbeat"},
      {"appName":"SVC","id":"h:svc:1","action":"Bogus"}]}"#;
    let items = wire::read_replication_list(body).unwrap();
    let register = items[0].as_ref().unwrap();
    assert_eq!(
        register
            .instance_info
            .as_ref()
            .unwrap()
            .last_dirty_timestamp,
        1_700_000_000_000
    );
    assert_eq!(items[1].as_ref().unwrap().action, Action::Heartbeat);
    assert!(items[2].is_err(), "an unknown action fails alone");
    assert!(wire::read_replication_list(b"[1,2]").is_err());
    assert!(wire::read_replication_list(b"{not json").is_err());
}

#[test]
fn a_response_list_round_trips_with_its_conflict_entity() {
    let responses = [
        wire::ItemResponse {
            status_code: 200,
            response_entity: None,
        },
        wire::ItemResponse {
            status_code: 409,
            response_entity: Some(instance("a", 7)),
        },
    ];
    let mut out = Vec::new();
    wire::write_response_list(&mut out, &responses);
    let back = wire::read_response_list(&out).unwrap();
    assert_eq!(back[0].status_code, 200);
    assert_eq!(back[1].status_code, 409);
    assert_eq!(
        back[1]
            .response_entity
            .as_ref()
            .unwrap()
            .last_dirty_timestamp,
        7
    );
}

async fn post_batch(router: &axum::Router, body: Vec<u8>) -> Vec<wire::ItemResponse> {
    let req = Request::post("/eureka/v2/peerreplication/batch")
        .header("Content-Type", "application/json")
        .header(crate::replication::REPLICATION_HEADER, "true")
        .body(Body::from(body))
        .unwrap();
    let response = router.clone().oneshot(req).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    wire::read_response_list(&bytes).unwrap()
}

fn batch(items: &[(Action, &InstanceInfo)]) -> Vec<u8> {
    let mut out = Vec::new();
    wire::write_replication_list(&mut out, items.iter().map(|(a, i)| (*a, *i)));
    out
}

#[tokio::test]
async fn the_batch_endpoint_applies_items_and_answers_each_as_eureka() {
    let server = Server::new(ServerConfig::default()).unwrap();
    let router = server.router();
    let node = server.node();
    let old = instance("a", 100);
    let newer = instance("b", 300);
    node.register(newer.clone(), Origin::Local);
    let stale_b = instance("b", 200);
    let ahead_b = instance("b", 400);
    let unknown = instance("zz", 1);

    let codes: Vec<u16> = post_batch(
        &router,
        batch(&[
            (Action::Register, &old),
            (Action::Heartbeat, &old),
            (Action::Heartbeat, &unknown),
            (Action::Heartbeat, &stale_b),
            (Action::Heartbeat, &ahead_b),
            (
                Action::StatusUpdate,
                &InstanceInfo {
                    status: InstanceStatus::OutOfService,
                    ..old.clone()
                },
            ),
            (Action::Cancel, &unknown),
        ]),
    )
    .await
    .into_iter()
    .map(|r| r.status_code)
    .collect();
    assert_eq!(codes, [200, 200, 404, 409, 404, 200, 404]);
    let (a, _) = node.registry().instance("SVC", "a").unwrap();
    assert_eq!(a.status, InstanceStatus::OutOfService);

    // The 409 carries this node's newer record.
    let responses = post_batch(&router, batch(&[(Action::Heartbeat, &stale_b)])).await;
    let entity = responses[0].response_entity.as_ref().unwrap();
    assert_eq!(entity.last_dirty_timestamp, 300);

    post_batch(&router, batch(&[(Action::Cancel, &old)])).await;
    assert!(node.registry().instance("SVC", "a").is_none());
}

#[tokio::test]
async fn replicated_changes_are_not_queued_again_but_local_ones_are() {
    let config = ServerConfig {
        peers: vec!["http://127.0.0.1:1/eureka".into()],
        ..ServerConfig::default()
    };
    let server = Server::new(config).unwrap();
    let peer = &server.replication().shared.peers[0];
    assert_eq!(peer.url, "http://127.0.0.1:1/eureka/");
    server.node().register(instance("r", 1), Origin::Replicated);
    assert_eq!(peer.queue.len(), 0);
    server.node().register(instance("l", 1), Origin::Local);
    server
        .node()
        .renew("SVC", "l", Default::default(), Origin::Local);
    server.node().evict();
    let queued: Vec<_> = peer.queue.take(10).into_iter().map(|t| t.action).collect();
    assert_eq!(queued, [Action::Register, Action::Heartbeat]);
    assert!(
        !server.replication().is_synced(),
        "reads wait for the initial copy"
    );
}

#[tokio::test]
async fn a_gzipped_batch_is_accepted_and_garbage_is_a_400() {
    use std::io::Write as _;
    let server = Server::new(ServerConfig::default()).unwrap();
    let router = server.router();
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(&batch(&[(Action::Register, &instance("g", 1))]))
        .unwrap();
    let req = Request::post("/eureka/peerreplication/batch/")
        .header("Content-Type", "application/json")
        .header("Content-Encoding", "gzip")
        .body(Body::from(gz.finish().unwrap()))
        .unwrap();
    let response = router.clone().oneshot(req).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert!(server.node().registry().instance("SVC", "g").is_some());

    let req = Request::post("/eureka/peerreplication/batch")
        .body(Body::from("{\"replicationList\":7}"))
        .unwrap();
    let response = router.oneshot(req).await.unwrap();
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
}

#[test]
fn replication_settings_come_from_springs_keys() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("discovery.yml");
    std::fs::write(
        &path,
        "eureka:\n  server:\n    max-elements-in-peer-replication-pool: 500\n    max-time-for-replication: 1000\n    peer-node-read-timeout-ms: 250\n    registry-sync-timeout-ms: 0\n",
    )
    .unwrap();
    let c = ServerConfig::load(
        Some(&path),
        &std::collections::HashMap::new(),
        &crate::config::Overrides::default(),
    )
    .unwrap();
    assert_eq!(c.replication.queue_capacity, 500);
    assert_eq!(
        c.replication.max_item_age,
        std::time::Duration::from_secs(1)
    );
    assert_eq!(
        c.replication.request_timeout,
        std::time::Duration::from_millis(250)
    );
    assert!(c.replication.sync_timeout.is_zero());
    assert_eq!(c.replication.batch_size, 250);
}

#[test]
fn peer_passwords_never_show() {
    assert_eq!(
        peer::redacted("http://admin:s3cret@10.0.0.1:8761/eureka/"),
        "http://admin:***@10.0.0.1:8761/eureka/"
    );
    assert_eq!(
        peer::redacted("http://10.0.0.1:8761/eureka/"),
        "http://10.0.0.1:8761/eureka/"
    );
    let server = Server::new(ServerConfig {
        peers: vec!["http://u:pw@127.0.0.1:1/eureka/".into()],
        ..ServerConfig::default()
    })
    .unwrap();
    assert_eq!(
        server.node().peer_status()[0].url,
        "http://u:***@127.0.0.1:1/eureka/"
    );
}

/// Paused-time tests of a peer's sender: retries, backoff, maximum age.
mod sender {
    use std::collections::VecDeque;
    use std::time::Duration;

    use bytes::Bytes;
    use circuit_breaker::retry::Backoff;
    use cloud_runtime::clock::TokioClock;
    use futures::future::BoxFuture;
    use parking_lot::Mutex;
    use tokio::time::Instant;

    use super::super::peer::{self, BatchTransport};
    use super::super::wire::{self, ItemResponse};
    use super::*;
    use crate::registry::RegistrySettings;

    /// Tokio's timer rounds a sleep up to the next millisecond.
    const TICK: Duration = Duration::from_millis(1);

    /// A peer that answers from a script (then `200` for every item) and
    /// records when each batch arrived and how many items it held.
    #[derive(Debug, Default)]
    struct ScriptedPeer {
        script: Mutex<VecDeque<Result<StatusCode, String>>>,
        calls: Mutex<Vec<(Instant, usize)>>,
    }

    impl ScriptedPeer {
        fn failing(times: usize, how: Result<StatusCode, String>) -> Arc<ScriptedPeer> {
            let peer = ScriptedPeer::default();
            peer.script.lock().extend((0..times).map(|_| how.clone()));
            Arc::new(peer)
        }

        fn calls(&self) -> Vec<(Instant, usize)> {
            self.calls.lock().clone()
        }
    }

    impl BatchTransport for ScriptedPeer {
        fn post(
            &self,
            _url: String,
            body: Vec<u8>,
            _timeout: Duration,
        ) -> BoxFuture<'static, Result<(StatusCode, Bytes), String>> {
            let items = wire::read_replication_list(&body).unwrap().len();
            self.calls.lock().push((Instant::now(), items));
            let answer = match self.script.lock().pop_front() {
                Some(Err(network)) => Err(network),
                Some(Ok(status)) => Ok((status, Bytes::new())),
                None => {
                    let ok = ItemResponse {
                        status_code: 200,
                        response_entity: None,
                    };
                    let mut out = Vec::new();
                    wire::write_response_list(&mut out, &vec![ok; items]);
                    Ok((StatusCode::OK, Bytes::from(out)))
                }
            };
            Box::pin(async move { answer })
        }
    }

    /// No batching delay: the gap between two attempts is the backoff
    /// alone.
    fn settings() -> ReplicationSettings {
        ReplicationSettings {
            max_batch_delay: Duration::ZERO,
            max_item_age: Duration::from_secs(30),
            retry: Backoff {
                initial: Duration::from_millis(100),
                multiplier: 2.0,
                max: Duration::from_secs(2),
                jitter: 0.5,
            },
            ..ReplicationSettings::default()
        }
    }

    struct Rig {
        replication: Replication,
        peer: Arc<ScriptedPeer>,
        stop: CancellationToken,
        task: tokio::task::JoinHandle<()>,
    }

    impl Rig {
        /// A node with one scripted peer whose sender runs.
        fn start(peer: Arc<ScriptedPeer>, settings: ReplicationSettings) -> Rig {
            let node = Arc::new(Node::new(
                RegistrySettings::default(),
                Arc::new(TokioClock::new()),
            ));
            let replication = Replication::with_transport(
                node,
                &["http://peer.test/eureka/".to_owned()],
                settings,
                reqwest::Client::new(),
                Arc::clone(&peer) as Arc<dyn BatchTransport>,
            );
            let stop = CancellationToken::new();
            let shared = Arc::clone(&replication.shared);
            let task = tokio::spawn(peer::run(
                Arc::clone(&shared),
                Arc::clone(&shared.peers[0]),
                stop.clone(),
            ));
            Rig {
                replication,
                peer,
                stop,
                task,
            }
        }

        fn register(&self, id: &str) {
            self.replication
                .shared
                .node
                .register(instance(id, 1), Origin::Local);
        }

        fn sender(&self) -> &Peer {
            &self.replication.shared.peers[0]
        }

        /// Waits in paused time (virtual, not wall-clock) until `check`.
        async fn until(&self, what: &str, check: impl Fn(&Rig) -> bool) {
            let deadline = Instant::now() + Duration::from_secs(600);
            while !check(self) {
                assert!(Instant::now() < deadline, "never: {what}");
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
        }

        async fn stop(self) {
            self.stop.cancel();
            self.task.await.unwrap();
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_failing_peer_is_retried_with_jittered_exponential_backoff_up_to_the_cap() {
        let peer = ScriptedPeer::failing(7, Err("connection refused".to_owned()));
        let rig = Rig::start(Arc::clone(&peer), settings());
        rig.register("a");
        rig.until("delivered after 7 failures", |r| r.peer.calls().len() == 8)
            .await;

        let calls = peer.calls();
        assert!(
            calls.iter().all(|(_, items)| *items == 1),
            "the same batch each time"
        );
        // Waits before retry n: 100 ms * 2^(n-1), capped at 2 s, each
        // within ±50 %.
        for (n, pair) in calls.windows(2).enumerate() {
            let wait = pair[1].0 - pair[0].0;
            let base = Duration::from_millis(100 * (1 << n)).min(Duration::from_secs(2));
            assert!(
                wait >= base.mul_f64(0.5) && wait <= base.mul_f64(1.5) + TICK,
                "retry {}: waited {wait:?}, base {base:?}",
                n + 1
            );
        }
        rig.until("healthy again", |r| {
            r.sender().health.lock().healthy == Some(true)
        })
        .await;
        assert_eq!(rig.sender().queue.len(), 0);

        // Success resets the backoff: the next failure waits ~100 ms again.
        peer.script
            .lock()
            .push_back(Ok(StatusCode::SERVICE_UNAVAILABLE));
        rig.register("b");
        rig.until("b delivered", |r| r.peer.calls().len() == 10)
            .await;
        let calls = peer.calls();
        let wait = calls[9].0 - calls[8].0;
        assert!(
            wait >= Duration::from_millis(50) && wait <= Duration::from_millis(150) + TICK,
            "after a success the backoff starts over: {wait:?}"
        );
        rig.stop().await;
    }

    #[tokio::test(start_paused = true)]
    async fn items_older_than_the_maximum_age_are_discarded_unsent() {
        let settings = ReplicationSettings {
            max_item_age: Duration::from_secs(1),
            ..settings()
        };
        let peer = ScriptedPeer::failing(1000, Ok(StatusCode::SERVICE_UNAVAILABLE));
        let rig = Rig::start(Arc::clone(&peer), settings);
        let queued_at = Instant::now();
        rig.register("old");
        rig.until("the late item is counted as failed", |r| {
            r.sender().failures.load(Ordering::Relaxed) == 1
        })
        .await;
        let attempts = peer.calls();
        assert!(attempts.len() >= 3, "retried meanwhile: {attempts:?}");
        assert!(
            attempts
                .iter()
                .all(|(at, _)| *at - queued_at <= Duration::from_secs(1)),
            "never sent once older than the maximum age: {attempts:?}"
        );
        // Nothing is left to send: an hour passes without another attempt.
        tokio::time::sleep(Duration::from_secs(3600)).await;
        assert_eq!(peer.calls().len(), attempts.len());
        assert_eq!(rig.sender().queue.len(), 0);

        // A fresh item goes out once the peer answers again.
        peer.script.lock().clear();
        rig.register("fresh");
        rig.until("fresh delivered", |r| {
            r.peer.calls().len() == attempts.len() + 1
        })
        .await;
        rig.stop().await;
    }

    #[tokio::test(start_paused = true)]
    async fn a_batch_the_peer_refuses_is_not_retried() {
        let peer = ScriptedPeer::failing(1, Ok(StatusCode::BAD_REQUEST));
        let rig = Rig::start(Arc::clone(&peer), settings());
        rig.register("a");
        rig.until("refusal counted", |r| {
            r.sender().failures.load(Ordering::Relaxed) == 1
        })
        .await;
        tokio::time::sleep(Duration::from_secs(60)).await;
        assert_eq!(peer.calls().len(), 1);
        assert_eq!(rig.sender().health.lock().healthy, Some(false));
        rig.stop().await;
    }

    #[tokio::test(start_paused = true)]
    async fn a_stopping_sender_flushes_what_is_queued() {
        let peer = Arc::new(ScriptedPeer::default());
        let rig = Rig::start(Arc::clone(&peer), settings());
        // Queued and stopped before the sender ever ran: only the final
        // flush can deliver it.
        rig.register("last");
        rig.stop().await;
        assert_eq!(peer.calls().iter().map(|(_, n)| n).sum::<usize>(), 1);
    }
}
