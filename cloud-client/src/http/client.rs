//! [`LbHttpClient`]: `lb://service/...` (and `http://service/...` when the
//! registry knows `service`) resolved through the registry cache and the
//! balancer, each attempt guarded by the service's circuit breaker and the
//! per-call timeout, retried with a budget when that is safe.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use arc_swap::ArcSwap;
use circuit_breaker::{Backoff, CircuitBreaker, CircuitBreakerConfig, Classification, RetryBudget};
use reqwest::{Method, Request, Response, Url};

use super::error::{HttpError, Kind};
use super::trace::{TRACEPARENT, TraceContext};
use crate::discovery::{DiscoveryClient, ServiceInstance};
use crate::loadbalancer::{LoadBalancer, Outcome, OutlierConfig, Strategy};

/// Where the client finds the instances of a service.
pub trait InstanceSource: Send + Sync + 'static {
    /// Every instance of `service` (any status); `None` when the service is
    /// unknown.
    fn instances(&self, service: &str) -> Option<Arc<[ServiceInstance]>>;
}

impl InstanceSource for DiscoveryClient {
    fn instances(&self, service: &str) -> Option<Arc<[ServiceInstance]>> {
        let all = self.all_instances(service);
        (!all.is_empty()).then_some(all)
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

impl InstanceSource for StaticInstances {
    fn instances(&self, service: &str) -> Option<Arc<[ServiceInstance]>> {
        self.services.get(&service.to_ascii_lowercase()).cloned()
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
    lb: LoadBalancer,
    breaker: CircuitBreaker,
    budget: RetryBudget,
}

struct Inner {
    http: reqwest::Client,
    source: Arc<dyn InstanceSource>,
    config: HttpClientConfig,
    /// Per-service state, read without a lock; a new service copies the map.
    services: ArcSwap<HashMap<String, Arc<ServiceState>>>,
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

/// The URL with its scheme, host and port replaced by the instance's.
fn rewrite(url: &Url, scheme: &str, instance: &ServiceInstance) -> Result<Url, HttpError> {
    let host = if instance.host.contains(':') && !instance.host.starts_with('[') {
        format!("[{}]", instance.host)
    } else {
        instance.host.clone()
    };
    let mut text = format!("{scheme}://{host}:{}{}", instance.port, url.path());
    if let Some(q) = url.query() {
        text.push('?');
        text.push_str(q);
    }
    Url::parse(&text)
        .map_err(|e| HttpError::new(Kind::InvalidUrl, Some(&instance.app)).with_source(e))
}

impl LbHttpClient {
    /// A client resolving services through `source` (usually a
    /// [`DiscoveryClient`]).
    pub fn new(source: impl InstanceSource, config: HttpClientConfig) -> Result<Self, HttpError> {
        let http = reqwest::Client::builder()
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
            }),
        }
    }

    /// The underlying `reqwest` client, to build requests with
    /// (`client.reqwest().get("lb://users/1").build()`).
    pub fn reqwest(&self) -> &reqwest::Client {
        &self.inner.http
    }

    /// `GET url`.
    pub async fn get(&self, url: &str) -> Result<Response, HttpError> {
        let req = self
            .inner
            .http
            .get(url)
            .build()
            .map_err(|e| HttpError::new(Kind::InvalidUrl, None).with_source(e))?;
        self.execute(req).await
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

    fn state(&self, service: &str) -> Result<Arc<ServiceState>, HttpError> {
        // Service names are usually lower case already: no copy to look up.
        if !service.bytes().any(|b| b.is_ascii_uppercase())
            && let Some(s) = self.inner.services.load().get(service)
        {
            return Ok(Arc::clone(s));
        }
        let key = service.to_ascii_lowercase();
        if let Some(s) = self.inner.services.load().get(&key) {
            return Ok(Arc::clone(s));
        }
        let c = &self.inner.config;
        let breaker = CircuitBreaker::new(key.as_str(), c.breaker.clone())
            .map_err(|e| HttpError::new(Kind::InvalidUrl, Some(service)).with_source(e))?;
        let state = Arc::new(ServiceState {
            lb: LoadBalancer::with_outlier(c.strategy.clone(), c.outlier),
            breaker,
            budget: RetryBudget::new(c.retry_budget_ratio, c.retry_budget_burst),
        });
        // Two first calls may race: the state stored first wins for both.
        // `rcu` returns the map as it was before this insert: it holds the
        // racer's state if that came first; otherwise ours went in.
        let before = self.inner.services.rcu(|map| {
            let mut next = HashMap::clone(map);
            next.entry(key.clone())
                .or_insert_with(|| Arc::clone(&state));
            next
        });
        let stored = before.get(&key).cloned();
        Ok(stored.unwrap_or(state))
    }

    /// Sends `req`. `lb://service/...` always goes through the registry;
    /// `http(s)://host/...` does when the registry knows `host`, and is
    /// sent as is otherwise. Any HTTP response is `Ok`, 5xx included (after
    /// the retries it was allowed); `Err` means no response.
    pub async fn execute(&self, req: Request) -> Result<Response, HttpError> {
        let url = req.url();
        let Some(service) = url.host_str().map(str::to_owned) else {
            return Err(HttpError::new(Kind::InvalidUrl, None));
        };
        let lb = url.scheme().eq_ignore_ascii_case("lb");
        let instances = self.inner.source.instances(&service);
        match (lb, instances) {
            (true, None) => Err(HttpError {
                safe_to_retry: true,
                ..HttpError::new(Kind::NoInstance, Some(&service))
            }),
            (false, None) => self.direct(req).await,
            (_, Some(list)) => {
                let state = self.state(&service)?;
                state.lb.update(&list);
                self.balanced(&state, &service, lb, req).await
            }
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
        let sent =
            tokio::time::timeout(self.inner.config.timeout, self.inner.http.execute(req)).await;
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

    async fn balanced(
        &self,
        state: &ServiceState,
        service: &str,
        lb: bool,
        req: Request,
    ) -> Result<Response, HttpError> {
        let c = &self.inner.config;
        let idempotent = is_idempotent(req.method());
        let url = req.url().clone();
        let mut original = Some(req);
        state.budget.deposit();
        let mut attempt: u32 = 0;
        loop {
            attempt += 1;
            let permit = match state.breaker.try_acquire_owned() {
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
            let instance = picked.instance();
            let scheme = if lb {
                if instance.secure { "https" } else { "http" }
            } else {
                url.scheme()
            };
            // Keep the original for a retry when the body can be cloned.
            let mut this = match original.as_ref().and_then(Request::try_clone) {
                Some(copy) => copy,
                None => match original.take() {
                    Some(r) => r,
                    None => return Err(HttpError::new(Kind::InvalidUrl, Some(service))),
                },
            };
            *this.url_mut() = rewrite(&url, scheme, instance)?;
            add_traceparent(&mut this);
            let sent = tokio::time::timeout(c.timeout, self.inner.http.execute(this)).await;
            let (failure, retryable) = match sent {
                Ok(Ok(resp)) => {
                    if !resp.status().is_server_error() {
                        permit.record(Classification::Success);
                        picked.record(Outcome::Success);
                        return Ok(resp);
                    }
                    permit.record(Classification::Failure);
                    picked.record(Outcome::Failure);
                    if !(idempotent && self.may_retry(state, attempt, &original)) {
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
                if !retryable || attempt >= c.max_attempts || original.is_none() {
                    return Err(err);
                }
                if !state.budget.try_withdraw() {
                    err.budget_spent = true;
                    return Err(err);
                }
                tracing::debug!(%service, error = %err, attempt, "retrying");
            }
            let delay = c.backoff.delay(attempt, rand::random::<f64>());
            tokio::time::sleep(delay).await;
        }
    }

    /// Whether another attempt may follow a retryable server error.
    fn may_retry(&self, state: &ServiceState, attempt: u32, original: &Option<Request>) -> bool {
        attempt < self.inner.config.max_attempts
            && original.is_some()
            && state.budget.try_withdraw()
    }
}

/// Sets `traceparent`, unless the request carries one: a child of the
/// current task's trace, else a new trace.
fn add_traceparent(req: &mut Request) {
    if req.headers().contains_key(TRACEPARENT) {
        return;
    }
    let ctx = TraceContext::current()
        .map(|c| c.child())
        .unwrap_or_else(TraceContext::new_root);
    if let Ok(v) = reqwest::header::HeaderValue::from_bytes(&ctx.encode()) {
        req.headers_mut().insert(TRACEPARENT, v);
    }
}

fn transport_error(e: reqwest::Error, service: Option<&str>, idempotent: bool) -> HttpError {
    let (kind, safe) = if e.is_connect() {
        (Kind::Connect, true)
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
