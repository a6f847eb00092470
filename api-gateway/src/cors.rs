//! CORS as Spring's `DefaultCorsProcessor` does it, without I/O: the
//! global configurations of `spring.cloud.gateway.globalcors` (by path
//! pattern) combined with a route's `metadata.cors`, preflight requests
//! answered by the gateway, actual requests given `Access-Control-Allow-*`
//! and `Vary`.
//!
//! Spring's rules, kept here:
//! - a request is a CORS request when it has an `Origin` that is not the
//!   gateway's own (scheme, host and port of `Host`); a preflight is an
//!   `OPTIONS` CORS request with `Access-Control-Request-Method`;
//! - whenever a configuration applies, the response varies on `Origin`,
//!   `Access-Control-Request-Method` and `Access-Control-Request-Headers`;
//! - the origin must be in `allowed-origins` (`*` for any, compared without
//!   case and trailing `/`) or match an `allowed-origin-patterns` entry
//!   (`https://*.example.com`, `http://localhost:[*]`,
//!   `https://a.example:[8080,8081]`); `*` cannot go with
//!   `allow-credentials: true`;
//! - the method must be in `allowed-methods` (default `GET`, `HEAD`; `*`
//!   for any); a preflight's requested headers must be in
//!   `allowed-headers` (`*` for any), of which those allowed are echoed;
//! - a refusal is 403; a preflight otherwise is answered 200 with
//!   `Access-Control-Allow-Origin`, `-Methods`, `-Headers`, `-Max-Age`,
//!   `-Credentials` and `-Expose-Headers`, an actual request gets
//!   `Access-Control-Allow-Origin`, `-Credentials` and `-Expose-Headers`.

use std::collections::HashMap;

use axum::body::Body;
use axum::response::IntoResponse;
use cloud_runtime::error_body::SpringError;
use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use http::{Method, Response, StatusCode};
use regex::Regex;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::config::{InvalidDefinition, canonical, dotted_paths};
use crate::predicate::pattern::Pattern;

const ALL: &str = "*";

/// `spring.cloud.gateway.globalcors.*` (also under `server.webflux`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "kebab-case")]
pub struct GlobalCors {
    /// `cors-configurations`: path pattern (Spring writes `'[/**]'`) to
    /// configuration. Default is none.
    pub cors_configurations: Value,
    /// `add-to-simple-url-handler-mapping`: accepted for SCG's files; the
    /// gateway always answers preflights of a configured path, whether a
    /// route matches or not.
    pub add_to_simple_url_handler_mapping: bool,
}

/// One CORS configuration (Spring's `CorsConfiguration`).
#[derive(Debug, Clone, Default)]
pub struct CorsConfig {
    /// `allowed-origins`.
    pub allowed_origins: Vec<String>,
    /// `allowed-origin-patterns`, as written.
    pub allowed_origin_patterns: Vec<String>,
    /// `allowed-methods`; empty means `GET`, `HEAD`.
    pub allowed_methods: Vec<String>,
    /// `allowed-headers`.
    pub allowed_headers: Vec<String>,
    /// `exposed-headers`.
    pub exposed_headers: Vec<String>,
    /// `allow-credentials`.
    pub allow_credentials: Option<bool>,
    /// `max-age` in seconds.
    pub max_age: Option<u64>,
    origin_patterns: Vec<Regex>,
}

impl CorsConfig {
    /// A configuration from YAML (keys relaxed: `allowedOrigins` and
    /// `allowed-origins` are the same; a list or comma-separated text).
    pub fn from_value(value: &Value) -> Result<CorsConfig, InvalidDefinition> {
        let Value::Object(map) = value else {
            return Err(InvalidDefinition::new("cors", "must be a map"));
        };
        let mut c = CorsConfig::default();
        for (key, v) in map {
            let what = || format!("cors {key}");
            match canonical(key).as_str() {
                "allowedorigins" => c.allowed_origins = list(v),
                "allowedoriginpatterns" => c.allowed_origin_patterns = list(v),
                "allowedmethods" => c.allowed_methods = list(v),
                "allowedheaders" => c.allowed_headers = list(v),
                "exposedheaders" => c.exposed_headers = list(v),
                "allowcredentials" => {
                    c.allow_credentials = Some(match v {
                        Value::Bool(b) => *b,
                        Value::String(s) if s.eq_ignore_ascii_case("true") => true,
                        Value::String(s) if s.eq_ignore_ascii_case("false") => false,
                        _ => return Err(InvalidDefinition::new(what(), "must be true or false")),
                    });
                }
                "maxage" => {
                    let secs = v
                        .as_u64()
                        .or_else(|| v.as_str().and_then(max_age_seconds))
                        .ok_or_else(|| {
                            InvalidDefinition::new(
                                what(),
                                format!("`{v}` is not a number of seconds"),
                            )
                        })?;
                    c.max_age = Some(secs);
                }
                _ => {
                    return Err(InvalidDefinition::new(
                        what(),
                        "unknown key (expected allowed-origins, allowed-origin-patterns, allowed-methods, allowed-headers, exposed-headers, allow-credentials, max-age)",
                    ));
                }
            }
        }
        c.validate()?;
        Ok(c)
    }

    /// Compiles the origin patterns and checks the combination Spring
    /// refuses (`allowed-origins: "*"` with credentials) and the values.
    fn validate(&mut self) -> Result<(), InvalidDefinition> {
        if self.allow_credentials == Some(true) && self.allowed_origins.iter().any(|o| o == ALL) {
            return Err(InvalidDefinition::new(
                "cors allowed-origins",
                "\"*\" cannot be used with allow-credentials: true (list the origins or use allowed-origin-patterns)",
            ));
        }
        for m in &self.allowed_methods {
            if m != ALL && Method::from_bytes(m.as_bytes()).is_err() {
                return Err(InvalidDefinition::new(
                    "cors allowed-methods",
                    format!("`{m}` is not a method"),
                ));
            }
        }
        for h in self.allowed_headers.iter().chain(&self.exposed_headers) {
            if h != ALL && HeaderName::from_bytes(h.as_bytes()).is_err() {
                return Err(InvalidDefinition::new(
                    "cors headers",
                    format!("`{h}` is not a header name"),
                ));
            }
        }
        self.origin_patterns = self
            .allowed_origin_patterns
            .iter()
            .map(|p| origin_pattern(p))
            .collect::<Result<_, _>>()?;
        Ok(())
    }

    /// Spring's `combine`: `other` (the route's) added to this (the
    /// global one); lists are joined (`*` wins), `allow-credentials` and
    /// `max-age` are the route's when it sets them.
    pub fn combine(&self, other: &CorsConfig) -> Result<CorsConfig, InvalidDefinition> {
        let join = |a: &[String], b: &[String]| -> Vec<String> {
            if a.iter().chain(b).any(|v| v == ALL) {
                return vec![ALL.to_owned()];
            }
            let mut out = a.to_vec();
            for v in b {
                if !out.contains(v) {
                    out.push(v.clone());
                }
            }
            out
        };
        let mut c = CorsConfig {
            allowed_origins: join(&self.allowed_origins, &other.allowed_origins),
            allowed_origin_patterns: join(
                &self.allowed_origin_patterns,
                &other.allowed_origin_patterns,
            ),
            allowed_methods: join(&self.allowed_methods, &other.allowed_methods),
            allowed_headers: join(&self.allowed_headers, &other.allowed_headers),
            exposed_headers: join(&self.exposed_headers, &other.exposed_headers),
            allow_credentials: other.allow_credentials.or(self.allow_credentials),
            max_age: other.max_age.or(self.max_age),
            origin_patterns: Vec::new(),
        };
        c.validate()?;
        Ok(c)
    }

    /// The `Access-Control-Allow-Origin` for `origin`, or `None` when it is
    /// not allowed.
    pub fn check_origin(&self, origin: &str) -> Option<String> {
        if origin.trim().is_empty() {
            return None;
        }
        let trimmed = origin.strip_suffix('/').unwrap_or(origin);
        if self.allowed_origins.iter().any(|o| o == ALL) {
            return Some(ALL.to_owned());
        }
        let listed = self.allowed_origins.iter().any(|o| {
            o.strip_suffix('/')
                .unwrap_or(o)
                .eq_ignore_ascii_case(trimmed)
        });
        let patterned = self.origin_patterns.iter().any(|p| p.is_match(trimmed));
        (listed || patterned).then(|| origin.to_owned())
    }

    /// The methods to allow when `method` is asked for, or `None` when it
    /// is not allowed.
    pub fn check_method(&self, method: &Method) -> Option<Vec<String>> {
        if self.allowed_methods.iter().any(|m| m == ALL) {
            return Some(vec![method.as_str().to_owned()]);
        }
        let allowed: Vec<String> = if self.allowed_methods.is_empty() {
            vec!["GET".to_owned(), "HEAD".to_owned()]
        } else {
            self.allowed_methods
                .iter()
                .map(|m| m.to_ascii_uppercase())
                .collect()
        };
        allowed
            .iter()
            .any(|m| m == method.as_str())
            .then_some(allowed)
    }

    /// The requested headers to allow, or `None` when none of them is.
    pub fn check_headers(&self, requested: &[&str]) -> Option<Vec<String>> {
        if requested.is_empty() {
            return Some(Vec::new());
        }
        if self.allowed_headers.is_empty() {
            return None;
        }
        let any = self.allowed_headers.iter().any(|h| h == ALL);
        let allowed: Vec<String> = requested
            .iter()
            .map(|h| h.trim())
            .filter(|h| !h.is_empty())
            .filter(|h| {
                any || self
                    .allowed_headers
                    .iter()
                    .any(|a| a.eq_ignore_ascii_case(h))
            })
            .map(str::to_owned)
            .collect();
        (!allowed.is_empty()).then_some(allowed)
    }
}

fn list(v: &Value) -> Vec<String> {
    // Commas inside `[...]` (an origin pattern's ports) do not split.
    let split = |s: &str| -> Vec<String> {
        let mut out = Vec::new();
        let (mut depth, mut start) = (0usize, 0);
        for (i, c) in s.char_indices() {
            match c {
                '[' => depth += 1,
                ']' => depth = depth.saturating_sub(1),
                ',' if depth == 0 => {
                    out.push(&s[start..i]);
                    start = i + 1;
                }
                _ => {}
            }
        }
        out.push(&s[start..]);
        out.into_iter()
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
            .collect()
    };
    match v {
        Value::String(s) => split(s),
        Value::Array(items) => items
            .iter()
            .filter_map(|i| match i {
                Value::String(s) => Some(split(s)),
                Value::Number(n) => Some(vec![n.to_string()]),
                _ => None,
            })
            .flatten()
            .collect(),
        _ => Vec::new(),
    }
}

/// `max-age` as seconds: a number, or a duration such as `30m`.
fn max_age_seconds(text: &str) -> Option<u64> {
    let t = text.trim();
    t.parse()
        .ok()
        .or_else(|| cloud_runtime::duration::parse(t).ok().map(|d| d.as_secs()))
}

/// Spring's `OriginPattern`: `*` matches anything, and a trailing
/// `:[*]` or `:[8080,8081]` lists the ports.
fn origin_pattern(pattern: &str) -> Result<Regex, InvalidDefinition> {
    let fail = |reason: &str| {
        InvalidDefinition::new(
            "cors allowed-origin-patterns",
            format!("`{pattern}`: {reason}"),
        )
    };
    let (body, ports) = match pattern.rsplit_once(":[") {
        Some((b, rest)) if rest.ends_with(']') => (b, Some(&rest[..rest.len() - 1])),
        _ => (pattern, None),
    };
    let mut re = String::from("(?i)^");
    re.push_str(
        &body
            .split('*')
            .map(regex::escape)
            .collect::<Vec<_>>()
            .join(".*"),
    );
    match ports {
        Some("*") => re.push_str("(:\\d+)?"),
        Some(list) => {
            let ports: Vec<&str> = list.split(',').map(str::trim).collect();
            if ports
                .iter()
                .any(|p| p.is_empty() || !p.bytes().all(|b| b.is_ascii_digit()))
            {
                return Err(fail("ports must be `[*]` or numbers such as `[8080,8081]`"));
            }
            re.push_str(&format!(":({})", ports.join("|")));
        }
        None => {}
    }
    re.push('$');
    Regex::new(&re).map_err(|e| fail("not a pattern").with_source(e))
}

/// The CORS configurations of a gateway: global ones by path pattern and
/// each route's own.
#[derive(Debug, Default)]
pub struct CorsTable {
    global: Vec<(Pattern, CorsConfig)>,
    routes: HashMap<String, CorsConfig>,
}

/// What CORS makes of a request.
#[derive(Debug)]
pub enum Outcome {
    /// The request goes on; these headers are added to its response (at
    /// least `Vary: Origin, Access-Control-Request-Method,
    /// Access-Control-Request-Headers`, which Spring adds to every routed
    /// response once any CORS configuration exists, even where none
    /// applies).
    Proceed(HeaderMap),
    /// The gateway answers with this status and these headers (a
    /// preflight: 200; a refusal: 403).
    Answer(StatusCode, HeaderMap),
}

impl CorsTable {
    /// The table from `globalcors.cors-configurations` (path pattern to
    /// configuration; Spring's `'[/**]'` brackets are removed) and the
    /// routes' `metadata.cors` as `(route id, value)`.
    ///
    /// An error names the key at fault.
    pub fn compile<'a>(
        global: impl IntoIterator<Item = &'a Value>,
        routes: impl IntoIterator<Item = (&'a str, &'a Value)>,
    ) -> Result<CorsTable, (String, InvalidDefinition)> {
        let mut table = CorsTable::default();
        for value in global {
            let map = match value {
                Value::Null => continue,
                Value::Object(map) => map,
                other => {
                    return Err((
                        "spring.cloud.gateway.globalcors.cors-configurations".to_owned(),
                        InvalidDefinition::new(
                            "cors-configurations",
                            format!("must be a map of path patterns, found {other}"),
                        ),
                    ));
                }
            };
            for (path, value) in dotted_paths(map, &is_configuration) {
                let fail = |e: InvalidDefinition| {
                    (
                        format!("spring.cloud.gateway.globalcors.cors-configurations.[{path}]"),
                        e,
                    )
                };
                let pattern = Pattern::path(&path, false).map_err(fail)?;
                table
                    .global
                    .push((pattern, CorsConfig::from_value(value).map_err(fail)?));
            }
        }
        for (id, value) in routes {
            let config = CorsConfig::from_value(value).map_err(|e| {
                (
                    format!("spring.cloud.gateway.routes[{id}].metadata.cors"),
                    e,
                )
            })?;
            table.routes.insert(id.to_owned(), config);
        }
        Ok(table)
    }

    /// Whether any configuration exists.
    pub fn is_empty(&self) -> bool {
        self.global.is_empty() && self.routes.is_empty()
    }

    /// The configuration for `path` on `route` (global first, then the
    /// route's combined into it).
    pub fn config_for(&self, path: &str, route: Option<&str>) -> Option<CorsConfig> {
        let mut vars = Vec::new();
        let global = self
            .global
            .iter()
            .find(|(p, _)| p.matches(path, &mut vars))
            .map(|(_, c)| c);
        let own = route.and_then(|r| self.routes.get(r));
        match (global, own) {
            (None, None) => None,
            (Some(g), None) => Some(g.clone()),
            (None, Some(o)) => Some(o.clone()),
            (Some(g), Some(o)) => match g.combine(o) {
                Ok(c) => Some(c),
                Err(e) => {
                    tracing::warn!(error = %e, "route CORS does not combine with the global one; using the route's");
                    Some(o.clone())
                }
            },
        }
    }
}

/// Whether a map is one CORS configuration (and not a level of a path
/// that the settings loader nested at its dots: `'[/v1.0/**]'` arrives as
/// `{"[/v1": {"0/**]": {...}}}`).
fn is_configuration(map: &Map<String, Value>) -> bool {
    const KEYS: &[&str] = &[
        "allowedorigins",
        "allowedoriginpatterns",
        "allowedmethods",
        "allowedheaders",
        "exposedheaders",
        "allowcredentials",
        "maxage",
    ];
    map.is_empty() || map.keys().all(|k| KEYS.contains(&canonical(k).as_str()))
}

/// The gateway's own CORS answer: a preflight's 200 with no body, or a
/// refusal's 403 with Spring's JSON error body (`Invalid CORS request`).
pub fn answer(status: StatusCode, headers: HeaderMap, path: &str) -> Response<Body> {
    let mut response = if status == StatusCode::OK {
        Response::new(Body::empty())
    } else {
        SpringError::new(status, "Invalid CORS request")
            .at(path)
            .into_response()
    };
    *response.status_mut() = status;
    response.headers_mut().extend(headers);
    response
}

/// Whether the request is a preflight: `OPTIONS` with `Origin` and
/// `Access-Control-Request-Method`.
pub fn preflight_method(method: &Method, headers: &HeaderMap) -> Option<Method> {
    if method != Method::OPTIONS || !headers.contains_key(header::ORIGIN) {
        return None;
    }
    let asked = headers.get(header::ACCESS_CONTROL_REQUEST_METHOD)?;
    Method::from_bytes(asked.as_bytes()).ok()
}

/// Applies `config` to a request as Spring's `DefaultCorsProcessor` does.
/// `secure` tells whether the client connection is TLS (for the
/// same-origin test).
pub fn process(
    config: Option<&CorsConfig>,
    method: &Method,
    headers: &HeaderMap,
    secure: bool,
) -> Outcome {
    let preflight = preflight_method(method, headers);
    let mut out = HeaderMap::new();
    for v in [
        "Origin",
        "Access-Control-Request-Method",
        "Access-Control-Request-Headers",
    ] {
        out.append(header::VARY, HeaderValue::from_static(v));
    }
    // No configuration for this path: a preflight goes on to the upstream
    // (which may answer CORS itself; Spring 6 refuses it with 403).
    let Some(config) = config else {
        return Outcome::Proceed(out);
    };
    let Some(origin) = headers.get(header::ORIGIN) else {
        return Outcome::Proceed(out);
    };
    let forbidden = |out: HeaderMap| Outcome::Answer(StatusCode::FORBIDDEN, out);
    let Ok(origin) = origin.to_str() else {
        return forbidden(out);
    };
    if same_origin(origin, headers.get(header::HOST), secure) {
        return Outcome::Proceed(out);
    }
    let Some(allow_origin) = config.check_origin(origin) else {
        tracing::debug!(origin, "CORS: origin not allowed");
        return forbidden(out);
    };
    let asked_method = preflight.as_ref().unwrap_or(method);
    let Some(allow_methods) = config.check_method(asked_method) else {
        tracing::debug!(method = %asked_method, "CORS: method not allowed");
        return forbidden(out);
    };
    let allow_headers = if preflight.is_some() {
        let requested: Vec<&str> = headers
            .get_all(header::ACCESS_CONTROL_REQUEST_HEADERS)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .map(str::trim)
            .filter(|h| !h.is_empty())
            .collect();
        match config.check_headers(&requested) {
            Some(h) => h,
            None => {
                tracing::debug!(?requested, "CORS: headers not allowed");
                return forbidden(out);
            }
        }
    } else {
        Vec::new()
    };
    let mut set = |name: HeaderName, value: &str| {
        if let Ok(v) = HeaderValue::from_str(value) {
            out.insert(name, v);
        }
    };
    set(header::ACCESS_CONTROL_ALLOW_ORIGIN, &allow_origin);
    if preflight.is_some() {
        set(
            header::ACCESS_CONTROL_ALLOW_METHODS,
            &allow_methods.join(","),
        );
        if !allow_headers.is_empty() {
            set(
                header::ACCESS_CONTROL_ALLOW_HEADERS,
                &allow_headers.join(", "),
            );
        }
    }
    if !config.exposed_headers.is_empty() {
        set(
            header::ACCESS_CONTROL_EXPOSE_HEADERS,
            &config.exposed_headers.join(", "),
        );
    }
    if config.allow_credentials == Some(true) {
        set(header::ACCESS_CONTROL_ALLOW_CREDENTIALS, "true");
    }
    if preflight.is_some() {
        if let Some(age) = config.max_age {
            set(header::ACCESS_CONTROL_MAX_AGE, &age.to_string());
        }
        return Outcome::Answer(StatusCode::OK, out);
    }
    Outcome::Proceed(out)
}

/// Whether `origin` is the gateway itself (scheme, host and port of the
/// request's `Host`). An origin that is not a URL (such as `null`) is not.
fn same_origin(origin: &str, host: Option<&HeaderValue>, secure: bool) -> bool {
    let Ok(uri) = origin.parse::<http::Uri>() else {
        return false;
    };
    let (Some(scheme), Some(authority)) = (uri.scheme_str(), uri.authority()) else {
        return false;
    };
    let Some(host) = host
        .and_then(|h| h.to_str().ok())
        .and_then(|h| h.parse::<http::uri::Authority>().ok())
    else {
        return false;
    };
    let port = |s: &str, p: Option<u16>| {
        p.unwrap_or(if s.eq_ignore_ascii_case("https") {
            443
        } else {
            80
        })
    };
    let request_scheme = if secure { "https" } else { "http" };
    scheme.eq_ignore_ascii_case(request_scheme)
        && authority.host().eq_ignore_ascii_case(host.host())
        && port(scheme, authority.port_u16()) == port(request_scheme, host.port_u16())
}

/// Adds CORS headers to a response: `Vary` values it lacks, the others
/// replacing the upstream's.
pub fn apply(response: &mut HeaderMap, cors: &HeaderMap) {
    for (name, value) in cors {
        if name == header::VARY {
            let wanted = value.to_str().unwrap_or("");
            let present = response.get_all(header::VARY).iter().any(|v| {
                v.to_str()
                    .is_ok_and(|s| s.split(',').any(|p| p.trim().eq_ignore_ascii_case(wanted)))
            });
            if !present {
                response.append(header::VARY, value.clone());
            }
        } else {
            response.insert(name.clone(), value.clone());
        }
    }
}

#[cfg(test)]
#[path = "cors/tests.rs"]
mod tests;
