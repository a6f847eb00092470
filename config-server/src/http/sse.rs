//! `GET /watch/{application}/{profiles}[/{label}]`: Server-Sent Events that
//! tell a client the moment its environment has new content.
//!
//! The stream follows the repository generation; after each change it
//! resolves the watched environment again (a cache hit when nothing moved)
//! and sends an event only when the digest of its property sources differs
//! from the last one sent.

use std::convert::Infallible;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use axum::extract::State;
use axum::http::{HeaderMap, Uri};
use axum::response::sse::{Event, KeepAlive, Sse};
use cloud_runtime::shutdown::{OpenWork, Shutdown};
use futures::Stream;
use serde_json::json;
use tokio::sync::watch;

use super::{AppError, Shared, check_target};
use crate::environments::{EnvRequest, Resolved};
use crate::metrics::Metrics;
use crate::paths::{self, ConfigPath, PathError};

/// One change notification on a watch stream.
fn change_event(r: &Resolved) -> Event {
    let data = json!({
        "name": r.env.name,
        "profiles": r.env.profiles,
        "label": r.env.label,
        "version": r.env.version,
        "digest": r.digest,
    });
    Event::default()
        .event("environment")
        .id(r.digest.clone())
        .data(data.to_string())
}

/// Decrements the watcher gauge when a stream is dropped.
struct WatcherGuard(Arc<Metrics>);

impl Drop for WatcherGuard {
    fn drop(&mut self) {
        self.0.watchers.fetch_sub(1, Ordering::Relaxed);
    }
}

struct WatchState {
    st: Shared,
    req: EnvRequest,
    generation: watch::Receiver<u64>,
    shutdown: Shutdown,
    pending: Option<Arc<Resolved>>,
    last_digest: Option<String>,
    _guard: WatcherGuard,
    /// Lists the stream in the drain log while it is open.
    _open: OpenWork,
}

/// `GET /watch/{app}/{profiles}[/{label}]`: Server-Sent Events. The first
/// event carries the current version; another follows each time the
/// environment's content changes. `Last-Event-ID` (the digest) skips the
/// first event when the client already has that content.
pub(super) async fn watch_env(
    State(st): State<Shared>,
    uri: Uri,
    headers: HeaderMap,
) -> Result<Sse<impl Stream<Item = Result<Event, Infallible>>>, AppError> {
    check_target(&uri)?;
    let rest = uri.path().strip_prefix("/watch").unwrap_or("");
    let req = match paths::parse(rest)? {
        ConfigPath::Environment(req) => req,
        _ => return Err(PathError::NotFound.into()),
    };
    let generation = st.envs.subscribe();
    let first = st.envs.get(&req).await?;
    let last_digest = headers
        .get("last-event-id")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    st.metrics.watchers.fetch_add(1, Ordering::Relaxed);
    let state = WatchState {
        shutdown: st.shutdown.clone(),
        _guard: WatcherGuard(st.metrics.clone()),
        _open: OpenWork::begin("watch stream", uri.path()),
        st,
        req,
        generation,
        pending: Some(first),
        last_digest,
    };
    let stream = futures::stream::unfold(state, |mut s| async move {
        loop {
            if let Some(r) = s.pending.take()
                && s.last_digest.as_deref() != Some(r.digest.as_str())
            {
                s.last_digest = Some(r.digest.clone());
                s.st.metrics.watch_events.fetch_add(1, Ordering::Relaxed);
                return Some((Ok(change_event(&r)), s));
            }
            if s.shutdown.is_triggered() {
                return None;
            }
            tokio::select! {
                changed = s.generation.changed() => {
                    if changed.is_err() {
                        return None;
                    }
                }
                () = s.shutdown.triggered() => return None,
            }
            match s.st.envs.get(&s.req).await {
                Ok(r) => s.pending = Some(r),
                Err(e) => tracing::warn!(error = %e, "watch: could not resolve"),
            }
        }
    });
    Ok(Sse::new(stream).keep_alive(KeepAlive::new().interval(Duration::from_secs(15))))
}
