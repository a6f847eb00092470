//! [`HttpError`]: why a call through [`LbHttpClient`](super::LbHttpClient)
//! gave no response, and whether trying again is safe.

use std::fmt;

/// The boxed cause of an [`HttpError`].
type Cause = Box<dyn std::error::Error + Send + Sync + 'static>;

/// What ended the call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    /// The URL could not be resolved or rebuilt.
    InvalidUrl,
    /// The service has no instance to call.
    NoInstance,
    /// The service's circuit breaker is open.
    BreakerOpen,
    /// The per-call timeout passed.
    Timeout,
    /// No connection could be made.
    Connect,
    /// The connection failed after the request may have been sent.
    Transport,
}

/// A call that gave no response. Ask what ended it with the `is_*()`
/// questions; [`is_safe_to_retry`](Self::is_safe_to_retry) tells whether
/// sending it again could not do harm.
#[derive(Debug)]
pub struct HttpError {
    pub(crate) kind: Kind,
    pub(crate) service: Option<String>,
    pub(crate) attempts: u32,
    pub(crate) budget_spent: bool,
    pub(crate) safe_to_retry: bool,
    pub(crate) source: Option<Cause>,
}

impl HttpError {
    pub(crate) fn new(kind: Kind, service: Option<&str>) -> Self {
        HttpError {
            kind,
            service: service.map(str::to_owned),
            attempts: 0,
            budget_spent: false,
            safe_to_retry: false,
            source: None,
        }
    }

    pub(crate) fn with_source(mut self, source: impl Into<Cause>) -> Self {
        self.source = Some(source.into());
        self
    }

    /// The service had no available instance in the registry cache.
    pub fn is_no_instance(&self) -> bool {
        self.kind == Kind::NoInstance
    }

    /// The service's circuit breaker refused the call.
    pub fn is_breaker_open(&self) -> bool {
        self.kind == Kind::BreakerOpen
    }

    /// The per-call timeout passed (on the last attempt).
    pub fn is_timeout(&self) -> bool {
        self.kind == Kind::Timeout
    }

    /// No connection could be made (on the last attempt).
    pub fn is_connect(&self) -> bool {
        self.kind == Kind::Connect
    }

    /// The connection broke during the exchange (on the last attempt).
    pub fn is_transport(&self) -> bool {
        self.kind == Kind::Transport
    }

    /// The URL could not be resolved.
    pub fn is_invalid_url(&self) -> bool {
        self.kind == Kind::InvalidUrl
    }

    /// More than one attempt was made and the last one failed too, or a
    /// retry was wanted but the retry budget was spent.
    pub fn is_retries_exhausted(&self) -> bool {
        self.attempts > 1 || self.budget_spent
    }

    /// A retry was wanted but the service's retry budget was spent.
    pub fn is_retry_budget_spent(&self) -> bool {
        self.budget_spent
    }

    /// Whether sending the request again cannot do harm: it never reached
    /// an upstream (no instance, breaker open, no connection) or it is
    /// idempotent.
    pub fn is_safe_to_retry(&self) -> bool {
        self.safe_to_retry
    }

    /// Attempts made (0 when none started).
    pub fn attempts(&self) -> u32 {
        self.attempts
    }

    /// The service called, when the URL named one.
    pub fn service(&self) -> Option<&str> {
        self.service.as_deref()
    }
}

impl fmt::Display for HttpError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let what = match self.kind {
            Kind::InvalidUrl => "invalid URL",
            Kind::NoInstance => "no instance available",
            Kind::BreakerOpen => "circuit breaker open",
            Kind::Timeout => "timed out",
            Kind::Connect => "could not connect",
            Kind::Transport => "connection failed",
        };
        match &self.service {
            Some(s) => write!(f, "service '{s}': {what}")?,
            None => f.write_str(what)?,
        }
        if self.attempts > 1 {
            write!(f, " after {} attempts", self.attempts)?;
        }
        if self.budget_spent {
            f.write_str(" (retry budget spent)")?;
        }
        Ok(())
    }
}

impl std::error::Error for HttpError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.source
            .as_deref()
            .map(|e| e as &(dyn std::error::Error + 'static))
    }
}
