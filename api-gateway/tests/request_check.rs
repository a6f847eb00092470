//! Requests the gateway refuses before routing, over real sockets: crafted
//! paths with dot-segments, a missing, repeated or malformed `Host`,
//! `CONNECT`, and a
//! request body whose framing breaks; and the request line's authority
//! taken as the `Host`.

mod support;

use std::time::Duration;

use serde_json::Value;
use support::{TestGateway, Upstream, seen};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

fn routes(body: &str) -> String {
    format!("spring:\n  cloud:\n    gateway:\n      routes:\n{body}")
}

/// Sends `raw` on a new connection and reads the answer to its end (the
/// requests say `connection: close`, or the gateway closes after a bad
/// one): status code and body.
async fn exchange(gw: &TestGateway, raw: &[u8]) -> (u16, String) {
    let mut conn = tokio::net::TcpStream::connect(gw.proxy)
        .await
        .expect("connect to the gateway");
    conn.write_all(raw).await.expect("send the request");
    let mut answer = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), conn.read_to_end(&mut answer))
        .await
        .expect("the gateway answers and closes within 10 s")
        .expect("read the answer");
    let answer = String::from_utf8_lossy(&answer).into_owned();
    let status = answer
        .split(' ')
        .nth(1)
        .and_then(|code| code.parse().ok())
        .unwrap_or_else(|| panic!("no status line in {answer:?}"));
    let body = answer
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_owned())
        .unwrap_or_default();
    (status, body)
}

fn get(target: &str, host_lines: &str) -> Vec<u8> {
    format!("GET {target} HTTP/1.1\r\n{host_lines}connection: close\r\n\r\n").into_bytes()
}

fn message(body: &str) -> String {
    let json: Value = serde_json::from_str(body).unwrap_or_else(|e| panic!("{e}: {body:?}"));
    assert_eq!(json["status"], 400, "{json}");
    json["message"].as_str().unwrap_or_default().to_owned()
}

#[tokio::test]
async fn a_path_with_dot_segments_never_reaches_the_upstream() {
    let up = Upstream::start().await;
    let gw = TestGateway::start(&routes(&format!(
        "        - id: public\n          uri: http://{}\n          predicates: ['Path=/public/**']\n",
        up.addr
    )))
    .await;
    for target in [
        "/public/../admin",
        "/public/./x",
        "/public/%2e%2e/admin",
        "/public/%2E%2e/admin",
        "/public/..;/admin",
        "/public/..%2fadmin",
        "/public/..%5cadmin",
        "/public/..\\admin",
    ] {
        let (status, body) = exchange(&gw, &get(target, "host: gw\r\n")).await;
        assert_eq!(status, 400, "{target}: {body}");
        assert!(message(&body).contains("'..' segment"), "{target}: {body}");
    }
    assert_eq!(up.hits(), 0, "no crafted path was forwarded");

    for target in ["/public/file.txt", "/public/.well-known/x", "/public/a..b"] {
        let (status, body) = exchange(&gw, &get(target, "host: gw\r\n")).await;
        assert_eq!(status, 200, "{target}: {body}");
    }
    assert_eq!(up.hits(), 3);

    let metrics = gw.prometheus().await;
    assert!(
        metrics.contains("gateway_refused_requests_total 8\n"),
        "{metrics}"
    );
}

/// A route with guards (here marked by a header) and a catch-all: a path
/// spelt otherwise (escaped letters, matrix parameters, a run of `/`) still
/// takes the guarded route, as the upstream will read it as that route's
/// path. Such spellings used to take the catch-all, past the guards.
#[tokio::test]
async fn a_path_spelt_otherwise_takes_the_route_it_names_once_decoded() {
    let up = Upstream::start().await;
    let route = |id: &str, pattern: &str, value: &str| {
        format!(
            "        - id: {id}\n          uri: http://{}\n          predicates: ['Path={pattern}']\n          filters: ['SetRequestHeader=X-Route, {value}']\n",
            up.addr
        )
    };
    let gw = TestGateway::start(&routes(
        &(route("admin", "/admin/{name}/**", "admin {name}") + &route("all", "/**", "catch-all")),
    ))
    .await;
    let routed = async |target: &str| {
        let (status, body) = exchange(&gw, &get(target, "host: gw\r\n")).await;
        assert_eq!(status, 200, "{target}: {body}");
        let echo: Value = serde_json::from_str(&body).expect("the upstream's echo");
        let route = seen(&echo, "x-route").unwrap_or_default().to_owned();
        (route, echo["path"].as_str().unwrap_or_default().to_owned())
    };
    for (target, name, forwarded) in [
        ("/admin/users/x", "users", "/admin/users/x"),
        ("/%61dmin/users/x", "users", "/%61dmin/users/x"),
        ("/ADMIN/users/x", "", ""),
        (
            "/admin;jsessionid=1/users/x",
            "users",
            "/admin;jsessionid=1/users/x",
        ),
        ("//admin/users//x", "users", "/admin/users/x"),
        ("/admin/a%20b%2Fc;v=1/x", "a b/c", "/admin/a%20b%2Fc;v=1/x"),
        ("/admin%2Fusers/x", "", ""),
    ] {
        let (route, path) = routed(target).await;
        if name.is_empty() {
            assert_eq!(route, "catch-all", "{target}");
        } else {
            assert_eq!(route, format!("admin {name}"), "{target}");
            assert_eq!(
                path, forwarded,
                "{target}: the path goes on as received, merged"
            );
        }
    }
    let hits = up.hits();

    let (status, body) = exchange(&gw, &get("/admin/users/%zz", "host: gw\r\n")).await;
    assert_eq!(status, 400, "{body}");
    assert!(message(&body).contains("two hexadecimal digits"), "{body}");
    // Refused rather than forwarded without the route's header.
    let (status, body) = exchange(&gw, &get("/admin/%0D%0A/x", "host: gw\r\n")).await;
    assert_eq!(status, 400, "{body}");
    assert!(message(&body).contains("x-route"), "{body}");
    assert_eq!(up.hits(), hits, "neither was forwarded");
}

#[tokio::test]
async fn host_must_be_one_valid_host_and_the_request_lines_authority_wins() {
    let up = Upstream::start().await;
    let gw = TestGateway::start(&routes(&format!(
        "        - id: a\n          uri: http://{0}\n          predicates: ['Host=a.example']\n          filters: ['AddRequestHeader=X-Route, a']\n        - id: any\n          uri: http://{0}\n          predicates: ['Path=/**']\n          filters: ['AddRequestHeader=X-Route, any']\n",
        up.addr
    )))
    .await;
    for (host_lines, why) in [
        ("", "an HTTP/1.1 request needs a Host header"),
        ("host: a\r\nhost: b\r\n", "more than one Host header"),
        ("host: user@a.example\r\n", "not a valid host[:port]"),
        ("host: a b\r\n", "not a valid host[:port]"),
        ("host: a.example:8o\r\n", "not a valid host[:port]"),
    ] {
        let (status, body) = exchange(&gw, &get("/x", host_lines)).await;
        assert_eq!(status, 400, "{host_lines:?}: {body}");
        assert!(message(&body).contains(why), "{host_lines:?}: {body}");
    }
    assert_eq!(up.hits(), 0);

    // HTTP/1.0 may leave it out.
    let (status, _) = exchange(&gw, b"GET /x HTTP/1.0\r\n\r\n").await;
    assert_eq!(status, 200);

    // An absolute request target names the host; `Host` is ignored, by
    // the `Host` predicate and the forwarding headers alike.
    let (status, body) = exchange(
        &gw,
        &get("http://a.example/x?q=1", "host: other.example\r\n"),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let echo: Value = serde_json::from_str(&body).expect("echo");
    assert_eq!(echo["path"], "/x");
    assert_eq!(seen(&echo, "x-route"), Some("a"), "{echo}");
    assert_eq!(seen(&echo, "x-forwarded-host"), Some("a.example"));

    let (status, body) = exchange(
        &gw,
        &get("http://user@b.example:81/x", "host: a.example\r\n"),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let echo: Value = serde_json::from_str(&body).expect("echo");
    assert_eq!(seen(&echo, "x-route"), Some("any"), "{echo}");
    assert_eq!(seen(&echo, "x-forwarded-host"), Some("b.example:81"));
    assert_eq!(
        seen(&echo, "forwarded").map(|f| f.contains("host=\"b.example:81\"")),
        Some(true),
        "{echo}"
    );
}

#[tokio::test]
async fn connect_is_not_implemented_even_on_a_catch_all_route() {
    let up = Upstream::start().await;
    let gw = TestGateway::start(&routes(&format!(
        "        - id: any\n          uri: http://{}\n          predicates: ['Path=/**']\n",
        up.addr
    )))
    .await;
    let (status, body) = exchange(
        &gw,
        b"CONNECT example.com:443 HTTP/1.1\r\nhost: example.com:443\r\nconnection: close\r\n\r\n",
    )
    .await;
    assert_eq!(status, 501, "{body}");
    let json: Value = serde_json::from_str(&body).unwrap_or_else(|e| panic!("{e}: {body:?}"));
    assert_eq!(json["error"], "Not Implemented", "{json}");
    assert!(
        json["message"]
            .as_str()
            .is_some_and(|m| m.contains("not a forward proxy")),
        "{json}"
    );
    assert_eq!(up.hits(), 0);
}

#[tokio::test]
async fn a_request_body_with_broken_framing_is_the_clients_fault() {
    let up = Upstream::start().await;
    let gw = TestGateway::start(&routes(&format!(
        "        - id: up\n          uri: http://{}\n          predicates: ['Path=/**']\n",
        up.addr
    )))
    .await;
    let (status, body) = exchange(
        &gw,
        b"POST /x HTTP/1.1\r\nhost: gw\r\ntransfer-encoding: chunked\r\n\r\nzz\r\nabc\r\n0\r\n\r\n",
    )
    .await;
    assert_eq!(status, 400, "{body}");
    assert!(
        message(&body).contains("request body could not be read"),
        "{body}"
    );

    let (status, body) = exchange(
        &gw,
        b"POST /x HTTP/1.1\r\nhost: gw\r\ntransfer-encoding: chunked\r\nconnection: close\r\n\r\n3\r\nabc\r\n0\r\n\r\n",
    )
    .await;
    assert_eq!(status, 200, "a well-framed body still goes through: {body}");
    let echo: Value = serde_json::from_str(&body).expect("echo");
    assert_eq!(echo["body"], "abc");
}

#[tokio::test]
async fn broken_request_bodies_do_not_open_the_routes_breaker() {
    let up = Upstream::start().await;
    let gw = TestGateway::start(&format!(
        "spring.cloud.gateway:\n  routes:\n\
         \x20   - id: guarded\n      uri: http://{0}\n      predicates: [Path=/g/**]\n      filters:\n        - StripPrefix=1\n        - name: CircuitBreaker\n          args: {{name: cb, fallbackUri: 'forward:/fallback'}}\n\
         \x20   - id: fallback\n      uri: http://{0}\n      predicates: [Path=/fallback]\n      filters: [SetPath=/from-fallback]\n\
         resilience4j.circuitbreaker.instances.cb: {{slidingWindowSize: 4, minimumNumberOfCalls: 4, failureRateThreshold: 50, waitDurationInOpenState: 60s}}\n",
        up.addr
    ))
    .await;
    for _ in 0..6 {
        let (status, body) = exchange(
            &gw,
            b"POST /g/x HTTP/1.1\r\nhost: gw\r\ntransfer-encoding: chunked\r\n\r\n3\r\nabc\r\nzz\r\n",
        )
        .await;
        assert_eq!(status, 400, "the client's fault, not the fallback: {body}");
    }
    let (status, body) = exchange(&gw, &get("/g/ok", "host: gw\r\n")).await;
    assert_eq!(status, 200, "{body}");
    let echo: Value = serde_json::from_str(&body).expect("echo");
    assert_eq!(echo["path"], "/ok", "the breaker is still closed: {echo}");
}
