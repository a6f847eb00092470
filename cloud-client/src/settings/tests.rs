use super::*;

#[test]
fn defaults_are_spring_defaults() {
    let s = ClientSettings::from_properties(Vec::<(String, String)>::new()).unwrap();
    assert_eq!(s.application_name(), "application");
    assert_eq!(s.active_profiles(), ["default"]);
    assert_eq!(s.renewal_interval(), Duration::from_secs(30));
    assert_eq!(s.fetch_interval(), Duration::from_secs(30));
    assert_eq!(s.eureka.instance.lease_expiration_duration_in_seconds, 90);
    assert!(!s.spring.cloud.config.fail_fast);
    let urls = s.eureka_service_urls().unwrap();
    assert_eq!(urls[0].base.as_str(), "http://localhost:8761/eureka/");
}

#[test]
fn every_spelling_of_a_key_is_the_same_key() {
    for key in [
        "eureka.client.serviceUrl.defaultZone",
        "eureka.client.service-url.default-zone",
        "eureka.client.service_url.defaultzone",
        "EUREKA_CLIENT_SERVICEURL_DEFAULTZONE",
    ] {
        let s = ClientSettings::from_properties([(key, "http://a:1/eureka")]).unwrap();
        let urls = s.eureka_service_urls().unwrap();
        assert_eq!(urls.len(), 1, "{key}");
        assert_eq!(urls[0].base.as_str(), "http://a:1/eureka/", "{key}");
    }
    let s = ClientSettings::from_properties([
        ("SPRING_CLOUD_CONFIG_FAILFAST", "true"),
        ("eureka.instance.leaseRenewalIntervalInSeconds", "5"),
        ("EUREKA_INSTANCE_METADATAMAP_ZONE", "z1"),
    ])
    .unwrap();
    assert!(s.spring.cloud.config.fail_fast);
    assert_eq!(s.eureka.instance.lease_renewal_interval_in_seconds, 5);
    assert_eq!(s.eureka.instance.metadata_map["zone"], "z1");
}

#[test]
fn service_urls_keep_order_and_move_credentials_out() {
    let s = ClientSettings::from_properties([(
        "eureka.client.service-url.defaultZone",
        "http://user:p%40ss@h1:8761/eureka/, http://h2:8762/eureka",
    )])
    .unwrap();
    let urls = s.eureka_service_urls().unwrap();
    assert_eq!(urls[0].base.as_str(), "http://h1:8761/eureka/");
    assert_eq!(
        urls[0].credentials,
        Some(("user".to_owned(), "p@ss".to_owned()))
    );
    assert_eq!(urls[1].base.as_str(), "http://h2:8762/eureka/");
    assert_eq!(urls[1].credentials, None);
    assert!(
        !format!("{:?}", urls[0]).contains("p@ss"),
        "no password in logs"
    );
}

#[test]
fn a_wrong_value_names_its_key() {
    let cases = [
        ("eureka.client.registry-fetch-interval-seconds", "soon"),
        ("eureka.instance.prefer-ip-address", "maybe"),
        ("eureka.instance.lease-renewal-interval-in-seconds", "0"),
        ("server.port", "70000"),
        ("spring.cloud.config.fail-fast", "yes please"),
    ];
    for (key, value) in cases {
        let err = ClientSettings::from_properties([(key, value)]).unwrap_err();
        assert_eq!(err.key(), key);
        assert!(err.to_string().contains(key), "{err}");
        assert_eq!(err.value(), value);
    }
    let err = ClientSettings::from_properties([(
        "eureka.client.service-url.defaultZone",
        "ftp://nowhere",
    )])
    .unwrap_err();
    assert_eq!(err.key(), "eureka.client.service-url.defaultZone");
    let err = ClientSettings::from_properties([
        ("eureka.instance.lease-renewal-interval-in-seconds", "90"),
        ("eureka.instance.lease-expiration-duration-in-seconds", "30"),
    ])
    .unwrap_err();
    assert_eq!(
        err.key(),
        "eureka.instance.lease-expiration-duration-in-seconds"
    );
    let err = ClientSettings::from_properties([("eureka.instance.metadata-map.weight", "heavy")])
        .unwrap_err();
    assert_eq!(err.key(), "eureka.instance.metadata-map.weight");
    let err = ClientSettings::from_properties([("spring.config.import", "configserver:nope")])
        .unwrap_err();
    assert_eq!(err.key(), "spring.config.import");
}

#[test]
fn config_imports_read_optional_and_ignore_other_kinds() {
    let s = ClientSettings::from_properties([(
        "spring.config.import",
        "optional:configserver:http://u:p@cfg:8888, file:./extra.yml",
    )])
    .unwrap();
    let imports = s.config_imports().unwrap();
    assert_eq!(imports.len(), 1);
    assert!(imports[0].optional);
    assert_eq!(imports[0].url.base.as_str(), "http://cfg:8888/");
    assert_eq!(
        imports[0].url.credentials,
        Some(("u".to_owned(), "p".to_owned()))
    );
    let s = ClientSettings::from_properties([("spring.config.import", "configserver:")]).unwrap();
    let imports = s.config_imports().unwrap();
    assert!(!imports[0].optional);
    assert_eq!(imports[0].url.base.as_str(), "http://localhost:8888/");
}

#[test]
fn a_yaml_tree_reads_like_flat_keys_and_unknown_keys_are_ignored() {
    let tree = serde_json::json!({
        "spring": {"application": {"name": "users"}, "profiles": {"active": ["dev", "eu"]},
                   "cloud": {"config": {"label": "main"}}},
        "eureka": {"client": {"serviceUrl": {"defaultZone": "http://a:1/eureka/"},
                              "registryFetchIntervalSeconds": 5},
                   "instance": {"metadata-map": {"zone": "eu-1", "weight": "3"}}},
        "logging": {"level": "debug"}
    });
    let s = ClientSettings::from_tree(&tree).unwrap();
    assert_eq!(s.application_name(), "users");
    assert_eq!(s.active_profiles(), ["dev", "eu"]);
    assert_eq!(s.spring.cloud.config.label.as_deref(), Some("main"));
    assert_eq!(s.eureka.client.registry_fetch_interval_seconds, 5);
    assert_eq!(s.eureka.instance.metadata_map["weight"], "3");
}

#[test]
fn the_serde_shape_uses_spring_names() {
    let yaml = serde_json::json!({
        "spring": {"profiles": {"active": "a,b"}},
        "eureka": {"client": {"service-url": {"defaultZone": "http://x:1/eureka/"}},
                   "instance": {"prefer-ip-address": true}}
    });
    let s: ClientSettings = serde_json::from_value(yaml).unwrap();
    assert_eq!(s.spring.profiles.active, ["a", "b"]);
    assert!(s.eureka.instance.prefer_ip_address);
    s.validate().unwrap();
}

proptest::proptest! {
    #[test]
    fn arbitrary_properties_never_panic(pairs in proptest::collection::vec(("[a-zA-Z._-]{0,40}", ".{0,40}"), 0..8)) {
        let _ = ClientSettings::from_properties(pairs);
    }
}

#[test]
fn the_runtime_layering_reads_a_file_then_spring_environment_variables() {
    use std::collections::HashMap;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("application.yml");
    std::fs::write(
        &file,
        "spring:\n  application:\n    name: users\neureka:\n  client:\n    serviceUrl:\n      defaultZone: http://a:1/eureka/\n  instance:\n    metadata-map:\n      zone: z1\n    lease-renewal-interval-in-seconds: 10\n",
    )
    .unwrap();
    let env = HashMap::from([
        (
            "EUREKA_INSTANCE_LEASERENEWALINTERVALINSECONDS".to_owned(),
            "5".to_owned(),
        ),
        ("SPRING_PROFILES_ACTIVE".to_owned(), "dev,eu".to_owned()),
        ("PATH".to_owned(), "/bin".to_owned()),
    ]);
    let s = ClientSettings::load(Some(&file), &env).unwrap();
    assert_eq!(s.application_name(), "users");
    assert_eq!(s.active_profiles(), ["dev", "eu"]);
    assert_eq!(
        s.eureka.instance.lease_renewal_interval_in_seconds, 5,
        "env wins"
    );
    assert_eq!(s.eureka.instance.metadata_map["zone"], "z1");
    assert_eq!(
        s.eureka_service_urls().unwrap()[0].base.as_str(),
        "http://a:1/eureka/"
    );

    let bad = HashMap::from([(
        "EUREKA_CLIENT_REGISTRYFETCHINTERVALSECONDS".to_owned(),
        "soon".to_owned(),
    )]);
    let err = ClientSettings::load(None, &bad).unwrap_err();
    assert_eq!(
        err.key(),
        Some("eureka.client.registry-fetch-interval-seconds")
    );
    assert!(
        err.to_string()
            .contains("EUREKA_CLIENT_REGISTRYFETCHINTERVALSECONDS"),
        "{err}"
    );

    let zero = HashMap::from([(
        "EUREKA_INSTANCE_LEASERENEWALINTERVALINSECONDS".to_owned(),
        "0".to_owned(),
    )]);
    let err = ClientSettings::load(None, &zero).unwrap_err();
    assert_eq!(
        err.key(),
        Some("eureka.instance.lease-renewal-interval-in-seconds")
    );
}

proptest::proptest! {
    #[test]
    fn arbitrary_urls_and_imports_never_panic(raw in ".{0,60}", suffix in "[a-z:/@%.0-9-]{0,40}") {
        let _ = ServiceUrl::parse(&raw);
        let _ = ConfigImport::parse(&raw);
        let _ = ServiceUrl::parse(&format!("http://{suffix}"));
        let _ = ConfigImport::parse(&format!("optional:configserver:http://{suffix}"));
    }

    #[test]
    fn a_parsed_service_url_never_keeps_credentials(user in "[a-z]{1,8}", pass in "[a-zA-Z0-9%]{0,8}", host in "[a-z]{1,10}") {
        if let Ok(url) = ServiceUrl::parse(&format!("http://{user}:{pass}@{host}:8761/eureka")) {
            proptest::prop_assert_eq!(url.base.username(), "");
            proptest::prop_assert!(url.base.password().is_none());
            proptest::prop_assert!(url.base.as_str().ends_with('/'));
        }
    }
}
