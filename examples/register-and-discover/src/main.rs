//! Register and discover: a service that registers with Eureka under
//! `spring.application.name`, serves `GET /hello`, lists what its registry
//! cache knows at `GET /instances/{app}`, logs each change to its own
//! application's instances, and on SIGTERM or Ctrl-C marks itself `DOWN`,
//! cancels its lease, drains and exits 0.
//!
//! Everything comes from `application.yml` (Spring's names) and the
//! environment (`EUREKA_CLIENT_SERVICEURL_DEFAULTZONE`, `SERVER_PORT`, ...)
//! through [`cloud_client::service::run`].
//!
//! # Run it against the demo stack
//! ```text
//! scripts/demo                                  # discovery on 8761, config on 8888, gateway
//! cd examples/register-and-discover && cargo run            # registers GREETER on :8090
//! SERVER_PORT=8091 cargo run                    # a second instance (or --port 0)
//! curl localhost:8090/instances/greeter         # both, from the local cache
//! curl localhost:8761/eureka/apps/GREETER       # as the registry sees them
//! ```
//! Stop one with Ctrl-C: it leaves the registry at once, and the other
//! logs the change.

use std::process::ExitCode;

use axum::Json;
use axum::extract::Path;
use axum::routing::get;
use cloud_client::discovery::DiscoveryClient;
use cloud_client::service::{CloudService, run};
use serde_json::{Value, json};

fn main() -> ExitCode {
    run::<serde::de::IgnoredAny, _>(router)
}

fn router(service: &CloudService<serde::de::IgnoredAny>) -> axum::Router {
    let name = service
        .settings
        .spring
        .application
        .name
        .clone()
        .unwrap_or_else(|| "application".to_owned());
    let me = service
        .discovery
        .as_ref()
        .map(|d| d.registration().instance_id)
        .unwrap_or_else(|| name.clone());
    if let Some(discovery) = service.discovery.clone() {
        tokio::spawn(log_changes(discovery, name));
    }
    let discovery = service.discovery.clone();
    axum::Router::new()
        .route(
            "/hello",
            get(move || {
                let me = me.clone();
                async move { format!("hello from {me}\n") }
            }),
        )
        .route(
            "/instances/{app}",
            get(move |Path(app): Path<String>| {
                let discovery = discovery.clone();
                async move { Json(instances(discovery.as_ref(), &app)) }
            }),
        )
}

/// The `UP` instances of `app` in the local registry cache.
fn instances(discovery: Option<&DiscoveryClient>, app: &str) -> Value {
    let list: Vec<Value> = discovery
        .map(|d| d.instances(app))
        .unwrap_or_default()
        .iter()
        .map(|i| {
            json!({
                "instanceId": i.instance_id,
                "url": i.base_url(),
                "zone": i.zone,
                "status": format!("{:?}", i.status),
            })
        })
        .collect();
    json!({ "application": app, "instances": list })
}

/// Logs each change to `app`'s instances, as the registry cache sees it.
async fn log_changes(discovery: DiscoveryClient, app: String) {
    let mut changes = discovery.subscribe(&app);
    while let Some(now) = changes.changed().await {
        let ids: Vec<&str> = now.iter().map(|i| i.instance_id.as_str()).collect();
        tracing::info!(application = %app, instances = ?ids, "instances changed");
    }
}
