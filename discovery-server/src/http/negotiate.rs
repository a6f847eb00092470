//! Content negotiation as Eureka does it: JSON only when `Accept` mentions
//! `json`, XML otherwise; gzip when `Accept-Encoding` allows it; request
//! bodies inflated when `Content-Encoding: gzip` (as Jersey's
//! `GZIPContentEncodingFilter` in front of every Eureka resource) and read
//! by `Content-Type`, or sniffed when there is none.

use std::convert::Infallible;

use axum::body::Body;
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::Response;
use bytes::Bytes;
use cloud_protocol::eureka::{
    ApplicationView, ApplicationsView, Detail, InstanceInfo, InstanceView, LeaseInfo, json, xml,
};
use flate2::Compression;
use flate2::write::GzEncoder;
use std::io::{Read as _, Write as _};

use super::error::AppError;
use crate::registry::Snapshot;

/// A wire format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Format {
    Json,
    Xml,
}

impl Format {
    /// The format a response should use, from the `Accept` header.
    pub(crate) fn from_accept(headers: &HeaderMap) -> Format {
        let wants_json = headers.get_all(header::ACCEPT).iter().any(|v| {
            v.as_bytes()
                .windows(4)
                .any(|w| w.eq_ignore_ascii_case(b"json"))
        });
        if wants_json {
            Format::Json
        } else {
            Format::Xml
        }
    }

    /// The format of a request body, from `Content-Type`, else sniffed
    /// when there is none. `None` for a content type that is neither JSON
    /// nor XML (Eureka's resources consume only those: `415`).
    pub(crate) fn of_body(headers: &HeaderMap, body: &[u8]) -> Option<Format> {
        let Some(content_type) = headers.get(header::CONTENT_TYPE) else {
            let sniffed_xml = body.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'<');
            return Some(if sniffed_xml {
                Format::Xml
            } else {
                Format::Json
            });
        };
        let content_type = content_type.to_str().ok()?.to_ascii_lowercase();
        if content_type.contains("json") {
            Some(Format::Json)
        } else if content_type.contains("xml") {
            Some(Format::Xml)
        } else {
            None
        }
    }

    pub(crate) fn content_type(self) -> &'static str {
        match self {
            Format::Json => "application/json",
            Format::Xml => "application/xml",
        }
    }

    pub(crate) fn index(self) -> usize {
        match self {
            Format::Json => 0,
            Format::Xml => 1,
        }
    }

    /// Decodes a registration body; XML within `xml_limits`.
    pub(crate) fn decode_instance(
        self,
        body: &[u8],
        xml_limits: &xml::XmlLimits,
    ) -> Result<InstanceInfo, cloud_protocol::eureka::DecodeError> {
        match self {
            Format::Json => json::decode_instance(body),
            Format::Xml => xml::decode_instance_within(body, xml_limits),
        }
    }
}

/// The response format, detail and encoding a request asks for, read from
/// its headers (`Accept`, `X-Eureka-Accept`, `Accept-Encoding`) without
/// copying them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Negotiated {
    pub(crate) format: Format,
    pub(crate) detail: Detail,
    pub(crate) gzip: bool,
}

/// Eureka's header for the full or compact instance shape.
pub(crate) const EUREKA_ACCEPT: &str = "x-eureka-accept";

impl<S: Send + Sync> FromRequestParts<S> for Negotiated {
    type Rejection = Infallible;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        let eureka_accept = parts
            .headers
            .get(EUREKA_ACCEPT)
            .and_then(|v| v.to_str().ok());
        Ok(Negotiated {
            format: Format::from_accept(&parts.headers),
            detail: Detail::from_header(eureka_accept),
            gzip: wants_gzip(&parts.headers),
        })
    }
}

impl Negotiated {
    /// Writes `<applications>` / `{"applications":...}` for a snapshot,
    /// with the given `versions__delta` and `apps__hashcode`.
    pub(crate) fn write_applications(
        self,
        snap: &Snapshot,
        version_delta: i64,
        hashcode: &str,
    ) -> Vec<u8> {
        let view = self.applications_view(snap, version_delta, hashcode);
        let instances: usize = snap.applications.iter().map(|(_, l)| l.len()).sum();
        let mut out = Vec::with_capacity(1200 * instances + 256);
        match self.format {
            Format::Json => json::write_applications_document(&mut out, &view),
            Format::Xml => xml::write_applications(&mut out, &view),
        }
        out
    }

    /// Writes the single application of a snapshot.
    pub(crate) fn write_application(self, snap: &Snapshot) -> Vec<u8> {
        let view = self.applications_view(snap, 0, "");
        let mut out = Vec::with_capacity(4096);
        for app in view.applications.iter().take(1) {
            match self.format {
                Format::Json => json::write_application_document(&mut out, app),
                Format::Xml => xml::write_application(&mut out, app),
            }
        }
        out
    }

    /// Writes one instance.
    pub(crate) fn write_instance(self, info: &InstanceInfo, lease: LeaseInfo) -> Vec<u8> {
        let view = InstanceView {
            info,
            lease: Some(lease),
            detail: self.detail,
        };
        let mut out = Vec::with_capacity(1500);
        match self.format {
            Format::Json => json::write_instance_document(&mut out, view),
            Format::Xml => xml::write_instance(&mut out, view),
        }
        out
    }

    fn applications_view<'a>(
        self,
        snap: &'a Snapshot,
        version_delta: i64,
        hashcode: &'a str,
    ) -> ApplicationsView<'a> {
        ApplicationsView {
            version_delta,
            apps_hashcode: hashcode,
            applications: snap
                .applications
                .iter()
                .map(|(name, list)| ApplicationView {
                    name,
                    instances: list
                        .iter()
                        .map(|(info, lease)| InstanceView {
                            info,
                            lease: Some(*lease),
                            detail: self.detail,
                        })
                        .collect(),
                })
                .collect(),
        }
    }

    /// A `200` for a freshly written body, gzipped on the way when asked.
    pub(crate) fn respond(self, bytes: Vec<u8>) -> Response {
        if self.gzip {
            body_response(self.format, true, Bytes::from(gzip(&bytes)))
        } else {
            body_response(self.format, false, Bytes::from(bytes))
        }
    }
}

/// Whether the client accepts gzip.
pub(crate) fn wants_gzip(headers: &HeaderMap) -> bool {
    headers.get_all(header::ACCEPT_ENCODING).iter().any(|v| {
        v.to_str().is_ok_and(|s| {
            s.split(',').any(|part| {
                let mut it = part.split(';');
                let name = it.next().unwrap_or("").trim();
                let q_zero = it.any(|p| p.trim().replace(' ', "") == "q=0");
                (name.eq_ignore_ascii_case("gzip") || name == "*") && !q_zero
            })
        })
    })
}

/// A request body as sent, or inflated when it is `Content-Encoding: gzip`;
/// a `400` for a broken gzip stream or more than `limit` inflated bytes.
pub(crate) fn inflate_body(
    headers: &HeaderMap,
    body: Bytes,
    limit: usize,
) -> Result<Bytes, AppError> {
    let gzipped = headers.get_all(header::CONTENT_ENCODING).iter().any(|v| {
        v.to_str()
            .is_ok_and(|v| v.trim().eq_ignore_ascii_case("gzip"))
    });
    if !gzipped {
        return Ok(body);
    }
    let mut out = Vec::new();
    flate2::read::GzDecoder::new(&body[..])
        .take(limit as u64 + 1)
        .read_to_end(&mut out)
        .map_err(|e| AppError::BadRequest(format!("bad gzip body: {e}")))?;
    if out.len() > limit {
        return Err(AppError::BadRequest("body too large".to_owned()));
    }
    Ok(Bytes::from(out))
}

/// Gzips `bytes` at the fast level (responses are rebuilt often and read
/// over fast links).
pub(crate) fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut encoder = GzEncoder::new(
        Vec::with_capacity(bytes.len() / 6 + 64),
        Compression::fast(),
    );
    // Writing into a Vec cannot fail.
    let _ = encoder.write_all(bytes);
    #[allow(clippy::expect_used)]
    encoder.finish().expect("gzip into a Vec cannot fail")
}

/// A `200` with a body in `format`, already gzipped when `gzipped`.
pub(crate) fn body_response(format: Format, gzipped: bool, bytes: Bytes) -> Response {
    let mut response = Response::new(Body::from(bytes));
    *response.status_mut() = StatusCode::OK;
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(format.content_type()),
    );
    headers.insert(
        header::VARY,
        HeaderValue::from_static("Accept, Accept-Encoding"),
    );
    if gzipped {
        headers.insert(header::CONTENT_ENCODING, HeaderValue::from_static("gzip"));
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(header::HeaderName, &'static str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(k.clone(), HeaderValue::from_static(v));
        }
        h
    }

    #[test]
    fn json_only_when_accept_mentions_json() {
        assert_eq!(Format::from_accept(&headers(&[])), Format::Xml);
        assert_eq!(
            Format::from_accept(&headers(&[(header::ACCEPT, "*/*")])),
            Format::Xml
        );
        assert_eq!(
            Format::from_accept(&headers(&[(header::ACCEPT, "application/JSON, */*")])),
            Format::Json
        );
    }

    #[test]
    fn gzip_when_allowed() {
        assert!(wants_gzip(&headers(&[(
            header::ACCEPT_ENCODING,
            "deflate, gzip;q=0.8"
        )])));
        assert!(!wants_gzip(&headers(&[(
            header::ACCEPT_ENCODING,
            "gzip;q=0"
        )])));
        assert!(!wants_gzip(&headers(&[])));
    }

    #[test]
    fn bodies_are_sniffed_only_without_a_content_type() {
        assert_eq!(
            Format::of_body(&headers(&[]), b"  <instance/>"),
            Some(Format::Xml)
        );
        assert_eq!(Format::of_body(&headers(&[]), b"{}"), Some(Format::Json));
        assert_eq!(
            Format::of_body(&headers(&[(header::CONTENT_TYPE, "text/xml")]), b"{}"),
            Some(Format::Xml)
        );
        assert_eq!(
            Format::of_body(
                &headers(&[(header::CONTENT_TYPE, "application/json; charset=UTF-8")]),
                b"<x/>"
            ),
            Some(Format::Json)
        );
        assert_eq!(
            Format::of_body(&headers(&[(header::CONTENT_TYPE, "text/plain")]), b"{}"),
            None
        );
    }
}
