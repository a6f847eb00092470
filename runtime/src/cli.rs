//! The flags every binary of the suite takes besides its own, to be
//! flattened into its `clap` parser:
//!
//! ```
//! use clap::Parser;
//!
//! #[derive(Parser)]
//! struct Args {
//!     /// Port to listen on.
//!     #[arg(long)]
//!     port: Option<u16>,
//!     #[command(flatten)]
//!     common: cloud_runtime::cli::CommonArgs,
//! }
//!
//! let args = Args::parse_from(["svc", "--port", "1", "--config", "app.yml", "--log-format", "json"]);
//! assert_eq!(args.common.config.as_deref(), Some(std::path::Path::new("app.yml")));
//! ```

use std::path::PathBuf;
use std::time::Duration;

use crate::logging::LogFormat;

/// `--config FILE`, `--log-format`, `--drain-timeout`.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct CommonArgs {
    /// Settings file (YAML, TOML or JSON) with Spring Boot's key names;
    /// environment variables and flags override it.
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Log format: text, json, or auto (text on a terminal, JSON otherwise).
    #[arg(long, value_name = "FORMAT", default_value = "auto")]
    pub log_format: LogFormat,
    /// How long to wait for open requests and streams after SIGTERM before
    /// exiting anyway (e.g. 10s, 500ms, PT30S) [default: 10s, or
    /// spring.lifecycle.timeout-per-shutdown-phase].
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    pub drain_timeout: Option<Duration>,
}

fn parse_duration(text: &str) -> Result<Duration, crate::duration::InvalidDuration> {
    crate::duration::parse(text)
}
