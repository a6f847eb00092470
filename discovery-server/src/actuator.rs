//! `GET /actuator/health` and `GET /actuator/prometheus`.

use axum::Json;
use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;

use crate::http::AppState;

/// Health, with the registry and self-preservation state in plain words.
pub(crate) async fn health(State(state): State<AppState>) -> impl IntoResponse {
    let registry = state.node.registry();
    let p = registry.preservation();
    let counts = registry.counts();
    Json(serde_json::json!({
        "status": "UP",
        "components": {
            "discovery": {
                "status": "UP",
                "details": {
                    "applications": counts.applications,
                    "instances": counts.instances,
                    "version": registry.version(),
                    "selfPreservation": {
                        "enabled": p.enabled,
                        "active": p.is_active(),
                        "renewsLastMin": p.renews_last_min,
                        "renewsThreshold": p.renews_threshold,
                        "expectedRenewsPerMin": p.expected_renews_per_min,
                    },
                    "peers": state.node.peer_status().iter().map(|peer| peer.url.clone()).collect::<Vec<_>>(),
                }
            }
        }
    }))
}

/// Prometheus text exposition.
pub(crate) async fn prometheus(State(state): State<AppState>) -> impl IntoResponse {
    let uptime = u64::try_from(state.node.uptime_millis() / 1000).unwrap_or(0);
    let body = state.node.metrics().render(state.node.registry(), uptime);
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], body)
}
