use http::HeaderValue;

use super::*;

/// A request for the predicates to look at.
struct Req {
    method: Method,
    path: &'static str,
    query: Option<&'static str>,
    headers: HeaderMap,
    remote: IpAddr,
    now: i64,
    roll: f64,
}

impl Req {
    fn get(path: &'static str) -> Req {
        Req {
            method: Method::GET,
            path,
            query: None,
            headers: HeaderMap::new(),
            remote: "127.0.0.1".parse().expect("ip"),
            now: 0,
            roll: 0.0,
        }
    }

    fn header(mut self, name: &'static str, value: &'static str) -> Req {
        self.headers.append(name, HeaderValue::from_static(value));
        self
    }

    fn view(&self) -> RequestView<'_> {
        RequestView {
            method: &self.method,
            path: self.path,
            query: self.query,
            headers: &self.headers,
            remote: self.remote,
            now_millis: self.now,
            weight_roll: self.roll,
        }
    }
}

fn predicate(shortcut: &str) -> Predicate {
    Predicate::compile(&Definition::shortcut(shortcut)).expect("compiles")
}

fn test(p: &Predicate, req: &Req) -> (bool, Vec<(String, String)>) {
    let mut vars = Vec::new();
    let ok = p.test(&req.view(), "r", &WeightGroups::default(), &mut vars);
    (ok, vars)
}

fn matches(shortcut: &str, req: &Req) -> bool {
    test(&predicate(shortcut), req).0
}

#[test]
fn path_patterns_follow_spring_path_pattern() {
    let cases: &[(&str, &str, bool)] = &[
        ("Path=/users/**", "/users", true),
        ("Path=/users/**", "/users/", true),
        ("Path=/users/**", "/users/1/orders", true),
        ("Path=/users/**", "/usersx", false),
        ("Path=/users/*", "/users/1", true),
        ("Path=/users/*", "/users/1/2", false),
        ("Path=/*.html", "/index.html", true),
        ("Path=/*.html", "/a/index.html", false),
        ("Path=/file?.txt", "/file1.txt", true),
        ("Path=/red/{segment},/blue/{segment}", "/blue/x", true),
        ("Path=/red/{segment}", "/red/x/", true),
        ("Path=/red/{segment},false", "/red/x/", false),
        ("Path=/red/{segment}, true", "/red/x/", true),
        ("Path=/red/{segment}", "/green/x", false),
        ("Path=/items/{id:[0-9]+}", "/items/12", true),
        ("Path=/items/{id:[0-9]+}", "/items/ab", false),
        ("Path=/", "/", true),
        ("Path=/files/{*rest}", "/files", true),
        ("Path=/users/{id}", "/users", false),
        ("Path=/users/**", "/user", false),
        ("Path=/svc1/**", "/svc10/x", false),
        ("Path=/", "/a", false),
        ("Path=/a.b", "/aXb", false),
    ];
    for (pattern, path, expected) in cases {
        assert_eq!(
            matches(pattern, &Req::get(path)),
            *expected,
            "{pattern} vs {path}"
        );
    }
}

#[test]
fn older_trailing_separator_flag_is_accepted() {
    let def = Definition::parse(
        &serde_json::json!({"name": "Path", "args": {"patterns": "/a", "matchOptionalTrailingSeparator": false}}),
        "predicate",
    )
    .expect("parses");
    let p = Predicate::compile(&def).expect("compiles");
    assert!(!test(&p, &Req::get("/a/")).0);
    assert!(test(&p, &Req::get("/a")).0);
}

#[test]
fn path_captures_become_variables() {
    let (ok, vars) = test(
        &predicate("Path=/users/{id}/orders/{order}"),
        &Req::get("/users/7/orders/9"),
    );
    assert!(ok);
    assert_eq!(
        vars,
        [
            ("id".to_owned(), "7".to_owned()),
            ("order".to_owned(), "9".to_owned())
        ]
    );
    let (ok, vars) = test(
        &predicate("Path=/files/{*rest}"),
        &Req::get("/files/a/b.txt"),
    );
    assert!(ok);
    assert_eq!(vars, [("rest".to_owned(), "/a/b.txt".to_owned())]);
}

#[test]
fn host_patterns_with_wildcards_and_captures_ignore_case_and_port() {
    let any = predicate("Host=**.somehost.org,**.anotherhost.org");
    assert!(test(&any, &Req::get("/").header("host", "www.somehost.org")).0);
    assert!(
        test(
            &any,
            &Req::get("/").header("host", "a.b.AnotherHost.org:8080")
        )
        .0
    );
    assert!(!test(&any, &Req::get("/").header("host", "www.otherhost.org")).0);
    assert!(!test(&any, &Req::get("/")).0, "no Host header");
    let (ok, vars) = test(
        &predicate("Host={sub}.myhost.org"),
        &Req::get("/").header("host", "beta.myhost.org"),
    );
    assert!(ok);
    assert_eq!(vars, [("sub".to_owned(), "beta".to_owned())]);
    assert!(!matches(
        "Host={sub}.myhost.org",
        &Req::get("/").header("host", "a.b.myhost.org")
    ));
}

#[test]
fn method_header_query_and_cookie() {
    assert!(matches("Method=GET,POST", &Req::get("/")));
    assert!(!matches("Method=POST", &Req::get("/")));
    assert!(matches(
        "Header=X-Request-Id, \\d+",
        &Req::get("/").header("x-request-id", "123")
    ));
    assert!(
        !matches(
            "Header=X-Request-Id, \\d+",
            &Req::get("/").header("x-request-id", "12a")
        ),
        "whole value must match"
    );
    assert!(matches(
        "Header=X-Request-Id",
        &Req::get("/").header("x-request-id", "anything")
    ));
    assert!(!matches("Header=X-Request-Id", &Req::get("/")));
    let mut q = Req::get("/");
    q.query = Some("a=1&red=gre%65n&green");
    assert!(matches("Query=green", &q));
    assert!(matches("Query=red, gree.", &q), "decoded value");
    assert!(!matches("Query=red, blue", &q));
    assert!(!matches("Query=blue", &q));
    let c = Req::get("/").header("cookie", "a=b; chocolate=chip");
    assert!(matches("Cookie=chocolate, ch.p", &c));
    assert!(!matches("Cookie=chocolate, mint", &c));
    assert!(
        Predicate::compile(&Definition::shortcut("Cookie=chocolate")).is_err(),
        "regexp required"
    );
}

#[test]
fn after_before_between_use_the_given_time() {
    let mut r = Req::get("/");
    r.now = 1_484_959_367_789; // 2017-01-20T17:42:47.789-07:00
    assert!(matches(
        "After=2017-01-20T17:42:47.788-07:00[America/Denver]",
        &r
    ));
    assert!(!matches(
        "After=2017-01-20T17:42:47.789-07:00[America/Denver]",
        &r
    ));
    assert!(matches("Before=2017-01-21T00:42:47.790Z", &r));
    assert!(matches(
        "Between=2017-01-20T17:42:47.000-07:00[America/Denver], 2017-01-21T17:42:47.789-07:00[America/Denver]",
        &r
    ));
    r.now += 86_400_000;
    assert!(!matches(
        "Between=2017-01-20T17:42:47.000-07:00[America/Denver], 2017-01-21T17:42:47.789-07:00[America/Denver]",
        &r
    ));
    assert!(
        Predicate::compile(&Definition::shortcut(
            "Between=2018-01-01T00:00:00Z, 2017-01-01T00:00:00Z"
        ))
        .is_err()
    );
}

#[test]
fn remote_addr_and_x_forwarded_remote_addr() {
    let mut r = Req::get("/");
    r.remote = "192.168.1.10".parse().expect("ip");
    assert!(matches("RemoteAddr=192.168.1.1/24", &r));
    assert!(!matches("RemoteAddr=10.0.0.0/8", &r));
    let r = r.header("x-forwarded-for", "6.6.6.6, 10.1.2.3");
    assert!(
        matches("XForwardedRemoteAddr=10.0.0.0/8", &r),
        "the last entry counts"
    );
    assert!(!matches("XForwardedRemoteAddr=6.6.6.6", &r));
    let second = Predicate::compile(
        &Definition::parse(
            &serde_json::json!({"name": "XForwardedRemoteAddr", "args": {"sources": "6.6.6.6", "maxTrustedIndex": 2}}),
            "predicate",
        )
        .expect("parses"),
    )
    .expect("compiles");
    assert!(test(&second, &r).0, "the second entry from the right");
    assert!(Predicate::compile(&Definition::shortcut("RemoteAddr=10.0.0.0/40")).is_err());
}

#[test]
fn weight_groups_split_by_the_roll() {
    let mut groups = WeightGroups::default();
    groups.add("g", "high", 8);
    groups.add("g", "low", 2);
    groups.seal();
    assert_eq!(groups.pick("g", 0.0), Some("high"));
    assert_eq!(groups.pick("g", 0.79), Some("high"));
    assert_eq!(groups.pick("g", 0.8), Some("low"));
    assert_eq!(groups.pick("g", 0.999), Some("low"));
    let p = predicate("Weight=g, 2");
    let mut r = Req::get("/");
    r.roll = 0.9;
    let mut vars = Vec::new();
    assert!(p.test(&r.view(), "low", &groups, &mut vars));
    assert!(!p.test(&r.view(), "high", &groups, &mut vars));
}

#[test]
fn bad_arguments_are_refused() {
    for bad in [
        "Path=users",
        "Path=/{a b}",
        "Method=",
        "Host=",
        "Weight=g",
        "Weight=g, x",
        "Header=bad header",
        "Query=a, (",
        "Nope=1",
    ] {
        assert!(
            Predicate::compile(&Definition::shortcut(bad)).is_err(),
            "{bad}"
        );
    }
}

#[test]
fn every_listed_predicate_name_is_known_and_no_other() {
    let unknown = |name: &str| match Predicate::compile(&Definition::shortcut(name)) {
        Ok(_) => false,
        Err(e) => e.to_string().contains("unknown predicate"),
    };
    for name in PREDICATE_NAMES {
        assert!(!unknown(name), "{name} is listed but not compiled");
    }
    assert!(unknown("ReadBody"));
}
