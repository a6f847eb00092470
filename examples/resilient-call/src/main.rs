//! A resilient call with a fallback: `GET /call` calls `upstream.url`
//! (`lb://greeter/hello`: resolved through the registry cache and the load
//! balancer, guarded by the service's circuit breaker, retried when that is
//! safe, bounded by the per-call timeout). When the call ends without an
//! answer, a fallback answers instead, saying what ended the call (no
//! instance, breaker open, timeout, connect error) and whether a retry
//! would be safe.
//!
//! # Run it against the demo stack
//! ```text
//! scripts/demo                                         # discovery on 8761
//! cd examples/register-and-discover && cargo run       # GREETER on :8090
//! cd examples/resilient-call && cargo run              # serves :8093
//! curl localhost:8093/call                             # "hello from 127.0.0.1:greeter:8090"
//! ```
//! Stop the greeter and call again: the fallback answers ("no instance of
//! greeter"); after repeated failures the breaker opens and the fallback
//! says so without waiting on the network.

use std::process::ExitCode;

use axum::http::StatusCode;
use axum::routing::get;
use cloud_client::http::{HttpError, LbHttpClient};
use cloud_client::service::{CloudService, run};
use serde::Deserialize;

/// The application's own settings.
#[derive(Debug, Deserialize)]
struct Settings {
    /// `upstream.*`.
    upstream: Upstream,
}

/// `upstream.url`: what `GET /call` calls.
#[derive(Debug, Deserialize)]
struct Upstream {
    url: String,
}

fn main() -> ExitCode {
    run::<Settings, _>(router)
}

fn router(service: &CloudService<Settings>) -> axum::Router {
    let (http, config) = (service.http.clone(), service.config.clone());
    axum::Router::new().route(
        "/call",
        get(move || {
            let (http, url) = (http.clone(), config.get().upstream.url.clone());
            async move { call(&http, &url).await }
        }),
    )
}

/// The upstream's answer, or the fallback's.
async fn call(http: &LbHttpClient, url: &str) -> (StatusCode, String) {
    let req = match http.reqwest().get(url).build() {
        Ok(req) => req,
        Err(e) => {
            return (
                StatusCode::INTERNAL_SERVER_ERROR,
                format!("bad upstream.url {url}: {e}\n"),
            );
        }
    };
    let answered = http
        .execute_or_else(req, |e| async move { Ok(fallback(&e)) })
        .await;
    match answered {
        Ok(resp) => {
            let status =
                StatusCode::from_u16(resp.status().as_u16()).unwrap_or(StatusCode::BAD_GATEWAY);
            match resp.text().await {
                Ok(body) => (status, body),
                Err(e) => (StatusCode::BAD_GATEWAY, format!("upstream body: {e}\n")),
            }
        }
        // The fallback above always answers; kept for completeness.
        Err(e) => (StatusCode::BAD_GATEWAY, format!("{e}\n")),
    }
}

/// The answer given when the call ends without one: says what ended it
/// (no instance, breaker open, timeout, connect error) and whether a retry
/// would be safe.
fn fallback(e: &HttpError) -> reqwest::Response {
    let why = if e.is_no_instance() {
        "no instance is up"
    } else if e.is_breaker_open() {
        "the circuit breaker is open"
    } else if e.is_timeout() {
        "the call timed out"
    } else if e.is_connect() {
        "the upstream refused the connection"
    } else {
        "the call failed"
    };
    tracing::warn!(error = %e, attempts = e.attempts(), "fallback answer");
    let body = format!(
        "fallback: {why} ({e}); safe to retry: {}\n",
        e.is_safe_to_retry()
    );
    reqwest::Response::from(axum::http::Response::new(body))
}
