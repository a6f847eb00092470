//! `api-gateway [--port 8080] [--admin-port 8081] --config FILE`
//! `[--log-format json|text|auto] [--drain-timeout DURATION]`
//!
//! Layers settings (defaults, the config file, environment variables with
//! Spring's relaxed names, flags), sets up logging, starts the Eureka
//! discovery client when `eureka.client.service-url.defaultZone` is set
//! (`lb://` routes and the discovery locator then follow the registry), and
//! serves the proxy and the admin API until SIGTERM or Ctrl-C; then the
//! discovery client stops (deregistering the gateway if it registered).

use std::process::ExitCode;
use std::sync::Arc;

use api_gateway::Gateway;
use api_gateway::resolve::{RegistryInstances, ServiceInstances, client_settings};
use api_gateway::settings::Source;
use clap::Parser;
use cloud_runtime::cli::CommonArgs;
use cloud_runtime::settings::ProcessEnvironment;
use cloud_runtime::{logging, shutdown};

/// mimalloc: per-thread free lists instead of glibc's arena locks on the
/// request path (see docs/benchmarks.md, api-gateway).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

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
    let (gateway, registry) = match build(source) {
        Ok(built) => built,
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
        let discovery = match (&registry, client_settings(&settings, proxy.local_addr()?.port())) {
            (Some(registry), Ok(Some(client))) => {
                Some(registry.start(client).await.map_err(std::io::Error::other)?)
            }
            (_, Err(e)) => return Err(std::io::Error::other(e)),
            _ => None,
        };
        let served = api_gateway::run(gateway, proxy, admin, &limits, shutdown.token().clone()).await;
        if let Some(d) = discovery
            && let Err(e) = d.shutdown().await
        {
            tracing::warn!(error = %e, "could not deregister from the registry");
        }
        served
    })
    .exit_code()
}

/// The registry view `lb://` resolves through, when one is configured.
type Registry = Option<Arc<RegistryInstances>>;

/// The gateway, resolving `lb://` through the registry when one is
/// configured (the view is empty until the discovery client starts).
fn build(source: Source) -> Result<(Gateway, Registry), Box<dyn std::error::Error>> {
    let settings = source.load()?;
    let registry =
        client_settings(&settings, settings.server.port)?.map(|_| RegistryInstances::new());
    let mut builder = Gateway::builder(settings).source(source);
    if let Some(r) = &registry {
        builder = builder.resolver(Arc::clone(r) as Arc<dyn ServiceInstances>);
    }
    Ok((builder.build()?, registry))
}
