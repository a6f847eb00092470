//! Configuration layering, the same for every binary: defaults, then the
//! `--config FILE`, then environment variables, then flags; each layer
//! overrides the ones before it key by key.
//!
//! # Names
//! Keys are Spring Boot's, and bind the way Spring's relaxed binding does,
//! so one `application.yml` serves a Spring application and ours:
//! - in a file, `enable-self-preservation`, `enableSelfPreservation` and
//!   `enable_self_preservation` are the same key, and a dotted key
//!   (`eureka.server.enable-self-preservation: false`) is the same as the
//!   nested form;
//! - in the environment, the one naming rule is Spring's: upper case, `_`
//!   between levels, dashes dropped: `SERVER_PORT`,
//!   `EUREKA_SERVER_ENABLESELFPRESERVATION`,
//!   `EUREKA_CLIENT_SERVICEURL_DEFAULTZONE`,
//!   `SPRING_CLOUD_CONFIG_SERVER_GIT_URI`. A variable that names no known
//!   key is ignored. Entries of a map (`metadata-map`) take the rest of the
//!   name, lower-cased: `EUREKA_INSTANCE_METADATAMAP_ZONE`. A number names
//!   a list element (`SPRING_CLOUD_GATEWAY_ROUTES_0_PREDICATES_0`); as in
//!   Spring, the elements the environment gives replace that whole list
//!   of the file.
//! - `.properties` files read as Spring Boot reads them (ISO-8859-1,
//!   `routes[0].id=...`, `#---` between documents); a `${name}` that names
//!   nothing is left as written, as Spring's binder leaves it, except under
//!   the keys a binary makes strict ([`Layers::strict_placeholders`]).
//! - Older names can be accepted as aliases ([`Layers::env_alias`],
//!   [`Layers::env_prefix_alias`]); each use logs a warning with the new
//!   name.
//! - A second prefix for a whole subtree ([`Layers::alias`]: SCG 4.3's
//!   `spring.cloud.gateway.server.webflux.httpclient.*` for
//!   `spring.cloud.gateway.httpclient.*`) binds in files, the environment
//!   and flags; whichever layer comes later wins, and within one file the
//!   alias wins.
//! - A binary may name subtrees whose keys it all knows
//!   ([`Layers::warn_unknown_under`]: the gateway's `spring.cloud.gateway`):
//!   a key a file sets there and the settings lack is logged as ignored,
//!   naming the file and the key. Elsewhere unknown keys are ignored in
//!   silence, as Spring ignores properties no bean binds.
//!
//! # Types
//! The defaults (the settings type's `Default`, serialized) are the schema:
//! a value from a file, the environment or a flag is coerced to the type of
//! the default at its key (`"9000"` to a number for a numeric key, `1234` to
//! `"1234"` for a string key such as a password; a comma-separated string
//! to a list for a list key). Give every numeric or boolean setting a
//! default (not `Option`), so that its type is known.
//!
//! # Errors
//! A bad value is a [`ConfigError`] that names where it came from (the file,
//! the environment variable, the flag) and the key.
//!
//! ```
//! use std::collections::HashMap;
//! use cloud_runtime::settings::Layers;
//! use serde::{Deserialize, Serialize};
//!
//! #[derive(Debug, Default, Serialize, Deserialize)]
//! #[serde(default, rename_all = "kebab-case")]
//! struct Settings { server: Server }
//! #[derive(Debug, Serialize, Deserialize)]
//! #[serde(default, rename_all = "kebab-case")]
//! struct Server { port: u16, max_connections: u32 }
//! impl Default for Server {
//!     fn default() -> Self { Server { port: 8080, max_connections: 100 } }
//! }
//!
//! let env = HashMap::from([("SERVER_MAXCONNECTIONS".to_owned(), "5".to_owned())]);
//! let settings: Settings = Layers::new::<Settings>()?
//!     .env(&env)
//!     .set("server.port", 9000, "--port")
//!     .load()?;
//! assert_eq!((settings.server.port, settings.server.max_connections), (9000, 5));
//! # Ok::<(), cloud_runtime::settings::ConfigError>(())
//! ```

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::path::{Path, PathBuf};

use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::{Map, Value};

/// `#[serde(flatten, deserialize_with = ...)]` for a struct flattened into
/// a section (such as [`crate::serve::ServeLimits`] into `server`): serde
/// reports an error inside a flattened struct at the section's key only
/// (`server`), so this puts the inner key in front of the reason
/// (`` `io-worker-affinity`: unknown variant ... ``).
pub fn flattened<'de, D, T>(d: D) -> Result<T, D::Error>
where
    D: serde::Deserializer<'de>,
    T: serde::Deserialize<'de>,
{
    serde_path_to_error::deserialize(d).map_err(|e| {
        let path = e.path().to_string();
        let reason = e.into_inner();
        if path == "." {
            reason
        } else {
            serde::de::Error::custom(format_args!("`{path}`: {reason}"))
        }
    })
}

/// `#[serde(deserialize_with = ...)]` for an optional number that layered
/// settings may hand over as text (`"2"` from an environment variable, or
/// from a file through the `config` crate into an `Option`): a number, its
/// text, or empty text for none.
pub fn optional_number<'de, D, T>(d: D) -> Result<Option<T>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: serde::Deserialize<'de> + std::str::FromStr,
{
    #[derive(serde::Deserialize)]
    #[serde(untagged)]
    enum NumberOrText<T> {
        Number(T),
        Text(String),
    }
    match <Option<NumberOrText<T>> as serde::Deserialize>::deserialize(d)? {
        None => Ok(None),
        Some(NumberOrText::Number(n)) => Ok(Some(n)),
        Some(NumberOrText::Text(t)) if t.trim().is_empty() => Ok(None),
        Some(NumberOrText::Text(t)) => t
            .trim()
            .parse()
            .map(Some)
            .map_err(|_| serde::de::Error::custom(format!("`{t}` is not a number"))),
    }
}

/// `spring.lifecycle.*`: Spring Boot's graceful-shutdown deadline, shared
/// by every binary's settings schema.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(default, rename_all = "kebab-case")]
pub struct LifecycleSection {
    /// How long open work may take after SIGTERM before the process exits
    /// anyway (`--drain-timeout` wins). Default is 10 seconds.
    #[serde(
        deserialize_with = "crate::duration::deserialize",
        serialize_with = "crate::duration::serialize_millis"
    )]
    pub timeout_per_shutdown_phase: std::time::Duration,
}

impl Default for LifecycleSection {
    fn default() -> Self {
        LifecycleSection {
            timeout_per_shutdown_phase: crate::shutdown::DEFAULT_DRAIN_TIMEOUT,
        }
    }
}

/// Where the process environment comes from: the real one, or a map in
/// tests.
pub trait Environment {
    /// Every variable, as (name, value).
    fn vars(&self) -> Vec<(String, String)>;
}

/// The real process environment (variables that are not valid Unicode are
/// skipped).
#[derive(Debug, Clone, Copy, Default)]
pub struct ProcessEnvironment;

impl Environment for ProcessEnvironment {
    fn vars(&self) -> Vec<(String, String)> {
        std::env::vars_os()
            .filter_map(|(k, v)| Some((k.into_string().ok()?, v.into_string().ok()?)))
            .collect()
    }
}

impl Environment for HashMap<String, String> {
    fn vars(&self) -> Vec<(String, String)> {
        self.iter().map(|(k, v)| (k.clone(), v.clone())).collect()
    }
}

impl Environment for BTreeMap<String, String> {
    fn vars(&self) -> Vec<(String, String)> {
        self.iter().map(|(k, v)| (k.clone(), v.clone())).collect()
    }
}

/// Where a value came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    /// The built-in defaults.
    Defaults,
    /// A configuration file.
    File(PathBuf),
    /// An environment variable, by name.
    Environment(String),
    /// A command-line flag, by name.
    Flag(String),
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Origin::Defaults => f.write_str("defaults"),
            Origin::File(p) => write!(f, "{}", p.display()),
            Origin::Environment(name) => write!(f, "environment variable {name}"),
            Origin::Flag(name) => write!(f, "flag {name}"),
        }
    }
}

/// Settings that could not be read or do not fit.
#[derive(Debug, thiserror::Error)]
#[error("{origin}: {}{reason}", key.as_deref().map(|k| format!("key `{k}`: ")).unwrap_or_default())]
pub struct ConfigError {
    origin: Origin,
    key: Option<String>,
    reason: String,
    #[source]
    source: Option<Box<dyn std::error::Error + Send + Sync>>,
}

impl ConfigError {
    /// An error about `key` from `origin`.
    pub fn new(origin: Origin, key: Option<&str>, reason: impl Into<String>) -> ConfigError {
        ConfigError {
            origin,
            key: key.map(str::to_owned),
            reason: reason.into(),
            source: None,
        }
    }

    fn with_source(mut self, source: impl std::error::Error + Send + Sync + 'static) -> Self {
        self.source = Some(Box::new(source));
        self
    }

    /// Where the bad value came from.
    pub fn origin(&self) -> &Origin {
        &self.origin
    }

    /// The key at fault, when one is known.
    pub fn key(&self) -> Option<&str> {
        self.key.as_deref()
    }

    /// Whether the file itself could not be read or parsed.
    pub fn is_file_error(&self) -> bool {
        matches!(self.origin, Origin::File(_)) && self.key.is_none()
    }
}

/// Settings being layered. See the [module docs](self).
#[derive(Debug)]
pub struct Layers {
    schema: Value,
    tree: Value,
    /// (from, to) paths of [`Layers::alias`], in the schema's spelling.
    aliases: Vec<(Vec<String>, Vec<String>)>,
    /// Keys (dotted, the schema's spelling) where a placeholder that names
    /// nothing is an error ([`Layers::strict_placeholders`]).
    strict: Vec<String>,
    origins: BTreeMap<String, Origin>,
    warnings: Vec<String>,
    /// Subtrees where a file key the schema lacks is warned of
    /// ([`Layers::warn_unknown_under`]), and maps inside them whose keys
    /// are free.
    checked: Vec<Vec<String>>,
    free: Vec<Vec<String>>,
}

impl Layers {
    /// Starts from `T::default()`, which is also the schema.
    pub fn new<T: Serialize + Default>() -> Result<Layers, ConfigError> {
        let schema = serde_json::to_value(T::default()).map_err(|e| {
            ConfigError::new(Origin::Defaults, None, "defaults do not serialize").with_source(e)
        })?;
        Ok(Layers {
            tree: schema.clone(),
            schema,
            aliases: Vec::new(),
            strict: Vec::new(),
            origins: BTreeMap::new(),
            warnings: Vec::new(),
            checked: Vec::new(),
            free: Vec::new(),
        })
    }

    /// Binds the keys under `from` (dotted) to the same keys under `to`, a
    /// subtree of the settings: a value laid at `from.x` is laid at `to.x`.
    /// Call it before laying anything.
    pub fn alias(mut self, from: &str, to: &str) -> Layers {
        let to = resolve_path(&self.schema, &split_key(to));
        let from = resolve_path(&self.schema, &split_key(from));
        let Some(sub_schema) = lookup_path(&self.schema, &to).cloned() else {
            return self;
        };
        // The schema knows `from` as a copy of `to`, so that relaxed names,
        // environment variables and coercion work there too; the tree
        // (what is deserialized) never holds it.
        put_path(&mut self.schema, &from, sub_schema);
        self.aliases.push((from, to));
        self
    }

    /// Logs a warning, at [`Layers::load`], for each key under `prefix`
    /// (dotted) that a file sets and the settings do not have: a key this
    /// binary does not read, ignored (a Spring property with no
    /// counterpart here, or a misspelling). Keys under `free` (dotted: maps
    /// whose keys are the user's, with entries by default) and inside lists
    /// and maps with no default entries are not looked at. Call it before
    /// laying a file.
    pub fn warn_unknown_under(mut self, prefix: &str, free: &[&str]) -> Layers {
        self.checked
            .push(resolve_path(&self.schema, &split_key(prefix)));
        self.free.extend(
            free.iter()
                .map(|f| resolve_path(&self.schema, &split_key(f))),
        );
        self
    }

    /// Makes a placeholder under `key` (dotted) that names no setting and
    /// has no default an error naming the key, where Spring would leave it
    /// as written (for addresses, which would only fail later).
    pub fn strict_placeholders(mut self, key: &str) -> Layers {
        self.strict
            .push(resolve_path(&self.schema, &split_key(key)).join("."));
        self
    }

    /// Lays a file over the settings: YAML (`.yml`, `.yaml`), Java
    /// properties (`.properties`, as Spring Boot reads them: ISO-8859-1,
    /// `routes[0].id=...` indices, `#---` between documents), TOML
    /// (`.toml`) or JSON (`.json`) by extension; a YAML or properties file
    /// may hold several documents, of which those without
    /// `spring.config.activate.on-profile` (or `spring.profiles`) apply, and
    /// the others when one of their profiles is in `spring.profiles.active`.
    pub fn file(mut self, path: &Path) -> Result<Layers, ConfigError> {
        let origin = Origin::File(path.to_path_buf());
        let bytes = std::fs::read(path).map_err(|e| {
            ConfigError::new(origin.clone(), None, format!("cannot read: {e}")).with_source(e)
        })?;
        let ext = path
            .extension()
            .and_then(|e| e.to_str())
            .unwrap_or("")
            .to_ascii_lowercase();
        let text = || {
            String::from_utf8(bytes.clone()).map_err(|e| {
                ConfigError::new(origin.clone(), None, "is not UTF-8 text").with_source(e)
            })
        };
        // Each document, and whether its dotted keys are still to expand.
        let documents: Vec<(Value, bool)> = match ext.as_str() {
            "toml" => vec![(
                toml::from_str(&text()?).map_err(|e| {
                    ConfigError::new(origin.clone(), None, format!("invalid TOML: {e}"))
                        .with_source(e)
                })?,
                true,
            )],
            "json" => vec![(
                serde_json::from_str(&text()?).map_err(|e| {
                    ConfigError::new(origin.clone(), None, format!("invalid JSON: {e}"))
                        .with_source(e)
                })?,
                true,
            )],
            "yml" | "yaml" => yaml_documents(&text()?)
                .map_err(|e| {
                    ConfigError::new(origin.clone(), None, format!("invalid YAML: {e}"))
                        .with_source(e)
                })?
                .into_iter()
                .map(|d| (d, true))
                .collect(),
            "properties" => properties::documents(&bytes)
                .iter()
                .map(|props| {
                    properties::tree(props, &self.schema)
                        .map(|t| (t, false))
                        .map_err(|(key, reason)| {
                            ConfigError::new(origin.clone(), Some(&key), reason)
                        })
                })
                .collect::<Result<_, _>>()?,
            other => {
                return Err(ConfigError::new(
                    origin,
                    None,
                    format!(
                        "unknown file type `.{other}`: expected .yml, .yaml, .properties, .toml or .json"
                    ),
                ));
            }
        };
        let mut conditional = Vec::new();
        for (doc, dotted) in documents {
            let doc = match dotted {
                true => expand_dotted(doc, &self.schema),
                false => doc,
            };
            if !doc.is_object() && !doc.is_null() {
                return Err(ConfigError::new(
                    origin,
                    None,
                    "the top level must be a mapping of keys",
                ));
            }
            match document_profiles(&doc) {
                Some(profiles) => conditional.push((profiles, doc)),
                None => self.lay(doc, &origin),
            }
        }
        for (profiles, doc) in conditional {
            let active = self.active_profiles();
            if profiles.iter().any(|p| active.contains(p)) {
                self.lay(doc, &origin);
            }
        }
        Ok(self)
    }

    /// Lays a file over the settings when `path` is given.
    pub fn optional_file(self, path: Option<&Path>) -> Result<Layers, ConfigError> {
        match path {
            Some(p) => self.file(p),
            None => Ok(self),
        }
    }

    /// Lays the environment over the settings with Spring's naming rule.
    pub fn env(mut self, env: &dyn Environment) -> Layers {
        let mut vars = env.vars();
        vars.sort();
        // Lists this layer gives elements of (`SPRING_CLOUD_GATEWAY_ROUTES_0_ID`):
        // as in Spring, they replace the whole list of the layers below.
        let mut replaced: Vec<Vec<String>> = Vec::new();
        for (name, value) in vars {
            let segments: Vec<String> = name
                .to_ascii_lowercase()
                .split('_')
                .map(str::to_owned)
                .collect();
            if let Some(path) = match_segments(&self.schema, &segments) {
                if let Some(i) = path.iter().position(|s| index_of(s).is_some()) {
                    let list = path[..i].to_vec();
                    if !replaced.contains(&list) {
                        self.set_path(
                            &list,
                            Value::Array(Vec::new()),
                            Origin::Environment(name.clone()),
                        );
                        replaced.push(list);
                    }
                }
                self.set_path(&path, Value::String(value), Origin::Environment(name));
            }
        }
        self
    }

    /// Accepts the variable `var` as an older name of `key` (logging a
    /// warning that names the new variable when it is used).
    pub fn env_alias(mut self, env: &dyn Environment, var: &str, key: &str) -> Layers {
        if let Some((_, value)) = env.vars().into_iter().find(|(n, _)| n == var) {
            let path = split_key(key);
            self.warnings.push(format!(
                "environment variable {var} is deprecated; use {}",
                spring_env_name(&path)
            ));
            self.set_path(
                &path,
                Value::String(value),
                Origin::Environment(var.to_owned()),
            );
        }
        self
    }

    /// Accepts variables `PREFIX` + levels separated by `separator` (such as
    /// `DISCOVERY__EUREKA__SERVER__ENABLE_SELF_PRESERVATION`) as older names,
    /// logging a warning with the new name for each one used.
    pub fn env_prefix_alias(
        mut self,
        env: &dyn Environment,
        prefix: &str,
        separator: &str,
    ) -> Layers {
        let mut vars = env.vars();
        vars.sort();
        for (name, value) in vars {
            let Some(rest) = name.strip_prefix(prefix) else {
                continue;
            };
            let levels: Vec<String> = rest.split(separator).map(canonical).collect();
            if let Some(path) = match_levels(&self.schema, &levels) {
                self.warnings.push(format!(
                    "environment variable {name} is deprecated; use {}",
                    spring_env_name(&path)
                ));
                self.set_path(&path, Value::String(value), Origin::Environment(name));
            }
        }
        self
    }

    /// Sets `key` (dotted, relaxed) to `value`, as given by `flag`.
    pub fn set(mut self, key: &str, value: impl Into<Value>, flag: &str) -> Layers {
        let path = resolve_path(&self.schema, &split_key(key));
        self.set_path(&path, value.into(), Origin::Flag(flag.to_owned()));
        self
    }

    /// Sets `key` when `value` is `Some`.
    pub fn set_some<V: Into<Value>>(self, key: &str, value: Option<V>, flag: &str) -> Layers {
        match value {
            Some(v) => self.set(key, v, flag),
            None => self,
        }
    }

    /// The profiles named by `spring.profiles.active` so far.
    pub fn active_profiles(&self) -> Vec<String> {
        let active = self
            .tree
            .pointer("/spring/profiles/active")
            .cloned()
            .unwrap_or(Value::Null);
        list_of_strings(&active)
    }

    /// Deserializes the layered settings, naming the origin and key of the
    /// first value that does not fit.
    pub fn load<T: DeserializeOwned>(self) -> Result<T, ConfigError> {
        for w in &self.warnings {
            tracing::warn!("{w}");
        }
        let mut tree = self.tree;
        let snapshot = tree.clone();
        resolve_tree(&mut tree, &snapshot, &mut Vec::new(), &self.strict).map_err(
            |(key, reason)| {
                let origin = origin_of(&self.origins, &key);
                ConfigError::new(origin, Some(&key), reason)
            },
        )?;
        let tree = coerce(tree, &self.schema);
        serde_path_to_error::deserialize(tree).map_err(|e| {
            let key = e.path().to_string();
            let origin = origin_of(&self.origins, &key);
            let reason = e.inner().to_string();
            ConfigError::new(origin, Some(&key), reason).with_source(e.into_inner())
        })
    }

    fn lay(&mut self, doc: Value, origin: &Origin) {
        let mut doc = relax_keys(doc, &self.schema);
        for (from, to) in &self.aliases {
            if let Some(sub) = take_path(&mut doc, from) {
                let mut moved = Value::Object(Map::new());
                put_path(&mut moved, to, sub);
                merge(&mut doc, moved);
            }
        }
        let mut leaves = Vec::new();
        collect_leaves(&doc, &mut Vec::new(), &mut leaves);
        for path in leaves {
            self.warn_if_unknown(&path, origin);
            self.origins.insert(path.join("."), origin.clone());
        }
        merge(&mut self.tree, doc);
    }

    /// See [`Layers::warn_unknown_under`]: one warning per unknown key, at
    /// its first level the schema lacks.
    fn warn_if_unknown(&mut self, path: &[String], origin: &Origin) {
        if !self.checked.iter().any(|c| path.starts_with(c)) {
            return;
        }
        let mut node = &self.schema;
        for (depth, segment) in path.iter().enumerate() {
            let known = &path[..depth];
            if !is_struct(node) || self.free.iter().any(|f| known.starts_with(f)) {
                return;
            }
            match schema_child(node, segment) {
                Some((_, child)) => node = child,
                None => {
                    let key = dotted(&path[..=depth]);
                    let warning = format!(
                        "{origin}: key `{key}` is not a setting this server reads; it is ignored"
                    );
                    if !self.warnings.contains(&warning) {
                        self.warnings.push(warning);
                    }
                    return;
                }
            }
        }
    }

    fn set_path(&mut self, path: &[String], value: Value, origin: Origin) {
        if path.is_empty() {
            return;
        }
        let aliased = self.aliases.iter().find_map(|(from, to)| {
            let rest = path.strip_prefix(from.as_slice())?;
            Some(to.iter().chain(rest).cloned().collect::<Vec<_>>())
        });
        let path = aliased.as_deref().unwrap_or(path);
        self.origins.insert(dotted(path), origin);
        let mut node = &mut self.tree;
        for segment in path {
            if let Some(i) = index_of(segment) {
                if !node.is_array() {
                    *node = Value::Array(Vec::new());
                }
                let Value::Array(items) = node else {
                    return;
                };
                if items.len() <= i {
                    items.resize(i + 1, Value::Null);
                }
                node = &mut items[i];
                continue;
            }
            if !node.is_object() {
                *node = Value::Object(Map::new());
            }
            let Value::Object(map) = node else {
                return;
            };
            node = map.entry(segment.clone()).or_insert(Value::Null);
        }
        *node = value;
    }
}

/// Spring's canonical form of one key level: lower case, no `-` or `_`
/// (`enable-self-preservation`, `enableSelfPreservation` and
/// `ENABLE_SELF_PRESERVATION` are all `enableselfpreservation`).
pub fn canonical(segment: &str) -> String {
    segment
        .chars()
        .filter(|c| *c != '-' && *c != '_')
        .flat_map(char::to_lowercase)
        .collect()
}

/// The environment variable that Spring's rule gives `path`.
fn spring_env_name(path: &[String]) -> String {
    path.iter()
        .map(|s| s.replace('-', "").to_ascii_uppercase())
        .collect::<Vec<_>>()
        .join("_")
}

fn split_key(key: &str) -> Vec<String> {
    key.split('.').map(str::to_owned).collect()
}

/// A struct in the schema is an object with fields; a free-form map is an
/// empty object.
fn is_struct(schema: &Value) -> bool {
    matches!(schema, Value::Object(m) if !m.is_empty())
}

fn schema_child<'a>(schema: &'a Value, key: &str) -> Option<(&'a String, &'a Value)> {
    let Value::Object(fields) = schema else {
        return None;
    };
    if let Some((k, v)) = fields.get_key_value(key) {
        return Some((k, v));
    }
    let wanted = canonical(key);
    fields.iter().find(|(k, _)| canonical(k) == wanted)
}

/// Maps each level of `path` onto the schema's spelling where it is known.
fn resolve_path(schema: &Value, path: &[String]) -> Vec<String> {
    let mut out = Vec::with_capacity(path.len());
    let mut node = Some(schema);
    for segment in path {
        match node.and_then(|n| {
            if is_struct(n) {
                schema_child(n, segment)
            } else {
                None
            }
        }) {
            Some((name, child)) => {
                out.push(name.clone());
                node = Some(child);
            }
            None => {
                out.push(segment.clone());
                node = None;
            }
        }
    }
    out
}

/// Finds the key that Spring's environment rule spells as `segments`
/// (lower-cased parts of the variable name split at `_`). A schema level may
/// take one part (`ENABLESELFPRESERVATION`) or several
/// (`ENABLE_SELF_PRESERVATION`); a free-form map takes the rest.
fn match_segments(schema: &Value, segments: &[String]) -> Option<Vec<String>> {
    if segments.is_empty() {
        return None;
    }
    match schema {
        Value::Object(fields) if !fields.is_empty() => {
            for take in 1..=segments.len() {
                let joined: String = segments[..take].concat();
                for (name, child) in fields {
                    if canonical(name) != joined {
                        continue;
                    }
                    let rest = &segments[take..];
                    if rest.is_empty() {
                        if !is_struct(child) {
                            return Some(vec![name.clone()]);
                        }
                    } else if let Some(mut tail) = match_segments(child, rest) {
                        tail.insert(0, name.clone());
                        return Some(tail);
                    }
                }
            }
            None
        }
        Value::Object(_) => Some(vec![segments.join(".")]),
        // A list element (`ROUTES_0_ID`): its own schema, or, for a list of
        // free-form values, one level per part (numbers are indices).
        Value::Array(items) => {
            let (first, rest) = segments.split_first()?;
            let index: usize = first.parse().ok().filter(|i| *i <= MAX_ENV_INDEX)?;
            let mut path = vec![format!("[{index}]")];
            match items.first() {
                _ if rest.is_empty() => {}
                Some(element) => path.extend(match_segments(element, rest)?),
                None => path.extend(rest.iter().map(|s| match s.parse::<usize>() {
                    Ok(i) if i <= MAX_ENV_INDEX => format!("[{i}]"),
                    _ => s.clone(),
                })),
            }
            Some(path)
        }
        _ => None,
    }
}

/// The largest list index an environment variable may name.
const MAX_ENV_INDEX: usize = 10_000;

/// The index of a path segment that names a list element (`[3]`).
fn index_of(segment: &str) -> Option<usize> {
    segment.strip_prefix('[')?.strip_suffix(']')?.parse().ok()
}

/// A path as a dotted key, indices in brackets (`routes[0].id`).
fn dotted(path: &[String]) -> String {
    let mut out = String::new();
    for segment in path {
        if !out.is_empty() && index_of(segment).is_none() {
            out.push('.');
        }
        out.push_str(segment);
    }
    out
}

/// Like [`match_segments`], with the levels already separated.
fn match_levels(schema: &Value, levels: &[String]) -> Option<Vec<String>> {
    let (first, rest) = levels.split_first()?;
    match schema {
        Value::Object(fields) if !fields.is_empty() => {
            let (name, child) = fields.iter().find(|(k, _)| canonical(k) == *first)?;
            if rest.is_empty() {
                return (!is_struct(child)).then(|| vec![name.clone()]);
            }
            let mut tail = match_levels(child, rest)?;
            tail.insert(0, name.clone());
            Some(tail)
        }
        Value::Object(_) => Some(vec![levels.join(".")]),
        _ => None,
    }
}

/// Expands dotted keys (`a.b: 1`) into nested objects, except inside
/// free-form maps of the schema, whose keys may hold dots.
fn expand_dotted(doc: Value, schema: &Value) -> Value {
    let Value::Object(map) = doc else {
        return doc;
    };
    if !is_struct(schema) && schema.is_object() {
        return Value::Object(map);
    }
    let mut out = Value::Object(Map::new());
    for (key, value) in map {
        let path = split_key(&key);
        let mut sub_schema = Some(schema);
        for segment in &path {
            sub_schema = sub_schema
                .and_then(|s| schema_child(s, segment))
                .map(|(_, v)| v);
        }
        let value = expand_dotted(value, sub_schema.unwrap_or(&Value::Null));
        let mut nested = value;
        for segment in path.iter().rev() {
            let mut m = Map::new();
            m.insert(segment.clone(), nested);
            nested = Value::Object(m);
        }
        merge(&mut out, nested);
    }
    out
}

/// Renames keys to the schema's spelling where they match it relaxed.
fn relax_keys(doc: Value, schema: &Value) -> Value {
    match doc {
        Value::Object(map) if is_struct(schema) => Value::Object(
            map.into_iter()
                .map(|(k, v)| match schema_child(schema, &k) {
                    Some((name, child)) => (name.clone(), relax_keys(v, child)),
                    None => (k, v),
                })
                .collect(),
        ),
        other => other,
    }
}

fn lookup_path<'a>(tree: &'a Value, path: &[String]) -> Option<&'a Value> {
    path.iter()
        .try_fold(tree, |node, segment| node.get(segment))
}

/// Sets `path` in `tree` to `value`, making the objects on the way.
fn put_path(tree: &mut Value, path: &[String], value: Value) {
    let Some((last, parents)) = path.split_last() else {
        *tree = value;
        return;
    };
    let mut node = tree;
    for segment in parents {
        if !node.is_object() {
            *node = Value::Object(Map::new());
        }
        let Value::Object(map) = node else {
            return;
        };
        node = map.entry(segment.clone()).or_insert(Value::Null);
    }
    if !node.is_object() {
        *node = Value::Object(Map::new());
    }
    if let Value::Object(map) = node {
        map.insert(last.clone(), value);
    }
}

/// Removes and returns what `tree` holds at `path`.
fn take_path(tree: &mut Value, path: &[String]) -> Option<Value> {
    let (last, parents) = path.split_last()?;
    let mut node = tree;
    for segment in parents {
        node = node.get_mut(segment)?;
    }
    node.as_object_mut()?.remove(last)
}

fn merge(base: &mut Value, over: Value) {
    match (base, over) {
        (Value::Object(b), Value::Object(o)) => {
            for (k, v) in o {
                match b.get_mut(&k) {
                    Some(existing) if existing.is_object() && v.is_object() => merge(existing, v),
                    _ => {
                        b.insert(k, v);
                    }
                }
            }
        }
        (base, over) => *base = over,
    }
}

fn collect_leaves(value: &Value, prefix: &mut Vec<String>, out: &mut Vec<Vec<String>>) {
    match value {
        Value::Object(map) if !map.is_empty() => {
            for (k, v) in map {
                prefix.push(k.clone());
                collect_leaves(v, prefix, out);
                prefix.pop();
            }
        }
        _ => out.push(prefix.clone()),
    }
}

/// Coerces scalars to the schema's type at their key, where that is
/// possible; what cannot be coerced is left for the deserializer to report.
fn coerce(value: Value, schema: &Value) -> Value {
    match (value, schema) {
        (Value::Object(map), Value::Object(fields)) => Value::Object(
            map.into_iter()
                .map(|(k, v)| {
                    let child = fields.get(&k).unwrap_or(&Value::Null);
                    let v = if fields.is_empty() {
                        stringify(v)
                    } else {
                        coerce(v, child)
                    };
                    (k, v)
                })
                .collect(),
        ),
        (Value::String(s), Value::Bool(_)) => match s.trim().to_ascii_lowercase().as_str() {
            "true" => Value::Bool(true),
            "false" => Value::Bool(false),
            _ => Value::String(s),
        },
        (Value::String(s), Value::Number(_)) => {
            let t = s.trim();
            if let Ok(n) = t.parse::<u64>() {
                Value::from(n)
            } else if let Ok(n) = t.parse::<i64>() {
                Value::from(n)
            } else if let Some(n) = t.parse::<f64>().ok().and_then(serde_json::Number::from_f64) {
                Value::Number(n)
            } else {
                Value::String(s)
            }
        }
        (Value::String(s), Value::Array(items)) => {
            let element = items
                .first()
                .unwrap_or(&Value::String(String::new()))
                .clone();
            Value::Array(
                s.split(',')
                    .map(str::trim)
                    .filter(|p| !p.is_empty())
                    .map(|p| coerce(Value::String(p.to_owned()), &element))
                    .collect(),
            )
        }
        (Value::Array(items), Value::Array(schema_items)) => match schema_items.first() {
            Some(element) => Value::Array(items.into_iter().map(|v| coerce(v, element)).collect()),
            None => Value::Array(items),
        },
        (v @ (Value::Number(_) | Value::Bool(_)), Value::String(_) | Value::Null) => stringify(v),
        (v, _) => v,
    }
}

/// Scalars as strings (a free-form map of strings, a string setting).
fn stringify(value: Value) -> Value {
    match value {
        Value::Number(n) => Value::String(n.to_string()),
        Value::Bool(b) => Value::String(b.to_string()),
        other => other,
    }
}

/// The origin of `key` or of the nearest enclosing key that has one.
fn origin_of(origins: &BTreeMap<String, Origin>, key: &str) -> Origin {
    let mut k = key.to_owned();
    loop {
        if let Some(o) = origins.get(&k) {
            return o.clone();
        }
        if let Some((_, o)) = origins
            .iter()
            .find(|(p, _)| p.starts_with(&format!("{k}.")))
        {
            return o.clone();
        }
        match k.rfind(['.', '[']) {
            Some(i) => k.truncate(i),
            None => return Origin::Defaults,
        }
    }
}

fn yaml_documents(text: &str) -> Result<Vec<Value>, serde_yaml_ng::Error> {
    let mut docs = Vec::new();
    for document in serde_yaml_ng::Deserializer::from_str(text) {
        let value: Value = serde::Deserialize::deserialize(document)?;
        docs.push(value);
    }
    Ok(docs)
}

/// The profiles a document is conditional on, or `None` when it always
/// applies.
fn document_profiles(doc: &Value) -> Option<Vec<String>> {
    let on = doc
        .pointer("/spring/config/activate/on-profile")
        .or_else(|| doc.pointer("/spring/config/activate/onProfile"))
        .or_else(|| doc.pointer("/spring/profiles").filter(|v| !v.is_object()))?;
    Some(list_of_strings(on))
}

fn list_of_strings(value: &Value) -> Vec<String> {
    match value {
        Value::String(s) => s
            .split(',')
            .map(str::trim)
            .filter(|p| !p.is_empty())
            .map(str::to_owned)
            .collect(),
        Value::Array(items) => items.iter().flat_map(list_of_strings).collect(),
        _ => Vec::new(),
    }
}

/// The deepest chain of placeholders resolved through one another.
const MAX_PLACEHOLDER_DEPTH: usize = 16;

/// Resolves `${key}` and `${key:default}` in every string of `tree`
/// against `root` (keys matched relaxed, as Spring does for
/// `http://${eureka.instance.hostname}:${server.port}/eureka/`). On failure,
/// the dotted key of the string and the reason.
fn resolve_tree(
    tree: &mut Value,
    root: &Value,
    path: &mut Vec<String>,
    strict: &[String],
) -> Result<(), (String, String)> {
    match tree {
        Value::Object(map) => {
            for (k, v) in map.iter_mut() {
                path.push(k.clone());
                resolve_tree(v, root, path, strict)?;
                path.pop();
            }
        }
        Value::Array(items) => {
            for (i, v) in items.iter_mut().enumerate() {
                path.push(i.to_string());
                resolve_tree(v, root, path, strict)?;
                path.pop();
            }
        }
        Value::String(text) if text.contains("${") => {
            let key = path.join(".");
            let strict = strict
                .iter()
                .any(|s| key == *s || key.starts_with(&format!("{s}.")));
            *text = expand_placeholders(text, root, 0, strict).map_err(|reason| (key, reason))?;
        }
        _ => {}
    }
    Ok(())
}

/// `text` with its placeholders replaced by the values they name in `root`;
/// one that names nothing and has no default is left as written, as Spring
/// Boot's binder leaves it. A cycle is an error.
pub fn expand(text: &str, root: &Value, depth: usize) -> Result<String, String> {
    expand_placeholders(text, root, depth, false)
}

/// [`expand`]; when `strict`, a placeholder that names nothing is an error.
fn expand_placeholders(
    text: &str,
    root: &Value,
    depth: usize,
    strict: bool,
) -> Result<String, String> {
    if depth > MAX_PLACEHOLDER_DEPTH {
        return Err(format!(
            "placeholders nested more than {MAX_PLACEHOLDER_DEPTH} deep in `{text}` (a cycle?)"
        ));
    }
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(start) = rest.find("${") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        // An unclosed placeholder is text, as Spring's.
        let Some(end) = closing_brace(after) else {
            out.push_str(&rest[start..]);
            rest = "";
            break;
        };
        let inner = &after[..end];
        let (key, default) = match inner.split_once(':') {
            Some((k, d)) => (k.trim(), Some(d)),
            None => (inner.trim(), None),
        };
        let value = match lookup(root, key) {
            Some(Value::String(s)) if !s.is_empty() => {
                expand_placeholders(s, root, depth + 1, strict)?
            }
            Some(Value::Number(n)) => n.to_string(),
            Some(Value::Bool(b)) => b.to_string(),
            _ => match default {
                Some(d) => expand_placeholders(d, root, depth + 1, strict)?,
                // As Spring Boot's binder: left as written (SCG's
                // `RewritePath=..., /${segment}` relies on it).
                None if strict => {
                    return Err(format!(
                        "placeholder `${{{key}}}` names no setting with a value"
                    ));
                }
                None => format!("${{{inner}}}"),
            },
        };
        out.push_str(&value);
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

/// The index of the `}` that closes a placeholder whose body starts `text`
/// (nested `${...}` in a default included).
fn closing_brace(text: &str) -> Option<usize> {
    let mut depth = 0usize;
    let bytes = text.as_bytes();
    for (i, b) in bytes.iter().enumerate() {
        match b {
            b'{' if i > 0 && bytes[i - 1] == b'$' => depth += 1,
            b'}' if depth == 0 => return Some(i),
            b'}' => depth -= 1,
            _ => {}
        }
    }
    None
}

/// The value at dotted `key` in `tree`, levels matched relaxed.
pub fn lookup<'a>(tree: &'a Value, key: &str) -> Option<&'a Value> {
    key.split('.').try_fold(tree, |node, segment| {
        let wanted = canonical(segment);
        let map = node.as_object()?;
        map.get(segment).or_else(|| {
            map.iter()
                .find(|(k, _)| canonical(k) == wanted)
                .map(|(_, v)| v)
        })
    })
}

mod properties;

#[cfg(test)]
mod tests;
