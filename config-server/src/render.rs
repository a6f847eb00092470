//! Merged views of an environment: `.json`, `.yml`, `.properties`.
//!
//! The property sources are merged (higher priority wins), `${...}`
//! placeholders are resolved against the merged view, and for `.json` and
//! `.yml` the flat keys are nested back (`a.b[0].c` becomes
//! `{a: {b: [{c: ...}]}}`), as Spring's `EnvironmentController` does.

use cloud_protocol::config::Environment;
use serde_json::{Map, Value};

use std::borrow::Cow;

use crate::limits::Limits;
use crate::resolve::placeholder::{self, Budget, PlaceholderError};
use cloud_runtime::properties;

/// The output formats of the merged view.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// `application/json`, nested.
    Json,
    /// YAML, nested.
    Yaml,
    /// `key: value` lines, sorted by key.
    Properties,
}

impl Format {
    /// The format for a file extension (`yml`, `yaml`, `properties`, `json`).
    pub fn from_extension(ext: &str) -> Option<Self> {
        match ext {
            "json" => Some(Self::Json),
            "yml" | "yaml" => Some(Self::Yaml),
            "properties" => Some(Self::Properties),
            _ => None,
        }
    }

    /// The `Content-Type` of the format.
    pub fn content_type(self) -> &'static str {
        match self {
            Self::Json => "application/json",
            Self::Yaml => "text/plain;charset=UTF-8",
            Self::Properties => "text/plain;charset=UTF-8",
        }
    }
}

/// All keys with their effective values; lower-priority keys come first.
pub fn merge(env: &Environment) -> Map<String, Value> {
    let mut out = Map::new();
    for source in env.property_sources.iter().rev() {
        for (k, v) in &source.source {
            out.insert(k.clone(), v.clone());
        }
    }
    out
}

/// Resolves `${...}` in every string value of `flat` against `flat` itself,
/// within one request's `limits`.
pub fn resolve_placeholders(
    flat: &Map<String, Value>,
    limits: &Limits,
) -> Result<Map<String, Value>, PlaceholderError> {
    let lookup = |k: &str| flat.get(k).map(value_text);
    let mut budget = Budget::new(limits);
    flat.iter()
        .map(|(k, v)| {
            let v = match v {
                Value::String(s) if s.contains("${") => {
                    Value::String(placeholder::resolve(s, &lookup, &mut budget)?)
                }
                other => other.clone(),
            };
            Ok((k.clone(), v))
        })
        .collect()
}

/// Resolves `${...}` in the string values of every property source of
/// `env`, looking keys up in the merged view (Spring's
/// `?resolvePlaceholders=true` on the Environment endpoint).
pub fn resolve_sources(env: &mut Environment, limits: &Limits) -> Result<(), PlaceholderError> {
    let flat = merge(env);
    let lookup = |k: &str| flat.get(k).map(value_text);
    let mut budget = Budget::new(limits);
    for source in &mut env.property_sources {
        for value in source.source.values_mut() {
            if let Value::String(s) = value
                && s.contains("${")
            {
                *s = placeholder::resolve(s, &lookup, &mut budget)?;
            }
        }
    }
    Ok(())
}

/// Resolves `${...}` in arbitrary text (plain-text files) against `env`.
pub fn resolve_text(
    text: &str,
    env: &Environment,
    limits: &Limits,
) -> Result<String, PlaceholderError> {
    let flat = merge(env);
    let lookup = |k: &str| flat.get(k).map(value_text);
    placeholder::resolve(text, &lookup, &mut Budget::new(limits))
}

/// The text of a scalar value, as a placeholder would insert it.
fn value_text(v: &Value) -> Cow<'_, str> {
    match v {
        Value::String(s) => Cow::Borrowed(s),
        Value::Null => Cow::Borrowed(""),
        other => Cow::Owned(other.to_string()),
    }
}

/// A segment of a flat key: a map key or a list index.
enum Segment<'a> {
    Key(&'a str),
    Index(usize),
}

fn segments(key: &str) -> Vec<Segment<'_>> {
    let mut out = Vec::new();
    for part in key.split('.') {
        let (name, mut rest) = match part.find('[') {
            Some(i) => (&part[..i], &part[i..]),
            None => (part, ""),
        };
        if !name.is_empty() || rest.is_empty() {
            out.push(Segment::Key(name));
        }
        while let Some(stripped) = rest.strip_prefix('[') {
            let Some(end) = stripped.find(']') else {
                // Not an index after all: keep the text as a key.
                out.push(Segment::Key(rest));
                break;
            };
            match stripped[..end].parse::<usize>() {
                Ok(i) => out.push(Segment::Index(i)),
                Err(_) => out.push(Segment::Key(&stripped[..end])),
            }
            rest = &stripped[end + 1..];
        }
    }
    out
}

/// Nests flat keys back into maps and lists. Where a key is both a leaf and
/// a parent (`a: 1` and `a.b: 2`), the nested value wins.
pub fn nest(flat: &Map<String, Value>) -> Value {
    let mut root = Value::Object(Map::new());
    for (key, value) in flat {
        insert(&mut root, &segments(key), value.clone());
    }
    root
}

fn insert(node: &mut Value, path: &[Segment<'_>], value: Value) {
    let Some((first, rest)) = path.split_first() else {
        if !node.is_object() && !node.is_array() {
            *node = value;
        }
        return;
    };
    let child = match first {
        Segment::Key(k) => {
            if !node.is_object() {
                *node = Value::Object(Map::new());
            }
            let Value::Object(map) = node else { return };
            map.entry(k.to_string()).or_insert(Value::Null)
        }
        Segment::Index(i) => {
            if !node.is_array() {
                *node = Value::Array(Vec::new());
            }
            let Value::Array(list) = node else { return };
            // Bound the growth a hostile key like `a[999999999]` could cause.
            let i = (*i).min(list.len());
            if i == list.len() {
                list.push(Value::Null);
            }
            &mut list[i]
        }
    };
    insert(child, rest, value);
}

/// Renders the merged view of `env` in `format`, resolving placeholders
/// (when `resolve`) within `limits`.
pub fn render(
    env: &Environment,
    format: Format,
    resolve: bool,
    limits: &Limits,
) -> Result<String, RenderError> {
    let mut flat = merge(env);
    if resolve {
        flat = resolve_placeholders(&flat, limits)?;
    }
    match format {
        Format::Json => Ok(serde_json::to_string(&nest(&flat))?),
        Format::Yaml => Ok(serde_yaml_ng::to_string(&nest(&flat))?),
        Format::Properties => {
            let mut keys: Vec<&String> = flat.keys().collect();
            keys.sort();
            let mut out = String::new();
            for k in keys {
                let v = flat.get(k).map(value_text).unwrap_or_default();
                out.push_str(&properties::escape(k, true));
                out.push_str(": ");
                out.push_str(&properties::escape(&v, false));
                out.push('\n');
            }
            Ok(out)
        }
    }
}

/// A merged view could not be written.
#[derive(Debug, thiserror::Error)]
pub enum RenderError {
    /// JSON serialization failed.
    #[error(transparent)]
    Json(#[from] serde_json::Error),
    /// YAML serialization failed.
    #[error(transparent)]
    Yaml(#[from] serde_yaml_ng::Error),
    /// Placeholders could not be resolved (a cycle or a bound).
    #[error(transparent)]
    Placeholder(#[from] PlaceholderError),
}

#[cfg(test)]
mod tests {
    use super::*;
    use cloud_protocol::config::PropertySource;
    use proptest::prelude::*;
    use serde_json::json;

    fn env() -> Environment {
        let mut e = Environment::new("foo", vec!["dev".into()]);
        let high: Map<String, Value> = serde_json::from_value(json!({
            "server.port": 9000, "greeting": "hi ${name}", "list[0].x": 1, "list[1].x": 2
        }))
        .unwrap();
        let low: Map<String, Value> = serde_json::from_value(json!({
            "server.port": 8080, "name": "bob", "server.host": "h", "url": "${missing:http://x}"
        }))
        .unwrap();
        e.property_sources.push(PropertySource::new("high", high));
        e.property_sources.push(PropertySource::new("low", low));
        e
    }

    #[test]
    fn json_view_is_nested_merged_and_resolved() {
        let out = render(&env(), Format::Json, true, &Limits::default()).unwrap();
        let v: Value = serde_json::from_str(&out).unwrap();
        assert_eq!(v["server"]["port"], json!(9000));
        assert_eq!(v["server"]["host"], json!("h"));
        assert_eq!(v["greeting"], json!("hi bob"));
        assert_eq!(v["url"], json!("http://x"));
        assert_eq!(v["list"], json!([{"x": 1}, {"x": 2}]));
    }

    #[test]
    fn yaml_view_parses_back_to_the_same_tree() {
        let out = render(&env(), Format::Yaml, true, &Limits::default()).unwrap();
        let back: Value = serde_yaml_ng::from_str(&out).unwrap();
        assert_eq!(back["server"]["port"], json!(9000));
        assert_eq!(back["list"][1]["x"], json!(2));
    }

    #[test]
    fn properties_view_is_sorted_and_escaped() {
        let out = render(&env(), Format::Properties, true, &Limits::default()).unwrap();
        let lines: Vec<&str> = out.lines().collect();
        assert_eq!(lines[0], "greeting: hi bob");
        assert!(lines.contains(&"server.port: 9000"));
        let parsed = cloud_runtime::properties::parse(&out);
        assert_eq!(parsed["list[1].x"], json!("2"));
    }

    #[test]
    fn sources_resolve_against_the_merged_view() {
        let mut e = env();
        resolve_sources(&mut e, &Limits::default()).unwrap();
        assert_eq!(e.property_sources[0].source["greeting"], json!("hi bob"));
        assert_eq!(e.property_sources[1].source["url"], json!("http://x"));
        assert_eq!(e.property_sources[1].source["server.port"], json!(8080));
    }

    #[test]
    fn plain_text_placeholders() {
        assert_eq!(
            resolve_text("listen ${server.port}; ${nope}", &env(), &Limits::default()).unwrap(),
            "listen 9000; ${nope}"
        );
    }

    #[test]
    fn a_circular_placeholder_is_an_error_in_every_view() {
        let mut e = Environment::new("cyc", vec!["default".into()]);
        let src: Map<String, Value> = serde_json::from_value(json!({"a": "${a}${a}"})).unwrap();
        e.property_sources.push(PropertySource::new("cyc.yml", src));
        for format in [Format::Json, Format::Yaml, Format::Properties] {
            let err = render(&e, format, true, &Limits::default()).unwrap_err();
            assert!(
                matches!(&err, RenderError::Placeholder(p) if p.is_circular()),
                "{err}"
            );
        }
        assert!(render(&e, Format::Yaml, false, &Limits::default()).is_ok());
        assert!(resolve_sources(&mut e.clone(), &Limits::default()).is_err());
    }

    proptest! {
        #[test]
        fn nesting_never_panics(keys in proptest::collection::vec("[a-c.\\[\\]0-9]{0,12}", 0..10)) {
            let flat: Map<String, Value> = keys.into_iter().map(|k| (k, json!(1))).collect();
            let _ = nest(&flat);
        }
    }
}
