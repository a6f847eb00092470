//! HTTP/2 upstream connections: with `server.http2.enabled`, an `https`
//! upstream that picks `h2` in the TLS handshake (ALPN) is reached over one
//! multiplexed connection per thread, as SCG's Reactor Netty client does
//! when the same setting offers it `H2`. This is what gRPC needs: HTTP/2
//! end to end, with trailers.
//!
//! A gRPC request to an `http` upstream is sent the same way over
//! cleartext HTTP/2 (prior knowledge, RFC 9113 3.3): gRPC has no HTTP/1.1
//! form.
//!
//! Each thread keeps, per scheme and authority, the connection it opened
//! ([`Registry`]); a request takes a [`Lease`] on it, which counts the
//! request as in flight until its response body ends or is dropped. The
//! connection's own task closes it after the pool's idle timeout with no
//! request in flight, or once it has been taken out of the registry
//! (`max-life-time` reached, or a `DISABLED` pool's single use) and its
//! last request is done. A connection the upstream closed (GOAWAY, reset)
//! is replaced by the next request that finds it so.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use axum::body::Body;
use hyper::client::conn::http2::SendRequest;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::time::Instant;

use cloud_runtime::gated::Gated;

use super::{ConnectError, Limits};

/// One thread's HTTP/2 connections: `[cleartext, TLS]`, each by authority.
#[derive(Debug, Default)]
pub(super) struct Registry {
    open: Mutex<[HashMap<Box<str>, Entry>; 2]>,
}

#[derive(Debug)]
struct Entry {
    sender: SendRequest<Body>,
    shared: Arc<Shared>,
    opened: Instant,
}

/// What a connection's task and its leases share.
#[derive(Debug)]
struct Shared {
    /// Over TLS (else cleartext).
    secure: bool,
    /// The upstream's `host:port`.
    authority: Box<str>,
    /// Requests whose response has not ended.
    in_flight: AtomicUsize,
    /// When the last request ended: [`Limits::stamp`].
    last_used: AtomicU64,
    /// Out of the registry: no request will take it again.
    retired: AtomicBool,
}

/// A request's use of a multiplexed connection.
#[derive(Debug)]
pub(crate) struct Lease {
    sender: SendRequest<Body>,
    shared: Arc<Shared>,
    limits: Limits,
    reused: bool,
}

impl Lease {
    fn new(sender: SendRequest<Body>, shared: Arc<Shared>, limits: Limits, reused: bool) -> Lease {
        shared.in_flight.fetch_add(1, Ordering::AcqRel);
        Lease {
            sender,
            shared,
            limits,
            reused,
        }
    }

    /// Whether the connection served requests before this one.
    pub(crate) fn reused(&self) -> bool {
        self.reused
    }

    /// The upstream's `host:port`.
    pub(crate) fn authority(&self) -> &str {
        &self.shared.authority
    }

    /// Sends `request` (its URI absolute) on the connection.
    pub(crate) async fn send(
        &mut self,
        request: http::Request<Body>,
    ) -> Result<http::Response<hyper::body::Incoming>, hyper::Error> {
        self.sender.ready().await?;
        self.sender.send_request(request).await
    }
}

impl Drop for Lease {
    fn drop(&mut self) {
        self.shared
            .last_used
            .store(self.limits.stamp(Instant::now()), Ordering::Release);
        self.shared.in_flight.fetch_sub(1, Ordering::AcqRel);
    }
}

impl Registry {
    /// A lease on this thread's open connection to `authority`, if there
    /// is one still open and young enough.
    pub(super) fn lease(&self, secure: bool, authority: &str, limits: Limits) -> Option<Lease> {
        let mut all = self.lock();
        let open = &mut all[usize::from(secure)];
        let entry = open.get(authority)?;
        let expired = limits
            .max_life
            .is_some_and(|life| entry.opened.elapsed() >= life);
        if entry.sender.is_closed() || expired {
            if let Some(gone) = open.remove(authority) {
                gone.shared.retired.store(true, Ordering::Release);
            }
            return None;
        }
        // Taken under the lock, so the idle check (under it too) never
        // closes a connection a request has just taken.
        Some(Lease::new(
            entry.sender.clone(),
            Arc::clone(&entry.shared),
            limits,
            true,
        ))
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, [HashMap<Box<str>, Entry>; 2]> {
        self.open
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// Opens HTTP/2 on `io` (TLS that agreed on `h2`, or cleartext), spawns
/// the connection's task, and leases it for the first request; unless the
/// pool keeps no connection (`DISABLED`), it is listed in `home`'s
/// registry for the requests after it.
pub(super) async fn handshake<I>(
    io: I,
    secure: bool,
    authority: &str,
    home: &Arc<super::CacheLine<super::Home>>,
) -> Result<Lease, ConnectError>
where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let (sender, connection) = hyper::client::conn::http2::Builder::new(TokioExecutor::new())
        .timer(TokioTimer::new())
        .handshake(TokioIo::new(io))
        .await
        .map_err(ConnectError::Http)?;
    let (limits, keep) = (home.0.limits, home.0.limits.keep);
    let shared = Arc::new(Shared {
        secure,
        authority: authority.into(),
        in_flight: AtomicUsize::new(0),
        last_used: AtomicU64::new(limits.stamp(Instant::now())),
        retired: AtomicBool::new(!keep),
    });
    let lease = Lease::new(sender.clone(), Arc::clone(&shared), limits, false);
    if keep {
        let mut all = home.0.http2.lock();
        let open = &mut all[usize::from(secure)];
        let entry = Entry {
            sender,
            shared: Arc::clone(&shared),
            opened: Instant::now(),
        };
        // A connection opened at the same time by another request gives
        // way: it serves that request and closes.
        if let Some(old) = open.insert(authority.into(), entry) {
            old.shared.retired.store(true, Ordering::Release);
        }
    }
    let home = Arc::clone(home);
    tokio::spawn(async move {
        let authority = &shared.authority;
        tokio::pin!(connection);
        let mut check = Gated::new(Box::pin(tokio::time::sleep(limits.idle_timeout)));
        loop {
            tokio::select! {
                ended = connection.as_mut() => {
                    if let Err(e) = ended {
                        tracing::debug!(upstream = &**authority, error = %e, "HTTP/2 upstream connection ended");
                    }
                    break;
                }
                () = &mut check => {
                    match idle_check(&home.0.http2, authority, &shared, limits) {
                        None => break,
                        Some(next) => {
                            check.get_mut().as_mut().reset(next);
                            check.rearm();
                        }
                    }
                }
            }
        }
        shared.retired.store(true, Ordering::Release);
        // Gone from the registry unless a newer connection took its place.
        let mut all = home.0.http2.lock();
        let open = &mut all[usize::from(shared.secure)];
        if open
            .get(&**authority)
            .is_some_and(|e| Arc::ptr_eq(&e.shared, &shared))
        {
            open.remove(&**authority);
        }
    });
    Ok(lease)
}

/// When to look at the connection again, or `None` to close it now: it
/// has no request in flight, and it was retired or idle for the idle
/// timeout (then it is taken out of the registry here).
fn idle_check(
    registry: &Registry,
    authority: &str,
    shared: &Arc<Shared>,
    limits: Limits,
) -> Option<Instant> {
    let now = Instant::now();
    let mut all = registry.lock();
    let open = &mut all[usize::from(shared.secure)];
    if shared.in_flight.load(Ordering::Acquire) > 0 {
        return Some(now + limits.recheck());
    }
    let last = limits.since_stamp(shared.last_used.load(Ordering::Acquire));
    let due = last + limits.idle_timeout;
    if !shared.retired.load(Ordering::Acquire) && due > now {
        return Some(due);
    }
    if open
        .get(authority)
        .is_some_and(|e| Arc::ptr_eq(&e.shared, shared))
    {
        open.remove(authority);
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn limits() -> Limits {
        Limits {
            idle_timeout: Duration::from_secs(10),
            max_idle_per_host: 4,
            max_life: None,
            keep: true,
            started: Instant::now(),
        }
    }

    fn shared(retired: bool, limits: Limits) -> Arc<Shared> {
        Arc::new(Shared {
            secure: true,
            authority: "a:443".into(),
            in_flight: AtomicUsize::new(0),
            last_used: AtomicU64::new(limits.stamp(Instant::now())),
            retired: AtomicBool::new(retired),
        })
    }

    #[tokio::test(start_paused = true)]
    async fn a_connection_closes_when_idle_for_the_timeout_and_never_with_a_request_in_flight() {
        let limits = limits();
        let registry = Registry::default();
        let s = shared(false, limits);
        // Fresh: look again when the idle timeout is due.
        let next = idle_check(&registry, "a:443", &s, limits).expect("kept");
        assert_eq!(
            next,
            limits.since_stamp(s.last_used.load(Ordering::Acquire)) + limits.idle_timeout
        );

        s.in_flight.store(1, Ordering::Release);
        tokio::time::advance(Duration::from_secs(60)).await;
        assert!(
            idle_check(&registry, "a:443", &s, limits).is_some(),
            "a request is in flight"
        );

        s.in_flight.store(0, Ordering::Release);
        assert!(
            idle_check(&registry, "a:443", &s, limits).is_none(),
            "idle past the timeout"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn with_no_idle_time_a_busy_connection_is_looked_at_each_second_not_in_a_loop() {
        let limits = Limits {
            idle_timeout: Duration::ZERO,
            ..limits()
        };
        let registry = Registry::default();
        let s = shared(false, limits);
        s.in_flight.store(1, Ordering::Release);
        let next = idle_check(&registry, "a:443", &s, limits).expect("busy: kept");
        assert_eq!(next, Instant::now() + Duration::from_secs(1));
        s.in_flight.store(0, Ordering::Release);
        assert!(
            idle_check(&registry, "a:443", &s, limits).is_none(),
            "idle: closed at once"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_retired_connection_closes_once_its_last_request_is_done() {
        let limits = limits();
        let registry = Registry::default();
        let s = shared(true, limits);
        s.in_flight.store(2, Ordering::Release);
        assert!(idle_check(&registry, "a:443", &s, limits).is_some());
        s.in_flight.store(0, Ordering::Release);
        assert!(idle_check(&registry, "a:443", &s, limits).is_none());
    }
}
