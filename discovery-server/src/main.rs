//! `discovery-server [--port 8761] [--peer URL]... [--bind ADDR] [--config FILE]
//! [--log-format json|text|auto] [--drain-timeout 10s]`
//!
//! Layers settings (defaults, the config file, environment variables with
//! Spring's names, flags; see `discovery_server::config`), sets up logging,
//! and serves until SIGTERM or Ctrl-C, then drains within the deadline.
//! Exits 2 on a configuration error, 1 when serving fails or the drain
//! deadline passes.

use std::process::ExitCode;

use clap::Parser;
use cloud_runtime::cli::CommonArgs;
use cloud_runtime::logging::{self, LogFormat};
use cloud_runtime::settings::ProcessEnvironment;
use cloud_runtime::shutdown;
use discovery_server::config::{Overrides, ServerConfig};
use discovery_server::run;

/// A Eureka-compatible service registry.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Args {
    /// Port to listen on [default: 8761, or server.port].
    #[arg(long)]
    port: Option<u16>,
    /// Another node's service URL, such as http://127.0.0.1:8762/eureka/
    /// (repeatable; this node's own URL may be listed and is skipped)
    /// [default: eureka.client.service-url.defaultZone].
    #[arg(long = "peer", value_name = "URL")]
    peers: Vec<String>,
    /// Address to bind.
    #[arg(long, default_value = "0.0.0.0")]
    bind: String,
    /// Deprecated: use `--log-format json`.
    #[arg(long, hide = true)]
    json_logs: bool,
    #[command(flatten)]
    common: CommonArgs,
}

fn main() -> ExitCode {
    let args = Args::parse();
    let format = if args.json_logs {
        LogFormat::Json
    } else {
        args.common.log_format
    };
    logging::init(format);
    if args.json_logs {
        tracing::warn!("--json-logs is deprecated; use --log-format json");
    }
    let overrides = Overrides {
        port: args.port,
        peers: args.peers,
        drain_timeout: args.common.drain_timeout,
    };
    let config = match ServerConfig::load(
        args.common.config.as_deref(),
        &ProcessEnvironment,
        &overrides,
    ) {
        Ok(c) => c,
        Err(e) => {
            tracing::error!(error = %e, "invalid settings");
            return ExitCode::from(2);
        }
    };
    let bind = args.bind;
    shutdown::run_service(config.drain_timeout, move |shutdown| async move {
        let addr = format!("{bind}:{}", config.port);
        let listener = tokio::net::TcpListener::bind((bind.as_str(), config.port))
            .await
            .map_err(|source| MainError::Bind { addr, source })?;
        run(listener, config, shutdown.triggered())
            .await
            .map_err(MainError::Serve)
    })
    .exit_code()
}

/// Why the server stopped with an error (logged with its cause).
#[derive(Debug, thiserror::Error)]
enum MainError {
    /// The listening socket could not be opened.
    #[error("cannot bind {addr}: {source}")]
    Bind {
        addr: String,
        #[source]
        source: std::io::Error,
    },
    /// Serving failed.
    #[error("serving failed: {0}")]
    Serve(#[source] std::io::Error),
}
