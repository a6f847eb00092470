//! Webhook payloads (GitHub, GitLab, Gitea JSON and the `path=` form) and
//! the service names they map to: never panics, bounded by the limits.
#![no_main]

use axum::http::{HeaderMap, HeaderValue, header};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&kind, body)) = data.split_first() else { return };
    let mut headers = HeaderMap::new();
    let content_type = if kind % 2 == 0 { "application/json" } else { "application/x-www-form-urlencoded" };
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    let event = ["push", "Push Hook", ""][usize::from(kind / 2) % 3];
    if !event.is_empty() {
        headers.insert("x-github-event", HeaderValue::from_static(event));
    }
    let limits = config_server::fuzzing::default_limits();
    if let Ok(paths) = config_server::monitor::changed_paths(&headers, body, &limits) {
        assert!(paths.len() <= limits.monitor_paths);
        let _ = config_server::monitor::applications(&paths, &limits);
    }
    let _ = config_server::monitor::verify("secret", &headers, body);
});
