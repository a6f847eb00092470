//! Tracing setup, the same for every binary: a `RUST_LOG`-style filter
//! (default `info`), human-readable text on a terminal, JSON lines otherwise
//! (for log shippers), or the format a flag asks for.

use std::io::IsTerminal as _;
use std::str::FromStr;

use tracing_subscriber::EnvFilter;

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum LogFormat {
    /// Text on a terminal, JSON lines otherwise.
    #[default]
    Auto,
    /// Human-readable text (colour only on a terminal).
    Text,
    /// One JSON object per line.
    Json,
}

/// A `--log-format` value other than `json`, `text` or `auto`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown log format `{0}`: expected json, text or auto")]
pub struct UnknownLogFormat(String);

impl FromStr for LogFormat {
    type Err = UnknownLogFormat;

    fn from_str(s: &str) -> Result<LogFormat, UnknownLogFormat> {
        match s.to_ascii_lowercase().as_str() {
            "auto" => Ok(LogFormat::Auto),
            "text" => Ok(LogFormat::Text),
            "json" => Ok(LogFormat::Json),
            _ => Err(UnknownLogFormat(s.to_owned())),
        }
    }
}

impl LogFormat {
    /// The format actually used: `Auto` resolved against whether standard
    /// output is a terminal.
    pub fn resolve(self) -> LogFormat {
        match self {
            LogFormat::Auto if std::io::stdout().is_terminal() => LogFormat::Text,
            LogFormat::Auto => LogFormat::Json,
            other => other,
        }
    }
}

/// Installs the global subscriber. The filter comes from `RUST_LOG`, or is
/// `info` when that is unset or invalid. Calling it twice keeps the first
/// subscriber (and says so on standard error).
pub fn init(format: LogFormat) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt().with_env_filter(filter);
    let installed = match format.resolve() {
        LogFormat::Json => builder.json().flatten_event(true).try_init(),
        _ => builder
            .with_ansi(std::io::stdout().is_terminal())
            .try_init(),
    };
    if let Err(e) = installed {
        eprintln!("logging already set up: {e}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_parse_case_insensitively() {
        assert_eq!("JSON".parse::<LogFormat>(), Ok(LogFormat::Json));
        assert_eq!("text".parse::<LogFormat>(), Ok(LogFormat::Text));
        assert!("xml".parse::<LogFormat>().is_err());
        assert_eq!(LogFormat::Json.resolve(), LogFormat::Json);
    }
}
