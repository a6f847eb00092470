//! [`CloudService`]: a service's start and stop in Spring Boot's order.
//!
//! 1. Bootstrap settings from local files and environment variables.
//! 2. Fetch the configuration from the config server (when
//!    `spring.config.import` names one); it may carry the Eureka settings.
//! 3. Read the final settings from local < server < environment.
//! 4. Register with Eureka and start the registry cache (when enabled).
//! 5. The load-balanced HTTP client over that cache.
//!
//! [`CloudService::shutdown`] deregisters (DOWN, then cancel) and stops
//! the config refresh: call it when the shutdown signal arrives, before
//! draining connections, so callers stop picking this instance first.

use serde::de::DeserializeOwned;
use serde_json::Value;

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

/// A started service: its settings, live configuration, discovery client
/// and HTTP client.
#[derive(Debug, Clone)]
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
