//! TLS from clients (HTTP/1.1 and HTTP/2 by ALPN, certificate reload) and
//! to `https://` upstreams, with certificates made at test time by rcgen
//! under a test CA.

mod support;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::Request;
use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair};
use reqwest::Version;
use serde_json::{Value, json};
use support::{TestGateway, Upstream, eventually, seen};
use tokio_util::sync::CancellationToken;

/// A test CA and the certificates it signs.
struct TestCa {
    issuer: CertifiedIssuer<'static, KeyPair>,
}

/// A leaf certificate: PEM chain, PEM key, DER of the certificate.
struct Leaf {
    cert_pem: String,
    key_pem: String,
    der: Vec<u8>,
}

impl TestCa {
    fn new() -> TestCa {
        let mut params = CertificateParams::new(Vec::<String>::new()).expect("CA params");
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params
            .distinguished_name
            .push(DnType::CommonName, "gateway test CA");
        let key = KeyPair::generate().expect("CA key");
        TestCa {
            issuer: CertifiedIssuer::self_signed(params, key).expect("CA certificate"),
        }
    }

    fn pem(&self) -> String {
        self.issuer.pem()
    }

    /// A certificate for `names` (DNS names or IP addresses) named `cn`.
    fn leaf(&self, names: &[&str], cn: &str) -> Leaf {
        let names: Vec<String> = names.iter().map(|n| (*n).to_owned()).collect();
        let mut params = CertificateParams::new(names).expect("leaf params");
        params.distinguished_name.push(DnType::CommonName, cn);
        let key = KeyPair::generate().expect("leaf key");
        let cert = params
            .signed_by(&key, &self.issuer)
            .expect("leaf certificate");
        Leaf {
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
            der: cert.der().to_vec(),
        }
    }
}

/// The name the test clients use for the gateway (resolved to its
/// address, so that the certificate's name is checked).
const GATEWAY_NAME: &str = "gateway.test";

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, text).expect("write PEM");
    path
}

/// A gateway serving TLS with `leaf`, routing `/**` to `upstream`.
async fn tls_gateway(dir: &Path, leaf: &Leaf, upstream: SocketAddr) -> TestGateway {
    let cert = write(dir, "tls.crt", &leaf.cert_pem);
    let key = write(dir, "tls.key", &leaf.key_pem);
    TestGateway::start(&format!(
        "server:\n  ssl:\n    certificate: {}\n    certificate-private-key: {}\n    reload-interval: 50ms\nspring.cloud.gateway.routes:\n  - id: all\n    uri: http://{upstream}\n    predicates: [Path=/**]\n",
        cert.display(),
        key.display()
    ))
    .await
}

/// A client trusting only `ca`, reaching the gateway by its name, with
/// no pooled connections (each request makes a new handshake).
fn tls_client(ca: &TestCa, gateway: SocketAddr) -> reqwest::ClientBuilder {
    reqwest::Client::builder()
        .no_proxy()
        .use_rustls_tls()
        .tls_built_in_root_certs(false)
        .add_root_certificate(reqwest::Certificate::from_pem(ca.pem().as_bytes()).expect("CA"))
        .resolve(GATEWAY_NAME, gateway)
        .tls_info(true)
        .pool_max_idle_per_host(0)
        .timeout(Duration::from_secs(10))
}

fn https_url(gw: &TestGateway, path: &str) -> String {
    format!("https://{GATEWAY_NAME}:{}{path}", gw.proxy.port())
}

/// The certificate the gateway presented.
fn peer_certificate(response: &reqwest::Response) -> Option<Vec<u8>> {
    response
        .extensions()
        .get::<reqwest::tls::TlsInfo>()
        .and_then(|i| i.peer_certificate())
        .map(<[u8]>::to_vec)
}

/// The certificate a new handshake gets (a new client: no resumed
/// session, whose certificate would be the old one).
async fn presented_certificate(ca: &TestCa, gw: &TestGateway) -> Option<Vec<u8>> {
    let client = tls_client(ca, gw.proxy).build().expect("client");
    let response = client
        .get(https_url(gw, "/"))
        .send()
        .await
        .expect("HTTPS request");
    peer_certificate(&response)
}

#[tokio::test]
async fn clients_speak_http1_or_http2_over_tls_by_alpn() {
    let ca = TestCa::new();
    let leaf = ca.leaf(&[GATEWAY_NAME], "first");
    let dir = tempfile::tempdir().expect("temp dir");
    let up = Upstream::start().await;
    let gw = tls_gateway(dir.path(), &leaf, up.addr).await;

    let h1 = tls_client(&ca, gw.proxy)
        .http1_only()
        .build()
        .expect("client");
    let response = h1
        .get(https_url(&gw, "/one"))
        .send()
        .await
        .expect("HTTPS request");
    assert_eq!(response.version(), Version::HTTP_11);
    assert_eq!(peer_certificate(&response), Some(leaf.der.clone()));
    let echo: Value = response.json().await.expect("echo");
    assert_eq!(echo["path"], "/one");
    assert_eq!(seen(&echo, "x-forwarded-proto"), Some("https"));

    let h2 = tls_client(&ca, gw.proxy).build().expect("client");
    let response = h2
        .post(https_url(&gw, "/two"))
        .body("over h2")
        .send()
        .await
        .expect("HTTPS request");
    assert_eq!(response.version(), Version::HTTP_2);
    let echo: Value = response.json().await.expect("echo");
    assert_eq!(echo["path"], "/two");
    assert_eq!(echo["body"], "over h2");
}

/// Connects with TLS offering only `alpn`, writes `bytes` and reads what
/// comes back until the gateway closes the connection.
async fn raw_tls_exchange(ca: &TestCa, gateway: SocketAddr, alpn: &[u8], bytes: &[u8]) -> Vec<u8> {
    use rustls_pki_types::pem::PemObject as _;
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let mut roots = rustls::RootCertStore::empty();
    let ca_der = rustls_pki_types::CertificateDer::from_pem_slice(ca.pem().as_bytes()).expect("CA");
    roots.add(ca_der).expect("root");
    let mut config = rustls::ClientConfig::builder()
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = vec![alpn.to_vec()];
    let tcp = tokio::net::TcpStream::connect(gateway)
        .await
        .expect("connect");
    let name = rustls_pki_types::ServerName::try_from(GATEWAY_NAME).expect("name");
    let mut tls = tokio_rustls::TlsConnector::from(Arc::new(config))
        .connect(name, tcp)
        .await
        .expect("handshake");
    assert_eq!(tls.get_ref().1.alpn_protocol(), Some(alpn));
    tls.write_all(bytes).await.expect("write");
    let mut answer = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(10), tls.read_to_end(&mut answer)).await;
    assert!(read.is_ok(), "the gateway closes the connection in time");
    answer
}

#[tokio::test]
async fn a_connection_that_agreed_on_h2_is_served_as_http2_only() {
    let ca = TestCa::new();
    let leaf = ca.leaf(&[GATEWAY_NAME], "h2");
    let dir = tempfile::tempdir().expect("temp dir");
    let up = Upstream::start().await;
    let gw = tls_gateway(dir.path(), &leaf, up.addr).await;
    let request = b"GET /x HTTP/1.1\r\nHost: gateway.test\r\n\r\n";
    // ALPN said h2, the client sent HTTP/1.1: no HTTP/1.1 answer, the
    // connection is closed (RFC 9113 3.4; before, the preface was sniffed
    // and the request served as HTTP/1.1).
    let answer = raw_tls_exchange(&ca, gw.proxy, b"h2", request).await;
    assert!(
        !answer.starts_with(b"HTTP/1.1"),
        "{}",
        String::from_utf8_lossy(&answer)
    );
    // The same request on a connection that agreed on http/1.1 is served.
    let request = b"GET /x HTTP/1.1\r\nHost: gateway.test\r\nConnection: close\r\n\r\n";
    let answer = raw_tls_exchange(&ca, gw.proxy, b"http/1.1", request).await;
    assert!(
        answer.starts_with(b"HTTP/1.1 200"),
        "{}",
        String::from_utf8_lossy(&answer)
    );
}

/// A client that speaks cleartext HTTP/2 from the first byte.
fn h2c_client() -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .http2_prior_knowledge()
        .build()
        .expect("client")
}

#[tokio::test]
async fn cleartext_http2_with_prior_knowledge_is_served() {
    let up = Upstream::start().await;
    let gw = TestGateway::start(&format!(
        "spring.cloud.gateway.routes:\n  - id: all\n    uri: http://{}\n    predicates: [Path=/**]\n",
        up.addr
    ))
    .await;
    let client = h2c_client();
    let response = client
        .get(gw.url("/h2c"))
        .send()
        .await
        .expect("h2c request");
    assert_eq!(response.version(), Version::HTTP_2);
    let echo: Value = response.json().await.expect("echo");
    assert_eq!(echo["path"], "/h2c");
    assert_eq!(seen(&echo, "x-forwarded-proto"), Some("http"));
}

#[tokio::test]
async fn a_certificate_swapped_on_disk_is_presented_to_new_handshakes() {
    let ca = TestCa::new();
    let first = ca.leaf(&[GATEWAY_NAME], "first");
    let second = ca.leaf(&[GATEWAY_NAME], "second");
    let dir = tempfile::tempdir().expect("temp dir");
    let up = Upstream::start().await;
    let gw = tls_gateway(dir.path(), &first, up.addr).await;
    let presented = || presented_certificate(&ca, &gw);
    assert_eq!(presented().await, Some(first.der.clone()));

    // Key first, then certificate: a reload in between sees a mismatched
    // pair and keeps the old certificate.
    write(dir.path(), "tls.key", &second.key_pem);
    write(dir.path(), "tls.crt", &second.cert_pem);
    eventually(
        Duration::from_secs(10),
        "the new certificate to be presented",
        || async { presented().await == Some(second.der.clone()) },
    )
    .await;
}

#[tokio::test]
async fn a_broken_certificate_file_keeps_the_old_certificate() {
    let ca = TestCa::new();
    let first = ca.leaf(&[GATEWAY_NAME], "first");
    let dir = tempfile::tempdir().expect("temp dir");
    let up = Upstream::start().await;
    let gw = tls_gateway(dir.path(), &first, up.addr).await;
    assert_eq!(
        presented_certificate(&ca, &gw).await,
        Some(first.der.clone())
    );
    let ssl = gw.gateway.settings().server.ssl.clone();
    let tls = api_gateway::tls::ServerTls::from_settings(&ssl, None)
        .expect("loads")
        .expect("TLS is on");
    write(
        dir.path(),
        "tls.crt",
        "-----BEGIN CERTIFICATE-----\nbroken\n",
    );
    assert!(tls.reload().is_err(), "a broken file is reported");
    assert!(
        tls.reload().is_ok_and(|changed| !changed),
        "and not reported again"
    );
    assert_eq!(
        presented_certificate(&ca, &gw).await,
        Some(first.der.clone()),
        "the old certificate is still presented"
    );
}

/// Server TLS with `leaf`, given inline.
fn server_tls(leaf: &Leaf) -> api_gateway::tls::ServerTls {
    let ssl = api_gateway::tls::Ssl {
        certificate: leaf.cert_pem.clone(),
        certificate_private_key: leaf.key_pem.clone(),
        ..api_gateway::tls::Ssl::default()
    };
    api_gateway::tls::ServerTls::from_settings(&ssl, None)
        .expect("TLS loads")
        .expect("TLS is on")
}

/// Serves `router` over TLS with `leaf` (ALPN `h2`, `http/1.1`) on a free
/// port until `shutdown`.
async fn serve_https(leaf: &Leaf, router: Router, shutdown: CancellationToken) -> SocketAddr {
    serve_tls(server_tls(leaf).acceptor(), router, shutdown).await
}

/// Serves `router` over TLS with `acceptor` on a free port until
/// `shutdown`.
async fn serve_tls(
    acceptor: tokio_rustls::TlsAcceptor,
    router: Router,
    shutdown: CancellationToken,
) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("address");
    tokio::spawn(async move {
        let limits = cloud_runtime::serve::ServeLimits::default();
        let _ = cloud_runtime::serve::serve_tls_with_stats(
            listener,
            router,
            &limits,
            shutdown,
            Arc::default(),
            acceptor,
        )
        .await;
    });
    addr
}

/// An HTTPS upstream: answers its path and Host as JSON.
async fn https_upstream(leaf: &Leaf, shutdown: CancellationToken) -> SocketAddr {
    let router = Router::new().fallback(|request: Request| async move {
        axum::Json(json!({
            "path": request.uri().path(),
            "host": request.headers().get("host").and_then(|h| h.to_str().ok()),
        }))
    });
    serve_https(leaf, router, shutdown).await
}

async fn gateway_to(upstream: SocketAddr, ssl: &str) -> TestGateway {
    TestGateway::start(&format!(
        "spring.cloud.gateway:\n  httpclient:\n    ssl:\n{ssl}  routes:\n    - id: tls\n      uri: https://{upstream}\n      predicates: [Path=/secure/**]\n      filters: [StripPrefix=1]\n"
    ))
    .await
}

#[tokio::test]
async fn https_upstreams_are_trusted_through_trusted_x509_certificates() {
    let ca = TestCa::new();
    let leaf = ca.leaf(&["127.0.0.1"], "upstream");
    let stop = CancellationToken::new();
    let _stop = stop.clone().drop_guard();
    let upstream = https_upstream(&leaf, stop).await;
    let dir = tempfile::tempdir().expect("temp dir");
    let ca_file = write(dir.path(), "ca.pem", &ca.pem());

    let gw = gateway_to(
        upstream,
        &format!(
            "      trusted-x509-certificates: [\"{}\"]\n",
            ca_file.display()
        ),
    )
    .await;
    let (status, _, body) = support::get(&gw.url("/secure/data")).await;
    assert_eq!(status, axum::http::StatusCode::OK, "{body}");
    assert_eq!(body["path"], "/data");
    assert_eq!(body["host"], upstream.to_string().as_str());

    let untrusted = gateway_to(upstream, "      use-insecure-trust-manager: false\n").await;
    let (status, _, _) = support::get(&untrusted.url("/secure/data")).await;
    assert_eq!(
        status,
        axum::http::StatusCode::BAD_GATEWAY,
        "the test CA is not among the default roots"
    );

    let insecure = gateway_to(upstream, "      use-insecure-trust-manager: true\n").await;
    let (status, _, body) = support::get(&insecure.url("/secure/data")).await;
    assert_eq!(status, axum::http::StatusCode::OK);
    assert_eq!(body["path"], "/data");
}

/// A JWKS over HTTPS with `leaf`, publishing the test key
/// `tests/keys/rsa-1`.
async fn https_jwks(leaf: &Leaf, shutdown: CancellationToken) -> SocketAddr {
    let path = format!("{}/tests/keys/rsa-1.jwk.json", env!("CARGO_MANIFEST_DIR"));
    let jwk: Value =
        serde_json::from_str(&std::fs::read_to_string(&path).expect("test JWK")).expect("JWK");
    let router = Router::new().route(
        "/jwks",
        axum::routing::get(move || async move { axum::Json(json!({ "keys": [jwk] })) }),
    );
    serve_https(leaf, router, shutdown).await
}

/// An RS256 token signed with the test key `rsa-1`, for `sub` ada.
fn rsa_1_token() -> String {
    let path = format!("{}/tests/keys/rsa-1.key.pem", env!("CARGO_MANIFEST_DIR"));
    let key = jsonwebtoken::EncodingKey::from_rsa_pem(&std::fs::read(&path).expect("test key"))
        .expect("RSA key");
    let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::RS256);
    header.kid = Some("rsa-1".to_owned());
    let exp = jsonwebtoken::get_current_timestamp() + 300;
    jsonwebtoken::encode(&header, &json!({ "sub": "ada", "exp": exp }), &key).expect("signs")
}

/// An identity provider behind a private CA: its JWKS is fetched over
/// HTTPS when `jwt.jwks.trusted-x509-certificates` names the CA, and not
/// otherwise.
#[tokio::test]
async fn an_https_jwks_is_trusted_through_its_own_certificates() {
    let ca = TestCa::new();
    let leaf = ca.leaf(&["127.0.0.1"], "idp");
    let stop = CancellationToken::new();
    let _stop = stop.clone().drop_guard();
    let jwks = https_jwks(&leaf, stop).await;
    let up = Upstream::start().await;
    let dir = tempfile::tempdir().expect("temp dir");
    let ca_file = write(dir.path(), "ca.pem", &ca.pem());
    let gateway = |roots: &str| {
        format!(
            "spring.cloud.gateway:\n  jwt:\n    jwk-set-uri: https://{jwks}/jwks\n{roots}  routes:\n    - id: api\n      uri: http://{}\n      predicates: [Path=/api/**]\n      filters: [JwtAuth]\n",
            up.addr
        )
    };
    let call = |gw: &TestGateway| {
        reqwest::Client::new()
            .get(gw.url("/api/x"))
            .bearer_auth(rsa_1_token())
            .send()
    };
    let trusting = TestGateway::start(&gateway(&format!(
        "    jwks:\n      trusted-x509-certificates: [\"{}\"]\n",
        ca_file.display()
    )))
    .await;
    let response = call(&trusting).await.expect("request");
    assert_eq!(response.status(), 200);
    let echo: Value = response.json().await.expect("echo");
    assert_eq!(seen(&echo, "x-user-id"), Some("ada"));

    let default_roots = TestGateway::start(&gateway("")).await;
    let response = call(&default_roots).await.expect("request");
    assert_eq!(
        response.status(),
        401,
        "the test CA is not among the default roots, so no key verifies the token"
    );

    let missing = dir.path().join("missing.pem");
    let refused = support::refused_at_start(&gateway(&format!(
        "    jwks:\n      trusted-x509-certificates: [\"{}\"]\n",
        missing.display()
    )));
    assert!(
        refused.contains("spring.cloud.gateway.jwt.jwks.trusted-x509-certificates")
            && refused.contains("missing.pem"),
        "{refused}"
    );
}

/// An HTTPS upstream with `leaf` that asks for a client certificate
/// signed by `clients` and refuses the handshake without one.
async fn mutual_tls_upstream(
    leaf: &Leaf,
    clients: &TestCa,
    shutdown: CancellationToken,
) -> SocketAddr {
    use rustls_pki_types::pem::PemObject as _;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut roots = rustls::RootCertStore::empty();
    roots
        .add(
            rustls_pki_types::CertificateDer::from_pem_slice(clients.pem().as_bytes()).expect("CA"),
        )
        .expect("root");
    let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
        Arc::new(roots),
        Arc::clone(&provider),
    )
    .build()
    .expect("client verifier");
    let chain = rustls_pki_types::CertificateDer::pem_slice_iter(leaf.cert_pem.as_bytes())
        .collect::<Result<Vec<_>, _>>()
        .expect("chain");
    let key =
        rustls_pki_types::PrivateKeyDer::from_pem_slice(leaf.key_pem.as_bytes()).expect("key");
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("versions")
        .with_client_cert_verifier(verifier)
        .with_single_cert(chain, key)
        .expect("server config");
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    let router = Router::new().fallback(|request: Request| async move {
        axum::Json(json!({ "path": request.uri().path() }))
    });
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    serve_tls(acceptor, router, shutdown).await
}

/// SCG's `httpclient.ssl.ssl-bundle` names a Spring Boot PEM bundle: its
/// key store is the client certificate an upstream may ask for, and its
/// trust store the roots.
#[tokio::test]
async fn an_ssl_bundle_gives_upstreams_a_client_certificate_and_its_roots() {
    let (servers, clients) = (TestCa::new(), TestCa::new());
    let leaf = servers.leaf(&["127.0.0.1"], "upstream");
    let client = clients.leaf(&[], "gateway");
    let stop = CancellationToken::new();
    let _stop = stop.clone().drop_guard();
    let upstream = mutual_tls_upstream(&leaf, &clients, stop).await;
    let dir = tempfile::tempdir().expect("temp dir");
    let ca_file = write(dir.path(), "ca.pem", &servers.pem());
    let cert_file = write(dir.path(), "client.crt", &client.cert_pem);
    let key_file = write(dir.path(), "client.key", &client.key_pem);
    let yaml = |bundle: &str, ssl: &str| {
        format!(
            "spring:\n  ssl.bundle.pem.{bundle}:\n    keystore:\n      certificate: {}\n      private-key: {}\n    truststore.certificate: {}\n  cloud.gateway:\n    httpclient.ssl:\n{ssl}    routes:\n      - id: tls\n        uri: https://{upstream}\n        predicates: [Path=/secure/**]\n        filters: [StripPrefix=1]\n",
            cert_file.display(),
            key_file.display(),
            ca_file.display()
        )
    };

    let gw = TestGateway::start(&yaml("upstreams", "      ssl-bundle: upstreams\n")).await;
    let (status, _, body) = support::get(&gw.url("/secure/data")).await;
    assert_eq!(status, axum::http::StatusCode::OK, "{body}");
    assert_eq!(body["path"], "/data");

    // Trusting the server's CA without the bundle: no client certificate,
    // so the upstream refuses the handshake.
    let anonymous = TestGateway::start(&yaml(
        "unused",
        &format!(
            "      trusted-x509-certificates: [\"{}\"]\n",
            ca_file.display()
        ),
    ))
    .await;
    let (status, _, _) = support::get(&anonymous.url("/secure/data")).await;
    assert_eq!(status, axum::http::StatusCode::BAD_GATEWAY);

    let e = support::refused_at_start(&yaml("upstreams", "      ssl-bundle: elsewhere\n"));
    assert!(
        e.contains("spring.cloud.gateway.httpclient.ssl.ssl-bundle") && e.contains("`elsewhere`"),
        "{e}"
    );
    let e = support::refused_at_start(&yaml("upstreams", "      ssl-bundle: upstreams\n").replace(
        &format!("private-key: {}", key_file.display()),
        &format!("private-key: {}", ca_file.display()),
    ));
    assert!(
        e.contains("spring.ssl.bundle.pem.upstreams.keystore.private-key"),
        "{e}"
    );
}

/// What the client-certificate tests start from: the gateway's
/// certificate and key and a client CA's certificate written to files, and
/// an upstream.
struct ClientAuthSetup {
    ca: TestCa,
    client_ca: TestCa,
    leaf: Leaf,
    up: Upstream,
    cert: PathBuf,
    key: PathBuf,
    trust: PathBuf,
    dir: tempfile::TempDir,
}

impl ClientAuthSetup {
    async fn new() -> ClientAuthSetup {
        let (ca, client_ca) = (TestCa::new(), TestCa::new());
        let leaf = ca.leaf(&[GATEWAY_NAME], "gateway");
        let dir = tempfile::tempdir().expect("temp dir");
        ClientAuthSetup {
            cert: write(dir.path(), "tls.crt", &leaf.cert_pem),
            key: write(dir.path(), "tls.key", &leaf.key_pem),
            trust: write(dir.path(), "clients.pem", &client_ca.pem()),
            up: Upstream::start().await,
            ca,
            client_ca,
            leaf,
            dir,
        }
    }
}

/// A client certificate signed by `ca`, with its key.
fn client_identity(ca: &TestCa) -> reqwest::Identity {
    let leaf = ca.leaf(&[], "client");
    reqwest::Identity::from_pem(format!("{}{}", leaf.cert_pem, leaf.key_pem).as_bytes())
        .expect("identity")
}

/// Spring Boot's `server.ssl.client-auth` with `server.ssl.trust-certificate`:
/// `need` refuses a client without a certificate from the trusted CA,
/// `want` lets one without any through.
#[tokio::test]
async fn clients_are_asked_for_certificates_with_client_auth() {
    let setup = ClientAuthSetup::new().await;
    let (ca, client_ca, leaf) = (&setup.ca, &setup.client_ca, &setup.leaf);
    let (cert, key, trust) = (&setup.cert, &setup.key, &setup.trust);
    let stranger_ca = TestCa::new();
    let yaml = |mode: &str| {
        format!(
            "server:\n  ssl:\n    certificate: {}\n    certificate-private-key: {}\n    client-auth: {mode}\n    trust-certificate: {}\nspring.cloud.gateway.routes:\n  - id: all\n    uri: http://{}\n    predicates: [Path=/**]\n",
            cert.display(),
            key.display(),
            trust.display(),
            setup.up.addr
        )
    };
    let identity = client_identity;
    let call = |gw: &TestGateway, who: Option<reqwest::Identity>| {
        let mut client = tls_client(ca, gw.proxy).http1_only();
        if let Some(who) = who {
            client = client.identity(who);
        }
        let url = https_url(gw, "/x");
        async move {
            client
                .build()
                .expect("client")
                .get(url)
                .send()
                .await
                .map(|r| r.status())
        }
    };

    let need = TestGateway::start(&yaml("need")).await;
    assert_eq!(
        call(&need, Some(identity(client_ca)))
            .await
            .expect("admitted"),
        200
    );
    assert!(
        call(&need, None).await.is_err(),
        "no certificate: no handshake"
    );
    assert!(
        call(&need, Some(identity(&stranger_ca))).await.is_err(),
        "a certificate from another CA: no handshake"
    );

    let want = TestGateway::start(&yaml("want")).await;
    assert_eq!(call(&want, None).await.expect("admitted"), 200);
    assert_eq!(
        call(&want, Some(identity(client_ca)))
            .await
            .expect("admitted"),
        200
    );
    assert!(call(&want, Some(identity(&stranger_ca))).await.is_err());

    let ssl = api_gateway::tls::Ssl {
        certificate: leaf.cert_pem.clone(),
        certificate_private_key: leaf.key_pem.clone(),
        client_auth: "need".to_owned(),
        ..api_gateway::tls::Ssl::default()
    };
    let e = api_gateway::tls::ServerTls::from_settings(&ssl, None)
        .map(|_| ())
        .expect_err("client-auth without trust-certificate")
        .to_string();
    assert!(e.contains("server.ssl.trust-certificate"), "{e}");
    let ssl = api_gateway::tls::Ssl {
        client_auth: "optional".to_owned(),
        ..ssl
    };
    let e = api_gateway::tls::ServerTls::from_settings(&ssl, None)
        .map(|_| ())
        .expect_err("an unknown client-auth")
        .to_string();
    assert!(
        e.contains("server.ssl.client-auth") && e.contains("optional"),
        "{e}"
    );
}

/// Spring Boot's `server.ssl.bundle`: the proxy port's certificate and
/// the client certificates' roots from a PEM SSL bundle.
#[tokio::test]
async fn the_proxy_port_takes_its_certificate_from_an_ssl_bundle() {
    let setup = ClientAuthSetup::new().await;
    let (ca, client_ca, leaf) = (&setup.ca, &setup.client_ca, &setup.leaf);
    let (cert, key, trust) = (&setup.cert, &setup.key, &setup.trust);
    let yaml = |extra: &str| {
        format!(
            "server.ssl:\n  bundle: edge\n  client-auth: need\n{extra}spring:\n  ssl.bundle.pem.edge:\n    keystore: {{certificate: {}, private-key: {}}}\n    truststore.certificate: {}\n  cloud.gateway.routes:\n    - id: all\n      uri: http://{}\n      predicates: [Path=/**]\n",
            cert.display(),
            key.display(),
            trust.display(),
            setup.up.addr
        )
    };
    let gw = TestGateway::start(&yaml("")).await;
    let response = tls_client(ca, gw.proxy)
        .identity(client_identity(client_ca))
        .build()
        .expect("client")
        .get(https_url(&gw, "/x"))
        .send()
        .await
        .expect("admitted with a client certificate");
    assert_eq!(response.status(), 200);
    assert_eq!(peer_certificate(&response), Some(leaf.der.clone()));
    let anonymous = tls_client(ca, gw.proxy).build().expect("client");
    assert!(anonymous.get(https_url(&gw, "/x")).send().await.is_err());

    let load = |yaml: &str| {
        let settings: api_gateway::settings::Settings = {
            let file = setup.dir.path().join("gw.yml");
            std::fs::write(&file, yaml).expect("written");
            api_gateway::settings::Source::file(&file)
                .load()
                .expect("settings load")
        };
        api_gateway::tls::ServerTls::from_settings_with(
            &settings.server.ssl,
            &settings.spring.ssl.bundle,
            None,
        )
        .map(|_| ())
        .expect_err("refused")
        .to_string()
    };
    let e = load(&yaml(&format!("  certificate: {}\n", cert.display())));
    assert!(e.contains("server.ssl.bundle"), "{e}");
    let e = load(&yaml("").replace("private-key: ", "private-key: /nonexistent"));
    assert!(
        e.contains("spring.ssl.bundle.pem.edge.keystore.private-key"),
        "{e}"
    );
}

/// A WebSocket echo server over TLS with `leaf`.
async fn wss_echo_upstream(leaf: &Leaf, shutdown: CancellationToken) -> SocketAddr {
    use futures::{SinkExt as _, StreamExt as _};
    let acceptor = server_tls(leaf).acceptor();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("address");
    tokio::spawn(async move {
        loop {
            let tcp = tokio::select! {
                accepted = listener.accept() => match accepted {
                    Ok((tcp, _)) => tcp,
                    Err(_) => return,
                },
                () = shutdown.cancelled() => return,
            };
            let (acceptor, stop) = (acceptor.clone(), shutdown.clone());
            tokio::spawn(async move {
                let echo = async {
                    let Ok(tls) = acceptor.accept(tcp).await else {
                        return;
                    };
                    let Ok(mut ws) = tokio_tungstenite::accept_async(tls).await else {
                        return;
                    };
                    while let Some(Ok(m)) = ws.next().await {
                        if (m.is_text() || m.is_binary()) && ws.send(m).await.is_err() {
                            return;
                        }
                    }
                };
                tokio::select! {
                    () = echo => {}
                    () = stop.cancelled() => {}
                }
            });
        }
    });
    addr
}

#[tokio::test]
async fn websockets_pass_over_tls_from_the_client_and_to_a_wss_upstream() {
    use futures::{SinkExt as _, StreamExt as _};
    use tokio_tungstenite::tungstenite::Message;
    let ca = TestCa::new();
    let stop = CancellationToken::new();
    let _stop = stop.clone().drop_guard();
    let upstream = wss_echo_upstream(&ca.leaf(&["127.0.0.1"], "upstream"), stop).await;
    let front = ca.leaf(&[GATEWAY_NAME], "gateway");
    let dir = tempfile::tempdir().expect("temp dir");
    let (cert, key, ca_file) = (
        write(dir.path(), "tls.crt", &front.cert_pem),
        write(dir.path(), "tls.key", &front.key_pem),
        write(dir.path(), "ca.pem", &ca.pem()),
    );
    // With HTTP/2 offered to upstreams (the upstream would take it), the
    // upgrade still goes over HTTP/1.1: WebSocket needs it.
    let gw = TestGateway::start(&format!(
        "server:\n  http2.enabled: true\n  ssl:\n    certificate: {}\n    certificate-private-key: {}\nspring.cloud.gateway:\n  httpclient.ssl.trusted-x509-certificates: [\"{}\"]\n  routes:\n    - id: chat\n      uri: wss://{upstream}\n      predicates: [Path=/chat/**]\n",
        cert.display(),
        key.display(),
        ca_file.display()
    ))
    .await;

    let mut roots = rustls::RootCertStore::empty();
    roots.add(ca.issuer.der().clone()).expect("CA root");
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .expect("TLS versions")
    .with_root_certificates(roots)
    .with_no_client_auth();
    let tcp = tokio::net::TcpStream::connect(gw.proxy)
        .await
        .expect("connect");
    let name = rustls_pki_types::ServerName::try_from(GATEWAY_NAME).expect("name");
    let tls = tokio_rustls::TlsConnector::from(Arc::new(config))
        .connect(name, tcp)
        .await
        .expect("TLS handshake with the gateway");
    let url = format!("wss://{GATEWAY_NAME}:{}/chat/room", gw.proxy.port());
    let (mut ws, response) = tokio::time::timeout(
        Duration::from_secs(10),
        tokio_tungstenite::client_async(url, tls),
    )
    .await
    .expect("handshake in time")
    .expect("WebSocket handshake");
    assert_eq!(response.status(), 101);
    ws.send(Message::text("over tls")).await.expect("send");
    let echoed = tokio::time::timeout(Duration::from_secs(10), ws.next())
        .await
        .expect("echo in time");
    assert_eq!(echoed.and_then(Result::ok), Some(Message::text("over tls")));
}

#[tokio::test]
async fn a_client_that_never_finishes_the_handshake_is_closed_after_the_connection_timeout() {
    use tokio::io::AsyncReadExt as _;
    let ca = TestCa::new();
    let leaf = ca.leaf(&[GATEWAY_NAME], "gateway");
    let dir = tempfile::tempdir().expect("temp dir");
    let (cert, key) = (
        write(dir.path(), "tls.crt", &leaf.cert_pem),
        write(dir.path(), "tls.key", &leaf.key_pem),
    );
    let gw = TestGateway::start(&format!(
        "server:\n  connection-timeout: 200ms\n  ssl:\n    certificate: {}\n    certificate-private-key: {}\n",
        cert.display(),
        key.display()
    ))
    .await;
    let mut silent = tokio::net::TcpStream::connect(gw.proxy)
        .await
        .expect("connect");
    let mut buf = [0u8; 16];
    let read = tokio::time::timeout(Duration::from_secs(10), silent.read(&mut buf))
        .await
        .expect("the gateway closes the connection well before 10 s");
    assert!(
        matches!(read, Ok(0) | Err(_)),
        "closed without a byte: {read:?}"
    );
}

/// Browsers send each cookie in its own HTTP/2 field; the HTTP/1.1
/// upstream must get them as one `Cookie` line (RFC 9113 §8.2.3).
#[tokio::test]
async fn an_http2_clients_split_cookies_reach_the_upstream_as_one_cookie() {
    let up = Upstream::start().await;
    let gw = TestGateway::start(&format!(
        "spring.cloud.gateway.routes:\n  - id: all\n    uri: http://{}\n    predicates: [Path=/**, \"Cookie=b, 2\"]\n",
        up.addr
    ))
    .await;
    let client = h2c_client();
    let response = client
        .get(gw.url("/h2c"))
        .header("cookie", "a=1")
        .header("cookie", "b=2")
        .send()
        .await
        .expect("h2c request");
    assert_eq!(response.status(), 200, "the Cookie predicate sees b=2");
    let echo: Value = response.json().await.expect("echo");
    assert_eq!(echo["headers"]["cookie"], json!(["a=1; b=2"]));
}

/// An HTTPS upstream that speaks HTTP/2 when offered (ALPN) and answers
/// like a gRPC server: its view of the request (version, path, `:authority`,
/// `te`, the peer that sent it) as a body, then `grpc-status` and
/// `grpc-message` as trailers.
async fn grpc_like_upstream(leaf: &Leaf, shutdown: CancellationToken) -> SocketAddr {
    use axum::extract::ConnectInfo;
    use http_body_util::StreamBody;
    use hyper::body::Frame;
    let router = Router::new().fallback(
        |ConnectInfo(peer): ConnectInfo<SocketAddr>, request: Request| async move {
            let seen = json!({
                "version": format!("{:?}", request.version()),
                "path": request.uri().path(),
                "authority": request.uri().authority().map(|a| a.to_string()),
                "host": request.headers().get("host").and_then(|h| h.to_str().ok()),
                "te": request.headers().get("te").and_then(|h| h.to_str().ok()),
                "peer": peer.to_string(),
            });
            let mut trailers = axum::http::HeaderMap::new();
            trailers.insert("grpc-status", "0".parse().expect("value"));
            trailers.insert("grpc-message", "fine".parse().expect("value"));
            let frames = futures::stream::iter([
                Ok::<_, std::convert::Infallible>(Frame::data(axum::body::Bytes::from(
                    seen.to_string(),
                ))),
                Ok(Frame::trailers(trailers)),
            ]);
            axum::response::Response::builder()
                .header("content-type", "application/grpc")
                .body(axum::body::Body::new(StreamBody::new(frames)))
                .expect("response")
        },
    );
    serve_https(leaf, router, shutdown).await
}

/// Sends a gRPC-shaped POST over cleartext HTTP/2 (as a gRPC client with
/// an insecure channel does) and returns the upstream's view and the
/// trailers the client got.
async fn grpc_call(
    sender: &mut hyper::client::conn::http2::SendRequest<axum::body::Body>,
    gw: &TestGateway,
) -> (Value, axum::http::HeaderMap) {
    use http_body_util::BodyExt as _;
    let request = axum::http::Request::post(gw.url("/secure/pkg.Echo/Say"))
        .header("content-type", "application/grpc")
        .header("te", "trailers")
        .body(axum::body::Body::from(&b"\0\0\0\0\0"[..]))
        .expect("request");
    let response = sender.send_request(request).await.expect("answer");
    assert_eq!(response.status(), 200);
    let collected = response.into_body().collect().await.expect("body");
    let trailers = collected
        .trailers()
        .cloned()
        .expect("trailers reach the client");
    let seen: Value = serde_json::from_slice(&collected.to_bytes()).expect("upstream's view");
    (seen, trailers)
}

/// `server.http2.enabled` offers HTTP/2 to `https` upstreams, as SCG's
/// client does: gRPC passes end to end, trailers included, and the
/// requests share one multiplexed connection. Off, the upstream hears
/// HTTP/1.1 as before.
#[tokio::test]
async fn with_http2_enabled_grpc_reaches_an_https_upstream_over_http2_with_its_trailers() {
    let ca = TestCa::new();
    let leaf = ca.leaf(&["127.0.0.1"], "upstream");
    let stop = CancellationToken::new();
    let _stop = stop.clone().drop_guard();
    let upstream = grpc_like_upstream(&leaf, stop).await;
    let dir = tempfile::tempdir().expect("temp dir");
    let ca_file = write(dir.path(), "ca.pem", &ca.pem());
    let config = |http2: bool| {
        format!(
            "server.http2.enabled: {http2}\nspring.cloud.gateway:\n  httpclient:\n    ssl:\n      trusted-x509-certificates: [\"{}\"]\n  routes:\n    - id: grpc\n      uri: https://{upstream}\n      predicates: [Path=/secure/**]\n      filters: [StripPrefix=1]\n",
            ca_file.display()
        )
    };

    let gw = TestGateway::start(&config(true)).await;
    let tcp = tokio::net::TcpStream::connect(gw.proxy)
        .await
        .expect("connect");
    let (mut sender, connection) = hyper::client::conn::http2::handshake(
        hyper_util::rt::TokioExecutor::new(),
        hyper_util::rt::TokioIo::new(tcp),
    )
    .await
    .expect("h2c handshake");
    tokio::spawn(connection);
    let (seen, trailers) = grpc_call(&mut sender, &gw).await;
    assert_eq!(seen["version"], "HTTP/2.0", "{seen}");
    assert_eq!(seen["path"], "/pkg.Echo/Say");
    assert_eq!(seen["authority"], upstream.to_string().as_str(), "{seen}");
    assert_eq!(seen["te"], "trailers", "{seen}");
    assert_eq!(trailers["grpc-status"], "0");
    assert_eq!(trailers["grpc-message"], "fine");

    // Concurrent calls share the upstream connection.
    let calls = (0..4).map(|_| {
        let mut sender = sender.clone();
        let gw = &gw;
        async move { grpc_call(&mut sender, gw).await.0 }
    });
    let peers: std::collections::HashSet<String> = futures::future::join_all(calls)
        .await
        .iter()
        .map(|seen| seen["peer"].as_str().expect("peer").to_owned())
        .chain([seen["peer"].as_str().expect("peer").to_owned()])
        .collect();
    assert_eq!(peers.len(), 1, "one multiplexed connection: {peers:?}");

    // Off (the default): HTTP/1.1 to the same upstream.
    let plain = TestGateway::start(&config(false)).await;
    let (status, _, body) = support::get(&plain.url("/secure/x")).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["version"], "HTTP/1.1", "{body}");
}

/// The interop venv's Python (`scripts/prereqs` makes it; `INTEROP_VENV`
/// overrides where).
fn interop_python() -> PathBuf {
    let venv = std::env::var_os("INTEROP_VENV").map_or_else(
        || Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/interop-venv"),
        PathBuf::from,
    );
    let python = venv.join("bin/python");
    assert!(
        python.exists(),
        "interop prerequisite missing at {} (INTEROP_VENV): run scripts/prereqs",
        python.display()
    );
    python
}

/// A grpcio server (`tests/interop/grpc_echo.py`), over TLS with `tls`
/// (certificate and key files), else cleartext; killed when dropped.
async fn grpcio_server(tls: Option<(&Path, &Path)>) -> (tokio::process::Child, u64) {
    use tokio::io::AsyncBufReadExt as _;
    let mut command = tokio::process::Command::new(interop_python());
    command.arg(grpc_script()).arg("server");
    if let Some((cert, key)) = tls {
        command.arg(cert).arg(key);
    }
    let mut server = command
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("start the grpcio server");
    let stdout = server.stdout.take().expect("server stdout");
    let mut first = String::new();
    tokio::time::timeout(
        Duration::from_secs(30),
        tokio::io::BufReader::new(stdout).read_line(&mut first),
    )
    .await
    .expect("the grpcio server reports its port within 30 s")
    .expect("read the port");
    let port: Value = serde_json::from_str(&first).expect("{\"port\": N}");
    (server, port["port"].as_u64().expect("port"))
}

fn grpc_script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/interop/grpc_echo.py")
}

/// Runs the grpcio client against the gateway (a cleartext HTTP/2
/// channel) and checks every call came back as the server answered it.
async fn grpcio_client_through(gw: &TestGateway) {
    let client = tokio::process::Command::new(interop_python())
        .arg(grpc_script())
        .args(["client", &format!("127.0.0.1:{}", gw.proxy.port())])
        .kill_on_drop(true)
        .output();
    let out = tokio::time::timeout(Duration::from_secs(60), client)
        .await
        .expect("the grpcio client ends within 60 s")
        .expect("run the grpcio client");
    assert!(
        out.status.success(),
        "grpcio client failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let got: Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!("{e}: {}", String::from_utf8_lossy(&out.stdout));
    });
    assert_eq!(got["say"], "hello world", "{got}");
    assert_eq!(got["say_trailers"]["x-served-by"], "python-grpcio", "{got}");
    assert_eq!(
        got["fail"],
        json!({"code": "NOT_FOUND", "details": "no such thing"}),
        "{got}"
    );
    assert_eq!(got["count"], json!(["0", "1", "2"]), "{got}");
    assert_eq!(got["collect"], "a,b,c", "{got}");
}

/// Real gRPC on both sides (Python's grpcio, unmodified): a client on a
/// cleartext HTTP/2 channel calls a TLS gRPC server through the gateway
/// with `server.http2.enabled`, as in SCG's gRPC guide. Unary with trailing
/// metadata, an error status (a trailers-only answer), server streaming
/// and client streaming all arrive as the server sent them.
#[tokio::test]
async fn a_grpcio_client_reaches_a_grpcio_server_through_the_gateway() {
    let ca = TestCa::new();
    let leaf = ca.leaf(&["127.0.0.1"], "grpc-server");
    let dir = tempfile::tempdir().expect("temp dir");
    let (cert, key, ca_file) = (
        write(dir.path(), "server.crt", &leaf.cert_pem),
        write(dir.path(), "server.key", &leaf.key_pem),
        write(dir.path(), "ca.pem", &ca.pem()),
    );
    let (_server, port) = grpcio_server(Some((&cert, &key))).await;
    let gw = TestGateway::start(&format!(
        "server.http2.enabled: true\nspring.cloud.gateway:\n  httpclient.ssl.trusted-x509-certificates: [\"{}\"]\n  routes:\n    - id: grpc\n      uri: https://127.0.0.1:{port}\n      predicates: [Path=/echo.Echo/**]\n",
        ca_file.display()
    ))
    .await;
    grpcio_client_through(&gw).await;
}

/// gRPC to a cleartext upstream goes over HTTP/2 by prior knowledge (h2c),
/// with no setting: gRPC has no HTTP/1.1 form.
#[tokio::test]
async fn grpc_to_a_cleartext_upstream_goes_over_h2c() {
    let (_server, port) = grpcio_server(None).await;
    let gw = TestGateway::start(&format!(
        "spring.cloud.gateway.routes:\n  - id: grpc\n    uri: http://127.0.0.1:{port}\n    predicates: [Path=/echo.Echo/**]\n"
    ))
    .await;
    grpcio_client_through(&gw).await;
}

/// Through a forward proxy, TLS to an `https` upstream runs inside the
/// `CONNECT` tunnel: the upstream's certificate is checked end to end,
/// and with `server.http2.enabled` HTTP/2 is agreed through the tunnel.
#[tokio::test]
async fn https_upstreams_are_reached_through_a_forward_proxy_tunnel() {
    let ca = TestCa::new();
    let leaf = ca.leaf(&["127.0.0.1"], "upstream");
    let stop = CancellationToken::new();
    let _stop = stop.clone().drop_guard();
    let upstream = grpc_like_upstream(&leaf, stop).await;
    let proxy = support::ConnectProxy::start(None).await;
    let dir = tempfile::tempdir().expect("temp dir");
    let ca_file = write(dir.path(), "ca.pem", &ca.pem());
    let gw = TestGateway::start(&format!(
        "server.http2.enabled: true\nspring.cloud.gateway:\n  httpclient:\n    proxy: {{host: 127.0.0.1, port: {}}}\n    ssl.trusted-x509-certificates: [\"{}\"]\n  routes:\n    - id: tls\n      uri: https://{upstream}\n      predicates: [Path=/secure/**]\n      filters: [StripPrefix=1]\n",
        proxy.addr.port(),
        ca_file.display()
    ))
    .await;
    let (status, _, body) = support::get(&gw.url("/secure/data")).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["path"], "/data");
    assert_eq!(body["version"], "HTTP/2.0", "{body}");
    assert_eq!(proxy.tunnels(), [upstream.to_string()]);
}
