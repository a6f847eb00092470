//! TLS with rustls (the `ring` provider): the server side from Spring
//! Boot's `server.ssl.*` PEM keys, with the certificate reloaded when its
//! files change, and the client side of `https://` upstreams from SCG's
//! `spring.cloud.gateway.httpclient.ssl.*`.
//!
//! ```yaml
//! server:
//!   ssl:
//!     enabled: true                       # default; TLS is on once a certificate is set
//!     certificate: /etc/gw/tls.crt        # PEM chain (path, file:path or the PEM itself)
//!     certificate-private-key: /etc/gw/tls.key   # PEM key (PKCS#8, PKCS#1 or SEC1)
//!     reload-interval: 5s                 # ours: how often the files are checked; 0 turns it off
//!     client-auth: none                   # need | want: ask clients for certificates...
//!     trust-certificate: /etc/gw/clients.pem   # ...signed by these (read at start)
//! spring:
//!   ssl.bundle.pem.upstreams:             # Spring Boot's PEM SSL bundle
//!     keystore: { certificate: /etc/gw/client.crt, private-key: /etc/gw/client.key }
//!     truststore.certificate: /etc/gw/upstream-ca.pem
//!   cloud.gateway.httpclient.ssl:
//!     use-insecure-trust-manager: false   # true: any upstream certificate is accepted
//!     trusted-x509-certificates: []       # PEM files; when set, the only trusted roots
//!     ssl-bundle: upstreams               # client certificate (mutual TLS) and roots
//! ```
//!
//! Reload: every `reload-interval` the certificate and key files are read
//! again; when their bytes changed and the new pair parses and matches,
//! new handshakes present it (open connections keep theirs). A pair that
//! does not load (a half-written swap, a key that does not match) is
//! logged once and the old certificate stays until the files are fixed.
//! Polling the contents, not the mtime, catches a swap within the same
//! second and an atomic rename alike.
//!
//! Clients may pick HTTP/2 or HTTP/1.1 by ALPN (`h2`, `http/1.1`), as
//! cleartext connections may pick h2c with prior knowledge.
//! `server.ssl.key-store` (JKS, PKCS#12) is not supported: it is refused
//! with a message to convert the store to PEM.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use arc_swap::ArcSwap;
use cloud_runtime::settings::{ConfigError, Origin};
use rustls::crypto::CryptoProvider;
use rustls::server::{ClientHello, ResolvesServerCert, WebPkiClientVerifier};
use rustls::sign::CertifiedKey;
use rustls::{ClientConfig, RootCertStore, ServerConfig};
use rustls_pki_types::pem::PemObject as _;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use serde::{Deserialize, Serialize};
use tokio_util::sync::CancellationToken;

/// `server.ssl.*`: TLS for clients (Spring Boot's PEM keys). Its `Debug`
/// hides a private key given inline.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, rename_all = "kebab-case")]
pub struct Ssl {
    /// `enabled`: TLS is served when this is true and a certificate is
    /// set. Default is true (as Spring Boot).
    pub enabled: bool,
    /// `certificate`: the certificate chain, PEM: a path, `file:` and a
    /// path, or the PEM text itself. Default is none (no TLS).
    pub certificate: String,
    /// `certificate-private-key`: the private key, PEM (PKCS#8, PKCS#1 or
    /// SEC1, unencrypted), in the same forms. Default is none.
    pub certificate_private_key: String,
    /// `key-store`: not supported (refused when set, with TLS enabled).
    pub key_store: String,
    /// `client-auth`: whether clients must present a certificate signed
    /// by one of `trust-certificate`'s: `need` (the handshake fails
    /// without one), `want` (asked for; a client without one still
    /// connects, one with a bad one does not) or `none`. Default is none.
    pub client_auth: String,
    /// `trust-certificate`: the PEM certificates client certificates are
    /// checked against, in the forms of `certificate`; required with
    /// `client-auth`. Read at start. Default is none.
    pub trust_certificate: String,
    /// `bundle`: the name of a Spring Boot SSL bundle
    /// (`spring.ssl.bundle.pem.<name>`) whose key store is the certificate
    /// and key, and whose trust store is `trust-certificate`; not with
    /// those keys set. Default is none.
    pub bundle: String,
    /// `reload-interval`: how often the certificate files are read again
    /// to pick up a new certificate. Default is 5 seconds; 0 turns
    /// reloading off.
    #[serde(
        deserialize_with = "cloud_runtime::duration::deserialize",
        serialize_with = "cloud_runtime::duration::serialize_millis"
    )]
    pub reload_interval: Duration,
}

impl Default for Ssl {
    fn default() -> Self {
        Ssl {
            enabled: true,
            certificate: String::new(),
            certificate_private_key: String::new(),
            key_store: String::new(),
            client_auth: String::new(),
            trust_certificate: String::new(),
            bundle: String::new(),
            reload_interval: Duration::from_secs(5),
        }
    }
}

impl std::fmt::Debug for Ssl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let key = if self
            .certificate_private_key
            .trim()
            .starts_with("-----BEGIN")
        {
            "<inline PEM, hidden>"
        } else {
            self.certificate_private_key.as_str()
        };
        f.debug_struct("Ssl")
            .field("enabled", &self.enabled)
            .field("certificate", &self.certificate)
            .field("certificate_private_key", &key)
            .field("key_store", &self.key_store)
            .field("client_auth", &self.client_auth)
            .field("trust_certificate", &self.trust_certificate)
            .field("bundle", &self.bundle)
            .field("reload_interval", &self.reload_interval)
            .finish()
    }
}

impl Ssl {
    /// These settings with `bundle`'s PEM stores in place of the keys it
    /// stands for.
    fn with_bundle(&self, bundle: &PemBundle) -> Result<Ssl, TlsError> {
        let own = [
            &self.certificate,
            &self.certificate_private_key,
            &self.trust_certificate,
            &self.key_store,
        ];
        if own.iter().any(|v| !v.trim().is_empty()) {
            return Err(TlsError::new(
                "server.ssl.bundle",
                "cannot be used with server.ssl.certificate, certificate-private-key, trust-certificate or key-store: set one or the other",
            ));
        }
        if !bundle.keystore.private_key_password.is_empty() {
            return Err(TlsError::new(
                "server.ssl.certificate-private-key",
                "encrypted private keys are not supported: decrypt the key (openssl pkey -in key.pem -out plain.pem)",
            ));
        }
        Ok(Ssl {
            certificate: bundle.keystore.certificate.clone(),
            certificate_private_key: bundle.keystore.private_key.clone(),
            trust_certificate: bundle.truststore.certificate.clone(),
            bundle: String::new(),
            ..self.clone()
        })
    }

    /// Whether TLS is to be served: enabled, and a certificate, key or
    /// key store set (a missing partner is then an error, not plain HTTP).
    pub fn is_on(&self) -> bool {
        self.enabled
            && [
                &self.certificate,
                &self.certificate_private_key,
                &self.key_store,
                &self.bundle,
            ]
            .iter()
            .any(|v| !v.trim().is_empty())
    }
}

/// `spring.cloud.gateway.httpclient.ssl.*`: how `https://` upstreams are
/// trusted.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, rename_all = "kebab-case")]
pub struct ClientSsl {
    /// `use-insecure-trust-manager`: accept any upstream certificate (for
    /// tests and trusted networks only). Default is false.
    pub use_insecure_trust_manager: bool,
    /// `trusted-x509-certificates`: PEM files (paths or `file:` paths)
    /// whose certificates are the trusted roots instead of the bundled
    /// Mozilla roots. Default is none (the Mozilla roots).
    pub trusted_x509_certificates: Vec<String>,
    /// `ssl-bundle`: the name of a Spring Boot SSL bundle
    /// (`spring.ssl.bundle.pem.<name>`): its key store's certificate and
    /// key are presented to upstreams that ask for a client certificate,
    /// and its trust store's certificates are the roots when neither
    /// `trusted-x509-certificates` nor `use-insecure-trust-manager` is set
    /// (as SCG). Default is none.
    pub ssl_bundle: String,
}

/// `spring.ssl.bundle.*`: Spring Boot's named SSL bundles. PEM bundles are
/// read; a JKS bundle is refused when named, with a message to convert it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, rename_all = "kebab-case")]
pub struct SslBundles {
    /// `pem.<name>`.
    pub pem: std::collections::BTreeMap<String, PemBundle>,
    /// `jks.<name>`: key store bundles (not supported).
    pub jks: std::collections::BTreeMap<String, serde_json::Value>,
}

/// `spring.ssl.bundle.pem.<name>.*`: a key store and a trust store in PEM.
/// Spring Boot's other keys (`key.alias`, `options`, `protocol`,
/// `reload-on-update`) are not read.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, rename_all = "kebab-case")]
pub struct PemBundle {
    /// `keystore.*`: the certificate chain and private key presented.
    pub keystore: PemStore,
    /// `truststore.*`: the certificates trusted.
    pub truststore: PemStore,
}

/// One PEM store of a bundle. Its `Debug` hides a private key given
/// inline, and the key's password.
#[derive(Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, rename_all = "kebab-case")]
pub struct PemStore {
    /// `certificate`: PEM certificates (a path, `file:` and a path, or the
    /// PEM text itself).
    pub certificate: String,
    /// `private-key`: the PEM private key (PKCS#8, PKCS#1 or SEC1), in the
    /// same forms.
    pub private_key: String,
    /// `private-key-password`: encrypted keys are not supported (refused
    /// when set).
    pub private_key_password: String,
}

impl std::fmt::Debug for PemStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let key = if self.private_key.trim_start().starts_with("-----BEGIN") {
            "<inline PEM, hidden>"
        } else {
            self.private_key.as_str()
        };
        f.debug_struct("PemStore")
            .field("certificate", &self.certificate)
            .field("private_key", &key)
            .field("private_key_password", &"***")
            .finish()
    }
}

/// A certificate or key that could not be loaded.
#[derive(Debug, thiserror::Error)]
#[error("{what}: {reason}")]
pub struct TlsError {
    what: String,
    reason: String,
    #[source]
    source: Option<Box<dyn std::error::Error + Send + Sync>>,
}

impl TlsError {
    fn new(what: &str, reason: impl Into<String>) -> TlsError {
        TlsError {
            what: what.to_owned(),
            reason: reason.into(),
            source: None,
        }
    }

    /// The same error about the key of bundle `name` that stood for the
    /// `server.ssl` key it names.
    fn in_bundle(mut self, name: &str) -> TlsError {
        let store = match self.what.as_str() {
            "server.ssl.certificate" => "keystore.certificate",
            "server.ssl.certificate-private-key" => "keystore.private-key",
            "server.ssl.trust-certificate" => "truststore.certificate",
            _ => return self,
        };
        self.what = format!("spring.ssl.bundle.pem.{name}.{store}");
        self
    }

    /// The reason with its causes, for a [`ConfigError`] about this key.
    fn into_config_error(self, file: Option<&Path>) -> ConfigError {
        let origin = file.map_or(Origin::Defaults, |f| Origin::File(f.to_owned()));
        ConfigError::new(origin, Some(&self.what), self.reason_with_causes())
    }

    /// The reason followed by each of its causes.
    pub(crate) fn reason_with_causes(&self) -> String {
        let mut reason = self.reason.clone();
        let mut source: Option<&(dyn std::error::Error + 'static)> = match &self.source {
            Some(s) => Some(s.as_ref()),
            None => None,
        };
        while let Some(s) = source {
            reason = format!("{reason}: {s}");
            source = s.source();
        }
        reason
    }

    fn caused(
        what: &str,
        reason: impl Into<String>,
        source: impl std::error::Error + Send + Sync + 'static,
    ) -> TlsError {
        TlsError {
            source: Some(Box::new(source)),
            ..TlsError::new(what, reason)
        }
    }
}

/// The crypto provider of every TLS config here.
fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// A PEM value of a setting: a path (`file:` allowed) or inline PEM.
#[derive(Debug, Clone, PartialEq, Eq)]
enum PemSource {
    File(PathBuf),
    Inline(String),
}

impl PemSource {
    fn parse(value: &str, key: &str) -> Result<PemSource, TlsError> {
        let value = value.trim();
        if value.starts_with("-----BEGIN") {
            return Ok(PemSource::Inline(value.to_owned()));
        }
        if value.starts_with("classpath:") {
            return Err(TlsError::new(
                key,
                format!("`{value}`: classpath resources do not exist here; give a file path"),
            ));
        }
        Ok(PemSource::File(PathBuf::from(
            value.strip_prefix("file:").unwrap_or(value),
        )))
    }

    fn read(&self, key: &str) -> Result<Vec<u8>, TlsError> {
        match self {
            PemSource::Inline(pem) => Ok(pem.clone().into_bytes()),
            PemSource::File(path) => std::fs::read(path)
                .map_err(|e| TlsError::caused(key, format!("cannot read {}", path.display()), e)),
        }
    }
}

/// `server.ssl.client-auth`, as Spring Boot names its values.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ClientAuth {
    None,
    Want,
    Need,
}

impl ClientAuth {
    fn parse(value: &str) -> Result<ClientAuth, TlsError> {
        match value.trim().to_ascii_lowercase().as_str() {
            "" | "none" => Ok(ClientAuth::None),
            "want" => Ok(ClientAuth::Want),
            "need" => Ok(ClientAuth::Need),
            other => Err(TlsError::new(
                "server.ssl.client-auth",
                format!("`{other}` is not one of none, want, need"),
            )),
        }
    }
}

/// The certificates of the PEM values at `locations` (paths, `file:`
/// paths or inline PEM), for setting `key`.
pub(crate) fn trusted_certificates(
    locations: &[String],
    key: &str,
) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let mut all = Vec::new();
    for location in locations {
        let pem = PemSource::parse(location, key)?.read(key)?;
        all.extend(parse_certificates(&pem, key)?);
    }
    Ok(all)
}

fn parse_certificates(pem: &[u8], key: &str) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let certs = CertificateDer::pem_slice_iter(pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| TlsError::caused(key, "not a PEM certificate", e))?;
    if certs.is_empty() {
        return Err(TlsError::new(key, "holds no PEM certificate"));
    }
    Ok(certs)
}

/// Reads certificate and key and checks that they belong together.
fn load_pair(
    certificate: &[u8],
    private_key: &[u8],
    provider: &CryptoProvider,
) -> Result<CertifiedKey, TlsError> {
    const CERT: &str = "server.ssl.certificate";
    const KEY: &str = "server.ssl.certificate-private-key";
    let certs = parse_certificates(certificate, CERT)?;
    let key = PrivateKeyDer::from_pem_slice(private_key)
        .map_err(|e| TlsError::caused(KEY, "not an unencrypted PEM private key", e))?;
    CertifiedKey::from_der(certs, key, provider)
        .map_err(|e| TlsError::caused(KEY, "does not load or does not match the certificate", e))
}

/// The bytes the current certificate was loaded from.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Loaded {
    certificate: Vec<u8>,
    private_key: Vec<u8>,
}

/// The server certificate, swapped when its files change.
#[derive(Debug)]
struct ReloadingCert {
    current: ArcSwap<CertifiedKey>,
}

impl ResolvesServerCert for ReloadingCert {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.current.load_full())
    }
}

/// TLS for clients: the acceptor's config and the certificate reload.
#[derive(Debug, Clone)]
pub struct ServerTls {
    config: Arc<ServerConfig>,
    cert: Arc<ReloadingCert>,
    certificate: PemSource,
    private_key: PemSource,
    loaded: Arc<Mutex<(Loaded, Option<Loaded>)>>,
    reload_interval: Duration,
}

impl ServerTls {
    /// TLS from `ssl`, or `None` when it is off; `file` names the settings
    /// file in errors.
    pub fn from_settings(ssl: &Ssl, file: Option<&Path>) -> Result<Option<ServerTls>, ConfigError> {
        ServerTls::from_settings_with(ssl, &SslBundles::default(), file)
    }

    /// [`ServerTls::from_settings`] with the SSL bundles `server.ssl.bundle`
    /// may name.
    pub fn from_settings_with(
        ssl: &Ssl,
        bundles: &SslBundles,
        file: Option<&Path>,
    ) -> Result<Option<ServerTls>, ConfigError> {
        if !ssl.is_on() {
            return Ok(None);
        }
        let bundled =
            bundles
                .named(&ssl.bundle, "server.ssl.bundle")
                .and_then(|named| match named {
                    None => Ok((ssl.clone(), None)),
                    Some((name, bundle)) => ssl.with_bundle(bundle).map(|s| (s, Some(name))),
                });
        bundled
            .and_then(|(ssl, name)| {
                ServerTls::load(&ssl).map_err(|e| match name {
                    Some(name) => e.in_bundle(name),
                    None => e,
                })
            })
            .map(Some)
            .map_err(|e| e.into_config_error(file))
    }

    fn load(ssl: &Ssl) -> Result<ServerTls, TlsError> {
        const CERT: &str = "server.ssl.certificate";
        const KEY: &str = "server.ssl.certificate-private-key";
        if !ssl.key_store.is_empty() {
            return Err(TlsError::new(
                "server.ssl.key-store",
                "key stores (JKS, PKCS#12) are not supported: convert to PEM and set server.ssl.certificate and server.ssl.certificate-private-key",
            ));
        }
        let client_auth = ClientAuth::parse(&ssl.client_auth)?;
        if ssl.certificate.trim().is_empty() {
            return Err(TlsError::new(
                CERT,
                "is required with server.ssl.certificate-private-key",
            ));
        }
        if ssl.certificate_private_key.trim().is_empty() {
            return Err(TlsError::new(
                KEY,
                "is required with server.ssl.certificate",
            ));
        }
        let certificate = PemSource::parse(&ssl.certificate, CERT)?;
        let private_key = PemSource::parse(&ssl.certificate_private_key, KEY)?;
        let provider = provider();
        let loaded = Loaded {
            certificate: certificate.read(CERT)?,
            private_key: private_key.read(KEY)?,
        };
        let pair = load_pair(&loaded.certificate, &loaded.private_key, &provider)?;
        let cert = Arc::new(ReloadingCert {
            current: ArcSwap::from_pointee(pair),
        });
        let builder = ServerConfig::builder_with_provider(Arc::clone(&provider))
            .with_safe_default_protocol_versions()
            .map_err(|e| TlsError::caused("server.ssl", "no usable TLS version", e))?;
        let builder = match client_auth {
            ClientAuth::None => builder.with_no_client_auth(),
            asked => {
                const TRUST: &str = "server.ssl.trust-certificate";
                if ssl.trust_certificate.trim().is_empty() {
                    return Err(TlsError::new(
                        TRUST,
                        "is required with server.ssl.client-auth (the certificates client certificates are checked against)",
                    ));
                }
                let mut roots = RootCertStore::empty();
                for root in
                    trusted_certificates(std::slice::from_ref(&ssl.trust_certificate), TRUST)?
                {
                    roots
                        .add(root)
                        .map_err(|e| TlsError::caused(TRUST, "not a usable certificate", e))?;
                }
                let verifier =
                    WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider);
                let verifier = match asked {
                    ClientAuth::Want => verifier.allow_unauthenticated(),
                    _ => verifier,
                };
                let verifier = verifier
                    .build()
                    .map_err(|e| TlsError::caused(TRUST, "cannot check client certificates", e))?;
                builder.with_client_cert_verifier(verifier)
            }
        };
        let mut config =
            builder.with_cert_resolver(Arc::clone(&cert) as Arc<dyn ResolvesServerCert>);
        config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        Ok(ServerTls {
            config: Arc::new(config),
            cert,
            certificate,
            private_key,
            loaded: Arc::new(Mutex::new((loaded, None))),
            reload_interval: ssl.reload_interval,
        })
    }

    /// The acceptor for `cloud_runtime::serve::serve_tls_with_stats`.
    pub fn acceptor(&self) -> tokio_rustls::TlsAcceptor {
        tokio_rustls::TlsAcceptor::from(Arc::clone(&self.config))
    }

    /// Reads the certificate files again and swaps in a changed pair.
    /// Returns whether the certificate changed; on error the old one
    /// stays.
    pub fn reload(&self) -> Result<bool, TlsError> {
        let now = Loaded {
            certificate: self.certificate.read("server.ssl.certificate")?,
            private_key: self
                .private_key
                .read("server.ssl.certificate-private-key")?,
        };
        let mut loaded = self
            .loaded
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if loaded.0 == now || loaded.1.as_ref() == Some(&now) {
            return Ok(false);
        }
        match load_pair(&now.certificate, &now.private_key, &provider()) {
            Ok(pair) => {
                self.cert.current.store(Arc::new(pair));
                *loaded = (now, None);
                Ok(true)
            }
            Err(e) => {
                // Remembered so that the same broken files are not
                // reported again on every check.
                loaded.1 = Some(now);
                Err(e)
            }
        }
    }

    /// Checks the certificate files every `reload-interval` until
    /// `shutdown` (returns at once when reloading is off).
    pub async fn watch(self, shutdown: CancellationToken) {
        if self.reload_interval.is_zero() {
            return;
        }
        let mut ticks = tokio::time::interval(self.reload_interval);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = ticks.tick() => {}
                () = shutdown.cancelled() => return,
            }
            let this = self.clone();
            match tokio::task::spawn_blocking(move || this.reload()).await {
                Ok(Ok(true)) => tracing::info!("TLS certificate reloaded"),
                Ok(Ok(false)) => {}
                Ok(Err(e)) => tracing::warn!(
                    error = %e,
                    "the changed TLS certificate does not load; keeping the old one"
                ),
                Err(e) => tracing::warn!(error = %e, "TLS certificate check failed"),
            }
        }
    }
}

/// The rustls config of the upstream connections from `ssl` (the
/// connector offers HTTP/1.1 by ALPN, as SCG's default client): roots from `trusted-x509-certificates`
/// or else the bundled Mozilla roots, or no verification with
/// `use-insecure-trust-manager`.
pub fn client_config(
    ssl: &ClientSsl,
    bundles: &SslBundles,
    file: Option<&Path>,
) -> Result<ClientConfig, ConfigError> {
    build_client_config(ssl, bundles).map_err(|e| e.into_config_error(file))
}

/// The PEM bundle `ssl-bundle` names, if any.
fn client_bundle<'b>(
    ssl: &ClientSsl,
    bundles: &'b SslBundles,
) -> Result<Option<(&'b str, &'b PemBundle)>, TlsError> {
    bundles.named(
        &ssl.ssl_bundle,
        "spring.cloud.gateway.httpclient.ssl.ssl-bundle",
    )
}

impl SslBundles {
    /// The PEM bundle `name` (set at `key`), none when `name` is empty.
    fn named<'b>(
        &'b self,
        name: &str,
        key: &str,
    ) -> Result<Option<(&'b str, &'b PemBundle)>, TlsError> {
        let bundles = self;
        let name = name.trim();
        if name.is_empty() {
            return Ok(None);
        }
        if let Some((name, bundle)) = bundles.pem.get_key_value(name) {
            return Ok(Some((name.as_str(), bundle)));
        }
        let reason = match bundles.jks.contains_key(name) {
            true => format!(
                "`{name}` is a JKS bundle; key stores are not supported: convert it to PEM under spring.ssl.bundle.pem.{name}"
            ),
            false => format!("no SSL bundle `{name}` under spring.ssl.bundle.pem"),
        };
        Err(TlsError::new(key, reason))
    }
}

fn build_client_config(ssl: &ClientSsl, bundles: &SslBundles) -> Result<ClientConfig, TlsError> {
    const KEY: &str = "spring.cloud.gateway.httpclient.ssl.trusted-x509-certificates";
    let bundle = client_bundle(ssl, bundles)?;
    let provider = provider();
    let builder = ClientConfig::builder_with_provider(Arc::clone(&provider))
        .with_safe_default_protocol_versions()
        .map_err(|e| {
            TlsError::caused(
                "spring.cloud.gateway.httpclient.ssl",
                "no usable TLS version",
                e,
            )
        })?;
    // Trust as SCG decides it: the trusted certificates, else any
    // certificate, else the bundle's trust store, else the default roots.
    let bundle_roots = bundle.filter(|(_, b)| !b.truststore.certificate.trim().is_empty());
    let builder = if ssl.trusted_x509_certificates.is_empty() && ssl.use_insecure_trust_manager {
        builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(insecure::AnyCertificate(provider)))
    } else {
        let mut roots = RootCertStore::empty();
        let trusted = match bundle_roots {
            _ if !ssl.trusted_x509_certificates.is_empty() => {
                trusted_certificates(&ssl.trusted_x509_certificates, KEY)?
            }
            Some((name, b)) => {
                let key = format!("spring.ssl.bundle.pem.{name}.truststore.certificate");
                trusted_certificates(std::slice::from_ref(&b.truststore.certificate), &key)?
            }
            None => {
                roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
                Vec::new()
            }
        };
        for cert in trusted {
            roots
                .add(cert)
                .map_err(|e| TlsError::caused(KEY, "not a usable certificate", e))?;
        }
        builder.with_root_certificates(roots)
    };
    let config = match bundle {
        Some((name, b)) if !b.keystore.certificate.trim().is_empty() => {
            let chain = format!("spring.ssl.bundle.pem.{name}.keystore.certificate");
            let key = format!("spring.ssl.bundle.pem.{name}.keystore.private-key");
            if !b.keystore.private_key_password.is_empty() {
                return Err(TlsError::new(
                    &format!("spring.ssl.bundle.pem.{name}.keystore.private-key-password"),
                    "encrypted private keys are not supported: decrypt the key (openssl pkey -in key.pem -out plain.pem)",
                ));
            }
            if b.keystore.private_key.trim().is_empty() {
                return Err(TlsError::new(
                    &key,
                    "is required with the key store's certificate",
                ));
            }
            let chain_pem = PemSource::parse(&b.keystore.certificate, &chain)?.read(&chain)?;
            let key_pem = PemSource::parse(&b.keystore.private_key, &key)?.read(&key)?;
            let certs = parse_certificates(&chain_pem, &chain)?;
            let private_key = PrivateKeyDer::from_pem_slice(&key_pem)
                .map_err(|e| TlsError::caused(&key, "not an unencrypted PEM private key", e))?;
            builder
                .with_client_auth_cert(certs, private_key)
                .map_err(|e| {
                    TlsError::caused(&key, "does not load or does not match the certificate", e)
                })?
        }
        _ => builder.with_no_client_auth(),
    };
    // ALPN (HTTP/1.1 only) is the connector's to set.
    Ok(config)
}

/// `use-insecure-trust-manager`: any certificate is accepted; signatures
/// are still checked, so the handshake itself is sound.
mod insecure {
    use std::sync::Arc;

    use rustls::DigitallySignedStruct;
    use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
    use rustls::crypto::{CryptoProvider, verify_tls12_signature, verify_tls13_signature};
    use rustls_pki_types::{CertificateDer, ServerName, UnixTime};

    #[derive(Debug)]
    pub(super) struct AnyCertificate(pub(super) Arc<CryptoProvider>);

    impl ServerCertVerifier for AnyCertificate {
        fn verify_server_cert(
            &self,
            _end_entity: &CertificateDer<'_>,
            _intermediates: &[CertificateDer<'_>],
            _server_name: &ServerName<'_>,
            _ocsp_response: &[u8],
            _now: UnixTime,
        ) -> Result<ServerCertVerified, rustls::Error> {
            Ok(ServerCertVerified::assertion())
        }

        fn verify_tls12_signature(
            &self,
            message: &[u8],
            cert: &CertificateDer<'_>,
            dss: &DigitallySignedStruct,
        ) -> Result<HandshakeSignatureValid, rustls::Error> {
            verify_tls12_signature(
                message,
                cert,
                dss,
                &self.0.signature_verification_algorithms,
            )
        }

        fn verify_tls13_signature(
            &self,
            message: &[u8],
            cert: &CertificateDer<'_>,
            dss: &DigitallySignedStruct,
        ) -> Result<HandshakeSignatureValid, rustls::Error> {
            verify_tls13_signature(
                message,
                cert,
                dss,
                &self.0.signature_verification_algorithms,
            )
        }

        fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
            self.0.signature_verification_algorithms.supported_schemes()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tls_is_on_only_with_a_certificate_or_key_store() {
        assert!(!Ssl::default().is_on());
        let with_cert = Ssl {
            certificate: "a.crt".to_owned(),
            ..Ssl::default()
        };
        assert!(with_cert.is_on());
        assert!(
            !Ssl {
                enabled: false,
                ..with_cert
            }
            .is_on()
        );
    }

    #[test]
    fn an_inline_private_key_is_not_in_the_debug_output() {
        let ssl = Ssl {
            certificate_private_key: "-----BEGIN PRIVATE KEY-----\nsecret\n".to_owned(),
            ..Ssl::default()
        };
        let shown = format!("{ssl:?}");
        assert!(!shown.contains("secret"), "{shown}");
        assert!(shown.contains("hidden"), "{shown}");
    }

    #[test]
    fn a_key_store_is_refused_with_the_key_named() {
        let ssl = Ssl {
            key_store: "keystore.p12".to_owned(),
            ..Ssl::default()
        };
        let e = ServerTls::from_settings(&ssl, Some(Path::new("gw.yml")))
            .expect_err("a key store is refused");
        let text = e.to_string();
        assert!(text.contains("server.ssl.key-store"), "{text}");
        assert!(text.contains("gw.yml"), "{text}");
    }

    #[test]
    fn a_key_without_certificate_or_an_unknown_client_auth_is_refused() {
        let key_only = Ssl {
            certificate_private_key: "tls.key".to_owned(),
            ..Ssl::default()
        };
        assert!(key_only.is_on());
        let e = ServerTls::from_settings(&key_only, None).expect_err("no certificate");
        assert!(e.to_string().contains("`server.ssl.certificate`"), "{e}");
        let client_auth = Ssl {
            certificate: "tls.crt".to_owned(),
            client_auth: "sometimes".to_owned(),
            ..key_only
        };
        let e = ServerTls::from_settings(&client_auth, None).expect_err("unknown client auth");
        assert!(e.to_string().contains("server.ssl.client-auth"), "{e}");
    }

    #[test]
    fn a_missing_certificate_file_is_a_config_error() {
        let ssl = Ssl {
            certificate: "/nonexistent/tls.crt".to_owned(),
            certificate_private_key: "/nonexistent/tls.key".to_owned(),
            ..Ssl::default()
        };
        let e = ServerTls::from_settings(&ssl, None).expect_err("missing files are refused");
        assert!(e.to_string().contains("server.ssl.certificate"), "{e}");
    }

    #[test]
    fn pem_values_are_paths_file_urls_or_inline() {
        assert_eq!(
            PemSource::parse("file:/a/b.pem", "k").expect("path"),
            PemSource::File("/a/b.pem".into())
        );
        assert!(matches!(
            PemSource::parse("-----BEGIN CERTIFICATE-----\n", "k"),
            Ok(PemSource::Inline(_))
        ));
        assert!(PemSource::parse("classpath:x.pem", "k").is_err());
    }

    #[test]
    fn garbage_is_not_a_certificate() {
        let e = parse_certificates(b"not pem", "k").expect_err("no certificate");
        assert!(e.to_string().contains("no PEM certificate"), "{e}");
    }
}
