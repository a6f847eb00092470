//! [`run`]: the one call a service's `main` makes.
//!
//! It reads the flags ([`ServiceArgs`]), the local settings file
//! (`--config FILE`, else `./application.yml` when there is one) and the
//! environment (Spring's names: `SERVER_PORT`,
//! `EUREKA_CLIENT_SERVICEURL_DEFAULTZONE`, `SPRING_CONFIG_IMPORT`, ...);
//! binds `server.port` (0 takes a free port, and the port bound is the one
//! registered); starts a [`CloudService`] in Spring Boot's order; serves the
//! application's router with the actuator endpoints; and on SIGTERM or
//! Ctrl-C deregisters, drains and exits 0.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::Parser;
use cloud_runtime::cli::CommonArgs;
use cloud_runtime::serve::ServeLimits;
use cloud_runtime::settings::{ConfigError, Environment, Layers, ProcessEnvironment};
use cloud_runtime::shutdown::{self, Shutdown};
use serde::de::DeserializeOwned;
use serde_json::Value;
use tokio::net::TcpListener;

use super::{CloudService, ServeError, StartError, settings_of};
use crate::config::{Properties, layer};
use crate::http::HttpClientConfig;

/// The file read when `--config` is not given, as Spring Boot does, when
/// it exists in the working directory.
pub const DEFAULT_SETTINGS_FILE: &str = "application.yml";

/// The flags of a service started by [`run`].
#[derive(Debug, Clone, Default, Parser)]
pub struct ServiceArgs {
    /// Port to serve on (overrides `server.port`); 0 takes a free port,
    /// which is then the port registered with Eureka.
    #[arg(long)]
    pub port: Option<u16>,
    /// `--config FILE`, `--log-format`, `--drain-timeout`.
    #[command(flatten)]
    pub common: CommonArgs,
}

/// Why [`run`] could not start, or stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// The settings file could not be read (names the file and key).
    #[error(transparent)]
    File(#[from] ConfigError),
    /// The service could not start (names the key at fault).
    #[error(transparent)]
    Start(#[from] StartError),
    /// The port could not be bound.
    #[error("cannot listen on port {port}: {source}")]
    Bind {
        /// The port asked for.
        port: u16,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// Serving failed, or deregistering at shutdown did.
    #[error(transparent)]
    Serve(#[from] ServeError),
}

/// Runs a service: `app` builds its router from the started
/// [`CloudService`] (its typed configuration `T`, discovery and HTTP
/// clients). Returns the exit code for `main`: 0 after a clean shutdown.
///
/// ```no_run
/// #[derive(serde::Deserialize)]
/// struct Greeting { message: String }
///
/// fn main() -> std::process::ExitCode {
///     cloud_client::service::run::<Greeting, _>(|service| {
///         let config = service.config.clone();
///         axum::Router::new().route("/greeting", axum::routing::get(move || {
///             let message = config.get().message.clone();
///             async move { message }
///         }))
///     })
/// }
/// ```
pub fn run<T, F>(app: F) -> ExitCode
where
    T: DeserializeOwned + Send + Sync + 'static,
    F: FnOnce(&CloudService<T>) -> axum::Router + Send + 'static,
{
    let args = ServiceArgs::parse();
    cloud_runtime::logging::init(args.common.log_format);
    let drain = args
        .common
        .drain_timeout
        .unwrap_or(shutdown::DEFAULT_DRAIN_TIMEOUT);
    let env = environment(&ProcessEnvironment);
    shutdown::run_service(drain, move |stop| async move {
        let local = local_properties(args.common.config.as_deref())?;
        start_and_serve(local, env, args.port, app, stop).await
    })
    .exit_code()
}

/// What [`run`] does once the flags, file and environment are read:
/// binds the port (`port`, else `server.port`), starts the service with
/// the bound port as `server.port`, and serves `app`'s router until
/// `stop`, then deregisters and drains.
pub async fn start_and_serve<T, F>(
    local: Properties,
    mut env: Properties,
    port: Option<u16>,
    app: F,
    stop: Shutdown,
) -> Result<(), RunError>
where
    T: DeserializeOwned + Send + Sync + 'static,
    F: FnOnce(&CloudService<T>) -> axum::Router,
{
    let port = match port {
        Some(p) => p,
        None => {
            settings_of(&layer(&local, &Properties::new(), &env))
                .map_err(StartError::from)?
                .server
                .port
        }
    };
    let listener = TcpListener::bind(("0.0.0.0", port))
        .await
        .map_err(|source| RunError::Bind { port, source })?;
    let bound = listener
        .local_addr()
        .map_err(|source| RunError::Bind { port, source })?
        .port();
    env.insert("server.port".to_owned(), Value::from(bound));
    let service = CloudService::<T>::start(local, env, HttpClientConfig::default()).await?;
    tracing::info!(
        port = bound,
        application = %service.settings.spring.application.name.as_deref().unwrap_or("application"),
        "serving"
    );
    let router = app(&service);
    service
        .serve(listener, router, &ServeLimits::default(), stop)
        .await?;
    Ok(())
}

/// The local settings file as flat properties: `file` when given (an
/// error when it cannot be read), else `./application.yml` when it exists,
/// else none. YAML profile documents apply as `spring.profiles.active`
/// says.
pub fn local_properties(file: Option<&Path>) -> Result<Properties, ConfigError> {
    let path: Option<PathBuf> = match file {
        Some(f) => Some(f.to_path_buf()),
        None => Some(PathBuf::from(DEFAULT_SETTINGS_FILE)).filter(|p| p.is_file()),
    };
    let Some(path) = path else {
        return Ok(Properties::new());
    };
    // A schema-free layering (any key is kept), for its YAML, profile and
    // placeholder handling.
    let tree: Value = Layers::new::<Value>()?.file(&path)?.load()?;
    let mut out = Properties::new();
    flatten(&tree, String::new(), &mut out);
    Ok(out)
}

fn flatten(value: &Value, prefix: String, out: &mut Properties) {
    match value {
        Value::Object(map) => {
            for (k, v) in map {
                let key = if prefix.is_empty() {
                    k.clone()
                } else {
                    format!("{prefix}.{k}")
                };
                flatten(v, key, out);
            }
        }
        Value::Null => {}
        leaf => {
            out.insert(prefix, leaf.clone());
        }
    }
}

/// The environment as properties with Spring's relaxed names:
/// `EUREKA_CLIENT_SERVICEURL_DEFAULTZONE` becomes
/// `eureka.client.serviceurl.defaultzone`. Variables whose names are not
/// words of letters and digits joined by single `_` (`A__B`,
/// `BASH_FUNC_x%%`) name no property and are left out, and so is one
/// whose name is a prefix of another's (`CARGO_PKG_VERSION` beside
/// `CARGO_PKG_VERSION_MAJOR`: a key cannot be a value and a section).
pub fn environment(env: &dyn Environment) -> Properties {
    let mut props: Properties = env
        .vars()
        .into_iter()
        .filter(|(name, _)| {
            name.split('_')
                .all(|w| !w.is_empty() && w.bytes().all(|b| b.is_ascii_alphanumeric()))
        })
        .map(|(name, value)| {
            (
                name.to_ascii_lowercase().replace('_', "."),
                Value::String(value),
            )
        })
        .collect();
    // Keys hold only `[a-z0-9.]`, so a key's sub-keys sort right after it.
    let sections: Vec<String> = props
        .keys()
        .zip(props.keys().skip(1))
        .filter(|(key, next)| {
            next.len() > key.len()
                && next.starts_with(key.as_str())
                && next.as_bytes()[key.len()] == b'.'
        })
        .map(|(key, _)| key.clone())
        .collect();
    for key in sections {
        props.remove(&key);
    }
    props
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    #[test]
    fn environment_variables_override_the_file_under_spring_names() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("application.yml");
        std::fs::write(
            &file,
            "spring:\n  application:\n    name: greeter\neureka:\n  client:\n    serviceUrl:\n      defaultZone: http://file:8761/eureka/\nserver.port: 9000\n",
        )
        .unwrap();
        let local = local_properties(Some(&file)).unwrap();
        assert_eq!(local["server.port"], 9000);
        let env = environment(&HashMap::from([(
            "EUREKA_CLIENT_SERVICEURL_DEFAULTZONE".to_owned(),
            "http://env:8761/eureka/".to_owned(),
        )]));
        let settings = settings_of(&layer(&local, &Properties::new(), &env)).unwrap();
        assert_eq!(settings.spring.application.name.as_deref(), Some("greeter"));
        assert_eq!(settings.server.port, 9000);
        assert_eq!(
            settings.eureka_service_urls().unwrap()[0].base.as_str(),
            "http://env:8761/eureka/"
        );
    }

    #[test]
    fn only_variables_that_name_a_property_are_taken() {
        let env = environment(&HashMap::from([
            ("SERVER_PORT".to_owned(), "1".to_owned()),
            ("A__B".to_owned(), "2".to_owned()),
            ("BASH_FUNC_x%%".to_owned(), "3".to_owned()),
            ("_".to_owned(), "4".to_owned()),
            ("CARGO_PKG_VERSION".to_owned(), "0.1.0".to_owned()),
            ("CARGO_PKG_VERSION_MAJOR".to_owned(), "0".to_owned()),
        ]));
        assert_eq!(
            env.keys().collect::<Vec<_>>(),
            ["cargo.pkg.version.major", "server.port"]
        );
        // So any environment reads as a typed configuration.
        let read: Result<serde::de::IgnoredAny, _> = crate::config::deserialize(&env);
        assert!(read.is_ok(), "{read:?}");
    }

    #[test]
    fn a_missing_settings_file_named_by_flag_is_an_error_that_names_it() {
        let err = local_properties(Some(Path::new("/nonexistent/app.yml"))).unwrap_err();
        assert!(err.to_string().contains("/nonexistent/app.yml"), "{err}");
    }
}
