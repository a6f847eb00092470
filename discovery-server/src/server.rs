//! Starting the server: the one place that reads the whole
//! [`ServerConfig`] and wires the parts. A [`Server`] owns a node, its peer
//! replication and HTTP state, and a shutdown token; it serves its router
//! on a listener (with connection limits) and runs the eviction timer and
//! peer replication until shutdown.
//!
//! Module arrows point down: `server` -> {`http`, `replication`,
//! `eviction`} -> `node` -> `registry` (`http` also uses replication's
//! header constant and serves its batch endpoint through
//! [`PeerApi`](crate::replication::PeerApi); `replication` never imports
//! `http`).

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use cloud_runtime::auth::Credentials;
use cloud_runtime::clock::{SharedClock, TokioClock};
use cloud_runtime::serve::{self, ServeLimits};
use cloud_runtime::shutdown::Shutdown;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::config::ServerConfig;
use crate::eviction;
use crate::http::{self, AppState, HttpSettings};
use crate::node::Node;
use crate::replication::{ClientError, Replication};

/// A discovery server ready to serve.
#[derive(Clone)]
pub struct Server {
    node: Arc<Node>,
    replication: Replication,
    state: AppState,
    eviction_interval: Duration,
    limits: ServeLimits,
    shutdown: Shutdown,
}

impl std::fmt::Debug for Server {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Server")
            .field("node", &self.node)
            .field("replication", &self.replication)
            .field("limits", &self.limits)
            .finish_non_exhaustive()
    }
}

impl Server {
    /// A server with the real clock. Fails only when the peer replication
    /// HTTP client cannot be built.
    pub fn new(config: ServerConfig) -> Result<Server, ClientError> {
        Server::with_clock(config, Arc::new(TokioClock::new()))
    }

    /// A server with the given clock.
    pub fn with_clock(config: ServerConfig, clock: SharedClock) -> Result<Server, ClientError> {
        let node = Arc::new(Node::new(config.registry.clone(), clock));
        node.registry().set_limits(config.input_limits);
        let replication =
            Replication::new(Arc::clone(&node), &config.peers, config.replication.clone())?;
        let shutdown = Shutdown::new();
        let http_settings = HttpSettings {
            max_body_bytes: config.max_body_bytes,
            credentials: config
                .basic_auth
                .map(|a| Credentials::new(a.username, a.password)),
            show_details: config.show_details,
        };
        let state = AppState::new(Arc::clone(&node), http_settings, shutdown.clone());
        Ok(Server {
            node,
            replication,
            state,
            eviction_interval: config.eviction_interval,
            limits: config.limits,
            shutdown,
        })
    }

    /// The node: its registry, metrics and event sinks.
    pub fn node(&self) -> &Arc<Node> {
        &self.node
    }

    /// The router (for in-process tests with `tower::ServiceExt::oneshot`).
    pub fn router(&self) -> Router {
        http::app_with(self.state.clone(), Replication::routes::<AppState>())
    }

    /// The state the router's handlers share (to build a router with extra
    /// routes through [`http::app_with`]).
    pub fn state(&self) -> &AppState {
        &self.state
    }

    /// Peer replication of this node.
    pub fn replication(&self) -> &Replication {
        &self.replication
    }

    /// The server's shutdown: triggering it ends watch streams and long
    /// polls and stops serving.
    pub fn shutdown(&self) -> &Shutdown {
        &self.shutdown
    }

    /// Serves `router` (usually [`Server::router`], or one with extra
    /// routes from [`http::app_with`]) on `listener` with the configured
    /// connection limits, and runs the eviction timer and peer replication,
    /// until `shutdown` completes (or [`Server::shutdown`] is triggered);
    /// then ends watch streams and long polls, finishes in-flight requests
    /// and flushes the replication queues. With peers, registry reads wait
    /// until the registry has been copied from one of them.
    pub async fn serve_router(
        self,
        listener: TcpListener,
        router: Router,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> std::io::Result<()> {
        let signal = Shutdown::from_future(shutdown);
        let own = self.shutdown.clone();
        let linked = tokio::spawn(async move {
            tokio::select! {
                () = signal.triggered() => own.trigger(),
                () = own.triggered() => {}
            }
        });
        let local = listener.local_addr()?;
        let stop = CancellationToken::new();
        let evictor = tokio::spawn(eviction::run(
            Arc::clone(&self.node),
            self.eviction_interval,
            stop.clone(),
        ));
        let replicator = tokio::spawn({
            let (replication, stop) = (self.replication.clone(), stop.clone());
            async move {
                replication.recognise_self(local).await;
                replication.run(stop).await;
            }
        });
        let router = self.replication.guard_reads(router);
        tracing::info!(addr = %local, "discovery server listening");
        let result = serve::serve_with_stats(
            listener,
            router,
            &self.limits,
            self.shutdown.token().clone(),
            Arc::clone(&self.node.metrics().connections),
        )
        .await;
        self.shutdown.trigger();
        linked.abort();
        stop.cancel();
        let _ = evictor.await;
        let _ = replicator.await;
        tracing::info!("discovery server stopped");
        result
    }

    /// Serves the standard router on `listener` until `shutdown` completes.
    pub async fn serve(
        self,
        listener: TcpListener,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> std::io::Result<()> {
        let router = self.router();
        self.serve_router(listener, router, shutdown).await
    }
}

/// Runs a discovery server with `config` on `listener` until `shutdown`.
pub async fn run(
    listener: TcpListener,
    config: ServerConfig,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    Server::new(config)
        .map_err(std::io::Error::other)?
        .serve(listener, shutdown)
        .await
}
