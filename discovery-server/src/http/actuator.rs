//! `GET /actuator/health` (and its children) and `GET /actuator/prometheus`.
//!
//! Health stays open when credentials are configured; who sees its
//! details follows `management.endpoint.health.show-details`, as in Spring
//! Boot: `when-authorized` (the default) shows them to callers presenting
//! the credentials (and to everyone when none are configured), `always` to
//! everyone, `never` to nobody. Other callers get `{"status":"UP"}`.

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, header};
use axum::response::IntoResponse;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::AppState;

/// Who sees the details of `/actuator/health`
/// (`management.endpoint.health.show-details`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ShowDetails {
    /// Nobody: every caller sees only the status.
    Never,
    /// Callers with the configured credentials (everyone when no
    /// credentials are configured). The default.
    #[default]
    WhenAuthorized,
    /// Every caller.
    Always,
}

impl ShowDetails {
    /// Spring's spelling: `never`, `when-authorized`, `always`.
    pub fn as_str(self) -> &'static str {
        match self {
            ShowDetails::Never => "never",
            ShowDetails::WhenAuthorized => "when-authorized",
            ShowDetails::Always => "always",
        }
    }
}

impl Serialize for ShowDetails {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

/// Reads Spring's values relaxed: `when-authorized`, `WHEN_AUTHORIZED`.
impl<'de> Deserialize<'de> for ShowDetails {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        let canonical = text.to_ascii_lowercase().replace(['-', '_'], "");
        match canonical.as_str() {
            "never" => Ok(ShowDetails::Never),
            "whenauthorized" => Ok(ShowDetails::WhenAuthorized),
            "always" => Ok(ShowDetails::Always),
            _ => Err(serde::de::Error::custom(format!(
                "`{text}` is not one of never, when-authorized, always"
            ))),
        }
    }
}

impl AppState {
    fn shows_health_details(&self, headers: &HeaderMap) -> bool {
        match self.show_details {
            ShowDetails::Never => false,
            ShowDetails::Always => true,
            ShowDetails::WhenAuthorized => self.auth.as_ref().is_none_or(|a| a.admits(headers)),
        }
    }
}

/// Health, with the registry and self-preservation state in plain words
/// for those who may see details.
pub(super) async fn health(
    State(state): State<AppState>,
    headers: HeaderMap,
) -> Json<serde_json::Value> {
    if !state.shows_health_details(&headers) {
        return Json(serde_json::json!({"status": "UP"}));
    }
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
pub(super) async fn prometheus(State(state): State<AppState>) -> impl IntoResponse {
    let uptime = u64::try_from(state.node.uptime_millis() / 1000).unwrap_or(0);
    let body = state.node.metrics().render(state.node.registry(), uptime);
    (
        [(
            header::CONTENT_TYPE,
            cloud_runtime::prometheus::CONTENT_TYPE,
        )],
        body,
    )
}
