//! Read and watch configuration: a service that fetches its configuration
//! from the config server named by `spring.config.import`
//! (`optional:configserver:http://localhost:8888`) for its
//! `spring.application.name` and `spring.profiles.active`, merges it above
//! its local `application.yml` and below environment variables, reads it
//! as a typed struct, and follows the server's change stream: each new
//! snapshot is logged with the keys that changed, and `GET /config` shows
//! the current one. Without a server (the import is `optional:`) it runs
//! on its local file.
//!
//! # Run it against the demo stack
//! ```text
//! scripts/demo                                   # config on 8888 serving config-server/config-repo
//! cd examples/config-watch && cargo run          # serves :8092
//! curl localhost:8092/config                     # greeting and features of foo (profile dev)
//! ```
//! `scripts/demo` serves a plain directory (`--native-dir`); to see a live
//! change, point a config server at a git repository with a webhook and
//! commit: the new snapshot and its changed keys appear in the log.

use std::process::ExitCode;

use axum::Json;
use axum::routing::get;
use cloud_client::config::LiveConfig;
use cloud_client::service::{CloudService, run};
use serde::Deserialize;
use serde_json::{Value, json};

/// The application's own settings, in Spring's kebab-case.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "kebab-case")]
struct Settings {
    /// `greeting`.
    #[serde(default)]
    greeting: String,
    /// `features[n].name`, `features[n].enabled`.
    #[serde(default)]
    features: Vec<Feature>,
}

/// One feature flag.
#[derive(Debug, Deserialize)]
struct Feature {
    name: String,
    #[serde(default)]
    enabled: bool,
}

fn main() -> ExitCode {
    run::<Settings, _>(router)
}

fn router(service: &CloudService<Settings>) -> axum::Router {
    tokio::spawn(log_refreshes(service.config.clone()));
    let config = service.config.clone();
    axum::Router::new().route(
        "/config",
        get(move || {
            let config = config.clone();
            async move { Json(describe(&config)) }
        }),
    )
}

fn describe(config: &LiveConfig<Settings>) -> Value {
    let snapshot = config.current();
    let features: Vec<Value> = snapshot
        .value
        .features
        .iter()
        .map(|f| json!({ "name": f.name, "enabled": f.enabled }))
        .collect();
    json!({
        "greeting": snapshot.value.greeting,
        "features": features,
        "version": snapshot.version,
        "fromServer": snapshot.from_server,
    })
}

/// Logs each new snapshot with the keys that changed.
async fn log_refreshes(config: LiveConfig<Settings>) {
    let mut updates = config.subscribe();
    while updates.changed().await.is_ok() {
        let snapshot = updates.borrow_and_update().clone();
        tracing::info!(
            changed = ?snapshot.changed_keys,
            version = ?snapshot.version,
            greeting = %snapshot.value.greeting,
            "configuration refreshed"
        );
    }
}
