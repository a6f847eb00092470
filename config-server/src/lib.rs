//! A Git-backed configuration server that speaks the Spring Cloud Config API.
//!
//! Services fetch their configuration per application, profile and label
//! (`GET /{application}/{profiles}[/{label}]`), receive `{cipher}` values
//! decrypted, and hear about changes through a watch stream instead of a
//! message bus. Git is read from a bare mirror, so labels never race and the
//! remote being down only means serving the last fetched commit (before a
//! first clone has succeeded, requests are answered 503 and the clone is
//! retried in the background). Health follows Spring Boot's liveness and
//! readiness groups.
//!
//! # Layout
//! - [`settings`]: the configuration struct with defaults and validation;
//!   [`settings::spring`]: the settings file with Spring Cloud Config
//!   Server's key names and the layering the binary uses.
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
//! - [`run`] / [`start`]: start the server on a listener. Serving, Basic
//!   auth, error bodies and the shutdown token come from `cloud-runtime`.
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

use circuit_breaker::retry::Backoff;
use cloud_runtime::auth::{BasicAuthLayer, Credentials};
use cloud_runtime::serve::ServeLimits;
use cloud_runtime::shutdown::{self, Shutdown};
use tokio::net::TcpListener;
use tokio::sync::Notify;
use tokio_util::sync::DropGuard;

use backend::git::{GitBackend, GitSettings};
use backend::native::NativeBackend;
use backend::{Backend, BackendError};
use environments::Environments;
use http::AppState;
use metrics::Metrics;
use repos::{Repositories, Repository};
pub use settings::Settings;

/// The realm named in the Basic auth challenge.
pub const AUTH_REALM: &str = "config-server";

/// Why the server could not start or stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    /// The settings are inconsistent.
    #[error(transparent)]
    Settings(#[from] settings::InvalidSettings),
    /// Neither a git URI nor native directories are configured and there is
    /// no `./config-repo`.
    #[error(
        "nothing to serve: set spring.cloud.config.server.git.uri (--git-uri) or \
         spring.cloud.config.server.native.search-locations (--native-dir), \
         or start in a directory that has ./config-repo"
    )]
    NoRepository,
    /// The backend could not be opened.
    #[error("backend: {0}")]
    Backend(#[from] BackendError),
    /// The encryption key could not be set up.
    #[error("encryption key: {0}")]
    Crypto(#[from] crypto::CryptoError),
    /// Opening the repositories panicked or was cancelled.
    #[error("opening the repositories failed: {0}")]
    Task(#[from] tokio::task::JoinError),
    /// Serving failed.
    #[error("serve: {0}")]
    Io(#[from] std::io::Error),
}

/// A started server: its state (for tests) and the handles to stop it.
/// Dropping it without calling [`Running::serve`] triggers its shutdown:
/// the refresher stops and watch streams end.
pub struct Running {
    /// The handler state, e.g. to trigger a refresh.
    pub state: AppState,
    limits: ServeLimits,
    _stop: DropGuard,
}

impl std::fmt::Debug for Running {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Running").finish_non_exhaustive()
    }
}

fn open_git(
    uri: &str,
    mirror_dir: Option<&std::path::Path>,
    settings: &Settings,
    credentials: Option<(String, String)>,
) -> Result<Arc<dyn Backend>, ServerError> {
    let mut git = GitSettings::new(uri);
    git.default_label = settings.default_label.clone();
    git.clone_on_start = settings.clone_on_start;
    git.credentials = credentials;
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
        let credentials = r.username.clone().zip(r.password.clone());
        let backend = open_git(&r.uri, r.mirror_dir.as_deref(), settings, credentials)?;
        others.push(Repository {
            patterns: r.pattern.clone(),
            ..Repository::new(r.name.clone(), backend, r.search_paths.clone())
        });
    }
    Ok(Repositories::new(default, others))
}

fn open_backend(settings: &Settings) -> Result<Arc<dyn Backend>, ServerError> {
    if let Some(uri) = &settings.git_uri {
        let credentials = settings
            .git_username
            .clone()
            .zip(settings.git_password.clone());
        return open_git(uri, settings.mirror_dir.as_deref(), settings, credentials);
    }
    let dirs = if settings.native_dirs.is_empty() {
        vec![Settings::local_repo().ok_or(ServerError::NoRepository)?]
    } else {
        settings.native_dirs.clone()
    };
    let shown: Vec<String> = dirs.iter().map(|d| d.display().to_string()).collect();
    tracing::info!(dirs = %shown.join(", "), "serving native directories");
    Ok(Arc::new(NativeBackend::new(dirs, &settings.default_label)?))
}

/// Opens the backend and builds the handler state, without serving, and
/// starts the background refresher (and the clone retries of a git
/// repository whose first clone failed). Dropping the result without
/// calling [`Running::serve`] stops them and ends watch streams.
pub async fn start(settings: Settings) -> Result<Running, ServerError> {
    settings.validate()?;
    let encryptor = match &settings.encrypt_key {
        Some(key) => Some(crypto::TextEncryptor::new(key, &settings.encrypt_salt)?),
        None => None,
    };
    let opened = settings.clone();
    let repos =
        shutdown::spawn_blocking("open repositories", move || open_repositories(&opened)).await??;
    let metrics = Arc::new(Metrics::default());
    let envs = Arc::new(
        Environments::new(repos, encryptor, metrics.clone())
            .with_limits(limits::Limits::from(&settings)),
    );
    let stop = Shutdown::new();
    let auth = settings
        .username
        .clone()
        .zip(settings.password.clone())
        .map(|(user, password)| {
            BasicAuthLayer::new(Credentials::new(user, password), AUTH_REALM)
                .exempt("/actuator/health")
        });
    let state = AppState {
        envs,
        metrics,
        refresh_now: Arc::new(Notify::new()),
        monitor_secret: settings.monitor_secret.clone(),
        auth,
        shutdown: stop.clone(),
    };
    let refresh_every =
        (settings.refresh_rate > 0).then(|| Duration::from_secs(settings.refresh_rate));
    tokio::spawn(refresher(state.clone(), refresh_every));
    if !state.envs.is_serving() {
        tokio::spawn(retry_first_clone(state.clone(), Backoff::default()));
    }
    Ok(Running {
        state,
        limits: settings.connection_limits.clone(),
        _stop: stop.token().clone().drop_guard(),
    })
}

/// Fetches on the refresh period and whenever a webhook asks; never on the
/// request path. Ends at shutdown.
async fn refresher(state: AppState, every: Option<Duration>) {
    loop {
        let tick = async {
            match every {
                Some(d) => tokio::time::sleep(d).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            () = tick => {}
            () = state.refresh_now.notified() => {}
            () = state.shutdown.triggered() => return,
        }
        if let Err(e) = state.envs.refresh().await {
            tracing::warn!(error = %e, "refresh failed; serving the last fetched version");
        }
    }
}

/// Retries the first clone of the repositories that have none, with
/// exponential backoff, until every one serves or the shutdown starts.
/// Requests are answered 503 and readiness is DOWN meanwhile (Spring's
/// default, `clone-on-start: false`).
async fn retry_first_clone(state: AppState, backoff: Backoff) {
    let mut attempt = 0u32;
    while !state.envs.is_serving() {
        attempt = attempt.saturating_add(1);
        let delay = backoff.delay(attempt, rand::random::<f64>());
        tokio::select! {
            () = tokio::time::sleep(delay) => {}
            () = state.shutdown.triggered() => return,
        }
        if let Err(e) = state.envs.refresh().await {
            tracing::warn!(
                attempt,
                error = %e,
                "first clone still failing; retrying with backoff"
            );
        }
    }
    tracing::info!(attempts = attempt, "every repository cloned; serving");
}

impl Running {
    /// Serves on `listener` with the configured connection limits until
    /// `shutdown` completes, then drains: watch streams and the refresher
    /// end, open connections get `server.drain-timeout` to finish.
    pub async fn serve(
        self,
        listener: TcpListener,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> Result<(), ServerError> {
        let Running {
            state,
            limits,
            _stop,
        } = self;
        let stop = state.shutdown.clone();
        tokio::spawn(async move {
            tokio::select! {
                () = shutdown => stop.trigger(),
                () = stop.triggered() => {}
            }
        });
        let token = state.shutdown.token().clone();
        let connections = Arc::clone(&state.metrics.connections);
        let router = http::app(state);
        match listener.local_addr() {
            Ok(addr) => tracing::info!(%addr, "config-server listening"),
            Err(e) => tracing::info!(error = %e, "config-server listening (address unknown)"),
        }
        cloud_runtime::serve::serve_with_stats(listener, router, &limits, token, connections)
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

/// Entry points for the fuzz targets under `fuzz/`: the parsers of outside
/// input, each under the server's default limits. Not a stable API.
#[doc(hidden)]
pub mod fuzzing {
    use std::borrow::Cow;
    use std::collections::HashMap;

    use crate::limits::Limits;
    use crate::resolve::placeholder::{self, Budget};

    /// Parses `.properties` text; the number of keys.
    pub fn properties(text: &str) -> usize {
        cloud_runtime::properties::parse(text).len()
    }

    /// Parses and flattens YAML documents; the number of documents, or
    /// `None` for YAML that is refused.
    pub fn yaml(text: &str) -> Option<usize> {
        crate::resolve::yaml::parse_documents(text)
            .ok()
            .map(|d| d.len())
    }

    /// Resolves the placeholders of `text` against `values` with the
    /// default budget; `Err` carries the refusal's message.
    pub fn placeholders(text: &str, values: &HashMap<String, String>) -> Result<String, String> {
        let lookup = |key: &str| values.get(key).map(|v| Cow::Borrowed(v.as_str()));
        let mut budget = Budget::new(&Limits::default());
        placeholder::resolve(text, &lookup, &mut budget).map_err(|e| e.to_string())
    }

    /// The limits the server starts with.
    pub fn default_limits() -> Limits {
        Limits::default()
    }
}
