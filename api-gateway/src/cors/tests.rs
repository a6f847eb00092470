use proptest::prelude::*;
use serde_json::json;

use super::*;

fn config(v: Value) -> CorsConfig {
    CorsConfig::from_value(&v).expect("valid CORS configuration")
}

fn request(method: Method, pairs: &[(&str, &str)]) -> (Method, HeaderMap) {
    let mut h = HeaderMap::new();
    h.insert(header::HOST, HeaderValue::from_static("gw.example:8080"));
    for (n, v) in pairs {
        h.append(
            HeaderName::from_bytes(n.as_bytes()).expect("name"),
            HeaderValue::from_str(v).expect("value"),
        );
    }
    (method, h)
}

fn run(c: &CorsConfig, method: Method, pairs: &[(&str, &str)]) -> Outcome {
    let (m, h) = request(method, pairs);
    process(Some(c), &m, &h, false)
}

fn answer(o: Outcome) -> (StatusCode, HeaderMap) {
    match o {
        Outcome::Answer(s, h) => (s, h),
        other => panic!("expected an answer, got {other:?}"),
    }
}

fn proceed(o: Outcome) -> HeaderMap {
    match o {
        Outcome::Proceed(h) => h,
        other => panic!("expected to proceed, got {other:?}"),
    }
}

fn spa() -> CorsConfig {
    config(json!({
        "allowed-origins": "https://app.example",
        "allowedMethods": ["GET", "POST"],
        "allowed-headers": ["Content-Type", "X-Trace"],
        "exposed-headers": "X-Total, X-Page",
        "allow-credentials": true,
        "max-age": 1800,
    }))
}

#[test]
fn an_allowed_preflight_is_answered_with_every_access_control_header() {
    let (status, h) = answer(run(
        &spa(),
        Method::OPTIONS,
        &[
            ("origin", "https://app.example"),
            ("access-control-request-method", "POST"),
            ("access-control-request-headers", "content-type, x-trace"),
        ],
    ));
    assert_eq!(status, StatusCode::OK);
    assert_eq!(h["access-control-allow-origin"], "https://app.example");
    assert_eq!(h["access-control-allow-methods"], "GET,POST");
    assert_eq!(h["access-control-allow-headers"], "content-type, x-trace");
    assert_eq!(h["access-control-max-age"], "1800");
    assert_eq!(h["access-control-allow-credentials"], "true");
    assert_eq!(h["access-control-expose-headers"], "X-Total, X-Page");
    let vary: Vec<_> = h.get_all(header::VARY).iter().collect();
    assert_eq!(vary.len(), 3);
}

#[test]
fn a_preflight_from_another_origin_or_for_another_method_or_header_is_forbidden() {
    let cases: [&[(&str, &str)]; 3] = [
        &[
            ("origin", "https://evil.example"),
            ("access-control-request-method", "GET"),
        ],
        &[
            ("origin", "https://app.example"),
            ("access-control-request-method", "DELETE"),
        ],
        &[
            ("origin", "https://app.example"),
            ("access-control-request-method", "GET"),
            ("access-control-request-headers", "x-secret"),
        ],
    ];
    for pairs in cases {
        let (status, h) = answer(run(&spa(), Method::OPTIONS, pairs));
        assert_eq!(status, StatusCode::FORBIDDEN, "{pairs:?}");
        assert!(!h.contains_key("access-control-allow-origin"));
    }
}

#[test]
fn an_actual_request_gets_origin_credentials_exposed_and_vary() {
    let h = proceed(run(
        &spa(),
        Method::GET,
        &[("origin", "https://app.example")],
    ));
    assert_eq!(h["access-control-allow-origin"], "https://app.example");
    assert_eq!(h["access-control-allow-credentials"], "true");
    assert_eq!(h["access-control-expose-headers"], "X-Total, X-Page");
    assert!(!h.contains_key("access-control-allow-methods"));
    assert!(!h.contains_key("access-control-max-age"));
    let (status, _) = answer(run(
        &spa(),
        Method::GET,
        &[("origin", "https://evil.example")],
    ));
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, _) = answer(run(
        &spa(),
        Method::DELETE,
        &[("origin", "https://app.example")],
    ));
    assert_eq!(status, StatusCode::FORBIDDEN, "the method is checked too");
}

#[test]
fn same_origin_and_origin_less_requests_only_get_vary() {
    for pairs in [&[][..], &[("origin", "http://gw.example:8080")][..]] {
        let h = proceed(run(&spa(), Method::DELETE, pairs));
        assert!(!h.contains_key("access-control-allow-origin"));
        assert_eq!(h.get_all(header::VARY).iter().count(), 3);
    }
}

#[test]
fn without_a_configuration_a_request_goes_on_with_vary_only() {
    // A preflight too: the upstream may answer CORS itself.
    let (m, h) = request(
        Method::OPTIONS,
        &[
            ("origin", "https://a.example"),
            ("access-control-request-method", "GET"),
        ],
    );
    let Outcome::Proceed(added) = process(None, &m, &h, false) else {
        panic!("goes on");
    };
    let vary: Vec<_> = added.get_all(header::VARY).iter().collect();
    assert_eq!(
        vary,
        [
            "Origin",
            "Access-Control-Request-Method",
            "Access-Control-Request-Headers"
        ]
    );
    assert_eq!(added.len(), 3, "{added:?}");
}

#[test]
fn defaults_are_springs_get_and_head_and_no_headers() {
    let c = config(json!({"allowed-origins": "*"}));
    assert_eq!(
        c.check_method(&Method::HEAD),
        Some(vec!["GET".to_owned(), "HEAD".to_owned()])
    );
    assert_eq!(c.check_method(&Method::POST), None);
    assert_eq!(c.check_headers(&[]), Some(vec![]));
    assert_eq!(c.check_headers(&["x-a"]), None);
    assert_eq!(c.check_origin("https://any.example"), Some("*".to_owned()));
    let any =
        config(json!({"allowed-origins": "*", "allowed-methods": "*", "allowed-headers": "*"}));
    assert_eq!(
        any.check_method(&Method::PATCH),
        Some(vec!["PATCH".to_owned()])
    );
    assert_eq!(
        any.check_headers(&["X-A", " x-b "]),
        Some(vec!["X-A".to_owned(), "x-b".to_owned()])
    );
    let some = config(json!({"allowed-origins": "*", "allowed-headers": "x-a"}));
    assert_eq!(
        some.check_headers(&["x-a", "x-b"]),
        Some(vec!["x-a".to_owned()]),
        "the allowed subset"
    );
}

#[test]
fn origins_compare_without_case_or_trailing_slash_and_patterns_match_hosts_and_ports() {
    let c = config(json!({
        "allowed-origins": ["https://App.Example/"],
        "allowed-origin-patterns": ["https://*.corp.example", "http://localhost:[*]", "http://dev.example:[8080,8081]"],
    }));
    assert_eq!(
        c.check_origin("https://app.example"),
        Some("https://app.example".to_owned())
    );
    assert!(c.check_origin("https://a.corp.example").is_some());
    assert!(c.check_origin("https://a.b.corp.example").is_some());
    assert!(c.check_origin("https://corp.example.evil").is_none());
    assert!(c.check_origin("http://localhost").is_some());
    assert!(c.check_origin("http://localhost:3000").is_some());
    assert!(c.check_origin("http://dev.example:8081").is_some());
    assert!(c.check_origin("http://dev.example:9000").is_none());
    assert!(c.check_origin("").is_none());
    assert!(c.check_origin("null").is_none());
}

#[test]
fn bad_configurations_are_refused() {
    for bad in [
        json!({"allowed-origins": "*", "allow-credentials": true}),
        json!({"allowed-methods": ["GE T"]}),
        json!({"allowed-headers": ["bad header"]}),
        json!({"max-age": "soon"}),
        json!({"allow-credentials": "maybe"}),
        json!({"allowed-origin-patterns": ["http://x:[80,]"]}),
        json!({"allowed-origns": "*"}),
        json!("text"),
    ] {
        assert!(CorsConfig::from_value(&bad).is_err(), "{bad}");
    }
    assert_eq!(config(json!({"max-age": "30m"})).max_age, Some(1800));
}

#[test]
fn route_configurations_combine_into_the_global_one() {
    let global = json!({
        "[/api/**]": {"allowed-origins": "https://app.example", "allowed-methods": "GET", "max-age": 10},
        "[/v1": {"0/**]": {"allowed-origins": "https://v1.example"}},
    });
    let table = CorsTable::compile(
        [&global],
        [(
            "orders",
            &json!({"allowedOrigins": "https://admin.example", "allowedMethods": ["PUT"], "maxAge": 20}),
        )],
    )
    .expect("compiles");
    let c = table
        .config_for("/api/x", Some("orders"))
        .expect("both apply");
    assert_eq!(
        c.allowed_origins,
        ["https://app.example", "https://admin.example"]
    );
    assert_eq!(c.allowed_methods, ["GET", "PUT"]);
    assert_eq!(c.max_age, Some(20), "the route's wins");
    assert!(table.config_for("/other", None).is_none());
    assert!(table.config_for("/other", Some("orders")).is_some());
    assert!(table.config_for("/api/x", Some("else")).is_some());
    let dotted = table
        .config_for("/v1.0/x", None)
        .expect("a path with a dot, rejoined");
    assert_eq!(dotted.allowed_origins, ["https://v1.example"]);
    let bad = json!({"[/**]": {"max-age": "x"}});
    let e = CorsTable::compile([&bad], []).expect_err("bad");
    assert!(e.0.ends_with("cors-configurations.[/**]"), "{}", e.0);
}

#[test]
fn applied_headers_add_missing_vary_values_and_replace_the_upstreams_cors() {
    let mut response = HeaderMap::new();
    response.insert(
        header::VARY,
        HeaderValue::from_static("Accept-Encoding, Origin"),
    );
    response.insert(
        header::ACCESS_CONTROL_ALLOW_ORIGIN,
        HeaderValue::from_static("*"),
    );
    let cors = proceed(run(
        &spa(),
        Method::GET,
        &[("origin", "https://app.example")],
    ));
    apply(&mut response, &cors);
    assert_eq!(
        response["access-control-allow-origin"],
        "https://app.example"
    );
    let vary: Vec<_> = response.get_all(header::VARY).iter().collect();
    assert_eq!(vary.len(), 3, "Origin was already there: {vary:?}");
}

proptest! {
    #[test]
    fn any_origin_and_requested_headers_are_answered_without_panic(
        origin in "[ -~]{0,80}",
        asked in "[ -~]{0,80}",
        requested in "[ -~]{0,80}",
    ) {
        let mut h = HeaderMap::new();
        h.insert(header::HOST, HeaderValue::from_static("gw.example"));
        for (name, value) in [
            (header::ORIGIN, &origin),
            (header::ACCESS_CONTROL_REQUEST_METHOD, &asked),
            (header::ACCESS_CONTROL_REQUEST_HEADERS, &requested),
        ] {
            if let Ok(v) = HeaderValue::from_str(value) {
                h.insert(name, v);
            }
        }
        let outcome = process(Some(&spa()), &Method::OPTIONS, &h, false);
        if let Outcome::Answer(StatusCode::OK, headers) = outcome {
            // Only the configured origin is ever allowed.
            prop_assert_eq!(&headers["access-control-allow-origin"], "https://app.example");
        }
    }
}
