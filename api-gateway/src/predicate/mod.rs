//! Route predicates: SCG's predicate factories, compiled once, tested
//! against a [`RequestView`] without any I/O.
//!
//! | Name | Arguments (SCG's names, shortcut order) |
//! |---|---|
//! | `Path` | `patterns`, `matchTrailingSlash` (default true; also `matchOptionalTrailingSeparator`) |
//! | `Host` | `patterns` |
//! | `Method` | `methods` |
//! | `Header` | `header`, `regexp` (optional: presence only) |
//! | `Query` | `param`, `regexp` (optional) |
//! | `Cookie` | `name`, `regexp` |
//! | `After` / `Before` | `datetime` |
//! | `Between` | `datetime1`, `datetime2` |
//! | `RemoteAddr` | `sources` |
//! | `XForwardedRemoteAddr` | `sources`, `maxTrustedIndex` (1: the last `X-Forwarded-For` entry; the peer without the header) |
//! | `Weight` | `group`, `weight` |
//!
//! `pattern` holds the path and host patterns, `time` the date-time
//! arguments, `cidr` the address ranges.

pub mod cidr;
pub mod pattern;
pub mod time;

use std::collections::HashMap;
use std::net::IpAddr;

use http::{HeaderMap, Method};
use regex::Regex;

use crate::config::{Definition, InvalidDefinition, Shortcut};
use cidr::Cidr;
use pattern::Pattern;

/// What predicates look at: the request as received, the time and a
/// random roll for weights, all given by the caller so that tests need no
/// sockets and no clock.
#[derive(Debug, Clone, Copy)]
pub struct RequestView<'a> {
    /// The method.
    pub method: &'a Method,
    /// The path as [`pattern::decoded_path`] gives it: decoded, without
    /// matrix parameters.
    pub path: &'a str,
    /// The query string without `?`.
    pub query: Option<&'a str>,
    /// The headers.
    pub headers: &'a HeaderMap,
    /// The peer's address.
    pub remote: IpAddr,
    /// Now, in epoch milliseconds.
    pub now_millis: i64,
    /// A number in `[0, 1)`, drawn once per request, that picks the route
    /// of each `Weight` group.
    pub weight_roll: f64,
}

/// The `{name}` captures of a route's `Path` and `Host` patterns, in
/// order.
pub type Captures = Vec<(String, String)>;

/// Every predicate name a route may use, in the order errors and the admin
/// API list them.
pub const PREDICATE_NAMES: [&str; 12] = [
    "After",
    "Before",
    "Between",
    "Cookie",
    "Header",
    "Host",
    "Method",
    "Path",
    "Query",
    "RemoteAddr",
    "Weight",
    "XForwardedRemoteAddr",
];

/// One compiled predicate.
#[derive(Debug, Clone)]
pub enum Predicate {
    /// `Path`.
    Path(Vec<Pattern>),
    /// `Host`.
    Host(Vec<Pattern>),
    /// `Method`.
    Method(Vec<Method>),
    /// `Header`.
    Header(http::HeaderName, Option<Regex>),
    /// `Query`.
    Query(String, Option<Regex>),
    /// `Cookie`.
    Cookie(String, Regex),
    /// `After`: now is after the instant.
    After(i64),
    /// `Before`: now is before the instant.
    Before(i64),
    /// `Between`: now is between the instants.
    Between(i64, i64),
    /// `RemoteAddr`.
    RemoteAddr(Vec<Cidr>),
    /// `XForwardedRemoteAddr`: the sources, and which `X-Forwarded-For`
    /// entry counts, from the right (1 is the last).
    XForwardedRemoteAddr(Vec<Cidr>, usize),
    /// `Weight`: this route is the one its group picked.
    Weight {
        /// The group.
        group: String,
        /// The route's weight in the group.
        weight: u32,
    },
}

/// The routes of every `Weight` group with their cumulative shares.
#[derive(Debug, Clone, Default)]
pub struct WeightGroups {
    groups: HashMap<String, Vec<(String, f64)>>,
}

impl WeightGroups {
    /// Adds `route` with `weight` to `group`.
    pub fn add(&mut self, group: &str, route: &str, weight: u32) {
        self.groups
            .entry(group.to_owned())
            .or_default()
            .push((route.to_owned(), f64::from(weight)));
    }

    /// Turns weights into cumulative shares; call once after the last
    /// [`add`](Self::add).
    pub fn seal(&mut self) {
        for routes in self.groups.values_mut() {
            let total: f64 = routes.iter().map(|(_, w)| w).sum();
            let mut acc = 0.0;
            for (_, w) in routes.iter_mut() {
                acc += if total > 0.0 { *w / total } else { 0.0 };
                *w = acc;
            }
        }
    }

    /// The route of `group` picked by `roll`.
    pub fn pick(&self, group: &str, roll: f64) -> Option<&str> {
        let routes = self.groups.get(group)?;
        routes
            .iter()
            .find(|(_, upto)| roll < *upto)
            .or(routes.last())
            .map(|(id, _)| id.as_str())
    }
}

impl Predicate {
    /// Compiles a definition.
    pub fn compile(def: &Definition) -> Result<Predicate, InvalidDefinition> {
        const KIND: &str = "predicate";
        match def.name.as_str() {
            "Path" => {
                let a = def.bind(
                    KIND,
                    &[
                        "patterns",
                        "matchtrailingslash",
                        "matchoptionaltrailingseparator",
                    ],
                    Shortcut::GatherListTailFlag,
                )?;
                // `matchOptionalTrailingSeparator` is the name before SCG 4.
                let trailing = a.flag(
                    "matchtrailingslash",
                    a.flag("matchoptionaltrailingseparator", true)?,
                )?;
                let patterns = a.list("patterns");
                if patterns.is_empty() {
                    return Err(a.error("at least one pattern is required"));
                }
                Ok(Predicate::Path(
                    patterns
                        .iter()
                        .map(|p| Pattern::path(p, trailing))
                        .collect::<Result<_, _>>()?,
                ))
            }
            "Host" => {
                let a = def.bind(KIND, &["patterns"], Shortcut::GatherList)?;
                let patterns = a.list("patterns");
                if patterns.is_empty() {
                    return Err(a.error("at least one pattern is required"));
                }
                Ok(Predicate::Host(
                    patterns
                        .iter()
                        .map(|p| Pattern::host(p))
                        .collect::<Result<_, _>>()?,
                ))
            }
            "Method" => {
                let a = def.bind(KIND, &["methods"], Shortcut::GatherList)?;
                let methods = a
                    .list("methods")
                    .iter()
                    .map(|m| {
                        Method::from_bytes(m.to_ascii_uppercase().as_bytes())
                            .map_err(|e| a.error(format!("`{m}` is not a method")).with_source(e))
                    })
                    .collect::<Result<Vec<_>, _>>()?;
                if methods.is_empty() {
                    return Err(a.error("at least one method is required"));
                }
                Ok(Predicate::Method(methods))
            }
            "Header" => {
                let a = def.bind(KIND, &["header", "regexp"], Shortcut::InOrder)?;
                let name = a.str("header")?;
                let header = http::HeaderName::from_bytes(name.as_bytes()).map_err(|e| {
                    a.error(format!("`{name}` is not a header name"))
                        .with_source(e)
                })?;
                Ok(Predicate::Header(header, a.regex("regexp")?))
            }
            "Query" => {
                let a = def.bind(KIND, &["param", "regexp"], Shortcut::InOrder)?;
                Ok(Predicate::Query(a.str("param")?, a.regex("regexp")?))
            }
            "Cookie" => {
                let a = def.bind(KIND, &["name", "regexp"], Shortcut::InOrder)?;
                let name = a.str("name")?;
                let re = a
                    .regex("regexp")?
                    .ok_or_else(|| a.error("argument `regexp` is required"))?;
                Ok(Predicate::Cookie(name, re))
            }
            "After" | "Before" => {
                let a = def.bind(KIND, &["datetime"], Shortcut::InOrder)?;
                let at = instant(&a, "datetime")?;
                Ok(if def.name == "After" {
                    Predicate::After(at)
                } else {
                    Predicate::Before(at)
                })
            }
            "Between" => {
                let a = def.bind(KIND, &["datetime1", "datetime2"], Shortcut::InOrder)?;
                let (from, to) = (instant(&a, "datetime1")?, instant(&a, "datetime2")?);
                if from >= to {
                    return Err(a.error("`datetime1` must be before `datetime2`"));
                }
                Ok(Predicate::Between(from, to))
            }
            "RemoteAddr" | "XForwardedRemoteAddr" => {
                let fields: &[&str] = if def.name == "RemoteAddr" {
                    &["sources"]
                } else {
                    &["sources", "maxtrustedindex"]
                };
                let a = def.bind(KIND, fields, Shortcut::GatherList)?;
                let sources = a
                    .list("sources")
                    .iter()
                    .map(|s| {
                        s.parse::<Cidr>()
                            .map_err(|e| a.error(e.to_string()).with_source(e))
                    })
                    .collect::<Result<Vec<_>, _>>()?;
                if sources.is_empty() {
                    return Err(a.error("at least one source is required"));
                }
                Ok(if def.name == "RemoteAddr" {
                    Predicate::RemoteAddr(sources)
                } else {
                    let index = a.parse_or("maxtrustedindex", 1usize)?;
                    if index == 0 {
                        return Err(a.error("`maxTrustedIndex` must be at least 1"));
                    }
                    Predicate::XForwardedRemoteAddr(sources, index)
                })
            }
            "Weight" => {
                let a = def.bind(KIND, &["group", "weight"], Shortcut::InOrder)?;
                Ok(Predicate::Weight {
                    group: a.str("group")?,
                    weight: a.parse("weight")?,
                })
            }
            other => Err(InvalidDefinition::new(
                format!("{KIND} {other}"),
                format!("unknown predicate (known: {})", PREDICATE_NAMES.join(", ")),
            )),
        }
    }

    /// Whether the request matches; path and host captures go into `vars`.
    pub fn test(
        &self,
        req: &RequestView<'_>,
        route_id: &str,
        weights: &WeightGroups,
        vars: &mut Vec<(String, String)>,
    ) -> bool {
        match self {
            Predicate::Path(patterns) => patterns.iter().any(|p| p.matches(req.path, vars)),
            Predicate::Host(patterns) => {
                let Some(host) = request_host(req.headers) else {
                    return false;
                };
                let host = host.to_ascii_lowercase();
                patterns.iter().any(|p| p.matches(&host, vars))
            }
            Predicate::Method(methods) => methods.contains(req.method),
            Predicate::Header(name, re) => {
                let mut values = req.headers.get_all(name).iter().peekable();
                match re {
                    None => values.peek().is_some(),
                    Some(re) => values.any(|v| v.to_str().is_ok_and(|v| re.is_match(v))),
                }
            }
            // As SCG: the parameter is present, or one of its values (`=`
            // given) matches.
            Predicate::Query(param, re) => query_params(req.query)
                .into_iter()
                .find(|(name, _)| name == param)
                .is_some_and(|(_, values)| match re {
                    None => true,
                    Some(re) => values.iter().flatten().any(|v| re.is_match(v)),
                }),
            Predicate::Cookie(name, re) => {
                cookies(req.headers).any(|(k, v)| k == name && re.is_match(v))
            }
            Predicate::After(at) => req.now_millis > *at,
            Predicate::Before(at) => req.now_millis < *at,
            Predicate::Between(from, to) => req.now_millis > *from && req.now_millis < *to,
            Predicate::RemoteAddr(sources) => sources.iter().any(|c| c.contains(req.remote)),
            Predicate::XForwardedRemoteAddr(sources, index) => {
                let addr = forwarded_for(req.headers, *index).unwrap_or(req.remote);
                sources.iter().any(|c| c.contains(addr))
            }
            Predicate::Weight { group, .. } => {
                weights.pick(group, req.weight_roll) == Some(route_id)
            }
        }
    }
}

fn instant(a: &crate::config::Args, field: &str) -> Result<i64, InvalidDefinition> {
    let text = a.str(field)?;
    time::parse_epoch_millis(&text)
        .map_err(|e| a.error(format!("argument `{field}`: {e}")).with_source(e))
}

/// The `Host` header without its port.
pub(crate) fn request_host(headers: &HeaderMap) -> Option<&str> {
    let host = headers.get(http::header::HOST)?.to_str().ok()?;
    Some(strip_port(host))
}

/// `host` without a `:port` (IPv6 literals keep their brackets).
pub(crate) fn strip_port(host: &str) -> &str {
    if host.starts_with('[') {
        return host.find(']').map_or(host, |i| &host[..=i]);
    }
    host.rsplit_once(':').map_or(host, |(h, _)| h)
}

/// The `index`-th address of `X-Forwarded-For` from the right (1 is the
/// one the nearest proxy added); the first when there are fewer. `None`
/// without the header or when that entry is not an address.
pub(crate) fn forwarded_for(headers: &HeaderMap, index: usize) -> Option<IpAddr> {
    let entries: Vec<&str> = headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .collect();
    let at = entries.len().saturating_sub(index);
    entries.get(at)?.parse().ok()
}

/// A query's parameters as Spring's `ServerHttpRequest.getQueryParams()`
/// gives them: `name[=value]` pairs found by `([^&=]+)(=?)([^&]+)?`, each
/// decoded as `URLDecoder` does (`+` is a space; a part that does not
/// decode is kept as written), values grouped under their name in the
/// order names first appear. A value is `None` without `=`, empty with it.
pub(crate) fn query_params(query: Option<&str>) -> Vec<(String, Vec<Option<String>>)> {
    let mut params: Vec<(String, Vec<Option<String>>)> = Vec::new();
    for pair in query.unwrap_or("").split('&') {
        // The name starts at the first character that is not `=`.
        let pair = pair.trim_start_matches('=');
        if pair.is_empty() {
            continue;
        }
        let (name, value) = match pair.split_once('=') {
            Some((n, v)) => (n, Some(form_decode(v))),
            None => (pair, None),
        };
        let name = form_decode(name);
        match params.iter_mut().find(|(n, _)| *n == name) {
            Some((_, values)) => values.push(value),
            None => params.push((name, vec![value])),
        }
    }
    params
}

/// `URLDecoder.decode(text, UTF_8)`, or `text` when it has a malformed
/// escape (as Spring keeps it).
fn form_decode(text: &str) -> String {
    if !text.contains(['%', '+']) {
        return text.to_owned();
    }
    match cloud_runtime::percent::form_decode(text) {
        Some(bytes) => String::from_utf8_lossy(&bytes).into_owned(),
        None => text.to_owned(),
    }
}

/// The `(name, value)` pairs of every `Cookie` header.
pub(crate) fn cookies(headers: &HeaderMap) -> impl Iterator<Item = (&str, &str)> {
    headers
        .get_all(http::header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|c| {
            let (k, v) = c.split_once('=')?;
            Some((k.trim(), v.trim().trim_matches('"')))
        })
}

/// Percent-decoding (invalid escapes are kept as written; invalid UTF-8
/// is replaced).
pub(crate) fn percent_decode(text: &str) -> String {
    percent_encoding::percent_decode_str(text)
        .decode_utf8_lossy()
        .into_owned()
}

/// Percent-encoding of a query component (unreserved characters kept).
pub(crate) fn percent_encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests;
