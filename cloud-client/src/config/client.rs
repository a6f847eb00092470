//! [`ConfigClient`]: fetches the environment from the config server at
//! start, layers it between local files and environment variables, and
//! keeps a typed snapshot ([`LiveConfig`]) fresh from the server's change
//! stream or, when the server has none, by polling the version.

use std::marker::PhantomData;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use cloud_protocol::config::Environment;
use reqwest::StatusCode;
use serde::de::DeserializeOwned;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use super::properties::{
    DeserializeError, Properties, Undecryptable, changed_keys, deserialize, layer, merge_sources,
};
use crate::settings::{ClientSettings, ConfigImport, SettingsError};
use crate::sse::{self, StreamEnd};

/// The boxed cause of a fetch error.
type Cause = Box<dyn std::error::Error + Send + Sync + 'static>;

/// One config server did not give the environment.
#[derive(Debug, thiserror::Error)]
#[error("config server {server}: {source}")]
pub struct FetchError {
    server: String,
    #[source]
    source: Cause,
}

impl FetchError {
    fn new(server: &ConfigImport, source: impl Into<Cause>) -> Self {
        FetchError {
            server: server.url.to_string(),
            source: source.into(),
        }
    }
}

/// Why configuration could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// A setting is wrong.
    #[error(transparent)]
    Settings(#[from] SettingsError),
    /// The server could not be reached or answered wrongly, and
    /// `fail-fast` is on or the import is not `optional:`.
    #[error("configuration could not be fetched (fail-fast or non-optional import)")]
    Unavailable(#[source] FetchError),
    /// Some values could not be decrypted.
    #[error(transparent)]
    Undecryptable(#[from] Undecryptable),
    /// The properties do not fit the application's type.
    #[error(transparent)]
    Deserialize(#[from] DeserializeError),
    /// The HTTP client could not be built.
    #[error("config HTTP client: {0}")]
    Http(#[source] Cause),
}

/// A typed configuration and what the last refresh changed.
#[derive(Debug)]
pub struct ConfigSnapshot<T> {
    /// The configuration.
    pub value: Arc<T>,
    /// The merged properties it was read from.
    pub properties: Arc<Properties>,
    /// Keys that differ from the previous snapshot (empty for the first).
    pub changed_keys: Arc<[String]>,
    /// The server's version (the git commit), when it was reached.
    pub version: Option<String>,
    /// Whether the server's properties are in it (false when starting
    /// without the server; a cached copy counts as in).
    pub from_server: bool,
}

impl<T> Clone for ConfigSnapshot<T> {
    fn clone(&self) -> Self {
        ConfigSnapshot {
            value: Arc::clone(&self.value),
            properties: Arc::clone(&self.properties),
            changed_keys: Arc::clone(&self.changed_keys),
            version: self.version.clone(),
            from_server: self.from_server,
        }
    }
}

/// Fetches environments from the config servers of `spring.config.import`.
#[derive(Debug, Clone)]
pub struct ConfigClient {
    client: reqwest::Client,
    stream_client: reqwest::Client,
    servers: Vec<ConfigImport>,
    name: String,
    profiles: String,
    label: Option<String>,
    fail_fast: bool,
    cache_file: Option<PathBuf>,
    credentials: Option<(String, String)>,
    watch_enabled: bool,
    watch_delay: Duration,
}

/// What the client got at start.
struct Loaded {
    remote: Properties,
    version: Option<String>,
    from_server: bool,
}

impl ConfigClient {
    /// A client for the application, profiles, label and servers in
    /// `settings`.
    pub fn new(settings: &ClientSettings) -> Result<ConfigClient, ConfigError> {
        let c = &settings.spring.cloud.config;
        let servers = if c.enabled {
            settings.config_imports()?
        } else {
            Vec::new()
        };
        let client = reqwest::Client::builder()
            .connect_timeout(Duration::from_millis(c.request_connect_timeout))
            .timeout(Duration::from_millis(c.request_read_timeout))
            .build()
            .map_err(|e| ConfigError::Http(e.into()))?;
        let stream_client = reqwest::Client::builder()
            .connect_timeout(Duration::from_millis(c.request_connect_timeout))
            .read_timeout(Duration::from_secs(45))
            .build()
            .map_err(|e| ConfigError::Http(e.into()))?;
        let credentials = c
            .username
            .clone()
            .map(|u| (u, c.password.clone().unwrap_or_default()));
        Ok(ConfigClient {
            client,
            stream_client,
            servers,
            name: settings.application_name().to_owned(),
            profiles: settings.active_profiles().join(","),
            label: c.label.clone(),
            fail_fast: c.fail_fast,
            cache_file: c.cache_file.as_ref().map(PathBuf::from),
            credentials,
            watch_enabled: c.watch.enabled,
            watch_delay: Duration::from_millis(c.watch.delay.max(100)),
        })
    }

    /// Whether any config server is configured.
    pub fn has_server(&self) -> bool {
        !self.servers.is_empty()
    }

    /// `{base}{prefix}{name}/{profiles}[/{label}]`, each part encoded;
    /// a `/` in the label is written `(_)`, as Spring does.
    fn url(&self, server: &ConfigImport, prefix: &[&str]) -> Result<reqwest::Url, Cause> {
        let mut url = server.url.base.clone();
        {
            let mut segs = url
                .path_segments_mut()
                .map_err(|()| "the server URL cannot have a path")?;
            segs.pop_if_empty();
            segs.extend(prefix);
            segs.push(&self.name);
            segs.push(&self.profiles);
            if let Some(label) = &self.label {
                segs.push(&label.replace('/', "(_)"));
            }
        }
        Ok(url)
    }

    fn authorize(
        &self,
        server: &ConfigImport,
        req: reqwest::RequestBuilder,
    ) -> reqwest::RequestBuilder {
        match self
            .credentials
            .as_ref()
            .or(server.url.credentials.as_ref())
        {
            Some((user, pass)) => req.basic_auth(user, Some(pass)),
            None => req,
        }
    }

    async fn fetch_from(&self, server: &ConfigImport) -> Result<Environment, FetchError> {
        let url = self
            .url(server, &[])
            .map_err(|e| FetchError::new(server, e))?;
        let req = self.authorize(
            server,
            self.client.get(url).header("Accept", "application/json"),
        );
        let resp = req.send().await.map_err(|e| FetchError::new(server, e))?;
        let status = resp.status();
        if !status.is_success() {
            return Err(FetchError::new(server, UnexpectedStatus(status)));
        }
        resp.json::<Environment>()
            .await
            .map_err(|e| FetchError::new(server, e))
    }

    /// Fetches the environment from the first server that gives it.
    pub async fn fetch(&self) -> Result<Environment, FetchError> {
        let mut last = None;
        for server in &self.servers {
            match self.fetch_from(server).await {
                Ok(env) => return Ok(env),
                Err(e) => {
                    tracing::debug!(error = %e, "config server failed; trying the next");
                    last = Some(e);
                }
            }
        }
        Err(last.unwrap_or_else(|| FetchError {
            server: "(none)".into(),
            source: "no config server configured".into(),
        }))
    }

    /// The start-up fetch: the server's properties, or, when it cannot be
    /// reached and neither `fail-fast` nor a non-optional import forbids
    /// it, the cached copy (or nothing).
    async fn load(&self) -> Result<Loaded, ConfigError> {
        if self.servers.is_empty() {
            return Ok(Loaded {
                remote: Properties::new(),
                version: None,
                from_server: false,
            });
        }
        match self.fetch().await {
            Ok(env) => {
                let remote = merge_sources(&env)?;
                self.save_cache(&env).await;
                Ok(Loaded {
                    remote,
                    version: env.version,
                    from_server: true,
                })
            }
            Err(e) => {
                let required = self.fail_fast || self.servers.iter().any(|s| !s.optional);
                if required {
                    return Err(ConfigError::Unavailable(e));
                }
                tracing::warn!(error = %e, "config server unavailable; starting from local configuration");
                match self.read_cache().await {
                    Some(env) => {
                        tracing::info!(version = ?env.version, "using the cached copy of the configuration");
                        Ok(Loaded {
                            remote: merge_sources(&env)?,
                            version: env.version,
                            from_server: true,
                        })
                    }
                    None => Ok(Loaded {
                        remote: Properties::new(),
                        version: None,
                        from_server: false,
                    }),
                }
            }
        }
    }

    async fn save_cache(&self, env: &Environment) {
        let Some(path) = &self.cache_file else { return };
        let bytes = match serde_json::to_vec(env) {
            Ok(b) => b,
            Err(e) => {
                tracing::warn!(error = %e, "configuration cache not written");
                return;
            }
        };
        // Write beside, then rename: a crash never leaves half a file.
        let tmp = path.with_extension("tmp");
        let written = async {
            tokio::fs::write(&tmp, &bytes).await?;
            tokio::fs::rename(&tmp, path).await
        };
        if let Err(e) = written.await {
            tracing::warn!(error = %e, path = %path.display(), "configuration cache not written");
        }
    }

    async fn read_cache(&self) -> Option<Environment> {
        let path = self.cache_file.as_ref()?;
        let bytes = match tokio::fs::read(path).await {
            Ok(b) => b,
            Err(e) => {
                tracing::info!(error = %e, path = %path.display(), "no cached configuration");
                return None;
            }
        };
        match serde_json::from_slice(&bytes) {
            Ok(env) => Some(env),
            Err(e) => {
                tracing::warn!(error = %e, path = %path.display(), "cached configuration unreadable; ignored");
                None
            }
        }
    }

    /// Loads the configuration (`local` files < server < `env` variables)
    /// as `T` and keeps it fresh in the background. Start-up fails when
    /// the server is required and unreachable, a value could not be
    /// decrypted, or the result does not fit `T`.
    pub async fn start<T>(
        self,
        local: Properties,
        env: Properties,
    ) -> Result<LiveConfig<T>, ConfigError>
    where
        T: DeserializeOwned + Send + Sync + 'static,
    {
        let loaded = self.load().await?;
        let properties = layer(&local, &loaded.remote, &env);
        let value: T = deserialize(&properties)?;
        let first = ConfigSnapshot {
            value: Arc::new(value),
            properties: Arc::new(properties),
            changed_keys: Arc::from(Vec::new()),
            version: loaded.version,
            from_server: loaded.from_server,
        };
        let (tx, rx) = watch::channel(first);
        let stop = CancellationToken::new();
        let task = if self.watch_enabled && self.has_server() {
            let refresher = Refresher {
                client: self,
                local,
                env,
                tx,
                _t: PhantomData,
            };
            Some(tokio::spawn(refresher.run(stop.clone())))
        } else {
            None
        };
        Ok(LiveConfig {
            rx,
            stop,
            task: Arc::new(parking_lot::Mutex::new(task)),
        })
    }
}

/// A status other than 2xx.
#[derive(Debug, thiserror::Error)]
#[error("answered {0}")]
struct UnexpectedStatus(StatusCode);

/// A typed configuration kept fresh. Cheap to clone; clones share it.
#[derive(Debug)]
pub struct LiveConfig<T> {
    rx: watch::Receiver<ConfigSnapshot<T>>,
    stop: CancellationToken,
    task: Arc<parking_lot::Mutex<Option<JoinHandle<()>>>>,
}

impl<T> Clone for LiveConfig<T> {
    fn clone(&self) -> Self {
        LiveConfig {
            rx: self.rx.clone(),
            stop: self.stop.clone(),
            task: Arc::clone(&self.task),
        }
    }
}

impl<T> LiveConfig<T> {
    /// The current snapshot.
    pub fn current(&self) -> ConfigSnapshot<T> {
        self.rx.borrow().clone()
    }

    /// The current configuration.
    pub fn get(&self) -> Arc<T> {
        Arc::clone(&self.rx.borrow().value)
    }

    /// A receiver that sees each new snapshot.
    pub fn subscribe(&self) -> watch::Receiver<ConfigSnapshot<T>> {
        self.rx.clone()
    }

    /// Stops refreshing.
    pub async fn stop(&self) {
        self.stop.cancel();
        let task = self.task.lock().take();
        if let Some(task) = task {
            let _ = task.await;
        }
    }
}

/// The background refresh.
struct Refresher<T> {
    client: ConfigClient,
    local: Properties,
    env: Properties,
    tx: watch::Sender<ConfigSnapshot<T>>,
    _t: PhantomData<fn() -> T>,
}

impl<T: DeserializeOwned + Send + Sync + 'static> Refresher<T> {
    async fn run(self, stop: CancellationToken) {
        let mut polling = false;
        loop {
            if polling {
                tokio::select! {
                    _ = stop.cancelled() => return,
                    _ = tokio::time::sleep(self.client.watch_delay) => {}
                }
                self.refresh().await;
                continue;
            }
            let end = tokio::select! {
                _ = stop.cancelled() => return,
                end = self.stream() => end,
            };
            match end {
                StreamEnd::Unsupported => {
                    tracing::info!("config server offers no change stream; polling its version");
                    polling = true;
                }
                StreamEnd::Broken => {
                    tokio::select! {
                        _ = stop.cancelled() => return,
                        _ = tokio::time::sleep(self.client.watch_delay.min(Duration::from_secs(5))) => {}
                    }
                }
            }
        }
    }

    /// Follows `GET /watch/{app}/{profiles}[/{label}]`; each event (the
    /// first one too: changes may have been missed) triggers a refresh.
    async fn stream(&self) -> StreamEnd {
        let Some(server) = self.client.servers.first() else {
            return StreamEnd::Unsupported;
        };
        let Ok(url) = self.client.url(server, &["watch"]) else {
            return StreamEnd::Unsupported;
        };
        let req = self.client.authorize(
            server,
            self.client
                .stream_client
                .get(url)
                .header("Accept", "text/event-stream"),
        );
        let resp = match req.send().await {
            Ok(r) => r,
            Err(e) => {
                tracing::debug!(error = %e, "config watch: cannot connect");
                return StreamEnd::Broken;
            }
        };
        sse::follow(resp, |_events| self.refresh()).await
    }

    /// Fetches, merges and deserializes; publishes a new snapshot when the
    /// properties changed. Any failure keeps the old snapshot.
    async fn refresh(&self) {
        let env = match self.client.fetch().await {
            Ok(env) => env,
            Err(e) => {
                tracing::warn!(error = %e, "config refresh failed; keeping the current configuration");
                return;
            }
        };
        let remote = match merge_sources(&env) {
            Ok(r) => r,
            Err(e) => {
                tracing::error!(error = %e, "config refresh rejected; keeping the current configuration");
                return;
            }
        };
        let properties = layer(&self.local, &remote, &self.env);
        let old = self.tx.borrow().properties.clone();
        let changed = changed_keys(&old, &properties);
        if changed.is_empty() {
            return;
        }
        let value: T = match deserialize(&properties) {
            Ok(v) => v,
            Err(e) => {
                tracing::error!(error = %e, keys = ?changed, "config refresh does not fit; keeping the current configuration");
                return;
            }
        };
        self.client.save_cache(&env).await;
        tracing::info!(version = ?env.version, keys = ?changed, "configuration refreshed");
        self.tx.send_replace(ConfigSnapshot {
            value: Arc::new(value),
            properties: Arc::new(properties),
            changed_keys: Arc::from(changed),
            version: env.version,
            from_server: true,
        });
    }
}
