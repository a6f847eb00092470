//! The gateway in front of real upstreams on 127.0.0.1: forwarding,
//! predicates, filters, errors, the admin API and hot refresh.

mod support;

use std::sync::Arc;
use std::time::Duration;

use api_gateway::resolve::{Instance, StaticInstances};
use axum::http::StatusCode;
use support::{TestGateway, Upstream, client, eventually, get, seen, send};

fn routes(body: &str) -> String {
    format!("spring:\n  cloud:\n    gateway:\n      routes:\n{body}")
}

/// The `key` of each object in the JSON list `list` (route ids from the
/// admin API).
fn ids<'a>(list: &'a serde_json::Value, key: &str) -> Vec<&'a str> {
    list.as_array()
        .into_iter()
        .flatten()
        .filter_map(|item| item[key].as_str())
        .collect()
}

#[tokio::test]
async fn forwards_method_path_query_headers_and_body_with_forwarding_headers() {
    let up = Upstream::start().await;
    let gw = TestGateway::start(&routes(&format!(
        "        - id: api\n          uri: http://{}\n          predicates: [Path=/api/**]\n          filters: [StripPrefix=1]\n",
        up.addr
    )))
    .await;
    let (status, _, echo) = send(
        client()
            .post(gw.url("/api/users/7?x=1&y=2"))
            .header("x-custom", "kept")
            .header("connection", "x-hop")
            .header("x-hop", "dropped")
            .header("x-forwarded-for", "6.6.6.6")
            .body("hello body"),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(echo["method"], "POST");
    assert_eq!(echo["path"], "/users/7");
    assert_eq!(echo["query"], "x=1&y=2");
    assert_eq!(echo["body"], "hello body");
    assert_eq!(seen(&echo, "x-custom"), Some("kept"));
    assert_eq!(
        seen(&echo, "x-hop"),
        None,
        "named by Connection: hop-by-hop"
    );
    assert_eq!(
        seen(&echo, "x-forwarded-for"),
        Some("127.0.0.1"),
        "an untrusted client's value is replaced"
    );
    assert_eq!(seen(&echo, "x-forwarded-proto"), Some("http"));
    assert_eq!(seen(&echo, "x-forwarded-prefix"), Some("/api"));
    assert_eq!(
        seen(&echo, "x-forwarded-host"),
        Some(gw.proxy.to_string().as_str())
    );
    assert_eq!(
        seen(&echo, "x-forwarded-port"),
        Some(gw.proxy.port().to_string().as_str())
    );
    assert!(seen(&echo, "forwarded").is_some_and(|f| f.contains("for=\"127.0.0.1:")));
    assert_eq!(
        seen(&echo, "host"),
        Some(up.addr.to_string().as_str()),
        "Host is the upstream's"
    );
}

#[tokio::test]
async fn trusted_proxies_keep_and_extend_forwarding_headers() {
    let up = Upstream::start().await;
    let gw = TestGateway::start(&format!(
        "spring.cloud.gateway:\n  trusted-proxies: [127.0.0.0/8]\n  routes:\n    - id: a\n      uri: http://{}\n      predicates: [Path=/**]\n",
        up.addr
    ))
    .await;
    let (_, _, echo) = send(
        client()
            .get(gw.url("/x"))
            .header("x-forwarded-for", "203.0.113.9")
            .header("x-forwarded-proto", "https"),
    )
    .await;
    assert_eq!(
        seen(&echo, "x-forwarded-for"),
        Some("203.0.113.9, 127.0.0.1")
    );
    assert_eq!(seen(&echo, "x-forwarded-proto"), Some("https, http"));
}

#[tokio::test]
async fn gateway_errors_are_json_404_503_502_and_504() {
    let up = Upstream::start().await;
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        l.local_addr().expect("addr")
    };
    let gw = TestGateway::start(&routes(&format!(
        "        - id: nobody\n          uri: lb://nobody\n          predicates: [Path=/lb/**]\n\
         \x20       - id: refused\n          uri: http://{closed}\n          predicates: [Path=/refused/**]\n\
         \x20       - id: slow\n          uri: http://{}\n          predicates: [Path=/delay/**]\n          metadata: {{response-timeout: 100}}\n",
        up.addr
    )))
    .await;
    let (status, _, body) = get(&gw.url("/nowhere")).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(
        (body["status"].as_u64(), body["path"].as_str()),
        (Some(404), Some("/nowhere"))
    );
    let (status, _, body) = get(&gw.url("/lb/x")).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert!(
        body["message"]
            .as_str()
            .is_some_and(|m| m.contains("nobody")),
        "{body}"
    );
    let (status, _, body) = get(&gw.url("/refused/x")).await;
    assert_eq!(status, StatusCode::BAD_GATEWAY);
    assert_eq!(body["status"], 502);
    let (status, _, body) = get(&gw.url("/delay/3000")).await;
    assert_eq!(status, StatusCode::GATEWAY_TIMEOUT);
    assert_eq!(body["status"], 504);
}

/// SCG's response timeout is Reactor Netty's: the longest the upstream may
/// go quiet while it answers, its body included. A body that stalls longer
/// is cut short; one whose pauses are shorter arrives whole.
#[tokio::test]
async fn a_response_body_that_stalls_past_the_response_timeout_is_cut_short() {
    let up = Upstream::start().await;
    let gw = TestGateway::start(&routes(&format!(
        "        - id: strict\n          uri: http://{0}\n          predicates: [Path=/strict/**]\n          filters: [StripPrefix=1]\n          metadata: {{response-timeout: 300}}\n\
         \x20       - id: patient\n          uri: http://{0}\n          predicates: [Path=/patient/**]\n          filters: [StripPrefix=1]\n          metadata: {{response-timeout: 5000}}\n",
        up.addr
    )))
    .await;
    // No client timeout: the gateway has to end the body.
    let patient_client = reqwest::Client::builder()
        .no_proxy()
        .build()
        .expect("client");
    let response = patient_client
        .get(gw.url("/strict/stall/30000"))
        .send()
        .await
        .expect("the head arrives before the stall");
    assert_eq!(response.status(), StatusCode::OK);
    let cut = tokio::time::timeout(Duration::from_secs(15), response.bytes())
        .await
        .expect("the gateway ends the stalled body long before the upstream would");
    assert!(
        cut.is_err(),
        "a stalled body must not look complete: {cut:?}"
    );

    let whole = client()
        .get(gw.url("/patient/stall/50"))
        .send()
        .await
        .expect("response")
        .bytes()
        .await
        .expect("a pause shorter than the timeout is waited out");
    assert_eq!(&whole[..], b"start\nend\n");
    // The strict route still answers after its upstream connection was
    // dropped.
    let (status, _, echo) = get(&gw.url("/strict/after")).await;
    assert_eq!(
        (status, echo["path"].as_str()),
        (StatusCode::OK, Some("/after"))
    );
}

#[tokio::test]
async fn lb_routes_spread_over_up_instances_and_follow_changes() {
    let (a, b) = (Upstream::start().await, Upstream::start().await);
    let services = Arc::new(StaticInstances::new());
    services.set(
        "USERS",
        vec![
            Instance::up("127.0.0.1", a.addr.port()),
            Instance::up("127.0.0.1", b.addr.port()),
        ],
    );
    let gw = TestGateway::start_with(
        "spring.cloud.gateway:\n  loadbalancer.strategy: round-robin\n  routes:\n    - id: users\n      uri: lb://USERS\n      predicates: [Path=/users/**]\n",
        Some(services.clone()),
    )
    .await;
    for _ in 0..4 {
        assert_eq!(get(&gw.url("/users/1")).await.0, StatusCode::OK);
    }
    assert_eq!((a.hits(), b.hits()), (2, 2));
    services.set(
        "USERS",
        vec![Instance {
            up: false,
            ..Instance::up("127.0.0.1", a.addr.port())
        }],
    );
    assert_eq!(
        get(&gw.url("/users/1")).await.0,
        StatusCode::SERVICE_UNAVAILABLE
    );
}

#[tokio::test]
async fn discovery_locator_routes_each_service_and_follows_new_ones() {
    let up = Upstream::start().await;
    let services = Arc::new(StaticInstances::new());
    services.set("ORDERS", vec![Instance::up("127.0.0.1", up.addr.port())]);
    let gw = TestGateway::start_with(
        "spring.cloud.gateway.discovery.locator:\n  enabled: true\n  lower-case-service-id: true\n",
        Some(services.clone()),
    )
    .await;
    let (status, _, echo) = get(&gw.url("/orders/42")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(echo["path"], "/42");
    services.set("STOCK", vec![Instance::up("127.0.0.1", up.addr.port())]);
    eventually(Duration::from_secs(5), "the new instance", || async {
        get(&gw.url("/stock/1")).await.0 == StatusCode::OK
    })
    .await;
}

#[tokio::test]
async fn predicates_select_routes() {
    let up = Upstream::start().await;
    let u = up.addr;
    let yaml = routes(&format!(
        "        - {{id: host, uri: 'http://{u}', predicates: ['Host={{sub}}.example.org', 'Path=/p/host'], filters: ['AddRequestHeader=X-Sub, {{sub}}']}}\n\
         \x20       - {{id: method, uri: 'http://{u}', predicates: ['Method=DELETE', 'Path=/p/method']}}\n\
         \x20       - {{id: header, uri: 'http://{u}', predicates: ['Header=X-Id, \\d+', 'Path=/p/header']}}\n\
         \x20       - {{id: query, uri: 'http://{u}', predicates: ['Query=color, re.', 'Path=/p/query']}}\n\
         \x20       - {{id: cookie, uri: 'http://{u}', predicates: ['Cookie=flavor, choc.*', 'Path=/p/cookie']}}\n\
         \x20       - {{id: after, uri: 'http://{u}', predicates: ['After=2017-01-20T17:42:47.789-07:00[America/Denver]', 'Path=/p/after']}}\n\
         \x20       - {{id: before, uri: 'http://{u}', predicates: ['Before=2017-01-20T17:42:47.789-07:00[America/Denver]', 'Path=/p/before']}}\n\
         \x20       - {{id: between, uri: 'http://{u}', predicates: ['Between=2017-01-20T17:42:47.789-07:00[America/Denver], 2999-01-21T17:42:47.789-07:00', 'Path=/p/between']}}\n\
         \x20       - {{id: remote, uri: 'http://{u}', predicates: ['RemoteAddr=127.0.0.1/32', 'Path=/p/remote']}}\n\
         \x20       - {{id: remote-other, uri: 'http://{u}', predicates: ['RemoteAddr=10.0.0.0/8', 'Path=/p/remote-other']}}\n\
         \x20       - {{id: xff, uri: 'http://{u}', predicates: ['XForwardedRemoteAddr=198.51.100.0/24', 'Path=/p/xff']}}\n\
         \x20       - {{id: w1, uri: 'http://{u}', predicates: ['Weight=g, 1', 'Path=/p/weight'], filters: ['AddRequestHeader=X-W, 1']}}\n\
         \x20       - {{id: w2, uri: 'http://{u}', predicates: ['Weight=g, 1', 'Path=/p/weight'], filters: ['AddRequestHeader=X-W, 2']}}\n"
    ));
    let gw = TestGateway::start(&yaml).await;
    let c = client();
    let status = |r: reqwest::RequestBuilder| async move { send(r).await.0 };
    let (s, _, echo) = send(c.get(gw.url("/p/host")).header("host", "beta.example.org")).await;
    assert_eq!((s, seen(&echo, "x-sub")), (StatusCode::OK, Some("beta")));
    assert_eq!(
        status(c.get(gw.url("/p/host")).header("host", "example.com")).await,
        StatusCode::NOT_FOUND
    );
    assert_eq!(status(c.delete(gw.url("/p/method"))).await, StatusCode::OK);
    assert_eq!(
        status(c.get(gw.url("/p/method"))).await,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        status(c.get(gw.url("/p/header")).header("x-id", "12")).await,
        StatusCode::OK
    );
    assert_eq!(
        status(c.get(gw.url("/p/header")).header("x-id", "ab")).await,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        status(c.get(gw.url("/p/query?color=red"))).await,
        StatusCode::OK
    );
    assert_eq!(
        status(c.get(gw.url("/p/query?color=blue"))).await,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        status(
            c.get(gw.url("/p/cookie"))
                .header("cookie", "flavor=chocolate")
        )
        .await,
        StatusCode::OK
    );
    assert_eq!(
        status(c.get(gw.url("/p/cookie")).header("cookie", "flavor=mint")).await,
        StatusCode::NOT_FOUND
    );
    assert_eq!(status(c.get(gw.url("/p/after"))).await, StatusCode::OK);
    assert_eq!(
        status(c.get(gw.url("/p/before"))).await,
        StatusCode::NOT_FOUND
    );
    assert_eq!(status(c.get(gw.url("/p/between"))).await, StatusCode::OK);
    assert_eq!(status(c.get(gw.url("/p/remote"))).await, StatusCode::OK);
    assert_eq!(
        status(c.get(gw.url("/p/remote-other"))).await,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        status(
            c.get(gw.url("/p/xff"))
                .header("x-forwarded-for", "198.51.100.7")
        )
        .await,
        StatusCode::OK
    );
    assert_eq!(status(c.get(gw.url("/p/xff"))).await, StatusCode::NOT_FOUND);
    let mut seen_weights = std::collections::BTreeSet::new();
    for _ in 0..200 {
        let (s, _, echo) = send(c.get(gw.url("/p/weight"))).await;
        assert_eq!(s, StatusCode::OK);
        seen_weights.insert(seen(&echo, "x-w").map(str::to_owned));
        if seen_weights.len() == 2 {
            break;
        }
    }
    assert_eq!(
        seen_weights.len(),
        2,
        "both routes of the weight group answer"
    );
}

#[tokio::test]
async fn filters_change_requests_and_responses() {
    let up = Upstream::start().await;
    let u = up.addr;
    let yaml = format!(
        "spring.cloud.gateway:\n  set-status.original-status-header-name: X-Original\n  default-filters:\n    - AddResponseHeader=X-Default, on\n  routes:\n\
         \x20   - {{id: req, uri: 'http://{u}', predicates: ['Path=/f/req/{{segment}}'], filters: ['AddRequestHeader=X-Seg, {{segment}}', 'AddRequestHeadersIfNotPresent=X-A:1,X-B:2', 'AddRequestParameter=added, yes', 'RemoveRequestParameter=secret', 'MapRequestHeader=X-From, X-To', 'RemoveRequestHeader=X-Drop', 'SetRequestHeader=X-Set, set', 'PrefixPath=/pre', 'SetRequestHostHeader=svc.internal']}}\n\
         \x20   - {{id: rewrite, uri: 'http://{u}', predicates: ['Path=/red/**'], filters: ['RewritePath=/red/?(?<segment>.*), /$\\{{segment}}', 'PreserveHostHeader']}}\n\
         \x20   - {{id: setpath, uri: 'http://{u}', predicates: ['Path=/sp/{{segment}}'], filters: ['SetPath=/{{segment}}']}}\n\
         \x20   - {{id: resp, uri: 'http://{u}', predicates: ['Path=/dup'], filters: ['DedupeResponseHeader=X-Dup', 'RemoveResponseHeader=Server-Secret', 'SetResponseHeader=X-Set, s', 'SecureHeaders', 'SetStatus=201', 'RewriteResponseHeader=X-Default, on, rewritten']}}\n\
         \x20   - {{id: loc, uri: 'http://{u}', predicates: ['Path=/redirect'], filters: ['RewriteLocationResponseHeader=AS_IN_REQUEST, Location, ,']}}\n\
         \x20   - {{id: redirect, uri: 'http://{u}', predicates: ['Path=/go'], filters: ['RedirectTo=302, https://acme.org']}}\n\
         \x20   - {{id: size, uri: 'http://{u}', predicates: ['Path=/size'], filters: ['RequestSize=10B', 'RequestHeaderSize=100B']}}\n"
    );
    let gw = TestGateway::start(&yaml).await;
    let c = client();
    let (s, h, echo) = send(
        c.get(gw.url("/f/req/abc?secret=1&keep=2"))
            .header("x-b", "mine")
            .header("x-from", "v")
            .header("x-drop", "1"),
    )
    .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(echo["path"], "/pre/f/req/abc");
    assert_eq!(echo["query"], "keep=2&added=yes");
    assert_eq!(seen(&echo, "x-seg"), Some("abc"));
    assert_eq!(
        (seen(&echo, "x-a"), seen(&echo, "x-b")),
        (Some("1"), Some("mine"))
    );
    assert_eq!(seen(&echo, "x-to"), Some("v"));
    assert_eq!(seen(&echo, "x-drop"), None);
    assert_eq!(seen(&echo, "x-set"), Some("set"));
    assert_eq!(seen(&echo, "host"), Some("svc.internal"));
    assert_eq!(h["x-default"], "on", "default filter on every route");

    let (_, _, echo) = send(c.get(gw.url("/red/blue")).header("host", "client.example")).await;
    assert_eq!(echo["path"], "/blue");
    assert_eq!(seen(&echo, "host"), Some("client.example"));
    assert_eq!(get(&gw.url("/sp/xyz")).await.2["path"], "/xyz");

    let (s, h, _) = get(&gw.url("/dup")).await;
    assert_eq!(s, StatusCode::CREATED);
    assert_eq!(h["x-original"], "200");
    assert_eq!(h.get_all("x-dup").iter().count(), 1);
    assert!(!h.contains_key("server-secret"));
    assert_eq!(h["x-set"], "s");
    assert_eq!(h["x-frame-options"], "DENY");
    assert_eq!(
        h["x-default"], "on",
        "response filters run in reverse: the default filter adds its header after the route's rewrite ran"
    );

    assert_location_rewritten(&gw).await;
    let no_redirects = support::client_without_redirects();
    let r = no_redirects.get(gw.url("/go")).send().await.expect("sent");
    assert_eq!(
        (
            r.status().as_u16(),
            r.headers()["location"].to_str().expect("ascii")
        ),
        (302, "https://acme.org")
    );
    assert_eq!(up.hits(), 5, "RedirectTo answers without the upstream");

    assert_eq!(
        send(c.post(gw.url("/size")).body("0123456789abc")).await.0,
        StatusCode::PAYLOAD_TOO_LARGE
    );
    assert_eq!(
        send(c.post(gw.url("/size")).body("small")).await.0,
        StatusCode::OK
    );
    assert_eq!(
        send(c.get(gw.url("/size")).header("x-long", "x".repeat(200)))
            .await
            .0,
        StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE
    );
}

/// `spring.security.user.*` puts the admin API behind Basic
/// authentication, as Spring Security puts SCG's actuator; the health
/// probes and the proxy port stay open.
#[tokio::test]
async fn the_admin_api_asks_for_the_configured_user_and_leaves_health_open() {
    let up = Upstream::start().await;
    let gw = TestGateway::start(&format!(
        "spring:\n  security:\n    user:\n      name: ops\n      password: s3cret\n{}",
        routes(&format!(
            "        - id: a\n          uri: http://{}\n          predicates: [Path=/a/**]\n",
            up.addr
        ))
        .trim_start_matches("spring:\n")
    ))
    .await;
    let list = gw.admin_url("/actuator/gateway/routes");
    let (status, headers, body) = send(client().get(&list)).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let challenge = headers
        .get("www-authenticate")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    assert!(challenge.starts_with("Basic"), "{challenge}");
    assert_eq!(body["status"], 401, "Spring's JSON error body: {body}");
    let wrong = client().get(&list).basic_auth("ops", Some("guess"));
    assert_eq!(send(wrong).await.0, StatusCode::UNAUTHORIZED);
    let (status, _, body) = send(client().get(&list).basic_auth("ops", Some("s3cret"))).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(ids(&body, "route_id"), ["a"]);
    for path in ["/actuator/prometheus", "/actuator", "/actuator/healthz"] {
        let (status, _, _) = send(client().get(gw.admin_url(path))).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{path}");
    }
    let refresh = client().post(gw.admin_url("/actuator/gateway/refresh"));
    assert_eq!(send(refresh).await.0, StatusCode::UNAUTHORIZED);
    for path in ["/actuator/health", "/actuator/health/liveness"] {
        let (status, _, body) = send(client().get(gw.admin_url(path))).await;
        assert_eq!(status, StatusCode::OK, "{path}");
        assert_eq!(body["status"], "UP", "{path}");
    }
    let (status, _, _) = send(client().get(gw.url("/a/x"))).await;
    assert_eq!(status, StatusCode::OK, "the proxy port asks for nothing");
}

#[test]
fn an_admin_user_without_a_password_fails_at_start() {
    let settings: api_gateway::settings::Settings =
        serde_yaml_ng::from_str("spring:\n  security:\n    user:\n      name: ops\n")
            .expect("valid YAML");
    let e = api_gateway::Gateway::builder(settings)
        .build()
        .map(|_| ())
        .expect_err("refused")
        .to_string();
    assert!(e.contains("spring.security.user.password"), "{e}");
}

/// An HTTP/2 upstream's `REFUSED_STREAM` says it processed none of the
/// request (RFC 9113 8.7): the gateway sends it again, whatever its method,
/// when its body is still at hand; a body already streamed is not.
#[tokio::test]
async fn a_stream_the_upstream_refused_is_sent_again_when_its_body_is_at_hand() {
    use cloud_runtime::testing::H2Upstream;
    // gRPC goes to a cleartext upstream in HTTP/2 by prior knowledge.
    let grpc = |gw: &TestGateway, body: &'static str| {
        client()
            .post(gw.url("/grpc/svc.Echo/Say"))
            .header("content-type", "application/grpc")
            .body(body)
    };
    let yaml = |upstream: &H2Upstream| {
        routes(&format!(
            "        - id: grpc\n          uri: http://{}\n          predicates: [Path=/grpc/**]\n          filters: [StripPrefix=1]\n",
            upstream.addr
        ))
    };

    let upstream = H2Upstream::start(vec![Some(h2::Reason::REFUSED_STREAM), None]).await;
    let gw = TestGateway::start(&yaml(&upstream)).await;
    let response = grpc(&gw, "").send().await.expect("answered");
    assert_eq!(response.status(), 200);
    assert_eq!(response.text().await.expect("body"), "ok");
    assert_eq!(upstream.streams(), 2, "sent again after the refusal");

    let upstream = H2Upstream::start(vec![Some(h2::Reason::REFUSED_STREAM), None]).await;
    let gw = TestGateway::start(&yaml(&upstream)).await;
    let (status, _, _) = send(grpc(&gw, "a streamed body")).await;
    assert_eq!(status, StatusCode::BAD_GATEWAY);
    assert_eq!(
        upstream.streams(),
        1,
        "a body already sent is not made up again"
    );

    let upstream = H2Upstream::start(vec![Some(h2::Reason::INTERNAL_ERROR), None]).await;
    let gw = TestGateway::start(&yaml(&upstream)).await;
    let (status, _, _) = send(grpc(&gw, "")).await;
    assert_eq!(status, StatusCode::BAD_GATEWAY);
    assert_eq!(
        upstream.streams(),
        1,
        "another reset may come after the upstream acted"
    );
}

#[tokio::test]
async fn admin_api_lists_routes_counts_requests_and_reports_health() {
    let up = Upstream::start().await;
    let gw = TestGateway::start(&routes(&format!(
        "        - id: a\n          uri: http://{}\n          predicates: [Path=/a/**]\n          filters: [StripPrefix=1]\n          metadata: {{team: x}}\n",
        up.addr
    )))
    .await;
    let (s, _, list) = get(&gw.admin_url("/actuator/gateway/routes")).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(list[0]["route_id"], "a");
    assert_eq!(list[0]["filters"][0], "StripPrefix=1");
    assert_eq!(list[0]["metadata"]["team"], "x");
    assert_eq!(
        get(&gw.admin_url("/actuator/gateway/routes/a")).await.2["uri"],
        format!("http://{}", up.addr)
    );
    assert_eq!(
        get(&gw.admin_url("/actuator/gateway/routes/zzz")).await.0,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        get(&gw.admin_url("/actuator/health")).await.2["status"],
        "UP"
    );
    for probe in ["liveness", "readiness"] {
        let (status, _, body) = get(&gw.admin_url(&format!("/actuator/health/{probe}"))).await;
        assert_eq!(
            (status, body["status"].as_str()),
            (StatusCode::OK, Some("UP")),
            "{probe}"
        );
    }
    assert_eq!(
        get(&gw.admin_url("/actuator/health/made-up")).await.0,
        StatusCode::NOT_FOUND
    );
    let links = get(&gw.admin_url("/actuator")).await.2;
    for (name, path) in [
        ("self", "/actuator"),
        ("health", "/actuator/health"),
        ("prometheus", "/actuator/prometheus"),
        ("gateway", "/actuator/gateway"),
    ] {
        let href = links["_links"][name]["href"].as_str().unwrap_or_default();
        assert_eq!(href, gw.admin_url(path), "{name}: {links}");
        let (status, _, _) = get(href).await;
        assert_eq!(status, StatusCode::OK, "{href}");
    }
    get(&gw.url("/a/1")).await;
    get(&gw.url("/a/2")).await;
    let text = gw.prometheus().await;
    // SCG's series: the same name and labels as its GatewayMetricsFilter.
    let labels = format!(
        "{{httpMethod=\"GET\",httpStatusCode=\"200\",outcome=\"SUCCESSFUL\",routeId=\"a\",routeUri=\"http://{}\",status=\"OK\"}}",
        up.addr
    );
    for line in [
        format!("spring_cloud_gateway_requests_seconds_count{labels} 2\n"),
        format!("spring_cloud_gateway_requests_seconds_sum{labels} "),
        format!("spring_cloud_gateway_requests_seconds_max{labels} "),
    ] {
        assert!(text.contains(&line), "no {line:?} in\n{text}");
    }
    assert_eq!(gw.gateway.metrics().count("a"), 2);
    // SCG's other gateway actuator views.
    let (status, _, names) = get(&gw.admin_url("/actuator/gateway/routefilters")).await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        names["[StripPrefixGatewayFilterFactory]"].is_null(),
        "{names}"
    );
    let (_, _, names) = get(&gw.admin_url("/actuator/gateway/routepredicates")).await;
    assert!(names["[PathRoutePredicateFactory]"].is_null(), "{names}");
    let (_, _, global) = get(&gw.admin_url("/actuator/gateway/globalfilters")).await;
    assert_eq!(
        global["org.springframework.cloud.gateway.filter.NettyRoutingFilter"],
        2147483647
    );
    let (status, _, combined) =
        get(&gw.admin_url("/actuator/gateway/routes/a/combinedfilters")).await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        combined
            .as_object()
            .is_some_and(|m| m.keys().any(|k| k.starts_with("StripPrefix"))
                && m.values().all(|v| v.as_u64() >= Some(1))),
        "{combined}"
    );
    assert_eq!(
        get(&gw.admin_url("/actuator/gateway/routes/zzz/combinedfilters"))
            .await
            .0,
        StatusCode::NOT_FOUND
    );
    // The proxy port's connections, counted by the server it runs on.
    let accepted = text
        .lines()
        .find_map(|l| l.strip_prefix("gateway_connections_accepted_total "))
        .and_then(|n| n.parse::<u64>().ok());
    assert!(accepted.is_some_and(|n| n >= 1), "{text}");
    assert!(
        text.contains("\ngateway_connection_send_timeouts_total 0\n"),
        "{text}"
    );
}

#[tokio::test]
async fn a_changed_settings_file_is_reloaded_and_a_broken_one_keeps_the_routes() {
    let up = Upstream::start().await;
    let config = |path: &str| {
        format!(
            "spring:\n  cloud:\n    gateway:\n      reload:\n        interval: 50ms\n      routes:\n\
             \x20       - id: r\n          uri: http://{}\n          predicates: [Path={path}]\n",
            up.addr
        )
    };
    let gw = TestGateway::start(&config("/old/**")).await;
    assert_eq!(get(&gw.url("/old/x")).await.0, StatusCode::OK);
    gw.rewrite(&config("/new/**"));
    eventually(Duration::from_secs(10), "the new route serves", || async {
        get(&gw.url("/new/x")).await.0 == StatusCode::OK
    })
    .await;
    assert_eq!(get(&gw.url("/old/x")).await.0, StatusCode::NOT_FOUND);
    // A file that does not load leaves the routes as they were; fixing it
    // reloads again.
    gw.rewrite(&config("/new/**").replace("Path=", "Nope="));
    eventually(
        Duration::from_secs(10),
        "the broken file refused",
        || async { gw.gateway.metrics().reloads().1 >= 1 },
    )
    .await;
    let (_, _, routes) = send(client().get(gw.admin_url("/actuator/gateway/routes"))).await;
    assert_eq!(routes[0]["route_id"], "r");
    assert_eq!(get(&gw.url("/new/x")).await.0, StatusCode::OK);
    gw.rewrite(&config("/newest/**"));
    eventually(
        Duration::from_secs(10),
        "the fixed file reloads",
        || async { get(&gw.url("/newest/x")).await.0 == StatusCode::OK },
    )
    .await;
}

#[tokio::test]
async fn refresh_swaps_routes_with_no_failed_request() {
    let (old, new) = (Upstream::start().await, Upstream::start().await);
    let config = |addr| {
        routes(&format!(
            "        - id: r\n          uri: http://{addr}\n          predicates: [Path=/r/**]\n"
        ))
    };
    let gw = TestGateway::start(&config(old.addr)).await;
    let url = gw.url("/r/x");
    let new_hits = Arc::clone(&new.hits);
    // Requests run until 20 have reached the new upstream, at most 5,000.
    let load = tokio::spawn(async move {
        let c = client();
        let mut statuses = Vec::new();
        while statuses.len() < 5_000 && new_hits.load(std::sync::atomic::Ordering::SeqCst) < 20 {
            statuses.push(
                c.get(&url)
                    .send()
                    .await
                    .map(|r| r.status().as_u16())
                    .unwrap_or(0),
            );
        }
        statuses
    });
    eventually(
        Duration::from_secs(5),
        "traffic on the old route",
        || async { old.hits() > 20 },
    )
    .await;
    gw.rewrite(&config(new.addr));
    let (s, _, body) = send(client().post(gw.admin_url("/actuator/gateway/refresh"))).await;
    assert_eq!((s, body["routes"].as_u64()), (StatusCode::OK, Some(1)));
    let statuses = load.await.expect("load loop");
    assert!(
        statuses.iter().all(|s| *s == 200),
        "every request answered 200: {statuses:?}"
    );
    assert!(
        new.hits() >= 20,
        "requests after the refresh reach the new upstream"
    );
    // A bad file is refused and the old table stays.
    gw.rewrite(&routes(
        "        - id: r\n          uri: http://x\n          predicates: [Nope=1]\n",
    ));
    let (s, _, body) = send(client().post(gw.admin_url("/actuator/gateway/refresh"))).await;
    assert_eq!(s, StatusCode::INTERNAL_SERVER_ERROR);
    assert!(
        body["message"]
            .as_str()
            .is_some_and(|m| m.contains("unknown predicate")),
        "{body}"
    );
    assert_eq!(get(&gw.url("/r/x")).await.2["server"], new.addr.to_string());
}

#[tokio::test]
async fn with_fail_on_route_definition_error_off_a_bad_route_is_left_out_and_the_others_serve() {
    let up = Upstream::start().await;
    let two_routes = format!(
        "        - id: bad\n          uri: http://{0}\n          predicates: [Path=/bad/**]\n          filters: [TokenRelay]\n        - id: good\n          uri: http://{0}\n          predicates: [Path=/good/**]\n",
        up.addr
    );
    // On (the default): the start fails, naming the route.
    let refused = support::refused_at_start(&routes(&two_routes));
    assert!(refused.contains("route `bad`"), "{refused}");
    let gw = TestGateway::start(&format!(
        "management.endpoint.gateway.access: unrestricted\nspring.cloud.gateway.server.webflux.fail-on-route-definition-error: false\n{}",
        routes(&two_routes)
    ))
    .await;
    assert_eq!(get(&gw.url("/good/x")).await.0, StatusCode::OK);
    assert_eq!(get(&gw.url("/bad/x")).await.0, StatusCode::NOT_FOUND);
    let (_, _, listed) = get(&gw.admin_url("/actuator/gateway/routes")).await;
    assert_eq!(ids(&listed, "route_id"), ["good"], "{listed}");
    // A route saved through the admin API is still checked, and refused
    // with its reason rather than left out later.
    let (s, _, body) = send(
        client()
            .post(gw.admin_url("/actuator/gateway/routes/saved"))
            .json(&serde_json::json!({
                "uri": format!("http://{}", up.addr),
                "predicates": ["Path=/saved/**"],
                "filters": ["StripPrefix=abc"],
            })),
    )
    .await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{body}");
    assert!(
        body["message"]
            .as_str()
            .is_some_and(|m| m.contains("StripPrefix")),
        "{body}"
    );
}

#[tokio::test]
async fn routes_saved_through_the_admin_api_serve_from_the_next_refresh_as_in_scg() {
    let (one, two) = (Upstream::start().await, Upstream::start().await);
    let file_route = format!(
        "        - id: file\n          uri: http://{}\n          predicates: [Path=/file/**]\n          filters: [StripPrefix=1]\n",
        one.addr
    );
    let c = client();
    // Saving routes needs `access: unrestricted`, as in SCG; without an
    // access set, the views and refresh are served and saving is 405.
    let gw = TestGateway::start(&routes(&file_route)).await;
    let (s, _, body) = send(
        c.post(gw.admin_url("/actuator/gateway/routes/x"))
            .json(&serde_json::json!({"uri": "http://x"})),
    )
    .await;
    assert_eq!(
        (s, body["status"].as_u64()),
        (StatusCode::METHOD_NOT_ALLOWED, Some(405))
    );
    let gw = TestGateway::start(&format!(
        "management.endpoint.gateway.access: unrestricted\n{}",
        routes(&file_route)
    ))
    .await;
    let admin = |path: &str| gw.admin_url(&format!("/actuator/gateway{path}"));
    // SCG's RouteDefinition JSON: a predicate as `{name, args}` with a
    // positional argument, a filter in the shortcut form.
    let saved = c
        .post(admin("/routes/api1"))
        .json(&serde_json::json!({
            "uri": format!("http://{}", two.addr),
            "predicates": [{"name": "Path", "args": {"_genkey_0": "/api1/**"}}],
            "filters": ["StripPrefix=1"],
            "order": -1,
        }))
        .send()
        .await
        .expect("saved");
    assert_eq!(saved.status(), StatusCode::CREATED);
    assert_eq!(saved.headers()["location"], "/routes/api1");
    // Saved, shown among the definitions, but not routed before a refresh.
    assert_eq!(get(&gw.url("/api1/x")).await.0, StatusCode::NOT_FOUND);
    let (_, _, defs) = get(&admin("/routedefinitions")).await;
    assert_eq!(ids(&defs, "id"), ["file", "api1"], "{defs}");
    assert_eq!(
        defs[1]["predicates"][0],
        serde_json::json!({"name": "Path", "args": {"_genkey_0": "/api1/**"}})
    );
    assert_eq!(defs[1]["order"], -1);
    assert_eq!(defs[1]["enabled"], true);
    let (s, _, body) = send(c.post(admin("/refresh"))).await;
    assert_eq!((s, body["routes"].as_u64()), (StatusCode::OK, Some(2)));
    let (s, _, echo) = get(&gw.url("/api1/x")).await;
    assert_eq!(
        (s, echo["server"].as_str()),
        (StatusCode::OK, Some(&*two.addr.to_string()))
    );
    assert_eq!(echo["path"], "/x");
    // The route's order (-1) puts it before the file's route.
    let (_, _, listed) = get(&admin("/routes")).await;
    assert_eq!(listed[0]["route_id"], "api1", "{listed}");
    let (_, _, endpoints) = get(&admin("/")).await;
    assert!(
        endpoints
            .as_array()
            .into_iter()
            .flatten()
            .any(|e| e["href"] == "/actuator/gateway/routes/api1"
                && e["methods"] == serde_json::json!(["POST", "DELETE", "GET"])),
        "{endpoints}"
    );

    // A saved route with a file route's id takes its place; deleting it
    // brings the file's back. A file route itself cannot be deleted.
    let (s, _, _) = send(c.post(admin("/routes/file")).json(&serde_json::json!({
        "uri": format!("http://{}", two.addr),
        "predicates": ["Path=/file/**"],
        "filters": ["StripPrefix=1"],
        "enabled": true,
    })))
    .await;
    assert_eq!(s, StatusCode::CREATED);
    send(c.post(admin("/refresh"))).await;
    assert_eq!(
        get(&gw.url("/file/x")).await.2["server"],
        two.addr.to_string()
    );
    assert_eq!(
        send(c.delete(admin("/routes/file"))).await.0,
        StatusCode::OK
    );
    send(c.post(admin("/refresh"))).await;
    assert_eq!(
        get(&gw.url("/file/x")).await.2["server"],
        one.addr.to_string()
    );
    let (s, _, body) = send(c.delete(admin("/routes/file"))).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    assert_eq!(body["path"], "/actuator/gateway/routes/file");

    // Refused with the reason, and nothing saved: an unknown filter, an
    // argument that does not parse, an expression, a body that is not
    // a route, a list with a route without an id.
    for (path, body, reason) in [
        (
            "/routes/bad",
            r#"{"uri":"http://x","filters":["Nope=1"]}"#,
            "Nope",
        ),
        (
            "/routes/bad",
            r#"{"uri":"http://x","filters":["StripPrefix=abc"]}"#,
            "StripPrefix",
        ),
        (
            "/routes/bad",
            r#"{"uri":"http://x","filters":["SetPath=#{T(java.lang.Runtime)}"]}"#,
            "expression",
        ),
        ("/routes/bad", r#"{"predicates":["Path=/x"]}"#, "uri"),
        ("/routes/bad", "not json", "JSON"),
        ("/routes/bad", r#"["Path=/x"]"#, "object"),
        (
            "/routes",
            r#"[{"id":"b1","uri":"http://x"},{"uri":"http://y"}]"#,
            "id",
        ),
    ] {
        let (s, _, answer) = send(
            c.post(admin(path))
                .header("content-type", "application/json")
                .body(body),
        )
        .await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{body}: {answer}");
        assert!(
            answer["message"]
                .as_str()
                .is_some_and(|m| m.contains(reason)),
            "{body}: {answer}"
        );
    }
    let (_, _, defs) = get(&admin("/routedefinitions")).await;
    assert_eq!(defs.as_array().map(Vec::len), Some(2), "{defs}");
    // Several at once, each with its id.
    let (s, _, _) = send(
        c.post(admin("/routes"))
            .header("content-type", "application/json")
            .body(format!(
                r#"[{{"id":"b1","uri":"http://{0}","predicates":["Path=/b1/**"]}},{{"id":"b2","uri":"http://{0}","predicates":["Path=/b2/**"]}}]"#,
                one.addr
            )),
    )
    .await;
    assert_eq!(s, StatusCode::OK);
    let (_, _, body) = send(c.post(admin("/refresh"))).await;
    assert_eq!(body["routes"], 4);
    assert_eq!(get(&gw.url("/b2/x")).await.2["path"], "/b2/x");
}

#[tokio::test]
async fn the_gateway_endpoint_honours_spring_boots_access_levels() {
    let route =
        "        - id: a\n          uri: http://127.0.0.1:9\n          predicates: [Path=/a/**]\n";
    let c = client();
    // read-only: the views stay; saving and deleting are 405, refresh is
    // 404 (as SCG answers with `access: read-only`), each with a JSON body.
    let gw = TestGateway::start(&format!(
        "management.endpoint.gateway.access: read-only\n{}",
        routes(route)
    ))
    .await;
    let admin = |path: &str| gw.admin_url(&format!("/actuator/gateway{path}"));
    assert_eq!(get(&admin("/routes/a")).await.0, StatusCode::OK);
    assert_eq!(get(&admin("/routedefinitions")).await.0, StatusCode::OK);
    let (s, _, body) = send(
        c.post(admin("/routes/b"))
            .json(&serde_json::json!({"uri": "http://x"})),
    )
    .await;
    assert_eq!(s, StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(body["status"], 405);
    assert_eq!(
        send(c.delete(admin("/routes/a"))).await.0,
        StatusCode::METHOD_NOT_ALLOWED
    );
    let (s, _, body) = send(c.post(admin("/refresh"))).await;
    assert_eq!(
        (s, body["path"].as_str()),
        (StatusCode::NOT_FOUND, Some("/actuator/gateway/refresh"))
    );
    let (_, _, endpoints) = get(&admin("/")).await;
    assert!(
        endpoints
            .as_array()
            .into_iter()
            .flatten()
            .all(|e| e["methods"] == serde_json::json!(["GET"])),
        "{endpoints}"
    );
    // Without an access set, refresh is served (and listed).
    let gw = TestGateway::start(&routes(route)).await;
    let (_, _, endpoints) = get(&gw.admin_url("/actuator/gateway/")).await;
    assert!(
        endpoints
            .as_array()
            .into_iter()
            .flatten()
            .any(|e| e["href"] == "/actuator/gateway/refresh"),
        "{endpoints}"
    );
    assert_eq!(
        send(c.post(gw.admin_url("/actuator/gateway/refresh")))
            .await
            .0,
        StatusCode::OK
    );
    // none (here through the deprecated `enabled: false`): no view at all;
    // health and metrics stay.
    let gw = TestGateway::start(&format!(
        "management.endpoint.gateway.enabled: false\n{}",
        routes(route)
    ))
    .await;
    assert_eq!(
        get(&gw.admin_url("/actuator/gateway/routes")).await.0,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        get(&gw.admin_url("/actuator/health")).await.0,
        StatusCode::OK
    );
    // The default for every endpoint applies when the gateway's own is not
    // set; a level that does not exist fails at start, naming the key.
    let gw = TestGateway::start(&format!(
        "management.endpoints.access.default: READ_ONLY\n{}",
        routes(route)
    ))
    .await;
    assert_eq!(
        send(c.post(gw.admin_url("/actuator/gateway/refresh")))
            .await
            .0,
        StatusCode::NOT_FOUND
    );
    let text = support::refused_at_start("management.endpoint.gateway.access: write\n");
    assert!(
        text.contains("management.endpoint.gateway.access"),
        "{text}"
    );
}

/// An upstream that answers the first request on each connection, then
/// closes the connection when the next request arrives, without answering
/// it: a keep-alive connection closed under the gateway's feet.
async fn closing_upstream() -> (std::net::SocketAddr, Arc<std::sync::atomic::AtomicUsize>) {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    let connections = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let count = Arc::clone(&connections);
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            count.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            tokio::spawn(async move {
                let mut buf = vec![0u8; 64 * 1024];
                let mut seen = Vec::new();
                // Read one request head (and its small body, if any).
                while !seen.windows(4).any(|w| w == b"\r\n\r\n") {
                    match stream.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => seen.extend_from_slice(&buf[..n]),
                    }
                }
                let answer = b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok";
                if stream.write_all(answer).await.is_err() {
                    return;
                }
                // The next request: read it and close without answering.
                let _ = stream.read(&mut buf).await;
            });
        }
    });
    (addr, connections)
}

/// The gateway, routing every path to an upstream that answers every
/// request head with the bytes `answer`, on keep-alive connections.
async fn in_front_of_raw_upstream(answer: &'static [u8]) -> TestGateway {
    let addr = raw_upstream(answer).await;
    TestGateway::start(&routes(&format!(
        "        - id: c\n          uri: http://{addr}\n          predicates: [Path=/**]\n"
    )))
    .await
}

/// An upstream that answers every request head with the bytes `answer`,
/// on keep-alive connections.
async fn raw_upstream(answer: &'static [u8]) -> std::net::SocketAddr {
    scripted_upstream(answer, answer.len().max(1), false).await
}

/// `GET {path}/{i}` for `i` in `0..n`, in turn on one client (so on one
/// keep-alive connection to the gateway): each answer's status and whole
/// body.
async fn get_in_turn(gw: &TestGateway, path: &str, n: usize) -> Vec<(u16, bytes::Bytes)> {
    let c = client();
    let mut answers = Vec::with_capacity(n);
    for i in 0..n {
        let r = c
            .get(gw.url(&format!("{path}/{i}")))
            .send()
            .await
            .expect("an answer");
        let status = r.status().as_u16();
        answers.push((status, r.bytes().await.expect("the whole body")));
    }
    answers
}

/// An upstream that answers each request head with `answer`, written
/// `piece` bytes at a time, and then closes the connection when `close`
/// (else reads on, answering each further head the same way).
async fn scripted_upstream(
    answer: &'static [u8],
    piece: usize,
    close: bool,
) -> std::net::SocketAddr {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            stream.set_nodelay(true).expect("nodelay");
            tokio::spawn(async move {
                let mut buf = vec![0u8; 64 * 1024];
                let mut seen = Vec::new();
                loop {
                    while let Some(end) = seen.windows(4).position(|w| w == b"\r\n\r\n") {
                        seen.drain(..end + 4);
                        for part in answer.chunks(piece) {
                            if stream.write_all(part).await.is_err() {
                                return;
                            }
                            tokio::task::yield_now().await;
                        }
                        if close {
                            return;
                        }
                    }
                    match stream.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => seen.extend_from_slice(&buf[..n]),
                    }
                }
            });
        }
    });
    addr
}

/// The gateway in front of a [`scripted_upstream`].
async fn dribbling_upstream(answer: &'static [u8], piece: usize, close: bool) -> TestGateway {
    let addr = scripted_upstream(answer, piece, close).await;
    TestGateway::start(&routes(&format!(
        "        - id: c\n          uri: http://{addr}\n          predicates: [Path=/**]\n"
    )))
    .await
}

#[tokio::test]
async fn responses_arriving_a_byte_at_a_time_come_through_whole_in_each_framing() {
    // Each answer in pieces of one byte, so that every part of the
    // response (status line, headers, chunk sizes, extensions, trailers)
    // is split across reads.
    let cases: [(&'static [u8], bool, &str); 4] = [
        (
            b"HTTP/1.1 200 OK\r\ncontent-length: 11\r\nx-a: 1\r\n\r\nhello world",
            false,
            "hello world",
        ),
        (
            b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n5;ext=1\r\nhello\r\n6\r\n world\r\n0\r\nx-t: 2\r\n\r\n",
            false,
            "hello world",
        ),
        (
            b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nlink: </a>\r\n\r\nHTTP/1.1 200 OK\r\ncontent-length: 11\r\n\r\nhello world",
            false,
            "hello world",
        ),
        // Neither length nor chunks: the body ends at the close.
        (b"HTTP/1.1 200 OK\r\nx-a: 1\r\n\r\nhello world", true, "hello world"),
    ];
    for (answer, close, body) in cases {
        let gw = dribbling_upstream(answer, 1, close).await;
        let text = String::from_utf8_lossy(answer);
        for (status, got) in get_in_turn(&gw, "/d", 3).await {
            assert_eq!(status, 200, "{text}");
            assert_eq!(got, body.as_bytes(), "{text}");
        }
    }
}

#[tokio::test]
async fn a_response_cut_short_never_reaches_the_client_as_a_whole_one() {
    // A promised length of 20, then the close after 11 bytes.
    let gw = dribbling_upstream(
        b"HTTP/1.1 200 OK\r\ncontent-length: 20\r\n\r\nhello world",
        4,
        true,
    )
    .await;
    let c = client();
    for i in 0..2 {
        // The head may not have left the gateway when the body fails:
        // then the client sees its connection close instead.
        if let Ok(r) = c.get(gw.url(&format!("/cut/{i}"))).send().await {
            assert_eq!(r.status(), 200);
            assert!(
                r.bytes().await.is_err(),
                "the client sees the body fail, not a short body taken as whole"
            );
        }
    }
}

#[tokio::test]
async fn a_connection_whose_upstream_sent_more_than_its_response_is_not_used_again() {
    // Bytes past the promised length would be read as the next
    // request's response if the connection went back to the pool.
    let gw = in_front_of_raw_upstream(
        b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nokHTTP/1.1 404 Not Found\r\ncontent-length: 0\r\n\r\n",
    )
    .await;
    for (status, body) in get_in_turn(&gw, "/extra", 4).await {
        assert_eq!((status, &body[..]), (200, &b"ok"[..]));
    }
}

#[tokio::test]
async fn a_response_framed_by_transfer_encoding_loses_its_content_length() {
    // Both framings: Transfer-Encoding wins (RFC 9112 6.3), and the
    // Content-Length must not reach the client, whose next response
    // would start inside this one's promised length.
    let gw = in_front_of_raw_upstream(
        b"HTTP/1.1 200 OK\r\ncontent-length: 100\r\ntransfer-encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n\r\n",
    )
    .await;
    let c = client();
    for i in 0..3 {
        let response = c
            .get(gw.url(&format!("/te/{i}")))
            .send()
            .await
            .expect("an answer");
        assert_eq!(response.status(), 200);
        assert_ne!(
            response
                .headers()
                .get("content-length")
                .map(|v| v.as_bytes()),
            Some(&b"100"[..])
        );
        assert_eq!(response.text().await.expect("the whole body"), "ok");
    }
}

#[tokio::test]
async fn an_http_1_0_upstream_is_answered_to_the_client_in_http_1_1() {
    let gw = in_front_of_raw_upstream(
        b"HTTP/1.0 200 OK\r\ncontent-type: text/plain\r\ncontent-length: 3\r\n\r\nold",
    )
    .await;
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let mut conn = tokio::net::TcpStream::connect(gw.proxy)
        .await
        .expect("connect to the gateway");
    // Two requests on one connection: the answer is HTTP/1.1, so the
    // connection stays open for the second.
    for i in 0..2 {
        conn.write_all(format!("GET /old/{i} HTTP/1.1\r\nhost: gw\r\n\r\n").as_bytes())
            .await
            .expect("send");
        let mut answer = Vec::new();
        let mut buf = [0u8; 4096];
        while !answer.ends_with(b"\r\n\r\nold") {
            let n = tokio::time::timeout(Duration::from_secs(10), conn.read(&mut buf))
                .await
                .expect("an answer within 10 s")
                .expect("read");
            assert_ne!(
                n,
                0,
                "closed before the end: {:?}",
                String::from_utf8_lossy(&answer)
            );
            answer.extend_from_slice(&buf[..n]);
        }
        let text = String::from_utf8_lossy(&answer);
        assert!(text.starts_with("HTTP/1.1 200 OK\r\n"), "{text}");
        assert!(!text.contains("connection: close"), "{text}");
    }
}

#[tokio::test]
async fn an_invalid_upstream_response_is_a_502_that_says_so() {
    let gw = in_front_of_raw_upstream(
        b"HTTP/1.1 200 OK\r\nbad header: x\r\ncontent-length: 2\r\n\r\nok",
    )
    .await;
    let (status, _, body) = get(&gw.url("/bad")).await;
    assert_eq!(status, StatusCode::BAD_GATEWAY);
    assert_eq!(body["message"], "invalid response from the upstream");
}

#[tokio::test]
async fn idempotent_request_is_sent_again_when_its_pooled_connection_was_closed() {
    let (addr, connections) = closing_upstream().await;
    let gw = TestGateway::start(&routes(&format!(
        "        - id: c\n          uri: http://{addr}\n          predicates: [Path=/**]\n"
    )))
    .await;
    let c = client();
    for i in 0..3 {
        let r = c.get(gw.url("/x")).send().await.expect("sent");
        assert_eq!(r.status().as_u16(), 200, "GET {i}");
    }
    assert!(
        connections.load(std::sync::atomic::Ordering::SeqCst) >= 3,
        "each retry on a new connection"
    );
    // A POST is not idempotent: its failure is reported, not repeated.
    let mut statuses = Vec::new();
    for _ in 0..2 {
        statuses.push(
            c.post(gw.url("/x"))
                .body("once")
                .send()
                .await
                .expect("sent")
                .status()
                .as_u16(),
        );
    }
    assert!(
        statuses.contains(&502),
        "a POST on a closed pooled connection is not sent again: {statuses:?}"
    );
}

/// Sends a chunked POST of `chunks` chunks of `size` bytes over a raw
/// connection; the status code of the answer.
async fn post_chunked(gw: &TestGateway, path: &str, chunks: usize, size: usize) -> u16 {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut conn = tokio::net::TcpStream::connect(gw.proxy)
        .await
        .expect("connect to the gateway");
    let head = format!(
        "POST {path} HTTP/1.1\r\nhost: gw\r\ntransfer-encoding: chunked\r\nconnection: close\r\n\r\n"
    );
    conn.write_all(head.as_bytes())
        .await
        .expect("send the request head");
    let chunk = format!("{size:x}\r\n{}\r\n", "x".repeat(size));
    for _ in 0..chunks {
        // The gateway may answer 413 and close before every chunk is sent.
        if conn.write_all(chunk.as_bytes()).await.is_err() {
            break;
        }
    }
    let _ = conn.write_all(b"0\r\n\r\n").await;
    let mut answer = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(10), conn.read_to_end(&mut answer)).await;
    let answer = String::from_utf8_lossy(&answer);
    answer
        .split(' ')
        .nth(1)
        .and_then(|code| code.parse().ok())
        .unwrap_or_else(|| panic!("no status line in {answer:?}"))
}

#[tokio::test]
async fn request_size_cuts_a_chunked_body_at_the_limit() {
    let up = Upstream::start().await;
    let gw = TestGateway::start(&routes(&format!(
        "        - id: size\n          uri: http://{}\n          predicates: [Path=/**]\n          filters: [RequestSize=1KB]\n",
        up.addr
    )))
    .await;
    assert_eq!(post_chunked(&gw, "/under", 4, 200).await, 200);
    assert_eq!(post_chunked(&gw, "/over", 64, 512).await, 413);
    assert_eq!(
        post_chunked(&gw, "/again", 2, 100).await,
        200,
        "still serving"
    );
}

#[tokio::test]
async fn large_bodies_stream_both_ways() {
    let up = Upstream::start().await;
    let gw = TestGateway::start(&routes(&format!(
        "        - id: big\n          uri: http://{}\n          predicates: [Path=/**]\n",
        up.addr
    )))
    .await;
    let body: String = "0123456789".repeat(300_000);
    let (status, _, echo) = send(client().post(gw.url("/upload")).body(body.clone())).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        echo["body"].as_str().map(str::len),
        Some(body.len()),
        "3 MB up and (as JSON) back"
    );
}

#[tokio::test]
async fn large_downloads_come_through_whole_by_length_and_in_chunks() {
    let data: Vec<u8> = (0..3_000_000u32).map(|i| (i % 251) as u8).collect();
    let by_length = [
        format!("HTTP/1.1 200 OK\r\ncontent-length: {}\r\n\r\n", data.len()).into_bytes(),
        data.clone(),
    ]
    .concat();
    let mut chunked = b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n".to_vec();
    for piece in data.chunks(70_000) {
        chunked.extend_from_slice(format!("{:x}\r\n", piece.len()).as_bytes());
        chunked.extend_from_slice(piece);
        chunked.extend_from_slice(b"\r\n");
    }
    chunked.extend_from_slice(b"0\r\n\r\n");
    for answer in [by_length, chunked] {
        let gw = in_front_of_raw_upstream(answer.leak()).await;
        // Twice: the connection goes back to the pool after a large body.
        for (status, got) in get_in_turn(&gw, "/big", 2).await {
            assert_eq!(status, 200);
            assert!(
                got[..] == data[..],
                "{} bytes, not the upstream's",
                got.len()
            );
        }
    }
}

#[tokio::test]
async fn location_of_an_lb_instance_is_rewritten_to_the_gateway() {
    let up = Upstream::start().await;
    let services = Arc::new(StaticInstances::new());
    services.set("WEB", vec![Instance::up("127.0.0.1", up.addr.port())]);
    let gw = TestGateway::start_with(
        "spring.cloud.gateway:\n  routes:\n    - id: web\n      uri: lb://WEB\n      predicates: [Path=/redirect]\n      filters: [RewriteLocationResponseHeader]\n",
        Some(services),
    )
    .await;
    assert_location_rewritten(&gw).await;
}

/// `/redirect` answers a Location on the upstream; the client sees the
/// gateway's address instead.
async fn assert_location_rewritten(gw: &TestGateway) {
    let r = support::client_without_redirects()
        .get(gw.url("/redirect"))
        .send()
        .await
        .expect("sent");
    assert_eq!(
        r.headers()["location"],
        format!("http://{}/next", gw.proxy).as_str()
    );
}

/// A keep-alive upstream on a raw socket answering every request `ok`;
/// counts the connections it accepted and those its peer closed.
async fn counting_upstream() -> (
    std::net::SocketAddr,
    Arc<std::sync::atomic::AtomicUsize>,
    Arc<std::sync::atomic::AtomicUsize>,
) {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    let (opened, closed) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    let (o, c) = (Arc::clone(&opened), Arc::clone(&closed));
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            o.fetch_add(1, Ordering::SeqCst);
            let c = Arc::clone(&c);
            tokio::spawn(async move {
                let mut buf = vec![0u8; 16 * 1024];
                let mut seen = Vec::new();
                loop {
                    match stream.read(&mut buf).await {
                        Ok(0) | Err(_) => break,
                        Ok(n) => seen.extend_from_slice(&buf[..n]),
                    }
                    // Bodiless GETs: one answer per request head.
                    while let Some(end) = seen.windows(4).position(|w| w == b"\r\n\r\n") {
                        seen.drain(..end + 4);
                        let answer = b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok";
                        if stream.write_all(answer).await.is_err() {
                            c.fetch_add(1, Ordering::SeqCst);
                            return;
                        }
                    }
                }
                c.fetch_add(1, Ordering::SeqCst);
            });
        }
    });
    (addr, opened, closed)
}

#[tokio::test]
async fn pooled_connections_are_reused_and_closed_after_the_idle_time() {
    use std::sync::atomic::Ordering;
    let (addr, opened, closed) = counting_upstream().await;
    let gw = TestGateway::start(&format!(
        "spring:\n  cloud:\n    gateway:\n      httpclient:\n        pool: {{ max-idle-time: 300ms }}\n      routes:\n        - id: c\n          uri: http://{addr}\n          predicates: [Path=/**]\n"
    ))
    .await;
    let c = client();
    for i in 0..5 {
        let r = c.get(gw.url("/x")).send().await.expect("sent");
        assert_eq!(r.status().as_u16(), 200, "GET {i}");
        assert_eq!(r.text().await.expect("body"), "ok");
    }
    assert_eq!(
        opened.load(Ordering::SeqCst),
        1,
        "sequential requests share one pooled connection"
    );
    eventually(
        Duration::from_secs(10),
        "the idle connection closed",
        || {
            let closed = closed.load(Ordering::SeqCst);
            async move { closed == 1 }
        },
    )
    .await;
    let r = c.get(gw.url("/x")).send().await.expect("sent");
    assert_eq!(r.status().as_u16(), 200);
    assert_eq!(
        opened.load(Ordering::SeqCst),
        2,
        "a new connection after the idle close"
    );
}

#[tokio::test]
async fn set_request_uri_chooses_the_service_per_request() {
    let (a, b) = (Upstream::start().await, Upstream::start().await);
    let services = Arc::new(StaticInstances::new());
    services.set("ALPHA", vec![Instance::up("127.0.0.1", a.addr.port())]);
    services.set("BETA", vec![Instance::up("127.0.0.1", b.addr.port())]);
    // The route's own uri is a closed port: only SetRequestUri reaches anyone.
    let gw = TestGateway::start_with(
        "spring.cloud.gateway.routes:\n  - id: tenants\n    uri: http://127.0.0.1:1\n    predicates: ['Path=/tenant/{name}/**']\n    filters: ['SetRequestUri=lb://{name}/api?from=tenant']\n",
        Some(services.clone()),
    )
    .await;
    let (status, _, echo) = get(&gw.url("/tenant/ALPHA/x?dropped=1")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        (echo["path"].as_str(), echo["query"].as_str()),
        (Some("/api"), Some("from=tenant"))
    );
    assert_eq!(echo["server"], a.addr.to_string());
    let (status, _, echo) = get(&gw.url("/tenant/BETA/y")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(echo["server"], b.addr.to_string());
    assert_eq!((a.hits(), b.hits()), (1, 1));
    let (status, _, body) = get(&gw.url("/tenant/GAMMA/z")).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
}

#[tokio::test]
async fn a_service_without_instances_is_503_or_with_use404_404() {
    let services = Arc::new(StaticInstances::new());
    let routes = "spring.cloud.gateway.routes:\n  - id: svc\n    uri: lb://GAMMA\n    predicates: ['Path=/g/**']\n";
    let gw = TestGateway::start_with(routes, Some(services.clone())).await;
    let (status, _, body) = get(&gw.url("/g/x")).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    let gw = TestGateway::start_with(
        &format!("spring.cloud.gateway.loadbalancer.use404: true\n{routes}"),
        Some(services),
    )
    .await;
    let (status, _, body) = get(&gw.url("/g/x")).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    assert_eq!(body["status"], 404);
    assert_eq!(body["error"], "Not Found");
    assert_eq!(body["path"], "/g/x");
}

#[tokio::test]
async fn remove_json_attributes_rewrites_json_bodies_within_the_codec_limit() {
    let up = Upstream::start().await;
    let u = up.addr;
    let gw = TestGateway::start(&format!(
        "spring.codec.max-in-memory-size: 2KB\n{}",
        routes(&format!(
            "        - {{id: json, uri: 'http://{u}', predicates: ['Path=/json/**'], filters: ['RemoveJsonAttributesResponseBody=headers,peer']}}\n"
        ))
    ))
    .await;
    let (status, headers, echo) = get(&gw.url("/json/x")).await;
    assert_eq!(status, StatusCode::OK, "{echo}");
    let fields: Vec<&str> = echo
        .as_object()
        .expect("an object")
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(
        fields,
        ["method", "path", "query", "body", "server"],
        "order kept"
    );
    let length: usize = headers["content-length"]
        .to_str()
        .expect("ascii")
        .parse()
        .expect("a length");
    assert_eq!(length, serde_json::to_vec(&echo).expect("json").len());
    // The echo of a 4 KiB body is over the 2KB limit: refused, not passed on.
    let big = "x".repeat(4096);
    let (status, _, error) = send(client().post(gw.url("/json/x")).body(big)).await;
    assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
    assert!(
        error["message"]
            .as_str()
            .is_some_and(|m| m.contains("spring.codec.max-in-memory-size")),
        "{error}"
    );
}

#[tokio::test]
async fn a_bad_codec_limit_fails_at_start_naming_the_key() {
    let text = support::refused_at_start("spring.codec.max-in-memory-size: lots\n");
    assert!(text.contains("spring.codec.max-in-memory-size"), "{text}");
}

#[tokio::test]
async fn server_compression_gzips_large_bodies_for_clients_that_take_it() {
    use std::io::Read as _;
    let up = Upstream::start().await;
    let gw = TestGateway::start(&format!(
        "server.compression:\n  enabled: true\n  min-response-size: 1KB\n{}",
        routes(&format!(
            "        - id: c\n          uri: http://{}\n          predicates: [Path=/**]\n",
            up.addr
        ))
    ))
    .await;
    let body = "x".repeat(4096);
    // A client that shows the encoding instead of decoding it.
    let raw = reqwest::Client::builder()
        .no_proxy()
        .no_gzip()
        .build()
        .expect("client");
    let send = |gzip: bool| {
        let request = raw.post(gw.url("/z")).body(body.clone());
        let request = match gzip {
            true => request.header("accept-encoding", "gzip"),
            false => request,
        };
        async move { request.send().await.expect("an answer") }
    };
    let zipped = send(true).await;
    assert_eq!(zipped.status(), 200);
    assert_eq!(zipped.headers()["content-encoding"], "gzip");
    assert_eq!(zipped.headers()["vary"], "Accept-Encoding");
    let bytes = zipped.bytes().await.expect("body");
    assert!(bytes.len() < 1024, "compressed: {} bytes", bytes.len());
    let mut text = String::new();
    flate2::read::GzDecoder::new(&bytes[..])
        .read_to_string(&mut text)
        .expect("a gzip body");
    let echo: serde_json::Value = serde_json::from_str(&text).expect("the echo");
    assert_eq!(echo["body"], body.as_str());

    let plain = send(false).await;
    assert!(plain.headers().get("content-encoding").is_none());
    let echo: serde_json::Value = plain.json().await.expect("plain JSON");
    assert_eq!(echo["body"], body.as_str());
}

#[tokio::test]
async fn a_bad_compression_setting_fails_at_start_naming_the_key() {
    let text = support::refused_at_start(
        "server.compression:\n  enabled: true\n  min-response-size: big\n",
    );
    assert!(
        text.contains("server.compression.min-response-size"),
        "{text}"
    );
}

#[test]
fn an_application_properties_file_gives_the_routes_its_yaml_gives() {
    let write = |ext: &str, text: &str| {
        let f = tempfile::Builder::new()
            .suffix(ext)
            .tempfile()
            .expect("temp file");
        std::fs::write(f.path(), text).expect("written");
        f
    };
    let yaml = write(
        ".yml",
        "spring:\n  cloud:\n    gateway:\n      server:\n        webflux:\n          default-filters: ['AddResponseHeader=X-Gw, yes']\n          routes:\n            - id: users\n              uri: lb://USERS\n              order: 2\n              predicates: ['Path=/users/{id}', 'Method=GET,POST']\n              filters:\n                - StripPrefix=1\n                - name: RewritePath\n                  args: {regexp: '/(?<rest>.*)', replacement: '/v2/${rest}'}\n              metadata: {response-timeout: 200, connect-timeout: 100}\n            - id: web\n              uri: http://127.0.0.1:9000\n              predicates: ['Host=**.example.org']\n",
    );
    let properties = write(
        ".properties",
        "# the same routes as Spring Boot's application.properties\n\
         spring.cloud.gateway.server.webflux.default-filters[0]=AddResponseHeader=X-Gw, yes\n\
         spring.cloud.gateway.server.webflux.routes[0].id=users\n\
         spring.cloud.gateway.server.webflux.routes[0].uri=lb://USERS\n\
         spring.cloud.gateway.server.webflux.routes[0].order=2\n\
         spring.cloud.gateway.server.webflux.routes[0].predicates[0]=Path=/users/{id}\n\
         spring.cloud.gateway.server.webflux.routes[0].predicates[1]=Method=GET,POST\n\
         spring.cloud.gateway.server.webflux.routes[0].filters[0]=StripPrefix=1\n\
         spring.cloud.gateway.server.webflux.routes[0].filters[1].name=RewritePath\n\
         spring.cloud.gateway.server.webflux.routes[0].filters[1].args.regexp=/(?<rest>.*)\n\
         spring.cloud.gateway.server.webflux.routes[0].filters[1].args.replacement=/v2/${rest}\n\
         spring.cloud.gateway.server.webflux.routes[0].metadata.response-timeout=200\n\
         spring.cloud.gateway.server.webflux.routes[0].metadata.connect-timeout=100\n\
         spring.cloud.gateway.server.webflux.routes[1].id=web\n\
         spring.cloud.gateway.server.webflux.routes[1].uri=http://127.0.0.1:9000\n\
         spring.cloud.gateway.server.webflux.routes[1].predicates[0]=Host=**.example.org\n",
    );
    let describe = |path: &std::path::Path| {
        let gateway = api_gateway::Gateway::from_source(api_gateway::settings::Source::file(path))
            .and_then(|b| b.build())
            .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let table = gateway.table();
        table
            .routes()
            .iter()
            .map(|r| {
                // A properties file's values are text (SCG shows them so too).
                let mut d = r.describe();
                if let Some(m) = d["metadata"].as_object_mut() {
                    for v in m.values_mut() {
                        if let Some(n) = v.as_u64() {
                            *v = serde_json::Value::from(n.to_string());
                        }
                    }
                }
                (d, r.connect_timeout, r.response_timeout)
            })
            .collect::<Vec<_>>()
    };
    let from_yaml = describe(yaml.path());
    assert_eq!(from_yaml.len(), 2);
    assert_eq!(describe(properties.path()), from_yaml);
}

#[tokio::test]
async fn routes_from_environment_variables_with_indices_serve_requests() {
    let up = Upstream::start().await;
    let env: std::collections::BTreeMap<String, String> = [
        (
            "SPRING_CLOUD_GATEWAY_SERVER_WEBFLUX_ROUTES_0_ID",
            "env-route".to_owned(),
        ),
        (
            "SPRING_CLOUD_GATEWAY_SERVER_WEBFLUX_ROUTES_0_URI",
            format!("http://{}", up.addr),
        ),
        (
            "SPRING_CLOUD_GATEWAY_SERVER_WEBFLUX_ROUTES_0_PREDICATES_0",
            "Path=/env/**".to_owned(),
        ),
        (
            "SPRING_CLOUD_GATEWAY_SERVER_WEBFLUX_ROUTES_0_FILTERS_0_NAME",
            "StripPrefix".to_owned(),
        ),
        (
            "SPRING_CLOUD_GATEWAY_SERVER_WEBFLUX_ROUTES_0_FILTERS_0_ARGS_PARTS",
            "1".to_owned(),
        ),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect();
    let source = api_gateway::settings::Source {
        file: None,
        env: Arc::new(env),
        flags: Vec::new(),
    };
    let gateway = api_gateway::Gateway::from_source(source)
        .and_then(|b| b.build())
        .expect("routes from the environment");
    let table = gateway.table();
    let route = table.get("env-route").expect("the route");
    assert_eq!(
        route.describe()["filters"],
        serde_json::json!(["StripPrefix=parts: 1"])
    );
    let gw = TestGateway::start_with_gateway(gateway).await;
    let (status, _, echo) = get(&gw.url("/env/a/b")).await;
    assert_eq!(
        (status, echo["path"].as_str()),
        (StatusCode::OK, Some("/a/b"))
    );
}
