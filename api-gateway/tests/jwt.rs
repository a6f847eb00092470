//! `JwtAuth` end to end: a real gateway on port 0 in front of an echoing
//! upstream, with its keys from the settings and from a real JWKS server
//! on port 0 serving the committed test keys (`tests/keys/`).

mod support;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use api_gateway::Gateway;
use api_gateway::settings::Settings;
use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get as get_route;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{Value, json};
use support::{TestGateway, Upstream, client, eventually, seen, send};
use tokio_util::sync::CancellationToken;

const SECRET: &str = "an-hs-secret-that-is-at-least-32-bytes-long";
const AUDIENCE: &str = "orders-api";

fn key_file(name: &str) -> String {
    let path = format!("{}/tests/keys/{name}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("test key {path}: {e}"))
}

fn jwk(name: &str) -> Value {
    serde_json::from_str(&key_file(&format!("{name}.jwk.json"))).expect("test JWK")
}

/// A JWKS server on port 0: `/jwks` serves the current key set (counting
/// the fetches), `/.well-known/openid-configuration` names it.
struct JwksServer {
    addr: std::net::SocketAddr,
    keys: Arc<Mutex<Vec<Value>>>,
    fetches: Arc<AtomicUsize>,
    token: CancellationToken,
}

#[derive(Clone)]
struct JwksState {
    addr: std::net::SocketAddr,
    keys: Arc<Mutex<Vec<Value>>>,
    fetches: Arc<AtomicUsize>,
}

impl JwksServer {
    async fn start(keys: &[&str]) -> JwksServer {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind JWKS server");
        let addr = listener.local_addr().expect("address");
        let state = JwksState {
            addr,
            keys: Arc::new(Mutex::new(keys.iter().map(|k| jwk(k)).collect())),
            fetches: Arc::default(),
        };
        let router = Router::new()
            .route(
                "/jwks",
                get_route(|State(s): State<JwksState>| async move {
                    s.fetches.fetch_add(1, Ordering::SeqCst);
                    let keys = s.keys.lock().expect("lock").clone();
                    axum::Json(json!({ "keys": keys }))
                }),
            )
            .route(
                "/.well-known/openid-configuration",
                get_route(|State(s): State<JwksState>| async move {
                    axum::Json(json!({
                        "issuer": format!("http://{}", s.addr),
                        "jwks_uri": format!("http://{}/jwks", s.addr),
                    }))
                }),
            )
            .with_state(state.clone());
        let token = support::serve(listener, router);
        JwksServer {
            addr,
            keys: state.keys,
            fetches: state.fetches,
            token,
        }
    }

    fn issuer(&self) -> String {
        format!("http://{}", self.addr)
    }

    fn add(&self, key: &str) {
        self.keys.lock().expect("lock").push(jwk(key));
    }

    /// Stops publishing the key `kid`.
    fn remove(&self, kid: &str) {
        self.keys
            .lock()
            .expect("lock")
            .retain(|k| k["kid"].as_str() != Some(kid));
    }

    fn fetches(&self) -> usize {
        self.fetches.load(Ordering::SeqCst)
    }
}

impl Drop for JwksServer {
    fn drop(&mut self) {
        self.token.cancel();
    }
}

/// Gateway settings: `/open/**` without auth, `/api/**` any valid token,
/// `/write/**` scope `orders.write`, `/admin/**` role `admin`; keys from
/// the secret and the JWKS server (Spring Security's keys for the URL,
/// issuer and audience).
fn gateway_yaml(up: &Upstream, jwks: &JwksServer, min_refresh: &str) -> String {
    format!(
        r#"
spring:
  security:
    oauth2:
      resourceserver:
        jwt:
          jwk-set-uri: http://{jwks}/jwks
          issuer-uri: {issuer}
          audiences: [{AUDIENCE}]
  cloud:
    gateway:
      jwt:
        secret: {SECRET}
        leeway: 5s
        claim-headers:
          sub: X-User-Id
          scope: X-User-Scopes
          "[realm_access.roles]": X-User-Roles
        jwks:
          min-refresh-interval: {min_refresh}
      routes:
        - id: open
          uri: http://{up}
          predicates: [Path=/open/**]
        - id: api
          uri: http://{up}
          predicates: [Path=/api/**]
          filters: [JwtAuth]
        - id: write
          uri: http://{up}
          predicates: [Path=/write/**]
          filters:
            - name: JwtAuth
              args:
                scopes: [orders.write]
        - id: admin
          uri: http://{up}
          predicates: [Path=/admin/**]
          filters: ["JwtAuth=, admin"]
"#,
        jwks = jwks.addr,
        issuer = jwks.issuer(),
        up = up.addr,
    )
}

/// An upstream, a JWKS server with `keys` and a gateway in front
/// ([`gateway_yaml`]) whose JWKS refetches at most once per `min_refresh`.
async fn start(keys: &[&str], min_refresh: &str) -> (Upstream, JwksServer, TestGateway) {
    let (up, jwks) = (Upstream::start().await, JwksServer::start(keys).await);
    let gw = TestGateway::start(&gateway_yaml(&up, &jwks, min_refresh)).await;
    (up, jwks, gw)
}

fn now() -> i64 {
    i64::try_from(jsonwebtoken::get_current_timestamp()).expect("time fits")
}

struct Signer {
    alg: Algorithm,
    kid: Option<String>,
    key: EncodingKey,
}

fn signer(alg: Algorithm) -> Signer {
    let pem = |name: &str| key_file(&format!("{name}.key.pem")).into_bytes();
    let (kid, key) = match alg {
        Algorithm::HS256 | Algorithm::HS384 | Algorithm::HS512 => (
            None,
            EncodingKey::from_secret(SECRET.as_bytes()).expect("key"),
        ),
        Algorithm::ES256 => (
            Some("ec-256"),
            EncodingKey::from_ec_pem(&pem("ec-256")).expect("key"),
        ),
        Algorithm::ES384 => (
            Some("ec-384"),
            EncodingKey::from_ec_pem(&pem("ec-384")).expect("key"),
        ),
        Algorithm::EdDSA => (
            Some("ed-1"),
            EncodingKey::from_ed_pem(&pem("ed-1")).expect("key"),
        ),
        _ => (
            Some("rsa-1"),
            EncodingKey::from_rsa_pem(&pem("rsa-1")).expect("key"),
        ),
    };
    Signer {
        alg,
        kid: kid.map(str::to_owned),
        key,
    }
}

impl Signer {
    fn kid(mut self, kid: &str) -> Signer {
        self.kid = Some(kid.to_owned());
        self
    }

    fn sign(&self, claims: &Value) -> String {
        let mut header = Header::new(self.alg);
        header.kid = self.kid.clone();
        jsonwebtoken::encode(&header, claims, &self.key).expect("signs")
    }
}

fn claims(issuer: &str) -> Value {
    json!({
        "sub": "alice",
        "iss": issuer,
        "aud": AUDIENCE,
        "exp": now() + 300,
        "iat": now(),
        "scope": "orders.read",
    })
}

/// Sends `token` (if any) to `path` with a spoofed `X-User-Id`.
async fn call(
    gw: &TestGateway,
    path: &str,
    token: Option<&str>,
) -> (StatusCode, reqwest::header::HeaderMap, Value) {
    let mut request = client().get(gw.url(path)).header("x-user-id", "mallory");
    if let Some(t) = token {
        request = request.bearer_auth(t);
    }
    send(request).await
}

fn challenge(headers: &reqwest::header::HeaderMap) -> &str {
    headers
        .get("www-authenticate")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
}

#[tokio::test]
async fn every_supported_algorithm_is_accepted_and_its_claims_forwarded() {
    let (_up, jwks, gw) = start(&["rsa-1", "ec-256", "ec-384", "ed-1"], "30s").await;
    for alg in [
        Algorithm::HS256,
        Algorithm::HS384,
        Algorithm::HS512,
        Algorithm::RS256,
        Algorithm::RS384,
        Algorithm::RS512,
        Algorithm::ES256,
        Algorithm::ES384,
        Algorithm::EdDSA,
    ] {
        let token = signer(alg).sign(&claims(&jwks.issuer()));
        let (status, _, echo) = call(&gw, "/api/orders", Some(&token)).await;
        assert_eq!(status, StatusCode::OK, "{alg:?}: {echo}");
        assert_eq!(
            seen(&echo, "x-user-id"),
            Some("alice"),
            "{alg:?}: the claim, not the client's copy"
        );
        assert_eq!(seen(&echo, "x-user-scopes"), Some("orders.read"));
        assert_eq!(
            seen(&echo, "authorization"),
            Some(format!("Bearer {token}").as_str()),
            "the token is relayed unchanged"
        );
    }
    assert_eq!(jwks.fetches(), 1, "the JWKS is cached");
}

#[tokio::test]
async fn a_missing_token_gets_a_bare_bearer_challenge() {
    let (up, _jwks, gw) = start(&["rsa-1"], "30s").await;
    let (status, headers, body) = call(&gw, "/api/orders", None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(challenge(&headers), "Bearer");
    assert_eq!(body["status"], 401);
    assert_eq!(body["path"], "/api/orders");
    let (status, headers, _) = send(
        client()
            .get(gw.url("/api/orders"))
            .header("authorization", "Basic dXNlcjpwdw=="),
    )
    .await;
    assert_eq!(
        status,
        StatusCode::UNAUTHORIZED,
        "Basic is not a bearer token"
    );
    assert_eq!(challenge(&headers), "Bearer");
    assert_eq!(up.hits(), 0);
}

#[tokio::test]
async fn unacceptable_tokens_are_refused_with_invalid_token() {
    use base64::Engine as _;
    let (up, jwks, gw) = start(&["rsa-1"], "30s").await;
    let iss = jwks.issuer();
    let good = claims(&iss);
    let with = |key: &str, value: Value| {
        let mut c = good.clone();
        c[key] = value;
        c
    };
    let b64 = |v: &Value| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.to_string());
    let rs = signer(Algorithm::RS256);
    let valid = rs.sign(&good);
    let mut parts: Vec<String> = valid.split('.').map(str::to_owned).collect();
    parts[1] = b64(&with("sub", "admin".into()));
    let tampered = parts.join(".");
    let confused = Signer {
        alg: Algorithm::HS256,
        kid: Some("rsa-1".to_owned()),
        key: EncodingKey::from_secret(key_file("rsa-1.pub.pem").as_bytes()).expect("key"),
    }
    .sign(&good);
    let cases = [
        (
            "alg none",
            format!("{}.{}.", b64(&json!({"alg": "none"})), b64(&good)),
        ),
        ("HS256 keyed with the RSA public key", confused),
        (
            "a kid not in the set",
            signer(Algorithm::RS256).kid("nobody").sign(&good),
        ),
        (
            "a key that is not in the set",
            signer(Algorithm::ES256).kid("rsa-1").sign(&good),
        ),
        ("a tampered payload", tampered),
        ("expired", rs.sign(&with("exp", (now() - 60).into()))),
        ("not yet valid", rs.sign(&with("nbf", (now() + 120).into()))),
        (
            "another issuer",
            rs.sign(&with("iss", "http://evil.example".into())),
        ),
        (
            "another audience",
            rs.sign(&with("aud", json!(["billing"]))),
        ),
        (
            "HS256 with another secret",
            Signer {
                alg: Algorithm::HS256,
                kid: None,
                key: EncodingKey::from_secret(b"another-secret-that-is-32-bytes-long!!")
                    .expect("key"),
            }
            .sign(&good),
        ),
        ("not a JWT", "not-a-jwt".to_owned()),
    ];
    for (case, token) in cases {
        let (status, headers, body) = call(&gw, "/api/orders", Some(&token)).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{case}");
        let c = challenge(&headers);
        assert!(
            c.starts_with("Bearer error=\"invalid_token\", error_description=\""),
            "{case}: {c}"
        );
        assert_eq!(body["status"], 401, "{case}");
        assert!(
            body["message"].as_str().is_some_and(|m| !m.is_empty()),
            "{case}"
        );
    }
    assert_eq!(up.hits(), 0, "no refused request reaches the upstream");
    let (status, _, _) = call(&gw, "/api/orders", Some(&valid)).await;
    assert_eq!(status, StatusCode::OK, "the untampered token passes");
}

#[tokio::test]
async fn scopes_and_roles_are_checked_per_route() {
    let (_up, jwks, gw) = start(&["rsa-1"], "30s").await;
    let rs = signer(Algorithm::RS256);
    let reader = rs.sign(&claims(&jwks.issuer()));
    let (status, headers, body) = call(&gw, "/write/orders", Some(&reader)).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let c = challenge(&headers);
    assert!(c.starts_with("Bearer error=\"insufficient_scope\""), "{c}");
    assert!(c.ends_with("scope=\"orders.write\""), "{c}");
    assert_eq!(body["status"], 403);

    let mut writer = claims(&jwks.issuer());
    writer["scp"] = json!(["orders.write"]);
    let (status, _, _) = call(&gw, "/write/orders", Some(&rs.sign(&writer))).await;
    assert_eq!(status, StatusCode::OK);

    let (status, _, _) = call(&gw, "/admin/x", Some(&reader)).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "no roles");
    let mut admin = claims(&jwks.issuer());
    admin["roles"] = json!(["user", "admin"]);
    let (status, _, _) = call(&gw, "/admin/x", Some(&rs.sign(&admin))).await;
    assert_eq!(status, StatusCode::OK);
}

#[tokio::test]
async fn claim_headers_from_clients_are_stripped_on_every_route() {
    let (_up, jwks, gw) = start(&["rsa-1"], "30s").await;
    let (status, _, echo) = send(
        client()
            .get(gw.url("/open/x"))
            .header("x-user-id", "mallory")
            .header("x-user-scopes", "admin"),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(seen(&echo, "x-user-id"), None);
    assert_eq!(seen(&echo, "x-user-scopes"), None);
    // A token without `scope`: the client's copy is not passed through.
    let mut c = claims(&jwks.issuer());
    c.as_object_mut().expect("object").remove("scope");
    c["realm_access"] = json!({"roles": ["clerk", "admin"]});
    let token = signer(Algorithm::RS256).sign(&c);
    let (_, _, echo) = send(
        client()
            .get(gw.url("/api/x"))
            .bearer_auth(&token)
            .header("x-user-scopes", "admin"),
    )
    .await;
    assert_eq!(seen(&echo, "x-user-scopes"), None);
    assert_eq!(seen(&echo, "x-user-id"), Some("alice"));
    assert_eq!(
        seen(&echo, "x-user-roles"),
        Some("clerk,admin"),
        "a nested claim named in Spring's brackets"
    );
}

#[tokio::test]
async fn a_rotated_key_is_accepted_once_the_jwks_is_refetched() {
    let (_up, jwks, gw) = start(&["rsa-1"], "100ms").await;
    let iss = jwks.issuer();
    let old = signer(Algorithm::RS256).sign(&claims(&iss));
    assert_eq!(call(&gw, "/api/x", Some(&old)).await.0, StatusCode::OK);
    let new = Signer {
        alg: Algorithm::RS256,
        kid: Some("rsa-2".to_owned()),
        key: EncodingKey::from_rsa_pem(key_file("rsa-2.key.pem").as_bytes()).expect("key"),
    }
    .sign(&claims(&iss));
    assert_eq!(
        call(&gw, "/api/x", Some(&new)).await.0,
        StatusCode::UNAUTHORIZED,
        "not published yet"
    );
    jwks.add("rsa-2");
    eventually(
        Duration::from_secs(10),
        "the new key's token to be accepted after a refetch",
        || async { call(&gw, "/api/x", Some(&new)).await.0 == StatusCode::OK },
    )
    .await;
    assert_eq!(
        call(&gw, "/api/x", Some(&old)).await.0,
        StatusCode::OK,
        "the old key still works"
    );
}

/// Tokens verified with JWKS keys are remembered by the gateway; a refetch
/// that drops the key must still stop them.
#[tokio::test]
async fn a_remembered_token_is_refused_once_a_refetch_drops_its_key() {
    let (_up, jwks, gw) = start(&["rsa-1", "rsa-2"], "100ms").await;
    let iss = jwks.issuer();
    let token = signer(Algorithm::RS256).sign(&claims(&iss));
    // Sent on several connections, so that every I/O worker remembers it.
    for _ in 0..6 {
        assert_eq!(call(&gw, "/api/x", Some(&token)).await.0, StatusCode::OK);
    }
    let fetched = jwks.fetches();
    jwks.remove("rsa-1");
    // A token naming a `kid` the gateway does not hold makes it fetch the
    // JWKS again (at most once per 100 ms).
    let unknown = signer(Algorithm::RS256).kid("rsa-9").sign(&claims(&iss));
    eventually(
        Duration::from_secs(10),
        "the token of the dropped key to be refused",
        || async {
            let nudge = call(&gw, "/api/x", Some(&unknown)).await.0;
            assert_eq!(nudge, StatusCode::UNAUTHORIZED, "an unknown kid");
            call(&gw, "/api/x", Some(&token)).await.0 == StatusCode::UNAUTHORIZED
        },
    )
    .await;
    assert!(jwks.fetches() > fetched, "the JWKS was fetched again");
    for _ in 0..6 {
        assert_eq!(
            call(&gw, "/api/x", Some(&token)).await.0,
            StatusCode::UNAUTHORIZED,
            "no I/O worker still accepts it"
        );
    }
    let other = Signer {
        alg: Algorithm::RS256,
        kid: Some("rsa-2".to_owned()),
        key: EncodingKey::from_rsa_pem(key_file("rsa-2.key.pem").as_bytes()).expect("key"),
    }
    .sign(&claims(&iss));
    assert_eq!(
        call(&gw, "/api/x", Some(&other)).await.0,
        StatusCode::OK,
        "the key still published still works"
    );
}

/// Without an unknown `kid` to make it refetch, the JWKS's TTL is what
/// finds a dropped key: a remembered token is checked again once its key
/// set is older than `cache-ttl`.
#[tokio::test]
async fn a_remembered_token_is_checked_again_when_its_key_set_expires() {
    let (up, jwks) = (Upstream::start().await, JwksServer::start(&["rsa-1"]).await);
    let yaml = gateway_yaml(&up, &jwks, "100ms").replace(
        "min-refresh-interval: 100ms",
        "min-refresh-interval: 100ms\n          cache-ttl: 300ms",
    );
    let gw = TestGateway::start(&yaml).await;
    let token = signer(Algorithm::RS256).sign(&claims(&jwks.issuer()));
    for _ in 0..4 {
        assert_eq!(call(&gw, "/api/x", Some(&token)).await.0, StatusCode::OK);
    }
    jwks.remove("rsa-1");
    eventually(
        Duration::from_secs(10),
        "the token to be refused once the key set expired",
        || async { call(&gw, "/api/x", Some(&token)).await.0 == StatusCode::UNAUTHORIZED },
    )
    .await;
}

#[tokio::test]
async fn a_flood_of_unknown_kids_does_not_hammer_the_jwks_endpoint() {
    let (_up, jwks, gw) = start(&["rsa-1"], "1h").await;
    let iss = jwks.issuer();
    let rs = signer(Algorithm::RS256);
    assert_eq!(
        call(&gw, "/api/x", Some(&rs.sign(&claims(&iss)))).await.0,
        StatusCode::OK
    );
    for i in 0..50 {
        let token = signer(Algorithm::RS256)
            .kid(&format!("bogus-{i}"))
            .sign(&claims(&iss));
        assert_eq!(
            call(&gw, "/api/x", Some(&token)).await.0,
            StatusCode::UNAUTHORIZED
        );
    }
    assert_eq!(
        jwks.fetches(),
        1,
        "within the interval no kid triggers a fetch"
    );
}

#[tokio::test]
async fn the_jwks_is_found_from_the_issuer_and_the_token_need_not_be_relayed() {
    let (up, jwks) = (
        Upstream::start().await,
        JwksServer::start(&["ec-256"]).await,
    );
    let yaml = format!(
        r#"
spring:
  security:
    oauth2:
      resourceserver:
        jwt:
          issuer-uri: {iss}
  cloud:
    gateway:
      jwt:
        token-relay: false
      routes:
        - id: api
          uri: http://{up}
          predicates: [Path=/api/**]
          filters: [JwtAuth]
"#,
        iss = jwks.issuer(),
        up = up.addr,
    );
    let gw = TestGateway::start(&yaml).await;
    let token = signer(Algorithm::ES256).sign(&claims(&jwks.issuer()));
    let (status, _, echo) = call(&gw, "/api/x", Some(&token)).await;
    assert_eq!(status, StatusCode::OK, "{echo}");
    assert_eq!(seen(&echo, "authorization"), None, "token-relay: false");
    assert_eq!(seen(&echo, "x-user-id"), Some("alice"));
    assert_eq!(jwks.fetches(), 1);
}

#[test]
fn a_jwt_route_without_keys_or_with_bad_settings_fails_at_start() {
    let load = |yaml: &str| {
        let settings: Settings = serde_yaml_ng::from_str(yaml).expect("valid YAML");
        Gateway::builder(settings)
            .build()
            .map(|_| ())
            .expect_err("refused")
            .to_string()
    };
    let route = "      routes:\n        - id: api\n          uri: http://127.0.0.1:1\n          filters: [JwtAuth]\n";
    let e = load(&format!("spring:\n  cloud:\n    gateway:\n{route}"));
    assert!(
        e.contains("spring.cloud.gateway.jwt") && e.contains("`api`"),
        "{e}"
    );
    let e = load(&format!(
        "spring:\n  cloud:\n    gateway:\n      jwt:\n        secret: short\n{route}"
    ));
    assert!(e.contains("spring.cloud.gateway.jwt.secret"), "{e}");
    let e = load(&format!(
        "spring:\n  cloud:\n    gateway:\n      jwt:\n        jwk-set-uri: ftp://idp.example/jwks\n{route}"
    ));
    assert!(e.contains("jwk-set-uri") && e.contains("https://"), "{e}");
    let e = load(&format!(
        "spring:\n  cloud:\n    gateway:\n      jwt:\n        secret: {SECRET}\n        jws-algorithms: [none]\n{route}"
    ));
    assert!(e.contains("jws-algorithms"), "{e}");
}
