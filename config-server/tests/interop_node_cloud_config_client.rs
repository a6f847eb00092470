//! Interop: the unmodified npm package `cloud-config-client` (1.6.2, the most
//! used Node Spring Cloud Config client) loads an application with several
//! profiles and a label from our server. The package comes from
//! `scripts/prereqs` (`INTEROP_NODE_MODULES`, else
//! `<workspace>/target/interop-node/node_modules`).
#![allow(clippy::unwrap_used)]

mod support;

use std::time::Duration;

use config_server::crypto::{DEFAULT_SALT, TextEncryptor};
use serde_json::{Value, json};
use support::{Repo, TestServer, git_settings, interop_prereq, interop_script, run_client_json};

/// `node node_client.js` loading application `foo` from `base`.
fn node_command(base: &str, profiles: &str, label: Option<&str>) -> tokio::process::Command {
    let modules = interop_prereq("INTEROP_NODE_MODULES", "target/interop-node/node_modules");
    assert!(
        modules.join("cloud-config-client").exists(),
        "cloud-config-client missing in {}: run scripts/prereqs",
        modules.display()
    );
    let mut cmd = tokio::process::Command::new("node");
    cmd.env("NODE_PATH", &modules)
        .arg(interop_script("node_client.js"))
        .args([base, "foo", profiles])
        .args(label)
        .kill_on_drop(true);
    cmd
}

/// Runs `node_client.js` against `base` and returns what the client saw.
async fn node_load(base: &str, profiles: &str, label: Option<&str>) -> Value {
    run_client_json(node_command(base, profiles, label), Duration::from_secs(60)).await
}

#[tokio::test]
async fn node_cloud_config_client_sees_spring_ordering_profiles_labels_and_secrets() {
    let enc = TextEncryptor::new("node-key", DEFAULT_SALT).unwrap();
    let repo = Repo::new();
    repo.write(
        "application.yml",
        "shared: everyone\ncolor: app\nservers:\n  - a\n  - b\n",
    )
    .write("application-dev.yml", "color: app-dev\nlevel: app-dev\n")
    .write(
        "foo.yml",
        &format!(
            "color: foo\nlevel: foo\nurl: http://${{host}}/api\npassword: '{{cipher}}{}'\n",
            enc.encrypt("s3cret")
        ),
    )
    .write("foo-dev.yml", "color: foo-dev\ndb: h2\n")
    .write("foo-mysql.properties", "db=mysql\n");
    let main_commit = repo.commit("config");
    repo.git(&["checkout", "-q", "-b", "release/2"]);
    repo.write("foo-dev.yml", "color: release-dev\ndb: h2\n");
    let release_commit = repo.commit("release");
    repo.git(&["checkout", "-q", "main"]);

    let mut settings = git_settings(&repo);
    settings.encrypt_key = Some("node-key".into());
    let server = TestServer::start(settings).await;

    // No label: the default label, profiles `dev,mysql` (the last wins).
    let got = node_load(&server.base, "dev,mysql", None).await;
    assert_eq!(got["name"], json!("foo"));
    assert_eq!(got["profiles"], json!(["dev", "mysql"]));
    assert_eq!(got["label"], json!("main"));
    assert_eq!(got["version"], json!(main_commit));
    let uri = repo.uri();
    assert_eq!(
        got["sources"],
        json!([
            format!("{uri}/foo-mysql.properties"),
            format!("{uri}/foo-dev.yml"),
            format!("{uri}/application-dev.yml"),
            format!("{uri}/foo.yml"),
            format!("{uri}/application.yml"),
        ])
    );
    let props = &got["properties"];
    // foo-dev beats application-dev beats foo beats application.
    assert_eq!(props["color"], json!("foo-dev"));
    assert_eq!(props["level"], json!("app-dev"));
    assert_eq!(props["db"], json!("mysql"));
    assert_eq!(props["shared"], json!("everyone"));
    assert_eq!(props["password"], json!("s3cret"));
    assert_eq!(props["url"], json!("http://node-host/api"));
    assert_eq!(got["object"]["servers"], json!(["a", "b"]));

    // A label with a slash, written with `(_)` as Spring clients do.
    let got = node_load(&server.base, "dev", Some("release(_)2")).await;
    assert_eq!(got["version"], json!(release_commit));
    assert_eq!(got["label"], json!("release/2"));
    assert_eq!(got["properties"]["color"], json!("release-dev"));
    assert_eq!(got["properties"]["db"], json!("h2"));
    assert_eq!(got["properties"]["password"], json!("s3cret"));

    // An unknown label is an error the client reports (Spring: 404).
    let out = tokio::time::timeout(
        Duration::from_secs(60),
        node_command(&server.base, "dev", Some("no-such-label")).output(),
    )
    .await
    .expect("node did not finish within 60 s")
    .unwrap();
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("Invalid response: 404"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
