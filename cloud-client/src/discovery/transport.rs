//! Eureka's REST calls over `reqwest`, with failover between the servers
//! in order and a sticky choice ([`ServerChoice`]). A server that cannot be
//! reached, times out or answers 5xx is skipped for the next; any other
//! answer (including 404) is the answer.

use std::time::Duration;

use cloud_protocol::eureka::{Applications, InstanceInfo, InstanceStatus, json};
use reqwest::{Method, RequestBuilder, Response, StatusCode};

use super::failover::ServerChoice;
use crate::settings::ServiceUrl;

/// The boxed cause of a discovery error.
pub(crate) type Cause = Box<dyn std::error::Error + Send + Sync + 'static>;

/// No Eureka server gave an answer.
#[derive(Debug, thiserror::Error)]
#[error("no Eureka server answered ({tried} tried); last: {source}")]
pub struct RegistryUnreachable {
    tried: usize,
    #[source]
    source: Cause,
}

impl RegistryUnreachable {
    /// How many servers were tried.
    pub fn tried(&self) -> usize {
        self.tried
    }
}

/// A server answered, but not as the protocol says.
#[derive(Debug, thiserror::Error)]
#[error("Eureka server {server} answered {operation} with {status}")]
pub struct UnexpectedAnswer {
    server: String,
    operation: &'static str,
    status: StatusCode,
}

impl UnexpectedAnswer {
    /// The HTTP status received.
    pub fn status(&self) -> u16 {
        self.status.as_u16()
    }
}

/// A registry listing could not be read.
#[derive(Debug, thiserror::Error)]
#[error("Eureka server {server}: unreadable {operation} answer")]
pub struct UnreadableAnswer {
    server: String,
    operation: &'static str,
    #[source]
    source: Cause,
}

/// Why a call to the registry failed.
#[derive(Debug, thiserror::Error)]
pub enum TransportError {
    /// Every server failed.
    #[error(transparent)]
    Unreachable(#[from] RegistryUnreachable),
    /// A server answered with an unexpected status.
    #[error(transparent)]
    Unexpected(#[from] UnexpectedAnswer),
    /// A server's body could not be decoded.
    #[error(transparent)]
    Unreadable(#[from] UnreadableAnswer),
}

impl TransportError {
    /// Whether every server was unreachable.
    pub fn is_unreachable(&self) -> bool {
        matches!(self, TransportError::Unreachable(_))
    }
}

/// Read timeout of watch streams and long polls: longer than the server's
/// 15 s keep-alive and the 30 s long poll.
const STREAM_READ_TIMEOUT: Duration = Duration::from_secs(45);

/// What a renewal found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Renewal {
    /// The lease was renewed.
    Renewed,
    /// The server does not know the instance: register again.
    NotFound,
}

/// The Eureka servers and an HTTP client to reach them.
#[derive(Debug)]
pub(crate) struct EurekaHttp {
    client: reqwest::Client,
    stream_client: reqwest::Client,
    servers: Vec<ServiceUrl>,
    choice: ServerChoice,
}

/// An answer and the server that gave it.
pub(crate) struct Answer {
    pub(crate) response: Response,
    pub(crate) server: usize,
}

impl EurekaHttp {
    pub(crate) fn new(
        servers: Vec<ServiceUrl>,
        connect_timeout: Duration,
        read_timeout: Duration,
    ) -> Result<Self, reqwest::Error> {
        let client = reqwest::Client::builder()
            .connect_timeout(connect_timeout)
            .read_timeout(read_timeout)
            .build()?;
        // Watch streams send a keep-alive every 15 s; long polls wait 30 s.
        let stream_client = reqwest::Client::builder()
            .connect_timeout(connect_timeout)
            .read_timeout(STREAM_READ_TIMEOUT)
            .build()?;
        let choice = ServerChoice::new(servers.len());
        Ok(EurekaHttp {
            client,
            stream_client,
            servers,
            choice,
        })
    }

    /// The server tried first now.
    pub(crate) fn current_server(&self) -> &ServiceUrl {
        &self.servers[self
            .choice
            .current()
            .min(self.servers.len().saturating_sub(1))]
    }

    /// A request to `path` below server `i`, with its Basic credentials.
    fn request(
        &self,
        client: &reqwest::Client,
        i: usize,
        method: Method,
        path: &str,
    ) -> Result<RequestBuilder, Cause> {
        let server = &self.servers[i];
        let url = server.base.join(path)?;
        let mut req = client.request(method, url);
        if let Some((user, pass)) = &server.credentials {
            req = req.basic_auth(user, Some(pass));
        }
        Ok(req)
    }

    /// Sends the request `build` makes for each server in turn until one
    /// answers with anything but a 5xx.
    pub(crate) async fn send(
        &self,
        method: Method,
        path: &str,
        build: impl Fn(RequestBuilder) -> RequestBuilder,
    ) -> Result<Answer, RegistryUnreachable> {
        self.send_on(&self.client, method, path, build).await
    }

    /// Like [`send`](Self::send) on the client for long-lived answers
    /// (watch streams, long polls), whose read timeout outlasts keep-alives.
    pub(crate) async fn send_streaming(
        &self,
        path: &str,
        build: impl Fn(RequestBuilder) -> RequestBuilder,
    ) -> Result<Answer, RegistryUnreachable> {
        self.send_on(&self.stream_client, Method::GET, path, build)
            .await
    }

    async fn send_on(
        &self,
        client: &reqwest::Client,
        method: Method,
        path: &str,
        build: impl Fn(RequestBuilder) -> RequestBuilder,
    ) -> Result<Answer, RegistryUnreachable> {
        let mut last: Option<Cause> = None;
        let mut tried = 0;
        for i in self.choice.order() {
            tried += 1;
            let req = match self.request(client, i, method.clone(), path) {
                Ok(r) => build(r),
                Err(e) => {
                    last = Some(e);
                    continue;
                }
            };
            match req.send().await {
                Ok(resp) if resp.status().is_server_error() => {
                    tracing::debug!(server = %self.servers[i], status = %resp.status(), "Eureka server failed; trying the next");
                    last = Some(
                        UnexpectedAnswer {
                            server: self.servers[i].to_string(),
                            operation: "a request",
                            status: resp.status(),
                        }
                        .into(),
                    );
                }
                Ok(resp) => {
                    if i != self.choice.current() {
                        tracing::info!(server = %self.servers[i], "switched to another Eureka server");
                    }
                    self.choice.succeeded(i);
                    return Ok(Answer {
                        response: resp,
                        server: i,
                    });
                }
                Err(e) => {
                    tracing::debug!(server = %self.servers[i], error = %e, "Eureka server unreachable; trying the next");
                    last = Some(e.into());
                }
            }
        }
        Err(RegistryUnreachable {
            tried,
            source: last.unwrap_or_else(|| "no Eureka server configured".into()),
        })
    }

    fn unexpected(&self, answer: &Answer, operation: &'static str) -> UnexpectedAnswer {
        UnexpectedAnswer {
            server: self.servers[answer.server].to_string(),
            operation,
            status: answer.response.status(),
        }
    }

    /// `POST apps/{APP}` with the instance as JSON.
    pub(crate) async fn register(&self, info: &InstanceInfo) -> Result<(), TransportError> {
        let body = json::encode_instance(info);
        let path = format!("apps/{}", info.app);
        let answer = self
            .send(Method::POST, &path, |r| {
                r.header("Content-Type", "application/json")
                    .body(body.clone())
            })
            .await?;
        if answer.response.status().is_success() {
            Ok(())
        } else {
            Err(self.unexpected(&answer, "register").into())
        }
    }

    /// `PUT apps/{APP}/{id}?status=..&lastDirtyTimestamp=..`.
    pub(crate) async fn renew(&self, info: &InstanceInfo) -> Result<Renewal, TransportError> {
        let path = format!("apps/{}/{}", info.app, info.instance_id);
        let dirty = info.last_dirty_timestamp.to_string();
        let answer = self
            .send(Method::PUT, &path, |r| {
                r.query(&[
                    ("status", info.status.as_str()),
                    ("lastDirtyTimestamp", dirty.as_str()),
                ])
            })
            .await?;
        match answer.response.status() {
            s if s.is_success() => Ok(Renewal::Renewed),
            StatusCode::NOT_FOUND => Ok(Renewal::NotFound),
            _ => Err(self.unexpected(&answer, "renew").into()),
        }
    }

    /// `PUT apps/{APP}/{id}/status?value=..`.
    pub(crate) async fn set_status(
        &self,
        info: &InstanceInfo,
        status: InstanceStatus,
    ) -> Result<(), TransportError> {
        let path = format!("apps/{}/{}/status", info.app, info.instance_id);
        let dirty = info.last_dirty_timestamp.to_string();
        let answer = self
            .send(Method::PUT, &path, |r| {
                r.query(&[
                    ("value", status.as_str()),
                    ("lastDirtyTimestamp", dirty.as_str()),
                ])
            })
            .await?;
        if answer.response.status().is_success() {
            Ok(())
        } else {
            Err(self.unexpected(&answer, "status change").into())
        }
    }

    /// `DELETE apps/{APP}/{id}`; a 404 is fine (already gone).
    pub(crate) async fn cancel(&self, info: &InstanceInfo) -> Result<(), TransportError> {
        let path = format!("apps/{}/{}", info.app, info.instance_id);
        let answer = self.send(Method::DELETE, &path, |r| r).await?;
        let s = answer.response.status();
        if s.is_success() || s == StatusCode::NOT_FOUND {
            Ok(())
        } else {
            Err(self.unexpected(&answer, "cancel").into())
        }
    }

    /// `GET apps/` (full) or `GET apps/delta`.
    pub(crate) async fn fetch(&self, delta: bool) -> Result<Applications, TransportError> {
        let (path, operation) = if delta {
            ("apps/delta", "delta")
        } else {
            ("apps/", "registry")
        };
        let answer = self
            .send(Method::GET, path, |r| {
                r.header("Accept", "application/json")
            })
            .await?;
        if !answer.response.status().is_success() {
            return Err(self.unexpected(&answer, operation).into());
        }
        let server = self.servers[answer.server].to_string();
        let bytes = answer
            .response
            .bytes()
            .await
            .map_err(|e| UnreadableAnswer {
                server: server.clone(),
                operation,
                source: e.into(),
            })?;
        json::decode_applications(&bytes).map_err(|e| {
            UnreadableAnswer {
                server,
                operation,
                source: e.into(),
            }
            .into()
        })
    }
}
