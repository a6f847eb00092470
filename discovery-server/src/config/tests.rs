//! Layering of the settings: defaults < file < environment < flags, Spring's
//! names, the deprecated aliases, and errors that name the origin and key.

use std::collections::HashMap;
use std::path::PathBuf;

use cloud_runtime::settings::Origin;

use super::*;

fn env(vars: &[(&str, &str)]) -> HashMap<String, String> {
    vars.iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

fn file(dir: &tempfile::TempDir, name: &str, text: &str) -> PathBuf {
    let path = dir.path().join(name);
    std::fs::write(&path, text).unwrap();
    path
}

#[test]
fn defaults_are_springs() {
    let c = ServerConfig::load(None, &env(&[]), &Overrides::default()).unwrap();
    assert_eq!(c, ServerConfig::default());
    assert_eq!(c.port, 8761);
    assert_eq!(c.registry.renewal_percent_threshold, 0.85);
    assert_eq!(c.eviction_interval, Duration::from_secs(60));
    assert_eq!(c.drain_timeout, Duration::from_secs(10));
    assert_eq!(c.show_details, ShowDetails::WhenAuthorized);
    assert_eq!(c.limits, ServeLimits::default());
    assert!(c.peers.is_empty() && c.basic_auth.is_none());
}

#[test]
fn file_then_environment_then_flags_each_win_key_by_key() {
    let dir = tempfile::tempdir().unwrap();
    let path = file(
        &dir,
        "discovery.yml",
        "server:\n  port: 9000\n  max-connections: 10\n\
         eureka:\n  server:\n    enable-self-preservation: false\n    renewal-percent-threshold: 0.7\n    eviction-interval-timer-in-ms: 5000\n\
         \x20 instance:\n    lease-expiration-duration-in-seconds: 30\n\
         \x20 client:\n    service-url:\n      defaultZone: http://a/eureka/, http://b/eureka/\n\
         spring:\n  security:\n    user:\n      name: u\n      password: p\n  lifecycle:\n    timeout-per-shutdown-phase: 3s\n\
         management:\n  endpoint:\n    health:\n      show-details: always\n",
    );
    let vars = env(&[
        ("SERVER_PORT", "9100"),
        ("EUREKA_SERVER_RENEWALPERCENTTHRESHOLD", "0.5"),
        ("EUREKA_CLIENT_SERVICEURL_DEFAULTZONE", "http://c/eureka/"),
        ("SPRING_SECURITY_USER_NAME", "admin"),
        ("UNRELATED_VARIABLE", "ignored"),
    ]);

    let from_env = ServerConfig::load(Some(&path), &vars, &Overrides::default()).unwrap();
    assert_eq!(from_env.port, 9100, "environment over file");
    assert_eq!(from_env.registry.renewal_percent_threshold, 0.5);
    assert!(!from_env.registry.self_preservation, "file over defaults");
    assert_eq!(from_env.registry.default_duration_secs, 30);
    assert_eq!(from_env.eviction_interval, Duration::from_secs(5));
    assert_eq!(from_env.peers, ["http://c/eureka/"]);
    assert_eq!(
        from_env.basic_auth,
        Some(BasicAuth {
            username: "admin".into(),
            password: "p".into()
        })
    );
    assert_eq!(from_env.show_details, ShowDetails::Always);
    assert_eq!(from_env.limits.max_connections, 10);
    assert_eq!(from_env.drain_timeout, Duration::from_secs(3));
    assert_eq!(from_env.limits.drain_timeout, Duration::from_secs(3));

    let flags = Overrides {
        port: Some(9200),
        peers: vec!["http://d/eureka/".into(), "http://e/eureka/".into()],
        drain_timeout: Some(Duration::from_millis(1500)),
    };
    let from_flags = ServerConfig::load(Some(&path), &vars, &flags).unwrap();
    assert_eq!(from_flags.port, 9200, "flags over environment");
    assert_eq!(from_flags.peers, ["http://d/eureka/", "http://e/eureka/"]);
    assert_eq!(from_flags.drain_timeout, Duration::from_millis(1500));
    assert_eq!(from_flags.registry.renewal_percent_threshold, 0.5);
}

#[test]
fn the_old_variable_names_still_work_beneath_springs() {
    let old = env(&[
        ("DISCOVERY_PORT", "9300"),
        (
            "DISCOVERY__EUREKA__SERVER__ENABLE_SELF_PRESERVATION",
            "false",
        ),
        ("DISCOVERY__EUREKA__SERVER__REGISTRY_SYNC_TIMEOUT_MS", "0"),
    ]);
    let c = ServerConfig::load(None, &old, &Overrides::default()).unwrap();
    assert_eq!(c.port, 9300);
    assert!(!c.registry.self_preservation);
    assert!(c.replication.sync_timeout.is_zero());

    let both = env(&[("DISCOVERY_PORT", "9300"), ("SERVER_PORT", "9400")]);
    let c = ServerConfig::load(None, &both, &Overrides::default()).unwrap();
    assert_eq!(c.port, 9400, "the Spring name wins over the deprecated one");
}

#[test]
fn a_spring_eureka_servers_own_application_yml_is_read_unchanged() {
    let dir = tempfile::tempdir().unwrap();
    let path = file(
        &dir,
        "application.yml",
        r#"
spring:
  application:
    name: eureka-server
  security:
    user:
      name: eureka
      password: 1234
server:
  port: 8761
eureka:
  instance:
    hostname: localhost
    preferIpAddress: false
  client:
    registerWithEureka: false
    fetchRegistry: false
    serviceUrl:
      defaultZone: http://${eureka.instance.hostname}:${server.port}/eureka/
  server:
    enableSelfPreservation: false
    evictionIntervalTimerInMs: 5000
    renewalPercentThreshold: 0.49
management:
  endpoints:
    web:
      exposure:
        include: "*"
"#,
    );
    let c = ServerConfig::load(Some(&path), &env(&[]), &Overrides::default()).unwrap();
    assert_eq!(c.port, 8761);
    assert_eq!(c.peers, ["http://localhost:8761/eureka/"]);
    assert!(!c.registry.self_preservation);
    assert_eq!(c.registry.renewal_percent_threshold, 0.49);
    assert_eq!(c.eviction_interval, Duration::from_secs(5));
    assert_eq!(
        c.basic_auth,
        Some(BasicAuth {
            username: "eureka".into(),
            password: "1234".into()
        })
    );
}

#[test]
fn a_bad_value_names_its_file_or_variable_and_key() {
    let dir = tempfile::tempdir().unwrap();
    let path = file(
        &dir,
        "discovery.yml",
        "eureka:\n  server:\n    renewal-percent-threshold: 3\n",
    );
    let e = ServerConfig::load(Some(&path), &env(&[]), &Overrides::default()).unwrap_err();
    assert_eq!(e.origin(), &Origin::File(path.clone()));
    assert_eq!(e.key(), Some("eureka.server.renewal-percent-threshold"));
    let text = e.to_string();
    assert!(text.contains(&path.display().to_string()), "{text}");
    assert!(text.contains("renewal-percent-threshold"), "{text}");
    assert!(text.contains("between 0 and 1"), "{text}");

    let e = ServerConfig::load(
        Some(&path),
        &env(&[("EUREKA_SERVER_RENEWALPERCENTTHRESHOLD", "lots")]),
        &Overrides::default(),
    )
    .unwrap_err();
    assert_eq!(
        e.origin(),
        &Origin::Environment("EUREKA_SERVER_RENEWALPERCENTTHRESHOLD".into())
    );

    let e = ServerConfig::load(
        None,
        &env(&[(
            "DISCOVERY__EUREKA__SERVER__EVICTION_INTERVAL_TIMER_IN_MS",
            "0",
        )]),
        &Overrides::default(),
    )
    .unwrap_err();
    assert_eq!(
        e.origin(),
        &Origin::Environment("DISCOVERY__EUREKA__SERVER__EVICTION_INTERVAL_TIMER_IN_MS".into())
    );
    assert_eq!(e.key(), Some("eureka.server.eviction-interval-timer-in-ms"));

    let e = ServerConfig::load(
        None,
        &env(&[("MANAGEMENT_ENDPOINT_HEALTH_SHOWDETAILS", "sometimes")]),
        &Overrides::default(),
    )
    .unwrap_err();
    assert_eq!(e.key(), Some("management.endpoint.health.show-details"));
}

#[test]
fn an_unknown_placeholder_in_the_peer_list_is_an_error_naming_the_key() {
    let dir = tempfile::tempdir().unwrap();
    let path = file(
        &dir,
        "discovery.yml",
        "eureka:\n  client:\n    service-url:\n      defaultZone: http://${peer.host}/eureka/,http://${other:fallback}:1/eureka/\n",
    );
    let e = ServerConfig::load(Some(&path), &env(&[]), &Overrides::default()).unwrap_err();
    assert_eq!(e.origin(), &Origin::File(path));
    assert_eq!(e.key(), Some("eureka.client.service-url.default-zone"));
    assert!(e.to_string().contains("peer.host"), "{e}");
}

#[test]
fn input_limits_come_from_eureka_server_keys() {
    let dir = tempfile::tempdir().unwrap();
    let path = file(
        &dir,
        "discovery.yml",
        "eureka:\n  server:\n    max-metadata-keys-per-instance: 5\n    max-xml-depth: 8\n",
    );
    let vars = env(&[("EUREKA_SERVER_MAXDELTAQUEUEBYTES", "1024")]);
    let c = ServerConfig::load(Some(&path), &vars, &Overrides::default()).unwrap();
    assert_eq!(c.input_limits.max_metadata_keys_per_instance, 5);
    assert_eq!(c.input_limits.xml.max_depth, 8);
    assert_eq!(c.input_limits.max_delta_queue_bytes, 1024);
    assert_eq!(
        c.input_limits.max_metadata_bytes_per_instance,
        Limits::default().max_metadata_bytes_per_instance
    );
    let server = crate::Server::new(c).unwrap();
    assert_eq!(
        server
            .node()
            .registry()
            .limits()
            .max_metadata_keys_per_instance,
        5
    );
}
