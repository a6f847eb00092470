//! Whether a peer URL names this node: the same port as its listener, and
//! a host that is (or resolves to) the bound address, or with a wildcard
//! bind (`0.0.0.0`, `::`) any address of this machine. Eureka lets every
//! node of a cluster be given the same peer list; each skips itself.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

/// Whether `url` names the node listening on `local`. A host name that
/// does not resolve within `timeout` is taken for another node.
pub(crate) async fn names_this_node(url: &str, local: SocketAddr, timeout: Duration) -> bool {
    let Ok(parsed) = reqwest::Url::parse(url) else {
        return false;
    };
    if parsed.port_or_known_default() != Some(local.port()) {
        return false;
    }
    let Some(host) = parsed.host_str() else {
        return false;
    };
    let literal = host.trim_start_matches('[').trim_end_matches(']');
    let candidates: Vec<IpAddr> = match literal.parse::<IpAddr>() {
        Ok(ip) => vec![ip],
        Err(_) => {
            match tokio::time::timeout(timeout, tokio::net::lookup_host((host, local.port()))).await
            {
                Ok(Ok(addrs)) => addrs.map(|a| a.ip()).collect(),
                Ok(Err(e)) => {
                    tracing::debug!(%host, error = %e, "peer host does not resolve");
                    Vec::new()
                }
                Err(_) => {
                    tracing::debug!(%host, "peer host did not resolve in time");
                    Vec::new()
                }
            }
        }
    };
    candidates.into_iter().any(|ip| is_own(ip, local.ip()))
}

/// Whether a connection to `candidate` reaches a listener bound to `bound`.
fn is_own(candidate: IpAddr, bound: IpAddr) -> bool {
    if candidate == bound {
        return true;
    }
    if bound.is_unspecified() {
        return candidate.is_loopback() || candidate.is_unspecified() || is_local(candidate);
    }
    false
}

/// Whether `ip` is an address of this machine: only those can be bound.
fn is_local(ip: IpAddr) -> bool {
    std::net::UdpSocket::bind((ip, 0)).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    const T: Duration = Duration::from_secs(5);

    fn addr(s: &str) -> SocketAddr {
        s.parse().unwrap_or_else(|e| panic!("{s}: {e}"))
    }

    #[tokio::test]
    async fn the_bound_address_and_port_name_this_node() {
        let local = addr("127.0.0.1:8761");
        assert!(names_this_node("http://127.0.0.1:8761/eureka/", local, T).await);
        assert!(names_this_node("http://user:pw@127.0.0.1:8761/eureka/", local, T).await);
        assert!(!names_this_node("http://127.0.0.1:8762/eureka/", local, T).await);
        assert!(!names_this_node("http://127.0.0.2:8761/eureka/", local, T).await);
        assert!(!names_this_node("not a url", local, T).await);
    }

    #[tokio::test]
    async fn a_host_name_resolving_to_the_bound_address_names_this_node() {
        let local = addr("127.0.0.1:8761");
        assert!(names_this_node("http://localhost:8761/eureka/", local, T).await);
        assert!(!names_this_node("http://localhost:8762/eureka/", local, T).await);
        // `.invalid` never resolves (RFC 2606).
        assert!(!names_this_node("http://peer.invalid:8761/eureka/", local, T).await);
    }

    #[tokio::test]
    async fn a_wildcard_bind_counts_every_local_address_but_no_other() {
        let local = addr("0.0.0.0:80");
        assert!(names_this_node("http://127.0.0.1/eureka/", local, T).await);
        assert!(names_this_node("http://localhost/eureka/", local, T).await);
        assert!(!names_this_node("https://127.0.0.1/eureka/", local, T).await);
        // TEST-NET-3 (RFC 5737) is nobody's address.
        assert!(!names_this_node("http://203.0.113.7/eureka/", local, T).await);
    }
}
