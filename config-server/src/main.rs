//! `config-server`: the binary. Parses flags, layers configuration
//! (defaults, `--config FILE`, environment, flags), sets up tracing and runs
//! the library until SIGTERM or Ctrl-C.

use std::path::PathBuf;

use clap::Parser;
use config_server::Settings;
use tracing_subscriber::EnvFilter;

/// A Git-backed configuration server speaking the Spring Cloud Config API.
#[derive(Debug, Parser)]
#[command(name = "config-server", version)]
struct Cli {
    /// Port to listen on.
    #[arg(long)]
    port: Option<u16>,
    /// Git remote to serve (file://, local path or https://).
    #[arg(long)]
    git_uri: Option<String>,
    /// Local directory to serve (repeatable; later ones rank higher).
    #[arg(long = "native-dir")]
    native_dir: Vec<PathBuf>,
    /// Label used when a request names none (main falls back to master).
    #[arg(long)]
    default_label: Option<String>,
    /// Seconds between background fetches (0: only on webhook).
    #[arg(long)]
    refresh_rate: Option<u64>,
    /// Configuration file (YAML or TOML) with the fields of `Settings`.
    #[arg(long)]
    config: Option<PathBuf>,
}

fn load(cli: &Cli) -> Result<Settings, config::ConfigError> {
    let mut builder =
        config::Config::builder().add_source(config::Config::try_from(&Settings::default())?);
    if let Some(file) = &cli.config {
        builder = builder.add_source(config::File::from(file.as_path()));
    }
    builder = builder.add_source(
        config::Environment::with_prefix("CONFIG_SERVER")
            .try_parsing(true)
            .list_separator(",")
            .with_list_parse_key("native_dirs")
            .with_list_parse_key("search_paths"),
    );
    let mut settings: Settings = builder.build()?.try_deserialize()?;
    if let Ok(key) = std::env::var("ENCRYPT_KEY") {
        settings.encrypt_key = Some(key);
    }
    if let Some(p) = cli.port {
        settings.port = p;
    }
    if let Some(uri) = &cli.git_uri {
        settings.git_uri = Some(uri.clone());
    }
    if !cli.native_dir.is_empty() {
        settings.native_dirs = cli.native_dir.clone();
    }
    if let Some(l) = &cli.default_label {
        settings.default_label = l.clone();
    }
    if let Some(r) = cli.refresh_rate {
        settings.refresh_rate = r;
    }
    Ok(settings)
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {}
        _ = term => {}
    }
    tracing::info!("shutting down");
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info")),
        )
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stdout()))
        .init();
    let cli = Cli::parse();
    let settings = match load(&cli) {
        Ok(s) => s,
        Err(e) => {
            tracing::error!(error = %e, "invalid configuration");
            return std::process::ExitCode::from(2);
        }
    };
    let addr = format!("{}:{}", settings.bind, settings.port);
    let listener = match tokio::net::TcpListener::bind(&addr).await {
        Ok(l) => l,
        Err(e) => {
            tracing::error!(error = %e, %addr, "cannot bind");
            return std::process::ExitCode::from(1);
        }
    };
    match config_server::run(listener, settings, shutdown_signal()).await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!(error = %e, "config-server failed");
            std::process::ExitCode::from(1)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_then_flags_layer_over_defaults() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("server.yml");
        std::fs::write(
            &file,
            "port: 9999\ndefault_label: trunk\nsearch_paths: [\"{application}\"]\nrefresh_rate: 5\n",
        )
        .unwrap();
        let cli = Cli::parse_from([
            "config-server",
            "--config",
            file.to_str().unwrap(),
            "--refresh-rate",
            "7",
            "--native-dir",
            "a",
            "--native-dir",
            "b",
        ]);
        let s = load(&cli).unwrap();
        assert_eq!(s.port, 9999, "from the file");
        assert_eq!(s.default_label, "trunk");
        assert_eq!(s.search_paths, ["{application}"]);
        assert_eq!(s.refresh_rate, 7, "flags win over the file");
        assert_eq!(s.native_dirs, [PathBuf::from("a"), PathBuf::from("b")]);
        assert_eq!(s.encrypt_salt, "deadbeef", "defaults fill the rest");
    }
}
