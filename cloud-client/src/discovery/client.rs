//! [`DiscoveryClient`]: registers this service, renews its lease, keeps the
//! local registry cache fresh (deltas on a timer, at once on a watch event)
//! and answers lookups from that cache without a network call.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use arc_swap::ArcSwap;
use cloud_protocol::eureka::{InstanceInfo, InstanceStatus};
use cloud_runtime::clock::system_epoch_millis;
use parking_lot::Mutex;
use reqwest::StatusCode;
use tokio::sync::{Notify, watch};
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::cache::{DeltaOutcome, RegistryCache, RegistrySnapshot};
use super::instance::{ServiceInstance, registration};
use super::transport::{EurekaHttp, Renewal, TransportError};
use crate::settings::{ClientSettings, SettingsError};
use crate::sse::{self, StreamEnd};

/// Why the discovery client could not start.
#[derive(Debug, thiserror::Error)]
pub enum DiscoveryError {
    /// A setting is wrong.
    #[error(transparent)]
    Settings(#[from] SettingsError),
    /// The HTTP client could not be built (TLS backend missing).
    #[error("discovery HTTP client: {0}")]
    Http(#[source] Box<dyn std::error::Error + Send + Sync + 'static>),
    /// A registry call failed.
    #[error(transparent)]
    Transport(#[from] TransportError),
}

/// How the registry cache is doing, for a health endpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DiscoveryHealth {
    /// Whether the last registry call reached a server.
    pub registry_reachable: bool,
    /// Whether lookups are served from a copy that could not be refreshed
    /// (every server unreachable since the last successful fetch).
    pub serving_stale: bool,
    /// Time since the cache was last refreshed; `None` before the first.
    pub since_last_fetch: Option<Duration>,
    /// Instances in the cache.
    pub instances: usize,
    /// Whether this instance's lease is believed to be registered.
    pub registered: bool,
    /// Whether the cache follows a watch stream (our server) rather than
    /// polling alone (a plain Eureka server).
    pub watching: bool,
    /// The server asked first now.
    pub server: String,
    /// The last registry error, if the last call failed.
    pub last_error: Option<String>,
}

#[derive(Debug, Default)]
struct HealthState {
    reachable: bool,
    last_fetch: Option<Instant>,
    last_error: Option<String>,
    registered: bool,
}

#[derive(Debug)]
struct Shared {
    http: EurekaHttp,
    settings: ClientSettings,
    /// The record registered (status and dirty timestamp change).
    me: Mutex<InstanceInfo>,
    cache: Mutex<RegistryCache>,
    snapshot: ArcSwap<RegistrySnapshot>,
    published: watch::Sender<Arc<RegistrySnapshot>>,
    health: Mutex<HealthState>,
    /// Wakes the fetch loop at once (a watch event).
    wake: Notify,
    /// The next fetch must be a full one (a `resync` event).
    full_next: AtomicBool,
    watching: AtomicBool,
}

/// A Eureka client: registration, heartbeats and a local registry cache.
/// Cheap to clone; clones share one client. Call
/// [`shutdown`](Self::shutdown) to deregister.
#[derive(Debug, Clone)]
pub struct DiscoveryClient {
    shared: Arc<Shared>,
    stop: CancellationToken,
    tasks: Arc<Mutex<Vec<JoinHandle<()>>>>,
}

impl DiscoveryClient {
    /// Starts with the record [`registration`] builds from `settings`.
    pub async fn start(settings: ClientSettings) -> Result<DiscoveryClient, DiscoveryError> {
        let me = registration(&settings);
        DiscoveryClient::start_with(settings, me).await
    }

    /// Starts with `me` as the record to register: registers it (when
    /// `register-with-eureka`), fetches the registry once (when
    /// `fetch-registry`), then heartbeats, fetches and watches in the
    /// background. A registry that cannot be reached is not an error here:
    /// the client keeps trying and [`health`](Self::health) says so.
    pub async fn start_with(
        settings: ClientSettings,
        mut me: InstanceInfo,
    ) -> Result<DiscoveryClient, DiscoveryError> {
        settings.validate()?;
        let c = &settings.eureka.client;
        let http = EurekaHttp::new(
            settings.eureka_service_urls()?,
            Duration::from_secs(u64::from(c.eureka_server_connect_timeout_seconds)),
            Duration::from_secs(u64::from(c.eureka_server_read_timeout_seconds)),
        )
        .map_err(|e| DiscoveryError::Http(e.into()))?;
        me.last_dirty_timestamp = system_epoch_millis();
        let initial = Arc::new(RegistrySnapshot::default());
        let (published, _) = watch::channel(Arc::clone(&initial));
        let shared = Arc::new(Shared {
            http,
            me: Mutex::new(me),
            cache: Mutex::new(RegistryCache::new()),
            snapshot: ArcSwap::new(initial),
            published,
            health: Mutex::new(HealthState::default()),
            wake: Notify::new(),
            full_next: AtomicBool::new(true),
            watching: AtomicBool::new(false),
            settings,
        });
        let client = DiscoveryClient {
            shared: Arc::clone(&shared),
            stop: CancellationToken::new(),
            tasks: Arc::new(Mutex::new(Vec::new())),
        };
        let c = &shared.settings.eureka.client;
        let mut tasks = Vec::new();
        if c.register_with_eureka {
            shared.register().await;
            tasks.push(tokio::spawn(heartbeat_loop(
                Arc::clone(&shared),
                client.stop.clone(),
            )));
        }
        if c.fetch_registry {
            shared.refresh().await;
            tasks.push(tokio::spawn(fetch_loop(
                Arc::clone(&shared),
                client.stop.clone(),
            )));
            if c.watch_enabled {
                tasks.push(tokio::spawn(watch_loop(
                    Arc::clone(&shared),
                    client.stop.clone(),
                )));
            }
        }
        *client.tasks.lock() = tasks;
        Ok(client)
    }

    /// `UP` instances of `app` (case-insensitive), from the cache.
    pub fn instances(&self, app: &str) -> Vec<ServiceInstance> {
        self.all_instances(app)
            .iter()
            .filter(|i| i.is_up())
            .cloned()
            .collect()
    }

    /// Every instance of `app`, whatever its status.
    pub fn all_instances(&self, app: &str) -> Arc<[ServiceInstance]> {
        self.shared.snapshot.load().application(app)
    }

    /// Every instance of `app` (any case), `None` when unknown or empty;
    /// without allocating (the HTTP client's lookup on every call).
    pub(crate) fn find_instances(&self, app: &str) -> Option<Arc<[ServiceInstance]>> {
        let mut found = None;
        self.lend_instances(app, &mut |list| found = Some(Arc::clone(list)));
        found
    }

    /// Lends `app`'s instances to `use_them` without taking a reference on
    /// the list; false (without calling it) when the cache has none.
    pub(crate) fn lend_instances(
        &self,
        app: &str,
        use_them: &mut dyn FnMut(&Arc<[ServiceInstance]>),
    ) -> bool {
        let snapshot = self.shared.snapshot.load();
        match snapshot.find(app).filter(|list| !list.is_empty()) {
            Some(list) => {
                use_them(list);
                true
            }
            None => false,
        }
    }

    /// `UP` instances whose VIP address is `vip`.
    pub fn instances_by_vip(&self, vip: &str) -> Vec<ServiceInstance> {
        let mut list = self.shared.snapshot.load().by_vip(vip);
        list.retain(ServiceInstance::is_up);
        list
    }

    /// The whole cache as it is now.
    pub fn snapshot(&self) -> Arc<RegistrySnapshot> {
        self.shared.snapshot.load_full()
    }

    /// Follows the whole cache: the receiver sees each new snapshot.
    pub fn subscribe_registry(&self) -> watch::Receiver<Arc<RegistrySnapshot>> {
        self.shared.published.subscribe()
    }

    /// Follows one application: [`AppSubscription::changed`] returns when
    /// its instances change.
    pub fn subscribe(&self, app: &str) -> AppSubscription {
        let rx = self.shared.published.subscribe();
        let last = rx.borrow().application(app);
        AppSubscription {
            rx,
            app: app.to_ascii_uppercase(),
            last,
        }
    }

    /// How the cache and registration are doing.
    pub fn health(&self) -> DiscoveryHealth {
        let h = self.shared.health.lock();
        DiscoveryHealth {
            registry_reachable: h.reachable,
            serving_stale: !h.reachable && h.last_fetch.is_some(),
            since_last_fetch: h.last_fetch.map(|t| t.elapsed()),
            instances: self.shared.snapshot.load().len(),
            registered: h.registered,
            watching: self.shared.watching.load(Ordering::Relaxed),
            server: self.shared.http.current_server().to_string(),
            last_error: h.last_error.clone(),
        }
    }

    /// The record this client registers.
    pub fn registration(&self) -> InstanceInfo {
        self.shared.me.lock().clone()
    }

    /// Fetches now (a delta, or the full registry when needed) instead of
    /// waiting for the timer.
    pub async fn refresh_now(&self) {
        self.shared.refresh().await;
    }

    /// Changes this instance's status in the registry (for example
    /// `OUT_OF_SERVICE` before maintenance).
    pub async fn set_status(&self, status: InstanceStatus) -> Result<(), DiscoveryError> {
        let me = {
            let mut me = self.shared.me.lock();
            me.status = status;
            me.last_dirty_timestamp = system_epoch_millis();
            me.clone()
        };
        self.shared.http.set_status(&me, status).await?;
        Ok(())
    }

    /// Graceful shutdown: stops the background tasks, marks this instance
    /// `DOWN` and cancels its lease, so callers stop picking it at once.
    pub async fn shutdown(&self) -> Result<(), DiscoveryError> {
        self.stop.cancel();
        let tasks = std::mem::take(&mut *self.tasks.lock());
        for task in tasks {
            let _ = task.await;
        }
        if !self.shared.settings.eureka.client.register_with_eureka {
            return Ok(());
        }
        let me = {
            let mut me = self.shared.me.lock();
            me.status = InstanceStatus::Down;
            me.last_dirty_timestamp = system_epoch_millis();
            me.clone()
        };
        let down = self.shared.http.set_status(&me, InstanceStatus::Down).await;
        let cancelled = self.shared.http.cancel(&me).await;
        self.shared.health.lock().registered = false;
        tracing::info!(instance = %me.instance_id, "deregistered from Eureka");
        if let Err(e) = down {
            tracing::warn!(error = %e, "could not mark the instance DOWN");
        }
        cancelled?;
        Ok(())
    }
}

/// Follows the instances of one application.
#[derive(Debug)]
pub struct AppSubscription {
    rx: watch::Receiver<Arc<RegistrySnapshot>>,
    app: String,
    last: Arc<[ServiceInstance]>,
}

impl AppSubscription {
    /// The instances (any status) last seen.
    pub fn current(&self) -> Arc<[ServiceInstance]> {
        Arc::clone(&self.last)
    }

    /// Waits until the application's instances differ from the last seen
    /// and returns them; `None` once the client is gone.
    pub async fn changed(&mut self) -> Option<Arc<[ServiceInstance]>> {
        loop {
            self.rx.changed().await.ok()?;
            let now = self.rx.borrow_and_update().application(&self.app);
            if !Arc::ptr_eq(&now, &self.last) && now.as_ref() != self.last.as_ref() {
                self.last = Arc::clone(&now);
                return Some(now);
            }
        }
    }
}

impl Shared {
    fn note_result<T>(&self, result: &Result<T, TransportError>) {
        let mut h = self.health.lock();
        match result {
            Ok(_) => {
                h.reachable = true;
                h.last_error = None;
            }
            Err(e) => {
                if e.is_unreachable() {
                    h.reachable = false;
                }
                h.last_error = Some(e.to_string());
            }
        }
    }

    async fn register(&self) {
        let me = self.me.lock().clone();
        let result = self.http.register(&me).await;
        self.note_result(&result);
        match result {
            Ok(()) => {
                self.health.lock().registered = true;
                tracing::info!(instance = %me.instance_id, app = %me.app, "registered with Eureka");
            }
            Err(e) => {
                tracing::warn!(error = %e, "registration failed; will retry on the next heartbeat")
            }
        }
    }

    async fn heartbeat(&self) {
        let me = self.me.lock().clone();
        let result = self.http.renew(&me).await;
        self.note_result(&result);
        match result {
            Ok(Renewal::Renewed) => self.health.lock().registered = true,
            Ok(Renewal::NotFound) => {
                tracing::info!(instance = %me.instance_id, "lease unknown to the server; registering again");
                self.health.lock().registered = false;
                self.register().await;
            }
            Err(e) => tracing::warn!(error = %e, "heartbeat failed"),
        }
    }

    /// One fetch: a delta on a filled cache, else (or on a hashcode
    /// mismatch, or when asked) the full registry. On failure the cache
    /// keeps what it has.
    async fn refresh(&self) {
        let full = self.full_next.swap(false, Ordering::AcqRel) || !self.cache.lock().is_filled();
        let result = if full {
            self.fetch_full().await
        } else {
            match self.http.fetch(true).await {
                Ok(delta) => {
                    let outcome = self.cache.lock().apply_delta(&delta);
                    match outcome {
                        DeltaOutcome::Applied => Ok(()),
                        DeltaOutcome::HashcodeMismatch { local, server } => {
                            tracing::debug!(%local, %server, "registry hashcode mismatch; fetching in full");
                            self.fetch_full().await
                        }
                    }
                }
                Err(e) => Err(e),
            }
        };
        self.note_result(&result);
        match result {
            Ok(()) => {
                self.health.lock().last_fetch = Some(Instant::now());
                self.publish();
            }
            Err(e) => {
                // The next attempt starts over from a full listing.
                self.full_next.store(true, Ordering::Release);
                tracing::warn!(error = %e, "registry fetch failed; serving the last known registry");
            }
        }
    }

    async fn fetch_full(&self) -> Result<(), TransportError> {
        let apps = self.http.fetch(false).await?;
        self.cache.lock().apply_full(&apps);
        Ok(())
    }

    fn publish(&self) {
        let previous = self.snapshot.load_full();
        let next = Arc::new(self.cache.lock().snapshot(&previous));
        self.snapshot.store(Arc::clone(&next));
        self.published.send_replace(next);
    }
}

async fn heartbeat_loop(shared: Arc<Shared>, stop: CancellationToken) {
    let every = shared.settings.renewal_interval();
    let mut ticks = tokio::time::interval_at(Instant::now() + every, every);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = ticks.tick() => shared.heartbeat().await,
        }
    }
}

async fn fetch_loop(shared: Arc<Shared>, stop: CancellationToken) {
    let every = shared.settings.fetch_interval();
    loop {
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tokio::time::sleep(every) => {}
            _ = shared.wake.notified() => {}
        }
        shared.refresh().await;
    }
}

/// Follows `GET watch` (SSE); when the server has none, the long poll
/// `GET watch/version`; when it has neither, stops (the timer alone keeps
/// the cache fresh).
async fn watch_loop(shared: Arc<Shared>, stop: CancellationToken) {
    let retry = shared.settings.fetch_interval().min(Duration::from_secs(5));
    let mut long_poll = false;
    loop {
        let session = async {
            if long_poll {
                poll_session(&shared).await
            } else {
                sse_session(&shared).await
            }
        };
        let end = tokio::select! {
            _ = stop.cancelled() => return,
            end = session => end,
        };
        shared.watching.store(false, Ordering::Relaxed);
        match end {
            StreamEnd::Unsupported if !long_poll => long_poll = true,
            StreamEnd::Unsupported => {
                tracing::info!("the Eureka server offers no watch; polling only");
                return;
            }
            StreamEnd::Broken => {
                tokio::select! {
                    _ = stop.cancelled() => return,
                    _ = tokio::time::sleep(retry) => {}
                }
            }
        }
    }
}

fn unsupported(status: StatusCode) -> bool {
    matches!(
        status,
        StatusCode::NOT_FOUND | StatusCode::METHOD_NOT_ALLOWED | StatusCode::NOT_ACCEPTABLE
    )
}

async fn sse_session(shared: &Shared) -> StreamEnd {
    let answer = match shared
        .http
        .send_streaming("watch", |r| r.header("Accept", "text/event-stream"))
        .await
    {
        Ok(a) => a,
        Err(_) => return StreamEnd::Broken,
    };
    sse::follow(answer.response, |events| {
        for event in events {
            match event.event.as_str() {
                // (Re)connected: changes may have been missed meanwhile.
                "hello" => {
                    shared.watching.store(true, Ordering::Relaxed);
                    shared.wake.notify_one();
                }
                "change" => shared.wake.notify_one(),
                "resync" => {
                    shared.full_next.store(true, Ordering::Release);
                    shared.wake.notify_one();
                }
                _ => {}
            }
        }
        std::future::ready(())
    })
    .await
}

#[derive(serde::Deserialize)]
struct VersionAnswer {
    version: u64,
    changed: bool,
}

async fn poll_session(shared: &Shared) -> StreamEnd {
    let mut since: Option<u64> = None;
    loop {
        let query = match since {
            // The first ask answers at once with the current version.
            None => "watch/version?since=0&timeoutMs=0".to_owned(),
            Some(v) => format!("watch/version?since={v}&timeoutMs=30000"),
        };
        let answer = match shared.http.send_streaming(&query, |r| r).await {
            Ok(a) => a,
            Err(_) => return StreamEnd::Broken,
        };
        let status = answer.response.status();
        if unsupported(status) {
            return StreamEnd::Unsupported;
        }
        if !status.is_success() {
            return StreamEnd::Broken;
        }
        let Ok(v) = answer.response.json::<VersionAnswer>().await else {
            return StreamEnd::Unsupported;
        };
        shared.watching.store(true, Ordering::Relaxed);
        // On (re)connecting changes may have been missed: fetch.
        if since.is_none() || v.changed {
            shared.wake.notify_one();
        }
        since = Some(v.version);
    }
}
