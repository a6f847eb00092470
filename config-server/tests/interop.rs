//! Interop: the unmodified Python `config-client` package (PyPI, 1.5.0) reads
//! configuration, a plain-text file and uses `/encrypt` + `/decrypt` on our
//! server. The venv comes from `scripts/prereqs` (`INTEROP_VENV`, else
//! `<workspace>/target/interop-venv`).
#![allow(clippy::unwrap_used)]

mod support;

use std::time::Duration;

use config_server::crypto::{DEFAULT_SALT, TextEncryptor};
use serde_json::json;
use support::{Repo, TestServer, git_settings, interop_prereq, interop_script, run_client_json};

#[tokio::test]
async fn python_config_client_reads_our_server() {
    let python = interop_prereq("INTEROP_VENV", "target/interop-venv").join("bin/python");
    let enc = TextEncryptor::new("interop-key", DEFAULT_SALT).unwrap();
    let repo = Repo::new();
    repo.write("application.yml", "shared: everyone\n")
        .write(
            "pyapp.yml",
            &format!(
                "server:\n  port: 8080\ngreeting: hello\npassword: '{{cipher}}{}'\n",
                enc.encrypt("decrypted-secret")
            ),
        )
        .write(
            "pyapp-dev.yml",
            "server:\n  port: 9090\ngreeting: hello dev\n",
        )
        .write("nginx.conf", "listen ${server.port};\n");
    repo.commit("config");
    repo.git(&["checkout", "-q", "-b", "release/1"]);
    repo.write(
        "pyapp-dev.yml",
        "server:\n  port: 7070\ngreeting: hello release\n",
    );
    repo.commit("release");
    let mut settings = git_settings(&repo);
    settings.encrypt_key = Some("interop-key".into());
    let server = TestServer::start(settings).await;

    let script = interop_script("read_config.py");
    for (label, port, greeting) in [
        ("main", 9090, "hello dev"),
        ("release(_)1", 7070, "hello release"),
    ] {
        let mut cmd = tokio::process::Command::new(&python);
        cmd.arg(&script)
            .args([server.base.as_str(), "pyapp", "dev", label]);
        let got = run_client_json(cmd, Duration::from_secs(60)).await;
        assert_eq!(
            got["url"],
            json!(format!("{}/pyapp/dev/{label}", server.base))
        );
        assert_eq!(got["port"], json!(port));
        assert_eq!(got["greeting"], json!(greeting));
        assert_eq!(got["password"], json!("decrypted-secret"));
        assert_eq!(got["shared"], json!("everyone"));
        assert_eq!(got["file"], json!(format!("listen {port};\n")));
        assert_eq!(got["decrypted"], json!("from-python"));
    }
}
