//! Response compression, as Spring Boot's `server.compression.*` turns it
//! on for SCG's server (Reactor Netty):
//!
//! ```yaml
//! server:
//!   compression:
//!     enabled: true                 # default false
//!     mime-types: text/html,application/json   # default: Spring Boot's list
//!     min-response-size: 2KB        # default 2KB
//!     excluded-user-agents: curl/8.0
//! ```
//!
//! A response is sent with `Content-Encoding: gzip` when the request takes
//! gzip (`Accept-Encoding`, `q` above 0), is not `HEAD`, and its
//! `User-Agent` is not excluded; and when the response has a body, a
//! `Content-Type` compatible with one of `mime-types` (Spring's
//! `isCompatibleWith`; never `text/event-stream`, whose events must not
//! wait in a buffer), no `Content-Encoding` of its own, no `Content-Range`,
//! no `Cache-Control: no-transform`, and a `Content-Length` (when it has
//! one) of at least `min-response-size`. Then `Content-Length` goes, `Vary:
//! Accept-Encoding` is added, and a strong `ETag` becomes weak (the bytes
//! differ). Each chunk the upstream sends is compressed and flushed on, so
//! a streamed body keeps streaming.

use std::io::Write as _;
use std::pin::Pin;
use std::task::{Context, Poll};

use axum::body::Body;
use bytes::Bytes;
use flate2::Compression as Level;
use flate2::write::GzEncoder;
use http::header::{self, HeaderMap, HeaderValue};
use http::{Method, Request, Response, StatusCode};
use hyper::body::{Body as HttpBody, Frame, SizeHint};
use serde_json::Value;

/// Spring Boot's default `server.compression.mime-types`.
const DEFAULT_MIME_TYPES: [&str; 8] = [
    "text/html",
    "text/xml",
    "text/plain",
    "text/css",
    "text/javascript",
    "application/javascript",
    "application/json",
    "application/xml",
];

/// Spring Boot's default `server.compression.min-response-size` (2KB).
const DEFAULT_MIN_RESPONSE_SIZE: u64 = 2048;

/// `server.compression.*` as written.
#[derive(Debug, Clone, Default, serde::Serialize, serde::Deserialize)]
#[serde(default, rename_all = "kebab-case")]
pub struct CompressionSettings {
    /// `enabled`: off by default, as Spring Boot.
    pub enabled: bool,
    /// `mime-types`: a list, or one comma-separated string.
    pub mime_types: Option<Value>,
    /// `min-response-size`: a Spring `DataSize` (`2KB`, `512B`, `1024`).
    pub min_response_size: Option<String>,
    /// `excluded-user-agents`: a list, or one comma-separated string.
    pub excluded_user_agents: Option<Value>,
}

/// A setting that does not read (the key under `server.compression`, and
/// why).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InvalidCompression {
    /// The full key.
    pub key: String,
    /// Why.
    pub reason: String,
}

/// When to compress, read from the settings.
#[derive(Debug, Clone)]
pub(crate) struct Compression {
    mime_types: Vec<String>,
    min_response_size: u64,
    excluded_user_agents: Vec<String>,
}

impl Compression {
    /// The compression `settings` ask for; `None` when not enabled.
    pub(crate) fn from_settings(
        settings: &CompressionSettings,
    ) -> Result<Option<Compression>, InvalidCompression> {
        if !settings.enabled {
            return Ok(None);
        }
        let mime_types = match &settings.mime_types {
            None => DEFAULT_MIME_TYPES.iter().map(|m| (*m).to_owned()).collect(),
            Some(v) => list(v, "server.compression.mime-types")?,
        };
        if let Some(bad) = mime_types.iter().find(|m| !m.contains('/')) {
            return Err(InvalidCompression {
                key: "server.compression.mime-types".to_owned(),
                reason: format!("`{bad}` is not a media type such as text/html"),
            });
        }
        let min_response_size = match settings.min_response_size.as_deref().map(str::trim) {
            None | Some("") => DEFAULT_MIN_RESPONSE_SIZE,
            Some(text) => {
                crate::filter::parse_data_size(text).ok_or_else(|| InvalidCompression {
                    key: "server.compression.min-response-size".to_owned(),
                    reason: format!("`{text}` is not a size such as 2KB"),
                })?
            }
        };
        let excluded_user_agents = match &settings.excluded_user_agents {
            None => Vec::new(),
            Some(v) => list(v, "server.compression.excluded-user-agents")?,
        };
        Ok(Some(Compression {
            mime_types,
            min_response_size,
            excluded_user_agents,
        }))
    }

    /// Whether the client of `request` takes a gzip body (and may get
    /// one).
    pub(crate) fn wanted_by<B>(&self, request: &Request<B>) -> bool {
        let headers = request.headers();
        request.method() != Method::HEAD
            && accepts_gzip(headers)
            && !headers
                .get(header::USER_AGENT)
                .and_then(|v| v.to_str().ok())
                .is_some_and(|ua| {
                    self.excluded_user_agents
                        .iter()
                        .any(|x| x.eq_ignore_ascii_case(ua.trim()))
                })
    }

    /// `response`, gzip-encoded when it should be (see the module).
    pub(crate) fn apply(&self, response: Response<Body>) -> Response<Body> {
        if !self.compresses(&response) {
            return response;
        }
        let (mut head, body) = response.into_parts();
        let headers = &mut head.headers;
        headers.remove(header::CONTENT_LENGTH);
        headers.insert(header::CONTENT_ENCODING, HeaderValue::from_static("gzip"));
        let varies = headers
            .get_all(header::VARY)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .any(|v| v.trim() == "*" || v.trim().eq_ignore_ascii_case("accept-encoding"));
        if !varies {
            headers.append(header::VARY, HeaderValue::from_static("Accept-Encoding"));
        }
        if let Some(tag) = headers.get(header::ETAG)
            && tag.as_bytes().starts_with(b"\"")
        {
            let mut weak = b"W/".to_vec();
            weak.extend_from_slice(tag.as_bytes());
            if let Ok(weak) = HeaderValue::from_bytes(&weak) {
                headers.insert(header::ETAG, weak);
            }
        }
        Response::from_parts(
            head,
            Body::new(Gzipped {
                inner: body,
                encoder: Some(GzEncoder::new(Vec::new(), Level::default())),
            }),
        )
    }

    fn compresses(&self, response: &Response<Body>) -> bool {
        let status = response.status();
        if status.is_informational()
            || status == StatusCode::NO_CONTENT
            || status == StatusCode::NOT_MODIFIED
            || status == StatusCode::PARTIAL_CONTENT
            || response.body().is_end_stream()
        {
            return false;
        }
        let headers = response.headers();
        let text = |name: header::HeaderName| headers.get(name).and_then(|v| v.to_str().ok());
        if text(header::CONTENT_ENCODING)
            .is_some_and(|e| !e.trim().eq_ignore_ascii_case("identity"))
            || headers.contains_key(header::CONTENT_RANGE)
            || headers
                .get_all(header::CACHE_CONTROL)
                .iter()
                .filter_map(|v| v.to_str().ok())
                .flat_map(|v| v.split(','))
                .any(|d| d.trim().eq_ignore_ascii_case("no-transform"))
        {
            return false;
        }
        let Some(content_type) = text(header::CONTENT_TYPE) else {
            return false;
        };
        let essence = content_type.split(';').next().unwrap_or("").trim();
        if essence.eq_ignore_ascii_case("text/event-stream") {
            return false;
        }
        if !self
            .mime_types
            .iter()
            .any(|m| crate::media::compatible(m, content_type))
        {
            return false;
        }
        match text(header::CONTENT_LENGTH).and_then(|n| n.trim().parse::<u64>().ok()) {
            Some(length) => length >= self.min_response_size,
            None => true,
        }
    }
}

/// A list setting: a YAML list, or one comma-separated string.
fn list(value: &Value, key: &str) -> Result<Vec<String>, InvalidCompression> {
    let items: Vec<String> = match value {
        Value::String(s) => s.split(',').map(|i| i.trim().to_owned()).collect(),
        Value::Array(items) => items
            .iter()
            .map(|i| match i {
                Value::String(s) => Ok(s.trim().to_owned()),
                other => Err(InvalidCompression {
                    key: key.to_owned(),
                    reason: format!("`{other}` is not a string"),
                }),
            })
            .collect::<Result<_, _>>()?,
        other => {
            return Err(InvalidCompression {
                key: key.to_owned(),
                reason: format!("`{other}` is not a list or a comma-separated string"),
            });
        }
    };
    Ok(items.into_iter().filter(|i| !i.is_empty()).collect())
}

/// Whether `Accept-Encoding` takes gzip: `gzip` (or `x-gzip`) with a `q`
/// above 0, or else `*` with a `q` above 0.
fn accepts_gzip(headers: &HeaderMap) -> bool {
    let mut star = false;
    for item in headers
        .get_all(header::ACCEPT_ENCODING)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
    {
        let mut parts = item.split(';');
        let coding = parts.next().unwrap_or("").trim();
        let q = parts
            .filter_map(|p| p.trim().strip_prefix("q="))
            .find_map(|q| q.trim().parse::<f32>().ok())
            .unwrap_or(1.0);
        if coding.eq_ignore_ascii_case("gzip") || coding.eq_ignore_ascii_case("x-gzip") {
            return q > 0.0;
        }
        if coding == "*" {
            star = q > 0.0;
        }
    }
    star
}

/// A body gzip-encoded as it streams: each chunk is compressed and flushed
/// on (a sync flush), the gzip trailer follows the last.
struct Gzipped {
    inner: Body,
    /// `None` once the trailer has been sent.
    encoder: Option<GzEncoder<Vec<u8>>>,
}

impl HttpBody for Gzipped {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        let this = &mut *self;
        loop {
            let Some(encoder) = this.encoder.as_mut() else {
                return Poll::Ready(None);
            };
            match Pin::new(&mut this.inner).poll_frame(cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(Some(Err(e))) => return Poll::Ready(Some(Err(e))),
                Poll::Ready(Some(Ok(frame))) => {
                    // Trailers have no place in a re-encoded body.
                    let Ok(data) = frame.into_data() else {
                        continue;
                    };
                    if let Err(e) = encoder.write_all(&data).and_then(|()| encoder.flush()) {
                        return Poll::Ready(Some(Err(axum::Error::new(e))));
                    }
                    let out = std::mem::take(encoder.get_mut());
                    if !out.is_empty() {
                        return Poll::Ready(Some(Ok(Frame::data(Bytes::from(out)))));
                    }
                }
                Poll::Ready(None) => {
                    let Some(encoder) = this.encoder.take() else {
                        return Poll::Ready(None);
                    };
                    return match encoder.finish() {
                        Ok(rest) => Poll::Ready(Some(Ok(Frame::data(Bytes::from(rest))))),
                        Err(e) => Poll::Ready(Some(Err(axum::Error::new(e)))),
                    };
                }
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.encoder.is_none()
    }

    fn size_hint(&self) -> SizeHint {
        SizeHint::default()
    }
}

#[cfg(test)]
mod tests {
    use std::io::Read as _;

    use http_body_util::BodyExt;

    use super::*;

    fn on() -> Compression {
        Compression::from_settings(&CompressionSettings {
            enabled: true,
            ..CompressionSettings::default()
        })
        .expect("defaults read")
        .expect("enabled")
    }

    fn response(content_type: &str, body: &'static str) -> Response<Body> {
        Response::builder()
            .header(header::CONTENT_TYPE, content_type)
            .header(header::CONTENT_LENGTH, body.len())
            .header(header::ETAG, "\"v1\"")
            .body(Body::from(body))
            .expect("response")
    }

    async fn gunzip(response: Response<Body>) -> String {
        let bytes = response
            .into_body()
            .collect()
            .await
            .expect("body")
            .to_bytes();
        let mut text = String::new();
        flate2::read::GzDecoder::new(&bytes[..])
            .read_to_string(&mut text)
            .expect("gzip");
        text
    }

    #[test]
    fn accept_encoding_is_read_with_its_weights() {
        let take = |v: &str| {
            let mut h = HeaderMap::new();
            h.insert(
                header::ACCEPT_ENCODING,
                HeaderValue::from_str(v).expect("value"),
            );
            accepts_gzip(&h)
        };
        assert!(take("gzip"));
        assert!(take("br, GZIP;q=0.5"));
        assert!(take("x-gzip"));
        assert!(take("*"));
        assert!(!take("gzip;q=0"));
        assert!(!take("gzip;q=0, *"), "an explicit refusal wins over *");
        assert!(!take("br, deflate"));
        assert!(!take("*;q=0"));
        assert!(!accepts_gzip(&HeaderMap::new()));
    }

    #[test]
    fn settings_are_springs_and_bad_ones_name_the_key() {
        assert!(
            Compression::from_settings(&CompressionSettings::default())
                .expect("reads")
                .is_none()
        );
        let c = Compression::from_settings(&CompressionSettings {
            enabled: true,
            mime_types: Some(Value::String("text/html, application/*+json".into())),
            min_response_size: Some("1KB".into()),
            excluded_user_agents: Some(serde_json::json!(["old-client/1"])),
        })
        .expect("reads")
        .expect("enabled");
        assert_eq!(c.mime_types, ["text/html", "application/*+json"]);
        assert_eq!(c.min_response_size, 1024);
        let bad = Compression::from_settings(&CompressionSettings {
            enabled: true,
            min_response_size: Some("lots".into()),
            ..CompressionSettings::default()
        })
        .expect_err("not a size");
        assert_eq!(bad.key, "server.compression.min-response-size");
        let bad = Compression::from_settings(&CompressionSettings {
            enabled: true,
            mime_types: Some(serde_json::json!(["html"])),
            ..CompressionSettings::default()
        })
        .expect_err("not a media type");
        assert_eq!(bad.key, "server.compression.mime-types");
    }

    #[test]
    fn requests_that_take_gzip_and_are_not_excluded_want_it() {
        let c = Compression::from_settings(&CompressionSettings {
            enabled: true,
            excluded_user_agents: Some(Value::String("Old-Client/1".into())),
            ..CompressionSettings::default()
        })
        .expect("reads")
        .expect("enabled");
        let get = |ua: &str| {
            Request::get("/")
                .header(header::ACCEPT_ENCODING, "gzip")
                .header(header::USER_AGENT, ua)
                .body(())
                .expect("request")
        };
        assert!(c.wanted_by(&get("curl/8")));
        assert!(!c.wanted_by(&get("old-client/1")));
        let head = Request::head("/")
            .header(header::ACCEPT_ENCODING, "gzip")
            .body(())
            .expect("request");
        assert!(!c.wanted_by(&head));
    }

    #[tokio::test]
    async fn a_large_json_body_is_gzipped_with_vary_and_a_weak_etag() {
        let text: &'static str = Box::leak("{\"k\":\"value\"}".repeat(400).into_boxed_str());
        let out = on().apply(response("application/json;charset=UTF-8", text));
        let h = out.headers();
        assert_eq!(h[header::CONTENT_ENCODING], "gzip");
        assert!(h.get(header::CONTENT_LENGTH).is_none());
        assert_eq!(h[header::VARY], "Accept-Encoding");
        assert_eq!(h[header::ETAG], "W/\"v1\"");
        assert_eq!(gunzip(out).await, text);
    }

    #[tokio::test]
    async fn what_is_small_encoded_or_not_listed_passes_untouched() {
        let c = on();
        let small = c.apply(response("application/json", "{}"));
        assert!(small.headers().get(header::CONTENT_ENCODING).is_none());
        let big: &'static str = Box::leak("x".repeat(4096).into_boxed_str());
        for content_type in ["image/png", "text/event-stream", "application/octet-stream"] {
            let out = c.apply(response(content_type, big));
            assert!(
                out.headers().get(header::CONTENT_ENCODING).is_none(),
                "{content_type}"
            );
        }
        let mut encoded = response("text/plain", big);
        encoded
            .headers_mut()
            .insert(header::CONTENT_ENCODING, HeaderValue::from_static("br"));
        assert_eq!(c.apply(encoded).headers()[header::CONTENT_ENCODING], "br");
        let mut no_transform = response("text/plain", big);
        no_transform.headers_mut().insert(
            header::CACHE_CONTROL,
            HeaderValue::from_static("public, no-transform"),
        );
        assert!(
            c.apply(no_transform)
                .headers()
                .get(header::CONTENT_ENCODING)
                .is_none()
        );
        let mut not_modified = response("text/plain", big);
        *not_modified.status_mut() = StatusCode::NOT_MODIFIED;
        assert!(
            c.apply(not_modified)
                .headers()
                .get(header::CONTENT_ENCODING)
                .is_none()
        );
    }

    #[tokio::test]
    async fn a_streamed_body_without_length_is_compressed_chunk_by_chunk() {
        let chunks = ["first chunk\n", "second chunk\n", "third chunk\n"];
        let stream = futures::stream::iter(
            chunks.map(|c| Ok::<_, std::io::Error>(Bytes::from_static(c.as_bytes()))),
        );
        let response = Response::builder()
            .header(header::CONTENT_TYPE, "text/plain")
            .body(Body::from_stream(stream))
            .expect("response");
        let out = on().apply(response);
        assert_eq!(out.headers()[header::CONTENT_ENCODING], "gzip");
        let mut body = out.into_body();
        let mut frames = 0;
        let mut all = Vec::new();
        while let Some(frame) = body.frame().await {
            let data = frame.expect("frame").into_data().expect("data");
            assert!(!data.is_empty());
            all.extend_from_slice(&data);
            frames += 1;
        }
        assert_eq!(frames, 4, "one per chunk, then the trailer");
        let mut text = String::new();
        flate2::read::GzDecoder::new(&all[..])
            .read_to_string(&mut text)
            .expect("gzip");
        assert_eq!(text, chunks.concat());
    }
}
