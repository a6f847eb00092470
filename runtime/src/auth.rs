//! HTTP Basic authentication as a tower layer, the same for every server:
//! one constant-time comparison, the scheme read case-insensitively (RFC
//! 7235), a `401` with `WWW-Authenticate` and a Spring-shaped JSON body, and
//! failed attempts logged with the client's address at most once a second
//! (with the count of those not logged).
//!
//! ```
//! use axum::{Router, routing::get};
//! use cloud_runtime::auth::{BasicAuthLayer, Credentials};
//!
//! let auth = BasicAuthLayer::new(Credentials::new("admin", "secret"), "eureka")
//!     .exempt("/actuator/health");
//! let app: Router = Router::new().route("/", get(|| async { "hi" })).layer(auth);
//! ```

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::extract::ConnectInfo;
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use futures::future::{Either, Ready, ready};
use http::{HeaderMap, HeaderValue, Request, StatusCode, header};
use parking_lot::Mutex;
use tokio::time::Instant;
use tower::{Layer, Service};

use crate::error_body::SpringError;

/// `spring.security.user.*`, as Spring Boot names a server's one user: the
/// Basic credentials of its protected endpoints, none while `name` is
/// empty.
#[derive(Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(default, rename_all = "kebab-case")]
pub struct UserSettings {
    /// `name`. Default is empty (no authentication).
    pub name: String,
    /// `password`. Default is empty.
    pub password: String,
}

impl UserSettings {
    /// The credentials, when a user is named.
    pub fn credentials(&self) -> Option<Credentials> {
        (!self.name.is_empty()).then(|| Credentials::new(&self.name, &self.password))
    }
}

impl std::fmt::Debug for UserSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UserSettings")
            .field("name", &self.name)
            .field("password", &"***")
            .finish()
    }
}

/// A user name and password.
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    username: String,
    password: String,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials")
            .field("username", &self.username)
            .field("password", &"***")
            .finish()
    }
}

impl Credentials {
    /// Credentials of `username` with `password`.
    pub fn new(username: impl Into<String>, password: impl Into<String>) -> Credentials {
        Credentials {
            username: username.into(),
            password: password.into(),
        }
    }

    /// The user name.
    pub fn username(&self) -> &str {
        &self.username
    }

    /// `Basic <base64(user:password)>`: the value a client sends in
    /// `Authorization` (or `Proxy-Authorization`) with these credentials.
    pub fn basic_value(&self) -> String {
        let pair = format!("{}:{}", self.username, self.password);
        format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(pair)
        )
    }

    /// Whether `headers` carry these credentials in `Authorization: Basic`.
    /// The comparison takes the same time wherever the first difference is.
    pub fn admit(&self, headers: &HeaderMap) -> bool {
        let Some(presented) = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(basic_token)
            .and_then(|b64| base64::engine::general_purpose::STANDARD.decode(b64).ok())
        else {
            return false;
        };
        let mut expected = Vec::with_capacity(self.username.len() + 1 + self.password.len());
        expected.extend_from_slice(self.username.as_bytes());
        expected.push(b':');
        expected.extend_from_slice(self.password.as_bytes());
        constant_time_eq(&presented, &expected)
    }
}

/// The token of `Basic <token>`, with the scheme in any case.
fn basic_token(value: &str) -> Option<&str> {
    let (scheme, token) = value.trim().split_once(' ')?;
    scheme.eq_ignore_ascii_case("basic").then(|| token.trim())
}

/// Compares in time that depends only on the lengths.
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    let mut diff = a.len() ^ b.len();
    for (x, y) in a.iter().zip(b.iter().cycle()) {
        diff |= usize::from(x ^ y);
    }
    diff == 0
}

struct Shared {
    credentials: Credentials,
    challenge: HeaderValue,
    exempt: Vec<String>,
    failures: AtomicU64,
    last_report: Mutex<Option<(Instant, u64)>>,
}

impl Shared {
    fn is_exempt(&self, path: &str) -> bool {
        self.exempt.iter().any(|p| {
            path == p
                || path
                    .strip_prefix(p.as_str())
                    .is_some_and(|r| r.starts_with('/'))
        })
    }

    /// Logs a failure, at most once a second with the count since the last line.
    fn report_failure(&self, peer: Option<SocketAddr>, path: &str) {
        let total = self.failures.fetch_add(1, Ordering::Relaxed) + 1;
        let now = Instant::now();
        let mut last = self.last_report.lock();
        let due = last.is_none_or(|(at, _)| now.duration_since(at) >= Duration::from_secs(1));
        if due {
            let since = total - last.map_or(0, |(_, count)| count);
            *last = Some((now, total));
            drop(last);
            let client = peer.map_or_else(|| "unknown".to_owned(), |p| p.ip().to_string());
            tracing::warn!(%client, path, failures_since_last_report = since, failures_total = total, "rejected request without valid Basic credentials");
        }
    }
}

/// Requires the configured credentials on every path but the exempt ones.
#[derive(Clone)]
pub struct BasicAuthLayer {
    shared: Arc<Shared>,
}

impl std::fmt::Debug for BasicAuthLayer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BasicAuthLayer")
            .field("credentials", &self.shared.credentials)
            .field("exempt", &self.shared.exempt)
            .finish()
    }
}

impl BasicAuthLayer {
    /// Requires `credentials`, naming `realm` in the challenge.
    pub fn new(credentials: Credentials, realm: &str) -> BasicAuthLayer {
        let realm: String = realm
            .chars()
            .filter(|c| *c != '"' && !c.is_control())
            .collect();
        let challenge = HeaderValue::from_str(&format!("Basic realm=\"{realm}\""))
            .unwrap_or_else(|_| HeaderValue::from_static("Basic"));
        BasicAuthLayer {
            shared: Arc::new(Shared {
                credentials,
                challenge,
                exempt: Vec::new(),
                failures: AtomicU64::new(0),
                last_report: Mutex::new(None),
            }),
        }
    }

    /// Lets `path` and everything below it through without credentials.
    pub fn exempt(mut self, path: &str) -> BasicAuthLayer {
        if let Some(shared) = Arc::get_mut(&mut self.shared) {
            shared.exempt.push(path.trim_end_matches('/').to_owned());
        }
        self
    }

    /// Requests refused so far.
    pub fn failures(&self) -> u64 {
        self.shared.failures.load(Ordering::Relaxed)
    }

    /// Whether `headers` carry the credentials (to show details to
    /// authorized callers of an open endpoint, as Spring's
    /// `show-details: when-authorized`).
    pub fn admits(&self, headers: &HeaderMap) -> bool {
        self.shared.credentials.admit(headers)
    }
}

impl<S> Layer<S> for BasicAuthLayer {
    type Service = RequireBasicAuth<S>;

    fn layer(&self, inner: S) -> RequireBasicAuth<S> {
        RequireBasicAuth {
            inner,
            shared: Arc::clone(&self.shared),
        }
    }
}

/// The service of [`BasicAuthLayer`].
#[derive(Clone)]
pub struct RequireBasicAuth<S> {
    inner: S,
    shared: Arc<Shared>,
}

impl<S> std::fmt::Debug for RequireBasicAuth<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RequireBasicAuth").finish_non_exhaustive()
    }
}

impl<S, B> Service<Request<B>> for RequireBasicAuth<S>
where
    S: Service<Request<B>, Response = Response, Error = Infallible>,
{
    type Response = Response;
    type Error = Infallible;
    type Future = Either<S::Future, Ready<Result<Response, Infallible>>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<B>) -> Self::Future {
        let path = request.uri().path();
        if self.shared.is_exempt(path) || self.shared.credentials.admit(request.headers()) {
            return Either::Left(self.inner.call(request));
        }
        let peer = request
            .extensions()
            .get::<ConnectInfo<SocketAddr>>()
            .map(|c| c.0);
        self.shared.report_failure(peer, path);
        let mut response = SpringError::new(
            StatusCode::UNAUTHORIZED,
            "Full authentication is required to access this resource",
        )
        .at(path)
        .into_response();
        response
            .headers_mut()
            .insert(header::WWW_AUTHENTICATE, self.shared.challenge.clone());
        Either::Right(ready(Ok(response)))
    }
}

#[cfg(test)]
mod tests {
    use axum::Router;
    use axum::body::Body;
    use axum::routing::get;
    use tower::ServiceExt as _;

    use super::*;

    fn app() -> (Router, BasicAuthLayer) {
        let layer = BasicAuthLayer::new(Credentials::new("admin", "s3cret"), "test")
            .exempt("/actuator/health");
        let router = Router::new()
            .route("/private", get(|| async { "private" }))
            .route("/actuator/health", get(|| async { "UP" }))
            .route("/actuator/health/liveness", get(|| async { "UP" }))
            .layer(layer.clone());
        (router, layer)
    }

    fn basic(user_pass: &str, scheme: &str) -> String {
        format!(
            "{scheme} {}",
            base64::engine::general_purpose::STANDARD.encode(user_pass)
        )
    }

    async fn status(router: &Router, path: &str, auth: Option<String>) -> (StatusCode, HeaderMap) {
        let mut req = Request::get(path);
        if let Some(a) = auth {
            req = req.header(header::AUTHORIZATION, a);
        }
        let resp = router
            .clone()
            .oneshot(req.body(Body::empty()).unwrap())
            .await
            .unwrap();
        (resp.status(), resp.headers().clone())
    }

    #[test]
    fn the_basic_value_is_what_admit_accepts() {
        let c = Credentials::new("Aladdin", "open sesame");
        assert_eq!(c.basic_value(), "Basic QWxhZGRpbjpvcGVuIHNlc2FtZQ==");
        let mut h = HeaderMap::new();
        h.insert(
            header::AUTHORIZATION,
            HeaderValue::from_str(&c.basic_value()).unwrap(),
        );
        assert!(c.admit(&h));
    }

    #[tokio::test]
    async fn right_credentials_pass_in_any_scheme_case() {
        let (router, _) = app();
        for scheme in ["Basic", "basic", "BASIC"] {
            let (s, _) = status(&router, "/private", Some(basic("admin:s3cret", scheme))).await;
            assert_eq!(s, StatusCode::OK, "{scheme}");
        }
    }

    #[tokio::test]
    async fn wrong_or_missing_credentials_get_a_challenge_and_are_counted() {
        let (router, layer) = app();
        for auth in [
            None,
            Some(basic("admin:wrong", "Basic")),
            Some(basic("admin", "Basic")),
            Some("Bearer x".into()),
        ] {
            let (s, h) = status(&router, "/private", auth).await;
            assert_eq!(s, StatusCode::UNAUTHORIZED);
            assert_eq!(h[header::WWW_AUTHENTICATE], "Basic realm=\"test\"");
            assert_eq!(h[header::CONTENT_TYPE], "application/json");
        }
        assert_eq!(layer.failures(), 4);
    }

    #[tokio::test]
    async fn exempt_paths_and_their_children_stay_open() {
        let (router, _) = app();
        assert_eq!(
            status(&router, "/actuator/health", None).await.0,
            StatusCode::OK
        );
        assert_eq!(
            status(&router, "/actuator/health/liveness", None).await.0,
            StatusCode::OK
        );
    }

    #[test]
    fn constant_time_eq_compares_whole_slices() {
        assert!(constant_time_eq(b"abc", b"abc"));
        assert!(!constant_time_eq(b"abc", b"abd"));
        assert!(!constant_time_eq(b"abc", b"abcd"));
        assert!(!constant_time_eq(b"", b"a"));
        assert!(constant_time_eq(b"", b""));
    }
}
