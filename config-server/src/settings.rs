//! The server's configuration: a plain documented struct with defaults.
//!
//! The binary layers it through [`spring::FileSettings`], the file schema
//! with Spring Cloud Config Server's own key names: defaults, then
//! `--config FILE` (YAML, TOML or JSON), then environment variables
//! (Spring's relaxed names such as `SPRING_CLOUD_CONFIG_SERVER_GIT_URI`,
//! `ENCRYPT_KEY`; the older `CONFIG_SERVER_*` names as deprecated aliases),
//! then command-line flags.

use std::path::PathBuf;

use cloud_runtime::serve::ServeLimits;
use serde::{Deserialize, Serialize};

pub mod spring;

/// Everything the server needs to start.
#[derive(Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Settings {
    /// Address to bind. Default is `0.0.0.0`.
    pub bind: String,
    /// Port to listen on. Default is 8888.
    pub port: u16,
    /// A git remote to mirror (`file://`, local path or `https://`). When set
    /// it wins over `native_dirs`.
    pub git_uri: Option<String>,
    /// Where the bare mirror lives. Default is
    /// `<tmp>/config-server/<hash of uri>.git`.
    pub mirror_dir: Option<PathBuf>,
    /// Local directories to serve when there is no `git_uri` (later ones
    /// rank higher). Default is none: `./config-repo` when it exists, else
    /// the server refuses to start.
    pub native_dirs: Vec<PathBuf>,
    /// Sub-directories searched besides the root, with `{application}`,
    /// `{profile}` and `{label}` placeholders. Default is none.
    pub search_paths: Vec<String>,
    /// The label used when a request names none. Default is `main` (falling
    /// back to `master`).
    pub default_label: String,
    /// Seconds between background fetches. Default is 30; 0 disables them
    /// (webhooks still refresh).
    pub refresh_rate: u64,
    /// The symmetric key for `{cipher}` values (Spring's `encrypt.key`).
    pub encrypt_key: Option<String>,
    /// The hex salt of the key. Default is Spring's `deadbeef`.
    pub encrypt_salt: String,
    /// Shared secret that `/monitor` webhooks must prove. Default is none.
    pub monitor_secret: Option<String>,
    /// HTTP Basic user for every endpoint but health. Default is none (open).
    pub username: Option<String>,
    /// HTTP Basic password, with `username`.
    pub password: Option<String>,
    /// Further git repositories chosen by `application/profile` patterns
    /// (first match wins; the main repository serves the rest).
    pub repos: Vec<RepoSettings>,
    /// Bounds on the work one request may cause (file key `limits.*`).
    pub request_limits: RequestLimits,
    /// Fail at start when the first clone of a git repository fails
    /// (Spring's `clone-on-start`). Default is false: start, answer 503
    /// and retry the clone in the background.
    pub clone_on_start: bool,
    /// User name for the git remote (`https://`). Default is none.
    pub git_username: Option<String>,
    /// Password for the git remote, with `git_username`.
    pub git_password: Option<String>,
    /// Connection limits and the drain deadline of the HTTP server
    /// (Spring's `server.*` keys).
    pub connection_limits: ServeLimits,
}

/// The bounds on the work one request may cause; each over-limit request
/// is refused with a 4xx and counted (see the Limits section of
/// `docs/config-server.md`). In the settings file: `limits.<field>`
/// (`limits.max-monitor-paths`, environment `LIMITS_MAXMONITORPATHS`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct RequestLimits {
    /// Largest `POST /monitor` body in bytes; larger is a 413. Default is
    /// 1048576 (1 MiB).
    pub max_monitor_body_bytes: usize,
    /// Most distinct changed paths one webhook may name; more is a 400.
    /// Default is 1000.
    pub max_monitor_paths: usize,
    /// Most service names one changed path may give (its `-` count plus
    /// one); more is a 400. Default is 64.
    pub max_monitor_names_per_path: usize,
    /// Largest `/monitor` answer in bytes; larger is a 400. Default is
    /// 1048576 (1 MiB).
    pub max_monitor_answer_bytes: usize,
    /// Largest `/encrypt` and `/decrypt` body in bytes; larger is a 413.
    /// Default is 65536 (64 KiB).
    pub max_crypto_body_bytes: usize,
    /// Most comma-separated applications in one request; more is a 400.
    /// Default is 16.
    pub max_applications_per_request: usize,
    /// Most comma-separated profiles in one request; more is a 400.
    /// Default is 32.
    pub max_profiles_per_request: usize,
    /// Most file look-ups (candidate names x search directories x
    /// extensions) one request may cause; more is a 400. Default is 4096.
    pub max_file_lookups_per_request: usize,
    /// Deepest nesting of `${...}` placeholders; deeper is a 400. Default
    /// is 32.
    pub max_placeholder_depth: usize,
    /// Most bytes placeholder resolution may produce for one request (and,
    /// separately, read from looked-up values); more is a 400. Default is
    /// 4194304 (4 MiB).
    pub max_placeholder_output_bytes: usize,
    /// Most placeholders one request may substitute; more is a 400.
    /// Default is 100000.
    pub max_placeholder_substitutions: usize,
}

impl Default for RequestLimits {
    fn default() -> Self {
        Self {
            max_monitor_body_bytes: 1 << 20,
            max_monitor_paths: 1000,
            max_monitor_names_per_path: 64,
            max_monitor_answer_bytes: 1 << 20,
            max_crypto_body_bytes: 64 << 10,
            max_applications_per_request: 16,
            max_profiles_per_request: 32,
            max_file_lookups_per_request: 4096,
            max_placeholder_depth: 32,
            max_placeholder_output_bytes: 4 << 20,
            max_placeholder_substitutions: 100_000,
        }
    }
}

/// A git repository that serves the requests matching its patterns.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RepoSettings {
    /// A name for logs and health.
    pub name: String,
    /// `application/profile` patterns with `*` (`special*/dev*`); a pattern
    /// without `/` matches every profile.
    pub pattern: Vec<String>,
    /// The git remote.
    pub uri: String,
    /// Search paths of this repository.
    #[serde(default)]
    pub search_paths: Vec<String>,
    /// Where its mirror lives. Default is derived from the URI.
    #[serde(default)]
    pub mirror_dir: Option<PathBuf>,
    /// User name for this remote. Default is none.
    #[serde(default)]
    pub username: Option<String>,
    /// Password for this remote, with `username`.
    #[serde(default)]
    pub password: Option<String>,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            bind: "0.0.0.0".into(),
            port: 8888,
            git_uri: None,
            mirror_dir: None,
            native_dirs: Vec::new(),
            search_paths: Vec::new(),
            default_label: "main".into(),
            refresh_rate: 30,
            encrypt_key: None,
            encrypt_salt: crate::crypto::DEFAULT_SALT.into(),
            monitor_secret: None,
            username: None,
            password: None,
            repos: Vec::new(),
            request_limits: RequestLimits::default(),
            clone_on_start: false,
            git_username: None,
            git_password: None,
            connection_limits: ServeLimits::default(),
        }
    }
}

/// Shows the settings with every secret masked and credentials taken out
/// of the git URIs, so that a logged `Settings` reveals nothing.
impl std::fmt::Debug for Settings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut shown = serde_json::to_value(self).map_err(|_| std::fmt::Error)?;
        mask_secrets(&mut shown);
        write!(f, "Settings {shown}")
    }
}

/// Masks the values of secret keys and strips user information from URIs,
/// at any depth.
fn mask_secrets(value: &mut serde_json::Value) {
    match value {
        serde_json::Value::Object(map) => {
            for (key, v) in map.iter_mut() {
                let secret = ["password", "git_password", "encrypt_key", "monitor_secret"]
                    .contains(&key.as_str());
                match v {
                    serde_json::Value::String(_) if secret => *v = "***".into(),
                    serde_json::Value::String(s) if key.ends_with("uri") => {
                        *s = crate::backend::git::redact(s).into_owned();
                    }
                    other => mask_secrets(other),
                }
            }
        }
        serde_json::Value::Array(items) => items.iter_mut().for_each(mask_secrets),
        _ => {}
    }
}

/// Settings that cannot work.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("invalid settings: {0}")]
pub struct InvalidSettings(pub String);

impl Settings {
    /// Checks the settings hang together.
    pub fn validate(&self) -> Result<(), InvalidSettings> {
        if self.username.is_some() != self.password.is_some() {
            return Err(InvalidSettings(
                "username and password must be set together".into(),
            ));
        }
        if hex::decode(&self.encrypt_salt).is_err() {
            return Err(InvalidSettings("encrypt_salt must be hex".into()));
        }
        if self.default_label.is_empty() {
            return Err(InvalidSettings("default_label must not be empty".into()));
        }
        if self.git_username.is_some() != self.git_password.is_some() {
            return Err(InvalidSettings(
                "the git username and password must be set together".into(),
            ));
        }
        if let Some(r) = self.repos.iter().find(|r| r.pattern.is_empty()) {
            return Err(InvalidSettings(format!("repo {} needs a pattern", r.name)));
        }
        let mut all_paths = self
            .search_paths
            .iter()
            .chain(self.repos.iter().flat_map(|r| r.search_paths.iter()));
        if all_paths.any(|p| p.split('/').any(|c| c == "..")) {
            return Err(InvalidSettings("search_paths must not contain '..'".into()));
        }
        Ok(())
    }

    /// The directory served when neither a git URI nor native directories
    /// are configured: `./config-repo` when it exists.
    pub fn local_repo() -> Option<PathBuf> {
        let local = PathBuf::from("config-repo");
        local.is_dir().then_some(local)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid_and_match_the_docs() {
        let s = Settings::default();
        assert_eq!(s.port, 8888);
        assert_eq!(s.default_label, "main");
        assert_eq!(s.encrypt_salt, "deadbeef");
        assert_eq!(s.validate(), Ok(()));
        assert!(!s.clone_on_start);
    }

    #[test]
    fn debug_output_reveals_no_secret() {
        let s = Settings {
            git_uri: Some("https://alice:TOPSECRET@host/cfg.git".into()),
            password: Some("TOPSECRET".into()),
            encrypt_key: Some("TOPSECRET".into()),
            monitor_secret: Some("TOPSECRET".into()),
            ..Settings::default()
        };
        let shown = format!("{s:?}");
        assert!(
            !shown.contains("TOPSECRET") && !shown.contains("alice"),
            "{shown}"
        );
        assert!(shown.contains("host/cfg.git"), "{shown}");
    }

    #[test]
    fn half_configured_auth_is_refused() {
        let s = Settings {
            username: Some("u".into()),
            ..Settings::default()
        };
        assert!(s.validate().is_err());
    }
}
