//! Client settings with Spring's property names.
//!
//! [`ClientSettings`] is a plain serde struct shaped like Spring's property
//! tree (kebab-case, `defaultZone` as Spring writes it), so any layered
//! loader can fill it. [`ClientSettings::from_properties`] reads flat dotted
//! keys instead (a `.properties` file, a flattened YAML document, the
//! environment after relaxed mapping) and matches them the way Spring's
//! relaxed binding does: case, `-` and `_` do not matter, so
//! `eureka.client.serviceUrl.defaultZone`,
//! `eureka.client.service-url.default-zone` and the environment form
//! `eureka.client.serviceurl.defaultzone` are one key. Unknown keys are
//! ignored; a value that does not parse, or is out of range, is a
//! [`SettingsError`] naming the key.
//!
//! [`ClientSettings::load`] reads them the way every binary of the suite
//! reads its settings (`cloud-runtime`'s layering): defaults, then
//! `application.yml` (with profile documents), then environment variables
//! in Spring's form (`EUREKA_CLIENT_SERVICEURL_DEFAULTZONE`), then flags.
//!
//! ```
//! use cloud_client::settings::ClientSettings;
//!
//! let s = ClientSettings::from_properties([
//!     ("spring.application.name", "user-service"),
//!     ("EUREKA_CLIENT_SERVICEURL_DEFAULTZONE", "http://a:8761/eureka/,http://b:8761/eureka/"),
//!     ("eureka.instance.metadata-map.zone", "zone-a"),
//!     ("some.unknown.key", "ignored"),
//! ]).unwrap();
//! assert_eq!(s.eureka_service_urls().unwrap().len(), 2);
//! assert_eq!(s.eureka.instance.metadata_map.get("zone").map(String::as_str), Some("zone-a"));
//!
//! let err = ClientSettings::from_properties([("eureka.client.registry-fetch-interval-seconds", "soon")])
//!     .unwrap_err();
//! assert_eq!(err.key(), "eureka.client.registry-fetch-interval-seconds");
//! ```

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

use serde::{Deserialize, Deserializer, Serialize};

/// The boxed cause of a [`SettingsError`].
type Cause = Box<dyn std::error::Error + Send + Sync + 'static>;

/// A setting whose value is wrong; names the key (in Spring's kebab form).
#[derive(Debug, thiserror::Error)]
#[error("setting '{key}' = '{value}': {source}")]
pub struct SettingsError {
    key: String,
    value: String,
    #[source]
    source: Cause,
}

impl SettingsError {
    pub(crate) fn new(
        key: impl Into<String>,
        value: impl Into<String>,
        source: impl Into<Cause>,
    ) -> Self {
        SettingsError {
            key: key.into(),
            value: value.into(),
            source: source.into(),
        }
    }

    /// The key, in Spring's kebab form (`eureka.client.service-url.defaultZone`).
    pub fn key(&self) -> &str {
        &self.key
    }

    /// The value given.
    pub fn value(&self) -> &str {
        &self.value
    }
}

/// A value outside its allowed range or shape.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("expected {expected}")]
pub struct Invalid {
    expected: &'static str,
}

impl Invalid {
    pub(crate) fn expected(expected: &'static str) -> Self {
        Invalid { expected }
    }
}

/// Every setting the client reads, in Spring's tree shape.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default, rename_all = "kebab-case")]
pub struct ClientSettings {
    /// `server.*`.
    pub server: ServerSettings,
    /// `spring.*`.
    pub spring: SpringSettings,
    /// `eureka.*`.
    pub eureka: EurekaSettings,
}

/// `server.*`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "kebab-case")]
pub struct ServerSettings {
    /// `server.port`: the port this service listens on, registered with
    /// Eureka. Default is 8080.
    pub port: u16,
}

impl Default for ServerSettings {
    fn default() -> Self {
        ServerSettings { port: 8080 }
    }
}

/// `spring.*`.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default, rename_all = "kebab-case")]
pub struct SpringSettings {
    /// `spring.application.*`.
    pub application: ApplicationSettings,
    /// `spring.profiles.*`.
    pub profiles: ProfilesSettings,
    /// `spring.config.*`.
    pub config: SpringConfigSettings,
    /// `spring.cloud.*`.
    pub cloud: CloudSettings,
}

/// `spring.application.*`.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default, rename_all = "kebab-case")]
pub struct ApplicationSettings {
    /// `spring.application.name`: the service name, used for Eureka and the
    /// config server. Default is unset (then `application`, as Spring).
    pub name: Option<String>,
}

/// `spring.profiles.*`.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default, rename_all = "kebab-case")]
pub struct ProfilesSettings {
    /// `spring.profiles.active`: comma-separated or a list. Default is
    /// empty (then `default`).
    #[serde(deserialize_with = "comma_list")]
    pub active: Vec<String>,
}

/// `spring.config.*`.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default, rename_all = "kebab-case")]
pub struct SpringConfigSettings {
    /// `spring.config.import`: comma-separated or a list, such as
    /// `optional:configserver:http://user:pass@config:8888`. Only
    /// `configserver:` entries are acted upon.
    #[serde(deserialize_with = "comma_list")]
    pub import: Vec<String>,
}

/// `spring.cloud.*`.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default, rename_all = "kebab-case")]
pub struct CloudSettings {
    /// `spring.cloud.config.*`.
    pub config: ConfigClientSettings,
}

/// `spring.cloud.config.*`: the config client.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "kebab-case")]
pub struct ConfigClientSettings {
    /// `spring.cloud.config.enabled`. Default is true.
    pub enabled: bool,
    /// `spring.cloud.config.uri`: the server when `spring.config.import`
    /// names none (Spring's legacy bootstrap key). Default is unset.
    pub uri: Option<String>,
    /// `spring.cloud.config.label`: branch, tag or commit. Default is unset
    /// (the server's default label).
    pub label: Option<String>,
    /// `spring.cloud.config.fail-fast`: refuse to start when the server
    /// cannot be reached. Default is false.
    pub fail_fast: bool,
    /// `spring.cloud.config.username`: overrides the user in the URI.
    pub username: Option<String>,
    /// `spring.cloud.config.password`: overrides the password in the URI.
    pub password: Option<String>,
    /// `spring.cloud.config.request-read-timeout`, in milliseconds. Default
    /// is 185000, as Spring.
    pub request_read_timeout: u64,
    /// `spring.cloud.config.request-connect-timeout`, in milliseconds.
    /// Default is 10000, as Spring.
    pub request_connect_timeout: u64,
    /// `spring.cloud.config.cache-file` (ours): where the last fetched
    /// environment is kept, to start from when the server is down and
    /// fail-fast is off. Default is unset (no cached copy).
    pub cache_file: Option<String>,
    /// `spring.cloud.config.watch.*` (ours): live refresh.
    pub watch: ConfigWatchSettings,
}

impl Default for ConfigClientSettings {
    fn default() -> Self {
        ConfigClientSettings {
            enabled: true,
            uri: None,
            label: None,
            fail_fast: false,
            username: None,
            password: None,
            request_read_timeout: 185_000,
            request_connect_timeout: 10_000,
            cache_file: None,
            watch: ConfigWatchSettings::default(),
        }
    }
}

/// `spring.cloud.config.watch.*` (ours, named after Spring Cloud Consul's
/// `watch.enabled` / `watch.delay`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "kebab-case")]
pub struct ConfigWatchSettings {
    /// `spring.cloud.config.watch.enabled`: follow changes. Default is true.
    pub enabled: bool,
    /// `spring.cloud.config.watch.delay`: milliseconds between polls of the
    /// environment's version when the server offers no change stream, and
    /// before reconnecting a broken stream. Default is 30000.
    pub delay: u64,
}

impl Default for ConfigWatchSettings {
    fn default() -> Self {
        ConfigWatchSettings {
            enabled: true,
            delay: 30_000,
        }
    }
}

/// `eureka.*`.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default, rename_all = "kebab-case")]
pub struct EurekaSettings {
    /// `eureka.client.*`.
    pub client: EurekaClientSettings,
    /// `eureka.instance.*`.
    pub instance: EurekaInstanceSettings,
}

/// `eureka.client.*`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "kebab-case")]
pub struct EurekaClientSettings {
    /// `eureka.client.enabled`. Default is true.
    pub enabled: bool,
    /// `eureka.client.register-with-eureka`. Default is true.
    pub register_with_eureka: bool,
    /// `eureka.client.fetch-registry`. Default is true.
    pub fetch_registry: bool,
    /// `eureka.client.service-url.<zone>`: comma-separated server URLs per
    /// zone. Default is `defaultZone: http://localhost:8761/eureka/`.
    pub service_url: BTreeMap<String, String>,
    /// `eureka.client.registry-fetch-interval-seconds`. Default is 30.
    pub registry_fetch_interval_seconds: u32,
    /// `eureka.client.eureka-server-connect-timeout-seconds`. Default is 5.
    pub eureka_server_connect_timeout_seconds: u32,
    /// `eureka.client.eureka-server-read-timeout-seconds`. Default is 8.
    pub eureka_server_read_timeout_seconds: u32,
    /// `eureka.client.watch-enabled` (ours): follow our server's change
    /// stream so changes reach the cache at once. Default is true.
    pub watch_enabled: bool,
}

impl Default for EurekaClientSettings {
    fn default() -> Self {
        EurekaClientSettings {
            enabled: true,
            register_with_eureka: true,
            fetch_registry: true,
            service_url: BTreeMap::from([(
                "defaultZone".to_owned(),
                "http://localhost:8761/eureka/".to_owned(),
            )]),
            registry_fetch_interval_seconds: 30,
            eureka_server_connect_timeout_seconds: 5,
            eureka_server_read_timeout_seconds: 8,
            watch_enabled: true,
        }
    }
}

/// `eureka.instance.*`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "kebab-case")]
pub struct EurekaInstanceSettings {
    /// `eureka.instance.lease-renewal-interval-in-seconds`. Default is 30.
    pub lease_renewal_interval_in_seconds: u32,
    /// `eureka.instance.lease-expiration-duration-in-seconds`. Default is 90.
    pub lease_expiration_duration_in_seconds: u32,
    /// `eureka.instance.prefer-ip-address`: register the IP address as the
    /// host name. Default is false.
    pub prefer_ip_address: bool,
    /// `eureka.instance.instance-id`. Default is unset
    /// (`host:app-name:port`, as Spring Cloud Netflix).
    pub instance_id: Option<String>,
    /// `eureka.instance.hostname`. Default is unset (the machine's name).
    pub hostname: Option<String>,
    /// `eureka.instance.ip-address`. Default is unset (`127.0.0.1`).
    pub ip_address: Option<String>,
    /// `eureka.instance.metadata-map.*`; `zone` and `weight` are read by the
    /// load balancer.
    pub metadata_map: BTreeMap<String, String>,
}

impl Default for EurekaInstanceSettings {
    fn default() -> Self {
        EurekaInstanceSettings {
            lease_renewal_interval_in_seconds: 30,
            lease_expiration_duration_in_seconds: 90,
            prefer_ip_address: false,
            instance_id: None,
            hostname: None,
            ip_address: None,
            metadata_map: BTreeMap::new(),
        }
    }
}

/// Reads a list given either as a sequence or as one comma-separated string.
fn comma_list<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum OneOrMany {
        One(String),
        Many(Vec<String>),
    }
    Ok(match OneOrMany::deserialize(d)? {
        OneOrMany::One(s) => split_commas(&s),
        OneOrMany::Many(v) => v.iter().flat_map(|s| split_commas(s)).collect(),
    })
}

/// `"a, b,,c"` -> `["a", "b", "c"]`.
pub(crate) fn split_commas(s: &str) -> Vec<String> {
    s.split(',')
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .map(str::to_owned)
        .collect()
}

/// Spring's uniform form of a key: lower case, only letters, digits and dots.
fn uniform(key: &str) -> String {
    key.chars()
        .filter_map(|c| match c {
            '_' => Some('.'),
            '-' => None,
            c => Some(c.to_ascii_lowercase()),
        })
        .collect::<String>()
}

/// The uniform form of a key written with underscores as separators
/// (`EUREKA_CLIENT_SERVICEURL_DEFAULTZONE`) is the dotted one; a key with
/// dots keeps its underscores as mere word separators.
fn uniform_key(key: &str) -> String {
    if key.contains('.') {
        uniform(&key.replace('_', ""))
    } else {
        uniform(key)
    }
}

type Setter = fn(&mut ClientSettings, &str) -> Result<(), Cause>;

fn parse_bool(v: &str) -> Result<bool, Cause> {
    match v.trim().to_ascii_lowercase().as_str() {
        "true" => Ok(true),
        "false" => Ok(false),
        _ => Err(Invalid::expected("true or false").into()),
    }
}

fn parse_u32(v: &str) -> Result<u32, Cause> {
    Ok(v.trim().parse::<u32>()?)
}

fn parse_u64(v: &str) -> Result<u64, Cause> {
    Ok(v.trim().parse::<u64>()?)
}

fn non_empty(v: &str) -> Option<String> {
    let v = v.trim();
    (!v.is_empty()).then(|| v.to_owned())
}

/// The scalar keys, in Spring's kebab form, and how each is set.
const SCALARS: &[(&str, Setter)] = &[
    ("server.port", |s, v| {
        s.server.port = v.trim().parse()?;
        Ok(())
    }),
    ("spring.application.name", |s, v| {
        s.spring.application.name = non_empty(v);
        Ok(())
    }),
    ("spring.profiles.active", |s, v| {
        s.spring.profiles.active = split_commas(v);
        Ok(())
    }),
    ("spring.config.import", |s, v| {
        s.spring.config.import = split_commas(v);
        Ok(())
    }),
    ("spring.cloud.config.enabled", |s, v| {
        s.spring.cloud.config.enabled = parse_bool(v)?;
        Ok(())
    }),
    ("spring.cloud.config.uri", |s, v| {
        s.spring.cloud.config.uri = non_empty(v);
        Ok(())
    }),
    ("spring.cloud.config.label", |s, v| {
        s.spring.cloud.config.label = non_empty(v);
        Ok(())
    }),
    ("spring.cloud.config.fail-fast", |s, v| {
        s.spring.cloud.config.fail_fast = parse_bool(v)?;
        Ok(())
    }),
    ("spring.cloud.config.username", |s, v| {
        s.spring.cloud.config.username = non_empty(v);
        Ok(())
    }),
    ("spring.cloud.config.password", |s, v| {
        s.spring.cloud.config.password = Some(v.to_owned());
        Ok(())
    }),
    ("spring.cloud.config.request-read-timeout", |s, v| {
        s.spring.cloud.config.request_read_timeout = parse_u64(v)?;
        Ok(())
    }),
    ("spring.cloud.config.request-connect-timeout", |s, v| {
        s.spring.cloud.config.request_connect_timeout = parse_u64(v)?;
        Ok(())
    }),
    ("spring.cloud.config.cache-file", |s, v| {
        s.spring.cloud.config.cache_file = non_empty(v);
        Ok(())
    }),
    ("spring.cloud.config.watch.enabled", |s, v| {
        s.spring.cloud.config.watch.enabled = parse_bool(v)?;
        Ok(())
    }),
    ("spring.cloud.config.watch.delay", |s, v| {
        s.spring.cloud.config.watch.delay = parse_u64(v)?;
        Ok(())
    }),
    ("eureka.client.enabled", |s, v| {
        s.eureka.client.enabled = parse_bool(v)?;
        Ok(())
    }),
    ("eureka.client.register-with-eureka", |s, v| {
        s.eureka.client.register_with_eureka = parse_bool(v)?;
        Ok(())
    }),
    ("eureka.client.fetch-registry", |s, v| {
        s.eureka.client.fetch_registry = parse_bool(v)?;
        Ok(())
    }),
    ("eureka.client.registry-fetch-interval-seconds", |s, v| {
        s.eureka.client.registry_fetch_interval_seconds = parse_u32(v)?;
        Ok(())
    }),
    (
        "eureka.client.eureka-server-connect-timeout-seconds",
        |s, v| {
            s.eureka.client.eureka_server_connect_timeout_seconds = parse_u32(v)?;
            Ok(())
        },
    ),
    (
        "eureka.client.eureka-server-read-timeout-seconds",
        |s, v| {
            s.eureka.client.eureka_server_read_timeout_seconds = parse_u32(v)?;
            Ok(())
        },
    ),
    ("eureka.client.watch-enabled", |s, v| {
        s.eureka.client.watch_enabled = parse_bool(v)?;
        Ok(())
    }),
    (
        "eureka.instance.lease-renewal-interval-in-seconds",
        |s, v| {
            s.eureka.instance.lease_renewal_interval_in_seconds = parse_u32(v)?;
            Ok(())
        },
    ),
    (
        "eureka.instance.lease-expiration-duration-in-seconds",
        |s, v| {
            s.eureka.instance.lease_expiration_duration_in_seconds = parse_u32(v)?;
            Ok(())
        },
    ),
    ("eureka.instance.prefer-ip-address", |s, v| {
        s.eureka.instance.prefer_ip_address = parse_bool(v)?;
        Ok(())
    }),
    ("eureka.instance.instance-id", |s, v| {
        s.eureka.instance.instance_id = non_empty(v);
        Ok(())
    }),
    ("eureka.instance.hostname", |s, v| {
        s.eureka.instance.hostname = non_empty(v);
        Ok(())
    }),
    ("eureka.instance.ip-address", |s, v| {
        s.eureka.instance.ip_address = non_empty(v);
        Ok(())
    }),
];

/// Map-valued keys: everything below the prefix is an entry.
const SERVICE_URL: &str = "eureka.client.service-url";
const METADATA_MAP: &str = "eureka.instance.metadata-map";

/// Why settings could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// A layer holds a value that does not fit (names the file, variable
    /// or flag, and the key).
    #[error(transparent)]
    Layer(#[from] cloud_runtime::settings::ConfigError),
    /// A value is out of range (names the key).
    #[error(transparent)]
    Invalid(#[from] SettingsError),
}

impl LoadError {
    /// The key at fault, when one is known.
    pub fn key(&self) -> Option<&str> {
        match self {
            LoadError::Layer(e) => e.key(),
            LoadError::Invalid(e) => Some(e.key()),
        }
    }
}

impl ClientSettings {
    /// Loads defaults, then `file` (`application.yml`; YAML, `.properties`,
    /// TOML or JSON by extension), then the environment with Spring's relaxed names,
    /// then [`validate`](Self::validate)s.
    pub fn load(
        file: Option<&std::path::Path>,
        env: &dyn cloud_runtime::settings::Environment,
    ) -> Result<ClientSettings, LoadError> {
        let layers = cloud_runtime::settings::Layers::new::<ClientSettings>()?
            .optional_file(file)?
            .env(env);
        ClientSettings::from_layers(layers)
    }

    /// Finishes layers the caller built (with its flags, for example), then
    /// [`validate`](Self::validate)s. Start them with
    /// `Layers::new::<ClientSettings>()`.
    pub fn from_layers(
        layers: cloud_runtime::settings::Layers,
    ) -> Result<ClientSettings, LoadError> {
        // A registry address must not keep an unresolved `${...}`.
        let settings: ClientSettings = layers
            .strict_placeholders("eureka.client.service-url")
            .load()?;
        settings.validate()?;
        Ok(settings)
    }

    /// Reads flat dotted keys with Spring's relaxed matching, then
    /// [`validate`](Self::validate)s. Later pairs override earlier ones, so
    /// pass the layers lowest first. Unknown keys are ignored.
    pub fn from_properties<K, V>(
        pairs: impl IntoIterator<Item = (K, V)>,
    ) -> Result<ClientSettings, SettingsError>
    where
        K: AsRef<str>,
        V: AsRef<str>,
    {
        let mut settings = ClientSettings::default();
        let mut urls_given = false;
        for (key, value) in pairs {
            let (key, value) = (key.as_ref(), value.as_ref());
            let u = uniform_key(key);
            if let Some((name, set)) = SCALARS.iter().find(|(name, _)| uniform(name) == u) {
                set(&mut settings, value).map_err(|e| SettingsError::new(*name, value, e))?;
            } else if let Some(zone) = map_entry(key, &u, SERVICE_URL) {
                if !urls_given {
                    settings.eureka.client.service_url.clear();
                    urls_given = true;
                }
                let zone = canonical_zone(&zone);
                settings
                    .eureka
                    .client
                    .service_url
                    .insert(zone, value.to_owned());
            } else if let Some(entry) = map_entry(key, &u, METADATA_MAP) {
                settings
                    .eureka
                    .instance
                    .metadata_map
                    .insert(entry, value.to_owned());
            }
        }
        settings.validate()?;
        Ok(settings)
    }

    /// Reads a YAML- or JSON-shaped tree (flattened to dotted keys first)
    /// like [`from_properties`](Self::from_properties).
    pub fn from_tree(tree: &serde_json::Value) -> Result<ClientSettings, SettingsError> {
        let mut flat = Vec::new();
        flatten(tree, String::new(), &mut flat);
        ClientSettings::from_properties(flat)
    }

    /// Checks every value against its range; the error names the key.
    pub fn validate(&self) -> Result<(), SettingsError> {
        let i = &self.eureka.instance;
        let c = &self.eureka.client;
        let positive = [
            (
                "eureka.instance.lease-renewal-interval-in-seconds",
                i.lease_renewal_interval_in_seconds,
            ),
            (
                "eureka.instance.lease-expiration-duration-in-seconds",
                i.lease_expiration_duration_in_seconds,
            ),
            (
                "eureka.client.registry-fetch-interval-seconds",
                c.registry_fetch_interval_seconds,
            ),
            (
                "eureka.client.eureka-server-connect-timeout-seconds",
                c.eureka_server_connect_timeout_seconds,
            ),
            (
                "eureka.client.eureka-server-read-timeout-seconds",
                c.eureka_server_read_timeout_seconds,
            ),
        ];
        for (key, v) in positive {
            if v == 0 {
                return Err(SettingsError::new(
                    key,
                    "0",
                    Invalid::expected("at least 1"),
                ));
            }
        }
        if i.lease_expiration_duration_in_seconds <= i.lease_renewal_interval_in_seconds {
            return Err(SettingsError::new(
                "eureka.instance.lease-expiration-duration-in-seconds",
                i.lease_expiration_duration_in_seconds.to_string(),
                Invalid::expected("longer than lease-renewal-interval-in-seconds"),
            ));
        }
        if let Some(w) = i.metadata_map.get("weight")
            && w.trim().parse::<u32>().map_or(true, |w| w == 0)
        {
            return Err(SettingsError::new(
                "eureka.instance.metadata-map.weight",
                w.clone(),
                Invalid::expected("a whole number of at least 1"),
            ));
        }
        if c.enabled {
            self.eureka_service_urls()?;
        }
        self.config_imports()?;
        Ok(())
    }

    /// The application name: `spring.application.name`, else `application`.
    pub fn application_name(&self) -> &str {
        self.spring
            .application
            .name
            .as_deref()
            .unwrap_or("application")
    }

    /// The active profiles: `spring.profiles.active`, else `default`.
    pub fn active_profiles(&self) -> Vec<String> {
        if self.spring.profiles.active.is_empty() {
            vec!["default".to_owned()]
        } else {
            self.spring.profiles.active.clone()
        }
    }

    /// The Eureka servers, in order: the `defaultZone` list (Spring's
    /// fallback zone), then those of other zones not yet listed.
    pub fn eureka_service_urls(&self) -> Result<Vec<ServiceUrl>, SettingsError> {
        let zones = &self.eureka.client.service_url;
        let default = zones
            .iter()
            .filter(|(z, _)| uniform(z) == "defaultzone")
            .chain(zones.iter().filter(|(z, _)| uniform(z) != "defaultzone"));
        let mut out: Vec<ServiceUrl> = Vec::new();
        for (zone, list) in default {
            for raw in split_commas(list) {
                let url = ServiceUrl::parse(&raw).map_err(|e| {
                    SettingsError::new(format!("{SERVICE_URL}.{zone}"), raw.clone(), e)
                })?;
                if !out.iter().any(|u| u.base == url.base) {
                    out.push(url);
                }
            }
        }
        if out.is_empty() && self.eureka.client.enabled {
            return Err(SettingsError::new(
                format!("{SERVICE_URL}.defaultZone"),
                "",
                Invalid::expected("at least one Eureka server URL"),
            ));
        }
        Ok(out)
    }

    /// The `configserver:` entries of `spring.config.import`, then
    /// `spring.cloud.config.uri` when no entry names a server.
    pub fn config_imports(&self) -> Result<Vec<ConfigImport>, SettingsError> {
        let mut out = Vec::new();
        for raw in &self.spring.config.import {
            match ConfigImport::parse(raw) {
                Ok(Some(import)) => out.push(import),
                Ok(None) => {}
                Err(e) => {
                    return Err(SettingsError::new("spring.config.import", raw.clone(), e));
                }
            }
        }
        if out.is_empty()
            && let Some(uri) = &self.spring.cloud.config.uri
        {
            for one in split_commas(uri) {
                let url = ServiceUrl::parse(&one)
                    .map_err(|e| SettingsError::new("spring.cloud.config.uri", one.clone(), e))?;
                out.push(ConfigImport {
                    optional: !self.spring.cloud.config.fail_fast,
                    url,
                });
            }
        }
        Ok(out)
    }

    /// The lease renewal interval.
    pub fn renewal_interval(&self) -> Duration {
        Duration::from_secs(u64::from(
            self.eureka.instance.lease_renewal_interval_in_seconds,
        ))
    }

    /// The registry fetch interval.
    pub fn fetch_interval(&self) -> Duration {
        Duration::from_secs(u64::from(
            self.eureka.client.registry_fetch_interval_seconds,
        ))
    }
}

/// `prefix.rest` -> `rest` with its case kept, when `uniform` is the
/// uniform form of `key` and it lies below `prefix`.
fn map_entry(key: &str, uniform_form: &str, prefix: &str) -> Option<String> {
    let p = format!("{}.", uniform(prefix));
    if !uniform_form.starts_with(&p) {
        return None;
    }
    // The prefix has as many dot-separated parts in every form.
    let parts = prefix.split('.').count();
    let sep = if key.contains('.') { '.' } else { '_' };
    let rest: Vec<&str> = key.splitn(parts + 1, sep).collect();
    let entry = rest.get(parts)?;
    if sep == '_' {
        Some(entry.to_ascii_lowercase())
    } else {
        Some((*entry).to_owned())
    }
}

/// `defaultZone` in every spelling is `defaultZone`; other zones as given.
fn canonical_zone(zone: &str) -> String {
    if uniform(zone) == "defaultzone" {
        "defaultZone".to_owned()
    } else {
        zone.to_owned()
    }
}

fn flatten(v: &serde_json::Value, prefix: String, out: &mut Vec<(String, String)>) {
    use serde_json::Value;
    let join = |k: &str| {
        if prefix.is_empty() {
            k.to_owned()
        } else {
            format!("{prefix}.{k}")
        }
    };
    match v {
        Value::Object(map) => {
            for (k, v) in map {
                flatten(v, join(k), out);
            }
        }
        Value::Array(items) => {
            let joined: Vec<String> = items
                .iter()
                .map(|i| match i {
                    Value::String(s) => s.clone(),
                    other => other.to_string(),
                })
                .collect();
            out.push((prefix, joined.join(",")));
        }
        Value::String(s) => out.push((prefix, s.clone())),
        Value::Null => {}
        other => out.push((prefix, other.to_string())),
    }
}

/// A server URL without its credentials, plus those credentials
/// (`http://user:pass@host:8761/eureka/`).
#[derive(Clone, PartialEq, Eq)]
pub struct ServiceUrl {
    /// The URL without user info, ending in `/`.
    pub base: reqwest::Url,
    /// User name and password from the URL, percent-decoded.
    pub credentials: Option<(String, String)>,
}

impl fmt::Debug for ServiceUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The password stays out of logs.
        f.debug_struct("ServiceUrl")
            .field("base", &self.base.as_str())
            .field("user", &self.credentials.as_ref().map(|c| &c.0))
            .finish()
    }
}

impl fmt::Display for ServiceUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.base.as_str())
    }
}

impl ServiceUrl {
    /// Parses an `http`/`https` URL; moves user info out of it and makes
    /// the path end in `/`.
    pub fn parse(raw: &str) -> Result<ServiceUrl, Cause> {
        let mut url = reqwest::Url::parse(raw.trim())?;
        if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
            return Err(Invalid::expected("an http:// or https:// URL with a host").into());
        }
        let credentials = if url.username().is_empty() {
            None
        } else {
            Some((
                percent_decode(url.username()),
                percent_decode(url.password().unwrap_or("")),
            ))
        };
        // Cannot fail for http(s) URLs with a host.
        let _ = url.set_username("");
        let _ = url.set_password(None);
        if !url.path().ends_with('/') {
            let path = format!("{}/", url.path());
            url.set_path(&path);
        }
        url.set_query(None);
        url.set_fragment(None);
        Ok(ServiceUrl {
            base: url,
            credentials,
        })
    }
}

/// Decodes `%XX` escapes; invalid escapes are kept as written.
fn percent_decode(s: &str) -> String {
    percent_encoding::percent_decode_str(s)
        .decode_utf8_lossy()
        .into_owned()
}

/// One `configserver:` entry of `spring.config.import`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigImport {
    /// Written with `optional:`: the application starts without it.
    pub optional: bool,
    /// The server.
    pub url: ServiceUrl,
}

impl ConfigImport {
    /// Parses `[optional:]configserver:URL`; `None` for other imports (such
    /// as `file:`), which are not ours to load.
    pub fn parse(raw: &str) -> Result<Option<ConfigImport>, Cause> {
        let raw = raw.trim();
        let (optional, rest) = match raw.strip_prefix("optional:") {
            Some(rest) => (true, rest),
            None => (false, raw),
        };
        let Some(url) = rest.strip_prefix("configserver:") else {
            return Ok(None);
        };
        let url = if url.is_empty() {
            // Spring's default when the import names no URL.
            "http://localhost:8888"
        } else {
            url
        };
        Ok(Some(ConfigImport {
            optional,
            url: ServiceUrl::parse(url)?,
        }))
    }
}

#[cfg(test)]
mod tests;
