//! The settings file, read again when it changes: every
//! `spring.cloud.gateway.reload.interval` (5 s) its bytes are compared with
//! the last ones read; when they differ the gateway refreshes, the same
//! atomic table swap as `POST /actuator/gateway/refresh` (requests in flight
//! finish on the table they started with). A file that does not load is
//! logged and the old routes stay; the next change is tried again. Polling
//! rather than inotify, so that edits through a symlink swap (Kubernetes
//! ConfigMaps) are seen too.

use std::time::Duration;

use tokio::time::MissedTickBehavior;
use tokio_util::sync::CancellationToken;

use crate::gateway::Gateway;

/// Reads the settings file as it is now, the first state
/// [`watch_settings_file`] compares with: read before serving starts, so
/// that a change made once the gateway answers is never taken for the
/// starting state.
pub async fn current_bytes(gateway: &Gateway) -> Option<Vec<u8>> {
    tokio::fs::read(gateway.file()?).await.ok()
}

/// Watches the gateway's settings file until `shutdown`, starting from
/// `last` (see [`current_bytes`]); returns at once when there is no file or
/// the interval is zero.
pub async fn watch_settings_file(
    gateway: Gateway,
    mut last: Option<Vec<u8>>,
    shutdown: CancellationToken,
) {
    let Some(path) = gateway.file() else {
        return;
    };
    let every = gateway.settings().spring.cloud.gateway.reload.interval;
    if every == Duration::ZERO {
        return;
    }
    let mut ticks = tokio::time::interval(every);
    ticks.set_missed_tick_behavior(MissedTickBehavior::Skip);
    ticks.tick().await;
    let mut unreadable = false;
    loop {
        tokio::select! {
            () = shutdown.cancelled() => return,
            _ = ticks.tick() => {}
        }
        let now = match tokio::fs::read(&path).await {
            Ok(bytes) => {
                unreadable = false;
                Some(bytes)
            }
            Err(e) => {
                if !unreadable {
                    tracing::warn!(file = %path.display(), error = %e, "settings file cannot be read; the routes stay as they are");
                }
                unreadable = true;
                continue;
            }
        };
        if now == last {
            continue;
        }
        last = now;
        let refreshed = gateway.refresh().await;
        gateway.metrics().record_reload(refreshed.is_ok());
        match refreshed {
            Ok(routes) => {
                tracing::info!(file = %path.display(), routes, "settings file changed; routes reloaded");
            }
            Err(e) => {
                tracing::warn!(file = %path.display(), error = %e, "settings file changed but does not load; the old routes stay");
            }
        }
    }
}
