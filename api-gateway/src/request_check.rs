//! What the gateway refuses before it routes a request, and the two
//! corrections it makes to the request's head.
//!
//! - **`Host`** (RFC 9112 §3.2): an HTTP/1.1 request without one, a
//!   request with two, or one whose value is not `host[:port]` is answered
//!   400; nginx does the same. A request that names its authority in the
//!   request line (`GET http://a.example/x`, RFC 9112 §3.2.2) or in HTTP/2's
//!   `:authority` (RFC 9113 §8.3.1) has that authority as its `Host`,
//!   whatever `Host` said: the `Host` predicate, `X-Forwarded-Host` and
//!   `PreserveHostHeader` all see the authority the request was sent to.
//! - **Cookies of an HTTP/2 request**: HTTP/2 clients (browsers among
//!   them) may send each cookie in its own `cookie` field, for better
//!   header compression; those fields become one `Cookie`, joined with
//!   `"; "`, before the request goes on (RFC 9113 §8.2.3), because the
//!   upstream connection is HTTP/1.1, where a second `Cookie` line is not
//!   allowed (RFC 6265 §5.4) and many servers read only the first.
//! - **Dot-segments** in the path (`/api/../admin`, `/api/%2e%2e/admin`,
//!   Tomcat's `/api/..;/admin`, `..%2f`, `..\`): answered 400. A route
//!   matches the path without resolving them, and the upstream would
//!   resolve them, so `/public/../admin` would reach `/admin` through the
//!   `/public/**` route, past whatever guards the admin route. Browsers
//!   and HTTP clients remove dot-segments before they send a request, so
//!   only crafted requests carry them; Spring Security's firewall refuses
//!   them too.
//! - **Malformed escapes** in the path (`/a/%zz`): answered 400, as SCG
//!   answers them; routes match the decoded path
//!   ([`crate::predicate::pattern::decoded_path`]), which has none.
//! - **Runs of `/`** are made one before routing (`merged_slashes`),
//!   and the request goes on with the merged path: SCG forwards it merged
//!   (Spring's `UriComponentsBuilder`), and nginx routes on it
//!   (`merge_slashes`). SCG itself routes on the path as written, so that
//!   `//admin/x` takes a catch-all route and reaches the upstream as
//!   `/admin/x`; here it takes the `/admin/**` route.
//! - **`CONNECT`** (a tunnel through a forward proxy): 501. The gateway
//!   routes requests to paths; a `CONNECT` names only a host and port.
//!
//! All are pure functions of the request head; [`crate::gateway`] calls
//! them once per client request, before the route lookup.

use http::header::{self, HeaderValue};
use http::request::Parts;
use http::{StatusCode, Version};

/// Why a request is refused before routing (400 for each).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Refusal {
    /// An HTTP/1.1 request without `Host` and without an absolute URI.
    MissingHost,
    /// More than one `Host` field.
    RepeatedHost,
    /// A `Host` (or request-line authority) that is not `host[:port]`.
    InvalidHost,
    /// A `.` or `..` segment in the path, however it is written.
    DotSegment,
    /// A `%` in the path that is not followed by two hex digits (found
    /// when the path is decoded for routing).
    MalformedEscape,
    /// A `CONNECT` request: the gateway is not a forward proxy.
    Connect,
}

impl Refusal {
    /// The status the client gets.
    pub(crate) fn status(self) -> StatusCode {
        match self {
            Refusal::Connect => StatusCode::NOT_IMPLEMENTED,
            _ => StatusCode::BAD_REQUEST,
        }
    }

    /// The message in the error body.
    pub(crate) fn message(self) -> &'static str {
        match self {
            Refusal::MissingHost => "an HTTP/1.1 request needs a Host header",
            Refusal::RepeatedHost => "more than one Host header",
            Refusal::InvalidHost => "the Host header is not a valid host[:port]",
            Refusal::DotSegment => "the path has a '.' or '..' segment",
            Refusal::MalformedEscape => {
                "the path has a '%' that is not followed by two hexadecimal digits"
            }
            Refusal::Connect => "CONNECT is not supported: the gateway is not a forward proxy",
        }
    }
}

/// Checks the request's method, `Host` and path; with an authority in the
/// request target, makes it the `Host`; joins an HTTP/2 request's cookies.
/// The request's `Host` after the check (none in HTTP/1.0 without one),
/// which saves the caller another look-up.
pub(crate) fn check(parts: &mut Parts) -> Result<Option<HeaderValue>, Refusal> {
    if parts.method == http::Method::CONNECT {
        return Err(Refusal::Connect);
    }
    let host = check_host(parts)?;
    if parts.version >= Version::HTTP_2 {
        join_cookies(&mut parts.headers);
    }
    match has_dot_segment(parts.uri.path()) {
        true => Err(Refusal::DotSegment),
        false => Ok(host),
    }
}

fn check_host(parts: &mut Parts) -> Result<Option<HeaderValue>, Refusal> {
    let mut hosts = parts.headers.get_all(header::HOST).iter();
    let given = hosts.next();
    if hosts.next().is_some() {
        return Err(Refusal::RepeatedHost);
    }
    match parts.uri.authority() {
        Some(authority) => {
            // The authority without its `userinfo@` (RFC 9112 §3.2.2).
            let host = authority
                .as_str()
                .rsplit_once('@')
                .map_or(authority.as_str(), |(_, h)| h);
            if !is_host(host.as_bytes()) {
                return Err(Refusal::InvalidHost);
            }
            if let Some(g) = given
                && g.as_bytes() == host.as_bytes()
            {
                return Ok(Some(g.clone()));
            }
            let value = HeaderValue::from_str(host).map_err(|_| Refusal::InvalidHost)?;
            parts.headers.insert(header::HOST, value.clone());
            Ok(Some(value))
        }
        None => match given {
            None if parts.version == Version::HTTP_11 => Err(Refusal::MissingHost),
            Some(h) if !is_host(h.as_bytes()) => Err(Refusal::InvalidHost),
            given => Ok(given.cloned()),
        },
    }
}

/// Joins several `cookie` fields into one, in their order, with `"; "`.
fn join_cookies(headers: &mut http::HeaderMap) {
    let mut fields = headers.get_all(header::COOKIE).iter();
    let (Some(first), Some(_)) = (fields.next(), fields.next()) else {
        return;
    };
    let mut joined = first.as_bytes().to_vec();
    for field in headers.get_all(header::COOKIE).iter().skip(1) {
        joined.extend_from_slice(b"; ");
        joined.extend_from_slice(field.as_bytes());
    }
    // Each part was a valid field value, and so is "; ": the join is too.
    if let Ok(value) = HeaderValue::from_bytes(&joined) {
        headers.insert(header::COOKIE, value);
    }
}

/// The bytes a host name or IPv4 address may hold: unreserved,
/// sub-delims and `%`. A table, as every request's `Host` is checked.
const HOST_NAME_BYTES: [bool; 256] = byte_set(b"-._~!$&'()*+,;=%");

/// The ASCII letters and digits and `extra`, as a table indexed by byte.
const fn byte_set(extra: &[u8]) -> [bool; 256] {
    let mut set = [false; 256];
    let mut b = 0;
    while b < 256 {
        set[b] = (b as u8).is_ascii_alphanumeric();
        b += 1;
    }
    let mut i = 0;
    while i < extra.len() {
        set[extra[i] as usize] = true;
        i += 1;
    }
    set
}

/// Whether `value` is RFC 9110's `uri-host [ ":" port ]`: a registered
/// name or IPv4 address (unreserved, sub-delims and `%`), or an IP literal
/// in brackets, then optionally `:` and digits. Empty is allowed (RFC 9112
/// §3.2: the value a client sends when the target has no authority).
fn is_host(value: &[u8]) -> bool {
    let (host, rest) = match value.first() {
        Some(b'[') => match value.iter().position(|&c| c == b']') {
            Some(end) => {
                let literal = &value[1..end];
                let ok = !literal.is_empty()
                    && literal
                        .iter()
                        .all(|&c| c.is_ascii_alphanumeric() || b":.%-_~".contains(&c));
                if !ok {
                    return false;
                }
                (&value[..0], &value[end + 1..])
            }
            None => return false,
        },
        _ => {
            let end = value.iter().position(|&c| c == b':').unwrap_or(value.len());
            (&value[..end], &value[end..])
        }
    };
    let name_ok = host.iter().all(|&c| HOST_NAME_BYTES[usize::from(c)]);
    let port_ok = match rest.split_first() {
        None => true,
        Some((b':', digits)) => digits.iter().all(u8::is_ascii_digit),
        Some(_) => false,
    };
    name_ok && port_ok
}

/// Whether a segment of `path` is `.` or `..` once its `;parameters` are
/// cut off (as Tomcat does) and its percent-escapes decoded, or would be
/// if the upstream took a decoded `/` or a `\` for a separator.
pub(crate) fn has_dot_segment(path: &str) -> bool {
    let bytes = path.as_bytes();
    // Most paths have no dot, escape or backslash: one pass, no decoding.
    if !bytes.iter().any(|&c| matches!(c, b'.' | b'%' | b'\\')) {
        return false;
    }
    let mut decoded = Vec::new();
    bytes.split(|&c| c == b'/').any(|segment| {
        decoded.clear();
        percent_decode_into(segment, &mut decoded);
        decoded.split(|&c| c == b'/' || c == b'\\').any(is_dot)
    })
}

/// `path` with each run of `/` made one, when it has such a run.
pub(crate) fn merged_slashes(path: &str) -> Option<String> {
    // A byte scan: `str::contains("//")` sets up a substring searcher,
    // which costs more than a short path's whole scan.
    if !path.as_bytes().windows(2).any(|pair| pair == b"//") {
        return None;
    }
    let mut merged = String::with_capacity(path.len());
    for c in path.chars() {
        if !(c == '/' && merged.ends_with('/')) {
            merged.push(c);
        }
    }
    Some(merged)
}

/// `.` or `..` before any `;`.
fn is_dot(piece: &[u8]) -> bool {
    let name = piece.split(|&c| c == b';').next().unwrap_or(piece);
    name == b"." || name == b".."
}

fn percent_decode_into(segment: &[u8], out: &mut Vec<u8>) {
    let mut i = 0;
    while i < segment.len() {
        let c = segment[i];
        if c == b'%'
            && let Some(decoded) = cloud_runtime::percent::escape_at(segment, i)
        {
            out.push(decoded);
            i += 3;
            continue;
        }
        out.push(c);
        i += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parts(request: http::request::Builder) -> Parts {
        request.body(()).expect("valid request").into_parts().0
    }

    #[test]
    fn runs_of_slashes_are_merged() {
        assert_eq!(merged_slashes("/a/b/"), None);
        assert_eq!(merged_slashes("//admin/x").as_deref(), Some("/admin/x"));
        assert_eq!(merged_slashes("/a///b//").as_deref(), Some("/a/b/"));
        assert_eq!(merged_slashes("//").as_deref(), Some("/"));
    }

    #[test]
    fn connect_is_not_implemented() {
        let mut connect = parts(
            http::Request::builder()
                .method(http::Method::CONNECT)
                .uri("example.com:443")
                .header("host", "example.com:443"),
        );
        let refusal = check(&mut connect);
        assert_eq!(refusal, Err(Refusal::Connect));
        assert_eq!(Refusal::Connect.status(), StatusCode::NOT_IMPLEMENTED);
        assert_eq!(Refusal::DotSegment.status(), StatusCode::BAD_REQUEST);
    }

    #[test]
    fn an_http2_requests_cookie_fields_become_one_cookie() {
        let mut h2 = parts(
            http::Request::get("http://a.example/x")
                .version(Version::HTTP_2)
                .header("cookie", "a=1")
                .header("x-other", "y")
                .header("cookie", "b=2; c=3")
                .header("cookie", "d=4"),
        );
        let host = check(&mut h2);
        assert_eq!(host, Ok(h2.headers.get("host").cloned()));
        let cookies: Vec<_> = h2.headers.get_all(header::COOKIE).iter().collect();
        assert_eq!(cookies, ["a=1; b=2; c=3; d=4"]);

        // One field is left as it is; HTTP/1.1 is never touched (a second
        // line there is the client's own doing, passed on as sent).
        let mut one = parts(
            http::Request::get("http://a.example/x")
                .version(Version::HTTP_2)
                .header("cookie", "a=1"),
        );
        let host = check(&mut one);
        assert_eq!(host, Ok(one.headers.get("host").cloned()));
        assert_eq!(one.headers[header::COOKIE], "a=1");
        let mut h1 = parts(
            http::Request::get("/x")
                .header("host", "a.example")
                .header("cookie", "a=1")
                .header("cookie", "b=2"),
        );
        let host = check(&mut h1);
        assert_eq!(host, Ok(h1.headers.get("host").cloned()));
        assert_eq!(h1.headers.get_all(header::COOKIE).iter().count(), 2);
    }

    #[test]
    fn dot_segments_in_every_spelling_are_found() {
        for path in [
            "/api/../admin",
            "/api/./admin",
            "/..",
            "/api/..",
            "/api/%2e%2e/admin",
            "/api/%2E%2e/admin",
            "/api/.%2e/admin",
            "/api/..;/admin",
            "/api/..;jsessionid=1/admin",
            "/api/..%2fadmin",
            "/api/..%5cadmin",
            "/api/..\\admin",
            "/api/x\\..\\admin",
            "/api/%2e;x/admin",
        ] {
            assert!(has_dot_segment(path), "{path}");
        }
    }

    #[test]
    fn dots_inside_names_and_plain_paths_pass() {
        for path in [
            "/",
            "/api/hello",
            "/api/file.txt",
            "/api/.well-known/x",
            "/api/...",
            "/api/..x",
            "/api/x..",
            "/api/%2e%2e%2e",
            "/api/a%20b",
            "/api/%zz/..x",
            "/api/%252e%252e/x",
            "",
        ] {
            assert!(!has_dot_segment(path), "{path}");
        }
    }

    #[test]
    fn hosts_that_are_host_and_port_pass() {
        for host in [
            "example.com",
            "example.com:8080",
            "127.0.0.1:80",
            "[::1]:8080",
            "[fe80::1%25eth0]",
            "a-b_c~d",
            "",
            "example.com:",
        ] {
            assert!(is_host(host.as_bytes()), "{host}");
        }
        for host in [
            "a b",
            "user@evil",
            "a:b",
            "a:80:90",
            "[::1",
            "[]",
            "[::1]x",
            "a/b",
            "a\"b",
        ] {
            assert!(!is_host(host.as_bytes()), "{host}");
        }
    }

    #[test]
    fn an_http_1_1_request_needs_exactly_one_valid_host() {
        let mut p = parts(http::Request::get("/x"));
        assert_eq!(check(&mut p), Err(Refusal::MissingHost));

        let mut p = parts(http::Request::get("/x").version(Version::HTTP_10));
        let host = check(&mut p);
        assert_eq!(
            host,
            Ok(p.headers.get("host").cloned()),
            "HTTP/1.0 may leave Host out"
        );

        let mut p = parts(
            http::Request::get("/x")
                .header("host", "a")
                .header("host", "b"),
        );
        assert_eq!(check(&mut p), Err(Refusal::RepeatedHost));

        let mut p = parts(http::Request::get("/x").header("host", "user@evil"));
        assert_eq!(check(&mut p), Err(Refusal::InvalidHost));

        let mut p = parts(http::Request::get("/x").header("host", "a.example:8080"));
        let host = check(&mut p);
        assert_eq!(host, Ok(p.headers.get("host").cloned()));
        assert_eq!(p.headers["host"], "a.example:8080");
    }

    #[test]
    fn the_request_targets_authority_is_the_host() {
        let mut p =
            parts(http::Request::get("http://user@a.example:81/x?q=1").header("host", "b.example"));
        let host = check(&mut p);
        assert_eq!(host, Ok(p.headers.get("host").cloned()));
        assert_eq!(p.headers["host"], "a.example:81");
        assert_eq!(p.headers.get_all("host").iter().count(), 1);

        let mut p = parts(http::Request::get("http://a.example/x").version(Version::HTTP_2));
        let host = check(&mut p);
        assert_eq!(host, Ok(p.headers.get("host").cloned()));
        assert_eq!(p.headers["host"], "a.example");
    }

    #[test]
    fn a_dot_segment_is_refused_after_the_host_passes() {
        let mut p = parts(http::Request::get("/api/%2e%2e/admin").header("host", "a"));
        assert_eq!(check(&mut p), Err(Refusal::DotSegment));
        assert_eq!(Refusal::DotSegment.status(), StatusCode::BAD_REQUEST);
    }
}
