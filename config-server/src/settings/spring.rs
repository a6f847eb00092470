//! The settings file schema: Spring Cloud Config Server's own key names, so
//! that the `application.yml` of a Spring config server is read unchanged,
//! and the layering of defaults, `--config FILE`, the environment and flags
//! into [`Settings`].
//!
//! # Keys (Spring's names, relaxed: kebab, camel or snake case)
//! | key | meaning | default |
//! |---|---|---|
//! | `server.address` | address to bind | `0.0.0.0` |
//! | `server.port` | port | 8888 |
//! | `server.connection-timeout`, `server.keep-alive-timeout`, `server.send-timeout` (ours), `server.max-connections`, `server.max-http-request-header-size`, `server.max-headers`, `server.drain-timeout` | connection limits ([`ServeLimits`]) | 10 s, 60 s, 60 s, 8192, 32 KiB, 100, 10 s |
//! | `spring.lifecycle.timeout-per-shutdown-phase` | drain deadline after SIGTERM | 10 s |
//! | `spring.cloud.config.server.git.uri` | git remote | none |
//! | `spring.cloud.config.server.git.search-paths` | search paths | none |
//! | `spring.cloud.config.server.git.default-label` | default label | `main` |
//! | `spring.cloud.config.server.git.clone-on-start` | fail at start when the first clone fails | false |
//! | `spring.cloud.config.server.git.refresh-rate` | seconds between background fetches (0: webhooks only) | 30 |
//! | `spring.cloud.config.server.git.username` / `.password` | git remote credentials | none |
//! | `spring.cloud.config.server.git.basedir` | mirror directory | `<tmp>/config-server/<hash>.git` |
//! | `spring.cloud.config.server.git.repos.<name>.pattern` / `.uri` / `.search-paths` / `.basedir` / `.username` / `.password` | pattern-matched repositories (a bare URI string is a repository whose pattern is its name) | none |
//! | `spring.cloud.config.server.native.search-locations` | directories (`file:` prefix optional) | none |
//! | `spring.profiles.active` | `native` serves the search locations even when a git URI is set | none |
//! | `encrypt.key` / `encrypt.salt` | `{cipher}` key and hex salt | none / `deadbeef` |
//! | `spring.security.user.name` / `.password` | HTTP Basic credentials | none |
//! | `monitor-secret` | secret `/monitor` webhooks must prove | none |
//!
//! Keys of a Spring application.yml that do not concern us
//! (`spring.application.name`, `management.*`, ...) are ignored, as Spring
//! ignores keys it does not bind.
//!
//! # Aliases
//! The flat names of earlier releases stay accepted in the file: `bind`,
//! `port`, `git_uri`, `mirror_dir`, `native_dirs`, `search_paths`,
//! `default_label`, `refresh_rate`, `encrypt_key`, `encrypt_salt`,
//! `username`, `password` (HTTP Basic) and `repos` (a list of
//! [`RepoSettings`]). When a file has both spellings of a key, the flat one
//! wins. The environment variables `CONFIG_SERVER_<FLAT NAME>` are
//! deprecated aliases (a warning names the new variable);
//! `ENCRYPT_KEY` is Spring's relaxed name of `encrypt.key`.

use std::path::{Path, PathBuf};
use std::time::Duration;

use cloud_runtime::serve::ServeLimits;
use cloud_runtime::settings::{ConfigError, Environment, Layers};
use serde::de::Error as _;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::{Map, Value, json};

use super::{InvalidSettings, RepoSettings, RequestLimits, Settings};

/// The settings file, with Spring's key names. Its default is the schema
/// used for relaxed matching and type coercion.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "kebab-case")]
pub struct FileSettings {
    /// `server.*`.
    pub server: ServerSection,
    /// `spring.*`.
    pub spring: SpringSection,
    /// `encrypt.*`.
    pub encrypt: EncryptSection,
    /// The secret that `/monitor` webhooks must prove. Default is none.
    pub monitor_secret: Option<String>,
    /// `limits.*`: bounds on the work one request may cause.
    pub limits: RequestLimits,
}

/// `server.*`: where to listen and the connection limits.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "kebab-case")]
pub struct ServerSection {
    /// Address to bind. Default is `0.0.0.0`.
    pub address: String,
    /// Port. Default is 8888.
    pub port: u16,
    /// Connection limits (`server.connection-timeout`, ...).
    #[serde(flatten, deserialize_with = "cloud_runtime::settings::flattened")]
    pub limits: ServeLimits,
}

impl Default for ServerSection {
    fn default() -> Self {
        Self {
            address: "0.0.0.0".into(),
            port: 8888,
            limits: ServeLimits::default(),
        }
    }
}

/// `spring.*`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "kebab-case")]
pub struct SpringSection {
    /// `spring.cloud.*`.
    pub cloud: CloudSection,
    /// `spring.profiles.*`.
    pub profiles: ProfilesSection,
    /// `spring.security.*`.
    pub security: SecuritySection,
    /// `spring.lifecycle.*`.
    pub lifecycle: LifecycleSection,
}

/// `spring.cloud.*`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "kebab-case")]
pub struct CloudSection {
    /// `spring.cloud.config.*`.
    pub config: CloudConfigSection,
}

/// `spring.cloud.config.*`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "kebab-case")]
pub struct CloudConfigSection {
    /// `spring.cloud.config.server.*`.
    pub server: ConfigServerSection,
}

/// `spring.cloud.config.server.*`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "kebab-case")]
pub struct ConfigServerSection {
    /// The git backend.
    pub git: GitSection,
    /// The native (directories) backend.
    pub native: NativeSection,
}

/// `spring.cloud.config.server.git.*`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "kebab-case")]
pub struct GitSection {
    /// The remote. Default is none.
    pub uri: Option<String>,
    /// Search paths with `{application}`, `{profile}`, `{label}`.
    pub search_paths: Vec<String>,
    /// The label when a request names none. Default is `main`.
    pub default_label: String,
    /// Fail at start when the first clone fails. Default is false.
    pub clone_on_start: bool,
    /// Seconds between background fetches; 0 disables them. Default is 30.
    pub refresh_rate: u64,
    /// Remote user name. Default is none.
    pub username: Option<String>,
    /// Remote password. Default is none.
    pub password: Option<String>,
    /// Where the mirror lives. Default is derived from the URI.
    pub basedir: Option<PathBuf>,
    /// Pattern-matched repositories, in file order.
    pub repos: RepoMap,
}

impl Default for GitSection {
    fn default() -> Self {
        Self {
            uri: None,
            search_paths: Vec::new(),
            default_label: "main".into(),
            clone_on_start: false,
            refresh_rate: 30,
            username: None,
            password: None,
            basedir: None,
            repos: RepoMap::default(),
        }
    }
}

/// `spring.cloud.config.server.native.*`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "kebab-case")]
pub struct NativeSection {
    /// Directories, as paths or `file:` URLs; later ones rank higher.
    pub search_locations: Vec<String>,
}

/// `spring.profiles.*`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "kebab-case")]
pub struct ProfilesSection {
    /// Active profiles; `native` selects the native backend.
    pub active: Vec<String>,
}

/// `spring.security.*`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "kebab-case")]
pub struct SecuritySection {
    /// `spring.security.user.*`.
    pub user: cloud_runtime::auth::UserSettings,
}

pub use cloud_runtime::settings::LifecycleSection;

/// `encrypt.*`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "kebab-case")]
pub struct EncryptSection {
    /// The symmetric key. Default is none.
    pub key: Option<String>,
    /// Hex salt. Default is `deadbeef`.
    pub salt: String,
}

impl Default for EncryptSection {
    fn default() -> Self {
        Self {
            key: None,
            salt: crate::crypto::DEFAULT_SALT.into(),
        }
    }
}

/// `spring.cloud.config.server.git.repos`: named repositories in the order
/// written. Each is a URI string (its pattern is its name) or a mapping
/// with `pattern`, `uri`, `search-paths`, ...; a YAML list is accepted too
/// (entries named by position).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RepoMap(pub Vec<(String, SpringRepo)>);

/// One entry of [`RepoMap`].
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default, rename_all = "kebab-case")]
pub struct SpringRepo {
    /// `application/profile` patterns (a list or a comma-separated string).
    /// Default is the repository's name.
    #[serde(alias = "patterns", deserialize_with = "string_list")]
    pub pattern: Vec<String>,
    /// The remote.
    pub uri: String,
    /// Search paths (a list or a comma-separated string).
    #[serde(
        alias = "searchPaths",
        alias = "search_paths",
        alias = "searchpaths",
        deserialize_with = "string_list"
    )]
    pub search_paths: Vec<String>,
    /// Where its mirror lives.
    pub basedir: Option<PathBuf>,
    /// Remote user name.
    pub username: Option<String>,
    /// Remote password.
    pub password: Option<String>,
}

impl Serialize for RepoMap {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let mut map = s.serialize_map(Some(self.0.len()))?;
        for (name, repo) in &self.0 {
            let entry = repo_entry(repo.clone());
            map.serialize_entry(name, &entry)?;
        }
        map.end()
    }
}

impl<'de> Deserialize<'de> for RepoMap {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let entries: Vec<(String, Value)> = match Value::deserialize(d)? {
            Value::Object(m) => m.into_iter().collect(),
            Value::Array(items) => items
                .into_iter()
                .enumerate()
                .map(|(i, v)| (i.to_string(), v))
                .collect(),
            Value::Null => Vec::new(),
            other => {
                return Err(D::Error::custom(format!(
                    "expected a mapping of repositories, found `{other}`"
                )));
            }
        };
        // Environment variables arrive as `name.field` entries
        // (`SPRING_CLOUD_CONFIG_SERVER_GIT_REPOS_SPECIAL_URI`).
        let mut merged: Vec<(String, Value)> = Vec::new();
        for (key, value) in entries {
            let (name, value) = match key.split_once('.') {
                Some((name, field)) => (name.to_string(), json!({ field.replace('.', ""): value })),
                None => (key, value),
            };
            match merged.iter_mut().find(|(n, _)| *n == name) {
                Some((_, existing)) => merge_repo(existing, value),
                None => merged.push((name, value)),
            }
        }
        let mut repos = Vec::new();
        for (name, value) in merged {
            let mut repo: SpringRepo = match value {
                Value::String(uri) => SpringRepo {
                    uri,
                    ..SpringRepo::default()
                },
                other => SpringRepo::deserialize(other)
                    .map_err(|e| D::Error::custom(format!("repository `{name}`: {e}")))?,
            };
            if repo.uri.is_empty() {
                return Err(D::Error::custom(format!("repository `{name}` needs a uri")));
            }
            if repo.pattern.is_empty() {
                repo.pattern = vec![name.clone()];
            }
            repos.push((name, repo));
        }
        Ok(RepoMap(repos))
    }
}

/// Lays `over` onto a repository entry (a bare URI string counts as
/// `{uri: ...}`).
fn merge_repo(existing: &mut Value, over: Value) {
    if let Value::String(uri) = existing {
        *existing = json!({ "uri": uri });
    }
    if let (Value::Object(base), Value::Object(fields)) = (existing, over) {
        base.extend(fields);
    }
}

/// A list given as a YAML list or a comma-separated string.
#[derive(Deserialize)]
#[serde(untagged)]
enum StringList {
    One(String),
    Many(Vec<String>),
}

impl StringList {
    fn into_vec(self) -> Vec<String> {
        match self {
            StringList::One(s) => s
                .split(',')
                .map(str::trim)
                .filter(|p| !p.is_empty())
                .map(str::to_string)
                .collect(),
            StringList::Many(v) => v,
        }
    }
}

fn string_list<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    Ok(Option::<StringList>::deserialize(d)?
        .map(StringList::into_vec)
        .unwrap_or_default())
}

/// An optional number given as a number or a numeric string.
fn lenient_number<'de, D, N>(d: D) -> Result<Option<N>, D::Error>
where
    D: Deserializer<'de>,
    N: std::str::FromStr + TryFrom<u64>,
{
    let wanted = || format!("a number up to {}", std::any::type_name::<N>());
    match Option::<Value>::deserialize(d)? {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Number(n)) => n
            .as_u64()
            .and_then(|n| N::try_from(n).ok())
            .map(Some)
            .ok_or_else(|| D::Error::custom(format!("`{n}` is not {}", wanted()))),
        Some(Value::String(s)) => s
            .trim()
            .parse()
            .map(Some)
            .map_err(|_| D::Error::custom(format!("`{s}` is not {}", wanted()))),
        Some(other) => Err(D::Error::custom(format!("`{other}` is not {}", wanted()))),
    }
}

/// The flat names of earlier releases, read from the file only.
#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(default)]
struct FlatAliases {
    bind: Option<String>,
    #[serde(deserialize_with = "lenient_number")]
    port: Option<u16>,
    git_uri: Option<String>,
    mirror_dir: Option<PathBuf>,
    #[serde(deserialize_with = "optional_string_list")]
    native_dirs: Option<Vec<String>>,
    #[serde(deserialize_with = "optional_string_list")]
    search_paths: Option<Vec<String>>,
    default_label: Option<String>,
    #[serde(deserialize_with = "lenient_number")]
    refresh_rate: Option<u64>,
    encrypt_key: Option<String>,
    encrypt_salt: Option<String>,
    username: Option<String>,
    password: Option<String>,
    repos: Option<Vec<RepoSettings>>,
}

fn optional_string_list<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Vec<String>>, D::Error> {
    Ok(Option::<StringList>::deserialize(d)?.map(StringList::into_vec))
}

/// The keys that the flat aliases stand for.
const GIT: &str = "spring.cloud.config.server.git";
const NATIVE_LOCATIONS: &str = "spring.cloud.config.server.native.search-locations";

/// The deprecated environment variables and the keys they stand for.
fn deprecated_env_names() -> Vec<(&'static str, String)> {
    vec![
        ("CONFIG_SERVER_BIND", "server.address".into()),
        ("CONFIG_SERVER_PORT", "server.port".into()),
        ("CONFIG_SERVER_GIT_URI", format!("{GIT}.uri")),
        ("CONFIG_SERVER_MIRROR_DIR", format!("{GIT}.basedir")),
        ("CONFIG_SERVER_NATIVE_DIRS", NATIVE_LOCATIONS.into()),
        ("CONFIG_SERVER_SEARCH_PATHS", format!("{GIT}.search-paths")),
        (
            "CONFIG_SERVER_DEFAULT_LABEL",
            format!("{GIT}.default-label"),
        ),
        ("CONFIG_SERVER_REFRESH_RATE", format!("{GIT}.refresh-rate")),
        ("CONFIG_SERVER_ENCRYPT_KEY", "encrypt.key".into()),
        ("CONFIG_SERVER_ENCRYPT_SALT", "encrypt.salt".into()),
        ("CONFIG_SERVER_MONITOR_SECRET", "monitor-secret".into()),
        ("CONFIG_SERVER_USERNAME", "spring.security.user.name".into()),
        (
            "CONFIG_SERVER_PASSWORD",
            "spring.security.user.password".into(),
        ),
    ]
}

/// Values given as command-line flags (the highest layer).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Flags {
    /// `--port`.
    pub port: Option<u16>,
    /// `--git-uri`.
    pub git_uri: Option<String>,
    /// `--native-dir` (repeatable).
    pub native_dirs: Vec<PathBuf>,
    /// `--default-label`.
    pub default_label: Option<String>,
    /// `--refresh-rate` (seconds).
    pub refresh_rate: Option<u64>,
    /// `--drain-timeout`.
    pub drain_timeout: Option<Duration>,
}

/// Settings that could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum SettingsError {
    /// A value does not fit its key (names the file, variable or flag and
    /// the key).
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The values do not hang together.
    #[error(transparent)]
    Invalid(#[from] InvalidSettings),
}

/// What [`load`] produces.
#[derive(Debug, Clone, PartialEq)]
pub struct Loaded {
    /// The server's settings.
    pub settings: Settings,
    /// The drain deadline after SIGTERM (`--drain-timeout`, else
    /// `spring.lifecycle.timeout-per-shutdown-phase`).
    pub drain_timeout: Duration,
}

/// Layers defaults < `file` < `env` (Spring's relaxed names, then the
/// deprecated `CONFIG_SERVER_*` names below them) < `flags`, and maps the
/// result onto [`Settings`].
pub fn load(
    file: Option<&Path>,
    env: &dyn Environment,
    flags: &Flags,
) -> Result<Loaded, SettingsError> {
    let flat: FlatAliases = Layers::new::<FlatAliases>()?.optional_file(file)?.load()?;
    let mut layers = Layers::new::<FileSettings>()?.optional_file(file)?;
    let origin = |name: &str| match file {
        Some(f) => format!("key `{name}` of {}", f.display()),
        None => name.to_string(),
    };
    layers = layers
        .set_some("server.address", flat.bind, &origin("bind"))
        .set_some("server.port", flat.port, &origin("port"))
        .set_some(&format!("{GIT}.uri"), flat.git_uri, &origin("git_uri"))
        .set_some(
            &format!("{GIT}.basedir"),
            flat.mirror_dir.map(|p| p.display().to_string()),
            &origin("mirror_dir"),
        )
        .set_some(NATIVE_LOCATIONS, flat.native_dirs, &origin("native_dirs"))
        .set_some(
            &format!("{GIT}.search-paths"),
            flat.search_paths,
            &origin("search_paths"),
        )
        .set_some(
            &format!("{GIT}.default-label"),
            flat.default_label,
            &origin("default_label"),
        )
        .set_some(
            &format!("{GIT}.refresh-rate"),
            flat.refresh_rate,
            &origin("refresh_rate"),
        )
        .set_some("encrypt.key", flat.encrypt_key, &origin("encrypt_key"))
        .set_some("encrypt.salt", flat.encrypt_salt, &origin("encrypt_salt"))
        .set_some(
            "spring.security.user.name",
            flat.username,
            &origin("username"),
        )
        .set_some(
            "spring.security.user.password",
            flat.password,
            &origin("password"),
        );
    if let Some(repos) = flat.repos {
        layers = layers.set(&format!("{GIT}.repos"), flat_repos(repos), &origin("repos"));
    }
    for (var, key) in deprecated_env_names() {
        layers = layers.env_alias(env, var, &key);
    }
    let native_dirs: Vec<String> = flags
        .native_dirs
        .iter()
        .map(|d| d.display().to_string())
        .collect();
    let layers = layers
        .env(env)
        .set_some("server.port", flags.port, "--port")
        .set_some(&format!("{GIT}.uri"), flags.git_uri.clone(), "--git-uri")
        .set_some(
            NATIVE_LOCATIONS,
            (!native_dirs.is_empty()).then_some(native_dirs),
            "--native-dir",
        )
        .set_some(
            &format!("{GIT}.default-label"),
            flags.default_label.clone(),
            "--default-label",
        )
        .set_some(
            &format!("{GIT}.refresh-rate"),
            flags.refresh_rate,
            "--refresh-rate",
        );
    let file_settings: FileSettings = layers.load()?;
    let drain_timeout = flags
        .drain_timeout
        .unwrap_or(file_settings.spring.lifecycle.timeout_per_shutdown_phase);
    let mut settings = file_settings.into_settings()?;
    // Connections get no longer than the process does.
    let limits = &mut settings.connection_limits;
    limits.drain_timeout = limits.drain_timeout.min(drain_timeout);
    Ok(Loaded {
        settings,
        drain_timeout,
    })
}

/// One repository as the file would spell it.
fn repo_entry(repo: SpringRepo) -> Value {
    let mut entry = json!({
        "pattern": repo.pattern,
        "uri": repo.uri,
        "search-paths": repo.search_paths,
    });
    for (key, value) in [
        ("basedir", repo.basedir.map(|p| p.display().to_string())),
        ("username", repo.username),
        ("password", repo.password),
    ] {
        if let Some(v) = value {
            entry[key] = Value::String(v);
        }
    }
    entry
}

/// Today's `repos` list as Spring's named mapping.
fn flat_repos(repos: Vec<RepoSettings>) -> Value {
    let mut map = Map::new();
    for r in repos {
        let entry = repo_entry(SpringRepo {
            pattern: r.pattern,
            uri: r.uri,
            search_paths: r.search_paths,
            basedir: r.mirror_dir,
            username: r.username,
            password: r.password,
        });
        map.insert(r.name, entry);
    }
    Value::Object(map)
}

/// A search location as a directory: `file:` URLs lose their scheme;
/// `classpath:` has no meaning here.
fn location_dir(location: &str) -> Result<PathBuf, InvalidSettings> {
    if let Some(rest) = location.strip_prefix("file:") {
        let path = rest.strip_prefix("//").unwrap_or(rest);
        return Ok(PathBuf::from(path));
    }
    if location.starts_with("classpath:") {
        return Err(InvalidSettings(format!(
            "{NATIVE_LOCATIONS}: `{location}`: classpath locations are not supported; give a directory"
        )));
    }
    Ok(PathBuf::from(location))
}

impl FileSettings {
    /// Maps the file schema onto [`Settings`].
    pub fn into_settings(self) -> Result<Settings, InvalidSettings> {
        let git = self.spring.cloud.config.server.git;
        let native_profile = self.spring.profiles.active.iter().any(|p| p == "native");
        if native_profile && git.uri.is_some() {
            tracing::info!("profile `native` is active: serving the search locations, not git");
        }
        let native_dirs = self
            .spring
            .cloud
            .config
            .server
            .native
            .search_locations
            .iter()
            .map(|l| location_dir(l))
            .collect::<Result<Vec<_>, _>>()?;
        let repos = git
            .repos
            .0
            .into_iter()
            .map(|(name, r)| RepoSettings {
                name,
                pattern: r.pattern,
                uri: r.uri,
                search_paths: r.search_paths,
                mirror_dir: r.basedir,
                username: r.username,
                password: r.password,
            })
            .collect();
        Ok(Settings {
            bind: self.server.address,
            port: self.server.port,
            git_uri: if native_profile { None } else { git.uri },
            mirror_dir: git.basedir,
            native_dirs,
            search_paths: git.search_paths,
            default_label: git.default_label,
            refresh_rate: git.refresh_rate,
            encrypt_key: self.encrypt.key,
            encrypt_salt: self.encrypt.salt,
            monitor_secret: self.monitor_secret,
            username: Some(self.spring.security.user.name).filter(|n| !n.is_empty()),
            password: Some(self.spring.security.user.password).filter(|p| !p.is_empty()),
            repos,
            clone_on_start: git.clone_on_start,
            git_username: git.username,
            git_password: git.password,
            connection_limits: self.server.limits,
            request_limits: self.limits,
        })
    }
}
