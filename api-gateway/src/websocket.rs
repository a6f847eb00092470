//! WebSocket proxying: the upgrade handshake goes to the upstream like any
//! request (request filters apply to it), and when the upstream answers
//! `101 Switching Protocols` both connections are taken over from HTTP and
//! bytes are copied both ways until either side closes.
//!
//! A request is a WebSocket upgrade when its `Upgrade` header names
//! `websocket` and its `Connection` header names `upgrade` (RFC 6455,
//! 4.1), whatever the route's scheme (`ws://`, `wss://`, `lb:ws://`, or
//! `http://` as SCG does). Other `Upgrade` requests (`h2c`) are forwarded
//! as plain requests without their hop-by-hop `Upgrade`, as RFC 9110 lets
//! a proxy do.
//!
//! Each open tunnel is registered as `cloud_runtime` open work
//! (`"websocket"`, with the peer and upstream) and counted in
//! [`Tunnels::open`]. At most `server.max-connections` tunnels are open
//! at once, besides the HTTP connections that limit counts: an upgraded
//! connection has left HTTP serving (and its count), so without a limit of
//! its own every client could hold any number of tunnels, each with a
//! connection to the upstream. A handshake beyond the limit is answered
//! `503` without reaching the upstream (see [`Tunnels::reserve`]). (Tomcat
//! counts upgraded connections in its `max-connections` too.)
//!
//! WebSockets never end by themselves, so on shutdown every tunnel is
//! closed (both TCP connections are shut down) and the shutdown waits for
//! the tunnels to finish, at most the drain timeout.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Body;
use cloud_runtime::shutdown::OpenWork;
use http::header::{self, HeaderMap, HeaderValue};
use http::{Response, StatusCode};
use hyper::upgrade::OnUpgrade;
use hyper_util::rt::TokioIo;
use tokio::io::AsyncWriteExt as _;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::proxy;

/// Whether `headers` ask for a WebSocket upgrade: `Upgrade` names
/// `websocket` and `Connection` names `upgrade` (both case-insensitive,
/// among other tokens).
pub fn is_websocket_upgrade(headers: &HeaderMap) -> bool {
    has_token(headers, &header::UPGRADE, "websocket")
        && has_token(headers, &header::CONNECTION, "upgrade")
}

fn has_token(headers: &HeaderMap, name: &header::HeaderName, token: &str) -> bool {
    headers
        .get_all(name)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|t| t.trim().eq_ignore_ascii_case(token))
}

/// Puts the upgrade's own hop-by-hop headers back on `to` (after
/// [`proxy::remove_hop_by_hop`]): `Upgrade` as `from` has it and
/// `Connection: upgrade`.
pub fn restore_upgrade_headers(from: &HeaderMap, to: &mut HeaderMap) {
    to.remove(header::UPGRADE);
    for v in from.get_all(header::UPGRADE) {
        to.append(header::UPGRADE, v.clone());
    }
    to.insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
}

/// The open WebSocket tunnels of a gateway.
#[derive(Debug)]
pub struct Tunnels {
    tracker: TaskTracker,
    /// Cancelled by [`Tunnels::close`], then replaced, so that a gateway
    /// served again opens tunnels again.
    closing: Mutex<CancellationToken>,
    /// One permit per tunnel that may open.
    slots: Arc<Semaphore>,
    /// Handshakes refused because every slot was taken.
    refused: AtomicU64,
}

/// A place for one tunnel, held for as long as it is open (see
/// [`Tunnels::reserve`]); dropping it frees the place.
#[derive(Debug)]
pub struct TunnelSlot {
    _permit: OwnedSemaphorePermit,
}

impl Tunnels {
    /// Room for at most `max` tunnels at once (at least one).
    pub fn new(max: usize) -> Tunnels {
        Tunnels {
            tracker: TaskTracker::new(),
            closing: Mutex::default(),
            slots: Arc::new(Semaphore::new(max.clamp(1, Semaphore::MAX_PERMITS))),
            refused: AtomicU64::new(0),
        }
    }

    /// Tunnels open now.
    pub fn open(&self) -> usize {
        self.tracker.len()
    }

    /// Upgrade handshakes refused so far because the tunnels were at their
    /// limit.
    pub fn refused(&self) -> u64 {
        self.refused.load(Ordering::Relaxed)
    }

    /// A place for the tunnel an upgrade handshake may open, taken before
    /// the handshake goes upstream; `None` (and counted as refused) when
    /// the limit is reached. Dropped without a tunnel (the upstream did not
    /// switch), the place is free again.
    pub fn reserve(&self) -> Option<TunnelSlot> {
        match Arc::clone(&self.slots).try_acquire_owned() {
            Ok(permit) => Some(TunnelSlot { _permit: permit }),
            Err(_) => {
                self.refused.fetch_add(1, Ordering::Relaxed);
                None
            }
        }
    }

    /// Turns the upstream's answer to an upgrade handshake into the
    /// client's: on `101` the tunnel between `client` and the upstream
    /// starts (once the client's connection has switched, after this
    /// answer is written) and holds `slot` until it ends; any other answer
    /// is passed on as a plain response without hop-by-hop headers.
    pub fn answer(
        &self,
        mut response: Response<Body>,
        client: OnUpgrade,
        slot: TunnelSlot,
        peer: SocketAddr,
        upstream: &str,
    ) -> Response<Body> {
        let upgraded = response.status() == StatusCode::SWITCHING_PROTOCOLS;
        let upstream_headers = response.headers().clone();
        proxy::remove_hop_by_hop(response.headers_mut());
        if !upgraded {
            return response;
        }
        restore_upgrade_headers(&upstream_headers, response.headers_mut());
        let upstream_side = hyper::upgrade::on(&mut response);
        let work = OpenWork::begin("websocket", format_args!("{peer} to {upstream}"));
        let closing = self.closing().clone();
        self.tracker.spawn(async move {
            let (_work, _slot) = (work, slot);
            tokio::select! {
                () = tunnel(client, upstream_side) => {}
                () = closing.cancelled() => {
                    tracing::debug!(%peer, "WebSocket tunnel closed by shutdown");
                }
            }
        });
        response
    }

    fn closing(&self) -> std::sync::MutexGuard<'_, CancellationToken> {
        self.closing
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Closes every tunnel and waits for them to end, at most `within`.
    pub async fn close(&self, within: Duration) {
        std::mem::take(&mut *self.closing()).cancel();
        self.tracker.close();
        if tokio::time::timeout(within, self.tracker.wait())
            .await
            .is_err()
        {
            tracing::warn!(
                open = self.tracker.len(),
                "WebSocket tunnels still open after the drain timeout"
            );
        }
        self.tracker.reopen();
    }
}

/// Copies bytes both ways once both connections have switched, until
/// either side ends its connection: what it sent is passed on, the other
/// side's connection is shut down, and the tunnel ends (a WebSocket has
/// nothing to say after its peer has gone, so no half-open tunnel is
/// kept, as Go's reverse proxy does).
async fn tunnel(client: OnUpgrade, upstream: OnUpgrade) {
    let (client, upstream) = match tokio::try_join!(client, upstream) {
        Ok(both) => both,
        Err(e) => {
            tracing::debug!(error = %e, "a side of the WebSocket upgrade did not switch");
            return;
        }
    };
    let (mut from_client, mut to_client) = tokio::io::split(TokioIo::new(client));
    let (mut from_upstream, mut to_upstream) = tokio::io::split(TokioIo::new(upstream));
    let (ended, copied) = tokio::select! {
        copied = tokio::io::copy(&mut from_client, &mut to_upstream) => {
            let _ = to_upstream.shutdown().await;
            ("client", copied)
        }
        copied = tokio::io::copy(&mut from_upstream, &mut to_client) => {
            let _ = to_client.shutdown().await;
            ("upstream", copied)
        }
    };
    match copied {
        Ok(bytes) => tracing::debug!(ended, bytes, "WebSocket tunnel ended"),
        Err(e) => tracing::debug!(ended, error = %e, "WebSocket tunnel ended with an error"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (n, v) in pairs {
            h.append(*n, HeaderValue::from_static(v));
        }
        h
    }

    #[test]
    fn a_websocket_upgrade_needs_both_tokens_in_any_case() {
        assert!(is_websocket_upgrade(&headers(&[
            ("connection", "keep-alive, Upgrade"),
            ("upgrade", "WebSocket"),
        ])));
        assert!(!is_websocket_upgrade(&headers(&[("upgrade", "websocket")])));
        assert!(!is_websocket_upgrade(&headers(&[
            ("connection", "upgrade"),
            ("upgrade", "h2c"),
        ])));
    }

    #[test]
    fn upgrade_headers_come_back_after_hop_by_hop_removal() {
        let client = headers(&[
            ("connection", "Upgrade, x-hop"),
            ("upgrade", "websocket"),
            ("x-hop", "1"),
            ("sec-websocket-key", "k"),
        ]);
        let mut out = client.clone();
        proxy::remove_hop_by_hop(&mut out);
        restore_upgrade_headers(&client, &mut out);
        assert_eq!(out["connection"], "upgrade");
        assert_eq!(out["upgrade"], "websocket");
        assert_eq!(out["sec-websocket-key"], "k");
        assert!(!out.contains_key("x-hop"));
    }
}
