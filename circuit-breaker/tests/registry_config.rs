//! The registry configured from a Resilience4j-style YAML document.
#![allow(clippy::unwrap_used)]

use std::time::Duration;

use circuit_breaker::{ConfigError, Registry, RegistryConfig, SlidingWindowType};

const YAML: &str = r#"
configs:
  default:
    slidingWindowSize: 50
    waitDurationInOpenState: 10s
    registerHealthIndicator: true
  strict:
    failure-rate-threshold: 10
    sliding_window_type: TIME_BASED
instances:
  inventory:
    failureRateThreshold: 25
    slowCallDurationThreshold: 500ms
    maxWaitDurationInHalfOpenState: 0
  search:
    baseConfig: strict
    waitDurationInOpenState: 2500
    automaticTransitionFromOpenToHalfOpenEnabled: true
"#;

fn registry() -> Registry {
    let config: RegistryConfig = serde_yaml_ng::from_str(YAML).unwrap();
    Registry::new(config).unwrap()
}

#[test]
fn instances_overlay_their_base_config_which_overlays_the_defaults() {
    let registry = registry();
    let inventory = registry.circuit_breaker("inventory").unwrap();
    let c = inventory.config();
    assert_eq!(c.failure_rate_threshold, 25.0);
    assert_eq!(c.sliding_window_size, 50);
    assert_eq!(c.wait_duration_in_open_state, Duration::from_secs(10));
    assert_eq!(
        c.slow_call_duration_threshold,
        Some(Duration::from_millis(500))
    );
    assert_eq!(c.max_wait_duration_in_half_open_state, None);

    let search = registry.circuit_breaker("search").unwrap();
    let c = search.config();
    assert_eq!(c.failure_rate_threshold, 10.0);
    assert_eq!(c.sliding_window_type, SlidingWindowType::TimeBased);
    assert_eq!(c.sliding_window_size, 50, "strict sits on top of default");
    assert_eq!(c.wait_duration_in_open_state, Duration::from_millis(2500));
    assert!(c.automatic_transition_from_open_to_half_open_enabled);
}

#[test]
fn unlisted_names_get_the_default_config_and_the_same_breaker_each_time() {
    let registry = registry();
    let a = registry.circuit_breaker("other").unwrap();
    assert_eq!(a.config().sliding_window_size, 50);
    let _ = a.call_sync(|| Err::<(), _>("x"));
    let again = registry.circuit_breaker("other").unwrap();
    assert_eq!(again.metrics().totals.failed, 1);
    let names: Vec<String> = registry.metrics().into_iter().map(|m| m.name).collect();
    assert_eq!(names, vec!["other"]);
}

#[test]
fn typos_unknown_bases_and_out_of_range_values_are_errors() {
    let typo =
        serde_yaml_ng::from_str::<RegistryConfig>("instances: { a: { slidingWindowSise: 5 } }");
    assert!(typo.unwrap_err().to_string().contains("slidingWindowSise"));

    let bad_duration = serde_yaml_ng::from_str::<RegistryConfig>(
        "instances: { a: { waitDurationInOpenState: soon } }",
    );
    assert!(bad_duration.is_err());

    let unknown: RegistryConfig =
        serde_yaml_ng::from_str("instances: { a: { baseConfig: nope } }").unwrap();
    assert!(matches!(
        Registry::new(unknown),
        Err(ConfigError::UnknownBaseConfig { .. })
    ));

    let out_of_range: RegistryConfig =
        serde_yaml_ng::from_str("configs: { default: { failureRateThreshold: 150 } }").unwrap();
    assert!(matches!(
        Registry::new(out_of_range),
        Err(ConfigError::OutOfRange {
            field: "failure_rate_threshold",
            ..
        })
    ));
}
