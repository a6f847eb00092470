//! The `Retry` filter's policy: which outcomes are retried, how often and
//! after which pause. SCG's arguments and defaults: `retries` (3),
//! `statuses` (none), `series` (`SERVER_ERROR`), `methods` (`GET`),
//! `exceptions` (`IOException`, `TimeoutException`), `backoff`
//! (`firstBackoff`, `maxBackoff`, `factor`, `basedOnPreviousValue`; off by
//! default).
//!
//! A request body is retried only when it is small enough to keep
//! ([`MAX_REPLAY_BODY`], known from `Content-Length`); a larger or
//! streamed body is sent once, never buffered.

use std::time::Duration;

use http::{Method, StatusCode};

use crate::config::{Args, InvalidDefinition};

/// Largest request body kept in memory to be sent again: 64 KiB.
pub const MAX_REPLAY_BODY: u64 = 64 * 1024;

/// A kind of failure to reach the upstream, named by SCG's Java classes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailureKind {
    /// Could not connect (`ConnectException`, part of `IOException`).
    Connect,
    /// The connection failed while exchanging (`IOException`).
    Io,
    /// No response in time (`TimeoutException`).
    Timeout,
}

/// When and how often to retry.
#[derive(Debug, Clone, PartialEq)]
pub struct RetryPolicy {
    /// Retries after the first attempt.
    pub retries: u32,
    statuses: Vec<StatusCode>,
    series: Vec<u16>,
    methods: Vec<Method>,
    exceptions: Vec<FailureKind>,
    backoff: Option<Backoff>,
}

/// Pauses between attempts.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Backoff {
    first: Duration,
    max: Option<Duration>,
    factor: f64,
}

impl RetryPolicy {
    /// Compiles the filter's arguments.
    pub fn compile(a: &Args) -> Result<RetryPolicy, InvalidDefinition> {
        let retries = a.parse_or("retries", 3u32)?;
        let statuses = a
            .list("statuses")
            .iter()
            .map(|s| {
                super::parse_status(s)
                    .ok_or_else(|| a.error(format!("`{s}` is not an HTTP status")))
            })
            .collect::<Result<Vec<_>, _>>()?;
        let series = match a.given("series") {
            false => vec![5],
            true => a
                .list("series")
                .iter()
                .map(|s| series(s).ok_or_else(|| a.error(format!("`{s}` is not a status series (INFORMATIONAL, SUCCESSFUL, REDIRECTION, CLIENT_ERROR, SERVER_ERROR)"))))
                .collect::<Result<Vec<_>, _>>()?,
        };
        let methods = match a.given("methods") {
            false => vec![Method::GET],
            true => a
                .list("methods")
                .iter()
                .map(|m| {
                    Method::from_bytes(m.to_ascii_uppercase().as_bytes())
                        .map_err(|e| a.error(format!("`{m}` is not a method")).with_source(e))
                })
                .collect::<Result<Vec<_>, _>>()?,
        };
        let exceptions = match a.given("exceptions") {
            false => vec![FailureKind::Connect, FailureKind::Io, FailureKind::Timeout],
            true => {
                let mut kinds = Vec::new();
                for name in a.list("exceptions") {
                    kinds.extend_from_slice(exception_kinds(&name).ok_or_else(|| {
                        a.error(format!("exception `{name}` is not known (known: IOException, ConnectException, TimeoutException and their subclasses by simple name)"))
                    })?);
                }
                kinds
            }
        };
        let backoff = if a.opt_str("backoff.firstbackoff").is_some()
            || a.opt_str("backoff.factor").is_some()
            || a.opt_str("backoff.maxbackoff").is_some()
        {
            let duration = |field: &str| -> Result<Option<Duration>, InvalidDefinition> {
                a.opt_str(field)
                    .map(|t| {
                        cloud_runtime::duration::parse(&t)
                            .map_err(|e| a.error(format!("argument `{field}`: {e}")).with_source(e))
                    })
                    .transpose()
            };
            a.flag("backoff.basedonpreviousvalue", true)?;
            let factor: f64 = a.parse_or("backoff.factor", 2.0)?;
            if !(1.0..=1000.0).contains(&factor) {
                return Err(a.error("`backoff.factor` must be between 1 and 1000"));
            }
            Some(Backoff {
                first: duration("backoff.firstbackoff")?.unwrap_or(Duration::from_millis(5)),
                max: duration("backoff.maxbackoff")?,
                factor,
            })
        } else {
            None
        };
        Ok(RetryPolicy {
            retries,
            statuses,
            series,
            methods,
            exceptions,
            backoff,
        })
    }

    /// Whether requests with `method` are retried at all.
    pub fn applies_to(&self, method: &Method) -> bool {
        self.retries > 0 && self.methods.contains(method)
    }

    /// Whether a response with `status` is retried.
    pub fn retries_status(&self, status: StatusCode) -> bool {
        self.statuses.contains(&status) || self.series.contains(&(status.as_u16() / 100))
    }

    /// Whether a failure of `kind` is retried.
    pub fn retries_failure(&self, kind: FailureKind) -> bool {
        self.exceptions.contains(&kind)
    }

    /// The pause before retry number `retry` (1 for the first).
    pub fn pause(&self, retry: u32) -> Duration {
        let Some(b) = self.backoff else {
            return Duration::ZERO;
        };
        // Without jitter, "based on the previous value" and "first times
        // factor to the power" give the same sequence.
        let exponent = retry.saturating_sub(1);
        let secs =
            b.first.as_secs_f64() * b.factor.powi(i32::try_from(exponent).unwrap_or(i32::MAX));
        let pause = Duration::try_from_secs_f64(secs).unwrap_or(Duration::MAX);
        match b.max {
            Some(max) => pause.min(max),
            None => pause,
        }
    }
}

fn series(name: &str) -> Option<u16> {
    Some(match name.trim().to_ascii_uppercase().as_str() {
        "INFORMATIONAL" | "1" => 1,
        "SUCCESSFUL" | "2" => 2,
        "REDIRECTION" | "3" => 3,
        "CLIENT_ERROR" | "4" => 4,
        "SERVER_ERROR" | "5" => 5,
        _ => return None,
    })
}

fn exception_kinds(name: &str) -> Option<&'static [FailureKind]> {
    let simple = name.rsplit('.').next().unwrap_or(name).trim();
    Some(match simple {
        "IOException" | "Exception" | "Throwable" => {
            &[FailureKind::Connect, FailureKind::Io, FailureKind::Timeout][..]
        }
        "ConnectException" | "ConnectTimeoutException" | "UnknownHostException" => {
            &[FailureKind::Connect]
        }
        "SocketException" | "PrematureCloseException" | "ClosedChannelException" => {
            &[FailureKind::Io]
        }
        "TimeoutException" | "ReadTimeoutException" | "ResponseStatusException" => {
            &[FailureKind::Timeout]
        }
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{Definition, Shortcut};

    fn policy(yaml: &str) -> Result<RetryPolicy, InvalidDefinition> {
        let value: serde_json::Value = serde_yaml_ng::from_str(yaml).expect("test YAML");
        let def = Definition::parse(&value, "filter").expect("definition");
        RetryPolicy::compile(&def.bind("filter", super::super::RETRY_FIELDS, Shortcut::InOrder)?)
    }

    #[test]
    fn defaults_are_scgs() {
        let p = policy("Retry").expect("valid");
        assert_eq!(p.retries, 3);
        assert!(p.applies_to(&Method::GET) && !p.applies_to(&Method::POST));
        assert!(
            p.retries_status(StatusCode::BAD_GATEWAY) && !p.retries_status(StatusCode::NOT_FOUND)
        );
        assert!(p.retries_failure(FailureKind::Connect) && p.retries_failure(FailureKind::Timeout));
        assert_eq!(p.pause(3), Duration::ZERO);
    }

    #[test]
    fn expanded_arguments_with_backoff() {
        let p = policy(
            "{name: Retry, args: {retries: 2, statuses: [BAD_GATEWAY, 429], series: '', methods: 'GET,POST', exceptions: java.io.IOException, backoff: {firstBackoff: 10ms, maxBackoff: 50ms, factor: 2, basedOnPreviousValue: false}}}",
        )
        .expect("valid");
        assert!(p.applies_to(&Method::POST));
        assert!(p.retries_status(StatusCode::TOO_MANY_REQUESTS));
        assert!(
            !p.retries_status(StatusCode::INTERNAL_SERVER_ERROR),
            "series emptied"
        );
        assert_eq!(p.pause(1), Duration::from_millis(10));
        assert_eq!(p.pause(2), Duration::from_millis(20));
        assert_eq!(p.pause(5), Duration::from_millis(50));
    }

    #[test]
    fn bad_arguments_are_refused() {
        assert!(policy("Retry=x").is_err());
        assert!(policy("{name: Retry, args: {statuses: NOPE}}").is_err());
        assert!(policy("{name: Retry, args: {exceptions: com.example.Mine}}").is_err());
        assert!(policy("{name: Retry, args: {backoff: {firstBackoff: soon}}}").is_err());
        assert!(policy("{name: Retry, args: {backoff: {factor: -1}}}").is_err());
    }
}
