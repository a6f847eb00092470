use std::collections::HashMap;
use std::time::Duration;

use cloud_protocol::eureka::{InstanceStatus, Metadata};
use cloud_runtime::clock::ManualClock;

use super::*;

/// An `UP` instance `id` on `{id}.local:8080` (shared with the HTTP
/// client's tests).
pub(crate) fn instance(id: &str, zone: Option<&str>, weight: u32) -> ServiceInstance {
    ServiceInstance {
        instance_id: id.into(),
        app: "SVC".into(),
        host: format!("{id}.local"),
        port: 8080,
        secure: false,
        status: InstanceStatus::Up,
        zone: zone.map(str::to_owned),
        weight,
        metadata: Metadata::new(),
        vip_address: None,
        secure_vip_address: None,
    }
}

fn pool(ids: &[&str]) -> Arc<[ServiceInstance]> {
    ids.iter().map(|id| instance(id, None, 1)).collect()
}

fn counts(lb: &LoadBalancer, picks: usize) -> HashMap<String, usize> {
    let mut seen = HashMap::new();
    for _ in 0..picks {
        let p = lb.pick().unwrap();
        *seen.entry(p.instance().instance_id.clone()).or_default() += 1;
    }
    seen
}

#[test]
fn round_robin_takes_each_up_instance_in_turn() {
    let lb = LoadBalancer::new(Strategy::RoundRobin);
    assert!(lb.pick().is_none(), "an empty pool picks nothing");
    let mut list: Vec<ServiceInstance> = pool(&["a", "b", "c"]).to_vec();
    list[1].status = InstanceStatus::Down;
    lb.update(&Arc::from(list));
    let order: Vec<String> = (0..4)
        .map(|_| lb.pick().unwrap().instance().instance_id.clone())
        .collect();
    assert_eq!(order, ["a", "c", "a", "c"]);
}

#[test]
fn random_reaches_every_instance() {
    let lb = LoadBalancer::new(Strategy::Random);
    lb.update(&pool(&["a", "b", "c", "d"]));
    let seen = counts(&lb, 2000);
    assert_eq!(seen.len(), 4);
    assert!(seen.values().all(|c| *c > 300), "{seen:?}");
}

#[test]
fn weighted_picks_in_proportion_to_weight() {
    let lb = LoadBalancer::new(Strategy::Weighted);
    lb.update(&Arc::from(vec![
        instance("light", None, 1),
        instance("heavy", None, 3),
    ]));
    let seen = counts(&lb, 20_000);
    let ratio = seen["heavy"] as f64 / seen["light"] as f64;
    assert!((2.6..3.4).contains(&ratio), "ratio {ratio}");
}

#[test]
fn zone_preference_stays_local_while_it_can() {
    let clock = ManualClock::new();
    let lb = LoadBalancer::with(
        Strategy::ZonePreference("eu".into()),
        OutlierConfig {
            consecutive_failures: 1,
            max_ejection_percent: 100,
            ..OutlierConfig::default()
        },
        Arc::new(clock.clone()),
    );
    lb.update(&Arc::from(vec![
        instance("eu-1", Some("eu"), 1),
        instance("us-1", Some("us"), 1),
        instance("eu-2", Some("eu"), 1),
    ]));
    let seen = counts(&lb, 100);
    assert_eq!(seen.len(), 2);
    assert!(!seen.contains_key("us-1"));
    for id in ["eu-1", "eu-2"] {
        loop {
            let p = lb.pick().unwrap();
            if p.instance().instance_id == id {
                p.record(Outcome::Failure);
                break;
            }
        }
    }
    assert!(lb.is_ejected("eu-1") && lb.is_ejected("eu-2"));
    assert_eq!(
        lb.pick().unwrap().instance().instance_id,
        "us-1",
        "no local instance left"
    );

    let elsewhere = LoadBalancer::new(Strategy::ZonePreference("asia".into()));
    elsewhere.update(&pool(&["a", "b"]));
    assert_eq!(
        counts(&elsewhere, 10).len(),
        2,
        "no local zone: all instances"
    );
}

#[test]
fn sticky_keys_keep_their_instance() {
    let lb = LoadBalancer::new(Strategy::Sticky);
    lb.update(&pool(&["a", "b", "c", "d", "e"]));
    let mut spread = HashMap::<String, usize>::new();
    for user in 0..200 {
        let key = format!("user-{user}");
        let first = lb.pick_for(&key).unwrap().instance().instance_id.clone();
        for _ in 0..3 {
            assert_eq!(lb.pick_for(&key).unwrap().instance().instance_id, first);
        }
        *spread.entry(first).or_default() += 1;
    }
    assert_eq!(spread.len(), 5, "keys spread over the pool: {spread:?}");
}

#[test]
fn p2c_avoids_the_busy_and_the_slow() {
    let clock = ManualClock::new();
    let lb = LoadBalancer::with(
        Strategy::PowerOfTwoChoices,
        OutlierConfig::disabled(),
        Arc::new(clock.clone()),
    );
    lb.update(&pool(&["a", "b"]));
    // With two instances P2C compares both: the one with calls in flight loses.
    let held = lb.pick().unwrap();
    let busy = held.instance().instance_id.clone();
    for _ in 0..20 {
        assert_ne!(lb.pick().unwrap().instance().instance_id, busy);
    }
    drop(held);
    // A slow answer makes an instance lose until its average decays.
    let p = lb.pick().unwrap();
    let slow = p.instance().instance_id.clone();
    clock.advance(Duration::from_millis(500));
    p.record(Outcome::Success);
    for _ in 0..20 {
        assert_ne!(lb.pick().unwrap().instance().instance_id, slow);
    }
    let slow_endpoint = lb
        .endpoints()
        .into_iter()
        .find(|e| e.instance().instance_id == slow)
        .unwrap();
    assert!(slow_endpoint.latency_ewma() >= Duration::from_millis(500));
    assert_eq!(slow_endpoint.in_flight(), 0);
}

#[test]
fn p2c_tries_a_new_instance_at_once_and_then_shares_with_it() {
    let clock = ManualClock::new();
    let lb = LoadBalancer::with(
        Strategy::PowerOfTwoChoices,
        OutlierConfig::disabled(),
        Arc::new(clock.clone()),
    );
    let call = |lb: &LoadBalancer| {
        let p = lb.pick().unwrap();
        let id = p.instance().instance_id.clone();
        clock.advance(Duration::from_micros(100));
        p.record(Outcome::Success);
        id
    };
    lb.update(&pool(&["a"]));
    for _ in 0..5 {
        assert_eq!(call(&lb), "a");
    }
    // "a" answers in 0.1 ms, faster than the 1 ms a new instance is
    // assumed at; the newcomer is still tried by the next sequential call.
    lb.update(&pool(&["a", "b"]));
    assert_eq!(call(&lb), "b");
    // Timed as fast as "a", it shares the sequential traffic.
    let mut b = 0;
    for _ in 0..200 {
        if call(&lb) == "b" {
            b += 1;
        }
    }
    assert!((40..=160).contains(&b), "b got {b} of 200");
}

#[test]
fn p2c_on_the_default_clock_times_calls_in_real_time() {
    let lb = LoadBalancer::new(Strategy::PowerOfTwoChoices);
    lb.update(&pool(&["a", "b"]));
    let before = Instant::now();
    let held = lb.pick().unwrap();
    let slow = held.instance().instance_id.clone();
    // The call takes 5 ms of real time (the subject of the test, so it is
    // waited for, on tokio's clock).
    while before.elapsed() < Duration::from_millis(5) {
        std::hint::spin_loop();
    }
    held.record(Outcome::Success);
    let took = before.elapsed();
    let endpoint = lb
        .endpoints()
        .into_iter()
        .find(|e| e.instance().instance_id == slow)
        .unwrap();
    let measured = endpoint.latency_ewma();
    // The counter is calibrated against the system clock once, within a
    // few percent on a busy machine: good enough to compare instances.
    assert!(
        measured >= Duration::from_micros(4_500) && measured <= took + took / 10,
        "measured {measured:?}, the call took 5 ms to {took:?}"
    );
    for _ in 0..20 {
        let p = lb.pick().unwrap();
        assert_ne!(p.instance().instance_id, slow, "the slow one loses");
        p.record(Outcome::Ignored);
    }
}

#[test]
fn consecutive_failures_eject_an_instance_until_its_time_is_up() {
    let clock = ManualClock::new();
    let lb = LoadBalancer::with(
        Strategy::RoundRobin,
        OutlierConfig::default(),
        Arc::new(clock.clone()),
    );
    lb.update(&pool(&["good", "bad"]));
    let fail_bad = |times: usize| {
        let mut failed = 0;
        while failed < times {
            let p = lb.pick().unwrap();
            if p.instance().instance_id == "bad" {
                p.record(Outcome::Failure);
                failed += 1;
            } else {
                p.record(Outcome::Success);
            }
        }
    };
    fail_bad(4);
    assert!(!lb.is_ejected("bad"), "four failures are not enough");
    fail_bad(1);
    assert!(lb.is_ejected("bad"));
    assert_eq!(counts(&lb, 10)["good"], 10);

    clock.advance(Duration::from_secs(29));
    assert!(lb.is_ejected("bad"));
    clock.advance(Duration::from_secs(1));
    assert_eq!(counts(&lb, 10).get("bad"), Some(&5), "back after 30 s");

    // Failing again at once: the second ejection lasts twice as long.
    fail_bad(5);
    clock.advance(Duration::from_secs(59));
    assert!(lb.is_ejected("bad"));
    clock.advance(Duration::from_secs(1));
    assert!(!lb.is_ejected("bad"));
}

#[test]
fn the_last_instance_is_never_ejected_and_a_success_resets_the_count() {
    let lb = LoadBalancer::new(Strategy::RoundRobin);
    lb.update(&pool(&["only"]));
    for _ in 0..10 {
        lb.pick().unwrap().record(Outcome::Failure);
    }
    assert!(!lb.is_ejected("only"));

    let lb = LoadBalancer::new(Strategy::Random);
    lb.update(&pool(&["x", "y"]));
    let fail_x = |n: usize| {
        let mut done = 0;
        while done < n {
            let p = lb.pick().unwrap();
            if p.instance().instance_id == "x" {
                p.record(Outcome::Failure);
                done += 1;
            }
        }
    };
    fail_x(4);
    loop {
        let p = lb.pick().unwrap();
        if p.instance().instance_id == "x" {
            p.record(Outcome::Success);
            break;
        }
    }
    fail_x(4);
    assert!(!lb.is_ejected("x"), "not five in a row");
}

#[test]
fn an_update_keeps_the_numbers_of_instances_that_stay() {
    let clock = ManualClock::new();
    let lb = LoadBalancer::with(
        Strategy::RoundRobin,
        OutlierConfig {
            consecutive_failures: 1,
            ..OutlierConfig::default()
        },
        Arc::new(clock.clone()),
    );
    lb.update(&pool(&["a", "b"]));
    loop {
        let p = lb.pick().unwrap();
        if p.instance().instance_id == "a" {
            p.record(Outcome::Failure);
            break;
        }
    }
    assert!(lb.is_ejected("a"));
    lb.update(&pool(&["a", "b", "c"]));
    assert!(lb.is_ejected("a"), "still ejected after the pool grew");
    assert_eq!(lb.endpoints().len(), 3);
    let seen = counts(&lb, 20);
    assert!(!seen.contains_key("a"));
}

#[test]
fn picks_held_across_a_pool_change_keep_their_instance_and_numbers() {
    let lb = LoadBalancer::with(
        Strategy::RoundRobin,
        OutlierConfig {
            consecutive_failures: 1,
            ..OutlierConfig::default()
        },
        Arc::new(ManualClock::new()),
    );
    lb.update(&pool(&["a", "b"]));
    // More picks in flight than arc-swap has fast slots per thread.
    let held: Vec<Picked<'_>> = (0..20).map(|_| lb.pick().unwrap()).collect();
    lb.update(&pool(&["a", "c"]));
    let ids: Vec<&str> = held
        .iter()
        .map(|p| p.instance().instance_id.as_str())
        .collect();
    assert_eq!(ids.iter().filter(|id| **id == "a").count(), 10);
    assert_eq!(ids.iter().filter(|id| **id == "b").count(), 10);
    for p in held {
        p.record(Outcome::Failure);
    }
    // `a` stayed in the pool: its failures count there; `b` left it.
    assert!(lb.is_ejected("a"));
    assert!(!lb.is_ejected("c"));
    assert_eq!(lb.ejected_count(), 1);
}
