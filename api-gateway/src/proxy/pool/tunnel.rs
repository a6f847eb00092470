//! Upstream connections through a forward proxy
//! (`spring.cloud.gateway.httpclient.proxy.*`): each connection is a
//! `CONNECT` tunnel (RFC 9110 9.3.6) through the proxy to the upstream, for
//! `http` and `https` upstreams alike, as Reactor Netty's HTTP proxy
//! handler (SCG's) opens them; TLS, when the upstream is `https`, runs
//! inside the tunnel, end to end. Hosts the `non-proxy-hosts-pattern`
//! matches (whole, ignoring case, as Java's pattern is matched) are
//! reached directly.

use std::time::Duration;

use http::HeaderValue;
use regex::Regex;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;

use super::{ConnectError, connect_tcp};

/// The most bytes a proxy's answer to `CONNECT` may take.
const MAX_ANSWER: usize = 8 * 1024;

/// A forward proxy every upstream connection goes through, unless its host
/// is exempt.
#[derive(Debug, Clone)]
pub struct ForwardProxy {
    /// The proxy's `host:port`.
    authority: String,
    /// `Proxy-Authorization`, when a user name is set.
    authorization: Option<HeaderValue>,
    /// `non-proxy-hosts-pattern`, anchored and case-insensitive.
    exempt: Option<Regex>,
}

impl ForwardProxy {
    /// A proxy at `authority` (`host:port`), sent `authorization` as
    /// `Proxy-Authorization`, with the hosts `exempt` matches reached
    /// directly (see [`ForwardProxy::exempt_pattern`]).
    pub fn new(
        authority: String,
        authorization: Option<HeaderValue>,
        exempt: Option<Regex>,
    ) -> ForwardProxy {
        ForwardProxy {
            authority,
            authorization: authorization.map(|mut v| {
                v.set_sensitive(true);
                v
            }),
            exempt,
        }
    }

    /// `non-proxy-hosts-pattern` as Reactor Netty matches it: the whole
    /// host, ignoring case. `None` for an empty pattern (no host exempt).
    pub fn exempt_pattern(pattern: &str) -> Result<Option<Regex>, regex::Error> {
        if pattern.is_empty() {
            return Ok(None);
        }
        Regex::new(&format!("(?i)^(?:{pattern})$")).map(Some)
    }

    /// Whether a connection to `host` goes through the proxy.
    pub(super) fn applies_to(&self, host: &str) -> bool {
        !self.exempt.as_ref().is_some_and(|re| re.is_match(host))
    }

    /// A tunnel to `target` (`host:port`) through the proxy: connected,
    /// asked and answered within `timeout`.
    pub(super) async fn open(
        &self,
        target: &str,
        timeout: Duration,
    ) -> Result<TcpStream, ConnectError> {
        let mut tcp = connect_tcp(&self.authority, timeout).await?;
        let exchange = async {
            let mut ask = format!("CONNECT {target} HTTP/1.1\r\nHost: {target}\r\n");
            if let Some(auth) = &self.authorization {
                ask.push_str("Proxy-Authorization: ");
                ask.push_str(auth.to_str().unwrap_or_default());
                ask.push_str("\r\n");
            }
            ask.push_str("\r\n");
            tcp.write_all(ask.as_bytes()).await?;
            read_answer(&mut tcp).await
        };
        let status = match tokio::time::timeout(timeout, exchange).await {
            Ok(Ok(status)) => status,
            Ok(Err(e)) => return Err(self.failed(target, e.to_string())),
            Err(_) => {
                return Err(self.failed(
                    target,
                    format!("no answer to CONNECT within {} ms", timeout.as_millis()),
                ));
            }
        };
        match status {
            200..=299 => Ok(tcp),
            code => Err(self.failed(target, format!("the proxy answered {code} to CONNECT"))),
        }
    }

    fn failed(&self, target: &str, detail: String) -> ConnectError {
        ConnectError::Proxy {
            proxy: self.authority.clone(),
            target: target.to_owned(),
            detail,
        }
    }
}

/// Reads the proxy's answer head and returns its status. The upstream
/// speaks only after the gateway (TLS's client hello, an HTTP request), so
/// nothing may follow the head yet.
async fn read_answer(tcp: &mut TcpStream) -> std::io::Result<u16> {
    let mut head = Vec::with_capacity(256);
    let mut chunk = [0u8; 1024];
    loop {
        let n = tcp.read(&mut chunk).await?;
        if n == 0 {
            return Err(std::io::Error::new(
                std::io::ErrorKind::UnexpectedEof,
                "the proxy closed the connection before answering CONNECT",
            ));
        }
        head.extend_from_slice(&chunk[..n]);
        if let Some(end) = head.windows(4).position(|w| w == b"\r\n\r\n") {
            if end + 4 != head.len() {
                return Err(invalid("the proxy sent bytes after its answer to CONNECT"));
            }
            return status_of(&head);
        }
        if head.len() > MAX_ANSWER {
            return Err(invalid("the proxy's answer to CONNECT is over 8 KiB"));
        }
    }
}

/// The status code of an `HTTP/1.x NNN reason` status line.
fn status_of(head: &[u8]) -> std::io::Result<u16> {
    let line = head.split(|&b| b == b'\r').next().unwrap_or_default();
    let mut parts = line.splitn(3, |&b| b == b' ');
    let version = parts.next().unwrap_or_default();
    let code = parts.next().unwrap_or_default();
    if !version.starts_with(b"HTTP/1.") || code.len() != 3 || !code.iter().all(u8::is_ascii_digit) {
        return Err(invalid("the proxy's answer to CONNECT is not HTTP/1.x"));
    }
    std::str::from_utf8(code)
        .ok()
        .and_then(|c| c.parse().ok())
        .ok_or_else(|| invalid("the proxy's answer to CONNECT is not HTTP/1.x"))
}

fn invalid(what: &'static str) -> std::io::Error {
    std::io::Error::new(std::io::ErrorKind::InvalidData, what)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exempt_hosts_match_whole_and_ignoring_case() {
        let exempt = ForwardProxy::exempt_pattern(r"localhost|.*\.internal|10\..*").expect("valid");
        let p = ForwardProxy::new("proxy:3128".into(), None, exempt);
        for direct in ["localhost", "LOCALHOST", "db.internal", "10.0.0.7"] {
            assert!(!p.applies_to(direct), "{direct}");
        }
        for proxied in [
            "example.com",
            "internal.example.com",
            "my-localhost",
            "110.0.0.1",
        ] {
            assert!(p.applies_to(proxied), "{proxied}");
        }
        let none = ForwardProxy::exempt_pattern("").expect("valid");
        assert!(none.is_none(), "an empty pattern exempts nothing");
        assert!(ForwardProxy::exempt_pattern("(unclosed").is_err());
    }

    #[test]
    fn the_status_comes_from_the_status_line() {
        assert_eq!(
            status_of(b"HTTP/1.1 200 Connection established\r\n\r\n").ok(),
            Some(200)
        );
        assert_eq!(
            status_of(b"HTTP/1.0 407 Proxy Authentication Required\r\n\r\n").ok(),
            Some(407)
        );
        assert!(status_of(b"SSH-2.0-OpenSSH\r\n\r\n").is_err());
        assert!(status_of(b"HTTP/1.1 20 x\r\n\r\n").is_err());
    }
}
