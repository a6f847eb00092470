//! The Redis route definition repository through a real `redis-server`
//! (started by each test on a free port, stopped when the test ends):
//! routes saved through one gateway's admin API serve on another, under
//! SCG's keys and in SCG's JSON, also between the SCG 4.3 jar
//! (`interop/spring/gateway`) and ours.

mod support;

#[path = "../../interop/spring/spring_app.rs"]
#[allow(dead_code)]
mod spring_app;

use std::time::Duration;

use axum::http::StatusCode;
use support::redis::RedisServer;
use support::{TestGateway, Upstream, client, get, send};

/// A gateway keeping saved routes in the Redis at `url`, under the key
/// `prefix` (`spring.cloud.gateway` or SCG 4.3's
/// `spring.cloud.gateway.server.webflux`).
async fn gateway(url: &str, prefix: &str) -> TestGateway {
    TestGateway::start(&format!(
        "management.endpoint.gateway.access: unrestricted\n\
         spring.data.redis:\n  url: {url}\n  timeout: 1s\n\
         {prefix}.redis-route-definition-repository.enabled: true\n"
    ))
    .await
}

async fn redis_get(redis: &RedisServer, key: &str) -> Option<String> {
    let mut c = redis.connection().await.expect("connected");
    redis::cmd("GET")
        .arg(key)
        .query_async(&mut c)
        .await
        .expect("GET")
}

async fn refresh(gw: &TestGateway) -> StatusCode {
    send(client().post(gw.admin_url("/actuator/gateway/refresh")))
        .await
        .0
}

#[tokio::test]
async fn routes_saved_through_one_gateway_serve_on_another_under_scgs_keys() {
    let redis = RedisServer::start().await;
    let up = Upstream::start().await;
    let a = gateway(&redis.url(), "spring.cloud.gateway").await;
    let b = gateway(&redis.url(), "spring.cloud.gateway.server.webflux").await;
    let c = client();
    // The admin port answers once a gateway has read Redis at start: B's
    // start is over before A saves.
    assert_eq!(
        get(&b.admin_url("/actuator/health")).await.0,
        StatusCode::OK
    );
    // Saved through A: in Redis as SCG keeps it.
    let (s, _, _) = send(c.post(a.admin_url("/actuator/gateway/routes/shared")).json(
        &serde_json::json!({
            "uri": format!("http://{}", up.addr),
            "predicates": ["Path=/shared/**"],
            "filters": ["StripPrefix=1"],
        }),
    ))
    .await;
    assert_eq!(s, StatusCode::CREATED);
    let stored: serde_json::Value = serde_json::from_str(
        &redis_get(&redis, "routedefinition_shared")
            .await
            .expect("the key SCG reads"),
    )
    .expect("JSON");
    assert_eq!(stored["id"], "shared");
    assert_eq!(
        stored["predicates"],
        serde_json::json!([{"name": "Path", "args": {"_genkey_0": "/shared/**"}}])
    );
    // B shows it at once (read from Redis, as SCG reads its repository)
    // and serves it from its next refresh.
    let (_, _, defs) = get(&b.admin_url("/actuator/gateway/routedefinitions")).await;
    assert!(
        defs.as_array()
            .into_iter()
            .flatten()
            .any(|d| d["id"] == "shared"),
        "{defs}"
    );
    assert_eq!(get(&b.url("/shared/x")).await.0, StatusCode::NOT_FOUND);
    assert_eq!(refresh(&b).await, StatusCode::OK);
    let (s, _, echo) = get(&b.url("/shared/x")).await;
    assert_eq!((s, echo["path"].as_str()), (StatusCode::OK, Some("/x")));

    // A route SCG wrote (its JSON, objects for every definition), and a
    // value that is no route, which is skipped.
    let mut conn = redis.connection().await.expect("connected");
    let from_scg = format!(
        r#"{{"id":"scg","predicates":[{{"name":"Path","args":{{"_genkey_0":"/scg/**"}}}}],"filters":[{{"name":"SetPath","args":{{"template":"/from-scg"}}}}],"uri":"http://{}","metadata":{{}},"order":0,"enabled":true}}"#,
        up.addr
    );
    // And a route with a filter this gateway does not have (SCG's
    // `TokenRelay`): left out here, the others still served.
    redis::pipe()
        .cmd("SET")
        .arg("routedefinition_scg")
        .arg(&from_scg)
        .cmd("SET")
        .arg("routedefinition_junk")
        .arg("not a route")
        .cmd("SET")
        .arg("routedefinition_relay")
        .arg(r#"{"id":"relay","predicates":[{"name":"Path","args":{"_genkey_0":"/relay/**"}}],"filters":[{"name":"TokenRelay","args":{}}],"uri":"http://127.0.0.1:9","metadata":{},"order":0,"enabled":true}"#)
        .query_async::<()>(&mut conn)
        .await
        .expect("written");
    assert_eq!(refresh(&a).await, StatusCode::OK);
    assert_eq!(get(&a.url("/scg/x")).await.2["path"], "/from-scg");
    assert_eq!(get(&a.url("/relay/x")).await.0, StatusCode::NOT_FOUND);
    assert_eq!(get(&a.url("/shared/x")).await.0, StatusCode::OK);

    // A gateway started now serves them without a refresh.
    let late = gateway(&redis.url(), "spring.cloud.gateway").await;
    assert_eq!(get(&late.url("/scg/x")).await.0, StatusCode::OK);

    // Deleted through B: gone from Redis, and from A after its refresh.
    let delete = || send(c.delete(b.admin_url("/actuator/gateway/routes/shared")));
    assert_eq!(delete().await.0, StatusCode::OK);
    assert_eq!(redis_get(&redis, "routedefinition_shared").await, None);
    assert_eq!(delete().await.0, StatusCode::NOT_FOUND);
    assert_eq!(refresh(&a).await, StatusCode::OK);
    assert_eq!(get(&a.url("/shared/x")).await.0, StatusCode::NOT_FOUND);

    // Redis away: saving is 503, and a refresh keeps the routes last read.
    drop(redis);
    let (s, _, body) = send(
        c.post(a.admin_url("/actuator/gateway/routes/later"))
            .json(&serde_json::json!({"uri": "http://x"})),
    )
    .await;
    assert_eq!(
        (s, body["status"].as_u64()),
        (StatusCode::SERVICE_UNAVAILABLE, Some(503))
    );
    assert_eq!(refresh(&a).await, StatusCode::OK);
    assert_eq!(get(&a.url("/scg/x")).await.0, StatusCode::OK);
}

#[test]
fn the_repository_without_redis_fails_at_start_naming_the_key() {
    let text = support::refused_at_start(
        "spring.cloud.gateway.redis-route-definition-repository.enabled: true\n",
    );
    assert!(
        text.contains("spring.cloud.gateway.redis-route-definition-repository.enabled"),
        "{text}"
    );
    assert!(text.contains("spring.data.redis"), "{text}");
}

/// The SCG jar on the Redis at `redis_port`, its route repository in Redis
/// and its actuator's route API open on `management`: the process and its
/// proxy port.
async fn scg_on_redis(redis_port: u16, management: u16) -> (spring_app::SpringApp, u16) {
    let mut scg = spring_app::SpringApp::start(
        "gateway",
        [
            "--server.port=0".to_owned(),
            format!("--management.server.port={management}"),
            "--management.endpoints.web.exposure.include=gateway".to_owned(),
            "--management.endpoint.gateway.access=unrestricted".to_owned(),
            "--spring.cloud.gateway.server.webflux.redis-route-definition-repository.enabled=true"
                .to_owned(),
            "--spring.data.redis.host=127.0.0.1".to_owned(),
            format!("--spring.data.redis.port={redis_port}"),
        ],
    );
    let port = scg.netty_port(Duration::from_secs(120)).await;
    (scg, port)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spring_cloud_gateway_and_ours_share_saved_routes_through_redis() {
    let redis = RedisServer::start().await;
    let up = Upstream::start().await;
    let management = support::free_port();
    let (scg, scg_port) = scg_on_redis(redis.port, management).await;
    let scg_admin = |path: &str| format!("http://127.0.0.1:{management}/actuator/gateway{path}");
    let ours = gateway(&redis.url(), "spring.cloud.gateway.server.webflux").await;
    let c = client();
    // Its management port opens after the proxy port.
    support::eventually(Duration::from_secs(60), "SCG's actuator", || async {
        c.get(scg_admin("/routes"))
            .send()
            .await
            .is_ok_and(|r| r.status() == StatusCode::OK)
    })
    .await;

    // Saved through SCG, served by ours after its refresh.
    let (s, _, _) = send(
        c.post(scg_admin("/routes/from-scg"))
            .json(&serde_json::json!({
                "uri": format!("http://{}", up.addr),
                "predicates": ["Path=/from-scg/**"],
                "filters": ["StripPrefix=1", "AddRequestHeader=X-Saved-By, scg"],
            })),
    )
    .await;
    assert_eq!(s, StatusCode::CREATED);
    assert_eq!(refresh(&ours).await, StatusCode::OK);
    let (s, _, echo) = get(&ours.url("/from-scg/x")).await;
    assert_eq!((s, echo["path"].as_str()), (StatusCode::OK, Some("/x")));
    assert_eq!(support::seen(&echo, "x-saved-by"), Some("scg"));

    // Saved through ours, served by SCG after its refresh.
    let (s, _, _) = send(
        c.post(ours.admin_url("/actuator/gateway/routes/from-ours"))
            .json(&serde_json::json!({
                "uri": format!("http://{}", up.addr),
                "predicates": [{"name": "Path", "args": {"_genkey_0": "/from-ours/**"}}],
                "filters": ["SetPath=/ours"],
                "order": -1,
            })),
    )
    .await;
    assert_eq!(s, StatusCode::CREATED);
    assert_eq!(send(c.post(scg_admin("/refresh"))).await.0, StatusCode::OK);
    // SCG answers the refresh before its route table is rebuilt.
    let through_scg = format!("http://127.0.0.1:{scg_port}/from-ours/x");
    support::eventually(Duration::from_secs(10), "SCG serving the route", || async {
        get(&through_scg).await.0 == StatusCode::OK
    })
    .await;
    assert_eq!(get(&through_scg).await.2["path"], "/ours");
    // SCG shows it as ours wrote it.
    let (_, _, defs) = get(&scg_admin("/routedefinitions")).await;
    let shown = defs
        .as_array()
        .into_iter()
        .flatten()
        .find(|d| d["id"] == "from-ours")
        .cloned();
    assert_eq!(
        shown.map(|d| (d["order"].clone(), d["filters"].clone())),
        Some((
            serde_json::json!(-1),
            serde_json::json!([{"name": "SetPath", "args": {"_genkey_0": "/ours"}}])
        )),
        "{defs}"
    );

    // Deleted through SCG, gone from ours after its refresh.
    assert_eq!(
        send(c.delete(scg_admin("/routes/from-ours"))).await.0,
        StatusCode::OK
    );
    assert_eq!(refresh(&ours).await, StatusCode::OK);
    assert_eq!(
        get(&ours.url("/from-ours/x")).await.0,
        StatusCode::NOT_FOUND
    );
    drop(scg);
}
