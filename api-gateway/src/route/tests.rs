use cloud_runtime::clock::TokioClock;
use http::{HeaderMap, Method};

use super::*;
use crate::config::parse_routes;

fn settings() -> CompileSettings {
    CompileSettings {
        filters: FilterSettings {
            original_status_header: None,
            resilience:
                circuit_breaker::Registry::new(circuit_breaker::ResilienceConfig::default())
                    .expect("defaults"),
            clock: Arc::new(TokioClock::new()),
            redis: None,
            response_cache: Default::default(),
            rate_limiter: Default::default(),
            max_in_memory_size: crate::filter::DEFAULT_MAX_IN_MEMORY_SIZE,
            secure_headers: Default::default(),
        },
        connect_timeout: Duration::from_secs(30),
        response_timeout: Some(Duration::from_secs(60)),
        file: None,
        skip_invalid: false,
    }
}

fn table(yaml: &str) -> RouteTable {
    let value: Value = serde_yaml_ng::from_str(yaml).expect("test YAML");
    let defs = parse_routes(value.as_array().expect("list"), None, 0).expect("parses");
    RouteTable::compile(defs, &[], &settings()).expect("compiles")
}

fn find(t: &RouteTable, method: Method, path: &str, roll: f64) -> Option<String> {
    let headers = HeaderMap::new();
    let view = RequestView {
        method: &method,
        path,
        query: None,
        headers: &headers,
        remote: "127.0.0.1".parse().expect("ip"),
        now_millis: 0,
        weight_roll: roll,
    };
    t.find(&view).map(|(r, _)| r.id.clone())
}

#[test]
fn targets() {
    assert_eq!(
        parse_target("http://localhost").expect("valid"),
        Target::fixed(false, "localhost:80".parse().expect("authority")).expect("host")
    );
    assert_eq!(
        parse_target("https://example.org/ignored").expect("valid"),
        Target::fixed(true, "example.org:443".parse().expect("authority")).expect("host")
    );
    assert_eq!(
        parse_target("ws://127.0.0.1:9000").expect("valid"),
        Target::fixed(false, "127.0.0.1:9000".parse().expect("authority")).expect("host")
    );
    assert_eq!(
        parse_target("lb://USERS").expect("valid"),
        Target::Service("USERS".to_owned())
    );
    assert_eq!(
        parse_target("lb:ws://chat").expect("valid"),
        Target::Service("chat".to_owned())
    );
    assert_eq!(
        parse_target("forward:/fallback").expect("valid"),
        Target::Forward("/fallback".to_owned())
    );
    for bad in ["lb://", "forward:x", "ftp://a", "no scheme", "http://"] {
        assert!(parse_target(bad).is_err(), "{bad}");
    }
}

#[test]
fn first_matching_route_by_order_then_declaration() {
    let t = table(
        "[{id: catch-all, uri: 'http://a', order: 10, predicates: ['Path=/**']},
          {id: users-get, uri: 'http://a', predicates: ['Path=/users/**', 'Method=GET']},
          {id: users-any, uri: 'http://a', predicates: ['Path=/users/**']}]",
    );
    assert_eq!(
        find(&t, Method::GET, "/users/1", 0.0).as_deref(),
        Some("users-get")
    );
    assert_eq!(
        find(&t, Method::POST, "/users/1", 0.0).as_deref(),
        Some("users-any")
    );
    assert_eq!(
        find(&t, Method::GET, "/other", 0.0).as_deref(),
        Some("catch-all")
    );
}

#[test]
fn weight_routes_share_a_group() {
    let t = table(
        "[{id: v1, uri: 'http://a', predicates: ['Path=/w', 'Weight=group1, 8']},
          {id: v2, uri: 'http://a', predicates: ['Path=/w', 'Weight=group1, 2']}]",
    );
    assert_eq!(find(&t, Method::GET, "/w", 0.1).as_deref(), Some("v1"));
    assert_eq!(find(&t, Method::GET, "/w", 0.9).as_deref(), Some("v2"));
}

#[test]
fn metadata_timeouts() {
    let t = table(
        "[{id: a, uri: 'http://a', metadata: {connect-timeout: 200, response-timeout: 1500}},
          {id: b, uri: 'http://a', metadata: {response-timeout: -1}},
          {id: c, uri: 'http://a'}]",
    );
    let a = t.get("a").expect("route");
    assert_eq!(
        (a.connect_timeout, a.response_timeout),
        (
            Duration::from_millis(200),
            Some(Duration::from_millis(1500))
        )
    );
    assert_eq!(t.get("b").expect("route").response_timeout, None);
    assert_eq!(
        t.get("c").expect("route").response_timeout,
        Some(Duration::from_secs(60))
    );
    let value: Value =
        serde_yaml_ng::from_str("[{id: d, uri: 'http://a', metadata: {connect-timeout: soon}}]")
            .expect("yaml");
    let defs = parse_routes(value.as_array().expect("list"), None, 0).expect("parses");
    assert!(RouteTable::compile(defs, &[], &settings()).is_err());
}
