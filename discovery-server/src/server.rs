//! Starting the server: a [`Server`] owns a node, serves its router on a
//! listener and runs the eviction timer and peer replication until
//! shutdown.

use std::future::Future;
use std::sync::Arc;

use axum::Router;
use axum::serve::ListenerExt as _;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::clock::{SharedClock, TokioClock};
use crate::config::ServerConfig;
use crate::eviction;
use crate::http::{self, AppState};
use crate::node::Node;
use crate::replication::Replication;

/// A discovery server ready to serve.
#[derive(Debug, Clone)]
pub struct Server {
    node: Arc<Node>,
    replication: Replication,
}

impl Server {
    /// A server with the real clock.
    pub fn new(config: ServerConfig) -> Server {
        Server::with_clock(config, Arc::new(TokioClock::new()))
    }

    /// A server with the given clock.
    pub fn with_clock(config: ServerConfig, clock: SharedClock) -> Server {
        let node = Arc::new(Node::new(config, clock));
        let replication = Replication::new(Arc::clone(&node));
        Server { node, replication }
    }

    /// The node: its registry, metrics and event sinks.
    pub fn node(&self) -> &Arc<Node> {
        &self.node
    }

    /// The router (for in-process tests with `tower::ServiceExt::oneshot`).
    pub fn router(&self) -> Router {
        http::app_with(AppState::new(Arc::clone(&self.node)), Replication::routes())
    }

    /// Peer replication of this node.
    pub fn replication(&self) -> &Replication {
        &self.replication
    }

    /// Serves `router` (usually [`Server::router`], or one with extra
    /// routes from [`http::app_with`]) on `listener` and runs the eviction
    /// timer and peer replication, until `shutdown` completes; then
    /// finishes in-flight requests. With peers, registry reads wait until
    /// the registry has been copied from one of them.
    pub async fn serve_router(
        self,
        listener: TcpListener,
        router: Router,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> std::io::Result<()> {
        let stop = CancellationToken::new();
        let evictor = tokio::spawn(eviction::run(Arc::clone(&self.node), stop.clone()));
        let replicator = tokio::spawn({
            let (replication, stop) = (self.replication.clone(), stop.clone());
            async move { replication.run(stop).await }
        });
        let router = self.replication.guard_reads(router);
        if let Ok(addr) = listener.local_addr() {
            tracing::info!(%addr, "discovery server listening");
        }
        // Small request/response pairs: never wait on Nagle's algorithm.
        let listener = listener.tap_io(|tcp| {
            if let Err(e) = tcp.set_nodelay(true) {
                tracing::debug!(error = %e, "TCP_NODELAY not set");
            }
        });
        let result = axum::serve(listener, router)
            .with_graceful_shutdown(shutdown)
            .await;
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
    Server::new(config).serve(listener, shutdown).await
}
