//! The registry configured from a Resilience4j-style YAML document.
#![allow(clippy::unwrap_used)]

use std::time::Duration;

use circuit_breaker::{ConfigError, Registry, RegistryConfig, SlidingWindowType, State};

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

/// The `resilience4j:` subtree of a Spring Boot `application.yml`, as
/// Resilience4j's documentation writes it.
const SPRING_YAML: &str = r#"
resilience4j:
  circuitbreaker:
    configs:
      default:
        registerHealthIndicator: true
        slidingWindowSize: 10
        minimumNumberOfCalls: 5
        permittedNumberOfCallsInHalfOpenState: 3
        automaticTransitionFromOpenToHalfOpenEnabled: true
        waitDurationInOpenState: PT5S
        failureRateThreshold: 50
        eventConsumerBufferSize: 10
        recordExceptions:
          - org.springframework.web.client.HttpServerErrorException
          - java.io.IOException
        ignoreExceptions:
          - io.github.robwin.exception.BusinessException
    instances:
      backendA:
        baseConfig: default
        enableExponentialBackoff: true
        exponentialBackoffMultiplier: 2
        exponentialMaxWaitDurationInOpenState: PT1M
      backendB:
        slidingWindowSize: 20
        slowCallDurationThreshold: PT0.5S
  retry:
    configs:
      default:
        maxAttempts: 3
        waitDuration: 100
        retryExceptions:
          - java.io.IOException
    instances:
      backendA:
        baseConfig: default
        waitDuration: PT0.2S
        enableExponentialBackoff: true
        exponentialBackoffMultiplier: 3
        exponentialMaxWaitDuration: 5s
      backendB:
        maxAttempts: 5
        enableExponentialBackoff: false
        enableRandomizedWait: false
  bulkhead:
    instances:
      backendA:
        maxConcurrentCalls: 10
      backendB:
        maxWaitDuration: 10ms
        maxConcurrentCalls: 20
  timelimiter:
    instances:
      backendA:
        timeoutDuration: 2s
        cancelRunningFuture: true
      backendB:
        timeoutDuration: PT1M
"#;

#[derive(serde::Deserialize)]
struct SpringFile {
    resilience4j: circuit_breaker::ResilienceConfig,
}

fn spring_registry() -> Registry {
    let file: SpringFile = serde_yaml_ng::from_str(SPRING_YAML).unwrap();
    Registry::new(file.resilience4j).unwrap()
}

#[test]
fn a_spring_boot_resilience4j_block_configures_every_policy() {
    let registry = spring_registry();

    let a = registry.circuit_breaker("backendA").unwrap();
    let c = a.config();
    assert_eq!(c.sliding_window_size, 10);
    assert_eq!(c.wait_duration_in_open_state, Duration::from_secs(5));
    let backoff = c.open_wait_backoff.unwrap();
    assert_eq!(backoff.multiplier, 2.0);
    assert_eq!(backoff.max_wait, Some(Duration::from_secs(60)));
    let b = registry.circuit_breaker("backendB").unwrap();
    assert_eq!(b.config().sliding_window_size, 20);
    assert_eq!(
        b.config().slow_call_duration_threshold,
        Some(Duration::from_millis(500))
    );
    assert_eq!(b.config().open_wait_backoff, None);

    let retry_a = registry.retry("backendA").unwrap();
    let retry = retry_a.config();
    assert_eq!(retry.max_attempts, 3);
    assert_eq!(retry.backoff.initial, Duration::from_millis(200));
    assert_eq!(retry.backoff.multiplier, 3.0);
    assert_eq!(retry.backoff.max, Duration::from_secs(5));
    let retry_b = registry.retry("backendB").unwrap();
    let retry = retry_b.config();
    assert_eq!(retry.max_attempts, 5);
    assert_eq!(retry.backoff.initial, Duration::from_millis(100));
    assert_eq!((retry.backoff.multiplier, retry.backoff.jitter), (1.0, 0.0));

    let bulkhead = registry.bulkhead("backendB").unwrap();
    assert_eq!(bulkhead.config().max_concurrent_calls, 20);
    assert_eq!(
        bulkhead.config().max_wait_duration,
        Duration::from_millis(10)
    );
    let held = bulkhead.try_acquire().unwrap();
    assert_eq!(
        registry.bulkhead("backendB").unwrap().available_slots(),
        19,
        "one bulkhead per name"
    );
    drop(held);

    assert_eq!(
        registry.time_limiter("backendA").unwrap().timeout(),
        Duration::from_secs(2)
    );
    assert_eq!(
        registry.time_limiter("backendB").unwrap().timeout(),
        Duration::from_secs(60)
    );
    assert_eq!(
        registry.time_limiter("unlisted").unwrap().timeout(),
        Duration::from_secs(1)
    );
}

#[tokio::test(start_paused = true)]
async fn the_open_wait_grows_each_time_a_trial_round_fails() {
    let registry = spring_registry();
    let breaker = registry.circuit_breaker("backendA").unwrap();
    for _ in 0..5 {
        let _ = breaker.call(|| async { Err::<(), _>("down") }).await;
    }
    let mut waits = Vec::new();
    for _ in 0..4 {
        assert_eq!(breaker.state(), State::Open);
        let wait = breaker.remaining_open_wait().unwrap();
        waits.push(wait.as_secs());
        // The automatic transition moves to HALF_OPEN when the wait is over.
        tokio::time::sleep(wait).await;
        tokio::task::yield_now().await;
        assert_eq!(breaker.state(), State::HalfOpen);
        for _ in 0..3 {
            let _ = breaker.call(|| async { Err::<(), _>("still down") }).await;
        }
    }
    assert_eq!(waits, [5, 10, 20, 40]);
}

#[test]
fn unsupported_values_of_the_other_policies_are_errors() {
    let cancel: circuit_breaker::ResilienceConfig = serde_yaml_ng::from_str(
        "timelimiter: { instances: { a: { cancelRunningFuture: false } } }",
    )
    .unwrap();
    assert!(matches!(
        Registry::new(cancel),
        Err(ConfigError::OutOfRange {
            field: "cancel_running_future",
            ..
        })
    ));
    let typo = serde_yaml_ng::from_str::<circuit_breaker::ResilienceConfig>(
        "retry: { instances: { a: { maxAttempt: 2 } } }",
    );
    assert!(typo.unwrap_err().to_string().contains("maxAttempt"));
    let zero: circuit_breaker::ResilienceConfig =
        serde_yaml_ng::from_str("bulkhead: { configs: { default: { maxConcurrentCalls: 0 } } }")
            .unwrap();
    assert!(Registry::new(zero).is_err());
}
