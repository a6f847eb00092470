//! The HTTP layer: Eureka's REST API under `/eureka/` and `/eureka/v2/`,
//! the watch endpoints, actuator and dashboard, as one `axum` router.
//!
//! Middleware, outermost first: Basic auth (when credentials are
//! configured; `/actuator/health` and its children stay open) -> request
//! body limit -> handler.
//!
//! # Layout
//! - `reads`, `writes`, `negotiate`, `cache`, `error`: the Eureka API.
//! - `watch`: Server-Sent Events and long poll on the registry version.
//! - `dashboard`: `/`. `actuator`: `/actuator/health`,
//!   `/actuator/prometheus`.

mod actuator;
mod cache;
mod dashboard;
mod error;
mod negotiate;
mod reads;
mod watch;
mod writes;

use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::DefaultBodyLimit;
use axum::http::HeaderMap;
use axum::routing::{get, put};
use cloud_runtime::auth::{BasicAuthLayer, Credentials};
use cloud_runtime::shutdown::Shutdown;

pub use actuator::ShowDetails;
pub use error::AppError;

use crate::node::Node;
use crate::replication::PeerApi;

/// What the HTTP layer is configured with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpSettings {
    /// Largest request body accepted. Default is 1 MiB.
    pub max_body_bytes: usize,
    /// Credentials required on everything but `/actuator/health`; none by
    /// default.
    pub credentials: Option<Credentials>,
    /// Who sees the details of `/actuator/health`. Default is
    /// when-authorized.
    pub show_details: ShowDetails,
}

impl Default for HttpSettings {
    fn default() -> Self {
        HttpSettings {
            max_body_bytes: 1 << 20,
            credentials: None,
            show_details: ShowDetails::default(),
        }
    }
}

/// What handlers share.
#[derive(Clone)]
pub struct AppState {
    /// The node.
    pub node: Arc<Node>,
    cache: Arc<cache::ResponseCache>,
    max_body_bytes: usize,
    show_details: ShowDetails,
    auth: Option<BasicAuthLayer>,
    shutdown: Shutdown,
}

impl AppState {
    /// State for a node; watch streams and long polls end when `shutdown`
    /// is triggered.
    pub fn new(node: Arc<Node>, settings: HttpSettings, shutdown: Shutdown) -> AppState {
        AppState {
            node,
            cache: Arc::new(cache::ResponseCache::default()),
            max_body_bytes: settings.max_body_bytes,
            show_details: settings.show_details,
            auth: settings
                .credentials
                .map(|c| BasicAuthLayer::new(c, "eureka").exempt("/actuator/health")),
            shutdown,
        }
    }

    /// Largest request body accepted.
    pub(crate) fn max_body_bytes(&self) -> usize {
        self.max_body_bytes
    }
}

impl PeerApi for AppState {
    type Rejection = AppError;

    fn node(&self) -> &Arc<Node> {
        &self.node
    }

    fn decode_body(&self, headers: &HeaderMap, body: Bytes) -> Result<Bytes, AppError> {
        // A batch carries many registrations: allow eight bodies' worth.
        negotiate::inflate_body(headers, body, self.max_body_bytes * 8)
    }

    fn bad_request(&self, reason: String) -> AppError {
        AppError::BadRequest(reason)
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
    let limit = state.max_body_bytes;
    let auth = state.auth.clone();
    let router = Router::new()
        .nest("/eureka", api.clone())
        .nest("/eureka/v2", api)
        .route("/", get(dashboard::page))
        .route("/actuator/health", get(actuator::health))
        .route("/actuator/health/{*component}", get(actuator::health))
        .route("/actuator/prometheus", get(actuator::prometheus))
        .layer(DefaultBodyLimit::max(limit))
        .layer(axum::middleware::from_fn(error::spring_not_found))
        .with_state(state);
    // Without credentials configured, no auth layer at all: renewals are
    // the hot path.
    match auth {
        Some(auth) => router.layer(auth),
        None => router,
    }
}

/// The whole application.
pub fn app(state: AppState) -> Router {
    app_with(state, Router::new())
}

#[cfg(test)]
mod tests;

#[cfg(test)]
mod compat_tests;
