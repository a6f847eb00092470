//! The HTTP edge of the JWKS cache: `GET jwk-set-uri`, or, with only an
//! `issuer-uri`, the `jwks_uri` of its OpenID discovery document
//! (`{issuer}/.well-known/openid-configuration`) first.

use std::future::Future;
use std::pin::Pin;
use std::sync::Mutex;
use std::time::Duration;

use bytes::Bytes;
use rustls_pki_types::CertificateDer;

use super::keys::{FetchError, JwksSource};

/// Largest JWKS or discovery document read.
const MAX_DOCUMENT: usize = 1024 * 1024;

/// Where the JWKS is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JwksLocation {
    /// `jwk-set-uri`.
    Direct(String),
    /// `issuer-uri`: the discovery document names the JWKS.
    Issuer(String),
}

/// Fetches the JWKS over HTTP.
#[derive(Debug)]
pub struct HttpJwks {
    location: JwksLocation,
    client: reqwest::Client,
    /// The `jwks_uri` once discovered.
    discovered: Mutex<Option<String>>,
}

impl HttpJwks {
    /// A fetcher for `location`, each request limited to `timeout`; an
    /// `https` server is checked against `roots` (DER certificates), or the
    /// bundled Mozilla roots when there are none.
    pub fn new(
        location: JwksLocation,
        timeout: Duration,
        roots: &[CertificateDer<'_>],
    ) -> Result<HttpJwks, FetchError> {
        let mut builder = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(timeout);
        if !roots.is_empty() {
            builder = builder.tls_built_in_root_certs(false);
            for root in roots {
                let certificate = reqwest::Certificate::from_der(root)
                    .map_err(|e| FetchError::new("", "not a usable certificate").with_source(e))?;
                builder = builder.add_root_certificate(certificate);
            }
        }
        let client = builder
            .build()
            .map_err(|e| FetchError::new("", "no HTTP client").with_source(e))?;
        Ok(HttpJwks {
            location,
            client,
            discovered: Mutex::new(None),
        })
    }

    async fn get(&self, url: &str) -> Result<Bytes, FetchError> {
        let fail = |reason: &str| FetchError::new(url, reason);
        let mut response = self
            .client
            .get(url)
            .header(http::header::ACCEPT, "application/json")
            .send()
            .await
            .map_err(|e| fail("request failed").with_source(e))?;
        if !response.status().is_success() {
            return Err(fail(&format!("answered {}", response.status())));
        }
        if response
            .content_length()
            .is_some_and(|n| n > MAX_DOCUMENT as u64)
        {
            return Err(fail("document larger than 1 MiB"));
        }
        let mut body = Vec::new();
        while let Some(chunk) = response
            .chunk()
            .await
            .map_err(|e| fail("body not read").with_source(e))?
        {
            if body.len() + chunk.len() > MAX_DOCUMENT {
                return Err(fail("document larger than 1 MiB"));
            }
            body.extend_from_slice(&chunk);
        }
        Ok(Bytes::from(body))
    }

    async fn jwks_uri(&self) -> Result<String, FetchError> {
        let issuer = match &self.location {
            JwksLocation::Direct(url) => return Ok(url.clone()),
            JwksLocation::Issuer(issuer) => issuer,
        };
        if let Some(uri) = self
            .discovered
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
        {
            return Ok(uri);
        }
        let url = format!(
            "{}/.well-known/openid-configuration",
            issuer.trim_end_matches('/')
        );
        let body = self.get(&url).await?;
        let doc: serde_json::Value = serde_json::from_slice(&body)
            .map_err(|e| FetchError::new(&url, "not JSON").with_source(e))?;
        let uri = doc
            .get("jwks_uri")
            .and_then(serde_json::Value::as_str)
            .ok_or_else(|| FetchError::new(&url, "names no `jwks_uri`"))?
            .to_owned();
        *self
            .discovered
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(uri.clone());
        Ok(uri)
    }
}

impl JwksSource for HttpJwks {
    fn fetch(&self) -> Pin<Box<dyn Future<Output = Result<Bytes, FetchError>> + Send + '_>> {
        Box::pin(async move {
            let uri = self.jwks_uri().await?;
            self.get(&uri).await
        })
    }
}
