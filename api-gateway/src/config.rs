//! Route definitions as Spring Cloud Gateway writes them in
//! `application.yml`, before compilation: each route's `id`, `uri`,
//! `order`, `metadata`, and its predicates and filters in either of SCG's
//! two forms.
//!
//! - The shortcut form, `Name=value1, value2`: values are split at commas
//!   and trimmed, then bound to the factory's argument names in order (or
//!   gathered into its one list argument, as for `Path` and `Host`).
//! - The expanded form, `{name: Name, args: {...}}`: arguments by SCG's
//!   names (relaxed: `fallbackUri`, `fallback-uri` and `fallback_uri` are
//!   the same), or positional as SCG's own `_genkey_0`, `_genkey_1`, ...
//!   Nested maps (`backoff: {firstBackoff: 10ms}`) and dotted keys
//!   (`redis-rate-limiter.replenishRate: 10`) are the same.
//!
//! No value may hold an expression (`#{...}`): SCG evaluated SpEL in route
//! definitions, which was CVE-2022-22947; here such a value is an error.

use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;

use serde_json::{Map, Value};

/// A predicate or filter definition that cannot be compiled, with the
/// reason (and the underlying error, when there is one).
#[derive(Debug, thiserror::Error)]
#[error("{what}: {reason}")]
pub struct InvalidDefinition {
    what: String,
    reason: String,
    #[source]
    source: Option<Box<dyn std::error::Error + Send + Sync>>,
}

impl InvalidDefinition {
    /// `what` (such as `filter RewritePath` or `uri`) is wrong because of
    /// `reason`.
    pub fn new(what: impl Into<String>, reason: impl Into<String>) -> InvalidDefinition {
        InvalidDefinition {
            what: what.into(),
            reason: reason.into(),
            source: None,
        }
    }

    /// Adds the underlying error.
    pub fn with_source(
        mut self,
        source: impl std::error::Error + Send + Sync + 'static,
    ) -> InvalidDefinition {
        self.source = Some(Box::new(source));
        self
    }

    /// The same error, found in `default-filters`.
    pub fn in_default_filters(mut self) -> InvalidDefinition {
        self.what = format!("default-filters: {}", self.what);
        self
    }

    /// Whether a value held an expression (`#{...}`), which is refused.
    pub fn is_expression(&self) -> bool {
        self.reason.starts_with(EXPRESSION_REFUSED)
    }
}

const EXPRESSION_REFUSED: &str = "expressions (`#{...}`) are not evaluated";

/// A route that cannot be loaded: the file, the route and the reason.
#[derive(Debug, thiserror::Error)]
#[error("{}route `{route}`: {source}", file.as_ref().map(|f| format!("{}: ", f.display())).unwrap_or_default())]
pub struct RouteError {
    file: Option<PathBuf>,
    route: String,
    #[source]
    source: InvalidDefinition,
}

impl RouteError {
    /// `route` (its id, or its position when it has none) from `file` is
    /// wrong.
    pub fn new(file: Option<PathBuf>, route: impl Into<String>, source: InvalidDefinition) -> Self {
        RouteError {
            file,
            route: route.into(),
            source,
        }
    }

    /// The route's id.
    pub fn route(&self) -> &str {
        &self.route
    }

    /// The definition error.
    pub fn definition(&self) -> &InvalidDefinition {
        &self.source
    }
}

/// One route as written.
#[derive(Debug, Clone, PartialEq)]
pub struct RouteDefinition {
    /// `id`; a route without one is named `route-<position>`.
    pub id: String,
    /// `uri`: `http://`, `https://`, `lb://name`, `ws://`, `wss://`,
    /// `lb:ws://name` or `forward:/path`.
    pub uri: String,
    /// `order`: lower first; equal orders keep declaration order.
    pub order: i32,
    /// `predicates`, all of which must hold.
    pub predicates: Vec<Definition>,
    /// `filters`.
    pub filters: Vec<Definition>,
    /// `metadata` (`connect-timeout` and `response-timeout` in
    /// milliseconds are read; the rest is shown by the admin API).
    pub metadata: Map<String, Value>,
    /// `enabled` (default true). SCG 4 reads it into its `RouteDefinition`
    /// and shows it, but routes with `false` still serve; so here: the key
    /// is accepted (definitions copied from `/routedefinitions` carry it)
    /// and shown, and the route serves either way.
    pub enabled: bool,
}

impl RouteDefinition {
    /// The definition as SCG's `/actuator/gateway/routedefinitions` shows
    /// it: `id`, `predicates` and `filters` as `{name, args}` maps, `uri`,
    /// `metadata`, `order`, `enabled`.
    pub fn to_json(&self) -> Value {
        serde_json::json!({
            "id": self.id,
            "predicates": self.predicates.iter().map(Definition::to_json).collect::<Vec<_>>(),
            "filters": self.filters.iter().map(Definition::to_json).collect::<Vec<_>>(),
            "uri": self.uri,
            "metadata": self.metadata,
            "order": self.order,
            "enabled": self.enabled,
        })
    }
}

/// One predicate or filter as written: its factory name and arguments.
#[derive(Debug, Clone, PartialEq)]
pub struct Definition {
    /// The factory name (`Path`, `StripPrefix`, ...).
    pub name: String,
    args: Vec<(String, Value)>,
}

impl fmt::Display for Definition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.name)?;
        if self.args.is_empty() {
            return Ok(());
        }
        f.write_str("=")?;
        for (i, (key, value)) in self.args.iter().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            if !key.starts_with(GENKEY) {
                write!(f, "{key}: ")?;
            }
            match value {
                Value::String(s) => f.write_str(s)?,
                other => write!(f, "{other}")?,
            }
        }
        Ok(())
    }
}

const GENKEY: &str = "_genkey_";

/// How a factory binds positional values (SCG's `ShortcutType`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shortcut {
    /// Values bind to the fields in order.
    InOrder,
    /// All values form the one list field.
    GatherList,
    /// All values form the list field, except a last `true`/`false`, which
    /// is the flag field (`Path=/a,/b,false`).
    GatherListTailFlag,
}

impl Definition {
    /// `{name, args}` as SCG shows a definition: positional arguments
    /// under `_genkey_<n>`, nested ones under dotted keys, scalars as text
    /// (SCG keeps every argument as a string).
    pub fn to_json(&self) -> Value {
        let args: Map<String, Value> = self
            .args
            .iter()
            .map(|(k, v)| {
                (
                    k.clone(),
                    scalar_text(v).map_or_else(|| v.clone(), Value::String),
                )
            })
            .collect();
        serde_json::json!({ "name": self.name, "args": args })
    }

    /// A definition from YAML: a shortcut string or an expanded map.
    pub fn parse(value: &Value, kind: &str) -> Result<Definition, InvalidDefinition> {
        match value {
            Value::String(text) => Ok(Definition::shortcut(text)),
            Value::Object(map) => {
                let name = map
                    .iter()
                    .find(|(k, _)| canonical(k) == "name")
                    .and_then(|(_, v)| v.as_str())
                    .ok_or_else(|| {
                        InvalidDefinition::new(kind, "an expanded definition needs a `name`")
                    })?;
                let mut args = Vec::new();
                for (key, value) in map {
                    match canonical(key).as_str() {
                        "name" => {}
                        "args" => match value {
                            Value::Object(a) => flatten_args("", a, &mut args),
                            Value::Null => {}
                            _ => {
                                return Err(InvalidDefinition::new(
                                    format!("{kind} {name}"),
                                    "`args` must be a map of argument names to values",
                                ));
                            }
                        },
                        _ => {
                            return Err(InvalidDefinition::new(
                                format!("{kind} {name}"),
                                format!("unknown key `{key}` (expected `name` and `args`)"),
                            ));
                        }
                    }
                }
                Ok(Definition {
                    name: name.trim().to_owned(),
                    args,
                })
            }
            other => Err(InvalidDefinition::new(
                kind,
                format!("expected `Name=args` or a map with `name` and `args`, found {other}"),
            )),
        }
    }

    /// A definition from SCG's shortcut form, `Name=value1, value2`.
    pub fn shortcut(text: &str) -> Definition {
        let (name, rest) = match text.split_once('=') {
            Some((name, rest)) => (name.trim(), Some(rest)),
            None => (text.trim(), None),
        };
        let args = rest
            .map(|r| {
                r.split(',')
                    .map(str::trim)
                    .enumerate()
                    .map(|(i, v)| (format!("{GENKEY}{i}"), Value::String(v.to_owned())))
                    .collect()
            })
            .unwrap_or_default();
        Definition {
            name: name.to_owned(),
            args,
        }
    }

    /// Binds the arguments to `fields` (canonical names: lower case, no
    /// `-` or `_`, levels joined by `.`), refusing unknown names.
    pub fn bind(
        &self,
        kind: &str,
        fields: &[&str],
        shortcut: Shortcut,
    ) -> Result<Args, InvalidDefinition> {
        let what = format!("{kind} {}", self.name);
        let mut bound = BTreeMap::new();
        let mut positional = Vec::new();
        for (key, value) in &self.args {
            if let Some(index) = key.strip_prefix(GENKEY) {
                let index: usize = index.parse().map_err(|_| {
                    InvalidDefinition::new(&what, format!("bad positional argument `{key}`"))
                })?;
                positional.push((index, value.clone()));
                continue;
            }
            let name = key.split('.').map(canonical).collect::<Vec<_>>().join(".");
            if !fields.contains(&name.as_str()) {
                return Err(InvalidDefinition::new(
                    &what,
                    format!(
                        "unknown argument `{key}` (expected one of: {})",
                        fields.join(", ")
                    ),
                ));
            }
            bound.insert(name, value.clone());
        }
        positional.sort_by_key(|(i, _)| *i);
        let mut values: Vec<Value> = positional.into_iter().map(|(_, v)| v).collect();
        if !values.is_empty() {
            match shortcut {
                Shortcut::InOrder => {
                    if values.len() > fields.len() {
                        return Err(InvalidDefinition::new(
                            &what,
                            format!(
                                "{} values given, at most {} expected ({})",
                                values.len(),
                                fields.len(),
                                fields.join(", ")
                            ),
                        ));
                    }
                    for (field, value) in fields.iter().zip(values) {
                        bound.insert((*field).to_owned(), value);
                    }
                }
                Shortcut::GatherList | Shortcut::GatherListTailFlag => {
                    if shortcut == Shortcut::GatherListTailFlag && values.len() > 1 {
                        let last = values
                            .last()
                            .and_then(Value::as_str)
                            .map(str::to_ascii_lowercase);
                        if matches!(last.as_deref(), Some("true" | "false"))
                            && let (Some(flag), Some(v)) = (fields.get(1), values.pop())
                        {
                            bound.insert((*flag).to_owned(), v);
                        }
                    }
                    if let Some(list) = fields.first() {
                        bound.insert((*list).to_owned(), Value::Array(values));
                    }
                }
            }
        }
        for value in bound.values() {
            refuse_expressions(value).map_err(|reason| InvalidDefinition::new(&what, reason))?;
        }
        Ok(Args { what, bound })
    }
}

fn flatten_args(prefix: &str, map: &Map<String, Value>, out: &mut Vec<(String, Value)>) {
    for (key, value) in map {
        let key = if prefix.is_empty() {
            key.clone()
        } else {
            format!("{prefix}.{key}")
        };
        match value {
            Value::Object(inner) if !key.starts_with(GENKEY) => flatten_args(&key, inner, out),
            _ => out.push((key, value.clone())),
        }
    }
}

/// Spring's canonical form of one key level: lower case, no `-` or `_`.
pub(crate) fn canonical(segment: &str) -> String {
    segment
        .chars()
        .filter(|c| *c != '-' && *c != '_')
        .flat_map(char::to_lowercase)
        .collect()
}

/// Refuses a value that holds an expression anywhere inside.
pub(crate) fn refuse_expressions(value: &Value) -> Result<(), String> {
    match value {
        Value::String(s) if s.contains("#{") => Err(format!(
            "{EXPRESSION_REFUSED} (SCG's CVE-2022-22947); found `{s}`"
        )),
        Value::Array(items) => items.iter().try_for_each(refuse_expressions),
        Value::Object(map) => map.values().try_for_each(refuse_expressions),
        _ => Ok(()),
    }
}

/// A definition's arguments bound to its factory's names.
#[derive(Debug, Clone)]
pub struct Args {
    what: String,
    bound: BTreeMap<String, Value>,
}

impl Args {
    /// An error about this definition.
    pub fn error(&self, reason: impl Into<String>) -> InvalidDefinition {
        InvalidDefinition::new(&self.what, reason)
    }

    /// Whether `field` was given at all (even empty).
    pub fn given(&self, field: &str) -> bool {
        self.bound.contains_key(field)
    }

    /// The value of `field` as text, if given (and not empty).
    pub fn opt_str(&self, field: &str) -> Option<String> {
        match self.bound.get(field)? {
            Value::String(s) if s.is_empty() => None,
            Value::String(s) => Some(s.clone()),
            Value::Null => None,
            Value::Array(items) if items.len() == 1 => items.first().and_then(scalar_text),
            other => scalar_text(other),
        }
    }

    /// The value of `field` as text; missing is an error.
    pub fn str(&self, field: &str) -> Result<String, InvalidDefinition> {
        self.opt_str(field)
            .ok_or_else(|| self.error(format!("argument `{field}` is required")))
    }

    /// The value of `field` as a list: a YAML list, or text split at
    /// commas. Missing is an empty list.
    pub fn list(&self, field: &str) -> Vec<String> {
        match self.bound.get(field) {
            Some(Value::Array(items)) => items
                .iter()
                .filter_map(scalar_text)
                .flat_map(|s| split_list(&s))
                .collect(),
            Some(Value::Null) | None => Vec::new(),
            Some(other) => scalar_text(other)
                .map(|s| split_list(&s))
                .unwrap_or_default(),
        }
    }

    /// The value of `field` parsed as `T`, or `default` when missing.
    pub fn parse_or<T: std::str::FromStr>(
        &self,
        field: &str,
        default: T,
    ) -> Result<T, InvalidDefinition>
    where
        T::Err: fmt::Display,
    {
        match self.opt_str(field) {
            None => Ok(default),
            Some(text) => text.trim().parse().map_err(|e: T::Err| {
                self.error(format!("argument `{field}`: `{text}` is not valid: {e}"))
            }),
        }
    }

    /// The value of `field` parsed as `T`; missing is an error.
    pub fn parse<T: std::str::FromStr>(&self, field: &str) -> Result<T, InvalidDefinition>
    where
        T::Err: fmt::Display,
    {
        let text = self.str(field)?;
        text.trim().parse().map_err(|e: T::Err| {
            self.error(format!("argument `{field}`: `{text}` is not valid: {e}"))
        })
    }

    /// A boolean `field`, `default` when missing.
    pub fn flag(&self, field: &str, default: bool) -> Result<bool, InvalidDefinition> {
        match self.opt_str(field).map(|s| s.trim().to_ascii_lowercase()) {
            None => Ok(default),
            Some(s) if s == "true" => Ok(true),
            Some(s) if s == "false" => Ok(false),
            Some(s) => Err(self.error(format!("argument `{field}`: `{s}` is not true or false"))),
        }
    }

    /// A regular expression in `field`, compiled to match whole values.
    pub fn regex(&self, field: &str) -> Result<Option<regex::Regex>, InvalidDefinition> {
        self.opt_str(field)
            .map(|re| {
                whole_match(&re).map_err(|e| {
                    self.error(format!("argument `{field}`: bad regular expression `{re}`"))
                        .with_source(e)
                })
            })
            .transpose()
    }
}

/// `re` anchored at both ends (Java's `matches()`).
pub(crate) fn whole_match(re: &str) -> Result<regex::Regex, regex::Error> {
    regex::Regex::new(&format!("^(?:{re})$"))
}

fn scalar_text(value: &Value) -> Option<String> {
    match value {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

fn split_list(text: &str) -> Vec<String> {
    text.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect()
}

/// Reads the routes of one `routes:` list.
pub fn parse_routes(
    values: &[Value],
    file: Option<&PathBuf>,
    first_index: usize,
) -> Result<Vec<RouteDefinition>, RouteError> {
    values
        .iter()
        .enumerate()
        .map(|(i, v)| {
            parse_route(v, first_index + i).map_err(|(id, e)| RouteError::new(file.cloned(), id, e))
        })
        .collect()
}

fn parse_route(
    value: &Value,
    index: usize,
) -> Result<RouteDefinition, (String, InvalidDefinition)> {
    let fallback_id = format!("route-{index}");
    let Value::Object(map) = value else {
        return Err((
            fallback_id,
            InvalidDefinition::new(
                "route",
                "expected a map with `id`, `uri`, `predicates` and `filters`",
            ),
        ));
    };
    let id = map
        .iter()
        .find(|(k, _)| canonical(k) == "id")
        .and_then(|(_, v)| scalar_text(v))
        .unwrap_or(fallback_id);
    let fail = |e: InvalidDefinition| (id.clone(), e);
    refuse_expressions(value).map_err(|r| fail(InvalidDefinition::new("route", r)))?;
    let mut route = RouteDefinition {
        id: id.clone(),
        uri: String::new(),
        order: 0,
        predicates: Vec::new(),
        filters: Vec::new(),
        metadata: Map::new(),
        enabled: true,
    };
    for (key, value) in map {
        match canonical(key).as_str() {
            "id" => {}
            "uri" => {
                route.uri = scalar_text(value)
                    .ok_or_else(|| fail(InvalidDefinition::new("uri", "must be text")))?;
            }
            "order" => {
                route.order = value
                    .as_i64()
                    .or_else(|| value.as_str().and_then(|s| s.trim().parse().ok()))
                    .and_then(|n| i32::try_from(n).ok())
                    .ok_or_else(|| {
                        fail(InvalidDefinition::new(
                            "order",
                            format!("`{value}` is not a whole number"),
                        ))
                    })?;
            }
            "predicates" => route.predicates = definitions(value, "predicate").map_err(fail)?,
            "filters" => route.filters = definitions(value, "filter").map_err(fail)?,
            "metadata" => match value {
                Value::Object(m) => route.metadata = m.clone(),
                Value::Null => {}
                _ => return Err(fail(InvalidDefinition::new("metadata", "must be a map"))),
            },
            "enabled" => {
                route.enabled = match value {
                    Value::Bool(b) => *b,
                    Value::String(s) if s.trim().eq_ignore_ascii_case("true") => true,
                    Value::String(s) if s.trim().eq_ignore_ascii_case("false") => false,
                    _ => {
                        return Err(fail(InvalidDefinition::new(
                            "enabled",
                            format!("`{value}` is not true or false"),
                        )));
                    }
                };
            }
            _ => {
                return Err(fail(InvalidDefinition::new(
                    "route",
                    format!(
                        "unknown key `{key}` (expected id, uri, order, predicates, filters, metadata, enabled)"
                    ),
                )));
            }
        }
    }
    if route.uri.is_empty() {
        return Err(fail(InvalidDefinition::new("uri", "is required")));
    }
    Ok(route)
}

/// A `predicates:` or `filters:` list (also `default-filters:`).
pub fn definitions(value: &Value, kind: &str) -> Result<Vec<Definition>, InvalidDefinition> {
    match value {
        Value::Null => Ok(Vec::new()),
        Value::Array(items) => items.iter().map(|v| Definition::parse(v, kind)).collect(),
        Value::String(_) | Value::Object(_) => Ok(vec![Definition::parse(value, kind)?]),
        other => Err(InvalidDefinition::new(
            kind,
            format!("expected a list, found {other}"),
        )),
    }
}

/// The values of a map whose keys the settings loader nested at their
/// dots, as `(dotted path, value)`: nested maps are descended into unless
/// `is_value` says a map is a value itself; Spring's `[...]` around a path
/// (`'[/v1.0/**]'`, `"[realm_access.roles]"`) is removed.
pub(crate) fn dotted_paths<'v>(
    map: &'v Map<String, Value>,
    is_value: &dyn Fn(&Map<String, Value>) -> bool,
) -> Vec<(String, &'v Value)> {
    fn walk<'v>(
        prefix: &str,
        map: &'v Map<String, Value>,
        is_value: &dyn Fn(&Map<String, Value>) -> bool,
        out: &mut Vec<(String, &'v Value)>,
    ) {
        for (key, value) in map {
            let path = if prefix.is_empty() {
                key.clone()
            } else {
                format!("{prefix}.{key}")
            };
            match value {
                Value::Object(inner) if !is_value(inner) => walk(&path, inner, is_value, out),
                _ => {
                    let clean = path
                        .strip_prefix('[')
                        .and_then(|p| p.strip_suffix(']'))
                        .map_or_else(|| path.clone(), str::to_owned);
                    out.push((clean, value));
                }
            }
        }
    }
    let mut out = Vec::new();
    walk("", map, is_value, &mut out);
    out
}

#[cfg(test)]
mod tests;
