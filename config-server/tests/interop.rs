//! Interop: the unmodified Python `config-client` package (PyPI, 1.5.0) reads
//! configuration, a plain-text file and uses `/encrypt` + `/decrypt` on our
//! server. The venv comes from `scripts/prereqs` (`INTEROP_VENV`, else
//! `<workspace>/target/interop-venv`).
#![allow(clippy::unwrap_used)]

mod support;

use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use config_server::crypto::{DEFAULT_SALT, TextEncryptor};
use serde_json::{Value, json};
use support::{Repo, TestServer, git_settings, workspace_root};

fn venv_python() -> PathBuf {
    let venv = std::env::var_os("INTEROP_VENV")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace_root().join("target/interop-venv"));
    venv.join("bin/python")
}

#[tokio::test]
async fn python_config_client_reads_our_server() {
    let python = venv_python();
    assert!(
        python.exists(),
        "interop venv missing at {}: run scripts/prereqs",
        python.display()
    );
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

    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/interop/read_config.py");
    for (label, port, greeting) in [
        ("main", 9090, "hello dev"),
        ("release(_)1", 7070, "hello release"),
    ] {
        let child = tokio::process::Command::new(&python)
            .arg(&script)
            .args([server.base.as_str(), "pyapp", "dev", label])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .unwrap();
        // kill_on_drop stops the interpreter if the deadline passes.
        let out = tokio::time::timeout(Duration::from_secs(60), child.wait_with_output())
            .await
            .expect("python client did not finish within 60 s")
            .unwrap();
        assert!(
            out.status.success(),
            "python failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let got: Value = serde_json::from_slice(&out.stdout).unwrap();
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
