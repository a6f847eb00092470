//! Route filters: SCG's gateway filter factories, compiled once.
//!
//! # Order
//! A route's filters are its `default-filters` followed by its own
//! `filters`, each list in declaration order. For a request:
//! 0. `JwtAuth` checks the bearer token first, wherever it is declared
//!    (401/403 end the request; no response filter applies to them);
//! 1. the request filters run in that order ([`Filter::apply_request`]);
//!    one that answers by itself (`RedirectTo`, `RequestSize` 413,
//!    `RequestHeaderSize` 431, `RequestRateLimiter` 429) ends the request
//!    there, and the response filters declared before it still apply;
//! 2. the exchange with the upstream: `LocalResponseCache` ([`cache`])
//!    around `CircuitBreaker` around `Retry` around each attempt, wherever
//!    they are declared (one breaker outcome per client request, after its
//!    retries); the upstream is the route's `uri`, or the one the last
//!    `SetRequestUri` or `RequestHeaderToRequestUri` chose
//!    ([`Outbound::uri`]);
//! 3. the response filters run in reverse order ([`Filter::apply_response`])
//!    on the upstream's (or the fallback's) response, then
//!    `RemoveJsonAttributesResponseBody` on its body ([`json_body`]). The
//!    gateway's own error answers (404, 502, 503, 504) are not filtered.
//!
//! Values of `AddRequestHeader`, `SetRequestHeader`, `AddResponseHeader`,
//! `SetResponseHeader`, `SetPath`, `SetRequestHostHeader` and
//! `SetRequestUri` may name the
//! `{captures}` of the route's `Path` and `Host` patterns. A path capture
//! is the decoded segment, as in SCG (`%20` is a space, `;params` are
//! cut): written into a header as ISO-8859-1, as Netty writes it; into
//! `SetPath` encoded again as a path's characters. A request whose
//! capture makes a value a request header cannot carry (a decoded control
//! character) is refused with 400.

pub mod cache;
pub mod json_body;
pub mod ratelimit;
pub mod retry;

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::response::IntoResponse;
use circuit_breaker::CircuitBreaker;
use cloud_runtime::clock::SharedClock;
use cloud_runtime::error_body::SpringError;
use http::header::{HeaderName, HeaderValue};
use http::{HeaderMap, Method, StatusCode};
use regex::Regex;

use crate::config::{Definition, InvalidDefinition, Shortcut};
use crate::predicate::{percent_encode, query_params};
use crate::target::RequestUri;
use json_body::JsonAttributes;
use ratelimit::RateLimiter;
use retry::RetryPolicy;

/// The argument names of `Retry`.
pub(crate) const RETRY_FIELDS: &[&str] = &[
    "retries",
    "statuses",
    "methods",
    "series",
    "exceptions",
    "backoff.firstbackoff",
    "backoff.maxbackoff",
    "backoff.factor",
    "backoff.basedonpreviousvalue",
];

/// Every filter name a route may use, in the order errors and the admin
/// API list them.
pub const FILTER_NAMES: [&str; 35] = [
    "AddRequestHeader",
    "AddRequestHeadersIfNotPresent",
    "AddRequestParameter",
    "AddResponseHeader",
    "CacheRequestBody",
    "CircuitBreaker",
    "DedupeResponseHeader",
    "FallbackHeaders",
    "JwtAuth",
    "LocalResponseCache",
    "MapRequestHeader",
    "PrefixPath",
    "PreserveHostHeader",
    "RedirectTo",
    "RemoveJsonAttributesResponseBody",
    "RemoveRequestHeader",
    "RemoveRequestParameter",
    "RemoveResponseHeader",
    "RequestHeaderSize",
    "RequestHeaderToRequestUri",
    "RequestRateLimiter",
    "RequestSize",
    "Retry",
    "RewriteLocationResponseHeader",
    "RewritePath",
    "RewriteRequestParameter",
    "RewriteResponseHeader",
    "SecureHeaders",
    "SetPath",
    "SetRequestHeader",
    "SetRequestHostHeader",
    "SetRequestUri",
    "SetResponseHeader",
    "SetStatus",
    "StripPrefix",
];

/// The argument names of `RequestRateLimiter`.
pub(crate) const RATE_LIMITER_FIELDS: &[&str] = &[
    "redisratelimiter.replenishrate",
    "redisratelimiter.burstcapacity",
    "redisratelimiter.requestedtokens",
    "replenishrate",
    "burstcapacity",
    "requestedtokens",
    "keyresolver",
    "denyemptykey",
    "emptykeystatus",
];

/// SCG's `SecureHeaders` and their default values: the eight it sets
/// unless told otherwise, then the opt-in `Permissions-Policy`.
const SECURE_HEADERS: &[(&str, &str)] = &[
    ("x-xss-protection", "1 ; mode=block"),
    ("strict-transport-security", "max-age=631138519"),
    ("x-frame-options", "DENY"),
    ("x-content-type-options", "nosniff"),
    ("referrer-policy", "no-referrer"),
    (
        "content-security-policy",
        "default-src 'self' https:; font-src 'self' https: data:; img-src 'self' https: data:; object-src 'none'; script-src https:; style-src 'self' https: 'unsafe-inline'",
    ),
    ("x-download-options", "noopen"),
    ("x-permitted-cross-domain-policies", "none"),
    (
        "permissions-policy",
        "accelerometer=(), ambient-light-sensor=(), autoplay=(), battery=(), camera=(), cross-origin-isolated=(), display-capture=(), document-domain=(), encrypted-media=(), execution-while-not-rendered=(), execution-while-out-of-viewport=(), fullscreen=(), geolocation=(), gyroscope=(), keyboard-map=(), magnetometer=(), microphone=(), midi=(), navigation-override=(), payment=(), picture-in-picture=(), publickey-credentials-get=(), screen-wake-lock=(), sync-xhr=(), usb=(), web-share=(), xr-spatial-tracking=()",
    ),
];

/// How many of [`SECURE_HEADERS`] are set by default (all but
/// `Permissions-Policy`).
const SECURE_BY_DEFAULT: usize = 8;

/// The place of a `SecureHeaders` header in [`SECURE_HEADERS`], by its
/// name in any case.
pub fn secure_header_index(name: &str) -> Option<usize> {
    SECURE_HEADERS
        .iter()
        .position(|(n, _)| n.eq_ignore_ascii_case(name.trim()))
}

/// SCG's default value of the `SecureHeaders` header at `index` (see
/// [`secure_header_index`]); empty past the last.
pub fn secure_header_default(index: usize) -> &'static str {
    SECURE_HEADERS.get(index).map_or("", |(_, v)| v)
}

/// `SecureHeaders`' gateway-wide settings
/// (`spring.cloud.gateway.filter.secure-headers.*`): each header's value,
/// and the headers set by a `SecureHeaders` without arguments of its own.
#[derive(Debug, Clone)]
pub struct SecureHeaderDefaults {
    /// A value for each of [`SECURE_HEADERS`], in its order.
    values: Vec<HeaderValue>,
    /// Whether each is set by a route that gives no `disable`, `enable` or
    /// `permissions-policy`.
    set: Vec<bool>,
}

impl Default for SecureHeaderDefaults {
    fn default() -> Self {
        SecureHeaderDefaults {
            values: SECURE_HEADERS
                .iter()
                .map(|(_, v)| HeaderValue::from_static(v))
                .collect(),
            set: Self::chosen(&[], &[]),
        }
    }
}

impl SecureHeaderDefaults {
    /// SCG's values with those in `values` (by place: see
    /// [`secure_header_index`]) instead, and the headers `enable`d and
    /// `disable`d (places too).
    pub fn new(
        values: impl IntoIterator<Item = (usize, HeaderValue)>,
        enable: &[usize],
        disable: &[usize],
    ) -> Self {
        let mut defaults = SecureHeaderDefaults::default();
        for (place, value) in values {
            if let Some(slot) = defaults.values.get_mut(place) {
                *slot = value;
            }
        }
        defaults.set = Self::chosen(enable, disable);
        defaults
    }

    /// SCG's choice: the eight default headers and those enabled, less
    /// those disabled.
    fn chosen(enable: &[usize], disable: &[usize]) -> Vec<bool> {
        (0..SECURE_HEADERS.len())
            .map(|i| (i < SECURE_BY_DEFAULT || enable.contains(&i)) && !disable.contains(&i))
            .collect()
    }
}

/// Gateway-wide settings that some filters read.
#[derive(Debug, Clone)]
pub struct FilterSettings {
    /// `spring.cloud.gateway.set-status.original-status-header-name`: the
    /// header `SetStatus` puts the upstream's status in (none by default).
    pub original_status_header: Option<HeaderName>,
    /// The resilience policies (`resilience4j.*`) for `CircuitBreaker`.
    pub resilience: circuit_breaker::Registry,
    /// The clock of rate limiters.
    pub clock: SharedClock,
    /// Where `RequestRateLimiter` keeps its buckets when not in memory
    /// (`spring.data.redis.*`).
    pub redis: Option<ratelimit::redis::RedisBuckets>,
    /// `LocalResponseCache`'s defaults
    /// (`spring.cloud.gateway.filter.local-response-cache.*`).
    pub response_cache: cache::CachePolicy,
    /// `RequestRateLimiter`'s defaults (`redis-rate-limiter.*`,
    /// `filter.request-rate-limiter.*`).
    pub rate_limiter: ratelimit::LimiterDefaults,
    /// `spring.codec.max-in-memory-size`: the largest body a filter that
    /// reads whole bodies (`RemoveJsonAttributesResponseBody`) buffers.
    pub max_in_memory_size: usize,
    /// `SecureHeaders`' defaults (`filter.secure-headers.*`).
    pub secure_headers: SecureHeaderDefaults,
}

/// Spring's default `spring.codec.max-in-memory-size` (256 KiB).
pub const DEFAULT_MAX_IN_MEMORY_SIZE: usize = 256 * 1024;

/// What `CircuitBreaker` does around the exchange.
#[derive(Debug, Clone)]
pub struct BreakerFilter {
    /// The breaker (shared by every route naming it).
    pub breaker: CircuitBreaker,
    /// The time limit of one exchange (the `timelimiter` instance of the
    /// same name).
    pub timeout: Duration,
    /// The `forward:` path to answer from when the call fails or is not
    /// permitted.
    pub fallback: Option<String>,
    /// Upstream statuses that count as failures.
    pub status_codes: Vec<StatusCode>,
}

/// `DedupeResponseHeader`'s strategies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dedupe {
    /// Keep the first value (the default).
    RetainFirst,
    /// Keep the last value.
    RetainLast,
    /// Keep each distinct value once, in order.
    RetainUnique,
}

/// `RewriteLocationResponseHeader`'s `stripVersionMode`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StripVersion {
    /// Never remove the version.
    Never,
    /// Remove it when the client's path had none (the default).
    AsInRequest,
    /// Always remove it.
    Always,
}

/// One compiled filter. See the [module docs](self) for when each runs.
#[derive(Debug, Clone)]
pub enum Filter {
    /// `AddRequestHeader`.
    AddRequestHeader(HeaderName, String),
    /// `AddRequestHeadersIfNotPresent`.
    AddRequestHeadersIfNotPresent(Vec<(HeaderName, String)>),
    /// `AddRequestParameter`.
    AddRequestParameter(String, String),
    /// `AddResponseHeader`.
    AddResponseHeader(HeaderName, String),
    /// `DedupeResponseHeader`.
    DedupeResponseHeader(Vec<HeaderName>, Dedupe),
    /// `MapRequestHeader`.
    MapRequestHeader(HeaderName, HeaderName),
    /// `PrefixPath`.
    PrefixPath(String),
    /// `PreserveHostHeader`.
    PreserveHostHeader,
    /// `RedirectTo`.
    RedirectTo(StatusCode, String, bool),
    /// `RemoveRequestHeader`.
    RemoveRequestHeader(HeaderName),
    /// `RemoveRequestParameter`.
    RemoveRequestParameter(String),
    /// `RewriteRequestParameter`: the parameter and its one new value.
    RewriteRequestParameter(String, String),
    /// `SetRequestUri`: the template of the URI the request goes to
    /// instead of the route's.
    SetRequestUri(String),
    /// `RequestHeaderToRequestUri`: the header whose URI the request goes
    /// to instead of the route's.
    RequestHeaderToRequestUri(HeaderName),
    /// `CacheRequestBody`: the request body is read whole (at most this
    /// many bytes, `spring.codec.max-in-memory-size`) before the exchange,
    /// and sent again by `Retry` whatever its size.
    CacheRequestBody(usize),
    /// `RemoveJsonAttributesResponseBody`: runs on the whole response body
    /// (the gateway buffers it; see [`json_body`]).
    RemoveJsonAttributesResponseBody(JsonAttributes),
    /// `RemoveResponseHeader`.
    RemoveResponseHeader(HeaderName),
    /// `RequestHeaderSize`: largest header (name and values) in bytes, and
    /// the header that explains a refusal.
    RequestHeaderSize(u64, HeaderName),
    /// `RequestSize`: largest `Content-Length`.
    RequestSize(u64),
    /// `RewriteLocationResponseHeader`.
    RewriteLocationResponseHeader {
        /// `stripVersionMode`.
        strip: StripVersion,
        /// `locationHeaderName`.
        header: HeaderName,
        /// `hostValue` (default: the client's `Host`).
        host: Option<String>,
        /// `protocolsRegex`.
        protocols: Regex,
    },
    /// `RewritePath`.
    RewritePath(Regex, String),
    /// `RewriteResponseHeader`.
    RewriteResponseHeader(HeaderName, Regex, String),
    /// `SecureHeaders`: the headers it sets when absent.
    SecureHeaders(Vec<(HeaderName, HeaderValue)>),
    /// `SetPath`.
    SetPath(String),
    /// `SetRequestHeader`.
    SetRequestHeader(HeaderName, String),
    /// `SetRequestHostHeader`.
    SetRequestHostHeader(String),
    /// `SetResponseHeader`.
    SetResponseHeader(HeaderName, String),
    /// `SetStatus`, and the header for the original status.
    SetStatus(StatusCode, Option<HeaderName>),
    /// `StripPrefix`.
    StripPrefix(usize),
    /// `CircuitBreaker`.
    CircuitBreaker(Box<BreakerFilter>),
    /// `FallbackHeaders`: the four header names.
    FallbackHeaders([HeaderName; 4]),
    /// `Retry`.
    Retry(Box<RetryPolicy>),
    /// `RequestRateLimiter`.
    RequestRateLimiter(Arc<RateLimiter>),
    /// `LocalResponseCache`: the route's own cache.
    LocalResponseCache(Arc<cache::ResponseCache>),
    /// `JwtAuth`: a valid bearer token with these scopes and roles is
    /// required. It runs before every other request filter, wherever it is
    /// declared (see [`crate::security`]).
    JwtAuth(Arc<crate::security::jwt::Requirement>),
}

/// The request on its way to the upstream, as the filters change it.
#[derive(Debug, Clone)]
pub struct Outbound {
    /// The method.
    pub method: Method,
    /// The path to send (percent-encoded).
    pub path: String,
    /// The query to send, without `?`.
    pub query: Option<String>,
    /// The headers to send (before hop-by-hop removal and forwarding
    /// headers).
    pub headers: HeaderMap,
    /// Captures of the route's `Path` and `Host` patterns.
    pub vars: Vec<(String, String)>,
    /// Send the client's `Host` instead of the upstream's.
    pub preserve_host: bool,
    /// Send this `Host`.
    pub host: Option<HeaderValue>,
    /// The client's address.
    pub remote: IpAddr,
    /// Headers to add to the response (`X-RateLimit-*`).
    pub response_headers: Vec<(HeaderName, HeaderValue)>,
    /// Why the request is being answered by a fallback, if it is.
    pub fallback: Option<FallbackCause>,
    /// Where the request goes instead of the route's `uri`, with the path
    /// and query it carries there (`SetRequestUri`,
    /// `RequestHeaderToRequestUri`).
    pub uri: Option<RequestUri>,
}

/// The failure that sent a request to its `CircuitBreaker` fallback.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FallbackCause {
    /// A Java-like exception type (`java.util.concurrent.TimeoutException`).
    pub exception_type: String,
    /// Its message.
    pub message: String,
}

/// What response filters may need besides the response.
#[derive(Debug, Clone, Copy)]
pub struct ResponseContext<'a> {
    /// The client's `Host` header.
    pub client_host: Option<&'a str>,
    /// The client's original path.
    pub client_path: &'a str,
    /// The upstream's `host:port`, when there was one.
    pub upstream_authority: Option<&'a str>,
    /// The route's captures.
    pub vars: &'a [(String, String)],
}

/// A filter's own answer, ending the request before the upstream.
pub type Answer = http::Response<axum::body::Body>;

impl Filter {
    /// Compiles a definition for `route_id`.
    pub fn compile(
        def: &Definition,
        route_id: &str,
        settings: &FilterSettings,
    ) -> Result<Filter, InvalidDefinition> {
        const K: &str = "filter";
        let in_order = |fields: &[&str]| def.bind(K, fields, Shortcut::InOrder);
        Ok(match def.name.as_str() {
            "AddRequestHeader" | "AddResponseHeader" | "SetRequestHeader" | "SetResponseHeader" => {
                let a = in_order(&["name", "value"])?;
                let name = header_name(&a, &a.str("name")?)?;
                let value = a.opt_str("value").unwrap_or_default();
                check_template_value(&a, &value)?;
                match def.name.as_str() {
                    "AddRequestHeader" => Filter::AddRequestHeader(name, value),
                    "AddResponseHeader" => Filter::AddResponseHeader(name, value),
                    "SetRequestHeader" => Filter::SetRequestHeader(name, value),
                    _ => Filter::SetResponseHeader(name, value),
                }
            }
            "AddRequestHeadersIfNotPresent" => {
                let a = def.bind(K, &["headers"], Shortcut::GatherList)?;
                let mut headers = Vec::new();
                for pair in a.list("headers") {
                    let (n, v) = pair
                        .split_once(':')
                        .ok_or_else(|| a.error(format!("`{pair}` is not `name:value`")))?;
                    check_template_value(&a, v)?;
                    headers.push((header_name(&a, n.trim())?, v.trim().to_owned()));
                }
                if headers.is_empty() {
                    return Err(a.error("at least one `name:value` is required"));
                }
                Filter::AddRequestHeadersIfNotPresent(headers)
            }
            "AddRequestParameter" => {
                let a = in_order(&["name", "value"])?;
                Filter::AddRequestParameter(a.str("name")?, a.opt_str("value").unwrap_or_default())
            }
            "DedupeResponseHeader" => {
                let a = in_order(&["name", "strategy"])?;
                let names = a
                    .str("name")?
                    .split_whitespace()
                    .map(|n| header_name(&a, n))
                    .collect::<Result<Vec<_>, _>>()?;
                let strategy =
                    match a
                        .opt_str("strategy")
                        .map(|s| s.to_ascii_uppercase())
                        .as_deref()
                    {
                        None | Some("RETAIN_FIRST") => Dedupe::RetainFirst,
                        Some("RETAIN_LAST") => Dedupe::RetainLast,
                        Some("RETAIN_UNIQUE") => Dedupe::RetainUnique,
                        Some(other) => return Err(a.error(format!(
                            "strategy `{other}` is not RETAIN_FIRST, RETAIN_LAST or RETAIN_UNIQUE"
                        ))),
                    };
                Filter::DedupeResponseHeader(names, strategy)
            }
            "MapRequestHeader" => {
                let a = in_order(&["fromheader", "toheader"])?;
                Filter::MapRequestHeader(
                    header_name(&a, &a.str("fromheader")?)?,
                    header_name(&a, &a.str("toheader")?)?,
                )
            }
            "PrefixPath" => {
                let a = in_order(&["prefix"])?;
                let prefix = a.str("prefix")?;
                if !prefix.starts_with('/') {
                    return Err(a.error("`prefix` must start with `/`"));
                }
                Filter::PrefixPath(prefix.trim_end_matches('/').to_owned())
            }
            "PreserveHostHeader" => {
                in_order(&[])?;
                Filter::PreserveHostHeader
            }
            "RedirectTo" => {
                let a = in_order(&["status", "url", "includerequestparams"])?;
                let s = a.str("status")?;
                let status = parse_status(&s)
                    .filter(StatusCode::is_redirection)
                    .ok_or_else(|| a.error(format!("`{s}` is not a 3xx status")))?;
                let url = a.str("url")?;
                HeaderValue::from_str(&url).map_err(|e| {
                    a.error(format!("`{url}` is not a valid Location"))
                        .with_source(e)
                })?;
                Filter::RedirectTo(status, url, a.flag("includerequestparams", false)?)
            }
            "RemoveRequestHeader" | "RemoveResponseHeader" => {
                let a = in_order(&["name"])?;
                let name = header_name(&a, &a.str("name")?)?;
                if def.name == "RemoveRequestHeader" {
                    Filter::RemoveRequestHeader(name)
                } else {
                    Filter::RemoveResponseHeader(name)
                }
            }
            "RemoveRequestParameter" => {
                let a = in_order(&["name"])?;
                Filter::RemoveRequestParameter(a.str("name")?)
            }
            "RewriteRequestParameter" => {
                let a = in_order(&["name", "replacement"])?;
                Filter::RewriteRequestParameter(a.str("name")?, a.str("replacement")?)
            }
            "SetRequestUri" => {
                let a = in_order(&["template"])?;
                let template = a.str("template")?;
                // Checked with every `{capture}` filled in.
                let sample = expand_all(&template, "x");
                if RequestUri::parse(&sample).is_none() {
                    return Err(a.error(format!(
                        "`{template}` is not an absolute http://, https:// or lb:// URI"
                    )));
                }
                Filter::SetRequestUri(template)
            }
            "CacheRequestBody" => {
                // SCG decodes the body as `bodyClass` for Java filters to
                // read; here it is kept as bytes whatever the class.
                in_order(&["bodyclass"])?.str("bodyclass")?;
                Filter::CacheRequestBody(settings.max_in_memory_size)
            }
            "RequestHeaderToRequestUri" => {
                let a = in_order(&["name"])?;
                Filter::RequestHeaderToRequestUri(header_name(&a, &a.str("name")?)?)
            }
            "RemoveJsonAttributesResponseBody" => {
                let a = def.bind(
                    K,
                    &["fieldlist", "deleterecursively"],
                    Shortcut::GatherListTailFlag,
                )?;
                let names: Vec<String> = a
                    .list("fieldlist")
                    .into_iter()
                    .map(|n| n.trim().to_owned())
                    .filter(|n| !n.is_empty())
                    .collect();
                if names.is_empty() {
                    return Err(a.error("at least one attribute name is required"));
                }
                Filter::RemoveJsonAttributesResponseBody(JsonAttributes::new(
                    names,
                    a.flag("deleterecursively", false)?,
                    settings.max_in_memory_size,
                ))
            }
            "RequestHeaderSize" => {
                let a = in_order(&["maxsize", "errorheadername"])?;
                let max = data_size(&a, &a.str("maxsize")?)?;
                let header = header_name(
                    &a,
                    &a.opt_str("errorheadername")
                        .unwrap_or_else(|| "errorMessage".to_owned()),
                )?;
                Filter::RequestHeaderSize(max, header)
            }
            "RequestSize" => {
                let a = in_order(&["maxsize"])?;
                let max = match a.opt_str("maxsize") {
                    Some(s) => data_size(&a, &s)?,
                    None => 5 * 1024 * 1024,
                };
                Filter::RequestSize(max)
            }
            "RewriteLocationResponseHeader" => {
                let a = in_order(&[
                    "stripversionmode",
                    "locationheadername",
                    "hostvalue",
                    "protocolsregex",
                ])?;
                let strip = match a.opt_str("stripversionmode").map(|s| s.to_ascii_uppercase()).as_deref() {
                    None | Some("AS_IN_REQUEST") => StripVersion::AsInRequest,
                    Some("NEVER_STRIP") => StripVersion::Never,
                    Some("ALWAYS_STRIP") => StripVersion::Always,
                    Some(other) => return Err(a.error(format!("stripVersionMode `{other}` is not NEVER_STRIP, AS_IN_REQUEST or ALWAYS_STRIP"))),
                };
                let header = header_name(
                    &a,
                    &a.opt_str("locationheadername")
                        .unwrap_or_else(|| "Location".to_owned()),
                )?;
                let protocols = a
                    .opt_str("protocolsregex")
                    .unwrap_or_else(|| "https?|ftps?".to_owned());
                let protocols = crate::config::whole_match(&protocols)
                    .map_err(|e| a.error("bad `protocolsRegex`").with_source(e))?;
                Filter::RewriteLocationResponseHeader {
                    strip,
                    header,
                    host: a.opt_str("hostvalue"),
                    protocols,
                }
            }
            "RewritePath" => {
                let a = in_order(&["regexp", "replacement"])?;
                let (re, replacement) = rewrite(&a)?;
                Filter::RewritePath(re, replacement)
            }
            "RewriteResponseHeader" => {
                let a = in_order(&["name", "regexp", "replacement"])?;
                let name = header_name(&a, &a.str("name")?)?;
                let (re, replacement) = rewrite(&a)?;
                Filter::RewriteResponseHeader(name, re, replacement)
            }
            "SecureHeaders" => {
                let a = def.bind(
                    K,
                    &["disable", "enable", "permissionspolicy"],
                    Shortcut::GatherList,
                )?;
                let places = |field: &str| -> Result<Vec<usize>, InvalidDefinition> {
                    a.list(field)
                        .iter()
                        .map(|name| {
                            secure_header_index(name).ok_or_else(|| {
                                a.error(format!("`{name}` is not one of SecureHeaders' headers"))
                            })
                        })
                        .collect()
                };
                let defaults = &settings.secure_headers;
                // As in SCG: a route that gives any argument chooses its
                // headers alone (the eight, its `enable`, less its
                // `disable`); one that gives none takes the global choice.
                let own = ["disable", "enable", "permissionspolicy"]
                    .iter()
                    .any(|f| a.given(f));
                let set = match own {
                    true => SecureHeaderDefaults::chosen(&places("enable")?, &places("disable")?),
                    false => defaults.set.clone(),
                };
                let mut values = defaults.values.clone();
                if let Some(policy) = a.opt_str("permissionspolicy") {
                    let value = HeaderValue::from_str(&policy)
                        .map_err(|_| a.error(format!("`{policy}` is not a header value")))?;
                    if let Some(slot) = values.get_mut(SECURE_BY_DEFAULT) {
                        *slot = value;
                    }
                }
                Filter::SecureHeaders(
                    SECURE_HEADERS
                        .iter()
                        .zip(values)
                        .zip(set)
                        .filter(|(_, set)| *set)
                        .map(|(((name, _), value), _)| (HeaderName::from_static(name), value))
                        .collect(),
                )
            }
            "SetPath" => {
                let a = in_order(&["template"])?;
                let t = a.str("template")?;
                if !t.starts_with('/') {
                    return Err(a.error("`template` must start with `/`"));
                }
                Filter::SetPath(t)
            }
            "SetRequestHostHeader" => {
                let a = in_order(&["host"])?;
                let host = a.str("host")?;
                check_template_value(&a, &host)?;
                Filter::SetRequestHostHeader(host)
            }
            "SetStatus" => {
                let a = in_order(&["status"])?;
                let s = a.str("status")?;
                let status = parse_status(&s)
                    .ok_or_else(|| a.error(format!("`{s}` is not an HTTP status")))?;
                Filter::SetStatus(status, settings.original_status_header.clone())
            }
            "StripPrefix" => {
                let a = in_order(&["parts"])?;
                Filter::StripPrefix(a.parse_or("parts", 1usize)?)
            }
            "CircuitBreaker" => {
                let a = in_order(&[
                    "name",
                    "fallbackuri",
                    "statuscodes",
                    "resumewithouterror",
                    "routeid",
                ])?;
                let name = a.opt_str("name").unwrap_or_else(|| route_id.to_owned());
                let breaker = settings
                    .resilience
                    .circuit_breaker(&name)
                    .map_err(|e| a.error(format!("breaker `{name}`")).with_source(e))?;
                let timeout = settings
                    .resilience
                    .time_limiter(&name)
                    .map_err(|e| a.error(format!("time limiter `{name}`")).with_source(e))?
                    .timeout();
                let fallback = match a.opt_str("fallbackuri") {
                    None => None,
                    Some(uri) => Some(
                        uri.strip_prefix("forward:")
                            .filter(|p| p.starts_with('/'))
                            .ok_or_else(|| {
                                a.error(format!("fallbackUri `{uri}` must be `forward:/path`"))
                            })?
                            .to_owned(),
                    ),
                };
                let status_codes = a
                    .list("statuscodes")
                    .iter()
                    .map(|s| {
                        parse_status(s)
                            .ok_or_else(|| a.error(format!("`{s}` is not an HTTP status")))
                    })
                    .collect::<Result<Vec<_>, _>>()?;
                a.flag("resumewithouterror", false)?;
                Filter::CircuitBreaker(Box::new(BreakerFilter {
                    breaker,
                    timeout,
                    fallback,
                    status_codes,
                }))
            }
            "FallbackHeaders" => {
                let fields = [
                    "executionexceptiontypeheadername",
                    "executionexceptionmessageheadername",
                    "rootcauseexceptiontypeheadername",
                    "rootcauseexceptionmessageheadername",
                ];
                let defaults = [
                    "Execution-Exception-Type",
                    "Execution-Exception-Message",
                    "Root-Cause-Exception-Type",
                    "Root-Cause-Exception-Message",
                ];
                let a = in_order(&fields)?;
                let mut names = Vec::new();
                for (field, default) in fields.iter().zip(defaults) {
                    names.push(header_name(
                        &a,
                        &a.opt_str(field).unwrap_or_else(|| default.to_owned()),
                    )?);
                }
                let names: [HeaderName; 4] =
                    names.try_into().map_err(|_| a.error("four header names"))?;
                Filter::FallbackHeaders(names)
            }
            "Retry" => Filter::Retry(Box::new(RetryPolicy::compile(&in_order(RETRY_FIELDS)?)?)),
            "RequestRateLimiter" => {
                let a = in_order(RATE_LIMITER_FIELDS)?;
                let limiter =
                    RateLimiter::compile(&a, Arc::clone(&settings.clock), &settings.rate_limiter)?;
                Filter::RequestRateLimiter(Arc::new(match &settings.redis {
                    Some(redis) => limiter.with_redis(route_id, redis.clone()),
                    None => limiter,
                }))
            }
            "LocalResponseCache" => {
                let a = in_order(&["timetolive", "size"])?;
                let mut policy = settings.response_cache;
                if let Some(t) = a.opt_str("timetolive") {
                    policy.time_to_live = cloud_runtime::duration::parse(&t).map_err(|e| {
                        a.error(format!("`{t}` is not a duration such as 30m"))
                            .with_source(e)
                    })?;
                }
                if let Some(size) = a.opt_str("size") {
                    policy.size = data_size(&a, &size)?;
                }
                Filter::LocalResponseCache(Arc::new(cache::ResponseCache::new(
                    policy,
                    Arc::clone(&settings.clock),
                )))
            }
            "JwtAuth" => Filter::JwtAuth(Arc::new(crate::security::jwt::Requirement::compile(
                &in_order(crate::security::jwt::JWT_AUTH_FIELDS)?,
            )?)),
            other => {
                return Err(InvalidDefinition::new(
                    format!("{K} {other}"),
                    format!("unknown filter (known: {})", FILTER_NAMES.join(", ")),
                ));
            }
        })
    }

    /// Changes the outbound request, or answers it, waiting for the filters
    /// that call out (`RequestRateLimiter` through Redis); the others run
    /// as [`Filter::apply_request`].
    pub async fn apply(&self, out: &mut Outbound) -> Result<(), Box<Answer>> {
        match self {
            Filter::RequestRateLimiter(limiter) => limiter.apply(out).await,
            other => other.apply_request(out),
        }
    }

    /// Changes the outbound request, or answers it, without waiting:
    /// `RequestRateLimiter` counts in memory here even when configured with
    /// Redis (the gateway runs [`Filter::apply`]).
    pub fn apply_request(&self, out: &mut Outbound) -> Result<(), Box<Answer>> {
        match self {
            Filter::AddRequestHeader(name, value) => {
                let v = request_header_value(name, value, &out.vars)?;
                out.headers.append(name.clone(), v);
            }
            Filter::AddRequestHeadersIfNotPresent(headers) => {
                for (name, value) in headers {
                    if !out.headers.contains_key(name) {
                        let v = request_header_value(name, value, &out.vars)?;
                        out.headers.insert(name.clone(), v);
                    }
                }
            }
            Filter::SetRequestHeader(name, value) => {
                let v = request_header_value(name, value, &out.vars)?;
                out.headers.insert(name.clone(), v);
            }
            Filter::AddRequestParameter(name, value) => {
                let pair = format!(
                    "{}={}",
                    percent_encode(name),
                    percent_encode(&expand(value, &out.vars))
                );
                out.query = Some(match out.query.take().filter(|q| !q.is_empty()) {
                    Some(q) => format!("{q}&{pair}"),
                    None => pair,
                });
            }
            Filter::RemoveRequestParameter(name) => {
                // As SCG: the query is parsed as Spring parses it and
                // written again, each name and value encoded.
                let mut params = query_params(out.query.as_deref());
                params.retain(|(n, _)| n != name);
                out.query = encoded_query(&params);
            }
            Filter::RewriteRequestParameter(name, replacement) => {
                // As SCG: every value of `name` goes, one `replacement` is
                // added last; the query is written again either way.
                let mut params = query_params(out.query.as_deref());
                if let Some(at) = params.iter().position(|(n, _)| n == name) {
                    params.remove(at);
                    params.push((name.clone(), vec![Some(replacement.clone())]));
                }
                out.query = encoded_query(&params);
            }
            Filter::SetRequestUri(template) => {
                // An invalid URI leaves the route's `uri` in place, as SCG.
                let uri = expand(template, &out.vars);
                match RequestUri::parse(&uri) {
                    Some(parsed) => out.uri = Some(parsed),
                    None => tracing::debug!(
                        uri,
                        "SetRequestUri: not a valid URI; the route's uri stays"
                    ),
                }
            }
            Filter::RequestHeaderToRequestUri(name) => {
                if let Some(value) = out.headers.get(name).and_then(|v| v.to_str().ok()) {
                    match RequestUri::parse(value) {
                        Some(parsed) => out.uri = Some(parsed),
                        None => tracing::debug!(
                            value,
                            "RequestHeaderToRequestUri: not a valid URI; the route's uri stays"
                        ),
                    }
                }
            }
            Filter::MapRequestHeader(from, to) => {
                let values: Vec<HeaderValue> = out.headers.get_all(from).iter().cloned().collect();
                for v in values {
                    out.headers.append(to.clone(), v);
                }
            }
            Filter::PrefixPath(prefix) => out.path = format!("{prefix}{}", out.path),
            Filter::PreserveHostHeader => out.preserve_host = true,
            Filter::RemoveRequestHeader(name) => {
                out.headers.remove(name);
            }
            Filter::RewritePath(re, replacement) => {
                let path = re.replace_all(&out.path, replacement.as_str()).into_owned();
                out.path = if path.is_empty() {
                    "/".to_owned()
                } else {
                    path
                };
            }
            Filter::SetPath(template) => out.path = expand_path(template, &out.vars),
            Filter::SetRequestHostHeader(host) => {
                out.host = Some(request_header_value(&http::header::HOST, host, &out.vars)?);
            }
            Filter::StripPrefix(parts) => out.path = strip_prefix(&out.path, *parts),
            Filter::RedirectTo(status, url, include_params) => {
                let mut location = url.clone();
                if *include_params && let Some(q) = out.query.as_deref().filter(|q| !q.is_empty()) {
                    location.push(if location.contains('?') { '&' } else { '?' });
                    location.push_str(q);
                }
                let mut answer = empty_answer(*status);
                if let Some(v) = header_value(&location) {
                    answer.headers_mut().insert(http::header::LOCATION, v);
                }
                return Err(Box::new(answer));
            }
            Filter::RequestHeaderSize(max, error_header) => {
                // As SCG: a header's size is its name once plus all its
                // values; the message names every header over the limit.
                let mut msg = String::new();
                for name in out.headers.keys() {
                    let size = name.as_str().len() as u64
                        + out
                            .headers
                            .get_all(name)
                            .iter()
                            .map(|v| v.len() as u64)
                            .sum::<u64>();
                    if size > *max {
                        if msg.is_empty() {
                            msg = format!(
                                "Request Header/s size is larger than permissible limit ({max}B)."
                            );
                        }
                        msg.push_str(&format!(" Request Header/s size for '{name}' is {size}B."));
                    }
                }
                if !msg.is_empty() {
                    let mut answer = empty_answer(StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE);
                    if let Some(v) = header_value(&msg) {
                        answer.headers_mut().insert(error_header.clone(), v);
                    }
                    return Err(Box::new(answer));
                }
            }
            Filter::RequestSize(max) => {
                let length = out
                    .headers
                    .get(http::header::CONTENT_LENGTH)
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| v.trim().parse::<u64>().ok());
                if let Some(length) = length.filter(|l| l > max) {
                    let mut answer = empty_answer(StatusCode::PAYLOAD_TOO_LARGE);
                    let msg = format!(
                        "Request size is larger than permissible limit. Request size is {} where permissible limit is {}",
                        readable_byte_count(length),
                        readable_byte_count(*max)
                    );
                    if let Some(v) = header_value(&msg) {
                        answer.headers_mut().insert("errormessage", v);
                    }
                    return Err(Box::new(answer));
                }
            }
            Filter::RequestRateLimiter(limiter) => limiter.apply_in_memory(out)?,
            Filter::FallbackHeaders(names) => {
                if let Some(cause) = &out.fallback {
                    let values = [
                        &cause.exception_type,
                        &cause.message,
                        &cause.exception_type,
                        &cause.message,
                    ];
                    for (name, value) in names.iter().zip(values) {
                        if let Some(v) = header_value(value) {
                            out.headers.insert(name.clone(), v);
                        }
                    }
                }
            }
            _ => {}
        }
        Ok(())
    }

    /// Whether this filter reads the upstream's `host:port` (the
    /// response carries it only for routes with such a filter).
    pub fn reads_upstream_authority(&self) -> bool {
        matches!(self, Filter::RewriteLocationResponseHeader { .. })
    }

    /// Whether this filter changes responses (and so runs on the way back).
    pub fn is_response_filter(&self) -> bool {
        matches!(
            self,
            Filter::AddResponseHeader(..)
                | Filter::SetResponseHeader(..)
                | Filter::RemoveResponseHeader(_)
                | Filter::DedupeResponseHeader(..)
                | Filter::RewriteResponseHeader(..)
                | Filter::RewriteLocationResponseHeader { .. }
                | Filter::SecureHeaders(_)
                | Filter::SetStatus(..)
        )
    }

    /// Changes the response on its way to the client.
    pub fn apply_response(&self, head: &mut http::response::Parts, ctx: &ResponseContext<'_>) {
        let headers = &mut head.headers;
        match self {
            Filter::AddResponseHeader(name, value) => {
                if let Some(v) = header_value(&expand(value, ctx.vars)) {
                    headers.append(name.clone(), v);
                }
            }
            Filter::SetResponseHeader(name, value) => {
                if let Some(v) = header_value(&expand(value, ctx.vars)) {
                    headers.insert(name.clone(), v);
                }
            }
            Filter::RemoveResponseHeader(name) => {
                headers.remove(name);
            }
            Filter::DedupeResponseHeader(names, strategy) => {
                for name in names {
                    let values: Vec<HeaderValue> = headers.get_all(name).iter().cloned().collect();
                    if values.len() < 2 {
                        continue;
                    }
                    let kept: Vec<HeaderValue> = match strategy {
                        Dedupe::RetainFirst => values.into_iter().take(1).collect(),
                        Dedupe::RetainLast => values.into_iter().last().into_iter().collect(),
                        Dedupe::RetainUnique => {
                            let mut unique: Vec<HeaderValue> = Vec::new();
                            for v in values {
                                if !unique.contains(&v) {
                                    unique.push(v);
                                }
                            }
                            unique
                        }
                    };
                    headers.remove(name);
                    for v in kept {
                        headers.append(name.clone(), v);
                    }
                }
            }
            Filter::RewriteResponseHeader(name, re, replacement) => {
                let values: Vec<HeaderValue> = headers.get_all(name).iter().cloned().collect();
                if values.is_empty() {
                    return;
                }
                headers.remove(name);
                for v in values {
                    let rewritten = v
                        .to_str()
                        .ok()
                        .and_then(|s| header_value(&re.replace_all(s, replacement.as_str())));
                    headers.append(name.clone(), rewritten.unwrap_or(v));
                }
            }
            Filter::RewriteLocationResponseHeader {
                strip,
                header,
                host,
                protocols,
            } => {
                let Some(location) = headers.get(header).and_then(|v| v.to_str().ok()) else {
                    return;
                };
                let host = host.as_deref().or(ctx.client_host);
                let fixed = rewrite_location(
                    location,
                    *strip,
                    host,
                    ctx.upstream_authority,
                    ctx.client_path,
                    protocols,
                );
                if let Some(v) = header_value(&fixed) {
                    headers.insert(header.clone(), v);
                }
            }
            Filter::SecureHeaders(defaults) => {
                for (name, value) in defaults {
                    if !headers.contains_key(name) {
                        headers.insert(name.clone(), value.clone());
                    }
                }
            }
            Filter::SetStatus(status, original_header) => {
                if let Some(h) = original_header {
                    headers.insert(h.clone(), HeaderValue::from(head.status.as_u16()));
                }
                head.status = *status;
            }
            _ => {}
        }
    }
}

/// An answer without a body.
pub(crate) fn empty_answer(status: StatusCode) -> Answer {
    let mut answer = http::Response::new(axum::body::Body::empty());
    *answer.status_mut() = status;
    answer
}

fn header_name(a: &crate::config::Args, name: &str) -> Result<HeaderName, InvalidDefinition> {
    HeaderName::from_bytes(name.trim().as_bytes()).map_err(|e| {
        a.error(format!("`{name}` is not a header name"))
            .with_source(e)
    })
}

/// `value` as a header value; characters past ASCII are written as
/// ISO-8859-1 bytes, `?` when they have none, as Netty writes SCG's
/// header values (so JVM upstreams read them back as they were).
fn header_value(value: &str) -> Option<HeaderValue> {
    let made = match value.is_ascii() {
        true => HeaderValue::from_str(value),
        false => HeaderValue::from_bytes(
            &value
                .chars()
                .map(|c| u8::try_from(c).unwrap_or(b'?'))
                .collect::<Vec<u8>>(),
        ),
    };
    match made {
        Ok(v) => Some(v),
        Err(_) => {
            tracing::debug!(value, "filter value is not a valid header value; skipped");
            None
        }
    }
}

/// A request header's value from its template. The captures are decoded
/// path segments, so a client can put a control character in one
/// (`%0A`): that request is refused with 400 rather than sent without the
/// header (a `SetRequestHeader` skipped would let the client's own value
/// through). SCG fails it with 500.
fn request_header_value(
    name: &HeaderName,
    template: &str,
    vars: &[(String, String)],
) -> Result<HeaderValue, Box<Answer>> {
    header_value(&expand(template, vars)).ok_or_else(|| {
        let message = format!("the request's path makes a value that header {name} cannot carry");
        Box::new(SpringError::new(StatusCode::BAD_REQUEST, message).into_response())
    })
}

/// The query SCG writes back from [`query_params`]: each name and value
/// percent-encoded (all but unreserved characters), `name` alone for a
/// value without `=`; none when there is no parameter.
fn encoded_query(params: &[(String, Vec<Option<String>>)]) -> Option<String> {
    let mut query = String::new();
    for (name, values) in params {
        for value in values {
            if !query.is_empty() {
                query.push('&');
            }
            query.push_str(&percent_encode(name));
            if let Some(v) = value {
                query.push('=');
                query.push_str(&percent_encode(v));
            }
        }
    }
    (!query.is_empty()).then_some(query)
}

/// `template` with its captures (decoded values) percent-encoded as a
/// path's characters, as SCG's `UriTemplate` expands `SetPath`: `a b`
/// becomes `a%20b`, `a/b` stays `a/b`.
fn expand_path(template: &str, vars: &[(String, String)]) -> String {
    if vars.iter().all(|(_, v)| v.bytes().all(is_path_char)) {
        return expand(template, vars);
    }
    let encoded: Vec<(String, String)> = vars
        .iter()
        .map(|(n, v)| {
            let mut e = String::with_capacity(v.len());
            for b in v.bytes() {
                match is_path_char(b) {
                    true => e.push(char::from(b)),
                    false => e.push_str(&format!("%{b:02X}")),
                }
            }
            (n.clone(), e)
        })
        .collect();
    expand(template, &encoded)
}

/// RFC 3986's `pchar` and `/`, the characters Spring leaves as they are
/// in a path.
fn is_path_char(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"-._~!$&'()*+,;=:@/".contains(&b)
}

/// A template value must be a valid header value once its captures are
/// filled in; without captures it is checked now.
fn check_template_value(a: &crate::config::Args, value: &str) -> Result<(), InvalidDefinition> {
    if value.contains('{') {
        return Ok(());
    }
    HeaderValue::from_str(value).map(|_| ()).map_err(|e| {
        a.error(format!("`{value}` is not a valid header value"))
            .with_source(e)
    })
}

/// The `regexp` (searched, not anchored) and `replacement` arguments of
/// the rewrite filters.
fn rewrite(a: &crate::config::Args) -> Result<(Regex, String), InvalidDefinition> {
    let re = a.str("regexp")?;
    let re = Regex::new(&re).map_err(|e| {
        a.error(format!("bad regular expression `{re}`"))
            .with_source(e)
    })?;
    let replacement = unescape_replacement(&a.opt_str("replacement").unwrap_or_default());
    Ok((re, replacement))
}

/// SCG writes `$\{name}` in YAML (to escape Spring's placeholders); the
/// regex replacement is `${name}`.
fn unescape_replacement(text: &str) -> String {
    text.replace("$\\", "$")
}

/// `template` with each `{name}` replaced by its capture (unknown names are
/// kept as written).
pub(crate) fn expand(template: &str, vars: &[(String, String)]) -> String {
    expand_with(template, |name| {
        vars.iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    })
}

/// `template` with every `{name}` replaced by `with`.
fn expand_all(template: &str, with: &str) -> String {
    expand_with(template, |_| Some(with))
}

/// `template` with each `{name}` replaced by `value(name)` (kept as
/// written when that is none).
fn expand_with<'v>(template: &str, value: impl Fn(&str) -> Option<&'v str>) -> String {
    if !template.contains('{') {
        return template.to_owned();
    }
    let mut out = String::with_capacity(template.len());
    let mut rest = template;
    while let Some(start) = rest.find('{') {
        out.push_str(&rest[..start]);
        let after = &rest[start + 1..];
        match after.find('}') {
            Some(end) => {
                let name = &after[..end];
                match value(name) {
                    Some(v) => out.push_str(v),
                    None => {
                        out.push('{');
                        out.push_str(name);
                        out.push('}');
                    }
                }
                rest = &after[end + 1..];
            }
            None => {
                out.push_str(&rest[start..]);
                rest = "";
            }
        }
    }
    out.push_str(rest);
    out
}

/// `path` without its first `parts` segments.
pub(crate) fn strip_prefix(path: &str, parts: usize) -> String {
    let mut out = String::with_capacity(path.len());
    // One pass over the bytes (`split('/')` searches for each `/` anew):
    // each non-empty segment after the first `parts` is written after a
    // `/`. Both ends of a segment are at a `/` or an end of the path,
    // which are character boundaries.
    let mut skipped = 0;
    let mut start = 0;
    for (i, b) in path.bytes().chain(std::iter::once(b'/')).enumerate() {
        if b != b'/' {
            continue;
        }
        if i > start {
            if skipped < parts {
                skipped += 1;
            } else if let Some(segment) = path.get(start..i) {
                out.push('/');
                out.push_str(segment);
            }
        }
        start = i + 1;
    }
    // `/` alone when nothing is left; a trailing `/` is kept.
    if out.is_empty() || path.ends_with('/') {
        out.push('/');
    }
    out
}

/// An HTTP status by number (`404`) or by Spring's name (`NOT_FOUND`).
pub(crate) fn parse_status(text: &str) -> Option<StatusCode> {
    let t = text.trim();
    if let Ok(n) = t.parse::<u16>() {
        return StatusCode::from_u16(n).ok();
    }
    let wanted = t.to_ascii_uppercase();
    // Spring's own names first (`I_AM_A_TEAPOT`), then `http`'s reasons.
    if let Some(n) = (100u16..600)
        .find(|n| crate::metrics::spring_status(*n).is_some_and(|(name, _)| name == wanted))
    {
        return StatusCode::from_u16(n).ok();
    }
    (100u16..600)
        .filter_map(|n| StatusCode::from_u16(n).ok())
        .find(|s| {
            s.canonical_reason()
                .map(|r| {
                    r.to_ascii_uppercase()
                        .replace([' ', '-'], "_")
                        .replace('\'', "")
                })
                .is_some_and(|r| r == wanted)
        })
}

/// A Spring `DataSize` argument in bytes.
fn data_size(a: &crate::config::Args, text: &str) -> Result<u64, InvalidDefinition> {
    parse_data_size(text).ok_or_else(|| a.error(format!("`{text}` is not a size such as 5MB")))
}

/// A Spring `DataSize` (`5MB`, `1000B`, `2KB`, plain bytes) in bytes; none
/// when malformed or too large.
pub(crate) fn parse_data_size(text: &str) -> Option<u64> {
    let t = text.trim().to_ascii_uppercase();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (number, unit) = t.split_at(split);
    let n: u64 = number.parse().ok()?;
    let factor: u64 = match unit.trim() {
        "" | "B" => 1,
        "KB" => 1024,
        "MB" => 1024 * 1024,
        "GB" => 1024 * 1024 * 1024,
        "TB" => 1024 * 1024 * 1024 * 1024,
        _ => return None,
    };
    n.checked_mul(factor)
}

/// SCG's `RewriteLocationResponseHeader`: replaces the upstream's
/// `host:port` with the client-facing host and strips `/v1`-style versions
/// per `strip`.
fn rewrite_location(
    location: &str,
    strip: StripVersion,
    host: Option<&str>,
    upstream: Option<&str>,
    client_path: &str,
    protocols: &Regex,
) -> String {
    let (scheme, rest) = match location.split_once("://") {
        Some((s, r)) if protocols.is_match(s) => (Some(s), r),
        _ => (None, location),
    };
    let (authority, path) = match scheme {
        Some(_) => match rest.find('/') {
            Some(i) => (Some(&rest[..i]), &rest[i..]),
            None => (Some(rest), ""),
        },
        None => (None, rest),
    };
    let authority = match (authority, upstream, host) {
        (Some(a), Some(up), Some(h)) if a.eq_ignore_ascii_case(up) => Some(h),
        (a, _, _) => a,
    };
    let client_has_version = version_prefix(client_path).is_some();
    let strip_now = match strip {
        StripVersion::Never => false,
        StripVersion::Always => true,
        StripVersion::AsInRequest => !client_has_version,
    };
    let path = match version_prefix(path) {
        Some(len) if strip_now => &path[len..],
        _ => path,
    };
    match (scheme, authority) {
        (Some(s), Some(a)) => format!("{s}://{a}{path}"),
        _ => path.to_owned(),
    }
}

/// A size as SCG's `RequestSize` message writes it: `34 B`, `5.2 MB`
/// (powers of 1000, one decimal).
fn readable_byte_count(bytes: u64) -> String {
    const PREFIXES: &[u8] = b"kMGTPE";
    if bytes < 1000 {
        return format!("{bytes} B");
    }
    let (mut exp, mut scale) = (0, 1.0_f64);
    while exp < PREFIXES.len() && bytes as f64 >= scale * 1000.0 {
        exp += 1;
        scale *= 1000.0;
    }
    format!(
        "{:.1} {}B",
        bytes as f64 / scale,
        char::from(PREFIXES[exp - 1])
    )
}

/// The length of a leading `/v<digits>` segment.
fn version_prefix(path: &str) -> Option<usize> {
    let rest = path.strip_prefix("/v")?;
    let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
    if digits == 0 {
        return None;
    }
    match rest.as_bytes().get(digits) {
        None | Some(b'/' | b'?') => Some(2 + digits),
        _ => None,
    }
}

#[cfg(test)]
mod tests;
