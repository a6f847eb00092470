//! [`LbHttpClient`]: `lb://service/...` (and `http://service/...` when the
//! registry knows `service`) resolved through the registry cache and the
//! balancer, each attempt guarded by the service's circuit breaker and the
//! per-call timeout, retried with a budget when that is safe.

use std::collections::HashMap;
use std::future::{Future, ready};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use arc_swap::ArcSwap;
use circuit_breaker::time_limiter::Deadlines;
use circuit_breaker::{Backoff, CircuitBreaker, CircuitBreakerConfig, Classification, RetryBudget};
use cloud_runtime::shard::{Local, ShardedArc};
use futures::future::Either;
use reqwest::header::HeaderMap;
use reqwest::{Method, Request, Response, Url, Version};

use super::error::{HttpError, Kind};
use super::trace::{B3_SINGLE, B3_TRACE_ID, TRACEPARENT_HEADER, TraceContext};
use crate::discovery::{DiscoveryClient, ServiceInstance};
use crate::loadbalancer::{LoadBalancer, Outcome, OutlierConfig, Picked, Strategy};

/// Where the client finds the instances of a service.
pub trait InstanceSource: Send + Sync + 'static {
    /// Every instance of `service` (any status); `None` when the service is
    /// unknown.
    fn instances(&self, service: &str) -> Option<Arc<[ServiceInstance]>>;

    /// Lends the instances of `service` to `use_them`; false (without
    /// calling it) when the service is unknown. The client calls this once
    /// per request. The default asks [`instances`](Self::instances); a
    /// source that keeps its lists at hand lends them without touching
    /// their reference count, which every core would otherwise write.
    fn lend_instances(
        &self,
        service: &str,
        use_them: &mut dyn FnMut(&Arc<[ServiceInstance]>),
    ) -> bool {
        match self.instances(service) {
            Some(list) => {
                use_them(&list);
                true
            }
            None => false,
        }
    }
}

impl InstanceSource for DiscoveryClient {
    fn instances(&self, service: &str) -> Option<Arc<[ServiceInstance]>> {
        self.find_instances(service)
    }

    fn lend_instances(
        &self,
        service: &str,
        use_them: &mut dyn FnMut(&Arc<[ServiceInstance]>),
    ) -> bool {
        self.lend_instances(service, use_them)
    }
}

/// Fixed instances per service name (for tests, or services outside the
/// registry).
#[derive(Debug, Clone, Default)]
pub struct StaticInstances {
    services: HashMap<String, Arc<[ServiceInstance]>>,
}

impl StaticInstances {
    /// No services.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds (or replaces) `service`'s instances.
    pub fn with(mut self, service: &str, instances: Vec<ServiceInstance>) -> Self {
        self.services
            .insert(service.to_ascii_lowercase(), Arc::from(instances));
        self
    }
}

impl StaticInstances {
    fn get(&self, service: &str) -> Option<&Arc<[ServiceInstance]>> {
        // Names are usually lower case already: no copy to look up.
        if !service.bytes().any(|b| b.is_ascii_uppercase()) {
            return self.services.get(service);
        }
        self.services.get(&service.to_ascii_lowercase())
    }
}

impl InstanceSource for StaticInstances {
    fn instances(&self, service: &str) -> Option<Arc<[ServiceInstance]>> {
        self.get(service).cloned()
    }

    fn lend_instances(
        &self,
        service: &str,
        use_them: &mut dyn FnMut(&Arc<[ServiceInstance]>),
    ) -> bool {
        self.get(service).map(use_them).is_some()
    }
}

/// Settings of the HTTP client; every field documents its default.
#[derive(Debug, Clone)]
pub struct HttpClientConfig {
    /// How instances are chosen. Default is round robin (Spring Cloud
    /// LoadBalancer's default).
    pub strategy: Strategy,
    /// Outlier ejection. Default is [`OutlierConfig::default`].
    pub outlier: OutlierConfig,
    /// Each service's circuit breaker. Default is Resilience4j's defaults.
    pub breaker: CircuitBreakerConfig,
    /// Time allowed for one attempt, up to the response headers. Default
    /// is 1 second (Resilience4j's time limiter default).
    pub timeout: Duration,
    /// Attempts in all, the first included. Default is 3.
    pub max_attempts: u32,
    /// Delay between attempts. Default is 50 ms doubling to at most 1 s,
    /// jitter 0.5.
    pub backoff: Backoff,
    /// Retries each call earns for its service's retry budget. Default is
    /// 0.2 (retries add at most 20% to the load during an outage).
    pub retry_budget_ratio: f64,
    /// Retries the budget starts with and refills to. Default is 10.
    pub retry_budget_burst: u32,
}

impl Default for HttpClientConfig {
    fn default() -> Self {
        HttpClientConfig {
            strategy: Strategy::RoundRobin,
            outlier: OutlierConfig::default(),
            breaker: CircuitBreakerConfig::default(),
            timeout: Duration::from_secs(1),
            max_attempts: 3,
            backoff: Backoff {
                initial: Duration::from_millis(50),
                multiplier: 2.0,
                max: Duration::from_secs(1),
                jitter: 0.5,
            },
            retry_budget_ratio: 0.2,
            retry_budget_burst: 10,
        }
    }
}

/// What [`LbHttpClient::services`] reports of one service.
#[derive(Debug, Clone)]
pub struct ServiceStats {
    /// The service name (lower case).
    pub service: String,
    /// Its circuit breaker.
    pub breaker: CircuitBreaker,
    /// Instances in its balancer's pool.
    pub instances: usize,
    /// Of those, ejected now.
    pub ejected: usize,
}

/// Per service: its balancer, breaker and retry budget.
#[derive(Debug)]
struct ServiceState {
    /// The service name, lower case.
    name: String,
    lb: LoadBalancer,
    breaker: CircuitBreaker,
    budget: RetryBudget,
}

struct Inner {
    http: reqwest::Client,
    source: Arc<dyn InstanceSource>,
    config: HttpClientConfig,
    /// Per-service state, read without a lock; a new service copies the map.
    /// Each state is held through per-thread handles: a call holds its
    /// service's state for as long as it runs.
    services: ArcSwap<HashMap<String, Arc<ShardedArc<ServiceState>>>>,
    /// The attempts' timeouts: one ticker task rather than a tokio timer
    /// entered and removed per attempt.
    deadlines: Deadlines,
}

/// A resilient, load-balanced HTTP client. Cheap to clone; clones share
/// their balancers and breakers. Also a `tower::Service<reqwest::Request>`.
#[derive(Clone)]
pub struct LbHttpClient {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for LbHttpClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LbHttpClient")
            .field("config", &self.inner.config)
            .finish_non_exhaustive()
    }
}

/// Whether a method may be sent twice without harm (RFC 9110).
fn is_idempotent(m: &Method) -> bool {
    matches!(
        *m,
        Method::GET | Method::HEAD | Method::OPTIONS | Method::PUT | Method::DELETE | Method::TRACE
    )
}

/// `scheme://host:port/` of `instance` (an IPv6 host in brackets).
fn origin(scheme: &str, instance: &ServiceInstance) -> Result<Url, HttpError> {
    let host = &instance.host;
    let text = if host.contains(':') && !host.starts_with('[') {
        format!("{scheme}://[{host}]:{}/", instance.port)
    } else {
        format!("{scheme}://{host}:{}/", instance.port)
    };
    Url::parse(&text)
        .map_err(|e| HttpError::new(Kind::InvalidUrl, Some(&instance.app)).with_source(e))
}

/// `given` sent to the picked instance: its path and query on the
/// instance's origin over `scheme` (the fragment is not sent). The origin
/// of `http` and `https` is parsed once per instance and kept with the
/// balancer's pool.
fn rewrite(given: &Url, scheme: &str, picked: &Picked<'_>) -> Result<Url, HttpError> {
    let https = match scheme {
        "http" => false,
        "https" => true,
        _ => {
            let mut url = origin(scheme, picked.instance())?;
            url.set_path(given.path());
            url.set_query(given.query());
            return Ok(url);
        }
    };
    let mut url = picked.origin(https, |i| origin(scheme, i))?.clone();
    url.set_path(given.path());
    url.set_query(given.query());
    Ok(url)
}

impl LbHttpClient {
    /// A client resolving services through `source` (usually a
    /// [`DiscoveryClient`]).
    ///
    /// Its `reqwest` client does not retry by itself: this client's own
    /// retries, counted by the breaker and the retry budget, are the only
    /// ones (retries in two layers multiply). What `reqwest` would retry
    /// (an HTTP/2 stream the server refused, or a graceful `GOAWAY`), this
    /// client retries for any method: the server did not process it.
    pub fn new(source: impl InstanceSource, config: HttpClientConfig) -> Result<Self, HttpError> {
        let http = reqwest::Client::builder()
            .retry(reqwest::retry::never().max_retries_per_request(0))
            .build()
            .map_err(|e| HttpError::new(Kind::Transport, None).with_source(e))?;
        Ok(LbHttpClient::with_reqwest(source, config, http))
    }

    /// Like [`new`](Self::new) over a `reqwest::Client` you configured.
    pub fn with_reqwest(
        source: impl InstanceSource,
        config: HttpClientConfig,
        http: reqwest::Client,
    ) -> Self {
        // Calibrate the balancers' call timer now rather than on the first
        // call (once per process; a few milliseconds).
        let _calibrated = quanta::Clock::new();
        LbHttpClient {
            inner: Arc::new(Inner {
                http,
                source: Arc::new(source),
                config,
                services: ArcSwap::from_pointee(HashMap::new()),
                deadlines: Deadlines::new(),
            }),
        }
    }

    /// The underlying `reqwest` client, to build requests with
    /// (`client.reqwest().get("lb://users/1").build()`).
    pub fn reqwest(&self) -> &reqwest::Client {
        &self.inner.http
    }

    /// `GET url`.
    pub fn get<'a>(
        &'a self,
        url: &str,
    ) -> impl Future<Output = Result<Response, HttpError>> + Send + use<'a> {
        match self.inner.http.get(url).build() {
            Ok(req) => Either::Left(self.execute(req)),
            Err(e) => Either::Right(ready(Err(
                HttpError::new(Kind::InvalidUrl, None).with_source(e)
            ))),
        }
    }

    /// The circuit breaker of `service`, once it has been called.
    pub fn breaker(&self, service: &str) -> Option<CircuitBreaker> {
        self.inner
            .services
            .load()
            .get(&service.to_ascii_lowercase())
            .map(|s| s.breaker.clone())
    }

    /// Every service called so far, with its breaker, the instances in its
    /// pool and how many of them are ejected now.
    pub fn services(&self) -> Vec<ServiceStats> {
        let mut out: Vec<ServiceStats> = self
            .inner
            .services
            .load()
            .iter()
            .map(|(name, s)| ServiceStats {
                service: name.clone(),
                breaker: s.breaker.clone(),
                instances: s.lb.endpoints().len(),
                ejected: s.lb.ejected_count(),
            })
            .collect();
        out.sort_by(|a, b| a.service.cmp(&b.service));
        out
    }

    /// Whether `service`'s instance `instance_id` is ejected now.
    pub fn is_ejected(&self, service: &str, instance_id: &str) -> bool {
        self.inner
            .services
            .load()
            .get(&service.to_ascii_lowercase())
            .is_some_and(|s| s.lb.is_ejected(instance_id))
    }

    /// This thread's handle on `service`'s state, made on its first call.
    fn state(&self, service: &str) -> Result<Local<ServiceState>, HttpError> {
        // Service names are usually lower case already: no copy to look up.
        if !service.bytes().any(|b| b.is_ascii_uppercase())
            && let Some(s) = self.inner.services.load().get(service)
        {
            return Ok(s.local());
        }
        let key = service.to_ascii_lowercase();
        if let Some(s) = self.inner.services.load().get(&key) {
            return Ok(s.local());
        }
        let c = &self.inner.config;
        let breaker = CircuitBreaker::new(key.as_str(), c.breaker.clone())
            .map_err(|e| HttpError::new(Kind::InvalidUrl, Some(service)).with_source(e))?;
        let state = Arc::new(ShardedArc::new(Arc::new(ServiceState {
            name: key.clone(),
            lb: LoadBalancer::with_outlier(c.strategy.clone(), c.outlier),
            breaker,
            budget: RetryBudget::new(c.retry_budget_ratio, c.retry_budget_burst),
        })));
        // Two first calls may race: the state stored first wins for both.
        // `rcu` returns the map as it was before this insert: it holds the
        // racer's state if that came first; otherwise ours went in.
        let before = self.inner.services.rcu(|map| {
            let mut next = HashMap::clone(map);
            next.entry(key.clone())
                .or_insert_with(|| Arc::clone(&state));
            next
        });
        Ok(before.get(&key).unwrap_or(&state).local())
    }

    /// Sends `req`. `lb://service/...` always goes through the registry;
    /// `http(s)://host/...` does when the registry knows `host`, and is
    /// sent as is otherwise. Any HTTP response is `Ok`, 5xx included (after
    /// the retries it was allowed); `Err` means no response.
    ///
    /// The service is resolved before the future is made, and the future
    /// is the one attempt loop itself rather than layers of futures around
    /// it, each holding a copy of the request.
    pub fn execute(
        &self,
        req: Request,
    ) -> impl Future<Output = Result<Response, HttpError>> + Send + '_ {
        match self.route(&req) {
            Ok(Some((state, lb))) => Either::Left(self.balanced(state, lb, req)),
            Ok(None) => Either::Right(Either::Left(self.direct(req))),
            Err(e) => Either::Right(Either::Right(ready(Err(e)))),
        }
    }

    /// Where `req` goes: a service's state (and whether the URL said
    /// `lb://`), or `None` for a host outside the registry.
    fn route(&self, req: &Request) -> Result<Option<(Local<ServiceState>, bool)>, HttpError> {
        let url = req.url();
        let Some(service) = url.host_str() else {
            return Err(HttpError::new(Kind::InvalidUrl, None));
        };
        let lb = url.scheme().eq_ignore_ascii_case("lb");
        let mut state = None;
        let known = self.inner.source.lend_instances(service, &mut |list| {
            let found = self.state(service);
            if let Ok(s) = &found {
                s.lb.update(list);
            }
            state = Some(found);
        });
        match state.filter(|_| known) {
            Some(state) => Ok(Some((state?, lb))),
            None if lb => Err(HttpError {
                safe_to_retry: true,
                ..HttpError::new(Kind::NoInstance, Some(service))
            }),
            None => Ok(None),
        }
    }

    /// Sends `req`; when that ends without a response, returns what
    /// `fallback` makes of the error (a cached or default answer, or the
    /// error itself).
    pub async fn execute_or_else<F, Fut>(
        &self,
        req: Request,
        fallback: F,
    ) -> Result<Response, HttpError>
    where
        F: FnOnce(HttpError) -> Fut,
        Fut: Future<Output = Result<Response, HttpError>>,
    {
        match self.execute(req).await {
            Ok(resp) => Ok(resp),
            Err(e) => fallback(e).await,
        }
    }

    /// A request to a host outside the registry: timeout and trace only.
    async fn direct(&self, mut req: Request) -> Result<Response, HttpError> {
        add_traceparent(&mut req);
        let idempotent = is_idempotent(req.method());
        let sent = (self.inner.deadlines)
            .run(self.inner.config.timeout, self.inner.http.execute(req))
            .await;
        match sent {
            Ok(Ok(resp)) => Ok(resp),
            Ok(Err(e)) => {
                let mut err = transport_error(e, None, idempotent);
                err.attempts = 1;
                Err(err)
            }
            Err(elapsed) => Err(HttpError {
                attempts: 1,
                safe_to_retry: idempotent,
                ..HttpError::new(Kind::Timeout, None).with_source(elapsed)
            }),
        }
    }

    /// Sends `req` to instances of the service of `state`. The request the
    /// caller gave is sent by the first attempt itself; what a further
    /// attempt needs of it is kept (a [`Spare`]) only while one could
    /// follow, and nothing when its body cannot be copied (a stream), which
    /// then rules retries out.
    ///
    /// Not an `async fn`: that would keep its request argument in the
    /// future twice (the argument and its copy in the body), and the future
    /// is moved whole into the caller's.
    fn balanced(
        &self,
        state: Local<ServiceState>,
        lb: bool,
        req: Request,
    ) -> impl Future<Output = Result<Response, HttpError>> + Send + '_ {
        let idempotent = is_idempotent(req.method());
        // The caller's request until the first attempt takes it, then the
        // URL it gave and what further attempts are made of.
        let mut first = Some(req);
        async move {
            let state = &*state;
            let c = &self.inner.config;
            let mut given: Option<Url> = None;
            let mut spare: Option<Spare> = None;
            state.budget.deposit();
            let mut attempt: u32 = 0;
            loop {
                attempt += 1;
                let url = match (&first, &given) {
                    (Some(req), _) => req.url(),
                    (None, Some(url)) => url,
                    // A further attempt follows only the first.
                    (None, None) => {
                        return Err(HttpError::new(Kind::InvalidUrl, Some(&state.name)));
                    }
                };
                let service = url.host_str().unwrap_or(&state.name);
                let permit = match state.breaker.try_acquire() {
                    Ok(p) => p,
                    Err(e) => {
                        return Err(HttpError {
                            attempts: attempt - 1,
                            safe_to_retry: true,
                            ..HttpError::new(Kind::BreakerOpen, Some(service)).with_source(e)
                        });
                    }
                };
                let Some(picked) = state.lb.pick() else {
                    permit.record(Classification::Ignored);
                    return Err(HttpError {
                        attempts: attempt - 1,
                        safe_to_retry: true,
                        ..HttpError::new(Kind::NoInstance, Some(service))
                    });
                };
                let scheme = if !lb {
                    url.scheme()
                } else if picked.instance().secure {
                    "https"
                } else {
                    "http"
                };
                let target = rewrite(url, scheme, &picked)?;
                // In a block: the request is handed to reqwest before the
                // wait, so the future keeps no room for it.
                let pending = {
                    let mut this = match first.take() {
                        Some(mut req) => {
                            given = Some(std::mem::replace(req.url_mut(), target));
                            // Kept before this attempt gets its own span id.
                            if attempt < c.max_attempts {
                                spare = Spare::of(&req);
                            }
                            req
                        }
                        None => match spare.as_ref().and_then(|s| s.request(target)) {
                            Some(req) => req,
                            None => {
                                return Err(HttpError::new(Kind::InvalidUrl, Some(&state.name)));
                            }
                        },
                    };
                    add_traceparent(&mut this);
                    self.inner.http.execute(this)
                };
                // The service as the caller's URL spelt it (set just above).
                let service = given
                    .as_ref()
                    .and_then(|url| url.host_str())
                    .unwrap_or(&state.name);
                let sent = self.inner.deadlines.run(c.timeout, pending).await;
                let (failure, retryable) = match sent {
                    Ok(Ok(resp)) => {
                        if !resp.status().is_server_error() {
                            permit.record(Classification::Success);
                            picked.record(Outcome::Success);
                            return Ok(resp);
                        }
                        permit.record(Classification::Failure);
                        picked.record(Outcome::Failure);
                        if !(idempotent && spare.is_some() && self.may_retry(state, attempt)) {
                            return Ok(resp);
                        }
                        tracing::debug!(%service, status = %resp.status(), attempt, "retrying after a server error");
                        (None, true)
                    }
                    Ok(Err(e)) => {
                        permit.record(Classification::Failure);
                        picked.record(Outcome::Failure);
                        let err = transport_error(e, Some(service), idempotent);
                        let retryable = err.safe_to_retry;
                        (Some(err), retryable)
                    }
                    Err(elapsed) => {
                        permit.record(Classification::Failure);
                        picked.record(Outcome::Failure);
                        let err = HttpError {
                            safe_to_retry: idempotent,
                            ..HttpError::new(Kind::Timeout, Some(service)).with_source(elapsed)
                        };
                        (Some(err), idempotent)
                    }
                };
                if let Some(mut err) = failure {
                    err.attempts = attempt;
                    if !retryable || attempt >= c.max_attempts || spare.is_none() {
                        return Err(err);
                    }
                    if !state.budget.try_withdraw() {
                        err.budget_spent = true;
                        return Err(err);
                    }
                    tracing::debug!(%service, error = %err, attempt, "retrying");
                }
                let delay = c.backoff.delay(attempt, rand::random::<f64>());
                // Boxed: only a retry needs a timer's room in the future.
                Box::pin(tokio::time::sleep(delay)).await;
            }
        }
    }

    /// Whether another attempt may follow a retryable server error.
    fn may_retry(&self, state: &ServiceState, attempt: u32) -> bool {
        attempt < self.inner.config.max_attempts && state.budget.try_withdraw()
    }
}

/// What a further attempt is made of: the caller's request without its
/// URL (each attempt sends to its own instance).
#[derive(Debug)]
enum Spare {
    /// A request without a body: its method, headers, version and timeout.
    /// These are all that `reqwest` sends or obeys of a request besides its
    /// URL and body, and keeping them copies no URL and makes no extensions
    /// map (`Request::try_clone` makes one to set the timeout, then
    /// replaces it).
    Bodiless {
        method: Method,
        headers: HeaderMap,
        version: Version,
        timeout: Option<Duration>,
    },
    /// A request with a body that can be sent again, copied whole (boxed:
    /// rarer, and the size of a request in every call's future otherwise).
    Whole(Box<Request>),
}

impl Spare {
    /// What a further attempt of `req` needs; `None` when its body is a
    /// stream, which cannot be sent twice.
    fn of(req: &Request) -> Option<Spare> {
        if req.body().is_some() {
            return req.try_clone().map(|r| Spare::Whole(Box::new(r)));
        }
        Some(Spare::Bodiless {
            method: req.method().clone(),
            headers: req.headers().clone(),
            version: req.version(),
            timeout: req.timeout().copied(),
        })
    }

    /// The request a further attempt sends to `url`.
    fn request(&self, url: Url) -> Option<Request> {
        match self {
            Spare::Bodiless {
                method,
                headers,
                version,
                timeout,
            } => {
                let mut req = Request::new(method.clone(), url);
                *req.headers_mut() = headers.clone();
                *req.version_mut() = *version;
                if timeout.is_some() {
                    *req.timeout_mut() = *timeout;
                }
                Some(req)
            }
            Spare::Whole(req) => {
                let mut req = req.try_clone()?;
                *req.url_mut() = url;
                Some(req)
            }
        }
    }
}

/// Sets `traceparent` (and the B3 headers when the trace came with them),
/// unless the request carries a trace of its own: a child of the current
/// task's trace, else a new trace.
fn add_traceparent(req: &mut Request) {
    let headers = req.headers();
    // Most requests come with no headers: no lookups then.
    if !headers.is_empty()
        && (headers.contains_key(&TRACEPARENT_HEADER)
            || headers.contains_key(&B3_TRACE_ID)
            || headers.contains_key(&B3_SINGLE))
    {
        return;
    }
    let ctx = TraceContext::current()
        .map(|c| c.child())
        .unwrap_or_else(TraceContext::new_root);
    ctx.write_to(req.headers_mut());
}

fn transport_error(e: reqwest::Error, service: Option<&str>, idempotent: bool) -> HttpError {
    let (kind, safe) = if e.is_connect() {
        (Kind::Connect, true)
    } else if cloud_runtime::http2::refused_unprocessed(&e) {
        (Kind::Transport, true)
    } else if e.is_timeout() {
        (Kind::Timeout, idempotent)
    } else {
        (Kind::Transport, idempotent)
    };
    HttpError {
        safe_to_retry: safe,
        ..HttpError::new(kind, service).with_source(e)
    }
}

impl tower::Service<Request> for LbHttpClient {
    type Response = Response;
    type Error = HttpError;
    type Future = Pin<Box<dyn Future<Output = Result<Response, HttpError>> + Send + 'static>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), HttpError>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: Request) -> Self::Future {
        let client = self.clone();
        Box::pin(async move { client.execute(req).await })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn instance(host: &str, port: u16, secure: bool) -> ServiceInstance {
        ServiceInstance {
            host: host.into(),
            port,
            secure,
            ..crate::loadbalancer::tests::instance("a", None, 1)
        }
    }

    fn balancer(i: ServiceInstance) -> LoadBalancer {
        let lb = LoadBalancer::new(Strategy::RoundRobin);
        lb.update(&Arc::from(vec![i]));
        lb
    }

    fn sent(lb: &LoadBalancer, given: &str, scheme: &str) -> String {
        let given = Url::parse(given).unwrap();
        let picked = lb.pick().unwrap();
        rewrite(&given, scheme, &picked).unwrap().to_string()
    }

    #[test]
    fn the_path_and_query_go_to_the_instance_without_the_fragment() {
        let lb = balancer(instance("10.0.0.1", 8080, false));
        assert_eq!(
            sent(&lb, "lb://svc/a/b?q=1&r=a%20b#frag", "http"),
            "http://10.0.0.1:8080/a/b?q=1&r=a%20b"
        );
        assert_eq!(sent(&lb, "lb://svc", "http"), "http://10.0.0.1:8080/");
        assert_eq!(sent(&lb, "lb://svc//x", "http"), "http://10.0.0.1:8080//x");
        assert_eq!(
            sent(&lb, "https://svc/p?", "https"),
            "https://10.0.0.1:8080/p?"
        );
        assert_eq!(sent(&lb, "ws://svc/p", "ws"), "ws://10.0.0.1:8080/p");
        let lb = balancer(instance("::1", 8443, true));
        assert_eq!(sent(&lb, "lb://svc/a", "https"), "https://[::1]:8443/a");
    }

    #[test]
    fn a_changed_instance_gets_its_new_origin() {
        let lb = balancer(instance("10.0.0.1", 8080, false));
        assert_eq!(sent(&lb, "lb://svc/a", "http"), "http://10.0.0.1:8080/a");
        lb.update(&Arc::from(vec![instance("10.0.0.1", 9090, false)]));
        assert_eq!(sent(&lb, "lb://svc/a", "http"), "http://10.0.0.1:9090/a");
        assert_eq!(sent(&lb, "lb://svc/a", "https"), "https://10.0.0.1:9090/a");
    }

    #[test]
    fn a_host_that_makes_no_url_is_an_error() {
        let lb = balancer(instance("bad host", 80, false));
        let given = Url::parse("lb://svc/").unwrap();
        let picked = lb.pick().unwrap();
        let err = rewrite(&given, "http", &picked).unwrap_err();
        assert_eq!(err.kind, Kind::InvalidUrl);
        assert_eq!(err.service(), Some("SVC"));
    }

    #[test]
    fn a_spare_of_a_bodiless_request_keeps_all_but_the_url() {
        let mut req = reqwest::Client::new()
            .delete("lb://svc/a?b=1")
            .header("x-kept", "yes")
            .timeout(Duration::from_millis(1500))
            .version(Version::HTTP_2)
            .build()
            .unwrap();
        let spare = Spare::of(&req).unwrap();
        // The first attempt's own header does not reach the next.
        req.headers_mut().insert("x-first", "only".parse().unwrap());
        let target = Url::parse("http://10.0.0.1:8080/a?b=1").unwrap();
        let next = spare.request(target.clone()).unwrap();
        assert_eq!(next.method(), Method::DELETE);
        assert_eq!(next.url(), &target);
        assert_eq!(next.headers()["x-kept"], "yes");
        assert!(!next.headers().contains_key("x-first"));
        assert_eq!(next.version(), Version::HTTP_2);
        assert_eq!(next.timeout(), Some(&Duration::from_millis(1500)));
        assert!(next.body().is_none());

        let plain = reqwest::Client::new().get("lb://svc/").build().unwrap();
        let next = Spare::of(&plain).unwrap().request(target).unwrap();
        assert_eq!(next.timeout(), None);
    }

    #[test]
    fn a_spare_keeps_a_body_that_can_be_sent_again_and_none_of_a_stream() {
        let http = reqwest::Client::new();
        let req = http.post("lb://svc/o").body("payload").build().unwrap();
        let target = Url::parse("http://10.0.0.1:8080/o").unwrap();
        let spare = Spare::of(&req).unwrap();
        for _ in 0..2 {
            let next = spare.request(target.clone()).unwrap();
            assert_eq!(next.method(), Method::POST);
            assert_eq!(next.url(), &target);
            let body = next.body().and_then(|b| b.as_bytes());
            assert_eq!(body, Some(&b"payload"[..]));
        }
        let stream = futures::stream::iter([Ok::<_, std::io::Error>(bytes::Bytes::from_static(
            b"streamed",
        ))]);
        let req = http
            .post("lb://svc/o")
            .body(reqwest::Body::wrap_stream(stream))
            .build()
            .unwrap();
        assert!(Spare::of(&req).is_none());
    }

    /// The rewrite as it was: the whole URL written out and parsed again.
    fn reparsed(given: &Url, scheme: &str, i: &ServiceInstance) -> Url {
        let mut text = format!("{scheme}://{}:{}{}", i.host, i.port, given.path());
        if let Some(q) = given.query() {
            text.push('?');
            text.push_str(q);
        }
        Url::parse(&text).unwrap()
    }

    proptest::proptest! {
        #[test]
        fn the_rewrite_equals_writing_the_url_out_and_parsing_it(
            rest in "[a-zA-Z0-9/%.?#&= \\\\é:@!$'()*+,;~_-]{0,40}",
            lb_scheme in proptest::bool::ANY,
            secure in proptest::bool::ANY,
        ) {
            let given = if lb_scheme { "lb" } else { "http" };
            let Ok(given) = Url::parse(&format!("{given}://svc/{rest}")) else {
                return Ok(());
            };
            let scheme = if secure { "https" } else { "http" };
            let i = instance("10.0.0.1", 8080, secure);
            let lb = balancer(i.clone());
            let picked = lb.pick().unwrap();
            let ours = rewrite(&given, scheme, &picked).unwrap();
            proptest::prop_assert_eq!(ours, reparsed(&given, scheme, &i));
        }
    }
}
