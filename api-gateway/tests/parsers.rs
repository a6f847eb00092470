//! Parsers of outside input never panic, and what they accept behaves:
//! route shortcuts, expanded definitions, path and host patterns,
//! date-times and address ranges.

use api_gateway::config::{Definition, Shortcut};
use api_gateway::filter::{Filter, FilterSettings};
use api_gateway::predicate::cidr::Cidr;
use api_gateway::predicate::pattern::{Pattern, decoded_path};
use api_gateway::predicate::time::parse_epoch_millis;
use api_gateway::predicate::{Predicate, WeightGroups};
use proptest::prelude::*;

const PREDICATES: &[&str] = &[
    "Path",
    "Host",
    "Method",
    "Header",
    "Query",
    "Cookie",
    "After",
    "Before",
    "Between",
    "RemoteAddr",
    "XForwardedRemoteAddr",
    "Weight",
];
const FILTERS: &[&str] = &[
    "AddRequestHeader",
    "RewritePath",
    "StripPrefix",
    "SetStatus",
    "RedirectTo",
    "RequestSize",
    "Retry",
    "RequestRateLimiter",
    "SecureHeaders",
    "DedupeResponseHeader",
    "RewriteLocationResponseHeader",
    "SetPath",
    "CircuitBreaker",
    "RewriteRequestParameter",
    "SetRequestUri",
    "RequestHeaderToRequestUri",
    "RemoveJsonAttributesResponseBody",
    "CacheRequestBody",
];

fn filter_settings() -> FilterSettings {
    FilterSettings {
        original_status_header: None,
        resilience: circuit_breaker::Registry::new(circuit_breaker::ResilienceConfig::default())
            .expect("defaults"),
        clock: std::sync::Arc::new(cloud_runtime::clock::ManualClock::new()),
        redis: None,
        response_cache: Default::default(),
        rate_limiter: Default::default(),
        max_in_memory_size: api_gateway::filter::DEFAULT_MAX_IN_MEMORY_SIZE,
        secure_headers: Default::default(),
    }
}

proptest! {
    #[test]
    fn shortcuts_compile_or_fail_cleanly(p in 0..PREDICATES.len(), f in 0..FILTERS.len(), args in "[ -~]{0,40}") {
        let _ = Predicate::compile(&Definition::shortcut(&format!("{}={args}", PREDICATES[p])));
        let _ = Filter::compile(&Definition::shortcut(&format!("{}={args}", FILTERS[f])), "r", &filter_settings());
    }

    #[test]
    fn expanded_definitions_bind_or_fail_cleanly(yaml in "\\{name: [A-Za-z]{1,8}, args: \\{[a-z_0-9]{1,9}: [ -~&&[^{}\\[\\]:#,]]{0,12}\\}\\}") {
        if let Ok(value) = serde_yaml_ng::from_str::<serde_json::Value>(&yaml)
            && let Ok(def) = Definition::parse(&value, "filter")
        {
            let _ = def.bind("filter", &["name", "value"], Shortcut::InOrder);
        }
    }

    #[test]
    fn literal_path_patterns_match_themselves(segments in proptest::collection::vec("[a-z0-9.~-]{1,8}", 1..5)) {
        let path = format!("/{}", segments.join("/"));
        let pattern = Pattern::path(&path, true).expect("a literal path is a pattern");
        let mut vars = Vec::new();
        prop_assert!(pattern.matches(&path, &mut vars));
        let trailing = format!("{path}/");
        prop_assert!(pattern.matches(&trailing, &mut vars));
        let longer = format!("{path}/x");
        prop_assert!(!pattern.matches(&longer, &mut vars));
        prop_assert!(vars.is_empty());
    }

    #[test]
    fn path_and_host_patterns_never_panic(text in "[ -~]{0,30}", subject in "[ -~]{0,30}") {
        let mut vars = Vec::new();
        if let Ok(p) = Pattern::path(&text, true) { let _ = p.matches(&subject, &mut vars); }
        if let Ok(p) = Pattern::host(&text) { let _ = p.matches(&subject, &mut vars); }
    }

    #[test]
    fn date_times_and_ranges_never_panic(text in "[ -~]{0,40}") {
        let _ = parse_epoch_millis(&text);
        let _ = text.parse::<Cidr>();
    }

    #[test]
    fn weight_picks_a_member_for_every_roll(weights in proptest::collection::vec(0u32..100, 1..6), roll in 0.0f64..1.0) {
        let mut groups = WeightGroups::default();
        for (i, w) in weights.iter().enumerate() {
            groups.add("g", &format!("r{i}"), *w);
        }
        groups.seal();
        let picked = groups.pick("g", roll).expect("a member");
        prop_assert!(picked.starts_with('r'));
    }

    #[test]
    fn a_path_spelt_with_escapes_and_parameters_decodes_to_the_same_segments(
        segments in proptest::collection::vec(
            proptest::collection::vec((proptest::char::range('!', '~'), any::<bool>()), 0..8),
            1..5,
        ),
        params in proptest::collection::vec(proptest::option::of("[a-z=]{0,6}"), 5),
    ) {
        // Each segment's characters (no `/`, `%` or `;`), some escaped, with
        // `;parameters` after some.
        let plain: Vec<String> = segments
            .iter()
            .map(|s| s.iter().map(|(c, _)| *c).filter(|c| !"/%;".contains(*c)).collect())
            .collect();
        let mut spelt = String::new();
        for (i, seg) in segments.iter().enumerate() {
            spelt.push('/');
            for (c, escape) in seg.iter().filter(|(c, _)| !"/%;".contains(*c)) {
                match escape {
                    true => spelt.push_str(&format!("%{:02x}", *c as u32)),
                    false => spelt.push(*c),
                }
            }
            if let Some(p) = &params[i] {
                spelt.push(';');
                spelt.push_str(p);
            }
        }
        let expected = format!("/{}", plain.join("/"));
        let decoded = decoded_path(&spelt).expect("well-formed");
        prop_assert_eq!(decoded.as_ref(), expected.as_str());
    }

    #[test]
    fn decoding_any_path_never_panics_and_keeps_its_segments(path in "[ -~]{0,40}") {
        if let Ok(decoded) = decoded_path(&path) {
            prop_assert_eq!(decoded.matches('/').count(), path.matches('/').count());
        }
    }
}
