//! YAML documents flattened to Spring's dotted keys.
//!
//! Nested maps become `a.b.c`, sequences become `a.b[0]`, `a.b[1].c`; scalar
//! values keep their JSON type. As in Spring Boot, a null or empty collection
//! is written as an empty string, and a file may hold several documents
//! separated by `---`.

use serde::Deserialize;
use serde_json::{Map, Number, Value};
use serde_yaml_ng::Value as Yaml;

/// A YAML text that is not valid YAML.
#[derive(Debug, thiserror::Error)]
#[error("invalid YAML: {0}")]
pub(crate) struct YamlError(#[from] serde_yaml_ng::Error);

/// Parses every document of `text` and flattens each to dotted keys. Empty
/// documents (e.g. a lone `---`) are kept so that document numbers match
/// their position in the file.
pub(crate) fn parse_documents(text: &str) -> Result<Vec<Map<String, Value>>, YamlError> {
    let mut docs = Vec::new();
    for doc in serde_yaml_ng::Deserializer::from_str(text) {
        let value = Yaml::deserialize(doc)?;
        let mut flat = Map::new();
        if !matches!(value, Yaml::Null) {
            flatten_into(&mut flat, String::new(), &value)?;
        }
        docs.push(flat);
    }
    Ok(docs)
}

fn flatten_into(
    out: &mut Map<String, Value>,
    prefix: String,
    value: &Yaml,
) -> Result<(), YamlError> {
    match value {
        Yaml::Mapping(map) if !map.is_empty() => {
            for (k, v) in map {
                let key = scalar_key(k)?;
                let path = if prefix.is_empty() {
                    key
                } else if key.starts_with('[') {
                    format!("{prefix}{key}")
                } else {
                    format!("{prefix}.{key}")
                };
                flatten_into(out, path, v)?;
            }
        }
        Yaml::Sequence(seq) if !seq.is_empty() => {
            for (i, v) in seq.iter().enumerate() {
                flatten_into(out, format!("{prefix}[{i}]"), v)?;
            }
        }
        Yaml::Tagged(tagged) => flatten_into(out, prefix, &tagged.value)?,
        leaf => {
            if !prefix.is_empty() {
                out.insert(prefix, leaf_value(leaf));
            }
        }
    }
    Ok(())
}

/// The text of a mapping key. Keys that are not plain words (they hold `.`
/// or `/` etc. in the original) are kept as written, like Spring does for the
/// common cases.
fn scalar_key(k: &Yaml) -> Result<String, YamlError> {
    Ok(match k {
        Yaml::String(s) => s.clone(),
        Yaml::Bool(b) => b.to_string(),
        Yaml::Number(n) => n.to_string(),
        Yaml::Null => "null".to_string(),
        other => serde_yaml_ng::to_string(other)?.trim().to_string(),
    })
}

fn leaf_value(v: &Yaml) -> Value {
    match v {
        Yaml::Null => Value::String(String::new()),
        Yaml::Bool(b) => Value::Bool(*b),
        Yaml::Number(n) => {
            if let Some(i) = n.as_i64() {
                Value::Number(i.into())
            } else if let Some(u) = n.as_u64() {
                Value::Number(u.into())
            } else {
                n.as_f64()
                    .and_then(Number::from_f64)
                    .map(Value::Number)
                    // NaN and infinities have no JSON form: keep their text.
                    .unwrap_or_else(|| Value::String(n.to_string()))
            }
        }
        Yaml::String(s) => Value::String(s.clone()),
        // Empty mappings and sequences.
        _ => Value::String(String::new()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde_json::json;

    #[test]
    fn nested_maps_and_lists_flatten_with_types_kept() {
        let docs = parse_documents(
            "server:\n  port: 8080\n  ratio: 0.5\nfeature:\n  on: true\n  hosts:\n    - a\n    - name: b\n      weight: 2\nempty:\nnone: []\n",
        )
        .unwrap();
        let d = &docs[0];
        assert_eq!(d["server.port"], json!(8080));
        assert_eq!(d["server.ratio"], json!(0.5));
        assert_eq!(d["feature.on"], json!(true));
        assert_eq!(d["feature.hosts[0]"], json!("a"));
        assert_eq!(d["feature.hosts[1].name"], json!("b"));
        assert_eq!(d["feature.hosts[1].weight"], json!(2));
        assert_eq!(d["empty"], json!(""));
        assert_eq!(d["none"], json!(""));
        let keys: Vec<_> = d.keys().cloned().collect();
        assert_eq!(keys[0], "server.port", "file order is kept");
    }

    #[test]
    fn several_documents_are_kept_apart() {
        let docs = parse_documents("a: 1\n---\n---\nspring:\n  profiles: dev\na: 2\n").unwrap();
        assert_eq!(docs.len(), 3);
        assert!(docs[1].is_empty());
        assert_eq!(docs[2]["a"], json!(2));
        assert_eq!(docs[2]["spring.profiles"], json!("dev"));
    }

    #[test]
    fn invalid_yaml_is_an_error_not_a_panic() {
        assert!(parse_documents("a: [1, 2\n").is_err());
    }

    proptest! {
        #[test]
        fn never_panics(s in "\\PC*") {
            let _ = parse_documents(&s);
        }
    }
}
