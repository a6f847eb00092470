//! [`CloudService`]: a service's start and stop in Spring Boot's order.
//!
//! 1. Bootstrap settings from local files and environment variables.
//! 2. Fetch the configuration from the config server (when
//!    `spring.config.import` names one); it may carry the Eureka settings.
//! 3. Read the final settings from local < server < environment.
//! 4. Register with Eureka and start the registry cache (when enabled).
//! 5. The load-balanced HTTP client over that cache.
//!
//! [`CloudService::serve`] serves the application's router (with
//! `/actuator/health` and `/actuator/prometheus`) through `cloud-runtime`'s server until the shutdown
//! signal; then it deregisters first (DOWN, then cancel), so callers stop
//! picking this instance, and only then drains the open connections.
//! [`CloudService::shutdown`] does the deregistering alone.
//!
//! [`run`] does all of it in one call from `main`: flags, `application.yml`,
//! environment, bind, start, serve, deregister and drain on SIGTERM.
//!
//! ```no_run
//! use cloud_client::config::Properties;
//! use cloud_client::http::HttpClientConfig;
//! use cloud_client::service::CloudService;
//! use cloud_runtime::{serve::ServeLimits, shutdown};
//!
//! #[derive(serde::Deserialize)]
//! struct Greeting { message: String }
//!
//! fn main() -> std::process::ExitCode {
//!     shutdown::run_service(shutdown::DEFAULT_DRAIN_TIMEOUT, |stop| async move {
//!         let local = Properties::new(); // application.yml, flattened
//!         let env = Properties::new();   // environment, mapped to dotted keys
//!         let service = CloudService::<Greeting>::start(local, env, HttpClientConfig::default()).await?;
//!         let listener = tokio::net::TcpListener::bind(("0.0.0.0", service.settings.server.port)).await?;
//!         let config = service.config.clone();
//!         let router = axum::Router::new().route("/greeting", axum::routing::get(move || {
//!             let message = config.get().message.clone();
//!             async move { message }
//!         }));
//!         service.serve(listener, router, &ServeLimits::default(), stop).await?;
//!         Ok::<(), Box<dyn std::error::Error + Send + Sync>>(())
//!     })
//!     .exit_code()
//! }
//! ```

mod run;

pub use run::{
    DEFAULT_SETTINGS_FILE, RunError, ServiceArgs, environment, local_properties, run,
    start_and_serve,
};

use cloud_runtime::serve::ServeLimits;
use cloud_runtime::shutdown::Shutdown;
use serde::de::DeserializeOwned;
use serde_json::Value;
use tokio::net::TcpListener;

use crate::config::{ConfigClient, ConfigError, LiveConfig, Properties};
use crate::discovery::{DiscoveryClient, DiscoveryError};
use crate::http::{HttpClientConfig, HttpError, LbHttpClient, StaticInstances};
use crate::settings::{ClientSettings, SettingsError};

/// Why the service could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// A setting is wrong (names the key).
    #[error(transparent)]
    Settings(#[from] SettingsError),
    /// The configuration could not be loaded.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The discovery client could not start.
    #[error(transparent)]
    Discovery(#[from] DiscoveryError),
    /// The HTTP client could not be built.
    #[error(transparent)]
    Http(#[from] HttpError),
}

/// Why serving stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// The server failed.
    #[error("server: {0}")]
    Io(#[source] std::io::Error),
    /// Deregistering at shutdown failed.
    #[error(transparent)]
    Deregister(#[from] StartError),
}

/// A started service: its settings, live configuration, discovery client
/// and HTTP client. Cheap to clone; clones share everything.
#[derive(Debug)]
pub struct CloudService<T> {
    /// The final settings.
    pub settings: ClientSettings,
    /// The application's configuration, kept fresh.
    pub config: LiveConfig<T>,
    /// The Eureka client; `None` when `eureka.client.enabled` is false.
    pub discovery: Option<DiscoveryClient>,
    /// The load-balanced HTTP client.
    pub http: LbHttpClient,
}

impl<T> Clone for CloudService<T> {
    fn clone(&self) -> Self {
        CloudService {
            settings: self.settings.clone(),
            config: self.config.clone(),
            discovery: self.discovery.clone(),
            http: self.http.clone(),
        }
    }
}

/// A property value as the settings reader takes it.
fn as_text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Array(items) => items.iter().map(as_text).collect::<Vec<_>>().join(","),
        other => other.to_string(),
    }
}

fn settings_of(props: &Properties) -> Result<ClientSettings, SettingsError> {
    ClientSettings::from_properties(props.iter().map(|(k, v)| (k.as_str(), as_text(v))))
}

impl<T> CloudService<T>
where
    T: DeserializeOwned + Send + Sync + 'static,
{
    /// Starts with `local` (files) and `env` (environment variables and
    /// flags) as flat properties, `env` winning; see the module docs for
    /// the order.
    pub async fn start(
        local: Properties,
        env: Properties,
        http: HttpClientConfig,
    ) -> Result<CloudService<T>, StartError> {
        let bootstrap = settings_of(&crate::config::layer(&local, &Properties::new(), &env))?;
        let config: LiveConfig<T> = ConfigClient::new(&bootstrap)?.start(local, env).await?;
        let settings = settings_of(&config.current().properties)?;
        let discovery = if settings.eureka.client.enabled {
            Some(DiscoveryClient::start(settings.clone()).await?)
        } else {
            None
        };
        let http = match &discovery {
            Some(d) => LbHttpClient::new(d.clone(), http)?,
            None => LbHttpClient::new(StaticInstances::new(), http)?,
        };
        Ok(CloudService {
            settings,
            config,
            discovery,
            http,
        })
    }

    /// Serves `router`, with `GET /actuator/health` added and each handler
    /// run in its request's trace ([`continue_trace`](crate::http::continue_trace)), on `listener`
    /// under `limits` until `shutdown` is triggered; then deregisters and
    /// stops the config refresh ([`shutdown`](Self::shutdown)) before the
    /// server drains its connections.
    pub async fn serve(
        &self,
        listener: TcpListener,
        router: axum::Router,
        limits: &ServeLimits,
        shutdown: Shutdown,
    ) -> Result<(), ServeError> {
        // Handlers run in the trace their request carries, so the HTTP
        // client's calls continue it.
        let router = router
            .merge(self.actuator())
            .layer(axum::middleware::from_fn(crate::http::continue_trace));
        // The server drains on its own token, cancelled only once this
        // instance has left the registry.
        let drain = tokio_util::sync::CancellationToken::new();
        let server = tokio::spawn({
            let (limits, drain) = (limits.clone(), drain.clone());
            async move { cloud_runtime::serve::serve(listener, router, &limits, drain).await }
        });
        let server = async {
            match server.await {
                Ok(result) => result.map_err(ServeError::Io),
                Err(e) => Err(ServeError::Io(std::io::Error::other(e))),
            }
        };
        tokio::pin!(server);
        tokio::select! {
            result = &mut server => return result,
            () = shutdown.triggered() => {}
        }
        let deregistered = self.shutdown().await;
        drain.cancel();
        let served = server.await;
        deregistered?;
        served
    }

    /// `GET /actuator/health` and `GET /actuator/prometheus`
    /// ([`actuator::router`](crate::actuator::router)).
    pub fn actuator(&self) -> axum::Router {
        crate::actuator::router(
            self.discovery.clone(),
            self.config.clone(),
            self.http.clone(),
        )
    }

    /// Deregisters from Eureka and stops the config refresh.
    pub async fn shutdown(&self) -> Result<(), StartError> {
        self.config.stop().await;
        if let Some(d) = &self.discovery {
            d.shutdown().await?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn json_values_read_as_property_text() {
        assert_eq!(as_text(&json!("a")), "a");
        assert_eq!(as_text(&json!(30)), "30");
        assert_eq!(as_text(&json!(true)), "true");
        assert_eq!(as_text(&json!(["dev", "eu"])), "dev,eu");
    }
}
