//! `api-gateway [--port 8080] [--admin-port 8081] --config FILE`
//! `[--log-format json|text|auto] [--drain-timeout DURATION]`
//!
//! Layers settings (defaults, the config file, environment variables with
//! Spring's relaxed names, flags), sets up logging and serves the proxy and
//! the admin API until SIGTERM or Ctrl-C.

use std::process::ExitCode;
use std::sync::Arc;

use api_gateway::Gateway;
use api_gateway::settings::Source;
use clap::Parser;
use cloud_runtime::cli::CommonArgs;
use cloud_runtime::settings::ProcessEnvironment;
use cloud_runtime::{logging, shutdown};

/// A Spring Cloud Gateway compatible API gateway.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Args {
    /// Proxy port [default: 8080, or server.port].
    #[arg(long)]
    port: Option<u16>,
    /// Admin API port [default: 8081, or management.server.port].
    #[arg(long)]
    admin_port: Option<u16>,
    #[command(flatten)]
    common: CommonArgs,
}

fn main() -> ExitCode {
    let args = Args::parse();
    logging::init(args.common.log_format);
    let mut flags = Vec::new();
    if let Some(p) = args.port {
        flags.push(("server.port".to_owned(), p.into(), "--port".to_owned()));
    }
    if let Some(p) = args.admin_port {
        flags.push((
            "management.server.port".to_owned(),
            p.into(),
            "--admin-port".to_owned(),
        ));
    }
    let source = Source {
        file: args.common.config.clone(),
        env: Arc::new(ProcessEnvironment),
        flags,
    };
    let gateway = match Gateway::from_source(source).and_then(|b| b.build()) {
        Ok(g) => g,
        Err(e) => {
            tracing::error!(error = %e, "invalid settings");
            eprintln!("api-gateway: {e}");
            return ExitCode::from(2);
        }
    };
    let settings = gateway.settings();
    let drain = args
        .common
        .drain_timeout
        .unwrap_or(settings.server.limits.drain_timeout);
    shutdown::run_service(drain, move |shutdown| async move {
        let server = &settings.server;
        let proxy = tokio::net::TcpListener::bind((server.address.as_str(), server.port)).await?;
        let admin_settings = &settings.management.server;
        let admin = tokio::net::TcpListener::bind((admin_settings.address.as_str(), admin_settings.port)).await?;
        tracing::info!(proxy = %proxy.local_addr()?, admin = %admin.local_addr()?, "api-gateway serving");
        let mut limits = server.limits.clone();
        limits.drain_timeout = drain;
        api_gateway::run(gateway, proxy, admin, &limits, shutdown.token().clone()).await
    })
    .exit_code()
}
