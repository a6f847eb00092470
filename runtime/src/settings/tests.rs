use std::collections::HashMap;
use std::io::Write as _;

use serde::Deserialize;

use super::*;

#[derive(Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "kebab-case")]
struct Sample {
    server: Server,
    eureka: Eureka,
    spring: Spring,
}

#[derive(Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "kebab-case")]
struct Server {
    port: u16,
    address: String,
}

impl Default for Server {
    fn default() -> Self {
        Server {
            port: 8761,
            address: "0.0.0.0".into(),
        }
    }
}

#[derive(Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "kebab-case")]
struct Eureka {
    server: EurekaServer,
    client: EurekaClient,
    instance: EurekaInstance,
}

#[derive(Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "kebab-case")]
struct EurekaServer {
    enable_self_preservation: bool,
    renewal_percent_threshold: f64,
}

impl Default for EurekaServer {
    fn default() -> Self {
        EurekaServer {
            enable_self_preservation: true,
            renewal_percent_threshold: 0.85,
        }
    }
}

#[derive(Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "kebab-case")]
struct EurekaClient {
    service_url: ServiceUrl,
}

#[derive(Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
struct ServiceUrl {
    #[serde(rename = "defaultZone")]
    default_zone: String,
}

#[derive(Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "kebab-case")]
struct EurekaInstance {
    metadata_map: HashMap<String, String>,
    tags: Vec<String>,
}

#[derive(Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "kebab-case")]
struct Spring {
    security: Security,
    profiles: Profiles,
}

#[derive(Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
struct Security {
    user: User,
}

#[derive(Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
struct User {
    name: Option<String>,
    password: Option<String>,
}

#[derive(Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
struct Profiles {
    active: Vec<String>,
}

fn file(ext: &str, text: &str) -> tempfile::NamedTempFile {
    let mut f = tempfile::Builder::new()
        .suffix(&format!(".{ext}"))
        .tempfile()
        .unwrap();
    f.write_all(text.as_bytes()).unwrap();
    f
}

/// `Sample` loaded from the file at `path` alone.
fn load_file(path: &std::path::Path) -> Sample {
    Layers::new::<Sample>()
        .unwrap()
        .file(path)
        .unwrap()
        .load()
        .unwrap()
}

/// The error of loading `Sample` from the file at `path` alone.
fn load_file_err(path: &std::path::Path) -> ConfigError {
    Layers::new::<Sample>()
        .unwrap()
        .file(path)
        .unwrap()
        .load::<Sample>()
        .unwrap_err()
}

fn env(pairs: &[(&str, &str)]) -> HashMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

#[test]
fn defaults_alone_give_the_default_settings() {
    let s: Sample = Layers::new::<Sample>()
        .unwrap()
        .env(&env(&[]))
        .load()
        .unwrap();
    assert_eq!(s, Sample::default());
}

#[test]
fn file_then_environment_then_flags_each_win_over_the_last() {
    let f = file(
        "yml",
        "server:\n  port: 9000\n  address: 127.0.0.1\neureka:\n  server:\n    enable-self-preservation: false\n    renewal-percent-threshold: 0.5\n",
    );
    let e = env(&[
        ("SERVER_PORT", "9100"),
        ("EUREKA_SERVER_RENEWALPERCENTTHRESHOLD", "0.7"),
    ]);
    let s: Sample = Layers::new::<Sample>()
        .unwrap()
        .file(f.path())
        .unwrap()
        .env(&e)
        .set("server.port", 9200, "--port")
        .load()
        .unwrap();
    assert_eq!(s.server.port, 9200, "flag over environment over file");
    assert_eq!(
        s.eureka.server.renewal_percent_threshold, 0.7,
        "environment over file"
    );
    assert!(
        !s.eureka.server.enable_self_preservation,
        "file over defaults"
    );
    assert_eq!(s.server.address, "127.0.0.1");
}

#[test]
fn file_keys_bind_relaxed_and_dotted() {
    let f = file(
        "yaml",
        "eureka.server.enableSelfPreservation: false\neureka:\n  client:\n    serviceUrl:\n      defaultZone: http://a/eureka/\n  instance:\n    metadata-map:\n      zone.name: z1\n      weight: 5\n",
    );
    let s = load_file(f.path());
    assert!(!s.eureka.server.enable_self_preservation);
    assert_eq!(s.eureka.client.service_url.default_zone, "http://a/eureka/");
    assert_eq!(
        s.eureka.instance.metadata_map["zone.name"], "z1",
        "map keys keep their dots"
    );
    assert_eq!(
        s.eureka.instance.metadata_map["weight"], "5",
        "map values become strings"
    );
}

#[test]
fn environment_follows_springs_rule_with_maps_and_lists() {
    let e = env(&[
        (
            "EUREKA_CLIENT_SERVICEURL_DEFAULTZONE",
            "http://a/eureka/,http://b/eureka/",
        ),
        ("EUREKA_INSTANCE_METADATAMAP_ZONE", "z2"),
        ("EUREKA_INSTANCE_TAGS", "a, b"),
        ("EUREKA_SERVER_ENABLE_SELF_PRESERVATION", "FALSE"),
        ("SPRING_SECURITY_USER_PASSWORD", "1234"),
        ("UNRELATED_THING", "x"),
    ]);
    let s: Sample = Layers::new::<Sample>().unwrap().env(&e).load().unwrap();
    assert_eq!(
        s.eureka.client.service_url.default_zone,
        "http://a/eureka/,http://b/eureka/"
    );
    assert_eq!(s.eureka.instance.metadata_map["zone"], "z2");
    assert_eq!(s.eureka.instance.tags, ["a", "b"]);
    assert!(!s.eureka.server.enable_self_preservation);
    assert_eq!(s.spring.security.user.password.as_deref(), Some("1234"));
}

#[test]
fn a_numeric_password_in_yaml_is_a_string() {
    let f = file(
        "yml",
        "spring:\n  security:\n    user:\n      name: admin\n      password: 1234\n",
    );
    let s = load_file(f.path());
    assert_eq!(s.spring.security.user.password.as_deref(), Some("1234"));
}

#[test]
fn older_names_are_aliases() {
    let e = env(&[
        ("DISCOVERY_PORT", "9300"),
        (
            "DISCOVERY__EUREKA__SERVER__ENABLE_SELF_PRESERVATION",
            "false",
        ),
    ]);
    let s: Sample = Layers::new::<Sample>()
        .unwrap()
        .env(&e)
        .env_prefix_alias(&e, "DISCOVERY__", "__")
        .env_alias(&e, "DISCOVERY_PORT", "server.port")
        .load()
        .unwrap();
    assert_eq!(s.server.port, 9300);
    assert!(!s.eureka.server.enable_self_preservation);
}

#[test]
fn a_file_key_the_settings_lack_under_a_checked_prefix_is_warned_of_once() {
    let f = file(
        "yml",
        "eureka:\n  server:\n    enable-self-preservation: false\n    renewal-threshhold: 0.5\n    renewal-threshhold-again: { a: 1, b: 2 }\n  instance:\n    metadata-map: { zone: a }\n    tags: [x]\n  client.service-url.defaultZone: http://x\nother: { x: 1 }\n",
    );
    let layers = Layers::new::<Sample>()
        .unwrap()
        .warn_unknown_under("eureka", &[])
        .file(f.path())
        .unwrap();
    let name = f.path().display().to_string();
    assert_eq!(
        layers.warnings,
        vec![
            format!(
                "{name}: key `eureka.server.renewal-threshhold` is not a setting this server reads; it is ignored"
            ),
            format!(
                "{name}: key `eureka.server.renewal-threshhold-again` is not a setting this server reads; it is ignored"
            ),
        ],
        "only the misspelt keys: not a map's entries, a list, a key outside the prefix"
    );
    let s: Sample = layers.load().unwrap();
    assert!(
        !s.eureka.server.enable_self_preservation,
        "the known keys still bind"
    );

    let layers = Layers::new::<Sample>()
        .unwrap()
        .warn_unknown_under("eureka", &["eureka.server"])
        .file(f.path())
        .unwrap();
    assert!(layers.warnings.is_empty(), "{:?}", layers.warnings);
}

#[test]
fn a_subtree_alias_binds_in_files_environment_and_flags_and_the_later_layer_wins() {
    let layers = || {
        Layers::new::<Sample>()
            .unwrap()
            .alias("spring.next.eureka-server", "eureka.server")
    };
    // Within one file the alias wins; keys bind relaxed and dotted there too.
    let f = file(
        "yml",
        "eureka.server:\n  enable-self-preservation: false\n  renewal-percent-threshold: 0.5\nspring.next.eurekaServer.renewalPercentThreshold: 0.6\n",
    );
    let s: Sample = layers().file(f.path()).unwrap().load().unwrap();
    assert_eq!(s.eureka.server.renewal_percent_threshold, 0.6);
    assert!(!s.eureka.server.enable_self_preservation);
    // A later layer wins, whichever of the two names it uses.
    let e = env(&[("SPRING_NEXT_EUREKASERVER_RENEWALPERCENTTHRESHOLD", "0.7")]);
    let s: Sample = layers().file(f.path()).unwrap().env(&e).load().unwrap();
    assert_eq!(s.eureka.server.renewal_percent_threshold, 0.7);
    let s: Sample = layers()
        .env(&e)
        .set("eureka.server.renewal-percent-threshold", 0.8, "--x")
        .load()
        .unwrap();
    assert_eq!(s.eureka.server.renewal_percent_threshold, 0.8);
    let s: Sample = layers()
        .set(
            "spring.next.eureka-server.renewal-percent-threshold",
            "0.9",
            "--y",
        )
        .load()
        .unwrap();
    assert_eq!(s.eureka.server.renewal_percent_threshold, 0.9);
    // A bad value under the alias names the key it binds to.
    let bad = file(
        "yml",
        "spring.next.eureka-server.renewal-percent-threshold: lots\n",
    );
    let err = layers()
        .file(bad.path())
        .unwrap()
        .load::<Sample>()
        .unwrap_err();
    assert_eq!(err.key(), Some("eureka.server.renewal-percent-threshold"));
}

#[test]
fn a_bad_value_names_its_file_and_key() {
    let f = file("yml", "server:\n  port: lots\n");
    let err = load_file_err(f.path());
    assert_eq!(err.key(), Some("server.port"));
    assert_eq!(err.origin(), &Origin::File(f.path().to_path_buf()));
    let text = err.to_string();
    assert!(text.contains(&f.path().display().to_string()), "{text}");
    assert!(text.contains("server.port"), "{text}");
}

#[test]
fn a_bad_environment_value_names_the_variable() {
    let e = env(&[("EUREKA_SERVER_RENEWALPERCENTTHRESHOLD", "most")]);
    let err = Layers::new::<Sample>()
        .unwrap()
        .env(&e)
        .load::<Sample>()
        .unwrap_err();
    assert_eq!(
        err.origin(),
        &Origin::Environment("EUREKA_SERVER_RENEWALPERCENTTHRESHOLD".into())
    );
    assert_eq!(err.key(), Some("eureka.server.renewal-percent-threshold"));
}

#[test]
fn broken_and_unknown_files_are_errors_naming_the_file() {
    let broken = file("yml", "server: [port\n");
    let err = Layers::new::<Sample>()
        .unwrap()
        .file(broken.path())
        .unwrap_err();
    assert!(err.is_file_error());
    assert!(err.to_string().contains("invalid YAML"), "{err}");
    let unknown = file("ini", "x=1");
    assert!(
        Layers::new::<Sample>()
            .unwrap()
            .file(unknown.path())
            .is_err()
    );
    let missing = Layers::new::<Sample>()
        .unwrap()
        .file(Path::new("/nonexistent/app.yml"))
        .unwrap_err();
    assert!(
        missing.to_string().contains("/nonexistent/app.yml"),
        "{missing}"
    );
}

#[test]
fn toml_files_layer_too() {
    let f = file("toml", "[server]\nport = 7000\n");
    let s = load_file(f.path());
    assert_eq!(s.server.port, 7000);
}

#[test]
fn profile_documents_apply_when_their_profile_is_active() {
    let f = file(
        "yml",
        "spring:\n  profiles:\n    active: peer2\nserver:\n  port: 1\n---\nspring:\n  config:\n    activate:\n      on-profile: peer1\nserver:\n  port: 8761\n---\nspring:\n  config:\n    activate:\n      on-profile: peer2\nserver:\n  port: 8762\n",
    );
    let s = load_file(f.path());
    assert_eq!(s.server.port, 8762);
}

#[test]
fn placeholders_resolve_against_the_layered_settings() {
    let f = file(
        "yml",
        "server:\n  port: 8762\n  address: ${eureka.client.service-url.defaultZone:none}\neureka:\n  client:\n    serviceUrl:\n      defaultZone: http://${server.address2:localhost}:${server.port}/eureka/\n",
    );
    let s = load_file(f.path());
    assert_eq!(
        s.eureka.client.service_url.default_zone,
        "http://localhost:8762/eureka/"
    );
    assert_eq!(
        s.server.address, "http://localhost:8762/eureka/",
        "placeholders inside looked-up values resolve too"
    );
}

#[test]
fn an_unresolvable_placeholder_stays_as_written_and_a_cycle_names_its_key() {
    // As Spring Boot's binder (SCG's `RewritePath=/a/(?<s>.*), /${s}`).
    let f = file(
        "yml",
        "server:\n  address: ${nowhere.to.be.found}-${server.port}\n",
    );
    let s = load_file(f.path());
    assert_eq!(s.server.address, "${nowhere.to.be.found}-8761");
    // Unless the key is strict about it.
    let err = Layers::new::<Sample>()
        .unwrap()
        .strict_placeholders("server")
        .file(f.path())
        .unwrap()
        .load::<Sample>()
        .unwrap_err();
    assert_eq!(err.key(), Some("server.address"));
    assert!(err.to_string().contains("nowhere.to.be.found"), "{err}");
    let cyc = file("yml", "server:\n  address: ${server.address}\n");
    let err = load_file_err(cyc.path());
    assert_eq!(err.key(), Some("server.address"));
    assert_eq!(err.origin(), &Origin::File(cyc.path().to_path_buf()));
    assert!(err.to_string().contains("cycle"), "{err}");
}

#[test]
fn properties_files_layer_as_spring_boot_reads_them() {
    let f = file(
        "properties",
        "# Spring Boot's application.properties\nspring.profiles.active=peer2\nserver.port=1\n\
         eureka.server.enableSelfPreservation=false\n\
         eureka.client.serviceUrl.defaultZone=http://${server.address}:${server.port}/eureka/\n\
         eureka.instance.metadata-map.zone.name=z1\neureka.instance.tags[0]=a\neureka.instance.tags[1]=b\n\
         #---\nspring.config.activate.on-profile=peer1\nserver.port=8761\n\
         #---\nspring.config.activate.on-profile=peer2\nserver.port=8762\n",
    );
    let s = load_file(f.path());
    assert_eq!(s.server.port, 8762);
    assert!(!s.eureka.server.enable_self_preservation);
    assert_eq!(
        s.eureka.client.service_url.default_zone,
        "http://0.0.0.0:8762/eureka/"
    );
    assert_eq!(s.eureka.instance.metadata_map["zone.name"], "z1");
    assert_eq!(s.eureka.instance.tags, ["a", "b"]);
    let bad = file("properties", "server.port=lots\n");
    let err = load_file_err(bad.path());
    assert_eq!(err.key(), Some("server.port"));
    assert!(
        err.to_string().contains(&bad.path().display().to_string()),
        "{err}"
    );
    let gap = file("properties", "eureka.instance.tags[1]=b\n");
    let err = Layers::new::<Sample>()
        .unwrap()
        .file(gap.path())
        .unwrap_err();
    assert_eq!(err.key(), Some("eureka.instance.tags[0]"));
}

#[derive(Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "kebab-case")]
struct WithRoutes {
    gateway: Gateway,
}

#[derive(Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "kebab-case")]
struct Gateway {
    routes: Vec<serde_json::Value>,
    hosts: Vec<String>,
}

#[test]
fn environment_variables_with_indices_give_list_elements_replacing_the_files_list() {
    let f = file(
        "yml",
        "gateway:\n  routes:\n    - {id: from-file, uri: 'http://a'}\n    - {id: second, uri: 'http://b'}\n  hosts: [x, y]\n",
    );
    let e = env(&[
        ("GATEWAY_ROUTES_0_ID", "from-env"),
        ("GATEWAY_ROUTES_0_URI", "lb://users"),
        ("GATEWAY_ROUTES_0_PREDICATES_0", "Path=/users/**"),
        ("GATEWAY_ROUTES_0_FILTERS_0_NAME", "StripPrefix"),
        ("GATEWAY_ROUTES_0_FILTERS_0_ARGS_PARTS", "1"),
        ("GATEWAY_ROUTES_1_ID", "other"),
        ("GATEWAY_HOSTS_1", "z"),
        ("GATEWAY_HOSTS_0", "w"),
    ]);
    let s: WithRoutes = Layers::new::<WithRoutes>()
        .unwrap()
        .file(f.path())
        .unwrap()
        .env(&e)
        .load()
        .unwrap();
    assert_eq!(
        s.gateway.routes,
        [
            serde_json::json!({"id": "from-env", "uri": "lb://users", "predicates": ["Path=/users/**"],
                               "filters": [{"name": "StripPrefix", "args": {"parts": "1"}}]}),
            serde_json::json!({"id": "other"}),
        ],
        "the environment's list replaces the file's, as in Spring"
    );
    assert_eq!(s.gateway.hosts, ["w", "z"]);
}
