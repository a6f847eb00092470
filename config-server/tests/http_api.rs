//! The HTTP API through `tower::ServiceExt::oneshot`, no socket: Spring
//! compatible endpoints, encryption, webhooks, auth, and rejection of every
//! published Spring Cloud Config path traversal payload.
#![allow(clippy::unwrap_used)]

use axum::Router;
use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use config_server::crypto::{DEFAULT_SALT, TextEncryptor};
use config_server::{Settings, http::app};
use http_body_util::BodyExt;
use serde_json::{Value, json};
use tower::ServiceExt;

struct Fixture {
    router: Router,
    _dir: tempfile::TempDir,
    _outside: tempfile::TempDir,
}

const KEY: &str = "s3cr3t-key";

async fn fixture_with(tweak: impl FnOnce(&mut Settings)) -> Fixture {
    let outside = tempfile::tempdir().unwrap();
    std::fs::write(outside.path().join("passwd"), "root:x:0:0\n").unwrap();
    let dir = tempfile::tempdir().unwrap();
    let enc = TextEncryptor::new(KEY, DEFAULT_SALT).unwrap();
    let write = |p: &str, c: &str| {
        let path = dir.path().join(p);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, c).unwrap();
    };
    write(
        "application.yml",
        "shared: from-application\nserver:\n  port: 8000\n---\nspring:\n  config:\n    activate:\n      on-profile: mysql\ndb: mysql-from-application-doc\n",
    );
    write("application-dev.properties", "level=dev-app\n");
    write(
        "foo.yml",
        &format!(
            "server:\n  port: 8080\nname: foo\ngreeting: hi ${{name}} on ${{server.port}}\nlist:\n  - x: 1\n  - x: 2\npassword: '{{cipher}}{}'\nbroken: '{{cipher}}00ff'\n",
            enc.encrypt("p@ss")
        ),
    );
    write("foo-dev.yml", "server:\n  port: 9000\n");
    write("foo-mysql.properties", "db=mysql\n");
    write("nginx.conf", "listen ${server.port};\n");
    write("nginx-dev.conf", "dev listen ${server.port};\n");
    let mut settings = Settings {
        native_dirs: vec![dir.path().into()],
        encrypt_key: Some(KEY.into()),
        refresh_rate: 0,
        ..Settings::default()
    };
    tweak(&mut settings);
    let running = config_server::start(settings).await.unwrap();
    Fixture {
        router: app(running.state.clone()),
        _dir: dir,
        _outside: outside,
    }
}

async fn fixture() -> Fixture {
    fixture_with(|_| {}).await
}

async fn send(router: &Router, req: Request<Body>) -> (StatusCode, String, String) {
    let resp = router.clone().oneshot(req).await.unwrap();
    let status = resp.status();
    let ct = resp
        .headers()
        .get(header::CONTENT_TYPE)
        .map(|v| v.to_str().unwrap().to_string())
        .unwrap_or_default();
    let body = resp.into_body().collect().await.unwrap().to_bytes();
    (status, ct, String::from_utf8_lossy(&body).into_owned())
}

async fn get(router: &Router, uri: &str) -> (StatusCode, String, String) {
    send(router, Request::get(uri).body(Body::empty()).unwrap()).await
}

fn source_names(env: &Value) -> Vec<String> {
    env["propertySources"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            let n = s["name"].as_str().unwrap();
            n.rsplit('/').next().unwrap().to_string()
        })
        .collect()
}

#[tokio::test]
async fn environment_orders_sources_and_decrypts() {
    let f = fixture().await;
    let (status, ct, body) = get(&f.router, "/foo/dev,mysql").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(ct, "application/json");
    let env: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(env["name"], json!("foo"));
    assert_eq!(env["profiles"], json!(["dev", "mysql"]));
    assert_eq!(env["version"], Value::Null);
    assert_eq!(
        source_names(&env),
        [
            "foo-mysql.properties",
            "foo-dev.yml",
            "application-dev.properties",
            "foo.yml",
            "application.yml (document #1)",
            "application.yml (document #0)"
        ]
    );
    let foo = &env["propertySources"][3]["source"];
    assert_eq!(foo["server.port"], json!(8080), "types are kept");
    assert_eq!(foo["list[1].x"], json!(2));
    assert_eq!(
        foo["password"],
        json!("p@ss"),
        "cipher values are decrypted"
    );
    assert_eq!(foo["invalid.broken"], json!("<n/a>"));
    assert!(!body.contains("{cipher}"), "ciphertext is never served");
}

#[tokio::test]
async fn v2_media_type_is_answered() {
    let f = fixture().await;
    let req = Request::get("/foo/dev")
        .header(header::ACCEPT, config_server::http::V2_MEDIA_TYPE)
        .body(Body::empty())
        .unwrap();
    let (status, ct, body) = send(&f.router, req).await;
    assert_eq!(status, 200);
    assert_eq!(ct, config_server::http::V2_MEDIA_TYPE);
    let env: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(
        env["propertySources"][0]["source"]["server.port"],
        json!(9000)
    );
}

#[tokio::test]
async fn merged_views_resolve_placeholders() {
    let f = fixture().await;
    let (s, _, json_body) = get(&f.router, "/foo-dev.json").await;
    assert_eq!(s, 200);
    let v: Value = serde_json::from_str(&json_body).unwrap();
    assert_eq!(v["server"]["port"], json!(9000));
    assert_eq!(v["greeting"], json!("hi foo on 9000"));
    assert_eq!(v["list"], json!([{"x": 1}, {"x": 2}]));

    let (s, _, yml) = get(&f.router, "/main/foo-dev.yml").await;
    assert_eq!(s, 200);
    let y: Value = serde_yaml_ng::from_str(&yml).unwrap();
    assert_eq!(y["level"], json!("dev-app"));

    let (s, _, props) = get(&f.router, "/foo-dev.properties").await;
    assert_eq!(s, 200);
    assert!(props.contains("server.port: 9000\n"), "{props}");
    assert!(props.contains("password: p@ss\n"));

    let (_, _, raw) = get(&f.router, "/foo-dev.json?resolvePlaceholders=false").await;
    assert!(raw.contains("hi ${name}"));
    let (_, _, env) = get(&f.router, "/foo/dev").await;
    assert!(
        env.contains("hi ${name}"),
        "the Environment JSON keeps placeholders"
    );
    let (_, _, env) = get(&f.router, "/foo/dev?resolvePlaceholders=true").await;
    assert!(env.contains("hi foo on 9000"), "unless asked");
}

#[tokio::test]
async fn plain_text_files_prefer_profile_variants_and_resolve_placeholders() {
    let f = fixture().await;
    let (s, ct, body) = get(&f.router, "/foo/dev/main/nginx.conf").await;
    assert_eq!(s, 200);
    assert!(ct.starts_with("text/plain"));
    assert_eq!(body, "dev listen 9000;\n");
    let (_, _, body) = get(&f.router, "/foo/default/main/nginx.conf").await;
    assert_eq!(body, "listen 8080;\n");
    let (s, _, body) = get(&f.router, "/foo/default/main/missing.conf").await;
    assert_eq!(s, 404);
    assert_eq!(
        serde_json::from_str::<Value>(&body).unwrap()["status"],
        json!(404)
    );
}

async fn assert_rejected(router: &Router, uri: &str) {
    let (status, ct, body) = get(router, uri).await;
    assert_eq!(status, 400, "{uri} -> {status} {body}");
    assert_eq!(ct, "application/json", "{uri}");
    let v: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["status"], json!(400));
    assert!(!body.contains("root:"), "{uri} leaked a file");
}

#[tokio::test]
async fn cve_2019_3799_double_encoded_traversal_in_file_path() {
    let f = fixture().await;
    assert_rejected(
        &f.router,
        "/foo/default/master/..%252F..%252F..%252F..%252F..%252F..%252Fetc%252Fpasswd",
    )
    .await;
    assert_rejected(
        &f.router,
        "/test/pathtraversal/master/..%252f..%252f..%252fetc%252fpasswd",
    )
    .await;
}

#[tokio::test]
async fn cve_2020_5405_label_with_underscore_parentheses() {
    let f = fixture().await;
    assert_rejected(&f.router, "/foo/default/..(_)..(_)..(_)..(_)etc/passwd").await;
    assert_rejected(
        &f.router,
        "/foo/default/..%28_%29..%28_%29..%28_%29etc/passwd",
    )
    .await;
    assert_rejected(&f.router, "/a/b/%2e%2e%28%5f%29%2e%2e%28%5f%29etc/passwd").await;
}

#[tokio::test]
async fn cve_2020_5410_encoded_traversal_in_the_application_name() {
    let f = fixture().await;
    assert_rejected(
        &f.router,
        "/..%252F..%252F..%252F..%252F..%252F..%252F..%252Fetc%252Fpasswd%23foo/development",
    )
    .await;
    assert_rejected(&f.router, "/..%2F..%2F..%2Fetc%2Fpasswd%23foo/development").await;
}

#[tokio::test]
async fn cve_2026_22739_profile_substitution() {
    let f = fixture().await;
    for uri in [
        // The published scanner payloads: profile substitution into a
        // native search location.
        "/application/..%2F..%2F..%2F..%2F..%2Fetc",
        "/application/..%2F..%2F..%2F..%2F..%2Fetc/main",
        "/application/..%252F..%252F..%252F..%252F..%252Fetc",
        "/application/default%2C..%2F..%2F..%2F..%2F..%2Fetc",
        "/foo/..%2F..%2F..%2Fetc%2Fpasswd",
        "/foo/..%252F..%252Fetc",
        "/foo/file:%2F%2F%2Fetc%2F",
        "/foo/http:%2F%2F169.254.169.254%2Flatest",
        "/foo/dev,..",
        "/foo/dev/main/%2e%2e/%2e%2e/etc/passwd",
        "/foo/dev/main/..%5c..%5cetc%5cpasswd",
        "/foo%00/dev",
    ] {
        assert_rejected(&f.router, uri).await;
    }
}

#[tokio::test]
async fn plain_traversal_and_bad_names_are_rejected_in_every_part() {
    let f = fixture().await;
    for uri in [
        "/../foo/dev",
        "/foo/../dev",
        "/foo/dev/../../x",
        "/foo/dev/main/../../../etc/passwd",
        "/foo/dev$(id)",
        "/foo/dev/main(_)..(_)..(_)x",
        "/..-dev.yml",
        "/..(_)../foo-dev.yml",
    ] {
        assert_rejected(&f.router, uri).await;
    }
}

#[tokio::test]
async fn encrypt_and_decrypt_round_trip_like_spring() {
    let f = fixture().await;
    let (s, _, body) = get(&f.router, "/encrypt/status").await;
    assert_eq!((s, body.as_str()), (StatusCode::OK, r#"{"status":"OK"}"#));
    let req = Request::post("/encrypt")
        .header(header::CONTENT_TYPE, "text/plain")
        .body(Body::from("hello"))
        .unwrap();
    let (s, _, cipher) = send(&f.router, req).await;
    assert_eq!(s, 200);
    assert!(cipher.chars().all(|c| c.is_ascii_hexdigit()));
    let enc = TextEncryptor::new(KEY, DEFAULT_SALT).unwrap();
    assert_eq!(enc.decrypt(&cipher).unwrap(), "hello");
    // curl -d sends a form body with a trailing '='.
    let req = Request::post("/decrypt")
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .body(Body::from(format!("{cipher}=")))
        .unwrap();
    let (s, _, plain) = send(&f.router, req).await;
    assert_eq!((s, plain.as_str()), (StatusCode::OK, "hello"));
    let req = Request::post("/encrypt/foo/dev,prod")
        .body(Body::from("x"))
        .unwrap();
    let (s, _, named) = send(&f.router, req).await;
    assert_eq!(s, 200);
    assert_eq!(enc.decrypt(&named).unwrap(), "x");
    let req = Request::post("/decrypt/foo/dev")
        .body(Body::from(named))
        .unwrap();
    assert_eq!(send(&f.router, req).await.2, "x");
    let req = Request::post("/encrypt/..%252F/dev")
        .body(Body::from("x"))
        .unwrap();
    assert_eq!(send(&f.router, req).await.0, 400);
    let req = Request::post("/decrypt")
        .body(Body::from("abcdef"))
        .unwrap();
    let (s, _, body) = send(&f.router, req).await;
    assert_eq!(s, 400);
    assert!(body.contains("INVALID"));
}

#[tokio::test]
async fn without_a_key_encryption_reports_no_key() {
    let f = fixture_with(|s| s.encrypt_key = None).await;
    let (s, _, body) = get(&f.router, "/encrypt/status").await;
    assert_eq!(s, 404);
    assert!(body.contains("NO_KEY"));
    let (_, _, env) = get(&f.router, "/foo/default").await;
    assert!(env.contains(r#""invalid.password":"<n/a>""#));
    assert!(!env.contains("{cipher}"));
}

#[tokio::test]
async fn basic_auth_protects_everything_but_health() {
    let f = fixture_with(|s| {
        s.username = Some("user".into());
        s.password = Some("pw".into());
    })
    .await;
    assert_eq!(get(&f.router, "/foo/dev").await.0, 401);
    assert_eq!(get(&f.router, "/actuator/prometheus").await.0, 401);
    assert_eq!(get(&f.router, "/actuator/health").await.0, 200);
    assert_eq!(get(&f.router, "/actuator/health/liveness").await.0, 200);
    assert_eq!(get(&f.router, "/actuator/health/readiness").await.0, 200);
    assert_eq!(get(&f.router, "/actuator/healthz").await.0, 401);
    let resp = f
        .router
        .clone()
        .oneshot(Request::get("/foo/dev").body(Body::empty()).unwrap())
        .await
        .unwrap();
    assert_eq!(
        resp.headers()[header::WWW_AUTHENTICATE],
        "Basic realm=\"config-server\""
    );
    let body = resp.into_body().collect().await.unwrap().to_bytes();
    let body: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(body["status"], json!(401));
    let req = Request::get("/actuator/prometheus")
        .header(header::AUTHORIZATION, "basic dXNlcjpwdw==")
        .body(Body::empty())
        .unwrap();
    let (s, _, metrics) = send(&f.router, req).await;
    assert_eq!(s, 200, "the scheme is case-insensitive");
    assert!(
        metrics.contains("config_server_rejected_requests_total 4\n"),
        "refused credentials are counted: {metrics}"
    );
    let req = Request::get("/foo/dev")
        .header(header::AUTHORIZATION, "Basic dXNlcjpwdw==")
        .body(Body::empty())
        .unwrap();
    assert_eq!(send(&f.router, req).await.0, 200);
    let req = Request::get("/foo/dev")
        .header(header::AUTHORIZATION, "Basic dXNlcjp3cm9uZw==")
        .body(Body::empty())
        .unwrap();
    assert_eq!(send(&f.router, req).await.0, 401);
}

#[tokio::test]
async fn monitor_requires_the_secret_when_configured() {
    let f = fixture_with(|s| s.monitor_secret = Some("hook".into())).await;
    let body = r#"{"commits":[{"modified":["foo-dev.yml"]}]}"#;
    let req = Request::post("/monitor")
        .header("x-github-event", "push")
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from(body))
        .unwrap();
    assert_eq!(send(&f.router, req).await.0, 401);
    let req = Request::post("/monitor")
        .header("x-gitlab-token", "hook")
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from(body))
        .unwrap();
    let (s, _, apps) = send(&f.router, req).await;
    assert_eq!(s, 200);
    assert_eq!(
        serde_json::from_str::<Value>(&apps).unwrap(),
        json!(["foo:dev", "foo-dev"])
    );
    let req = Request::post("/monitor")
        .header("x-gitlab-token", "hook")
        .body(Body::from("not json"))
        .unwrap();
    assert_eq!(send(&f.router, req).await.0, 400);
    let req = Request::post("/monitor")
        .header("x-gitlab-token", "hook")
        .header("x-github-event", "ping")
        .body(Body::from("{}"))
        .unwrap();
    let (s, _, body) = send(&f.router, req).await;
    assert_eq!((s, body.as_str()), (StatusCode::OK, "[]"));
}

#[tokio::test]
async fn health_and_prometheus() {
    let f = fixture().await;
    let (s, _, body) = get(&f.router, "/actuator/health").await;
    assert_eq!(s, 200);
    let v: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["status"], json!("UP"));
    get(&f.router, "/foo/dev").await;
    get(&f.router, "/foo/dev").await;
    let (s, ct, text) = get(&f.router, "/actuator/prometheus").await;
    assert_eq!(s, 200);
    assert!(ct.starts_with("text/plain"));
    assert!(
        text.contains("config_server_cache_hits_total 1\n"),
        "{text}"
    );
    assert!(text.contains("config_server_cache_misses_total 1\n"));
}

#[tokio::test]
async fn unknown_paths_and_methods_are_json_errors() {
    let f = fixture().await;
    let (s, ct, _) = get(&f.router, "/").await;
    assert_eq!(
        (s, ct.as_str()),
        (StatusCode::NOT_FOUND, "application/json")
    );
    let (s, _, _) = get(&f.router, "/foo.yml").await;
    assert_eq!(s, 404);
    let req = Request::delete("/foo/dev").body(Body::empty()).unwrap();
    assert_eq!(send(&f.router, req).await.0, 405);
    // An application may be called `encrypt`.
    let (s, _, body) = get(&f.router, "/encrypt/dev/main").await;
    assert_eq!(s, 200, "{body}");
    assert!(body.contains(r#""name":"encrypt""#));
}
