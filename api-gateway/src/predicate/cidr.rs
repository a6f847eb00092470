//! Address ranges in CIDR notation (`192.168.0.0/16`, `::1/128`, or one
//! address), for `RemoteAddr`, `XForwardedRemoteAddr` and the trusted
//! proxies.

use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;

/// An address range.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cidr {
    network: IpAddr,
    prefix: u8,
}

/// Why a range is not accepted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{0}` is not an address or CIDR range (such as 10.0.0.0/8 or ::1)")]
pub struct InvalidCidr(String);

impl FromStr for Cidr {
    type Err = InvalidCidr;

    fn from_str(text: &str) -> Result<Cidr, InvalidCidr> {
        let fail = || InvalidCidr(text.to_owned());
        let (addr, prefix) = match text.trim().split_once('/') {
            Some((a, p)) => (a, Some(p)),
            None => (text.trim(), None),
        };
        let network: IpAddr = addr.parse().map_err(|_| fail())?;
        let max = if network.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            Some(p) => p.parse::<u8>().map_err(|_| fail())?,
            None => max,
        };
        if prefix > max {
            return Err(fail());
        }
        Ok(Cidr { network, prefix })
    }
}

impl fmt::Display for Cidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.network, self.prefix)
    }
}

impl Cidr {
    /// Whether `addr` is in the range (an IPv4-mapped IPv6 address counts
    /// as its IPv4 address).
    pub fn contains(&self, addr: IpAddr) -> bool {
        let addr = match addr {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map(IpAddr::V4).unwrap_or(addr),
            v4 => v4,
        };
        match (self.network, addr) {
            (IpAddr::V4(n), IpAddr::V4(a)) => {
                let mask = u32::MAX
                    .checked_shl(32 - u32::from(self.prefix))
                    .unwrap_or(0);
                u32::from(n) & mask == u32::from(a) & mask
            }
            (IpAddr::V6(n), IpAddr::V6(a)) => {
                let mask = u128::MAX
                    .checked_shl(128 - u32::from(self.prefix))
                    .unwrap_or(0);
                u128::from(n) & mask == u128::from(a) & mask
            }
            _ => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().expect("test address")
    }

    #[test]
    fn ranges_contain_their_addresses_only() {
        let r: Cidr = "192.168.1.1/24".parse().expect("valid");
        assert!(r.contains(ip("192.168.1.77")));
        assert!(!r.contains(ip("192.168.2.1")));
        assert!(r.contains(ip("::ffff:192.168.1.9")));
        let one: Cidr = "10.0.0.1".parse().expect("valid");
        assert!(one.contains(ip("10.0.0.1")) && !one.contains(ip("10.0.0.2")));
        let all: Cidr = "0.0.0.0/0".parse().expect("valid");
        assert!(all.contains(ip("8.8.8.8")));
        let v6: Cidr = "fe80::/10".parse().expect("valid");
        assert!(v6.contains(ip("fe80::1")) && !v6.contains(ip("::1")));
    }

    #[test]
    fn bad_ranges_are_refused() {
        for bad in ["", "10.0.0.0/33", "host.example", "10.0.0/8", "::/129"] {
            assert!(bad.parse::<Cidr>().is_err(), "{bad}");
        }
    }
}
