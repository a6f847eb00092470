//! `RemoveJsonAttributesResponseBody`: named attributes removed from a JSON
//! response body, without I/O (the gateway buffers the body and calls
//! [`JsonAttributes::rewrite`]).
//!
//! As SCG: only a body whose `Content-Type` is compatible with
//! `application/json` is changed; the attributes are removed from the
//! top-level object, or from every object at any depth when
//! `deleteRecursively` is true; an empty body stays empty; a body that is
//! not JSON fails the request (SCG: 500). Key order and everything else in
//! the document are kept. A `gzip` body is decoded, changed and encoded
//! again (SCG's `GzipMessageBodyResolver`); any other `Content-Encoding`
//! cannot be read and fails the request rather than pass the attributes
//! on.

use std::io::{Read, Write};

use bytes::Bytes;
use http::HeaderMap;
use http::header::{CONTENT_ENCODING, CONTENT_TYPE};
use serde_json::Value;

/// The attributes to remove, and whether at every depth.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JsonAttributes {
    names: Vec<String>,
    recursive: bool,
    limit: usize,
}

/// Why a body could not be rewritten.
#[derive(Debug, thiserror::Error)]
pub enum RewriteError {
    /// The body is not JSON.
    #[error("the response body is not JSON")]
    NotJson(#[source] serde_json::Error),
    /// The body is compressed in a way the gateway cannot read.
    #[error("the response body's Content-Encoding `{0}` cannot be read")]
    Encoding(String),
    /// The `gzip` body is corrupt.
    #[error("the response body is not valid gzip")]
    Gzip(#[source] std::io::Error),
}

impl RewriteError {
    /// Whether the body was not JSON.
    pub fn is_not_json(&self) -> bool {
        matches!(self, RewriteError::NotJson(_))
    }
}

impl JsonAttributes {
    /// Removes `names` from the top-level object, or from every object
    /// when `recursive`, in bodies of at most `limit` bytes
    /// (`spring.codec.max-in-memory-size`).
    pub fn new(names: Vec<String>, recursive: bool, limit: usize) -> JsonAttributes {
        JsonAttributes {
            names,
            recursive,
            limit,
        }
    }

    /// The most body bytes this filter reads (a larger body fails the
    /// request, as SCG's `DataBufferLimitException`).
    pub fn limit(&self) -> usize {
        self.limit
    }

    /// Whether a response with `headers` has a body this filter changes
    /// (its `Content-Type` is compatible with `application/json`).
    pub fn applies_to(headers: &HeaderMap) -> bool {
        headers
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(is_json_compatible)
    }

    /// The body without the attributes; `body` encoded as `headers` say.
    pub fn rewrite(&self, headers: &HeaderMap, body: &[u8]) -> Result<Bytes, RewriteError> {
        if body.is_empty() {
            return Ok(Bytes::new());
        }
        let encoding = headers.get(CONTENT_ENCODING).map(|v| {
            String::from_utf8_lossy(v.as_bytes())
                .trim()
                .to_ascii_lowercase()
        });
        match encoding.as_deref() {
            None | Some("" | "identity") => self.rewrite_plain(body).map(Bytes::from),
            Some("gzip" | "x-gzip") => {
                let mut plain = Vec::new();
                flate2::read::GzDecoder::new(body)
                    .read_to_end(&mut plain)
                    .map_err(RewriteError::Gzip)?;
                let rewritten = self.rewrite_plain(&plain)?;
                let mut encoder =
                    flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
                encoder.write_all(&rewritten).map_err(RewriteError::Gzip)?;
                encoder
                    .finish()
                    .map(Bytes::from)
                    .map_err(RewriteError::Gzip)
            }
            Some(other) => Err(RewriteError::Encoding(other.to_owned())),
        }
    }

    fn rewrite_plain(&self, body: &[u8]) -> Result<Vec<u8>, RewriteError> {
        let mut doc: Value = serde_json::from_slice(body).map_err(RewriteError::NotJson)?;
        self.remove(&mut doc);
        serde_json::to_vec(&doc).map_err(RewriteError::NotJson)
    }

    fn remove(&self, node: &mut Value) {
        if let Value::Object(map) = node {
            map.retain(|k, _| !self.names.iter().any(|n| n == k));
        }
        if self.recursive {
            match node {
                Value::Object(map) => map.values_mut().for_each(|v| self.remove(v)),
                Value::Array(items) => items.iter_mut().for_each(|v| self.remove(v)),
                _ => {}
            }
        }
    }
}

/// Spring's `MediaType.APPLICATION_JSON.isCompatibleWith(type)`:
/// `application/json` with any parameters, `application/*`,
/// `application/*+json`, `*/...`.
fn is_json_compatible(content_type: &str) -> bool {
    crate::media::compatible("application/json", content_type)
}

#[cfg(test)]
mod tests {
    use http::HeaderValue;

    use super::*;

    fn json_headers() -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        h
    }

    const DOC: &str =
        r#"{"id":1,"secret":"s","z":{"secret":2,"keep":[{"secret":3,"a":null}]},"b":1.5}"#;

    #[test]
    fn top_level_attributes_go_and_the_order_stays() {
        let f = JsonAttributes::new(vec!["secret".into(), "b".into()], false, 1024);
        let out = f.rewrite(&json_headers(), DOC.as_bytes()).expect("json");
        assert_eq!(
            std::str::from_utf8(&out).expect("utf-8"),
            r#"{"id":1,"z":{"secret":2,"keep":[{"secret":3,"a":null}]}}"#
        );
    }

    #[test]
    fn recursive_removal_reaches_objects_in_arrays() {
        let f = JsonAttributes::new(vec!["secret".into()], true, 1024);
        let out = f.rewrite(&json_headers(), DOC.as_bytes()).expect("json");
        assert_eq!(
            std::str::from_utf8(&out).expect("utf-8"),
            r#"{"id":1,"z":{"keep":[{"a":null}]},"b":1.5}"#
        );
        let top_array = f
            .rewrite(&json_headers(), br#"[{"secret":1}]"#)
            .expect("json");
        assert_eq!(&top_array[..], br#"[{}]"#);
    }

    #[test]
    fn gzip_bodies_are_decoded_and_encoded_again() {
        let mut headers = json_headers();
        headers.insert(CONTENT_ENCODING, HeaderValue::from_static("gzip"));
        let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        enc.write_all(DOC.as_bytes()).expect("in memory");
        let gz = enc.finish().expect("in memory");
        let f = JsonAttributes::new(vec!["secret".into()], false, 1024);
        let out = f.rewrite(&headers, &gz).expect("gzip json");
        let mut plain = String::new();
        flate2::read::GzDecoder::new(&out[..])
            .read_to_string(&mut plain)
            .expect("gzip");
        assert!(!plain.contains(r#""secret":"s""#), "{plain}");
        assert!(plain.starts_with(r#"{"id":1,"z""#), "{plain}");
    }

    #[test]
    fn bodies_it_cannot_read_are_errors_not_passed_on() {
        let f = JsonAttributes::new(vec!["secret".into()], false, 1024);
        let err = f
            .rewrite(&json_headers(), b"not json")
            .expect_err("not json");
        assert!(err.is_not_json());
        let mut br = json_headers();
        br.insert(CONTENT_ENCODING, HeaderValue::from_static("br"));
        let err = f.rewrite(&br, DOC.as_bytes()).expect_err("brotli");
        assert!(matches!(err, RewriteError::Encoding(e) if e == "br"));
        assert_eq!(f.rewrite(&json_headers(), b"").expect("empty"), "");
    }

    #[test]
    fn json_compatible_content_types_as_spring() {
        for yes in [
            "application/json",
            "application/json;charset=UTF-8",
            "Application/JSON",
            "application/*",
            "*/*",
            "application/*+json",
        ] {
            assert!(is_json_compatible(yes), "{yes}");
        }
        for no in [
            "text/plain",
            "application/problem+json",
            "application/xml",
            "json",
            "",
        ] {
            assert!(!is_json_compatible(no), "{no}");
        }
    }
}
