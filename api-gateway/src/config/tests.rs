use std::io::Write as _;

use super::*;
use crate::gateway::Gateway;
use crate::settings::Source;

fn yaml(text: &str) -> Value {
    serde_yaml_ng::from_str(text).expect("test YAML")
}

/// Builds a gateway from `text` written to a file, as the binary does.
fn gateway_from(
    text: &str,
) -> (
    tempfile::NamedTempFile,
    Result<Gateway, crate::settings::LoadError>,
) {
    let mut file = tempfile::Builder::new()
        .suffix(".yml")
        .tempfile()
        .expect("temp file");
    file.write_all(text.as_bytes()).expect("write");
    let built = Gateway::from_source(Source::file(file.path())).and_then(|b| b.build());
    (file, built)
}

#[test]
fn shortcut_splits_at_commas_and_binds_in_order() {
    let def = Definition::shortcut("RewritePath=/red/?(?<segment>.*), /$\\{segment}");
    assert_eq!(def.name, "RewritePath");
    let a = def
        .bind("filter", &["regexp", "replacement"], Shortcut::InOrder)
        .expect("binds");
    assert_eq!(a.str("regexp").expect("given"), "/red/?(?<segment>.*)");
    assert_eq!(a.str("replacement").expect("given"), "/$\\{segment}");
    let bare = Definition::shortcut("PreserveHostHeader");
    assert!(bare.bind("filter", &[], Shortcut::InOrder).is_ok());
}

#[test]
fn gather_list_takes_every_value_and_a_tail_flag() {
    let def = Definition::shortcut("Path=/red/{segment},/blue/{segment},false");
    let a = def
        .bind(
            "predicate",
            &["patterns", "matchtrailingslash"],
            Shortcut::GatherListTailFlag,
        )
        .expect("binds");
    assert_eq!(a.list("patterns"), ["/red/{segment}", "/blue/{segment}"]);
    assert!(!a.flag("matchtrailingslash", true).expect("bool"));
}

#[test]
fn expanded_form_with_genkeys_named_relaxed_and_nested_args() {
    let def = Definition::parse(
        &yaml(
            "{name: RewritePath, args: {_genkey_1: '/${segment}', _genkey_0: '/a/(?<segment>.*)'}}",
        ),
        "filter",
    )
    .expect("parses");
    let a = def
        .bind("filter", &["regexp", "replacement"], Shortcut::InOrder)
        .expect("binds");
    assert_eq!(a.str("regexp").expect("given"), "/a/(?<segment>.*)");
    let def = Definition::parse(&yaml("{name: CircuitBreaker, args: {name: cb, fallback-uri: 'forward:/x', statusCodes: [500, BAD_GATEWAY]}}"), "filter").expect("parses");
    let a = def
        .bind(
            "filter",
            &["name", "fallbackuri", "statuscodes"],
            Shortcut::InOrder,
        )
        .expect("binds");
    assert_eq!(a.str("fallbackuri").expect("given"), "forward:/x");
    assert_eq!(a.list("statuscodes"), ["500", "BAD_GATEWAY"]);
    let def = Definition::parse(
        &yaml("{name: RequestRateLimiter, args: {redis-rate-limiter: {replenishRate: 10}}}"),
        "filter",
    )
    .expect("parses");
    let a = def
        .bind(
            "filter",
            &["redisratelimiter.replenishrate"],
            Shortcut::InOrder,
        )
        .expect("binds");
    assert_eq!(
        a.str("redisratelimiter.replenishrate").expect("given"),
        "10"
    );
}

#[test]
fn unknown_arguments_and_too_many_values_are_refused() {
    let def = Definition::parse(&yaml("{name: StripPrefix, args: {partz: 1}}"), "filter")
        .expect("parses");
    let e = def
        .bind("filter", &["parts"], Shortcut::InOrder)
        .expect_err("unknown argument");
    assert!(e.to_string().contains("partz"), "{e}");
    let e = Definition::shortcut("StripPrefix=1,2")
        .bind("filter", &["parts"], Shortcut::InOrder)
        .expect_err("too many");
    assert!(e.to_string().contains("at most 1"), "{e}");
    assert!(
        Definition::parse(&yaml("{args: {a: 1}}"), "filter").is_err(),
        "no name"
    );
    assert!(
        Definition::parse(&yaml("{name: X, argz: {}}"), "filter").is_err(),
        "unknown key"
    );
}

#[test]
fn expressions_are_refused_anywhere() {
    let def = Definition::parse(
        &yaml("{name: RequestRateLimiter, args: {key-resolver: '#{@userKeyResolver}'}}"),
        "filter",
    )
    .expect("parses");
    let e = def
        .bind("filter", &["keyresolver"], Shortcut::InOrder)
        .expect_err("expression");
    assert!(e.is_expression(), "{e}");
    let routes =
        yaml("[{id: r, uri: 'http://a', metadata: {x: '#{T(java.lang.Runtime).getRuntime()}'}}]");
    let e = parse_routes(routes.as_array().expect("list"), None, 0)
        .expect_err("expression in metadata");
    assert!(e.definition().is_expression(), "{e}");
    assert_eq!(e.route(), "r");
}

#[test]
fn routes_need_a_uri_and_known_keys() {
    let e = parse_routes(yaml("[{id: a}]").as_array().expect("list"), None, 0).expect_err("no uri");
    assert!(e.to_string().contains("route `a`: uri: is required"), "{e}");
    let e = parse_routes(
        yaml("[{id: a, uri: 'http://x', predicate: []}]")
            .as_array()
            .expect("list"),
        None,
        0,
    )
    .expect_err("typo");
    assert!(e.to_string().contains("unknown key `predicate`"), "{e}");
    let ok = parse_routes(
        yaml("[{uri: 'http://x', order: '-1'}]")
            .as_array()
            .expect("list"),
        None,
        3,
    )
    .expect("valid");
    assert_eq!((ok[0].id.as_str(), ok[0].order), ("route-3", -1));
    assert!(ok[0].enabled);
}

#[test]
fn enabled_is_read_and_shown_in_scgs_definition_form() {
    let routes = yaml(
        "[{id: a, uri: 'http://x', enabled: false, predicates: [Path=/a/**], filters: [{name: Retry, args: {retries: 2, backoff: {firstBackoff: 10ms}}}]}]",
    );
    let defs = parse_routes(routes.as_array().expect("list"), None, 0).expect("valid");
    assert!(!defs[0].enabled);
    assert_eq!(
        defs[0].to_json(),
        serde_json::json!({
            "id": "a",
            "predicates": [{"name": "Path", "args": {"_genkey_0": "/a/**"}}],
            "filters": [{"name": "Retry", "args": {"retries": "2", "backoff.firstBackoff": "10ms"}}],
            "uri": "http://x",
            "metadata": {},
            "order": 0,
            "enabled": false,
        })
    );
    let e = parse_routes(
        yaml("[{id: a, uri: 'http://x', enabled: maybe}]")
            .as_array()
            .expect("list"),
        None,
        0,
    )
    .expect_err("not a flag");
    assert!(
        e.to_string()
            .contains("enabled: `\"maybe\"` is not true or false"),
        "{e}"
    );
}

#[test]
fn both_prefixes_default_filters_and_order_then_declaration() {
    let (_f, gw) = gateway_from(
        r#"
spring:
  application.name: gateway
  cloud:
    gateway:
      default-filters:
        - AddResponseHeader=X-Default, yes
      routes:
        - id: late
          uri: http://127.0.0.1:1
          order: 5
          predicates: [Path=/a/**]
        - id: first-declared
          uri: http://127.0.0.1:1
          predicates: [Path=/a/**]
      server:
        webflux:
          routes:
            - id: webflux
              uri: lb://users
              predicates:
                - name: Path
                  args: { patterns: /a/** }
              filters:
                - name: StripPrefix
                  args: { _genkey_0: "1" }
"#,
    );
    let gw = gw.expect("valid");
    let table = gw.table();
    let ids: Vec<&str> = table.routes().iter().map(|r| r.id.as_str()).collect();
    assert_eq!(ids, ["first-declared", "webflux", "late"]);
    assert_eq!(
        table.get("webflux").expect("route").filters.len(),
        2,
        "default filter in front"
    );
}

#[test]
fn load_errors_name_the_file_the_route_and_the_reason() {
    let cases = [
        (
            "routes: [{id: r1, uri: 'http://a', predicates: [Nope=1]}]",
            "unknown predicate",
        ),
        (
            "routes: [{id: r2, uri: 'http://a', filters: [Frobnicate]}]",
            "unknown filter",
        ),
        (
            "routes: [{id: r3, uri: 'http://a', filters: ['RewritePath=/(, /']}]",
            "bad regular expression",
        ),
        ("routes: [{id: r4, uri: 'ftp://a'}]", "no supported scheme"),
        (
            "routes: [{id: r5, uri: 'http://a', predicates: ['After=tomorrow']}]",
            "not a date-time",
        ),
        (
            "routes: [{id: r6, uri: 'http://a', filters: ['SetStatus=#{1+1}']}]",
            "expressions",
        ),
        (
            "routes: [{id: r7, uri: 'http://a'}, {id: r7, uri: 'http://b'}]",
            "same id",
        ),
    ];
    for (routes, reason) in cases {
        let text = format!("spring:\n  cloud:\n    gateway:\n      {routes}\n");
        let (file, result) = gateway_from(&text);
        let e = result.expect_err(reason).to_string();
        let id = routes
            .split("id: ")
            .nth(1)
            .and_then(|s| s.split(',').next())
            .expect("id");
        assert!(e.contains(&file.path().display().to_string()), "{e}");
        assert!(e.contains(&format!("route `{id}`")), "{e}");
        assert!(e.contains(reason), "{reason}: {e}");
    }
    let (_f, result) = gateway_from(
        "spring.cloud.gateway:\n  default-filters: [Nope=1]\n  routes: [{id: r8, uri: 'http://a'}]\n",
    );
    let e = result.expect_err("bad default filter").to_string();
    assert!(e.contains("default-filters: filter Nope"), "{e}");
    let (file, result) = gateway_from("spring: [unclosed");
    let e = result.expect_err("invalid YAML").to_string();
    assert!(
        e.contains(&file.path().display().to_string()) && e.contains("YAML"),
        "{e}"
    );
}
