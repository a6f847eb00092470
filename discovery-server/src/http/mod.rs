//! The HTTP layer: Eureka's REST API under `/eureka/` and `/eureka/v2/`,
//! the watch endpoints, actuator and dashboard, as one `axum` router.
//!
//! Middleware, outermost first: request body limit -> Basic auth (API and
//! dashboard only; health and metrics stay open) -> handler.

mod auth;
mod cache;
mod error;
mod negotiate;
mod reads;
mod writes;

use std::sync::Arc;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::middleware;
use axum::routing::{get, put};

pub use error::AppError;
pub use writes::REPLICATION_HEADER;

pub(crate) use negotiate::inflate_body;

use crate::node::Node;
use crate::{actuator, dashboard, watch};

/// What handlers share.
#[derive(Clone)]
pub struct AppState {
    /// The node.
    pub node: Arc<Node>,
    cache: Arc<cache::ResponseCache>,
}

impl AppState {
    /// State for a node.
    pub fn new(node: Arc<Node>) -> AppState {
        AppState {
            node,
            cache: Arc::new(cache::ResponseCache::default()),
        }
    }
}

/// The Eureka API routes (mounted under `/eureka` and `/eureka/v2`).
/// Replication adds `/peerreplication/batch` beside them. Every path also
/// answers with a trailing slash, as Jersey does for Eureka (the Java client
/// asks for `apps/`).
pub fn eureka_api() -> Router<AppState> {
    [
        ("/apps", get(reads::all)),
        ("/apps/delta", get(reads::delta)),
        (
            "/apps/{app}",
            get(reads::application).post(writes::register),
        ),
        (
            "/apps/{app}/{id}",
            get(reads::app_instance)
                .put(writes::renew)
                .delete(writes::cancel),
        ),
        (
            "/apps/{app}/{id}/status",
            put(writes::set_status).delete(writes::delete_status),
        ),
        ("/apps/{app}/{id}/metadata", put(writes::metadata)),
        ("/instances/{id}", get(reads::instance)),
        ("/vips/{vip}", get(reads::vip)),
        ("/svips/{svip}", get(reads::svip)),
        ("/watch", get(watch::stream)),
        ("/watch/version", get(watch::long_poll)),
    ]
    .into_iter()
    .fold(Router::new(), |router, (path, handler)| {
        router
            .route(&format!("{path}/"), handler.clone())
            .route(path, handler)
    })
}

/// The whole application, given extra routes for the Eureka API (pass
/// `Router::new()` when there are none).
pub fn app_with(state: AppState, extra_api: Router<AppState>) -> Router {
    let api = eureka_api().merge(extra_api);
    let mut guarded = Router::new()
        .nest("/eureka", api.clone())
        .nest("/eureka/v2", api)
        .route("/", get(dashboard::page));
    // Without credentials configured, no auth layer at all: renewals are
    // the hot path.
    if state.node.config().basic_auth.is_some() {
        guarded = guarded.route_layer(middleware::from_fn_with_state(
            state.clone(),
            auth::require_basic_auth,
        ));
    }
    let limit = state.node.config().max_body_bytes;
    Router::new()
        .merge(guarded)
        .route("/actuator/health", get(actuator::health))
        .route("/actuator/prometheus", get(actuator::prometheus))
        .layer(DefaultBodyLimit::max(limit))
        .with_state(state)
}

/// The whole application.
pub fn app(state: AppState) -> Router {
    app_with(state, Router::new())
}

#[cfg(test)]
mod tests;

#[cfg(test)]
mod compat_tests;
