//! Interop with Spring itself: a Spring Boot 3.5 / Spring Cloud 2025.0
//! service (spring-cloud-starter-config, from `interop/spring/service`)
//! imports its configuration from our server, and the reference Spring Cloud
//! Config Server (`interop/spring/config-server`) answers the same scripted
//! requests as ours over the same git repository. The jars come from
//! `scripts/prereqs`.
#![allow(clippy::unwrap_used)]

mod support;

use std::time::Duration;

use config_server::crypto::{DEFAULT_SALT, TextEncryptor};
use serde_json::{Value, json};
use support::differential::{Answer, Differences, KnownDifference, mask_json};
use support::{JVM_START, Repo, SpringApp, TestServer, within_scenario_deadline};

const KEY: &str = "spring-interop-key";

/// A repository with a default, profile-specific files in YAML and
/// `.properties`, multi-document files (`spring.config.activate.on-profile`),
/// a profile group, plain-text files, a `release/1` and a `feature/x`
/// branch, a lightweight tag `v1` and an annotated tag `v2` on the first
/// commit (whose id [`config_repo`] returns too); `greeting.secret` is a
/// `{cipher}` value under [`KEY`].
fn config_repo() -> (Repo, String) {
    let enc = TextEncryptor::new(KEY, DEFAULT_SALT).unwrap();
    let repo = Repo::new();
    repo.write(
        "application.yml",
        concat!(
            "shared: everyone\ngreeting:\n  message: from application\n",
            "spring:\n  profiles:\n    group:\n      bundle: dev,docs\n",
        ),
    )
    .write(
        "interop-service.yml",
        &format!(
            concat!(
                "greeting:\n  message: hello default\n  secret: '{{cipher}}{}'\n",
                "server:\n  tag: main\n",
                "---\nspring:\n  config:\n    activate:\n      on-profile: docs\n",
                "greeting:\n  message: hello docs document\n",
                "---\nspring:\n  config:\n    activate:\n      on-profile: '!docs'\n",
                "only:\n  without-docs: true\n",
            ),
            enc.encrypt("s3cr3t")
        ),
    )
    .write(
        "interop-service-dev.yml",
        "greeting:\n  message: hello dev of the first commit\n",
    )
    .write(
        "interop-service-prod.properties",
        "greeting.message=hello prod\nlimit=7\n",
    )
    .write(
        "interop-service-qa.properties",
        concat!(
            "greeting.message=hello qa\n",
            "#---\nspring.config.activate.on-profile=docs\ngreeting.message=hello qa docs\n",
        ),
    )
    .write(
        "nginx.conf",
        "tag ${server.tag};\nmessage ${greeting.message};\n",
    )
    .write("nginx-dev.conf", "dev ${greeting.message};\n")
    .write("sub/file.txt", "in a directory: ${shared}\n");
    let first = repo.commit("config");
    repo.git(&["tag", "v1"]);
    repo.git(&["tag", "-a", "v2", "-m", "annotated"]);
    repo.write(
        "interop-service-dev.yml",
        "greeting:\n  message: hello dev\n",
    );
    repo.commit("dev greeting");
    repo.git(&["checkout", "-q", "-b", "release/1"]);
    repo.write(
        "interop-service-dev.yml",
        "greeting:\n  message: hello release\n",
    );
    repo.commit("release");
    repo.git(&["checkout", "-q", "main"]);
    repo.git(&["checkout", "-q", "-b", "feature/x"]);
    repo.write(
        "interop-service-dev.yml",
        "greeting:\n  message: hello feature\n",
    )
    .write("nginx.conf", "feature ${greeting.message};\n");
    repo.commit("feature");
    repo.git(&["checkout", "-q", "main"]);
    (repo, first)
}

/// The reference Config Server's own `application.yml`
/// (`interop/spring/config-server`), which our server reads unchanged too.
fn reference_settings_file() -> std::path::PathBuf {
    std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../interop/spring/config-server/src/main/resources/application.yml")
}

/// Our server started the way the reference is: from the reference's own
/// `application.yml`, with the repository, mirror directory and key given
/// as Spring's environment variables (the reference gets them as
/// `--spring.cloud.config.server.git.uri=...` flags).
async fn ours_from_reference_file(repo: &Repo) -> TestServer {
    let mirror = tempfile::tempdir().unwrap();
    let env: std::collections::HashMap<String, String> = [
        ("SPRING_CLOUD_CONFIG_SERVER_GIT_URI", repo.uri()),
        (
            "SPRING_CLOUD_CONFIG_SERVER_GIT_BASEDIR",
            mirror.path().join("mirror.git").display().to_string(),
        ),
        ("ENCRYPT_KEY", KEY.to_owned()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect();
    let loaded = config_server::settings::spring::load(
        Some(&reference_settings_file()),
        &env,
        &config_server::settings::spring::Flags::default(),
    )
    .unwrap();
    assert_eq!(
        loaded.settings.git_uri.as_deref(),
        Some(repo.uri().as_str()),
        "the repository from SPRING_CLOUD_CONFIG_SERVER_GIT_URI"
    );
    TestServer::start_with_mirror(loaded.settings, mirror).await
}

async fn text(response: reqwest::Response) -> (u16, String) {
    let status = response.status().as_u16();
    (status, response.text().await.unwrap())
}

/// `GET url` as JSON.
async fn get_json(client: &reqwest::Client, url: &str) -> Value {
    let response = client.get(url).send().await.unwrap();
    assert!(
        response.status().is_success(),
        "{url}: {}",
        response.status()
    );
    response.json().await.unwrap()
}

/// Polls `GET url` until the body satisfies `check` or `within` passes.
async fn wait_for_body(url: &str, within: Duration, what: &str, check: impl Fn(&str) -> bool) {
    let deadline = tokio::time::Instant::now() + within;
    let mut last = String::new();
    loop {
        if let Ok(r) = reqwest::get(url).await {
            last = r.text().await.unwrap_or_default();
            if check(&last) {
                return;
            }
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what} at {url}; last answer: {last}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spring_service_imports_profile_label_and_cipher_values_and_refreshes() {
    within_scenario_deadline(spring_client_scenario()).await;
}

async fn spring_client_scenario() {
    let (repo, _) = config_repo();
    let server = ours_from_reference_file(&repo).await;

    let mut spring = SpringApp::start(
        "service",
        [
            "--server.port=0".to_owned(),
            "--eureka.client.enabled=false".to_owned(),
            format!("--spring.config.import=configserver:{}", server.base),
            "--spring.application.name=interop-service".to_owned(),
            "--spring.profiles.active=dev".to_owned(),
            "--spring.cloud.config.label=release/1".to_owned(),
        ],
    );
    let port = spring.http_port(JVM_START).await;
    let app = format!("http://127.0.0.1:{port}");
    let client = reqwest::Client::new();

    // 1. The profile-specific value from the label's branch, and the
    // `{cipher}` value decrypted by our server.
    let all = get_json(&client, &format!("{app}/greeting/all")).await;
    assert_eq!(all, json!({"message": "hello release", "secret": "s3cr3t"}));
    let env = get_json(&client, &format!("{app}/actuator/env/shared")).await;
    assert_eq!(env["property"]["value"], "everyone", "{env}");
    assert_eq!(
        env["property"]["source"],
        format!("configserver:{}/application.yml", repo.uri()),
        "{env}"
    );
    assert!(
        spring.logged("Located environment: name=interop-service, profiles=[dev], label=release/1"),
        "{}",
        spring.log_tail()
    );

    // 2. A new commit on the branch, announced through our /monitor webhook,
    // reaches the Spring service on /actuator/refresh.
    repo.git(&["checkout", "-q", "release/1"]);
    repo.write(
        "interop-service-dev.yml",
        "greeting:\n  message: hello again\n",
    );
    let commit = repo.commit("new greeting");
    let hook =
        json!({"commits": [{"added": [], "modified": ["interop-service-dev.yml"], "removed": []}]});
    let r = client
        .post(server.url("/monitor"))
        .header("x-github-event", "push")
        .json(&hook)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    wait_for_body(
        &server.url("/interop-service/dev/release(_)1"),
        Duration::from_secs(20),
        "our server to serve the new commit",
        |body| body.contains(&commit),
    )
    .await;
    let (status, changed) = text(
        client
            .post(format!("{app}/actuator/refresh"))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 200, "{changed}");
    let changed: Vec<String> = serde_json::from_str(&changed).unwrap();
    assert!(
        changed.contains(&"greeting.message".to_owned()),
        "refresh reported {changed:?}"
    );
    let (status, greeting) =
        text(client.get(format!("{app}/greeting")).send().await.unwrap()).await;
    assert_eq!((status, greeting.as_str()), (200, "hello again"));

    spring.terminate(Duration::from_secs(30)).await;
}

/// One request of the differential script.
struct Step {
    name: &'static str,
    method: &'static str,
    path: &'static str,
    body: Option<&'static str>,
}

const fn get(name: &'static str, path: &'static str) -> Step {
    Step {
        name,
        method: "GET",
        path,
        body: None,
    }
}

const fn post(name: &'static str, path: &'static str, body: &'static str) -> Step {
    Step {
        name,
        method: "POST",
        path,
        body: Some(body),
    }
}

/// The scripted sequence sent to both servers; `{commit}` stands for the
/// id of the repository's first commit.
const SCRIPT: &[Step] = &[
    // Environments: profiles, multi-document files, profile groups.
    get("environment default", "/interop-service/default"),
    get("environment profile", "/interop-service/dev"),
    get("environment two profiles", "/interop-service/dev,prod"),
    get("environment no profile", "/interop-service"),
    get(
        "environment multi-document profile",
        "/interop-service/docs",
    ),
    get("environment properties profile", "/interop-service/qa"),
    get(
        "environment multi-document properties",
        "/interop-service/qa,docs",
    ),
    get("environment profile group", "/interop-service/bundle"),
    get("environment application only", "/application/default"),
    // Labels: branch, `(_)`, tag, annotated tag, commit id.
    get(
        "environment label with slash",
        "/interop-service/dev/release(_)1",
    ),
    get(
        "environment explicit label",
        "/interop-service/default/main",
    ),
    get(
        "environment feature branch",
        "/interop-service/dev/feature(_)x",
    ),
    get("environment tag", "/interop-service/dev/v1"),
    get("environment annotated tag", "/interop-service/dev/v2"),
    get("environment commit", "/interop-service/dev/{commit}"),
    // The views.
    get("yaml", "/interop-service-dev.yml"),
    get("yaml extension yaml", "/interop-service-dev.yaml"),
    get("properties", "/interop-service-dev.properties"),
    get("json", "/interop-service-dev.json"),
    get("yaml default", "/interop-service-default.yml"),
    get("properties default", "/interop-service-default.properties"),
    get("json default", "/interop-service-default.json"),
    get("yaml multi-document", "/interop-service-docs.yml"),
    get(
        "properties multi-document",
        "/interop-service-docs.properties",
    ),
    get("json multi-document", "/interop-service-docs.json"),
    get("yaml of a properties file", "/interop-service-prod.yml"),
    get("json of a properties file", "/interop-service-prod.json"),
    get(
        "properties profile group",
        "/interop-service-bundle.properties",
    ),
    get("yaml two profiles", "/interop-service-dev,prod.yml"),
    get("yaml with label", "/release(_)1/interop-service-dev.yml"),
    get("json with label", "/release(_)1/interop-service-dev.json"),
    get(
        "yaml feature branch",
        "/feature(_)x/interop-service-dev.yml",
    ),
    get("properties tag", "/v1/interop-service-dev.properties"),
    get("json commit", "/{commit}/interop-service-dev.json"),
    // Plain text.
    get("plain text", "/interop-service/default/main/nginx.conf"),
    get(
        "plain text profile-specific",
        "/interop-service/dev/main/nginx.conf",
    ),
    get(
        "plain text in a directory",
        "/interop-service/default/main/sub/file.txt",
    ),
    get("plain text tag", "/interop-service/default/v1/nginx.conf"),
    get(
        "plain text feature branch",
        "/interop-service/default/feature(_)x/nginx.conf",
    ),
    get(
        "plain text commit",
        "/interop-service/default/{commit}/nginx.conf",
    ),
    // Errors.
    get("environment unknown app", "/nobody/default"),
    get(
        "environment unknown label",
        "/interop-service/default/no-such-label",
    ),
    get("yaml unknown app", "/nobody-default.yml"),
    get(
        "yaml unknown label",
        "/no-such-label/interop-service-dev.yml",
    ),
    get(
        "json unknown label",
        "/no-such-label/interop-service-dev.json",
    ),
    get(
        "plain text missing",
        "/interop-service/default/main/missing.txt",
    ),
    get(
        "plain text unknown label",
        "/interop-service/default/no-such-label/nginx.conf",
    ),
    get("plain text unknown app", "/nobody/default/main/nginx.conf"),
    // Encryption.
    get("encrypt status", "/encrypt/status"),
    post("decrypt garbage", "/decrypt", "not-hex"),
    post(
        "decrypt wrong ciphertext",
        "/decrypt",
        "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff",
    ),
    post("encrypt empty", "/encrypt", ""),
];

/// Differences between the reference server and ours that are known and
/// reported to the lead: (step name, the JSON pointers that differ, why).
/// The test fails when a difference appears that is not listed here, and
/// when a listed one is gone (so the list stays true as the server changes).
/// `<status>` is the HTTP status, `<body>` a body that is not JSON on both.
/// The same list, with the reasons, is in `docs/config-server.md`.
const KNOWN_DIFFERENCES: &[KnownDifference] = &[
    (
        "environment default",
        &["/label", "/state"],
        "reference: label null when the request names none, state \"\"; ours: label \"main\", state null",
    ),
    ("environment profile", &["/label", "/state"], "as above"),
    (
        "environment multi-document profile",
        &["/label", "/state"],
        "as above",
    ),
    (
        "environment properties profile",
        &["/label", "/state"],
        "as above",
    ),
    (
        "environment profile group",
        &["/label", "/state"],
        "as above",
    ),
    (
        "environment application only",
        &["/label", "/state"],
        "as above",
    ),
    ("environment unknown app", &["/label", "/state"], "as above"),
    (
        "environment two profiles",
        &["/label", "/profiles", "/state"],
        "reference profiles [\"dev,prod\"] (one string, as requested); ours [\"dev\",\"prod\"]",
    ),
    (
        "environment multi-document properties",
        &["/label", "/profiles", "/state"],
        "as environment two profiles",
    ),
    (
        "environment label with slash",
        &["/state"],
        "reference state \"\", ours null",
    ),
    ("environment explicit label", &["/state"], "as above"),
    ("environment feature branch", &["/state"], "as above"),
    ("environment tag", &["/state"], "as above"),
    ("environment annotated tag", &["/state"], "as above"),
    ("environment commit", &["/state"], "as above"),
    (
        "environment no profile",
        &["/message"],
        "ours adds a message to the 404 error body",
    ),
    (
        "encrypt empty",
        &["/message"],
        "ours adds a message to the 400 error body",
    ),
    (
        "environment unknown label",
        &["/message"],
        "ours adds a message; Spring Boot leaves it out by default (server.error.include-message=never)",
    ),
    ("yaml unknown label", &["/message"], "as above"),
    ("json unknown label", &["/message"], "as above"),
    (
        "plain text missing",
        &["<body>"],
        "reference: 404 with an empty body; ours: 404 with a JSON error",
    ),
    ("plain text unknown label", &["<body>"], "as above"),
];

/// A known difference that no single step shows, as the reference's names
/// are rewritten before comparing (see [`unify_document_name`]): the
/// reference names a document of a multi-document file
/// `<repo>/Config resource 'file [<repo>/app.yml' via location '' (document #N)`
/// (Spring Boot's resource description behind the repository URI), ours
/// `<repo>/app.yml (document #N)`. The test fails when the reference stops
/// doing so.
const DOCUMENT_NAMES: &str = "multi-document property source names";

/// Rewrites a reference property source name of the form described at
/// [`DOCUMENT_NAMES`] into ours; returns whether it did.
fn unify_document_name(name: &mut String) -> bool {
    const START: &str = "Config resource 'file [";
    let Some(at) = name.find(START) else {
        return false;
    };
    let rest = &name[at + START.len()..];
    let (Some(end), Some(doc)) = (rest.find('\''), rest.rfind(" (document #")) else {
        return false;
    };
    *name = format!("{}{}", &rest[..end], &rest[doc..]);
    true
}

/// [`unify_document_name`] on every property source of an environment;
/// returns how many names it rewrote.
fn unify_document_names(env: &mut Value) -> usize {
    let Some(sources) = env.get_mut("propertySources").and_then(Value::as_array_mut) else {
        return 0;
    };
    sources
        .iter_mut()
        .filter_map(|s| match s.get_mut("name") {
            Some(Value::String(name)) => Some(unify_document_name(name)),
            _ => None,
        })
        .filter(|rewritten| *rewritten)
        .count()
}

/// The answer with what legitimately varies masked: timestamps, the
/// temporary repository paths, trailing whitespace and the line order of a
/// `.properties` rendering (Spring's comes from `java.util.Properties`, a
/// hash table).
fn normalize(step: &Step, body: &str, repo: &Repo) -> Value {
    let path = repo.path().display().to_string();
    let masked = body.replace(&repo.uri(), "<repo>").replace(&path, "<repo>");
    match serde_json::from_str::<Value>(&masked) {
        Ok(mut v) => {
            mask_json(&mut v, &|k| k == "timestamp");
            v
        }
        Err(_) if step.path.ends_with(".properties") => {
            let mut lines: Vec<&str> = masked.lines().collect();
            lines.sort_unstable();
            Value::String(lines.join("\n"))
        }
        Err(_) => Value::String(masked.trim_end().to_owned()),
    }
}

async fn send(
    client: &reqwest::Client,
    base: &str,
    step: &Step,
    repo: &Repo,
    commit: &str,
) -> Answer {
    let url = format!("{base}{}", step.path.replace("{commit}", commit));
    let request = match step.method {
        "POST" => client
            .post(url)
            .header("content-type", "text/plain")
            .body(step.body.unwrap_or_default()),
        _ => client.get(url),
    };
    let (status, raw) = text(request.send().await.unwrap()).await;
    let normalized = normalize(step, &raw, repo);
    Answer {
        status,
        raw,
        normalized,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reference_config_server_and_ours_answer_the_same_script_alike() {
    within_scenario_deadline(differential_scenario()).await;
}

async fn differential_scenario() {
    let (repo, first_commit) = config_repo();
    let basedir = tempfile::tempdir().unwrap();
    let mut reference = SpringApp::start(
        "config-server",
        [
            "--server.port=0".to_owned(),
            format!("--spring.cloud.config.server.git.uri={}", repo.uri()),
            format!(
                "--spring.cloud.config.server.git.basedir={}",
                basedir.path().display()
            ),
            format!("--encrypt.key={KEY}"),
        ],
    );
    let ours = ours_from_reference_file(&repo).await;
    let reference_base = format!("http://127.0.0.1:{}", reference.http_port(JVM_START).await);
    let client = reqwest::Client::new();

    let mut differences = Differences::default();
    let mut renamed_documents = 0;
    for step in SCRIPT {
        let mut theirs = send(&client, &reference_base, step, &repo, &first_commit).await;
        renamed_documents += unify_document_names(&mut theirs.normalized);
        let mine = send(&client, &ours.base, step, &repo, &first_commit).await;
        let request = format!(
            "{} {}{}",
            step.method,
            step.path,
            step.body
                .map(|b| format!(" body={b:?}"))
                .unwrap_or_default()
        );
        differences.compare(step.name, &request, &theirs, &mine);
    }

    // Ciphertexts differ (random IVs) but each server decrypts the other's.
    for (from, to) in [(&reference_base, &ours.base), (&ours.base, &reference_base)] {
        let (status, cipher) = text(
            client
                .post(format!("{from}/encrypt"))
                .header("content-type", "text/plain")
                .body("cross-check")
                .send()
                .await
                .unwrap(),
        )
        .await;
        assert_eq!(status, 200, "{from}/encrypt: {cipher}");
        let (status, plain) = text(
            client
                .post(format!("{to}/decrypt"))
                .header("content-type", "text/plain")
                .body(cipher.clone())
                .send()
                .await
                .unwrap(),
        )
        .await;
        assert_eq!(
            (status, plain.as_str()),
            (200, "cross-check"),
            "{to}/decrypt of {from}'s {cipher}"
        );
    }

    differences.assert_known(KNOWN_DIFFERENCES);
    assert!(
        renamed_documents > 0,
        "known difference gone: {DOCUMENT_NAMES} (remove it from the test and docs/config-server.md)"
    );
    drop(reference);
}
