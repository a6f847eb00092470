//! `config-server`: the binary. Parses flags, layers the settings (defaults,
//! `--config FILE`, environment, flags; see `config_server::settings::spring`),
//! sets up logging and serves until SIGTERM or Ctrl-C, then drains within
//! the drain deadline.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;
use cloud_runtime::cli::CommonArgs;
use cloud_runtime::settings::ProcessEnvironment;
use config_server::settings::spring::{self, Flags};

/// A Git-backed configuration server speaking the Spring Cloud Config API.
#[derive(Debug, Parser)]
#[command(name = "config-server", version)]
struct Cli {
    /// Port to listen on (server.port).
    #[arg(long)]
    port: Option<u16>,
    /// Git remote to serve: file://, local path or https://
    /// (spring.cloud.config.server.git.uri).
    #[arg(long)]
    git_uri: Option<String>,
    /// Local directory to serve (repeatable; later ones rank higher)
    /// (spring.cloud.config.server.native.search-locations).
    #[arg(long = "native-dir")]
    native_dir: Vec<PathBuf>,
    /// Label used when a request names none; main falls back to master
    /// (spring.cloud.config.server.git.default-label).
    #[arg(long)]
    default_label: Option<String>,
    /// Seconds between background fetches, 0: only on webhook
    /// (spring.cloud.config.server.git.refresh-rate).
    #[arg(long)]
    refresh_rate: Option<u64>,
    #[command(flatten)]
    common: CommonArgs,
}

impl Cli {
    fn flags(&self) -> Flags {
        Flags {
            port: self.port,
            git_uri: self.git_uri.clone(),
            native_dirs: self.native_dir.clone(),
            default_label: self.default_label.clone(),
            refresh_rate: self.refresh_rate,
            drain_timeout: self.common.drain_timeout,
        }
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    cloud_runtime::logging::init(cli.common.log_format);
    let loaded = match spring::load(
        cli.common.config.as_deref(),
        &ProcessEnvironment,
        &cli.flags(),
    ) {
        Ok(loaded) => loaded,
        Err(e) => {
            tracing::error!(error = %e, "invalid configuration");
            return ExitCode::from(2);
        }
    };
    let settings = loaded.settings;
    cloud_runtime::shutdown::run_service(loaded.drain_timeout, move |shutdown| async move {
        let addr = format!("{}:{}", settings.bind, settings.port);
        let listener = tokio::net::TcpListener::bind(&addr)
            .await
            .map_err(|e| BindError { addr, source: e })?;
        config_server::run(listener, settings, shutdown.triggered())
            .await
            .map_err(StartError::from)
    })
    .exit_code()
}

/// The listening address could not be bound.
#[derive(Debug, thiserror::Error)]
#[error("cannot bind {addr}: {source}")]
struct BindError {
    addr: String,
    #[source]
    source: std::io::Error,
}

/// Why the service ended with an error.
#[derive(Debug, thiserror::Error)]
enum StartError {
    #[error(transparent)]
    Bind(#[from] BindError),
    #[error(transparent)]
    Server(#[from] config_server::ServerError),
}
