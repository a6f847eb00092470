use cloud_runtime::clock::TokioClock;

use super::*;

fn settings() -> FilterSettings {
    FilterSettings {
        original_status_header: Some(HeaderName::from_static("x-original-status")),
        resilience: circuit_breaker::Registry::new(circuit_breaker::ResilienceConfig::default())
            .expect("defaults"),
        clock: Arc::new(TokioClock::new()),
        redis: None,
        response_cache: Default::default(),
        rate_limiter: Default::default(),
        max_in_memory_size: crate::filter::DEFAULT_MAX_IN_MEMORY_SIZE,
        secure_headers: Default::default(),
    }
}

fn filter(shortcut: &str) -> Filter {
    Filter::compile(&Definition::shortcut(shortcut), "r", &settings()).expect("compiles")
}

fn outbound(path: &str, query: Option<&str>) -> Outbound {
    Outbound {
        method: Method::GET,
        path: path.to_owned(),
        query: query.map(str::to_owned),
        headers: HeaderMap::new(),
        vars: vec![("segment".to_owned(), "seg".to_owned())],
        preserve_host: false,
        host: None,
        remote: "10.0.0.1".parse().expect("ip"),
        response_headers: Vec::new(),
        fallback: None,
        uri: None,
    }
}

fn run(shortcut: &str, out: &mut Outbound) -> Result<(), Box<Answer>> {
    filter(shortcut).apply_request(out)
}

/// The headers a `SecureHeaders` definition sets on an empty response,
/// with the gateway-wide `defaults`.
fn secure_headers_set(def: serde_json::Value, defaults: SecureHeaderDefaults) -> HeaderMap {
    let mut settings = settings();
    settings.secure_headers = defaults;
    let f = Filter::compile(
        &Definition::parse(&def, "filter").expect("parses"),
        "r",
        &settings,
    )
    .expect("compiles");
    let mut h = head();
    f.apply_response(&mut h, &CTX);
    h.headers
}

#[test]
fn secure_headers_take_the_global_choice_unless_the_route_gives_its_own_as_scg_does() {
    let index = |n: &str| secure_header_index(n).expect("a SecureHeaders header");
    let global = SecureHeaderDefaults::new(
        [
            (
                index("x-frame-options"),
                HeaderValue::from_static("SAMEORIGIN"),
            ),
            (
                index("permissions-policy"),
                HeaderValue::from_static("geolocation=(self)"),
            ),
        ],
        &[index("permissions-policy")],
        &[index("x-download-options")],
    );

    let h = secure_headers_set(serde_json::json!({"name": "SecureHeaders"}), global.clone());
    assert_eq!(h["x-frame-options"], "SAMEORIGIN", "the global value");
    assert_eq!(
        h["permissions-policy"], "geolocation=(self)",
        "enabled globally"
    );
    assert!(!h.contains_key("x-download-options"), "disabled globally");
    assert_eq!(h.len(), 8);

    // Any argument of its own: the route's lists alone, the global values.
    let h = secure_headers_set(
        serde_json::json!({"name": "SecureHeaders", "args": {"disable": "x-frame-options"}}),
        global.clone(),
    );
    assert!(!h.contains_key("x-frame-options"));
    assert!(
        !h.contains_key("permissions-policy"),
        "not enabled by the route"
    );
    assert_eq!(
        h["x-download-options"], "noopen",
        "the global disable no longer applies"
    );
    assert_eq!(h.len(), 7);

    let h = secure_headers_set(
        serde_json::json!({"name": "SecureHeaders", "args": {"enable": "Permissions-Policy", "permissions-policy": "camera=()"}}),
        global,
    );
    assert_eq!(h["permissions-policy"], "camera=()", "the route's policy");
    assert_eq!(h["x-frame-options"], "SAMEORIGIN");
    assert_eq!(h.len(), 9);

    let h = secure_headers_set(
        serde_json::json!({"name": "SecureHeaders", "args": {"enable": "permissions-policy"}}),
        SecureHeaderDefaults::default(),
    );
    assert!(
        h["permissions-policy"]
            .to_str()
            .is_ok_and(|v| v.starts_with("accelerometer=(), ")),
        "SCG's opt-in default"
    );
}

#[test]
fn path_filters() {
    let cases: &[(&str, &str, &str)] = &[
        ("StripPrefix=2", "/name/blue/red", "/red"),
        ("StripPrefix=1", "/name", "/"),
        ("StripPrefix=1", "/api/users/", "/users/"),
        ("PrefixPath=/mypath", "/hello", "/mypath/hello"),
        (
            "RewritePath=/red/?(?<segment>.*), /$\\{segment}",
            "/red/blue",
            "/blue",
        ),
        (
            "RewritePath=/red/?(?<segment>.*), /$\\{segment}",
            "/red",
            "/",
        ),
        ("SetPath=/{segment}", "/red/x", "/seg"),
    ];
    for (f, path, expected) in cases {
        let mut out = outbound(path, None);
        run(f, &mut out).expect("no answer");
        assert_eq!(out.path, *expected, "{f} on {path}");
    }
}

#[test]
fn request_header_filters() {
    let mut out = outbound("/", None);
    out.headers.insert("x-old", HeaderValue::from_static("v"));
    out.headers
        .insert("x-present", HeaderValue::from_static("kept"));
    out.headers.insert("x-gone", HeaderValue::from_static("1"));
    for f in [
        "AddRequestHeader=X-Request-Red, Blue-{segment}",
        "AddRequestHeadersIfNotPresent=X-Present:new,X-Absent:added",
        "SetRequestHeader=X-Old, replaced",
        "MapRequestHeader=X-Old, X-New",
        "RemoveRequestHeader=X-Gone",
        "PreserveHostHeader",
        "SetRequestHostHeader=example.org",
    ] {
        run(f, &mut out).expect("no answer");
    }
    let h = &out.headers;
    assert_eq!(h["x-request-red"], "Blue-seg");
    assert_eq!(h["x-present"], "kept");
    assert_eq!(h["x-absent"], "added");
    assert_eq!(h["x-old"], "replaced");
    assert_eq!(h["x-new"], "replaced");
    assert!(!h.contains_key("x-gone"));
    assert!(out.preserve_host);
    assert_eq!(out.host, Some(HeaderValue::from_static("example.org")));
}

#[test]
fn request_parameter_filters() {
    let mut out = outbound("/", Some("a=1&red=x&b=2"));
    run("AddRequestParameter=color, blue green", &mut out).expect("no answer");
    run("RemoveRequestParameter=red", &mut out).expect("no answer");
    assert_eq!(out.query.as_deref(), Some("a=1&b=2&color=blue%20green"));
    let mut out = outbound("/", None);
    run("AddRequestParameter=red, 1", &mut out).expect("no answer");
    run("RemoveRequestParameter=red", &mut out).expect("no answer");
    assert_eq!(out.query, None);
}

#[test]
fn parameter_filters_write_the_query_again_as_spring_parses_and_encodes_it() {
    let cases: &[(&str, &str, Option<&str>)] = &[
        // `+` is a space, escapes are decoded, then all is encoded again.
        (
            "RemoveRequestParameter=red",
            "re%64=1&blue=a%20b&c=1+2&d=%2B&e=|",
            Some("blue=a%20b&c=1%202&d=%2B&e=%7C"),
        ),
        // Values are grouped under their name, in the order names appear.
        (
            "RemoveRequestParameter=x",
            "a=1&b=2&a=3",
            Some("a=1&a=3&b=2"),
        ),
        // No `=`: the name alone; `=` and nothing: an empty value.
        (
            "RemoveRequestParameter=x",
            "flag&e=&=v&a=b=c",
            Some("flag&e=&v&a=b%3Dc"),
        ),
        // A part with a malformed escape is kept as written, then encoded.
        ("RemoveRequestParameter=x", "a=%zz", Some("a=%25zz")),
        ("RemoveRequestParameter=red", "red=1&red=2", None),
        (
            "RewriteRequestParameter=c,new",
            "a=1+1&c=old",
            Some("a=1%201&c=new"),
        ),
        ("RewriteRequestParameter=c,new", "a=1+1", Some("a=1%201")),
    ];
    for (f, query, expected) in cases {
        let mut out = outbound("/", Some(query));
        run(f, &mut out).expect("no answer");
        assert_eq!(out.query.as_deref(), *expected, "{f} on {query}");
    }
}

#[test]
fn path_captures_are_encoded_again_in_set_path_and_written_as_latin_1_in_headers() {
    let with = |value: &str| {
        let mut out = outbound("/x", None);
        out.vars = vec![("segment".to_owned(), value.to_owned())];
        out
    };
    for (value, path) in [
        ("a b", "/a%20b"),
        ("a/b;c=d", "/a/b;c=d"),
        ("100%?#", "/100%25%3F%23"),
        ("café", "/caf%C3%A9"),
    ] {
        let mut out = with(value);
        run("SetPath=/{segment}", &mut out).expect("no answer");
        assert_eq!(out.path, path, "SetPath with {value:?}");
    }

    let mut out = with("café \u{2603}");
    run("SetRequestHeader=X-Seg, {segment}", &mut out).expect("no answer");
    assert_eq!(out.headers["x-seg"].as_bytes(), b"caf\xE9 ?");

    // A decoded control character cannot go into a header: the request is
    // refused, so that a client's own `X-Seg` cannot pass in its place.
    for f in [
        "SetRequestHeader=X-Seg, {segment}",
        "AddRequestHeader=X-Seg, {segment}",
        "AddRequestHeadersIfNotPresent=X-Other:{segment}",
        "SetRequestHostHeader={segment}.example.org",
    ] {
        let mut out = with("a\r\nX-Evil: 1");
        out.headers
            .insert("x-seg", HeaderValue::from_static("client's own"));
        let answer = run(f, &mut out).expect_err("refused");
        assert_eq!(answer.status(), StatusCode::BAD_REQUEST, "{f}");
    }
}

#[test]
fn answering_filters() {
    let mut out = outbound("/", Some("q=1"));
    let answer = run("RedirectTo=302, https://acme.org, true", &mut out).expect_err("redirects");
    assert_eq!(answer.status(), StatusCode::FOUND);
    assert_eq!(answer.headers()["location"], "https://acme.org?q=1");
    out.headers
        .insert("content-length", HeaderValue::from_static("6000000"));
    let answer = run("RequestSize=5MB", &mut out).expect_err("too large");
    assert_eq!(answer.status(), StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(
        answer.headers()["errormessage"],
        "Request size is larger than permissible limit. Request size is 6.0 MB where permissible limit is 5.2 MB",
        "SCG's wording and units"
    );
    assert!(run("RequestSize=6MB", &mut out).is_ok());
    out.headers
        .insert("x-big", HeaderValue::from_static("0123456789"));
    let answer = run("RequestHeaderSize=10B", &mut out).expect_err("header too large");
    assert_eq!(answer.status(), StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE);
    assert!(answer.headers().contains_key("errormessage"));
    assert!(run("RequestHeaderSize=1KB", &mut out).is_ok());
}

#[test]
fn readable_byte_counts_as_scg_writes_them() {
    assert_eq!(readable_byte_count(0), "0 B");
    assert_eq!(readable_byte_count(999), "999 B");
    assert_eq!(readable_byte_count(1000), "1.0 kB");
    assert_eq!(readable_byte_count(5 * 1024 * 1024), "5.2 MB");
    assert_eq!(readable_byte_count(u64::MAX), "18.4 EB");
}

#[test]
fn request_header_size_counts_a_name_once_and_names_every_large_header_as_scg() {
    let mut out = outbound("/x", None);
    for v in ["aaaa", "bbbb"] {
        out.headers.append("x-rep", HeaderValue::from_static(v));
    }
    out.headers
        .insert("x-long", HeaderValue::from_static("0123456789"));
    // x-rep: 5 + 4 + 4 = 13 bytes (SCG counts the name once).
    assert!(run("RequestHeaderSize=16B", &mut out).is_ok());
    let answer = run("RequestHeaderSize=12B", &mut out).expect_err("two headers too large");
    assert_eq!(
        answer.headers()["errormessage"],
        "Request Header/s size is larger than permissible limit (12B). \
         Request Header/s size for 'x-rep' is 13B. \
         Request Header/s size for 'x-long' is 16B."
    );
}

fn respond(shortcut: &str, head: &mut http::response::Parts, ctx: &ResponseContext<'_>) {
    let f = filter(shortcut);
    assert!(f.is_response_filter(), "{shortcut}");
    f.apply_response(head, ctx);
}

fn head() -> http::response::Parts {
    http::Response::new(()).into_parts().0
}

const CTX: ResponseContext<'static> = ResponseContext {
    client_host: Some("gw.example"),
    client_path: "/api/x",
    upstream_authority: Some("backend:8080"),
    vars: &[],
};

#[test]
fn response_header_filters() {
    let mut h = head();
    h.headers
        .append("access-control-allow-origin", HeaderValue::from_static("a"));
    h.headers
        .append("access-control-allow-origin", HeaderValue::from_static("b"));
    h.headers.append("x-dup", HeaderValue::from_static("1"));
    h.headers.append("x-dup", HeaderValue::from_static("2"));
    h.headers.append("x-dup", HeaderValue::from_static("1"));
    h.headers.insert("x-secret", HeaderValue::from_static("s"));
    h.headers.insert(
        "x-response-red",
        HeaderValue::from_static("password=abc&user=x"),
    );
    respond(
        "DedupeResponseHeader=Access-Control-Allow-Origin",
        &mut h,
        &CTX,
    );
    respond("DedupeResponseHeader=X-Dup, RETAIN_UNIQUE", &mut h, &CTX);
    respond("RemoveResponseHeader=X-Secret", &mut h, &CTX);
    respond(
        "RewriteResponseHeader=X-Response-Red, password=[^&]+, password=***",
        &mut h,
        &CTX,
    );
    respond("AddResponseHeader=X-Added, 1", &mut h, &CTX);
    respond("SetResponseHeader=X-Added, 2", &mut h, &CTX);
    let all = |n: &str| {
        h.headers
            .get_all(n)
            .iter()
            .map(|v| v.to_str().expect("ascii").to_owned())
            .collect::<Vec<_>>()
    };
    assert_eq!(all("access-control-allow-origin"), ["a"]);
    assert_eq!(all("x-dup"), ["1", "2"]);
    assert!(all("x-secret").is_empty());
    assert_eq!(all("x-response-red"), ["password=***&user=x"]);
    assert_eq!(all("x-added"), ["2"]);
}

#[test]
fn secure_headers_set_status_and_location() {
    let mut h = head();
    h.headers
        .insert("x-frame-options", HeaderValue::from_static("SAMEORIGIN"));
    respond("SecureHeaders", &mut h, &CTX);
    assert_eq!(
        h.headers["x-frame-options"], "SAMEORIGIN",
        "an upstream's own value stays"
    );
    assert_eq!(h.headers["x-content-type-options"], "nosniff");
    assert_eq!(h.headers["strict-transport-security"], "max-age=631138519");
    let f = Filter::compile(
        &Definition::parse(
            &serde_json::json!({"name": "SecureHeaders", "args": {"disable": "x-xss-protection"}}),
            "filter",
        )
        .expect("parses"),
        "r",
        &settings(),
    )
    .expect("compiles");
    let mut h2 = head();
    f.apply_response(&mut h2, &CTX);
    assert!(!h2.headers.contains_key("x-xss-protection"));
    respond("SetStatus=UNAUTHORIZED", &mut h, &CTX);
    assert_eq!(h.status, StatusCode::UNAUTHORIZED);
    assert_eq!(h.headers["x-original-status"], "200");
    h.headers.insert(
        "location",
        HeaderValue::from_static("http://backend:8080/v2/some/object/id"),
    );
    respond(
        "RewriteLocationResponseHeader=AS_IN_REQUEST, Location, ,",
        &mut h,
        &CTX,
    );
    assert_eq!(h.headers["location"], "http://gw.example/some/object/id");
    h.headers.insert(
        "location",
        HeaderValue::from_static("http://backend:8080/v2/x"),
    );
    respond("RewriteLocationResponseHeader=NEVER_STRIP", &mut h, &CTX);
    assert_eq!(h.headers["location"], "http://gw.example/v2/x");
    h.headers.insert(
        "location",
        HeaderValue::from_static("http://elsewhere/v1/x"),
    );
    respond("RewriteLocationResponseHeader=ALWAYS_STRIP", &mut h, &CTX);
    assert_eq!(h.headers["location"], "http://elsewhere/x");
}

#[test]
fn fallback_headers_carry_the_cause() {
    let mut out = outbound("/fallback", None);
    run("FallbackHeaders", &mut out).expect("no answer");
    assert!(
        !out.headers.contains_key("execution-exception-type"),
        "only on a fallback"
    );
    out.fallback = Some(FallbackCause {
        exception_type: "java.util.concurrent.TimeoutException".to_owned(),
        message: "late".to_owned(),
    });
    run("FallbackHeaders", &mut out).expect("no answer");
    assert_eq!(
        out.headers["execution-exception-type"],
        "java.util.concurrent.TimeoutException"
    );
    assert_eq!(out.headers["root-cause-exception-message"], "late");
}

#[test]
fn helpers() {
    assert_eq!(parse_status("BAD_GATEWAY"), Some(StatusCode::BAD_GATEWAY));
    assert_eq!(
        parse_status("service_unavailable"),
        Some(StatusCode::SERVICE_UNAVAILABLE)
    );
    assert_eq!(parse_status("404"), Some(StatusCode::NOT_FOUND));
    assert_eq!(parse_status("NOPE"), None);
    assert_eq!(
        expand("/{a}/{b}/{c", &[("a".to_owned(), "1".to_owned())]),
        "/1/{b}/{c"
    );
    for (path, parts, stripped) in [
        ("/a/b", 5, "/"),
        ("/a/b", 1, "/b"),
        ("/a/b/", 1, "/b/"),
        ("/a/", 1, "/"),
        ("/a//b/c", 1, "/b/c"),
        ("/a/b", 0, "/a/b"),
        ("/", 1, "/"),
    ] {
        assert_eq!(strip_prefix(path, parts), stripped, "{path} less {parts}");
    }
}

proptest::proptest! {
    /// The one-pass `strip_prefix` against its definition: the non-empty
    /// segments after the first `parts`, each after a `/`; `/` alone when
    /// none is left, and a trailing `/` kept.
    #[test]
    fn strip_prefix_keeps_the_segments_after_the_first_parts(
        path in "(/|/{1,3}[a-zé%;.]{0,4}){0,6}/?",
        parts in 0usize..5,
    ) {
        let mut want: String = path
            .split('/')
            .filter(|s| !s.is_empty())
            .skip(parts)
            .flat_map(|s| ["/", s])
            .collect();
        if want.is_empty() || path.ends_with('/') {
            want.push('/');
        }
        proptest::prop_assert_eq!(strip_prefix(&path, parts), want);
    }
}

#[test]
fn bad_arguments_are_refused() {
    for bad in [
        "StripPrefix=x",
        "PrefixPath=nope",
        "SetPath=nope",
        "RedirectTo=200, https://a",
        "RedirectTo=302",
        "SetStatus=NOT_A_STATUS",
        "RequestSize=5 parsecs",
        "DedupeResponseHeader=X, KEEP_ALL",
        "RewriteLocationResponseHeader=SOMETIMES",
        "SecureHeaders=x-made-up",
        "AddRequestHeadersIfNotPresent=novalue",
        "AddRequestHeader=Bad Name, v",
        "CircuitBreaker=cb, http://elsewhere",
        "RequestRateLimiter",
        "Unknown=1",
    ] {
        assert!(
            Filter::compile(&Definition::shortcut(bad), "r", &settings()).is_err(),
            "{bad}"
        );
    }
}

#[test]
fn every_listed_filter_name_is_known_and_no_other() {
    let unknown = |name: &str| match Filter::compile(&Definition::shortcut(name), "r", &settings())
    {
        Ok(_) => false,
        Err(e) => e.to_string().contains("unknown filter"),
    };
    for name in FILTER_NAMES {
        assert!(!unknown(name), "{name} is listed but not compiled");
    }
    assert!(unknown("ModifyRequestBody"));
}

#[test]
fn rewrite_request_parameter_replaces_every_value_with_one_as_scg() {
    let mut out = outbound("/", Some("campaign=old&a=1&campaign=older&b=2"));
    run("RewriteRequestParameter=campaign,fall 2023", &mut out).expect("no answer");
    assert_eq!(out.query.as_deref(), Some("a=1&b=2&campaign=fall%202023"));
    let mut out = outbound("/", Some("a=1&camp%61ign"));
    run("RewriteRequestParameter=campaign,new", &mut out).expect("no answer");
    assert_eq!(
        out.query.as_deref(),
        Some("a=1&campaign=new"),
        "names compare decoded"
    );
    for query in [None, Some("a=1&campaigns=2")] {
        let mut out = outbound("/", query);
        run("RewriteRequestParameter=campaign,new", &mut out).expect("no answer");
        assert_eq!(out.query.as_deref(), query, "absent: unchanged");
    }
}

#[test]
fn set_request_uri_sends_the_request_to_its_template() {
    let mut out = outbound("/red/x", Some("q=1"));
    run(
        "SetRequestUri=http://{segment}.example.org:8080/p?z=1",
        &mut out,
    )
    .expect("no answer");
    let uri = out.uri.expect("a destination");
    assert_eq!(
        uri.target,
        crate::target::Target::fixed(
            false,
            http::uri::Authority::from_static("seg.example.org:8080")
        )
        .expect("host")
    );
    assert_eq!(uri.path_and_query, "/p?z=1");
    let mut out = outbound("/", None);
    run("SetRequestUri=lb://{segment}", &mut out).expect("no answer");
    assert_eq!(
        out.uri.expect("a destination").target,
        crate::target::Target::Service("seg".to_owned())
    );
    // A capture that makes the URI invalid leaves the route's uri.
    let mut out = outbound("/", None);
    out.vars = vec![("segment".to_owned(), "a b".to_owned())];
    run("SetRequestUri=http://{segment}.example.org", &mut out).expect("no answer");
    assert_eq!(out.uri, None);
}

#[test]
fn set_request_uri_templates_are_checked_at_start() {
    for bad in [
        "SetRequestUri=/relative/{segment}",
        "SetRequestUri=ftp://example.org",
        "SetRequestUri=forward:/x",
        "SetRequestUri",
    ] {
        let err =
            Filter::compile(&Definition::shortcut(bad), "r", &settings()).expect_err("refused");
        assert!(err.to_string().contains("SetRequestUri"), "{bad}: {err}");
    }
}

#[test]
fn request_header_to_request_uri_follows_a_valid_header_only() {
    let mut out = outbound("/x", None);
    out.headers.insert(
        "x-cf-forwarded-url",
        HeaderValue::from_static("https://other.example.org/path?a=b"),
    );
    run("RequestHeaderToRequestUri=X-CF-Forwarded-Url", &mut out).expect("no answer");
    let uri = out.uri.expect("a destination");
    assert_eq!(
        uri.target,
        crate::target::Target::fixed(
            true,
            http::uri::Authority::from_static("other.example.org:443")
        )
        .expect("host")
    );
    assert_eq!(uri.path_and_query, "/path?a=b");
    for value in [None, Some("not a uri"), Some("/relative")] {
        let mut out = outbound("/x", None);
        if let Some(v) = value {
            out.headers
                .insert("x-cf-forwarded-url", HeaderValue::from_static(v));
        }
        run("RequestHeaderToRequestUri=X-CF-Forwarded-Url", &mut out).expect("no answer");
        assert_eq!(out.uri, None, "{value:?}");
    }
}

#[test]
fn remove_json_attributes_takes_a_list_and_a_tail_flag() {
    let f = filter("RemoveJsonAttributesResponseBody=id,secret,true");
    let Filter::RemoveJsonAttributesResponseBody(j) = f else {
        panic!("compiled as {f:?}");
    };
    assert_eq!(
        j,
        JsonAttributes::new(
            vec!["id".into(), "secret".into()],
            true,
            DEFAULT_MAX_IN_MEMORY_SIZE
        )
    );
    let err = Filter::compile(
        &Definition::shortcut("RemoveJsonAttributesResponseBody"),
        "r",
        &settings(),
    )
    .expect_err("no names");
    assert!(err.to_string().contains("attribute name"), "{err}");
}
