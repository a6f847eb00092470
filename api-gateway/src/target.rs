//! Where a request goes: a route's `uri` ([`Target`]), and the destination
//! a request may carry instead ([`RequestUri`], set by SCG's `SetRequestUri`
//! and `RequestHeaderToRequestUri`). Parsing only, no I/O.

use http::uri::Authority;

use crate::config::InvalidDefinition;

/// Where a route sends its requests.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// A fixed upstream (`http://`, `https://`, `ws://`, `wss://`; the
    /// path of the URI is not used, as in SCG).
    Fixed {
        /// `https` or `wss`.
        secure: bool,
        /// `host:port` (the port defaults to 80 or 443).
        authority: Authority,
        /// The `Host` it gives its requests: the authority, made once.
        host: http::HeaderValue,
    },
    /// A service by name (`lb://name`, `lb:ws://name`).
    Service(String),
    /// Another path of this gateway (`forward:/path`), matched again
    /// against the routes.
    Forward(String),
}

/// Parses a route's `uri`.
pub fn parse_target(uri: &str) -> Result<Target, InvalidDefinition> {
    let fail = |reason: &str| InvalidDefinition::new("uri", format!("`{uri}` {reason}"));
    if let Some(path) = uri.strip_prefix("forward:") {
        if !path.starts_with('/') {
            return Err(fail("must be forward:/path"));
        }
        return Ok(Target::Forward(path.to_owned()));
    }
    if let Some(rest) = uri
        .strip_prefix("lb:ws://")
        .or_else(|| uri.strip_prefix("lb:wss://"))
        .or_else(|| uri.strip_prefix("lb://"))
    {
        let name = rest.split(['/', '?']).next().unwrap_or("");
        if name.is_empty() || name.contains(['@', ' ']) {
            return Err(fail("names no service (expected lb://service-name)"));
        }
        return Ok(Target::Service(name.to_owned()));
    }
    let parsed: http::Uri = uri
        .parse()
        .map_err(|e| fail("is not a URI").with_source(e))?;
    let secure = match parsed.scheme_str().map(str::to_ascii_lowercase).as_deref() {
        Some("http" | "ws") => false,
        Some("https" | "wss") => true,
        _ => {
            return Err(fail(
                "has no supported scheme (http, https, ws, wss, lb, lb:ws, forward)",
            ));
        }
    };
    let authority = parsed.authority().ok_or_else(|| fail("has no host"))?;
    let authority = match authority.port_u16() {
        Some(_) => authority.clone(),
        None => {
            let port = if secure { 443 } else { 80 };
            format!("{}:{port}", authority.host())
                .parse()
                .map_err(|e| fail("has a bad host").with_source(e))?
        }
    };
    Target::fixed(secure, authority).map_err(|e| fail("has a bad host").with_source(e))
}

impl Target {
    /// A fixed upstream at `authority`, with the `Host` it gives.
    pub fn fixed(
        secure: bool,
        authority: Authority,
    ) -> Result<Target, http::header::InvalidHeaderValue> {
        let host = http::HeaderValue::from_str(authority.as_str())?;
        Ok(Target::Fixed {
            secure,
            authority,
            host,
        })
    }
}

/// A destination a request carries instead of its route's `uri`: an
/// absolute `http://`, `https://` or `lb://` URI whose path and query
/// replace the request's own (as SCG's `GATEWAY_REQUEST_URL_ATTR`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestUri {
    /// Where to send it ([`Target::Fixed`] or [`Target::Service`]).
    pub target: Target,
    /// The path (`/` when the URI has none) and query to send.
    pub path_and_query: String,
}

impl RequestUri {
    /// Parses `text`; none when it is not an absolute `http`, `https` or
    /// `lb` URI with a host (SCG then keeps the route's `uri`).
    pub fn parse(text: &str) -> Option<RequestUri> {
        let uri: http::Uri = text.trim().parse().ok()?;
        let scheme = uri.scheme_str()?.to_ascii_lowercase();
        if !matches!(scheme.as_str(), "http" | "https" | "lb") {
            return None;
        }
        let authority = uri.authority()?;
        if authority.host().is_empty() || authority.as_str().contains('@') {
            return None;
        }
        let target = parse_target(&format!("{scheme}://{authority}")).ok()?;
        let path_and_query = match uri.path_and_query().map(|p| p.as_str()) {
            None | Some("") => "/".to_owned(),
            Some(p) if p.starts_with('/') => p.to_owned(),
            Some(p) => format!("/{p}"),
        };
        Some(RequestUri {
            target,
            path_and_query,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_request_uri_is_an_absolute_http_https_or_lb_uri() {
        let parsed = RequestUri::parse("http://example.org/a/b?c=d").expect("valid");
        assert_eq!(
            parsed.target,
            Target::fixed(false, Authority::from_static("example.org:80")).expect("host")
        );
        assert_eq!(parsed.path_and_query, "/a/b?c=d");
        let parsed = RequestUri::parse("https://example.org:8443").expect("valid");
        assert_eq!(
            parsed.target,
            Target::fixed(true, Authority::from_static("example.org:8443")).expect("host")
        );
        assert_eq!(parsed.path_and_query, "/");
        let parsed = RequestUri::parse("lb://users/x").expect("valid");
        assert_eq!(parsed.target, Target::Service("users".to_owned()));
        assert_eq!(parsed.path_and_query, "/x");
        for bad in [
            "",
            "/relative/path",
            "invalid_uri",
            "ftp://example.org/",
            "forward:/elsewhere",
            "http://user@example.org/",
            "http://exa mple.org/",
        ] {
            assert_eq!(RequestUri::parse(bad), None, "{bad}");
        }
    }
}
