//! `discovery-server [--port 8761] [--peer URL]... [--config FILE]`
//!
//! Layers settings (defaults, then the config file, then `DISCOVERY__*`
//! environment variables, then flags), sets up logging and runs the server
//! until SIGTERM or Ctrl-C.

use std::path::PathBuf;

use clap::Parser;
use discovery_server::{ServerConfig, run};
use tracing_subscriber::EnvFilter;

/// A Eureka-compatible service registry.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Args {
    /// Port to listen on [default: 8761, or server.port from the config].
    #[arg(long, env = "DISCOVERY_PORT")]
    port: Option<u16>,
    /// Another node's service URL, such as http://127.0.0.1:8762/eureka/ (repeatable).
    #[arg(long = "peer", value_name = "URL")]
    peers: Vec<String>,
    /// YAML or TOML settings with Spring's names (eureka.server.*, eureka.instance.*).
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Address to bind.
    #[arg(long, default_value = "0.0.0.0")]
    bind: String,
    /// Log as JSON lines.
    #[arg(long)]
    json_logs: bool,
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = terminate => {},
    }
    tracing::info!("shutdown signal received");
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let args = Args::parse();
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    if args.json_logs {
        tracing_subscriber::fmt()
            .with_env_filter(filter)
            .json()
            .init();
    } else {
        let ansi = std::io::IsTerminal::is_terminal(&std::io::stdout());
        tracing_subscriber::fmt()
            .with_env_filter(filter)
            .with_ansi(ansi)
            .init();
    }
    let mut config = match ServerConfig::load(args.config.as_deref(), None) {
        Ok(c) => c,
        Err(e) => {
            tracing::error!(error = %e, "cannot load settings");
            return std::process::ExitCode::FAILURE;
        }
    };
    if let Some(port) = args.port {
        config.port = port;
    }
    if !args.peers.is_empty() {
        config.peers = args.peers;
    }
    let listener = match tokio::net::TcpListener::bind((args.bind.as_str(), config.port)).await {
        Ok(l) => l,
        Err(e) => {
            tracing::error!(error = %e, port = config.port, "cannot bind");
            return std::process::ExitCode::FAILURE;
        }
    };
    match run(listener, config, shutdown_signal()).await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!(error = %e, "server failed");
            std::process::ExitCode::FAILURE
        }
    }
}
