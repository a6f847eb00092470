//! Spring Cloud Config wire types: `Environment` and `PropertySource`.
//!
//! These are the JSON documents that `GET /{application}/{profiles}[/{label}]`
//! returns, with the field names Spring writes (`propertySources`, ...).
//! Property values keep their JSON types (numbers, booleans, strings, null)
//! and a source keeps the order in which its keys were written.
//!
//! ```
//! use cloud_protocol::config::{Environment, PropertySource};
//! use serde_json::json;
//!
//! let mut env = Environment::new("foo", vec!["dev".into()]);
//! env.label = Some("main".into());
//! env.property_sources.push(PropertySource::new(
//!     "git:foo-dev.yml",
//!     [("server.port".to_string(), json!(8080))].into_iter().collect(),
//! ));
//! let text = serde_json::to_string(&env).unwrap();
//! assert!(text.contains(r#""propertySources":[{"name":"git:foo-dev.yml""#));
//! let back: Environment = serde_json::from_str(&text).unwrap();
//! assert_eq!(back, env);
//! assert_eq!(back.get("server.port"), Some(&json!(8080)));
//! ```

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// The configuration of one application for some profiles at one label.
///
/// Property sources are ordered highest priority first: a key in an earlier
/// source hides the same key in a later one.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Environment {
    /// The application name(s) as requested (comma-separated when several).
    pub name: String,
    /// The active profiles, in the order requested (the last one wins).
    #[serde(default)]
    pub profiles: Vec<String>,
    /// The label (branch, tag or commit) the request named, if any.
    #[serde(default)]
    pub label: Option<String>,
    /// The version of the backing store, for git the commit id.
    #[serde(default)]
    pub version: Option<String>,
    /// Backend-defined state; Spring writes `null` when there is none.
    #[serde(default)]
    pub state: Option<String>,
    /// The property sources, highest priority first.
    #[serde(default)]
    pub property_sources: Vec<PropertySource>,
}

impl Environment {
    /// An environment with no label, version, state or sources.
    pub fn new(name: impl Into<String>, profiles: Vec<String>) -> Self {
        Self {
            name: name.into(),
            profiles,
            label: None,
            version: None,
            state: None,
            property_sources: Vec::new(),
        }
    }

    /// The effective value of `key`: the one from the first (highest
    /// priority) source that has it.
    pub fn get(&self, key: &str) -> Option<&Value> {
        self.property_sources.iter().find_map(|s| s.source.get(key))
    }
}

/// One named set of flat properties, for example the contents of one file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PropertySource {
    /// Where the properties come from, e.g. `file:/repo/foo-dev.yml`.
    pub name: String,
    /// Flat dotted keys (`a.b[0].c`) to JSON values, in file order.
    #[serde(default)]
    pub source: Map<String, Value>,
}

impl PropertySource {
    /// A property source with the given name and properties.
    pub fn new(name: impl Into<String>, source: Map<String, Value>) -> Self {
        Self {
            name: name.into(),
            source,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn serializes_with_spring_field_names_and_null_state() {
        let env = Environment::new("foo", vec!["dev".into(), "mysql".into()]);
        let v = serde_json::to_value(&env).unwrap();
        assert_eq!(
            v,
            json!({"name":"foo","profiles":["dev","mysql"],"label":null,"version":null,
                   "state":null,"propertySources":[]})
        );
    }

    #[test]
    fn reads_a_spring_document_keeping_key_order_and_types() {
        let text = r#"{"name":"foo","profiles":["default"],"label":"main","version":"abc",
            "state":null,"propertySources":[{"name":"a","source":{"z":1,"a":true,"m":"x"}},
            {"name":"b","source":{"z":2}}]}"#;
        let env: Environment = serde_json::from_str(text).unwrap();
        let keys: Vec<&str> = env.property_sources[0]
            .source
            .keys()
            .map(String::as_str)
            .collect();
        assert_eq!(keys, ["z", "a", "m"]);
        assert_eq!(env.get("z"), Some(&json!(1)));
        assert_eq!(env.get("a"), Some(&json!(true)));
        assert_eq!(env.version.as_deref(), Some("abc"));
    }

    #[test]
    fn tolerates_missing_optional_fields() {
        let env: Environment = serde_json::from_str(r#"{"name":"foo"}"#).unwrap();
        assert!(env.profiles.is_empty());
        assert!(env.property_sources.is_empty());
    }
}
