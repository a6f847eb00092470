//! Per-route request counts and latency, written as Prometheus text the way
//! SCG writes them (its `GatewayMetricsFilter` through Micrometer's
//! Prometheus registry), so that dashboards and alerts made for SCG read
//! ours unchanged:
//!
//! ```text
//! spring_cloud_gateway_requests_seconds_count{httpMethod="GET",httpStatusCode="200",outcome="SUCCESSFUL",routeId="api",routeUri="http://users:8080",status="OK"} 12
//! spring_cloud_gateway_requests_seconds_sum{...} 0.0131
//! spring_cloud_gateway_requests_seconds_max{...} 0.0042
//! spring_cloud_gateway_routes_count 3
//! ```
//!
//! `status` and `outcome` are Spring's `HttpStatus` name and series
//! (`CUSTOM` for both when Spring has no name for the code); the labels of
//! `spring.cloud.gateway.metrics.tags` are added to every series and
//! `spring.cloud.gateway.metrics.prefix` replaces `spring.cloud.gateway`
//! (see [`MetricsFormat`]). `_max` is the longest request of the last one to
//! two minutes (Micrometer's forgets after two), not of the process's life.
//!
//! Counters are kept per I/O worker ([`cloud_runtime::shard`]) and summed
//! when written.

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use cloud_runtime::prometheus::PrometheusText;
use cloud_runtime::shard::{self, CacheLine};
use http::Method;
use tokio::time::Instant;

/// How long a request stays in `_max`: at least one window, at most two.
const MAX_WINDOW_SECS: u64 = 60;

/// Distinct non-standard methods counted by name per route and worker;
/// others are counted as `OTHER`, so that made-up methods cannot grow the
/// series without bound.
const NAMED_EXTENSION_METHODS: usize = 8;

/// The counters.
#[derive(Debug)]
pub struct Metrics {
    /// Where `_max`'s windows are counted from.
    origin: Instant,
    /// Per thread (see [`cloud_runtime::shard`]): route id to its series,
    /// looked up by `&str`, so a request allocates only the first time its
    /// thread sees its route, method and status, and no two I/O workers
    /// write to the same counter.
    requests: Box<[CacheLine<Mutex<ByRoute>>]>,
    unmatched: AtomicU64,
    refused: AtomicU64,
    cors_answers: AtomicU64,
    reloads: AtomicU64,
    reload_failures: AtomicU64,
}

/// Route id to the series of each `uri` it had (a refresh can point an id
/// elsewhere; its earlier series keep their own `routeUri`). Route ids come
/// from the configuration, so a fast seeded hash is enough (SipHash showed
/// in the request path's profile).
type ByRoute = HashMap<Box<str>, Vec<UriSeries>, foldhash::fast::RandomState>;

#[derive(Debug)]
struct UriSeries {
    uri: Box<str>,
    /// Few per route (a status or two per method), so a scan beats a hash.
    answers: Vec<(u16, Method, Counter)>,
    extension_methods: usize,
}

#[derive(Debug, Default, Clone, Copy)]
struct Counter {
    count: u64,
    nanos: u64,
    max: WindowMax,
}

/// The longest time recorded in the current window and in the one before.
#[derive(Debug, Default, Clone, Copy)]
struct WindowMax {
    window: u64,
    current: u64,
    previous: u64,
}

impl WindowMax {
    fn record(&mut self, window: u64, nanos: u64) {
        if window != self.window {
            self.previous = if window == self.window + 1 {
                self.current
            } else {
                0
            };
            self.current = 0;
            self.window = window;
        }
        self.current = self.current.max(nanos);
    }

    /// The maximum as seen in `window`: the last two windows' records.
    fn at(&self, window: u64) -> u64 {
        if window == self.window {
            self.current.max(self.previous)
        } else if window == self.window + 1 {
            self.current
        } else {
            0
        }
    }
}

/// What one answered request is counted under.
#[derive(Debug, Clone, Copy)]
pub struct Answered<'a> {
    /// The route's `id`.
    pub route_id: &'a str,
    /// The route's `uri`, as written.
    pub route_uri: &'a str,
    /// The client's method.
    pub method: &'a Method,
    /// The status the client got.
    pub status: u16,
}

/// How the request families are named and labelled:
/// `spring.cloud.gateway.metrics.*` (or its `server.webflux` form).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MetricsFormat {
    enabled: bool,
    /// The metric name prefix, `spring_cloud_gateway` by default.
    prefix: String,
    /// Extra labels, by name.
    tags: Vec<(String, String)>,
}

impl Default for MetricsFormat {
    fn default() -> Self {
        MetricsFormat::new(true, "spring.cloud.gateway", Vec::new())
    }
}

impl MetricsFormat {
    /// `enabled` (false writes no request family), `prefix` (dots become
    /// underscores, as Micrometer names them) and `tags` added to every
    /// series (names made valid the same way).
    pub fn new(enabled: bool, prefix: &str, tags: Vec<(String, String)>) -> MetricsFormat {
        let mut tags: Vec<(String, String)> = tags
            .into_iter()
            .map(|(k, v)| (prometheus_name(&k), v))
            .collect();
        tags.sort();
        tags.dedup_by(|a, b| a.0 == b.0);
        MetricsFormat {
            enabled,
            prefix: prometheus_name(prefix),
            tags,
        }
    }
}

/// A Micrometer name as its Prometheus registry writes it: `.` and any
/// other character outside `[a-zA-Z0-9_]` become `_`, and a leading digit
/// gets `m_` in front.
fn prometheus_name(name: &str) -> String {
    let mut out: String = name
        .chars()
        .map(|c| match c {
            'a'..='z' | 'A'..='Z' | '0'..='9' | '_' => c,
            _ => '_',
        })
        .collect();
    if out.starts_with(|c: char| c.is_ascii_digit()) || out.is_empty() {
        out.insert_str(0, "m_");
    }
    out
}

/// Spring's `HttpStatus` name and series name for `code` (Spring Framework
/// 6.2's `HttpStatus.resolve`), or `None` when Spring has none.
pub fn spring_status(code: u16) -> Option<(&'static str, &'static str)> {
    let name = match code {
        100 => "CONTINUE",
        101 => "SWITCHING_PROTOCOLS",
        102 => "PROCESSING",
        103 => "EARLY_HINTS",
        200 => "OK",
        201 => "CREATED",
        202 => "ACCEPTED",
        203 => "NON_AUTHORITATIVE_INFORMATION",
        204 => "NO_CONTENT",
        205 => "RESET_CONTENT",
        206 => "PARTIAL_CONTENT",
        207 => "MULTI_STATUS",
        208 => "ALREADY_REPORTED",
        226 => "IM_USED",
        300 => "MULTIPLE_CHOICES",
        301 => "MOVED_PERMANENTLY",
        302 => "FOUND",
        303 => "SEE_OTHER",
        304 => "NOT_MODIFIED",
        305 => "USE_PROXY",
        307 => "TEMPORARY_REDIRECT",
        308 => "PERMANENT_REDIRECT",
        400 => "BAD_REQUEST",
        401 => "UNAUTHORIZED",
        402 => "PAYMENT_REQUIRED",
        403 => "FORBIDDEN",
        404 => "NOT_FOUND",
        405 => "METHOD_NOT_ALLOWED",
        406 => "NOT_ACCEPTABLE",
        407 => "PROXY_AUTHENTICATION_REQUIRED",
        408 => "REQUEST_TIMEOUT",
        409 => "CONFLICT",
        410 => "GONE",
        411 => "LENGTH_REQUIRED",
        412 => "PRECONDITION_FAILED",
        413 => "PAYLOAD_TOO_LARGE",
        414 => "URI_TOO_LONG",
        415 => "UNSUPPORTED_MEDIA_TYPE",
        416 => "REQUESTED_RANGE_NOT_SATISFIABLE",
        417 => "EXPECTATION_FAILED",
        418 => "I_AM_A_TEAPOT",
        419 => "INSUFFICIENT_SPACE_ON_RESOURCE",
        420 => "METHOD_FAILURE",
        421 => "DESTINATION_LOCKED",
        422 => "UNPROCESSABLE_ENTITY",
        423 => "LOCKED",
        424 => "FAILED_DEPENDENCY",
        425 => "TOO_EARLY",
        426 => "UPGRADE_REQUIRED",
        428 => "PRECONDITION_REQUIRED",
        429 => "TOO_MANY_REQUESTS",
        431 => "REQUEST_HEADER_FIELDS_TOO_LARGE",
        451 => "UNAVAILABLE_FOR_LEGAL_REASONS",
        500 => "INTERNAL_SERVER_ERROR",
        501 => "NOT_IMPLEMENTED",
        502 => "BAD_GATEWAY",
        503 => "SERVICE_UNAVAILABLE",
        504 => "GATEWAY_TIMEOUT",
        505 => "HTTP_VERSION_NOT_SUPPORTED",
        506 => "VARIANT_ALSO_NEGOTIATES",
        507 => "INSUFFICIENT_STORAGE",
        508 => "LOOP_DETECTED",
        509 => "BANDWIDTH_LIMIT_EXCEEDED",
        510 => "NOT_EXTENDED",
        511 => "NETWORK_AUTHENTICATION_REQUIRED",
        _ => return None,
    };
    let series = match code / 100 {
        1 => "INFORMATIONAL",
        2 => "SUCCESSFUL",
        3 => "REDIRECTION",
        4 => "CLIENT_ERROR",
        _ => "SERVER_ERROR",
    };
    Some((name, series))
}

/// One series summed over the workers.
#[derive(Debug, Default, Clone, Copy)]
struct Total {
    count: u64,
    nanos: u64,
    max_nanos: u64,
}

type TotalKey = (Box<str>, Box<str>, u16, Box<str>);

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new(Instant::now())
    }
}

impl Metrics {
    /// Counters whose `_max` windows start at `origin` (the gateway's clock
    /// when it was built).
    pub fn new(origin: Instant) -> Metrics {
        Metrics {
            origin,
            requests: shard::shards(),
            unmatched: AtomicU64::new(0),
            refused: AtomicU64::new(0),
            cors_answers: AtomicU64::new(0),
            reloads: AtomicU64::new(0),
            reload_failures: AtomicU64::new(0),
        }
    }

    fn window(&self, now: Instant) -> u64 {
        now.saturating_duration_since(self.origin).as_secs() / MAX_WINDOW_SECS
    }

    /// Counts one answered request that took `took`, ending at `now`.
    pub fn record(&self, answered: Answered<'_>, now: Instant, took: Duration) {
        let nanos = u64::try_from(took.as_nanos()).unwrap_or(u64::MAX);
        let window = self.window(now);
        let mut by_route = self.requests[shard::this_thread()]
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let uris = match by_route.get_mut(answered.route_id) {
            Some(u) => u,
            None => by_route.entry(answered.route_id.into()).or_default(),
        };
        let series = match uris.iter().position(|s| &*s.uri == answered.route_uri) {
            Some(i) => &mut uris[i],
            None => {
                uris.push(UriSeries {
                    uri: answered.route_uri.into(),
                    answers: Vec::new(),
                    extension_methods: 0,
                });
                let last = uris.len() - 1;
                &mut uris[last]
            }
        };
        let counter = match series
            .answers
            .iter()
            .position(|(s, m, _)| *s == answered.status && m == answered.method)
        {
            Some(i) => &mut series.answers[i].2,
            None => {
                let method = series.method_key(answered.method);
                match series
                    .answers
                    .iter()
                    .position(|(s, m, _)| *s == answered.status && *m == method)
                {
                    Some(i) => &mut series.answers[i].2,
                    None => {
                        series
                            .answers
                            .push((answered.status, method, Counter::default()));
                        let last = series.answers.len() - 1;
                        &mut series.answers[last].2
                    }
                }
            }
        };
        counter.count += 1;
        counter.nanos = counter.nanos.saturating_add(nanos);
        counter.max.record(window, nanos);
    }

    /// Every shard's counters summed, by route, uri, status and method,
    /// with `_max` as seen at `now`.
    fn totals(&self, now: Instant) -> HashMap<TotalKey, Total> {
        let window = self.window(now);
        let mut totals: HashMap<TotalKey, Total> = HashMap::new();
        for shard in &self.requests {
            let by_route = shard
                .0
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            for (route, uris) in by_route.iter() {
                for s in uris {
                    for (status, method, c) in &s.answers {
                        let key = (
                            route.clone(),
                            s.uri.clone(),
                            *status,
                            method.as_str().into(),
                        );
                        let t = totals.entry(key).or_default();
                        t.count += c.count;
                        t.nanos = t.nanos.saturating_add(c.nanos);
                        t.max_nanos = t.max_nanos.max(c.max.at(window));
                    }
                }
            }
        }
        totals
    }

    /// Counts one request that matched no route.
    pub fn record_unmatched(&self) {
        self.unmatched.fetch_add(1, Ordering::Relaxed);
    }

    /// Counts one request refused before routing (a bad `Host`, a
    /// dot-segment: see `request_check.rs`).
    pub fn record_refused(&self) {
        self.refused.fetch_add(1, Ordering::Relaxed);
    }

    /// Counts one request the CORS configuration answered itself (a
    /// preflight, or a refusal); SCG leaves these out of its request
    /// metric, and so does [`Metrics::record`].
    pub fn record_cors_answer(&self) {
        self.cors_answers.fetch_add(1, Ordering::Relaxed);
    }

    /// Counts one reload of a changed settings file, `ok` or refused.
    pub fn record_reload(&self, ok: bool) {
        let counter = if ok {
            &self.reloads
        } else {
            &self.reload_failures
        };
        counter.fetch_add(1, Ordering::Relaxed);
    }

    /// Reloads of a changed settings file so far: (applied, refused).
    pub fn reloads(&self) -> (u64, u64) {
        (
            self.reloads.load(Ordering::Relaxed),
            self.reload_failures.load(Ordering::Relaxed),
        )
    }

    /// Requests of `route` so far (any uri, method and status).
    pub fn count(&self, route: &str) -> u64 {
        self.requests
            .iter()
            .map(|shard| {
                let by_route = shard
                    .0
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner);
                by_route.get(route).map_or(0, |uris| {
                    uris.iter()
                        .flat_map(|s| &s.answers)
                        .map(|(_, _, c)| c.count)
                        .sum()
                })
            })
            .sum()
    }

    /// Writes the families into `text` as `format` says, with `_max` as of
    /// `now` and `routes` as the route count.
    pub fn write(
        &self,
        text: &mut PrometheusText,
        format: &MetricsFormat,
        now: Instant,
        routes: usize,
    ) {
        if format.enabled {
            self.write_requests(text, format, now);
            text.gauge(
                &format!("{}_routes_count", format.prefix),
                "Routes in the table (SCG's name)",
                routes,
            );
        }
        text.counter(
            "gateway_unmatched_requests_total",
            "Requests that matched no route (answered 404)",
            self.unmatched.load(Ordering::Relaxed),
        );
        text.counter(
            "gateway_refused_requests_total",
            "Requests refused before routing: Host missing, repeated or invalid, a dot-segment or a malformed escape in the path (answered 400), or CONNECT (501)",
            self.refused.load(Ordering::Relaxed),
        );
        text.counter(
            "gateway_cors_answers_total",
            "Requests the CORS configuration answered itself: preflights (200) and refusals (403)",
            self.cors_answers.load(Ordering::Relaxed),
        );
        let (applied, refused) = self.reloads();
        text.counter(
            "gateway_settings_reloads_total",
            "Changes of the settings file applied to the routes",
            applied,
        );
        text.counter(
            "gateway_settings_reload_failures_total",
            "Changes of the settings file that did not load (the routes stayed)",
            refused,
        );
    }

    fn write_requests(&self, text: &mut PrometheusText, format: &MetricsFormat, now: Instant) {
        let mut rows: Vec<(TotalKey, Total)> = self.totals(now).into_iter().collect();
        rows.sort_by(|a, b| a.0.cmp(&b.0));
        let labelled: Vec<(Vec<(&str, String)>, Total)> = rows
            .iter()
            .map(|((route, uri, status, method), total)| {
                let code = status.to_string();
                let (name, outcome) = match spring_status(*status) {
                    Some((name, series)) => (name.to_owned(), series),
                    None => (code.clone(), "CUSTOM"),
                };
                let mut labels: Vec<(&str, String)> = vec![
                    ("httpMethod", method.to_string()),
                    ("httpStatusCode", code),
                    ("outcome", outcome.to_owned()),
                    ("routeId", route.to_string()),
                    ("routeUri", uri.to_string()),
                    ("status", name),
                ];
                for (k, v) in &format.tags {
                    if !labels.iter().any(|(n, _)| n == k) {
                        labels.push((k.as_str(), v.clone()));
                    }
                }
                labels.sort_by(|a, b| a.0.cmp(b.0));
                (labels, *total)
            })
            .collect();
        let name = format!("{}_requests_seconds", format.prefix);
        let mut family = text.family(
            &name,
            "summary",
            "Requests answered through each route, and their time",
        );
        for (labels, total) in &labelled {
            let labels: Vec<(&str, &str)> = labels.iter().map(|(k, v)| (*k, v.as_str())).collect();
            family = family
                .sample_named("_count", &labels, total.count)
                .sample_named("_sum", &labels, seconds(total.nanos));
        }
        let mut family = text.family(
            &format!("{name}_max"),
            "gauge",
            "The longest request of the last one to two minutes",
        );
        for (labels, total) in &labelled {
            let labels: Vec<(&str, &str)> = labels.iter().map(|(k, v)| (*k, v.as_str())).collect();
            family = family.sample(&labels, seconds(total.max_nanos));
        }
    }
}

impl UriSeries {
    /// `method` as counted: itself, or `OTHER` once this series has
    /// counted [`NAMED_EXTENSION_METHODS`] others.
    fn method_key(&mut self, method: &Method) -> Method {
        const STANDARD: [Method; 9] = [
            Method::GET,
            Method::POST,
            Method::PUT,
            Method::DELETE,
            Method::HEAD,
            Method::OPTIONS,
            Method::PATCH,
            Method::TRACE,
            Method::CONNECT,
        ];
        if STANDARD.contains(method) {
            return method.clone();
        }
        if self.extension_methods < NAMED_EXTENSION_METHODS {
            self.extension_methods += 1;
            return method.clone();
        }
        Method::from_bytes(b"OTHER").unwrap_or(Method::GET)
    }
}

fn seconds(nanos: u64) -> f64 {
    nanos as f64 / 1e9
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answered<'a>(route: &'a str, method: &'a Method, status: u16) -> Answered<'a> {
        Answered {
            route_id: route,
            route_uri: "http://users:8080",
            method,
            status,
        }
    }

    fn written(metrics: &Metrics, format: &MetricsFormat, now: Instant) -> String {
        let mut text = PrometheusText::new();
        metrics.write(&mut text, format, now, 2);
        text.finish()
    }

    #[test]
    fn counts_from_every_thread_add_up() {
        let origin = Instant::now();
        let metrics = std::sync::Arc::new(Metrics::new(origin));
        let threads: Vec<_> = (0..4)
            .map(|_| {
                let metrics = std::sync::Arc::clone(&metrics);
                std::thread::spawn(move || {
                    for _ in 0..250 {
                        metrics.record(
                            answered("api", &Method::GET, 200),
                            origin,
                            Duration::from_millis(2),
                        );
                    }
                    metrics.record(
                        answered("api", &Method::POST, 503),
                        origin,
                        Duration::from_millis(1),
                    );
                })
            })
            .collect();
        for t in threads {
            t.join().expect("a recording thread panicked");
        }
        assert_eq!(metrics.count("api"), 1004);
        assert_eq!(metrics.count("other"), 0);
        let text = written(&metrics, &MetricsFormat::default(), origin);
        let ok = r#"{httpMethod="GET",httpStatusCode="200",outcome="SUCCESSFUL",routeId="api",routeUri="http://users:8080",status="OK"}"#;
        let unavailable = r#"{httpMethod="POST",httpStatusCode="503",outcome="SERVER_ERROR",routeId="api",routeUri="http://users:8080",status="SERVICE_UNAVAILABLE"}"#;
        for line in [
            format!("spring_cloud_gateway_requests_seconds_count{ok} 1000\n"),
            format!("spring_cloud_gateway_requests_seconds_sum{ok} 2\n"),
            format!("spring_cloud_gateway_requests_seconds_max{ok} 0.002\n"),
            format!("spring_cloud_gateway_requests_seconds_count{unavailable} 4\n"),
            "# TYPE spring_cloud_gateway_requests_seconds summary\n".to_owned(),
            "# TYPE spring_cloud_gateway_requests_seconds_max gauge\n".to_owned(),
            "spring_cloud_gateway_routes_count 2\n".to_owned(),
        ] {
            assert!(text.contains(&line), "no {line:?} in\n{text}");
        }
    }

    #[test]
    fn statuses_spring_has_no_name_for_are_custom() {
        let origin = Instant::now();
        let metrics = Metrics::new(origin);
        metrics.record(
            answered("api", &Method::GET, 299),
            origin,
            Duration::from_millis(1),
        );
        metrics.record(
            answered("api", &Method::GET, 418),
            origin,
            Duration::from_millis(1),
        );
        let text = written(&metrics, &MetricsFormat::default(), origin);
        assert!(
            text.contains(r#"{httpMethod="GET",httpStatusCode="299",outcome="CUSTOM",routeId="api",routeUri="http://users:8080",status="299"} 1"#),
            "{text}"
        );
        assert!(text.contains(r#"outcome="CLIENT_ERROR",routeId="api",routeUri="http://users:8080",status="I_AM_A_TEAPOT"} 1"#), "{text}");
        assert_eq!(
            spring_status(413),
            Some(("PAYLOAD_TOO_LARGE", "CLIENT_ERROR"))
        );
        assert_eq!(spring_status(306), None);
        assert_eq!(spring_status(600), None);
    }

    #[test]
    fn the_prefix_and_tags_of_the_settings_name_and_label_every_series() {
        let origin = Instant::now();
        let metrics = Metrics::new(origin);
        metrics.record(
            answered("api", &Method::GET, 200),
            origin,
            Duration::from_millis(1),
        );
        let format = MetricsFormat::new(
            true,
            "my.gw",
            vec![
                ("region".to_owned(), "eu".to_owned()),
                ("app.tier".to_owned(), "edge".to_owned()),
                ("routeId".to_owned(), "not this".to_owned()),
            ],
        );
        let text = written(&metrics, &format, origin);
        assert!(
            text.contains(r#"my_gw_requests_seconds_count{app_tier="edge",httpMethod="GET",httpStatusCode="200",outcome="SUCCESSFUL",region="eu",routeId="api",routeUri="http://users:8080",status="OK"} 1"#),
            "{text}"
        );
        assert!(text.contains("my_gw_routes_count 2\n"), "{text}");
        assert!(!text.contains("spring_cloud_gateway"), "{text}");

        let off = written(
            &metrics,
            &MetricsFormat::new(false, "x", Vec::new()),
            origin,
        );
        assert!(!off.contains("requests_seconds"), "{off}");
        assert!(!off.contains("routes_count"), "{off}");
        assert!(
            off.contains("gateway_unmatched_requests_total 0\n"),
            "{off}"
        );
    }

    #[test]
    fn max_is_the_longest_request_of_the_last_one_to_two_minutes() {
        let origin = Instant::now();
        let metrics = Metrics::new(origin);
        let at = |s: u64| origin + Duration::from_secs(s);
        let max_at = |now: Instant| {
            let text = written(&metrics, &MetricsFormat::default(), now);
            let line = text
                .lines()
                .find(|l| l.starts_with("spring_cloud_gateway_requests_seconds_max{"))
                .unwrap_or_else(|| panic!("no _max in\n{text}"))
                .to_owned();
            line.rsplit(' ').next().unwrap_or_default().to_owned()
        };
        metrics.record(
            answered("api", &Method::GET, 200),
            at(10),
            Duration::from_millis(900),
        );
        metrics.record(
            answered("api", &Method::GET, 200),
            at(70),
            Duration::from_millis(5),
        );
        assert_eq!(max_at(at(70)), "0.9");
        assert_eq!(max_at(at(119)), "0.9");
        // The 900 ms request's window is now two back; the 5 ms one remains.
        assert_eq!(max_at(at(120)), "0.005");
        assert_eq!(max_at(at(180)), "0");
        // Count and sum are for the process's life.
        let text = written(&metrics, &MetricsFormat::default(), at(600));
        assert!(text.contains("} 2\n"), "{text}");
    }

    #[test]
    fn a_route_pointed_elsewhere_keeps_each_uri_apart_and_made_up_methods_are_bounded() {
        let origin = Instant::now();
        let metrics = Metrics::new(origin);
        let get = Method::GET;
        metrics.record(answered("api", &get, 200), origin, Duration::ZERO);
        metrics.record(
            Answered {
                route_uri: "http://orders:8080",
                ..answered("api", &get, 200)
            },
            origin,
            Duration::ZERO,
        );
        for i in 0..20 {
            let m = Method::from_bytes(format!("M{i}").as_bytes()).expect("a token");
            metrics.record(answered("api", &m, 200), origin, Duration::ZERO);
        }
        let text = written(&metrics, &MetricsFormat::default(), origin);
        assert!(text.contains(r#"routeUri="http://orders:8080""#), "{text}");
        assert!(text.contains(r#"{httpMethod="M7","#), "{text}");
        assert!(!text.contains(r#"{httpMethod="M8","#), "{text}");
        assert!(
            text.contains(r#"spring_cloud_gateway_requests_seconds_count{httpMethod="OTHER",httpStatusCode="200",outcome="SUCCESSFUL",routeId="api",routeUri="http://users:8080",status="OK"} 12"#),
            "{text}"
        );
        assert_eq!(metrics.count("api"), 22);
    }
}
