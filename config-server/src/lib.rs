//! A Git-backed configuration server that speaks the Spring Cloud Config API.
//!
//! Services fetch their configuration per application, profile and label
//! (`GET /{application}/{profiles}[/{label}]`), receive `{cipher}` values
//! decrypted, and hear about changes through a watch stream instead of a
//! message bus. Git is read from a bare mirror, so labels never race and the
//! remote being down only means serving the last fetched commit.
//!
//! # Layout
//! - [`settings`]: the configuration struct with defaults and validation.
//! - [`backend`]: where files come from; [`backend::git`] (bare mirror,
//!   `cat-file` readers, background fetch) and [`backend::native`]
//!   (directories).
//! - [`resolve`]: which files apply in which order; YAML and `.properties`
//!   parsing, flattening, profile-activated documents, placeholders.
//! - [`render`]: merged `.json` / `.yml` / `.properties` views.
//! - [`crypto`]: Spring-compatible `{cipher}` encryption.
//! - [`environments`]: the resolved-environment cache and refresh generation.
//! - [`repos`]: several repositories chosen by `application/profile` patterns.
//! - [`paths`]: request path parsing and path-traversal rejection.
//! - [`monitor`]: webhook payloads and signatures.
//! - [`limits`]: the bounds on the work one request may cause.
//! - [`http`]: the axum router and handlers (the SSE watch stream in
//!   `http/sse.rs`); [`metrics`]: Prometheus counters.
//! - [`run`] / [`start`]: start the server on a listener.
//!
//! # Example
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use config_server::{Settings, run};
//! let settings = Settings {
//!     native_dirs: vec!["config-repo".into()],
//!     ..Settings::default()
//! };
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
//! run(listener, settings, async { let _ = tokio::signal::ctrl_c().await; }).await?;
//! # Ok(()) }
//! ```
//!
//! A complete program that embeds the server, fetches `/foo/dev` and shuts
//! down: `examples/embedded.rs` (`cargo run -p config-server --example embedded`).
//!
//! A runnable check of the pure core:
//! ```
//! let names = config_server::resolve::candidate_names(
//!     &["foo".to_string()],
//!     &["dev".to_string(), "mysql".to_string()],
//! );
//! assert_eq!(names, ["foo-mysql", "application-mysql", "foo-dev", "application-dev", "foo", "application"]);
//! ```

pub mod backend;
pub mod crypto;
pub mod environments;
pub mod http;
pub mod limits;
pub mod metrics;
pub mod monitor;
pub mod paths;
pub mod render;
pub mod repos;
pub mod resolve;
pub mod settings;

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::{Notify, watch};

use backend::git::{GitBackend, GitSettings};
use backend::native::NativeBackend;
use backend::{Backend, BackendError};
use environments::Environments;
use http::AppState;
use metrics::Metrics;
use repos::{Repositories, Repository};
pub use settings::Settings;

/// Why the server could not start or stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    /// The settings are inconsistent.
    #[error(transparent)]
    Settings(#[from] settings::InvalidSettings),
    /// The backend could not be opened.
    #[error("backend: {0}")]
    Backend(#[from] BackendError),
    /// The encryption key could not be set up.
    #[error("encryption key: {0}")]
    Crypto(#[from] crypto::CryptoError),
    /// Serving failed.
    #[error("serve: {0}")]
    Io(#[from] std::io::Error),
}

/// A started server: its state (for tests) and the handles to stop it.
pub struct Running {
    /// The handler state, e.g. to trigger a refresh.
    pub state: AppState,
    shutdown_tx: watch::Sender<bool>,
}

impl std::fmt::Debug for Running {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Running").finish_non_exhaustive()
    }
}

fn open_git(
    uri: &str,
    mirror_dir: Option<&std::path::Path>,
    default_label: &str,
) -> Result<Arc<dyn Backend>, ServerError> {
    let mut git = GitSettings::new(uri);
    git.default_label = default_label.to_string();
    if let Some(dir) = mirror_dir {
        git.mirror_dir = dir.to_path_buf();
    }
    tracing::info!(uri = %backend::git::redact(uri), mirror = %git.mirror_dir.display(), "serving git");
    Ok(Arc::new(GitBackend::open(git)?))
}

fn open_repositories(settings: &Settings) -> Result<Repositories, ServerError> {
    let default = Repository::new(
        "default",
        open_backend(settings)?,
        settings.search_paths.clone(),
    );
    let mut others = Vec::new();
    for r in &settings.repos {
        let backend = open_git(&r.uri, r.mirror_dir.as_deref(), &settings.default_label)?;
        others.push(Repository {
            patterns: r.pattern.clone(),
            ..Repository::new(r.name.clone(), backend, r.search_paths.clone())
        });
    }
    Ok(Repositories::new(default, others))
}

fn open_backend(settings: &Settings) -> Result<Arc<dyn Backend>, ServerError> {
    if let Some(uri) = &settings.git_uri {
        return open_git(uri, settings.mirror_dir.as_deref(), &settings.default_label);
    }
    let dirs = if settings.native_dirs.is_empty() {
        vec![Settings::sample_repo()]
    } else {
        settings.native_dirs.clone()
    };
    tracing::info!(?dirs, "serving native directories");
    Ok(Arc::new(NativeBackend::new(dirs, &settings.default_label)?))
}

/// Opens the backend and builds the handler state, without serving, and
/// starts the background refresher. Dropping the result without calling
/// [`Running::serve`] stops the refresher and ends watch streams.
pub async fn start(settings: Settings) -> Result<Running, ServerError> {
    settings.validate()?;
    let encryptor = match &settings.encrypt_key {
        Some(key) => Some(crypto::TextEncryptor::new(key, &settings.encrypt_salt)?),
        None => None,
    };
    let opened = settings.clone();
    let repos = tokio::task::spawn_blocking(move || open_repositories(&opened))
        .await
        .map_err(|e| std::io::Error::other(e.to_string()))??;
    let metrics = Arc::new(Metrics::default());
    let envs = Arc::new(
        Environments::new(repos, encryptor, metrics.clone())
            .with_limits(limits::Limits::from(&settings)),
    );
    let (shutdown_tx, shutdown_rx) = watch::channel(false);
    let state = AppState {
        envs,
        metrics,
        refresh_now: Arc::new(Notify::new()),
        monitor_secret: settings.monitor_secret.clone(),
        basic_auth: settings.username.clone().zip(settings.password.clone()),
        shutdown: shutdown_rx,
    };
    let refresh_every =
        (settings.refresh_rate > 0).then(|| Duration::from_secs(settings.refresh_rate));
    tokio::spawn(refresher(state.clone(), refresh_every));
    Ok(Running { state, shutdown_tx })
}

/// Fetches on the refresh period and whenever a webhook asks; never on the
/// request path. Ends at shutdown.
async fn refresher(state: AppState, every: Option<Duration>) {
    let mut shutdown = state.shutdown.clone();
    loop {
        let tick = async {
            match every {
                Some(d) => tokio::time::sleep(d).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            _ = tick => {}
            _ = state.refresh_now.notified() => {}
            _ = shutdown.changed() => return,
        }
        if let Err(e) = state.envs.refresh().await {
            tracing::warn!(error = %e, "refresh failed; serving the last fetched version");
        }
    }
}

impl Running {
    /// Serves on `listener` until `shutdown` completes, then drains.
    pub async fn serve(
        self,
        listener: TcpListener,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> Result<(), ServerError> {
        let router = http::app(self.state.clone());
        let tx = self.shutdown_tx;
        tracing::info!(addr = ?listener.local_addr().ok(), "config-server listening");
        // Answers are single small writes: send them at once (like nginx's
        // `tcp_nodelay`), never held back by Nagle's algorithm.
        let listener = axum::serve::ListenerExt::tap_io(listener, |tcp| {
            if let Err(e) = tcp.set_nodelay(true) {
                tracing::debug!(error = %e, "could not set TCP_NODELAY");
            }
        });
        axum::serve(listener, router)
            .with_graceful_shutdown(async move {
                shutdown.await;
                // Ends watch streams and the refresher so the drain finishes.
                let _ = tx.send(true);
            })
            .await?;
        Ok(())
    }
}

/// Starts the server on `listener` and serves until `shutdown` completes.
pub async fn run(
    listener: TcpListener,
    settings: Settings,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), ServerError> {
    start(settings).await?.serve(listener, shutdown).await
}
