//! Property handling, pure: merging an environment's property sources
//! (first wins), layering local < remote < environment variables, the list
//! of keys that changed, `invalid.<key>` detection, and turning flat dotted
//! keys into a typed value.

use std::collections::BTreeMap;

use cloud_protocol::config::Environment;
use serde::de::DeserializeOwned;
use serde_json::Value;

/// Flat properties: dotted keys (`a.b[0].c`) to JSON values, sorted.
pub type Properties = BTreeMap<String, Value>;

/// The server could not decrypt some values (`invalid.<key>` properties);
/// the application must not run with ciphertext or without them.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the config server could not decrypt {}", keys.join(", "))]
pub struct Undecryptable {
    keys: Vec<String>,
}

impl Undecryptable {
    /// The keys whose values could not be decrypted (without `invalid.`).
    pub fn keys(&self) -> &[String] {
        &self.keys
    }
}

/// Merges the property sources of `env`, the first (highest priority)
/// source winning for each key. Fails when any source holds an
/// `invalid.<key>` property.
pub fn merge_sources(env: &Environment) -> Result<Properties, Undecryptable> {
    let mut out = Properties::new();
    let mut invalid = Vec::new();
    for source in &env.property_sources {
        for (key, value) in &source.source {
            if let Some(k) = key.strip_prefix("invalid.") {
                if !invalid.iter().any(|i: &String| i == k) {
                    invalid.push(k.to_owned());
                }
                continue;
            }
            out.entry(key.clone()).or_insert_with(|| value.clone());
        }
    }
    if invalid.is_empty() {
        Ok(out)
    } else {
        invalid.sort();
        Err(Undecryptable { keys: invalid })
    }
}

/// Layers properties lowest first: local files, then the config server,
/// then environment variables (each later layer wins).
pub fn layer(local: &Properties, remote: &Properties, env: &Properties) -> Properties {
    let mut out = local.clone();
    for (k, v) in remote.iter().chain(env.iter()) {
        out.insert(k.clone(), v.clone());
    }
    out
}

/// Keys added, removed or changed between `old` and `new`, sorted.
pub fn changed_keys(old: &Properties, new: &Properties) -> Vec<String> {
    let mut out: Vec<String> = new
        .iter()
        .filter(|(k, v)| old.get(*k) != Some(v))
        .map(|(k, _)| k.clone())
        .chain(old.keys().filter(|k| !new.contains_key(*k)).cloned())
        .collect();
    out.sort();
    out.dedup();
    out
}

/// The properties could not be read as the application's type.
#[derive(Debug, thiserror::Error)]
#[error("configuration does not fit the application's settings type")]
pub struct DeserializeError {
    #[source]
    source: config::ConfigError,
}

/// Reads flat properties as `T`: dotted keys become nesting, `[n]` list
/// positions; strings that hold numbers or booleans are read as such where
/// `T` asks for one (as Spring's binder does). Use
/// `#[serde(rename_all = "kebab-case")]` on `T` for Spring's key style.
pub fn deserialize<T: DeserializeOwned>(props: &Properties) -> Result<T, DeserializeError> {
    let mut builder = config::Config::builder();
    for (key, value) in props {
        builder = builder
            .set_override(key.as_str(), to_config_value(value))
            .map_err(|source| DeserializeError { source })?;
    }
    builder
        .build()
        .and_then(config::Config::try_deserialize)
        .map_err(|source| DeserializeError { source })
}

fn to_config_value(v: &Value) -> config::Value {
    use config::ValueKind;
    let kind = match v {
        Value::Null => ValueKind::Nil,
        Value::Bool(b) => ValueKind::Boolean(*b),
        Value::Number(n) => match (n.as_i64(), n.as_u64(), n.as_f64()) {
            (Some(i), _, _) => ValueKind::I64(i),
            (None, Some(u), _) => ValueKind::U64(u),
            (_, _, Some(f)) => ValueKind::Float(f),
            _ => ValueKind::String(n.to_string()),
        },
        Value::String(s) => ValueKind::String(s.clone()),
        Value::Array(items) => ValueKind::Array(items.iter().map(to_config_value).collect()),
        Value::Object(map) => ValueKind::Table(
            map.iter()
                .map(|(k, v)| (k.clone(), to_config_value(v)))
                .collect(),
        ),
    };
    config::Value::new(None, kind)
}

#[cfg(test)]
mod tests {
    use super::*;
    use cloud_protocol::config::PropertySource;
    use serde::Deserialize;
    use serde_json::json;

    fn source(name: &str, pairs: &[(&str, Value)]) -> PropertySource {
        PropertySource::new(
            name,
            pairs
                .iter()
                .map(|(k, v)| ((*k).to_owned(), v.clone()))
                .collect(),
        )
    }

    fn props(pairs: &[(&str, Value)]) -> Properties {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), v.clone()))
            .collect()
    }

    #[test]
    fn the_first_source_wins() {
        let mut env = Environment::new("app", vec!["dev".into()]);
        env.property_sources = vec![
            source("app-dev.yml", &[("a", json!(1))]),
            source("app.yml", &[("a", json!(2)), ("b", json!("x"))]),
        ];
        let merged = merge_sources(&env).unwrap();
        assert_eq!(merged, props(&[("a", json!(1)), ("b", json!("x"))]));
    }

    #[test]
    fn undecryptable_values_are_an_error_naming_the_keys() {
        let mut env = Environment::new("app", vec![]);
        env.property_sources = vec![source(
            "app.yml",
            &[("invalid.db.password", json!("<n/a>")), ("a", json!(1))],
        )];
        let err = merge_sources(&env).unwrap_err();
        assert_eq!(err.keys(), ["db.password"]);
        assert!(err.to_string().contains("db.password"));
    }

    #[test]
    fn environment_variables_beat_the_server_which_beats_local_files() {
        let local = props(&[
            ("a", json!("local")),
            ("b", json!("local")),
            ("c", json!("local")),
        ]);
        let remote = props(&[("b", json!("remote")), ("c", json!("remote"))]);
        let env = props(&[("c", json!("env"))]);
        let all = layer(&local, &remote, &env);
        assert_eq!(all["a"], json!("local"));
        assert_eq!(all["b"], json!("remote"));
        assert_eq!(all["c"], json!("env"));
    }

    #[test]
    fn changed_keys_lists_additions_removals_and_changes() {
        let old = props(&[("a", json!(1)), ("b", json!(2)), ("c", json!(3))]);
        let new = props(&[("a", json!(1)), ("b", json!(20)), ("d", json!(4))]);
        assert_eq!(changed_keys(&old, &new), ["b", "c", "d"]);
        assert!(changed_keys(&old, &old).is_empty());
    }

    #[derive(Debug, Deserialize, PartialEq)]
    #[serde(rename_all = "kebab-case")]
    struct AppConfig {
        greeting: String,
        max_users: u32,
        feature: Feature,
        #[serde(default)]
        hosts: Vec<String>,
    }

    #[derive(Debug, Deserialize, PartialEq)]
    struct Feature {
        enabled: bool,
    }

    #[test]
    fn flat_keys_become_a_typed_value() {
        let p = props(&[
            ("greeting", json!("hello")),
            ("max-users", json!("12")),
            ("feature.enabled", json!(true)),
            ("hosts[0]", json!("a")),
            ("hosts[1]", json!("b")),
            ("unrelated.key", json!(1)),
        ]);
        let c: AppConfig = deserialize(&p).unwrap();
        assert_eq!(
            c,
            AppConfig {
                greeting: "hello".into(),
                max_users: 12,
                feature: Feature { enabled: true },
                hosts: vec!["a".into(), "b".into()],
            }
        );
        let bad = props(&[("greeting", json!("x")), ("max-users", json!("many"))]);
        assert!(deserialize::<AppConfig>(&bad).is_err());
    }
}
