//! The HTTP API: thin handlers between the wire and [`Environments`].
//!
//! Layers, outermost first: a counter of refused credentials, Basic auth
//! (`cloud_runtime::auth`, when configured; the health group is exempt),
//! then the router. Config paths are parsed by hand from the raw request
//! path in [`crate::paths`] so that traversal checks see the text as sent.
//! The watch stream lives in `sse`.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::{HeaderMap, Method, StatusCode, Uri, header};
use axum::middleware;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use cloud_runtime::auth::BasicAuthLayer;
use cloud_runtime::shutdown::Shutdown;
use serde_json::json;
use tokio::sync::Notify;

use crate::environments::{EnvError, EnvRequest, Environments, Resolved};
use crate::limits::{LimitExceeded, LimitReason};
use crate::metrics::Metrics;
use crate::monitor::{self, MonitorError};
use crate::paths::{self, ConfigPath, PathError};
use crate::render::{self, RenderError};
use crate::resolve::placeholder::PlaceholderError;

mod error;
mod sse;

pub use error::AppError;

/// The media type Spring's Java client asks for by default.
pub const V2_MEDIA_TYPE: &str = "application/vnd.spring-cloud.config-server.v2+json";

/// Shared state of the handlers.
#[derive(Clone)]
pub struct AppState {
    /// The environment service.
    pub envs: Arc<Environments>,
    /// Counters.
    pub metrics: Arc<Metrics>,
    /// Woken by `/monitor` to fetch at once.
    pub refresh_now: Arc<Notify>,
    /// Shared secret for webhooks.
    pub monitor_secret: Option<String>,
    /// Basic auth for everything but the health group, when configured.
    pub auth: Option<BasicAuthLayer>,
    /// The server's shutdown: watch streams and the refresher end on it.
    pub shutdown: Shutdown,
}

/// The router's state: one `Arc`, so that a request clones a pointer.
type Shared = Arc<AppState>;

impl std::fmt::Debug for AppState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppState")
            .field("envs", &self.envs)
            .finish()
    }
}

impl From<PathError> for AppError {
    fn from(e: PathError) -> Self {
        match e {
            PathError::NotFound => Self::new(StatusCode::NOT_FOUND, "no such resource"),
            PathError::Invalid(why) => Self::new(StatusCode::BAD_REQUEST, why),
        }
    }
}

impl From<EnvError> for AppError {
    fn from(e: EnvError) -> Self {
        if let EnvError::Limit(l) = &e {
            l.into()
        } else if e.is_no_such_label() {
            Self::new(StatusCode::NOT_FOUND, e.to_string())
        } else if e.is_unavailable() {
            Self::new(StatusCode::SERVICE_UNAVAILABLE, e.to_string())
        } else {
            tracing::error!(error = %e, "environment failed");
            Self::new(StatusCode::INTERNAL_SERVER_ERROR, "repository error")
        }
    }
}

impl From<&LimitExceeded> for AppError {
    fn from(e: &LimitExceeded) -> Self {
        let status = if e.is_body_too_large() {
            StatusCode::PAYLOAD_TOO_LARGE
        } else {
            StatusCode::BAD_REQUEST
        };
        Self::new(status, e.to_string())
    }
}

/// Counts a tripped limit and answers it (413 for a body, else 400).
fn limit_error(st: &AppState, e: &LimitExceeded) -> AppError {
    st.metrics.limit_tripped(e.reason());
    e.into()
}

/// A placeholder cycle or bound is the client's 400, as Spring's
/// `EnvironmentController` answers the `IllegalArgumentException` of a
/// circular placeholder; counted under its reason.
fn placeholder_error(st: &AppState, e: &PlaceholderError) -> AppError {
    st.metrics.limit_tripped(e.reason());
    tracing::warn!(error = %e, "placeholders could not be resolved");
    AppError::new(StatusCode::BAD_REQUEST, e.to_string())
}

/// A merged view that could not be written.
fn render_error(st: &AppState, e: RenderError) -> AppError {
    match e {
        RenderError::Placeholder(p) => placeholder_error(st, &p),
        e => {
            tracing::error!(error = %e, "render failed");
            AppError::new(StatusCode::INTERNAL_SERVER_ERROR, "render failed")
        }
    }
}

/// How much of a refused body is still read (and dropped) so that the
/// client, still sending, gets the 413 instead of a reset connection.
/// Larger bodies are refused without reading them.
const REFUSED_BODY_DRAIN: u64 = 4 << 20;

/// Reads a request body of at most `limit` bytes (`setting` names the
/// bound). A larger body is refused (413) as soon as its `Content-Length`
/// or its bytes so far exceed the bound; the rest is read and dropped up to
/// [`REFUSED_BODY_DRAIN`] bytes, never kept.
async fn read_body(
    st: &AppState,
    body: Body,
    headers: &HeaderMap,
    limit: usize,
    setting: &'static str,
) -> Result<Bytes, AppError> {
    use futures::StreamExt;
    let too_large = || {
        limit_error(
            st,
            &LimitExceeded::new(LimitReason::BodyTooLarge, setting, limit),
        )
    };
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > REFUSED_BODY_DRAIN) {
        return Err(too_large());
    }
    let mut stream = body.into_data_stream();
    let mut out = bytes::BytesMut::new();
    let mut seen = 0u64;
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|e| {
            tracing::debug!(error = %e, "request body could not be read");
            AppError::new(StatusCode::BAD_REQUEST, "request body could not be read")
        })?;
        seen += chunk.len() as u64;
        if seen > REFUSED_BODY_DRAIN {
            break;
        }
        if seen <= limit as u64 {
            out.extend_from_slice(&chunk);
        } else {
            // Over the bound: keep reading only to drain.
            out.clear();
        }
    }
    if seen > limit as u64 {
        return Err(too_large());
    }
    Ok(out.freeze())
}

/// Builds the router.
pub fn app(state: AppState) -> Router {
    let router = Router::new()
        .route("/actuator/health", get(health))
        .route("/actuator/health/liveness", get(liveness))
        .route("/actuator/health/readiness", get(readiness))
        .route("/actuator/prometheus", get(prometheus))
        .route("/encrypt/status", get(encrypt_status))
        // Spring's public-key endpoint; a symmetric key has none. Other
        // methods are config reads (an application may be called `key`).
        .route("/key", get(no_public_key).fallback(config_resource))
        .route("/encrypt", post(encrypt))
        .route("/decrypt", post(decrypt))
        // Spring's per-application forms; there is one key, so the
        // application and profiles only need to be valid names.
        // Other methods on these paths are config reads (an application
        // may be called `encrypt`), hence the fallbacks.
        .route(
            "/encrypt/{name}/{profiles}",
            post(encrypt_for).fallback(config_resource),
        )
        .route(
            "/decrypt/{name}/{profiles}",
            post(decrypt_for).fallback(config_resource),
        )
        .route("/monitor", post(monitor_hook))
        // `text/event-stream` asks for the watch stream; anything else is a
        // config read, so an application may be called `watch`.
        .route("/watch/{*rest}", get(watch_or_config))
        .fallback(config_resource);
    let auth = state.auth.clone();
    let metrics = state.metrics.clone();
    let router = router.with_state(Arc::new(state));
    match auth {
        Some(auth) => router
            .layer(auth)
            .layer(middleware::map_response_with_state(
                metrics,
                count_refused_credentials,
            )),
        None => router,
    }
}

/// Counts the requests that Basic auth refused (401 with a challenge) for
/// `/actuator/prometheus`.
async fn count_refused_credentials(
    State(metrics): State<Arc<Metrics>>,
    resp: Response,
) -> Response {
    if resp.status() == StatusCode::UNAUTHORIZED
        && resp.headers().contains_key(header::WWW_AUTHENTICATE)
    {
        metrics.rejected.fetch_add(1, Ordering::Relaxed);
    }
    resp
}

/// `/actuator/health/liveness`: UP while the process answers at all.
async fn liveness() -> Response {
    axum::Json(json!({ "status": "UP" })).into_response()
}

/// Whether the server takes traffic: every repository has a commit to
/// serve.
fn is_ready(st: &AppState) -> bool {
    st.envs.is_serving()
}

fn status_text(up: bool) -> &'static str {
    if up { "UP" } else { "DOWN" }
}

/// A health answer: 200 when UP, 503 when DOWN (as Spring Boot's health
/// endpoint).
fn health_response(up: bool, body: serde_json::Value) -> Response {
    let status = if up {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (status, axum::Json(body)).into_response()
}

/// `/actuator/health/readiness`: UP while the server can serve a commit
/// (the last good one when the remote is unreachable); DOWN before the
/// first clone.
async fn readiness(State(st): State<Shared>) -> Response {
    let up = is_ready(&st);
    health_response(up, json!({ "status": status_text(up) }))
}

/// `/actuator/health`: the aggregate follows readiness, not the remote: a
/// server that serves its last good commit stays UP so that registries and
/// load balancers keep it, while the `repository` component reports the
/// remote DOWN with the commit served and the age of the last fetch.
async fn health(State(st): State<Shared>) -> Response {
    let repos = st.envs.repos();
    let default = repos.default_repo().backend.health();
    let others: serde_json::Map<String, serde_json::Value> = repos
        .all()
        .skip(1)
        .map(|r| (r.name.clone(), repository_health(&r.backend.health())))
        .collect();
    let up = is_ready(&st);
    let mut components = json!({
        "livenessState": { "status": "UP" },
        "readinessState": { "status": status_text(up) },
        "repository": repository_health(&default),
    });
    if !others.is_empty() {
        components["repositories"] = serde_json::Value::Object(others);
    }
    health_response(
        up,
        json!({ "status": status_text(up), "components": components }),
    )
}

/// One repository's health component.
fn repository_health(h: &crate::backend::BackendHealth) -> serde_json::Value {
    json!({
        "status": h.status,
        "repository": h.repository,
        "lastGoodCommit": h.last_good_commit,
        "lastSuccessfulRefresh": h.last_successful_refresh,
        "lastSuccessfulRefreshAgeSeconds": h.last_successful_refresh_age_seconds,
        "lastError": h.last_error,
    })
}

async fn prometheus(State(st): State<Shared>) -> Response {
    (
        [(
            header::CONTENT_TYPE,
            cloud_runtime::prometheus::CONTENT_TYPE,
        )],
        st.metrics.render(),
    )
        .into_response()
}

fn no_key() -> Response {
    (
        StatusCode::NOT_FOUND,
        axum::Json(json!({"description": "No key was installed for encryption service", "status": "NO_KEY"})),
    )
        .into_response()
}

async fn encrypt_status(State(st): State<Shared>) -> Response {
    match st.envs.encryptor() {
        Some(_) => axum::Json(json!({"status": "OK"})).into_response(),
        None => no_key(),
    }
}

/// What `/encrypt` and `/decrypt` answer when the input cannot be used:
/// 400 `{"status":"INVALID",...}`, as Spring's `InvalidCipherException`.
fn invalid_cipher() -> Response {
    (
        StatusCode::BAD_REQUEST,
        axum::Json(json!({"description": "Text not encrypted with this key", "status": "INVALID"})),
    )
        .into_response()
}

/// The text of an encrypt/decrypt body, as Spring's `stripFormData` reads
/// it. A body that ends with `=` and is not sent as `text/plain` is taken
/// for a form body (`curl -d` sends `application/x-www-form-urlencoded`
/// and the whole text becomes a key with an empty value): it is
/// URL-decoded and the trailing `=` dropped. For `/decrypt`, spaces
/// (decoded `+`) go back to `+` and the `=` is dropped only when the rest
/// is hex, so base64 padding survives. `text/plain` bodies are taken as
/// they are.
fn body_text(headers: &HeaderMap, body: &Bytes, cipher: bool) -> Option<String> {
    let text = std::str::from_utf8(body).ok()?;
    let plain = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|v| v.trim().eq_ignore_ascii_case("text/plain"));
    if plain || !text.ends_with('=') {
        return Some(text.to_string());
    }
    let decoded = crate::monitor::form_decode(text)?;
    if !cipher {
        return Some(decoded.strip_suffix('=').unwrap_or(&decoded).to_string());
    }
    let decoded = decoded.replace(' ', "+");
    match decoded.strip_suffix('=') {
        Some(candidate) if hex::decode(candidate).is_ok() => Some(candidate.to_string()),
        _ => Some(decoded),
    }
}

/// `GET /key`: Spring answers the RSA public key here; with a symmetric
/// key there is none, and Spring's answer is this 404.
async fn no_public_key() -> Response {
    (
        StatusCode::NOT_FOUND,
        axum::Json(json!({"description": "No public key available", "status": "NOT_FOUND"})),
    )
        .into_response()
}

/// Spring's `@RequestBody String` refuses an empty body with a 400.
fn missing_body(path: &str) -> Response {
    AppError::new(StatusCode::BAD_REQUEST, "required request body is missing")
        .at(path)
        .into_response()
}

/// Reads an `/encrypt` or `/decrypt` body within `max_crypto_body_bytes`.
async fn crypto_body(
    st: &AppState,
    headers: &HeaderMap,
    body: Body,
    path: &str,
) -> Result<Bytes, Response> {
    let limit = st.envs.limits().crypto_body_bytes;
    read_body(st, body, headers, limit, "max_crypto_body_bytes")
        .await
        .map_err(|e| e.at(path).into_response())
}

async fn encrypt(State(st): State<Shared>, headers: HeaderMap, body: Body) -> Response {
    let Some(enc) = st.envs.encryptor() else {
        return no_key();
    };
    let body = match crypto_body(&st, &headers, body, "/encrypt").await {
        Ok(b) => b,
        Err(r) => return r,
    };
    if body.is_empty() {
        return missing_body("/encrypt");
    }
    match body_text(&headers, &body, false) {
        Some(text) => text_response(enc.encrypt(&text)),
        None => invalid_cipher(),
    }
}

async fn decrypt(State(st): State<Shared>, headers: HeaderMap, body: Body) -> Response {
    let Some(enc) = st.envs.encryptor() else {
        return no_key();
    };
    let body = match crypto_body(&st, &headers, body, "/decrypt").await {
        Ok(b) => b,
        Err(r) => return r,
    };
    if body.is_empty() {
        return missing_body("/decrypt");
    }
    let Some(text) = body_text(&headers, &body, true) else {
        return invalid_cipher();
    };
    let text = text.trim();
    let text = text
        .strip_prefix(crate::crypto::CIPHER_PREFIX)
        .unwrap_or(text);
    match enc.decrypt(text) {
        Ok(plain) => text_response(plain),
        Err(_) => invalid_cipher(),
    }
}

fn text_response(text: String) -> Response {
    ([(header::CONTENT_TYPE, "text/plain;charset=UTF-8")], text).into_response()
}

async fn encrypt_for(
    State(st): State<Shared>,
    uri: Uri,
    headers: HeaderMap,
    body: Body,
) -> Response {
    when_named_path_is_valid(&uri, encrypt(State(st), headers, body)).await
}

async fn decrypt_for(
    State(st): State<Shared>,
    uri: Uri,
    headers: HeaderMap,
    body: Body,
) -> Response {
    when_named_path_is_valid(&uri, decrypt(State(st), headers, body)).await
}

/// Answers with `answer` once the names in `uri` pass the usual checks.
async fn when_named_path_is_valid(
    uri: &Uri,
    answer: impl std::future::Future<Output = Response>,
) -> Response {
    match check_named_crypto_path(uri) {
        Ok(()) => answer.await,
        Err(e) => e.into_response(),
    }
}

/// `/encrypt/{name}/{profiles}`: the names must pass the usual checks.
fn check_named_crypto_path(uri: &Uri) -> Result<(), AppError> {
    check_target(uri)?;
    let rest = uri
        .path()
        .split_once('/')
        .and_then(|(_, r)| r.split_once('/'))
        .map(|(_, r)| r)
        .unwrap_or("");
    match paths::parse(&format!("/{rest}"))? {
        ConfigPath::Environment(_) => Ok(()),
        _ => Err(PathError::NotFound.into()),
    }
}

async fn monitor_hook(State(st): State<Shared>, headers: HeaderMap, body: Body) -> Response {
    let limits = *st.envs.limits();
    let body = match read_body(
        &st,
        body,
        &headers,
        limits.monitor_body_bytes,
        "max_monitor_body_bytes",
    )
    .await
    {
        Ok(b) => b,
        Err(e) => return e.at("/monitor").into_response(),
    };
    if let Some(secret) = &st.monitor_secret
        && let Err(e) = monitor::verify(secret, &headers, &body)
    {
        return AppError::new(StatusCode::UNAUTHORIZED, e.to_string())
            .at("/monitor")
            .into_response();
    }
    // GitHub and Gitea send a ping when a hook is created.
    let ping = ["x-github-event", "x-gitea-event", "x-gogs-event"]
        .iter()
        .any(|h| headers.get(*h).is_some_and(|v| v == "ping"));
    if ping {
        return axum::Json(Vec::<String>::new()).into_response();
    }
    let apps = monitor::changed_paths(&headers, &body, &limits)
        .and_then(|paths| monitor::applications(&paths, &limits));
    match apps {
        Ok(apps) => {
            st.metrics.webhooks.fetch_add(1, Ordering::Relaxed);
            tracing::info!(
                count = apps.len(),
                apps = ?monitor::log_preview(&apps),
                "webhook: refreshing"
            );
            st.refresh_now.notify_one();
            axum::Json(apps).into_response()
        }
        Err(MonitorError::Limit(e)) => limit_error(&st, &e).at("/monitor").into_response(),
        Err(e @ MonitorError::BadPayload) => AppError::new(StatusCode::BAD_REQUEST, e.to_string())
            .at("/monitor")
            .into_response(),
        Err(e) => AppError::new(StatusCode::UNAUTHORIZED, e.to_string())
            .at("/monitor")
            .into_response(),
    }
}

fn wants_v2(headers: &HeaderMap) -> bool {
    headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains(V2_MEDIA_TYPE))
}

fn query_flag(uri: &Uri, name: &str) -> Option<bool> {
    uri.query()?.split('&').find_map(|kv| {
        let (k, v) = kv.split_once('=').unwrap_or((kv, "true"));
        (k == name).then(|| v != "false")
    })
}

/// Rejects a raw request target carrying a fragment or NUL.
fn check_target(uri: &Uri) -> Result<(), AppError> {
    let target = uri.path_and_query().map(|p| p.as_str()).unwrap_or("");
    if target.contains('#') || target.contains('\0') {
        return Err(AppError::new(StatusCode::BAD_REQUEST, "invalid path"));
    }
    Ok(())
}

fn environment_content_type(headers: &HeaderMap) -> &'static str {
    if wants_v2(headers) {
        V2_MEDIA_TYPE
    } else {
        "application/json"
    }
}

fn environment_response(headers: &HeaderMap, resolved: &Resolved) -> Response {
    (
        [(header::CONTENT_TYPE, environment_content_type(headers))],
        Body::from(resolved.json.clone()),
    )
        .into_response()
}

/// Whether the request asks for Server-Sent Events.
fn wants_event_stream(headers: &HeaderMap) -> bool {
    headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains("text/event-stream"))
}

/// `/watch/...`: the watch stream for `Accept: text/event-stream` (what
/// every SSE client sends), otherwise a config read of an application
/// named `watch`.
async fn watch_or_config(State(st): State<Shared>, request: Request) -> Response {
    if !wants_event_stream(request.headers()) {
        return config_resource(State(st), request).await;
    }
    let uri = request.uri().clone();
    let path = uri.path().to_string();
    match sse::watch_env(State(st.clone()), uri, request.headers().clone()).await {
        Ok(sse) => sse.into_response(),
        Err(e) => rejected(&st, e.at(&path)),
    }
}

/// Counts a client error for `/actuator/prometheus` and answers it.
fn rejected(st: &AppState, e: AppError) -> Response {
    if e.status().is_client_error() {
        st.metrics.rejected.fetch_add(1, Ordering::Relaxed);
    }
    e.into_response()
}

/// Config paths (everything not routed elsewhere). 4xx answers are counted
/// for `/actuator/prometheus`.
async fn config_resource(State(st): State<Shared>, request: Request) -> Response {
    let path = request.uri().path().to_string();
    match config_resource_inner(&st, request).await {
        Ok(resp) => resp,
        Err(e) => rejected(&st, e.at(&path)),
    }
}

/// Whether the Environment JSON is acceptable to the client. Spring maps
/// it with `produces` JSON (and the v2 type), so `Accept: text/plain`
/// alone is a 406 there; no header, `*/*`, `application/*` or any JSON
/// type is fine.
fn accepts_environment(headers: &HeaderMap) -> bool {
    let Some(accept) = headers.get(header::ACCEPT) else {
        return true;
    };
    let Ok(accept) = accept.to_str() else {
        return false;
    };
    accept.split(',').any(|range| {
        let media = range.split(';').next().unwrap_or("").trim();
        media.is_empty()
            || media == "*/*"
            || media.eq_ignore_ascii_case("application/*")
            || media.eq_ignore_ascii_case("application/json")
            || media.eq_ignore_ascii_case(V2_MEDIA_TYPE)
            || media.to_ascii_lowercase().ends_with("+json")
    })
}

fn not_acceptable() -> AppError {
    AppError::new(
        StatusCode::NOT_ACCEPTABLE,
        "the environment is served as application/json",
    )
}

async fn config_resource_inner(st: &AppState, request: Request) -> Result<Response, AppError> {
    let (parts, _body) = request.into_parts();
    let (method, uri, headers) = (&parts.method, &parts.uri, &parts.headers);
    let is_read = method == Method::GET || method == Method::HEAD;
    // Hot path: a path already validated and answered, with no change since.
    if is_read
        && uri.query().is_none()
        && let Some(resolved) = st.envs.lookup_path(uri.path())
    {
        if !accepts_environment(headers) {
            return Err(not_acceptable());
        }
        return Ok(environment_response(headers, &resolved));
    }
    check_target(uri)?;
    // Validate first, so that traversal attempts are a 400 whatever the method.
    let parsed = paths::parse(uri.path())?;
    if !is_read {
        return Err(AppError::new(
            StatusCode::METHOD_NOT_ALLOWED,
            "method not allowed",
        ));
    }
    match parsed {
        ConfigPath::Environment(req) => {
            if !accepts_environment(headers) {
                return Err(not_acceptable());
            }
            let resolved = st.envs.get_for_path(uri.path(), &req).await?;
            if query_flag(uri, "resolvePlaceholders") == Some(true) {
                let mut env = resolved.env.clone();
                render::resolve_sources(&mut env, st.envs.limits())
                    .map_err(|e| placeholder_error(st, &e))?;
                let json = serde_json::to_vec(&env).map_err(|e| {
                    tracing::error!(error = %e, "serialize failed");
                    AppError::new(StatusCode::INTERNAL_SERVER_ERROR, "serialize failed")
                })?;
                let content_type = environment_content_type(headers);
                return Ok(([(header::CONTENT_TYPE, content_type)], json).into_response());
            }
            Ok(environment_response(headers, &resolved))
        }
        ConfigPath::View(req, format) => {
            let resolved = st.envs.get(&req).await?;
            let resolve = query_flag(uri, "resolvePlaceholders").unwrap_or(true);
            let text = render::render(&resolved.env, format, resolve, st.envs.limits())
                .map_err(|e| render_error(st, e))?;
            Ok(([(header::CONTENT_TYPE, format.content_type())], text).into_response())
        }
        ConfigPath::File(req, path) => plain_file(st, &req, &path, uri).await,
    }
}

async fn plain_file(
    st: &AppState,
    req: &EnvRequest,
    path: &str,
    uri: &Uri,
) -> Result<Response, AppError> {
    let Some((_found, bytes)) = st.envs.plain_file(req, path).await? else {
        return Err(AppError::new(
            StatusCode::NOT_FOUND,
            format!("no such file: {path}"),
        ));
    };
    let resolve = query_flag(uri, "resolvePlaceholders").unwrap_or(true);
    match String::from_utf8(bytes) {
        Ok(text) if resolve => {
            let env = st.envs.get(req).await?;
            let text = render::resolve_text(&text, &env.env, st.envs.limits())
                .map_err(|e| placeholder_error(st, &e))?;
            Ok(text_response(text))
        }
        Ok(text) => Ok(text_response(text)),
        Err(e) => Ok((
            [(header::CONTENT_TYPE, "application/octet-stream")],
            e.into_bytes(),
        )
            .into_response()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::BodyExt;
    use serde::ser::Error as _;

    #[tokio::test]
    async fn a_serialization_failure_is_a_500_with_spring_s_error_body() {
        let e = EnvError::Serialize(serde_json::Error::custom("not representable"));
        let resp = AppError::from(e).at("/foo/dev").into_response();
        assert_eq!(resp.status(), StatusCode::INTERNAL_SERVER_ERROR);
        let body = resp.into_body().collect().await.unwrap().to_bytes();
        let body: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(body["status"], json!(500));
        assert_eq!(body["error"], json!("Internal Server Error"));
        assert_eq!(body["path"], json!("/foo/dev"));
        assert!(body["timestamp"].is_string());
    }
}
